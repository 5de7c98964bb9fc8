/*
 * Read markers, edits, deletes and reactions across nodes (docs/protocol.md,
 * "Read markers, edits and reactions"): a `read` reaches every connection of
 * the user on every node and comes back in `welcome` and `joined`; edits,
 * deletes and reactions reach every member on every node, are refused on
 * someone else's message, are idempotent, and are what history shows after a
 * reconnect.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const fast_args[] = {"--rate", "500/500", NULL};

#define THUMB "\xf0\x9f\x91\x8d"

/* Exactly one frame of `type` queued on each of ts (after waiting for it),
 * returned from the first (new reference); every copy is the same JSON. */
static json_t *expect_everywhere(struct tc **ts, size_t n, const char *type, const char *what)
{
    json_t *first = NULL;
    char *want = NULL;

    ck_assert_msg(ct_wait_count(ts, n, type, NULL, 1, CT_WAIT_MS), "%s: %s not everywhere", what,
                  type);
    for (size_t i = 0; i < n; i++) {
        json_t *got = ct_take(ts[i], type, NULL);
        char *text;

        ck_assert_msg(json_array_size(got) == 1, "%s: %zu %s frames on connection %zu", what,
                      json_array_size(got), type, i);
        text = json_dumps(json_array_get(got, 0), JSON_COMPACT | JSON_SORT_KEYS);
        if (!first) {
            first = json_incref(json_array_get(got, 0));
            want = text;
        } else {
            ck_assert_str_eq(text, want);
            free(text);
        }
        json_decref(got);
    }
    free(want);
    return first;
}

static json_t *find_seq(json_t *msgs, long long seq)
{
    size_t i;
    json_t *m;

    json_array_foreach(msgs, i, m)
    {
        if (ct_json_int(m, "seq") == seq)
            return m;
    }
    ck_abort_msg("seq %lld not in the messages", seq);
    return NULL;
}

