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
-- is two round trips, three when a live event counts it. Under load the
-- plays of different players that wait for a connection share one such
-- transaction ("Batches" below), each still all or nothing.
local host = require "host"
local db = require "host.db"
local json = require "json"
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

-- RECORD_SQL for a batch (settled plays only), one row per play in $1.
local RECORDS_SQL = "WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, user_id bigint, "
  .. "game_type text, bet bigint, payout bigint, is_win boolean, outcome jsonb, seed_id bigint, nonce bigint, "
  .. "server_seed_hash text, client_seed text, action_type text)), "
  .. "g AS (INSERT INTO game_plays (id, user_id, game_type, bet_amount, payout, is_win, outcome, status, "
  .. "fairness_seed_id, nonce, server_seed_hash, client_seed, settled_at) SELECT id, user_id, game_type, bet, "
  .. "payout, is_win, outcome, 'settled', seed_id, nonce, server_seed_hash, client_seed, now() FROM x "
  .. "RETURNING id, created_at), "
  .. "a AS (INSERT INTO user_actions (user_id, action_type, action_data) SELECT user_id, action_type, "
  .. "jsonb_build_object('play_id', id, 'game_type', game_type, 'bet_amount', bet, 'payout', payout, "
  .. "'outcome', outcome) FROM x), "
  .. "o AS (INSERT INTO outbox_events (topic, event_type, payload) SELECT 'game_events', 'game.play', "
  .. "jsonb_build_object('play_id', x.id, 'user_id', x.user_id, 'game_type', x.game_type, 'bet_amount', x.bet, "
  .. "'payout', x.payout, 'is_win', x.is_win, 'status', 'settled', 'nonce', x.nonce, "
  .. "'server_seed_hash', x.server_seed_hash, 'client_seed', x.client_seed, "
  .. "'created_at', to_char(g.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')) "
  .. "FROM x JOIN g ON g.id = x.id ORDER BY x.id) "
  .. "SELECT 1 FROM g LIMIT 1"

local M = {}

-- The play's outcome from its stake's row and seed: draws, credits the
-- payout (pay(user_id, id, balance, payout) -> balance after) and queues the
-- metrics. Returns the play (see run).
local function settle(user_id, p, id, balance, at, seed, pay)
  local outcome, payout = p.draw(fair.stream(seed.server_seed, seed.client_seed, seed.nonce), id)
  assert(payout >= 0 and payout % 1 == 0, "plays.run: payout must be a non-negative integer")
  assert(not (p.pending and payout > 0), "plays.run: a pending play has no payout yet")
  store.after_commit(function() metrics.play(p.game_type, p.bet, payout) end)
  if payout > 0 then balance = pay(user_id, id, balance, payout) end
  return {
    id = id, user_id = user_id, game_type = p.game_type, bet = p.bet, outcome = outcome, payout = payout,
    is_win = payout > p.bet, balance = balance, nonce = seed.nonce, server_seed_hash = seed.server_seed_hash,
    client_seed = seed.client_seed, fairness_seed_id = seed.seed_id, created_at = at,
  }
end

local function progress_of(user_id, p, play)
  progress.emit(user_id, { kind = "play", game_type = p.game_type, bet = p.bet, payout = play.payout,
                           win = play.is_win, play_id = play.id })
  for _, event in ipairs(p.events or {}) do
    event.play_id = play.id
    progress.emit(user_id, event)
  end
end

-- One play, in the running transaction.
local function play_alone(user_id, p)
  -- sends BEGIN, the xid with the catalogue's version and the stake with the nonce at once
  local id, balance, at, seed = wallet.stake(user_id, p.bet, p.idempotency_key, fairness.NONCE_AFTER_STAKE)
  if not seed.seed_id then seed = fairness.take_nonce(user_id) end
  local play = settle(user_id, p, id, balance, at, seed, function(uid, pid, b, payout)
    return wallet.pay(uid, pid, b, payout, p.idempotency_key)
  end)
  local status = p.pending and "pending" or "settled"
  store.defer(RECORD_SQL, id, user_id, p.game_type, p.bet, play.payout, play.is_win, play.outcome, status,
    seed.seed_id, seed.nonce, seed.server_seed_hash, seed.client_seed, p.action_type)
  if p.record then p.record(play) end
  progress_of(user_id, p, play)
  return play
end

