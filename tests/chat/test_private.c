/*
 * Per-user traffic across nodes (PROTOCOL.md section 4): private messages to
 * every tab of both sides, not_found and to-oneself, typing not echoed to the
 * typist, presence join/leave and online/offline once per user across tabs
 * and nodes.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fast_args[] = {"--rate", "500/500", NULL};

/* Exactly one `private` queued on t, with the given seq and sides. */
static void expect_one_private(struct tc *t, long long seq, const char *from, const char *to,
                               const char *what)
{
    json_t *p = ct_take(t, "private", NULL), *m;

    ck_assert_msg(json_array_size(p) == 1, "%s: %zu private frames, wanted 1", what,
                  json_array_size(p));
    m = json_array_get(p, 0);
    ck_assert_int_eq(ct_json_int(m, "seq"), seq);
    ck_assert_str_eq(ct_user_id(json_object_get(m, "from")), from);
    ck_assert_str_eq(ct_user_id(json_object_get(m, "to")), to);
    ck_assert_int_gt(ct_json_int(m, "ts"), 0);
    json_decref(p);
}

START_TEST(test_private_all_tabs)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user p, q, r;
    struct tc *tp[3], *tq[2], *tr, *all[5];
    json_t *ack;
    char what[32];

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "priv_p", &p);
    ct_login(cl, 1, "priv_q", &q);
    ct_login(cl, 2, "priv_r", &r);
    for (int i = 0; i < 3; i++)
        tp[i] = ct_connect(cl, i, &p);
    tq[0] = ct_connect(cl, 1, &q);
    tq[1] = ct_connect(cl, 2, &q);
    tr = ct_connect(cl, 0, &r);
    memcpy(all, tp, sizeof(tp));
    all[3] = tq[0];
    all[4] = tq[1];

    for (int k = 1; k <= 3; k++) {
        ct_send(tq[0],
                "{\"type\":\"private\",\"id\":\"pq%d\",\"to\":\"%s\",\"kind\":\"text\","
                "\"body\":\"hi %d\"}",
                k, p.id, k);
        snprintf(what, sizeof(what), "pq%d", k);
        ack = ct_expect(tq[0], what, "ack");
        ck_assert_int_eq(ct_json_int(ack, "seq"), k);
        ck_assert_str_eq(ct_json_str(ack, "to"), p.id);
        json_decref(ack);
        ck_assert_msg(ct_wait_count(all, 5, "private", NULL, 1, CT_WAIT_MS),
                      "private %d did not reach every tab", k);
        h_loop_for(cl->base, 300);
        for (int i = 0; i < 5; i++) {
            snprintf(what, sizeof(what), "msg %d tab %d", k, i);
            expect_one_private(all[i], k, q.id, p.id, what);
        }
    }
    /* the answer continues the same conversation */
    ct_send(tp[2],
            "{\"type\":\"private\",\"id\":\"pp\",\"to\":\"%s\",\"kind\":\"code\","
            "\"lang\":\"c\",\"body\":\"int x;\"}",
            q.id);
    ack = ct_expect(tp[2], "pp", "ack");
    ck_assert_int_eq(ct_json_int(ack, "seq"), 4);
    json_decref(ack);
    ck_assert(ct_wait_count(all, 5, "private", NULL, 1, CT_WAIT_MS));
    h_loop_for(cl->base, 300);
    for (int i = 0; i < 5; i++)
        expect_one_private(all[i], 4, p.id, q.id, "reply");
    ck_assert_int_eq(ct_count(tr, "private", NULL), 0);

    for (int i = 0; i < 3; i++)
        tc_free(tp[i]);
    tc_free(tq[0]);
    tc_free(tq[1]);
    tc_free(tr);
    ct_user_free(&p);
    ct_user_free(&q);
    ct_user_free(&r);
}
END_TEST

