--[[ errors.lua - the one catalogue of the errors scripts answer with.

Every error a client can read from a script has one name here, with its
status and its exact detail text (CONTRACT.md gives the texts; clients match
them, so a text lives nowhere else). The same text at two statuses is two
names (NICKNAME_TAKEN is signup's 400, NICKNAME_CONFLICT the profile's 409).

The three layers (DESIGN.md "The Lua host API"): pure code returns
`nil, reason`; domain code raises a named error with errors.raise (inside
db.tx that rolls the transaction back); dispatch turns it into the
FastAPI-shaped answer. Anything else raised is a bug: a 500 with the
request id. Not here: the validator's generated 422 items (lib/schema.lua),
the C host's HTTP-level texts ("Not Found" for an unknown path…), and
success messages, which stay next to their responses.

Entries: NAME = { status, detail [, bearer = true] }. A detail with `%s`
takes arguments (errors.raise(name, ...)); bearer adds the
WWW-Authenticate: Bearer header every 401 carries (§4.4).
]]
local host = require "host"

local CATALOGUE = {
  -- §2, §3, §17: the data plane
  SERVICE_UNAVAILABLE = { 503, "Service temporarily unavailable" },
  OUTCOME_UNKNOWN = { 503, "Outcome unknown: retry with the same Idempotency-Key" },

  -- §3 money and idempotency
  INSUFFICIENT_TOKENS = { 400, "토큰이 부족합니다" },
  BALANCE_LIMIT = { 400, "Balance limit exceeded" },
  ALREADY_CREDITED = { 409, "Already credited" },
  IDEMPOTENCY_IN_PROGRESS = { 409, "A request with this Idempotency-Key is in progress" },
  IDEMPOTENCY_KEY_REUSED = { 409, "Idempotency-Key was already used for a different request" },

  -- §4.4 per-request authentication, in the order it checks
  NOT_AUTHENTICATED = { 403, "Not authenticated" },
  BAD_AUTH_SCHEME = { 403, "Invalid authentication credentials" },
  TOKEN_INVALID = { 401, "토큰이 유효하지 않습니다", bearer = true },
  TOKEN_REVOKED = { 401, "토큰이 취소되었습니다", bearer = true },
  TOKEN_USER_GONE = { 401, "User not found", bearer = true },
  ACCOUNT_DEACTIVATED = { 401, "계정이 비활성화되었습니다", bearer = true },
  SESSION_GONE = { 401, "세션이 만료되었거나 로그아웃되었습니다", bearer = true },
  ADMIN_REQUIRED = { 403, "Admin access required" },
  RANK_REQUIRED = { 403, "Insufficient rank: requires %s" },

  -- §4.5, §4.6 signup and login
  INVITE_INVALID = { 400, "유효하지 않은 초대코드입니다" },
  SITE_ID_TAKEN = { 400, "이미 존재하는 사이트 아이디입니다" },
  NICKNAME_TAKEN = { 400, "이미 존재하는 닉네임입니다" },
  PHONE_TAKEN = { 400, "이미 등록된 전화번호입니다" },
  LOGIN_LOCKED = { 429, "Too many failed attempts" },
  LOGIN_FAILED = { 401, "Invalid credentials", bearer = true },
  ADMIN_LOGIN_FAILED = { 401, "Invalid admin credentials", bearer = true },
  LOGIN_DEACTIVATED = { 403, "계정이 비활성화되었습니다" },

  -- §5 invite codes
  INVITE_ADMIN_ONLY = { 403, "Only admin users can generate invite codes" },
  INVITE_NOT_FOUND = { 404, "Invite code not found" },
  INVITE_NOT_OWNER = { 403, "You can only deactivate your own invite codes" },

  -- §7 users
  PROFILE_NOT_FOUND = { 404, "사용자를 찾을 수 없습니다" },
  NICKNAME_CONFLICT = { 409, "이미 존재하는 닉네임입니다" },
  PHONE_CONFLICT = { 409, "이미 등록된 전화번호입니다" },
  WRONG_CURRENT_PASSWORD = { 400, "Current password is incorrect" },
  AMOUNT_NOT_POSITIVE = { 400, "Amount must be positive" },

  -- §8 fairness
  SEED_ROUND_ACTIVE = { 409, "Cannot rotate the server seed while a crash round is active" },

  -- §9, §10 games and crash
  GAME_NOT_FOUND = { 404, "Not Found" },
  GAME_INPUT_REFUSED = { 400, "%s" },
  CRASH_CACHE_UNAVAILABLE = { 503, "세션 서비스가 준비되지 않았습니다(캐시)" },
  CRASH_ALREADY_ACTIVE = { 409, "이미 진행 중인 크래시 세션이 있습니다." },
  CRASH_CANNOT_CASH_OUT = { 409, "캐시아웃을 수행할 수 없습니다." },
  CRASH_NO_SESSION = { 404, "진행 중인 크래시 세션을 찾을 수 없습니다." },

  -- §11 rewards
  REWARDS_PAGE_NOT_FOUND = { 404, "Page not found. Total items: %s, total pages: %s. Requested page: %s." },

  -- §12 events and missions (player side)
  EVENT_NOT_FOUND = { 404, "이벤트를 찾을 수 없습니다" },
  EVENT_NOT_ACTIVE = { 400, "Event is not active" },
  INVALID_PROGRESS_VALUE = { 400, "Invalid progress value for '%s'" },
  CANNOT_CLAIM = { 400, "보상을 받을 수 없습니다" },
  MISSION_NOT_FOUND = { 404, "Mission not found" },
  MISSION_SERVER_TRACKED = { 400, "Mission progress is tracked by the server" },

  -- §14 notifications, §15 the event stream
  NOTIFICATION_NOT_FOUND = { 404, "Notification not found" },
  SOCKET_NOT_AUTHENTICATED = { 401, "Not authenticated", bearer = true },
  SOCKET_OTHER_USER = { 403, "Not allowed to open another user's notifications" },
  SEND_NEEDS_USER = { 400, "user_id is required for targeted send" },
  RESERVED_ACTION_TYPE = { 400, "Reserved action_type" },
  STREAM_UNAVAILABLE = { 503, "Event stream unavailable" },

  -- §13 admin
  USER_NOT_FOUND = { 404, "User not found" },
  CANNOT_BAN_SELF = { 400, "Cannot ban yourself" },
  RELOAD_REFUSED = { 400, "%s" },
  BULK_EMPTY = { 400, "items cannot be empty" },
  ADMIN_EVENT_NOT_FOUND = { 404, "Event not found" },
  DATES_OUT_OF_ORDER = { 400, "start_date must be before end_date" },
  FORCE_CLAIM_KEY_REQUIRED = { 400, "X-Idempotency-Key header required (8-128 chars)" },
  PARTICIPATION_NOT_FOUND = { 404, "Participation not found" },
}

