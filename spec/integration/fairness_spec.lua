-- fairness_spec.lua - provably fair (CONTRACT.md §8) against a real host:
-- the seed pair a user starts with, nonces consumed by plays, the client
-- seed, rotation (reveal, fresh seed, 409 during a crash round), the
-- revealed list, and the player's check: after a rotation every play of the
-- old seed is re-derived here, outside the host, from the revealed server
-- seed, the client seed and the nonce (lib/fair.lua with a pure-Lua HMAC and
-- the game modules) and must equal the stored outcome, also when a rotation
-- races concurrent plays.
package.path = "./scripts/?.lua;./?.lua;" .. package.path

local support = require "spec.support.host"
local api = require "spec.support.api"
local http = require "spec.support.http"
local sha256 = require "spec.support.sha256"
local fair = require "lib.fair"

local RULES = { slot = require "games.slot", rps = require "games.rps", gacha = require "games.gacha" }

local keys = api.keys

local player = api.player

local function hex_sha256(s) return sha256.hex(sha256.sha256(s)) end

-- The outcome a player computes for a stored play (bet and inputs from the row).
local function rederive(server_seed, play)
  local rules = RULES[play.game_type]
  local input = { bet = play.bet_amount }
  if play.game_type == "rps" then input.choice = play.outcome.player_choice end
  if play.game_type == "gacha" then input.pull_count = #play.outcome.items end
  local rng = fair.stream(server_seed, play.client_seed, play.nonce, sha256.hmac_sha256)
  return rules.play(rules.config, rng, input)
end

local function plays_of(host, user_id)
  local rows = api.sql(host, "SELECT game_type, bet_amount, nonce, client_seed, server_seed_hash, outcome::text "
    .. "FROM game_plays WHERE user_id = " .. user_id .. " ORDER BY id")
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { game_type = r[1], bet_amount = tonumber(r[2]), nonce = tonumber(r[3]), client_seed = r[4],
               server_seed_hash = r[5], outcome = http.json.decode(r[6]) }
  end
  return out
end

