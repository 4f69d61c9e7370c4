-- rbac_spec.lua - rank-gated routes (CONTRACT.md §6): /api/rbac/premium and
-- /api/rbac/vip check the rank of the current database row on every
-- request (a rank change applies at once), and admins get no bypass.
local support = require "spec.support.host"
local api = require "spec.support.api"

describe("rbac", function()
  local host

  setup(function()
    host = support.start { WORKERS = "2", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
  end)
  teardown(function() host:stop() end)

  local function get(route, token)
    return host:request("GET", "/api/rbac/" .. route, nil, token and api.auth(token))
  end

  local function assert_ok(res, required)
    assert.equal(200, res.status, res.body)
    assert.same({ ok = true, required = required }, res.json)
  end

  local function assert_refused(res, required)
    assert.equal(403, res.status, res.body)
    assert.same({ detail = "Insufficient rank: requires " .. required }, res.json)
  end

  it("refuses a STANDARD user on both routes", function()
    local a = api.signup(host)
    assert_refused(get("premium", a.access_token), "PREMIUM")
    assert_refused(get("vip", a.access_token), "VIP")
  end)

  it("lets PREMIUM through premium only, as soon as the rank changes", function()
    local a = api.signup(host)
    assert_refused(get("premium", a.access_token), "PREMIUM") -- fills the session cache
    api.set_rank(host, a.user.id, "PREMIUM")
    assert_ok(get("premium", a.access_token), "PREMIUM")
    assert_refused(get("vip", a.access_token), "VIP")
  end)

  it("lets VIP through both, and a lowered rank is refused again", function()
    local a = api.signup(host)
    api.set_rank(host, a.user.id, "VIP")
    assert_ok(get("premium", a.access_token), "PREMIUM")
    assert_ok(get("vip", a.access_token), "VIP")
    api.set_rank(host, a.user.id, "STANDARD")
    assert_refused(get("premium", a.access_token), "PREMIUM")
    assert_refused(get("vip", a.access_token), "VIP")
  end)

  it("gives a STANDARD admin no bypass", function()
    local a = api.signup(host)
    api.make_admin(host, a.user.id)
    assert.equal("t", api.sql(host, "SELECT is_admin FROM users WHERE id = " .. a.user.id)[1][1])
    assert_refused(get("premium", a.access_token), "PREMIUM")
    assert_refused(get("vip", a.access_token), "VIP")
  end)

  it("authenticates before checking the rank", function()
    local none = get("premium")
    assert.equal(403, none.status)
    assert.same({ detail = "Not authenticated" }, none.json)
    local bad = get("vip", "not.a.jwt")
    assert.equal(401, bad.status)
    assert.same({ detail = "토큰이 유효하지 않습니다" }, bad.json)
    assert.equal("Bearer", bad.headers["www-authenticate"])
  end)

  it("answers only GET", function()
    local a = api.signup(host)
    api.set_rank(host, a.user.id, "VIP")
    local res = host:request("POST", "/api/rbac/vip", nil, api.auth(a.access_token))
    assert.equal(405, res.status)
    assert.same({ detail = "Method Not Allowed" }, res.json)
  end)
end)
