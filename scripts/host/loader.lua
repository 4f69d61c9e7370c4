--[[ loader.lua - builds one generation of the scripts.

Called by the C host (vm.c) with the snapshot of every script file
({["routes/system.lua"] = source, …}) and {generation, worker}. It is the only
Lua that runs with the full standard library: it builds the sandbox every
other script runs in, discovers the games (games/ and fixtures/games/: the
one registry, host.games), loads every route file, runs every game's
self-check, and returns {routes = {{method, path}…}, dispatch = fn}. Any
error fails the whole generation, so a reload is all or nothing.

The sandbox: no io, os.execute, ffi, load, loadstring, dofile, loadfile,
coroutine or debug; reading or writing an undeclared global raises an error
naming it. Modules are loaded only from the snapshot (never from disk), so
all workers run exactly the same bytes.
]]

local files, opts = ...

local cc = require "cc.host"
local json = require "cc.json"
local crypto = require "cc.crypto"
local jwt = require "cc.jwt"
local db = require "cc.db"
local redis = require "cc.redis"
local ws = require "cc.ws"
local metrics = require "cc.metrics"
local dispatch_mod -- set below

local generation = opts.generation

-- Every module of this generation, by name.
local loaded = {}
local loading = {}

local sandbox_require

-- Builds the environment scripts run in. One table per generation: scripts
-- cannot share state through globals anyway (writing one is an error).
local function make_env()
  local function copy(t)
    local c = {}
    for k, v in pairs(t) do c[k] = v end
    return c
  end
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = xpcall, rawequal = rawequal,
    rawget = rawget, rawset = rawset, setmetatable = setmetatable,
    getmetatable = getmetatable,
    string = copy(string), table = copy(table), math = copy(math), bit = copy(bit),
    os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime },
    require = function(name) return sandbox_require(name) end,
  }
  env._G = env
  return setmetatable(env, {
    __newindex = function(_, k)
      error("assignment to undeclared global '" .. tostring(k) .. "'", 2)
    end,
    __index = function(_, k)
      error("read of undeclared global '" .. tostring(k) .. "'", 2)
    end,
  })
end

local env = make_env()

-- config(name) -> the setting's value, remembered: settings are loaded once,
-- before the workers fork, and never change in a process (host/config.h),
-- while asking the host means a scan of every setting by name (a play reads
-- several). An undeclared name raises every time, as cc.config does.
local settings = {}
local function config(name)
  local v = settings[name]
  if v == nil then
    v = cc.config(name)
    settings[name] = v
  end
  return v
end

local function iso_time(ms)
  ms = ms or cc.now_ms()
  local sec = math.floor(ms / 1000)
  return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. string.format(".%03dZ", ms - sec * 1000)
end

-- HTTP errors raised by scripts: host.error(status, detail [, headers]).
local HttpError = {}
HttpError.__index = HttpError
HttpError.__tostring = function(e) return "HTTP " .. e.status .. ": " .. tostring(e.detail) end

local authenticator

local host = {
  generation = generation,
  worker = opts.worker,
  pid = cc.pid,
  instance = cc.instance, -- "<hostname>-<pid>": this process among every host's workers
  log = {},
  time = {
    now = cc.now, now_ms = cc.now_ms, monotonic_ms = cc.monotonic_ms,
    sleep = cc.sleep, iso = iso_time,
  },
  config = { get = config, is_production = cc.is_production },
  crypto = crypto,
  db = db,
  redis = redis,
  jwt = {
    -- sign(claims) -> token
    sign = function(claims) return jwt.sign(assert(json.encode(claims))) end,
    -- verify(token) -> claims | nil, "invalid" | nil, "expired", claims
    verify = function(token)
      local text, err, expired = jwt.verify(token)
      if text then return json.decode(text) end
      return nil, err, expired and json.decode(expired) or nil
    end,
  },
  scripts = {
    --- reload() -> {ok, generation, loaded_at, error}: reloads this host's
    --- scripts through the master (two-phase, every worker) and waits.
    reload = function()
      local r = cc.reload()
      return { ok = r.ok, generation = r.generation, at = iso_time(r.at_ms), error = r.error }
    end,
    status = function()
      local s = cc.scripts_status()
      return {
        generation = s.generation,
        loaded_at = iso_time(s.loaded_at_ms),
        last_reload = {
          ok = s.last_reload.ok,
          at = iso_time(s.last_reload.at_ms),
          error = s.last_reload.error or json.null,
        },
      }
    end,
  },
}

