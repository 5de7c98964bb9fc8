#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"
#include "token.h"

#define SECRET "an-hs256-secret-of-at-least-32-bytes!"
#define NOW 1800000000LL

static void b64url(const unsigned char *in, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    /* to base64url, unpadded */
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
}

/* Builds header.payload.signature by hand: HS256 HMAC when sign is set, else
 * the literal signature sig.  Returns a malloc'd string. */
static char *craft(const char *header, const char *payload, bool sign, const char *sig)
{
    char h[1024], p[16384];
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)payload, strlen(payload), p);
    size_t cap = strlen(h) + strlen(p) + 128 + (sig ? strlen(sig) : 0);
    char *tok = malloc(cap);
    ck_assert_ptr_nonnull(tok);
    snprintf(tok, cap, "%s.%s.", h, p);
    if (sign) {
        unsigned char mac[32];
        unsigned int maclen = 0;
        HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, strlen(tok) - 1,
             mac, &maclen);
        ck_assert_uint_eq(maclen, 32);
        b64url(mac, maclen, tok + strlen(tok));
    } else if (sig) {
        strcat(tok, sig);
    }
    return tok;
}

static char *signed_claims(const char *payload)
{
    return craft("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, true, NULL);
}

/* libjwt encodes with any algorithm, for tokens of the wrong alg. */
static char *libjwt_token(jwt_alg_t alg, const char *claims)
{
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
    if (alg == JWT_ALG_NONE)
        ck_assert_int_eq(jwt_set_alg(jwt, alg, NULL, 0), 0);
    else
        ck_assert_int_eq(jwt_set_alg(jwt, alg, (const unsigned char *)SECRET, strlen(SECRET)), 0);
    char *tok = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(tok);
    jwt_free(jwt);
    return tok;
}

static int verify(const char *tok)
{
    struct chat_identity who;
    int rc = chat_token_verify(SECRET, strlen(SECRET), tok, NOW, &who);
    if (rc == CHAT_TOKEN_OK)
        chat_identity_deinit(&who);
    else
        ck_assert_ptr_null(who.avatar);
    return rc;
}

static int verify_free(char *tok)
{
    int rc = verify(tok);
    free(tok);
    return rc;
}

#define GOOD_CLAIMS "{\"sub\":\"u1\",\"name\":\"Alice\",\"exp\":1800000100}"

START_TEST(test_round_trip)
{
    struct chat_identity who = {.id = "user_42-x", .name = "Zoë 😀", .admin = true};
    who.avatar = strdup("https://example.com/a.png");
    char *tok = chat_token_issue(SECRET, strlen(SECRET), &who, NOW, 86400);
    ck_assert_ptr_nonnull(tok);
    free(who.avatar);

    struct chat_identity got;
    ck_assert_int_eq(chat_token_verify(SECRET, strlen(SECRET), tok, NOW + 10, &got), CHAT_TOKEN_OK);
    ck_assert_str_eq(got.id, "user_42-x");
    ck_assert_str_eq(got.name, "Zoë 😀");
    ck_assert_str_eq(got.avatar, "https://example.com/a.png");
    ck_assert(got.admin);
    ck_assert_int_eq(got.exp, NOW + 86400);

    struct chat_identity copy;
    ck_assert_int_eq(chat_identity_copy(&copy, &got), 0);
    ck_assert_ptr_ne(copy.avatar, got.avatar);
    ck_assert_str_eq(copy.avatar, got.avatar);
    chat_identity_deinit(&copy);
    chat_identity_deinit(&got);
    chat_identity_deinit(&got);

    /* expires exactly at NOW + ttl */
    ck_assert_int_eq(chat_token_verify(SECRET, strlen(SECRET), tok, NOW + 86400, &got),
                     CHAT_TOKEN_E_EXPIRED);
    /* another key */
    ck_assert_int_eq(
        chat_token_verify("x-different-secret-of-32-bytes-or-more", 38, tok, NOW, &got),
        CHAT_TOKEN_E_SIGNATURE);
    free(tok);

    struct chat_identity plain = {.id = "p", .name = "Bob"};
    tok = chat_token_issue(SECRET, strlen(SECRET), &plain, NOW, 60);
    ck_assert_ptr_nonnull(tok);
    ck_assert_int_eq(chat_token_verify(SECRET, strlen(SECRET), tok, NOW, &got), CHAT_TOKEN_OK);
    ck_assert_ptr_null(got.avatar);
    ck_assert(!got.admin);
    chat_identity_deinit(&got);
    free(tok);

    /* issuing refuses invalid identities */
    struct chat_identity bad = {.id = "a b", .name = "Bob"};
    ck_assert_ptr_null(chat_token_issue(SECRET, strlen(SECRET), &bad, NOW, 60));
    struct chat_identity bad2 = {.id = "ab", .name = " Bob"};
    ck_assert_ptr_null(chat_token_issue(SECRET, strlen(SECRET), &bad2, NOW, 60));
}
END_TEST

START_TEST(test_crafted_good)
{
    ck_assert_int_eq(verify_free(signed_claims(GOOD_CLAIMS)), CHAT_TOKEN_OK);
    ck_assert_int_eq(verify_free(libjwt_token(JWT_ALG_HS256, GOOD_CLAIMS)), CHAT_TOKEN_OK);
    /* role other than admin */
    struct chat_identity who;
    char *tok = signed_claims("{\"sub\":\"u1\",\"name\":\"Alice\",\"exp\":1800000100,\"role\":"
                              "\"Admin\",\"avatar\":null}");
    ck_assert_int_eq(chat_token_verify(SECRET, strlen(SECRET), tok, NOW, &who), CHAT_TOKEN_OK);
    ck_assert(!who.admin);
    ck_assert_ptr_null(who.avatar);
    chat_identity_deinit(&who);
    free(tok);
}
END_TEST

START_TEST(test_forged_signature)
{
    char *tok = signed_claims(GOOD_CLAIMS);
    size_t n = strlen(tok);
    tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(tok), CHAT_TOKEN_E_SIGNATURE);
    free(tok);

    /* payload swapped under a valid signature */
    char *a = signed_claims(GOOD_CLAIMS);
    char *b = signed_claims("{\"sub\":\"admin\",\"name\":\"Alice\",\"exp\":1800000100,"
                            "\"role\":\"admin\"}");
    char *sig_a = strrchr(a, '.');
    char *sig_b = strrchr(b, '.');
    ck_assert_uint_eq(strlen(sig_a), strlen(sig_b));
    memcpy(sig_b, sig_a, strlen(sig_a));
    ck_assert_int_eq(verify(b), CHAT_TOKEN_E_SIGNATURE);
    free(a);
    free(b);

    /* empty or truncated signature */
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"HS256\"}", GOOD_CLAIMS, false, "")),
                     CHAT_TOKEN_E_SIGNATURE);
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"HS256\"}", GOOD_CLAIMS, false, "abc")),
                     CHAT_TOKEN_E_SIGNATURE);
}
END_TEST

