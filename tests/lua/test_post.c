/* post.lua, history_since.lua and history_range.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define SEQ "t:room:{general}:seq"
#define HIST "t:room:{general}:history"
#define IDEM "t:idem:{general}:u1:c7"
#define CHAN "t:room:{general}"
#define HEAD "{\"type\":\"message\",\"room\":\"general\",\"seq\":"
#define TAIL                                                                                       \
    ",\"from\":{\"id\":\"u1\",\"name\":\"Al \\\"q\\\"\",\"avatar\":null},\"kind\":\"text\","       \
    "\"body\":\"hi \xc3\xa9 \xf0\x9f\x98\x80 ; \\\\ ?\?/\",\"id\":\"c7\"}"

/* An ack of post.lua: {seq, ts, replayed}. */
struct ack {
    long long seq;
    long long ts;
    long long replayed;
};

static struct ack take_ack(redisReply *r)
{
    struct ack a;

    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "want array, got type %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_eq(r->elements, 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_INTEGER);
    a.seq = r->element[0]->integer;
    a.ts = r->element[1]->integer;
    a.replayed = r->element[2]->integer;
    freeReplyObject(r);
    return a;
}

/* A 13-digit millisecond timestamp within 5 s of our own clock. */
static void check_ts(long long ts)
{
    long long now = lua_test_now_ms();

    ck_assert_int_ge(ts, 1000000000000LL);
    ck_assert_int_lt(ts, 10000000000000LL);
    ck_assert_int_le(llabs(ts - now), 5000);
}

static void expected_msg(char *buf, size_t size, const char *head, struct ack a, const char *tail)
{
    int n = snprintf(buf, size, "%s%lld,\"ts\":%lld%s", head, a.seq, a.ts, tail);

    ck_assert(n > 0 && (size_t)n < size);
}

static struct ack post(redisContext *c, const char *max, const char *tail, const char *ttl)
{
    return take_ack(EVAL(c, "post", 3, SEQ, HIST, IDEM, max, HEAD, tail, ttl, "PUBLISH", CHAN));
}

START_TEST(seq_has_no_gaps_and_message_is_exact)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    long long last_ts = 0;
    char msg[1024];

    for (long long i = 1; i <= 3; i++) {
        struct ack a = post(c, "200", TAIL, "0");
        char idx[24];
        redisReply *r;

        ck_assert_int_eq(a.seq, i);
        ck_assert_int_eq(a.replayed, 0);
        check_ts(a.ts);
        ck_assert_int_ge(a.ts, last_ts);
        last_ts = a.ts;

        expected_msg(msg, sizeof(msg), HEAD, a, TAIL);
        r = CMD(c, "LINDEX", HIST, lua_test_itoa(idx, i - 1));
        lua_test_expect_str(r, msg);
        lua_test_expect_message(sub, CHAN, msg);
    }
    lua_test_expect_str(CMD(c, "GET", SEQ), "3");
    lua_test_expect_int(CMD(c, "LLEN", HIST), 3);
    lua_test_expect_int(CMD(c, "EXISTS", IDEM), 0);
    lua_test_expect_quiet(c, sub, CHAN);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(trim_keeps_the_last_max_in_order)
{
    redisContext *c = lua_test_connect();
    redisReply *r;

    for (int i = 1; i <= 5; i++)
        ck_assert_int_eq(post(c, "3", TAIL, "0").seq, i);
    r = CMD(c, "LRANGE", HIST, "0", "-1");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 3);
    for (size_t i = 0; i < 3; i++) {
        char prefix[128];

        snprintf(prefix, sizeof(prefix), "%s%zu,\"ts\":", HEAD, i + 3);
        ck_assert_msg(strncmp(r->element[i]->str, prefix, strlen(prefix)) == 0, "%zu: %s", i,
                      r->element[i]->str);
    }
    freeReplyObject(r);

    /* A smaller max trims the older messages on the next post. */
    ck_assert_int_eq(post(c, "1", TAIL, "0").seq, 6);
    lua_test_expect_int(CMD(c, "LLEN", HIST), 1);
    redisFree(c);
}
END_TEST

