/* slots.c: CRC16 and hash tags, command routing, redirections, the slot map; and
 * keys.c's layout, whose every script's keys must share one slot. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "keys.h"
#include "slots.h"
#include "tests.h"

static unsigned slot_of(const char *key)
{
    return gw_slots_keyslot(key, strlen(key));
}

START_TEST(test_crc16_and_tags)
{
    /* The check value of CRC16/XMODEM, and the Cluster specification's examples. */
    ck_assert_uint_eq(gw_slots_crc16("123456789", 9), 0x31c3);
    ck_assert_uint_eq(slot_of("foo"), 12182);
    ck_assert_uint_eq(slot_of("{user1000}.following"), slot_of("user1000"));
    ck_assert_uint_eq(slot_of("{user1000}.followers"), slot_of("user1000"));
    ck_assert_uint_eq(slot_of("foo{}{bar}"), gw_slots_crc16("foo{}{bar}", 10) & 16383);
    ck_assert_uint_eq(slot_of("foo{{bar}}zap"), slot_of("{bar"));
    ck_assert_uint_eq(slot_of("foo{bar}{zap}"), slot_of("bar"));
    ck_assert_uint_eq(slot_of("{"), gw_slots_crc16("{", 1) & 16383);
    ck_assert_uint_eq(slot_of(""), 0);
}
END_TEST

/* Every group of keys one script touches (gateway/lua) hashes to one slot. */
START_TEST(test_key_layout_one_slot_per_script)
{
    static const char *const prefixes[] = {"chat:", "", "x:y:"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        const char *p = prefixes[i];
        char a[GW_KEY_MAX], b[GW_KEY_MAX];
        ck_assert_ptr_nonnull(gw_key_rooms(a, sizeof(a), p));
        unsigned rooms = slot_of(a);
        ck_assert_ptr_nonnull(gw_key_room_names(b, sizeof(b), p));
        ck_assert_uint_eq(slot_of(b), rooms);
        ck_assert_ptr_nonnull(gw_key_rooms_popular(b, sizeof(b), p));
        ck_assert_uint_eq(slot_of(b), rooms);
        ck_assert_ptr_nonnull(gw_key_rooms_active(b, sizeof(b), p));
        ck_assert_uint_eq(slot_of(b), rooms);
        ck_assert_ptr_nonnull(gw_key_room_quota(b, sizeof(b), p, "u1", 494321));
        ck_assert_uint_eq(slot_of(b), rooms);

        ck_assert_ptr_nonnull(gw_key_online(a, sizeof(a), p));
        unsigned online = slot_of(a);
        ck_assert_ptr_nonnull(gw_key_online_users(b, sizeof(b), p));
        ck_assert_uint_eq(slot_of(b), online);
        ck_assert_ptr_nonnull(gw_key_online_holders(b, sizeof(b), p, "u1"));
        ck_assert_uint_eq(slot_of(b), online);

        ck_assert_ptr_nonnull(gw_key_room(a, sizeof(a), p, "general", NULL));
        unsigned room = slot_of(a);
        static const char *const kinds[] = {"seq", "history", "members", "users", "reactions"};
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            ck_assert_ptr_nonnull(gw_key_room(b, sizeof(b), p, "general", kinds[k]));
            ck_assert_uint_eq(slot_of(b), room);
        }
        ck_assert_ptr_nonnull(gw_key_room_holders(b, sizeof(b), p, "general", "u1"));
        ck_assert_uint_eq(slot_of(b), room);
        ck_assert_ptr_nonnull(gw_key_idempotency(b, sizeof(b), p, "general", "u1", NULL, "c7"));
        ck_assert_uint_eq(slot_of(b), room);

        ck_assert_ptr_nonnull(gw_key_dm(a, sizeof(a), p, "u2", "u1", "seq"));
        ck_assert_ptr_nonnull(gw_key_dm(b, sizeof(b), p, "u1", "u2", "history"));
        ck_assert_uint_eq(slot_of(a), slot_of(b));
        ck_assert_ptr_nonnull(gw_key_idempotency(b, sizeof(b), p, NULL, "u2", "u1", "c7"));
        ck_assert_uint_eq(slot_of(a), slot_of(b));
    }
}
END_TEST

static int route(int argc, const char **argv)
{
    return gw_slots_command_slot(argc, argv, NULL);
}

START_TEST(test_command_slot)
{
    const char *get[] = {"GET", "chat:room:{general}:seq"};
    ck_assert_int_eq(route(2, get), (int)slot_of("general"));
    const char *eval[] = {"EVALSHA", "abc", "2", "a{t}", "b{t}", "arg"};
    ck_assert_int_eq(route(6, eval), (int)slot_of("t"));
    const char *cross[] = {"EVAL", "src", "2", "a{t}", "b{u}"};
    ck_assert_int_eq(route(5, cross), GW_SLOTS_CROSS);
    const char *nokeys[] = {"EVAL", "src", "0", "x"};
    ck_assert_int_eq(route(4, nokeys), GW_SLOTS_ANY);
    const char *toomany[] = {"EVAL", "src", "3", "a"};
    ck_assert_int_eq(route(4, toomany), GW_SLOTS_CROSS);
    const char *del[] = {"DEL", "a{t}", "b{t}", "c{t}"};
    ck_assert_int_eq(route(4, del), (int)slot_of("t"));
    const char *del2[] = {"del", "a{t}", "b"};
    ck_assert_int_eq(route(3, del2), GW_SLOTS_CROSS);
    const char *pub[] = {"PUBLISH", "chat:all", "x"};
    ck_assert_int_eq(route(3, pub), GW_SLOTS_ANY);
    const char *ping[] = {"PING"};
    ck_assert_int_eq(route(1, ping), GW_SLOTS_ANY);
}
END_TEST