-- Text of a notification: tables are JSON-encoded.
local function ws_text(message)
  if type(message) == "string" then return message end
  return assert(json.encode(message))
end

-- host.ws: delivery to sockets on every worker of every host through Redis
-- pub/sub (each worker delivers to its own sockets). When Redis cannot take
-- the message, this worker's sockets still get it (CONTRACT.md §14.2).
host.ws = {
  --- send(user_id, message): to every socket of the user.
  send = function(user_id, message)
    local text = ws_text(message)
    if not redis.publish("cc:notify:user:" .. tostring(user_id), text) then ws.deliver(user_id, text) end
  end,
  --- broadcast(message): to every socket.
  broadcast = function(message)
    local text = ws_text(message)
    if not redis.publish("cc:notify:broadcast", text) then ws.deliver(0, text) end
  end,
  --- close_user(user_id, code): closes the user's sockets (4401 on revocation).
  close_user = function(user_id, code)
    if not redis.publish("cc:notify:close:" .. tostring(user_id), tostring(code)) then
      ws.close_user(user_id, code, "session revoked")
    end
  end,
  --- close_session(session_id, code): closes the sockets that the session's
  --- token opened, on every worker of every host (4401 when it ends).
  close_session = function(session_id, code)
    if not redis.publish("cc:notify:close_session:" .. string.format("%d", session_id), tostring(code)) then
      ws.close_session(session_id, code, "session revoked")
    end
  end,
  --- close_socket(key, code): closes one socket, wherever it lives; key is
  --- "<instance>/<socket id>" (host.instance and the session's id).
  close_socket = function(key, code)
    if not redis.publish("cc:notify:close_socket:" .. key, tostring(code)) then
      local instance, id = key:match("^(.*)/(%d+)$")
      if instance == cc.instance then ws.close_local(tonumber(id), code, "too many sockets") end
    end
  end,
  --- local_count(): sockets open on this worker.
  local_count = ws.count,
}

-- host.metrics: the host's Prometheus figures (host/metrics.h), shared by
-- every worker of this host.
host.metrics = {
  --- add(name, labels, n): adds n (an integer >= 0, default 1) to a counter
  --- family of host/metrics.c (cc_game_plays_total…) with its labels
  --- ({game = "slot"}; nil when it has none). No I/O, cheap: call it where
  --- the thing happens (after the commit for what a transaction does).
  add = metrics.add,
  --- render(values) -> the Prometheus text of the whole host, with values
  --- for the families read at scrape ({cc_outbox_pending = n}).
  render = metrics.render,
}

for _, level in ipairs { "debug", "info", "warn", "error" } do
  -- log.<level>(message [, fields]): fields is a table merged into the line.
  host.log[level] = function(msg, fields)
    cc.log(level, tostring(msg), fields and json.encode(fields) or nil)
  end
end

--- Raises an HTTP error: dispatch answers with status and {"detail": detail}
--- (detail may be a table, e.g. a 422 list) plus optional headers.
function host.error(status, detail, headers)
  error(setmetatable({ status = status, detail = detail, headers = headers }, HttpError), 0)
end

function host.is_http_error(e) return getmetatable(e) == HttpError end

--- Installs the function that authenticates requests of routes whose auth is
--- not "none": fn(req, route) -> user (sets req.user) or raises host.error.
function host.set_authenticator(fn)
  assert(type(fn) == "function", "authenticator must be a function")
  authenticator = fn
end

local routes = {}
local operation_ids = {}

-- The registry of games: game_type -> module, and the types in load order.
local game_modules, game_types, game_files = {}, {}, {}

host.games = {
  --- list() -> the game types of this generation: games/ sorted, then
  --- fixtures/games/ sorted (a new list on each call).
  list = function()
    local copy = {}
    for i, t in ipairs(game_types) do copy[i] = t end
    return copy
  end,
  --- get(game_type) -> the game's module (lib/game_check.lua documents its
  --- interface), or nil when no rules exist for that type.
  get = function(game_type) return game_modules[game_type] end,
}

local API_MODULES = {
  json = json, host = host,
  ["host.log"] = host.log, ["host.time"] = host.time, ["host.config"] = host.config,
  ["host.ws"] = host.ws, ["host.crypto"] = host.crypto, ["host.db"] = host.db, ["host.redis"] = host.redis,
  ["host.jwt"] = host.jwt, ["host.scripts"] = host.scripts, ["host.games"] = host.games,
  ["host.metrics"] = host.metrics,
}

