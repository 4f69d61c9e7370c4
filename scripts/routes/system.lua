-- system.lua - service routes: root, API index and health (CONTRACT.md §16).
local host = require "host"
local health = require "domain.health"

local VERSION = "1.0.0"

host.route {
  method = "GET", path = "/", tags = { "System" }, summary = "Service banner",
  operation_id = "root", moves_money = false,
  responses = { [200] = "Service banner: message, version, status, docs" },
  handler = function()
    return { message = "Casino-Club F2P Backend API", version = VERSION, status = "running", docs = "/docs" }
  end,
}

host.route {
  method = "GET", path = "/api", tags = { "System" }, summary = "API index",
  operation_id = "api_index", moves_money = false,
  responses = { [200] = "The API's name, version and the root path of each area" },
  handler = function()
    return {
      name = "Casino-Club F2P API",
      version = VERSION,
      endpoints = {
        auth = "/api/auth", users = "/api/users", invite = "/api/invite", games = "/api/games",
        fairness = "/api/fairness", rewards = "/api/rewards", events = "/api/events",
        notifications = "/api/notifications", actions = "/api/actions", rbac = "/api/rbac",
        admin = "/api/admin", websocket = "/ws/notifications/{user_id}", docs = "/docs",
      },
    }
  end,
}

-- Health: 200 "healthy" or 503 "degraded"; `checks` names what is down
-- (domain/health.lua).
host.route {
  method = "GET", path = "/health", tags = { "System" }, summary = "Health and script generation",
  operation_id = "health", moves_money = false,
  responses = {
    [200] = "Healthy: database and Redis reachable; the script generation and last reload",
    [503] = "Degraded: the same body, status degraded, checks naming what is down",
  },
  handler = function()
    local checks, healthy = health.checks()
    return healthy and 200 or 503, {
      status = healthy and "healthy" or "degraded",
      timestamp = host.time.iso(),
      version = VERSION,
      checks = checks,
      scripts = host.scripts.status(),
    }
  end,
}
