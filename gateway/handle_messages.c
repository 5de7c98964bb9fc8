#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "handlers.h"
#include "keys.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "token.h"

/* Idempotency keys of message and private ids live this long (section 4). */
#define GW_IDEMPOTENCY_SEC 300

/* ---- message (and the append shared with private) ---- */

json_t *gw_handlers_message_tail(const struct chat_identity *from, const struct chat_request *req,
                                 const char *to_id, const char *to_name)
{
    json_t *t = json_object();
    json_object_set_new(t, "from", gw_user_json(from));
    if (to_id)
        json_object_set_new(t, "to", json_pack("{s:s, s:s}", "id", to_id, "name", to_name));
    json_object_set_new(t, "kind", json_string(req->kind_name));
    json_object_set_new(t, "body", json_stringn(req->body, req->body_len));
    if (req->kind == CHAT_KIND_CODE && req->lang)
        json_object_set_new(t, "lang", json_string(req->lang));
    if (req->id)
        json_object_set_new(t, "id", json_string(req->id));
    return t;
}

static void send_ack(struct gw_op *op, long long seq, long long ts)
{
    json_t *ack = gw_reply_new("ack", op->req.id);
    if (op->req.type == CHAT_REQ_MESSAGE)
        json_object_set_new(ack, "room", json_string(op->req.room));
    else
        json_object_set_new(ack, "to", json_string(op->req.to));
    json_object_set_new(ack, "seq", json_integer(seq));
    json_object_set_new(ack, "ts", json_integer(ts));
    gw_session_send_json(op->s, ack);
    gw_op_done(op);
}

/*
 * --durability replica: the ack waits for WAIT 1 on the connection that
 * stored the message, and so does its delivery: the script stored it without
 * publishing (its events come back in the reply, kept here), because a
 * failover before a replica has it would lose it after members saw it, and
 * its seq would be used again.  Not confirmed, it is not published; the
 * client's resend of the same id gets the stored message back from the
 * script, and it is published once that WAIT confirms (a message published
 * twice is dropped by the members' routers as already seen).
 */
struct replica_wait {
    struct gw_op *op; /* NULL when the sender went away meanwhile */
    long long seq, ts;
    /* What the script would have published: the message, on each channel (a
     * room's, or a DM's two users'). */
    char *msg;
    size_t msg_len;
    char *channels[2];
};

static void replica_wait_free(struct replica_wait *w)
{
    free(w->msg);
    free(w->channels[0]);
    free(w->channels[1]);
    free(w);
}

/* Keeps the events of a post.lua reply {seq, ts, 0, msg, channel...}; false
 * on no memory. */
static bool keep_events(struct replica_wait *w, const redisReply *reply)
{
    const redisReply *msg = reply->element[3];
    if (!(w->msg = malloc(msg->len + 1)))
        return false;
    memcpy(w->msg, msg->str, msg->len + 1);
    w->msg_len = msg->len;
    for (size_t i = 4, k = 0; i < reply->elements && k < 2; i++) {
        const redisReply *ch = reply->element[i];
        if (ch->type == REDIS_REPLY_STRING && !(w->channels[k++] = strdup(ch->str)))
            return false;
    }
    return true;
}

static void publish_kept(struct gw_bus *bus, const struct replica_wait *w)
{
    for (int k = 0; k < 2 && w->channels[k]; k++)
        gw_bus_publish(bus, w->channels[k], w->msg, w->msg_len, NULL, NULL);
}

/* WAIT holds the connection it is sent on: everything queued behind it waits
 * too, so it must end well before the watchdog gives the connection up
 * (--redis-timeout). */
static int replica_timeout(const struct chat_config *cfg)
{
    int timeout = cfg->durability_timeout;
    return timeout > cfg->redis_timeout * 1000 / 2 ? cfg->redis_timeout * 1000 / 2 : timeout;
}

