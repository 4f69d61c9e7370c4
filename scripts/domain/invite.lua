-- invite.lua - invite codes (CONTRACT.md §5): generation, the usability rule
-- shared by validate and signup, listing, deactivation and stats.
--
-- The usability rule lives in one SQL fragment (USABLE) used both by the
-- conditional UPDATE that consumes a use at signup and by validate, so the two
-- always agree, and concurrent signups cannot overuse a code (the UPDATE's row
-- lock serialises them and its WHERE re-checks the count). Codes are stored
-- upper-case and looked up case-insensitively.
local host = require "host"
local errors = require "lib.errors"
local json = require "json"
local store = require "lib.store"
local events_log = require "domain.events_log"

local M = {}

M.ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" -- 32 symbols: no O, 0, I, 1
M.LENGTH = 8

local USABLE = "is_active AND (expires_at IS NULL OR expires_at > now()) AND (max_uses IS NULL OR used_count < max_uses)"

local COLUMNS = "code, expires_at, max_uses, used_count, is_active, created_at, created_by"

local function or_null(v)
  if v == nil then return json.null end
  return v
end

--- view(row) -> the InviteCode of §5.1.
function M.view(r)
  return {
    code = r.code, expires_at = or_null(r.expires_at), max_uses = or_null(r.max_uses), used_count = r.used_count,
    is_active = r.is_active, created_at = r.created_at, created_by = or_null(r.created_by),
  }
end

--- new_code() -> 8 symbols drawn uniformly from the alphabet (CSPRNG).
function M.new_code()
  local out = {}
  for i = 1, M.LENGTH do
    local k = host.crypto.random_int(1, #M.ALPHABET)
    out[i] = M.ALPHABET:sub(k, k)
  end
  return table.concat(out)
end

--- generate(user, expires_in_days, max_uses, ip) -> InviteCode. Admins only
--- (INVITE_ADMIN_ONLY). 0 days = never expires, 0 uses = unlimited; a
--- colliding code is drawn again. Writes the audit row `invite.generate`.
function M.generate(user, expires_in_days, max_uses, ip)
  if not user.is_admin then errors.raise("INVITE_ADMIN_ONLY") end
  local admin_id = user.id
  return store.tx(function()
    for _ = 1, 10 do
      local row = store.one("INSERT INTO invite_codes (code, max_uses, expires_at, created_by) "
        .. "VALUES ($1, $2, CASE WHEN $3::int > 0 THEN now() + $3::int * interval '1 day' END, $4) "
        .. "ON CONFLICT (code) DO NOTHING RETURNING " .. COLUMNS,
        M.new_code(), max_uses > 0 and max_uses or nil, expires_in_days, admin_id)
      if row then
        events_log.audit(admin_id, "invite.generate", "invite_code", row.code,
          { expires_in_days = expires_in_days, max_uses = max_uses }, ip)
        return M.view(row)
      end
    end
    error("invite code space exhausted: 10 collisions in a row")
  end)
end

--- consume(code) -> the stored code | nil: takes one use of a usable code
--- (§5.2) in the caller's transaction; nil when it is not usable now.
function M.consume(code)
  local row = store.one("UPDATE invite_codes SET used_count = used_count + 1 "
    .. "WHERE upper(code) = upper($1) AND " .. USABLE .. " RETURNING code", code)
  return row and row.code
end

local INVALID = {
  is_valid = false, error_message = "Invalid invite code", code = json.null, expires_at = json.null,
  remaining_uses = json.null,
}

local function invalid(message)
  local r = {}
  for k, v in pairs(INVALID) do r[k] = v end
  r.error_message = message
  return r
end

--- validate(code) -> the validation answer of §5.2 (first failing condition).
function M.validate(code)
  local r = store.one("SELECT code, expires_at, max_uses, used_count, is_active, "
    .. "(expires_at IS NOT NULL AND expires_at <= now()) AS expired, " .. USABLE .. " AS usable "
    .. "FROM invite_codes WHERE upper(code) = upper($1)", code)
  if not r then return invalid("Invalid invite code") end
  if not r.is_active then return invalid("Invite code has been deactivated") end
  if r.expired then return invalid("Invite code has expired") end
  if not r.usable then return invalid("Invite code has reached maximum usage limit") end
  return {
    is_valid = true, error_message = json.null, code = r.code, expires_at = or_null(r.expires_at),
    remaining_uses = r.max_uses and (r.max_uses - r.used_count) or json.null,
  }
end

--- list(user) -> [InviteCode] newest first: every code for an admin, else
--- the codes the user created.
function M.list(user)
  local rows
  if user.is_admin then
    rows = store.query("SELECT " .. COLUMNS .. " FROM invite_codes ORDER BY created_at DESC, id DESC")
  else
    rows = store.query("SELECT " .. COLUMNS .. " FROM invite_codes WHERE created_by = $1 "
      .. "ORDER BY created_at DESC, id DESC", user.id)
  end
  local out = json.array()
  for i, r in ipairs(rows) do out[i] = M.view(r) end
  return out
end

--- deactivate(user, code, ip): 404 "Invite code not found"; 403 unless the
--- user is an admin or created it. An admin's deactivation is audited.
function M.deactivate(user, code, ip)
  store.tx(function()
    local r = store.one("SELECT id, code, created_by FROM invite_codes WHERE upper(code) = upper($1) FOR UPDATE", code)
    if not r then errors.raise("INVITE_NOT_FOUND") end
    if not user.is_admin and r.created_by ~= user.id then
      errors.raise("INVITE_NOT_OWNER")
    end
    store.query("UPDATE invite_codes SET is_active = false WHERE id = $1", r.id)
    if user.is_admin then
      events_log.audit(user.id, "invite.deactivate", "invite_code", r.code, {}, ip)
    end
  end)
end

--- stats(user) -> {total_codes, active_codes, expired_codes, total_uses}:
--- global for an admin, else over the user's own codes.
function M.stats(user)
  local r = store.one("SELECT count(*)::bigint AS total_codes, count(*) FILTER (WHERE " .. USABLE .. ")::bigint "
    .. "AS active_codes, count(*) FILTER (WHERE expires_at < now())::bigint AS expired_codes, "
    .. "coalesce(sum(used_count), 0)::bigint AS total_uses FROM invite_codes "
    .. "WHERE $1::boolean OR created_by = $2", user.is_admin == true, user.id)
  return r
end

return M
