-- rewards_spec.lua - rewards (CONTRACT.md §11, §13.3 grant-bulk): a
-- distribute writes its user_rewards row, credit and ledger row,
-- notification, outbox event and audit row in one transaction and then
-- tells the user's sockets; the history pages; grant-bulk isolates a bad
-- item; keys replay; refused requests write nothing; and after the file
-- every balance still equals its ledger.
local support = require "spec.support.host"
local api = require "spec.support.api"
local ws = require "spec.support.ws"
local http = require "spec.support.http"

describe("rewards", function()
  local host, admin, player, other

  setup(function()
    host = support.start { WORKERS = "2" }
    admin = api.player(host)
    api.make_admin(host, admin.id)
    player = api.player(host)
    other = api.player(host)
  end)

  teardown(function()
    if host then host:stop() end
  end)

  local function scalar(sql) return api.sql(host, sql)[1][1] end

  -- Everything a distribute writes, as one comparable string.
  local function writes()
    return scalar("SELECT (SELECT count(*) FROM user_rewards) || '/' || (SELECT count(*) FROM wallet_ledger) || '/' "
      .. "|| (SELECT count(*) FROM notifications) || '/' || (SELECT count(*) FROM admin_audit) || '/' "
      .. "|| (SELECT count(*) FROM outbox_events) || '/' || (SELECT sum(balance) FROM wallet_balances)")
  end

  local function distribute(body, headers)
    return host:request("POST", "/api/rewards/distribute", body, headers or admin.headers)
  end

  it("credits tokens with every row of its transaction, then tells the user's sockets", function()
    local sock = assert(ws.connect(host.port, "/test/ws/user/" .. player.id))
    local op, hello = sock:read_message()
    assert.equal(1, op)
    assert.truthy(hello:find('"hello"', 1, true))
    local res = distribute { user_id = player.id, reward_type = "token", amount = 150, source_description = "spec prize" }
    assert.equal(200, res.status, res.body)
    local r = res.json
    assert.same({ "awarded_at", "reward_id", "reward_type", "reward_value" }, api.keys(r))
    assert.same({ "TOKEN", "150" }, { r.reward_type, r.reward_value })
    assert.equal(350, host:request("GET", "/api/users/balance", nil, player.headers).json.balances.tokens)
    assert.same({ { "150", "reward", "reward:" .. r.reward_id, tostring(admin.id) } },
      api.sql(host, "SELECT delta, reason, reference, actor_id FROM wallet_ledger WHERE user_id = " .. player.id
        .. " AND reason = 'reward'"))
    assert.same({ { "TOKEN", "150", "150", "spec prize", tostring(admin.id) } },
      api.sql(host, "SELECT reward_type, reward_value, amount, source_description, awarded_by FROM user_rewards "
        .. "WHERE id = " .. r.reward_id))
    local notification = api.sql(host, "SELECT id, type, created_by FROM notifications WHERE user_id = " .. player.id)
    assert.same({ "REWARD_RECEIVED", tostring(admin.id) }, { notification[1][2], notification[1][3] })
    assert.equal("1", scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'reward.granted' "
      .. "AND (payload->>'reward_id')::bigint = " .. r.reward_id))
    assert.equal("1", scalar("SELECT count(*) FROM admin_audit WHERE action = 'rewards.distribute' "
      .. "AND target_id = '" .. player.id .. "'"))
    local _, text = sock:read_message()
    local msg = http.json.decode(text)
    assert.same({ "REWARD_RECEIVED", tonumber(notification[1][1]) }, { msg.type, msg.id })
    assert.same({ reward_type = "TOKEN", amount = 150, source = "spec prize" }, msg.payload)
    assert.is_string(msg.created_at)
    sock:close()
  end)

  it("maps reward types to currencies, and records a type that moves none", function()
    local res = distribute { user_id = other.id, reward_type = "Gems", amount = 7, source_description = "x" }
    assert.equal("GEMS", res.json.reward_type)
    assert.equal(7, host:request("GET", "/api/users/balance", nil, other.headers).json.balances.gems)
    local before = scalar("SELECT count(*) FROM wallet_ledger WHERE user_id = " .. other.id)
    res = distribute { user_id = other.id, reward_type = "badge", amount = 1, source_description = "first steps" }
    assert.equal(200, res.status)
    assert.equal("BADGE", res.json.reward_type)
    assert.is_number(res.json.reward_id)
    assert.equal(before, scalar("SELECT count(*) FROM wallet_ledger WHERE user_id = " .. other.id))
    assert.equal("1", scalar("SELECT count(*) FROM user_rewards WHERE reward_type = 'BADGE'"))
  end)

  it("refuses an unknown user, a non-admin and bad input, writing nothing", function()
    local before = writes()
    local res = distribute { user_id = 999999, reward_type = "TOKEN", amount = 5, source_description = "x" }
    assert.same({ 404, "User not found" }, { res.status, res.json.detail })
    res = distribute({ user_id = player.id, reward_type = "TOKEN", amount = 5, source_description = "x" },
      player.headers)
    assert.same({ 403, "Admin access required" }, { res.status, res.json.detail })
    res = distribute({ user_id = player.id, reward_type = "TOKEN", amount = 5, source_description = "x" }, {})
    assert.same({ 403, "Not authenticated" }, { res.status, res.json.detail })
    for _, bad in ipairs {
      { user_id = player.id, reward_type = "TOKEN", amount = 0, source_description = "x" },
      { user_id = player.id, reward_type = "TOKEN", amount = -5, source_description = "x" },
      { user_id = player.id, reward_type = "TOKEN", amount = 1.5, source_description = "x" },
      { user_id = player.id, reward_type = "", amount = 5, source_description = "x" },
      { user_id = player.id, reward_type = "TOKEN", amount = 5 },
      { user_id = "one", reward_type = "TOKEN", amount = 5, source_description = "x" },
    } do
      assert.equal(422, distribute(bad).status)
    end
    assert.equal(before, writes())
  end)

  it("replays an Idempotency-Key and credits once", function()
    local key = { Authorization = admin.headers.Authorization, ["Idempotency-Key"] = "dist-" .. api.unique() }
    local body = { user_id = other.id, reward_type = "GOLD", amount = 40, source_description = "keyed" }
    local first = distribute(body, key)
    local again = distribute(body, key)
    assert.equal(200, again.status)
    assert.equal("true", again.headers["idempotent-replayed"])
    assert.same(first.json, again.json)
    assert.equal("1", scalar("SELECT count(*) FROM user_rewards WHERE source_description = 'keyed'"))
    assert.equal(40, host:request("GET", "/api/users/balance", nil, other.headers).json.balances.gold)
  end)

  it("lists a user's rewards newest first with real pages, for the user or an admin", function()
    local fresh = api.player(host)
    local path = "/api/rewards/users/" .. fresh.id .. "/rewards"
    assert.same({ rewards = {}, page = 1, page_size = 20, total_rewards = 0, total_pages = 0 },
      host:request("GET", path, nil, fresh.headers).json)
    assert.truthy(host:request("GET", path, nil, fresh.headers).body:find('"rewards":[]', 1, true))
    for i = 1, 5 do
      distribute { user_id = fresh.id, reward_type = "EXP", amount = i, source_description = "r" .. i }
    end
    local page2 = host:request("GET", path .. "?page=2&page_size=2", nil, fresh.headers).json
    assert.same({ 2, 2, 5, 3 }, { page2.page, page2.page_size, page2.total_rewards, page2.total_pages })
    assert.same({ "r3", "r2" }, { page2.rewards[1].source_description, page2.rewards[2].source_description })
    assert.equal(200, host:request("GET", path, nil, admin.headers).status)
    local res = host:request("GET", path, nil, player.headers)
    assert.same({ 403, "Admin access required" }, { res.status, res.json.detail })
    res = host:request("GET", path .. "?page=4&page_size=2", nil, fresh.headers)
    assert.same({ 404, "Page not found. Total items: 5, total pages: 3. Requested page: 4." },
      { res.status, res.json.detail })
    res = host:request("GET", "/api/rewards/users/999999/rewards", nil, admin.headers)
    assert.same({ 404, "User not found" }, { res.status, res.json.detail })
    assert.equal(422, host:request("GET", path .. "?page_size=101", nil, fresh.headers).status)
  end)

  it("grants in bulk item by item: an unknown user is one error, the others are credited once", function()
    local a, b = api.player(host), api.player(host)
    local res = host:request("POST", "/api/admin/rewards/grant-bulk", { items = {
      { user_id = a.id, reward_type = "TOKEN", amount = 10 },
      { user_id = 987654, reward_type = "TOKEN", amount = 10 },
      { user_id = b.id, reward_type = "GOLD", amount = 3, source_description = "bulk gold" },
    } }, admin.headers)
    assert.equal(200, res.status, res.body)
    local r = res.json
    assert.is_false(r.success)
    assert.same({ "ok", "error", "ok" }, { r.results[1].status, r.results[2].status, r.results[3].status })
    assert.same({ user_id = 987654, status = "error", error = "User not found" }, r.results[2])
    assert.is_number(r.results[1].reward_id)
    assert.equal(210, host:request("GET", "/api/users/balance", nil, a.headers).json.balances.tokens)
    assert.equal(3, host:request("GET", "/api/users/balance", nil, b.headers).json.balances.gold)
    assert.equal("admin:" .. admin.id, scalar("SELECT source_description FROM user_rewards WHERE id = "
      .. r.results[1].reward_id))
    assert.equal("2", scalar("SELECT count(*) FROM admin_audit WHERE action = 'rewards.grant_bulk' "
      .. "AND target_id IN ('" .. a.id .. "', '" .. b.id .. "')"))
    local before = writes()
    res = host:request("POST", "/api/admin/rewards/grant-bulk", { items = {} }, admin.headers)
    assert.same({ 400, "items cannot be empty" }, { res.status, res.json.detail })
    local many = {}
    for i = 1, 501 do many[i] = { user_id = a.id, reward_type = "TOKEN", amount = 1 } end
    assert.equal(422, host:request("POST", "/api/admin/rewards/grant-bulk", { items = many }, admin.headers).status)
    assert.equal(422, host:request("POST", "/api/admin/rewards/grant-bulk",
      { items = { { user_id = a.id, reward_type = "TOKEN", amount = -1 } } }, admin.headers).status)
    assert.equal(before, writes())
  end)

  it("replays a keyed grant-bulk, crediting its items once", function()
    local a = api.player(host)
    local key = { Authorization = admin.headers.Authorization, ["Idempotency-Key"] = "bulk-" .. api.unique() }
    local body = { items = { { user_id = a.id, reward_type = "TOKEN", amount = 25 } } }
    local first = host:request("POST", "/api/admin/rewards/grant-bulk", body, key)
    local again = host:request("POST", "/api/admin/rewards/grant-bulk", body, key)
    assert.same(first.json, again.json)
    assert.equal(225, host:request("GET", "/api/users/balance", nil, a.headers).json.balances.tokens)
  end)

  it("kept every balance equal to the sum of its ledger", function()
    assert.equal("0", scalar("SELECT count(*) FROM wallet_balances b WHERE b.balance <> (SELECT coalesce(sum(delta), 0) "
      .. "FROM wallet_ledger l WHERE l.user_id = b.user_id AND l.currency = b.currency)"))
  end)
end)
