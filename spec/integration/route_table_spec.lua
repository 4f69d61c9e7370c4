-- route_table_spec.lua - the loaded generation's route table is readable
-- from Lua (host.routes) and from the command line (`cchost routes --json`),
-- the two agree, and it describes what the host really serves: every route
-- answers at its declared path and method, fixture routes are marked as such
-- and absent without FIXTURE_SCRIPTS, and every declaration carries the
-- hints tools rely on.
local support = require "spec.support.host"
local http = require "spec.support.http"

-- The path of a table route with its example path values.
local function sample_path(r)
  local path = r.path
  for _, p in ipairs(r.params or {}) do
    path = path:gsub("{" .. p.name .. "[^}]*}", tostring(p.example))
  end
  return path
end

describe("the route table", function()
  local host

  setup(function() host = support.start { WORKERS = "1" } end)
  teardown(function() if host then host:stop() end end)

  it("is the same from Lua in the running host and from cchost routes --json", function()
    local live = host:request("GET", "/test/routes")
    assert.equal(200, live.status)
    assert.same(support.routes(), live.json)
  end)

  it("marks fixture routes, and has none without FIXTURE_SCRIPTS", function()
    local origins = {}
    for _, r in ipairs(support.routes()) do
      origins[r.origin] = (origins[r.origin] or 0) + 1
      local harness = r.path:find("^/test/") ~= nil or r.path:find("^/bench/") ~= nil
      assert.equal(harness, r.origin == "fixtures", r.path)
    end
    assert.is_true(origins.scripts > 40 and origins.fixtures > 30)
    local bare = support.routes { FIXTURE_SCRIPTS = false }
    assert.equal(origins.scripts, #bare)
    for _, r in ipairs(bare) do assert.equal("scripts", r.origin) end
  end)

  it("declares every script route with a summary, tags, a unique operationId and its hints", function()
    local ops = {}
    for _, r in ipairs(support.routes()) do
      if r.origin == "scripts" then
        local where = r.method .. " " .. r.path
        assert.is_string(r.summary, where)
        assert.is_true(type(r.tags) == "table" and #r.tags > 0, where)
        assert.is_nil(ops[r.operation_id], where)
        ops[r.operation_id] = true
        if r.method ~= "WS" then assert.is_boolean(r.moves_money, where) end
        if r.idempotent then assert.is_true(r.moves_money and r.method == "POST", where) end
      end
    end
    assert.is_true(ops.games_rps_play_v1)
  end)

  it("lists routes the host really serves at their paths and methods", function()
    local wrong = {}
    for _, r in ipairs(support.routes()) do
      if r.method ~= "WS" and not r.destructive then
        local res = http.request(host.port, r.method, sample_path(r), r.body and "{}" or nil,
          r.body and { ["Content-Type"] = "application/json" } or nil)
        if not res or res.status == 404 and (res.json or {}).detail == "Not Found" and r.path ~= "/api/games/{game_type}/config"
          or res.status == 405 then
          wrong[#wrong + 1] = r.method .. " " .. sample_path(r) .. " -> " .. tostring(res and res.status)
        end
      end
    end
    assert.same({}, wrong)
  end)
end)
