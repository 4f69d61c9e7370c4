-- haproxy.lua - runs the deployment's own load balancer configuration
-- (docker/haproxy.cfg) on loopback for specs and the fault drill.
--
-- docker/haproxy.cfg takes everything that differs between a deployment and
-- a test from environment variables (LB_BIND, LB_HOST1, LB_HOST2,
-- LB_CHECK_INTER, LB_STATS_SOCKET, LB_DNS), so what the specs exercise is
-- the shipped file, not a copy: health checks on /health, `retries 3`,
-- `option redispatch`, the fail-open backups, WebSocket passthrough and the
-- X-Served-By response header naming the server that answered.
--
--   local lb = haproxy.start { hosts = { port1, port2 }, check_inter = "200ms" }
--   lb.port                      -- where clients connect
--   lb:states() -> { host1 = "UP", host2 = "DOWN", ... } (stats socket)
--   lb:wait_state("host2", "DOWN", 5)
--   lb:stop()
--
-- M.spawn(argv, env, log, opts) is the process starter both use: fork, a
-- new session (setsid: the child leads its own process group, so the whole
-- group can be signalled), every inherited descriptor above 2 closed (a
-- server started from a process full of client sockets must not keep them
-- open), stdout and stderr to `log`, then exec.
local unistd = require "posix.unistd"
local signal = require "posix.signal"
local wait = require "posix.sys.wait"
local stdlib = require "posix.stdlib"
local fcntl = require "posix.fcntl"
local dirent = require "posix.dirent"
local socket = require "socket"
local support = require "spec.support.host"

local M = {}

M.CONFIG = "docker/haproxy.cfg"

--- Starts argv[1] with the arguments argv[2..] in a new session; env (name
--- -> value, false to unset) is applied on top of the current environment.
--- Returns the child's pid (also its process group id).
function M.spawn(argv, env, log, opts)
  opts = opts or {}
  local pid = assert(unistd.fork())
  if pid ~= 0 then return pid end
  unistd.setpid("s")
  local fds = {}
  for _, name in ipairs(dirent.dir("/proc/self/fd") or {}) do
    local fd = tonumber(name)
    if fd and fd > 2 then fds[#fds + 1] = fd end
  end
  for _, fd in ipairs(fds) do unistd.close(fd) end
  local out = fcntl.open(log or "/dev/null", fcntl.O_WRONLY + fcntl.O_CREAT + fcntl.O_APPEND, 420)
  if out then
    unistd.dup2(out, 1)
    unistd.dup2(out, 2)
    if out > 2 then unistd.close(out) end
  end
  local null = fcntl.open("/dev/null", fcntl.O_RDONLY)
  if null then unistd.dup2(null, 0) if null > 2 then unistd.close(null) end end
  for k, v in pairs(env or {}) do stdlib.setenv(k, v ~= false and tostring(v) or nil) end
  if opts.cwd then unistd.chdir(opts.cwd) end
  local args = { [0] = argv[1] }
  for i = 2, #argv do args[i - 1] = argv[i] end
  unistd.execp(argv[1], args)
  os.exit(127)
end

--- Sends sig to every process of the group led by pid (a spawned child).
function M.kill_group(pid, sig)
  return signal.kill(-pid, sig or signal.SIGKILL)
end

local free_port = support.free_port
M.free_port = free_port

local function sleep(s) socket.sleep(s) end

local read_file = support.read_file

local LB = {}
LB.__index = LB

--- Starts HAProxy with docker/haproxy.cfg in front of opts.hosts (two
--- loopback ports). opts.check_inter: health check interval ("200ms");
--- opts.dir: folder for its log and stats socket (a new one by default).
--- Waits until it accepts and both hosts are UP; raises with its log
--- otherwise.
function M.start(opts)
  local dir = opts.dir
  if not dir then
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
  end
  local port = opts.port or free_port()
  local self = setmetatable({
    port = port, dir = dir, log = dir .. "/haproxy.log", sock = dir .. "/haproxy.sock",
    check_inter = opts.check_inter or "200ms", own_dir = not opts.dir,
  }, LB)
  self.env = {
    LB_BIND = "127.0.0.1:" .. port,
    LB_HOST1 = "127.0.0.1:" .. opts.hosts[1],
    LB_HOST2 = "127.0.0.1:" .. opts.hosts[2],
    LB_CHECK_INTER = self.check_inter,
    LB_STATS_SOCKET = self.sock,
  }
  -- -db: stay in the foreground (the spawned process is HAProxy itself).
  self.pid = M.spawn({ "haproxy", "-db", "-f", opts.config or M.CONFIG }, self.env, self.log)
  local deadline = socket.gettime() + 10
  while socket.gettime() < deadline do
    local done = wait.wait(self.pid, wait.WNOHANG)
    if done == self.pid then
      self.exited = true
      error("haproxy did not start:\n" .. (read_file(self.log) or ""))
    end
    local st = self:states()
    if st and st.host1 == "UP" and st.host2 == "UP" then
      local c = socket.connect("127.0.0.1", port)
      if c then c:close() return self end
    end
    sleep(0.05)
  end
  self:stop()
  error("haproxy: hosts not UP within 10 s:\n" .. (read_file(self.log) or ""))
end

--- One command on the stats socket; returns its answer or nil, err.
function LB:command(cmd)
  local unix = require "socket.unix"
  local c = unix()
  c:settimeout(2)
  local ok, err = c:connect(self.sock)
  if not ok then c:close() return nil, err end
  c:send(cmd .. "\n")
  local out = c:receive("*a")
  c:close()
  return out
end

--- Server states by name: "UP", "DOWN", "MAINT", "no check" (backups), ...
function LB:states()
  local out = self:command("show stat")
  if not out then return nil end
  local st = {}
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local f = {}
      for v in (line .. ","):gmatch("([^,]*),") do f[#f + 1] = v end
      -- pxname, svname, ... status is field 18
      if f[1] == "hosts" and f[2] ~= "BACKEND" then st[f[2]] = f[18] end
    end
  end
  return st
end

--- Waits until server `name` is in state `state` ("UP"/"DOWN", prefix
--- match: "DOWN 1/2" counts as UP while going down); returns true or false.
function LB:wait_state(name, state, timeout)
  local deadline = socket.gettime() + (timeout or 10)
  repeat
    local st = self:states()
    if st and st[name] and st[name]:sub(1, #state) == state then return true end
    sleep(0.02)
  until socket.gettime() > deadline
  return false
end

function LB:log_text() return read_file(self.log) or "" end

--- Stops HAProxy (SIGTERM, then SIGKILL) and removes its folder if it made it.
function LB:stop()
  if not self.exited then
    M.kill_group(self.pid, signal.SIGTERM)
    local deadline = socket.gettime() + 5
    while socket.gettime() < deadline do
      if wait.wait(self.pid, wait.WNOHANG) == self.pid then self.exited = true break end
      sleep(0.02)
    end
    if not self.exited then
      M.kill_group(self.pid, signal.SIGKILL)
      wait.wait(self.pid)
      self.exited = true
    end
  end
  if self.own_dir then os.execute("rm -rf " .. self.dir) end
end

return M
