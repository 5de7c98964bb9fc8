/*
 * Room delivery across three gateways (PROTOCOL.md sections 4 and 5): fan-out
 * exactly once in seq order, history capped at --history in Redis, join with
 * since/recovered, no gap and no repeat between `joined` and live traffic,
 * idempotent resend.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A generous rate so these tests measure delivery, not the limiter. */
static const char *const fast_args[] = {"--rate", "500/500", NULL};
static const char *const capped_args[] = {"--rate", "500/500", "--history", "20", NULL};

#define FAN_CONNS 7
#define FAN_MSGS (FAN_CONNS * 5)

/* Every connection of seven (two tabs each of three users spread over three
 * nodes, plus a third tab of one user on a node it already has one on) sends
 * five messages at once; all see all 35, seq 1..35, once. */
START_TEST(test_fanout_exactly_once)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[3];
    struct tc *t[FAN_CONNS];
    char *body_of[FAN_MSGS + 1] = {0};
    char id[32], body[32];
    json_t *joined = NULL;

    ct_cluster_start(cl, 3, fast_args);
    for (int i = 0; i < 3; i++) {
        char nick[16];

        snprintf(nick, sizeof(nick), "fan%d", i);
        ct_login(cl, i, nick, &u[i]);
    }
    for (int c = 0; c < FAN_CONNS; c++) {
        /* user c/2, tab on node c%3: every user has tabs on two nodes, and
         * user 0 a third one next to its first, on gw1 */
        t[c] = ct_connect(cl, c % 3, &u[c == 6 ? 0 : c / 2]);
        json_decref(joined);
        joined = ct_join(t[c], "fan", -1);
    }
    /* the last joiner sees every user once, whatever their tabs and nodes */
    for (int i = 0; i < 3; i++) {
        json_t *m;
        size_t k;
        int seen = 0;

        json_array_foreach(json_object_get(joined, "members"), k, m)
        {
            seen += strcmp(ct_user_id(m), u[i].id) == 0;
        }
        ck_assert_msg(seen == 1, "joined.members lists %s %d times", u[i].nick, seen);
    }
    json_decref(joined);
    ct_send(t[0], "{\"type\":\"rooms\",\"id\":\"r\"}");
    joined = ct_expect(t[0], "r", "rooms");
    {
        json_t *room;
        size_t k;
        long long members = -1;

        json_array_foreach(json_object_get(joined, "rooms"), k, room)
        {
            if (strcmp(ct_json_str(room, "name"), "fan") == 0)
                members = ct_json_int(room, "members");
        }
        ck_assert_msg(members == 3, "rooms: fan has %lld members, wanted 3 users", members);
    }
    json_decref(joined);
    for (int k = 0; k < 5; k++) {
        for (int c = 0; c < FAN_CONNS; c++) {
            snprintf(id, sizeof(id), "m%d-%d", c, k);
            snprintf(body, sizeof(body), "body %d %d", c, k);
            ct_send(t[c],
                    "{\"type\":\"message\",\"id\":\"%s\",\"room\":\"fan\",\"kind\":\"text\","
                    "\"body\":\"%s\"}",
                    id, body);
        }
    }
    for (int c = 0; c < FAN_CONNS; c++) {
        for (int k = 0; k < 5; k++) {
            json_t *ack;
            long long seq;

            snprintf(id, sizeof(id), "m%d-%d", c, k);
            ack = ct_expect(t[c], id, "ack");
            seq = ct_json_int(ack, "seq");
            ck_assert_msg(seq >= 1 && seq <= FAN_MSGS, "ack %s seq %lld", id, seq);
            ck_assert_msg(body_of[seq] == NULL, "seq %lld acked twice", seq);
            ck_assert_int_gt(ct_json_int(ack, "ts"), 0);
            snprintf(body, sizeof(body), "body %d %d", c, k);
            body_of[seq] = strdup(body);
            json_decref(ack);
        }
    }
    ck_assert_msg(ct_wait_count(t, FAN_CONNS, "message", "fan", FAN_MSGS, CT_WAIT_MS),
                  "not every connection got %d messages", FAN_MSGS);
    h_loop_for(cl->base, 500);
    for (int c = 0; c < FAN_CONNS; c++) {
        json_t *msgs = ct_take(t[c], "message", "fan"), *m;
        size_t i;
        char what[32];

        snprintf(what, sizeof(what), "connection %d (gw%d)", c, c % 3 + 1);
        ct_assert_seqs(msgs, 1, FAN_MSGS, what);
        json_array_foreach(msgs, i, m)
        {
            ck_assert_str_eq(ct_json_str(m, "body"), body_of[i + 1]);
            ck_assert_str_eq(ct_json_str(m, "kind"), "text");
            ck_assert_ptr_nonnull(json_object_get(m, "from"));
            ck_assert_int_gt(ct_json_int(m, "ts"), 0);
        }
        json_decref(msgs);
    }
    for (int c = 0; c < FAN_CONNS; c++)
        tc_free(t[c]);
    for (int i = 0; i < 3; i++)
        ct_user_free(&u[i]);
    for (int i = 0; i <= FAN_MSGS; i++)
        free(body_of[i]);
}
END_TEST

