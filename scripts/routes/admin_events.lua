-- admin_events.lua - events administration (CONTRACT.md §13.4): list,
-- create, update, soft delete, publish, deactivate, participations and
-- force-claim. Thin: domain/events.lua checks what a declaration cannot
-- (dates, currency rewards, order of dates) and writes every mutation with
-- its audit row.
local host = require "host"
local auth = require "domain.auth"
local events = require "domain.events"
local idempotency = require "domain.idempotency"

local TAGS = { "Admin Events" }
local EVENT_ID = { { name = "event_id", type = "integer", required = true, example = 1 } }
local INT32 = 2147483647

-- The create fields (required and defaulted as creation needs them), or
-- the same all optional for an update.
local function event_fields(creating)
  return {
    { name = "title", type = "string", required = creating, min_length = 1, max_length = 200,
      example = "Summer festival" },
    { name = "description", type = "string", nullable = true, example = "Play every day in August" },
    { name = "event_type", type = "string", required = creating, enum = { "daily", "weekly", "special" },
      example = "special" },
    { name = "start_date", type = "string", required = creating, example = "2025-08-01T00:00:00Z",
      description = "ISO-8601 date or date-time; no zone means UTC" },
    { name = "end_date", type = "string", required = creating, example = "2025-08-31T00:00:00Z",
      description = "ISO-8601, after start_date" },
    { name = "rewards", type = "object", required = creating, example = { tokens = 100 },
      description = "tokens, gold, gems, exp (non-negative integers) are credited; other keys are returned only" },
    { name = "requirements", type = "object", default = creating and {} or nil, example = { level = 5 } },
    { name = "image_url", type = "string", nullable = true, example = "https://example.com/event.png" },
    { name = "priority", type = "integer", default = creating and 0 or nil, ge = -INT32 - 1, le = INT32, example = 0 },
  }
end

local UPDATE_FIELDS = event_fields(false)
UPDATE_FIELDS[#UPDATE_FIELDS + 1] = { name = "is_active", type = "boolean", example = true }

local function page(max)
  return {
    { name = "limit", type = "integer", default = 50, ge = 1, le = max, example = 50 },
    { name = "offset", type = "integer", default = 0, ge = 0, example = 0 },
  }
end

local function with(fields, more)
  for _, f in ipairs(more) do fields[#fields + 1] = f end
  return fields
end

host.route {
  method = "GET", path = "/api/admin/events/", auth = "admin", tags = TAGS,
  summary = "Events, priority first, newest first", operation_id = "admin_events_list", moves_money = false,
  responses = { [200] = "Events, priority first, newest first", [422] = true },
  query = with({
    { name = "q", type = "string", max_length = 200, example = "festival", description = "title contains (any case)" },
    { name = "active", type = "boolean", example = true },
    { name = "include_deleted", type = "boolean", default = false, example = false },
  }, page(200)),
  handler = function(req)
    return events.admin_list(req.user, req.query)
  end,
}

host.route {
  method = "POST", path = "/api/admin/events/", auth = "admin", tags = TAGS,
  summary = "Create an event (active)", operation_id = "admin_events_create", moves_money = false,
  responses = { [201] = "Event (active)", [400] = { "DATES_OUT_OF_ORDER" }, [422] = true },
  body = event_fields(true),
  handler = function(req)
    return 201, events.create(req.user, req.body, auth.client_ip(req))
  end,
}

host.route {
  method = "PUT", path = "/api/admin/events/{event_id:int}", auth = "admin", tags = TAGS,
  summary = "Change any of an event's fields", operation_id = "admin_events_update", moves_money = false,
  responses = {
    [200] = "Event", [400] = { "DATES_OUT_OF_ORDER" }, [404] = { "ADMIN_EVENT_NOT_FOUND" }, [422] = true,
  },
  params = EVENT_ID, body = UPDATE_FIELDS,
  handler = function(req)
    return events.update(req.user, req.params.event_id, req.body, auth.client_ip(req))
  end,
}

host.route {
  method = "DELETE", path = "/api/admin/events/{event_id:int}", auth = "admin", tags = TAGS,
  summary = "Soft-delete an event (participations stay)", operation_id = "admin_events_delete", moves_money = false,
  responses = { [204] = "Deleted (soft: participations stay)", [404] = { "ADMIN_EVENT_NOT_FOUND" }, [422] = true },
  params = EVENT_ID,
  handler = function(req)
    events.delete(req.user, req.params.event_id, auth.client_ip(req))
    return 204, nil
  end,
}

host.route {
  method = "POST", path = "/api/admin/events/{event_id:int}/publish", auth = "admin", tags = TAGS,
  summary = "Set an event active (or inactive)", operation_id = "admin_events_publish", moves_money = false,
  responses = { [200] = "Event", [404] = { "ADMIN_EVENT_NOT_FOUND" }, [422] = true },
  params = EVENT_ID,
  body = { { name = "is_active", type = "boolean", default = true, example = true } },
  handler = function(req)
    return events.publish(req.user, req.params.event_id, req.body.is_active, auth.client_ip(req))
  end,
}

host.route {
  method = "POST", path = "/api/admin/events/{event_id:int}/deactivate", auth = "admin", tags = TAGS,
  summary = "Set an event inactive", operation_id = "admin_events_deactivate", moves_money = false,
  responses = { [200] = "Event (is_active false)", [404] = { "ADMIN_EVENT_NOT_FOUND" }, [422] = true },
  params = EVENT_ID,
  handler = function(req)
    return events.deactivate(req.user, req.params.event_id, auth.client_ip(req))
  end,
}

host.route {
  method = "GET", path = "/api/admin/events/{event_id:int}/participations", auth = "admin", tags = TAGS,
  summary = "An event's participations, newest first", operation_id = "admin_events_participations",
  responses = { [200] = "items (newest first), total", [404] = { "ADMIN_EVENT_NOT_FOUND" }, [422] = true },
  moves_money = false,
  params = EVENT_ID,
  query = with({
    { name = "completed", type = "boolean", example = true },
    { name = "claimed", type = "boolean", example = false },
  }, page(500)),
  handler = function(req)
    return events.participations(req.params.event_id, req.query)
  end,
}

host.route {
  method = "POST", path = "/api/admin/events/{event_id:int}/force-claim/{user_id:int}", auth = "admin", tags = TAGS,
  summary = "Credit a participant's rewards regardless of completion, once",
  description = "Requires header X-Idempotency-Key (8-128 visible ASCII characters): a replay returns the first "
    .. "answer.",
  operation_id = "admin_events_force_claim", moves_money = true,
  responses = {
    [200] = "success, rewards, message; rewards {} when already claimed",
    [400] = { "FORCE_CLAIM_KEY_REQUIRED", "BALANCE_LIMIT" },
    [404] = { "ADMIN_EVENT_NOT_FOUND", "PARTICIPATION_NOT_FOUND" },
    [409] = { "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_IN_PROGRESS" }, [422] = true,
  },
  params = {
    { name = "event_id", type = "integer", required = true, example = 1 },
    { name = "user_id", type = "integer", required = true, example = 1 },
  },
  -- Documentation only: the handler checks the key (400, not 422, when absent).
  headers = { { name = "X-Idempotency-Key", type = "string", example = "force-claim-0001",
                description = "Required: 8-128 visible ASCII characters; a replay returns the first answer" } },
  handler = idempotency.wrap(function(req)
    return events.force_claim(req.user, req.params.event_id, req.params.user_id, req.headers["x-idempotency-key"],
      auth.client_ip(req))
  end, nil, "X-Idempotency-Key"),
}
