/*
 * Every error code of PROTOCOL.md section 4 a client can trigger, each with
 * the request's id, the connection staying open: bad_request, not_member,
 * not_found, conflict, too_large, forbidden (and broadcast by an admin),
 * rate_limited (and the 1008 close past 10*B drops).  unavailable is in
 * test_failure.c (Redis down).
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const fast_args[] = {"--rate", "500/500", NULL};

static void expect_pong(struct tc *t, const char *id)
{
    ct_send(t, "{\"type\":\"ping\",\"id\":\"%s\"}", id);
    json_decref(ct_expect(t, id, "pong"));
    ck_assert(!t->closed);
}

START_TEST(test_bad_request)
{
    struct h_cluster *cl = ct_fixture();
    static const char *const bad[] = {
        "{\"type\":\"nope\",\"id\":\"b0\"}",
        "{\"id\":\"b1\"}",
        "{\"type\":42,\"id\":\"b2\"}",
        "{\"type\":\"join\",\"id\":\"b3\",\"room\":\"Bad Room\"}",
        "{\"type\":\"join\",\"id\":\"b4\",\"room\":\"abcdefghijabcdefghijabcdefghijabc\"}",
        "{\"type\":\"join\",\"id\":\"b5\",\"room\":\"-dash\"}",
        "{\"type\":\"join\",\"id\":\"b6\"}",
        "{\"type\":\"join\",\"id\":\"b7\",\"room\":\"general\",\"since\":\"x\"}",
        "{\"type\":\"message\",\"id\":\"b8\",\"room\":\"general\",\"kind\":\"text\"}",
        "{\"type\":\"message\",\"id\":\"b9\",\"room\":\"general\",\"kind\":\"video\",\"body\":"
        "\"x\"}",
        "{\"type\":\"message\",\"id\":\"b10\",\"room\":7,\"kind\":\"text\",\"body\":\"x\"}",
        "{\"type\":\"message\",\"id\":\"b11\",\"room\":\"general\",\"kind\":\"image\","
        "\"body\":\"http://example.com/x.png\"}",
        "{\"type\":\"history\",\"id\":\"b12\",\"room\":\"general\",\"limit\":0}",
        "{\"type\":\"history\",\"id\":\"b13\",\"room\":\"general\",\"limit\":201}",
        "{\"type\":\"private\",\"id\":\"b14\",\"kind\":\"text\",\"body\":\"x\"}",
        "{\"type\":\"private\",\"id\":\"b15\",\"to\":\"not an "
        "id!\",\"kind\":\"text\",\"body\":\"x\"}",
        "{\"type\":\"create_room\",\"id\":\"b16\",\"room\":\"Nope!\"}",
        "{\"type\":\"search\",\"id\":\"b17\"}",
    };
    struct ct_user u;
    struct tc *t;
    json_t *r;
    char id[16];

    ct_cluster_start(cl, 1, fast_args);
    ct_login(cl, 0, "bad_req", &u);
    t = ct_connect(cl, 0, &u);
    json_decref(ct_join(t, "general", -1));

    /* not JSON at all, and JSON that is not an object: no id to echo */
    ct_send(t, "{bad json");
    r = tc_wait_type(t, "error", CT_WAIT_MS);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(ct_json_str(r, "code"), "bad_request");
    json_decref(r);
    ct_send(t, "[1,2,3]");
    r = tc_wait_type(t, "error", CT_WAIT_MS);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(ct_json_str(r, "code"), "bad_request");
    json_decref(r);
    expect_pong(t, "alive0");

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(id, sizeof(id), "b%zu", i);
        ct_send(t, "%s", bad[i]);
        r = ct_reply(t, id, CT_WAIT_MS);
        ck_assert_msg(r != NULL, "no reply to %s", bad[i]);
        ck_assert_msg(strcmp(ct_json_str(r, "type"), "error") == 0 &&
                          strcmp(ct_json_str(r, "code"), "bad_request") == 0,
                      "%s: wanted error bad_request, got %s %s", bad[i], ct_json_str(r, "type"),
                      ct_json_str(r, "code"));
        json_decref(r);
    }
    expect_pong(t, "alive1");
    tc_free(t);
    ct_user_free(&u);
}
END_TEST

