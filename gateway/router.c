#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "dict.h"
#include "frame.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "router.h"
#include "router_internal.h"
#include "token.h"

struct gw_router *gw_router_new(struct gw_ctx *ctx, const struct gw_router_ops *ops)
{
    struct gw_router *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->ctx = ctx;
    r->ops = ops;
    r->rooms = gw_dict_new();
    r->users = gw_dict_new();
    LIST_INIT(&r->clients);
    LIST_INIT(&r->legacy_clients);
    LIST_INIT(&r->batch_clients);
    r->presence_batch = gw_presence_batch_new(r);
    if (!r->rooms || !r->users || !r->presence_batch ||
        !gw_key_all(r->all_channel, sizeof(r->all_channel), ctx->cfg->prefix) ||
        !gw_key_control(r->control_channel, sizeof(r->control_channel), ctx->cfg->prefix)) {
        gw_router_free(r);
        return NULL;
    }
    return r;
}

static void room_destroy(struct room *room);

static void free_room_entry(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    room_destroy(value);
}

static void free_user_entry(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    gw_router_user_free(value);
}

void gw_router_free(struct gw_router *r)
{
    if (!r)
        return;
    /* Clients detach themselves before the router goes; what can be left
     * are rooms still repairing (a read failed at shutdown and waits to be
     * retried) and users whose repair never came back. */
    gw_dict_each(r->rooms, free_room_entry, NULL);
    gw_dict_each(r->users, free_user_entry, NULL);
    gw_dict_free(r->rooms);
    gw_dict_free(r->users);
    gw_presence_batch_free(r->presence_batch);
    free(r);
}

/* The integer after `key` ("\"seq\":") within the first `scan` bytes of a
 * stored message's head, which post.lua writes in a fixed order; -1 if none. */
static int64_t head_int(const char *json, size_t len, const char *key, size_t scan)
{
    size_t klen = strlen(key);
    if (scan > len)
        scan = len;
    for (size_t i = 0; i + klen < scan; i++) {
        if (memcmp(json + i, key, klen) == 0) {
            int64_t v = 0;
            size_t k = i + klen;
            if (k >= len || json[k] < '0' || json[k] > '9')
                return -1;
            while (k < len && json[k] >= '0' && json[k] <= '9' && v < INT64_MAX / 10)
                v = v * 10 + (json[k++] - '0');
            return v;
        }
    }
    return -1;
}

/* The ts of a stored message, which follows its seq in the head. */
static int64_t message_ts(const char *json, size_t len)
{
    return head_int(json, len, "\"ts\":", 128);
}

int64_t gw_router_message_seq(const char *json, size_t len)
{
    /* Stored messages start {"type":"message","room":"<name>","seq": or
     * {"type":"private","seq": (post.lua heads); room names are short. */
    return head_int(json, len, "\"seq\":", 96);
}

/* ---- sending ---- */

void gw_router_send_frame(struct gw_router *r, struct gw_client *c, const struct gw_frame *f)
{
    r->ops->deliver(c->owner, f);
}

/* ---- users ---- */

void gw_router_backlog_free(struct backlog *b)
{
    while (!STAILQ_EMPTY(b)) {
        struct backlog_entry *e = STAILQ_FIRST(b);
        STAILQ_REMOVE_HEAD(b, link);
        free(e);
    }
}

struct backlog_entry *gw_router_backlog_entry(int64_t seq, const char *data, size_t len)
{
    struct backlog_entry *e = malloc(sizeof(*e) + len);
    if (!e)
        return NULL;
    e->seq = seq;
    e->len = len;
    memcpy(e->data, data, len);
    return e;
}

bool gw_router_attach(struct gw_router *r, const struct chat_identity *who, void *owner,
                      struct gw_client **slot, bool *first, void (*ready)(bool ok, void *arg),
                      void *arg)
{
    char channel[GW_KEY_MAX];
    *first = false;
    if (!gw_key_user(channel, sizeof(channel), r->ctx->cfg->prefix, who->id, NULL))
        return false;
    struct gw_client *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    struct user *u = gw_dict_get(r->users, channel);
    if (!u) {
        u = gw_router_user_new(r, channel, who);
        if (!u) {
            free(c);
            return false;
        }
        *first = true;
    }
    c->owner = owner;
    c->who = who;
    c->user = u;
    LIST_INIT(&c->rooms);
    LIST_INSERT_HEAD(&u->clients, c, in_user);
    u->nclients++;
    LIST_INSERT_HEAD(&r->clients, c, in_node);
    LIST_INSERT_HEAD(&r->legacy_clients, c, in_mode);
    r->nclients++;
    *slot = c;
    /* Each client holds the user's channel, so each can wait for it. */
    gw_bus_subscribe(r->ctx->bus, u->channel, ready, arg);
    return true;
}

