/*
 * Process lifecycle (PROTOCOL.md section 1): configuration errors exit 2 with
 * one line on stderr, --help exits 0, SIGTERM drains (1001 to open sockets,
 * 503 to new upgrades, exit 0 within 10 s), and the --echo endpoint.
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GATEWAY_BIN
#define GATEWAY_BIN "chat-gateway"
#endif

static struct h_cluster cl;

static void setup(void)
{
    h_watchdog(55);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
}

static void teardown(void)
{
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

static int count_lines(const char *s)
{
    int n = 0;

    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* Runs the gateway with args; asserts exit status `want` and, for 2, one
 * non-empty line on stderr. */
static void expect_exit(const char *const *args, int want)
{
    const char *argv[32] = {GATEWAY_BIN};
    char *out = NULL, *err = NULL;
    int n = 1, status;

    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    status = h_run_capture(argv, &out, &err, 5000);
    ck_assert_msg(status >= 0 && WIFEXITED(status), "%s %s: did not exit (status %d)", argv[1],
                  argv[2] ? argv[2] : "", status);
    ck_assert_msg(WEXITSTATUS(status) == want, "%s %s: exit %d, want %d; stderr: %s", argv[1],
                  argv[2] ? argv[2] : "", WEXITSTATUS(status), want, err);
    if (want == 2) {
        ck_assert_msg(count_lines(err) == 1 && strlen(err) > 1,
                      "%s %s: stderr should be one line, got: [%s]", argv[1],
                      argv[2] ? argv[2] : "", err);
    }
    free(out);
    free(err);
}

START_TEST(test_config_errors)
{
    char redis[64];
    const char *secret = H_JWT_SECRET;

    snprintf(redis, sizeof(redis), "redis://127.0.0.1:%d/0", cl.redis.port);
    {
        const char *a[] = {"--port", "70000", "--jwt-secret", secret, "--redis", redis, NULL};

        expect_exit(a, 2);
    }
    {
        const char *a[] = {"--port", "abc", "--jwt-secret", secret, "--redis", redis, NULL};

        expect_exit(a, 2);
    }
    {
        const char *a[] = {"--jwt-secret", "short-secret", "--redis", redis, "--port", "0", NULL};

        expect_exit(a, 2);
    }
    {
        const char *a[] = {"--no-such-flag", "--jwt-secret", secret, NULL};

        expect_exit(a, 2);
    }
    {
        /* No secret and no --dev. */
        const char *a[] = {"--redis", redis, NULL};

        unsetenv("CHAT_JWT_SECRET");
        expect_exit(a, 2);
    }
    {
        const char *a[] = {"--jwt-secret", secret, "--log-level", "loud", NULL};

        expect_exit(a, 2);
    }
    {
        const char *a[] = {"--jwt-secret", secret, "--redis", "http://nope", NULL};

        expect_exit(a, 2);
    }
}
END_TEST

START_TEST(test_env_config_error)
{
    const char *a[] = {"--jwt-secret", H_JWT_SECRET, NULL};

    /* The environment is read too: a bad CHAT_PORT is a config error. */
    setenv("CHAT_PORT", "not-a-port", 1);
    expect_exit(a, 2);
    unsetenv("CHAT_PORT");
}
END_TEST

