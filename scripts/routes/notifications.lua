-- notifications.lua - the notification inbox, the notification socket and
-- the admin's send and broadcast (CONTRACT.md §13.3, §14). Thin: the rules
-- are in domain/notifications.lua (rows, messages, delivered counts) and
-- domain/live.lua (the socket's checks and bookkeeping).
local host = require "host"
local auth = require "domain.auth"
local live = require "domain.live"
local notifications = require "domain.notifications"
local presence = require "domain.presence"

local TAGS = { "Notifications" }

host.route {
  method = "GET", path = "/api/notifications", auth = "user", tags = TAGS, moves_money = false,
  summary = "The caller's notifications, newest first", operation_id = "notifications_list",
  responses = { [200] = "items (newest first), unread_count, total", [422] = true },
  query = {
    { name = "unread_only", type = "boolean", default = false, example = false },
    { name = "limit", type = "integer", default = 50, ge = 1, le = 200, example = 50 },
    { name = "offset", type = "integer", default = 0, ge = 0, example = 0 },
  },
  handler = function(req)
    return notifications.inbox(req.user.id, req.query.unread_only, req.query.limit, req.query.offset)
  end,
}

host.route {
  method = "POST", path = "/api/notifications/{id:int}/read", auth = "user", tags = TAGS, moves_money = false,
  summary = "Mark one notification read", operation_id = "notifications_read",
  responses = {
    [200] = "success, id, read_at (reading twice is fine)", [404] = { "NOTIFICATION_NOT_FOUND" }, [422] = true,
  },
  params = { { name = "id", type = "integer", required = true, ge = 1, example = 1 } },
  handler = function(req) return notifications.mark_read(req.user.id, req.params.id) end,
}

host.route {
  method = "POST", path = "/api/notifications/read-all", auth = "user", tags = TAGS, moves_money = false,
  summary = "Mark every notification read", operation_id = "notifications_read_all",
  responses = { [200] = "success, updated (rows changed)" },
  handler = function(req) return notifications.read_all(req.user.id) end,
}

local MESSAGE = {
  { name = "title", type = "string", required = true, min_length = 1, max_length = 200, example = "Maintenance" },
  { name = "body", type = "string", required = true, min_length = 1, max_length = 2000,
    example = "The casino closes at 03:00 for ten minutes." },
  { name = "user_id", type = "integer", ge = 1, nullable = true, example = 1 },
  { name = "data", type = "object", default = {}, example = { link = "/events/1" } },
}

host.route {
  method = "POST", path = "/api/admin/notifications/send", auth = "admin", tags = { "Admin" }, moves_money = false,
  summary = "Send a notification to one user", operation_id = "admin_notifications_send", body = MESSAGE,
  responses = {
    [200] = "success, delivered (live sockets), notification_id", [400] = { "SEND_NEEDS_USER" },
    [404] = { "USER_NOT_FOUND" }, [422] = true,
  },
  handler = function(req) return notifications.send(req.user, req.body, auth.client_ip(req)) end,
}

host.route {
  method = "POST", path = "/api/admin/notifications/broadcast", auth = "admin", tags = { "Admin" },
  moves_money = false, summary = "Send a notification to everyone (user_id is ignored)",
  operation_id = "admin_notifications_broadcast", body = MESSAGE,
  responses = { [200] = "success, delivered (live sockets), notification_id", [422] = true },
  handler = function(req) return notifications.broadcast(req.user, req.body, auth.client_ip(req)) end,
}

host.websocket {
  path = "/ws/notifications/{user_id}", tags = { "websockets" }, operation_id = "ws_notifications",
  responses = {
    [101] = "The socket is open: ADMIN_NOTIFICATION, ADMIN_BROADCAST and REWARD_RECEIVED messages; a "
      .. "{\"type\":\"ping\"} text gets a pong",
    [401] = { "SOCKET_NOT_AUTHENTICATED", "TOKEN_INVALID", "TOKEN_USER_GONE", "ACCOUNT_DEACTIVATED", "SESSION_GONE" },
    [403] = { "SOCKET_OTHER_USER" },
  },
  summary = "Live notifications of one user (token in the query or as subprotocol 'bearer, <token>')",
  on_handshake = live.handshake, on_open = live.open, on_message = live.message, on_close = live.close,
}

host.every(presence.HEARTBEAT_EVERY_S, presence.heartbeat)
host.on_start(presence.heartbeat)