local BEARER = { ["WWW-Authenticate"] = "Bearer" }

local M = {}

local function entry(name, level)
  local e = CATALOGUE[name]
  if not e then error("lib.errors: unknown error name '" .. tostring(name) .. "'", level + 1) end
  return e
end

local function format(e, ...)
  if select("#", ...) == 0 then return e[2] end
  return string.format(e[2], ...)
end

--- detail(name, ...) -> the detail text of the named error (arguments fill
--- its %s), for answers that carry it without raising (a per-item result).
function M.detail(name, ...)
  return format(entry(name, 2), ...)
end

--- status(name) -> its HTTP status.
function M.status(name)
  return entry(name, 2)[1]
end

--- raise(name, ...): raises the named error (arguments fill its %s).
function M.raise(name, ...)
  local e = entry(name, 2)
  host.error(e[1], format(e, ...), e.bearer and BEARER or nil)
end

--- raise_with(name, headers, ...): raise with extra response headers
--- (Retry-After on the lockout).
function M.raise_with(name, headers, ...)
  local e = entry(name, 2)
  local h = {}
  for k, v in pairs(e.bearer and BEARER or {}) do h[k] = v end
  for k, v in pairs(headers or {}) do h[k] = v end
  host.error(e[1], format(e, ...), h)
end

--- validation(items): raises a 422 with FastAPI's list of {loc, msg, type}
--- items, for the few checks a declaration cannot express.
function M.validation(items)
  host.error(422, items)
end

--- is(err, name) -> true when err is the HTTP error raised for name (its
--- status and text; for a %s entry, its status and prefix).
function M.is(err, name)
  local e = entry(name, 2)
  if not (host.is_http_error(err) and err.status == e[1] and type(err.detail) == "string") then return false end
  local prefix = e[2]:match("^(.-)%%s") or e[2]
  return err.detail:sub(1, #prefix) == prefix and (prefix ~= e[2] or err.detail == e[2])
end

--- names() -> every name of the catalogue (for specs).
function M.names()
  local out = {}
  for name in pairs(CATALOGUE) do out[#out + 1] = name end
  table.sort(out)
  return out
end

return M