static void on_replicated(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct replica_wait *w = arg;
    struct gw_op *op = w->op;
    long long seq = w->seq, ts = w->ts;
    bool confirmed = reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 1;
    /* Confirmed is published even when the sender is gone meanwhile. */
    if (confirmed && w->msg)
        publish_kept(bus, w);
    replica_wait_free(w);
    if (!op || gw_op_finished(op, reply))
        return;
    if (!confirmed) {
        /* Stored on the master, not yet on a replica: the client resends the
         * same id, which answers the first ack once it is. */
        gw_op_error(op, CHAT_ERR_UNAVAILABLE, "not confirmed by a replica");
        return;
    }
    send_ack(op, seq, ts);
}

/* The reply carries events to publish (post.lua with publish command ""). */
static bool has_events(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 4 &&
           reply->element[3]->type == REDIS_REPLY_STRING;
}

/* post.lua stored the message (or answered a replay): {seq, ts, replayed, ...}. */
static bool stored(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 3;
}

static void on_posted(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct gw_op *op = arg;
    /* A DM on a cluster: the users' channels are in their own slots, not the
     * conversation's, so the script left the publishing to us (stored is
     * stored: published even if the sender is gone meanwhile; a replay was
     * published the first time). */
    if (has_events(reply) && reply->element[2]->integer == 0)
        gw_bus_publish_returned(bus, reply, 4, reply->element[3]);
    if (gw_op_finished(op, reply))
        return;
    if (!stored(reply)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    send_ack(op, reply->element[0]->integer, reply->element[1]->integer);
}

/* --durability replica: what was stored waits for WAIT before it is
 * published (whatever becomes of the sender) and acked (replica_wait). */
static void on_posted_replica(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct gw_op *op = arg;
    struct replica_wait *w = NULL;
    if (stored(reply) &&
        (!(w = calloc(1, sizeof(*w))) || (has_events(reply) && !keep_events(w, reply)))) {
        if (w)
            replica_wait_free(w);
        if (!gw_op_finished(op, reply))
            gw_op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    int timeout = replica_timeout(gw_session_ctx(op->s)->cfg);
    if (gw_op_finished(op, reply)) {
        if (w && w->msg)
            gw_bus_wait_replicas(bus, 1, timeout, on_replicated, w);
        else if (w)
            replica_wait_free(w);
        return;
    }
    if (!w) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    w->op = op;
    w->seq = reply->element[0]->integer;
    w->ts = reply->element[1]->integer;
    gw_bus_wait_replicas(bus, 1, timeout, on_replicated, w);
}

void gw_handlers_post(struct gw_op *op, const char *seq_key, const char *hist_key,
                      const char *idem_key, const char *head, json_t *tail, const char *ch1,
                      const char *ch2)
{
    struct gw_ctx *ctx = gw_session_ctx(op->s);
    char *tail_json = tail ? json_dumps(tail, JSON_COMPACT) : NULL;
    json_decref(tail);
    if (!tail_json) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    /* {"from":...} becomes ,"from":... to follow the ts in post.lua */
    tail_json[0] = ',';
    char max[16], ttl[16];
    snprintf(max, sizeof(max), "%d", ctx->cfg->history);
    snprintf(ttl, sizeof(ttl), "%d", op->req.id ? GW_IDEMPOTENCY_SEC : 0);
    /* --durability replica publishes after WAIT (on_replicated), not in the script. */
    bool replica = ctx->cfg->durability_replica;
    const char *pub = replica ? "" : gw_bus_script_publish_cmd(ctx->bus, seq_key, ch1);
    const char *argv[] = {seq_key, hist_key, idem_key, max, head, tail_json, ttl, pub, ch1, ch2};
    gw_store_eval(ctx->store, "post", 3, ch2 ? 10 : 9, argv, NULL,
                  replica ? on_posted_replica : on_posted, op);
    free(tail_json);
}

void gw_handle_message(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (!op)
        return;
    req = &op->req;
    struct gw_member *m = gw_router_find_member(gw_session_client(s), req->room);
    if (!m || !gw_member_joined(m)) {
        gw_op_error(op, CHAT_ERR_NOT_MEMBER, "join the room first");
        return;
    }
    const char *prefix = gw_session_ctx(s)->cfg->prefix;
    const struct chat_identity *who = gw_session_who(s);
    char seq[GW_KEY_MAX], hist[GW_KEY_MAX], idem[GW_KEY_MAX], channel[GW_KEY_MAX], head[128];
    if (!gw_key_room(seq, sizeof(seq), prefix, req->room, "seq") ||
        !gw_key_room(hist, sizeof(hist), prefix, req->room, "history") ||
        !gw_key_idempotency(idem, sizeof(idem), prefix, req->room, who->id, NULL,
                            req->id ? req->id : "") ||
        !gw_key_room(channel, sizeof(channel), prefix, req->room, NULL)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    snprintf(head, sizeof(head), "{\"type\":\"message\",\"room\":\"%s\",\"seq\":", req->room);
    gw_handlers_post(op, seq, hist, idem, head, gw_handlers_message_tail(who, req, NULL, NULL),
                     channel, NULL);
}

/* ---- history ---- */

struct history_op {
    struct gw_op op;
    char seq[GW_KEY_MAX]; /* the conversation's, read once it is known to exist */
    char hist[GW_KEY_MAX];
    json_t *reply;        /* while the reactions are read */
    struct evbuffer *raw; /* the page's stored messages, comma separated */
};

static void history_cleanup(struct gw_op *op)
{
    struct history_op *h = (struct history_op *)op;
    json_decref(h->reply);
    if (h->raw)
        evbuffer_free(h->raw);
}

/* After the page's reactions (gw_handlers_decorate). */
static void history_send(void *arg)
{
    struct history_op *h = arg;
    json_t *r = h->reply;
    h->reply = NULL;
    gw_session_send_with_messages(h->op.s, r, h->raw);
    gw_op_done(&h->op);
}

static void on_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct history_op *h = arg;
    struct gw_op *op = &h->op;
    if (gw_op_finished(op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    struct evbuffer *raw = evbuffer_new();
    for (size_t i = 3; i < reply->elements && raw; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING)
            gw_append_raw(raw, e->str, e->len);
    }
    json_t *r = gw_reply_new("history", op->req.id);
    if (op->req.room)
        json_object_set_new(r, "room", json_string(op->req.room));
    else
        json_object_set_new(r, "with", json_string(op->req.with));
    json_object_set_new(r, "more", json_boolean(reply->element[1]->integer == 1));
    h->reply = r;
    h->raw = raw;
    struct gw_ctx *ctx = gw_session_ctx(op->s);
    const char *prefix = ctx->cfg->prefix;
    char reactions[GW_KEY_MAX];
    bool ok =
        op->req.room
            ? gw_key_room(reactions, sizeof(reactions), prefix, op->req.room, "reactions") != NULL
            : gw_key_dm(reactions, sizeof(reactions), prefix, gw_session_who(op->s)->id,
                        op->req.with, "reactions") != NULL;
    if (!ok) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    gw_handlers_decorate(ctx, r, reply, raw ? evbuffer_get_length(raw) : 0, reactions, NULL, NULL,
                         history_send, h);
}

static void on_history_exists(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct history_op *h = arg;
    struct gw_op *op = &h->op;
    /* The page is read only after this answer: on a cluster the room (or
     * user) and its history are on different masters, whose answers may
     * come in either order, and only one of them may end the op. */
    if (gw_op_finished(op, reply && reply->type == REDIS_REPLY_ERROR ? NULL : reply))
        return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        gw_op_error(op, CHAT_ERR_NOT_FOUND, op->req.room ? "no such room" : "no such user");
        return;
    }
    const struct chat_request *rq = &op->req;
    gw_store_history_range(gw_session_ctx(op->s)->store, h->seq, h->hist,
                           rq->has_after ? "after" : "before",
                           rq->has_after    ? rq->after
                           : rq->has_before ? rq->before
                                            : 0,
                           rq->limit, GW_REPLY_MESSAGES_MAX, on_history, h);
}

void gw_handle_history(struct gw_session *s, struct chat_request *req)
{
    struct history_op *h = (struct history_op *)gw_op_new(s, req, sizeof(*h));
    if (!h)
        return;
    struct gw_op *op = &h->op;
    op->cleanup = history_cleanup;
    struct gw_ctx *ctx = gw_session_ctx(s);
    const char *prefix = ctx->cfg->prefix;
    const char *me = gw_session_who(s)->id;
    char key[GW_KEY_MAX];
    const char *exists[3];
    int nexists;
    bool ok;
    if (op->req.room) {
        exists[0] = "HEXISTS";
        exists[2] = op->req.room;
        nexists = 3;
        ok = gw_key_rooms(key, sizeof(key), prefix) &&
             gw_key_room(h->seq, sizeof(h->seq), prefix, op->req.room, "seq") &&
             gw_key_room(h->hist, sizeof(h->hist), prefix, op->req.room, "history");
    } else {
        exists[0] = "EXISTS";
        nexists = 2;
        ok = gw_key_user(key, sizeof(key), prefix, op->req.with, NULL) &&
             gw_key_dm(h->seq, sizeof(h->seq), prefix, me, op->req.with, "seq") &&
             gw_key_dm(h->hist, sizeof(h->hist), prefix, me, op->req.with, "history");
    }
    if (!ok) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    exists[1] = key;
    gw_bus_command(ctx->bus, on_history_exists, h, nexists, exists, NULL);
}

/* ---- typing, broadcast ---- */

void gw_handle_typing(struct gw_session *s, const struct chat_request *req)
{
    struct gw_member *m = gw_router_find_member(gw_session_client(s), req->room);
    if (!m || !gw_member_joined(m)) {
        gw_session_send_error(s, req->id, CHAT_ERR_NOT_MEMBER, "join the room first");
        return;
    }
    struct gw_ctx *ctx = gw_session_ctx(s);
    const struct chat_identity *who = gw_session_who(s);
    char channel[GW_KEY_MAX];
    if (!gw_key_room(channel, sizeof(channel), ctx->cfg->prefix, req->room, NULL))
        return;
    json_t *ev = json_pack("{s:s, s:s, s:o}", "type", "typing", "room", req->room, "user",
                           gw_user_json(who));
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!text)
        return;
    /* "t|<user id>|<frame>": the router skips the typist's own sessions. */
    size_t n = strlen(text) + strlen(who->id) + 4;
    char *payload = malloc(n);
    if (payload) {
        int len = snprintf(payload, n, "t|%s|%s", who->id, text);
        gw_bus_publish(ctx->bus, channel, payload, (size_t)len, NULL, NULL);
    }
    free(payload);
    free(text);
}

static void on_broadcast(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_op *op = arg;
    if (gw_op_finished(op, reply))
        return;
    gw_session_send_json(op->s, gw_reply_new("ack", op->req.id));
    gw_op_done(op);
}

void gw_handle_broadcast(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (!op)
        return;
    const struct chat_identity *who = gw_session_who(s);
    if (!who->admin) {
        gw_op_error(op, CHAT_ERR_FORBIDDEN, "broadcast needs the admin role");
        return;
    }
    struct gw_ctx *ctx = gw_session_ctx(s);
    json_t *ev = json_pack("{s:s, s:o, s:s%, s:I}", "type", "broadcast", "from", gw_user_json(who),
                           "body", op->req.body, op->req.body_len, "ts", (json_int_t)gw_now_ms());
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    char channel[GW_KEY_MAX];
    if (!text || !gw_key_all(channel, sizeof(channel), ctx->cfg->prefix)) {
        free(text);
        gw_op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    gw_bus_publish(ctx->bus, channel, text, strlen(text), on_broadcast, op);
    free(text);
}
