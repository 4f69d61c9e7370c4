-- Unit specs for scripts/lib/periods.lua: daily and weekly mission periods
-- at a fixed UTC offset (CONTRACT.md §12.2).
package.path = "scripts/?.lua;" .. package.path
local periods = require "lib.periods"

-- Epoch seconds of a UTC date-time.
local function utc(y, mo, d, h, mi)
  local days = 0
  for year = 1970, y - 1 do days = days + ((year % 4 == 0 and year % 100 ~= 0 or year % 400 == 0) and 366 or 365) end
  local month_days = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if y % 4 == 0 and y % 100 ~= 0 or y % 400 == 0 then month_days[2] = 29 end
  for m = 1, mo - 1 do days = days + month_days[m] end
  return ((days + d - 1) * 24 + h) * 3600 + (mi or 0) * 60
end

local KST = { offset = 9 * 3600, reset = 0, weekday = 1 } -- the defaults: 00:00 at +09:00, Monday

describe("mission periods", function()
  it("parses offsets and times", function()
    assert.equal(32400, periods.parse_offset("+09:00"))
    assert.equal(-19800, periods.parse_offset("-05:30"))
    assert.is_nil(periods.parse_offset("9"))
    assert.equal(55800, periods.parse_time("15:30"))
    assert.is_nil(periods.parse_time("24:00"))
  end)

  it("starts a daily period at local midnight +09:00, which is 15:00 UTC", function()
    local s, f = periods.period("daily", utc(2026, 12, 5, 14, 59), KST)
    assert.same({ utc(2026, 12, 4, 15, 0), utc(2026, 12, 5, 15, 0) }, { s, f })
    s = periods.period("daily", utc(2026, 12, 5, 15, 0), KST)
    assert.equal(utc(2026, 12, 5, 15, 0), s)
  end)

  it("honours a reset time other than midnight, and negative offsets", function()
    local rules = { offset = -5 * 3600, reset = 6 * 3600 + 30 * 60, weekday = 1 } -- 06:30 at -05:00 = 11:30 UTC
    assert.equal(utc(2026, 12, 4, 11, 30), (periods.period("daily", utc(2026, 12, 5, 11, 29), rules)))
    assert.equal(utc(2026, 12, 5, 11, 30), (periods.period("daily", utc(2026, 12, 5, 11, 30), rules)))
  end)

  it("starts a weekly period on the configured weekday", function()
    -- 2026-12-07 is a Monday: its local midnight +09:00 is Sunday 2026-12-06 15:00 UTC.
    local s, f = periods.period("weekly", utc(2026, 12, 6, 14, 59), KST)
    assert.same({ utc(2026, 11, 29, 15, 0), utc(2026, 12, 6, 15, 0) }, { s, f })
    assert.equal(utc(2026, 12, 6, 15, 0), (periods.period("weekly", utc(2026, 12, 6, 15, 0), KST)))
    local sunday = { offset = 0, reset = 0, weekday = 7 }
    assert.equal(utc(2026, 12, 6, 0, 0), (periods.period("weekly", utc(2026, 12, 9, 12, 0), sunday)))
  end)

  it("has one period for never, and maps missions to their kind", function()
    local s, f = periods.period("never", utc(2026, 1, 1, 0, 0), KST)
    assert.same({ -math.huge, nil }, { s, f })
    assert.equal("weekly", periods.kind_of { reset_period = "weekly", mission_type = "daily" })
    assert.equal("daily", periods.kind_of { mission_type = "daily" })
    assert.equal("never", periods.kind_of { mission_type = "achievement" })
  end)
end)
