/* presence_add.lua, presence_remove.lua and presence_reap.lua. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define MEMBERS "t:room:{general}:members"
#define HOLDER "t:room:{general}:holders:u1"
#define CHAN "t:room:{general}"
#define JOIN                                                                                       \
    "{\"type\":\"presence\",\"room\":\"general\",\"event\":\"join\",\"user\":{\"id\":\"u1\"}}"
#define LEAVE                                                                                      \
    "{\"type\":\"presence\",\"room\":\"general\",\"event\":\"leave\",\"user\":{\"id\":\"u1\"}}"

#define ONLINE "t:online"
#define ALL "t:all"
#define OFF_HEAD "{\"type\":\"offline\",\"user\":"
#define OFF_TAIL "}"

static redisReply *add(redisContext *c, const char *node, long long expiry, long long now)
{
    char e[24], n[24];

    return EVAL(c, "presence_add", 2, MEMBERS, HOLDER, "u1", node, lua_test_itoa(e, expiry),
                lua_test_itoa(n, now), CHAN, JOIN);
}

static redisReply *remove_node(redisContext *c, const char *node, long long now)
{
    char n[24];

    return EVAL(c, "presence_remove", 2, MEMBERS, HOLDER, "u1", node, lua_test_itoa(n, now), CHAN,
                LEAVE);
}

static redisReply *reap(redisContext *c, long long now)
{
    char n[24];

    return EVAL(c, "presence_reap", 1, ONLINE, lua_test_itoa(n, now), "t:holders:", ":online", ALL,
                OFF_HEAD, OFF_TAIL, "t:user:{", "}");
}

START_TEST(join_once_leave_with_the_last_node)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    long long now = lua_test_now_ms();
    long long exp = now + 30000;
    redisReply *r;

    lua_test_expect_int(add(c, "n1", exp, now), 1);
    lua_test_expect_message(sub, CHAN, JOIN);
    lua_test_expect_score(c, MEMBERS, "u1", exp);
    lua_test_expect_score(c, HOLDER, "n1", exp);
    r = CMD(c, "PTTL", HOLDER);
    ck_assert_int_gt(r->integer, 85000);
    ck_assert_int_le(r->integer, 90000);
    freeReplyObject(r);

    /* A second node, then a refresh: present already, no second join. */
    lua_test_expect_int(add(c, "n2", exp + 1000, now), 0);
    lua_test_expect_score(c, MEMBERS, "u1", exp + 1000);
    lua_test_expect_int(add(c, "n1", exp, now), 0);
    lua_test_expect_score(c, MEMBERS, "u1", exp + 1000); /* GT: a refresh never shortens it */
    lua_test_expect_int(CMD(c, "ZCARD", HOLDER), 2);
    lua_test_expect_quiet(c, sub, CHAN);

    /* The first node leaves: n2 still holds the user. */
    lua_test_expect_int(remove_node(c, "n1", now), 0);
    lua_test_expect_score(c, MEMBERS, "u1", exp + 1000);
    lua_test_expect_int(CMD(c, "ZCARD", HOLDER), 1);
    lua_test_expect_quiet(c, sub, CHAN);

    /* The last node leaves: one leave, keys cleaned. */
    lua_test_expect_int(remove_node(c, "n2", now), 1);
    lua_test_expect_message(sub, CHAN, LEAVE);
    lua_test_expect_nil(CMD(c, "ZSCORE", MEMBERS, "u1"));
    lua_test_expect_int(CMD(c, "EXISTS", HOLDER), 0);

    /* Leaving again is a no-op. */
    lua_test_expect_int(remove_node(c, "n2", now), 0);
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
    lua_test_expect_int(add(c, "n1", now + 30000, now), 0);
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
    lua_test_expect_int(add(c, "n2", now + 30000, now), 1);
    lua_test_expect_strings(CMD(c, "ZRANGE", HOLDER, "0", "-1"), 1, want);
    redisFree(c);
}
END_TEST