START_TEST(test_redirects)
{
    bool ask;
    unsigned slot;
    char host[64];
    int port;
    ck_assert(gw_slots_parse_redirect("MOVED 3999 127.0.0.1:6381", &ask, &slot, host, sizeof(host),
                                      &port));
    ck_assert(!ask);
    ck_assert_uint_eq(slot, 3999);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 6381);
    ck_assert(
        gw_slots_parse_redirect("ASK 16383 ::1:7000", &ask, &slot, host, sizeof(host), &port));
    ck_assert(ask);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 7000);
    ck_assert(!gw_slots_parse_redirect("MOVED 16384 h:1", &ask, &slot, host, sizeof(host), &port));
    ck_assert(!gw_slots_parse_redirect("MOVED 1 h:0", &ask, &slot, host, sizeof(host), &port));
    ck_assert(!gw_slots_parse_redirect("MOVED 1 :1", &ask, &slot, host, sizeof(host), &port));
    ck_assert(!gw_slots_parse_redirect("MOVED x h:1", &ask, &slot, host, sizeof(host), &port));
    ck_assert(!gw_slots_parse_redirect("ERR no", &ask, &slot, host, sizeof(host), &port));
    ck_assert(!gw_slots_parse_redirect("MOVED 1 averylonghostname:1", &ask, &slot, host, 8, &port));
}
END_TEST

/* A CLUSTER SLOTS reply built by hand: ranges of {lo, hi, {host, port, id}}. */
struct fake {
    redisReply top, range[3], lo[3], hi[3], master[3], host[3], port[3];
    redisReply *top_el[3], *range_el[3][3], *master_el[3][2];
};

static void fake_range(struct fake *f, size_t i, long long lo, long long hi, const char *host,
                       long long port)
{
    f->lo[i] = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = lo};
    f->hi[i] = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = hi};
    f->host[i] = (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)host, .len = strlen(host)};
    f->port[i] = (redisReply){.type = REDIS_REPLY_INTEGER, .integer = port};
    f->master_el[i][0] = &f->host[i];
    f->master_el[i][1] = &f->port[i];
    f->master[i] =
        (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 2, .element = f->master_el[i]};
    f->range_el[i][0] = &f->lo[i];
    f->range_el[i][1] = &f->hi[i];
    f->range_el[i][2] = &f->master[i];
    f->range[i] = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 3, .element = f->range_el[i]};
    f->top_el[i] = &f->range[i];
}

START_TEST(test_slot_map)
{
    struct gw_slots *m = gw_slots_new();
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(gw_slots_owner(m, 0), -1);
    struct fake f;
    memset(&f, 0, sizeof(f));
    fake_range(&f, 0, 0, 5460, "127.0.0.1", 7000);
    fake_range(&f, 1, 5461, 10922, "", 7001); /* unknown endpoint: the answering host */
    fake_range(&f, 2, 10923, 16383, "127.0.0.1", 7000);
    f.top = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = 3, .element = f.top_el};
    ck_assert_int_eq(gw_slots_load(m, &f.top, "10.0.0.9"), 0);
    ck_assert_uint_eq(gw_slots_count(m), 2);
    ck_assert_int_eq(gw_slots_owner(m, 0), 0);
    ck_assert_int_eq(gw_slots_owner(m, 16383), 0);
    ck_assert_int_eq(gw_slots_owner(m, 5461), 1);
    ck_assert_str_eq(gw_slots_host(m, 1), "10.0.0.9");
    ck_assert_int_eq(gw_slots_port(m, 1), 7001);
    ck_assert_int_eq(gw_slots_find(m, "10.0.0.9", 7001), 1);
    ck_assert_int_eq(gw_slots_find(m, "10.0.0.9", 7002), -1);
    ck_assert_int_eq(gw_slots_owner(m, 16384), -1);

    /* A reply that leaves slots uncovered changes nothing. */
    f.top.elements = 2;
    ck_assert_int_eq(gw_slots_load(m, &f.top, "h"), -1);
    ck_assert_int_eq(gw_slots_owner(m, 16383), 0);
    f.top.elements = 3;
    f.hi[2].integer = 16384;
    ck_assert_int_eq(gw_slots_load(m, &f.top, "h"), -1);
    ck_assert_int_eq(gw_slots_load(m, NULL, "h"), -1);
    gw_slots_free(m);
    gw_slots_free(NULL);
}
END_TEST

TCase *slots_tcase(void)
{
    TCase *tc = tcase_create("slots");
    tcase_add_test(tc, test_crc16_and_tags);
    tcase_add_test(tc, test_key_layout_one_slot_per_script);
    tcase_add_test(tc, test_command_slot);
    tcase_add_test(tc, test_redirects);
    tcase_add_test(tc, test_slot_map);
    return tc;
}
