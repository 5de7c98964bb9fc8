/* nick_claim.lua, room_create.lua, users.lua, rooms.lua, room_sweep.lua and room_idle.lua.
 * Every script's keys share one hash slot (gateway/keys.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define NICK "t:nick:{alice}"
#define ONLINE "t:online"
#define ONLINE_USERS "t:online:users{t:online}"
#define ROOMS "t:rooms"
#define ALL "t:all"
#define NAMES "t:rooms:names{t:rooms}"
#define POPULAR "t:rooms:popular{t:rooms}"
#define ACTIVE "t:rooms:active{t:rooms}"
#define QUOTA "t:rooms:created:u1:1{t:rooms}"

/* expect: the holder the caller found offline ("" for none). */
static redisReply *claim(redisContext *c, const char *uid, const char *expect)
{
    return EVAL(c, "nick_claim", 1, NICK, uid, "86400", expect);
}

START_TEST(nick_free_is_claimed)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_str(claim(c, "u1", ""), "");
    lua_test_expect_str(CMD(c, "GET", NICK), "u1");
    lua_test_expect_ttl(c, NICK, 86000, 86400);
    redisFree(c);
}
END_TEST

START_TEST(nick_held_by_another_user_conflicts)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_str(CMD(c, "SET", NICK, "u2", "EX", "100"), "OK");
    lua_test_expect_str(claim(c, "u1", ""), "u2");
    lua_test_expect_str(CMD(c, "GET", NICK), "u2");
    lua_test_expect_ttl(c, NICK, 1, 100);
    /* The holder itself re-claims it and refreshes the TTL. */
    lua_test_expect_str(claim(c, "u2", ""), "");
    lua_test_expect_ttl(c, NICK, 86000, 86400);
    redisFree(c);
}
END_TEST

START_TEST(nick_held_by_offline_user_is_taken_over)
{
    redisContext *c = lua_test_connect();

    /* The caller found u2 offline (presence_online.lua) and names it. */
    lua_test_expect_str(CMD(c, "SET", NICK, "u2"), "OK");
    lua_test_expect_str(claim(c, "u1", "u2"), "");
    lua_test_expect_str(CMD(c, "GET", NICK), "u1");

    /* Changed hands since u3 looked: u3's check was about u2, not u1. */
    lua_test_expect_str(claim(c, "u3", "u2"), "u1");
    lua_test_expect_str(CMD(c, "GET", NICK), "u1");
    lua_test_expect_error(EVAL(c, "nick_claim", 1, NICK, "u1", "0", ""));
    lua_test_expect_error(EVAL(c, "nick_claim", 1, NICK, "u1", "1e3", ""));
    lua_test_expect_str(CMD(c, "GET", NICK), "u1");
    redisFree(c);
}
END_TEST

START_TEST(room_is_created_once)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(ALL, NULL);
    const char *meta = "{\"topic\":\"Rust\",\"created_by\":\"u1\",\"created_at\":1700000000000}";
    const char *event = "{\"type\":\"room_created\",\"room\":\"rust\",\"topic\":\"Rust\"}";

    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "rust", meta, ALL,
                             event, "0", "0", "PUBLISH"),
                        1);
    lua_test_expect_message(sub, ALL, event);
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "rust", "{}", ALL,
                             event, "0", "0", "PUBLISH"),
                        0);
    lua_test_expect_str(CMD(c, "HGET", ROOMS, "rust"), meta);
    lua_test_expect_str(CMD(c, "ZSCORE", NAMES, "rust"), "0");
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
    lua_test_expect_int(CMD(c, "HSET", ONLINE_USERS, "u1",
                            "{\"id\":\"u1\",\"name\":\"Al\",\"avatar\":\"a.png\"}", "u2",
                            "{\"id\":\"u2\",\"name\":\"Bo\",\"avatar\":null}", "u4",
                            "{\"id\":\"u4\",\"name\":\"Di\",\"avatar\":null}"),
                        3);

    lua_test_expect_strings(EVAL(c, "users", 2, ONLINE, ONLINE_USERS, lua_test_itoa(n, now)),
                            sizeof(want) / sizeof(want[0]), want);
    lua_test_expect_strings(
        EVAL(c, "users", 2, "t:nobody{t:online}", ONLINE_USERS, lua_test_itoa(n, now)), 0, NULL);
    lua_test_expect_error(EVAL(c, "users", 2, ONLINE, ONLINE_USERS, "x"));
    redisFree(c);
}
END_TEST

/* The names in a rooms.lua reply {more, now, name, meta, ...} as "a,b,c" and its more
 * flag; now must be the one given. */
static void expect_rooms(redisReply *r, long long more, const char *now, const char *want)
{
    char got[512] = "";
    size_t n = 0;
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "want array, got %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_ge(r->elements, 2);
    ck_assert_int_eq(r->element[0]->integer, more);
    ck_assert_int_eq(r->element[1]->integer, atoll(now));
    ck_assert_uint_eq((r->elements - 2) % 2, 0);
    for (size_t i = 2; i < r->elements; i += 2) {
        n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", i > 2 ? "," : "",
                              r->element[i]->str);
        ck_assert_int_eq(r->element[i + 1]->type, REDIS_REPLY_STRING);
    }
    ck_assert_str_eq(got, want);
    freeReplyObject(r);
}

