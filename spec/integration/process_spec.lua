-- process_spec.lua - the master's supervision: respawn after kill -9,
-- graceful drain on SIGTERM, watchdog against a runaway script, respawn
-- failures that never stop a serving host, generations that live in the
-- master only, and a shared accept queue that a dying worker cannot take
-- down with it.
local support = require "spec.support.host"
local http = require "spec.support.http"
local signal = support.signal
local unistd = require "posix.unistd"
local wait = require "posix.sys.wait"
local write, tmpdir = support.write_file, support.tmpdir

-- Waits until the workers file lists n pids, none of them in `gone`.
local function wait_workers(host, n, gone, timeout)
  return support.wait_for(function()
    local w = host:workers()
    if #w ~= n then return nil end
    for _, p in ipairs(w) do
      if p == gone then return nil end
    end
    return w
  end, timeout or 10)
end

local function count(text, needle)
  local n, at = 0, 1
  while true do
    local i = text:find(needle, at, true)
    if not i then return n end
    n, at = n + 1, i + 1
  end
end

describe("master process", function()
  it("respawns a killed worker while a retrying client keeps being served", function()
    local host = support.start { WORKERS = "2" }
    local before = host:workers()
    assert.equal(2, #before)
    signal.kill(before[1], signal.SIGKILL)
    for _ = 1, 20 do
      local res = host:request_retry("GET", "/", 5)
      assert.equal(200, res.status)
    end
    local after = support.wait_for(function()
      local w = host:workers()
      return #w == 2 and w[1] ~= before[1] and w[2] ~= before[1] and w or nil
    end, 10)
    assert.truthy(after)
    assert.truthy(host:log_text():find("was killed by signal 9", 1, true))
    host:stop()
  end)

  it("drains an in-flight request on SIGTERM, then exits 0", function()
    local host = support.start { WORKERS = "1" }
    local c = assert(http.connect(host.port))
    assert(c:send(http.format("GET", "/test/sleep?seconds=1")))
    support.sleep(0.2)
    host:signal(signal.SIGTERM)
    local res = assert(c:read_response())
    assert.equal(200, res.status)
    assert.equal(1, res.json.slept)
    assert.equal(0, host:wait_exit(15))
    c:close()
    -- nothing listens any more
    assert.is_nil(http.connect(host.port, 1))
    host:stop()
  end)

  it("kills a worker stuck in a script loop and recovers", function()
    local host = support.start { WORKERS = "1", WATCHDOG_S = "1" }
    local before = host:workers()[1]
    local c = assert(http.connect(host.port, 10))
    c:send(http.format("GET", "/test/loop"))
    local res, err = c:read_response()
    assert.is_nil(res)
    assert.truthy(err)
    local res2 = host:request_retry("GET", "/", 10)
    assert.equal(200, res2.status)
    assert.are_not.equal(before, host:workers()[1])
    assert.truthy(host:log_text():find("watchdog", 1, true))
    host:stop()
  end)

  it("respawns a worker on the current generation when nothing of it is left on disk", function()
    local fixtures, tmp = tmpdir(), tmpdir()
    assert(os.execute("cp -r spec/fixtures/scripts/. " .. fixtures))
    local route_file = fixtures .. "/routes/testing.lua"
    local function set_version(v)
      local src = support.read_file(route_file)
      write(route_file, (src:gsub('version = "[^"]*"', 'version = "' .. v .. '"')))
    end
    local host = support.start { WORKERS = "1", FIXTURE_SCRIPTS = fixtures, TMPDIR = tmp }
    set_version("two")
    host:signal(signal.SIGHUP)
    assert.truthy(support.wait_for(function()
      return host:request("GET", "/health").json.scripts.generation == 2
    end, 10))
    assert.equal("two", host:request("GET", "/test/version").json.version)
    -- The files change on disk without a reload, and everything a /tmp
    -- cleaner could take is taken: the master's temporary folder, and any
    -- regular file it holds open besides its log.
    set_version("three")
    assert(os.execute("rm -rf " .. tmp .. "/* " .. tmp .. "/.[!.]*"))
    local held = {}
    for _, name in ipairs(require("posix.dirent").dir("/proc/" .. host.pid .. "/fd")) do
      local target = unistd.readlink("/proc/" .. host.pid .. "/fd/" .. name)
      if target and target:sub(1, 1) == "/" and target ~= host.log and not target:find("^/dev/") then
        held[#held + 1] = target
      end
    end
    assert.same({}, held)
    local before = host:workers()[1]
    signal.kill(before, signal.SIGKILL)
    assert.truthy(wait_workers(host, 1, before))
    local res = host:request_retry("GET", "/test/version", 10)
    assert.equal(200, res.status)
    assert.equal("two", res.json.version)
    assert.equal(2, host:request("GET", "/health").json.scripts.generation)
    host:stop()
    os.execute("rm -rf " .. fixtures .. " " .. tmp)
  end)

  it("keeps serving while a worker fails to restart, and retries it with backoff", function()
    local dir = tmpdir()
    local fault = dir .. "/fail-worker-start"
    local host = support.start { WORKERS = "2", CCHOST_FAULT_WORKER_START = fault }
    write(fault, "")
    support.sleep(1.1) -- past the second after which a killed worker's restart is no failed start
    local before = host:workers()
    signal.kill(before[1], signal.SIGKILL)
    -- Two failed restarts at least, while the other worker serves throughout.
    local deadline = os.time() + 15
    local served = 0
    while count(host:log_text(), "failed to restart") < 2 and os.time() < deadline do
      local res = host:request("GET", "/")
      assert.equal(200, res and res.status)
      served = served + 1
      support.sleep(0.05)
    end
    assert.is_true(count(host:log_text(), "failed to restart") >= 2)
    assert.is_true(served > 0)
    assert.truthy(host:log_text():find("failed starts in a row", 1, true))
    assert.is_nil(wait.wait(host.pid, wait.WNOHANG) == host.pid or nil) -- the master still runs
    os.remove(fault)
    local after = wait_workers(host, 2, before[1], 15)
    assert.truthy(after)
    for _ = 1, 10 do assert.equal(200, host:request("GET", "/").status) end
    -- Every failed start's own reason reached the log, even when the master
    -- saw the worker's exit before reading its last line.
    local text = host:log_text()
    assert.equal(count(text, " failed start"), count(text, "failed to restart"))
    host:stop()
    os.execute("rm -rf " .. dir)
  end)

  it("ends when a worker cannot start before the host ever served", function()
    local dir = tmpdir()
    local fault = dir .. "/fail-worker-start"
    write(fault, "")
    local ok, err = pcall(support.start, { WORKERS = "2", CCHOST_FAULT_WORKER_START = fault })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("cannot start", 1, true))
    os.execute("rm -rf " .. dir)
  end)

  it("loses no queued connection when a worker dies; keep-alive clients are not disturbed", function()
    local host = support.start { WORKERS = "2" }
    local w = host:workers()
    -- A stopped worker accepts nothing: whatever it would have taken waits in
    -- an accept queue. With one queue per worker (SO_REUSEPORT) about half of
    -- these connections would wait in the stopped worker's and be reset when
    -- it is killed; with the shared queue the other worker takes them all.
    signal.kill(w[1], signal.SIGSTOP)
    local keepalive = {}
    for i = 1, 4 do keepalive[i] = assert(http.connect(host.port)) end
    local queued = {}
    for i = 1, 24 do
      queued[i] = assert(http.connect(host.port))
      assert(queued[i]:send(http.format("GET", "/")))
    end
    local failures = 0
    for round = 1, 50 do
      if round == 25 then signal.kill(w[1], signal.SIGKILL) end
      local res = keepalive[round % 4 + 1]:request("GET", "/health")
      if not (res and res.status == 200) then failures = failures + 1 end
    end
    for i = 1, 24 do
      local res = queued[i]:read_response()
      if not (res and res.status == 200) then failures = failures + 1 end
      queued[i]:close()
    end
    for i = 1, 4 do keepalive[i]:close() end
    assert.equal(0, failures)
    assert.truthy(wait_workers(host, 2, w[1]))
    host:stop()
  end)
end)
