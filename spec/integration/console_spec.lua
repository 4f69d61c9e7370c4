-- console_spec.lua - the browser console /console (issue 15; DESIGN.md
-- "Browser console"): the static files of scripts/console served with
-- their security headers (a strict Content-Security-Policy with
-- frame-ancestors 'none', nosniff), types, validators and cache rules, the
-- vendor files from npm under /console/vendor, and the browser journeys of
-- spec/browser/journeys.mjs run in Debian's headless Chromium
-- (playwright-core from tools/docs/install.sh --dev) against a real host
-- with real PostgreSQL and Redis.
--
-- Tagged #browser: the test command runs it in the normal pass only, not
-- in the sanitizer pass (a browser adds nothing there and is slow). Set
-- CC_CONSOLE_SHOTS to a folder to keep the journeys' screenshots; by
-- default they go to a temporary folder that is removed unless a journey
-- failed.
local support = require "spec.support.host"
local api = require "spec.support.api"
local http = require "spec.support.http"
local redis = require "spec.support.redis"

local cjson = http.json
local BIN = os.getenv("CCHOST_BIN") or "build/cchost"
local CHROMIUM = os.getenv("CHROMIUM") or "/usr/bin/chromium"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its output (stdout and stderr) and whether
-- it exited 0.
local function run(cmd)
  local p = assert(io.popen(cmd .. ' 2>&1; echo "exit status $?"'))
  local out = p:read("*a")
  p:close()
  return out:gsub("exit status %d+\n$", ""), out:match("exit status (%d+)\n$") == "0"