/* LRANGE key: at most max entries, consecutive seqs ending at last_seq. */
static void check_list(redisContext *rc, const char *key, long long max, long long last_seq)
{
    redisReply *r = ct_redis_cmd(rc, "LRANGE %s 0 -1", key);
    long long n, want;

    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    n = (long long)r->elements;
    want = last_seq < max ? last_seq : max;
    ck_assert_msg(n == want, "%s holds %lld entries, wanted %lld (history %lld)", key, n, want,
                  max);
    for (size_t i = 0; i < r->elements; i++) {
        json_t *j = json_loads(r->element[i]->str, 0, NULL);
        long long seq = ct_json_int(j, "seq");

        ck_assert_msg(j != NULL, "%s[%zu] is not JSON", key, i);
        ck_assert_msg(seq == last_seq - n + 1 + (long long)i, "%s[%zu] has seq %lld", key, i, seq);
        json_decref(j);
    }
    freeReplyObject(r);
}

START_TEST(test_history_capped)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[3];
    struct tc *t[3];
    redisContext *rc;
    char id[32], key[160];
    json_t *h;
    long long last = 0;

    ct_cluster_start(cl, 3, capped_args);
    rc = ct_redis(cl);
    ct_team(cl, "cap", 3, "cap", u, t);
    {
        struct tc *w = tc_connect(cl->base, cl->ws_url[1], u[0].token, NULL, NULL);
        json_t *welcome = w ? tc_wait_type(w, "welcome", CT_WAIT_MS) : NULL;

        ck_assert_ptr_nonnull(welcome);
        ck_assert_int_eq(ct_json_int(welcome, "history_max"), 20);
        json_decref(welcome);
        tc_free(w);
    }
    for (int wave = 0; wave < 3; wave++) {
        for (int k = 0; k < 5; k++) {
            for (int i = 0; i < 3; i++) {
                snprintf(id, sizeof(id), "c%d-%d-%d", wave, i, k);
                ct_send(t[i],
                        "{\"type\":\"message\",\"id\":\"%s\",\"room\":\"cap\",\"kind\":\"text\","
                        "\"body\":\"w%d\"}",
                        id, wave);
            }
        }
        for (int k = 0; k < 5; k++) {
            for (int i = 0; i < 3; i++) {
                json_t *ack;

                snprintf(id, sizeof(id), "c%d-%d-%d", wave, i, k);
                ack = ct_expect(t[i], id, "ack");
                if (ct_json_int(ack, "seq") > last)
                    last = ct_json_int(ack, "seq");
                json_decref(ack);
            }
        }
        ck_assert_int_eq(last, 15 * (wave + 1));
        check_list(rc, "chat:room:{cap}:history", 20, last);
    }
    ck_assert_int_eq(ct_redis_int(rc, "LLEN chat:room:{cap}:history"), 20);
    ck_assert_int_eq(ct_redis_int(rc, "GET chat:room:{cap}:seq"), 45);

    ct_send(t[1], "{\"type\":\"history\",\"id\":\"h1\",\"room\":\"cap\",\"limit\":200}");
    h = ct_expect(t[1], "h1", "history");
    ck_assert_str_eq(ct_json_str(h, "room"), "cap");
    ct_assert_seqs(json_object_get(h, "messages"), 26, 20, "history limit 200");
    json_decref(h);
    ct_send(t[2],
            "{\"type\":\"history\",\"id\":\"h2\",\"room\":\"cap\",\"before\":30,\"limit\":3}");
    h = ct_expect(t[2], "h2", "history");
    ct_assert_seqs(json_object_get(h, "messages"), 27, 3, "history before 30 limit 3");
    json_decref(h);

    /* a private conversation is capped the same way */
    for (int k = 0; k < 25; k++)
        ct_send(t[0],
                "{\"type\":\"private\",\"id\":\"p%d\",\"to\":\"%s\",\"kind\":\"text\","
                "\"body\":\"dm %d\"}",
                k, u[1].id, k);
    for (int k = 0; k < 25; k++) {
        json_t *ack;

        snprintf(id, sizeof(id), "p%d", k);
        ack = ct_expect(t[0], id, "ack");
        ck_assert_str_eq(ct_json_str(ack, "to"), u[1].id);
        ck_assert_int_eq(ct_json_int(ack, "seq"), k + 1);
        json_decref(ack);
    }
    if (strcmp(u[0].id, u[1].id) < 0)
        snprintf(key, sizeof(key), "chat:dm:{%s:%s}:history", u[0].id, u[1].id);
    else
        snprintf(key, sizeof(key), "chat:dm:{%s:%s}:history", u[1].id, u[0].id);
    check_list(rc, key, 20, 25);
    ct_send(t[1], "{\"type\":\"history\",\"id\":\"h3\",\"with\":\"%s\"}", u[0].id);
    h = ct_expect(t[1], "h3", "history");
    ck_assert_str_eq(ct_json_str(h, "with"), u[0].id);
    ct_assert_seqs(json_object_get(h, "messages"), 6, 20, "private history");
    json_decref(h);

    redisFree(rc);
    ct_team_free(3, u, t);
}
END_TEST

