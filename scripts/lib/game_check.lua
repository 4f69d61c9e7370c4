--[[ game_check.lua - the checks every game's self_check shares.

A game's self_check runs at every reload (scripts/host/loader.lua); a config
that fails one of these checks refuses the whole generation, so the previous
paytable keeps serving. Each check returns nil when the value is fine, or a
sentence naming the offending field.
]]

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

return M
