/* vm.c - the worker's LuaJIT VM: script generations and request coroutines.
 *
 * A generation is built by scripts/host/loader.lua (run with the full Lua
 * library, since it builds the sandbox the other scripts run in) from a
 * snapshot table {name = source}; it returns {routes = {{method, path}…},
 * dispatch = function(route_index, req) -> status, body, header_block,
 * user_id}. The C side turns the route list into a router_t, and on commit
 * swaps the current generation pointer. Requests hold a reference to their
 * generation, so an old one lives until its last request finishes.
 *
 * Coroutines come from a pool: a coroutine that finished cleanly is reused
 * (LuaJIT allows lua_resume on a dead-but-OK thread with a fresh function);
 * one that failed is dropped. A C hash maps each running coroutine to its
 * task so vm_resume() and host functions can find it. */
#include "vm.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "metrics.h"
#include "router.h"
#include "snapshot.h"

typedef struct vm_gen {
    int id;
    int table_ref;    /* the generation table */
    int dispatch_ref; /* its dispatch function */
    router_t *router;
    int *metrics_routes; /* per route: its metrics.h slot, then its HEAD fallback's */
    int users; /* current pointer + in-flight tasks */
} vm_gen_t;

typedef struct vm_task {
    lua_State *co;
    int co_ref;
    vm_gen_t *gen;
    http_request_t *req;
} vm_task_t;

#define POOL_MAX 256

static lua_State *L;
static uv_loop_t *loop;
static int worker;
static vm_gen_t *current, *pending;
static int pool_refs[POOL_MAX];
static lua_State *pool_cos[POOL_MAX];
static int pool_len;
static vm_upgrade_fn upgrade;
static vm_reload_status_t reload;
static char reload_error[1024];

uv_loop_t *vm_loop(void) { return loop; }
int vm_generation(void) { return current ? current->id : 0; }

static void vm__gen_release(vm_gen_t *g) {
    if (!g || --g->users > 0) return;
    luaL_unref(L, LUA_REGISTRYINDEX, g->table_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, g->dispatch_ref);
    router_free(g->router);
    free(g->metrics_routes);
    free(g);
    lua_gc(L, LUA_GCSTEP, 0);
}

/* Running coroutine -> task, in an open-addressing table keyed by the
 * lua_State pointer: looked up on every resume and log line, so it stays in
 * C (a registry table costs several Lua API calls per lookup). */
static struct {
    lua_State **keys;
    vm_task_t **vals;
    size_t cap, used;
} tasks;

static size_t vm__task_slot(lua_State *co, size_t cap) {
    uintptr_t h = (uintptr_t)co;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static vm_task_t *vm__task_of(lua_State *co) {
    if (!tasks.cap) return NULL;
    for (size_t i = vm__task_slot(co, tasks.cap);; i = (i + 1) & (tasks.cap - 1)) {
        if (tasks.keys[i] == co) return tasks.vals[i];
        if (!tasks.keys[i]) return NULL;
    }
}

static void vm__task_remove(lua_State *co) {
    if (!tasks.cap) return;
    size_t i = vm__task_slot(co, tasks.cap), mask = tasks.cap - 1;
    while (tasks.keys[i] != co) {
        if (!tasks.keys[i]) return;
        i = (i + 1) & mask;
    }
    /* Backward-shift deletion keeps probe chains intact without tombstones. */
    for (size_t j = (i + 1) & mask; tasks.keys[j]; j = (j + 1) & mask) {
        size_t home = vm__task_slot(tasks.keys[j], tasks.cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tasks.keys[i] = tasks.keys[j];
            tasks.vals[i] = tasks.vals[j];
            i = j;
        }
    }
    tasks.keys[i] = NULL;
    tasks.used--;
}

static void vm__task_bind(lua_State *co, vm_task_t *t) {
    if (!t) {
        vm__task_remove(co);
        return;
    }
    if ((tasks.used + 1) * 2 > tasks.cap) {
        size_t cap = tasks.cap ? tasks.cap * 2 : 256;
        lua_State **keys = calloc(cap, sizeof *keys);
        vm_task_t **vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) abort();
        for (size_t i = 0; i < tasks.cap; i++)
            if (tasks.keys[i]) {
                size_t k = vm__task_slot(tasks.keys[i], cap);
                while (keys[k]) k = (k + 1) & (cap - 1);
                keys[k] = tasks.keys[i];
                vals[k] = tasks.vals[i];
            }
        free(tasks.keys);
        free(tasks.vals);
        tasks.keys = keys;
        tasks.vals = vals;
        tasks.cap = cap;
    }
    size_t i = vm__task_slot(co, tasks.cap);
    while (tasks.keys[i] && tasks.keys[i] != co) i = (i + 1) & (tasks.cap - 1);
    if (!tasks.keys[i]) tasks.used++;
    tasks.keys[i] = co;
    tasks.vals[i] = t;
}

