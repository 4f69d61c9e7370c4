--[[ rewards.lua - every grant of value to a player (CONTRACT.md §11, §13.3):
the admin's distribute and grant-bulk, and the credits of event and mission
claims. One rule for all: each credited currency is one wallet change with
its ledger row and one `user_rewards` row, in the caller's transaction, so
the reward history and the ledger always agree.

A reward object (event or mission `rewards`) may hold other keys (`items`,
`multiplier`): they are returned to the player, never credited. Currency
keys must be non-negative integers (checked when an admin stores them).
]]
local host = require "host"
local json = require "json"
local errors = require "lib.errors"
local store = require "lib.store"
local text = require "lib.text"
local wallet = require "domain.wallet"
local events_log = require "domain.events_log"

local M = {}

--- The currencies a rewards object may credit, and the user_rewards type
--- each is recorded under.
M.CURRENCY_TYPES = { tokens = "TOKEN", gold = "GOLD", gems = "GEMS", exp = "EXP" }

-- reward_type (upper-cased) of distribute -> currency credited, or nil.
local TYPE_CURRENCY = {
  TOKEN = "tokens", COIN = "tokens", GOLD = "gold", GEM = "gems", GEMS = "gems", EXP = "exp", XP = "exp",
}

--- bad_currency_key(rewards) -> the first currency key whose value is not a
--- non-negative integer, or nil (admins' event and mission rewards, §13.4).
function M.bad_currency_key(rewards)
  for currency in pairs(M.CURRENCY_TYPES) do
    local v = rewards[currency]
    if v ~= nil and not (type(v) == "number" and v >= 0 and v % 1 == 0 and v <= wallet.MAX) then return currency end
  end
end

-- pydantic's 422 item for a currency reward that is not a non-negative
-- integer (the first bad_currency_key).
local function currency_item(key, v)
  local item = { loc = { "body", "rewards", key }, input = v }
  if type(v) ~= "number" then
    item.type, item.msg = "int_type", "Input should be a valid integer"
  elseif v ~= v or v % 1 ~= 0 then
    item.type, item.msg = "int_from_float", "Input should be a valid integer, got a number with a fractional part"
  elseif v < 0 then
    item.type, item.msg, item.ctx = "greater_than_equal", "Input should be greater than or equal to 0", { ge = 0 }
  else
    item.type, item.msg, item.ctx = "less_than_equal",
      "Input should be less than or equal to " .. string.format("%.0f", wallet.MAX), { le = wallet.MAX }
  end
  return item
end

--- body_issues(body) -> the 422 items (possibly none) of an admin's event
--- or mission body (§13.4, §13.5): a currency reward that is not a
--- non-negative integer, and a NUL anywhere in rewards or requirements.
function M.body_issues(b)
  local items = {}
  if type(b.rewards) == "table" then
    local key = M.bad_currency_key(b.rewards)
    if key then items[#items + 1] = currency_item(key, b.rewards[key]) end
  end
  for _, name in ipairs { "rewards", "requirements" } do
    items[#items + 1] = text.nul_item(b[name], { "body", name })
  end
  return items
end

-- One user_rewards row; returns {id, awarded_at}.
local RECORD = "INSERT INTO user_rewards (user_id, reward_type, reward_value, amount, source_description, "
  .. "awarded_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, awarded_at"

local function record(user_id, reward_type, amount, source, awarded_by)
  return store.one(RECORD, user_id, reward_type, tostring(amount), amount, source, awarded_by)
end

--- credit(user_id, rewards, opts) -> balances: credits the currency keys of
--- a rewards object (zero amounts skipped), each with its ledger row
--- (opts.reason, opts.reference) and user_rewards row (opts.source,
--- opts.awarded_by); opts.idempotency_key goes to the ledger. Must run in
--- the caller's transaction. Returns the balances after.
function M.credit(user_id, rewards, opts)
  local changes, any = {}, false
  for currency, reward_type in pairs(M.CURRENCY_TYPES) do
    local amount = tonumber(rewards[currency])
    if amount and amount > 0 then
      changes[currency] = amount
      any = true
      -- nobody reads its id: it travels with the credit
      store.defer(RECORD, user_id, reward_type, tostring(amount), amount, opts.source, opts.awarded_by)
    end
  end
  if not any then return wallet.balances(user_id) end
  wallet.change(user_id, changes, {
    reason = opts.reason, reference = opts.reference, idempotency_key = opts.idempotency_key,
    actor_id = opts.awarded_by,
  })
  return wallet.balances(user_id)
end

-- The §14.2 message a granted reward sends to the user's sockets.
local function received_message(notification, reward_type, amount, source)
  return {
    type = "REWARD_RECEIVED", id = notification.id, created_at = notification.created_at,
    payload = { reward_type = reward_type, amount = amount, source = source },
  }
end

--- grant(admin, user_id, reward_type, amount, source, opts) -> {reward_id,
--- reward_type, reward_value, awarded_at}: one distribute in the caller's
--- transaction (§11): USER_NOT_FOUND unless the user exists; the
--- user_rewards row (also for a type that moves no currency), the credit
--- with its ledger row (reason reward, reference reward:<id>), a
--- REWARD_RECEIVED notification, outbox reward.granted and the audit row
--- (opts.audit_action, default rewards.distribute). The socket message goes
--- out after the commit. opts: ip, idempotency_key.
function M.grant(admin, user_id, reward_type, amount, source, opts)
  opts = opts or {}
  if not store.one("SELECT id FROM users WHERE id = $1 FOR SHARE", user_id) then errors.raise("USER_NOT_FOUND") end
  reward_type = reward_type:upper()
  local row = record(user_id, reward_type, amount, source, admin.id)
  local currency = TYPE_CURRENCY[reward_type]
  if currency then
    wallet.change(user_id, { [currency] = amount }, {
      reason = "reward", reference = "reward:" .. row.id, idempotency_key = opts.idempotency_key, actor_id = admin.id,
    })
  end
  local payload = { reward_id = row.id, user_id = user_id, reward_type = reward_type, amount = amount, source = source }
  local notification = store.one("INSERT INTO notifications (user_id, type, title, body, data, created_by) "
    .. "VALUES ($1, 'REWARD_RECEIVED', $2, $3, $4::jsonb, $5) RETURNING id, created_at",
    user_id, "보상이 지급되었습니다", source, payload, admin.id)
  events_log.outbox("rewards", "reward.granted", payload)
  events_log.audit(admin.id, opts.audit_action or "rewards.distribute", "user", user_id, payload, opts.ip)
  store.after_commit(function()
    host.ws.send(user_id, received_message(notification, reward_type, amount, source))
  end)
  return { reward_id = row.id, reward_type = reward_type, reward_value = tostring(amount), awarded_at = row.awarded_at }
end

--- distribute(admin, fields, opts) -> the §11 answer: grant in its own
--- transaction (fields: user_id, reward_type, amount, source_description).
function M.distribute(admin, f, opts)
  return store.tx(function()
    return M.grant(admin, f.user_id, f.reward_type, f.amount, f.source_description, opts)
  end)
end

--- grant_bulk(admin, items, opts) -> {success, results}: every item in
--- order, each in its own transaction after an explicit user check (an
--- unknown user is an error result, the others go on); default source
--- "admin:<admin id>"; audit rewards.grant_bulk once per item. Inside a
--- caller's transaction (an Idempotency-Key replay record) each item is a
--- savepoint instead, so the batch and its record commit together.
function M.grant_bulk(admin, items, opts)
  if #items == 0 then errors.raise("BULK_EMPTY") end
  local results, success = json.array(), true
  for i, item in ipairs(items) do
    local ok, res = pcall(store.tx, function()
      return M.grant(admin, item.user_id, item.reward_type, item.amount,
        item.source_description or ("admin:" .. admin.id),
        { ip = opts.ip, idempotency_key = opts.idempotency_key, audit_action = "rewards.grant_bulk" })
    end)
    if ok then
      results[i] = { user_id = item.user_id, status = "ok", reward_id = res.reward_id, awarded_at = res.awarded_at }
    elseif errors.is(res, "USER_NOT_FOUND") then
      success = false
      results[i] = { user_id = item.user_id, status = "error", error = errors.detail("USER_NOT_FOUND") }
    else
      error(res, 0)
    end
  end
  return { success = success, results = results }
end

--- history(viewer, user_id, page, page_size) -> the §11 listing, newest
--- first: only the user themself or an admin (ADMIN_REQUIRED); unknown user
--- USER_NOT_FOUND; a page past the end (beyond 1) REWARDS_PAGE_NOT_FOUND.
function M.history(viewer, user_id, page, page_size)
  if viewer.id ~= user_id and not viewer.is_admin then errors.raise("ADMIN_REQUIRED") end
  if not store.one("SELECT id FROM users WHERE id = $1", user_id) then errors.raise("USER_NOT_FOUND") end
  local total = store.one("SELECT count(*) AS n FROM user_rewards WHERE user_id = $1", user_id).n
  local pages = math.ceil(total / page_size)
  if page > 1 and page > pages then errors.raise("REWARDS_PAGE_NOT_FOUND", total, pages, page) end
  local rows = store.query("SELECT id, user_id, reward_type, reward_value, amount, source_description, awarded_by, "
    .. "awarded_at FROM user_rewards WHERE user_id = $1 ORDER BY awarded_at DESC, id DESC LIMIT $2 OFFSET $3",
    user_id, page_size, (page - 1) * page_size)
  for _, r in ipairs(rows) do
    if r.source_description == nil then r.source_description = json.null end
    if r.awarded_by == nil then r.awarded_by = json.null end
  end
  return { rewards = rows, page = page, page_size = page_size, total_rewards = total, total_pages = pages }
end

return M
