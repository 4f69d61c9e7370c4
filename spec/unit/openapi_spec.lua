-- openapi_spec.lua - the OpenAPI generator (scripts/lib/openapi.lua) on
-- route tables written here in host.routes() form: what goes in and what
-- stays out, operations, parameters, bodies with limits and aliases,
-- declared and implied responses, the `responses` declaration check, and
-- the JSON text (deterministic bytes, whatever order tables were built in).
-- lib/openapi reads the error catalogue, which needs only host.error (not
-- called here) when it loads.
package.loaded.host = package.loaded.host or { error = error, is_http_error = function() return false end }
local openapi = require "lib.openapi"
local schema = require "lib.schema"
local cjson = require "cjson"

-- A route as host.routes() gives it, with the hints every route carries.
local function route(t)
  t.origin = t.origin or "scripts"
  t.auth = t.auth or "none"
  t.tags = t.tags or { "Games" }
  t.summary = t.summary or "A route"
  t.operation_id = t.operation_id or (t.method:lower() .. t.path:gsub("[^%w]+", "_"))
  if t.moves_money == nil then t.moves_money = false end
  t.params = t.params or schema.path_params(t.path) -- as the loader derives them
  return t
end

local RPS = route {
  method = "POST", path = "/api/games/rps/play", auth = "user", operation_id = "games_rps_play_v1",
  summary = "Play rock, paper, scissors", moves_money = true, idempotent = true,
  body = {
    { name = "choice", type = "string", required = true, enum = { "rock", "paper", "scissors" }, example = "rock" },
    { name = "bet_amount", type = "integer", required = true, ge = 10, le = 500, aliases = { "betAmount" },
      description = "tokens staked", example = 10 },
  },
  responses = { [200] = "RPS result", [400] = { "INSUFFICIENT_TOKENS", "BALANCE_LIMIT" }, [422] = true },
}

local function doc_of(routes) return openapi.document(routes) end

