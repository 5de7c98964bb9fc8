/* nick_claim.lua, room_create.lua, users.lua and rooms.lua. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define NICK "t:nick:{alice}"
#define ONLINE "t:online"
#define ROOMS "t:rooms"
#define ALL "t:all"
#define NAMES "t:rooms:names"
#define POPULAR "t:rooms:popular"
#define ACTIVE "t:rooms:active"
#define QUOTA "t:user:{u1}:created:1"

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

    lua_test_expect_int(
        EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "rust", meta, ALL, event, "0", "0"),
        1);
    lua_test_expect_message(sub, ALL, event);
    lua_test_expect_int(
        EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "rust", "{}", ALL, event, "0", "0"),
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

/* The names in a rooms.lua reply {more, name, meta, count, ...} as "a,b,c" and
 * its more flag; counts[i] checked when counts is not NULL. */
static void expect_rooms(redisReply *r, long long more, const char *want, const long long *counts)
{
    char got[512] = "";
    size_t n = 0;
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "want array, got %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_ge(r->elements, 1);
    ck_assert_int_eq(r->element[0]->integer, more);
    ck_assert_uint_eq((r->elements - 1) % 3, 0);
    for (size_t i = 1; i < r->elements; i += 3) {
        n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s", i > 1 ? "," : "",
                              r->element[i]->str);
        if (counts)
            ck_assert_int_eq(r->element[i + 2]->integer, counts[(i - 1) / 3]);
    }
    ck_assert_str_eq(got, want);
    freeReplyObject(r);
}

#define ROOMS_EVAL(c, now, ...)                                                                    \
    EVAL(c, "rooms", 3, ROOMS, NAMES, POPULAR, now, "t:room:{", "}:members", __VA_ARGS__)

START_TEST(rooms_pages_by_name_with_counts)
{
    static const long long counts[] = {0, 0, 0, 2, 1};
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    char n[24];

    /* rooms made before the names index existed are indexed on first use */
    lua_test_expect_int(CMD(c, "HSET", ROOMS, "tech", "{\"topic\":\"t\"}", "general",
                            "{\"topic\":\"g\"}", "a_b", "{}", "a-b", "{}", "a1", "{}"),
                        5);
    lua_test_zadd(c, "t:room:{general}:members", now + 1000, "u1");
    lua_test_zadd(c, "t:room:{general}:members", now, "u2");
    lua_test_zadd(c, "t:room:{general}:members", now - 1, "u3");
    lua_test_zadd(c, "t:room:{tech}:members", now + 1000, "u1");
    lua_test_itoa(n, now);

    expect_rooms(ROOMS_EVAL(c, n, "page", "200", "", ""), 0, "a-b,a1,a_b,general,tech", counts);
    expect_rooms(ROOMS_EVAL(c, n, "page", "2", "", ""), 1, "a-b,a1", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "page", "2", "", "a1"), 1, "a_b,general", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "page", "2", "", "general"), 0, "tech", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "a", ""), 0, "a-b,a1,a_b", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "a", "a1"), 0, "a_b", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "ge", ""), 0, "general", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "page", "10", "zz", ""), 0, "", NULL);
    lua_test_expect_error(EVAL(c, "rooms", 3, ROOMS, NAMES, POPULAR, "1e3", "t:room:{", "}:members",
                               "page", "10", "", ""));
    lua_test_expect_error(ROOMS_EVAL(c, n, "page", "0", "", ""));
    lua_test_expect_error(ROOMS_EVAL(c, n, "sideways", "10", "", ""));
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
    expect_rooms(ROOMS_EVAL(c, n, "welcome", "200", "general", "random", "tech"), 1,
                 "general,tech,big,mid", NULL);
    expect_rooms(ROOMS_EVAL(c, n, "welcome", "3", "general", "random", "tech"), 1,
                 "general,tech,big", NULL);
    lua_test_expect_int(CMD(c, "ZADD", POPULAR, "1", "empty"), 1);
    expect_rooms(ROOMS_EVAL(c, n, "welcome", "200", "general", "tech"), 0,
                 "general,tech,big,mid,empty", NULL);
    redisFree(c);
}
END_TEST

START_TEST(presence_keeps_the_popularity_index)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    char n[24], exp[24];
    lua_test_itoa(n, now);
    lua_test_itoa(exp, now + 10000);
    const char *set = "t:room:{big}:members";
    lua_test_expect_int(
        EVAL(c, "presence_add", 2, set, "t:h1", "u1", "n1", exp, n, "", "", POPULAR, "big"), 1);
    lua_test_expect_int(
        EVAL(c, "presence_add", 2, set, "t:h2", "u2", "n1", exp, n, "", "", POPULAR, "big"), 1);
    /* a refresh does not count twice */
    lua_test_expect_int(
        EVAL(c, "presence_add", 2, set, "t:h1", "u1", "n1", exp, n, "", "", POPULAR, "big"), 0);
    lua_test_expect_str(CMD(c, "ZSCORE", POPULAR, "big"), "2");
    lua_test_expect_int(
        EVAL(c, "presence_remove", 2, set, "t:h1", "u1", "n1", n, "", "", POPULAR, "big"), 1);
    lua_test_expect_str(CMD(c, "ZSCORE", POPULAR, "big"), "1");
    lua_test_expect_int(
        EVAL(c, "presence_remove", 2, set, "t:h2", "u2", "n1", n, "", "", POPULAR, "big"), 1);
    lua_test_expect_nil(CMD(c, "ZSCORE", POPULAR, "big"));
    redisFree(c);
}
END_TEST

/* The cap on rooms and the creator's hourly quota; an existing room costs
 * neither. */
