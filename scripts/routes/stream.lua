-- stream.lua - the domain event stream's routes (CONTRACT.md §15): actions
-- a player reports, the admin's peek at a stream, and the outbox relay
-- timer every worker runs (domain/stream.lua says why that is safe).
local host = require "host"
local stream = require "domain.stream"

host.route {
  method = "POST", path = "/api/actions", auth = "user", tags = { "Events stream" },
  summary = "Record an action of the player", operation_id = "actions_create", moves_money = false,
  responses = { [200] = "success, id, action_type, created_at", [400] = { "RESERVED_ACTION_TYPE" }, [422] = true },
  body = {
    { name = "action_type", type = "string", required = true, min_length = 1, max_length = 50,
      pattern = "^[A-Z][A-Z0-9_]*$", example = "TUTORIAL_DONE" },
    { name = "action_data", type = "object", default = {}, example = { step = 3 } },
  },
  handler = function(req)
    return stream.record_action(req.user.id, req.body.action_type, req.body.action_data)
  end,
}

host.route {
  method = "GET", path = "/api/admin/stream/peek", auth = "admin", tags = { "Events stream" },
  summary = "The newest entries of a domain event stream", operation_id = "admin_stream_peek", moves_money = false,
  responses = {
    [200] = "topic, stream, items (newest first), count", [422] = true, [503] = { "STREAM_UNAVAILABLE" },
  },
  query = {
    { name = "topic", type = "string", required = true, enum = stream.TOPICS, example = "game_events" },
    { name = "count", type = "integer", default = 20, ge = 1, le = 200, example = 20 },
  },
  handler = function(req) return stream.peek(req.query.topic, req.query.count) end,
}

host.every(function() return host.config.get("OUTBOX_RELAY_INTERVAL_MS") / 1000 end, function()
  local ok, err = pcall(stream.drain)
  if not ok and not host.is_http_error(err) then host.log.error("outbox relay failed", { error = tostring(err) }) end
end)