static void leave(struct tc *t, const char *room)
{
    json_t *r;

    char id[64];

    snprintf(id, sizeof(id), "leave-%s", room);
    ct_send(t, "{\"type\":\"leave\",\"id\":\"%s\",\"room\":\"%s\"}", id, room);
    r = ct_reply(t, id, CT_WAIT_MS);
    ck_assert_msg(r && strcmp(ct_json_str(r, "type"), "left") == 0, "no left reply");
    ck_assert_str_eq(ct_json_str(r, "room"), room);
    json_decref(r);
}

/* join since N on the room `rec`, then leave; checks the messages and the
 * recovered flag. */
static void join_since(struct tc *t, long long since, long long first, size_t n, bool recovered)
{
    json_t *j = ct_join(t, "rec", since);
    char what[64];

    snprintf(what, sizeof(what), "join since %lld", since);
    ck_assert_msg(json_is_true(json_object_get(j, "recovered")) == recovered,
                  "%s: recovered should be %s", what, recovered ? "true" : "false");
    ct_assert_seqs(json_object_get(j, "messages"), first, n, what);
    json_decref(j);
    leave(t, "rec");
}

START_TEST(test_since_recovered)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta, *tb;
    json_t *j;
    char id[32];

    ct_cluster_start(cl, 3, capped_args);
    ct_login(cl, 0, "since_a", &a);
    ct_login(cl, 1, "since_b", &b);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);

    /* a room with nothing in it: since 0 recovers nothing, fully */
    j = ct_join(tb, "fresh", 0);
    ck_assert(json_is_true(json_object_get(j, "recovered")));
    ck_assert_int_eq(json_array_size(json_object_get(j, "messages")), 0);
    json_decref(j);

    json_decref(ct_join(ta, "rec", -1));
    for (int k = 1; k <= 10; k++) {
        snprintf(id, sizeof(id), "r%d", k);
        ck_assert_int_eq(ct_post(ta, "rec", id, "x"), k);
    }
    join_since(tb, 5, 6, 5, true);
    join_since(tb, 0, 1, 10, true);
    join_since(tb, 10, 0, 0, true);
    join_since(tb, 11, 1, 10, false); /* above the room's seq */
    j = ct_join(tb, "rec", -1);       /* no since: last 50, not recovered */
    ck_assert(json_is_false(json_object_get(j, "recovered")));
    ct_assert_seqs(json_object_get(j, "messages"), 1, 10, "join without since");
    json_decref(j);
    leave(tb, "rec");

    for (int k = 11; k <= 40; k++) {
        snprintf(id, sizeof(id), "r%d", k);
        ck_assert_int_eq(ct_post(ta, "rec", id, "x"), k);
    }
    /* history 20: 21..40 are stored, 1..20 trimmed */
    join_since(tb, 25, 26, 15, true);
    join_since(tb, 20, 21, 20, true);
    join_since(tb, 19, 21, 20, false);
    join_since(tb, 0, 21, 20, false);
    join_since(tb, 40, 0, 0, true);
    join_since(tb, 41, 21, 20, false);

    tc_free(ta);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

