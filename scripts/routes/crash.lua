-- crash.lua - the crash game's routes (CONTRACT.md §10, §13.6): bet,
-- cash-out, the current round, the debug view (DEBUG_ROUTES only), the admin
-- listing of crash_sessions, and the sweeper timer. The round logic is in
-- domain/crash.lua; this file validates input and shapes answers.
local host = require "host"
local json = require "json"
local errors = require "lib.errors"
local game = require "games.crash"
local crash = require "domain.crash"
local idempotency = require "domain.idempotency"

local TAGS = { "Games" }

-- Spellings of the auto cash-out target, in precedence order (§10.1).
local AUTO_SPELLINGS = { "auto_cashout_multiplier", "auto_cashout", "autoCashoutMultiplier", "autoCashout" }

-- %g without a trailing ".0": 1.01 -> "1.01", 1000 -> "1000".
local function number_text(x) return (string.format("%.15g", x)) end

-- A = round(v × 100) of the auto target, or nil when absent or null; 422
-- unless 101 ≤ A ≤ max_multiplier × 100, naming the spelling the client used.
local function auto_target_x100(req)
  local v = req.body.auto_cashout_multiplier
  if v == nil or v == json.null then return nil end
  local a = math.floor(v * 100 + 0.5)
  local cap = game.config.max_multiplier * 100
  if a >= 101 and a <= cap then return a end
  local raw = json.decode(req.raw_body)
  local spelling = AUTO_SPELLINGS[1]
  for _, name in ipairs(AUTO_SPELLINGS) do
    if raw[name] ~= nil then spelling = name break end
  end
  local item = a < 101
    and { type = "greater_than_equal", msg = "Input should be greater than or equal to 1.01", ctx = { ge = 1.01 } }
    or { type = "less_than_equal", msg = "Input should be less than or equal to " .. number_text(cap / 100),
         ctx = { le = cap / 100 } }
  item.loc, item.input = { "body", spelling }, v
  errors.validation({ item })
end

host.route {
  method = "POST", path = "/api/games/crash/bet", auth = "user", tags = TAGS,
  summary = "Place a crash bet (one active round per user)", operation_id = "games_crash_bet",
  responses = {
    [200] = "game_id, play_id, bet_amount, potential_win, max_multiplier, auto_cashout_multiplier, placed_at, "
      .. "growth_rate, balance and the fairness fields",
    [400] = { "INSUFFICIENT_TOKENS" }, [409] = { "CRASH_ALREADY_ACTIVE" }, [422] = true,
    [503] = { "CRASH_CACHE_UNAVAILABLE" },
  },
  moves_money = true, idempotent = true,
  body = {
    { name = "bet_amount", type = "integer", required = true, ge = game.config.min_bet, le = game.config.max_bet,
      aliases = { "betAmount" }, example = game.config.min_bet },
    { name = AUTO_SPELLINGS[1], type = "number", nullable = true,
      aliases = { AUTO_SPELLINGS[2], AUTO_SPELLINGS[3], AUTO_SPELLINGS[4] },
      description = "Auto cash-out target (1.01 to max_multiplier, rounded to hundredths)" },
  },
  handler = function(req)
    -- Every 422 comes first; then a decided previous round is settled outside
    -- the bet's transaction, so its session is gone before the new guard.
    local auto_x100, key = auto_target_x100(req), idempotency.key(req)
    crash.settle_decided(req.user.id)
    return idempotency.wrap(function()
      return crash.bet(req.user.id, req.body.bet_amount, auto_x100, key)
    end)(req)
  end,
}

host.route {
  method = "POST", path = "/api/games/crash/cashout", auth = "user", tags = TAGS,
  summary = "Cash out the active crash round", operation_id = "games_crash_cashout",
  responses = {
    [200] = "Cashed (success true: multiplier, payout, win_amount, balance) or crashed (success false: crash_point, "
      .. "win_amount 0, balance)",
    [400] = { "BALANCE_LIMIT" }, [404] = { "CRASH_NO_SESSION" }, [409] = { "CRASH_CANNOT_CASH_OUT" }, [422] = true,
    [503] = { "CRASH_CACHE_UNAVAILABLE" },
  },
  moves_money = true, idempotent = true,
  body = { { name = "game_id", type = "string", required = true, aliases = { "gameId" },
             example = "00000000-0000-4000-8000-000000000000" } },
  handler = idempotency.wrap(function(req)
    return crash.cashout(req.user.id, req.body.game_id, idempotency.key(req))
  end),
}

host.route {
  method = "GET", path = "/api/games/crash/current", auth = "user", tags = TAGS,
  summary = "The active crash round or its unreported result", operation_id = "games_crash_current",
  responses = {
    [200] = "active and round: the active round or its unreported result, or round null",
    [503] = { "CRASH_CACHE_UNAVAILABLE" },
  },
  moves_money = false,
  handler = function(req)
    return crash.current(req.user.id)
  end,
}

host.route {
  method = "GET", path = "/api/games/crash/debug/current", auth = "user", tags = TAGS,
  summary = "The raw Redis round (debug)", operation_id = "games_crash_debug_current", moves_money = false,
  responses = { [200] = "available and session (the raw round without its crash point)" },
  enabled = host.config.get("DEBUG_ROUTES"),
  handler = function(req)
    return crash.debug_current(req.user.id)
  end,
}

host.route {
  method = "GET", path = "/api/admin/crash/sessions", auth = "admin", tags = { "Admin" },
  summary = "Crash rounds, newest first", operation_id = "admin_crash_sessions", moves_money = false,
  responses = { [200] = "items (newest first) and count", [422] = true },
  query = {
    { name = "user_id", type = "integer", ge = 1, example = 1 },
    { name = "status", type = "string", enum = { "active", "cashed", "crashed", "expired" }, example = "active" },
    { name = "limit", type = "integer", ge = 1, le = 500, default = 50, example = 5 },
  },
  handler = function(req)
    return crash.admin_sessions(req.query)
  end,
}

host.every(function() return host.config.get("CRASH_SWEEP_INTERVAL_MS") / 1000 end, crash.sweep)
