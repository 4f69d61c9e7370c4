--[[ stream.lua - the domain event stream (CONTRACT.md §15): the outbox
relay to Redis Streams, player-reported actions, and the admin's peek.

Every state change writes its outbox_events row in its own transaction
(domain/events_log.lua). The relay takes unrelayed rows in id order with
FOR UPDATE SKIP LOCKED, so any number of workers and hosts relay side by
side without taking the same row, XADDs each to cc:events:<topic> (MAXLEN ~
STREAM_MAXLEN) and marks the ones Redis took as relayed in the same
transaction. The XADDs of up to CHUNK rows go in one round trip, as one
server-side script (a round trip per row cost every play one more).
Delivery is at least once: a crash between the XADD and the commit, or a
script that fails part-way, sends rows again, and consumers deduplicate on
outbox_id. With Redis down nothing is marked, so nothing is lost: the relay
catches up when Redis is back.
]]
local host = require "host"
local json = require "json"
local redis = require "host.redis"
local errors = require "lib.errors"
local store = require "lib.store"
local events_log = require "domain.events_log"

local M = {}

M.TOPICS = { "user_actions", "game_events", "rewards", "admin_actions" }
local BATCH = 500

local function stream_key(topic) return "cc:events:" .. topic end

-- XADDs rows in order: ARGV = maxlen, then per row the index of its stream
-- in KEYS, outbox_id, event_type, payload, created_at.
local XADD_ROWS = [[
for i = 2, #ARGV, 5 do
  redis.call('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[1], '*', 'outbox_id', ARGV[i + 1],
    'event_type', ARGV[i + 2], 'payload', ARGV[i + 3], 'created_at', ARGV[i + 4])
end
return 1
]]
-- Rows per script call: 5 arguments a row keeps a call under the host's
-- 1024 arguments a command.
local CHUNK = 150

