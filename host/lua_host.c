/* lua_host.c - the host's own Lua primitives (module "cc.host").
 *
 * now/now_ms read the wall clock (epoch), monotonic_ms the loop's monotonic
 * clock; sleep yields the calling coroutine on a libuv timer. log writes one
 * JSON line carrying the request id of the calling coroutine. config returns
 * a setting typed as declared in config/settings.lua. park/wake let one
 * coroutine hand results to another that waits for them (domain/plays.lua's
 * batches). current_generation and
 * scripts_status read what vm.c keeps; reload and tool_exit call what the
 * process installed (the worker's control channel, the tool runner). */
#include "lua_host.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "vm.h"

static int (*reloader)(lua_State *co);
static void (*tool_exit)(int status);

void lua_host_set_tool_exit(void (*fn)(int status)) { tool_exit = fn; }

/* tool_exit(status): ends a command-line tool run (see tool.c). */
static int lua_host__tool_exit(lua_State *L) {
    if (!tool_exit) return luaL_error(L, "tool_exit outside a tool run");
    tool_exit((int)luaL_checkinteger(L, 1));
    return 0;
}

/* stdout(text [, to_stderr]): writes text to standard output or error
 * (tool output; in a served worker stdout carries the JSON log, so tools are
 * its only users). */
static int lua_host__stdout(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    fwrite(s, 1, len, lua_toboolean(L, 2) ? stderr : stdout);
    return 0;
}

void lua_host_set_reloader(int (*fn)(lua_State *co)) { reloader = fn; }

/* reload() -> {ok, generation, at_ms, error}: asks the master for a reload of
 * this host's scripts and yields until its outcome is known. */
static int lua_host__reload(lua_State *L) {
    if (!reloader) return luaL_error(L, "reload is only available in a served worker");
    if (reloader(L) < 0) return luaL_error(L, "too many reloads waiting");
    return vm_suspend(L);
}

static double lua_host__wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec * 1000.0 + (double)(tv.tv_usec / 1000);
}

static int lua_host__now(lua_State *L) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    lua_pushnumber(L, (double)tv.tv_sec + (double)tv.tv_usec / 1e6);
    return 1;
}

static int lua_host__now_ms(lua_State *L) {
    lua_pushnumber(L, lua_host__wall_ms());
    return 1;
}

static int lua_host__monotonic_ms(lua_State *L) {
    lua_pushnumber(L, (double)uv_hrtime() / 1e6);
    return 1;
}

typedef struct {
    uv_timer_t timer;
    lua_State *co;
} sleeper_t;

static void lua_host__on_sleep_closed(uv_handle_t *h) { free(h->data); }

static void lua_host__on_sleep(uv_timer_t *t) {
    sleeper_t *s = t->data;
    lua_State *co = s->co;
    uv_close((uv_handle_t *)t, lua_host__on_sleep_closed);
    vm_resume(co, 0);
}

/* sleep(seconds): yields; seconds may be fractional, 0 yields one tick. */
static int lua_host__sleep(lua_State *L) {
    double sec = luaL_checknumber(L, 1);
    luaL_argcheck(L, sec >= 0 && sec < 86400, 1, "must be between 0 and 86400 seconds");
    sleeper_t *s = malloc(sizeof *s);
    if (!s) return luaL_error(L, "out of memory");
    s->co = L;
    s->timer.data = s;
    uv_timer_init(vm_loop(), &s->timer);
    uv_timer_start(&s->timer, lua_host__on_sleep, (uint64_t)(sec * 1000.0 + 0.5), 0);
    return vm_suspend(L);
}

/* The parked coroutines: a registry table with weak keys, thread -> true. */
static const char PARKED[] = "cc.host.parked";

static void lua_host__push_parked(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, PARKED);
    if (lua_istable(L, -1)) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, PARKED);
}

typedef struct {
    uv_timer_t timer;
    lua_State *co;
    int nargs;
} waker_t;

