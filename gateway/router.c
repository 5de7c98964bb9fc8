#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "dict.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "router.h"
#include "store.h"
#include "ws.h"

/* A join or repair never takes long; a backlog this deep means something is
 * stuck, and memory matters more than that room's ordering guarantee. */
#define GW_BACKLOG_MAX 65536

struct gw_router {
    struct gw_ctx *ctx;
    struct gw_dict *rooms; /* channel -> gw_room */
    struct gw_dict *users; /* channel -> gw_user */
    LIST_HEAD(, gw_session) sessions;
    size_t nsessions;
    char all_channel[GW_CHANNEL_MAX];
    char room_prefix[96]; /* "<prefix>room:{" */
    char user_prefix[96]; /* "<prefix>user:{" */
};

struct gw_router *gw_router_new(struct gw_ctx *ctx)
{
    struct gw_router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ctx = ctx;
    r->rooms = gw_dict_new();
    r->users = gw_dict_new();
    LIST_INIT(&r->sessions);
    if (!r->rooms || !r->users) {
        gw_router_free(r);
        return NULL;
    }
    const char *p = ctx->cfg->prefix;
    snprintf(r->all_channel, sizeof(r->all_channel), "%sall", p);
    snprintf(r->room_prefix, sizeof(r->room_prefix), "%sroom:{", p);
    snprintf(r->user_prefix, sizeof(r->user_prefix), "%suser:{", p);
    return r;
}

void gw_router_free(struct gw_router *r)
{
    if (!r)
        return;
    /* Sessions unregister themselves before the router goes; what is left
     * here are empty tables. */
    gw_dict_free(r->rooms);
    gw_dict_free(r->users);
    free(r);
}

int64_t gw_router_message_seq(const char *json, size_t len)
{
    /* Stored messages start {"type":"message","room":"<name>","seq": or
     * {"type":"private","seq": (post.lua heads); room names are short. */
    size_t scan = len < 96 ? len : 96;
    for (size_t i = 0; i + 6 < scan; i++) {
        if (memcmp(json + i, "\"seq\":", 6) == 0) {
            int64_t v = 0;
            size_t k = i + 6;
            if (k >= len || json[k] < '0' || json[k] > '9')
                return -1;
            while (k < len && json[k] >= '0' && json[k] <= '9' && v < INT64_MAX / 10)
                v = v * 10 + (json[k++] - '0');
            return v;
        }
    }
    return -1;
}

/* ---- sending ---- */

void gw_router_send(struct gw_session *s, const char *data, size_t len)
{
    if (s->closed || !s->ws)
        return;
    gw_ws_send_text(s->ws, data, len);
}

struct frame {
    uint8_t header[10];
    size_t header_len;
    const char *payload;
    size_t len;
};

static void frame_init(struct frame *f, const char *payload, size_t len)
{
    f->header_len = gw_ws_frame_header(f->header, len);
    f->payload = payload;
    f->len = len;
}

static void send_frame(struct gw_session *s, const struct frame *f)
{
    if (s->closed || !s->ws || !s->welcomed)
        return;
    gw_ws_send_frame(s->ws, f->header, f->header_len, f->payload, f->len);
}

/* ---- users ---- */

static void user_channel(struct gw_router *r, const char *uid, char *out, size_t len)
{
    snprintf(out, len, "%s%s}", r->user_prefix, uid);
}

static void user_backlog_clear(struct gw_user *u)
{
    while (!STAILQ_EMPTY(&u->backlog)) {
        struct gw_backlog_entry *e = STAILQ_FIRST(&u->backlog);
        STAILQ_REMOVE_HEAD(&u->backlog, link);
        free(e);
    }
}

static void user_free(struct gw_user *u)
{
    user_backlog_clear(u);
    gw_dict_free(u->convs);
    chat_identity_deinit(&u->who);
    free(u);
}

bool gw_router_add_session(struct gw_router *r, struct gw_session *s)
{
    char channel[GW_CHANNEL_MAX];
    user_channel(r, s->who.id, channel, sizeof(channel));
    LIST_INSERT_HEAD(&r->sessions, s, in_node);
    r->nsessions++;
    struct gw_user *u = gw_dict_get(r->users, channel);
    bool first = false;
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (u) {
            STAILQ_INIT(&u->backlog);
            u->convs = gw_dict_new();
        }
        if (!u || !u->convs || chat_identity_copy(&u->who, &s->who) != 0 ||
            gw_dict_set(r->users, channel, u) != GW_OK) {
            if (u)
                user_free(u);
            s->user = NULL;
            return false;
        }
        LIST_INIT(&u->sessions);
        u->since_ms = gw_now_ms();
        snprintf(u->channel, sizeof(u->channel), "%s", channel);
        gw_bus_subscribe(r->ctx->bus, channel, NULL, NULL);
        first = true;
    }
    LIST_INSERT_HEAD(&u->sessions, s, in_user);
    u->nsessions++;
    s->user = u;
    return first;
}

