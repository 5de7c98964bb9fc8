#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "config.h"
#include "conn.h"
#include "frame.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "penalty.h"
#include "presence.h"
#include "protocol.h"
#include "ratelimit.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "token.h"
#include "ws.h"

/* Requests waiting behind a slow one; the rate limit keeps this far lower.
 * In bytes, at most this much (or one --max-message frame, if larger). */
#define GW_INBOX_MAX 256
#define GW_INBOX_MAX_BYTES (4u * 1024 * 1024)

struct inbox_entry {
    STAILQ_ENTRY(inbox_entry) link;
    size_t len;
    char *data; /* inline_data, or a buffer taken over from the WebSocket */
    char inline_data[];
};

static struct inbox_entry *entry_copy(const char *data, size_t len)
{
    struct inbox_entry *e = malloc(sizeof(*e) + len);
    if (!e)
        return NULL;
    e->len = len;
    e->data = e->inline_data;
    memcpy(e->data, data, len);
    return e;
}

/* Takes data (malloc'd): a large request is not copied again. */
static struct inbox_entry *entry_take(char *data, size_t len)
{
    struct inbox_entry *e = malloc(sizeof(*e));
    if (!e) {
        free(data);
        return NULL;
    }
    e->len = len;
    e->data = data;
    return e;
}

static void entry_free(struct inbox_entry *e)
{
    if (e->data != e->inline_data)
        free(e->data);
    free(e);
}

struct gw_session {
    /* What gw_session_deliver reads, in the first cache line: a fan-out
     * reads it once per recipient. */
    struct gw_ctx *ctx;
    struct gw_ws *ws; /* NULL once the socket is gone */
    struct gw_client *client;
    bool closed;   /* the socket is gone or going: send nothing, answer nothing */
    bool welcomed; /* live traffic flows only after `welcome` */
    struct chat_identity who;
    gw_session_dispatch_cb dispatch;
    uint64_t id;
    int refs;
    bool first_of_user;       /* the user's first session on this node */
    bool presence_batch;      /* asked for presence_batch (/ws?presence=batch) */
    int64_t request_start_us; /* when the request being dispatched arrived */
    bool request_measured;    /* its latency was recorded (by gw_op_done) */
    json_t *welcome;          /* built, waiting for the read markers */
    struct gw_rate rate;
    /* one request at a time, the rest wait here */
    bool busy;
    STAILQ_HEAD(, inbox_entry) inbox;
    STAILQ_HEAD(, inbox_entry) prewelcome; /* user-channel traffic before `welcome` */
    size_t prewelcome_bytes;
    size_t inbox_len;
    size_t inbox_bytes;
    /* A request whose answer may be large, waiting for room in its
     * address's unread answers (conn.h); retried every GW_ROOM_RETRY_MS. */
    struct chat_request deferred;
    bool has_deferred;
    bool retrying;
    struct event *retry; /* made at the first wait */
    bool holding;        /* the request being answered promised its bytes */
    uint64_t held_mark;  /* the output's mark when it began */
};

#define GW_ROOM_RETRY_MS 50

static void process_inbox(struct gw_session *s);
static void end_holding(struct gw_session *s);

/* ---- references and teardown ---- */

static void session_hold(struct gw_session *s)
{
    s->refs++;
}

static void session_release(struct gw_session *s)
{
    if (--s->refs > 0)
        return;
    while (!STAILQ_EMPTY(&s->inbox)) {
        struct inbox_entry *e = STAILQ_FIRST(&s->inbox);
        STAILQ_REMOVE_HEAD(&s->inbox, link);
        entry_free(e);
    }
    /* Held for a welcome that never came (closed during setup). */
    while (!STAILQ_EMPTY(&s->prewelcome)) {
        struct inbox_entry *e = STAILQ_FIRST(&s->prewelcome);
        STAILQ_REMOVE_HEAD(&s->prewelcome, link);
        entry_free(e);
    }
    json_decref(s->welcome);
    if (s->has_deferred)
        chat_request_deinit(&s->deferred);
    if (s->retry)
        event_free(s->retry);
    chat_identity_deinit(&s->who);
    free(s);
}

