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

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* WAIT confirms every write its connection sent before it, so posts of
 * several sessions whose scripts went out together share one (bus.c):
 * eight members of one node post ten messages each without waiting; every
 * message is acked once, at its own seq, and reaches every member once, in
 * order, with far fewer WAITs than messages. */
START_TEST(test_concurrent_posts_share_waits)
{
    enum { N_CLIENTS = 8, PER_CLIENT = 10, N = N_CLIENTS * PER_CLIENT };
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[N_CLIENTS];
    struct tc *all[N_CLIENTS];
    struct h_proc replica = {0};
    const char *const args[] = {"--durability", "replica", "--rate", "500/500", NULL};

    ct_cluster_start(cl, 1, args);
    ck_assert_int_eq(h_redis_replica_start(cl, &replica), 0);
    for (int i = 0; i < N_CLIENTS; i++) {
        char nick[16];
        snprintf(nick, sizeof(nick), "cw_%d", i);
        ct_login(cl, 0, nick, &u[i]);
        all[i] = ct_connect(cl, 0, &u[i]);
        json_decref(ct_join(all[i], "cw", -1));
    }
    ck_assert_int_eq(ct_post(all[0], "cw", "warm", "synced"), 1);
    redisContext *rc = ct_redis(cl);
    freeReplyObject(ct_redis_cmd(rc, "CONFIG RESETSTAT"));
    for (int k = 0; k < PER_CLIENT; k++)
        for (int i = 0; i < N_CLIENTS; i++)
            ct_send(all[i],
                    "{\"type\":\"message\",\"room\":\"cw\",\"kind\":\"text\",\"body\":\"x\","
                    "\"id\":\"c%d-%d\"}",
                    i, k);
    bool seen[N + 2] = {false};
    for (int i = 0; i < N_CLIENTS; i++) {
        for (int k = 0; k < PER_CLIENT; k++) {
            char id[16];
            snprintf(id, sizeof(id), "c%d-%d", i, k);
            json_t *r = ct_expect(all[i], id, "ack");
            long long seq = ct_json_int(r, "seq");
            json_decref(r);
            ck_assert_msg(seq >= 2 && seq <= N + 1 && !seen[seq], "%s: seq %lld", id, seq);
            seen[seq] = true;
        }
    }
    redisReply *info = ct_redis_cmd(rc, "INFO commandstats");
    const char *at = info && info->str ? strstr(info->str, "cmdstat_wait:calls=") : NULL;
    long waits = at ? strtol(at + strlen("cmdstat_wait:calls="), NULL, 10) : -1;
    freeReplyObject(info);
    redisFree(rc);
    fprintf(stderr, "%d concurrent posts, %ld WAITs\n", N, waits);
    ck_assert_msg(waits > 0 && waits <= N / 2, "%ld WAITs for %d posts", waits, N);
    ck_assert(ct_wait_count(all, N_CLIENTS, "message", "cw", N + 1, CT_WAIT_MS));
    h_loop_for(cl->base, 300);
    for (int i = 0; i < N_CLIENTS; i++) {
        json_t *msgs = ct_take(all[i], "message", "cw");
        ct_assert_seqs(msgs, 1, N + 1, "concurrent posts");
        json_decref(msgs);
    }
    h_proc_stop(&replica, 5000);
    ct_team_free(N_CLIENTS, u, all);
}
END_TEST

TCase *durability_tcase(void)
{
    TCase *tc = tcase_create("durability");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ack_waits_for_a_replica);
    tcase_add_test(tc, test_concurrent_posts_share_waits);
    return tc;
}
