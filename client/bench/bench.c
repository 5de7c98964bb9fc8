/*
 * chat-bench: a load generator for chat-gateway clusters.
 *
 * One event loop drives every simulated user: an asynchronous login
 * (POST /api/login over a few keep-alive evhttp connections per gateway), a
 * WebSocket (libchat_client), a join of room bench-(i % M), then timestamped
 * messages.  Every receiver checks what it gets against what was acked:
 *
 *  - latency: each body carries its send time (CLOCK_MONOTONIC, ns, same
 *    process), recorded into a log-bucketed histogram on delivery;
 *  - order and duplicates: per client, a bitmap of the room seqs seen live;
 *  - loss: every acked seq of a room must reach every member whose `joined`
 *    reply ended before that seq (the protocol's "no gap" join point).
 *
 * Phases: ramp (connect and join everybody), warmup, measured duration,
 * drain (no more sends; wait, bounded, for acks and deliveries), report.
 */
#include "chat_client.h"
#include "hist.h"
#include "scan.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_TICK_US 1000
#define BENCH_MAX_INFLIGHT 256         /* logins + handshakes + joins at once */
#define BENCH_LOGIN_CONNS 4            /* keep-alive login connections per gateway */
#define BENCH_SETUP_STALL_NS (30 * NS) /* ramp gives up after this long without progress */
#define BENCH_CLOSE_WAIT_NS (3 * NS)
#define BENCH_MAX_SEQ_SPAN (1u << 26) /* largest seq distance a bitmap follows */
#define BENCH_TAG "cb1"
#define BENCH_MAX_UNACKED 64 /* per client, whatever the mode */
#define NS 1000000000ull

enum phase { PH_RAMP, PH_SEND, PH_DRAIN, PH_CLOSE, PH_DONE };

enum cstate {
    CS_WAITING, /* not started yet */
    CS_LOGIN,   /* POST /api/login in flight */
    CS_CONNECT, /* WebSocket handshake in flight */
    CS_WELCOME, /* open, waiting for welcome */
    CS_JOINING, /* join sent */
    CS_JOINED,  /* in its room: sends and receives */
    CS_FAILED,  /* setup failed; never counted as a member */
    CS_CLOSED,  /* was joined, connection lost */
};

struct bench_opts {
    char **urls;
    size_t n_urls;
    long clients;
    long rooms;
    double rate;
    bool max;
    long window;
    long size;
    double duration;
    double warmup;
    double ramp;
    double drain;
    pid_t *pids;
    size_t n_pids;
    bool json;
    const char *nick_prefix;
};

struct bitmap {
    uint64_t *words;
    size_t n_words;
};

struct send_slot {
    uint64_t counter;
    uint64_t t_ns;
};

struct bench;

struct bclient {
    struct bench *b;
    struct chat_client *cc;
    char *token;
    long idx;
    int room;
    int url;
    enum cstate state;
    int login_tries;
    uint64_t t_start;   /* login request sent */
    uint64_t t_connect; /* chat_client_new called */
    int64_t join_seq;   /* last seq in the joined reply */
    int64_t max_seq;    /* highest seq delivered live */
    struct bitmap seen; /* live seqs seen, bit (seq - room base - 1) */
    uint64_t counter;   /* messages sent */
    long unacked;
    long unechoed;           /* --max: own messages not yet delivered back to this client */
    struct send_slot *slots; /* send times of unacked messages, by counter % window */
};

struct room {
    char name[40];
    long *members; /* client indexes */
    long n_members;
    long n_open;   /* members joined and still connected */
    int64_t base;  /* highest join seq of its members when sending began */
    long inflight; /* --max: messages sent and not yet back at their sender */
    long cursor;   /* --max: next member to send */
    struct bitmap acked;
};

struct login_pool {
    struct evhttp_connection *conns[BENCH_LOGIN_CONNS];
    int next;
    char host[256];
};

struct proc_sample {
    uint64_t cpu_ticks;
    uint64_t rss_kib;
    bool ok;
};

struct proc_watch {
    pid_t pid;
    char comm[64];
    struct proc_sample start, connected, measure_start, measure_end;
    uint64_t rss_peak_kib;
};

struct counters {
    uint64_t sent, acked, send_errors, rate_limited, other_errors;
    uint64_t delivered;      /* live deliveries of this run's messages, repeats excluded */
    uint64_t delivered_meas; /* of those, received inside the measured window */
    uint64_t duplicated, out_of_order, foreign, bad_frames;
    uint64_t events; /* presence, online, offline, room_created ...: counted, not checked */
    uint64_t connected, failed, disconnected, login_failed;
    uint64_t expected_running; /* expected deliveries of acked messages, for the drain */
    uint64_t unacked;
};

struct bench {
    struct bench_opts o;
    struct event_base *base;
    struct event *tick;
    struct event *sigint;
    struct bclient *clients;
    struct room *rooms;
    struct login_pool *pools;
    struct proc_watch *procs;
    char run_id[16];
    char **nicks;
    enum phase phase;
    uint64_t t0, t_ramp_done, t_send, t_measure, t_send_end, t_drain_end, t_close;
    uint64_t t_progress, t_last_setup_progress;
    long next_start; /* next client to start */
    long inflight;
    long settled; /* clients joined or failed */
    long rr;      /* round-robin cursor for --rate */
    long n_slots; /* send times kept per client: its most unacked messages */
    uint64_t scheduled;
    struct counters n;
    struct bench_hist lat, ack_lat, login_lat, connect_lat;
    struct bench_hist lat_same, lat_cross; /* sender on the same / another gateway URL */
    struct rusage ru_start;
    uint64_t machine_busy[2], machine_total[2]; /* /proc/stat at measure start and end */
    bool measure_sampled;
    bool tty;
    bool interrupted;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

/* ---- bitmaps ---- */

/* Sets bit i; returns 1 if it was set already, -1 when i is out of range or
 * memory runs out, else 0. */
static int bitmap_set(struct bitmap *m, uint64_t i)
{
    size_t w = (size_t)(i / 64);

    if (i >= BENCH_MAX_SEQ_SPAN)
        return -1;
    if (w >= m->n_words) {
        size_t n = m->n_words ? m->n_words : 16;
        uint64_t *words;

        while (n <= w)
            n *= 2;
        words = realloc(m->words, n * sizeof(*words));
        if (!words)
            return -1;
        memset(words + m->n_words, 0, (n - m->n_words) * sizeof(*words));
        m->words = words;
        m->n_words = n;
    }
    if (m->words[w] & (1ull << (i % 64)))
        return 1;
    m->words[w] |= 1ull << (i % 64);
    return 0;
}

static bool bitmap_get(const struct bitmap *m, uint64_t i)
{
    size_t w = (size_t)(i / 64);

    return w < m->n_words && (m->words[w] & (1ull << (i % 64)));
}

/* ---- /proc sampling ---- */

static struct proc_sample proc_read(pid_t pid)
{
    struct proc_sample s = {0};
    char path[64], buf[1024], *p;
    unsigned long utime, stime;
    long rss_pages;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return s;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: parse after the last ')'. */
    p = strrchr(buf, ')');
    if (!p)
        return s;
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
               "%*u %*u %ld",
               &utime, &stime, &rss_pages) != 3)
        return s;
    s.cpu_ticks = (uint64_t)utime + stime;
    s.rss_kib = (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
    s.ok = true;
    return s;
}

