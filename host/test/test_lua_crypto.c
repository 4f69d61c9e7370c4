/* test_lua_crypto.c - lua_crypto.c: the crypto and jwt tables as scripts see
 * them, including argon2id through the thread pool. vm.c is replaced by a
 * minimal test VM: vm_suspend yields, vm_resume resumes and records how the
 * coroutine ended, and the test drives the loop with uv_run (the real VM is
 * exercised by the integration specs). */
#include <lauxlib.h>
#include <lualib.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../crypto.h"
#include "../lua_crypto.h"
#include "../vm.h"
#include "check.h"

/* The test's own vm.h implementation. */
static uv_loop_t test_loop;
static int resume_status = -1;

uv_loop_t *vm_loop(void) {
    return &test_loop;
}

int vm_suspend(lua_State *L) {
    return lua_yield(L, 0);
}

void vm_resume(lua_State *co, int nargs) {
    resume_status = lua_resume(co, nargs);
}

static lua_State *L;

/* Runs code on the main thread; returns its first result as a string
 * (booleans as "true"/"false"), or "ERR: message". Valid until the next
 * call. */
static const char *eval(const char *code) {
    static char buf[65536];
    lua_settop(L, 0);
    if (luaL_loadstring(L, code) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
        snprintf(buf, sizeof buf, "ERR: %s", lua_tostring(L, -1));
    } else if (lua_isboolean(L, -1)) {
        snprintf(buf, sizeof buf, "%s", lua_toboolean(L, -1) ? "true" : "false");
    } else {
        const char *s = lua_tostring(L, -1);
        snprintf(buf, sizeof buf, "%s", s ? s : "(nil)");
    }
    lua_settop(L, 0);
    return buf;
}

static int raises(const char *code) {
    return strncmp(eval(code), "ERR: ", 5) == 0;
}

static void test_random(void) {
    CHECK_STR(eval("return #crypto.random_bytes(32)"), "32");
    CHECK_STR(eval("return #crypto.random_bytes(1)"), "1");
    CHECK_STR(eval("return #crypto.random_bytes(20000)"), "20000");
    CHECK_STR(eval("return #crypto.random_bytes(1048576)"), "1048576");
    CHECK_STR(eval("return crypto.random_bytes(16) ~= crypto.random_bytes(16)"),
              "true");
    CHECK(raises("return crypto.random_bytes(0)"));
    CHECK(raises("return crypto.random_bytes(1048577)"));
    CHECK(raises("return crypto.random_bytes(1.5)"));

    CHECK_STR(eval("for i = 1, 10000 do local v = crypto.random_int(1, 6)\n"
                   "  if v < 1 or v > 6 or v % 1 ~= 0 then return v end\n"
                   "end return 'ok'"),
              "ok");
    CHECK_STR(eval("for i = 1, 1000 do local v = crypto.random_int(-10, -8)\n"
                   "  if v < -10 or v > -8 then return v end\n"
                   "end return 'ok'"),
              "ok");
    CHECK_STR(eval("return crypto.random_int(5, 5)"), "5");
    CHECK_STR(eval("return crypto.random_int(-7, -7)"), "-7");
    CHECK_STR(eval("local v = crypto.random_int(2^53 - 1, 2^53)\n"
                   "return v == 2^53 - 1 or v == 2^53"),
              "true");
    CHECK_STR(eval("return crypto.random_int(-2^53, -2^53) == -2^53"), "true");
    CHECK(raises("return crypto.random_int(2, 1)"));
    CHECK(raises("return crypto.random_int(1.5, 2)"));
    CHECK(raises("return crypto.random_int(1, 2^53 + 2)"));
    CHECK(raises("return crypto.random_int(0, 2^53)")); /* 2^53 + 1 values */
    CHECK(raises("return crypto.random_int(-2^53, 2^53)"));
    CHECK(raises("return crypto.random_int(0, 1/0)"));
    CHECK(raises("return crypto.random_int(0, 0/0)"));
    CHECK(raises("return crypto.random_int('1', 2)"));
    CHECK(raises("return crypto.random_int(1)"));

    CHECK_STR(eval("for i = 1, 10000 do local f = crypto.random_float()\n"
                   "  if f < 0 or f >= 1 then return f end\n"
                   "end return 'ok'"),
              "ok");
    CHECK_STR(eval("return crypto.uuid():match('^%x%x%x%x%x%x%x%x%-%x%x%x%x%-"
                   "4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$') ~= nil"),
              "true");
    CHECK_STR(eval("return crypto.uuid() ~= crypto.uuid()"), "true");
}

