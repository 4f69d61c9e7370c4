-- plays.lua - the one transaction every game play runs (CONTRACT.md §3, §8,
-- §9): debit the stake, take the nonce, draw the outcome from the
-- provably-fair stream, credit the payout, and write the play row, the user
-- action, the outbox event and the progress events, all or nothing.
--
-- The play id is reserved with the debit, and the nonce taken, in one
-- statement (wallet.stake with fairness.NONCE_AFTER_STAKE) so the ledger
-- reference `play:<id>` can name the play before it is drawn. The debit
-- comes before the nonce: locks are always taken wallet first, then seed,
-- and a short balance (400 from the wallet) rolls the whole transaction
-- back, so no play row, ledger row, nonce or progress is left behind. The
-- play row, its user action and its outbox event are one statement too (the
-- hot path writes the rows events_log.lua writes elsewhere).
--
-- Round trips are what a play costs most (each one wakes the host and the
-- server), so statements whose answer can wait are deferred (db.defer) and
-- travel in one pipeline with the next one that must be answered: BEGIN,
-- the engagement catalogue's version (domain/catalogue.lua) and the stake
-- with the nonce go together; the payout, the record and the mission
-- progress go with COMMIT, or with the event progress when a live event
-- counts the play (its answer decides the event's completion). A slot spin
-- is two round trips, three when a live event counts it.
local store = require "lib.store"
local fair = require "lib.fair"
local wallet = require "domain.wallet"
local fairness = require "domain.fairness"
local progress = require "domain.progress"
local metrics = require "domain.metrics"

-- The play row, its user action and its outbox event, in one statement. A
-- pending play's outcome stays in its row only (a crash point is secret
-- until the round ends); the action and the outbox event carry the figures,
-- the play row the outcome. A constant, so that a play does not build and
-- intern the text again.
local RECORD_SQL = "WITH g AS (INSERT INTO game_plays (id, user_id, game_type, bet_amount, payout, "
  .. "is_win, outcome, status, fairness_seed_id, nonce, server_seed_hash, client_seed, settled_at) "
  .. "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::text, $9, $10, $11, $12, CASE WHEN $8::text = 'settled' THEN now() END) "
  .. "RETURNING created_at), "
  .. "a AS (INSERT INTO user_actions (user_id, action_type, action_data) SELECT $2, $13, "
  .. "jsonb_build_object('play_id', $1::bigint, 'game_type', $3::text, 'bet_amount', $4::bigint, "
  .. "'payout', $5::bigint) || CASE WHEN $8::text = 'settled' THEN jsonb_build_object('outcome', $7::jsonb) "
  .. "ELSE '{}' END FROM g), "
  .. "o AS (INSERT INTO outbox_events (topic, event_type, payload) SELECT 'game_events', 'game.play', "
  .. "jsonb_build_object('play_id', $1::bigint, 'user_id', $2::bigint, 'game_type', $3::text, "
  .. "'bet_amount', $4::bigint, 'payout', $5::bigint, 'is_win', $6::boolean, 'status', $8::text, "
  .. "'nonce', $10::bigint, 'server_seed_hash', $11::text, 'client_seed', $12::text, "
  .. "'created_at', to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) FROM g) "
  .. "SELECT 1 FROM g"

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
    -- sends BEGIN, the xid with the catalogue's version and the stake with the nonce at once
    local id, balance, at, seed = wallet.stake(user_id, p.bet, p.idempotency_key, fairness.NONCE_AFTER_STAKE)
    if not seed.seed_id then seed = fairness.take_nonce(user_id) end
    local outcome, payout = p.draw(fair.stream(seed.server_seed, seed.client_seed, seed.nonce), id)
    assert(payout >= 0 and payout % 1 == 0, "plays.run: payout must be a non-negative integer")
    assert(not (p.pending and payout > 0), "plays.run: a pending play has no payout yet")
    store.after_commit(function() metrics.play(p.game_type, p.bet, payout) end)
    if payout > 0 then balance = wallet.pay(user_id, id, balance, payout, p.idempotency_key) end
    local play = {
      id = id, user_id = user_id, game_type = p.game_type, bet = p.bet, outcome = outcome, payout = payout,
      is_win = payout > p.bet, balance = balance, nonce = seed.nonce, server_seed_hash = seed.server_seed_hash,
      client_seed = seed.client_seed, fairness_seed_id = seed.seed_id, created_at = at,
    }
    local status = p.pending and "pending" or "settled"
    store.defer(RECORD_SQL, id, user_id, p.game_type, p.bet, payout, play.is_win, outcome, status, seed.seed_id,
      seed.nonce, seed.server_seed_hash, seed.client_seed, p.action_type)
    if p.record then p.record(play) end
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
