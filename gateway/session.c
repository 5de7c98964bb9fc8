#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "protocol.h"
#include "ratelimit.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "token.h"
#include "ws.h"

/* Idempotency keys of message and private ids live this long (section 4). */
#define GW_IDEMPOTENCY_SEC 300
/* Requests waiting behind a slow one; the rate limit keeps this far lower. */
#define GW_INBOX_MAX 256
#define GW_SEARCH_MAX 100
#define GW_JOIN_DEFAULT 50

/* One request in progress, holding a session reference until it is answered. */
struct op {
    struct gw_session *s;
    struct chat_request req;
    struct gw_member *member; /* join */
    bool rejoin;
    int64_t snapshot_seq;
    json_t *reply;             /* joined / history reply being assembled */
    struct evbuffer *messages; /* raw stored messages, comma separated */
    char *to_name;             /* private */
    int outstanding;           /* search: replies still to come */
    bool failed;
    struct match *matches; /* search */
    size_t nmatches, cap;
};

struct match {
    int64_t ts;
    char *json;
    size_t len;
};

static void process_inbox(struct gw_session *s);

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
        struct gw_backlog_entry *e = STAILQ_FIRST(&s->inbox);
        STAILQ_REMOVE_HEAD(&s->inbox, link);
        free(e);
    }
    chat_identity_deinit(&s->who);
    free(s);
}

static struct op *op_new(struct gw_session *s, struct chat_request *req)
{
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->s = s;
    op->req = *req;
    memset(req, 0, sizeof(*req));
    session_hold(s);
    s->busy = true;
    return op;
}

/* Ends an operation: frees it, lets the next request in, drops the ref. */
static void op_done(struct op *op)
{
    struct gw_session *s = op->s;
    chat_request_deinit(&op->req);
    json_decref(op->reply);
    if (op->messages)
        evbuffer_free(op->messages);
    free(op->to_name);
    for (size_t i = 0; i < op->nmatches; i++)
        free(op->matches[i].json);
    free(op->matches);
    free(op);
    s->busy = false;
    if (!s->closed)
        process_inbox(s);
    session_release(s);
}

/* ---- replies ---- */

json_t *gw_session_user_json(const struct chat_identity *who)
{
    json_t *u = json_pack("{s:s, s:s}", "id", who->id, "name", who->name);
    if (u)
        json_object_set_new(u, "avatar", who->avatar ? json_string(who->avatar) : json_null());
    return u;
}

static void send_json(struct gw_session *s, json_t *obj)
{
    if (!obj)
        return;
    char *text = json_dumps(obj, JSON_COMPACT);
    if (text)
        gw_router_send(s, text, strlen(text));
    free(text);
    json_decref(obj);
}

static json_t *reply_new(const char *type, const char *id)
{
    json_t *obj = json_pack("{s:s}", "type", type);
    if (obj && id)
        json_object_set_new(obj, "id", json_string(id));
    return obj;
}

static void send_error(struct gw_session *s, const char *id, enum chat_err code,
                       const char *message)
{
    gw_metrics_add(s->ctx->metrics, GW_M_ERRORS, 1);
    json_t *obj = reply_new("error", id && *id ? id : NULL);
    json_object_set_new(obj, "code", json_string(chat_err_code(code)));
    json_object_set_new(obj, "message", json_string(message));
    send_json(s, obj);
}

static void op_error(struct op *op, enum chat_err code, const char *message)
{
    if (!op->s->closed)
        send_error(op->s, op->req.id, code, message);
    op_done(op);
}

/* A NULL or error reply from Redis. */
static bool redis_failed(struct op *op, const redisReply *reply)
{
    if (reply && reply->type != REDIS_REPLY_ERROR)
        return false;
    op_error(op, reply ? CHAT_ERR_INTERNAL : CHAT_ERR_UNAVAILABLE,
             reply ? "storage error" : "redis unavailable");
    return true;
}

/* Sends {..., "messages":[raw, raw, ...]}: stored messages go out byte for
 * byte as stored, never re-encoded. */
static void send_with_messages(struct gw_session *s, json_t *obj, struct evbuffer *raw)
{
    char *text = json_dumps(obj, JSON_COMPACT);
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
        gw_router_send(s, (const char *)evbuffer_pullup(out, -1), len);
    }
    if (out)
        evbuffer_free(out);
    free(text);
}

static void append_raw(struct evbuffer *buf, const char *json, size_t len)
{
    if (evbuffer_get_length(buf) > 0)
        evbuffer_add(buf, ",", 1);
    evbuffer_add(buf, json, len);
}

/* ---- rooms listing (welcome, rooms, /api/rooms) ---- */

