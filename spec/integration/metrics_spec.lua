-- metrics_spec.lua - GET /metrics of a real two-worker host: Prometheus text
-- that promtool accepts, counts summed over every worker whichever one
-- answers the scrape, histograms consistent with their counts, reloads, game
-- plays, login failures and WebSocket sessions (host/metrics.h).
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"
local ws = require "spec.support.ws"
local signal = support.signal
local write = support.write_file

-- The samples of a scrape: {name, labels = {k = v}, value}. Label values
-- of this host never hold an escaped quote, so a lazy match reads them.
local function parse(text)
  local samples = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local name, labels, value = line:match("^([%w_:]+){(.*)} (%S+)$")
      if not name then
        labels = ""
        name, value = line:match("^([%w_:]+) (%S+)$")
      end
      assert(name, "unparsable sample line: " .. line)
      local l = {}
      for k, v in labels:gmatch('([%w_]+)="(.-)"') do l[k] = v end
      samples[#samples + 1] = { name = name, labels = l, value = assert(tonumber(value), line) }
    end
  end
  return samples
end

-- The sum of the series of `name` whose labels include all of `want`.
local function sum(samples, name, want)
  local total = 0
  for _, s in ipairs(samples) do
    local match = s.name == name
    for k, v in pairs(want or {}) do match = match and s.labels[k] == v end
    if match then total = total + s.value end
  end
  return total
end

describe("GET /metrics", function()
  local host, fixtures

  local function scrape()
    local res = assert(host:request("GET", "/metrics"))
    assert.equal(200, res.status)
    return parse(res.body), res
  end

  -- Workers that logged an answer to `path` (the access log names them).
  local function workers_serving(path)
    local seen, n = {}, 0
    for w in host:log_text():gmatch('"worker":(%d+),"msg":"request","request_id":"[^"]*","method":"GET","path":"'
      .. path:gsub("%p", "%%%0") .. '"') do
      if not seen[w] then seen[w], n = true, n + 1 end
    end
    return n
  end

  setup(function()
    fixtures = os.tmpname()
    os.remove(fixtures)
    assert(os.execute("cp -r spec/fixtures/scripts " .. fixtures))
    host = support.start { WORKERS = "2", FIXTURE_SCRIPTS = fixtures }
  end)

  teardown(function()
    if host then host:stop() end
    os.execute("rm -rf " .. fixtures)
  end)

  it("is Prometheus text 0.0.4 that promtool check metrics accepts", function()
    -- Traffic first, so every kind of series is in the text.
    host:request("GET", "/health")
    host:request("HEAD", "/health")
    host:request("GET", "/no/such/path")
    host:request("POST", "/api/auth/login", { site_id = "nobody-" .. api.unique(), password = "wrong-password-1" })
    local _, res = scrape()
    assert.equal("text/plain; version=0.0.4; charset=utf-8", res.headers["content-type"])
    local file = os.tmpname()
    write(file, res.body)
    local p = assert(io.popen("promtool check metrics < " .. file .. " 2>&1; echo \"rc=$?\""))
    local out = p:read("*a")
    p:close()
    os.remove(file)
    assert.equal("rc=0\n", out)
  end)

  it("sums a route's requests over every worker, whichever answers the scrape", function()
    local path = "/api/games/gacha/config"
    local before = sum(scrape(), "cc_http_requests_total", { method = "GET", route = path })
    -- One connection per request, until both workers have served some.
    local n = 0
    repeat
      for _ = 1, 10 do
        assert.equal(200, host:request("GET", path).status)
        n = n + 1
      end
    until workers_serving(path) == 2 or n >= 500
    assert.equal(2, workers_serving(path))
    for _ = 1, 4 do -- scrapes land on either worker: each sees every worker's counts
      local after = sum(scrape(), "cc_http_requests_total", { method = "GET", route = path })
      assert.equal(before + n, after)
    end
  end)

  it("counts the scrape itself under its own route", function()
    local first = sum(scrape(), "cc_http_requests_total", { route = "/metrics", status = "200" })
    local second = sum(scrape(), "cc_http_requests_total", { route = "/metrics", status = "200" })
    assert.is_true(first >= 1)
    assert.equal(first + 1, second)
  end)

  it("labels requests no route takes as unmatched, by method", function()
    local samples = scrape()
    local before = sum(samples, "cc_http_requests_total", { method = "DELETE", route = "unmatched", status = "404" })
    local refused = sum(samples, "cc_http_requests_total", { method = "OTHER", route = "unmatched", status = "400" })
    assert.equal(404, host:request("DELETE", "/nothing/here").status)
    local c = assert(http.connect(host.port))
    c:send("NOT A REQUEST\r\n\r\n")
    assert.equal(400, c:read_response().status)
    c:close()
    samples = scrape()
    assert.equal(before + 1, sum(samples, "cc_http_requests_total", { method = "DELETE", route = "unmatched", status = "404" }))
    assert.equal(refused + 1, sum(samples, "cc_http_requests_total", { method = "OTHER", route = "unmatched", status = "400" }))
  end)

  it("keeps histogram buckets cumulative and consistent with the count", function()
    for _ = 1, 5 do host:request("GET", "/health") end
    local samples = scrape()
    local series = {}
    for _, s in ipairs(samples) do
      local base = s.name:match("^cc_http_request_duration_seconds_(%a+)$")
      if base then
        local key = s.labels.method .. " " .. s.labels.route
        series[key] = series[key] or { buckets = {} }
        if base == "bucket" then
          local le = s.labels.le == "+Inf" and math.huge or tonumber(s.labels.le)
          table.insert(series[key].buckets, { le = le, value = s.value })
        else
          series[key][base] = s.value
        end
      end
    end
    local health = assert(series["GET /health"])
    assert.is_true(health.count >= 5 and health.sum > 0)
    for key, h in pairs(series) do
      assert.equal(17, #h.buckets, key)
      for i = 2, #h.buckets do
        assert.is_true(h.buckets[i].le > h.buckets[i - 1].le, key)
        assert.is_true(h.buckets[i].value >= h.buckets[i - 1].value, key)
      end
      assert.equal(math.huge, h.buckets[#h.buckets].le)
      assert.equal(h.count, h.buckets[#h.buckets].value, key)
    end
    assert.equal(0.0001, series["GET /health"].buckets[1].le)
    assert.equal(10, series["GET /health"].buckets[16].le)
  end)

  it("counts a slot spin by game: plays, tokens staked and paid", function()
    local p = api.player(host, 1000)
    local samples = scrape()
    local plays = sum(samples, "cc_game_plays_total", { game = "slot" })
    local bets = sum(samples, "cc_game_bet_tokens_total", { game = "slot" })
    local paid = sum(samples, "cc_game_payout_tokens_total", { game = "slot" })
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers)
    assert.equal(200, spin.status)
    samples = scrape()
    assert.equal(plays + 1, sum(samples, "cc_game_plays_total", { game = "slot" }))
    assert.equal(bets + 10, sum(samples, "cc_game_bet_tokens_total", { game = "slot" }))
    assert.equal(paid + spin.json.win_amount, sum(samples, "cc_game_payout_tokens_total", { game = "slot" }))
  end)

  it("counts failed logins by reason", function()
    local a = api.signup(host)
    local before = sum(scrape(), "cc_login_failures_total", { reason = "invalid_credentials" })
    local res = host:request("POST", "/api/auth/login", { site_id = a.user.site_id, password = "not-the-password-1" })
    assert.equal(401, res.status)
    assert.equal(before + 1, sum(scrape(), "cc_login_failures_total", { reason = "invalid_credentials" }))
  end)

  it("shows open WebSocket sessions per worker", function()
    local c = assert(ws.connect(host.port, "/test/ws/echo"))
    assert.truthy(support.wait_for(function() return sum(scrape(), "cc_ws_connections") == 1 end, 5))
    c:shutdown()
    assert.truthy(support.wait_for(function() return sum(scrape(), "cc_ws_connections") == 0 end, 5))
  end)

  it("counts reloads by result and shows the generation served", function()
    local samples = scrape()
    local gen = sum(samples, "cc_script_generation")
    local ok = sum(samples, "cc_script_reload_total", { result = "ok" })
    local failed = sum(samples, "cc_script_reload_total", { result = "failed" })
    write(fixtures .. "/routes/broken.lua", "local x = = 1\n")
    host:signal(signal.SIGHUP)
    samples = support.wait_for(function()
      local s = scrape()
      return sum(s, "cc_script_reload_total", { result = "failed" }) == failed + 1 and s
    end, 10)
    assert.truthy(samples)
    assert.equal(gen, sum(samples, "cc_script_generation"))
    assert.equal(ok, sum(samples, "cc_script_reload_total", { result = "ok" }))
    os.remove(fixtures .. "/routes/broken.lua")
    host:signal(signal.SIGHUP)
    samples = support.wait_for(function()
      local s = scrape()
      return sum(s, "cc_script_reload_total", { result = "ok" }) == ok + 1 and s
    end, 10)
    assert.truthy(samples)
    assert.equal(gen + 1, sum(samples, "cc_script_generation"))
    -- The new generation keeps counting in the same series.
    local before = sum(samples, "cc_http_requests_total", { method = "GET", route = "/health" })
    host:request("GET", "/health")
    assert.equal(before + 1, sum(scrape(), "cc_http_requests_total", { method = "GET", route = "/health" }))
  end)
end)
