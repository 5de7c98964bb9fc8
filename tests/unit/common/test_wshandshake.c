#include <string.h>

#include "tests.h"
#include "wshandshake.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static struct chat_ws_request good(void)
{
    struct chat_ws_request r = {
        .is_get = true,
        .http_major = 1,
        .http_minor = 1,
        .upgrade = "websocket",
        .connection = "Upgrade",
        .version = "13",
        .key = RFC_KEY,
    };
    return r;
}

START_TEST(test_rfc_sample)
{
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    chat_ws_accept_for_key(RFC_KEY, accept);
    ck_assert_str_eq(accept, RFC_ACCEPT);

    struct chat_ws_request r = good();
    memset(accept, 'x', sizeof(accept));
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    ck_assert_str_eq(accept, RFC_ACCEPT);
    ck_assert_int_eq(chat_ws_check_request(&r, NULL), CHAT_WS_OK);

    /* whitespace around the key is not part of it */
    r.key = "  " RFC_KEY " ";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    ck_assert_str_eq(accept, RFC_ACCEPT);
}
END_TEST

START_TEST(test_mixed_case)
{
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    struct chat_ws_request r = good();
    r.upgrade = "WebSocket";
    r.connection = "UPGRADE";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    r.upgrade = "wEbSoCkEt";
    r.connection = "upgrade";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    r.http_minor = 2; /* HTTP/1.2 and 2.0 are "at least 1.1" */
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
}
END_TEST

START_TEST(test_connection_list)
{
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    struct chat_ws_request r = good();
    r.connection = "keep-alive, Upgrade";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    r.connection = "Upgrade,keep-alive";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    r.connection = " keep-alive ,\tupgrade\t";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    r.connection = "keep-alive";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_UPGRADE);
    r.connection = "upgrades";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_UPGRADE);
    r.connection = "keep-alive upgrade";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_UPGRADE);
    r.connection = NULL;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_UPGRADE);
    r = good();
    r.upgrade = NULL;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_UPGRADE);
    r.upgrade = "h2c";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_UPGRADE);
    r.upgrade = "h2c, websocket";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);

    ck_assert(chat_http_list_has_token("a, b ,c", "B"));
    ck_assert(chat_http_list_has_token("a,,c", "c"));
    ck_assert(!chat_http_list_has_token("a,,c", ""));
    ck_assert(!chat_http_list_has_token("", "a"));
    ck_assert(!chat_http_list_has_token(NULL, "a"));
    ck_assert(!chat_http_list_has_token("abc", "ab"));
}
END_TEST

START_TEST(test_method_and_http_version)
{
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    struct chat_ws_request r = good();
    r.is_get = false;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_METHOD);
    r = good();
    r.http_minor = 0;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_HTTP_VERSION);
    r.http_major = 0;
    r.http_minor = 9;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_HTTP_VERSION);
    ck_assert_int_eq(chat_ws_check_request(NULL, accept), CHAT_WS_E_METHOD);
}
END_TEST

START_TEST(test_bad_version)
{
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    struct chat_ws_request r = good();
    const char *bad[] = {"8", "12", "14", "", "013", "13.0", "thirteen"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.version = bad[i];
        ck_assert_msg(chat_ws_check_request(&r, accept) == CHAT_WS_E_VERSION, "%s", bad[i]);
    }
    r.version = NULL;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_VERSION);
    r.version = " 13 ";
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
}
END_TEST

START_TEST(test_bad_keys)
{
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    struct chat_ws_request r = good();
    const char *bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",       /* unpadded */
        "dGhlIHNhbXBsZSBub25jZQ=",      /* 23 */
        "dGhlIHNhbXBsZSBub25jZQ===",    /* 25 */
        "dGhlIHNhbXBsZSBub25jZXg=",     /* 17 bytes */
        "dGhlIHNhbXBsZSBub25j",         /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZQ==dGhl", /* trailing data */
        "dGhlIHNhbXBsZSBub2!jZQ==",     /* bad character */
        "dGhlIHNhbXBsZSBub2-jZQ==",     /* base64url is not base64 */
        "dGhlIHNhbXBs ZSBub25jZQ=",     /* inner space */
        "===dGhlIHNhbXBsZSBub25jZ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.key = bad[i];
        ck_assert_msg(chat_ws_check_request(&r, accept) == CHAT_WS_E_KEY, "%s", bad[i]);
    }
    r.key = NULL;
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_E_KEY);
}
END_TEST

START_TEST(test_make_key)
{
    char k1[CHAT_WS_KEY_LEN + 1], k2[CHAT_WS_KEY_LEN + 1];
    ck_assert_int_eq(chat_ws_make_key(k1), 0);
    ck_assert_int_eq(chat_ws_make_key(k2), 0);
    ck_assert_uint_eq(strlen(k1), CHAT_WS_KEY_LEN);
    ck_assert_str_ne(k1, k2);
    struct chat_ws_request r = good();
    r.key = k1;
    char accept[CHAT_WS_ACCEPT_LEN + 1], expect[CHAT_WS_ACCEPT_LEN + 1];
    ck_assert_int_eq(chat_ws_check_request(&r, accept), CHAT_WS_OK);
    chat_ws_accept_for_key(k1, expect);
    ck_assert_str_eq(accept, expect);
    ck_assert_uint_eq(strlen(accept), CHAT_WS_ACCEPT_LEN);
    for (int e = 0; e >= -5; e--)
        ck_assert_str_ne(chat_ws_strerror(e), "");
}
END_TEST

TCase *wshandshake_tcase(void)
{
    TCase *tc = tcase_create("wshandshake");
    tcase_add_test(tc, test_rfc_sample);
    tcase_add_test(tc, test_mixed_case);
    tcase_add_test(tc, test_connection_list);
    tcase_add_test(tc, test_method_and_http_version);
    tcase_add_test(tc, test_bad_version);
    tcase_add_test(tc, test_bad_keys);
    tcase_add_test(tc, test_make_key);
    return tc;
}
