--[[ accounts.lua - creating and changing accounts (CONTRACT.md §4.5, §7,
§13.2): signup, the profile update, logout from everywhere, the admin's rank,
ban and unban, the development token grant, and the one uniqueness check of
site_id / nickname / phone_number they all share.

Every change runs in one transaction with its rows (user_actions, audit and
outbox for admin mutations); the session cache is invalidated after the
commit (domain/auth.lua), so the very next request sees the change. Argon2
runs before a transaction opens: it takes a while and must not hold a
database connection.
]]
local json = require "json"
local db = require "host.db"
local errors = require "lib.errors"
local store = require "lib.store"
local auth = require "domain.auth"
local invite = require "domain.invite"
local wallet = require "domain.wallet"
local events_log = require "domain.events_log"
local progress = require "domain.progress"
local host = require "host"

local M = {}

-- The unique fields in the order they are checked, with the error a taken
-- value raises: at creation (400, §4.5) and on a change (409, §7, §13.2).
local UNIQUE = {
  { field = "site_id", constraint = "users_site_id_key", taken = "SITE_ID_TAKEN", conflict = "SITE_ID_TAKEN" },
  { field = "nickname", constraint = "users_nickname_key", taken = "NICKNAME_TAKEN", conflict = "NICKNAME_CONFLICT" },
  { field = "phone_number", constraint = "users_phone_number_key", taken = "PHONE_TAKEN",
    conflict = "PHONE_CONFLICT" },
}

local USER_COLUMNS = "id, site_id, nickname, phone_number, is_admin, is_active, vip_tier, created_at, last_login"