function sandbox_require(name)
  if type(name) ~= "string" then error("module name must be a string", 2) end
  local api = API_MODULES[name]
  if api then return api end
  if loaded[name] ~= nil then return loaded[name] end
  if name:find("^host%.") or name:find("[^%w_.]") then
    error("module '" .. name .. "' not found", 2)
  end
  local path = name:gsub("%.", "/") .. ".lua"
  local src = files[path]
  if not src then error("module '" .. name .. "' not found", 2) end
  if loading[name] then error("module '" .. name .. "' requires itself (cycle)", 2) end
  loading[name] = true
  local chunk, err = load(src, "@" .. path, "t", env)
  if not chunk then error(err, 0) end
  local result = chunk(name)
  if result == nil then result = true end
  loaded[name] = result
  loading[name] = nil
  return result
end

local schema = sandbox_require "lib.schema"
schema.null = json.null
schema.array_mt = json.array_mt
local openapi = sandbox_require "lib.openapi"

local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, OPTIONS = true }
local AUTH = { none = true, user = true, admin = true, rank = true }
local ROUTE_KEYS = {
  method = true, path = true, auth = true, rank = true, body = true, query = true,
  params = true, headers = true, summary = true, description = true, tags = true,
  operation_id = true, response = true, responses = true, handler = true,
  deprecated = true, enabled = true, moves_money = true, destructive = true, idempotent = true,
}

-- True when decl is a table of known keys (raising at the declaring line
-- otherwise) and not switched off with enabled = false.
local function declared(decl, keys, what)
  if type(decl) ~= "table" then error(what .. " expects a table", 3) end
  for k in pairs(decl) do
    if not keys[k] then error(what .. ": unknown key '" .. tostring(k) .. "'", 3) end
  end
  return decl.enabled ~= false
end

-- "scripts" or "fixtures": where the route files being loaded come from.
local loading_origin = "scripts"

--- host.route(decl): declares a route of this generation. Raises (failing the
--- reload) on any malformed declaration; `enabled = false` leaves it out
--- (routes switched off by configuration answer 404 and are not documented).
--- Besides method, path, auth, schemas and handler, a declaration carries
--- what tools and specs need to call it well, shown in the route table
--- (host.routes) and the OpenAPI document:
---   moves_money  true when a 2xx changes balances or the ledger (money
---                routes refuse every malformed request with a 4xx and
---                write nothing); false otherwise
---   idempotent   true when it honours Idempotency-Key (CONTRACT.md §3)
---   destructive  true when calling it ends the caller's sessions, reloads
---                the host, or stalls a worker: tools send it only requests
---                it refuses before its handler runs
---   example      on every field of params, query and body: a valid value
---                (path values name rows that exist in a fresh database)
--- and its documented statuses, `responses = { [200] = "Token", [400] = {
--- "INVITE_INVALID" }, [422] = true }` (lib/openapi.lua describes the form;
--- a malformed one fails the reload).
function host.route(decl)
  if not declared(decl, ROUTE_KEYS, "host.route") then return end
  local bad = decl.responses ~= nil and openapi.check_responses(decl.responses)
  if bad then error("host.route: " .. bad, 2) end
  for _, k in ipairs { "moves_money", "destructive", "idempotent" } do
    if decl[k] ~= nil and type(decl[k]) ~= "boolean" then error("host.route: " .. k .. " must be a boolean", 2) end
  end
  local method = type(decl.method) == "string" and decl.method:upper()
  if not METHODS[method] then error("host.route: bad method '" .. tostring(decl.method) .. "'", 2) end
  if type(decl.path) ~= "string" or decl.path:sub(1, 1) ~= "/" then
    error("host.route: path must start with '/'", 2)
  end
  if type(decl.handler) ~= "function" then error("host.route: handler must be a function", 2) end
  local auth = decl.auth or "none"
  if not AUTH[auth] then error("host.route: bad auth '" .. tostring(auth) .. "'", 2) end
  local op = decl.operation_id
    or (method:lower() .. decl.path:gsub("[{}]", ""):gsub(":%a+", ""):gsub("[^%w]+", "_"))
  if operation_ids[op] then error("host.route: duplicate operation_id '" .. op .. "'", 2) end
  operation_ids[op] = true
  local ps = decl.params or schema.path_params(decl.path)
  local ok, compiled = pcall(function()
    return {
      params = ps and schema.compile(ps),
      query = decl.query and schema.compile(decl.query),
      headers = decl.headers and schema.compile(decl.headers),
      body = decl.body and schema.compile(decl.body),
    }
  end)
  if not ok then error("host.route " .. method .. " " .. decl.path .. ": " .. tostring(compiled), 2) end
  routes[#routes + 1] = {
    method = method, path = decl.path, auth = auth, rank = decl.rank, origin = loading_origin,
    handler = decl.handler, operation_id = op, schemas = compiled, decl = decl,
    params = ps,
  }
