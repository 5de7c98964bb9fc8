/*
 * HTTP surface of one gateway (PROTOCOL.md sections 2 and 3): /healthz,
 * /api/login, /api/me, and the parser limits, over real sockets.
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct h_cluster cl;

static void setup(void)
{
    h_watchdog(55);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
}

static void teardown(void)
{
    h_cluster_stop(&cl);
}

/* GET/POST at gateway 0; returns the status and the parsed JSON body. */
static int api(const char *method, const char *path, const char *headers, const char *body,
               json_t **out)
{
    char *resp = NULL;
    int status = chat_http_request(cl.http_url[0], method, path, headers, body,
                                   body ? strlen(body) : 0, &resp, H_TIMEOUT_MS);

    *out = resp ? json_loads(resp, 0, NULL) : NULL;
    free(resp);
    return status;
}

static void assert_error_code(json_t *j, const char *code)
{
    ck_assert_msg(j != NULL, "error body is not JSON");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     code);
    ck_assert(json_is_string(json_object_get(json_object_get(j, "error"), "message")));
}

static int login_body(const char *body, json_t **out)
{
    return api("POST", "/api/login", NULL, body, out);
}

START_TEST(test_healthz)
{
    json_t *j = NULL;
    char *token = NULL;
    struct tc *t;

    ck_assert_int_eq(api("GET", "/healthz", NULL, NULL, &j), 200);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(j, "node")), "gw1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "redis")), "up");
    ck_assert(json_is_integer(json_object_get(j, "connections")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 0);
    json_decref(j);

    ck_assert_int_eq(h_login(&cl, 0, "healthy", &token, NULL), 200);
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(api("GET", "/healthz", NULL, NULL, &j), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 1);
    json_decref(j);
    tc_free(t);
    free(token);
}
END_TEST

START_TEST(test_login_ok)
{
    json_t *j = NULL, *user;
    const char *id, *token;

    ck_assert_int_eq(login_body("{\"nickname\":\"alice\",\"avatar\":\"https://a/x.png\"}", &j),
                     200);
    ck_assert_ptr_nonnull(j);
    token = json_string_value(json_object_get(j, "token"));
    ck_assert_ptr_nonnull(token);
    ck_assert_int_eq((int)strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_."),
                     (int)strlen(token));
    user = json_object_get(j, "user");
    id = json_string_value(json_object_get(user, "id"));
    ck_assert_ptr_nonnull(id);
    ck_assert_int_ge((int)strlen(id), 1);
    ck_assert_int_le((int)strlen(id), 64);
    ck_assert_int_eq((int)strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_-"),
                     (int)strlen(id));
    ck_assert_str_eq(json_string_value(json_object_get(user, "name")), "alice");
    ck_assert_str_eq(json_string_value(json_object_get(user, "avatar")), "https://a/x.png");
    json_decref(j);

    /* Two logins get two different ids. */
    {
        char *id1 = NULL, *id2 = NULL;

        ck_assert_int_eq(h_login(&cl, 0, "dave", NULL, &id1), 200);
        ck_assert_int_eq(h_login(&cl, 0, "erin", NULL, &id2), 200);
        ck_assert_str_ne(id1, id2);
        free(id1);
        free(id2);
    }
}
END_TEST

START_TEST(test_login_bad_nicknames)
{
    static const char *bad[] = {
        "{\"nickname\":\"\"}",
        "{\"nickname\":\" alice\"}",
        "{\"nickname\":\"alice \"}",
        "{\"nickname\":\"a\\u0001b\"}",
        "{\"nickname\":\"a\\nb\"}",
        "{\"nickname\":\"a\\u007fb\"}",
        "{\"nickname\":42}",
        "{\"avatar\":\"x\"}",
        "{\"nickname\":\"x\",\"avatar\":7}",
        "[\"nickname\"]",
        "not json",
        "",
    };
    char nick33[33 * 2 + 1] = "", nick32[32 * 2 + 1] = "", body[256];
    json_t *j = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int status = login_body(bad[i], &j);

        ck_assert_msg(status == 400, "body %s: status %d, want 400", bad[i], status);
        assert_error_code(j, "bad_request");
        json_decref(j);
    }
    /* Limits count code points: 32 two-byte characters pass, 33 do not. */
    for (int i = 0; i < 33; i++)
        strcat(nick33, "\xc3\xa9");
    memcpy(nick32, nick33, 64);
    nick32[64] = '\0';
    snprintf(body, sizeof(body), "{\"nickname\":\"%s\"}", nick33);
    ck_assert_int_eq(login_body(body, &j), 400);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"nickname\":\"%s\"}", nick32);
    ck_assert_int_eq(login_body(body, &j), 200);
    json_decref(j);
    /* Emoji and inner spaces are fine. */
    ck_assert_int_eq(login_body("{\"nickname\":\"J\xc3\xa9r\xc3\xb4me \xf0\x9f\x98\x80\"}", &j),
                     200);
    json_decref(j);
    /* An avatar over 2048 characters is refused. */
    {
        char *big = malloc(2100 + 64);

        ck_assert_ptr_nonnull(big);
        strcpy(big, "{\"nickname\":\"pic\",\"avatar\":\"");
        memset(big + strlen(big), 'a', 2049);
        strcpy(big + strlen("{\"nickname\":\"pic\",\"avatar\":\"") + 2049, "\"}");
        ck_assert_int_eq(login_body(big, &j), 400);
        json_decref(j);
        free(big);
    }
}
END_TEST

