/* test_router.c - route matching: precedence, trailing slashes, 404 versus
 * 405 and Allow, HEAD fallback, registration errors, limits, unescaping. */
#include "../router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static router_match_t m;

/* Matches method and path (both NUL-terminated); returns the status. */
static int match(const router_t *r, const char *method, const char *path) {
    memset(&m, 0x5a, sizeof m);
    router_match(r, method, strlen(method), path, strlen(path), &m);
    return m.status;
}

/* Does param i of the last match have this name, type and raw value? */
static int param_is(int i, const char *name, char type, const char *value) {
    const router_param_t *p = &m.params[i];
    return i < m.nparams && p->name_len == strlen(name) &&
           memcmp(p->name, name, p->name_len) == 0 && p->type == type &&
           p->value_len == strlen(value) &&
           memcmp(p->value, value, p->value_len) == 0;
}

static int found(const router_t *r, const char *method, const char *path,
                 int id) {
    return match(r, method, path) == ROUTER_FOUND && m.route_id == id;
}

static void test_precedence(void) {
    router_t *r = router_new();
    CHECK(router_add(r, "GET", "/a/b/c", 1) == 0);
    CHECK(router_add(r, "GET", "/a/{x}/d", 2) == 0);
    CHECK(router_add(r, "GET", "/api/users/profile", 10) == 0);
    CHECK(router_add(r, "GET", "/api/users/{user_id:int}", 11) == 0);
    CHECK(router_add(r, "DELETE", "/api/users/{user_id:int}", 12) == 0);

    CHECK(found(r, "GET", "/a/b/c", 1) && m.nparams == 0);
    CHECK(found(r, "GET", "/a/b/d", 2) && m.nparams == 1);
    CHECK(param_is(0, "x", 's', "b"));
    CHECK(found(r, "GET", "/a/zz/d", 2) && param_is(0, "x", 's', "zz"));
    CHECK(match(r, "GET", "/a/b/e") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "/a/b") == ROUTER_NOT_FOUND);

    CHECK(found(r, "GET", "/api/users/profile", 10) && m.nparams == 0);
    /* The type is reported, never checked: the Lua layer answers 422. */
    CHECK(found(r, "GET", "/api/users/me", 11) && m.nparams == 1);
    CHECK(param_is(0, "user_id", 'i', "me"));
    CHECK(found(r, "GET", "/api/users/42", 11) &&
          param_is(0, "user_id", 'i', "42"));
    /* Values stay percent-encoded. */
    CHECK(found(r, "GET", "/api/users/a%20b", 11) &&
          param_is(0, "user_id", 'i', "a%20b"));
    /* The literal has no DELETE, so the parameter route serves it. */
    CHECK(found(r, "DELETE", "/api/users/profile", 12) &&
          param_is(0, "user_id", 'i', "profile"));
    /* Literals are case-sensitive. */
    CHECK(found(r, "GET", "/api/users/Profile", 11));
    CHECK(match(r, "GET", "/API/users/profile") == ROUTER_NOT_FOUND);
    router_free(r);
}

