/* presence_add.lua, presence_remove.lua, presence_expired.lua, presence_reap.lua and
 * presence_online.lua.  Every script's keys share one hash slot, as in the gateway's
 * layout (gateway/keys.h), so the suite also passes against Redis Cluster. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define MEMBERS "t:room:{general}:members"
#define HOLDER "t:room:{general}:holders:u1"
#define USERS "t:room:{general}:users"
#define CHAN "t:room:{general}"
#define U1 "{\"id\":\"u1\",\"name\":\"Al\",\"avatar\":null}"
#define JOIN                                                                                       \
    "{\"type\":\"presence\",\"room\":\"general\",\"event\":\"join\",\"user\":{\"id\":\"u1\"}}"
#define LEAVE                                                                                      \
    "{\"type\":\"presence\",\"room\":\"general\",\"event\":\"leave\",\"user\":{\"id\":\"u1\"}}"

#define ONLINE "t:online"
#define ONLINE_USERS "t:online:users{t:online}"
#define ONLINE_H1 "t:online:nodes:u1{t:online}"
#define ONLINE_H2 "t:online:nodes:u2{t:online}"
#define ONLINE_H3 "t:online:nodes:u3{t:online}"
#define ALL "t:all"
#define OFF_HEAD "{\"type\":\"offline\",\"user\":"
#define OFF_TAIL "}"

static redisReply *add(redisContext *c, const char *node, long long expiry, long long now)
{
    char e[24], n[24];

    return EVAL(c, "presence_add", 3, MEMBERS, HOLDER, USERS, "u1", node, lua_test_itoa(e, expiry),
                lua_test_itoa(n, now), CHAN, JOIN, U1, "PUBLISH");
}

static redisReply *remove_node(redisContext *c, const char *node, long long now)
{
    char n[24];

    return EVAL(c, "presence_remove", 3, MEMBERS, HOLDER, USERS, "u1", node, lua_test_itoa(n, now),
                CHAN, LEAVE, "PUBLISH");
}

/* Reaps u1, u2 and u3 of the online set (whichever of them expired). */
static redisReply *reap(redisContext *c, long long now)
{
    char n[24];

    return EVAL(c, "presence_reap", 5, ONLINE, ONLINE_USERS, ONLINE_H1, ONLINE_H2, ONLINE_H3,
                lua_test_itoa(n, now), ALL, OFF_HEAD, OFF_TAIL, "PUBLISH", "u1", "u2", "u3");
}

START_TEST(join_once_leave_with_the_last_node)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    long long now = lua_test_now_ms();
    long long exp = now + 30000;
    redisReply *r;

    EXPECT_INTS(add(c, "n1", exp, now), 1, 1);
    lua_test_expect_message(sub, CHAN, JOIN);
    lua_test_expect_str(CMD(c, "HGET", USERS, "u1"), U1);
    lua_test_expect_score(c, MEMBERS, "u1", exp);
    lua_test_expect_score(c, HOLDER, "n1", exp);
    r = CMD(c, "PTTL", HOLDER);
    ck_assert_int_gt(r->integer, 85000);
    ck_assert_int_le(r->integer, 90000);
    freeReplyObject(r);

    /* A second node, then a refresh: present already, no second join. */
    EXPECT_INTS(add(c, "n2", exp + 1000, now), 0, 1);
    lua_test_expect_score(c, MEMBERS, "u1", exp + 1000);
    EXPECT_INTS(add(c, "n1", exp, now), 0, 1);
    lua_test_expect_score(c, MEMBERS, "u1", exp + 1000); /* GT: a refresh never shortens it */
    lua_test_expect_int(CMD(c, "ZCARD", HOLDER), 2);
    lua_test_expect_quiet(c, sub, CHAN);

    /* The first node leaves: n2 still holds the user. */
    EXPECT_INTS(remove_node(c, "n1", now), 0, 1);
    lua_test_expect_score(c, MEMBERS, "u1", exp + 1000);
    lua_test_expect_int(CMD(c, "ZCARD", HOLDER), 1);
    lua_test_expect_quiet(c, sub, CHAN);

    /* The last node leaves: one leave, keys cleaned. */
    EXPECT_INTS(remove_node(c, "n2", now), 1, 0);
    lua_test_expect_message(sub, CHAN, LEAVE);
    lua_test_expect_nil(CMD(c, "ZSCORE", MEMBERS, "u1"));
    lua_test_expect_nil(CMD(c, "HGET", USERS, "u1"));
    lua_test_expect_int(CMD(c, "EXISTS", HOLDER), 0);

    /* Leaving again is a no-op. */
    EXPECT_INTS(remove_node(c, "n2", now), 0, 0);
    lua_test_expect_quiet(c, sub, CHAN);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(expired_unreaped_entry_counts_as_present)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    long long now = lua_test_now_ms();

    lua_test_zadd(c, MEMBERS, now - 1000, "u1");
    EXPECT_INTS(add(c, "n1", now + 30000, now), 0, 1);
    lua_test_expect_score(c, MEMBERS, "u1", now + 30000);
    lua_test_expect_quiet(c, sub, CHAN);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(add_drops_expired_holders)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    static const char *const want[] = {"n2"};

    lua_test_zadd(c, HOLDER, now - 5, "n1");
    EXPECT_INTS(add(c, "n2", now + 30000, now), 1, 1);
    lua_test_expect_strings(CMD(c, "ZRANGE", HOLDER, "0", "-1"), 1, want);
    redisFree(c);
}
END_TEST

