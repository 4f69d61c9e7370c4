-- robustness_spec.lua - bad input gets a clear 4xx and changes nothing:
-- never a 500, never a crash, across every route of the loaded generation's
-- route table, scripts and fixtures (CONTRACT.md §1, §2, §3, §4.4).
--
-- One host serves every battery: malformed bodies (not JSON, wrong JSON
-- types, invalid UTF-8, deep nesting, duplicate keys), every declared field
-- with wrong types and extreme values, bad path parameters, bad query
-- strings, hostile headers, bad Idempotency-Keys, forged and garbage tokens,
-- HEAD and wrong methods. Every answer must be < 500, a 4xx must carry the
-- contract's {"detail": …} shape, and the host must still be healthy after
-- each route's battery. On the money routes and admin mutations every
-- refused request is also checked to have written nothing: the caller's
-- balances, the ledger, game_plays, admin_audit, idempotency_keys, the
-- engagement rows (participations, user_rewards, notifications, claimed
-- missions) and the ban target's row are the same before and after. A
-- failing route lists every offending request.
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"
local redis = require "spec.support.redis"
local sha = require "spec.support.sha256"
local unistd = require "posix.unistd"
local bit = require "bit"

local cjson = http.json

-------------------------------------------------------------------- routes
-- The route table of the host under test (`cchost routes --json` with the
-- settings the host gets), never a hand-kept list: a new route is covered
-- the day it is declared. The declarations carry what the batteries need
-- (scripts/host/loader.lua, host.route): `example` values that make a valid
-- request (path values name rows of a fresh database: user 1 is the first
-- account, here the ban target), `moves_money` (money routes refuse every
-- malformed request with a 4xx and are checked to write nothing, as are
-- admin mutations), `idempotent` (bad Idempotency-Keys are refused) and
-- `destructive` (only requests refused before the handler are sent). A
-- route whose declaration lacks these hints fails its test. Fixture routes
-- (origin "fixtures", test harness) get the hints check and the auth
-- battery; the batteries that reach handlers run on the scripts' routes.
local TABLE = support.routes()