void gw_router_set_presence_batch(struct gw_router *r, struct gw_client *c)
{
    if (c->presence_batch)
        return;
    c->presence_batch = true;
    LIST_REMOVE(c, in_mode);
    LIST_INSERT_HEAD(&r->batch_clients, c, in_mode);
}

bool gw_router_detach(struct gw_router *r, struct gw_client *c)
{
    while (!LIST_EMPTY(&c->rooms))
        gw_router_leave(r, LIST_FIRST(&c->rooms));
    LIST_REMOVE(c, in_node);
    LIST_REMOVE(c, in_mode);
    r->nclients--;
    struct user *u = c->user;
    LIST_REMOVE(c, in_user);
    free(c);
    gw_bus_unsubscribe(r->ctx->bus, u->channel);
    if (--u->nclients > 0)
        return false;
    gw_dict_del(r->users, u->channel);
    gw_router_user_free(u);
    return true;
}

/* ---- rooms ---- */

void gw_router_room_backlog_clear(struct room *room)
{
    gw_router_backlog_free(&room->backlog);
    gw_metrics_gauge_add(room->router->ctx->metrics, GW_G_BACKLOG, -(int64_t)room->backlog_len);
    room->backlog_len = 0;
}

static void backlog_push(struct room *room, int64_t seq, const char *data, size_t len)
{
    if (room->backlog_len >= GW_BACKLOG_MAX) {
        chat_log(CHAT_LOG_WARN, "backlog_overflow room=%s", room->name);
        return;
    }
    struct backlog_entry *e = gw_router_backlog_entry(seq, data, len);
    if (!e)
        return;
    /* Kept in seq order: --durability replica publishes each message once
     * WAIT confirms it, so a room's messages may arrive out of order. */
    if (STAILQ_EMPTY(&room->backlog) || seq >= room->backlog_top) {
        STAILQ_INSERT_TAIL(&room->backlog, e, link);
        room->backlog_top = seq;
    } else if (seq < STAILQ_FIRST(&room->backlog)->seq) {
        STAILQ_INSERT_HEAD(&room->backlog, e, link);
    } else {
        struct backlog_entry *at = STAILQ_FIRST(&room->backlog);
        while (STAILQ_NEXT(at, link) && STAILQ_NEXT(at, link)->seq <= seq)
            at = STAILQ_NEXT(at, link);
        STAILQ_INSERT_AFTER(&room->backlog, at, e, link);
    }
    room->backlog_len++;
    gw_metrics_gauge_add(room->router->ctx->metrics, GW_G_BACKLOG, 1);
}

static void room_destroy(struct room *room)
{
    if (room->retry)
        event_free(room->retry);
    gw_router_room_backlog_clear(room);
    free(room);
}

void gw_router_room_maybe_free(struct gw_router *r, struct room *room)
{
    if (room->nmembers > 0 || room->repairing || room->pending_joins > 0 || room->dropping)
        return;
    gw_dict_del(r->rooms, room->channel);
    room_destroy(room);
}

static struct room *room_get(struct gw_router *r, const char *name, bool create)
{
    char channel[GW_KEY_MAX];
    if (!gw_key_room(channel, sizeof(channel), r->ctx->cfg->prefix, name, NULL))
        return NULL;
    struct room *room = gw_dict_get(r->rooms, channel);
    if (room || !create)
        return room;
    size_t nlen = strlen(name);
    room = calloc(1, sizeof(*room) + nlen + 1);
    if (!room)
        return NULL;
    memcpy(room->name, name, nlen + 1);
    snprintf(room->channel, sizeof(room->channel), "%s", channel);
    room->router = r;
    LIST_INIT(&room->members);
    STAILQ_INIT(&room->backlog);
    if (gw_dict_set(r->rooms, channel, room) != GW_OK) {
        free(room);
        return NULL;
    }
    return room;
}

struct room *gw_router_room_find(struct gw_router *r, const char *name)
{
    return room_get(r, name, false);
}

struct gw_member *gw_router_find_member(const struct gw_client *c, const char *room)
{
    struct gw_member *m;
    LIST_FOREACH(m, &c->rooms, in_client)
    if (strcmp(m->room->name, room) == 0)
        return m;
    return NULL;
}

struct gw_member *gw_router_any_member(const struct gw_client *c)
{
    return LIST_FIRST(&c->rooms);
}

struct gw_member *gw_member_next(const struct gw_member *m)
{
    return LIST_NEXT(m, in_client);
}

bool gw_member_joined(const struct gw_member *m)
{
    return m->state == MEMBER_JOINED;
}

const char *gw_member_room(const struct gw_member *m)
{
    return m->room->name;
}

