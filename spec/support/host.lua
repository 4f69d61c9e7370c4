-- host.lua - starts real cchost processes for integration specs.
--
-- A host is started on port 0 with a ready file and a workers file in its own
-- temporary folder (DESIGN.md "Test harness"); the spec reads the bound port
-- and worker pids from them. Settings are passed as environment variables on
-- top of the test defaults below. CCHOST_BIN picks the binary (the test
-- command runs the specs once more against the sanitizer build).
local unistd = require "posix.unistd"
local signal = require "posix.signal"
local wait = require "posix.sys.wait"
local stdlib = require "posix.stdlib"
local ptime = require "posix.time"
local http = require "spec.support.http"

local M = {}

local BIN = os.getenv("CCHOST_BIN") or "build/cchost"

local DEFAULTS = {
  APP_PROFILE = "development",
  PORT = "0",
  HOST = "127.0.0.1",
  WORKERS = "2",
  JWT_SECRET_KEY = "spec-secret-0123456789abcdef0123456789abcdef",
  FIXTURE_SCRIPTS = "spec/fixtures/scripts",
  RELOAD_WATCH = "false",
  LOG_LEVEL = "info",
  ADMIN_STATS_CACHE_S = "0", -- specs read the figures they just changed
}

--- Sleeps s seconds (fractions allowed).
function M.sleep(s)
  local sec = math.floor(s)
  ptime.nanosleep { tv_sec = sec, tv_nsec = math.floor((s - sec) * 1e9) }
end

--- Writes text to path (replacing it).
function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

--- A new empty folder under the temporary folder; the caller removes it.
function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d))
  return d
end

--- Runs a shell command: its output (stdout and stderr) and exit status.
function M.run(cmd)
  local p = assert(io.popen(cmd .. ' 2>&1; echo "exit=$?"'))
  local out = p:read("*a")
  p:close()
  local text, code = out:match("^(.*)exit=(%d+)%s*$")
  return text, tonumber(code)
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

