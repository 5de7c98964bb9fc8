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
#include "presence.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "token.h"

/* Messages a join sends when the client gives no usable `since`. */
#define GW_JOIN_DEFAULT 50

struct join_op {
    struct gw_op op;
    bool rejoin;
    int64_t snapshot_seq;
    json_t *reply;             /* the joined reply being assembled */
    struct evbuffer *messages; /* raw stored messages, comma separated */
};

static void join_cleanup(struct gw_op *op)
{
    struct join_op *j = (struct join_op *)op;
    json_decref(j->reply);
    if (j->messages)
        evbuffer_free(j->messages);
}

/* The member this join made or found: looked up, never kept, because an
 * operator's delete-room may drop it while the join waits on Redis
 * (router_control.c).  The session is open. */
static struct gw_member *join_member(const struct join_op *j)
{
    return gw_router_find_member(gw_session_client(j->op.s), j->op.req.room);
}

static const char *prefix_of(const struct gw_op *op)
{
    return gw_session_ctx(op->s)->cfg->prefix;
}

/* ---- room creation (join creates a missing room, create_room says so) ---- */

static char *room_created_event(const struct chat_identity *by, const char *room, const char *topic)
{
    json_t *ev = json_pack("{s:s, s:s, s:s, s:o}", "type", "room_created", "room", room, "topic",
                           topic ? topic : "", "by", gw_user_json(by));
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    return text;
}

