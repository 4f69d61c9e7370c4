/* test_json.c - the json module: [] vs {}, numbers, UTF-8, errors, limits.
 *
 * Opens a plain LuaJIT state, sets the module as the global `json` and runs
 * Lua snippets; each snippet's first result is turned into a string and
 * compared. The C helpers (json_encode_lua, json_decode_lua, json_utf8_*) are
 * checked directly at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../json.h"
#include "check.h"

static lua_State *L;

/* Runs chunk; returns its first result as text ("<error: ...>" if it
 * raised). Strings come back raw, numbers as %.17g, nil/booleans by name. */
static const char *run(const char *chunk) {
    static char out[8192];

    lua_settop(L, 0);
    if (luaL_dostring(L, chunk)) {
        snprintf(out, sizeof out, "<error: %s>", lua_tostring(L, -1));
    } else if (lua_gettop(L) == 0 || lua_isnil(L, 1)) {
        snprintf(out, sizeof out, "nil");
    } else if (lua_type(L, 1) == LUA_TBOOLEAN) {
        snprintf(out, sizeof out, "%s", lua_toboolean(L, 1) ? "true" : "false");
    } else if (lua_type(L, 1) == LUA_TNUMBER) {
        snprintf(out, sizeof out, "%.17g", lua_tonumber(L, 1));
    } else if (lua_type(L, 1) == LUA_TSTRING) {
        snprintf(out, sizeof out, "%s", lua_tostring(L, 1));
    } else {
        snprintf(out, sizeof out, "<%s>", luaL_typename(L, 1));
    }
    return out;
}

#define EXPECT(chunk, want) CHECK_STR(run(chunk), want)
#define TRUE(chunk) EXPECT(chunk, "true")

static void test_arrays_objects(void) {
    EXPECT("return enc(dec('[]'))", "[]");
    EXPECT("return enc(dec('{}'))", "{}");
    EXPECT("return enc({})", "{}");
    EXPECT("return enc(json.array())", "[]");
    EXPECT("return enc(setmetatable({}, json.array_mt))", "[]");
    TRUE("return json.is_array(dec('[]')) and not json.is_array(dec('{}'))");
    TRUE("return getmetatable(dec('[1]')) == json.array_mt");
    TRUE("return json.is_array(json.array()) and not json.is_array({})");
    TRUE("return not json.is_array(5) and not json.is_array(nil)");
    TRUE("local t = {1}; return json.array(t) == t and json.is_array(t)");
    EXPECT("return select(2, pcall(json.array, 5)) ~= nil", "true");
    EXPECT("return enc(dec('[[],{},[[]],[{}]]'))", "[[],{},[[]],[{}]]");
    EXPECT("return enc(dec('[{\"a\":[1,[],{}]},{\"b\":{\"c\":[{\"d\":null}]}}]'))",
           "[{\"a\":[1,[],{}]},{\"b\":{\"c\":[{\"d\":null}]}}]");
    TRUE("local t = dec('{\"a\":{\"b\":[10,20]}}'); return t.a.b[2] == 20");
    EXPECT("return enc({1, 2, 3})", "[1,2,3]");
    EXPECT("return enc({'a', {true, false}})", "[\"a\",[true,false]]");
    EXPECT("return enc({a = 1})", "{\"a\":1}");
    TRUE("local t = dec(enc({a = 1, b = 'x', c = {}})); "
         "return t.a == 1 and t.b == 'x' and not json.is_array(t.c)");
    /* A marked array writes t[1..#t] and ignores other keys. */
    EXPECT("return enc(json.array({1, json.null, 3, x = 4}))", "[1,null,3]");
    /* Keys exactly 1..n -> array; anything else -> object. */
    TRUE("local t = dec(enc({1, nil, 3})); return not json.is_array(t) and "
         "t['1'] == 1 and t['3'] == 3 and t['2'] == nil");
    TRUE("local t = dec(enc({1, 2, x = 3})); return not json.is_array(t) and "
         "t['1'] == 1 and t['2'] == 2 and t.x == 3");
    EXPECT("return enc({[2] = 'b'})", "{\"2\":\"b\"}");
    EXPECT("return enc({[-7] = 1})", "{\"-7\":1}");
    EXPECT("return enc({[0] = 1})", "{\"0\":1}");
    EXPECT("return select(2, enc({[1.5] = 1}))",
           "object keys must be strings or integers");
    EXPECT("return select(2, enc({[true] = 1}))",
           "object keys must be strings or integers");
    /* Decoded object keys stay strings, so {"1":..} stays an object. */
    EXPECT("return enc(dec('{\"1\":\"x\"}'))", "{\"1\":\"x\"}");
    /* Duplicate keys: the last one wins. */
    EXPECT("return dec('{\"a\":1,\"a\":2}').a", "2");
}