--- A loopback port nobody listens on right now.
function M.free_port()
  local s = assert(require("socket").bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- Polls fn() every 50 ms until it returns a truthy value or timeout
--- seconds pass; returns that value (or nil).
function M.wait_for(fn, timeout)
  local deadline = os.time() + (timeout or 10)
  repeat
    local v = fn()
    if v then return v end
    M.sleep(0.05)
  until os.time() > deadline
  return nil
end

local Host = {}
Host.__index = Host

local db_counter = 0

--- Creates a fresh database cloned from the migrated template the test
--- command prepared (CC_TEMPLATE_DB) and returns its URL, or nil when the
--- specs run without PostgreSQL.
function M.create_database()
  local template, port = os.getenv("CC_TEMPLATE_DB"), os.getenv("PGPORT")
  if not template or not port then return nil end
  db_counter = db_counter + 1
  -- busted loads this module afresh for each spec file (the counter starts
  -- again), so the name also carries the clock to the nanosecond
  local now = ptime.clock_gettime(ptime.CLOCK_REALTIME)
  local name = string.format("spec_%d_%d_%09d_%d", unistd.getpid(), now.tv_sec, now.tv_nsec, db_counter)
  local ok = os.execute("psql -q -d postgres -c 'CREATE DATABASE " .. name .. " TEMPLATE " .. template .. "' >/dev/null")
  assert(ok == 0 or ok == true, "cannot create database " .. name)
  return "postgresql://" .. (os.getenv("PGUSER") or "casino") .. "@127.0.0.1:" .. port .. "/" .. name, name
end

--- Starts a host with env overrides; waits until it serves. Raises on failure
--- with the tail of its log.
function M.start(env)
  local dir = os.tmpname()
  os.remove(dir)
  assert(require("posix.sys.stat").mkdir(dir, 448))
  local settings = {}
  for k, v in pairs(DEFAULTS) do settings[k] = v end
  local db_name
  if not (env and env.DATABASE_URL) then settings.DATABASE_URL, db_name = M.create_database() end
  for k, v in pairs(env or {}) do settings[k] = v end
  settings.READY_FILE = dir .. "/ready"
  settings.WORKERS_FILE = dir .. "/workers"
  local log = dir .. "/host.log"
  local pid = assert(unistd.fork())
  if pid == 0 then
    for k, v in pairs(settings) do -- false unsets (an `and nil or` would give "false")
      if v == false then stdlib.setenv(k, nil) else stdlib.setenv(k, tostring(v)) end
    end
    local out = io.open(log, "w")
    local fcntl = require "posix.fcntl"
    local fd = fcntl.open(log, fcntl.O_WRONLY + fcntl.O_APPEND)
    unistd.dup2(fd, 1)
    unistd.dup2(fd, 2)
    if out then out:close() end
    unistd.exec(BIN, { [0] = BIN, "serve" })
    os.exit(127)
  end
  local self = setmetatable({ pid = pid, dir = dir, log = log, env = settings, db_name = db_name }, Host)
  local port = M.wait_for(function()
    local s = read_file(settings.READY_FILE)
    if s and s:match("%d+") then return tonumber(s:match("%d+")) end
    local done = wait.wait(pid, wait.WNOHANG)
    if done == pid then self.exited = true return -1 end
  end, 20)
  if not port or port < 0 then
    local tail = read_file(log) or ""
    if not self.exited then self:kill() end
    error("host did not start:\n" .. tail:sub(-3000))
  end
  self.port = port
  return self
end

--- Worker pids from the workers file.
function Host:workers()
  local pids = {}
  for p in (read_file(self.env.WORKERS_FILE) or ""):gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
  return pids
end

function Host:signal(sig)
  return signal.kill(self.pid, sig)
end

function Host:request(method, path, body, headers)
  return http.request(self.port, method, path, body, headers)
end

--- Like request, but retries refused or reset connections for up to
--- `timeout` seconds: what a client behind a load balancer does.
function Host:request_retry(method, path, timeout)
  local res, err
  M.wait_for(function()
    res, err = self:request(method, path)
    return res
  end, timeout or 10)
  return res, err
end

--- Waits for the master to exit; returns its exit status or nil on timeout.
function Host:wait_exit(timeout)
  local status
  M.wait_for(function()
    local pid, how, code = wait.wait(self.pid, wait.WNOHANG)
    if pid == self.pid then
      status = how == "exited" and code or -code
      self.exited = true
      return true
    end
  end, timeout or 30)
  return status
end

--- Stops the host (SIGTERM, then SIGKILL after 10 s) and removes its folder.
--- Raises when a sanitizer reported a memory or undefined-behaviour error in
--- any of its processes (the ASan pass of the test command relies on it).
function Host:stop()
  if not self.exited then
    self:signal(signal.SIGTERM)
    if not self:wait_exit(10) then self:kill() end
  end
  local text = self:log_text()
  os.execute("rm -rf " .. self.dir)
  if self.db_name then
    os.execute("psql -q -d postgres -c 'DROP DATABASE IF EXISTS " .. self.db_name .. " WITH (FORCE)' >/dev/null 2>&1")
  end
  local at = text:find("ERROR: AddressSanitizer", 1, true) or text:find("runtime error:", 1, true)
  if at then error("sanitizer report in host log:\n" .. text:sub(at, at + 3000)) end
end

function Host:kill()
  for _, w in ipairs(self:workers()) do signal.kill(w, signal.SIGKILL) end
  signal.kill(self.pid, signal.SIGKILL)
  wait.wait(self.pid)
  self.exited = true
end

--- SIGKILLs the whole host at once, as a machine or container dying would:
--- the master is stopped first (SIGSTOP) so it cannot respawn anything,
--- then every child of the master (the workers, also one being respawned
--- that the workers file does not list yet) and the master are killed.
--- Returns the pids killed (master first).
function Host:kill_group()
  local killed = { self.pid }
  signal.kill(self.pid, signal.SIGSTOP)
  local pids, seen = {}, {}
  for _, w in ipairs(self:workers()) do pids[#pids + 1], seen[w] = w, true end
  for _, name in ipairs(require("posix.dirent").dir("/proc")) do
    local pid = tonumber(name)
    local stat = pid and read_file("/proc/" .. name .. "/stat")
    -- "pid (comm) state ppid ...": comm may hold spaces, so match after ")".
    local ppid = stat and tonumber(stat:match("%) %S+ (%d+)"))
    if ppid == self.pid and not seen[pid] then pids[#pids + 1], seen[pid] = pid, true end
  end
  for _, pid in ipairs(pids) do
    signal.kill(pid, signal.SIGKILL)
    killed[#killed + 1] = pid
  end
  signal.kill(self.pid, signal.SIGKILL)
  wait.wait(self.pid)
  self.exited = true
  -- Returns once every process has exited (gone, or a zombie whose sockets
  -- are closed): nothing the caller sends afterwards reaches a dying worker.
  local deadline = os.time() + 10
  for _, pid in ipairs(killed) do
    while os.time() <= deadline do
      local stat = read_file("/proc/" .. pid .. "/stat")
      if not stat or stat:match("%) (%S)") == "Z" then break end
      M.sleep(0.001)
    end
  end
  return killed
end

function Host:log_text()
  return read_file(self.log) or ""
end

--- The route table a host started with env would load (`cchost routes
--- --json` under the same settings: the test defaults, then env), decoded.
function M.routes(env)
  local settings = {}
  for k, v in pairs(DEFAULTS) do settings[k] = v end
  for k, v in pairs(env or {}) do settings[k] = v end
  local unset, set = {}, {}
  for k, v in pairs(settings) do
    if v == false then unset[#unset + 1] = "-u " .. k
    else set[#set + 1] = k .. "='" .. tostring(v):gsub("'", "'\\''") .. "'" end
  end
  local p = assert(io.popen("env " .. table.concat(unset, " ") .. " " .. table.concat(set, " ") .. " "
    .. BIN .. " routes --json"))
  local out = p:read("*a")
  p:close()
  return assert(require("cjson").decode(out), "cchost routes --json printed no JSON")
end

M.signal = signal
return M
