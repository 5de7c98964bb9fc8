/* gateway/slots.c's CRC16 and hash tags against the server's own CLUSTER KEYSLOT, for
 * thousands of keys: only in the cluster run (a server without cluster support refuses
 * the command). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "lua_test.h"
#include "slots.h"

#define KEYSLOT_KEYS 5000

/* Key number i: plain names, names with tags (empty, nested, unclosed, several),
 * the gateway's own shapes, and random bytes of every value. */
static size_t make_key(unsigned i, char *buf, size_t size)
{
    /* head, number, tail */
    static const char *const shapes[][2] = {{"chat:room:{r", "}:history"},
                                            {"chat:rooms:names{chat:rooms}", ""},
                                            {"k", ""},
                                            {"{}k", ""},
                                            {"k{", ""},
                                            {"k}", "{"},
                                            {"{{", "}}"},
                                            {"a{b}{c", "}"},
                                            {"chat:online:nodes:u", "{chat:online}"},
                                            {"{", "}"},
                                            {"x{}{y", "}"},
                                            {"", "{"}};
    size_t nshapes = sizeof(shapes) / sizeof(shapes[0]);
    if (i % 4 != 3) {
        int n = snprintf(buf, size, "%s%u%s", shapes[i % nshapes][0], i, shapes[i % nshapes][1]);
        return n > 0 ? (size_t)n : 0;
    }
    /* Random bytes (NUL and braces included), 1-40 of them. */
    size_t len = 1 + (size_t)(rand() % 40);
    for (size_t k = 0; k < len; k++)
        buf[k] = (char)(rand() % 8 == 0 ? "{}"[rand() % 2] : rand() % 256);
    return len;
}

START_TEST(keyslot_matches_redis)
{
    redisContext *c = lua_test_connect();
    static char keys[KEYSLOT_KEYS][48];
    static size_t lens[KEYSLOT_KEYS];
    redisReply *probe = CMD(c, "CLUSTER", "KEYSLOT", "x");
    int cluster = probe->type == REDIS_REPLY_INTEGER;

    freeReplyObject(probe);
    if (!cluster) {
        redisFree(c);
        return;
    }
    srand(14);
    for (unsigned i = 0; i < KEYSLOT_KEYS; i++) {
        lens[i] = make_key(i, keys[i], sizeof(keys[i]));
        const char *argv[] = {"CLUSTER", "KEYSLOT", keys[i]};
        size_t argl[] = {7, 7, lens[i]};
        ck_assert_int_eq(redisAppendCommandArgv(c, 3, argv, argl), REDIS_OK);
    }
    for (unsigned i = 0; i < KEYSLOT_KEYS; i++) {
        redisReply *r = NULL;
        ck_assert_int_eq(redisGetReply(c, (void **)&r), REDIS_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        ck_assert_msg((unsigned)r->integer == gw_slots_keyslot(keys[i], lens[i]),
                      "key %u (%zu bytes): redis %lld, ours %u", i, lens[i], r->integer,
                      gw_slots_keyslot(keys[i], lens[i]));
        freeReplyObject(r);
    }
    redisFree(c);
}
END_TEST

TCase *keyslot_tcase(void)
{
    TCase *tc = tcase_create("keyslot");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, keyslot_matches_redis);
    return tc;
}