bool gw_router_remove_session(struct gw_router *r, struct gw_session *s)
{
    LIST_REMOVE(s, in_node);
    r->nsessions--;
    struct gw_user *u = s->user;
    if (!u)
        return false;
    LIST_REMOVE(s, in_user);
    s->user = NULL;
    if (--u->nsessions > 0)
        return false;
    gw_dict_del(r->users, u->channel);
    gw_bus_unsubscribe(r->ctx->bus, u->channel);
    user_free(u);
    return true;
}

/* ---- rooms ---- */

static void backlog_clear(struct gw_room *room)
{
    while (!STAILQ_EMPTY(&room->backlog)) {
        struct gw_backlog_entry *e = STAILQ_FIRST(&room->backlog);
        STAILQ_REMOVE_HEAD(&room->backlog, link);
        free(e);
    }
    room->backlog_len = 0;
}

static void backlog_push(struct gw_room *room, int64_t seq, const char *data, size_t len)
{
    if (room->backlog_len >= GW_BACKLOG_MAX) {
        chat_log(CHAT_LOG_WARN, "backlog_overflow room=%s", room->name);
        return;
    }
    struct gw_backlog_entry *e = malloc(sizeof(*e) + len);
    if (!e)
        return;
    e->seq = seq;
    e->len = len;
    memcpy(e->data, data, len);
    STAILQ_INSERT_TAIL(&room->backlog, e, link);
    room->backlog_len++;
}

static void room_maybe_free(struct gw_router *r, struct gw_room *room)
{
    if (room->nmembers > 0 || room->repairing || room->pending_joins > 0)
        return;
    gw_dict_del(r->rooms, room->channel);
    backlog_clear(room);
    free(room);
}

struct gw_member *gw_router_find_member(struct gw_session *s, const char *room)
{
    struct gw_member *m;
    LIST_FOREACH(m, &s->rooms, in_session)
    if (strcmp(m->room->name, room) == 0)
        return m;
    return NULL;
}

bool gw_router_user_in_room(struct gw_router *r, const char *user_id, const char *room_name,
                            const struct gw_member *except)
{
    char channel[GW_CHANNEL_MAX];
    snprintf(channel, sizeof(channel), "%s%s}", r->room_prefix, room_name);
    struct gw_room *room = gw_dict_get(r->rooms, channel);
    if (!room)
        return false;
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    if (m != except && strcmp(m->session->who.id, user_id) == 0)
        return true;
    return false;
}

bool gw_router_join(struct gw_router *r, struct gw_session *s, const char *name,
                    struct gw_member **slot, void (*ready)(bool ok, void *arg), void *arg)
{
    char channel[GW_CHANNEL_MAX];
    snprintf(channel, sizeof(channel), "%s%s}", r->room_prefix, name);
    struct gw_room *room = gw_dict_get(r->rooms, channel);
    if (!room) {
        size_t nlen = strlen(name);
        room = calloc(1, sizeof(*room) + nlen + 1);
        if (!room)
            return false;
        memcpy(room->name, name, nlen + 1);
        snprintf(room->channel, sizeof(room->channel), "%s", channel);
        room->router = r;
        LIST_INIT(&room->members);
        STAILQ_INIT(&room->backlog);
        if (gw_dict_set(r->rooms, channel, room) != GW_OK) {
            free(room);
            return false;
        }
    }
    struct gw_member *m = calloc(1, sizeof(*m));
    if (!m) {
        room_maybe_free(r, room);
        return false;
    }
    m->session = s;
    m->room = room;
    m->state = GW_MEMBER_PENDING;
    LIST_INSERT_HEAD(&room->members, m, in_room);
    LIST_INSERT_HEAD(&s->rooms, m, in_session);
    room->nmembers++;
    room->pending_joins++;
    *slot = m;
    gw_bus_subscribe(r->ctx->bus, room->channel, ready, arg);
    return true;
}

static void deliver_seq(struct gw_room *room, int64_t seq, const struct frame *f)
{
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    {
        if (m->state != GW_MEMBER_JOINED || seq <= m->last_seq)
            continue;
        m->last_seq = seq;
        send_frame(m->session, f);
    }
}

