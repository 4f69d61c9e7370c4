/* lua_redis.c - the Lua module host.redis over redis.c.
 *
 * Scripts reach Redis only through call and publish (connected, run_id and
 * repl_id only report the state of the connection). Both copy their
 * arguments into one command for redis.c, suspend the calling coroutine and
 * are resumed from redis.c's reply callback, which always runs from the loop
 * (never inside the call), so the resume never nests in another lua_resume.
 * Failures a script must expect (Redis down, a deadline, a server error
 * reply) come back as nil, err in the lua-resty convention; misuse (a table
 * as argument, SUBSCRIBE, calling outside a coroutine) raises. Arrays are
 * marked with json.array_mt and hold json.null for nil elements, so a reply
 * keeps its length and encodes to the same JSON array. */
#include "lua_redis.h"

#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "json.h"
#include "redis.h"
#include "vm.h"

#define LR_MAX_ARGS 1024
#define LR_MAX_DEPTH 32

static char lr_mt_key; /* registry key of json.array_mt */

/* One pending call: whom to resume. */
struct lua_redis__call {
    lua_State *co;
    int suspended; /* vm_suspend returned: the coroutine waits for us */
};

/* Pushes reply r on L; -1 (stack as it was) when nested too deeply or the
 * stack cannot grow. */
static int lua_redis__push(lua_State *L, const redisReply *r, int depth) {
    if (depth > LR_MAX_DEPTH || !lua_checkstack(L, 4))
        return -1;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        return 0;
    case REDIS_REPLY_INTEGER:
        lua_pushnumber(L, (lua_Number)r->integer);
        return 0;
    case REDIS_REPLY_ERROR: /* only inside arrays: the top level is nil, err */
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "err");
        return 0;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)r->elements, 0);
        lua_pushlightuserdata(L, &lr_mt_key);
        lua_rawget(L, LUA_REGISTRYINDEX);
        lua_setmetatable(L, -2);
        for (size_t i = 0; i < r->elements; i++) {
            if (lua_redis__push(L, r->element[i], depth + 1) < 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_rawseti(L, -2, (int)i + 1);
        }
        return 0;
    default: /* REDIS_REPLY_NIL */
        if (depth == 0)
            lua_pushnil(L);
        else
            lua_pushlightuserdata(L, NULL); /* json.null */
        return 0;
    }
}

static void lua_redis__on_reply(redisReply *reply, const char *err, void *data) {
    struct lua_redis__call *call = data;
    lua_State *co = call->co;
    int suspended = call->suspended;
    free(call);
    if (!suspended)
        return; /* vm_suspend raised: nobody waits */
    if (!err && lua_redis__push(co, reply, 0) == 0) {
        vm_resume(co, 1);
        return;
    }
    lua_pushnil(co);
    lua_pushstring(co, err ? err : "redis reply nested too deeply");
    vm_resume(co, 2);
}

/* Sends the stack [1..top] as one command and suspends. */
static int lua_redis__send(lua_State *L) {
    int argc = lua_gettop(L);
    const char *argv[LR_MAX_ARGS];
    size_t lens[LR_MAX_ARGS];
    struct lua_redis__call *call;
    int rc;

    if (argc < 1)
        return luaL_error(L, "redis command expected");
    if (argc > LR_MAX_ARGS)
        return luaL_error(L, "too many redis arguments (at most %d)", LR_MAX_ARGS);
    for (int i = 1; i <= argc; i++) {
        if (lua_type(L, i) == LUA_TNUMBER) {
            lua_Number x = lua_tonumber(L, i);
            char buf[64];
            if (!isfinite(x))
                return luaL_argerror(L, i, "finite number expected");
            if (x == floor(x))
                snprintf(buf, sizeof buf, "%.0f", x == 0 ? 0.0 : x);
            else
                snprintf(buf, sizeof buf, "%.17g", x);
            lua_pushstring(L, buf);
            lua_replace(L, i);
        } else if (lua_type(L, i) != LUA_TSTRING) {
            return luaL_argerror(L, i, "string or number expected");
        }
        argv[i - 1] = lua_tolstring(L, i, &lens[i - 1]);
    }
    if (lua_pushthread(L))
        return luaL_error(L, "redis must be called from a request or timer coroutine");
    lua_pop(L, 1);
    call = malloc(sizeof *call);
    if (!call)
        return luaL_error(L, "out of memory");
    call->co = L;
    call->suspended = 0;
    rc = redis_command_argv(argc, argv, lens, lua_redis__on_reply, call);
    if (rc < 0) {
        free(call);
        if (rc == UV_EINVAL)
            return luaL_error(L, "redis command %s not allowed", argv[0]);
        return luaL_error(L, "redis: %s", uv_strerror(rc));
    }
    rc = vm_suspend(L); /* raises when L cannot wait; the reply is then dropped */
    call->suspended = 1;
    return rc;
}

/* call(cmd, ...) -> value | nil, err */
static int lua_redis__call(lua_State *L) {
    luaL_checkany(L, 1);
    return lua_redis__send(L);
}

/* publish(channel, message) -> receivers | nil, err */
static int lua_redis__publish(lua_State *L) {
    luaL_checktype(L, 1, LUA_TSTRING);
    luaL_checkany(L, 2);
    lua_settop(L, 2);
    lua_pushliteral(L, "PUBLISH");
    lua_insert(L, 1);
    return lua_redis__send(L);
}

/* connected() -> boolean */
static int lua_redis__connected(lua_State *L) {
    lua_pushboolean(L, redis_connected());
    return 1;
}

static int lua_redis__push_id(lua_State *L, const char *id) {
    if (id[0])
        lua_pushstring(L, id);
    else
        lua_pushnil(L);
    return 1;
}

/* run_id() -> the run_id of the server that answers calls | nil when unknown.
 * Read right after a call returned a value, it names the server that sent
 * that value (redis_run_id); read later, the connection may have changed. */
static int lua_redis__run_id(lua_State *L) {
    return lua_redis__push_id(L, redis_run_id());
}

/* repl_id() -> that server's master_replid | nil when unknown or not a
 * master (redis_repl_id). */
static int lua_redis__repl_id(lua_State *L) {
    return lua_redis__push_id(L, redis_repl_id());
}

int luaopen_cc_redis(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"call", lua_redis__call},
        {"publish", lua_redis__publish},
        {"connected", lua_redis__connected},
        {"run_id", lua_redis__run_id},
        {"repl_id", lua_redis__repl_id},
        {NULL, NULL},
    };
    /* json.array_mt is one table per lua_State: fetch it through the codec. */
    lua_pushlightuserdata(L, &lr_mt_key);
    luaopen_cc_json(L);
    lua_getfield(L, -1, "array_mt");
    lua_remove(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_createtable(L, 0, 5);
    luaL_register(L, NULL, fns);
    return 1;
}