START_TEST(test_private_unknown_and_self)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user p;
    struct tc *t1, *t2, *t3, *all[3];
    json_t *ack;

    ct_cluster_start(cl, 2, fast_args);
    ct_login(cl, 0, "self_p", &p);
    t1 = ct_connect(cl, 0, &p);
    t2 = ct_connect(cl, 1, &p);
    t3 = ct_connect(cl, 0, &p); /* two tabs on one node: still once each */
    all[0] = t1;
    all[1] = t2;
    all[2] = t3;

    ct_send(t1, "{\"type\":\"private\",\"id\":\"nf\",\"to\":\"never-logged-in-42\",\"kind\":"
                "\"text\",\"body\":\"anyone?\"}");
    ct_expect_error(t1, "nf", "not_found");

    ct_send(t1,
            "{\"type\":\"private\",\"id\":\"me\",\"to\":\"%s\",\"kind\":\"text\","
            "\"body\":\"note to self\"}",
            p.id);
    ack = ct_expect(t1, "me", "ack");
    ck_assert_int_eq(ct_json_int(ack, "seq"), 1);
    json_decref(ack);
    ck_assert(ct_wait_count(all, 3, "private", NULL, 1, CT_WAIT_MS));
    h_loop_for(cl->base, 500);
    /* sender and recipient are the same connections: once each, not twice */
    expect_one_private(t1, 1, p.id, p.id, "self, sending tab");
    expect_one_private(t2, 1, p.id, p.id, "self, tab on the other node");
    expect_one_private(t3, 1, p.id, p.id, "self, second tab on the same node");

    tc_free(t1);
    tc_free(t2);
    tc_free(t3);
    ct_user_free(&p);
}
END_TEST

START_TEST(test_typing_not_echoed)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user t_, u, v, w;
    struct tc *tt1, *tt2, *tu, *tv, *tw, *others[2];
    json_t *ty;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "typist", &t_);
    ct_login(cl, 2, "typ_u", &u);
    ct_login(cl, 0, "typ_v", &v);
    ct_login(cl, 1, "typ_w", &w);
    tt1 = ct_connect(cl, 0, &t_);
    tt2 = ct_connect(cl, 1, &t_);
    tu = ct_connect(cl, 2, &u);
    tv = ct_connect(cl, 0, &v);
    tw = ct_connect(cl, 1, &w);
    json_decref(ct_join(tt1, "typ", -1));
    json_decref(ct_join(tt2, "typ", -1));
    json_decref(ct_join(tu, "typ", -1));
    json_decref(ct_join(tv, "typ", -1));
    json_decref(ct_join(tw, "other", -1));
    others[0] = tu;
    others[1] = tv;

    ct_send(tt1, "{\"type\":\"typing\",\"room\":\"typ\"}");
    ck_assert_msg(ct_wait_count(others, 2, "typing", "typ", 1, CT_WAIT_MS),
                  "members did not get typing");
    for (int i = 0; i < 2; i++) {
        ty = tc_wait_type(others[i], "typing", 0);
        ck_assert_str_eq(ct_user_id(json_object_get(ty, "user")), t_.id);
        json_decref(ty);
    }
    h_loop_for(cl->base, 700);
    ck_assert_msg(ct_count(tt1, "typing", NULL) == 0, "typing echoed to the typist's tab");
    ck_assert_msg(ct_count(tt2, "typing", NULL) == 0,
                  "typing echoed to the typist's other tab (other node)");
    ck_assert_int_eq(ct_count(tw, "typing", NULL), 0);
    ck_assert_int_eq(ct_count(tu, "typing", NULL), 0);
    ck_assert_int_eq(ct_count(tv, "typing", NULL), 0);

    tc_free(tt1);
    tc_free(tt2);
    tc_free(tu);
    tc_free(tv);
    tc_free(tw);
    ct_user_free(&t_);
    ct_user_free(&u);
    ct_user_free(&v);
    ct_user_free(&w);
}
END_TEST

