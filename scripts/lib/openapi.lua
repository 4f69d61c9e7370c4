--[[ openapi.lua - the OpenAPI 3.1 document of a route table, and its text.

M.document(routes) builds the document from host.routes() (the loaded
generation's declarations: DESIGN.md, "one declaration drives validation and
the document"); M.render(routes) is its JSON text, the bytes GET
/openapi.json serves and `cchost openapi` prints. No I/O: it runs in the
sandbox and under busted alike.

What goes in: every route of origin "scripts" (routes switched off with
enabled = false never reach the table), once, under its first tag; never a
fixture route, never implicit HEAD, never the document's own plumbing
(/openapi.json, /docs, /redoc and their assets, /metrics: they serve the
document and the scrape, they are not the API). A WebSocket route becomes a
GET operation flagged x-websocket whose description says how to upgrade.
Paths drop the parameter types ({user_id:int} -> {user_id}) and a trailing
slash (the router answers /api/games and /api/games/ alike, CONTRACT.md §1).

Responses. A route declares its statuses next to it, compactly:
  responses = {
    [200] = "Token",                                  -- a description
    [400] = { "INVITE_INVALID", "SITE_ID_TAKEN" },    -- names in lib/errors.lua
    [404] = { "USER_NOT_FOUND", description = "…" },  -- names, and prose
    [422] = true,                                     -- the standard text
  }
Names keep every detail text in the one catalogue (lib/errors.lua): the
document lists each name's text and gives it as an example body.
check_responses, which the loader runs at declaration (a typo fails the
reload), wants statuses 100-599, names of that status, a standard text for
true, and one 1xx/2xx status. Success bodies are JSON of any shape, 204 and
101 have none; an error with names or a standard text has FastAPI's body,
{"detail": string} (HTTPError) or the 422 list (HTTPValidationError); one
described only in prose may be any JSON (/health's 503 is its usual body).
Added when not declared: 401 and 403 on routes whose auth is not "none"
(CONTRACT.md §4.4), 422 on routes with parameters or a body, 409 on
Idempotency-Key routes. A route that declares nothing degrades to its
success status plus those (spec/integration/docs_spec.lua lists such routes
so they can be completed).

Determinism. The host's JSON encoder writes keys in Lua's next() order,
and LuaJIT seeds its string hash per process, so two processes would order
one table differently. encode() therefore writes its own JSON: the top-level
keys in the usual order (openapi, info, servers, tags, paths, components),
every other object's keys sorted bytewise, arrays in declaration order.
]]

local schema = require "lib.schema"
local errors = require "lib.errors"

local M = {}

local INFO = {
  title = "Casino-Club F2P API",
  description = "Backend API for Casino-Club F2P gaming platform",
  version = "1.0.0",
}

-- Marks an empty table as a JSON array ([]), as json.array() does.
local ARRAY = {}
local function array() return setmetatable({}, ARRAY) end

-- The standard texts `true` stands for. Not 404: name the catalogue's
-- "not found" errors instead.
local STATUS_TEXT = {
  [101] = "Switching Protocols", [200] = "Successful Response", [201] = "Created", [204] = "No Content",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [409] = "Conflict",
  [422] = "Validation Error", [429] = "Too Many Requests", [503] = "Service Unavailable",
}

-- Tags in the contract's order, with their descriptions; a tag not listed
-- here follows them, in the order routes first use it.
local TAGS = {
  { "System", "Banner, API index and health" },
  { "Authentication", "Signup, login, token refresh and logout" },
  { "Invite Codes", "Invite codes: generate, validate, list, deactivate" },
  { "RBAC", "Rank-gated probes" },
  { "Users", "The caller's profile, balances and statistics" },
  { "Fairness", "Provably fair seeds: hash, client seed, rotation, revealed seeds" },
  { "Games", "Game list, slot, rock-paper-scissors, gacha and crash" },
  { "Rewards", "Reward grants and history" },
  { "Events & Missions", "Live events and missions: progress and claims" },
  { "Notifications", "The caller's notifications" },
  { "websockets", "Live notifications over WebSocket" },
  { "Events stream", "Player actions and the domain event stream" },
  { "Admin", "Back office: users, rewards, notifications, crash rounds, scripts" },
  { "Admin Events", "Events administration" },
  { "Admin Missions", "Missions administration" },
}

-- The document's own plumbing (see the top of the file).
local function plumbing(path)
  return path == "/openapi.json" or path == "/metrics" or path == "/docs" or path == "/redoc"
    or path:find("^/docs/") ~= nil or path:find("^/redoc/") ~= nil
end

local KNOWN_NAMES = {}
for _, name in ipairs(errors.names()) do KNOWN_NAMES[name] = true end

-- nil, or what is wrong with the value v declared for status.
local function check_value(status, v)
  if v == true then
    return not STATUS_TEXT[status] and "no standard text for this status: describe it" or nil
  elseif type(v) == "string" then
    return v == "" and "give a description" or nil
  elseif type(v) ~= "table" or #v == 0 then
    return "give a description, true, or a list of lib/errors.lua names"
  end
  for k, x in pairs(v) do
    if k == "description" then
      if type(x) ~= "string" or x == "" then return "description must be a non-empty string" end
    elseif type(k) ~= "number" or not KNOWN_NAMES[x] then
      return "'" .. tostring(x) .. "' is not a name of lib/errors.lua"
    elseif errors.status(x) ~= status then
      return x .. " is a " .. errors.status(x) .. " error"
    end
  end
end

--- check_responses(responses) -> nil, or a message naming what is wrong
--- with a `responses` declaration (the form at the top of the file).
function M.check_responses(responses)
  if type(responses) ~= "table" then return "responses must be a table { [status] = description }" end
  local success = false
  for status, v in pairs(responses) do
    if type(status) ~= "number" or status ~= math.floor(status) or status < 100 or status > 599 then
      return "responses: bad status '" .. tostring(status) .. "' (an integer 100-599)"
    end
    local bad = check_value(status, v)
    if bad then return "responses[" .. status .. "]: " .. bad end
    success = success or status < 300
  end
  if not success then return "responses: declare the success status (1xx or 2xx)" end
end

------------------------------------------------------------------ schemas

local function ref(name) return { ["$ref"] = "#/components/schemas/" .. name } end

local COMPONENT_SCHEMAS = {
  HTTPError = {
    type = "object", required = { "detail" },
    properties = { detail = { type = "string", description = "What went wrong" } },
    description = "FastAPI's error body",
  },
  ValidationError = {
    type = "object", required = { "loc", "msg", "type" },
    properties = {
      loc = { type = "array", items = { anyOf = { { type = "string" }, { type = "integer" } } },
              description = "Where: [\"body\"|\"query\"|\"path\"|\"header\", name or index…]" },
      msg = { type = "string" },
      type = { type = "string", description = "missing, int_parsing, string_too_long, literal_error…" },
      input = { description = "The offending input" },
      ctx = { type = "object", description = "Limits of the failed check, e.g. {\"ge\": 10}" },
    },
  },
  HTTPValidationError = {
    type = "object", required = { "detail" },
    properties = { detail = { type = "array", items = ref("ValidationError") } },
    description = "Every validation error of the request, in declaration order",
  },
}

-- "Also accepted as `a`, `b`." for a field with aliases.
local function alias_note(f, description)
  if not f.aliases then return description end
  local names = {}
  for i, a in ipairs(f.aliases) do names[i] = "`" .. a .. "`" end
  local note = "Also accepted as " .. table.concat(names, ", ") .. " (the snake_case name wins when both are sent)."
  if not description then return note end
  return description .. (description:find("[.!?]$") and " " or ". ") .. note
end

-- Parameter objects of a field list, the example beside the schema.
local function parameters(fields, where, out)
  if not fields then return end
  local compiled = schema.compile(fields)
  for i, p in ipairs(schema.to_parameters(compiled, where)) do
    local f = compiled.fields[i]
    p.example, p.schema.example, p.schema.description = p.schema.example, nil, nil
    p.description = alias_note(f, p.description)
    p["x-aliases"] = f.aliases
    out[#out + 1] = p
  end
end

-- The requestBody of a body declaration: schema with limits and aliases,
-- and an example made of the fields' examples.
local function request_body(fields)
  local compiled = schema.compile(fields)
  local body = schema.to_openapi(compiled)
  local example, required = {}, false
  for _, f in ipairs(compiled.fields) do
    local p = body.properties[f.name]
    p.description = alias_note(f, p.description)
    p["x-aliases"] = f.aliases
    example[f.name] = f.example
    required = required or f.required
  end
  return {
    required = required,
    content = { ["application/json"] = { schema = body, example = next(example) and example or nil } },
  }
end

local IDEMPOTENCY_KEY = {
  name = "Idempotency-Key", ["in"] = "header", required = false,
  description = "Makes a retry safe: the same key replays the first successful answer (with "
    .. "Idempotent-Replayed: true) instead of running again; a key reused for another request is a 409. "
    .. "1-128 visible ASCII characters, scoped to the caller.",
  schema = { type = "string", minLength = 1, maxLength = 128, pattern = "^[!-~]+$" },
  example = "3f1c2a7e-play-0001",
}

------------------------------------------------------------------ operations

-- The statuses a route gets without declaring them (see the top), in the
-- declared form.
local function implied(r, has_input)
  local out = {}
  if r.auth ~= "none" then
    out[401] = { "TOKEN_INVALID", "TOKEN_USER_GONE", "ACCOUNT_DEACTIVATED", "SESSION_GONE" }
    out[403] = { "NOT_AUTHENTICATED", "BAD_AUTH_SCHEME",
                 r.auth == "admin" and "ADMIN_REQUIRED" or r.auth == "rank" and "RANK_REQUIRED" or nil }
  end
  if has_input then out[422] = true end
  if r.idempotent then out[409] = { "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_IN_PROGRESS" } end
  return out
end

-- One status of a route: what was implied and declared for it, merged.
local function collect(entry, status, v)
  if v == true then
    entry.standard = true
  elseif type(v) == "string" then
    entry.prose[#entry.prose + 1] = v
  else
    for _, name in ipairs(v) do
      if not entry.seen[name] then
        entry.seen[name] = true
        entry.names[#entry.names + 1] = name
      end
    end
    entry.prose[#entry.prose + 1] = v.description
  end
  entry.status = status
end

-- The detail text of a catalogue name ("…" where a template takes text).
local function detail_of(name, r)
  if name == "RANK_REQUIRED" then return errors.detail(name, tostring(r.rank)) end
  return (errors.detail(name):gsub("%%s", "…"))
end

local function response(r, e)
  local status = e.status
  local lines = {}
  for _, p in ipairs(e.prose) do lines[#lines + 1] = p end
  local examples
  for _, name in ipairs(e.names) do
    local text = detail_of(name, r)
    lines[#lines + 1] = "- `" .. text .. "`"
    examples = examples or {}
    examples[name] = { summary = text, value = { detail = text } }
  end
  if #lines == 0 then lines[1] = STATUS_TEXT[status] end
  local out = { description = table.concat(lines, "\n") }
  if status == 101 or status == 204 then return out end
  local media = {}
  out.content = { ["application/json"] = media }
  if status < 300 then
    if r.idempotent then
      out.headers = { ["Idempotent-Replayed"] = {
        description = "true when this is the stored answer of an earlier request with the same key",
        schema = { type = "string", enum = { "true" } } } }
    end
    return out
  end
  if #e.names > 0 or e.standard then
    media.schema = ref(status == 422 and "HTTPValidationError" or "HTTPError")
    media.examples = examples
  end
  if status == 401 then
    out.headers = { ["WWW-Authenticate"] = { description = "Bearer", schema = { type = "string" } } }
  elseif status == 429 then
    out.headers = { ["Retry-After"] = { description = "Seconds until a retry may succeed",
                                        schema = { type = "integer", minimum = 1 } } }
  end
  return out
end

-- The responses object: the implied statuses, then the declared ones (a
-- route that declares none gets its success status) merged in.
local function responses_of(r, has_input)
  local entries = {}
  local function add(status, v)
    status = tonumber(status)
    entries[status] = entries[status] or { names = {}, seen = {}, prose = {} }
    collect(entries[status], status, v)
  end
  for status, v in pairs(implied(r, has_input)) do add(status, v) end
  for status, v in pairs(r.responses or { [r.method == "WS" and 101 or 200] = true }) do add(status, v) end
  local out = {}
  for status, e in pairs(entries) do out[tostring(status)] = response(r, e) end
  return out
end

local WS_TEXT = "WebSocket (RFC 6455): open it with an HTTP/1.1 GET carrying Upgrade: websocket and "
  .. "Connection: Upgrade; the answer is 101 and the connection then carries JSON text messages. "
  .. "A GET without the upgrade is 404."

local function operation(r)
  local params = {}
  parameters(r.params, "path", params)
  parameters(r.query, "query", params)
  parameters(r.headers, "header", params)
  if r.idempotent then params[#params + 1] = IDEMPOTENCY_KEY end
  local has_input = r.method ~= "WS" and (#params > 0 or r.body ~= nil)
  local description = r.description
  if r.auth == "admin" then
    description = (description and description .. "\n\n" or "") .. "Requires an admin account."
  elseif r.auth == "rank" then
    description = (description and description .. "\n\n" or "") .. "Requires rank " .. tostring(r.rank)
      .. " or higher."
  elseif r.method == "WS" then
    description = (description and description .. "\n\n" or "") .. WS_TEXT
  end
  return {
    tags = { r.tags and r.tags[1] or "default" },
    summary = r.summary,
    description = description,
    operationId = r.operation_id,
    deprecated = r.deprecated or nil,
    security = r.auth ~= "none" and { { HTTPBearer = array() } } or array(),
    parameters = #params > 0 and params or nil,
    requestBody = r.body and request_body(r.body) or nil,
    responses = responses_of(r, has_input),
    ["x-moves-money"] = r.moves_money,
    ["x-websocket"] = r.method == "WS" or nil,
  }
end

--- document(routes) -> the OpenAPI 3.1 document (a Lua table) of a route
--- table in host.routes() form (see the top of the file for what is in).
function M.document(routes)
  local paths, used, extra = {}, {}, {}
  for _, r in ipairs(routes) do
    if r.origin == "scripts" and not plumbing(r.path) then
      local path = r.path:gsub("{([%w_]+):%a+}", "{%1}")
      if #path > 1 then path = path:gsub("/$", "") end
      local op = operation(r)
      paths[path] = paths[path] or {}
      paths[path][r.method == "WS" and "get" or r.method:lower()] = op
      local tag = op.tags[1]
      if not used[tag] then extra[#extra + 1] = tag end
      used[tag] = true
    end
  end
  local tags = array()
  for _, t in ipairs(TAGS) do
    if used[t[1]] then
      tags[#tags + 1] = { name = t[1], description = t[2] }
      used[t[1]] = false
    end
  end
  for _, name in ipairs(extra) do
    if used[name] then tags[#tags + 1] = { name = name } end
  end
  return {
    openapi = "3.1.0",
    info = { title = INFO.title, description = INFO.description, version = INFO.version },
    servers = { { url = "/" } },
    tags = tags,
    paths = paths,
    components = {
      schemas = COMPONENT_SCHEMAS,
      securitySchemes = { HTTPBearer = { type = "http", scheme = "bearer" } },
    },
  }
end

------------------------------------------------------------------ JSON text

local ESCAPES = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n",
                  ["\r"] = "\\r", ["\t"] = "\\t" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function number(n)
  if n ~= n or n == math.huge or n == -math.huge then error("openapi: cannot write " .. tostring(n)) end
  if n == math.floor(n) and math.abs(n) < 2 ^ 63 then return string.format("%.0f", n) end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", n)
    if tonumber(s) == n then return s end
  end
end

local write

local function write_object(t, keys, out)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = quote(k)
    out[#out + 1] = ":"
    write(t[k], out)
  end
  out[#out + 1] = "}"
end

function write(v, out)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = quote(v)
  elseif t == "number" then
    out[#out + 1] = number(v)
  elseif t == "boolean" then
    out[#out + 1] = tostring(v)
  elseif t == "userdata" or v == schema.null then -- json.null
    out[#out + 1] = "null"
  elseif t ~= "table" then
    error("openapi: cannot write a " .. t)
  elseif rawget(v, 1) ~= nil or (next(v) == nil and getmetatable(v) ~= nil) then
    out[#out + 1] = "["
    for i = 1, #v do
      if i > 1 then out[#out + 1] = "," end
      write(v[i], out)
    end
    out[#out + 1] = "]"
  else
    local keys = {}
    for k in pairs(v) do
      if type(k) ~= "string" then error("openapi: object key " .. tostring(k) .. " is not a string") end
      keys[#keys + 1] = k
    end
    table.sort(keys)
    write_object(v, keys, out)
  end
end

local TOP = { "openapi", "info", "servers", "tags", "paths", "components" }

--- encode(doc) -> its JSON text: compact, UTF-8 unescaped, the top-level
--- keys in TOP order, every other object's keys sorted bytewise (the same
--- bytes in every process), then a newline.
function M.encode(doc)
  local out = {}
  write_object(doc, TOP, out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

--- render(routes) -> encode(document(routes)).
function M.render(routes)
  return M.encode(M.document(routes))
end

return M
