-- events_spec.lua - events (CONTRACT.md §12.1, §12.3, §13.4) against a real
-- host, PostgreSQL and Redis: the live list and detail, join once, progress
-- merged in one UPDATE with the completion rules, the claim that credits
-- exactly once under concurrency (with and without one Idempotency-Key),
-- progress earned by real plays, and the admin's CRUD, soft delete,
-- participations and force-claim with its X-Idempotency-Key. Bad input gets
-- its 4xx and writes nothing; at the end every balance equals its ledger.
local support = require "spec.support.host"
local http = require "spec.support.http"
local api = require "spec.support.api"

local cjson = http.json
local keys = api.keys

local HOUR, DAY = 3600, 86400

local EVENT_KEYS = { "created_at", "description", "end_date", "event_type", "id", "image_url", "is_active",
  "participation_count", "priority", "requirements", "rewards", "start_date", "title", "user_participation" }
local PARTICIPATION_KEYS = { "claimed_at", "claimed_rewards", "completed", "completed_at", "event", "event_id", "id",
  "joined_at", "progress", "user_id" }
local TIME = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

local CLAIMED = "보상을 성공적으로 수령했습니다!"
local CANNOT_CLAIM = "보상을 받을 수 없습니다"
local NOT_FOUND = "이벤트를 찾을 수 없습니다"
local NOT_ACTIVE = "Event is not active"
local ADMIN_NOT_FOUND = "Event not found"
local DATES = "start_date must be before end_date"
local KEY_REQUIRED = "X-Idempotency-Key header required (8-128 chars)"

-- An ISO-8601 UTC time offset_s seconds from now.
local function iso(offset_s)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + offset_s)
end

local function assert_detail(res, status, detail)
  assert.equal(status, res.status, res.body)
  assert.equal(detail, res.json.detail)
end

local function with(headers, extra)
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