/* presence frames of `room` on t about user `id` with `event`, removed. */
static size_t take_presence(struct tc *t, const char *room, const char *id, const char *event)
{
    json_t *all = ct_take(t, "presence", room), *p;
    size_t i, n = 0;

    json_array_foreach(all, i, p)
    {
        if (strcmp(ct_user_id(json_object_get(p, "user")), id) == 0 &&
            strcmp(ct_json_str(p, "event"), event) == 0)
            n++;
        else
            json_array_append(t->frames, p); /* not ours: keep it */
    }
    json_decref(all);
    return n;
}

static size_t take_user_event(struct tc *t, const char *type, const char *id)
{
    json_t *all = ct_take(t, type, NULL), *p;
    size_t i, n = 0;

    json_array_foreach(all, i, p)
    {
        if (strcmp(ct_user_id(json_object_get(p, "user")), id) == 0)
            n++;
        else
            json_array_append(t->frames, p);
    }
    json_decref(all);
    return n;
}

START_TEST(test_presence_once_per_user)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, o;
    struct tc *ta1, *ta2, *to;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 2, "pres_o", &o);
    ct_login(cl, 0, "pres_a", &a);
    to = ct_connect(cl, 2, &o);
    json_decref(ct_join(to, "pres", -1));
    h_loop_for(cl->base, 300);
    take_presence(to, "pres", o.id, "join");  /* its own join */
    json_decref(ct_take(to, "online", NULL)); /* its own online */

    /* online: once, for the first tab anywhere */
    ta1 = ct_connect(cl, 0, &a);
    ck_assert_msg(ct_wait_count(&to, 1, "online", NULL, 1, CT_WAIT_MS), "no online");
    ta2 = ct_connect(cl, 1, &a);
    h_loop_for(cl->base, 700);
    ck_assert_int_eq(take_user_event(to, "online", a.id), 1);

    json_decref(ct_join(ta1, "pres", -1));
    ck_assert_msg(ct_wait_count(&to, 1, "presence", "pres", 1, CT_WAIT_MS), "no presence join");
    json_decref(ct_join(ta2, "pres", -1));
    h_loop_for(cl->base, 700);
    ck_assert_int_eq(take_presence(to, "pres", a.id, "join"), 1);
    /* the joiner's own connection gets it too */
    ck_assert_int_eq(take_presence(ta1, "pres", a.id, "join"), 1);
    ck_assert_int_eq(ct_count(to, "presence", NULL), 0);

    /* leave of one tab: nothing; of the last: one leave */
    ct_send(ta2, "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"pres\"}");
    json_decref(ct_expect(ta2, "l", "left"));
    h_loop_for(cl->base, 700);
    ck_assert_int_eq(ct_count(to, "presence", NULL), 0);
    ct_send(ta1, "{\"type\":\"leave\",\"id\":\"l\",\"room\":\"pres\"}");
    json_decref(ct_expect(ta1, "l", "left"));
    ck_assert_msg(ct_wait_count(&to, 1, "presence", "pres", 1, CT_WAIT_MS), "no presence leave");
    h_loop_for(cl->base, 500);
    ck_assert_int_eq(take_presence(to, "pres", a.id, "leave"), 1);

    /* rejoin, then closing tabs: leave and offline once, at the last one */
    json_decref(ct_join(ta1, "pres", -1));
    json_decref(ct_join(ta2, "pres", -1));
    ck_assert(ct_wait_count(&to, 1, "presence", "pres", 1, CT_WAIT_MS));
    h_loop_for(cl->base, 500);
    ck_assert_int_eq(take_presence(to, "pres", a.id, "join"), 1);
    tc_free(ta1);
    h_loop_for(cl->base, 1000);
    ck_assert_int_eq(ct_count(to, "presence", NULL), 0);
    ck_assert_int_eq(ct_count(to, "offline", NULL), 0);
    tc_free(ta2);
    ck_assert_msg(ct_wait_count(&to, 1, "offline", NULL, 1, CT_WAIT_MS), "no offline");
    ck_assert_msg(ct_wait_count(&to, 1, "presence", "pres", 1, CT_WAIT_MS),
                  "no presence leave on close");
    h_loop_for(cl->base, 700);
    ck_assert_int_eq(take_presence(to, "pres", a.id, "leave"), 1);
    ck_assert_int_eq(take_user_event(to, "offline", a.id), 1);

    tc_free(to);
    ct_user_free(&a);
    ct_user_free(&o);
}
END_TEST

