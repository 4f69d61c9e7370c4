-- invite_spec.lua - CONTRACT.md §5: generating, validating (every row of the
-- usability table), listing, deactivating and counting invite codes, and the
-- one conditional UPDATE that lets concurrent signups never overuse a code.
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"

local ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

describe("invite codes", function()
  local host, admin, admin_h
  setup(function()
    host = support.start { ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
    admin = api.signup(host)
    api.make_admin(host, admin.user.id)
    admin_h = api.auth(admin.access_token)
  end)
  teardown(function() host:stop() end)

  local function generate(query, headers)
    return host:request("POST", "/api/invite/generate" .. (query or ""), nil, headers or admin_h)
  end

  local function validate(code)
    local res = host:request("POST", "/api/invite/validate", { code = code })
    assert.equal(200, res.status, res.body)
    return res.json
  end

  local function scalar(sql) return api.sql(host, sql)[1][1] end

  local function signup_with(code)
    local u = api.unique()
    return host:request("POST", "/api/auth/signup", { site_id = "inv" .. u, nickname = "inv" .. u,
      phone_number = "015" .. u:sub(-8), invite_code = code, password = "password-1" })
  end

  it("reports the seeded code 5858 as an ordinary unlimited code", function()
    assert.same({ is_valid = true, error_message = http.json.null, code = "5858", expires_at = http.json.null,
      remaining_uses = http.json.null }, validate("5858"))
  end)

  it("generates 8 unbiased symbols of the alphabet with the default expiry and uses", function()
    local res = generate()
    assert.equal(200, res.status, res.body)
    local c = res.json
    assert.equal(8, #c.code)
    assert.truthy(c.code:find("^[" .. ALPHABET .. "]+$"), c.code)
    assert.equal(1, c.max_uses)
    assert.equal(0, c.used_count)
    assert.is_true(c.is_active)
    assert.equal(admin.user.id, c.created_by)
    assert.truthy(c.created_at:find("Z$"))
    assert.equal("30", scalar("SELECT round(extract(epoch FROM expires_at - created_at) / 86400) FROM invite_codes "
      .. "WHERE code = '" .. c.code .. "'"))
    assert.equal("invite.generate", scalar("SELECT action FROM admin_audit WHERE target_id = '" .. c.code .. "'"))
    -- 0 = never / unlimited
    local forever = generate("?expires_in_days=0&max_uses=0").json
    assert.equal(http.json.null, forever.expires_at)
    assert.equal(http.json.null, forever.max_uses)
    assert.same({ is_valid = true, error_message = http.json.null, code = forever.code,
      expires_at = http.json.null, remaining_uses = http.json.null }, validate(forever.code:lower()))
    -- every symbol of the alphabet turns up, nothing else
    local seen = {}
    for _ = 1, 40 do
      for ch in generate("?max_uses=3").json.code:gmatch(".") do seen[ch] = true end
    end
    local n = 0
    for ch in pairs(seen) do
      n = n + 1
      assert.truthy(ALPHABET:find(ch, 1, true), ch)
    end
    assert.truthy(n >= 30, "only " .. n .. " distinct symbols in 320")
  end)

  it("refuses non-admins (403) and out-of-range queries (422)", function()
    local u = api.signup(host)
    local res = generate(nil, api.auth(u.access_token))
    assert.equal(403, res.status)
    assert.equal("Only admin users can generate invite codes", res.json.detail)
    assert.equal(403, generate(nil, {}).status)
    for _, q in ipairs { "?expires_in_days=3651", "?expires_in_days=-1", "?max_uses=1000001", "?max_uses=-1",
      "?max_uses=x" } do
      local bad = generate(q)
      assert.equal(422, bad.status, q)
      assert.equal("query", bad.json.detail[1].loc[1])
    end
    assert.equal(200, generate("?expires_in_days=3650&max_uses=1000000").status)
  end)

  it("validate reports the first failing condition of §5.2", function()
    local null = http.json.null
    assert.same({ is_valid = false, error_message = "Invalid invite code", code = null, expires_at = null,
      remaining_uses = null }, validate("NOSUCH99"))
    local c = generate("?max_uses=2").json
    local ok = validate(c.code)
    assert.is_true(ok.is_valid)
    assert.equal(2, ok.remaining_uses)
    assert.equal(c.expires_at, ok.expires_at)
    assert.equal(200, signup_with(c.code:lower()).status)
    assert.equal(1, validate(c.code).remaining_uses)
    assert.equal(200, signup_with(c.code).status)
    local used = validate(c.code)
    assert.is_false(used.is_valid)
    assert.equal("Invite code has reached maximum usage limit", used.error_message)
    assert.equal(null, used.remaining_uses)
    local refused = signup_with(c.code)
    assert.equal(400, refused.status)
    assert.equal("유효하지 않은 초대코드입니다", refused.json.detail)
    -- expired, then deactivated (which is reported first)
    api.sql(host, "UPDATE invite_codes SET expires_at = now() - interval '1 minute' WHERE code = '" .. c.code .. "'")
    assert.equal("Invite code has expired", validate(c.code).error_message)
    api.sql(host, "UPDATE invite_codes SET is_active = false WHERE code = '" .. c.code .. "'")
    assert.equal("Invite code has been deactivated", validate(c.code).error_message)
    -- signup agrees with validate on an expired code
    local exp = generate("?max_uses=0").json
    api.sql(host, "UPDATE invite_codes SET expires_at = now() - interval '1 second' WHERE code = '" .. exp.code .. "'")
    assert.equal(400, signup_with(exp.code).status)
    for _, code in ipairs { "", string.rep("A", 65) } do
      local bad = host:request("POST", "/api/invite/validate", { code = code })
      assert.equal(422, bad.status)
      assert.same({ "body", "code" }, bad.json.detail[1].loc)
    end
    assert.equal("missing", host:request("POST", "/api/invite/validate", {}).json.detail[1].type)
  end)

  it("lets exactly max_uses of many concurrent signups use a code", function()
    local c = generate("?max_uses=3").json
    local res = http.concurrent(host.port, 10, "POST", "/api/auth/signup", function(i)
      local u = api.unique()
      return { site_id = "conc" .. u .. i, nickname = "conc" .. u .. i, phone_number = "016" .. u:sub(-7) .. i,
        invite_code = c.code, password = "password-1" }
    end)
    local ok = 0
    for _, r in ipairs(res) do
      if r.status == 200 then ok = ok + 1 else assert.equal("유효하지 않은 초대코드입니다", r.json.detail) end
    end
    assert.equal(3, ok)
    assert.equal("3", scalar("SELECT used_count FROM invite_codes WHERE code = '" .. c.code .. "'"))
  end)

  it("lists newest first: all codes for an admin, their own for others", function()
    local first = generate().json
    local second = generate().json
    local list = host:request("GET", "/api/invite/codes", nil, admin_h)
    assert.equal(200, list.status)
    assert.same(second, list.json[1])
    assert.same(first, list.json[2])
    assert.equal("5858", list.json[#list.json].code)
    -- a former admin sees the codes they created, a user with none sees []
    local ex = api.signup(host)
    api.make_admin(host, ex.user.id)
    local own = host:request("POST", "/api/invite/generate", nil, api.auth(ex.access_token)).json
    api.make_admin(host, ex.user.id, false)
    assert.same({ own }, host:request("GET", "/api/invite/codes", nil, api.auth(ex.access_token)).json)
    local nobody = api.signup(host)
    local empty = host:request("GET", "/api/invite/codes", nil, api.auth(nobody.access_token))
    assert.equal("[]", empty.body)
    assert.equal(403, host:request("GET", "/api/invite/codes").status)
  end)

  it("deactivates: 404 unknown, 403 someone else's, owners and admins may", function()
    local function deactivate(code, h)
      return host:request("PATCH", "/api/invite/codes/" .. code .. "/deactivate", nil, h)
    end
    local missing = deactivate("NOSUCH99", admin_h)
    assert.equal(404, missing.status)
    assert.equal("Invite code not found", missing.json.detail)
    local owner = api.signup(host)
    api.make_admin(host, owner.user.id)
    local mine = host:request("POST", "/api/invite/generate", nil, api.auth(owner.access_token)).json
    api.make_admin(host, owner.user.id, false)
    local stranger = api.signup(host)
    local refused = deactivate(mine.code, api.auth(stranger.access_token))
    assert.equal(403, refused.status)
    assert.equal("You can only deactivate your own invite codes", refused.json.detail)
    assert.is_true(validate(mine.code).is_valid)
    local ok = deactivate(mine.code:lower(), api.auth(owner.access_token))
    assert.equal(200, ok.status, ok.body)
    assert.same({ message = "Invite code deactivated successfully" }, ok.json)
    assert.equal("Invite code has been deactivated", validate(mine.code).error_message)
    local other = generate().json
    assert.equal(200, deactivate(other.code, admin_h).status)
    assert.equal("invite.deactivate", scalar("SELECT action FROM admin_audit WHERE target_id = '" .. other.code
      .. "' ORDER BY id DESC LIMIT 1"))
  end)

  it("counts stats globally for admins and over their own codes for others", function()
    local owner = api.signup(host)
    api.make_admin(host, owner.user.id)
    local oh = api.auth(owner.access_token)
    local a = host:request("POST", "/api/invite/generate?max_uses=1", nil, oh).json
    host:request("POST", "/api/invite/generate?max_uses=5", nil, oh)
    local c = host:request("POST", "/api/invite/generate?max_uses=0", nil, oh).json
    assert.equal(200, signup_with(a.code).status) -- a is used up
    api.sql(host, "UPDATE invite_codes SET expires_at = now() - interval '1 hour' WHERE code = '" .. c.code .. "'")
    api.make_admin(host, owner.user.id, false)
    local own = host:request("GET", "/api/invite/stats", nil, oh)
    assert.equal(200, own.status)
    assert.same({ total_codes = 3, active_codes = 1, expired_codes = 1, total_uses = 1 }, own.json)
    local global = host:request("GET", "/api/invite/stats", nil, admin_h).json
    local expect = api.sql(host, "SELECT count(*), count(*) FILTER (WHERE is_active AND (expires_at IS NULL OR "
      .. "expires_at > now()) AND (max_uses IS NULL OR used_count < max_uses)), count(*) FILTER (WHERE expires_at < now()), "
      .. "sum(used_count) FROM invite_codes")[1]
    assert.same({ total_codes = tonumber(expect[1]), active_codes = tonumber(expect[2]),
      expired_codes = tonumber(expect[3]), total_uses = tonumber(expect[4]) }, global)
    assert.truthy(global.total_codes > 3)
  end)
end)
