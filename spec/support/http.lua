-- http.lua - a small blocking HTTP/1.1 client for specs (LuaSocket).
--
-- Raw on purpose: specs need to send malformed requests, pipeline several
-- requests on one connection, hold a connection open, and read exactly what
-- the host wrote. Responses are {status, headers (lower-case names), body}.
local socket = require "socket"
local cjson = require "cjson.safe"

local M = {}

local Conn = {}
Conn.__index = Conn

--- Opens a connection to 127.0.0.1:port (timeout in seconds, default 10).
function M.connect(port, timeout)
  local sock = assert(socket.tcp())
  sock:settimeout(timeout or 10)
  local ok, err = sock:connect("127.0.0.1", port)
  if not ok then return nil, err end
  return setmetatable({ sock = sock }, Conn)
end

function Conn:send(data)
  return self.sock:send(data)
end

function Conn:close()
  self.sock:close()
end

--- Formats a request; body may be a string or a table (JSON-encoded).
function M.format(method, path, body, headers)
  headers = headers or {}
  if type(body) == "table" then
    body = assert(cjson.encode(body))
    headers["Content-Type"] = headers["Content-Type"] or "application/json"
  end
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: 127.0.0.1" }
  for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
  if body and not headers["Transfer-Encoding"] then lines[#lines + 1] = "Content-Length: " .. #body end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

--- Reads one response. head_only: a response to HEAD (no body follows).
--- Returns the response, or nil and the socket error ("closed", "timeout").
function Conn:read_response(head_only)
  local line, err = self.sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h, herr = self.sock:receive("*l")
    if not h then return nil, herr end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  local body = ""
  if status == 100 then
    return { status = 100, headers = headers, body = "" }
  end
  local len = tonumber(headers["content-length"] or "")
  if head_only then
    body = ""
  elseif len then
    if len > 0 then
      local b, berr = self.sock:receive(len)
      if not b then return nil, berr end
      body = b
    end
  elseif headers.connection == "close" then
    body = self.sock:receive("*a") or ""
  end
  local res = { status = status, headers = headers, body = body }
  res.json = cjson.decode(body)
  return res
end

--- Sends one request on this connection and reads its response.
function Conn:request(method, path, body, headers)
  local ok, err = self:send(M.format(method, path, body, headers))
  if not ok then return nil, err end
  return self:read_response(method == "HEAD")
end

--- One request on a fresh connection.
function M.request(port, method, path, body, headers)
  local c, err = M.connect(port)
  if not c then return nil, err end
  local res, rerr = c:request(method, path, body, headers)
  c:close()
  return res, rerr
end

--- Sends n requests on n connections at once (all written before any answer
--- is read), then returns the n responses in order. body/headers may be a
--- function of the index.
--- A GET on a connection of its own; with If-None-Match among the headers
--- a 304 (no body) is read.
function M.get(port, path, headers)
  local c = assert(M.connect(port))
  assert(c:send(M.format("GET", path, nil, headers)))
  local res = assert(c:read_response(headers and headers["If-None-Match"] ~= nil))
  c:close()
  return res
end

function M.concurrent(port, n, method, path, body, headers)
  local conns = {}
  for i = 1, n do
    conns[i] = assert(M.connect(port, 30))
    local b = type(body) == "function" and body(i) or body
    local h = {} -- format() adds to it: a fresh copy per request
    for k, v in pairs(type(headers) == "function" and headers(i) or headers or {}) do h[k] = v end
    assert(conns[i]:send(M.format(method, path, b, h)))
  end
  local out = {}
  for i, c in ipairs(conns) do
    out[i] = assert(c:read_response())
    c:close()
  end
  return out
end

M.json = cjson
return M