describe("fairness", function()
  local host
  setup(function()
    host = support.start { WORKERS = "2", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
  end)
  teardown(function() host:stop() end)

  it("gives each user a seed pair: a 64-hex hash, a 32-hex client seed, nonce 0", function()
    local a, b = player(host), player(host)
    local ra = host:request("GET", "/api/fairness", nil, a.headers)
    assert.equal(200, ra.status, ra.body)
    assert.same({ "client_seed", "nonce", "server_seed_hash" }, keys(ra.json))
    assert.truthy(ra.json.server_seed_hash:match("^[0-9a-f]+$") and #ra.json.server_seed_hash == 64)
    assert.truthy(ra.json.client_seed:match("^[0-9a-f]+$") and #ra.json.client_seed == 32)
    assert.equal(0, ra.json.nonce)
    assert.same(ra.json, host:request("GET", "/api/fairness", nil, a.headers).json)
    local rb = host:request("GET", "/api/fairness", nil, b.headers).json
    assert.are_not.equal(ra.json.server_seed_hash, rb.server_seed_hash)
    assert.are_not.equal(ra.json.client_seed, rb.client_seed)
    assert.equal(403, host:request("GET", "/api/fairness").status)
  end)

  it("consumes one nonce per play, with the pair the play used in its response", function()
    local p = player(host, 2000)
    local seed = host:request("GET", "/api/fairness", nil, p.headers).json
    local plays = {
      { "/api/games/slot/spin", { bet_amount = 10 } },
      { "/api/games/rps/play", { choice = "rock", bet_amount = 10 } },
      { "/api/games/gacha/pull", { pull_count = 3 } },
    }
    for i, pl in ipairs(plays) do
      local res = host:request("POST", pl[1], pl[2], p.headers)
      assert.equal(200, res.status, res.body)
      assert.same({ i - 1, seed.server_seed_hash, seed.client_seed },
        { res.json.nonce, res.json.server_seed_hash, res.json.client_seed })
    end
    assert.equal(3, host:request("GET", "/api/fairness", nil, p.headers).json.nonce)
  end)

  it("starts a fresh pair at nonce 0 when a play finds none active (the nonce taken apart from the stake)", function()
    local p = player(host, 2000)
    local old = host:request("GET", "/api/fairness", nil, p.headers).json
    api.sql(host, "UPDATE fairness_seeds SET status = 'revealed', revealed_at = now() WHERE user_id = " .. p.user.id)
    local res = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers)
    assert.equal(200, res.status, res.body)
    assert.equal(0, res.json.nonce)
    assert.are_not.equal(old.server_seed_hash, res.json.server_seed_hash)
    assert.same({ server_seed_hash = res.json.server_seed_hash, client_seed = res.json.client_seed, nonce = 1 },
      host:request("GET", "/api/fairness", nil, p.headers).json)
    local row = api.sql(host, "SELECT count(*), min(p.nonce), min(s.next_nonce) FROM game_plays p "
      .. "JOIN fairness_seeds s ON s.id = p.fairness_seed_id WHERE p.user_id = " .. p.user.id
      .. " AND s.status = 'active'")[1]
    assert.same({ "1", "0", "1" }, { row[1], row[2], row[3] })
  end)

  it("sets the client seed without resetting the nonce, and validates it", function()
    local p = player(host, 1000)
    assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).status)
    local before = host:request("GET", "/api/fairness", nil, p.headers).json
    local res = host:request("PUT", "/api/fairness/client-seed", { client_seed = "my_Lucky-seed42" }, p.headers)
    assert.equal(200, res.status, res.body)
    assert.same({ server_seed_hash = before.server_seed_hash, client_seed = "my_Lucky-seed42", nonce = 1 }, res.json)
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).json
    assert.same({ "my_Lucky-seed42", 1 }, { spin.client_seed, spin.nonce })
    for _, body in ipairs { {}, { client_seed = "" }, { client_seed = string.rep("a", 65) },
                            { client_seed = "has space" }, { client_seed = "ünï" }, { client_seed = 42 } } do
      local bad = host:request("PUT", "/api/fairness/client-seed", body, p.headers)
      assert.equal(422, bad.status, bad.body)
      assert.same({ "body", "client_seed" }, bad.json.detail[1].loc)
    end
    assert.equal(200, host:request("PUT", "/api/fairness/client-seed", { client_seed = string.rep("z", 64) },
      p.headers).status)
    assert.equal(2, host:request("GET", "/api/fairness", nil, p.headers).json.nonce)
  end)

  it("rotates: reveals the seed behind the published hash and starts a fresh one at nonce 0", function()
    local p = player(host, 1000)
    for _ = 1, 3 do assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).status) end
    local before = host:request("GET", "/api/fairness", nil, p.headers).json
    local res = host:request("POST", "/api/fairness/rotate", nil, p.headers)
    assert.equal(200, res.status, res.body)
    local r = res.json
    assert.same({ "client_seed", "nonce", "previous_client_seed", "previous_nonce", "previous_server_seed",
      "previous_server_seed_hash", "server_seed_hash" }, keys(r))
    assert.truthy(r.previous_server_seed:match("^[0-9a-f]+$") and #r.previous_server_seed == 64)
    assert.equal(before.server_seed_hash, r.previous_server_seed_hash)
    assert.equal(r.previous_server_seed_hash, hex_sha256(r.previous_server_seed))
    assert.same({ before.client_seed, 3, before.client_seed, 0 },
      { r.previous_client_seed, r.previous_nonce, r.client_seed, r.nonce })
    assert.are_not.equal(before.server_seed_hash, r.server_seed_hash)
    assert.same({ server_seed_hash = r.server_seed_hash, client_seed = r.client_seed, nonce = 0 },
      host:request("GET", "/api/fairness", nil, p.headers).json)
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).json
    assert.same({ 0, r.server_seed_hash }, { spin.nonce, spin.server_seed_hash })
  end)

  it("keeps a seed revealed exactly when it has a revealed_at, without a row trigger on the nonce update", function()
    local p = player(host, 1000)
    assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).status)
    local where = " WHERE user_id = " .. p.id .. " AND status = 'active'"
    assert.same({ { "1" } }, api.sql(host, "SELECT count(*) FROM fairness_seeds" .. where))
    for _, bad in ipairs { "UPDATE fairness_seeds SET status = 'revealed'" .. where,
                           "UPDATE fairness_seeds SET revealed_at = now()" .. where } do
      local ok, err = pcall(api.sql, host, "\\set VERBOSITY verbose\n" .. bad)
      assert.is_false(ok, bad)
      assert.truthy(tostring(err):find("ERROR:  23514", 1, true), err)
    end
    assert.same({ { "active", "" } }, api.sql(host, "SELECT status, revealed_at FROM fairness_seeds" .. where))
    -- Migration 0011: only an AFTER trigger on (status, revealed_at); a
    -- BEFORE row trigger would make every nonce update lock its row first.
    assert.same({ { "0" } }, api.sql(host, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'fairness_seeds'::regclass "
      .. "AND NOT tgisinternal AND tgtype & 2 = 2"))
    assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).status)
    assert.equal(2, host:request("GET", "/api/fairness", nil, p.headers).json.nonce)
  end)

  it("lists revealed seeds newest first with their final nonce", function()
    local p = player(host, 1000)
    local empty = host:request("GET", "/api/fairness/revealed", nil, p.headers)
    assert.equal(200, empty.status)
    assert.equal('{"items":[]}', empty.body)
    local rotations = {}
    for n = 1, 3 do
      for _ = 1, n do host:request("POST", "/api/games/rps/play", { choice = "paper", bet_amount = 10 }, p.headers) end
      rotations[n] = host:request("POST", "/api/fairness/rotate", nil, p.headers).json
    end
    local res = host:request("GET", "/api/fairness/revealed", nil, p.headers)
    assert.equal(200, res.status, res.body)
    assert.equal(3, #res.json.items)
    for i, item in ipairs(res.json.items) do
      local r = rotations[4 - i]
      assert.same({ "created_at", "final_nonce", "revealed_at", "server_seed", "server_seed_hash" }, keys(item))
      assert.same({ r.previous_server_seed, r.previous_server_seed_hash, 4 - i },
        { item.server_seed, item.server_seed_hash, item.final_nonce })
      assert.truthy(item.revealed_at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
    end
    local one = host:request("GET", "/api/fairness/revealed?limit=1", nil, p.headers).json
    assert.same({ res.json.items[1] }, one.items)
    for _, bad in ipairs { "0", "101", "x" } do
      local r = host:request("GET", "/api/fairness/revealed?limit=" .. bad, nil, p.headers)
      assert.equal(422, r.status)
      assert.same({ "query", "limit" }, r.json.detail[1].loc)
    end
    -- the current seed is never listed
    local current = host:request("GET", "/api/fairness", nil, p.headers).json
    for _, item in ipairs(res.json.items) do assert.are_not.equal(current.server_seed_hash, item.server_seed_hash) end
  end)

  it("refuses to rotate during an active crash round", function()
    local p = player(host)
    local before = host:request("GET", "/api/fairness", nil, p.headers).json
    api.sql(host, "INSERT INTO crash_sessions (external_session_id, user_id, bet_amount, status) VALUES ('spec-"
      .. p.user.id .. "', " .. p.user.id .. ", 10, 'active')")
    local res = host:request("POST", "/api/fairness/rotate", nil, p.headers)
    assert.equal(409, res.status, res.body)
    assert.equal("Cannot rotate the server seed while a crash round is active", res.json.detail)
    assert.same(before, host:request("GET", "/api/fairness", nil, p.headers).json)
    api.sql(host, "UPDATE crash_sessions SET status = 'crashed' WHERE user_id = " .. p.user.id)
    assert.equal(200, host:request("POST", "/api/fairness/rotate", nil, p.headers).status)
  end)

  it("lets the player re-derive every play of a rotated seed from the revealed seed", function()
    local p = player(host, 20000)
    local initial = host:request("GET", "/api/fairness", nil, p.headers).json
    local requests = {}
    for i = 1, 30 do
      local kind = i % 3
      if kind == 0 then
        requests[i] = { "/api/games/slot/spin", { bet_amount = 10 + i } }
      elseif kind == 1 then
        requests[i] = { "/api/games/rps/play", { choice = ({ "rock", "paper", "scissors" })[i % 3 + 1], bet_amount = 10 } }
      else
        requests[i] = { "/api/games/gacha/pull", { pull_count = 1 + i % 10 } }
      end
    end
    for i, r in ipairs(requests) do
      if i == 16 then -- a new client seed halfway: the nonce carries on
        assert.equal(200, host:request("PUT", "/api/fairness/client-seed", { client_seed = "halfway" }, p.headers).status)
      end
      local res = host:request("POST", r[1], r[2], p.headers)
      assert.equal(200, res.status, res.body)
    end
    local rotation = host:request("POST", "/api/fairness/rotate", nil, p.headers).json
    assert.same({ 30, "halfway" }, { rotation.previous_nonce, rotation.previous_client_seed })
    local plays = plays_of(host, p.user.id)
    assert.equal(30, #plays)
    local seed = rotation.previous_server_seed
    for i, play in ipairs(plays) do
      assert.equal(i - 1, play.nonce)
      assert.equal(i > 15 and "halfway" or initial.client_seed, play.client_seed)
      assert.equal(hex_sha256(seed), play.server_seed_hash)
      assert.same(play.outcome, rederive(seed, play), play.game_type .. " nonce " .. play.nonce)
    end
    -- and a wrong seed does not reproduce them
    local mismatches = 0
    for _, play in ipairs(plays) do
      if not require("luassert.util").deepcompare(play.outcome, rederive(string.rep("0", 64), play), true) then
        mismatches = mismatches + 1
      end
    end
    assert.truthy(mismatches > 10)
  end)

  it("keeps nonces contiguous per seed when a rotation races concurrent plays, and every play verifies", function()
    local p = player(host, 20000)
    local conns = {}
    local function send(method, path, body)
      local c = assert(http.connect(host.port, 30))
      assert(c:send(http.format(method, path, body, api.auth(p.access_token))))
      conns[#conns + 1] = c
    end
    for _ = 1, 40 do send("POST", "/api/games/slot/spin", { bet_amount = 10 }) end
    send("POST", "/api/fairness/rotate")
    for _ = 1, 40 do send("POST", "/api/games/rps/play", { choice = "rock", bet_amount = 10 }) end
    local first_rotation
    for i, c in ipairs(conns) do
      local res = assert(c:read_response())
      c:close()
      assert.equal(200, res.status, res.body)
      if i == 41 then first_rotation = res.json end
    end
    local second = host:request("POST", "/api/fairness/rotate", nil, p.headers).json
    local seeds = { [first_rotation.previous_server_seed_hash] = first_rotation.previous_server_seed,
                    [second.previous_server_seed_hash] = second.previous_server_seed }
    local nonces = {}
    local plays = plays_of(host, p.user.id)
    assert.equal(80, #plays)
    for _, play in ipairs(plays) do
      local seed = assert(seeds[play.server_seed_hash], "a play of an unknown seed")
      nonces[play.server_seed_hash] = (nonces[play.server_seed_hash] or 0) + 1
      assert.same(play.outcome, rederive(seed, play))
    end
    assert.equal(first_rotation.previous_nonce, nonces[first_rotation.previous_server_seed_hash])
    assert.equal(80 - first_rotation.previous_nonce, second.previous_nonce)
    local gaps = api.sql(host, "SELECT fairness_seed_id, count(*), max(nonce) FROM game_plays WHERE user_id = "
      .. p.user.id .. " GROUP BY fairness_seed_id")
    for _, g in ipairs(gaps) do assert.equal(tonumber(g[2]) - 1, tonumber(g[3])) end
  end)
end)
