-- users.lua - the caller's own account (CONTRACT.md §7): profile read and
-- update, balances, info, the development token grant, and other users'
-- profiles (full for oneself and admins, masked for everyone else).
--
-- Balances are read from the wallet; the only money route here, tokens/add,
-- is domain/accounts.lua's dev_grant and honours Idempotency-Key. Changes go
-- through domain/accounts.lua, which drops the authenticator's cache so the
-- very next request sees them.
local host = require "host"
local json = require "json"
local wallet = require "domain.wallet"
local idempotency = require "domain.idempotency"
local auth = require "domain.auth"
local accounts = require "domain.accounts"

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

host.route {
  method = "GET", path = "/api/users/profile", auth = "user",
  tags = { "Users" }, summary = "The caller's profile", operation_id = "users_profile", moves_money = false,
  responses = { [200] = "Profile" },
  handler = function(req)
    return profile(req.user, wallet.balances(req.user.id))
  end,
}

host.route {
  method = "PUT", path = "/api/users/profile", auth = "user",
  tags = { "Users" }, summary = "Update the caller's nickname, phone number or password",
  operation_id = "users_update_profile", moves_money = false,
  responses = {
    [200] = "Profile after the update", [400] = { "WRONG_CURRENT_PASSWORD" },
    [409] = { "NICKNAME_CONFLICT", "PHONE_CONFLICT" }, [422] = true,
  },
  body = {
    { name = "nickname", type = "string", nullable = true, min_length = 2, max_length = 50, example = "player02" },
    { name = "phone_number", type = "string", nullable = true, min_length = 10, max_length = 15,
      example = "01087654321" },
    { name = "password", type = "string", nullable = true,
      min_length = host.config.get("PASSWORD_MIN_LENGTH"), max_length = 128, example = "battery-staple-7" },
    { name = "current_password", type = "string", nullable = true, example = "correct-horse-9" },
  },
  handler = function(req)
    local b = req.body
    local changes = {
      nickname = given(b.nickname), phone_number = given(b.phone_number),
      password = given(b.password), current_password = given(b.current_password),
    }
    if not (changes.nickname or changes.phone_number or changes.password) then
      return profile(req.user, wallet.balances(req.user.id))
    end
    local updated = accounts.update_profile(req.user, changes, req.session_id)
    return profile(updated, wallet.balances(req.user.id))
  end,
}

host.route {
  method = "GET", path = "/api/users/balance", auth = "user",
  tags = { "Users" }, summary = "The caller's balances", operation_id = "users_balance", moves_money = false,
  responses = { [200] = "cyber_token_balance, user_id, nickname, balances" },
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
  responses = { [200] = "The account with cyber_token_balance and balances" },
  moves_money = false,
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
  responses = {
    [200] = "success, message, new_balance, user_id", [400] = { "AMOUNT_NOT_POSITIVE", "BALANCE_LIMIT" },
    [422] = true,
  },
  moves_money = true, idempotent = true,
  query = { { name = "amount", type = "integer", required = true, example = 100 } },
  handler = idempotency.wrap(function(req)
    local amount = req.query.amount
    local after = accounts.dev_grant(req.user.id, amount, idempotency.key(req))
    return {
      success = true, message = string.format("Added %d tokens", amount),
      new_balance = after.tokens, user_id = req.user.id,
    }
  end),
}

host.route {
  method = "GET", path = "/api/users/{user_id:int}", auth = "user",
  tags = { "Users" }, summary = "A user's profile (masked unless it is the caller's or the caller is an admin)",
  operation_id = "users_get", moves_money = false,
  responses = {
    [200] = "Profile; masked (phone hidden, balances 0) unless it is the caller's or the caller is an admin",
    [404] = { "PROFILE_NOT_FOUND" }, [422] = true,
  },
  params = { { name = "user_id", type = "integer", required = true, example = 1 } },
  handler = function(req)
    local id = req.params.user_id
    local u = accounts.get(id)
    if id == req.user.id or req.user.is_admin then return profile(u, wallet.balances(id)) end
    return masked(u)
  end,
}
