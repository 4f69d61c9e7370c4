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

return M
