-- rewards.lua - rewards (CONTRACT.md §11, §13.3): the admin's distribute and
-- grant-bulk, and a user's reward history. Thin: domain/rewards.lua grants
-- (user_rewards row, credit with its ledger row, notification, outbox,
-- audit) and lists.
local host = require "host"
local auth = require "domain.auth"
local idempotency = require "domain.idempotency"
local rewards = require "domain.rewards"

local REWARD_FIELDS = {
  { name = "user_id", type = "integer", required = true, ge = 1, example = 1 },
  { name = "reward_type", type = "string", required = true, min_length = 1, max_length = 50, example = "TOKEN",
    description = "TOKEN/COIN, GOLD, GEM/GEMS, EXP/XP credit that currency; any other type is recorded only" },
  { name = "amount", type = "integer", required = true, ge = 1, example = 100 },
}

local function with(fields, extra)
  local out = {}
  for i, f in ipairs(fields) do out[i] = f end
  out[#out + 1] = extra
  return out
end

host.route {
  method = "POST", path = "/api/rewards/distribute", auth = "admin", tags = { "Rewards" },
  summary = "Grant a reward to a user", operation_id = "rewards_distribute",
  responses = {
    [200] = "reward_id, reward_type, reward_value, awarded_at", [400] = { "BALANCE_LIMIT" },
    [404] = { "USER_NOT_FOUND" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  body = with(REWARD_FIELDS, { name = "source_description", type = "string", required = true, min_length = 1,
                               max_length = 500, example = "tournament prize" }),
  handler = idempotency.wrap(function(req)
    return rewards.distribute(req.user, req.body, { ip = auth.client_ip(req), idempotency_key = idempotency.key(req) })
  end),
}

host.route {
  method = "GET", path = "/api/rewards/users/{user_id:int}/rewards", auth = "user", tags = { "Rewards" },
  summary = "A user's rewards, newest first (the user or an admin)", operation_id = "rewards_history",
  responses = {
    [200] = "rewards (newest first), page, page_size, total_rewards, total_pages",
    [403] = { "ADMIN_REQUIRED", description = "Another user's rewards need an admin" },
    [404] = { "USER_NOT_FOUND", "REWARDS_PAGE_NOT_FOUND" }, [422] = true,
  },
  moves_money = false,
  params = { { name = "user_id", type = "integer", required = true, ge = 1, example = 1 } },
  query = {
    { name = "page", type = "integer", default = 1, ge = 1, example = 1 },
    { name = "page_size", type = "integer", default = 20, ge = 1, le = 100, example = 20 },
  },
  handler = function(req)
    return rewards.history(req.user, req.params.user_id, req.query.page, req.query.page_size)
  end,
}

host.route {
  method = "POST", path = "/api/admin/rewards/grant-bulk", auth = "admin", tags = { "Admin" },
  summary = "Grant rewards to many users, each item on its own", operation_id = "admin_rewards_grant_bulk",
  responses = {
    [200] = "success (all ok) and one result per item, ok or error: 200 even when items failed",
    [400] = { "BULK_EMPTY" }, [422] = true,
  },
  moves_money = true, idempotent = true,
  body = {
    { name = "items", type = "array", required = true, max_length = 500,
      example = { { user_id = 1, reward_type = "TOKEN", amount = 100 } },
      items = { type = "object", fields = with(REWARD_FIELDS,
        { name = "source_description", type = "string", min_length = 1, max_length = 500 }) } },
  },
  handler = idempotency.wrap(function(req)
    return rewards.grant_bulk(req.user, req.body.items, { ip = auth.client_ip(req), idempotency_key = idempotency.key(req) })
  end),
}
