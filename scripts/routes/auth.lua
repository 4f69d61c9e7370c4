-- auth.lua - /api/auth: signup (and its deprecated alias register), login,
-- admin login, refresh, logout, logout-all, me (CONTRACT.md §4). Thin
-- handlers over domain/auth.lua, which also installs the per-request
-- authenticator when this file loads (every route file loads at each
-- generation, so every generation has it).
local host = require "host"
local json = require "json"
local store = require "lib.store"
local auth = require "domain.auth"
local invite = require "domain.invite"

local TAGS = { "Authentication" }

-- Signup limits (§4.5); the password minimum is read when the generation loads.
local SIGNUP_BODY = {
  { name = "site_id", type = "string", required = true, min_length = 3, max_length = 50 },
  { name = "nickname", type = "string", required = true, min_length = 2, max_length = 50 },
  { name = "phone_number", type = "string", required = true, min_length = 10, max_length = 15 },
  { name = "invite_code", type = "string", required = true, min_length = 1, max_length = 32 },
  { name = "password", type = "string", required = true, min_length = host.config.get("PASSWORD_MIN_LENGTH"),
    max_length = 128 },
}

local LOGIN_BODY = {
  { name = "site_id", type = "string", required = true },
  { name = "password", type = "string", required = true },
}

-- Signup in one transaction: consume an invite use, the §4.5 checks in order,
-- the user with wallet, action and outbox rows, then the first session. Any
-- 400 (including a unique violation racing in) rolls everything back, the
-- invite use included. Mission/event `login` progress (§12.3) joins here
-- when that issue lands.
local function signup(req)
  local b = req.body
  local hash = auth.hash_password(b.password) -- slow on purpose: before the transaction
  return store.tx(function()
    local code = invite.consume(b.invite_code)
    if not code then host.error(400, "유효하지 않은 초대코드입니다") end
    local taken = store.one("SELECT EXISTS (SELECT 1 FROM users WHERE site_id = $1) AS site_id, "
      .. "EXISTS (SELECT 1 FROM users WHERE nickname = $2) AS nickname, "
      .. "EXISTS (SELECT 1 FROM users WHERE phone_number = $3) AS phone_number", b.site_id, b.nickname, b.phone_number)
    for _, field in ipairs { "site_id", "nickname", "phone_number" } do
      if taken[field] then host.error(400, auth.UNIQUE_MESSAGES["users_" .. field .. "_key"]) end
    end
    local user = auth.create_user {
      site_id = b.site_id, nickname = b.nickname, phone_number = b.phone_number,
      password_hash = hash, invite_code = code,
    }
    return auth.issue(user, req)
  end)
end

host.route {
  method = "POST", path = "/api/auth/signup", auth = "none", tags = TAGS, operation_id = "auth_signup",
  summary = "Sign up with an invite code (logs in)", body = SIGNUP_BODY, handler = signup,
}

host.route {
  method = "POST", path = "/api/auth/register", auth = "none", tags = TAGS, operation_id = "auth_register",
  summary = "Sign up (alias of /api/auth/signup kept for older clients)", deprecated = true,
  body = SIGNUP_BODY, handler = signup,
}

-- Login and admin login share the lockout counters (§4.6). Mission/event
-- `login` progress (§12.3) joins auth.login's transaction when that lands.
host.route {
  method = "POST", path = "/api/auth/login", auth = "none", tags = TAGS, operation_id = "auth_login",
  summary = "Log in", body = LOGIN_BODY,
  handler = function(req) return auth.login(req, req.body.site_id, req.body.password, false) end,
}

host.route {
  method = "POST", path = "/api/auth/admin/login", auth = "none", tags = TAGS, operation_id = "auth_admin_login",
  summary = "Log in as an admin", body = LOGIN_BODY,
  handler = function(req) return auth.login(req, req.body.site_id, req.body.password, true) end,
}

-- A JWT (three dot-separated parts) rather than an opaque refresh token.
local function is_jwt(token)
  return token:find("^[%w_-]+%.[%w_-]+%.[%w_-]*$") ~= nil
end

host.route {
  method = "POST", path = "/api/auth/refresh", auth = "none", tags = TAGS, operation_id = "auth_refresh",
  summary = "Rotate the refresh token (body or Bearer; a valid access token is also accepted)",
  body = { { name = "refresh_token", type = "string", nullable = true } },
  handler = function(req)
    local token = req.body.refresh_token
    if type(token) ~= "string" or token == "" then token = auth.bearer(req) end
    if is_jwt(token) then return auth.refresh_with_access_token(token) end
    return auth.refresh_with_token(token)
  end,
}

-- Logout never fails once a Bearer header is there: the body is read
-- leniently (an optional {refresh_token}) and anything unusable is ignored.
host.route {
  method = "POST", path = "/api/auth/logout", auth = "none", tags = TAGS, operation_id = "auth_logout",
  summary = "Log out this session (optional body {refresh_token})",
  handler = function(req)
    local token = auth.bearer(req)
    local body = req.raw_body and req.raw_body ~= "" and json.decode(req.raw_body)
    auth.logout(token, type(body) == "table" and body.refresh_token or nil)
    return { message = "Logged out" }
  end,
}

host.route {
  method = "POST", path = "/api/auth/logout-all", auth = "user", tags = TAGS, operation_id = "auth_logout_all",
  summary = "Log out every session of the user",
  handler = function(req)
    store.tx(function() auth.revoke_user_sessions(req.user.id, "logout_all") end)
    return { message = "Logged out from all sessions" }
  end,
}

host.route {
  method = "GET", path = "/api/auth/me", auth = "user", tags = TAGS, operation_id = "auth_me",
  summary = "The authenticated user",
  handler = function(req) return auth.user_response(req.user) end,
}
