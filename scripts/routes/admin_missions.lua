-- admin_missions.lua - missions administration (CONTRACT.md §13.5): list,
-- create, update, soft delete and (de)activate. Thin: domain/missions.lua
-- writes each change with its audit row in one transaction; a deleted
-- mission answers 404 "Mission not found" to every later call.
local host = require "host"
local auth = require "domain.auth"
local missions = require "domain.missions"

local TAGS = { "Admin Missions" }
local MISSION_TYPES = { "daily", "weekly", "achievement" }
local RESET_PERIODS = { "daily", "weekly", "never" }
local MISSION_ID = { { name = "mission_id", type = "integer", required = true, ge = 1, example = 1 } }

-- The mission fields of create (required as marked) and update (all
-- optional, nullable ones clearable with null, plus is_active).
local function mission_fields(create)
  local must = create or nil -- required on create only
  local fields = {
    { name = "title", type = "string", required = must, min_length = 1, max_length = 200, example = "퀴즈 3회 정답" },
    { name = "description", type = "string", nullable = true, max_length = 2000, example = "퀴즈를 3번 맞히세요" },
    { name = "mission_type", type = "string", required = must, enum = MISSION_TYPES, example = "daily" },
    { name = "category", type = "string", nullable = true, max_length = 50, example = "quiz" },
    { name = "target_value", type = "integer", required = must, ge = 1, example = 3 },
    { name = "target_type", type = "string", required = must, min_length = 1, max_length = 50, example = "quiz_correct",
      description = "play_count, win_count, gacha_pull, login, spend_tokens are tracked by the server; "
        .. "any other type is reported by the client" },
    { name = "rewards", type = "object", required = must, example = { tokens = 100 },
      description = "tokens, gold, gems, exp (non-negative integers) are credited; other keys are returned only" },
    { name = "requirements", type = "object", default = create and {} or nil, example = { game_type = "slot" },
      description = "game_type (slot, rps, gacha, crash) restricts which plays count" },
    { name = "reset_period", type = "string", nullable = true, enum = RESET_PERIODS, example = "daily",
      description = "null: daily and weekly missions reset with their type, achievements never" },
    { name = "icon", type = "string", nullable = true, max_length = 500, example = "quiz.png" },
    { name = "sort_order", type = "integer", default = create and 0 or nil, ge = -2147483648, le = 2147483647,
      example = 10 },
  }
  if not create then
    fields[#fields + 1] = { name = "is_active", type = "boolean", example = true }
  end
  return fields
end

host.route {
  method = "GET", path = "/api/admin/missions/", auth = "admin", tags = TAGS,
  summary = "Missions, sort_order then newest first", operation_id = "admin_missions_list", moves_money = false,
  responses = { [200] = "Missions, sort_order then newest first", [422] = true },
  query = {
    { name = "q", type = "string", max_length = 200, example = "10", description = "title contains (any case)" },
    { name = "type", type = "string", enum = MISSION_TYPES, example = "daily" },
    { name = "active", type = "boolean", example = true },
    { name = "include_deleted", type = "boolean", default = false, example = false },
    { name = "limit", type = "integer", default = 50, ge = 1, le = 200, example = 50 },
    { name = "offset", type = "integer", default = 0, ge = 0, example = 0 },
  },
  handler = function(req)
    return missions.admin_list(req.query)
  end,
}

host.route {
  method = "POST", path = "/api/admin/missions/", auth = "admin", tags = TAGS,
  summary = "Create a mission", operation_id = "admin_missions_create", moves_money = false,
  responses = { [201] = "Mission", [422] = true },
  body = mission_fields(true),
  handler = function(req)
    return 201, missions.create(req.user, req.body, auth.client_ip(req))
  end,
}

host.route {
  method = "PUT", path = "/api/admin/missions/{mission_id:int}", auth = "admin", tags = TAGS,
  summary = "Update any of a mission's fields", operation_id = "admin_missions_update", moves_money = false,
  responses = { [200] = "Mission", [404] = { "MISSION_NOT_FOUND" }, [422] = true },
  params = MISSION_ID, body = mission_fields(false),
  handler = function(req)
    return missions.update(req.user, req.params.mission_id, req.body, auth.client_ip(req))
  end,
}

host.route {
  method = "DELETE", path = "/api/admin/missions/{mission_id:int}", auth = "admin", tags = TAGS,
  summary = "Soft-delete a mission (users' rows kept, hidden from players)", operation_id = "admin_missions_delete",
  responses = { [204] = "Deleted (soft: users' rows stay)", [404] = { "MISSION_NOT_FOUND" }, [422] = true },
  moves_money = false, params = MISSION_ID,
  handler = function(req)
    missions.delete(req.user, req.params.mission_id, auth.client_ip(req))
    return 204, nil
  end,
}

host.route {
  method = "POST", path = "/api/admin/missions/{mission_id:int}/activate", auth = "admin", tags = TAGS,
  summary = "Activate (or, with is_active false, deactivate) a mission", operation_id = "admin_missions_activate",
  responses = { [200] = "Mission", [404] = { "MISSION_NOT_FOUND" }, [422] = true },
  moves_money = false, params = MISSION_ID,
  body = { { name = "is_active", type = "boolean", default = true, example = true } },
  handler = function(req)
    return missions.activate(req.user, req.params.mission_id, req.body.is_active, auth.client_ip(req))
  end,
}
