--[[ live.lua - the notification socket /ws/notifications/{user_id}
(CONTRACT.md §14.2): who may open it, what it answers, and its bookkeeping.

The handshake runs the §4.4 checks before anything is upgraded: the token
comes from the query (`token`) or from `Sec-WebSocket-Protocol: bearer,
<token>` (the 101 then selects `bearer`); no token or a bad, expired or
revoked one, or a banned user, is an HTTP 401; a path user that is not an
integer or not the token's user is a 403. The socket remembers its session:
when that session ends it closes with 4401 (domain/auth.lua publishes it),
while an access token that merely expires leaves it open. Opening more than
WS_MAX_SOCKETS_PER_USER sockets closes the user's oldest with 4000,
wherever it lives (domain/presence.lua keeps the order).
]]
local host = require "host"
local json = require "json"
local errors = require "lib.errors"
local auth = require "domain.auth"
local presence = require "domain.presence"

local M = {}

-- The token of the handshake and the subprotocol to select: query token
-- first, else "bearer, <token>" in Sec-WebSocket-Protocol.
local function token_of(req)
  local query = type(req.query) == "string" and req.query or req.raw_query or ""
  local q = query:match("^token=([^&]*)") or query:match("&token=([^&]*)")
  if q and q ~= "" then return q, nil end
  local proto = req.headers["sec-websocket-protocol"]
  local t = proto and proto:match("^%s*bearer%s*,%s*([^%s,]+)%s*$")
  if t then return t, "bearer" end
end

--- handshake(req) -> the session table {user_id, session_id, protocol}:
--- raises the 401 or 403 that refuses the upgrade (see the top).
function M.handshake(req)
  local token, protocol = token_of(req)
  if not token then errors.raise("SOCKET_NOT_AUTHENTICATED") end
  local user, session_id = auth.check_access_token(token)
  local path_user = tonumber(req.params.user_id)
  if not (path_user and path_user == user.id and req.params.user_id:find("^%d+$")) then
    errors.raise("SOCKET_OTHER_USER")
  end
  return { user_id = user.id, session_id = session_id, protocol = protocol }
end

--- open(sock): counts the socket and closes the user's oldest beyond the limit.
function M.open(sock)
  for _, key in ipairs(presence.opened(sock.user_id, sock.id)) do
    host.ws.close_socket(key, 4000)
  end
end

--- message(sock, data, kind): {"type":"ping"} is answered with a pong and
--- the server's epoch ms; anything else is ignored.
function M.message(sock, data, kind)
  if kind ~= "text" then return end
  local msg = json.decode(data)
  if type(msg) == "table" and msg.type == "ping" then sock:send { type = "pong", ts = host.time.now_ms() } end
end

--- close(sock): the socket leaves the presence counts.
function M.close(sock)
  presence.closed(sock.user_id, sock.id)
end

return M
