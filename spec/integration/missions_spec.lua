-- missions_spec.lua - missions (CONTRACT.md §12.2, §12.3, §13.5) against a
-- real host, PostgreSQL and Redis: the lists and their shapes, automatic
-- progress from plays and logins (the tenth slot spin completes "슬롯머신
-- 10회", the ninth does not), claims exactly once (also under 20 concurrent
-- claims and with a shared Idempotency-Key), daily and weekly resets and an
-- achievement that never resets (the period clock shifted through the
-- fixture route POST /test/clock), client-reported progress, the admin's
-- CRUD with its errors and audit rows, bad input writing nothing, and
-- balances equal to their ledgers at the end.
--
-- The clock is pinned to a Thursday 12:00 at +09:00 (the default reset rules:
-- 00:00 at +09:00, weeks from Monday), mid-day and mid-week, so the real
-- minutes a run takes never cross a boundary; tests that move it put it back.
local support = require "spec.support.host"
local api = require "spec.support.api"
local http = require "spec.support.http"
local periods = require "lib.periods"

local null = http.json.null
local keys = api.keys
local player = api.player

local DAY = 86400
local RULES = { offset = 9 * 3600, reset = 0, weekday = 1 }
local WEEK = periods.period("weekly", os.time(), RULES) -- this week's Monday 00:00 at +09:00
local PIN = WEEK + 3 * DAY + 12 * 3600                   -- its Thursday 12:00
local TODAY_END, WEEK_END = WEEK + 4 * DAY, WEEK + 7 * DAY -- reset_at of the pinned day and week

local CANNOT_CLAIM = "보상을 받을 수 없습니다"
local NOT_FOUND = "Mission not found"
local SERVER_TRACKED = "Mission progress is tracked by the server"
local CLAIMED = "미션 보상을 성공적으로 수령했습니다!"

local USER_MISSION_KEYS = { "claimed", "claimed_at", "completed", "completed_at", "current_progress", "id", "mission",
  "mission_id", "reset_at", "started_at", "user_id" }
local MISSION_KEYS = { "category", "created_at", "description", "icon", "id", "is_active", "mission_type",
  "requirements", "reset_period", "rewards", "sort_order", "target_type", "target_value", "title", "user_progress" }

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z", t)
end

local function urlencode(s)
  return (s:gsub("[^%w%-_.~]", function(c) return string.format("%%%02X", c:byte()) end))
end

local function assert_detail(res, status, detail)
  assert.equal(status, res.status, res.body)
  assert.same(detail, res.json.detail)
end

