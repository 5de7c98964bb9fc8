#include <stdio.h>
#include <string.h>

#include <check.h>
#include <hiredis/hiredis.h>

#include "harness.h"
#include "keys.h"
#include "router.h"
#include "tests.h"

/*
 * Recovery races: each of these failed before the router fixes that came
 * with them (a reset that skipped the new numbering, and a resubscription
 * during a repair that lost what was published in between).
 */

#define TS_NEW 4102444800000LL

static const char *room_ch(struct harness *h)
{
    static char ch[GW_KEY_MAX];
    return h_room_channel(h, "general", ch, sizeof(ch));
}

static struct fake_cmd *room_repair(struct harness *h)
{
    return fake_bus_find_eval(h->bus, "chat:room:{general}:seq");
}

/*
 * After "Redis lost its data" the room resets to Redis' current seq
 * and then skips every history entry at or below it, so messages posted to
 * the fresh Redis while this node was resubscribing (1 and 2 here) are never
 * delivered: new messages mistaken for old ones, which the reset is meant to
 * prevent.  Expected: 1, 2 (from the repair), then 3 live.
 * Where: router.c on_repair_history, `room->live_seq = current` followed by
 * `if (seq <= room->live_seq) continue;` (resetting to 0, members' last_seq
 * to 0, would replay the new epoch).
 */
START_TEST(test_seq_reset_replays_new_epoch)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, "general", 10);
    fake_bus_drop_subscriber(h.bus);
    fake_bus_confirm(h.bus, room_ch(&h));
    struct fake_cmd *repair = room_repair(&h);
    ck_assert_ptr_nonnull(repair);
    fake_bus_answer(h.bus, repair, h_room_history("general", 2, 1, 2));
    h_publish_room_msg(&h, "general", 3);
    h_assert_seqs(&h, a, "1,2,3");
    h_fini(&h);
}
END_TEST

/*
 * A (re)subscription confirmed while a repair is already in flight
 * starts no repair (start_repair returns when room->repairing), and the
 * backlog flushed after the first repair is not checked for gaps.  The
 * first repair's history may have been read before the subscriber dropped
 * again, so what was published during the second outage (3 here) is lost
 * for good, and 4 is delivered right after 2.
 * Sequence: joined at 2; subscriber reconnects -> repair R1 (Redis runs it
 * at seq 2); subscriber drops again, 3 is published, subscriber reconnects
 * (R1 still in flight); 4 arrives live; R1 answers {2, m1, m2}.
 * Expected: 3 is delivered once, before or after 4 (a second repair, issued
 * at the second confirmation or when R1 ends).
 * Where: router.c start_repair / gw_router_on_subscribed / on_repair_history.
 * The user side (start_user_repair, u->repairing) has the same shape.
 */
START_TEST(test_resubscribe_during_repair_reads_again)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, "general", 2);
    fake_bus_drop_subscriber(h.bus);
    fake_bus_confirm(h.bus, room_ch(&h));
    struct fake_cmd *r1 = room_repair(&h);
    ck_assert_ptr_nonnull(r1);
    fake_bus_drop_subscriber(h.bus); /* 3 is published now and lost */
    fake_bus_confirm(h.bus, room_ch(&h));
    h_publish_room_msg(&h, "general", 4);
    fake_bus_answer(h.bus, r1, h_room_history("general", 2, 1, 2));
    /* Whatever repair the router issues now sees 3 and 4. */
    for (int i = 0; i < 4 && room_repair(&h); i++)
        fake_bus_answer(h.bus, room_repair(&h), h_room_history("general", 4, 1, 4));
    char buf[64];
    const char *seqs = h_seqs(&h, a, buf, sizeof(buf));
    ck_assert_msg(strcmp(seqs, "3,4") == 0 || strcmp(seqs, "4,3") == 0,
                  "alice got \"%s\", expected 3 and 4 once each", seqs);
    h_fini(&h);
}
END_TEST

/* The same on the user side: the same race on the user channel loses a private
 * message.  Where: router_user.c start_user_repair (returns while
 * u->repairing). */
