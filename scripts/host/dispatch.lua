--[[ dispatch.lua - the request pipeline of one generation.

vm.c calls dispatch(route_index, req) in a fresh coroutine for every routed
request; it returns status, body, header block ("Name: value\r\n"…) and the
user id for the access log. Steps: authenticate (FastAPI resolves security
dependencies before parameters, so a request without a token and with a bad
body gets 403, not 422), validate path/query/header/body against the route's
schemas (all errors together, 422), run the handler, encode the answer.

A handler returns `body` (200) or `status, body [, headers]`; it may raise
host.error(status, detail [, headers]) from any depth. Any other error is a
500 with the request id, and the traceback goes to the log.
]]

local ctx = ...
local routes, schema, json, host = ctx.routes, ctx.schema, ctx.json, ctx.host
local HttpError = ctx.HttpError
local ws_api = ctx.ws
local repair = ctx.text.repair
local get_authenticator = ctx.authenticator

local encode, decode = json.encode, json.decode
local traceback = debug.traceback
local gsub, char, tonumber, type, pairs = string.gsub, string.char, tonumber, type, pairs
local concat = table.concat

local function unescape(s)
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

-- Parses a query string; a repeated name keeps its last value.
local function parse_query(q)
  local args = {}
  if q == "" then return args end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    if k ~= "" then args[repair(unescape(k))] = repair(unescape(v)) end
  end
  return args
end

local function header_block(headers)
  if not headers then return nil end
  local out = {}
  for k, v in pairs(headers) do
    -- CR/LF would split the response: drop them.
    out[#out + 1] = gsub(tostring(k), "[\r\n:]", "") .. ": " .. gsub(tostring(v), "[\r\n]", "") .. "\r\n"
  end
  return concat(out)
end

local function on_error(e)
  if getmetatable(e) == HttpError then return e end
  return traceback(tostring(e), 2)
end

-- Validates input against compiled, appending any errors to the request's
-- list (created on the first error: no allocation on the happy path).
local function check(req, compiled, input, where)
  local values, errs = schema.validate(compiled, input, where)
  if errs then
    local errors = req.validation_errors or {}
    for i = 1, #errs do errors[#errors + 1] = errs[i] end
    req.validation_errors = errors
  end
  return values
end

local function run(route, req)
  if route.auth ~= "none" then get_authenticator()(req, route) end
  req.raw_query, req.raw_body = req.query, req.body
  local s = route.schemas
  if s.params then
    for k, v in pairs(req.params) do req.params[k] = repair(v) end
    req.params = check(req, s.params, req.params, "path")
  end
  if s.query then req.query = check(req, s.query, parse_query(req.raw_query), "query") end
  if s.headers then
    local headers = {}
    for k, v in pairs(req.headers) do headers[k] = repair(v) end
    req.header_params = check(req, s.headers, headers, "header")
  end
  if s.body then
    local input, raw = nil, req.raw_body
    if raw and raw ~= "" then
      local value, msg, offset = decode(raw)
      if value == nil and msg then
        local errors = req.validation_errors or {}
        errors[#errors + 1] = schema.json_error(offset or 0, msg)
        req.validation_errors = errors
      else
        input = value
      end
    end
    local errors = req.validation_errors
    if not (errors and errors[#errors].type == "json_invalid") then req.body = check(req, s.body, input, "body") end
  end
  if req.validation_errors then return 422, { detail = req.validation_errors } end
  return route.handler(req)
end

local function internal_error(req, err)
  host.log.error("unhandled error in " .. req.method .. " " .. req.path, { traceback = tostring(err) })
  return 500, encode { detail = "Internal Server Error", request_id = req.request_id }, nil, nil
end

-- Encodes the answer; never raises (an unencodable body is a 500), so the
-- hot path needs no second protected call.
local function finish(req, status, body, headers)
  if type(status) ~= "number" then -- handler returned only a body
    status, body, headers = 200, status, nil
  end
  local text
  if body == nil then
    text = ""
  elseif type(body) == "string" then
    text = body
  else
    local err
    text, err = encode(body)
    if not text then return internal_error(req, "response body cannot be encoded as JSON: " .. tostring(err)) end
  end
  return status, text, header_block(headers), req.user and req.user.id
end


-- WebSocket sessions: the table on_handshake returned, plus these methods.
local function sock_send(session, message, binary)
  local text = type(message) == "string" and message or encode(message)
  return ws_api.send_local(session.id, text, binary and "binary" or nil)
end

local function sock_close(session, code, reason)
  ws_api.close_local(session.id, code or 1000, reason or "")
end

local function ws_event(session, kind, a, b)
  local handlers = session.route.ws
  local fn = (kind == "open" and handlers.on_open) or (kind == "message" and handlers.on_message)
    or (kind == "close" and handlers.on_close)
  if not fn then return end
  local ok, err = xpcall(fn, traceback, session, a, b)
  if not ok then host.log.error("websocket " .. kind .. " handler failed", { traceback = tostring(err) }) end
end

-- Runs on_handshake; returns an HTTP refusal, or 101, subprotocol, session
-- (vm.c then completes the upgrade).
local function ws_handshake(route, req)
  local session = {}
  local on_handshake = route.ws.on_handshake
  if on_handshake then
    local ok, a, b, c = xpcall(on_handshake, on_error, req)
    if not ok then
      if getmetatable(a) ~= HttpError then return internal_error(req, a) end
      return finish(req, a.status, { detail = a.detail }, a.headers)
    end
    if a == nil then return finish(req, b or 403, { detail = c or "Forbidden" }) end
    if type(a) == "table" then session = a end
  end
  session.route, session._event, session.send, session.close = route, ws_event, sock_send, sock_close
  return 101, session.protocol or "", session
end

return function(index, req)
  local route = routes[index]
  req.route = route
  if route.ws then return ws_handshake(route, req) end
  local ok, status, body, headers = xpcall(run, on_error, route, req)
  if not ok then
    local e = status
    if getmetatable(e) ~= HttpError then return internal_error(req, e) end
    status, body, headers = e.status, { detail = e.detail }, e.headers
  end
  return finish(req, status, body, headers)
end
