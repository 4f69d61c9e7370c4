-- Unit specs for scripts/lib/schema.lua: request validation shaped like
-- FastAPI/pydantic v2 422 errors (CONTRACT.md §1, §2).
package.path = "scripts/?.lua;" .. package.path

local schema = require("lib.schema")

local NULL = setmetatable({}, { __tostring = function() return "null" end })
local ARRAY = { __jsontype = "array" }
local function arr(t) return setmetatable(t, ARRAY) end

-- Returns the single error of validating input, failing when there is not exactly one.
local function one_error(compiled, input, where)
  local values, errs = schema.validate(compiled, input, where or "body")
  assert.is_nil(values)
  assert.are.equal(1, #errs)
  return errs[1]
end

local function field(spec, input, where)
  return one_error(schema.compile({ spec }), input, where)
end

local function ok(spec, input, where)
  local values, errs = schema.validate(schema.compile({ spec }), input, where or "body")
  assert.is_nil(errs)
  return values[spec.name]
end

describe("schema", function()
  local saved_null, saved_mt
  setup(function()
    saved_null, saved_mt = schema.null, schema.array_mt
    schema.null, schema.array_mt = NULL, ARRAY
  end)
  teardown(function()
    schema.null, schema.array_mt = saved_null, saved_mt
  end)

  local bet = { name = "bet_amount", type = "integer", required = true, ge = 10, le = 1000,
                aliases = { "betAmount" } }

  describe("validation table of CONTRACT.md §2", function()
    it("reports an absent required field as missing, without input", function()
      local e = field(bet, {})
      assert.are.same({ loc = { "body", "bet_amount" }, msg = "Field required", type = "missing" }, e)
    end)

    it("builds the json_invalid item with the byte offset", function()
      local e = schema.json_error(12, "Expecting value")
      assert.are.same({ "body", 12 }, e.loc)
      assert.are.equal("json_invalid", e.type)
      assert.are.equal("JSON decode error", e.msg)
      assert.are.same({ error = "Expecting value" }, e.ctx)
    end)

    it("rejects a body that is not an object", function()
      local c = schema.compile({ bet })
      for _, body in ipairs({ arr({ 1, 2 }), arr({}), "text", 5, true }) do
        local e = one_error(c, body)
        assert.are.same({ "body" }, e.loc)
        assert.are.equal("model_attributes_type", e.type)
        assert.are.equal("Input should be a valid dictionary or object to extract fields from", e.msg)
        assert.are.equal(body, e.input)
      end
    end)

    it("treats an empty plain table as an object", function()
      assert.are.equal("missing", one_error(schema.compile({ bet }), {}).type)
    end)

    it("int_parsing for a non-numeric string", function()
      local e = field(bet, { bet_amount = "ten" })
      assert.are.equal("int_parsing", e.type)
      assert.are.equal("Input should be a valid integer, unable to parse string as an integer", e.msg)
      assert.are.equal("ten", e.input)
      assert.are.equal("int_parsing", field(bet, { bet_amount = "1.5" }).type)
      assert.are.equal("int_parsing", field(bet, { bet_amount = "" }).type)
      assert.are.equal("int_parsing", field(bet, { bet_amount = "0x10" }).type)
    end)

    it("int_from_float for a number with a fraction", function()
      local e = field(bet, { bet_amount = 1.5 })
      assert.are.equal("int_from_float", e.type)
      assert.are.equal("Input should be a valid integer, got a number with a fractional part", e.msg)
      assert.are.equal(1.5, e.input)
    end)

    it("int_type for booleans, tables and null", function()
      for _, v in ipairs({ true, false, {}, arr({ 1 }), NULL }) do
        local e = field(bet, { bet_amount = v })
        assert.are.equal("int_type", e.type)
        assert.are.equal("Input should be a valid integer", e.msg)
        assert.are.equal(v, e.input)
      end
    end)

    it("finite_number for NaN and infinities", function()
      assert.are.equal("finite_number", field(bet, { bet_amount = 0 / 0 }).type)
      assert.are.equal("finite_number", field(bet, { bet_amount = math.huge }).type)
    end)

    it("float_parsing and float_type for numbers", function()
      local spec = { name = "x", type = "number" }
      local e = field(spec, { x = "abc" })
      assert.are.equal("float_parsing", e.type)
      assert.are.equal("Input should be a valid number, unable to parse string as a number", e.msg)
      e = field(spec, { x = true })
      assert.are.equal("float_type", e.type)
      assert.are.equal("Input should be a valid number", e.msg)
      assert.are.equal("float_type", field(spec, { x = NULL }).type)
      assert.are.equal("float_parsing", field(spec, { x = "nan" }).type)
    end)

    it("bool_parsing and bool_type for booleans", function()
      local spec = { name = "flag", type = "boolean" }
      local e = field(spec, { flag = "maybe" })
      assert.are.equal("bool_parsing", e.type)
      assert.are.equal("Input should be a valid boolean, unable to interpret input", e.msg)
      assert.are.equal("bool_parsing", field(spec, { flag = 2 }).type)
      e = field(spec, { flag = {} })
      assert.are.equal("bool_type", e.type)
      assert.are.equal("Input should be a valid boolean", e.msg)
    end)

    it("string_type for non-strings", function()
      local e = field({ name = "nickname", type = "string" }, { nickname = 42 })
      assert.are.equal("string_type", e.type)
      assert.are.equal("Input should be a valid string", e.msg)
      assert.are.equal(42, e.input)
    end)

    it("dict_type for objects and list_type for arrays", function()
      local e = field({ name = "data", type = "object" }, { data = arr({ 1 }) })
      assert.are.equal("dict_type", e.type)
      assert.are.equal("Input should be a valid dictionary", e.msg)
      assert.are.equal("dict_type", field({ name = "data", type = "object" }, { data = "x" }).type)
      e = field({ name = "items", type = "array" }, { items = { a = 1 } })
      assert.are.equal("list_type", e.type)
      assert.are.equal("Input should be a valid list", e.msg)
    end)

    it("greater_than_equal and less_than_equal with ctx", function()
      local e = field(bet, { bet_amount = 0 })
      assert.are.equal("greater_than_equal", e.type)
      assert.are.equal("Input should be greater than or equal to 10", e.msg)
      assert.are.same({ ge = 10 }, e.ctx)
      assert.are.equal(0, e.input)
      assert.are.equal("greater_than_equal", field(bet, { bet_amount = -1 }).type)
      e = field(bet, { bet_amount = 10 ^ 12 })
      assert.are.equal("less_than_equal", e.type)
      assert.are.equal("Input should be less than or equal to 1000", e.msg)
      assert.are.same({ le = 1000 }, e.ctx)
    end)

    it("string_too_short and string_too_long", function()
      local spec = { name = "site_id", type = "string", min_length = 3, max_length = 50 }
      local e = field(spec, { site_id = "ab" })
      assert.are.equal("string_too_short", e.type)
      assert.are.equal("String should have at least 3 characters", e.msg)
      assert.are.same({ min_length = 3 }, e.ctx)
      e = field(spec, { site_id = string.rep("a", 51) })
      assert.are.equal("string_too_long", e.type)
      assert.are.equal("String should have at most 50 characters", e.msg)
      e = field({ name = "k", type = "string", min_length = 1, max_length = 1 }, { k = "" })
      assert.are.equal("String should have at least 1 character", e.msg)
      e = field({ name = "k", type = "string", max_length = 1 }, { k = "ab" })
      assert.are.equal("String should have at most 1 character", e.msg)
    end)

    it("string_pattern_mismatch names the declared pattern", function()
      local spec = { name = "client_seed", type = "string", min_length = 1, max_length = 64,
                     pattern = "^[A-Za-z0-9_-]+$" }
      assert.are.equal("my_seed-01", ok(spec, { client_seed = "my_seed-01" }))
      local e = field(spec, { client_seed = "bad seed!" })
      assert.are.equal("string_pattern_mismatch", e.type)
      assert.are.equal("String should match pattern '^[A-Za-z0-9_-]+$'", e.msg)
      assert.are.same({ pattern = "^[A-Za-z0-9_-]+$" }, e.ctx)
    end)

    it("literal_error lists the allowed values", function()
      local spec = { name = "choice", type = "string", required = true, enum = { "rock", "paper", "scissors" } }
      local e = field(spec, { choice = "Rock" })
      assert.are.equal("literal_error", e.type)
      assert.are.equal("Input should be 'rock', 'paper' or 'scissors'", e.msg)
      assert.are.same({ expected = "'rock', 'paper' or 'scissors'" }, e.ctx)
      assert.are.equal("literal_error", field(spec, { choice = 1 }).type)
      assert.are.equal("literal_error", field(spec, { choice = NULL }).type)
      assert.are.equal("paper", ok(spec, { choice = "paper" }))
    end)
  end)

  describe("enum message formatting", function()
    it("uses 'a' or 'b' for two values and 'a' for one", function()
      assert.are.equal("Input should be 'a' or 'b'",
                       field({ name = "e", type = "string", enum = { "a", "b" } }, { e = "c" }).msg)
      assert.are.equal("Input should be 'a'", field({ name = "e", type = "string", enum = { "a" } }, { e = "c" }).msg)
      assert.are.equal([[Input should be "it's"]],
                       field({ name = "e", type = "string", enum = { "it's" } }, { e = "c" }).msg)
    end)
  end)

  describe("integers", function()
    it("accepts integers, zero-fraction numbers and digit strings", function()
      assert.are.equal(50, ok(bet, { bet_amount = 50 }))
      assert.are.equal(50, ok(bet, { bet_amount = 50.0 }))
      assert.are.equal(50, ok(bet, { bet_amount = "50" }))
      assert.are.equal(50, ok(bet, { bet_amount = " +50 " }))
      assert.are.equal(50, ok(bet, { bet_amount = "50.00" }))
      assert.are.equal("number", type(ok(bet, { bet_amount = "50" })))
    end)

    it("applies the implicit bound of 2^53-1", function()
      local spec = { name = "amount", type = "integer", ge = 1 }
      assert.are.equal(9007199254740991, ok(spec, { amount = 9007199254740991 }))
      local e = field(spec, { amount = 9007199254740992 })
      assert.are.equal("less_than_equal", e.type)
      assert.are.equal("Input should be less than or equal to 9007199254740991", e.msg)
      assert.are.same({ le = 9007199254740991 }, e.ctx)
      assert.are.equal("less_than_equal", field(spec, { amount = "99999999999999999999" }).type)
      e = field({ name = "delta", type = "integer" }, { delta = -9007199254740992 })
      assert.are.equal("Input should be greater than or equal to -9007199254740991", e.msg)
    end)

    it("keeps a smaller declared le and caps a larger one", function()
      assert.are.equal(1000, schema.compile({ bet }).fields[1].le)
      local c = schema.compile({ { name = "a", type = "integer", le = 2 ^ 60 } })
      assert.are.equal(9007199254740991, c.fields[1].le)
      assert.are.equal("less_than_equal", one_error(c, { a = 2 ^ 54 }).type)
    end)
  end)

  describe("numbers and booleans", function()
    it("parses numeric strings and formats non-integer bounds shortest", function()
      local spec = { name = "m", type = "number", ge = 1.01, le = 1000 }
      assert.are.equal(2.5, ok(spec, { m = "2.5" }))
      assert.are.equal(3, ok(spec, { m = 3 }))
      assert.are.equal(100, ok(spec, { m = "1e2" }))
      assert.are.equal("Input should be greater than or equal to 1.01", field(spec, { m = 1 }).msg)
    end)

    it("reads the pydantic boolean strings case-insensitively and 0/1", function()
      local spec = { name = "b", type = "boolean" }
      for _, s in ipairs({ "true", "TRUE", "1", "yes", "On", "t", "y" }) do
        assert.are.equal(true, ok(spec, { b = s }))
      end
      for _, s in ipairs({ "false", "False", "0", "no", "OFF", "f", "n" }) do
        assert.are.equal(false, ok(spec, { b = s }))
      end
      assert.are.equal(true, ok(spec, { b = 1 }))
      assert.are.equal(false, ok(spec, { b = 0 }))
      assert.are.equal(false, ok(spec, { b = false }))
    end)
  end)

  describe("strings", function()
    it("counts code points, not bytes", function()
      local spec = { name = "nickname", type = "string", min_length = 2, max_length = 20 }
      local korean = string.rep("가", 20)
      assert.are.equal(60, #korean)
      assert.are.equal(korean, ok(spec, { nickname = korean }))
      assert.are.equal("string_too_long", field(spec, { nickname = korean .. "나" }).type)
      assert.are.equal("토큰", ok({ name = "n", type = "string", min_length = 2, max_length = 2 }, { n = "토큰" }))
      assert.are.equal("string_too_short", field({ name = "n", type = "string", min_length = 3 }, { n = "토큰" }).type)
    end)
  end)

  describe("patterns", function()
    local function compiled(p) return schema.compile({ { name = "s", type = "string", pattern = p } }) end
    local function matches(p, s) return (schema.validate(compiled(p), { s = s }, "body")) ~= nil end

    it("compiles the ERE subset into Lua patterns", function()
      assert.are.equal("^[A-Z][A-Z0-9%_]*$", compiled("^[A-Z][A-Z0-9_]*$").fields[1].lua_pattern)
      assert.is_true(matches("^[A-Z][A-Z0-9_]*$", "SLOT_SPIN2"))
      assert.is_false(matches("^[A-Z][A-Z0-9_]*$", "slot"))
      assert.is_true(matches("^[!-~]+$", "Key-123/~"))
      assert.is_false(matches("^[!-~]+$", "has space"))
      assert.is_true(matches("^a\\.b?c*$", "a."))
      assert.is_false(matches("^a\\.b?c*$", "axb"))
      assert.is_true(matches("^[^0-9]+$", "abc"))
      assert.is_false(matches("^[^0-9]+$", "a1"))
      assert.is_true(matches("^[[:digit:]]+$", "123"))
      assert.is_true(matches("^[]a]$", "]"))
      assert.is_true(matches("^[%-/]$", "."))
      assert.is_true(matches("^a.c$", "abc"))
      assert.is_false(matches("^a.c$", "a\nc"))
    end)

    it("searches when unanchored, like pydantic", function()
      assert.is_true(matches("b+", "abbc"))
      assert.is_false(matches("b+", "ac"))
    end)

    it("rejects unsupported syntax at compile time", function()
      for _, p in ipairs({ "(a|b)", "a|b", "^a{2}$", "^\\d+$", "*a", "a**", "a^", "a$b", "[abc", "[z-a]",
                           "[[=a=]]", "토큰" }) do
        assert.has_error(function() compiled(p) end)
      end
      local okc, err = pcall(compiled, "(a|b)")
      assert.is_false(okc)
      assert.matches("field 's'", err, 1, true)
    end)
  end)

  describe("several errors", function()
    it("reports every error in declaration order", function()
      local c = schema.compile({
        { name = "site_id", type = "string", required = true, min_length = 3 },
        { name = "nickname", type = "string", required = true },
        bet,
        { name = "choice", type = "string", enum = { "rock", "paper", "scissors" } },
      })
      local values, errs = schema.validate(c, { choice = "lizard", betAmount = "x", site_id = "a" }, "body")
      assert.is_nil(values)
      assert.are.equal(4, #errs)
      assert.are.same({ "body", "site_id" }, errs[1].loc)
      assert.are.equal("string_too_short", errs[1].type)
      assert.are.same({ "body", "nickname" }, errs[2].loc)
      assert.are.equal("missing", errs[2].type)
      assert.are.same({ "body", "betAmount" }, errs[3].loc)
      assert.are.equal("int_parsing", errs[3].type)
      assert.are.same({ "body", "choice" }, errs[4].loc)
      assert.are.equal("literal_error", errs[4].type)
    end)

    it("reports at most one error per field", function()
      local spec = { name = "s", type = "string", min_length = 5, pattern = "^[0-9]+$" }
      local _, errs = schema.validate(schema.compile({ spec }), { s = "ab" }, "body")
      assert.are.equal(1, #errs)
      assert.are.equal("string_too_short", errs[1].type)
    end)

    it("wraps errors in the FastAPI body", function()
      local _, errs = schema.validate(schema.compile({ bet }), {}, "body")
      assert.are.same({ detail = errs }, schema.error_body(errs))
    end)
  end)

  describe("aliases", function()
    local c = schema.compile({ bet })

    it("accepts the camelCase spelling under the snake_case name", function()
      local values = schema.validate(c, { betAmount = 20 }, "body")
      assert.are.same({ bet_amount = 20 }, values)
    end)

    it("lets the snake_case name win when both are present", function()
      local values = schema.validate(c, { betAmount = 20, bet_amount = 30 }, "body")
      assert.are.equal(30, values.bet_amount)
      local e = one_error(c, { betAmount = 20, bet_amount = 5 })
      assert.are.same({ "body", "bet_amount" }, e.loc)
    end)

    it("names the field as the client spelled it", function()
      assert.are.same({ "body", "betAmount" }, one_error(c, { betAmount = 5 }).loc)
      assert.are.same({ "body", "bet_amount" }, one_error(c, {}).loc)
    end)

    it("takes the first alias present in list order", function()
      local crash = schema.compile({ { name = "auto_cashout_multiplier", type = "number", nullable = true,
                                       aliases = { "auto_cashout", "autoCashoutMultiplier", "autoCashout" } } })
      local values = schema.validate(crash, { autoCashout = 3, autoCashoutMultiplier = 2 }, "body")
      assert.are.equal(2, values.auto_cashout_multiplier)
      local e = one_error(crash, { autoCashout = 3, auto_cashout = "x" })
      assert.are.same({ "body", "auto_cashout" }, e.loc)
    end)
  end)

  describe("values", function()
    it("drops unknown fields and applies defaults", function()
      local c = schema.compile({
        { name = "pull_count", type = "integer", ge = 1, le = 10, default = 1, aliases = { "pullCount" } },
        { name = "gacha_id", type = "string", aliases = { "gachaId" } },
        { name = "data", type = "object", default = {} },
      })
      local values = schema.validate(c, { extra = 1, rank = "VIP" }, "body")
      assert.are.same({ pull_count = 1, data = {} }, values)
      local again = schema.validate(c, {}, "body")
      assert.are_not.equal(values.data, again.data)
      assert.are.equal(3, schema.validate(c, { pullCount = "3" }, "body").pull_count)
    end)

    it("returns schema.null for an explicit null of a nullable field and nil when absent", function()
      local c = schema.compile({ { name = "segment", type = "string", nullable = true, max_length = 32 } })
      assert.are.equal(NULL, schema.validate(c, { segment = NULL }, "body").segment)
      assert.is_nil(schema.validate(c, {}, "body").segment)
      assert.are.equal("string_type", field({ name = "segment", type = "string" }, { segment = NULL }).type)
    end)

    it("treats an absent body as empty unless a field is required; a JSON null body is not an object", function()
      local opt = schema.compile({ { name = "is_active", type = "boolean", default = true } })
      assert.are.same({ is_active = true }, schema.validate(opt, nil, "body"))
      local _, errs = schema.validate(opt, NULL, "body")
      assert.are.equal("model_attributes_type", errs[1].type)
      assert.are.same({ "body" }, errs[1].loc)
      local e = one_error(schema.compile({ bet }), nil)
      assert.are.same({ loc = { "body" }, msg = "Field required", type = "missing" }, e)
    end)
  end)

  it("refuses a string holding NUL, which PostgreSQL text cannot store", function()
    local c = schema.compile({ { name = "nickname", type = "string", max_length = 50 } })
    local _, errs = schema.validate(c, { nickname = "a\0b" }, "body")
    assert.are.equal("value_error", errs[1].type)
    assert.are.same({ "body", "nickname" }, errs[1].loc)
    assert.are.same({ nickname = "ab" }, schema.validate(c, { nickname = "ab" }, "body"))
  end)

  describe("nested arrays and objects", function()
    local c = schema.compile({
      { name = "items", type = "array", required = true, min_length = 1, max_length = 3,
        items = { type = "object", fields = {
          { name = "user_id", type = "integer", required = true, ge = 1 },
          { name = "amount", type = "integer", required = true, ge = 1 },
        } } },
    })

    it("validates every element with an index in loc", function()
      local values = schema.validate(c, { items = arr({ { user_id = 1, amount = "5", x = 1 } }) }, "body")
      assert.are.same({ items = { { user_id = 1, amount = 5 } } }, values)
      assert.are.equal(ARRAY, getmetatable(values.items))
      local _, errs = schema.validate(c, { items = arr({ { user_id = 1, amount = 1 }, { user_id = 0 } }) }, "body")
      assert.are.equal(2, #errs)
      assert.are.same({ "body", "items", 1, "user_id" }, errs[1].loc)
      assert.are.same({ "body", "items", 1, "amount" }, errs[2].loc)
    end)

    it("checks the item count", function()
      local e = one_error(c, { items = arr({ {}, {}, {}, {} }) })
      assert.are.equal("too_long", e.type)
      assert.are.equal("List should have at most 3 items after validation, not 4", e.msg)
      e = one_error(c, { items = {} })
      assert.are.equal("too_short", e.type)
      assert.are.equal("List should have at least 1 item after validation, not 0", e.msg)
    end)
  end)

  describe("query, path and header parameters", function()
    it("parses strings per type", function()
      local c = schema.compile({
        { name = "limit", type = "integer", ge = 1, le = 100, default = 20 },
        { name = "unread_only", type = "boolean", default = false },
        { name = "status", type = "string", enum = { "active", "cashed", "crashed", "expired" } },
      })
      assert.are.same({ limit = 5, unread_only = true, status = "active" },
                      schema.validate(c, { limit = "5", unread_only = "true", status = "active" }, "query"))
      assert.are.same({ limit = 20, unread_only = false }, schema.validate(c, nil, "query"))
      local _, errs = schema.validate(c, { limit = "0", unread_only = "maybe", status = "done" }, "query")
      assert.are.same({ "query", "limit" }, errs[1].loc)
      assert.are.equal("greater_than_equal", errs[1].type)
      assert.are.same({ "query", "unread_only" }, errs[2].loc)
      assert.are.equal("bool_parsing", errs[2].type)
      assert.are.same({ "query", "status" }, errs[3].loc)
      assert.are.equal("literal_error", errs[3].type)
    end)

    it("validates typed path parameters", function()
      local c = schema.compile({ { name = "user_id", type = "integer", required = true, ge = 1 } })
      assert.are.same({ user_id = 7 }, schema.validate(c, { user_id = "7" }, "path"))
      local e = one_error(c, { user_id = "me" }, "path")
      assert.are.same({ "path", "user_id" }, e.loc)
      assert.are.equal("int_parsing", e.type)
      assert.are.equal("me", e.input)
    end)

    it("matches header names case-insensitively and names them as declared", function()
      local c = schema.compile({ { name = "Idempotency-Key", type = "string", min_length = 1, max_length = 128,
                                   pattern = "^[!-~]+$" } })
      assert.are.equal("k1", schema.validate(c, { ["idempotency-key"] = "k1" }, "header")["Idempotency-Key"])
      local e = one_error(c, { ["idempotency-key"] = "" }, "header")
      assert.are.same({ "header", "Idempotency-Key" }, e.loc)
      assert.are.equal("string_too_short", e.type)
      assert.are.equal("string_pattern_mismatch", one_error(c, { ["IDEMPOTENCY-KEY"] = "a b" }, "header").type)
    end)

    it("raises on an unknown location or an uncompiled schema", function()
      assert.has_error(function() schema.validate(schema.compile({ bet }), {}, "cookie") end)
      assert.has_error(function() schema.validate({ bet }, {}, "body") end)
    end)
  end)

  describe("declarations", function()
    local function bad(spec, needle)
      local okc, err = pcall(schema.compile, { spec })
      assert.is_false(okc)
      assert.matches(needle, err, 1, true)
    end

    it("raises naming the field for bad specs", function()
      bad({ name = "x", type = "int" }, "field 'x': unknown type 'int'")
      bad({ name = "x", type = "integer", minimum = 1 }, "field 'x': unknown key 'minimum'")
      bad({ name = "x", type = "string", ge = 1 }, "field 'x': key 'ge' does not apply to type string")
      bad({ name = "x", type = "integer", ge = 5, le = 1 }, "field 'x': ge exceeds le")
      bad({ name = "x", type = "string", min_length = -1 }, "field 'x': min_length must be")
      bad({ name = "x", type = "string", enum = {} }, "field 'x': enum must be a non-empty list")
      bad({ name = "x", type = "integer", default = "20" }, "field 'x': default is invalid")
      bad({ name = "x", type = "integer", required = true, default = 1 }, "field 'x': a required field")
      bad({ name = "x", type = "string", required = "yes" }, "field 'x': required must be a boolean")
      bad({ type = "string" }, "name must be a non-empty string")
      bad({ name = "x", type = "array", items = { type = "integer", required = true } }, "field 'x[]'")
    end)

    it("raises on duplicate names or aliases", function()
      local okc, err = pcall(schema.compile, { { name = "a", type = "string" },
                                               { name = "b", type = "string", aliases = { "a" } } })
      assert.is_false(okc)
      assert.matches("duplicate name or alias 'a'", err, 1, true)
    end)
  end)

  describe("OpenAPI helpers", function()
    it("describes properties, limits and required fields", function()
      local c = schema.compile({
        bet,
        { name = "choice", type = "string", required = true, enum = { "rock", "paper" }, description = "hand" },
        { name = "seed", type = "string", min_length = 1, max_length = 64, pattern = "^[a-z]+$", nullable = true },
        { name = "n", type = "number", ge = 1.01 },
        { name = "tags", type = "array", max_length = 5, items = { type = "string" } },
      })
      local s = schema.to_openapi(c)
      assert.are.equal("object", s.type)
      assert.are.same({ "bet_amount", "choice" }, s.required)
      assert.are.same({ type = "integer", minimum = 10, maximum = 1000 }, s.properties.bet_amount)
      assert.are.same({ type = "string", enum = { "rock", "paper" }, description = "hand" }, s.properties.choice)
      assert.are.same({ type = { "string", "null" }, minLength = 1, maxLength = 64, pattern = "^[a-z]+$" },
                      s.properties.seed)
      assert.are.same({ type = "number", minimum = 1.01 }, s.properties.n)
      assert.are.same({ type = "array", maxItems = 5, items = { type = "string" } }, s.properties.tags)
    end)

    it("lists parameters in declaration order", function()
      local c = schema.compile({ { name = "page", type = "integer", ge = 1, default = 1 },
                                 { name = "q", type = "string" } })
      local p = schema.to_parameters(c, "query")
      assert.are.equal(2, #p)
      assert.are.equal("page", p[1].name)
      assert.are.equal("query", p[1]["in"])
      assert.is_false(p[1].required)
      assert.are.equal(1, p[1].schema.default)
      assert.is_true(schema.to_parameters(c, "path")[2].required)
    end)
  end)
end)
