#include <string.h>

#include "http.h"
#include "tests.h"

START_TEST(test_origin_absent)
{
    /* No Origin header: a non-browser client, allowed whatever --origins says. */
    ck_assert(gw_http_origin_allowed(NULL, NULL, "chat.example.com"));
    ck_assert(gw_http_origin_allowed("https://a.example", NULL, "chat.example.com"));
    ck_assert(gw_http_origin_allowed(NULL, NULL, NULL));
}
END_TEST

START_TEST(test_origin_same_host)
{
    const char *const defaults[] = {NULL, ""};
    for (int i = 0; i < 2; i++) {
        const char *o = defaults[i];
        ck_assert(gw_http_origin_allowed(o, "http://chat.example.com", "chat.example.com"));
        ck_assert(gw_http_origin_allowed(o, "https://chat.example.com", "chat.example.com"));
        ck_assert(
            gw_http_origin_allowed(o, "http://chat.example.com:8080", "chat.example.com:8080"));
        ck_assert(gw_http_origin_allowed(o, "http://127.0.0.1:8080", "127.0.0.1:8080"));
        ck_assert(gw_http_origin_allowed(o, "http://Chat.Example.COM", "chat.example.com"));
        ck_assert(!gw_http_origin_allowed(o, "https://evil.example", "chat.example.com"));
        ck_assert(
            !gw_http_origin_allowed(o, "http://chat.example.com:8080", "chat.example.com:9090"));
        ck_assert(
            !gw_http_origin_allowed(o, "http://chat.example.com.evil.example", "chat.example.com"));
        ck_assert(!gw_http_origin_allowed(o, "null", "chat.example.com"));
        ck_assert(!gw_http_origin_allowed(o, "", "chat.example.com"));
        ck_assert(!gw_http_origin_allowed(o, "http://chat.example.com", NULL));
    }
}
END_TEST

START_TEST(test_origin_any)
{
    ck_assert(gw_http_origin_allowed("*", "https://anything.example", "chat.example.com"));
    ck_assert(gw_http_origin_allowed("*", "http://localhost:3000", NULL));
    ck_assert(gw_http_origin_allowed("https://a.example, *", "https://z.example", "h"));
}
END_TEST

START_TEST(test_origin_list)
{
    const char *list = "https://a.example, http://b.example:8080/ ,https://c.example";
    ck_assert(gw_http_origin_allowed(list, "https://a.example", "h"));
    ck_assert(gw_http_origin_allowed(list, "http://b.example:8080", "h"));
    ck_assert(gw_http_origin_allowed(list, "https://c.example", "h"));
    ck_assert(gw_http_origin_allowed(list, "HTTPS://A.EXAMPLE", "h"));
    ck_assert(gw_http_origin_allowed(list, "https://C.Example", "h"));
    ck_assert(!gw_http_origin_allowed(list, "https://d.example", "h"));
    ck_assert(!gw_http_origin_allowed(list, "http://a.example", "h"));
    ck_assert(!gw_http_origin_allowed(list, "https://a.example.evil.example", "h"));
    ck_assert(!gw_http_origin_allowed(list, "https://a.exampl", "h"));
    ck_assert(!gw_http_origin_allowed(list, "http://b.example", "h"));
    ck_assert(!gw_http_origin_allowed(list, "null", "h"));
    /* With a list, being on the same host is not enough. */
    ck_assert(!gw_http_origin_allowed(list, "http://h", "h"));
    ck_assert(gw_http_origin_allowed("https://a.example/", "https://a.example", "h"));
}
END_TEST

/* A request filled by hand: headers point into the caller's arrays. */
static void req_init(struct gw_http_request *req, char *query)
{
    memset(req, 0, sizeof(*req));
    req->path = (char *)"/ws";
    req->query = query;
}

static void req_header(struct gw_http_request *req, char *name, char *value)
{
    req->headers[req->nheaders].name = name;
    req->headers[req->nheaders].value = value;
    req->nheaders++;
}

START_TEST(test_token_bearer_wins)
{
    struct gw_http_request req;
    char q[] = "token=fromquery";
    char n[] = "Authorization", v[] = "Bearer fromheader";
    req_init(&req, q);
    req_header(&req, n, v);
    char out[64];
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "fromheader");
}
END_TEST

START_TEST(test_token_header_case)
{
    struct gw_http_request req;
    char h[] = "Host", hv[] = "x";
    char n[] = "authorization", v[] = "bearer abc.def.ghi";
    req_init(&req, NULL);
    req_header(&req, h, hv);
    req_header(&req, n, v);
    char out[64];
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "abc.def.ghi");
}
END_TEST

START_TEST(test_token_query)
{
    struct gw_http_request req;
    char q[] = "token=a%2Eb%2ec_-";
    req_init(&req, q);
    char out[64];
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "a.b.c_-");

    char q2[] = "room=general&token=xyz.123&since=4";
    req_init(&req, q2);
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "xyz.123");

    char q3[] = "a=1&b=2&token=last";
    req_init(&req, q3);
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "last");

    /* Another scheme in Authorization does not hide the query token. */
    char q4[] = "token=q";
    char n[] = "Authorization", v[] = "Basic dXNlcjpwYXNz";
    req_init(&req, q4);
    req_header(&req, n, v);
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "q");
}
END_TEST

START_TEST(test_token_missing)
{
    struct gw_http_request req;
    char out[64];
    req_init(&req, NULL);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));

    char q[] = "room=general&since=3";
    req_init(&req, q);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));

    char q2[] = "xtoken=abc&tokens=def";
    req_init(&req, q2);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));

    char q3[] = "token=";
    req_init(&req, q3);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));

    char q4[] = "";
    req_init(&req, q4);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));
}
END_TEST

START_TEST(test_token_too_long)
{
    struct gw_http_request req;
    char out[8];
    char q[] = "token=123456789";
    req_init(&req, q);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));

    char n[] = "Authorization", v[] = "Bearer 123456789";
    req_init(&req, NULL);
    req_header(&req, n, v);
    ck_assert(!gw_http_find_token(&req, out, sizeof(out)));

    /* Exactly outlen-1 bytes fits. */
    char q2[] = "token=1234567";
    req_init(&req, q2);
    ck_assert(gw_http_find_token(&req, out, sizeof(out)));
    ck_assert_str_eq(out, "1234567");
}
END_TEST

START_TEST(test_token_bad_escape)
{
    /* A malformed escape at the end must not read past the query. */
    struct gw_http_request req;
    char out[64];
    char q[] = "token=abc%";
    req_init(&req, q);
    if (gw_http_find_token(&req, out, sizeof(out)))
        ck_assert_uint_le(strlen(out), 4);
    char q2[] = "token=abc%4";
    req_init(&req, q2);
    if (gw_http_find_token(&req, out, sizeof(out)))
        ck_assert_uint_le(strlen(out), 5);
}
END_TEST

TCase *http_tcase(void)
{
    TCase *tc = tcase_create("http");
    tcase_add_test(tc, test_origin_absent);
    tcase_add_test(tc, test_origin_same_host);
    tcase_add_test(tc, test_origin_any);
    tcase_add_test(tc, test_origin_list);
    tcase_add_test(tc, test_token_bearer_wins);
    tcase_add_test(tc, test_token_header_case);
    tcase_add_test(tc, test_token_query);
    tcase_add_test(tc, test_token_missing);
    tcase_add_test(tc, test_token_too_long);
    tcase_add_test(tc, test_token_bad_escape);
    return tc;
}