START_TEST(test_alg_none)
{
    /* libjwt's own "none" token: header.payload. */
    ck_assert_int_eq(verify_free(libjwt_token(JWT_ALG_NONE, GOOD_CLAIMS)), CHAT_TOKEN_E_ALG);
    /* none with a (bogus) signature part */
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"none\"}", GOOD_CLAIMS, false, "xyz")),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"none\"}", GOOD_CLAIMS, true, NULL)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"NONE\"}", GOOD_CLAIMS, false, "")),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(craft("{\"typ\":\"JWT\"}", GOOD_CLAIMS, true, NULL)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(craft("{\"alg\":null}", GOOD_CLAIMS, true, NULL)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"hs256\"}", GOOD_CLAIMS, true, NULL)),
                     CHAT_TOKEN_E_ALG);
}
END_TEST

START_TEST(test_alg_other)
{
    ck_assert_int_eq(verify_free(libjwt_token(JWT_ALG_HS512, GOOD_CLAIMS)), CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(libjwt_token(JWT_ALG_HS384, GOOD_CLAIMS)), CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(craft("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", GOOD_CLAIMS, false,
                                       "c2lnbmF0dXJlLW9mLWFuLVJTQS1rZXk")),
                     CHAT_TOKEN_E_ALG);
    /* HS512-signed token whose header claims HS256 */
    char *t = libjwt_token(JWT_ALG_HS512, GOOD_CLAIMS);
    char *good = signed_claims(GOOD_CLAIMS);
    char *forged = malloc(strlen(t) + strlen(good));
    ck_assert_ptr_nonnull(forged);
    size_t hdr = (size_t)(strrchr(good, '.') - good);
    memcpy(forged, good, hdr);
    strcpy(forged + hdr, strrchr(t, '.'));
    ck_assert_int_eq(verify(forged), CHAT_TOKEN_E_SIGNATURE);
    free(forged);
    free(t);
    free(good);
}
END_TEST

