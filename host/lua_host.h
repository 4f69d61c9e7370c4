/* lua_host.h - the host's own Lua primitives (module "cc.host").
 *
 * Time, sleep, structured logging, read-only settings, and the script
 * generation status (kept by vm.c). The scripts see these through scripts/host/loader.lua,
 * which wraps them into the documented host.* modules. */
#ifndef CCHOST_LUA_HOST_H
#define CCHOST_LUA_HOST_H

#include <lua.h>

/* Pushes the module table; register it as package.preload["cc.host"]. sleep,
 * park and reload yield (vm_suspend), so they need a request or timer
 * coroutine. */
int luaopen_cc_host(lua_State *L);

/* Installs how reload() asks for a reload (the worker's control channel):
 * fn records the coroutine, which is resumed with the outcome table. Returns
 * 0, or -1 when it cannot take another request. */
void lua_host_set_reloader(int (*fn)(lua_State *co));

/* This process among every host's workers: "<hostname>-<pid>" (host.instance
 * in Lua). Presence counts in Redis are kept under it, and a socket is
 * addressed as "<instance>/<socket id>". Static storage, valid for the
 * process's life. */
const char *lua_host_instance(void);

/* Installs the hook tool_exit(status) calls in a command-line tool run. */
void lua_host_set_tool_exit(void (*fn)(int status));

#endif