START_TEST(test_read_markers_sync)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta[2], *tb, *ta3;
    json_t *r, *ev, *w, *marks;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "read_a", &a);
    ct_login(cl, 2, "read_b", &b);
    ta[0] = ct_connect(cl, 0, &a);
    ta[1] = ct_connect(cl, 1, &a);
    tb = ct_connect(cl, 2, &b);
    json_decref(ct_join(tb, "marks", -1));
    for (int i = 1; i <= 3; i++) {
        char id[8];

        snprintf(id, sizeof(id), "p%d", i);
        ck_assert_int_eq(ct_post(tb, "marks", id, "news"), i);
    }

    /* No need to have joined to mark a room read. */
    ct_send(ta[0], "{\"type\":\"read\",\"id\":\"r1\",\"room\":\"marks\",\"seq\":2}");
    r = ct_expect(ta[0], "r1", "ack");
    ck_assert_str_eq(ct_json_str(r, "room"), "marks");
    ck_assert_int_eq(ct_json_int(r, "seq"), 2);
    json_decref(r);
    ev = expect_everywhere(ta, 2, "read", "read room");
    ck_assert_str_eq(ct_json_str(ev, "room"), "marks");
    ck_assert_int_eq(ct_json_int(ev, "seq"), 2);
    json_decref(ev);

    /* Backwards: acked with the marker as it is, and nobody is told. */
    ct_send(ta[1], "{\"type\":\"read\",\"id\":\"r2\",\"room\":\"marks\",\"seq\":1}");
    r = ct_expect(ta[1], "r2", "ack");
    ck_assert_int_eq(ct_json_int(r, "seq"), 2);
    json_decref(r);
    /* Past the end: capped at the room's seq. */
    ct_send(ta[1], "{\"type\":\"read\",\"id\":\"r3\",\"room\":\"marks\",\"seq\":99}");
    r = ct_expect(ta[1], "r3", "ack");
    ck_assert_int_eq(ct_json_int(r, "seq"), 3);
    json_decref(r);
    ev = expect_everywhere(ta, 2, "read", "read capped");
    ck_assert_int_eq(ct_json_int(ev, "seq"), 3);
    json_decref(ev);

    /* A conversation with b. */
    ct_send(tb,
            "{\"type\":\"private\",\"id\":\"d1\",\"to\":\"%s\",\"kind\":\"text\",\"body\":\"yo\"}",
            a.id);
    json_decref(ct_expect(tb, "d1", "ack"));
    ct_send(ta[1], "{\"type\":\"read\",\"id\":\"r4\",\"with\":\"%s\",\"seq\":1}", b.id);
    r = ct_expect(ta[1], "r4", "ack");
    ck_assert_str_eq(ct_json_str(r, "with"), b.id);
    ck_assert_int_eq(ct_json_int(r, "seq"), 1);
    json_decref(r);
    ev = expect_everywhere(ta, 2, "read", "read dm");
    ck_assert_str_eq(ct_json_str(ev, "with"), b.id);
    ck_assert_int_eq(ct_json_int(ev, "seq"), 1);
    json_decref(ev);
    ck_assert_int_eq(ct_settle_count(tb, "read", NULL, 300), 0);

    /* Hostile input. */
    ct_send(ta[0], "{\"type\":\"read\",\"id\":\"r5\",\"room\":\"marks\",\"seq\":-1}");
    ct_expect_error(ta[0], "r5", "bad_request");
    ct_send(ta[0], "{\"type\":\"read\",\"id\":\"r6\",\"room\":\"marks\",\"with\":\"x\",\"seq\":1}");
    ct_expect_error(ta[0], "r6", "bad_request");
    ct_send(ta[0], "{\"type\":\"read\",\"id\":\"r7\",\"room\":\"marks\",\"seq\":1.5}");
    ct_expect_error(ta[0], "r7", "bad_request");
    ct_send(ta[0], "{\"type\":\"read\",\"id\":\"r8\",\"room\":\"marks\"}");
    ct_expect_error(ta[0], "r8", "bad_request");

    /* A new device on the third node starts with the markers. */
    ta3 = tc_connect(cl->base, cl->ws_url[2], a.token, NULL, NULL);
    ck_assert_ptr_nonnull(ta3);
    w = tc_wait_type(ta3, "welcome", CT_WAIT_MS);
    ck_assert_ptr_nonnull(w);
    marks = json_object_get(w, "last_read");
    ck_assert(json_is_object(marks));
    ck_assert_uint_eq(json_object_size(marks), 2);
    ck_assert_int_eq(ct_json_int(marks, "room:marks"), 3);
    {
        char field[96];

        snprintf(field, sizeof(field), "dm:%s", b.id);
        ck_assert_int_eq(ct_json_int(marks, field), 1);
    }
    json_decref(w);
    r = ct_join(ta3, "marks", -1);
    ck_assert_int_eq(ct_json_int(r, "last_read"), 3);
    json_decref(r);
    r = ct_join(tb, "marks", -1);
    ck_assert_int_eq(ct_json_int(r, "last_read"), 0);
    json_decref(r);

    tc_free(ta[0]);
    tc_free(ta[1]);
    tc_free(ta3);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

