/* json.c - the host's JSON codec (the `json` Lua module and its C helpers).
 *
 * Why not lua-cjson: version 2.1 cannot tell [] from {}, keeps 14 significant
 * digits, accepts NaN, Infinity and 0x10 and passes invalid UTF-8 (see
 * PLATFORM.md); the contract needs the opposite of each. So:
 *
 * Decoding is jansson (already linked for libjwt) with JSON_DECODE_ANY |
 * JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL; jansson rejects NaN, Infinity,
 * hex, leading '+' and invalid UTF-8 and reports a byte offset. The tree is
 * then converted to Lua: objects -> plain tables, arrays -> 1-based tables
 * with metatable json.array_mt, null -> json.null (a NULL light userdata),
 * numbers -> doubles (huge integers become the nearest double instead of
 * failing). Duplicate object keys: the last one wins. Strings keep embedded
 * NULs (jansson rejects a NUL inside an object key). Nesting deeper than
 * JSON_MAX_DEPTH is an error.
 *
 * Encoding writes straight from the Lua stack into one growable buffer (it is
 * on every response's hot path): nil and json.null -> null; integral numbers
 * with |x| <= 2^53 -> plain integers (-0 -> 0), other finite numbers -> the
 * shortest of %.15g/%.16g/%.17g that reads back exactly, NaN/inf -> error;
 * strings are validated as UTF-8 and written unescaped except '"', '\' and
 * control characters ('/' is never escaped). Tables: json.array_mt ->
 * array of t[1..#t] (other keys ignored); {} -> {}; keys exactly 1..n -> array;
 * anything else -> object, so a sparse {1, nil, 3} or a mixed {1, x = 2} is an
 * object with keys "1", "3" / "1", "x". Object keys are strings or integral
 * numbers (written as decimal strings); key order is Lua's next() order.
 * Nesting deeper than JSON_MAX_DEPTH (which also catches cycles), functions,
 * threads and userdata other than json.null are errors. */
#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <lauxlib.h>

#define JSON__DECODE_FLAGS \
    (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)
#define JSON__MAX_EXACT 9007199254740992.0     /* 2^53 */
#define JSON__SCRATCH_KEEP ((size_t)256 * 1024) /* larger buffers are freed */

/* Registry keys: their addresses are unique light userdata. */
static char json__mt_key, json__state_key;

/* Per-lua_State data, a userdata anchored in the registry. */
struct json__state {
    json_t *pending;    /* tree being converted; freed on the next decode
                           if a Lua error (out of memory) escaped */
    char *scratch;      /* json.encode's reusable output buffer */
    size_t scratch_cap;
};

struct json__buf {
    char *p;
    size_t len, cap;
};

struct json__enc {
    lua_State *L;
    struct json__buf b;
    const void *array_mt; /* NULL when the module was never opened */
    const char *err;      /* NULL after a failure means out of memory */
};

/* ---- UTF-8 ---------------------------------------------------------- */

/* Length (1..4) of the well-formed UTF-8 sequence at s[0..n), or 0. */
static size_t json__utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];

    if (c < 0x80)
        return 1;
    if (c < 0xC2) /* continuation byte or overlong 2-byte lead */
        return 0;
    if (c < 0xE0)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F))
            return 0; /* overlong, surrogate */
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 ||
            (s[3] & 0xC0) != 0x80)
            return 0;
        if ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F))
            return 0; /* overlong, above U+10FFFF */
        return 4;
    }
    return 0;
}

int json_utf8_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (!(n = json__utf8_seq(s + i, len - i)))
            return 0;
        i += n;
    }
    return 1;
}

size_t json_utf8_len(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i, count = 0;

    for (i = 0; i < len; i++)
        count += (s[i] & 0xC0) != 0x80;
    return count;
}

/* ---- encoder --------------------------------------------------------- */