struct gw_ctx *gw_session_ctx(const struct gw_session *s)
{
    return s->ctx;
}

const struct chat_identity *gw_session_who(const struct gw_session *s)
{
    return &s->who;
}

struct gw_client *gw_session_client(const struct gw_session *s)
{
    return s->client;
}

bool gw_session_closed(const struct gw_session *s)
{
    return s->closed;
}

/* ---- operations ---- */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct gw_op *gw_op_new(struct gw_session *s, struct chat_request *req, size_t size)
{
    struct gw_op *op = calloc(1, size < sizeof(*op) ? sizeof(*op) : size);
    if (!op) {
        gw_session_send_error(s, req->id, CHAT_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    op->s = s;
    op->req = *req;
    op->start_us = s->request_start_us;
    memset(req, 0, sizeof(*req));
    session_hold(s);
    s->busy = true;
    return op;
}

void gw_op_done(struct gw_op *op)
{
    struct gw_session *s = op->s;
    gw_metrics_request(s->ctx->metrics, chat_request_type_name(op->req.type),
                       mono_us() - op->start_us);
    s->request_measured = true;
    if (op->cleanup)
        op->cleanup(op);
    chat_request_deinit(&op->req);
    free(op);
    end_holding(s);
    s->busy = false;
    if (!s->closed)
        process_inbox(s);
    session_release(s);
}

void gw_op_error(struct gw_op *op, enum chat_err code, const char *message)
{
    if (!op->s->closed)
        gw_session_send_error(op->s, op->req.id, code, message);
    gw_op_done(op);
}

bool gw_op_finished(struct gw_op *op, const struct redisReply *reply)
{
    if (op->s->closed) {
        gw_op_done(op);
        return true;
    }
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return false;
    gw_op_error(op, reply ? CHAT_ERR_INTERNAL : CHAT_ERR_UNAVAILABLE,
                reply ? "storage error" : "redis unavailable");
    return true;
}

/* ---- replies ---- */

void gw_session_send_text(struct gw_session *s, const char *data, size_t len)
{
    if (s->closed || !s->ws)
        return;
    gw_ws_send_text(s->ws, data, len);
}

void gw_session_send_json(struct gw_session *s, json_t *obj)
{
    if (!obj)
        return;
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text)
        gw_session_send_text(s, text, strlen(text));
    free(text);
    json_decref(obj);
}

json_t *gw_reply_new(const char *type, const char *id)
{
    json_t *obj = json_pack("{s:s}", "type", type);
    if (obj && id)
        json_object_set_new(obj, "id", json_string(id));
    return obj;
}

void gw_session_send_error(struct gw_session *s, const char *id, enum chat_err code,
                           const char *message)
{
    gw_metrics_add(s->ctx->metrics, GW_M_ERRORS, 1);
    json_t *obj = gw_reply_new("error", id && *id ? id : NULL);
    json_object_set_new(obj, "code", json_string(chat_err_code(code)));
    json_object_set_new(obj, "message", json_string(message));
    gw_session_send_json(s, obj);
}

void gw_session_send_with_messages(struct gw_session *s, json_t *obj, struct evbuffer *raw)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return;
    struct evbuffer *out = evbuffer_new();
    size_t tlen = strlen(text);
    if (out && tlen > 1) {
        evbuffer_add(out, text, tlen - 1); /* drop the closing brace */
        evbuffer_add_printf(out, ",\"messages\":[");
        if (raw)
            evbuffer_add_buffer(out, raw);
        evbuffer_add(out, "]}", 2);
        size_t len = evbuffer_get_length(out);
        gw_session_send_text(s, (const char *)evbuffer_pullup(out, -1), len);
    }
    if (out)
        evbuffer_free(out);
    free(text);
}

