-- text.lua - making untrusted bytes safe to echo.
--
-- Path segments, query strings and headers are raw bytes from the client;
-- a 422 echoes them back as JSON `input`, and the JSON encoder refuses
-- invalid UTF-8 (a 500 would follow). Like Starlette's percent-decoding
-- (errors="replace"), every byte of an invalid sequence becomes U+FFFD.
local json = require "json"

local M = {}

local valid = json.utf8_valid
local byte, sub, concat = string.byte, string.sub, table.concat
local REPLACEMENT = "\239\191\189"

--- repair(s) -> s when it is valid UTF-8, else a copy with U+FFFD for each
--- byte that does not start a valid sequence.
function M.repair(s)
  if valid(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = byte(s, i)
    local len = c < 0x80 and 1 or c >= 0xC2 and c <= 0xDF and 2 or c >= 0xE0 and c <= 0xEF and 3
      or c >= 0xF0 and c <= 0xF4 and 4 or 0
    local chunk = len > 0 and sub(s, i, i + len - 1)
    if chunk and #chunk == len and valid(chunk) then
      out[#out + 1] = chunk
      i = i + len
    else
      out[#out + 1] = REPLACEMENT
      i = i + 1
    end
  end
  return concat(out)
end

--- nul_item(v, loc) -> FastAPI's 422 item for the first string (key or
--- value) inside v holding a NUL byte, which PostgreSQL text and jsonb cannot
--- store, its loc extended with the keys leading there (0-based indexes);
--- nil when there is none.
function M.nul_item(v, loc)
  local function find(x, at)
    if type(x) == "string" then return x:find("\0", 1, true) and at or nil end
    if type(x) ~= "table" then return nil end
    for k, y in pairs(x) do
      local here = { unpack(at) }
      here[#here + 1] = type(k) == "number" and k - 1 or k
      if type(k) == "string" and k:find("\0", 1, true) then return here end
      local found = find(y, here)
      if found then return found end
    end
  end
  local where = find(v, loc)
  if where then return { loc = where, type = "value_error", msg = "Value error, String must not contain NUL characters" } end
end

--- like_pattern(text) -> an ILIKE/LIKE pattern matching text anywhere in a
--- string, the wildcards and the escape character in text matching
--- themselves (PostgreSQL's default escape is the backslash).
function M.like_pattern(text)
  return "%" .. text:gsub("[\\%%_]", "\\%0") .. "%"
end

return M
