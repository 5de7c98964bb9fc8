#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * read, edit, delete and react: what a user does to a conversation's stored
 * messages after they were posted (docs/protocol.md, "Read markers, edits and
 * reactions").  Each is one Lua script, so the check (whose message, is it
 * still in history) and the change cannot be split by another node's request.
 */

/* Caps of one message's reactions: they travel with every joined/history
 * reply that holds the message, so they must stay small. */
#define GW_REACTION_KINDS_MAX 20
#define GW_REACTIONS_MAX 100

/* The Redis side of one conversation (a room, or the caller's DM with a
 * peer): keys, and the channels its events go to with each one's event head
 * (a DM's event names the other side, so each side gets its own). */
struct conv {
    char hist[GW_KEY_MAX];
    char reactions[GW_KEY_MAX];
    char seq[GW_KEY_MAX];
    char field[GW_KEY_MAX]; /* in the caller's read hash */
    char channel[2][GW_KEY_MAX];
    const char *peer[2]; /* the `with` of each channel's event; NULL for a room */
    int nchannels;
};

static bool conv_init(struct conv *c, const struct gw_op *op)
{
    const char *prefix = gw_session_ctx(op->s)->cfg->prefix;
    const char *me = gw_session_who(op->s)->id;
    const struct chat_request *req = &op->req;
    memset(c, 0, sizeof(*c));
    if (req->room) {
        c->nchannels = 1;
        return gw_key_room(c->hist, sizeof(c->hist), prefix, req->room, "history") &&
               gw_key_room(c->reactions, sizeof(c->reactions), prefix, req->room, "reactions") &&
               gw_key_room(c->seq, sizeof(c->seq), prefix, req->room, "seq") &&
               gw_key_room(c->channel[0], GW_KEY_MAX, prefix, req->room, NULL) &&
               (size_t)snprintf(c->field, sizeof(c->field), "room:%s", req->room) <
                   sizeof(c->field);
    }
    c->peer[0] = req->with;
    c->peer[1] = me;
    c->nchannels = strcmp(me, req->with) == 0 ? 1 : 2;
    return gw_key_dm(c->hist, sizeof(c->hist), prefix, me, req->with, "history") &&
           gw_key_dm(c->reactions, sizeof(c->reactions), prefix, me, req->with, "reactions") &&
           gw_key_dm(c->seq, sizeof(c->seq), prefix, me, req->with, "seq") &&
           gw_key_user(c->channel[0], GW_KEY_MAX, prefix, me, NULL) &&
           gw_key_user(c->channel[1], GW_KEY_MAX, prefix, req->with, NULL) &&
           (size_t)snprintf(c->field, sizeof(c->field), "dm:%s", req->with) < sizeof(c->field);
}

/* The start of an event, up to and including the seq (or "seq": when seq < 0,
 * for the script to fill in).  Room names and user ids are validated names
 * that need no escaping. */
static void event_head(char *buf, size_t len, const char *type, const struct chat_request *req,
                       const char *peer, long long seq)
{
    const char *k = req->room ? "room" : "with";
    const char *v = req->room ? req->room : peer;
    if (seq < 0)
        snprintf(buf, len, "{\"type\":\"%s\",\"%s\":\"%s\",\"seq\":", type, k, v);
    else
        snprintf(buf, len, "{\"type\":\"%s\",\"%s\":\"%s\",\"seq\":%lld", type, k, v, seq);
}

/* An ack naming the conversation and the message. */
static json_t *mark_ack(const struct gw_op *op, long long seq)
{
    json_t *ack = gw_reply_new("ack", op->req.id);
    if (op->req.room)
        json_object_set_new(ack, "room", json_string(op->req.room));
    else
        json_object_set_new(ack, "with", json_string(op->req.with));
    json_object_set_new(ack, "seq", json_integer(seq));
    return ack;
}

/* Edits and reactions change what room members see: like `message`, only
 * a connection that joined the room may (a DM's sides always may). */
