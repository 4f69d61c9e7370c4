-- crash_spec.lua - the crash game end to end (CONTRACT.md §10, §13.6)
-- through a real host, PostgreSQL and a private redis-server per host (so
-- stopping or flushing it disturbs no other spec): bet/cashout/current
-- shapes, the single-active guard, concurrent cash-outs paying once, crashes
-- and auto cash-outs (by the player and by the sweeper), Redis down (503, no
-- money moved), Redis flushed mid-round (refunded or paid at the reached
-- target, never lost), CRASH_DB_STRICT with a failing database, bad bets and
-- the admin listing. Rounds that must end fast use the fixture route
-- POST /test/crash/config to raise the growth rate (one worker per host).
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"
local redis = require "spec.support.redis"
local cjson = require "cjson"

local CACHE_DOWN = "세션 서비스가 준비되지 않았습니다(캐시)"
local ALREADY_ACTIVE = "이미 진행 중인 크래시 세션이 있습니다."
local NO_SESSION = "진행 중인 크래시 세션을 찾을 수 없습니다."
local CANNOT = "캐시아웃을 수행할 수 없습니다."
local FAST = 0.05 -- growth per ms: 1000x within 139 ms
local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

local function iso_ms(text)
  local y, mo, d, hh, mm, ss, ms = text:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z$")
  return os.time { year = y, month = mo, day = d, hour = hh, min = mm, sec = ss } * 1000 + tonumber(ms)
end

local sh, free_port = redis.sh, redis.free_port
local redis_cli, redis_start, redis_stop = redis.cli, redis.start, redis.stop

-- A host with its own redis-server; env adds settings.
local function start(env)
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh("mkdir -p " .. dir))
  local port = free_port()
  redis_start(port, dir)
  local settings = {
    WORKERS = "1", REDIS_HOST = "127.0.0.1", REDIS_PORT = tostring(port),
    REDIS_COMMAND_TIMEOUT_MS = "300", REDIS_CONNECT_TIMEOUT_MS = "300",
    ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1",
    CRASH_SWEEP_INTERVAL_MS = "100", CRASH_SWEEP_GRACE_MS = "300",
  }
  for k, v in pairs(env or {}) do settings[k] = v end
  local h = support.start(settings)
  h.redis_port, h.redis_dir = port, dir
  return h
end

local function stop(h)
  if not h then return end
  h:stop()
  redis_stop(h.redis_port)
  sh("rm -rf " .. h.redis_dir)
end

local function sql(h, q) return api.sql(h, q) end
local function sql1(h, q)
  local row = sql(h, q)[1]
  return row and row[1]
end

local function balance(h, uid)
  return tonumber(sql1(h, "SELECT balance FROM wallet_balances WHERE user_id = " .. uid .. " AND currency = 'tokens'"))
end

-- What a request must leave untouched when it fails: money, plays, rounds.
local function footprint(h, uid)
  return table.concat(sql(h, "SELECT (SELECT balance FROM wallet_balances WHERE user_id = " .. uid
    .. " AND currency = 'tokens'), (SELECT count(*) FROM wallet_ledger WHERE user_id = " .. uid
    .. "), (SELECT count(*) FROM game_plays WHERE user_id = " .. uid
    .. "), (SELECT count(*) FROM crash_sessions WHERE user_id = " .. uid
    .. "), (SELECT count(*) FROM user_actions WHERE user_id = " .. uid
    .. "), (SELECT coalesce(max(next_nonce), 0) FROM fairness_seeds WHERE user_id = " .. uid .. ")")[1], ",")
    .. "|" .. redis_cli(h.redis_port, "exists crash:session:{" .. uid .. "}")
end

-- The crash point of a round: from its Redis session while it runs (no
-- record in the database shows it before the round ends), else from its
-- settled play row (the session is deleted only after the settlement commits).
local function crash_x100(h, user_id, game_id)
  local raw = redis_cli(h.redis_port, "get crash:session:{" .. user_id .. "}")
  local s = raw ~= "" and cjson.decode(raw)
  if s and s.session_id == game_id then return s.crash_x100 end
  return assert(tonumber(sql1(h, "SELECT outcome->>'crash_x100' FROM game_plays WHERE status = 'settled' "
    .. "AND outcome->>'game_id' = '" .. game_id .. "'")))
end

local function set_growth(h, rate)
  local res = h:request("POST", "/test/crash/config", rate and ('{"growth_rate":' .. rate .. '}') or '{"growth_rate":null}')
  assert.equal(200, res.status, res.body)
end

local player = api.player

local function bet(h, p, body)
  return h:request("POST", "/api/games/crash/bet", body, p.headers)
end

local function cashout(h, p, game_id)
  return h:request("POST", "/api/games/crash/cashout", { game_id = game_id }, p.headers)
end

