-- users.lua - the caller's own account (CONTRACT.md §7): profile read and
-- update, balances, info, the development token grant, and other users'
-- profiles (full for oneself and admins, masked for everyone else).
--
-- Balances are read from the wallet; the only money route here, tokens/add,
-- credits through domain/wallet.lua in one transaction with its `dev_grant`
-- ledger row and honours Idempotency-Key. A change of the users row drops
-- the authenticator's cache so the very next request sees it.
local host = require "host"
local json = require "json"
local db = require "host.db"
local store = require "lib.store"
local wallet = require "domain.wallet"
local idempotency = require "domain.idempotency"
local auth = require "domain.auth"

local USER_COLUMNS = "id, site_id, nickname, phone_number, is_admin, is_active, vip_tier, created_at, last_login"

local NOT_FOUND = "사용자를 찾을 수 없습니다"
local NICKNAME_TAKEN = "이미 존재하는 닉네임입니다"
local PHONE_TAKEN = "이미 등록된 전화번호입니다"
local WRONG_PASSWORD = "Current password is incorrect"

-- Profile of a users row with its balances.
local function profile(u, balances)
  return {
    id = u.id, site_id = u.site_id, nickname = u.nickname, phone_number = u.phone_number,
    cyber_token_balance = balances.tokens, balances = balances,
    created_at = u.created_at, is_active = u.is_active, is_admin = u.is_admin, rank = u.vip_tier,
  }
end

-- What anyone may see of another user: no phone, no money, no admin flag.
local function masked(u)
  return {
    id = u.id, site_id = u.site_id, nickname = u.nickname, phone_number = "hidden",
    cyber_token_balance = 0, balances = { tokens = 0, gold = 0, gems = 0, exp = 0 },
    created_at = u.created_at, is_active = u.is_active, is_admin = false, rank = u.vip_tier,
  }
end

-- A body field's value, with JSON null meaning "unchanged" like absence.
local function given(v)
  if v == json.null then return nil end
  return v
end

-- True when another user already holds `value` in `column` (exact match).
local function taken(column, value, user_id)
  return store.one("SELECT 1 AS x FROM users WHERE " .. column .. " = $1 AND id <> $2", value, user_id) ~= nil
end

host.route {
  method = "GET", path = "/api/users/profile", auth = "user",
  tags = { "Users" }, summary = "The caller's profile", operation_id = "users_profile",
  handler = function(req)
    return profile(req.user, wallet.balances(req.user.id))
  end,
}

host.route {
  method = "PUT", path = "/api/users/profile", auth = "user",
  tags = { "Users" }, summary = "Update the caller's nickname, phone number or password",
  operation_id = "users_update_profile",
  body = {
    { name = "nickname", type = "string", nullable = true, min_length = 2, max_length = 50 },
    { name = "phone_number", type = "string", nullable = true, min_length = 10, max_length = 15 },
    { name = "password", type = "string", nullable = true,
      min_length = host.config.get("PASSWORD_MIN_LENGTH"), max_length = 128 },
    { name = "current_password", type = "string", nullable = true },
  },
  handler = function(req)
    local me = req.user
    local nickname, phone = given(req.body.nickname), given(req.body.phone_number)
    local password, current = given(req.body.password), given(req.body.current_password)
    if not (nickname or phone or password) then return profile(me, wallet.balances(me.id)) end
    -- The password is checked and hashed before the transaction: argon2 takes
    -- a while and must not hold a database connection.
    local new_hash
    if password then
      local row = auth.load_user(me.id)
      if not (current and row and auth.verify_password(row.password_hash, current)) then
        host.error(400, WRONG_PASSWORD)
      end
      new_hash = auth.hash_password(password)
    end
    local updated = store.tx(function()
      if nickname and taken("nickname", nickname, me.id) then host.error(409, NICKNAME_TAKEN) end
      if phone and taken("phone_number", phone, me.id) then host.error(409, PHONE_TAKEN) end
      local rows, err, sqlstate = db.query("UPDATE users SET nickname = COALESCE($2, nickname), "
        .. "phone_number = COALESCE($3, phone_number), password_hash = COALESCE($4, password_hash), "
        .. "updated_at = now() WHERE id = $1 RETURNING " .. USER_COLUMNS, me.id, nickname, phone, new_hash)
      if not rows and sqlstate == "23505" then -- a concurrent update took the value first
        host.error(409, tostring(err):find("phone_number", 1, true) and PHONE_TAKEN or NICKNAME_TAKEN)
      end
      store.check(rows, err, sqlstate)
      if new_hash then auth.revoke_user_sessions(me.id, "password_changed", req.session_id) end
      return rows[1]
    end)
    auth.invalidate_user(me.id)
    return profile(updated, wallet.balances(me.id))
  end,
}

host.route {
  method = "GET", path = "/api/users/balance", auth = "user",
  tags = { "Users" }, summary = "The caller's balances", operation_id = "users_balance",
  handler = function(req)
    local balances = wallet.balances(req.user.id)
    return {
      cyber_token_balance = balances.tokens, user_id = req.user.id, nickname = req.user.nickname,
      balances = balances,
    }
  end,
}

host.route {
  method = "GET", path = "/api/users/info", auth = "user",
  tags = { "Users" }, summary = "The caller's account and balances", operation_id = "users_info",
  handler = function(req)
    local info = auth.user_response(req.user)
    local balances = wallet.balances(req.user.id)
    info.cyber_token_balance, info.balances = balances.tokens, balances
    return info
  end,
}

-- Development only: mints tokens for the caller (absent, hence 404, unless
-- DEV_TOKEN_GRANT is on). The amount has no schema minimum on purpose: the
-- contract answers 0 and negatives with 400, non-integers with 422.
host.route {
  method = "POST", path = "/api/users/tokens/add", auth = "user",
  enabled = host.config.get("DEV_TOKEN_GRANT"),
  tags = { "Users" }, summary = "Add tokens to the caller (development)", operation_id = "users_tokens_add",
  query = { { name = "amount", type = "integer", required = true } },
  handler = idempotency.wrap(function(req)
    local amount = req.query.amount
    if amount <= 0 then host.error(400, "Amount must be positive") end
    local after = store.tx(function()
      return wallet.change(req.user.id, { tokens = amount },
        { reason = "dev_grant", idempotency_key = req.headers["idempotency-key"] })
    end)
    return {
      success = true, message = string.format("Added %d tokens", amount),
      new_balance = after.tokens, user_id = req.user.id,
    }
  end),
}

host.route {
  method = "GET", path = "/api/users/{user_id:int}", auth = "user",
  tags = { "Users" }, summary = "A user's profile (masked unless it is the caller's or the caller is an admin)",
  operation_id = "users_get",
  handler = function(req)
    local id = req.params.user_id
    local u = store.one("SELECT " .. USER_COLUMNS .. " FROM users WHERE id = $1", id)
    if not u then host.error(404, NOT_FOUND) end
    if id == req.user.id or req.user.is_admin then return profile(u, wallet.balances(id)) end
    return masked(u)
  end,
}
