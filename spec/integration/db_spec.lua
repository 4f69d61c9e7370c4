-- db_spec.lua - host.db against a real PostgreSQL, through the fixture routes
-- of spec/fixtures/scripts/routes/db.lua: typed rows, transactions under
-- concurrency, rollback on error, deferred statements (db.defer), after_commit, pool exhaustion, and a
-- PostgreSQL restart under load. Needs the test command's environment:
-- DATABASE_URL and PG* (psql), CC_SERVICES_DATADIR (tools/services.sh).
local support = require "spec.support.host"
local http = require "spec.support.http"
local null = http.json.null

local DBNAME = "cc_spec_db"

-- Runs SQL through psql (PG* from the environment) on database db.
local function psql(db, sql)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write("SET client_min_messages = warning;\n", sql)
  f:close()
  local rc = os.execute("psql -X -q -v ON_ERROR_STOP=1 -d " .. db .. " -f " .. file .. " >/dev/null")
  os.remove(file)
  assert(rc == 0 or rc == true, "psql failed on: " .. sql)
end

local function spec_url()
  local url = assert(os.getenv("DATABASE_URL"), "DATABASE_URL must be set (the test command sets it)")
  local base, rest = url:match("^(postgres[%w]*://[^/]+)/[^?]*(.*)$")
  assert(base, "cannot parse DATABASE_URL")
  return base .. "/" .. DBNAME .. rest
end

-- Sends n requests on n connections at once, then reads every answer.
local concurrent = http.concurrent

local function statuses(responses)
  local count = {}
  for _, r in ipairs(responses) do count[r.status] = (count[r.status] or 0) + 1 end
  return count
end

