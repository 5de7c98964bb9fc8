/*
 * chat-chaos: the delivery promise under faults.
 *
 * Starts redis-server (AOF, appendfsync always) and N gateways on loopback,
 * logs in C users and connects each with libchat_client to a gateway; each
 * joins two of R rooms and sends a message with a unique id every ~200 ms.
 * Meanwhile a seeded schedule injects faults: kill -9 of a gateway and a
 * restart on the same port, CLIENT KILL TYPE pubsub, SIGSTOP/SIGCONT of
 * Redis, a Redis restart that keeps its data.  Clients behave as the
 * protocol asks: reconnect with backoff to the next gateway, resume each
 * room with join `since` their last seq, resend unacked messages with the
 * same id, answer `resync` with leave + join `since`.
 *
 * After the load stops and everything settles, check.c compares what every
 * client logged with every room's history in Redis.  Exit 0 when nothing
 * broke the promise, 1 on a violation, 2 on a setup error.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "chaos.h"
#include "chat_client.h"

#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const ch_viol_names[V_NKINDS] = {
    [V_LOST] = "acked but not in history",
    [V_DUP_STORED] = "stored more than once",
    [V_SEQ_MISMATCH] = "ack seq differs from history",
    [V_ACK_CONFLICT] = "two acks with different seqs",
    [V_HIST_GAP] = "history not contiguous",
    [V_UNDELIVERED] = "acked but not delivered to a member",
    [V_GAP] = "gap after recovered join",
    [V_DUP_DELIVERY] = "duplicate delivery",
    [V_OUT_OF_ORDER] = "out of order delivery",
    [V_CONTENT] = "delivered seq carries another message",
    [V_UNANSWERED] = "request unanswered on an open connection",
    [V_CRASH] = "gateway or redis exited on its own",
    [V_SETTLE] = "did not settle",
    [V_OTHER] = "other",
};

/* ---- options ---- */

struct opts {
    uint64_t seed;
    bool seed_given;
    int duration_s;
    bool shortmode;
    int clients, gateways, rooms;
    int settle_s;
    const char *gateway_bin, *redis_bin, *dir;
    bool keep, verbose, schedule_only;
    const char *sabotage; /* checker self-test: drop, dup, reorder, lose */
};

enum { F_GW_KILL, F_PUBSUB_KILL, F_REDIS_STOP, F_REDIS_RESTART, F_NKINDS };

struct fault {
    double at; /* ms after the load started */
    int kind, gw, ms;
};

static struct {
    struct ch_run run;
    struct opts o;
    struct fault *faults;
    int n_faults, next_fault;
    bool fault_busy;
    int busy_kind, busy_gw;
    double busy_until;
    bool redis_restart_waiting; /* SIGTERM sent, waiting for the exit */
    double t_load, t_load_end, t_settle_end;
    struct event *tick_ev, *fault_ev;
    long crashes_seen;
} G;

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

