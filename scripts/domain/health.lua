-- health.lua - what /health reports (CONTRACT.md §16): can this worker reach
-- PostgreSQL and Redis right now. The database check waits at most for the
-- pool (DB_POOL_TIMEOUT_MS), the Redis check for one command deadline
-- (REDIS_COMMAND_TIMEOUT_MS), so /health stays quick while either is down.
local db = require "host.db"
local redis = require "host.redis"

local M = {}

--- checks() -> {database = "ok"|"error", redis = "ok"|"error"}, healthy.
function M.checks()
  local checks = {
    database = db.query("SELECT 1") and "ok" or "error",
    redis = redis.call("PING") == "PONG" and "ok" or "error",
  }
  return checks, checks.database == "ok" and checks.redis == "ok"
end

return M
