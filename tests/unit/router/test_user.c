#include <stdio.h>
#include <string.h>

#include <check.h>
#include <hiredis/hiredis.h>

#include "dict.h"
#include "harness.h"
#include "keys.h"
#include "router.h"
#include "router_internal.h"
#include "tests.h"

/* Long before any test runs, and long after: the user repair skips messages
 * older than the user's attach time. */
#define TS_OLD 1000LL
#define TS_NEW 4102444800000LL

#define NOTICE "{\"type\":\"notice\",\"text\":\"hello\"}"

static const char *user_ch(struct harness *h, const char *uid)
{
    static char ch[GW_KEY_MAX];
    return h_user_channel(h, uid, ch, sizeof(ch));
}

static void publish_private(struct harness *h, const char *channel_uid, const char *from,
                            const char *to, int64_t seq, int64_t ts)
{
    char msg[512];
    h_publish(h, user_ch(h, channel_uid), h_private_msg(msg, sizeof(msg), from, to, seq, ts));
}

static void user_resubscribe(struct harness *h, const char *uid)
{
    fake_bus_drop_subscriber(h->bus);
    fake_bus_confirm(h->bus, user_ch(h, uid));
}

/* The pending SMEMBERS of uid's conversations. */
static struct fake_cmd *dms_listing(struct harness *h, const char *uid)
{
    char key[GW_KEY_MAX];
    ck_assert_ptr_nonnull(gw_key_user(key, sizeof(key), h->prefix, uid, "dms"));
    struct fake_cmd *c = fake_bus_find(h->bus, "SMEMBERS", key);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->argc, 2);
    return c;
}

/* The pending history_since of the conversation of a and b. */
static struct fake_cmd *dm_history(struct harness *h, const char *a, const char *b)
{
    char seq_key[GW_KEY_MAX], hist_key[GW_KEY_MAX];
    ck_assert_ptr_nonnull(gw_key_dm(seq_key, sizeof(seq_key), h->prefix, a, b, "seq"));
    ck_assert_ptr_nonnull(gw_key_dm(hist_key, sizeof(hist_key), h->prefix, a, b, "history"));
    struct fake_cmd *c = fake_bus_find_eval(h->bus, seq_key);
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->argv[0], "EVALSHA");
    ck_assert_int_eq(c->argc, 5);
    ck_assert_str_eq(c->argv[2], "2");
    ck_assert_str_eq(c->argv[4], hist_key);
    return c;
}