static int json__reserve(struct json__buf *b, size_t n) {
    size_t cap;
    char *p;

    if (b->cap - b->len >= n)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    if (!(p = realloc(b->p, cap)))
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int json__put(struct json__buf *b, const void *s, size_t n) {
    if (json__reserve(b, n))
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

static int json__fail(struct json__enc *e, const char *msg) {
    e->err = msg;
    return -1;
}

/* Writes the decimal digits of v into out (at least 21 bytes); returns the
 * length. */
static size_t json__int(char *out, int64_t v) {
    char tmp[20];
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[len++] = '-';
    while (n)
        out[len++] = tmp[--n];
    return len;
}

/* 1 when d is integral and |d| <= 2^53 (written without fraction). */
static int json__exact_int(double d) {
    return d >= -JSON__MAX_EXACT && d <= JSON__MAX_EXACT &&
           d == (double)(int64_t)d;
}

static int json__number(struct json__enc *e, double d) {
    char tmp[32];
    int n;

    if (!isfinite(d))
        return json__fail(e, "cannot encode NaN or infinity");
    if (json__exact_int(d))
        return json__put(&e->b, tmp, json__int(tmp, (int64_t)d));
    n = snprintf(tmp, sizeof tmp, "%.15g", d);
    if (strtod(tmp, NULL) != d) {
        n = snprintf(tmp, sizeof tmp, "%.16g", d);
        if (strtod(tmp, NULL) != d)
            n = snprintf(tmp, sizeof tmp, "%.17g", d);
    }
    return json__put(&e->b, tmp, (size_t)n);
}

static int json__string(struct json__enc *e, const char *str, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    struct json__buf *b = &e->b;
    size_t i = 0, run = 0, n;
    char esc[6];

    if (json__reserve(b, len + 2))
        return -1;
    b->p[b->len++] = '"';
    while (i < len) {
        unsigned char c = s[i];

        if (c >= 0x80) {
            if (!(n = json__utf8_seq(s + i, len - i)))
                return json__fail(e, "invalid UTF-8 in string");
            i += n;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        esc[0] = '\\';
        n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (json__put(b, s + run, i - run) || json__put(b, esc, n))
            return -1;
        run = ++i;
    }
    return json__put(b, s + run, i - run) || json__put(b, "\"", 1) ? -1 : 0;
}

/* Object key at absolute index idx: a string or an integral number. */
static int json__key(struct json__enc *e, int idx) {
    char tmp[24];
    size_t len;
    const char *s;
    double d;

    if (lua_type(e->L, idx) == LUA_TSTRING) {
        s = lua_tolstring(e->L, idx, &len);
        return json__string(e, s, len);
    }
    if (lua_type(e->L, idx) == LUA_TNUMBER &&
        json__exact_int(d = lua_tonumber(e->L, idx))) {
        tmp[0] = '"';
        len = 1 + json__int(tmp + 1, (int64_t)d);
        tmp[len++] = '"';
        return json__put(&e->b, tmp, len);
    }
    return json__fail(e, "object keys must be strings or integers");
}

/* 1 when the keys of the table at idx are exactly the integers 1..n. */
static int json__is_sequence(lua_State *L, int idx, size_t n) {
    size_t count = 0;
    double k;

    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TNUMBER || (k = lua_tonumber(L, -1)) < 1 ||
            k > (double)n || k != (double)(size_t)k) {
            lua_pop(L, 1);
            return 0;
        }
        count++;
    }
    return count == n;
}

static int json__value(struct json__enc *e, int idx, int depth);

static int json__array(struct json__enc *e, int idx, size_t n, int depth) {
    lua_State *L = e->L;
    size_t i;
    int rc;

    if (json__put(&e->b, "[", 1))
        return -1;
    for (i = 1; i <= n; i++) {
        if (i > 1 && json__put(&e->b, ",", 1))
            return -1;
        lua_rawgeti(L, idx, (int)i);
        rc = json__value(e, lua_gettop(L), depth);
        lua_pop(L, 1);
        if (rc)
            return -1;
    }
    return json__put(&e->b, "]", 1);
}

static int json__object(struct json__enc *e, int idx, int depth) {
    lua_State *L = e->L;
    int first = 1;

    if (json__put(&e->b, "{", 1))
        return -1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if ((!first && json__put(&e->b, ",", 1)) ||
            json__key(e, lua_gettop(L) - 1) || json__put(&e->b, ":", 1) ||
            json__value(e, lua_gettop(L), depth)) {
            lua_pop(L, 2);
            return -1;
        }
        first = 0;
        lua_pop(L, 1);
    }
    return json__put(&e->b, "}", 1);
}

static int json__table(struct json__enc *e, int idx, int depth) {
    lua_State *L = e->L;
    const void *mt = NULL;
    size_t n;

    if (depth > JSON_MAX_DEPTH)
        return json__fail(e, "nesting too deep (or a cycle)");
    if (!lua_checkstack(L, 3))
        return json__fail(e, "Lua stack overflow");
    if (lua_getmetatable(L, idx)) {
        mt = lua_topointer(L, -1);
        lua_pop(L, 1);
    }
    n = lua_objlen(L, idx);
    if ((mt && mt == e->array_mt) || (n > 0 && json__is_sequence(L, idx, n)))
        return json__array(e, idx, n, depth);
    return json__object(e, idx, depth);
}