static void lua_host__on_wake(uv_timer_t *t) {
    waker_t *w = t->data;
    lua_State *co = w->co;
    int nargs = w->nargs;
    uv_close((uv_handle_t *)t, lua_host__on_sleep_closed);
    vm_resume(co, nargs);
}

/* park() -> the values wake() hands over: suspends the calling coroutine
 * until another one wakes it. Like sleep it needs a request or timer
 * coroutine. */
static int lua_host__park(lua_State *L) {
    lua_host__push_parked(L);
    lua_pushthread(L);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return vm_suspend(L);
}

/* wake(co, ...) -> true when co was parked: co's park() returns the other
 * arguments on the next loop turn (never inside the caller's own resume: the
 * cosocket rule of vm.h). false, and nothing happens, when co is not parked
 * (running, waiting for I/O or finished), so a stray wake can never resume
 * a coroutine that waits for something else. */
static int lua_host__wake(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTHREAD);
    lua_State *co = lua_tothread(L, 1);
    int nargs = lua_gettop(L) - 1;
    lua_host__push_parked(L);
    lua_pushvalue(L, 1);
    lua_rawget(L, -2);
    int parked = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!parked) {
        lua_pop(L, 1);
        lua_pushboolean(L, 0);
        return 1;
    }
    if (!lua_checkstack(co, nargs)) return luaL_error(L, "wake: too many values");
    waker_t *w = malloc(sizeof *w);
    if (!w) return luaL_error(L, "out of memory");
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    lua_xmove(L, co, nargs);
    w->co = co;
    w->nargs = nargs;
    w->timer.data = w;
    uv_timer_init(vm_loop(), &w->timer);
    uv_timer_start(&w->timer, lua_host__on_wake, 0, 0);
    lua_pushboolean(L, 1);
    return 1;
}

/* log(level, message [, fields_json]): fields_json is the JSON text of an
 * object whose members are added to the line (the caller encoded it). */
static int lua_host__log(lua_State *L) {
    static const char *levels[] = {"debug", "info", "warn", "error", NULL};
    int level = luaL_checkoption(L, 1, "info", levels);
    if (!log_enabled(level)) return 0;
    size_t mlen, flen = 0;
    const char *msg = luaL_checklstring(L, 2, &mlen);
    const char *fields = luaL_optlstring(L, 3, NULL, &flen);
    const char *rid = vm_request_id(L);
    char esc[2048], line[4000];
    log_escape(esc, sizeof esc, msg, mlen);
    int n = snprintf(line, sizeof line, "\"msg\":\"%s\"", esc);
    if (rid) n += snprintf(line + n, sizeof line - (size_t)n, ",\"request_id\":\"%s\"", rid);
    if (fields && flen > 2 && fields[0] == '{' && n + (int)flen < (int)sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, ",%.*s", (int)flen - 2, fields + 1);
    log_raw(level, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
    return 0;
}

static void lua_host__push_setting(lua_State *L, const config_setting_t *s) {
    switch (s->type) {
    case CFG_BOOL: lua_pushboolean(L, s->num != 0); break;
    case CFG_INT:
    case CFG_NUMBER:
    case CFG_DURATION: lua_pushnumber(L, s->num); break;
    default: lua_pushstring(L, s->value);
    }
}

/* config(name) -> typed value; raises for an undeclared name (a typo in a
 * script should fail its reload, not read nil). */
static int lua_host__config(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    for (int i = 0; i < config_count(); i++) {
        const config_setting_t *s = config_at(i);
        if (strcmp(s->name, name) == 0) {
            lua_host__push_setting(L, s);
            return 1;
        }
    }
    return luaL_error(L, "unknown setting '%s'", name);
}

/* spawn(fn, ...): runs fn(...) as a background coroutine from the next loop
 * turn (never inside the caller's resume). Errors are logged. */
typedef struct {
    uv_timer_t timer;
    int ref; /* {fn, args...} */
    int nargs;
} spawn_t;

static void lua_host__on_spawn_closed(uv_handle_t *h) { free(h->data); }

static void lua_host__on_spawn(uv_timer_t *t) {
    spawn_t *sp = t->data;
    lua_State *L = vm_main_state();
    lua_rawgeti(L, LUA_REGISTRYINDEX, sp->ref);
    for (int i = 1; i <= sp->nargs + 1; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -(sp->nargs + 2));
    luaL_unref(L, LUA_REGISTRYINDEX, sp->ref);
    int nargs = sp->nargs;
    uv_close((uv_handle_t *)t, lua_host__on_spawn_closed);
    vm_spawn(nargs);
}

static int lua_host__spawn(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int n = lua_gettop(L);
    spawn_t *sp = malloc(sizeof *sp);
    if (!sp) return luaL_error(L, "out of memory");
    lua_createtable(L, n, 0);
    for (int i = 1; i <= n; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i);
    }
    sp->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    sp->nargs = n - 1;
    sp->timer.data = sp;
    uv_timer_init(vm_loop(), &sp->timer);
    uv_timer_start(&sp->timer, lua_host__on_spawn, 0, 0);
    return 0;
}

