/* nick_claim.lua, room_create.lua, users.lua and rooms.lua. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define NICK "t:nick:{alice}"
#define ONLINE "t:online"
#define ROOMS "t:rooms"
#define ALL "t:all"

static redisReply *claim(redisContext *c, const char *uid, long long now)
{
    char n[24];

    return EVAL(c, "nick_claim", 2, NICK, ONLINE, uid, lua_test_itoa(n, now), "86400");
}

START_TEST(nick_free_is_claimed)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_str(claim(c, "u1", lua_test_now_ms()), "");
    lua_test_expect_str(CMD(c, "GET", NICK), "u1");
    lua_test_expect_ttl(c, NICK, 86000, 86400);
    redisFree(c);
}
END_TEST

START_TEST(nick_held_by_online_user_conflicts)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();

    lua_test_expect_str(CMD(c, "SET", NICK, "u2", "EX", "100"), "OK");
    lua_test_zadd(c, ONLINE, now + 30000, "u2");
    lua_test_expect_str(claim(c, "u1", now), "u2");
    lua_test_expect_str(CMD(c, "GET", NICK), "u2");
    lua_test_expect_ttl(c, NICK, 1, 100);
    /* The holder itself re-claims it and refreshes the TTL. */
    lua_test_expect_str(claim(c, "u2", now), "");
    lua_test_expect_ttl(c, NICK, 86000, 86400);
    redisFree(c);
}
END_TEST

START_TEST(nick_held_by_offline_user_is_taken_over)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();

    /* The holder is not in the online set at all. */
    lua_test_expect_str(CMD(c, "SET", NICK, "u2"), "OK");
    lua_test_expect_str(claim(c, "u1", now), "");
    lua_test_expect_str(CMD(c, "GET", NICK), "u1");

    /* The holder's entry expired and was not reaped yet. */
    lua_test_zadd(c, ONLINE, now - 1, "u1");
    lua_test_expect_str(claim(c, "u3", now), "");
    lua_test_expect_str(CMD(c, "GET", NICK), "u3");
    lua_test_expect_error(EVAL(c, "nick_claim", 2, NICK, ONLINE, "u1", "now", "86400"));
    lua_test_expect_error(EVAL(c, "nick_claim", 2, NICK, ONLINE, "u1", "1", "0"));
    lua_test_expect_str(CMD(c, "GET", NICK), "u3");
    redisFree(c);
}
END_TEST

START_TEST(room_is_created_once)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(ALL, NULL);
    const char *meta = "{\"topic\":\"Rust\",\"created_by\":\"u1\",\"created_at\":1700000000000}";
    const char *event = "{\"type\":\"room_created\",\"room\":\"rust\",\"topic\":\"Rust\"}";

    lua_test_expect_int(EVAL(c, "room_create", 1, ROOMS, "rust", meta, ALL, event), 1);
    lua_test_expect_message(sub, ALL, event);
    lua_test_expect_int(EVAL(c, "room_create", 1, ROOMS, "rust", "{}", ALL, event), 0);
    lua_test_expect_str(CMD(c, "HGET", ROOMS, "rust"), meta);
    lua_test_expect_quiet(c, sub, ALL);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(users_lists_online_users)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    static const char *const want[] = {"u1", "Al", "a.png", "u4", "Di", "", "u3", "u3", ""};
    char n[24];

    lua_test_zadd(c, ONLINE, now + 1000, "u1");
    lua_test_zadd(c, ONLINE, now - 1, "u2");
    lua_test_zadd(c, ONLINE, now + 3000, "u3");
    lua_test_zadd(c, ONLINE, now + 2000, "u4");
    lua_test_expect_int(CMD(c, "HSET", "t:user:{u1}", "name", "Al", "avatar", "a.png"), 2);
    lua_test_expect_int(CMD(c, "HSET", "t:user:{u2}", "name", "Bo"), 1);
    lua_test_expect_int(CMD(c, "HSET", "t:user:{u4}", "name", "Di"), 1);

    lua_test_expect_strings(EVAL(c, "users", 1, ONLINE, lua_test_itoa(n, now), "t:user:{", "}"),
                            sizeof(want) / sizeof(want[0]), want);
    lua_test_expect_strings(EVAL(c, "users", 1, "t:nobody", lua_test_itoa(n, now), "t:user:{", "}"),
                            0, NULL);
    lua_test_expect_error(EVAL(c, "users", 1, ONLINE, "x", "t:user:{", "}"));
    redisFree(c);
}
END_TEST

START_TEST(rooms_lists_rooms_by_name_with_counts)
{
    static const char *const names[] = {"a-b", "a1", "a_b", "general", "tech"};
    static const long long counts[] = {0, 0, 0, 2, 1};
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    char n[24];
    redisReply *r;

    lua_test_expect_int(CMD(c, "HSET", ROOMS, "tech", "{\"topic\":\"t\"}", "general",
                            "{\"topic\":\"g\"}", "a_b", "{}", "a-b", "{}", "a1", "{}"),
                        5);
    lua_test_zadd(c, "t:room:{general}:members", now + 1000, "u1");
    lua_test_zadd(c, "t:room:{general}:members", now, "u2");
    lua_test_zadd(c, "t:room:{general}:members", now - 1, "u3");
    lua_test_zadd(c, "t:room:{tech}:members", now + 1000, "u1");

    r = EVAL(c, "rooms", 1, ROOMS, lua_test_itoa(n, now), "t:room:{", "}:members");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 3 * 5);
    for (size_t i = 0; i < 5; i++) {
        ck_assert_str_eq(r->element[3 * i]->str, names[i]);
        ck_assert_int_eq(r->element[3 * i + 2]->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(r->element[3 * i + 2]->integer, counts[i]);
    }
    ck_assert_str_eq(r->element[3 * 3 + 1]->str, "{\"topic\":\"g\"}");
    ck_assert_str_eq(r->element[3 * 4 + 1]->str, "{\"topic\":\"t\"}");
    freeReplyObject(r);

    lua_test_expect_strings(
        EVAL(c, "rooms", 1, "t:none", lua_test_itoa(n, now), "t:room:{", "}:members"), 0, NULL);
    lua_test_expect_error(EVAL(c, "rooms", 1, ROOMS, "1e3", "t:room:{", "}:members"));
    redisFree(c);
}
END_TEST

TCase *catalog_tcase(void)
{
    TCase *tc = tcase_create("catalog");

    tcase_add_checked_fixture(tc, lua_test_flush, NULL);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, nick_free_is_claimed);
    tcase_add_test(tc, nick_held_by_online_user_conflicts);
    tcase_add_test(tc, nick_held_by_offline_user_is_taken_over);
    tcase_add_test(tc, room_is_created_once);
    tcase_add_test(tc, users_lists_online_users);
    tcase_add_test(tc, rooms_lists_rooms_by_name_with_counts);
    return tc;
}
