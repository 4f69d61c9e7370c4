/* crypto.h - hashes, MACs, constant-time compare and argon2id passwords.
 *
 * Thin, synchronous wrappers over OpenSSL 3 and libsodium. Password hashing
 * is slow on purpose (tens of ms): callers on the event loop run it on the
 * libuv thread pool (see lua_crypto.c). */
#ifndef CCHOST_CRYPTO_H
#define CCHOST_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

int crypto_init(void); /* sodium_init; 0 or -1 */

void crypto_sha256(const void *data, size_t len, unsigned char out[32]);
void crypto_sha1(const void *data, size_t len, unsigned char out[20]);
void crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
                        size_t len, unsigned char out[32]);
/* Lowercase hex of n bytes into out (2n + 1 bytes with the NUL). */
void crypto_hex(const unsigned char *in, size_t n, char *out);
/* 1 when equal, 0 otherwise; time depends only on the lengths. */
int crypto_equal(const void *a, size_t alen, const void *b, size_t blen);

/* argon2id PHC string of password into out (crypto_pwhash_STRBYTES = 128).
 * mem_kib and iterations as CONTRACT.md 4.1; parallelism is fixed at 1. 0/-1. */
int crypto_argon2id_hash(const char *pw, size_t pwlen, uint64_t mem_kib,
                         uint64_t iterations, char out[128]);
/* 1 match, 0 mismatch or malformed hash. */
int crypto_argon2id_verify(const char *hash, const char *pw, size_t pwlen);
/* 1 when hash was made with other parameters than these (rehash wanted). */
int crypto_argon2id_needs_rehash(const char *hash, uint64_t mem_kib,
                                 uint64_t iterations);

#endif
