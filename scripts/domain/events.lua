--[[ events.lua - events and their participations (CONTRACT.md §12.1, §12.3,
§13.4): the player's list, detail, join, progress and claim, the progress
that play earns, and the admin's CRUD, publishing, participations and
force-claim.

The rules, and why:
- Live means is_active, not deleted and start_date <= now <= end_date, with
  now from domain/clock.lua passed to SQL as a parameter: one clock for every
  worker, which specs can move. Deleted events are 404 for players and admins
  alike; the detail also shows inactive and ended events.
- A participation is unique per (user, event). Join (and progress, which
  joins first) inserts with ON CONFLICT DO NOTHING and reads the row back in
  a second statement, so concurrent joins meet on one row and a repeated
  join returns it unchanged.
- Progress merges in one UPDATE (progress || new): concurrent updates both
  persist, none writes back a stale copy. The server-tracked keys of §12.3
  are dropped from client input: only real play moves them.
- Completion: every key of requirements is in progress with a value at
  least the requirement (numbers numerically, booleans as 1/0, strings by
  code point). An incomparable pair is the client's 400 on the progress
  route, but only "not complete" for progress earned by play, which must
  never fail the play that earned it. requirements.game_type says which
  plays count; it is a filter, not a target. Completion never reverts.
- A claim is one conditional UPDATE (completed and not claimed) plus the
  credits (domain/rewards.lua) in one transaction: concurrent claims meet on
  the row lock and one wins; the ledger's unique (user, currency, reason,
  reference) refuses a second credit whatever the code does. A completed
  participant may claim after the event ended or was deactivated.
- Every admin mutation writes its audit row (and outbox admin.action) in
  the transaction of the change. JSON bound for jsonb is checked first for
  what PostgreSQL cannot store (a NUL in a string): bad input is a 422, not
  a 500.
]]
local json = require "json"
local errors = require "lib.errors"
local store = require "lib.store"
local text = require "lib.text"
local catalogue = require "domain.catalogue"
local clock = require "domain.clock"
local progress = require "domain.progress"
local rewards = require "domain.rewards"
local wallet = require "domain.wallet"
local events_log = require "domain.events_log"

local M = {}

local CLAIMED = "보상을 성공적으로 수령했습니다!"
local FORCE_CLAIMED = "Force claim completed"
local ALREADY_CLAIMED = "이미 보상 수령"

-- The keys only the server counts (§12.3): never taken from a client.
local SERVER_KEYS = progress.SERVER_KEYS

-- An Event (§12.1) as seen by the user $1: the event, its real participation
-- count and the user's own participation (columns my_*, absent when none).
local EVENT_VIEW = "SELECT e.id, e.title, e.description, e.event_type, e.start_date, e.end_date, e.rewards, "
  .. "e.requirements, e.image_url, e.priority, e.is_active, e.created_at, "
  .. "(SELECT count(*) FROM event_participations c WHERE c.event_id = e.id) AS participation_count, "
  .. "p.progress AS my_progress, p.completed AS my_completed, p.claimed_rewards AS my_claimed "
  .. "FROM events e LEFT JOIN event_participations p ON p.event_id = e.id AND p.user_id = $1 "

local PARTICIPATION = "id, user_id, event_id, progress, completed, claimed_rewards, joined_at, completed_at, "
  .. "claimed_at"

-- The liveness condition on events e at the clock parameter $n.
local function live(n)
  return "e.is_active AND e.deleted_at IS NULL AND e.start_date <= $" .. n .. "::timestamptz "
    .. "AND e.end_date >= $" .. n .. "::timestamptz"
end

local function or_null(v)
  if v == nil then return json.null end
  return v
end

local function event_view(r)
  return {
    id = r.id, title = r.title, description = or_null(r.description), event_type = r.event_type,
    start_date = r.start_date, end_date = r.end_date, rewards = r.rewards, requirements = r.requirements,
    image_url = or_null(r.image_url), priority = r.priority, is_active = r.is_active, created_at = r.created_at,
    participation_count = r.participation_count,
    user_participation = r.my_progress ~= nil
      and { joined = true, progress = r.my_progress, completed = r.my_completed, claimed = r.my_claimed }
      or json.null,
  }
