/* rng.c - cryptographically secure random numbers from the OS CSPRNG.
 *
 * Game outcomes, refresh tokens and ids must be unpredictable and unbiased,
 * so every draw comes from getrandom(2) (never a seeded PRNG) and integer
 * ranges use rejection sampling instead of a plain modulo. Integers, floats
 * and uuids read 64-bit words through a replaceable byte source so a test
 * can script the words and check the mapping exactly. */
#include "rng.h"

#include <errno.h>
#include <sys/random.h>

static rng_source_fn rng__source;
static void *rng__ctx;

int rng_bytes(unsigned char *buf, size_t n) {
    while (n > 0) {
        ssize_t got = getrandom(buf, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += got;
        n -= (size_t)got;
    }
    return 0;
}

void rng_set_source(rng_source_fn fn, void *ctx) {
    rng__source = fn;
    rng__ctx = fn ? ctx : NULL;
}

/* Fills b from the current source (scripted in tests, else the OS). */
static int rng__fill(unsigned char *b, size_t n) {
    return rng__source ? rng__source(rng__ctx, b, n) : rng_bytes(b, n);
}

/* Reads one 64-bit big-endian word from the current source. */
static int rng__word(uint64_t *w) {
    unsigned char b[8];
    int rc = rng__fill(b, sizeof b);
    if (rc < 0)
        return rc;
    *w = 0;
    for (int i = 0; i < 8; i++)
        *w = *w << 8 | b[i];
    return 0;
}

int rng_int(int64_t lo, int64_t hi, int64_t *out) {
    if (lo > hi)
        return -EINVAL;
    uint64_t span = (uint64_t)hi - (uint64_t)lo; /* no signed overflow */
    if (span >= (UINT64_C(1) << 53))
        return -EINVAL;
    uint64_t n = span + 1;
    /* 2^64 mod n computed in 64 bits: (2^64 - n) mod n. When it is 0, n
     * divides 2^64 and every word maps evenly (limit would be 2^64). */
    uint64_t rem = (0 - n) % n;
    uint64_t limit = 0 - rem; /* 2^64 - rem, meaningful when rem != 0 */
    uint64_t w;
    do {
        int rc = rng__word(&w);
        if (rc < 0)
            return rc;
    } while (rem != 0 && w >= limit);
    *out = (int64_t)((uint64_t)lo + w % n);
    return 0;
}

int rng_float(double *out) {
    uint64_t w;
    int rc = rng__word(&w);
    if (rc < 0)
        return rc;
    *out = (double)(w >> 11) * 0x1.0p-53;
    return 0;
}

int rng_uuid4(char out[37]) {
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    int rc = rng__fill(b, sizeof b);
    if (rc < 0)
        return rc;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
    return 0;
}