/* Connects u to gateway gw with /ws?presence=batch and consumes the welcome. */
static struct tc *connect_batch(struct h_cluster *cl, int gw, const struct ct_user *u)
{
    char url[96];
    int status = -1;
    struct tc *t;
    json_t *w;

    snprintf(url, sizeof(url), "%s?presence=batch", cl->ws_url[gw]);
    t = tc_connect(cl->base, url, u->token, NULL, &status);
    ck_assert_msg(t != NULL, "%s: batch upgrade at gw%d failed with %d", u->nick, gw + 1, status);
    w = tc_wait_type(t, "welcome", CT_WAIT_MS);
    ck_assert_msg(w != NULL, "%s: no welcome from gw%d", u->nick, gw + 1);
    json_decref(w);
    return t;
}

/* Folds the presence_batch frames queued on t into state (user id -> true
 * online, false offline), in arrival order; returns how many there were.
 * Asserts that no user is listed twice in one frame. */
static size_t fold_batches(struct tc *t, json_t *state)
{
    json_t *all = ct_take(t, "presence_batch", NULL), *b, *u;
    size_t i, j, n = json_array_size(all);

    json_array_foreach(all, i, b)
    {
        json_t *seen = json_object();
        for (int on = 1; on >= 0; on--) {
            json_t *list = json_object_get(b, on ? "online" : "offline");
            ck_assert_msg(json_is_array(list), "presence_batch without %s",
                          on ? "online" : "offline");
            json_array_foreach(list, j, u)
            {
                const char *id = ct_json_str(u, "id");
                ck_assert_ptr_nonnull(id);
                ck_assert_ptr_nonnull(ct_json_str(u, "name"));
                ck_assert_msg(!json_object_get(seen, id), "%s twice in one batch", id);
                json_object_set_new(seen, id, json_true());
                json_object_set_new(state, id, json_boolean(on));
            }
        }
        json_decref(seen);
    }
    json_decref(all);
    return n;
}

/* A client that asked for presence_batch gets online/offline coalesced, one
 * frame per interval with user objects, from every node; a client that did
 * not still gets PROTOCOL.md's online and offline, one frame each. */
