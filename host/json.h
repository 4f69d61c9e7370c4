/* json.h - the host's JSON codec between Lua values and JSON text.
 *
 * lua-cjson 2.1 cannot tell [] from {}, rounds integers past 14 digits and
 * accepts NaN, Infinity, hex numbers and invalid UTF-8 (PLATFORM.md), so every
 * request and response goes through this module instead. Decoding uses
 * jansson (already linked for libjwt); encoding writes straight from the Lua
 * stack. Arrays carry the metatable json.array_mt so that [] survives a round
 * trip; JSON null is json.null (a NULL light userdata). See json.c for the
 * exact mapping rules. */
#ifndef CCHOST_JSON_H
#define CCHOST_JSON_H

#include <stddef.h>

#include <lua.h>

/* Maximum nesting of arrays and objects, decoding and encoding alike. */
#define JSON_MAX_DEPTH 512

/* Pushes the module table (encode, decode, null, array_mt, array, is_array,
 * utf8_valid, utf8_len); register it as package.preload["json"]. */
int luaopen_cc_json(lua_State *L);

/* Encodes the value at index idx of L as JSON into a malloc'd buffer (not
 * NUL-terminated). Returns 0 and sets *out and *len (the caller frees *out),
 * or -1 with *err set to a static message (invalid UTF-8, NaN or infinity,
 * unsupported type or key, nesting too deep or a cycle, out of memory).
 * Never raises a Lua error; the stack is left as it was. */
int json_encode_lua(lua_State *L, int idx, char **out, size_t *len,
                    const char **err);

/* Decodes the JSON text s[0..len) and pushes the resulting value: returns 0.
 * On invalid JSON (syntax, NaN/Infinity, invalid UTF-8, number overflow,
 * nesting over JSON_MAX_DEPTH) pushes an error message string instead, sets
 * *err_pos to the 0-based byte offset of the error and returns -1. The offset
 * is jansson's json_error_t.position, the bytes read when the error was seen:
 * just past the offending token ({"a":} -> 6), at a bad UTF-8 byte itself;
 * for too deep nesting, the bracket that opens level JSON_MAX_DEPTH + 1.
 * Raises a Lua error only when Lua runs out of memory. */
int json_decode_lua(lua_State *L, const char *s, size_t len, size_t *err_pos);

/* 1 when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0. */
int json_utf8_valid(const char *s, size_t len);

/* Number of code points in s[0..len), assumed valid UTF-8 (counts the bytes
 * that are not continuation bytes). */
size_t json_utf8_len(const char *s, size_t len);

#endif
