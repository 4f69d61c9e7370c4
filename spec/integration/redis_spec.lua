-- redis_spec.lua - host.redis through a real host and a real Redis: typed
-- replies, and a Redis outage (stopped, then hung) that costs each call an
-- error within the deadline, leaves other routes serving, and heals by
-- itself once Redis is back on the same port. Each test starts its own
-- redis-server on a free port, so stopping it never disturbs other specs.
local support = require "spec.support.host"
local socket = require "socket"
local redis = require "spec.support.redis"
local signal = support.signal

local sh, free_port = redis.sh, redis.free_port
local redis_start, redis_stop = redis.start, redis.stop

-- Runs one request and returns the response and its wall time in seconds.
local function timed(host, method, path, body)
  local t0 = socket.gettime()
  local res = host:request(method, path, body)
  return res, socket.gettime() - t0
end

describe("host.redis", function()
  local host, port, dir

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir))
    port = free_port()
    redis_start(port, dir)
    host = support.start {
      WORKERS = "2", REDIS_HOST = "127.0.0.1", REDIS_PORT = tostring(port),
      REDIS_COMMAND_TIMEOUT_MS = "300", REDIS_CONNECT_TIMEOUT_MS = "300",
    }
  end)

  after_each(function()
    if host then host:stop() end
    host = nil
    redis_stop(port)
    sh("rm -rf " .. dir)
  end)

  local function call(...)
    local res = host:request("POST", "/test/redis/call", { args = { ... } })
    assert.equal(200, res.status, res.body)
    return res.json, res.body
  end

  it("returns typed replies, nil, arrays and error replies", function()
    assert.equal("OK", call("SET", "spec:k", "v").value)
    assert.equal("v", call("GET", "spec:k").value)
    assert.equal("PONG", call("PING").value)
    assert.equal(1, host:request("POST", "/test/redis/incr?key=spec:n").json.value)
    assert.equal(42, call("INCRBY", "spec:n", 41).value)
    assert.equal("42", call("GET", "spec:n").value)
    call("SET", "spec:f", 2.5)
    assert.equal("2.5", call("GET", "spec:f").value)

    local _, text = call("GET", "spec:missing")
    assert.truthy(text:find('"value":null', 1, true))
    assert.truthy(text:find('"error":null', 1, true))

    local _, mget = call("MGET", "spec:k", "spec:missing", "spec:n")
    assert.truthy(mget:find('"value":["v",null,"42"]', 1, true), mget)
    local _, empty = call("LRANGE", "spec:nolist", 0, -1)
    assert.truthy(empty:find('"value":[]', 1, true), empty)

    local wrong = call("INCR", "spec:k")
    assert.equal("ERR value is not an integer or out of range", wrong.error)
    assert.truthy(call("LPUSH", "spec:k", "x").error:find("^WRONGTYPE"))

    assert.equal(0, host:request("POST", "/test/redis/publish",
      { channel = "spec:nobody", message = "hi" }).json.value)
    -- A command that would switch the connection to pub/sub is refused.
    assert.equal(500, host:request("POST", "/test/redis/call", { args = { "SUBSCRIBE", "x" } }).status)
  end)

  it("fails fast while Redis is stopped, keeps serving, and recovers on restart", function()
    assert.equal(1, host:request("POST", "/test/redis/incr?key=spec:c").json.value)
    redis_stop(port)

    for _ = 1, 6 do
      local res, took = timed(host, "GET", "/test/redis/get?key=spec:c")
      assert.equal(200, res.status)
      assert.truthy(res.json.error:find("^redis "), res.body)
      assert.truthy(took < 2, "took " .. took .. " s")
      local inc, took2 = timed(host, "POST", "/test/redis/incr?key=spec:c")
      assert.equal(503, inc.status)
      assert.truthy(inc.json.detail:find("^redis "), inc.body)
      assert.truthy(took2 < 2, "took " .. took2 .. " s")
      assert.equal(200, host:request("GET", "/test/version").status)
      local health = host:request("GET", "/health")
      assert.equal(503, health.status)
      assert.equal("degraded", health.json.status)
      assert.equal("error", health.json.checks.redis)
      assert.equal("ok", health.json.checks.database)
      support.sleep(0.3)
    end

    redis_start(port, dir) -- same port, empty data
    -- Every worker reconnects by itself (backoff is at most 2 s).
    local ok = support.wait_for(function()
      for _ = 1, 8 do
        local res = host:request("GET", "/test/redis/get?key=spec:c")
        if res.status ~= 200 or type(res.json.error) == "string" then return false end
      end
      return true
    end, 10)
    assert.truthy(ok, "redis calls did not recover")
    assert.equal(200, host:request("GET", "/health").status)
    assert.equal(1, host:request("POST", "/test/redis/incr?key=spec:c").json.value)
    assert.equal(2, host:request("POST", "/test/redis/incr?key=spec:c").json.value)
  end)

  it("answers 'redis timeout' within the deadline while Redis hangs, then recovers", function()
    assert.equal("OK", call("SET", "spec:h", "x").value)
    local pid = tonumber(support.read_file(dir .. "/redis.pid"):match("%d+"))
    signal.kill(pid, signal.SIGSTOP)
    local ok, err = pcall(function()
      local timeouts = 0
      for _ = 1, 4 do
        local res, took = timed(host, "GET", "/test/redis/get?key=spec:h")
        assert.equal(200, res.status)
        assert.truthy(res.json.error:find("^redis "), res.body)
        assert.truthy(took < 2, "took " .. took .. " s")
        -- A call that reached the stuck server waited about the deadline.
        if res.json.error == "redis timeout" then
          timeouts = timeouts + 1
          assert.truthy(res.json.ms >= 250 and res.json.ms < 1000, res.body)
        end
        assert.equal(200, host:request("GET", "/test/version").status)
      end
      assert.truthy(timeouts >= 1, "no call ran into the deadline")
    end)
    signal.kill(pid, signal.SIGCONT)
    assert(ok, err)
    assert.truthy(support.wait_for(function()
      local res = host:request("GET", "/test/redis/get?key=spec:h")
      return res.json.value == "x"
    end, 10), "redis calls did not recover")
  end)
end)