START_TEST(remove_ignores_dead_nodes)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    long long now = lua_test_now_ms();

    EXPECT_INTS(add(c, "n1", now + 30000, now), 1, 1);
    lua_test_expect_message(sub, CHAN, JOIN);
    EXPECT_INTS(add(c, "n2", now + 30000, now), 0, 1);
    /* n2 died: its hold expired without a remove. */
    lua_test_expect_int(CMD(c, "ZADD", HOLDER, "XX", "1", "n2"), 0);
    EXPECT_INTS(remove_node(c, "n1", now), 1, 0);
    lua_test_expect_message(sub, CHAN, LEAVE);
    lua_test_expect_int(CMD(c, "EXISTS", HOLDER, MEMBERS, USERS), 0);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(presence_bad_arguments)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_error(EVAL(c, "presence_add", 3, MEMBERS, HOLDER, USERS, "u1", "n1", "soon",
                               "1", CHAN, JOIN, U1, "PUBLISH"));
    lua_test_expect_error(EVAL(c, "presence_add", 3, MEMBERS, HOLDER, USERS, "u1", "n1", "1", "inf",
                               CHAN, JOIN, U1, "PUBLISH"));
    lua_test_expect_error(EVAL(c, "presence_remove", 3, MEMBERS, HOLDER, USERS, "u1", "n1", "now",
                               CHAN, LEAVE, "PUBLISH"));
    lua_test_expect_error(EVAL(c, "presence_reap", 3, ONLINE, ONLINE_USERS, ONLINE_H1, "-1", ALL,
                               "", "", "PUBLISH", "u1"));
    /* One holder key per id. */
    lua_test_expect_error(EVAL(c, "presence_reap", 3, ONLINE, ONLINE_USERS, ONLINE_H1, "", ALL, "",
                               "", "PUBLISH", "u1", "u2"));
    lua_test_expect_error(EVAL(c, "presence_expired", 1, ONLINE, "", "0"));
    lua_test_expect_error(EVAL(c, "presence_expired", 1, ONLINE, "x", "10"));
    lua_test_expect_int(CMD(c, "EXISTS", MEMBERS, HOLDER, USERS), 0);
    redisFree(c);
}
END_TEST

/* {1 live entry, "u1", "u2"}: what presence_expired and presence_reap answer below. */
static void expect_live_then_u1_u2(redisReply *r)
{
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 3);
    ck_assert_int_eq(r->element[0]->integer, 1);
    ck_assert_str_eq(r->element[1]->str, "u1");
    ck_assert_str_eq(r->element[2]->str, "u2");
    freeReplyObject(r);
}

START_TEST(reap_publishes_leave_once_with_user_json)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(ALL, NULL);
    long long now = lua_test_now_ms();
    char n[24];
