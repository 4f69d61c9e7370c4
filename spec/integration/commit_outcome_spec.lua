-- commit_outcome_spec.lua - db.tx when the answer to COMMIT is lost
-- (CONTRACT.md §3 "Commit ambiguity"). A wire-protocol proxy
-- (spec/support/pgproxy.lua) sits between the host and PostgreSQL and, on a
-- marker in the fixture route's SQL (spec/fixtures/scripts/routes/db.lua),
-- swallows the answer to the next COMMIT or drops the COMMIT itself, then
-- closes the connection: the host must learn what happened before it
-- answers. Needs the test command's environment (PGPORT, PG* for psql).
local support = require "spec.support.host"
local pgproxy = require "spec.support.pgproxy"

local DBNAME = "cc_spec_commit_outcome"
local UNKNOWN = "Outcome unknown: retry with the same Idempotency-Key"

-- Runs SQL through psql on database db; returns its unaligned output.
local function psql(db, sql)
  local file = os.tmpname()
  local f = assert(io.open(file, "w"))
  f:write("SET client_min_messages = warning;\n", sql)
  f:close()
  local p = assert(io.popen("psql -X -q -A -t -v ON_ERROR_STOP=1 -d " .. db .. " -f " .. file))
  local out = p:read("*a")
  local ok = p:close()
  os.remove(file)
  assert(ok == 0 or ok == true, "psql failed on: " .. sql)
  return (out:gsub("%s+$", ""))
end

local function count_items(name)
  return tonumber(psql(DBNAME, "SELECT count(*) FROM items WHERE name = '" .. name .. "'"))
end

local function count_after(name)
  return tonumber(psql(DBNAME, "SELECT count(*) FROM tx_events WHERE kind = 'after' AND name = '" .. name .. "'"))
end

-- The spec database reached through proxy: the simple startup the proxy
-- parses (no SSL or GSS negotiation).
local function proxied_url(proxy)
  return "postgresql://" .. (os.getenv("PGUSER") or "casino") .. "@127.0.0.1:" .. proxy.port .. "/" .. DBNAME
    .. "?sslmode=disable&gssencmode=disable"
end

local function start_proxy(outage_s)
  local port = assert(os.getenv("PGPORT"), "PGPORT must be set (the test command sets it)")
  return pgproxy.start { upstream_port = tonumber(port), outage_s = outage_s,
                         log = os.getenv("PGPROXY_LOG") }
end

describe("db.tx with a lost COMMIT answer", function()
  local proxy, host

  setup(function()
    psql("postgres", "DROP DATABASE IF EXISTS " .. DBNAME .. " WITH (FORCE); CREATE DATABASE " .. DBNAME .. ";")
    psql(DBNAME, [[
      CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
      CREATE TABLE tx_events (id serial PRIMARY KEY, name text NOT NULL, kind text NOT NULL);
    ]])
    proxy = start_proxy(5)
    host = support.start { WORKERS = "1", DATABASE_URL = proxied_url(proxy), DB_POOL_SIZE = "3" }
  end)

  teardown(function()
    if host then host:stop() end
    if proxy then proxy.stop() end
    psql("postgres", "DROP DATABASE IF EXISTS " .. DBNAME .. " WITH (FORCE);")
  end)

  it("commits as usual through the proxy when nothing is lost", function()
    local res = host:request("POST", "/test/db/commit_fault?name=plain")
    assert.equal(200, res.status, res.body)
    assert.equal(tonumber(psql(DBNAME, "SELECT id FROM items WHERE name = 'plain'")), res.json.id)
    assert.equal(1, count_after("plain"))
  end)

  it("offers read-only transactions that refuse writes", function()
    assert.equal(200, host:request("POST", "/test/db/commit_fault?name=ro").status)
    local res = host:request("GET", "/test/db/read_only?name=ro")
    assert.equal(200, res.status, res.body)
    assert.same({ count = 1, write_sqlstate = "25006" }, res.json)
    assert.equal(1, count_items("ro"))
  end)

  it("answers the committed result when the COMMIT committed but its answer was lost", function()
    local res = host:request("POST", "/test/db/commit_fault?name=lost-reply&fault=reply-lost")
    assert.equal(200, res.status, res.body)
    assert.equal(1, count_items("lost-reply"))
    assert.equal(tonumber(psql(DBNAME, "SELECT id FROM items WHERE name = 'lost-reply'")), res.json.id)
    assert.equal(1, count_after("lost-reply"), "after_commit runs as after any COMMIT")
    local log = host:log_text()
    assert.truthy(log:find("no answer to COMMIT", 1, true), log:sub(-2000))
    assert.truthy(log:find("committed (learned in", 1, true), log:sub(-2000))
    -- the host keeps serving on its other and reopened connections
    assert.equal(200, host:request("POST", "/test/db/commit_fault?name=after-lost-reply").status)
  end)

  it("answers 503 with nothing written when the COMMIT never reached the server", function()
    local res = host:request("POST", "/test/db/commit_fault?name=lost-commit&fault=never-arrives")
    assert.equal(503, res.status, res.body)
    assert.same({ detail = "Service temporarily unavailable" }, res.json)
    assert.equal(0, count_items("lost-commit"))
    assert.equal(0, count_after("lost-commit"))
    assert.truthy(host:log_text():find("aborted (learned in", 1, true))
    assert.equal(200, host:request("POST", "/test/db/commit_fault?name=after-lost-commit").status)
  end)

  it("ends the old session when it still holds the transaction, then answers the abort's 503", function()
    local res = host:request("POST", "/test/db/commit_fault?name=held&fault=never-arrives-held")
    assert.equal(503, res.status, res.body)
    assert.same({ detail = "Service temporarily unavailable" }, res.json)
    assert.equal(0, count_items("held"))
    assert.equal(0, count_after("held"))
    local log = host:log_text()
    assert.truthy(log:find("still in progress: terminated server pid", 1, true), log:sub(-2000))
    -- no session of the spec database is left idle in a transaction
    assert.equal("0", psql("postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = '" .. DBNAME
      .. "' AND state LIKE 'idle in transaction%'"))
  end)

  it("answers 503 'Outcome unknown' when the database stays out of reach past the deadline", function()
    local outage_proxy = start_proxy(5)
    local h = support.start { WORKERS = "1", DATABASE_URL = proxied_url(outage_proxy), DB_POOL_SIZE = "3",
                              COMMIT_OUTCOME_TIMEOUT_MS = "300" }
    local ok, err = pcall(function()
      local res = h:request("POST", "/test/db/commit_fault?name=unknown&fault=reply-lost-outage")
      assert.equal(503, res.status, res.body)
      assert.same({ detail = UNKNOWN }, res.json)
      -- it did commit: exactly the case the answer warns about
      assert.equal(1, count_items("unknown"))
      assert.equal(0, count_after("unknown"), "after_commit never runs for an unknown outcome")
      assert.truthy(h:log_text():find("outcome unknown (learned in", 1, true))
      -- once the outage is over the same host serves again
      local served = support.wait_for(function()
        local r = h:request("POST", "/test/db/commit_fault?name=after-unknown")
        return r and r.status == 200
      end, 30)
      assert.truthy(served, "the host serves again after the outage")
    end)
    h:stop()
    outage_proxy.stop()
    assert(ok, err)
  end)
end)