describe("host.db", function()
  local host

  setup(function()
    psql("postgres", "DROP DATABASE IF EXISTS " .. DBNAME .. " WITH (FORCE); CREATE DATABASE " .. DBNAME .. ";")
    psql(DBNAME, [[
      CREATE TABLE counters (name text PRIMARY KEY, n bigint NOT NULL);
      CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
      CREATE TABLE tx_events (id serial PRIMARY KEY, name text NOT NULL, kind text NOT NULL);
    ]])
    host = support.start { WORKERS = "2", DATABASE_URL = spec_url(), DB_POOL_SIZE = "4" }
  end)

  teardown(function()
    host:stop()
    psql("postgres", "DROP DATABASE IF EXISTS " .. DBNAME .. " WITH (FORCE);")
  end)

  it("returns rows with typed values, NULL as an absent key", function()
    local res = host:request("GET", "/test/db/types")
    assert.equal(200, res.status, res.body)
    local r = res.json
    assert.equal(7, r.small)
    assert.equal(2147483647, r.int)
    assert.equal(9007199254740991, r.big)
    assert.truthy(res.body:find('"big":9007199254740991', 1, true))
    assert.equal(0.5, r.float)
    assert.equal("12345678901234567890.123", r.numeric)
    assert.equal(true, r.yes)
    assert.equal(false, r.no)
    assert.same({ 1, 2 }, r.doc.a)
    assert.truthy(res.body:find('"c":[]', 1, true))
    assert.equal("2024-02-29T23:59:58.123Z", r.at)
    assert.equal("2024-02-29", r.day)
    assert.equal("héllo", r.text)
    assert.is_nil(r.missing)
    assert.equal(false, r.has_missing)
    assert.equal("x", r.param_text)
    assert.equal(42, r.param_int)
    assert.equal(true, r.param_bool)
    assert.same({ k = { 1, 2 } }, r.param_json)
    assert.equal(true, r.param_null)
  end)

  it("keeps an exact count under 200 concurrent transactions", function()
    local responses = concurrent(host.port, 200, "POST", "/test/db/counter?name=race")
    local seen = {}
    for _, r in ipairs(responses) do
      assert.equal(200, r.status, r.body)
      assert.is_nil(seen[r.json.value])
      seen[r.json.value] = true
    end
    for v = 1, 200 do assert.truthy(seen[v], "value " .. v .. " missing") end
    assert.equal(200, host:request("GET", "/test/db/counter?name=race").json.value)
  end)

  it("rolls back a transaction that raises: 500 and nothing written", function()
    local res = host:request("POST", "/test/db/fail?name=ghost")
    assert.equal(500, res.status)
    assert.truthy(res.json.request_id)
    assert.equal(0, host:request("GET", "/test/db/items?name=ghost").json.count)
  end)

  it("sends deferred statements with the next one, in order, and hands each its answer", function()
    local res = host:request("POST", "/test/db/defer?name=deferred&mode=commit")
    assert.equal(200, res.status)
    assert.is_true(res.json.committed)
    assert.equal(3, res.json.seen) -- the read went after the three inserts
    assert.equal(3, #res.json.ids)
    assert.truthy(res.json.ids[1] < res.json.ids[2] and res.json.ids[2] < res.json.ids[3])
    assert.equal(3, host:request("GET", "/test/db/items?name=deferred").json.count)
    res = host:request("POST", "/test/db/defer?name=deferred-many&mode=many")
    assert.equal(100, res.json.seen) -- more than one pipeline's worth
    assert.equal(100, host:request("GET", "/test/db/items?name=deferred-many").json.count)
    res = host:request("POST", "/test/db/defer?name=deferred-distinct&mode=distinct")
    assert.is_true(res.json.committed)
    assert.equal(2 * (300 + 300 * 301 / 2), res.json.sum) -- every answer right across the cache resets
    assert.truthy(res.json.prepared <= 256, res.json.prepared) -- the session's statements were deallocated
    res = host:request("POST", "/test/db/defer?name=deferred-outside&mode=outside")
    assert.equal(200, res.status)
    assert.truthy(res.json.id > 0)
    assert.equal(1, host:request("GET", "/test/db/items?name=deferred-outside").json.count)
  end)

  it("reads a registered value with the xid, as of the transaction's start; none read only or outside", function()
    local function call(mode)
      local res = host:request("POST", "/test/db/xid_read?mode=" .. mode)
      assert.equal(200, res.status, res.body)
      return res.json
    end
    assert.same({ reader = true, n = null, in_xid_statement = true }, call("tx")) -- no row: nil
    psql(DBNAME, "INSERT INTO counters (name, n) VALUES ('xid', 5)")
    assert.same({ reader = true, n = 5, in_xid_statement = true }, call("tx"))
    assert.same({ reader = true, n = 6, in_xid_statement = true }, call("tx"))
    assert.same({ reader = false }, call("read_only"))
    assert.same({ reader = false }, call("outside"))
  end)

  it("fails the COMMIT when a deferred statement fails, and writes nothing", function()
    for _ = 1, 3 do -- the same pooled connections serve on: nothing is left open on them
      local res = host:request("POST", "/test/db/defer?name=deferred-fail&mode=fail")
      assert.equal(200, res.status)
      assert.is_false(res.json.committed)
      assert.equal("23502", res.json.sqlstate) -- not-null violation
      assert.equal("23502", res.json.answer_state) -- the failed statement's own answer
      assert.equal(0, host:request("GET", "/test/db/items?name=deferred-fail").json.count)
    end
    -- rolled back before release: no connection was handed back inside a transaction
    assert.falsy(host:log_text():find("released inside a transaction", 1, true))
    local res = host:request("POST", "/test/db/defer?name=deferred-raise&mode=raise")
    assert.is_false(res.json.committed)
    assert.truthy(res.json.error:find("deliberate failure", 1, true))
    assert.equal(0, host:request("GET", "/test/db/items?name=deferred-raise").json.count)
    for _ = 1, 10 do -- more than the pools hold: each raise gives its connection back
      res = host:request("POST", "/test/db/defer?name=deferred-bad&mode=bad_param")
      assert.is_false(res.json.committed)
      assert.truthy(res.json.error:find("cannot encode a function", 1, true), res.json.error)
    end
    assert.equal(0, host:request("GET", "/test/db/items?name=deferred-bad").json.count)
  end)

  it("drops the deferred statements of a savepoint that rolls back, keeps the rest", function()
    local res = host:request("POST", "/test/db/defer?name=deferred-nested&mode=nested")
    assert.is_true(res.json.committed)
    assert.is_true(res.json.nested_error)
    assert.truthy(res.json.inner_answer:find("not run", 1, true))
    assert.equal(1, host:request("GET", "/test/db/items?name=deferred-nested").json.count)
    assert.equal(0, host:request("GET", "/test/db/items?name=deferred-nested-inner").json.count)
  end)

  it("runs after_commit once per committed transaction, never for a rolled-back one", function()
    for _ = 1, 5 do assert.equal(200, host:request("POST", "/test/db/after_commit?name=kept").status) end
    for _ = 1, 3 do
      assert.equal(500, host:request("POST", "/test/db/after_commit?name=dropped&fail=true").status)
    end
    assert.same({ tx = 5, after = 5 }, host:request("GET", "/test/db/events?name=kept").json)
    assert.same({ tx = 0, after = 0 }, host:request("GET", "/test/db/events?name=dropped").json)
  end)

  it("retries serialization failures; after_commit runs for committed attempts only", function()
    psql(DBNAME, "INSERT INTO counters VALUES ('serial', 0);")
    local count = statuses(concurrent(host.port, 12, "POST", "/test/db/serial?name=serial"))
    assert.truthy((count[200] or 0) > 1, "more than one transaction committed")
    assert.equal(12, (count[200] or 0) + (count[409] or 0))
    local value = host:request("GET", "/test/db/counter?name=serial").json.value
    assert.equal(count[200], value)
    assert.same({ tx = 0, after = value }, host:request("GET", "/test/db/events?name=serial").json)
  end)

  it("answers 'pool timeout' when every connection stays busy, then recovers", function()
    local small = support.start {
      WORKERS = "1", DATABASE_URL = spec_url(), DB_POOL_SIZE = "2", DB_POOL_TIMEOUT_MS = "300",
    }
    local t0 = require("socket").gettime()
    local count, detail = {}, nil
    for _, r in ipairs(concurrent(small.port, 3, "GET", "/test/db/sleep?seconds=1")) do
      count[r.status] = (count[r.status] or 0) + 1
      if r.status == 503 then detail = r.json.detail end
    end
    assert.equal(2, count[200])
    assert.equal(1, count[503])
    assert.equal("pool timeout", detail)
    assert.truthy(require("socket").gettime() - t0 < 5)
    assert.equal(200, small:request("GET", "/test/db/sleep?seconds=0").status)
    small:stop()
  end)

  it("survives a PostgreSQL restart: errors during the outage, then the same workers serve", function()
    local datadir = assert(os.getenv("CC_SERVICES_DATADIR"), "CC_SERVICES_DATADIR must be set (the test command sets it)")
    local pids = host:workers()
    assert.equal(200, host:request("POST", "/test/db/counter?name=restart").status)
    -- a request holding a connection while the server goes away
    local held = assert(http.connect(host.port, 30))
    assert(held:send(http.format("GET", "/test/db/sleep?seconds=20")))
    support.sleep(0.3)
    local envfile = os.tmpname()
    local restarted = false
    local ok, err = pcall(function()
      assert.equal(0, os.execute("tools/services.sh stop " .. datadir .. " >/dev/null 2>&1"))
      local res = assert(held:read_response())
      assert.equal(503, res.status)
      for _ = 1, 5 do
        local t = require("socket").gettime()
        local r = assert(host:request("POST", "/test/db/counter?name=restart"))
        assert.equal(503, r.status)
        assert.truthy(require("socket").gettime() - t < 6, "an outage error must not hang")
      end
      assert.equal(0, os.execute("CC_PG_FAST=1 CC_REDIS_EPHEMERAL=1 tools/services.sh start " .. datadir
        .. " " .. envfile .. " >/dev/null 2>&1"))
      restarted = true
      local served = support.wait_for(function()
        local r = host:request("POST", "/test/db/counter?name=restart")
        return r and r.status == 200
      end, 20)
      assert.truthy(served, "the host serves again after PostgreSQL came back")
      -- Every connection of both workers works again, without a restart:
      -- each slot reconnects when its own backoff ends (at most 5 s), and
      -- until then a worker whose slots all wait answers 503 at once.
      local count
      support.wait_for(function()
        count = statuses(concurrent(host.port, 20, "POST", "/test/db/counter?name=restart"))
        return count[200] == 20
      end, 15)
      assert.equal(20, count[200])
      assert.same(pids, host:workers())
    end)
    held:close()
    if not restarted then
      os.execute("CC_PG_FAST=1 CC_REDIS_EPHEMERAL=1 tools/services.sh start " .. datadir .. " " .. envfile
        .. " >/dev/null 2>&1")
    end
    os.remove(envfile)
    assert(ok, err)
  end)
end)
