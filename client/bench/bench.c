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
#include "bench_internal.h"
#include "chat_client.h"
#include "scan.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

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
    b->t_last_setup_progress = bench_now_ns();
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
    uint64_t t = bench_now_ns();
    char head[256];
    char *frame;
    int hn, rv;
    size_t body_len, tag_len;

    bool image = b->o.body == BENCH_BODY_IMAGE;
    char sep = image ? '/' : ':';

    tag_len = (size_t)snprintf(head, sizeof(head), "%s%s%c%s%c%ld%c%" PRIu64 "%c%" PRIu64 "%c",
                               image ? BENCH_IMAGE_HEAD : "", BENCH_TAG, sep, b->run_id, sep,
                               c->idx, sep, c->counter, sep, t, sep);
    body_len = (size_t)b->o.size > tag_len ? (size_t)b->o.size : tag_len;
    frame = malloc(body_len + 256);
    if (!frame)
        return -1;
    hn = snprintf(frame, 256,
                  "{\"type\":\"message\",\"room\":\"%s\",\"kind\":\"%s\",\"id\":\"m%" PRIu64
                  "\",\"body\":\"%s",
                  b->rooms[c->room].name, image ? "image" : "text", c->counter, head);
    bench_fill_body(b->o.body, c->counter * 7919u + (uint64_t)c->idx, frame + hn,
                    body_len - tag_len);
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

/* Parses "cb1:<run>:<client>:<counter>:<t_ns>:" at the start of a body, or
 * the same with '/' for ':' after the data URL head of an image body. */