static void test_digests(void) {
    CHECK_STR(eval("return crypto.sha256_hex('abc')"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_STR(eval("return crypto.to_hex(crypto.sha256('abc'))"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_STR(eval("return #crypto.sha256('')"), "32");
    CHECK_STR(eval("return crypto.hmac_sha256_hex('Jefe', "
                   "'what do ya want for nothing?')"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK_STR(eval("return crypto.to_hex(crypto.hmac_sha256(string.rep("
                   "'\\11', 20), 'Hi There'))"),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    CHECK_STR(eval("return crypto.to_hex('')"), "");
    CHECK_STR(eval("return crypto.to_hex('\\0\\1\\127\\128\\255')"),
              "00017f80ff");
    CHECK(raises("return crypto.sha256()"));
    CHECK(raises("return crypto.hmac_sha256_hex('k')"));
}

static void test_encoding(void) {
    CHECK_STR(eval("return crypto.base64url('')"), "");
    CHECK_STR(eval("return crypto.base64url('f')"), "Zg");
    CHECK_STR(eval("return crypto.base64url('fo')"), "Zm8");
    CHECK_STR(eval("return crypto.base64url('foo')"), "Zm9v");
    CHECK_STR(eval("return crypto.base64url('foob')"), "Zm9vYg");
    CHECK_STR(eval("return crypto.base64url('\\251\\255')"), "-_8");
    CHECK_STR(eval("local t = crypto.base64url(crypto.random_bytes(32))\n"
                   "return #t == 43 and t:match('^[%w_-]+$') ~= nil"),
              "true");

    /* Long inputs cross the Lua buffer's chunk boundaries: compare with C. */
    enum { N = 20011 };
    static unsigned char big[N];
    static char want_hex[2 * N + 1], want_b64[N * 2];
    for (size_t i = 0; i < N; i++)
        big[i] = (unsigned char)(i * 7 + i / 251);
    crypto_hex(big, N, want_hex);
    sodium_bin2base64(want_b64, sizeof want_b64, big, N,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    lua_pushlstring(L, (const char *)big, N);
    lua_setglobal(L, "big");
    CHECK(strcmp(eval("return crypto.to_hex(big)"), want_hex) == 0);
    CHECK(strcmp(eval("return crypto.base64url(big)"), want_b64) == 0);

    CHECK_STR(eval("return crypto.equal('abc', 'abc')"), "true");
    CHECK_STR(eval("return crypto.equal('abc', 'abd')"), "false");
    CHECK_STR(eval("return crypto.equal('abc', 'ab')"), "false");
    CHECK_STR(eval("return crypto.equal('', '')"), "true");
    CHECK(raises("return crypto.equal('a')"));
}

/* Runs code as a coroutine body until it finishes, driving the loop, and
 * returns its first result like eval. */
static const char *run_async(const char *code) {
    static char buf[512];
    lua_State *co = lua_newthread(L);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX); /* keep co alive */
    if (luaL_loadstring(co, code) != 0) {
        snprintf(buf, sizeof buf, "ERR: %s", lua_tostring(co, -1));
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return buf;
    }
    resume_status = lua_resume(co, 0);
    while (resume_status == LUA_YIELD && uv_run(&test_loop, UV_RUN_ONCE))
        ;
    if (resume_status != 0)
        snprintf(buf, sizeof buf, "ERR: %d %s", resume_status,
                 lua_isstring(co, -1) ? lua_tostring(co, -1) : "");
    else if (lua_isboolean(co, 1))
        snprintf(buf, sizeof buf, "%s", lua_toboolean(co, 1) ? "true" : "false");
    else
        snprintf(buf, sizeof buf, "%s",
                 lua_isstring(co, 1) ? lua_tostring(co, 1) : "(nil)");
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    return buf;
}

static void test_argon2id(void) {
    const char *r = run_async(
        "local h, err = crypto.argon2id_hash('hunter2', 8192, 1)\n"
        "assert(h, err)\n"
        "assert(h:sub(1, 30) == '$argon2id$v=19$m=8192,t=1,p=1$', h)\n"
        "assert(crypto.argon2id_verify(h, 'hunter2') == true)\n"
        "assert(crypto.argon2id_verify(h, 'hunter3') == false)\n"
        "assert(crypto.argon2id_verify('bogus', 'hunter2') == false)\n"
        "assert(crypto.argon2id_needs_rehash(h, 8192, 1) == false)\n"
        "assert(crypto.argon2id_needs_rehash(h, 19456, 2) == true)\n"
        "return 'ok'");
    CHECK_STR(r, "ok");
    CHECK(strstr(run_async("return crypto.argon2id_hash('pw', 4, 1)"),
                 "memory") != NULL);
    CHECK(strstr(run_async("return crypto.argon2id_hash('pw', 8192, 0)"),
                 "iterations") != NULL);
    /* The main thread cannot yield: a clean Lua error, nothing queued. */
    CHECK(strstr(eval("return crypto.argon2id_hash('pw', 8192, 1)"),
                 "coroutine") != NULL);
    CHECK(uv_run(&test_loop, UV_RUN_NOWAIT) == 0);
    CHECK(raises("return crypto.argon2id_needs_rehash('x', 8192)"));
}

static void test_jwt(void) {
    CHECK(raises("return jwt.sign('{\"exp\":1}')"));
    CHECK(raises("return jwt.verify('a.b.c')"));

    lua_jwt_set_secret((const unsigned char *)"0123456789abcdef0123456789abcdef",
                       32);
    CHECK_STR(eval("local t = jwt.sign('{\"sub\":\"alice\",\"exp\":' .. "
                   "(os.time() + 60) .. '}')\n"
                   "local c = jwt.verify(t)\n"
                   "return c:find('\"sub\":\"alice\"', 1, true) and 'ok' or c"),
              "ok");
    /* exp == now: expired, with the claims as third value. */
    CHECK_STR(eval("local t = jwt.sign('{\"sub\":\"bob\",\"exp\":' .. "
                   "os.time() .. '}')\n"
                   "local c, e, claims = jwt.verify(t)\n"
                   "return tostring(c) .. ' ' .. e .. ' ' .. "
                   "tostring(claims:find('bob', 1, true) ~= nil)"),
              "nil expired true");
    CHECK_STR(eval("local c, e, x = jwt.verify('a.b.c')\n"
                   "return tostring(c) .. ' ' .. e .. ' ' .. tostring(x)"),
              "nil invalid nil");
    CHECK_STR(eval("local t = jwt.sign('{\"exp\":' .. (os.time() + 60) .. '}')"
                   "\nlocal c, e = jwt.verify(t .. '\\0')\nreturn e"),
              "invalid");
    CHECK(raises("return jwt.sign('[1]')"));
    CHECK(raises("return jwt.sign('{')"));
    CHECK(raises("return jwt.verify()"));

    /* A token made under another secret is invalid, not expired. */
    CHECK(strncmp(eval("tok = jwt.sign('{\"exp\":1}') return tok"), "eyJ", 3) ==
          0);
    CHECK_STR(eval("local c, e = jwt.verify(tok) return e"), "expired");
    lua_jwt_set_secret((const unsigned char *)"another-secret", 14);
    CHECK_STR(eval("local c, e = jwt.verify(tok) return e"), "invalid");

    /* Clearing the secret makes both functions raise again. */
    lua_jwt_set_secret(NULL, 0);
    CHECK(raises("return jwt.sign('{\"exp\":1}')"));
    CHECK(raises("return jwt.verify(tok)"));
}

int main(void) {
    CHECK(uv_loop_init(&test_loop) == 0);
    L = luaL_newstate();
    luaL_openlibs(L);
    CHECK(luaopen_cc_crypto(L) == 1);
    lua_setglobal(L, "crypto");
    CHECK(luaopen_cc_jwt(L) == 1);
    lua_setglobal(L, "jwt");

    test_random();
    test_digests();
    test_encoding();
    test_argon2id();
    test_jwt();

    lua_close(L);
    uv_loop_close(&test_loop);
    return check_done("test_lua_crypto");
}
