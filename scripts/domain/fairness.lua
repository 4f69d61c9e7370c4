-- fairness.lua - provably-fair seed pairs (CONTRACT.md §8).
--
-- Each user has one active pair: a server seed (32 CSPRNG bytes as 64
-- lowercase hex characters, secret until rotated), its SHA-256 (published in
-- advance), a client seed the user may change, and the next nonce. A play
-- takes the nonce inside its own transaction with a row lock, so concurrent
-- plays of one user get consecutive nonces and a rolled-back play consumes
-- none. Rotation reveals the old seed; revealed pairs are kept so every past
-- play can be re-derived (lib/fair.lua) and checked against its hash.
local host = require "host"
local errors = require "lib.errors"
local store = require "lib.store"

local M = {}


local SEED_COLUMNS = "id, user_id, server_seed, server_seed_hash, client_seed, next_nonce, status, created_at"

-- The crash module may add a check of its own (it knows the Redis state of a
-- round whose database rows are not written yet, CONTRACT.md §10.3).
local extra_round_check

--- set_active_round_check(fn): fn(user_id) -> true while the user has an
--- active crash round the database rows may not show yet. rotate refuses
--- when a crash_sessions row of the user is 'active' or fn says so. The
--- crash module installs it when it loads (one check; a later call replaces it).
function M.set_active_round_check(fn)
  assert(type(fn) == "function", "set_active_round_check expects a function")
  extra_round_check = fn
end

local function round_active(user_id)
  if store.one("SELECT 1 AS x FROM crash_sessions WHERE user_id = $1 AND status = 'active'", user_id) then
    return true
  end
  return extra_round_check ~= nil and extra_round_check(user_id) == true
end

--- new_server_seed() -> seed, hash: 64 lowercase hex characters from the
--- host CSPRNG and the lowercase hex SHA-256 of that ASCII string.
function M.new_server_seed()
  local seed = host.crypto.to_hex(host.crypto.random_bytes(32))
  return seed, host.crypto.sha256_hex(seed)
end

local function insert_seed(user_id, client_seed)
  local seed, hash = M.new_server_seed()
  return store.one("INSERT INTO fairness_seeds (user_id, server_seed, server_seed_hash, client_seed) "
    .. "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) WHERE status = 'active' DO NOTHING RETURNING " .. SEED_COLUMNS,
    user_id, seed, hash, client_seed or host.crypto.to_hex(host.crypto.random_bytes(16)))
end

--- ensure(user_id): creates the user's active seed pair when there is none
--- (signup may call it in its transaction; everything else creates lazily).
function M.ensure(user_id)
  insert_seed(user_id)
end

--- current(user_id [, for_update]) -> the active seed row {id, user_id,
--- server_seed, server_seed_hash, client_seed, next_nonce, status,
--- created_at}, created when missing. for_update locks it (inside a tx).
function M.current(user_id, for_update)
  local sql = "SELECT " .. SEED_COLUMNS .. " FROM fairness_seeds WHERE user_id = $1 AND status = 'active'"
    .. (for_update and " FOR UPDATE" or "")
  for _ = 1, 3 do
    local row = store.one(sql, user_id) or insert_seed(user_id)
    if row then return row end
    -- a concurrent rotation or creation committed in between: read again
  end
  error("fairness: no active seed for user " .. tostring(user_id))
end

--- view(seed) -> {server_seed_hash, client_seed, nonce}: what the player sees.
function M.view(seed)
  return { server_seed_hash = seed.server_seed_hash, client_seed = seed.client_seed, nonce = seed.next_nonce }
end

-- The nonce update, around how it names the user: $1 alone (take_nonce) or
-- read from the play's debit (NONCE_AFTER_STAKE).
local function nonce_update(user)
  return "UPDATE fairness_seeds SET next_nonce = next_nonce + 1 WHERE user_id = " .. user .. " AND status = 'active' "
    .. "RETURNING id AS seed_id, server_seed, server_seed_hash, client_seed, next_nonce - 1 AS nonce"
end
local TAKE_NONCE_SQL = nonce_update("$1")