const char *vm_request_id(lua_State *co) {
    vm_task_t *t = vm__task_of(co);
    return t && t->req ? t->req->request_id : NULL;
}

static lua_State *vm__co_get(int *ref) {
    if (pool_len > 0) {
        pool_len--;
        *ref = pool_refs[pool_len];
        return pool_cos[pool_len];
    }
    lua_State *co = lua_newthread(L);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return co;
}

static void vm__co_put(lua_State *co, int ref, int reusable) {
    vm__task_bind(co, NULL);
    if (reusable && pool_len < POOL_MAX) {
        lua_settop(co, 0);
        pool_cos[pool_len] = co;
        pool_refs[pool_len++] = ref;
    } else {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
    }
}

int vm_suspend(lua_State *co) {
    if (co == L || !vm__task_of(co)) return luaL_error(co, "attempt to wait outside a request or timer coroutine");
    return lua_yield(co, 0);
}

static void vm__task_finish(vm_task_t *t, int rc) {
    lua_State *co = t->co;
    http_request_t *r = t->req;
    int upgraded = rc == 0 && lua_tointeger(co, 1) == 101 && lua_istable(co, 3);
    if (!r) { /* a background task: nobody waits for its result */
        if (rc) log_errorf("background task failed: %s", lua_isstring(co, -1) ? lua_tostring(co, -1) : "(no message)");
    } else if (upgraded && upgrade) {
        upgrade(r, co);
    } else if (rc == 0 && !upgraded && lua_type(co, 1) == LUA_TNUMBER && lua_type(co, 2) == LUA_TSTRING) {
        size_t blen = 0, hlen = 0;
        const char *body = lua_tolstring(co, 2, &blen);
        const char *hdrs = lua_type(co, 3) == LUA_TSTRING ? lua_tolstring(co, 3, &hlen) : NULL;
        const char *user = lua_type(co, 4) == LUA_TSTRING || lua_type(co, 4) == LUA_TNUMBER ? lua_tostring(co, 4) : NULL;
        http_respond(r, (int)lua_tointeger(co, 1), hdrs, hlen, body, blen, user);
    } else {
        const char *msg = rc         ? lua_tostring(co, -1)
                          : upgraded ? "dispatch answered 101 but no upgrade handler is installed"
                                     : "dispatch returned no status and body";
        log_errorf("request %s: %s", r->request_id, msg ? msg : "(error object is not a string)");
        char body[160];
        int n = snprintf(body, sizeof body, "{\"detail\":\"Internal Server Error\",\"request_id\":\"%s\"}", r->request_id);
        http_respond(r, 500, NULL, 0, body, (size_t)n, NULL);
    }
    vm__co_put(co, t->co_ref, rc == 0);
    vm__gen_release(t->gen);
    free(t);
}

lua_State *vm_main_state(void) { return L; }

void vm_spawn(int nargs) {
    vm_task_t *t = calloc(1, sizeof *t);
    if (!t || !current) {
        free(t);
        lua_pop(L, nargs + 1);
        return;
    }
    t->gen = current;
    current->users++;
    t->co = vm__co_get(&t->co_ref);
    vm__task_bind(t->co, t);
    lua_xmove(L, t->co, nargs + 1);
    vm_resume(t->co, nargs);
}

void vm_run_hook(const char *name, int worker_id) {
    if (!current) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, current->table_ref);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushinteger(L, worker_id);
    vm_spawn(1);
}

int vm_run_tool(const char *name, int argc, char **argv, const char *input, char *err, size_t errlen) {
    if (!current) return snprintf(err, errlen, "no generation loaded"), -1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, current->table_ref);
    lua_getfield(L, -1, "tools");
    lua_getfield(L, -1, name);
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 3);
        return snprintf(err, errlen, "unknown tool '%s'", name), -1;
    }
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_createtable(L, argc, 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    if (input) {
        lua_pushstring(L, input);
        lua_setfield(L, -2, "input");
    }
    vm_spawn(1);
    return 0;
}

void vm_resume(lua_State *co, int nargs) {
    vm_task_t *t = vm__task_of(co);
    int rc = lua_resume(co, nargs);
    if (rc == LUA_YIELD) return;
    if (t) vm__task_finish(t, rc);
}

/* Pushes the request as a table: method, path, query, headers, body,
 * params, request_id, remote_addr, head. */