void gw_session_query_rooms(struct gw_ctx *ctx, gw_bus_reply_cb cb, void *arg)
{
    char key[256], now[32], mp[256];
    gw_store_key(ctx->store, key, sizeof(key), "rooms");
    gw_store_key(ctx->store, mp, sizeof(mp), "room:{");
    snprintf(now, sizeof(now), "%lld", (long long)gw_now_ms());
    const char *argv[] = {key, now, mp, "}:members"};
    gw_store_eval(ctx->store, "rooms", 1, 4, argv, NULL, cb, arg);
}

json_t *gw_session_rooms_json(const struct redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return NULL;
    json_t *rooms = json_array();
    for (size_t i = 0; i + 2 < reply->elements + 0 && rooms; i += 3) {
        const redisReply *name = reply->element[i], *meta = reply->element[i + 1],
                         *count = reply->element[i + 2];
        if (name->type != REDIS_REPLY_STRING)
            continue;
        json_t *m =
            meta->type == REDIS_REPLY_STRING ? json_loadb(meta->str, meta->len, 0, NULL) : NULL;
        json_t *topic = json_object_get(m, "topic");
        json_array_append_new(
            rooms,
            json_pack("{s:s, s:s, s:I}", "name", name->str, "topic",
                      json_is_string(topic) ? json_string_value(topic) : "", "members",
                      (json_int_t)(count->type == REDIS_REPLY_INTEGER ? count->integer : 0)));
        json_decref(m);
    }
    return rooms;
}

/* ---- welcome ---- */

static void on_welcome_rooms(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_session *s = arg;
    if (s->closed) {
        session_release(s);
        return;
    }
    json_t *rooms = gw_session_rooms_json(reply);
    if (!rooms) {
        /* Without Redis there is nothing to offer: say so and let the client retry. */
        send_error(s, NULL, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        gw_ws_close(s->ws, 1011, "redis unavailable");
        session_release(s);
        return;
    }
    json_t *w = json_pack("{s:s, s:o, s:s, s:o, s:i}", "type", "welcome", "user",
                          gw_session_user_json(&s->who), "node", s->ctx->cfg->node_id, "rooms",
                          rooms, "history_max", s->ctx->cfg->history);
    send_json(s, w);
    s->welcomed = true;
    s->busy = false;
    process_inbox(s);
    session_release(s);
}

/* ---- join ---- */

static void join_finish(struct op *op, const redisReply *members);

static void on_join_members(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    join_finish(op, reply);
}

static void on_join_topic(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    json_t *meta =
        reply->type == REDIS_REPLY_STRING ? json_loadb(reply->str, reply->len, 0, NULL) : NULL;
    json_t *topic = json_object_get(meta, "topic");
    json_object_set_new(op->reply, "topic",
                        json_string(json_is_string(topic) ? json_string_value(topic) : ""));
    json_decref(meta);
    char key[256], now[32], up[128];
    gw_store_room_key(op->s->ctx->store, key, sizeof(key), op->req.room, "members");
    gw_store_key(op->s->ctx->store, up, sizeof(up), "user:{");
    snprintf(now, sizeof(now), "%lld", (long long)gw_now_ms());
    const char *argv[] = {key, now, up, "}"};
    gw_store_eval(op->s->ctx->store, "users", 1, 4, argv, NULL, on_join_members, op);
}

static json_t *users_from_reply(const redisReply *reply, const struct chat_identity *also)
{
    json_t *arr = json_array();
    bool seen_self = false;
    for (size_t i = 0; reply && i + 2 < reply->elements + 0 && arr; i += 3) {
        const redisReply *id = reply->element[i], *name = reply->element[i + 1],
                         *avatar = reply->element[i + 2];
        if (id->type != REDIS_REPLY_STRING)
            continue;
        if (also && strcmp(id->str, also->id) == 0)
            seen_self = true;
        json_t *u = json_pack("{s:s, s:s}", "id", id->str, "name",
                              name->type == REDIS_REPLY_STRING ? name->str : id->str);
        json_object_set_new(u, "avatar",
                            avatar->type == REDIS_REPLY_STRING && avatar->len > 0
                                ? json_string(avatar->str)
                                : json_null());
        json_array_append_new(arr, u);
    }
    if (also && !seen_self)
        json_array_append_new(arr, gw_session_user_json(also));
    return arr;
}

static void join_finish(struct op *op, const redisReply *members)
{
    struct gw_session *s = op->s;
    json_object_set_new(op->reply, "members", users_from_reply(members, &s->who));
    json_t *reply = op->reply;
    op->reply = NULL;
    send_with_messages(s, reply, op->messages);
    struct gw_member *m = op->member;
    if (op->rejoin) {
        if (op->snapshot_seq > m->last_seq)
            m->last_seq = op->snapshot_seq;
    } else {
        /* Same tick as the reply: the backlog after the snapshot follows it
         * at once, so there is no gap and no repeat. */
        gw_router_join_done(s->ctx->router, m, op->snapshot_seq);
        if (!gw_router_user_in_room(s->ctx->router, s->who.id, op->req.room, m))
            gw_presence_join(s->ctx->presence, op->req.room, &s->who);
    }
    op_done(op);
}

static void on_join_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    const redisReply *seq = reply->element[0];
    int64_t current = seq->type == REDIS_REPLY_INTEGER  ? seq->integer
                      : seq->type == REDIS_REPLY_STRING ? strtoll(seq->str, NULL, 10)
                                                        : 0;
    size_t n = reply->elements - 1;
    int64_t first = current + 1;
    if (n > 0)
        first = gw_router_message_seq(reply->element[1]->str, reply->element[1]->len);
    bool recovered = false;
    size_t from = n > GW_JOIN_DEFAULT ? n - GW_JOIN_DEFAULT : 0;
    if (op->req.has_since && op->req.since <= current && op->req.since >= first - 1) {
        recovered = true;
        from = 0;
        while (from < n && gw_router_message_seq(reply->element[1 + from]->str,
                                                 reply->element[1 + from]->len) <= op->req.since)
            from++;
    }
    op->snapshot_seq = current;
    op->messages = evbuffer_new();
    for (size_t i = from; i < n && op->messages; i++) {
        const redisReply *e = reply->element[1 + i];
        if (e->type == REDIS_REPLY_STRING)
            append_raw(op->messages, e->str, e->len);
    }
    op->reply = reply_new("joined", op->req.id);
    json_object_set_new(op->reply, "room", json_string(op->req.room));
    json_object_set_new(op->reply, "recovered", json_boolean(recovered));
    char key[256];
    gw_store_key(op->s->ctx->store, key, sizeof(key), "rooms");
    const char *argv[] = {"HGET", key, op->req.room};
    gw_bus_command(op->s->ctx->bus, on_join_topic, op, 3, argv, NULL);
}

