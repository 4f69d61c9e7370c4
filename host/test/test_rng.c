/* test_rng.c - rng.c: exact rejection mapping with a scripted byte source,
 * float and uuid shapes, and a chi-square check of real draws. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "../rng.h"
#include "check.h"

/* A scripted byte source: hands out words big-endian, then fails. */
struct script {
    const uint64_t *words;
    size_t nwords;
    size_t pos; /* bytes handed out so far */
};

static int script_source(void *ctx, unsigned char *buf, size_t n) {
    struct script *s = ctx;
    for (size_t i = 0; i < n; i++, s->pos++) {
        size_t w = s->pos / 8, shift = 56 - 8 * (s->pos % 8);
        if (w >= s->nwords)
            return -EIO;
        buf[i] = (unsigned char)(s->words[w] >> shift);
    }
    return 0;
}

/* Runs rng_int(lo, hi) over the scripted words; returns its code, stores the
 * value and how many words it consumed. */
static int scripted_int(const uint64_t *words, size_t nwords, int64_t lo,
                        int64_t hi, int64_t *out, size_t *used) {
    struct script s = {words, nwords, 0};
    rng_set_source(script_source, &s);
    int rc = rng_int(lo, hi, out);
    rng_set_source(NULL, NULL);
    *used = s.pos / 8;
    return rc;
}

static void test_mapping(void) {
    const uint64_t max = UINT64_MAX;
    int64_t v = 0;
    size_t used = 0;

    /* n = 6: 2^64 mod 6 = 4, limit = 2^64 - 4. */
    {
        const uint64_t w[] = {max - 3, max, max - 2, max - 1, max - 4};
        CHECK(scripted_int(w, 5, 1, 6, &v, &used) == 0);
        CHECK(used == 5); /* four words at/above the limit rejected */
        CHECK(v == 1 + (int64_t)((max - 4) % 6));
        CHECK(v == 6);
    }
    {
        const uint64_t w[] = {7};
        CHECK(scripted_int(w, 1, 1, 6, &v, &used) == 0);
        CHECK(used == 1 && v == 2);
    }
    {
        const uint64_t w[] = {0};
        CHECK(scripted_int(w, 1, 1, 6, &v, &used) == 0);
        CHECK(used == 1 && v == 1);
    }
    {
        const uint64_t w[] = {max, 12345678901234567ULL};
        CHECK(scripted_int(w, 2, 1, 6, &v, &used) == 0);
        CHECK(used == 2 && v == 1 + (int64_t)(12345678901234567ULL % 6));
    }
    /* Negative range, n = 6. */
    {
        const uint64_t w[] = {3};
        CHECK(scripted_int(w, 1, -10, -5, &v, &used) == 0);
        CHECK(used == 1 && v == -7);
    }
    /* Range across zero, n = 7: 2^64 mod 7 = 2, limit = 2^64 - 2. */
    {
        const uint64_t w[] = {max - 1, max, max - 2};
        CHECK(scripted_int(w, 3, -3, 3, &v, &used) == 0);
        CHECK(used == 3 && v == 3); /* (2^64 - 3) mod 7 = 6 */
    }
    {
        const uint64_t w[] = {10};
        CHECK(scripted_int(w, 1, -3, 3, &v, &used) == 0);
        CHECK(used == 1 && v == 0);
    }
    /* n = 1: every word maps to lo, even the largest. */
    {
        const uint64_t w[] = {max};
        CHECK(scripted_int(w, 1, 42, 42, &v, &used) == 0);
        CHECK(used == 1 && v == 42);
    }
    {
        const uint64_t w[] = {max};
        CHECK(scripted_int(w, 1, -5, -5, &v, &used) == 0);
        CHECK(used == 1 && v == -5);
    }
    /* n a power of two: nothing is rejected. */
    {
        const uint64_t w[] = {max};
        CHECK(scripted_int(w, 1, 0, 7, &v, &used) == 0);
        CHECK(used == 1 && v == 7);
    }
    /* Widest allowed span, 2^53 values. */
    {
        const uint64_t w[] = {max};
        CHECK(scripted_int(w, 1, 0, (INT64_C(1) << 53) - 1, &v, &used) == 0);
        CHECK(v == (INT64_C(1) << 53) - 1);
    }
    /* Near INT64_MIN the arithmetic must not overflow. */
    {
        const uint64_t w[] = {9};
        CHECK(scripted_int(w, 1, INT64_MIN, INT64_MIN + 5, &v, &used) == 0);
        CHECK(v == INT64_MIN + 3);
    }
    /* Errors: reversed bounds, span too wide, failing source. */
    {
        const uint64_t w[] = {0};
        CHECK(scripted_int(w, 1, 2, 1, &v, &used) == -EINVAL);
        CHECK(scripted_int(w, 1, 0, INT64_C(1) << 53, &v, &used) == -EINVAL);
        CHECK(scripted_int(w, 1, INT64_MIN, INT64_MAX, &v, &used) == -EINVAL);
        const uint64_t r[] = {max};
        CHECK(scripted_int(r, 1, 1, 6, &v, &used) == -EIO);
    }
}

