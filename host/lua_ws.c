/* lua_ws.c - WebSocket sessions of one worker, for Lua (module "cc.ws").
 *
 * Each accepted socket gets an id and keeps a reference to its session table
 * (built by the route's on_handshake in scripts/host/dispatch.lua, which also
 * stores there the generation's event function `_event`). Events run as
 * background coroutines: _event(session, "open"), _event(session,
 * "message", data, "text"|"binary"), _event(session, "close", code, reason).
 * Fan-out goes through Redis pub/sub so every worker of every host delivers
 * to its own sockets; when Redis is down, scripts fall back to local delivery
 * (CONTRACT.md §14.2). The socket list is a plain list: a worker holds few
 * enough sockets that a scan per delivered message is cheaper than upkeep. */
#include "lua_ws.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "redis.h"
#include "vm.h"

typedef struct sock {
    double id;
    ws_conn_t *ws;
    double user_id; /* 0 when the session has none */
    int session_ref;
    struct sock *next;
} sock_t;

static sock_t *socks;
static double next_id;
static ws_options_t options;

static lua_State *main_state(void) { return vm_main_state(); }

static sock_t *find(double id) {
    for (sock_t *s = socks; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

/* Pushes session._event, session and then the caller pushes the rest. */
static int push_event(sock_t *s, const char *kind) {
    lua_State *L = main_state();
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->session_ref);
    lua_getfield(L, -1, "_event");
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 2);
        return -1;
    }
    lua_insert(L, -2); /* _event, session */
    lua_pushstring(L, kind);
    return 0;
}

static void on_message(ws_conn_t *ws, int opcode, const char *data, size_t len, void *ud) {
    (void)ws;
    sock_t *s = ud;
    if (push_event(s, "message") < 0) return;
    lua_State *L = main_state();
    lua_pushlstring(L, data, len);
    lua_pushstring(L, opcode == WS_OP_TEXT ? "text" : "binary");
    vm_spawn(4);
}

static void on_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len, void *ud) {
    (void)ws;
    sock_t *s = ud;
    for (sock_t **p = &socks; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    s->ws = NULL;
    if (push_event(s, "close") == 0) {
        lua_State *L = main_state();
        lua_pushinteger(L, code);
        lua_pushlstring(L, reason, reason_len);
        vm_spawn(4);
    }
    luaL_unref(main_state(), LUA_REGISTRYINDEX, s->session_ref);
    free(s);
}

static void release(uv_tcp_t *tcp, void *ud) {
    (void)ud;
    http_free_upgraded(tcp);
}

static const ws_callbacks_t callbacks = {on_message, on_close, release};

static void on_refused_closed(uv_handle_t *h) { http_free_upgraded((uv_tcp_t *)h); }

void lua_ws_accept(http_request_t *req, lua_State *co) {
    size_t klen = 0, vlen = 0, plen = 0;
    const char *key = http_header(req, "sec-websocket-key", &klen);
    const char *version = http_header(req, "sec-websocket-version", &vlen);
    const char *proto = lua_tolstring(co, 2, &plen);
    char accept[29];
    if (!key || ws_accept_key(key, klen, accept) < 0 || !version || vlen != 2 || memcmp(version, "13", 2) != 0) {
        http_respond_detail(req, 400, "Bad WebSocket handshake", "Sec-WebSocket-Version: 13\r\n");
        return;
    }
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s%.*s%s\r\n",
                     accept, plen ? "Sec-WebSocket-Protocol: " : "", (int)(plen < 64 ? plen : 0), proto ? proto : "",
                     plen ? "\r\n" : "");
    const char *leftover;
    size_t leftover_len;
    uv_tcp_t *tcp = http_upgrade(req, head, (size_t)n, &leftover, &leftover_len);
    if (!tcp) return;
    sock_t *s = calloc(1, sizeof *s);
    if (!s) {
        uv_close((uv_handle_t *)tcp, on_refused_closed);
        return;
    }
    s->id = ++next_id;
    s->ws = ws_start(tcp, leftover, leftover_len, &options, &callbacks, s);
    if (!s->ws) {
        free(s);
        uv_close((uv_handle_t *)tcp, on_refused_closed);
        return;
    }
    lua_State *L = main_state();
    lua_pushvalue(co, 3);
    lua_xmove(co, L, 1);
    lua_pushnumber(L, s->id);
    lua_setfield(L, -2, "id");
    lua_getfield(L, -1, "user_id");
    s->user_id = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    s->session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    s->next = socks;
    socks = s;
    if (push_event(s, "open") == 0) vm_spawn(2);
}