START_TEST(test_not_member_not_found_conflict)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta, *tb;
    json_t *r, *rooms, *room;
    size_t i;
    bool listed = false;

    ct_cluster_start(cl, 2, fast_args);
    ct_login(cl, 0, "err_a", &a);
    ct_login(cl, 1, "err_b", &b);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);

    ct_send(ta, "{\"type\":\"message\",\"id\":\"nm1\",\"room\":\"random\",\"kind\":\"text\","
                "\"body\":\"x\"}");
    ct_expect_error(ta, "nm1", "not_member");
    json_decref(ct_join(ta, "random", -1));
    ct_post(ta, "random", "ok1", "now a member");
    ct_send(ta, "{\"type\":\"leave\",\"id\":\"lv\",\"room\":\"random\"}");
    json_decref(ct_expect(ta, "lv", "left"));
    ct_send(ta, "{\"type\":\"message\",\"id\":\"nm2\",\"room\":\"random\",\"kind\":\"text\","
                "\"body\":\"x\"}");
    ct_expect_error(ta, "nm2", "not_member");

    ct_send(ta, "{\"type\":\"history\",\"id\":\"nf1\",\"room\":\"nosuchroom\"}");
    ct_expect_error(ta, "nf1", "not_found");
    ct_send(ta, "{\"type\":\"private\",\"id\":\"nf2\",\"to\":\"nobody-ever\",\"kind\":\"text\","
                "\"body\":\"x\"}");
    ct_expect_error(ta, "nf2", "not_found");

    ct_send(ta, "{\"type\":\"create_room\",\"id\":\"cf1\",\"room\":\"general\"}");
    ct_expect_error(ta, "cf1", "conflict");
    ct_send(ta,
            "{\"type\":\"create_room\",\"id\":\"cr\",\"room\":\"newroom\",\"topic\":\"fresh\"}");
    r = ct_expect(ta, "cr", "ack");
    ck_assert_str_eq(ct_json_str(r, "room"), "newroom");
    json_decref(r);
    r = tc_wait_type(tb, "room_created", CT_WAIT_MS);
    ck_assert_msg(r != NULL, "room_created did not reach the other node");
    ck_assert_str_eq(ct_json_str(r, "room"), "newroom");
    ck_assert_str_eq(ct_json_str(r, "topic"), "fresh");
    ck_assert_str_eq(ct_user_id(json_object_get(r, "by")), a.id);
    json_decref(r);
    r = tc_wait_type(ta, "room_created", CT_WAIT_MS); /* everyone: the creator too */
    ck_assert_msg(r != NULL, "room_created did not reach the creator");
    ck_assert_str_eq(ct_json_str(r, "room"), "newroom");
    json_decref(r);
    ct_send(tb, "{\"type\":\"create_room\",\"id\":\"cf2\",\"room\":\"newroom\"}");
    ct_expect_error(tb, "cf2", "conflict");
    ct_send(tb, "{\"type\":\"rooms\",\"id\":\"rl\"}");
    r = ct_expect(tb, "rl", "rooms");
    rooms = json_object_get(r, "rooms");
    json_array_foreach(rooms, i, room)
    {
        listed |= strcmp(ct_json_str(room, "name"), "newroom") == 0;
    }
    ck_assert(listed);
    json_decref(r);
    /* the history of a room that exists but is empty is not not_found */
    ct_send(tb, "{\"type\":\"history\",\"id\":\"h\",\"room\":\"newroom\"}");
    r = ct_expect(tb, "h", "history");
    ck_assert_int_eq(json_array_size(json_object_get(r, "messages")), 0);
    json_decref(r);
    /* joining a room that does not exist creates it, for everybody to see */
    json_decref(ct_join(tb, "autoroom", -1));
    r = tc_wait_type(ta, "room_created", CT_WAIT_MS);
    ck_assert_msg(r != NULL, "join of a new room sent no room_created");
    ck_assert_str_eq(ct_json_str(r, "room"), "autoroom");
    json_decref(r);
    expect_pong(ta, "alive");

    tc_free(ta);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

