-- reload_spec.lua - two-phase hot reload: a broken generation is refused and
-- reported, a good one takes over without dropping in-flight requests.
local support = require "spec.support.host"
local http = require "spec.support.http"
local signal = support.signal
local write = support.write_file

describe("hot reload", function()
  local host, fixtures, route_file

  before_each(function()
    fixtures = os.tmpname()
    os.remove(fixtures)
    assert(os.execute("cp -r spec/fixtures/scripts " .. fixtures))
    route_file = fixtures .. "/routes/testing.lua"
  end)

  after_each(function()
    if host then host:stop() end
    os.execute("rm -rf " .. fixtures)
  end)

  local function set_version(v)
    local src = support.read_file(route_file)
    write(route_file, (src:gsub('version = "[^"]*"', 'version = "' .. v .. '"')))
  end

  it("keeps the old generation when a script has a syntax error, and reports it", function()
    host = support.start { WORKERS = "2", FIXTURE_SCRIPTS = fixtures }
    write(fixtures .. "/routes/broken.lua", "local x = = 1\n")
    host:signal(signal.SIGHUP)
    local health = support.wait_for(function()
      local h = host:request("GET", "/health")
      return h.json.scripts.last_reload.ok == false and h or nil
    end, 10)
    assert.truthy(health)
    assert.equal(200, health.status)
    assert.equal(1, health.json.scripts.generation)
    assert.truthy(health.json.scripts.last_reload.error:find("broken.lua:1:", 1, true))
    assert.equal("one", host:request("GET", "/test/version").json.version)
    assert.truthy(host:log_text():find("broken.lua:1:", 1, true))
  end)

  it("refuses a generation whose route declaration is invalid", function()
    host = support.start { WORKERS = "1", FIXTURE_SCRIPTS = fixtures }
    write(fixtures .. "/routes/bad_route.lua",
      'local host = require "host"\nhost.route { method = "GET", path = "no-slash", handler = function() end }\n')
    host:signal(signal.SIGHUP)
    local health = support.wait_for(function()
      local h = host:request("GET", "/health").json
      return h.scripts.last_reload.ok == false and h or nil
    end, 10)
    assert.truthy(health.scripts.last_reload.error:find("bad_route.lua:2:", 1, true))
    assert.equal(1, health.scripts.generation)
  end)

  it("switches to a good generation without dropping a concurrent request", function()
    host = support.start { WORKERS = "2", FIXTURE_SCRIPTS = fixtures }
    assert.equal("one", host:request("GET", "/test/version").json.version)
    local c = assert(http.connect(host.port))
    assert(c:send(http.format("GET", "/test/sleep?seconds=1")))
    support.sleep(0.1)
    set_version("two")
    host:signal(signal.SIGHUP)
    local switched = support.wait_for(function()
      return host:request("GET", "/test/version").json.version == "two"
    end, 10)
    assert.truthy(switched)
    -- every worker serves the new generation
    for _ = 1, 10 do
      local v = host:request("GET", "/test/version").json
      assert.equal("two", v.version)
      assert.equal(2, v.generation)
    end
    local res = assert(c:read_response())
    assert.equal(200, res.status)
    assert.equal(1, res.json.slept)
    c:close()
    local health = host:request("GET", "/health").json
    assert.equal(2, health.scripts.generation)
    assert.is_true(health.scripts.last_reload.ok)
  end)

  it("stops an old generation's timers and starts the new one's", function()
    host = support.start { WORKERS = "1", FIXTURE_SCRIPTS = fixtures }
    assert.truthy(support.wait_for(function() return host:request("GET", "/test/timer/1").json.ticks > 2 end, 5))
    set_version("two")
    host:signal(signal.SIGHUP)
    assert.truthy(support.wait_for(function() return host:request("GET", "/test/timer/2").json.ticks > 2 end, 5))
    local before = host:request("GET", "/test/timer/1").json.ticks
    support.sleep(0.3)
    assert.equal(before, host:request("GET", "/test/timer/1").json.ticks)
    assert.truthy(host:request("GET", "/test/timer/2").json.ticks > 2)
  end)

  it("reloads on file changes in the development profile", function()
    host = support.start { WORKERS = "1", FIXTURE_SCRIPTS = fixtures, RELOAD_WATCH = "true",
                           RELOAD_DEBOUNCE_MS = "100" }
    set_version("watched")
    local ok = support.wait_for(function()
      return host:request("GET", "/test/version").json.version == "watched"
    end, 10)
    assert.truthy(ok)
  end)

  it("starts a respawned worker on the current generation", function()
    host = support.start { WORKERS = "1", FIXTURE_SCRIPTS = fixtures }
    set_version("three")
    host:signal(signal.SIGHUP)
    assert.truthy(support.wait_for(function()
      return host:request("GET", "/test/version").json.version == "three"
    end, 10))
    set_version("not-reloaded") -- on disk only
    signal.kill(host:workers()[1], signal.SIGKILL)
    local res = host:request_retry("GET", "/test/version", 10)
    assert.equal("three", res.json.version)
  end)
end)
