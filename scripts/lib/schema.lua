--[[ schema.lua - request validation for route declarations.

A route declares its body, query, path and header parameters as ordered lists
of field specs. The same declaration drives validation (errors in declaration
order, shaped like FastAPI/pydantic v2 lax mode: CONTRACT.md §2) and the
OpenAPI document, so the two cannot drift apart. Pure Lua, no I/O: it runs in
the host sandbox and under busted alike.

Field spec keys:
  name         snake_case name; the key of the field in the validated values
  type         "integer" | "number" | "string" | "boolean" | "object" | "array" | "any"
  required     boolean (default false); absent -> "missing"
  default      value used when the field is absent (tables are deep-copied)
  nullable     boolean; a JSON null is then accepted and returned as schema.null
               (absent stays nil, so a PATCH can tell "set to null" from "unchanged")
  ge, le       inclusive bounds (integer, number). Integers always also get
               -(2^53-1) <= v <= 2^53-1 (money amounts, CONTRACT.md §1)
  min_length, max_length   string: Unicode code points; array: item count
  pattern      POSIX ERE subset, compiled once into a Lua pattern (see below)
  enum         list of allowed strings (type string); any other input,
               whatever its type, is a literal_error like pydantic's Literal
  aliases      other accepted spellings; the name wins when present, else the
               first alias present in list order; errors name the spelling used
  items        (array) spec of every element, without name/required/default/aliases
  fields       (object) list of field specs of the nested object
  description, example     documentation only (OpenAPI)

Pattern subset: leading ^, trailing $, literal ASCII characters, escaped
punctuation (\. \- ...), `.` (any byte but newline), bracket classes with
ranges, negation and [:alpha:]-style classes, and * + ? after one atom.
Alternation, groups, intervals, \d-style escapes and non-ASCII raise at
compile time. Like pydantic the pattern searches (unanchored unless ^/$).
Matching is bytewise: `.` and negated classes match one byte, which differs
from a code point only for non-ASCII input without a * or + quantifier.

Host integration: the host sets schema.null = json.null so JSON nulls are
recognised, and schema.array_mt = the JSON array metatable when it has one.
A table is an array when t[1] ~= nil or it carries the array metatable (any
metatable when schema.array_mt is unset); an empty plain table is an object,
and is also accepted where an array is expected.
]]

local M = {}

local floor, huge = math.floor, math.huge
local byte, sub, find, match, format = string.byte, string.sub, string.find, string.match, string.format
local concat = table.concat

local MAX_SAFE = 9007199254740991 -- 2^53 - 1

M.null = setmetatable({}, { __tostring = function() return "schema.null" end })
M.array_mt = nil

local Compiled = {} -- metatable marking compiled schemas

local TYPES = { integer = true, number = true, string = true, boolean = true,
                object = true, array = true, any = true }

-- key -> types it applies to (true = every type)
local KEYS = {
  name = true, type = true, required = true, default = true, nullable = true,
  aliases = true, description = true, example = true,
  ge = { integer = true, number = true }, le = { integer = true, number = true },
  min_length = { string = true, array = true }, max_length = { string = true, array = true },
  pattern = { string = true }, enum = { string = true },
  items = { array = true }, fields = { object = true },
}

local ITEM_FORBIDDEN = { required = true, default = true, aliases = true }

local WHERE = { body = true, query = true, path = true, header = true }

local TYPE_ERRORS = {
  integer = { "int_type", "Input should be a valid integer" },
  number = { "float_type", "Input should be a valid number" },
  string = { "string_type", "Input should be a valid string" },
  boolean = { "bool_type", "Input should be a valid boolean" },
  object = { "dict_type", "Input should be a valid dictionary" },
  array = { "list_type", "Input should be a valid list" },
}

local TRUE_STRINGS = { ["1"] = true, on = true, t = true, ["true"] = true, y = true, yes = true }
local FALSE_STRINGS = { ["0"] = true, off = true, f = true, ["false"] = true, n = true, no = true }

