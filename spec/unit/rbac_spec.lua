-- Unit specs for scripts/lib/rbac.lua: rank levels and the combined
-- rank/segment rule (CONTRACT.md §6).
package.path = "scripts/?.lua;" .. package.path

local rbac = require("lib.rbac")

describe("rbac.level", function()
  it("orders STANDARD < PREMIUM < VIP and gives anything else 0", function()
    assert.equal(1, rbac.level("STANDARD"))
    assert.equal(2, rbac.level("PREMIUM"))
    assert.equal(3, rbac.level("VIP"))
    assert.equal(0, rbac.level("vip")) -- exact, case-sensitive
    assert.equal(0, rbac.level("GOLD"))
    assert.equal(0, rbac.level(nil))
    assert.equal(0, rbac.level(3))
  end)
end)

describe("rbac.has_rank", function()
  it("passes at or above the required rank only", function()
    assert.is_true(rbac.has_rank("PREMIUM", "PREMIUM"))
    assert.is_true(rbac.has_rank("VIP", "PREMIUM"))
    assert.is_true(rbac.has_rank("VIP", "VIP"))
    assert.is_false(rbac.has_rank("STANDARD", "PREMIUM"))
    assert.is_false(rbac.has_rank("PREMIUM", "VIP"))
    assert.is_true(rbac.has_rank("STANDARD", "STANDARD"))
  end)

  it("never lets an unknown rank pass a known requirement", function()
    assert.is_false(rbac.has_rank("ADMIN", "STANDARD"))
    assert.is_false(rbac.has_rank(nil, "STANDARD"))
  end)
end)

describe("rbac.combined_access", function()
  it("answers the contract's examples", function()
    assert.is_true(rbac.combined_access("VIP", 3, "PREMIUM", 2))
    assert.is_false(rbac.combined_access("STANDARD", 5, "PREMIUM", 2))
    assert.is_false(rbac.combined_access("VIP", 1, "PREMIUM", 2))
  end)

  it("needs both checks, each inclusive at its bound", function()
    assert.is_true(rbac.combined_access("PREMIUM", 2, "PREMIUM", 2))
    assert.is_false(rbac.combined_access("PREMIUM", 1, "PREMIUM", 2))
    assert.is_false(rbac.combined_access("PREMIUM", 2, "VIP", 2))
    assert.is_true(rbac.combined_access("STANDARD", 0, "STANDARD", 0))
    assert.is_false(rbac.combined_access("GOLD", 9, "STANDARD", 0))
  end)

  it("counts absent segment levels as 0", function()
    assert.is_true(rbac.combined_access("VIP", nil, "VIP", nil))
    assert.is_true(rbac.combined_access("VIP", nil, "VIP", 0))
    assert.is_false(rbac.combined_access("VIP", nil, "VIP", 1))
    assert.is_true(rbac.combined_access("VIP", 1, "VIP", nil))
  end)

  it("always returns a boolean", function()
    assert.equal("boolean", type(rbac.combined_access("VIP", 3, "PREMIUM", 2)))
    assert.equal("boolean", type(rbac.combined_access("STANDARD", 3, "PREMIUM", 2)))
  end)
end)
