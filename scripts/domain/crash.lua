--[[ crash.lua - crash rounds (CONTRACT.md §10): bet, cash-out, reading the
round, and the sweeper that settles abandoned and lost rounds.

A round lives in Redis while it runs; PostgreSQL holds the money and the
play row, so losing Redis never loses money:
  crash:session:{<uid>}  the round JSON {session_id, game_id:0, user_id,
                         bet_amount, placed_at (ms), auto_cashout_x100,
                         crash_x100, nonce, status, play_id, growth_rate},
                         written with SET NX: the single-active guard;
  crash:active           sorted set, score placed_at, member user id: the
                         sweeper's index;
  crash:result:{<uid>}   a round the sweeper settled, until a cash-out
                         reports it (TTL CRASH_RESULT_TTL_S).
Every time of a round (placed_at, the moment a cash-out is evaluated, the
sweeper's now) is Redis TIME, so hosts with skewed clocks agree.

Session status: "placing" (the guard, while the bet's transaction runs),
"active", "settling" (claimed: exactly one request or sweeper settles it).
The claim is a compare-and-set in a Redis script, so concurrent cash-outs
credit once. Settlement is one database transaction (payout, play row
settled, action, outbox, progress); on failure the claim is handed back.
Scripts touch only one user's keys (one hash slot); crash:active is updated
outside them (DESIGN.md, "Scaling out").

CRASH_DB_STRICT governs the crash_sessions/crash_bets rows only: strict, they
are written inside the money transaction (a failure aborts it, before any
Redis change); otherwise in a second transaction after it, whose failure is
logged and counted but does not fail the operation.

The pending game_plays row carries the round in its outcome ({game_id,
auto_cashout_x100, placed_at}; the crash point joins it at settlement, so no
record shows it before the round ends), so a round whose Redis state is gone
is settled from the database alone, its crash point re-derived from the seed
pair: paid at its auto target when the crash point reached it, otherwise
refunded.
]]

local host = require "host"
local errors = require "lib.errors"
local json = require "json"
local redis = require "host.redis"
local db = require "host.db"
local store = require "lib.store"
local fair = require "lib.fair"
local game = require "games.crash"
local plays = require "domain.plays"
local wallet = require "domain.wallet"
local fairness = require "domain.fairness"
local events_log = require "domain.events_log"
local progress = require "domain.progress"
local metrics = require "domain.metrics"

local M = {}


local ACTIVE_INDEX = "crash:active"
local SWEEP_LEASE = "crash:sweep:lease"
local SESSION_AFTER_CRASH_MS = 120000 -- session TTL = crash time + 120 s
local PLACING_TTL_MS = 30000          -- the guard outlives any bet transaction
local SWEEP_BATCH = 100               -- lost rounds settled per sweep

--- Per-worker counters: failures of the non-strict crash_sessions/crash_bets
--- writes (cc_crash_db_errors_total), and sweeps that found a lost round
--- already settled by a cash-out racing them (normal, logged at debug).
M.stats = { db_errors = 0, sweeper_lost_races = 0 }

local function session_key(user_id) return "crash:session:{" .. user_id .. "}" end
local function result_key(user_id) return "crash:result:{" .. user_id .. "}" end

-- Redis scripts. Each touches only the keys of one user.

-- transition(session_id, from, to) -> {"ok", json, sec, usec} after moving
-- the session from status `from` to `to`, else {current status | "none"}.
local TRANSITION = [[
local raw = redis.call('GET', KEYS[1])
if not raw then return {'none'} end
local s = cjson.decode(raw)
if s.session_id ~= ARGV[1] then return {'none'} end
if s.status ~= ARGV[2] then return {s.status} end
s.status = ARGV[3]
local out = cjson.encode(s)
redis.call('SET', KEYS[1], out, 'KEEPTTL')
local t = redis.call('TIME')
return {'ok', out, t[1], t[2]}
]]

-- complete(session_id, json, ttl_ms) -> 1 when the guard was still ours and
-- now holds the round; a pending sweeper result is discarded.
local COMPLETE = [[
local raw = redis.call('GET', KEYS[1])
if not raw or cjson.decode(raw).session_id ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
]]

-- finish(session_id, result_json | "", ttl_s): deletes the session if it is
-- still this round's and stores the result to report, if any.
local FINISH = [[
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).session_id == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return 1
]]

-- take_result(game_id) -> the stored result of that round, deleted, or nil.
local TAKE_RESULT = [[
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw).game_id == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return raw
end
return false
]]

