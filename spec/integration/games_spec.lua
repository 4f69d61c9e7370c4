-- games_spec.lua - the game routes of CONTRACT.md §9 (crash aside) and
-- GET /api/users/stats (§7) against a real host: the game list, public
-- parameters and odds, slot, RPS and gacha plays (response shapes, payouts,
-- the rows one play writes), bet validation (422, nothing written), short
-- balances (400, nothing written), Idempotency-Key, the inventory, and 200
-- concurrent spins of one user keeping balance, ledger and plays in step.
local support = require "spec.support.host"
local api = require "spec.support.api"
local http = require "spec.support.http"

local INSUFFICIENT = "토큰이 부족합니다"
local SYMBOLS = { ["🍒"] = true, ["🍋"] = true, ["🍊"] = true, ["🍇"] = true, ["💎"] = true, ["7️⃣"] = true }

local keys = api.keys

local function sorted(list)
  table.sort(list)
  return list
end

local player = api.player

-- Everything a play writes, counted from the database.
local function footprint(host, user_id)
  local row = api.sql(host, ([[
    SELECT (SELECT balance FROM wallet_balances WHERE user_id = %d AND currency = 'tokens'),
           (SELECT coalesce(sum(delta), 0) FROM wallet_ledger WHERE user_id = %d AND currency = 'tokens'),
           (SELECT count(*) FROM wallet_ledger WHERE user_id = %d),
           (SELECT count(*) FROM game_plays WHERE user_id = %d),
           (SELECT coalesce(max(next_nonce), 0) FROM fairness_seeds WHERE user_id = %d AND status = 'active'),
           (SELECT count(*) FROM user_actions WHERE user_id = %d),
           (SELECT count(*) FROM outbox_events WHERE event_type = 'game.play' AND (payload->>'user_id')::bigint = %d),
           (SELECT coalesce(sum(quantity), 0) FROM gacha_inventory WHERE user_id = %d)]]):gsub("%%d", tostring(user_id)))[1]
  local f = {}
  for i, name in ipairs { "balance", "ledger_sum", "ledger_rows", "plays", "nonce", "actions", "outbox", "items" } do
    f[name] = tonumber(row[i])
  end
  return f
end

local function assert_detail(res, status, detail)
  assert.equal(status, res.status, res.body)
  assert.same(detail, res.json.detail)
end