START_TEST(test_edit_delete_react)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[3];
    struct tc *t[3], *outsider, *again;
    json_t *ev, *r, *m, *re;
    char big[4100 + 64];

    ct_cluster_start(cl, 3, fast_args);
    ct_team(cl, "edit_", 3, "er", u, t);
    ck_assert_int_eq(ct_post(t[0], "er", "m1", "hello"), 1);
    ck_assert_int_eq(ct_post(t[1], "er", "m2", "second"), 2);
    ck_assert(ct_wait_count(t, 3, "message", "er", 2, CT_WAIT_MS));
    for (int i = 0; i < 3; i++)
        json_decref(ct_take(t[i], "message", NULL));

    /* edit: everyone on every node sees it */
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e1\",\"room\":\"er\",\"seq\":1,\"body\":\"hello "
                  "world\"}");
    r = ct_expect(t[0], "e1", "ack");
    ck_assert_int_eq(ct_json_int(r, "seq"), 1);
    json_decref(r);
    ev = expect_everywhere(t, 3, "edited", "edit");
    ck_assert_str_eq(ct_json_str(ev, "room"), "er");
    ck_assert_int_eq(ct_json_int(ev, "seq"), 1);
    ck_assert_str_eq(ct_json_str(ev, "body"), "hello world");
    ck_assert_int_gt(ct_json_int(ev, "edited_ts"), 0);
    json_decref(ev);
    /* the same again: acked, nothing sent */
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e2\",\"room\":\"er\",\"seq\":1,\"body\":\"hello "
                  "world\"}");
    json_decref(ct_expect(t[0], "e2", "ack"));

    /* refusals */
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e3\",\"room\":\"er\",\"seq\":2,\"body\":\"mine\"}");
    ct_expect_error(t[0], "e3", "forbidden");
    ct_send(t[0], "{\"type\":\"delete\",\"id\":\"e4\",\"room\":\"er\",\"seq\":2}");
    ct_expect_error(t[0], "e4", "forbidden");
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e5\",\"room\":\"er\",\"seq\":99,\"body\":\"x\"}");
    ct_expect_error(t[0], "e5", "not_found");
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e6\",\"room\":\"er\",\"seq\":1,\"body\":\"\"}");
    ct_expect_error(t[0], "e6", "bad_request");
    memset(big, 'x', 4001);
    big[4001] = '\0';
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e7\",\"room\":\"er\",\"seq\":1,\"body\":\"%s\"}",
            big);
    ct_expect_error(t[0], "e7", "too_large");
    ct_send(t[0], "{\"type\":\"edit\",\"id\":\"e8\",\"room\":\"er\",\"seq\":0,\"body\":\"x\"}");
    ct_expect_error(t[0], "e8", "bad_request");
    ct_send(t[0], "{\"type\":\"react\",\"id\":\"e9\",\"room\":\"er\",\"seq\":1,\"emoji\":\"\"}");
    ct_expect_error(t[0], "e9", "bad_request");
    ct_send(t[0], "{\"type\":\"react\",\"id\":\"e10\",\"room\":\"er\",\"seq\":1,"
                  "\"emoji\":\"12345678901234567\"}");
    ct_expect_error(t[0], "e10", "bad_request");
    ct_send(t[0], "{\"type\":\"react\",\"id\":\"e11\",\"room\":\"er\",\"seq\":1,"
                  "\"emoji\":\"a\\nb\"}");
    ct_expect_error(t[0], "e11", "bad_request");
    outsider = ct_connect(cl, 1, &u[2]); /* same user, has not joined */
    ct_send(outsider, "{\"type\":\"react\",\"id\":\"e12\",\"room\":\"er\",\"seq\":1,"
                      "\"emoji\":\"x\"}");
    ct_expect_error(outsider, "e12", "not_member");

    /* reactions toggle */
    ct_send(t[2],
            "{\"type\":\"react\",\"id\":\"x1\",\"room\":\"er\",\"seq\":1,\"emoji\":\"" THUMB "\"}");
    r = ct_expect(t[2], "x1", "ack");
    ck_assert(json_is_true(json_object_get(r, "on")));
    json_decref(r);
    ev = expect_everywhere(t, 3, "reaction", "react on");
    ck_assert_int_eq(ct_json_int(ev, "seq"), 1);
    ck_assert_str_eq(ct_json_str(ev, "emoji"), THUMB);
    ck_assert_str_eq(ct_json_str(ev, "user"), u[2].id);
    ck_assert(json_is_true(json_object_get(ev, "on")));
    json_decref(ev);
    ct_send(t[1],
            "{\"type\":\"react\",\"id\":\"x2\",\"room\":\"er\",\"seq\":1,\"emoji\":\"" THUMB "\"}");
    json_decref(ct_expect(t[1], "x2", "ack"));
    json_decref(expect_everywhere(t, 3, "reaction", "react b"));
    ct_send(t[2],
            "{\"type\":\"react\",\"id\":\"x3\",\"room\":\"er\",\"seq\":1,\"emoji\":\"" THUMB "\"}");
    r = ct_expect(t[2], "x3", "ack");
    ck_assert(json_is_false(json_object_get(r, "on")));
    json_decref(r);
    ev = expect_everywhere(t, 3, "reaction", "react off");
    ck_assert(json_is_false(json_object_get(ev, "on")));
    json_decref(ev);

    /* delete, twice; then it cannot be edited or reacted to */
    ct_send(t[1], "{\"type\":\"react\",\"id\":\"x4\",\"room\":\"er\",\"seq\":2,\"emoji\":\"ok\"}");
    json_decref(ct_expect(t[1], "x4", "ack"));
    json_decref(expect_everywhere(t, 3, "reaction", "react 2"));
    ct_send(t[1], "{\"type\":\"delete\",\"id\":\"d1\",\"room\":\"er\",\"seq\":2}");
    json_decref(ct_expect(t[1], "d1", "ack"));
    ev = expect_everywhere(t, 3, "deleted", "delete");
    ck_assert_int_eq(ct_json_int(ev, "seq"), 2);
    json_decref(ev);
    ct_send(t[1], "{\"type\":\"delete\",\"id\":\"d2\",\"room\":\"er\",\"seq\":2}");
    json_decref(ct_expect(t[1], "d2", "ack"));
    ct_send(t[1], "{\"type\":\"edit\",\"id\":\"d3\",\"room\":\"er\",\"seq\":2,\"body\":\"back\"}");
    ct_expect_error(t[1], "d3", "not_found");
    ct_send(t[1], "{\"type\":\"react\",\"id\":\"d4\",\"room\":\"er\",\"seq\":2,\"emoji\":\"ok\"}");
    ct_expect_error(t[1], "d4", "not_found");
    /* nothing else went out: one event per change */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ct_settle_count(t[i], "edited", NULL, i == 0 ? 300 : 0), 0);
        ck_assert_int_eq(ct_count(t[i], "deleted", NULL), 0);
        ck_assert_int_eq(ct_count(t[i], "reaction", NULL), 0);
    }

    /* after a reconnect, the stored state */
    again = ct_connect(cl, 2, &u[0]);
    r = ct_join(again, "er", -1);
    m = find_seq(json_object_get(r, "messages"), 1);
    ck_assert_str_eq(ct_json_str(m, "body"), "hello world");
    ck_assert(json_is_true(json_object_get(m, "edited")));
    ck_assert_str_eq(ct_json_str(m, "kind"), "text");
    ck_assert_str_eq(ct_json_str(m, "id"), "m1");
    m = find_seq(json_object_get(r, "messages"), 2);
    ck_assert_str_eq(ct_json_str(m, "body"), "");
    ck_assert(json_is_true(json_object_get(m, "deleted")));
    ck_assert_str_eq(ct_json_str(m, "kind"), "text");
    re = json_object_get(r, "reactions");
    ck_assert_uint_eq(json_object_size(re), 1);
    re = json_object_get(json_object_get(re, "1"), THUMB);
    ck_assert_uint_eq(json_array_size(re), 1);
    ck_assert_str_eq(json_string_value(json_array_get(re, 0)), u[1].id);
    json_decref(r);
    ct_send(again, "{\"type\":\"history\",\"id\":\"h1\",\"room\":\"er\"}");
    r = ct_expect(again, "h1", "history");
    ck_assert_uint_eq(json_array_size(json_object_get(r, "messages")), 2);
    re = json_object_get(json_object_get(json_object_get(r, "reactions"), "1"), THUMB);
    ck_assert_uint_eq(json_array_size(re), 1);
    json_decref(r);

    tc_free(again);
    tc_free(outsider);
    ct_team_free(3, u, t);
}
END_TEST