static redisReply *strings(size_t n, const char *const *v)
{
    redisReply *r = fake_reply_array(n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = v[i] ? fake_reply_str(v[i]) : fake_reply_nil();
    return r;
}

/* {current, msgs...}: msgs given as (from, to, seq, ts). */
struct pm {
    const char *from, *to;
    int64_t seq, ts;
};

static redisReply *dm_reply(int64_t current, size_t n, const struct pm *msgs)
{
    redisReply *r = fake_reply_array(1 + n);
    r->element[0] = fake_reply_int(current);
    for (size_t i = 0; i < n; i++) {
        char msg[512];
        r->element[1 + i] = fake_reply_str(
            h_private_msg(msg, sizeof(msg), msgs[i].from, msgs[i].to, msgs[i].seq, msgs[i].ts));
    }
    return r;
}

START_TEST(test_private_dedup_per_conversation)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    /* The first confirmation of a user channel repairs nothing. */
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);

    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW);
    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW); /* repeat */
    publish_private(&h, "alice", "bob", "alice", 2, TS_NEW);
    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW); /* older */
    /* Alice's own message to bob: the same conversation, next seq. */
    publish_private(&h, "alice", "alice", "bob", 3, TS_NEW);
    publish_private(&h, "alice", "alice", "bob", 3, TS_NEW);
    publish_private(&h, "alice", "alice", "bob", 2, TS_NEW);
    /* Another conversation starts at 1 again. */
    publish_private(&h, "alice", "carol", "alice", 1, TS_NEW);
    publish_private(&h, "alice", "carol", "alice", 1, TS_NEW);
    h_assert_seqs(&h, a1, "1,2,3,1");
    h_assert_seqs(&h, a2, "1,2,3,1");
    ck_assert_uint_eq(h_count(&h, b), 0);

    /* Anything else on the user channel is not deduplicated. */
    h_publish(&h, user_ch(&h, "alice"), NOTICE);
    h_publish(&h, user_ch(&h, "alice"), NOTICE);
    ck_assert_uint_eq(h_count_payload(&h, a1, NOTICE), 2);
    ck_assert_uint_eq(h_count_payload(&h, a2, NOTICE), 2);

    /* Bob's channel is his own. */
    publish_private(&h, "bob", "alice", "bob", 3, TS_NEW);
    h_assert_seqs(&h, b, "3");
    ck_assert_uint_eq(h_count(&h, a1), 6);
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_user_repair_after_resubscribe)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW);
    h_assert_seqs(&h, a1, "1");

    user_resubscribe(&h, "alice");
    struct fake_cmd *list = dms_listing(&h, "alice");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 1);
    /* Live during the repair: held until it ends. */
    publish_private(&h, "alice", "bob", "alice", 4, TS_NEW);
    h_assert_seqs(&h, a1, "1");

    const char *peers[] = {"bob", "carol", "bad id!", NULL};
    fake_bus_answer(h.bus, list, strings(4, peers));
    ck_assert_uint_eq(fake_bus_pending(h.bus), 2); /* one per valid peer */
    struct fake_cmd *hb = dm_history(&h, "alice", "bob");
    struct fake_cmd *hc = dm_history(&h, "alice", "carol");

    /* bob: 1 was delivered live, 2 and 3 were missed. */
    const struct pm bob[] = {
        {"bob", "alice", 1, TS_NEW}, {"alice", "bob", 2, TS_NEW}, {"bob", "alice", 3, TS_NEW}};
    fake_bus_answer(h.bus, hb, dm_reply(3, 3, bob));
    h_assert_seqs(&h, a1, "1,2,3");
    publish_private(&h, "alice", "carol", "alice", 3, TS_NEW); /* held */

    /* carol: 1 is older than alice's first session here, not replayed. */
    const struct pm carol[] = {{"carol", "alice", 1, TS_OLD}, {"carol", "alice", 2, TS_NEW}};
    fake_bus_answer(h.bus, hc, dm_reply(2, 2, carol));
    /* Then the held messages, in arrival order. */
    h_assert_seqs(&h, a1, "1,2,3,2,4,3");
    h_assert_seqs(&h, a2, "1,2,3,2,4,3");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);

    /* Back to live delivery, still deduplicated. */
    publish_private(&h, "alice", "bob", "alice", 4, TS_NEW);
    publish_private(&h, "alice", "bob", "alice", 5, TS_NEW);
    h_assert_seqs(&h, a1, "1,2,3,2,4,3,5");
    h_fini(&h);
}
END_TEST

/* A DM's two sides publish from their own gateways on a cluster, so seq 3
 * can arrive before seq 2: the gap is repaired from history, and the late 2
 * is a repeat. */
START_TEST(test_user_repair_on_gap)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW);
    publish_private(&h, "alice", "alice", "bob", 3, TS_NEW);
    h_assert_seqs(&h, a, "1");
    const char *peers[] = {"bob"};
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), strings(1, peers));
    const struct pm bob[] = {
        {"bob", "alice", 1, TS_NEW}, {"bob", "alice", 2, TS_NEW}, {"alice", "bob", 3, TS_NEW}};
    fake_bus_answer(h.bus, dm_history(&h, "alice", "bob"), dm_reply(3, 3, bob));
    h_assert_seqs(&h, a, "1,2,3");
    publish_private(&h, "alice", "bob", "alice", 2, TS_NEW);
    /* A conversation seen for the first time has no gap to find. */
    publish_private(&h, "alice", "carol", "alice", 7, TS_NEW);
    h_assert_seqs(&h, a, "1,2,3,7");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

/* --durability replica publishes a DM once WAIT confirms it: 3 may come
 * while 2 waits, and 5 while 4 does.  The repair for 2 reads history before
 * 4 is stored; 5, held meanwhile, must wait for another read, or the late 4
 * is taken for a repeat. */
