--[==[ game_check.lua - the game module interface, and the checks every
game's self_check shares.

A game is one pure module, scripts/games/<game_type>.lua (fixture games:
fixtures/games/<game_type>.lua). The loader's discovery of those folders is
the one registry of games (host.games): the game routes, /api/games/,
`cchost rtp`, `cchost verify`, the admin RTP report and the reload
self-check all iterate it. Adding a game is its rules file, its route
declaration, its band line in config/rtp_bands.lua and its `games` row.
Every game module exports (M.interface checks it at load):

  config                        the table designers edit; staked games have
                                integer min_bet <= max_bet
  input(config, fields) -> input | nil, reason
                                builds play()'s input from named fields, as
                                a request body or the command line gives them
                                (bet_amount, choice, pull_count, auto_cashout),
                                refusing what the rules cannot play;
                                input.bet is the stake to debit
  play(config, rng, input) -> outcome
                                the rule: pure, one draw sequence from the
                                provably-fair stream rng (lib/fair.lua);
                                outcome.payout is the gross tokens won
  exact(config) -> {rtp, hit_frequency, stddev}
                                per play, exactly (enumeration or closed form)
  distribution(config) -> {{payout_multiplier, probability}…}
                                the exact payout distribution, sorted by
                                multiplier, probabilities summing to 1 (a game
                                without a finite payout set documents its
                                buckets; gacha lists {rarity, probability})
  sample(config, rng) -> return, outcome
                                one play's return in stakes (lib/rtp.simulate)
  self_check([config [, bands]]) -> true | nil, reason
                                run at every reload: a config that fails, or
                                an exact RTP outside the game's band in
                                config/rtp_bands.lua, refuses the generation
  public(config) -> table       the public parameters (GET
                                /api/games/<game_type>/config)
  note                          one line for `cchost rtp`: what the RTP means

Each check below returns nil when the value is fine, or a sentence naming the
offending field.
]==]

local M = {}

local TWO32 = 4294967296

--- is_int(x) -> true when x is a finite integral number.
function M.is_int(x)
  return type(x) == "number" and x == x and x % 1 == 0 and x > -math.huge and x < math.huge
end

--- positive_int(x, what) -> nil | reason
function M.positive_int(x, what)
  if not M.is_int(x) or x < 1 then return what .. " must be a positive integer, got " .. tostring(x) end
end

--- non_negative_int(x, what) -> nil | reason
function M.non_negative_int(x, what)
  if not M.is_int(x) or x < 0 then return what .. " must be a non-negative integer, got " .. tostring(x) end
end

--- bet_limits(config) -> nil | reason: min_bet and max_bet positive integers, min_bet <= max_bet.
function M.bet_limits(config)
  local err = M.positive_int(config.min_bet, "min_bet") or M.positive_int(config.max_bet, "max_bet")
  if err then return err end
  if config.min_bet > config.max_bet then
    return "min_bet (" .. config.min_bet .. ") must not exceed max_bet (" .. config.max_bet .. ")"
  end
end

--- weights(list, n, what) -> nil | reason: exactly n positive integer weights
--- whose sum fits the fair stream's int() (at most 2^32).
function M.weights(list, n, what)
  if type(list) ~= "table" or #list ~= n then
    return what .. " must list " .. n .. " weights"
  end
  local total = 0
  for i = 1, n do
    local err = M.positive_int(list[i], what .. " weight " .. i)
    if err then return err end
    total = total + list[i]
  end
  if total > TWO32 then return what .. " weights must sum to at most 2^32" end
end

-- Slack for rounding in the exact RTP (e.g. 2/3 + 1/3 computed in doubles):
-- far below anything a paytable change can move.
local BAND_SLACK = 1e-12

--- band(rtp, band, game) -> nil | reason: band = {low, high}, inclusive.
function M.band(rtp, band, game)
  if type(band) ~= "table" or type(band[1]) ~= "number" or type(band[2]) ~= "number" then
    return "no RTP band configured for " .. game .. " in config/rtp_bands.lua"
  end
  if not (rtp >= band[1] - BAND_SLACK and rtp <= band[2] + BAND_SLACK) then
    return string.format("exact RTP %.6f is outside the band [%g, %g] of config/rtp_bands.lua", rtp, band[1], band[2])
  end
end

local INTERFACE = {
  config = "table", input = "function", play = "function", exact = "function", distribution = "function",
  sample = "function", self_check = "function", public = "function", note = "string",
}

--- interface(game, game_type) -> nil | reason: game exports every member of
--- the interface above with its type.
function M.interface(game, game_type)
  if type(game) ~= "table" then return "game " .. game_type .. ": the module must return a table" end
  local missing = {}
  for name, kind in pairs(INTERFACE) do
    if type(game[name]) ~= kind then missing[#missing + 1] = name .. " (" .. kind .. ")" end
  end
  if #missing > 0 then
    table.sort(missing)
    return "game " .. game_type .. " lacks " .. table.concat(missing, ", ")
  end
end

--- stake(config, fields) -> bet | nil, reason: fields.bet_amount as the
--- stake of a game with min_bet/max_bet.
function M.stake(config, fields)
  local bet = fields.bet_amount
  if not M.is_int(bet) or bet < config.min_bet or bet > config.max_bet then
    return nil, "bet_amount must be an integer from " .. config.min_bet .. " to " .. config.max_bet
  end
  return bet
end

return M