#define U1_JSON "{\"id\":\"u1\",\"name\":\"Al \\\"q\\\" \xc3\xa9\",\"avatar\":\"https://x/a.png\"}"

    lua_test_zadd(c, ONLINE, now - 2000, "u1");
    lua_test_zadd(c, ONLINE_H1, now - 2000, "n1");
    lua_test_expect_int(CMD(c, "HSET", ONLINE_USERS, "u1", U1_JSON), 1);
    lua_test_zadd(c, ONLINE, now - 1000, "u2"); /* no holder key, not in the user hash */
    lua_test_zadd(c, ONLINE, now + 30000, "u3");
    lua_test_zadd(c, ONLINE_H3, now + 30000, "n1");

    /* The expired ones, after the count of live entries. */
    expect_live_then_u1_u2(EVAL(c, "presence_expired", 1, ONLINE, lua_test_itoa(n, now), "10"));
    /* u3 is live: listed as a candidate by mistake, it stays. */
    expect_live_then_u1_u2(reap(c, now));
    lua_test_expect_message(sub, ALL, OFF_HEAD U1_JSON OFF_TAIL);
    lua_test_expect_message(sub, ALL,
                            OFF_HEAD "{\"id\":\"u2\",\"name\":\"u2\",\"avatar\":null}" OFF_TAIL);
    lua_test_expect_nil(CMD(c, "ZSCORE", ONLINE, "u1"));
    lua_test_expect_nil(CMD(c, "ZSCORE", ONLINE, "u2"));
    lua_test_expect_nil(CMD(c, "HGET", ONLINE_USERS, "u1"));
    lua_test_expect_score(c, ONLINE, "u3", now + 30000);
    lua_test_expect_int(CMD(c, "EXISTS", ONLINE_H1), 0);

    /* Another node reaping the same instant finds nothing left. */
    EXPECT_INTS(reap(c, now), 1);
    lua_test_expect_quiet(c, sub, ALL);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(reap_keeps_a_user_with_a_live_holder)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(ALL, NULL);
    long long now = lua_test_now_ms();
    static const char *const live[] = {"n3", "n2"};

    lua_test_zadd(c, ONLINE, now - 1000, "u1");
    lua_test_zadd(c, ONLINE_H1, now - 500, "n1");
    lua_test_zadd(c, ONLINE_H1, now + 20000, "n2");
    lua_test_zadd(c, ONLINE_H1, now + 10000, "n3");

    /* Not reaped: the entry takes the latest live expiry, the dead node goes. */
    EXPECT_INTS(reap(c, now), 1);
    lua_test_expect_score(c, ONLINE, "u1", now + 20000);
    lua_test_expect_strings(CMD(c, "ZRANGE", ONLINE_H1, "0", "-1"), 2, live);
    lua_test_expect_quiet(c, sub, ALL);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(online_check_on_redis_clock)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();

    lua_test_zadd(c, ONLINE, now + 30000, "u1");
    lua_test_zadd(c, ONLINE, now - 1000, "u2");
    lua_test_expect_int(EVAL(c, "presence_online", 1, ONLINE, "u1"), 1);
    lua_test_expect_int(EVAL(c, "presence_online", 1, ONLINE, "u2"), 0);
    lua_test_expect_int(EVAL(c, "presence_online", 1, ONLINE, "u3"), 0);
    redisFree(c);
}
END_TEST

TCase *presence_tcase(void)
{
    TCase *tc = tcase_create("presence");

    tcase_add_checked_fixture(tc, lua_test_flush, NULL);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, join_once_leave_with_the_last_node);
    tcase_add_test(tc, expired_unreaped_entry_counts_as_present);
    tcase_add_test(tc, add_drops_expired_holders);
    tcase_add_test(tc, remove_ignores_dead_nodes);
    tcase_add_test(tc, presence_bad_arguments);
    tcase_add_test(tc, reap_publishes_leave_once_with_user_json);
    tcase_add_test(tc, reap_keeps_a_user_with_a_live_holder);
    tcase_add_test(tc, online_check_on_redis_clock);
    return tc;
}