describe("missions", function()
  local host, admin

  -- Moves the period clock so that "now" is t (real time flows on from there).
  local function at(t)
    local res = host:request("POST", "/test/clock", { shift_s = t - os.time() })
    assert.equal(200, res.status, res.body)
  end

  local function get(p, which)
    local res = host:request("GET", "/api/events/missions/" .. which, nil, p.headers)
    assert.equal(200, res.status, res.body)
    return res.json
  end

  -- The user's current row of each mission, by mission id (from /all).
  local function rows(p)
    local out = {}
    for _, um in ipairs(get(p, "all")) do out[um.mission_id] = um end
    return out
  end

  local function ids(list, field)
    local out = {}
    for i, x in ipairs(list) do out[i] = x[field or "mission_id"] end
    return out
  end

  local function spin(p, times, game)
    for _ = 1, times or 1 do
      local res = game == "rps"
        and host:request("POST", "/api/games/rps/play", { choice = "rock", bet_amount = 10 }, p.headers)
        or host:request("POST", "/api/games/slot/spin", { bet_amount = 10 }, p.headers)
      assert.equal(200, res.status, res.body)
    end
  end

  local function claim(p, mission_id, headers)
    local h = {}
    for k, v in pairs(p.headers) do h[k] = v end
    for k, v in pairs(headers or {}) do h[k] = v end
    return host:request("POST", "/api/events/missions/claim/" .. mission_id, nil, h)
  end

  -- Logs the player in again (a `login` count); the new session replaces the
  -- old one (MAX_CONCURRENT_SESSIONS 1), so the headers change too.
  local function relogin(p)
    local token = assert(api.login(host, p.site_id))
    p.headers = api.auth(token.access_token)
  end

  local function progress(p, body)
    return host:request("PUT", "/api/events/missions/progress", body, p.headers)
  end

  local function admin_call(method, path, body)
    return host:request(method, "/api/admin/missions" .. path, body, admin.headers)
  end

  -- Counts of everything a mission request may write.
  local function footprint()
    return api.sql(host, "SELECT (SELECT count(*) FROM user_missions), (SELECT coalesce(sum(current_progress), 0) "
      .. "FROM user_missions), (SELECT count(*) FILTER (WHERE claimed) FROM user_missions), "
      .. "(SELECT count(*) FROM wallet_ledger), (SELECT count(*) FROM user_rewards), "
      .. "(SELECT count(*) FROM admin_audit), "
      .. "(SELECT count(*) FROM missions), (SELECT count(*) FROM outbox_events WHERE event_type = 'mission.claimed'), "
      .. "(SELECT md5(string_agg(m::text, ',' ORDER BY id)) FROM missions m)")[1]
  end

  setup(function()
    host = support.start { WORKERS = "2", DB_POOL_SIZE = "8", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
    at(PIN)
    admin = player(host)
    api.make_admin(host, admin.id)
  end)

  teardown(function()
    if host then
      host:request("POST", "/test/clock", { shift_s = 0 })
      host:stop()
    end
  end)

  after_each(function() at(PIN) end)

  describe("lists", function()
    it("list the current daily, weekly and all missions with the §12.2 shapes; signup completed the login", function()
      local p = player(host)
      local daily = get(p, "daily")
      assert.same({ 1, 2, 3 }, ids(daily))
      assert.same({ "일일 로그인", "슬롯머신 10회", "가챠 3회" }, { daily[1].mission.title, daily[2].mission.title,
        daily[3].mission.title })
      local login = daily[1]
      assert.same(USER_MISSION_KEYS, keys(login))
      assert.same(MISSION_KEYS, keys(login.mission))
      assert.same({ p.id, 1, 1, true, false, null, iso(TODAY_END) }, { login.user_id, login.mission_id,
        login.current_progress, login.completed, login.claimed, login.claimed_at, login.reset_at })
      assert.is_string(login.completed_at)
      assert.is_string(login.started_at)
      local slot = daily[2]
      assert.same({ 0, false, null }, { slot.current_progress, slot.completed, slot.completed_at })
      assert.same({
        id = 2, title = "슬롯머신 10회", description = null, mission_type = "daily", category = null, target_value = 10,
        target_type = "play_count", rewards = { tokens = 200 }, requirements = { game_type = "slot" },
        reset_period = "daily", icon = null, is_active = true, sort_order = 2, user_progress = null,
        created_at = slot.mission.created_at,
      }, slot.mission)
      assert.truthy(slot.mission.created_at:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
      local weekly = get(p, "weekly")
      assert.same({ 5 }, ids(weekly))
      assert.same({ "주간 플레이어", 50, iso(WEEK_END) }, { weekly[1].mission.title, weekly[1].mission.target_value,
        weekly[1].reset_at })
      local all = get(p, "all")
      assert.same({ 1, 2, 3, 4, 5 }, ids(all))
      assert.same({ "첫 승리", "achievement", "never", null }, { all[4].mission.title, all[4].mission.mission_type,
        all[4].mission.reset_period, all[4].reset_at })
      assert.same(ids(daily, "id"), { all[1].id, all[2].id, all[3].id })
      -- reads create each row once
      assert.same(ids(all, "id"), ids(get(p, "all"), "id"))
      assert.equal("5", api.sql(host, "SELECT count(*) FROM user_missions WHERE user_id = " .. p.id)[1][1])
    end)

    it("need a token", function()
      for _, which in ipairs { "daily", "weekly", "all" } do
        assert_detail(host:request("GET", "/api/events/missions/" .. which), 403, "Not authenticated")
      end
      assert_detail(host:request("POST", "/api/events/missions/claim/1"), 403, "Not authenticated")
    end)
  end)

  describe("automatic progress", function()
    it("completes 슬롯머신 10회 on the tenth slot spin, not the ninth; other games count only for the weekly", function()
      local p = player(host, 2000)
      spin(p, 9)
      local r = rows(p)
      assert.same({ 9, false, null }, { r[2].current_progress, r[2].completed, r[2].completed_at })
      assert.equal(9, r[5].current_progress)
      spin(p, 1, "rps")
      r = rows(p)
      assert.same({ 9, false, 10 }, { r[2].current_progress, r[2].completed, r[5].current_progress })
      spin(p, 1)
      r = rows(p)
      assert.same({ 10, true }, { r[2].current_progress, r[2].completed })
      assert.is_string(r[2].completed_at)
      spin(p, 2)
      r = rows(p)
      assert.same({ 10, true, 13 }, { r[2].current_progress, r[2].completed, r[5].current_progress })
      assert_detail(claim(p, 5), 400, CANNOT_CLAIM)
      local res = claim(p, 2)
      assert.equal(200, res.status, res.body)
      assert.same({ tokens = 200 }, res.json.rewards)
    end)

    it("leaves a completed mission's row alone: later plays neither write nor lock it", function()
      local p = player(host, 2000)
      spin(p, 10)
      local function row() -- its version and its locker, if any
        return api.sql(host, "SELECT xmin::text, xmax::text, current_progress FROM user_missions WHERE user_id = "
          .. p.id .. " AND mission_id = 2")[1]
      end
      local done = row()
      assert.equal("10", done[3])
      spin(p, 3)
      assert.same(done, row())
      assert.equal(13, rows(p)[5].current_progress)
    end)

    -- Both workers cache the mission definitions (domain/catalogue.lua); a
    -- change made behind the admin routes' back must count from the next
    -- play on.
    it("counts against missions as changed by plain SQL, from the next play on, on every worker", function()
      local p = player(host, 2000)
      spin(p, 4) -- every worker has cached the definitions
      local id = api.sql(host, "INSERT INTO missions (title, mission_type, target_type, target_value, rewards, "
        .. "reset_period, requirements) VALUES ('plain SQL', 'daily', 'play_count', 100, '{}', 'daily', "
        .. "'{\"game_type\": \"slot\"}') RETURNING id")[1][1]
      local function progress_of()
        return tonumber(api.sql(host, "SELECT coalesce(sum(current_progress), 0) FROM user_missions WHERE user_id = "
          .. p.id .. " AND mission_id = " .. id)[1][1])
      end
      spin(p, 4)
      assert.equal(4, progress_of())
      spin(p, 1, "rps") -- not its game
      assert.equal(4, progress_of())
      api.sql(host, "UPDATE missions SET is_active = false WHERE id = " .. id)
      spin(p, 4)
      assert.equal(4, progress_of())
      api.sql(host, "UPDATE missions SET is_active = true WHERE id = " .. id)
      spin(p, 1)
      assert.equal(5, progress_of())
      api.sql(host, "UPDATE missions SET is_active = false WHERE id = " .. id) -- out of the later lists
    end)

    -- Each worker remembers the completed rows it saw commit and sends no
    -- progress statement for them (domain/missions.lua); a row reset or
    -- deleted by hand must count again from the next play (migration 0008).
    it("sends no progress for missions it saw completed, and counts a row reset or deleted by hand again", function()
      local p = player(host, 2000)
      rows(p) -- the rows of every active mission's current period
      api.sql(host, "UPDATE user_missions um SET current_progress = m.target_value, completed = true, "
        .. "completed_at = now() FROM missions m WHERE m.id = um.mission_id AND um.user_id = " .. p.id)
      api.sql(host, "CREATE TABLE spec_progress_statements (n int); "
        .. "CREATE FUNCTION spec_count_progress() RETURNS trigger LANGUAGE plpgsql AS "
        .. "$$ BEGIN INSERT INTO spec_progress_statements VALUES (1); RETURN NULL; END $$; "
        .. "CREATE TRIGGER spec_count_progress BEFORE INSERT ON user_missions "
        .. "FOR EACH STATEMENT EXECUTE FUNCTION spec_count_progress()")
      local function statements()
        return tonumber(api.sql(host, "SELECT count(*) FROM spec_progress_statements")[1][1])
      end
      local function progress_of(mission_id)
        return tonumber(api.sql(host, "SELECT coalesce(sum(current_progress), 0) FROM user_missions WHERE user_id = "
          .. p.id .. " AND mission_id = " .. mission_id .. " AND NOT completed")[1][1])
      end
      -- A worker learns the missions a play counts: a loss counts two, a win
      -- also 첫 승리. So each of the two workers sends at most two statements.
      spin(p, 30)
      assert.is_true(statements() <= 4, "at most two statements per worker, then none: " .. statements())
      api.sql(host, "UPDATE user_missions SET completed = false, completed_at = NULL, current_progress = 0 "
        .. "WHERE mission_id = 2 AND user_id = " .. p.id)
      spin(p, 2)
      assert.equal(2, progress_of(2))
      api.sql(host, "UPDATE user_missions SET current_progress = 10, completed = true WHERE mission_id = 2 "
        .. "AND user_id = " .. p.id)
      spin(p, 4)
      api.sql(host, "DELETE FROM user_missions WHERE mission_id = 2 AND user_id = " .. p.id)
      spin(p, 2)
      assert.equal(2, progress_of(2))
      api.sql(host, "DROP TRIGGER spec_count_progress ON user_missions; DROP FUNCTION spec_count_progress(); "
        .. "DROP TABLE spec_progress_statements")
    end)

    it("counts gacha pulls by pull_count and the request as one play", function()
      local p = player(host, 2000)
      local res = host:request("POST", "/api/games/gacha/pull", { pull_count = 2 }, p.headers)
      assert.equal(200, res.status, res.body)
      local r = rows(p)
      assert.same({ 2, false, 1, 0 }, { r[3].current_progress, r[3].completed, r[5].current_progress,
        r[2].current_progress })
      res = host:request("POST", "/api/games/gacha/pull", { pull_count = 2 }, p.headers)
      assert.equal(200, res.status, res.body)
      r = rows(p)
      assert.same({ 3, true, 2 }, { r[3].current_progress, r[3].completed, r[5].current_progress })
    end)

    it("counts a login", function()
      local p = player(host)
      assert.equal(1, rows(p)[1].current_progress)
      relogin(p)
      assert.same({ 1, true }, { rows(p)[1].current_progress, rows(p)[1].completed }) -- capped at the target
    end)
  end)

  describe("POST /api/events/missions/claim/{mission_id}", function()
    it("credits a completed mission once, with its ledger, reward and outbox rows", function()
      local p = player(host)
      local row_id = rows(p)[1].id
      local res = claim(p, 1)
      assert.equal(200, res.status, res.body)
      assert.same({ success = true, rewards = { tokens = 100 }, message = CLAIMED,
        balances = { tokens = 300, gold = 0, gems = 0, exp = 0 } }, res.json)
      assert.same({ { "tokens", "100", "300", "mission_claim", "mission:" .. row_id } }, api.sql(host,
        "SELECT currency, delta, balance_after, reason, reference FROM wallet_ledger WHERE user_id = " .. p.id
        .. " AND reason = 'mission_claim'"))
      assert.same({ { "TOKEN", "100", "100", "mission:1" } }, api.sql(host, "SELECT reward_type, reward_value, amount, "
        .. "source_description FROM user_rewards WHERE user_id = " .. p.id))
      assert.same({ { "rewards", "1", tostring(row_id) } }, api.sql(host, "SELECT topic, payload->>'mission_id', "
        .. "payload->>'user_mission_id' FROM outbox_events WHERE event_type = 'mission.claimed' "
        .. "AND payload->>'user_id' = '" .. p.id .. "'"))
      local um = rows(p)[1]
      assert.same({ row_id, true, true }, { um.id, um.completed, um.claimed })
      assert.is_string(um.claimed_at)
      local before = footprint()
      assert_detail(claim(p, 1), 400, CANNOT_CLAIM)
      assert_detail(claim(p, 2), 400, CANNOT_CLAIM)      -- not completed
      assert_detail(claim(p, 999), 404, NOT_FOUND)
      local bad = claim(p, 0)
      assert.same({ 422, "path,mission_id" }, { bad.status, table.concat(bad.json.detail[1].loc, ",") })
      assert.same(before, footprint())
    end)

    it("answers one of 20 concurrent claims with 200 and the others with 400", function()
      local p = player(host)
      rows(p)
      local res = http.concurrent(host.port, 20, "POST", "/api/events/missions/claim/1", nil, p.headers)
      local statuses = {}
      for _, r in ipairs(res) do
        statuses[r.status] = (statuses[r.status] or 0) + 1
        if r.status == 400 then assert.equal(CANNOT_CLAIM, r.json.detail) end
      end
      assert.same({ [200] = 1, [400] = 19 }, statuses)
      assert.same({ { "1", "100" } }, api.sql(host, "SELECT count(*), sum(delta) FROM wallet_ledger WHERE user_id = "
        .. p.id .. " AND reason = 'mission_claim'"))
      local um = rows(p)[1]
      assert.same({ true, true }, { um.completed, um.claimed })
      assert.equal(300, host:request("GET", "/api/users/balance", nil, p.headers).json.balances.tokens)
    end)

    it("replays the first 200 for a shared Idempotency-Key, and credits once", function()
      local p = player(host)
      local first = claim(p, 1, { ["Idempotency-Key"] = "claim-login-1" })
      assert.equal(200, first.status, first.body)
      local again = claim(p, 1, { ["Idempotency-Key"] = "claim-login-1" })
      assert.equal(200, again.status, again.body)
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.same(first.json, again.json)
      assert_detail(claim(p, 1), 400, CANNOT_CLAIM)
      assert_detail(claim(p, 1, { ["Idempotency-Key"] = "claim-login-2" }), 400, CANNOT_CLAIM)
      assert.same({ { "1", "claim-login-1" } }, api.sql(host, "SELECT count(*), max(idempotency_key) "
        .. "FROM wallet_ledger WHERE user_id = " .. p.id .. " AND reason = 'mission_claim'"))

      -- 20 at once with one key: one runs, the others replay it or are told it is in progress
      local q = player(host)
      local res = http.concurrent(host.port, 20, "POST", "/api/events/missions/claim/1", nil,
        { Authorization = q.headers.Authorization, ["Idempotency-Key"] = "claim-together" })
      local ok, body = 0, nil
      for _, r in ipairs(res) do
        if r.status == 200 then
          ok = ok + 1
          body = body or r.json
          assert.same(body, r.json)
        else
          assert_detail(r, 409, "A request with this Idempotency-Key is in progress")
        end
      end
      assert.is_true(ok >= 1)
      assert.equal("1", api.sql(host, "SELECT count(*) FROM wallet_ledger WHERE user_id = " .. q.id
        .. " AND reason = 'mission_claim'")[1][1])
    end)
  end)

  describe("periods", function()
    it("reopens a daily mission the next day; the old row is listed nowhere and cannot be claimed", function()
      local p = player(host, 1000)
      spin(p, 3)
      local old = rows(p)
      assert.same({ true, false, 3 }, { old[1].completed, old[1].claimed, old[2].current_progress })

      at(PIN + DAY)
      -- bad input before any read of the new day writes nothing, not even the new rows
      local before = footprint()
      assert_detail(claim(p, 1), 400, CANNOT_CLAIM) -- yesterday's completed row is not claimable
      assert_detail(progress(p, { mission_id = 1, progress_increment = 1 }), 400, SERVER_TRACKED)
      assert_detail(progress(p, { mission_id = 999, progress_increment = 1 }), 404, NOT_FOUND)
      assert.same(before, footprint())

      local now = rows(p)
      for _, m in ipairs { 1, 2, 3 } do
        assert.are_not.equal(old[m].id, now[m].id)
        assert.same({ 0, false, false, null, iso(TODAY_END + DAY) }, { now[m].current_progress, now[m].completed,
          now[m].claimed, now[m].completed_at, now[m].reset_at })
      end
      assert.same({ old[4].id, old[5].id, 3 }, { now[4].id, now[5].id, now[5].current_progress }) -- same week
      for _, which in ipairs { "daily", "weekly", "all" } do
        for _, um in ipairs(get(p, which)) do
          assert.are_not.equal(old[1].id, um.id)
          assert.are_not.equal(old[2].id, um.id)
        end
      end
      assert_detail(claim(p, 1), 400, CANNOT_CLAIM)

      relogin(p)
      local login = rows(p)[1]
      assert.same({ now[1].id, 1, true }, { login.id, login.current_progress, login.completed })
      local res = claim(p, 1)
      assert.equal(200, res.status, res.body)
      assert.same({ { "mission:" .. now[1].id } }, api.sql(host, "SELECT reference FROM wallet_ledger WHERE user_id = "
        .. p.id .. " AND reason = 'mission_claim'"))
      -- yesterday's row is history, unchanged
      assert.same({ { "t", "f", "3" } }, api.sql(host, "SELECT (SELECT completed FROM user_missions WHERE id = "
        .. old[1].id .. "), (SELECT claimed FROM user_missions WHERE id = " .. old[1].id .. "), "
        .. "(SELECT current_progress FROM user_missions WHERE id = " .. old[2].id .. ")"))
      assert.equal("8", api.sql(host, "SELECT count(*) FROM user_missions WHERE user_id = " .. p.id)[1][1])
    end)

    it("reopens the weekly mission the next week, and keeps it through the days of one week", function()
      local p = player(host, 1000)
      spin(p, 4)
      local old = rows(p)[5]
      assert.same({ 4, iso(WEEK_END) }, { old.current_progress, old.reset_at })
      at(PIN + 3 * DAY) -- Sunday, same week
      assert.same({ old.id, 4 }, { rows(p)[5].id, rows(p)[5].current_progress })
      at(PIN + 7 * DAY)
      local now = rows(p)[5]
      assert.are_not.equal(old.id, now.id)
      assert.same({ 0, false, iso(WEEK_END + 7 * DAY) }, { now.current_progress, now.completed, now.reset_at })
      assert.same({ 5 }, ids(get(p, "weekly")))
      spin(p, 1)
      assert.same({ now.id, 1 }, { rows(p)[5].id, rows(p)[5].current_progress })
      assert.equal("4", api.sql(host, "SELECT current_progress FROM user_missions WHERE id = " .. old.id)[1][1])
    end)

    it("never resets an achievement: 첫 승리 stays completed, claimable once, across weeks", function()
      local p = player(host, 3000)
      local won = false
      for _ = 1, 100 do
        local res = host:request("POST", "/api/games/rps/play", { choice = "rock", bet_amount = 10 }, p.headers)
        assert.equal(200, res.status, res.body)
        if res.json.result == "win" then won = true break end
        assert.is_false(rows(p)[4].completed)
      end
      assert.is_true(won)
      local first = rows(p)[4]
      assert.same({ 1, true, null }, { first.current_progress, first.completed, first.reset_at })
      at(PIN + 8 * DAY)
      assert.same({ first.id, true }, { rows(p)[4].id, rows(p)[4].completed })
      at(PIN + 40 * DAY)
      local res = claim(p, 4)
      assert.equal(200, res.status, res.body)
      assert.same({ tokens = 500 }, res.json.rewards)
      at(PIN + 80 * DAY)
      assert.same({ first.id, true }, { rows(p)[4].id, rows(p)[4].claimed })
      assert_detail(claim(p, 4), 400, CANNOT_CLAIM)
    end)
  end)

  describe("PUT /api/events/missions/progress", function()
    it("refuses server-tracked, unknown and malformed reports, writing nothing", function()
      local p = player(host)
      rows(p)
      local before = footprint()
      for m = 1, 5 do
        assert_detail(progress(p, { mission_id = m, progress_increment = 1 }), 400, SERVER_TRACKED)
      end
      assert_detail(progress(p, { mission_id = 999, progress_increment = 1 }), 404, NOT_FOUND)
      for _, body in ipairs {
        { mission_id = 1, progress_increment = 0 }, { mission_id = 1 }, { progress_increment = 1 },
        { mission_id = "x", progress_increment = 1 }, { mission_id = 0, progress_increment = 1 },
      } do
        assert.equal(422, progress(p, body).status)
      end
      local res = progress(p, { mission_id = 1, progress_increment = 0 })
      assert.same({ "body,progress_increment", "greater_than_equal" },
        { table.concat(res.json.detail[1].loc, ","), res.json.detail[1].type })
      assert.same(before, footprint())
    end)

    it("advances a client-tracked mission up to its target, completes it once, and lets it be claimed", function()
      local res = admin_call("POST", "/", { title = "퀴즈 3회 정답", mission_type = "weekly", target_value = 3,
        target_type = "quiz_correct", rewards = { gold = 5, items = { "badge" } } })
      assert.equal(201, res.status, res.body)
      local id = res.json.id
      local p = player(host)
      res = progress(p, { mission_id = id, progress_increment = 2 })
      assert.equal(200, res.status, res.body)
      assert.same({ "completed_missions", "missions", "updated" }, keys(res.json))
      assert.same({ true, 0, 1 }, { res.json.updated, res.json.completed_missions, #res.json.missions })
      local um = res.json.missions[1]
      assert.same(USER_MISSION_KEYS, keys(um))
      assert.same({ id, 2, false, iso(WEEK_END), "quiz_correct" }, { um.mission_id, um.current_progress, um.completed,
        um.reset_at, um.mission.target_type })
      res = progress(p, { mission_id = id, progress_increment = 5 })
      assert.same({ 1, 3, true }, { res.json.completed_missions, res.json.missions[1].current_progress,
        res.json.missions[1].completed })
      res = progress(p, { mission_id = id, progress_increment = 1 })
      assert.same({ 0, 3 }, { res.json.completed_missions, res.json.missions[1].current_progress })
      assert.equal(3, rows(p)[id].current_progress)
      res = claim(p, id)
      assert.equal(200, res.status, res.body)
      assert.same({ gold = 5, items = { "badge" } }, res.json.rewards)
      assert.same({ 200, 5 }, { res.json.balances.tokens, res.json.balances.gold })
      assert.same({ { "gold", "5", "mission_claim" } }, api.sql(host, "SELECT currency, delta, reason "
        .. "FROM wallet_ledger WHERE user_id = " .. p.id .. " AND reason = 'mission_claim'"))

      -- inactive or deleted: not found, and gone from the lists
      local q = player(host)
      assert.equal(200, progress(q, { mission_id = id, progress_increment = 1 }).status)
      assert.equal(200, admin_call("POST", "/" .. id .. "/activate", { is_active = false }).status)
      assert_detail(progress(q, { mission_id = id, progress_increment = 1 }), 404, NOT_FOUND)
      assert.is_nil(rows(q)[id])
      assert.equal(204, admin_call("DELETE", "/" .. id).status)
      assert_detail(progress(q, { mission_id = id, progress_increment = 1 }), 404, NOT_FOUND)
      assert_detail(claim(p, id), 404, NOT_FOUND)
      assert.equal("1", api.sql(host, "SELECT current_progress FROM user_missions WHERE mission_id = " .. id
        .. " AND user_id = " .. q.id)[1][1])
    end)
  end)

  describe("admin", function()
    local tag = api.unique()

    local function create(fields)
      local body = { title = "mission " .. tag, mission_type = "daily", target_value = 1, target_type = "quiz_correct",
        rewards = { tokens = 10 } }
      for k, v in pairs(fields or {}) do body[k] = v end
      local res = admin_call("POST", "/", body)
      assert.equal(201, res.status, res.body)
      return res.json
    end

    local function list(query)
      local res = admin_call("GET", "/?" .. query)
      assert.equal(200, res.status, res.body)
      return res.json
    end

    local function audit(id)
      return api.sql(host, "SELECT action, target_type, admin_id FROM admin_audit WHERE target_type = 'mission' "
        .. "AND target_id = '" .. id .. "' ORDER BY id")
    end

    it("is for admins only", function()
      local p = player(host)
      local routes = { { "GET", "/" }, { "POST", "/" }, { "PUT", "/1" }, { "DELETE", "/1" }, { "POST", "/1/activate" } }
      for _, r in ipairs(routes) do
        assert_detail(host:request(r[1], "/api/admin/missions" .. r[2], r[1] ~= "GET" and {} or nil, p.headers), 403,
          "Admin access required")
      end
    end)

    it("creates a mission (201), audited, and assigns it to players on their next read", function()
      local before = footprint()
      local res = admin_call("POST", "", { title = "일일 퀴즈 " .. tag, description = "퀴즈를 푸세요",
        mission_type = "daily", category = "quiz", target_value = 2, target_type = "quiz_correct",
        rewards = { tokens = 50, exp = 10 }, icon = "quiz.png", sort_order = 9 })
      assert.equal(201, res.status, res.body)
      local m = res.json
      assert.same(MISSION_KEYS, keys(m))
      assert.same({ "일일 퀴즈 " .. tag, "퀴즈를 푸세요", "daily", "quiz", 2, "quiz_correct", { tokens = 50, exp = 10 }, {},
        null, "quiz.png", true, 9, null }, { m.title, m.description, m.mission_type, m.category, m.target_value,
        m.target_type, m.rewards, m.requirements, m.reset_period, m.icon, m.is_active, m.sort_order, m.user_progress })
      assert.same({ { "mission.create", "mission", tostring(admin.id) } }, audit(m.id))
      assert.equal("admin.action", api.sql(host, "SELECT event_type FROM outbox_events WHERE payload->>'action' = "
        .. "'mission.create' AND payload->>'target_id' = '" .. m.id .. "'")[1][1])
      local after = footprint()
      assert.equal(tonumber(before[6]) + 1, tonumber(after[6]))
      local p = player(host)
      local um = rows(p)[m.id]
      assert.same({ 0, iso(TODAY_END) }, { um.current_progress, um.reset_at })
      assert.equal(m.id, get(p, "daily")[#get(p, "daily")].mission_id) -- sort_order 9 after the seeds
      assert.equal(204, admin_call("DELETE", "/" .. m.id).status)
    end)

    it("refuses bad missions with 422, writing nothing", function()
      local before = footprint()
      local cases = {
        { { target_value = 0 }, "body,target_value", "greater_than_equal" },
        { { mission_type = "monthly" }, "body,mission_type", "literal_error" },
        { { reset_period = "monthly" }, "body,reset_period", "literal_error" },
        { { rewards = { tokens = -1 } }, "body,rewards,tokens", "greater_than_equal" },
        { { rewards = { gold = 1.5 } }, "body,rewards,gold", "int_from_float" },
        { { rewards = { gems = "10" } }, "body,rewards,gems", "int_type" },
        { { rewards = { exp = 9007199254740992 } }, "body,rewards,exp", "less_than_equal" },
        { { rewards = "none" }, "body,rewards", "dict_type" },
        { { title = "" }, "body,title", "string_too_short" },
        { { sort_order = 2147483648 }, "body,sort_order", "less_than_equal" },
        { { rewards = { items = { "a\0b" } } }, "body,rewards,items,0", "value_error" }, -- jsonb cannot store NUL
        { { requirements = { game_type = "\0" } }, "body,requirements,game_type", "value_error" },
      }
      for _, c in ipairs(cases) do
        local body = { title = "bad " .. tag, mission_type = "daily", target_value = 1, target_type = "x",
          rewards = { tokens = 1 } }
        for k, v in pairs(c[1]) do body[k] = v end
        local res = admin_call("POST", "/", body)
        assert.equal(422, res.status, res.body)
        assert.same({ c[2], c[3] }, { table.concat(res.json.detail[1].loc, ","), res.json.detail[1].type })
      end
      local res = admin_call("POST", "/", { mission_type = "daily" })
      assert.equal(422, res.status)
      local missing = {}
      for i, item in ipairs(res.json.detail) do missing[i] = item.loc[2] .. ":" .. item.type end
      assert.same({ "title:missing", "target_value:missing", "target_type:missing", "rewards:missing" }, missing)
      local m = create()
      before = footprint()
      assert.equal(422, admin_call("PUT", "/" .. m.id, { rewards = { tokens = -5 } }).status)
      assert.equal(422, admin_call("PUT", "/" .. m.id, { target_value = 0 }).status)
      assert_detail(admin_call("PUT", "/999999", { title = "x" }), 404, NOT_FOUND)
      assert_detail(admin_call("DELETE", "/999999"), 404, NOT_FOUND)
      assert_detail(admin_call("POST", "/999999/activate"), 404, NOT_FOUND)
      assert.same(before, footprint())
    end)

    it("lists with q (%, _ and \\ literal), type, active, include_deleted, limit and offset, in order", function()
      local pct = create { title = "100% 보너스 " .. tag, sort_order = 50 }
      create { title = "100X 보너스 " .. tag, sort_order = 50 }
      local under = create { title = "a_b " .. tag, sort_order = 50 }
      create { title = "axb " .. tag, sort_order = 50 }
      local slash = create { title = "c\\d " .. tag, sort_order = 50 }
      create { title = "cd " .. tag, sort_order = 50 }
      assert.same({ pct.id }, ids(list("q=" .. urlencode("0% 보")), "id"))
      assert.same({ under.id }, ids(list("q=" .. urlencode("a_b")), "id"))
      assert.same({ slash.id }, ids(list("q=" .. urlencode("c\\d")), "id"))
      assert.same({ under.id }, ids(list("q=" .. urlencode("A_B " .. tag)), "id")) -- any case

      local o = "order" .. tag
      local older = create { title = o .. " older", sort_order = 60, mission_type = "weekly" }
      local newer = create { title = o .. " newer", sort_order = 60 }
      local first = create { title = o .. " first", sort_order = 59, mission_type = "achievement" }
      assert.same({ first.id, newer.id, older.id }, ids(list("q=" .. o), "id"))
      assert.same({ newer.id }, ids(list("q=" .. o .. "&limit=1&offset=1"), "id"))
      assert.same({ older.id }, ids(list("q=" .. o .. "&type=weekly"), "id"))
      assert.equal(200, admin_call("POST", "/" .. newer.id .. "/activate", { is_active = false }).status)
      assert.same({ newer.id }, ids(list("q=" .. o .. "&active=false"), "id"))
      assert.same({ first.id, older.id }, ids(list("q=" .. o .. "&active=true"), "id"))
      assert.equal(204, admin_call("DELETE", "/" .. first.id).status)
      assert.same({ newer.id, older.id }, ids(list("q=" .. o), "id"))
      local all = list("q=" .. o .. "&include_deleted=true")
      assert.same({ first.id, newer.id, older.id }, ids(all, "id"))
      assert.is_false(all[1].is_active)
      local seeds = {}
      for _, m in ipairs(list("type=daily&limit=200")) do
        if m.id <= 3 then seeds[#seeds + 1] = m.id end
      end
      assert.same({ 1, 2, 3 }, seeds)
      -- the slash-less root answers the same
      local bare = host:request("GET", "/api/admin/missions?q=" .. o, nil, admin.headers)
      assert.same(list("q=" .. o), bare.json)
      for _, q in ipairs { "limit=0", "limit=201", "offset=-1", "type=monthly", "active=maybe" } do
        assert.equal(422, admin_call("GET", "/?" .. q).status, q)
      end
    end)

    it("updates any subset, clears nullable fields, and audits the change", function()
      local m = create { description = "old", category = "c", icon = "i.png" }
      local res = admin_call("PUT", "/" .. m.id, { title = "renamed " .. tag, target_value = 7, description = null,
        reset_period = "weekly", requirements = { game_type = "slot" }, is_active = false })
      assert.equal(200, res.status, res.body)
      local u = res.json
      assert.same({ "renamed " .. tag, 7, null, "c", "i.png", "weekly", { game_type = "slot" }, false, m.created_at },
        { u.title, u.target_value, u.description, u.category, u.icon, u.reset_period, u.requirements, u.is_active,
          u.created_at })
      assert.same({ { "mission.create", "mission", tostring(admin.id) }, { "mission.update", "mission",
        tostring(admin.id) } }, audit(m.id))
      assert.equal("7", api.sql(host, "SELECT payload->>'target_value' FROM admin_audit WHERE action = "
        .. "'mission.update' AND target_id = '" .. m.id .. "'")[1][1])
      res = admin_call("PUT", "/" .. m.id, {})
      assert.same(u, res.json)
      assert.equal(2, #audit(m.id)) -- nothing changed, nothing audited
    end)

    it("soft-deletes (204): rows kept, hidden from players, later admin calls 404", function()
      local m = create { mission_type = "weekly" }
      local p = player(host)
      local um = rows(p)[m.id]
      assert.truthy(um)
      local res = admin_call("DELETE", "/" .. m.id)
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.same({ { "f", "t" } }, api.sql(host, "SELECT is_active, deleted_at IS NOT NULL FROM missions WHERE id = "
        .. m.id))
      for _, which in ipairs { "daily", "weekly", "all" } do
        for _, x in ipairs(get(p, which)) do assert.are_not.equal(m.id, x.mission_id) end
      end
      assert.equal("1", api.sql(host, "SELECT count(*) FROM user_missions WHERE id = " .. um.id)[1][1])
      local before = footprint()
      assert_detail(admin_call("PUT", "/" .. m.id, { title = "x" }), 404, NOT_FOUND)
      assert_detail(admin_call("DELETE", "/" .. m.id), 404, NOT_FOUND)
      assert_detail(admin_call("POST", "/" .. m.id .. "/activate"), 404, NOT_FOUND)
      assert_detail(claim(p, m.id), 404, NOT_FOUND)
      assert.same(before, footprint())
      assert.same({ "mission.create", "mission.delete" }, ids(audit(m.id), 1))
    end)

    it("activates and deactivates, audited; inactive missions leave the players' lists", function()
      local m = create { mission_type = "achievement" }
      local p = player(host)
      assert.truthy(rows(p)[m.id])
      local res = admin_call("POST", "/" .. m.id .. "/activate", { is_active = false })
      assert.equal(200, res.status, res.body)
      assert.same(MISSION_KEYS, keys(res.json))
      assert.is_false(res.json.is_active)
      assert.is_nil(rows(p)[m.id])
      res = admin_call("POST", "/" .. m.id .. "/activate")
      assert.equal(200, res.status, res.body)
      assert.is_true(res.json.is_active)
      assert.truthy(rows(p)[m.id])
      assert.same({ "mission.create", "mission.activate", "mission.activate" }, ids(audit(m.id), 1))
      assert.same({ { "false" }, { "true" } }, api.sql(host, "SELECT payload->>'is_active' FROM admin_audit "
        .. "WHERE action = 'mission.activate' AND target_id = '" .. m.id .. "' ORDER BY id"))
    end)
  end)

  it("kept every balance equal to the sum of its ledger", function()
    assert.same({}, api.sql(host, "SELECT b.user_id, b.currency, b.balance FROM wallet_balances b "
      .. "WHERE b.balance <> (SELECT coalesce(sum(delta), 0) FROM wallet_ledger l "
      .. "WHERE l.user_id = b.user_id AND l.currency = b.currency)"))
    assert.same({ { "0" } }, api.sql(host, "SELECT count(*) FROM wallet_ledger WHERE reason = 'mission_claim' AND "
      .. "reference NOT IN (SELECT 'mission:' || id FROM user_missions WHERE claimed)"))
  end)
end)
