#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "presence.h"
#include "router.h"
#include "store.h"
#include "token.h"

struct gw_presence {
    struct gw_ctx *ctx;
    struct event *refresh_timer;
    struct event *reap_timer;
    int in_flight;
    int64_t ttl_ms;
};

/* Entries live for 2/3 of --presence-ttl and are refreshed six times per ttl,
 * so a live node misses several refreshes before its users look gone, and a
 * dead node's users are reaped within the ttl.  Scores are on Redis' clock
 * (the scripts read TIME: "now" is passed as ""), so a node whose clock is
 * off neither expires others' entries early nor keeps its own too long. */
static int64_t lifetime_ms(const struct gw_presence *p)
{
    return p->ttl_ms * 2 / 3;
}

/* presence_reap.lua removes at most this many per call. */
#define GW_REAP_BATCH 2000

static void on_done(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    (void)reply;
    struct gw_presence *p = arg;
    p->in_flight--;
}

/* A full batch means more may be expired: reap again at once (the timer's
 * next turn), until a call comes back short. */
static void on_reaped(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct gw_presence *p = arg;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= GW_REAP_BATCH &&
        p->reap_timer)
        event_active(p->reap_timer, EV_TIMEOUT, 0);
    on_done(bus, reply, arg);
}

static bool online_keys(struct gw_presence *p, const char *uid, char *set, char *holder,
                        char *channel, size_t len)
{
    const char *prefix = p->ctx->cfg->prefix;
    return gw_key_online(set, len, prefix) && gw_key_user(holder, len, prefix, uid, "nodes") &&
           gw_key_all(channel, len, prefix);
}

static bool room_keys(struct gw_presence *p, const char *room, const char *uid, char *set,
                      char *holder, char *channel, size_t len)
{
    const char *prefix = p->ctx->cfg->prefix;
    return gw_key_room(set, len, prefix, room, "members") &&
           gw_key_room_holders(holder, len, prefix, room, uid) &&
           gw_key_room(channel, len, prefix, room, NULL);
}

/* The popularity index a room's presence changes keep ("" for online). */
static const char *popular_key(struct gw_presence *p, const char *room, char *buf, size_t len)
{
    if (!room)
        return "";
    return gw_key_rooms_popular(buf, len, p->ctx->cfg->prefix) ? buf : NULL;
}

static void add(struct gw_presence *p, const char *room, const char *set, const char *holder,
                const char *uid, const char *channel, const char *event)
{
    char exp[32], pop_buf[GW_KEY_MAX];
    const char *pop = popular_key(p, room, pop_buf, sizeof(pop_buf));
    if (!pop)
        return;
    snprintf(exp, sizeof(exp), "%lld", (long long)lifetime_ms(p));
    const char *now = ""; /* Redis' TIME, and exp is a lifetime */
    const char *argv[] = {set,     holder, uid, p->ctx->cfg->node_id, exp, now,
                          channel, event,  pop, room ? room : ""};
    p->in_flight++;
    gw_store_eval(p->ctx->store, "presence_add", 2, 10, argv, NULL, on_done, p);
}

static void del(struct gw_presence *p, const char *room, const char *set, const char *holder,
                const char *uid, const char *channel, const char *event)
{
    char pop_buf[GW_KEY_MAX];
    const char *pop = popular_key(p, room, pop_buf, sizeof(pop_buf));
    if (!pop)
        return;
    const char *now = ""; /* Redis' TIME */
    const char *argv[] = {set,     holder, uid, p->ctx->cfg->node_id, now,
                          channel, event,  pop, room ? room : ""};
    p->in_flight++;
    gw_store_eval(p->ctx->store, "presence_remove", 2, 9, argv, NULL, on_done, p);
}

static char *online_event(const char *type, const struct chat_identity *who)
{
    char *user = gw_user_json_text(who);
    if (!user)
        return NULL;
    size_t n = strlen(user) + 64;
    char *ev = malloc(n);
    if (ev)
        snprintf(ev, n, "{\"type\":\"%s\",\"user\":%s}", type, user);
    free(user);
    return ev;
}

static char *room_event(const char *room, const char *event, const struct chat_identity *who)
{
    char *user = gw_user_json_text(who);
    if (!user)
        return NULL;
    size_t n = strlen(user) + strlen(room) + 96;
    char *ev = malloc(n);
    if (ev)
        snprintf(ev, n, "{\"type\":\"presence\",\"room\":\"%s\",\"event\":\"%s\",\"user\":%s}",
                 room, event, user);
    free(user);
    return ev;
}