/* Delivers text to the local sockets of user_id (every socket when 0). */
static int deliver(double user_id, const char *data, size_t len) {
    int n = 0;
    for (sock_t *s = socks, *next; s; s = next) {
        next = s->next; /* ws_send may close s on overflow */
        if (user_id == 0 || s->user_id == user_id) n += ws_send(s->ws, WS_OP_TEXT, data, len) == 0;
    }
    return n;
}

static void close_user(double user_id, int code, const char *reason) {
    for (sock_t *s = socks; s; s = s->next)
        if (user_id == 0 || s->user_id == user_id) ws_close(s->ws, code, reason);
}

void lua_ws_close_all(int code) { close_user(0, code, "server shutting down"); }

static void on_notify(const char *channel, size_t clen, const char *payload, size_t plen, void *data) {
    (void)data;
    char name[128];
    if (clen >= sizeof name) return;
    memcpy(name, channel, clen);
    name[clen] = 0;
    double id;
    int code;
    if (strcmp(name, "cc:notify:broadcast") == 0) deliver(0, payload, plen);
    else if (sscanf(name, "cc:notify:user:%lf", &id) == 1 && id > 0) deliver(id, payload, plen);
    else if (sscanf(name, "cc:notify:close:%lf", &id) == 1 && id > 0 && plen < 8 &&
             sscanf(payload, "%d", &code) == 1)
        close_user(id, code, "session revoked");
}

int lua_ws_init(const ws_options_t *opts) {
    options = *opts;
    return redis_subscribe("cc:notify:*", 1, on_notify, NULL);
}

/* send_local(id, data [, "binary"]) -> true | nil, "closed" | "output limit" */
static int l_send_local(lua_State *L) {
    sock_t *s = find(luaL_checknumber(L, 1));
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int binary = lua_isstring(L, 3) && strcmp(lua_tostring(L, 3), "binary") == 0;
    if (!s || !s->ws) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
    }
    if (ws_send(s->ws, binary ? WS_OP_BINARY : WS_OP_TEXT, data, len) < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "output limit");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* close_local(id [, code [, reason]]) */
static int l_close_local(lua_State *L) {
    sock_t *s = find(luaL_checknumber(L, 1));
    if (s && s->ws) ws_close(s->ws, (int)luaL_optinteger(L, 2, 1000), luaL_optstring(L, 3, ""));
    return 0;
}

/* deliver(user_id | 0, text) -> sockets reached (local only) */
static int l_deliver(lua_State *L) {
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    lua_pushinteger(L, deliver(luaL_checknumber(L, 1), data, len));
    return 1;
}

/* close_user(user_id, code) (local only) */
static int l_close_user(lua_State *L) {
    close_user(luaL_checknumber(L, 1), (int)luaL_checkinteger(L, 2), luaL_optstring(L, 3, ""));
    return 0;
}

static int l_count(lua_State *L) {
    int n = 0;
    for (sock_t *s = socks; s; s = s->next) n++;
    lua_pushinteger(L, n);
    return 1;
}

int luaopen_cc_ws(lua_State *L) {
    static const luaL_Reg fns[] = {{"send_local", l_send_local}, {"close_local", l_close_local},
                                   {"deliver", l_deliver},       {"close_user", l_close_user},
                                   {"count", l_count},           {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
