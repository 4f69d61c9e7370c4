--[[ clock.lua - the one clock of mission periods and event liveness
(CONTRACT.md §12).

clock.now() is the wall clock, plus a shift that specs may set to cross a
reset boundary. The shift exists only when FIXTURE_SCRIPTS is configured
(production refuses fixtures), lives in Redis so every worker and host sees
the same one, and moves nothing else: token and session expiry, lockout
windows, crash timing (Redis TIME) and row timestamps keep the real clock.
SQL that decides periods or liveness takes clock.iso() as a parameter rather
than calling now().
]]
local host = require "host"
local redis = require "host.redis"
local periods = require "lib.periods"

local M = {}

local SHIFT_KEY = "cc:test:clock_shift_s"

local function shiftable() return host.config.get("FIXTURE_SCRIPTS") ~= "" end

--- shift() -> seconds added to the wall clock (0 unless a spec set one).
function M.shift()
  if not shiftable() then return 0 end
  return tonumber((redis.call("GET", SHIFT_KEY))) or 0
end

--- set_shift(seconds): fixtures only (raises otherwise); 0 clears it.
function M.set_shift(seconds)
  assert(shiftable(), "the clock shift is for fixtures only")
  assert(redis.call("SET", SHIFT_KEY, tostring(seconds)))
end

--- now() -> epoch seconds (milliseconds precision) of mission periods and
--- event liveness.
function M.now()
  return host.time.now() + M.shift()
end

--- iso([t]) -> "YYYY-MM-DDTHH:MM:SS.mmmZ" of epoch second t (default now()).
function M.iso(t)
  return host.time.iso(math.floor((t or M.now()) * 1000))
end

--- rules() -> the period rules of the settings (lib/periods.lua).
function M.rules()
  local config = host.config
  return {
    offset = assert(periods.parse_offset(config.get("RESET_UTC_OFFSET"))),
    reset = assert(periods.parse_time(config.get("DAILY_RESET_TIME"))),
    weekday = config.get("WEEKLY_RESET_WEEKDAY"),
  }
end

return M