-- XADDs rows[first..last] in one round trip. Returns false when Redis did
-- not take them all (out of reach, or an error part-way: the rows go again
-- on the next pass and consumers deduplicate on outbox_id).
local function xadd_rows(rows, first, last, maxlen)
  local keys, index = {}, {}
  for i = first, last do
    local key = stream_key(rows[i].topic)
    if not index[key] then
      keys[#keys + 1] = key
      index[key] = #keys
    end
  end
  local args = { "EVAL", XADD_ROWS, #keys }
  for _, key in ipairs(keys) do args[#args + 1] = key end
  args[#args + 1] = maxlen
  for i = first, last do
    local r = rows[i]
    args[#args + 1] = tostring(index[stream_key(r.topic)])
    args[#args + 1] = tostring(r.id)
    args[#args + 1] = r.event_type
    args[#args + 1] = r.payload -- the JSON text PostgreSQL wrote: no decoding and encoding again
    args[#args + 1] = r.created_at
  end
  return redis.call(unpack(args)) ~= nil
end

-- Raised inside a pass to roll it back when Redis took none of its rows.
local NOTHING_SENT = setmetatable({}, { __tostring = function() return "relay: Redis took no row" end })

local function by_id(a, b) return a.id < b.id end

--- relay() -> rows relayed: one pass of the relay (see the top). Errors
--- other than Redis failing are raised (the timer logs them).
function M.relay()
  -- An idle pass only asks, outside a transaction: the transaction (its xid)
  -- would cost a commit record and a WAL flush with nothing to relay.
  if not store.one("SELECT true AS pending FROM outbox_events WHERE relayed_at IS NULL LIMIT 1") then return 0 end
  local ok, n = pcall(store.tx, function()
    -- One statement chooses, locks and marks the batch: its ids first (an
    -- InitPlan sorting ids alone, so the rows are then reached by primary
    -- key whatever the planner knows of the table), then those rows,
    -- marked and read out as JSON text. Rows Redis does not take are
    -- unmarked before the commit; when it takes none, the pass rolls back.
    local rows = store.query("UPDATE outbox_events SET relayed_at = now(), attempts = attempts + 1 "
      .. "WHERE id = ANY(ARRAY(SELECT id FROM outbox_events WHERE relayed_at IS NULL "
      .. "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) "
      .. "RETURNING id, topic, event_type, payload::text AS payload, created_at", BATCH)
    if #rows == 0 then return 0 end
    table.sort(rows, by_id)
    local maxlen, sent = tostring(host.config.get("STREAM_MAXLEN")), 0
    for first = 1, #rows, CHUNK do
      local last = math.min(first + CHUNK - 1, #rows)
      if not xadd_rows(rows, first, last, maxlen) then break end -- the rest waits for the next pass
      sent = last
    end
    if sent == 0 then error(NOTHING_SENT) end
    if sent < #rows then
      local rest = {}
      for i = sent + 1, #rows do rest[#rest + 1] = rows[i].id end
      store.query("UPDATE outbox_events SET relayed_at = NULL, attempts = attempts - 1 WHERE id = ANY($1::bigint[])",
        "{" .. table.concat(rest, ",") .. "}")
    end
    return sent
  end)
  if ok then return n end
  if n == NOTHING_SENT then return 0 end
  error(n, 0)
end

-- Passes one drain may make: see drain().
local DRAIN_PASSES = 20

--- drain() -> rows relayed: relay passes until one comes back short of a
--- full batch, at most DRAIN_PASSES (the relay timer's tick). One pass a
--- tick relayed at most BATCH rows per OUTBOX_RELAY_INTERVAL_MS, fewer than
--- a busy worker writes (a slot spin is a row; the spin benchmark makes
--- 2 800 a second): the outbox grew for as long as the load lasted, and
--- each pass sorted the whole backlog to take 500 of it (its read cost
--- 16 µs of PostgreSQL per row relayed; 2 µs once the relay keeps up).
function M.drain()
  local total = 0
  for _ = 1, DRAIN_PASSES do
    local n = M.relay()
    total = total + n
    if n < BATCH then break end
  end
  return total
end

-- user_actions types the server writes itself (§15).
local RESERVED = {
  SIGNUP = true, LOGIN = true, SLOT_SPIN = true, RPS_PLAY = true, GACHA_PULL = true, CRASH_BET = true,
  CRASH_CASHOUT = true, CRASH_LOST = true,
}

--- record_action(user_id, action_type, data) -> {success, id, action_type,
--- created_at}: a player-reported action (user_actions row and outbox
--- user.action in one transaction); the server's own types are
--- RESERVED_ACTION_TYPE.
function M.record_action(user_id, action_type, data)
  if RESERVED[action_type] then errors.raise("RESERVED_ACTION_TYPE") end
  return store.tx(function()
    local row = events_log.action(user_id, action_type, data)()
    events_log.outbox("user_actions", "user.action",
      { user_action_id = row.id, user_id = user_id, action_type = action_type, action_data = data or {} })
    return { success = true, id = row.id, action_type = action_type, created_at = row.created_at }
  end)
end

--- peek(topic, count) -> {topic, stream, items, count}: the newest count
--- entries of cc:events:<topic>, newest first; STREAM_UNAVAILABLE when
--- Redis cannot be reached.
function M.peek(topic, count)
  local entries = redis.call("XREVRANGE", stream_key(topic), "+", "-", "COUNT", tostring(count))
  if not entries then errors.raise("STREAM_UNAVAILABLE") end
  local items = json.array()
  for i, e in ipairs(entries) do
    local f = {}
    for k = 1, #e[2], 2 do f[e[2][k]] = e[2][k + 1] end
    items[i] = {
      id = e[1], outbox_id = tonumber(f.outbox_id), event_type = f.event_type,
      payload = f.payload and json.decode(f.payload) or json.null, created_at = f.created_at,
    }
  end
  return { topic = topic, stream = stream_key(topic), items = items, count = #items }
end

return M
