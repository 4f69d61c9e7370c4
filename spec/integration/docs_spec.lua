-- docs_spec.lua - the API documentation and the static files the host
-- serves (CONTRACT.md §16; scripts/lib/openapi.lua, host/static.c):
-- /openapi.json is `cchost openapi` byte for byte, documents every script
-- route and nothing else, lints clean with @redocly/cli's recommended rules
-- and yields TypeScript types that compile; /docs and /redoc load every
-- asset from the host and name no other host; static files get their
-- Content-Type, ETag and 304, Cache-Control, HEAD, show an edit at once,
-- and nothing outside a mounted folder is ever served (404, never 5xx).
--
-- The lint and type tools come from tools/docs/install.sh --dev (the test
-- command runs it); the page assets from tools/docs/install.sh (set-up).
local support = require "spec.support.host"
local write_file = support.write_file
local http = require "spec.support.http"

local cjson = http.json
local BIN = os.getenv("CCHOST_BIN") or "build/cchost"
local TOOLS = "var/docs/node_modules/.bin/"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs a shell command; returns its output (stdout and stderr) and whether
-- it exited 0 (LuaJIT's popen close does not tell).
local function run(cmd)
  local p = assert(io.popen(cmd .. ' 2>&1; echo "exit status $?"'))
  local out = p:read("*a")
  p:close()
  return out, out:match("exit status (%d+)\n$") == "0"
end

local function tool(name)
  local f = io.open(TOOLS .. name)
  if f then f:close() return TOOLS .. name end
  error(TOOLS .. name .. " is missing: run tools/docs/install.sh --dev")
end

-- The document path of a route-table path: types dropped, and a trailing
-- slash (the router serves both spellings).
local function doc_path(path)
  path = path:gsub("{([%w_]+):%a+}", "{%1}")
  if #path > 1 then path = path:gsub("/$", "") end
  return path
end

local function plumbing(path)
  return path == "/openapi.json" or path == "/metrics" or path:find("^/docs") or path:find("^/redoc")
end

describe("the OpenAPI document", function()
  local host, text, doc, dir

  setup(function()
    host = support.start { WORKERS = "1" }
    local res = host:request("GET", "/openapi.json")
    assert.equal(200, res.status)
    text, doc = res.body, res.json
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir) == 0)
    write_file(dir .. "/openapi.json", text)
  end)

  teardown(function()
    if host then host:stop() end
    if dir then os.execute("rm -rf " .. dir) end
  end)

  it("is what `cchost openapi` prints under the same settings, byte for byte", function()
    local env = {}
    for k, v in pairs(host.env) do env[#env + 1] = k .. "=" .. shell_quote(v) end
    local p = assert(io.popen("env " .. table.concat(env, " ") .. " " .. BIN .. " openapi 2>/dev/null"))
    local printed = p:read("*a")
    p:close()
    assert.equal("application/json", host:request("GET", "/openapi.json").headers["content-type"])
    assert.is_true(#text > 10000)
    assert.equal(text, printed)
    assert.equal(text, host:request("GET", "/openapi.json").body) -- and the same on every request
  end)

  it("carries the contract's info, servers and the HTTPBearer scheme", function()
    assert.equal("3.1.0", doc.openapi)
    assert.same({ title = "Casino-Club F2P API", description = "Backend API for Casino-Club F2P gaming platform",
                  version = "1.0.0" }, doc.info)
    assert.same({ { url = "/" } }, doc.servers)
    assert.same({ type = "http", scheme = "bearer" }, doc.components.securitySchemes.HTTPBearer)
  end)

  it("documents every script route once and nothing else", function()
    local expected, count = {}, 0
    for _, r in ipairs(support.routes()) do
      local method = r.method == "WS" and "get" or r.method:lower()
      local key = method .. " " .. doc_path(r.path)
      if r.origin == "scripts" and not plumbing(r.path) then
        expected[key] = r.operation_id
        count = count + 1
      else
        local ops = doc.paths[doc_path(r.path)]
        assert.is_nil(ops and ops[method], "documented: " .. r.origin .. " " .. key)
      end
    end
    local found, ids = {}, {}
    for path, ops in pairs(doc.paths) do
      assert.is_nil(ops.head, path)
      assert.is_falsy(path:find("^/test/") or path:find("^/bench/"), path)
      for method, op in pairs(ops) do
        found[method .. " " .. path] = op.operationId
        assert.is_nil(ids[op.operationId], op.operationId)
        ids[op.operationId] = true
        assert.is_string(op.summary, path)
        assert.equal(1, #op.tags, path)
        assert.is_table(op.responses, path)
        local authed = op.security and op.security[1] and op.security[1].HTTPBearer
        if authed then assert.is_table(op.responses["401"], path) end
      end
    end
    assert.same(expected, found)
    assert.is_true(count > 60)
    assert.equal("games_rps_play_v1", found["post /api/games/rps/play"])
    assert.is_nil(doc.paths["/api/gacha/pull"])
    assert.is_table(doc.paths["/api/games/gacha/pull"].post)
    assert.is_true(doc.paths["/ws/notifications/{user_id}"].get["x-websocket"])
  end)

  it("marks money routes, Idempotency-Key and X-Idempotency-Key", function()
    local spin = doc.paths["/api/games/slot/spin"].post
    assert.is_true(spin["x-moves-money"])
    local headers = {}
    for _, p in ipairs(spin.parameters) do headers[p.name] = p["in"] end
    assert.equal("header", headers["Idempotency-Key"])
    local force = doc.paths["/api/admin/events/{event_id}/force-claim/{user_id}"].post
    headers = {}
    for _, p in ipairs(force.parameters) do headers[p.name] = p["in"] end
    assert.equal("header", headers["X-Idempotency-Key"])
    local body = spin.requestBody.content["application/json"].schema.properties.bet_amount
    assert.is_number(body.minimum)
    assert.same({ "betAmount" }, body["x-aliases"])
  end)

  it("lists the script routes that declare no responses yet", function()
    local lacking = {}
    for _, r in ipairs(support.routes()) do
      if r.origin == "scripts" and r.responses == nil then
        lacking[#lacking + 1] = r.method .. " " .. r.path
      end
    end
    -- Such routes are documented with their success status and the implied
    -- errors only; declare `responses` (scripts/lib/openapi.lua) to complete them.
    if #lacking > 0 then pending("routes without declared responses: " .. table.concat(lacking, ", ")) end
  end)

  it("lints with no error under @redocly/cli's recommended rules", function()
    local out = run("REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true " .. tool("redocly")
      .. " lint --extends=recommended --format=json " .. dir .. "/openapi.json")
    local report = cjson.decode(out:match("%b{}") or "")
    assert.is_table(report, out)
    local errors = {}
    for _, p in ipairs(report.problems) do
      if p.severity == "error" then errors[#errors + 1] = p.ruleId .. ": " .. p.message end
    end
    assert.same({}, errors)
    assert.equal(0, report.totals.errors)
  end)

  it("gives TypeScript types (openapi-typescript) that compile under tsc --strict", function()
    local out, ok = run(tool("openapi-typescript") .. " " .. dir .. "/openapi.json -o " .. dir .. "/api.d.ts")
    assert.is_true(ok, out)
    write_file(dir .. "/use.ts", [[
import type { paths, operations, components } from "./api";
type Rps = operations["games_rps_play_v1"]["requestBody"]["content"]["application/json"];
export const play: Rps = { choice: "rock", bet_amount: 10 };
export const error: components["schemas"]["HTTPError"] = { detail: "Not Found" };
export const path: keyof paths = "/api/games/rps/play";
]])
    out, ok = run(tool("tsc") .. " --noEmit --strict --target es2020 --module es2020 --moduleResolution node "
      .. dir .. "/use.ts")
    assert.is_true(ok, out)
  end)
end)

describe("the documentation pages", function()
  local host

  setup(function() host = support.start { WORKERS = "1" } end)
  teardown(function() if host then host:stop() end end)

  local TYPES = { js = "text/javascript", css = "text/css", png = "image/png" }

  for _, page in ipairs { "/docs", "/docs/", "/redoc" } do
    it(page .. " is HTML whose scripts and styles all load from the host", function()
      local res = host:request("GET", page)
      assert.equal(200, res.status)
      assert.equal("text/html; charset=utf-8", res.headers["content-type"])
      assert.equal("no-cache", res.headers["cache-control"])
      local html = res.body
      -- No other host in what this project writes: the page, its own
      -- script and style; the policy keeps the vendor bundles from reaching
      -- out (ReDoc's sidebar logo lives on a CDN).
      assert.is_nil(html:match("https?://[^\"' ]+"), page)
      local policy = html:match('http%-equiv="Content%-Security%-Policy"%s+content="([^"]+)"')
      assert.is_string(policy, page)
      for directive in policy:gmatch("[^;]+") do
        assert.is_nil(directive:find("https?:") or directive:find("%*"), directive)
      end
      assert.matches("default%-src 'self'", policy)
      local assets = {}
      for src in html:gmatch('<script[^>]- src="([^"]+)"') do assets[#assets + 1] = src end
      for href in html:gmatch('<link[^>]- href="([^"]+)"') do assets[#assets + 1] = href end
      assert.is_true(#assets >= 2, page)
      for _, url in ipairs(assets) do
        assert.matches("^/[^/]", url) -- this host, absolute path
        local a = host:request("GET", url)
        assert.equal(200, a.status, url .. " (assets: tools/docs/install.sh)")
        local ext = url:match("%.(%w+)$")
        assert.equal(TYPES[ext], (a.headers["content-type"] or ""):match("^[^;]+"), url)
        assert.is_true(#a.body > 0, url)
        if not url:find("^/docs/vendor/") then assert.is_nil(a.body:match("https?://"), url) end
      end
    end)
  end

  it("points both viewers at the host's own /openapi.json", function()
    assert.matches('spec%-url="/openapi.json"', host:request("GET", "/redoc").body)
    local init = host:request("GET", "/docs/init.js").body
    assert.matches('url: "/openapi.json"', init)
    assert.matches("validatorUrl: null", init)
  end)
end)

describe("static files", function()
  local host, root, vendor, outside

  local function get(path, headers) return http.get(host.port, path, headers) end

  setup(function()
    local base = os.tmpname()
    os.remove(base)
    root, vendor, outside = base .. "/site", base .. "/vendor-1.2.3", base .. "/outside"
    assert(os.execute("mkdir -p " .. root .. "/sub/deeper " .. root .. "/empty " .. vendor .. " " .. outside) == 0)
    write_file(root .. "/index.html", "<!doctype html><p>index</p>")
    write_file(root .. "/page.html", "<!doctype html><p>page</p>")
    write_file(root .. "/app.js", "console.log(1);\n")
    write_file(root .. "/style.css", "body{}\n")
    write_file(root .. "/data.json", "{}\n")
    write_file(root .. "/logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")
    write_file(root .. "/icon.png", "\137PNG\r\n\26\n")
    write_file(root .. "/blob.bin", "\0\1\2")
    write_file(root .. "/.hidden", "secret")
    write_file(root .. "/sub/index.html", "<p>sub</p>")
    write_file(root .. "/sub/deeper/file.txt", "deep")
    write_file(outside .. "/secret.txt", "outside")
    write_file(vendor .. "/lib.js", "var lib;\n")
    write_file(vendor .. "/index.html", "<p>vendor</p>")
    assert(os.execute("ln -s " .. outside .. "/secret.txt " .. root .. "/escape.txt") == 0)
    assert(os.execute("ln -s " .. outside .. " " .. root .. "/escape-dir") == 0)
    assert(os.execute("ln -s sub/deeper/file.txt " .. root .. "/inside.txt") == 0)
    host = support.start {
      WORKERS = "1",
      STATIC_MOUNTS = "/site=" .. root .. ", /site/vendor=" .. vendor .. ";immutable, /later=" .. base .. "/later",
    }
  end)

  teardown(function()
    if host then host:stop() end
    if root then os.execute("rm -rf " .. root:gsub("/site$", "")) end
  end)

  it("answers with the Content-Type of the extension", function()
    local want = {
      ["/site/page.html"] = "text/html; charset=utf-8", ["/site/app.js"] = "text/javascript; charset=utf-8",
      ["/site/style.css"] = "text/css; charset=utf-8", ["/site/data.json"] = "application/json",
      ["/site/logo.svg"] = "image/svg+xml", ["/site/icon.png"] = "image/png",
      ["/site/blob.bin"] = "application/octet-stream", ["/site/sub/deeper/file.txt"] = "text/plain; charset=utf-8",
    }
    for path, ctype in pairs(want) do
      local res = get(path)
      assert.equal(200, res.status, path)
      assert.equal(ctype, res.headers["content-type"], path)
      assert.equal("nosniff", res.headers["x-content-type-options"], path)
    end
    assert.equal("\0\1\2", get("/site/blob.bin").body)
  end)

  it("serves a folder's index.html, the mount itself included", function()
    for _, path in ipairs { "/site", "/site/", "/site/index.html" } do
      local res = get(path)
      assert.equal(200, res.status, path)
      assert.equal("<!doctype html><p>index</p>", res.body, path)
    end
    assert.equal("<p>sub</p>", get("/site/sub/").body)
    assert.equal("<p>sub</p>", get("/site/sub").body)
    assert.equal(404, get("/site/empty/").status)
  end)

  it("gives an ETag and answers 304 to If-None-Match", function()
    local first = get("/site/app.js")
    local etag = first.headers.etag
    assert.matches('^"%x+"$', etag)
    for _, inm in ipairs { etag, "W/" .. etag, '"nope", ' .. etag, "*" } do
      local res = get("/site/app.js", { ["If-None-Match"] = inm })
      assert.equal(304, res.status, inm)
      assert.equal("", res.body)
      assert.equal(etag, res.headers.etag)
      assert.equal("no-cache", res.headers["cache-control"])
    end
    local c = assert(http.connect(host.port)) -- a stale tag gets the file
    assert(c:send(http.format("GET", "/site/app.js", nil, { ["If-None-Match"] = '"stale"' })))
    local res = c:read_response()
    c:close()
    assert.equal(200, res.status)
    assert.equal("console.log(1);\n", res.body)
  end)

  it("sets Cache-Control by kind: immutable for versioned assets, revalidate for HTML and the rest", function()
    assert.equal("no-cache", get("/site/page.html").headers["cache-control"])
    assert.equal("no-cache", get("/site/style.css").headers["cache-control"])
    assert.equal("public, max-age=31536000, immutable", get("/site/vendor/lib.js").headers["cache-control"])
    assert.equal("no-cache", get("/site/vendor/index.html").headers["cache-control"])
  end)

  it("answers HEAD with the headers of GET and no body", function()
    local full = get("/site/style.css")
    local res = host:request("HEAD", "/site/style.css")
    assert.equal(200, res.status)
    assert.equal(tostring(#full.body), res.headers["content-length"])
    assert.equal(full.headers.etag, res.headers.etag)
    assert.equal(full.headers["content-type"], res.headers["content-type"])
    -- the connection carries on after a bodiless answer
    local c = assert(http.connect(host.port))
    assert.equal(200, c:request("HEAD", "/site/app.js").status)
    assert.equal("console.log(1);\n", c:request("GET", "/site/app.js").body)
    c:close()
  end)

  it("refuses other methods with 405 and Allow", function()
    for _, method in ipairs { "POST", "PUT", "DELETE", "PATCH" } do
      local res = host:request(method, "/site/app.js", "x")
      assert.equal(405, res.status, method)
      assert.equal("GET, HEAD", res.headers.allow)
      assert.same({ detail = "Method Not Allowed" }, res.json)
    end
  end)

  it("shows an edit on disk at the next request", function()
    write_file(root .. "/live.js", "one")
    local a = get("/site/live.js")
    assert.equal("one", a.body)
    write_file(root .. "/live.js", "two") -- same size
    local b = get("/site/live.js")
    assert.equal("two", b.body)
    assert.not_equal(a.headers.etag, b.headers.etag)
    write_file(root .. "/live.js", "three, longer")
    assert.equal("three, longer", get("/site/live.js").body)
    os.remove(root .. "/live.js")
    assert.equal(404, get("/site/live.js").status)
    -- a mount whose folder appears later serves it at once
    assert.equal(404, get("/later/x.txt").status)
    assert(os.execute("mkdir -p " .. root:gsub("/site$", "/later")) == 0)
    write_file(root:gsub("/site$", "/later") .. "/x.txt", "later")
    assert.equal("later", get("/later/x.txt").body)
  end)

  it("follows symlinks that stay inside and refuses those that lead out", function()
    assert.equal("deep", get("/site/inside.txt").body)
    assert.equal(404, get("/site/escape.txt").status)
    assert.equal(404, get("/site/escape-dir/secret.txt").status)
  end)

  it("answers 404, never 5xx, to anything outside the folder or malformed", function()
    local attempts = {
      "/site/../outside/secret.txt", "/site/sub/../../outside/secret.txt", "/site/./app.js", "/site/..",
      "/site/%2e%2e/outside/secret.txt", "/site/%2E%2E/%2E%2E/etc/passwd", "/site/.%2e/outside/secret.txt",
      "/site/..%2foutside%2fsecret.txt", "/site/sub%2fdeeper%2ffile.txt", "/site/sub%2Fdeeper/file.txt",
      "/site/sub%5cdeeper%5cfile.txt", "/site/sub\\deeper\\file.txt", "/site/.hidden", "/site/%2ehidden",
      "/site//app.js", "/site/sub//deeper/file.txt", "/site/app.js%00.png", "/site/%00", "/site/%zz",
      "/site/%", "/site/%2", "/site/app.js/", "/site/missing.js", "/site/" .. string.rep("a", 300),
      "/site/" .. string.rep("a/", 600) .. "x", "/site/" .. string.rep("%2e", 400), "/site/%01app.js",
      "/site/app.js%0a", "/site/vendor/../../outside/secret.txt", "/site/vendor/%2e%2e/app.js",
    }
    for _, path in ipairs(attempts) do
      local res = get(path)
      assert.is_true(res.status < 500, path .. " -> " .. res.status)
      assert.equal(404, res.status, path)
      assert.same({ detail = "Not Found" }, res.json, path)
      assert.is_nil(res.body:find("outside", 1, true), path)
    end
    -- a path that only starts like a mount is not the mount's
    assert.equal(404, get("/sitex/app.js").status)
    assert.equal(200, host:request("GET", "/").status) -- the API is untouched
  end)
end)
