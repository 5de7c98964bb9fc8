/*
 * --durability replica (one Redis and one replica): a message is acked once
 * WAIT confirms the replica has it; with the replica gone the sender gets
 * error unavailable instead, and resending the same id once it is back
 * answers the first ack, without a second copy.
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

    /* No replica: stored on the master, but not acked. */
    h_proc_stop(&replica, 5000);
    ct_send(all[0], "{\"type\":\"message\",\"room\":\"dur\",\"kind\":\"text\",\"body\":\"three\","
                    "\"id\":\"m3\"}");
    ct_expect_error(all[0], "m3", "unavailable");

    /* The replica is back (a full resync): the resend answers the first seq. */
    ck_assert_int_eq(h_redis_replica_start(cl, &replica), 0);
    ck_assert_int_eq(ct_post(all[0], "dur", "m3", "three"), 3);
    ck_assert_int_eq(ct_post(all[1], "dur", "m4", "four"), 4);
    ck_assert_msg(ct_wait_count(all, 2, "message", "dur", 4, CT_WAIT_MS), "not all delivered");
    h_loop_for(cl->base, 300);
    for (int i = 0; i < 2; i++) {
        json_t *msgs = ct_take(all[i], "message", "dur");
        ct_assert_seqs(msgs, 1, 4, "durability");
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