START_TEST(test_join_last_50)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta, *tb;
    json_t *j;
    char id[32];

    ct_cluster_start(cl, 2, fast_args);
    ct_login(cl, 0, "last_a", &a);
    ct_login(cl, 1, "last_b", &b);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);
    json_decref(ct_join(ta, "big", -1));
    for (int k = 1; k <= 60; k++) {
        snprintf(id, sizeof(id), "b%d", k);
        ct_send(ta,
                "{\"type\":\"message\",\"id\":\"%s\",\"room\":\"big\",\"kind\":\"text\","
                "\"body\":\"x\"}",
                id);
    }
    for (int k = 1; k <= 60; k++) {
        snprintf(id, sizeof(id), "b%d", k);
        json_decref(ct_expect(ta, id, "ack"));
    }
    j = ct_join(tb, "big", -1);
    ck_assert(json_is_false(json_object_get(j, "recovered")));
    ct_assert_seqs(json_object_get(j, "messages"), 11, 50, "join without since");
    json_decref(j);
    ct_send(tb, "{\"type\":\"history\",\"id\":\"h\",\"room\":\"big\"}");
    j = ct_expect(tb, "h", "history");
    ct_assert_seqs(json_object_get(j, "messages"), 11, 50, "history default limit");
    json_decref(j);
    ct_send(tb, "{\"type\":\"history\",\"id\":\"h2\",\"room\":\"big\",\"limit\":200}");
    j = ct_expect(tb, "h2", "history");
    ct_assert_seqs(json_object_get(j, "messages"), 1, 60, "history limit 200");
    json_decref(j);
    tc_free(ta);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

struct live_wait {
    struct tc *t;
    long long final;
};

/* `joined` arrived and the last queued message has the final seq. */
static bool live_done(void *arg)
{
    struct live_wait *w = arg;
    json_t *f;
    size_t i;
    bool joined = false;
    long long last = -1;

    json_array_foreach(w->t->frames, i, f)
    {
        if (strcmp(ct_json_str(f, "type"), "joined") == 0)
            joined = true;
        else if (strcmp(ct_json_str(f, "type"), "message") == 0)
            last = ct_json_int(f, "seq");
    }
    return joined && last >= w->final;
}

#define LIVE_PRE 5
#define LIVE_N 120
#define LIVE_JOINERS 4

/* Joiners on the other nodes join `live` while a sender on gw1 posts every
 * 10 ms; each must see joined.messages then the live stream as one run of
 * consecutive seqs up to the last one, with nothing live before `joined`. */
