/* lua_ws.c - WebSocket sessions of one worker, for Lua (module "cc.ws").
 *
 * Each accepted socket gets an id and keeps a reference to its session table
 * (built by the route's on_handshake in scripts/host/dispatch.lua, which also
 * stores there the generation's event function `_event`). Events run as
 * background coroutines: _event(session, "open"), _event(session,
 * "message", data, "text"|"binary"), _event(session, "close", code, reason).
 * Fan-out goes through Redis pub/sub so every worker of every host delivers
 * to its own sockets; when Redis is down, scripts fall back to local delivery
 * (CONTRACT.md §14.2).
 *
 * Indexes. A worker may hold tens of thousands of sockets while a message
 * or a close usually targets one user or one session, so every socket is
 * reachable three ways and a targeted operation touches only its targets:
 * by socket id (a hash table: send_local, close_local), by user id and by
 * session id (a hash table of groups, each group a list of the sockets of
 * one user or one session: deliver to a user, close_user, close_session).
 * A broadcast walks the list of all sockets, as it must. The session
 * table's `user_id` and `session_id` (positive integers) are read once, at
 * the upgrade; a socket without them is in neither group index. The hash
 * tables are intrusive (the socket or group is the chain link), with
 * power-of-two bucket arrays that double at load 1, so adding or removing a
 * socket is O(1) and allocates only a group for a user or session not yet
 * present. */
#include "lua_ws.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lua_host.h"
#include "metrics.h"
#include "redis.h"
#include "slab.h"
#include "vm.h"

/* A link of an intrusive hash table; the first member of what it links. */
typedef struct hlink {
    uint64_t key;
    struct hlink *next;
} hlink_t;

typedef struct {
    hlink_t **buckets; /* NULL until the first insert */
    size_t mask, len;
} hmap_t;

typedef struct sock sock_t;

/* The local sockets of one user or one session. */
typedef struct {
    hlink_t link; /* key: the user or session id */
    sock_t *first;
    int count;
} group_t;

/* The lists a socket is on: every socket, its user's, its session's. */
enum { ON_ALL, ON_USER, ON_SESSION, NLISTS };

struct sock {
    hlink_t link; /* key: the socket id */
    ws_conn_t *ws;
    int session_ref;
    group_t *group[NLISTS]; /* [ON_USER], [ON_SESSION]: NULL when the session has no such id */
    sock_t *prev[NLISTS], *next[NLISTS];
};

static hmap_t by_id, by_user, by_session;
static slab_t sock_slab = SLAB_INIT(sizeof(sock_t)); /* sockets live long: apart from the heap (slab.h) */
static sock_t *all; /* every socket of the worker */
static int nsocks;
static uint64_t next_id;
static ws_options_t options;

static lua_State *lua_ws__main(void) { return vm_main_state(); }

/* ---- hash tables ---- */

static size_t lua_ws__bucket(const hmap_t *m, uint64_t key) {
    return (size_t)((key * 0x9E3779B97F4A7C15u) >> 32) & m->mask; /* Fibonacci hashing */
}

static hlink_t *lua_ws__map_find(const hmap_t *m, uint64_t key) {
    if (!m->buckets) return NULL;
    for (hlink_t *l = m->buckets[lua_ws__bucket(m, key)]; l; l = l->next)
        if (l->key == key) return l;
    return NULL;
}

/* Doubles the bucket array; when that fails the chains just grow longer. */
static void lua_ws__map_grow(hmap_t *m) {
    size_t n = m->mask + 1;
    hlink_t **b = calloc(2 * n, sizeof *b);
    if (!b) return;
    hmap_t bigger = {b, 2 * n - 1, m->len};
    for (size_t i = 0; i < n; i++)
        for (hlink_t *l = m->buckets[i], *next; l; l = next) {
            next = l->next;
            size_t at = lua_ws__bucket(&bigger, l->key);
            l->next = b[at];
            b[at] = l;
        }
    free(m->buckets);
    *m = bigger;
}