/* Busy and total jiffies of all CPUs together, from the first line of /proc/stat. */
static void machine_read(uint64_t *busy, uint64_t *total)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");

    *busy = *total = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *total += v[i];
        *busy = *total - v[3] - v[4]; /* minus idle and iowait */
    }
    fclose(f);
}

enum { SAMPLE_START, SAMPLE_CONNECTED, SAMPLE_MEASURE_START, SAMPLE_MEASURE_END, SAMPLE_PEAK };

static void procs_sample(struct bench *b, size_t which)
{
    for (size_t i = 0; i < b->o.n_pids; i++) {
        struct proc_watch *w = &b->procs[i];
        struct proc_sample s = proc_read(w->pid);
        struct proc_sample *slots[] = {&w->start, &w->connected, &w->measure_start, &w->measure_end,
                                       NULL};

        if (s.ok && s.rss_kib > w->rss_peak_kib)
            w->rss_peak_kib = s.rss_kib;
        if (slots[which])
            *slots[which] = s;
    }
    if (which == SAMPLE_MEASURE_START)
        machine_read(&b->machine_busy[0], &b->machine_total[0]);
    else if (which == SAMPLE_MEASURE_END)
        machine_read(&b->machine_busy[1], &b->machine_total[1]);
}

/* ---- phase changes ---- */

static void start_send_phase(struct bench *b);
static void start_drain(struct bench *b);
static void start_close(struct bench *b);

static void client_settle(struct bclient *c, enum cstate st)
{
    struct bench *b = c->b;

    if (c->state == CS_JOINED || c->state == CS_FAILED || c->state == CS_CLOSED)
        return;
    if (c->state != CS_WAITING)
        b->inflight--;
    c->state = st;
    b->settled++;
    b->t_last_setup_progress = now_ns();
    if (st == CS_JOINED) {
        b->n.connected++;
        b->rooms[c->room].n_open++;
    } else {
        b->n.failed++;
    }
}

static void client_fail(struct bclient *c)
{
    if (c->cc) {
        chat_client_free(c->cc);
        c->cc = NULL;
    }
    free(c->token);
    c->token = NULL;
    client_settle(c, CS_FAILED);
}

/* ---- sending ---- */

static bool can_send(const struct bclient *c)
{
    return c->state == CS_JOINED && c->unacked < c->b->o.window;
}

static void refill(struct bench *b, struct room *r);

static int send_message(struct bclient *c)
{
    struct bench *b = c->b;
    uint64_t t = now_ns();
    char head[256];
    char *frame;
    int hn, rv;
    size_t body_len, tag_len;

    tag_len = (size_t)snprintf(head, sizeof(head), "%s:%s:%ld:%" PRIu64 ":%" PRIu64 ":", BENCH_TAG,
                               b->run_id, c->idx, c->counter, t);
    body_len = (size_t)b->o.size > tag_len ? (size_t)b->o.size : tag_len;
    frame = malloc(body_len + 256);
    if (!frame)
        return -1;
    hn = snprintf(frame, 256,
                  "{\"type\":\"message\",\"room\":\"%s\",\"kind\":\"text\",\"id\":\"m%" PRIu64
                  "\",\"body\":\"%s",
                  b->rooms[c->room].name, c->counter, head);
    memset(frame + hn, 'x', body_len - tag_len);
    memcpy(frame + hn + (body_len - tag_len), "\"}", 2);
    rv = chat_client_send_text(c->cc, frame, (size_t)hn + body_len - tag_len + 2);
    free(frame);
    if (rv != 0)
        return -1;
    c->slots[c->counter % (uint64_t)b->n_slots] = (struct send_slot){c->counter, t};
    c->counter++;
    c->unacked++;
    b->n.unacked++;
    b->n.sent++;
    return 0;
}

/* --max keeps each room's window full while the send phase lasts: a slot is
 * taken by a message until it is back at its sender (or refused), so the
 * number of deliveries in flight stays bounded however large the room; an
 * ack alone frees nothing, since it comes back before the fan-out is done.
 * Members take turns sending. */
static void refill(struct bench *b, struct room *r)
{
    long tries = 0;

    while (b->phase == PH_SEND && b->o.max && r->inflight < b->o.window && tries < r->n_members) {
        struct bclient *c = &b->clients[r->members[r->cursor]];

        r->cursor = (r->cursor + 1) % r->n_members;
        if (c->state == CS_JOINED && c->unacked < BENCH_MAX_UNACKED && send_message(c) == 0) {
            c->unechoed++;
            r->inflight++;
            tries = 0;
        } else {
            tries++;
        }
    }
}

static void echo_done(struct bclient *c)
{
    struct room *r = &c->b->rooms[c->room];

    if (c->unechoed > 0) {
        c->unechoed--;
        r->inflight--;
        refill(c->b, r);
    }
}

/* --rate: sends what the schedule says is due, round-robin over clients
 * whose window has room; a message nobody can take now stays due. */
static void pace(struct bench *b, uint64_t t)
{
    uint64_t due = (uint64_t)(b->o.rate * (double)(t - b->t_send) / (double)NS);

    while (b->scheduled < due) {
        long tries;

        for (tries = 0; tries < b->o.clients; tries++) {
            struct bclient *c = &b->clients[b->rr];

            b->rr = (b->rr + 1) % b->o.clients;
            if (can_send(c) && send_message(c) == 0)
                break;
        }
        if (tries == b->o.clients)
            return; /* everybody's window is full: fall behind, catch up later */
        b->scheduled++;
    }
}

/* ---- receiving ---- */

/* Parses "cb1:<run>:<client>:<counter>:<t_ns>:" at the start of a body. */
static bool parse_tag(const struct bench *b, struct bench_str body, uint64_t *client,
                      uint64_t *t_ns)
{
    const char *p = body.p, *end = body.p + body.len;
    size_t rl = strlen(b->run_id);
    uint64_t v = 0;
    int field;

    if (!p || body.len < sizeof(BENCH_TAG) + rl + 1 || memcmp(p, BENCH_TAG ":", 4) != 0)
        return false;
    p += 4;
    if (memcmp(p, b->run_id, rl) != 0 || p[rl] != ':')
        return false;
    p += rl + 1;
    for (field = 0; field < 3; field++) {
        v = 0;
        if (p >= end || *p < '0' || *p > '9')
            return false;
        while (p < end && *p >= '0' && *p <= '9')
            v = v * 10 + (uint64_t)(*p++ - '0');
        if (p >= end || *p++ != ':')
            return false;
        if (field == 0)
            *client = v;
    }
    *t_ns = v;
    return true;
}