START_TEST(test_presence_batch)
{
    struct h_cluster *cl = ct_fixture();
    static const char *const args[] = {"--rate", "500/500", "--presence-batch", "300", NULL};
    struct ct_user o, b, a, x;
    struct tc *to, *tb, *ta, *tx;
    json_t *state = json_object();

    ct_cluster_start(cl, 3, args);
    ct_login(cl, 2, "pb_legacy", &o);
    ct_login(cl, 1, "pb_batch", &b);
    ct_login(cl, 0, "pb_a", &a);
    ct_login(cl, 0, "pb_x", &x);
    to = ct_connect(cl, 2, &o);
    tb = connect_batch(cl, 1, &b);
    h_loop_for(cl->base, 800);
    fold_batches(tb, state);
    json_object_clear(state);
    json_decref(ct_take(to, "online", NULL));

    /* a comes and stays, x comes and goes at once, on another node */
    ta = ct_connect(cl, 0, &a);
    tx = ct_connect(cl, 0, &x);
    tc_free(tx);
    ck_assert_msg(ct_wait_count(&to, 1, "offline", NULL, 1, CT_WAIT_MS), "legacy: no offline");
    h_loop_for(cl->base, 800); /* past the last interval */
    ck_assert_int_eq(ct_count(to, "online", NULL), 2);
    ck_assert_int_eq(ct_count(to, "offline", NULL), 1);
    ck_assert_int_eq(ct_count(to, "presence_batch", NULL), 0);

    ck_assert_int_eq(ct_count(tb, "online", NULL), 0);
    ck_assert_int_eq(ct_count(tb, "offline", NULL), 0);
    size_t frames = fold_batches(tb, state);
    ck_assert_msg(frames >= 1 && frames <= 3, "%zu presence_batch frames", frames);
    ck_assert_msg(json_is_true(json_object_get(state, a.id)), "a not online in the batches");
    ck_assert_msg(json_is_false(json_object_get(state, x.id)), "x not offline in the batches");

    /* a goes: the batch client hears it too */
    tc_free(ta);
    ck_assert_msg(ct_wait_count(&tb, 1, "presence_batch", NULL, 1, CT_WAIT_MS), "no batch");
    fold_batches(tb, state);
    ck_assert_msg(json_is_false(json_object_get(state, a.id)), "a not offline in the batches");
    ck_assert_msg(ct_wait_count(&to, 1, "offline", NULL, 2, CT_WAIT_MS), "legacy: no offline");

    json_decref(state);
    tc_free(tb);
    tc_free(to);
    ct_user_free(&o);
    ct_user_free(&b);
    ct_user_free(&a);
    ct_user_free(&x);
}
END_TEST

/* ids of a `users` reply */
static bool users_has(json_t *reply, const char *id)
{
    json_t *u;
    size_t i;

    json_array_foreach(json_object_get(reply, "users"), i, u)
    {
        if (strcmp(ct_json_str(u, "id"), id) == 0)
            return true;
    }
    return false;
}

/* Nicknames are unique among online users cluster-wide, case-insensitively;
 * `users` lists every online user whatever their node. */
START_TEST(test_nick_and_users)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b, c, a2;
    struct tc *ta, *tb, *tc_;
    json_t *r;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "Nicky", &a);
    ta = ct_connect(cl, 0, &a);
    ck_assert_int_eq(h_login(cl, 1, "nicky", NULL, NULL), 409);
    ck_assert_int_eq(h_login(cl, 2, "NICKY", NULL, NULL), 409);
    ct_login(cl, 1, "users_b", &b);
    ct_login(cl, 2, "users_c", &c);
    tb = ct_connect(cl, 1, &b);
    tc_ = ct_connect(cl, 2, &c);
    ct_send(tc_, "{\"type\":\"users\",\"id\":\"u\"}");
    r = ct_expect(tc_, "u", "users");
    ck_assert(users_has(r, a.id) && users_has(r, b.id) && users_has(r, c.id));
    json_decref(r);

    tc_free(ta);
    ck_assert_msg(ct_wait_count(&tb, 1, "offline", NULL, 1, CT_WAIT_MS), "no offline");
    ct_login(cl, 1, "nicky", &a2); /* free again once its holder is offline */
    ck_assert_str_ne(a2.id, a.id);
    ct_send(tb, "{\"type\":\"users\",\"id\":\"u2\"}");
    r = ct_expect(tb, "u2", "users");
    ck_assert(!users_has(r, a.id) && users_has(r, b.id) && users_has(r, c.id));
    json_decref(r);

    tc_free(tb);
    tc_free(tc_);
    ct_user_free(&a);
    ct_user_free(&a2);
    ct_user_free(&b);
    ct_user_free(&c);
}
END_TEST

/* A private to a user who logged in once but is offline is stored and can be
 * read from history when they come back. */
