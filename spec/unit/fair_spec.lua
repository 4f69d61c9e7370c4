-- Unit specs for scripts/lib/fair.lua, the provably-fair stream of
-- CONTRACT.md §8, and for spec/support/sha256.lua, the pure-Lua HMAC the
-- unit specs derive the stream with.
local fair = require "lib.fair"
local sha = require "spec.support.sha256"

local TWO32 = 4294967296

-- A source over the given words that fails when a draw needs more of them.
local function scripted(words)
  local i = 0
  local source = fair.source(function()
    i = i + 1
    return assert(words[i], "scripted source exhausted")
  end)
  return source, function() return i end
end

describe("spec/support/sha256", function()
  it("matches the FIPS 180-4 digests", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sha.hex(sha.sha256("abc")))
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sha.hex(sha.sha256("")))
    assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      sha.hex(sha.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))
  end)

  it("matches the RFC 4231 HMAC-SHA256 vectors", function()
    assert.equal("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      sha.hex(sha.hmac_sha256(string.rep("\11", 20), "Hi There")))
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      sha.hex(sha.hmac_sha256("Jefe", "what do ya want for nothing?")))
    -- Test case 6: a key longer than the block is hashed first.
    assert.equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      sha.hex(sha.hmac_sha256(string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First")))
  end)
end)

describe("fair stream", function()
  -- Derived independently: `printf "casino-club-spec:0:0" | openssl dgst -sha256 -hmac <S>`
  -- for the block, Python's hmac module for the words.
  local S = "9b1c5e7f3a2d4c6b8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"
  local C = "casino-club-spec"

  it("reads block_0 ‖ block_1 ‖ … as big-endian words", function()
    assert.equal("1054a9e9c5d3813f5d061df8222bd6f247d3b93efdbc097be11a0a33402bc072",
      sha.hex(sha.hmac_sha256(S, C .. ":0:0")))
    local s = fair.stream(S, C, 0, sha.hmac_sha256)
    local expected = { 273983977, 3318972735, 1560681976, 573298418, 1205057854, 4256958843, 3776580147,
      1076609138, 3315997530, 1359059670 } -- the last two from block_1
    for i, w in ipairs(expected) do assert.equal(w, s:word(), "word " .. i) end
  end)

  it("formats the message as client_seed:nonce:cursor in decimal", function()
    local seen = {}
    local s = fair.stream("key", "abc", 12345678901, function(key, msg)
      seen[#seen + 1] = key .. "|" .. msg
      return string.rep("\0", 32)
    end)
    for _ = 1, 9 do s:word() end
    assert.same({ "key|abc:12345678901:0", "key|abc:12345678901:1" }, seen)
  end)

  it("uses host.crypto.hmac_sha256 when no HMAC is given (inside the host)", function()
    package.loaded["host.crypto"] = { hmac_sha256 = sha.hmac_sha256 }
    finally(function() package.loaded["host.crypto"] = nil end)
    assert.equal(273983977, fair.stream(S, C, 0):word())
  end)

  describe("int(n)", function()
    it("rejects words at or above 2^32 − (2^32 mod n), then returns u mod n", function()
      local s, used = scripted { TWO32 - 1, 7 } -- limit for n = 3 is 2^32 − 1
      assert.equal(1, s:int(3))
      assert.equal(2, used())
      s, used = scripted { 4294967290, 4294967291, 4294967289 } -- n = 10: limit 4294967290
      assert.equal(9, s:int(10))
      assert.equal(3, used())
    end)

    it("accepts the last word below the limit and handles n = 1 and n = 2^32", function()
      local s = scripted { TWO32 - 2, 5, TWO32 - 1 }
      assert.equal((TWO32 - 2) % 3, s:int(3))
      assert.equal(0, s:int(1))
      assert.equal(TWO32 - 1, s:int(TWO32))
    end)

    it("refuses n outside 1..2^32 or fractional", function()
      local s = scripted { 1, 2, 3 }
      assert.has_error(function() s:int(0) end)
      assert.has_error(function() s:int(2.5) end)
      assert.has_error(function() s:int(TWO32 + 1) end)
    end)
  end)

  describe("float()", function()
    it("is (u1·2^21 + ⌊u2/2^11⌋) / 2^53", function()
      assert.equal(0, scripted({ 0, 2047 }):float()) -- the low 11 bits of u2 are dropped
      assert.equal(0.5, scripted({ 2 ^ 31, 0 }):float())
      assert.equal((2 ^ 53 - 1) / 2 ^ 53, scripted({ TWO32 - 1, TWO32 - 1 }):float())
      assert.equal((3 * 2 ^ 21 + 5) / 2 ^ 53, scripted({ 3, 5 * 2048 + 100 }):float())
      assert.equal(3 * 2 ^ 21 + 5, scripted({ 3, 5 * 2048 + 100 }):float53())
    end)
  end)

  describe("weighted(w)", function()
    it("returns the first j with w1+…+wj > r at every boundary", function()
      -- weights {1, 2, 3}: r = int(6) = the word itself for small words.
      local expected = { [0] = 1, 2, 2, 3, 3, 3 }
      for r = 0, 5 do
        assert.equal(expected[r], scripted({ r }):weighted { 1, 2, 3 }, "r = " .. r)
      end
    end)

    it("draws r with int(Σw), rejection included", function()
      local s, used = scripted { TWO32 - 1, 6 } -- Σw = 3: the first word is rejected
      assert.equal(1, s:weighted { 1, 1, 1 })
      assert.equal(2, used())
    end)
  end)
end)
