--[[ fair.lua - the provably-fair random stream (CONTRACT.md §8).

For (server seed S, client seed C, nonce N) the stream is
block_0 ‖ block_1 ‖ … with block_k = HMAC-SHA256(key = S, msg = C..":"..N..":"..k),
read as consecutive 32-bit big-endian words. Every game draws from it only
through the three mappings below, so a player holding S, C and N re-derives
any outcome with a few lines of code in any language:

  int(n)       uniform in [0, n): limit = 2^32 − (2^32 mod n); take words until
               u < limit; return u mod n (rejection, so no modulo bias).
  float()      uniform in [0, 1): words u1, u2 → (u1·2^21 + ⌊u2/2^11⌋) / 2^53.
  weighted(w)  r = int(Σw); the first j (1-based) with w1+…+wj > r.

The mappings sit on any source of 32-bit words (fair.source), so the same
code serves the HMAC stream, scripted words in specs and fast seeded
generators in simulations. Words are built with arithmetic on doubles, never
with LuaJIT's signed 32-bit `bit` operations, so every value is exact.
]]

local M = {}

local TWO32 = 4294967296
local TWO21 = 2097152
local TWO11 = 2048
local TWO53 = 9007199254740992

local Source = {}
Source.__index = Source

--- source:word() -> integer in [0, 2^32): the next word of the stream.
function Source:word()
  return self.next_word()
end

--- source:int(n) -> integer in [0, n), for an integer 1 <= n <= 2^32.
function Source:int(n)
  if n < 1 or n > TWO32 or n % 1 ~= 0 then error("fair: int(n) needs an integer 1 <= n <= 2^32", 2) end
  local limit = TWO32 - TWO32 % n
  local next_word = self.next_word
  local u = next_word()
  while u >= limit do u = next_word() end
  return u % n
end

--- source:float53() -> integer F in [0, 2^53), the numerator of float() = F / 2^53
--- (games needing exact arithmetic, such as the crash point, use it).
function Source:float53()
  local next_word = self.next_word
  local u1 = next_word()
  local u2 = next_word()
  return u1 * TWO21 + math.floor(u2 / TWO11)
end

--- source:float() -> number in [0, 1) with 53 random bits.
function Source:float()
  return self:float53() / TWO53
end

--- source:weighted(weights) -> index j in 1..#weights (positive integer weights).
function Source:weighted(weights)
  local total = 0
  for i = 1, #weights do total = total + weights[i] end
  local r = self:int(total)
  local acc = 0
  for j = 1, #weights do
    acc = acc + weights[j]
    if acc > r then return j end
  end
  error("fair: weighted() needs positive weights", 2)
end

--- fair.source(next_word) -> a source with :word, :int, :float, :float53 and
--- :weighted over next_word(), a function returning integers in [0, 2^32).
function M.source(next_word)
  return setmetatable({ next_word = next_word }, Source)
end

--- fair.words(block) -> the eight big-endian 32-bit words of a 32-byte block.
function M.words(block)
  local w = {}
  for i = 0, 7 do
    local b1, b2, b3, b4 = block:byte(4 * i + 1, 4 * i + 4)
    w[i + 1] = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  end
  return w
end

--- fair.stream(server_seed, client_seed, nonce [, hmac]) -> source over the
--- HMAC-SHA256 stream of §8. hmac(key, message) -> 32 raw bytes defaults to
--- host.crypto.hmac_sha256 (resolved on first use, so this module also
--- loads outside the host, where callers pass their own HMAC).
function M.stream(server_seed, client_seed, nonce, hmac)
  hmac = hmac or require("host.crypto").hmac_sha256
  local prefix = tostring(client_seed) .. ":" .. string.format("%d", nonce) .. ":"
  local k, words, pos = 0, nil, 9
  return M.source(function()
    if pos > 8 then
      words = M.words(hmac(server_seed, prefix .. k))
      k, pos = k + 1, 1
    end
    local u = words[pos]
    pos = pos + 1
    return u
  end)
end

return M
