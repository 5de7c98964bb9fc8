/*
 * Mini-load (issue 3): 50 clients over 3 gateways and 5 rooms, every client in
 * two rooms, everybody posting at once; every delivery is accounted for:
 * each member of a room receives every acked message of it exactly once, in
 * seq order, with the body and sender the ack belongs to.
 */
#include "chat_tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_CLIENTS 50
#define N_ROOMS 5
#define N_SENDS 8
#define MAX_SEQ (N_CLIENTS * N_SENDS)

static struct h_cluster cl;

static const char *const load_args[] = {"--rate", "100/100", NULL};

struct load_client {
    struct tc *t;
    struct ct_user u;
    int rooms[2];
    long long last[N_ROOMS]; /* last seq delivered per room */
    size_t got[N_ROOMS];
    size_t bad_order, mismatched, acks, errors;
};

struct load {
    struct load_client c[N_CLIENTS];
    /* "sender id/request id" of each acked (room, seq) */
    char *acked[N_ROOMS][MAX_SEQ + 1];
    size_t n_acked[N_ROOMS];
    size_t dup_acks;
};

static void setup(void)
{
    memset(&cl, 0, sizeof(cl));
    h_watchdog(170);
}

static void teardown(void)
{
    ct_cluster_stop(&cl);
}

static int room_index(const char *room)
{
    if (strncmp(room, "load", 4) != 0 || room[4] < '0' || room[4] >= '0' + N_ROOMS || room[5])
        return -1;
    return room[4] - '0';
}

/* Accounts for and drops everything client c has received so far. */
static void drain(struct load *ld, struct load_client *c)
{
    size_t i;
    json_t *f;

    json_array_foreach(c->t->frames, i, f)
    {
        const char *type = ct_json_str(f, "type");
        int r = room_index(ct_json_str(f, "room"));
        long long seq = ct_json_int(f, "seq");
        char key[200];

        if (strcmp(type, "error") == 0) {
            c->errors++;
            fprintf(stderr, "load: %s got error %s (%s)\n", c->u.nick, ct_json_str(f, "code"),
                    ct_json_str(f, "message"));
        }
        if (r < 0 || seq < 1 || seq > MAX_SEQ)
            continue;
        if (strcmp(type, "ack") == 0) {
            c->acks++;
            snprintf(key, sizeof(key), "%s/%s", c->u.id, ct_json_str(f, "id"));
            if (ld->acked[r][seq])
                ld->dup_acks++;
            else
                ld->n_acked[r]++;
            free(ld->acked[r][seq]);
            ld->acked[r][seq] = strdup(key);
        } else if (strcmp(type, "message") == 0) {
            if (seq != c->last[r] + 1)
                c->bad_order++;
            c->last[r] = seq;
            c->got[r]++;
            snprintf(key, sizeof(key), "%s/%s", ct_user_id(json_object_get(f, "from")),
                     ct_json_str(f, "id"));
            /* acks normally come first; a message seen before its ack is
             * compared at the end (see check_bodies) */
            if (ld->acked[r][seq] && strcmp(ld->acked[r][seq], key) != 0)
                c->mismatched++;
        }
    }
    json_array_clear(c->t->frames);
}

static bool all_delivered(void *arg)
{
    struct load *ld = arg;

    for (int i = 0; i < N_CLIENTS; i++)
        drain(ld, &ld->c[i]);
    for (int i = 0; i < N_CLIENTS; i++) {
        struct load_client *c = &ld->c[i];

        if (c->acks < N_SENDS)
            return false;
        for (int k = 0; k < 2; k++) {
            int r = c->rooms[k];

            if (ld->n_acked[r] == 0 || c->got[r] < ld->n_acked[r])
                return false;
        }
    }
    return true;
}

