--[[ presence.lua - who is connected where (CONTRACT.md §14.2), in Redis so
every worker of every host sees the same figures.

  cc:ws:presence           hash, field "<instance>:<user_id>" = that process's
                           open sockets of the user (an instance is one
                           worker process: host.instance, "<hostname>-<pid>")
  cc:ws:instances          set of the instances that hold sockets
  cc:ws:heartbeat:<inst>   a key with a 90 s TTL each instance refreshes
                           every 30 s
  cc:ws:sockets:{<uid>}    sorted set of the user's sockets ("<instance>/<id>")
                           by opening time: the per-user limit

Every open and close updates the hash at once, so `delivered` counts are
current. Redis 7.0 has no per-field TTL (HEXPIRE is 7.4+): an instance that
died without closing its sockets is found by its missing heartbeat, and
whoever finds it removes its fields. All of this is best effort: with Redis
down a socket still opens and delivery is local (§14.2).
]]
local host = require "host"
local redis = require "host.redis"

local M = {}

local PRESENCE, INSTANCES = "cc:ws:presence", "cc:ws:instances"
M.HEARTBEAT_TTL_S, M.HEARTBEAT_EVERY_S = 90, 30

local function heartbeat_key(instance) return "cc:ws:heartbeat:" .. instance end
local function sockets_key(user_id) return "cc:ws:sockets:{" .. user_id .. "}" end

--- socket_key(socket_id) -> "<instance>/<id>": a socket among all processes.
function M.socket_key(socket_id) return host.instance .. "/" .. string.format("%d", socket_id) end

-- Adds a socket to the user's set and returns the members beyond the limit,
-- oldest first (removed from the set), in one step.
local ADMIT = [[
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[3])
if over <= 0 then return {} end
local old = redis.call('ZRANGE', KEYS[1], 0, over - 1)
redis.call('ZREM', KEYS[1], unpack(old))
return old
]]

--- opened(user_id, socket_id) -> {socket keys to close with 4000}: counts the
--- socket in the presence hash and admits it to the user's set; beyond
--- WS_MAX_SOCKETS_PER_USER the oldest of the user's sockets (wherever they
--- live) must close. Empty when Redis is down.
function M.opened(user_id, socket_id)
  redis.call("HINCRBY", PRESENCE, host.instance .. ":" .. user_id, 1)
  redis.call("SADD", INSTANCES, host.instance)
  local over = redis.call("EVAL", ADMIT, 1, sockets_key(user_id), tostring(host.time.now_ms()),
    M.socket_key(socket_id), tostring(host.config.get("WS_MAX_SOCKETS_PER_USER")))
  return type(over) == "table" and over or {}
end

-- Decrements a presence field, dropping it at zero.
local RELEASE = [[
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
]]

--- closed(user_id, socket_id): the socket leaves the hash and the user's set.
function M.closed(user_id, socket_id)
  redis.call("EVAL", RELEASE, 1, PRESENCE, host.instance .. ":" .. user_id)
  redis.call("ZREM", sockets_key(user_id), M.socket_key(socket_id))
end

--- heartbeat(): refreshes this instance's heartbeat and removes the fields
--- of instances whose heartbeat is gone (they died holding sockets).
function M.heartbeat()
  redis.call("SET", heartbeat_key(host.instance), "1", "EX", tostring(M.HEARTBEAT_TTL_S))
  local instances = redis.call("SMEMBERS", INSTANCES)
  if type(instances) ~= "table" then return end
  for _, inst in ipairs(instances) do
    if inst ~= host.instance and redis.call("EXISTS", heartbeat_key(inst)) == 0 then
      local cursor = "0"
      repeat
        local page = redis.call("HSCAN", PRESENCE, cursor, "MATCH", inst .. ":*", "COUNT", "500")
        if type(page) ~= "table" then return end
        cursor = page[1]
        for i = 1, #page[2], 2 do redis.call("HDEL", PRESENCE, page[2][i]) end
      until cursor == "0"
      redis.call("SREM", INSTANCES, inst)
      host.log.info("presence: removed a dead instance's sockets", { instance = inst })
    end
  end
end

--- sockets_of(user_id) -> live sockets of the user on every instance (0
--- when Redis is down).
function M.sockets_of(user_id)
  local instances = redis.call("SMEMBERS", INSTANCES)
  if type(instances) ~= "table" or #instances == 0 then return 0 end
  local fields = {}
  for i, inst in ipairs(instances) do fields[i] = inst .. ":" .. user_id end
  local counts = redis.call("HMGET", PRESENCE, unpack(fields))
  local n = 0
  for _, c in ipairs(type(counts) == "table" and counts or {}) do n = n + (tonumber(c) or 0) end
  return n
end

--- sockets() -> live sockets of every user on every instance.
function M.sockets()
  local counts = redis.call("HVALS", PRESENCE)
  local n = 0
  for _, c in ipairs(type(counts) == "table" and counts or {}) do n = n + (tonumber(c) or 0) end
  return n
end

return M
