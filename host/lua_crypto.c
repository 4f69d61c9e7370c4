/* lua_crypto.c - the Lua modules host.crypto and host.jwt.
 *
 * Scripts get randomness, digests, MACs, constant-time compare, argon2id
 * passwords and HS256 tokens only through these tables, so every rule about
 * them (OS CSPRNG, no modulo bias, alg pinned to HS256, exp checked in C)
 * holds no matter what a script does. Argument mistakes raise Lua errors;
 * outcomes a script must handle come back as values. argon2id takes tens of
 * milliseconds by design, so hash and verify copy their inputs, run on the
 * libuv thread pool and suspend the calling coroutine (vm.h) until the
 * after-work callback resumes it on the loop; password copies are wiped. */
#include "lua_crypto.h"

#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "crypto.h"
#include "jwt.h"
#include "rng.h"
#include "vm.h"

#define LC_MAX_RANDOM_BYTES (1024 * 1024)
#define LC_MAX_EXACT 9007199254740992.0 /* 2^53 */

/* to_hex and base64url convert in whole chunks of the Lua buffer. */
_Static_assert(LUAL_BUFFERSIZE >= 64, "LUAL_BUFFERSIZE too small");

/* An integral Lua number with |x| <= 2^53 at idx, or a Lua error. */
static int64_t lua_crypto__checkint(lua_State *L, int idx) {
    lua_Number x;
    luaL_checktype(L, idx, LUA_TNUMBER);
    x = lua_tonumber(L, idx);
    if (x != floor(x) || fabs(x) > LC_MAX_EXACT)
        luaL_argerror(L, idx, "integer with |x| <= 2^53 expected");
    return (int64_t)x;
}

static int lua_crypto__rng_fail(lua_State *L, int rc) {
    return luaL_error(L, "random source failed: %s", strerror(-rc));
}

static void lua_crypto__pushhex(lua_State *L, const unsigned char *in, size_t n) {
    char hex[2 * 32 + 1];
    crypto_hex(in, n, hex);
    lua_pushlstring(L, hex, 2 * n);
}

static int lua_crypto__random_bytes(lua_State *L) {
    int64_t n = lua_crypto__checkint(L, 1);
    luaL_Buffer b;
    if (n < 1 || n > LC_MAX_RANDOM_BYTES)
        return luaL_argerror(L, 1, "1 to 1048576 bytes expected");
    luaL_buffinit(L, &b);
    while (n > 0) {
        size_t k = n < LUAL_BUFFERSIZE ? (size_t)n : LUAL_BUFFERSIZE;
        int rc = rng_bytes((unsigned char *)luaL_prepbuffer(&b), k);
        if (rc < 0)
            return lua_crypto__rng_fail(L, rc);
        luaL_addsize(&b, k);
        n -= (int64_t)k;
    }
    luaL_pushresult(&b);
    return 1;
}

static int lua_crypto__random_int(lua_State *L) {
    int64_t lo = lua_crypto__checkint(L, 1), hi = lua_crypto__checkint(L, 2), v;
    int rc;
    if (lo > hi)
        return luaL_argerror(L, 2, "hi must be >= lo");
    rc = rng_int(lo, hi, &v);
    if (rc == -EINVAL)
        return luaL_argerror(L, 2, "range wider than 2^53");
    if (rc < 0)
        return lua_crypto__rng_fail(L, rc);
    lua_pushnumber(L, (lua_Number)v);
    return 1;
}

static int lua_crypto__random_float(lua_State *L) {
    double v;
    int rc = rng_float(&v);
    if (rc < 0)
        return lua_crypto__rng_fail(L, rc);
    lua_pushnumber(L, v);
    return 1;
}

static int lua_crypto__uuid(lua_State *L) {
    char id[37];
    int rc = rng_uuid4(id);
    if (rc < 0)
        return lua_crypto__rng_fail(L, rc);
    lua_pushlstring(L, id, 36);
    return 1;
}

