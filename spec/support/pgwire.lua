-- pgwire.lua - the PostgreSQL wire-protocol pieces the two proxies share:
-- the spec's COMMIT-losing proxy (spec/support/pgproxy.lua) and the
-- benchmark's statement recorder (tools/bench/pgtrace.lua). Both relay
-- plain typed messages (sslmode=disable&gssencmode=disable) with LuaSocket.
local socket = require "socket"

local M = {}

--- u32(s, i): the big-endian unsigned 32-bit integer at byte i of s.
function M.u32(s, i)
  local a, b, c, d = s:byte(i, i + 3)
  return ((a * 256 + b) * 256 + c) * 256 + d
end

--- i32(s, i): the same, signed (a field length of -1 is NULL).
function M.i32(s, i)
  local v = M.u32(s, i)
  return v >= 2 ^ 31 and v - 2 ^ 32 or v
end

--- u16(s, i): the big-endian unsigned 16-bit integer at byte i of s.
function M.u16(s, i)
  local a, b = s:byte(i, i + 1)
  return a * 256 + b
end

--- cstring(s, i) -> text, next: the NUL-terminated string at byte i and the
--- index after its NUL; nil (and #s + 1) when s holds no NUL from i on.
function M.cstring(s, i)
  local z = s:find("\0", i, true)
  if not z then return nil, #s + 1 end
  return s:sub(i, z - 1), z + 1
end

--- send_all(sock, data) -> ok: sends all of data on a nonblocking socket,
--- waiting while its buffer is full; false when the peer is gone.
function M.send_all(sock, data)
  local i = 1
  while i <= #data do
    local n, err, last = sock:send(data, i)
    if n then
      i = n + 1
    elseif err == "timeout" then
      i = last + 1
      socket.select(nil, { sock }, 1)
    else
      return false
    end
  end
  return true
end

return M