START_TEST(test_private_to_offline_user)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta, *tb;
    json_t *r, *m;

    ct_cluster_start(cl, 2, fast_args);
    ct_login(cl, 0, "off_a", &a);
    ct_login(cl, 1, "off_b", &b);
    ta = ct_connect(cl, 0, &a);
    ct_send(ta,
            "{\"type\":\"private\",\"id\":\"p\",\"to\":\"%s\",\"kind\":\"text\","
            "\"body\":\"read this later\"}",
            b.id);
    r = ct_expect(ta, "p", "ack");
    ck_assert_int_eq(ct_json_int(r, "seq"), 1);
    json_decref(r);
    /* Past the replay window of a first connection (a message sent while
     * the recipient's session is being set up is delivered live; one from
     * well before, only through history). */
    h_loop_for(cl->base, 1300);
    tb = ct_connect(cl, 1, &b);
    h_loop_for(cl->base, 300);
    ck_assert_int_eq(ct_count(tb, "private", NULL), 0);
    ct_send(tb, "{\"type\":\"history\",\"id\":\"h\",\"with\":\"%s\"}", a.id);
    r = ct_expect(tb, "h", "history");
    ct_assert_seqs(json_object_get(r, "messages"), 1, 1, "history with");
    m = json_array_get(json_object_get(r, "messages"), 0);
    ck_assert_str_eq(ct_json_str(m, "body"), "read this later");
    json_decref(r);
    tc_free(ta);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

static size_t search_count(struct tc *t, const char *id, const char *query)
{
    json_t *r;
    size_t n;

    ct_send(t, "{\"type\":\"search\",\"id\":\"%s\",%s}", id, query);
    r = ct_expect(t, id, "results");
    n = json_array_size(json_object_get(r, "messages"));
    json_decref(r);
    return n;
}

/* search: the rooms this connection joined and the caller's own
 * conversations (or one named room, joined or not), case-insensitive, oldest
 * first, with the room/user/after/before filters. */
START_TEST(test_search)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b, c;
    struct tc *ta, *tb, *tc_;
    json_t *r, *msgs, *m;
    long long ts_mid;
    size_t i;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "srch_a", &a);
    ct_login(cl, 1, "srch_b", &b);
    ct_login(cl, 2, "srch_c", &c);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);
    tc_ = ct_connect(cl, 2, &c);
    json_decref(ct_join(ta, "s1", -1));
    json_decref(ct_join(tb, "s2", -1));
    ct_post(ta, "s1", "m1", "Hello World");
    ct_post(ta, "s1", "m2", "nothing to see");
    h_loop_for(cl->base, 20);
    ct_post(tb, "s2", "m3", "well HELLO there");
    ct_send(ta, "{\"type\":\"history\",\"id\":\"hm\",\"room\":\"s2\"}");
    r = ct_expect(ta, "hm", "history");
    ts_mid = ct_json_int(json_array_get(json_object_get(r, "messages"), 0), "ts");
    json_decref(r);
    h_loop_for(cl->base, 20);
    ct_send(ta,
            "{\"type\":\"private\",\"id\":\"p1\",\"to\":\"%s\",\"kind\":\"text\","
            "\"body\":\"hello private\"}",
            b.id);
    json_decref(ct_expect(ta, "p1", "ack"));
    ct_send(tc_,
            "{\"type\":\"private\",\"id\":\"p2\",\"to\":\"%s\",\"kind\":\"text\","
            "\"body\":\"hello secret\"}",
            b.id);
    json_decref(ct_expect(tc_, "p2", "ack"));

    ct_send(ta, "{\"type\":\"search\",\"id\":\"s\",\"q\":\"hElLo\"}");
    r = ct_expect(ta, "s", "results");
    msgs = json_object_get(r, "messages");
    if (json_array_size(msgs) != 2) {
        char *dump = json_dumps(msgs, JSON_COMPACT);

        ck_abort_msg("a's search for hElLo found %zu, wanted 2 (s1, a-b private): %s",
                     json_array_size(msgs), dump);
    }
    json_array_foreach(msgs, i, m)
    {
        static const char *const want[] = {"Hello World", "hello private"};

        ck_assert_str_eq(ct_json_str(m, "body"), want[i]);
    }
    json_decref(r);
    /* b: s2 (joined) and both conversations; not s1, which b never joined */
    ck_assert_int_eq(search_count(tb, "s2", "\"q\":\"hello\""), 3);
    ck_assert_int_eq(search_count(ta, "s3", "\"q\":\"hello\",\"room\":\"s1\""), 1);
    /* a named room is searched whether joined or not */
    ck_assert_int_eq(search_count(ta, "s3b", "\"q\":\"hello\",\"room\":\"s2\""), 1);
    {
        char q[200];

        snprintf(q, sizeof(q), "\"q\":\"hello\",\"user\":\"%s\"", b.id);
        ck_assert_int_eq(search_count(ta, "s4", q), 0);
        snprintf(q, sizeof(q), "\"q\":\"hello\",\"room\":\"s2\",\"user\":\"%s\"", b.id);
        ck_assert_int_eq(search_count(ta, "s4b", q), 1);
        snprintf(q, sizeof(q), "\"q\":\"hello\",\"after\":%lld", ts_mid);
        ck_assert_int_eq(search_count(ta, "s5", q), 1);
        snprintf(q, sizeof(q), "\"q\":\"hello\",\"before\":%lld", ts_mid);
        ck_assert_int_eq(search_count(ta, "s6", q), 1);
    }
    ck_assert_int_eq(search_count(ta, "s7", "\"q\":\"no such words\""), 0);

    tc_free(ta);
    tc_free(tb);
    tc_free(tc_);
    ct_user_free(&a);
    ct_user_free(&b);
    ct_user_free(&c);
}
END_TEST

