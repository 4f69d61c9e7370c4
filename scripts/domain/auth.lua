--[[ auth.lua - passwords, tokens, sessions and the per-request authenticator
(CONTRACT.md §4, §6, §13.2 ban rule).

Passwords: argon2id PHC strings with ARGON2_MEMORY_KIB / ARGON2_ITERATIONS,
rehashed at the next successful login when those change. Unknown site_ids are
verified against a dummy hash made with the same parameters (so a miss costs
what a hit costs).

Tokens: an access JWT per session (sessions.access_jti is the one live jti;
issuing a new one kills the old) and an opaque refresh token family per
session (32 CSPRNG bytes, base64url, stored as SHA-256 hex). Each refresh
rotates; presenting a rotated token again revokes the whole family.

Per-request state cache (Redis, DESIGN.md "Scaling out"). Keys carry the
user's hash tag so they stay in one cluster slot:
  cc:sess:{<user_id>}:<jti>  JSON {g, r, user, sid, exp, lu} or {g, r, user,
                             dead}, TTL CACHE_TTL_S: the user and session
                             state for one access token (dead: no live
                             session for it)
  cc:sess:{<user_id>}:gen    the user's cache generation (INCR, no TTL)
A request reads both with one MGET; an entry counts only when its `g` equals
the current generation and its `r` equals the current Redis dataset (below).
auth.invalidate_user(user_id) INCRs the generation, which drops every entry
of the user at once: no index to keep, and a request that read the database
before a change cannot resurrect the old state, since it writes its entry
tagged with the generation it saw before reading. Every revoke, logout, ban,
unban, rank or admin change calls it, after the commit and before the answer
leaves. The generation key has no TTL on purpose: it must outlive every entry
written under an older value (Redis must not evict it: use noeviction or a
volatile-* policy). The database write of sessions.last_used_at (at most once
a minute) reloads the entry; otherwise a live session costs one Redis round
trip per request. If Redis fails, the state is read from PostgreSQL (never
laxer); if an invalidation cannot reach Redis, stale entries live at most
CACHE_TTL_S.

Redis is a cache, never the authority, and it can go back in time: a restart
from a snapshot or an AOF, or a failover to a lagging replica, brings back
old entries together with the generation they were written under, while the
INCR that revoked them is gone. So `r` tags each entry with the dataset that
answered the MGET, "<run_id>/<master_replid>" (redis.run_id, redis.repl_id:
what the host's INFO read when it connected, taken right after the reply so
it names the server that sent it), and entries of another dataset never
count. Every start of redis-server draws a new run_id, and every promotion to
master a new master_replid (an old master that was demoted, resynced from a
lagging replica and promoted again keeps its run_id). FLUSHALL keeps both,
but it empties the cache, generations included, so nothing stale survives
it. With no dataset known (Redis down, INFO refused by an ACL, or a replica
at the Redis address, whose dataset a resync can replace at any moment)
entries are neither trusted nor written: the state comes from PostgreSQL.
]]
local host = require "host"
local json = require "json"
local redis = require "host.redis"
local errors = require "lib.errors"
local store = require "lib.store"
local text = require "lib.text"
local events_log = require "domain.events_log"
local progress = require "domain.progress"

local crypto, config = host.crypto, host.config
local floor, ceil, max = math.floor, math.ceil, math.max

local M = {}

local CACHE_TTL_S = 120
local TOUCH_INTERVAL_S = 60 -- sessions.last_used_at is written at most this often


----------------------------------------------------------------- ranks (§6)

--- rank_level(rank) -> 1 STANDARD, 2 PREMIUM, 3 VIP, 0 anything else.
M.rank_level = require("lib.rbac").level

------------------------------------------------------------- passwords (§4.1)

local function argon2_params()
  return config.get("ARGON2_MEMORY_KIB"), config.get("ARGON2_ITERATIONS")
end

--- hash_password(pw) -> PHC string (argon2id, configured cost; yields).
function M.hash_password(pw)
  local mem, iter = argon2_params()
  return assert(crypto.argon2id_hash(pw, mem, iter))
end

--- verify_password(hash, pw) -> boolean (yields; false for a malformed hash).
function M.verify_password(hash, pw)
  return crypto.argon2id_verify(hash, pw) == true
end

-- Dummy hash for unknown site_ids, made once per generation and parameter set.
local dummy = {}