static void join_snapshot(struct op *op)
{
    char seq[256], hist[256];
    gw_store_room_key(op->s->ctx->store, seq, sizeof(seq), op->req.room, "seq");
    gw_store_room_key(op->s->ctx->store, hist, sizeof(hist), op->req.room, "history");
    const char *argv[] = {seq, hist};
    gw_store_eval(op->s->ctx->store, "history_since", 2, 2, argv, NULL, on_join_history, op);
}

static void on_join_subscribed(bool ok, void *arg)
{
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (!ok) {
        gw_router_leave(op->s->ctx->router, op->member);
        op->member = NULL;
        op_error(op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    join_snapshot(op);
}

static char *room_created_event(struct gw_session *s, const char *room, const char *topic)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:o}", "type", "room_created", "room", room, "topic",
                           topic ? topic : "", "by", gw_session_user_json(&s->who));
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    return text;
}

static void room_create(struct op *op, const char *topic, gw_bus_reply_cb cb)
{
    struct gw_session *s = op->s;
    json_t *meta = json_pack("{s:s, s:s, s:I}", "topic", topic ? topic : "", "created_by",
                             s->who.id, "created_at", (json_int_t)gw_now_ms());
    char *meta_s = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    char *event = room_created_event(s, op->req.room, topic);
    json_decref(meta);
    char key[256], channel[256];
    gw_store_key(s->ctx->store, key, sizeof(key), "rooms");
    gw_store_key(s->ctx->store, channel, sizeof(channel), "all");
    if (!meta_s || !event) {
        free(meta_s);
        free(event);
        cb(s->ctx->bus, NULL, op);
        return;
    }
    const char *argv[] = {key, op->req.room, meta_s, channel, event};
    gw_store_eval(s->ctx->store, "room_create", 1, 5, argv, NULL, cb, op);
    free(meta_s);
    free(event);
}

static void on_join_room_ready(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    struct gw_session *s = op->s;
    struct gw_member *m = gw_router_find_member(s, op->req.room);
    if (m) {
        op->member = m;
        op->rejoin = true;
        join_snapshot(op);
        return;
    }
    if (!gw_router_join(s->ctx->router, s, op->req.room, &op->member, on_join_subscribed, op))
        op_error(op, CHAT_ERR_INTERNAL, "out of memory");
}

static void handle_join(struct op *op)
{
    room_create(op, NULL, on_join_room_ready);
}

/* ---- leave ---- */

static void handle_leave(struct gw_session *s, struct chat_request *req)
{
    struct gw_member *m = gw_router_find_member(s, req->room);
    if (!m) {
        send_error(s, req->id, CHAT_ERR_NOT_MEMBER, "not a member of this room");
        return;
    }
    bool joined = m->state == GW_MEMBER_JOINED;
    if (gw_router_leave(s->ctx->router, m) && joined)
        gw_presence_leave(s->ctx->presence, req->room, &s->who);
    json_t *r = reply_new("left", req->id);
    json_object_set_new(r, "room", json_string(req->room));
    send_json(s, r);
}

/* ---- message and private ---- */

