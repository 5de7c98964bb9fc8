/*
 * The Redis layout of PROTOCOL.md section 5, read with a plain Redis client
 * the way an operator would: key names and types, expiry scores, the nick
 * and node keys, channel subscriptions following local interest, --prefix.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const char *const fast_args[] = {"--rate", "500/500", NULL};

static long long wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void assert_type(redisContext *rc, const char *key, const char *type)
{
    redisReply *r = ct_redis_cmd(rc, "TYPE %s", key);

    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS && strcmp(r->str, type) == 0,
                  "TYPE %s is %s, wanted %s", key, r->str ? r->str : "?", type);
    freeReplyObject(r);
}

/* The score of member in a sorted set: an expiry in ms, in the future. */
static void assert_expiry_score(redisContext *rc, const char *key, const char *member)
{
    redisReply *r = ct_redis_cmd(rc, "ZSCORE %s %s", key, member);
    long long now = wall_ms(), score;

    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_STRING, "%s has no member %s", key, member);
    score = atoll(r->str);
    ck_assert_msg(score > now && score < now + 3600 * 1000LL,
                  "%s %s: score %lld is not an expiry in ms (now %lld)", key, member, score, now);
    freeReplyObject(r);
}

/* Nodes subscribed to channel.  On several masters a room's or a user's
 * channel is sharded: counted on the master of its slot. */
static long long numsub(redisContext *rc, const char *channel)
{
    if (h_redis_masters() > 1 && (strstr(channel, "room:{") || strstr(channel, "user:{")))
        return ct_shard_subscribers(ct_slot_owner(rc->tcp.port, channel), channel);
    redisReply *r = redisCommand(rc, "PUBSUB NUMSUB %s", channel);
    long long n = -1;

    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        n = r->element[1]->integer;
    if (r)
        freeReplyObject(r);
    return n;
}