static void on_live_message(struct bclient *c, const struct bench_frame *f)
{
    struct bench *b = c->b;
    struct room *r = &b->rooms[c->room];
    uint64_t t = now_ns(), sent_at = 0, sender = UINT64_MAX;
    bool ours = parse_tag(b, f->body, &sender, &sent_at);
    int rv = 0;

    if (!bench_str_is(f->room, r->name) || f->seq < 0) {
        b->n.bad_frames++;
        return;
    }
    if (f->seq <= c->join_seq) {
        b->n.duplicated++; /* the joined reply had it already */
        return;
    }
    if (f->seq > r->base)
        rv = bitmap_set(&c->seen, (uint64_t)(f->seq - r->base - 1));
    if (rv == 1) {
        b->n.duplicated++;
        return;
    }
    if (f->seq < c->max_seq)
        b->n.out_of_order++;
    else
        c->max_seq = f->seq;
    if (!ours) {
        b->n.foreign++;
        return;
    }
    b->n.delivered++;
    if (sender == (uint64_t)c->idx)
        echo_done(c);
    if (b->phase >= PH_SEND && t >= b->t_measure && t <= b->t_send_end)
        b->n.delivered_meas++;
    if (sent_at >= b->t_measure && sent_at <= t) {
        bench_hist_record(&b->lat, t - sent_at);
        if (sender < (uint64_t)b->o.clients)
            bench_hist_record(sender % b->o.n_urls == (uint64_t)c->url ? &b->lat_same
                                                                       : &b->lat_cross,
                              t - sent_at);
    }
}

static void on_ack(struct bclient *c, const struct bench_frame *f)
{
    struct bench *b = c->b;
    struct room *r = &b->rooms[c->room];
    const char *end;
    char *stop;
    uint64_t counter;
    struct send_slot *slot;

    if (f->id.len < 2 || f->id.p[0] != 'm')
        return;
    end = f->id.p + f->id.len;
    counter = strtoull(f->id.p + 1, &stop, 10);
    if (stop != end || c->unacked <= 0) {
        b->n.bad_frames++;
        return;
    }
    c->unacked--;
    b->n.unacked--;
    b->n.acked++;
    slot = &c->slots[counter % (uint64_t)b->n_slots];
    if (slot->counter == counter && slot->t_ns >= b->t_measure)
        bench_hist_record(&b->ack_lat, now_ns() - slot->t_ns);
    if (f->seq > r->base && bitmap_set(&r->acked, (uint64_t)(f->seq - r->base - 1)) == 0)
        b->n.expected_running += (uint64_t)r->n_open;
    else
        b->n.bad_frames++;
}

static void on_error_frame(struct bclient *c, const struct bench_frame *f)
{
    struct bench *b = c->b;

    if (bench_str_is(f->code, "rate_limited"))
        b->n.rate_limited++;
    else
        b->n.other_errors++;
    if (f->id.len >= 2 && f->id.p[0] == 'm' && c->unacked > 0) {
        c->unacked--;
        b->n.unacked--;
        b->n.send_errors++;
        if (b->o.max)
            echo_done(c); /* refused: it will never come back */
    } else if (bench_str_is(f->id, "j") && c->state == CS_JOINING) {
        client_fail(c);
    }
}

/* The join point: the last seq the joined reply's history holds. */
static int64_t joined_seq(const char *data, size_t len)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    json_t *msgs = root ? json_object_get(root, "messages") : NULL;
    int64_t best = 0;
    size_t i;
    json_t *m;

    json_array_foreach(msgs, i, m)
    {
        json_t *seq = json_object_get(m, "seq");

        if (json_is_integer(seq) && json_integer_value(seq) > best)
            best = json_integer_value(seq);
    }
    json_decref(root);
    return best;
}

static void on_message(struct chat_client *cc, bool binary, const char *data, size_t len, void *arg)
{
    struct bclient *c = arg;
    struct bench *b = c->b;
    struct bench_frame f;
    char join[128];

    (void)cc;
    if (binary || bench_scan_frame(data, len, &f) != 0) {
        b->n.bad_frames++;
        return;
    }
    if (bench_str_is(f.type, "message")) {
        if (c->state == CS_JOINED)
            on_live_message(c, &f);
    } else if (bench_str_is(f.type, "ack")) {
        on_ack(c, &f);
    } else if (bench_str_is(f.type, "error")) {
        on_error_frame(c, &f);
    } else if (bench_str_is(f.type, "welcome") && c->state == CS_WELCOME) {
        bench_hist_record(&b->connect_lat, now_ns() - c->t_connect);
        snprintf(join, sizeof(join), "{\"type\":\"join\",\"room\":\"%s\",\"id\":\"j\"}",
                 b->rooms[c->room].name);
        if (chat_client_send_text(c->cc, join, strlen(join)) != 0) {
            client_fail(c);
            return;
        }
        c->state = CS_JOINING;
    } else if (bench_str_is(f.type, "joined") && c->state == CS_JOINING) {
        c->join_seq = joined_seq(data, len);
        c->max_seq = c->join_seq;
        client_settle(c, CS_JOINED);
    } else {
        b->n.events++;
    }
}

/* The first few setup failures are worth a line each; thousands are not. */
static void setup_error(struct bench *b, const struct bclient *c, const char *what, int status)
{
    if (b->n.failed < 3)
        fprintf(stderr, "chat-bench: %s of client %ld failed (HTTP %d)\n", what, c->idx, status);
    else if (b->n.failed == 3)
        fprintf(stderr, "chat-bench: more setup failures not shown\n");
}

static void on_event(struct chat_client *cc, enum chat_client_event ev, int code, void *arg)
{
    struct bclient *c = arg;
    struct bench *b = c->b;

    (void)cc;
    if (ev == CHAT_CLIENT_OPEN) {
        c->state = CS_WELCOME;
        return;
    }
    if (c->state == CS_JOINED) {
        /* After the drain the results are final: a close is just a close. */
        if (b->phase < PH_CLOSE) {
            b->n.disconnected++;
            b->n.unacked -= (uint64_t)c->unacked;
            c->unacked = 0;
            b->rooms[c->room].n_open--;
            b->rooms[c->room].inflight -= c->unechoed;
            c->unechoed = 0;
            c->state = CS_CLOSED;
            refill(b, &b->rooms[c->room]);
        }
        chat_client_free(c->cc);
        c->cc = NULL;
        return;
    }
    setup_error(b, c, ev == CHAT_CLIENT_REFUSED ? "WebSocket upgrade" : "join", code);
    client_fail(c);
}

/* ---- login and connect ---- */

