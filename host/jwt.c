/* jwt.c - HS256 access tokens over libjwt 1.10, with the checks it lacks.
 *
 * libjwt 1.10 parses and checks the signature with whatever algorithm the
 * token's header names (HS512 passes with the same key), skips the
 * signature when the key is empty, and never looks at exp or nbf. So this
 * module refuses an empty key, insists on HS256 after decoding, and checks
 * the time claims itself with jansson: exp is required and must be an
 * integer (the contract's "integer seconds"), nbf is optional. Expired is
 * reported apart from invalid because logout accepts a genuine token whose
 * exp has passed; it is only returned once the signature has been checked. */
/* libjwt's header is also named jwt.h: it must be found first, through the
 * system path, so host/ must never be a -I directory (quoted includes find
 * this folder's headers anyway; use -iquote if a flag is needed). */
#include <jwt.h>
#ifndef JWT_ALG_INVAL
#error "<jwt.h> is not libjwt's: remove host/ from the -I include path"
#endif

#include "jwt.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>

int jwtx_sign(const unsigned char *key, size_t keylen, const char *claims_json,
              char **out) {
    jwt_t *jwt = NULL;
    int rc;

    *out = NULL;
    if (!key || keylen == 0 || keylen > INT_MAX || !claims_json)
        return JWTX_INVALID;
    if (jwt_new(&jwt) != 0)
        return JWTX_NOMEM;
    rc = jwt_add_grants_json(jwt, claims_json); /* EINVAL unless an object */
    if (rc == 0)
        rc = jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)keylen);
    if (rc == 0) {
        *out = jwt_encode_str(jwt);
        if (!*out)
            rc = errno ? errno : ENOMEM;
    }
    jwt_free(jwt);
    if (rc == 0)
        return JWTX_OK;
    return rc == ENOMEM ? JWTX_NOMEM : JWTX_INVALID;
}

/* Checks the time claims of the payload text: JWTX_OK, JWTX_EXPIRED or
 * JWTX_INVALID (exp missing or not an integer, nbf not an integer or in the
 * future). */
static int jwtx__check_times(const char *claims, int64_t now) {
    json_t *root = json_loads(claims, 0, NULL);
    json_t *exp, *nbf;
    int rc = JWTX_INVALID;

    if (!root)
        return JWTX_INVALID;
    exp = json_object_get(root, "exp");
    nbf = json_object_get(root, "nbf");
    if (json_is_integer(exp) && (!nbf || json_is_integer(nbf))) {
        if (nbf && json_integer_value(nbf) > now)
            rc = JWTX_INVALID;
        else if (json_integer_value(exp) <= now)
            rc = JWTX_EXPIRED;
        else
            rc = JWTX_OK;
    }
    json_decref(root);
    return rc;
}

int jwtx_verify(const unsigned char *key, size_t keylen, const char *token,
                int64_t now, char **claims) {
    jwt_t *jwt = NULL;
    char *text;
    int rc;

    *claims = NULL;
    if (!key || keylen == 0 || keylen > INT_MAX || !token)
        return JWTX_INVALID;
    rc = jwt_decode(&jwt, token, key, (int)keylen);
    if (rc != 0)
        return rc == ENOMEM ? JWTX_NOMEM : JWTX_INVALID;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256) {
        jwt_free(jwt);
        return JWTX_INVALID;
    }
    text = jwt_get_grants_json(jwt, NULL);
    jwt_free(jwt);
    if (!text)
        return JWTX_NOMEM;
    rc = jwtx__check_times(text, now);
    if (rc == JWTX_OK || rc == JWTX_EXPIRED)
        *claims = text;
    else
        free(text);
    return rc;
}
