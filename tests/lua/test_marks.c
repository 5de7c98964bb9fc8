/* read_mark.lua, message_edit.lua and reaction_toggle.lua. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"

#define SEQ "t:room:{general}:seq"
#define HIST "t:room:{general}:history"
#define REACT "t:room:{general}:reactions"
#define CHAN "t:room:{general}"
#define READ "t:user:{u1}:read"
#define UCHAN "t:user:{u1}"
#define HEAD "{\"type\":\"message\",\"room\":\"general\",\"seq\":"
/* A sender whose name holds what the script searches for, escaped as stored. */
#define FROM_U1 "\"from\":{\"id\":\"u1\",\"name\":\"x\\\",\\\"body\\\":\\\"\",\"avatar\":null}"
#define FROM_U2 "\"from\":{\"id\":\"u2\",\"name\":\"Bo\",\"avatar\":null}"

/* Stores message seq (ts 1000 + seq) by u1 or u2 with the given kind and body JSON. */
static void store(redisContext *c, int seq, const char *from, const char *kind,
                  const char *body_json, const char *after)
{
    char msg[1024], num[24];
    redisReply *r;

    snprintf(msg, sizeof(msg), "%s%d,\"ts\":%d,%s,\"kind\":\"%s\",\"body\":%s%s}", HEAD, seq,
             1000 + seq, from, kind, body_json, after);
    r = CMD(c, "RPUSH", HIST, msg);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    lua_test_expect_str(CMD(c, "SET", SEQ, lua_test_itoa(num, seq)), "OK");
}

/* The stored message at index idx with its "_ts":<digits> marks replaced by "_ts":T. */
static char *stored(redisContext *c, int idx)
{
    char i[24];
    redisReply *r = CMD(c, "LINDEX", HIST, lua_test_itoa(i, idx));
    char *out, *p;

    ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
    out = strdup(r->str);
    freeReplyObject(r);
    for (p = out; (p = strstr(p, "_ts\":")) != NULL;) {
        char *d = p + 5, *e = d;

        while (*e >= '0' && *e <= '9')
            e++;
        ck_assert_msg(e - d == 13, "mark ts %s", d);
        *d = 'T';
        memmove(d + 1, e, strlen(e) + 1);
        p = d;
    }
    return out;
}

static void expect_stored(redisContext *c, int idx, const char *want)
{
    char *got = stored(c, idx);

    ck_assert_str_eq(got, want);
    free(got);
}

/* Reads the next published message on channel and compares it with its ts made T. */
static void expect_event(redisContext *sub, const char *channel, const char *want)
{
    redisReply *r = NULL;
    char *p;

    ck_assert_int_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
    ck_assert_str_eq(r->element[1]->str, channel);
    p = strstr(r->element[2]->str, "_ts\":");
    if (p != NULL) {
        char *d = p + 5, *e = d;

        while (*e >= '0' && *e <= '9')
            e++;
        *d = 'T';
        memmove(d + 1, e, strlen(e) + 1);
    }
    ck_assert_str_eq(r->element[2]->str, want);
    freeReplyObject(r);
}

static void expect_status(redisReply *r, const char *status)
{
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "type %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_str_eq(r->element[0]->str, status);
    freeReplyObject(r);
}

/* mode "edit" or "delete"; the event type is "edited" or "deleted". */
#define EDIT(c, mode, seq, uid, admin, body, cps)                                                  \
    EVAL(c, "message_edit", 2, HIST, REACT, mode, seq, uid, admin, body, cps, "PUBLISH", CHAN,     \
         strcmp(mode, "edit") == 0 ? "{\"type\":\"edited\",\"room\":\"general\",\"seq\":" seq      \
                                   : "{\"type\":\"deleted\",\"room\":\"general\",\"seq\":" seq)

