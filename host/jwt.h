/* jwt.h - HS256 access tokens over libjwt 1.10, with the checks it lacks.
 *
 * libjwt 1.10 does not check exp or nbf and accepts any key for alg "none";
 * this module insists on HS256, verifies the signature with the configured
 * secret, and checks exp/nbf itself against the caller's clock. */
#ifndef CCHOST_JWT_H
#define CCHOST_JWT_H

#include <stddef.h>
#include <stdint.h>

enum {
    JWTX_OK = 0,
    JWTX_INVALID = -1,  /* malformed, wrong alg, bad signature, nbf future */
    JWTX_EXPIRED = -2,  /* genuine (signature good, HS256) but exp <= now */
    JWTX_NOMEM = -3
};

/* Signs claims_json (a JSON object text) with HS256. On success *out is a
 * malloc'd NUL-terminated token the caller frees. */
int jwtx_sign(const unsigned char *key, size_t keylen, const char *claims_json,
              char **out);

/* Verifies token: alg must be HS256, signature must match key, nbf (if any)
 * <= now, exp (required, integer) > now. On JWTX_OK or JWTX_EXPIRED *claims is
 * the malloc'd JSON text of the payload (caller frees), else NULL. An empty key
 * is always JWTX_INVALID. */
int jwtx_verify(const unsigned char *key, size_t keylen, const char *token,
                int64_t now, char **claims);

#endif