static json_t *message_tail(struct gw_session *s, const struct chat_request *req, const char *to_id,
                            const char *to_name)
{
    json_t *t = json_object();
    json_object_set_new(t, "from", gw_session_user_json(&s->who));
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

static void on_posted(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    json_t *ack = reply_new("ack", op->req.id);
    if (op->req.type == CHAT_REQ_MESSAGE)
        json_object_set_new(ack, "room", json_string(op->req.room));
    else
        json_object_set_new(ack, "to", json_string(op->req.to));
    json_object_set_new(ack, "seq", json_integer(reply->element[0]->integer));
    json_object_set_new(ack, "ts", json_integer(reply->element[1]->integer));
    send_json(op->s, ack);
    op_done(op);
}

static void post(struct op *op, const char *seq_key, const char *hist_key, const char *idem_key,
                 const char *head, json_t *tail_obj, const char *ch1, const char *ch2)
{
    struct gw_session *s = op->s;
    char *tail_json = json_dumps(tail_obj, JSON_COMPACT);
    json_decref(tail_obj);
    if (!tail_json) {
        op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    /* {"from":...} becomes ,"from":... to follow the ts in post.lua */
    tail_json[0] = ',';
    char max[16], ttl[16];
    snprintf(max, sizeof(max), "%d", s->ctx->cfg->history);
    snprintf(ttl, sizeof(ttl), "%d", op->req.id ? GW_IDEMPOTENCY_SEC : 0);
    const char *argv[] = {seq_key, hist_key, idem_key, max, head, tail_json, ttl, ch1, ch2};
    gw_store_eval(s->ctx->store, "post", 3, ch2 ? 9 : 8, argv, NULL, on_posted, op);
    free(tail_json);
}

static void handle_message(struct op *op)
{
    struct gw_session *s = op->s;
    struct chat_request *req = &op->req;
    struct gw_member *m = gw_router_find_member(s, req->room);
    if (!m || m->state != GW_MEMBER_JOINED) {
        op_error(op, CHAT_ERR_NOT_MEMBER, "join the room first");
        return;
    }
    char seq[256], hist[256], idem[512], channel[256], head[128];
    gw_store_room_key(s->ctx->store, seq, sizeof(seq), req->room, "seq");
    gw_store_room_key(s->ctx->store, hist, sizeof(hist), req->room, "history");
    gw_store_key(s->ctx->store, idem, sizeof(idem), "room:{%s}:idem:%s:%s", req->room, s->who.id,
                 req->id ? req->id : "");
    gw_store_key(s->ctx->store, channel, sizeof(channel), "room:{%s}", req->room);
    snprintf(head, sizeof(head), "{\"type\":\"message\",\"room\":\"%s\",\"seq\":", req->room);
    post(op, seq, hist, idem, head, message_tail(s, req, NULL, NULL), channel, NULL);
}

static void on_private_target(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        op_error(op, CHAT_ERR_NOT_FOUND, "no such user");
        return;
    }
    struct gw_session *s = op->s;
    struct chat_request *req = &op->req;
    const char *me = s->who.id, *to = req->to;
    char seq[256], hist[256], idem[512], ch_me[256], ch_to[256];
    gw_store_dm_key(s->ctx->store, seq, sizeof(seq), me, to, "seq");
    gw_store_dm_key(s->ctx->store, hist, sizeof(hist), me, to, "history");
    char what[256];
    snprintf(what, sizeof(what), "idem:%s:%s", me, req->id ? req->id : "");
    gw_store_dm_key(s->ctx->store, idem, sizeof(idem), me, to, what);
    gw_store_key(s->ctx->store, ch_me, sizeof(ch_me), "user:{%s}", me);
    gw_store_key(s->ctx->store, ch_to, sizeof(ch_to), "user:{%s}", to);
    bool self = strcmp(me, to) == 0;
    /* Remember the conversation for search (not part of the acked write). */
    char dms_me[256], dms_to[256];
    gw_store_key(s->ctx->store, dms_me, sizeof(dms_me), "user:{%s}:dms", me);
    gw_store_key(s->ctx->store, dms_to, sizeof(dms_to), "user:{%s}:dms", to);
    const char *a1[] = {"SADD", dms_me, to};
    const char *a2[] = {"SADD", dms_to, me};
    gw_bus_command(s->ctx->bus, NULL, NULL, 3, a1, NULL);
    gw_bus_command(s->ctx->bus, NULL, NULL, 3, a2, NULL);
    /* Last: its callback may run at once and free op (and req with it). */
    post(op, seq, hist, idem,
         "{\"type\":\"private\",\"seq\":", message_tail(s, req, to, reply->str), ch_me,
         self ? NULL : ch_to);
}

static void handle_private(struct op *op)
{
    char key[256];
    gw_store_key(op->s->ctx->store, key, sizeof(key), "user:{%s}", op->req.to);
    const char *argv[] = {"HGET", key, "name"};
    gw_bus_command(op->s->ctx->bus, on_private_target, op, 3, argv, NULL);
}

/* ---- history ---- */

static void on_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed || op->failed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    size_t n = reply->elements - 1, end = n;
    if (op->req.has_before)
        while (end > 0 && gw_router_message_seq(reply->element[end]->str,
                                                reply->element[end]->len) >= op->req.before)
            end--;
    size_t limit = (size_t)(op->req.limit > 0 ? op->req.limit : CHAT_HISTORY_LIMIT_DEFAULT);
    size_t from = end > limit ? end - limit : 0;
    struct evbuffer *raw = evbuffer_new();
    for (size_t i = from; i < end && raw; i++) {
        const redisReply *e = reply->element[1 + i];
        if (e->type == REDIS_REPLY_STRING)
            append_raw(raw, e->str, e->len);
    }
    json_t *r = reply_new("history", op->req.id);
    if (op->req.room)
        json_object_set_new(r, "room", json_string(op->req.room));
    else
        json_object_set_new(r, "with", json_string(op->req.with));
    send_with_messages(op->s, r, raw);
    if (raw)
        evbuffer_free(raw);
    op_done(op);
}