--- check_unique(fields, except_user_id) raises the error of the first of
--- site_id, nickname, phone_number in fields that another user holds
--- (exact match): the creation texts (400) without except_user_id, the
--- conflict texts (409) with it. One query, whatever is given.
function M.check_unique(fields, except_user_id)
  local checks, args = {}, { except_user_id or 0 }
  for _, u in ipairs(UNIQUE) do
    if fields[u.field] ~= nil then
      args[#args + 1] = fields[u.field]
      checks[#checks + 1] = "EXISTS (SELECT 1 FROM users WHERE " .. u.field .. " = $" .. #args
        .. " AND id <> $1) AS " .. u.field
    end
  end
  if #checks == 0 then return end
  local taken = store.one("SELECT " .. table.concat(checks, ", "), unpack(args))
  for _, u in ipairs(UNIQUE) do
    if taken[u.field] then errors.raise(except_user_id and u.conflict or u.taken) end
  end
end

-- A unique violation of users (a concurrent request took the value between
-- the check and the write) raised as the same error check_unique gives.
local function raise_unique_violation(err, except_user_id)
  for _, u in ipairs(UNIQUE) do
    if tostring(err):find(u.constraint, 1, true) then errors.raise(except_user_id and u.conflict or u.taken) end
  end
end

--- create_user(fields) -> users row (auth.load_user). Must run inside a
--- db.tx. fields: site_id, nickname, phone_number, password or
--- password_hash, invite_code?, is_admin? (false), vip_tier? ("STANDARD").
--- Inserts the user, the wallet with the INITIAL_* balances, the seed pair,
--- user_actions SIGNUP and outbox user.signup. A taken site_id / nickname /
--- phone raises its §4.5 error.
function M.create_user(f)
  local hash = f.password_hash or auth.hash_password(f.password)
  local rows, err, sqlstate = db.query(
    "INSERT INTO users (site_id, nickname, phone_number, password_hash, invite_code, is_admin, vip_tier) "
      .. "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    f.site_id, f.nickname, f.phone_number, hash, f.invite_code, f.is_admin == true, f.vip_tier or "STANDARD")
  if not rows and sqlstate == "23505" then raise_unique_violation(err) end
  store.check(rows, err, sqlstate)
  local id = rows[1].id
  local config = host.config
  wallet.create(id, {
    tokens = config.get("INITIAL_TOKENS"), gold = config.get("INITIAL_GOLD"),
    gems = config.get("INITIAL_GEMS"), exp = config.get("INITIAL_EXP"),
  })
  require("domain.fairness").ensure(id) -- the seed pair exists from signup on (§8)
  events_log.action(id, "SIGNUP", { site_id = f.site_id, invite_code = f.invite_code })
  events_log.outbox("user_actions", "user.signup", { user_id = id, site_id = f.site_id, nickname = f.nickname })
  return auth.load_user(id)
end

--- signup(fields, req) -> Token (§4.5): one transaction consumes an invite
--- use, runs the checks in the contract's order (invite, then site_id,
--- nickname, phone), creates the user and the first session, and counts a
--- `login` for missions and events (§12.3). Any error rolls everything
--- back, the invite use included.
function M.signup(f, req)
  local hash = auth.hash_password(f.password)
  return store.tx(function()
    local code = invite.consume(f.invite_code)
    if not code then errors.raise("INVITE_INVALID") end
    M.check_unique { site_id = f.site_id, nickname = f.nickname, phone_number = f.phone_number }
    local user = M.create_user {
      site_id = f.site_id, nickname = f.nickname, phone_number = f.phone_number,
      password_hash = hash, invite_code = code,
    }
    local token = auth.issue(user, req)
    progress.emit(user.id, { kind = "login" })
    return token
  end)
end

--- get(user_id) -> the users row without secrets; PROFILE_NOT_FOUND (404)
--- when there is none.
function M.get(user_id)
  local u = store.one("SELECT " .. USER_COLUMNS .. " FROM users WHERE id = $1", user_id)
  if not u then errors.raise("PROFILE_NOT_FOUND") end
  return u
end

--- update_profile(user, changes, session_id) -> the updated users row (§7
--- PUT /api/users/profile). changes: nickname?, phone_number?, password? with
--- current_password (nil = unchanged). A new password needs the current one
--- (WRONG_CURRENT_PASSWORD) and ends every other session of the user; a
--- nickname or phone another user holds is a 409.
function M.update_profile(user, c, session_id)
  local new_hash
  if c.password then
    local row = auth.load_user(user.id)
    if not (c.current_password and row and auth.verify_password(row.password_hash, c.current_password)) then
      errors.raise("WRONG_CURRENT_PASSWORD")
    end
    new_hash = auth.hash_password(c.password)
  end
  local updated = store.tx(function()
    M.check_unique({ nickname = c.nickname, phone_number = c.phone_number }, user.id)
    local rows, err, sqlstate = db.query("UPDATE users SET nickname = COALESCE($2, nickname), "
      .. "phone_number = COALESCE($3, phone_number), password_hash = COALESCE($4, password_hash), "
      .. "updated_at = now() WHERE id = $1 RETURNING " .. USER_COLUMNS, user.id, c.nickname, c.phone_number, new_hash)
    if not rows and sqlstate == "23505" then raise_unique_violation(err, user.id) end
    store.check(rows, err, sqlstate)
    if new_hash then auth.revoke_user_sessions(user.id, "password_changed", session_id) end
    return rows[1]
  end)
  auth.invalidate_user(user.id)
  return updated
end

--- logout_all(user_id): ends every session of the user (sockets close with
--- 4401 after the commit).
function M.logout_all(user_id)
  store.tx(function() auth.revoke_user_sessions(user_id, "logout_all") end)
end

--- dev_grant(user_id, amount, idempotency_key) -> balances after: the
--- development token grant (ledger reason dev_grant). amount must be > 0.
function M.dev_grant(user_id, amount, idempotency_key)
  if amount <= 0 then errors.raise("AMOUNT_NOT_POSITIVE") end
  return store.tx(function()
    return wallet.change(user_id, { tokens = amount }, { reason = "dev_grant", idempotency_key = idempotency_key })
  end)
end

----------------------------------------------------------- admin (§13.2)

-- The target row, locked for the change, or USER_NOT_FOUND.
local function lock_user(user_id)
  local u = store.one("SELECT id, is_active, vip_tier FROM users WHERE id = $1 FOR UPDATE", user_id)
  if not u then errors.raise("USER_NOT_FOUND") end
  return u
end

--- set_rank(admin, user_id, rank, ip): the user's vip_tier, audited
--- (user.rank, from/to); the session cache drops the old rank.
function M.set_rank(admin, user_id, rank, ip)
  store.tx(function()
    local u = lock_user(user_id)
    store.query("UPDATE users SET vip_tier = $2, updated_at = now() WHERE id = $1", user_id, rank)
    events_log.audit(admin.id, "user.rank", "user", user_id, { from = u.vip_tier, to = rank }, ip)
  end)
  auth.invalidate_user(user_id)
end

--- ban(admin, user_id, reason, hours, ip) -> banned_until (ISO) | json.null:
--- a timed (hours) or indefinite (nil) ban, audited (user.ban); every
--- session of the user ends and their sockets close with 4401. Banning
--- oneself is CANNOT_BAN_SELF.
function M.ban(admin, user_id, reason, hours, ip)
  if user_id == admin.id then errors.raise("CANNOT_BAN_SELF") end
  local until_at = store.tx(function()
    lock_user(user_id)
    local row = store.one("UPDATE users SET is_active = false, ban_reason = $2, updated_at = now(), "
      .. "banned_until = CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() + make_interval(hours => $3::int) END "
      .. "WHERE id = $1 RETURNING banned_until", user_id, reason, hours)
    events_log.audit(admin.id, "user.ban", "user", user_id, { reason = reason, duration_hours = hours }, ip)
    return row.banned_until or false
  end)
  auth.revoke_user_sessions(user_id, "banned")
  return until_at or json.null
end

--- unban(admin, user_id, ip): lifts a ban, audited (user.unban).
function M.unban(admin, user_id, ip)
  store.tx(function()
    lock_user(user_id)
    store.query("UPDATE users SET is_active = true, banned_until = NULL, ban_reason = NULL, updated_at = now() "
      .. "WHERE id = $1", user_id)
    events_log.audit(admin.id, "user.unban", "user", user_id, {}, ip)
  end)
  auth.invalidate_user(user_id)
end

-- The fields an admin PATCH may change, in the order they are applied.
local PATCHABLE = { "nickname", "phone_number", "vip_tier", "risk_profile", "segment" }

--- patch(admin, user_id, changes, ip) -> {id, nickname, phone_number,
--- is_active, vip_tier, risk_profile, segment} (§13.2 PATCH): any subset
--- of nickname, phone_number, vip_tier, risk_profile, segment (json.null
--- clears the last two) and is_active. A nickname or phone of another user
--- is a 409; is_active false is an indefinite ban with everything a ban
--- does (CANNOT_BAN_SELF on oneself), true lifts it. One transaction with
--- the audit row user.update naming the changed fields; the session cache
--- drops the user's state after the commit.
function M.patch(admin, user_id, c, ip)
  if c.is_active == false and user_id == admin.id then errors.raise("CANNOT_BAN_SELF") end
  local row = store.tx(function()
    local before = store.one("SELECT " .. USER_COLUMNS .. ", risk_profile, segment FROM users WHERE id = $1 FOR UPDATE",
      user_id)
    if not before then errors.raise("USER_NOT_FOUND") end
    M.check_unique({ nickname = c.nickname, phone_number = c.phone_number }, user_id)
    local sets, args, n, changed = {}, { user_id }, 1, {}
    for _, field in ipairs(PATCHABLE) do
      local v = c[field]
      if v ~= nil then
        n = n + 1
        args[n] = v ~= json.null and v or nil -- json.null: cleared (a NULL parameter)
        sets[#sets + 1] = field .. " = $" .. n
        changed[field] = v
      end
    end
    if c.is_active == false then
      sets[#sets + 1] = "is_active = false, banned_until = NULL" -- indefinite
      changed.is_active = false
    elseif c.is_active == true then
      sets[#sets + 1] = "is_active = true, banned_until = NULL, ban_reason = NULL"
      changed.is_active = true
    end
    if #sets == 0 then return before end
    local rows, err, sqlstate = db.query("UPDATE users SET " .. table.concat(sets, ", ") .. ", updated_at = now() "
      .. "WHERE id = $1 RETURNING " .. USER_COLUMNS .. ", risk_profile, segment", unpack(args, 1, n))
    if not rows and sqlstate == "23505" then raise_unique_violation(err, user_id) end
    store.check(rows, err, sqlstate)
    events_log.audit(admin.id, "user.update", "user", user_id, changed, ip)
    if c.is_active == false then auth.revoke_user_sessions(user_id, "banned") end
    return rows[1]
  end)
  auth.invalidate_user(user_id)
  local out = {}
  for _, k in ipairs { "id", "nickname", "phone_number", "is_active", "vip_tier", "risk_profile", "segment" } do
    out[k] = row[k] == nil and json.null or row[k]
  end
  return out
end

--- add_tokens(admin, user_id, amount, reason, ip, idempotency_key) ->
--- {new_balance}: the admin grant (§13.2): AMOUNT_NOT_POSITIVE unless
--- amount > 0; USER_NOT_FOUND; the audit row user.tokens_add (with the
--- optional reason) and the ledger row admin_grant referencing it
--- (audit:<id>, actor the admin), in one transaction.
function M.add_tokens(admin, user_id, amount, reason, ip, idempotency_key)
  if amount <= 0 then errors.raise("AMOUNT_NOT_POSITIVE") end
  return store.tx(function()
    if not store.one("SELECT id FROM users WHERE id = $1 FOR SHARE", user_id) then errors.raise("USER_NOT_FOUND") end
    local audit_id = events_log.audit(admin.id, "user.tokens_add", "user", user_id,
      { amount = amount, reason = reason or json.null }, ip)
    local after = wallet.change(user_id, { tokens = amount }, {
      reason = "admin_grant", reference = "audit:" .. audit_id, actor_id = admin.id, idempotency_key = idempotency_key,
    })
    return { new_balance = after.tokens }
  end)
end

--- reload_scripts(admin, ip) -> {generation, at}: reloads this host's
--- scripts (two-phase, every worker), audited (scripts.reload) whatever the
--- outcome; a refused generation is RELOAD_REFUSED with its error. With
--- several hosts, call it on each (or SIGHUP each): a reload is per host.
function M.reload_scripts(admin, ip)
  local r = host.scripts.reload()
  store.tx(function()
    events_log.audit(admin.id, "scripts.reload", "scripts", r.generation, { ok = r.ok, error = r.error }, ip)
  end)
  if not r.ok then errors.raise("RELOAD_REFUSED", r.error) end
  return r
end

return M