static void room_create(struct gw_op *op, const char *topic, gw_bus_reply_cb cb)
{
    struct gw_ctx *ctx = gw_session_ctx(op->s);
    const struct chat_identity *who = gw_session_who(op->s);
    json_t *meta = json_pack("{s:s, s:s, s:I}", "topic", topic ? topic : "", "created_by", who->id,
                             "created_at", (json_int_t)gw_now_ms());
    char *meta_s = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    char *event = room_created_event(who, op->req.room, topic);
    json_decref(meta);
    if (!meta_s || !event) {
        free(meta_s);
        free(event);
        gw_op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    gw_store_create_room(ctx->store, op->req.room, meta_s, event, who->id, cb, op);
    free(meta_s);
    free(event);
}

/* ---- join ---- */

static void join_finish(struct join_op *j, const redisReply *members)
{
    struct gw_session *s = j->op.s;
    struct gw_ctx *ctx = gw_session_ctx(s);
    const struct chat_identity *who = gw_session_who(s);
    struct gw_member *m = join_member(j);
    if (!m) {
        gw_op_error(&j->op, CHAT_ERR_NOT_FOUND, "the room was deleted");
        return;
    }
    json_object_set_new(j->reply, "members", gw_handlers_users_json(members, who));
    json_t *reply = j->reply;
    j->reply = NULL;
    gw_session_send_with_messages(s, reply, j->messages);
    if (j->rejoin) {
        gw_router_rejoin_done(m, j->snapshot_seq);
    } else {
        /* Same tick as the reply: the backlog after the snapshot follows it
         * at once, so there is no gap and no repeat. */
        gw_router_join_done(ctx->router, m, j->snapshot_seq);
        if (!gw_router_user_in_room(ctx->router, who->id, j->op.req.room, m))
            gw_presence_join(ctx->presence, j->op.req.room, who);
    }
    gw_op_done(&j->op);
}

static void on_join_members(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct join_op *j = arg;
    if (gw_op_finished(&j->op, reply))
        return;
    join_finish(j, reply);
}

static void on_join_topic(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct join_op *j = arg;
    if (gw_op_finished(&j->op, reply))
        return;
    json_t *meta =
        reply->type == REDIS_REPLY_STRING ? json_loadb(reply->str, reply->len, 0, NULL) : NULL;
    json_t *topic = json_object_get(meta, "topic");
    json_object_set_new(j->reply, "topic",
                        json_string(json_is_string(topic) ? json_string_value(topic) : ""));
    json_decref(meta);
    char key[GW_KEY_MAX], now[32], users[GW_KEY_MAX];
    if (!gw_key_room(key, sizeof(key), prefix_of(&j->op), j->op.req.room, "members") ||
        !gw_key_room(users, sizeof(users), prefix_of(&j->op), j->op.req.room, "users")) {
        gw_op_error(&j->op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    now[0] = '\0'; /* who is online, on Redis' clock */
    const char *argv[] = {key, users, now};
    gw_store_eval(gw_session_ctx(j->op.s)->store, "users", 2, 3, argv, NULL, on_join_members, j);
}

/* After the reactions and the read marker (gw_handlers_decorate). */
static void join_read_topic(void *arg)
{
    struct join_op *j = arg;
    if (gw_session_closed(j->op.s)) {
        gw_op_done(&j->op);
        return;
    }
    struct gw_ctx *ctx = gw_session_ctx(j->op.s);
    char key[GW_KEY_MAX];
    if (!gw_key_rooms(key, sizeof(key), ctx->cfg->prefix)) {
        gw_op_error(&j->op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    const char *argv[] = {"HGET", key, j->op.req.room};
    gw_bus_command(ctx->bus, on_join_topic, j, 3, argv, NULL);
}

static void on_join_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct join_op *j = arg;
    if (gw_op_finished(&j->op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        gw_op_error(&j->op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    bool more = reply->element[1]->integer == 1;
    bool recovered = reply->element[2]->integer == 1;
    j->snapshot_seq = reply->element[0]->integer;
    j->messages = evbuffer_new();
    for (size_t i = 3; i < reply->elements && j->messages; i++) {
        const redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING)
            gw_append_raw(j->messages, e->str, e->len);
    }
    j->reply = gw_reply_new("joined", j->op.req.id);
    json_object_set_new(j->reply, "room", json_string(j->op.req.room));
    json_object_set_new(j->reply, "recovered", json_boolean(recovered));
    json_object_set_new(j->reply, "more", json_boolean(more));
    struct gw_ctx *ctx = gw_session_ctx(j->op.s);
    const char *prefix = ctx->cfg->prefix;
    char reactions[GW_KEY_MAX], marks[GW_KEY_MAX], field[GW_KEY_MAX];
    if (!gw_key_room(reactions, sizeof(reactions), prefix, j->op.req.room, "reactions") ||
        !gw_key_user(marks, sizeof(marks), prefix, gw_session_who(j->op.s)->id, "read") ||
        (size_t)snprintf(field, sizeof(field), "room:%s", j->op.req.room) >= sizeof(field)) {
        gw_op_error(&j->op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    gw_handlers_decorate(ctx, j->reply, reply, j->messages ? evbuffer_get_length(j->messages) : 0,
                         reactions, marks, field, join_read_topic, j);
}

static void join_snapshot(struct join_op *j)
{
    char seq[GW_KEY_MAX], hist[GW_KEY_MAX];
    if (!gw_key_room(seq, sizeof(seq), prefix_of(&j->op), j->op.req.room, "seq") ||
        !gw_key_room(hist, sizeof(hist), prefix_of(&j->op), j->op.req.room, "history")) {
        gw_op_error(&j->op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    /* Without a usable `since`, the last GW_JOIN_DEFAULT (history_range.lua
     * falls back to the same for a `since` outside history). */
    const struct chat_request *req = &j->op.req;
    gw_store_history_range(gw_session_ctx(j->op.s)->store, seq, hist,
                           req->has_since ? "since" : "before", req->has_since ? req->since : 0,
                           GW_JOIN_DEFAULT, GW_REPLY_MESSAGES_MAX, on_join_history, j);
}

static void on_join_subscribed(bool ok, void *arg)
{
    struct join_op *j = arg;
    if (gw_session_closed(j->op.s)) {
        gw_op_done(&j->op);
        return;
    }
    if (!ok) {
        struct gw_member *m = join_member(j);
        if (m)
            gw_router_leave(gw_session_ctx(j->op.s)->router, m);
        gw_op_error(&j->op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    join_snapshot(j);
}

/* room_create.lua refused a new room: the cap or the creator's quota. */
static bool room_limit_reached(struct gw_op *op, const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer >= 0)
        return false;
    gw_op_error(op, CHAT_ERR_LIMIT,
                reply->integer == -1 ? "the server has as many rooms as it allows"
                                     : "you have created as many rooms as allowed this hour");
    return true;
}

static void on_join_room_ready(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct join_op *j = arg;
    if (gw_op_finished(&j->op, reply) || room_limit_reached(&j->op, reply))
        return;
    struct gw_session *s = j->op.s;
    if (join_member(j)) {
        j->rejoin = true;
        join_snapshot(j);
        return;
    }
    struct gw_member *slot;
    if (!gw_router_join(gw_session_ctx(s)->router, gw_session_client(s), j->op.req.room, &slot,
                        on_join_subscribed, j))
        gw_op_error(&j->op, CHAT_ERR_INTERNAL, "out of memory");
}

void gw_handle_join(struct gw_session *s, struct chat_request *req)
{
    struct join_op *j = (struct join_op *)gw_op_new(s, req, sizeof(*j));
    if (!j)
        return;
    j->op.cleanup = join_cleanup;
    room_create(&j->op, NULL, on_join_room_ready);
}

/* ---- leave ---- */

void gw_handle_leave(struct gw_session *s, const struct chat_request *req)
{
    struct gw_ctx *ctx = gw_session_ctx(s);
    struct gw_member *m = gw_router_find_member(gw_session_client(s), req->room);
    if (!m) {
        gw_session_send_error(s, req->id, CHAT_ERR_NOT_MEMBER, "not a member of this room");
        return;
    }
    bool joined = gw_member_joined(m);
    if (gw_router_leave(ctx->router, m) && joined)
        gw_presence_leave(ctx->presence, req->room, gw_session_who(s));
    json_t *r = gw_reply_new("left", req->id);
    json_object_set_new(r, "room", json_string(req->room));
    gw_session_send_json(s, r);
}

/* ---- rooms, create_room ---- */

static void on_rooms_list(void *arg, json_t *rooms, bool more)
{
    struct gw_op *op = arg;
    if (gw_session_closed(op->s)) {
        json_decref(rooms);
        gw_op_done(op);
        return;
    }
    if (!rooms) {
        gw_op_error(op, CHAT_ERR_UNAVAILABLE, "redis unavailable");
        return;
    }
    json_t *r = gw_reply_new("rooms", op->req.id);
    json_object_set_new(r, "rooms", rooms);
    json_object_set_new(r, "more", json_boolean(more));
    gw_session_send_json(op->s, r);
    gw_op_done(op);
}

void gw_handle_rooms(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (op)
        gw_store_list_rooms(gw_session_ctx(s)->store, op->req.q, op->req.after_room, op->req.limit,
                            on_rooms_list, op);
}

static void on_room_created(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_op *op = arg;
    if (gw_op_finished(op, reply) || room_limit_reached(op, reply))
        return;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        gw_op_error(op, CHAT_ERR_CONFLICT, "room already exists");
        return;
    }
    json_t *ack = gw_reply_new("ack", op->req.id);
    json_object_set_new(ack, "room", json_string(op->req.room));
    gw_session_send_json(op->s, ack);
    gw_op_done(op);
}

void gw_handle_create_room(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (op)
        room_create(op, op->req.topic, on_room_created);
}
