/* lua_metrics.h - the host's metrics for Lua (module "cc.metrics").
 *
 * What scripts add to the shared figures of metrics.h (counters such as
 * plays by game) and the scrape text GET /metrics answers with. The scripts
 * see it as host.metrics through scripts/host/loader.lua. */
#ifndef CCHOST_LUA_METRICS_H
#define CCHOST_LUA_METRICS_H

#include <lua.h>

/* Pushes the module table; register it as package.preload["cc.metrics"]. */
int luaopen_cc_metrics(lua_State *L);

#endif
