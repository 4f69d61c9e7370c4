--[[ crash.lua - the crash game's rules (CONTRACT.md §10).

At the bet, X = float() of the bet's nonce fixes the crash point
  crash = max(1.00, ⌊100·(1 − house_edge)/(1 − X)⌋ / 100), capped at max_multiplier.
The round's multiplier then grows with the time t in ms since the bet,
m(t) = ⌊100·e^(growth_rate·t)⌋ / 100; the round crashes at the first t with
m(t) ≥ crash. Everything is integer hundredths here (100 = 1.00×).

The crash point is computed exactly, not with floating division: X = F/2^53
(F from the stream), so crash_x100 = ⌊K·2^53 / ((2^53 − F)·10^4)⌋ with
K = 10^6·(1 − house_edge), an integer (self_check requires house_edge in
whole millionths). Plain double division would be off by one hundredth for
some F (e.g. F = 349794145815184 gives 1.02, doubles say 1.03).

RTP (closed form): for an auto cash-out target A (1.01 ≤ A ≤ max_multiplier),
P(crash ≥ A) = (1 − house_edge)/A, so the return A·P = 1 − house_edge = 0.99
for EVERY target; this is the RTP that config/rtp_bands.lua bounds
([0.95, 0.995]). Hit frequency and stddev depend on the target; exact() and
sample() report them at the reference target 2.00× (hit 0.495, sd ≈ 1.0).
About 1.98 % of rounds crash at 1.00.
]]

local check = require "lib.game_check"
local rtp = require "lib.rtp"

local M = {}

M.config = {
  house_edge = 0.01,
  max_multiplier = 1000,
  growth_rate = 0.00006, -- per ms
  min_bet = 10,
  max_bet = 5000,
}

--- The auto cash-out target (hundredths) exact() and sample() report at.
M.REFERENCE_TARGET_X100 = 200

local TWO53 = 9007199254740992

-- 10^6·(1 − house_edge): the integer numerator of the crash formula.
local function keep_ppm(config)
  return 1000000 - math.floor(config.house_edge * 1000000 + 0.5)
end

--- crash_point_x100(config, F) -> crash point in hundredths for X = F / 2^53
--- (F an integer in [0, 2^53), fair source:float53()). Exact: N = K·2^53 and
--- D = 2^53 − F are exact doubles, math.fmod is exact, and the quotient is
--- below 2^30 once the cap is handled, so rounding t − r/D recovers ⌊N/D⌋.
function M.crash_point_x100(config, F)
  local cap = config.max_multiplier * 100
  local n = keep_ppm(config) * TWO53
  local d = TWO53 - F
  local t = n / d
  if t >= (cap + 1) * 10000 then return cap end
  local q = math.floor(t - math.fmod(n, d) / d + 0.5) -- = ⌊N / D⌋ exactly
  local x100 = (q - q % 10000) / 10000
  return math.max(100, math.min(cap, x100))
end

--- multiplier_x100(config, t_ms) -> m(t) in hundredths = ⌊100·e^(r·t)⌋.
function M.multiplier_x100(config, t_ms)
  return math.floor(100 * math.exp(config.growth_rate * t_ms))
end

--- crash_time_ms(config, crash_x100) -> the first integer t (ms) with m(t) ≥ crash_x100.
function M.crash_time_ms(config, crash_x100)
  local t = math.max(0, math.ceil(math.log(crash_x100 / 100) / config.growth_rate))
  while t > 0 and M.multiplier_x100(config, t - 1) >= crash_x100 do t = t - 1 end
  while M.multiplier_x100(config, t) < crash_x100 do t = t + 1 end
  return t
end

--- play(config, rng [, {bet, auto_cashout_x100}]) -> {crash_x100, crash_time_ms}
--- from one float() of rng; with an auto target (and bet) also
--- {cashed = crash_x100 ≥ target, multiplier_x100 = target or 0, payout}.
function M.play(config, rng, input)
  local crash = M.crash_point_x100(config, rng:float53())
  local outcome = { crash_x100 = crash, crash_time_ms = M.crash_time_ms(config, crash) }
  local target = input and input.auto_cashout_x100
  if target then
    outcome.cashed = crash >= target
    outcome.multiplier_x100 = outcome.cashed and target or 0
    outcome.payout = math.floor((input.bet or 0) * outcome.multiplier_x100 / 100)
  end
  return outcome
end

--- evaluate(round, now_ms) -> "cashed", A | "crashed", crash | nil, m(now):
--- the §10.2 cash-out rule at now_ms for a round {placed_at (ms), growth_rate,
--- crash_x100, auto_cashout_x100 (nil: none)}, first match wins: an auto
--- target A ≤ crash reached → cashed at A; m ≥ crash → crashed; else the
--- round still runs at m. The round carries its own growth rate, so a
--- reload never changes a round in flight.
function M.evaluate(round, now_ms)
  local m = M.multiplier_x100(round, math.max(0, now_ms - round.placed_at))
  local a = round.auto_cashout_x100
  if a and a <= round.crash_x100 and m >= a then return "cashed", a end
  if m >= round.crash_x100 then return "crashed", round.crash_x100 end
  return nil, m
