-- api.lua - account helpers for integration specs: sign up users with unique
-- identities, log in, build Authorization headers, and change what only an
-- admin (or the database) could change, through the test-only routes of
-- spec/fixtures/scripts/routes/accounts.lua (which also flush the user's
-- Redis session cache, as the real admin routes do).
--
-- Stable API (other specs rely on it):
--   api.signup(host [, overrides]) -> account     (raises unless 200)
--   api.login(host, site_id, password) -> token body | nil, response
--   api.auth(token) -> { Authorization = "Bearer <token>" }
--   api.make_admin(host, user_id [, is_admin = true])
--   api.set_rank(host, user_id, rank)             ("STANDARD" | "PREMIUM" | "VIP")
--   api.ban(host, user_id [, hours])              (nil hours = indefinite)
--   api.unban(host, user_id)
--   api.sql(host, sql) -> rows of the host's own database, each an array of
--                         column texts (psql -At), e.g. api.sql(h, "SELECT 1")[1][1] == "1"
--   api.unique() -> a short string unique within this busted process
--   api.player(host [, tokens]) -> account with .headers and .id holding
--                         `tokens` tokens in all (dev grant tops up the signup's 200)
--   api.keys(t) -> the sorted keys of t
local M = {}

local counter = 0
local salt = string.format("%04d", math.random(0, 9999))

--- A short unique string (digits only, so it also fits phone numbers).
function M.unique()
  counter = counter + 1
  return string.format("%s%05d%03d", salt, os.time() % 100000, counter % 1000)
end

--- Default signup password (at least PASSWORD_MIN_LENGTH 8 characters).
M.PASSWORD = "correct-horse-9"

local function check(res, what)
  assert(res, what .. ": no response")
  if res.status ~= 200 then
    error(what .. " answered " .. tostring(res.status) .. ": " .. tostring(res.body), 3)
  end
  return res.json
end

--- Signs up a new user (unique site_id, nickname and phone on every call;
--- invite code 5858) and returns {access_token, refresh_token, user, site_id,
--- nickname, phone_number, invite_code, password, response}. overrides
--- replaces any signup field. Raises unless the answer is 200.
function M.signup(host, overrides)
  local u = M.unique()
  local fields = {
    site_id = "user" .. u, nickname = "nick" .. u, phone_number = "010" .. u:sub(-8),
    invite_code = "5858", password = M.PASSWORD,
  }
  for k, v in pairs(overrides or {}) do fields[k] = v end
  local res = host:request("POST", "/api/auth/signup", fields)
  local body = check(res, "signup")
  return {
    access_token = body.access_token, refresh_token = body.refresh_token, user = body.user,
    site_id = fields.site_id, nickname = fields.nickname, phone_number = fields.phone_number,
    invite_code = fields.invite_code, password = fields.password, response = res,
  }
end

--- Logs in; returns the Token body on 200, else nil, plus the response.
function M.login(host, site_id, password)
  local res = host:request("POST", "/api/auth/login", { site_id = site_id, password = password or M.PASSWORD })
  return res and res.status == 200 and res.json or nil, res
end

--- Authorization header table for an access (or refresh) token.
function M.auth(token)
  return { Authorization = "Bearer " .. token }
end

--- Makes the user an admin (or not); takes effect on the next request.
function M.make_admin(host, user_id, is_admin)
  check(host:request("POST", "/test/accounts/" .. user_id .. "/admin", { is_admin = is_admin ~= false }),
    "make_admin")
end

--- Sets the user's rank (users.vip_tier).
function M.set_rank(host, user_id, rank)
  check(host:request("POST", "/test/accounts/" .. user_id .. "/rank", { rank = rank }), "set_rank")
end

--- Bans the user in the database (is_active false, banned_until now + hours
--- or indefinite) without revoking sessions, as a raw SQL ban would.
function M.ban(host, user_id, hours)
  check(host:request("POST", "/test/accounts/" .. user_id .. "/ban", { hours = hours }), "ban")
end

--- Lifts a ban set by M.ban.
function M.unban(host, user_id)
  check(host:request("POST", "/test/accounts/" .. user_id .. "/unban"), "unban")
end

--- Signs up a player holding `tokens` tokens in all (signup grants 200, the
--- development token grant adds the rest); adds .headers and .id.
function M.player(host, tokens)
  local a = M.signup(host)
  a.headers, a.id = M.auth(a.access_token), a.user.id
  if tokens and tokens > 200 then
    check(host:request("POST", "/api/users/tokens/add?amount=" .. (tokens - 200), nil, a.headers), "tokens/add")
  end
  return a
end

--- The sorted keys of t (to compare response field sets).
function M.keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- Runs SQL against the host's own database (psql -At); returns the rows,
--- each an array of column texts. Raises with psql's output when a
--- statement fails (the exit status is echoed: under Lua 5.1 a popen'd
--- file's close() does not report it).
function M.sql(host, sql)
  assert(host.db_name, "the host has no database of its own")
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(sql)
  f:close()
  local p = assert(io.popen("psql -q -At -F '\t' -v ON_ERROR_STOP=1 -d " .. host.db_name .. " -f " .. tmp
    .. " 2>&1; echo \"psql exit $?\""))
  local out = p:read("*a")
  p:close()
  os.remove(tmp)
  local status
  out = out:gsub("psql exit (%d+)\n$", function(code) status = code return "" end)
  if status ~= "0" then error("psql failed: " .. out, 2) end
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    local row = {}
    for col in (line .. "\t"):gmatch("([^\t]*)\t") do row[#row + 1] = col end
    rows[#rows + 1] = row
  end
  return rows
end

return M
