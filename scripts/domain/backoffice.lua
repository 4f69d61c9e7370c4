--[[ backoffice.lua - what the admin console reads (CONTRACT.md §13.1): the
overview figures, the users list and search, a user's detail and activity,
and the audit log. Read-only; the mutations live in domain/accounts.lua.

The users search is a case-insensitive substring match on nickname, site_id
and phone_number: the text is escaped (\, % and _ match themselves) and
matched with ILIKE, which pg_trgm's GIN indexes serve from three characters
on (migrations/0005_admin_search.sql). The overview is cached in Redis for
ADMIN_STATS_CACHE_S seconds (a console polls it); with Redis down it is
computed every time.
]]
local host = require "host"
local json = require "json"
local redis = require "host.redis"
local errors = require "lib.errors"
local store = require "lib.store"
local text = require "lib.text"
local auth = require "domain.auth"
local wallet = require "domain.wallet"

local M = {}

local STATS_KEY = "cc:admin:stats"

local function or_null(v)
  if v == nil then return json.null end
  return v
end

-- Absent columns become JSON null in every row (the console reads them all).
local function nulls(rows, columns)
  for _, r in ipairs(rows) do
    for _, c in ipairs(columns) do r[c] = or_null(r[c]) end
  end
  return rows
end

--- stats() -> {total_users, active_users (not banned), total_games_played,
--- total_tokens_in_circulation, total_gold_in_circulation,
--- total_gems_in_circulation}.
function M.stats()
  local ttl = host.config.get("ADMIN_STATS_CACHE_S")
  if ttl > 0 then
    local cached = redis.call("GET", STATS_KEY)
    if type(cached) == "string" then return json.decode(cached) end
  end
  local s = store.one("SELECT (SELECT count(*) FROM users) AS total_users, "
    .. "(SELECT count(*) FROM users WHERE is_active OR banned_until <= now()) AS active_users, "
    .. "(SELECT count(*) FROM game_plays) AS total_games_played, "
    .. "(SELECT coalesce(sum(balance), 0)::bigint FROM wallet_balances WHERE currency = 'tokens') AS tokens, "
    .. "(SELECT coalesce(sum(balance), 0)::bigint FROM wallet_balances WHERE currency = 'gold') AS gold, "
    .. "(SELECT coalesce(sum(balance), 0)::bigint FROM wallet_balances WHERE currency = 'gems') AS gems")
  local out = {
    total_users = s.total_users, active_users = s.active_users, total_games_played = s.total_games_played,
    total_tokens_in_circulation = s.tokens, total_gold_in_circulation = s.gold, total_gems_in_circulation = s.gems,
  }
  if ttl > 0 then redis.call("SET", STATS_KEY, json.encode(out), "PX", math.floor(ttl * 1000)) end
  return out
end

local ADMIN_USER = "u.id, u.site_id, u.nickname, u.phone_number, u.vip_tier, u.is_active, u.is_admin, "
  .. "u.risk_profile, u.segment, u.banned_until, u.created_at, u.last_login"

local BALANCES = "coalesce((SELECT jsonb_object_agg(currency, balance) FROM wallet_balances b "
  .. "WHERE b.user_id = u.id), '{}') AS balances"

-- A search's page is read one of two ways, chosen by how many users match
-- (the count comes first). PostgreSQL cannot estimate how many rows a
-- substring pattern matches, and a prepared statement is planned for no
-- pattern at all, so left to choose it sometimes walked the newest-first
-- index and filtered 15 000 users to find a page of a fragment that 269 of
-- them match: 9 ms instead of 0.5, and the benchmark's search p50 moved
-- between 8 and 100 ms from run to run. Few matches are collected first
-- (a MATERIALIZED CTE, which the trigram indexes serve) and sorted; many
-- are walked newest first, where a page comes after a few rows. The two
-- cost about the same at sqrt((offset + limit) * users / 2) matches.
local function collect_first(total, users, offset, limit)
  return total * total <= (offset + limit) * math.max(users, total) / 2
end

