/*
 * --redis redis-sentinel://...: one master, one replica, one sentinel.  The
 * gateways (--durability replica) find the master through the sentinel; a
 * failover (SENTINEL FAILOVER, the replica promoted) is announced as
 * +switch-master and both gateways move to the new master: posting works
 * again, every acked message is in the new master's history with its acked
 * seq, and reaches the room's members.
 *
 * Without --durability replica this does not hold, and is not asserted: the
 * sentinel names the new master before it announces the switch, and a message
 * written to the old master in between is acked, then lost when the old
 * master is made a replica (the router sees the seq go back and starts over,
 * as when Redis loses its data).  With it, such a write is never acked: WAIT
 * finds no replica (the old one was promoted), the client gets unavailable
 * and resends, and the resend lands on the new master.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_sentinel_failover)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[2];
    struct tc *all[2];
    struct h_proc replica = {0}, sentinel = {0};
    char url[96], newport[16];

    ck_assert_int_eq(h_cluster_init(cl), 0);
    ck_assert_int_eq(h_redis_replica_start(cl, &replica), 0);
    ck_assert_int_eq(h_sentinel_start(cl, &sentinel, "chatmaster", replica.port), 0);
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/chatmaster", sentinel.port);
    const char *args[] = {
        "--redis", url, "--rate", "500/500", "--durability", "replica", "--durability-timeout",
        "300",     NULL};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(h_cluster_add_gateway(cl, args), i);
    ct_team(cl, "sen_", 2, "sen", u, all);
    ck_assert_int_eq(ct_post(all[0], "sen", "s1", "one"), 1);
    ck_assert_int_eq(ct_post(all[1], "sen", "s2", "two"), 2);

    /* The sentinel must know the replica before it can promote it. */
    snprintf(newport, sizeof(newport), "%d", replica.port);
    for (int i = 0; i < 100 && !ct_sentinel_replica_ready(sentinel.port); i++)
        h_loop_for(cl->base, 100);
    bool failed_over = false;
    for (int i = 0; i < 100 && !failed_over; i++) {
        failed_over = ct_sentinel_says(sentinel.port, "FAILOVER", "OK");
        if (!failed_over)
            h_loop_for(cl->base, 200);
    }
    ck_assert_msg(failed_over, "SENTINEL FAILOVER refused");
    bool switched = false;
    for (int i = 0; i < 100 && !switched; i++) {
        switched = ct_sentinel_says(sentinel.port, "get-master-addr-by-name", newport);
        if (!switched)
            h_loop_for(cl->base, 200);
    }
    ck_assert_msg(switched, "the sentinel did not switch to the replica");

    ck_assert_int_eq(ct_post_until_acked(all[0], "sen", "s3", "x", 10000), 3);
    ck_assert_int_eq(ct_post_until_acked(all[1], "sen", "s4", "x", 10000), 4);

    /* The new master holds exactly what was acked, in order. */
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", replica.port, tv);
    ck_assert(rc && rc->err == 0);
    redisReply *hist = redisCommand(rc, "LRANGE chat:room:{sen}:history 0 -1");
    ck_assert(hist && hist->type == REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(hist->elements, 4);
    for (size_t k = 0; k < 4; k++) {
        char want[48];
        snprintf(want, sizeof(want), "\"seq\":%zu,", k + 1);
        ck_assert_msg(strstr(hist->element[k]->str, want), "history[%zu]: %s", k,
                      hist->element[k]->str);
        snprintf(want, sizeof(want), "\"id\":\"s%zu\"", k + 1);
        ck_assert_msg(strstr(hist->element[k]->str, want), "history[%zu]: %s", k,
                      hist->element[k]->str);
    }
    freeReplyObject(hist);
    redisFree(rc);
    /* The last one reached both members (before it, a seq reset may have replayed). */
    for (int i = 0; i < 2; i++) {
        bool seen = false;
        for (int w = 0; w < 40 && !seen; w++) {
            json_t *msgs = ct_take(all[i], "message", "sen");
            size_t k;
            json_t *m;
            json_array_foreach(msgs, k, m)
            {
                if (ct_json_int(m, "seq") == 4 && strcmp(ct_json_str(m, "id"), "s4") == 0)
                    seen = true;
            }
            json_decref(msgs);
            if (!seen)
                h_loop_for(cl->base, 100);
        }
        ck_assert_msg(seen, "member %d never got s4", i);
    }
    ck_assert(h_log_has(cl->gw[0].log_path, "redis_sentinel_master"));
    ct_team_free(2, u, all);
    h_proc_stop(&sentinel, 5000);
    h_proc_stop(&replica, 5000);
}
END_TEST

TCase *sentinel_tcase(void)
{
    TCase *tc = tcase_create("sentinel");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sentinel_failover);
    return tc;
}