end

local WS_KEYS = {
  path = true, on_handshake = true, on_open = true, on_message = true, on_close = true,
  summary = true, description = true, tags = true, operation_id = true, enabled = true, responses = true,
}

--- host.websocket(decl): declares a WebSocket route. on_handshake(req) runs
--- before the 101 and may yield; it returns a session table (fields such as
--- user_id and protocol, the chosen subprotocol) to accept, or nil, status,
--- detail to refuse with that HTTP answer. on_open(sock), on_message(sock,
--- data, "text"|"binary") and on_close(sock, code, reason) get the session
--- table, which also has sock:send(message [, binary]) and sock:close(code,
--- reason).
function host.websocket(decl)
  if not declared(decl, WS_KEYS, "host.websocket") then return end
  if type(decl.path) ~= "string" or decl.path:sub(1, 1) ~= "/" then
    error("host.websocket: path must start with '/'", 2)
  end
  local bad = decl.responses ~= nil and openapi.check_responses(decl.responses)
  if bad then error("host.websocket: " .. bad, 2) end
  for _, k in ipairs { "on_handshake", "on_open", "on_message", "on_close" } do
    if decl[k] ~= nil and type(decl[k]) ~= "function" then error("host.websocket: " .. k .. " must be a function", 2) end
  end
  routes[#routes + 1] = {
    method = "WS", path = decl.path, auth = "none", ws = decl, schemas = {}, origin = loading_origin, decl = decl,
    params = schema.path_params(decl.path),
    operation_id = decl.operation_id or ("ws" .. decl.path:gsub("[^%w]+", "_")),
  }
end

-- A deep copy of declaration data without functions; lists stay JSON arrays.
local function plain(v)
  if type(v) == "function" then return nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = plain(x) end
  if #v > 0 then setmetatable(out, json.array_mt) end
  return out
end

--- host.routes() -> the loaded generation's route table, in declaration
--- order: {method ("WS" for a WebSocket route), path, auth, rank, origin
--- ("scripts" | "fixtures"), operation_id, summary, description, tags,
--- deprecated, moves_money, idempotent, destructive, params, query, headers,
--- body, responses} with the declarations as written (params also when only
--- the path pattern declares them). Plain data: a new copy on each call.
function host.routes()
  local out = json.array()
  for i, r in ipairs(routes) do
    local d = r.decl
    out[i] = plain {
      method = r.method, path = r.path, auth = r.auth, rank = r.rank, origin = r.origin,
      operation_id = r.operation_id, summary = d.summary, description = d.description, tags = d.tags,
      deprecated = d.deprecated, moves_money = d.moves_money, idempotent = d.idempotent,
      destructive = d.destructive, params = r.params, query = d.query, headers = d.headers, body = d.body,
      responses = d.responses,
    }
  end
  return out
end

local tools = {}

--- host.tool{name, description, run}: declares a command-line tool
--- (`cchost <command>` runs it, see host/tool.c). run(args) gets the
--- command's arguments as args[1..n] (and args.input, a secret read from
--- stdin) and returns the exit status (default 0); host.stdout(text) prints.
function host.tool(decl)
  if type(decl) ~= "table" or type(decl.name) ~= "string" or type(decl.run) ~= "function" then
    error("host.tool expects {name = string, run = function}", 2)
  end
  if tools[decl.name] then error("host.tool: duplicate tool '" .. decl.name .. "'", 2) end
  tools[decl.name] = function(args)
    local ok, status = xpcall(decl.run, debug.traceback, args)
    if not ok then
      cc.stdout("error: " .. tostring(status) .. "\n", true)
      status = 1
    end
    cc.tool_exit(type(status) == "number" and status or 0)
  end
end

host.stdout = cc.stdout

local start_hooks = {}