START_TEST(idempotent_replay_returns_first_ack)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    struct ack first = post(c, "200", TAIL, "300");
    struct ack again;
    char msg[1024];
    char value[64];

    ck_assert_int_eq(first.seq, 1);
    ck_assert_int_eq(first.replayed, 0);
    expected_msg(msg, sizeof(msg), HEAD, first, TAIL);
    lua_test_expect_message(sub, CHAN, msg);
    snprintf(value, sizeof(value), "%lld:%lld", first.seq, first.ts);
    lua_test_expect_str(CMD(c, "GET", IDEM), value);
    lua_test_expect_ttl(c, IDEM, 1, 300);

    /* Same key, even with another body: the first ack, nothing stored or published. */
    again = post(c, "200", ",\"body\":\"other\"}", "300");
    ck_assert_int_eq(again.seq, first.seq);
    ck_assert_int_eq(again.ts, first.ts);
    ck_assert_int_eq(again.replayed, 1);
    lua_test_expect_str(CMD(c, "GET", SEQ), "1");
    lua_test_expect_int(CMD(c, "LLEN", HIST), 1);
    lua_test_expect_str(CMD(c, "LINDEX", HIST, "0"), msg);
    lua_test_expect_quiet(c, sub, CHAN);

    /* Publishing left to the caller (""): the replay brings the stored
     * message and its channel back, for a caller that has not published it
     * yet (--durability replica), and still publishes nothing itself. */
    redisReply *r = EVAL(c, "post", 3, SEQ, HIST, IDEM, "200", HEAD, TAIL, "300", "", CHAN);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 5);
    ck_assert_int_eq(r->element[0]->integer, first.seq);
    ck_assert_int_eq(r->element[2]->integer, 1);
    ck_assert_str_eq(r->element[3]->str, msg);
    ck_assert_str_eq(r->element[4]->str, CHAN);
    freeReplyObject(r);
    lua_test_expect_quiet(c, sub, CHAN);

    /* Another key is a new message. */
    again = take_ack(EVAL(c, "post", 3, SEQ, HIST, "t:idem:{general}:u1:c8", "200", HEAD, TAIL,
                          "300", "PUBLISH", CHAN));
    ck_assert_int_eq(again.seq, 2);
    ck_assert_int_eq(again.replayed, 0);
    /* Once history no longer holds the first, the replay is the bare ack. */
    for (int i = 0; i < 3; i++)
        post(c, "2", TAIL, "0");
    r = EVAL(c, "post", 3, SEQ, HIST, IDEM, "2", HEAD, TAIL, "300", "", CHAN);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 3);
    ck_assert_int_eq(r->element[0]->integer, first.seq);
    freeReplyObject(r);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(ttl_zero_leaves_the_idempotency_key_alone)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_str(CMD(c, "SET", IDEM, "5:1700000000000"), "OK");
    ck_assert_int_eq(post(c, "200", TAIL, "0").seq, 1);
    ck_assert_int_eq(post(c, "200", TAIL, "0").seq, 2);
    lua_test_expect_str(CMD(c, "GET", IDEM), "5:1700000000000");
    lua_test_expect_ttl(c, IDEM, -1, -1);
    redisFree(c);
}
END_TEST

START_TEST(dm_publishes_on_both_channels)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe("t:user:{a}", "t:user:{b}");
    const char *head = "{\"type\":\"private\",\"seq\":";
    char msg[1024];
    struct ack a =
        take_ack(EVAL(c, "post", 3, "t:dm:{a:b}:seq", "t:dm:{a:b}:history", "t:idem:{a:b}:a:x1",
                      "200", head, TAIL, "300", "PUBLISH", "t:user:{a}", "t:user:{b}"));

    ck_assert_int_eq(a.seq, 1);
    expected_msg(msg, sizeof(msg), head, a, TAIL);
    lua_test_expect_message(sub, "t:user:{a}", msg);
    lua_test_expect_message(sub, "t:user:{b}", msg);
    lua_test_expect_str(CMD(c, "LINDEX", "t:dm:{a:b}:history", "0"), msg);
    lua_test_expect_quiet(c, sub, "t:user:{a}");
    lua_test_expect_quiet(c, sub, "t:user:{b}");
    redisFree(sub);
    redisFree(c);
}
END_TEST

/* A DM on a cluster: the users' channels are outside the conversation's slot,
 * so the script publishes nothing and hands the message and channels back. */
