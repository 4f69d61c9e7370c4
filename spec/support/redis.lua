-- redis.lua - private redis-server instances for specs that stop, hang,
-- flush or roll back Redis (outage and restart tests), so they never disturb
-- the shared one.
local support = require "spec.support.host"

local M = {}

--- Runs a shell command; true when it exited 0.
function M.sh(cmd)
  local ok = os.execute(cmd)
  return ok == 0 or ok == true
end

M.free_port = support.free_port

--- redis-cli against port; returns its output without trailing space.
function M.cli(port, args)
  local p = io.popen("redis-cli -h 127.0.0.1 -p " .. port .. " " .. args .. " 2>/dev/null")
  local out = p:read("*a")
  p:close()
  return (out:gsub("%s+$", ""))
end

--- Starts a throw-away redis-server on port with its files in dir. It never
--- saves by itself (--save ''), but M.save writes dir/dump.rdb and a later
--- start in the same dir loads it: M.save, M.stop, M.start is a restart from
--- an older snapshot.
function M.start(port, dir)
  assert(M.sh(("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no --daemonize yes"
    .. " --dir %s --dbfilename dump.rdb --pidfile %s/redis.pid --logfile %s/redis.log"):format(port, dir, dir, dir)))
  assert(support.wait_for(function() return M.cli(port, "ping") == "PONG" end, 10), "redis did not start")
end

--- Snapshots the dataset into dir/dump.rdb (SAVE: done when it returns).
function M.save(port)
  assert(M.cli(port, "save") == "OK", "redis SAVE failed")
end

--- Stops it (no save) and waits until it no longer answers.
function M.stop(port)
  M.sh("redis-cli -h 127.0.0.1 -p " .. port .. " shutdown nosave >/dev/null 2>&1")
  assert(support.wait_for(function() return M.cli(port, "ping") ~= "PONG" end, 10), "redis did not stop")
end

--- private() -> r: a throw-away redis-server of the calling spec on a free
--- port: r.port, r.dir, r.env (the host settings that point at it) and
--- r:destroy() (stop it and remove its folder).
function M.private()
  local r = { dir = support.tmpdir(), port = M.free_port() }
  M.start(r.port, r.dir)
  r.env = { REDIS_HOST = "127.0.0.1", REDIS_PORT = tostring(r.port) }
  function r.destroy()
    M.stop(r.port)
    M.sh("rm -rf " .. r.dir)
  end
  return r
end

return M
