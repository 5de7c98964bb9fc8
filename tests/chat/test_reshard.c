/*
 * A live reshard of the slot holding a busy room, on three masters
 * (CHAT_TEST_REDIS_CLUSTER=3): the slot is migrated the way redis-cli
 * --cluster reshard does it (SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys,
 * SETSLOT NODE), with messages posted before, during (the source answers
 * ASK) and after (it answers MOVED).  Every message is acked with the next
 * seq and reaches every member once, in order, and history holds them all.
 * (Before: the master serves it; during: TRYAGAIN and ASK; after: MOVED.)
 * The room's sharded subscriptions follow the slot: the old owner ends them,
 * the gateways subscribe on the new one and repair what they missed.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fast_args[] = {"--rate", "500/500", NULL};

/* The reply of a command that must not fail (freed here; its integer or 0). */
static long long must(redisContext *rc, redisReply *r, const char *what)
{
    long long v = 0;

    ck_assert_msg(r != NULL, "%s: %s", what, rc->errstr);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR, "%s: %s", what, r->str);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    freeReplyObject(r);
    return v;
}

static void node_id(redisContext *rc, char *id, size_t len)
{
    redisReply *r = redisCommand(rc, "CLUSTER MYID");

    ck_assert(r && r->type == REDIS_REPLY_STRING && r->len < len);
    memcpy(id, r->str, r->len + 1);
    freeReplyObject(r);
}

/* Moves every key of slot from src to dst (the slot is MIGRATING/IMPORTING). */
static void migrate_keys(redisContext *src, int dst_port, long long slot)
{
    for (;;) {
        redisReply *keys = redisCommand(src, "CLUSTER GETKEYSINSLOT %lld 100", slot);
        ck_assert(keys && keys->type == REDIS_REPLY_ARRAY);
        if (keys->elements == 0) {
            freeReplyObject(keys);
            return;
        }
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *r = redisCommand(src, "MIGRATE 127.0.0.1 %d %s 0 5000", dst_port,
                                         keys->element[i]->str);
            must(src, r, "MIGRATE");
        }
        freeReplyObject(keys);
    }
}

START_TEST(test_reshard_busy_room)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[4];
    struct tc *all[4];
    int ports[3];

    ct_cluster_start(cl, 2, fast_args);
    ct_team(cl, "rsh_", 4, "busy", u, all);
    ports[0] = cl->redis.port;
    ports[1] = cl->redis_more[0].port;
    ports[2] = cl->redis_more[1].port;

    ck_assert_int_eq(ct_post(all[0], "busy", "b1", "before 1"), 1);
    ck_assert_int_eq(ct_post(all[1], "busy", "b2", "before 2"), 2);

    /* Who serves the room's slot, and a master to move it to. */
    redisContext *any = ct_redis_at(ports[0]);
    long long slot =
        must(any, redisCommand(any, "CLUSTER KEYSLOT chat:room:{busy}:seq"), "KEYSLOT");
    redisFree(any);
    int src_port = ct_slot_owner(ports[0], "chat:room:{busy}");
    int dst_port = src_port == ports[0] ? ports[1] : ports[0];
    redisContext *src = ct_redis_at(src_port), *dst = ct_redis_at(dst_port);
    char src_id[64], dst_id[64];
    node_id(src, src_id, sizeof(src_id));
    node_id(dst, dst_id, sizeof(dst_id));

    must(dst, redisCommand(dst, "CLUSTER SETSLOT %lld IMPORTING %s", slot, src_id), "IMPORTING");
    must(src, redisCommand(src, "CLUSTER SETSLOT %lld MIGRATING %s", slot, dst_id), "MIGRATING");
    /* A new message needs a key that exists nowhere yet (its idempotency key):
     * while the slot migrates Redis answers TRYAGAIN (or ASK, then TRYAGAIN
     * from the target), and the gateway sends it again until the slot is
     * settled. */
    ct_send(all[2], "{\"type\":\"message\",\"room\":\"busy\",\"kind\":\"text\","
                    "\"body\":\"during 1\",\"id\":\"d1\"}");
    h_loop_for(cl->base, 150);
    migrate_keys(src, dst_port, slot);
    /* Every key on the target, the slot still migrating: the source answers
     * ASK, and what needs only existing keys runs on the target (ASKING). A
     * resend of b1 finds its first ack there; history is read there. */
    ck_assert_int_eq(ct_post(all[0], "busy", "b1", "before 1"), 1);
    ct_send(all[1], "{\"type\":\"history\",\"room\":\"busy\",\"id\":\"h1\"}");
    json_t *hist = ct_expect(all[1], "h1", "history");
    ct_assert_seqs(json_object_get(hist, "messages"), 1, 2, "history while migrating");
    json_decref(hist);
    for (int i = 0; i < 3; i++) {
        redisContext *rc = ct_redis_at(ports[i]);
        must(rc, redisCommand(rc, "CLUSTER SETSLOT %lld NODE %s", slot, dst_id), "SETSLOT NODE");
        redisFree(rc);
    }
    /* The source told each gateway its subscription ended (an unasked
     * sunsubscribe): both subscribe again on the new owner. */
    bool moved = false;
    for (int waited = 0; !moved && waited < CT_WAIT_MS; waited += 100) {
        moved = ct_shard_subscribers(dst_port, "chat:room:{busy}") == 2 &&
                ct_shard_subscribers(src_port, "chat:room:{busy}") == 0;
        if (!moved)
            h_loop_for(cl->base, 100);
    }
    ck_assert_msg(moved, "room channel subscribers: %lld on the new owner, %lld on the old",
                  ct_shard_subscribers(dst_port, "chat:room:{busy}"),
                  ct_shard_subscribers(src_port, "chat:room:{busy}"));
    json_t *ack = ct_expect(all[2], "d1", "ack");
    ck_assert_int_eq(ct_json_int(ack, "seq"), 3);
    json_decref(ack);
    /* The target owns it: the source answers MOVED until the gateways' map says so. */
    ck_assert_int_eq(ct_post(all[3], "busy", "a1", "after 1"), 4);
    ck_assert_int_eq(ct_post(all[1], "busy", "a2", "after 2"), 5);

    ck_assert_msg(ct_wait_count(all, 4, "message", "busy", 5, CT_WAIT_MS),
                  "reshard: %zu %zu %zu %zu of 5 delivered", ct_count(all[0], "message", "busy"),
                  ct_count(all[1], "message", "busy"), ct_count(all[2], "message", "busy"),
                  ct_count(all[3], "message", "busy"));
    h_loop_for(cl->base, 300);
    for (int i = 0; i < 4; i++) {
        json_t *msgs = ct_take(all[i], "message", "busy");
        ct_assert_seqs(msgs, 1, 5, "reshard");
        json_decref(msgs);
    }
    ck_assert_int_eq(ct_redis_int(src, "LLEN chat:room:{busy}:history"), 5);
    redisFree(src);
    redisFree(dst);
    ct_team_free(4, u, all);
}
END_TEST

TCase *reshard_tcase(void)
{
    TCase *tc = tcase_create("reshard");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_reshard_busy_room);
    return tc;
}