START_TEST(test_redis_layout)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta, *tb;
    redisContext *rc;
    redisReply *r;
    json_t *j;
    char key[200], ch[200];
    const char *lo, *hi;

    ct_cluster_start(cl, 2, fast_args);
    rc = ct_redis(cl);
    ct_login(cl, 0, "Layout_A", &a);
    ct_login(cl, 1, "layout_b", &b);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);
    json_decref(ct_join(ta, "general", -1));
    json_decref(ct_join(tb, "lay", -1));
    ct_post(ta, "general", "g1", "hello");
    ct_send(ta,
            "{\"type\":\"private\",\"id\":\"p\",\"to\":\"%s\",\"kind\":\"text\",\"body\":\"dm\"}",
            b.id);
    json_decref(ct_expect(ta, "p", "ack"));

    assert_type(rc, "chat:rooms", "hash");
    for (int i = 0; i < 4; i++) {
        static const char *const rooms[] = {"general", "random", "tech", "lay"};

        r = ct_redis_cmd(rc, "HGET chat:rooms %s", rooms[i]);
        ck_assert_msg(r && r->type == REDIS_REPLY_STRING, "chat:rooms has no %s", rooms[i]);
        j = json_loads(r->str, 0, NULL);
        ck_assert_msg(j && json_object_get(j, "topic") && json_object_get(j, "created_by") &&
                          json_object_get(j, "created_at"),
                      "chat:rooms %s: %s", rooms[i], r->str);
        json_decref(j);
        freeReplyObject(r);
    }
    assert_type(rc, "chat:room:{general}:history", "list");
    assert_type(rc, "chat:room:{general}:seq", "string");
    ck_assert_int_eq(ct_redis_int(rc, "GET chat:room:{general}:seq"), 1);
    assert_type(rc, "chat:room:{general}:members", "zset");
    assert_expiry_score(rc, "chat:room:{general}:members", a.id);
    assert_expiry_score(rc, "chat:room:{lay}:members", b.id);
    assert_type(rc, "chat:online", "zset");
    assert_expiry_score(rc, "chat:online", a.id);
    assert_expiry_score(rc, "chat:online", b.id);

    lo = strcmp(a.id, b.id) < 0 ? a.id : b.id;
    hi = lo == a.id ? b.id : a.id;
    snprintf(key, sizeof(key), "chat:dm:{%s:%s}:history", lo, hi);
    assert_type(rc, key, "list");
    snprintf(key, sizeof(key), "chat:dm:{%s:%s}:seq", lo, hi);
    assert_type(rc, key, "string");
    ck_assert_int_eq(ct_redis_int(rc, "GET %s", key), 1);

    snprintf(key, sizeof(key), "chat:user:{%s}", a.id);
    assert_type(rc, key, "hash");
    r = ct_redis_cmd(rc, "HGET %s name", key);
    ck_assert_msg(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "Layout_A") == 0, "%s name",
                  key);
    freeReplyObject(r);
    ck_assert_int_eq(ct_redis_int(rc, "HEXISTS %s last_seen", key), 1);

    r = ct_redis_cmd(rc, "GET chat:nick:{layout_a}");
    ck_assert_msg(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, a.id) == 0,
                  "chat:nick:{layout_a} does not hold a's id");
    freeReplyObject(r);
    {
        long long ttl = ct_redis_int(rc, "TTL chat:nick:{layout_a}");

        ck_assert_msg(ttl > 0 && ttl <= 24 * 3600, "nick TTL %lld", ttl);
    }
    for (int i = 0; i < 2; i++) {
        long long ttl = ct_redis_int(rc, "TTL chat:node:{gw%d}", i + 1);

        assert_type(rc, i == 0 ? "chat:node:{gw1}" : "chat:node:{gw2}", "string");
        ck_assert_msg(ttl > 0, "chat:node:{gw%d} has no TTL (%lld)", i + 1, ttl);
    }

    /* channels follow local interest */
    ck_assert_int_eq(numsub(rc, "chat:all"), 2);
    ck_assert_int_eq(numsub(rc, "chat:room:{general}"), 1);
    ck_assert_int_eq(numsub(rc, "chat:room:{lay}"), 1);
    snprintf(ch, sizeof(ch), "chat:user:{%s}", a.id);
    ck_assert_int_eq(numsub(rc, ch), 1);
    json_decref(ct_join(tb, "general", -1));
    ck_assert_int_eq(numsub(rc, "chat:room:{general}"), 2);
    ct_send(tb, "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"general\"}");
    json_decref(ct_expect(tb, "l", "left"));
    h_loop_for(cl->base, 300);
    ck_assert_int_eq(numsub(rc, "chat:room:{general}"), 1);
    tc_free(ta);
    h_loop_for(cl->base, 500);
    ck_assert_msg(numsub(rc, "chat:room:{general}") == 0,
                  "gw1 still subscribed to a room it has no member of");
    ck_assert_msg(numsub(rc, ch) == 0, "gw1 still subscribed to a user it has no connection of");
    r = ct_redis_cmd(rc, "ZSCORE chat:online %s", a.id);
    ck_assert_msg(r && r->type == REDIS_REPLY_NIL, "a still in chat:online after closing");
    freeReplyObject(r);

    redisFree(rc);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

START_TEST(test_prefix)
{
    struct h_cluster *cl = ct_fixture();
    static const char *const prefix_args[] = {"--rate", "500/500", "--prefix", "t1:", NULL};
    struct ct_user u[2];
    struct tc *t[2];
    redisContext *rc;
    redisReply *r;

    ct_cluster_start(cl, 2, prefix_args);
    rc = ct_redis(cl);
    ct_team(cl, "prefix", 2, "pre", u, t);
    ck_assert_int_gt(ct_post(t[0], "pre", "m", "x"), 0);
    ck_assert(ct_wait_count(&t[1], 1, "message", "pre", 1, CT_WAIT_MS));
    r = redisCommand(rc, "KEYS *");
    ck_assert_ptr_nonnull(r);
    ck_assert_int_gt(r->elements, 0);
    for (size_t i = 0; i < r->elements; i++)
        ck_assert_msg(strncmp(r->element[i]->str, "t1:", 3) == 0, "key %s without the prefix",
                      r->element[i]->str);
    freeReplyObject(r);
    ck_assert_int_eq(ct_redis_int(rc, "LLEN t1:room:{pre}:history"), 1);
    ck_assert_int_eq(numsub(rc, "t1:all"), 2);
    ck_assert_int_eq(numsub(rc, "t1:room:{pre}"), 2);
    redisFree(rc);
    ct_team_free(2, u, t);
}
END_TEST

TCase *layout_tcase(void)
{
    TCase *tc = tcase_create("layout");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_add_test(tc, test_redis_layout);
    tcase_add_test(tc, test_prefix);
    return tc;
}