static bool parse_tag(const struct bench *b, struct bench_str body, uint64_t *client,
                      uint64_t *t_ns)
{
    const char *p = body.p, *end = body.p + body.len;
    size_t rl = strlen(b->run_id), il = strlen(BENCH_IMAGE_HEAD);
    uint64_t v = 0;
    int field;
    char sep = ':';

    if (p && body.len > il && memcmp(p, BENCH_IMAGE_HEAD, il) == 0) {
        p += il;
        sep = '/';
    }
    if (!p || (size_t)(end - p) < sizeof(BENCH_TAG) + rl + 1 ||
        memcmp(p, BENCH_TAG, sizeof(BENCH_TAG) - 1) != 0 || p[3] != sep)
        return false;
    p += 4;
    if (memcmp(p, b->run_id, rl) != 0 || p[rl] != sep)
        return false;
    p += rl + 1;
    for (field = 0; field < 3; field++) {
        v = 0;
        if (p >= end || *p < '0' || *p > '9')
            return false;
        while (p < end && *p >= '0' && *p <= '9')
            v = v * 10 + (uint64_t)(*p++ - '0');
        if (p >= end || *p++ != sep)
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
    uint64_t t = bench_now_ns(), sent_at = 0, sender = UINT64_MAX;
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
        bench_hist_record(&b->ack_lat, bench_now_ns() - slot->t_ns);
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
    /* A refused message frees its slots.  Gateways that answer a rate-limited
     * frame without its id leave only the order to go by: once joined, a
     * client sends nothing but messages. */
    if (c->unacked > 0 &&
        ((f->id.len >= 2 && f->id.p[0] == 'm') ||
         (!f->id.p && c->state == CS_JOINED && bench_str_is(f->code, "rate_limited")))) {
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
        bench_hist_record(&b->connect_lat, bench_now_ns() - c->t_connect);
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
        .presence_batch = c->b->o.presence_batch,
        .deflate = c->b->o.deflate,
        .on_message = on_message,
        .on_event = on_event,
        .arg = c,
    };

    c->state = CS_CONNECT;
    c->t_connect = bench_now_ns();
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
        bench_hist_record(&b->login_lat, bench_now_ns() - c->t_start);
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
    c->t_start = bench_now_ns();
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
    uint64_t t = bench_now_ns();

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
    bench_procs_sample(b, BENCH_SAMPLE_CONNECTED);
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
    b->t_drain_end = bench_now_ns() + (uint64_t)(b->o.drain * NS);
}

static void start_close(struct bench *b)
{
    b->phase = PH_CLOSE;
    b->t_close = bench_now_ns();
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

/* What the clients' sockets carried so far (slot 0: measure start, 1: end). */
static void wire_sample(struct bench *b, int slot)
{
    b->wire_in[slot] = b->wire_out[slot] = 0;
    b->deflate_clients = 0;
    for (long i = 0; i < b->o.clients; i++) {
        uint64_t in, out;

        chat_client_wire_bytes(b->clients[i].cc, &in, &out);
        b->wire_in[slot] += in;
        b->wire_out[slot] += out;
        b->deflate_clients += chat_client_deflate(b->clients[i].cc);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct bench *b = arg;
    uint64_t t = bench_now_ns();

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
            bench_procs_sample(b, BENCH_SAMPLE_MEASURE_START);
            wire_sample(b, 0);
        }
        if (t >= b->t_send_end) {
            bench_procs_sample(b, BENCH_SAMPLE_MEASURE_END);
            wire_sample(b, 1);
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
        bench_procs_sample(b, BENCH_SAMPLE_PEAK);
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
        b->procs[i].pid = b->o.pids[i];
        if (bench_proc_name(b->o.pids[i], b->procs[i].comm, sizeof(b->procs[i].comm)) != 0) {
            fprintf(stderr, "chat-bench: no process %d\n", (int)b->o.pids[i]);
            return -1;
        }
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
    bench_options_free(&b->o);
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
    rv = bench_options_parse(argc, argv, &b.o);
    if (rv != 0) {
        if (rv > 0)
            bench_options_usage(stdout);
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
    bench_procs_sample(&b, BENCH_SAMPLE_START);
    b.t0 = b.t_progress = b.t_last_setup_progress = bench_now_ns();
    event_add(b.tick, &tick);
    event_add(b.sigint, NULL);
    event_base_dispatch(b.base);
    if (b.tty)
        fputc('\n', stderr);
    status = bench_report(&b);
out:
    teardown(&b);
    return status;
}

/* A body of n characters after the tag: 'x's (the historical default,
 * which compresses far better than anything real), words drawn from a
 * small chat vocabulary, or base64 of random bytes (an image: PNG and JPEG
 * are compressed already).  Deterministic in seed. */
void bench_fill_body(enum bench_body kind, uint64_t seed, char *out, size_t n)
{
    static const char *const words[] = {
        "the",     "a",     "to",    "and",    "I",      "you",     "it",     "is",
        "that",    "for",   "on",    "we",     "have",   "this",    "with",   "be",
        "not",     "are",   "just",  "but",    "can",    "what",    "so",     "do",
        "deploy",  "build", "test",  "fixed",  "merged", "review",  "coffee", "lunch",
        "meeting", "today", "later", "thanks", "lol",    "ok",      "sure",   "why",
        "server",  "redis", "cache", "bug",    "ticket", "release", "Friday", "prod",
        "weekend", "?",     "!",     "👍",      "nice",   "agreed",  "maybe",  "tomorrow",
        "please",  "check", "link",  "docs",   "branch", "rebase",  "CI",     "green",
    };
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    size_t i = 0;

    if (kind == BENCH_BODY_X) {
        memset(out, 'x', n);
        return;
    }
    while (i < n) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (kind == BENCH_BODY_IMAGE) {
            out[i++] = b64[x & 63];
            continue;
        }
        const char *w = words[x % (sizeof(words) / sizeof(words[0]))];
        size_t wl = strlen(w);
        if (i + wl + 1 > n) {
            memset(out + i, '.', n - i); /* no word split mid-character */
            break;
        }
        memcpy(out + i, w, wl);
        i += wl;
        out[i++] = ' ';
    }
}