/* Adds l (its key set, not present yet). 0, or -1 when the first bucket
 * array cannot be allocated. */
static int lua_ws__map_add(hmap_t *m, hlink_t *l) {
    if (!m->buckets) {
        if (!(m->buckets = calloc(16, sizeof *m->buckets))) return -1;
        m->mask = 15;
    } else if (m->len > m->mask) {
        lua_ws__map_grow(m);
    }
    size_t at = lua_ws__bucket(m, l->key);
    l->next = m->buckets[at];
    m->buckets[at] = l;
    m->len++;
    return 0;
}

static void lua_ws__map_remove(hmap_t *m, hlink_t *l) {
    for (hlink_t **p = &m->buckets[lua_ws__bucket(m, l->key)]; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            m->len--;
            return;
        }
}

/* ---- lists and groups ---- */

static void lua_ws__list_add(sock_t **head, sock_t *s, int on) {
    s->prev[on] = NULL;
    s->next[on] = *head;
    if (*head) (*head)->prev[on] = s;
    *head = s;
}

static void lua_ws__list_remove(sock_t **head, sock_t *s, int on) {
    if (s->prev[on]) s->prev[on]->next[on] = s->next[on];
    else *head = s->next[on];
    if (s->next[on]) s->next[on]->prev[on] = s->prev[on];
}

/* Puts s on the list of group key in m (key 0: none). 0, or -1 when a new
 * group cannot be allocated. */
static int lua_ws__group_join(hmap_t *m, uint64_t key, sock_t *s, int on) {
    if (!key) return 0;
    group_t *g = (group_t *)lua_ws__map_find(m, key);
    if (!g) {
        if (!(g = calloc(1, sizeof *g))) return -1;
        g->link.key = key;
        if (lua_ws__map_add(m, &g->link) < 0) {
            free(g);
            return -1;
        }
    }
    lua_ws__list_add(&g->first, s, on);
    g->count++;
    s->group[on] = g;
    return 0;
}

/* Takes s off its group in m; the last socket out frees the group. */
static void lua_ws__group_leave(hmap_t *m, sock_t *s, int on) {
    group_t *g = s->group[on];
    if (!g) return;
    s->group[on] = NULL;
    lua_ws__list_remove(&g->first, s, on);
    if (--g->count > 0) return;
    lua_ws__map_remove(m, &g->link);
    free(g);
}

static group_t *lua_ws__group(const hmap_t *m, uint64_t key) {
    return key ? (group_t *)lua_ws__map_find(m, key) : NULL;
}

/* Indexes s under its id, user and session. 0, or -1 (out of memory:
 * nothing is left indexed). */
static int lua_ws__index(sock_t *s, uint64_t user_id, uint64_t session_id) {
    if (lua_ws__map_add(&by_id, &s->link) < 0) return -1;
    if (lua_ws__group_join(&by_user, user_id, s, ON_USER) < 0 ||
        lua_ws__group_join(&by_session, session_id, s, ON_SESSION) < 0) {
        lua_ws__group_leave(&by_user, s, ON_USER);
        lua_ws__map_remove(&by_id, &s->link);
        return -1;
    }
    lua_ws__list_add(&all, s, ON_ALL);
    metrics_gauge(METRICS_WS_CONNECTIONS, ++nsocks);
    return 0;
}

static void lua_ws__unindex(sock_t *s) {
    lua_ws__map_remove(&by_id, &s->link);
    lua_ws__group_leave(&by_user, s, ON_USER);
    lua_ws__group_leave(&by_session, s, ON_SESSION);
    lua_ws__list_remove(&all, s, ON_ALL);
    metrics_gauge(METRICS_WS_CONNECTIONS, --nsocks);
}

/* An id as a key: a positive integer exact in a double, else 0 (none). */
static uint64_t lua_ws__key(lua_Number n) {
    if (!(n >= 1 && n <= 9007199254740992.0) || n != (lua_Number)(uint64_t)n) return 0;
    return (uint64_t)n;
}

