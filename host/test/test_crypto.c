/* test_crypto.c - crypto.c: standard digest and MAC vectors, hex, constant-
 * time compare, argon2id round trip and rehash decisions. */
#include <sodium.h>
#include <string.h>

#include "../crypto.h"
#include "check.h"

static const char *hex_of(const unsigned char *in, size_t n) {
    static char buf[2 * 64 + 1];
    crypto_hex(in, n, buf);
    return buf;
}

static const char *sha256_hex(const char *s) {
    unsigned char md[32];
    crypto_sha256(s, strlen(s), md);
    return hex_of(md, sizeof md);
}

static const char *hmac_hex(const void *key, size_t keylen, const char *msg) {
    unsigned char mac[32];
    crypto_hmac_sha256(key, keylen, msg, strlen(msg), mac);
    return hex_of(mac, sizeof mac);
}

static void test_digests(void) {
    unsigned char md[20];

    /* FIPS 180-2 examples. */
    CHECK_STR(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223"
                                 "b00361a396177a9cb410ff61f20015ad");
    CHECK_STR(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb924"
                              "27ae41e4649b934ca495991b7852b855");
    CHECK_STR(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomn"
                         "opnopq"),
              "248d6a61d20638b8e5c026930c3e6039"
              "a33ce45964ff2167f6ecedd419db06c1");
    crypto_sha1("abc", 3, md);
    CHECK_STR(hex_of(md, 20), "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* RFC 6455 section 1.3: the WebSocket accept key's digest. */
    const char *ws = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-"
                     "C5AB0DC85B11";
    crypto_sha1(ws, strlen(ws), md);
    CHECK_STR(hex_of(md, 20), "b37a4f2cc0624f1690f64606cf385945b2bec4ea");
}

static void test_hmac(void) {
    unsigned char key1[20];
    memset(key1, 0x0b, sizeof key1);
    /* RFC 4231 test cases 1 and 2. */
    CHECK_STR(hmac_hex(key1, sizeof key1, "Hi There"),
              "b0344c61d8db38535ca8afceaf0bf12b"
              "881dc200c9833da726e9376c2e32cff7");
    CHECK_STR(hmac_hex("Jefe", 4, "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c7"
              "5a003f089d2739839dec58b964ec3843");
    /* RFC 4231 test case 6: a key longer than the block is hashed first. */
    unsigned char key6[131];
    memset(key6, 0xaa, sizeof key6);
    CHECK_STR(hmac_hex(key6, sizeof key6, "Test Using Larger Than Block-Size Key - Hash Key First"),
              "60e431591ee0b67f0d8a26aacbf5b77f"
              "8e0bc6213728c5140546040f0ee37f54");
    /* Empty key and message are legal and well defined. */
    CHECK_STR(hmac_hex("", 0, ""), "b613679a0814d9ec772f95d778c35fc5"
                                   "ff1697c493715653c6c712144292c5ad");
    CHECK_STR(hmac_hex(NULL, 0, ""), "b613679a0814d9ec772f95d778c35fc5"
                                     "ff1697c493715653c6c712144292c5ad");
}

static void test_hex_equal(void) {
    const unsigned char in[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
    char out[2 * sizeof in + 1];
    crypto_hex(in, sizeof in, out);
    CHECK_STR(out, "00017f80abff");
    crypto_hex(in, 0, out);
    CHECK_STR(out, "");

    CHECK(crypto_equal("abc", 3, "abc", 3) == 1);
    CHECK(crypto_equal("abc", 3, "abd", 3) == 0);
    CHECK(crypto_equal("xbc", 3, "abc", 3) == 0);
    CHECK(crypto_equal("abc", 3, "abcd", 4) == 0);
    CHECK(crypto_equal("abc", 3, "ab", 2) == 0);
    CHECK(crypto_equal("", 0, "", 0) == 1);
    CHECK(crypto_equal(NULL, 0, NULL, 0) == 1);
    CHECK(crypto_equal("a\0b", 3, "a\0c", 3) == 0);
}

static void test_argon2id(void) {
    char h1[128], h2[128];
    const char *pw = "correct horse battery staple";

    CHECK(crypto_argon2id_hash(pw, strlen(pw), 8192, 1, h1) == 0);
    CHECK(crypto_argon2id_hash(pw, strlen(pw), 8192, 1, h2) == 0);
    CHECK(strncmp(h1, "$argon2id$v=19$m=8192,t=1,p=1$", 30) == 0);
    CHECK(strcmp(h1, h2) != 0); /* fresh salt each time */
    CHECK(crypto_argon2id_verify(h1, pw, strlen(pw)) == 1);
    CHECK(crypto_argon2id_verify(h2, pw, strlen(pw)) == 1);
    CHECK(crypto_argon2id_verify(h1, "wrong", 5) == 0);
    CHECK(crypto_argon2id_verify(h1, pw, strlen(pw) - 1) == 0);
    CHECK(crypto_argon2id_verify("not a hash", pw, strlen(pw)) == 0);
    CHECK(crypto_argon2id_verify("", pw, strlen(pw)) == 0);

    /* Binary passwords (embedded NUL) are hashed by length. */
    char h3[128];
    CHECK(crypto_argon2id_hash("a\0b", 3, 8192, 1, h3) == 0);
    CHECK(crypto_argon2id_verify(h3, "a\0b", 3) == 1);
    CHECK(crypto_argon2id_verify(h3, "a", 1) == 0);

    CHECK(crypto_argon2id_needs_rehash(h1, 8192, 1) == 0);
    CHECK(crypto_argon2id_needs_rehash(h1, 19456, 2) == 1);
    CHECK(crypto_argon2id_needs_rehash(h1, 8192, 2) == 1);
    CHECK(crypto_argon2id_needs_rehash(h1, 16384, 1) == 1);
    CHECK(crypto_argon2id_needs_rehash("garbage", 8192, 1) == 1);

    /* An argon2i string verifies nowhere and always wants a rehash. */
    char hi[crypto_pwhash_argon2i_STRBYTES];
    CHECK(crypto_pwhash_argon2i_str(hi, pw, strlen(pw), 3, 8192 * 1024) == 0);
    CHECK(crypto_argon2id_verify(hi, pw, strlen(pw)) == 0);
    CHECK(crypto_argon2id_needs_rehash(hi, 8192, 3) == 1);

    /* Out-of-range parameters fail instead of hashing weakly. */
    CHECK(crypto_argon2id_hash(pw, strlen(pw), 8192, 0, h2) == -1);
    CHECK(crypto_argon2id_hash(pw, strlen(pw), 1, 1, h2) == -1);
}

int main(void) {
    CHECK(crypto_init() == 0);
    test_digests();
    test_hmac();
    test_hex_equal();
    test_argon2id();
    return check_done("test_crypto");
}