static void on_history_exists(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    /* The history reply follows on the same connection; it ends the op. */
    if (op->s->closed)
        return;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        send_error(op->s, op->req.id, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        op->failed = true;
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        send_error(op->s, op->req.id, CHAT_ERR_NOT_FOUND,
                   op->req.room ? "no such room" : "no such user");
        op->failed = true;
    }
}

static void handle_history(struct op *op)
{
    struct gw_session *s = op->s;
    char key[256], seq[256], hist[256];
    const char *exists[3];
    int nexists;
    if (op->req.room) {
        gw_store_key(s->ctx->store, key, sizeof(key), "rooms");
        exists[0] = "HEXISTS";
        exists[1] = key;
        exists[2] = op->req.room;
        nexists = 3;
        gw_store_room_key(s->ctx->store, seq, sizeof(seq), op->req.room, "seq");
        gw_store_room_key(s->ctx->store, hist, sizeof(hist), op->req.room, "history");
    } else {
        gw_store_key(s->ctx->store, key, sizeof(key), "user:{%s}", op->req.with);
        exists[0] = "EXISTS";
        exists[1] = key;
        nexists = 2;
        gw_store_dm_key(s->ctx->store, seq, sizeof(seq), s->who.id, op->req.with, "seq");
        gw_store_dm_key(s->ctx->store, hist, sizeof(hist), s->who.id, op->req.with, "history");
    }
    gw_bus_command(s->ctx->bus, on_history_exists, op, nexists, exists, NULL);
    const char *argv[] = {seq, hist};
    gw_store_eval(s->ctx->store, "history_since", 2, 2, argv, NULL, on_history, op);
}

/* ---- search ---- */

static bool contains_folded(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    /* ASCII case folding; other scripts match case-sensitively, which is what
     * a substring search over raw UTF-8 can promise without a Unicode table. */
    if (nlen == 0)
        return true;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        size_t k = 0;
        while (k < nlen) {
            unsigned char a = (unsigned char)hay[i + k], b = (unsigned char)needle[k];
            if (a >= 'A' && a <= 'Z')
                a = (unsigned char)(a + 32);
            if (b >= 'A' && b <= 'Z')
                b = (unsigned char)(b + 32);
            if (a != b)
                break;
            k++;
        }
        if (k == nlen)
            return true;
    }
    return false;
}

static void search_consider(struct op *op, const char *json, size_t len)
{
    const struct chat_request *req = &op->req;
    json_t *msg = json_loadb(json, len, 0, NULL);
    if (!msg)
        return;
    const char *kind = json_string_value(json_object_get(msg, "kind"));
    const char *body = json_string_value(json_object_get(msg, "body"));
    const char *from = json_string_value(json_object_get(json_object_get(msg, "from"), "id"));
    json_int_t ts = json_integer_value(json_object_get(msg, "ts"));
    bool ok = body && kind && strcmp(kind, "image") != 0 &&
              (!req->user || (from && strcmp(from, req->user) == 0)) &&
              (!req->has_after || ts > req->after) && (!req->has_before || ts < req->before) &&
              contains_folded(body, json_string_length(json_object_get(msg, "body")), req->q,
                              strlen(req->q));
    json_decref(msg);
    if (!ok)
        return;
    if (op->nmatches == op->cap) {
        size_t cap = op->cap ? op->cap * 2 : 64;
        struct match *m = realloc(op->matches, cap * sizeof(*m));
        if (!m)
            return;
        op->matches = m;
        op->cap = cap;
    }
    char *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, json, len);
    op->matches[op->nmatches++] = (struct match){ts, copy, len};
}