START_TEST(test_join_no_gap_concurrent)
{
    struct h_cluster *cl = ct_fixture();
    static const int join_at[LIVE_JOINERS] = {10, 40, 70, 100};
    static const long long join_since_[LIVE_JOINERS] = {-1, 3, -1, 0};
    struct ct_user s, uj[LIVE_JOINERS];
    struct tc *ts, *tj[LIVE_JOINERS];
    char id[32];
    long long final = LIVE_PRE + LIVE_N;

    ct_cluster_start(cl, 3, fast_args);
    ct_login(cl, 0, "live_s", &s);
    ts = ct_connect(cl, 0, &s);
    json_decref(ct_join(ts, "live", -1));
    for (int k = 1; k <= LIVE_PRE; k++) {
        snprintf(id, sizeof(id), "pre%d", k);
        ct_post(ts, "live", id, "pre");
    }
    for (int j = 0; j < LIVE_JOINERS; j++) {
        char nick[16];

        snprintf(nick, sizeof(nick), "live_j%d", j);
        ct_login(cl, 1 + j % 2, nick, &uj[j]);
        tj[j] = ct_connect(cl, 1 + j % 2, &uj[j]);
    }
    for (int k = 0; k < LIVE_N; k++) {
        ct_send(ts,
                "{\"type\":\"message\",\"id\":\"l%d\",\"room\":\"live\",\"kind\":\"text\","
                "\"body\":\"live %d\"}",
                k, k);
        for (int j = 0; j < LIVE_JOINERS; j++) {
            if (join_at[j] != k)
                continue;
            if (join_since_[j] < 0)
                ct_send(tj[j], "{\"type\":\"join\",\"id\":\"J\",\"room\":\"live\"}");
            else
                ct_send(tj[j], "{\"type\":\"join\",\"id\":\"J\",\"room\":\"live\",\"since\":%lld}",
                        join_since_[j]);
        }
        h_loop_for(cl->base, 10);
    }
    for (int k = 0; k < LIVE_N; k++) {
        json_t *ack;

        snprintf(id, sizeof(id), "l%d", k);
        ack = ct_expect(ts, id, "ack");
        ck_assert_int_eq(ct_json_int(ack, "seq"), LIVE_PRE + 1 + k);
        json_decref(ack);
    }
    for (int j = 0; j < LIVE_JOINERS; j++) {
        struct live_wait w = {tj[j], final};
        json_t *joined = NULL, *f, *msgs;
        size_t i, n_live = 0;
        long long first;
        char what[64];

        ck_assert_msg(h_loop_until(cl->base, live_done, &w, CT_WAIT_MS),
                      "joiner %d: no joined or the stream did not reach seq %lld", j, final);
        json_array_foreach(tj[j]->frames, i, f)
        {
            const char *type = ct_json_str(f, "type");

            if (strcmp(type, "joined") == 0 && !joined) {
                ck_assert_msg(n_live == 0, "joiner %d: %zu live messages before joined", j, n_live);
                joined = json_incref(f);
            } else if (strcmp(type, "message") == 0) {
                n_live++;
            }
        }
        msgs = json_object_get(joined, "messages");
        ck_assert_int_gt(json_array_size(msgs), 0);
        first = ct_json_int(json_array_get(msgs, 0), "seq");
        if (join_since_[j] >= 0) {
            ck_assert_msg(json_is_true(json_object_get(joined, "recovered")),
                          "joiner %d: not recovered", j);
            ck_assert_int_eq(first, join_since_[j] + 1);
        } else {
            ck_assert(json_is_false(json_object_get(joined, "recovered")));
        }
        snprintf(what, sizeof(what), "joiner %d joined.messages", j);
        ct_assert_seqs(msgs, first, json_array_size(msgs), what);
        first += (long long)json_array_size(msgs);
        json_decref(joined);
        h_loop_for(cl->base, 200);
        msgs = ct_take(tj[j], "message", "live");
        snprintf(what, sizeof(what), "joiner %d live stream", j);
        ct_assert_seqs(msgs, first, json_array_size(msgs), what);
        ck_assert_int_eq(ct_json_int(json_array_get(msgs, json_array_size(msgs) - 1), "seq"),
                         final);
        json_decref(msgs);
    }
    tc_free(ts);
    ct_user_free(&s);
    for (int j = 0; j < LIVE_JOINERS; j++) {
        tc_free(tj[j]);
        ct_user_free(&uj[j]);
    }
}
END_TEST

struct stream {
    struct tc *t;
    const char *room;
    long long last; /* last seq seen, from joined.messages or live */
    int gaps, repeats;
};

/* Walks t's frames in order: room messages (live or in a joined reply) must
 * continue `last` by one each time.  Consumes everything it walked. */
static void stream_walk(struct stream *st)
{
    json_t *f, *m;
    size_t i, k;

    json_array_foreach(st->t->frames, i, f)
    {
        const char *type = ct_json_str(f, "type");
        json_t *one = NULL, *msgs;

        if (strcmp(ct_json_str(f, "room"), st->room) != 0)
            continue;
        if (strcmp(type, "joined") == 0) {
            msgs = json_object_get(f, "messages");
            ck_assert_msg(json_is_true(json_object_get(f, "recovered")),
                          "rejoin since %lld not recovered", st->last);
        } else if (strcmp(type, "message") == 0) {
            one = json_pack("[O]", f);
            msgs = one;
        } else {
            continue;
        }
        json_array_foreach(msgs, k, m)
        {
            long long seq = ct_json_int(m, "seq");

            st->repeats += seq <= st->last;
            st->gaps += seq > st->last + 1;
            if (seq > st->last)
                st->last = seq;
        }
        json_decref(one);
    }
    json_array_clear(st->t->frames);
}