describe("openapi.document", function()
  it("carries the contract's info, a static server and OpenAPI 3.1", function()
    local doc = doc_of {}
    assert.equal("3.1.0", doc.openapi)
    assert.same({ title = "Casino-Club F2P API", description = "Backend API for Casino-Club F2P gaming platform",
                  version = "1.0.0" }, doc.info)
    assert.same({ { url = "/" } }, doc.servers)
    assert.same({ type = "http", scheme = "bearer" }, doc.components.securitySchemes.HTTPBearer)
  end)

  it("documents script routes once, never fixtures, plumbing or HEAD", function()
    local doc = doc_of {
      RPS,
      route { method = "GET", path = "/api/games/", operation_id = "games_list" },
      route { method = "GET", path = "/api/users/{user_id:int}", operation_id = "users_get",
              params = { { name = "user_id", type = "integer", required = true, example = 1 } } },
      route { method = "GET", path = "/test/sleep", origin = "fixtures" },
      route { method = "GET", path = "/openapi.json" },
      route { method = "GET", path = "/metrics" },
      route { method = "GET", path = "/docs/x" },
      route { method = "GET", path = "/redoc" },
    }
    local seen = {}
    for path, ops in pairs(doc.paths) do
      for method in pairs(ops) do seen[#seen + 1] = method .. " " .. path end
    end
    table.sort(seen)
    -- The type leaves the path, and so does a root's trailing slash (the
    -- router answers both spellings).
    assert.same({ "get /api/games", "get /api/users/{user_id}", "post /api/games/rps/play" }, seen)
  end)

  it("gives an operation its first tag, summary, operationId, security and hints", function()
    local op = doc_of({ RPS }).paths["/api/games/rps/play"].post
    assert.same({ "Games" }, op.tags)
    assert.equal("Play rock, paper, scissors", op.summary)
    assert.equal("games_rps_play_v1", op.operationId)
    assert.same({ { HTTPBearer = {} } }, op.security)
    assert.is_true(op["x-moves-money"])
    local open = doc_of({ route { method = "GET", path = "/api/x", tags = { "System", "Other" } } }).paths["/api/x"].get
    assert.same({ "System" }, open.tags)
    assert.same({}, open.security)
    assert.matches('"security":%[%]', openapi.render { route { method = "GET", path = "/api/x" } }) -- no auth
  end)

  it("lists path, query and header parameters, and Idempotency-Key on idempotent routes", function()
    local op = doc_of({ route {
      method = "POST", path = "/api/things/{thing_id:int}", idempotent = true, moves_money = true,
      params = { { name = "thing_id", type = "integer", required = true, ge = 1, example = 7 } },
      query = { { name = "page", type = "integer", default = 1, ge = 1, example = 2, description = "page number" } },
      headers = { { name = "X-Idempotency-Key", type = "string", example = "key-0001" } },
    } }).paths["/api/things/{thing_id}"].post
    local names = {}
    for i, p in ipairs(op.parameters) do names[i] = p["in"] .. ":" .. p.name end
    assert.same({ "path:thing_id", "query:page", "header:X-Idempotency-Key", "header:Idempotency-Key" }, names)
    local path, query, key = op.parameters[1], op.parameters[2], op.parameters[4]
    assert.is_true(path.required)
    assert.equal(7, path.example)
    assert.equal(1, path.schema.minimum)
    assert.is_nil(path.schema.example)
    assert.is_false(query.required)
    assert.equal("page number", query.description)
    assert.equal(1, query.schema.default)
    assert.same({ type = "string", minLength = 1, maxLength = 128, pattern = "^[!-~]+$" }, key.schema)
    assert.is_false(key.required)
  end)

  it("describes request bodies with their limits, aliases and an example", function()
    local body = doc_of({ RPS }).paths["/api/games/rps/play"].post.requestBody
    assert.is_true(body.required)
    local media = body.content["application/json"]
    assert.same({ choice = "rock", bet_amount = 10 }, media.example)
    local s = media.schema
    assert.equal("object", s.type)
    assert.same({ "choice", "bet_amount" }, s.required)
    assert.same({ "rock", "paper", "scissors" }, s.properties.choice.enum)
    assert.equal(10, s.properties.bet_amount.minimum)
    assert.equal(500, s.properties.bet_amount.maximum)
    assert.same({ "betAmount" }, s.properties.bet_amount["x-aliases"])
    assert.matches("tokens staked%. Also accepted as `betAmount`", s.properties.bet_amount.description)
  end)

  it("declares success and error responses in FastAPI's shapes", function()
    local r = doc_of({ RPS }).paths["/api/games/rps/play"].post.responses
    assert.equal("RPS result", r["200"].description)
    assert.is_table(r["200"].content["application/json"])
    assert.is_table(r["200"].headers["Idempotent-Replayed"])
    -- error names: their catalogue texts, listed and given as example bodies
    assert.equal("- `토큰이 부족합니다`\n- `Balance limit exceeded`", r["400"].description)
    local bad = r["400"].content["application/json"]
    assert.equal("#/components/schemas/HTTPError", bad.schema["$ref"])
    assert.same({ detail = "토큰이 부족합니다" }, bad.examples.INSUFFICIENT_TOKENS.value)
    assert.equal("Validation Error", r["422"].description)
    assert.equal("#/components/schemas/HTTPValidationError", r["422"].content["application/json"].schema["$ref"])
    -- implied by auth "user" and Idempotency-Key
    assert.is_table(r["401"].headers["WWW-Authenticate"])
    assert.is_table(r["403"].content["application/json"].examples.NOT_AUTHENTICATED)
    assert.is_table(r["409"].content["application/json"].examples.IDEMPOTENCY_KEY_REUSED)
    local schemas = doc_of({}).components.schemas
    assert.same({ "detail" }, schemas.HTTPError.required)
    assert.equal("#/components/schemas/ValidationError", schemas.HTTPValidationError.properties.detail.items["$ref"])
    assert.same({ "loc", "msg", "type" }, schemas.ValidationError.required)
  end)

  it("merges declared statuses with implied ones, and knows 201, 204, prose errors and rank routes", function()
    local paths = doc_of({
      route { method = "POST", path = "/api/admin/things", auth = "admin", body = { { name = "a", type = "string" } },
              responses = { [201] = "Created thing", [403] = { "INVITE_ADMIN_ONLY", description = "Not yours" },
                            [422] = true } },
      route { method = "DELETE", path = "/api/admin/things/{id:int}", auth = "admin",
              responses = { [204] = true, [404] = { "USER_NOT_FOUND" } } },
      route { method = "GET", path = "/api/rbac/vip", auth = "rank", rank = "VIP" },
      route { method = "GET", path = "/health", responses = { [200] = "Healthy", [503] = "Degraded: the same body" } },
    }).paths
    local create = paths["/api/admin/things"].post.responses
    assert.is_nil(create["200"])
    assert.equal("Created thing", create["201"].description)
    assert.equal("Not yours\n- `Not authenticated`\n- `Invalid authentication credentials`\n"
      .. "- `Admin access required`\n- `Only admin users can generate invite codes`", create["403"].description)
    local delete = paths["/api/admin/things/{id}"].delete.responses
    assert.same({ description = "No Content" }, delete["204"])
    assert.equal("Validation Error", delete["422"].description) -- the typed path parameter
    local vip = paths["/api/rbac/vip"].get
    assert.matches("Insufficient rank: requires VIP", vip.responses["403"].description)
    assert.matches("Requires rank VIP", vip.description)
    -- described only in prose: any JSON, not FastAPI's error body
    assert.same({ description = "Degraded: the same body", content = { ["application/json"] = {} } },
      paths["/health"].get.responses["503"])
  end)

  it("gives a route without declared responses 200 and the implied statuses", function()
    local r = doc_of({ route { method = "GET", path = "/api/new", auth = "user",
                               query = { { name = "q", type = "string", example = "x" } } } }).paths["/api/new"].get
    local statuses = {}
    for k in pairs(r.responses) do statuses[#statuses + 1] = k end
    table.sort(statuses)
    assert.same({ "200", "401", "403", "422" }, statuses)
    assert.equal("Successful Response", r.responses["200"].description)
  end)

  it("describes a WebSocket route as a GET flagged x-websocket", function()
    local op = doc_of({ route {
      method = "WS", path = "/ws/notifications/{user_id}", tags = { "websockets" }, operation_id = "ws_notifications",
      moves_money = nil, responses = { [101] = "The socket is open", [401] = "Bad token" },
    } }).paths["/ws/notifications/{user_id}"].get
    assert.is_true(op["x-websocket"])
    assert.equal("ws_notifications", op.operationId)
    assert.matches("Upgrade: websocket", op.description)
    assert.same({ description = "The socket is open" }, op.responses["101"])
    assert.is_nil(op.responses["422"])
    assert.equal("user_id", op.parameters[1].name)
    assert.equal("path", op.parameters[1]["in"])
  end)

  it("orders tags as the contract does, unknown ones after", function()
    local doc = doc_of {
      route { method = "GET", path = "/a", tags = { "Zeta" } },
      route { method = "GET", path = "/b", tags = { "Games" } },
      route { method = "GET", path = "/c", tags = { "System" } },
    }
    local names = {}
    for i, t in ipairs(doc.tags) do names[i] = t.name end
    assert.same({ "System", "Games", "Zeta" }, names)
    assert.is_string(doc.tags[1].description)
  end)
end)

describe("openapi.check_responses", function()
  it("accepts the compact form", function()
    assert.is_nil(openapi.check_responses { [200] = "Token", [400] = { "INVITE_INVALID", "SITE_ID_TAKEN" },
                                            [422] = true, [503] = "Degraded" })
    assert.is_nil(openapi.check_responses { [101] = "open", [401] = { "TOKEN_INVALID", description = "why" } })
  end)

  it("names what is wrong", function()
    local function check(r) return openapi.check_responses(r) end
    assert.matches("must be a table", check "200")
    assert.matches("bad status '200'", check { ["200"] = "x" })
    assert.matches("bad status '99'", check { [99] = "x", [200] = "y" })
    assert.matches("responses%[200%]: give a description$", check { [200] = "" })
    assert.matches("responses%[418%]: no standard text", check { [200] = true, [418] = true })
    assert.matches("responses%[404%]: no standard text", check { [200] = true, [404] = true })
    assert.matches("'NO_SUCH_ERROR' is not a name of lib/errors.lua", check { [200] = true, [400] = { "NO_SUCH_ERROR" } })
    assert.matches("responses%[400%]: USER_NOT_FOUND is a 404 error", check { [200] = true, [400] = { "USER_NOT_FOUND" } })
    assert.matches("responses%[400%]: give a description, true, or a list", check { [200] = true, [400] = {} })
    assert.matches("description must be", check { [200] = true, [404] = { "USER_NOT_FOUND", description = 1 } })
    assert.matches("success status", check { [400] = "x" })
  end)
end)

describe("openapi.encode", function()
  it("writes the top-level keys in the usual order and every other object's keys sorted", function()
    local text = openapi.encode {
      components = { b = 1, a = 2 }, paths = {}, tags = {}, servers = {}, info = { version = "1", title = "t" },
      openapi = "3.1.0",
    }
    assert.equal('{"openapi":"3.1.0","info":{"title":"t","version":"1"},"servers":{},"tags":{},"paths":{},'
      .. '"components":{"a":2,"b":1}}\n', text)
  end)

  it("gives the same bytes whatever order the tables were built in", function()
    local names = {}
    for i = 1, 300 do names[i] = "key" .. i end
    local function build(order)
      local t = {}
      for _, k in ipairs(order) do t[k] = { k, #k } end
      return { openapi = "3.1.0", info = {}, servers = {}, tags = {}, paths = t, components = {} }
    end
    local reversed = {}
    for i = #names, 1, -1 do reversed[#reversed + 1] = names[i] end
    assert.equal(openapi.encode(build(names)), openapi.encode(build(reversed)))
  end)

  it("writes strings, numbers, arrays and empty arrays as JSON", function()
    local out = openapi.encode { openapi = "x", info = {
      s = 'quote " back \\ nl \n tab \t nul \0 한글', i = 9007199254740991, f = 1.01, neg = -0.5,
      list = { 1, "two", true }, empty = setmetatable({}, {}), object = {},
    }, servers = {}, tags = {}, paths = {}, components = {} }
    local info = cjson.decode(out).info
    assert.equal('quote " back \\ nl \n tab \t nul \0 한글', info.s)
    assert.matches('"i":9007199254740991', out)
    assert.matches('"f":1.01', out)
    assert.matches('"neg":%-0.5', out)
    assert.matches('"empty":%[%]', out)
    assert.matches('"object":{}', out)
    assert.matches('"list":%[1,"two",true%]', out)
    assert.matches("한글", out) -- UTF-8 unescaped
  end)

  it("refuses what JSON cannot hold", function()
    local function enc(v)
      return openapi.encode { openapi = v, info = {}, servers = {}, tags = {}, paths = {}, components = {} }
    end
    assert.has_error(function() enc(0 / 0) end)
    assert.has_error(function() enc(math.huge) end)
    assert.has_error(function() enc(print) end)
    assert.has_error(function() enc({ [true] = 1 }) end)
  end)

  it("renders a document that parses back to itself", function()
    local doc = doc_of { RPS }
    assert.same(cjson.decode(cjson.encode(doc)), cjson.decode(openapi.render { RPS }))
  end)
end)
