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
#include "protocol.h"
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

/* presence_expired.lua lists at most this many per call. */
#define GW_REAP_BATCH 2000

static void on_done(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    (void)reply;
    struct gw_presence *p = arg;
    p->in_flight--;
}

/* The keys of one presence set: the set itself, the user hash beside it, the
 * holder set of one user, and the channel its events go to.  A room's are in
 * the room's hash slot; the online ones in the slot of "<prefix>online". */
struct pkeys {
    char set[GW_KEY_MAX];
    char users[GW_KEY_MAX];
    char holder[GW_KEY_MAX];
    char channel[GW_KEY_MAX];
};

static bool online_keys(struct gw_presence *p, const char *uid, struct pkeys *k)
{
    const char *prefix = p->ctx->cfg->prefix;
    return gw_key_online(k->set, sizeof(k->set), prefix) &&
           gw_key_online_users(k->users, sizeof(k->users), prefix) &&
           (!uid || gw_key_online_holders(k->holder, sizeof(k->holder), prefix, uid)) &&
           gw_key_all(k->channel, sizeof(k->channel), prefix);
}

static bool room_keys(struct gw_presence *p, const char *room, const char *uid, struct pkeys *k)
{
    const char *prefix = p->ctx->cfg->prefix;
    return gw_key_room(k->set, sizeof(k->set), prefix, room, "members") &&
           gw_key_room(k->users, sizeof(k->users), prefix, room, "users") &&
           (!uid || gw_key_room_holders(k->holder, sizeof(k->holder), prefix, room, uid)) &&
           gw_key_room(k->channel, sizeof(k->channel), prefix, room, NULL);
}

/* The rooms popularity index lives in the rooms hash's slot, out of reach of
 * the presence scripts, which run in the room's: they return how many are
 * present and the index is set to that.  Replies of several nodes may land
 * out of order; every refresh and every reaper pass sets it again, so it is
 * off for a few seconds at most (it only orders the welcome list, and tells
 * the reaper which rooms to look at). */
static void set_popular(struct gw_presence *p, const char *room, long long present)
{
    char key[GW_KEY_MAX], n[24];
    if (!gw_key_rooms_popular(key, sizeof(key), p->ctx->cfg->prefix))
        return;
    snprintf(n, sizeof(n), "%lld", present);
    p->in_flight++;
    if (present > 0) {
        const char *argv[] = {"ZADD", key, n, room};
        gw_bus_command(p->ctx->bus, on_done, p, 4, argv, NULL);
    } else {
        const char *argv[] = {"ZREM", key, room};
        gw_bus_command(p->ctx->bus, on_done, p, 3, argv, NULL);
    }
}

/* A presence script's call for one room (room "" for online). */
struct room_call {
    struct gw_presence *p;
    char room[CHAT_ROOM_MAX + 1];
};

static struct room_call *room_call_new(struct gw_presence *p, const char *room)
{
    struct room_call *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return NULL;
    rc->p = p;
    snprintf(rc->room, sizeof(rc->room), "%s", room ? room : "");
    p->in_flight++;
    return rc;
}

/* presence_add/presence_remove answer {changed, present}. */
static void on_changed(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct room_call *rc = arg;
    if (rc->room[0] && reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_INTEGER)
        set_popular(rc->p, rc->room, reply->element[1]->integer);
    rc->p->in_flight--;
    free(rc);
}

static void add(struct gw_presence *p, const char *room, const struct pkeys *k, const char *uid,
                const char *event, const char *user)
{
    char exp[32];
    snprintf(exp, sizeof(exp), "%lld", (long long)lifetime_ms(p));
    const char *now = ""; /* Redis' TIME, and exp is a lifetime */
    const char *argv[] = {k->set,
                          k->holder,
                          k->users,
                          uid,
                          p->ctx->cfg->node_id,
                          exp,
                          now,
                          k->channel,
                          event,
                          user,
                          gw_bus_script_publish_cmd(p->ctx->bus, k->set, k->channel)};
    struct room_call *rc = room_call_new(p, room);
    if (rc)
        gw_store_eval(p->ctx->store, "presence_add", 3, 11, argv, NULL, on_changed, rc);
}

static void del(struct gw_presence *p, const char *room, const struct pkeys *k, const char *uid,
                const char *event)
{
    const char *now = ""; /* Redis' TIME */
    const char *argv[] = {k->set,
                          k->holder,
                          k->users,
                          uid,
                          p->ctx->cfg->node_id,
                          now,
                          k->channel,
                          event,
                          gw_bus_script_publish_cmd(p->ctx->bus, k->set, k->channel)};
    struct room_call *rc = room_call_new(p, room);
    if (rc)
        gw_store_eval(p->ctx->store, "presence_remove", 3, 9, argv, NULL, on_changed, rc);
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
    struct pkeys k;
    if (!online_keys(p, who->id, &k))
        return;
    char *ev = online_event("online", who);
    char *user = gw_user_json_text(who);
    if (ev && user)
        add(p, NULL, &k, who->id, ev, user);
    free(ev);
    free(user);
}

void gw_presence_offline(struct gw_presence *p, const struct chat_identity *who)
{
    struct pkeys k;
    if (!online_keys(p, who->id, &k))
        return;
    char *ev = online_event("offline", who);
    if (ev)
        del(p, NULL, &k, who->id, ev);
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
    struct pkeys k;
    if (!room_keys(p, room, who->id, &k))
        return;
    char *ev = room_event(room, "join", who);
    char *user = gw_user_json_text(who);
    if (ev && user)
        add(p, room, &k, who->id, ev, user);
    free(ev);
    free(user);
}