-- unindex(user_id, placed_at): drops the index entry only if it is still
-- this round's (a newer round of the user has a later score).
local UNINDEX = [[
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
]]

-- True for the errors of a Redis that cannot answer (down, timeout, loading).
local function unreachable(err)
  return err:find("^redis ") ~= nil or err:find("^LOADING") ~= nil
end

-- Runs a Redis command; Redis out of reach is the contract's 503, any other
-- error reply a plain error (500).
local function rcall(...)
  local reply, err = redis.call(...)
  if err then
    if unreachable(err) then
      host.log.warn("crash: redis unavailable", { error = err })
      errors.raise("CRASH_CACHE_UNAVAILABLE")
    end
    error("crash: redis " .. tostring(select(1, ...)) .. ": " .. err, 0)
  end
  return reply
end

local function eval(script, keys, ...)
  local args = { "EVAL", script, #keys }
  for _, k in ipairs(keys) do args[#args + 1] = k end
  for i = 1, select("#", ...) do args[#args + 1] = (select(i, ...)) end
  return rcall(unpack(args, 1, #args))
end

local function to_ms(sec, usec)
  return tonumber(sec) * 1000 + math.floor(tonumber(usec) / 1000)
end

-- Redis TIME in ms.
local function redis_now_ms()
  local t = rcall("TIME")
  return to_ms(t[1], t[2])
end

-- Text of an error for the log.
local function describe(err)
  return tostring(host.is_http_error(err) and err.detail or err)
end

-- Runs fn once the caller's transaction has committed (at once outside one).
-- The money is settled by then, so a failure (Redis gone) is logged and left
-- to the sweeper and the session TTL, never turned into a failed answer.
local function after_commit(what, fn)
  db.after_commit(function()
    local ok, err = pcall(fn)
    if not ok then host.log.error("crash: " .. what .. " failed", { error = describe(err) }) end
  end)
end

local function strict()
  return host.config.get("CRASH_DB_STRICT")
end

local function x100_to_number(x) return x and x / 100 or json.null end

local function decode_session(raw)
  local s = assert(json.decode(raw))
  if s.auto_cashout_x100 == json.null then s.auto_cashout_x100 = nil end
  return s
end

-- The cash-out rule (games/crash.lua) with the configured grace: what the
-- sweeper (and a new bet) may settle without the player.
local function decided(s, now_ms)
  return game.decided(s, now_ms, host.config.get("CRASH_SWEEP_GRACE_MS"))
end
local evaluate = game.evaluate

-- crash_sessions/crash_bets rows ----------------------------------------------

-- Writes the round's crash_sessions row from its play row (insert or
-- update: a non-strict write may have failed before) and its crash_bets row.
-- f: status, bet_status, crash_x100, cashout_x100, payout, win_amount,
-- cashed_out_at (nil while active). A new active row first retires any other
-- active row of the user: the Redis guard and the pending play are the
-- authority, so such a row is the stale record of a failed non-strict write.
local function write_rows(game_id, play_id, f)
  if f.status == "active" then
    store.defer("UPDATE crash_sessions SET status = 'expired', updated_at = now() "
      .. "WHERE user_id = (SELECT user_id FROM game_plays WHERE id = $1) AND status = 'active' "
      .. "AND external_session_id <> $2", play_id, game_id)
  end
  local session = store.one("INSERT INTO crash_sessions (external_session_id, user_id, game_play_id, bet_amount, "
    .. "status, auto_cashout_multiplier, actual_multiplier, cashout_multiplier, payout_amount, win_amount, nonce, "
    .. "server_seed_hash, started_at, cashed_out_at) "
    .. "SELECT $1, p.user_id, p.id, p.bet_amount, $3, (p.outcome->>'auto_cashout_x100')::numeric / 100, "
    .. "$4::numeric / 100, $5::numeric / 100, $6, $7, p.nonce, p.server_seed_hash, "
    .. "(p.outcome->>'placed_at')::timestamptz, $8::timestamptz FROM game_plays p WHERE p.id = $2 "
    .. "ON CONFLICT (external_session_id) DO UPDATE SET status = EXCLUDED.status, "
    .. "actual_multiplier = EXCLUDED.actual_multiplier, cashout_multiplier = EXCLUDED.cashout_multiplier, "
    .. "payout_amount = EXCLUDED.payout_amount, win_amount = EXCLUDED.win_amount, "
    .. "cashed_out_at = EXCLUDED.cashed_out_at, updated_at = now() RETURNING id, user_id, bet_amount",
    game_id, play_id, f.status, f.crash_x100, f.cashout_x100, f.payout, f.win_amount or 0, f.cashed_out_at)
  -- the round's bet row: updated, or inserted the first time (one deferred
  -- statement: it travels with the COMMIT)
  store.defer("WITH u AS (UPDATE crash_bets SET status = $6, payout_amount = $4, "
    .. "cashout_multiplier = $5::numeric / 100, cashed_out_at = $7::timestamptz WHERE session_id = $1 RETURNING 1) "
    .. "INSERT INTO crash_bets (session_id, user_id, bet_amount, payout_amount, cashout_multiplier, status, "
    .. "cashed_out_at) SELECT $1, $2, $3, $4, $5::numeric / 100, $6, $7::timestamptz "
    .. "WHERE NOT EXISTS (SELECT 1 FROM u)",
    session.id, session.user_id, session.bet_amount, f.payout, f.cashout_x100, f.bet_status, f.cashed_out_at)
end

-- Writes the rows per CRASH_DB_STRICT: strict, now (the caller's money
-- transaction); otherwise after it commits, in a transaction of their own
-- whose failure is logged and counted.
local function record_rows(game_id, play_id, f)
  if strict() then return write_rows(game_id, play_id, f) end
  after_commit("crash_sessions write of round " .. game_id, function()
    local ok, err = pcall(store.tx, function() write_rows(game_id, play_id, f) end)
    if not ok then
      M.stats.db_errors = M.stats.db_errors + 1
      host.metrics.add("cc_crash_db_errors_total")
      error(err, 0)
    end
  end)
end

-- Settlement -----------------------------------------------------------------

-- Raised by settle_in_tx when the round's play is no longer pending: its
-- Redis session outlived the settlement (a lost clean-up), so it is closed
-- instead of being settled twice.
local STALE = setmetatable({}, { __tostring = function() return "crash: stale round" end })

-- Credits and records one settled round inside the caller's transaction.
-- r: {game_id, play_id, user_id, bet_amount, crash_x100, result =
-- "cashed"|"crashed"|"refunded", multiplier_x100 (cashed), cashed_out_at
-- (ISO)}; opts.idempotency_key goes to the ledger row. Returns the result
-- table {…r, payout, win_amount, balance}. Raises when the play is no longer
-- pending (someone else settled it), so the caller rolls back.
local function settle_in_tx(r, opts)
  local bet = r.bet_amount
  local payout = 0
  if r.result == "cashed" then payout = math.floor(bet * r.multiplier_x100 / 100)
  elseif r.result == "refunded" then payout = bet end
  db.after_commit(function() metrics.payout("crash", payout) end)
  local settled = store.one("UPDATE game_plays SET status = 'settled', payout = $3, is_win = $4, "
    .. "outcome = outcome || $5::jsonb, settled_at = now() "
    .. "WHERE id = $1 AND user_id = $2 AND game_type = 'crash' AND status = 'pending' AND outcome->>'game_id' = $6 "
    .. "RETURNING id",
    r.play_id, r.user_id, payout, payout > bet,
    { result = r.result, crash_x100 = r.crash_x100, cashout_x100 = r.multiplier_x100 or json.null, payout = payout },
    r.game_id)
  if not settled then error(STALE, 0) end
  local balance
  if payout > 0 then
    balance = wallet.change(r.user_id, { tokens = payout }, {
      reason = r.result == "refunded" and "game_refund" or "game_payout",
      reference = "crash:" .. r.game_id, idempotency_key = opts and opts.idempotency_key,
    }).tokens
  else
    balance = wallet.balances(r.user_id).tokens
  end
  local data = {
    play_id = r.play_id, game_id = r.game_id, bet_amount = bet, result = r.result, payout = payout,
    multiplier = x100_to_number(r.multiplier_x100), crash_point = r.crash_x100 / 100,
  }
  if r.result ~= "refunded" then
    events_log.action(r.user_id, r.result == "cashed" and "CRASH_CASHOUT" or "CRASH_LOST", data)
  end
  data.user_id = r.user_id
  events_log.outbox("game_events", "game.crash_settled", data)
  if payout > bet then
    progress.emit(r.user_id, { kind = "win", game_type = "crash", bet = bet, payout = payout, play_id = r.play_id })
  end
  local win_amount = r.result == "cashed" and payout - bet or 0
  record_rows(r.game_id, r.play_id, {
    status = ({ cashed = "cashed", crashed = "crashed", refunded = "expired" })[r.result],
    bet_status = ({ cashed = "cashed", crashed = "lost", refunded = "refunded" })[r.result],
    crash_x100 = r.crash_x100, cashout_x100 = r.multiplier_x100, payout = payout, win_amount = win_amount,
    cashed_out_at = r.result == "cashed" and r.cashed_out_at or nil,
  })
  r.payout, r.win_amount, r.balance = payout, win_amount, balance
  return r
end

-- Hands a claimed session back (settling -> active) after a failed settlement.
local function unclaim(s)
  local ok, err = pcall(eval, TRANSITION, { session_key(s.user_id) }, s.session_id, "settling", "active")
  if not ok then host.log.error("crash: cannot hand back a claimed round", { game_id = s.session_id, error = describe(err) }) end
end

-- Settles a round this caller has claimed, at now_ms with `result` at
-- multiplier m. report: keep the result in crash:result until a cash-out
-- reports it (the sweeper). Returns the result table of settle_in_tx. An
-- auto cash-out happened when m first reached the target, not at now.
local function settle_claimed(s, result, m, now_ms, opts)
  local cashed_at = now_ms
  if result == "cashed" and m == s.auto_cashout_x100 then
    cashed_at = s.placed_at + game.crash_time_ms(s, m)
  end
  local ok, r = pcall(store.tx, function()
    return settle_in_tx({
      game_id = s.session_id, play_id = s.play_id, user_id = s.user_id, bet_amount = s.bet_amount,
      crash_x100 = s.crash_x100, result = result, multiplier_x100 = result == "cashed" and m or nil,
      cashed_out_at = host.time.iso(cashed_at),
    }, opts)
  end)
  if not ok and r == STALE then
    host.log.warn("crash: closing a stale round whose play is already settled", { game_id = s.session_id })
    eval(FINISH, { session_key(s.user_id), result_key(s.user_id) }, s.session_id, "", 1)
    eval(UNINDEX, { ACTIVE_INDEX }, s.user_id, s.placed_at)
    return nil
  end
  if not ok then
    unclaim(s)
    error(r, 0)
  end
  local stored = ""
  if opts and opts.report then
    stored = assert(json.encode {
      game_id = r.game_id, result = r.result, bet_amount = r.bet_amount, placed_at = s.placed_at,
      auto_cashout_x100 = s.auto_cashout_x100 or json.null, multiplier_x100 = r.multiplier_x100 or json.null,
      crash_x100 = r.crash_x100, payout = r.payout, cashed_out_at = r.cashed_out_at,
    })
  end
  after_commit("closing round " .. s.session_id, function()
    eval(FINISH, { session_key(s.user_id), result_key(s.user_id) }, s.session_id, stored,
      host.config.get("CRASH_RESULT_TTL_S"))
    eval(UNINDEX, { ACTIVE_INDEX }, s.user_id, s.placed_at)
  end)
  return r
end

-- Claims the session (active -> settling) and settles it with the outcome
-- decided at the claim's Redis time: decide(s, now) -> result, m | nil.
-- Returns the result table, or nil when the claim failed or the round
-- turned out undecided (then handed back).
local function claim_and_settle(s, decide, opts)
  local reply = eval(TRANSITION, { session_key(s.user_id) }, s.session_id, "active", "settling")
  if reply[1] ~= "ok" then return nil end
  local claimed = decode_session(reply[2])
  local now = to_ms(reply[3], reply[4])
  local result, m = decide(claimed, now)
  if not result then
    unclaim(claimed)
    return nil
  end
  return settle_claimed(claimed, result, m, now, opts)
end

-- Responses -------------------------------------------------------------------

-- The cash-out answer for a settled round (§10.2).
local function cashout_response(r)
  if r.result == "cashed" then
    return {
      success = true, result = "cashed", game_id = r.game_id, cashed_out_at = r.cashed_out_at,
      multiplier = r.multiplier_x100 / 100, payout = r.payout, win_amount = r.payout - r.bet_amount,
      balance = r.balance,
    }
  end
  return {
    success = false, result = "crashed", game_id = r.game_id, crash_point = r.crash_x100 / 100,
    win_amount = 0, balance = r.balance,
  }
end

-- The `round` of GET current for a finished round.
local function finished_round(game_id, bet, placed_at, auto_x100, result, m, crash_x100)
  return {
    game_id = game_id, bet_amount = bet, placed_at = host.time.iso(placed_at),
    auto_cashout_multiplier = x100_to_number(auto_x100),
    multiplier = m / 100, status = result, crash_point = crash_x100 / 100,
    win_amount = result == "cashed" and math.floor(bet * m / 100) - bet or 0,
  }
end

-- Public API ------------------------------------------------------------------

--- settle_decided(user_id): settles the user's round when its outcome is
--- decided (auto target reached, or crashed more than CRASH_SWEEP_GRACE_MS
--- ago), as the sweeper would, so a new bet is not refused for it (§10.1
--- step 2). Call it outside any transaction: the round's Redis session must
--- be gone before the new bet's guard is taken. Raises 503 when Redis is
--- out of reach.
function M.settle_decided(user_id)
  local raw = rcall("GET", session_key(user_id))
  if not raw then return end
  local s = decode_session(raw)
  if s.status == "active" and decided(s, redis_now_ms()) then claim_and_settle(s, decided) end
end

--- bet(user_id, bet, auto_x100, idempotency_key) -> the §10.1 response.
--- bet is a validated integer within the config's limits; auto_x100 nil or
--- an integer in 101..max_multiplier×100. Raises 400 (funds), 409 (an active
--- round), 503 (Redis or the database out of reach); on any failure the
--- guard is released and no balance changed. Callers run settle_decided
--- first (outside the request's transaction).
function M.bet(user_id, bet, auto_x100, idempotency_key)
  local config = game.config
  if wallet.balances(user_id).tokens < bet then errors.raise("INSUFFICIENT_TOKENS") end
  local key = session_key(user_id)

  local round = {
    session_id = host.crypto.uuid(), game_id = 0, user_id = user_id, bet_amount = bet,
    placed_at = redis_now_ms(), auto_cashout_x100 = auto_x100 or json.null, growth_rate = config.growth_rate,
    status = "placing",
  }
  if not rcall("SET", key, assert(json.encode(round)), "NX", "PX", PLACING_TTL_MS) then
    errors.raise("CRASH_ALREADY_ACTIVE")
  end
  local placed_iso = host.time.iso(round.placed_at)
  local crash_time
  local ok, play = pcall(plays.run, user_id, {
    game_type = "crash", bet = bet, action_type = "CRASH_BET", idempotency_key = idempotency_key, pending = true,
    draw = function(rng)
      local o = game.play(config, rng)
      round.crash_x100, crash_time = o.crash_x100, o.crash_time_ms
      return { game_id = round.session_id, auto_cashout_x100 = round.auto_cashout_x100, placed_at = placed_iso }, 0
    end,
    record = function(p)
      round.play_id, round.nonce = p.id, p.nonce
      record_rows(round.session_id, p.id, { status = "active", bet_status = "placed" })
    end,
  })
  if not ok then
    pcall(eval, FINISH, { key, result_key(user_id) }, round.session_id, "", 0)
    error(play, 0)
  end

  round.status = "active"
  after_commit("starting round " .. round.session_id, function()
    local done = eval(COMPLETE, { key, result_key(user_id) }, round.session_id, assert(json.encode(round)),
      crash_time + SESSION_AFTER_CRASH_MS)
    if done ~= 1 then
      host.log.error("crash: guard lost before the round started; the sweeper settles it", { game_id = round.session_id })
      return
    end
    rcall("ZADD", ACTIVE_INDEX, round.placed_at, user_id)
  end)

  return plays.with_fairness({
    success = true, game_id = round.session_id, bet_amount = bet,
    potential_win = auto_x100 and math.floor(bet * auto_x100 / 100) or math.floor(bet * config.max_multiplier),
    max_multiplier = config.max_multiplier, auto_cashout_multiplier = x100_to_number(auto_x100),
    placed_at = placed_iso, growth_rate = config.growth_rate, message = "Bet placed", balance = play.balance,
  }, play)
end

--- cashout(user_id, game_id, idempotency_key) -> the §10.2 response. Raises
--- 409 while the round is being settled, 404 when there is nothing to
--- report, 503 when Redis is out of reach.
function M.cashout(user_id, game_id, idempotency_key)
  local key = session_key(user_id)
  local reply = eval(TRANSITION, { key }, game_id, "active", "settling")
  if reply[1] == "ok" then
    local s = decode_session(reply[2])
    local now = to_ms(reply[3], reply[4])
    local result, m = evaluate(s, now)
    local r = settle_claimed(s, result or "cashed", m, now, { idempotency_key = idempotency_key })
    if not r then errors.raise("CRASH_NO_SESSION") end
    return cashout_response(r)
  elseif reply[1] ~= "none" then
    errors.raise("CRASH_CANNOT_CASH_OUT")
  end
  local raw = eval(TAKE_RESULT, { result_key(user_id) }, game_id)
  if not raw then errors.raise("CRASH_NO_SESSION") end
  local r = decode_session(raw)
  if r.multiplier_x100 == json.null then r.multiplier_x100 = nil end
  r.balance = wallet.balances(user_id).tokens
  return cashout_response(r)
end

--- current(user_id) -> {active, round}: the active round (status by the
--- §10.2 rule at now, read-only) or the unreported sweeper result, else
--- {active = false, round = null}. Raises 503 when Redis is out of reach.
function M.current(user_id)
  local raw = rcall("GET", session_key(user_id))
  local s = raw and decode_session(raw)
  if s and s.status ~= "placing" then
    local result, m = evaluate(s, redis_now_ms())
    if result then
      return { active = false,
               round = finished_round(s.session_id, s.bet_amount, s.placed_at, s.auto_cashout_x100, result, m, s.crash_x100) }
    end
    return { active = true, round = {
      game_id = s.session_id, bet_amount = s.bet_amount, placed_at = host.time.iso(s.placed_at),
      auto_cashout_multiplier = x100_to_number(s.auto_cashout_x100), multiplier = m / 100, status = "active",
      crash_point = json.null, win_amount = json.null,
    } }
  end
  raw = rcall("GET", result_key(user_id))
  if raw then
    local r = assert(json.decode(raw))
    local auto = r.auto_cashout_x100 ~= json.null and r.auto_cashout_x100 or nil
    local m = r.result == "cashed" and r.multiplier_x100 or r.crash_x100
    return { active = false,
             round = finished_round(r.game_id, r.bet_amount, r.placed_at, auto, r.result, m, r.crash_x100) }
  end
  return { active = false, round = json.null }
end

--- debug_current(user_id) -> {available, session}: the raw round without its
--- crash point; {available = false, session = null} when Redis is down.
function M.debug_current(user_id)
  local ok, res = pcall(function()
    local raw = rcall("GET", session_key(user_id))
    if not raw then return { available = true, session = json.null } end
    local s = decode_session(raw)
    local m = game.multiplier_x100(s, math.max(0, redis_now_ms() - s.placed_at))
    return { available = true, session = {
      session_id = s.session_id, game_id = 0, user_id = s.user_id, bet_amount = s.bet_amount,
      placed_at = host.time.iso(s.placed_at), auto_cashout_multiplier = x100_to_number(s.auto_cashout_x100),
      multiplier = m / 100, status = s.status,
    } }
  end)
  if ok then return res end
  if host.is_http_error(res) and res.status == 503 then return { available = false, session = json.null } end
  error(res, 0)
end

--- admin_sessions(filter) -> {items, count}: crash_sessions rows, newest
--- started_at first (§13.6). filter: user_id?, status?, limit.
function M.admin_sessions(filter)
  local rows = store.query("SELECT id, external_session_id, user_id, game_id, bet_amount, status, "
    .. "auto_cashout_multiplier, actual_multiplier, cashout_multiplier, payout_amount, win_amount, nonce, "
    .. "server_seed_hash, started_at, cashed_out_at FROM crash_sessions "
    .. "WHERE ($1::bigint IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2) "
    .. "ORDER BY started_at DESC, id DESC LIMIT $3", filter.user_id, filter.status, filter.limit)
  local items = json.array()
  local function num(v) return v and tonumber(v) or json.null end
  for i, r in ipairs(rows) do
    items[i] = {
      id = r.id, external_session_id = r.external_session_id, user_id = r.user_id, game_id = r.game_id,
      bet_amount = r.bet_amount, status = r.status, auto_cashout_multiplier = num(r.auto_cashout_multiplier),
      crash_point = r.status == "active" and json.null or num(r.actual_multiplier),
      cashout_multiplier = num(r.cashout_multiplier), payout_amount = r.payout_amount or json.null,
      win_amount = r.win_amount, nonce = r.nonce or json.null, server_seed_hash = r.server_seed_hash or json.null,
      started_at = r.started_at, cashed_out_at = r.cashed_out_at or json.null,
    }
  end
  return { items = items, count = #rows }
end

-- Sweeper --------------------------------------------------------------------

-- Settles the rounds of crash:active whose outcome is decided; drops index
-- entries whose session is gone, and closes claimed sessions whose play is
-- already settled (their closing failed after the commit, e.g. Redis blinked).
local function sweep_active()
  local entries = rcall("ZRANGE", ACTIVE_INDEX, 0, -1, "WITHSCORES")
  local now = redis_now_ms()
  for i = 1, #entries, 2 do
    local user_id, score = tonumber(entries[i]), tonumber(entries[i + 1])
    local raw = rcall("GET", session_key(user_id))
    local s = raw and decode_session(raw)
    local ok, err = pcall(function()
      if not s then
        eval(UNINDEX, { ACTIVE_INDEX }, user_id, score)
      elseif s.status == "active" then
        if decided(s, now) then claim_and_settle(s, decided, { report = true }) end
      elseif s.status == "settling"
        and store.one("SELECT 1 AS x FROM game_plays WHERE id = $1 AND status = 'settled'", s.play_id) then
        eval(FINISH, { session_key(user_id), result_key(user_id) }, s.session_id, "", 0)
        eval(UNINDEX, { ACTIVE_INDEX }, user_id, s.placed_at)
      end
    end)
    if not ok then
      host.log.error("crash: sweeper could not settle a round", { user_id = user_id, error = describe(err) })
    end
  end
end

-- Settles one pending play whose Redis round is gone: paid at its auto target
-- when its crash point (re-derived from the play's seed pair and nonce)
-- reached it, otherwise refunded (the player never had the chance to cash out).
local function settle_lost(play)
  local o = play.outcome
  local auto = o.auto_cashout_x100 ~= json.null and o.auto_cashout_x100 or nil
  local seed = store.one("SELECT server_seed FROM fairness_seeds WHERE id = $1", play.fairness_seed_id)
  local crash = game.play(game.config, fair.stream(seed.server_seed, play.client_seed, play.nonce)).crash_x100
  local paid = auto and crash >= auto
  store.tx(function()
    local r = settle_in_tx({
      game_id = o.game_id, play_id = play.id, user_id = play.user_id, bet_amount = play.bet_amount,
      crash_x100 = crash, result = paid and "cashed" or "refunded", multiplier_x100 = paid and auto or nil,
      cashed_out_at = host.time.iso(redis_now_ms()),
    })
    host.log.warn("crash: round without Redis state settled from the database",
      { game_id = r.game_id, user_id = r.user_id, result = r.result, payout = r.payout })
  end)
end

-- Finds pending crash plays whose Redis session is gone and settles them.
-- A round being placed holds its guard (same session_id) from before its
-- play row exists, so only lost rounds match; the settlement re-checks the
-- row is still pending under its lock.
local function sweep_lost()
  local rows = store.query("SELECT id, user_id, bet_amount, outcome, fairness_seed_id, client_seed, nonce FROM game_plays "
    .. "WHERE game_type = 'crash' AND status = 'pending' ORDER BY id LIMIT $1", SWEEP_BATCH)
  for _, play in ipairs(rows) do
    local raw = rcall("GET", session_key(play.user_id))
    local s = raw and decode_session(raw)
    if not (s and s.session_id == play.outcome.game_id) then
      local ok, err = pcall(settle_lost, play)
      if not ok and err == STALE then -- a cash-out or another sweeper settled it first: normal play
        M.stats.sweeper_lost_races = M.stats.sweeper_lost_races + 1
        host.log.debug("crash: sweeper lost the race to settle a round", { play_id = play.id })
      elseif not ok then
        host.log.error("crash: sweeper could not settle a lost round", { play_id = play.id, error = describe(err) })
      end
    end
  end
end

-- Repairs crash_sessions rows (and their crash_bets) still 'active' though
-- their play has settled: a non-strict write that failed after the money
-- commit leaves them so, and an active row refuses seed rotation (§8)
-- until the user's next bet retires it. The settled play is the authority.
local function sweep_stale_rows()
  store.query("WITH fixed AS (UPDATE crash_sessions s SET "
    .. "status = CASE p.outcome->>'result' WHEN 'cashed' THEN 'cashed' WHEN 'crashed' THEN 'crashed' ELSE 'expired' END, "
    .. "actual_multiplier = (p.outcome->>'crash_x100')::numeric / 100, "
    .. "cashout_multiplier = (p.outcome->>'cashout_x100')::numeric / 100, payout_amount = p.payout, "
    .. "win_amount = CASE WHEN p.outcome->>'result' = 'cashed' THEN p.payout - p.bet_amount ELSE 0 END, "
    .. "cashed_out_at = CASE WHEN p.outcome->>'result' = 'cashed' THEN p.settled_at END, updated_at = now() "
    .. "FROM game_plays p WHERE p.id = s.game_play_id AND s.status = 'active' AND p.status = 'settled' "
    .. "RETURNING s.id, p.outcome->>'result' AS result, s.payout_amount, s.cashout_multiplier, s.cashed_out_at) "
    .. "UPDATE crash_bets b SET status = CASE f.result WHEN 'cashed' THEN 'cashed' WHEN 'crashed' THEN 'lost' "
    .. "ELSE 'refunded' END, payout_amount = f.payout_amount, cashout_multiplier = f.cashout_multiplier, "
    .. "cashed_out_at = f.cashed_out_at FROM fixed f WHERE b.session_id = f.id")
end

--- active_rounds() -> rounds in flight (the sweeper's index; GET /metrics).
function M.active_rounds() return rcall("ZCARD", ACTIVE_INDEX) end

--- sweep(): one pass of the sweeper (§10.3); errors are logged, never
--- raised. Every worker of every host calls it each CRASH_SWEEP_INTERVAL_MS;
--- a short Redis lease lets one of them run per interval (the claims make
--- concurrent passes safe anyway).
function M.sweep()
  local interval = math.max(1, math.floor(host.config.get("CRASH_SWEEP_INTERVAL_MS") * 0.9))
  local leased, lease = pcall(rcall, "SET", SWEEP_LEASE, host.crypto.uuid(), "NX", "PX", interval)
  if not (leased and lease) then return end
  for _, pass in ipairs { sweep_active, sweep_lost, sweep_stale_rows } do
    local ok, err = pcall(pass)
    if not ok and not (host.is_http_error(err) and err.status == 503) then -- out of reach: logged by rcall/store
      host.log.error("crash: sweep failed", { error = describe(err) })
    end
  end
end

-- Rotation of the server seed is refused while a round is unsettled: its
-- play row is pending until settlement, whatever Redis holds (§8).
fairness.set_active_round_check(function(user_id)
  return store.one("SELECT 1 AS x FROM game_plays WHERE user_id = $1 AND game_type = 'crash' "
    .. "AND status = 'pending' LIMIT 1", user_id) ~= nil
end)

return M