#define ROOMS_EVAL(c, now, ...) EVAL(c, "rooms", 3, ROOMS, NAMES, POPULAR, now, __VA_ARGS__)

START_TEST(rooms_pages_by_name)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    char n[24];

    /* rooms made before the names index existed are indexed on first use */
    lua_test_expect_int(CMD(c, "HSET", ROOMS, "tech", "{\"topic\":\"t\"}", "general",
                            "{\"topic\":\"g\"}", "a_b", "{}", "a-b", "{}", "a1", "{}"),
                        5);
    lua_test_itoa(n, now);

    expect_rooms(ROOMS_EVAL(c, n, "page", "200", "", ""), 0, n, "a-b,a1,a_b,general,tech");
    expect_rooms(ROOMS_EVAL(c, n, "page", "2", "", ""), 1, n, "a-b,a1");
    expect_rooms(ROOMS_EVAL(c, n, "page", "2", "", "a1"), 1, n, "a_b,general");
    expect_rooms(ROOMS_EVAL(c, n, "page", "2", "", "general"), 0, n, "tech");
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "a", ""), 0, n, "a-b,a1,a_b");
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "a", "a1"), 0, n, "a_b");
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "ge", ""), 0, n, "general");
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "zz", ""), 0, n, "");
    lua_test_expect_error(ROOMS_EVAL(c, "1e3", "page", "10", "", ""));
    lua_test_expect_error(ROOMS_EVAL(c, n, "page", "0", "", ""));
    lua_test_expect_error(ROOMS_EVAL(c, n, "sideways", "10", "", ""));
    /* "": Redis' clock, returned for the member counts the caller makes */
    redisReply *r = ROOMS_EVAL(c, "", "page", "10", "", "");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_int_ge(r->element[1]->integer, now - 5000);
    ck_assert_int_le(r->element[1]->integer, now + 5000);
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

START_TEST(rooms_welcome_lists_defaults_then_popular)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    char n[24];
    lua_test_itoa(n, now);
    lua_test_expect_int(CMD(c, "HSET", ROOMS, "general", "{}", "tech", "{}", "big", "{}", "mid",
                            "{}", "empty", "{}"),
                        5);
    lua_test_expect_int(CMD(c, "ZADD", POPULAR, "5", "big", "2", "mid", "9", "general"), 3);
    /* defaults first (in the order given, missing ones skipped), then by users present */
    expect_rooms(ROOMS_EVAL(c, n, "welcome", "200", "general", "random", "tech"), 1, n,
                 "general,tech,big,mid");
    expect_rooms(ROOMS_EVAL(c, n, "welcome", "3", "general", "random", "tech"), 1, n,
                 "general,tech,big");
    lua_test_expect_int(CMD(c, "ZADD", POPULAR, "1", "empty"), 1);
    expect_rooms(ROOMS_EVAL(c, n, "welcome", "200", "general", "tech"), 0, n,
                 "general,tech,big,mid,empty");
    redisFree(c);
}
END_TEST

/* The cap on rooms and the creator's hourly quota; an existing room costs
 * neither. */
START_TEST(room_create_cap_and_quota)
{
    redisContext *c = lua_test_connect();
    const char *ev = "{}";
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r1", "{}", "", ev,
                             "3", "2", "PUBLISH"),
                        1);
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r2", "{}", "", ev,
                             "3", "2", "PUBLISH"),
                        1);
    /* quota: 2 per hour for this creator */
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r3", "{}", "", ev,
                             "3", "2", "PUBLISH"),
                        -2);
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r1", "{}", "", ev,
                             "3", "2", "PUBLISH"),
                        0);
    /* another creator, then the cap of 3 */
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE,
                             "t:rooms:created:u2:1{t:rooms}", "r3", "{}", "", ev, "3", "2",
                             "PUBLISH"),
                        1);
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE,
                             "t:rooms:created:u2:1{t:rooms}", "r4", "{}", "", ev, "3", "2",
                             "PUBLISH"),
                        -1);
    lua_test_expect_nil(CMD(c, "HGET", ROOMS, "r4"));
    redisFree(c);
}
END_TEST

#define SWEEP(c, ...) EVAL(c, "room_sweep", 4, ROOMS, NAMES, POPULAR, ACTIVE, __VA_ARGS__)

/* Candidates are the rooms unused for the idle time, the default rooms never
 * (their use moves forward); room_idle.lua keeps one with someone present or
 * a recent message, and lists the members of one that may go. */