static int match_cmp(const void *a, const void *b)
{
    const struct match *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static void search_finish(struct op *op)
{
    if (op->nmatches > 1)
        qsort(op->matches, op->nmatches, sizeof(*op->matches), match_cmp);
    size_t from = op->nmatches > GW_SEARCH_MAX ? op->nmatches - GW_SEARCH_MAX : 0;
    struct evbuffer *raw = evbuffer_new();
    for (size_t i = from; i < op->nmatches && raw; i++)
        append_raw(raw, op->matches[i].json, op->matches[i].len);
    send_with_messages(op->s, reply_new("results", op->req.id), raw);
    if (raw)
        evbuffer_free(raw);
    op_done(op);
}

static void on_search_list(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        op->failed = true;
    else if (reply->type == REDIS_REPLY_ARRAY && !op->s->closed)
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                search_consider(op, reply->element[i]->str, reply->element[i]->len);
    if (--op->outstanding > 0)
        return;
    if (op->s->closed)
        op_done(op);
    else if (op->failed)
        op_error(op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
    else
        search_finish(op);
}

static void search_lrange(struct op *op, const char *key)
{
    const char *argv[] = {"LRANGE", key, "0", "-1"};
    op->outstanding++;
    gw_bus_command(op->s->ctx->bus, on_search_list, op, 4, argv, NULL);
}

/* One source listing arrived: room names (peers false) or DM peers (true).
 * outstanding counts the two listings; each LRANGE adds one before the
 * listing that caused it is counted down, so it reaches 0 only at the end. */
static void search_sources(struct op *op, const struct redisReply *reply, bool peers)
{
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        op->failed = true;
    else if (!op->s->closed && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            char key[256];
            if (!peers && chat_valid_room_name(e->str) &&
                (!op->req.room || strcmp(op->req.room, e->str) == 0)) {
                gw_store_room_key(op->s->ctx->store, key, sizeof(key), e->str, "history");
                search_lrange(op, key);
            } else if (peers && !op->req.room && chat_valid_user_id(e->str)) {
                gw_store_dm_key(op->s->ctx->store, key, sizeof(key), op->s->who.id, e->str,
                                "history");
                search_lrange(op, key);
            }
        }
    }
    if (--op->outstanding > 0)
        return;
    if (op->s->closed)
        op_done(op);
    else if (op->failed)
        op_error(op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
    else
        search_finish(op);
}

static void on_search_rooms(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    search_sources(arg, reply, false);
}

static void on_search_peers(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    search_sources(arg, reply, true);
}

static void handle_search(struct op *op)
{
    struct gw_session *s = op->s;
    char rooms[256], dms[256];
    gw_store_key(s->ctx->store, rooms, sizeof(rooms), "rooms");
    gw_store_key(s->ctx->store, dms, sizeof(dms), "user:{%s}:dms", s->who.id);
    const char *a1[] = {"HKEYS", rooms};
    const char *a2[] = {"SMEMBERS", dms};
    op->outstanding = 2;
    gw_bus_command(s->ctx->bus, on_search_rooms, op, 2, a1, NULL);
    gw_bus_command(s->ctx->bus, on_search_peers, op, 2, a2, NULL);
}

/* ---- rooms, create_room, users ---- */

static void on_rooms_list(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    json_t *rooms = gw_session_rooms_json(reply);
    if (!rooms) {
        op_error(op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    json_t *r = reply_new("rooms", op->req.id);
    json_object_set_new(r, "rooms", rooms);
    send_json(op->s, r);
    op_done(op);
}

static void on_room_created(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        op_error(op, CHAT_ERR_CONFLICT, "room already exists");
        return;
    }
    json_t *ack = reply_new("ack", op->req.id);
    json_object_set_new(ack, "room", json_string(op->req.room));
    send_json(op->s, ack);
    op_done(op);
}

static void on_users(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    json_t *r = reply_new("users", op->req.id);
    json_object_set_new(r, "users", users_from_reply(reply, NULL));
    send_json(op->s, r);
    op_done(op);
}

static void handle_users(struct op *op)
{
    char key[256], now[32], up[128];
    gw_store_key(op->s->ctx->store, key, sizeof(key), "online");
    gw_store_key(op->s->ctx->store, up, sizeof(up), "user:{");
    snprintf(now, sizeof(now), "%lld", (long long)gw_now_ms());
    const char *argv[] = {key, now, up, "}"};
    gw_store_eval(op->s->ctx->store, "users", 1, 4, argv, NULL, on_users, op);
}

/* ---- typing, broadcast ---- */

static void handle_typing(struct gw_session *s, struct chat_request *req)
{
    struct gw_member *m = gw_router_find_member(s, req->room);
    if (!m || m->state != GW_MEMBER_JOINED) {
        send_error(s, req->id, CHAT_ERR_NOT_MEMBER, "join the room first");
        return;
    }
    json_t *ev = json_pack("{s:s, s:s, s:o}", "type", "typing", "room", req->room, "user",
                           gw_session_user_json(&s->who));
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!text)
        return;
    size_t n = strlen(text) + strlen(s->who.id) + 4;
    char *payload = malloc(n);
    if (payload) {
        snprintf(payload, n, "t|%s|%s", s->who.id, text);
        char channel[256];
        gw_store_key(s->ctx->store, channel, sizeof(channel), "room:{%s}", req->room);
        const char *argv[] = {"PUBLISH", channel, payload};
        gw_bus_command(s->ctx->bus, NULL, NULL, 3, argv, NULL);
    }
    free(payload);
    free(text);
}

static void on_broadcast(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct op *op = arg;
    if (op->s->closed) {
        op_done(op);
        return;
    }
    if (redis_failed(op, reply))
        return;
    send_json(op->s, reply_new("ack", op->req.id));
    op_done(op);
}

static void handle_broadcast(struct op *op)
{
    struct gw_session *s = op->s;
    if (!s->who.admin) {
        op_error(op, CHAT_ERR_FORBIDDEN, "broadcast needs the admin role");
        return;
    }
    json_t *ev = json_pack("{s:s, s:o, s:s%, s:I}", "type", "broadcast", "from",
                           gw_session_user_json(&s->who), "body", op->req.body, op->req.body_len,
                           "ts", (json_int_t)gw_now_ms());
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    char channel[256];
    gw_store_key(s->ctx->store, channel, sizeof(channel), "all");
    if (!text) {
        op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    const char *argv[] = {"PUBLISH", channel, text};
    gw_bus_command(s->ctx->bus, on_broadcast, op, 3, argv, NULL);
    free(text);
}

/* ---- dispatch ---- */

static bool needs_redis(enum chat_req_type t)
{
    return t != CHAT_REQ_PING && t != CHAT_REQ_LEAVE;
}

static void handle_request(struct gw_session *s, const char *data, size_t len)
{
    struct chat_request req;
    struct chat_parse_error perr;
    if (chat_request_parse(data, len, &req, &perr) != 0) {
        send_error(s, perr.id[0] ? perr.id : NULL, perr.code, perr.message);
        return;
    }
    if (needs_redis(req.type) && !gw_bus_up(s->ctx->bus)) {
        send_error(s, req.id, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        chat_request_deinit(&req);
        return;
    }
    switch (req.type) {
    case CHAT_REQ_PING: {
        json_t *r = reply_new("pong", req.id);
        json_object_set_new(r, "ts", json_integer(gw_now_ms()));
        send_json(s, r);
        chat_request_deinit(&req);
        return;
    }
    case CHAT_REQ_LEAVE:
        handle_leave(s, &req);
        chat_request_deinit(&req);
        return;
    case CHAT_REQ_TYPING:
        handle_typing(s, &req);
        chat_request_deinit(&req);
        return;
    default:
        break;
    }
    struct op *op = op_new(s, &req);
    if (!op) {
        send_error(s, req.id, CHAT_ERR_INTERNAL, "out of memory");
        chat_request_deinit(&req);
        return;
    }
    switch (op->req.type) {
    case CHAT_REQ_JOIN:
        handle_join(op);
        break;
    case CHAT_REQ_MESSAGE:
        handle_message(op);
        break;
    case CHAT_REQ_PRIVATE:
        handle_private(op);
        break;
    case CHAT_REQ_HISTORY:
        handle_history(op);
        break;
    case CHAT_REQ_SEARCH:
        handle_search(op);
        break;
    case CHAT_REQ_ROOMS:
        gw_session_query_rooms(s->ctx, on_rooms_list, op);
        break;
    case CHAT_REQ_CREATE_ROOM:
        room_create(op, op->req.topic, on_room_created);
        break;
    case CHAT_REQ_USERS:
        handle_users(op);
        break;
    case CHAT_REQ_BROADCAST:
        handle_broadcast(op);
        break;
    default:
        op_error(op, CHAT_ERR_BAD_REQUEST, "unknown type");
        break;
    }
}

static void process_inbox(struct gw_session *s)
{
    while (!s->busy && !s->closed && s->welcomed && !STAILQ_EMPTY(&s->inbox)) {
        struct gw_backlog_entry *e = STAILQ_FIRST(&s->inbox);
        STAILQ_REMOVE_HEAD(&s->inbox, link);
        s->inbox_len--;
        session_hold(s);
        handle_request(s, e->data, e->len);
        free(e);
        bool gone = s->refs == 1 && s->closed;
        session_release(s);
        if (gone)
            return;
    }
}

/* ---- WebSocket handler ---- */

static void on_text(void *arg, const char *data, size_t len)
{
    struct gw_session *s = arg;
    if (s->closed)
        return;
    int verdict = gw_rate_take(&s->rate, s->ctx->cfg->rate, s->ctx->cfg->burst, gw_mono_ms());
    if (verdict == GW_RATE_CLOSE) {
        chat_log(CHAT_LOG_INFO, "rate_limit_close conn=%llu user=%s",
                 (unsigned long long)gw_ws_conn_id(s->ws), s->who.id);
        gw_ws_close(s->ws, 1008, "rate limit exceeded");
        return;
    }
    if (verdict == GW_RATE_DROP || s->inbox_len >= GW_INBOX_MAX) {
        gw_metrics_add(s->ctx->metrics, GW_M_RATE_LIMITED, 1);
        /* The reply carries the request's id when that is cheap to learn; a
         * flood of large frames is not parsed. */
        json_t *frame = len <= 4096 ? json_loadb(data, len, 0, NULL) : NULL;
        const char *id = json_string_value(json_object_get(frame, "id"));
        send_error(s, id && chat_valid_request_id(id) ? id : NULL, CHAT_ERR_RATE_LIMITED,
                   "slow down");
        json_decref(frame);
        return;
    }
    struct gw_backlog_entry *e = malloc(sizeof(*e) + len);
    if (!e)
        return;
    e->len = len;
    e->seq = 0;
    memcpy(e->data, data, len);
    STAILQ_INSERT_TAIL(&s->inbox, e, link);
    s->inbox_len++;
    process_inbox(s);
}

static void on_closed(void *arg)
{
    struct gw_session *s = arg;
    struct gw_ctx *ctx = s->ctx;
    s->closed = true;
    s->ws = NULL;
    while (!LIST_EMPTY(&s->rooms)) {
        struct gw_member *m = LIST_FIRST(&s->rooms);
        bool joined = m->state == GW_MEMBER_JOINED;
        char room[CHAT_ROOM_MAX + 1];
        snprintf(room, sizeof(room), "%s", m->room->name);
        if (gw_router_leave(ctx->router, m) && joined)
            gw_presence_leave(ctx->presence, room, &s->who);
    }
    if (gw_router_remove_session(ctx->router, s))
        gw_presence_offline(ctx->presence, &s->who);
    chat_log(CHAT_LOG_INFO, "session_closed session=%llu user=%s", (unsigned long long)s->id,
             s->who.id);
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
};

static struct gw_ws_options ws_options(const struct chat_config *cfg)
{
    struct gw_ws_options o = {
        .max_message = cfg->max_message,
        .ping_interval_ms = cfg->ping_interval * 1000,
        .idle_timeout_ms = cfg->idle_timeout * 1000,
    };
    return o;
}

void gw_session_start(struct gw_ctx *ctx, struct gw_conn *c, struct chat_identity *who)
{
    struct gw_session *s = calloc(1, sizeof(*s));
    if (!s) {
        chat_identity_deinit(who);
        gw_conn_close(c, true);
        return;
    }
    s->ctx = ctx;
    s->conn = c;
    s->who = *who;
    memset(who, 0, sizeof(*who));
    s->id = gw_conn_id(c);
    s->refs = 1; /* the socket's */
    LIST_INIT(&s->rooms);
    STAILQ_INIT(&s->inbox);
    gw_rate_init(&s->rate, ctx->cfg->burst, gw_mono_ms());
    struct gw_ws_options o = ws_options(ctx->cfg);
    s->ws = gw_ws_attach(c, &o, &session_handler, s);
    if (!s->ws) {
        chat_identity_deinit(&s->who);
        free(s);
        return;
    }
    chat_log(CHAT_LOG_INFO, "session_open session=%llu user=%s peer=%s", (unsigned long long)s->id,
             s->who.id, gw_conn_peer(c));
    /* Tokens may come from elsewhere than /api/login (admin tokens, or a
     * Redis that lost its data): the user record follows the token. */
    gw_store_save_user(ctx->store, &s->who, NULL, NULL);
    /* Hold the nickname while online, so a login elsewhere gets 409 even if
     * someone claimed it while this user was away (and is away now). */
    char nick_key[512];
    if (gw_store_nick_key(ctx->store, nick_key, sizeof(nick_key), s->who.name))
        gw_store_claim_nick(ctx->store, nick_key, s->who.id, NULL, NULL);
    if (gw_router_add_session(ctx->router, s))
        gw_presence_online(ctx->presence, &s->who);
    /* Requests wait in the inbox until the welcome is out. */
    s->busy = true;
    session_hold(s);
    gw_session_query_rooms(ctx, on_welcome_rooms, s);
}

/* ---- echo (RFC 6455 conformance endpoint) ---- */

struct echo {
    struct gw_ws *ws;
};

static void echo_text(void *arg, const char *data, size_t len)
{
    struct echo *e = arg;
    if (e->ws)
        gw_ws_send_text(e->ws, data, len);
}

static void echo_closed(void *arg)
{
    free(arg);
}

static const struct gw_ws_handler echo_handler = {
    .on_text = echo_text,
    .on_closed = echo_closed,
};

void gw_session_start_echo(struct gw_ctx *ctx, struct gw_conn *c)
{
    struct echo *e = calloc(1, sizeof(*e));
    if (!e) {
        gw_conn_close(c, true);
        return;
    }
    struct gw_ws_options o = ws_options(ctx->cfg);
    e->ws = gw_ws_attach(c, &o, &echo_handler, e);
    if (!e->ws)
        free(e);
}