-- One play in its own transaction (or the caller's, under a savepoint).
local function run_alone(user_id, p)
  return store.tx(function() return play_alone(user_id, p) end)
end

--[[ Batches. Under load every connection of the pool is busy and plays
queue for one. The plays of different players that arrive while one of
them waits go in its transaction, as one statement per step for all of them
(wallet.stakes with fairness.NONCES_AFTER_STAKES, wallet.pays, RECORDS_SQL):
PostgreSQL's cost per statement (executor start-up, the protocol, the
commit) is then shared, where a play alone paid it in full; pgbench of the
spin's SQL ran 2.7x as many spins a second five to a transaction. Each play
keeps every rule of a play alone: its debit, ledger rows, nonce, play row,
action, outbox event and progress, all committed or none, with the lock
order wallet then seed (wallets in user id order, so batches cannot
deadlock each other; a deadlock with anything else is retried by db.tx).

Only the plays whose whole transaction is the play join one: a settled
play (a pending crash bet settles later, its own way) with no
Idempotency-Key (whose record shares the play's transaction) and no
surrounding transaction. Extra rows (the gacha's inventory) and events
are each play's own deferred statements, as alone. The first such
play while none is forming leads: it waits for a connection, and whoever
comes meanwhile (one play per player) parks until the transaction ends.
A batch of one runs as a play alone. A player whose debit the batch
refused (the balance is short, or the user is gone), and every play of a
batch that failed (an error raised for one play rolls back all of them),
runs again alone, where the error is its own: nothing of a failed batch was
written. A commit whose outcome is unknown, or a database out of reach,
answers every play of the batch as it would answer one. ]]
local BATCH_MAX = 32
local forming -- the batch that waits for a connection: {entries, users}

local function batchable(p)
  return not (p.pending or p.idempotency_key) and not db.tx_local()
end

local function by_user(a, b) return a.user_id < b.user_id end

-- The batch's transaction body: sets the play of each entry it debited (the
-- others, refused, run again alone: lead).
local function run_batch(entries)
  table.sort(entries, by_user)
  local stakes = json.array()
  for i, e in ipairs(entries) do
    e.play = nil -- a retried transaction starts again
    stakes[i] = { user_id = e.user_id, bet = e.p.bet }
  end
  local rows = wallet.stakes(stakes, fairness.NONCES_AFTER_STAKES)
  local pays, records = json.array(), json.array()
  local function pay(user_id, id, balance, payout)
    pays[#pays + 1] = { user_id = user_id, play_id = id, balance = balance, payout = payout }
    return balance + payout
  end
  for _, e in ipairs(entries) do
    local row = rows[e.user_id]
    if row then
      local seed = row.seed_id and row or fairness.take_nonce(e.user_id)
      local play = settle(e.user_id, e.p, row.id, row.balance, row.at, seed, pay)
      records[#records + 1] = {
        id = play.id, user_id = e.user_id, game_type = e.p.game_type, bet = e.p.bet, payout = play.payout,
        is_win = play.is_win, outcome = play.outcome, seed_id = seed.seed_id, nonce = seed.nonce,
        server_seed_hash = seed.server_seed_hash, client_seed = seed.client_seed, action_type = e.p.action_type,
      }
      e.play = play
    end
  end
  wallet.pays(pays)
  if #records > 0 then store.defer(RECORDS_SQL, records) end
  for _, e in ipairs(entries) do
    if e.play then
      if e.p.record then e.p.record(e.play) end
      progress_of(e.user_id, e.p, e.play)
    end
  end
end

-- Whether every play of a batch gets err as its own answer: a batch of one
-- is a play alone, and a 503 (the database out of reach, or the commit's
-- outcome unknown) is what each play alone would have answered.
local function shared(err, n)
  return n == 1 or (host.is_http_error(err) and err.status == 503)
end

-- Leads a batch: runs it once a connection is free, then hands each parked
-- play its result. Returns the leader's own.
local function lead(batch)
  local ok, err = pcall(store.tx, function()
    if forming == batch then forming = nil end -- a connection is ours: later plays form the next batch
    if #batch.entries == 1 then
      local e = batch.entries[1]
      e.play = play_alone(e.user_id, e.p)
    else
      run_batch(batch.entries)
    end
  end)
  if forming == batch then forming = nil end
  local all = not ok and shared(err, #batch.entries)
  local mine
  for _, e in ipairs(batch.entries) do
    local how, what
    if ok and e.play then
      how, what = "play", e.play
    elseif all then
      how, what = "error", err
    else
      how = "alone"
    end
    if e.co then host.wake(e.co, how, what) else mine = { how, what } end
  end
  return mine[1], mine[2]
end

--- run(user_id, p) -> play: one play in one transaction (a savepoint when
--- the caller already runs one), or in a batch (above). p:
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
  if not batchable(p) then return run_alone(user_id, p) end
  local how, what
  if forming and not forming.users[user_id] and #forming.entries < BATCH_MAX then
    local e = { user_id = user_id, p = p, co = host.running() }
    forming.entries[#forming.entries + 1] = e
    forming.users[user_id] = true
    how, what = host.park()
  elseif forming then
    how = "alone" -- the player is in the forming batch already (or it is full)
  else
    forming = { entries = { { user_id = user_id, p = p } }, users = { [user_id] = true } }
    how, what = lead(forming)
  end
  if how == "play" then return what end
  if how == "error" then error(what, 0) end
  return run_alone(user_id, p)
end

--- with_fairness(t, play) -> t with play_id, nonce, server_seed_hash and
--- client_seed of the play added (every play response carries them).
function M.with_fairness(t, play)
  t.play_id, t.nonce, t.server_seed_hash, t.client_seed = play.id, play.nonce, play.server_seed_hash, play.client_seed
  return t
end

return M