START_TEST(test_login_conflict_online)
{
    char *token = NULL, *token2 = NULL;
    json_t *j = NULL;
    struct tc *t;
    int status = 0;

    ck_assert_int_eq(h_login(&cl, 0, "Bob", &token, NULL), 200);
    /* Not online yet: the same nickname can be taken again. */
    ck_assert_int_eq(h_login(&cl, 0, "Bob", &token2, NULL), 200);
    free(token2);
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(login_body("{\"nickname\":\"Bob\"}", &j), 409);
    assert_error_code(j, "conflict");
    json_decref(j);
    ck_assert_int_eq(login_body("{\"nickname\":\"bob\"}", &j), 409);
    json_decref(j);
    ck_assert_int_eq(login_body("{\"nickname\":\"BOB\"}", &j), 409);
    json_decref(j);
    ck_assert_int_eq(login_body("{\"nickname\":\"bobby\"}", &j), 200);
    json_decref(j);

    /* Once its holder is gone, the nickname is free again. */
    chat_client_close(t->c, 1000, NULL);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1000);
    tc_free(t);
    for (int i = 0; i < 50 && status != 200; i++) {
        status = login_body("{\"nickname\":\"bob\"}", &j);
        json_decref(j);
        if (status != 200)
            usleep(100000);
    }
    ck_assert_int_eq(status, 200);
    free(token);
}
END_TEST

START_TEST(test_me)
{
    char *token = NULL, *id = NULL, hdr[9000];
    json_t *j = NULL;

    ck_assert_int_eq(h_login(&cl, 0, "meme", &token, &id), 200);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    ck_assert_int_eq(api("GET", "/api/me", hdr, NULL, &j), 200);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "user"), "id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "user"), "name")),
                     "meme");
    json_decref(j);

    ck_assert_int_eq(api("GET", "/api/me", NULL, NULL, &j), 401);
    assert_error_code(j, "unauthorized");
    json_decref(j);
    ck_assert_int_eq(api("GET", "/api/me", "Authorization: Bearer nonsense\r\n", NULL, &j), 401);
    json_decref(j);
    /* Tampered signature. */
    token[strlen(token) - 2] = token[strlen(token) - 2] == 'A' ? 'B' : 'A';
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    ck_assert_int_eq(api("GET", "/api/me", hdr, NULL, &j), 401);
    json_decref(j);
    free(token);
    free(id);
}
END_TEST

START_TEST(test_not_found)
{
    json_t *j = NULL;

    ck_assert_int_eq(api("GET", "/api/nothing-here", NULL, NULL, &j), 404);
    assert_error_code(j, "not_found");
    json_decref(j);
}
END_TEST

START_TEST(test_bad_http_version)
{
    static const char req[] = "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n";
    char *resp = NULL;

    ck_assert_int_eq(h_raw(&cl, 0, req, sizeof(req) - 1, &resp), 400);
    free(resp);
    ck_assert_int_eq(h_raw(&cl, 0, "garbage\r\n\r\n", 11, &resp), 400);
    free(resp);
}
END_TEST

START_TEST(test_header_too_large)
{
    size_t n = 20 * 1024;
    char *req = malloc(n + 128), *resp = NULL;
    json_t *j;
    size_t len;

    ck_assert_ptr_nonnull(req);
    len = (size_t)sprintf(req, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + len, 'a', n);
    len += n;
    memcpy(req + len, "\r\n\r\n", 4);
    len += 4;
    ck_assert_int_eq(h_raw(&cl, 0, req, len, &resp), 431);
    j = h_resp_json(resp);
    assert_error_code(j, "too_large");
    json_decref(j);
    free(resp);
    free(req);
}
END_TEST

START_TEST(test_body_too_large)
{
    size_t n = 70 * 1024;
    char *req = malloc(n + 256), *resp = NULL;
    size_t len;
    int status;

    ck_assert_ptr_nonnull(req);
    len = (size_t)sprintf(req,
                          "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n{\"nickname\":\"",
                          n);
    memset(req + len, 'a', n - 15);
    len += n - 15;
    memcpy(req + len, "\"}", 2);
    len += 2;
    status = h_raw(&cl, 0, req, len, &resp);
    ck_assert_msg(status == 413, "status %d, want 413", status);
    free(resp);
    free(req);
}
END_TEST

START_TEST(test_header_names_case_insensitive)
{
    char *token = NULL, req[9500], *resp = NULL;
    int n;

    ck_assert_int_eq(h_login(&cl, 0, "casey", &token, NULL), 200);
    n = snprintf(req, sizeof(req),
                 "GET /api/me HTTP/1.1\r\nhost: x\r\nAUTHORIZATION: Bearer %s\r\n\r\n", token);
    ck_assert_int_eq(h_raw(&cl, 0, req, (size_t)n, &resp), 200);
    free(resp);
    free(token);
}
END_TEST

TCase *http_tcase(void)
{
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_healthz);
    tcase_add_test(tc, test_login_ok);
    tcase_add_test(tc, test_login_bad_nicknames);
    tcase_add_test(tc, test_login_conflict_online);
    tcase_add_test(tc, test_me);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_bad_http_version);
    tcase_add_test(tc, test_header_too_large);
    tcase_add_test(tc, test_body_too_large);
    tcase_add_test(tc, test_header_names_case_insensitive);
    return tc;
}