static void test_numbers(void) {
    EXPECT("return enc(dec('9007199254740991'))", "9007199254740991");
    TRUE("return dec('9007199254740991') == 2^53 - 1");
    EXPECT("return enc(-(2^53 - 1))", "-9007199254740991");
    EXPECT("return enc(2^53)", "9007199254740992");
    EXPECT("return enc({n = 9007199254740991})", "{\"n\":9007199254740991}");
    EXPECT("return enc(-3)", "-3");
    EXPECT("return enc(0)", "0");
    EXPECT("return enc(50.0)", "50");
    /* -0 is written as 0; decoding "-0" keeps the sign. */
    EXPECT("return enc(-0)", "0");
    TRUE("return 1 / dec('-0') == -math.huge");
    EXPECT("return enc(dec('1.5'))", "1.5");
    EXPECT("return enc(dec('1e300'))", "1e+300");
    TRUE("return dec(enc(1e300)) == 1e300");
    EXPECT("return enc(dec('0.1'))", "0.1");
    EXPECT("return enc(0.1 + 0.2)", "0.30000000000000004");
    EXPECT("return enc(1 / 3)", "0.3333333333333333");
    EXPECT("return enc(-2.5e-7)", "-2.5e-07");
    EXPECT("return enc(1.23)", "1.23");
    EXPECT("return enc(2^63)", "9.223372036854776e+18");
    TRUE("for _, x in ipairs({0.1 + 0.2, 1 / 3, 5e-324, 1.7976931348623157e308,"
         " -123.456, 2^53 + 2, 1e21, 123456789.123}) do "
         " if dec(enc(x)) ~= x then return false end end return true");
    /* Integers past 2^53 decode to the nearest double instead of failing. */
    EXPECT("return dec('123456789012345678901234567890')",
           "1.2345678901234568e+29");
    EXPECT("return enc(dec('9007199254740993'))", "9007199254740992");
    EXPECT("return select(2, dec('1e400'))", "real number overflow near '1e400'");
    EXPECT("return select(2, enc(0/0))", "cannot encode NaN or infinity");
    EXPECT("return select(2, enc(math.huge))", "cannot encode NaN or infinity");
    EXPECT("return select(2, enc(-math.huge))", "cannot encode NaN or infinity");
    EXPECT("return select(2, enc({1, {x = 0/0}}))",
           "cannot encode NaN or infinity");
}

static void test_rejected_input(void) {
    static const char *bad[] = {
        "NaN", "-NaN", "Infinity", "-Infinity", "[Infinity]", "0x10", "+1",
        "01", ".5", "1.", "", " ", "[1,]", "{\"a\":1,}", "'a'", "[1 2]", "1 2",
        "{a:1}", "\"\\x41\"", "tru", "nul", "[", "{\"a\"}", "\"\\ud800\"",
        "\"a\tb\"", "{\"a\\u0000b\":1}", NULL};
    char chunk[256];

    for (int i = 0; bad[i]; i++) {
        lua_pushstring(L, bad[i]);
        lua_setglobal(L, "input");
        snprintf(chunk, sizeof chunk, "local v, msg, pos = dec(input); "
                                      "return v == nil and type(msg) == 'string'"
                                      " and type(pos) == 'number'");
        if (strcmp(run(chunk), "true") != 0) {
            fprintf(stderr, "accepted bad JSON: [%s]\n", bad[i]);
            CHECK(0);
        } else {
            CHECK(1);
        }
    }
    /* Offsets are jansson's json_error_t.position: bytes read when the error
     * was seen (the offending token included; a bad UTF-8 byte excluded). */
    EXPECT("local v, msg, pos = dec('{\"a\":}'); return v == nil and pos",
           "6");
    EXPECT("return select(2, dec('{\"a\":}'))", "unexpected token near '}'");
    EXPECT("return select(3, dec('NaN'))", "3");
    EXPECT("return select(3, dec('0x10'))", "2");
    EXPECT("return select(3, dec(''))", "0");
    EXPECT("return select(3, dec('[1,'))", "3");
    TRUE("return pcall(dec) == false and pcall(dec, {}) == false");
}

