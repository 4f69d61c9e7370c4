-- game_registry_spec.lua - the loader's discovery of games is the one list
-- of games (DESIGN.md "Game rules as data"). A fixture coin flip is added by
-- four things only: its rules file, its route declaration, its band line and
-- its `games` row. After a reload it is listed and playable, `cchost rtp`
-- shows it, and a coin flip whose exact RTP leaves its band is refused.
local support = require "spec.support.host"
local api = require "spec.support.api"
local signal = support.signal
local write, tmpdir, run = support.write_file, support.tmpdir, support.run

local BIN = os.getenv("CCHOST_BIN") or "build/cchost"

local function wait_reload(host, after)
  return support.wait_for(function()
    local s = host:request("GET", "/health").json.scripts
    if s.last_reload.at ~= after then return s end
  end, 15)
end

describe("the game registry", function()
  local host, fixtures, config

  before_each(function()
    fixtures, config = tmpdir(), tmpdir()
    assert(os.execute("cp -r spec/fixtures/scripts/. " .. fixtures .. " && cp -r config/. " .. config))
  end)

  after_each(function()
    if host then host:stop() end
    host = nil
    os.execute("rm -rf " .. fixtures .. " " .. config)
  end)

  it("takes a new game from its rules file, route, band line and games row", function()
    host = support.start { WORKERS = "2", FIXTURE_SCRIPTS = fixtures, CONFIG_DIR = config }
    local player = api.player(host, 1000)
    local function listed()
      for _, g in ipairs(host:request("GET", "/api/games/", nil, player.headers).json) do
        if g.type == "coinflip" then return g end
      end
    end
    assert.is_nil(listed())

    -- The four additions.
    assert(os.execute("mkdir -p " .. fixtures .. "/games && cp spec/fixtures/coinflip/games/coinflip.lua "
      .. fixtures .. "/games/ && cp spec/fixtures/coinflip/routes/coinflip.lua " .. fixtures .. "/routes/"))
    local bands = support.read_file(config .. "/rtp_bands.lua")
    write(config .. "/rtp_bands.lua", (bands:gsub("\n}%s*$", "\n  coinflip = { 0.94, 0.96 },\n}\n")))
    api.sql(host, "INSERT INTO games (name, game_type, description, sort_order) "
      .. "VALUES ('코인플립', 'coinflip', 'fixture game', 9)")

    local before = host:request("GET", "/health").json.scripts.last_reload.at
    host:signal(signal.SIGHUP)
    local status = wait_reload(host, before)
    assert.is_true(status.last_reload.ok, tostring(status.last_reload.error))

    local g = listed()
    assert.truthy(g)
    assert.same({ true, 10, 100 }, { g.canPlay, g.min_bet, g.max_bet })
    local res = host:request("POST", "/test/games/coinflip/flip", { bet_amount = 50, side = "heads" }, player.headers)
    assert.equal(200, res.status, res.body)
    assert.equal(res.json.won and 1045 or 950, res.json.balance)
    assert.equal(res.json.won and 95 or 0, res.json.payout)
    assert.equal("coinflip", api.sql(host, "SELECT game_type FROM game_plays WHERE id = " .. res.json.play_id)[1][1])
    assert.equal(422, host:request("POST", "/test/games/coinflip/flip", { bet_amount = 5000, side = "heads" },
      player.headers).status)
    local public = host:request("GET", "/api/games/coinflip/config").json
    assert.same({ "coinflip", 0.95 }, { public.game_type, public.rtp })

    local env = "FIXTURE_SCRIPTS=" .. fixtures .. " CONFIG_DIR=" .. config .. " APP_PROFILE=development "
    local out, code = run(env .. BIN .. " rtp --plays 2000 --seed spec")
    assert.equal(0, code, out)
    assert.truthy(out:find("\ncoinflip%s+0%.950000%s"), out)
    assert.truthy(out:find("\nslot%s+0%.950748%s"), out)

    -- Out of band: refused, the previous generation keeps serving.
    local rules = fixtures .. "/games/coinflip.lua"
    write(rules, (support.read_file(rules):gsub("win_x100 = 190", "win_x100 = 200")))
    before = host:request("GET", "/health").json.scripts.last_reload.at
    host:signal(signal.SIGHUP)
    status = wait_reload(host, before)
    assert.is_false(status.last_reload.ok)
    assert.truthy(status.last_reload.error:find("games/coinflip.lua: self-check failed: coinflip: exact RTP 1.000000",
      1, true), status.last_reload.error)
    assert.equal(0.95, host:request("GET", "/api/games/coinflip/config").json.rtp)
  end)

  it("refuses a game module that lacks part of the interface", function()
    assert(os.execute("mkdir -p " .. fixtures .. "/games"))
    write(fixtures .. "/games/half.lua", "return { config = {}, play = function() end }\n")
    local ok, err = pcall(support.start, { WORKERS = "1", FIXTURE_SCRIPTS = fixtures, CONFIG_DIR = config })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("game half lacks distribution (function), exact (function)", 1, true), err)
  end)
end)
