--[[ notifications.lua - the notification inbox and the admin's messages
(CONTRACT.md §13.3, §14).

A targeted notification is a row first (an offline user finds it in the
inbox later), then a message to the user's sockets on every worker and host
through Redis, after the commit. A broadcast is one row with a NULL user_id
(not in anyone's inbox) and a message to every socket. `delivered` is the
number of live sockets reached as the presence hash counts them when the
message is published (domain/presence.lua); sockets that died in between
are skipped by delivery, never an error.
]]
local host = require "host"
local json = require "json"
local errors = require "lib.errors"
local store = require "lib.store"
local events_log = require "domain.events_log"
local presence = require "domain.presence"

local M = {}

local COLUMNS = "id, type, title, body, data, is_read, created_at, read_at"

--- inbox(user_id, unread_only, limit, offset) -> {items, unread_count,
--- total}: the user's targeted notifications newest first; unread_count
--- ignores paging, total counts what the filter matches.
function M.inbox(user_id, unread_only, limit, offset)
  local filter = unread_only and " AND NOT is_read" or ""
  local items = store.query("SELECT " .. COLUMNS .. " FROM notifications WHERE user_id = $1" .. filter
    .. " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3", user_id, limit, offset)
  for _, n in ipairs(items) do
    if n.read_at == nil then n.read_at = json.null end
  end
  local counts = store.one("SELECT count(*) FILTER (WHERE NOT is_read) AS unread, count(*) AS total "
    .. "FROM notifications WHERE user_id = $1", user_id)
  return { items = items, unread_count = counts.unread, total = unread_only and counts.unread or counts.total }
end

--- mark_read(user_id, id) -> {success, id, read_at}: idempotent (a second
--- call keeps the first read_at); someone else's id is NOTIFICATION_NOT_FOUND.
function M.mark_read(user_id, id)
  local row = store.one("UPDATE notifications SET is_read = true, read_at = coalesce(read_at, now()) "
    .. "WHERE id = $1 AND user_id = $2 RETURNING id, read_at", id, user_id)
  if not row then errors.raise("NOTIFICATION_NOT_FOUND") end
  return { success = true, id = row.id, read_at = row.read_at }
end

--- read_all(user_id) -> {success, updated}: the rows this call changed.
function M.read_all(user_id)
  local _, n = store.query("UPDATE notifications SET is_read = true, read_at = now() "
    .. "WHERE user_id = $1 AND NOT is_read", user_id)
  return { success = true, updated = n }
end

-- The §14.2 message of an admin notification row.
local function message(kind, row, f, admin)
  return {
    type = kind, id = row.id, created_at = row.created_at,
    payload = { title = f.title, body = f.body, data = f.data or {} }, meta = { by = admin.id },
  }
end

-- Writes the row and its audit row (with outbox admin.action) in one
-- transaction; returns the row.
local function store_notification(admin, user_id, kind, f, action, ip)
  return store.tx(function()
    local row = store.one("INSERT INTO notifications (user_id, type, title, body, data, created_by) "
      .. "VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id, created_at",
      user_id, kind, f.title, f.body, f.data or {}, admin.id)
    events_log.audit(admin.id, action, user_id and "user" or "notification", user_id or row.id,
      { notification_id = row.id, title = f.title }, ip)
    return row
  end)
end

--- send(admin, fields, ip) -> {success, delivered, notification_id}: a
--- targeted ADMIN_NOTIFICATION (fields: user_id, title, body, data):
--- SEND_NEEDS_USER without user_id, USER_NOT_FOUND for an unknown one.
function M.send(admin, f, ip)
  if f.user_id == nil or f.user_id == json.null then errors.raise("SEND_NEEDS_USER") end
  if not store.one("SELECT id FROM users WHERE id = $1", f.user_id) then errors.raise("USER_NOT_FOUND") end
  local row = store_notification(admin, f.user_id, "ADMIN_NOTIFICATION", f, "notification.send", ip)
  host.ws.send(f.user_id, message("ADMIN_NOTIFICATION", row, f, admin))
  return { success = true, delivered = presence.sockets_of(f.user_id), notification_id = row.id }
end

--- broadcast(admin, fields, ip) -> {success, delivered, notification_id}:
--- one ADMIN_BROADCAST row (user_id NULL) and a message to every socket.
function M.broadcast(admin, f, ip)
  local row = store_notification(admin, nil, "ADMIN_BROADCAST", f, "notification.broadcast", ip)
  host.ws.broadcast(message("ADMIN_BROADCAST", row, f, admin))
  return { success = true, delivered = presence.sockets(), notification_id = row.id }
end

return M
