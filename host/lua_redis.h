/* lua_redis.h - the Lua module host.redis over redis.c.
 *
 * call(cmd, ...) and publish(channel, message) suspend the calling coroutine
 * (vm.h) until redis.c answers, which is bounded by the command deadline, so
 * a Redis outage costs a script an error value, never a hung request. */
#ifndef CCHOST_LUA_REDIS_H
#define CCHOST_LUA_REDIS_H

#include <lua.h>

/* Pushes the redis table:
 *
 *   call(cmd, ...)            -> value | nil, err
 *   publish(channel, message) -> receivers | nil, err
 *   connected()               -> boolean (the command connection is up)
 *
 * At most 1024 arguments, strings or numbers (integral numbers are sent without a
 * fraction, "42"; others with 17 significant digits); anything else, NaN or
 * an infinity, or a command that would change the connection's mode
 * (SUBSCRIBE, MONITOR...) raises a Lua error, as does calling from the main
 * thread. Replies: status -> string ("OK"), integer -> number (exact up to
 * 2^53), bulk string -> string, nil -> nil, array -> a table with
 * json.array_mt whose nil elements are json.null and whose error elements
 * (inside EXEC results) are {err = "text"}. A nil reply is a single nil:
 * callers tell it from a failure by the second value, which is set only on
 * failure: the server's error text ("ERR ...", "WRONGTYPE ..."),
 * "redis unavailable", "redis timeout" or "redis connection lost". Both
 * calls yield, so they need a request or timer coroutine. */
int luaopen_cc_redis(lua_State *L);

#endif
