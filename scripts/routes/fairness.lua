-- fairness.lua - the caller's provably-fair seed pair (CONTRACT.md §8):
-- read it, set the client seed, rotate (revealing the server seed), and list
-- the revealed seeds so past plays can be verified. Logic in domain/fairness.
local host = require "host"
local fairness = require "domain.fairness"

local TAGS = { "Fairness" }

host.route {
  method = "GET", path = "/api/fairness", auth = "user",
  tags = TAGS, summary = "The active seed pair: server seed hash, client seed, next nonce",
  operation_id = "fairness_current", moves_money = false,
  responses = { [200] = "server_seed_hash, client_seed, nonce (the next one)" },
  handler = function(req)
    return fairness.view(fairness.current(req.user.id))
  end,
}

host.route {
  method = "PUT", path = "/api/fairness/client-seed", auth = "user",
  tags = TAGS, summary = "Set the client seed (the nonce carries on)", operation_id = "fairness_set_client_seed",
  responses = { [200] = "server_seed_hash, client_seed, nonce", [422] = true },
  moves_money = false,
  body = {
    { name = "client_seed", type = "string", required = true, min_length = 1, max_length = 64,
      pattern = "^[A-Za-z0-9_-]+$", example = "my-lucky-seed" },
  },
  handler = function(req)
    return fairness.set_client_seed(req.user.id, req.body.client_seed)
  end,
}

host.route {
  method = "POST", path = "/api/fairness/rotate", auth = "user",
  tags = TAGS, summary = "Reveal the server seed and start a fresh one", operation_id = "fairness_rotate", moves_money = false,
  responses = {
    [200] = "The revealed previous seed pair and its nonce count, and the fresh pair (nonce 0)",
    [409] = { "SEED_ROUND_ACTIVE" },
  },
  handler = function(req)
    return fairness.rotate(req.user.id)
  end,
}

host.route {
  method = "GET", path = "/api/fairness/revealed", auth = "user",
  tags = TAGS, summary = "Revealed server seeds, newest first", operation_id = "fairness_revealed",
  responses = {
    [200] = "items: server_seed, server_seed_hash, final_nonce, created_at, revealed_at; newest first", [422] = true,
  },
  moves_money = false, query = { { name = "limit", type = "integer", default = 20, ge = 1, le = 100, example = 5 } },
  handler = function(req)
    return { items = fairness.revealed(req.user.id, req.query.limit) }
  end,
}