static void test_float(void) {
    const uint64_t w[] = {0, UINT64_MAX, UINT64_C(1) << 63};
    struct script s = {w, 3, 0};
    double d = -1;

    rng_set_source(script_source, &s);
    CHECK(rng_float(&d) == 0 && d == 0.0);
    CHECK(rng_float(&d) == 0 && d == 1.0 - 0x1.0p-53);
    CHECK(rng_float(&d) == 0 && d == 0.5);
    CHECK(rng_float(&d) == -EIO);
    rng_set_source(NULL, NULL);

    int ok = 1;
    for (int i = 0; i < 100000; i++)
        ok &= rng_float(&d) == 0 && d >= 0.0 && d < 1.0;
    CHECK(ok);
}

static int uuid_shape(const char *u) {
    if (strlen(u) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
            return 0;
    }
    return u[14] == '4' && strchr("89ab", u[19]) != NULL;
}

static void test_uuid(void) {
    const uint64_t ones[] = {UINT64_MAX, UINT64_MAX};
    const uint64_t zeros[] = {0, 0};
    struct script s1 = {ones, 2, 0}, s0 = {zeros, 2, 0};
    char u[37];

    rng_set_source(script_source, &s1);
    CHECK(rng_uuid4(u) == 0);
    CHECK_STR(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    rng_set_source(script_source, &s0);
    CHECK(rng_uuid4(u) == 0);
    CHECK_STR(u, "00000000-0000-4000-8000-000000000000");
    rng_set_source(NULL, NULL);

    int ok = 1;
    char prev[37] = "";
    for (int i = 0; i < 1000; i++) {
        ok &= rng_uuid4(u) == 0 && uuid_shape(u) && strcmp(u, prev) != 0;
        memcpy(prev, u, sizeof u);
    }
    CHECK(ok);
}

static void test_bytes(void) {
    unsigned char a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    CHECK(rng_bytes(a, sizeof a) == 0);
    CHECK(rng_bytes(b, sizeof b) == 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(rng_bytes(a, 0) == 0);
}

/* 10^6 die rolls; the critical value for 5 degrees of freedom at alpha =
 * 1e-6 is 35.89, so a correct generator fails once in a million runs. */
static void test_chi_square(void) {
    enum { DRAWS = 1000000 };
    long counts[6] = {0};
    int ok = 1;
    for (int i = 0; i < DRAWS; i++) {
        int64_t v = 0;
        ok &= rng_int(1, 6, &v) == 0 && v >= 1 && v <= 6;
        if (v >= 1 && v <= 6)
            counts[v - 1]++;
    }
    CHECK(ok);
    double e = DRAWS / 6.0, chi2 = 0;
    for (int i = 0; i < 6; i++)
        chi2 += (counts[i] - e) * (counts[i] - e) / e;
    printf("chi-square of 10^6 rng_int(1, 6): %.3f\n", chi2);
    CHECK(chi2 < 35.9);
}

int main(void) {
    test_mapping();
    test_float();
    test_uuid();
    test_bytes();
    test_chi_square();
    return check_done("test_rng");
}
