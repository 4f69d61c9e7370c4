-- missions.lua - the player's missions (CONTRACT.md §12.2): the daily,
-- weekly and complete lists of the current periods, progress of the
-- client-tracked missions, and the claim of a completed mission's rewards
-- (by mission id; honours Idempotency-Key). Thin: domain/missions.lua
-- creates the period rows, advances, claims, and owns the automatic
-- progress of plays and logins (§12.3), which it registers when this file
-- loads it.
local host = require "host"
local idempotency = require "domain.idempotency"
local missions = require "domain.missions"

local TAGS = { "Events & Missions" }

-- The list routes: daily, weekly, and all (mission_type nil).
for _, l in ipairs {
  { "daily", "daily", "Daily missions of the current day" },
  { "weekly", "weekly", "Weekly missions of the current week" },
  { "all", nil, "Daily, weekly and achievement missions of their current periods" },
} do
  host.route {
    method = "GET", path = "/api/events/missions/" .. l[1], auth = "user",
    tags = TAGS, summary = l[3], operation_id = "missions_" .. l[1], moves_money = false,
    responses = { [200] = "UserMission list of the current periods" },
    handler = function(req)
      return missions.list(req.user.id, l[2])
    end,
  }
end

host.route {
  method = "PUT", path = "/api/events/missions/progress", auth = "user",
  tags = TAGS, summary = "Report progress of a client-tracked mission", operation_id = "missions_progress",
  responses = {
    [200] = "updated, completed_missions, missions", [400] = { "MISSION_SERVER_TRACKED" },
    [404] = { "MISSION_NOT_FOUND" }, [422] = true,
  },
  moves_money = false,
  body = {
    { name = "mission_id", type = "integer", required = true, ge = 1, example = 1 },
    { name = "progress_increment", type = "integer", required = true, ge = 1, example = 1 },
  },
  handler = function(req)
    return missions.report_progress(req.user.id, req.body.mission_id, req.body.progress_increment)
  end,
}

host.route {
  method = "POST", path = "/api/events/missions/claim/{mission_id:int}", auth = "user",
  tags = TAGS, summary = "Claim a completed mission's rewards (by mission id)", operation_id = "missions_claim",
  responses = {
    [200] = "success, rewards, message, balances", [400] = { "CANNOT_CLAIM", "BALANCE_LIMIT" },
    [404] = { "MISSION_NOT_FOUND" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  params = { { name = "mission_id", type = "integer", required = true, ge = 1, example = 1,
               description = "the mission's id (Mission.id), not the user_missions row id" } },
  handler = idempotency.wrap(function(req)
    local r = missions.claim(req.user.id, req.params.mission_id, idempotency.key(req))
    return { success = true, rewards = r.rewards, message = "미션 보상을 성공적으로 수령했습니다!", balances = r.balances }
  end),
}
