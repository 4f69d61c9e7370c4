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
    if k ~= "" then args[unescape(k)] = unescape(v) end
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

local function run(route, req)
  local authenticate = route.auth ~= "none" and get_authenticator()
  if authenticate then authenticate(req, route) end
  local s = route.schemas
  local errors
  local function check(compiled, input, where)
    local values, errs = schema.validate(compiled, input, where)
    if errs then
      errors = errors or {}
      for i = 1, #errs do errors[#errors + 1] = errs[i] end
    end
    return values
  end
  if s.params then req.params = check(s.params, req.params, "path") end
  req.raw_query = req.query
  if s.query then req.query = check(s.query, parse_query(req.raw_query), "query") end
  if s.headers then req.header_params = check(s.headers, req.headers, "header") end
  req.raw_body = req.body
  if s.body then
    local input
    if req.raw_body and req.raw_body ~= "" then
      local value, msg, offset = decode(req.raw_body)
      if value == nil and msg then
        errors = errors or {}
        errors[#errors + 1] = schema.json_error(offset or 0, msg)
      else
        input = value
      end
    end
    if not (errors and errors[#errors].type == "json_invalid") then
      req.body = check(s.body, input, "body")
    end
  end
  if errors then return 422, { detail = errors } end
  return route.handler(req)
end

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
    if not text then error("response body cannot be encoded as JSON: " .. tostring(err), 0) end
  end
  return status, text, header_block(headers), req.user and req.user.id
end

local function internal_error(req, err)
  host.log.error("unhandled error in " .. req.method .. " " .. req.path, { traceback = tostring(err) })
  return 500, encode { detail = "Internal Server Error", request_id = req.request_id }, nil, nil
end

return function(index, req)
  local route = routes[index]
  req.route = route
  local ok, status, body, headers = xpcall(run, on_error, route, req)
  if not ok then
    local e = status
    if getmetatable(e) ~= HttpError then return internal_error(req, e) end
    status, body, headers = e.status, { detail = e.detail }, e.headers
  end
  local ok2, s, text, hdrs, user = pcall(finish, req, status, body, headers)
  if not ok2 then return internal_error(req, s) end
  return s, text, hdrs, user
end