START_TEST(test_help)
{
    const char *argv[] = {GATEWAY_BIN, "--help", NULL};
    static const char *flags[] = {"--port",        "--bind",       "--redis",   "--node-id",
                                  "--jwt-secret",  "--static-dir", "--origins", "--history",
                                  "--max-message", "--rate",       "--prefix",  "--log-level"};
    char *out = NULL, *err = NULL;
    int status = h_run_capture(argv, &out, &err, 5000);

    ck_assert(status >= 0 && WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        ck_assert_msg(strstr(out, flags[i]) != NULL, "--help lacks %s", flags[i]);
    ck_assert_ptr_nonnull(strstr(out, "CHAT_PORT"));
    free(out);
    free(err);
}
END_TEST

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(test_drain)
{
    char *token = NULL, *body = NULL;
    struct tc *t, *late;
    int status;
    long start;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    ck_assert_int_eq(h_login(&cl, 0, "drainer", &token, NULL), 200);
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));

    start = now_ms();
    ck_assert_int_eq(kill(cl.gw[0].pid, SIGTERM), 0);
    ck_assert_int_eq(tc_wait_closed(t, 10000), 1001);

    /* While draining (or once gone): no new upgrades, /healthz not 200. */
    late = tc_new(cl.base, cl.ws_url[0], token, NULL);
    ck_assert_ptr_nonnull(late);
    tc_wait_open(late, H_TIMEOUT_MS);
    ck_assert_msg(late->refused && (late->code == 503 || late->code == 0),
                  "upgrade while draining: opened=%d code=%d", late->opened, late->code);
    status = chat_http_request(cl.http_url[0], "GET", "/healthz", NULL, NULL, 0, &body, 2000);
    ck_assert_msg(status == 503 || status == -1, "/healthz while draining: %d", status);
    free(body);

    status = h_proc_wait(&cl.gw[0], (int)(10500 - (now_ms() - start)));
    ck_assert_msg(status >= 0, "gateway still running 10 s after SIGTERM");
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    tc_free(late);
    tc_free(t);
    free(token);
}
END_TEST

/* With a grace, /healthz says 503 while sockets stay open, so a load balancer
 * takes the node out before its clients are told to go. */
START_TEST(test_drain_grace)
{
    static const char *const args[] = {"--drain-grace", "2", NULL};
    char *token = NULL, *body = NULL;
    int status;
    long start;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    ck_assert_int_eq(h_login(&cl, 0, "graceful", &token, NULL), 200);
    struct tc *t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));

    start = now_ms();
    ck_assert_int_eq(kill(cl.gw[0].pid, SIGTERM), 0);
    h_loop_for(cl.base, 300);
    status = chat_http_request(cl.http_url[0], "GET", "/healthz", NULL, NULL, 0, &body, 2000);
    ck_assert_int_eq(status, 503);
    free(body);
    ck_assert_msg(!t->closed, "socket closed during the grace");
    ck_assert_int_eq(tc_wait_closed(t, 10000), 1001);
    long waited = now_ms() - start;
    ck_assert_msg(waited >= 1800 && waited < 6000, "1001 after %ld ms, grace 2 s", waited);
    status = h_proc_wait(&cl.gw[0], 10000);
    ck_assert(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tc_free(t);
    free(token);
}
END_TEST

START_TEST(test_sigint_exit_clean)
{
    int status;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    kill(cl.gw[0].pid, SIGINT);
    status = h_proc_wait(&cl.gw[0], 10500);
    ck_assert(status >= 0 && WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_echo)
{
    const char *args[] = {"--echo", NULL};
    char url[96];
    struct tc *t;
    json_t *j;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, args), 0);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/echo", cl.gw[0].port);
    t = tc_connect(cl.base, url, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tc_send(t, "hello, echo"), 0);
    j = tc_next(t, H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "raw")), "hello, echo");
    json_decref(j);
    ck_assert_int_eq(tc_send(t, "{\"a\":1}"), 0);
    j = tc_next(t, H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
    tc_free(t);
}
END_TEST

START_TEST(test_no_echo_by_default)
{
    char url[96];
    int status = 0;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/echo", cl.gw[0].port);
    ck_assert_ptr_null(tc_connect(cl.base, url, NULL, NULL, &status));
    ck_assert_int_eq(status, 404);
}
END_TEST