static int lua_crypto__sha256(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[32];
    crypto_sha256(s, len, md);
    lua_pushlstring(L, (const char *)md, sizeof md);
    return 1;
}

static int lua_crypto__sha256_hex(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[32];
    crypto_sha256(s, len, md);
    lua_crypto__pushhex(L, md, sizeof md);
    return 1;
}

static void lua_crypto__hmac(lua_State *L, unsigned char mac[32]) {
    size_t klen, mlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *msg = luaL_checklstring(L, 2, &mlen);
    crypto_hmac_sha256(key, klen, msg, mlen, mac);
}

static int lua_crypto__hmac_sha256(lua_State *L) {
    unsigned char mac[32];
    lua_crypto__hmac(L, mac);
    lua_pushlstring(L, (const char *)mac, sizeof mac);
    return 1;
}

static int lua_crypto__hmac_sha256_hex(lua_State *L) {
    unsigned char mac[32];
    lua_crypto__hmac(L, mac);
    lua_crypto__pushhex(L, mac, sizeof mac);
    return 1;
}

static int lua_crypto__to_hex(lua_State *L) {
    size_t len;
    const unsigned char *s =
        (const unsigned char *)luaL_checklstring(L, 1, &len);
    const size_t chunk = (LUAL_BUFFERSIZE - 1) / 2; /* hex + NUL fit */
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (len > 0) {
        size_t k = len < chunk ? len : chunk;
        crypto_hex(s, k, luaL_prepbuffer(&b));
        luaL_addsize(&b, 2 * k);
        s += k;
        len -= k;
    }
    luaL_pushresult(&b);
    return 1;
}

static int lua_crypto__base64url(lua_State *L) {
    enum { V = sodium_base64_VARIANT_URLSAFE_NO_PADDING };
    size_t len;
    const unsigned char *s =
        (const unsigned char *)luaL_checklstring(L, 1, &len);
    /* Whole 3-byte groups per chunk so chunks concatenate cleanly. */
    const size_t chunk = (LUAL_BUFFERSIZE - 1) / 4 * 3;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    while (len > 0) {
        size_t k = len < chunk ? len : chunk;
        size_t outlen = sodium_base64_ENCODED_LEN(k, V); /* with the NUL */
        sodium_bin2base64(luaL_prepbuffer(&b), outlen, s, k, V);
        luaL_addsize(&b, outlen - 1);
        s += k;
        len -= k;
    }
    luaL_pushresult(&b);
    return 1;
}

static int lua_crypto__equal(lua_State *L) {
    size_t alen, blen;
    const char *a = luaL_checklstring(L, 1, &alen);
    const char *b = luaL_checklstring(L, 2, &blen);
    lua_pushboolean(L, crypto_equal(a, alen, b, blen));
    return 1;
}

/* argon2id parameters from Lua: mem_kib at idx, iterations at idx + 1. */
static void lua_crypto__argon_params(lua_State *L, int idx, uint64_t *mem_kib,
                            uint64_t *iterations) {
    int64_t m = lua_crypto__checkint(L, idx), t = lua_crypto__checkint(L, idx + 1);
    if (m < 8 || m > 4194304)
        luaL_argerror(L, idx, "memory 8 to 4194304 KiB expected");
    if (t < 1 || t > UINT32_MAX)
        luaL_argerror(L, idx + 1, "iterations 1 to 2^32-1 expected");
    *mem_kib = (uint64_t)m;
    *iterations = (uint64_t)t;
}

/* One argon2id job on the thread pool; pw and hash point into the same
 * allocation, after the struct. */
struct lc_argon {
    uv_work_t req;
    lua_State *L;
    char *pw;
    size_t pwlen;
    char *hash; /* verify: the stored hash (copy) */
    uint64_t mem_kib, iterations;
    int rc;
    char out[crypto_pwhash_STRBYTES]; /* hash: the new PHC string */
};

static void lua_crypto__argon_hash_work(uv_work_t *req) {
    struct lc_argon *job = req->data;
    job->rc = crypto_argon2id_hash(job->pw, job->pwlen, job->mem_kib,
                                   job->iterations, job->out);
}