end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("the browser console #browser", function()
  local host, admin, redis_port, redis_dir

  local function get(path, headers) return http.get(host.port, path, headers) end

  setup(function()
    -- A private Redis: crash rounds and presence are keyed by user id, and
    -- ids restart at 1 in every spec database, so rounds other hosts left
    -- in a shared Redis would meet this host's players.
    redis_dir = os.tmpname()
    os.remove(redis_dir)
    assert(redis.sh("mkdir -p " .. redis_dir))
    redis_port = redis.free_port()
    redis.start(redis_port, redis_dir)
    host = support.start { WORKERS = "1", REDIS_HOST = "127.0.0.1", REDIS_PORT = tostring(redis_port) }
    admin = api.player(host)
    api.make_admin(host, admin.id)
  end)

  teardown(function()
    if host then host:stop() end
    if redis_port then redis.stop(redis_port) end
    if redis_dir then redis.sh("rm -rf " .. redis_dir) end
  end)

  it("serves the app with a strict Content-Security-Policy, nosniff and no framing", function()
    for _, path in ipairs { "/console", "/console/", "/console/index.html", "/console/js/main.js", "/console/app.css" } do
      local res = get(path)
      assert.equal(200, res.status, path)
      local csp = res.headers["content-security-policy"]
      assert.is_string(csp, path)
      assert.matches("default%-src 'self'", csp)
      assert.matches("script%-src 'self';", csp)
      assert.matches("frame%-ancestors 'none'", csp)
      assert.matches("object%-src 'none'", csp)
      assert.is_nil(csp:find("unsafe", 1, true), csp)
      assert.equal("nosniff", res.headers["x-content-type-options"], path)
      assert.equal("DENY", res.headers["x-frame-options"], path)
    end
    -- The policy is the console mount's: the docs pages keep their own.
    assert.is_nil(get("/docs/").headers["content-security-policy"])
  end)

  it("answers types, ETag and 304, and Cache-Control by kind of file", function()
    local want = {
      ["/console/"] = { "text/html; charset=utf-8", "no-cache" },
      ["/console/js/main.js"] = { "text/javascript; charset=utf-8", "no-cache" },
      ["/console/app.css"] = { "text/css; charset=utf-8", "no-cache" },
      ["/console/favicon.svg"] = { "image/svg+xml", "no-cache" },
      ["/console/vendor/htm-3.1.1/preact/standalone.module.js"] = { "text/javascript; charset=utf-8",
        "public, max-age=31536000, immutable" },
      ["/console/vendor/uplot-1.6.32/dist/uPlot.min.css"] = { "text/css; charset=utf-8",
        "public, max-age=31536000, immutable" },
      ["/console/vendor/noble-hashes-2.4.0/hmac.js"] = { "text/javascript; charset=utf-8",
        "public, max-age=31536000, immutable" },
    }
    for path, w in pairs(want) do
      local res = get(path)
      assert.equal(200, res.status, path .. " (vendor files: tools/docs/install.sh)")
      assert.equal(w[1], res.headers["content-type"], path)
      assert.equal(w[2], res.headers["cache-control"], path)
      local again = get(path, { ["If-None-Match"] = res.headers.etag })
      assert.equal(304, again.status, path)
    end
  end)

  it("loads only files of this host: every module import and page link resolves here", function()
    local html = get("/console/").body
    local urls = {}
    for u in html:gmatch('<script[^>]- src="([^"]+)"') do urls[#urls + 1] = u end
    for u in html:gmatch('<link[^>]- href="([^"]+)"') do urls[#urls + 1] = u end
    assert.is_nil(html:find("<script>", 1, true)) -- no inline script
    local p = assert(io.popen("find scripts/console/js -name '*.js' | sort"))
    local n = 0
    for file in p:lines() do
      n = n + 1
      local text = assert(io.open(file)):read("*a")
      assert.is_nil(text:match("https?://[%w%.%-]+%.%a%a+"), file .. " names another host")
      local dir = file:gsub("^scripts/console", "/console"):gsub("/[^/]+$", "")
      for spec in text:gmatch("from '([^']+)'") do
        local url = dir .. "/" .. spec
        repeat local before = url url = url:gsub("/%./", "/"):gsub("/[^/%.][^/]*/%.%./", "/", 1) until url == before
        urls[#urls + 1] = url
      end
    end
    p:close()
    assert.is_true(n >= 10)
    for _, url in ipairs(urls) do
      assert.matches("^/console/", url)
      assert.equal(200, get(url).status, url)
    end
  end)

  it("keeps everything outside the folder out of reach (404, never 5xx)", function()
    for _, path in ipairs {
      "/console/../config/settings.lua", "/console/%2e%2e/config/settings.lua", "/console/vendor/../index.html",
      "/console/vendor/%2e%2e/%2e%2e/README.md", "/console/.%2e/README.md", "/console/js%2fmain.js",
      "/console/" .. string.rep("x", 300) .. ".js", "/console/missing.js",
    } do
      local res = get(path)
      assert.equal(404, res.status, path)
      assert.same({ detail = "Not Found" }, res.json, path)
    end
  end)

  it("passes the journeys in headless Chromium: slot and mission, crash, fairness, ban, broadcast, RTP", function()
    assert.is_true(exists(CHROMIUM), CHROMIUM .. " is missing: tools/setup.sh installs chromium")
    assert.is_true(exists("var/docs/node_modules/playwright-core/package.json"),
      "playwright-core is missing: run tools/docs/install.sh --dev")
    -- The slot's exact RTP as `cchost rtp` prints it (a short simulation:
    -- the exact column does not depend on it).
    local out, ok = run(BIN .. " rtp --plays 1000")
    assert.is_true(ok, out)
    local slot_rtp = out:match("\nslot%s+(%d%.%d+)")
    assert.is_string(slot_rtp, out)

    local keep = os.getenv("CC_CONSOLE_SHOTS")
    local shots = keep or os.tmpname()
    if not keep then os.remove(shots) end
    assert(os.execute("mkdir -p " .. shell_quote(shots)) == 0)
    local env = {
      CONSOLE_URL = "http://127.0.0.1:" .. host.port, CONSOLE_OUT = shots, CHROMIUM = CHROMIUM,
      CONSOLE_ADMIN_SITE_ID = admin.site_id, CONSOLE_ADMIN_PASSWORD = admin.password, CONSOLE_SLOT_RTP = slot_rtp,
    }
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
    local t0 = os.time()
    local text = run("env " .. table.concat(parts, " ") .. " timeout 170 node spec/browser/journeys.mjs")
    local journeys, failed = {}, {}
    for line in text:gmatch("JOURNEY ([^\n]+)") do
      local j = cjson.decode(line)
      journeys[#journeys + 1] = j
      -- The report: each journey and the failed requests it expected.
      print(string.format("  journey %-9s %s %5d ms%s", j.name, j.ok and "ok    " or "FAILED", j.ms or 0,
        j.note ~= cjson.null and j.note and ("  (" .. j.note .. ")") or ""))
      for _, f in ipairs(j.expected_failures or {}) do
        print(string.format("    expected: %s %s %d %s - %s", f.method, f.path, f.status, f.detail, f.why))
      end
      if not j.ok then failed[#failed + 1] = line end
    end
    print(string.format("  %d journeys in %d s; screenshots in %s", #journeys, os.time() - t0, shots))
    assert.same({}, failed, "journeys failed (screenshots kept in " .. shots .. "):\n" .. text:sub(-4000))
    local names = {}
    for _, j in ipairs(journeys) do names[#names + 1] = j.name end
    assert.same({ "slot", "crash", "fairness", "ban", "broadcast", "tour", "rtp" }, names, text:sub(-2000))
    for _, j in ipairs(journeys) do assert.is_true(#j.screenshots >= 2, j.name .. " saved its screenshots") end
    if not keep then os.execute("rm -rf " .. shell_quote(shots)) end
  end)
end)