static void connect_ws(struct bclient *c)
{
    struct chat_client_options co = {
        .url = c->b->o.urls[c->url],
        .token = c->token,
        .on_message = on_message,
        .on_event = on_event,
        .arg = c,
    };

    c->state = CS_CONNECT;
    c->t_connect = now_ns();
    c->cc = chat_client_new(c->b->base, &co);
    free(c->token);
    c->token = NULL;
    if (!c->cc)
        client_fail(c);
}

static void send_login(struct bclient *c);

static void on_login_done(struct evhttp_request *req, void *arg)
{
    struct bclient *c = arg;
    struct bench *b = c->b;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
    json_t *root = NULL;
    const char *token;

    if (status == 200 && in) {
        size_t n = evbuffer_get_length(in);

        root = json_loadb((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n, 0, NULL);
    }
    token = json_string_value(json_object_get(root, "token"));
    if (token) {
        bench_hist_record(&b->login_lat, now_ns() - c->t_start);
        c->token = strdup(token);
        json_decref(root);
        if (c->token)
            connect_ws(c);
        else
            client_fail(c);
        return;
    }
    json_decref(root);
    /* A dropped keep-alive connection fails the request queued on it: retry
     * a few times; an HTTP refusal (409, 400, 503) is final. */
    if (status == 0 && ++c->login_tries < 3) {
        send_login(c);
        return;
    }
    b->n.login_failed++;
    setup_error(b, c, "login", status);
    client_fail(c);
}

static void send_login(struct bclient *c)
{
    struct bench *b = c->b;
    struct login_pool *pool = &b->pools[c->url];
    struct evhttp_connection *conn = pool->conns[pool->next];
    struct evhttp_request *req = evhttp_request_new(on_login_done, c);
    json_t *body = json_pack("{s:s}", "nickname", b->nicks[c->idx]);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct evkeyvalq *h;

    pool->next = (pool->next + 1) % BENCH_LOGIN_CONNS;
    json_decref(body);
    if (!req || !text) {
        if (req)
            evhttp_request_free(req);
        free(text);
        client_fail(c);
        return;
    }
    h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", pool->host);
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    free(text);
    c->state = CS_LOGIN;
    c->t_start = now_ns();
    /* On failure evhttp has freed req (and will not call back). */
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, "/api/login") != 0)
        client_fail(c);
}

static void start_client(struct bench *b, struct bclient *c)
{
    b->inflight++;
    c->state = CS_LOGIN;
    send_login(c);
}

/* Starts clients as the ramp allows and moves on once all have settled. */
static void ramp(struct bench *b, uint64_t t)
{
    long allowed = b->o.clients;

    if (b->o.ramp > 0) {
        allowed = (long)(b->o.ramp * (double)(t - b->t0) / (double)NS) + 1;
        if (allowed > b->o.clients)
            allowed = b->o.clients;
    }
    while (b->next_start < allowed && b->inflight < BENCH_MAX_INFLIGHT)
        start_client(b, &b->clients[b->next_start++]);
    if (b->settled == b->o.clients) {
        start_send_phase(b);
        return;
    }
    if (t - b->t_last_setup_progress > BENCH_SETUP_STALL_NS) {
        if (!b->o.json)
            fprintf(stderr, "chat-bench: setup stalled, going on with %" PRIu64 " clients\n",
                    b->n.connected);
        for (long i = 0; i < b->next_start; i++) {
            struct bclient *c = &b->clients[i];

            if (c->state != CS_JOINED && c->state != CS_FAILED && c->state != CS_CLOSED &&
                c->state != CS_LOGIN)
                client_fail(c);
        }
        /* Logins still queued keep pointers to their clients: only stop
         * starting new ones and treat the rest as failed. */
        for (long i = 0; i < b->o.clients; i++)
            if (b->clients[i].state == CS_WAITING)
                client_settle(&b->clients[i], CS_FAILED);
        b->next_start = b->o.clients;
        start_send_phase(b);
    }
}

static void start_send_phase(struct bench *b)
{
    uint64_t t = now_ns();

    /* A room's base is the highest join point of its members, so that every
     * seq acked from now on has a bit in each member's bitmap. */
    for (long r = 0; r < b->o.rooms; r++) {
        struct room *room = &b->rooms[r];

        room->base = 0;
        for (long i = 0; i < room->n_members; i++) {
            struct bclient *c = &b->clients[room->members[i]];

            if (c->state == CS_JOINED && c->join_seq > room->base)
                room->base = c->join_seq;
        }
    }
    b->t_ramp_done = t;
    procs_sample(b, SAMPLE_CONNECTED);
    b->phase = PH_SEND;
    b->t_send = t;
    if (b->n.connected == 0) {
        b->t_measure = b->t_send_end = t;
        start_close(b);
        return;
    }
    b->t_measure = t + (uint64_t)(b->o.warmup * NS);
    b->t_send_end = b->t_measure + (uint64_t)(b->o.duration * NS);
    if (b->o.max)
        for (long r = 0; r < b->o.rooms; r++)
            refill(b, &b->rooms[r]);
}

static void start_drain(struct bench *b)
{
    b->phase = PH_DRAIN;
    b->t_drain_end = now_ns() + (uint64_t)(b->o.drain * NS);
}

static void start_close(struct bench *b)
{
    b->phase = PH_CLOSE;
    b->t_close = now_ns();
    for (long i = 0; i < b->o.clients; i++) {
        struct bclient *c = &b->clients[i];

        if (c->cc && chat_client_is_open(c->cc))
            chat_client_close(c->cc, 1000, "bench done");
    }
}

static bool all_closed(const struct bench *b)
{
    for (long i = 0; i < b->o.clients; i++)
        if (b->clients[i].cc)
            return false;
    return true;
}

