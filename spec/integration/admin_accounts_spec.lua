-- admin_accounts_spec.lua - the admin side of the accounts issue: the shell
-- command and bootstrap that create the first admin, admin login, rank
-- changes, bans (indefinite and timed) and the script reload endpoint.
local support = require "spec.support.host"
local api = require "spec.support.api"
local ws = require "spec.support.ws"

local BIN = os.getenv("CCHOST_BIN") or "build/cchost"

-- Runs `cchost admin create` against the host's database; returns output, status.
local function admin_create(host, args, password)
  local cmd = string.format("printf '%%s\\n' '%s' | env DATABASE_URL='%s' REDIS_HOST='%s' REDIS_PORT='%s' "
    .. "ARGON2_MEMORY_KIB=8192 ARGON2_ITERATIONS=1 %s admin create %s 2>&1; echo \"exit=$?\"",
    password, host.env.DATABASE_URL, os.getenv("REDIS_HOST"), os.getenv("REDIS_PORT"), BIN, args)
  local f = io.popen(cmd)
  local out = f:read("*a")
  f:close()
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

local function as(token) return api.auth(token) end

describe("admin accounts", function()
  local host, admin

  setup(function()
    host = support.start {
      WORKERS = "2", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1",
      BOOTSTRAP_ADMIN_SITE_ID = "rootadmin", BOOTSTRAP_ADMIN_PASSWORD = "bootstrap-pass-1",
    }
  end)
  teardown(function() host:stop() end)

  it("creates the bootstrap admin at start, who can log in as admin", function()
    local body
    assert.truthy(support.wait_for(function()
      body = host:request("POST", "/api/auth/admin/login", { site_id = "rootadmin", password = "bootstrap-pass-1" })
      return body.status == 200
    end, 10))
    assert.is_true(body.json.user.is_admin)
    assert.equal("rootadmin", body.json.user.nickname)
    assert.equal("0000000000", body.json.user.phone_number)
    admin = body.json
  end)

  it("creates an admin from the shell, with the password from stdin, and promotes an existing user", function()
    local out, code = admin_create(host, "--site-id shelladmin --nickname ShellAdmin --phone 01099990000",
      "shell-pass-123")
    assert.equal(0, code, out)
    assert.truthy(out:find("admin created", 1, true))
    local res = host:request("POST", "/api/auth/admin/login", { site_id = "shelladmin", password = "shell-pass-123" })
    assert.equal(200, res.status, res.body)
    local u = api.signup(host)
    assert.equal(403, host:request("GET", "/api/admin/scripts", nil, as(u.access_token)).status)
    out, code = admin_create(host, "--site-id " .. u.site_id .. " --nickname x --phone 0100000000", "whatever-123")
    assert.equal(0, code, out)
    assert.truthy(out:find("admin promoted", 1, true))
    -- takes effect on the very next request with the same token
    assert.equal(200, host:request("GET", "/api/admin/scripts", nil, as(u.access_token)).status)
    out, code = admin_create(host, "--site-id x2 --nickname y --phone 0100000001", "short")
    assert.equal(2, code)
  end)

  it("changes a rank; the RBAC routes follow on the next request", function()
    local u = api.signup(host)
    assert.equal(403, host:request("GET", "/api/rbac/premium", nil, as(u.access_token)).status)
    local res = host:request("PUT", "/api/admin/users/" .. u.user.id .. "/rank", { rank = "PREMIUM" },
      as(admin.access_token))
    assert.equal(200, res.status, res.body)
    assert.same({ success = true, user_id = u.user.id, user_rank = "PREMIUM" }, res.json)
    assert.equal(200, host:request("GET", "/api/rbac/premium", nil, as(u.access_token)).status)
    local bad = host:request("PUT", "/api/admin/users/" .. u.user.id .. "/rank", { user_rank = "GOLD" },
      as(admin.access_token))
    assert.equal(422, bad.status)
    assert.equal(404, host:request("PUT", "/api/admin/users/999999/rank", { user_rank = "VIP" },
      as(admin.access_token)).status)
    local audit = api.sql(host, "SELECT action, target_id FROM admin_audit WHERE action = 'user.rank'")
    assert.same({ "user.rank", tostring(u.user.id) }, audit[1])
  end)

  it("bans: the existing token is refused at once, login is 403, sockets close with 4401", function()
    local u = api.signup(host)
    local sock = assert(ws.connect(host.port, "/test/ws/user/" .. u.user.id))
    sock:read_frame() -- hello
    local res = host:request("POST", "/api/admin/users/" .. u.user.id .. "/ban", { reason = "cheating" },
      as(admin.access_token))
    assert.equal(200, res.status, res.body)
    assert.equal("User " .. u.user.id .. " has been banned", res.json.message)
    assert.equal("cheating", res.json.reason)
    assert.equal(require("cjson").null, res.json.banned_until)
    local me = host:request("GET", "/api/auth/me", nil, as(u.access_token))
    assert.equal(401, me.status)
    local login = host:request("POST", "/api/auth/login", { site_id = u.site_id, password = u.password })
    assert.equal(403, login.status)
    assert.equal("계정이 비활성화되었습니다", login.json.detail)
    assert.equal(4401, sock:read_close())
    assert.equal(1, tonumber(api.sql(host, "SELECT count(*) FROM sessions WHERE user_id = " .. u.user.id
      .. " AND revoked_reason = 'banned'")[1][1]))
    -- unban: login works again
    assert.equal(200, host:request("POST", "/api/admin/users/" .. u.user.id .. "/unban", nil,
      as(admin.access_token)).status)
    assert.truthy(api.login(host, u.site_id, u.password))
  end)

  it("lifts a timed ban by itself once it expires", function()
    local u = api.signup(host)
    local res = host:request("POST", "/api/admin/users/" .. u.user.id .. "/ban",
      { reason = "cool down", duration_hours = 1 }, as(admin.access_token))
    assert.equal(200, res.status)
    assert.truthy(res.json.banned_until:match("Z$"))
    assert.equal(403, select(2, api.login(host, u.site_id, u.password)).status)
    api.sql(host, "UPDATE users SET banned_until = now() - interval '1 second' WHERE id = " .. u.user.id)
    assert.truthy(api.login(host, u.site_id, u.password))
    assert.equal("t", api.sql(host, "SELECT is_active FROM users WHERE id = " .. u.user.id)[1][1])
  end)

  it("refuses banning oneself and unknown users, and non-admins", function()
    local me = host:request("POST", "/api/admin/users/" .. admin.user.id .. "/ban", { reason = "x" },
      as(admin.access_token))
    assert.equal(400, me.status)
    assert.equal("Cannot ban yourself", me.json.detail)
    local missing = host:request("POST", "/api/admin/users/999999/ban", { reason = "x" }, as(admin.access_token))
    assert.equal(404, missing.status)
    assert.equal("User not found", missing.json.detail)
    local u = api.signup(host)
    local denied = host:request("POST", "/api/admin/users/" .. admin.user.id .. "/ban", { reason = "x" },
      as(u.access_token))
    assert.equal(403, denied.status)
    assert.equal("Admin access required", denied.json.detail)
    assert.equal(422, host:request("POST", "/api/admin/users/" .. u.user.id .. "/ban", { reason = "" },
      as(admin.access_token)).status)
  end)

  it("reports and reloads the scripts", function()
    local s = host:request("GET", "/api/admin/scripts", nil, as(admin.access_token))
    assert.equal(200, s.status)
    assert.equal(1, s.json.generation)
    assert.is_true(s.json.last_reload.ok)
    local r = host:request("POST", "/api/admin/scripts/reload", nil, as(admin.access_token))
    assert.equal(200, r.status, r.body)
    assert.is_true(r.json.success)
    assert.equal(2, r.json.generation)
    assert.truthy(r.json.loaded_at:match("Z$"))
    assert.equal(2, host:request("GET", "/health").json.scripts.generation)
    assert.equal("scripts.reload", api.sql(host, "SELECT action FROM admin_audit ORDER BY id DESC LIMIT 1")[1][1])
  end)
end)

