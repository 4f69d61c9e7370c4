-- docs.lua - GET /openapi.json (CONTRACT.md §16): the OpenAPI 3.1 document
-- of this generation's routes (lib/openapi.lua), the bytes `cchost openapi`
-- prints under the same settings. Rendered on the first request and kept
-- for the generation's life: a reload loads this module afresh. Swagger UI
-- (/docs) and ReDoc (/redoc) read it; their pages and assets are static
-- files the host serves from STATIC_MOUNTS (host/static.c), not routes.
local host = require "host"
local openapi = require "lib.openapi"

local text

host.route {
  method = "GET", path = "/openapi.json", auth = "none", tags = { "System" },
  summary = "The OpenAPI document of the loaded scripts", operation_id = "openapi_document", moves_money = false,
  responses = { [200] = "OpenAPI 3.1 JSON" },
  handler = function()
    text = text or openapi.render(host.routes())
    return 200, text, { ["Cache-Control"] = "no-cache" }
  end,
}