START_TEST(test_user_repair_then_backlog_gap_reads_again)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW);
    publish_private(&h, "alice", "bob", "alice", 3, TS_NEW);
    const char *peers[] = {"bob"};
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), strings(1, peers));
    publish_private(&h, "alice", "bob", "alice", 5, TS_NEW); /* held */
    const struct pm upto3[] = {
        {"bob", "alice", 1, TS_NEW}, {"bob", "alice", 2, TS_NEW}, {"bob", "alice", 3, TS_NEW}};
    fake_bus_answer(h.bus, dm_history(&h, "alice", "bob"), dm_reply(3, 3, upto3));
    h_assert_seqs(&h, a, "1,2,3"); /* 5 waits for 4 */
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), strings(1, peers));
    publish_private(&h, "alice", "bob", "alice", 4, TS_NEW); /* held too */
    const struct pm upto5[] = {{"bob", "alice", 1, TS_NEW},
                               {"bob", "alice", 2, TS_NEW},
                               {"bob", "alice", 3, TS_NEW},
                               {"bob", "alice", 4, TS_NEW},
                               {"bob", "alice", 5, TS_NEW}};
    fake_bus_answer(h.bus, dm_history(&h, "alice", "bob"), dm_reply(5, 5, upto5));
    h_assert_seqs(&h, a, "1,2,3,4,5");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_user_repair_failure_releases_held)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    user_resubscribe(&h, "alice");
    publish_private(&h, "alice", "bob", "alice", 1, TS_NEW);
    h_publish(&h, user_ch(&h, "alice"), NOTICE);
    ck_assert_uint_eq(h_count(&h, a), 0);
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), NULL);
    h_assert_seqs(&h, a, "1,-");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);

    /* A failed history read of one peer ends the repair too. */
    user_resubscribe(&h, "alice");
    const char *peers[] = {"bob"};
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), strings(1, peers));
    publish_private(&h, "alice", "bob", "alice", 2, TS_NEW);
    fake_bus_answer(h.bus, dm_history(&h, "alice", "bob"), NULL);
    h_assert_seqs(&h, a, "1,-,2");
    /* No peers at all. */
    user_resubscribe(&h, "alice");
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), fake_reply_array(0));
    publish_private(&h, "alice", "bob", "alice", 3, TS_NEW);
    h_assert_seqs(&h, a, "1,-,2,3");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_user_repair_user_gone)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    user_resubscribe(&h, "alice");
    const char *peers[] = {"bob", "carol"};
    fake_bus_answer(h.bus, dms_listing(&h, "alice"), strings(2, peers));
    publish_private(&h, "alice", "bob", "alice", 7, TS_NEW); /* held */
    /* Alice's only session ends while Redis is still answering. */
    ck_assert(gw_router_detach(h.router, a->c));
    a->c = NULL;
    ck_assert_int_eq(fake_bus_refs(h.bus, user_ch(&h, "alice")), 0);
    const struct pm bob[] = {{"bob", "alice", 7, TS_NEW}};
    fake_bus_answer(h.bus, dm_history(&h, "alice", "bob"), dm_reply(7, 1, bob));
    /* A new session of alice meanwhile: a fresh record, not the old repair's. */
    struct h_client *a2 = h_attach(&h, "alice");
    ck_assert(a2->first);
    const struct pm carol[] = {{"carol", "alice", 1, TS_OLD}};
    fake_bus_answer(h.bus, dm_history(&h, "alice", "carol"), dm_reply(1, 1, carol));
    ck_assert_uint_eq(h.nlog, 0);
    publish_private(&h, "alice", "bob", "alice", 7, TS_NEW);
    h_assert_seqs(&h, a2, "7");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

TCase *user_tcase(void)
{
    TCase *tc = tcase_create("user");
    tcase_add_test(tc, test_private_dedup_per_conversation);
    tcase_add_test(tc, test_user_repair_after_resubscribe);
    tcase_add_test(tc, test_user_repair_on_gap);
    tcase_add_test(tc, test_user_repair_then_backlog_gap_reads_again);
    tcase_add_test(tc, test_user_repair_failure_releases_held);
    tcase_add_test(tc, test_user_repair_user_gone);
    return tc;
}