bool gw_router_user_in_room(struct gw_router *r, const char *user_id, const char *room_name,
                            const struct gw_member *except)
{
    struct room *room = room_get(r, room_name, false);
    if (!room)
        return false;
    /* Only joined members count: a pending one may still fail, and two tabs
     * joining at once would each see the other and neither announce. */
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    if (m != except && m->state == MEMBER_JOINED && strcmp(m->client->who->id, user_id) == 0)
        return true;
    return false;
}

bool gw_router_join(struct gw_router *r, struct gw_client *c, const char *name,
                    struct gw_member **slot, void (*ready)(bool ok, void *arg), void *arg)
{
    struct room *room = room_get(r, name, true);
    if (!room)
        return false;
    struct gw_member *m = calloc(1, sizeof(*m));
    if (!m) {
        gw_router_room_maybe_free(r, room);
        return false;
    }
    m->client = c;
    m->room = room;
    m->state = MEMBER_PENDING;
    LIST_INSERT_HEAD(&room->members, m, in_room);
    LIST_INSERT_HEAD(&c->rooms, m, in_client);
    room->nmembers++;
    room->pending_joins++;
    *slot = m;
    gw_bus_subscribe(r->ctx->bus, room->channel, ready, arg);
    return true;
}

/* Walks with the next member saved: a delivery may end its own session,
 * which removes that member (never another one) from the room. */
void gw_router_deliver_seq(struct room *room, int64_t seq, const struct gw_frame *f)
{
    struct gw_member *m = LIST_FIRST(&room->members);
    while (m) {
        struct gw_member *next = LIST_NEXT(m, in_room);
        if (m->state == MEMBER_JOINED && seq > m->last_seq) {
            m->last_seq = seq;
            gw_router_send_frame(room->router, m->client, f);
        }
        m = next;
    }
}

void gw_router_join_done(struct gw_router *r, struct gw_member *m, int64_t snapshot_seq)
{
    struct room *room = m->room;
    m->state = MEMBER_JOINED;
    m->last_seq = snapshot_seq;
    room->pending_joins--;
    /* The snapshot is a baseline for gap detection: anything above it comes
     * live (subscribed before the snapshot), anything at or below it that is
     * still in flight is filtered per member. */
    if (!room->synced || snapshot_seq > room->live_seq)
        room->live_seq = snapshot_seq;
    room->synced = true;
    struct backlog_entry *e;
    STAILQ_FOREACH(e, &room->backlog, link)
    {
        if (e->seq <= m->last_seq)
            continue;
        if (e->seq > m->last_seq + 1) {
            /* What lies between the snapshot and e is not here yet
             * (published out of seq order, or lost): the room's repair
             * brings it from history, then the rest. */
            gw_router_start_repair(r, room);
            break;
        }
        struct gw_frame f;
        gw_frame_text(&f, e->data, e->len);
        m->last_seq = e->seq;
        gw_router_send_frame(r, m->client, &f);
    }
    if (room->pending_joins == 0 && !room->repairing)
        gw_router_room_backlog_clear(room);
}

void gw_router_rejoin_done(struct gw_member *m, int64_t snapshot_seq)
{
    if (snapshot_seq > m->last_seq)
        m->last_seq = snapshot_seq;
}

bool gw_router_leave(struct gw_router *r, struct gw_member *m)
{
    struct room *room = m->room;
    const char *uid = m->client->who->id;
    bool last = !gw_router_user_in_room(r, uid, room->name, m);
    LIST_REMOVE(m, in_room);
    LIST_REMOVE(m, in_client);
    room->nmembers--;
    if (m->state == MEMBER_PENDING)
        room->pending_joins--;
    gw_bus_unsubscribe(r->ctx->bus, room->channel);
    free(m);
    gw_router_room_maybe_free(r, room);
    return last;
}

/* ---- live traffic ---- */

static void room_live_message(struct gw_router *r, struct room *room, int64_t seq,
                              const char *payload, size_t len)
{
    if (room->repairing) {
        backlog_push(room, seq, payload, len);
        return;
    }
    if (room->synced && seq > room->live_seq + 1) {
        backlog_push(room, seq, payload, len);
        gw_router_start_repair(r, room);
        return;
    }
    if (room->pending_joins > 0)
        backlog_push(room, seq, payload, len);
    struct gw_frame_z z = {0};
    struct gw_frame f;
    gw_frame_text_shared(&f, &z, payload, len);
    gw_router_deliver_seq(room, seq, &f);
    gw_frame_z_deinit(&z);
    /* ts is Redis' clock at the append: skew between Redis and this node
     * shows up here, which is worth seeing too. */
    int64_t ts = message_ts(payload, len);
    if (ts > 0)
        gw_metrics_observe(r->ctx->metrics, GW_H_DELIVERY, (gw_now_ms() - ts) * 1000);
    if (seq > room->live_seq)
        room->live_seq = seq;
    room->synced = true;
}

