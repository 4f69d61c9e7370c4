/* lua_ws.h - WebSocket sessions of one worker, for Lua (module "cc.ws").
 *
 * Bridges the protocol engine (ws.c) and the scripts: completes the upgrade
 * a WebSocket route's on_handshake accepted, runs the route's on_open /
 * on_message / on_close in coroutines, indexes the worker's local sockets by
 * id, user and session, and acts on what any process published on the Redis
 * channels cc:notify:user:<user id> and cc:notify:broadcast (the payload is
 * the text to send), cc:notify:close:<user id> and
 * cc:notify:close_session:<session id> (the payload is the close code; the
 * sockets close with reason "session revoked").
 *
 * Module cc.ws (what scripts/host/loader.lua wraps into host.ws; every call
 * acts on this worker's sockets only):
 *   send_local(id, data [, "binary"]) -> true | nil, "closed" | "output limit"
 *   close_local(id [, code [, reason]])       code defaults to 1000
 *   deliver(user_id | 0, text) -> sockets reached (0: every socket)
 *   close_user(user_id, code [, reason])
 *   close_session(session_id, code [, reason])
 *   count() -> sockets open;  user_count(user_id) -> the user's sockets open
 * A code must be one a close frame may carry (1000-1003, 1007-1014,
 * 3000-4999), else the call raises. Socket, user and session ids are
 * positive integers; the user and session of a socket are the `user_id` and
 * `session_id` of the table its route's on_handshake returned. */
#ifndef CCHOST_LUA_WS_H
#define CCHOST_LUA_WS_H

#include <lua.h>

#include "http.h"
#include "ws.h"

/* Subscribes to the notification channels. Call once per worker after
 * redis_init(). 0 or a negative error. */
int lua_ws_init(const ws_options_t *opts);

/* Completes an accepted handshake: co's stack holds 101, the chosen
 * subprotocol ("" for none) and the session table. Answers 400 itself when
 * the client's handshake headers are unusable. A vm_upgrade_fn: the worker
 * installs it with vm_set_upgrade_handler(). */
void lua_ws_accept(http_request_t *req, lua_State *co);

/* Closes every local socket with code (1001 when the worker drains). */
void lua_ws_close_all(int code);

int luaopen_cc_ws(lua_State *L);

#endif
