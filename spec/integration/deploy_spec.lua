-- deploy_spec.lua - the multi-instance deployment (docker/): the compose
-- file is valid for Debian's docker-compose 1.29.2 and names its services,
-- and the topology it describes runs for real without containers: two
-- `cchost serve` hosts sharing one PostgreSQL and one Redis, behind HAProxy
-- running docker/haproxy.cfg itself (spec/support/haproxy.lua). Both hosts
-- get traffic; a SIGHUP to each host in turn fails no request under steady
-- load; SIGKILL of one whole host (master and workers) fails at most the
-- requests it had in flight, and none once HAProxy's health check marked it
-- down.
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"
local ws = require "spec.support.ws"
local haproxy = require "spec.support.haproxy"
local cjson = require "cjson"
local socket = require "socket"

local SECRETS = "JWT_SECRET_KEY=spec-compose-secret-0123456789abcdef0123 POSTGRES_PASSWORD=spec-pw "
-- An empty env file: a developer's own docker/.env must not change what the
-- specs see.
local ENV_FILE = os.tmpname()
local COMPOSE = "docker-compose --env-file " .. ENV_FILE .. " -f docker/compose.yml"

-- Runs a shell command; returns its exit code and its output (LuaJIT's
-- popen close does not give the status: the shell prints it last).
local function run(cmd)
  local p = assert(io.popen("{ " .. cmd .. "; } 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return code, (out:gsub("exit=%d+%s*$", ""))
end

describe("docker/compose.yml", function()
  teardown(function() os.remove(ENV_FILE) end)

  it("is accepted by docker-compose config and names the services", function()
    local code, out = run(SECRETS .. COMPOSE .. " config")
    assert.equal(0, code, out)
    local services = {}
    code, out = run(SECRETS .. COMPOSE .. " config --services")
    assert.equal(0, code, out)
    for name in out:gmatch("[^\n]+") do services[#services + 1] = name end
    table.sort(services)
    assert.same({ "haproxy", "host1", "host2", "migrate", "postgres", "redis" }, services)
  end)

  it("wires the hosts after the one-shot migration and HAProxy to both hosts", function()
    local _, out = run(SECRETS .. COMPOSE .. " config")
    -- Each host waits for the migrations to complete and shares one database
    -- URL, Redis, secret and trusted proxy with the other.
    for _, h in ipairs { "host1", "host2" } do
      local block = out:match("\n  " .. h .. ":\n(.-)\n  %S") or ""
      assert.truthy(block:find("migrate:%s+condition: service_completed_successfully"), h)
      assert.truthy(block:find("DATABASE_URL: postgresql://casino:spec%-pw@postgres:5432/casino"), h)
      assert.truthy(block:find("JWT_SECRET_KEY: spec%-compose%-secret"), h)
      assert.truthy(block:find("REDIS_HOST: redis"), h)
      assert.truthy(block:find("TRUSTED_PROXIES: 172%.30%.57%.10"), h)
    end
    local migrate = out:match("\n  migrate:\n(.-)\n  %S") or ""
    assert.truthy(migrate:find("command:%s+%- migrate"))
    local lb = out:match("\n  haproxy:\n(.-)\n  %S") or out:match("\n  haproxy:\n(.*)$")
    assert.truthy(lb:find("ipv4_address: 172%.30%.57%.10"))
    assert.truthy(lb:find("haproxy%.cfg:/usr/local/etc/haproxy/haproxy%.cfg:ro"))
  end)

  it("refuses to render without the secrets", function()
    local code, out = run("env -u JWT_SECRET_KEY -u POSTGRES_PASSWORD " .. COMPOSE .. " config")
    assert.are_not.equal(0, code)
    assert.truthy(out:find("POSTGRES_PASSWORD", 1, true) or out:find("JWT_SECRET_KEY", 1, true), out)
  end)

  it("ships an HAProxy configuration that haproxy -c accepts", function()
    local code, out = run("LB_BIND=127.0.0.1:1 LB_HOST1=127.0.0.1:2 LB_HOST2=127.0.0.1:3 haproxy -c -f docker/haproxy.cfg")
    assert.equal(0, code, out)
  end)
end)

-- Writes all requests of a round on their connections, then reads every
-- answer: n requests in flight at once. reqs: { {method, path, body,
-- headers}, ... }. Returns responses (nil, err for a failed one).
local function round(conns, reqs, between)
  for i, r in ipairs(reqs) do
    local h = {}
    for k, v in pairs(r[4] or {}) do h[k] = v end
    local ok = conns[i] and conns[i]:send(http.format(r[1], r[2], r[3], h))
    if not ok then conns[i] = false end
  end
  if between then between() end
  local out = {}
  for i, r in ipairs(reqs) do
    local res, err
    if conns[i] then res, err = conns[i]:read_response(r[1] == "HEAD") end
    out[i] = res or { err = err or "closed" }
    -- A connection that failed, or that HAProxy closes, is replaced.
    if not res or (res.headers.connection or ""):lower() == "close" then
      if conns[i] then conns[i]:close() end
      conns[i] = false
    end
  end
  return out
end

local function reconnect(conns, port, n)
  for i = 1, n do
    if not conns[i] then conns[i] = http.connect(port, 15) or false end
  end
end

describe("two hosts behind HAProxy (docker/haproxy.cfg)", function()
  local one, two, lb, player

  setup(function()
    local shared = { WORKERS = "2", TRUSTED_PROXIES = "127.0.0.1",
                     ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
    one = support.start(shared)
    shared.DATABASE_URL = one.env.DATABASE_URL
    two = support.start(shared)
    lb = haproxy.start { hosts = { one.port, two.port }, check_inter = "100ms" }
    player = api.player(one, 1000000)
  end)

  teardown(function()
    if lb then lb:stop() end
    if two then two:stop() end
    if one then one:stop() end
  end)

  it("balances requests of one keep-alive connection over both hosts", function()
    local tag = "lb" .. api.unique()
    local c = assert(http.connect(lb.port))
    local served = {}
    for i = 1, 40 do
      local res = assert(c:request("GET", "/api/users/profile", nil,
        { Authorization = player.headers.Authorization, ["X-Request-Id"] = tag .. "-" .. i }))
      assert.equal(200, res.status)
      assert.equal(tag .. "-" .. i, res.headers["x-request-id"])
      local by = res.headers["x-served-by"]
      served[by] = (served[by] or 0) + 1
    end
    c:close()
    assert.same({ "host1", "host2" }, api.keys(served))
    assert.is_true(served.host1 >= 15 and served.host2 >= 15)
    -- The hosts' own access logs agree with HAProxy's header.
    local function logged(h)
      local n = 0
      for _ in h:log_text():gmatch('"request_id":"' .. tag .. '%-%d+"') do n = n + 1 end
      return n
    end
    assert.truthy(support.wait_for(function() return logged(one) + logged(two) == 40 end, 5))
    assert.same({ served.host1, served.host2 }, { logged(one), logged(two) })
  end)

  it("passes a notification WebSocket through", function()
    local sock, res = ws.connect(lb.port, "/ws/notifications/" .. player.id .. "?token=" .. player.access_token)
    assert.truthy(sock, res and res.status)
    assert.equal(101, res.status)
    assert(sock:send(cjson.encode { type = "ping" }))
    local op, payload
    repeat op, payload = sock:read_frame() until op ~= 9 -- skip server pings
    assert.equal(1, op)
    assert.equal("pong", cjson.decode(payload).type)
    sock:close()
    sock:shutdown()
  end)

  it("fails no request while each host in turn reloads on SIGHUP under steady load", function()
    local conns, n, failures, statuses = {}, 6, {}, {}
    local seq = 0
    local function load_round()
      reconnect(conns, lb.port, n)
      local reqs = {}
      for i = 1, n do
        if i % 2 == 0 then
          reqs[i] = { "GET", "/api/users/profile", nil, player.headers }
        else
          seq = seq + 1
          local h = { Authorization = player.headers.Authorization, ["Idempotency-Key"] = "hup-" .. api.unique() .. seq }
          reqs[i] = { "POST", "/api/games/slot/spin", { bet_amount = 10 }, h }
        end
      end
      for i, res in ipairs(round(conns, reqs)) do
        statuses[#statuses + 1] = res.status
        if res.status ~= 200 then failures[#failures + 1] = reqs[i][2] .. " -> " .. (res.status or res.err) end
      end
    end
    local function generation(h) return h:request("GET", "/health").json.scripts.generation end
    local total = 0
    for _, h in ipairs { one, two } do
      local before = generation(h)
      for _ = 1, 5 do load_round() end
      h:signal(support.signal.SIGHUP)
      local deadline = socket.gettime() + 15
      while generation(h) ~= before + 1 and socket.gettime() < deadline do load_round() end
      assert.equal(before + 1, generation(h))
      for _ = 1, 10 do load_round() end
    end
    for _, c in ipairs(conns) do if c then c:close() end end
    total = #statuses
    assert.same({}, failures)
    assert.is_true(total >= 150, "only " .. total .. " requests ran")
  end)

  it("keeps serving when one host's master and workers are killed: only its in-flight requests may fail", function()
    local conns, n = {}, 8
    reconnect(conns, lb.port, n)
    -- Warm: every connection answers, both hosts serve.
    local served = {}
    for _ = 1, 5 do
      for _, res in ipairs(round(conns, (function()
        local r = {}
        for i = 1, n do r[i] = { "GET", "/api/users/profile", nil, player.headers } end
        return r
      end)())) do
        assert.equal(200, res.status)
        served[res.headers["x-served-by"]] = true
      end
      reconnect(conns, lb.port, n)
    end
    assert.truthy(served.host1 and served.host2)
    -- In flight at the kill: GETs that sleep (HAProxy retries a GET whose
    -- host died before answering on the other host) and money POSTs (never
    -- retried by HAProxy: they may fail, and the client's Idempotency-Key
    -- makes its own retry safe).
    local reqs = {}
    for i = 1, n do
      if i % 2 == 1 then
        reqs[i] = { "GET", "/test/sleep?seconds=0.5", nil, nil }
      else
        reqs[i] = { "POST", "/api/games/slot/spin", { bet_amount = 10 },
                    { Authorization = player.headers.Authorization, ["Idempotency-Key"] = "kill-" .. api.unique() } }
      end
    end
    local killed_at
    local inflight = round(conns, reqs, function()
      support.sleep(0.1)
      two:kill_group()
      killed_at = socket.gettime()
    end)
    local failed_inflight = 0
    for i, res in ipairs(inflight) do
      if res.status ~= 200 then
        failed_inflight = failed_inflight + 1
        assert.equal("POST", reqs[i][1], "a GET in flight failed: " .. tostring(res.status or res.err))
      else
        if reqs[i][1] == "GET" then assert.equal("host1", res.headers["x-served-by"]) end
      end
    end
    assert.is_true(failed_inflight <= n / 2)
    -- Between the kill and the health check's verdict, connection failures
    -- are redispatched to host1: nothing fails.
    local after, failures = 0, {}
    local down_at
    -- Until half a second after HAProxy marked host2 down (3 s at most).
    local deadline = socket.gettime() + 3
    while socket.gettime() < deadline and not (down_at and socket.gettime() > down_at + 0.5) do
      reconnect(conns, lb.port, n)
      local r = {}
      for i = 1, n do r[i] = { "GET", "/api/users/profile", nil, player.headers } end
      for _, res in ipairs(round(conns, r)) do
        after = after + 1
        if res.status ~= 200 then failures[#failures + 1] = res.status or res.err end
        if res.status == 200 then assert.equal("host1", res.headers["x-served-by"]) end
      end
      if not down_at then
        local st = lb:states()
        if st and st.host2 and st.host2:find("^DOWN") then down_at = socket.gettime() end
      end
    end
    for _, c in ipairs(conns) do if c then c:close() end end
    assert.same({}, failures)
    assert.truthy(down_at, "HAProxy never marked host2 down")
    -- fall 2 checks, 100 ms apart, plus a check timeout at most.
    assert.is_true(down_at - killed_at < 2.5, "marked down after " .. (down_at - killed_at) .. " s")
    assert.is_true(after >= 40)
    assert.equal("UP", lb:states().host1)
  end)
end)