void gw_router_join_done(struct gw_router *r, struct gw_member *m, int64_t snapshot_seq)
{
    struct gw_room *room = m->room;
    m->state = GW_MEMBER_JOINED;
    m->last_seq = snapshot_seq;
    room->pending_joins--;
    /* The snapshot is a baseline for gap detection: anything above it comes
     * live (subscribed before the snapshot), anything at or below it that is
     * still in flight is filtered per member. */
    if (!room->synced || snapshot_seq > room->live_seq)
        room->live_seq = snapshot_seq;
    room->synced = true;
    struct gw_backlog_entry *e;
    STAILQ_FOREACH(e, &room->backlog, link)
    {
        if (e->seq <= m->last_seq)
            continue;
        struct frame f;
        frame_init(&f, e->data, e->len);
        m->last_seq = e->seq;
        send_frame(m->session, &f);
    }
    if (room->pending_joins == 0 && !room->repairing)
        backlog_clear(room);
    (void)r;
}

bool gw_router_leave(struct gw_router *r, struct gw_member *m)
{
    struct gw_room *room = m->room;
    const char *uid = m->session->who.id;
    bool last = !gw_router_user_in_room(r, uid, room->name, m);
    LIST_REMOVE(m, in_room);
    LIST_REMOVE(m, in_session);
    room->nmembers--;
    if (m->state == GW_MEMBER_PENDING)
        room->pending_joins--;
    gw_bus_unsubscribe(r->ctx->bus, room->channel);
    free(m);
    room_maybe_free(r, room);
    return last;
}

/* ---- repair of lost pub/sub messages ---- */

static void on_repair_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_room *room = arg;
    struct gw_router *r = room->router;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        const redisReply *cur = reply->element[0];
        int64_t current = cur->type == REDIS_REPLY_INTEGER ? cur->integer : 0;
        if (current < room->live_seq) {
            /* Redis came back without this room's data (no persistence): seqs
             * start again, so forget what we saw or new messages look old. */
            chat_log(CHAT_LOG_WARN, "seq_reset room=%s was=%lld now=%lld", room->name,
                     (long long)room->live_seq, (long long)current);
            room->live_seq = current;
            struct gw_member *m;
            LIST_FOREACH(m, &room->members, in_room)
            if (m->last_seq > current)
                m->last_seq = current;
        }
        for (size_t i = 1; i < reply->elements; i++) {
            redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            int64_t seq = gw_router_message_seq(e->str, e->len);
            if (seq <= room->live_seq)
                continue;
            struct frame f;
            frame_init(&f, e->str, e->len);
            deliver_seq(room, seq, &f);
            room->live_seq = seq;
        }
        gw_metrics_add(r->ctx->metrics, GW_M_GAP_RECOVERIES, 1);
    }
    struct gw_backlog_entry *e;
    STAILQ_FOREACH(e, &room->backlog, link)
    {
        struct frame f;
        frame_init(&f, e->data, e->len);
        deliver_seq(room, e->seq, &f);
        if (e->seq > room->live_seq)
            room->live_seq = e->seq;
    }
    room->repairing = false;
    if (room->pending_joins == 0)
        backlog_clear(room);
    room_maybe_free(r, room);
}

static void start_repair(struct gw_router *r, struct gw_room *room)
{
    if (room->repairing)
        return;
    room->repairing = true;
    char seq_key[200], hist_key[200];
    gw_store_room_key(r->ctx->store, seq_key, sizeof(seq_key), room->name, "seq");
    gw_store_room_key(r->ctx->store, hist_key, sizeof(hist_key), room->name, "history");
    chat_log(CHAT_LOG_INFO, "gap_repair room=%s after_seq=%lld", room->name,
             (long long)room->live_seq);
    const char *argv[] = {seq_key, hist_key};
    gw_store_eval(r->ctx->store, "history_since", 2, 2, argv, NULL, on_repair_history, room);
}

static void start_user_repair(struct gw_router *r, struct gw_user *u);

void gw_router_on_subscribed(struct gw_router *r, const char *channel)
{
    struct gw_room *room = gw_dict_get(r->rooms, channel);
    if (room) {
        if (room->synced)
            start_repair(r, room);
        return;
    }
    struct gw_user *u = gw_dict_get(r->users, channel);
    if (u) {
        if (u->subscribed_once)
            start_user_repair(r, u);
        u->subscribed_once = true;
    }
}

