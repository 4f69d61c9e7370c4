-- games.lua - the games area of CONTRACT.md §7 and §9 between the routes and
-- the pure rules of scripts/games: the game list, public parameters, slot
-- spins, RPS plays, gacha pulls with their inventory, and the player's
-- statistics from game_plays.
--
-- Each play is one plays.run transaction (stake, nonce, outcome, payout, play
-- row, action, outbox, progress); this module only says which rules draw the
-- outcome and shapes the answer. The rules come from the registry of the
-- loaded generation (host.games), so a reload with a new paytable applies to
-- the next play, and a game added to games/ is listed and playable.
local host = require "host"
local errors = require "lib.errors"
local json = require "json"
local registry = require "host.games"
local store = require "lib.store"
local wallet = require "domain.wallet"
local plays = require "domain.plays"

local M = {}

-- Games whose play routes are their own (crash: Redis rounds) or whose
-- parameters have their own route (gacha): not served by the generic ones.
local OWN_PLAY = { crash = true }
local OWN_CONFIG = { gacha = true }

local RPS_MESSAGES = { win = "You win!", lose = "You lose!", draw = "It's a draw." }

local function or_null(v)
  if v == nil then return json.null end
  return v
end

--- list(user_id) -> [Game]: active games by sort_order, with the caller's
--- play count and largest single payout per game.
function M.list(user_id)
  local rows = store.query("SELECT g.id, g.name, g.description, g.game_type, g.is_active, "
    .. "coalesce(p.plays, 0) AS plays, coalesce(p.best, 0) AS best FROM games g "
    .. "LEFT JOIN (SELECT game_type, count(*) AS plays, max(payout) AS best FROM game_plays "
    .. "WHERE user_id = $1 GROUP BY game_type) p ON p.game_type = g.game_type "
    .. "WHERE g.is_active ORDER BY g.sort_order, g.id", user_id)
  local list = json.array()
  for i, g in ipairs(rows) do
    local rules = registry.get(g.game_type)
    local limits = rules and rules.config or {}
    list[i] = {
      id = tostring(g.id), name = g.name, description = or_null(g.description), type = g.game_type,
      image_url = "/assets/games/" .. g.game_type .. ".png", is_active = g.is_active, daily_limit = json.null,
      playCount = g.plays, bestScore = g.best, canPlay = rules ~= nil, cooldown_remaining = json.null,
      requires_vip_tier = json.null, min_bet = or_null(limits.min_bet), max_bet = or_null(limits.max_bet),
    }
  end
  return list
end

--- public_config(game_type) -> the public parameters of a registry game
--- from the loaded generation (slot, rps, crash; gacha has its own route);
--- GAME_NOT_FOUND (404) for any other type.
function M.public_config(game_type)
  local rules = registry.get(game_type)
  if not rules or OWN_CONFIG[game_type] then errors.raise("GAME_NOT_FOUND") end
  return rules.public(rules.config)
end

