-- rbac.lua - the rank-gated probe routes (CONTRACT.md §6). The authenticator
-- enforces the rank (auth "rank" with route.rank) against the current
-- database row, before the handler runs: a lower rank gets 403
-- "Insufficient rank: requires R", and admins get no bypass.
local host = require "host"

for _, required in ipairs { "PREMIUM", "VIP" } do
  host.route {
    method = "GET", path = "/api/rbac/" .. required:lower(),
    auth = "rank", rank = required,
    tags = { "RBAC" }, summary = "Reachable with rank " .. required .. " or higher",
    operation_id = "rbac_" .. required:lower(), moves_money = false,
    responses = { [200] = '{"ok": true, "required": "' .. required .. '"}' },
    handler = function()
      return { ok = true, required = required }
    end,
  }
end