/* The key of session[field] on top of L's stack (0 when absent or not an id). */
static uint64_t lua_ws__session_key(lua_State *L, const char *field) {
    lua_pushstring(L, field);
    lua_rawget(L, -2);
    uint64_t key = lua_isnumber(L, -1) ? lua_ws__key(lua_tonumber(L, -1)) : 0;
    lua_pop(L, 1);
    return key;
}

static sock_t *lua_ws__find(lua_Number id) {
    uint64_t key = lua_ws__key(id);
    return key ? (sock_t *)lua_ws__map_find(&by_id, key) : NULL;
}

/* ---- events ---- */

/* Pushes session._event, session and kind; the caller pushes the rest. */
static int lua_ws__push_event(sock_t *s, const char *kind) {
    lua_State *L = lua_ws__main();
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

static void lua_ws__on_message(ws_conn_t *ws, int opcode, const char *data, size_t len, void *ud) {
    (void)ws;
    sock_t *s = ud;
    if (lua_ws__push_event(s, "message") < 0) return;
    lua_State *L = lua_ws__main();
    lua_pushlstring(L, data, len);
    lua_pushstring(L, opcode == WS_OP_TEXT ? "text" : "binary");
    vm_spawn(4);
}

static void lua_ws__on_close(ws_conn_t *ws, int code, const char *reason, size_t reason_len, void *ud) {
    (void)ws;
    sock_t *s = ud;
    lua_ws__unindex(s);
    s->ws = NULL;
    if (lua_ws__push_event(s, "close") == 0) {
        lua_State *L = lua_ws__main();
        lua_pushinteger(L, code);
        lua_pushlstring(L, reason, reason_len);
        vm_spawn(4);
    }
    luaL_unref(lua_ws__main(), LUA_REGISTRYINDEX, s->session_ref);
    slab_free(&sock_slab, s);
}

static void lua_ws__release(uv_tcp_t *tcp, void *ud) {
    (void)ud;
    http_free_upgraded(tcp);
}

static const ws_callbacks_t callbacks = {lua_ws__on_message, lua_ws__on_close, lua_ws__release};

static void lua_ws__on_refused_closed(uv_handle_t *h) { http_free_upgraded((uv_tcp_t *)h); }

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
    char *leftover;
    size_t leftover_len;
    uv_tcp_t *tcp = http_upgrade(req, head, (size_t)n, &leftover, &leftover_len);
    if (!tcp) return;
    lua_State *L = lua_ws__main();
    lua_pushvalue(co, 3);
    lua_xmove(co, L, 1);
    sock_t *s = lua_istable(L, -1) ? slab_alloc(&sock_slab) : NULL;
    if (s) s->link.key = ++next_id;
    if (!s || lua_ws__index(s, lua_ws__session_key(L, "user_id"), lua_ws__session_key(L, "session_id")) < 0) {
        free(leftover);
        slab_free(&sock_slab, s);
        lua_pop(L, 1);
        uv_close((uv_handle_t *)tcp, lua_ws__on_refused_closed);
        return;
    }
    s->ws = ws_start(tcp, leftover, leftover_len, &options, &callbacks, s);
    free(leftover);
    if (!s->ws) {
        lua_ws__unindex(s);
        slab_free(&sock_slab, s);
        lua_pop(L, 1);
        uv_close((uv_handle_t *)tcp, lua_ws__on_refused_closed);
        return;
    }
    lua_pushnumber(L, (lua_Number)s->link.key);
    lua_setfield(L, -2, "id");
    s->session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (lua_ws__push_event(s, "open") == 0) vm_spawn(2);
}

/* ---- delivery and closing ---- */

/* Sends text to every socket on the list from s on; the count reached. */
static int lua_ws__send_list(sock_t *s, int on, const char *data, size_t len) {
    int n = 0;
    for (; s; s = s->next[on]) n += ws_send(s->ws, WS_OP_TEXT, data, len) == 0;
    return n;
}