void gw_presence_online(struct gw_presence *p, const struct chat_identity *who)
{
    char set[GW_KEY_MAX], holder[GW_KEY_MAX], channel[GW_KEY_MAX];
    if (!online_keys(p, who->id, set, holder, channel, sizeof(set)))
        return;
    char *ev = online_event("online", who);
    if (ev)
        add(p, NULL, set, holder, who->id, channel, ev);
    free(ev);
}

void gw_presence_offline(struct gw_presence *p, const struct chat_identity *who)
{
    char set[GW_KEY_MAX], holder[GW_KEY_MAX], channel[GW_KEY_MAX];
    if (!online_keys(p, who->id, set, holder, channel, sizeof(set)))
        return;
    char *ev = online_event("offline", who);
    if (ev)
        del(p, NULL, set, holder, who->id, channel, ev);
    free(ev);
    /* last_seen is informational: fire and forget. */
    char key[GW_KEY_MAX], now[32];
    if (!gw_key_user(key, sizeof(key), p->ctx->cfg->prefix, who->id, NULL))
        return;
    snprintf(now, sizeof(now), "%lld", (long long)gw_now_ms());
    const char *argv[] = {"HSET", key, "last_seen", now};
    p->in_flight++;
    gw_bus_command(p->ctx->bus, on_done, p, 4, argv, NULL);
    gw_store_touch_user(p->ctx->store, who->id);
}

void gw_presence_join(struct gw_presence *p, const char *room, const struct chat_identity *who)
{
    char set[GW_KEY_MAX], holder[GW_KEY_MAX], channel[GW_KEY_MAX];
    if (!room_keys(p, room, who->id, set, holder, channel, sizeof(set)))
        return;
    char *ev = room_event(room, "join", who);
    if (ev)
        add(p, room, set, holder, who->id, channel, ev);
    free(ev);
}

void gw_presence_leave(struct gw_presence *p, const char *room, const struct chat_identity *who)
{
    char set[GW_KEY_MAX], holder[GW_KEY_MAX], channel[GW_KEY_MAX];
    if (!room_keys(p, room, who->id, set, holder, channel, sizeof(set)))
        return;
    char *ev = room_event(room, "leave", who);
    if (ev)
        del(p, room, set, holder, who->id, channel, ev);
    free(ev);
}

/* ---- refresh ---- */

static void refresh_user(const struct chat_identity *who, void *arg)
{
    gw_presence_online(arg, who);
}

static void refresh_room_user(const char *room, const struct chat_identity *who, void *arg)
{
    gw_presence_join(arg, room, who);
}

static void heartbeat(struct gw_presence *p)
{
    char key[GW_KEY_MAX], ttl[32], value[256];
    if (!gw_key_node(key, sizeof(key), p->ctx->cfg->prefix, p->ctx->cfg->node_id))
        return;
    snprintf(ttl, sizeof(ttl), "%lld", (long long)(p->ttl_ms / 1000 > 0 ? p->ttl_ms / 1000 : 1));
    snprintf(value, sizeof(value), "{\"node\":\"%s\",\"ts\":%lld,\"connections\":%zu}",
             p->ctx->cfg->node_id, (long long)gw_now_ms(), gw_router_session_count(p->ctx->router));
    const char *argv[] = {"SET", key, value, "EX", ttl};
    p->in_flight++;
    gw_bus_command(p->ctx->bus, on_done, p, 5, argv, NULL);
}

void gw_presence_refresh_now(struct gw_presence *p)
{
    if (!gw_bus_up(p->ctx->bus))
        return;
    heartbeat(p);
    /* presence_add is idempotent: calling it again is the refresh. */
    gw_router_each_user(p->ctx->router, refresh_user, p);
    gw_router_each_room_user(p->ctx->router, refresh_room_user, p);
}

static void on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    gw_presence_refresh_now(arg);
}

/* ---- reaping other nodes' dead entries ---- */

