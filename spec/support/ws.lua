-- ws.lua - a blocking WebSocket client for specs (LuaSocket, RFC 6455).
--
-- Raw frames on purpose: specs send fragments, pings, oversize and masked
-- or unmasked frames, and read exactly what the host sent.
local socket = require "socket"
local bit = require "bit"
local mime = require "mime"

local M = {}
local Client = {}
Client.__index = Client

local function mask(payload, key)
  local out = {}
  for i = 1, #payload do
    out[i] = string.char(bit.bxor(payload:byte(i), key:byte((i - 1) % 4 + 1)))
  end
  return table.concat(out)
end

--- Builds one client frame (masked unless opts.unmasked).
function M.frame(opcode, payload, opts)
  opts = opts or {}
  local fin = opts.fin == false and 0 or 0x80
  local len = #payload
  local head = string.char(fin + opcode)
  local maskbit = opts.unmasked and 0 or 0x80
  if len < 126 then
    head = head .. string.char(maskbit + len)
  elseif len < 65536 then
    head = head .. string.char(maskbit + 126, bit.rshift(len, 8), bit.band(len, 255))
  else
    head = head .. string.char(maskbit + 127, 0, 0, 0, 0,
      bit.band(bit.rshift(len, 24), 255), bit.band(bit.rshift(len, 16), 255),
      bit.band(bit.rshift(len, 8), 255), bit.band(len, 255))
  end
  if opts.unmasked then return head .. payload end
  local key = "\1\2\3\4"
  return head .. key .. mask(payload, key)
end

--- Opens a WebSocket to path; returns client, response (status, headers),
--- or nil, response when the server refused the upgrade.
--- connect(port, path, headers, early) -> client, response (or nil,
--- response when refused). early: bytes sent in the same write as the
--- handshake (frames the server must keep for after the upgrade).
function M.connect(port, path, headers, early)
  local sock = assert(socket.tcp())
  sock:settimeout(10)
  assert(sock:connect("127.0.0.1", port))
  local key = mime.b64("0123456789abcdef")
  local lines = {
    "GET " .. path .. " HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
    "Sec-WebSocket-Key: " .. key, "Sec-WebSocket-Version: 13",
  }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. (early or ""))
  local status_line = assert(sock:receive("*l"))
  local res = { status = tonumber(status_line:match("^HTTP/1%.1 (%d+)")), headers = {} }
  while true do
    local line = assert(sock:receive("*l"))
    if line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.*)$")
    res.headers[k:lower()] = v
  end
  if res.status ~= 101 then
    local len = tonumber(res.headers["content-length"] or "0")
    res.body = len > 0 and sock:receive(len) or ""
    sock:close()
    return nil, res
  end
  return setmetatable({ sock = sock }, Client), res
end

function Client:send_raw(data) return self.sock:send(data) end

function Client:send(payload, opcode) return self.sock:send(M.frame(opcode or 1, payload)) end

--- Reads one server frame: opcode, payload, fin; or nil, socket error.
function Client:read_frame()
  local h, err = self.sock:receive(2)
  if not h then return nil, err end
  local b1, b2 = h:byte(1, 2)
  local len = bit.band(b2, 127)
  if len == 126 then
    local e = assert(self.sock:receive(2))
    len = e:byte(1) * 256 + e:byte(2)
  elseif len == 127 then
    local e = assert(self.sock:receive(8))
    len = 0
    for i = 1, 8 do len = len * 256 + e:byte(i) end
  end
  local payload = len > 0 and self.sock:receive(len) or ""
  if not payload then return nil, "short frame" end
  return bit.band(b1, 15), payload, bit.band(b1, 128) ~= 0
end

--- Reads frames until a data or close frame; pings are reported too.
function Client:read_message()
  return self:read_frame()
end

--- Reads until a close frame arrives; returns its code (or nil, error).
function Client:read_close()
  while true do
    local op, payload = self:read_frame()
    if not op then return nil, payload end
    if op == 8 then
      if #payload < 2 then return 1005 end
      return payload:byte(1) * 256 + payload:byte(2), payload:sub(3)
    end
  end
end

function Client:close(code)
  code = code or 1000
  self.sock:send(M.frame(8, string.char(bit.rshift(code, 8), bit.band(code, 255))))
end

function Client:shutdown() self.sock:close() end

return M