START_TEST(test_private_edits_and_admin_delete)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b, adm = {.nick = "Admin"};
    struct tc *ta, *tb, *tb2, *tadm, *both[3];
    json_t *ev, *r, *m;
    char claims[256];

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "dm_a", &a);
    ct_login(cl, 1, "dm_b", &b);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);
    tb2 = ct_connect(cl, 2, &b);
    ct_send(ta,
            "{\"type\":\"private\",\"id\":\"p1\",\"to\":\"%s\",\"kind\":\"text\","
            "\"body\":\"tpyo\"}",
            b.id);
    json_decref(ct_expect(ta, "p1", "ack"));
    both[0] = ta;
    both[1] = tb;
    both[2] = tb2;
    ck_assert(ct_wait_count(both, 3, "private", NULL, 1, CT_WAIT_MS));

    ct_send(ta, "{\"type\":\"edit\",\"id\":\"e1\",\"with\":\"%s\",\"seq\":1,\"body\":\"typo\"}",
            b.id);
    r = ct_expect(ta, "e1", "ack");
    ck_assert_str_eq(ct_json_str(r, "with"), b.id);
    json_decref(r);
    /* each side's event names the other side */
    ev = expect_everywhere(both, 1, "edited", "dm edit a");
    ck_assert_str_eq(ct_json_str(ev, "with"), b.id);
    ck_assert_str_eq(ct_json_str(ev, "body"), "typo");
    json_decref(ev);
    ev = expect_everywhere(both + 1, 2, "edited", "dm edit b");
    ck_assert_str_eq(ct_json_str(ev, "with"), a.id);
    json_decref(ev);
    ct_send(tb, "{\"type\":\"edit\",\"id\":\"e2\",\"with\":\"%s\",\"seq\":1,\"body\":\"no\"}",
            a.id);
    ct_expect_error(tb, "e2", "forbidden");
    ct_send(tb, "{\"type\":\"react\",\"id\":\"e3\",\"with\":\"%s\",\"seq\":1,\"emoji\":\"ok\"}",
            a.id);
    json_decref(ct_expect(tb, "e3", "ack"));
    ev = expect_everywhere(both + 1, 2, "reaction", "dm react b");
    ck_assert_str_eq(ct_json_str(ev, "with"), a.id);
    ck_assert_str_eq(ct_json_str(ev, "user"), b.id);
    json_decref(ev);
    ev = expect_everywhere(both, 1, "reaction", "dm react a");
    ck_assert_str_eq(ct_json_str(ev, "with"), b.id);
    json_decref(ev);
    ct_send(tb, "{\"type\":\"history\",\"id\":\"h1\",\"with\":\"%s\"}", a.id);
    r = ct_expect(tb, "h1", "history");
    m = find_seq(json_object_get(r, "messages"), 1);
    ck_assert_str_eq(ct_json_str(m, "body"), "typo");
    ck_assert(json_is_true(json_object_get(m, "edited")));
    ck_assert_uint_eq(json_array_size(json_object_get(
                          json_object_get(json_object_get(r, "reactions"), "1"), "ok")),
                      1);
    json_decref(r);

    /* an admin deletes someone else's room message */
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"admin-1\",\"name\":\"Admin\",\"exp\":%lld,\"role\":\"admin\"}",
             (long long)time(NULL) + 3600);
    adm.token = h_jwt(H_JWT_SECRET, "HS256", claims);
    ck_assert_ptr_nonnull(adm.token);
    tadm = ct_connect(cl, 2, &adm);
    json_decref(ct_join(ta, "mod", -1));
    json_decref(ct_join(tadm, "mod", -1));
    ck_assert_int_eq(ct_post(ta, "mod", "bad", "spam"), 1);
    ct_send(tadm, "{\"type\":\"edit\",\"id\":\"a1\",\"room\":\"mod\",\"seq\":1,\"body\":\"x\"}");
    ct_expect_error(tadm, "a1", "forbidden");
    ct_send(tadm, "{\"type\":\"delete\",\"id\":\"a2\",\"room\":\"mod\",\"seq\":1}");
    json_decref(ct_expect(tadm, "a2", "ack"));
    ev = expect_everywhere(both, 1, "deleted", "admin delete");
    ck_assert_str_eq(ct_json_str(ev, "room"), "mod");
    json_decref(ev);

    tc_free(ta);
    tc_free(tb);
    tc_free(tb2);
    tc_free(tadm);
    free(adm.token);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

TCase *marks_tcase(void)
{
    TCase *tc = tcase_create("marks");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_read_markers_sync);
    tcase_add_test(tc, test_edit_delete_react);
    tcase_add_test(tc, test_private_edits_and_admin_delete);
    return tc;
}
