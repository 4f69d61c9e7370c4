--[[ catalogue.lua - the mission and event definitions that play progress
(CONTRACT.md §12.3) checks, kept in each worker's memory and exact.

Every play counts for missions and events, but the definitions change only
when someone edits them. Asking the database, on every play, which missions
and events the play advances cost two statements and a round trip. So each
worker keeps the active definitions in memory, tagged with
engagement_catalogue.version, which a statement trigger bumps in the
transaction of every change to missions or events (migration 0006: admin
routes, migrations and hand-written SQL alike). A transaction reads the
version with its xid (db.read_with_xid: no statement of its own; a read-only
transaction or a plain query queues one) and reloads the definitions, in
one statement and so one snapshot, only when the version moved. The cache
can be cold, never stale: a play never counts against definitions older
than its own transaction sees.

What the cache decides is only which statements a play needs; the
statements themselves still name the definitions in SQL (missions.lua,
events.lua), so the database stays the authority.
]]
local db = require "host.db"
local store = require "lib.store"

local M = {}

local VERSION = "SELECT version FROM engagement_catalogue"

-- One statement, one snapshot: the version and the definitions it tags.
-- Event bounds as epoch seconds (clamped: an infinite date has none).
local LOAD = "SELECT (SELECT version FROM engagement_catalogue) AS version, "
  .. "(SELECT coalesce(json_agg(json_build_object('id', m.id, 'mission_type', m.mission_type, "
  .. "'reset_period', m.reset_period, 'target_type', m.target_type, 'requirements', m.requirements) "
  .. "ORDER BY m.id), '[]') FROM missions m WHERE m.is_active AND m.deleted_at IS NULL) AS missions, "
  .. "(SELECT coalesce(json_agg(json_build_object('id', e.id, 'requirements', e.requirements, "
  .. "'starts', extract(epoch FROM greatest(e.start_date, '0001-01-01'::timestamptz)), "
  .. "'ends', extract(epoch FROM least(e.end_date, '9999-12-31'::timestamptz))) ORDER BY e.id), '[]') "
  .. "FROM events e WHERE e.is_active AND e.deleted_at IS NULL) AS events"

db.read_with_xid("catalogue_version", VERSION)

local cached = { version = nil, missions = {}, events = {} }

--- get() -> {version, missions, events}: the active, non-deleted
--- definitions as the current transaction sees them (inside one with an
--- xid, the version comes with the xid, however often get() is called;
--- otherwise one query each call). missions: {id, mission_type, reset_period, target_type,
--- requirements} by id; events: {id, requirements, starts, ends} by id
--- (epoch seconds; liveness is the caller's, on its own clock). Read only.
--- A new table exactly when the version moved: callers may key their own
--- memory on it (missions.lua's completed rows).
function M.get()
  local vars = db.tx_local()
  if vars and vars.catalogue_version == nil then
    vars.catalogue_version = db.xid_read("catalogue_version") or false -- false: read only
  end
  local version, err = nil, "not read with the xid"
  if vars and vars.catalogue_version then version, err = vars.catalogue_version() end
  if version == nil and err then -- outside a transaction or in a read-only one: a query of its own
    local rows = store.query(VERSION)
    version = rows[1] and rows[1].version
  end
  -- nil only if someone deleted the row: load every time
  if version == nil or version ~= cached.version then
    local row = store.one(LOAD)
    cached = { version = row.version, missions = row.missions, events = row.events }
  end
  return cached
end

return M
