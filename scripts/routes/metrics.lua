-- metrics.lua - GET /metrics: the whole host's figures as Prometheus text
-- (CONTRACT.md §16; host/metrics.h says how every worker's counts meet in
-- shared memory). Not part of the API document: lib/openapi.lua leaves
-- /metrics out by path. The two figures only the stores know are read here,
-- each on its own: a store that is down leaves its gauge out of the scrape
-- rather than failing it.
local host = require "host"
local metrics = require "domain.metrics"
local crash = require "domain.crash"

local CONTENT_TYPE = { ["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8" }

local function read(fn)
  local ok, value = pcall(fn)
  return ok and type(value) == "number" and value or nil
end

host.route {
  method = "GET", path = "/metrics", tags = { "System" }, summary = "Prometheus metrics of the whole host",
  operation_id = "metrics", moves_money = false,
  responses = { [200] = "Prometheus text exposition format 0.0.4" },
  handler = function()
    return 200, host.metrics.render {
      cc_outbox_pending = read(metrics.outbox_pending),
      cc_crash_active_rounds = read(crash.active_rounds),
    }, CONTENT_TYPE
  end,
}
