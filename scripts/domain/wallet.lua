-- wallet.lua - the only code that changes balances (CONTRACT.md §3).
--
-- Every change runs inside the caller's transaction: a conditional UPDATE per
-- currency (the row lock serialises concurrent changes of one user; the
-- WHERE refuses to go below zero or above 2^53-1) and a ledger row with the
-- new balance, so balance == sum(ledger deltas) always holds and the schema's
-- check (the balance's type, cc_balance) backs it. A refused change raises a
-- named error (INSUFFICIENT_TOKENS, BALANCE_LIMIT, USER_NOT_FOUND,
-- ALREADY_CREDITED) so the caller's transaction rolls back and nothing is
-- written.
local errors = require "lib.errors"
local db = require "host.db"
local store = require "lib.store"

local M = {}

M.CURRENCIES = { "tokens", "gold", "gems", "exp" }
M.MAX = 9007199254740991


--- create(user_id, initial): wallet rows for a new user; each non-zero
--- initial amount is credited with an `initial_grant` ledger row.
function M.create(user_id, initial)
  for _, cur in ipairs(M.CURRENCIES) do
    store.query("INSERT INTO wallet_balances (user_id, currency, balance) VALUES ($1, $2, 0)", user_id, cur)
  end
  local changes = {}
  for _, cur in ipairs(M.CURRENCIES) do
    local amount = initial and initial[cur] or 0
    if amount > 0 then changes[cur] = amount end
  end
  if next(changes) then M.change(user_id, changes, { reason = "initial_grant" }) end
end

-- Raises why a conditional update changed no row: no wallet (the user is
-- gone), a balance that would go negative, or one past 2^53-1.
local function refused(user_id, currency, delta)
  if not store.one("SELECT balance FROM wallet_balances WHERE user_id = $1 AND currency = $2", user_id, currency) then
    errors.raise("USER_NOT_FOUND")
  end
  errors.raise(delta < 0 and "INSUFFICIENT_TOKENS" or "BALANCE_LIMIT")
end

--- change(user_id, changes, opts) -> balances after, by currency.
--- changes: { tokens = -10, gold = 5 } (non-zero integers); opts: reason
--- (required), reference, idempotency_key, actor_id. Must run inside a
--- db.tx. Raises INSUFFICIENT_TOKENS (400) when a balance would go negative
--- and BALANCE_LIMIT above 2^53-1; a repeated (reason, reference) raises
--- ALREADY_CREDITED (409: the ledger's uniqueness, nothing twice).
function M.change(user_id, changes, opts)
  assert(opts and opts.reason, "wallet.change needs a reason")
  local after = {}
  for _, cur in ipairs(M.CURRENCIES) do
    local delta = changes[cur]
    if delta and delta ~= 0 then
      assert(delta == math.floor(delta), "wallet amounts are integers")
      -- One statement: the conditional update and its ledger row.
      local rows, err, sqlstate = db.query("WITH w AS (UPDATE wallet_balances SET balance = balance + $3, "
          .. "updated_at = now() WHERE user_id = $1 AND currency = $2 AND balance + $3 >= 0 "
          .. "AND balance + $3 <= 9007199254740991 RETURNING balance) "
          .. "INSERT INTO wallet_ledger (user_id, currency, delta, balance_after, reason, reference, idempotency_key, "
          .. "actor_id) SELECT $1, $2, $3, w.balance, $4, $5, $6, $7 FROM w RETURNING balance_after",
        user_id, cur, delta, opts.reason, opts.reference, opts.idempotency_key, opts.actor_id)
      if not rows and sqlstate == "23505" then errors.raise("ALREADY_CREDITED") end
      store.check(rows, err, sqlstate)
      if #rows == 0 then refused(user_id, cur, delta) end
      after[cur] = rows[1].balance_after
    end
  end
  return after
end

-- The stake's common table expressions: the conditional debit (w), the play
-- id drawn only when it succeeds (p) and the game_bet ledger row (l).
local STAKE_CTES = "w AS (UPDATE wallet_balances SET balance = balance - $2, updated_at = now() "
  .. "WHERE user_id = $1 AND currency = 'tokens' AND balance >= $2 RETURNING balance), "
  .. "p AS MATERIALIZED (SELECT nextval(pg_get_serial_sequence('game_plays', 'id')) AS id FROM w), "
  .. "l AS (INSERT INTO wallet_ledger (user_id, currency, delta, balance_after, reason, reference, idempotency_key) "
  .. "SELECT $1, 'tokens', -$2::bigint, w.balance, 'game_bet', 'play:' || p.id, $3 FROM w, p)"
local STAKE_SQL = "WITH " .. STAKE_CTES .. " SELECT p.id, w.balance, now() AS at FROM w, p"

-- The stake statement with a caller's expression added, by expression: built
-- once, so a play neither builds nor interns the text again.
local stake_with = setmetatable({}, { __mode = "k" })

--- stake(user_id, bet, idempotency_key [, also]) -> play_id, balance, at
--- (the transaction's timestamp), row: a play's debit as one statement: the
--- tokens row's conditional update, a new game_plays id (drawn only when
--- the debit succeeds) and the game_bet ledger row referencing play:<id>.
--- It travels with whatever the transaction has queued (BEGIN, the xid), in
--- one round trip, and raises like change(). The hottest statement of the
--- host: one executor run instead of three round trips.
---
--- also = {name = "n", sql = "UPDATE … RETURNING a, b", columns = "n.a, n.b"}
--- adds a data-modifying expression to the same statement
--- (fairness.NONCE_AFTER_STAKE: the nonce, one statement fewer per play);
--- its columns come in row, NULL when it returned no row. Its sql may read
--- $1 (the user id) and w, the debit: one that reads w runs after the debit,
--- so the wallet lock is still taken first, and finds no row when the debit
--- was refused.
function M.stake(user_id, bet, idempotency_key, also)
  local sql = STAKE_SQL
  if also then
    sql = stake_with[also]
    if not sql then
      sql = "WITH " .. STAKE_CTES .. ", " .. also.name .. " AS (" .. also.sql .. ") SELECT p.id, w.balance, "
        .. "now() AS at, " .. also.columns .. " FROM w CROSS JOIN p LEFT JOIN " .. also.name .. " ON true"
      stake_with[also] = sql
    end
  end
  local row = store.one(sql, user_id, bet, idempotency_key)
  if not row then refused(user_id, "tokens", -bet) end
  return row.id, row.balance, row.at, row
end

-- The stakes of a batch of plays (plays.lua), as one statement: STAKE_CTES
-- over many users. s holds the players in user id order, and the update
-- locks in the order of s, so batches lock wallets in one order. The
-- `= ANY(ARRAY(…))` condition keeps the wallets read by their index: the
-- planner cannot know how few rows s has, and with a small table it chose
-- to scan it whole.
local STAKES_CTES = "s AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS s(user_id bigint, bet bigint) "
  .. "ORDER BY user_id), "
  .. "w AS (UPDATE wallet_balances b SET balance = b.balance - s.bet, updated_at = now() FROM s "
  .. "WHERE b.user_id = ANY(ARRAY(SELECT user_id FROM s)) AND b.user_id = s.user_id AND b.currency = 'tokens' "
  .. "AND b.balance >= s.bet "
  .. "RETURNING b.user_id, b.balance, s.bet), "
  .. "p AS MATERIALIZED (SELECT w.user_id, w.balance, w.bet, "
  .. "nextval(pg_get_serial_sequence('game_plays', 'id')) AS id FROM w), "
  .. "l AS (INSERT INTO wallet_ledger (user_id, currency, delta, balance_after, reason, reference) "
  .. "SELECT p.user_id, 'tokens', -p.bet, p.balance, 'game_bet', 'play:' || p.id FROM p)"
local stakes_with = setmetatable({}, { __mode = "k" })

--- stakes(plays, also) -> {[user_id] = row}: the stakes of several plays
--- of different users (plays = {{user_id, bet}, ...}) in one statement,
--- each as stake() makes it (the conditional debit, the play id, the
--- game_bet ledger row; no idempotency key: keyed plays run alone). row =
--- {id, balance, at} plus also's columns; a refused debit has no row
--- (nothing written for it; stake() alone tells why). also is stake()'s,
--- over p (user_id per play) instead of $1.
function M.stakes(plays, also)
  local sql = stakes_with[also]
  if not sql then
    sql = "WITH " .. STAKES_CTES .. ", " .. also.name .. " AS (" .. also.sql .. ") SELECT p.user_id, p.id, p.balance, "
      .. "now() AS at, " .. also.columns .. " FROM p LEFT JOIN " .. also.name .. " ON "
      .. also.name .. ".user_id = p.user_id"
    stakes_with[also] = sql
  end
  local by_user = {}
  for _, row in ipairs(store.query(sql, plays)) do by_user[row.user_id] = row end
  return by_user
end

local PAY_SQL = "WITH w AS (UPDATE wallet_balances SET balance = balance + $2, updated_at = now() "
  .. "WHERE user_id = $1 AND currency = 'tokens' RETURNING balance) "
  .. "INSERT INTO wallet_ledger (user_id, currency, delta, balance_after, reason, reference, idempotency_key) "
  .. "SELECT $1, 'tokens', $2, w.balance, 'game_payout', $3, $4 FROM w"

--- pay(user_id, play_id, balance, payout, idempotency_key) -> balance after:
--- queues a play's payout credit and its game_payout ledger row (store.defer),
--- without waiting for an answer. It needs none: the stake holds the
--- wallet's row lock, so the balance after is balance + payout, and the
--- limit is checked here (BALANCE_LIMIT, nothing written); the reference
--- play:<id> is new with the play. Unlike change()'s, its UPDATE has no
--- condition: a deferred statement that changed no row would go unnoticed,
--- so the schema's check (cc_balance) is the guard and any failure fails
--- the COMMIT.
function M.pay(user_id, play_id, balance, payout, idempotency_key)
  assert(payout > 0 and payout % 1 == 0, "wallet.pay: payout must be a positive integer")
  if balance + payout > M.MAX then errors.raise("BALANCE_LIMIT") end
  store.defer(PAY_SQL, user_id, payout, "play:" .. play_id, idempotency_key)
  return balance + payout
end

local PAYS_SQL = "WITH s AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS s(user_id bigint, payout bigint, "
  .. "play_id bigint) ORDER BY user_id), "
  .. "w AS (UPDATE wallet_balances b SET balance = b.balance + s.payout, updated_at = now() FROM s "
  .. "WHERE b.user_id = ANY(ARRAY(SELECT user_id FROM s)) AND b.user_id = s.user_id AND b.currency = 'tokens' "
  .. "RETURNING b.user_id, b.balance, s.payout, s.play_id) "
  .. "INSERT INTO wallet_ledger (user_id, currency, delta, balance_after, reason, reference) "
  .. "SELECT user_id, 'tokens', payout, balance, 'game_payout', 'play:' || play_id FROM w"

--- pays(items): pay() for several plays of different users, queued as one
--- statement (read by index as in stakes) (items = {{user_id, play_id, balance, payout}, ...}, each
--- balance the one its stake answered). Returns nothing: each balance after
--- is balance + payout, and BALANCE_LIMIT is raised here as pay() does.
function M.pays(items)
  for _, it in ipairs(items) do
    assert(it.payout > 0 and it.payout % 1 == 0, "wallet.pays: payout must be a positive integer")
    if it.balance + it.payout > M.MAX then errors.raise("BALANCE_LIMIT") end
  end
  if #items > 0 then store.defer(PAYS_SQL, items) end
end

--- lock(user_id): takes the user's wallet lock (the tokens row) in the
--- caller's transaction. The lock order of everything that touches a
--- user's money is wallet first, then the rest (plays debit first, then
--- take the nonce and advance missions and events); a claim that marks its
--- participation or mission row before crediting would take them the other
--- way round and could deadlock with a play, so it calls this first.
--- Deferred (store.defer): the lock is taken in order, when the caller's next
--- statement travels with it.
function M.lock(user_id)
  store.defer("SELECT balance FROM wallet_balances WHERE user_id = $1 AND currency = 'tokens' FOR UPDATE", user_id)
end

--- balances(user_id) -> {tokens, gold, gems, exp} (0 for missing rows).
function M.balances(user_id)
  local b = { tokens = 0, gold = 0, gems = 0, exp = 0 }
  for _, row in ipairs(store.query("SELECT currency, balance FROM wallet_balances WHERE user_id = $1", user_id)) do
    b[row.currency] = row.balance
  end
  return b
end

return M