static void lua_crypto__argon_verify_work(uv_work_t *req) {
    struct lc_argon *job = req->data;
    job->rc = crypto_argon2id_verify(job->hash, job->pw, job->pwlen);
}

/* Wipes the password copy, frees the job and resumes its coroutine with
 * the pushed results. */
static void lua_crypto__argon_finish(struct lc_argon *job, int nres) {
    lua_State *L = job->L;
    sodium_memzero(job->pw, job->pwlen);
    free(job);
    vm_resume(L, nres);
}

static void lua_crypto__argon_hash_done(uv_work_t *req, int status) {
    struct lc_argon *job = req->data;
    if (status == 0 && job->rc == 0) {
        lua_pushstring(job->L, job->out);
        lua_crypto__argon_finish(job, 1);
        return;
    }
    lua_pushnil(job->L);
    lua_pushstring(job->L, status == UV_ECANCELED ? "cancelled"
                                                  : "argon2id hashing failed");
    lua_crypto__argon_finish(job, 2);
}

static void lua_crypto__argon_verify_done(uv_work_t *req, int status) {
    struct lc_argon *job = req->data;
    if (status == 0) {
        lua_pushboolean(job->L, job->rc == 1);
        lua_crypto__argon_finish(job, 1);
        return;
    }
    lua_pushnil(job->L);
    lua_pushstring(job->L, "cancelled");
    lua_crypto__argon_finish(job, 2);
}

/* Copies pw (and hash, when given) into a new job and queues it; returns
 * vm_suspend's value. Raises on the main thread or when queueing fails. */
static int lua_crypto__argon_start(lua_State *L, const char *pw, size_t pwlen,
                          const char *hash, size_t hashlen, uint64_t mem_kib,
                          uint64_t iterations, uv_work_cb work,
                          uv_after_work_cb done) {
    struct lc_argon *job;
    int rc;

    if (lua_pushthread(L))
        return luaL_error(L, "argon2id must be called from a coroutine");
    lua_pop(L, 1);
    job = malloc(sizeof *job + pwlen + 1 + hashlen + 1);
    if (!job)
        return luaL_error(L, "out of memory");
    job->L = L;
    job->req.data = job;
    job->pw = (char *)(job + 1);
    memcpy(job->pw, pw, pwlen);
    job->pw[pwlen] = '\0';
    job->pwlen = pwlen;
    job->hash = job->pw + pwlen + 1;
    memcpy(job->hash, hash, hashlen);
    job->hash[hashlen] = '\0';
    job->mem_kib = mem_kib;
    job->iterations = iterations;
    job->rc = -1;
    rc = uv_queue_work(vm_loop(), &job->req, work, done);
    if (rc < 0) {
        sodium_memzero(job->pw, pwlen);
        free(job);
        return luaL_error(L, "cannot queue argon2id: %s", uv_strerror(rc));
    }
    return vm_suspend(L);
}

static int lua_crypto__argon2id_hash(lua_State *L) {
    size_t pwlen;
    const char *pw = luaL_checklstring(L, 1, &pwlen);
    uint64_t mem_kib, iterations;
    lua_crypto__argon_params(L, 2, &mem_kib, &iterations);
    return lua_crypto__argon_start(L, pw, pwlen, "", 0, mem_kib, iterations,
                          lua_crypto__argon_hash_work, lua_crypto__argon_hash_done);
}

static int lua_crypto__argon2id_verify(lua_State *L) {
    size_t hashlen, pwlen;
    const char *hash = luaL_checklstring(L, 1, &hashlen);
    const char *pw = luaL_checklstring(L, 2, &pwlen);
    return lua_crypto__argon_start(L, pw, pwlen, hash, hashlen, 0, 0,
                          lua_crypto__argon_verify_work, lua_crypto__argon_verify_done);
}