local function verify_dummy(pw)
  local mem, iter = argon2_params()
  local key = mem .. ":" .. iter
  dummy[key] = dummy[key] or M.hash_password("not-a-user-" .. key)
  M.verify_password(dummy[key], pw)
  return false
end

--- check_password(user_row | nil, pw) -> boolean: verifies pw against the
--- user's hash (the dummy when there is no user, so timing does not reveal
--- existence) and, on success, rehashes when the cost parameters changed.
function M.check_password(user, pw)
  if not user then return verify_dummy(pw) end
  if not M.verify_password(user.password_hash, pw) then return false end
  local mem, iter = argon2_params()
  if crypto.argon2id_needs_rehash(user.password_hash, mem, iter) then
    store.query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user.id, M.hash_password(pw))
  end
  return true
end

------------------------------------------------------------------ users (§4.2)

--- user_response(user_row) -> the auth UserResponse of CONTRACT.md §4.2.
function M.user_response(u)
  return {
    id = u.id, site_id = u.site_id, nickname = u.nickname, phone_number = u.phone_number,
    is_active = u.is_active, is_admin = u.is_admin, rank = u.vip_tier,
    created_at = u.created_at, last_login = u.last_login or u.created_at,
  }
end

-- The columns of req.user (never the password hash).
local USER_COLUMNS = "u.id, u.site_id, u.nickname, u.phone_number, u.invite_code, u.vip_tier, u.is_admin, "
  .. "u.is_active, u.banned_until, u.ban_reason, u.risk_profile, u.segment, u.created_at, u.updated_at, "
  .. "u.last_login, extract(epoch FROM u.banned_until)::float8 AS banned_until_epoch"

--- load_user(user_id [, for_update]) -> users row (with password_hash) | nil.
function M.load_user(user_id, for_update)
  return store.one("SELECT " .. USER_COLUMNS .. ", u.password_hash FROM users u WHERE u.id = $1"
    .. (for_update and " FOR UPDATE" or ""), user_id)
end

--- find_user_by_site_id(site_id) -> users row (with password_hash) | nil;
--- exact, case-sensitive.
function M.find_user_by_site_id(site_id)
  return store.one("SELECT " .. USER_COLUMNS .. ", u.password_hash FROM users u WHERE u.site_id = $1", site_id)
end

------------------------------------------------------------------ bans (§13.2)

-- Banned while is_active is false and banned_until is null or in the future.
local function banned_at(u, now)
  return u.is_active == false and (u.banned_until_epoch == nil or u.banned_until_epoch > now)
end

