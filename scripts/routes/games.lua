-- games.lua - the game routes of CONTRACT.md §9 except crash's own: the
-- game list, public parameters and gacha odds (no auth), slot spin, RPS,
-- gacha pull and the gacha inventory. Thin: domain/games does the work.
--
-- Bet limits come from the loaded rule modules when this file loads, so a
-- reload with new limits changes validation (422) with the paytable. Every
-- play honours Idempotency-Key; the key is also copied to the ledger rows.
local host = require "host"
local registry = require "host.games"
local games = require "domain.games"
local idempotency = require "domain.idempotency"

local TAGS = { "Games" }

-- bet_amount|betAmount within the game's configured limits.
local function bet_field(config)
  return { name = "bet_amount", type = "integer", required = true, ge = config.min_bet, le = config.max_bet,
           aliases = { "betAmount" }, description = "tokens staked", example = config.min_bet }
end

host.route {
  method = "GET", path = "/api/games/", auth = "user",
  tags = TAGS, summary = "Active games with the caller's play count and best payout", operation_id = "games_list",
  responses = { [200] = "Active games in order, with the caller's playCount and bestScore" },
  moves_money = false,
  handler = function(req)
    return games.list(req.user.id)
  end,
}

host.route {
  method = "POST", path = "/api/games/slot/spin", auth = "user",
  tags = TAGS, summary = "Spin the slot machine", operation_id = "games_slot_spin",
  responses = {
    [200] = "reels, win_amount, win_type, is_jackpot, balance, play_id and the fairness fields",
    [400] = { "INSUFFICIENT_TOKENS", "BALANCE_LIMIT" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  body = {
    bet_field(games.config("slot")),
    { name = "lines", type = "integer", nullable = true, description = "accepted and ignored" },
  },
  handler = idempotency.wrap(function(req)
    return games.slot_spin(req.user.id, req.body.bet_amount, idempotency.key(req))
  end),
}

host.route {
  method = "POST", path = "/api/games/rps/play", auth = "user",
  tags = TAGS, summary = "Play rock, paper, scissors", operation_id = "games_rps_play_v1",
  responses = {
    [200] = "player_choice, computer_choice, result, win_amount, message, balance, play_id and the fairness fields",
    [400] = { "INSUFFICIENT_TOKENS", "BALANCE_LIMIT" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  body = {
    { name = "choice", type = "string", required = true, enum = registry.get("rps").CHOICES, example = "rock" },
    bet_field(games.config("rps")),
  },
  handler = idempotency.wrap(function(req)
    return games.rps_play(req.user.id, req.body.choice, req.body.bet_amount, idempotency.key(req))
  end),
}

host.route {
  method = "POST", path = "/api/games/gacha/pull", auth = "user",
  tags = TAGS, summary = "Pull the gacha", operation_id = "games_gacha_pull",
  responses = {
    [200] = "items, rare_item_count, ultra_rare_item_count, pull_count, balance, currency_balance, play_id and the "
      .. "fairness fields",
    [400] = { "INSUFFICIENT_TOKENS", "BALANCE_LIMIT" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  body = {
    { name = "gacha_id", type = "string", nullable = true, aliases = { "gachaId" },
      description = "accepted and ignored: only the default banner exists" },
    { name = "pull_count", type = "integer", default = 1, ge = 1, le = games.config("gacha").max_pull_count,
      aliases = { "pullCount" }, example = 1 },
    { name = "use_premium_currency", type = "boolean", nullable = true, aliases = { "usePremiumCurrency" },
      description = "accepted and ignored: pulls always cost tokens" },
  },
  handler = idempotency.wrap(function(req)
    return games.gacha_pull(req.user.id, req.body.pull_count, idempotency.key(req))
  end),
}

host.route {
  method = "GET", path = "/api/games/gacha/config", auth = "none",
  tags = TAGS, summary = "Gacha odds disclosure", operation_id = "games_gacha_config", moves_money = false,
  responses = {
    [200] = "Odds disclosure: cost_per_pull, max_pull_count, rarities with weight, probability and items",
  },
  handler = function()
    return games.gacha_config()
  end,
}

host.route {
  method = "GET", path = "/api/games/gacha/inventory", auth = "user",
  tags = TAGS, summary = "The caller's gacha items", operation_id = "games_gacha_inventory", moves_money = false,
  responses = { [200] = "items (legendary first), total_items, total_value" },
  handler = function(req)
    return games.inventory(req.user.id)
  end,
}

host.route {
  method = "GET", path = "/api/games/{game_type}/config", auth = "none",
  tags = TAGS, summary = "Public parameters of slot, rps or crash", operation_id = "games_config",
  responses = {
    [200] = "The game's public parameters: paytable or multipliers, weights, bet limits, exact RTP",
    [404] = { "GAME_NOT_FOUND", description = "No public parameters for that game type" }, [422] = true,
  },
  moves_money = false, params = { { name = "game_type", type = "string", required = true, example = "slot" } },
  handler = function(req)
    return games.public_config(req.params.game_type)
  end,
}

host.route {
  method = "GET", path = "/api/admin/games/rtp", auth = "admin", tags = { "Admin" }, moves_money = false,
  summary = "Exact RTP, hit frequency, band and payout distribution of every game of the loaded scripts",
  operation_id = "admin_games_rtp",
  responses = { [200] = "generation, games: exact rtp, hit_frequency, band, std_dev_per_play, distribution" },
  handler = function() return games.rtp_report() end,
}