double ch_now(const struct ch_run *run)
{
    return mono_ms() - run->t0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static int rnd_range(uint64_t *s, int lo, int hi)
{
    return lo + (int)(splitmix(s) % (uint64_t)(hi - lo + 1));
}

void ch_violation(struct ch_run *run, int kind, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    n = snprintf(buf, sizeof(buf), "[%s] ", ch_viol_names[kind]);
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    run->viol_by_kind[kind]++;
    if (run->n_viol == run->viol_cap) {
        size_t cap = run->viol_cap ? run->viol_cap * 2 : 64;
        char **v = realloc(run->viol, cap * sizeof(*v));
        if (!v)
            return;
        run->viol = v;
        run->viol_cap = cap;
    }
    run->viol[run->n_viol++] = strdup(buf);
}

void ch_msg_id(char *buf, size_t len, int client, int no)
{
    snprintf(buf, len, "c%d-m%d", client, no);
}

bool ch_parse_msg_id(const char *id, int *client, int *no)
{
    char tail;

    return id && sscanf(id, "c%d-m%d%c", client, no, &tail) == 2 && *client >= 0 && *no >= 0;
}

static void clog_(struct ch_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void clog_(struct ch_client *c, const char *fmt, ...)
{
    va_list ap;

    if (!c->log)
        return;
    fprintf(c->log, "%10.3f ", ch_now(c->run) / 1000.0);
    va_start(ap, fmt);
    vfprintf(c->log, fmt, ap);
    va_end(ap);
    fputc('\n', c->log);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    printf("chaos: %7.2fs ", ch_now(&G.run) / 1000.0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ---- client ---- */

static void client_connect(struct ch_client *c);

static int send_json(struct ch_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int send_json(struct ch_client *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf) || !c->cc || c->conn != 2)
        return -1;
    return chat_client_send_text(c->cc, buf, (size_t)n);
}

static bool take_token(struct ch_client *c, double now)
{
    /* Below the gateway's 10/s, burst 20: we never want rate_limited. */
    c->tokens += (now - c->t_tokens) * 8.0 / 1000.0;
    if (c->tokens > 12.0)
        c->tokens = 12.0;
    c->t_tokens = now;
    if (c->tokens < 1.0)
        return false;
    c->tokens -= 1.0;
    return true;
}

static void room_end_interval(struct ch_client *c, int room, double now)
{
    struct ch_croom *r = &c->r[room];

    if (r->niv > 0 && r->iv[r->niv - 1].b < 0)
        r->iv[r->niv - 1].b = now;
    r->joined = false;
    r->join_pending = false;
    r->paging = false;
    r->hist_pending = false;
    if (r->buffered) {
        json_decref(r->buffered);
        r->buffered = NULL;
    }
}

static void record_delivery(struct ch_client *c, int room, json_t *m, char via, double now)
{
    struct ch_croom *r = &c->r[room];
    json_t *jseq = json_object_get(m, "seq");
    const char *id = json_string_value(json_object_get(m, "id"));
    struct ch_deliv d = {.from_client = -1, .msg_no = -1, .t = now, .via = via};

    if (!json_is_integer(jseq)) {
        ch_violation(c->run, V_OTHER, "client %d room %s: message without seq (%c)", c->idx,
                     c->run->room_names[room], via);
        return;
    }
    d.seq = json_integer_value(jseq);
    if (!ch_parse_msg_id(id, &d.from_client, &d.msg_no)) {
        d.from_client = -1;
        d.msg_no = -1;
    }
    if (r->nd == r->dcap) {
        size_t cap = r->dcap ? r->dcap * 2 : 256;
        struct ch_deliv *nd = realloc(r->d, cap * sizeof(*nd));
        if (!nd)
            abort();
        r->d = nd;
        r->dcap = cap;
    }
    r->d[r->nd++] = d;
    if (G.o.sabotage && via == 'L' && c->idx == 7 && r->nd == 100 && !r->sabotaged) {
        r->sabotaged = true;
        /* checker self-test: pretend the gateway dropped, repeated or
         * reordered one live message for client 7 */
        if (strcmp(G.o.sabotage, "drop") == 0)
            r->nd--;
        else if (strcmp(G.o.sabotage, "dup") == 0)
            r->d[r->nd++] = d; /* the first cap is 256: room for it */
        else if (strcmp(G.o.sabotage, "reorder") == 0) {
            struct ch_deliv x = r->d[r->nd - 2];
            r->d[r->nd - 2] = r->d[r->nd - 1];
            r->d[r->nd - 1] = x;
        }
    }
    if (c->run->verbose || d.seq <= r->last_seq)
        clog_(c, "deliver room=%s seq=%lld id=%s via=%c%s", c->run->room_names[room], d.seq,
              id ? id : "-", via, d.seq <= r->last_seq ? " (not above last seq!)" : "");
    if (d.seq > r->last_seq)
        r->last_seq = d.seq;
}

static void send_join(struct ch_client *c, int room, double now)
{
    struct ch_croom *r = &c->r[room];

    if (send_json(c, "{\"type\":\"join\",\"room\":\"%s\",\"since\":%lld,\"id\":\"J%d.%d\"}",
                  c->run->room_names[room], r->last_seq, room, ++c->seq_join) == 0) {
        r->join_pending = true;
        r->t_join_sent = now;
        clog_(c, "join room=%s since=%lld", c->run->room_names[room], r->last_seq);
    }
}

static void send_history(struct ch_client *c, int room, double now)
{
    struct ch_croom *r = &c->r[room];

    if (send_json(c,
                  "{\"type\":\"history\",\"room\":\"%s\",\"after\":%lld,\"limit\":200,"
                  "\"id\":\"H%d.%d\"}",
                  c->run->room_names[room], r->last_seq, room, ++c->seq_hist) == 0) {
        r->hist_pending = true;
        r->t_join_sent = now;
    }
}

static void flush_buffered(struct ch_client *c, int room, double now)
{
    struct ch_croom *r = &c->r[room];
    size_t i;
    json_t *m;

    if (!r->buffered)
        return;
    json_array_foreach(r->buffered, i, m)
    {
        /* A page read after the snapshot may already hold what came live. */
        if (json_integer_value(json_object_get(m, "seq")) > r->last_seq)
            record_delivery(c, room, m, 'L', now);
    }
    json_decref(r->buffered);
    r->buffered = NULL;
}

static int room_index(const struct ch_run *run, const char *name)
{
    for (int i = 0; name && i < run->n_rooms; i++)
        if (strcmp(run->room_names[i], name) == 0)
            return i;
    return -1;
}

static void client_down(struct ch_client *c, const char *why, double now)
{
    for (int k = 0; k < c->n_rooms; k++)
        room_end_interval(c, c->rooms[k], now);
    for (size_t i = 0; i < c->nm; i++)
        if (c->m[i].state == M_INFLIGHT) {
            c->m[i].state = M_QUEUED;
            c->m[i].retry_at = now;
        }
    if (c->cc) {
        chat_client_free(c->cc); /* deferred when inside its own callback */
        c->cc = NULL;
    }
    c->conn = 0;
    clog_(c, "down gw%d: %s; reconnect in %.0f ms", c->gw + 1, why, c->backoff_ms);
    {
        double ms =
            c->backoff_ms * (0.75 + 0.5 * (double)(splitmix(&c->run->rng_client) % 1000) / 1000.0);
        struct timeval tv = {(long)(ms / 1000), (long)fmod(ms, 1000.0) * 1000};
        evtimer_add(c->reconnect_ev, &tv);
    }
    c->backoff_ms = c->backoff_ms * 2 > 2000 ? 2000 : c->backoff_ms * 2;
    c->gw = (c->gw + 1) % c->run->procs.n_gw; /* any live gateway: try the next one */
}

static void on_joined(struct ch_client *c, json_t *j, double now)
{
    int room = room_index(c->run, json_string_value(json_object_get(j, "room")));
    struct ch_croom *r;
    json_t *msgs, *m;
    size_t i;

    if (room < 0 || !c->r[room].member)
        return;
    r = &c->r[room];
    if (!r->join_pending)
        clog_(c, "unexpected joined room=%s", c->run->room_names[room]);
    r->join_pending = false;
    bool recovered = json_is_true(json_object_get(j, "recovered"));
    bool more = json_is_true(json_object_get(j, "more"));
    long long since = r->last_seq;

    if (r->niv == r->ivcap) {
        size_t cap = r->ivcap ? r->ivcap * 2 : 16;
        struct ch_interval *iv = realloc(r->iv, cap * sizeof(*iv));
        if (!iv)
            abort();
        r->iv = iv;
        r->ivcap = cap;
    }
    r->iv[r->niv++] =
        (struct ch_interval){.a = now, .b = -1, .since = since, .recovered = recovered};
    r->joined = true;
    msgs = json_object_get(j, "messages");
    clog_(c, "joined room=%s since=%lld recovered=%d more=%d messages=%zu",
          c->run->room_names[room], since, recovered, more, json_array_size(msgs));
    if (!recovered) {
        r->not_recovered++;
        c->run->n.not_recovered++;
    }
    json_array_foreach(msgs, i, m) record_delivery(c, room, m, 'J', now);
    if (more) {
        r->paging = true;
        r->buffered = json_array();
        send_history(c, room, now);
    }
    bool all = true;
    for (int k = 0; k < c->n_rooms; k++)
        all = all && c->r[c->rooms[k]].joined;
    if (all)
        c->backoff_ms = 100;
}

static void on_text(struct chat_client *cc, bool binary, const char *data, size_t len, void *arg)
{
    struct ch_client *c = arg;
    double now = ch_now(c->run);
    json_t *j;
    const char *type, *id;

    (void)cc;
    if (binary)
        return;
    j = json_loadb(data, len, 0, NULL);
    if (!j)
        return;
    type = json_string_value(json_object_get(j, "type"));
    id = json_string_value(json_object_get(j, "id"));
    if (!type) {
        json_decref(j);
        return;
    }
    if (strcmp(type, "message") == 0) {
        int room = room_index(c->run, json_string_value(json_object_get(j, "room")));

        if (room >= 0 && c->r[room].member) {
            struct ch_croom *r = &c->r[room];

            if (r->paging && r->buffered)
                json_array_append(r->buffered, j);
            else {
                if (!r->joined)
                    clog_(c, "live message room=%s before/without joined",
                          c->run->room_names[room]);
                record_delivery(c, room, j, 'L', now);
            }
        }
    } else if (strcmp(type, "joined") == 0) {
        on_joined(c, j, now);
    } else if (strcmp(type, "ack") == 0) {
        int cl, no;
        json_t *jseq = json_object_get(j, "seq");

        if (ch_parse_msg_id(id, &cl, &no) && cl == c->idx && (size_t)no < c->nm &&
            json_is_integer(jseq)) {
            struct ch_msg *m = &c->m[no];
            long long seq = json_integer_value(jseq);

            if (m->state == M_ACKED) {
                if (seq != m->ack_seq)
                    ch_violation(c->run, V_ACK_CONFLICT, "client %d %s: acked seq %lld, then %lld",
                                 c->idx, id, m->ack_seq, seq);
            } else {
                m->state = M_ACKED;
                m->t_ack = now;
                m->ack_seq = seq;
                c->run->n.acked++;
            }
            if (c->run->verbose)
                clog_(c, "ack %s seq=%lld", id, seq);
        }
    } else if (strcmp(type, "error") == 0) {
        const char *code = json_string_value(json_object_get(j, "code"));
        int cl, no;

        clog_(c, "error id=%s code=%s message=%s", id ? id : "-", code ? code : "-",
              json_string_value(json_object_get(j, "message")));
        if (code && strcmp(code, "unavailable") == 0)
            c->run->n.errors_unavailable++;
        else if (code && strcmp(code, "rate_limited") == 0)
            c->run->n.errors_rate++;
        else
            c->run->n.errors_other++;
        if (ch_parse_msg_id(id, &cl, &no) && cl == c->idx && (size_t)no < c->nm) {
            struct ch_msg *m = &c->m[no];

            if (m->state == M_INFLIGHT) {
                m->state = M_QUEUED;
                m->retry_at = now + 200 + (double)(splitmix(&c->run->rng_client) % 200);
                m->errors++;
            }
        } else if (id && (id[0] == 'J' || id[0] == 'H' || id[0] == 'L')) {
            int room = atoi(id + 1);

            if (room >= 0 && room < c->run->n_rooms) {
                struct ch_croom *r = &c->r[room];
                if (id[0] == 'J')
                    r->join_pending = false;
                else if (id[0] == 'H')
                    r->hist_pending = false;
                else
                    r->leave_pending = false;
                r->next_try_at = now + 300;
            }
        }
    } else if (strcmp(type, "history") == 0 && id && id[0] == 'H') {
        int room = atoi(id + 1);

        if (room >= 0 && room < c->run->n_rooms && c->r[room].paging) {
            struct ch_croom *r = &c->r[room];
            json_t *m;
            size_t i;

            r->hist_pending = false;
            json_array_foreach(json_object_get(j, "messages"), i, m)
                record_delivery(c, room, m, 'H', now);
            if (json_is_true(json_object_get(j, "more")))
                send_history(c, room, now);
            else {
                r->paging = false;
                flush_buffered(c, room, now);
            }
        }
    } else if (strcmp(type, "resync") == 0) {
        int room = room_index(c->run, json_string_value(json_object_get(j, "room")));

        if (room >= 0 && c->r[room].member) {
            struct ch_croom *r = &c->r[room];

            clog_(c, "resync room=%s last_seq=%lld", c->run->room_names[room], r->last_seq);
            r->resyncs++;
            c->run->n.resyncs++;
            /* Leave, then join again with since: live delivery restarts
             * cleanly after the snapshot. */
            room_end_interval(c, room, now);
            if (send_json(c, "{\"type\":\"leave\",\"room\":\"%s\",\"id\":\"L%d\"}",
                          c->run->room_names[room], room) == 0)
                r->leave_pending = true;
        }
    } else if (strcmp(type, "left") == 0 && id && id[0] == 'L') {
        int room = atoi(id + 1);

        if (room >= 0 && room < c->run->n_rooms) {
            c->r[room].leave_pending = false;
            c->r[room].next_try_at = now;
        }
    }
    json_decref(j);
}

static void on_event(struct chat_client *cc, enum chat_client_event ev, int code, void *arg)
{
    struct ch_client *c = arg;
    double now = ch_now(c->run);
    char why[64];

    (void)cc;
    if (ev == CHAT_CLIENT_OPEN) {
        c->conn = 2;
        clog_(c, "open gw%d", c->gw + 1);
        for (int k = 0; k < c->n_rooms; k++)
            c->r[c->rooms[k]].next_try_at = now;
        return;
    }
    if (ev == CHAT_CLIENT_CLOSED) {
        c->closes++;
        c->run->n.closes++;
        snprintf(why, sizeof(why), "closed %d", code);
    } else {
        c->refusals++;
        c->run->n.refusals++;
        snprintf(why, sizeof(why), "refused %d", code);
    }
    client_down(c, why, now);
}

static void client_connect(struct ch_client *c)
{
    char url[96];
    struct chat_client_options o = {0};

    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", c->run->procs.gw[c->gw].port);
    o.url = url;
    o.token = c->token;
    o.on_message = on_text;
    o.on_event = on_event;
    o.arg = c;
    c->cc = chat_client_new(c->run->base, &o);
    c->conn = c->cc ? 1 : 0;
    c->connects++;
    clog_(c, "connect gw%d", c->gw + 1);
    if (!c->cc)
        client_down(c, "chat_client_new failed", ch_now(c->run));
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    if (G.run.phase < 3)
        client_connect(arg);
}

static void send_msg(struct ch_client *c, size_t no, double now)
{
    struct ch_msg *m = &c->m[no];
    char id[32];

    ch_msg_id(id, sizeof(id), c->idx, (int)no);
    if (send_json(c,
                  "{\"type\":\"message\",\"room\":\"%s\",\"kind\":\"text\",\"body\":\"chaos %s "
                  "from %s\",\"id\":\"%s\"}",
                  c->run->room_names[m->room], id, c->nick, id) != 0)
        return;
    if (m->sends == 0) {
        m->t_first_send = now;
        c->run->n.sent++;
    } else {
        c->run->n.resends++;
    }
    m->sends++;
    m->state = M_INFLIGHT;
    m->t_last_send = now;
    if (c->run->verbose)
        clog_(c, "send %s room=%s try=%d", id, c->run->room_names[m->room], m->sends);
}

static size_t outstanding(const struct ch_client *c)
{
    size_t n = 0;

    for (size_t i = c->lo; i < c->nm; i++)
        n += c->m[i].state != M_ACKED;
    return n;
}

static void client_tick(struct ch_client *c, double now)
{
    /* new messages */
    if (c->run->phase == 1 && now >= c->next_create) {
        c->next_create += 150 + (double)(splitmix(&c->run->rng_client) % 100);
        if (now - c->next_create > 1000)
            c->next_create = now;
        if (outstanding(c) >= 20) {
            c->run->n.skipped++;
        } else {
            if (c->nm == c->mcap) {
                size_t cap = c->mcap ? c->mcap * 2 : 512;
                struct ch_msg *nm = realloc(c->m, cap * sizeof(*nm));
                if (!nm)
                    abort();
                c->m = nm;
                c->mcap = cap;
            }
            c->m[c->nm] = (struct ch_msg){.room = c->rooms[c->next_room],
                                          .state = M_QUEUED,
                                          .t_create = now,
                                          .retry_at = now,
                                          .ack_seq = -1};
            c->next_room = (c->next_room + 1) % c->n_rooms;
            c->nm++;
        }
    }
    while (c->lo < c->nm && c->m[c->lo].state == M_ACKED)
        c->lo++;
    if (c->conn != 2)
        return;
    /* joins, leaves, pages */
    for (int k = 0; k < c->n_rooms; k++) {
        int room = c->rooms[k];
        struct ch_croom *r = &c->r[room];

        if (r->join_pending && now - r->t_join_sent > 15000 && !r->join_unanswered) {
            r->join_unanswered = true;
            ch_violation(c->run, V_UNANSWERED, "client %d on gw%d: join %s unanswered for 15 s",
                         c->idx, c->gw + 1, c->run->room_names[room]);
        }
        if (r->joined || r->join_pending || r->leave_pending || now < r->next_try_at)
            continue;
        if (take_token(c, now))
            send_join(c, room, now);
    }
    for (int k = 0; k < c->n_rooms; k++) {
        int room = c->rooms[k];
        struct ch_croom *r = &c->r[room];

        if (r->paging && !r->hist_pending && now >= r->next_try_at && take_token(c, now))
            send_history(c, room, now);
    }
    /* messages: oldest first */
    for (size_t i = c->lo; i < c->nm; i++) {
        struct ch_msg *m = &c->m[i];

        if (m->state == M_INFLIGHT && now - m->t_last_send > 15000 && !m->unanswered_reported) {
            char id[32];

            m->unanswered_reported = true;
            ch_msg_id(id, sizeof(id), c->idx, (int)i);
            ch_violation(c->run, V_UNANSWERED, "client %d on gw%d: message %s unanswered for 15 s",
                         c->idx, c->gw + 1, id);
            m->state = M_QUEUED; /* same id again: safe */
        }
        if (m->state != M_QUEUED || now < m->retry_at || !c->r[m->room].joined ||
            c->r[m->room].paging)
            continue;
        if (!take_token(c, now))
            break;
        send_msg(c, i, now);
    }
}

/* ---- faults ---- */

static void gen_faults(uint64_t seed)
{
    uint64_t s = seed;
    double t = 2000, end = G.o.duration_s * 1000.0 - 3000;
    int bag[F_NKINDS], nbag = 0;

    G.faults = calloc(256, sizeof(*G.faults));
    while (t < end && G.n_faults < 256) {
        struct fault *f = &G.faults[G.n_faults++];
        double busy = 0;

        if (nbag == 0) { /* every kind once per round, in a seeded order */
            for (int k = 0; k < F_NKINDS; k++)
                bag[k] = k;
            for (int k = F_NKINDS - 1; k > 0; k--) {
                int x = rnd_range(&s, 0, k), tmp = bag[k];
                bag[k] = bag[x];
                bag[x] = tmp;
            }
            nbag = F_NKINDS;
        }
        f->kind = bag[--nbag];
        f->at = t;
        switch (f->kind) {
        case F_GW_KILL:
            f->gw = rnd_range(&s, 0, G.run.procs.n_gw - 1);
            f->ms = G.o.shortmode ? rnd_range(&s, 300, 1200) : rnd_range(&s, 300, 2000);
            busy = f->ms + 300;
            break;
        case F_PUBSUB_KILL:
            break;
        case F_REDIS_STOP:
            f->ms = G.o.shortmode ? rnd_range(&s, 1000, 2000) : rnd_range(&s, 1000, 3000);
            busy = f->ms;
            break;
        case F_REDIS_RESTART:
            f->ms = rnd_range(&s, 0, 1000); /* down time after it exited */
            busy = f->ms + 500;
            break;
        }
        t += busy + (G.o.shortmode ? rnd_range(&s, 1500, 3000) : rnd_range(&s, 2000, 5000));
    }
}

static void print_faults(void)
{
    printf("chaos: fault schedule (%d):", G.n_faults);
    for (int i = 0; i < G.n_faults; i++) {
        struct fault *f = &G.faults[i];

        printf("%s %.1fs ", i ? "," : "", f->at / 1000.0);
        switch (f->kind) {
        case F_GW_KILL:
            printf("kill gw%d %dms", f->gw + 1, f->ms);
            break;
        case F_PUBSUB_KILL:
            printf("pubsub-kill");
            break;
        case F_REDIS_STOP:
            printf("redis-stop %dms", f->ms);
            break;
        case F_REDIS_RESTART:
            printf("redis-restart +%dms", f->ms);
            break;
        }
    }
    printf("\n");
    fflush(stdout);
}

static void fault_start(struct fault *f)
{
    struct ch_procs *p = &G.run.procs;

    G.run.n.faults++;
    G.fault_busy = true;
    G.busy_kind = f->kind;
    G.busy_gw = f->gw;
    switch (f->kind) {
    case F_GW_KILL: {
        struct ch_proc *g = &p->gw[f->gw];
        G.run.n.f_gw_kill++;
        if (g->pid > 0) {
            g->expect_exit = true;
            kill(g->pid, SIGKILL);
            waitpid(g->pid, NULL, 0);
            g->pid = 0;
            g->expect_exit = false;
        }
        say("fault %ld: kill -9 %s, restart in %d ms", G.run.n.faults, g->name, f->ms);
        G.busy_until = ch_now(&G.run) + f->ms;
        break;
    }
    case F_PUBSUB_KILL: {
        redisReply *r = ch_redis_cmd(p, 1000, "CLIENT KILL TYPE pubsub");
        G.run.n.f_pubsub_kill++;
        say("fault %ld: CLIENT KILL TYPE pubsub -> %lld killed", G.run.n.faults,
            r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1LL);
        if (r)
            freeReplyObject(r);
        G.fault_busy = false;
        break;
    }
    case F_REDIS_STOP:
        G.run.n.f_redis_stop++;
        kill(p->redis.pid, SIGSTOP);
        p->redis.stopped = true;
        say("fault %ld: SIGSTOP redis for %d ms", G.run.n.faults, f->ms);
        G.busy_until = ch_now(&G.run) + f->ms;
        break;
    case F_REDIS_RESTART:
        G.run.n.f_redis_restart++;
        p->redis.expect_exit = true;
        kill(p->redis.pid, SIGTERM);
        G.redis_restart_waiting = true;
        say("fault %ld: SIGTERM redis (AOF kept), start again %d ms after it exits", G.run.n.faults,
            f->ms);
        G.busy_until = -1;
        break;
    }
}

/* Moves the fault in progress along; called from the tick. */
static void fault_progress(double now)
{
    struct ch_procs *p = &G.run.procs;
    struct fault *f = &G.faults[G.next_fault - 1];

    if (!G.fault_busy)
        return;
    switch (G.busy_kind) {
    case F_GW_KILL:
        if (now >= G.busy_until) {
            if (ch_gw_start(p, G.busy_gw) == 0)
                say("%s started again (pid %d, port %d)", p->gw[G.busy_gw].name,
                    (int)p->gw[G.busy_gw].pid, p->gw[G.busy_gw].port);
            G.fault_busy = false;
        }
        break;
    case F_REDIS_STOP:
        if (now >= G.busy_until) {
            kill(p->redis.pid, SIGCONT);
            p->redis.stopped = false;
            say("SIGCONT redis");
            G.fault_busy = false;
        }
        break;
    case F_REDIS_RESTART:
        if (G.redis_restart_waiting) {
            int status;

            if (p->redis.pid > 0 && waitpid(p->redis.pid, &status, WNOHANG) == p->redis.pid) {
                p->redis.pid = 0;
                p->redis.expect_exit = false;
                G.redis_restart_waiting = false;
                G.busy_until = now + f->ms;
                say("redis exited (%s)",
                    WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "exit 0" : "abnormally");
            } else if (p->redis.pid <= 0) {
                G.redis_restart_waiting = false;
                G.busy_until = now + f->ms;
            }
        } else if (now >= G.busy_until) {
            if (ch_redis_start(p) == 0)
                say("redis started again (pid %d, port %d)", (int)p->redis.pid, p->redis.port);
            G.fault_busy = false;
        }
        break;
    default:
        G.fault_busy = false;
    }
}

/* ---- the loop ---- */

static bool all_joined(void)
{
    for (int i = 0; i < G.run.n_clients; i++) {
        struct ch_client *c = &G.run.clients[i];

        if (c->conn != 2)
            return false;
        for (int k = 0; k < c->n_rooms; k++) {
            struct ch_croom *r = &c->r[c->rooms[k]];
            if (!r->joined || r->paging || r->join_pending)
                return false;
        }
    }
    return true;
}

/* Why the cluster is not settled yet, or NULL when it is. */
static const char *settle_state(char *buf, size_t len)
{
    struct ch_procs *p = &G.run.procs;
    long long seq[CH_MAX_ROOMS];

    if (G.fault_busy)
        return "a fault is still in progress";
    if (p->redis.pid <= 0)
        return "redis is down";
    for (int i = 0; i < p->n_gw; i++)
        if (p->gw[i].pid <= 0) {
            snprintf(buf, len, "%s is down", p->gw[i].name);
            return buf;
        }
    for (int i = 0; i < G.run.n_clients; i++) {
        struct ch_client *c = &G.run.clients[i];

        if (c->conn != 2) {
            snprintf(buf, len, "client %d is not connected (gw%d)", i, c->gw + 1);
            return buf;
        }
        for (int k = 0; k < c->n_rooms; k++) {
            struct ch_croom *r = &c->r[c->rooms[k]];
            if (!r->joined || r->paging || r->join_pending) {
                snprintf(buf, len, "client %d has not joined %s", i, G.run.room_names[c->rooms[k]]);
                return buf;
            }
        }
        for (size_t k = c->lo; k < c->nm; k++)
            if (c->m[k].state != M_ACKED) {
                snprintf(buf, len, "client %d has unacked messages (c%d-m%zu ...)", i, i, k);
                return buf;
            }
    }
    for (int room = 0; room < G.run.n_rooms; room++) {
        redisReply *r = ch_redis_cmd(p, 1000, "GET chat:room:{%s}:seq", G.run.room_names[room]);

        seq[room] = r && r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
        if (r)
            freeReplyObject(r);
        if (seq[room] < 0)
            return "cannot read the rooms' seq from redis";
    }
    for (int i = 0; i < G.run.n_clients; i++) {
        struct ch_client *c = &G.run.clients[i];

        for (int k = 0; k < c->n_rooms; k++) {
            int room = c->rooms[k];
            if (c->r[room].last_seq != seq[room]) {
                snprintf(buf, len, "client %d (gw%d) is at seq %lld of %s, redis at %lld", i,
                         c->gw + 1, c->r[room].last_seq, G.run.room_names[room], seq[room]);
                return buf;
            }
        }
    }
    return NULL;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    double now = ch_now(&G.run);
    struct ch_procs *p = &G.run.procs;
    static double last_settle_check, last_report;
    char buf[256];
    const char *why;

    (void)fd;
    (void)what;
    (void)arg;
    ch_reap(p);
    for (int i = -1; i < p->n_gw; i++) {
        struct ch_proc *pr = i < 0 ? &p->redis : &p->gw[i];
        if (pr->unexpected_exits > 0) {
            G.crashes_seen += pr->unexpected_exits;
            ch_violation(&G.run, V_CRASH, "%s exited on its own at %.2fs: %s (log %s)", pr->name,
                         now / 1000.0, pr->last_status, pr->log_path);
            pr->unexpected_exits = 0;
            if (i < 0)
                ch_redis_start(p);
            else
                ch_gw_start(p, i);
        }
    }
    for (int i = 0; i < G.run.n_clients; i++)
        client_tick(&G.run.clients[i], now);

    switch (G.run.phase) {
    case 0:
        if (all_joined()) {
            G.run.phase = 1;
            G.t_load = now;
            G.t_load_end = now + G.o.duration_s * 1000.0;
            for (int i = 0; i < G.run.n_clients; i++)
                G.run.clients[i].next_create = now + (double)(splitmix(&G.run.rng_client) % 200);
            say("all %d clients joined; load for %d s", G.run.n_clients, G.o.duration_s);
        } else if (now > 30000) {
            ch_violation(&G.run, V_SETTLE, "clients did not all join within 30 s of the start");
            G.run.phase = 3;
        }
        break;
    case 1:
        fault_progress(now);
        if (!G.fault_busy && G.next_fault < G.n_faults &&
            now - G.t_load >= G.faults[G.next_fault].at)
            fault_start(&G.faults[G.next_fault++]);
        if (now - last_report > 10000) {
            last_report = now;
            say("sent %ld acked %ld (resends %ld, unavailable %ld, closes %ld, refusals %ld)",
                G.run.n.sent, G.run.n.acked, G.run.n.resends, G.run.n.errors_unavailable,
                G.run.n.closes, G.run.n.refusals);
        }
        if (now >= G.t_load_end) {
            G.run.phase = 2;
            G.t_settle_end = now + G.o.settle_s * 1000.0;
            say("load stopped: sent %ld acked %ld; %d of %d faults injected; settling (at most %d "
                "s)",
                G.run.n.sent, G.run.n.acked, G.next_fault, G.n_faults, G.o.settle_s);
        }
        break;
    case 2:
        fault_progress(now);
        if (now - last_settle_check < 250)
            break;
        last_settle_check = now;
        why = settle_state(buf, sizeof(buf));
        if (!why) {
            say("settled: every message acked, every client joined and at the rooms' last seq");
            G.run.phase = 3;
        } else if (now >= G.t_settle_end) {
            ch_violation(&G.run, V_SETTLE, "not settled %d s after the load stopped: %s",
                         G.o.settle_s, why);
            say("NOT settled: %s", why);
            G.run.phase = 3;
        }
        break;
    }
    if (G.run.phase == 3)
        event_base_loopbreak(G.run.base);
}

/* ---- setup ---- */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: chat-chaos --gateway-bin PATH [--seed N] [--duration S] [--short]\n"
           "                  [--clients N] [--gateways N] [--rooms N] [--settle S]\n"
           "                  [--redis-server PATH] [--dir DIR] [--keep] [--verbose]\n"
           "                  [--schedule] (print the fault schedule and exit)\n"
           "                  [--sabotage drop|dup|reorder|lose] (checker self-test: must fail)\n");
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    struct opts *o = &G.o;
    struct ch_run *run = &G.run;
    struct ch_procs *p = &run->procs;
    static const char *const names[] = {"general", "random", "tech",   "chaos4",
                                        "chaos5",  "chaos6", "chaos7", "chaos8"};
    char tmpl[] = "/tmp/chatgw-chaos-XXXXXX";
    int rc;

    o->duration_s = 60;
    o->clients = 30;
    o->gateways = 3;
    o->rooms = 3;
    o->settle_s = 30;
    o->redis_bin = "redis-server";
    int duration_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                                                    \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "chat-chaos: %s needs a value\n", a);                                  \
            return 2;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "--seed") == 0) {
            NEEDV();
            o->seed = strtoull(v, NULL, 10);
            o->seed_given = true;
        } else if (strcmp(a, "--duration") == 0) {
            NEEDV();
            o->duration_s = atoi(v);
            duration_given = 1;
        } else if (strcmp(a, "--short") == 0) {
            o->shortmode = true;
        } else if (strcmp(a, "--clients") == 0) {
            NEEDV();
            o->clients = atoi(v);
        } else if (strcmp(a, "--gateways") == 0) {
            NEEDV();
            o->gateways = atoi(v);
        } else if (strcmp(a, "--rooms") == 0) {
            NEEDV();
            o->rooms = atoi(v);
        } else if (strcmp(a, "--settle") == 0) {
            NEEDV();
            o->settle_s = atoi(v);
        } else if (strcmp(a, "--gateway-bin") == 0) {
            NEEDV();
            o->gateway_bin = v;
        } else if (strcmp(a, "--redis-server") == 0) {
            NEEDV();
            o->redis_bin = v;
        } else if (strcmp(a, "--dir") == 0) {
            NEEDV();
            o->dir = v;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
        } else if (strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        } else if (strcmp(a, "--schedule") == 0) {
            o->schedule_only = true;
        } else if (strcmp(a, "--sabotage") == 0) {
            NEEDV();
            o->sabotage = v;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "chat-chaos: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o->shortmode && !duration_given)
        o->duration_s = 20;
    if (!o->gateway_bin || o->duration_s < 5 || o->clients < 2 || o->gateways < 1 ||
        o->gateways > CH_MAX_GW || o->rooms < 2 || o->rooms > CH_MAX_ROOMS || o->settle_s < 1) {
        usage(stderr);
        return 2;
    }
    if (!o->seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t s = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        o->seed = splitmix(&s) % 1000000000ull;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    /* A hung run dies (and its children with it, PR_SET_PDEATHSIG). */
    alarm((unsigned)(o->duration_s + o->settle_s + 120));
    run->t0 = mono_ms();
    run->verbose = o->verbose;
    run->n_rooms = o->rooms;
    for (int i = 0; i < o->rooms; i++)
        run->room_names[i] = names[i];
    run->rng_client = o->seed ^ 0x5eed5eedull;
    p->n_gw = o->gateways;
    p->gateway_bin = o->gateway_bin;
    p->redis_bin = o->redis_bin;

    printf("chaos: seed %" PRIu64 " (again: --seed %" PRIu64 "%s%s)\n", o->seed, o->seed,
           o->shortmode ? " --short" : "", duration_given ? " --duration N" : "");
    printf("chaos: %d s of load, %d clients over %d gateways in %d rooms (2 rooms each), a "
           "message every ~200 ms per client\n",
           o->duration_s, o->clients, o->gateways, o->rooms);
    gen_faults(o->seed);
    print_faults();
    if (o->schedule_only)
        return 0;
    if (o->sabotage)
        printf("chaos: SABOTAGE %s: the checker must fail this run\n", o->sabotage);

    if (o->dir) {
        snprintf(p->dir, sizeof(p->dir), "%s", o->dir);
        mkdir(p->dir, 0755);
    } else if (mkdtemp(tmpl)) {
        snprintf(p->dir, sizeof(p->dir), "%s", tmpl);
    } else {
        perror("chat-chaos: mkdtemp");
        return 2;
    }
    snprintf(p->redis_dir, sizeof(p->redis_dir), "%s/redis", p->dir);
    mkdir(p->redis_dir, 0755);
    {
        char cdir[300];
        snprintf(cdir, sizeof(cdir), "%s/clients", p->dir);
        mkdir(cdir, 0755);
    }
    printf("chaos: logs in %s\n", p->dir);

    rc = 2;
    if (ch_redis_start(p) != 0 || ch_redis_wait(p, 10000) != 0) {
        fprintf(stderr, "chat-chaos: redis-server did not start (log %s)\n", p->redis.log_path);
        goto out;
    }
    for (int i = 0; i < p->n_gw; i++)
        if (ch_gw_start(p, i) != 0) {
            fprintf(stderr, "chat-chaos: cannot start gw%d\n", i + 1);
            goto out;
        }
    for (int i = 0; i < p->n_gw; i++)
        if (ch_gw_wait(p, i, 15000) != 0) {
            fprintf(stderr, "chat-chaos: gw%d did not answer /healthz (log %s)\n", i + 1,
                    p->gw[i].log_path);
            goto out;
        }
    printf("chaos: redis on %d, gateways on", p->redis.port);
    for (int i = 0; i < p->n_gw; i++)
        printf(" %d", p->gw[i].port);
    printf("\n");

    run->base = event_base_new();
    run->n_clients = o->clients;
    run->clients = calloc((size_t)o->clients, sizeof(*run->clients));
    for (int i = 0; i < o->clients; i++) {
        struct ch_client *c = &run->clients[i];
        char url[64], path[400];
        int st;

        c->idx = i;
        c->run = run;
        c->gw = i % p->n_gw;
        c->backoff_ms = 100;
        c->tokens = 12;
        snprintf(c->nick, sizeof(c->nick), "chaos%d", i);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", p->gw[c->gw].port);
        st = chat_login(url, c->nick, NULL, &c->token, &c->uid, 5000);
        if (st != 200) {
            fprintf(stderr, "chat-chaos: login of %s failed: %d\n", c->nick, st);
            goto out;
        }
        c->n_rooms = 2;
        c->rooms[0] = i % o->rooms;
        c->rooms[1] = (i + 1) % o->rooms;
        for (int k = 0; k < c->n_rooms; k++)
            c->r[c->rooms[k]].member = true;
        c->next_room = i % 2;
        snprintf(path, sizeof(path), "%s/clients/c%02d.log", p->dir, i);
        c->log = fopen(path, "w");
        c->reconnect_ev = evtimer_new(run->base, on_reconnect, c);
    }
    for (int i = 0; i < o->clients; i++) {
        run->clients[i].t_tokens = ch_now(run);
        client_connect(&run->clients[i]);
    }
    G.tick_ev = event_new(run->base, -1, EV_PERSIST, on_tick, NULL);
    {
        struct timeval tv = {0, 20000};
        event_add(G.tick_ev, &tv);
    }
    event_base_dispatch(run->base);

    /* Everything has settled (or timed out): the load is over. */
    for (int i = 0; i < o->clients; i++) {
        struct ch_client *c = &run->clients[i];
        if (c->cc)
            chat_client_free(c->cc);
        c->cc = NULL;
        for (int k = 0; k < c->n_rooms; k++)
            room_end_interval(c, c->rooms[k], ch_now(run));
        if (c->log)
            fflush(c->log);
    }
    if (p->redis.stopped) {
        kill(p->redis.pid, SIGCONT);
        p->redis.stopped = false;
    }
    if (p->redis.pid <= 0)
        ch_redis_start(p), ch_redis_wait(p, 10000);

    if (o->sabotage && strcmp(o->sabotage, "lose") == 0) {
        /* checker self-test: an acked write vanishes from history */
        redisReply *r =
            ch_redis_cmd(p, 2000, "LINDEX chat:room:{%s}:history 10", run->room_names[0]);
        if (r && r->type == REDIS_REPLY_STRING) {
            redisReply *r2 = ch_redis_cmd(p, 2000, "LREM chat:room:{%s}:history 1 %b",
                                          run->room_names[0], r->str, r->len);
            if (r2)
                freeReplyObject(r2);
        }
        if (r)
            freeReplyObject(r);
    }
    ch_check(run);

    for (int i = 0; i < p->n_gw; i++) {
        int st = ch_proc_stop(p, &p->gw[i], 8000);
        if (st > 0 || (st == -1 && strncmp(p->gw[i].last_status, "signal 9", 8) == 0))
            ch_violation(run, V_CRASH, "%s on SIGTERM: %s (log %s)", p->gw[i].name,
                         p->gw[i].last_status, p->gw[i].log_path);
    }

    printf(
        "chaos: faults injected: %ld (kill -9 gateway %ld, CLIENT KILL pubsub %ld, SIGSTOP redis "
        "%ld, redis restart %ld)\n",
        run->n.faults, run->n.f_gw_kill, run->n.f_pubsub_kill, run->n.f_redis_stop,
        run->n.f_redis_restart);
    printf("chaos: client side: %ld closes, %ld refused connects, %ld resends, %ld unavailable, "
           "%ld rate_limited, %ld other errors, %ld joins not recovered, %ld resyncs, %ld "
           "messages skipped (20 outstanding)\n",
           run->n.closes, run->n.refusals, run->n.resends, run->n.errors_unavailable,
           run->n.errors_rate, run->n.errors_other, run->n.not_recovered, run->n.resyncs,
           run->n.skipped);
    if (run->n_viol) {
        printf("chaos: %zu violations:\n", run->n_viol);
        for (int k = 0; k < V_NKINDS; k++)
            if (run->viol_by_kind[k])
                printf("  %6ld  %s\n", run->viol_by_kind[k], ch_viol_names[k]);
        size_t shown = 0;
        long per_kind[V_NKINDS] = {0};
        for (size_t i = 0; i < run->n_viol; i++) {
            int k;
            for (k = 0; k < V_NKINDS; k++)
                if (strncmp(run->viol[i] + 1, ch_viol_names[k], strlen(ch_viol_names[k])) == 0)
                    break;
            if (k < V_NKINDS && per_kind[k]++ >= 25)
                continue;
            printf("  %s\n", run->viol[i]);
            shown++;
        }
        if (shown < run->n_viol)
            printf("  ... %zu more (25 shown per kind)\n", run->n_viol - shown);
        printf("chaos: FAIL (seed %" PRIu64 "; logs kept in %s)\n", o->seed, p->dir);
        rc = 1;
    } else {
        printf("chaos: PASS (seed %" PRIu64 ")\n", o->seed);
        rc = 0;
    }

out:
    ch_stop_all(p);
    for (int i = 0; run->clients && i < run->n_clients; i++) {
        struct ch_client *c = &run->clients[i];
        if (c->log)
            fclose(c->log);
        if (c->reconnect_ev)
            event_free(c->reconnect_ev);
    }
    if (rc == 0 && !o->keep && !o->dir)
        nftw(p->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    else if (rc == 2)
        printf("chaos: setup failed; logs in %s\n", p->dir);
    return rc;
}