-- The hints a declaration lacks, as a list of sentences.
local function missing_hints(r)
  local missing = {}
  if type(r.moves_money) ~= "boolean" then missing[#missing + 1] = "moves_money (true or false)" end
  for _, f in ipairs(r.params or {}) do
    if f.example == nil then missing[#missing + 1] = "an example for path parameter " .. f.name end
  end
  for _, f in ipairs(r.query or {}) do
    if f.example == nil then missing[#missing + 1] = "an example for query parameter " .. f.name end
  end
  for _, f in ipairs(r.body or {}) do
    if f.required and f.example == nil then missing[#missing + 1] = "an example for body field " .. f.name end
  end
  return missing
end

-- A table route as the batteries below use it: [1] method, [2] path, [3]
-- auth; `at` {prefix, sample value, suffix} and `param` ("int" | "string")
-- for a parameterised path; body fields {name, base JSON fragment or nil,
-- aliases}; query parameters {name, base raw value}; money, writes (the
-- write-nothing check), idempotent, destructive; missing (absent hints).
local function battery_route(r)
  local route = { r.method, r.path, r.auth, money = r.moves_money == true, idempotent = r.idempotent == true,
                  destructive = r.destructive == true, missing = missing_hints(r), origin = r.origin }
  route.writes = route.money or (r.auth == "admin" and r.method ~= "GET")
  local p = (r.params or {})[1]
  if p and p.example ~= nil then
    local s, e = r.path:find("{" .. p.name .. "[^}]*}")
    route.at = { r.path:sub(1, s - 1), tostring(p.example), r.path:sub(e + 1) }
    route.param = p.type == "integer" and "int" or "string"
  end
  if r.body then
    route.body = {}
    for i, f in ipairs(r.body) do
      route.body[i] = { f.name, f.example ~= nil and cjson.encode(f.example) or nil, f.aliases }
      route.requires_body = route.requires_body or f.required == true
    end
  end
  if r.query then
    route.query = {}
    for i, f in ipairs(r.query) do route.query[i] = { f.name, tostring(f.example) } end
  end
  return route
end

local ROUTES = {}
for _, r in ipairs(TABLE) do
  if r.method ~= "WS" then ROUTES[#ROUTES + 1] = battery_route(r) end
end

------------------------------------------------------------------ batteries
local TEN_KB = string.rep("x", 10240)

local function nested_array(n) return string.rep("[", n) .. string.rep("]", n) end
local function nested_object(n) return string.rep('{"a":', n) .. "1" .. string.rep("}", n) end

-- Wrong values for any field, as raw JSON fragments (cjson would round big
-- numbers to 14 digits). Some are valid for some fields; those requests may
-- succeed, but must never fail with a 5xx.
local BAD_VALUES = {
  '"abc"', "{}", "[]", "[1,2]", "true", "false", "null", "1e308", "-1e308", "1e30", "-1e30",
  "9007199254740992", "9007199254740993", "9223372036854775808", "-9223372036854775809",
  "100000000000000000000000000000", "1.5", "0.1", "-1", "0", "-0", "1e999", '""', '" "', '"' .. TEN_KB .. '"',
  '"a\\u0000b"', '"\\u0000"', '"\\ud800"', '"\\udfff\\ud800"', '"\255\254"', '"\192\128"', '"12abc"', '"0x10"',
  '"1e3"', '"١٢"', '"NaN"', '"Infinity"', '"-"', '"<script>"', "\"'; DROP TABLE users; --\"",
}

-- Whole request bodies that are not what any route expects. The ones that
-- are JSON objects (or nothing) are valid where every field is optional.
local OBJECT_BODIES = { '{"a\\u0000":1}', '{"a":1,"a":2}', "   ", '{"__proto__":{"x":1}}', '{"a":1e999}' }
local BAD_BODIES = {
  "not json", "{", "}", "[]", '"a string"', "42", "null", "true", "{} trailing", "{'a':1}", '{"a":1,}',
  "\255", '{"a":"\255"}', "\239\187\191{}", "\0", "{" .. string.rep(" ", 5000), '{"a":"\\ud800"}',
  "1" .. string.rep("0", 400), nested_array(1000), nested_object(1000), nested_array(100000), string.rep("[", 200000),
}

-- (A space-padded integer, "%201", is sent without an expectation: the
-- contract does not say whether " 1" is the integer 1.)
local PADDED = "%201"
local BAD_QUERY_VALUES = {
  "abc", "", "%FF", "%00", "%C0%80", "1.5", "1e308", "-1e308", "99999999999999999999", "-99999999999999999999",
  "9007199254740992", "9223372036854775808", PADDED, "1%2C000", "0x10", "1e3", "%E2%80%AE1", string.rep("9", 5000),
  "%", "%ZZ", "+", "true", "null", "[]",
}

local BAD_INT_PATHS = {
  "0", "-1", "99999999999999999999", "abc", "1.5", "%FF", "%00", "%C0%80", "1e3", PADDED, "9223372036854775808",
  "9007199254740993", "0x1", "%2F", "%", "%ZZ", string.rep("9", 3000), "\255",
}
local BAD_STRING_PATHS = {
  "%FF", "%00", "%C0%80", "abc", "%2F", "..", "%2E%2E", "%25", "%", "%ZZ", string.rep("A", 5000), "a%20b",
  "%E2%80%AE", "\255", "'%3B--",
}

-- Hostile values of ordinary headers; each sent alone on a request.
local BAD_HEADERS = {
  { "User-Agent", "\255\254" }, { "User-Agent", string.rep("A", 8000) }, { "User-Agent", "\1\2\3" },
  { "X-Forwarded-For", "\255, 999.999.1.1, ::zz" }, { "X-Forwarded-For", string.rep("1.2.3.4, ", 600) },
  { "X-Forwarded-For", "" }, { "Origin", "http://\255" }, { "Origin", "null" },
  { "X-Request-Id", "\255\254" }, { "X-Request-Id", string.rep("r", 5000) }, { "X-Request-Id", "a b\t;" },
  { "Content-Type", "text/plain" }, { "Content-Type", "application/json; charset=latin1" },
  { "Content-Type", "\255" }, { "Accept", "\255" }, { "Accept-Encoding", "gzip, deflate, br" },
  { "Cookie", "a=\255; b" }, { "Idempotency-Key", "ignored-on-non-money-routes" },
}

-- (DEL is not a legal header byte: the HTTP parser itself answers 400.)
local BAD_IDEMPOTENCY_KEYS = { "", string.rep("k", 129), "한글키", "\255", "a b", "ke\ty", "key\127" }

------------------------------------------------------------------- helpers
local function b64url(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = bit.bor(bit.lshift(a, 16), bit.lshift(b or 0, 8), c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, chars do
      local idx = bit.band(bit.rshift(n, 18 - 6 * (k - 1)), 63)
      out[#out + 1] = alphabet:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

-- A JWT signed with the host's secret over raw header and payload JSON.
local function sign(secret, header_json, payload_json)
  local input = b64url(header_json) .. "." .. b64url(payload_json)
  return input .. "." .. b64url(sha.hmac_sha256(secret, input))
end

-- A request shown for a failure message: bytes outside printable ASCII
-- escaped, long parts cut.
local function show(s)
  if s == nil then return "nil" end
  s = tostring(s)
  local cut = #s > 160 and string.format("…(%d bytes)", #s) or ""
  return (s:sub(1, 160):gsub("[^\32-\126]", function(c) return string.format("\\x%02X", c:byte()) end)) .. cut
end

local function show_headers(h, names)
  local parts = {}
  for k, v in pairs(h or {}) do
    if k ~= "Content-Length" then parts[#parts + 1] = k .. ": " .. (names[v] or show(v)) end
  end
  table.sort(parts)
  return "{" .. table.concat(parts, "; ") .. "}"
end

local function json_object(fields)
  local parts = {}
  for _, f in ipairs(fields) do parts[#parts + 1] = cjson.encode(f[1]) .. ":" .. f[2] end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- A persistent psql session on the host's database: the per-request
-- write-nothing check needs hundreds of reads, and one psql process per read
-- (api.sql) would take tens of seconds.
local function psql_session(db_name)
  local r1, w1 = unistd.pipe()
  local r2, w2 = unistd.pipe()
  local pid = assert(unistd.fork())
  if pid == 0 then
    unistd.dup2(r1, 0)
    unistd.dup2(w2, 1)
    unistd.close(w1)
    unistd.close(r2)
    unistd.execp("psql", { [0] = "psql", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=0", "-d", db_name })
    os.exit(127)
  end
  unistd.close(r1)
  unistd.close(w2)
  local buf = ""
  local session = {}
  function session.row(sql)
    assert(unistd.write(w1, sql .. ";\n\\echo __END__\n"))
    while true do
      local s, e = buf:find("__END__\n", 1, true)
      if s then
        local out = buf:sub(1, s - 1)
        buf = buf:sub(e + 1)
        return out
      end
      local chunk = unistd.read(r2, 65536)
      assert(chunk and chunk ~= "", "psql session ended")
      buf = buf .. chunk
    end
  end
  function session.close()
    unistd.close(w1)
    unistd.close(r2)
    require("posix.sys.wait").wait(pid)
  end
  return session
end

--------------------------------------------------------------------- spec
describe("robustness", function()
  local host, user, admin, victim, db, private_redis
  local ids = {}
  local tokens = {}       -- extra Authorization values: garbage and forged tokens
  local token_names = {}  -- Authorization value -> how a failure message shows it
  local problems          -- offending requests of the running route

  setup(function()
    -- A private redis-server: user ids restart at 1 in every fresh database,
    -- so crash rounds other specs left in a shared Redis would be ours.
    private_redis = redis.private()
    host = support.start {
      ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1",
      REDIS_HOST = private_redis.env.REDIS_HOST, REDIS_PORT = private_redis.env.REDIS_PORT,
      -- the login batteries must reach the password check, not the lockout
      LOGIN_MAX_FAILED_ATTEMPTS = "100000", LOGIN_IP_MAX_FAILED_ATTEMPTS = "100000",
    }
    victim = api.player(host)              -- signed up first: the lowest id
    user = api.player(host, 100000)
    admin = api.player(host)
    api.make_admin(host, admin.id)
    assert.equal(1, victim.id) -- the path examples name user 1
    ids.V = tostring(victim.id)
    db = psql_session(host.db_name)

    local secret = host.env.JWT_SECRET_KEY
    local hs256 = '{"alg":"HS256","typ":"JWT"}'
    local now = os.time()
    local function claims(over)
      local c = {
        { "sub", cjson.encode(user.site_id) }, { "user_id", tostring(user.id) }, { "is_admin", "false" },
        { "rank", '"STANDARD"' }, { "iat", tostring(now) }, { "exp", tostring(now + 600) },
        { "jti", '"3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b"' },
      }
      for _, o in ipairs(over) do
        for _, f in ipairs(c) do if f[1] == o[1] then f[2] = o[2] end end
      end
      return json_object(c)
    end
    local forged = {
      { { "user_id", "1e308" } }, { { "user_id", "9223372036854775808" } }, { { "user_id", "9007199254740993" } },
      { { "user_id", "1e15" } }, { { "user_id", '"1"' } }, { { "user_id", "1.5" } }, { { "user_id", "-1" } },
      { { "user_id", "0" } }, { { "jti", '"not-a-uuid"' } }, { { "jti", "null" } }, { { "sub", "123" } },
      { { "sub", '"a\\u0000b"' } }, { { "exp", '"soon"' } }, { { "exp", "1e308" } }, { { "exp", tostring(now - 10) } },
      { { "iat", "-1e308" } }, { { "rank", '"\\u0000"' } }, { { "is_admin", '"true"' } },
    }
    tokens = {
      "Bearer garbage", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer ...",
      "Bearer \255\254\253", "Bearer " .. string.rep("a", 8000), "Token " .. user.access_token,
      "Bearer " .. user.access_token .. "x", "Bearer " .. user.access_token .. " extra",
    }
    local function add(name, token)
      tokens[#tokens + 1] = "Bearer " .. token
      token_names["Bearer " .. token] = "Bearer <" .. name .. ">"
    end
    add("alg none, valid claims", b64url('{"alg":"none","typ":"JWT"}') .. "." .. b64url(claims {}) .. ".")
    add("HS384 header, valid claims", sign(secret, '{"alg":"HS384","typ":"JWT"}', claims {}))
    add("signed payload 'not json'", sign(secret, hs256, "not json"))
    add("signed payload [1,2]", sign(secret, hs256, "[1,2]"))
    add("signed payload null", sign(secret, hs256, "null"))
    add("signed, header []", sign(secret, "[]", claims {}))
    add("valid claims, wrong secret", sign("wrong-secret", hs256, claims {}))
    for _, over in ipairs(forged) do
      add("HS256 with the host's secret, claims of the user but " .. over[1][1] .. "=" .. over[1][2],
        sign(secret, hs256, claims(over)))
    end
    token_names["Bearer " .. user.access_token] = "Bearer <the user's token>"
    token_names["Bearer " .. admin.access_token] = "Bearer <the admin's token>"
    token_names["Bearer " .. user.access_token .. "x"] = "Bearer <the user's token>x"
    token_names["Bearer " .. user.access_token .. " extra"] = "Bearer <the user's token> extra"
    token_names["Token " .. user.access_token] = "Token <the user's token>"
  end)

  teardown(function()
    if db then db.close() end
    if host then host:stop() end
    if private_redis then private_redis.destroy() end
  end)

  local function headers_for(route)
    if route[3] == "none" then return {} end
    local who = route[3] == "admin" and admin or user
    return { Authorization = "Bearer " .. who.access_token }
  end

  -- What a money route must leave untouched when it refuses a request.
  local function snapshot()
    local bal = host:request("GET", "/api/users/balance", nil, { Authorization = "Bearer " .. user.access_token })
    local b = bal and bal.json and bal.json.balances or {}
    return string.format("balance %s tokens=%s gold=%s gems=%s exp=%s | ", bal and bal.status,
      tostring(b.tokens), tostring(b.gold), tostring(b.gems), tostring(b.exp))
      .. db.row("SELECT 'ledger=' || (SELECT count(*) FROM wallet_ledger) || ' plays=' || "
        .. "(SELECT count(*) FROM game_plays) || ' audit=' || (SELECT count(*) FROM admin_audit) || ' idem=' || "
        .. "(SELECT count(*) FROM idempotency_keys) || ' wallets=' || (SELECT sum(balance) FROM wallet_balances) "
        .. "|| ' engagement=' || (SELECT count(*) FROM event_participations) || '/' || (SELECT count(*) FROM user_rewards) "
        .. "|| '/' || (SELECT count(*) FROM notifications) || '/' || (SELECT count(*) FROM user_missions WHERE claimed) "
        .. "|| ' target=' || (SELECT is_active::text || '/' || vip_tier || '/' || coalesce(banned_until::text, '-') "
        .. "|| '/' || coalesce(ban_reason, '-') FROM users WHERE id = " .. ids.V .. ")")
  end

  -- The host's error line for a 500 (found by its request id).
  local function log_lines_for(res)
    local id = res.json and res.json.request_id
    local lines = {}
    for line in host:log_text():gmatch("[^\n]+") do
      if id and line:find(id, 1, true) and line:find('"level":"error"', 1, true) then lines[#lines + 1] = line end
    end
    return table.concat(lines, "\n      ")
  end

  -- Sends one request and records every broken rule in `problems`: a 5xx
  -- (with the host's error line), a 4xx off the contract's shape, a 2xx that
  -- is not JSON, and on money routes any write by a refused request.
  -- opts.expect: the allowed statuses; opts.detail: the exact detail text;
  -- opts.loc: the first 422 item's loc, comma-joined.
  local function probe(route, method, path, body, headers, opts)
    opts = opts or {}
    local h = {}
    for k, v in pairs(headers or {}) do h[k] = v end
    if body and h["Content-Type"] == nil then h["Content-Type"] = "application/json" end
    local before = route.writes and snapshot() or nil
    local res, err = http.request(host.port, method, path, body, h)
    local label = method .. " " .. show(path) .. " headers=" .. show_headers(h, token_names) .. " body=" .. show(body)
    local function problem(what) problems[#problems + 1] = label .. "\n   -> " .. what end
    if not res then
      problem("no response (" .. tostring(err) .. ")")
      return
    end
    local summary = res.status .. " " .. show(res.body)
    if res.status >= 500 then
      problem(summary .. "\n      log: " .. log_lines_for(res))
    elseif res.status >= 400 then
      local d = type(res.json) == "table" and res.json.detail
      if res.headers["content-type"] ~= "application/json" then
        problem("4xx without Content-Type application/json: " .. summary)
      end
      if res.status == 422 and method ~= "HEAD" then
        local ok = type(d) == "table" and #d > 0
        for _, item in ipairs(ok and d or {}) do
          ok = ok and type(item.loc) == "table" and type(item.msg) == "string" and type(item.type) == "string"
        end
        if not ok then problem("422 without a list of {loc, msg, type}: " .. summary) end
      elseif method ~= "HEAD" and (type(d) ~= "string" or d == "") then
        problem("4xx without a detail text: " .. summary)
      end
      if res.status == 401 and res.headers["www-authenticate"] ~= "Bearer" then
        problem("401 without WWW-Authenticate: Bearer: " .. summary)
      end
      if res.status == 405 and d ~= "Method Not Allowed" and method ~= "HEAD" then
        problem("405 with another detail: " .. summary)
      end
    -- (the CORS preflight answers a plain "OK", as Starlette's does; a route
    -- whose answer is not JSON says so, as GET /metrics's Prometheus text)
    elseif method ~= "HEAD" and method ~= "OPTIONS" and res.body ~= "" and res.json == nil
        and (res.headers["content-type"] or ""):find("^application/json") then
      problem("non-JSON body: " .. summary)
    end
    if res.status >= 500 then -- already recorded
    elseif opts.expect and not opts.expect[res.status] then
      local want = {}
      for s in pairs(opts.expect) do want[#want + 1] = s end
      table.sort(want)
      problem("expected " .. table.concat(want, "|") .. ", got " .. summary)
    elseif opts.detail and type(res.json) == "table" and res.json.detail ~= opts.detail then
      problem("expected detail " .. show(opts.detail) .. ", got " .. summary)
    elseif opts.loc and not (type(res.json) == "table" and type(res.json.detail) == "table"
        and type(res.json.detail[1]) == "table" and table.concat(res.json.detail[1].loc or {}, ",") == opts.loc) then
      problem("expected loc " .. opts.loc .. ", got " .. summary)
    end
    if before and res.status >= 400 then
      local after = snapshot()
      if after ~= before then problem(summary .. "\n      wrote something: " .. before .. "\n      now:   " .. after) end
    end
    return res
  end

  local function set(...)
    local t = {}
    for _, s in ipairs { ... } do t[s] = true end
    return t
  end
  local ANY_4XX = setmetatable({}, { __index = function(_, s) return s >= 400 and s < 500 end })
  local REFUSED = set(422)

  -- The base body of a route: every field with a base value, fresh
  -- identities for signup.
  local function base_fields(route)
    local fields = {}
    for _, f in ipairs(route.body or {}) do
      local v = f[2]
      if v ~= nil then fields[#fields + 1] = { f[1], v } end
    end
    return fields
  end

  local function base_query(route)
    local parts = {}
    for _, q in ipairs(route.query or {}) do parts[#parts + 1] = q[1] .. "=" .. q[2] end
    return parts
  end

  -- The route's path with its sample parameter.
  local function sample_path(route)
    return route.at and route.at[1] .. route.at[2] .. route.at[3] or route[2]
  end

  local function url(route, query_parts)
    local path = sample_path(route)
    if query_parts and #query_parts > 0 then path = path .. "?" .. table.concat(query_parts, "&") end
    return path
  end

  -- For batteries about something else than the body: on a money route a
  -- request it must refuse with 422 (its first field an object, or a
  -- non-numeric amount), elsewhere the valid base request.
  local function refused_body(route)
    if route.money and route.body then
      local fields = base_fields(route)
      for i, f in ipairs(fields) do
        if f[1] == route.body[1][1] then table.remove(fields, i) break end
      end
      fields[#fields + 1] = { route.body[1][1], '{"refused":true}' }
      return json_object(fields)
    end
    return route.body and json_object(base_fields(route)) or nil
  end

  local function refused_path(route)
    if route.money and route.query then return url(route, { route.query[1][1] .. "=abc" }) end
    return url(route, base_query(route))
  end

  -- Batteries ------------------------------------------------------------
  local function auth_battery(route)
    if route[3] == "none" then return end
    local body = route.body and "not json" or nil
    local path = url(route, base_query(route))
    probe(route, route[1], path, body, {}, { expect = set(403), detail = "Not authenticated" })
    for _, t in ipairs(tokens) do
      probe(route, route[1], path, body, { Authorization = t }, { expect = set(401, 403) })
    end
  end

  local function body_battery(route)
    local h = headers_for(route)
    local path = url(route, base_query(route))
    local strict = route.body
    for _, raw in ipairs(BAD_BODIES) do
      probe(route, route[1], path, raw, h, { expect = strict and route.money and REFUSED or nil })
    end
    -- a body of optional fields only (gacha, admin tokens add) accepts an
    -- object of unknown fields: a valid request
    local optional_only = not route.requires_body
    for _, raw in ipairs(OBJECT_BODIES) do
      probe(route, route[1], path, raw, h,
        { expect = strict and route.money and not optional_only and REFUSED or nil })
    end
    if not route.body then return end
    for _, f in ipairs(route.body) do
      for _, bad in ipairs(BAD_VALUES) do
        local fields = {}
        for _, b in ipairs(base_fields(route)) do if b[1] ~= f[1] then fields[#fields + 1] = b end end
        fields[#fields + 1] = { f[1], bad }
        probe(route, route[1], path, json_object(fields), h)
        if f[3] then -- the camelCase alias alone
          fields[#fields] = { f[3][1], bad }
          probe(route, route[1], path, json_object(fields), h)
        end
      end
      -- duplicate key: a wrong value after a good one
      local fields = base_fields(route)
      fields[#fields + 1] = { f[1], '{"dup":1}' }
      probe(route, route[1], path, json_object(fields), h)
      -- the field nested 1000 deep
      fields = {}
      for _, b in ipairs(base_fields(route)) do if b[1] ~= f[1] then fields[#fields + 1] = b end end
      fields[#fields + 1] = { f[1], nested_array(1000) }
      probe(route, route[1], path, json_object(fields), h, { expect = route.money and REFUSED or nil })
    end
    -- the declared body with Content-Type text/plain (refused on money routes)
    probe(route, route[1], path, refused_body(route), { Authorization = h.Authorization, ["Content-Type"] = "text/plain" },
      { expect = route.money and route.body and REFUSED or nil })
  end

  local function query_battery(route)
    if not route.query then return end
    local h = headers_for(route)
    local body = refused_body(route)
    local expect = route.money and set(400, 422) or nil
    for i, q in ipairs(route.query) do
      for _, bad in ipairs(BAD_QUERY_VALUES) do
        local parts = base_query(route)
        parts[i] = q[1] .. "=" .. bad
        probe(route, route[1], url(route, parts), body, h, { expect = bad ~= PADDED and expect or nil })
      end
      local parts = base_query(route)
      parts[i] = q[1] -- no "="
      probe(route, route[1], url(route, parts), body, h, { expect = expect })
      parts[i] = q[1] .. "=abc&" .. q[1] .. "=1.5" -- repeated, both bad
      probe(route, route[1], url(route, parts), body, h, { expect = expect })
      table.remove(parts, i) -- missing
      probe(route, route[1], url(route, parts), body, h, route.money and { expect = set(422) } or nil)
    end
    local parts = base_query(route)
    parts[#parts + 1] = "%FF=%FF&&&=&%00=%00&" .. string.rep("z", 3000) .. "=1"
    probe(route, route[1], url(route, parts), body, h)
  end

  local function path_battery(route)
    if not route.param then return end
    local h = headers_for(route)
    local body = route.body and json_object(base_fields(route)) or nil
    for _, bad in ipairs(route.param == "int" and BAD_INT_PATHS or BAD_STRING_PATHS) do
      local expect = route.param == "int" and bad ~= PADDED and set(400, 404, 422) or nil
      probe(route, route[1], route.at[1] .. bad .. route.at[3], body, h, { expect = expect })
    end
  end

  local function header_battery(route)
    local auth = headers_for(route)
    local path = refused_path(route)
    local body = refused_body(route)
    for _, hv in ipairs(BAD_HEADERS) do
      local h = { Authorization = auth.Authorization, [hv[1]] = hv[2] }
      probe(route, route[1], path, body, h, { expect = route.money and ANY_4XX or nil })
    end
    if route.idempotent then
      -- a valid request with a malformed key must be refused before it runs
      local valid = route.body and json_object(base_fields(route)) or nil
      for _, key in ipairs(BAD_IDEMPOTENCY_KEYS) do
        local illegal = key:find("\127", 1, true) ~= nil
        probe(route, route[1], url(route, base_query(route)), valid,
          { Authorization = auth.Authorization, ["Idempotency-Key"] = key },
          { expect = illegal and set(400) or REFUSED, loc = not illegal and "header,Idempotency-Key" or nil })
      end
    end
  end

  local ALL_METHODS = { "GET", "POST", "PUT", "PATCH", "DELETE" }

  -- True when the path pattern of r (segments {name} or {name:type}) matches path.
  local function matches(r, path)
    local pattern = "^" .. r[2]:gsub("[%-%.%+%*%?%[%]%^%$%(%)%%]", "%%%0"):gsub("{[^}]*}", "[^/]+") .. "$"
    return path:find(pattern) ~= nil
  end

  local function method_battery(route)
    local path = sample_path(route)
    -- Methods some route serves at this path: its own, and those of other
    -- patterns it matches (GET /api/events/join is GET /api/events/{id}: a 422).
    local allowed, matched = {}, {}
    for _, r in ipairs(ROUTES) do
      if sample_path(r) == path then allowed[r[1]] = true end
      if matches(r, path) then matched[r[1]] = true end
    end
    local h = headers_for(route)
    for _, m in ipairs(ALL_METHODS) do
      if not allowed[m] then probe(route, m, path, nil, h, { expect = not matched[m] and set(405) or nil }) end
    end
    if allowed.GET or matched.GET then
      local get = http.request(host.port, "GET", path, nil, h)
      probe(route, "HEAD", path, nil, h, { expect = set(get.status) })
    else
      probe(route, "HEAD", path, nil, h, { expect = set(405) })
    end
    probe(route, "OPTIONS", path, nil, { Origin = "http://localhost:3000", ["Access-Control-Request-Method"] = "POST" },
      { expect = set(200) })
    probe(route, "PROPFIND", path, nil, h)
    probe(route, "FOO", path, nil, h)
    if not route.destructive then
      probe(route, route[1], path .. "?" .. "%FF=%FF&a&&=&b=%00&c=%C0%80", refused_body(route), h)
    end
  end

  for _, route in ipairs(ROUTES) do
    it("answers bad input to " .. route[1] .. " " .. route[2] .. " with a clear 4xx", function()
      assert(#route.missing == 0, route[1] .. " " .. route[2] .. " is declared without the hints the battery needs: "
        .. table.concat(route.missing, "; "))
      problems = {}
      auth_battery(route)
      if route.origin == "scripts" then -- fixture routes are test harness: their hints and guard only
        if not route.destructive then
          body_battery(route)
          query_battery(route)
          path_battery(route)
          header_battery(route)
        end
        method_battery(route)
      end
      local health = host:request("GET", "/health")
      if not (health and health.status == 200) then
        problems[#problems + 1] = "GET /health afterwards -> " .. (health and health.status .. " " .. show(health.body)
          or "no response")
      end
      assert(#problems == 0, #problems .. " bad answers:\n" .. table.concat(problems, "\n"))
    end)
  end

  it("refuses forged and garbage tokens on a money route and on logout", function()
    problems = {}
    local spin
    for _, r in ipairs(ROUTES) do
      if r[2] == "/api/games/slot/spin" then spin = r end
    end
    assert.truthy(spin)
    for _, t in ipairs(tokens) do
      probe(spin, "POST", "/api/games/slot/spin", '{"bet_amount":10}', { Authorization = t }, { expect = set(401, 403) })
      probe(spin, "POST", "/api/auth/refresh", nil, { Authorization = t }, { expect = set(401, 403) })
    end
    local health = host:request("GET", "/health")
    assert.equal(200, health and health.status)
    assert(#problems == 0, #problems .. " bad answers:\n" .. table.concat(problems, "\n"))
  end)

  it("kept the ledger equal to the balances, and its write check sees a real play", function()
    local rows = api.sql(host, "SELECT count(*) FROM wallet_balances b WHERE b.balance <> "
      .. "(SELECT coalesce(sum(delta), 0) FROM wallet_ledger l WHERE l.user_id = b.user_id AND l.currency = b.currency)")
    assert.equal("0", rows[1][1])
    local before = snapshot()
    local res = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 },
      { Authorization = "Bearer " .. user.access_token })
    assert.equal(200, res.status, res.body)
    assert.are_not.equal(before, snapshot())
  end)
  -- The static files of the browser console (STATIC_MOUNTS, host/static.c):
  -- traversal, encoded dots, long names and other hostile paths are a 404
  -- (or, for a path the HTTP layer refuses, another 4xx), never a 5xx, and
  -- never a file from outside scripts/console or the vendor folder.
  it("answers hostile /console paths with a 4xx and never serves a file outside the folder", function()
    local function get(path, method)
      local c = assert(http.connect(host.port))
      assert(c:send(http.format(method or "GET", path)))
      local res, err = c:read_response(method == "HEAD")
      c:close()
      return res, err
    end
    assert.equal(200, get("/console/").status) -- the mount is live (the app's index)
    local long = string.rep("a", 255)
    local paths = {
      "/console/../config/settings.lua", "/console/../../../../etc/passwd", "/console/js/../../../README.md",
      "/console/vendor/../../config/settings.lua", "/console/vendor/../index.html",
      "/console/%2e%2e/config/settings.lua", "/console/%2E%2E/%2E%2E/etc/passwd", "/console/.%2e/README.md",
      "/console/%2e%2e%2fconfig%2fsettings.lua", "/console/%2e/index.html", "/console/js/%2e%2e/index.html",
      "/console/vendor/%2e%2e/%2e%2e/config/settings.lua", "/console/%252e%252e/config/settings.lua",
      "/console/..%5c..%5cconfig%5csettings.lua", "/console/..\\config\\settings.lua", "/console/.git/config",
      "/console/vendor/.package-lock.json", "/console/%00", "/console/index.html%00.js", "/console/%ff%fe",
      "/console//js/main.js", "/console/js//main.js", "/console/%", "/console/%zz", "/console/js/main.js/",
      "/console/" .. long .. ".js", "/console/" .. long .. "a.js", "/console/" .. string.rep("b", 5000),
      "/console/" .. string.rep("d/", 2000) .. "x.js", "/console/" .. string.rep("%2e%2e/", 500) .. "etc/passwd",
      "/console/vendor/" .. string.rep("%2e", 3000), "/consolex/index.html", "/console/%0d%0aX-Injected:%201",
    }
    local bad = {}
    for _, path in ipairs(paths) do
      local shown = #path > 80 and (path:sub(1, 60) .. "… (" .. #path .. " bytes)") or path
      local res, err = get(path)
      if not res then
        bad[#bad + 1] = shown .. " -> no answer (" .. tostring(err) .. ")"
      elseif res.status >= 500 or res.status < 400 then
        bad[#bad + 1] = shown .. " -> " .. res.status
      elseif res.body:find("DATABASE_URL", 1, true) or res.body:find("root:", 1, true) then
        bad[#bad + 1] = shown .. " -> a file from outside the folder"
      elseif res.status == 404 and not (res.json and res.json.detail == "Not Found") then
        bad[#bad + 1] = shown .. " -> 404 without the contract's body"
      end
    end
    for _, method in ipairs { "POST", "PUT", "DELETE" } do
      local res = get("/console/index.html", method)
      if not res or res.status ~= 405 then bad[#bad + 1] = method .. " /console/index.html -> " .. tostring(res and res.status) end
    end
    local health = host:request("GET", "/health")
    assert.equal(200, health and health.status)
    assert(#bad == 0, #bad .. " bad answers:\n" .. table.concat(bad, "\n"))
  end)
end)