static void progress(struct bench *b, uint64_t t)
{
    const char *what = b->phase == PH_RAMP    ? "ramp"
                       : b->phase == PH_SEND  ? (t < b->t_measure ? "warmup" : "run")
                       : b->phase == PH_DRAIN ? "drain"
                                              : "close";

    fprintf(stderr,
            "\r%6.1fs %-6s joined %" PRIu64 "/%ld failed %" PRIu64 "  sent %" PRIu64
            " acked %" PRIu64 " delivered %" PRIu64 " pending %" PRIu64 " dup %" PRIu64 "   ",
            (double)(t - b->t0) / NS, what, b->n.connected, b->o.clients, b->n.failed, b->n.sent,
            b->n.acked, b->n.delivered,
            b->n.expected_running > b->n.delivered ? b->n.expected_running - b->n.delivered : 0,
            b->n.duplicated);
    fflush(stderr);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    uint64_t t = now_ns();

    (void)fd;
    (void)what;
    if (b->interrupted && b->phase < PH_DRAIN) {
        if (b->phase == PH_RAMP)
            b->t_send_end = b->t_measure = t;
        start_drain(b);
    }
    switch (b->phase) {
    case PH_RAMP:
        ramp(b, t);
        break;
    case PH_SEND:
        if (t >= b->t_measure && !b->measure_sampled) {
            b->measure_sampled = true;
            procs_sample(b, SAMPLE_MEASURE_START);
        }
        if (t >= b->t_send_end) {
            procs_sample(b, SAMPLE_MEASURE_END);
            start_drain(b);
            break;
        }
        if (!b->o.max && b->o.rate > 0)
            pace(b, t);
        break;
    case PH_DRAIN:
        if (t >= b->t_drain_end || (b->n.unacked == 0 && b->n.delivered >= b->n.expected_running))
            start_close(b);
        break;
    case PH_CLOSE:
        if (all_closed(b) || t - b->t_close > BENCH_CLOSE_WAIT_NS) {
            b->phase = PH_DONE;
            event_base_loopbreak(b->base);
        }
        break;
    case PH_DONE:
        break;
    }
    if (t - b->t_progress >= NS) {
        b->t_progress = t;
        procs_sample(b, SAMPLE_PEAK);
        if (b->tty)
            progress(b, t);
    }
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;

    (void)fd;
    (void)what;
    if (b->interrupted)
        event_base_loopbreak(b->base);
    b->interrupted = true;
}

/* ---- results ---- */

struct loss {
    uint64_t expected, lost;
};

/* Every acked seq of a room must have reached every member whose join point
 * is below it; a member that disconnected owes only what came before the
 * last seq it saw. */
static struct loss count_loss(const struct bench *b)
{
    struct loss l = {0, 0};

    for (long r = 0; r < b->o.rooms; r++) {
        const struct room *room = &b->rooms[r];

        for (size_t w = 0; w < room->acked.n_words; w++) {
            uint64_t bits = room->acked.words[w];

            while (bits) {
                uint64_t bit = (uint64_t)w * 64 + (uint64_t)__builtin_ctzll(bits);
                int64_t seq = room->base + 1 + (int64_t)bit;

                bits &= bits - 1;
                for (long i = 0; i < room->n_members; i++) {
                    const struct bclient *c = &b->clients[room->members[i]];

                    if ((c->state != CS_JOINED && c->state != CS_CLOSED) || c->join_seq >= seq)
                        continue;
                    if (c->state == CS_CLOSED && seq > c->max_seq)
                        continue;
                    l.expected++;
                    if (!bitmap_get(&c->seen, bit))
                        l.lost++;
                }
            }
        }
    }
    return l;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static json_t *hist_json(const struct bench_hist *h)
{
    return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "count", (json_int_t)h->count, "p50_ms",
                     ms(bench_hist_percentile(h, 50)), "p90_ms", ms(bench_hist_percentile(h, 90)),
                     "p99_ms", ms(bench_hist_percentile(h, 99)), "p99_9_ms",
                     ms(bench_hist_percentile(h, 99.9)), "max_ms", ms(h->count ? h->max : 0),
                     "mean_ms", bench_hist_mean(h) / 1e6, "min_ms", ms(h->count ? h->min : 0));
}

static double cpu_pct(const struct proc_sample *a, const struct proc_sample *z, uint64_t ns)
{
    if (!a->ok || !z->ok || ns == 0)
        return 0;
    return (double)(z->cpu_ticks - a->cpu_ticks) / (double)sysconf(_SC_CLK_TCK) / secs(ns) * 100;
}

