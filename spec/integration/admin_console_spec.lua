-- admin_console_spec.lua - the admin console's API (CONTRACT.md §13.1,
-- §13.2): the guard on every admin route (taken from the route table by
-- path, so an unguarded one is caught), stats, the users search and pages,
-- detail, activities, the audit log, PATCH and tokens add, each with its
-- exact texts; every mutation leaves its audit row and outbox event.
local support = require "spec.support.host"
local api = require "spec.support.api"
local http = require "spec.support.http"

describe("admin console", function()
  local host, admin, player

  setup(function()
    host = support.start { WORKERS = "2", LOGIN_MAX_FAILED_ATTEMPTS = "3" }
    admin = api.player(host)
    api.make_admin(host, admin.id)
    player = api.player(host)
  end)

  teardown(function()
    if host then host:stop() end
  end)

  local function scalar(sql) return api.sql(host, sql)[1][1] end
  local function get(path, headers) return host:request("GET", path, nil, headers or admin.headers) end

  it("guards every admin route (and distribute): 403 without a token, 401 for a bad one, 403 for a player", function()
    local wrong, checked = {}, 0
    for _, r in ipairs(support.routes()) do
      if r.method ~= "WS" and (r.path:find("^/api/admin/") or r.path == "/api/rewards/distribute") then
        local path = r.path
        for _, p in ipairs(r.params or {}) do path = path:gsub("{" .. p.name .. "[^}]*}", tostring(p.example or 1)) end
        for _, case in ipairs {
          { {}, 403, "Not authenticated" },
          { { Authorization = "Bearer not.a.token" }, 401, "토큰이 유효하지 않습니다" },
          { player.headers, 403, "Admin access required" },
        } do
          local res = http.request(host.port, r.method, path, r.body and "{}" or nil, case[1])
          checked = checked + 1
          if not (res and res.status == case[2] and res.json and res.json.detail == case[3]) then
            wrong[#wrong + 1] = r.method .. " " .. path .. " -> " .. tostring(res and res.status) .. " "
              .. tostring(res and res.body)
          end
        end
      end
    end
    assert.same({}, wrong)
    assert.is_true(checked >= 3 * 15)
  end)

  it("counts users, active users, plays and the currency in circulation", function()
    local before = get("/api/admin/stats").json
    assert.same({ "active_users", "total_games_played", "total_gems_in_circulation", "total_gold_in_circulation",
      "total_tokens_in_circulation", "total_users" }, api.keys(before))
    local p = api.player(host)
    host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers)
    api.ban(host, p.id)
    local after = get("/api/admin/stats").json
    assert.equal(before.total_users + 1, after.total_users)
    assert.equal(before.active_users, after.active_users)
    assert.equal(before.total_games_played + 1, after.total_games_played)
    assert.equal(scalar("SELECT sum(balance) FROM wallet_balances WHERE currency = 'tokens'"),
      tostring(after.total_tokens_in_circulation))
  end)

  it("searches nickname, site_id and phone as literal text, with real pages", function()
    local tag = api.unique()
    local made = {}
    for i = 1, 5 do
      made[i] = api.signup(host, { nickname = "srch" .. tag .. "_" .. i, site_id = "sid%" .. tag .. i })
    end
    local page2 = get("/api/admin/users?search=srch" .. tag .. "&page=2&page_size=2").json
    assert.same({ 2, 2, 5 }, { page2.page, page2.page_size, page2.total })
    assert.same({ made[3].user.id, made[2].user.id }, { page2.items[1].id, page2.items[2].id })
    local item = page2.items[1]
    assert.same({ "banned_until", "created_at", "exp", "gems", "gold", "id", "is_active", "is_admin", "last_login",
      "nickname", "phone_number", "risk_profile", "segment", "site_id", "tokens", "vip_tier" }, api.keys(item))
    assert.equal(200, item.tokens)
    -- % and _ match themselves: "_1" finds only the nickname ending in _1,
    -- a lone % only the site_ids holding one.
    local underscore = get("/api/admin/users?search=" .. tag .. "_1").json
    assert.same({ 1, made[1].user.id }, { underscore.total, underscore.items[1].id })
    assert.equal(5, get("/api/admin/users?search=%25" .. tag).json.total)
    assert.equal(0, get("/api/admin/users?search=" .. tag .. "%27x").json.total) -- a quote is text too
    local phone = made[4].phone_number
    local by_phone = get("/api/admin/users?search=" .. phone:sub(-6)).json
    assert.equal(made[4].user.id, by_phone.items[1].id)
    assert.equal(made[4].user.id, get("/api/admin/users?search=SRCH" .. tag .. "_4").json.items[1].id) -- any case
    assert.equal(422, get("/api/admin/users?page_size=201").status)
  end)

  it("pages few matches and many alike: collected first or walked newest first, the same order", function()
    -- backoffice.lua collects the matches first when they are few against
    -- sqrt((offset + limit) * users / 2), and walks the newest first when
    -- they are many. With page_size 3, page 2 and the users analyzed (n of
    -- them), 4 matches are few (16 <= 3n) and 36 many (1296 > 3n) while n
    -- < 432; both must give the same newest-first pages.
    local tag = api.unique()
    local made = {}
    for i = 1, 40 do
      made[i] = api.signup(host, { nickname = (i <= 4 and "few" or "many") .. tag .. "_" .. i })
    end
    api.sql(host, "ANALYZE users")
    local n = tonumber(api.sql(host, "SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass")[1][1])
    assert.truthy(n >= 44 and n < 432, n)
    local few = get("/api/admin/users?search=few" .. tag .. "&page=2&page_size=3").json
    assert.same({ 4, { made[1].user.id } }, { few.total, { few.items[1].id } })
    local many = get("/api/admin/users?search=many" .. tag .. "&page=2&page_size=3").json
    assert.same({ 36, made[37].user.id, made[36].user.id, made[35].user.id },
      { many.total, many.items[1].id, many.items[2].id, many.items[3].id })
    local all = get("/api/admin/users?search=" .. tag .. "&page=14&page_size=3").json
    assert.same({ 40, 1, made[1].user.id }, { all.total, #all.items, all.items[1].id })
  end)

  it("shows a user's detail with flags and the newest history", function()
    local p = api.player(host, 500)
    for _ = 1, 3 do api.login(host, p.site_id, "wrong-password-1") end
    api.ban(host, p.id, 1)
    local d = get("/api/admin/users/" .. p.id).json
    assert.same({ "balances", "flags", "recent", "user" }, api.keys(d))
    assert.equal(p.site_id, d.user.site_id)
    assert.same({ tokens = 500, gold = 0, gems = 0, exp = 0 }, d.balances)
    assert.same({ "banned", "locked" }, d.flags)
    assert.same({ "activities", "ledger", "rewards" }, api.keys(d.recent))
    assert.equal("SIGNUP", d.recent.activities[#d.recent.activities].type)
    assert.equal("dev_grant", d.recent.ledger[1].reason)
    assert.same({ "admin" }, get("/api/admin/users/" .. admin.id).json.flags)
    local res = get("/api/admin/users/999999")
    assert.same({ 404, "User not found" }, { res.status, res.json.detail })
  end)

  it("pages a user's activities", function()
    local p = api.player(host)
    for _ = 1, 4 do api.login(host, p.site_id, api.PASSWORD) end
    local page = get("/api/admin/users/" .. p.id .. "/activities?page=2&page_size=2").json
    assert.same({ 2, 2, 5 }, { page.page, page.page_size, page.total })
    assert.equal("LOGIN", page.items[1].type)
    assert.is_table(page.items[1].data)
    assert.same({ 404, "User not found" }, { get("/api/admin/users/999999/activities").status,
      get("/api/admin/users/999999/activities").json.detail })
  end)

  it("patches any subset, refuses another user's nickname with nothing changed, and bans with is_active", function()
    local p, q = api.player(host), api.player(host)
    local path = "/api/admin/users/" .. p.id
    local res = host:request("PATCH", path, { vip_tier = "VIP", risk_profile = "low", segment = "whale" }, admin.headers)
    assert.equal(200, res.status, res.body)
    assert.same({ p.id, p.nickname, "VIP", "low", "whale", true },
      { res.json.id, res.json.nickname, res.json.vip_tier, res.json.risk_profile, res.json.segment, res.json.is_active })
    assert.equal(200, host:request("GET", "/api/rbac/vip", nil, p.headers).status) -- the cache dropped the old rank
    res = host:request("PATCH", path, { segment = http.json.null }, admin.headers)
    assert.equal(http.json.null, res.json.segment)
    local audits = scalar("SELECT count(*) FROM admin_audit WHERE action = 'user.update' AND target_id = '" .. p.id .. "'")
    res = host:request("PATCH", path, { nickname = q.nickname, risk_profile = "high" }, admin.headers)
    assert.same({ 409, "이미 존재하는 닉네임입니다" }, { res.status, res.json.detail })
    res = host:request("PATCH", path, { phone_number = q.phone_number }, admin.headers)
    assert.same({ 409, "이미 등록된 전화번호입니다" }, { res.status, res.json.detail })
    assert.equal("low", scalar("SELECT risk_profile FROM users WHERE id = " .. p.id))
    assert.equal(audits, scalar("SELECT count(*) FROM admin_audit WHERE action = 'user.update' AND target_id = '"
      .. p.id .. "'"))
    assert.equal(422, host:request("PATCH", path, { vip_tier = "GOLD" }, admin.headers).status)
    assert.equal(422, host:request("PATCH", path, { segment = string.rep("s", 33) }, admin.headers).status)
    res = host:request("PATCH", "/api/admin/users/" .. admin.id, { is_active = false }, admin.headers)
    assert.same({ 400, "Cannot ban yourself" }, { res.status, res.json.detail })
    res = host:request("PATCH", path, { is_active = false }, admin.headers)
    assert.equal(200, res.status)
    assert.equal(401, host:request("GET", "/api/users/profile", nil, p.headers).status)
    local login = select(2, api.login(host, p.site_id, api.PASSWORD))
    assert.equal(403, login.status)
    assert.equal(200, host:request("PATCH", path, { is_active = true }, admin.headers).status)
    assert.truthy(api.login(host, p.site_id, api.PASSWORD))
    res = host:request("PATCH", "/api/admin/users/999999", { segment = "x" }, admin.headers)
    assert.same({ 404, "User not found" }, { res.status, res.json.detail })
    assert.equal("1", scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'admin.action' "
      .. "AND payload->>'action' = 'user.update' AND payload->>'target_id' = '" .. p.id .. "' "
      .. "AND payload->'payload'->>'is_active' = 'false'"))
  end)

  it("adds tokens with its ledger, audit and outbox rows, and a replayed key credits once", function()
    local p = api.player(host)
    local path = "/api/admin/users/" .. p.id .. "/tokens/add"
    local res = host:request("POST", path .. "?amount=50", { reason = "support" }, admin.headers)
    assert.equal(200, res.status, res.body)
    assert.same({ success = true, message = "Added 50 tokens to user " .. p.id, new_balance = 250, admin_id = admin.id },
      res.json)
    local audit = api.sql(host, "SELECT id, payload->>'reason' FROM admin_audit WHERE action = 'user.tokens_add' "
      .. "AND target_id = '" .. p.id .. "'")
    assert.equal("support", audit[1][2])
    assert.same({ { "50", "audit:" .. audit[1][1], tostring(admin.id) } }, api.sql(host, "SELECT delta, reference, "
      .. "actor_id FROM wallet_ledger WHERE user_id = " .. p.id .. " AND reason = 'admin_grant'"))
    assert.equal("1", scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'admin.action' "
      .. "AND (payload->>'audit_id')::bigint = " .. audit[1][1]))
    local key = { Authorization = admin.headers.Authorization, ["Idempotency-Key"] = "grant-" .. api.unique() }
    local first = host:request("POST", path, { amount = 30 }, key)
    local again = host:request("POST", path, { amount = 30 }, key)
    assert.same(first.json, again.json)
    assert.equal(280, host:request("GET", "/api/users/balance", nil, p.headers).json.balances.tokens)
    local before = scalar("SELECT count(*) FROM wallet_ledger")
    res = host:request("POST", path .. "?amount=0", nil, admin.headers)
    assert.same({ 400, "Amount must be positive" }, { res.status, res.json.detail })
    assert.equal(422, host:request("POST", path .. "?amount=5", { amount = 6 }, admin.headers).status)
    assert.equal(422, host:request("POST", path, {}, admin.headers).status)
    assert.equal(422, host:request("POST", path .. "?amount=1.5", nil, admin.headers).status)
    res = host:request("POST", "/api/admin/users/999999/tokens/add?amount=5", nil, admin.headers)
    assert.same({ 404, "User not found" }, { res.status, res.json.detail })
    assert.equal(before, scalar("SELECT count(*) FROM wallet_ledger"))
  end)

  it("lists the audit log with filters and totals; rank, ban and unban are in it with their outbox events", function()
    local p = api.player(host)
    host:request("PUT", "/api/admin/users/" .. p.id .. "/rank", { user_rank = "PREMIUM" }, admin.headers)
    host:request("POST", "/api/admin/users/" .. p.id .. "/ban", { reason = "spec" }, admin.headers)
    host:request("POST", "/api/admin/users/" .. p.id .. "/unban", nil, admin.headers)
    local all = get("/api/admin/audit?target_id=" .. p.id).json
    assert.equal(3, all.total)
    assert.same({ "user.unban", "user.ban", "user.rank" }, { all.items[1].action, all.items[2].action, all.items[3].action })
    assert.same({ "action", "admin_id", "created_at", "id", "ip_address", "payload", "target_id", "target_type" },
      api.keys(all.items[1]))
    local bans = get("/api/admin/audit?action=user.ban&target_id=" .. p.id .. "&limit=1&offset=0").json
    assert.same({ 1, 1, 0, "spec" }, { bans.total, bans.limit, bans.offset, bans.items[1].payload.reason })
    assert.equal(0, get("/api/admin/audit?admin_id=999999").json.total)
    assert.equal("3", scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'admin.action' "
      .. "AND payload->>'target_id' = '" .. p.id .. "'"))
    assert.equal(422, get("/api/admin/audit?limit=501").status)
  end)

  it("reports every game's exact RTP, band and distribution (the figures of cchost rtp)", function()
    local r = get("/api/admin/games/rtp").json
    assert.equal(1, r.generation)
    local by = {}
    for _, g in ipairs(r.games) do by[g.game_type] = g end
    assert.same({ "crash", "gacha", "rps", "slot" }, api.keys(by))
    local slot = by.slot
    assert.equal(0.950748, math.floor(slot.rtp * 1e6 + 0.5) / 1e6)
    assert.same({ min = 0.945, max = 0.955 }, slot.band)
    local total, mean = 0, 0
    for i, d in ipairs(slot.distribution) do
      if i > 1 then assert.is_true(d.payout_multiplier > slot.distribution[i - 1].payout_multiplier) end
      total, mean = total + d.probability, mean + d.probability * d.payout_multiplier
    end
    assert.is_true(math.abs(total - 1) < 1e-9 and math.abs(mean - slot.rtp) < 1e-9)
    assert.same({ http.json.null, http.json.null }, { by.gacha.rtp, by.gacha.band })
    assert.equal(1.633333, math.floor(by.gacha.display_value_per_token * 1e6 + 0.5) / 1e6)
    assert.equal("legendary", by.gacha.distribution[4].rarity)
    assert.equal(403, get("/api/admin/games/rtp", player.headers).status)
  end)
end)