void gw_router_room_event(struct room *room, const char *payload, size_t len, const char *skip_uid,
                          size_t skip_len)
{
    struct gw_frame_z z = {0};
    struct gw_frame f;
    gw_frame_text_shared(&f, &z, payload, len);
    struct gw_member *m = LIST_FIRST(&room->members);
    while (m) {
        struct gw_member *next = LIST_NEXT(m, in_room);
        const char *uid = m->client->who->id;
        bool skip = skip_uid && strlen(uid) == skip_len && memcmp(uid, skip_uid, skip_len) == 0;
        if (m->state == MEMBER_JOINED && !skip)
            gw_router_send_frame(room->router, m->client, &f);
        m = next;
    }
    gw_frame_z_deinit(&z);
}

void gw_router_node_event(struct gw_router *r, const char *payload, size_t len)
{
    struct gw_frame_z z = {0};
    struct gw_frame f;
    gw_frame_text_shared(&f, &z, payload, len);
    struct gw_client *c = LIST_FIRST(&r->clients);
    while (c) {
        struct gw_client *next = LIST_NEXT(c, in_node);
        gw_router_send_frame(r, c, &f);
        c = next;
    }
    gw_frame_z_deinit(&z);
}

void gw_router_send_each(struct gw_router *r, struct client_list *list, const char *payload,
                         size_t len)
{
    struct gw_frame_z z = {0};
    struct gw_frame f;
    gw_frame_text_shared(&f, &z, payload, len);
    struct gw_client *c = LIST_FIRST(list);
    while (c) {
        struct gw_client *next = LIST_NEXT(c, in_mode);
        gw_router_send_frame(r, c, &f);
        c = next;
    }
    gw_frame_z_deinit(&z);
}

static void room_traffic(struct gw_router *r, struct room *room, const char *payload, size_t len)
{
    if (len > 0 && payload[0] == '{') {
        int64_t seq = len > 17 && memcmp(payload, "{\"type\":\"message\"", 17) == 0
                          ? gw_router_message_seq(payload, len)
                          : -1;
        if (seq > 0)
            room_live_message(r, room, seq, payload, len);
        else
            gw_router_room_event(room, payload, len, NULL, 0);
    } else if (len > 2 && payload[0] == 't' && payload[1] == '|') {
        /* typing: "t|<user id>|<frame>", not echoed to the typist */
        const char *bar = memchr(payload + 2, '|', len - 2);
        if (bar)
            gw_router_room_event(room, bar + 1, len - (size_t)(bar + 1 - payload), payload + 2,
                                 (size_t)(bar - payload - 2));
    }
}

void gw_router_on_message(struct gw_router *r, const char *channel, size_t channel_len,
                          const char *payload, size_t len)
{
    (void)channel_len;
    if (strcmp(channel, r->all_channel) == 0) {
        if (gw_presence_batch_event(r, payload, len))
            gw_router_send_each(r, &r->legacy_clients, payload, len);
        else
            gw_router_node_event(r, payload, len);
        return;
    }
    if (strcmp(channel, r->control_channel) == 0) {
        gw_router_control(r, payload, len);
        return;
    }
    struct room *room = gw_dict_get(r->rooms, channel);
    if (room) {
        room_traffic(r, room, payload, len);
        return;
    }
    struct user *u = gw_dict_get(r->users, channel);
    if (u)
        gw_router_user_message(r, u, payload, len);
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
    struct user *u = value;
    c->fn(&u->who, c->arg);
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

/* Reports each user once: only at their first joined member. */
static bool first_joined_of_user(const struct room *room, const struct gw_member *m)
{
    const struct gw_member *p;
    LIST_FOREACH(p, &room->members, in_room)
    {
        if (p == m)
            return true;
        if (p->state == MEMBER_JOINED && strcmp(p->client->who->id, m->client->who->id) == 0)
            return false;
    }
    return true;
}

static void each_room_user_fn(const char *key, void *value, void *arg)
{
    (void)key;
    struct each_room_user_ctx *c = arg;
    struct room *room = value;
    struct gw_member *m;
    LIST_FOREACH(m, &room->members, in_room)
    if (m->state == MEMBER_JOINED && first_joined_of_user(room, m))
        c->fn(room->name, m->client->who, c->arg);
}

void gw_router_each_room_user(struct gw_router *r, gw_router_room_user_cb fn, void *arg)
{
    struct each_room_user_ctx c = {fn, arg};
    gw_dict_each(r->rooms, each_room_user_fn, &c);
}

size_t gw_router_session_count(const struct gw_router *r)
{
    return r->nclients;
}
