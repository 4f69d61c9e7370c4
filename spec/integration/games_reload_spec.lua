-- games_reload_spec.lua - the game self-checks at reload (CONTRACT.md §9):
-- a slot paytable whose exact RTP leaves the band is refused, the running
-- generation keeps serving and the reason is reported; a valid retuned
-- paytable takes effect for the next spin (seen in the public config of the
-- loaded generation). Also runs `cchost verify` and
-- `cchost rtp`, whose HMAC is the host's C one, against the fixed vectors
-- of spec/unit/games_spec.lua (derived independently).
local support = require "spec.support.host"
local signal = support.signal
local write, run = support.write_file, support.run

local BIN = os.getenv("CCHOST_BIN") or "build/cchost"
local S = "9b1c5e7f3a2d4c6b8e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f"
local C = "casino-club-spec"

describe("game self-check at reload", function()
  local host, scripts

  before_each(function()
    scripts = os.tmpname()
    os.remove(scripts)
    assert(os.execute("cp -r scripts " .. scripts))
  end)

  after_each(function()
    if host then host:stop() end
    host = nil
    os.execute("rm -rf " .. scripts)
  end)

  local slot_file = function() return scripts .. "/games/slot.lua" end

  local function set_pairs(cherry, lemon)
    local src = support.read_file(slot_file())
    src = src:gsub('pair_x100 = { %["🍒"%] = %d+, %["🍋"%] = %d+,',
      string.format('pair_x100 = { ["🍒"] = %d, ["🍋"] = %d,', cherry, lemon))
    write(slot_file(), src)
  end

  -- SIGHUP, then the scripts status once this reload is reported.
  local function reload_and_wait()
    local previous = host:request("GET", "/health").json.scripts.last_reload.at
    host:signal(signal.SIGHUP)
    return support.wait_for(function()
      local s = host:request("GET", "/health").json.scripts
      if s.last_reload.at ~= previous then return s end
    end, 15)
  end

  it("refuses a slot paytable at RTP 120 %, keeps the old one, then takes a valid retune", function()
    host = support.start { WORKERS = "2", SCRIPTS_DIR = scripts }
    local before = host:request("GET", "/api/games/slot/config").json
    assert.near(0.950748, before.rtp, 1e-6)

    -- 🍒 pair 0 → 250 and 🍋 pair 200 → 219: exact RTP 1.200602.
    set_pairs(250, 219)
    local status = reload_and_wait()
    assert.is_false(status.last_reload.ok)
    assert.equal(1, status.generation)
    assert.truthy(status.last_reload.error:find("games/slot.lua: self-check failed: slot: exact RTP 1.200602", 1, true),
      status.last_reload.error)
    assert.truthy(status.last_reload.error:find("outside the band [0.945, 0.955]", 1, true))
    local still = host:request("GET", "/api/games/slot/config").json
    assert.equal(before.rtp, still.rtp)
    assert.equal(200, still.pair_x100["🍋"])

    -- A valid retune: 🍒 pair back to 0, 🍋 pair 200 → 205: exact RTP 0.954821.
    set_pairs(0, 205)
    status = reload_and_wait()
    assert.is_true(status.last_reload.ok)
    assert.equal(2, status.generation)
    local after = host:request("GET", "/api/games/slot/config").json
    assert.equal(205, after.pair_x100["🍋"])
    assert.near(0.954821, after.rtp, 1e-6)
    -- and the next spin is played on the new generation
    local u = require("spec.support.api").signup(host)
    local spin = host:request("POST", "/api/games/slot/spin", { bet_amount = 10 },
      require("spec.support.api").auth(u.access_token))
    assert.equal(200, spin.status, spin.body)
  end)
end)

describe("cchost verify and rtp", function()
  it("re-derives the fixed vectors with the host's HMAC", function()
    local out, code = run(BIN .. " verify --server-seed " .. S .. " --client-seed " .. C
      .. " --nonce 7 --game slot --bet 150")
    assert.equal(0, code, out)
    assert.truthy(out:find('"reels":["🍋","🍋","🍒"]', 1, true), out)
    assert.truthy(out:find('"payout":300', 1, true), out)
    assert.truthy(out:find('"server_seed_hash":"fe3f0120b15287649ac14ab59992966250e3187b123fdad6241868f3fdad6f52"', 1, true))
    out = run(BIN .. " verify --server-seed " .. S .. " --client-seed " .. C .. " --nonce 15 --game crash")
    assert.truthy(out:find('"crash_x100":1788', 1, true), out)
    out = run(BIN .. " verify --server-seed " .. S .. " --client-seed " .. C .. " --nonce 6 --game rps --choice rock")
    assert.truthy(out:find('"computer_choice":"scissors"', 1, true), out)
    assert.truthy(out:find('"result":"win"', 1, true), out)
    out = run(BIN .. " verify --server-seed " .. S .. " --client-seed " .. C .. " --nonce 10 --game gacha --pulls 10")
    assert.truthy(out:find('"ultra_rare_item_count":1', 1, true), out)
    assert.truthy(out:find('"total_value":4100', 1, true), out)
    local _, bad = run(BIN .. " verify --server-seed " .. S .. " --game slot")
    assert.equal(2, bad)
  end)

  it("prints every game's exact figures and a seeded simulation", function()
    local out, code = run(BIN .. " rtp --plays 20000 --seed spec")
    assert.equal(0, code, out)
    local rows = {}
    for name, exact, ci_low, ci_high in out:gmatch("\n(%a+)%s+([%d.]+)%s+[%d.]+%s+[%d.]+%s+[%d.]+%s+%[([%d.]+), ([%d.]+)%]") do
      rows[name] = { tonumber(exact), tonumber(ci_low), tonumber(ci_high) }
    end
    assert.same({ 0.950748, 1, 1.633333, 0.99 }, { rows.slot[1], rows.rps[1], rows.gacha[1], rows.crash[1] })
    for name, r in pairs(rows) do assert.is_true(r[2] < r[3], name) end
    assert.equal(out, (run(BIN .. " rtp --plays 20000 --seed spec"))) -- reproducible
  end)
end)
