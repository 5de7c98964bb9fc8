/*
 * The WebSocket upgrade and the connection-level rules (PROTOCOL.md sections
 * 3 and 4): token and Origin checks, welcome, close codes 1003/1007/1009,
 * ping/pong, request ids, bad requests that keep the connection open.
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct h_cluster cl;

static void setup(void)
{
    h_watchdog(55);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
}

static void teardown(void)
{
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

static long long wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Logs in as nick and connects to gateway i with the token in the query. */
static struct tc *connect_as(int i, const char *nick, char **id_out)
{
    char *token = NULL, url[9000];
    struct tc *t;

    ck_assert_int_eq(h_login(&cl, i, nick, &token, id_out), 200);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[i], token);
    t = tc_connect(cl.base, url, NULL, NULL, NULL);
    free(token);
    ck_assert_ptr_nonnull(t);
    return t;
}

static int upgrade_status(int i, const char *token, const char *origin)
{
    int status = -1;
    struct tc *t = tc_connect(cl.base, cl.ws_url[i], token, origin, &status);

    tc_free(t);
    return status;
}

static void check_welcome(json_t *w, const char *id, const char *name, const char *node)
{
    json_t *user, *rooms, *room;
    size_t i;
    int found = 0;

    ck_assert_ptr_nonnull(w);
    ck_assert_str_eq(json_string_value(json_object_get(w, "type")), "welcome");
    user = json_object_get(w, "user");
    ck_assert_str_eq(json_string_value(json_object_get(user, "id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(user, "name")), name);
    ck_assert_ptr_nonnull(json_object_get(user, "avatar"));
    ck_assert_str_eq(json_string_value(json_object_get(w, "node")), node);
    ck_assert_int_eq(json_integer_value(json_object_get(w, "history_max")), 200);
    rooms = json_object_get(w, "rooms");
    ck_assert(json_is_array(rooms));
    json_array_foreach(rooms, i, room)
    {
        const char *name_ = json_string_value(json_object_get(room, "name"));

        ck_assert_ptr_nonnull(name_);
        ck_assert(json_is_string(json_object_get(room, "topic")));
        ck_assert(json_is_integer(json_object_get(room, "members")));
        if (!strcmp(name_, "general") || !strcmp(name_, "random") || !strcmp(name_, "tech"))
            found++;
    }
    ck_assert_int_eq(found, 3);
}

START_TEST(test_welcome_query_token)
{
    char *id = NULL;
    struct tc *t = connect_as(0, "wendy", &id);
    json_t *w = tc_next(t, H_TIMEOUT_MS);

    /* welcome is the first frame. */
    check_welcome(w, id, "wendy", "gw1");
    json_decref(w);
    tc_free(t);
    free(id);
}
END_TEST

START_TEST(test_welcome_bearer)
{
    char *token = NULL, *id = NULL;
    struct tc *t;
    json_t *w;

    ck_assert_int_eq(h_login(&cl, 0, "bearer", &token, &id), 200);
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    w = tc_next(t, H_TIMEOUT_MS);
    check_welcome(w, id, "bearer", "gw1");
    json_decref(w);
    tc_free(t);
    free(token);
    free(id);
}
END_TEST

START_TEST(test_handmade_token)
{
    char claims[256], *jwt;
    struct tc *t;
    json_t *w;

    /* A token we sign ourselves with the shared secret is accepted, so the
     * rejections below are about the defect each one carries. */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u_hand-1\",\"name\":\"Hand\",\"exp\":%lld}",
             wall_ms() / 1000 + 600);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    t = tc_connect(cl.base, cl.ws_url[0], jwt, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    w = tc_next(t, H_TIMEOUT_MS);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(w, "user"), "id")),
                     "u_hand-1");
    json_decref(w);
    tc_free(t);
    free(jwt);
}
END_TEST