void gw_append_raw(struct evbuffer *buf, const char *json, size_t len)
{
    if (evbuffer_get_length(buf) > 0)
        evbuffer_add(buf, ",", 1);
    evbuffer_add(buf, json, len);
}

/* Traffic on the user's channel can reach a session between its attach to
 * the router and its `welcome` (another tab of the user keeps the channel
 * subscribed, so no repair runs for this one): it waits here, bounded, and
 * follows the welcome. */
#define GW_PREWELCOME_MAX_BYTES (1024u * 1024)

void gw_session_deliver(void *owner, const struct gw_frame *f)
{
    struct gw_session *s = owner;
    if (s->closed || !s->ws)
        return;
    if (s->welcomed) {
        gw_ws_send_frame(s->ws, f);
        return;
    }
    if (s->prewelcome_bytes + f->len > GW_PREWELCOME_MAX_BYTES) {
        chat_log(CHAT_LOG_WARN, "prewelcome_overflow session=%llu", (unsigned long long)s->id);
        return;
    }
    struct inbox_entry *e = entry_copy(f->payload, f->len);
    if (!e)
        return;
    STAILQ_INSERT_TAIL(&s->prewelcome, e, link);
    s->prewelcome_bytes += f->len;
}

void gw_session_close(void *owner, uint16_t code, const char *reason)
{
    struct gw_session *s = owner;
    if (!s->closed && s->ws)
        gw_ws_close(s->ws, code, reason);
}

static void flush_prewelcome(struct gw_session *s)
{
    while (!STAILQ_EMPTY(&s->prewelcome)) {
        struct inbox_entry *e = STAILQ_FIRST(&s->prewelcome);
        STAILQ_REMOVE_HEAD(&s->prewelcome, link);
        gw_session_send_text(s, e->data, e->len);
        entry_free(e);
    }
    s->prewelcome_bytes = 0;
}

/* ---- welcome ---- */

/* The read markers of every conversation go with the welcome, so that
 * unread counts are the same on every device from the first frame. */
