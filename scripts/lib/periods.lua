--[[ periods.lua - mission periods (CONTRACT.md §12.2), pure.

A daily period starts at DAILY_RESET_TIME (HH:MM) in the zone RESET_UTC_OFFSET
(±HH:MM) and lasts 24 hours; a weekly one starts at that time on
WEEKLY_RESET_WEEKDAY (ISO: 1 Monday … 7 Sunday) and lasts 7 days; "never" is
one period for all time. Fixed offsets have no daylight saving, so every
day is 86 400 s and the arithmetic is exact on epoch seconds.
]]

local M = {}

local DAY = 86400

--- parse_offset("+09:00") -> seconds east of UTC | nil, reason.
function M.parse_offset(text)
  local sign, h, m = tostring(text):match("^([+-])(%d%d):(%d%d)$")
  if not sign or tonumber(h) > 14 or tonumber(m) > 59 then return nil, "offset must look like +09:00" end
  local s = tonumber(h) * 3600 + tonumber(m) * 60
  return sign == "-" and -s or s
end

--- parse_time("00:00") -> seconds after midnight | nil, reason.
function M.parse_time(text)
  local h, m = tostring(text):match("^(%d%d):(%d%d)$")
  if not h or tonumber(h) > 23 or tonumber(m) > 59 then return nil, "time must look like 15:30" end
  return tonumber(h) * 3600 + tonumber(m) * 60
end

--- period(kind, t, rules) -> start, finish: the period of kind ("daily" |
--- "weekly" | "never") holding epoch second t, as epoch seconds (finish
--- exclusive); "never" gives -math.huge, nil. rules = {offset (s), reset (s
--- after local midnight), weekday (1-7)}.
function M.period(kind, t, rules)
  if kind == "never" then return -math.huge, nil end
  local shifted = t + rules.offset - rules.reset -- seconds since a local "reset midnight"
  local day = math.floor(shifted / DAY)
  if kind == "daily" then
    local start = day * DAY - rules.offset + rules.reset
    return start, start + DAY
  end
  assert(kind == "weekly", "unknown period kind " .. tostring(kind))
  local weekday = (day + 3) % 7 + 1 -- 1970-01-01 was a Thursday (ISO 4)
  local start = (day - (weekday - rules.weekday) % 7) * DAY - rules.offset + rules.reset
  return start, start + 7 * DAY
end

--- kind_of(mission) -> "daily" | "weekly" | "never": reset_period, or when
--- null the mission type's (daily, weekly, achievement → never).
function M.kind_of(mission)
  local r = mission.reset_period
  if r == "daily" or r == "weekly" or r == "never" then return r end
  if mission.mission_type == "daily" or mission.mission_type == "weekly" then return mission.mission_type end
  return "never"
end

return M