--- NONCE_AFTER_STAKE: take_nonce's update as an expression of the play's
--- stake statement (wallet.stake's `also`): one statement fewer per play.
--- The user id is read from the debit's row, so the seed is locked after
--- the wallet (the lock order) and nothing is taken when the debit was
--- refused. Its row's seed_id is NULL when no pair was active at the
--- statement's start, or a rotation revealed it meanwhile: take_nonce then
--- takes the nonce of the pair active now.
M.NONCE_AFTER_STAKE = {
  name = "n",
  sql = nonce_update("(SELECT $1::bigint FROM w)"),
  columns = "n.seed_id, n.server_seed, n.server_seed_hash, n.client_seed, n.nonce",
}

--- NONCES_AFTER_STAKES: the same for a batch's stakes (wallet.stakes), one
--- nonce per debited player, with the player's user_id to match it (the
--- seeds read by index, as wallet.stakes reads the wallets).
M.NONCES_AFTER_STAKES = {
  name = "n",
  sql = "UPDATE fairness_seeds f SET next_nonce = f.next_nonce + 1 FROM p "
    .. "WHERE f.user_id = ANY(ARRAY(SELECT user_id FROM p)) AND f.user_id = p.user_id "
    .. "AND f.status = 'active' RETURNING f.user_id, f.id AS seed_id, f.server_seed, f.server_seed_hash, "
    .. "f.client_seed, f.next_nonce - 1 AS nonce",
  columns = "n.seed_id, n.server_seed, n.server_seed_hash, n.client_seed, n.nonce",
}

--- take_nonce(user_id) -> {seed_id, server_seed, server_seed_hash,
--- client_seed, nonce}: consumes the active pair's next nonce. Must run
--- inside the play's transaction: the row stays locked until it ends, and a
--- rollback gives the nonce back.
function M.take_nonce(user_id)
  for _ = 1, 3 do
    local row = store.one(TAKE_NONCE_SQL, user_id)
    if row then return row end
    -- no active pair yet, or a rotation committed while we waited for the lock
    insert_seed(user_id)
  end
  error("fairness: no active seed for user " .. tostring(user_id))
end

--- set_client_seed(user_id, client_seed) -> view: the nonce carries on.
function M.set_client_seed(user_id, client_seed)
  return store.tx(function()
    local seed = M.current(user_id, true)
    store.query("UPDATE fairness_seeds SET client_seed = $2 WHERE id = $1", seed.id, client_seed)
    seed.client_seed = client_seed
    return M.view(seed)
  end)
end

--- rotate(user_id) -> {previous_server_seed, previous_server_seed_hash,
--- previous_client_seed, previous_nonce, server_seed_hash, client_seed,
--- nonce = 0}: reveals the active seed and starts a fresh one with the same
--- client seed. Raises 409 while the user has an active crash round.
function M.rotate(user_id)
  return store.tx(function()
    local old = M.current(user_id, true) -- the lock waits for plays in flight
    if round_active(user_id) then errors.raise("SEED_ROUND_ACTIVE") end
    store.query("UPDATE fairness_seeds SET status = 'revealed', revealed_at = now() WHERE id = $1", old.id)
    local new = assert(insert_seed(user_id, old.client_seed))
    return {
      previous_server_seed = old.server_seed, previous_server_seed_hash = old.server_seed_hash,
      previous_client_seed = old.client_seed, previous_nonce = old.next_nonce,
      server_seed_hash = new.server_seed_hash, client_seed = new.client_seed, nonce = new.next_nonce,
    }
  end)
end

--- revealed(user_id, limit) -> items [{server_seed, server_seed_hash,
--- final_nonce, created_at, revealed_at}], newest first.
function M.revealed(user_id, limit)
  return store.query("SELECT server_seed, server_seed_hash, next_nonce AS final_nonce, created_at, revealed_at "
    .. "FROM fairness_seeds WHERE user_id = $1 AND status = 'revealed' ORDER BY revealed_at DESC, id DESC LIMIT $2",
    user_id, limit)
end

return M
