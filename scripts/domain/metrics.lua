--[[ metrics.lua - what the scripts add to the host's Prometheus figures
(GET /metrics, host/metrics.h), and the figures a scrape reads itself.

Counters live in the host's shared memory (host.metrics.add: no I/O), so
domain code counts where the thing happens; what a transaction does is
counted after its commit (db.after_commit), so a rolled-back or retried
attempt counts nothing. Gauges that only PostgreSQL or Redis know are read
when scraped, with one bounded query each.
]]
local host = require "host"
local store = require "lib.store"

local M = {}

local add = host.metrics.add

-- Label tables per game, made once: a play allocates none.
local by_game = setmetatable({}, { __index = function(t, game)
  local labels = { game = game }
  t[game] = labels
  return labels
end })

--- play(game_type, bet, payout): counts one committed play, its stake and
--- what it paid (0 while a crash round runs: its payout counts at
--- settlement, with payout(…)).
function M.play(game_type, bet, payout)
  local labels = by_game[game_type]
  add("cc_game_plays_total", labels, 1)
  add("cc_game_bet_tokens_total", labels, bet)
  if payout > 0 then add("cc_game_payout_tokens_total", labels, payout) end
end

--- payout(game_type, tokens): counts tokens a play credited later (a crash
--- cash-out, auto cash-out or refund).
function M.payout(game_type, tokens)
  if tokens > 0 then add("cc_game_payout_tokens_total", by_game[game_type], tokens) end
end

-- Counting stops here: past it the exact backlog matters less than the
-- scrape staying cheap (the partial index outbox_events_pending serves it).
local OUTBOX_CAP = 1000000

--- outbox_pending() -> outbox rows not yet relayed (at most OUTBOX_CAP).
function M.outbox_pending()
  return store.one("SELECT count(*)::int8 AS n FROM (SELECT 1 FROM outbox_events WHERE relayed_at IS NULL "
    .. "LIMIT $1) p", OUTBOX_CAP).n
end

return M