START_TEST(room_sweep_finds_idle_rooms)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    char old[24], recent[24];
    lua_test_itoa(old, now - 100000);
    lua_test_itoa(recent, now - 1000);
    lua_test_expect_int(
        CMD(c, "HSET", ROOMS, "idle", "{}", "busy", "{}", "chatty", "{}", "general", "{}"), 4);
    lua_test_expect_int(
        CMD(c, "ZADD", ACTIVE, old, "idle", old, "busy", old, "chatty", old, "general"), 4);
    lua_test_expect_int(CMD(c, "RPUSH", "t:room:{idle}:history", "{\"seq\":1,\"ts\":1}"), 1);
    lua_test_zadd(c, "t:room:{idle}:members", now - 60000, "u9");
    lua_test_zadd(c, "t:room:{busy}:members", now + 60000, "u1");
    char msg[64];
    snprintf(msg, sizeof(msg), "{\"seq\":1,\"ts\":%s}", recent);
    lua_test_expect_int(CMD(c, "RPUSH", "t:room:{chatty}:history", msg), 1);

    redisReply *r = SWEEP(c, "candidates", "60000", "50", "general");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 4);
    ck_assert_int_ge(r->element[0]->integer, now - 5000);
    ck_assert_str_eq(r->element[1]->str, "busy");
    ck_assert_str_eq(r->element[2]->str, "chatty");
    ck_assert_str_eq(r->element[3]->str, "idle");
    freeReplyObject(r);
    /* general's use moved forward: no longer a candidate */
    r = CMD(c, "ZSCORE", ACTIVE, "general");
    ck_assert_int_ge(atoll(r->str), now - 5000);
    freeReplyObject(r);

    r = EVAL(c, "room_idle", 2, "t:room:{busy}:history", "t:room:{busy}:members", "60000");
    ck_assert_str_eq(r->element[0]->str, "busy");
    freeReplyObject(r);
    r = EVAL(c, "room_idle", 2, "t:room:{chatty}:history", "t:room:{chatty}:members", "60000");
    ck_assert_str_eq(r->element[0]->str, "recent");
    ck_assert_int_eq(r->element[1]->integer, now - 1000);
    freeReplyObject(r);
    r = EVAL(c, "room_idle", 2, "t:room:{idle}:history", "t:room:{idle}:members", "60000");
    ck_assert_uint_eq(r->elements, 3);
    ck_assert_str_eq(r->element[0]->str, "idle");
    ck_assert_str_eq(r->element[2]->str, "u9");
    freeReplyObject(r);
    lua_test_expect_error(SWEEP(c, "candidates", "x", "50"));
    lua_test_expect_error(SWEEP(c, "sideways"));
    redisFree(c);
}
END_TEST

/* unlist: only a room not used since the candidates were listed; with no
 * bound ("", chat-admin delete-room) at once; a default room or an unknown
 * one never. */
START_TEST(room_sweep_unlists_one_room)
{
    redisContext *c = lua_test_connect();
    lua_test_expect_int(CMD(c, "HSET", ROOMS, "busy", "{}", "general", "{}", "other", "{}"), 3);
    lua_test_expect_int(CMD(c, "ZADD", NAMES, "0", "busy", "0", "general", "0", "other"), 3);
    lua_test_expect_int(CMD(c, "ZADD", POPULAR, "1", "busy"), 1);
    lua_test_expect_int(CMD(c, "ZADD", ACTIVE, "1000", "busy", "5000", "other"), 2);

    lua_test_expect_int(SWEEP(c, "unlist", "other", "2000", "general"), 0); /* used since */
    lua_test_expect_int(SWEEP(c, "unlist", "busy", "2000", "general"), 1);
    lua_test_expect_nil(CMD(c, "HGET", ROOMS, "busy"));
    lua_test_expect_nil(CMD(c, "ZSCORE", NAMES, "busy"));
    lua_test_expect_nil(CMD(c, "ZSCORE", POPULAR, "busy"));
    lua_test_expect_nil(CMD(c, "ZSCORE", ACTIVE, "busy"));
    lua_test_expect_int(SWEEP(c, "unlist", "busy", "", "general"), 0);
    lua_test_expect_int(SWEEP(c, "unlist", "general", "", "general"), 0);
    lua_test_expect_int(SWEEP(c, "unlist", "nowhere", "", "general"), 0);
    lua_test_expect_int(SWEEP(c, "unlist", "other", "", "general"), 1);
    lua_test_expect_int(CMD(c, "HLEN", ROOMS), 1);
    redisFree(c);
}
END_TEST

TCase *catalog_tcase(void)
{
    TCase *tc = tcase_create("catalog");

    tcase_add_checked_fixture(tc, lua_test_flush, NULL);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, nick_free_is_claimed);
    tcase_add_test(tc, nick_held_by_another_user_conflicts);
    tcase_add_test(tc, nick_held_by_offline_user_is_taken_over);
    tcase_add_test(tc, room_is_created_once);
    tcase_add_test(tc, users_lists_online_users);
    tcase_add_test(tc, rooms_pages_by_name);
    tcase_add_test(tc, rooms_welcome_lists_defaults_then_popular);
    tcase_add_test(tc, room_create_cap_and_quota);
    tcase_add_test(tc, room_sweep_finds_idle_rooms);
    tcase_add_test(tc, room_sweep_unlists_one_room);
    return tc;
}
