-- Unit specs for the game rules in scripts/games/*.lua (CONTRACT.md §8-§10):
-- exact RTP inside the bands of config/rtp_bands.lua, seeded simulations
-- within 4 standard errors of the exact value, chi-square goodness of fit of
-- outcome frequencies, fixed provably-fair vectors, and the self-checks that
-- refuse a bad config at reload.
local fair = require "lib.fair"
local rtp = require "lib.rtp"
local prng = require "spec.support.prng"
local sha = require "spec.support.sha256"
local bands = require "config.rtp_bands"
local slot = require "games.slot"
local rps = require "games.rps"
local gacha = require "games.gacha"
local crash = require "games.crash"

-- Fixed vectors: seeds shared by every game below. Expected outcomes were
-- computed once with an independent implementation (Python's hmac/hashlib
-- and integer arithmetic, block_0 of nonce 0 cross-checked with
-- `openssl dgst -sha256 -hmac`), not with the code under test.
local S = "9b1c5e7f3a2d4c6b8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"
local C = "casino-club-spec"
local function stream(nonce) return fair.stream(S, C, nonce, sha.hmac_sha256) end

-- Chi-square critical values at alpha = 1e-6 by degrees of freedom: a fit
-- failing this is not bad luck.
local CHI2_CRITICAL = { 23.93, 27.63, 30.66, 33.38, 35.89, 38.26, 40.52, 42.70 }

-- Asserts counts[k] (k = 1..m) fit probabilities probs[k] over n draws.
local function assert_fits(counts, probs, n, what)
  local stat = 0
  for k = 1, #probs do
    local expected = n * probs[k]
    stat = stat + ((counts[k] or 0) - expected) ^ 2 / expected
  end
  local critical = CHI2_CRITICAL[#probs - 1]
  assert(stat < critical, string.format("%s: chi-square %.2f >= %.2f (df %d)", what, stat, critical, #probs - 1))
end

-- One fast seeded source for every play of a simulation.
local function seeded(seed)
  local source = fair.source(prng.words(seed))
  return function() return source end
end

-- Asserts a simulation's mean return is within 4 standard errors of the exact RTP.
local function assert_within_4se(sim, exact, what)
  local se = exact.stddev / math.sqrt(sim.plays)
  assert(math.abs(sim.mean - exact.rtp) <= 4 * se, string.format(
    "%s: simulated %.6f vs exact %.6f, more than 4 SE (%.6f)", what, sim.mean, exact.rtp, se))
end

-- A source returning the given words in order.
local function scripted(words)
  local i = 0
  return fair.source(function()
    i = i + 1
    return assert(words[i], "scripted source exhausted")
  end)
end

local function deep_copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = deep_copy(v) end
  return c
end

local function assert_refused(game, config, pattern, bands_)
  local ok, reason = game.self_check(config, bands_)
  assert.is_nil(ok)
  assert.is_string(reason)
  assert(reason:find(pattern, 1, true), "reason '" .. reason .. "' lacks '" .. pattern .. "'")
end

describe("config/rtp_bands.lua", function()
  it("holds the bands of CONTRACT.md §9", function()
    assert.same({ slot = { 0.945, 0.955 }, rps = { 0.95, 1.00 }, crash = { 0.95, 0.995 } }, bands)
  end)
end)

describe("slot", function()
  local config = slot.config
  local SYMBOLS = { "🍒", "🍋", "🍊", "🍇", "💎", "7️⃣" }

  it("keeps the six symbols and passes its self-check", function()
    assert.same(SYMBOLS, config.symbols)
    assert.same({ true }, { slot.self_check() })
    assert.equal(10, config.min_bet)
    assert.equal(1000, config.max_bet)
  end)

  it("has an exact RTP inside the configured band, near 95 %", function()
    local exact = slot.exact(config)
    assert.is_true(exact.rtp >= bands.slot[1] and exact.rtp <= bands.slot[2])
    assert.near(0.950748, exact.rtp, 1e-9)
    assert.near(0.26322, exact.hit_frequency, 1e-9)
    assert.is_true(exact.stddev > 3 and exact.stddev < 3.5)
  end)

  it("pays triples, adjacent pairs only, and floors the payout", function()
    -- Reel weights 25 23 21 17 10 4: a word w < 100 draws the symbol whose
    -- cumulative range holds w (0 🍒, 25 🍋, 48 🍊, 69 🍇, 86 💎, 96 7️⃣).
    local function spin(words, bet) return slot.play(config, scripted(words), { bet = bet }) end
    local o = spin({ 96, 97, 99 }, 10)
    assert.same({ "7️⃣", "7️⃣", "7️⃣" }, o.reels)
    assert.same({ "triple", 30000, true, 3000 }, { o.win_type, o.multiplier_x100, o.is_jackpot, o.payout })
    o = spin({ 86, 86, 86 }, 10)
    assert.same({ "triple", 3000, false, 300 }, { o.win_type, o.multiplier_x100, o.is_jackpot, o.payout })
    o = spin({ 50, 48, 0 }, 15) -- 🍊🍊🍒: 15 × 2.5 = 37.5 → 37
    assert.same({ "pair", 250, 37 }, { o.win_type, o.multiplier_x100, o.payout })
    o = spin({ 0, 30, 40 }, 10) -- 🍒🍋🍋: reel2 = reel3
    assert.same({ "pair", 200, 20 }, { o.win_type, o.multiplier_x100, o.payout })
    o = spin({ 0, 1, 50 }, 10) -- 🍒🍒🍊: the rule matches even though it pays 0
    assert.same({ "pair", 0, 0 }, { o.win_type, o.multiplier_x100, o.payout })
    o = spin({ 96, 0, 99 }, 10) -- 7️⃣🍒7️⃣: reel1 = reel3 alone does not pay
    assert.same({ "none", 0, false, 0 }, { o.win_type, o.multiplier_x100, o.is_jackpot, o.payout })
  end)

  it("gives the same outcome for a given (server seed, client seed, nonce)", function()
    local o = slot.play(config, stream(0), { bet = 100 })
    assert.same({ "🍇", "🍋", "🍇" }, o.reels)
    assert.equal("none", o.win_type)
    o = slot.play(config, stream(7), { bet = 150 })
    assert.same({ "🍋", "🍋", "🍒" }, o.reels)
    assert.same({ "pair", 200, 300 }, { o.win_type, o.multiplier_x100, o.payout })
    o = slot.play(config, stream(16), { bet = 100 })
    assert.same({ "🍊", "🍊", "🍊" }, o.reels)
    assert.same({ "triple", 1000, 1000, false }, { o.win_type, o.multiplier_x100, o.payout, o.is_jackpot })
    assert.same(slot.play(config, stream(7), { bet = 150 }), slot.play(config, stream(7), { bet = 150 }))
  end)

  it("simulates 10^7 seeded spins within 4 SE of the exact RTP, with fitting frequencies", function()
    local n = 10000000
    local index = {}
    for i, s in ipairs(SYMBOLS) do index[s] = i end
    local reel_counts = { {}, {}, {} }
    local types = { none = 0, pair = 0, triple = 0 }
    local jackpots = 0
    local sim = rtp.simulate(slot, config, n, seeded(20240601), function(o)
      for r = 1, 3 do
        local k = index[o.reels[r]]
        reel_counts[r][k] = (reel_counts[r][k] or 0) + 1
      end
      types[o.win_type] = types[o.win_type] + 1
      if o.is_jackpot then jackpots = jackpots + 1 end
    end)
    local exact = slot.exact(config)
    assert_within_4se(sim, exact, "slot")
    assert.near(exact.hit_frequency, sim.hit_frequency, 4 * math.sqrt(0.26322 * 0.73678 / n))
    local p = {}
    for k = 1, 6 do p[k] = config.reels[1][k] / 100 end
    for r = 1, 3 do assert_fits(reel_counts[r], p, n, "reel " .. r) end
    -- Win types by closed form (identical reels): triple Σp³, adjacent pair Σ2p²(1−p).
    local triple, pair = 0, 0
    for k = 1, 6 do
      triple = triple + p[k] ^ 3
      pair = pair + 2 * p[k] ^ 2 * (1 - p[k])
    end
    assert_fits({ types.none, types.pair, types.triple }, { 1 - pair - triple, pair, triple }, n, "win types")
    local expected_jackpots = n * p[6] ^ 3
    assert.is_true(math.abs(jackpots - expected_jackpots) < 5 * math.sqrt(expected_jackpots))
  end)

  describe("self-check refuses", function()
    it("a paytable with an RTP of 120 %", function()
      local hot = deep_copy(config)
      hot.pair_x100["🍒"] = 250
      hot.triple_x100["💎"] = 4500
      assert.near(1.200123, slot.exact(hot).rtp, 1e-6)
      assert_refused(slot, hot, "exact RTP 1.200123 is outside the band [0.945, 0.955]")
    end)

    it("a paytable below the band", function()
      local cold = deep_copy(config)
      cold.triple_x100["7️⃣"] = 10000
      assert_refused(slot, cold, "is outside the band")
    end)

    it("zero, negative, fractional or missing weights", function()
      for _, bad in ipairs { 0, -3, 2.5, "7" } do
        local c = deep_copy(config)
        c.reels[2][4] = bad
        assert_refused(slot, c, "reel 2 weight 4 must be a positive integer")
      end
      local c = deep_copy(config)
      c.reels[3][6] = nil
      assert_refused(slot, c, "reel 3 must list 6 weights")
      c = deep_copy(config)
      c.reels[3] = nil
      assert_refused(slot, c, "reels must list 3 reels")
    end)

    it("negative, fractional or missing multipliers and unknown symbols", function()
      local c = deep_copy(config)
      c.triple_x100["🍋"] = -1
      assert_refused(slot, c, "triple_x100[🍋] must be a non-negative integer")
      c = deep_copy(config)
      c.pair_x100["💎"] = 400.5
      assert_refused(slot, c, "pair_x100[💎] must be a non-negative integer")
      c = deep_copy(config)
      c.pair_x100["🍇"] = nil
      assert_refused(slot, c, "pair_x100[🍇] must be a non-negative integer")
      c = deep_copy(config)
      c.pair_x100["🍉"] = 100
      assert_refused(slot, c, "pair_x100 names an unknown symbol")
    end)

    it("inconsistent bet limits", function()
      local c = deep_copy(config)
      c.min_bet, c.max_bet = 500, 100
      assert_refused(slot, c, "min_bet (500) must not exceed max_bet (100)")
      c = deep_copy(config)
      c.min_bet = 0
      assert_refused(slot, c, "min_bet must be a positive integer")
    end)

    it("a config outside the band it is given", function()
      assert_refused(slot, config, "outside the band [0.96, 0.97]", { slot = { 0.96, 0.97 } })
      assert_refused(slot, config, "no RTP band configured for slot", {})
    end)
  end)

  it("publishes its parameters (GET /api/games/slot/config)", function()
    local p = slot.public(config)
    assert.same({
      game_type = "slot", symbols = SYMBOLS, reels = config.reels,
      triple_x100 = config.triple_x100, pair_x100 = config.pair_x100,
      min_bet = 10, max_bet = 1000, rtp = 0.950748, hit_frequency = 0.26322,
    }, p)
    assert.are_not.equal(config.reels[1], p.reels[1]) -- copies: a caller cannot edit the live table
  end)
end)

describe("rps", function()
  local config = rps.config

  it("has an exact RTP of 1.00 inside the band, and passes its self-check", function()
    local exact = rps.exact(config)
    assert.is_true(exact.rtp >= bands.rps[1] and exact.rtp <= bands.rps[2])
    assert.near(1, exact.rtp, 1e-12)
    assert.near(2 / 3, exact.hit_frequency, 1e-12)
    assert.near(math.sqrt(2 / 3), exact.stddev, 1e-12)
    assert.same({ true }, { rps.self_check() })
  end)

  it("maps int(3) to rock, paper, scissors and scores every pair", function()
    local expected = {
      rock = { "draw", "lose", "win" }, paper = { "win", "draw", "lose" }, scissors = { "lose", "win", "draw" },
    }
    local pays = { win = 200, draw = 100, lose = 0 }
    for choice, results in pairs(expected) do
      for word = 0, 2 do
        local o = rps.play(config, scripted { word }, { bet = 35, choice = choice })
        assert.equal(rps.CHOICES[word + 1], o.computer_choice)
        assert.equal(results[word + 1], o.result, choice .. " vs " .. o.computer_choice)
        assert.equal(pays[o.result], o.multiplier_x100)
        assert.equal(math.floor(35 * pays[o.result] / 100), o.payout)
        assert.equal(choice, o.player_choice)
      end
    end
    assert.has_error(function() rps.play(config, scripted { 0 }, { bet = 10, choice = "lizard" }) end)
  end)

  it("gives the same outcome for a given (server seed, client seed, nonce)", function()
    local expected = { [6] = "scissors", [7] = "rock", [8] = "rock", [9] = "rock" }
    for nonce, computer in pairs(expected) do
      assert.equal(computer, rps.play(config, stream(nonce), { bet = 10, choice = "paper" }).computer_choice)
    end
  end)

  it("simulates 10^6 seeded plays within 4 SE, computer choices uniform", function()
    local n = 1000000
    local counts = { 0, 0, 0 }
    local slot_of = { rock = 1, paper = 2, scissors = 3 }
    local sim = rtp.simulate(rps, config, n, seeded(7), function(o)
      local k = slot_of[o.computer_choice]
      counts[k] = counts[k] + 1
    end)
    assert_within_4se(sim, rps.exact(config), "rps")
    assert_fits(counts, { 1 / 3, 1 / 3, 1 / 3 }, n, "computer choice")
  end)

  it("self-check refuses RTP outside [0.95, 1.00], bad multipliers and limits", function()
    local c = deep_copy(config)
    c.win_x100 = 210
    assert_refused(rps, c, "exact RTP 1.033333 is outside the band")
    c.win_x100 = 150
    assert_refused(rps, c, "exact RTP 0.833333 is outside the band")
    c = deep_copy(config)
    c.draw_x100 = 99.5
    assert_refused(rps, c, "draw_x100 must be a non-negative integer")
    c = deep_copy(config)
    c.max_bet = 5
    assert_refused(rps, c, "min_bet (10) must not exceed max_bet (5)")
  end)

  it("publishes its parameters", function()
    assert.same({ game_type = "rps", win_x100 = 200, draw_x100 = 100, min_bet = 10, max_bet = 500, rtp = 1 },
      rps.public(config))
  end)
end)

describe("gacha", function()
  local config = gacha.config

  it("reports the display value per token spent and passes its self-check", function()
    local exact = gacha.exact(config)
    assert.near(490 / 300, exact.rtp, 1e-12)
    assert.near(0.4, exact.hit_frequency, 1e-12)
    assert.same({ true }, { gacha.self_check() })
  end)

  it("gives the same pulls for a given (server seed, client seed, nonce)", function()
    -- 10 pulls read 10 words: the last two come from block_1.
    local o = gacha.play(config, stream(10), { pull_count = 10 })
    local rarities = {}
    for i, item in ipairs(o.items) do rarities[i] = item.rarity end
    assert.same({ "common", "common", "common", "common", "rare", "epic", "rare", "common", "common", "rare" },
      rarities)
    assert.same({ item_key = "epic_item", name = "Epic Item", rarity = "epic", value = 2000 }, o.items[6])
    assert.equal(3, o.rare_item_count)
    assert.equal(1, o.ultra_rare_item_count)
    assert.equal(6 * 100 + 3 * 500 + 2000, o.total_value)
  end)

  it("draws an item with int(k) only when the rarity has k > 1 items", function()
    local c = deep_copy(config)
    c.rarities[2].items[2] = { item_key = "rare_two", name = "Rare Two", value = 600 }
    -- Word 60 → rare (60 ≤ r < 90); next word 1 → int(2) = 1 → the second item.
    -- Word 95 → epic, single item: no further word is read.
    local o = gacha.play(c, scripted { 60, 1, 95 }, { pull_count = 2 })
    assert.equal("rare_two", o.items[1].item_key)
    assert.equal("epic_item", o.items[2].item_key)
    assert.equal(1, o.rare_item_count)
    assert.equal(1, o.ultra_rare_item_count)
  end)

  it("simulates 10^6 seeded pulls within 4 SE, rarities fitting their weights", function()
    local n = 1000000
    local index = { common = 1, rare = 2, epic = 3, legendary = 4 }
    local counts = { 0, 0, 0, 0 }
    local sim = rtp.simulate(gacha, config, n, seeded(99), function(item)
      local k = index[item.rarity]
      counts[k] = counts[k] + 1
    end)
    local exact = gacha.exact(config)
    assert_within_4se(sim, exact, "gacha")
    assert.near(exact.hit_frequency, sim.hit_frequency, 4 * math.sqrt(0.4 * 0.6 / n))
    assert_fits(counts, { 0.6, 0.3, 0.09, 0.01 }, n, "rarities")
  end)

  it("self-check refuses bad weights, items, cost and limits", function()
    for _, bad in ipairs { 0, -1, 0.5 } do
      local c = deep_copy(config)
      c.rarities[3].weight = bad
      assert_refused(gacha, c, "epic weight must be a positive integer")
    end
    local c = deep_copy(config)
    c.rarities[1].items = {}
    assert_refused(gacha, c, "common has no items")
    c = deep_copy(config)
    c.rarities[2].items[1].item_key = "common_item"
    assert_refused(gacha, c, "unique item_key")
    c = deep_copy(config)
    c.rarities[4].items[1].value = -5
    assert_refused(gacha, c, "legendary_item value must be a non-negative integer")
    c = deep_copy(config)
    c.cost_per_pull = 0
    assert_refused(gacha, c, "cost_per_pull must be a positive integer")
    c = deep_copy(config)
    c.rarities[2].rarity = "common"
    assert_refused(gacha, c, "rarity 2 must have a distinct non-empty name")
  end)

  it("publishes the odds disclosure (GET /api/games/gacha/config)", function()
    local p = gacha.public(config)
    assert.same({ "default", "tokens", 300, 10 }, { p.gacha_id, p.currency, p.cost_per_pull, p.max_pull_count })
    local got = {}
    for i, r in ipairs(p.rarities) do got[i] = { r.rarity, r.weight, r.probability, r.items[1].item_key, r.items[1].value } end
    assert.same({
      { "common", 60, 0.6, "common_item", 100 }, { "rare", 30, 0.3, "rare_item", 500 },
      { "epic", 9, 0.09, "epic_item", 2000 }, { "legendary", 1, 0.01, "legendary_item", 10000 },
    }, got)
    local c = deep_copy(config)
    c.rarities[1].weight = 59 -- Σ = 99: 59/99 = 0.59595…
    assert.equal(0.596, gacha.public(c).rarities[1].probability)
  end)
end)

describe("crash", function()
  local config = crash.config
  local TWO53 = 2 ^ 53

  it("returns 1 − house_edge = 0.99 at every target, inside the band, and passes its self-check", function()
    for _, a in ipairs { 101, 150, 200, 1000, 100000 } do
      local exact = crash.exact(config, a)
      assert.near(0.99, exact.rtp, 1e-12)
      assert.near(0.99 * 100 / a, exact.hit_frequency, 1e-12)
    end
    local rtp_ = crash.exact(config).rtp
    assert.is_true(rtp_ >= bands.crash[1] and rtp_ <= bands.crash[2])
    assert.same({ true }, { crash.self_check() })
  end)

  it("computes the crash point exactly at the edges", function()
    assert.equal(100, crash.crash_point_x100(config, 0)) -- X = 0: 0.99 → 1.00
    assert.equal(198, crash.crash_point_x100(config, 2 ^ 52)) -- X = 0.5: exactly 1.98
    assert.equal(100000, crash.crash_point_x100(config, TWO53 - 1)) -- capped at max_multiplier
    -- X = 1 − 99/101 is where 1.01 starts: F = ⌈2^53·2/101⌉.
    local F101 = math.ceil(TWO53 * 2 / 101)
    assert.equal(100, crash.crash_point_x100(config, F101 - 1))
    assert.equal(101, crash.crash_point_x100(config, F101))
    -- 99·2^53 / (2^53 − F) lies just below 103 here: plain double division
    -- rounds it up to 103, the exact value is 102.
    local F = 349794145815184
    assert.equal(103, math.floor(99 / (1 - F / TWO53)))
    assert.equal(102, crash.crash_point_x100(config, F))
  end)

  it("grows the live multiplier as ⌊100·e^(r·t)⌋ and finds the crash time", function()
    assert.equal(100, crash.multiplier_x100(config, 0))
    assert.equal(0, crash.crash_time_ms(config, 100))
    for _, target in ipairs { 101, 198, 200, 1788, 100000 } do
      local t = crash.crash_time_ms(config, target)
      assert.is_true(crash.multiplier_x100(config, t) >= target)
      assert.is_true(crash.multiplier_x100(config, t - 1) < target)
    end
    assert.equal(11553, crash.crash_time_ms(config, 200))
    assert.is_true(crash.crash_time_ms(config, 100000) <= 115200) -- at most ≈ 115 s
  end)

  it("gives the same crash point for a given (server seed, client seed, nonce)", function()
    local expected = { [12] = 169, [13] = 102, [14] = 112, [15] = 1788, [16] = 107 }
    for nonce, x100 in pairs(expected) do
      assert.equal(x100, crash.play(config, stream(nonce)).crash_x100, "nonce " .. nonce)
    end
    local o = crash.play(config, stream(12), { bet = 33, auto_cashout_x100 = 150 })
    assert.same({ 169, true, 150, 49 }, { o.crash_x100, o.cashed, o.multiplier_x100, o.payout })
    o = crash.play(config, stream(12), { bet = 33, auto_cashout_x100 = 170 })
    assert.same({ false, 0, 0 }, { o.cashed, o.multiplier_x100, o.payout })
    assert.equal(crash.crash_time_ms(config, 169), o.crash_time_ms)
  end)

  it("simulates 10^6 seeded rounds within 4 SE, crash points fitting P(crash ≥ A) = 0.99/A", function()
    local n = 1000000
    -- Bins: 1.00 | [1.01, 1.50) | [1.50, 2.00) | [2.00, 5.00) | [5.00, 10.00) | ≥ 10.00
    local edges = { 101, 150, 200, 500, 1000 }
    local counts = { 0, 0, 0, 0, 0, 0 }
    local sim = rtp.simulate(crash, config, n, seeded(4242), function(x100)
      local k = 1
      while k <= #edges and x100 >= edges[k] do k = k + 1 end
      counts[k] = counts[k] + 1
    end)
    assert_within_4se(sim, crash.exact(config), "crash")
    local function at_least(a) return 99 / a end -- P(crash_x100 ≥ a), a ≥ 101
    local probs = { 1 - at_least(101) }
    for k = 1, #edges do
      probs[k + 1] = at_least(edges[k]) - (edges[k + 1] and at_least(edges[k + 1]) or 0)
    end
    assert_fits(counts, probs, n, "crash points")
    assert.near(0.0198, counts[1] / n, 4 * math.sqrt(0.0198 * 0.98 / n)) -- ≈ 1.98 % crash at 1.00
  end)

  it("self-check refuses an edge outside the band and malformed parameters", function()
    local c = deep_copy(config)
    c.house_edge = 0.10
    assert_refused(crash, c, "exact RTP 0.900000 is outside the band")
    c.house_edge = 0.001
    assert_refused(crash, c, "exact RTP 0.999000 is outside the band")
    c.house_edge = 0.0100001
    assert_refused(crash, c, "house_edge must be in [0, 1) in whole millionths")
    c = deep_copy(config)
    c.growth_rate = 0
    assert_refused(crash, c, "growth_rate must be a positive number")
    c = deep_copy(config)
    c.max_multiplier = 1
    assert_refused(crash, c, "max_multiplier must be at least 1.01")
    c = deep_copy(config)
    c.min_bet, c.max_bet = 10, 9
    assert_refused(crash, c, "min_bet (10) must not exceed max_bet (9)")
  end)

  it("publishes its parameters", function()
    assert.same({
      game_type = "crash", house_edge = 0.01, max_multiplier = 1000, growth_rate = 0.00006,
      min_bet = 10, max_bet = 5000, rtp = 0.99,
    }, crash.public(config))
  end)
end)

describe("crash cash-out rule", function()
  local config = crash.config
  -- A round placed at t = 1000 ms crashing at 2.00× (reached at t = 1000 + 11553 ms).
  local function round(auto) return { placed_at = 1000, growth_rate = config.growth_rate, crash_x100 = 200,
                                      auto_cashout_x100 = auto } end
  local crash_at = 1000 + crash.crash_time_ms(config, 200)

  it("runs, then cashes at an auto target below the crash, else crashes", function()
    assert.same({ nil, 100 }, { crash.evaluate(round(), 1000) })
    assert.same({ nil, 199 }, { crash.evaluate(round(), crash_at - 1) })
    assert.same({ "crashed", 200 }, { crash.evaluate(round(), crash_at) })
    local at150 = 1000 + crash.crash_time_ms(config, 150)
    assert.same({ nil, 149 }, { crash.evaluate(round(150), at150 - 1) })
    assert.same({ "cashed", 150 }, { crash.evaluate(round(150), at150) })
    assert.same({ "cashed", 150 }, { crash.evaluate(round(150), crash_at + 5000) })
    -- A target above the crash point never cashes.
    assert.same({ "crashed", 200 }, { crash.evaluate(round(250), crash_at) })
  end)

  it("lets the house settle a cash-out at once, a crash only after the grace", function()
    assert.same({ "cashed", 150 }, { crash.decided(round(150), crash_at, 2000) })
    assert.is_nil(crash.decided(round(), crash_at + 2000, 2000))
    assert.same({ "crashed", 200 }, { crash.decided(round(), crash_at + 2001, 2000) })
    assert.is_nil(crash.decided(round(), crash_at - 1, 0))
  end)
end)

describe("the game interface", function()
  local check = require "lib.game_check"
  local GAMES = { slot = slot, rps = rps, gacha = gacha, crash = crash }

  it("is complete in every shipped game", function()
    for name, game in pairs(GAMES) do assert.is_nil(check.interface(game, name)) end
    assert.equal("game x lacks distribution (function), note (string)",
      check.interface({ config = {}, input = print, play = print, exact = print, sample = print,
                        self_check = print, public = print }, "x"))
  end)

  it("gives exact distributions that sum to 1 and agree with exact()", function()
    for name, game in pairs { slot = slot, rps = rps } do
      local dist, total, mean = game.distribution(game.config), 0, 0
      for i, e in ipairs(dist) do
        if i > 1 then assert.is_true(e.payout_multiplier > dist[i - 1].payout_multiplier, name) end
        total, mean = total + e.probability, mean + e.probability * e.payout_multiplier
      end
      assert.is_true(math.abs(total - 1) < 1e-12, name)
      assert.is_true(math.abs(mean - game.exact(game.config).rtp) < 1e-12, name)
    end
    local buckets, total = crash.distribution(crash.config), 0
    for _, e in ipairs(buckets) do total = total + e.probability end
    assert.is_true(math.abs(total - 1) < 1e-12)
    assert.same({ 1, 0.019802 }, { buckets[1].payout_multiplier, math.floor(buckets[1].probability * 1e6 + 0.5) / 1e6 })
    local odds = gacha.distribution(gacha.config)
    assert.same({ "common", 0.6 }, { odds[1].rarity, odds[1].probability })
    assert.same({ "legendary", 0.01 }, { odds[4].rarity, odds[4].probability })
  end)

  it("builds play inputs and refuses what the rules cannot play", function()
    assert.same({ bet = 10 }, slot.input(slot.config, { bet_amount = 10 }))
    assert.is_nil(slot.input(slot.config, { bet_amount = 1001 }))
    assert.is_nil(slot.input(slot.config, { bet_amount = 10.5 }))
    assert.same({ bet = 20, choice = "rock" }, rps.input(rps.config, { bet_amount = 20, choice = "rock" }))
    assert.is_nil(rps.input(rps.config, { bet_amount = 20, choice = "lizard" }))
    assert.same({ pull_count = 10, bet = 3000 }, gacha.input(gacha.config, { pull_count = 10 }))
    assert.is_nil(gacha.input(gacha.config, { pull_count = 11 }))
    assert.same({ bet = 10, auto_cashout_x100 = 250 }, crash.input(crash.config, { bet_amount = 10, auto_cashout = 2.5 }))
    assert.same({ bet = 10 }, crash.input(crash.config, { bet_amount = 10 }))
    assert.is_nil(crash.input(crash.config, { bet_amount = 10, auto_cashout = 1.0 }))
  end)
end)