static int lua_crypto__argon2id_needs_rehash(lua_State *L) {
    const char *hash = luaL_checkstring(L, 1);
    uint64_t mem_kib, iterations;
    lua_crypto__argon_params(L, 2, &mem_kib, &iterations);
    lua_pushboolean(L,
                    crypto_argon2id_needs_rehash(hash, mem_kib, iterations));
    return 1;
}

int luaopen_cc_crypto(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"random_bytes", lua_crypto__random_bytes},
        {"random_int", lua_crypto__random_int},
        {"random_float", lua_crypto__random_float},
        {"uuid", lua_crypto__uuid},
        {"sha256", lua_crypto__sha256},
        {"sha256_hex", lua_crypto__sha256_hex},
        {"hmac_sha256", lua_crypto__hmac_sha256},
        {"hmac_sha256_hex", lua_crypto__hmac_sha256_hex},
        {"to_hex", lua_crypto__to_hex},
        {"base64url", lua_crypto__base64url},
        {"equal", lua_crypto__equal},
        {"argon2id_hash", lua_crypto__argon2id_hash},
        {"argon2id_verify", lua_crypto__argon2id_verify},
        {"argon2id_needs_rehash", lua_crypto__argon2id_needs_rehash},
        {NULL, NULL}};
    if (crypto_init() < 0)
        return luaL_error(L, "libsodium failed to initialise");
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}

/* The worker's HS256 secret (one per process, set once at start). */
static unsigned char *lc_jwt_key;
static size_t lc_jwt_keylen;

void lua_jwt_set_secret(const unsigned char *key, size_t len) {
    if (lc_jwt_key) {
        sodium_memzero(lc_jwt_key, lc_jwt_keylen);
        free(lc_jwt_key);
    }
    lc_jwt_key = NULL;
    lc_jwt_keylen = 0;
    if (len == 0 || !(lc_jwt_key = malloc(len)))
        return;
    memcpy(lc_jwt_key, key, len);
    lc_jwt_keylen = len;
}

static void lua_crypto__jwt_need_secret(lua_State *L) {
    if (!lc_jwt_key)
        luaL_error(L, "jwt: no secret set");
}

static int lua_crypto__jwt_sign(lua_State *L) {
    size_t len;
    const char *claims = luaL_checklstring(L, 1, &len);
    char *token;
    int rc;

    lua_crypto__jwt_need_secret(L);
    if (strlen(claims) != len)
        return luaL_argerror(L, 1, "claims contain a NUL byte");
    rc = jwtx_sign(lc_jwt_key, lc_jwt_keylen, claims, &token);
    if (rc == JWTX_NOMEM)
        return luaL_error(L, "jwt.sign: out of memory");
    if (rc != JWTX_OK)
        return luaL_argerror(L, 1, "claims must be a JSON object");
    lua_pushstring(L, token);
    free(token);
    return 1;
}

static int lua_crypto__jwt_verify(lua_State *L) {
    size_t len;
    const char *token = luaL_checklstring(L, 1, &len);
    char *claims = NULL;
    int rc = JWTX_INVALID;

    lua_crypto__jwt_need_secret(L);
    if (strlen(token) == len)
        rc = jwtx_verify(lc_jwt_key, lc_jwt_keylen, token,
                         (int64_t)time(NULL), &claims);
    switch (rc) {
    case JWTX_OK:
        lua_pushstring(L, claims);
        free(claims);
        return 1;
    case JWTX_EXPIRED:
        lua_pushnil(L);
        lua_pushliteral(L, "expired");
        lua_pushstring(L, claims);
        free(claims);
        return 3;
    case JWTX_NOMEM:
        return luaL_error(L, "jwt.verify: out of memory");
    default:
        lua_pushnil(L);
        lua_pushliteral(L, "invalid");
        return 2;
    }
}

int luaopen_cc_jwt(lua_State *L) {
    static const luaL_Reg fns[] = {
        {"sign", lua_crypto__jwt_sign}, {"verify", lua_crypto__jwt_verify}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, fns);
    return 1;
}
