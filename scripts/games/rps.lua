--[[ rps.lua - rock, paper, scissors against the house (CONTRACT.md §9).

The computer's choice is int(3) of the fair stream: 0 rock, 1 paper,
2 scissors. Rock beats scissors, paper beats rock, scissors beats paper.
A win pays win_x100, a draw draw_x100 (100 = the stake back), a loss 0;
payout = ⌊bet × multiplier / 100⌋.

Designers edit `config`. Every reload runs self_check (integer multipliers,
consistent bet limits, exact RTP inside the rps band of config/rtp_bands.lua,
[0.95, 1.00]). Exact RTP, closed form: each computer choice has probability
1/3 whatever the player picks, so RTP = (win_x100 + draw_x100) / 300 = 1.00
with the shipped table; hit frequency (any return) 2/3; stddev √(2/3) ≈ 0.8165.
]]

local check = require "lib.game_check"
local rtp = require "lib.rtp"

local M = {}

M.config = {
  win_x100 = 200,
  draw_x100 = 100,
  min_bet = 10,
  max_bet = 500,
}

M.CHOICES = { "rock", "paper", "scissors" }
local BEATS = { rock = "scissors", paper = "rock", scissors = "paper" }

--- play(config, rng, {bet, choice}) -> {player_choice, computer_choice,
--- result = "win"|"lose"|"draw", multiplier_x100, payout}. choice must be one
--- of M.CHOICES (routes validate it); rng draws int(3) once.
function M.play(config, rng, input)
  local choice = input.choice
  if not BEATS[choice] then error("rps: unknown choice " .. tostring(choice), 2) end
  local computer = M.CHOICES[rng:int(3) + 1]
  local result, multiplier
  if computer == choice then
    result, multiplier = "draw", config.draw_x100
  elseif BEATS[choice] == computer then
    result, multiplier = "win", config.win_x100
  else
    result, multiplier = "lose", 0
  end
  return {
    player_choice = choice,
    computer_choice = computer,
    result = result,
    multiplier_x100 = multiplier,
    payout = math.floor(input.bet * multiplier / 100),
  }
end

--- sample(config, rng) -> return as a multiple of the stake, outcome. The
--- return's distribution is the same for every player choice; rock is played.
function M.sample(config, rng)
  local outcome = M.play(config, rng, { bet = 100, choice = "rock" })
  return outcome.multiplier_x100 / 100, outcome
end

local function outcomes(config)
  return { { 1 / 3, config.win_x100 / 100 }, { 1 / 3, config.draw_x100 / 100 }, { 1 / 3, 0 } }
end

--- exact(config) -> {rtp, hit_frequency, stddev}: win, draw and loss have
--- 1/3 each, whatever the choice; distribution(config) -> the same three.
M.exact, M.distribution = rtp.from_outcomes(outcomes)

--- input(config, {bet_amount, choice}) -> {bet, choice} | nil, reason.
function M.input(config, fields)
  local bet, err = check.stake(config, fields)
  if not bet then return nil, err end
  if not BEATS[fields.choice] then return nil, "choice must be rock, paper or scissors" end
  return { bet = bet, choice = fields.choice }
end

M.note = "return per play, any choice"

--- self_check([config [, bands]]) -> true | nil, reason (defaults: the shipped
--- config, config/rtp_bands.lua).
function M.self_check(config, bands)
  config = config or M.config
  bands = bands or require "config.rtp_bands"
  local err = check.non_negative_int(config.win_x100, "win_x100")
    or check.non_negative_int(config.draw_x100, "draw_x100")
    or check.bet_limits(config)
  err = err or check.band(M.exact(config).rtp, bands.rps, "rps")
  if err then return nil, "rps: " .. err end
  return true
end

--- public(config) -> the public parameters of GET /api/games/rps/config.
function M.public(config)
  return {
    game_type = "rps",
    win_x100 = config.win_x100,
    draw_x100 = config.draw_x100,
    min_bet = config.min_bet,
    max_bet = config.max_bet,
    rtp = rtp.round(M.exact(config).rtp, 6),
  }
end

return M