START_TEST(test_unauthorized)
{
    long long now = wall_ms() / 1000;
    char claims[256], *jwt, *resp = NULL, req[1024];
    json_t *j;
    int n;

    ck_assert_int_eq(upgrade_status(0, NULL, NULL), 401);
    ck_assert_int_eq(upgrade_status(0, "garbage", NULL), 401);
    ck_assert_int_eq(upgrade_status(0, "a.b.c", NULL), 401);

    /* expired */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"name\":\"Old\",\"exp\":%lld}", now - 10);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);
    /* no exp */
    jwt = h_jwt(H_JWT_SECRET, "HS256", "{\"sub\":\"u1\",\"name\":\"NoExp\"}");
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);
    /* nbf beyond the 60 s leeway */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"name\":\"Soon\",\"exp\":%lld,\"nbf\":%lld}",
             now + 3600, now + 600);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);
    /* alg none, other secret */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u1\",\"name\":\"None\",\"exp\":%lld}", now + 600);
    jwt = h_jwt(H_JWT_SECRET, "none", claims);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);
    jwt = h_jwt("another-secret-another-secret-another-secret", "HS256", claims);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);
    /* bad user id in sub */
    snprintf(claims, sizeof(claims), "{\"sub\":\"u 1/..\",\"name\":\"Bad\",\"exp\":%lld}",
             now + 600);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);

    /* The refusal is a JSON error and no upgrade. */
    n = snprintf(req, sizeof(req),
                 "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n");
    ck_assert_int_eq(h_raw(&cl, 0, req, (size_t)n, &resp), 401);
    j = h_resp_json(resp);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "unauthorized");
    json_decref(j);
    free(resp);
}
END_TEST

START_TEST(test_token_too_long)
{
    char *claims = malloc(9000), *jwt;
    int n;

    ck_assert_ptr_nonnull(claims);
    n = sprintf(claims, "{\"sub\":\"u1\",\"name\":\"Long\",\"exp\":%lld,\"pad\":\"",
                wall_ms() / 1000 + 600);
    memset(claims + n, 'p', 7000);
    strcpy(claims + n + 7000, "\"}");
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_int_gt((int)strlen(jwt), 8192);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 401);
    free(jwt);
    free(claims);
}
END_TEST

START_TEST(test_origin)
{
    char *token = NULL, same[128];
    int i;

    ck_assert_int_eq(h_login(&cl, 0, "origin", &token, NULL), 200);
    /* Default: same host as the request. */
    snprintf(same, sizeof(same), "http://127.0.0.1:%d", cl.gw[0].port);
    ck_assert_int_eq(upgrade_status(0, token, same), 101);
    ck_assert_int_eq(upgrade_status(0, token, NULL), 101);
    ck_assert_int_eq(upgrade_status(0, token, "http://evil.example"), 403);

    /* An explicit list. */
    {
        const char *args[] = {"--origins", "http://good.example,https://also.example", NULL};

        i = h_cluster_add_gateway(&cl, args);
        ck_assert_int_eq(i, 1);
    }
    ck_assert_int_eq(upgrade_status(i, token, "http://good.example"), 101);
    ck_assert_int_eq(upgrade_status(i, token, "https://also.example"), 101);
    ck_assert_int_eq(upgrade_status(i, token, "http://evil.example"), 403);
    ck_assert_int_eq(upgrade_status(i, token, NULL), 101);
    free(token);
}
END_TEST

START_TEST(test_binary_closes_1003)
{
    struct tc *t = connect_as(0, "binny", NULL);

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(chat_client_send_frame(t->c, 2, "\x00\x01\x02", 3), 0);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1003);
    tc_free(t);
}
END_TEST

START_TEST(test_invalid_utf8_closes_1007)
{
    struct tc *t = connect_as(0, "utfy", NULL);
    static const char bad[] = "{\"type\":\"ping\",\"x\":\"\xc3\x28\"}";

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(chat_client_send_frame(t->c, 1, bad, sizeof(bad) - 1), 0);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1007);
    tc_free(t);
}
END_TEST