static void room_live_message(struct gw_router *r, struct gw_room *room, int64_t seq,
                              const char *payload, size_t len)
{
    if (room->repairing) {
        backlog_push(room, seq, payload, len);
        return;
    }
    if (room->synced && seq > room->live_seq + 1) {
        backlog_push(room, seq, payload, len);
        start_repair(r, room);
        return;
    }
    if (room->pending_joins > 0)
        backlog_push(room, seq, payload, len);
    struct frame f;
    frame_init(&f, payload, len);
    deliver_seq(room, seq, &f);
    if (seq > room->live_seq)
        room->live_seq = seq;
    room->synced = true;
}

static void room_event(struct gw_room *room, const char *payload, size_t len, const char *skip_uid,
                       size_t skip_len)
{
    struct frame f;
    frame_init(&f, payload, len);
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    {
        if (m->state != GW_MEMBER_JOINED)
            continue;
        const char *uid = m->session->who.id;
        if (skip_uid && strlen(uid) == skip_len && memcmp(uid, skip_uid, skip_len) == 0)
            continue;
        send_frame(m->session, &f);
    }
}

/* ---- private traffic: per-conversation order and repair ---- */

static void user_send_all(struct gw_user *u, const char *payload, size_t len)
{
    struct frame f;
    frame_init(&f, payload, len);
    struct gw_session *s;
    LIST_FOREACH(s, &u->sessions, in_user)
    send_frame(s, &f);
}

/* Delivers a private message (or anything else on the user's channel) to
 * every local session of u, once: a message whose seq is not above the last
 * one delivered for its conversation is a repeat.  min_ts > 0 skips messages
 * older than that (a repair only replays what this node should have seen). */
static void user_deliver(struct gw_user *u, const char *payload, size_t len, int64_t min_ts)
{
    int64_t seq = len > 17 && memcmp(payload, "{\"type\":\"private\"", 17) == 0
                      ? gw_router_message_seq(payload, len)
                      : -1;
    if (seq <= 0) {
        user_send_all(u, payload, len);
        return;
    }
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *from = json_string_value(json_object_get(json_object_get(msg, "from"), "id"));
    const char *to = json_string_value(json_object_get(json_object_get(msg, "to"), "id"));
    int64_t ts = json_integer_value(json_object_get(msg, "ts"));
    if (!from || !to) {
        json_decref(msg);
        user_send_all(u, payload, len);
        return;
    }
    const char *peer = strcmp(from, u->who.id) == 0 ? to : from;
    int64_t last = (int64_t)(intptr_t)gw_dict_get(u->convs, peer);
    if (seq > last && ts >= min_ts) {
        gw_dict_set(u->convs, peer, (void *)(intptr_t)seq);
        user_send_all(u, payload, len);
    }
    json_decref(msg);
}

static void backlog_push_user(struct gw_user *u, const char *payload, size_t len)
{
    struct gw_backlog_entry *e = malloc(sizeof(*e) + len);
    if (!e)
        return;
    e->seq = 0;
    e->len = len;
    memcpy(e->data, payload, len);
    STAILQ_INSERT_TAIL(&u->backlog, e, link);
}

/* A repair in flight refers to its user by channel: the user may be gone
 * (last session closed) when Redis answers. */
struct user_repair {
    struct gw_router *r;
    int outstanding;
    bool listed;
    char channel[GW_CHANNEL_MAX];
};

static void user_repair_step(struct user_repair *ur)
{
    if (--ur->outstanding > 0 || !ur->listed)
        return;
    struct gw_user *u = gw_dict_get(ur->r->users, ur->channel);
    if (u) {
        u->repairing = false;
        while (!STAILQ_EMPTY(&u->backlog)) {
            struct gw_backlog_entry *e = STAILQ_FIRST(&u->backlog);
            STAILQ_REMOVE_HEAD(&u->backlog, link);
            user_deliver(u, e->data, e->len, 0);
            free(e);
        }
    }
    free(ur);
}

static void on_user_repair_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct user_repair *ur = arg;
    struct gw_user *u = gw_dict_get(ur->r->users, ur->channel);
    if (u && reply && reply->type == REDIS_REPLY_ARRAY)
        for (size_t i = 1; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                user_deliver(u, reply->element[i]->str, reply->element[i]->len, u->since_ms);
    user_repair_step(ur);
}

