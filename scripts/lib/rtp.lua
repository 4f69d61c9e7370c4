--[[ rtp.lua - return-to-player statistics shared by the games, the `cchost
rtp` tool and the specs.

A game's exact statistics come from its outcome distribution: a list of
{p, x} pairs, x being the return of one play as a multiple of the stake.
A simulation plays n seeded plays through game.sample and reports the mean
return with its 95 % confidence interval, so both can be compared.
]]

local M = {}

-- A play is a hit when its return x > 0, or x ≥ threshold for a game that
-- declares one (game.HIT_THRESHOLD; the gacha counts pulls worth their cost).
local function is_hit(x, threshold)
  if threshold then return x >= threshold end
  return x > 0
end

--- moments(dist [, threshold]) -> {rtp, hit_frequency, stddev}: dist = {{p, x}…}
--- with Σp = 1; rtp = Σ p·x, hit_frequency = Σ p over hits, stddev = √(Σ p·x² − rtp²).
function M.moments(dist, threshold)
  local mean, hit, square = 0, 0, 0
  for i = 1, #dist do
    local p, x = dist[i][1], dist[i][2]
    mean = mean + p * x
    square = square + p * x * x
    if is_hit(x, threshold) then hit = hit + p end
  end
  return { rtp = mean, hit_frequency = hit, stddev = math.sqrt(math.max(0, square - mean * mean)) }
end

--- simulate(game, config, n, source_for [, observe]) -> {plays, mean, stddev,
--- stderr, ci_low, ci_high, hit_frequency}: plays i = 0…n−1, each with the
--- random source source_for(i), through game.sample(config, source) -> return,
--- outcome; observe(outcome), when given, sees every outcome. The interval is
--- mean ± 1.96 standard errors.
function M.simulate(game, config, n, source_for, observe)
  local sample, threshold = game.sample, game.HIT_THRESHOLD
  local sum, square, hits = 0, 0, 0
  for i = 0, n - 1 do
    local x, outcome = sample(config, source_for(i))
    sum = sum + x
    square = square + x * x
    if is_hit(x, threshold) then hits = hits + 1 end
    if observe then observe(outcome) end
  end
  local mean = sum / n
  local sd = math.sqrt(math.max(0, square / n - mean * mean))
  local se = sd / math.sqrt(n)
  return {
    plays = n, mean = mean, stddev = sd, stderr = se,
    ci_low = mean - 1.96 * se, ci_high = mean + 1.96 * se, hit_frequency = hits / n,
  }
end

--- distribution(dist) -> {{payout_multiplier, probability}…}: dist = {{p, x}…}
--- with equal returns merged, sorted by return, zero-probability entries
--- dropped (the form of a game's distribution(), CONTRACT.md §13.6).
function M.distribution(dist)
  local by_x, xs = {}, {}
  for i = 1, #dist do
    local p, x = dist[i][1], dist[i][2]
    if p > 0 then
      if not by_x[x] then xs[#xs + 1] = x end
      by_x[x] = (by_x[x] or 0) + p
    end
  end
  table.sort(xs)
  local out = {}
  for i, x in ipairs(xs) do out[i] = { payout_multiplier = x, probability = by_x[x] } end
  return out
end

--- from_outcomes(outcomes) -> exact, distribution: a game's exact() and
--- distribution() for a game whose every outcome outcomes(config) lists as
--- {p, return in stakes} (enumeration or closed form).
function M.from_outcomes(outcomes)
  return function(config) return M.moments(outcomes(config)) end,
    function(config) return M.distribution(outcomes(config)) end
end

--- round(x, digits) -> x rounded half up to `digits` decimals.
function M.round(x, digits)
  local scale = 10 ^ digits
  return math.floor(x * scale + 0.5) / scale
end

return M