static void test_strings(void) {
    EXPECT("return enc('a/b')", "\"a/b\"");
    EXPECT("return dec('\"a\\\\/b\"')", "a/b");
    EXPECT("return enc('토큰')", "\"토큰\"");
    EXPECT("return enc(dec('\"토큰\"'))", "\"토큰\"");
    EXPECT("return dec('\"\\\\ud1a0\\\\ud070\"')", "토큰");
    EXPECT("return enc(dec('\"\\\\ud83d\\\\ude00\"'))", "\"\xF0\x9F\x98\x80\"");
    EXPECT("return enc('\"\\\\\\b\\f\\n\\r\\t\\1\\31\\127')",
           "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    EXPECT("return enc({['k\\n'] = 'v'})", "{\"k\\n\":\"v\"}");
    /* Embedded NUL both ways. */
    TRUE("local s = dec('\"a\\\\u0000b\"'); return #s == 3 and s == 'a\\0b'");
    EXPECT("return enc('a\\0b')", "\"a\\u0000b\"");
    TRUE("return enc(string.rep('x', 100000)) == '\"' .. string.rep('x', "
         "100000) .. '\"'");
    /* Invalid UTF-8: decode gives an offset, encode an error. */
    TRUE("local v, msg, pos = dec('\"ab\\255\"'); return v == nil and pos == 3");
    TRUE("local v, msg, pos = dec('[1, \"\\195\"]'); return v == nil and "
         "pos == 5");
    TRUE("return dec('\"\\192\\175\"') == nil"); /* overlong '/' */
    TRUE("return dec('\"\\237\\160\\128\"') == nil"); /* surrogate */
    EXPECT("return select(2, enc('ab\\255'))", "invalid UTF-8 in string");
    EXPECT("return select(2, enc({x = '\\195'}))", "invalid UTF-8 in string");
    EXPECT("return select(2, enc({['\\255'] = 1}))", "invalid UTF-8 in string");
    EXPECT("return select(2, enc('\\192\\175'))", "invalid UTF-8 in string");
    EXPECT("return select(2, enc('\\237\\160\\128'))", "invalid UTF-8 in string");
    EXPECT("return select(2, enc('\\244\\144\\128\\128'))",
           "invalid UTF-8 in string");
    EXPECT("return enc('\\244\\143\\191\\191')", "\"\xF4\x8F\xBF\xBF\"");
    EXPECT("return json.utf8_len('토큰abc')", "5");
    EXPECT("return json.utf8_len('')", "0");
    TRUE("return json.utf8_valid('토큰abc') and not json.utf8_valid('\\255') "
         "and not json.utf8_valid('\\237\\160\\128') and "
         "json.utf8_valid('a\\0b')");
}

static void test_null_and_scalars(void) {
    TRUE("return dec('null') == json.null");
    TRUE("return json.null ~= nil and type(json.null) == 'userdata'");
    EXPECT("return enc(json.null)", "null");
    EXPECT("return enc(nil)", "null");
    TRUE("return dec('{\"a\":null}').a == json.null");
    TRUE("return dec('[null]')[1] == json.null and #dec('[null,null]') == 2");
    EXPECT("return enc({a = json.null})", "{\"a\":null}");
    EXPECT("return enc(dec('[1,null,3]'))", "[1,null,3]");
    EXPECT("return dec('\"x\"')", "x");
    EXPECT("return dec(' 1 ')", "1");
    TRUE("return dec('true') == true and dec('false') == false");
    EXPECT("return enc('x')", "\"x\"");
    EXPECT("return enc(1)", "1");
    EXPECT("return enc(true)", "true");
    EXPECT("return enc(false)", "false");
    EXPECT("return select(2, enc(print))", "cannot encode a function");
    EXPECT("return select(2, enc(io.stdout))", "cannot encode userdata");
    EXPECT("return select(2, enc(coroutine.create(print)))",
           "cannot encode a thread");
    EXPECT("return select(2, enc({f = print}))", "cannot encode a function");
    TRUE("return pcall(enc) == false");
}

static void test_depth(void) {
    EXPECT("return enc(dec(string.rep('[', 512) .. string.rep(']', 512))) == "
           "string.rep('[', 512) .. string.rep(']', 512)",
           "true");
    TRUE("local v, msg, pos = dec(string.rep('[', 513) .. string.rep(']', 513));"
         " return v == nil and pos == 512 and msg:find('depth') ~= nil");
    TRUE("local s = string.rep('{\"a\":', 513) .. '1' .. string.rep('}', 513);"
         " local v, msg, pos = dec(s); return v == nil and pos == 512 * 5");
    TRUE("local s = '[\"[[[\",' .. string.rep('[', 513) .. string.rep(']', "
         "513) .. ']'; return select(3, dec(s)) == 7 + 511");
    /* Beyond jansson's own limit it reports the error itself. */
    TRUE("return dec(string.rep('[', 5000) .. string.rep(']', 5000)) == nil");
    TRUE("local t = {} local c = t for i = 2, 512 do c[1] = {} c = c[1] end "
         "return enc(t) == string.rep('[', 511) .. '{}' .. string.rep(']', "
         "511)");
    EXPECT("local t = {} local c = t for i = 2, 513 do c[1] = {} c = c[1] end "
           "return select(2, enc(t))",
           "nesting too deep (or a cycle)");
    EXPECT("local t = {} t.self = t return select(2, enc(t))",
           "nesting too deep (or a cycle)");
    EXPECT("local t = json.array() t[1] = t return select(2, enc(t))",
           "nesting too deep (or a cycle)");
    /* The state is usable after an encode error. */
    EXPECT("return enc({ok = true})", "{\"ok\":true}");
}

static void test_c_helpers(void) {
    char *out = NULL;
    size_t len = 0, pos = 0;
    const char *err = NULL;
    int top;

    lua_settop(L, 0);
    CHECK(luaL_dostring(L, "return {list = json.array(), n = 2^53 - 1}") == 0);
    top = lua_gettop(L);
    CHECK(json_encode_lua(L, -1, &out, &len, &err) == 0);
    CHECK(lua_gettop(L) == top);
    CHECK(out && len == 32 &&
          (memcmp(out, "{\"list\":[],\"n\":9007199254740991}", len) == 0 ||
           memcmp(out, "{\"n\":9007199254740991,\"list\":[]}", len) == 0));
    free(out);

    lua_settop(L, 0);
    CHECK(luaL_dostring(L, "return {a = {b = {c = 'x', d = '\\255'}}}") == 0);
    top = lua_gettop(L);
    CHECK(json_encode_lua(L, 1, &out, &len, &err) == -1);
    CHECK_STR(err, "invalid UTF-8 in string");
    CHECK(lua_gettop(L) == top);

    lua_settop(L, 0);
    CHECK(json_decode_lua(L, "[1,{\"a\":\"b\"}]", 13, &pos) == 0);
    CHECK(lua_gettop(L) == 1 && lua_istable(L, 1));
    lua_settop(L, 0);
    CHECK(json_decode_lua(L, "[1,", 3, &pos) == -1);
    CHECK(lua_gettop(L) == 1 && lua_isstring(L, 1));
    CHECK(pos == 3);
    lua_settop(L, 0);
    CHECK(json_decode_lua(L, "\"a\0b\"", 5, &pos) == -1); /* raw NUL byte */
    lua_settop(L, 0);

    CHECK(json_utf8_valid("", 0));
    CHECK(json_utf8_valid("\xEC\x9D\xB4", 3));
    CHECK(!json_utf8_valid("\xEC\x9D", 2));        /* truncated */
    CHECK(!json_utf8_valid("\x80", 1));            /* lone continuation */
    CHECK(!json_utf8_valid("\xC1\xBF", 2));        /* overlong */
    CHECK(!json_utf8_valid("\xE0\x80\xAF", 3));    /* overlong */
    CHECK(!json_utf8_valid("\xF0\x80\x80\xAF", 4)); /* overlong */
    CHECK(!json_utf8_valid("\xF5\x80\x80\x80", 4)); /* above U+10FFFF */
    CHECK(!json_utf8_valid("\xFF", 1));
    CHECK(json_utf8_valid("\xF0\x90\x80\x80", 4));
    CHECK(json_utf8_valid("\xED\x9F\xBF", 3)); /* U+D7FF */
    CHECK(json_utf8_len("\xED\x86\xA0\xED\x81\xB0" "abc", 9) == 5);
}

int main(void) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaopen_cc_json(L);
    lua_setglobal(L, "json");
    CHECK(luaL_dostring(L, "enc, dec = json.encode, json.decode") == 0);

    test_arrays_objects();
    test_numbers();
    test_rejected_input();
    test_strings();
    test_null_and_scalars();
    test_depth();
    test_c_helpers();

    lua_close(L);
    return check_done("test_json");
}
