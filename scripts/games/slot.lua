--[[ slot.lua - the slot machine's rules and paytable (CONTRACT.md §9).

Three reels over six symbols, each reel drawn from the fair stream with its
own weights (reel 1, then 2, then 3). Three equal symbols pay triple_x100 of
the symbol; otherwise an ADJACENT pair (reel1 = reel2 or reel2 = reel3; reel1 =
reel3 alone does not count) pays pair_x100 of the paired symbol; else nothing.
Multipliers are integer hundredths of the stake (150 = 1.5×), payout =
⌊bet × multiplier / 100⌋. Three 7️⃣ is the jackpot.

Designers edit `config` below. Every reload runs self_check, which refuses
the new scripts (the old paytable keeps serving) unless the weights are
positive integers, the multipliers non-negative integers, the bet limits
consistent and the exact RTP inside the slot band of config/rtp_bands.lua
([0.945, 0.955]). `cchost rtp` prints the exact figures and a simulation.

Tuning of the shipped table (the earlier one returned about 65.7 %): every
reel weighs 🍒 25, 🍋 23, 🍊 21, 🍇 17, 💎 10, 7️⃣ 4 (of 100), so
  exact RTP      0.950748 (enumeration of all 216 weighted combinations)
  hit frequency  0.263220 (a paying combination; a 🍒 pair pays 0 on purpose)
  stddev         3.2578 stakes per spin
  jackpot        three 7️⃣ pays 300×, probability 0.000064 (1 in 15 625).
]]

local check = require "lib.game_check"
local rtp = require "lib.rtp"

local M = {}

M.config = {
  symbols = { "🍒", "🍋", "🍊", "🍇", "💎", "7️⃣" },
  jackpot = "7️⃣",
  -- Weights per reel, in the order of `symbols`.
  reels = {
    { 25, 23, 21, 17, 10, 4 },
    { 25, 23, 21, 17, 10, 4 },
    { 25, 23, 21, 17, 10, 4 },
  },
  triple_x100 = { ["🍒"] = 500, ["🍋"] = 800, ["🍊"] = 1000, ["🍇"] = 1500, ["💎"] = 3000, ["7️⃣"] = 30000 },
  pair_x100 = { ["🍒"] = 0, ["🍋"] = 200, ["🍊"] = 250, ["🍇"] = 250, ["💎"] = 400, ["7️⃣"] = 1000 },
  min_bet = 10,
  max_bet = 1000,
}

-- The rule that matches symbols s1, s2, s3: win type and multiplier.
local function evaluate(config, s1, s2, s3)
  if s1 == s2 and s2 == s3 then return "triple", config.triple_x100[s1] end
  if s1 == s2 or s2 == s3 then return "pair", config.pair_x100[s2] end
  return "none", 0
end

--- play(config, rng, {bet}) -> {reels = {glyph×3}, win_type = "triple"|"pair"|"none",
--- multiplier_x100, is_jackpot, payout = ⌊bet·multiplier_x100/100⌋}.
--- rng is a fair source (lib/fair.lua): one weighted() per reel, in reel order.
function M.play(config, rng, input)
  local symbols, reels = config.symbols, config.reels
  local s1 = symbols[rng:weighted(reels[1])]
  local s2 = symbols[rng:weighted(reels[2])]
  local s3 = symbols[rng:weighted(reels[3])]
  local win_type, multiplier = evaluate(config, s1, s2, s3)
  return {
    reels = { s1, s2, s3 },
    win_type = win_type,
    multiplier_x100 = multiplier,
    is_jackpot = win_type == "triple" and s1 == config.jackpot,
    payout = math.floor(input.bet * multiplier / 100),
  }
end

--- sample(config, rng) -> return as a multiple of the stake, outcome (for lib/rtp.simulate).
function M.sample(config, rng)
  local outcome = M.play(config, rng, { bet = 100 })
  return outcome.multiplier_x100 / 100, outcome
end

-- {{p, return in stakes}…} over every weighted reel combination.
local function outcomes(config)
  local symbols, reels = config.symbols, config.reels
  local totals = {}
  for r = 1, 3 do
    local t = 0
    for _, w in ipairs(reels[r]) do t = t + w end
    totals[r] = t
  end
  local dist = {}
  for a = 1, #symbols do
    for b = 1, #symbols do
      for c = 1, #symbols do
        local p = reels[1][a] / totals[1] * reels[2][b] / totals[2] * reels[3][c] / totals[3]
        local _, multiplier = evaluate(config, symbols[a], symbols[b], symbols[c])
        dist[#dist + 1] = { p, multiplier / 100 }
      end
    end
  end
  return dist
end

--- exact(config) -> {rtp, hit_frequency, stddev}: enumeration of every
--- weighted reel combination (hit = a combination paying more than 0);
--- distribution(config) -> {{payout_multiplier, probability}…}: the same
--- enumeration, one entry per distinct multiplier.
M.exact, M.distribution = rtp.from_outcomes(outcomes)

--- input(config, {bet_amount}) -> {bet} | nil, reason.
function M.input(config, fields)
  local bet, err = check.stake(config, fields)
  if not bet then return nil, err end
  return { bet = bet }
end

M.note = "return per spin"

--- self_check([config [, bands]]) -> true | nil, reason. Defaults: the shipped
--- config and config/rtp_bands.lua (bands.slot).
function M.self_check(config, bands)
  config = config or M.config
  bands = bands or require "config.rtp_bands"
  local symbols = config.symbols
  if type(symbols) ~= "table" or #symbols == 0 then return nil, "slot: symbols must be a non-empty list" end
  local seen = {}
  for i, s in ipairs(symbols) do
    if type(s) ~= "string" or s == "" or seen[s] then
      return nil, "slot: symbol " .. i .. " must be a distinct non-empty string"
    end
    seen[s] = true
  end
  if not seen[config.jackpot] then return nil, "slot: jackpot must be one of the symbols" end
  if type(config.reels) ~= "table" or #config.reels ~= 3 then return nil, "slot: reels must list 3 reels" end
  for r = 1, 3 do
    local err = check.weights(config.reels[r], #symbols, "reel " .. r)
    if err then return nil, "slot: " .. err end
  end
  for _, table_name in ipairs { "triple_x100", "pair_x100" } do
    local paytable = config[table_name]
    if type(paytable) ~= "table" then return nil, "slot: " .. table_name .. " must be a table" end
    for key in pairs(paytable) do
      if not seen[key] then return nil, "slot: " .. table_name .. " names an unknown symbol " .. tostring(key) end
    end
    for _, s in ipairs(symbols) do
      local err = check.non_negative_int(paytable[s], table_name .. "[" .. s .. "]")
      if err then return nil, "slot: " .. err end
    end
  end
  local err = check.bet_limits(config) or check.band(M.exact(config).rtp, bands.slot, "slot")
  if err then return nil, "slot: " .. err end
  return true
end

--- public(config) -> the public parameters of GET /api/games/slot/config.
function M.public(config)
  local exact = M.exact(config)
  local reels, triple, pair = {}, {}, {}
  for r = 1, 3 do reels[r] = { unpack(config.reels[r]) } end
  for _, s in ipairs(config.symbols) do
    triple[s] = config.triple_x100[s]
    pair[s] = config.pair_x100[s]
  end
  return {
    game_type = "slot",
    symbols = { unpack(config.symbols) },
    reels = reels,
    triple_x100 = triple,
    pair_x100 = pair,
    min_bet = config.min_bet,
    max_bet = config.max_bet,
    rtp = rtp.round(exact.rtp, 6),
    hit_frequency = rtp.round(exact.hit_frequency, 6),
  }
end

return M
