/* rng.h - cryptographically secure random numbers from the OS CSPRNG.
 *
 * All integer ranges use rejection sampling, so no value is more likely than
 * another (no modulo bias). The byte source is pluggable so tests can check
 * the mapping exactly with a scripted source. */
#ifndef CCHOST_RNG_H
#define CCHOST_RNG_H

#include <stddef.h>
#include <stdint.h>

/* A byte source: fills buf with n bytes; returns 0 or a negative errno. */
typedef int (*rng_source_fn)(void *ctx, unsigned char *buf, size_t n);

/* Fills buf with n bytes from the OS CSPRNG (getrandom). 0 or -errno. */
int rng_bytes(unsigned char *buf, size_t n);

/* Replaces the byte source (NULL restores the OS CSPRNG). For tests. */
void rng_set_source(rng_source_fn fn, void *ctx);

/* Uniform integer in [lo, hi] (inclusive), lo <= hi, hi - lo < 2^53.
 * Draws 64-bit big-endian words w and rejects w >= limit where
 * limit = 2^64 - (2^64 mod n), n = hi - lo + 1; returns lo + w mod n.
 * Returns 0 and stores into *out, or a negative errno. */
int rng_int(int64_t lo, int64_t hi, int64_t *out);

/* Uniform double in [0, 1) with 53 random bits: (w >> 11) / 2^53. */
int rng_float(double *out);

/* Random UUID version 4 as 36 lowercase characters plus NUL in out[37]. */
int rng_uuid4(char out[37]);

#endif