START_TEST(test_drain_unresponsive_peer)
{
    char *token = NULL, req[9500], *body = NULL;
    struct tc *late;
    int fd, status, exit_status = -1;
    long start;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    ck_assert_int_eq(h_login(&cl, 0, "stubborn", &token, NULL), 200);
    /* An upgraded peer that never reads nor answers the close keeps the
     * gateway draining, so what it answers meanwhile can be checked. */
    snprintf(req, sizeof(req),
             "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             token);
    fd = h_raw_open(&cl, 0, req, &status);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(status, 101);

    start = now_ms();
    ck_assert_int_eq(kill(cl.gw[0].pid, SIGTERM), 0);
    h_loop_for(cl.base, 100);
    /* A gateway may close such a peer at once and exit; while it is still
     * up, the listener answers and says 503. */
    status = chat_http_request(cl.http_url[0], "GET", "/healthz", NULL, NULL, 0, &body, 2000);
    free(body);
    late = tc_new(cl.base, cl.ws_url[0], token, NULL);
    ck_assert_ptr_nonnull(late);
    tc_wait_open(late, H_TIMEOUT_MS);
    if (status == -1 || (late->refused && late->code == 0)) {
        exit_status = h_proc_wait(&cl.gw[0], 1000);
        ck_assert_msg(exit_status >= 0, "listener gone while the gateway still runs");
    } else {
        ck_assert_msg(status == 503, "/healthz while draining: %d", status);
        ck_assert_msg(late->refused && late->code == 503,
                      "upgrade while draining: opened=%d code=%d", late->opened, late->code);
    }
    tc_free(late);

    if (cl.gw[0].pid > 0)
        exit_status = h_proc_wait(&cl.gw[0], (int)(10500 - (now_ms() - start)));
    ck_assert_msg(exit_status >= 0, "gateway still running 10 s after SIGTERM");
    ck_assert(WIFEXITED(exit_status));
    ck_assert_int_eq(WEXITSTATUS(exit_status), 0);
    close(fd);
    free(token);
}
END_TEST

START_TEST(test_env_config)
{
    char *token = NULL, *body = NULL;
    json_t *j;
    int i;

    /* Environment applies (CHAT_ORIGINS) and flags win (--node-id gw1). */
    setenv("CHAT_ORIGINS", "http://env-good.example", 1);
    setenv("CHAT_NODE_ID", "from-env", 1);
    i = h_cluster_add_gateway(&cl, NULL);
    unsetenv("CHAT_ORIGINS");
    unsetenv("CHAT_NODE_ID");
    ck_assert_int_eq(i, 0);
    ck_assert_int_eq(
        chat_http_request(cl.http_url[0], "GET", "/healthz", NULL, NULL, 0, &body, H_TIMEOUT_MS),
        200);
    j = json_loads(body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "node")), "gw1");
    json_decref(j);
    free(body);
    ck_assert_int_eq(h_login(&cl, 0, "envy", &token, NULL), 200);
    {
        int status = 0;
        struct tc *t = tc_connect(cl.base, cl.ws_url[0], token, "http://env-good.example", &status);

        ck_assert_int_eq(status, 101);
        tc_free(t);
        t = tc_connect(cl.base, cl.ws_url[0], token, "http://other.example", &status);
        ck_assert_ptr_null(t);
        ck_assert_int_eq(status, 403);
    }
    free(token);
}
END_TEST

static int healthz(void)
{
    char *body = NULL;
    int status = chat_http_request(cl.http_url[0], "GET", "/healthz", NULL, NULL, 0, &body, 2000);

    free(body);
    return status;
}

static bool healthz_is_503(void *arg)
{
    (void)arg;
    return healthz() == 503;
}

static bool healthz_is_200(void *arg)
{
    (void)arg;
    return healthz() == 200;
}

START_TEST(test_redis_outage)
{
    char *token = NULL;
    struct tc *t;
    int status = 0;

    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
    ck_assert_int_eq(h_login(&cl, 0, "outage", &token, NULL), 200);
    ck_assert_int_eq(h_redis_stop(&cl), 0);
    /* Unreachable Redis: /healthz and new upgrades say 503. */
    ck_assert_msg(h_loop_until(cl.base, healthz_is_503, NULL, 10000), "/healthz stayed %d",
                  healthz());
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, &status);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(status, 503);
    /* Back: the bus reconnects by itself. */
    ck_assert_int_eq(h_redis_start(&cl), 0);
    ck_assert_msg(h_loop_until(cl.base, healthz_is_200, NULL, 15000), "/healthz stayed %d",
                  healthz());
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, &status);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    tc_free(t);
    free(token);
}
END_TEST

TCase *lifecycle_tcase(void)
{
    TCase *tc = tcase_create("lifecycle");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_env_config_error);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_drain_grace);
    tcase_add_test(tc, test_sigint_exit_clean);
    tcase_add_test(tc, test_echo);
    tcase_add_test(tc, test_no_echo_by_default);
    tcase_add_test(tc, test_drain_unresponsive_peer);
    tcase_add_test(tc, test_env_config);
    tcase_add_test(tc, test_redis_outage);
    return tc;
}
