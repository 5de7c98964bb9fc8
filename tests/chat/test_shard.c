/*
 * Sharded pub/sub on three masters (CHAT_TEST_REDIS_CLUSTER=3 or 6): a room's
 * and a user's channel are SSUBSCRIBEd by the gateways on the master that
 * owns their slot and SPUBLISHed there, so a message never reaches the other
 * masters.  Seen from outside: PUBSUB SHARDNUMSUB on the owner, a plain
 * SSUBSCRIBE client there that gets the message, and a classic SUBSCRIBE
 * client on another master that does not; and delivery across gateways,
 * leave (SUNSUBSCRIBE), private messages and /healthz still work.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOM_CH "chat:room:{shardy}"

/* Waits until the owner counts want sharded subscribers of channel. */
static bool wait_subscribers(struct h_cluster *cl, int port, const char *channel, long long want)
{
    for (int waited = 0; waited < CT_WAIT_MS; waited += 100) {
        if (ct_shard_subscribers(port, channel) == want)
            return true;
        h_loop_for(cl->base, 100);
    }
    return false;
}

/* A raw subscriber on the node at port: cmd is SUBSCRIBE or SSUBSCRIBE. */
static redisContext *listener(int port, const char *cmd, const char *channel)
{
    redisContext *rc = ct_redis_at(port);
    redisReply *r = redisCommand(rc, "%s %s", cmd, channel);
    ck_assert_msg(r && r->type == REDIS_REPLY_ARRAY, "%s on %d", cmd, port);
    freeReplyObject(r);
    return rc;
}

START_TEST(test_room_and_user_channels_are_sharded)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[2];
    struct tc *all[2];
    int ports[3];

    ct_cluster_start(cl, 2, NULL);
    ports[0] = cl->redis.port;
    ports[1] = cl->redis_more[0].port;
    ports[2] = cl->redis_more[1].port;
    /* One member per gateway. */
    ct_team(cl, "shd_", 2, "shardy", u, all);
    int owner = ct_slot_owner(ports[0], ROOM_CH);
    int other = owner == ports[0] ? ports[1] : ports[0];
    ck_assert_msg(wait_subscribers(cl, owner, ROOM_CH, 2),
                  "both gateways on the room's shard: %lld", ct_shard_subscribers(owner, ROOM_CH));
    ck_assert_int_eq(ct_shard_subscribers(other, ROOM_CH), 0);

    redisContext *sharded = listener(owner, "SSUBSCRIBE", ROOM_CH);
    redisContext *classic = listener(other, "SUBSCRIBE", ROOM_CH);
    ck_assert_int_eq(ct_post(all[0], "shardy", "s1", "on one shard"), 1);
    ck_assert_msg(ct_wait_count(all, 2, "message", "shardy", 1, CT_WAIT_MS),
                  "delivery across gateways: %zu %zu", ct_count(all[0], "message", "shardy"),
                  ct_count(all[1], "message", "shardy"));

    redisReply *m = NULL;
    ck_assert_int_eq(redisGetReply(sharded, (void **)&m), REDIS_OK);
    ck_assert(m && m->type == REDIS_REPLY_ARRAY && m->elements == 3);
    ck_assert_str_eq(m->element[0]->str, "smessage");
    ck_assert_str_eq(m->element[1]->str, ROOM_CH);
    ck_assert_ptr_nonnull(strstr(m->element[2]->str, "\"seq\":1,"));
    freeReplyObject(m);
    /* The classic subscriber on another master hears nothing (a classic
     * PUBLISH would have reached it through the cluster bus). */
    struct timeval brief = {0, 500000};
    redisSetTimeout(classic, brief);
    m = NULL;
    ck_assert_int_eq(redisGetReply(classic, (void **)&m), REDIS_ERR);
    ck_assert_ptr_null(m);
    redisFree(sharded);
    redisFree(classic);

    /* A private message between gateways goes over the recipient's shard. */
    char user_ch[128];
    snprintf(user_ch, sizeof(user_ch), "chat:user:{%s}", u[1].id);
    int user_owner = ct_slot_owner(ports[0], user_ch);
    ck_assert_msg(wait_subscribers(cl, user_owner, user_ch, 1), "user channel subscribers: %lld",
                  ct_shard_subscribers(user_owner, user_ch));
    ct_send(all[0],
            "{\"type\":\"private\",\"to\":\"%s\",\"kind\":\"text\",\"body\":\"psst\","
            "\"id\":\"p1\"}",
            u[1].id);
    json_decref(ct_expect(all[0], "p1", "ack"));
    ck_assert_msg(ct_wait_count(&all[1], 1, "private", NULL, 1, CT_WAIT_MS), "private delivered");

    /* Leaving ends the gateway's subscription (SUNSUBSCRIBE). */
    ct_send(all[1], "{\"type\":\"leave\",\"room\":\"shardy\",\"id\":\"l1\"}");
    json_decref(ct_reply(all[1], "l1", CT_WAIT_MS));
    ck_assert_msg(wait_subscribers(cl, owner, ROOM_CH, 1), "after leave: %lld",
                  ct_shard_subscribers(owner, ROOM_CH));
    /* The delivery probe covers the sharded connections too. */
    ck_assert(ct_wait_healthz(cl, 200, CT_WAIT_MS));
    (void)ports[2];
    ct_team_free(2, u, all);
}
END_TEST

/* Leave and join again in one breath, twenty times, as the only member on
 * its gateway: the gateway sends SSUBSCRIBE while its SUNSUBSCRIBE is still
 * unanswered, and must end up subscribed (the owner counts both gateways),
 * with live delivery working and nothing delivered twice. */
START_TEST(test_resubscribe_while_unsubscribing)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[2];
    struct tc *all[2];
    const char *ch = "chat:room:{resub}";
    const char *const args[] = {"--rate", "500/500", NULL};

    ct_cluster_start(cl, 2, args);
    ct_team(cl, "rsb_", 2, "resub", u, all);
    int owner = ct_slot_owner(cl->redis.port, ch);
    ck_assert(wait_subscribers(cl, owner, ch, 2));
    for (int cycle = 0; cycle < 20; cycle++) {
        char leave[16], join[16];
        snprintf(leave, sizeof(leave), "l%d", cycle);
        snprintf(join, sizeof(join), "j%d", cycle);
        ct_send(all[1], "{\"type\":\"leave\",\"room\":\"resub\",\"id\":\"%s\"}", leave);
        ct_send(all[1], "{\"type\":\"join\",\"room\":\"resub\",\"id\":\"%s\"}", join);
        json_decref(ct_expect(all[1], leave, "left"));
        json_decref(ct_expect(all[1], join, "joined"));
    }
    ck_assert_msg(wait_subscribers(cl, owner, ch, 2), "subscribers after the churn: %lld",
                  ct_shard_subscribers(owner, ch));
    ck_assert_int_eq(ct_post(all[0], "resub", "after", "still here?"), 1);
    ck_assert_msg(ct_wait_count(&all[1], 1, "message", "resub", 1, CT_WAIT_MS),
                  "no live delivery after leave/join churn");
    ck_assert_int_eq(ct_settle_count(all[1], "message", "resub", 500), 1);
    ct_team_free(2, u, all);
}
END_TEST

TCase *shard_tcase(void)
{
    TCase *tc = tcase_create("shard");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_room_and_user_channels_are_sharded);
    tcase_add_test(tc, test_resubscribe_while_unsubscribing);
    return tc;
}
