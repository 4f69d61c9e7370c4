-- process_spec.lua - the master's supervision: respawn after kill -9,
-- graceful drain on SIGTERM, watchdog against a runaway script.
local support = require "spec.support.host"
local http = require "spec.support.http"
local signal = support.signal

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
end)