end

--- decided(round, now_ms, grace_ms) -> result, m | nil: the outcomes the
--- house may settle without the player: an auto target reached, or a crash
--- more than grace_ms ago (the player had the crash on screen by then).
function M.decided(round, now_ms, grace_ms)
  local result, m = M.evaluate(round, now_ms)
  if result == "cashed" then return result, m end
  if result == "crashed" and now_ms - (round.placed_at + M.crash_time_ms(round, round.crash_x100)) > grace_ms then
    return result, m
  end
end

--- sample(config, rng) -> return as a multiple of the stake at the reference
--- target, and the crash point in hundredths (the outcome).
function M.sample(config, rng)
  local crash = M.crash_point_x100(config, rng:float53())
  local target = M.REFERENCE_TARGET_X100
  return crash >= target and target / 100 or 0, crash
end

--- p_at_least(config, a) -> P(crash_x100 ≥ a) for integer hundredths a.
function M.p_at_least(config, a)
  if a <= 100 then return 1 end
  if a > config.max_multiplier * 100 then return 0 end
  return math.min(1, keep_ppm(config) / 10000 / a)
end

--- exact(config [, target_x100]) -> {rtp, hit_frequency, stddev} of a player
--- cashing out automatically at the target (default REFERENCE_TARGET_X100,
--- or the cap if lower); rtp is the same, 1 − house_edge, for every target in range.
function M.exact(config, target_x100)
  local a = target_x100 or math.min(M.REFERENCE_TARGET_X100, config.max_multiplier * 100)
  local p = M.p_at_least(config, a)
  return rtp.moments { { p, a / 100 }, { 1 - p, 0 } }
end

-- Crash points have no finite set, so distribution() buckets them by these
-- cash-out targets (hundredths): the entry for a is P(a ≤ crash < next a),
-- i.e. the chance that cashing out at a pays and at the next target does not.
local BUCKETS_X100 = { 100, 101, 110, 125, 150, 200, 300, 500, 1000, 2000, 5000, 10000, 100000 }

--- distribution(config) -> {{payout_multiplier, probability}…}: the crash
--- point in the buckets above (cut at max_multiplier); probabilities sum to 1.
function M.distribution(config)
  local cap = config.max_multiplier * 100
  local edges = {}
  for _, a in ipairs(BUCKETS_X100) do
    if a <= cap then edges[#edges + 1] = a end
  end
  local out = {}
  for i, a in ipairs(edges) do
    local p = M.p_at_least(config, a) - (edges[i + 1] and M.p_at_least(config, edges[i + 1]) or 0)
    out[i] = { payout_multiplier = a / 100, probability = p }
  end
  return out
end

--- input(config, {bet_amount, auto_cashout}) -> {bet, auto_cashout_x100} |
--- nil, reason. auto_cashout is a multiplier (2.5), optional.
function M.input(config, fields)
  local bet, err = check.stake(config, fields)
  if not bet then return nil, err end
  local auto = fields.auto_cashout
  if auto == nil then return { bet = bet } end
  local x100 = type(auto) == "number" and math.floor(auto * 100 + 0.5)
  if not x100 or x100 < 101 or x100 > config.max_multiplier * 100 then
    return nil, "auto_cashout must be a multiplier from 1.01 to " .. config.max_multiplier
  end
  return { bet = bet, auto_cashout_x100 = x100 }
end

M.note = "return per round with auto cash-out at 2.00x (the same 1 - house_edge at any target)"

--- self_check([config [, bands]]) -> true | nil, reason (defaults: the shipped
--- config, config/rtp_bands.lua).
function M.self_check(config, bands)
  config = config or M.config
  bands = bands or require "config.rtp_bands"
  local edge, cap, rate = config.house_edge, config.max_multiplier, config.growth_rate
  local err
  if type(edge) ~= "number" or not (edge >= 0 and edge < 1)
    or math.abs(edge * 1000000 - math.floor(edge * 1000000 + 0.5)) > 1e-6 then
    err = "house_edge must be in [0, 1) in whole millionths, got " .. tostring(edge)
  elseif type(cap) ~= "number" or not check.is_int(cap * 100) or cap * 100 < 101 then
    err = "max_multiplier must be at least 1.01 in whole hundredths, got " .. tostring(cap)
  elseif type(rate) ~= "number" or not (rate > 0 and rate < math.huge) then
    err = "growth_rate must be a positive number, got " .. tostring(rate)
  end
  err = err or check.bet_limits(config) or check.band(M.exact(config).rtp, bands.crash, "crash")
  if err then return nil, "crash: " .. err end
  return true
end

--- public(config) -> the public parameters of GET /api/games/crash/config.
function M.public(config)
  return {
    game_type = "crash",
    house_edge = config.house_edge,
    max_multiplier = config.max_multiplier,
    growth_rate = config.growth_rate,
    min_bet = config.min_bet,
    max_bet = config.max_bet,
    rtp = rtp.round(M.exact(config).rtp, 6),
  }
end

return M
