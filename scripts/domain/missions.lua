--[[ missions.lua - missions (CONTRACT.md §12.2, §12.3, §13.5): the player's
lists, client-reported progress and claims, the automatic progress of
play and login, and the admin's mission CRUD.

Rows per period. A user_missions row belongs to one (user, mission,
period); period_start is the period's first instant ('-infinity' for a
mission that never resets) and reset_at its end. Every mission read first
creates the missing rows of the CURRENT period for every active,
non-deleted mission (ensure: one INSERT … ON CONFLICT DO NOTHING), and
progress creates the rows it advances, so daily and weekly missions reset,
and new missions get assigned, without any sweeper. Older rows stay as
history: they are never listed, never advanced and never claimable,
because every statement below names its rows by (mission, current
period_start). Periods come from lib/periods on clock.now()
(domain/clock.lua, the one clock that specs may shift), never from SQL's
now(); row timestamps (started_at, completed_at, claimed_at) keep the real
clock.

Progress only grows, capped at target_value; reaching the target sets
completed (and completed_at) once, and a completed row is never touched
again by progress, so it cannot revert. Server-tracked target types
advance only from the actions that earn them (progress.on_counts, inside
the action's transaction); the player may report only the other types.

Claims are exactly once: one conditional UPDATE (completed AND NOT
claimed) RETURNING the row, then the credit of its rewards with ledger
reference mission:<user_missions.id>, which the ledger's uniqueness also
refuses twice; both in one transaction with the outbox event. A claim
creates no rows (a current period without a row has nothing to claim), so
it never waits on a play's uncommitted new rows while that play holds the
wallet lock the claim is about to take.

Admin mutations write their audit row (mission.create|update|delete|
activate) in the same transaction. A deleted mission (deleted_at set,
inactive) keeps its users' rows but is hidden from players and answers
MISSION_NOT_FOUND to every later admin call.
]]
local json = require "json"
local errors = require "lib.errors"
local periods = require "lib.periods"
local store = require "lib.store"
local text = require "lib.text"
local catalogue = require "domain.catalogue"
local clock = require "domain.clock"
local events_log = require "domain.events_log"
local progress = require "domain.progress"
local rewards = require "domain.rewards"
local wallet = require "domain.wallet"

local M = {}

-- Target types only the server advances (§12.3); the progress endpoint
-- refuses them.
local SERVER_TRACKED = progress.SERVER_KEYS

-- The Mission shape (§12.2), in column order; the nullable columns answer
-- JSON null when NULL.
local MISSION_COLUMNS = { "id", "title", "description", "mission_type", "category", "target_value", "target_type",
  "rewards", "requirements", "reset_period", "icon", "is_active", "sort_order", "created_at" }
local NULLABLE = { description = true, category = true, reset_period = true, icon = true }
local MISSION_SELECT = table.concat(MISSION_COLUMNS, ", ")

-- The columns of user_missions in a UserMission; NULL ones answer null.
local ROW_COLUMNS = { "id", "user_id", "mission_id", "current_progress", "completed", "claimed", "started_at",
  "completed_at", "claimed_at", "reset_at" }

-- The columns an admin may set, in the order they are written.
local WRITABLE = { "title", "description", "mission_type", "category", "target_value", "target_type", "rewards",
  "requirements", "reset_period", "icon", "sort_order", "is_active" }

-- Mission (§12.2) of a row whose mission columns carry `prefix`.
local function mission_view(row, prefix)
  prefix = prefix or ""
  local m = { user_progress = json.null }
  for _, c in ipairs(MISSION_COLUMNS) do
    local v = row[prefix .. c]
    if v == nil and NULLABLE[c] then v = json.null end
    m[c] = v
  end
  return m
end

-- UserMission (§12.2) of a joined row (mission columns prefixed m_).
local function user_mission_view(row)
  local um = {}
  for _, c in ipairs(ROW_COLUMNS) do
    local v = row[c]
    if v == nil then v = json.null end
    um[c] = v
  end
  um.mission = mission_view(row, "m_")
  return um
end