static int vm__push_request(lua_State *co, http_request_t *r, const router_match_t *m) {
    lua_createtable(co, 0, 16); /* room for what dispatch adds: no rehash */
    lua_pushlstring(co, r->method, r->method_len);
    lua_setfield(co, -2, "method");
    lua_pushlstring(co, r->path, r->path_len);
    lua_setfield(co, -2, "path");
    lua_pushlstring(co, r->query, r->query_len);
    lua_setfield(co, -2, "query");
    lua_createtable(co, 0, r->nheaders);
    for (int i = 0; i < r->nheaders; i++) {
        lua_pushlstring(co, r->headers[i].name, r->headers[i].name_len);
        lua_pushvalue(co, -1);
        lua_rawget(co, -3);
        if (lua_isstring(co, -1)) { /* repeated header: join as one list */
            lua_pushliteral(co, ", ");
            lua_pushlstring(co, r->headers[i].value, r->headers[i].value_len);
            lua_concat(co, 3);
        } else {
            lua_pop(co, 1);
            lua_pushlstring(co, r->headers[i].value, r->headers[i].value_len);
        }
        lua_rawset(co, -3);
    }
    lua_setfield(co, -2, "headers");
    if (r->body_len) {
        lua_pushlstring(co, r->body, r->body_len);
        lua_setfield(co, -2, "body");
    }
    lua_createtable(co, 0, m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        char val[1024];
        size_t vlen = 0;
        if (m->params[i].value_len > sizeof val || router_unescape(m->params[i].value, m->params[i].value_len, val, &vlen) < 0)
            return -1;
        lua_pushlstring(co, m->params[i].name, m->params[i].name_len);
        lua_pushlstring(co, val, vlen);
        lua_rawset(co, -3);
    }
    lua_setfield(co, -2, "params");
    lua_pushstring(co, r->request_id);
    lua_setfield(co, -2, "request_id");
    lua_pushstring(co, r->remote_addr);
    lua_setfield(co, -2, "remote_addr");
    if (r->is_head) {
        lua_pushboolean(co, 1);
        lua_setfield(co, -2, "head");
    }
    return 0;
}

void vm_handle_request(http_request_t *r) {
    vm_gen_t *g = current;
    router_match_t m;
    if (!g) {
        http_respond_detail(r, 503, "Service temporarily unavailable", NULL);
        return;
    }
    /* A WebSocket handshake routes as the pseudo-method WS. */
    size_t ulen = 0;
    const char *upgrade = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0 ? http_header(r, "upgrade", &ulen) : NULL;
    if (upgrade && ulen == 9 && strncasecmp(upgrade, "websocket", 9) == 0)
        router_match(g->router, "WS", 2, r->path, r->path_len, &m);
    else
        router_match(g->router, r->method, r->method_len, r->path, r->path_len, &m);
    if (m.status == ROUTER_NOT_FOUND) {
        http_respond_detail(r, 404, "Not Found", NULL);
        return;
    }
    if (m.status == ROUTER_METHOD_NOT_ALLOWED) {
        /* WS is the router's pseudo-method for WebSocket routes, not an HTTP
         * method: leave it out of Allow; a path with nothing else is, for
         * plain HTTP, not there at all (as in Starlette). */
        char allow[128] = "Allow: ";
        size_t n = 7;
        for (char *tok = strtok(m.allow, ", "); tok; tok = strtok(NULL, ", "))
            if (strcmp(tok, "WS") != 0) n += (size_t)snprintf(allow + n, sizeof allow - n, "%s%s", n > 7 ? ", " : "", tok);
        if (n == 7) {
            http_respond_detail(r, 404, "Not Found", NULL);
            return;
        }
        snprintf(allow + n, sizeof allow - n, "\r\n");
        http_respond_detail(r, 405, "Method Not Allowed", allow);
        return;
    }
    r->metrics_route = g->metrics_routes[2 * (m.route_id - 1) + (m.head_fallback != 0)];
    vm_task_t *t = calloc(1, sizeof *t);
    if (!t) {
        http_respond_detail(r, 503, "Service temporarily unavailable", NULL);
        return;
    }
    t->req = r;
    t->gen = g;
    g->users++;
    t->co = vm__co_get(&t->co_ref);
    vm__task_bind(t->co, t);
    lua_rawgeti(t->co, LUA_REGISTRYINDEX, g->dispatch_ref);
    lua_pushinteger(t->co, m.route_id);
    if (vm__push_request(t->co, r, &m) < 0) {
        lua_settop(t->co, 0);
        vm__co_put(t->co, t->co_ref, 1);
        vm__gen_release(g);
        free(t);
        http_respond_detail(r, 404, "Not Found", NULL);
        return;
    }
    vm_resume(t->co, 2);
}

static int vm__traceback(lua_State *l) {
    const char *msg = lua_tostring(l, 1);
    luaL_traceback(l, l, msg ? msg : "(non-string error)", 1);
    return 1;
}

