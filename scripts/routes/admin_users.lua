-- admin_users.lua - the admin console's user routes (CONTRACT.md §13.1,
-- §13.2): overview, users list and search, detail, activities, the audit log,
-- PATCH, tokens add, rank, ban, unban, and script reload (§13.6). Thin:
-- domain/backoffice.lua reads, domain/accounts.lua changes (every mutation
-- with its audit row and outbox event in the same transaction, and the
-- user's cached session state dropped so it applies on the next request).
local host = require "host"
local json = require "json"
local errors = require "lib.errors"
local auth = require "domain.auth"
local accounts = require "domain.accounts"
local backoffice = require "domain.backoffice"
local idempotency = require "domain.idempotency"

local RANKS = { "STANDARD", "PREMIUM", "VIP" }
local USER_ID = { { name = "user_id", type = "integer", required = true, ge = 1, example = 1 } }
local TAGS = { "Admin" }

host.route {
  method = "GET", path = "/api/admin/stats", auth = "admin", tags = TAGS, moves_money = false,
  summary = "Users, plays and currency in circulation", operation_id = "admin_stats",
  responses = { [200] = "total_users, active_users, total_games_played and the currencies in circulation" },
  handler = function() return backoffice.stats() end,
}

host.route {
  method = "GET", path = "/api/admin/users", auth = "admin", tags = TAGS, moves_money = false,
  summary = "Users, newest first, searched by nickname, site_id or phone", operation_id = "admin_users_list",
  responses = { [200] = "items (AdminUser), page, page_size, total", [422] = true },
  query = {
    { name = "search", type = "string", max_length = 100, example = "pla",
      description = "case-insensitive substring; % _ and \\ match themselves" },
    { name = "page", type = "integer", default = 1, ge = 1, example = 1 },
    { name = "page_size", type = "integer", default = 20, ge = 1, le = 200, example = 20 },
  },
  handler = function(req) return backoffice.users(req.query.search, req.query.page, req.query.page_size) end,
}

host.route {
  method = "GET", path = "/api/admin/users/{user_id:int}", auth = "admin", tags = TAGS, moves_money = false,
  summary = "A user's account, balances, flags and recent history", operation_id = "admin_user_detail",
  responses = {
    [200] = "user, balances, flags, recent activities, rewards and ledger", [404] = { "USER_NOT_FOUND" },
    [422] = true,
  },
  params = USER_ID,
  handler = function(req) return backoffice.detail(req.params.user_id) end,
}

host.route {
  method = "GET", path = "/api/admin/users/{user_id:int}/activities", auth = "admin", tags = TAGS,
  moves_money = false, summary = "A user's actions, newest first", operation_id = "admin_user_activities",
  responses = { [200] = "items (newest first), page, page_size, total", [404] = { "USER_NOT_FOUND" }, [422] = true },
  params = USER_ID,
  query = {
    { name = "page", type = "integer", default = 1, ge = 1, example = 1 },
    { name = "page_size", type = "integer", default = 20, ge = 1, le = 200, example = 20 },
  },
  handler = function(req)
    return backoffice.activities(req.params.user_id, req.query.page, req.query.page_size)
  end,
}

host.route {
  method = "GET", path = "/api/admin/audit", auth = "admin", tags = TAGS, moves_money = false,
  summary = "The admin audit log, newest first", operation_id = "admin_audit_list",
  responses = { [200] = "items (newest first), total, limit, offset", [422] = true },
  query = {
    { name = "admin_id", type = "integer", ge = 1, example = 1 },
    { name = "action", type = "string", max_length = 64, example = "user.ban" },
    { name = "target_id", type = "string", max_length = 64, example = "1" },
    { name = "limit", type = "integer", default = 50, ge = 1, le = 500, example = 50 },
    { name = "offset", type = "integer", default = 0, ge = 0, example = 0 },
  },
  handler = function(req) return backoffice.audit(req.query) end,
}

host.route {
  method = "PATCH", path = "/api/admin/users/{user_id:int}", auth = "admin", tags = TAGS, moves_money = false,
  summary = "Change a user's profile, rank, flags or active state", operation_id = "admin_user_update",
  responses = {
    [200] = "id, nickname, phone_number, is_active, vip_tier, risk_profile, segment", [400] = { "CANNOT_BAN_SELF" },
    [404] = { "USER_NOT_FOUND" }, [409] = { "NICKNAME_CONFLICT", "PHONE_CONFLICT" }, [422] = true,
  },
  params = USER_ID,
  body = {
    { name = "nickname", type = "string", min_length = 2, max_length = 50, example = "player01" },
    { name = "phone_number", type = "string", min_length = 10, max_length = 15, example = "01012345678" },
    { name = "vip_tier", type = "string", enum = RANKS, example = "PREMIUM" },
    { name = "is_active", type = "boolean", example = true,
      description = "false: an indefinite ban (sessions revoked, sockets closed); true: unban" },
    { name = "risk_profile", type = "string", max_length = 32, nullable = true, example = "low" },
    { name = "segment", type = "string", max_length = 32, nullable = true, example = "whale" },
  },
  handler = function(req)
    return accounts.patch(req.user, req.params.user_id, req.body, auth.client_ip(req))
  end,
}

-- The grant amount comes from the query or the body; both given and
-- different is a 422 on the body's field (the declaration cannot say it).
local function grant_amount(req)
  local q, b = req.query.amount, req.body.amount
  if q ~= nil and b ~= nil and q ~= b then
    errors.validation({ { loc = { "body", "amount" }, type = "value_error", input = b,
                          msg = "Value error, amount differs from the query's amount" } })
  end
  if q == nil and b == nil then
    errors.validation({ { loc = { "query", "amount" }, type = "missing", msg = "Field required" } })
  end
  return q or b
end

host.route {
  method = "POST", path = "/api/admin/users/{user_id:int}/tokens/add", auth = "admin", tags = TAGS,
  summary = "Grant tokens to a user", operation_id = "admin_user_tokens_add", moves_money = true, idempotent = true,
  responses = {
    [200] = "success, message, new_balance, admin_id", [400] = { "AMOUNT_NOT_POSITIVE", "BALANCE_LIMIT" },
    [404] = { "USER_NOT_FOUND" }, [422] = true,
  },
  params = USER_ID,
  query = { { name = "amount", type = "integer", example = 100 } },
  body = {
    { name = "amount", type = "integer", example = 100 },
    { name = "reason", type = "string", max_length = 500, nullable = true, example = "support refund" },
  },
  handler = idempotency.wrap(function(req)
    local id, amount = req.params.user_id, grant_amount(req)
    local reason = req.body.reason ~= json.null and req.body.reason or nil
    local r = accounts.add_tokens(req.user, id, amount, reason, auth.client_ip(req), idempotency.key(req))
    return { success = true, message = "Added " .. amount .. " tokens to user " .. id, new_balance = r.new_balance,
             admin_id = req.user.id }
  end),
}

host.route {
  method = "PUT", path = "/api/admin/users/{user_id:int}/rank", auth = "admin", tags = { "Admin" },
  summary = "Change a user's rank", operation_id = "admin_set_rank", moves_money = false,
  responses = { [200] = "success, user_id, user_rank", [404] = { "USER_NOT_FOUND" }, [422] = true },
  params = USER_ID,
  body = { { name = "user_rank", type = "string", required = true, enum = RANKS, aliases = { "rank", "vip_tier" },
             example = "STANDARD" } },
  handler = function(req)
    local id, rank = req.params.user_id, req.body.user_rank
    accounts.set_rank(req.user, id, rank, auth.client_ip(req))
    return { success = true, user_id = id, user_rank = rank }
  end,
}

host.route {
  method = "POST", path = "/api/admin/users/{user_id:int}/ban", auth = "admin", tags = { "Admin" },
  summary = "Ban a user (timed or indefinite)", operation_id = "admin_ban_user", moves_money = false,
  responses = {
    [200] = "success, message, banned_until (null: indefinite), reason", [400] = { "CANNOT_BAN_SELF" },
    [404] = { "USER_NOT_FOUND" }, [422] = true,
  },
  params = USER_ID,
  body = {
    { name = "reason", type = "string", required = true, min_length = 1, max_length = 500, example = "abuse" },
    { name = "duration_hours", type = "integer", ge = 1, le = 87600, nullable = true, example = 24 },
    { name = "user_id", type = "any", description = "accepted and ignored (CONTRACT.md §13.2)" },
  },
  handler = function(req)
    local id, reason = req.params.user_id, req.body.reason
    local until_at = accounts.ban(req.user, id, reason, tonumber(req.body.duration_hours), auth.client_ip(req))
    return { success = true, message = "User " .. id .. " has been banned", banned_until = until_at, reason = reason }
  end,
}

host.route {
  method = "POST", path = "/api/admin/users/{user_id:int}/unban", auth = "admin", tags = { "Admin" },
  summary = "Lift a ban", operation_id = "admin_unban_user", moves_money = false,
  responses = { [200] = "success, message", [404] = { "USER_NOT_FOUND" }, [422] = true },
  params = USER_ID,
  handler = function(req)
    accounts.unban(req.user, req.params.user_id, auth.client_ip(req))
    return { success = true, message = "User " .. req.params.user_id .. " has been unbanned" }
  end,
}

host.route {
  method = "GET", path = "/api/admin/scripts", auth = "admin", tags = { "Admin" },
  summary = "Script generation and last reload", operation_id = "admin_scripts_status", moves_money = false,
  responses = { [200] = "generation, loaded_at, last_reload" },
  handler = function()
    return host.scripts.status()
  end,
}

host.route {
  method = "POST", path = "/api/admin/scripts/reload", auth = "admin", tags = { "Admin" },
  summary = "Reload the Lua scripts", operation_id = "admin_scripts_reload", moves_money = false,
  responses = {
    [200] = "success, generation, loaded_at",
    [400] = { "RELOAD_REFUSED",
              description = "The refused generation's error (file:line: message); the previous one keeps serving" },
  },
  destructive = true,
  handler = function(req)
    local r = accounts.reload_scripts(req.user, auth.client_ip(req))
    return { success = true, generation = r.generation, loaded_at = r.at }
  end,
}