START_TEST(test_exp)
{
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1799999999}")),
        CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800000000}")),
        CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800000001}")),
        CHAT_TOKEN_OK);
    ck_assert_int_eq(verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\"}")),
                     CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\",\"exp\":\"1900000000\"}")),
        CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\",\"exp\":null}")),
                     CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800000100.5}")),
        CHAT_TOKEN_OK);
}
END_TEST

START_TEST(test_nbf)
{
    /* beyond the 60 s leeway */
    ck_assert_int_eq(verify_free(signed_claims(
                         "{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800009999,\"nbf\":1800000061}")),
                     CHAT_TOKEN_E_NOT_YET);
    /* within it */
    ck_assert_int_eq(verify_free(signed_claims(
                         "{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800009999,\"nbf\":1800000060}")),
                     CHAT_TOKEN_OK);
    ck_assert_int_eq(verify_free(signed_claims(
                         "{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800009999,\"nbf\":1700000000}")),
                     CHAT_TOKEN_OK);
    ck_assert_int_eq(verify_free(signed_claims(
                         "{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800009999,\"nbf\":\"soon\"}")),
                     CHAT_TOKEN_E_CLAIMS);
}
END_TEST

START_TEST(test_oversize)
{
    char *big = malloc(CHAT_TOKEN_MAX + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, 'A', CHAT_TOKEN_MAX + 1);
    big[CHAT_TOKEN_MAX + 1] = '\0';
    ck_assert_int_eq(verify(big), CHAT_TOKEN_E_TOO_LONG);
    free(big);

    /* a validly signed token just over the limit is still refused */
    char payload[9000];
    int n = snprintf(payload, sizeof(payload),
                     "{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800000100,\"pad\":\"");
    memset(payload + n, 'p', 6200);
    strcpy(payload + n + 6200, "\"}");
    char *tok = signed_claims(payload);
    ck_assert_uint_gt(strlen(tok), CHAT_TOKEN_MAX);
    ck_assert_int_eq(verify_free(tok), CHAT_TOKEN_E_TOO_LONG);
}
END_TEST