--- users(search, page, page_size) -> {items:[AdminUser], page, page_size,
--- total}: newest first (created_at, id), total counting every match.
function M.users(search, page, page_size)
  local where, args = "", {}
  if search and search ~= "" then
    where = " WHERE u.nickname ILIKE $1 OR u.site_id ILIKE $1 OR u.phone_number ILIKE $1"
    args[1] = text.like_pattern(search)
  end
  local n, offset = #args, (page - 1) * page_size
  local count = store.one("SELECT count(*) AS n, (SELECT reltuples::float8 FROM pg_class "
    .. "WHERE oid = 'users'::regclass) AS users FROM users u" .. where, unpack(args))
  args[n + 1], args[n + 2] = page_size, offset
  local limits = " ORDER BY u.created_at DESC, u.id DESC LIMIT $" .. (n + 1) .. " OFFSET $" .. (n + 2)
  local sql
  if where ~= "" and collect_first(count.n, count.users, offset, page_size) then
    sql = "WITH m AS MATERIALIZED (SELECT u.id, u.created_at FROM users u" .. where .. "), "
      .. "p AS (SELECT u.id FROM m u" .. limits .. ") "
      .. "SELECT " .. ADMIN_USER .. ", " .. BALANCES .. " FROM p JOIN users u ON u.id = p.id "
      .. "ORDER BY u.created_at DESC, u.id DESC"
  else
    sql = "SELECT " .. ADMIN_USER .. ", " .. BALANCES .. " FROM users u" .. where .. limits
  end
  local rows = store.query(sql, unpack(args))
  for _, r in ipairs(rows) do
    for _, c in ipairs(wallet.CURRENCIES) do r[c] = r.balances[c] or 0 end
    r.balances = nil
  end
  nulls(rows, { "risk_profile", "segment", "banned_until", "last_login" })
  return { items = rows, page = page, page_size = page_size, total = count.n }
end

--- detail(user_id) -> {user, balances, flags, recent = {activities,
--- rewards, ledger}} (the 10 newest of each); USER_NOT_FOUND.
function M.detail(user_id)
  local u = store.one("SELECT id, site_id, nickname, phone_number, vip_tier, is_active, is_admin, risk_profile, "
    .. "segment, banned_until, ban_reason, created_at, last_login, "
    .. "extract(epoch FROM banned_until)::float8 AS banned_until_epoch FROM users WHERE id = $1", user_id)
  if not u then errors.raise("USER_NOT_FOUND") end
  local flags = json.array()
  if u.is_admin then flags[#flags + 1] = "admin" end
  if auth.is_banned(u) then flags[#flags + 1] = "banned" end
  if auth.lockout(u.site_id) then flags[#flags + 1] = "locked" end
  u.banned_until_epoch = nil
  nulls({ u }, { "risk_profile", "segment", "banned_until", "ban_reason", "last_login" })
  local recent = {
    activities = store.query("SELECT id, action_type AS type, created_at AS at FROM user_actions "
      .. "WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10", user_id),
    rewards = store.query("SELECT id, reward_type AS type, awarded_at AS at FROM user_rewards "
      .. "WHERE user_id = $1 ORDER BY awarded_at DESC, id DESC LIMIT 10", user_id),
    ledger = nulls(store.query("SELECT id, currency, delta, balance_after, reason, reference, created_at AS at "
      .. "FROM wallet_ledger WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 10", user_id), { "reference" }),
  }
  return { user = u, balances = wallet.balances(user_id), flags = flags, recent = recent }
end

--- activities(user_id, page, page_size) -> {items:[{id, type, data, at}],
--- page, page_size, total}: user_actions newest first; USER_NOT_FOUND.
function M.activities(user_id, page, page_size)
  if not store.one("SELECT id FROM users WHERE id = $1", user_id) then errors.raise("USER_NOT_FOUND") end
  local total = store.one("SELECT count(*) AS n FROM user_actions WHERE user_id = $1", user_id).n
  local items = store.query("SELECT id, action_type AS type, action_data AS data, created_at AS at FROM user_actions "
    .. "WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    user_id, page_size, (page - 1) * page_size)
  return { items = items, page = page, page_size = page_size, total = total }
end

--- audit(filters) -> {items, total, limit, offset}: admin_audit newest
--- first, filtered by admin_id, action and target_id when given.
function M.audit(f)
  local where, args = {}, {}
  for _, c in ipairs { "admin_id", "action", "target_id" } do
    if f[c] ~= nil then
      args[#args + 1] = c == "target_id" and tostring(f[c]) or f[c]
      where[#where + 1] = c .. " = $" .. #args
    end
  end
  local clause = #where > 0 and " WHERE " .. table.concat(where, " AND ") or ""
  local n = #args
  local total = store.one("SELECT count(*) AS n FROM admin_audit" .. clause, unpack(args)).n
  args[n + 1], args[n + 2] = f.limit, f.offset
  local items = store.query("SELECT id, admin_id, action, target_type, target_id, payload, ip_address, created_at "
    .. "FROM admin_audit" .. clause .. " ORDER BY created_at DESC, id DESC LIMIT $" .. (n + 1) .. " OFFSET $" .. (n + 2),
    unpack(args))
  nulls(items, { "admin_id", "target_type", "target_id", "ip_address" })
  return { items = items, total = total, limit = f.limit, offset = f.offset }
end

return M
