-- auth_spec.lua - CONTRACT.md §4 end to end: signup, login and lockout,
-- refresh rotation and reuse, logout, sessions, the per-request checks of
-- §4.4 (every status and text), bans, the Redis session cache and its
-- PostgreSQL fallback.
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"
local mime = require "mime"
local cjson = require "cjson"

local FAST = { ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }

local function env(extra)
  local e = {}
  for k, v in pairs(FAST) do e[k] = v end
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

------------------------------------------------------------ JWT crafting

local function b64url(s) return (mime.b64(s):gsub("+", "-"):gsub("/", "_"):gsub("=", "")) end

local function unb64url(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  return (mime.unb64(s .. string.rep("=", (4 - #s % 4) % 4)))
end

local function claims_of(token)
  return cjson.decode(unb64url(token:match("^[^.]+%.([^.]+)%.")))
end

local function hmac_sha256(key, data)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(data)
  f:close()
  local p = assert(io.popen("openssl dgst -sha256 -binary -hmac '" .. key .. "' < " .. tmp))
  local mac = p:read("*a")
  p:close()
  os.remove(tmp)
  assert(#mac == 32)
  return mac
end

-- A JWT with the given header and claims, HMAC-SHA256-signed with key (no
-- signature at all when key is nil).
local function craft(header, claims, key)
  local input = b64url(cjson.encode(header)) .. "." .. b64url(cjson.encode(claims))
  return input .. "." .. (key and b64url(hmac_sha256(key, input)) or "")
end

local function copy(t, changes)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  for k, v in pairs(changes or {}) do c[k] = v end
  return c
end

local function without(t, key)
  local c = copy(t)
  c[key] = nil
  return c
end

------------------------------------------------------------ helpers

local SESSION_GONE = "세션이 만료되었거나 로그아웃되었습니다"
local TOKEN_INVALID = "토큰이 유효하지 않습니다"
local DEACTIVATED = "계정이 비활성화되었습니다"

local function assert_401(res, detail)
  assert.equal(401, res.status, res.body)
  assert.equal(detail, res.json.detail)
  assert.equal("Bearer", res.headers["www-authenticate"])
end

local function me(host, token)
  return host:request("GET", "/api/auth/me", nil, api.auth(token))
end

local function refresh(host, token)
  return host:request("POST", "/api/auth/refresh", { refresh_token = token })
end

local function scalar(host, sql)
  local rows = api.sql(host, sql)
  return rows[1] and rows[1][1]
end

local function assert_token(body)
  assert.equal("bearer", body.token_type)
  assert.equal(1800, body.expires_in)
  assert.equal(43, #body.refresh_token)
  assert.truthy(body.refresh_token:find("^[%w_-]+$"))
  assert.truthy(body.access_token:find("^[%w_-]+%.[%w_-]+%.[%w_-]+$"))
end

describe("auth", function()
  local host
  setup(function()
    host = support.start(env { LOGIN_LOCKOUT_MINUTES = "0.05", LOGIN_IP_MAX_FAILED_ATTEMPTS = "1000" })
  end)
  teardown(function() host:stop() end)

  it("stores a User-Agent that is not UTF-8 instead of failing the login", function()
    local a = api.signup(host)
    local res = host:request("POST", "/api/auth/login", { site_id = a.site_id, password = a.password },
      { ["User-Agent"] = "probe\255\254" })
    assert.equal(200, res.status, res.body)
    local bad = host:request("POST", "/api/auth/login", { site_id = a.site_id, password = "wrong-password" },
      { ["User-Agent"] = "probe\255" })
    assert.equal(401, bad.status, bad.body)
    assert.equal("probe\239\191\189", api.sql(host, "SELECT user_agent FROM login_attempts WHERE site_id = '"
      .. a.site_id .. "' AND NOT success")[1][1])
    -- a long multi-byte site_id is recorded cut to its column, still valid text
    local long = host:request("POST", "/api/auth/login", { site_id = string.rep("토", 70), password = "whatever-1" })
    assert.equal(401, long.status, long.body)
  end)

  describe("signup", function()
    it("returns a Token whose user and /me equal the signup data, with wallet, action and outbox rows", function()
      local a = api.signup(host)
      local body = a.response.json
      assert_token(body)
      local u = body.user
      assert.equal(a.site_id, u.site_id)
      assert.equal(a.nickname, u.nickname)
      assert.equal(a.phone_number, u.phone_number)
      assert.is_true(u.is_active)
      assert.is_false(u.is_admin)
      assert.equal("STANDARD", u.rank)
      assert.truthy(u.created_at:find("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
      assert.equal(u.created_at, u.last_login) -- never logged in: falls back to created_at
      local m = me(host, a.access_token)
      assert.equal(200, m.status, m.body)
      assert.same(u, m.json)

      local c = claims_of(a.access_token)
      assert.equal(a.site_id, c.sub)
      assert.equal(u.id, c.user_id)
      assert.is_false(c.is_admin)
      assert.equal("STANDARD", c.rank)
      assert.equal(1800, c.exp - c.iat)
      assert.truthy(c.jti:find("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"))
      assert.same({ alg = "HS256", typ = "JWT" }, cjson.decode(unb64url(a.access_token:match("^[^.]+"))))

      local id = u.id
      assert.same({ { "5858", "", "f" } }, api.sql(host, "SELECT invite_code, last_login, is_admin FROM users WHERE id = " .. id))
      assert.equal("200", scalar(host, "SELECT balance FROM wallet_balances WHERE currency = 'tokens' AND user_id = " .. id))
      assert.equal("initial_grant", scalar(host, "SELECT reason FROM wallet_ledger WHERE user_id = " .. id))
      assert.equal("SIGNUP", scalar(host, "SELECT action_type FROM user_actions WHERE user_id = " .. id))
      assert.equal("1", scalar(host, "SELECT count(*) FROM outbox_events WHERE event_type = 'user.signup' "
        .. "AND (payload->>'user_id')::bigint = " .. id))
      -- the refresh token is stored only as its SHA-256 hex digest
      assert.equal("1", scalar(host, "SELECT count(*) FROM refresh_tokens WHERE user_id = " .. id
        .. " AND token_hash = encode(sha256('" .. a.refresh_token .. "'::bytea), 'hex')"))
      assert.equal("1", scalar(host, "SELECT count(*) FROM sessions WHERE is_active AND user_id = " .. id
        .. " AND access_jti = '" .. c.jti .. "'"))
    end)

    it("serves /api/auth/register as the same signup", function()
      local u = api.unique()
      local res = host:request("POST", "/api/auth/register", { site_id = "reg" .. u, nickname = "reg" .. u,
        phone_number = "011" .. u:sub(-8), invite_code = "5858", password = "password-1" })
      assert.equal(200, res.status, res.body)
      assert_token(res.json)
      assert.equal("reg" .. u, res.json.user.site_id)
    end)

    it("stores an argon2id PHC string with the configured cost", function()
      local a = api.signup(host)
      local hash = scalar(host, "SELECT password_hash FROM users WHERE id = " .. a.user.id)
      assert.truthy(hash:find("^%$argon2id%$v=19%$m=8192,t=1,p=1%$"), hash)
    end)

    it("answers 422 for every field limit, counting code points", function()
      local cases = {
        { "site_id", "ab", "string_too_short" }, { "site_id", string.rep("s", 51), "string_too_long" },
        { "nickname", "n", "string_too_short" }, { "nickname", string.rep("n", 51), "string_too_long" },
        { "phone_number", "123456789", "string_too_short" }, { "phone_number", string.rep("1", 16), "string_too_long" },
        { "invite_code", "", "string_too_short" }, { "invite_code", string.rep("C", 33), "string_too_long" },
        { "password", "seven77", "string_too_short" }, { "password", string.rep("p", 129), "string_too_long" },
        { "site_id", 12345, "string_type" },
      }
      for _, case in ipairs(cases) do
        local u = api.unique()
        local body = { site_id = "v" .. u, nickname = "v" .. u, phone_number = "012" .. u:sub(-8),
          invite_code = "5858", password = "password-1" }
        body[case[1]] = case[2]
        local res = host:request("POST", "/api/auth/signup", body)
        assert.equal(422, res.status, case[1] .. ": " .. res.body)
        assert.same({ "body", case[1] }, res.json.detail[1].loc)
        assert.equal(case[3], res.json.detail[1].type)
      end
      local missing = host:request("POST", "/api/auth/signup", { site_id = "abc" })
      assert.equal(422, missing.status)
      assert.equal(4, #missing.json.detail)
      assert.equal("missing", missing.json.detail[1].type)
      assert.same({ "body", "nickname" }, missing.json.detail[1].loc)
      assert.equal("String should have at least 8 characters",
        host:request("POST", "/api/auth/signup", { site_id = "abc", nickname = "ab", phone_number = "0123456789",
          invite_code = "5858", password = "short" }).json.detail[1].msg)
      -- 20 Korean characters are 20, not 60
      local ok = api.signup(host, { nickname = string.rep("가", 20) .. api.unique():sub(-2) })
      assert.equal(string.rep("가", 20) .. ok.nickname:sub(-2), ok.user.nickname)
    end)

    it("answers the 400s in order, case-sensitively, consuming no invite use", function()
      local a = api.signup(host)
      local function try(fields)
        local u = api.unique()
        local body = { site_id = "t" .. u, nickname = "t" .. u, phone_number = "013" .. u:sub(-8),
          invite_code = "5858", password = "password-1" }
        for k, v in pairs(fields) do body[k] = v end
        return host:request("POST", "/api/auth/signup", body)
      end
      local function check(res, detail)
        assert.equal(400, res.status, res.body)
        assert.equal(detail, res.json.detail)
      end
      check(try { invite_code = "NOPE", site_id = a.site_id }, "유효하지 않은 초대코드입니다")
      check(try { site_id = a.site_id, nickname = a.nickname }, "이미 존재하는 사이트 아이디입니다")
      check(try { nickname = a.nickname, phone_number = a.phone_number }, "이미 존재하는 닉네임입니다")
      check(try { phone_number = a.phone_number }, "이미 등록된 전화번호입니다")
      assert.equal(200, try { site_id = a.site_id:upper() }.status) -- exact comparison
      -- a one-use code survives failed signups
      api.sql(host, "INSERT INTO invite_codes (code, max_uses) VALUES ('ONCE0001', 1)")
      check(try { invite_code = "once0001", site_id = a.site_id }, "이미 존재하는 사이트 아이디입니다")
      assert.equal("0", scalar(host, "SELECT used_count FROM invite_codes WHERE code = 'ONCE0001'"))
      local used = try { invite_code = "once0001" }
      assert.equal(200, used.status, used.body)
      assert.equal("ONCE0001", scalar(host, "SELECT invite_code FROM users WHERE id = " .. used.json.user.id))
      check(try { invite_code = "ONCE0001" }, "유효하지 않은 초대코드입니다")
    end)

    it("maps a unique violation racing in to the 400, never 500, without using the invite", function()
      api.sql(host, "INSERT INTO invite_codes (code, max_uses) VALUES ('RACE0001', 50)")
      local u = api.unique()
      local res = http.concurrent(host.port, 8, "POST", "/api/auth/signup", function(i)
        return { site_id = "race" .. u, nickname = "race" .. u .. i, phone_number = "014" .. u:sub(-7) .. i,
          invite_code = "RACE0001", password = "password-1" }
      end)
      local ok = 0
      for _, r in ipairs(res) do
        if r.status == 200 then
          ok = ok + 1
        else
          assert.equal(400, r.status, r.body)
          assert.equal("이미 존재하는 사이트 아이디입니다", r.json.detail)
        end
      end
      assert.equal(1, ok)
      assert.equal("1", scalar(host, "SELECT used_count FROM invite_codes WHERE code = 'RACE0001'"))
    end)
  end)

  describe("login", function()
    it("logs in: Token, last_login, attempt with IP and user agent, LOGIN action and outbox", function()
      local a = api.signup(host)
      local res = host:request("POST", "/api/auth/login", { site_id = a.site_id, password = a.password },
        { ["User-Agent"] = "spec-agent/1.0" })
      assert.equal(200, res.status, res.body)
      assert_token(res.json)
      assert.is_true(res.json.user.last_login > res.json.user.created_at)
      assert.same({ { "t", "", "127.0.0.1", "spec-agent/1.0" } }, api.sql(host,
        "SELECT success, coalesce(failure_reason, ''), ip_address, user_agent FROM login_attempts WHERE site_id = '"
          .. a.site_id .. "'"))
      assert.equal("LOGIN", scalar(host, "SELECT action_type FROM user_actions WHERE user_id = " .. a.user.id
        .. " ORDER BY id DESC LIMIT 1"))
      assert.equal("1", scalar(host, "SELECT count(*) FROM outbox_events WHERE event_type = 'user.login' "
        .. "AND (payload->>'user_id')::bigint = " .. a.user.id))
      assert.equal(200, me(host, res.json.access_token).status)
    end)

    it("answers 401 Invalid credentials for a wrong password or unknown site_id, and 422 without fields", function()
      local a = api.signup(host)
      local _, wrong = api.login(host, a.site_id, "wrong-password")
      assert_401(wrong, "Invalid credentials")
      assert.truthy(wrong.json.detail:find("Invalid"))
      local _, unknown = api.login(host, "nobody-" .. api.unique(), "whatever-1")
      assert_401(unknown, "Invalid credentials")
      assert.equal("invalid_credentials", scalar(host, "SELECT failure_reason FROM login_attempts WHERE site_id = '"
        .. a.site_id .. "'"))
      local missing = host:request("POST", "/api/auth/login", {})
      assert.equal(422, missing.status)
      assert.same({ "body", "site_id" }, missing.json.detail[1].loc)
      assert.same({ "body", "password" }, missing.json.detail[2].loc)
    end)

    it("locks a site_id after 5 failures (429 + Retry-After, even with the right password) "
      .. "until the window passes; success then clears the count", function()
      local a = api.signup(host)
      for i = 1, 5 do
        local _, r = api.login(host, a.site_id, "wrong-" .. i)
        assert_401(r, "Invalid credentials") -- the 5th still 401
      end
      local _, locked = api.login(host, a.site_id, "wrong-6")
      assert.equal(429, locked.status)
      assert.equal("Too many failed attempts", locked.json.detail)
      local retry = tonumber(locked.headers["retry-after"])
      assert.truthy(retry and retry >= 1 and retry <= 3, tostring(locked.headers["retry-after"]))
      local _, right = api.login(host, a.site_id, a.password)
      assert.equal(429, right.status)
      assert.equal("2", scalar(host, "SELECT count(*) FROM login_attempts WHERE failure_reason = 'locked_out' "
        .. "AND site_id = '" .. a.site_id .. "'"))
      support.sleep(tonumber(right.headers["retry-after"]) + 0.2)
      local ok = api.login(host, a.site_id, a.password)
      assert.truthy(ok, "the right password works once the window passed")
      -- the count was cleared: one new failure is a 401, not a 429
      local _, again = api.login(host, a.site_id, "wrong-7")
      assert_401(again, "Invalid credentials")
    end)

    it("locks unknown site_ids the same way", function()
      local ghost = "ghost-" .. api.unique()
      for _ = 1, 5 do assert.equal(401, select(2, api.login(host, ghost, "x-password")).status) end
      assert.equal(429, select(2, api.login(host, ghost, "x-password")).status)
    end)

    it("ignores X-Forwarded-For from an untrusted peer", function()
      local site = "xff-" .. api.unique()
      host:request("POST", "/api/auth/login", { site_id = site, password = "x-password" },
        { ["X-Forwarded-For"] = "198.51.100.9" })
      assert.equal("127.0.0.1", scalar(host, "SELECT ip_address FROM login_attempts WHERE site_id = '" .. site .. "'"))
    end)

    it("admin login: 401 for a non-admin even with the right password, Token with is_admin for an admin", function()
      local a = api.signup(host)
      local res = host:request("POST", "/api/auth/admin/login", { site_id = a.site_id, password = a.password })
      assert_401(res, "Invalid admin credentials")
      api.make_admin(host, a.user.id)
      res = host:request("POST", "/api/auth/admin/login", { site_id = a.site_id, password = a.password })
      assert.equal(200, res.status, res.body)
      assert.is_true(res.json.user.is_admin)
      assert.is_true(claims_of(res.json.access_token).is_admin)
      assert.equal(200, host:request("GET", "/test/accounts/admin-only", nil, api.auth(res.json.access_token)).status)
    end)
  end)

  describe("sessions", function()
    it("a second login makes the first access and refresh tokens fail (MAX_CONCURRENT_SESSIONS = 1)", function()
      local a = api.signup(host)
      assert.equal(200, me(host, a.access_token).status)
      local second = assert(api.login(host, a.site_id, a.password))
      assert_401(me(host, a.access_token), SESSION_GONE)
      assert_401(refresh(host, a.refresh_token), TOKEN_INVALID)
      assert.equal(200, me(host, second.access_token).status)
      assert.equal("superseded", scalar(host, "SELECT revoked_reason FROM sessions WHERE user_id = " .. a.user.id
        .. " ORDER BY id LIMIT 1"))
    end)

    it("logout makes the same access token 401 on the next request, and kills its refresh token", function()
      local a = api.signup(host)
      assert.equal(200, me(host, a.access_token).status) -- cached now
      local out = host:request("POST", "/api/auth/logout", nil, api.auth(a.access_token))
      assert.equal(200, out.status)
      assert.same({ message = "Logged out" }, out.json)
      assert_401(me(host, a.access_token), SESSION_GONE)
      assert_401(refresh(host, a.refresh_token), TOKEN_INVALID)
      assert.equal("logout", scalar(host, "SELECT revoked_reason FROM sessions WHERE user_id = " .. a.user.id))
    end)

    it("logout needs a Bearer header but ignores anything unusable", function()
      local none = host:request("POST", "/api/auth/logout")
      assert.equal(403, none.status)
      assert.equal("Not authenticated", none.json.detail)
      local basic = host:request("POST", "/api/auth/logout", nil, { Authorization = "Basic abc" })
      assert.equal(403, basic.status)
      assert.equal("Invalid authentication credentials", basic.json.detail)
      for _, case in ipairs { { "garbage", nil }, { "a.b.c", "{not json" }, { "x", '{"refresh_token":42}' } } do
        local res = host:request("POST", "/api/auth/logout", case[2], api.auth(case[1]))
        assert.equal(200, res.status, res.body)
        assert.same({ message = "Logged out" }, res.json)
      end
    end)

    it("logout-all revokes every session; a fresh login works", function()
      local a = api.signup(host)
      local res = host:request("POST", "/api/auth/logout-all", nil, api.auth(a.access_token))
      assert.equal(200, res.status, res.body)
      assert.same({ message = "Logged out from all sessions" }, res.json)
      assert_401(me(host, a.access_token), SESSION_GONE)
      assert_401(refresh(host, a.refresh_token), TOKEN_INVALID)
      assert.equal("logout_all", scalar(host, "SELECT revoked_reason FROM sessions WHERE user_id = " .. a.user.id))
      local fresh = assert(api.login(host, a.site_id, a.password))
      assert.equal(200, me(host, fresh.access_token).status)
      assert.equal(403, host:request("POST", "/api/auth/logout-all").status)
    end)
  end)

  describe("refresh", function()
    local function check_rotation(a, res)
      assert.equal(200, res.status, res.body)
      assert_token(res.json)
      assert.are_not.equal(a.refresh_token, res.json.refresh_token)
      assert.are_not.equal(claims_of(a.access_token).jti, claims_of(res.json.access_token).jti)
      assert_401(me(host, a.access_token), SESSION_GONE) -- the previous access token of the session
      assert.equal(200, me(host, res.json.access_token).status)
      -- the rotated token presented again is reuse: the family is revoked
      assert_401(refresh(host, a.refresh_token), "토큰이 취소되었습니다")
      assert_401(me(host, res.json.access_token), SESSION_GONE)
      assert_401(refresh(host, res.json.refresh_token), TOKEN_INVALID)
      assert.equal("reuse_detected", scalar(host, "SELECT revoked_reason FROM sessions WHERE user_id = " .. a.user.id))
      assert.equal("0", scalar(host, "SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL AND user_id = "
        .. a.user.id))
    end

    it("by body: rotates, keeps last_login, and reuse of the old token revokes the family", function()
      local a = api.signup(host)
      local res = refresh(host, a.refresh_token)
      assert.equal(a.user.last_login, res.json.user.last_login)
      check_rotation(a, res)
    end)

    it("by Bearer refresh token: the same", function()
      local a = api.signup(host)
      check_rotation(a, host:request("POST", "/api/auth/refresh", nil, api.auth(a.refresh_token)))
    end)

    it("an empty body token falls back to the Bearer header", function()
      local a = api.signup(host)
      local res = host:request("POST", "/api/auth/refresh", { refresh_token = "" }, api.auth(a.refresh_token))
      assert.equal(200, res.status, res.body)
    end)

    it("by a still-valid access token as Bearer (earlier clients): rotates that session", function()
      local a = api.signup(host)
      local res = host:request("POST", "/api/auth/refresh", nil, api.auth(a.access_token))
      assert.equal(200, res.status, res.body)
      assert_401(me(host, a.access_token), SESSION_GONE)
      assert.equal(200, me(host, res.json.access_token).status)
      local again = refresh(host, res.json.refresh_token)
      assert.equal(200, again.status, again.body)
      -- the session's earlier refresh token was rotated by the access-token refresh
      assert_401(refresh(host, a.refresh_token), "토큰이 취소되었습니다")
      -- a revoked access token is refused like §4.4
      assert_401(host:request("POST", "/api/auth/refresh", nil, api.auth(a.access_token)), SESSION_GONE)
    end)

    it("answers 403 without a token and 401 for unknown, malformed or expired ones", function()
      local none = host:request("POST", "/api/auth/refresh")
      assert.equal(403, none.status)
      assert.equal("Not authenticated", none.json.detail)
      assert.equal("Not authenticated", host:request("POST", "/api/auth/refresh", {}).json.detail)
      assert_401(refresh(host, string.rep("A", 43)), TOKEN_INVALID)
      assert_401(refresh(host, "short"), TOKEN_INVALID)
      assert_401(refresh(host, "not.a.jwt"), TOKEN_INVALID)
      local a = api.signup(host)
      api.sql(host, "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE user_id = " .. a.user.id)
      assert_401(refresh(host, a.refresh_token), TOKEN_INVALID)
    end)

    it("answers 401 deactivated for a banned user", function()
      local a = api.signup(host)
      api.ban(host, a.user.id)
      assert_401(refresh(host, a.refresh_token), DEACTIVATED)
    end)
  end)

  describe("per-request checks (§4.4)", function()
    local secret
    setup(function() secret = host.env.JWT_SECRET_KEY end)

    it("answers the 403 rows for a missing header, another scheme or empty credentials", function()
      local res = host:request("GET", "/api/auth/me")
      assert.equal(403, res.status)
      assert.equal("Not authenticated", res.json.detail)
      for _, h in ipairs { "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "Token abc" } do
        res = host:request("GET", "/api/auth/me", nil, { Authorization = h })
        assert.equal(403, res.status, h)
        assert.equal("Invalid authentication credentials", res.json.detail)
      end
      local a = api.signup(host)
      assert.equal(200, host:request("GET", "/api/auth/me", nil, { Authorization = "bearer " .. a.access_token }).status)
      assert.equal(200, host:request("GET", "/api/auth/me", nil,
        { Authorization = "Bearer \t  " .. a.access_token .. " \t" }).status)
      res = host:request("GET", "/api/auth/me", nil, { Authorization = "Bearer" .. a.access_token })
      assert.equal(403, res.status)
    end)

    it("answers 401 invalid for malformed, alg none, HS384, wrong key, expired and incomplete tokens", function()
      local a = api.signup(host)
      local c = claims_of(a.access_token)
      local hs = { alg = "HS256", typ = "JWT" }
      local now = os.time()
      local cases = {
        malformed = "abc.def",
        garbage = "not-a-token",
        alg_none = craft({ alg = "none", typ = "JWT" }, c, nil),
        alg_none_signed = craft({ alg = "none", typ = "JWT" }, c, secret),
        hs384 = craft({ alg = "HS384", typ = "JWT" }, c, secret),
        wrong_key = craft(hs, c, "another-secret-0123456789abcdef0123456789"),
        tampered = a.access_token:gsub("%.([^.]+)%.", "." .. b64url(cjson.encode(copy(c, { is_admin = true }))) .. "."),
        expired = craft(hs, copy(c, { iat = now - 100, exp = now - 1 }), secret),
        no_jti = craft(hs, without(c, "jti"), secret),
        no_sub = craft(hs, without(c, "sub"), secret),
        no_exp = craft(hs, without(c, "exp"), secret),
        no_user_id = craft(hs, without(c, "user_id"), secret),
        null_rank = craft(hs, copy(c, { rank = cjson.null }), secret),
        bad_jti = craft(hs, copy(c, { jti = "not-a-uuid" }), secret),
        sub_mismatch = craft(hs, copy(c, { sub = "someone-else" }), secret),
      }
      for name, token in pairs(cases) do
        local res = me(host, token)
        assert.equal(401, res.status, name .. ": " .. res.body)
        assert.equal(TOKEN_INVALID, res.json.detail, name)
        assert.equal("Bearer", res.headers["www-authenticate"], name)
      end
      -- the genuine token re-signed in the spec is accepted: the crafting is right
      assert.equal(200, me(host, craft(hs, c, secret)).status)
    end)

    it("answers 401 User not found for a token of a user that does not exist", function()
      local a = api.signup(host)
      local c = claims_of(a.access_token)
      local token = craft({ alg = "HS256", typ = "JWT" }, copy(c, { user_id = 987654 }), secret)
      assert_401(me(host, token), "User not found")
    end)

    it("a banned user gets 403 at login (recorded, not counted) and 401 with an existing token", function()
      local a = api.signup(host)
      assert.equal(200, me(host, a.access_token).status)
      api.ban(host, a.user.id, 24)
      assert_401(me(host, a.access_token), DEACTIVATED)
      for _ = 1, 6 do
        local _, res = api.login(host, a.site_id, a.password)
        assert.equal(403, res.status, res.body)
        assert.equal(DEACTIVATED, res.json.detail)
      end
      assert.equal("6", scalar(host, "SELECT count(*) FROM login_attempts WHERE failure_reason = 'inactive' "
        .. "AND site_id = '" .. a.site_id .. "'"))
      assert_401(select(2, api.login(host, a.site_id, "wrong-password")), "Invalid credentials")
      api.unban(host, a.user.id)
      assert.equal(200, me(host, a.access_token).status)
      -- an indefinite ban
      api.ban(host, a.user.id)
      assert_401(me(host, a.access_token), DEACTIVATED)
    end)

    it("lifts an expired ban on the next check and resets the row", function()
      local a = api.signup(host)
      api.ban(host, a.user.id, -1)
      assert.equal(200, me(host, a.access_token).status)
      assert.same({ { "t", "", "" } }, api.sql(host,
        "SELECT is_active, banned_until, coalesce(ban_reason, '') FROM users WHERE id = " .. a.user.id))
      api.ban(host, a.user.id, -1)
      assert.truthy(api.login(host, a.site_id, a.password))
    end)

    it("admin and rank levels read the current row (403 texts), effective on the next request", function()
      local a = api.signup(host)
      local h = api.auth(a.access_token)
      local res = host:request("GET", "/test/accounts/admin-only", nil, h)
      assert.equal(403, res.status)
      assert.equal("Admin access required", res.json.detail)
      res = host:request("GET", "/test/accounts/vip-only", nil, h)
      assert.equal(403, res.status)
      assert.equal("Insufficient rank: requires VIP", res.json.detail)
      api.set_rank(host, a.user.id, "PREMIUM")
      assert.equal(403, host:request("GET", "/test/accounts/vip-only", nil, h).status)
      api.set_rank(host, a.user.id, "VIP")
      assert.same({ ok = true, rank = "VIP" }, host:request("GET", "/test/accounts/vip-only", nil, h).json)
      assert.equal("VIP", me(host, a.access_token).json.rank)
      api.make_admin(host, a.user.id)
      assert.equal(200, host:request("GET", "/test/accounts/admin-only", nil, h).status)
      api.make_admin(host, a.user.id, false)
      assert.equal(403, host:request("GET", "/test/accounts/admin-only", nil, h).status)
      assert.equal("Not authenticated", host:request("GET", "/test/accounts/admin-only").json.detail)
    end)

    it("reads a per-session Redis cache: no database read per request", function()
      local a = api.signup(host)
      local c = claims_of(a.access_token)
      assert.equal(200, me(host, a.access_token).status)
      local out = io.popen("redis-cli -h " .. os.getenv("REDIS_HOST") .. " -p " .. os.getenv("REDIS_PORT")
        .. " EXISTS 'cc:sess:{" .. c.user_id .. "}:" .. c.jti .. "'"):read("*a")
      assert.equal("1", out:match("%d"))
      -- a change made behind the cache's back (no invalidation) is not seen…
      api.sql(host, "UPDATE users SET nickname = 'behind-" .. api.unique() .. "' WHERE id = " .. c.user_id)
      assert.equal(a.nickname, me(host, a.access_token).json.nickname)
      -- …until the user's entries are dropped, as every real change does
      api.set_rank(host, c.user_id, "STANDARD")
      assert.truthy(me(host, a.access_token).json.nickname:find("^behind%-"))
      -- last_used_at is written at most once a minute
      local before = scalar(host, "SELECT last_used_at FROM sessions WHERE user_id = " .. c.user_id)
      for _ = 1, 3 do me(host, a.access_token) end
      assert.equal(before, scalar(host, "SELECT last_used_at FROM sessions WHERE user_id = " .. c.user_id))
    end)
  end)
end)

describe("auth with other settings", function()
  it("expires access tokens after JWT_EXPIRE_MINUTES; logout still revokes an expired token's session", function()
    local h = support.start(env { JWT_EXPIRE_MINUTES = "0.05", MAX_CONCURRENT_SESSIONS = "0" })
    local ok, err = pcall(function()
      local a = api.signup(h)
      assert.equal(3, a.response.json.expires_in)
      -- valid until then, on every worker (each remembers a token it verified)
      for _ = 1, 4 do assert.equal(200, me(h, a.access_token).status) end
      local other = assert(api.login(h, a.site_id, a.password))
      support.sleep(3.1)
      assert_401(me(h, a.access_token), TOKEN_INVALID)
      assert_401(h:request("POST", "/api/auth/refresh", nil, api.auth(a.access_token)), TOKEN_INVALID)
      -- logout with the expired token, naming the other session's refresh token too
      local out = h:request("POST", "/api/auth/logout", { refresh_token = other.refresh_token }, api.auth(a.access_token))
      assert.equal(200, out.status)
      assert_401(refresh(h, a.refresh_token), TOKEN_INVALID)
      assert_401(refresh(h, other.refresh_token), TOKEN_INVALID)
    end)
    h:stop()
    assert(ok, err)
  end)

  it("keeps several sessions with MAX_CONCURRENT_SESSIONS = 0; logout-all ends them all", function()
    local h = support.start(env { MAX_CONCURRENT_SESSIONS = "0" })
    local ok, err = pcall(function()
      local a = api.signup(h)
      local b = assert(api.login(h, a.site_id, a.password))
      assert.equal(200, me(h, a.access_token).status)
      assert.equal(200, me(h, b.access_token).status)
      -- logout of one session leaves the other
      assert.equal(200, h:request("POST", "/api/auth/logout", nil, api.auth(b.access_token)).status)
      assert_401(me(h, b.access_token), SESSION_GONE)
      assert.equal(200, me(h, a.access_token).status)
      local c = assert(api.login(h, a.site_id, a.password))
      assert.equal(200, h:request("POST", "/api/auth/logout-all", nil, api.auth(c.access_token)).status)
      assert_401(me(h, a.access_token), SESSION_GONE)
      assert_401(me(h, c.access_token), SESSION_GONE)
      assert.equal("0", scalar(h, "SELECT count(*) FROM sessions WHERE is_active AND user_id = " .. a.user.id))
    end)
    h:stop()
    assert(ok, err)
  end)

  it("locks a client IP behind a trusted proxy (rightmost untrusted X-Forwarded-For address)", function()
    local h = support.start(env { TRUSTED_PROXIES = "127.0.0.1,10.0.0.1", LOGIN_IP_MAX_FAILED_ATTEMPTS = "3",
      LOGIN_IP_WINDOW_MINUTES = "0.05" })
    local ok, err = pcall(function()
      local a = api.signup(h)
      local function login(xff, password, site)
        return h:request("POST", "/api/auth/login", { site_id = site or a.site_id, password = password },
          { ["X-Forwarded-For"] = xff })
      end
      -- the leftmost entry is client-supplied; the proxy 10.0.0.1 is skipped
      for i = 1, 3 do
        assert.equal(401, login("6.6.6." .. i .. ", 203.0.113.7, 10.0.0.1", "wrong", "ip-" .. i .. api.unique()).status)
      end
      assert.equal("203.0.113.7", scalar(h, "SELECT DISTINCT ip_address FROM login_attempts"))
      local locked = login("203.0.113.7", a.password)
      assert.equal(429, locked.status)
      assert.equal("Too many failed attempts", locked.json.detail)
      assert.truthy(tonumber(locked.headers["retry-after"]) >= 1)
      assert.equal(200, login("203.0.113.8", a.password).status) -- another client
      support.sleep(tonumber(locked.headers["retry-after"]) + 0.2)
      assert.equal(200, login("203.0.113.7", a.password).status)
    end)
    h:stop()
    assert(ok, err)
  end)

  it("falls back to PostgreSQL when Redis is down, never laxer", function()
    local h = support.start(env { REDIS_HOST = "127.0.0.1", REDIS_PORT = "1" })
    local ok, err = pcall(function()
      local a = api.signup(h)
      assert.equal(200, me(h, a.access_token).status)
      api.ban(h, a.user.id, 1)
      assert_401(me(h, a.access_token), DEACTIVATED)
      api.unban(h, a.user.id)
      assert.equal(200, h:request("POST", "/api/auth/logout", nil, api.auth(a.access_token)).status)
      assert_401(me(h, a.access_token), SESSION_GONE)
    end)
    h:stop()
    assert(ok, err)
  end)

  it("hashes with m=19456,t=2,p=1 by default and rehashes at login when the parameters change", function()
    local url, name = support.create_database()
    local fast = support.start(env { DATABASE_URL = url })
    fast.db_name = name
    local a = api.signup(fast)
    fast.db_name = nil
    fast:stop()
    local slow = support.start { DATABASE_URL = url }
    slow.db_name = name -- dropped with this host
    local ok, err = pcall(function()
      local function hash() return scalar(slow, "SELECT password_hash FROM users WHERE id = " .. a.user.id) end
      assert.truthy(hash():find("^%$argon2id%$v=19%$m=8192,t=1,p=1%$"))
      assert.truthy(api.login(slow, a.site_id, a.password))
      assert.truthy(hash():find("^%$argon2id%$v=19%$m=19456,t=2,p=1%$"), hash())
      assert.truthy(api.login(slow, a.site_id, a.password))
    end)
    slow:stop()
    assert(ok, err)
  end)
end)
