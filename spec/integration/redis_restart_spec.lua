-- redis_restart_spec.lua - the session cache when Redis goes back in time
-- (issue 8): a revocation made after Redis's last snapshot must survive a
-- restart from that snapshot, which brings back the revoked token's cache
-- entry together with the generation it was written under; the same for a
-- failover to a lagging replica and back. Redis is a cache, never the
-- authority: entries count only on the dataset (server run and replication
-- history) they were written on, and not at all when the server cannot be
-- identified (scripts/domain/auth.lua). Each test has its own redis-server
-- and a one-worker host pointed at it.
local support = require "spec.support.host"
local api = require "spec.support.api"
local redis = require "spec.support.redis"
local mime = require "mime"
local cjson = require "cjson"

local SESSION_GONE = "세션이 만료되었거나 로그아웃되었습니다"
local DEACTIVATED = "계정이 비활성화되었습니다"

local function assert_401(res, detail, when)
  assert.equal(401, res.status, (when or "") .. ": " .. res.body)
  assert.equal(detail, res.json.detail)
end

-- The cache key of an access token: cc:sess:{<user_id>}:<jti>.
local function cache_key(token)
  local payload = token:match("^[^.]+%.([^.]+)%."):gsub("-", "+"):gsub("_", "/")
  local claims = cjson.decode((mime.unb64(payload .. string.rep("=", (4 - #payload % 4) % 4))))
  return "cc:sess:{" .. claims.user_id .. "}:" .. claims.jti
end

describe("session cache when Redis loses or rolls back state", function()
  local host, port, dir, port2, dir2

  local function start_host()
    host = support.start {
      WORKERS = "1", REDIS_HOST = "127.0.0.1", REDIS_PORT = tostring(port),
      ARGON2_MEMORY_KIB = "8192", ARGON2_ITERATIONS = "1", MAX_CONCURRENT_SESSIONS = "1",
    }
  end

  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(redis.sh("mkdir -p " .. dir))
    port = redis.free_port()
    redis.start(port, dir)
  end)

  after_each(function()
    if host then host:stop() end
    host = nil
    redis.stop(port)
    redis.sh("rm -rf " .. dir)
    if port2 then
      redis.stop(port2)
      redis.sh("rm -rf " .. dir2)
    end
    port2 = nil
  end)

  local function me(token)
    return host:request("GET", "/api/auth/me", nil, api.auth(token))
  end

  -- A command to the server on port p (its output), and to the host's one.
  local function at(p, ...)
    local args = {}
    for i, a in ipairs { ... } do args[i] = "'" .. a .. "'" end
    return redis.cli(p, table.concat(args, " "))
  end
  local function cli(...) return at(port, ...) end

  local function gen_of(user_id, p) return at(p or port, "GET", "cc:sess:{" .. user_id .. "}:gen") end

  -- Waits until the host answers through Redis again (one worker: its one
  -- command connection).
  local function wait_reconnected()
    assert.truthy(support.wait_for(function()
      local res = host:request("POST", "/test/redis/call", { args = { "PING" } })
      return res and res.status == 200 and res.json.value == "PONG"
    end, 15), "the host did not reconnect to Redis")
  end

  -- SHUTDOWN NOSAVE, start again from dir/dump.rdb, and wait until the host
  -- talks to the new server.
  local function restart_from_snapshot()
    redis.stop(port)
    redis.start(port, dir)
    wait_reconnected()
  end

  it("keeps a token superseded by a later login 401, and caches again on the new server", function()
    start_host()
    local a = api.signup(host)
    assert.equal(200, me(a.access_token).status) -- A's state is cached now
    local key_a = cache_key(a.access_token)
    assert.equal("1", cli("EXISTS", key_a))
    local gen = gen_of(a.user.id)
    redis.save(port) -- the snapshot holds A's live entry and the generation it counts under

    local b = assert(api.login(host, a.site_id, a.password))
    assert_401(me(a.access_token), SESSION_GONE, "before the restart")
    assert.are_not.equal(gen, gen_of(a.user.id))

    restart_from_snapshot()
    -- Redis went back in time: A's entry and its generation are back.
    assert.equal("1", cli("EXISTS", key_a))
    assert.equal(gen, gen_of(a.user.id))
    assert_401(me(a.access_token), SESSION_GONE, "after the restart")
    assert_401(me(a.access_token), SESSION_GONE, "after the restart, again")
    assert.equal(200, me(b.access_token).status)
    assert.equal(200, me(b.access_token).status)

    -- The cache still works: B's entry is tagged with the new server's run.
    local run_id = cli("INFO", "server"):match("run_id:(%x+)")
    local entry = cjson.decode(cli("GET", cache_key(b.access_token)))
    assert.equal(run_id, entry.r:match("^(%x+)/%x+$"))
  end)

  it("keeps a logout, a ban and a rank downgrade made after the snapshot", function()
    start_host()
    local out, banned, demoted = api.signup(host), api.signup(host), api.signup(host)
    api.set_rank(host, demoted.user.id, "VIP")
    local function vip_only()
      return host:request("GET", "/test/accounts/vip-only", nil, api.auth(demoted.access_token))
    end
    assert.equal(200, me(out.access_token).status)
    assert.equal(200, me(banned.access_token).status)
    assert.equal(200, vip_only().status)
    local keys = { cache_key(out.access_token), cache_key(banned.access_token), cache_key(demoted.access_token) }
    local users = { out.user.id, banned.user.id, demoted.user.id }
    local gens = {}
    for i, id in ipairs(users) do gens[i] = gen_of(id) end
    redis.save(port)

    assert.equal(200, host:request("POST", "/api/auth/logout", nil, api.auth(out.access_token)).status)
    api.ban(host, banned.user.id)
    api.set_rank(host, demoted.user.id, "STANDARD")
    -- Status and detail of each user's next request, all three at once.
    local function outcomes()
      local o, b, r = me(out.access_token), me(banned.access_token), vip_only()
      return { logout = { o.status, o.json.detail }, ban = { b.status, b.json.detail },
        rank = { r.status, r.json.detail } }
    end
    local expected = { logout = { 401, SESSION_GONE }, ban = { 401, DEACTIVATED },
      rank = { 403, "Insufficient rank: requires VIP" } }
    assert.same(expected, outcomes())

    restart_from_snapshot()
    for i, key in ipairs(keys) do -- the entries and their generations are back
      assert.equal("1", cli("EXISTS", key))
      assert.equal(gens[i], gen_of(users[i]))
    end
    assert.same(expected, outcomes())
  end)

  it("keeps a revoked token 401 through a failover to a lagging replica and back to the same server", function()
    -- A second server replicates the host's one. Serving a full sync, it
    -- waits 2 s (diskless), so the demoted server below stays a replica of
    -- its own dataset for a while before the lagging one replaces it.
    dir2 = os.tmpname()
    os.remove(dir2)
    assert(redis.sh("mkdir -p " .. dir2))
    port2 = redis.free_port()
    redis.start(port2, dir2)
    at(port, "CONFIG", "SET", "repl-diskless-sync-delay", "0")
    at(port2, "CONFIG", "SET", "repl-diskless-sync", "yes")
    at(port2, "CONFIG", "SET", "repl-diskless-sync-delay", "2")
    local function synced(p) return at(p, "INFO", "replication"):find("master_link_status:up", 1, true) end
    assert.equal("OK", at(port2, "REPLICAOF", "127.0.0.1", tostring(port)))
    assert.truthy(support.wait_for(function() return synced(port2) end, 15), "no replication")

    start_host()
    local a = api.signup(host)
    assert.equal(200, me(a.access_token).status)
    local key_a, gen = cache_key(a.access_token), gen_of(a.user.id)
    assert.truthy(support.wait_for(function() return at(port2, "EXISTS", key_a) == "1" end, 10))
    local run_id = cli("INFO", "server"):match("run_id:(%x+)")

    -- Failover: the replica is promoted while the host's server, cut off
    -- from it, still takes the revocation.
    assert.equal("OK", at(port2, "REPLICAOF", "NO", "ONE"))
    local b = assert(api.login(host, a.site_id, a.password))
    assert_401(me(a.access_token), SESSION_GONE, "before the failover")

    -- The host's server is demoted (Sentinel drops its clients) and the
    -- lagging dataset replaces its own: the entry and old generation are back.
    assert.equal("OK", cli("REPLICAOF", "127.0.0.1", tostring(port2)))
    cli("CLIENT", "KILL", "TYPE", "normal")
    wait_reconnected()
    assert.truthy(support.wait_for(function() return synced(port) and gen_of(a.user.id) == gen end, 15),
      "the demoted server did not resync")
    assert.equal("1", cli("EXISTS", key_a))
    assert_401(me(a.access_token), SESSION_GONE, "on the demoted server")

    -- Failback: the same server process is promoted again (same run_id).
    assert.equal("OK", cli("REPLICAOF", "NO", "ONE"))
    cli("CLIENT", "KILL", "TYPE", "normal")
    wait_reconnected()
    assert.equal(run_id, cli("INFO", "server"):match("run_id:(%x+)"))
    assert.equal("1", cli("EXISTS", key_a))
    assert.equal(gen, gen_of(a.user.id))
    assert_401(me(a.access_token), SESSION_GONE, "after the failback")
    assert.equal(200, me(b.access_token).status)
  end)

  it("neither trusts nor writes entries when the server refuses INFO (ACL), and still revokes", function()
    assert.equal("OK", cli("ACL", "SETUSER", "default", "-info"))
    start_host()
    local a = api.signup(host)
    assert.equal(200, me(a.access_token).status)
    assert.equal(200, me(a.access_token).status)
    assert.equal("0", cli("EXISTS", cache_key(a.access_token)))
    assert.truthy(host:log_text():find("INFO gave no run_id", 1, true), "no warning logged")
    local b = assert(api.login(host, a.site_id, a.password))
    assert_401(me(a.access_token), SESSION_GONE)
    assert.equal(200, me(b.access_token).status)
  end)
end)
