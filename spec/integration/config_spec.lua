-- config_spec.lua - `cchost config` and the start-up refusals of CONTRACT.md
-- §4.1 / §17, run against the real binary.
local support = require "spec.support.host"

local BIN = os.getenv("CCHOST_BIN") or "build/cchost"

-- Runs the binary with a clean set of settings; returns output and status.
local function run(env, args)
  local parts = { "env -i PATH=/usr/bin:/bin" }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "='" .. v .. "'" end
  local f = io.popen(table.concat(parts, " ") .. " " .. BIN .. " " .. args .. " 2>&1; echo \"exit=$?\"")
  local out = f:read("*a")
  f:close()
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

describe("configuration", function()
  it("prints every setting with secrets masked", function()
    local out, code = run({ JWT_SECRET_KEY = "supersecretvalue-supersecretvalue", DATABASE_URL = "postgresql://u:pw@h/db",
                            LOGIN_LOCKOUT_MINUTES = "0.05" }, "config")
    assert.equal(0, code)
    assert.truthy(out:find("JWT_SECRET_KEY=********", 1, true))
    assert.truthy(out:find("DATABASE_URL=********", 1, true))
    assert.is_falsy(out:find("supersecretvalue", 1, true))
    assert.truthy(out:find("LOGIN_LOCKOUT_MINUTES=0.05", 1, true))
    assert.truthy(out:find("WORKERS=0", 1, true))
    assert.truthy(out:find("\nPORT=8000", 1, true))
  end)

  it("rejects a value of the wrong type, naming the setting", function()
    local out, code = run({ WORKERS = "many" }, "config")
    assert.equal(2, code)
    assert.truthy(out:find("WORKERS=many", 1, true))
  end)

  it("refuses to serve with an empty secret", function()
    local out, code = run({ APP_PROFILE = "development", PORT = "0" }, "serve")
    assert.equal(2, code)
    assert.truthy(out:find("JWT_SECRET_KEY is empty", 1, true))
  end)

  it("refuses the placeholder and short secrets in production", function()
    local out, code = run({ APP_PROFILE = "production", JWT_SECRET_KEY = "your-secret-key-here" }, "serve")
    assert.equal(2, code)
    assert.truthy(out:find("placeholder", 1, true))
    out, code = run({ APP_PROFILE = "production", JWT_SECRET_KEY = "short-secret" }, "serve")
    assert.equal(2, code)
    assert.truthy(out:find("shorter than 32", 1, true))
  end)

  it("refuses fixture scripts in production", function()
    local out, code = run({ APP_PROFILE = "production", JWT_SECRET_KEY = string.rep("k", 40),
                            FIXTURE_SCRIPTS = "spec/fixtures/scripts" }, "serve")
    assert.equal(2, code)
    assert.truthy(out:find("FIXTURE_SCRIPTS", 1, true))
  end)

  it("applies development defaults and lets the environment override them", function()
    local out = run({ APP_PROFILE = "development" }, "config")
    assert.truthy(out:find("DEV_TOKEN_GRANT=true", 1, true))
    out = run({ APP_PROFILE = "development", DEV_TOKEN_GRANT = "0" }, "config")
    assert.truthy(out:find("DEV_TOKEN_GRANT=0", 1, true))
    out = run({}, "config")
    assert.truthy(out:find("DEV_TOKEN_GRANT=false", 1, true))
  end)

  it("reads a .env file, below the environment", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. " && cp -r config " .. dir .. "/"))
    local f = assert(io.open(dir .. "/.env", "w"))
    f:write("# comment\nLOGIN_MAX_FAILED_ATTEMPTS=7\nexport STREAM_MAXLEN='123'\nWS_MAX_SOCKETS_PER_USER=3\n")
    f:close()
    local bin = BIN:sub(1, 1) == "/" and BIN or (os.getenv("PWD") .. "/" .. BIN)
    local p = io.popen("cd " .. dir .. " && env -i PATH=/usr/bin:/bin WS_MAX_SOCKETS_PER_USER=4 " .. bin .. " config")
    local out = p:read("*a")
    p:close()
    os.execute("rm -rf " .. dir)
    assert.truthy(out:find("LOGIN_MAX_FAILED_ATTEMPTS=7", 1, true))
    assert.truthy(out:find("STREAM_MAXLEN=123", 1, true))
    assert.truthy(out:find("WS_MAX_SOCKETS_PER_USER=4", 1, true))
  end)

  it("serves the health document with the script generation", function()
    local host = support.start { WORKERS = "1" }
    local res = host:request("GET", "/health")
    host:stop()
    assert.equal(200, res.status)
    assert.equal("healthy", res.json.status)
    assert.same({ database = "ok", redis = "ok" }, res.json.checks)
    assert.equal("1.0.0", res.json.version)
    assert.truthy(res.json.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"))
    assert.equal(1, res.json.scripts.generation)
    assert.is_true(res.json.scripts.last_reload.ok)
  end)

  it("shows in the README exactly the settings table cchost config --markdown prints", function()
    local bin = os.getenv("CCHOST_BIN") or "build/cchost"
    local p = assert(io.popen(bin .. " config --markdown 2>/dev/null"))
    local generated = p:read("*a")
    p:close()
    assert.truthy(generated:find("| `JWT_SECRET_KEY` |", 1, true))
    local readme = assert(io.open("README.md")):read("*a")
    local copy = readme:match("<!%-%- settings:begin %-%->\n(.-)<!%-%- settings:end %-%->")
    assert.equal(generated, copy)
  end)
end)
