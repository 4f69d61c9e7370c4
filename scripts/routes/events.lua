-- events.lua - the player's events (CONTRACT.md §12.1): live list, detail,
-- join, progress and claim. Thin: domain/events.lua holds the rules, and
-- loading it here registers the progress that play earns (§12.3). The
-- /api/events/missions/… routes are routes/missions.lua's; event ids are
-- typed integers so those literal paths never reach these routes.
local host = require "host"
local events = require "domain.events"
local idempotency = require "domain.idempotency"

local TAGS = { "Events & Missions" }
local EVENT_ID = { { name = "event_id", type = "integer", required = true, example = 1 } }

host.route {
  method = "GET", path = "/api/events/", auth = "user", tags = TAGS,
  summary = "Live events, priority first, with the caller's participation", operation_id = "events_list",
  responses = { [200] = "Live events, priority first, with the caller's participation" },
  moves_money = false,
  handler = function(req)
    return events.list(req.user.id)
  end,
}

host.route {
  method = "GET", path = "/api/events/{event_id:int}", auth = "user", tags = TAGS,
  summary = "An event, also inactive or ended", operation_id = "events_get", moves_money = false,
  responses = { [200] = "Event", [404] = { "EVENT_NOT_FOUND" }, [422] = true },
  params = EVENT_ID,
  handler = function(req)
    return events.get(req.user.id, req.params.event_id)
  end,
}

host.route {
  method = "POST", path = "/api/events/join", auth = "user", tags = TAGS,
  summary = "Join a live event (joining again returns the same participation)", operation_id = "events_join",
  responses = {
    [200] = "Participation (the existing one when already joined)", [400] = { "EVENT_NOT_ACTIVE" },
    [404] = { "EVENT_NOT_FOUND" }, [422] = true,
  },
  moves_money = false,
  body = { { name = "event_id", type = "integer", required = true, example = 1 } },
  handler = function(req)
    return events.join(req.user.id, req.body.event_id)
  end,
}

host.route {
  method = "PUT", path = "/api/events/progress/{event_id:int}", auth = "user", tags = TAGS,
  summary = "Merge progress into the caller's participation (joining first)", operation_id = "events_progress",
  responses = {
    [200] = "Participation after the merge", [400] = { "EVENT_NOT_ACTIVE", "INVALID_PROGRESS_VALUE" },
    [404] = { "EVENT_NOT_FOUND" }, [422] = true,
  },
  moves_money = false,
  params = EVENT_ID,
  body = { { name = "progress", type = "object", required = true, example = { level = 1 },
             description = "merged into the stored progress (new keys win); server-tracked keys are ignored" } },
  handler = function(req)
    return events.update_progress(req.user.id, req.params.event_id, req.body.progress)
  end,
}

host.route {
  method = "POST", path = "/api/events/claim/{event_id:int}", auth = "user", tags = TAGS,
  summary = "Claim a completed event's rewards, once", operation_id = "events_claim",
  responses = {
    [200] = "success, rewards, message, balances", [400] = { "CANNOT_CLAIM", "BALANCE_LIMIT" },
    [404] = { "EVENT_NOT_FOUND" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  params = EVENT_ID,
  handler = idempotency.wrap(function(req)
    return events.claim(req.user.id, req.params.event_id, idempotency.key(req))
  end),
}
