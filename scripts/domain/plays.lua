-- plays.lua - the one transaction every game play runs (CONTRACT.md §3, §8,
-- §9): debit the stake, take the nonce, draw the outcome from the
-- provably-fair stream, credit the payout, and write the play row, the user
-- action, the outbox event and the progress events, all or nothing.
--
-- The play id is reserved first (nextval) so the ledger reference
-- `play:<id>` can name the play before it is drawn. The debit comes before
-- the nonce: locks are always taken wallet first, then seed, and a short
-- balance (400 from the wallet) rolls back before anything else happened,
-- so no play row, ledger row, nonce or progress is left behind.
local store = require "lib.store"
local fair = require "lib.fair"
local wallet = require "domain.wallet"
local fairness = require "domain.fairness"
local events_log = require "domain.events_log"
local progress = require "domain.progress"

local M = {}

--- run(user_id, p) -> play: one play in one transaction (a savepoint when
--- the caller already runs one). p:
---   game_type        "slot" | "rps" | "gacha" | "crash"
---   bet              tokens to debit (integer > 0: the bet or the gacha cost)
---   draw(rng, play_id) -> outcome, payout: the game's rules on the fair
---                    stream; outcome is a JSON object stored in the play row,
---                    payout the gross tokens to credit (integer >= 0)
---   action_type      user_actions type ("SLOT_SPIN", …)
---   idempotency_key  optional, copied to the ledger rows
---   pending          true leaves the play 'pending' with no payout credited
---                    (a crash round settles later); payout must then be 0
---   record(play)     optional: more rows in the same transaction (inventory)
---   events           optional list of extra progress events (play_id added)
--- play = {id, user_id, game_type, bet, outcome, payout, is_win, balance,
--- nonce, server_seed_hash, client_seed, fairness_seed_id, created_at}.
--- Raises INSUFFICIENT_TOKENS (400) when the balance is short (nothing written).
function M.run(user_id, p)
  assert(p.bet > 0 and p.bet % 1 == 0, "plays.run: bet must be a positive integer")
  return store.tx(function()
    local id = store.one("SELECT nextval(pg_get_serial_sequence('game_plays', 'id')) AS id").id
    local reference = "play:" .. id
    local balance = wallet.change(user_id, { tokens = -p.bet },
      { reason = "game_bet", reference = reference, idempotency_key = p.idempotency_key }).tokens
    local seed = fairness.take_nonce(user_id)
    local outcome, payout = p.draw(fair.stream(seed.server_seed, seed.client_seed, seed.nonce), id)
    assert(payout >= 0 and payout % 1 == 0, "plays.run: payout must be a non-negative integer")
    assert(not (p.pending and payout > 0), "plays.run: a pending play has no payout yet")
    if payout > 0 then
      balance = wallet.change(user_id, { tokens = payout },
        { reason = "game_payout", reference = reference, idempotency_key = p.idempotency_key }).tokens
    end
    local play = {
      id = id, user_id = user_id, game_type = p.game_type, bet = p.bet, outcome = outcome, payout = payout,
      is_win = payout > p.bet, balance = balance, nonce = seed.nonce, server_seed_hash = seed.server_seed_hash,
      client_seed = seed.client_seed, fairness_seed_id = seed.seed_id,
    }
    play.created_at = store.one("INSERT INTO game_plays (id, user_id, game_type, bet_amount, payout, is_win, outcome, "
      .. "status, fairness_seed_id, nonce, server_seed_hash, client_seed, settled_at) "
      .. "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, "
      .. "CASE WHEN $13 THEN now() END) RETURNING created_at",
      id, user_id, p.game_type, p.bet, payout, play.is_win, outcome, p.pending and "pending" or "settled",
      seed.seed_id, seed.nonce, seed.server_seed_hash, seed.client_seed, not p.pending).created_at
    if p.record then p.record(play) end
    -- A pending play's outcome stays in its row only (a crash point is secret
    -- until the round ends).
    events_log.action(user_id, p.action_type, {
      play_id = id, game_type = p.game_type, bet_amount = p.bet, payout = payout,
      outcome = not p.pending and outcome or nil,
    })
    events_log.outbox("game_events", "game.play", {
      play_id = id, user_id = user_id, game_type = p.game_type, bet_amount = p.bet, payout = payout,
      is_win = play.is_win, status = p.pending and "pending" or "settled", nonce = seed.nonce,
      server_seed_hash = seed.server_seed_hash, client_seed = seed.client_seed, created_at = play.created_at,
    })
    progress.emit(user_id, { kind = "play", game_type = p.game_type, bet = p.bet, payout = payout,
                             win = play.is_win, play_id = id })
    for _, event in ipairs(p.events or {}) do
      event.play_id = id
      progress.emit(user_id, event)
    end
    return play
  end)
end

--- with_fairness(t, play) -> t with play_id, nonce, server_seed_hash and
--- client_seed of the play added (every play response carries them).
function M.with_fairness(t, play)
  t.play_id, t.nonce, t.server_seed_hash, t.client_seed = play.id, play.nonce, play.server_seed_hash, play.client_seed
  return t
end

return M