START_TEST(test_too_big_closes_1009)
{
    const char *args[] = {"--max-message", "1024", NULL};
    char *msg = malloc(4096);
    size_t len;
    struct tc *t;
    json_t *j;
    int i = h_cluster_add_gateway(&cl, args);

    ck_assert_int_eq(i, 1);
    ck_assert_ptr_nonnull(msg);
    t = connect_as(i, "biggie", NULL);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    /* Just under the limit is fine. */
    strcpy(msg, "{\"type\":\"ping\",\"id\":\"small\",\"pad\":\"");
    len = strlen(msg);
    memset(msg + len, 'x', 900);
    strcpy(msg + len + 900, "\"}");
    ck_assert_int_lt((int)strlen(msg), 1024);
    ck_assert_int_eq(tc_send(t, msg), 0);
    j = tc_next(t, H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    ck_assert(chat_client_is_open(t->c));
    /* Over it closes with 1009. */
    strcpy(msg, "{\"type\":\"ping\",\"pad\":\"");
    len = strlen(msg);
    memset(msg + len, 'x', 3000);
    strcpy(msg + len + 3000, "\"}");
    ck_assert_int_eq(tc_send(t, msg), 0);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1009);
    tc_free(t);
    free(msg);
}
END_TEST

START_TEST(test_ping_pong)
{
    struct tc *t = connect_as(0, "pinger", NULL);
    long long before = wall_ms();
    json_t *j;

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\"}"), 0);
    j = tc_wait_type(t, "pong", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert(json_is_integer(json_object_get(j, "ts")));
    ck_assert_int_ge(json_integer_value(json_object_get(j, "ts")), before - 1000);
    ck_assert_int_le(json_integer_value(json_object_get(j, "ts")), wall_ms() + 1000);
    ck_assert_ptr_null(json_object_get(j, "id"));
    json_decref(j);

    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":\"x1\"}"), 0);
    j = tc_wait_type(t, "pong", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "x1");
    json_decref(j);
    tc_free(t);
}
END_TEST

START_TEST(test_bad_requests_keep_open)
{
    static const char *bad[] = {
        "{not json",
        "[1,2,3]",
        "\"ping\"",
        "{}",
        "{\"type\":42}",
        "{\"type\":\"no_such_type\",\"id\":\"u1\"}",
        "{\"type\":\"join\"}",
        "{\"type\":\"join\",\"room\":\"Bad Room!\"}",
    };
    struct tc *t = connect_as(0, "badreq", NULL);
    json_t *j;

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(tc_send(t, bad[i]), 0);
        j = tc_wait_type(t, "error", H_TIMEOUT_MS);
        ck_assert_msg(j != NULL, "no error for %s", bad[i]);
        ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "bad_request");
        ck_assert(json_is_string(json_object_get(j, "message")));
        if (i == 5)
            ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "u1");
        json_decref(j);
    }
    ck_assert(chat_client_is_open(t->c));
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":\"still\"}"), 0);
    j = tc_wait_type(t, "pong", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "still");
    json_decref(j);
    tc_free(t);
}
END_TEST

START_TEST(test_invalid_id_not_echoed)
{
    char msg[256];
    struct tc *t = connect_as(0, "ider", NULL);
    json_t *j;

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    /* 65 characters: not a valid id, so the reply has none. */
    snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"%065d\"}", 0);
    ck_assert_int_eq(tc_send(t, msg), 0);
    j = tc_next(t, H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(json_object_get(j, "id"));
    json_decref(j);
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":7}"), 0);
    j = tc_next(t, H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(json_object_get(j, "id"));
    json_decref(j);
    tc_free(t);
}
END_TEST

START_TEST(test_client_close_echoed)
{
    struct tc *t = connect_as(0, "closer", NULL);

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(chat_client_close(t->c, 1000, "bye"), 0);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1000);
    tc_free(t);
}
END_TEST