static void test_trailing_slash(void) {
    router_t *r = router_new();
    CHECK(router_add(r, "GET", "/", 30) == 0);
    CHECK(router_add(r, "GET", "/api/games/", 20) == 0);
    CHECK(router_add(r, "GET", "/api/games/{game_id}", 21) == 0);
    CHECK(router_add(r, "GET", "/api/users/profile", 22) == 0);
    CHECK(router_add(r, "GET", "/api/events/{id}/", 23) == 0);
    CHECK(router_add(r, "POST", "/api/games", 24) == 0);

    CHECK(found(r, "GET", "/api/games", 20) && m.nparams == 0);
    CHECK(found(r, "GET", "/api/games/", 20));
    CHECK(found(r, "GET", "/api/games/7", 21) &&
          param_is(0, "game_id", 's', "7"));
    CHECK(match(r, "GET", "/api/games/7/") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "/api/games//") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "/api/gamesx") == ROUTER_NOT_FOUND);
    CHECK(found(r, "GET", "/api/events/5", 23) && param_is(0, "id", 's', "5"));
    CHECK(found(r, "GET", "/api/events/5/", 23) && param_is(0, "id", 's', "5"));

    /* Exact elsewhere. */
    CHECK(found(r, "GET", "/api/users/profile", 22));
    CHECK(match(r, "GET", "/api/users/profile/") == ROUTER_NOT_FOUND);

    /* A slash-less pattern does not answer the path with a slash. */
    CHECK(found(r, "POST", "/api/games", 24));
    CHECK(match(r, "POST", "/api/games/") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, HEAD");
    CHECK(match(r, "PUT", "/api/games") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, HEAD, POST");

    /* The root matches "/" only. */
    CHECK(found(r, "GET", "/", 30));
    CHECK(match(r, "GET", "//") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "*") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "api/games") == ROUTER_NOT_FOUND);
    router_free(r);
}

