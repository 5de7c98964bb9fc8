/*
 * --durability replica (one Redis and one replica): a message is acked once
 * WAIT confirms the replica has it; with the replica gone the sender gets
 * error unavailable instead, and resending the same id once it is back
 * answers the first ack, without a second copy.  Nor is a message delivered
 * live before WAIT confirms it: a failover could still lose it, and members
 * would have seen a message that is gone and its seq used again.  One that
 * was stored but not confirmed is delivered when the resend of its id is.
 */
#include "chat_tests.h"

#include <stdlib.h>

static const char *const replica_args[] = {"--durability", "replica", "--durability-timeout", "300",
                                           NULL};

START_TEST(test_ack_waits_for_a_replica)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[2];
    struct tc *all[2];
    struct h_proc replica = {0};

    ct_cluster_start(cl, 2, replica_args);
    ck_assert_int_eq(h_redis_replica_start(cl, &replica), 0);
    ct_team(cl, "dur_", 2, "dur", u, all);
    ck_assert_int_eq(ct_post(all[0], "dur", "m1", "one"), 1);
    ck_assert_int_eq(ct_post(all[1], "dur", "m2", "two"), 2);
    ck_assert_msg(ct_wait_count(all, 2, "message", "dur", 2, CT_WAIT_MS), "1-2 not delivered");
    for (int i = 0; i < 2; i++) {
        json_t *msgs = ct_take(all[i], "message", "dur");
        ct_assert_seqs(msgs, 1, 2, "durability, before");
        json_decref(msgs);
    }

    /* No replica: stored on the master, but not acked, and not delivered. */
    h_proc_stop(&replica, 5000);
    ct_send(all[0], "{\"type\":\"message\",\"room\":\"dur\",\"kind\":\"text\",\"body\":\"three\","
                    "\"id\":\"m3\"}");
    ct_expect_error(all[0], "m3", "unavailable");
    h_loop_for(cl->base, 700);
    for (int i = 0; i < 2; i++) {
        json_t *msgs = ct_take(all[i], "message", "dur");
        ck_assert_msg(json_array_size(msgs) == 0,
                      "client %d got %zu message(s) live that no replica confirmed", i,
                      json_array_size(msgs));
        json_decref(msgs);
    }

    /* The replica is back (a full resync): the resend answers the first seq
     * and delivers it, before the next message. */
    ck_assert_int_eq(h_redis_replica_start(cl, &replica), 0);
    ck_assert_int_eq(ct_post(all[0], "dur", "m3", "three"), 3);
    ck_assert_int_eq(ct_post(all[1], "dur", "m4", "four"), 4);
    ck_assert_msg(ct_wait_count(all, 2, "message", "dur", 2, CT_WAIT_MS), "3-4 not delivered");
    h_loop_for(cl->base, 300);
    for (int i = 0; i < 2; i++) {
        json_t *msgs = ct_take(all[i], "message", "dur");
        ct_assert_seqs(msgs, 3, 2, "durability, after");
        json_decref(msgs);
    }
    h_proc_stop(&replica, 5000);
    ct_team_free(2, u, all);
}
END_TEST

TCase *durability_tcase(void)
{
    TCase *tc = tcase_create("durability");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ack_waits_for_a_replica);
    return tc;
}
