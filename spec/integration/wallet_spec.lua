-- wallet_spec.lua - money is sacred: concurrent debits never overspend, the
-- ledger always sums to the balance, and an Idempotency-Key moves money once
-- (through the test-only wallet routes of spec/fixtures).
local support = require "spec.support.host"
local http = require "spec.support.http"

local function new_user(host, tokens)
  local res = host:request("POST", "/test/wallet/users", { tokens = tokens })
  assert.equal(201, res.status, res.body)
  return res.json.id
end

local function state(host, id)
  return host:request("GET", "/test/wallet/" .. id).json
end

describe("wallet", function()
  local host
  setup(function() host = support.start { WORKERS = "2", DB_POOL_SIZE = "8" } end)
  teardown(function() host:stop() end)

  it("grants the initial balance with an initial_grant ledger row", function()
    local id = new_user(host, 200)
    local s = state(host, id)
    assert.equal(200, s.balances.tokens)
    assert.same({ sum = 200, rows = 1 }, s.ledger.tokens)
  end)

  it("lets exactly 50 of 100 concurrent debits of 10 through a balance of 500", function()
    local id = new_user(host, 500)
    local res = http.concurrent(host.port, 100, "POST", "/test/wallet/" .. id .. "/change", { amount = -10 })
    local ok, short = 0, 0
    for _, r in ipairs(res) do
      if r.status == 200 then
        ok = ok + 1
      else
        assert.equal(400, r.status, r.body)
        assert.equal("토큰이 부족합니다", r.json.detail)
        short = short + 1
      end
    end
    assert.equal(50, ok)
    assert.equal(50, short)
    local s = state(host, id)
    assert.equal(0, s.balances.tokens)
    assert.equal(0, s.ledger.tokens.sum)
    assert.equal(51, s.ledger.tokens.rows) -- the grant and 50 debits, no row for a refusal
  end)

  it("moves money once for one Idempotency-Key sent 20 times at once", function()
    local id = new_user(host, 100)
    local res = http.concurrent(host.port, 20, "POST", "/test/wallet/" .. id .. "/change", { amount = -30 },
      { ["Idempotency-Key"] = "spec-key-1" })
    local bodies, in_progress = {}, 0
    for _, r in ipairs(res) do
      if r.status == 200 then
        bodies[#bodies + 1] = r.body
      else
        assert.equal(409, r.status, r.body)
        assert.equal("A request with this Idempotency-Key is in progress", r.json.detail)
        in_progress = in_progress + 1
      end
    end
    assert.truthy(#bodies >= 1)
    for _, b in ipairs(bodies) do assert.same(http.json.decode(bodies[1]), http.json.decode(b)) end
    assert.equal(20, #bodies + in_progress)
    local s = state(host, id)
    assert.equal(70, s.balances.tokens)
    assert.equal(2, s.ledger.tokens.rows)
    -- a later retry replays the stored answer without moving money
    local again = host:request("POST", "/test/wallet/" .. id .. "/change", { amount = -30 },
      { ["Idempotency-Key"] = "spec-key-1" })
    assert.equal(200, again.status)
    assert.equal("true", again.headers["idempotent-replayed"])
    assert.same(http.json.decode(bodies[1]), again.json)
    assert.equal(70, state(host, id).balances.tokens)
  end)

  it("refuses a reused key for a different request, and a malformed key", function()
    local id = new_user(host, 100)
    local path = "/test/wallet/" .. id .. "/change"
    assert.equal(200, host:request("POST", path, { amount = -1 }, { ["Idempotency-Key"] = "k2" }).status)
    local other = host:request("POST", path, { amount = -2 }, { ["Idempotency-Key"] = "k2" })
    assert.equal(409, other.status)
    assert.equal("Idempotency-Key was already used for a different request", other.json.detail)
    local empty = host:request("POST", path, { amount = -1 }, { ["Idempotency-Key"] = "" })
    assert.equal(422, empty.status)
    assert.same({ "header", "Idempotency-Key" }, empty.json.detail[1].loc)
    local long = host:request("POST", path, { amount = -1 }, { ["Idempotency-Key"] = string.rep("k", 129) })
    assert.equal(422, long.status)
    assert.equal(99, state(host, id).balances.tokens)
  end)

  it("does not store a refused request, so its key can be retried", function()
    local id = new_user(host, 5)
    local path = "/test/wallet/" .. id .. "/change"
    local short = host:request("POST", path, { amount = -10 }, { ["Idempotency-Key"] = "k3" })
    assert.equal(400, short.status)
    assert.equal(200, host:request("POST", path, { amount = 10 }, { ["Idempotency-Key"] = "k4" }).status)
    local retry = host:request("POST", path, { amount = -10 }, { ["Idempotency-Key"] = "k3" })
    assert.equal(200, retry.status, retry.body)
    assert.is_nil(retry.headers["idempotent-replayed"])
    local s = state(host, id)
    assert.equal(5, s.balances.tokens)
    assert.equal(s.balances.tokens, s.ledger.tokens.sum)
  end)

  it("refuses a credit above 2^53-1 and a second credit of one reference, writing nothing", function()
    local id = new_user(host, 0)
    local path = "/test/wallet/" .. id .. "/change"
    -- raw JSON: lua-cjson would print the amount with 14 significant digits
    assert.equal(200, host:request("POST", path, '{"amount":9007199254740990,"currency":"gold"}').status)
    local over = host:request("POST", path, { amount = 2, currency = "gold" })
    assert.equal(400, over.status)
    assert.equal("Balance limit exceeded", over.json.detail)
    assert.equal(200, host:request("POST", path, { amount = 5, reference = "reward:1" }).status)
    local twice = host:request("POST", path, { amount = 5, reference = "reward:1" })
    assert.equal(409, twice.status)
    local s = state(host, id)
    assert.equal(9007199254740990, s.balances.gold)
    assert.equal(5, s.balances.tokens)
    assert.equal(1, s.ledger.tokens.rows)
  end)
end)