describe("games", function()
  local host
  setup(function()
    host = support.start { WORKERS = "2", DB_POOL_SIZE = "8", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
  end)
  teardown(function() host:stop() end)

  describe("GET /api/games/", function()
    it("lists the seeded games in order, with and without the slash", function()
      local p = player(host)
      local res = host:request("GET", "/api/games/", nil, p.headers)
      assert.equal(200, res.status, res.body)
      local names, types = {}, {}
      for i, g in ipairs(res.json) do names[i], types[i] = g.name, g.type end
      assert.same({ "슬롯머신", "가챠", "네온크래시", "가위바위보", "퀴즈게임" }, names)
      assert.same({ "slot", "gacha", "crash", "rps", "quiz" }, types)
      local slot = res.json[1]
      assert.same({ "bestScore", "canPlay", "cooldown_remaining", "daily_limit", "description", "id", "image_url",
        "is_active", "max_bet", "min_bet", "name", "playCount", "requires_vip_tier", "type" }, keys(slot))
      assert.equal("string", type(slot.id))
      assert.equal("클래식 3x3 슬롯머신 게임", slot.description)
      assert.equal("/assets/games/slot.png", slot.image_url)
      assert.same({ 10, 1000, true, 0, 0 }, { slot.min_bet, slot.max_bet, slot.canPlay, slot.playCount, slot.bestScore })
      assert.same({ 10, 500 }, { res.json[4].min_bet, res.json[4].max_bet })
      assert.same({ 10, 5000 }, { res.json[3].min_bet, res.json[3].max_bet })
      assert.equal(http.json.null, res.json[2].min_bet)
      assert.equal(http.json.null, res.json[5].max_bet)
      assert.is_false(res.json[5].canPlay)
      assert.is_true(res.json[2].canPlay)
      local bare = host:request("GET", "/api/games", nil, p.headers)
      assert.equal(200, bare.status)
      assert.same(res.json, bare.json)
    end)

    it("counts the caller's plays and best payout per game, not other users'", function()
      local p, other = player(host, 2000), player(host, 2000)
      local best = 0
      for _ = 1, 5 do
        local r = host:request("POST", "/api/games/slot/spin", { bet_amount = 100 }, p.headers)
        assert.equal(200, r.status, r.body)
        if r.json.win_amount > best then best = r.json.win_amount end
      end
      assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, other.headers).status)
      local list = host:request("GET", "/api/games/", nil, p.headers).json
      assert.same({ 5, best }, { list[1].playCount, list[1].bestScore })
      assert.same({ 0, 0 }, { list[4].playCount, list[4].bestScore })
    end)

    it("needs a token", function()
      assert.equal(403, host:request("GET", "/api/games/").status)
    end)
  end)

  describe("public parameters", function()
    it("serves slot, rps and crash parameters without a token, 404 for other types", function()
      local slot = host:request("GET", "/api/games/slot/config")
      assert.equal(200, slot.status, slot.body)
      assert.same({ "game_type", "hit_frequency", "max_bet", "min_bet", "pair_x100", "reels", "rtp", "symbols",
        "triple_x100" }, keys(slot.json))
      assert.equal("slot", slot.json.game_type)
      assert.equal(6, #slot.json.symbols)
      assert.equal(3, #slot.json.reels)
      assert.truthy(slot.json.rtp >= 0.945 and slot.json.rtp <= 0.955)
      assert.equal(30000, slot.json.triple_x100["7️⃣"])
      local rps = host:request("GET", "/api/games/rps/config")
      assert.equal(200, rps.status)
      assert.same({ game_type = "rps", win_x100 = 200, draw_x100 = 100, min_bet = 10, max_bet = 500, rtp = 1 },
        rps.json)
      local crash = host:request("GET", "/api/games/crash/config")
      assert.equal(200, crash.status)
      assert.same({ "game_type", "growth_rate", "house_edge", "max_bet", "max_multiplier", "min_bet", "rtp" },
        keys(crash.json))
      for _, t in ipairs { "quiz", "poker" } do
        assert_detail(host:request("GET", "/api/games/" .. t .. "/config"), 404, "Not Found")
      end
    end)

    it("discloses the gacha odds without a token", function()
      local res = host:request("GET", "/api/games/gacha/config")
      assert.equal(200, res.status, res.body)
      assert.same({ "cost_per_pull", "currency", "gacha_id", "max_pull_count", "rarities" }, keys(res.json))
      assert.same({ "default", "tokens", 300, 10 },
        { res.json.gacha_id, res.json.currency, res.json.cost_per_pull, res.json.max_pull_count })
      local got = {}
      for i, r in ipairs(res.json.rarities) do
        got[i] = { r.rarity, r.weight, r.probability, r.items[1].item_key, r.items[1].name, r.items[1].value }
      end
      assert.same({
        { "common", 60, 0.6, "common_item", "Common Item", 100 },
        { "rare", 30, 0.3, "rare_item", "Rare Item", 500 },
        { "epic", 9, 0.09, "epic_item", "Epic Item", 2000 },
        { "legendary", 1, 0.01, "legendary_item", "Legendary Item", 10000 },
      }, got)
    end)

    it("has no /api/gacha/pull", function()
      local p = player(host)
      assert_detail(host:request("POST", "/api/gacha/pull", {}, p.headers), 404, "Not Found")
    end)
  end)

  describe("POST /api/games/slot/spin", function()
    it("debits the bet, credits the payout and writes the play, ledger, action and outbox rows", function()
      local p = player(host, 1000)
      local res = host:request("POST", "/api/games/slot/spin", { bet_amount = 50, lines = 3 }, p.headers)
      assert.equal(200, res.status, res.body)
      local b = res.json
      assert.same({ "balance", "client_seed", "is_jackpot", "nonce", "play_id", "reels", "server_seed_hash",
        "win_amount", "win_type" }, keys(b))
      assert.equal(3, #b.reels)
      for _, s in ipairs(b.reels) do assert.truthy(SYMBOLS[s], s) end
      local r1, r2, r3 = b.reels[1], b.reels[2], b.reels[3]
      local expected = (r1 == r2 and r2 == r3) and "triple" or (r1 == r2 or r2 == r3) and "pair" or "none"
      assert.equal(expected, b.win_type)
      assert.equal(expected == "triple" and r1 == "7️⃣", b.is_jackpot)
      assert.equal(1000 - 50 + b.win_amount, b.balance)
      assert.equal(0, b.nonce)
      assert.truthy(b.server_seed_hash:match("^%x+$") and #b.server_seed_hash == 64)
      local row = api.sql(host, "SELECT user_id, game_type, bet_amount, payout, is_win, status, nonce, server_seed_hash, "
        .. "client_seed, outcome->>'win_type', settled_at IS NOT NULL FROM game_plays WHERE id = " .. b.play_id)[1]
      assert.same({ tostring(p.user.id), "slot", "50", tostring(b.win_amount), b.win_amount > 50 and "t" or "f",
        "settled", "0", b.server_seed_hash, b.client_seed, b.win_type, "t" }, row)
      local ledger = api.sql(host, "SELECT reason, delta, reference FROM wallet_ledger WHERE user_id = "
        .. p.user.id .. " AND reason LIKE 'game_%' ORDER BY id")
      local want = { { "game_bet", "-50", "play:" .. b.play_id } }
      if b.win_amount > 0 then want[2] = { "game_payout", tostring(b.win_amount), "play:" .. b.play_id } end
      assert.same(want, ledger)
      local action = api.sql(host, "SELECT action_type, action_data->>'play_id' FROM user_actions WHERE user_id = "
        .. p.user.id .. " AND action_type = 'SLOT_SPIN'")
      assert.same({ { "SLOT_SPIN", tostring(b.play_id) } }, action)
      local outbox = api.sql(host, "SELECT topic, payload->>'game_type', payload->>'nonce' FROM outbox_events "
        .. "WHERE event_type = 'game.play' AND payload->>'play_id' = '" .. b.play_id .. "'")
      assert.same({ { "game_events", "slot", "0" } }, outbox)
      local f = footprint(host, p.user.id)
      assert.equal(f.balance, f.ledger_sum)
      assert.equal(b.balance, f.balance)
    end)

    it("accepts betAmount, a digit string and a zero-fraction number", function()
      local p = player(host, 1000)
      for i, body in ipairs { { betAmount = 10 }, '{"bet_amount":"50"}', '{"bet_amount":20.0}' } do
        local res = host:request("POST", "/api/games/slot/spin", body, p.headers)
        assert.equal(200, res.status, res.body)
        assert.equal(i - 1, res.json.nonce)
      end
      local bets = api.sql(host, "SELECT bet_amount FROM game_plays WHERE user_id = " .. p.user.id .. " ORDER BY id")
      assert.same({ { "10" }, { "50" }, { "20" } }, bets)
    end)

    it("prefers bet_amount over betAmount", function()
      local p = player(host, 1000)
      local res = host:request("POST", "/api/games/slot/spin", { bet_amount = 30, betAmount = 5000 }, p.headers)
      assert.equal(200, res.status, res.body)
      assert.equal("30", api.sql(host, "SELECT bet_amount FROM game_plays WHERE id = " .. res.json.play_id)[1][1])
    end)

    it("refuses bad bets with 422 and writes nothing", function()
      local p = player(host, 1000)
      local before = footprint(host, p.user.id)
      local cases = {
        { '{"bet_amount":0}', "greater_than_equal" },
        { '{"bet_amount":-1}', "greater_than_equal" },
        { '{"bet_amount":9}', "greater_than_equal" },
        { '{"bet_amount":1.5}', "int_from_float" },
        { '{"bet_amount":"ten"}', "int_parsing" },
        { '{"bet_amount":true}', "int_type" },
        { '{"bet_amount":null}', "int_type" },
        { '{"bet_amount":1000000000000}', "less_than_equal" },
        { '{"bet_amount":1001}', "less_than_equal" },
        { '{}', "missing" },
        { '{"betAmount":0}', "greater_than_equal", "betAmount" },
      }
      for _, c in ipairs(cases) do
        local res = host:request("POST", "/api/games/slot/spin", c[1], p.headers)
        assert.equal(422, res.status, c[1] .. " -> " .. res.body)
        assert.equal(c[2], res.json.detail[1].type, c[1])
        assert.same({ "body", c[3] or "bet_amount" }, res.json.detail[1].loc)
      end
      local ge = host:request("POST", "/api/games/slot/spin", '{"bet_amount":0}', p.headers).json.detail[1]
      assert.equal("Input should be greater than or equal to 10", ge.msg)
      local le = host:request("POST", "/api/games/slot/spin", '{"bet_amount":1001}', p.headers).json.detail[1]
      assert.equal("Input should be less than or equal to 1000", le.msg)
      assert.same(before, footprint(host, p.user.id))
    end)

    it("validates before checking funds", function()
      local p = player(host) -- 200 tokens
      local res = host:request("POST", "/api/games/slot/spin", { bet_amount = 5000 }, p.headers)
      assert.equal(422, res.status)
    end)

    it("answers 400 on a short balance and writes nothing", function()
      local p = player(host) -- 200 tokens
      assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers).status)
      local before = footprint(host, p.user.id)
      assert.truthy(before.balance < 1000)
      assert_detail(host:request("POST", "/api/games/slot/spin", { bet_amount = 1000 }, p.headers), 400, INSUFFICIENT)
      assert.same(before, footprint(host, p.user.id))
    end)

    it("replays an Idempotency-Key without playing again", function()
      local p = player(host, 1000)
      local h = api.auth(p.access_token)
      h["Idempotency-Key"] = "spin-key-1"
      local first = host:request("POST", "/api/games/slot/spin", { bet_amount = 100 }, h)
      assert.equal(200, first.status, first.body)
      local before = footprint(host, p.user.id)
      local again = host:request("POST", "/api/games/slot/spin", { bet_amount = 100 }, h)
      assert.equal(200, again.status)
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.same(first.json, again.json)
      assert.same(before, footprint(host, p.user.id))
      assert.equal(1, before.plays)
      assert_detail(host:request("POST", "/api/games/slot/spin", { bet_amount = 200 }, h), 409,
        "Idempotency-Key was already used for a different request")
      assert.same({ { "spin-key-1" }, { "spin-key-1" } }, api.sql(host, "SELECT DISTINCT idempotency_key FROM "
        .. "wallet_ledger WHERE user_id = " .. p.user.id .. " AND reason = 'game_bet'"
        .. " UNION ALL SELECT key FROM idempotency_keys WHERE user_id = " .. p.user.id))
      h["Idempotency-Key"] = ""
      local empty = host:request("POST", "/api/games/slot/spin", { bet_amount = 100 }, h)
      assert.equal(422, empty.status)
      assert.same({ "header", "Idempotency-Key" }, empty.json.detail[1].loc)
    end)

    it("keeps balance, ledger and plays in step under 200 concurrent spins of one user", function()
      local p = player(host, 100000)
      local start = footprint(host, p.user.id)
      local res = http.concurrent(host.port, 200, "POST", "/api/games/slot/spin", { bet_amount = 100 },
        api.auth(p.access_token))
      local bets, wins, nonces = 0, 0, {}
      for _, r in ipairs(res) do
        assert.equal(200, r.status, r.body)
        bets, wins = bets + 100, wins + r.json.win_amount
        nonces[#nonces + 1] = r.json.nonce
      end
      sorted(nonces)
      for i = 1, 200 do assert.equal(i - 1, nonces[i]) end
      local f = footprint(host, p.user.id)
      assert.equal(start.balance - bets + wins, f.balance)
      assert.equal(f.balance, f.ledger_sum)
      assert.equal(200, f.plays)
      assert.equal(200, f.nonce)
      local sums = api.sql(host, "SELECT count(DISTINCT nonce), sum(bet_amount), sum(payout) FROM game_plays "
        .. "WHERE user_id = " .. p.user.id)[1]
      assert.same({ "200", tostring(bets), tostring(wins) }, sums)
      local ledger = api.sql(host, "SELECT count(*) FILTER (WHERE reason = 'game_bet'), "
        .. "coalesce(sum(-delta) FILTER (WHERE reason = 'game_bet'), 0), "
        .. "coalesce(sum(delta) FILTER (WHERE reason = 'game_payout'), 0) FROM wallet_ledger WHERE user_id = "
        .. p.user.id)[1]
      assert.same({ "200", tostring(bets), tostring(wins) }, ledger)
    end)
  end)

  describe("POST /api/games/rps/play", function()
    local BEATS = { rock = "scissors", paper = "rock", scissors = "paper" }

    it("plays against the fair stream and pays 2x a win, the stake back on a draw", function()
      local p = player(host, 2000)
      local balance = 2000
      for i = 1, 12 do
        local choice = ({ "rock", "paper", "scissors" })[i % 3 + 1]
        local res = host:request("POST", "/api/games/rps/play", { choice = choice, betAmount = 100 }, p.headers)
        assert.equal(200, res.status, res.body)
        local b = res.json
        assert.same({ "balance", "client_seed", "computer_choice", "message", "nonce", "play_id", "player_choice",
          "result", "server_seed_hash", "streak", "success", "win_amount" }, keys(b))
        assert.is_true(b.success)
        assert.equal(http.json.null, b.streak)
        assert.equal(choice, b.player_choice)
        local want = b.computer_choice == choice and "draw" or BEATS[choice] == b.computer_choice and "win" or "lose"
        assert.equal(want, b.result)
        assert.equal(({ win = 200, draw = 100, lose = 0 })[want], b.win_amount)
        assert.equal(({ win = "You win!", draw = "It's a draw.", lose = "You lose!" })[want], b.message)
        balance = balance - 100 + b.win_amount
        assert.equal(balance, b.balance)
        assert.equal(i - 1, b.nonce)
      end
      assert.equal(12, tonumber(api.sql(host, "SELECT count(*) FROM user_actions WHERE action_type = 'RPS_PLAY' "
        .. "AND user_id = " .. p.user.id)[1][1]))
    end)

    it("refuses an unknown choice and bad bets with 422, nothing written", function()
      local p = player(host, 1000)
      local before = footprint(host, p.user.id)
      local res = host:request("POST", "/api/games/rps/play", { choice = "Rock", bet_amount = 10 }, p.headers)
      assert.equal(422, res.status)
      assert.equal("literal_error", res.json.detail[1].type)
      assert.equal("Input should be 'rock', 'paper' or 'scissors'", res.json.detail[1].msg)
      for _, bet in ipairs { "0", "-1", "1.5", '"ten"', "true", "null", "1000000000000", "501" } do
        local r = host:request("POST", "/api/games/rps/play", '{"choice":"rock","bet_amount":' .. bet .. '}', p.headers)
        assert.equal(422, r.status, bet)
        assert.same({ "body", "bet_amount" }, r.json.detail[1].loc)
      end
      local both = host:request("POST", "/api/games/rps/play", {}, p.headers)
      assert.same({ { "body", "choice" }, { "body", "bet_amount" } },
        { both.json.detail[1].loc, both.json.detail[2].loc })
      assert.same(before, footprint(host, p.user.id))
    end)

    it("answers 400 on a short balance, nothing written", function()
      local p = player(host) -- 200
      local before = footprint(host, p.user.id)
      assert_detail(host:request("POST", "/api/games/rps/play", { choice = "rock", bet_amount = 201 }, p.headers), 400,
        INSUFFICIENT)
      assert.same(before, footprint(host, p.user.id))
    end)
  end)

  describe("POST /api/games/gacha/pull and the inventory", function()
    it("pulls once by default for 300 tokens and adds the item to the inventory", function()
      local p = player(host, 1000)
      local res = host:request("POST", "/api/games/gacha/pull", {}, p.headers)
      assert.equal(200, res.status, res.body)
      local b = res.json
      assert.same({ "balance", "client_seed", "currency_balance", "items", "message", "nonce", "play_id", "pull_count",
        "rare_item_count", "server_seed_hash", "special_animation", "success", "ultra_rare_item_count" }, keys(b))
      assert.same({ true, 1, 700, 1, "Gacha pull completed" },
        { b.success, b.pull_count, b.balance, #b.items, b.message })
      assert.same({ tokens = 700 }, b.currency_balance)
      assert.equal(http.json.null, b.special_animation)
      assert.same({ "item_key", "name", "rarity", "value" }, keys(b.items[1]))
      local inv = host:request("GET", "/api/games/gacha/inventory", nil, p.headers)
      assert.equal(200, inv.status, inv.body)
      assert.equal(1, #inv.json.items)
      local item = inv.json.items[1]
      assert.same({ b.items[1].item_key, b.items[1].rarity, b.items[1].value, 1 },
        { item.item_key, item.rarity, item.value, item.quantity })
      assert.truthy(item.first_acquired_at:match("Z$"))
      assert.same({ 1, b.items[1].value }, { inv.json.total_items, inv.json.total_value })
      local row = api.sql(host, "SELECT bet_amount, payout, is_win, nonce FROM game_plays WHERE id = " .. b.play_id)[1]
      assert.same({ "300", "0", "f", "0" }, row)
    end)

    it("pulls 10 for 3000 with one debit and one nonce, counts rarities and orders the inventory", function()
      local p = player(host, 6500)
      local total_rare, total_ultra = 0, 0
      local counts = {}
      for n = 1, 2 do
        local res = host:request("POST", "/api/games/gacha/pull",
          { gachaId = "default", pullCount = 10, usePremiumCurrency = true }, p.headers)
        assert.equal(200, res.status, res.body)
        local b = res.json
        assert.same({ 10, 10, n - 1, 6500 - 3000 * n }, { b.pull_count, #b.items, b.nonce, b.balance })
        local rare, ultra = 0, 0
        for _, it in ipairs(b.items) do
          if it.rarity == "rare" then rare = rare + 1 end
          if it.rarity == "epic" or it.rarity == "legendary" then ultra = ultra + 1 end
          counts[it.item_key] = (counts[it.item_key] or 0) + 1
        end
        assert.same({ rare, ultra }, { b.rare_item_count, b.ultra_rare_item_count })
        total_rare, total_ultra = total_rare + rare, total_ultra + ultra
      end
      local ledger = api.sql(host, "SELECT delta FROM wallet_ledger WHERE user_id = " .. p.user.id
        .. " AND reason LIKE 'game_%' ORDER BY id")
      assert.same({ { "-3000" }, { "-3000" } }, ledger)
      assert.equal("2", api.sql(host, "SELECT count(*) FROM user_actions WHERE action_type = 'GACHA_PULL' AND user_id = "
        .. p.user.id)[1][1])
      local inv = host:request("GET", "/api/games/gacha/inventory", nil, p.headers).json
      local order = { legendary = 1, epic = 2, rare = 3, common = 4 }
      local total, value = 0, 0
      for i, it in ipairs(inv.items) do
        assert.equal(counts[it.item_key], it.quantity)
        if i > 1 then assert.truthy(order[inv.items[i - 1].rarity] < order[it.rarity]) end
        total, value = total + it.quantity, value + it.quantity * it.value
      end
      assert.same({ 20, total, value }, { total, inv.total_items, inv.total_value })
    end)

    it("refuses pull counts outside 1..10 with 422 and short balances with 400, nothing written", function()
      local p = player(host) -- 200 tokens: not even one pull
      local before = footprint(host, p.user.id)
      for _, body in ipairs { '{"pull_count":0}', '{"pull_count":11}', '{"pullCount":-1}', '{"pull_count":"x"}',
                               '{"pull_count":1.5}' } do
        assert.equal(422, host:request("POST", "/api/games/gacha/pull", body, p.headers).status, body)
      end
      assert_detail(host:request("POST", "/api/games/gacha/pull", { pull_count = 1 }, p.headers), 400, INSUFFICIENT)
      assert.same(before, footprint(host, p.user.id))
      local inv = host:request("GET", "/api/games/gacha/inventory", nil, p.headers)
      assert.equal(200, inv.status)
      assert.equal("[]", inv.body:match('"items":(%[%])'))
      assert.same({ 0, 0 }, { inv.json.total_items, inv.json.total_value })
    end)
  end)

  describe("GET /api/users/stats", function()
    it("is all zeros before any play", function()
      local p = player(host)
      local res = host:request("GET", "/api/users/stats", nil, p.headers)
      assert.equal(200, res.status, res.body)
      assert.same({ total_games_played = 0, total_tokens_earned = 0, total_tokens_spent = 0, win_rate = 0,
        level = 1, experience = 0 }, res.json)
    end)

    it("sums plays, bets, payouts and wins from game_plays", function()
      local p = player(host, 5000)
      local spent, earned, wins, decided = 0, 0, 0, 0
      for i = 1, 6 do
        local path, body = "/api/games/slot/spin", { bet_amount = 100 }
        if i % 2 == 0 then path, body = "/api/games/rps/play", { choice = "paper", bet_amount = 50 } end
        local b = host:request("POST", path, body, p.headers).json
        local bet = body.bet_amount
        spent, earned, decided = spent + bet, earned + b.win_amount, decided + 1
        if b.win_amount > bet then wins = wins + 1 end
      end
      assert.equal(200, host:request("POST", "/api/games/gacha/pull", { pull_count = 2 }, p.headers).status)
      spent = spent + 600
      local s = host:request("GET", "/api/users/stats", nil, p.headers).json
      assert.same({ 7, spent, earned, 1, 0 },
        { s.total_games_played, s.total_tokens_spent, s.total_tokens_earned, s.level, s.experience })
      assert.equal(math.floor(wins / decided * 10000 + 0.5) / 10000, s.win_rate)
    end)

    it("derives the level from the exp balance", function()
      local p = player(host)
      api.sql(host, "UPDATE wallet_balances SET balance = 2500 WHERE currency = 'exp' AND user_id = " .. p.user.id
        .. "; INSERT INTO wallet_ledger (user_id, currency, delta, balance_after, reason) VALUES ("
        .. p.user.id .. ", 'exp', 2500, 2500, 'admin_grant')")
      local s = host:request("GET", "/api/users/stats", nil, p.headers).json
      assert.same({ 3, 2500 }, { s.level, s.experience })
    end)
  end)
end)

-- One worker, so the fixture's in-memory record of committed progress events
-- (spec/fixtures/scripts/routes/games_progress.lua) sees every request.
describe("game progress events", function()
  local host
  setup(function()
    host = support.start { WORKERS = "1", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
  end)
  teardown(function() host:stop() end)

  it("emits a play event per play and a gacha_pull event per pull request, in the play's transaction", function()
    local p = player(host, 1000)
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 100 }, p.headers).json
    local rps = host:request("POST", "/api/games/rps/play", { choice = "rock", bet_amount = 50 }, p.headers).json
    local pull = host:request("POST", "/api/games/gacha/pull", { pull_count = 2 }, p.headers).json
    assert.equal(400, host:request("POST", "/api/games/gacha/pull", { pull_count = 10 }, p.headers).status)
    local events = host:request("GET", "/test/progress/" .. p.user.id).json
    assert.same({
      { kind = "play", game_type = "slot", bet = 100, payout = spin.win_amount, win = spin.win_amount > 100,
        play_id = spin.play_id },
      { kind = "play", game_type = "rps", bet = 50, payout = rps.win_amount, win = rps.result == "win",
        play_id = rps.play_id },
      { kind = "play", game_type = "gacha", bet = 600, payout = 0, win = false, play_id = pull.play_id },
      { kind = "gacha_pull", count = 2, play_id = pull.play_id },
    }, events)
  end)
end)

-- Bet limits come from the loaded game config: a reload with new limits
-- changes validation, the list and the public parameters at once.
describe("bet limits after a reload", function()
  local host, scripts
  setup(function()
    scripts = os.tmpname()
    os.remove(scripts)
    assert(os.execute("cp -r scripts " .. scripts))
    host = support.start { WORKERS = "2", SCRIPTS_DIR = scripts, ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
  end)
  teardown(function()
    host:stop()
    os.execute("rm -rf " .. scripts)
  end)

  it("validates bets against the new generation's min_bet and max_bet", function()
    local p = player(host, 5000)
    assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 15 }, p.headers).status)
    local file = scripts .. "/games/slot.lua"
    local src = support.read_file(file)
    local n
    src, n = src:gsub("min_bet = 10,\n  max_bet = 1000,", "min_bet = 20,\n  max_bet = 2000,")
    assert.equal(1, n)
    local f = assert(io.open(file, "w"))
    f:write(src)
    f:close()
    local previous = host:request("GET", "/health").json.scripts.last_reload.at
    host:signal(support.signal.SIGHUP)
    local status = support.wait_for(function()
      local s = host:request("GET", "/health").json.scripts
      if s.last_reload.at ~= previous then return s end
    end, 15)
    assert.is_true(status.last_reload.ok, status.last_reload.error)
    local low = host:request("POST", "/api/games/slot/spin", { bet_amount = 15 }, p.headers)
    assert.equal(422, low.status)
    assert.equal("Input should be greater than or equal to 20", low.json.detail[1].msg)
    assert.equal(200, host:request("POST", "/api/games/slot/spin", { bet_amount = 1500 }, p.headers).status)
    assert.same({ 20, 2000 }, { host:request("GET", "/api/games/", nil, p.headers).json[1].min_bet,
      host:request("GET", "/api/games/slot/config").json.max_bet })
  end)
end)
