/* test_jwt.c - jwt.c: HS256 round trip and every way a token must fail
 * (expiry without leeway, nbf, alg none/HS384/HS512, wrong key, tampering,
 * missing or non-integer exp, empty key, malformed text). */
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto.h"
#include "../jwt.h"
#include "check.h"

static const unsigned char KEY[] = "0123456789abcdef0123456789abcdef";
#define KEYLEN (sizeof KEY - 1)
#define NOW INT64_C(1700000000)

static void b64url(const void *in, size_t n, char *out, size_t outsz) {
    sodium_bin2base64(out, outsz, in, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* Builds header.payload.signature by hand; sig "" leaves it empty, sig NULL
 * signs with HMAC-SHA256 under key. */
static char *hand_token(const char *header, const char *payload,
                        const unsigned char *key, size_t keylen,
                        const char *sig) {
    char h[512], p[512], s[64];
    static char tok[1200];
    unsigned char mac[32];
    b64url(header, strlen(header), h, sizeof h);
    b64url(payload, strlen(payload), p, sizeof p);
    snprintf(tok, sizeof tok, "%s.%s", h, p);
    if (!sig) {
        crypto_hmac_sha256(key, keylen, tok, strlen(tok), mac);
        b64url(mac, sizeof mac, s, sizeof s);
        sig = s;
    }
    strcat(tok, ".");
    strcat(tok, sig);
    return tok;
}

/* A libjwt token signed with alg over KEY. */
static char *libjwt_token(jwt_alg_t alg, const char *claims) {
    jwt_t *jwt;
    char *tok = NULL;
    if (jwt_new(&jwt) == 0 && jwt_add_grants_json(jwt, claims) == 0 &&
        jwt_set_alg(jwt, alg, KEY, (int)KEYLEN) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    return tok;
}

static int verify(const char *tok, char **claims) {
    return jwtx_verify(KEY, KEYLEN, tok, NOW, claims);
}

static int verify_rc(const char *tok) {
    char *claims = (char *)"sentinel";
    int rc = verify(tok, &claims);
    if (rc != JWTX_OK && rc != JWTX_EXPIRED)
        CHECK(claims == NULL);
    free(rc == JWTX_OK || rc == JWTX_EXPIRED ? claims : NULL);
    return rc;
}

static char *sign(const char *claims) {
    char *tok = NULL;
    CHECK(jwtx_sign(KEY, KEYLEN, claims, &tok) == JWTX_OK);
    return tok;
}

static void test_round_trip(void) {
    char *tok = sign("{\"sub\":\"alice\",\"user_id\":7,\"is_admin\":false,"
                     "\"exp\":1700000060,\"jti\":\"x\"}");
    char *claims = NULL;
    CHECK(tok && strncmp(tok, "eyJ", 3) == 0);
    CHECK(verify(tok, &claims) == JWTX_OK);
    json_t *root = claims ? json_loads(claims, 0, NULL) : NULL;
    CHECK(root != NULL);
    CHECK_STR(json_string_value(json_object_get(root, "sub")), "alice");
    CHECK(json_integer_value(json_object_get(root, "user_id")) == 7);
    CHECK(json_integer_value(json_object_get(root, "exp")) == 1700000060);
    CHECK(json_is_false(json_object_get(root, "is_admin")));
    json_decref(root);
    free(claims);

    /* The header is exactly the contract's. */
    char *dot = strchr(tok, '.');
    CHECK(dot && strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.",
                         (size_t)(dot - tok + 1)) == 0);

    /* A hand-made HS256 token under the same key is just as genuine. */
    CHECK(verify_rc(hand_token("{\"alg\":\"HS256\"}",
                               "{\"exp\":1700000001}", KEY, KEYLEN, NULL)) ==
          JWTX_OK);
    free(tok);
}

static void test_times(void) {
    char *claims = NULL, *tok;

    /* exp == now is expired (no leeway), and claims still come back. */
    tok = sign("{\"sub\":\"bob\",\"exp\":1700000000}");
    CHECK(verify(tok, &claims) == JWTX_EXPIRED);
    CHECK(claims && strstr(claims, "\"bob\""));
    free(claims);
    free(tok);

    tok = sign("{\"exp\":1}");
    CHECK(verify_rc(tok) == JWTX_EXPIRED);
    free(tok);

    tok = sign("{\"exp\":1700000001}");
    CHECK(verify_rc(tok) == JWTX_OK);
    free(tok);

    /* nbf in the future is invalid; at or before now is fine. */
    tok = sign("{\"exp\":1700000600,\"nbf\":1700000001}");
    CHECK(verify_rc(tok) == JWTX_INVALID);
    free(tok);
    tok = sign("{\"exp\":1700000600,\"nbf\":1700000000}");
    CHECK(verify_rc(tok) == JWTX_OK);
    free(tok);
    tok = sign("{\"exp\":1700000600,\"nbf\":\"soon\"}");
    CHECK(verify_rc(tok) == JWTX_INVALID);
    free(tok);

    /* exp is required and must be an integer. */
    const char *bad_exp[] = {"{\"sub\":\"x\"}", "{\"exp\":1700000600.5}",
                             "{\"exp\":\"1700000600\"}", "{\"exp\":null}",
                             "{\"exp\":true}", "{}"};
    for (size_t i = 0; i < sizeof bad_exp / sizeof *bad_exp; i++) {
        tok = sign(bad_exp[i]);
        CHECK(verify_rc(tok) == JWTX_INVALID);
        free(tok);
    }
}

static void test_algs(void) {
    const char *claims = "{\"sub\":\"eve\",\"exp\":1700000600}";
    char *tok;

    /* alg none with an empty signature. */
    tok = hand_token("{\"alg\":\"none\",\"typ\":\"JWT\"}", claims, KEY, KEYLEN,
                     "");
    CHECK(strncmp(tok, "eyJ", 3) == 0 && tok[strlen(tok) - 1] == '.');
    CHECK(verify_rc(tok) == JWTX_INVALID);
    tok = hand_token("{\"alg\":\"none\"}", claims, KEY, KEYLEN, "");
    CHECK(verify_rc(tok) == JWTX_INVALID);
    /* alg none carrying a valid HS256 MAC. */
    tok = hand_token("{\"alg\":\"none\"}", claims, KEY, KEYLEN, NULL);
    CHECK(verify_rc(tok) == JWTX_INVALID);

    /* Other HMAC algorithms, correctly signed with the same key. */
    tok = libjwt_token(JWT_ALG_HS512, claims);
    CHECK(tok != NULL);
    CHECK(verify_rc(tok) == JWTX_INVALID);
    free(tok);
    tok = libjwt_token(JWT_ALG_HS384, claims);
    CHECK(tok != NULL);
    CHECK(verify_rc(tok) == JWTX_INVALID);
    free(tok);

    /* Header without alg, and an unknown alg. */
    CHECK(verify_rc(hand_token("{\"typ\":\"JWT\"}", claims, KEY, KEYLEN,
                               NULL)) == JWTX_INVALID);
    CHECK(verify_rc(hand_token("{\"alg\":\"RS256\"}", claims, KEY, KEYLEN,
                               NULL)) == JWTX_INVALID);
}

static void test_keys_and_tampering(void) {
    const unsigned char other[] = "0123456789abcdef0123456789abcdeF";
    char *tok = sign("{\"sub\":\"eve\",\"exp\":1700000600}");
    char *claims = (char *)"sentinel";

    /* Wrong key, also for an expired token (never "expired" unless genuine). */
    CHECK(jwtx_verify(other, KEYLEN, tok, NOW, &claims) == JWTX_INVALID);
    CHECK(claims == NULL);
    CHECK(jwtx_verify(other, KEYLEN, tok, NOW + 3600, &claims) ==
          JWTX_INVALID);
    CHECK(jwtx_verify(KEY, KEYLEN, tok, NOW + 3600, &claims) == JWTX_EXPIRED);
    free(claims);

    /* Empty key: refused outright, even for a token signed with it. */
    CHECK(jwtx_verify((const unsigned char *)"", 0, tok, NOW, &claims) ==
          JWTX_INVALID);
    CHECK(jwtx_verify(NULL, 0, tok, NOW, &claims) == JWTX_INVALID);
    CHECK(verify_rc(hand_token("{\"alg\":\"HS256\"}",
                               "{\"exp\":1700000600}", (const unsigned char *)"",
                               0, NULL)) == JWTX_INVALID);
    char *out = (char *)"sentinel";
    CHECK(jwtx_sign((const unsigned char *)"", 0, "{\"exp\":1}", &out) ==
          JWTX_INVALID);
    CHECK(out == NULL);

    /* Tampered payload with the original header and signature. */
    char *forged = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                              "{\"sub\":\"eve\",\"exp\":1800000000}", KEY,
                              KEYLEN, "x");
    char *sig = strrchr(tok, '.');
    char buf[1200];
    snprintf(buf, sizeof buf, "%.*s%s", (int)(strrchr(forged, '.') - forged),
             forged, sig);
    CHECK(verify_rc(buf) == JWTX_INVALID);

    /* Tampered signature: flip one character. */
    snprintf(buf, sizeof buf, "%s", tok);
    char *last = buf + strlen(buf) - 5;
    *last = *last == 'A' ? 'B' : 'A';
    CHECK(verify_rc(buf) == JWTX_INVALID);

    /* Signature stripped. */
    snprintf(buf, sizeof buf, "%.*s.", (int)(sig - tok), tok);
    CHECK(verify_rc(buf) == JWTX_INVALID);
    free(tok);
}

static void test_malformed(void) {
    const char *bad[] = {"", ".", "..", "a.b", "a.b.c", "a.b.c.d",
                         "eyJhbGciOiJIUzI1NiJ9", "not a token at all",
                         "eyJhbGciOiJIUzI1NiJ9.!!!.abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(verify_rc(bad[i]) == JWTX_INVALID);
    CHECK(verify_rc(hand_token("{\"alg\":\"HS256\"}", "[1,2]", KEY, KEYLEN,
                               NULL)) == JWTX_INVALID);
    CHECK(verify_rc(hand_token("{\"alg\":\"HS256\"}", "not json", KEY, KEYLEN,
                               NULL)) == JWTX_INVALID);

    char *out = (char *)"sentinel";
    CHECK(jwtx_sign(KEY, KEYLEN, "[1]", &out) == JWTX_INVALID && !out);
    CHECK(jwtx_sign(KEY, KEYLEN, "{bad", &out) == JWTX_INVALID && !out);
    CHECK(jwtx_sign(KEY, KEYLEN, "{\"exp\":1} x", &out) == JWTX_INVALID);
}

int main(void) {
    CHECK(crypto_init() == 0);
    test_round_trip();
    test_times();
    test_algs();
    test_keys_and_tampering();
    test_malformed();
    return check_done("test_jwt");
}
