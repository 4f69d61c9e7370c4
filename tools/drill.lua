--[[ drill.lua - the fault drill: the deployment of docker/compose.yml on
loopback (two `cchost serve` hosts, one PostgreSQL, one Redis, HAProxy with
docker/haproxy.cfg) under mixed traffic from many users, while the drill
kills and restarts its parts; then it checks that no money was lost or
counted twice.

  luajit tools/drill.lua             (tools/drill.sh, `make drill`)
  require("tools.drill").run(opts)   (spec/integration/drill_spec.lua)

Setup: a private PostgreSQL and Redis in a temporary folder
(tools/services.sh, durable: fsync on, Redis snapshots), migrated with
`cchost migrate`, an admin made with `cchost admin create`, two hosts in the
production profile (each its own process group) and HAProxy in front.

Load: `users` players (50), each one coroutine on its own keep-alive
connection through HAProxy, plus one notification WebSocket each, an admin,
and a probe (GET / every 100 ms). A player logs in, reads its profile and
balance, spins the slot, plays RPS, pulls the gacha, plays crash rounds (an
auto cash-out target between 1.10x and 3.00x, or a manual cash-out after up
to 3 s, sometimes two cash-outs at once), joins events, completes and claims
them, claims missions (sometimes twice at once, sometimes replaying the same
Idempotency-Key), reads notifications. Every money POST carries an
Idempotency-Key; an answer that leaves its outcome unknown (a 502, a broken
connection, 503 "Outcome unknown", 409 "in progress") is retried with the
same key until the outcome is known. The admin tops up players running low
(admin grants), sends notifications and broadcasts. All I/O is non-blocking
(LuaSocket, socket.select) under one small coroutine scheduler, so one
process drives every user and socket without becoming the bottleneck.

Faults (at fractions of the duration): SIGKILL of a worker of host1 (15 %),
PostgreSQL stopped with `pg_ctl -m immediate` and started again 3 s later
(30 %), Redis shut down and started again 3 s later (50 %), SIGKILL of host2's
whole process group (68 %; it is started again 8 s later and rejoins).
Each fault opens an outage window: from the fault until the service is back
plus the time the hosts need to notice (PostgreSQL reconnect backoff 5 s,
Redis 2 s; a killed host: HAProxy's two failed checks).

Checks, after the load stops and the crash sweeper has settled every round:
  - every user's balance equals the sum of its ledger, in every currency;
  - nothing is duplicated: ledger (user, currency, reason, reference) and
    (user, idempotency key, currency, reason) unique, one game_plays row per
    (seed, nonce), every play has exactly one stake and the payout it
    records, one claim per mission row and per participation, one ledger
    row per admin grant;
  - nothing acknowledged is lost: every 2xx play, claim and grant is in the
    database (PostgreSQL was killed with -m immediate);
  - no crash round stays open (database and Redis);
  - no 5xx outside the outage windows: inside them 503 is fine, the
    "Outcome unknown" 503 only inside a PostgreSQL window, and a 502 or a
    broken connection only inside a kill window, and only for requests sent
    before the health check could mark the host down; a 500 is never fine;
  - every request is answered within 15 s (a hang is a bug: a request waits
    at most for the pool and then for a commit's outcome, 5 s each);
  - host1 (never killed) answered in every 2-second slice of the run.
Prints throughput and p50/p99 per endpoint; run() returns the result and
main exits 1 on any violated invariant.

Environment of main (tools/drill.sh): DRILL_DURATION, DRILL_USERS,
DRILL_THINK_MS, DRILL_WORKERS, DRILL_CHECK_INTER, DRILL_KEEP, DRILL_FAULTS
(a subset of "worker,pg,redis,host"), DRILL_ON_SLOW (a command run when a
request hangs for 8 s, DRILL_DIR set: gdb, ss, /proc while it lasts),
TMPDIR, CCHOST_BIN.
]]

local socket = require "socket"
local cjson = require "cjson.safe"
local bit = require "bit"
local signal = require "posix.signal"
local wait = require "posix.sys.wait"
local haproxy = require "spec.support.haproxy"

local M = {}

local now = socket.gettime
local fmt = string.format
local NULL = cjson.null
local SERVER_TRACKED = { play_count = true, win_count = true, gacha_pull = true, login = true, spend_tokens = true }
local OUTCOME_UNKNOWN = "Outcome unknown"

------------------------------------------------------------------ scheduler
-- One coroutine per user, socket and background job. A task that would
-- block yields what it waits for (a readable or writable socket, a time);
-- the loop waits on all of them with one socket.select.

local S = {}

local function sched_reset()
  S.ready, S.rd, S.wr, S.sleepers, S.errors, S.tasks = {}, {}, {}, {}, {}, 0
end

local function spawn(name, fn, ...)
  local co = coroutine.create(function(...)
    local ok, err = xpcall(fn, debug.traceback, ...)
    S.tasks = S.tasks - 1
    if not ok then S.errors[#S.errors + 1] = name .. ": " .. tostring(err) end
  end)
  S.tasks = S.tasks + 1
  S.ready[#S.ready + 1] = { co, { ... } }
  return co
end

-- Waits until sock is readable (or writable) or deadline passes: true, or
-- nil, "timeout".
local function wait_io(set, sock, deadline)
  set[sock] = { co = coroutine.running(), deadline = deadline or math.huge }
  return coroutine.yield()
end

local function sleep_until(t)
  S.sleepers[#S.sleepers + 1] = { t = t, co = coroutine.running() }
  return coroutine.yield()
end

local function sleep(s) return sleep_until(now() + s) end

local function resume(co, ...)
  local ok, err = coroutine.resume(co, ...)
  if not ok then S.errors[#S.errors + 1] = tostring(err) end
end

-- Runs tasks until done() is true (checked between rounds) or no task is
-- left. Returns the busiest round's lag (how late a timer fired, seconds).
local function run_loop(done)
  while true do
    while #S.ready > 0 do
      local batch = S.ready
      S.ready = {}
      for _, r in ipairs(batch) do resume(r[1], unpack(r[2])) end
    end
    if S.tasks == 0 or (done and done()) then return end
    local rs, ws, first = {}, {}, math.huge
    for sock, w in pairs(S.rd) do rs[#rs + 1] = sock if w.deadline < first then first = w.deadline end end
    for sock, w in pairs(S.wr) do ws[#ws + 1] = sock if w.deadline < first then first = w.deadline end end
    for _, s in ipairs(S.sleepers) do if s.t < first then first = s.t end end
    local timeout = math.max(0, math.min(first - now(), 0.05))
    local r, w = socket.select(rs, ws, timeout)
    local t = now()
    for _, sock in ipairs(r) do
      local e = S.rd[sock]
      if e then S.rd[sock] = nil resume(e.co, true) end
    end
    for _, sock in ipairs(w) do
      local e = S.wr[sock]
      if e then S.wr[sock] = nil resume(e.co, true) end
    end
    for _, set in ipairs { S.rd, S.wr } do
      local expired = {}
      for sock, e in pairs(set) do if e.deadline <= t then expired[#expired + 1] = sock end end
      for _, sock in ipairs(expired) do
        local e = set[sock]
        set[sock] = nil
        resume(e.co, nil, "timeout")
      end
    end
    if #S.sleepers > 0 then
      local due, keep = {}, {}
      for _, s in ipairs(S.sleepers) do
        if s.t <= t then due[#due + 1] = s else keep[#keep + 1] = s end
      end
      S.sleepers = keep
      table.sort(due, function(a, b) return a.t < b.t end)
      for _, s in ipairs(due) do
        local lag = t - s.t
        if lag > (S.max_lag or 0) then S.max_lag = lag end
        resume(s.co, true)
      end
    end
  end
end

-- Runs fn(...) as a task and the loop until it returns; returns its results.
local function run_task(name, fn, ...)
  local out, done = nil, false
  spawn(name, function(...) out = { fn(...) } done = true end, ...)
  run_loop(function() return done end)
  if not done then error(name .. " did not finish: " .. table.concat(S.errors, "; ")) end
  return unpack(out)
end

--------------------------------------------------------------- TCP + HTTP

local Conn = {}
Conn.__index = Conn

local function tcp_connect(port, deadline)
  local sock = socket.tcp()
  sock:settimeout(0)
  sock:setoption("tcp-nodelay", true)
  local ok, err = sock:connect("127.0.0.1", port)
  if not ok and err == "timeout" then
    local ready = wait_io(S.wr, sock, deadline)
    if not ready then sock:close() return nil, "connect timeout" end
    ok, err = sock:connect("127.0.0.1", port)
    if not ok and err == "already connected" then ok = true end
  end
  if not ok then sock:close() return nil, err end
  return setmetatable({ sock = sock, buf = "" }, Conn)
end

function Conn:close()
  if self.sock then
    S.rd[self.sock], S.wr[self.sock] = nil, nil
    self.sock:close()
    self.sock = nil
  end
end

function Conn:send(data, deadline)
  local i = 1
  while i <= #data do
    local last, err, partial = self.sock:send(data, i)
    if last then
      i = last + 1
    elseif err == "timeout" then
      i = partial + 1
      if i <= #data and not wait_io(S.wr, self.sock, deadline) then return nil, "timeout" end
    else
      return nil, err
    end
  end
  return true
end

-- Appends what the socket has to self.buf, waiting for at least one byte.
function Conn:fill(deadline)
  while true do
    local data, err, partial = self.sock:receive(65536)
    local chunk = data or partial
    if chunk and #chunk > 0 then
      self.buf = self.buf .. chunk
      return true
    end
    if err == "closed" then return nil, "closed" end
    if err ~= "timeout" then return nil, err end
    if not self.sock:dirty() then
      local ok = wait_io(S.rd, self.sock, deadline)
      if not ok then return nil, "timeout" end
    end
  end
end

-- Reads one HTTP response: {status, headers, body} or nil, err.
function Conn:read_response(deadline, head_only)
  local hend
  while true do
    hend = self.buf:find("\r\n\r\n", 1, true)
    if hend then break end
    local ok, err = self:fill(deadline)
    if not ok then return nil, err end
  end
  local head = self.buf:sub(1, hend - 1)
  local status = tonumber(head:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "bad status line" end
  local headers = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):[ \t]*([^\r\n]*)") do headers[k:lower()] = v end
  local pos = hend + 4
  local body = ""
  if head_only or status == 101 or status == 204 or status == 304 then
    self.buf = self.buf:sub(pos)
  elseif headers["content-length"] then
    local len = tonumber(headers["content-length"])
    while #self.buf < pos + len - 1 do
      local ok, err = self:fill(deadline)
      if not ok then return nil, err end
    end
    body = self.buf:sub(pos, pos + len - 1)
    self.buf = self.buf:sub(pos + len)
  elseif (headers["transfer-encoding"] or ""):lower():find("chunked") then
    local parts = {}
    while true do
      local lend = self.buf:find("\r\n", pos, true)
      while not lend do
        local ok, err = self:fill(deadline)
        if not ok then return nil, err end
        lend = self.buf:find("\r\n", pos, true)
      end
      local size = tonumber(self.buf:sub(pos, lend - 1):match("^%x+"), 16)
      if not size then return nil, "bad chunk" end
      while #self.buf < lend + 2 + size + 1 do
        local ok, err = self:fill(deadline)
        if not ok then return nil, err end
      end
      if size == 0 then
        self.buf = self.buf:sub(lend + 4)
        break
      end
      parts[#parts + 1] = self.buf:sub(lend + 2, lend + 1 + size)
      pos = lend + 2 + size + 2
    end
    body = table.concat(parts)
  else
    while true do
      local ok = self:fill(deadline)
      if not ok then break end
    end
    body = self.buf:sub(pos)
    self.buf = ""
    self.closing = true
  end
  if (headers.connection or ""):lower() == "close" then self.closing = true end
  return { status = status, headers = headers, body = body }
end

local function format_request(method, path, body, headers)
  local lines = { method .. " " .. path .. " HTTP/1.1", "Host: drill" }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if body then
    lines[#lines + 1] = "Content-Type: application/json"
    lines[#lines + 1] = "Content-Length: " .. #body
  elseif method == "POST" or method == "PUT" then
    lines[#lines + 1] = "Content-Length: 0"
  end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
end

------------------------------------------------------------------ records

local R -- the current run's records (see new_records)

local function new_records()
  return {
    ep = {},          -- label -> {n, lat = {ms...}, st = {status -> n}, errs = n}
    failures = {},    -- every 5xx and transport failure: {t0, t1, label, status, err, detail, by}
    buckets = {},     -- second -> {host1 = n, host2 = n}
    inflight = 0,
    total = 0,
    windows = {},     -- outage windows (faults)
    acked_plays = {}, -- play ids answered 2xx
    acked_keys = {},  -- {key, user_id, kind}: 2xx money answers that wrote a ledger row with their key
    acked_cashed = {},-- {game_id, payout}: crash rounds answered "cashed"
    replays = 0, retries = 0, unresolved = 0, unexpected_401 = 0, refused = {},
    ws = { opened = 0, refused = 0, messages = {}, closes = {} },
    slow = {},        -- requests answered (or given up) after more than SLOW_S
    open = {},        -- requests in flight: {t0, label} -> true
    grants = 0, claims = { mission = 0, event = 0, raced_twice = 0 },
    crash = { bets = 0, manual = 0, auto = 0, abandoned = 0, double_cashouts = 0 },
    recovery = {},
  }
end

local function host_of(by)
  return by and (by:match("^(host%d)") or by) or nil
end

-- No answer may take longer than this: a request waits at most for the
-- pool (DB_POOL_TIMEOUT_MS 5 s) and then for a commit's outcome
-- (COMMIT_OUTCOME_TIMEOUT_MS 5 s), or for a Redis deadline (1 s).
local SLOW_S = 15

local function record(label, t0, t1, res, err)
  if t1 - t0 > SLOW_S then
    R.slow[#R.slow + 1] = { t0 = t0 - R.t_start, t1 = t1 - R.t_start, label = label,
      status = res and res.status or err, by = res and host_of(res.headers["x-served-by"]) }
  end
  if R.t_stop and t0 > R.t_stop then
    -- Finishing rounds after the load stopped: failures still count.
    if not res or res.status >= 500 then
      R.failures[#R.failures + 1] = { t0 = t0 - R.t_start, t1 = t1 - R.t_start, label = label,
        status = res and res.status, err = err, by = res and host_of(res.headers["x-served-by"]) }
    end
    return
  end
  R.total = R.total + 1
  local e = R.ep[label]
  if not e then e = { n = 0, lat = {}, st = {}, errs = 0 } R.ep[label] = e end
  e.n = e.n + 1
  e.lat[#e.lat + 1] = (t1 - t0) * 1000
  local by = res and host_of(res.headers["x-served-by"])
  if res then
    e.st[res.status] = (e.st[res.status] or 0) + 1
    if by then
      local b = math.floor(t1 - R.t_start)
      local bucket = R.buckets[b]
      if not bucket then bucket = {} R.buckets[b] = bucket end
      bucket[by] = (bucket[by] or 0) + 1
    end
  else
    e.errs = e.errs + 1
  end
  if not res or res.status >= 500 then
    local detail
    if res then
      local j = cjson.decode(res.body)
      detail = type(j) == "table" and type(j.detail) == "string" and j.detail or res.body:sub(1, 80)
    end
    R.failures[#R.failures + 1] = { t0 = t0 - R.t_start, t1 = t1 - R.t_start, label = label,
      status = res and res.status, err = err, detail = detail, by = by }
  end
end

----------------------------------------------------------------- clients

local Client = {}
Client.__index = Client

local function new_client(port, name)
  return setmetatable({ port = port, name = name }, Client)
end

-- One request on this client's keep-alive connection (reconnecting as
-- needed). opts: token, key (Idempotency-Key), timeout. Returns the response
-- (with .json) or nil, err; every call is recorded under `label`.
function Client:call(method, path, label, body, opts)
  opts = opts or {}
  local headers = {}
  if opts.token then headers.Authorization = "Bearer " .. opts.token end
  if opts.key then headers["Idempotency-Key"] = opts.key end
  local data = body ~= nil and cjson.encode(body) or nil
  local t0 = now()
  local deadline = t0 + (opts.timeout or 30)
  R.inflight = R.inflight + 1
  local open = { t0 = t0, label = label }
  R.open[open] = true
  local res, err
  if not self.conn then
    self.conn, err = tcp_connect(self.port, deadline)
  end
  if self.conn then
    local ok
    ok, err = self.conn:send(format_request(method, path, data, headers), deadline)
    if ok then res, err = self.conn:read_response(deadline, method == "HEAD") end
    if not res or self.conn.closing then
      self.conn:close()
      self.conn = nil
    end
  end
  R.inflight = R.inflight - 1
  R.open[open] = nil
  local t1 = now()
  if res then res.json = cjson.decode(res.body) end
  if not R.stopped_recording then record(label, t0, t1, res, err) end
  return res, err
end

function Client:close()
  if self.conn then self.conn:close() self.conn = nil end
end

local function detail_of(res)
  return res and type(res.json) == "table" and type(res.json.detail) == "string" and res.json.detail or ""
end

-- True when a money request's outcome is unknown and the same key must be
-- sent again: no answer, a gateway error, the host's "Outcome unknown", or
-- the first attempt still running ("in progress").
local function ambiguous(res)
  if not res then return true end
  if res.status == 502 or res.status == 504 then return true end
  if res.status == 503 and detail_of(res):find(OUTCOME_UNKNOWN, 1, true) then return true end
  if res.status == 409 and detail_of(res):find("in progress", 1, true) then return true end
  return false
end

-- A money request with an Idempotency-Key: retried with the same key while
-- its outcome is unknown (up to 90 s: outcomes resolve within a
-- PostgreSQL outage plus COMMIT_OUTCOME_TIMEOUT_MS); a plain 503 moved
-- nothing and is retried a few times. Returns the final response (or nil).
local function money(user, client, method, path, label, body, key)
  user.seq = user.seq + 1
  key = key or fmt("d%s-%d", user.tag, user.seq)
  local res, err
  local deadline = now() + 90
  local plain_503 = 0
  local was_ambiguous = false
  for attempt = 1, 1000 do
    res, err = client:call(method, path, label, body, { token = user.token, key = key })
    if attempt > 1 then R.retries = R.retries + 1 end
    if res and res.status == 401 then
      if not user:relogin(client) then return res end
    elseif ambiguous(res) then
      was_ambiguous = true
      if now() > deadline then break end
      sleep(0.25 + math.random() * 0.5)
    elseif res.status == 503 then
      -- Nothing was written by this attempt; after an ambiguous one the
      -- first may have committed, so the same key goes on until an answer
      -- tells (or the deadline passes: unresolved).
      plain_503 = plain_503 + 1
      if not was_ambiguous and plain_503 > 3 then return res, key end
      if now() > deadline then break end
      sleep(0.5 + math.random() * 0.5)
    else
      if res.headers["idempotent-replayed"] == "true" then R.replays = R.replays + 1 end
      return res, key
    end
  end
  R.unresolved = R.unresolved + 1
  return res, key
end

------------------------------------------------------------------- players

local User = {}
User.__index = User

function User:relogin(client)
  local res = client:call("POST", "/api/auth/login", "POST /api/auth/login",
    { site_id = self.site_id, password = self.password })
  if res and res.status == 200 and res.json then
    self.token = res.json.access_token
    self.token_gen = (self.token_gen or 0) + 1
    return true
  end
  return false
end

-- GET with the user's token; a 401 is counted (with its detail), then the
-- user logs in again. Expected only when another of the user's tasks (a
-- raced claim retrying through a 401) logged in while this request was in
-- flight: the new session superseded the one it carried
-- (MAX_CONCURRENT_SESSIONS 1), as it must.
function User:get(client, path, label)
  local gen = self.token_gen
  local res, err = client:call("GET", path, label, nil, { token = self.token })
  if res and res.status == 401 then
    if self.token_gen ~= gen then return res, err end
    R.unexpected_401 = R.unexpected_401 + 1
    if #R.refused < 8 then
      R.refused[#R.refused + 1] = fmt("%s at +%.2f s: %s", label, now() - R.t_start, tostring(detail_of(res)))
    end
    self:relogin(client)
  end
  return res, err
end

function User:note_balance(res)
  local j = res and res.status == 200 and res.json
  local b = type(j) == "table" and (j.balance or j.cyber_token_balance or j.new_balance
    or (type(j.currency_balance) == "table" and j.currency_balance.tokens)
    or (type(j.balances) == "table" and j.balances.tokens))
  if type(b) == "number" then self.balance = b end
  if res and res.status == 400 and detail_of(res) == "토큰이 부족합니다" then self.balance = 0 end
  if (self.balance or 0) < 500 and not self.wants_tokens then
    self.wants_tokens = true
    R.grant_queue[#R.grant_queue + 1] = self
  end
end

local function note_play(res)
  if res and res.status == 200 and type(res.json) == "table" and res.json.play_id then
    R.acked_plays[#R.acked_plays + 1] = res.json.play_id
  end
end

-- A 2xx money answer whose key must be on a ledger row of `reason`. A
-- claim whose rewards hold no currency (an item, a multiplier) writes none.
local CURRENCIES = { "tokens", "gold", "gems", "exp" }
local function note_key(user, key, kind, res)
  if not (res and res.status == 200) then return end
  if kind == "event_claim" or kind == "mission_claim" then
    local rewards = type(res.json) == "table" and res.json.rewards
    local credited = false
    for _, cur in ipairs(CURRENCIES) do
      if type(rewards) == "table" and type(rewards[cur]) == "number" and rewards[cur] > 0 then credited = true end
    end
    if not credited then return end
  end
  R.acked_keys[#R.acked_keys + 1] = { key, user.id, kind }
end

local function pick(list) return list[math.random(#list)] end

-- Actions --------------------------------------------------------------

local A = {}

function A.profile(u, c)
  u:note_balance(u:get(c, "/api/users/profile", "GET /api/users/profile"))
end

function A.balance(u, c)
  u:note_balance(u:get(c, "/api/users/balance", "GET /api/users/balance"))
end

function A.games(u, c)
  u:get(c, "/api/games/", "GET /api/games/")
end

function A.slot(u, c)
  if (u.balance or 0) < 50 then return A.profile(u, c) end
  local res, key = money(u, c, "POST", "/api/games/slot/spin", "POST /api/games/slot/spin",
    { bet_amount = 10 * math.random(1, 5) })
  u:note_balance(res)
  note_play(res)
  note_key(u, key, "game_bet", res)
end

function A.rps(u, c)
  if (u.balance or 0) < 50 then return A.profile(u, c) end
  local res, key = money(u, c, "POST", "/api/games/rps/play", "POST /api/games/rps/play",
    { choice = pick { "rock", "paper", "scissors" }, bet_amount = 10 * math.random(1, 5) })
  u:note_balance(res)
  note_play(res)
  note_key(u, key, "game_bet", res)
end

function A.gacha(u, c)
  if (u.balance or 0) < 600 then return A.profile(u, c) end
  local res, key = money(u, c, "POST", "/api/games/gacha/pull", "POST /api/games/gacha/pull", { pull_count = 1 })
  u:note_balance(res)
  note_play(res)
  note_key(u, key, "game_bet", res)
end

-- A cash-out; `second` (a client of its own) sends another one at the same
-- moment. The round's result is settled once whatever happens.
local function cashout(u, c, game_id, race)
  local body = { game_id = game_id }
  if race then
    R.crash.double_cashouts = R.crash.double_cashouts + 1
    local other = new_client(c.port, "race")
    spawn("race-cashout", function()
      local res = money(u, other, "POST", "/api/games/crash/cashout", "POST /api/games/crash/cashout", body)
      if res and res.status == 200 and res.json and res.json.result == "cashed" then
        R.acked_cashed[#R.acked_cashed + 1] = { game_id, res.json.payout }
      end
      other:close()
    end)
  end
  -- A plain 503 (Redis or PostgreSQL down) moved nothing: try again until the
  -- round is reported or gone (404), for up to 60 s.
  local deadline = now() + 60
  local res
  repeat
    res = money(u, c, "POST", "/api/games/crash/cashout", "POST /api/games/crash/cashout", body)
    if res and res.status == 503 then sleep(0.5) end
  until not (res and res.status == 503) or now() > deadline
  if res and res.status == 200 and res.json then
    u:note_balance(res)
    if res.json.result == "cashed" then R.acked_cashed[#R.acked_cashed + 1] = { game_id, res.json.payout } end
  end
  return res
end

function A.crash(u, c)
  if (u.balance or 0) < 200 then return A.profile(u, c) end
  -- An abandoned round still runs (a new bet would get 409), or the run
  -- ends before a new round could: play slots.
  if (u.crash_busy_until or 0) > now() or now() > R.crash_cutoff then return A.slot(u, c) end
  local manual = math.random() < 0.35
  local auto = not manual and math.floor(110 + math.random() * (R.max_auto_x100 - 110)) / 100 or NULL
  local res, key = money(u, c, "POST", "/api/games/crash/bet", "POST /api/games/crash/bet",
    { bet_amount = 10 * math.random(1, 10), auto_cashout_multiplier = auto })
  u:note_balance(res)
  if not (res and res.status == 200 and res.json) then return end
  note_play(res)
  note_key(u, key, "game_bet", res)
  R.crash.bets = R.crash.bets + 1
  local game_id = res.json.game_id
  if manual then
    R.crash.manual = R.crash.manual + 1
    sleep(0.2 + math.random() * 2.8)
    cashout(u, c, game_id, math.random() < 0.25)
  elseif math.random() < 0.3 then
    -- Abandoned: the sweeper settles it at its target or when it crashed.
    R.crash.abandoned = R.crash.abandoned + 1
    -- Settled by the sweeper once the target is reached (3x: 18.3 s) or
    -- the round crashed.
    u.crash_busy_until = now() + R.crash_round_s + 3
  else
    R.crash.auto = R.crash.auto + 1
    local deadline = now() + R.crash_round_s + 5
    while now() < deadline and not R.stopping do
      sleep(0.5)
      local cur = u:get(c, "/api/games/crash/current", "GET /api/games/crash/current")
      local j = cur and cur.status == 200 and cur.json
      if type(j) == "table" and (j.active == false or j.round == NULL) then break end
    end
    cashout(u, c, game_id, false) -- reports the sweeper's result (or 404)
  end
end

-- Claims `path` for one mission or event: sometimes twice at once (two
-- connections, two keys: exactly one may credit), sometimes replaying the
-- same key afterwards (the stored answer comes back).
local function claim(u, c, path, label, kind)
  if math.random() < 0.3 then
    R.claims.raced_twice = R.claims.raced_twice + 1
    local other = new_client(c.port, "race")
    spawn("race-claim", function()
      local res, key = money(u, other, "POST", path, label, nil)
      note_key(u, key, kind, res)
      other:close()
    end)
  end
  local res, key = money(u, c, "POST", path, label, nil)
  note_key(u, key, kind, res)
  if res and res.status == 200 then
    u:note_balance(res)
    if math.random() < 0.3 then
      local again = money(u, c, "POST", path, label, nil, key)
      -- (A 503 during an outage tells nothing either way.)
      if again and again.status ~= 503
        and not (again.status == 200 and again.headers["idempotent-replayed"] == "true") then
        R.replay_mismatch = (R.replay_mismatch or 0) + 1
      end
    end
  end
  return res
end

function A.missions(u, c)
  local res = u:get(c, "/api/events/missions/all", "GET /api/events/missions/all")
  if not (res and res.status == 200 and type(res.json) == "table") then return end
  for _, um in ipairs(res.json) do
    if um.completed and not um.claimed then
      local r = claim(u, c, "/api/events/missions/claim/" .. um.mission_id,
        "POST /api/events/missions/claim/{id}", "mission_claim")
      if r and r.status == 200 then R.claims.mission = R.claims.mission + 1 end
      return
    end
  end
end

function A.events(u, c)
  local res = u:get(c, "/api/events/", "GET /api/events/")
  if not (res and res.status == 200 and type(res.json) == "table" and #res.json > 0) then return end
  local ev = pick(res.json)
  local part = ev.user_participation
  if part == NULL or part == nil then
    c:call("POST", "/api/events/join", "POST /api/events/join", { event_id = ev.id }, { token = u.token })
    return
  end
  if part.completed and not part.claimed then
    local r = claim(u, c, "/api/events/claim/" .. ev.id, "POST /api/events/claim/{id}", "event_claim")
    if r and r.status == 200 then R.claims.event = R.claims.event + 1 end
    return
  end
  if not part.completed and type(ev.requirements) == "table" then
    local progress = {}
    for k, v in pairs(ev.requirements) do
      if not SERVER_TRACKED[k] then progress[k] = v end
    end
    if next(progress) then
      c:call("PUT", "/api/events/progress/" .. ev.id, "PUT /api/events/progress/{id}", { progress = progress },
        { token = u.token })
    end
  end
end

function A.notifications(u, c)
  u:get(c, "/api/notifications?limit=20", "GET /api/notifications")
  if math.random() < 0.2 then
    c:call("POST", "/api/notifications/read-all", "POST /api/notifications/read-all", nil, { token = u.token })
  end
end

function A.login(u, c)
  u:relogin(c)
end

local WEIGHTS = {
  { A.profile, 14 }, { A.balance, 5 }, { A.games, 2 }, { A.slot, 22 }, { A.rps, 10 }, { A.gacha, 3 },
  { A.crash, 9 }, { A.missions, 5 }, { A.events, 5 }, { A.notifications, 4 }, { A.login, 1 },
}
local WEIGHT_SUM = 0
for _, w in ipairs(WEIGHTS) do WEIGHT_SUM = WEIGHT_SUM + w[2] end

local function pick_action()
  local r = math.random() * WEIGHT_SUM
  for _, w in ipairs(WEIGHTS) do
    r = r - w[2]
    if r <= 0 then return w[1] end
  end
  return A.profile
end

local function user_loop(u, port, think)
  local c = new_client(port, u.site_id)
  u.client = c
  while not R.stopping do
    pick_action()(u, c)
    sleep(-math.log(1 - math.random()) * think)
  end
  c:close()
end

------------------------------------------------------------- WebSockets

local function ws_frame(opcode, payload)
  local len = #payload
  local head
  if len < 126 then
    head = string.char(0x80 + opcode, 0x80 + len)
  else
    head = string.char(0x80 + opcode, 0x80 + 126, bit.rshift(len, 8), bit.band(len, 255))
  end
  local key = { math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255) }
  local out = {}
  for i = 1, len do out[i] = string.char(bit.bxor(payload:byte(i), key[(i - 1) % 4 + 1])) end
  return head .. string.char(unpack(key)) .. table.concat(out)
end

-- Parses one frame at the start of conn.buf: opcode, payload, or nil (more
-- bytes needed).
local function ws_parse(conn)
  local b = conn.buf
  if #b < 2 then return nil end
  local b1, b2 = b:byte(1, 2)
  local len, pos = bit.band(b2, 127), 3
  if len == 126 then
    if #b < 4 then return nil end
    len, pos = b:byte(3) * 256 + b:byte(4), 5
  elseif len == 127 then
    if #b < 10 then return nil end
    len = 0
    for i = 3, 10 do len = len * 256 + b:byte(i) end
    pos = 11
  end
  if #b < pos + len - 1 then return nil end
  conn.buf = b:sub(pos + len)
  return bit.band(b1, 15), b:sub(pos, pos + len - 1)
end

-- One notification socket per user, reopened after every close (a host
-- that died, a newer login, a drain) while the load runs.
local function ws_loop(u, port)
  while not R.stopping do
    local token = u.token
    local conn = token and tcp_connect(port, now() + 10)
    if conn then
      local key = "ZHJpbGwtd2Vic29ja2V0IQ=="
      local ok = conn:send("GET /ws/notifications/" .. u.id .. "?token=" .. token .. " HTTP/1.1\r\n"
        .. "Host: drill\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        .. "Sec-WebSocket-Key: " .. key .. "\r\nSec-WebSocket-Version: 13\r\n\r\n", now() + 10)
      local res = ok and conn:read_response(now() + 10, true)
      if res and res.status == 101 then
        R.ws.opened = R.ws.opened + 1
        local next_ping = now() + 20
        local code = "closed without a close frame"
        while not R.stopping do
          local op, payload = ws_parse(conn)
          if op then
            if op == 9 then
              conn:send(ws_frame(10, payload), now() + 5)
            elseif op == 8 then
              code = #payload >= 2 and tostring(payload:byte(1) * 256 + payload:byte(2)) or "1005"
              conn:send(ws_frame(8, payload:sub(1, 2)), now() + 1)
              break
            elseif op == 1 then
              local m = cjson.decode(payload)
              local t = type(m) == "table" and m.type or "?"
              R.ws.messages[t] = (R.ws.messages[t] or 0) + 1
            end
          else
            local deadline = math.min(next_ping, now() + 1)
            local got, err = conn:fill(deadline)
            if not got and err ~= "timeout" then break end
            if now() >= next_ping then
              conn:send(ws_frame(1, '{"type":"ping"}'), now() + 5)
              next_ping = now() + 20
            end
          end
        end
        if not R.stopping then R.ws.closes[code] = (R.ws.closes[code] or 0) + 1 end
      else
        R.ws.refused = R.ws.refused + 1
      end
      conn:close()
    end
    -- Back off; a socket refused for a stale token waits for the new one.
    local until_t = now() + 1
    while not R.stopping and now() < until_t do sleep(0.2) end
  end
end

------------------------------------------------------------------ admin

local function admin_loop(admin, port, users)
  local c = new_client(port, "admin")
  local last_send, last_broadcast, last_stats = now(), now(), now()
  while not R.stopping do
    local u = table.remove(R.grant_queue, 1)
    if u then
      local res, key = money(admin, c, "POST", "/api/admin/users/" .. u.id .. "/tokens/add?amount=5000",
        "POST /api/admin/users/{id}/tokens/add", { reason = "drill top-up" })
      if res and res.status == 200 then
        R.grants = R.grants + 1
        R.acked_keys[#R.acked_keys + 1] = { key, u.id, "admin_grant" }
        u.balance = (u.balance or 0) + 5000
        u.wants_tokens = false
      elseif not (res and res.status < 500) then
        R.grant_queue[#R.grant_queue + 1] = u -- try again
        sleep(0.5)
      else
        u.wants_tokens = false
      end
    else
      sleep(0.2)
    end
    local t = now()
    if t - last_send > 2 then
      last_send = t
      local target = pick(users)
      c:call("POST", "/api/admin/notifications/send", "POST /api/admin/notifications/send",
        { title = "drill", body = "hello " .. target.site_id, user_id = target.id }, { token = admin.token })
    end
    if t - last_broadcast > 15 then
      last_broadcast = t
      c:call("POST", "/api/admin/notifications/broadcast", "POST /api/admin/notifications/broadcast",
        { title = "drill", body = "to everyone" }, { token = admin.token })
    end
    if t - last_stats > 5 then
      last_stats = t
      c:call("GET", "/api/admin/stats", "GET /api/admin/stats", nil, { token = admin.token })
    end
  end
  c:close()
end

local function probe_loop(port)
  local c = new_client(port, "probe")
  while not R.stopping do
    c:call("GET", "/", "GET /", nil, { timeout = 10 })
    sleep(0.1)
  end
  c:close()
end

------------------------------------------------------------ processes

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == 0 or ok == true
end

local function sh_out(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local read_file = require("spec.support.host").read_file

-- Runs a shell command in a child process without blocking the scheduler;
-- returns its exit status.
local function run_async(cmd, log)
  local pid = haproxy.spawn({ "sh", "-c", cmd }, nil, log)
  while true do
    local p, how, code = wait.wait(pid, wait.WNOHANG)
    if p == pid then return how == "exited" and code or 128 + (code or 0) end
    sleep(0.05)
  end
end

-- DRILL_ON_SLOW: a shell command run once (DRILL_DIR set) as soon as a
-- request has waited 8 s for its answer, to look at the hosts while it
-- hangs (gdb, ss, /proc...).
local function slow_watch(ctx)
  while not R.stopping do
    sleep(1)
    for o in pairs(R.open) do
      if now() - o.t0 > 8 then
        io.stderr:write(fmt("drill: %s waits since %.1f s: running DRILL_ON_SLOW\n", o.label, o.t0 - R.t_start))
        run_async("DRILL_DIR=" .. ctx.dir .. " " .. ctx.on_slow, ctx.dir .. "/on_slow.log")
        return
      end
    end
  end
end

local function parse_env(path)
  local env = {}
  for line in (read_file(path) or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([A-Z_]+)=(.*)$")
    if k then env[k] = v end
  end
  return env
end

-- Starts host `name` (a process group of its own); returns {pid, port, ...}.
-- blocking: wait with socket.sleep (setup) instead of the scheduler.
local function start_host(ctx, name, blocking, port)
  local dir = ctx.dir .. "/" .. name
  sh("mkdir -p " .. dir)
  os.remove(dir .. "/ready")
  local env = {}
  for k, v in pairs(ctx.host_env) do env[k] = v end
  env.READY_FILE, env.WORKERS_FILE = dir .. "/ready", dir .. "/workers"
  if port then env.PORT = tostring(port) end
  local h = { name = name, dir = dir, log = dir .. "/host.log" }
  h.pid = haproxy.spawn({ ctx.bin, "serve" }, env, h.log, { cwd = ctx.root })
  local deadline = now() + 30
  while now() < deadline do
    local port = tonumber((read_file(env.READY_FILE) or ""):match("%d+"))
    if port then h.port = port return h end
    if wait.wait(h.pid, wait.WNOHANG) == h.pid then break end
    if blocking then socket.sleep(0.05) else sleep(0.05) end
  end
  error(name .. " did not start:\n" .. (read_file(h.log) or ""):sub(-3000))
end

local function workers_of(h)
  local pids = {}
  for p in (read_file(h.dir .. "/workers") or ""):gmatch("%d+") do pids[#pids + 1] = tonumber(p) end
  return pids
end

-- Waits (blocking: no request can start meanwhile) until every process of
-- pids has exited: gone, or a zombie (its sockets are closed by then).
local function wait_exited(pids)
  local deadline = now() + 10
  for _, pid in ipairs(pids) do
    while now() < deadline do
      local stat = read_file("/proc/" .. pid .. "/stat")
      if not stat or stat:match("%) (%S)") == "Z" then break end
      socket.sleep(0.001)
    end
  end
end

-- The pids of a host: the master, its children, the workers file.
local function pids_of(h)
  local pids, seen = { h.pid }, { [h.pid] = true }
  for _, pid in ipairs(workers_of(h)) do
    if not seen[pid] then pids[#pids + 1], seen[pid] = pid, true end
  end
  for _, name in ipairs(require("posix.dirent").dir("/proc")) do
    local pid = tonumber(name)
    local stat = pid and read_file("/proc/" .. name .. "/stat")
    if stat and tonumber(stat:match("%) %S+ (%d+)")) == h.pid and not seen[pid] then
      pids[#pids + 1], seen[pid] = pid, true
    end
  end
  return pids
end

-- SIGKILLs the host's whole process group and returns once every process
-- of it has exited, so "in flight at the kill" is exact: the driver sends
-- nothing between the kill and the host being gone.
local function kill_host(h)
  if h.dead then return end
  local pids = pids_of(h)
  haproxy.kill_group(h.pid, signal.SIGKILL)
  wait.wait(h.pid)
  wait_exited(pids)
  h.dead = true
end

local function stop_host(h)
  if h.dead then return end
  haproxy.kill_group(h.pid, signal.SIGTERM)
  local deadline = now() + 15
  while now() < deadline do
    if wait.wait(h.pid, wait.WNOHANG) == h.pid then h.dead = true return end
    socket.sleep(0.05)
  end
  kill_host(h)
end

------------------------------------------------------------------ faults

-- Local wall-clock time with milliseconds (HAProxy's log uses local time).
local function clock(t)
  return os.date("%H:%M:%S", math.floor(t)) .. fmt(".%03d", math.floor((t % 1) * 1000))
end

local function window(kind, name, t0)
  local w = { kind = kind, name = name, t0 = t0 - R.t_start, inflight = R.inflight, failures = 0 }
  R.windows[#R.windows + 1] = w
  return w
end

-- When did the first 2xx of a database-backed request complete after t?
-- (The load's own answers show recovery: the probe of GET / needs nothing.)
local function recovery_probe(ctx, w, label)
  spawn("recovery-" .. label, function()
    local c = new_client(ctx.lb.port, "recovery")
    local start = now()
    while now() - start < 60 do
      local res = c:call("GET", "/api/users/profile", "GET /api/users/profile", nil, { token = ctx.users[1].token, timeout = 10 })
      if res and res.status == 200 then
        w.recovered = now() - R.t_start
        break
      end
      sleep(0.1)
    end
    c:close()
  end)
end

-- One service outage: o.stop_cmd stops it, the services start again 3 s
-- later, and the window (o.kind, o.title) lasts until o.grace_s after the
-- start, the time the hosts' reconnect backoff may still cost. The service
-- must come back on its port (o.port_key in services.env).
local function restart_service(ctx, o)
  local t0, log = R.t_start, ctx.dir .. "/faults.log"
  local w = window(o.kind, o.title, now())
  local rc = run_async(o.stop_cmd, log)
  w.down = now() - t0
  sleep(3)
  local rc2 = run_async(fmt("cd %s && env -u CC_PG_FAST -u CC_REDIS_EPHEMERAL tools/services.sh start %s %s",
    ctx.root, ctx.datadir, ctx.dir .. "/services.env"), log)
  w.up = now() - t0
  w.t1 = w.up + o.grace_s
  R.faults_log[#R.faults_log + 1] = fmt("%6.1f s  %s, rc %d; started at %.1f s (rc %d)", w.t0, o.stopped, rc, w.up, rc2)
  recovery_probe(ctx, w, o.kind)
  if parse_env(ctx.dir .. "/services.env")[o.port_key] ~= ctx.services[o.port_key] then
    S.errors[#S.errors + 1] = o.name .. " came back on another port: the drill cannot go on"
  end
end

local function fault_loop(ctx)
  local d = ctx.duration
  local t0 = R.t_start
  -- 1. A worker of host1.
  sleep_until(t0 + d * 0.15)
  if ctx.faults.worker then
    local pid = workers_of(ctx.hosts[1])[1]
    local w = window("kill", "worker " .. pid .. " of host1 (SIGKILL)", now())
    signal.kill(pid, signal.SIGKILL)
    wait_exited { pid }
    w.t1 = w.t0 + 2
    R.faults_log[#R.faults_log + 1] = fmt("%6.1f s  SIGKILL worker %d of host1", w.t0, pid)
  end
  -- 2. PostgreSQL, stopped like a crash (-m immediate), back 3 s later.
  sleep_until(t0 + d * 0.30)
  if ctx.faults.pg then
    restart_service(ctx, {
      kind = "pg", name = "PostgreSQL", port_key = "PGPORT",
      title = "PostgreSQL restart (pg_ctl stop -m immediate, 3 s down)",
      stopped = "PostgreSQL stopped (-m immediate)",
      stop_cmd = fmt("runuser -u postgres -- %s/pg_ctl stop -D %s -m immediate -w >/dev/null",
        ctx.services.CC_PG_BIN, ctx.services.CC_PG_DATA),
      grace_s = 6, -- pool reconnects back off up to 5 s (host/pg.c), plus one second
    })
  end
  -- 3. Redis, shut down (it saves its snapshot) and back 3 s later.
  sleep_until(t0 + d * 0.50)
  if ctx.faults.redis then
    restart_service(ctx, {
      kind = "redis", name = "Redis", port_key = "REDIS_PORT",
      title = "Redis restart (SHUTDOWN, 3 s down)",
      stopped = "Redis shut down",
      stop_cmd = fmt("redis-cli -h 127.0.0.1 -p %s shutdown >/dev/null 2>&1; sleep 0.2", ctx.services.REDIS_PORT),
      grace_s = 3, -- Redis reconnects back off up to 2 s (host/redis.c), plus one second
    })
  end
  -- 4. host2, every process of it at once; it is started again 8 s later.
  sleep_until(t0 + d * 0.68)
  if ctx.faults.host then
    local h = ctx.hosts[2]
    local w = window("kill", "host2 process group (SIGKILL)", now())
    w.host_kill = true
    kill_host(h)
    -- HAProxy marks it down after two failed checks (inter), plus a second.
    w.t1 = w.t0 + 2 * ctx.check_inter_s + 1
    R.faults_log[#R.faults_log + 1] = fmt("%6.1f s  SIGKILL host2 (pgid %d) at %s, %d requests in flight", w.t0, h.pid,
      clock(R.t_start + w.t0), w.inflight)
    sleep(8)
    -- On the same port: HAProxy's server line names it.
    local ok, nh = pcall(start_host, ctx, "host2", false, h.port)
    if ok then
      ctx.hosts[2] = nh
      R.host_restarted = true
      R.faults_log[#R.faults_log + 1] = fmt("%6.1f s  host2 started again (pid %d, port %d)", now() - t0, nh.pid, nh.port)
    else
      S.errors[#S.errors + 1] = "host2 did not restart: " .. tostring(nh)
    end
  end
end

------------------------------------------------------------------ checks

local function psql(ctx, sql)
  local f = ctx.dir .. "/check.sql"
  local fh = assert(io.open(f, "w"))
  fh:write(sql)
  fh:close()
  return sh_out(fmt("psql -X -q -At -F '|' -v ON_ERROR_STOP=1 '%s' -f %s 2>&1", ctx.database_url, f))
end

local CHECKS = {
  { "money", "balance = sum(ledger) for every user and currency", [[
    SELECT count(*) FROM wallet_balances b
    LEFT JOIN (SELECT user_id, currency, sum(delta) AS s FROM wallet_ledger GROUP BY 1, 2) l USING (user_id, currency)
    WHERE b.balance <> coalesce(l.s, 0)]] },
  { "money", "last ledger balance_after = balance", [[
    SELECT count(*) FROM wallet_balances b
    JOIN LATERAL (SELECT balance_after FROM wallet_ledger l WHERE l.user_id = b.user_id AND l.currency = b.currency
                  ORDER BY id DESC LIMIT 1) last ON true
    WHERE last.balance_after <> b.balance]] },
  { "money", "ledger (user, currency, reason, reference) unique", [[
    SELECT count(*) FROM (SELECT 1 FROM wallet_ledger WHERE reference IS NOT NULL
      GROUP BY user_id, currency, reason, reference HAVING count(*) > 1) d]] },
  { "money", "ledger (user, idempotency key, currency, reason) unique", [[
    SELECT count(*) FROM (SELECT 1 FROM wallet_ledger WHERE idempotency_key IS NOT NULL
      GROUP BY user_id, idempotency_key, currency, reason HAVING count(*) > 1) d]] },
  { "money", "one game_plays row per (seed, nonce)", [[
    SELECT count(*) FROM (SELECT 1 FROM game_plays GROUP BY fairness_seed_id, nonce HAVING count(*) > 1) d]] },
  { "money", "every play has exactly one stake of its bet", [[
    SELECT count(*) FROM game_plays p
    LEFT JOIN (SELECT reference, count(*) AS n, sum(delta) AS s FROM wallet_ledger WHERE reason = 'game_bet'
               GROUP BY reference) l ON l.reference = 'play:' || p.id
    WHERE coalesce(l.n, 0) <> 1 OR l.s <> -p.bet_amount]] },
  { "money", "every stake has its play", [[
    SELECT count(*) FROM wallet_ledger l WHERE reason = 'game_bet'
    AND NOT EXISTS (SELECT 1 FROM game_plays p WHERE 'play:' || p.id = l.reference)]] },
  { "money", "slot/rps/gacha payouts credited exactly as recorded", [[
    SELECT count(*) FROM game_plays p
    LEFT JOIN (SELECT reference, count(*) AS n, sum(delta) AS s FROM wallet_ledger WHERE reason = 'game_payout'
               GROUP BY reference) l ON l.reference = 'play:' || p.id
    WHERE p.game_type <> 'crash' AND coalesce(l.s, 0) <> p.payout]] },
  { "money", "crash rounds credited exactly as recorded (payout or refund, once)", [[
    SELECT count(*) FROM game_plays p
    LEFT JOIN (SELECT reference, count(*) AS n, sum(delta) AS s FROM wallet_ledger
               WHERE reason IN ('game_payout', 'game_refund') GROUP BY reference) l
      ON l.reference = 'crash:' || (p.outcome->>'game_id')
    WHERE p.game_type = 'crash' AND (coalesce(l.s, 0) <> p.payout OR coalesce(l.n, 0) > 1)]] },
  { "rounds", "no crash round left open (game_plays pending)", [[
    SELECT count(*) FROM game_plays WHERE status <> 'settled']] },
  { "rounds", "no crash round left open (crash_sessions active)", [[
    SELECT count(*) FROM crash_sessions WHERE status = 'active']] },
  { "money", "one mission claim per claimed mission row, none for unclaimed", [[
    SELECT count(*) FROM user_missions m
    LEFT JOIN (SELECT reference, count(*) AS n FROM wallet_ledger WHERE reason = 'mission_claim' AND currency = 'tokens'
               GROUP BY reference) l ON l.reference = 'mission:' || m.id
    WHERE (m.claimed AND coalesce(l.n, 0) <> 1) OR (NOT m.claimed AND coalesce(l.n, 0) <> 0)]] },
  { "money", "one event claim per claimed participation, none for unclaimed", [[
    SELECT count(*) FROM event_participations p JOIN events e ON e.id = p.event_id
    LEFT JOIN (SELECT user_id, reference, count(*) AS n FROM wallet_ledger WHERE reason = 'event_claim'
               AND currency = 'tokens' GROUP BY 1, 2) l ON l.user_id = p.user_id AND l.reference = 'event:' || p.event_id
    WHERE coalesce((e.rewards->>'tokens')::bigint, 0) > 0
      AND ((p.claimed_rewards AND coalesce(l.n, 0) <> 1) OR (NOT p.claimed_rewards AND coalesce(l.n, 0) <> 0))]] },
  { "money", "one ledger row per admin grant and one grant per ledger row", [[
    SELECT (SELECT count(*) FROM admin_audit a WHERE action = 'user.tokens_add'
            AND (SELECT count(*) FROM wallet_ledger l WHERE l.reason = 'admin_grant' AND l.reference = 'audit:' || a.id) <> 1)
         + (SELECT count(*) FROM wallet_ledger l WHERE reason = 'admin_grant'
            AND NOT EXISTS (SELECT 1 FROM admin_audit a WHERE 'audit:' || a.id = l.reference))]] },
  { "lost", "every acknowledged play is in game_plays", [[
    SELECT count(*) FROM drill_plays d WHERE NOT EXISTS (SELECT 1 FROM game_plays p WHERE p.id = d.play_id)]] },
  { "lost", "every acknowledged stake, claim and grant is in the ledger under its key", [[
    SELECT count(*) FROM drill_keys d WHERE NOT EXISTS (SELECT 1 FROM wallet_ledger l
      WHERE l.user_id = d.user_id AND l.idempotency_key = d.key AND l.reason = d.reason)]] },
  { "lost", "every acknowledged crash cash-out is paid as answered", [[
    SELECT count(*) FROM drill_cashed d WHERE (SELECT coalesce(sum(delta), 0) FROM wallet_ledger l
      WHERE l.reference = 'crash:' || d.game_id AND l.reason = 'game_payout') <> d.payout]] },
}

local function write_lines(path, rows)
  local f = assert(io.open(path, "w"))
  for _, r in ipairs(rows) do f:write(table.concat(r, "\t"), "\n") end
  f:close()
end

local function db_checks(ctx, result)
  local plays, keys, cashed = {}, {}, {}
  for _, id in ipairs(R.acked_plays) do plays[#plays + 1] = { fmt("%d", id) } end
  for _, k in ipairs(R.acked_keys) do keys[#keys + 1] = { k[1], fmt("%d", k[2]), k[3] } end
  for _, c in ipairs(R.acked_cashed) do
    if type(c[2]) == "number" and c[2] > 0 then cashed[#cashed + 1] = { c[1], fmt("%d", c[2]) } end
  end
  write_lines(ctx.dir .. "/plays.tsv", plays)
  write_lines(ctx.dir .. "/keys.tsv", keys)
  write_lines(ctx.dir .. "/cashed.tsv", cashed)
  local sql = {
    "CREATE TEMP TABLE drill_plays (play_id bigint);",
    "CREATE TEMP TABLE drill_keys (key text, user_id bigint, reason text);",
    "CREATE TEMP TABLE drill_cashed (game_id text, payout bigint);",
    fmt("\\copy drill_plays FROM '%s/plays.tsv'", ctx.dir),
    fmt("\\copy drill_keys FROM '%s/keys.tsv'", ctx.dir),
    fmt("\\copy drill_cashed FROM '%s/cashed.tsv'", ctx.dir),
  }
  for i, c in ipairs(CHECKS) do sql[#sql + 1] = fmt("SELECT %d, (%s);", i, c[3]) end
  sql[#sql + 1] = "SELECT 'totals', (SELECT count(*) FROM game_plays), (SELECT count(*) FROM wallet_ledger), "
    .. "(SELECT count(*) FROM users), (SELECT count(*) FROM user_missions WHERE claimed), "
    .. "(SELECT count(*) FROM event_participations WHERE claimed_rewards), "
    .. "(SELECT count(*) FROM admin_audit WHERE action = 'user.tokens_add'), "
    .. "(SELECT count(*) FROM game_plays WHERE game_type = 'crash'), "
    .. "(SELECT count(*) FROM wallet_ledger WHERE reason = 'game_refund');"
  local out = psql(ctx, table.concat(sql, "\n"))
  local seen = {}
  for line in out:gmatch("[^\n]+") do
    local i, n = line:match("^(%d+)|(%d+)$")
    if i then seen[tonumber(i)] = tonumber(n) end
    local t = line:match("^totals|(.*)$")
    if t then
      local v = {}
      for x in t:gmatch("[^|]+") do v[#v + 1] = tonumber(x) end
      result.db_totals = { plays = v[1], ledger = v[2], users = v[3], missions_claimed = v[4],
        events_claimed = v[5], grants = v[6], crash_plays = v[7], crash_refunds = v[8] }
    end
  end
  for i, c in ipairs(CHECKS) do
    local n = seen[i]
    result.checks[#result.checks + 1] = { group = c[1], name = c[2], ok = n == 0, value = n,
      detail = n == nil and ("psql: " .. out:sub(1, 400)) or nil }
  end
  -- Redis: no round in flight.
  local active = sh_out(fmt("redis-cli -h 127.0.0.1 -p %s zcard crash:active 2>&1", ctx.services.REDIS_PORT))
  local sessions = sh_out(fmt("redis-cli -h 127.0.0.1 -p %s --scan --pattern 'crash:session:*' 2>&1 | wc -l",
    ctx.services.REDIS_PORT))
  local n = tonumber(active:match("%d+") or "-1") + tonumber(sessions:match("%d+") or "-1")
  result.checks[#result.checks + 1] = { group = "rounds", name = "no crash round left in Redis (crash:active, crash:session:*)",
    ok = n == 0, value = n }
end

local function overlaps(f, w)
  return f.t0 <= w.t1 and f.t1 >= w.t0
end

-- Classifies every 5xx and broken answer against the outage windows.
local function http_checks(ctx, result)
  local outside = {}
  for _, f in ipairs(R.failures) do
    local ok = false
    if f.status ~= 500 then
      for _, w in ipairs(R.windows) do
        if overlaps(f, w) then
          local outcome = f.detail and f.detail:find(OUTCOME_UNKNOWN, 1, true)
          if f.status == 503 and not outcome then ok = true
          elseif f.status == 503 and outcome and w.kind == "pg" then ok = true
          elseif (f.status == 502 or f.status == 504 or not f.status) and w.kind == "kill" then ok = true
          end
          if ok then
            w.failures = w.failures + 1
            w.seen = w.seen or {}
            local what = fmt("%s -> %s", f.label, tostring(f.status or f.err))
            if w.kind == "kill" then what = what .. fmt(" [%.3f..%.3f]", f.t0 - w.t0, f.t1 - w.t0) end
            w.seen[what] = (w.seen[what] or 0) + 1
            break
          end
        end
      end
    end
    if not ok then outside[#outside + 1] = f end
  end
  local lines = {}
  for i = 1, math.min(#outside, 15) do
    local f = outside[i]
    lines[#lines + 1] = fmt("%.2f-%.2f s %s -> %s %s (%s)", f.t0, f.t1, f.label, tostring(f.status or f.err),
      f.detail or "", f.by or "no server")
  end
  result.checks[#result.checks + 1] = { group = "http", name = "no 5xx or broken answer outside the outage windows",
    ok = #outside == 0, value = #outside, detail = #lines > 0 and table.concat(lines, "\n      ") or nil }
  -- A kill may fail the requests the dead worker or host had in flight,
  -- and (for a host) those HAProxy sends it before its health check marks
  -- it down (fall 2 x inter): nothing that starts later may fail. (Observed
  -- with HAProxy 2.6: a POST dispatched within a few tens of milliseconds
  -- after a host's death may see its keep-alive client connection closed
  -- without an answer, so "in flight at the kill" is reported, not enforced;
  -- the client's keyed retry resolves those.)
  local late = {}
  for _, w in ipairs(R.windows) do
    if w.kind == "kill" then
      local settle = w.host_kill and 2 * ctx.check_inter_s + 0.1 or 0.1
      w.broken, w.broken_after = 0, 0
      for _, f in ipairs(R.failures) do
        if overlaps(f, w) and (f.status == 502 or f.status == 504 or not f.status) then
          w.broken = w.broken + 1
          if f.t0 > w.t0 then w.broken_after = w.broken_after + 1 end
        end
        if f.t0 > w.t0 + settle and f.t0 <= w.t1 and f.status ~= 503 then
          late[#late + 1] = fmt("%s: %s -> %s at +%.3f s", w.name, f.label, tostring(f.status or f.err), f.t0 - w.t0)
        end
      end
    end
  end
  result.checks[#result.checks + 1] = { group = "http",
    name = "after a kill, nothing fails once the health check could mark the host down",
    ok = #late == 0, value = #late, detail = #late > 0 and table.concat(late, "; ", 1, math.min(#late, 8)) or nil }
  -- host1 answered in every 2-second slice.
  local gaps = {}
  for s = 0, math.floor(R.t_stop - R.t_start) - 2, 2 do
    local n = 0
    for b = s, s + 1 do n = n + ((R.buckets[b] or {}).host1 or 0) end
    if n == 0 then gaps[#gaps + 1] = fmt("%d-%d s", s, s + 2) end
  end
  result.checks[#result.checks + 1] = { group = "http", name = "host1 (never killed) answered in every 2 s slice",
    ok = #gaps == 0, value = #gaps, detail = #gaps > 0 and table.concat(gaps, ", ") or nil }
  local slow = {}
  for i = 1, math.min(#R.slow, 10) do
    local f = R.slow[i]
    slow[#slow + 1] = fmt("%.2f-%.2f s %s -> %s (%s)", f.t0, f.t1, f.label, tostring(f.status), f.by or "no server")
  end
  result.checks[#result.checks + 1] = { group = "http", name = fmt("every request answered within %d s", SLOW_S),
    ok = #R.slow == 0, value = #R.slow, detail = #slow > 0 and table.concat(slow, "\n      ") or nil }
  result.checks[#result.checks + 1] = { group = "http", name = "no unexpected 401 (a valid session refused)",
    ok = R.unexpected_401 == 0, value = R.unexpected_401,
    detail = #R.refused > 0 and table.concat(R.refused, "; ") or nil }
  result.checks[#result.checks + 1] = { group = "lost", name = "every money request's outcome resolved (no unknown left)",
    ok = R.unresolved == 0, value = R.unresolved }
  result.checks[#result.checks + 1] = { group = "money", name = "a replayed Idempotency-Key returns the stored answer",
    ok = (R.replay_mismatch or 0) == 0, value = R.replay_mismatch or 0 }
  result.checks[#result.checks + 1] = { group = "driver",
    name = "every fault ran (worker, PostgreSQL, Redis, host killed and started again)",
    ok = #R.windows == ctx.fault_count and (R.host_restarted == true) == (ctx.faults.host == true),
    value = #R.windows }
  result.checks[#result.checks + 1] = { group = "driver", name = "no driver error", ok = #S.errors == 0, value = #S.errors,
    detail = #S.errors > 0 and table.concat(S.errors, "\n      "):sub(1, 3000) or nil }
end

------------------------------------------------------------------ report

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end

local function report(ctx, result)
  local out = {}
  local function p(...) out[#out + 1] = fmt(...) end
  local wall = R.t_stop - R.t_start
  p("drill: %d users, %.0f s of load, %d requests (%.0f req/s), 2 hosts x %s workers, HAProxy check every %s",
    ctx.users_n, wall, R.total, R.total / wall, ctx.workers, ctx.check_inter)
  p("started at %s (HAProxy log times are local: %s)", os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(R.t_start)),
    os.date("%H:%M:%S", math.floor(R.t_start)))
  p("driver: %.1f s CPU for %.1f s wall (%.0f %% of one core), worst timer lag %.0f ms",
    result.driver_cpu, result.driver_wall, 100 * result.driver_cpu / result.driver_wall, (S.max_lag or 0) * 1000)
  p("")
  p("%-44s %8s %8s %9s %9s %6s %6s %6s", "endpoint", "count", "req/s", "p50 ms", "p99 ms", "2xx", "4xx", "5xx+")
  local labels = {}
  for l in pairs(R.ep) do labels[#labels + 1] = l end
  table.sort(labels, function(a, b) return R.ep[a].n > R.ep[b].n end)
  for _, l in ipairs(labels) do
    local e = R.ep[l]
    table.sort(e.lat)
    local ok, c4, c5 = 0, 0, e.errs
    for st, n in pairs(e.st) do
      if st < 300 then ok = ok + n elseif st < 500 then c4 = c4 + n else c5 = c5 + n end
    end
    p("%-44s %8d %8.1f %9.2f %9.2f %6d %6d %6d", l, e.n, e.n / wall, percentile(e.lat, 0.5), percentile(e.lat, 0.99),
      ok, c4, c5)
  end
  p("")
  p("faults:")
  for _, l in ipairs(R.faults_log) do p("  %s", l) end
  p("outage windows (failures counted inside):")
  for _, w in ipairs(R.windows) do
    p("  %6.1f - %6.1f s  %-58s in flight %3d, failed %3d%s%s", w.t0, w.t1 or -1, w.name, w.inflight, w.failures,
      w.broken and fmt(" (%d broken, %d of them sent after the kill)", w.broken, w.broken_after) or "",
      w.recovered and fmt(", first 2xx profile read at %.1f s", w.recovered) or "")
    local seen = {}
    for what, n in pairs(w.seen or {}) do seen[#seen + 1] = { what, n } end
    table.sort(seen, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
    for i, x in ipairs(seen) do seen[i] = fmt("%s (%d)", x[1], x[2]) end
    if #seen > 0 then p("      %s", table.concat(seen, "; ", 1, math.min(#seen, 8))) end
  end
  local hosts = {}
  for _, b in pairs(R.buckets) do for h, n in pairs(b) do hosts[h] = (hosts[h] or 0) + n end end
  local hl = {}
  for h, n in pairs(hosts) do hl[#hl + 1] = h .. " " .. n end
  table.sort(hl)
  p("answers by host: %s", table.concat(hl, ", "))
  p("money: %d plays acknowledged, %d crash rounds (%d manual, %d watched, %d abandoned, %d double cash-outs), "
    .. "%d admin grants, %d mission and %d event claims (%d raced twice), %d keyed retries, %d replays",
    #R.acked_plays, R.crash.bets, R.crash.manual, R.crash.auto, R.crash.abandoned, R.crash.double_cashouts,
    R.grants, R.claims.mission, R.claims.event, R.claims.raced_twice, R.retries, R.replays)
  local wm = {}
  for k, n in pairs(R.ws.messages) do wm[#wm + 1] = k .. " " .. n end
  table.sort(wm)
  local wc = {}
  for k, n in pairs(R.ws.closes) do wc[#wc + 1] = k .. " " .. n end
  table.sort(wc)
  p("sockets: %d opened, %d refused; messages: %s; closes: %s", R.ws.opened, R.ws.refused,
    table.concat(wm, ", "), table.concat(wc, ", "))
  if result.db_totals then
    local t = result.db_totals
    p("database: %d users, %d plays (%d crash, %d refunded), %d ledger rows, %d missions and %d events claimed, %d grants",
      t.users, t.plays, t.crash_plays, t.crash_refunds, t.ledger, t.missions_claimed, t.events_claimed, t.grants)
  end
  p("settling: every crash round closed %.1f s after the load stopped", result.settle_s or -1)
  p("")
  p("invariants:")
  for _, c in ipairs(result.checks) do
    p("  [%s] %s%s", c.ok and "ok" or "FAIL", c.name, c.ok and "" or fmt(" (%s)", tostring(c.value)))
    if c.detail and not c.ok then p("      %s", c.detail) end
  end
  p("drill %s", result.ok and "passed" or "FAILED")
  return table.concat(out, "\n")
end

------------------------------------------------------------------- setup

local function iso(t)
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z", math.floor(t))
end

local function setup(ctx)
  ctx.dir = sh_out(fmt("mkdir -p %s && mktemp -d %s/cc-drill-XXXXXX", ctx.tmp, ctx.tmp)):gsub("%s+$", "")
  sh("chmod 755 " .. ctx.dir)
  ctx.datadir = ctx.dir .. "/services"
  -- Durable services: fsync on, Redis snapshots (no CC_PG_FAST, no
  -- CC_REDIS_EPHEMERAL).
  assert(sh(fmt("cd %s && env -u CC_PG_FAST -u CC_REDIS_EPHEMERAL tools/services.sh start %s %s >%s/services.log 2>&1",
    ctx.root, ctx.datadir, ctx.dir .. "/services.env", ctx.dir)), "services did not start: see " .. ctx.dir)
  ctx.services = parse_env(ctx.dir .. "/services.env")
  ctx.database_url = ctx.services.DATABASE_URL
  local secret = sh_out("head -c 48 /dev/urandom | base64 | tr -d '\\n/+='")
  ctx.admin_password = "drill-admin-" .. sh_out("head -c 9 /dev/urandom | base64 | tr -d '\\n/+='")
  ctx.host_env = {
    APP_PROFILE = "production", HOST = "127.0.0.1", PORT = "0", WORKERS = tostring(ctx.workers),
    DATABASE_URL = ctx.database_url, REDIS_HOST = "127.0.0.1", REDIS_PORT = ctx.services.REDIS_PORT,
    JWT_SECRET_KEY = secret, TRUSTED_PROXIES = "127.0.0.1", LOG_LEVEL = ctx.log_level,
    FIXTURE_SCRIPTS = false, RELOAD_WATCH = "false", MIGRATE_ON_START = "false",
    CRASH_SWEEP_INTERVAL_MS = tostring(ctx.sweep_ms),
  }
  local env = fmt("DATABASE_URL='%s' REDIS_HOST=127.0.0.1 REDIS_PORT=%s APP_PROFILE=production JWT_SECRET_KEY='%s'",
    ctx.database_url, ctx.services.REDIS_PORT, secret)
  assert(sh(fmt("cd %s && %s %s migrate >>%s/setup.log 2>&1", ctx.root, env, ctx.bin, ctx.dir)),
    "cchost migrate failed: see " .. ctx.dir .. "/setup.log")
  assert(sh(fmt("cd %s && %s ADMIN_PASSWORD='%s' %s admin create --site-id drilladmin --nickname drilladmin "
    .. "--phone 01099990000 >>%s/setup.log 2>&1", ctx.root, env, ctx.admin_password, ctx.bin, ctx.dir)),
    "cchost admin create failed: see " .. ctx.dir .. "/setup.log")
  ctx.hosts = { start_host(ctx, "host1", true), start_host(ctx, "host2", true) }
  ctx.lb = haproxy.start { hosts = { ctx.hosts[1].port, ctx.hosts[2].port }, check_inter = ctx.check_inter,
                           dir = ctx.dir }
end

local function teardown(ctx)
  R.stopping = true
  if ctx.lb then pcall(ctx.lb.stop, ctx.lb) end
  for _, h in ipairs(ctx.hosts or {}) do pcall(stop_host, h) end
  if ctx.datadir then
    sh(fmt("cd %s && tools/services.sh %s %s >/dev/null 2>&1", ctx.root, ctx.keep and "stop" or "destroy", ctx.datadir))
  end
  if ctx.dir and not ctx.keep then sh("rm -rf " .. ctx.dir) end
end

-- Signs the players up and logs the admin in (through HAProxy), creates
-- an event that plays complete, and gives every player a first top-up.
local function populate(ctx)
  local port = ctx.lb.port
  local c = new_client(port, "setup")
  local admin = setmetatable({ site_id = "drilladmin", password = ctx.admin_password, seq = 0, tag = "admin" }, User)
  assert(run_task("admin login", admin.relogin, admin, c), "admin login failed")
  local now_t = os.time()
  local ev = run_task("event", c.call, c, "POST", "/api/admin/events/", "POST /api/admin/events/", {
    title = "drill: 30 plays", description = "made by tools/drill.lua", event_type = "special",
    start_date = iso(now_t - 3600), end_date = iso(now_t + 86400), rewards = { tokens = 300, gold = 5 },
    requirements = { play_count = 30 }, priority = 10,
  }, { token = admin.token })
  assert(ev and ev.status == 201, "event creation failed: " .. tostring(ev and ev.body))
  c:close()
  local users = {}
  local salt = tostring(math.random(10000, 99999))
  for i = 1, ctx.users_n do
    users[i] = setmetatable({ site_id = fmt("drill%s%03d", salt, i), password = "drill-password-" .. i, seq = 0 }, User)
  end
  local pending = #users
  for i, u in ipairs(users) do
    spawn("signup", function()
      local uc = new_client(port, u.site_id)
      for _ = 1, 20 do
        local res = uc:call("POST", "/api/auth/signup", "POST /api/auth/signup", {
          site_id = u.site_id, nickname = "n" .. u.site_id, phone_number = fmt("010%s%03d", salt, i),
          invite_code = "5858", password = u.password,
        })
        if res and res.status == 200 then
          u.token, u.id, u.token_gen = res.json.access_token, res.json.user.id, 1
          u.tag = tostring(u.id)
          break
        end
        sleep(0.5)
      end
      uc:close()
      pending = pending - 1
    end)
  end
  run_loop(function() return pending == 0 end)
  for _, u in ipairs(users) do assert(u.id, "signup failed for " .. u.site_id) end
  ctx.users, ctx.admin = users, admin
  -- First top-up for everyone.
  local ac = new_client(port, "setup")
  for _, u in ipairs(users) do
    local res, key = run_task("grant", money, admin, ac, "POST", "/api/admin/users/" .. u.id .. "/tokens/add?amount=5000",
      "POST /api/admin/users/{id}/tokens/add", { reason = "drill start" })
    assert(res and res.status == 200, "first grant failed")
    R.acked_keys[#R.acked_keys + 1] = { key, u.id, "admin_grant" }
    u.balance = res.json.new_balance
  end
  ac:close()
end

------------------------------------------------------------------- main

--- run(opts) -> result {ok, checks = {{name, ok, value, detail}}, report, ...}
--- opts: duration (s, 120), users (50), think_ms (60), workers (2 per host),
--- check_inter ("500ms"), faults ("worker,pg,redis,host": which to inflict), max_auto (highest auto cash-out target, 3), bin (CCHOST_BIN or build/cchost), root (the
--- checkout, "."), keep (keep the temporary folder), log_level ("warn"),
--- quiet (no progress lines).
function M.run(opts)
  opts = opts or {}
  local ctx = {
    duration = opts.duration or 120, users_n = opts.users or 50, think = (opts.think_ms or 60) / 1000,
    workers = opts.workers or 2, check_inter = opts.check_inter or "500ms",
    bin = opts.bin or os.getenv("CCHOST_BIN") or "build/cchost", root = opts.root or ".",
    keep = opts.keep, log_level = opts.log_level or "warn", sweep_ms = opts.sweep_ms or 1000,
    max_auto = opts.max_auto or 3, faults = {}, fault_count = 0, on_slow = opts.on_slow,
    tmp = opts.tmp or os.getenv("TMPDIR") or "/tmp",
  }
  ctx.check_inter_s = tonumber(ctx.check_inter:match("^([%d.]+)ms$")) and tonumber(ctx.check_inter:match("^([%d.]+)ms$")) / 1000
    or tonumber(ctx.check_inter:match("^([%d.]+)s$")) or 0.5
  for name in (opts.faults or "worker,pg,redis,host"):gmatch("[a-z]+") do
    ctx.faults[name] = true
    ctx.fault_count = ctx.fault_count + 1
  end
  if ctx.bin:sub(1, 1) ~= "/" then ctx.bin = sh_out("realpath " .. ctx.bin):gsub("%s+$", "") end
  local function say(...) if not opts.quiet then io.stderr:write("drill: ", fmt(...), "\n") end end
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  sched_reset()
  R = new_records()
  R.grant_queue, R.faults_log = {}, {}
  R.t_start = now()
  local result = { checks = {} }
  local ok, err = pcall(function()
    say("setting up services, 2 hosts and HAProxy in a temporary folder")
    setup(ctx)
    say("signing up %d users through HAProxy on port %d", ctx.users_n, ctx.lb.port)
    populate(ctx)
    -- The measured run.
    R = (function(old)
      local r = new_records()
      r.grant_queue, r.faults_log = {}, {}
      r.acked_keys = old.acked_keys
      return r
    end)(R)
    local cpu0, wall0 = os.clock(), now()
    R.t_start = now()
    -- Auto cash-out targets up to max_auto; a round with the highest target
    -- ends after ln(max_auto)/growth (growth 0.00006/ms: 18.3 s for 3x), and
    -- no round starts later than that before the end, so the sweeper has
    -- settled every round soon after the load stops.
    R.max_auto_x100 = math.floor(ctx.max_auto * 100)
    R.crash_round_s = math.log(ctx.max_auto) / 0.00006 / 1000
    R.crash_cutoff = R.t_start + ctx.duration - R.crash_round_s - 2
    say("load for %d s: %d users, faults at 15/30/50/68 %% of the run", ctx.duration, ctx.users_n)
    for _, u in ipairs(ctx.users) do
      spawn("user " .. u.site_id, user_loop, u, ctx.lb.port, ctx.think)
      spawn("ws " .. u.site_id, ws_loop, u, ctx.lb.port)
    end
    spawn("admin", admin_loop, ctx.admin, ctx.lb.port, ctx.users)
    spawn("probe", probe_loop, ctx.lb.port)
    if ctx.on_slow then spawn("slow watch", slow_watch, ctx) end
    local faults_done = false
    spawn("faults", function() fault_loop(ctx) faults_done = true end)
    local next_say = now() + 10
    run_loop(function()
      if now() >= next_say then
        next_say = now() + 10
        say("%4.0f s: %d requests, %d failures so far", now() - R.t_start, R.total, #R.failures)
      end
      return now() - R.t_start >= ctx.duration
    end)
    R.stopping = true
    R.t_stop = now()
    say("load stopped; letting players finish their rounds")
    local drain_deadline = now() + 120
    run_loop(function() return now() > drain_deadline end)
    R.stopped_recording = true
    result.driver_cpu, result.driver_wall = os.clock() - cpu0, now() - wall0
    if not faults_done then S.errors[#S.errors + 1] = "the fault schedule did not finish (duration too short?)" end
    -- Every crash round settles: the sweeper closes abandoned ones (auto
    -- targets at most 3x: about 18 s; rounds without a target were cashed).
    say("waiting for the crash sweeper")
    local t_settle = now()
    local settled = false
    while now() - t_settle < 150 do
      local out = psql(ctx, "SELECT count(*) FROM game_plays WHERE status <> 'settled'")
      if out:match("^0%s*$") then settled = true break end
      socket.sleep(1)
    end
    result.settle_s = settled and now() - t_settle or nil
    -- Let the non-strict crash_sessions writes and the outbox catch up.
    socket.sleep(math.max(1, 2 * ctx.sweep_ms / 1000))
    say("checking invariants")
    db_checks(ctx, result)
    http_checks(ctx, result)
  end)
  if not ok then
    result.checks[#result.checks + 1] = { group = "driver", name = "drill ran to the end", ok = false, value = 1, detail = tostring(err) }
    R.t_stop = R.t_stop or now()
    result.driver_cpu, result.driver_wall = result.driver_cpu or 0, result.driver_wall or 1
  end
  result.ok = true
  for _, c in ipairs(result.checks) do if not c.ok then result.ok = false end end
  result.report = report(ctx, result)
  result.records = R
  result.dir = ctx.dir
  if not result.ok and ctx.dir then
    -- Keep the evidence of a failed run: logs and data.
    ctx.keep = true
    for _, h in ipairs(ctx.hosts or {}) do
      local errs = sh_out(fmt("grep -h '\"level\":\"error\"' %s 2>/dev/null | head -n 5", h.log))
      if #errs > 0 then result.report = result.report .. "\n" .. h.name .. " errors:\n" .. errs end
    end
    result.report = result.report .. "\nlogs kept in " .. ctx.dir
  end
  teardown(ctx)
  return result
end

local modname = ...
if type(modname) ~= "string" or not modname:match("drill$") then
  local result = M.run {
    duration = tonumber(os.getenv("DRILL_DURATION") or "120"),
    users = tonumber(os.getenv("DRILL_USERS") or "50"),
    think_ms = tonumber(os.getenv("DRILL_THINK_MS") or "60"),
    workers = tonumber(os.getenv("DRILL_WORKERS") or "2"),
    check_inter = os.getenv("DRILL_CHECK_INTER") or "500ms",
    keep = os.getenv("DRILL_KEEP") == "1",
    faults = os.getenv("DRILL_FAULTS"),
    on_slow = os.getenv("DRILL_ON_SLOW"),
  }
  print(result.report)
  os.exit(result.ok and 0 or 1)
end

return M
