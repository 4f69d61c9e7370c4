--[[ gacha.lua - the gacha banner's odds and items (CONTRACT.md §9).

Each pull draws a rarity with weighted() over the rarities in the order
listed below (the order GET /api/games/gacha/config discloses), then, only if
that rarity has k > 1 items, the item with int(k). All pulls of one request
come from one nonce's stream, in order. Cost is cost_per_pull tokens per pull.

Item values are display values and never credited, so the gacha has no RTP
band. Its report shows the display value per token spent instead,
E[value] / cost_per_pull: with the shipped table (60·100 + 30·500 + 9·2000 +
1·10000) / 100 / 300 = 490 / 300 ≈ 1.6333; "hit frequency" is the chance
that a pull's item is worth at least its cost (0.40), stddev ≈ 3.653.
Every reload runs self_check (positive integer weights, cost and pull limit,
non-empty item lists with unique keys and non-negative integer values).
]]

local check = require "lib.game_check"
local rtp = require "lib.rtp"

local M = {}

M.config = {
  gacha_id = "default",
  currency = "tokens",
  cost_per_pull = 300,
  max_pull_count = 10,
  rarities = {
    { rarity = "common", weight = 60, items = { { item_key = "common_item", name = "Common Item", value = 100 } } },
    { rarity = "rare", weight = 30, items = { { item_key = "rare_item", name = "Rare Item", value = 500 } } },
    { rarity = "epic", weight = 9, items = { { item_key = "epic_item", name = "Epic Item", value = 2000 } } },
    { rarity = "legendary", weight = 1,
      items = { { item_key = "legendary_item", name = "Legendary Item", value = 10000 } } },
  },
}

-- Rarities counted as "ultra rare" in a pull's response.
local ULTRA_RARE = { epic = true, legendary = true }

-- The rarity weights in listed order.
local function weights(config)
  local w = {}
  for i, r in ipairs(config.rarities) do w[i] = r.weight end
  return w
end

-- One pull: {item_key, name, rarity, value}.
local function pull(config, rng, rarity_weights)
  local rarity = config.rarities[rng:weighted(rarity_weights)]
  local items = rarity.items
  local item = #items > 1 and items[rng:int(#items) + 1] or items[1]
  return { item_key = item.item_key, name = item.name, rarity = rarity.rarity, value = item.value }
end

--- play(config, rng, {pull_count}) -> {items = {{item_key, name, rarity, value}…},
--- rare_item_count (rarity "rare"), ultra_rare_item_count (epic + legendary),
--- total_value}. pull_count is 1..max_pull_count (routes validate it).
function M.play(config, rng, input)
  local rarity_weights = weights(config)
  local items, rare, ultra, total = {}, 0, 0, 0
  for i = 1, input.pull_count do
    local item = pull(config, rng, rarity_weights)
    items[i] = item
    if item.rarity == "rare" then rare = rare + 1 end
    if ULTRA_RARE[item.rarity] then ultra = ultra + 1 end
    total = total + item.value
  end
  return { items = items, rare_item_count = rare, ultra_rare_item_count = ultra, total_value = total }
end

--- sample(config, rng) -> display value per token of one pull, the pulled item.
function M.sample(config, rng)
  local item = pull(config, rng, weights(config))
  return item.value / config.cost_per_pull, item
end

--- A pull "hits" when its item is worth at least its cost (lib/rtp.lua).
M.HIT_THRESHOLD = 1

--- exact(config) -> {rtp = display value per token spent, hit_frequency =
--- P(item value ≥ cost_per_pull), stddev of value/cost per pull}.
function M.exact(config)
  local total = 0
  for _, r in ipairs(config.rarities) do total = total + r.weight end
  local dist = {}
  for _, r in ipairs(config.rarities) do
    for _, item in ipairs(r.items) do
      dist[#dist + 1] = { r.weight / total / #r.items, item.value / config.cost_per_pull }
    end
  end
  return rtp.moments(dist, M.HIT_THRESHOLD)
end

--- distribution(config) -> {{rarity, probability}…} in listed order: the
--- odds of one pull (its payout is always 0: item values are not credited).
function M.distribution(config)
  local total = 0
  for _, r in ipairs(config.rarities) do total = total + r.weight end
  local out = {}
  for i, r in ipairs(config.rarities) do out[i] = { rarity = r.rarity, probability = r.weight / total } end
  return out
end

--- input(config, {pull_count}) -> {pull_count, bet = cost of the pulls} | nil, reason.
function M.input(config, fields)
  local k = fields.pull_count
  if not check.is_int(k) or k < 1 or k > config.max_pull_count then
    return nil, "pull_count must be an integer from 1 to " .. config.max_pull_count
  end
  return { pull_count = k, bet = config.cost_per_pull * k }
end

M.note = "display value per token spent (never credited; no band)"

--- self_check([config]) -> true | nil, reason (gacha has no RTP band).
function M.self_check(config)
  config = config or M.config
  local err = check.positive_int(config.cost_per_pull, "cost_per_pull")
    or check.positive_int(config.max_pull_count, "max_pull_count")
  if not err and (type(config.gacha_id) ~= "string" or type(config.currency) ~= "string") then
    err = "gacha_id and currency must be strings"
  end
  local rarities = config.rarities
  if not err and (type(rarities) ~= "table" or #rarities == 0) then err = "rarities must be a non-empty list" end
  if err then return nil, "gacha: " .. err end
  local rarity_names, keys = {}, {}
  for i, r in ipairs(rarities) do
    if type(r.rarity) ~= "string" or r.rarity == "" or rarity_names[r.rarity] then
      return nil, "gacha: rarity " .. i .. " must have a distinct non-empty name"
    end
    rarity_names[r.rarity] = true
    err = check.positive_int(r.weight, r.rarity .. " weight")
    if err then return nil, "gacha: " .. err end
    if type(r.items) ~= "table" or #r.items == 0 then return nil, "gacha: " .. r.rarity .. " has no items" end
    for _, item in ipairs(r.items) do
      if type(item.item_key) ~= "string" or item.item_key == "" or keys[item.item_key] or type(item.name) ~= "string" then
        return nil, "gacha: every " .. r.rarity .. " item needs a unique item_key and a name"
      end
      keys[item.item_key] = true
      err = check.non_negative_int(item.value, item.item_key .. " value")
      if err then return nil, "gacha: " .. err end
    end
  end
  return true
end

--- public(config) -> the odds disclosure of GET /api/games/gacha/config
--- (probability = weight / Σweights, 4 decimals).
function M.public(config)
  local total = 0
  for _, r in ipairs(config.rarities) do total = total + r.weight end
  local rarities = {}
  for i, r in ipairs(config.rarities) do
    local items = {}
    for j, item in ipairs(r.items) do
      items[j] = { item_key = item.item_key, name = item.name, value = item.value }
    end
    rarities[i] = { rarity = r.rarity, weight = r.weight, probability = rtp.round(r.weight / total, 4), items = items }
  end
  return {
    gacha_id = config.gacha_id,
    currency = config.currency,
    cost_per_pull = config.cost_per_pull,
    max_pull_count = config.max_pull_count,
    rarities = rarities,
  }
end

return M