START_TEST(dm_returns_its_events_when_asked)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe("t:user:{a}", "t:user:{b}");
    const char *head = "{\"type\":\"private\",\"seq\":";
    char msg[1024];
    redisReply *r = EVAL(c, "post", 3, "t:dm:{a:b}:seq", "t:dm:{a:b}:history", "t:idem:{a:b}:a:x2",
                         "200", head, TAIL, "0", "", "t:user:{a}", "t:user:{b}");

    ck_assert_msg(r->type == REDIS_REPLY_ARRAY && r->elements == 6, "type %d", r->type);
    struct ack a = {r->element[0]->integer, r->element[1]->integer, r->element[2]->integer};
    ck_assert_int_eq(a.seq, 1);
    ck_assert_int_eq(a.replayed, 0);
    expected_msg(msg, sizeof(msg), head, a, TAIL);
    ck_assert_str_eq(r->element[3]->str, msg);
    ck_assert_str_eq(r->element[4]->str, "t:user:{a}");
    ck_assert_str_eq(r->element[5]->str, "t:user:{b}");
    freeReplyObject(r);
    lua_test_expect_quiet(c, sub, "t:user:{a}");
    lua_test_expect_quiet(c, sub, "t:user:{b}");
    /* Any other command is refused before anything is stored. */
    lua_test_expect_error(EVAL(c, "post", 3, "t:dm:{a:b}:seq", "t:dm:{a:b}:history",
                               "t:idem:{a:b}:a:x3", "200", head, TAIL, "0", "DEL", "t:user:{a}"));
    lua_test_expect_int(CMD(c, "LLEN", "t:dm:{a:b}:history"), 1);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(large_integers_print_without_exponent)
{
    redisContext *c = lua_test_connect();
    struct ack a;
    char want[128];
    redisReply *r;

    /* 15 digits: tostring() would print 1e+14. */
    lua_test_expect_str(CMD(c, "SET", SEQ, "99999999999999"), "OK");
    a = post(c, "200", "}", "0");
    ck_assert_int_eq(a.seq, 100000000000000LL);
    check_ts(a.ts);
    snprintf(want, sizeof(want), "%s100000000000000,\"ts\":%lld}", HEAD, a.ts);
    r = CMD(c, "LINDEX", HIST, "0");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(r->str, want);
    ck_assert_ptr_null(strpbrk(r->str + strlen(HEAD), "e.E+"));
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

START_TEST(bad_arguments_are_errors_and_write_nothing)
{
    static const char *const bad_max[] = {"0",   "-1",   "abc", "inf", "nan",
                                          "1e3", "0x10", "",    "1.5", "1234567890123456"};
    redisContext *c = lua_test_connect();

    for (size_t i = 0; i < sizeof(bad_max) / sizeof(bad_max[0]); i++)
        lua_test_expect_error(
            EVAL(c, "post", 3, SEQ, HIST, IDEM, bad_max[i], HEAD, TAIL, "0", "PUBLISH", CHAN));
    lua_test_expect_error(
        EVAL(c, "post", 3, SEQ, HIST, IDEM, "200", HEAD, TAIL, "x", "PUBLISH", CHAN));
    lua_test_expect_error(
        EVAL(c, "post", 3, SEQ, HIST, IDEM, "200", HEAD, TAIL, "-5", "PUBLISH", CHAN));
    lua_test_expect_error(EVAL(c, "post", 3, SEQ, HIST, IDEM, "200", HEAD, TAIL, "300", "PUBLISH"));
    lua_test_expect_error(EVAL(c, "post", 3, SEQ, HIST, IDEM));
    lua_test_expect_int(CMD(c, "EXISTS", SEQ, HIST, IDEM), 0);
    redisFree(c);
}
END_TEST

START_TEST(history_since_reads_seq_and_list)
{
    redisContext *c = lua_test_connect();
    struct ack a[2];
    char msg[1024];
    redisReply *r = EVAL(c, "history_since", 2, SEQ, HIST);

    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 1);
    ck_assert_int_eq(r->element[0]->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->element[0]->integer, 0);
    freeReplyObject(r);

    a[0] = post(c, "200", TAIL, "0");
    a[1] = post(c, "200", TAIL, "0");
    r = EVAL(c, "history_since", 2, SEQ, HIST);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 3);
    ck_assert_int_eq(r->element[0]->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->element[0]->integer, 2);
    for (size_t i = 0; i < 2; i++) {
        expected_msg(msg, sizeof(msg), HEAD, a[i], TAIL);
        ck_assert_str_eq(r->element[i + 1]->str, msg);
    }
    freeReplyObject(r);
    redisFree(c);
}
END_TEST

/* The seqs in a history_range reply {seq, more, recovered, msg...}, as "a,b,c",
 * checking the head fields. */