/* Text to the local sockets of user_id (every socket when 0). */
static int lua_ws__deliver(uint64_t user_id, const char *data, size_t len) {
    if (!user_id) return lua_ws__send_list(all, ON_ALL, data, len);
    group_t *g = lua_ws__group(&by_user, user_id);
    return g ? lua_ws__send_list(g->first, ON_USER, data, len) : 0;
}

/* Closes every socket on the list from s on (ws_close fires no callback, so
 * the list stays as it is while it is walked). */
static void lua_ws__close_list(sock_t *s, int on, int code, const char *reason) {
    for (; s; s = s->next[on]) ws_close(s->ws, code, reason);
}

static void lua_ws__close_group(const hmap_t *m, uint64_t key, int on, int code, const char *reason) {
    group_t *g = lua_ws__group(m, key);
    if (g) lua_ws__close_list(g->first, on, code, reason);
}

void lua_ws_close_all(int code) { lua_ws__close_list(all, ON_ALL, code, "server shutting down"); }

/* A code a close frame may carry (RFC 6455 7.4). */
static int lua_ws__close_code_ok(lua_Integer c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* The id at the end of a channel name: 1 to 15 digits (exact as a double),
 * else 0. */
static uint64_t lua_ws__parse_id(const char *p, size_t n) {
    uint64_t v = 0;
    if (n == 0 || n > 15) return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    return v;
}

/* If channel is prefix followed by an id, that id; else 0. */
static uint64_t lua_ws__channel_id(const char *channel, size_t clen, const char *prefix) {
    size_t n = strlen(prefix);
    return clen > n && memcmp(channel, prefix, n) == 0 ? lua_ws__parse_id(channel + n, clen - n) : 0;
}

/* Closes the sockets of group key in m with the code a close message
 * carries (ignored unless it is a usable code). */
static void lua_ws__close_by_message(const hmap_t *m, uint64_t key, int on, const char *payload, size_t plen) {
    lua_Integer code = plen <= 4 ? (lua_Integer)lua_ws__parse_id(payload, plen) : 0;
    if (lua_ws__close_code_ok(code)) lua_ws__close_group(m, key, on, (int)code, "session revoked");
}

/* close_socket:<instance>/<socket id>: the one socket, when it lives here
 * (the per-user limit closes a user's oldest socket wherever it is). */
static void lua_ws__close_socket_message(const char *channel, size_t clen, const char *payload, size_t plen) {
    static const char prefix[] = "cc:notify:close_socket:";
    size_t n = sizeof prefix - 1;
    const char *me = lua_host_instance();
    size_t mlen = strlen(me);
    if (clen <= n + mlen + 1 || memcmp(channel, prefix, n) != 0 || memcmp(channel + n, me, mlen) != 0 ||
        channel[n + mlen] != '/')
        return;
    uint64_t id = lua_ws__parse_id(channel + n + mlen + 1, clen - n - mlen - 1);
    lua_Integer code = plen <= 4 ? (lua_Integer)lua_ws__parse_id(payload, plen) : 0;
    sock_t *s = id ? lua_ws__find((double)id) : NULL;
    if (s && s->ws && lua_ws__close_code_ok(code)) ws_close(s->ws, (int)code, "too many sockets");
}

/* Messages on cc:notify:*: broadcast and user:<user id> carry the text to
 * send; close:<user id> and close_session:<session id> the close code. */
static void lua_ws__on_notify(const char *channel, size_t clen, const char *payload, size_t plen, void *data) {
    (void)data;
    static const char broadcast[] = "cc:notify:broadcast";
    uint64_t id;
    if (clen == sizeof broadcast - 1 && memcmp(channel, broadcast, clen) == 0)
        lua_ws__deliver(0, payload, plen);
    else if ((id = lua_ws__channel_id(channel, clen, "cc:notify:user:")))
        lua_ws__deliver(id, payload, plen);
    else if ((id = lua_ws__channel_id(channel, clen, "cc:notify:close:")))
        lua_ws__close_by_message(&by_user, id, ON_USER, payload, plen);
    else if ((id = lua_ws__channel_id(channel, clen, "cc:notify:close_session:")))
        lua_ws__close_by_message(&by_session, id, ON_SESSION, payload, plen);
    else
        lua_ws__close_socket_message(channel, clen, payload, plen);
}

int lua_ws_init(const ws_options_t *opts) {
    options = *opts;
    return redis_subscribe("cc:notify:*", 1, lua_ws__on_notify, NULL);
}

/* ---- Lua API ---- */

/* code, the argument arg, when a close frame may carry it; else raises. */
static int lua_ws__check_code(lua_State *L, int arg, lua_Integer code) {
    luaL_argcheck(L, lua_ws__close_code_ok(code), arg, "not a close code a close frame may carry");
    return (int)code;
}

/* send_local(id, data [, "binary"]) -> true | nil, "closed" | "output limit" */
static int lua_ws__l_send_local(lua_State *L) {
    sock_t *s = lua_ws__find(luaL_checknumber(L, 1));
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int binary = lua_isstring(L, 3) && strcmp(lua_tostring(L, 3), "binary") == 0;
    if (!s) {
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
static int lua_ws__l_close_local(lua_State *L) {
    sock_t *s = lua_ws__find(luaL_checknumber(L, 1));
    int code = lua_ws__check_code(L, 2, luaL_optinteger(L, 2, WS_CLOSE_NORMAL));
    if (s) ws_close(s->ws, code, luaL_optstring(L, 3, ""));
    return 0;
}

/* deliver(user_id | 0, text) -> sockets reached (local only) */
static int lua_ws__l_deliver(lua_State *L) {
    size_t len;
    lua_Number user_id = luaL_checknumber(L, 1);
    const char *data = luaL_checklstring(L, 2, &len);
    uint64_t key = lua_ws__key(user_id);
    lua_pushinteger(L, key || user_id == 0 ? lua_ws__deliver(key, data, len) : 0);
    return 1;
}

/* close_user(user_id, code [, reason]) (local only) */
static int lua_ws__l_close_user(lua_State *L) {
    uint64_t key = lua_ws__key(luaL_checknumber(L, 1));
    int code = lua_ws__check_code(L, 2, luaL_checkinteger(L, 2));
    lua_ws__close_group(&by_user, key, ON_USER, code, luaL_optstring(L, 3, ""));
    return 0;
}

/* close_session(session_id, code [, reason]) (local only) */
static int lua_ws__l_close_session(lua_State *L) {
    uint64_t key = lua_ws__key(luaL_checknumber(L, 1));
    int code = lua_ws__check_code(L, 2, luaL_checkinteger(L, 2));
    lua_ws__close_group(&by_session, key, ON_SESSION, code, luaL_optstring(L, 3, ""));
    return 0;
}

/* count() -> sockets open on this worker */
static int lua_ws__l_count(lua_State *L) {
    lua_pushinteger(L, nsocks);
    return 1;
}

/* user_count(user_id) -> the user's sockets open on this worker */
static int lua_ws__l_user_count(lua_State *L) {
    group_t *g = lua_ws__group(&by_user, lua_ws__key(luaL_checknumber(L, 1)));
    lua_pushinteger(L, g ? g->count : 0);
    return 1;
}

int luaopen_cc_ws(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"send_local", lua_ws__l_send_local},   {"close_local", lua_ws__l_close_local},
        {"deliver", lua_ws__l_deliver},         {"close_user", lua_ws__l_close_user},
        {"close_session", lua_ws__l_close_session}, {"count", lua_ws__l_count},
        {"user_count", lua_ws__l_user_count},   {NULL, NULL},
    };
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
