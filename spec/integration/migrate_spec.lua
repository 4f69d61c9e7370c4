-- migrate_spec.lua - `cchost migrate` (the schema migrations runner) against
-- a real PostgreSQL. Every test gets a fresh database and its own copy of the
-- fixture migrations (spec/fixtures/migrations) so it can change a file after
-- applying it. The server comes from PGHOST/PGPORT/PGUSER, which the test
-- command exports from tools/services.sh's env file.
local unistd = require "posix.unistd"

local BIN = os.getenv("CCHOST_BIN") or "build/cchost"
local FIXTURES = "spec/fixtures/migrations"

local function quote(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

-- Runs a shell command; returns its output (stdout and stderr) and status.
local function sh(cmd)
  local f = io.popen("(" .. cmd .. ") 2>&1; echo \"exit=$?\"")
  local out = f:read("*a")
  f:close()
  local code = tonumber(out:match("exit=(%d+)%s*$"))
  return (out:gsub("exit=%d+%s*$", "")), code
end

local function pg_settings()
  local host, port, user = os.getenv("PGHOST"), os.getenv("PGPORT"), os.getenv("PGUSER")
  assert(host and port and user, "PGHOST, PGPORT and PGUSER are not set: run the specs through tools/test.sh, "
    .. "or export them from a tools/services.sh env file")
  return host, port, user
end

-- Runs sql on database db; returns the rows as "a|b" lines. Raises on error.
local function psql(db, sql)
  local out, code = sh("psql -X -q -A -t -v ON_ERROR_STOP=1 -d " .. quote(db) .. " -c " .. quote(sql))
  assert(code == 0, "psql failed: " .. out)
  return out
end

local function write(path, text, mode)
  local f = assert(io.open(path, mode or "w"))
  f:write(text)
  f:close()
end

local function sha256(path)
  return (sh("sha256sum " .. quote(path))):match("^(%x+)")
end

local counter = 0
local db, dir, url

-- The `cchost migrate` command line with a clean environment: only
-- DATABASE_URL (and the sanitizer options the test command sets).
local function command(args)
  local env = { "PATH=/usr/bin:/bin", "DATABASE_URL=" .. quote(url) }
  for _, k in ipairs { "ASAN_OPTIONS", "UBSAN_OPTIONS" } do
    if os.getenv(k) then env[#env + 1] = k .. "=" .. quote(os.getenv(k)) end
  end
  return "env -i " .. table.concat(env, " ") .. " " .. BIN .. " migrate --dir " .. quote(dir) .. " " .. (args or "")
end

local function migrate(args)
  return sh(command(args))
end

local function copy(fixture_dir, name)
  local out, code = sh("cp " .. FIXTURES .. "/" .. fixture_dir .. "/" .. (name or "*") .. " " .. quote(dir))
  assert(code == 0, out)
end

local function applied()
  return (psql(db, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"):gsub("%s+$", ""))
end

local function table_exists(name)
  return psql(db, "SELECT to_regclass('" .. name .. "') IS NOT NULL"):match("^t") ~= nil
end

describe("cchost migrate", function()
  before_each(function()
    local host, port, user = pg_settings()
    counter = counter + 1
    db = string.format("cc_migrate_%d_%d_%d", unistd.getpid(), os.time(), counter)
    psql("postgres", "CREATE DATABASE " .. db)
    url = string.format("postgresql://%s@%s:%s/%s", user, host, port, db)
    dir = (sh("mktemp -d /tmp/cc-migrate-XXXXXX")):gsub("%s+$", "")
    copy("good")
  end)

  after_each(function()
    psql("postgres", "DROP DATABASE IF EXISTS " .. db .. " WITH (FORCE)")
    os.execute("rm -rf " .. quote(dir))
  end)

  it("applies fresh migrations in order and records their SHA-256", function()
    local out, code = migrate()
    assert.equal(0, code, out)
    local first, second = out:find("applied 0001_widgets", 1, true), out:find("applied 0002_widget_seed", 1, true)
    assert.truthy(first and second and first < second, out)
    assert.truthy(out:find("migrated: 2 applied", 1, true), out)
    assert.equal("sprocket", (psql(db, "SELECT name FROM widgets"):gsub("%s+$", "")))
    assert.truthy(table_exists("widgets_created_at"))
    local rows = psql(db, "SELECT version, checksum, applied_at IS NOT NULL FROM schema_migrations ORDER BY version")
    assert.equal("0001_widgets|" .. sha256(dir .. "/0001_widgets.sql") .. "|t\n"
      .. "0002_widget_seed|" .. sha256(dir .. "/0002_widget_seed.sql") .. "|t\n", rows)
  end)

  it("applies nothing on a re-run", function()
    assert.equal(0, select(2, migrate()))
    local out, code = migrate()
    assert.equal(0, code, out)
    assert.is_nil(out:find("applied 0", 1, true), out)
    assert.truthy(out:find("up to date: 0 applied, database at 0002_widget_seed", 1, true), out)
    assert.equal("0001_widgets,0002_widget_seed", applied())
    assert.equal("1", (psql(db, "SELECT count(*) FROM widgets"):gsub("%s+$", "")))
  end)

  it("lists applied and pending migrations with --status, and --check refuses pending ones", function()
    os.remove(dir .. "/0002_widget_seed.sql")
    assert.equal(0, select(2, migrate()))
    copy("good", "0002_widget_seed.sql")
    local out, code = migrate("--status")
    assert.equal(1, code, out)
    assert.truthy(out:find("applied  0001_widgets  %d%d%d%d%-%d%d%-%d%d"), out)
    assert.truthy(out:find("pending  0002_widget_seed\n", 1, true), out)
    assert.truthy(out:find("1 pending", 1, true), out)
    out, code = migrate("--check")
    assert.equal(1, code, out)
    assert.truthy(out:find("lacks 1 migration (first: 0002_widget_seed)", 1, true), out)
    assert.equal("0001_widgets", applied())

    assert.equal(0, select(2, migrate()))
    out, code = migrate("--status")
    assert.equal(0, code, out)
    assert.truthy(out:find("applied  0002_widget_seed", 1, true), out)
    assert.truthy(out:find("up to date", 1, true), out)
    out, code = migrate("--check")
    assert.equal(0, code, out)
  end)

  it("lists and checks a database that was never migrated", function()
    local out, code = migrate("--status")
    assert.equal(1, code, out)
    assert.truthy(out:find("pending  0001_widgets\npending  0002_widget_seed\n2 pending", 1, true), out)
    out, code = migrate("--check")
    assert.equal(1, code, out)
    assert.truthy(out:find("lacks 2 migrations (first: 0001_widgets)", 1, true), out)
    assert.is_false(table_exists("schema_migrations"))
  end)

  it("refuses to go on when an applied file was changed", function()
    assert.equal(0, select(2, migrate()))
    local before = sha256(dir .. "/0001_widgets.sql")
    write(dir .. "/0001_widgets.sql", "-- an innocent comment\n", "a")
    write(dir .. "/0003_more.sql", "CREATE TABLE more_widgets (id int);\n")
    local out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("migration 0001_widgets was changed after it was applied (checksum " .. before
      .. " when applied, " .. sha256(dir .. "/0001_widgets.sql") .. " now)", 1, true), out)
    assert.equal("0001_widgets,0002_widget_seed", applied())
    assert.is_false(table_exists("more_widgets"))
    out, code = migrate("--check")
    assert.equal(1, code, out)
    assert.truthy(out:find("0001_widgets was changed", 1, true), out)
    out, code = migrate("--status")
    assert.equal(1, code, out)
    assert.truthy(out:find("changed  0001_widgets", 1, true), out)
    assert.truthy(out:find("pending  0003_more", 1, true), out)
  end)

  it("refuses a database that holds a version the code lacks", function()
    assert.equal(0, select(2, migrate()))
    psql(db, "INSERT INTO schema_migrations (version, checksum) VALUES ('0009_future', repeat('0', 64))")
    write(dir .. "/0003_more.sql", "CREATE TABLE more_widgets (id int);\n")
    local out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("database has migration 0009_future that this code does not have", 1, true), out)
    assert.is_false(table_exists("more_widgets"))
    out, code = migrate("--check")
    assert.equal(1, code, out)
    assert.truthy(out:find("0009_future", 1, true), out)
  end)

  it("refuses a new file numbered before an applied one (one linear history)", function()
    os.remove(dir .. "/0002_widget_seed.sql")
    write(dir .. "/0003_more.sql", "CREATE TABLE more_widgets (id int);\n")
    assert.equal(0, select(2, migrate()))
    copy("good", "0002_widget_seed.sql")
    local out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("migration 0002_widget_seed is not applied but the later 0003_more is", 1, true), out)
    assert.equal("0001_widgets,0003_more", applied())
  end)

  it("rolls a failing migration back completely and keeps the earlier ones", function()
    copy("broken")
    write(dir .. "/0004_after.sql", "CREATE TABLE after_broken (id int);\n")
    local out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("migration 0003_gadgets_broken failed at line 7: syntax error at or near \"SELEC\"", 1,
      true), out)
    assert.equal("0001_widgets,0002_widget_seed", applied())
    assert.is_false(table_exists("gadgets"))
    assert.is_false(table_exists("after_broken"))

    -- A run-time error names its line too, and a fixed file then applies.
    write(dir .. "/0003_gadgets_broken.sql", "CREATE TABLE gadgets (id int);\n\nINSERT INTO nowhere VALUES (1);\n")
    out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("migration 0003_gadgets_broken failed at line 3: relation \"nowhere\" does not exist", 1,
      true), out)
    assert.is_false(table_exists("gadgets"))
    write(dir .. "/0003_gadgets_broken.sql", "CREATE TABLE gadgets (id int);\n")
    out, code = migrate()
    assert.equal(0, code, out)
    assert.equal("0001_widgets,0002_widget_seed,0003_gadgets_broken,0004_after", applied())
  end)

  it("applies each file once when two runners start together", function()
    copy("slow")
    local outs = { dir .. "/run1.out", dir .. "/run2.out" }
    local parts = {}
    for i, o in ipairs(outs) do
      parts[i] = "(" .. command() .. " >" .. quote(o) .. " 2>&1; echo \"exit=$?\" >>" .. quote(o) .. ") &"
    end
    sh(table.concat(parts, " ") .. " wait")
    local r1, r2 = assert(io.open(outs[1])):read("*a"), assert(io.open(outs[2])):read("*a")
    local both = r1 .. "\n----\n" .. r2
    assert.truthy(r1:find("exit=0", 1, true) and r2:find("exit=0", 1, true), both)
    local _, applied_lines = both:gsub("applied 0003_slow_gizmos", "")
    assert.equal(1, applied_lines, both)
    assert.truthy(both:find("another host is migrating this database; waiting", 1, true), both)
    assert.truthy(both:find("up to date: 0 applied, database at 0003_slow_gizmos", 1, true), both)
    assert.equal("0001_widgets,0002_widget_seed,0003_slow_gizmos", applied())
    assert.equal("1|1", (psql(db, "SELECT (SELECT count(*) FROM widgets), (SELECT count(*) FROM gizmos)")
      :gsub("%s+$", "")))
  end)

  it("refuses bad file names and duplicate numbers before touching the database", function()
    write(dir .. "/0003-More.sql", "CREATE TABLE more_widgets (id int);\n")
    local out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("bad migration file name '0003-More.sql'", 1, true), out)
    assert.is_false(table_exists("schema_migrations"))
    os.remove(dir .. "/0003-More.sql")
    write(dir .. "/0002_other_seed.sql", "SELECT 1;\n")
    out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("0002_other_seed and 0002_widget_seed share the number 0002", 1, true), out)
    assert.is_false(table_exists("schema_migrations"))
  end)

  it("reports usage and configuration errors", function()
    local out, code = migrate("--bogus")
    assert.equal(2, code, out)
    assert.truthy(out:find("usage: cchost migrate", 1, true), out)
    out, code = migrate("--status --check")
    assert.equal(2, code, out)
    url = ""
    out, code = migrate()
    assert.equal(1, code, out)
    assert.truthy(out:find("DATABASE_URL is empty", 1, true), out)
  end)
end)