/* With --presence-ttl 3, users that stay connected are refreshed: no
 * spurious leave/offline, everybody still listed after several TTLs. */
START_TEST(test_presence_refresh)
{
    struct h_cluster *cl = ct_fixture();
    static const char *const ttl_args[] = {"--rate", "500/500", "--presence-ttl", "3", NULL};
    struct ct_user u[3];
    struct tc *t[3];
    json_t *r;

    ct_cluster_start(cl, 3, ttl_args);
    ct_team(cl, "fresh", 3, "stay", u, t);
    h_loop_for(cl->base, 500);
    for (int i = 0; i < 3; i++)
        json_array_clear(t[i]->frames);
    h_loop_for(cl->base, 10000);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(ct_count(t[i], "offline", NULL) == 0, "spurious offline on gw%d", i + 1);
        ck_assert_msg(ct_count(t[i], "presence", NULL) == 0, "spurious presence on gw%d", i + 1);
        ck_assert_msg(!t[i]->closed, "connection on gw%d closed", i + 1);
    }
    ct_send(t[0], "{\"type\":\"users\",\"id\":\"u\"}");
    r = ct_expect(t[0], "u", "users");
    for (int i = 0; i < 3; i++)
        ck_assert(users_has(r, u[i].id));
    json_decref(r);
    ct_post(t[2], "stay", "still", "still here");
    ck_assert(ct_wait_count(t, 3, "message", "stay", 1, CT_WAIT_MS));
    ct_team_free(3, u, t);
}
END_TEST

TCase *private_tcase(void)
{
    TCase *tc = tcase_create("private");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_add_test(tc, test_private_all_tabs);
    tcase_add_test(tc, test_private_unknown_and_self);
    tcase_add_test(tc, test_typing_not_echoed);
    tcase_add_test(tc, test_presence_once_per_user);
    tcase_add_test(tc, test_presence_batch);
    tcase_add_test(tc, test_nick_and_users);
    tcase_add_test(tc, test_private_to_offline_user);
    tcase_add_test(tc, test_search);
    tcase_add_test(tc, test_presence_refresh);
    return tc;
}