START_TEST(room_create_cap_and_quota)
{
    redisContext *c = lua_test_connect();
    const char *ev = "{}";
    lua_test_expect_int(
        EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r1", "{}", "", ev, "3", "2"), 1);
    lua_test_expect_int(
        EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r2", "{}", "", ev, "3", "2"), 1);
    /* quota: 2 per hour for this creator */
    lua_test_expect_int(
        EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r3", "{}", "", ev, "3", "2"), -2);
    lua_test_expect_int(
        EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, QUOTA, "r1", "{}", "", ev, "3", "2"), 0);
    /* another creator, then the cap of 3 */
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, "t:user:{u2}:created:1",
                             "r3", "{}", "", ev, "3", "2"),
                        1);
    lua_test_expect_int(EVAL(c, "room_create", 4, ROOMS, NAMES, ACTIVE, "t:user:{u2}:created:1",
                             "r4", "{}", "", ev, "3", "2"),
                        -1);
    lua_test_expect_nil(CMD(c, "HGET", ROOMS, "r4"));
    redisFree(c);
}
END_TEST

/* An idle room goes with its keys; one with someone present, one with a
 * recent message and a default room stay. */
START_TEST(room_sweep_deletes_idle_rooms)
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
    lua_test_expect_int(CMD(c, "ZADD", NAMES, "0", "idle", "0", "busy"), 2);
    lua_test_expect_int(CMD(c, "RPUSH", "t:room:{idle}:history", "{\"seq\":1,\"ts\":1}"), 1);
    lua_test_zadd(c, "t:room:{busy}:members", now + 60000, "u1");
    char msg[64];
    snprintf(msg, sizeof(msg), "{\"seq\":1,\"ts\":%s}", recent);
    lua_test_expect_int(CMD(c, "RPUSH", "t:room:{chatty}:history", msg), 1);
    static const char *const gone[] = {"idle"};
    lua_test_expect_strings(EVAL(c, "room_sweep", 4, ROOMS, NAMES, POPULAR, ACTIVE, "60000", "50",
                                 "t:room:{", "}:", "general"),
                            1, gone);
    lua_test_expect_nil(CMD(c, "HGET", ROOMS, "idle"));
    lua_test_expect_int(CMD(c, "EXISTS", "t:room:{idle}:history"), 0);
    lua_test_expect_int(CMD(c, "HLEN", ROOMS), 3);
    /* what stayed has a fresh use: nothing more goes */
    lua_test_expect_strings(EVAL(c, "room_sweep", 4, ROOMS, NAMES, POPULAR, ACTIVE, "60000", "50",
                                 "t:room:{", "}:", "general"),
                            0, NULL);
    redisFree(c);
}
END_TEST

/* delete ROOM: that room goes now with everyone in it, holder sets included;
 * a default room or an unknown one is left alone. */
START_TEST(room_sweep_deletes_one_room)
{
    redisContext *c = lua_test_connect();
    long long now = lua_test_now_ms();
    lua_test_expect_int(CMD(c, "HSET", ROOMS, "busy", "{}", "general", "{}", "other", "{}"), 3);
    lua_test_expect_int(CMD(c, "ZADD", NAMES, "0", "busy", "0", "general", "0", "other"), 3);
    lua_test_expect_int(CMD(c, "ZADD", POPULAR, "1", "busy"), 1);
    lua_test_expect_int(CMD(c, "ZADD", ACTIVE, "1", "busy"), 1);
    lua_test_zadd(c, "t:room:{busy}:members", now + 60000, "u1");
    lua_test_zadd(c, "t:room:{busy}:holders:u1", now + 60000, "node1");
    lua_test_expect_int(CMD(c, "RPUSH", "t:room:{busy}:history", "{\"seq\":1,\"ts\":1}"), 1);
    lua_test_expect_int(CMD(c, "INCR", "t:room:{busy}:seq"), 1);
    lua_test_expect_int(CMD(c, "HSET", "t:room:{busy}:reactions", "1", "{}"), 1);
    static const char *const gone[] = {"busy"};
    lua_test_expect_strings(EVAL(c, "room_sweep", 4, ROOMS, NAMES, POPULAR, ACTIVE, "delete",
                                 "busy", "t:room:{", "}:", "general"),
                            1, gone);
    lua_test_expect_int(CMD(c, "EXISTS", "t:room:{busy}:history", "t:room:{busy}:seq",
                            "t:room:{busy}:members", "t:room:{busy}:holders:u1",
                            "t:room:{busy}:reactions"),
                        0);
    lua_test_expect_nil(CMD(c, "HGET", ROOMS, "busy"));
    lua_test_expect_nil(CMD(c, "ZSCORE", NAMES, "busy"));
    lua_test_expect_nil(CMD(c, "ZSCORE", POPULAR, "busy"));
    lua_test_expect_nil(CMD(c, "ZSCORE", ACTIVE, "busy"));
    lua_test_expect_strings(EVAL(c, "room_sweep", 4, ROOMS, NAMES, POPULAR, ACTIVE, "delete",
                                 "general", "t:room:{", "}:", "general"),
                            0, NULL);
    lua_test_expect_strings(EVAL(c, "room_sweep", 4, ROOMS, NAMES, POPULAR, ACTIVE, "delete",
                                 "nowhere", "t:room:{", "}:", "general"),
                            0, NULL);
    lua_test_expect_int(CMD(c, "HLEN", ROOMS), 2);
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
    tcase_add_test(tc, rooms_pages_by_name_with_counts);
    tcase_add_test(tc, rooms_welcome_lists_defaults_then_popular);
    tcase_add_test(tc, presence_keeps_the_popularity_index);
    tcase_add_test(tc, room_create_cap_and_quota);
    tcase_add_test(tc, room_sweep_deletes_idle_rooms);
    tcase_add_test(tc, room_sweep_deletes_one_room);
    return tc;
}