START_TEST(test_claims)
{
    ck_assert_int_eq(verify_free(signed_claims("{\"name\":\"A\",\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(verify_free(signed_claims("{\"sub\":\"u1\",\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u 1\",\"name\":\"A\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1/../x\",\"name\":\"A\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(verify_free(signed_claims("{\"sub\":\"\",\"name\":\"A\",\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(verify_free(signed_claims("{\"sub\":42,\"name\":\"A\",\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(
        verify_free(signed_claims(
            "{\"sub\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            "\",\"name\":\"A\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\"A\\u0007\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(
        verify_free(signed_claims("{\"sub\":\"u1\",\"name\":\" A\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(verify_free(signed_claims(
                         "{\"sub\":\"u1\",\"name\":\"A\",\"exp\":1800000100,\"avatar\":5}")),
                     CHAT_TOKEN_E_CLAIMS);
}
END_TEST

START_TEST(test_garbage)
{
    ck_assert_int_eq(verify(NULL), CHAT_TOKEN_E_MISSING);
    ck_assert_int_eq(verify(""), CHAT_TOKEN_E_MISSING);
    ck_assert_int_eq(verify("garbage"), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(verify("a.b"), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(verify("a.b.c.d"), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(verify("..."), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(verify(".."), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(verify("!!!.???.***"), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(verify("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln"), CHAT_TOKEN_E_MALFORMED);
    /* padded base64 is not base64url */
    ck_assert_int_eq(verify("eyJhbGciOiJIUzI1NiJ9==.e30.c2ln"), CHAT_TOKEN_E_MALFORMED);
    /* header is JSON but not an object */
    ck_assert_int_eq(verify_free(craft("[1]", GOOD_CLAIMS, true, NULL)), CHAT_TOKEN_E_MALFORMED);
    ck_assert_int_eq(
        verify_free(craft("{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_CLAIMS, true, NULL)),
        CHAT_TOKEN_E_MALFORMED);
    ck_assert_str_ne(chat_token_strerror(CHAT_TOKEN_E_ALG), "");
    ck_assert_str_eq(chat_token_strerror(CHAT_TOKEN_OK), "ok");
    ck_assert_str_ne(chat_token_strerror(12345), "");
}
END_TEST

START_TEST(test_random_hex)
{
    char a[65], b[65];
    ck_assert_int_eq(chat_random_hex(a, 32), 0);
    ck_assert_int_eq(chat_random_hex(b, 32), 0);
    ck_assert_uint_eq(strlen(a), 64);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
    ck_assert_str_ne(a, b);
    char big[2 * 200 + 1];
    ck_assert_int_eq(chat_random_hex(big, 200), 0);
    ck_assert_uint_eq(strlen(big), 400);
    char empty[1];
    ck_assert_int_eq(chat_random_hex(empty, 0), 0);
    ck_assert_str_eq(empty, "");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Public keys (RS256 / ES256) through a verifier                             */

#define ISS "https://idp.example"
#define AUD "chatgw"
#define IDP_CLAIMS                                                                                 \
    "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"idp-7\",\"name\":\"Grace\","               \
    "\"exp\":1800000100}"
#define RS_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES_HEADER "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

/* A verifier over the key file key_pub (NULL: none), secret SECRET when
 * with_secret, issuer ISS and audience AUD when checked. */
static struct chat_token_verifier *verifier(const char *key_pub, bool with_secret, bool checked,
                                            const char *claim_id, const char *claim_name)
{
    size_t len = 0;
    char *pem = key_pub ? test_key_read(key_pub, &len) : NULL;
    struct chat_token_verifier_options o = {
        .secret = with_secret ? SECRET : NULL,
        .secret_len = with_secret ? strlen(SECRET) : 0,
        .public_key_pem = pem,
        .public_key_len = len,
        .issuer = checked ? ISS : NULL,
        .audience = checked ? AUD : NULL,
        .claim_id = claim_id,
        .claim_name = claim_name,
    };
    struct chat_token_verifier *v = NULL;
    char err[256] = "";
    ck_assert_msg(chat_token_verifier_new(&o, &v, err, sizeof(err)) == 0, "verifier: %s", err);
    ck_assert_ptr_nonnull(v);
    free(pem);
    return v;
}

static int verify_v(const struct chat_token_verifier *v, char *tok)
{
    struct chat_identity who;
    int rc = chat_token_verify_with(v, tok, NOW, &who);
    if (rc == CHAT_TOKEN_OK)
        chat_identity_deinit(&who);
    else
        ck_assert_ptr_null(who.avatar);
    free(tok);
    return rc;
}

/* libjwt's RS256 / ES256 signer, for interoperability with another
 * implementation of both encodings. */
static char *libjwt_pkey_token(jwt_alg_t alg, const char *key_name, const char *claims)
{
    size_t len;
    char *pem = test_key_read(key_name, &len);
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, alg, (const unsigned char *)pem, (int)len), 0);
    char *tok = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(tok);
    jwt_free(jwt);
    free(pem);
    return tok;
}

START_TEST(test_rs256_valid)
{
    struct chat_token_verifier *v = verifier("rsa.pub", false, true, NULL, NULL);
    struct chat_identity who;
    char *tok = test_sign_pkey("rsa.key", RS_HEADER,
                               "{\"iss\":\"" ISS "\",\"aud\":[\"other\",\"" AUD "\"],"
                               "\"sub\":\"idp-7\",\"name\":\"Grace\",\"exp\":1800000100,"
                               "\"role\":\"admin\",\"avatar\":\"https://idp.example/g.png\"}");
    ck_assert_int_eq(chat_token_verify_with(v, tok, NOW, &who), CHAT_TOKEN_OK);
    ck_assert_str_eq(who.id, "idp-7");
    ck_assert_str_eq(who.name, "Grace");
    ck_assert_str_eq(who.avatar, "https://idp.example/g.png");
    ck_assert(who.admin);
    ck_assert_int_eq(who.exp, 1800000100);
    chat_identity_deinit(&who);
    free(tok);

    ck_assert_int_eq(verify_v(v, libjwt_pkey_token(JWT_ALG_RS256, "rsa.key", IDP_CLAIMS)),
                     CHAT_TOKEN_OK);
    /* typ is not ours to judge (RFC 9068 access tokens say at+jwt) */
    ck_assert_int_eq(verify_v(v, test_sign_pkey("rsa.key", "{\"alg\":\"RS256\",\"typ\":\"at+jwt\"}",
                                                IDP_CLAIMS)),
                     CHAT_TOKEN_OK);
    chat_token_verifier_free(v);

    /* the key as a certificate */
    v = verifier("rsa.crt", false, true, NULL, NULL);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("rsa.key", RS_HEADER, IDP_CLAIMS)), CHAT_TOKEN_OK);
    chat_token_verifier_free(v);
}
END_TEST

START_TEST(test_es256_valid)
{
    struct chat_token_verifier *v = verifier("ec.pub", false, true, NULL, NULL);
    for (int i = 0; i < 8; i++) /* r and s with and without leading zero bytes */
        ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER, IDP_CLAIMS)),
                         CHAT_TOKEN_OK);
    ck_assert_int_eq(verify_v(v, libjwt_pkey_token(JWT_ALG_ES256, "ec.key", IDP_CLAIMS)),
                     CHAT_TOKEN_OK);
    chat_token_verifier_free(v);
}
END_TEST

START_TEST(test_pkey_bad_signature)
{
    struct chat_token_verifier *rs = verifier("rsa.pub", false, false, NULL, NULL);
    struct chat_token_verifier *es = verifier("ec.pub", false, false, NULL, NULL);

    /* payload swapped under a valid signature */
    const char *keys[] = {"rsa.key", "ec.key"};
    const char *headers[] = {RS_HEADER, ES_HEADER};
    struct chat_token_verifier *vs[] = {rs, es};
    for (int k = 0; k < 2; k++) {
        char *a = test_sign_pkey(keys[k], headers[k], IDP_CLAIMS);
        char *b = test_sign_pkey(keys[k], headers[k],
                                 "{\"sub\":\"root\",\"name\":\"Grace\",\"exp\":1800000100,"
                                 "\"role\":\"admin\"}");
        char *forged = malloc(strlen(a) + strlen(b));
        ck_assert_ptr_nonnull(forged);
        size_t head = (size_t)(strrchr(b, '.') - b);
        memcpy(forged, b, head);
        strcpy(forged + head, strrchr(a, '.'));
        ck_assert_int_eq(verify_v(vs[k], forged), CHAT_TOKEN_E_SIGNATURE);
        /* one flipped character */
        size_t n = strlen(a);
        a[n - 3] = a[n - 3] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(verify_v(vs[k], a), CHAT_TOKEN_E_SIGNATURE);
        free(b);
    }
    /* an RSA signature from another (smaller) key */
    char *other = test_sign_pkey("rsa1024.key", RS_HEADER, IDP_CLAIMS);
    ck_assert_int_eq(verify_v(rs, other), CHAT_TOKEN_E_SIGNATURE);
    /* truncated, empty and oversized signatures */
    char *t = test_sign_pkey("ec.key", ES_HEADER, IDP_CLAIMS);
    t[strlen(t) - 4] = '\0';
    ck_assert_int_eq(verify_v(es, t), CHAT_TOKEN_E_SIGNATURE);
    t = test_sign_pkey("ec.key", ES_HEADER, IDP_CLAIMS);
    strrchr(t, '.')[1] = '\0';
    ck_assert_int_eq(verify_v(es, t), CHAT_TOKEN_E_SIGNATURE);
    t = test_sign_pkey("rsa.key", RS_HEADER, IDP_CLAIMS);
    char *longer = malloc(strlen(t) + 8);
    ck_assert_ptr_nonnull(longer);
    strcpy(longer, t);
    strcat(longer, "AAAA");
    free(t);
    ck_assert_int_eq(verify_v(rs, longer), CHAT_TOKEN_E_SIGNATURE);
    /* a P-384 signature where P-256 is pinned */
    ck_assert_int_eq(verify_v(es, test_sign_pkey("ec384.key", ES_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_SIGNATURE);
    chat_token_verifier_free(rs);
    chat_token_verifier_free(es);
}
END_TEST

START_TEST(test_pkey_wrong_alg)
{
    struct chat_token_verifier *rs = verifier("rsa.pub", false, false, NULL, NULL);
    struct chat_token_verifier *es = verifier("ec.pub", false, false, NULL, NULL);
    /* RS256 token with an EC key and vice versa */
    ck_assert_int_eq(verify_v(es, test_sign_pkey("rsa.key", RS_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(rs, test_sign_pkey("ec.key", ES_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    /* the header lies about the key */
    ck_assert_int_eq(verify_v(es, test_sign_pkey("ec.key", RS_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(rs, test_sign_pkey("rsa.key", ES_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    /* other algorithms of the same families */
    ck_assert_int_eq(verify_v(rs, libjwt_pkey_token(JWT_ALG_RS512, "rsa.key", IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(rs, test_sign_pkey("rsa.key", "{\"alg\":\"PS256\"}", IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(es, test_sign_pkey("ec384.key", "{\"alg\":\"ES384\"}", IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(rs, test_sign_pkey("rsa.key", "{\"alg\":\"rs256\"}", IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    /* our own HS256 tokens need the secret, and the secret verifier no key */
    ck_assert_int_eq(verify_v(rs, signed_claims(GOOD_CLAIMS)), CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_free(test_sign_pkey("rsa.key", RS_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    chat_token_verifier_free(rs);
    chat_token_verifier_free(es);
}
END_TEST

/* An HS256 token whose HMAC key is the text of the public key file. */
static char *hs256_with_public_pem(const char *key_pub, const char *claims)
{
    size_t len;
    char *pem = test_key_read(key_pub, &len);
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)pem, (int)len), 0);
    char *tok = jwt_encode_str(jwt);
    ck_assert_ptr_nonnull(tok);
    jwt_free(jwt);
    free(pem);
    return tok;
}

START_TEST(test_alg_confusion)
{
    const char *pubs[] = {"rsa.pub", "ec.pub"};
    for (int k = 0; k < 2; k++) {
        /* key only: HS256 is not accepted at all */
        struct chat_token_verifier *v = verifier(pubs[k], false, false, NULL, NULL);
        ck_assert_int_eq(verify_v(v, hs256_with_public_pem(pubs[k], IDP_CLAIMS)), CHAT_TOKEN_E_ALG);
        chat_token_verifier_free(v);
        /* key and secret: HS256 is checked with the secret, never the key */
        v = verifier(pubs[k], true, false, NULL, NULL);
        ck_assert_int_eq(verify_v(v, hs256_with_public_pem(pubs[k], IDP_CLAIMS)),
                         CHAT_TOKEN_E_SIGNATURE);
        ck_assert_int_eq(verify_v(v, signed_claims(GOOD_CLAIMS)), CHAT_TOKEN_OK);
        chat_token_verifier_free(v);
    }
}
END_TEST

START_TEST(test_pkey_alg_none)
{
    struct chat_token_verifier *v = verifier("rsa.pub", true, false, NULL, NULL);
    ck_assert_int_eq(verify_v(v, libjwt_token(JWT_ALG_NONE, IDP_CLAIMS)), CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(v, craft("{\"alg\":\"none\"}", IDP_CLAIMS, false, "")),
                     CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(v, craft("{\"typ\":\"JWT\"}", IDP_CLAIMS, false, "abc")),
                     CHAT_TOKEN_E_ALG);
    /* none, signed by the key anyway */
    ck_assert_int_eq(verify_v(v, test_sign_pkey("rsa.key", "{\"alg\":\"none\"}", IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    chat_token_verifier_free(v);
}
END_TEST

START_TEST(test_pkey_issuer_audience)
{
    struct chat_token_verifier *v = verifier("ec.pub", true, true, NULL, NULL);
#define IDP(extra) "{\"sub\":\"idp-7\",\"name\":\"Grace\",\"exp\":1800000100" extra "}"
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                IDP(",\"iss\":\"https://evil.example\","
                                                    "\"aud\":\"" AUD "\""))),
                     CHAT_TOKEN_E_ISSUER);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER, IDP(",\"aud\":\"" AUD "\""))),
                     CHAT_TOKEN_E_ISSUER);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                IDP(",\"iss\":[\"" ISS "\"],\"aud\":\"" AUD "\""))),
                     CHAT_TOKEN_E_ISSUER);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                IDP(",\"iss\":\"" ISS "\",\"aud\":\"other\""))),
                     CHAT_TOKEN_E_AUDIENCE);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER, IDP(",\"iss\":\"" ISS "\""))),
                     CHAT_TOKEN_E_AUDIENCE);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                IDP(",\"iss\":\"" ISS "\",\"aud\":[\"a\",\"b\"]"))),
                     CHAT_TOKEN_E_AUDIENCE);
    ck_assert_int_eq(
        verify_v(v, test_sign_pkey("ec.key", ES_HEADER, IDP(",\"iss\":\"" ISS "\",\"aud\":[]"))),
        CHAT_TOKEN_E_AUDIENCE);
    ck_assert_int_eq(
        verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                   IDP(",\"iss\":\"" ISS "\",\"aud\":[1,\"" AUD "\"]"))),
        CHAT_TOKEN_OK);
    /* prefix is not equality */
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                IDP(",\"iss\":\"" ISS "/\",\"aud\":\"" AUD "\""))),
                     CHAT_TOKEN_E_ISSUER);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                IDP(",\"iss\":\"" ISS "\",\"aud\":\"chat\""))),
                     CHAT_TOKEN_E_AUDIENCE);
    /* our own HS256 tokens carry neither and are ours: accepted as before */
    ck_assert_int_eq(verify_v(v, signed_claims(GOOD_CLAIMS)), CHAT_TOKEN_OK);
    chat_token_verifier_free(v);
    ck_assert_str_ne(chat_token_strerror(CHAT_TOKEN_E_ISSUER), "token error");
    ck_assert_str_ne(chat_token_strerror(CHAT_TOKEN_E_AUDIENCE), "token error");
}
END_TEST

START_TEST(test_pkey_exp_nbf)
{
    struct chat_token_verifier *v = verifier("rsa.pub", false, false, NULL, NULL);
    ck_assert_int_eq(
        verify_v(v, test_sign_pkey("rsa.key", RS_HEADER,
                                   "{\"sub\":\"a\",\"name\":\"A\",\"exp\":1800000000}")),
        CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(
        verify_v(v, test_sign_pkey("rsa.key", RS_HEADER, "{\"sub\":\"a\",\"name\":\"A\"}")),
        CHAT_TOKEN_E_EXPIRED);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("rsa.key", RS_HEADER,
                                                "{\"sub\":\"a\",\"name\":\"A\",\"exp\":1800009999,"
                                                "\"nbf\":1800000061}")),
                     CHAT_TOKEN_E_NOT_YET);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("rsa.key", RS_HEADER,
                                                "{\"sub\":\"a\",\"name\":\"A\",\"exp\":1800009999,"
                                                "\"nbf\":1800000060}")),
                     CHAT_TOKEN_OK);
    chat_token_verifier_free(v);
}
END_TEST

START_TEST(test_pkey_claims)
{
    /* default claim names */
    struct chat_token_verifier *v = verifier("ec.pub", false, false, NULL, NULL);
    ck_assert_int_eq(
        verify_v(v, test_sign_pkey("ec.key", ES_HEADER, "{\"name\":\"Grace\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                "{\"sub\":\"a|b\",\"name\":\"Grace\","
                                                "\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(
        verify_v(v, test_sign_pkey("ec.key", ES_HEADER, "{\"sub\":\"a\",\"exp\":1800000100}")),
        CHAT_TOKEN_E_CLAIMS);
    chat_token_verifier_free(v);

    /* custom claim names: sub and name no longer count */
    v = verifier("ec.pub", true, false, "uid", "preferred_username");
    struct chat_identity who;
    char *tok = test_sign_pkey("ec.key", ES_HEADER,
                               "{\"sub\":\"ignored\",\"uid\":\"u-42\",\"name\":\"Ignored\","
                               "\"preferred_username\":\"ada\",\"exp\":1800000100}");
    ck_assert_int_eq(chat_token_verify_with(v, tok, NOW, &who), CHAT_TOKEN_OK);
    ck_assert_str_eq(who.id, "u-42");
    ck_assert_str_eq(who.name, "ada");
    ck_assert(!who.admin);
    chat_identity_deinit(&who);
    free(tok);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                "{\"sub\":\"s\",\"preferred_username\":\"ada\","
                                                "\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("ec.key", ES_HEADER,
                                                "{\"uid\":\"u\",\"name\":\"ada\","
                                                "\"exp\":1800000100}")),
                     CHAT_TOKEN_E_CLAIMS);
    /* our HS256 tokens keep sub and name */
    tok = signed_claims(GOOD_CLAIMS);
    ck_assert_int_eq(chat_token_verify_with(v, tok, NOW, &who), CHAT_TOKEN_OK);
    ck_assert_str_eq(who.id, "u1");
    ck_assert_str_eq(who.name, "Alice");
    chat_identity_deinit(&who);
    free(tok);
    chat_token_verifier_free(v);
}
END_TEST

static const char *verifier_error(const char *key_file, const char *pem_text)
{
    static char err[256];
    char *pem = key_file ? test_key_read(key_file, NULL) : strdup(pem_text);
    ck_assert_ptr_nonnull(pem);
    struct chat_token_verifier_options o = {.public_key_pem = pem, .public_key_len = strlen(pem)};
    struct chat_token_verifier *v = (struct chat_token_verifier *)&o; /* must be reset */
    err[0] = '\0';
    ck_assert_int_eq(chat_token_verifier_new(&o, &v, err, sizeof(err)), -1);
    ck_assert_ptr_null(v);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(chat_token_key_check(pem, strlen(pem), NULL, 0), -1);
    free(pem);
    return err;
}

START_TEST(test_verifier_new)
{
    ck_assert_ptr_nonnull(strstr(verifier_error("rsa.key", NULL), "private key"));
    ck_assert_ptr_nonnull(strstr(verifier_error(NULL, "not a key"), "no PEM public key"));
    ck_assert_ptr_nonnull(strstr(verifier_error("rsa1024.pub", NULL), "1024 bits"));
    ck_assert_ptr_nonnull(strstr(verifier_error("ec384.pub", NULL), "secp384r1"));
    ck_assert_ptr_nonnull(strstr(verifier_error("ed.pub", NULL), "ED25519"));

    size_t len;
    char *pem = test_key_read("rsa.pub", &len);
    ck_assert_int_eq(chat_token_key_check(pem, len, NULL, 0), CHAT_TOKEN_KEY_RS256);
    free(pem);
    pem = test_key_read("rsa.crt", &len);
    ck_assert_int_eq(chat_token_key_check(pem, len, NULL, 0), CHAT_TOKEN_KEY_RS256);
    free(pem);
    pem = test_key_read("ec.pub", &len);
    ck_assert_int_eq(chat_token_key_check(pem, len, NULL, 0), CHAT_TOKEN_KEY_ES256);

    char err[256];
    struct chat_token_verifier *v = NULL;
    struct chat_token_verifier_options none = {0};
    ck_assert_int_eq(chat_token_verifier_new(&none, &v, err, sizeof(err)), -1);
    ck_assert_int_eq(chat_token_verifier_new(NULL, &v, err, sizeof(err)), -1);
    struct chat_token_verifier_options bad_claim = {
        .public_key_pem = pem, .public_key_len = len, .claim_id = "a b"};
    ck_assert_int_eq(chat_token_verifier_new(&bad_claim, &v, err, sizeof(err)), -1);
    bad_claim.claim_id = "";
    ck_assert_int_eq(chat_token_verifier_new(&bad_claim, &v, err, sizeof(err)), -1);
    struct chat_token_verifier_options empty_iss = {
        .public_key_pem = pem, .public_key_len = len, .issuer = ""};
    ck_assert_int_eq(chat_token_verifier_new(&empty_iss, &v, err, sizeof(err)), -1);
    ck_assert_ptr_null(v);
    free(pem);
    chat_token_verifier_free(NULL);

    /* a secret-only verifier behaves like chat_token_verify */
    v = verifier(NULL, true, false, NULL, NULL);
    ck_assert_int_eq(verify_v(v, signed_claims(GOOD_CLAIMS)), CHAT_TOKEN_OK);
    ck_assert_int_eq(verify_v(v, libjwt_token(JWT_ALG_HS512, GOOD_CLAIMS)), CHAT_TOKEN_E_ALG);
    ck_assert_int_eq(verify_v(v, test_sign_pkey("rsa.key", RS_HEADER, IDP_CLAIMS)),
                     CHAT_TOKEN_E_ALG);
    struct chat_identity who;
    ck_assert_int_eq(chat_token_verify_with(v, NULL, NOW, &who), CHAT_TOKEN_E_MISSING);
    ck_assert_int_eq(chat_token_verify_with(NULL, "a.b.c", NOW, &who), CHAT_TOKEN_E_SIGNATURE);
    chat_token_verifier_free(v);
}
END_TEST

TCase *token_tcase(void)
{
    TCase *tc = tcase_create("token");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_crafted_good);
    tcase_add_test(tc, test_forged_signature);
    tcase_add_test(tc, test_alg_none);
    tcase_add_test(tc, test_alg_other);
    tcase_add_test(tc, test_exp);
    tcase_add_test(tc, test_nbf);
    tcase_add_test(tc, test_oversize);
    tcase_add_test(tc, test_claims);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_random_hex);
    tcase_add_test(tc, test_rs256_valid);
    tcase_add_test(tc, test_es256_valid);
    tcase_add_test(tc, test_pkey_bad_signature);
    tcase_add_test(tc, test_pkey_wrong_alg);
    tcase_add_test(tc, test_alg_confusion);
    tcase_add_test(tc, test_pkey_alg_none);
    tcase_add_test(tc, test_pkey_issuer_audience);
    tcase_add_test(tc, test_pkey_exp_nbf);
    tcase_add_test(tc, test_pkey_claims);
    tcase_add_test(tc, test_verifier_new);
    return tc;
}
