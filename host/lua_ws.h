/* lua_ws.h - WebSocket sessions of one worker, for Lua (module "cc.ws").
 *
 * Bridges the protocol engine (ws.c) and the scripts: completes the upgrade
 * a WebSocket route's on_handshake accepted, runs the route's on_open /
 * on_message / on_close in coroutines, keeps the worker's local sockets by
 * user, and delivers what any process published on the Redis channels
 * cc:notify:user:<id>, cc:notify:broadcast and cc:notify:close:<id>. */
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