static int lua_host__current_generation(lua_State *L) {
    lua_pushinteger(L, vm_generation());
    return 1;
}

static int lua_host__is_production(lua_State *L) {
    lua_pushboolean(L, config_is_production());
    return 1;
}

static int lua_host__request_id(lua_State *L) {
    const char *rid = vm_request_id(L);
    if (rid) lua_pushstring(L, rid);
    else lua_pushnil(L);
    return 1;
}

/* scripts_status() -> {generation, loaded_at_ms, last_reload = {ok, at_ms, error}} */
static int lua_host__scripts_status(lua_State *L) {
    const vm_reload_status_t *reload = vm_reload_status();
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, vm_generation());
    lua_setfield(L, -2, "generation");
    lua_pushnumber(L, reload->loaded_at_ms);
    lua_setfield(L, -2, "loaded_at_ms");
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, reload->ok);
    lua_setfield(L, -2, "ok");
    lua_pushnumber(L, reload->at_ms);
    lua_setfield(L, -2, "at_ms");
    if (reload->error) {
        lua_pushstring(L, reload->error);
        lua_setfield(L, -2, "error");
    }
    lua_setfield(L, -2, "last_reload");
    return 1;
}

const char *lua_host_instance(void) {
    static char instance[300];
    static pid_t of;
    if (of != getpid()) { /* computed per process: workers are forked */
        char name[256] = "host";
        gethostname(name, sizeof name - 1);
        name[sizeof name - 1] = 0;
        snprintf(instance, sizeof instance, "%s-%d", name, (int)getpid());
        of = getpid();
    }
    return instance;
}

int luaopen_cc_host(lua_State *L) {
    static const luaL_Reg fns[] = {{"now", lua_host__now},
                                   {"now_ms", lua_host__now_ms},
                                   {"monotonic_ms", lua_host__monotonic_ms},
                                   {"sleep", lua_host__sleep},
                                   {"park", lua_host__park},
                                   {"wake", lua_host__wake},
                                   {"log", lua_host__log},
                                   {"config", lua_host__config},
                                   {"is_production", lua_host__is_production},
                                   {"request_id", lua_host__request_id},
                                   {"scripts_status", lua_host__scripts_status},
                                   {"reload", lua_host__reload},
                                   {"tool_exit", lua_host__tool_exit},
                                   {"spawn", lua_host__spawn},
                                   {"current_generation", lua_host__current_generation},
                                   {"stdout", lua_host__stdout},
                                   {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    lua_pushinteger(L, getpid());
    lua_setfield(L, -2, "pid");
    lua_pushstring(L, lua_host_instance());
    lua_setfield(L, -2, "instance");
    return 1;
}