int vm_prepare(const char *snap, size_t len, int gen, char *err, size_t errlen) {
    vm_abort(pending ? pending->id : 0);
    int top = lua_gettop(L);
    lua_pushcfunction(L, vm__traceback);
    /* files table */
    lua_newtable(L);
    size_t pos = 0;
    const char *name, *data, *loader = NULL;
    size_t nlen, dlen, loader_len = 0;
    int rc;
    while ((rc = snapshot_next(snap, len, &pos, &name, &nlen, &data, &dlen)) == 1) {
        lua_pushlstring(L, name, nlen);
        lua_pushlstring(L, data, dlen);
        lua_rawset(L, -3);
        if (nlen == 15 && memcmp(name, "host/loader.lua", 15) == 0) loader = data, loader_len = dlen;
    }
    if (rc < 0 || !loader) {
        snprintf(err, errlen, rc < 0 ? "snapshot is malformed" : "scripts/host/loader.lua is missing");
        lua_settop(L, top);
        return -1;
    }
    if (luaL_loadbuffer(L, loader, loader_len, "@scripts/host/loader.lua")) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1));
        lua_settop(L, top);
        return -1;
    }
    lua_insert(L, -2); /* loader, files */
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, gen);
    lua_setfield(L, -2, "generation");
    lua_pushinteger(L, worker);
    lua_setfield(L, -2, "worker");
    if (lua_pcall(L, 2, 1, top + 1) || !lua_istable(L, -1)) {
        snprintf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "loader did not return a table");
        log_errorf("generation %d failed to load: %s", gen, err);
        char *tb = strstr(err, "\nstack traceback:"); /* the reported error is file:line: message */
        if (tb) *tb = 0;
        lua_settop(L, top);
        return -1;
    }
    vm_gen_t *g = calloc(1, sizeof *g);
    g->id = gen;
    g->router = router_new();
    lua_getfield(L, -1, "routes");
    int n = lua_istable(L, -1) ? (int)lua_objlen(L, -1) : 0;
    g->metrics_routes = calloc((size_t)n * 2 + 1, sizeof *g->metrics_routes);
    if (!g->metrics_routes) {
        snprintf(err, errlen, "out of memory");
        router_free(g->router);
        free(g);
        lua_settop(L, top);
        return -1;
    }
    for (int i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "method");
        lua_getfield(L, -2, "path");
        const char *method = lua_tostring(L, -2), *path = lua_tostring(L, -1);
        int e = method && path ? router_add(g->router, method, path, i) : ROUTER_EPATTERN;
        if (e < 0) {
            snprintf(err, errlen, "route %s %s: %s", method ? method : "?", path ? path : "?", router_strerror(e));
            router_free(g->router);
            free(g->metrics_routes);
            free(g);
            lua_settop(L, top);
            return -1;
        }
        /* Slots are taken at load, so a request only indexes this array. */
        g->metrics_routes[2 * (i - 1)] = metrics_route(method, path);
        g->metrics_routes[2 * (i - 1) + 1] = strcmp(method, "GET") == 0 ? metrics_route("HEAD", path)
                                                                         : g->metrics_routes[2 * (i - 1)];
        lua_pop(L, 3);
    }
    lua_pop(L, 1);
    lua_getfield(L, -1, "dispatch");
    if (!lua_isfunction(L, -1)) {
        snprintf(err, errlen, "loader returned no dispatch function");
        router_free(g->router);
        free(g->metrics_routes);
        free(g);
        lua_settop(L, top);
        return -1;
    }
    g->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    g->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    g->users = 1;
    pending = g;
    lua_settop(L, top);
    return 0;
}

int vm_commit(int gen) {
    if (!pending || pending->id != gen) return -1;
    vm_gen_t *old = current;
    current = pending;
    pending = NULL;
    vm__gen_release(old);
    return 0;
}

void vm_abort(int gen) {
    if (pending && pending->id == gen) {
        vm__gen_release(pending);
        pending = NULL;
    }
}

void vm_set_reload_status(int ok, double at_ms, const char *error, double loaded_at_ms) {
    reload.ok = ok;
    reload.at_ms = at_ms;
    if (loaded_at_ms > 0) reload.loaded_at_ms = loaded_at_ms;
    snprintf(reload_error, sizeof reload_error, "%s", error ? error : "");
    reload.error = error ? reload_error : NULL;
}

const vm_reload_status_t *vm_reload_status(void) { return &reload; }

void vm_set_upgrade_handler(vm_upgrade_fn fn) { upgrade = fn; }

int vm_init(uv_loop_t *l, int worker_id, const vm_module_t *modules, char *err, size_t errlen) {
    loop = l;
    worker = worker_id;
    L = luaL_newstate();
    if (!L) return snprintf(err, errlen, "cannot create the Lua state"), -1;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (const vm_module_t *m = modules; m && m->name; m++) {
        lua_pushcfunction(L, m->open);
        lua_setfield(L, -2, m->name);
    }
    lua_pop(L, 2);
    return 0;
}