static int report(struct bench *b)
{
    struct loss l = count_loss(b);
    uint64_t measured_ns = b->t_send_end > b->t_measure ? b->t_send_end - b->t_measure : 0;
    double deliv_rate = measured_ns ? (double)b->n.delivered_meas / secs(measured_ns) : 0;
    double send_rate =
        b->t_send_end > b->t_send ? (double)b->n.sent / secs(b->t_send_end - b->t_send) : 0;
    struct rusage ru;
    double self_cpu;
    uint64_t rss_start = 0, rss_conn = 0;
    double per_conn_kib = 0;
    int status = 0;
    uint64_t mt = b->machine_total[1] - b->machine_total[0];
    double machine_pct =
        mt ? (double)(b->machine_busy[1] - b->machine_busy[0]) / (double)mt * 100 : 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    getrusage(RUSAGE_SELF, &ru);
    self_cpu = (double)(ru.ru_utime.tv_sec - b->ru_start.ru_utime.tv_sec + ru.ru_stime.tv_sec -
                        b->ru_start.ru_stime.tv_sec) +
               (double)(ru.ru_utime.tv_usec - b->ru_start.ru_utime.tv_usec + ru.ru_stime.tv_usec -
                        b->ru_start.ru_stime.tv_usec) /
                   1e6;
    for (size_t i = 0; i < b->o.n_pids; i++) {
        rss_start += b->procs[i].start.rss_kib;
        rss_conn += b->procs[i].connected.rss_kib;
    }
    if (b->n.connected && rss_conn > rss_start)
        per_conn_kib = (double)(rss_conn - rss_start) / (double)b->n.connected;
    if (l.lost || b->n.duplicated || b->n.out_of_order)
        status = 1;
    else if (b->n.failed || b->n.disconnected || b->interrupted)
        status = 3;

    if (b->o.json) {
        json_t *root = json_object(), *procs = json_array(), *urls = json_array();

        for (size_t i = 0; i < b->o.n_urls; i++)
            json_array_append_new(urls, json_string(b->o.urls[i]));
        for (size_t i = 0; i < b->o.n_pids; i++) {
            const struct proc_watch *w = &b->procs[i];

            json_array_append_new(
                procs, json_pack("{s:i,s:s,s:I,s:I,s:I,s:I,s:f}", "pid", (int)w->pid, "name",
                                 w->comm, "rss_start_kib", (json_int_t)w->start.rss_kib,
                                 "rss_connected_kib", (json_int_t)w->connected.rss_kib,
                                 "rss_end_kib", (json_int_t)w->measure_end.rss_kib, "rss_peak_kib",
                                 (json_int_t)w->rss_peak_kib, "cpu_pct",
                                 cpu_pct(&w->measure_start, &w->measure_end, measured_ns)));
        }
        json_object_set_new(root, "config",
                            json_pack("{s:o,s:I,s:I,s:f,s:b,s:I,s:I,s:f,s:f,s:f}", "urls", urls,
                                      "clients", (json_int_t)b->o.clients, "rooms",
                                      (json_int_t)b->o.rooms, "rate", b->o.rate, "max", b->o.max,
                                      "window", (json_int_t)b->o.window, "size",
                                      (json_int_t)b->o.size, "duration_s", b->o.duration,
                                      "warmup_s", b->o.warmup, "ramp", b->o.ramp));
        json_object_set_new(root, "connected", json_integer((json_int_t)b->n.connected));
        json_object_set_new(root, "failed", json_integer((json_int_t)b->n.failed));
        json_object_set_new(root, "disconnected", json_integer((json_int_t)b->n.disconnected));
        json_object_set_new(root, "setup_s", json_real(secs(b->t_ramp_done - b->t0)));
        json_object_set_new(root, "login", hist_json(&b->login_lat));
        json_object_set_new(root, "connect", hist_json(&b->connect_lat));
        json_object_set_new(root, "sent", json_integer((json_int_t)b->n.sent));
        json_object_set_new(root, "acked", json_integer((json_int_t)b->n.acked));
        json_object_set_new(root, "send_errors", json_integer((json_int_t)b->n.send_errors));
        json_object_set_new(root, "rate_limited", json_integer((json_int_t)b->n.rate_limited));
        json_object_set_new(root, "other_errors", json_integer((json_int_t)b->n.other_errors));
        json_object_set_new(root, "expected", json_integer((json_int_t)l.expected));
        json_object_set_new(root, "delivered", json_integer((json_int_t)b->n.delivered));
        json_object_set_new(root, "lost", json_integer((json_int_t)l.lost));
        json_object_set_new(root, "duplicated", json_integer((json_int_t)b->n.duplicated));
        json_object_set_new(root, "out_of_order", json_integer((json_int_t)b->n.out_of_order));
        json_object_set_new(root, "foreign", json_integer((json_int_t)b->n.foreign));
        json_object_set_new(root, "bad_frames", json_integer((json_int_t)b->n.bad_frames));
        json_object_set_new(root, "events", json_integer((json_int_t)b->n.events));
        json_object_set_new(root, "measured_s", json_real(secs(measured_ns)));
        json_object_set_new(root, "sent_per_s", json_real(send_rate));
        json_object_set_new(root, "delivered_per_s", json_real(deliv_rate));
        json_object_set_new(root, "latency", hist_json(&b->lat));
        json_object_set_new(root, "latency_same_gateway", hist_json(&b->lat_same));
        json_object_set_new(root, "latency_cross_gateway", hist_json(&b->lat_cross));
        json_object_set_new(root, "ack_latency", hist_json(&b->ack_lat));
        json_object_set_new(root, "processes", procs);
        json_object_set_new(root, "memory_per_connection_kib", json_real(per_conn_kib));
        json_object_set_new(root, "bench_cpu_s", json_real(self_cpu));
        json_object_set_new(root, "machine_cpu_busy_pct", json_real(machine_pct));
        json_object_set_new(root, "machine_cpus", json_integer(ncpu));
        json_object_set_new(root, "exit_status", json_integer(status));
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(root);
        return status;
    }

    printf("chat-bench  %ld clients on %zu gateway(s), %ld room(s), ", b->o.clients, b->o.n_urls,
           b->o.rooms);
    if (b->o.max)
        printf("--max (window %ld per room)", b->o.window);
    else
        printf("%.0f msgs/s", b->o.rate);
    printf(", %ld B, warmup %.0f s, duration %.0f s\n", b->o.size, b->o.warmup, b->o.duration);
    printf("connect     %" PRIu64 " joined, %" PRIu64 " failed, %" PRIu64
           " disconnected; setup %.2f s\n",
           b->n.connected, b->n.failed, b->n.disconnected, secs(b->t_ramp_done - b->t0));
    printf("            login p50 %.2f ms p99 %.2f ms; connect+welcome p50 %.2f ms p99 %.2f ms\n",
           ms(bench_hist_percentile(&b->login_lat, 50)),
           ms(bench_hist_percentile(&b->login_lat, 99)),
           ms(bench_hist_percentile(&b->connect_lat, 50)),
           ms(bench_hist_percentile(&b->connect_lat, 99)));
    printf("messages    sent %" PRIu64 " (%.0f/s), acked %" PRIu64 ", errors %" PRIu64
           " (rate_limited %" PRIu64 ")\n",
           b->n.sent, send_rate, b->n.acked, b->n.send_errors + b->n.other_errors,
           b->n.rate_limited);
    printf("deliveries  expected %" PRIu64 ", delivered %" PRIu64 ", lost %" PRIu64
           ", duplicated %" PRIu64 ", out of order %" PRIu64 "\n",
           l.expected, b->n.delivered, l.lost, b->n.duplicated, b->n.out_of_order);
    printf("throughput  %.0f delivered msgs/s over %.1f s measured\n", deliv_rate,
           secs(measured_ns));
    printf("events      %" PRIu64 " other frames received (presence, online, room_created ...)\n",
           b->n.events);
    printf("latency     p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms"
           "  (%" PRIu64 " samples)\n",
           ms(bench_hist_percentile(&b->lat, 50)), ms(bench_hist_percentile(&b->lat, 90)),
           ms(bench_hist_percentile(&b->lat, 99)), ms(bench_hist_percentile(&b->lat, 99.9)),
           ms(b->lat.count ? b->lat.max : 0), b->lat.count);
    if (b->o.n_urls > 1)
        for (int i = 0; i < 2; i++) {
            const struct bench_hist *h = i ? &b->lat_cross : &b->lat_same;

            printf("  %s p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms\n",
                   i ? "cross-gw" : "same-gw ", ms(bench_hist_percentile(h, 50)),
                   ms(bench_hist_percentile(h, 90)), ms(bench_hist_percentile(h, 99)),
                   ms(bench_hist_percentile(h, 99.9)), ms(h->count ? h->max : 0));
        }
    printf("ack         p50 %.2f ms  p99 %.2f ms\n", ms(bench_hist_percentile(&b->ack_lat, 50)),
           ms(bench_hist_percentile(&b->ack_lat, 99)));
    for (size_t i = 0; i < b->o.n_pids; i++) {
        const struct proc_watch *w = &b->procs[i];

        printf("process     %d %-14s rss %.1f -> %.1f MiB (peak %.1f), cpu %.0f %%\n", (int)w->pid,
               w->comm, (double)w->start.rss_kib / 1024, (double)w->connected.rss_kib / 1024,
               (double)w->rss_peak_kib / 1024,
               cpu_pct(&w->measure_start, &w->measure_end, measured_ns));
    }
    if (b->o.n_pids)
        printf("memory      %.1f KiB per connection (rss growth while connecting / joined)\n",
               per_conn_kib);
    printf("bench       %.1f s cpu; machine %.0f %% busy over %ld cpus while measuring\n", self_cpu,
           machine_pct, ncpu);
    printf("result      %s\n", status == 0   ? "OK"
                               : status == 1 ? "FAIL: lost, duplicated or out-of-order deliveries"
                                             : "INCOMPLETE: some clients failed or disconnected");
    return status;
}

