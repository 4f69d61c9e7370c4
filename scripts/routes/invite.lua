-- invite.lua - /api/invite: generate, validate, list, deactivate, stats
-- (CONTRACT.md §5.1); the rules live in domain/invite.lua.
local host = require "host"
local auth = require "domain.auth"
local invite = require "domain.invite"

local TAGS = { "Invite Codes" }

host.route {
  method = "POST", path = "/api/invite/generate", auth = "user", tags = TAGS, operation_id = "invite_generate",
  responses = { [200] = "InviteCode", [403] = { "INVITE_ADMIN_ONLY" }, [422] = true },
  summary = "Generate an invite code (admins only)", moves_money = false,
  query = {
    { name = "expires_in_days", type = "integer", default = 30, ge = 0, le = 3650, example = 7 },
    { name = "max_uses", type = "integer", default = 1, ge = 0, le = 1000000, example = 1 },
  },
  handler = function(req)
    return invite.generate(req.user, req.query.expires_in_days, req.query.max_uses, auth.client_ip(req))
  end,
}

host.route {
  method = "POST", path = "/api/invite/validate", auth = "none", tags = TAGS, operation_id = "invite_validate",
  responses = {
    [200] = "Always 200: is_valid, error_message (the first failing rule), code, expires_at, remaining_uses",
    [422] = true,
  },
  summary = "Check whether an invite code is usable now", moves_money = false,
  body = { { name = "code", type = "string", required = true, min_length = 1, max_length = 64, example = "5858" } },
  handler = function(req) return invite.validate(req.body.code) end,
}

host.route {
  method = "GET", path = "/api/invite/codes", auth = "user", tags = TAGS, operation_id = "invite_list",
  responses = { [200] = "InviteCode list, newest first" },
  summary = "Invite codes, newest first (admins: all; others: their own)", moves_money = false,
  handler = function(req) return invite.list(req.user) end,
}

host.route {
  method = "PATCH", path = "/api/invite/codes/{code}/deactivate", auth = "user", tags = TAGS,
  operation_id = "invite_deactivate", summary = "Deactivate an invite code", moves_money = false,
  responses = {
    [200] = "{\"message\": \"Invite code deactivated successfully\"}", [403] = { "INVITE_NOT_OWNER" },
    [404] = { "INVITE_NOT_FOUND" }, [422] = true,
  },
  params = { { name = "code", type = "string", required = true, example = "NOPE2345" } },
  handler = function(req)
    invite.deactivate(req.user, req.params.code, auth.client_ip(req))
    return { message = "Invite code deactivated successfully" }
  end,
}

host.route {
  method = "GET", path = "/api/invite/stats", auth = "user", tags = TAGS, operation_id = "invite_stats",
  responses = { [200] = "total_codes, active_codes, expired_codes, total_uses" },
  summary = "Invite code statistics (admins: global; others: their own)", moves_money = false,
  handler = function(req) return invite.stats(req.user) end,
}