START_TEST(test_upgrade_header_case)
{
    char *token = NULL, req[9500], *resp = NULL;
    int n;

    ck_assert_int_eq(h_login(&cl, 0, "casing", &token, NULL), 200);
    n = snprintf(
        req, sizeof(req),
        "GET /ws?token=%s HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: WebSocket\r\n"
        "CONNECTION: keep-alive, Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n",
        token);
    ck_assert_int_eq(h_raw(&cl, 0, req, (size_t)n, &resp), 101);
    ck_assert_ptr_nonnull(strstr(resp, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    free(resp);
    /* A wrong version gets 426. */
    n = snprintf(req, sizeof(req),
                 "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 8\r\n\r\n",
                 token);
    ck_assert_int_eq(h_raw(&cl, 0, req, (size_t)n, &resp), 426);
    free(resp);
    free(token);
}
END_TEST

START_TEST(test_nbf_leeway)
{
    long long now = wall_ms() / 1000;
    char claims[256], *jwt;

    /* nbf 30 s ahead is inside the 60 s leeway. */
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"u_nbf\",\"name\":\"Early\",\"exp\":%lld,\"nbf\":%lld}", now + 600,
             now + 30);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_int_eq(upgrade_status(0, jwt, NULL), 101);
    free(jwt);
}
END_TEST

START_TEST(test_token_expiry_closes_4001)
{
    long long now = wall_ms() / 1000;
    char claims[256], *jwt;
    struct tc *t;

    snprintf(claims, sizeof(claims), "{\"sub\":\"u_exp\",\"name\":\"Brief\",\"exp\":%lld}",
             now + 3);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    t = tc_connect(cl.base, cl.ws_url[0], jwt, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(tc_wait_closed(t, 30000), 4001);
    ck_assert_int_ge(wall_ms() / 1000, now + 2);
    tc_free(t);
    free(jwt);
}
END_TEST

START_TEST(test_rate_limit)
{
    const char *args[] = {"--rate", "2/4", NULL};
    int i = h_cluster_add_gateway(&cl, args);
    struct tc *t;
    json_t *j;

    ck_assert_int_eq(i, 1);
    t = connect_as(i, "speedy", NULL);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    /* The burst passes. */
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\"}"), 0);
    for (int k = 0; k < 4; k++) {
        j = tc_wait_type(t, "pong", H_TIMEOUT_MS);
        ck_assert_msg(j != NULL, "pong %d of the burst missing", k + 1);
        json_decref(j);
    }
    /* Past it, frames are dropped with rate_limited, connection open. */
    for (int k = 0; k < 10; k++)
        ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":\"r\"}"), 0);
    j = tc_wait_type(t, "error", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "code")), "rate_limited");
    json_decref(j);
    h_loop_for(cl.base, 200);
    ck_assert(chat_client_is_open(t->c));
    /* More than 10 x burst (40) dropped within 10 s: closed with 1008. */
    for (int k = 0; k < 60; k++)
        ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\"}"), 0);
    ck_assert_int_eq(tc_wait_closed(t, 10000), 1008);
    tc_free(t);
}
END_TEST

START_TEST(test_reply_before_close)
{
    struct tc *t = connect_as(0, "orderly", NULL);
    json_t *j;

    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    /* Both frames arrive together: the pong owed for the ping must not be
     * overtaken and dropped by the 1003 close the binary frame causes. */
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":\"before\"}"), 0);
    ck_assert_int_eq(chat_client_send_frame(t->c, 2, "\x01", 1), 0);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1003);
    j = tc_wait_type(t, "pong", 0);
    ck_assert_msg(j != NULL, "pong lost: the close frame overtook the queued reply");
    ck_assert_str_eq(json_string_value(json_object_get(j, "id")), "before");
    json_decref(j);
    tc_free(t);
}
END_TEST

TCase *ws_tcase(void)
{
    TCase *tc = tcase_create("ws");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_welcome_query_token);
    tcase_add_test(tc, test_welcome_bearer);
    tcase_add_test(tc, test_handmade_token);
    tcase_add_test(tc, test_unauthorized);
    tcase_add_test(tc, test_token_too_long);
    tcase_add_test(tc, test_origin);
    tcase_add_test(tc, test_binary_closes_1003);
    tcase_add_test(tc, test_invalid_utf8_closes_1007);
    tcase_add_test(tc, test_too_big_closes_1009);
    tcase_add_test(tc, test_ping_pong);
    tcase_add_test(tc, test_bad_requests_keep_open);
    tcase_add_test(tc, test_invalid_id_not_echoed);
    tcase_add_test(tc, test_client_close_echoed);
    tcase_add_test(tc, test_upgrade_header_case);
    tcase_add_test(tc, test_nbf_leeway);
    tcase_add_test(tc, test_token_expiry_closes_4001);
    tcase_add_test(tc, test_rate_limit);
    tcase_add_test(tc, test_reply_before_close);
    return tc;
}