/* A message whose body is `n` copies of the UTF-8 character `ch`. */
static void send_repeated(struct tc *t, const char *id, const char *type_fields, const char *ch,
                          size_t n)
{
    size_t cl_ = strlen(ch), len = 256 + strlen(type_fields) + n * cl_;
    char *buf = malloc(len), *p;

    ck_assert_ptr_nonnull(buf);
    p = buf + snprintf(buf, len, "{\"id\":\"%s\",%s,\"body\":\"", id, type_fields);
    for (size_t i = 0; i < n; i++, p += cl_)
        memcpy(p, ch, cl_);
    strcpy(p, "\"}");
    ck_assert_int_eq(tc_send(t, buf), 0);
    free(buf);
}

START_TEST(test_too_large)
{
    struct h_cluster *cl = ct_fixture();
    static const char *const text = "\"type\":\"message\",\"room\":\"big\",\"kind\":\"text\"";
    static const char *const code = "\"type\":\"message\",\"room\":\"big\",\"kind\":\"code\"";
    struct ct_user a, b;
    struct tc *t;
    char fields[256];

    ct_cluster_start(cl, 1, fast_args);
    ct_login(cl, 0, "large_a", &a);
    ct_login(cl, 0, "large_b", &b);
    t = ct_connect(cl, 0, &a);
    json_decref(ct_join(t, "big", -1));

    send_repeated(t, "t4000", text, "a", 4000);
    json_decref(ct_expect(t, "t4000", "ack"));
    send_repeated(t, "t4001", text, "a", 4001);
    ct_expect_error(t, "t4001", "too_large");
    /* code points, not bytes */
    send_repeated(t, "e4000", text, "\xc3\xa9", 4000);
    json_decref(ct_expect(t, "e4000", "ack"));
    send_repeated(t, "e4001", text, "\xc3\xa9", 4001);
    ct_expect_error(t, "e4001", "too_large");
    send_repeated(t, "emoji", text, "\xf0\x9f\x98\x80", 4000);
    json_decref(ct_expect(t, "emoji", "ack"));
    send_repeated(t, "emoji+", text, "\xf0\x9f\x98\x80", 4001);
    ct_expect_error(t, "emoji+", "too_large");

    send_repeated(t, "c20000", code, "x", 20000);
    json_decref(ct_expect(t, "c20000", "ack"));
    send_repeated(t, "c20001", code, "x", 20001);
    ct_expect_error(t, "c20001", "too_large");
    snprintf(fields, sizeof(fields), "%s,\"lang\":\"%s\"", code,
             "abcdefghijabcdefghijabcdefghijab");
    send_repeated(t, "lang32", fields, "x", 10);
    json_decref(ct_expect(t, "lang32", "ack"));
    snprintf(fields, sizeof(fields), "%s,\"lang\":\"%s\"", code,
             "abcdefghijabcdefghijabcdefghijabc");
    send_repeated(t, "lang33", fields, "x", 10);
    ct_expect_error(t, "lang33", "too_large");

    snprintf(fields, sizeof(fields), "\"type\":\"private\",\"to\":\"%s\",\"kind\":\"text\"", b.id);
    send_repeated(t, "p4001", fields, "a", 4001);
    ct_expect_error(t, "p4001", "too_large");
    send_repeated(t, "p4000", fields, "a", 4000);
    json_decref(ct_expect(t, "p4000", "ack"));

    ct_send(t, "{\"type\":\"message\",\"id\":\"img\",\"room\":\"big\",\"kind\":\"image\","
               "\"body\":\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAA"
               "DUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==\"}");
    json_decref(ct_expect(t, "img", "ack"));
    expect_pong(t, "alive");
    tc_free(t);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

START_TEST(test_forbidden_and_admin_broadcast)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user g, x;
    struct tc *tg, *tx, *tadm, *tadm2, *all[4];
    char claims[256], *jwt;
    struct ct_user adm = {.nick = "Admin"};
    json_t *r;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "guest_g", &g);
    ct_login(cl, 2, "guest_x", &x);
    tg = ct_connect(cl, 0, &g);
    tx = ct_connect(cl, 2, &x);
    ct_send(tg, "{\"type\":\"broadcast\",\"id\":\"bc0\",\"body\":\"hear me\"}");
    ct_expect_error(tg, "bc0", "forbidden");

    snprintf(claims, sizeof(claims),
             "{\"sub\":\"admin-1\",\"name\":\"Admin\",\"exp\":%lld,\"role\":\"admin\"}",
             (long long)time(NULL) + 3600);
    jwt = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_ptr_nonnull(jwt);
    adm.token = jwt;
    tadm = ct_connect(cl, 1, &adm);
    tadm2 = ct_connect(cl, 2, &adm);
    ct_send(tadm, "{\"type\":\"broadcast\",\"id\":\"bc1\",\"body\":\"maintenance at noon\"}");
    json_decref(ct_expect(tadm, "bc1", "ack"));
    all[0] = tg;
    all[1] = tx;
    all[2] = tadm;
    all[3] = tadm2;
    ck_assert_msg(ct_wait_count(all, 4, "broadcast", NULL, 1, CT_WAIT_MS),
                  "not every connection got the broadcast");
    h_loop_for(cl->base, 500);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(ct_count(all[i], "broadcast", NULL), 1);
        r = tc_wait_type(all[i], "broadcast", 0);
        ck_assert_str_eq(ct_json_str(r, "body"), "maintenance at noon");
        ck_assert_str_eq(ct_user_id(json_object_get(r, "from")), "admin-1");
        ck_assert_int_gt(ct_json_int(r, "ts"), 0);
        json_decref(r);
    }

    tc_free(tg);
    tc_free(tx);
    tc_free(tadm);
    tc_free(tadm2);
    free(jwt);
    ct_user_free(&g);
    ct_user_free(&x);
}
END_TEST