--- host.on_start(fn): fn(worker_id) runs once in every worker when it starts
--- serving (not at reloads), in its own coroutine: start-up work such as the
--- bootstrap admin. Errors are logged and do not stop the worker.
function host.on_start(fn)
  assert(type(fn) == "function", "host.on_start expects a function")
  start_hooks[#start_hooks + 1] = fn
end

--- host.spawn(fn, ...): runs fn(...) as a background coroutine (from the
--- next loop turn); errors are logged. For fire-and-forget work.
host.spawn = cc.spawn

--- host.park() -> what wake passes: suspends the calling coroutine until
--- host.wake(co, ...) names it (co = host.running() before parking).
--- wake returns false, doing nothing, when co is not parked. The one way a
--- coroutine hands results to another that waits (domain/plays.lua).
host.park, host.wake, host.running = cc.park, cc.wake, coroutine.running

local timers = {}

--- host.every(interval, fn): a timer of this generation: fn() runs every
--- interval seconds (a number, or a function returning one, read each
--- round, e.g. from a setting) in every worker, starting when the generation
--- becomes current and stopping when a newer one replaces it.
function host.every(interval, fn)
  assert(type(interval) == "number" or type(interval) == "function", "host.every: interval must be a number or function")
  assert(type(fn) == "function", "host.every expects a function")
  timers[#timers + 1] = { interval = interval, fn = fn }
end

local function run_timer(t)
  while cc.current_generation() == generation do
    cc.sleep(type(t.interval) == "function" and t.interval() or t.interval)
    if cc.current_generation() ~= generation then break end
    local ok, err = xpcall(t.fn, debug.traceback)
    if not ok then host.log.error("timer failed", { traceback = tostring(err) }) end
  end
end

local function on_commit()
  for _, t in ipairs(timers) do cc.spawn(run_timer, t) end
end

local function on_start(worker_id)
  for _, fn in ipairs(start_hooks) do
    local ok, err = xpcall(fn, debug.traceback, worker_id)
    if not ok then host.log.error("start hook failed", { traceback = tostring(err) }) end
  end
end

-- Load order: lib and domain modules load on demand; every route file loads
-- (sorted, so all workers register routes identically), then fixtures.
local function sorted_names(prefix)
  local names = {}
  for name in pairs(files) do
    if name:sub(1, #prefix) == prefix and name:sub(-4) == ".lua" then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

local function module_name(file) return (file:sub(1, -5):gsub("/", ".")) end

-- Games first, so routes can read their configs (bet limits) as they load.
local game_check = sandbox_require "lib.game_check"
for _, prefix in ipairs { "games/", "fixtures/games/" } do
  for _, file in ipairs(sorted_names(prefix)) do
    local game_type = file:sub(#prefix + 1, -5)
    if not game_type:find("^[%a][%w_]*$") then error(file .. ": a game's file name must be its game_type", 0) end
    if game_modules[game_type] then error(file .. ": game '" .. game_type .. "' is defined twice", 0) end
    local game = sandbox_require(module_name(file))
    local err = game_check.interface(game, game_type)
    if err then error(file .. ": " .. err, 0) end
    game_modules[game_type], game_files[game_type] = game, file
    game_types[#game_types + 1] = game_type
  end
end

for _, prefix in ipairs { "routes/", "tools/", "fixtures/routes/" } do
  loading_origin = prefix == "fixtures/routes/" and "fixtures" or "scripts"
  for _, file in ipairs(sorted_names(prefix)) do sandbox_require(module_name(file)) end
end

-- Game self-checks (RTP band, weights, limits): a bad paytable fails here.
for _, game_type in ipairs(game_types) do
  local ok, err = game_modules[game_type].self_check()
  if not ok then error(game_files[game_type] .. ": self-check failed: " .. tostring(err), 0) end
end

for _, r in ipairs(routes) do
  if r.auth ~= "none" and not authenticator then
    error("route " .. r.method .. " " .. r.path .. " needs auth '" .. r.auth
      .. "' but no authenticator is installed (host.set_authenticator)", 0)
  end
end

local load_dispatch = assert(load(files["host/dispatch.lua"], "@host/dispatch.lua", "t", _G))
dispatch_mod = load_dispatch {
  routes = routes, schema = schema, json = json, host = host, ws = ws, text = sandbox_require "lib.text",
  HttpError = HttpError, authenticator = function() return authenticator end,
}

return { routes = routes, dispatch = dispatch_mod, host = host, modules = loaded, tools = tools, on_start = on_start, on_commit = on_commit }