struct reply_seen {
    struct tc *t;
    const char *id;
};

static bool reply_queued(void *arg)
{
    struct reply_seen *r = arg;
    json_t *f;
    size_t i;

    json_array_foreach(r->t->frames, i, f)
    {
        if (strcmp(ct_json_str(f, "id"), r->id) == 0 && strcmp(ct_json_str(f, "type"), "message"))
            return true;
    }
    return false;
}

struct stream_wait {
    struct stream st;
    long long final;
};

static bool stream_at(void *arg)
{
    struct stream_wait *w = arg;

    stream_walk(&w->st);
    return w->st.last >= w->final;
}

/* A member alone on its node leaves and rejoins with since = last seen, ten
 * times, while another node posts every 20 ms: the node unsubscribes and
 * resubscribes each time, and the member's stream must stay gap-free and
 * repeat-free throughout. */
START_TEST(test_rejoin_churn)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b;
    struct tc *ta, *tb;
    struct stream_wait w;
    char id[32];
    int sent = 0;

    ct_cluster_start(cl, 2, fast_args);
    ct_login(cl, 0, "churn_a", &a);
    ct_login(cl, 1, "churn_b", &b);
    ta = ct_connect(cl, 0, &a);
    tb = ct_connect(cl, 1, &b);
    json_decref(ct_join(ta, "churn", -1));
    ct_post(ta, "churn", "first", "first");
    json_decref(ct_join(tb, "churn", 0));
    w.st = (struct stream){tb, "churn", 1, 0, 0};
    for (int cycle = 0; cycle < 10; cycle++) {
        struct reply_seen rs = {tb, id};

        for (int k = 0; k < 3; k++, sent++)
            ct_send(ta,
                    "{\"type\":\"message\",\"id\":\"c%d\",\"room\":\"churn\",\"kind\":"
                    "\"text\",\"body\":\"x\"}",
                    sent);
        snprintf(id, sizeof(id), "leave%d", cycle);
        ct_send(tb, "{\"type\":\"leave\",\"id\":\"%s\",\"room\":\"churn\"}", id);
        ck_assert(h_loop_until(cl->base, reply_queued, &rs, CT_WAIT_MS));
        stream_walk(&w.st);
        for (int k = 0; k < 3; k++, sent++)
            ct_send(ta,
                    "{\"type\":\"message\",\"id\":\"c%d\",\"room\":\"churn\",\"kind\":"
                    "\"text\",\"body\":\"x\"}",
                    sent);
        h_loop_for(cl->base, 20);
        snprintf(id, sizeof(id), "join%d", cycle);
        ct_send(tb, "{\"type\":\"join\",\"id\":\"%s\",\"room\":\"churn\",\"since\":%lld}", id,
                w.st.last);
        ck_assert(h_loop_until(cl->base, reply_queued, &rs, CT_WAIT_MS));
        stream_walk(&w.st);
    }
    for (int k = 0; k < sent; k++) {
        snprintf(id, sizeof(id), "c%d", k);
        json_decref(ct_expect(ta, id, "ack"));
    }
    w.final = 1 + sent;
    ck_assert_msg(h_loop_until(cl->base, stream_at, &w, CT_WAIT_MS),
                  "member stopped at seq %lld of %lld", w.st.last, w.final);
    h_loop_for(cl->base, 300);
    stream_walk(&w.st);
    ck_assert_msg(w.st.gaps == 0 && w.st.repeats == 0, "%d gaps, %d repeats across rejoins",
                  w.st.gaps, w.st.repeats);
    ck_assert_int_eq(w.st.last, w.final);
    tc_free(ta);
    tc_free(tb);
    ct_user_free(&a);
    ct_user_free(&b);
}
END_TEST