START_TEST(test_rate_limited)
{
    struct h_cluster *cl = ct_fixture();
    static const char *const rate_args[] = {"--rate", "2/3", NULL};
    struct ct_user u, v;
    struct tc *t, *t2;
    size_t pongs, limited;
    json_t *r;

    ct_cluster_start(cl, 1, rate_args);
    ct_login(cl, 0, "rate_u", &u);
    ct_login(cl, 0, "rate_v", &v);
    t = ct_connect(cl, 0, &u);
    for (int k = 0; k < 10; k++)
        ct_send(t, "{\"type\":\"ping\",\"id\":\"p%d\"}", k);
    h_loop_for(cl->base, 1000);
    pongs = ct_count(t, "pong", NULL);
    limited = 0;
    while ((r = tc_wait_type(t, "error", 0)) != NULL) {
        ck_assert_str_eq(ct_json_str(r, "code"), "rate_limited");
        limited++;
        json_decref(r);
    }
    ck_assert_msg(pongs >= 3 && pongs <= 4, "burst 3: %zu pongs for 10 pings", pongs);
    ck_assert_msg(pongs + limited == 10, "%zu pongs + %zu rate_limited for 10 pings", pongs,
                  limited);
    ck_assert(!t->closed);
    h_loop_for(cl->base, 1600);
    expect_pong(t, "later");

    /* more than 10*B = 30 dropped within 10 s: closed with 1008 */
    t2 = ct_connect(cl, 0, &v);
    for (int k = 0; k < 45; k++)
        ct_send(t2, "{\"type\":\"ping\",\"id\":\"q%d\"}", k);
    ck_assert_int_eq(tc_wait_closed(t2, CT_WAIT_MS), 1008);
    ck_assert(!t->closed);

    tc_free(t);
    tc_free(t2);
    ct_user_free(&u);
    ct_user_free(&v);
}
END_TEST

TCase *errors_tcase(void)
{
    TCase *tc = tcase_create("errors");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_add_test(tc, test_bad_request);
    tcase_add_test(tc, test_not_member_not_found_conflict);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_forbidden_and_admin_broadcast);
    tcase_add_test(tc, test_rate_limited);
    return tc;
}
