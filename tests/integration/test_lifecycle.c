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
    h_cluster_stop(&cl);
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
    static const char *flags[] = {"--port",    "--bind",   "--redis",       "--node-id",
                                  "--jwt-secret", "--static-dir", "--origins", "--history",
                                  "--max-message", "--rate", "--prefix", "--log-level"};
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
    int status, code;
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

TCase *lifecycle_tcase(void)
{
    TCase *tc = tcase_create("lifecycle");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_env_config_error);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_sigint_exit_clean);
    tcase_add_test(tc, test_echo);
    tcase_add_test(tc, test_no_echo_by_default);
    return tc;
}