static void test_405(void) {
    router_t *r = router_new();
    CHECK(router_add(r, "POST", "/api/auth/login", 1) == 0);
    CHECK(router_add(r, "GET", "/api/x", 2) == 0);
    CHECK(router_add(r, "DELETE", "/api/x", 3) == 0);
    CHECK(router_add(r, "POST", "/api/x", 4) == 0);
    CHECK(router_add(r, "GET", "/p/lit", 5) == 0);
    CHECK(router_add(r, "PUT", "/p/{id}", 6) == 0);
    CHECK(router_add(r, "WS", "/ws/notifications/{user_id}", 7) == 0);
    CHECK(router_add(r, "PURGE", "/ws/notifications/{user_id}", 8) == 0);
    CHECK(router_add(r, "OPTIONS", "/ws/notifications/{user_id}", 9) == 0);
    CHECK(router_add(r, "BREW", "/ws/notifications/{user_id}", 10) == 0);

    CHECK(match(r, "GET", "/api/auth/login") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "POST");
    CHECK(m.route_id == -1 && m.nparams == 0);
    CHECK(match(r, "HEAD", "/api/auth/login") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "POST");
    CHECK(match(r, "PATCH", "/api/x") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, HEAD, POST, DELETE");
    /* The union over every pattern matching the path. */
    CHECK(match(r, "PATCH", "/p/lit") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, HEAD, PUT");
    CHECK(match(r, "PATCH", "/p/other") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "PUT");
    /* Other methods follow the standard ones, alphabetically. */
    CHECK(match(r, "GET", "/ws/notifications/3") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "OPTIONS, BREW, PURGE, WS");
    CHECK(found(r, "WS", "/ws/notifications/3", 7) &&
          param_is(0, "user_id", 's', "3"));
    /* A method the router never saw. */
    CHECK(match(r, "FOO", "/api/x") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, HEAD, POST, DELETE");
    CHECK(match(r, "GET", "/nope") == ROUTER_NOT_FOUND);
    CHECK_STR(m.allow, "");
    /* The method need not be NUL-terminated. */
    router_match(r, "GETX", 3, "/api/x", 6, &m);
    CHECK(m.status == ROUTER_FOUND && m.route_id == 2);
    router_match(r, "GETX", 4, "/api/x", 6, &m);
    CHECK(m.status == ROUTER_METHOD_NOT_ALLOWED);
    router_free(r);
}

static void test_head(void) {
    router_t *r = router_new();
    CHECK(router_add(r, "GET", "/h", 40) == 0);
    CHECK(router_add(r, "GET", "/h2", 41) == 0);
    CHECK(router_add(r, "HEAD", "/h2", 42) == 0);

    CHECK(found(r, "HEAD", "/h", 40) && m.head_fallback == 1);
    CHECK(found(r, "GET", "/h", 40) && m.head_fallback == 0);
    CHECK(found(r, "HEAD", "/h2", 42) && m.head_fallback == 0);
    CHECK(found(r, "GET", "/h2", 41) && m.head_fallback == 0);
    CHECK(match(r, "POST", "/h") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK_STR(m.allow, "GET, HEAD");
    router_free(r);
}

static void test_registration_errors(void) {
    router_t *r = router_new();
    CHECK(router_add(r, "GET", "/api/users/{a}", 1) == 0);
    CHECK(router_add(r, "GET", "/api/users/{b:int}", 2) == ROUTER_EDUP);
    CHECK(router_add(r, "GET", "/api/users/{a}", 3) == ROUTER_EDUP);
    CHECK(router_add(r, "POST", "/api/users/{b:int}", 4) == 0);
    CHECK(router_add(r, "GET", "/x", 5) == 0);
    CHECK(router_add(r, "GET", "/x/", 6) == ROUTER_EDUP);
    CHECK(router_add(r, "POST", "/x/", 7) == 0);
    CHECK(router_add(r, "GET", "/", 8) == 0);
    CHECK(router_add(r, "GET", "/", 9) == ROUTER_EDUP);

    /* Each route reports its own parameter names. */
    CHECK(found(r, "GET", "/api/users/5", 1) && param_is(0, "a", 's', "5"));
    CHECK(found(r, "POST", "/api/users/5", 4) && param_is(0, "b", 'i', "5"));

    static const char *const bad[] = {
        "",          "api",       "a/b",       "/a//b",       "//",
        "/{",        "/{x",       "/x}",       "/{}",         "/{:int}",
        "/{x:float}", "/{1x}",    "/{x-y}",    "/a{x}",       "/{x}y",
        "/{x:}",     "/{x}/{x}",  "/{x:int:str}", "/{{x}}",   "/{x}}",
        "/{x:Int}",  "/a/{ x}",   "/a//",      "/{x}/{y}/{x:int}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = router_add(r, "GET", bad[i], 100);
        if (rc != ROUTER_EPATTERN) fprintf(stderr, "pattern \"%s\"\n", bad[i]);
        CHECK(rc == ROUTER_EPATTERN);
    }
    CHECK(router_add(r, "GET", "/{_ok9:str}/{Z}/v1.2-x~", 101) == 0);
    CHECK(found(r, "GET", "/a/b/v1.2-x~", 101) && param_is(0, "_ok9", 's', "a") &&
          param_is(1, "Z", 's', "b"));

    static const char *const badm[] = {"", "get", "G ET", "1GET", "GET/",
                                       "ABCDEFGHIJKLMNOP"};
    for (size_t i = 0; i < sizeof badm / sizeof *badm; i++)
        CHECK(router_add(r, badm[i], "/m", 102) == ROUTER_EMETHOD);
    CHECK(router_add(r, "ABCDEFGHIJKLMNO", "/m", 103) == 0);
    CHECK(router_add(r, "M-SEARCH", "/m", 104) == 0);

    /* The failures left the earlier routes alone. */
    CHECK(found(r, "GET", "/x", 5));
    CHECK(found(r, "POST", "/x", 7));
    CHECK(found(r, "GET", "/", 8));
    CHECK(match(r, "GET", "/a/b") == ROUTER_NOT_FOUND);

    const int codes[] = {ROUTER_EPATTERN, ROUTER_EMETHOD, ROUTER_EDUP,
                         ROUTER_ELIMIT, ROUTER_ENOMEM};
    for (size_t i = 0; i < 5; i++) {
        CHECK(router_strerror(codes[i]) != NULL);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(router_strerror(codes[i]),
                         router_strerror(codes[j])) != 0);
    }
    router_free(r);
    router_free(NULL);
}

static void test_method_limit(void) {
    router_t *r = router_new();
    char method[8];
    int rc = 0, i;
    for (i = 0; i < 40 && rc == 0; i++) {
        snprintf(method, sizeof method, "X%d", i);
        rc = router_add(r, method, "/m", i);
    }
    CHECK(rc == ROUTER_ELIMIT);
    CHECK(i - 1 == ROUTER_MAX_METHODS - 7);
    CHECK(found(r, "X0", "/m", 0));
    /* Allow is cut at a method boundary when it would overflow. */
    CHECK(match(r, "GET", "/m") == ROUTER_METHOD_NOT_ALLOWED);
    CHECK(strlen(m.allow) < sizeof m.allow);
    CHECK(strncmp(m.allow, "X0, X1, X10, X11, ", 18) == 0);
    CHECK(m.allow[strlen(m.allow) - 1] != ' ');
    router_free(r);
}

static void test_unescape(void) {
    char out[64];
    size_t n = 99;
    CHECK(router_unescape("a%20b", 5, out, &n) == 0 && n == 3 &&
          memcmp(out, "a b", 3) == 0);
    CHECK(router_unescape("%41%7a%2F+", 10, out, &n) == 0 && n == 4 &&
          memcmp(out, "Az/+", 4) == 0);
    CHECK(router_unescape("%ED%95%9C", 9, out, &n) == 0 && n == 3 &&
          memcmp(out, "\xed\x95\x9c", 3) == 0);
    CHECK(router_unescape("", 0, out, &n) == 0 && n == 0);
    CHECK(router_unescape("%", 1, out, &n) == -1);
    CHECK(router_unescape("a%4", 3, out, &n) == -1);
    CHECK(router_unescape("%zz", 3, out, &n) == -1);
    CHECK(router_unescape("%4g", 3, out, &n) == -1);
    CHECK(router_unescape("a%00b", 5, out, &n) == -1);
    CHECK(router_unescape("a\0b", 3, out, &n) == -1);
    /* Only len bytes are read. */
    CHECK(router_unescape("%41%", 3, out, &n) == 0 && n == 1 && out[0] == 'A');
}

static void test_many_routes(void) {
    router_t *r = router_new();
    char pat[64], path[64], id[16];
    int ok = 1;
    for (int i = 0; i < 300; i++) {
        snprintf(pat, sizeof pat, "/api/v%d/items/{id}", i);
        ok &= router_add(r, "GET", pat, i) == 0;
        snprintf(pat, sizeof pat, "/api/v%d/items/special", i);
        ok &= router_add(r, "GET", pat, 1000 + i) == 0;
        snprintf(pat, sizeof pat, "/api/v%d/", i);
        ok &= router_add(r, "POST", pat, 2000 + i) == 0;
    }
    CHECK(ok);
    for (int i = 0; i < 300; i++) {
        snprintf(id, sizeof id, "%d", i * 7);
        snprintf(path, sizeof path, "/api/v%d/items/%s", i, id);
        ok &= found(r, "GET", path, i) && param_is(0, "id", 's', id);
        snprintf(path, sizeof path, "/api/v%d/items/special", i);
        ok &= found(r, "GET", path, 1000 + i) && m.nparams == 0;
        snprintf(path, sizeof path, "/api/v%d", i);
        ok &= found(r, "POST", path, 2000 + i);
        snprintf(path, sizeof path, "/api/v%d/", i);
        ok &= found(r, "POST", path, 2000 + i);
        ok &= match(r, "GET", path) == ROUTER_METHOD_NOT_ALLOWED;
    }
    CHECK(ok);
    CHECK(match(r, "GET", "/api/v300/items/1") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "/api/v1/items") == ROUTER_NOT_FOUND);
    router_free(r);
}

static void test_limits(void) {
    router_t *r = router_new();
    char pat[128], path[256];
    size_t len;

    /* Empty segments never match a parameter. */
    CHECK(router_add(r, "GET", "/a/{x}/c", 1) == 0);
    CHECK(match(r, "GET", "/a//c") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "//a/x/c") == ROUTER_NOT_FOUND);
    CHECK(match(r, "GET", "/a/x//c") == ROUTER_NOT_FOUND);
    CHECK(found(r, "GET", "/a/x/c", 1));

    /* 32 segments fit, 33 do not, for patterns and paths. */
    len = 0;
    for (int i = 0; i < ROUTER_MAX_SEGMENTS; i++)
        len += (size_t)snprintf(pat + len, sizeof pat - len, "/s");
    CHECK(router_add(r, "GET", pat, 2) == 0);
    CHECK(found(r, "GET", pat, 2));
    snprintf(path, sizeof path, "%s/", pat);
    CHECK(match(r, "GET", path) == ROUTER_NOT_FOUND);
    snprintf(path, sizeof path, "%s/s", pat);
    CHECK(router_add(r, "GET", path, 3) == ROUTER_ELIMIT);
    CHECK(match(r, "GET", path) == ROUTER_NOT_FOUND);

    /* A path of many segments is refused without a walk. */
    char *big = malloc(200001);
    for (size_t i = 0; i < 100000; i++) memcpy(big + 2 * i, "/s", 2);
    big[200000] = '\0';
    CHECK(match(r, "GET", big) == ROUTER_NOT_FOUND);
    /* A very long single segment is fine. */
    CHECK(router_add(r, "GET", "/long/{v}", 4) == 0);
    memcpy(big, "/long/", 6);
    memset(big + 6, 'z', 200000 - 6);
    CHECK(found(r, "GET", big, 4) && m.params[0].value == big + 6 &&
          m.params[0].value_len == 200000 - 6);
    free(big);

    /* Eight parameters fit, nine do not. */
    CHECK(router_add(r, "GET", "/p/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h:int}", 5) == 0);
    CHECK(router_add(r, "GET", "/q/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", 6) ==
          ROUTER_ELIMIT);
    CHECK(found(r, "GET", "/p/1/2/3/4/5/6/7/8", 5) && m.nparams == 8);
    CHECK(param_is(0, "a", 's', "1") && param_is(6, "g", 's', "7") &&
          param_is(7, "h", 'i', "8"));
    CHECK(match(r, "GET", "/q/1/2/3/4/5/6/7/8/9") == ROUTER_NOT_FOUND);
    router_free(r);
}

/* Literal and parameter children at every level, and a path that only the
 * last parameter branch matches: each trie node is visited once at most. */
static void test_backtracking_depth(void) {
    router_t *r = router_new();
    char pat[512], path[256];
    size_t len = 0;
    int ok = 1;
    for (int d = 0; d < ROUTER_MAX_SEGMENTS - 1; d++) {
        len += (size_t)snprintf(pat + len, sizeof pat - len, "/a");
        snprintf(pat + len, sizeof pat - len, "/{p}");
        ok &= router_add(r, "GET", pat, d) == 0;
        snprintf(pat + len, sizeof pat - len, "/z");
        ok &= router_add(r, "POST", pat, 100 + d) == 0;
    }
    CHECK(ok);
    len = 0;
    for (int d = 0; d < ROUTER_MAX_SEGMENTS - 1; d++)
        len += (size_t)snprintf(path + len, sizeof path - len, "/a");
    CHECK(found(r, "GET", path, ROUTER_MAX_SEGMENTS - 3) &&
          param_is(0, "p", 's', "a"));
    snprintf(path + len, sizeof path - len, "/z");
    CHECK(found(r, "POST", path, 100 + ROUTER_MAX_SEGMENTS - 2));
    CHECK(found(r, "GET", path, ROUTER_MAX_SEGMENTS - 2) &&
          param_is(0, "p", 's', "z"));
    CHECK(match(r, "GET", "/a/a/q/x") == ROUTER_NOT_FOUND);
    router_free(r);
}

int main(void) {
    test_precedence();
    test_trailing_slash();
    test_405();
    test_head();
    test_registration_errors();
    test_method_limit();
    test_unescape();
    test_many_routes();
    test_limits();
    test_backtracking_depth();
    return check_done("test_router");
}