START_TEST(read_mark_only_moves_forward)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(UCHAN, NULL);
    const char *head = "{\"type\":\"read\",\"room\":\"general\",\"seq\":";
    redisReply *r;

    lua_test_expect_str(CMD(c, "SET", SEQ, "10"), "OK");
    r = EVAL(c, "read_mark", 1, READ, "room:general", "4", "60", UCHAN, head, "10", "PUBLISH");
    ck_assert_int_eq(r->element[0]->integer, 4);
    ck_assert_int_eq(r->element[1]->integer, 1);
    freeReplyObject(r);
    lua_test_expect_message(sub, UCHAN, "{\"type\":\"read\",\"room\":\"general\",\"seq\":4}");
    lua_test_expect_str(CMD(c, "HGET", READ, "room:general"), "4");
    lua_test_expect_ttl(c, READ, 1, 60);

    /* Backwards and equal: unchanged, nothing published. */
    r = EVAL(c, "read_mark", 1, READ, "room:general", "2", "60", UCHAN, head, "10", "PUBLISH");
    ck_assert_int_eq(r->element[0]->integer, 4);
    ck_assert_int_eq(r->element[1]->integer, 0);
    freeReplyObject(r);
    r = EVAL(c, "read_mark", 1, READ, "room:general", "4", "60", UCHAN, head, "10", "PUBLISH");
    ck_assert_int_eq(r->element[1]->integer, 0);
    freeReplyObject(r);
    lua_test_expect_quiet(c, sub, UCHAN);

    /* Beyond the conversation: capped at its seq. */
    r = EVAL(c, "read_mark", 1, READ, "room:general", "999", "60", UCHAN, head, "10", "PUBLISH");
    ck_assert_int_eq(r->element[0]->integer, 10);
    freeReplyObject(r);
    lua_test_expect_message(sub, UCHAN, "{\"type\":\"read\",\"room\":\"general\",\"seq\":10}");

    /* The conversation started over (seq 3 now): the marker follows it down. */
    lua_test_expect_str(CMD(c, "SET", SEQ, "3"), "OK");
    r = EVAL(c, "read_mark", 1, READ, "room:general", "1", "60", UCHAN, head, "3", "PUBLISH");
    ck_assert_int_eq(r->element[0]->integer, 1);
    ck_assert_int_eq(r->element[1]->integer, 1);
    freeReplyObject(r);
    lua_test_expect_message(sub, UCHAN, "{\"type\":\"read\",\"room\":\"general\",\"seq\":1}");

    /* Nothing to read yet: no field at all. */
    r = EVAL(c, "read_mark", 1, READ, "room:empty", "5", "60", UCHAN, head, "0", "PUBLISH");
    ck_assert_int_eq(r->element[0]->integer, 0);
    freeReplyObject(r);
    lua_test_expect_int(CMD(c, "HEXISTS", READ, "room:empty"), 0);

    lua_test_expect_error(
        EVAL(c, "read_mark", 1, READ, "room:general", "1e3", "60", UCHAN, head, "3", "PUBLISH"));
    lua_test_expect_error(
        EVAL(c, "read_mark", 1, READ, "room:general", "-1", "60", UCHAN, head, "3", "PUBLISH"));
    lua_test_expect_error(
        EVAL(c, "read_mark", 1, READ, "room:general", "1", "60", UCHAN, head, "x", "PUBLISH"));
    lua_test_expect_quiet(c, sub, UCHAN);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(edit_rewrites_in_place)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);

    store(c, 1, FROM_U2, "text", "\"first\"", "");
    store(c, 2, FROM_U1, "text", "\"say \\\"hi\\\" \\\\ ok\"", ",\"id\":\"m2\"");
    store(c, 3, FROM_U1, "code", "\"x\"", ",\"lang\":\"c\"");

    expect_status(EDIT(c, "edit", "2", "u1", "0", "\"new \\\"body\\\"\"", "10"), "ok");
    expect_stored(c, 1,
                  HEAD "2,\"ts\":1002," FROM_U1 ",\"kind\":\"text\",\"body\":\"new \\\"body\\\"\","
                       "\"id\":\"m2\",\"edited\":true,\"edited_ts\":T}");
    expect_event(sub, CHAN,
                 "{\"type\":\"edited\",\"room\":\"general\",\"seq\":2,\"body\":\"new "
                 "\\\"body\\\"\",\"edited_ts\":T}");
    /* Again with another body: one mark, at the end. */
    expect_status(EDIT(c, "edit", "2", "u1", "0", "\"third\"", "5"), "ok");
    expect_stored(c, 1,
                  HEAD "2,\"ts\":1002," FROM_U1 ",\"kind\":\"text\",\"body\":\"third\","
                       "\"id\":\"m2\",\"edited\":true,\"edited_ts\":T}");
    expect_event(sub, CHAN,
                 "{\"type\":\"edited\",\"room\":\"general\",\"seq\":2,\"body\":\"third\","
                 "\"edited_ts\":T}");
    /* The same body: nothing to do, nothing published. */
    expect_status(EDIT(c, "edit", "2", "u1", "0", "\"third\"", "5"), "same");
    lua_test_expect_quiet(c, sub, CHAN);

    /* code keeps its lang; the next message is untouched. */
    expect_status(EDIT(c, "edit", "3", "u1", "0", "\"y\"", "1"), "ok");
    expect_stored(c, 2,
                  HEAD "3,\"ts\":1003," FROM_U1 ",\"kind\":\"code\",\"body\":\"y\","
                       "\"lang\":\"c\",\"edited\":true,\"edited_ts\":T}");
    expect_event(sub, CHAN,
                 "{\"type\":\"edited\",\"room\":\"general\",\"seq\":3,\"body\":\"y\","
                 "\"edited_ts\":T}");
    expect_stored(c, 0, HEAD "1,\"ts\":1001," FROM_U2 ",\"kind\":\"text\",\"body\":\"first\"}");
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(edit_refusals)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);

    store(c, 1, FROM_U2, "text", "\"theirs\"", "");
    store(c, 2, FROM_U1, "image", "\"data:image/png;base64,AAAA\"", "");
    store(c, 3, FROM_U1, "text", "\"mine\"", "");

    expect_status(EDIT(c, "edit", "1", "u1", "0", "\"x\"", "1"), "forbidden");
    expect_status(EDIT(c, "edit", "1", "u1", "1", "\"x\"", "1"), "forbidden"); /* admin too */
    expect_status(EDIT(c, "edit", "2", "u1", "0", "\"x\"", "1"), "image");
    expect_status(EDIT(c, "edit", "3", "u1", "0", "\"x\"", "4001"), "too_large");
    expect_status(EDIT(c, "edit", "4", "u1", "0", "\"x\"", "1"), "not_found");
    expect_status(EDIT(c, "edit", "0", "u1", "0", "\"x\"", "1"), "not_found");
    lua_test_expect_error(EDIT(c, "edit", "x", "u1", "0", "\"x\"", "1"));
    lua_test_expect_quiet(c, sub, CHAN);
    expect_stored(c, 2, HEAD "3,\"ts\":1003," FROM_U1 ",\"kind\":\"text\",\"body\":\"mine\"}");
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(delete_blanks_and_is_idempotent)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);

    store(c, 1, FROM_U2, "text", "\"theirs\"", "");
    store(c, 2, FROM_U1, "code", "\"int x;\"", ",\"lang\":\"c\",\"id\":\"k\"");
    lua_test_expect_int(CMD(c, "HSET", REACT, "2", "{\"+\":[\"u2\"]}"), 1);

    expect_status(EDIT(c, "edit", "2", "u1", "0", "\"int y;\"", "6"), "ok");
    expect_event(sub, CHAN,
                 "{\"type\":\"edited\",\"room\":\"general\",\"seq\":2,\"body\":\"int y;\","
                 "\"edited_ts\":T}");
    expect_status(EDIT(c, "delete", "2", "u1", "0", "", "0"), "ok");
    expect_stored(c, 1,
                  HEAD "2,\"ts\":1002," FROM_U1 ",\"kind\":\"code\",\"body\":\"\",\"lang\":\"c\","
                       "\"id\":\"k\",\"deleted\":true,\"deleted_ts\":T}");
    expect_event(sub, CHAN,
                 "{\"type\":\"deleted\",\"room\":\"general\",\"seq\":2,"
                 "\"deleted_ts\":T}");
    lua_test_expect_int(CMD(c, "HEXISTS", REACT, "2"), 0);
    /* Twice: fine, quiet; editing a deleted message is refused. */
    expect_status(EDIT(c, "delete", "2", "u1", "0", "", "0"), "same");
    expect_status(EDIT(c, "edit", "2", "u1", "0", "\"z\"", "1"), "deleted");
    lua_test_expect_quiet(c, sub, CHAN);

    /* Someone else's: only an admin. */
    expect_status(EDIT(c, "delete", "1", "u1", "0", "", "0"), "forbidden");
    expect_status(EDIT(c, "delete", "1", "u1", "1", "", "0"), "ok");
    expect_stored(c, 0,
                  HEAD "1,\"ts\":1001," FROM_U2 ",\"kind\":\"text\",\"body\":\"\","
                       "\"deleted\":true,\"deleted_ts\":T}");
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(edit_finds_seq_after_trim_and_in_dm)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe("t:user:{a}", "t:user:{b}");

    for (int i = 1; i <= 5; i++)
        store(c, i, FROM_U1, "text", "\"m\"", "");
    lua_test_expect_str(CMD(c, "LTRIM", HIST, "2", "-1"), "OK"); /* 3 4 5 left */
    expect_status(EVAL(c, "message_edit", 2, HIST, REACT, "edit", "2", "u1", "0", "\"e\"", "1",
                       "PUBLISH", "t:user:{a}", "{\"type\":\"edited\",\"with\":\"b\",\"seq\":2"),
                  "not_found");
    expect_status(EVAL(c, "message_edit", 2, HIST, REACT, "edit", "4", "u1", "0", "\"e\"", "1",
                       "PUBLISH", "t:user:{a}", "{\"type\":\"edited\",\"with\":\"b\",\"seq\":4",
                       "t:user:{b}", "{\"type\":\"edited\",\"with\":\"a\",\"seq\":4"),
                  "ok");
    expect_event(sub, "t:user:{a}",
                 "{\"type\":\"edited\",\"with\":\"b\",\"seq\":4,\"body\":\"e\",\"edited_ts\":T}");
    expect_event(sub, "t:user:{b}",
                 "{\"type\":\"edited\",\"with\":\"a\",\"seq\":4,\"body\":\"e\",\"edited_ts\":T}");
    expect_stored(c, 1,
                  HEAD "4,\"ts\":1004," FROM_U1 ",\"kind\":\"text\",\"body\":\"e\","
                       "\"edited\":true,\"edited_ts\":T}");
    redisFree(sub);
    redisFree(c);
}
END_TEST

