--[[ games.lua - the command-line tools `cchost rtp` and `cchost verify`.

`cchost rtp [--plays N] [--seed S] [--game G]` prints, for each game of this
scripts generation (the registry, host.games), the exact RTP, hit frequency and standard deviation per
play (scripts/games/*.lua exact()), then a simulation of N plays (default
10^6) with their 95 % confidence interval. The simulation draws from the real
provably-fair stream: server seed S (default "cchost-rtp"), client seed
"rtp", nonces 0…N−1, so a run is reproducible and exercises the production
mapping.

`cchost verify --server-seed S --client-seed C --nonce N --game G [--bet B]
[--choice rock|paper|scissors] [--pulls K] [--auto X]` re-derives one play
from its seeds and prints it as JSON. S is the server seed revealed by
/api/fairness/revealed (checked against its published SHA-256, printed as
server_seed_hash); C and N are those of the play (its response and game_plays
row); B, the choice, K and the auto cash-out target X come from the play too.
]]

local host = require "host"
local crypto = require "host.crypto"
local registry = require "host.games"
local json = require "json"
local fair = require "lib.fair"
local rtp = require "lib.rtp"

-- {"--name", "value", "--flag=value"} -> {name = value}; nil, message on a stray word.
local function parse(args)
  local opts = {}
  local i = 1
  while args[i] do
    local name, value = args[i]:match("^%-%-([%w-]+)=(.*)$")
    if not name then
      name = args[i]:match("^%-%-([%w-]+)$")
      if not name or args[i + 1] == nil then return nil, "unexpected argument '" .. args[i] .. "'" end
      value = args[i + 1]
      i = i + 1
    end
    opts[name] = value
    i = i + 1
  end
  return opts
end

local function integer(value, name, low)
  local n = tonumber(value)
  if not n or n % 1 ~= 0 or n < low then error(name .. " must be an integer >= " .. low, 0) end
  return n
end

local function fail(message, usage)
  host.stdout("error: " .. message .. "\nusage: " .. usage .. "\n", true)
  return 2
end

local GAME_NAMES = table.concat(registry.list(), "|")
local RTP_USAGE = "cchost rtp [--plays N] [--seed S] [--game " .. GAME_NAMES .. "]"

host.tool {
  name = "rtp",
  description = "exact RTP, hit frequency, stddev and a seeded simulation of every game",
  run = function(args)
    local opts, err = parse(args)
    if not opts then return fail(err, RTP_USAGE) end
    local ok, plays = pcall(integer, opts.plays or "1000000", "--plays", 1)
    if not ok then return fail(plays, RTP_USAGE) end
    local seed = opts.seed or "cchost-rtp"
    local names = registry.list()
    if opts.game then
      if not registry.get(opts.game) then return fail("unknown game '" .. opts.game .. "'", RTP_USAGE) end
      names = { opts.game }
    end
    host.stdout(string.format("seeded simulation: %d plays per game, server seed %q, client seed \"rtp\", nonces 0..%d\n\n",
      plays, seed, plays - 1))
    host.stdout(string.format("%-6s %10s %10s %10s %10s %23s  %s\n",
      "game", "exact_rtp", "hit_freq", "stddev", "sim_mean", "95% CI", "statistic"))
    for _, name in ipairs(names) do
      local game = registry.get(name)
      local exact = game.exact(game.config)
      local sim = rtp.simulate(game, game.config, plays, function(nonce)
        return fair.stream(seed, "rtp", nonce)
      end)
      host.stdout(string.format("%-6s %10.6f %10.6f %10.6f %10.6f   [%.6f, %.6f]  %s\n",
        name, exact.rtp, exact.hit_frequency, exact.stddev, sim.mean, sim.ci_low, sim.ci_high, game.note))
    end
    return 0
  end,
}

local VERIFY_USAGE = "cchost verify --server-seed S --client-seed C --nonce N --game " .. GAME_NAMES
  .. " [--bet B] [--choice rock|paper|scissors] [--pulls K] [--auto X]"

-- The fields a game's input builder reads, from the options (the stake
-- defaults to the game's min_bet).
local function fields(opts, config)
  return {
    bet_amount = tonumber(opts.bet) or config.min_bet, choice = opts.choice,
    pull_count = tonumber(opts.pulls) or 1, auto_cashout = opts.auto and (tonumber(opts.auto) or false),
  }
end

host.tool {
  name = "verify",
  description = "re-derive one play's outcome from its revealed server seed, client seed and nonce",
  run = function(args)
    local opts, err = parse(args)
    if not opts then return fail(err, VERIFY_USAGE) end
    local server_seed, client_seed, game_name = opts["server-seed"], opts["client-seed"], opts.game
    if not (server_seed and client_seed and opts.nonce and game_name) then
      return fail("--server-seed, --client-seed, --nonce and --game are required", VERIFY_USAGE)
    end
    local game = registry.get(game_name)
    if not game then return fail("unknown game '" .. game_name .. "'", VERIFY_USAGE) end
    local ok, nonce = pcall(integer, opts.nonce, "--nonce", 0)
    if not ok then return fail(nonce, VERIFY_USAGE) end
    local input, reason = game.input(game.config, fields(opts, game.config))
    if not input then return fail(reason, VERIFY_USAGE) end
    local outcome = game.play(game.config, fair.stream(server_seed, client_seed, nonce), input)
    host.stdout(json.encode {
      game = game_name,
      server_seed = server_seed,
      server_seed_hash = crypto.sha256_hex(server_seed),
      client_seed = client_seed,
      nonce = nonce,
      input = input,
      outcome = outcome,
    } .. "\n")
    return 0
  end,
}