static void reap(struct gw_presence *p, const char *room, const char *set,
                 const char *holder_prefix, const char *holder_suffix, const char *channel,
                 const char *head, const char *tail)
{
    char user_prefix[GW_KEY_MAX], user_suffix[8] = "}", pop_buf[GW_KEY_MAX];
    const char *pop = popular_key(p, room, pop_buf, sizeof(pop_buf));
    const char *now = ""; /* Redis' TIME */
    if (!pop || !gw_key_user_head(user_prefix, sizeof(user_prefix), p->ctx->cfg->prefix))
        return;
    const char *argv[] = {set,  now,         holder_prefix, holder_suffix, channel,         head,
                          tail, user_prefix, user_suffix,   pop,           room ? room : ""};
    p->in_flight++;
    gw_store_eval(p->ctx->store, "presence_reap", 1, 11, argv, NULL, on_reaped, p);
}

static void on_room_names(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_presence *p = arg;
    p->in_flight--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len > 64)
            continue;
        const char *room = e->str;
        const char *prefix = p->ctx->cfg->prefix;
        char set[GW_KEY_MAX], hp[GW_KEY_MAX], channel[GW_KEY_MAX], head[256];
        if (!gw_key_room(set, sizeof(set), prefix, room, "members") ||
            !gw_key_room_holders(hp, sizeof(hp), prefix, room, "") ||
            !gw_key_room(channel, sizeof(channel), prefix, room, NULL))
            continue;
        snprintf(head, sizeof(head),
                 "{\"type\":\"presence\",\"room\":\"%s\",\"event\":\"leave\","
                 "\"user\":",
                 room);
        reap(p, room, set, hp, "", channel, head, "}");
    }
}

static void on_swept(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < reply->elements; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                chat_log(CHAT_LOG_INFO, "room_expired room=%s", reply->element[i]->str);
    on_done(bus, reply, arg);
}

static void on_reap_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_presence *p = arg;
    if (!gw_bus_up(p->ctx->bus))
        return;
    /* Idle rooms go with the same cadence: the sweep looks at a few of the
     * least recently used, never at every room. */
    p->in_flight++;
    gw_store_sweep_rooms(p->ctx->store, on_swept, p);
    const char *prefix = p->ctx->cfg->prefix;
    char set[GW_KEY_MAX], hp[GW_KEY_MAX], channel[GW_KEY_MAX], popular[GW_KEY_MAX];
    if (!gw_key_online(set, sizeof(set), prefix) || !gw_key_user_head(hp, sizeof(hp), prefix) ||
        !gw_key_all(channel, sizeof(channel), prefix) ||
        !gw_key_rooms_popular(popular, sizeof(popular), prefix))
        return;
    reap(p, NULL, set, hp, "}:nodes", channel, "{\"type\":\"offline\",\"user\":", "}");
    /* Only rooms with someone present can hold entries to reap: the
     * popularity index lists exactly those, not every room ever made. */
    const char *argv[] = {"ZRANGE", popular, "0", "-1"};
    p->in_flight++;
    gw_bus_command(p->ctx->bus, on_room_names, p, 4, argv, NULL);
}

struct gw_presence *gw_presence_new(struct gw_ctx *ctx)
{
    struct gw_presence *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->ctx = ctx;
    p->ttl_ms = (int64_t)ctx->cfg->presence_ttl * 1000;
    p->refresh_timer = event_new(ctx->base, -1, EV_PERSIST, on_refresh_timer, p);
    p->reap_timer = event_new(ctx->base, -1, EV_PERSIST, on_reap_timer, p);
    if (!p->refresh_timer || !p->reap_timer) {
        gw_presence_free(p);
        return NULL;
    }
    int64_t every = p->ttl_ms / 6 > 200 ? p->ttl_ms / 6 : 200;
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)((every % 1000) * 1000)};
    evtimer_add(p->refresh_timer, &tv);
    evtimer_add(p->reap_timer, &tv);
    return p;
}

void gw_presence_node_down(struct gw_presence *p)
{
    char key[GW_KEY_MAX];
    if (!gw_key_node(key, sizeof(key), p->ctx->cfg->prefix, p->ctx->cfg->node_id))
        return;
    const char *argv[] = {"DEL", key};
    p->in_flight++;
    gw_bus_command(p->ctx->bus, on_done, p, 2, argv, NULL);
}

int gw_presence_in_flight(const struct gw_presence *p)
{
    return p->in_flight;
}

void gw_presence_free(struct gw_presence *p)
{
    if (!p)
        return;
    if (p->refresh_timer)
        event_free(p->refresh_timer);
    if (p->reap_timer)
        event_free(p->reap_timer);
    free(p);
}
