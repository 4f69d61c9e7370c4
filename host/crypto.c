/* crypto.c - hashes, MACs, constant-time compare and argon2id passwords.
 *
 * SHA-256 (refresh-token digests) and SHA-1 (WebSocket accept key) come
 * from OpenSSL 3's EVP layer; argon2id comes from libsodium because OpenSSL
 * 3.0 has none, and so does HMAC-SHA256 (provably-fair outcomes, several per
 * play): OpenSSL's one-shot EVP_Q_mac fetches the algorithm and builds a
 * context on every call, 3.7 % of a slot spin's host CPU. Digest and MAC
 * calls cannot fail on valid input short of a broken library, so they abort
 * rather than hand back an uninitialised buffer. */
#include "crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

int crypto_init(void) {
    return sodium_init() < 0 ? -1 : 0;
}

static void crypto__fail(const char *what) {
    fprintf(stderr, "crypto: %s failed\n", what);
    abort();
}

void crypto_sha256(const void *data, size_t len, unsigned char out[32]) {
    if (!EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL))
        crypto__fail("SHA-256");
}

void crypto_sha1(const void *data, size_t len, unsigned char out[20]) {
    if (!EVP_Digest(data, len, out, NULL, EVP_sha1(), NULL))
        crypto__fail("SHA-1");
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *data,
                        size_t len, unsigned char out[32]) {
    static const unsigned char empty[1];
    crypto_auth_hmacsha256_state st;
    /* libsodium declares the key non-null: an empty key is still a pointer */
    if (crypto_auth_hmacsha256_init(&st, keylen ? key : empty, keylen) != 0 ||
        crypto_auth_hmacsha256_update(&st, data, len) != 0 ||
        crypto_auth_hmacsha256_final(&st, out) != 0)
        crypto__fail("HMAC-SHA256");
    sodium_memzero(&st, sizeof st);
}

void crypto_hex(const unsigned char *in, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int crypto_equal(const void *a, size_t alen, const void *b, size_t blen) {
    if (alen != blen)
        return 0;
    return alen == 0 || CRYPTO_memcmp(a, b, alen) == 0;
}

int crypto_argon2id_hash(const char *pw, size_t pwlen, uint64_t mem_kib,
                         uint64_t iterations, char out[128]) {
    if (mem_kib > SIZE_MAX / 1024 || pwlen > crypto_pwhash_PASSWD_MAX)
        return -1;
    return crypto_pwhash_str_alg(out, pw, pwlen, iterations,
                                 (size_t)(mem_kib * 1024),
                                 crypto_pwhash_ALG_ARGON2ID13) == 0
               ? 0
               : -1;
}

/* The argon2id-specific calls below refuse argon2i strings, which the generic
 * crypto_pwhash_str_* would accept: every stored hash must be argon2id. */
int crypto_argon2id_verify(const char *hash, const char *pw, size_t pwlen) {
    if (pwlen > crypto_pwhash_argon2id_PASSWD_MAX)
        return 0;
    return crypto_pwhash_argon2id_str_verify(hash, pw, pwlen) == 0;
}

int crypto_argon2id_needs_rehash(const char *hash, uint64_t mem_kib,
                                 uint64_t iterations) {
    if (mem_kib > SIZE_MAX / 1024)
        return 1;
    return crypto_pwhash_argon2id_str_needs_rehash(
               hash, iterations, (size_t)(mem_kib * 1024)) != 0;
}
