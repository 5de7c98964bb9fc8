#include <stdio.h>
#include <string.h>

#include <check.h>

#include "harness.h"
#include "keys.h"
#include "router.h"
#include "router_internal.h"
#include "tests.h"

/* online/offline on the all channel: one frame each for clients that did not
 * ask, one presence_batch per interval for those that did
 * (router_presence.c). */

#define USER(id) "{\"id\":\"" id "\",\"name\":\"" id "\",\"avatar\":null}"
#define ONLINE(id) "{\"type\":\"online\",\"user\":" USER(id) "}"
#define OFFLINE(id) "{\"type\":\"offline\",\"user\":" USER(id) "}"
#define CREATED "{\"type\":\"room_created\",\"room\":\"go\",\"topic\":\"\",\"by\":" USER("x") "}"

static void all(struct harness *h, const char *payload)
{
    char ch[GW_KEY_MAX];
    ck_assert_ptr_nonnull(gw_key_all(ch, sizeof(ch), h->prefix));
    h_publish(h, ch, payload);
}

static struct h_client *attach_batch(struct harness *h, const char *uid)
{
    struct h_client *c = h_attach(h, uid);
    gw_router_set_presence_batch(h->router, c->c);
    return c;
}

/* The payloads c got, in order, one per line. */
static const char *got(const struct harness *h, const struct h_client *c, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < h->nlog; i++)
        if (h->log[i].to == c)
            n +=
                (size_t)snprintf(buf + n, len - n, "%.*s\n", (int)h->log[i].len, h->log[i].payload);
    ck_assert_uint_lt(n, len);
    return buf;
}

/* Legacy clients get every event at once; batch clients get the other
 * events at once and the presence changes of the interval in one frame,
 * last event per user winning, in the order of those last events. */
START_TEST(test_batch_coalesces_per_interval)
{
    struct harness h;
    h_init(&h);
    h.cfg.presence_batch = 50;
    struct h_client *legacy = h_attach(&h, "lena");
    struct h_client *batch = attach_batch(&h, "bart");
    struct h_client *batch2 = attach_batch(&h, "bea");
    h_log_clear(&h);
    all(&h, ONLINE("alice"));
    all(&h, ONLINE("bob"));
    all(&h, OFFLINE("alice")); /* online then offline: offline wins */
    all(&h, OFFLINE("carol"));
    all(&h, ONLINE("carol")); /* offline then online (a reconnect): online */
    all(&h, CREATED);
    char buf[4096];
    ck_assert_str_eq(got(&h, legacy, buf, sizeof(buf)),
                     ONLINE("alice") "\n" ONLINE("bob") "\n" OFFLINE("alice") "\n" OFFLINE(
                         "carol") "\n" ONLINE("carol") "\n" CREATED "\n");
    ck_assert_str_eq(got(&h, batch, buf, sizeof(buf)), CREATED "\n");
    h_log_clear(&h);
    h_run_timers(&h, 120);
    const char *want = "{\"type\":\"presence_batch\",\"online\":[" USER("bob") "," USER(
        "carol") "],\"offline\":[" USER("alice") "]}\n";
    ck_assert_str_eq(got(&h, batch, buf, sizeof(buf)), want);
    ck_assert_str_eq(got(&h, batch2, buf, sizeof(buf)), want);
    ck_assert_str_eq(got(&h, legacy, buf, sizeof(buf)), "");
    /* Nothing changed since: no empty batch follows. */
    h_log_clear(&h);
    h_run_timers(&h, 120);
    ck_assert_uint_eq(h.nlog, 0);
    /* The next interval starts afresh. */
    all(&h, OFFLINE("bob"));
    h_run_timers(&h, 120);
    ck_assert_str_eq(got(&h, batch, buf, sizeof(buf)),
                     "{\"type\":\"presence_batch\",\"online\":[],\"offline\":[" USER("bob") "]}\n");
    h_fini(&h);
}
END_TEST

/* Without a batch client nothing is kept; a batch client that leaves before
 * the flush is not written to; unreadable events are dropped. */
START_TEST(test_batch_without_batch_clients)
{
    struct harness h;
    h_init(&h);
    h.cfg.presence_batch = 50;
    struct h_client *legacy = h_attach(&h, "lena");
    h_log_clear(&h);
    all(&h, ONLINE("alice"));
    ck_assert_uint_eq(h.nlog, 1);
    struct h_client *batch = attach_batch(&h, "bart");
    all(&h, "{\"type\":\"online\",\"user\":{\"name\":\"no id\"}}");
    all(&h, "{\"type\":\"offline\"");
    all(&h, ONLINE("bob"));
    h_detach(&h, batch);
    h_log_clear(&h);
    h_run_timers(&h, 120);
    ck_assert_uint_eq(h.nlog, 0);
    (void)legacy;
    h_fini(&h);
}
END_TEST

/* More batch clients than --presence-budget frames per second allow: the
 * interval stretches to clients / budget, so the node's frame rate stays
 * under the budget however many clients there are. */
START_TEST(test_batch_interval_follows_budget)
{
    struct harness h;
    h_init(&h);
    h.cfg.presence_batch = 50;
    h.cfg.presence_budget = 25;
    struct h_client *first = attach_batch(&h, "u0");
    ck_assert_int_eq(gw_presence_batch_interval_ms(h.router), 50); /* 1 / 25 s = 40 ms */
    char uid[16];
    for (int i = 1; i < 8; i++) {
        snprintf(uid, sizeof(uid), "u%d", i);
        attach_batch(&h, uid);
    }
    ck_assert_int_eq(gw_presence_batch_interval_ms(h.router), 320); /* 8 / 25 s */
    h_log_clear(&h);
    all(&h, ONLINE("bob"));
    h_run_timers(&h, 220);
    char buf[4096];
    ck_assert_str_eq(got(&h, first, buf, sizeof(buf)), ""); /* past 50 ms, not yet due */
    h_run_timers(&h, 250);
    ck_assert_str_eq(got(&h, first, buf, sizeof(buf)),
                     "{\"type\":\"presence_batch\",\"online\":[" USER("bob") "],\"offline\":[]}\n");
    ck_assert_uint_eq(h.nlog, 8); /* one frame to each batch client */
    h_fini(&h);
}
END_TEST

TCase *presence_tcase(void)
{
    TCase *tc = tcase_create("presence");
    tcase_add_test(tc, test_batch_coalesces_per_interval);
    tcase_add_test(tc, test_batch_without_batch_clients);
    tcase_add_test(tc, test_batch_interval_follows_budget);
    return tc;
}
