-- prng.lua - a fast seeded source of 32-bit words for simulations in specs
-- (Marsaglia's xorshift128). Wrapped by fair.source it has the same int /
-- float / weighted mapping as the provably-fair stream, at a fraction of an
-- HMAC's cost, so specs can play millions of rounds in seconds.
local bit = require "bit"
local bxor, lshift, rshift, tobit = bit.bxor, bit.lshift, bit.rshift, bit.tobit

local M = {}

--- words(seed) -> next_word(): integers in [0, 2^32), fixed by the integer seed.
function M.words(seed)
  local x, y, z, w = tobit(seed * 2654435761 % 4294967296), tobit(362436069), tobit(521288629), tobit(88675123)
  if x == 0 then x = 1 end
  local function next_word()
    local t = bxor(x, lshift(x, 11))
    x, y, z = y, z, w
    w = bxor(w, rshift(w, 19), bxor(t, rshift(t, 8)))
    return w % 4294967296
  end
  for _ = 1, 64 do next_word() end
  return next_word
end

return M
