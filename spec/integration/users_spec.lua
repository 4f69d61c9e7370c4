-- users_spec.lua - the /api/users routes (CONTRACT.md §7) against a real
-- host: profile read and update (limits, conflicts, password change and the
-- sessions it revokes), balance and info, other users' profiles (masked
-- unless oneself or an admin), and the development token grant (positive
-- amounts only, ledger row, Idempotency-Key, absent when switched off).
local support = require "spec.support.host"
local api = require "spec.support.api"
local cjson = require("spec.support.http").json

local FAST = { ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }

local function env(extra)
  local e = { WORKERS = "2" }
  for k, v in pairs(FAST) do e[k] = v end
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

local keys = api.keys

local PROFILE_KEYS = { "balances", "created_at", "cyber_token_balance", "id", "is_active", "is_admin", "nickname",
  "phone_number", "rank", "site_id" }
local ZERO = { tokens = 0, gold = 0, gems = 0, exp = 0 }

local function assert_detail(res, status, detail)
  assert.equal(status, res.status, res.body)
  assert.equal(detail, res.json.detail)
end

-- The single 422 item of a response.
local function one_422(res)
  assert.equal(422, res.status, res.body)
  assert.equal(1, #res.json.detail, res.body)
  return res.json.detail[1]
end

describe("users", function()
  local host

  setup(function() host = support.start(env { MAX_CONCURRENT_SESSIONS = "0" }) end)
  teardown(function() host:stop() end)

  local function get(path, token) return host:request("GET", path, nil, api.auth(token)) end
  local function put(body, token) return host:request("PUT", "/api/users/profile", body, api.auth(token)) end

  describe("GET /api/users/profile", function()
    it("equals the signup data right after signup", function()
      local a = api.signup(host)
      local res = get("/api/users/profile", a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(PROFILE_KEYS, keys(res.json))
      assert.same({
        id = a.user.id, site_id = a.site_id, nickname = a.nickname, phone_number = a.phone_number,
        cyber_token_balance = 200, balances = { tokens = 200, gold = 0, gems = 0, exp = 0 },
        created_at = a.user.created_at, is_active = true, is_admin = false, rank = "STANDARD",
      }, res.json)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", res.json.created_at)
    end)

    it("needs a token: 403 without one, 401 with a bad one", function()
      local none = host:request("GET", "/api/users/profile")
      assert_detail(none, 403, "Not authenticated")
      local bad = host:request("GET", "/api/users/profile", nil, api.auth("not.a.jwt"))
      assert_detail(bad, 401, "토큰이 유효하지 않습니다")
      assert.equal("Bearer", bad.headers["www-authenticate"])
    end)
  end)

  describe("GET /api/users/balance and /api/users/info", function()
    it("balance gives the wallet, the id and the nickname", function()
      local a = api.signup(host)
      local res = get("/api/users/balance", a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same({ cyber_token_balance = 200, user_id = a.user.id, nickname = a.nickname,
                    balances = { tokens = 200, gold = 0, gems = 0, exp = 0 } }, res.json)
    end)

    it("info is the auth UserResponse plus the balances", function()
      local a = api.signup(host)
      local info = get("/api/users/info", a.access_token)
      assert.equal(200, info.status, info.body)
      assert.same({ "balances", "created_at", "cyber_token_balance", "id", "is_active", "is_admin", "last_login",
        "nickname", "phone_number", "rank", "site_id" }, keys(info.json))
      assert.same({
        id = a.user.id, site_id = a.site_id, nickname = a.nickname, phone_number = a.phone_number,
        cyber_token_balance = 200, balances = { tokens = 200, gold = 0, gems = 0, exp = 0 }, rank = "STANDARD",
        is_admin = false, is_active = true, created_at = a.user.created_at,
        last_login = a.user.created_at, -- never logged in: falls back to created_at (§4.2)
      }, info.json)
      local login = assert(api.login(host, a.site_id))
      local after = get("/api/users/info", login.access_token).json
      assert.equal(login.user.last_login, after.last_login)
      assert.are_not.equal(a.user.created_at, after.last_login)
    end)
  end)

  describe("GET /api/users/{user_id}", function()
    it("gives the caller their own full profile", function()
      local a = api.signup(host)
      local res = get("/api/users/" .. a.user.id, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(get("/api/users/profile", a.access_token).json, res.json)
    end)

    it("masks another user's phone, money and admin flag", function()
      local a, b = api.signup(host), api.signup(host)
      api.make_admin(host, b.user.id)
      local res = get("/api/users/" .. b.user.id, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(PROFILE_KEYS, keys(res.json))
      assert.same({
        id = b.user.id, site_id = b.site_id, nickname = b.nickname, phone_number = "hidden",
        cyber_token_balance = 0, balances = ZERO, created_at = b.user.created_at,
        is_active = true, is_admin = false, rank = "STANDARD",
      }, res.json)
    end)

    it("gives an admin the full profile of another user", function()
      local admin, b = api.signup(host), api.signup(host)
      api.make_admin(host, admin.user.id)
      local res = get("/api/users/" .. b.user.id, admin.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(get("/api/users/profile", b.access_token).json, res.json)
      assert.equal(b.phone_number, res.json.phone_number)
      assert.equal(200, res.json.cyber_token_balance)
    end)

    it("answers 404 for an unknown id and 422 for a non-integer one", function()
      local a = api.signup(host)
      assert_detail(get("/api/users/999999999", a.access_token), 404, "사용자를 찾을 수 없습니다")
      local me = one_422(get("/api/users/me", a.access_token))
      assert.same({ "path", "user_id" }, me.loc)
      assert.equal("int_parsing", me.type)
      assert.equal("Input should be a valid integer, unable to parse string as an integer", me.msg)
      assert.equal("int_parsing", one_422(get("/api/users/1.5", a.access_token)).type)
    end)

    it("checks the token before the id", function()
      assert_detail(host:request("GET", "/api/users/me"), 403, "Not authenticated")
    end)
  end)

  describe("PUT /api/users/profile", function()
    it("changes the nickname, and the next request sees it", function()
      local a = api.signup(host)
      local nick = "renamed" .. api.unique()
      local res = put({ nickname = nick }, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(PROFILE_KEYS, keys(res.json))
      assert.equal(nick, res.json.nickname)
      assert.equal(a.phone_number, res.json.phone_number)
      assert.equal(200, res.json.cyber_token_balance)
      assert.equal(nick, get("/api/users/profile", a.access_token).json.nickname)
      assert.equal(nick, get("/api/auth/me", a.access_token).json.nickname)
      assert.equal(nick, get("/api/users/balance", a.access_token).json.nickname)
    end)

    it("changes the phone number and keeps the rest", function()
      local a = api.signup(host)
      local phone = "011" .. api.unique():sub(-8)
      local res = put({ phone_number = phone }, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.equal(phone, res.json.phone_number)
      assert.equal(a.nickname, res.json.nickname)
      assert.equal(phone, get("/api/users/profile", a.access_token).json.phone_number)
    end)

    it("counts Unicode code points: a 20-character Korean nickname fits", function()
      local a = api.signup(host)
      local nick = string.rep("가", 20)
      local res = put({ nickname = nick }, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.equal(nick, res.json.nickname)
      local long = one_422(put({ nickname = string.rep("나", 51) }, a.access_token))
      assert.equal("string_too_long", long.type)
    end)

    it("leaves absent and null fields unchanged and ignores rank, balances and flags", function()
      local a = api.signup(host)
      local before = get("/api/users/profile", a.access_token).json
      assert.same(before, put({}, a.access_token).json)
      assert.same(before, put({ nickname = cjson.null, phone_number = cjson.null }, a.access_token).json)
      local res = put({ rank = "VIP", vip_tier = "VIP", is_admin = true, cyber_token_balance = 999999,
                        balances = { tokens = 999999 }, site_id = "hijack" .. api.unique(), id = 1 }, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(before, res.json)
      assert.same(before, get("/api/users/profile", a.access_token).json)
      assert.equal("STANDARD", api.sql(host, "SELECT vip_tier FROM users WHERE id = " .. a.user.id)[1][1])
    end)

    it("applies the signup limits (422)", function()
      local a = api.signup(host)
      local cases = {
        { { nickname = "a" }, "nickname", "string_too_short", "String should have at least 2 characters" },
        { { nickname = string.rep("n", 51) }, "nickname", "string_too_long", "String should have at most 50 characters" },
        { { nickname = 12345 }, "nickname", "string_type", "Input should be a valid string" },
        { { phone_number = "010123456" }, "phone_number", "string_too_short",
          "String should have at least 10 characters" },
        { { phone_number = "0101234567890123" }, "phone_number", "string_too_long",
          "String should have at most 15 characters" },
        { { password = "short77", current_password = api.PASSWORD }, "password", "string_too_short",
          "String should have at least 8 characters" },
        { { password = string.rep("p", 129), current_password = api.PASSWORD }, "password", "string_too_long",
          "String should have at most 128 characters" },
      }
      for _, c in ipairs(cases) do
        local e = one_422(put(c[1], a.access_token))
        assert.same({ "body", c[2] }, e.loc)
        assert.equal(c[3], e.type)
        assert.equal(c[4], e.msg)
      end
      local both = put({ nickname = "a", phone_number = "1" }, a.access_token)
      assert.equal(422, both.status)
      assert.same({ "body", "nickname" }, both.json.detail[1].loc)
      assert.same({ "body", "phone_number" }, both.json.detail[2].loc)
      assert.equal(a.nickname, get("/api/users/profile", a.access_token).json.nickname)
    end)

    it("refuses another user's nickname or phone with 409 and writes nothing", function()
      local a, b = api.signup(host), api.signup(host)
      local fresh_phone = "019" .. api.unique():sub(-8)
      assert_detail(put({ nickname = b.nickname, phone_number = fresh_phone }, a.access_token), 409,
        "이미 존재하는 닉네임입니다")
      assert_detail(put({ phone_number = b.phone_number }, a.access_token), 409, "이미 등록된 전화번호입니다")
      local fresh_nick = "fresh" .. api.unique()
      assert_detail(put({ nickname = fresh_nick, phone_number = b.phone_number }, a.access_token), 409,
        "이미 등록된 전화번호입니다")
      local now = get("/api/users/profile", a.access_token).json
      assert.equal(a.nickname, now.nickname)
      assert.equal(a.phone_number, now.phone_number)
      -- one's own current values are no conflict; comparisons are case-sensitive
      local same = put({ nickname = a.nickname, phone_number = a.phone_number }, a.access_token)
      assert.equal(200, same.status, same.body)
      local upper = put({ nickname = b.nickname:upper() }, a.access_token)
      assert.equal(200, upper.status, upper.body)
      assert.equal(b.nickname:upper(), upper.json.nickname)
    end)

    it("needs the right current password to change the password (400), writing nothing", function()
      local a = api.signup(host)
      local nick = "pwfail" .. api.unique()
      assert_detail(put({ password = "brand-new-pass-1", nickname = nick }, a.access_token), 400,
        "Current password is incorrect")
      assert_detail(put({ password = "brand-new-pass-1", current_password = "wrong-password-1", nickname = nick },
        a.access_token), 400, "Current password is incorrect")
      assert_detail(put({ password = "brand-new-pass-1", current_password = cjson.null }, a.access_token), 400,
        "Current password is incorrect")
      assert.equal(a.nickname, get("/api/users/profile", a.access_token).json.nickname)
      assert.truthy(api.login(host, a.site_id, a.password))
      assert.is_nil((api.login(host, a.site_id, "brand-new-pass-1")))
    end)

    it("changes the password, revoking the other sessions but not the current one", function()
      local a = api.signup(host)
      local other = assert(api.login(host, a.site_id, a.password))
      local old_refresh = other.refresh_token
      assert.equal(200, get("/api/users/profile", other.access_token).status)
      local res = put({ password = "brand-new-pass-2", current_password = a.password }, a.access_token)
      assert.equal(200, res.status, res.body)
      assert.same(PROFILE_KEYS, keys(res.json))
      -- the current session keeps working, the other is gone (access and refresh)
      assert.equal(200, get("/api/users/profile", a.access_token).status)
      assert_detail(get("/api/users/profile", other.access_token), 401, "세션이 만료되었거나 로그아웃되었습니다")
      local refresh = host:request("POST", "/api/auth/refresh", { refresh_token = old_refresh })
      assert.equal(401, refresh.status, refresh.body)
      local reason = api.sql(host, "SELECT count(*) FROM sessions WHERE user_id = " .. a.user.id
        .. " AND revoked_reason = 'password_changed'")[1][1]
      assert.equal("1", reason)
      -- the new password logs in, the old one no longer does
      local _, old = api.login(host, a.site_id, a.password)
      assert_detail(old, 401, "Invalid credentials")
      assert.truthy(api.login(host, a.site_id, "brand-new-pass-2"))
    end)
  end)

  describe("POST /api/users/tokens/add", function()
    local function add(token, amount, headers)
      headers = headers or {}
      headers.Authorization = "Bearer " .. token
      return host:request("POST", "/api/users/tokens/add?amount=" .. amount, nil, headers)
    end

    local function ledger(user_id)
      return api.sql(host, "SELECT currency, delta, balance_after, reason, coalesce(reference, '-'), "
        .. "coalesce(idempotency_key, '-') FROM wallet_ledger WHERE user_id = " .. user_id .. " ORDER BY id")
    end

    it("credits the caller with a dev_grant ledger row", function()
      local a = api.signup(host)
      local res = add(a.access_token, 150)
      assert.equal(200, res.status, res.body)
      assert.same({ success = true, message = "Added 150 tokens", new_balance = 350, user_id = a.user.id }, res.json)
      assert.equal(350, get("/api/users/balance", a.access_token).json.cyber_token_balance)
      assert.same({
        { "tokens", "200", "200", "initial_grant", "-", "-" },
        { "tokens", "150", "350", "dev_grant", "-", "-" },
      }, ledger(a.user.id))
    end)

    it("refuses 0 and negative amounts with 400 and writes nothing", function()
      local a = api.signup(host)
      for _, amount in ipairs { "0", "-5", "-9007199254740991" } do
        assert_detail(add(a.access_token, amount), 400, "Amount must be positive")
      end
      assert.equal(200, get("/api/users/balance", a.access_token).json.cyber_token_balance)
      assert.equal(1, #ledger(a.user.id))
    end)

    it("refuses non-integers, a missing amount and amounts above 2^53-1 with 422", function()
      local a = api.signup(host)
      local cases = {
        { "1.5", "int_parsing" }, { "ten", "int_parsing" }, { "", "int_parsing" },
        { "9007199254740992", "less_than_equal" },
      }
      for _, c in ipairs(cases) do
        local e = one_422(add(a.access_token, c[1]))
        assert.same({ "query", "amount" }, e.loc)
        assert.equal(c[2], e.type, c[1])
      end
      local missing = one_422(host:request("POST", "/api/users/tokens/add", nil, api.auth(a.access_token)))
      assert.same({ "query", "amount" }, missing.loc)
      assert.equal("missing", missing.type)
      assert.equal(1, #ledger(a.user.id))
    end)

    it("refuses a credit past 2^53-1 with 400, writing nothing", function()
      local a = api.signup(host)
      assert_detail(add(a.access_token, "9007199254740991"), 400, "Balance limit exceeded")
      local res = add(a.access_token, "9007199254740791")
      assert.equal(200, res.status, res.body)
      assert.truthy(res.body:find('"new_balance":9007199254740991', 1, true), res.body)
      assert.truthy(res.body:find('"Added 9007199254740791 tokens"', 1, true), res.body)
      assert.equal(2, #ledger(a.user.id))
    end)

    it("credits once for a repeated Idempotency-Key and replays the answer", function()
      local a = api.signup(host)
      local first = add(a.access_token, 40, { ["Idempotency-Key"] = "grant-1" })
      assert.equal(200, first.status, first.body)
      assert.is_nil(first.headers["idempotent-replayed"])
      local again = add(a.access_token, 40, { ["Idempotency-Key"] = "grant-1" })
      assert.equal(200, again.status, again.body)
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.same(first.json, again.json)
      assert_detail(add(a.access_token, 41, { ["Idempotency-Key"] = "grant-1" }), 409,
        "Idempotency-Key was already used for a different request")
      assert.equal(422, add(a.access_token, 40, { ["Idempotency-Key"] = "" }).status)
      assert.equal(240, get("/api/users/balance", a.access_token).json.cyber_token_balance)
      assert.same({ "tokens", "40", "240", "dev_grant", "-", "grant-1" }, ledger(a.user.id)[2])
      assert.equal(2, #ledger(a.user.id))
      -- a refused request is not stored: its key may be used again
      assert_detail(add(a.access_token, 0, { ["Idempotency-Key"] = "grant-2" }), 400, "Amount must be positive")
      local later = add(a.access_token, 0, { ["Idempotency-Key"] = "grant-2" })
      assert_detail(later, 400, "Amount must be positive")
      assert.is_nil(later.headers["idempotent-replayed"])
      assert.equal(0, tonumber(api.sql(host, "SELECT count(*) FROM idempotency_keys WHERE key = 'grant-2'")[1][1]))
    end)

    it("needs a token", function()
      assert_detail(host:request("POST", "/api/users/tokens/add?amount=5"), 403, "Not authenticated")
    end)
  end)
end)

describe("users with DEV_TOKEN_GRANT off", function()
  local host

  setup(function() host = support.start(env { DEV_TOKEN_GRANT = "false", WORKERS = "1" }) end)
  teardown(function() host:stop() end)

  it("has no tokens/add route: 404 Not Found, nothing credited", function()
    local a = api.signup(host)
    local res = host:request("POST", "/api/users/tokens/add?amount=100", nil, api.auth(a.access_token))
    assert.equal(404, res.status, res.body)
    assert.same({ detail = "Not Found" }, res.json)
    assert.equal(404, host:request("POST", "/api/users/tokens/add?amount=100").status)
    local bal = host:request("GET", "/api/users/balance", nil, api.auth(a.access_token))
    assert.equal(200, bal.json.cyber_token_balance)
  end)
end)