end

-- The Event of a non-deleted event as viewer_id sees it, or nil.
local function load_view(viewer_id, event_id)
  local r = store.one(EVENT_VIEW .. "WHERE e.id = $2 AND e.deleted_at IS NULL", viewer_id, event_id)
  return r and event_view(r)
end

-- A Participation; without event (the admin's list) the key is absent.
local function participation_view(p, event)
  return {
    id = p.id, user_id = p.user_id, event_id = p.event_id, progress = p.progress, completed = p.completed,
    claimed_rewards = p.claimed_rewards, joined_at = p.joined_at, completed_at = or_null(p.completed_at),
    claimed_at = or_null(p.claimed_at), event = event,
  }
end

---------------------------------------------------------------- completion

-- have >= want under the comparison rules, or nil when they cannot compare.
local function at_least(have, want)
  if type(have) == "boolean" then have = have and 1 or 0 end
  if type(want) == "boolean" then want = want and 1 or 0 end
  local th, tw = type(have), type(want)
  -- LuaJIT compares strings bytewise: for UTF-8 that is code point order
  if th == tw and (th == "number" or th == "string") then return have >= want end
  return nil
end

-- completion(requirements, progress) -> complete, bad_key: bad_key names the
-- first requirement (sorted) whose progress value cannot be compared.
local function completion(requirements, prog)
  local keys = {}
  for k in pairs(requirements) do
    if k ~= "game_type" then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local complete = true
  for _, k in ipairs(keys) do
    if prog[k] == nil then
      complete = false
    else
      local ok = at_least(prog[k], requirements[k])
      if ok == nil then return false, k end
      complete = complete and ok
    end
  end
  return complete
end

local function mark_completed(participation_id)
  return store.one("UPDATE event_participations SET completed = true, completed_at = now() "
    .. "WHERE id = $1 AND NOT completed RETURNING " .. PARTICIPATION, participation_id)
end

---------------------------------------------------------------- input checks

local DAYS_IN_MONTH = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function is_leap(y) return y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) end

-- Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (m > 2 and m - 3 or m + 9) + 2) / 5) + d - 1
  return era * 146097 + yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy - 719468
end

local function civil_from_days(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  return yoe + era * 400 + (m <= 2 and 1 or 0), m, doy - math.floor((153 * mp + 2) / 5) + 1
end

-- An ISO-8601 date ("2025-08-01") or date-time ("2025-08-01T09:30[:00[.123]]"
-- with "Z", "±HH:MM", "±HHMM" or no zone, which is UTC) as pydantic reads
-- them -> the same instant as "YYYY-MM-DDTHH:MM:SS.ffffffZ", or nil.
local function utc_time(s)
  local y, mo, d, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec, frac, zone = "00", "00", "00", "0", ""
  if rest ~= "" then
    h, mi, rest = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
    if not h then return nil end
    local ss, after = rest:match("^:(%d%d)(.*)$")
    if ss then
      sec, rest = ss, after
      local f, tail = rest:match("^[.,](%d+)(.*)$")
      if f then frac, rest = f:sub(1, 6), tail end
    end
    zone = rest
  end
  local offset = 0
  if zone ~= "" and zone ~= "Z" and zone ~= "z" then
    local sign, oh, om = zone:match("^([+-])(%d%d):?(%d%d)$")
    if not sign or tonumber(oh) > 23 or tonumber(om) > 59 then return nil end
    offset = (sign == "-" and -1 or 1) * (tonumber(oh) * 3600 + tonumber(om) * 60)
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or h > 23 or mi > 59 or sec > 59 then return nil end
  if d > DAYS_IN_MONTH[mo] + (mo == 2 and is_leap(y) and 1 or 0) then return nil end
  local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
  local day = math.floor(t / 86400)
  local y2, mo2, d2 = civil_from_days(day)
  if y2 < 1 or y2 > 9999 then return nil end
  t = t - day * 86400
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d.%sZ", y2, mo2, d2, math.floor(t / 3600),
    math.floor(t % 3600 / 60), t % 60, frac)
end

