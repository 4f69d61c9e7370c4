-- Unit specs for scripts/lib/errors.lua, the one catalogue of error texts
-- (DESIGN.md "The Lua host API"): what raise produces, and a scan of every
-- script proving that no detail text lives outside the catalogue, that
-- only the catalogue raises HTTP errors, and that every name used exists.
package.path = "scripts/?.lua;" .. package.path

-- lib/errors needs only host.error / host.is_http_error: a stand-in with the
-- loader's semantics (an error object with status, detail, headers).
local HttpError = {}
package.loaded.host = {
  error = function(status, detail, headers)
    error(setmetatable({ status = status, detail = detail, headers = headers }, HttpError), 0)
  end,
  is_http_error = function(e) return getmetatable(e) == HttpError end,
}
local errors = require "lib.errors"

local function raised(fn, ...)
  local ok, e = pcall(fn, ...)
  assert.is_false(ok)
  return e
end

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

local function lua_files()
  local p = assert(io.popen("find scripts -name '*.lua' | sort"))
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

-- Source without comments (the texts may be quoted in prose).
local function code_of(src)
  src = src:gsub("%-%-%[(=*)%[.-%]%1%]", "")
  return (src:gsub("%-%-[^\n]*", ""))
end

describe("lib/errors", function()
  it("raises the named error with its status, text and headers", function()
    local e = raised(errors.raise, "INSUFFICIENT_TOKENS")
    assert.same({ 400, "토큰이 부족합니다" }, { e.status, e.detail })
    assert.is_nil(e.headers)
    e = raised(errors.raise, "SESSION_GONE")
    assert.same({ 401, { ["WWW-Authenticate"] = "Bearer" } }, { e.status, e.headers })
    e = raised(errors.raise, "RANK_REQUIRED", "VIP")
    assert.same({ 403, "Insufficient rank: requires VIP" }, { e.status, e.detail })
    e = raised(errors.raise_with, "LOGIN_LOCKED", { ["Retry-After"] = "30" })
    assert.same({ 429, { ["Retry-After"] = "30" } }, { e.status, e.headers })
    e = raised(errors.raise_with, "LOGIN_FAILED", { ["X-A"] = "1" })
    assert.same({ ["WWW-Authenticate"] = "Bearer", ["X-A"] = "1" }, e.headers)
    e = raised(errors.validation, { { loc = { "body" }, msg = "m", type = "t" } })
    assert.same({ 422, "t" }, { e.status, e.detail[1].type })
  end)

  it("tells the same text at two statuses apart, and recognises its own errors", function()
    assert.equal(errors.detail("NICKNAME_TAKEN"), errors.detail("NICKNAME_CONFLICT"))
    assert.same({ 400, 409 }, { errors.status("NICKNAME_TAKEN"), errors.status("NICKNAME_CONFLICT") })
    local e = raised(errors.raise, "NICKNAME_CONFLICT")
    assert.is_true(errors.is(e, "NICKNAME_CONFLICT"))
    assert.is_false(errors.is(e, "NICKNAME_TAKEN"))
    assert.is_true(errors.is(raised(errors.raise, "RELOAD_REFUSED", "x.lua:1: boom"), "RELOAD_REFUSED"))
    assert.is_false(errors.is("plain error", "RELOAD_REFUSED"))
  end)

  it("refuses an unknown name loudly", function()
    local e = raised(errors.raise, "NO_SUCH_ERROR")
    assert.is_string(e)
    assert.truthy(e:find("unknown error name 'NO_SUCH_ERROR'", 1, true))
  end)

  it("is the only raiser of HTTP errors in scripts/, and every name it is called with exists", function()
    local known = {}
    for _, name in ipairs(errors.names()) do known[name] = true end
    local bad = {}
    for _, file in ipairs(lua_files()) do
      local code = code_of(read(file))
      if file ~= "scripts/lib/errors.lua" and not file:find("^scripts/host/") and code:find("host%.error%s*%(") then
        bad[#bad + 1] = file .. ": calls host.error"
      end
      for name in code:gmatch("errors%.[%w_]+%(%s*\"([%w_]+)\"") do
        if not known[name] then bad[#bad + 1] = file .. ": unknown error name " .. name end
      end
      for a, b in code:gmatch("errors%.raise%(%s*[^,\n]- and \"([%w_]+)\" or \"([%w_]+)\"") do
        for _, name in ipairs { a, b } do
          if not known[name] then bad[#bad + 1] = file .. ": unknown error name " .. name end
        end
      end
    end
    assert.same({}, bad)
  end)

  it("holds the only copy of every detail text in scripts/", function()
    local texts = {}
    for _, name in ipairs(errors.names()) do
      local holes = select(2, errors.detail(name, "%s", "%s", "%s"):gsub("%%s", ""))
      local args = {}
      for i = 1, holes do args[i] = "\0" end
      local prefix = errors.detail(name, unpack(args)):match("^([^%z]*)")
      if #prefix >= 6 then texts[#texts + 1] = prefix end
    end
    local found = {}
    for _, file in ipairs(lua_files()) do
      if file ~= "scripts/lib/errors.lua" then
        local code = code_of(read(file))
        for _, t in ipairs(texts) do
          if code:find(t, 1, true) then found[#found + 1] = file .. ": " .. t end
        end
      end
    end
    assert.same({}, found)
  end)
end)