local USER_MISSION_SELECT = (function()
  local cols = {}
  for _, c in ipairs(ROW_COLUMNS) do cols[#cols + 1] = "um." .. c end
  for _, c in ipairs(MISSION_COLUMNS) do cols[#cols + 1] = "m." .. c .. " AS m_" .. c end
  return table.concat(cols, ", ")
end)()

-- The last current_periods answer and the instants it holds for: the
-- periods change only at a reset, and every play asks (parsing the rules
-- and formatting four instants each time). A spec's clock shift may move
-- now either way: outside the window the periods are computed again.
local periods_now, periods_from, periods_until

-- The current period of each kind at now (default clock.now()): {start,
-- reset_at} as timestamptz texts ('-infinity' and nil for never). Shared
-- between calls: read only.
local function current_periods(now)
  now = now or clock.now()
  if periods_now and now >= periods_from and now < periods_until then return periods_now end
  local rules = clock.rules()
  local out, from, till = { never = { start = "-infinity" } }, -math.huge, math.huge
  for _, kind in ipairs { "daily", "weekly" } do
    local start, finish = periods.period(kind, now, rules)
    out[kind] = { start = clock.iso(start), reset_at = clock.iso(finish) }
    from, till = math.max(from, start), math.min(till, finish)
  end
  periods_now, periods_from, periods_until = out, from, till
  return out
end

-- ensure(user_id) -> the active, non-deleted missions {id, target_type,
-- requirements, period_start (current)}, by id, after creating the user's
-- missing rows of their current periods. Runs in the caller's transaction.
-- NOT EXISTS skips the rows already there (no identity value is drawn for
-- them); ON CONFLICT settles a concurrent insert of the same row.
local function ensure(user_id)
  local current = current_periods()
  local missions = store.query("SELECT id, mission_type, reset_period, target_type, requirements FROM missions "
    .. "WHERE is_active AND deleted_at IS NULL ORDER BY id")
  local rows = json.array()
  for i, m in ipairs(missions) do
    local p = current[periods.kind_of(m)]
    m.period_start = p.start
    rows[i] = { mission_id = m.id, period_start = p.start, reset_at = p.reset_at }
  end
  if #rows > 0 then
    store.query("INSERT INTO user_missions (user_id, mission_id, period_start, reset_at) "
      .. "SELECT $1, c.mission_id, c.period_start, c.reset_at FROM jsonb_to_recordset($2::jsonb) "
      .. "AS c(mission_id bigint, period_start timestamptz, reset_at timestamptz) "
      .. "WHERE NOT EXISTS (SELECT 1 FROM user_missions um WHERE um.user_id = $1 AND um.mission_id = c.mission_id "
      .. "AND um.period_start = c.period_start) ORDER BY c.mission_id ON CONFLICT DO NOTHING", user_id, rows)
  end
  return missions
end

-- The user's current rows of `missions` (as ensure returns them) as
-- UserMissions, sort_order then mission id; mission_type filters when given.
local function current_rows(user_id, missions, mission_type)
  local keys = json.array()
  for i, m in ipairs(missions) do keys[i] = { mission_id = m.id, period_start = m.period_start } end
  local rows = store.query("SELECT " .. USER_MISSION_SELECT .. " FROM jsonb_to_recordset($2::jsonb) "
    .. "AS c(mission_id bigint, period_start timestamptz) "
    .. "JOIN user_missions um ON um.user_id = $1 AND um.mission_id = c.mission_id AND um.period_start = c.period_start "
    .. "JOIN missions m ON m.id = um.mission_id WHERE ($3::text IS NULL OR m.mission_type = $3) "
    .. "ORDER BY m.sort_order, m.id", user_id, keys, mission_type)
  local out = json.array()
  for i, r in ipairs(rows) do out[i] = user_mission_view(r) end
  return out
end

-- advance(user_id, items) -> the number of rows this call completed.
-- items: {mission_id, period_start, inc}; one UPDATE adds each increment
-- to its current row, capped at the target, and completes the rows that
-- reach it. Completed rows are left alone.
local function advance(user_id, items)
  local rows = store.query("UPDATE user_missions um SET "
    .. "current_progress = LEAST(um.current_progress + c.inc, m.target_value), "
    .. "completed = um.current_progress + c.inc >= m.target_value, "
    .. "completed_at = CASE WHEN um.current_progress + c.inc >= m.target_value THEN now() END "
    .. "FROM jsonb_to_recordset($2::jsonb) AS c(mission_id bigint, period_start timestamptz, inc bigint), missions m "
    .. "WHERE um.user_id = $1 AND um.mission_id = c.mission_id AND um.period_start = c.period_start "
    .. "AND m.id = c.mission_id AND NOT um.completed RETURNING um.completed", user_id, items)
  local done = 0
  for _, r in ipairs(rows) do
    if r.completed then done = done + 1 end
  end
  return done
end

-- Automatic progress (§12.3), in the triggering transaction. The catalogue
-- (domain/catalogue.lua) says which active missions the counts advance: a
-- count names the target_type, and requirements.game_type is absent (or
-- null) or the play's game (a login counts only for missions without one).
-- One deferred upsert writes those missions' current rows: created when
-- missing, advanced, capped at the target, completed when they reach it.
-- Rows already completed are left out before the upsert, so a finished
-- mission is neither locked nor written by every later play; the target
-- comes from the table, which stays the authority.
--
-- A completed row never changes again (every writer here skips completed
-- rows), so each worker also remembers the completed rows it has seen
-- commit (the upsert answers with them, the ones it skipped included) and
-- leaves them out of later plays: a player whose missions of the period are
-- all done costs no statement at all, which is most plays of an active
-- player. The memory is dropped whenever the catalogue reloads (a mission
-- edited, or deleted by hand with its rows) and when it grows past
-- FINISHED_MAX rows; a cold or lost memory only costs the statement again.
local COUNT_PROGRESS = "WITH c AS (SELECT * FROM jsonb_to_recordset($2::jsonb) "
  .. "AS c(mission_id bigint, period_start timestamptz, reset_at timestamptz, inc bigint)), "
  .. "done AS (SELECT x.mission_id FROM c JOIN user_missions x ON x.user_id = $1 AND x.mission_id = c.mission_id "
  .. "AND x.period_start = c.period_start AND x.completed), "
  .. "up AS (INSERT INTO user_missions AS um (user_id, mission_id, period_start, reset_at, "
  .. "current_progress, completed, completed_at) "
  .. "SELECT $1, m.id, c.period_start, c.reset_at, LEAST(c.inc, m.target_value), c.inc >= m.target_value, "
  .. "CASE WHEN c.inc >= m.target_value THEN now() END "
  .. "FROM c JOIN missions m ON m.id = c.mission_id AND m.is_active AND m.deleted_at IS NULL "
  .. "WHERE c.mission_id NOT IN (SELECT mission_id FROM done) ORDER BY m.id "
  .. "ON CONFLICT (user_id, mission_id, period_start) DO UPDATE SET "
  .. "(current_progress, completed, completed_at) = (SELECT "
  .. "LEAST(um.current_progress + EXCLUDED.current_progress, t.target_value), "
  .. "um.current_progress + EXCLUDED.current_progress >= t.target_value, "
  .. "CASE WHEN um.current_progress + EXCLUDED.current_progress >= t.target_value THEN now() END "
  .. "FROM missions t WHERE t.id = um.mission_id) "
  .. "WHERE NOT um.completed RETURNING um.mission_id, um.completed) "
  .. "SELECT mission_id FROM done UNION ALL SELECT mission_id FROM up WHERE completed"

local FINISHED_MAX = 100000
-- "user|mission|period_start" -> true: completed rows seen committed, for
-- the catalogue `finished_of` (a new catalogue table is a reload).
local finished, finished_count, finished_of = {}, 0, nil

local function finished_key(user_id, mission_id, period_start)
  return user_id .. "|" .. mission_id .. "|" .. period_start
end

-- After the commit: remembers the rows the upsert reported completed.
local function remember(user_id, items, answer, of)
  local ok, rows = pcall(answer)
  if not ok or of ~= finished_of then return end
  local start = {}
  for _, it in ipairs(items) do start[it.mission_id] = it.period_start end
  for _, r in ipairs(rows) do
    if finished_count >= FINISHED_MAX then finished, finished_count = {}, 0 end
    finished[finished_key(user_id, r.mission_id, start[r.mission_id])] = true
    finished_count = finished_count + 1
  end
end

progress.on_counts(function(user_id, counts, game_type, now)
  local cat = catalogue.get()
  if cat ~= finished_of then finished, finished_count, finished_of = {}, 0, cat end
  local items, current = json.array(), nil
  for _, m in ipairs(cat.missions) do
    local inc, only = counts[m.target_type], m.requirements.game_type
    if inc and inc > 0 and (only == nil or only == json.null or only == game_type) then
      current = current or current_periods(now)
      local p = current[periods.kind_of(m)]
      if not finished[finished_key(user_id, m.id, p.start)] then
        items[#items + 1] = { mission_id = m.id, period_start = p.start, reset_at = p.reset_at, inc = inc }
      end
    end
  end
  if #items == 0 then return end
  local answer = store.defer(COUNT_PROGRESS, user_id, items) -- awaited by nobody: read after the commit
  store.after_commit(function() remember(user_id, items, answer, cat) end)
end)

--- list(user_id, mission_type) -> [UserMission] of the current periods
--- (mission_type "daily" | "weekly", or nil for all), sort_order then
--- mission id; creates the missing rows first.
function M.list(user_id, mission_type)
  return store.tx(function()
    return current_rows(user_id, ensure(user_id), mission_type)
  end)
end

--- report_progress(user_id, mission_id, increment) -> {updated, completed_missions,
--- missions}: adds increment (>= 1) to the current row of a client-tracked
--- mission, capped at its target. MISSION_NOT_FOUND for an unknown,
--- inactive or deleted mission, MISSION_SERVER_TRACKED for a server-tracked
--- one (nothing written). completed_missions is 1 when this call completed
--- the mission, else 0; missions holds that mission's UserMission.
function M.report_progress(user_id, mission_id, increment)
  return store.tx(function()
    local m
    for _, c in ipairs(ensure(user_id)) do
      if c.id == mission_id then m = c end
    end
    if not m then errors.raise("MISSION_NOT_FOUND") end
    if SERVER_TRACKED[m.target_type] then errors.raise("MISSION_SERVER_TRACKED") end
    local done = advance(user_id, { { mission_id = m.id, period_start = m.period_start, inc = increment } })
    return { updated = true, completed_missions = done, missions = current_rows(user_id, { m }) }
  end)
end

--- claim(user_id, mission_id, idempotency_key) -> {rewards, balances}: the
--- rewards of the mission's current-period row, completed and not yet
--- claimed, exactly once: the row is marked claimed and the currency keys
--- credited (ledger mission_claim, reference mission:<row id>, a
--- user_rewards row each) with outbox mission.claimed, in one transaction.
--- MISSION_NOT_FOUND for an unknown or deleted mission, CANNOT_CLAIM
--- otherwise (nothing written). A deactivated mission's completed row may
--- still be claimed, as for events (§12.1).
function M.claim(user_id, mission_id, idempotency_key)
  return store.tx(function()
    wallet.lock(user_id) -- the lock order of wallet.lua
    local m = store.one("SELECT id, mission_type, reset_period, rewards FROM missions "
      .. "WHERE id = $1 AND deleted_at IS NULL", mission_id)
    if not m then errors.raise("MISSION_NOT_FOUND") end
    local row = store.one("UPDATE user_missions SET claimed = true, claimed_at = now() "
      .. "WHERE user_id = $1 AND mission_id = $2 AND period_start = $3 AND completed AND NOT claimed RETURNING id",
      user_id, m.id, current_periods()[periods.kind_of(m)].start)
    if not row then errors.raise("CANNOT_CLAIM") end
    local balances = rewards.credit(user_id, m.rewards, {
      reason = "mission_claim", reference = "mission:" .. row.id, source = "mission:" .. m.id,
      idempotency_key = idempotency_key,
    })
    events_log.outbox("rewards", "mission.claimed",
      { user_id = user_id, mission_id = m.id, user_mission_id = row.id, rewards = m.rewards })
    return { rewards = m.rewards, balances = balances }
  end)
end

---------------------------------------------------------------- admin (§13.5)

-- Raises one 422 with every problem of the JSON fields of a create or
-- update (rewards.body_issues).
local function check_json_fields(b)
  local items = rewards.body_issues(b)
  if #items > 0 then errors.validation(items) end
end

--- admin_list(filters) -> [Mission]: filters q (title, case-insensitive
--- substring), type (mission_type), active (nil = both), include_deleted,
--- limit, offset; sort_order ascending, then newest first.
function M.admin_list(f)
  local rows = store.query("SELECT " .. MISSION_SELECT .. " FROM missions "
    .. "WHERE ($1::text IS NULL OR title ILIKE $1 ESCAPE '\\') AND ($2::text IS NULL OR mission_type = $2) "
    .. "AND ($3::boolean IS NULL OR is_active = $3) AND ($4 OR deleted_at IS NULL) "
    .. "ORDER BY sort_order, created_at DESC, id DESC LIMIT $5 OFFSET $6",
    f.q and text.like_pattern(f.q), f.type, f.active, f.include_deleted == true, f.limit, f.offset)
  local out = json.array()
  for i, r in ipairs(rows) do out[i] = mission_view(r) end
  return out
end

--- create(admin, fields, ip) -> Mission: a new active mission (fields as
--- §13.5: title, mission_type, target_value, target_type, rewards required;
--- requirements {} and sort_order 0 by default), audited mission.create.
--- A currency reward that is not a non-negative integer, or a NUL in
--- rewards or requirements, is a 422.
function M.create(admin, f, ip)
  check_json_fields(f)
  return store.tx(function()
    local row = store.one("INSERT INTO missions (title, description, mission_type, category, target_value, "
      .. "target_type, rewards, requirements, reset_period, icon, sort_order) "
      .. "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $11) RETURNING " .. MISSION_SELECT,
      f.title, f.description, f.mission_type, f.category, f.target_value, f.target_type, f.rewards,
      f.requirements, f.reset_period, f.icon, f.sort_order)
    events_log.audit(admin.id, "mission.create", "mission", row.id, f, ip)
    return mission_view(row)
  end)
end

--- update(admin, mission_id, changes, ip) -> Mission: sets the given
--- fields (json.null clears a nullable one; is_active too), audited
--- mission.update with the changes; no change, no audit row.
--- MISSION_NOT_FOUND for an unknown or deleted mission; bad rewards or
--- requirements 422 (as create).
function M.update(admin, mission_id, c, ip)
  check_json_fields(c)
  return store.tx(function()
    local sets, args = {}, { mission_id }
    for _, col in ipairs(WRITABLE) do
      if c[col] ~= nil then
        args[#args + 1] = c[col]
        sets[#sets + 1] = col .. " = $" .. #args
      end
    end
    local row
    if #sets == 0 then
      row = store.one("SELECT " .. MISSION_SELECT .. " FROM missions WHERE id = $1 AND deleted_at IS NULL", mission_id)
    else
      row = store.one("UPDATE missions SET " .. table.concat(sets, ", ") .. " WHERE id = $1 AND deleted_at IS NULL "
        .. "RETURNING " .. MISSION_SELECT, unpack(args))
    end
    if not row then errors.raise("MISSION_NOT_FOUND") end
    if #sets > 0 then events_log.audit(admin.id, "mission.update", "mission", mission_id, c, ip) end
    return mission_view(row)
  end)
end

--- delete(admin, mission_id, ip): soft delete (deleted_at, inactive),
--- audited mission.delete; users' rows stay. MISSION_NOT_FOUND for an
--- unknown or already deleted mission.
function M.delete(admin, mission_id, ip)
  store.tx(function()
    local row = store.one("UPDATE missions SET deleted_at = now(), is_active = false "
      .. "WHERE id = $1 AND deleted_at IS NULL RETURNING id", mission_id)
    if not row then errors.raise("MISSION_NOT_FOUND") end
    events_log.audit(admin.id, "mission.delete", "mission", mission_id, {}, ip)
  end)
end

--- activate(admin, mission_id, is_active, ip) -> Mission: sets is_active,
--- audited mission.activate. MISSION_NOT_FOUND for an unknown or deleted
--- mission.
function M.activate(admin, mission_id, is_active, ip)
  return store.tx(function()
    local row = store.one("UPDATE missions SET is_active = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING "
      .. MISSION_SELECT, mission_id, is_active)
    if not row then errors.raise("MISSION_NOT_FOUND") end
    events_log.audit(admin.id, "mission.activate", "mission", mission_id, { is_active = is_active }, ip)
    return mission_view(row)
  end)
end

return M