-- Places bets until one has a crash point accepted by want(crash_x100);
-- the others are cashed out at once. Returns the bet answer and its crash point.
local function bet_until(h, p, body, want)
  for _ = 1, 30 do
    local res = bet(h, p, body)
    assert.equal(200, res.status, res.body)
    local x = crash_x100(h, p.id, res.json.game_id)
    if want(x) then return res.json, x end
    local c = cashout(h, p, res.json.game_id)
    assert.equal(200, c.status, c.body)
  end
  error("no round with the wanted crash point in 30 bets")
end

-- Waits until the play of the round is settled (by the sweeper).
local function wait_settled(h, game_id, timeout)
  return support.wait_for(function()
    return sql1(h, "SELECT status FROM game_plays WHERE outcome->>'game_id' = '" .. game_id .. "'") == "settled"
  end, timeout or 5)
end

describe("crash", function()
  local h

  before_each(function() h = start() end)
  after_each(function()
    stop(h)
    h = nil
  end)

  it("bets, reports the running round without its crash point, refuses a second bet, cashes out once", function()
    local p = player(h, 5000)
    local b, crash = bet_until(h, p, { bet_amount = 100 }, function(x) return x > 150 end)
    assert.is_true(b.success)
    assert.truthy(b.game_id:match("^%x+%-%x+%-%x+%-%x+%-%x+$"), b.game_id)
    assert.equal(100, b.bet_amount)
    assert.equal(100000, b.potential_win)
    assert.equal(1000, b.max_multiplier)
    assert.equal(cjson.null, b.auto_cashout_multiplier)
    assert.truthy(b.placed_at:match(ISO), b.placed_at)
    assert.equal(0.00006, b.growth_rate)
    assert.equal("Bet placed", b.message)
    assert.equal(balance(h, p.id), b.balance)
    assert.equal("number", type(b.play_id))
    assert.equal("number", type(b.nonce))
    assert.equal(64, #b.server_seed_hash)
    assert.equal("string", type(b.client_seed))
    assert.is_nil(b.crash_point)
    -- no record shows the crash point before the round ends
    assert.equal("none", sql1(h, "SELECT coalesce(outcome->>'crash_x100', 'none') FROM game_plays WHERE id = " .. b.play_id))
    assert.equal("0", sql1(h, "SELECT count(*) FROM user_actions WHERE user_id = " .. p.id
      .. " AND action_data::text LIKE '%crash_x100%'"))

    -- Redis: the round JSON with a TTL past its crash time, and the index.
    local key = "crash:session:{" .. p.id .. "}"
    local s = cjson.decode(redis_cli(h.redis_port, "get " .. key))
    assert.equal(b.game_id, s.session_id)
    assert.equal(0, s.game_id)
    assert.equal(p.id, s.user_id)
    assert.equal(100, s.bet_amount)
    assert.equal(crash, s.crash_x100)
    assert.equal(b.nonce, s.nonce)
    assert.equal("active", s.status)
    assert.truthy(tonumber(redis_cli(h.redis_port, "pttl " .. key)) > 120000)
    assert.equal(tostring(s.placed_at), redis_cli(h.redis_port, "zscore crash:active " .. p.id))

    local cur = h:request("GET", "/api/games/crash/current", nil, p.headers)
    assert.equal(200, cur.status, cur.body)
    assert.is_true(cur.json.active)
    assert.equal(b.game_id, cur.json.round.game_id)
    assert.equal("active", cur.json.round.status)
    assert.equal(cjson.null, cur.json.round.crash_point)
    assert.equal(cjson.null, cur.json.round.win_amount)
    assert.truthy(cur.json.round.multiplier >= 1)
    assert.falsy(cur.body:find("crash_x100", 1, true))

    local dbg = h:request("GET", "/api/games/crash/debug/current", nil, p.headers)
    assert.equal(200, dbg.status, dbg.body)
    assert.is_true(dbg.json.available)
    assert.equal(b.game_id, dbg.json.session.session_id)
    assert.equal(0, dbg.json.session.game_id)
    assert.equal("active", dbg.json.session.status)
    assert.falsy(dbg.body:find("crash", 1, true))

    local again = bet(h, p, { bet_amount = 10 })
    assert.equal(409, again.status, again.body)
    assert.equal(ALREADY_ACTIVE, again.json.detail)

    -- rotating the server seed would reveal the crash point
    local rot = h:request("POST", "/api/fairness/rotate", nil, p.headers)
    assert.equal(409, rot.status, rot.body)

    local before = balance(h, p.id)
    local c = cashout(h, p, b.game_id)
    assert.equal(200, c.status, c.body)
    assert.is_true(c.json.success)
    assert.equal("cashed", c.json.result)
    assert.equal(b.game_id, c.json.game_id)
    assert.truthy(c.json.cashed_out_at:match(ISO))
    local m = math.floor(c.json.multiplier * 100 + 0.5)
    assert.truthy(m >= 100 and m < crash, c.body)
    assert.equal(math.floor(100 * m / 100), c.json.payout)
    assert.equal(c.json.payout - 100, c.json.win_amount)
    assert.equal(before + c.json.payout, c.json.balance)
    assert.equal(c.json.balance, balance(h, p.id))

    local twice = cashout(h, p, b.game_id)
    assert.equal(404, twice.status)
    assert.equal(NO_SESSION, twice.json.detail)
    assert.equal("0", redis_cli(h.redis_port, "exists " .. key))
    assert.equal("", redis_cli(h.redis_port, "zscore crash:active " .. p.id))
    local none = h:request("GET", "/api/games/crash/current", nil, p.headers)
    assert.is_false(none.json.active)
    assert.equal(cjson.null, none.json.round)
    assert.same({ available = true, session = cjson.null },
      h:request("GET", "/api/games/crash/debug/current", nil, p.headers).json)

    -- the database side
    local play = sql(h, "SELECT status, payout, bet_amount, outcome->>'crash_x100' FROM game_plays WHERE id = "
      .. b.play_id)[1]
    assert.same({ "settled", tostring(c.json.payout), "100", tostring(crash) }, play)
    assert.equal(tostring(c.json.payout), sql1(h, "SELECT delta FROM wallet_ledger WHERE reason = 'game_payout' "
      .. "AND reference = 'crash:" .. b.game_id .. "'"))
    assert.equal("-100", sql1(h, "SELECT delta FROM wallet_ledger WHERE reason = 'game_bet' "
      .. "AND reference = 'play:" .. b.play_id .. "'"))
    assert.truthy(support.wait_for(function()
      return sql1(h, "SELECT status FROM crash_sessions WHERE external_session_id = '" .. b.game_id .. "'") == "cashed"
    end, 5))
    local row = sql(h, "SELECT cs.bet_amount, cs.payout_amount, cs.win_amount, cs.actual_multiplier * 100, "
      .. "cs.cashout_multiplier * 100, cs.cashed_out_at IS NOT NULL, cb.status, cb.payout_amount "
      .. "FROM crash_sessions cs JOIN crash_bets cb ON cb.session_id = cs.id WHERE cs.external_session_id = '"
      .. b.game_id .. "'")[1]
    assert.same({ "100", tostring(c.json.payout), tostring(c.json.win_amount), crash .. ".00", m .. ".00", "t",
      "cashed", tostring(c.json.payout) }, row)
    assert.equal("CRASH_BET,CRASH_CASHOUT", sql1(h, "SELECT string_agg(action_type, ',' ORDER BY id) FROM user_actions "
      .. "WHERE user_id = " .. p.id .. " AND action_type LIKE 'CRASH%' AND (action_data->>'play_id')::bigint = " .. b.play_id))
    assert.equal("1", sql1(h, "SELECT count(*) FROM outbox_events WHERE event_type = 'game.crash_settled' "
      .. "AND payload->>'game_id' = '" .. b.game_id .. "'"))
  end)

  it("answers 404 for a cash-out without a round, an unknown id or another user's round", function()
    local p, q = player(h), player(h)
    local none = cashout(h, p, "no-such-round")
    assert.equal(404, none.status)
    assert.equal(NO_SESSION, none.json.detail)
    local b = bet(h, q, { betAmount = 50 })
    assert.equal(200, b.status, b.body)
    local other = cashout(h, p, b.json.game_id)
    assert.equal(404, other.status)
    assert.equal(NO_SESSION, other.json.detail)
    local missing = h:request("POST", "/api/games/crash/cashout", {}, p.headers)
    assert.equal(422, missing.status)
    assert.same({ "body", "game_id" }, missing.json.detail[1].loc)
    local alias = h:request("POST", "/api/games/crash/cashout", { gameId = b.json.game_id }, q.headers)
    assert.equal(200, alias.status, alias.body)
  end)

  it("pays a concurrent double cash-out once", function()
    local p = player(h, 5000)
    local b = bet_until(h, p, { bet_amount = 100 }, function(x) return x > 150 end)
    local funds = balance(h, p.id)
    local body = cjson.encode { game_id = b.game_id }
    local headers = { Authorization = p.headers.Authorization, ["Content-Type"] = "application/json" }
    local answers = http.concurrent(h.port, 8, "POST", "/api/games/crash/cashout", body, headers)
    local ok, others = 0, 0
    for _, res in ipairs(answers) do
      if res.status == 200 then
        ok = ok + 1
        assert.equal("cashed", res.json.result)
      else
        others = others + 1
        assert.truthy(res.status == 409 and res.json.detail == CANNOT or res.status == 404 and res.json.detail == NO_SESSION,
          res.status .. " " .. tostring(res.body))
      end
    end
    assert.equal(1, ok)
    assert.equal(7, others)
    assert.equal("1", sql1(h, "SELECT count(*) FROM wallet_ledger WHERE reason = 'game_payout' AND reference = 'crash:"
      .. b.game_id .. "'"))
    local paid = tonumber(sql1(h, "SELECT payout FROM game_plays WHERE id = " .. b.play_id))
    assert.equal(funds + paid, balance(h, p.id))
  end)

  it("lets the sweeper settle an auto target and a crash, keeps the result until reported", function()
    set_growth(h, FAST)
    local p = player(h, 5000)
    local b = bet_until(h, p, { auto_cashout_multiplier = 1.01, bet_amount = 100 }, function(x) return x >= 101 end)
    assert.truthy(wait_settled(h, b.game_id), "the sweeper did not settle the auto target")
    assert.equal("0", redis_cli(h.redis_port, "exists crash:session:{" .. p.id .. "}"))
    assert.equal("", redis_cli(h.redis_port, "zscore crash:active " .. p.id))
    local after = balance(h, p.id)
    assert.equal("101", sql1(h, "SELECT payout FROM game_plays WHERE id = " .. b.play_id))
    local cur = h:request("GET", "/api/games/crash/current", nil, p.headers)
    assert.equal(200, cur.status, cur.body)
    assert.is_false(cur.json.active)
    assert.equal("cashed", cur.json.round.status)
    assert.equal(1.01, cur.json.round.multiplier)
    assert.equal(1, cur.json.round.win_amount)
    local c = cashout(h, p, b.game_id)
    assert.equal(200, c.status, c.body)
    assert.equal("cashed", c.json.result)
    assert.equal(1.01, c.json.multiplier)
    assert.equal(101, c.json.payout)
    assert.equal(after, c.json.balance)
    assert.equal(after, balance(h, p.id)) -- reporting pays nothing more
    assert.equal(404, cashout(h, p, b.game_id).status)

    -- a round nobody cashes out is settled crashed once the grace has passed
    local d = bet(h, p, { bet_amount = 10 })
    assert.equal(200, d.status, d.body)
    local crash = crash_x100(h, p.id, d.json.game_id)
    assert.truthy(wait_settled(h, d.json.game_id), "the sweeper did not settle the crash")
    cur = h:request("GET", "/api/games/crash/current", nil, p.headers)
    assert.same({ game_id = d.json.game_id, status = "crashed", crash_point = crash / 100, multiplier = crash / 100,
                  win_amount = 0 }, { game_id = cur.json.round.game_id, status = cur.json.round.status,
                  crash_point = cur.json.round.crash_point, multiplier = cur.json.round.multiplier,
                  win_amount = cur.json.round.win_amount })
    local r = cashout(h, p, d.json.game_id)
    assert.equal(200, r.status, r.body)
    assert.same({ success = false, result = "crashed", game_id = d.json.game_id, crash_point = crash / 100,
                  win_amount = 0, balance = after - 10 }, r.json)
    assert.equal(404, cashout(h, p, d.json.game_id).status)
  end)

  it("discards an unreported sweeper result at the next bet", function()
    set_growth(h, FAST)
    local p = player(h)
    local b = bet(h, p, { bet_amount = 10 })
    assert.equal(200, b.status, b.body)
    assert.truthy(wait_settled(h, b.json.game_id))
    assert.truthy(support.wait_for(function()
      return redis_cli(h.redis_port, "exists crash:result:{" .. p.id .. "}") == "1"
    end, 5))
    local n = bet(h, p, { bet_amount = 10 })
    assert.equal(200, n.status, n.body)
    assert.equal("0", redis_cli(h.redis_port, "exists crash:result:{" .. p.id .. "}"))
    assert.equal(404, cashout(h, p, b.json.game_id).status)
  end)

  it("refuses bad bets with 422 and short balances with 400, writing nothing", function()
    local p = player(h)
    local before = footprint(h, p.id)
    for _, raw in ipairs { '{"bet_amount":0}', '{"bet_amount":-1}', '{"bet_amount":1.5}', '{"bet_amount":"ten"}',
      '{"bet_amount":true}', '{"bet_amount":null}', '{"bet_amount":1000000000000}', '{"bet_amount":9}',
      '{"bet_amount":5001}', '{}', '{"bet_amount":10,"auto_cashout_multiplier":1.0}',
      '{"bet_amount":10,"autoCashout":1000.01}', '{"bet_amount":10,"auto_cashout":"x"}' } do
      local res = bet(h, p, raw)
      assert.equal(422, res.status, raw .. " -> " .. res.body)
    end
    local low = bet(h, p, '{"bet_amount":10,"autoCashoutMultiplier":1.004}')
    assert.same({ "body", "autoCashoutMultiplier" }, low.json.detail[1].loc)
    assert.equal("greater_than_equal", low.json.detail[1].type)
    local high = bet(h, p, '{"bet_amount":10,"auto_cashout":1000.01}')
    assert.same({ "body", "auto_cashout" }, high.json.detail[1].loc)
    assert.equal("less_than_equal", high.json.detail[1].type)
    local big = bet(h, p, '{"bet_amount":1000000000000}')
    assert.equal("less_than_equal", big.json.detail[1].type)
    assert.same({ "body", "bet_amount" }, big.json.detail[1].loc)

    local short = bet(h, p, { bet_amount = 201 })
    assert.equal(400, short.status)
    assert.equal("토큰이 부족합니다", short.json.detail)
    assert.equal(before, footprint(h, p.id))

    -- the boundaries are accepted: 1.01, and 1000.004 rounds to the cap
    local ok = bet(h, p, '{"bet_amount":10,"auto_cashout_multiplier":1000.004}')
    assert.equal(200, ok.status, ok.body)
    assert.equal(1000, ok.json.auto_cashout_multiplier)
  end)

  it("honours Idempotency-Key on bets", function()
    local p = player(h)
    local headers = { Authorization = p.headers.Authorization, ["Idempotency-Key"] = "crash-bet-1" }
    local first = h:request("POST", "/api/games/crash/bet", { bet_amount = 20 }, headers)
    assert.equal(200, first.status, first.body)
    local replay = h:request("POST", "/api/games/crash/bet", { bet_amount = 20 }, headers)
    assert.equal(200, replay.status, replay.body)
    assert.equal("true", replay.headers["idempotent-replayed"])
    assert.equal(first.json.game_id, replay.json.game_id)
    assert.equal("1", sql1(h, "SELECT count(*) FROM game_plays WHERE user_id = " .. p.id))
    assert.equal("active", cjson.decode(redis_cli(h.redis_port, "get crash:session:{" .. p.id .. "}")).status)
    local c = h:request("POST", "/api/games/crash/cashout", { game_id = first.json.game_id },
      { Authorization = p.headers.Authorization, ["Idempotency-Key"] = "crash-cash-1" })
    assert.equal(200, c.status, c.body)
    assert.equal("0", redis_cli(h.redis_port, "exists crash:session:{" .. p.id .. "}"))
  end)

  it("answers 503 while Redis is down, moving no money, and serves again once it is back", function()
    local p = player(h, 5000)
    local b = bet_until(h, p, { bet_amount = 100 }, function(x) return x > 150 end)
    local funds = balance(h, p.id)
    local before = footprint(h, p.id)
    redis_stop(h.redis_port)
    for _, res in ipairs {
      bet(h, p, { bet_amount = 10 }), cashout(h, p, b.game_id),
      h:request("GET", "/api/games/crash/current", nil, p.headers),
    } do
      assert.equal(503, res.status, res.body)
      assert.equal(CACHE_DOWN, res.json.detail)
    end
    local dbg = h:request("GET", "/api/games/crash/debug/current", nil, p.headers)
    assert.equal(200, dbg.status)
    assert.same({ available = false, session = cjson.null }, dbg.json)
    assert.equal(before:gsub("|.*", ""), footprint(h, p.id):gsub("|.*", ""))

    -- Redis comes back empty: the lost round is refunded by the sweeper and
    -- bets work again.
    redis_start(h.redis_port, h.redis_dir)
    assert.truthy(wait_settled(h, b.game_id, 10), "the lost round was not settled")
    assert.equal(funds + 100, balance(h, p.id))
    assert.truthy(support.wait_for(function() return bet(h, p, { bet_amount = 10 }).status == 200 end, 10))
  end)

  it("refunds a round whose Redis state was flushed, or pays it at a reached auto target", function()
    local p = player(h, 5000)
    local b = bet_until(h, p, { bet_amount = 100 }, function(x) return x > 150 end)
    local funds = balance(h, p.id)
    assert.equal("OK", redis_cli(h.redis_port, "flushall"))
    assert.truthy(wait_settled(h, b.game_id), "the flushed round was not settled")
    assert.equal(funds + 100, balance(h, p.id))
    assert.equal("100", sql1(h, "SELECT delta FROM wallet_ledger WHERE reason = 'game_refund' AND reference = 'crash:"
      .. b.game_id .. "'"))
    assert.equal("100", sql1(h, "SELECT payout FROM game_plays WHERE id = " .. b.play_id))
    assert.truthy(support.wait_for(function()
      return sql1(h, "SELECT cs.status || '/' || cb.status FROM crash_sessions cs JOIN crash_bets cb ON cb.session_id = cs.id "
        .. "WHERE cs.external_session_id = '" .. b.game_id .. "'") == "expired/refunded"
    end, 5))
    assert.equal(404, cashout(h, p, b.game_id).status)

    -- with an auto target its crash point reaches (default growth: 2x only after 11 s)
    local a, crash = bet_until(h, p, { bet_amount = 100, auto_cashout_multiplier = 2 }, function(x) return x >= 200 end)
    assert.truthy(crash >= 200)
    local before = balance(h, p.id)
    assert.equal("OK", redis_cli(h.redis_port, "flushall"))
    assert.truthy(wait_settled(h, a.game_id), "the flushed round was not settled")
    assert.equal(before + 200, balance(h, p.id))
    assert.equal("200", sql1(h, "SELECT delta FROM wallet_ledger WHERE reason = 'game_payout' AND reference = 'crash:"
      .. a.game_id .. "'"))
    assert.equal("0", sql1(h, "SELECT count(*) FROM wallet_ledger WHERE reason = 'game_refund' AND reference = 'crash:"
      .. a.game_id .. "'"))
  end)

  it("lists crash rounds for admins", function()
    local admin, p = player(h), player(h)
    api.make_admin(h, admin.id)
    local b = bet_until(h, p, { bet_amount = 30, auto_cashout_multiplier = 3 }, function(x) return x > 150 end)
    assert.truthy(support.wait_for(function()
      return sql1(h, "SELECT count(*) FROM crash_sessions WHERE external_session_id = '" .. b.game_id .. "'") == "1"
    end, 5))
    local res = h:request("GET", "/api/admin/crash/sessions?user_id=" .. p.id .. "&status=active", nil, admin.headers)
    assert.equal(200, res.status, res.body)
    assert.equal(1, res.json.count)
    local item = res.json.items[1]
    assert.equal(b.game_id, item.external_session_id)
    assert.equal(p.id, item.user_id)
    assert.equal(0, item.game_id)
    assert.equal(30, item.bet_amount)
    assert.equal("active", item.status)
    assert.equal(3, item.auto_cashout_multiplier)
    assert.equal(cjson.null, item.crash_point)
    assert.equal(cjson.null, item.cashout_multiplier)
    assert.equal(b.nonce, item.nonce)
    assert.equal(b.server_seed_hash, item.server_seed_hash)
    assert.truthy(item.started_at:match(ISO))
    assert.equal(cjson.null, item.cashed_out_at)
    assert.equal("number", type(item.id))

    assert.equal(200, cashout(h, p, b.game_id).status)
    assert.truthy(support.wait_for(function()
      local r = h:request("GET", "/api/admin/crash/sessions?user_id=" .. p.id, nil, admin.headers).json.items[1]
      return r.status == "cashed" and r.crash_point ~= cjson.null
    end, 5))
    local all = h:request("GET", "/api/admin/crash/sessions?limit=1", nil, admin.headers)
    assert.equal(1, all.json.count)
    local crashed = h:request("GET", "/api/admin/crash/sessions?status=crashed&user_id=" .. p.id, nil, admin.headers).json
    assert.equal(tonumber(sql1(h, "SELECT count(*) FROM crash_sessions WHERE status = 'crashed'")), crashed.count)
    for _, r in ipairs(crashed.items) do assert.equal("crashed", r.status) end
    local bad = h:request("GET", "/api/admin/crash/sessions?status=done", nil, admin.headers)
    assert.equal(422, bad.status)
    assert.equal("literal_error", bad.json.detail[1].type)
    assert.equal(422, h:request("GET", "/api/admin/crash/sessions?limit=501", nil, admin.headers).status)
    assert.equal(422, h:request("GET", "/api/admin/crash/sessions?user_id=0", nil, admin.headers).status)
    assert.equal(403, h:request("GET", "/api/admin/crash/sessions", nil, p.headers).status)
  end)
end)

describe("crash with CRASH_DB_STRICT", function()
  local h
  before_each(function() h = start { CRASH_DB_STRICT = "1", DEBUG_ROUTES = "false" } end)
  after_each(function()
    stop(h)
    h = nil
  end)

  local BLOCK = "ALTER TABLE crash_sessions ADD CONSTRAINT spec_block CHECK (false) NOT VALID"
  local UNBLOCK = "ALTER TABLE crash_sessions DROP CONSTRAINT spec_block"

  it("writes the round rows with the money, and a failing write changes neither Redis nor balances", function()
    local p = player(h)
    assert.equal(404, h:request("GET", "/api/games/crash/debug/current", nil, p.headers).status) -- DEBUG_ROUTES off
    local before = footprint(h, p.id)
    sql(h, BLOCK)
    local res = bet(h, p, { bet_amount = 50 })
    assert.equal(500, res.status, res.body)
    assert.equal(before, footprint(h, p.id))
    assert.equal("0", redis_cli(h.redis_port, "exists crash:session:{" .. p.id .. "}"))
    sql(h, UNBLOCK)

    local b = bet_until(h, p, { bet_amount = 50 }, function(x) return x > 150 end)
    -- in the bet's own transaction: there at once
    assert.equal("active/placed", sql1(h, "SELECT cs.status || '/' || cb.status FROM crash_sessions cs "
      .. "JOIN crash_bets cb ON cb.session_id = cs.id WHERE cs.external_session_id = '" .. b.game_id .. "'"))

    local funds = balance(h, p.id)
    sql(h, BLOCK)
    local c = cashout(h, p, b.game_id)
    assert.equal(500, c.status, c.body)
    assert.equal(funds, balance(h, p.id))
    local s = cjson.decode(redis_cli(h.redis_port, "get crash:session:{" .. p.id .. "}"))
    assert.equal("active", s.status) -- handed back, cash-out may be retried
    sql(h, UNBLOCK)
    local ok = cashout(h, p, b.game_id)
    assert.equal(200, ok.status, ok.body)
    assert.equal("cashed", sql1(h, "SELECT status FROM crash_sessions WHERE external_session_id = '" .. b.game_id .. "'"))
  end)
end)

describe("crash without CRASH_DB_STRICT", function()
  local h
  before_each(function() h = start() end)
  after_each(function()
    stop(h)
    h = nil
  end)

  it("keeps playing when the crash_sessions write fails", function()
    local p = player(h, 5000)
    sql(h, "ALTER TABLE crash_sessions ADD CONSTRAINT spec_block CHECK (false) NOT VALID")
    local b = bet_until(h, p, { bet_amount = 50 }, function(x) return x > 150 end)
    local funds = balance(h, p.id)
    local c = cashout(h, p, b.game_id)
    assert.equal(200, c.status, c.body)
    assert.equal("cashed", c.json.result)
    assert.equal(funds + c.json.payout, balance(h, p.id))
    assert.equal("0", sql1(h, "SELECT count(*) FROM crash_sessions"))
    assert.truthy(support.wait_for(function()
      return h:log_text():find("crash_sessions write of round", 1, true)
    end, 5))
  end)
end)

describe("crash without a running sweeper", function()
  local h
  before_each(function() h = start { CRASH_SWEEP_INTERVAL_MS = "600000" } end)
  after_each(function()
    stop(h)
    h = nil
  end)

  it("closes an active-looking session whose play was already settled instead of failing the next bet", function()
    set_growth(h, FAST)
    local p = player(h, 5000)
    local b = bet(h, p, { bet_amount = 10 })
    assert.equal(200, b.status, b.body)
    local key = "crash:session:{" .. p.id .. "}"
    local s = cjson.decode(redis_cli(h.redis_port, "get " .. key))
    support.sleep(0.2) -- crashed by now at this growth rate
    assert.equal(200, cashout(h, p, b.json.game_id).status)
    -- as if the round's Redis clean-up had been lost: the session is back, "active"
    assert.equal("OK", redis_cli(h.redis_port, "set " .. key .. " '" .. cjson.encode(s) .. "' px 60000"))
    support.sleep(0.5) -- past the crash time plus CRASH_SWEEP_GRACE_MS: the round counts as decided
    local before = balance(h, p.id)
    local again = bet(h, p, { bet_amount = 10 })
    assert.equal(200, again.status, again.body)
    assert.are_not.equal(b.json.game_id, again.json.game_id)
    assert.equal(before - 10, balance(h, p.id))
    assert.equal(404, cashout(h, p, b.json.game_id).status)
  end)

  it("closes a claimed session whose play was settled but whose closing was lost", function()
    local p = player(h, 5000)
    local b = bet_until(h, p, { bet_amount = 10 }, function(x) return x > 150 end)
    local key = "crash:session:{" .. p.id .. "}"
    local s = cjson.decode(redis_cli(h.redis_port, "get " .. key))
    assert.equal(200, cashout(h, p, b.game_id).status)
    s.status = "settling" -- as if the cash-out's Redis clean-up never happened
    assert.equal("OK", redis_cli(h.redis_port, "set " .. key .. " '" .. cjson.encode(s) .. "' px 60000"))
    redis_cli(h.redis_port, "zadd crash:active " .. string.format("%d", s.placed_at) .. " " .. p.id)
    local busy = bet(h, p, { bet_amount = 10 })
    assert.equal(409, busy.status, busy.body)
    assert.equal(409, cashout(h, p, b.game_id).status)
    assert.equal(200, h:request("POST", "/test/crash/sweep").status)
    assert.equal("0", redis_cli(h.redis_port, "exists " .. key))
    assert.equal("", redis_cli(h.redis_port, "zscore crash:active " .. p.id))
    assert.equal(200, bet(h, p, { bet_amount = 10 }).status)
  end)

  it("repairs a session row left active after its round settled, so the seed can rotate again", function()
    local p = player(h, 5000)
    local b = bet_until(h, p, { bet_amount = 10 }, function(x) return x > 150 end)
    assert.equal(200, cashout(h, p, b.game_id).status)
    assert.truthy(support.wait_for(function()
      return sql1(h, "SELECT status FROM crash_sessions WHERE external_session_id = '" .. b.game_id .. "'") == "cashed"
    end, 5))
    -- as if the non-strict write of the settlement had failed after the money commit
    sql(h, "UPDATE crash_sessions SET status = 'active', payout_amount = NULL WHERE external_session_id = '"
      .. b.game_id .. "'")
    assert.equal(409, h:request("POST", "/api/fairness/rotate", nil, p.headers).status)
    assert.equal(200, h:request("POST", "/test/crash/sweep").status)
    assert.same({ "cashed", sql1(h, "SELECT payout FROM game_plays WHERE id = " .. b.play_id) },
      sql(h, "SELECT status, payout_amount FROM crash_sessions WHERE external_session_id = '" .. b.game_id .. "'")[1])
    assert.equal("cashed", sql1(h, "SELECT b.status FROM crash_bets b JOIN crash_sessions s ON s.id = b.session_id "
      .. "WHERE s.external_session_id = '" .. b.game_id .. "'"))
    assert.equal(200, h:request("POST", "/api/fairness/rotate", nil, p.headers).status)
  end)

  it("reports crashed for a cash-out after the crash point", function()
    set_growth(h, FAST)
    local p = player(h)
    local b = bet(h, p, { bet_amount = 100 })
    assert.equal(200, b.status, b.body)
    assert.equal(FAST, b.json.growth_rate)
    local crash = crash_x100(h, p.id, b.json.game_id)
    support.sleep(0.2) -- every crash time is under 139 ms at this rate
    local c = cashout(h, p, b.json.game_id)
    assert.equal(200, c.status, c.body)
    assert.same({ success = false, result = "crashed", game_id = b.json.game_id, crash_point = crash / 100,
                  win_amount = 0, balance = 100 }, c.json)
    assert.equal(100, balance(h, p.id))
    assert.equal("0", sql1(h, "SELECT count(*) FROM wallet_ledger WHERE reason = 'game_payout' AND user_id = " .. p.id))
    assert.same({ "settled", "0" }, sql(h, "SELECT status, payout FROM game_plays WHERE id = " .. b.json.play_id)[1])
    assert.equal(404, cashout(h, p, b.json.game_id).status)
    assert.truthy(support.wait_for(function()
      return sql1(h, "SELECT status || '/' || actual_multiplier * 100 FROM crash_sessions WHERE external_session_id = '"
        .. b.json.game_id .. "'") == "crashed/" .. crash .. ".00"
    end, 5))
    assert.equal("lost", sql1(h, "SELECT cb.status FROM crash_bets cb JOIN crash_sessions cs ON cs.id = cb.session_id "
      .. "WHERE cs.external_session_id = '" .. b.json.game_id .. "'"))
    assert.equal("1", sql1(h, "SELECT count(*) FROM user_actions WHERE action_type = 'CRASH_LOST' AND user_id = " .. p.id))
  end)

  it("honours the auto cash-out target on a late cash-out", function()
    set_growth(h, FAST)
    local p = player(h, 5000)
    local b, crash = bet_until(h, p, { autoCashout = 1.5, bet_amount = 10 }, function(x) return x >= 150 end)
    assert.equal(1.5, b.auto_cashout_multiplier)
    assert.equal(15, b.potential_win)
    support.sleep(0.2)
    local c = cashout(h, p, b.game_id)
    assert.equal(200, c.status, c.body)
    assert.equal("cashed", c.json.result)
    assert.equal(1.5, c.json.multiplier)
    assert.equal(15, c.json.payout)
    assert.equal(5, c.json.win_amount)
    assert.truthy(crash >= 150)
    assert.equal(c.json.balance, balance(h, p.id))
    -- cashed when the multiplier reached 1.5 (9 ms at this rate), not at the late request
    local waited = iso_ms(c.json.cashed_out_at) - iso_ms(b.placed_at)
    assert.truthy(waited >= 8 and waited < 100, waited)
  end)

  it("settles a decided round at the next bet and refuses one still within its grace", function()
    set_growth(h, FAST)
    local p = player(h)
    local b = bet(h, p, { bet_amount = 10 })
    assert.equal(200, b.status, b.body)
    local early = bet(h, p, { bet_amount = 10 }) -- crashed at most 139 ms ago: within the 300 ms grace
    assert.equal(409, early.status, early.body)
    assert.equal(ALREADY_ACTIVE, early.json.detail)
    support.sleep(0.5)
    local n = bet(h, p, { bet_amount = 10 })
    assert.equal(200, n.status, n.body)
    assert.same({ "settled", "0" }, sql(h, "SELECT status, payout FROM game_plays WHERE id = " .. b.json.play_id)[1])
    assert.equal("1", sql1(h, "SELECT count(*) FROM user_actions WHERE action_type = 'CRASH_LOST' AND user_id = " .. p.id))
    assert.equal(404, cashout(h, p, b.json.game_id).status)
    assert.equal(180, balance(h, p.id))

    -- a reached auto target needs no grace
    support.sleep(0.5)
    assert.equal(200, bet(h, p, { bet_amount = 10 }).status) -- settles n (crashed)
    support.sleep(0.5)
    local a = bet_until(h, p, { bet_amount = 10, auto_cashout_multiplier = 1.5 }, function(x) return x >= 150 end)
    local funds = balance(h, p.id)
    support.sleep(0.2)
    local again = bet(h, p, { bet_amount = 10 })
    assert.equal(200, again.status, again.body)
    assert.equal("15", sql1(h, "SELECT payout FROM game_plays WHERE id = " .. a.play_id))
    assert.equal(funds + 15 - 10, balance(h, p.id))
  end)
end)