-- Checks what the route's declaration cannot (dates, currency rewards, what
-- jsonb cannot store), all items in declaration order in one 422; returns
-- the dates as UTC instants (nil when not given).
local function checked_input(b)
  local items, dates = {}, {}
  for _, name in ipairs { "start_date", "end_date" } do
    if b[name] ~= nil then
      dates[name] = utc_time(b[name])
      if not dates[name] then
        items[#items + 1] = { loc = { "body", name }, input = b[name], type = "datetime_from_date_parsing",
                              msg = "Input should be a valid datetime or date, invalid format" }
      end
    end
  end
  for _, item in ipairs(rewards.body_issues(b)) do items[#items + 1] = item end
  if #items > 0 then errors.validation(items) end
  return dates
end

------------------------------------------------------------------ player

--- list(user_id) -> [Event]: the live events, priority desc then id, each
--- with its participation count and the user's participation (or null).
function M.list(user_id)
  local rows = store.query(EVENT_VIEW .. "WHERE " .. live(2) .. " ORDER BY e.priority DESC, e.id", user_id, clock.iso())
  local out = json.array()
  for i, r in ipairs(rows) do out[i] = event_view(r) end
  return out
end

--- get(user_id, event_id) -> Event, also inactive or ended; EVENT_NOT_FOUND
--- when it does not exist or was deleted.
function M.get(user_id, event_id)
  return load_view(user_id, event_id) or errors.raise("EVENT_NOT_FOUND")
end

-- The event's requirements when it is live; EVENT_NOT_FOUND (absent or
-- deleted) or EVENT_NOT_ACTIVE otherwise.
local function live_requirements(event_id)
  local e = store.one("SELECT e.requirements, (" .. live(2) .. ") AS live FROM events e "
    .. "WHERE e.id = $1 AND e.deleted_at IS NULL", event_id, clock.iso())
  if not e then errors.raise("EVENT_NOT_FOUND") end
  if not e.live then errors.raise("EVENT_NOT_ACTIVE") end
  return e.requirements
end

local function ensure_joined(user_id, event_id)
  store.query("INSERT INTO event_participations (user_id, event_id) VALUES ($1, $2) "
    .. "ON CONFLICT (user_id, event_id) DO NOTHING", user_id, event_id)
end

--- join(user_id, event_id) -> Participation: the live event's participation
--- of the user, created with progress {} the first time and returned
--- unchanged after. EVENT_NOT_FOUND / EVENT_NOT_ACTIVE.
function M.join(user_id, event_id)
  live_requirements(event_id)
  ensure_joined(user_id, event_id)
  local p = store.one("SELECT " .. PARTICIPATION .. " FROM event_participations WHERE user_id = $1 AND event_id = $2",
    user_id, event_id)
  return participation_view(p, load_view(user_id, event_id))
end

--- update_progress(user_id, event_id, input) -> Participation: joins like
--- join, merges input (an object, server-tracked keys dropped) into the
--- progress in one UPDATE, then checks completion; an incomparable value
--- raises INVALID_PROGRESS_VALUE and nothing is written. A string holding a
--- NUL is a 422.
function M.update_progress(user_id, event_id, input)
  local new, items = {}, {}
  for k, v in pairs(input) do
    if not SERVER_KEYS[k] then new[k] = v end
  end
  items[1] = text.nul_item(new, { "body", "progress" })
  if #items > 0 then errors.validation(items) end
  return store.tx(function()
    local requirements = live_requirements(event_id)
    ensure_joined(user_id, event_id)
    local p = store.one("UPDATE event_participations SET progress = progress || $3::jsonb "
      .. "WHERE user_id = $1 AND event_id = $2 RETURNING " .. PARTICIPATION, user_id, event_id, new)
    local complete, bad = completion(requirements, p.progress)
    if bad then errors.raise("INVALID_PROGRESS_VALUE", bad) end
    if complete and not p.completed then p = mark_completed(p.id) end
    return participation_view(p, load_view(user_id, event_id))
  end)
end