/* Writes the value at absolute index idx; depth counts enclosing tables. */
static int json__value(struct json__enc *e, int idx, int depth) {
    lua_State *L = e->L;
    const char *s;
    size_t len;

    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return json__put(&e->b, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? json__put(&e->b, "true", 4)
                                     : json__put(&e->b, "false", 5);
    case LUA_TNUMBER:
        return json__number(e, lua_tonumber(L, idx));
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return json__string(e, s, len);
    case LUA_TTABLE:
        return json__table(e, idx, depth + 1);
    case LUA_TLIGHTUSERDATA:
        if (!lua_touserdata(L, idx))
            return json__put(&e->b, "null", 4);
        break;
    case LUA_TFUNCTION:
        return json__fail(e, "cannot encode a function");
    case LUA_TTHREAD:
        return json__fail(e, "cannot encode a thread");
    }
    return json__fail(e, "cannot encode userdata");
}

/* Pointer identity of json.array_mt, or NULL when it does not exist yet. */
static const void *json__array_mt_ptr(lua_State *L) {
    const void *p;

    lua_pushlightuserdata(L, &json__mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    p = lua_topointer(L, -1);
    lua_pop(L, 1);
    return p;
}

/* Encodes into e->b (appending); on failure sets e->err (NULL = no memory). */
static int json__encode(struct json__enc *e, int idx) {
    if (idx < 0 && idx > LUA_REGISTRYINDEX)
        idx = lua_gettop(e->L) + idx + 1;
    e->array_mt = json__array_mt_ptr(e->L);
    return json__value(e, idx, 0);
}

int json_encode_lua(lua_State *L, int idx, char **out, size_t *len,
                    const char **err) {
    struct json__enc e = {L, {NULL, 0, 0}, NULL, NULL};

    if (json__encode(&e, idx)) {
        free(e.b.p);
        *err = e.err ? e.err : "out of memory";
        return -1;
    }
    *out = e.b.p;
    *len = e.b.len;
    return 0;
}

/* ---- per-state data ------------------------------------------------- */

static int json__state_gc(lua_State *L) {
    struct json__state *st = lua_touserdata(L, 1);

    if (st->pending)
        json_decref(st->pending);
    free(st->scratch);
    return 0;
}

/* The state's json__state, created on first use. */
static struct json__state *json__state(lua_State *L) {
    struct json__state *st;

    lua_pushlightuserdata(L, &json__state_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (st)
        return st;
    st = lua_newuserdata(L, sizeof *st);
    memset(st, 0, sizeof *st);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, json__state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushlightuserdata(L, &json__state_key);
    lua_insert(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    return st;
}

/* Pushes json.array_mt, created on first use. */
static void json__push_array_mt(lua_State *L) {
    lua_pushlightuserdata(L, &json__mt_key);
    lua_rawget(L, LUA_REGISTRYINDEX);
    if (!lua_isnil(L, -1))
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushlightuserdata(L, &json__mt_key);
    lua_pushvalue(L, -2);
    lua_rawset(L, LUA_REGISTRYINDEX);
}

/* ---- decoder --------------------------------------------------------- */

/* Pushes the Lua form of j; mt is the stack index of array_mt. Returns -1
 * when the nesting is too deep (the stack then holds partial results). */
static int json__push(lua_State *L, json_t *j, int mt, int depth) {
    const char *key;
    size_t klen, i, n;
    json_t *v;

    switch (json_typeof(j)) {
    case JSON_OBJECT:
        if (++depth > JSON_MAX_DEPTH || !lua_checkstack(L, 3))
            return -1;
        lua_createtable(L, 0, (int)json_object_size(j));
        json_object_keylen_foreach(j, key, klen, v) {
            lua_pushlstring(L, key, klen);
            if (json__push(L, v, mt, depth))
                return -1;
            lua_rawset(L, -3);
        }
        return 0;
    case JSON_ARRAY:
        if (++depth > JSON_MAX_DEPTH || !lua_checkstack(L, 3))
            return -1;
        n = json_array_size(j);
        lua_createtable(L, (int)n, 0);
        for (i = 0; i < n; i++) {
            if (json__push(L, json_array_get(j, i), mt, depth))
                return -1;
            lua_rawseti(L, -2, (int)(i + 1));
        }
        lua_pushvalue(L, mt);
        lua_setmetatable(L, -2);
        return 0;
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(j), json_string_length(j));
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
        lua_pushnumber(L, json_number_value(j));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        lua_pushboolean(L, json_is_true(j));
        return 0;
    case JSON_NULL:
        break;
    }
    lua_pushlightuserdata(L, NULL);
    return 0;
}

/* Offset of the bracket opening nesting level JSON_MAX_DEPTH + 1 in s, which
 * jansson has accepted as valid JSON. */
static size_t json__depth_offset(const char *s, size_t len) {
    int depth = 0, in_string = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] == '\\')
                i++;
            else if (s[i] == '"')
                in_string = 0;
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == '[' || s[i] == '{') {
            if (++depth > JSON_MAX_DEPTH)
                return i;
        } else if (s[i] == ']' || s[i] == '}') {
            depth--;
        }
    }
    return len;
}