START_TEST(remove_ignores_dead_nodes)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    long long now = lua_test_now_ms();

    lua_test_expect_int(add(c, "n1", now + 30000, now), 1);
    lua_test_expect_message(sub, CHAN, JOIN);
    lua_test_expect_int(add(c, "n2", now + 30000, now), 0);
    /* n2 died: its hold expired without a remove. */
    lua_test_expect_int(CMD(c, "ZADD", HOLDER, "XX", "1", "n2"), 0);
    lua_test_expect_int(remove_node(c, "n1", now), 1);
    lua_test_expect_message(sub, CHAN, LEAVE);
    lua_test_expect_int(CMD(c, "EXISTS", HOLDER, MEMBERS), 0);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(presence_bad_arguments)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_error(
        EVAL(c, "presence_add", 2, MEMBERS, HOLDER, "u1", "n1", "soon", "1", CHAN, JOIN));
    lua_test_expect_error(
        EVAL(c, "presence_add", 2, MEMBERS, HOLDER, "u1", "n1", "1", "inf", CHAN, JOIN));
    lua_test_expect_error(
        EVAL(c, "presence_remove", 2, MEMBERS, HOLDER, "u1", "n1", "now", CHAN, LEAVE));
    lua_test_expect_error(
        EVAL(c, "presence_reap", 1, ONLINE, "-1", "a", "b", ALL, "", "", "c", "d"));
    lua_test_expect_int(CMD(c, "EXISTS", MEMBERS, HOLDER), 0);
    redisFree(c);
}
END_TEST

START_TEST(reap_publishes_leave_once_with_user_json)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(ALL, NULL);
    long long now = lua_test_now_ms();
    static const char *const reaped[] = {"u1", "u2"};

    lua_test_zadd(c, ONLINE, now - 2000, "u1");
    lua_test_zadd(c, "t:holders:u1:online", now - 2000, "n1");
    lua_test_expect_int(
        CMD(c, "HSET", "t:user:{u1}", "name", "Al \"q\" \xc3\xa9", "avatar", "https://x/a.png"), 2);
    lua_test_zadd(c, ONLINE, now - 1000, "u2"); /* no holder key, no user hash */
    lua_test_zadd(c, ONLINE, now + 30000, "u3");
    lua_test_zadd(c, "t:holders:u3:online", now + 30000, "n1");

    lua_test_expect_strings(reap(c, now), 2, reaped);
    /* cjson escapes '/' as "\/": valid JSON for the same string. */
    lua_test_expect_message(sub, ALL,
                            OFF_HEAD "{\"id\":\"u1\",\"name\":\"Al \\\"q\\\" \xc3\xa9\","
                                     "\"avatar\":\"https:\\/\\/x\\/a.png\"}" OFF_TAIL);
    lua_test_expect_message(sub, ALL,
                            OFF_HEAD "{\"id\":\"u2\",\"name\":\"u2\",\"avatar\":null}" OFF_TAIL);
    lua_test_expect_nil(CMD(c, "ZSCORE", ONLINE, "u1"));
    lua_test_expect_nil(CMD(c, "ZSCORE", ONLINE, "u2"));
    lua_test_expect_score(c, ONLINE, "u3", now + 30000);
    lua_test_expect_int(CMD(c, "EXISTS", "t:holders:u1:online"), 0);

    /* Another node reaping the same instant finds nothing left. */
    lua_test_expect_strings(reap(c, now), 0, NULL);
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
    lua_test_zadd(c, "t:holders:u1:online", now - 500, "n1");
    lua_test_zadd(c, "t:holders:u1:online", now + 20000, "n2");
    lua_test_zadd(c, "t:holders:u1:online", now + 10000, "n3");

    /* Not reaped: the entry takes the latest live expiry, the dead node goes. */
    lua_test_expect_strings(reap(c, now), 0, NULL);
    lua_test_expect_score(c, ONLINE, "u1", now + 20000);
    lua_test_expect_strings(CMD(c, "ZRANGE", "t:holders:u1:online", "0", "-1"), 2, live);
    lua_test_expect_quiet(c, sub, ALL);
    redisFree(sub);
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
    return tc;
}