#define REACTX(c, seq, uid, emoji, emoji_json)                                                     \
    EVAL(c, "reaction_toggle", 2, HIST, REACT, seq, uid, emoji, emoji_json, "3", "4", "PUBLISH",   \
         CHAN, "{\"type\":\"reaction\",\"room\":\"general\",\"seq\":" seq)

static void expect_toggle(redisReply *r, const char *status, long long on)
{
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "type %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_str_eq(r->element[0]->str, status);
    ck_assert_int_eq(r->element[1]->integer, on);
    freeReplyObject(r);
}

START_TEST(reactions_toggle_and_cap)
{
    redisContext *c = lua_test_connect();
    redisContext *sub = lua_test_subscribe(CHAN, NULL);
    const char *thumb = "\xf0\x9f\x91\x8d";

    store(c, 1, FROM_U1, "text", "\"a\"", "");
    store(c, 2, FROM_U2, "text", "\"b\"", "");
    expect_toggle(REACTX(c, "2", "u1", thumb, "\"\xf0\x9f\x91\x8d\""), "ok", 1);
    lua_test_expect_message(sub, CHAN,
                            "{\"type\":\"reaction\",\"room\":\"general\",\"seq\":2,\"emoji\":"
                            "\"\xf0\x9f\x91\x8d\",\"user\":\"u1\",\"on\":true}");
    lua_test_expect_str(CMD(c, "HGET", REACT, "2"), "{\"\xf0\x9f\x91\x8d\":[\"u1\"]}");
    expect_toggle(REACTX(c, "2", "u2", thumb, "\"\xf0\x9f\x91\x8d\""), "ok", 1);
    lua_test_expect_message(sub, CHAN,
                            "{\"type\":\"reaction\",\"room\":\"general\",\"seq\":2,\"emoji\":"
                            "\"\xf0\x9f\x91\x8d\",\"user\":\"u2\",\"on\":true}");
    lua_test_expect_str(CMD(c, "HGET", REACT, "2"), "{\"\xf0\x9f\x91\x8d\":[\"u1\",\"u2\"]}");
    /* Toggle off, then the last one off: the field goes. */
    expect_toggle(REACTX(c, "2", "u1", thumb, "\"\xf0\x9f\x91\x8d\""), "ok", 0);
    lua_test_expect_message(sub, CHAN,
                            "{\"type\":\"reaction\",\"room\":\"general\",\"seq\":2,\"emoji\":"
                            "\"\xf0\x9f\x91\x8d\",\"user\":\"u1\",\"on\":false}");
    expect_toggle(REACTX(c, "2", "u2", thumb, "\"\xf0\x9f\x91\x8d\""), "ok", 0);
    lua_test_expect_message(sub, CHAN,
                            "{\"type\":\"reaction\",\"room\":\"general\",\"seq\":2,\"emoji\":"
                            "\"\xf0\x9f\x91\x8d\",\"user\":\"u2\",\"on\":false}");
    lua_test_expect_int(CMD(c, "HEXISTS", REACT, "2"), 0);

    /* Caps: 3 kinds, 4 reactions in all. */
    expect_toggle(REACTX(c, "1", "u1", "a", "\"a\""), "ok", 1);
    expect_toggle(REACTX(c, "1", "u1", "b", "\"b\""), "ok", 1);
    expect_toggle(REACTX(c, "1", "u1", "c", "\"c\""), "ok", 1);
    expect_toggle(REACTX(c, "1", "u1", "d", "\"d\""), "limit", 0);
    expect_toggle(REACTX(c, "1", "u2", "a", "\"a\""), "ok", 1);
    expect_toggle(REACTX(c, "1", "u3", "a", "\"a\""), "limit", 0);
    for (int i = 0; i < 4; i++) {
        redisReply *r = NULL;

        ck_assert_int_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    /* Not in history, or deleted. */
    expect_toggle(REACTX(c, "9", "u1", "a", "\"a\""), "not_found", 0);
    expect_status(EDIT(c, "delete", "1", "u1", "0", "", "0"), "ok");
    expect_event(sub, CHAN,
                 "{\"type\":\"deleted\",\"room\":\"general\",\"seq\":1,"
                 "\"deleted_ts\":T}");
    lua_test_expect_int(CMD(c, "HEXISTS", REACT, "1"), 0);
    expect_toggle(REACTX(c, "1", "u1", "a", "\"a\""), "not_found", 0);
    lua_test_expect_quiet(c, sub, CHAN);
    redisFree(sub);
    redisFree(c);
}
END_TEST

START_TEST(reactions_of_trimmed_messages_go)
{
    redisContext *c = lua_test_connect();

    for (int i = 1; i <= 3; i++)
        store(c, i, FROM_U1, "text", "\"m\"", "");
    lua_test_expect_int(CMD(c, "HSET", REACT, "1", "{\"a\":[\"u1\"]}"), 1);
    lua_test_expect_int(CMD(c, "HSET", REACT, "2", "{\"a\":[\"u1\"]}"), 1);
    lua_test_expect_str(CMD(c, "LTRIM", HIST, "2", "-1"), "OK"); /* 3 left */
    expect_toggle(REACTX(c, "3", "u1", "a", "\"a\""), "ok", 1);
    lua_test_expect_int(CMD(c, "HLEN", REACT), 1);
    lua_test_expect_int(CMD(c, "HEXISTS", REACT, "3"), 1);
    redisFree(c);
}
END_TEST

TCase *marks_tcase(void)
{
    TCase *tc = tcase_create("marks");

    tcase_add_checked_fixture(tc, lua_test_flush, NULL);
    tcase_add_test(tc, read_mark_only_moves_forward);
    tcase_add_test(tc, edit_rewrites_in_place);
    tcase_add_test(tc, edit_refusals);
    tcase_add_test(tc, delete_blanks_and_is_idempotent);
    tcase_add_test(tc, edit_finds_seq_after_trim_and_in_dm);
    tcase_add_test(tc, reactions_toggle_and_cap);
    tcase_add_test(tc, reactions_of_trimmed_messages_go);
    return tc;
}