/* ---- options ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: chat-bench [options]\n"
            "\n"
            "Logs in N users, connects them over WebSocket to the gateways round-robin,\n"
            "joins client i to room bench-(i %% M), sends timestamped messages and checks\n"
            "every delivery for latency, order, duplicates and loss.\n"
            "\n"
            "  --url URL          gateway WebSocket URL, repeatable or a comma list\n"
            "                     (default ws://127.0.0.1:8080/ws)\n"
            "  --clients N        simulated users (default 100)\n"
            "  --rooms M          rooms bench-0..bench-(M-1) (default 10)\n"
            "  --rate R           messages per second in total (default 100; 0: idle)\n"
            "  --max              send as fast as the cluster delivers, instead of --rate:\n"
            "                     each room keeps a window of messages in flight (sent and\n"
            "                     not yet back at their sender), its members taking turns\n"
            "  --window W         with --max, messages in flight per room (default 16);\n"
            "                     with --rate, unacked messages per client (default 64)\n"
            "  --size B           message body bytes (default 100, 64-4000)\n"
            "  --duration S       measured seconds (default 10)\n"
            "  --warmup S         seconds of sending before measuring (default 2)\n"
            "  --ramp R           connects per second, 0 for as fast as possible (default 0)\n"
            "  --drain S          after sending, wait at most S seconds for deliveries "
            "(default 5)\n"
            "  --pids LIST        comma list of gateway (or redis) PIDs: RSS and CPU from /proc\n"
            "  --nick-prefix P    nicknames are P<i> (default bench-<random>-)\n"
            "  --json             print the results as JSON on stdout\n"
            "  --help             this text\n"
            "\n"
            "The gateways must allow the rate: start them with e.g. --rate 1000000/1000000.\n"
            "Exit status: 0 all delivered, 1 loss, duplicates or misordering, 2 bad usage,\n"
            "3 some clients failed to connect or disconnected.\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool add_list(const char *arg, char ***items, size_t *n)
{
    char *copy = strdup(arg), *save = NULL, *tok;
    bool ok = copy != NULL;

    for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && ok;
         tok = strtok_r(NULL, ",", &save)) {
        char **grown = realloc(*items, (*n + 1) * sizeof(**items));

        ok = grown != NULL;
        if (ok) {
            *items = grown;
            (*items)[*n] = strdup(tok);
            ok = (*items)[*n] != NULL;
            if (ok)
                (*n)++;
        }
    }
    free(copy);
    return ok;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    double v;

    if (!parse_num(s, (double)lo, (double)hi, &v) || v != (double)(long)v)
        return false;
    *out = (long)v;
    return true;
}

/* 0, 1 for --help, -1 for bad usage (reason printed). */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},    {"clients", required_argument, NULL, 'c'},
        {"rooms", required_argument, NULL, 'r'},  {"rate", required_argument, NULL, 'R'},
        {"max", no_argument, NULL, 'M'},          {"window", required_argument, NULL, 'w'},
        {"size", required_argument, NULL, 's'},   {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'W'}, {"ramp", required_argument, NULL, 'p'},
        {"drain", required_argument, NULL, 'D'},  {"pids", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'j'},         {"nick-prefix", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    char **pid_strs = NULL;
    size_t n_pid_strs = 0;
    double v;
    int opt, li = 0, rv = 0;

    while ((opt = getopt_long(argc, argv, "h", longs, &li)) != -1) {
        bool ok = true;

        switch (opt) {
        case 'u':
            ok = add_list(optarg, &o->urls, &o->n_urls);
            break;
        case 'c':
            ok = parse_long(optarg, 1, 10000000, &o->clients);
            break;
        case 'r':
            ok = parse_long(optarg, 1, 100000, &o->rooms);
            break;
        case 'R':
            ok = parse_num(optarg, 0, 1e9, &o->rate);
            break;
        case 'M':
            o->max = true;
            break;
        case 'w':
            ok = parse_long(optarg, 1, 100000, &o->window);
            break;
        case 's':
            ok = parse_long(optarg, 64, 4000, &o->size);
            break;
        case 'd':
            ok = parse_num(optarg, 0, 86400, &o->duration);
            break;
        case 'W':
            ok = parse_num(optarg, 0, 86400, &o->warmup);
            break;
        case 'p':
            ok = parse_num(optarg, 0, 1e9, &o->ramp);
            break;
        case 'D':
            ok = parse_num(optarg, 0, 3600, &o->drain);
            break;
        case 'P':
            ok = add_list(optarg, &pid_strs, &n_pid_strs);
            break;
        case 'j':
            o->json = true;
            break;
        case 'n':
            o->nick_prefix = optarg;
            break;
        case 'h':
            rv = 1;
            goto out;
        default:
            rv = -1;
            goto out;
        }
        if (!ok) {
            fprintf(stderr, "chat-bench: bad value for --%s: %s\n", longs[li].name, optarg);
            rv = -1;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chat-bench: unexpected argument %s\n", argv[optind]);
        rv = -1;
        goto out;
    }
    if (!o->urls && !add_list("ws://127.0.0.1:8080/ws", &o->urls, &o->n_urls)) {
        rv = -1;
        goto out;
    }
    for (size_t i = 0; i < o->n_urls; i++) {
        if (strncmp(o->urls[i], "ws://", 5) != 0) {
            fprintf(stderr, "chat-bench: only ws:// URLs: %s\n", o->urls[i]);
            rv = -1;
            goto out;
        }
    }
    if (o->window == 0)
        o->window = o->max ? 16 : BENCH_MAX_UNACKED;
    if (o->rooms > o->clients)
        o->rooms = o->clients;
    if (o->nick_prefix && strlen(o->nick_prefix) + 8 > 32) {
        fprintf(stderr, "chat-bench: --nick-prefix too long (nicknames are at most 32)\n");
        rv = -1;
        goto out;
    }
    o->pids = calloc(n_pid_strs ? n_pid_strs : 1, sizeof(*o->pids));
    for (size_t i = 0; o->pids && i < n_pid_strs; i++) {
        if (!parse_num(pid_strs[i], 1, 4194304, &v)) {
            fprintf(stderr, "chat-bench: bad pid %s\n", pid_strs[i]);
            rv = -1;
            goto out;
        }
        o->pids[o->n_pids++] = (pid_t)v;
    }
out:
    for (size_t i = 0; i < n_pid_strs; i++)
        free(pid_strs[i]);
    free(pid_strs);
    return rv;
}

/* ---- setup and teardown ---- */

static void raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* host:port of a ws:// URL, for the login connections and the Host header. */
static int url_host_port(const char *url, char *host, size_t host_len, unsigned short *port)
{
    const char *p = url + 5, *end = p + strcspn(p, "/?#"), *colon;
    size_t hl;
    long v = 80;

    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));

        if (!close)
            return -1;
        hl = (size_t)(close - p - 1);
        if (hl >= host_len)
            return -1;
        memcpy(host, p + 1, hl);
        colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        hl = (size_t)((colon ? colon : end) - p);
        if (hl == 0 || hl >= host_len)
            return -1;
        memcpy(host, p, hl);
    }
    host[hl] = '\0';
    if (colon) {
        char *stop;

        v = strtol(colon + 1, &stop, 10);
        if (stop != end || v < 1 || v > 65535)
            return -1;
    }
    *port = (unsigned short)v;
    return 0;
}