describe("events", function()
  local host, admin, titles = nil, nil, 0

  setup(function()
    host = support.start { WORKERS = "2", DB_POOL_SIZE = "8", ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1" }
    admin = api.player(host)
    api.make_admin(host, admin.id)
  end)
  teardown(function()
    if host then
      host:request("POST", "/test/clock", { shift_s = 0 })
      host:stop()
    end
  end)

  local function sql(q) return api.sql(host, q) end
  local function one(q) return sql(q)[1][1] end

  local function call(who, method, path, body, extra)
    return host:request(method, path, body, with(who.headers, extra))
  end

  -- Creates an event through the admin route (live now, unless over says
  -- otherwise) and returns its Event.
  local function new_event(over)
    titles = titles + 1
    local body = {
      title = "spec event " .. titles, event_type = "special", start_date = iso(-HOUR), end_date = iso(DAY),
      rewards = { tokens = 100, gold = 5, items = { "badge" } }, requirements = { level = 3 },
    }
    for k, v in pairs(over or {}) do body[k] = v end
    local res = call(admin, "POST", "/api/admin/events/", body)
    assert.equal(201, res.status, res.body)
    return res.json
  end

  local function join(p, id) return call(p, "POST", "/api/events/join", { event_id = id }) end
  local function put_progress(p, id, t) return call(p, "PUT", "/api/events/progress/" .. id, { progress = t }) end
  local function claim(p, id, extra) return call(p, "POST", "/api/events/claim/" .. id, nil, extra) end

  local function balances(p)
    return call(p, "GET", "/api/users/balance").json.balances
  end

  local function ledger(p, reason, id)
    return sql("SELECT currency, delta FROM wallet_ledger WHERE user_id = " .. p.id .. " AND reason = '" .. reason
      .. "' AND reference = 'event:" .. id .. "' ORDER BY currency")
  end

  -- What bad input must leave untouched: money, rewards, audit, keys,
  -- participations and events, row for row.
  local function snapshot()
    return one("SELECT (SELECT count(*) FROM wallet_ledger) || '/' || (SELECT count(*) FROM user_rewards) || '/' || "
      .. "(SELECT count(*) FROM admin_audit) || '/' || (SELECT count(*) FROM idempotency_keys) || '/' || "
      .. "(SELECT coalesce(sum(balance), 0) FROM wallet_balances) || '/' || "
      .. "(SELECT md5(coalesce(string_agg(p::text, ',' ORDER BY id), '')) FROM event_participations p) || '/' || "
      .. "(SELECT md5(coalesce(string_agg(e::text, ',' ORDER BY id), '')) FROM events e)")
  end

  local function shift_clock(s)
    assert.equal(200, host:request("POST", "/test/clock", { shift_s = s }).status)
  end

  describe("player routes (§12.1)", function()
    it("lists live events by priority then id, with real counts and the caller's participation", function()
      local high = new_event { priority = 500 }
      local low = new_event { priority = 500 }
      local ended = new_event { start_date = iso(-2 * DAY), end_date = iso(-DAY) }
      local future = new_event { start_date = iso(DAY), end_date = iso(2 * DAY) }
      local inactive = new_event()
      assert.equal(200, call(admin, "POST", "/api/admin/events/" .. inactive.id .. "/deactivate").status)
      local deleted = new_event()
      assert.equal(204, call(admin, "DELETE", "/api/admin/events/" .. deleted.id).status)

      local p, q = api.player(host), api.player(host)
      assert.equal(200, join(p, high.id).status)
      assert.equal(200, join(q, high.id).status)
      local res = call(p, "GET", "/api/events/")
      assert.equal(200, res.status, res.body)
      local seen, last = {}, nil
      for _, e in ipairs(res.json) do
        assert.same(EVENT_KEYS, keys(e))
        seen[e.id] = e
        if last then
          assert.is_true(last.priority > e.priority or last.priority == e.priority and last.id < e.id)
        end
        last = e
      end
      for _, id in ipairs { 1, 2, 3, high.id, low.id } do assert.truthy(seen[id], "live event " .. id) end
      for _, e in ipairs { ended, future, inactive, deleted } do assert.is_nil(seen[e.id]) end
      assert.equal(high.id, res.json[1].id)
      assert.equal(low.id, res.json[2].id)
      assert.equal(2, seen[high.id].participation_count)
      assert.same({ joined = true, progress = {}, completed = false, claimed = false },
        seen[high.id].user_participation)
      assert.equal(cjson.null, seen[low.id].user_participation)
      assert.equal(0, seen[low.id].participation_count)
      assert.same({ tokens = 1000, items = { "starter_pack" } }, seen[1].rewards)
      assert.same({ new_user = true }, seen[1].requirements)
      assert.equal(cjson.null, seen[1].description)
      assert.matches(TIME, seen[1].start_date)
      -- the root answers without its slash too
      assert.same(res.json, call(p, "GET", "/api/events").json)
    end)

    it("shows an event, also inactive or ended; unknown and deleted ones are 404", function()
      local p = api.player(host)
      local ended = new_event { start_date = iso(-2 * DAY), end_date = iso(-DAY), description = "gone" }
      local res = call(p, "GET", "/api/events/" .. ended.id)
      assert.equal(200, res.status, res.body)
      assert.same(EVENT_KEYS, keys(res.json))
      assert.equal("gone", res.json.description)
      local inactive = new_event()
      call(admin, "POST", "/api/admin/events/" .. inactive.id .. "/deactivate")
      res = call(p, "GET", "/api/events/" .. inactive.id)
      assert.equal(200, res.status)
      assert.is_false(res.json.is_active)
      assert_detail(call(p, "GET", "/api/events/999999"), 404, NOT_FOUND)
      call(admin, "DELETE", "/api/admin/events/" .. inactive.id)
      assert_detail(call(p, "GET", "/api/events/" .. inactive.id), 404, NOT_FOUND)
      local typed = call(p, "GET", "/api/events/abc")
      assert.equal(422, typed.status)
      assert.same({ "path", "event_id" }, typed.json.detail[1].loc)
      -- the missions' literal paths are not event ids
      assert.are_not.equal(422, call(p, "GET", "/api/events/missions/daily").status)
    end)

    it("joins a live event once: joining again returns the same participation unchanged", function()
      local p = api.player(host)
      local e = new_event()
      local first = join(p, e.id)
      assert.equal(200, first.status, first.body)
      assert.same(PARTICIPATION_KEYS, keys(first.json))
      assert.same({}, first.json.progress)
      assert.is_false(first.json.completed)
      assert.is_false(first.json.claimed_rewards)
      assert.equal(cjson.null, first.json.completed_at)
      assert.equal(cjson.null, first.json.claimed_at)
      assert.matches(TIME, first.json.joined_at)
      assert.equal(p.id, first.json.user_id)
      assert.equal(e.id, first.json.event_id)
      assert.same(EVENT_KEYS, keys(first.json.event))
      assert.equal(1, first.json.event.participation_count)
      assert.equal(200, put_progress(p, e.id, { level = 1 }).status)
      local again = join(p, e.id)
      assert.equal(200, again.status)
      assert.equal(first.json.id, again.json.id)
      assert.equal(first.json.joined_at, again.json.joined_at)
      assert.same({ level = 1 }, again.json.progress)
      assert.equal("1", one("SELECT count(*) FROM event_participations WHERE user_id = " .. p.id
        .. " AND event_id = " .. e.id))
      -- concurrent joins meet on one row
      local q = api.player(host)
      local res = http.concurrent(host.port, 10, "POST", "/api/events/join", { event_id = e.id }, q.headers)
      for _, r in ipairs(res) do
        assert.equal(200, r.status, r.body)
        assert.equal(res[1].json.id, r.json.id)
      end
    end)

    it("refuses to join an unknown (404) or not live (400) event", function()
      local p = api.player(host)
      assert_detail(join(p, 999999), 404, NOT_FOUND)
      local ended = new_event { start_date = iso(-2 * DAY), end_date = iso(-DAY) }
      local future = new_event { start_date = iso(DAY), end_date = iso(2 * DAY) }
      local inactive = new_event()
      call(admin, "POST", "/api/admin/events/" .. inactive.id .. "/deactivate")
      for _, e in ipairs { ended, future, inactive } do
        assert_detail(join(p, e.id), 400, NOT_ACTIVE)
        assert_detail(put_progress(p, e.id, { level = 1 }), 400, NOT_ACTIVE)
      end
      assert.equal("0", one("SELECT count(*) FROM event_participations WHERE user_id = " .. p.id))
    end)

    it("merges progress in one update: every update persists and each merge is visible", function()
      local p = api.player(host)
      local e = new_event { requirements = { level = 3 } }
      local res = put_progress(p, e.id, { a = 1 }) -- joins on the way
      assert.equal(200, res.status, res.body)
      assert.same(PARTICIPATION_KEYS, keys(res.json))
      assert.same({ a = 1 }, res.json.progress)
      res = put_progress(p, e.id, { b = { nested = true } })
      assert.same({ a = 1, b = { nested = true } }, res.json.progress)
      res = put_progress(p, e.id, { a = "x", play_count = 99, win_count = 9, gacha_pull = 9, login = 9,
                                    spend_tokens = 9 })
      assert.same({ a = "x", b = { nested = true } }, res.json.progress)
      assert.same(res.json.progress, cjson.decode(one("SELECT progress FROM event_participations WHERE user_id = "
        .. p.id .. " AND event_id = " .. e.id)))
      -- concurrent updates of different keys all persist
      local all = http.concurrent(host.port, 12, "PUT", "/api/events/progress/" .. e.id,
        function(i) return { progress = { ["k" .. i] = i } } end, p.headers)
      for _, r in ipairs(all) do assert.equal(200, r.status, r.body) end
      local stored = cjson.decode(one("SELECT progress FROM event_participations WHERE user_id = " .. p.id
        .. " AND event_id = " .. e.id))
      for i = 1, 12 do assert.equal(i, stored["k" .. i]) end
      assert.equal("x", stored.a)
    end)

    it("completes by the comparison rules, once, and never reverts", function()
      local p = api.player(host)
      local e = new_event { requirements = { level = 3, vip = true, rank = "가", score = 1 } }
      local res = put_progress(p, e.id, { level = 2.5, vip = true, rank = "나", score = true })
      assert.is_false(res.json.completed)
      assert.equal(cjson.null, res.json.completed_at)
      res = put_progress(p, e.id, { level = 3, rank = "z" }) -- "z" (U+007A) is below "가" (U+AC00)
      assert.is_false(res.json.completed)
      res = put_progress(p, e.id, { rank = "가" })
      assert.is_true(res.json.completed)
      assert.matches(TIME, res.json.completed_at)
      assert.same({ joined = true, progress = res.json.progress, completed = true, claimed = false },
        res.json.event.user_participation)
      local done_at = res.json.completed_at
      res = put_progress(p, e.id, { level = 0 })
      assert.is_true(res.json.completed)
      assert.equal(done_at, res.json.completed_at)
      -- empty requirements complete at the first update
      local free = new_event { requirements = {} }
      res = put_progress(p, free.id, {})
      assert.equal(200, res.status, res.body)
      assert.is_true(res.json.completed)
    end)

    it("refuses an incomparable progress value with 400 naming the key, writing nothing", function()
      local p = api.player(host)
      local e = new_event { requirements = { level = 3, title = "b" } }
      local before = snapshot()
      for _, bad in ipairs { { level = "high" }, { level = { 3 } }, { level = cjson.null }, { title = 2 },
                             { level = { x = 1 } } } do
        local key = next(bad)
        assert_detail(put_progress(p, e.id, bad), 400, "Invalid progress value for '" .. key .. "'")
      end
      assert.equal(before, snapshot()) -- not even the participation of the auto-join
      assert.equal(200, put_progress(p, e.id, { level = 1 }).status)
      before = snapshot()
      assert_detail(put_progress(p, e.id, { level = "x" }), 400, "Invalid progress value for 'level'")
      local nul = call(p, "PUT", "/api/events/progress/" .. e.id, '{"progress":{"a":["ok","x\\u0000"]}}')
      assert.equal(422, nul.status, nul.body)
      assert.same({ "body", "progress", "a", 1 }, nul.json.detail[1].loc)
      local not_object = put_progress(p, e.id, { 1, 2 })
      assert.equal(422, not_object.status)
      assert.same({ "body", "progress" }, not_object.json.detail[1].loc)
      assert.equal(before, snapshot())
      assert.same({ level = 1 }, cjson.decode(one("SELECT progress FROM event_participations WHERE user_id = "
        .. p.id .. " AND event_id = " .. e.id)))
    end)
  end)

  describe("claim (§12.1)", function()
    it("credits a completed event once: balances, ledger, user_rewards and outbox", function()
      local p = api.player(host)
      local e = new_event()
      assert_detail(claim(p, e.id), 400, CANNOT_CLAIM) -- no participation
      assert.equal(200, join(p, e.id).status)
      assert_detail(claim(p, e.id), 400, CANNOT_CLAIM) -- not completed
      assert_detail(claim(p, 999999), 404, NOT_FOUND)
      assert.is_true(put_progress(p, e.id, { level = 3 }).json.completed)
      local before = balances(p)
      local res = claim(p, e.id)
      assert.equal(200, res.status, res.body)
      assert.same({ "balances", "message", "rewards", "success" }, keys(res.json))
      assert.is_true(res.json.success)
      assert.equal(CLAIMED, res.json.message)
      assert.same({ tokens = 100, gold = 5, items = { "badge" } }, res.json.rewards)
      assert.equal(before.tokens + 100, res.json.balances.tokens)
      assert.equal(before.gold + 5, res.json.balances.gold)
      assert.same(res.json.balances, balances(p))
      assert.same({ { "gold", "5" }, { "tokens", "100" } }, ledger(p, "event_claim", e.id))
      assert.same({ { "GOLD", "5" }, { "TOKEN", "100" } }, sql("SELECT reward_type, amount FROM user_rewards "
        .. "WHERE user_id = " .. p.id .. " AND source_description = 'event:" .. e.id .. "' ORDER BY reward_type"))
      assert.equal("1", one("SELECT count(*) FROM outbox_events WHERE topic = 'rewards' AND event_type = "
        .. "'event.claimed' AND payload->>'user_id' = '" .. p.id .. "' AND payload->>'event_id' = '" .. e.id .. "'"))
      local detail = call(p, "GET", "/api/events/" .. e.id).json
      assert.is_true(detail.user_participation.claimed)
      assert_detail(claim(p, e.id), 400, CANNOT_CLAIM)
      assert.same(res.json.balances, balances(p))
    end)

    it("lets a completed participant claim after the event ended or was deactivated, not once deleted", function()
      local p = api.player(host)
      local ended, inactive, deleted = new_event(), new_event(), new_event()
      for _, e in ipairs { ended, inactive, deleted } do
        assert.is_true(put_progress(p, e.id, { level = 3 }).json.completed)
      end
      call(admin, "POST", "/api/admin/events/" .. inactive.id .. "/deactivate")
      call(admin, "DELETE", "/api/admin/events/" .. deleted.id)
      assert.equal(200, claim(p, inactive.id).status)
      assert_detail(claim(p, deleted.id), 404, NOT_FOUND)
      shift_clock(2 * DAY) -- every event created above has ended
      assert.equal(200, claim(p, ended.id).status)
      local fresh = api.player(host)
      assert_detail(join(fresh, ended.id), 400, NOT_ACTIVE)
      shift_clock(0)
      assert.equal(200, join(fresh, ended.id).status)
    end)

    it("answers 20 concurrent claims with one 200 and 19 refusals, crediting once", function()
      local p = api.player(host)
      local e = new_event()
      assert.is_true(put_progress(p, e.id, { level = 3 }).json.completed)
      local before = balances(p)
      local res = http.concurrent(host.port, 20, "POST", "/api/events/claim/" .. e.id, nil, p.headers)
      local ok = 0
      for _, r in ipairs(res) do
        if r.status == 200 then
          ok = ok + 1
        else
          assert_detail(r, 400, CANNOT_CLAIM)
        end
      end
      assert.equal(1, ok)
      assert.same({ { "gold", "5" }, { "tokens", "100" } }, ledger(p, "event_claim", e.id))
      local after = balances(p)
      assert.equal(before.tokens + 100, after.tokens)
      assert.equal(before.gold + 5, after.gold)
    end)

    it("answers 20 concurrent claims with one Idempotency-Key with the first 200, replays or 'in progress'", function()
      local p = api.player(host)
      local e = new_event()
      assert.is_true(put_progress(p, e.id, { level = 3 }).json.completed)
      local before = balances(p)
      local key = { ["Idempotency-Key"] = "claim-" .. api.unique() }
      local res = http.concurrent(host.port, 20, "POST", "/api/events/claim/" .. e.id, nil, with(p.headers, key))
      local first
      for _, r in ipairs(res) do
        if r.status == 200 then
          first = first or r.json
          assert.same(first, r.json)
        else
          assert_detail(r, 409, "A request with this Idempotency-Key is in progress")
        end
      end
      assert.truthy(first)
      local replay = claim(p, e.id, key)
      assert.equal(200, replay.status)
      assert.equal("true", replay.headers["idempotent-replayed"])
      assert.same(first, replay.json)
      assert.same({ { "gold", "5" }, { "tokens", "100" } }, ledger(p, "event_claim", e.id))
      local after = balances(p)
      assert.equal(before.tokens + 100, after.tokens)
      assert.equal(before.gold + 5, after.gold)
      -- a new key is a new request: refused, nothing moves
      assert_detail(claim(p, e.id, { ["Idempotency-Key"] = "claim-" .. api.unique() }), 400, CANNOT_CLAIM)
      assert.same(after, balances(p))
    end)
  end)

  describe("progress from play (§12.3)", function()
    it("counts real plays into joined live events whose requirements hold the key", function()
      local p = api.player(host, 1000)
      local plays = new_event { requirements = { play_count = 2 }, rewards = { tokens = 7 } }
      local rps_only = new_event { requirements = { play_count = 1, game_type = "rps" } }
      local spend = new_event { requirements = { spend_tokens = 1000 } }
      local not_joined = new_event { requirements = { play_count = 1 } }
      local ends = new_event { requirements = { play_count = 5 }, end_date = iso(2 * HOUR) }
      for _, e in ipairs { plays, rps_only, spend, ends } do assert.equal(200, join(p, e.id).status) end
      local function progress_of(e)
        return call(p, "GET", "/api/events/" .. e.id).json.user_participation
      end
      local spin = call(p, "POST", "/api/games/slot/spin", { bet_amount = 10 })
      assert.equal(200, spin.status, spin.body)
      assert.same({ play_count = 1 }, progress_of(plays).progress)
      assert.is_false(progress_of(plays).completed)
      assert.same({}, progress_of(rps_only).progress) -- a slot spin is not an RPS play
      assert.same({ spend_tokens = 10 }, progress_of(spend).progress)
      assert.equal(cjson.null, call(p, "GET", "/api/events/" .. not_joined.id).json.user_participation)
      shift_clock(3 * HOUR) -- `ends` is over, the others still run
      assert.equal(200, call(p, "POST", "/api/games/slot/spin", { bet_amount = 10 }).status)
      shift_clock(0)
      assert.same({ play_count = 1 }, progress_of(ends).progress)
      local done = progress_of(plays)
      assert.same({ play_count = 2 }, done.progress)
      assert.is_true(done.completed)
      assert.equal(200, claim(p, plays.id).status)
      local rps = call(p, "POST", "/api/games/rps/play", { choice = "rock", bet_amount = 10 })
      assert.equal(200, rps.status, rps.body)
      assert.is_true(progress_of(rps_only).completed)
      -- the client cannot move a server-tracked key
      put_progress(p, spend.id, { spend_tokens = 5000 })
      assert.same({ spend_tokens = 30 }, progress_of(spend).progress)
    end)

    -- Both workers cache the event definitions (domain/catalogue.lua); a
    -- change made behind the routes' back must count from the next play on.
    it("counts against events as changed by plain SQL, from the next play on, on every worker", function()
      local p = api.player(host, 1000)
      local e = new_event { requirements = { level = 3 } }
      assert.equal(200, join(p, e.id).status)
      local function spins(n)
        for _ = 1, n do assert.equal(200, call(p, "POST", "/api/games/slot/spin", { bet_amount = 10 }).status) end
        return call(p, "GET", "/api/events/" .. e.id).json.user_participation.progress
      end
      assert.same({}, spins(4)) -- no key of a play: nothing counted (and every worker has cached the event)
      sql("UPDATE events SET requirements = '{\"play_count\": 50}' WHERE id = " .. e.id)
      assert.same({ play_count = 4 }, spins(4))
      sql("UPDATE events SET is_active = false WHERE id = " .. e.id)
      assert.same({ play_count = 4 }, spins(4))
      sql("UPDATE events SET is_active = true WHERE id = " .. e.id)
      assert.same({ play_count = 5 }, spins(1))
    end)
  end)

  describe("admin (§13.4)", function()
    it("creates an active event (201) with dates in UTC, audited", function()
      local res = call(admin, "POST", "/api/admin/events/", {
        title = "Launch", event_type = "weekly", start_date = "2030-01-01T09:00:00+09:00", end_date = "2030-01-08",
        rewards = { gems = 3, multiplier = 1.5 },
      })
      assert.equal(201, res.status, res.body)
      local e = res.json
      assert.same(EVENT_KEYS, keys(e))
      assert.same({ "Launch", "weekly", "2030-01-01T00:00:00.000Z", "2030-01-08T00:00:00.000Z", true, 0 },
        { e.title, e.event_type, e.start_date, e.end_date, e.is_active, e.priority })
      assert.same({ gems = 3, multiplier = 1.5 }, e.rewards)
      assert.same({}, e.requirements)
      assert.truthy(res.body:find('"requirements":{}', 1, true))
      assert.equal(cjson.null, e.image_url)
      assert.equal(0, e.participation_count)
      assert.same({ { "event.create", tostring(admin.id) } }, sql("SELECT action, admin_id FROM admin_audit "
        .. "WHERE target_type = 'event' AND target_id = '" .. e.id .. "'"))
    end)

    it("refuses start >= end (400), a bad currency reward or date (422), writing nothing", function()
      local before = snapshot()
      local base = { title = "bad", event_type = "daily", start_date = iso(DAY), end_date = iso(DAY),
                     rewards = { tokens = 1 } }
      local function create(over)
        local body = {}
        for k, v in pairs(base) do body[k] = v end
        for k, v in pairs(over) do body[k] = v end
        return call(admin, "POST", "/api/admin/events/", body)
      end
      assert_detail(create {}, 400, DATES)
      assert_detail(create { end_date = iso(-DAY) }, 400, DATES)
      for _, bad in ipairs { { tokens = -1 }, { gold = 1.5 }, { gems = "100" }, { exp = { 1 } }, { tokens = 1e300 } } do
        local res = create { end_date = iso(2 * DAY), rewards = bad }
        assert.equal(422, res.status, res.body)
        assert.same({ "body", "rewards", (next(bad)) }, res.json.detail[1].loc)
      end
      local res = create { start_date = "2025-02-30", end_date = "yesterday" }
      assert.equal(422, res.status)
      assert.same({ "body", "start_date" }, res.json.detail[1].loc)
      assert.same({ "body", "end_date" }, res.json.detail[2].loc)
      res = create { end_date = iso(2 * DAY), requirements = { a = { "x\0" } } }
      assert.equal(422, res.status)
      assert.same({ "body", "requirements", "a", 0 }, res.json.detail[1].loc)
      for _, over in ipairs { { event_type = "monthly" }, { rewards = { 1 } }, { priority = 2 ^ 31 },
                              { title = string.rep("t", 201) } } do
        assert.equal(422, create(over).status)
      end
      assert.equal(before, snapshot())
    end)

    it("updates any subset against the merged row, audited; bad input writes nothing", function()
      local e = new_event { description = "old", image_url = "http://x/y.png" }
      local res = call(admin, "PUT", "/api/admin/events/" .. e.id, { title = "renamed", description = cjson.null,
        priority = 7, is_active = false, requirements = { level = 1 } })
      assert.equal(200, res.status, res.body)
      assert.same({ "renamed", cjson.null, "http://x/y.png", 7, false, e.start_date, e.end_date },
        { res.json.title, res.json.description, res.json.image_url, res.json.priority, res.json.is_active,
          res.json.start_date, res.json.end_date })
      assert.same({ level = 1 }, res.json.requirements)
      assert.same(e.rewards, res.json.rewards)
      assert.equal("1", one("SELECT count(*) FROM admin_audit WHERE action = 'event.update' AND target_id = '"
        .. e.id .. "'"))
      local before = snapshot()
      assert_detail(call(admin, "PUT", "/api/admin/events/" .. e.id, { start_date = iso(2 * DAY) }), 400, DATES)
      assert_detail(call(admin, "PUT", "/api/admin/events/" .. e.id, { end_date = iso(-2 * HOUR) }), 400, DATES)
      local bad = call(admin, "PUT", "/api/admin/events/" .. e.id, { rewards = { tokens = -5 } })
      assert.equal(422, bad.status)
      assert.same({ "body", "rewards", "tokens" }, bad.json.detail[1].loc)
      assert.equal(422, call(admin, "PUT", "/api/admin/events/" .. e.id, { title = cjson.null }).status)
      assert_detail(call(admin, "PUT", "/api/admin/events/999999", { title = "x" }), 404, ADMIN_NOT_FOUND)
      assert.equal(before, snapshot())
      res = call(admin, "PUT", "/api/admin/events/" .. e.id, { start_date = iso(-DAY), end_date = iso(3 * DAY) })
      assert.equal(200, res.status, res.body)
    end)

    it("publishes and deactivates, audited", function()
      local e = new_event()
      local res = call(admin, "POST", "/api/admin/events/" .. e.id .. "/deactivate")
      assert.equal(200, res.status)
      assert.is_false(res.json.is_active)
      res = call(admin, "POST", "/api/admin/events/" .. e.id .. "/publish")
      assert.equal(200, res.status, res.body)
      assert.is_true(res.json.is_active)
      res = call(admin, "POST", "/api/admin/events/" .. e.id .. "/publish", { is_active = false })
      assert.is_false(res.json.is_active)
      assert.same({ { "event.deactivate" }, { "event.publish" }, { "event.publish" } },
        sql("SELECT action FROM admin_audit WHERE target_id = '" .. e.id .. "' AND action <> 'event.create' "
          .. "ORDER BY id"))
    end)

    it("lists with q (literal), active, include_deleted, limit and offset; priority then newest first", function()
      local tag = "q" .. api.unique()
      local a = new_event { title = tag .. " 100% fun", priority = -5 }
      local b = new_event { title = tag .. " under_score", priority = -5 }
      local c = new_event { title = string.upper(tag) .. " back\\slash", priority = 9 }
      call(admin, "POST", "/api/admin/events/" .. b.id .. "/deactivate")
      local function list(query)
        local res = call(admin, "GET", "/api/admin/events/?" .. query)
        assert.equal(200, res.status, res.body)
        local ids = {}
        for i, e in ipairs(res.json) do ids[i] = e.id end
        return ids
      end
      assert.same({ c.id, b.id, a.id }, list("q=" .. tag))
      assert.same({ a.id }, list("q=" .. tag .. "%20100%25"))
      assert.same({}, list("q=" .. tag .. "%20under%25"))
      assert.same({ b.id }, list("q=" .. tag .. "%20under_"))
      assert.same({}, list("q=" .. tag .. "%20un_er"))
      assert.same({ c.id }, list("q=back%5Cslash"))
      assert.same({ c.id, a.id }, list("q=" .. tag .. "&active=true"))
      assert.same({ b.id }, list("q=" .. tag .. "&active=false"))
      assert.same({ b.id }, list("q=" .. tag .. "&limit=1&offset=1"))
      call(admin, "DELETE", "/api/admin/events/" .. a.id)
      assert.same({ c.id, b.id }, list("q=" .. tag))
      assert.same({ c.id, b.id, a.id }, list("q=" .. tag .. "&include_deleted=true"))
      assert.equal(422, call(admin, "GET", "/api/admin/events/?limit=201").status)
      assert.equal(200, call(admin, "GET", "/api/admin/events").status)
      local player = api.player(host)
      assert_detail(call(player, "GET", "/api/admin/events/"), 403, "Admin access required")
    end)

    it("soft-deletes (204): participations stay, then 404 everywhere", function()
      local p = api.player(host)
      local e = new_event()
      assert.is_true(put_progress(p, e.id, { level = 3 }).json.completed)
      local res = call(admin, "DELETE", "/api/admin/events/" .. e.id)
      assert.equal(204, res.status)
      assert.equal("", res.body)
      assert.same({ { "f", "t" } }, sql("SELECT is_active, deleted_at IS NOT NULL FROM events WHERE id = " .. e.id))
      assert.equal("1", one("SELECT count(*) FROM event_participations WHERE event_id = " .. e.id))
      local path = "/api/admin/events/" .. e.id
      for _, r in ipairs {
        { "DELETE", path }, { "PUT", path, { title = "x" } }, { "POST", path .. "/publish" },
        { "POST", path .. "/deactivate" }, { "GET", path .. "/participations" },
        { "POST", path .. "/force-claim/" .. p.id, nil, { ["X-Idempotency-Key"] = "deleted-" .. api.unique() } },
      } do
        assert_detail(call(admin, r[1], r[2], r[3], r[4]), 404, ADMIN_NOT_FOUND)
      end
      assert_detail(call(p, "GET", "/api/events/" .. e.id), 404, NOT_FOUND)
      assert_detail(join(p, e.id), 404, NOT_FOUND)
      assert_detail(put_progress(p, e.id, { level = 4 }), 404, NOT_FOUND)
      assert_detail(claim(p, e.id), 404, NOT_FOUND)
      assert.equal("1", one("SELECT count(*) FROM admin_audit WHERE action = 'event.delete' AND target_id = '"
        .. e.id .. "'"))
    end)

    it("lists participations newest first with filters and a total", function()
      local e = new_event()
      local p1, p2, p3 = api.player(host), api.player(host), api.player(host)
      join(p1, e.id)
      put_progress(p2, e.id, { level = 3 })
      put_progress(p3, e.id, { level = 3 })
      assert.equal(200, claim(p3, e.id).status)
      local function list(query)
        local res = call(admin, "GET", "/api/admin/events/" .. e.id .. "/participations" .. query)
        assert.equal(200, res.status, res.body)
        local users = {}
        for i, item in ipairs(res.json.items) do users[i] = item.user_id end
        return users, res.json
      end
      local users, body = list("")
      assert.same({ p3.id, p2.id, p1.id }, users)
      assert.equal(3, body.total)
      local without_event = {}
      for _, k in ipairs(PARTICIPATION_KEYS) do if k ~= "event" then without_event[#without_event + 1] = k end end
      assert.same(without_event, keys(body.items[1]))
      assert.same({ p3.id, p2.id }, list("?completed=true"))
      assert.same({ p1.id }, list("?completed=false"))
      assert.same({ p3.id }, list("?claimed=true"))
      assert.same({ p2.id }, list("?completed=true&claimed=false"))
      users, body = list("?limit=1&offset=1")
      assert.same({ p2.id }, users)
      assert.equal(3, body.total)
      assert_detail(call(admin, "GET", "/api/admin/events/999999/participations"), 404, ADMIN_NOT_FOUND)
    end)

    it("force-claims once per key: replay returns the snapshot, a new key 'already claimed'", function()
      local p = api.player(host)
      local e = new_event { rewards = { tokens = 40, exp = 8, items = { "x" } } }
      local path = "/api/admin/events/" .. e.id .. "/force-claim/" .. p.id
      local before = snapshot()
      assert_detail(call(admin, "POST", path), 400, KEY_REQUIRED)
      assert_detail(call(admin, "POST", path, nil, { ["X-Idempotency-Key"] = "short" }), 400, KEY_REQUIRED)
      assert_detail(call(admin, "POST", path, nil, { ["X-Idempotency-Key"] = string.rep("k", 129) }), 400,
        KEY_REQUIRED)
      assert_detail(call(admin, "POST", path, nil, { ["X-Idempotency-Key"] = "key-" .. api.unique() }), 404,
        "Participation not found")
      assert_detail(call(admin, "POST", "/api/admin/events/999999/force-claim/" .. p.id, nil,
        { ["X-Idempotency-Key"] = "key-" .. api.unique() }), 404, ADMIN_NOT_FOUND)
      assert.equal(before, snapshot())

      assert.equal(200, join(p, e.id).status) -- joined, not completed
      local wallet = balances(p)
      local key = { ["X-Idempotency-Key"] = "force-" .. api.unique() }
      local res = call(admin, "POST", path, nil, key)
      assert.equal(200, res.status, res.body)
      assert.same({ success = true, rewards = { tokens = 40, exp = 8 }, message = "Force claim completed" }, res.json)
      local again = call(admin, "POST", path, nil, key)
      assert.equal(200, again.status)
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.same(res.json, again.json)
      assert.same({ { "exp", "8" }, { "tokens", "40" } }, ledger(p, "force_claim", e.id))
      local after = balances(p)
      assert.same({ wallet.tokens + 40, wallet.exp + 8 }, { after.tokens, after.exp })
      assert.same({ { "t", "f" } }, sql("SELECT claimed_rewards, completed FROM event_participations "
        .. "WHERE user_id = " .. p.id .. " AND event_id = " .. e.id))
      assert.equal("1", one("SELECT count(*) FROM admin_audit WHERE action = 'event.force_claim' AND target_id = '"
        .. e.id .. "'"))
      local new_key = call(admin, "POST", path, nil, { ["X-Idempotency-Key"] = "force-" .. api.unique() })
      assert.equal(200, new_key.status)
      assert.same({ success = true, rewards = {}, message = "이미 보상 수령" }, new_key.json)
      assert.truthy(new_key.body:find('"rewards":{}', 1, true))
      assert.same(after, balances(p))
      assert.same({ { "exp", "8" }, { "tokens", "40" } }, ledger(p, "force_claim", e.id))
      assert_detail(claim(p, e.id), 400, CANNOT_CLAIM)
    end)
  end)

  it("changes nothing on bad input to any events route", function()
    local p = api.player(host)
    local e = new_event()
    assert.equal(200, join(p, e.id).status)
    local gone = new_event()
    call(admin, "DELETE", "/api/admin/events/" .. gone.id)
    local before = snapshot()
    local A, P = admin, p
    local bad = {
      { A, "POST", "/api/admin/events/", { title = "t", event_type = "daily", start_date = iso(DAY),
                                           end_date = iso(0), rewards = {} }, 400 },
      { A, "POST", "/api/admin/events/", { title = "t", event_type = "daily", start_date = iso(0),
                                           end_date = iso(DAY), rewards = { tokens = -1 } }, 422 },
      { A, "POST", "/api/admin/events/", '{"title":"t"', 422 },
      { A, "PUT", "/api/admin/events/" .. e.id, { end_date = iso(-2 * DAY) }, 400 },
      { A, "PUT", "/api/admin/events/" .. gone.id, { title = "x" }, 404 },
      { A, "DELETE", "/api/admin/events/" .. gone.id, nil, 404 },
      { A, "POST", "/api/admin/events/" .. e.id .. "/publish", { is_active = "maybe" }, 422 },
      { A, "POST", "/api/admin/events/" .. e.id .. "/force-claim/" .. p.id, nil, 400 },
      { A, "POST", "/api/admin/events/" .. e.id .. "/force-claim/999999", nil, 404,
        { ["X-Idempotency-Key"] = "nobody-" .. api.unique() } },
      { P, "POST", "/api/admin/events/" .. e.id .. "/deactivate", nil, 403 },
      { P, "PUT", "/api/events/progress/" .. e.id, { progress = { level = "x" } }, 400 },
      { P, "PUT", "/api/events/progress/" .. e.id, { progress = "x" }, 422 },
      { P, "PUT", "/api/events/progress/" .. gone.id, { progress = { level = 9 } }, 404 },
      { P, "POST", "/api/events/join", { event_id = "x" }, 422 },
      { P, "POST", "/api/events/join", { event_id = gone.id }, 404 },
      { P, "POST", "/api/events/claim/" .. e.id, nil, 400, { ["Idempotency-Key"] = "k-" .. api.unique() } },
      { P, "POST", "/api/events/claim/" .. e.id, nil, 422, { ["Idempotency-Key"] = "" } },
    }
    for _, r in ipairs(bad) do
      local res = call(r[1], r[2], r[3], r[4], r[6])
      assert.equal(r[5], res.status, r[2] .. " " .. r[3] .. ": " .. res.body)
    end
    assert.equal(before, snapshot())
  end)

  it("keeps every user's balance equal to the sum of their ledger, per currency", function()
    assert.equal("0", one("SELECT count(*) FROM wallet_balances b WHERE b.balance <> (SELECT coalesce(sum(delta), 0) "
      .. "FROM wallet_ledger l WHERE l.user_id = b.user_id AND l.currency = b.currency)"))
    assert.is_true(tonumber(one("SELECT count(*) FROM wallet_ledger WHERE reason IN ('event_claim', 'force_claim')"))
      > 0)
  end)
end)
