-- live_spec.lua - live notifications and the event stream (CONTRACT.md
-- §13.3, §14, §15): the socket's checks before any upgrade, its pong, the
-- sockets a session owns, the per-user limit, targeted and broadcast
-- delivery with `delivered` counted across processes, the inbox, and the
-- outbox relay to Redis Streams with actions and the admin's peek.
local support = require "spec.support.host"
local api = require "spec.support.api"
local ws = require "spec.support.ws"
local http = require "spec.support.http"
local redis = require "spec.support.redis"

local json = http.json

-- Opens the notification socket of user_id with headers; returns client or
-- nil, response.
local function open(host, user_id, token, headers)
  local path = "/ws/notifications/" .. tostring(user_id) .. (token and ("?token=" .. token) or "")
  return ws.connect(host.port, path, headers)
end

-- The next JSON text message (pings skipped), or nil, why.
local function next_json(sock)
  while true do
    local op, payload = sock:read_frame()
    if not op then return nil, payload end
    if op == 1 then return json.decode(payload) end
    if op == 8 then return nil, "closed " .. (#payload >= 2 and payload:byte(1) * 256 + payload:byte(2) or 1005) end
  end
end

describe("live notifications", function()
  local host, admin, player, private

  setup(function()
    -- A private Redis: presence counts are keyed by user id, and ids restart
    -- at 1 in every spec database.
    private = redis.private()
    host = support.start { WORKERS = "2", MAX_CONCURRENT_SESSIONS = "2", WS_MAX_SOCKETS_PER_USER = "3",
                           REDIS_HOST = private.env.REDIS_HOST, REDIS_PORT = private.env.REDIS_PORT }
    admin = api.player(host)
    api.make_admin(host, admin.id)
    player = api.player(host)
  end)

  teardown(function()
    if host then host:stop() end
    private.destroy()
  end)

  local function scalar(sql) return api.sql(host, sql)[1][1] end

  it("refuses before upgrading: no token, a bad or revoked token, a banned user, another user's id", function()
    local function refused(user_id, token, headers)
      local sock, res = open(host, user_id, token, headers)
      assert.is_nil(sock)
      return res.status, json.decode(res.body).detail
    end
    assert.same({ 401, "Not authenticated" }, { refused(player.id) })
    assert.same({ 401, "토큰이 유효하지 않습니다" }, { refused(player.id, "garbage") })
    assert.same({ 403, "Not allowed to open another user's notifications" }, { refused(admin.id, player.access_token) })
    assert.same({ 403, "Not allowed to open another user's notifications" }, { refused("me", player.access_token) })
    local gone = api.player(host)
    host:request("POST", "/api/auth/logout", nil, gone.headers)
    assert.same({ 401, "세션이 만료되었거나 로그아웃되었습니다" }, { refused(gone.id, gone.access_token) })
    local banned = api.player(host)
    api.ban(host, banned.id)
    assert.same({ 401, "계정이 비활성화되었습니다" }, { refused(banned.id, banned.access_token) })
  end)

  it("accepts the token from the query or as subprotocol 'bearer, <token>', and answers a ping", function()
    local sock = assert(open(host, player.id, player.access_token))
    assert(sock:send('{"type":"ping","n":1}'))
    local pong = assert(next_json(sock))
    assert.equal("pong", pong.type)
    assert.is_true(math.abs(pong.ts - os.time() * 1000) < 60000)
    sock:close()
    local s2, res = open(host, player.id, nil, { ["Sec-WebSocket-Protocol"] = "bearer, " .. player.access_token })
    assert.truthy(s2)
    assert.equal("bearer", res.headers["sec-websocket-protocol"])
    s2:close()
  end)

  -- The close code of the next close frame, or nil, why.
  local function closed_with(sock)
    local code = sock:read_close()
    return code
  end

  it("closes only the sockets of a session that ends: logout, superseded, then a ban closes the rest", function()
    local p = api.player(host) -- session 1 (signup)
    local t2 = assert(api.login(host, p.site_id, api.PASSWORD)).access_token -- session 2
    local s1 = assert(open(host, p.id, p.access_token))
    local s2 = assert(open(host, p.id, t2))
    host:request("POST", "/api/auth/logout", nil, p.headers)
    assert.equal(4401, closed_with(s1))
    assert(s2:send('{"type":"ping"}'))
    assert.equal("pong", assert(next_json(s2)).type) -- the other session's socket stays open
    -- two more logins under MAX_CONCURRENT_SESSIONS=2 supersede session 2
    local t3 = assert(api.login(host, p.site_id, api.PASSWORD)).access_token
    local s3 = assert(open(host, p.id, t3))
    assert(api.login(host, p.site_id, api.PASSWORD))
    assert.equal(4401, closed_with(s2))
    assert(s3:send('{"type":"ping"}'))
    assert.equal("pong", assert(next_json(s3)).type)
    assert.equal(200, host:request("POST", "/api/admin/users/" .. p.id .. "/ban", { reason = "spec" },
      admin.headers).status)
    assert.equal(4401, closed_with(s3))
  end)

  it("closes the user's oldest socket with 4000 beyond WS_MAX_SOCKETS_PER_USER", function()
    local p = api.player(host)
    local socks = {}
    for i = 1, 3 do
      socks[i] = assert(open(host, p.id, p.access_token))
      support.sleep(0.05) -- distinct opening times
    end
    local fourth = assert(open(host, p.id, p.access_token))
    assert.equal(4000, closed_with(socks[1]))
    for _, s in ipairs { socks[2], socks[3], fourth } do
      assert(s:send('{"type":"ping"}'))
      assert.equal("pong", assert(next_json(s)).type)
      s:close()
    end
  end)

  it("delivers a targeted send to every socket of the user, counts them, and keeps the row for the inbox", function()
    local p = api.player(host)
    local a, b = assert(open(host, p.id, p.access_token)), assert(open(host, p.id, p.access_token))
    support.sleep(0.2) -- both sockets counted
    local res = host:request("POST", "/api/admin/notifications/send",
      { user_id = p.id, title = "Hi", body = "Welcome", data = { k = 1 } }, admin.headers)
    assert.equal(200, res.status, res.body)
    assert.same({ true, 2 }, { res.json.success, res.json.delivered })
    for _, sock in ipairs { a, b } do
      local m = assert(next_json(sock))
      assert.same({ "ADMIN_NOTIFICATION", res.json.notification_id, admin.id }, { m.type, m.id, m.meta.by })
      assert.same({ title = "Hi", body = "Welcome", data = { k = 1 } }, m.payload)
      sock:close()
    end
    assert.equal("1", scalar("SELECT count(*) FROM admin_audit WHERE action = 'notification.send' "
      .. "AND target_id = '" .. p.id .. "'"))
    res = host:request("POST", "/api/admin/notifications/send", { title = "x", body = "y" }, admin.headers)
    assert.same({ 400, "user_id is required for targeted send" }, { res.status, res.json.detail })
    res = host:request("POST", "/api/admin/notifications/send", { user_id = 999999, title = "x", body = "y" },
      admin.headers)
    assert.same({ 404, "User not found" }, { res.status, res.json.detail })
  end)

  it("keeps an offline user's notification unread in the inbox until read", function()
    local p = api.player(host)
    local sent = host:request("POST", "/api/admin/notifications/send", { user_id = p.id, title = "T", body = "B" },
      admin.headers).json
    assert.equal(0, sent.delivered)
    local inbox = host:request("GET", "/api/notifications", nil, p.headers).json
    assert.same({ 1, 1 }, { inbox.unread_count, inbox.total })
    assert.same({ "body", "created_at", "data", "id", "is_read", "read_at", "title", "type" }, api.keys(inbox.items[1]))
    local one = host:request("POST", "/api/notifications/" .. sent.notification_id .. "/read", nil, p.headers).json
    local again = host:request("POST", "/api/notifications/" .. sent.notification_id .. "/read", nil, p.headers).json
    assert.same(one, again)
    local other = host:request("POST", "/api/notifications/" .. sent.notification_id .. "/read", nil, player.headers)
    assert.same({ 404, "Notification not found" }, { other.status, other.json.detail })
    host:request("POST", "/api/admin/notifications/send", { user_id = p.id, title = "T2", body = "B" }, admin.headers)
    host:request("POST", "/api/admin/notifications/send", { user_id = p.id, title = "T3", body = "B" }, admin.headers)
    local unread = host:request("GET", "/api/notifications?unread_only=true&limit=1", nil, p.headers).json
    assert.same({ 2, 2, 1, "T3" }, { unread.unread_count, unread.total, #unread.items, unread.items[1].title })
    assert.same({ success = true, updated = 2 }, host:request("POST", "/api/notifications/read-all", nil, p.headers).json)
    assert.equal(0, host:request("GET", "/api/notifications", nil, p.headers).json.unread_count)
  end)

  it("broadcasts to every socket, stores one row without a user, and counts what it reached", function()
    local p, q = api.player(host), api.player(host)
    local a, b = assert(open(host, p.id, p.access_token)), assert(open(host, q.id, q.access_token))
    support.sleep(0.2)
    local res = host:request("POST", "/api/admin/notifications/broadcast",
      { user_id = p.id, title = "All", body = "Everyone" }, admin.headers)
    assert.equal(200, res.status, res.body)
    assert.is_true(res.json.delivered >= 2)
    for _, sock in ipairs { a, b } do
      local m = assert(next_json(sock))
      assert.same({ "ADMIN_BROADCAST", res.json.notification_id }, { m.type, m.id })
      sock:close()
    end
    assert.equal("t", scalar("SELECT user_id IS NULL FROM notifications WHERE id = " .. res.json.notification_id))
    assert.equal(0, host:request("GET", "/api/notifications", nil, p.headers).json.total)
  end)
end)

describe("the event stream", function()
  local host, admin, player, private, redis_port, redis_dir

  setup(function()
    private = redis.private()
    redis_port, redis_dir = private.port, private.dir
    host = support.start { WORKERS = "2", REDIS_HOST = private.env.REDIS_HOST, REDIS_PORT = private.env.REDIS_PORT,
                           OUTBOX_RELAY_INTERVAL_MS = "50" }
    admin = api.player(host)
    api.make_admin(host, admin.id)
    player = api.player(host, 1000)
  end)

  teardown(function()
    if host then host:stop() end
    private.destroy()
  end)

  local function scalar(sql) return api.sql(host, sql)[1][1] end

  local function peek(topic, count)
    return host:request("GET", "/api/admin/stream/peek?topic=" .. topic .. "&count=" .. (count or 20), nil,
      admin.headers)
  end

  it("relays a slot spin's outbox row as exactly one stream entry carrying its outbox id", function()
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, player.headers).json
    local outbox_id = tonumber(scalar("SELECT id FROM outbox_events WHERE event_type = 'game.play' "
      .. "AND (payload->>'play_id')::bigint = " .. spin.play_id))
    assert.truthy(support.wait_for(function()
      return scalar("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL") == "0"
    end, 10))
    local items = peek("game_events", 200).json.items
    local found = 0
    for _, e in ipairs(items) do
      if e.outbox_id == outbox_id then
        found = found + 1
        assert.same({ "game.play", spin.play_id }, { e.event_type, e.payload.play_id })
      end
    end
    assert.equal(1, found)
    assert.equal(#items, #peek("game_events", 200).json.items) -- nothing relayed twice meanwhile
  end)

  it("marks relayed rows on their own page, so the WAL logs only what changed (migration 0012)", function()
    -- Play-sized payloads (a game.play event is about 400 bytes). The relay
    -- marks them in one pass; at fillfactor 100 most new versions would
    -- move to another page, carrying the whole row into the WAL.
    local inserted = api.sql(host, "INSERT INTO outbox_events (topic, event_type, payload) "
      .. "SELECT 'spec_pages', 'spec.page', jsonb_build_object('n', g, 'pad', repeat('x', 380)) "
      .. "FROM generate_series(1, 40) g RETURNING id, (ctid::text::point)[0]")
    assert.equal(40, #inserted)
    assert.truthy(support.wait_for(function()
      return scalar("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL") == "0"
    end, 10))
    local ids, page_of = {}, {}
    for _, r in ipairs(inserted) do
      ids[#ids + 1] = r[1]
      page_of[r[1]] = r[2]
    end
    local now = api.sql(host, "SELECT id, (ctid::text::point)[0], attempts FROM outbox_events WHERE id IN ("
      .. table.concat(ids, ",") .. ")")
    assert.equal(40, #now)
    for _, r in ipairs(now) do
      assert.equal("1", r[3]) -- marked by the relay, once
      assert.equal(page_of[r[1]], r[2], "outbox row " .. r[1] .. " moved to another page")
    end
  end)

  it("relays a pass of rows over several topics in chunks: each row once", function()
    -- 400 rows committed at once: a relay pass takes up to 500, in chunks of
    -- 150, two streams in each. Both workers relay every 50 ms with SKIP
    -- LOCKED, so two passes may share the rows and interleave their XADDs:
    -- the order across passes is not promised (CONTRACT.md §15: at least
    -- once, consumers deduplicate on outbox_id), each row once is.
    api.sql(host, "INSERT INTO outbox_events (topic, event_type, payload) SELECT CASE WHEN g % 2 = 0 "
      .. "THEN 'user_actions' ELSE 'rewards' END, 'spec.bulk', jsonb_build_object('n', g) "
      .. "FROM generate_series(1, 400) g")
    assert.truthy(support.wait_for(function()
      return scalar("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL") == "0"
    end, 10))
    for topic, parity in pairs { user_actions = 0, rewards = 1 } do
      local seen, n_entries = {}, 0
      for n in redis.cli(redis_port, "XRANGE cc:events:" .. topic .. " - +"):gmatch('"n":%s*(%d+)') do
        n = tonumber(n)
        seen[n] = (seen[n] or 0) + 1
        n_entries = n_entries + 1
      end
      assert.equal(200, n_entries)
      for n = 1, 400 do
        if n % 2 == parity then assert.equal(1, seen[n], topic .. " row " .. n) end
      end
    end
  end)

  it("records a player's action, refuses reserved types, and peeks newest first", function()
    local res = host:request("POST", "/api/actions", { action_type = "OPENED_SHOP", action_data = { tab = "gems" } },
      player.headers)
    assert.equal(200, res.status, res.body)
    assert.same({ true, "OPENED_SHOP" }, { res.json.success, res.json.action_type })
    res = host:request("POST", "/api/actions", { action_type = "SLOT_SPIN" }, player.headers)
    assert.same({ 400, "Reserved action_type" }, { res.status, res.json.detail })
    assert.equal(422, host:request("POST", "/api/actions", { action_type = "lower" }, player.headers).status)
    assert.truthy(support.wait_for(function()
      local top = peek("user_actions", 1).json
      return top.items[1] and top.items[1].event_type == "user.action" and top
    end, 10))
    local top = peek("user_actions", 1).json
    assert.same({ "user_actions", "cc:events:user_actions", 1 }, { top.topic, top.stream, top.count })
    assert.equal("OPENED_SHOP", top.items[1].payload.action_type)
    assert.equal(422, peek("nope").status)
  end)

  it("keeps events while Redis is down and relays them when it is back; the peek is a 503 meanwhile", function()
    redis.stop(redis_port)
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, player.headers)
    assert.equal(200, spin.status)
    local res = peek("game_events")
    assert.same({ 503, "Event stream unavailable" }, { res.status, res.json.detail })
    support.sleep(0.5)
    assert.is_true(tonumber(scalar("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL")) >= 1)
    redis.start(redis_port, redis_dir)
    assert.truthy(support.wait_for(function()
      return scalar("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL") == "0"
    end, 15))
    local found = false
    for _, e in ipairs(peek("game_events", 200).json.items) do
      if e.payload.play_id == spin.json.play_id then found = true end
    end
    assert.is_true(found)
  end)
end)

describe("two hosts sharing PostgreSQL and Redis", function()
  local one, two, admin, private, redis_port

  setup(function()
    private = redis.private()
    redis_port = private.port
    local shared = { WORKERS = "1", REDIS_HOST = private.env.REDIS_HOST, REDIS_PORT = private.env.REDIS_PORT,
                     OUTBOX_RELAY_INTERVAL_MS = "20" }
    one = support.start(shared)
    shared.DATABASE_URL = one.env.DATABASE_URL
    two = support.start(shared)
    admin = api.player(one)
    api.make_admin(one, admin.id)
  end)

  teardown(function()
    if two then two:stop() end
    if one then one:stop() end
    private.destroy()
  end)

  it("broadcasts to sockets on both hosts and counts them all", function()
    local p, q = api.player(one), api.player(one)
    local a = assert(open(one, p.id, p.access_token))
    local b = assert(open(two, q.id, q.access_token))
    support.sleep(0.2)
    local res = one:request("POST", "/api/admin/notifications/broadcast", { title = "both", body = "hosts" },
      admin.headers)
    assert.equal(2, res.json.delivered)
    for _, sock in ipairs { a, b } do
      assert.equal(res.json.notification_id, assert(next_json(sock)).id)
      sock:close()
    end
  end)

  it("relays each outbox row once while both hosts relay", function()
    local p = api.player(one)
    for i = 1, 60 do
      local host = i % 2 == 0 and one or two
      assert.equal(200, host:request("POST", "/api/actions", { action_type = "TWO_HOSTS", action_data = { i = i } },
        p.headers).status)
    end
    assert.truthy(support.wait_for(function()
      return api.sql(one, "SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL")[1][1] == "0"
    end, 10))
    local seen, dup = {}, 0
    for _, e in ipairs(one:request("GET", "/api/admin/stream/peek?topic=user_actions&count=200", nil,
      admin.headers).json.items) do
      if e.payload.action_type == "TWO_HOSTS" then
        if seen[e.outbox_id] then dup = dup + 1 end
        seen[e.outbox_id] = true
      end
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.same({ 60, 0 }, { n, dup })
  end)

  it("loses no event when a host is killed between the commit and the relay", function()
    local slow = support.start { WORKERS = "1", REDIS_HOST = "127.0.0.1", REDIS_PORT = tostring(redis_port),
                                 DATABASE_URL = one.env.DATABASE_URL, OUTBOX_RELAY_INTERVAL_MS = "600000" }
    -- The other hosts stop relaying for a while: only the slow one's rows wait.
    two:signal(support.signal.SIGSTOP)
    one:signal(support.signal.SIGSTOP)
    for _, w in ipairs(one:workers()) do support.signal.kill(w, support.signal.SIGSTOP) end
    for _, w in ipairs(two:workers()) do support.signal.kill(w, support.signal.SIGSTOP) end
    local p = api.player(slow)
    local res = slow:request("POST", "/api/actions", { action_type = "BEFORE_KILL" }, p.headers)
    assert.equal(200, res.status)
    slow:kill() -- the whole host, workers included
    assert.equal("1", api.sql(one, "SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL "
      .. "AND payload->>'action_type' = 'BEFORE_KILL'")[1][1])
    for _, w in ipairs(one:workers()) do support.signal.kill(w, support.signal.SIGCONT) end
    for _, w in ipairs(two:workers()) do support.signal.kill(w, support.signal.SIGCONT) end
    one:signal(support.signal.SIGCONT)
    two:signal(support.signal.SIGCONT)
    assert.truthy(support.wait_for(function()
      return api.sql(one, "SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL")[1][1] == "0"
    end, 10))
    local found = false
    for _, e in ipairs(one:request("GET", "/api/admin/stream/peek?topic=user_actions&count=20", nil,
      admin.headers).json.items) do
      if e.payload.user_action_id == res.json.id then found = true end
    end
    os.execute("rm -rf " .. slow.dir)
    assert.is_true(found or false)
  end)
end)

-- A pass takes 500 rows; a timer tick used to make one pass, so a busy
-- host's outbox grew for as long as the load lasted. A host whose timer
-- ticks every 6 s: in 15 s, three ticks could have relayed 1 500 of 2 000
-- rows one pass at a time; one tick drains them all.
describe("the outbox relay under a backlog", function()
  local host, private
  setup(function()
    private = redis.private()
    host = support.start { WORKERS = "1", REDIS_HOST = private.env.REDIS_HOST, REDIS_PORT = private.env.REDIS_PORT,
                           OUTBOX_RELAY_INTERVAL_MS = "6000" }
  end)
  teardown(function()
    if host then host:stop() end
    private.destroy()
  end)

  it("drains a backlog of several passes in one tick of the relay timer", function()
    api.sql(host, "INSERT INTO outbox_events (topic, event_type, payload) SELECT 'rewards', 'spec.backlog', "
      .. "jsonb_build_object('n', g) FROM generate_series(1, 2000) g")
    assert.truthy(support.wait_for(function()
      return api.sql(host, "SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL")[1][1] == "0"
    end, 15), "the backlog was still there after 15 s")
    local entries = 0
    for _ in redis.cli(private.port, "XRANGE cc:events:rewards - +"):gmatch('"n":%s*%d+') do entries = entries + 1 end
    assert.equal(2000, entries)
  end)
end)