int json_decode_lua(lua_State *L, const char *s, size_t len, size_t *err_pos) {
    struct json__state *st = json__state(L);
    json_error_t jerr;
    json_t *root;
    int mt, rc;

    if (st->pending) {
        json_decref(st->pending);
        st->pending = NULL;
    }
    if (!(root = json_loadb(s, len, JSON__DECODE_FLAGS, &jerr))) {
        *err_pos = (size_t)jerr.position;
        lua_pushstring(L, jerr.text);
        return -1;
    }
    st->pending = root;
    json__push_array_mt(L);
    mt = lua_gettop(L);
    rc = json__push(L, root, mt, 0);
    st->pending = NULL;
    json_decref(root);
    if (rc) {
        lua_settop(L, mt - 1);
        *err_pos = json__depth_offset(s, len);
        lua_pushliteral(L, "maximum nesting depth (512) exceeded");
        return -1;
    }
    lua_remove(L, mt);
    return 0;
}

/* ---- Lua functions --------------------------------------------------- */

/* json.decode(s) -> value | nil, message, byte_offset */
static int json__l_decode(lua_State *L) {
    size_t len, pos;
    const char *s = luaL_checklstring(L, 1, &len);

    if (json_decode_lua(L, s, len, &pos) == 0)
        return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    lua_pushnumber(L, (lua_Number)pos);
    return 3;
}

/* json.encode(v) -> string | nil, message */
static int json__l_encode(lua_State *L) {
    struct json__state *st;
    struct json__enc e = {L, {NULL, 0, 0}, NULL, NULL};
    int rc;

    luaL_checkany(L, 1);
    st = json__state(L);
    e.b.p = st->scratch;
    e.b.cap = st->scratch_cap;
    rc = json__encode(&e, 1);
    st->scratch = e.b.p;
    st->scratch_cap = e.b.cap;
    if (rc == 0)
        lua_pushlstring(L, e.b.p, e.b.len);
    if (st->scratch_cap > JSON__SCRATCH_KEEP) {
        free(st->scratch);
        st->scratch = NULL;
        st->scratch_cap = 0;
    }
    if (rc == 0)
        return 1;
    lua_pushnil(L);
    lua_pushstring(L, e.err ? e.err : "out of memory");
    return 2;
}

/* json.array([t]) -> t (a new table when absent) marked as a JSON array */
static int json__l_array(lua_State *L) {
    if (lua_isnoneornil(L, 1))
        lua_createtable(L, 0, 0);
    else
        luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    json__push_array_mt(L);
    lua_setmetatable(L, 1);
    return 1;
}

/* json.is_array(v) -> true when v is a table with metatable json.array_mt */
static int json__l_is_array(lua_State *L) {
    int yes = 0;

    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        json__push_array_mt(L);
        yes = lua_rawequal(L, -1, -2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

/* json.utf8_valid(s) -> boolean */
static int json__l_utf8_valid(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    lua_pushboolean(L, json_utf8_valid(s, len));
    return 1;
}

/* json.utf8_len(s) -> number of code points (s assumed valid UTF-8) */
static int json__l_utf8_len(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);

    lua_pushnumber(L, (lua_Number)json_utf8_len(s, len));
    return 1;
}

int luaopen_cc_json(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"decode", json__l_decode},
        {"encode", json__l_encode},
        {"array", json__l_array},
        {"is_array", json__l_is_array},
        {"utf8_valid", json__l_utf8_valid},
        {"utf8_len", json__l_utf8_len},
        {NULL, NULL},
    };

    lua_createtable(L, 0, 8);
    luaL_register(L, NULL, fns);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    json__push_array_mt(L);
    lua_setfield(L, -2, "array_mt");
    return 1;
}
