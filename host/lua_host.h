/* lua_host.h - the host's own Lua primitives (module "cc.host").
 *
 * Time, sleep, structured logging, read-only settings, and the script
 * generation status. The scripts see these through scripts/host/loader.lua,
 * which wraps them into the documented host.* modules. */
#ifndef CCHOST_LUA_HOST_H
#define CCHOST_LUA_HOST_H

#include <lua.h>

int luaopen_cc_host(lua_State *L);
void lua_host_set_generation(int gen);
/* Installs how reload() asks for a reload (the worker's control channel):
 * fn records the coroutine, which is resumed with the outcome table. Returns
 * 0, or -1 when it cannot take another request. */
void lua_host_set_reloader(int (*fn)(lua_State *co));
/* Installs the hook tool_exit(status) calls in a command-line tool run. */
void lua_host_set_tool_exit(void (*fn)(int status));
void lua_host_set_reload_status(int ok, double at_ms, const char *error, double loaded_at_ms);

#endif
