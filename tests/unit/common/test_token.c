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
    return tc;
}
