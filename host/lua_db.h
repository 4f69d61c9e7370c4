/* lua_db.h - the Lua module host.db on top of the PostgreSQL pool (pg.h). */
#ifndef CCHOST_LUA_DB_H
#define CCHOST_LUA_DB_H

#include <lua.h>

/* Pushes the module table {query, tx, after_commit}; register it as
 * package.preload["cc.db"]. Its functions yield (vm_suspend) and so must be
 * called from a request or timer coroutine. Needs pg_init() first. */
int luaopen_cc_db(lua_State *L);

/* How many times db.tx runs its function again after a serialization
 * failure (40001) or a deadlock (40P01); default 5. */
void lua_db_set_tx_retries(int retries);

#endif