--- claim(user_id, event_id, idempotency_key) -> {success, rewards, message,
--- balances}: marks the completed, unclaimed participation claimed and
--- credits the event's currency rewards (ledger event_claim, reference
--- event:<id>, user_rewards rows), outbox event.claimed, all in one
--- transaction. EVENT_NOT_FOUND for a deleted or unknown event; CANNOT_CLAIM
--- without a participation, before completion and after a claim.
function M.claim(user_id, event_id, idempotency_key)
  return store.tx(function()
    wallet.lock(user_id) -- the lock order of wallet.lua
    local e = store.one("SELECT rewards FROM events WHERE id = $1 AND deleted_at IS NULL", event_id)
    if not e then errors.raise("EVENT_NOT_FOUND") end
    local p = store.one("UPDATE event_participations SET claimed_rewards = true, claimed_at = now() "
      .. "WHERE user_id = $1 AND event_id = $2 AND completed AND NOT claimed_rewards RETURNING id", user_id, event_id)
    if not p then errors.raise("CANNOT_CLAIM") end
    local reference = "event:" .. event_id
    local balances = rewards.credit(user_id, e.rewards, {
      reason = "event_claim", reference = reference, source = reference, idempotency_key = idempotency_key,
    })
    events_log.outbox("rewards", "event.claimed",
      { user_id = user_id, event_id = event_id, participation_id = p.id, rewards = e.rewards })
    return { success = true, rewards = e.rewards, message = CLAIMED, balances = balances }
  end)
end