START_TEST(test_mini_load)
{
    struct load *ld = calloc(1, sizeof(*ld));
    size_t expected = 0, delivered = 0;

    ck_assert_ptr_nonnull(ld);
    ct_cluster_start(&cl, 3, load_args);
    for (int i = 0; i < N_CLIENTS; i++) {
        struct load_client *c = &ld->c[i];
        char nick[16], room[8];

        snprintf(nick, sizeof(nick), "load%02d", i);
        ct_login(&cl, i % 3, nick, &c->u);
        c->t = ct_connect(&cl, i % 3, &c->u);
        c->rooms[0] = i % N_ROOMS;
        c->rooms[1] = (i + 1 + i / N_ROOMS % (N_ROOMS - 1)) % N_ROOMS;
        for (int k = 0; k < 2; k++) {
            snprintf(room, sizeof(room), "load%d", c->rooms[k]);
            json_decref(ct_join(c->t, room, -1));
        }
    }
    h_loop_for(cl.base, 300);
    for (int i = 0; i < N_CLIENTS; i++)
        json_array_clear(ld->c[i].t->frames);

    for (int k = 0; k < N_SENDS; k++) {
        for (int i = 0; i < N_CLIENTS; i++) {
            struct load_client *c = &ld->c[i];

            ct_send(c->t,
                    "{\"type\":\"message\",\"id\":\"s%d\",\"room\":\"load%d\",\"kind\":\"text\","
                    "\"body\":\"%s says %d\"}",
                    k, c->rooms[k % 2], c->u.nick, k);
        }
        h_loop_for(cl.base, 60);
        for (int i = 0; i < N_CLIENTS; i++)
            drain(ld, &ld->c[i]);
    }
    h_loop_until(cl.base, all_delivered, ld, 60000);
    h_loop_for(cl.base, 1000); /* anything extra would show up now */
    for (int i = 0; i < N_CLIENTS; i++)
        drain(ld, &ld->c[i]);

    ck_assert_int_eq(ld->dup_acks, 0);
    for (int r = 0; r < N_ROOMS; r++) {
        for (size_t s = 1; s <= ld->n_acked[r]; s++)
            ck_assert_msg(ld->acked[r][s], "room load%d: seq %zu never acked (acked %zu)", r, s,
                          ld->n_acked[r]);
    }
    for (int i = 0; i < N_CLIENTS; i++) {
        struct load_client *c = &ld->c[i];

        ck_assert_msg(c->acks == N_SENDS && c->errors == 0, "%s: %zu acks, %zu errors", c->u.nick,
                      c->acks, c->errors);
        ck_assert_msg(c->bad_order == 0, "%s: %zu messages out of seq order or repeated", c->u.nick,
                      c->bad_order);
        ck_assert_msg(c->mismatched == 0, "%s: %zu messages differ from their ack", c->u.nick,
                      c->mismatched);
        for (int k = 0; k < 2; k++) {
            int r = c->rooms[k];

            expected += ld->n_acked[r];
            delivered += c->got[r];
            ck_assert_msg(c->got[r] == ld->n_acked[r] && c->last[r] == (long long)ld->n_acked[r],
                          "%s (gw%d) in load%d: got %zu of %zu, last seq %lld", c->u.nick,
                          i % 3 + 1, r, c->got[r], ld->n_acked[r], c->last[r]);
        }
        for (int r = 0; r < N_ROOMS; r++) {
            if (r != c->rooms[0] && r != c->rooms[1])
                ck_assert_msg(c->got[r] == 0, "%s got messages of load%d, not a member", c->u.nick,
                              r);
        }
    }
    fprintf(stderr, "mini-load: %zu deliveries expected, %zu delivered\n", expected, delivered);
    ck_assert_int_eq(expected, delivered);
    ck_assert_int_eq(ld->n_acked[0] + ld->n_acked[1] + ld->n_acked[2] + ld->n_acked[3] +
                         ld->n_acked[4],
                     N_CLIENTS * N_SENDS);

    for (int i = 0; i < N_CLIENTS; i++) {
        tc_free(ld->c[i].t);
        ct_user_free(&ld->c[i].u);
    }
    for (int r = 0; r < N_ROOMS; r++) {
        for (int s = 0; s <= MAX_SEQ; s++)
            free(ld->acked[r][s]);
    }
    free(ld);
}
END_TEST

TCase *load_tcase(void)
{
    TCase *tc = tcase_create("load");

    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_mini_load);
    return tc;
}
