--[[ openapi.lua - `cchost openapi`: prints the OpenAPI document of the
scripts, byte for byte what GET /openapi.json serves under the same settings
(the same generation built from the same files and configuration; neither
needs PostgreSQL or Redis). For generating clients or linting without a
running host:

  cchost openapi > openapi.json
]]
local host = require "host"
local openapi = require "lib.openapi"

host.tool {
  name = "openapi",
  description = "print the OpenAPI 3.1 document (what GET /openapi.json serves)",
  run = function(args)
    if args[1] ~= nil then
      host.stdout("usage: cchost openapi\n", true)
      return 2
    end
    host.stdout(openapi.render(host.routes()))
    return 0
  end,
}
