-- auth.lua - /api/auth: signup (and its deprecated alias register), login,
-- admin login, refresh, logout, logout-all, me (CONTRACT.md §4). Thin
-- handlers over domain/auth.lua, which also installs the per-request
-- authenticator when this file loads (every route file loads at each
-- generation, so every generation has it).
local host = require "host"
local json = require "json"
local auth = require "domain.auth"
local accounts = require "domain.accounts"

local TAGS = { "Authentication" }

-- Signup limits (§4.5); the password minimum is read when the generation loads.
local SIGNUP_BODY = {
  { name = "site_id", type = "string", required = true, min_length = 3, max_length = 50, example = "player01" },
  { name = "nickname", type = "string", required = true, min_length = 2, max_length = 50, example = "player01" },
  { name = "phone_number", type = "string", required = true, min_length = 10, max_length = 15,
    example = "01012345678" },
  { name = "invite_code", type = "string", required = true, min_length = 1, max_length = 32, example = "5858" },
  { name = "password", type = "string", required = true, min_length = host.config.get("PASSWORD_MIN_LENGTH"),
    max_length = 128, example = "correct-horse-9" },
}

local LOGIN_BODY = {
  { name = "site_id", type = "string", required = true, example = "player01" },
  { name = "password", type = "string", required = true, example = "correct-horse-9" },
}

local function signup(req) return accounts.signup(req.body, req) end

host.route {
  method = "POST", path = "/api/auth/signup", auth = "none", tags = TAGS, operation_id = "auth_signup",
  responses = {
    [200] = "Token: access and refresh tokens and the new user (logged in)",
    [400] = { "INVITE_INVALID", "SITE_ID_TAKEN", "NICKNAME_TAKEN", "PHONE_TAKEN" }, [422] = true,
  },
  summary = "Sign up with an invite code (logs in)", body = SIGNUP_BODY, handler = signup,
  moves_money = true, -- the initial balances' ledger rows
}

host.route {
  method = "POST", path = "/api/auth/register", auth = "none", tags = TAGS, operation_id = "auth_register",
  responses = {
    [200] = "Token: access and refresh tokens and the new user (logged in)",
    [400] = { "INVITE_INVALID", "SITE_ID_TAKEN", "NICKNAME_TAKEN", "PHONE_TAKEN" }, [422] = true,
  },
  summary = "Sign up (alias of /api/auth/signup kept for older clients)", deprecated = true,
  body = SIGNUP_BODY, handler = signup, moves_money = true,
}

-- Login and admin login share the lockout counters (§4.6). Mission/event
-- `login` progress (§12.3) joins auth.login's transaction when that lands.
host.route {
  method = "POST", path = "/api/auth/login", auth = "none", tags = TAGS, operation_id = "auth_login",
  responses = {
    [200] = "Token", [401] = { "LOGIN_FAILED" }, [403] = { "LOGIN_DEACTIVATED" }, [422] = true,
    [429] = { "LOGIN_LOCKED" },
  },
  summary = "Log in", body = LOGIN_BODY, moves_money = false,
  handler = function(req) return auth.login(req, req.body.site_id, req.body.password, false) end,
}

host.route {
  method = "POST", path = "/api/auth/admin/login", auth = "none", tags = TAGS, operation_id = "auth_admin_login",
  responses = {
    [200] = "Token (claim is_admin true)", [401] = { "ADMIN_LOGIN_FAILED" }, [403] = { "LOGIN_DEACTIVATED" },
    [422] = true, [429] = { "LOGIN_LOCKED" },
  },
  summary = "Log in as an admin", body = LOGIN_BODY, moves_money = false,
  handler = function(req) return auth.login(req, req.body.site_id, req.body.password, true) end,
}

-- A JWT (three dot-separated parts) rather than an opaque refresh token.
local function is_jwt(token)
  return token:find("^[%w_-]+%.[%w_-]+%.[%w_-]*$") ~= nil
end

host.route {
  method = "POST", path = "/api/auth/refresh", auth = "none", tags = TAGS, operation_id = "auth_refresh",
  responses = {
    [200] = "Token with a new refresh token of the same family",
    [401] = { "TOKEN_INVALID", "TOKEN_REVOKED", "ACCOUNT_DEACTIVATED", "TOKEN_USER_GONE", "SESSION_GONE",
              description = "A reused refresh token revokes its whole family" },
    [403] = { "NOT_AUTHENTICATED", description = "Neither a body refresh_token nor a Bearer header" }, [422] = true,
  },
  summary = "Rotate the refresh token (body or Bearer; a valid access token is also accepted)",
  moves_money = false,
  body = { { name = "refresh_token", type = "string", nullable = true, example = "q3Zy0dJXkqD7o9d0k0m3sH1x6nW2cV4bA8eF5gR7tU0" } },
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
  responses = {
    [200] = "Always, once a Bearer header is there: {\"message\": \"Logged out\"}",
    [403] = { "NOT_AUTHENTICATED", "BAD_AUTH_SCHEME" },
  },
  summary = "Log out this session (optional body {refresh_token})", moves_money = false,
  handler = function(req)
    local token = auth.bearer(req)
    local body = req.raw_body and req.raw_body ~= "" and json.decode(req.raw_body)
    auth.logout(token, type(body) == "table" and body.refresh_token or nil)
    return { message = "Logged out" }
  end,
}

host.route {
  method = "POST", path = "/api/auth/logout-all", auth = "user", tags = TAGS, operation_id = "auth_logout_all",
  responses = { [200] = "{\"message\": \"Logged out from all sessions\"}; the user's sockets close with 4401" },
  summary = "Log out every session of the user", moves_money = false, destructive = true,
  handler = function(req)
    accounts.logout_all(req.user.id)
    return { message = "Logged out from all sessions" }
  end,
}

host.route {
  method = "GET", path = "/api/auth/me", auth = "user", tags = TAGS, operation_id = "auth_me",
  responses = { [200] = "The authenticated user (UserResponse)" },
  summary = "The authenticated user", moves_money = false,
  handler = function(req) return auth.user_response(req.user) end,
}