static int setup(struct bench *b)
{
    unsigned char rnd[3];
    long per_room;

    evutil_secure_rng_get_bytes(rnd, sizeof(rnd));
    snprintf(b->run_id, sizeof(b->run_id), "%02x%02x%02x", rnd[0], rnd[1], rnd[2]);
    b->base = event_base_new();
    b->clients = calloc((size_t)b->o.clients, sizeof(*b->clients));
    b->rooms = calloc((size_t)b->o.rooms, sizeof(*b->rooms));
    b->pools = calloc(b->o.n_urls, sizeof(*b->pools));
    b->procs = calloc(b->o.n_pids ? b->o.n_pids : 1, sizeof(*b->procs));
    b->nicks = calloc((size_t)b->o.clients, sizeof(*b->nicks));
    if (!b->base || !b->clients || !b->rooms || !b->pools || !b->procs || !b->nicks)
        return -1;
    per_room = (b->o.clients + b->o.rooms - 1) / b->o.rooms;
    b->n_slots = b->o.max ? BENCH_MAX_UNACKED : b->o.window;
    for (long r = 0; r < b->o.rooms; r++) {
        snprintf(b->rooms[r].name, sizeof(b->rooms[r].name), "bench-%ld", r);
        b->rooms[r].members = calloc((size_t)per_room, sizeof(long));
        if (!b->rooms[r].members)
            return -1;
    }
    for (size_t u = 0; u < b->o.n_urls; u++) {
        struct login_pool *pool = &b->pools[u];
        unsigned short port;
        char host[256];

        if (url_host_port(b->o.urls[u], host, sizeof(host), &port) != 0) {
            fprintf(stderr, "chat-bench: bad URL %s\n", b->o.urls[u]);
            return -1;
        }
        snprintf(pool->host, sizeof(pool->host), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 port);
        for (int i = 0; i < BENCH_LOGIN_CONNS; i++) {
            pool->conns[i] = evhttp_connection_base_new(b->base, NULL, host, port);
            if (!pool->conns[i])
                return -1;
            evhttp_connection_set_timeout(pool->conns[i], 10);
        }
    }
    for (long i = 0; i < b->o.clients; i++) {
        struct bclient *c = &b->clients[i];
        struct room *r = &b->rooms[i % b->o.rooms];
        char nick[64];

        c->b = b;
        c->idx = i;
        c->room = (int)(i % b->o.rooms);
        c->url = (int)(i % (long)b->o.n_urls);
        c->slots = calloc((size_t)b->n_slots, sizeof(*c->slots));
        if (b->o.nick_prefix)
            snprintf(nick, sizeof(nick), "%s%ld", b->o.nick_prefix, i);
        else /* nicknames are unique among online users: a fresh prefix per run */
            snprintf(nick, sizeof(nick), "bench-%s-%ld", b->run_id, i);
        b->nicks[i] = strdup(nick);
        if (!c->slots || !b->nicks[i])
            return -1;
        r->members[r->n_members++] = i;
    }
    for (size_t i = 0; i < b->o.n_pids; i++) {
        char path[64];
        FILE *f;

        b->procs[i].pid = b->o.pids[i];
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)b->o.pids[i]);
        f = fopen(path, "r");
        if (!f) {
            fprintf(stderr, "chat-bench: no process %d\n", (int)b->o.pids[i]);
            return -1;
        }
        if (!fgets(b->procs[i].comm, sizeof(b->procs[i].comm), f))
            b->procs[i].comm[0] = '\0';
        b->procs[i].comm[strcspn(b->procs[i].comm, "\n")] = '\0';
        fclose(f);
    }
    bench_hist_init(&b->lat);
    bench_hist_init(&b->lat_same);
    bench_hist_init(&b->lat_cross);
    bench_hist_init(&b->ack_lat);
    bench_hist_init(&b->login_lat);
    bench_hist_init(&b->connect_lat);
    b->tick = event_new(b->base, -1, EV_PERSIST, on_tick, b);
    b->sigint = evsignal_new(b->base, SIGINT, on_sigint, b);
    if (!b->tick || !b->sigint)
        return -1;
    return 0;
}

static void teardown(struct bench *b)
{
    /* Freeing the connections cancels queued logins without calling back. */
    for (size_t u = 0; b->pools && u < b->o.n_urls; u++)
        for (int i = 0; i < BENCH_LOGIN_CONNS; i++)
            if (b->pools[u].conns[i])
                evhttp_connection_free(b->pools[u].conns[i]);
    if (b->clients) {
        for (long i = 0; i < b->o.clients; i++) {
            chat_client_free(b->clients[i].cc);
            free(b->clients[i].token);
            free(b->clients[i].seen.words);
            free(b->clients[i].slots);
        }
    }
    for (long r = 0; b->rooms && r < b->o.rooms; r++) {
        free(b->rooms[r].members);
        free(b->rooms[r].acked.words);
    }
    for (long i = 0; b->nicks && i < b->o.clients; i++)
        free(b->nicks[i]);
    if (b->tick)
        event_free(b->tick);
    if (b->sigint)
        event_free(b->sigint);
    if (b->base)
        event_base_free(b->base);
    free(b->clients);
    free(b->rooms);
    free(b->pools);
    free(b->procs);
    free(b->nicks);
    for (size_t i = 0; i < b->o.n_urls; i++)
        free(b->o.urls[i]);
    free(b->o.urls);
    free(b->o.pids);
}

int main(int argc, char **argv)
{
    struct bench b = {
        .o = {.clients = 100,
              .rooms = 10,
              .rate = 100,
              .size = 100,
              .duration = 10,
              .warmup = 2,
              .drain = 5},
    };
    struct timeval tick = {0, BENCH_TICK_US};
    int status = 2, rv;

    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    rv = parse_args(argc, argv, &b.o);
    if (rv != 0) {
        if (rv > 0)
            usage(stdout);
        else
            fprintf(stderr, "Try chat-bench --help\n");
        status = rv > 0 ? 0 : 2;
        goto out;
    }
    if (setup(&b) != 0) {
        fprintf(stderr, "chat-bench: setup failed\n");
        goto out;
    }
    b.tty = isatty(STDERR_FILENO);
    getrusage(RUSAGE_SELF, &b.ru_start);
    procs_sample(&b, SAMPLE_START);
    b.t0 = b.t_progress = b.t_last_setup_progress = now_ns();
    event_add(b.tick, &tick);
    event_add(b.sigint, NULL);
    event_base_dispatch(b.base);
    if (b.tty)
        fputc('\n', stderr);
    status = report(&b);
out:
    teardown(&b);
    return status;
}
