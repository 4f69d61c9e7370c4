-- drill_spec.lua - a short run of the fault drill (tools/drill.lua; `make
-- drill` runs the long one): two hosts behind HAProxy with their own
-- durable PostgreSQL and Redis, 30 players of mixed traffic for 35 s while a
-- worker is killed, PostgreSQL and Redis are restarted and a whole host is
-- killed and started again; then the money invariants and the answers are
-- checked. Every outage is inflicted on the drill's private services, never
-- on the shared test services other spec files use.
--
-- Tagged #drill: tools/test.sh runs it in the normal pass and excludes it
-- from the ASan pass (--exclude-tags=drill), where timed outage windows
-- under a several times slower host would not mean the same.
local drill = require "tools.drill"

describe("fault drill #drill", function()
  local result

  setup(function()
    result = drill.run { duration = 35, users = 30, max_auto = 2, quiet = true }
  end)

  -- Asserts every check of a group passed; the message is the whole report.
  local function group_ok(group)
    local n = 0
    for _, c in ipairs(result.checks) do
      if c.group == group then
        n = n + 1
        assert(c.ok, "drill check failed: " .. c.name .. "\n" .. result.report)
      end
    end
    assert(n > 0, "no check of group " .. group .. "\n" .. result.report)
  end

  it("ran every fault under mixed traffic through HAProxy to both hosts", function()
    group_ok("driver")
    local r = result.records
    assert(r.total > 1000, "only " .. r.total .. " requests\n" .. result.report)
    local by = {}
    for _, b in pairs(r.buckets) do for h, n in pairs(b) do by[h] = (by[h] or 0) + n end end
    assert((by.host1 or 0) > 100 and (by.host2 or 0) > 100, result.report)
    for _, label in ipairs { "POST /api/games/slot/spin", "POST /api/games/crash/bet", "POST /api/games/crash/cashout",
                             "POST /api/events/missions/claim/{id}", "POST /api/events/join", "POST /api/auth/login",
                             "GET /api/users/profile" } do
      assert(r.ep[label] and r.ep[label].n > 0, "no " .. label .. "\n" .. result.report)
    end
    assert(r.ws.opened >= 30, result.report)
  end)

  it("keeps every balance equal to its ledger and credits nothing twice", function()
    group_ok("money")
  end)

  it("loses no acknowledged play, claim or grant", function()
    group_ok("lost")
  end)

  it("leaves no crash round open", function()
    group_ok("rounds")
  end)

  it("answers no 5xx outside the outage windows, and the surviving host served throughout", function()
    group_ok("http")
  end)
end)
