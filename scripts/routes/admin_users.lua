-- admin_users.lua - admin user mutations of the accounts area (CONTRACT.md
-- §13.2: rank, ban, unban) and script reload (§13.6). Every mutation writes
-- its admin_audit row and outbox event in the same transaction, and drops the
-- user's cached session state so the change applies on the very next request.
local host = require "host"
local store = require "lib.store"
local log = require "domain.events_log"
local auth = require "domain.auth"

local RANKS = { "STANDARD", "PREMIUM", "VIP" }

local function user_or_404(user_id)
  local u = store.one("SELECT id, is_active, vip_tier FROM users WHERE id = $1 FOR UPDATE", user_id)
  if not u then host.error(404, "User not found") end
  return u
end

host.route {
  method = "PUT", path = "/api/admin/users/{user_id:int}/rank", auth = "admin", tags = { "Admin" },
  summary = "Change a user's rank", operation_id = "admin_set_rank",
  params = { { name = "user_id", type = "integer", required = true, ge = 1 } },
  body = { { name = "user_rank", type = "string", required = true, enum = RANKS, aliases = { "rank", "vip_tier" } } },
  handler = function(req)
    local id, rank = req.params.user_id, req.body.user_rank
    store.tx(function()
      local u = user_or_404(id)
      store.query("UPDATE users SET vip_tier = $2, updated_at = now() WHERE id = $1", id, rank)
      log.audit(req.user.id, "user.rank", "user", id, { from = u.vip_tier, to = rank }, auth.client_ip(req))
    end)
    auth.invalidate_user(id)
    return { success = true, user_id = id, user_rank = rank }
  end,
}

host.route {
  method = "POST", path = "/api/admin/users/{user_id:int}/ban", auth = "admin", tags = { "Admin" },
  summary = "Ban a user (timed or indefinite)", operation_id = "admin_ban_user",
  params = { { name = "user_id", type = "integer", required = true, ge = 1 } },
  body = {
    { name = "reason", type = "string", required = true, min_length = 1, max_length = 500 },
    { name = "duration_hours", type = "integer", ge = 1, le = 87600, nullable = true },
    { name = "user_id", type = "any" }, -- accepted and ignored (CONTRACT.md §13.2)
  },
  handler = function(req)
    local id, hours = req.params.user_id, tonumber(req.body.duration_hours)
    if id == req.user.id then host.error(400, "Cannot ban yourself") end
    local until_at = store.tx(function()
      user_or_404(id)
      local row = store.one("UPDATE users SET is_active = false, ban_reason = $2, updated_at = now(), "
        .. "banned_until = CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() + make_interval(hours => $3::int) END "
        .. "WHERE id = $1 RETURNING banned_until", id, req.body.reason, hours)
      log.audit(req.user.id, "user.ban", "user", id, { reason = req.body.reason, duration_hours = hours },
        auth.client_ip(req))
      return row.banned_until or false
    end)
    auth.revoke_user_sessions(id, "banned")
    return {
      success = true, message = "User " .. id .. " has been banned",
      banned_until = until_at or require("json").null, reason = req.body.reason,
    }
  end,
}

host.route {
  method = "POST", path = "/api/admin/users/{user_id:int}/unban", auth = "admin", tags = { "Admin" },
  summary = "Lift a ban", operation_id = "admin_unban_user",
  params = { { name = "user_id", type = "integer", required = true, ge = 1 } },
  handler = function(req)
    local id = req.params.user_id
    store.tx(function()
      user_or_404(id)
      store.query("UPDATE users SET is_active = true, banned_until = NULL, ban_reason = NULL, updated_at = now() "
        .. "WHERE id = $1", id)
      log.audit(req.user.id, "user.unban", "user", id, {}, auth.client_ip(req))
    end)
    auth.invalidate_user(id)
    return { success = true, message = "User " .. id .. " has been unbanned" }
  end,
}

host.route {
  method = "GET", path = "/api/admin/scripts", auth = "admin", tags = { "Admin" },
  summary = "Script generation and last reload", operation_id = "admin_scripts_status",
  handler = function()
    return host.scripts.status()
  end,
}

-- Reloads this host (every worker, two-phase). With several hosts, call it
-- on each (or SIGHUP each): a reload is per host by design.
host.route {
  method = "POST", path = "/api/admin/scripts/reload", auth = "admin", tags = { "Admin" },
  summary = "Reload the Lua scripts", operation_id = "admin_scripts_reload",
  handler = function(req)
    local r = host.scripts.reload()
    store.tx(function()
      log.audit(req.user.id, "scripts.reload", "scripts", r.generation,
        { ok = r.ok, error = r.error }, auth.client_ip(req))
    end)
    if not r.ok then host.error(400, r.error) end
    return { success = true, generation = r.generation, loaded_at = r.at }
  end,
}