static void on_user_repair_peers(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct user_repair *ur = arg;
    struct gw_user *u = gw_dict_get(ur->r->users, ur->channel);
    ur->listed = true;
    if (u && reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_STRING || !chat_valid_user_id(e->str))
                continue;
            char seq_key[256], hist_key[256];
            gw_store_dm_key(ur->r->ctx->store, seq_key, sizeof(seq_key), u->who.id, e->str, "seq");
            gw_store_dm_key(ur->r->ctx->store, hist_key, sizeof(hist_key), u->who.id, e->str,
                            "history");
            const char *argv[] = {seq_key, hist_key};
            ur->outstanding++;
            gw_store_eval(ur->r->ctx->store, "history_since", 2, 2, argv, NULL,
                          on_user_repair_history, ur);
        }
    }
    user_repair_step(ur);
}

static void start_user_repair(struct gw_router *r, struct gw_user *u)
{
    if (u->repairing)
        return;
    struct user_repair *ur = calloc(1, sizeof(*ur));
    if (!ur)
        return;
    u->repairing = true;
    ur->r = r;
    ur->outstanding = 1; /* the peer listing */
    snprintf(ur->channel, sizeof(ur->channel), "%s", u->channel);
    char key[256];
    gw_store_key(r->ctx->store, key, sizeof(key), "user:{%s}:dms", u->who.id);
    const char *argv[] = {"SMEMBERS", key};
    chat_log(CHAT_LOG_INFO, "gap_repair user=%s", u->who.id);
    gw_bus_command(r->ctx->bus, on_user_repair_peers, ur, 2, argv, NULL);
}

void gw_router_on_message(struct gw_router *r, const char *channel, size_t channel_len,
                          const char *payload, size_t len)
{
    (void)channel_len;
    if (strcmp(channel, r->all_channel) == 0) {
        struct frame f;
        frame_init(&f, payload, len);
        struct gw_session *s;
        LIST_FOREACH(s, &r->sessions, in_node)
        send_frame(s, &f);
        return;
    }
    struct gw_room *room = gw_dict_get(r->rooms, channel);
    if (room) {
        if (len > 0 && payload[0] == '{') {
            int64_t seq = len > 17 && memcmp(payload, "{\"type\":\"message\"", 17) == 0
                              ? gw_router_message_seq(payload, len)
                              : -1;
            if (seq > 0)
                room_live_message(r, room, seq, payload, len);
            else
                room_event(room, payload, len, NULL, 0);
        } else if (len > 2 && payload[0] == 't' && payload[1] == '|') {
            /* typing: "t|<user id>|<frame>", not echoed to the typist */
            const char *bar = memchr(payload + 2, '|', len - 2);
            if (bar)
                room_event(room, bar + 1, len - (size_t)(bar + 1 - payload), payload + 2,
                           (size_t)(bar - payload - 2));
        }
        return;
    }
    struct gw_user *u = gw_dict_get(r->users, channel);
    if (u) {
        if (u->repairing)
            backlog_push_user(u, payload, len);
        else
            user_deliver(u, payload, len, 0);
    }
}

/* ---- iteration ---- */

struct each_user_ctx {
    gw_router_user_cb fn;
    void *arg;
};

static void each_user_fn(const char *key, void *value, void *arg)
{
    (void)key;
    struct each_user_ctx *c = arg;
    struct gw_user *u = value;
    c->fn(u, u->who.id, c->arg);
}

void gw_router_each_user(struct gw_router *r, gw_router_user_cb fn, void *arg)
{
    struct each_user_ctx c = {fn, arg};
    gw_dict_each(r->users, each_user_fn, &c);
}

struct each_room_user_ctx {
    gw_router_room_user_cb fn;
    void *arg;
};

static void each_room_user_fn(const char *key, void *value, void *arg)
{
    (void)key;
    struct each_room_user_ctx *c = arg;
    struct gw_room *room = value;
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    {
        if (m->state != GW_MEMBER_JOINED)
            continue;
        /* Report each user once: only at their first joined member. */
        bool seen = false;
        struct gw_member *p;
        LIST_FOREACH(p, &room->members, in_room)
        {
            if (p == m)
                break;
            if (p->state == GW_MEMBER_JOINED &&
                strcmp(p->session->who.id, m->session->who.id) == 0) {
                seen = true;
                break;
            }
        }
        if (!seen)
            c->fn(room->name, m->session->who.id, &m->session->who, c->arg);
    }
}

void gw_router_each_room_user(struct gw_router *r, gw_router_room_user_cb fn, void *arg)
{
    struct each_room_user_ctx c = {fn, arg};
    gw_dict_each(r->rooms, each_room_user_fn, &c);
}

size_t gw_router_session_count(const struct gw_router *r)
{
    return r->nsessions;
}