-- Progress earned by play (§12.3), inside the play's transaction: each count
-- is added to the progress of the user's joined live events whose
-- requirements hold its key (and whose requirements.game_type, if any, is
-- the play's game), in one UPDATE; then completion, where an incomparable
-- value only means "not complete".
local COUNT_PROGRESS = "UPDATE event_participations p SET progress = p.progress || ("
  .. "SELECT jsonb_object_agg(c.key, c.value::numeric + CASE WHEN jsonb_typeof(p.progress -> c.key) = 'number' "
  .. "THEN (p.progress ->> c.key)::numeric ELSE 0 END) "
  .. "FROM jsonb_each_text($2::jsonb) c WHERE e.requirements ? c.key) "
  .. "FROM events e WHERE e.id = p.event_id AND p.user_id = $1 "
  .. "AND e.requirements ?| ARRAY(SELECT jsonb_object_keys($2::jsonb)) "
  .. "AND (NOT e.requirements ? 'game_type' OR e.requirements ->> 'game_type' = $3::text) AND " .. live(4)
  .. " RETURNING p.id, p.progress, p.completed, e.requirements"

-- Whether a live event may count these keys for this game: what
-- COUNT_PROGRESS matches, from the catalogue (domain/catalogue.lua), and
-- wider, never narrower (a second either side of the dates, and any
-- game_type that is not a string), since the statement decides. No such
-- event (the common case) spares every play a statement and a round trip.
local function may_count(counts, game_type, now)
  for _, e in ipairs(catalogue.get().events) do
    local only = e.requirements.game_type
    if e.starts - 1 <= now and now <= e.ends + 1 and (only == nil or type(only) ~= "string" or only == game_type) then
      for key in pairs(counts) do
        if e.requirements[key] ~= nil then return true end
      end
    end
  end
  return false
end

progress.on_counts(function(user_id, counts, game_type, now)
  if not may_count(counts, game_type, now) then return end
  for _, r in ipairs(store.query(COUNT_PROGRESS, user_id, counts, game_type, clock.iso(now))) do
    if not r.completed and completion(r.requirements, r.progress) then mark_completed(r.id) end
  end
end)

------------------------------------------------------------------ admin

--- admin_list(admin, f) -> [Event]: f.q (title contains, case-insensitive,
--- taken literally), f.active (nil = both), f.include_deleted, f.limit,
--- f.offset; priority desc, created_at desc.
function M.admin_list(admin, f)
  local pattern = f.q and text.like_pattern(f.q)
  local rows = store.query(EVENT_VIEW .. "WHERE ($2::text IS NULL OR e.title ILIKE $2::text ESCAPE '\\') "
    .. "AND ($3::boolean IS NULL OR e.is_active = $3::boolean) AND ($4::boolean OR e.deleted_at IS NULL) "
    .. "ORDER BY e.priority DESC, e.created_at DESC, e.id DESC LIMIT $5 OFFSET $6",
    admin.id, pattern, f.active, f.include_deleted, f.limit, f.offset)
  local out = json.array()
  for i, r in ipairs(rows) do out[i] = event_view(r) end
  return out
end

--- create(admin, b, ip) -> Event (is_active true), audited event.create.
--- b: title, description?, event_type, start_date, end_date, rewards,
--- requirements, image_url?, priority. A bad date or currency reward is a
--- 422 (errors.validation); start_date >= end_date DATES_OUT_OF_ORDER.
function M.create(admin, b, ip)
  local dates = checked_input(b)
  return store.tx(function()
    local row = store.one("INSERT INTO events (title, description, event_type, start_date, end_date, rewards, "
      .. "requirements, image_url, priority) SELECT $1::text, $2::text, $3::text, $4::timestamptz, $5::timestamptz, "
      .. "$6::jsonb, $7::jsonb, $8::text, $9::int WHERE $4::timestamptz < $5::timestamptz RETURNING id",
      b.title, b.description, b.event_type, dates.start_date, dates.end_date, b.rewards, b.requirements, b.image_url,
      b.priority)
    if not row then errors.raise("DATES_OUT_OF_ORDER") end
    events_log.audit(admin.id, "event.create", "event", row.id, {
      title = b.title, event_type = b.event_type, start_date = dates.start_date, end_date = dates.end_date,
      rewards = b.rewards, requirements = b.requirements, priority = b.priority,
    }, ip)
    return load_view(admin.id, row.id)
  end)
end

--- update(admin, event_id, b, ip) -> Event: any subset of the create fields
--- plus is_active (description and image_url may be null), checked like
--- create against the merged row, audited event.update with the changes.
--- ADMIN_EVENT_NOT_FOUND for an unknown or deleted event.
function M.update(admin, event_id, b, ip)
  local dates = checked_input(b)
  return store.tx(function()
    local cur = store.one("SELECT COALESCE($2::timestamptz, start_date) < COALESCE($3::timestamptz, end_date) AS ok "
      .. "FROM events WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", event_id, dates.start_date, dates.end_date)
    if not cur then errors.raise("ADMIN_EVENT_NOT_FOUND") end
    if not cur.ok then errors.raise("DATES_OUT_OF_ORDER") end
    store.query("UPDATE events SET title = COALESCE($2::text, title), "
      .. "description = CASE WHEN $3::boolean THEN $4::text ELSE description END, "
      .. "event_type = COALESCE($5::text, event_type), start_date = COALESCE($6::timestamptz, start_date), "
      .. "end_date = COALESCE($7::timestamptz, end_date), rewards = COALESCE($8::jsonb, rewards), "
      .. "requirements = COALESCE($9::jsonb, requirements), "
      .. "image_url = CASE WHEN $10::boolean THEN $11::text ELSE image_url END, "
      .. "priority = COALESCE($12::int, priority), is_active = COALESCE($13::boolean, is_active) WHERE id = $1",
      event_id, b.title, b.description ~= nil, b.description, b.event_type, dates.start_date, dates.end_date,
      b.rewards, b.requirements, b.image_url ~= nil, b.image_url, b.priority, b.is_active)
    local changes = {}
    for k, v in pairs(b) do changes[k] = dates[k] or v end
    events_log.audit(admin.id, "event.update", "event", event_id, changes, ip)
    return load_view(admin.id, event_id)
  end)
end

--- delete(admin, event_id, ip): soft delete (deleted_at, is_active false;
--- participations stay), audited event.delete. ADMIN_EVENT_NOT_FOUND when
--- unknown or already deleted.
function M.delete(admin, event_id, ip)
  store.tx(function()
    if not store.one("UPDATE events SET deleted_at = now(), is_active = false WHERE id = $1 AND deleted_at IS NULL "
        .. "RETURNING id", event_id) then
      errors.raise("ADMIN_EVENT_NOT_FOUND")
    end
    events_log.audit(admin.id, "event.delete", "event", event_id, {}, ip)
  end)
end

-- Sets is_active, audited under action; the Event after.
local function set_active(admin, event_id, active, action, ip)
  return store.tx(function()
    if not store.one("UPDATE events SET is_active = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING id",
        event_id, active) then
      errors.raise("ADMIN_EVENT_NOT_FOUND")
    end
    events_log.audit(admin.id, action, "event", event_id, { is_active = active }, ip)
    return load_view(admin.id, event_id)
  end)
end

--- publish(admin, event_id, active, ip) -> Event with is_active = active
--- (the route's default true), audited event.publish.
function M.publish(admin, event_id, active, ip)
  return set_active(admin, event_id, active, "event.publish", ip)
end

--- deactivate(admin, event_id, ip) -> Event with is_active false, audited
--- event.deactivate.
function M.deactivate(admin, event_id, ip)
  return set_active(admin, event_id, false, "event.deactivate", ip)
end

--- participations(event_id, f) -> {items = [Participation without event],
--- total}: f.completed, f.claimed (nil = any), f.limit, f.offset; newest
--- first. ADMIN_EVENT_NOT_FOUND for an unknown or deleted event.
function M.participations(event_id, f)
  if not store.one("SELECT id FROM events WHERE id = $1 AND deleted_at IS NULL", event_id) then
    errors.raise("ADMIN_EVENT_NOT_FOUND")
  end
  local where = "WHERE event_id = $1 AND ($2::boolean IS NULL OR completed = $2::boolean) "
    .. "AND ($3::boolean IS NULL OR claimed_rewards = $3::boolean)"
  local total = store.one("SELECT count(*) AS n FROM event_participations " .. where,
    event_id, f.completed, f.claimed).n
  local rows = store.query("SELECT " .. PARTICIPATION .. " FROM event_participations " .. where
    .. " ORDER BY joined_at DESC, id DESC LIMIT $4 OFFSET $5", event_id, f.completed, f.claimed, f.limit, f.offset)
  local items = json.array()
  for i, p in ipairs(rows) do items[i] = participation_view(p) end
  return { items = items, total = total }
end

--- force_claim(admin, event_id, user_id, key, ip) -> {success, rewards,
--- message}: credits the event's currency rewards to the user (ledger
--- force_claim, reference event:<id>, user_rewards rows awarded by the
--- admin) and marks the participation claimed even when not completed,
--- audited event.force_claim with outbox event.claimed. Already claimed:
--- nothing changes, rewards {}. ADMIN_EVENT_NOT_FOUND,
--- PARTICIPATION_NOT_FOUND.
function M.force_claim(admin, event_id, user_id, key, ip)
  return store.tx(function()
    wallet.lock(user_id) -- the lock order of wallet.lua
    local e = store.one("SELECT rewards FROM events WHERE id = $1 AND deleted_at IS NULL", event_id)
    if not e then errors.raise("ADMIN_EVENT_NOT_FOUND") end
    local p = store.one("SELECT id, claimed_rewards FROM event_participations WHERE user_id = $1 AND event_id = $2 "
      .. "FOR UPDATE", user_id, event_id)
    if not p then errors.raise("PARTICIPATION_NOT_FOUND") end
    if p.claimed_rewards then return { success = true, rewards = {}, message = ALREADY_CLAIMED } end
    local credited = {}
    for currency in pairs(rewards.CURRENCY_TYPES) do
      local amount = e.rewards[currency]
      if type(amount) == "number" and amount > 0 then credited[currency] = amount end
    end
    local reference = "event:" .. event_id
    rewards.credit(user_id, credited, {
      reason = "force_claim", reference = reference, source = reference, awarded_by = admin.id, idempotency_key = key,
    })
    store.query("UPDATE event_participations SET claimed_rewards = true, claimed_at = now() WHERE id = $1", p.id)
    local payload = { user_id = user_id, event_id = event_id, participation_id = p.id, rewards = credited }
    events_log.audit(admin.id, "event.force_claim", "event", event_id, payload, ip)
    payload.forced_by = admin.id
    events_log.outbox("rewards", "event.claimed", payload)
    return { success = true, rewards = credited, message = FORCE_CLAIMED }
  end)
end

return M