START_TEST(test_idempotent_resend)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user a, b, c;
    struct tc *ta1, *ta2, *tb, *tc_;
    json_t *ack1, *ack, *msgs;
    long long seq;
    redisContext *rc;

    ct_cluster_start(cl, 3, fast_args);
    rc = ct_redis(cl);
    ct_login(cl, 0, "idem_a", &a);
    ct_login(cl, 1, "idem_b", &b);
    ct_login(cl, 2, "idem_c", &c);
    ta1 = ct_connect(cl, 0, &a);
    ta2 = ct_connect(cl, 2, &a);
    tb = ct_connect(cl, 1, &b);
    tc_ = ct_connect(cl, 2, &c);
    json_decref(ct_join(ta1, "idem", -1));
    json_decref(ct_join(ta2, "idem", -1));
    json_decref(ct_join(tb, "idem", -1));
    json_decref(ct_join(tc_, "idem", -1));

    ct_send(ta1, "{\"type\":\"message\",\"id\":\"same-1\",\"room\":\"idem\",\"kind\":\"text\","
                 "\"body\":\"hello\"}");
    ack1 = ct_expect(ta1, "same-1", "ack");
    seq = ct_json_int(ack1, "seq");
    ck_assert_int_eq(seq, 1);
    /* the same connection, then another tab on another node */
    for (int k = 0; k < 2; k++) {
        struct tc *t = k == 0 ? ta1 : ta2;

        ct_send(t, "{\"type\":\"message\",\"id\":\"same-1\",\"room\":\"idem\",\"kind\":\"text\","
                   "\"body\":\"hello\"}");
        ack = ct_expect(t, "same-1", "ack");
        ck_assert_msg(json_equal(ack, ack1), "resend %d: ack differs from the first", k);
        json_decref(ack);
    }
    ck_assert_int_eq(ct_post(ta1, "idem", "next-1", "next"), seq + 1);
    /* the id is per user and per room */
    ck_assert_int_eq(ct_post(tc_, "idem", "same-1", "from c"), seq + 2);
    json_decref(ct_join(ta1, "idem2", -1));
    ck_assert_int_eq(ct_post(ta1, "idem2", "same-1", "other room"), 1);

    ck_assert(ct_wait_count(&tb, 1, "message", "idem", 3, CT_WAIT_MS));
    h_loop_for(cl->base, 500);
    msgs = ct_take(tb, "message", "idem");
    ct_assert_seqs(msgs, 1, 3, "member of idem");
    json_decref(msgs);
    msgs = ct_take(ta2, "message", "idem");
    ct_assert_seqs(msgs, 1, 3, "sender's other tab");
    json_decref(msgs);
    ck_assert_int_eq(ct_redis_int(rc, "LLEN chat:room:{idem}:history"), 3);

    /* private: same id twice, one delivery */
    for (int k = 0; k < 2; k++) {
        ct_send(ta1,
                "{\"type\":\"private\",\"id\":\"pm-1\",\"to\":\"%s\",\"kind\":\"text\","
                "\"body\":\"psst\"}",
                b.id);
        ack = ct_expect(ta1, "pm-1", "ack");
        ck_assert_int_eq(ct_json_int(ack, "seq"), 1);
        json_decref(ack);
    }
    ck_assert(ct_wait_count(&tb, 1, "private", NULL, 1, CT_WAIT_MS));
    ck_assert_int_eq(ct_settle_count(tb, "private", NULL, 500), 1);
    /* the same id in another conversation is another message */
    ct_send(ta1,
            "{\"type\":\"private\",\"id\":\"pm-1\",\"to\":\"%s\",\"kind\":\"text\","
            "\"body\":\"to c\"}",
            c.id);
    ack = ct_expect(ta1, "pm-1", "ack");
    ck_assert_str_eq(ct_json_str(ack, "to"), c.id);
    ck_assert_int_eq(ct_json_int(ack, "seq"), 1);
    json_decref(ack);
    ck_assert_msg(ct_wait_count(&tc_, 1, "private", NULL, 1, CT_WAIT_MS),
                  "a private reusing an id from another conversation was not delivered");

    json_decref(ack1);
    redisFree(rc);
    tc_free(ta1);
    tc_free(ta2);
    tc_free(tb);
    tc_free(tc_);
    ct_user_free(&a);
    ct_user_free(&b);
    ct_user_free(&c);
}
END_TEST

TCase *delivery_tcase(void)
{
    TCase *tc = tcase_create("delivery");

    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_add_test(tc, test_fanout_exactly_once);
    tcase_add_test(tc, test_history_capped);
    tcase_add_test(tc, test_since_recovered);
    tcase_add_test(tc, test_join_last_50);
    tcase_add_test(tc, test_join_no_gap_concurrent);
    tcase_add_test(tc, test_idempotent_resend);
    tcase_add_test(tc, test_rejoin_churn);
    return tc;
}