describe("admin reload of broken scripts", function()
  it("answers 400 with the error and keeps the generation", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("cp -r scripts " .. dir))
    local host = support.start { WORKERS = "2", SCRIPTS_DIR = dir, ARGON2_MEMORY_KIB = "8192",
      ARGON2_ITERATIONS = "1", BOOTSTRAP_ADMIN_SITE_ID = "rootadmin", BOOTSTRAP_ADMIN_PASSWORD = "bootstrap-pass-1" }
    local ok, err = pcall(function()
      local token
      assert.truthy(support.wait_for(function()
        local res = host:request("POST", "/api/auth/admin/login", { site_id = "rootadmin", password = "bootstrap-pass-1" })
        token = res.json and res.json.access_token
        return res.status == 200
      end, 10))
      local f = assert(io.open(dir .. "/routes/zz_broken.lua", "w"))
      f:write("local = 1\n")
      f:close()
      local r = host:request("POST", "/api/admin/scripts/reload", nil, as(token))
      assert.equal(400, r.status)
      assert.truthy(r.json.detail:find("zz_broken.lua:1:", 1, true))
      local s = host:request("GET", "/api/admin/scripts", nil, as(token)).json
      assert.equal(1, s.generation)
      assert.is_false(s.last_reload.ok)
    end)
    host:stop()
    os.execute("rm -rf " .. dir)
    assert(ok, err)
  end)
end)