START_TEST(test_user_resubscribe_during_repair_reads_again)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    char uch[GW_KEY_MAX], msg[512], dms[GW_KEY_MAX], seq_key[GW_KEY_MAX];
    h_user_channel(&h, "alice", uch, sizeof(uch));
    ck_assert_ptr_nonnull(gw_key_user(dms, sizeof(dms), h.prefix, "alice", "dms"));
    ck_assert_ptr_nonnull(gw_key_dm(seq_key, sizeof(seq_key), h.prefix, "alice", "bob", "seq"));
    h_publish(&h, uch, h_private_msg(msg, sizeof(msg), "bob", "alice", 1, TS_NEW));

    fake_bus_drop_subscriber(h.bus);
    fake_bus_confirm(h.bus, uch);
    redisReply *peers = fake_reply_array(1);
    peers->element[0] = fake_reply_str("bob");
    fake_bus_answer(h.bus, fake_bus_find(h.bus, "SMEMBERS", dms), peers);
    struct fake_cmd *hist = fake_bus_find_eval(h.bus, seq_key);
    ck_assert_ptr_nonnull(hist);
    fake_bus_drop_subscriber(h.bus); /* bob's 2 is published now and lost */
    fake_bus_confirm(h.bus, uch);
    h_publish(&h, uch, h_private_msg(msg, sizeof(msg), "bob", "alice", 3, TS_NEW));
    redisReply *r1 = fake_reply_array(2);
    r1->element[0] = fake_reply_int(1);
    r1->element[1] = fake_reply_str(h_private_msg(msg, sizeof(msg), "bob", "alice", 1, TS_NEW));
    fake_bus_answer(h.bus, hist, r1);
    /* Whatever repair the router issues now sees 1..3. */
    for (int i = 0; i < 8 && fake_bus_pending(h.bus) > 0; i++) {
        struct fake_cmd *c = fake_bus_find(h.bus, "SMEMBERS", dms);
        if (c) {
            redisReply *p = fake_reply_array(1);
            p->element[0] = fake_reply_str("bob");
            fake_bus_answer(h.bus, c, p);
            continue;
        }
        c = fake_bus_find_eval(h.bus, seq_key);
        if (!c)
            break;
        redisReply *r = fake_reply_array(4);
        r->element[0] = fake_reply_int(3);
        for (int k = 1; k <= 3; k++)
            r->element[k] =
                fake_reply_str(h_private_msg(msg, sizeof(msg), "bob", "alice", k, TS_NEW));
        fake_bus_answer(h.bus, c, r);
    }
    char buf[64];
    const char *seqs = h_seqs(&h, a, buf, sizeof(buf));
    ck_assert_msg(strcmp(seqs, "1,2,3") == 0 || strcmp(seqs, "1,3,2") == 0,
                  "alice got \"%s\", expected 1, 2 and 3 once each", seqs);
    h_fini(&h);
}
END_TEST

/* Two tabs of one user join one room at once: the first to finish sees no
 * other joined member (so its join is announced), the second sees the first
 * (so it is not announced twice); a pending member never counts. */
START_TEST(test_two_tabs_join_at_once_presence_once)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_join j1, j2;
    h_join(&h, a1, "general", &j1);
    h_join(&h, a2, "general", &j2);
    fake_bus_confirm(h.bus, room_ch(&h));
    ck_assert_ptr_nonnull(j1.member);
    ck_assert_ptr_nonnull(j2.member);
    /* Both pending: neither counts for the other. */
    ck_assert(!gw_router_user_in_room(h.router, "alice", "general", j1.member));
    gw_router_join_done(h.router, j1.member, 0);
    ck_assert(!gw_router_user_in_room(h.router, "alice", "general", j1.member));
    gw_router_join_done(h.router, j2.member, 0);
    ck_assert(gw_router_user_in_room(h.router, "alice", "general", j2.member));
    /* The first tab leaves: not the last one; the second leaves: the last. */
    ck_assert(!gw_router_leave(h.router, j1.member));
    ck_assert(gw_router_leave(h.router, j2.member));
    h_fini(&h);
}
END_TEST

/* A private message published while the recipient's session was being set
 * up (before the node listened on its channel) is replayed by the first
 * confirmation's repair; one from long before is not this node's to replay. */
START_TEST(test_first_subscription_replays_setup_window)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = &h.clients[h.nclients++];
    a->h = &h;
    snprintf(a->who.id, sizeof(a->who.id), "alice");
    snprintf(a->who.name, sizeof(a->who.name), "alice-name");
    snprintf(a->label, sizeof(a->label), "alice#0");
    ck_assert(gw_router_attach(h.router, &a->who, a, &a->c, &a->first, NULL, NULL));
    char uch[GW_KEY_MAX], dms[GW_KEY_MAX], seq_key[GW_KEY_MAX], msg[512];
    h_user_channel(&h, "alice", uch, sizeof(uch));
    ck_assert_ptr_nonnull(gw_key_user(dms, sizeof(dms), h.prefix, "alice", "dms"));
    ck_assert_ptr_nonnull(gw_key_dm(seq_key, sizeof(seq_key), h.prefix, "alice", "bob", "seq"));
    fake_bus_confirm(h.bus, uch);
    struct fake_cmd *list = fake_bus_find(h.bus, "SMEMBERS", dms);
    ck_assert_ptr_nonnull(list);
    redisReply *peers = fake_reply_array(1);
    peers->element[0] = fake_reply_str("bob");
    fake_bus_answer(h.bus, list, peers);
    struct fake_cmd *hist = fake_bus_find_eval(h.bus, seq_key);
    ck_assert_ptr_nonnull(hist);
    redisReply *r = fake_reply_array(3);
    r->element[0] = fake_reply_int(2);
    r->element[1] = fake_reply_str(h_private_msg(msg, sizeof(msg), "bob", "alice", 1, 1000));
    r->element[2] = fake_reply_str(h_private_msg(msg, sizeof(msg), "bob", "alice", 2, TS_NEW));
    fake_bus_answer(h.bus, hist, r);
    h_assert_seqs(&h, a, "2");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

TCase *recovery_tcase(void)
{
    TCase *tc = tcase_create("recovery");
    tcase_add_test(tc, test_two_tabs_join_at_once_presence_once);
    tcase_add_test(tc, test_first_subscription_replays_setup_window);
    tcase_add_test(tc, test_seq_reset_replays_new_epoch);
    tcase_add_test(tc, test_resubscribe_during_repair_reads_again);
    tcase_add_test(tc, test_user_resubscribe_during_repair_reads_again);
    return tc;
}