--- rtp_report() -> {generation, games} (§13.6): per registry game the exact
--- figures of the loaded paytable from its own exact() and distribution()
--- (the same numbers as `cchost rtp`), with its band from
--- config/rtp_bands.lua. A game without a band whose distribution lists
--- rarities (gacha: item values are never credited) reports rtp and band
--- null and its display value per token instead.
function M.rtp_report()
  local bands = require "config.rtp_bands"
  local games = json.array()
  for _, game_type in ipairs(registry.list()) do
    local game = registry.get(game_type)
    local exact, dist, band = game.exact(game.config), game.distribution(game.config), bands[game_type]
    local entry = {
      game_type = game_type, hit_frequency = exact.hit_frequency, std_dev_per_play = exact.stddev,
      distribution = dist, rtp = exact.rtp, band = band and { min = band[1], max = band[2] } or json.null,
    }
    if not band and dist[1] and dist[1].rarity then
      entry.rtp, entry.display_value_per_token = json.null, exact.rtp
    end
    games[#games + 1] = entry
  end
  return { generation = host.generation, games = games }
end

--- gacha_config() -> the gacha odds disclosure of the loaded generation.
function M.gacha_config()
  local gacha = registry.get("gacha")
  return gacha.public(gacha.config)
end

--- config(game_type) -> the loaded config of a registry game (routes read
--- bet limits from it), raising for an unknown type.
function M.config(game_type)
  return assert(registry.get(game_type), "no game " .. tostring(game_type)).config
end

--- play(game_type, user_id, fields, opts) -> play (domain/plays.lua): one
--- play of a registry game whose rules settle at once. fields are the
--- validated request fields the game's input builder reads; the stake is
--- input.bet. opts: idempotency_key, action_type (default
--- "<GAME_TYPE>_PLAY"), record, events (as plays.run). Raises 400 when the
--- input builder refuses the fields.
function M.play(game_type, user_id, fields, opts)
  local game = registry.get(game_type)
  assert(game and not OWN_PLAY[game_type], "no generic play for " .. tostring(game_type))
  local input, reason = game.input(game.config, fields)
  if not input then errors.raise("GAME_INPUT_REFUSED", reason) end
  opts = opts or {}
  return plays.run(user_id, {
    game_type = game_type, bet = input.bet, idempotency_key = opts.idempotency_key,
    action_type = opts.action_type or game_type:upper() .. "_PLAY", record = opts.record, events = opts.events,
    draw = function(rng)
      local outcome = game.play(game.config, rng, input)
      return outcome, outcome.payout or 0
    end,
  })
end

--- slot_spin(user_id, bet, idempotency_key) -> the slot result of §9.
function M.slot_spin(user_id, bet, idempotency_key)
  local play = M.play("slot", user_id, { bet_amount = bet },
    { idempotency_key = idempotency_key, action_type = "SLOT_SPIN" })
  local o = play.outcome
  return plays.with_fairness({
    reels = o.reels, win_amount = play.payout, win_type = o.win_type, is_jackpot = o.is_jackpot,
    balance = play.balance,
  }, play)
end

--- rps_play(user_id, choice, bet, idempotency_key) -> the RPS result of §9.
function M.rps_play(user_id, choice, bet, idempotency_key)
  local play = M.play("rps", user_id, { bet_amount = bet, choice = choice },
    { idempotency_key = idempotency_key, action_type = "RPS_PLAY" })
  local o = play.outcome
  return plays.with_fairness({
    success = true, player_choice = o.player_choice, computer_choice = o.computer_choice, result = o.result,
    win_amount = play.payout, message = RPS_MESSAGES[o.result], balance = play.balance, streak = json.null,
  }, play)
end

-- Adds the pulled items to the user's inventory (one upsert per item key).
local function add_to_inventory(user_id, items)
  local counts, order = {}, {}
  for _, item in ipairs(items) do
    if not counts[item.item_key] then order[#order + 1] = item end
    counts[item.item_key] = (counts[item.item_key] or 0) + 1
  end
  for _, item in ipairs(order) do
    store.defer("INSERT INTO gacha_inventory (user_id, item_key, name, rarity, value, quantity) "
      .. "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, item_key) DO UPDATE SET "
      .. "name = EXCLUDED.name, rarity = EXCLUDED.rarity, value = EXCLUDED.value, "
      .. "quantity = gacha_inventory.quantity + EXCLUDED.quantity, last_acquired_at = now()",
      user_id, item.item_key, item.name, item.rarity, item.value, counts[item.item_key])
  end
end

--- gacha_pull(user_id, pull_count, idempotency_key) -> the pull result of
--- §9: one debit of cost_per_pull × pull_count, one nonce, every item added
--- to the inventory (item values are never credited).
function M.gacha_pull(user_id, pull_count, idempotency_key)
  local play = M.play("gacha", user_id, { pull_count = pull_count }, {
    idempotency_key = idempotency_key, action_type = "GACHA_PULL",
    record = function(p) add_to_inventory(user_id, p.outcome.items) end,
    events = { { kind = "gacha_pull", count = pull_count } },
  })
  local o = play.outcome
  local items = json.array()
  for i, item in ipairs(o.items) do
    items[i] = { item_key = item.item_key, name = item.name, rarity = item.rarity, value = item.value }
  end
  return plays.with_fairness({
    success = true, items = items, rare_item_count = o.rare_item_count,
    ultra_rare_item_count = o.ultra_rare_item_count, pull_count = pull_count, balance = play.balance,
    special_animation = json.null, message = "Gacha pull completed", currency_balance = { tokens = play.balance },
  }, play)
end

--- inventory(user_id) -> {items, total_items (Σ quantity), total_value
--- (Σ value × quantity)}: rarest first (the reverse of the order the gacha
--- config lists its rarities; rarities no longer listed last), then name.
function M.inventory(user_id)
  local rank = {}
  for i, r in ipairs(M.config("gacha").rarities) do rank[r.rarity] = i end
  local items = store.query("SELECT item_key, name, rarity, value, quantity, first_acquired_at, last_acquired_at "
    .. "FROM gacha_inventory WHERE user_id = $1", user_id)
  table.sort(items, function(a, b)
    local ra, rb = rank[a.rarity] or 0, rank[b.rarity] or 0
    if ra ~= rb then return ra > rb end
    if a.name ~= b.name then return a.name < b.name end
    return a.item_key < b.item_key
  end)
  local total_items, total_value = 0, 0
  for _, item in ipairs(items) do
    total_items = total_items + item.quantity
    total_value = total_value + item.value * item.quantity
  end
  return { items = items, total_items = total_items, total_value = total_value }
end

--- stats(user_id) -> {total_games_played, total_tokens_earned,
--- total_tokens_spent, win_rate, level, experience} (§7): from game_plays;
--- win_rate = plays paying more than the bet / settled slot, rps and crash
--- plays, 4 decimals.
function M.stats(user_id)
  local s = store.one("SELECT count(*) AS played, coalesce(sum(bet_amount), 0)::bigint AS spent, "
    .. "coalesce(sum(payout), 0)::bigint AS earned, "
    .. "count(*) FILTER (WHERE status = 'settled' AND game_type IN ('slot', 'rps', 'crash')) AS decided, "
    .. "count(*) FILTER (WHERE status = 'settled' AND game_type IN ('slot', 'rps', 'crash') "
    .. "AND payout > bet_amount) AS wins FROM game_plays WHERE user_id = $1", user_id)
  local exp = wallet.balances(user_id).exp
  local win_rate = 0
  if s.decided > 0 then win_rate = math.floor(s.wins / s.decided * 10000 + 0.5) / 10000 end
  return {
    total_games_played = s.played, total_tokens_earned = s.earned, total_tokens_spent = s.spent,
    win_rate = win_rate, level = 1 + math.floor(exp / host.config.get("LEVEL_EXP_STEP")), experience = exp,
  }
end

return M
