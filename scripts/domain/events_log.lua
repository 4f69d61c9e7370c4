-- events_log.lua - the rows every state change leaves behind, written in the
-- caller's transaction: user actions (CONTRACT.md §9, §15), admin audit
-- (§13) and outbox events relayed to Redis Streams (§15). Actions and
-- outbox events are deferred (db.defer): nobody waits for their answer, so
-- they travel with the transaction's next statement or its COMMIT instead
-- of costing a round trip each; a failure still fails the transaction.
local store = require "lib.store"
local json = require "json"

local M = {}

local function object(t)
  if t == nil or next(t) == nil then return "{}" end
  return assert(json.encode(t))
end

--- action(user_id, action_type, data) -> row: queues a user_actions row;
--- row() -> {id, created_at} (sending the queue first if needed).
function M.action(user_id, action_type, data)
  local answer = store.defer("INSERT INTO user_actions (user_id, action_type, action_data) VALUES ($1, $2, $3::jsonb) "
    .. "RETURNING id, created_at", user_id, action_type, object(data))
  return function() return answer()[1] end
end

--- outbox(topic, event_type, payload): queues an outbox row, relayed at
--- least once after commit.
function M.outbox(topic, event_type, payload)
  store.defer("INSERT INTO outbox_events (topic, event_type, payload) VALUES ($1, $2, $3::jsonb)",
    topic, event_type, object(payload))
end

--- audit(admin_id, action, target_type, target_id, payload, ip) -> id, plus
--- the outbox `admin.action` event every admin mutation emits.
function M.audit(admin_id, action, target_type, target_id, payload, ip)
  local id = store.one("INSERT INTO admin_audit (admin_id, action, target_type, target_id, payload, ip_address) "
    .. "VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id",
    admin_id, action, target_type, target_id ~= nil and tostring(target_id) or nil, object(payload), ip).id
  M.outbox("admin_actions", "admin.action", { audit_id = id, admin_id = admin_id, action = action,
    target_type = target_type, target_id = target_id ~= nil and tostring(target_id) or nil, payload = payload })
  return id
end

return M
