-- admin_users.lua - admin user mutations of the accounts area (CONTRACT.md
-- §13.2: rank, ban, unban) and script reload (§13.6). Every mutation writes
-- its admin_audit row and outbox event in the same transaction, and drops the
-- user's cached session state so the change applies on the very next request.
local host = require "host"
local auth = require "domain.auth"
local accounts = require "domain.accounts"

local RANKS = { "STANDARD", "PREMIUM", "VIP" }
local USER_ID = { { name = "user_id", type = "integer", required = true, ge = 1, example = 1 } }

host.route {
  method = "PUT", path = "/api/admin/users/{user_id:int}/rank", auth = "admin", tags = { "Admin" },
  summary = "Change a user's rank", operation_id = "admin_set_rank", moves_money = false,
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
  params = USER_ID,
  handler = function(req)
    accounts.unban(req.user, req.params.user_id, auth.client_ip(req))
    return { success = true, message = "User " .. req.params.user_id .. " has been unbanned" }
  end,
}

host.route {
  method = "GET", path = "/api/admin/scripts", auth = "admin", tags = { "Admin" },
  summary = "Script generation and last reload", operation_id = "admin_scripts_status", moves_money = false,
  handler = function()
    return host.scripts.status()
  end,
}

host.route {
  method = "POST", path = "/api/admin/scripts/reload", auth = "admin", tags = { "Admin" },
  summary = "Reload the Lua scripts", operation_id = "admin_scripts_reload", moves_money = false,
  destructive = true,
  handler = function(req)
    local r = accounts.reload_scripts(req.user, auth.client_ip(req))
    return { success = true, generation = r.generation, loaded_at = r.at }
  end,
}
