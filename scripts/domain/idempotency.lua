-- idempotency.lua - Idempotency-Key for money-moving POSTs (CONTRACT.md §3).
--
-- The record is written in the same transaction as the money movement, so a
-- key is either bound to a committed 2xx answer or to nothing. Concurrent
-- requests with one key are told apart without waiting: the first takes a
-- transaction-scoped advisory lock on (user, key); a second that cannot take
-- it is "in progress" (409); once the first committed, the lock is free and
-- the stored answer is replayed verbatim with Idempotent-Replayed: true.
local host = require "host"
local errors = require "lib.errors"
local json = require "json"
local store = require "lib.store"

local M = {}

local LOC = { "header", "Idempotency-Key" }

local function invalid(key)
  local item
  if #key == 0 then
    item = { type = "string_too_short", msg = "String should have at least 1 character", ctx = { min_length = 1 } }
  elseif #key > 128 then
    item = { type = "string_too_long", msg = "String should have at most 128 characters", ctx = { max_length = 128 } }
  elseif key:find("[^\33-\126]") then
    item = { type = "string_pattern_mismatch", msg = "String should match pattern '^[!-~]+$'",
             ctx = { pattern = "^[!-~]+$" } }
  end
  if item then
    item.loc, item.input = LOC, require("lib.text").repair(key)
    errors.validation({ item })
  end
end

--- key(req) -> the validated Idempotency-Key or nil; raises 422 when present
--- but empty, longer than 128 or not visible ASCII.
function M.key(req)
  local key = req.headers["idempotency-key"]
  if key ~= nil then invalid(key) end
  return key
end

-- X-Idempotency-Key (admin force-claim, §13.4): required, 8-128 visible
-- ASCII characters, anything else the contract's 400 (not a 422).
local function admin_key(req)
  local key = req.headers["x-idempotency-key"]
  if key == nil or #key < 8 or #key > 128 or key:find("[^\33-\126]") then
    errors.raise("FORCE_CLAIM_KEY_REQUIRED")
  end
  return key
end

--- wrap(handler [, scope [, header]]) -> a handler honouring an
--- idempotency key. scope(req) gives the owner of the key (default: the
--- authenticated user's id). header "Idempotency-Key" (default: optional,
--- 422 when malformed) or "X-Idempotency-Key" (required, 400 when missing
--- or malformed); both keep their records in the same table (§3).
function M.wrap(handler, scope, header)
  local read_key = header == "X-Idempotency-Key" and admin_key or M.key
  return function(req)
    local key = read_key(req)
    if key == nil then return handler(req) end
    local owner = scope and scope(req) or req.user.id
    local hash = host.crypto.sha256_hex(req.raw_body or "")
    local query = req.raw_query or ""
    return store.tx(function()
      if not store.one("SELECT pg_try_advisory_xact_lock(hashtextextended($1, $2)) AS ok", key, owner).ok then
        errors.raise("IDEMPOTENCY_IN_PROGRESS")
      end
      local rec = store.one("SELECT method, path, query, request_hash, status_code, response_body, "
        .. "expires_at > now() AS live FROM idempotency_keys WHERE user_id = $1 AND key = $2", owner, key)
      if rec and rec.live then
        if rec.method ~= req.method or rec.path ~= req.path or rec.query ~= query or rec.request_hash ~= hash then
          errors.raise("IDEMPOTENCY_KEY_REUSED")
        end
        return rec.status_code, rec.response_body, { ["Idempotent-Replayed"] = "true" }
      elseif rec then
        store.query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2", owner, key)
      end
      local status, body, headers = handler(req)
      if type(status) ~= "number" then status, body, headers = 200, status, nil end
      if status >= 200 and status < 300 then
        store.query("INSERT INTO idempotency_keys (user_id, key, method, path, query, request_hash, status_code, "
          .. "response_body, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, "
          .. "now() + make_interval(secs => $9))",
          owner, key, req.method, req.path, query, hash, status, assert(json.encode(body)),
          host.config.get("IDEMPOTENCY_TTL_HOURS") * 3600)
      end
      return status, body, headers
    end)
  end
end

return M