static void expect_range(redisReply *r, long long seq, long long more, long long recovered,
                         const char *want)
{
    char got[512] = "";
    size_t n = 0;
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "want array, got %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_ge(r->elements, 3);
    ck_assert_int_eq(r->element[0]->integer, seq);
    ck_assert_int_eq(r->element[1]->integer, more);
    ck_assert_int_eq(r->element[2]->integer, recovered);
    for (size_t i = 3; i < r->elements; i++) {
        const char *p = strstr(r->element[i]->str, "\"seq\":");
        ck_assert_ptr_nonnull(p);
        n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%lld", i > 3 ? "," : "", atoll(p + 6));
    }
    ck_assert_str_eq(got, want);
    freeReplyObject(r);
}

START_TEST(history_range_reads_only_the_page)
{
    redisContext *c = lua_test_connect();
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "0", "50", "0"), 0, 0, 0, "");
    for (int i = 0; i < 12; i++)
        post(c, "10", TAIL, "0"); /* history keeps 3..12 */
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "0", "3", "0"), 12, 1, 0,
                 "10,11,12");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "6", "3", "0"), 12, 0, 0,
                 "3,4,5");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "2", "3", "0"), 12, 0, 0, "");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "after", "0", "2", "0"), 12, 1, 0, "3,4");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "after", "10", "5", "0"), 12, 0, 0,
                 "11,12");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "after", "12", "5", "0"), 12, 0, 0, "");
    /* since: recovered while the position is still in history, else the last 50 */
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "since", "9", "50", "0"), 12, 0, 1,
                 "10,11,12");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "since", "2", "50", "0"), 12, 0, 1,
                 "3,4,5,6,7,8,9,10,11,12");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "since", "1", "50", "0"), 12, 0, 0,
                 "3,4,5,6,7,8,9,10,11,12");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "since", "13", "50", "0"), 12, 0, 0,
                 "3,4,5,6,7,8,9,10,11,12");
    /* the byte cap keeps the newest ("before") or oldest ("after") that fit, at least one */
    char msg[1024];
    struct ack a = {12, 0, 0};
    redisReply *r = EVAL(c, "history_range", 2, SEQ, HIST, "before", "0", "1", "0");
    a.ts = atoll(strstr(r->element[3]->str, "\"ts\":") + 5);
    freeReplyObject(r);
    expected_msg(msg, sizeof(msg), HEAD, a, TAIL);
    char cap[32];
    snprintf(cap, sizeof(cap), "%zu", strlen(msg) * 2 + 1);
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "0", "50", cap), 12, 1, 0,
                 "11,12");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "after", "0", "50", cap), 12, 1, 0, "3,4");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "after", "0", "50", "1"), 12, 1, 0, "3");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "7", "50", cap), 12, 1, 0, "5,6");
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "since", "8", "50", cap), 12, 1, 1, "9,10");
    /* ...and reads no more of the list than that: the newest two that fit and
     * the one that did not, plus the oldest for its seq. */
    freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
    expect_range(EVAL(c, "history_range", 2, SEQ, HIST, "before", "0", "50", cap), 12, 1, 0,
                 "11,12");
    r = redisCommand(c, "INFO commandstats");
    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    const char *lindex = strstr(r->str, "cmdstat_lindex:calls=");
    ck_assert_ptr_nonnull(lindex);
    ck_assert_int_le(atoi(lindex + strlen("cmdstat_lindex:calls=")), 4);
    ck_assert_ptr_null(strstr(r->str, "cmdstat_lrange:"));
    freeReplyObject(r);
    lua_test_expect_error(EVAL(c, "history_range", 2, SEQ, HIST, "sideways", "0", "1", "0"));
    lua_test_expect_error(EVAL(c, "history_range", 2, SEQ, HIST, "before", "-1", "1", "0"));
    lua_test_expect_error(EVAL(c, "history_range", 2, SEQ, HIST, "before", "0", "x", "0"));
    redisFree(c);
}
END_TEST

TCase *post_tcase(void)
{
    TCase *tc = tcase_create("post");

    tcase_add_checked_fixture(tc, lua_test_flush, NULL);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, seq_has_no_gaps_and_message_is_exact);
    tcase_add_test(tc, trim_keeps_the_last_max_in_order);
    tcase_add_test(tc, idempotent_replay_returns_first_ack);
    tcase_add_test(tc, ttl_zero_leaves_the_idempotency_key_alone);
    tcase_add_test(tc, dm_publishes_on_both_channels);
    tcase_add_test(tc, dm_returns_its_events_when_asked);
    tcase_add_test(tc, large_integers_print_without_exponent);
    tcase_add_test(tc, bad_arguments_are_errors_and_write_nothing);
    tcase_add_test(tc, history_since_reads_seq_and_list);
    tcase_add_test(tc, history_range_reads_only_the_page);
    return tc;
}
