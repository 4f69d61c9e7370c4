--[[ routes.lua - `cchost routes [--json]`: the loaded generation's route
table (host.routes), as the host would serve it under the same settings
(FIXTURE_SCRIPTS adds the fixture routes, marked origin "fixtures").

--json prints the whole table as one JSON array (what specs and tools read:
the bad-input battery builds its requests from it); without it, one line per
route: method, path, auth, origin and the hints (money, idempotent,
destructive).
]]
local host = require "host"
local json = require "json"

host.tool {
  name = "routes",
  description = "the route table of the scripts: method, path, auth, schemas, hints (--json for all of it)",
  run = function(args)
    local routes = host.routes()
    if args[1] == "--json" then
      host.stdout(json.encode(routes) .. "\n")
      return 0
    elseif args[1] ~= nil then
      host.stdout("usage: cchost routes [--json]\n", true)
      return 2
    end
    for _, r in ipairs(routes) do
      local hints = {}
      for _, h in ipairs { "moves_money", "idempotent", "destructive" } do
        if r[h] then hints[#hints + 1] = h end
      end
      host.stdout(string.format("%-6s %-48s %-5s %-8s %s\n", r.method, r.path, r.auth, r.origin,
        table.concat(hints, ",")))
    end
    return 0
  end,
}