--- is_banned(user_row) -> boolean. A ban whose banned_until has passed is
--- lifted in the row (and the user's cache dropped); the row passed in is
--- updated to match.
function M.is_banned(u)
  if u.is_active ~= false then return false end
  if banned_at(u, host.time.now()) then return true end
  local row = store.one("UPDATE users SET is_active = true, banned_until = NULL, ban_reason = NULL, updated_at = now() "
    .. "WHERE id = $1 AND is_active = false AND banned_until <= now() RETURNING id", u.id)
  if row then
    host.log.info("ban expired", { user_id = u.id })
    store.after_commit(function() M.invalidate_user(u.id) end)
  end
  u.is_active, u.banned_until, u.ban_reason, u.banned_until_epoch = true, nil, nil, nil
  return false
end

----------------------------------------------------------------- cache (§4.4)

local function cache_key(user_id, jti) return "cc:sess:{" .. user_id .. "}:" .. jti end
local function gen_key(user_id) return "cc:sess:{" .. user_id .. "}:gen" end

--- invalidate_user(user_id): drops every cached session entry of the user
--- (bumps the user's cache generation). Call it after any change to the
--- user's sessions, ban state, rank or admin flag has committed (inside a
--- transaction, through db.after_commit). Returns true, or nil, err when
--- Redis cannot be reached (entries then expire within CACHE_TTL_S).
function M.invalidate_user(user_id)
  local ok, err = redis.call("INCR", gen_key(user_id))
  if not ok then
    host.log.warn("session cache invalidation failed", { user_id = user_id, error = tostring(err) })
    return nil, err
  end
  return true
end

-- invalidate_user once the current transaction commits (at once outside one).
local function invalidate_after_commit(user_id)
  store.after_commit(function() M.invalidate_user(user_id) end)
end

-- The session and user state for a token, from PostgreSQL: {user, sid, exp,
-- lu} or {user, dead = true} (no live session) or nil (no such user). Writes
-- last_used_at when it is older than TOUCH_INTERVAL_S (the one write).
local function load_state(user_id, jti)
  local row = store.one(
    "WITH touch AS (UPDATE sessions SET last_used_at = now() WHERE access_jti = $2 AND user_id = $1 AND is_active "
      .. "AND expires_at > now() AND last_used_at < now() - interval '" .. TOUCH_INTERVAL_S .. " seconds' RETURNING id) "
      .. "SELECT " .. USER_COLUMNS .. ", s.id AS sid, extract(epoch FROM s.expires_at)::float8 AS s_exp, "
      .. "extract(epoch FROM CASE WHEN EXISTS (SELECT 1 FROM touch) THEN now() ELSE s.last_used_at END)::float8 AS s_lu "
      .. "FROM users u LEFT JOIN sessions s ON s.access_jti = $2 AND s.user_id = u.id AND s.is_active "
      .. "AND s.expires_at > now() WHERE u.id = $1",
    user_id, jti)
  if not row then return nil end
  local state = { user = row, sid = row.sid, exp = row.s_exp, lu = row.s_lu, dead = row.sid == nil or nil }
  row.sid, row.s_exp, row.s_lu = nil, nil, nil
  return state
end

-- The dataset of the Redis server the connection talks to now (see the
-- header: entries count only on the dataset they were written on), or nil
-- when it is unknown.
local function redis_dataset()
  local run_id, repl_id = redis.run_id(), redis.repl_id()
  return run_id and repl_id and run_id .. "/" .. repl_id
end

-- Cache entries this worker has decoded, by their text. Decoding one (about
-- 400 bytes of JSON) was a twelfth of what a slot spin cost the host, and a
-- session's entry stays the same text for up to TOUCH_INTERVAL_S of its
-- requests. The decoded tables are shared: read only (check_access_token
-- hands out a copy of the user). Dropped whole at DECODED_MAX entries.
local DECODED_MAX = 10000
local decoded, decoded_count = {}, 0

local function decoded_entry(text)
  local entry = decoded[text]
  if entry == nil then
    entry = json.decode(text)
    if entry == nil then return nil end
    if decoded_count >= DECODED_MAX then decoded, decoded_count = {}, 0 end
    decoded[text], decoded_count = entry, decoded_count + 1
  end
  return entry
end

-- Reads the state of (user_id, jti): cache first (one MGET), else the
-- database, refilling the cache under the generation and dataset read first.
-- A state from the cache is shared with other requests: read only.
local function session_state(user_id, jti)
  local key = cache_key(user_id, jti)
  local reply = redis.call("MGET", key, gen_key(user_id))
  local dataset = reply and redis_dataset() -- before anything yields: the MGET's server
  local gen
  if dataset then
    gen = tonumber(reply[2]) or 0
    local entry = type(reply[1]) == "string" and decoded_entry(reply[1])
    if type(entry) == "table" and entry.g == gen and entry.r == dataset and type(entry.user) == "table"
      and (entry.dead or host.time.now() - entry.lu < TOUCH_INTERVAL_S) then
      return entry
    end
  end
  local state = load_state(user_id, jti)
  -- Written only to the dataset whose generation it carries (an entry for
  -- another one would never count).
  if state and dataset and redis_dataset() == dataset then
    state.g, state.r = gen, dataset
    local ok, err = redis.call("SET", key, json.encode(state), "EX", CACHE_TTL_S)
    if not ok then host.log.warn("session cache write failed", { error = tostring(err) }) end
  end
  return state
end

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

-- True when the verified claims carry every claim of §4.1, well typed.
local function claims_complete(c)
  return type(c) == "table" and type(c.sub) == "string" and type(c.user_id) == "number"
    and c.user_id == floor(c.user_id) and c.user_id > 0 and c.user_id <= 9007199254740991
    and type(c.is_admin) == "boolean"
    and type(c.rank) == "string" and type(c.iat) == "number" and type(c.exp) == "number"
    and type(c.jti) == "string" and c.jti:find(UUID) ~= nil
end

local SPACE = { [9] = true, [10] = true, [11] = true, [12] = true, [13] = true, [32] = true } -- Lua's %s

--- bearer(req) -> credentials: the Bearer token of the Authorization header,
--- or raises the 403s of §4.4 (no header; other scheme or empty credentials).
--- Read by hand, not by a pattern: a trailing `(.-)%s*$` retried the rest
--- of the pattern at every byte of the token, on every request.
function M.bearer(req)
  local h = req.headers.authorization
  local first = h and h:find("%S")
  if not first then errors.raise("NOT_AUTHENTICATED") end
  local last = #h
  while SPACE[h:byte(last)] do last = last - 1 end
  local gap = h:find("%s", first)
  local cred_at = gap and h:find("%S", gap)
  local scheme = h:sub(first, (gap or last + 1) - 1)
  if scheme:lower() ~= "bearer" or not cred_at or cred_at > last then errors.raise("BAD_AUTH_SCHEME") end
  return h:sub(cred_at, last)
end

-- Access tokens this worker has verified, by their text: their claims.
-- Verifying (base64, three JSON parses and an HMAC) was a tenth of what a
-- slot spin cost the host, and the same text verifies the same way under
-- the worker's secret, which is set once per process. So a token seen valid
-- is checked again only for its times (exp and nbf, as jwt.c does, in whole
-- seconds). Revocation is not the token's business: the session state
-- decides it on every request. Dropped whole at VERIFIED_MAX tokens.
local VERIFIED_MAX = 20000
local verified, verified_count = {}, 0

-- verified_claims(token) -> complete claims, or raises TOKEN_INVALID (for a
-- malformed, forged or expired token alike, as before: §4.4).
local function verified_claims(token)
  local now = floor(host.time.now())
  local claims = verified[token]
  if claims and claims.exp > now and (claims.nbf == nil or claims.nbf <= now) then return claims end
  claims = host.jwt.verify(token)
  if not claims_complete(claims) then errors.raise("TOKEN_INVALID") end
  if verified_count >= VERIFIED_MAX then verified, verified_count = {}, 0 end
  if not verified[token] then verified_count = verified_count + 1 end
  verified[token] = claims
  return claims
end

--- check_access_token(token) -> user, session_id, claims: runs the 401 checks
--- of §4.4 in order on an access token (raising the matching 401). user is
--- the caller's own table; claims are shared with later requests of the
--- same token: read only.
function M.check_access_token(token)
  local claims = verified_claims(token)
  local state = session_state(claims.user_id, claims.jti)
  if not state then errors.raise("TOKEN_USER_GONE") end
  local user = state.user
  if claims.sub ~= user.site_id then errors.raise("TOKEN_INVALID") end
  if M.is_banned(user) then errors.raise("ACCOUNT_DEACTIVATED") end
  if state.dead or state.exp <= host.time.now() then errors.raise("SESSION_GONE") end
  local own = {}
  for k, v in pairs(user) do own[k] = v end
  return own, state.sid, claims
end

-- The authenticator of every route whose auth is not "none" (§4.4, §6).
local function authenticate(req, route)
  local user, sid, claims = M.check_access_token(M.bearer(req))
  if route.auth == "admin" and not user.is_admin then errors.raise("ADMIN_REQUIRED") end
  if route.auth == "rank" and M.rank_level(user.vip_tier) < M.rank_level(route.rank) then
    errors.raise("RANK_REQUIRED", tostring(route.rank))
  end
  user.banned_until_epoch = nil
  req.user, req.session_id, req.claims = user, sid, claims
  return user
end

host.set_authenticator(authenticate)

------------------------------------------------------------ sessions (§4.1)

local function access_lifetime_s()
  return max(1, floor(config.get("JWT_EXPIRE_MINUTES") * 60))
end

local function refresh_lifetime_s()
  return max(1, floor(config.get("REFRESH_TOKEN_EXPIRE_DAYS") * 86400))
end

local function sign_access(user, jti)
  local now = floor(host.time.now())
  return host.jwt.sign {
    sub = user.site_id, user_id = user.id, is_admin = user.is_admin == true, rank = user.vip_tier,
    iat = now, exp = now + access_lifetime_s(), jti = jti,
  }
end

--- new_refresh_token() -> token, sha256 hex of it.
local function new_refresh_token()
  local token = crypto.base64url(crypto.random_bytes(32))
  return token, crypto.sha256_hex(token)
end

local function insert_refresh(session_id, user_id)
  local token, hash = new_refresh_token()
  local row = store.one("INSERT INTO refresh_tokens (session_id, user_id, token_hash, expires_at) "
    .. "VALUES ($1, $2, $3, now() + $4::float8 * interval '1 second') RETURNING id, expires_at",
    session_id, user_id, hash, refresh_lifetime_s())
  store.query("UPDATE sessions SET expires_at = $2 WHERE id = $1", session_id, row.expires_at)
  return token, row.id
end

--- token_response(user, access_token, refresh_token) -> the Token of §4.2.
function M.token_response(user, access, refresh)
  return {
    access_token = access, refresh_token = refresh, token_type = "bearer",
    expires_in = access_lifetime_s(), user = M.user_response(user),
  }
end

-- Revokes the active sessions matching `where` ($1 is the reason) with their
-- refresh tokens; returns how many, and the user id of the first.
local function revoke_where(where, reason, ...)
  local rows = store.query("UPDATE sessions SET is_active = false, revoked_at = now(), revoked_reason = $1 "
    .. "WHERE is_active AND " .. where .. " RETURNING id, user_id", reason, ...)
  if #rows == 0 then return 0 end
  local ids = {}
  for i, r in ipairs(rows) do ids[i] = r.id end
  store.query("UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND session_id = ANY($1::bigint[])",
    "{" .. table.concat(ids, ",") .. "}")
  -- The sockets those sessions opened close with 4401 on every host (§14.2).
  store.after_commit(function()
    for _, id in ipairs(ids) do host.ws.close_session(id, 4401) end
  end)
  return #rows, rows[1].user_id
end

--- revoke_session(session_id, reason) -> count (0 or 1): revokes one
--- session, its refresh token family and thereby its access token.
function M.revoke_session(session_id, reason)
  local n, user_id = revoke_where("id = $2", reason, session_id)
  if user_id then invalidate_after_commit(user_id) end
  return n
end

--- revoke_user_sessions(user_id, reason [, except_session_id]) -> count:
--- revokes every active session (and refresh token) of the user but the
--- excepted one, drops the user's cache entries and closes the sockets of
--- the revoked sessions with 4401 (a ban closes every socket of the user).
--- Inside a transaction the cache and socket work runs after the commit.
function M.revoke_user_sessions(user_id, reason, except_session_id)
  local n
  if except_session_id then
    n = revoke_where("user_id = $2 AND id <> $3", reason, user_id, except_session_id)
  else
    n = revoke_where("user_id = $2", reason, user_id)
  end
  invalidate_after_commit(user_id)
  if reason == "banned" then
    store.after_commit(function() host.ws.close_user(user_id, 4401) end)
  end
  return n
end

local function request_meta(req)
  if not req then return nil, nil end
  local ua = req.headers and req.headers["user-agent"]
  -- headers are raw bytes: stored as text, they must be valid UTF-8
  return ua and text.repair(ua:sub(1, 512)), M.client_ip(req)
end

--- issue(user, req) -> Token: creates a session for the user (revoking the
--- oldest active ones beyond MAX_CONCURRENT_SESSIONS as "superseded"), its
--- refresh token and access token. Must run inside a db.tx; req (optional)
--- supplies the user agent and client IP recorded on the session.
function M.issue(user, req)
  store.query("SELECT id FROM users WHERE id = $1 FOR UPDATE", user.id) -- serialises logins of one user
  local limit = config.get("MAX_CONCURRENT_SESSIONS")
  if limit > 0 then
    local n = revoke_where("id IN (SELECT id FROM sessions WHERE user_id = $2 AND is_active "
      .. "ORDER BY created_at DESC, id DESC OFFSET $3)", "superseded", user.id, limit - 1)
    if n > 0 then invalidate_after_commit(user.id) end
  end
  local jti = crypto.uuid()
  local ua, ip = request_meta(req)
  local s = store.one("INSERT INTO sessions (user_id, access_jti, expires_at, user_agent, ip_address) "
    .. "VALUES ($1, $2, now() + $3::float8 * interval '1 second', $4, $5) RETURNING id",
    user.id, jti, refresh_lifetime_s(), ua, ip)
  local refresh = insert_refresh(s.id, user.id)
  return M.token_response(user, sign_access(user, jti), refresh)
end

-- New access jti and refresh token for a live session whose current refresh
-- token (if any) is rotated; returns the Token.
local function rotate(session_id, user, old_token_id)
  local jti = crypto.uuid()
  store.query("UPDATE sessions SET access_jti = $2, last_used_at = now() WHERE id = $1", session_id, jti)
  local refresh, new_id = insert_refresh(session_id, user.id)
  if old_token_id then
    store.query("UPDATE refresh_tokens SET rotated_at = now(), replaced_by = $2 WHERE id = $1", old_token_id, new_id)
  end
  invalidate_after_commit(user.id)
  return M.token_response(user, sign_access(user, jti), refresh)
end

--- refresh_with_token(token) -> Token: rotates the family of an opaque
--- refresh token (§4.7). Raises 401 invalid (unknown, malformed, expired,
--- family revoked), 401 revoked (reuse: the family is revoked first) or 401
--- deactivated (banned user).
function M.refresh_with_token(token)
  if #token ~= 43 or token:find("[^%w_-]") then errors.raise("TOKEN_INVALID") end
  local outcome, result = store.tx(function()
    local rt = store.one("SELECT t.id, t.session_id, t.user_id, t.rotated_at, t.revoked_at, "
      .. "t.expires_at > now() AS fresh, s.is_active AS session_active FROM refresh_tokens t "
      .. "JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = $1 FOR UPDATE OF t, s", crypto.sha256_hex(token))
    if not rt or rt.revoked_at or not rt.session_active then return "invalid" end
    if rt.rotated_at then
      M.revoke_session(rt.session_id, "reuse_detected")
      host.log.warn("refresh token reuse: family revoked", { user_id = rt.user_id, session_id = rt.session_id })
      return "reused"
    end
    if not rt.fresh then return "invalid" end
    local user = M.load_user(rt.user_id)
    if M.is_banned(user) then return "banned" end
    return "ok", rotate(rt.session_id, user, rt.id)
  end)
  if outcome == "invalid" then errors.raise("TOKEN_INVALID") end
  if outcome == "reused" then errors.raise("TOKEN_REVOKED") end
  if outcome == "banned" then errors.raise("ACCOUNT_DEACTIVATED") end
  return result
end

--- refresh_with_access_token(token) -> Token: the earlier API's refresh with
--- a still-valid access token: every §4.4 check, then the session rotates.
function M.refresh_with_access_token(token)
  local user, sid, claims = M.check_access_token(token)
  return store.tx(function()
    local live = store.one("SELECT id FROM sessions WHERE id = $1 AND access_jti = $2 AND is_active FOR UPDATE",
      sid, claims.jti)
    if not live then errors.raise("SESSION_GONE") end
    local current = store.one("SELECT id FROM refresh_tokens WHERE session_id = $1 AND rotated_at IS NULL "
      .. "AND revoked_at IS NULL ORDER BY id DESC LIMIT 1 FOR UPDATE", sid)
    return rotate(sid, user, current and current.id)
  end)
end

--- logout(token, body_refresh_token): revokes the session of a genuine
--- access token (expiry ignored) and, when it belongs to the same user, the
--- family of the given refresh token. Anything unusable is ignored.
function M.logout(token, refresh_token)
  local claims, err, expired = host.jwt.verify(token)
  if not claims and err == "expired" then claims = expired end
  if not claims_complete(claims) then return end
  store.tx(function()
    M.revoke_session_by_jti(claims.user_id, claims.jti, "logout")
    if type(refresh_token) == "string" and refresh_token ~= "" then
      local rt = store.one("SELECT session_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2",
        crypto.sha256_hex(refresh_token), claims.user_id)
      if rt then M.revoke_session(rt.session_id, "logout") end
    end
  end)
end

--- revoke_session_by_jti(user_id, jti, reason) -> count.
function M.revoke_session_by_jti(user_id, jti, reason)
  local n = revoke_where("user_id = $2 AND access_jti = $3", reason, user_id, jti)
  if n > 0 then invalidate_after_commit(user_id) end
  return n
end

------------------------------------------------------------- client IP (§4.6)

local trusted_cache = {}

local function trusted_set()
  local list = config.get("TRUSTED_PROXIES")
  local set = trusted_cache[list]
  if not set then
    set = {}
    for addr in list:gmatch("[^,%s]+") do set[addr] = true end
    trusted_cache[list] = set
  end
  return set
end

--- client_ip(req) -> the TCP peer, or when the peer is a trusted proxy the
--- rightmost X-Forwarded-For address that is not itself a trusted proxy.
function M.client_ip(req)
  local peer = req.remote_addr
  local trusted = trusted_set()
  local xff = req.headers and req.headers["x-forwarded-for"]
  if not (peer and trusted[peer] and xff) then return peer end
  local hops = {}
  for addr in xff:gmatch("[^,%s]+") do hops[#hops + 1] = addr end
  for i = #hops, 1, -1 do
    if not trusted[hops[i]] then return text.repair(hops[i]:sub(1, 45)):sub(1, 45) end
  end
  return hops[1] and text.repair(hops[1]:sub(1, 45)):sub(1, 45) or peer
end

------------------------------------------------------- login and lockout (§4.6)


local function record_attempt(site_id, user_id, success, reason, ip, ua)
  if not success then host.metrics.add("cc_login_failures_total", { reason = reason }) end
  store.query("INSERT INTO login_attempts (site_id, user_id, success, failure_reason, ip_address, user_agent) "
    .. "VALUES ($1, $2, $3, $4, $5, $6)", text.repair(site_id:sub(1, 64)), user_id, success, reason, ip, ua)
end

-- Seconds until fewer than `limit` counted failures remain in the window,
-- or nil when not locked: the limit-th newest failure leaves the window then.
local function lock_remaining(where, window_s, limit, ...)
  local row = store.one("SELECT extract(epoch FROM created_at + $1::float8 * interval '1 second' - now())::float8 AS left "
    .. "FROM login_attempts WHERE failure_reason = 'invalid_credentials' AND created_at > now() - $1::float8 * interval '1 second' "
    .. "AND " .. where .. " ORDER BY created_at DESC OFFSET $2 LIMIT 1", window_s, limit - 1, ...)
  if row and row.left > 0 then return max(1, ceil(row.left)) end
  return nil
end

--- lockout(site_id, ip) -> retry_after_seconds | nil: the per-IP lock, then
--- the per-site_id lock (failures younger than the window and than the
--- site_id's latest successful login).
function M.lockout(site_id, ip)
  if ip then
    local left = lock_remaining("ip_address = $3", config.get("LOGIN_IP_WINDOW_MINUTES") * 60,
      config.get("LOGIN_IP_MAX_FAILED_ATTEMPTS"), ip)
    if left then return left end
  end
  return lock_remaining("site_id = $3 AND created_at > coalesce((SELECT max(created_at) FROM login_attempts "
      .. "WHERE site_id = $3 AND success), '-infinity')",
    config.get("LOGIN_LOCKOUT_MINUTES") * 60, config.get("LOGIN_MAX_FAILED_ATTEMPTS"), site_id)
end

--- login(req, site_id, password, admin_only) -> Token: the steps of §4.6
--- (admin_only: the admin login's rule and texts). Raises 429 with
--- Retry-After, 401 or 403 as the contract says.
function M.login(req, site_id, password, admin_only)
  local ua, ip = request_meta(req)
  local retry = M.lockout(site_id, ip)
  if retry then
    record_attempt(site_id, nil, false, "locked_out", ip, ua)
    errors.raise_with("LOGIN_LOCKED", { ["Retry-After"] = tostring(retry) })
  end
  local user = M.find_user_by_site_id(site_id)
  local ok = M.check_password(user, password)
  if not ok or (admin_only and not user.is_admin) then
    record_attempt(site_id, user and user.id, false, "invalid_credentials", ip, ua)
    errors.raise(admin_only and "ADMIN_LOGIN_FAILED" or "LOGIN_FAILED")
  end
  if M.is_banned(user) then
    record_attempt(site_id, user.id, false, "inactive", ip, ua)
    errors.raise("LOGIN_DEACTIVATED")
  end
  return store.tx(function()
    local u = store.one("UPDATE users u SET last_login = now() WHERE id = $1 RETURNING " .. USER_COLUMNS, user.id)
    u.banned_until_epoch = nil
    record_attempt(site_id, u.id, true, nil, ip, ua)
    local token = M.issue(u, req)
    progress.emit(u.id, { kind = "login" }) -- mission and event progress (§12.3), in this transaction
    events_log.action(u.id, "LOGIN", { ip = ip, admin = admin_only == true })
    events_log.outbox("user_actions", "user.login", { user_id = u.id, site_id = u.site_id, admin = admin_only == true })
    return token
  end)
end

return M
