/*
 * The checker: our own reading of the promise, independent of the gateway's
 * code.  Inputs are every room's history in Redis (LRANGE after the load
 * stopped and the cluster settled) and every client's records: what it sent
 * and when, what was acked and when, its membership intervals (joined reply
 * received .. connection gone), and every message it was given (live, in a
 * joined reply, or in a history page), in arrival order.
 *
 *  1. history is 1, 2, 3 ... with no gap, and ends at the room's seq;
 *  2. every acked message is in history exactly once, at the acked seq; no
 *     id (acked or not) is stored twice;
 *  3. every acked message reached every client that was in the room from
 *     before it was first sent until after it was acked (at any time: live,
 *     or in a later joined reply);
 *  4. per client and room, seqs arrive strictly increasing (no duplicate, no
 *     reordering), and each delivered seq is the message history holds there;
 *  5. a client whose every join of the room came back recovered:true holds
 *     every seq after its first join's since, up to the end.
 */
#include "chaos.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct hentry {
    int client, no; /* -1: not ours */
};

static char *fmt_ms(char *buf, size_t len, double ms)
{
    if (ms < 0)
        snprintf(buf, len, "end");
    else
        snprintf(buf, len, "%.3fs", ms / 1000.0);
    return buf;
}

long ch_check(struct ch_run *run)
{
    size_t before = run->n_viol;
    long lost = 0, dup_stored = 0, unacked = 0, unacked_stored = 0, undelivered = 0;
    long dup_deliv = 0, ooo = 0, gaps = 0, expected_deliveries = 0, deliveries = 0;
    long long room_seq[CH_MAX_ROOMS];
    struct hentry *hist[CH_MAX_ROOMS] = {0};
    long long hist_n[CH_MAX_ROOMS] = {0};
    /* count[client][no] of history entries, seq_of[client][no] */
    int **count = calloc((size_t)run->n_clients, sizeof(*count));
    long long **seq_of = calloc((size_t)run->n_clients, sizeof(*seq_of));
    char t1[32], t2[32], t3[32], t4[32];

    for (int i = 0; i < run->n_clients; i++) {
        count[i] = calloc(run->clients[i].nm + 1, sizeof(**count));
        seq_of[i] = calloc(run->clients[i].nm + 1, sizeof(**seq_of));
    }

    /* 1. history */
    for (int room = 0; room < run->n_rooms; room++) {
        const char *name = run->room_names[room];
        redisReply *sr = ch_redis_cmd(&run->procs, 5000, "GET chat:room:{%s}:seq", name);
        redisReply *r =
            ch_redis_cmd(&run->procs, 20000, "LRANGE chat:room:{%s}:history 0 -1", name);

        room_seq[room] = sr && sr->type == REDIS_REPLY_STRING ? atoll(sr->str) : 0;
        if (sr)
            freeReplyObject(sr);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            ch_violation(run, V_OTHER, "cannot read the history of %s from redis", name);
            if (r)
                freeReplyObject(r);
            continue;
        }
        hist_n[room] = room_seq[room];
        hist[room] = calloc((size_t)room_seq[room] + 2, sizeof(struct hentry));
        for (long long s = 0; s <= room_seq[room]; s++)
            hist[room][s] = (struct hentry){-2, -2}; /* -2: no entry */
        if ((long long)r->elements != room_seq[room])
            ch_violation(run, V_HIST_GAP, "room %s: %zu history entries, seq is %lld", name,
                         r->elements, room_seq[room]);
        long long expect = 1;
        for (size_t i = 0; i < r->elements; i++) {
            json_t *m = json_loadb(r->element[i]->str, r->element[i]->len, 0, NULL);
            json_t *js = json_object_get(m, "seq");
            const char *id = json_string_value(json_object_get(m, "id"));
            long long seq = json_is_integer(js) ? json_integer_value(js) : -1;
            int cl, no;

            if (seq != expect)
                ch_violation(run, V_HIST_GAP,
                             "room %s: history entry %zu has seq %lld, expected %lld", name, i, seq,
                             expect);
            expect = seq + 1;
            if (seq >= 1 && seq <= room_seq[room]) {
                hist[room][seq] = (struct hentry){-1, -1};
                if (ch_parse_msg_id(id, &cl, &no) && cl < run->n_clients &&
                    (size_t)no < run->clients[cl].nm) {
                    hist[room][seq] = (struct hentry){cl, no};
                    if (run->clients[cl].m[no].room != room)
                        ch_violation(run, V_OTHER, "%s stored in %s, sent to %s", id, name,
                                     run->room_names[run->clients[cl].m[no].room]);
                    if (count[cl][no]++ > 0) {
                        dup_stored++;
                        ch_violation(run, V_DUP_STORED, "%s stored at seq %lld and %lld of %s", id,
                                     seq_of[cl][no], seq, name);
                    } else {
                        seq_of[cl][no] = seq;
                    }
                }
            }
            json_decref(m);
        }
        freeReplyObject(r);
    }

    /* 2. acked messages against history */
    long sent = 0, acked = 0;
    for (int i = 0; i < run->n_clients; i++) {
        struct ch_client *c = &run->clients[i];
        for (size_t no = 0; no < c->nm; no++) {
            struct ch_msg *m = &c->m[no];

            if (m->sends == 0)
                continue;
            sent++;
            if (m->state != M_ACKED) {
                unacked++;
                unacked_stored += count[i][no] > 0;
                continue;
            }
            acked++;
            if (count[i][no] == 0) {
                lost++;
                ch_violation(run, V_LOST,
                             "c%d-m%zu acked seq %lld in %s at %s (first sent %s, %d sends) is not "
                             "in history",
                             i, no, m->ack_seq, run->room_names[m->room],
                             fmt_ms(t1, sizeof(t1), m->t_ack),
                             fmt_ms(t2, sizeof(t2), m->t_first_send), m->sends);
            } else if (seq_of[i][no] != m->ack_seq) {
                ch_violation(run, V_SEQ_MISMATCH, "c%d-m%zu acked seq %lld, history has it at %lld",
                             i, no, m->ack_seq, seq_of[i][no]);
            }
        }
    }

    /* 4. per client and room: order, duplicates, content; builds have[] */
    char **have[CH_MAX_ROOMS];
    for (int room = 0; room < run->n_rooms; room++) {
        have[room] = calloc((size_t)run->n_clients, sizeof(char *));
        for (int i = 0; i < run->n_clients; i++) {
            struct ch_client *c = &run->clients[i];
            struct ch_croom *r = &c->r[room];
            long long max = 0;

            if (!r->member)
                continue;
            have[room][i] = calloc((size_t)hist_n[room] + 2, 1);
            for (size_t k = 0; k < r->nd; k++) {
                struct ch_deliv *d = &r->d[k];

                deliveries++;
                if (d->seq < 1 || d->seq > hist_n[room]) {
                    ch_violation(run, V_CONTENT,
                                 "client %d got seq %lld of %s (%c at %s): history "
                                 "ends at %lld",
                                 i, d->seq, run->room_names[room], d->via,
                                 fmt_ms(t1, sizeof(t1), d->t), hist_n[room]);
                    continue;
                }
                if (have[room][i][d->seq]) {
                    dup_deliv++;
                    ch_violation(run, V_DUP_DELIVERY,
                                 "client %d got seq %lld of %s again (%c at %s)", i, d->seq,
                                 run->room_names[room], d->via, fmt_ms(t1, sizeof(t1), d->t));
                } else if (d->seq < max) {
                    ooo++;
                    ch_violation(run, V_OUT_OF_ORDER,
                                 "client %d got seq %lld of %s after %lld (%c at %s)", i, d->seq,
                                 run->room_names[room], max, d->via, fmt_ms(t1, sizeof(t1), d->t));
                }
                have[room][i][d->seq] = 1;
                if (d->seq > max)
                    max = d->seq;
                struct hentry *h = &hist[room][d->seq];
                if (h->client == -2)
                    ch_violation(run, V_CONTENT,
                                 "client %d got seq %lld of %s as c%d-m%d, history "
                                 "has no entry at that seq",
                                 i, d->seq, run->room_names[room], d->from_client, d->msg_no);
                else if (h->client != d->from_client || h->no != d->msg_no)
                    ch_violation(run, V_CONTENT,
                                 "client %d got seq %lld of %s as c%d-m%d, history holds c%d-m%d",
                                 i, d->seq, run->room_names[room], d->from_client, d->msg_no,
                                 h->client, h->no);
            }
        }
    }

    /* 3. every acked message to every client in the room around it */
    for (int s = 0; s < run->n_clients; s++) {
        struct ch_client *sc = &run->clients[s];
        for (size_t no = 0; no < sc->nm; no++) {
            struct ch_msg *m = &sc->m[no];
            int room = m->room;

            if (m->state != M_ACKED || m->ack_seq < 1 || m->ack_seq > hist_n[room])
                continue;
            for (int i = 0; i < run->n_clients; i++) {
                struct ch_croom *r = &run->clients[i].r[room];

                if (!r->member)
                    continue;
                for (size_t k = 0; k < r->niv; k++) {
                    struct ch_interval *iv = &r->iv[k];

                    if (iv->a <= m->t_first_send && (iv->b < 0 || iv->b >= m->t_ack)) {
                        expected_deliveries++;
                        if (!have[room][i][m->ack_seq]) {
                            undelivered++;
                            ch_violation(run, V_UNDELIVERED,
                                         "c%d-m%zu (seq %lld of %s, first sent %s, acked %s) never "
                                         "reached client %d, in the room from %s to %s (joined "
                                         "since %lld, recovered %d)",
                                         s, no, m->ack_seq, run->room_names[room],
                                         fmt_ms(t1, sizeof(t1), m->t_first_send),
                                         fmt_ms(t2, sizeof(t2), m->t_ack), i,
                                         fmt_ms(t3, sizeof(t3), iv->a),
                                         fmt_ms(t4, sizeof(t4), iv->b), iv->since, iv->recovered);
                        }
                        break;
                    }
                }
            }
        }
    }

    /* 5. recovered joins leave no gap */
    long skipped_gap_checks = 0;
    for (int room = 0; room < run->n_rooms; room++) {
        for (int i = 0; i < run->n_clients; i++) {
            struct ch_croom *r = &run->clients[i].r[room];
            bool all = r->niv > 0;

            if (!r->member)
                continue;
            for (size_t k = 0; k < r->niv; k++)
                all = all && r->iv[k].recovered;
            if (!all) {
                skipped_gap_checks++;
                continue;
            }
            for (long long seq = r->iv[0].since + 1; seq <= hist_n[room]; seq++)
                if (!have[room][i][seq]) {
                    struct hentry *h = &hist[room][seq];
                    gaps++;
                    ch_violation(run, V_GAP,
                                 "client %d never got seq %lld of %s (c%d-m%d); every join was "
                                 "recovered, first since %lld",
                                 i, seq, run->room_names[room], h->client, h->no, r->iv[0].since);
                }
        }
    }

    printf(
        "chaos: messages: sent %ld, acked %ld, unacked at the end %ld (%ld of them stored), lost "
        "%ld, duplicated %ld (stored twice) + %ld (delivered twice), out of order %ld\n",
        sent, acked, unacked, unacked_stored, lost, dup_stored, dup_deliv, ooo);
    printf("chaos: deliveries: %ld received, %ld (message, member) pairs owed by the promise, %ld "
           "missing; %ld seqs missing after recovered joins",
           deliveries, expected_deliveries, undelivered, gaps);
    if (skipped_gap_checks)
        printf(" (%ld client-rooms with a join not recovered, gap check skipped)",
               skipped_gap_checks);
    printf("\nchaos: rooms:");
    for (int room = 0; room < run->n_rooms; room++)
        printf(" %s seq %lld", run->room_names[room], room_seq[room]);
    printf("\n");

    for (int room = 0; room < run->n_rooms; room++) {
        for (int i = 0; i < run->n_clients; i++)
            free(have[room][i]);
        free(have[room]);
        free(hist[room]);
    }
    for (int i = 0; i < run->n_clients; i++) {
        free(count[i]);
        free(seq_of[i]);
    }
    free(count);
    free(seq_of);
    return (long)(run->n_viol - before);
}
