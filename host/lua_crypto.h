/* lua_crypto.h - the Lua modules host.crypto and host.jwt.
 *
 * Lua bindings over rng.c, crypto.c and jwt.c. argon2id hashing and
 * verifying run on the libuv thread pool and suspend the calling coroutine
 * through vm.h; everything else is synchronous and cheap. */
#ifndef CCHOST_LUA_CRYPTO_H
#define CCHOST_LUA_CRYPTO_H

#include <lua.h>
#include <stddef.h>

/* Pushes the crypto table: random_bytes, random_int, random_float, uuid,
 * sha256, sha256_hex, hmac_sha256, hmac_sha256_hex, to_hex, base64url, equal,
 * argon2id_hash and argon2id_verify (both yield; call them from a VM
 * coroutine), argon2id_needs_rehash. Raises when libsodium cannot start. */
int luaopen_cc_crypto(lua_State *L);

/* Pushes the jwt table: sign(claims_json) -> token and verify(token) ->
 * claims_json | nil, "invalid" | nil, "expired", claims_json. Both raise
 * when no secret has been set. */
int luaopen_cc_jwt(lua_State *L);

/* Sets the HS256 secret used by the jwt table; copies key (the caller keeps
 * its buffer). An empty key, or an allocation failure, leaves no secret set,
 * so sign and verify raise. Call once at worker start, before any request. */
void lua_jwt_set_secret(const unsigned char *key, size_t len);

#endif
