/*
 * permessage-deflate across nodes: clients that negotiated it and clients
 * that did not share a room on two gateways, and every one of them gets
 * every message, in order; a node compresses each room message once however
 * many of its clients take it compressed.
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct h_cluster cl;

static void setup(void)
{
    static const char *const off[] = {"--deflate", "off", NULL};
    /* Short messages (a 40-byte body is ~190 bytes of JSON) stay plain. */
    static const char *const min[] = {"--deflate-min", "300", NULL};

    h_watchdog(55);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, min), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, min), 1);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, off), 2);
}

static void teardown(void)
{
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

/* Logs in and connects to gateway i, offering permessage-deflate or not. */
static struct tc *connect_as(int i, const char *nick, bool deflate)
{
    struct tc *t = tc_welcomed(&cl, i, nick, deflate);
    ck_assert_msg(t != NULL, "%s could not connect to gateway %d", nick, i);
    return t;
}

/* Body of message n: long ones (every other) are compressed, short ones not. */
static void body_of(int n, char *out, size_t cap)
{
    size_t len = n % 2 ? 40 : 400 + (size_t)n * 37;
    int w = snprintf(out, cap, "m%d ", n);
    for (size_t i = (size_t)w; i < len && i + 1 < cap; i++)
        out[i] = "the build is green again "[i % 25];
    out[len < cap ? len : cap - 1] = '\0';
}

START_TEST(test_mixed_clients_share_a_room)
{
    enum { N = 24, CLIENTS = 5 };
    /* Two deflate clients and a plain one on gateway 0, one of each on
     * gateway 1, and one that offers it to a node that has it off. */
    struct tc *c[CLIENTS + 1] = {
        connect_as(0, "zipa", true), connect_as(0, "zipb", true),    connect_as(0, "plaina", false),
        connect_as(1, "zipc", true), connect_as(1, "plainb", false), connect_as(2, "zipoff", true),
    };
    bool want_deflate[CLIENTS + 1] = {true, true, false, true, false, false};
    for (int i = 0; i <= CLIENTS; i++) {
        ck_assert_msg(chat_client_deflate(c[i]->c) == want_deflate[i], "client %d deflate %d", i,
                      chat_client_deflate(c[i]->c));
        ck_assert(tc_join(c[i], "zroom"));
    }
    /* Presence of the joins settles before counting. */
    h_loop_for(cl.base, 300);
    for (int i = 0; i <= CLIENTS; i++)
        for (json_t *j; (j = tc_next(c[i], 0));)
            json_decref(j);
    unsigned long long comp0 = h_metric(&cl, 0, "chat_deflate_compressions_total");
    unsigned long long raw0 = h_metric(&cl, 0, "chat_deflate_out_raw_bytes_total");
    unsigned long long wire0 = h_metric(&cl, 0, "chat_deflate_out_bytes_total");

    /* Compressed and plain senders take turns, on both nodes. */
    char body[2000];
    for (int n = 0; n < N; n++) {
        body_of(n, body, sizeof(body));
        ck_assert_int_eq(tc_sendf(c[n % 5],
                                  "{\"type\":\"message\",\"room\":\"zroom\",\"kind\":"
                                  "\"text\",\"body\":\"%s\"}",
                                  body),
                         0);
        json_decref(tc_wait_type(c[n % 5], "ack", H_TIMEOUT_MS));
    }
    long long first_seq = -1;
    for (int i = 0; i <= CLIENTS; i++) {
        for (int n = 0; n < N; n++) {
            json_t *m = tc_wait_type(c[i], "message", H_TIMEOUT_MS);
            ck_assert_msg(m != NULL, "client %d: message %d missing", i, n);
            body_of(n, body, sizeof(body));
            ck_assert_str_eq(json_string_value(json_object_get(m, "body")), body);
            long long seq = json_integer_value(json_object_get(m, "seq"));
            if (first_seq < 0)
                first_seq = seq;
            ck_assert_int_eq(seq, first_seq + n);
            json_decref(m);
        }
    }
    /* Gateway 0 compressed each long message once for its two deflate
     * clients, and the bytes it sent are fewer than the raw ones. */
    unsigned long long comp = h_metric(&cl, 0, "chat_deflate_compressions_total") - comp0;
    unsigned long long raw = h_metric(&cl, 0, "chat_deflate_out_raw_bytes_total") - raw0;
    unsigned long long wire = h_metric(&cl, 0, "chat_deflate_out_bytes_total") - wire0;
    ck_assert_msg(comp == N / 2, "%llu compressions for %d long messages", comp, N / 2);
    ck_assert_uint_gt(raw, 0);
    ck_assert_msg(wire * 2 < raw, "compressed %llu of %llu bytes", wire, raw);
    ck_assert_int_eq(h_metric(&cl, 2, "chat_deflate_sessions_total"), 0);

    /* A message over GW_DEFLATE_MAX_MESSAGE (256 KiB) goes out plain to
     * everyone: compressing it would stall the node's loop. */
    enum { IMAGE = 300000 };
    static const char head[] = "{\"type\":\"message\",\"room\":\"zroom\",\"kind\":\"image\","
                               "\"body\":\"data:image/png;base64,";
    char *big = malloc(sizeof(head) + IMAGE + 3);
    ck_assert_ptr_nonnull(big);
    memcpy(big, head, sizeof(head) - 1);
    memset(big + sizeof(head) - 1, 'Q', IMAGE);
    memcpy(big + sizeof(head) - 1 + IMAGE, "\"}", 3);
    comp0 = h_metric(&cl, 0, "chat_deflate_compressions_total");
    ck_assert_int_eq(tc_send(c[0], big), 0);
    free(big);
    for (int i = 0; i <= CLIENTS; i++) {
        json_t *m = tc_wait_type(c[i], "message", 3 * H_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "client %d: the image is missing", i);
        ck_assert_uint_eq(strlen(json_string_value(json_object_get(m, "body"))),
                          strlen("data:image/png;base64,") + IMAGE);
        json_decref(m);
    }
    ck_assert_int_eq(h_metric(&cl, 0, "chat_deflate_compressions_total"), comp0);

    /* Under it, an image whose compressed form is still over
     * GW_FRAME_SHARE_MIN: compressed once, and that one compressed copy is
     * what every deflate recipient's output refers to. */
    enum { MID = 40000 };
    char *mid = malloc(sizeof(head) + MID + 3);
    ck_assert_ptr_nonnull(mid);
    memcpy(mid, head, sizeof(head) - 1);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned x = 12345;
    for (size_t i = 0; i < MID; i++, x = x * 1103515245u + 12345u)
        mid[sizeof(head) - 1 + i] = b64[(x >> 16) & 63];
    memcpy(mid + sizeof(head) - 1 + MID, "\"}", 3);
    wire0 = h_metric(&cl, 0, "chat_deflate_out_bytes_total");
    ck_assert_int_eq(tc_send(c[3], mid), 0);
    mid[sizeof(head) - 1 + MID] = '\0'; /* the body alone, to compare with */
    for (int i = 0; i <= CLIENTS; i++) {
        json_t *m = tc_wait_type(c[i], "message", 3 * H_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "client %d: the mid-size image is missing", i);
        ck_assert_str_eq(json_string_value(json_object_get(m, "body")),
                         mid + sizeof(head) - 1 - strlen("data:image/png;base64,"));
        json_decref(m);
    }
    ck_assert_int_eq(h_metric(&cl, 0, "chat_deflate_compressions_total"), comp0 + 1);
    wire = h_metric(&cl, 0, "chat_deflate_out_bytes_total") - wire0;
    /* Two deflate recipients on gateway 0, each sent more than 8 KiB. */
    ck_assert_msg(wire > 2 * 8192 && wire < 2 * MID, "compressed bytes out %llu", wire);
    free(mid);
    for (int i = 0; i <= CLIENTS; i++)
        tc_free(c[i]);
}
END_TEST

TCase *deflate_tcase(void)
{
    TCase *tc = tcase_create("deflate");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_mixed_clients_share_a_room);
    return tc;
}