void gw_presence_leave(struct gw_presence *p, const char *room, const struct chat_identity *who)
{
    struct pkeys k;
    if (!room_keys(p, room, who->id, &k))
        return;
    char *ev = room_event(room, "leave", who);
    if (ev)
        del(p, room, &k, who->id, ev);
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

/* One presence set's reaping: presence_expired.lua lists the expired ids,
 * presence_reap.lua (given each one's holder set among its keys, as Redis
 * Cluster wants) removes those still expired and announces them. */
struct reap_call {
    struct gw_presence *p;
    char room[CHAT_ROOM_MAX + 1]; /* "" for online */
    struct pkeys k;
    char head[256];
    long long popular; /* the index's score of the room, -1 when unknown */
};

static void reap_call_free(struct reap_call *rc)
{
    rc->p->in_flight--;
    free(rc);
}

static void reap_settle(struct reap_call *rc, long long present)
{
    if (rc->room[0] && present != rc->popular)
        set_popular(rc->p, rc->room, present);
}

static void on_reaped(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct reap_call *rc = arg;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER)
        reap_settle(rc, reply->element[0]->integer);
    reap_call_free(rc);
}

static void on_expired(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct reap_call *rc = arg;
    struct gw_presence *p = rc->p;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        reap_call_free(rc);
        return;
    }
    size_t n = reply->elements - 1;
    if (n == 0) {
        reap_settle(rc, reply->element[0]->integer);
        reap_call_free(rc);
        return;
    }
    /* A full batch means more may be expired: reap again at once (the
     * timer's next turn), until a batch comes back short. */
    if (n >= GW_REAP_BATCH && p->reap_timer)
        event_active(p->reap_timer, EV_TIMEOUT, 0);
    /* keys: set, users, holders...; args: now, channel, head, tail, publish, ids... */
    size_t argc = 2 + n + 5 + n;
    const char **argv = calloc(argc, sizeof(*argv));
    char(*holders)[GW_KEY_MAX] = calloc(n, GW_KEY_MAX);
    size_t m = 0;
    if (!argv || !holders)
        goto out;
    const char *prefix = p->ctx->cfg->prefix;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i + 1];
        if (e->type != REDIS_REPLY_STRING || !chat_valid_user_id(e->str) ||
            !(rc->room[0] ? gw_key_room_holders(holders[m], GW_KEY_MAX, prefix, rc->room, e->str)
                          : gw_key_online_holders(holders[m], GW_KEY_MAX, prefix, e->str)))
            continue;
        argv[2 + m] = holders[m];
        argv[2 + n + 5 + m] = e->str;
        m++;
    }
    if (m == 0)
        goto out;
    /* The ids follow the holder keys directly: close the gap left by ids skipped above. */
    argv[0] = rc->k.set;
    argv[1] = rc->k.users;
    const char **args = argv + 2 + m;
    args[0] = ""; /* Redis' TIME */
    args[1] = rc->k.channel;
    args[2] = rc->head;
    args[3] = "}";
    args[4] = gw_bus_script_publish_cmd(p->ctx->bus, rc->k.set, rc->k.channel);
    for (size_t i = 0; i < m; i++)
        args[5 + i] = argv[2 + n + 5 + i];
    gw_store_eval(p->ctx->store, "presence_reap", (int)(2 + m), (int)(2 + m + 5 + m), argv, NULL,
                  on_reaped, rc);
    rc = NULL;
out:
    free(argv);
    free(holders);
    if (rc)
        reap_call_free(rc);
}

static void reap(struct gw_presence *p, const char *room, long long popular)
{
    struct reap_call *rc = calloc(1, sizeof(*rc));
    if (!rc)
        return;
    rc->p = p;
    rc->popular = popular;
    bool ok;
    if (room) {
        snprintf(rc->room, sizeof(rc->room), "%s", room);
        ok = room_keys(p, room, NULL, &rc->k);
        snprintf(rc->head, sizeof(rc->head),
                 "{\"type\":\"presence\",\"room\":\"%s\",\"event\":\"leave\",\"user\":", room);
    } else {
        ok = online_keys(p, NULL, &rc->k);
        snprintf(rc->head, sizeof(rc->head), "{\"type\":\"offline\",\"user\":");
    }
    if (!ok) {
        free(rc);
        return;
    }
    p->in_flight++;
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", GW_REAP_BATCH);
    const char *argv[] = {rc->k.set, "", limit}; /* "": Redis' TIME */
    gw_store_eval(p->ctx->store, "presence_expired", 1, 3, argv, NULL, on_expired, rc);
}

static void on_room_names(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_presence *p = arg;
    p->in_flight--;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *e = reply->element[i], *score = reply->element[i + 1];
        if (e->type != REDIS_REPLY_STRING || e->len > CHAT_ROOM_MAX ||
            !chat_valid_room_name(e->str))
            continue;
        long long popular = score->type == REDIS_REPLY_STRING ? atoll(score->str) : -1;
        reap(p, e->str, popular);
    }
}

static void on_swept(void *arg)
{
    struct gw_presence *p = arg;
    p->in_flight--;
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
    char popular[GW_KEY_MAX];
    if (!gw_key_rooms_popular(popular, sizeof(popular), p->ctx->cfg->prefix))
        return;
    reap(p, NULL, -1);
    /* Only rooms with someone present can hold entries to reap: the
     * popularity index lists exactly those, not every room ever made. */
    const char *argv[] = {"ZRANGE", popular, "0", "-1", "WITHSCORES"};
    p->in_flight++;
    gw_bus_command(p->ctx->bus, on_room_names, p, 5, argv, NULL);
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
