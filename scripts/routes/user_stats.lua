-- user_stats.lua - GET /api/users/stats (CONTRACT.md §7): the caller's
-- play statistics, computed from game_plays by domain/games. A literal path,
-- so it wins over /api/users/{user_id}.
local host = require "host"
local games = require "domain.games"

host.route {
  method = "GET", path = "/api/users/stats", auth = "user",
  tags = { "Users" }, summary = "The caller's game statistics", operation_id = "users_stats", moves_money = false,
  responses = { [200] = "total_games_played, total_tokens_earned, total_tokens_spent, win_rate, level, experience" },
  handler = function(req)
    return games.stats(req.user.id)
  end,
}
