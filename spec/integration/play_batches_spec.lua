-- play_batches_spec.lua - plays of different players sharing one transaction
-- (domain/plays.lua, "Batches") against a real host whose pool is smaller
-- than the plays in flight, so batches form: each play still happens
-- exactly once with its ledger rows, nonce, play row, action and outbox
-- event (and a gacha pull its inventory rows); a player with no active
-- fairness pair starts one; a short balance refuses only its own play; a play that fails a
-- batch (here a payout past the balance limit) fails alone, and the others
-- of its batch still happen once. The host's one pooled connection is held
-- (a fixture route's pg_sleep) while the spins arrive, so they queue and
-- batch however fast or slow the host is (an ASan build is slow).
local support = require "spec.support.host"
local api = require "spec.support.api"
local http = require "spec.support.http"
local socket = require "socket"

-- The balance limit less one, as SQL text (a Lua number would print rounded).
local MAX_LESS_ONE = "9007199254740990"

-- What a player's plays wrote, from the database.
local function footprint(host, user_id)
  local row = api.sql(host, ([[
    SELECT (SELECT balance FROM wallet_balances WHERE user_id = %d AND currency = 'tokens'),
           (SELECT coalesce(sum(delta), 0) FROM wallet_ledger WHERE user_id = %d AND currency = 'tokens'
              AND reason IN ('game_bet', 'game_payout')),
           (SELECT count(*) FROM wallet_ledger WHERE user_id = %d AND reason = 'game_bet'),
           (SELECT count(*) FROM wallet_ledger WHERE user_id = %d AND reason = 'game_payout'),
           (SELECT count(*) FROM game_plays WHERE user_id = %d),
           (SELECT count(DISTINCT nonce) FROM game_plays WHERE user_id = %d),
           (SELECT next_nonce FROM fairness_seeds WHERE user_id = %d AND status = 'active'),
           (SELECT count(*) FROM user_actions WHERE user_id = %d AND action_type = 'SLOT_SPIN'),
           (SELECT count(*) FROM outbox_events WHERE event_type = 'game.play'
              AND (payload->>'user_id')::bigint = %d)]]):gsub("%%d", tostring(user_id)))[1]
  local f = {}
  for i, name in ipairs { "balance", "play_delta", "bets", "payouts", "plays", "nonces", "next_nonce", "actions",
    "outbox" } do
    f[name] = tonumber(row[i])
  end
  return f
end

-- Transactions that wrote more than one player's play row (batches).
local function shared_transactions(host, ids)
  return tonumber(api.sql(host, "SELECT count(*) FROM (SELECT xmin::text FROM game_plays WHERE user_id IN ("
    .. table.concat(ids, ",") .. ") GROUP BY 1 HAVING count(DISTINCT user_id) > 1) t")[1][1])
end

describe("play batches", function()
  local host
  setup(function()
    host = support.start { WORKERS = "1", DB_POOL_SIZE = "1", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
  end)
  teardown(function() host:stop() end)

  -- n new players holding tokens each, and their ids.
  local function new_players(n, tokens)
    local players, ids = {}, {}
    for i = 1, n do
      players[i] = api.player(host, tokens)
      ids[i] = players[i].id
    end
    return players, ids
  end

  -- POSTs body to path once for each of players (one may appear more than
  -- once), all at once, while the pool's connection is held: the answers.
  local function concurrent_plays(players, path, body)
    local holder = assert(http.connect(host.port, 30))
    assert(holder:send(http.format("GET", "/test/db/sleep?seconds=0.25", nil, {})))
    socket.sleep(0.05)
    local res = http.concurrent(host.port, #players, "POST", path, body, function(i) return players[i].headers end)
    assert.equal(200, assert(holder:read_response()).status)
    holder:close()
    return res
  end

  -- n spins of 100 by each of players (in turn), all at once, sent while
  -- the pool's connection is held: {[user id] = {ok, bets, wins, refused}}.
  local function spin_all(players, n)
    local order = {}
    for _ = 1, n do
      for _, p in ipairs(players) do order[#order + 1] = p end
    end
    local res = concurrent_plays(order, "/api/games/slot/spin", { bet_amount = 100 })
    local by = {}
    for i, r in ipairs(res) do
      local p = order[i]
      by[p.id] = by[p.id] or { ok = 0, bets = 0, wins = 0, refused = {} }
      local s = by[p.id]
      if r.status == 200 then
        s.ok, s.bets, s.wins = s.ok + 1, s.bets + 100, s.wins + r.json.win_amount
      else
        s.refused[#s.refused + 1] = r.status .. " " .. tostring(r.json and r.json.detail)
      end
    end
    return by
  end

  it("plays each spin of many players once, in shared transactions, a short balance refused alone", function()
    local rich, ids = new_players(24, 100000)
    local short = new_players(6, 250) -- two spins of 100, whatever the first pays: never a third
    local all = {}
    for _, p in ipairs(rich) do all[#all + 1] = p end
    for _, p in ipairs(short) do
      all[#all + 1] = p
      ids[#ids + 1] = p.id
    end
    local before = {}
    for _, id in ipairs(ids) do before[id] = footprint(host, id) end
    local by = spin_all(all, 4)

    for _, p in ipairs(rich) do
      local s = by[p.id]
      assert.same({}, s.refused)
      assert.equal(4, s.ok)
    end
    for _, p in ipairs(short) do
      local s = by[p.id]
      assert.is_true(s.ok >= 2, "a player of 250 tokens affords two spins of 100")
      for _, why in ipairs(s.refused) do assert.equal("400 토큰이 부족합니다", why) end
    end
    for _, id in ipairs(ids) do
      local b, f, s = before[id], footprint(host, id), by[id]
      assert.equal(b.balance - s.bets + s.wins, f.balance)
      assert.equal(f.balance - b.balance, f.play_delta - b.play_delta)
      assert.equal(s.ok, f.bets - b.bets)
      assert.equal(s.ok, f.plays - b.plays)
      assert.equal(f.plays, f.nonces)
      assert.equal(f.plays, f.next_nonce)
      assert.equal(s.ok, f.actions - b.actions)
      assert.equal(s.ok, f.outbox - b.outbox)
    end
    assert.is_true(shared_transactions(host, ids) > 0, "no two players' plays shared a transaction")
    local payouts = api.sql(host, "SELECT count(*) FROM game_plays g WHERE g.payout > 0 AND g.user_id IN ("
      .. table.concat(ids, ",") .. ") AND NOT EXISTS (SELECT 1 FROM wallet_ledger l WHERE l.user_id = g.user_id "
      .. "AND l.reason = 'game_payout' AND l.reference = 'play:' || g.id AND l.delta = g.payout)")
    assert.equal("0", payouts[1][1])
  end)

  it("pulls the gacha of many players in shared transactions, each pull's items in its player's inventory", function()
    local players, ids = new_players(12, 10000)
    local res = concurrent_plays(players, "/api/games/gacha/pull", { pull_count = 2 })
    for i, r in ipairs(res) do
      assert.equal(200, r.status, r.body)
      assert.equal(10000 - 600, r.json.balance)
      assert.equal(2, #r.json.items)
      local inv = host:request("GET", "/api/games/gacha/inventory", nil, players[i].headers)
      assert.equal(2, inv.json.total_items)
      local f = footprint(host, players[i].id)
      assert.equal(f.balance, r.json.balance)
      assert.equal(1, f.bets)
      assert.equal(1, f.plays)
      assert.equal(1, f.next_nonce)
    end
    assert.is_true(shared_transactions(host, ids) > 0, "no two players' pulls shared a transaction")
  end)

  it("starts a fresh pair at nonce 0 for a batched player with none active, the others carrying on", function()
    local players, ids = new_players(8, 10000)
    local old = {}
    for i, p in ipairs(players) do
      old[i] = host:request("GET", "/api/fairness", nil, p.headers).json
      if i % 3 == 0 then
        api.sql(host, "UPDATE fairness_seeds SET status = 'revealed', revealed_at = now() WHERE user_id = " .. p.id)
      end
    end
    local res = concurrent_plays(players, "/api/games/slot/spin", { bet_amount = 100 })
    for i, r in ipairs(res) do
      assert.equal(200, r.status, r.body)
      if i % 3 == 0 then
        assert.equal(0, r.json.nonce)
        assert.are_not.equal(old[i].server_seed_hash, r.json.server_seed_hash)
      else
        assert.equal(old[i].nonce, r.json.nonce)
        assert.equal(old[i].server_seed_hash, r.json.server_seed_hash)
      end
      local f = footprint(host, players[i].id)
      assert.equal(1, f.plays)
      assert.equal(i % 3 == 0 and 1 or old[i].nonce + 1, f.next_nonce)
    end
    assert.is_true(shared_transactions(host, ids) > 0, "no two players' plays shared a transaction")
  end)

  it("runs alone a play whose payout fails its batch, and the rest of the batch once", function()
    local others, ids = new_players(15, 100000)
    -- every other round the edge player holds a balance one short of the
    -- limit: a spin of 100 that pays more than 101 passes it. A refused
    -- play gives its nonce back, so the same winning draw comes again until
    -- a round with an ordinary balance (100 000) takes it.
    local edge = api.player(host, 1000)
    local before = {}
    for _, id in ipairs(ids) do before[id] = footprint(host, id) end
    local all = { edge }
    for _, p in ipairs(others) do all[#all + 1] = p end
    -- rounds enough that the edge player wins more than 101 in a round at
    -- the limit (a paying spin pays 2x or more, about one in four: 30
    -- rounds at the limit without one, about 1 in 10 000)
    local ROUNDS = 60
    local limited, total = 0, {}
    for round = 1, ROUNDS do
      api.sql(host, "UPDATE wallet_balances SET balance = " .. (round % 2 == 1 and MAX_LESS_ONE or "100000")
        .. " WHERE user_id = " .. edge.id .. " AND currency = 'tokens'")
      local edge_before = footprint(host, edge.id)
      local by = spin_all(all, 1)
      local e = by[edge.id]
      for _, why in ipairs(e.refused) do
        assert.equal(1, round % 2)
        assert.equal("400 Balance limit exceeded", why)
        limited = limited + 1
      end
      local f = footprint(host, edge.id)
      assert.equal(edge_before.balance - e.bets + e.wins, f.balance)
      assert.equal(e.ok, f.plays - edge_before.plays)
      assert.equal(e.ok, f.outbox - edge_before.outbox)
      for _, p in ipairs(others) do
        local s, t = by[p.id], total[p.id] or { ok = 0, bets = 0, wins = 0 }
        assert.same({}, s.refused)
        total[p.id] = { ok = t.ok + s.ok, bets = t.bets + s.bets, wins = t.wins + s.wins }
      end
    end
    assert.is_true(limited > 0, "no spin of the edge player paid more than 101 in " .. ROUNDS .. " rounds")
    for _, id in ipairs(ids) do
      local b, g, s = before[id], footprint(host, id), total[id]
      assert.equal(ROUNDS, s.ok)
      assert.equal(b.balance - s.bets + s.wins, g.balance)
      assert.equal(g.balance - b.balance, g.play_delta - b.play_delta)
      assert.equal(ROUNDS, g.plays - b.plays)
      assert.equal(g.plays, g.next_nonce)
      assert.equal(ROUNDS, g.actions - b.actions)
      assert.equal(ROUNDS, g.outbox - b.outbox)
    end
    ids[#ids + 1] = edge.id
    assert.is_true(shared_transactions(host, ids) > 0, "no two players' plays shared a transaction")
  end)
end)