local POSIX_CLASSES = { alpha = "%a", digit = "%d", alnum = "%w", upper = "%u", lower = "%l",
                        space = "%s", punct = "%p", xdigit = "%x", cntrl = "%c" }

------------------------------------------------------------------ helpers

local function is_null(v)
  return v == M.null
end

local function is_array(t)
  if rawget(t, 1) ~= nil then return true end
  local mt = getmetatable(t)
  if mt == nil then return false end
  return M.array_mt == nil or mt == M.array_mt
end

local function is_object(v)
  return type(v) == "table" and not is_null(v) and not is_array(v)
end

local function copy(v)
  if type(v) ~= "table" or is_null(v) then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return setmetatable(t, getmetatable(v))
end

local function append(loc, key)
  local t = {}
  for i = 1, #loc do t[i] = loc[i] end
  t[#t + 1] = key
  return t
end

-- Numbers in messages: integers without ".0", others in the shortest form
-- that reads back exactly (as Python's repr).
local function fmt_num(n)
  if n == floor(n) and n > -2 ^ 63 and n < 2 ^ 63 then return format("%.0f", n) end
  for p = 15, 17 do
    local s = format("%." .. p .. "g", n)
    if tonumber(s) == n then return s end
  end
  return tostring(n)
end

local function plural(n, word)
  return n == 1 and (n .. " " .. word) or (n .. " " .. word .. "s")
end

-- Python repr() of a string, as pydantic prints Literal values.
local function py_repr(s)
  if find(s, "'", 1, true) and not find(s, '"', 1, true) then return '"' .. s .. '"' end
  return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'"
end

-- Unicode code points of s; each byte of an invalid sequence counts as one.
local function utf8_len(s)
  local i, n, count = 1, #s, 0
  while i <= n do
    local c = byte(s, i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2
      or (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4 or 1
    for j = i + 1, i + len - 1 do
      local d = byte(s, j)
      if not d or d < 0x80 or d > 0xBF then len = 1 break end
    end
    i = i + len
    count = count + 1
  end
  return count
end

local function trim(s)
  return match(s, "^%s*(.-)%s*$")
end

------------------------------------------------------------------ patterns

-- One ASCII character as a literal Lua pattern item.
local function lit(c)
  if find(c, "^%w$") then return c end
  return "%" .. c
end

local function check_char(c, pat)
  local b = byte(c)
  if b < 0x20 or b >= 0x7F then
    return nil, "pattern '" .. pat .. "': only printable ASCII is supported"
  end
  return true
end

-- Reads one (possibly escaped) bracket character at i; returns it and the next index.
local function bracket_char(p, i)
  local c = sub(p, i, i)
  if c == "\\" then
    c = sub(p, i + 1, i + 1)
    if c == "" or find(c, "^%w$") then return nil, "pattern '" .. p .. "': unsupported escape" end
    i = i + 1
  end
  local ok, err = check_char(c, p)
  if not ok then return nil, err end
  return c, i + 1
end

local RANGE_UNSAFE = { ["%"] = true, ["]"] = true, ["^"] = true, ["-"] = true }

-- Translates the bracket expression starting at p[i] == "["; returns the Lua
-- set and the index after its closing "]".
local function compile_bracket(p, i)
  local items, j, n = {}, i + 1, #p
  local neg = sub(p, j, j) == "^"
  if neg then j = j + 1 end
  local first = true
  while true do
    if j > n then return nil, "pattern '" .. p .. "': unterminated '['" end
    local c = sub(p, j, j)
    if c == "]" and not first then break end
    first = false
    if c == "[" and find(p, "^[:.=]", j + 1) then
      local name, e = match(p, "^%[:(%a+):%]()", j)
      if not POSIX_CLASSES[name] then
        return nil, "pattern '" .. p .. "': unsupported bracket class at " .. j
      end
      items[#items + 1] = POSIX_CLASSES[name]
      j = e
    else
      local lo, hi, nexti
      lo, nexti = bracket_char(p, j)
      if not lo then return nil, nexti end
      j = nexti
      if sub(p, j, j) == "-" and j + 1 <= n and sub(p, j + 1, j + 1) ~= "]" then
        hi, nexti = bracket_char(p, j + 1)
        if not hi then return nil, nexti end
        j = nexti
        if byte(lo) > byte(hi) then return nil, "pattern '" .. p .. "': invalid range " .. lo .. "-" .. hi end
        if RANGE_UNSAFE[lo] or RANGE_UNSAFE[hi] then
          for b = byte(lo), byte(hi) do items[#items + 1] = lit(string.char(b)) end
        else
          items[#items + 1] = lo .. "-" .. hi
        end
      else
        items[#items + 1] = lit(lo)
      end
    end
  end
  return "[" .. (neg and "^" or "") .. concat(items) .. "]", j + 1
end

-- Compiles the ERE subset described at the top into a Lua pattern, or
-- returns nil and a message naming what is unsupported.
local function compile_pattern(p)
  local out, i, n = {}, 1, #p
  local quantifiable = false
  if sub(p, 1, 1) == "^" then out[1] = "^" i = 2 end
  while i <= n do
    local c = sub(p, i, i)
    local atom
    if c == "*" or c == "+" or c == "?" then
      if not quantifiable then
        return nil, "pattern '" .. p .. "': quantifier '" .. c .. "' must follow a single character or class"
      end
      out[#out + 1] = c
      quantifiable = false
      i = i + 1
    elseif c == "$" then
      if i ~= n then return nil, "pattern '" .. p .. "': '$' is supported only at the end" end
      out[#out + 1] = "$"
      quantifiable = false
      i = i + 1
    elseif c == "^" then
      return nil, "pattern '" .. p .. "': '^' is supported only at the start"
    elseif c == "|" or c == "(" or c == ")" or c == "{" or c == "}" then
      return nil, "pattern '" .. p .. "': '" .. c .. "' is not supported (no alternation, groups or intervals)"
    elseif c == "\\" then
      local e = sub(p, i + 1, i + 1)
      if e == "" or find(e, "^%w$") then
        return nil, "pattern '" .. p .. "': unsupported escape '\\" .. e .. "'"
      end
      local ok, err = check_char(e, p)
      if not ok then return nil, err end
      atom, i = lit(e), i + 2
    elseif c == "[" then
      atom, i = compile_bracket(p, i)
      if not atom then return nil, i end
    elseif c == "." then
      atom, i = "[^\n]", i + 1
    else
      local ok, err = check_char(c, p)
      if not ok then return nil, err end
      atom, i = lit(c), i + 1
    end
    if atom then
      out[#out + 1] = atom
      quantifiable = true
    end
  end
  return concat(out)
end

------------------------------------------------------------------ value checks

local function fail(t, msg, ctx)
  return nil, { type = t, msg = msg, ctx = ctx }
end

local function check_bounds(f, n)
  if f.ge and n < f.ge then
    return fail("greater_than_equal", "Input should be greater than or equal to " .. fmt_num(f.ge), { ge = f.ge })
  end
  if f.le and n > f.le then
    return fail("less_than_equal", "Input should be less than or equal to " .. fmt_num(f.le), { le = f.le })
  end
  return n
end

local function not_finite()
  return fail("finite_number", "Input should be a finite number")
end

local function check_integer(f, v)
  local n
  if type(v) == "number" then
    if v ~= v or v == huge or v == -huge then return not_finite() end
    if v ~= floor(v) then
      return fail("int_from_float", "Input should be a valid integer, got a number with a fractional part")
    end
    n = v
  elseif type(v) == "string" then
    local s = trim(v)
    local digits = match(s, "^[+-]?%d+$") or match(s, "^([+-]?%d+)%.0*$")
    if not digits then
      return fail("int_parsing", "Input should be a valid integer, unable to parse string as an integer")
    end
    n = tonumber(digits)
  else
    return fail(TYPE_ERRORS.integer[1], TYPE_ERRORS.integer[2])
  end
  if n == 0 then n = 0 end -- no -0
  return check_bounds(f, n)
end

local function parse_decimal(s)
  s = trim(s)
  local mant = match(s, "^(.-)[eE][+-]?%d+$") or s
  if find(mant, "^[+-]?%d+%.?%d*$") or find(mant, "^[+-]?%.%d+$") then return tonumber(s) end
end

local function check_number(f, v)
  local n = v
  if type(v) == "string" then
    n = parse_decimal(v)
    if not n then return fail("float_parsing", "Input should be a valid number, unable to parse string as a number") end
  elseif type(v) ~= "number" then
    return fail(TYPE_ERRORS.number[1], TYPE_ERRORS.number[2])
  end
  if n ~= n or n == huge or n == -huge then return not_finite() end
  if n == 0 then n = 0 end
  return check_bounds(f, n)
end

local function check_boolean(_, v)
  if type(v) == "boolean" then return v end
  if type(v) == "number" then
    if v == 0 or v == 1 then return v == 1 end
  elseif type(v) == "string" then
    local s = v:lower()
    if TRUE_STRINGS[s] then return true end
    if FALSE_STRINGS[s] then return false end
  else
    return fail(TYPE_ERRORS.boolean[1], TYPE_ERRORS.boolean[2])
  end
  return fail("bool_parsing", "Input should be a valid boolean, unable to interpret input")
end

local function check_string(f, v)
  if type(v) ~= "string" then return fail(TYPE_ERRORS.string[1], TYPE_ERRORS.string[2]) end
  -- PostgreSQL text cannot hold NUL: refuse it here (422) rather than fail
  -- in the database (500). pydantic's shape for a custom check.
  if find(v, "\0", 1, true) then return fail("value_error", "Value error, String must not contain NUL characters") end
  if f.min_length or f.max_length then
    local len = utf8_len(v)
    if f.min_length and len < f.min_length then
      return fail("string_too_short", "String should have at least " .. plural(f.min_length, "character"),
                  { min_length = f.min_length })
    end
    if f.max_length and len > f.max_length then
      return fail("string_too_long", "String should have at most " .. plural(f.max_length, "character"),
                  { max_length = f.max_length })
    end
  end
  if f.lua_pattern and not find(v, f.lua_pattern) then
    return fail("string_pattern_mismatch", "String should match pattern '" .. f.pattern .. "'",
                { pattern = f.pattern })
  end
  return v
end

local validate_fields -- forward

-- Validates v (not nil) against compiled field f; appends errors at loc and
-- returns the value, or nil when v is invalid.
local function validate_value(f, v, loc, errors)
  local val, e
  if is_null(v) and (f.nullable or f.type == "any") then
    return v
  elseif f.enum then
    if f.enum_set[v] then return v end
    val, e = fail("literal_error", "Input should be " .. f.enum_expected, { expected = f.enum_expected })
  elseif is_null(v) then
    val, e = fail(TYPE_ERRORS[f.type][1], TYPE_ERRORS[f.type][2])
  elseif f.type == "integer" then
    val, e = check_integer(f, v)
  elseif f.type == "number" then
    val, e = check_number(f, v)
  elseif f.type == "boolean" then
    val, e = check_boolean(f, v)
  elseif f.type == "string" then
    val, e = check_string(f, v)
  elseif f.type == "object" then
    if not is_object(v) then
      val, e = fail(TYPE_ERRORS.object[1], TYPE_ERRORS.object[2])
    elseif f.fields then
      return validate_fields(f.fields, v, loc, errors)
    else
      return v
    end
  elseif f.type == "array" then
    if type(v) ~= "table" or is_null(v) or not (is_array(v) or next(v) == nil) then
      val, e = fail(TYPE_ERRORS.array[1], TYPE_ERRORS.array[2])
    else
      local n = #v
      if f.min_length and n < f.min_length then
        val, e = fail("too_short", "List should have at least " .. plural(f.min_length, "item")
                      .. " after validation, not " .. n,
                      { field_type = "List", min_length = f.min_length, actual_length = n })
      elseif f.max_length and n > f.max_length then
        val, e = fail("too_long", "List should have at most " .. plural(f.max_length, "item")
                      .. " after validation, not " .. n,
                      { field_type = "List", max_length = f.max_length, actual_length = n })
      elseif f.items then
        local out, before = setmetatable({}, getmetatable(v)), #errors
        for i = 1, n do
          out[i] = validate_value(f.items, v[i], append(loc, i - 1), errors)
        end
        if #errors > before then return nil end
        return out
      else
        return v
      end
    end
  else -- any
    return v
  end
  if e then
    e.loc, e.input = loc, v
    errors[#errors + 1] = e
    return nil
  end
  return val
end

-- Looks the field up under its spellings; returns the value and the spelling.
local function lookup(f, input, folded)
  for _, key in ipairs(f.spellings) do
    local v
    if folded then v = folded[key:lower()] else v = rawget(input, key) end
    if v ~= nil then return v, key end
  end
end

-- Validates the object input against compiled fields; returns a new table of
-- values, or nil when an error was appended.
function validate_fields(compiled, input, prefix, errors, folded)
  local values, before = {}, #errors
  for _, f in ipairs(compiled.fields) do
    local v, spelled = lookup(f, input, folded)
    if v == nil then
      if f.required then
        errors[#errors + 1] = { loc = append(prefix, f.name), msg = "Field required", type = "missing" }
      elseif f.default ~= nil then
        values[f.name] = copy(f.default)
      end
    else
      values[f.name] = validate_value(f, v, append(prefix, spelled), errors)
    end
  end
  if #errors > before then return nil end
  return values
end

------------------------------------------------------------------ compile

local compile_schema -- forward

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function is_count(v)
  return type(v) == "number" and v >= 0 and v == floor(v) and v < huge
end

local function is_finite(v)
  return type(v) == "number" and v == v and v > -huge and v < huge
end

-- Compiles one field spec; `label` names it in error messages; item specs
-- (is_item) have no name. Returns the compiled field or nil, err.
local function compile_field(spec, label, is_item)
  local function bad(msg) return nil, "schema: field '" .. label .. "': " .. msg end
  if type(spec) ~= "table" then return bad("spec must be a table") end
  if not is_item and (type(spec.name) ~= "string" or spec.name == "") then
    return bad("name must be a non-empty string")
  end
  if not TYPES[spec.type] then return bad("unknown type '" .. tostring(spec.type) .. "'") end
  local t = spec.type
  for k in pairs(spec) do
    local applies = KEYS[k]
    if not applies then return bad("unknown key '" .. tostring(k) .. "'") end
    if applies ~= true and not applies[t] then return bad("key '" .. k .. "' does not apply to type " .. t) end
    if is_item and ITEM_FORBIDDEN[k] then return bad("key '" .. k .. "' is not allowed in items") end
  end
  local f = { name = spec.name, type = t, description = spec.description, example = spec.example,
              pattern = spec.pattern, min_length = spec.min_length, max_length = spec.max_length }
  for _, k in ipairs({ "required", "nullable" }) do
    if spec[k] ~= nil and type(spec[k]) ~= "boolean" then return bad(k .. " must be a boolean") end
    f[k] = spec[k] == true
  end
  if spec.description ~= nil and type(spec.description) ~= "string" then
    return bad("description must be a string")
  end
  for _, k in ipairs({ "ge", "le" }) do
    if spec[k] ~= nil and not is_finite(spec[k]) then return bad(k .. " must be a finite number") end
  end
  f.ge, f.le = spec.ge, spec.le
  if t == "integer" then
    f.ge = math.max(f.ge or -MAX_SAFE, -MAX_SAFE)
    f.le = math.min(f.le or MAX_SAFE, MAX_SAFE)
  end
  if f.ge and f.le and f.ge > f.le then return bad("ge exceeds le") end
  for _, k in ipairs({ "min_length", "max_length" }) do
    if spec[k] ~= nil and not is_count(spec[k]) then return bad(k .. " must be a non-negative integer") end
  end
  if f.min_length and f.max_length and f.min_length > f.max_length then
    return bad("min_length exceeds max_length")
  end
  if spec.pattern ~= nil then
    if type(spec.pattern) ~= "string" then return bad("pattern must be a string") end
    local lp, err = compile_pattern(spec.pattern)
    if not lp then return bad(err) end
    f.lua_pattern = lp
  end
  if spec.enum ~= nil then
    if not is_list(spec.enum) or #spec.enum == 0 then return bad("enum must be a non-empty list") end
    if spec.min_length or spec.max_length or spec.pattern then
      return bad("enum cannot be combined with length or pattern limits")
    end
    f.enum, f.enum_set = {}, {}
    local reprs = {}
    for i, v in ipairs(spec.enum) do
      if type(v) ~= "string" then return bad("enum values must be strings") end
      f.enum[i], f.enum_set[v], reprs[i] = v, true, py_repr(v)
    end
    f.enum_expected = #reprs == 1 and reprs[1]
      or concat(reprs, ", ", 1, #reprs - 1) .. " or " .. reprs[#reprs]
  end
  f.spellings = { f.name }
  if spec.aliases ~= nil then
    if not is_list(spec.aliases) then return bad("aliases must be a list") end
    f.aliases = {}
    for i, a in ipairs(spec.aliases) do
      if type(a) ~= "string" or a == "" then return bad("aliases must be non-empty strings") end
      f.aliases[i], f.spellings[i + 1] = a, a
    end
  end
  if spec.items ~= nil then
    local item, err = compile_field(spec.items, label .. "[]", true)
    if not item then return nil, err end
    f.items = item
  end
  if spec.fields ~= nil then
    local nested, err = compile_schema(spec.fields, label .. ".")
    if not nested then return nil, err end
    f.fields = nested
  end
  if spec.default ~= nil then
    if f.required then return bad("a required field cannot have a default") end
    local errs = {}
    local val = validate_value(f, spec.default, {}, errs)
    if #errs > 0 then return bad("default is invalid: " .. errs[1].msg) end
    if type(val) ~= "table" and val ~= spec.default then
      return bad("default is invalid: give the " .. t .. " value itself")
    end
    f.default = copy(spec.default)
  end
  return f
end

function compile_schema(fields, prefix)
  if getmetatable(fields) == Compiled then return fields end
  if not is_list(fields) then return nil, "schema: the declaration must be a list of field specs" end
  local out, seen = {}, {}
  for i, spec in ipairs(fields) do
    local label = prefix .. (type(spec) == "table" and type(spec.name) == "string" and spec.name or ("#" .. i))
    local f, err = compile_field(spec, label, false)
    if not f then return nil, err end
    for _, s in ipairs(f.spellings) do
      if seen[s] then return nil, "schema: field '" .. label .. "': duplicate name or alias '" .. s .. "'" end
      seen[s] = true
    end
    out[i] = f
  end
  return setmetatable({ fields = out }, Compiled)
end

------------------------------------------------------------------ public API

--- path_params(path) -> the fields a route pattern declares, {name} or
--- {name:int|str} (integer or string, required), in order; nil when none.
function M.path_params(path)
  local fields = {}
  for name, typ in path:gmatch("{([%w_]+):?(%a*)}") do
    fields[#fields + 1] = { name = name, type = typ == "int" and "integer" or "string", required = true }
  end
  return #fields > 0 and fields or nil
end

-- Compiles a declaration (a list of field specs, see the top of the file).
-- Raises an error naming the field on any invalid declaration, so a bad
-- schema fails the script reload. Compiling a compiled schema returns it.
function M.compile(fields)
  local compiled, err = compile_schema(fields, "")
  if not compiled then error(err, 2) end
  return compiled
end

-- Validates input against a compiled schema. where is "body" (input: the
-- decoded JSON value, nil when there is no body) or "query" / "path" /
-- "header" (input: name -> string, or nil; header names match
-- case-insensitively). Returns a new table of typed values keyed by field
-- name (defaults applied, unknown fields dropped), or nil and the list of
-- every error in declaration order: { loc, msg, type, input?, ctx? }.
-- Raises on a schema that was not compiled or an unknown where.
function M.validate(compiled, input, where)
  if getmetatable(compiled) ~= Compiled then error("schema.validate: schema is not compiled", 2) end
  if not WHERE[where] then error("schema.validate: unknown location '" .. tostring(where) .. "'", 2) end
  local errors, folded = {}, nil
  if where == "body" then
    if input == nil then
      for _, f in ipairs(compiled.fields) do
        if f.required then
          return nil, { { loc = { "body" }, msg = "Field required", type = "missing" } }
        end
      end
      input = {}
    elseif not is_object(input) then
      return nil, { { loc = { "body" }, type = "model_attributes_type", input = input,
                      msg = "Input should be a valid dictionary or object to extract fields from" } }
    end
  else
    input = input or {}
    if type(input) ~= "table" then error("schema.validate: " .. where .. " input must be a table", 2) end
    if where == "header" then
      folded = {}
      for k, v in pairs(input) do
        if type(k) == "string" then folded[k:lower()] = v end
      end
    end
  end
  local values = validate_fields(compiled, input, { where }, errors, folded)
  if not values then return nil, errors end
  return values
end

-- The FastAPI 422 body for a list of errors (the host JSON-encodes it).
function M.error_body(errors)
  return { detail = errors }
end

-- The error item for a request body that is not valid JSON; offset is the
-- byte offset of the failure, reason (optional) the decoder's message.
function M.json_error(offset, reason)
  return { loc = { "body", offset }, msg = "JSON decode error", type = "json_invalid",
           ctx = reason and { error = reason } or nil }
end

local function field_schema(f)
  local p = {}
  if f.type ~= "any" then p.type = f.nullable and { f.type, "null" } or f.type end
  p.minimum, p.maximum = f.ge, f.le
  if f.type == "string" then
    p.minLength, p.maxLength, p.pattern = f.min_length, f.max_length, f.pattern
    p.enum = f.enum and copy(f.enum)
  elseif f.type == "array" then
    p.minItems, p.maxItems = f.min_length, f.max_length
    p.items = f.items and field_schema(f.items)
  elseif f.type == "object" and f.fields then
    local o = M.to_openapi(f.fields)
    p.properties, p.required = o.properties, o.required
  end
  p.default, p.description, p.example = copy(f.default), f.description, copy(f.example)
  return p
end

-- JSON Schema (OpenAPI 3.1) of a compiled schema as an object:
-- { type = "object", properties = { name = {...} }, required = { names }? }.
-- Properties carry minimum/maximum (integers: the effective bounds),
-- minLength/maxLength/pattern/enum, minItems/maxItems/items, default,
-- description, example; nullable types read { t, "null" }. Declaration
-- order is compiled.fields order.
function M.to_openapi(compiled)
  local props, required = {}, {}
  for _, f in ipairs(compiled.fields) do
    props[f.name] = field_schema(f)
    if f.required then required[#required + 1] = f.name end
  end
  return { type = "object", properties = props, required = #required > 0 and required or nil }
end

-- OpenAPI parameter objects for a query/path/header schema, in declaration
-- order: { name, in, required, schema, description? } (path parameters are
-- always required).
function M.to_parameters(compiled, where)
  local params = {}
  for i, f in ipairs(compiled.fields) do
    params[i] = { name = f.name, ["in"] = where, required = where == "path" or f.required,
                  schema = field_schema(f), description = f.description }
  end
  return params
end

return M
