/*
 * --write-delay: a connection's output waits up to the delay after its first
 * frame, so the frames that follow share one write; every frame still
 * arrives, in order.  Output of 16 KiB or more and a closing connection's
 * last frames are not held.
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SHORT_DELAY_MS = 300, LONG_DELAY_MS = 1000 };

static struct h_cluster cl;

static void setup(void)
{
    static const char *const short_delay[] = {"--write-delay", "300", NULL};
    static const char *const long_delay[] = {"--write-delay", "1000", NULL};

    h_watchdog(55);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, short_delay), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 1);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, long_delay), 2);
}

static void teardown(void)
{
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct tc *connect_as(int i, const char *nick)
{
    struct tc *t = tc_welcomed(&cl, i, nick, false);
    ck_assert_msg(t != NULL, "%s could not connect to gateway %d", nick, i);
    return t;
}

static void drain(struct tc *t)
{
    for (json_t *j; (j = tc_next(t, 0));)
        json_decref(j);
}

START_TEST(test_frames_share_writes)
{
    enum { LISTENERS = 4, N = 20 };
    struct tc *l[LISTENERS];
    for (int i = 0; i < LISTENERS; i++) {
        char nick[16];
        snprintf(nick, sizeof(nick), "wdl%d", i);
        l[i] = connect_as(0, nick);
        ck_assert(tc_join(l[i], "wroom"));
    }
    struct tc *sender = connect_as(1, "wdsend");
    ck_assert(tc_join(sender, "wroom"));
    /* The joins' presence events are out before counting. */
    h_loop_for(cl.base, 2 * SHORT_DELAY_MS);
    for (int i = 0; i < LISTENERS; i++)
        drain(l[i]);
    unsigned long long writes0 = h_metric(&cl, 0, "chat_socket_writes_total");
    unsigned long long frames0 = h_metric(&cl, 0, "chat_messages_out_total");
    unsigned long long plain_writes0 = h_metric(&cl, 1, "chat_socket_writes_total");

    long long sent_at = now_ms();
    for (int n = 0; n < N; n++)
        ck_assert_int_eq(tc_sendf(sender,
                                  "{\"type\":\"message\",\"room\":\"wroom\",\"kind\":\"text\","
                                  "\"body\":\"batch %d\",\"id\":\"w%d\"}",
                                  n, n),
                         0);
    for (int n = 0; n < N; n++)
        json_decref(tc_wait_type(sender, "ack", H_TIMEOUT_MS));
    for (int i = 0; i < LISTENERS; i++) {
        long long first_seq = -1;
        for (int n = 0; n < N; n++) {
            json_t *m = tc_wait_type(l[i], "message", H_TIMEOUT_MS);
            ck_assert_msg(m != NULL, "listener %d: message %d missing", i, n);
            if (i == 0 && n == 0) {
                long long waited = now_ms() - sent_at;
                ck_assert_msg(waited >= SHORT_DELAY_MS - 50, "first message after %lld ms", waited);
            }
            char want[32];
            snprintf(want, sizeof(want), "batch %d", n);
            ck_assert_str_eq(json_string_value(json_object_get(m, "body")), want);
            long long seq = json_integer_value(json_object_get(m, "seq"));
            if (first_seq < 0)
                first_seq = seq;
            ck_assert_int_eq(seq, first_seq + n);
            json_decref(m);
        }
    }
    /* 80 frames to four connections in a few writes each, not 80 writes. */
    unsigned long long frames = h_metric(&cl, 0, "chat_messages_out_total") - frames0;
    unsigned long long writes = h_metric(&cl, 0, "chat_socket_writes_total") - writes0;
    ck_assert_msg(frames >= LISTENERS * N, "%llu frames", frames);
    ck_assert_msg(writes >= LISTENERS && writes <= LISTENERS * 3,
                  "%llu writes for %llu frames to %d connections", writes, frames, LISTENERS);
    /* The gateway without the delay counted its writes too (the sender's
     * acks and copies). */
    ck_assert_uint_gt(h_metric(&cl, 1, "chat_socket_writes_total"), plain_writes0);
    for (int i = 0; i < LISTENERS; i++)
        tc_free(l[i]);
    tc_free(sender);
}
END_TEST

START_TEST(test_large_output_and_close_not_held)
{
    struct tc *reader = connect_as(2, "wdread");
    ck_assert(tc_join(reader, "wbig"));
    struct tc *sender = connect_as(1, "wdbig");
    ck_assert(tc_join(sender, "wbig"));
    /* Nothing held for the reader any more (the sender's join reached it). */
    h_loop_for(cl.base, LONG_DELAY_MS + 300);
    drain(reader);

    /* 20 KB is past the 16 KiB a held output may reach: written at once. */
    enum { IMAGE = 20000 };
    static const char head[] = "{\"type\":\"message\",\"room\":\"wbig\",\"kind\":\"image\","
                               "\"body\":\"data:image/png;base64,";
    char *big = malloc(sizeof(head) + IMAGE + 3);
    ck_assert_ptr_nonnull(big);
    memcpy(big, head, sizeof(head) - 1);
    memset(big + sizeof(head) - 1, 'Q', IMAGE);
    memcpy(big + sizeof(head) - 1 + IMAGE, "\"}", 3);
    long long sent_at = now_ms();
    ck_assert_int_eq(tc_send(sender, big), 0);
    free(big);
    json_t *m = tc_wait_type(reader, "message", H_TIMEOUT_MS);
    long long waited = now_ms() - sent_at;
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(strlen(json_string_value(json_object_get(m, "body"))),
                      strlen("data:image/png;base64,") + IMAGE);
    json_decref(m);
    ck_assert_msg(waited < LONG_DELAY_MS * 3 / 4, "the image waited %lld ms", waited);

    /* The answer to a close is the connection's last frame: not held. */
    long long closed_at = now_ms();
    ck_assert_int_eq(chat_client_close(reader->c, 1000, "bye"), 0);
    ck_assert_int_eq(tc_wait_closed(reader, H_TIMEOUT_MS), 1000);
    waited = now_ms() - closed_at;
    ck_assert_msg(waited < LONG_DELAY_MS * 3 / 4, "the close answer waited %lld ms", waited);
    tc_free(reader);
    tc_free(sender);
}
END_TEST

TCase *write_delay_tcase(void)
{
    TCase *tc = tcase_create("write_delay");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_frames_share_writes);
    tcase_add_test(tc, test_large_output_and_close_not_held);
    return tc;
}