static bool may_touch(struct gw_op *op)
{
    if (!op->req.room)
        return true;
    struct gw_member *m = gw_router_find_member(gw_session_client(op->s), op->req.room);
    if (m && gw_member_joined(m))
        return true;
    gw_op_error(op, CHAT_ERR_NOT_MEMBER, "join the room first");
    return false;
}

/* ---- read ---- */

static void on_read(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_op *op = arg;
    if (gw_op_finished(op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    gw_session_send_json(op->s, mark_ack(op, reply->element[0]->integer));
    gw_op_done(op);
}

/* A read marker is capped at the conversation's seq, which lives in the
 * conversation's hash slot, while the marker lives in the user's: the seq is
 * read first and handed to read_mark.lua.  It only grows, so reading it a
 * moment early caps no marker too low that a client could have read. */
struct read_op {
    struct gw_op op;
    struct conv c;
};

static void on_read_seq(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct read_op *r = arg;
    struct gw_op *op = &r->op;
    if (gw_op_finished(op, reply))
        return;
    if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    char current[24];
    long long cur = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
    snprintf(current, sizeof(current), "%lld", cur > 0 ? cur : 0);
    struct gw_ctx *ctx = gw_session_ctx(op->s);
    const char *me = gw_session_who(op->s)->id;
    char key[GW_KEY_MAX], channel[GW_KEY_MAX], head[GW_KEY_MAX], seq[24], ttl[16];
    if (!gw_key_user(key, sizeof(key), ctx->cfg->prefix, me, "read") ||
        !gw_key_user(channel, sizeof(channel), ctx->cfg->prefix, me, NULL)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    /* The event goes to the caller's own channel only: with is the peer. */
    event_head(head, sizeof(head), "read", &op->req, op->req.with, -1);
    snprintf(seq, sizeof(seq), "%lld", (long long)op->req.seq);
    snprintf(ttl, sizeof(ttl), "%d", GW_USER_TTL_SEC);
    const char *argv[] = {
        key,     r->c.field, seq,     ttl,
        channel, head,       current, gw_bus_script_publish_cmd(ctx->bus, key, channel)};
    gw_store_eval(ctx->store, "read_mark", 1, 8, argv, NULL, on_read, op);
}

void gw_handle_read(struct gw_session *s, struct chat_request *req)
{
    struct read_op *r = (struct read_op *)gw_op_new(s, req, sizeof(*r));
    if (!r)
        return;
    struct gw_op *op = &r->op;
    struct gw_ctx *ctx = gw_session_ctx(s);
    if (!conv_init(&r->c, op)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    const char *argv[] = {"GET", r->c.seq};
    gw_bus_command(ctx->bus, on_read_seq, r, 2, argv, NULL);
}

/* ---- edit, delete ---- */

/* A DM's events on a cluster come back from the script as channel and event
 * pairs after the first `from` elements (gw_bus_script_publish_cmd): stored
 * is stored, so they go out whatever became of the session. */
static void publish_returned(struct gw_bus *bus, const struct redisReply *reply, size_t from)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > from &&
        reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "ok") == 0)
        gw_bus_publish_returned(bus, reply, from, NULL);
}

static void on_edited(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct gw_op *op = arg;
    publish_returned(bus, reply, 1);
    if (gw_op_finished(op, reply))
        return;
    const char *st = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                             reply->element[0]->type == REDIS_REPLY_STRING
                         ? reply->element[0]->str
                         : "";
    if (strcmp(st, "ok") == 0 || strcmp(st, "same") == 0) {
        gw_session_send_json(op->s, mark_ack(op, op->req.seq));
        gw_op_done(op);
    } else if (strcmp(st, "not_found") == 0) {
        gw_op_error(op, CHAT_ERR_NOT_FOUND, "no such message in history");
    } else if (strcmp(st, "forbidden") == 0) {
        gw_op_error(op, CHAT_ERR_FORBIDDEN,
                    op->req.type == CHAT_REQ_EDIT
                        ? "only the sender may edit a message"
                        : "only the sender or an admin may delete a message");
    } else if (strcmp(st, "deleted") == 0) {
        gw_op_error(op, CHAT_ERR_NOT_FOUND, "the message was deleted");
    } else if (strcmp(st, "image") == 0) {
        gw_op_error(op, CHAT_ERR_BAD_REQUEST, "images cannot be edited");
    } else if (strcmp(st, "too_large") == 0) {
        gw_op_error(op, CHAT_ERR_TOO_LARGE, "text body is over 4000 characters");
    } else {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
    }
}

void gw_handle_edit(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (!op || !may_touch(op))
        return;
    struct gw_ctx *ctx = gw_session_ctx(s);
    const struct chat_identity *who = gw_session_who(s);
    const struct chat_request *rq = &op->req;
    bool edit = rq->type == CHAT_REQ_EDIT;
    struct conv c;
    if (!conv_init(&c, op)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    /* The same encoder as the stored messages', so an unchanged body is the
     * same bytes and the script can compare without decoding. */
    json_t *b = edit ? json_stringn(rq->body, rq->body_len) : NULL;
    char *body = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(b);
    if (edit && !body) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    char seq[24], cps[24], head[2][GW_KEY_MAX];
    snprintf(seq, sizeof(seq), "%lld", (long long)rq->seq);
    snprintf(cps, sizeof(cps), "%ld", edit ? chat_utf8_count(rq->body, rq->body_len) : 0L);
    const char *argv[9 + 2 * 2] = {c.hist,
                                   c.reactions,
                                   edit ? "edit" : "delete",
                                   seq,
                                   who->id,
                                   who->admin ? "1" : "0",
                                   edit ? body : "",
                                   cps,
                                   gw_bus_script_publish_cmd(ctx->bus, c.hist, c.channel[0])};
    int argc = 9;
    for (int i = 0; i < c.nchannels; i++) {
        event_head(head[i], sizeof(head[i]), edit ? "edited" : "deleted", rq, c.peer[i],
                   (long long)rq->seq);
        argv[argc++] = c.channel[i];
        argv[argc++] = head[i];
    }
    gw_store_eval(ctx->store, "message_edit", 2, argc, argv, NULL, on_edited, op);
    free(body);
}

/* ---- react ---- */

static void on_reacted(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct gw_op *op = arg;
    publish_returned(bus, reply, 2);
    if (gw_op_finished(op, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
        return;
    }
    const char *st = reply->element[0]->str;
    if (strcmp(st, "not_found") == 0) {
        gw_op_error(op, CHAT_ERR_NOT_FOUND, "no such message in history");
    } else if (strcmp(st, "limit") == 0) {
        gw_op_error(op, CHAT_ERR_LIMIT, "too many reactions on this message");
    } else if (strcmp(st, "ok") == 0) {
        json_t *ack = mark_ack(op, op->req.seq);
        json_object_set_new(ack, "emoji", json_string(op->req.emoji));
        json_object_set_new(ack, "on", json_boolean(reply->element[1]->integer == 1));
        gw_session_send_json(op->s, ack);
        gw_op_done(op);
    } else {
        gw_op_error(op, CHAT_ERR_INTERNAL, "storage error");
    }
}

void gw_handle_react(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (!op || !may_touch(op))
        return;
    struct gw_ctx *ctx = gw_session_ctx(s);
    const struct chat_request *rq = &op->req;
    struct conv c;
    if (!conv_init(&c, op)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    json_t *e = json_string(rq->emoji);
    char *emoji = e ? json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(e);
    if (!emoji) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "out of memory");
        return;
    }
    char seq[24], kinds[16], total[16], head[2][GW_KEY_MAX];
    snprintf(seq, sizeof(seq), "%lld", (long long)rq->seq);
    snprintf(kinds, sizeof(kinds), "%d", GW_REACTION_KINDS_MAX);
    snprintf(total, sizeof(total), "%d", GW_REACTIONS_MAX);
    const char *argv[9 + 2 * 2] = {c.hist,
                                   c.reactions,
                                   seq,
                                   gw_session_who(s)->id,
                                   rq->emoji,
                                   emoji,
                                   kinds,
                                   total,
                                   gw_bus_script_publish_cmd(ctx->bus, c.hist, c.channel[0])};
    int argc = 9;
    for (int i = 0; i < c.nchannels; i++) {
        event_head(head[i], sizeof(head[i]), "reaction", rq, c.peer[i], (long long)rq->seq);
        argv[argc++] = c.channel[i];
        argv[argc++] = head[i];
    }
    gw_store_eval(ctx->store, "reaction_toggle", 2, argc, argv, NULL, on_reacted, op);
    free(emoji);
}

/* ---- reactions and read marker of joined / history replies ---- */

struct decorate {
    json_t *obj;  /* a reference of our own */
    json_t *seqs; /* the page's seqs as strings, in HMGET's field order */
    int outstanding;
    size_t budget; /* bytes of reactions the reply may still carry */
    void (*done)(void *arg);
    void *arg;
};

static void decorate_step(struct decorate *d)
{
    if (--d->outstanding > 0)
        return;
    json_decref(d->obj);
    json_decref(d->seqs);
    void (*done)(void *) = d->done;
    void *arg = d->arg;
    free(d);
    done(arg);
}

static void on_decorate_reactions(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct decorate *d = arg;
    /* HMGET answers in the order of its fields: the i-th value is the
     * reactions of the i-th message of the page. */
    json_t *map = json_object();
    for (size_t i = 0; reply && reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *v = reply->element[i];
        json_t *seq = json_array_get(d->seqs, i);
        if (v->type != REDIS_REPLY_STRING || !seq || v->len > d->budget)
            continue;
        json_t *r = json_loadb(v->str, v->len, 0, NULL);
        if (json_is_object(r) && json_object_size(r) > 0) {
            d->budget -= v->len;
            json_object_set_new(map, json_string_value(seq), r);
        } else {
            json_decref(r);
        }
    }
    if (json_object_size(map) > 0)
        json_object_set_new(d->obj, "reactions", map);
    else
        json_decref(map);
    decorate_step(d);
}

static void on_decorate_read(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct decorate *d = arg;
    if (reply && (reply->type == REDIS_REPLY_NIL || reply->type == REDIS_REPLY_STRING)) {
        long long seq = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
        json_object_set_new(d->obj, "last_read", json_integer(seq > 0 ? seq : 0));
    }
    decorate_step(d);
}

void gw_handlers_decorate(struct gw_ctx *ctx, json_t *obj, const struct redisReply *page,
                          size_t page_bytes, const char *reactions_key, const char *read_key,
                          const char *read_field, void (*done)(void *arg), void *arg)
{
    struct decorate *d = calloc(1, sizeof(*d));
    if (!d) {
        done(arg);
        return;
    }
    d->obj = json_incref(obj);
    d->done = done;
    d->arg = arg;
    d->budget = page_bytes < GW_REPLY_MESSAGES_MAX ? GW_REPLY_MESSAGES_MAX - page_bytes : 0;
    d->outstanding = 1; /* ours, dropped at the end: done runs once, after both */
    size_t n =
        page && page->type == REDIS_REPLY_ARRAY && page->elements > 3 ? page->elements - 3 : 0;
    const char **argv = n ? calloc(n + 2, sizeof(*argv)) : NULL;
    d->seqs = argv ? json_array() : NULL;
    if (d->seqs) {
        argv[0] = "HMGET";
        argv[1] = reactions_key;
        for (size_t i = 0; i < n; i++) {
            const redisReply *m = page->element[i + 3];
            char num[24];
            snprintf(num, sizeof(num), "%lld",
                     m->type == REDIS_REPLY_STRING
                         ? (long long)gw_router_message_seq(m->str, m->len)
                         : -1LL);
            json_array_append_new(d->seqs, json_string(num));
            const char *v = json_string_value(json_array_get(d->seqs, i));
            argv[i + 2] = v ? v : "-1";
        }
        d->outstanding++;
        gw_bus_command(ctx->bus, on_decorate_reactions, d, (int)n + 2, argv, NULL);
    }
    free(argv);
    if (read_key) {
        const char *rargv[] = {"HGET", read_key, read_field};
        d->outstanding++;
        gw_bus_command(ctx->bus, on_decorate_read, d, 3, rargv, NULL);
    }
    decorate_step(d);
}