static void on_welcome_marks(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_session *s = arg;
    json_t *w = s->welcome;
    s->welcome = NULL;
    if (s->closed) {
        json_decref(w);
        session_release(s);
        return;
    }
    json_t *marks = gw_store_read_marks_json(reply);
    if (!marks) {
        json_decref(w);
        gw_session_send_error(s, NULL, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        gw_ws_close(s->ws, 1011, "redis unavailable");
        session_release(s);
        return;
    }
    json_object_set_new(w, "last_read", marks);
    gw_session_send_json(s, w);
    s->welcomed = true;
    flush_prewelcome(s);
    s->busy = false;
    process_inbox(s);
    session_release(s);
}

static void on_welcome_rooms(void *arg, json_t *rooms, bool more)
{
    struct gw_session *s = arg;
    if (s->closed) {
        json_decref(rooms);
        session_release(s);
        return;
    }
    if (!rooms) {
        /* Without Redis there is nothing to offer: say so and let the client retry. */
        gw_session_send_error(s, NULL, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        gw_ws_close(s->ws, 1011, "redis unavailable");
        session_release(s);
        return;
    }
    json_t *w = json_pack("{s:s, s:o, s:s, s:o, s:i}", "type", "welcome", "user",
                          gw_user_json(&s->who), "node", s->ctx->cfg->node_id, "rooms", rooms,
                          "history_max", s->ctx->cfg->history);
    if (more)
        json_object_set_new(w, "rooms_more", json_true());
    s->welcome = w;
    gw_store_read_marks(s->ctx->store, s->who.id, on_welcome_marks, s);
}

/* ---- requests ---- */

/* Answers that may carry megabytes: pages of messages, which may be images. */
static bool answers_large(enum chat_req_type type)
{
    return type == CHAT_REQ_JOIN || type == CHAT_REQ_HISTORY || type == CHAT_REQ_SEARCH;
}

static void on_retry(evutil_socket_t fd, short what, void *arg);
static void dispatch_parsed(struct gw_session *s, int parse_rc, struct chat_request *req,
                            const struct chat_parse_error *perr);

/* Keeps req until its address has room for the answer.  The session is
 * busy meanwhile, so the requests after it wait behind it, in order. */
static void defer_request(struct gw_session *s, struct chat_request *req)
{
    if (!s->retry && !(s->retry = evtimer_new(s->ctx->base, on_retry, s))) {
        gw_session_send_error(s, req->id, CHAT_ERR_INTERNAL, "out of memory");
        chat_request_deinit(req);
        return;
    }
    if (!s->retrying) {
        gw_metrics_add(s->ctx->metrics, GW_M_ANSWERS_WAITED, 1);
        chat_log(CHAT_LOG_DEBUG, "answer_waits session=%llu peer=%s", (unsigned long long)s->id,
                 gw_conn_peer(gw_ws_conn(s->ws)));
    }
    s->deferred = *req;
    memset(req, 0, sizeof(*req));
    s->has_deferred = true;
    s->busy = true;
    session_hold(s);
    struct timeval tv = {0, GW_ROOM_RETRY_MS * 1000};
    evtimer_add(s->retry, &tv);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_session *s = arg;
    struct chat_request req = s->deferred;
    memset(&s->deferred, 0, sizeof(s->deferred));
    s->has_deferred = false;
    s->busy = false;
    if (s->closed) {
        chat_request_deinit(&req);
    } else {
        s->retrying = true;
        dispatch_parsed(s, 0, &req, NULL); /* may wait again */
        s->retrying = false;
        if (!s->busy)
            process_inbox(s);
    }
    session_release(s);
}

/* The answer is out: what it queued counts for its address until the
 * kernel has taken it, instead of the promise. */
static void end_holding(struct gw_session *s)
{
    if (!s->holding)
        return;
    s->holding = false;
    if (!s->ws)
        return; /* the connection's share went with it */
    struct gw_conn *c = gw_ws_conn(s->ws);
    gw_conn_hold_output_since(c, s->held_mark);
    gw_conn_promise_output(c, 0);
}

static void dispatch_parsed(struct gw_session *s, int parse_rc, struct chat_request *req,
                            const struct chat_parse_error *perr)
{
    if (parse_rc != 0) {
        gw_session_send_error(s, perr->id[0] ? perr->id : NULL, perr->code, perr->message);
        return;
    }
    enum chat_req_type type = req->type;
    if (answers_large(type) && s->ws) {
        struct gw_conn *c = gw_ws_conn(s->ws);
        if (!gw_conn_output_room(c, GW_REPLY_MESSAGES_MAX)) {
            defer_request(s, req);
            return;
        }
        s->held_mark = gw_conn_output_mark(c);
        gw_conn_promise_output(c, GW_REPLY_MESSAGES_MAX);
        s->holding = true;
    }
    s->request_measured = false;
    s->dispatch(s, req);
    if (!s->busy)
        end_holding(s);
    /* Answered at once (no operation, or one that ended already): measured
     * here unless its end was. */
    if (!s->busy && !s->request_measured)
        gw_metrics_request(s->ctx->metrics, chat_request_type_name(type),
                           mono_us() - s->request_start_us);
}

static void handle_request(struct gw_session *s, const char *data, size_t len)
{
    struct chat_request req;
    struct chat_parse_error perr;
    s->request_start_us = mono_us();
    int rc = chat_request_parse(data, len, &req, &perr);
    dispatch_parsed(s, rc, &req, &perr);
}

/* A large request is parsed on the worker (offload.h) while the session
 * waits, busy, so its requests stay in order. */
struct parse_job {
    struct gw_offload_job job;
    struct gw_session *s;
    struct inbox_entry *e;
    struct chat_request req;
    struct chat_parse_error perr;
    int rc;
    bool parsed;
};

static void parse_work(struct gw_offload_job *job)
{
    struct parse_job *p = (struct parse_job *)job;
    p->rc = chat_request_parse(p->e->data, p->e->len, &p->req, &p->perr);
    p->parsed = true;
}

static void parse_done(struct gw_offload_job *job, bool cancelled)
{
    (void)cancelled; /* then parsed is false */
    struct parse_job *p = (struct parse_job *)job;
    struct gw_session *s = p->s;
    entry_free(p->e);
    s->busy = false;
    if (p->parsed && !s->closed)
        dispatch_parsed(s, p->rc, &p->req, &p->perr);
    else if (p->parsed && p->rc == 0)
        chat_request_deinit(&p->req);
    free(p);
    if (!s->closed)
        process_inbox(s);
    session_release(s);
}

static bool parse_elsewhere(struct gw_session *s, struct inbox_entry *e)
{
    /* A large message (ws.h) is parsed on the worker thread: jansson takes
     * ~20 ms per MiB, and the whole node would wait. */
    if (!s->ctx->offload || e->len < GW_WS_SMALL_MESSAGE)
        return false;
    struct parse_job *p = calloc(1, sizeof(*p));
    if (!p)
        return false;
    p->job.work = parse_work;
    p->job.done = parse_done;
    p->s = s;
    p->e = e;
    session_hold(s);
    s->busy = true;
    s->request_start_us = mono_us();
    gw_offload_submit(s->ctx->offload, &p->job);
    return true;
}

static void process_inbox(struct gw_session *s)
{
    while (!s->busy && !s->closed && s->welcomed && !STAILQ_EMPTY(&s->inbox)) {
        struct inbox_entry *e = STAILQ_FIRST(&s->inbox);
        STAILQ_REMOVE_HEAD(&s->inbox, link);
        s->inbox_len--;
        s->inbox_bytes -= e->len;
        if (parse_elsewhere(s, e))
            return;
        session_hold(s);
        handle_request(s, e->data, e->len);
        entry_free(e);
        bool gone = s->refs == 1 && s->closed;
        session_release(s);
        if (gone)
            return;
    }
}

/* ---- WebSocket handler ---- */

static void refuse_rate_limited(struct gw_session *s, const char *data, size_t len)
{
    gw_metrics_add(s->ctx->metrics, GW_M_RATE_LIMITED, 1);
    /* The reply carries the request's id when that is cheap to learn; a
     * flood of large frames is not parsed. */
    json_t *frame = len <= 4096 ? json_loadb(data, len, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(frame, "id"));
    gw_session_send_error(s, id && chat_valid_request_id(id) ? id : NULL, CHAT_ERR_RATE_LIMITED,
                          "slow down");
    json_decref(frame);
}

/* A flood cut off: the user's next connections to this node are refused for
 * a while (http.c), or the guest would reconnect and flood again at once. */
static void close_for_flooding(struct gw_session *s, const char *frames)
{
    chat_log(CHAT_LOG_INFO, "rate_limit_close conn=%llu user=%s frames=%s penalty_ms=%d",
             (unsigned long long)gw_ws_conn_id(s->ws), s->who.id, frames, GW_FLOOD_PENALTY_MS);
    gw_penalty_add(s->ctx->penalty, s->who.id, gw_mono_ms() + GW_FLOOD_PENALTY_MS);
    gw_ws_close(s->ws, 1008, "rate limit exceeded");
}

/* The text is ours (ws.h): queued as it is, or freed. */
static void on_text(void *arg, char *data, size_t len)
{
    struct gw_session *s = arg;
    if (s->closed) {
        free(data);
        return;
    }
    int verdict = gw_rate_take(&s->rate, s->ctx->cfg->rate, s->ctx->cfg->burst, gw_mono_ms());
    if (verdict == GW_RATE_CLOSE) {
        free(data);
        close_for_flooding(s, "text");
        return;
    }
    size_t max_bytes = GW_INBOX_MAX_BYTES > s->ctx->cfg->max_message ? GW_INBOX_MAX_BYTES
                                                                     : s->ctx->cfg->max_message;
    if (verdict == GW_RATE_DROP || s->inbox_len >= GW_INBOX_MAX ||
        (s->inbox_len > 0 && s->inbox_bytes + len > max_bytes)) {
        refuse_rate_limited(s, data, len);
        free(data);
        return;
    }
    struct inbox_entry *e = entry_take(data, len);
    if (!e)
        return;
    STAILQ_INSERT_TAIL(&s->inbox, e, link);
    s->inbox_len++;
    s->inbox_bytes += len;
    process_inbox(s);
}

static void on_control(void *arg)
{
    struct gw_session *s = arg;
    if (s->closed)
        return;
    int verdict = gw_rate_take(&s->rate, s->ctx->cfg->rate, s->ctx->cfg->burst, gw_mono_ms());
    if (verdict == GW_RATE_CLOSE) {
        close_for_flooding(s, "control");
    } else if (verdict == GW_RATE_DROP) {
        gw_metrics_add(s->ctx->metrics, GW_M_RATE_LIMITED, 1);
    }
}

static void on_closed(void *arg, const struct gw_ws_stats *stats)
{
    struct gw_session *s = arg;
    struct gw_ctx *ctx = s->ctx;
    s->closed = true;
    s->ws = NULL;
    if (s->client) {
        struct gw_member *m;
        while ((m = gw_router_any_member(s->client))) {
            bool joined = gw_member_joined(m);
            char room[CHAT_ROOM_MAX + 1];
            snprintf(room, sizeof(room), "%s", gw_member_room(m));
            if (gw_router_leave(ctx->router, m) && joined)
                gw_presence_leave(ctx->presence, room, &s->who);
        }
        if (gw_router_detach(ctx->router, s->client))
            gw_presence_offline(ctx->presence, &s->who);
        s->client = NULL;
    }
    chat_log(CHAT_LOG_INFO, "session_closed session=%llu conn=%llu user=%s" GW_WS_STATS_FMT,
             (unsigned long long)s->id, (unsigned long long)stats->conn_id, s->who.id,
             GW_WS_STATS_ARGS(stats));
    session_release(s);
}

static void on_tick(void *arg, int64_t now_mono)
{
    (void)now_mono;
    struct gw_session *s = arg;
    if (!s->closed && s->ws && gw_now_ms() / 1000 >= s->who.exp) {
        chat_log(CHAT_LOG_INFO, "token_expired session=%llu user=%s", (unsigned long long)s->id,
                 s->who.id);
        gw_ws_close(s->ws, 4001, "token expired");
    }
}

static const struct gw_ws_handler session_handler = {
    .on_text = on_text,
    .on_closed = on_closed,
    .on_tick = on_tick,
    .on_control = on_control,
};

/* Ends the start of a session that cannot go on (before `welcome`). */
static void start_failed(struct gw_session *s, uint16_t code, const char *reason)
{
    if (code == 1011)
        gw_session_send_error(s, NULL, CHAT_ERR_UNAVAILABLE, reason);
    if (s->ws)
        gw_ws_close(s->ws, code, reason);
    session_release(s);
}

static void on_user_subscribed(bool ok, void *arg)
{
    struct gw_session *s = arg;
    if (s->closed) {
        session_release(s);
        return;
    }
    if (!ok) {
        start_failed(s, 1011, "redis unavailable");
        return;
    }
    /* The user's channel is live before `welcome`: a private message sent
     * the moment the client sees it is delivered. */
    if (s->first_of_user)
        gw_presence_online(s->ctx->presence, &s->who);
    gw_store_welcome_rooms(s->ctx->store, on_welcome_rooms, s);
}

static void session_attach(struct gw_session *s)
{
    /* The attach may call on_user_subscribed (and fail the start) before it
     * returns; online/offline only come from the bus, in a later callback,
     * so setting the mode afterwards misses none. */
    if (!gw_router_attach(s->ctx->router, &s->who, s, &s->client, &s->first_of_user,
                          on_user_subscribed, s))
        start_failed(s, 1011, "out of memory");
    else if (s->presence_batch && s->client)
        gw_router_set_presence_batch(s->ctx->router, s->client);
}

static void on_nick_claimed(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_session *s = arg;
    if (s->closed) {
        session_release(s);
        return;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        start_failed(s, 1011, "redis unavailable");
        return;
    }
    if (reply->type == REDIS_REPLY_STRING && reply->len > 0 && strcmp(reply->str, s->who.id) != 0) {
        chat_log(CHAT_LOG_INFO, "nickname_taken session=%llu user=%s holder=%s",
                 (unsigned long long)s->id, s->who.id, reply->str);
        start_failed(s, 4009, "nickname taken");
        return;
    }
    session_attach(s);
}

/* Tokens may come from elsewhere than /api/login (admin tokens, or a Redis
 * that lost its data): the user record follows the token.  The nickname must
 * still be this user's: it was free at login, but someone online may have
 * taken it while this user was away (close 4009 then, before `welcome`). */
static void session_claim_identity(struct gw_session *s)
{
    struct gw_ctx *ctx = s->ctx;
    gw_store_save_user(ctx->store, &s->who, NULL, NULL);
    char nick_key[GW_KEY_MAX];
    if (gw_key_nick(nick_key, sizeof(nick_key), ctx->cfg->prefix, s->who.name))
        gw_store_claim_nick(ctx->store, nick_key, s->who.id, on_nick_claimed, s);
    else
        session_attach(s); /* a name that cannot be keyed cannot be claimed by anyone */
}

void gw_session_start(struct gw_ctx *ctx, struct gw_conn *c, struct chat_identity *who,
                      unsigned flags, gw_session_dispatch_cb dispatch)
{
    struct gw_session *s = calloc(1, sizeof(*s));
    if (!s) {
        chat_identity_deinit(who);
        gw_conn_close(c, true);
        return;
    }
    s->ctx = ctx;
    s->who = *who;
    memset(who, 0, sizeof(*who));
    s->dispatch = dispatch;
    s->presence_batch = (flags & GW_SESSION_PRESENCE_BATCH) != 0;
    s->id = gw_conn_id(c);
    s->refs = 1; /* the socket's */
    STAILQ_INIT(&s->inbox);
    STAILQ_INIT(&s->prewelcome);
    gw_rate_init(&s->rate, ctx->cfg->burst, gw_mono_ms());
    struct gw_ws_options o = {
        .max_message = ctx->cfg->max_message,
        .ping_interval_ms = ctx->cfg->ping_interval * 1000,
        .idle_timeout_ms = ctx->cfg->idle_timeout * 1000,
        .deflate_bits = GW_SESSION_DEFLATE_BITS(flags),
        .deflate_client_bits = GW_SESSION_DEFLATE_CLIENT_BITS(flags),
    };
    s->ws = gw_ws_attach(c, &o, &session_handler, s);
    if (!s->ws) {
        chat_identity_deinit(&s->who);
        free(s);
        return;
    }
    chat_log(CHAT_LOG_INFO, "session_open session=%llu user=%s peer=%s", (unsigned long long)s->id,
             s->who.id, gw_conn_peer(c));
    /* Requests wait in the inbox until the welcome is out; the start holds
     * the session through the nickname claim, the user channel's
     * subscription and the rooms listing. */
    s->busy = true;
    session_hold(s);
    session_claim_identity(s);
}
