-- text_spec.lua - lib/text.lua: invalid UTF-8 from the wire becomes U+FFFD.
package.preload.json = function()
  -- the host's json.utf8_valid, in plain Lua for the unit run (strict RFC 3629)
  local function valid(s)
    local i, n = 1, #s
    while i <= n do
      local c = s:byte(i)
      local len = c < 0x80 and 1 or c >= 0xC2 and c <= 0xDF and 2 or c >= 0xE0 and c <= 0xEF and 3
        or c >= 0xF0 and c <= 0xF4 and 4 or 0
      if len == 0 or i + len - 1 > n then return false end
      for k = i + 1, i + len - 1 do
        local b = s:byte(k)
        if b < 0x80 or b > 0xBF then return false end
      end
      local c2 = s:byte(i + 1)
      if (c == 0xE0 and c2 < 0xA0) or (c == 0xED and c2 > 0x9F) or (c == 0xF0 and c2 < 0x90)
        or (c == 0xF4 and c2 > 0x8F) then return false end
      i = i + len
    end
    return true
  end
  return { utf8_valid = valid }
end
local text = require "lib.text"

describe("text.repair", function()
  it("keeps valid UTF-8 as it is", function()
    assert.equal("abc 토큰 7️⃣", text.repair("abc 토큰 7️⃣"))
    assert.equal("", text.repair(""))
  end)

  it("replaces each byte of an invalid sequence with U+FFFD", function()
    assert.equal("\239\191\189", text.repair("\255"))
    assert.equal("a\239\191\189b", text.repair("a\255b"))
    assert.equal("\239\191\189\239\191\189", text.repair("\192\128")) -- overlong NUL
    assert.equal("x\239\191\189\239\191\189", text.repair("x\237\160")) -- truncated: each byte replaced
  end)

  it("keeps the valid sequences around an invalid byte", function()
    assert.equal("토\239\191\189큰", text.repair("토\200큰"))
  end)
end)
