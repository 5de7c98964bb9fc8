#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "bus_internal.h"
#include "config.h"
#include "dict.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "slots.h"

#define BUS_BACKOFF_MAX_MS 2000
/* How often the watchdog looks, and how often the delivery probe goes out. */
#define BUS_WATCH_MS 250
#define BUS_PROBE_EVERY_MS 1000
/* A probe not back through the subscriber this long: delivery is stalled. */
#define BUS_PROBE_STALL_MS 3000

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gw_bus_schedule_reconnect(struct gw_bus *bus)
{
    if (bus->freeing || evtimer_pending(bus->reconnect_timer, NULL))
        return;
    struct timeval tv = {bus->backoff_ms / 1000, (bus->backoff_ms % 1000) * 1000};
    evtimer_add(bus->reconnect_timer, &tv);
    bus->backoff_ms *= 2;
    if (bus->backoff_ms > BUS_BACKOFF_MAX_MS)
        bus->backoff_ms = BUS_BACKOFF_MAX_MS;
}

void gw_bus_notify_state(struct gw_bus *bus)
{
    bool up = gw_bus_up(bus) && bus->sub.state == LINK_READY;
    if (up == bus->reported_up || bus->freeing)
        return;
    bus->reported_up = up;
    if (up) {
        /* The backoff is reset only once a probe came back (bus_sub.c): a
         * server that accepts and drops connections at once (maxclients)
         * would otherwise be retried ten times a second, forever. */
        chat_log(CHAT_LOG_INFO, "redis_up");
    } else {
        chat_log(CHAT_LOG_WARN, "redis_down");
    }
    if (bus->on_state)
        bus->on_state(up, bus->arg);
}

static void link_set(struct link *link, enum link_state state)
{
    link->state = state;
    link->state_since_ms = gw_mono_ms();
}

/* ---- commands ---- */

struct pending *gw_bus_pending_new(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg,
                                   redisAsyncContext *ac)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        cb(bus, NULL, arg);
        return NULL;
    }
    p->bus = bus;
    p->cb = cb;
    p->arg = arg;
    p->start_us = p->idle_since_us = now_us();
    gw_bus_pending_sent(p, ac);
    TAILQ_INSERT_TAIL(&bus->in_flight, p, link);
    return p;
}

void gw_bus_pending_sent(struct pending *p, redisAsyncContext *ac)
{
    p->ac = ac;
    p->sent_seq = ++p->bus->sent_seq;
}

void gw_bus_pending_done(struct pending *p, struct redisReply *reply)
{
    if (reply) {
        int64_t now = now_us();
        for (struct pending *q = TAILQ_NEXT(p, link); q; q = TAILQ_NEXT(q, link)) {
            if (q->ac == p->ac) {
                q->idle_since_us = now;
                break;
            }
        }
        gw_metrics_redis_rtt(p->bus->ctx->metrics, now - p->start_us);
    }
    TAILQ_REMOVE(&p->bus->in_flight, p, link);
    redisAsyncContext *outer = p->bus->reply_ac;
    uint64_t outer_seq = p->bus->reply_seq;
    p->bus->reply_ac = reply ? p->ac : NULL;
    p->bus->reply_seq = p->sent_seq;
    p->cb(p->bus, reply, p->arg);
    p->bus->reply_ac = outer;
    p->bus->reply_seq = outer_seq;
    if (p->retry_ev)
        event_free(p->retry_ev);
    for (int i = 0; i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    free(p->argvlen);
    free(p);
}

static void on_cmd_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    gw_bus_pending_done(privdata, r);
}

static void ignore_reply(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    (void)reply;
    (void)arg;
}

int gw_bus_command(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg, int argc, const char **argv,
                   const size_t *argvlen)
{
    if (!cb)
        cb = ignore_reply;
    if (bus->cmd.state < LINK_HANDSHAKE) {
        cb(bus, NULL, arg);
        return GW_ERR_UNAVAILABLE;
    }
    if (bus->slots)
        return gw_bus_cluster_command(bus, cb, arg, argc, argv, argvlen);
    struct pending *p = gw_bus_pending_new(bus, cb, arg, bus->cmd.ac);
    if (!p)
        return GW_ERR_NOMEM;
    if (redisAsyncCommandArgv(bus->cmd.ac, on_cmd_reply, p, argc, argv, argvlen) != REDIS_OK) {
        gw_bus_pending_done(p, NULL);
        return GW_ERR_UNAVAILABLE;
    }
    return GW_OK;
}

/*
 * WAIT confirms every write its connection sent before it, so a post whose
 * script went out before a WAIT still unanswered on the same connection
 * joins that WAIT instead of sending its own.  Under load the scripts'
 * answers come in batches, and each WAIT holds its connection, with every
 * command behind it, until a replica acknowledges: one per batch instead of
 * one per post.
 */
struct wait_waiter {
    struct wait_waiter *next;
    gw_bus_reply_cb cb;
    void *arg;
};

struct wait_batch {
    TAILQ_ENTRY(wait_batch) link;
    redisAsyncContext *ac; /* valid while the WAIT is unanswered: its reply ends the batch */
    uint64_t sent_seq;
    int replicas;
    struct wait_waiter *waiters, **tail;
};

static void on_waited(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct wait_batch *b = arg;
    TAILQ_REMOVE(&bus->waits, b, link);
    struct wait_waiter *w = b->waiters;
    free(b);
    while (w) {
        struct wait_waiter *next = w->next;
        w->cb(bus, reply, w->arg);
        free(w);
        w = next;
    }
}

int gw_bus_wait_replicas(struct gw_bus *bus, int replicas, int timeout_ms, gw_bus_reply_cb cb,
                         void *arg)
{
    redisAsyncContext *ac = bus->reply_ac;
    struct wait_waiter *w = ac && !bus->freeing ? calloc(1, sizeof(*w)) : NULL;
    if (!w) {
        cb(bus, NULL, arg);
        return GW_ERR_UNAVAILABLE;
    }
    w->cb = cb;
    w->arg = arg;
    struct wait_batch *b;
    TAILQ_FOREACH(b, &bus->waits, link)
    {
        if (b->ac == ac && b->sent_seq > bus->reply_seq && b->replicas >= replicas) {
            *b->tail = w;
            b->tail = &w->next;
            return GW_OK;
        }
    }
    if (!(b = calloc(1, sizeof(*b)))) {
        free(w);
        cb(bus, NULL, arg);
        return GW_ERR_NOMEM;
    }
    b->ac = ac;
    b->replicas = replicas;
    b->waiters = w;
    b->tail = &w->next;
    TAILQ_INSERT_TAIL(&bus->waits, b, link);
    struct pending *p = gw_bus_pending_new(bus, on_waited, b, ac);
    if (!p)
        return GW_ERR_NOMEM; /* on_waited told the waiter */
    b->sent_seq = p->sent_seq;
    if (redisAsyncCommand(ac, on_cmd_reply, p, "WAIT %d %d", replicas, timeout_ms) != REDIS_OK) {
        gw_bus_pending_done(p, NULL);
        return GW_ERR_UNAVAILABLE;
    }
    return GW_OK;
}

static void on_ready_ping(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct gw_bus *bus = ac->data;
    redisReply *reply = r;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        chat_log(CHAT_LOG_ERROR, "redis_handshake_failed error=\"%s\"", reply->str);
        redisAsyncDisconnect(ac);
        return;
    }
    link_set(&bus->cmd, LINK_READY);
    /* A cluster is usable once its slot map is in (bus_cluster.c then
     * notifies); the first refresh goes out now. */
    if (bus->slots)
        gw_bus_cluster_refresh(bus);
    gw_bus_notify_state(bus);
}

static void on_role(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct gw_bus *bus = ac->data;
    redisReply *reply = r;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[0]->str, "master") == 0)
        return;
    chat_log(CHAT_LOG_WARN, "redis_not_master addr=%s:%d", bus->master_host, bus->master_port);
    /* Ask a sentinel again; the PING behind this reply then finds the link gone. */
    gw_bus_sentinel_close(bus);
    redisAsyncFree(ac);
}

static void on_auth_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        chat_log(CHAT_LOG_ERROR, "redis_auth_failed conn=%s error=\"%s\"",
                 privdata ? "subscriber" : "command", reply->str);
    (void)ac;
}

void gw_bus_send_auth(redisAsyncContext *ac, const struct chat_redis_url *u, void *tag)
{
    if (!u->password)
        return;
    if (u->user)
        redisAsyncCommand(ac, on_auth_reply, tag, "AUTH %s %s", u->user, u->password);
    else
        redisAsyncCommand(ac, on_auth_reply, tag, "AUTH %s", u->password);
}

/* ---- connection lifecycle ---- */

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct gw_bus *bus = ac->data;
    bool is_cmd = ac == bus->cmd.ac;
    if (status != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis_connect_failed conn=%s error=\"%s\"",
                 is_cmd ? "command" : "subscriber", ac->errstr);
        /* hiredis frees the context after this callback. */
        struct link *link = is_cmd ? &bus->cmd : &bus->sub;
        link->ac = NULL;
        link->state = LINK_CLOSED;
        /* A cluster has other seeds: the next attempt tries the next one.  Behind
         * Sentinel, the master may have moved: ask again. */
        if (bus->slots)
            bus->seed++;
        if (bus->ctx->cfg->redis.sentinel)
            gw_bus_sentinel_close(bus);
        gw_bus_schedule_reconnect(bus);
        return;
    }
    const struct chat_redis_url *u = &bus->ctx->cfg->redis;
    if (is_cmd) {
        link_set(&bus->cmd, LINK_HANDSHAKE);
        gw_bus_send_auth(bus->cmd.ac, u, NULL);
        if (u->db != 0)
            redisAsyncCommand(bus->cmd.ac, on_auth_reply, NULL, "SELECT %d", u->db);
        /* Behind Sentinel the address may be stale (a master demoted a moment
         * before its switch was announced): only a master will do. */
        if (u->sentinel)
            redisAsyncCommand(bus->cmd.ac, on_role, NULL, "ROLE");
        redisAsyncCommand(bus->cmd.ac, on_ready_ping, NULL, "PING");
    } else {
        link_set(&bus->sub, LINK_READY);
        /* A fresh subscriber gets a full stall period before it is judged. */
        bus->probe_seen_ms = gw_mono_ms();
        gw_bus_send_auth(bus->sub.ac, u, bus);
        gw_bus_sub_resubscribe(bus);
        gw_bus_notify_state(bus);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct gw_bus *bus = ac->data;
    (void)status;
    if (ac == bus->cmd.ac) {
        bus->cmd.ac = NULL;
        bus->cmd.state = LINK_CLOSED;
        bus->ping_sent_ms = 0;
        bus->map_refreshing = false;
        chat_log(CHAT_LOG_WARN, "redis_disconnected conn=command error=\"%s\"",
                 ac->err ? ac->errstr : "closed");
    } else {
        bus->sub.ac = NULL;
        bus->sub.state = LINK_CLOSED;
        gw_bus_sub_lost(bus);
        chat_log(CHAT_LOG_WARN, "redis_disconnected conn=subscriber error=\"%s\"",
                 ac->err ? ac->errstr : "closed");
    }
    if (bus->freeing)
        return;
    gw_metrics_add(bus->ctx->metrics, GW_M_REDIS_RECONNECTS, 1);
    gw_bus_notify_state(bus);
    gw_bus_schedule_reconnect(bus);
}

void gw_bus_target(const struct gw_bus *bus, const char **host, int *port)
{
    const struct chat_redis_url *u = &bus->ctx->cfg->redis;
    if (u->sentinel) {
        *host = bus->master_host;
        *port = bus->master_port;
    } else if (u->cluster && u->nseeds > 0) {
        *host = u->seeds[bus->seed % u->nseeds].host;
        *port = u->seeds[bus->seed % u->nseeds].port;
    } else {
        *host = u->host;
        *port = u->port;
    }
}

redisAsyncContext *gw_bus_connect(struct gw_bus *bus, struct link *link, const char *host, int port,
                                  redisConnectCallback *on_up, redisDisconnectCallback *on_down)
{
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac)
        return NULL;
    if (ac->err) {
        chat_log(CHAT_LOG_WARN, "redis_connect_failed addr=%s:%d error=\"%s\"", host, port,
                 ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = bus;
    if (!gw_bus_events_attach(ac, bus->ctx->base)) {
        chat_log(CHAT_LOG_WARN, "redis_connect_failed addr=%s:%d error=\"out of memory\"", host,
                 port);
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_up);
    redisAsyncSetDisconnectCallback(ac, on_down);
    /* Dead peers (a host gone without a FIN) are noticed by the kernel. */
    redisEnableKeepAlive(&ac->c);
    link->ac = ac;
    link_set(link, LINK_CONNECTING);
    return ac;
}

static redisAsyncContext *connect_one(struct gw_bus *bus, struct link *link)
{
    const char *host;
    int port;
    gw_bus_target(bus, &host, &port);
    return gw_bus_connect(bus, link, host, port, on_connect, on_disconnect);
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_bus *bus = arg;
    if (bus->ctx->cfg->redis.sentinel) {
        gw_bus_sentinel_connect(bus);
        if (!bus->master_known) {
            gw_bus_schedule_reconnect(bus);
            return;
        }
    }
    if (!bus->cmd.ac)
        bus->cmd.ac = connect_one(bus, &bus->cmd);
    if (!bus->sub.ac)
        bus->sub.ac = connect_one(bus, &bus->sub);
    if (!bus->cmd.ac || !bus->sub.ac)
        gw_bus_schedule_reconnect(bus);
}

void gw_bus_link_reset(struct gw_bus *bus, struct link *link)
{
    (void)bus;
    if (link->ac)
        redisAsyncFree(link->ac);
}

/* Frees a connection that stopped answering: its pending callbacks get NULL
 * (the requests answer `unavailable`), and the reconnect timer takes over. */
static void link_drop(struct gw_bus *bus, struct link *link, const char *why, int64_t waited_ms)
{
    chat_log(CHAT_LOG_WARN, "redis_hung conn=%s reason=%s waited_ms=%lld",
             link == &bus->cmd ? "command" : "subscriber", why, (long long)waited_ms);
    /* Free, not Disconnect: a hung server never answers what is pending. */
    redisAsyncContext *ac = link->ac;
    if (ac)
        redisAsyncFree(ac);
}

static void send_probe(struct gw_bus *bus, int64_t now)
{
    char stamp[32];
    snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
    const char *argv[] = {"PUBLISH", bus->probe_channel, stamp};
    bus->probe_sent_ms = now;
    gw_bus_command(bus, NULL, NULL, 3, argv, NULL);
}

/*
 * Every BUS_WATCH_MS: a connect or handshake past --redis-timeout, or a
 * command unanswered that long with no reply at all coming on its
 * connection meanwhile, drops the connection; an idle command
 * connection is PINGed; a probe is published on this node's own channel and
 * must come back through the subscriber, or delivery counts as stalled (and
 * a subscriber that stays silent is dropped and rebuilt).
 */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_bus *bus = arg;
    int64_t now = gw_mono_ms();
    int64_t timeout = (int64_t)bus->ctx->cfg->redis_timeout * 1000;
    struct link *links[] = {&bus->cmd, &bus->sub};
    for (size_t i = 0; i < 2; i++) {
        struct link *l = links[i];
        if (l->ac && l->state != LINK_READY && now - l->state_since_ms > timeout) {
            link_drop(bus, l, l->state == LINK_CONNECTING ? "connect" : "handshake",
                      now - l->state_since_ms);
            return;
        }
    }
    struct pending *oldest = TAILQ_FIRST(&bus->in_flight);
    if (oldest && now - oldest->idle_since_us / 1000 > timeout) {
        int64_t waited = now - oldest->idle_since_us / 1000;
        if (bus->slots && oldest->ac != bus->cmd.ac) {
            chat_log(CHAT_LOG_WARN, "redis_hung conn=master reason=command waited_ms=%lld",
                     (long long)waited);
            gw_bus_cluster_drop(bus, oldest->ac);
        } else {
            link_drop(bus, &bus->cmd, "command", waited);
        }
        return;
    }
    if (bus->slots) {
        gw_bus_cluster_watch(bus, now, timeout);
        gw_bus_shard_watch(bus, now, timeout);
    }
    if (bus->cmd.state == LINK_READY && !oldest && now - bus->ping_sent_ms >= 1000) {
        bus->ping_sent_ms = now;
        const char *argv[] = {"PING"};
        gw_bus_command(bus, NULL, NULL, 1, argv, NULL);
    }
    if (bus->cmd.state == LINK_READY && bus->sub.state == LINK_READY &&
        now - bus->probe_sent_ms >= BUS_PROBE_EVERY_MS)
        send_probe(bus, now);
    bool stalled = !gw_bus_delivery_ok(bus);
    if (stalled != bus->stalled) {
        bus->stalled = stalled;
        chat_log(stalled ? CHAT_LOG_WARN : CHAT_LOG_INFO, "delivery_%s",
                 stalled ? "stalled" : "ok");
        if (stalled)
            gw_metrics_add(bus->ctx->metrics, GW_M_PROBE_FAILURES, 1);
    }
    /* Commands flow but the probes do not come back: the subscriber is
     * dead in a way TCP has not told us (a killed pubsub client whose FIN was
     * lost, a frozen server).  Rebuild it; resubscribing repairs the gaps. */
    if (bus->sub.state == LINK_READY && bus->cmd.state == LINK_READY &&
        now - bus->probe_seen_ms > BUS_PROBE_STALL_MS + timeout)
        link_drop(bus, &bus->sub, "probe", now - bus->probe_seen_ms);
}

bool gw_bus_delivery_ok(const struct gw_bus *bus)
{
    return bus->cmd.state == LINK_READY && bus->sub.state == LINK_READY &&
           gw_mono_ms() - bus->probe_seen_ms <= BUS_PROBE_STALL_MS &&
           (!bus->slots || gw_bus_shard_ok(bus));
}

const char *gw_bus_publish_cmd(const struct gw_bus *bus, const char *channel)
{
    return gw_bus_sharded(bus, channel) ? "SPUBLISH" : "PUBLISH";
}

int gw_bus_publish(struct gw_bus *bus, const char *channel, const char *msg, size_t len,
                   gw_bus_reply_cb cb, void *arg)
{
    const char *argv[] = {gw_bus_publish_cmd(bus, channel), channel, msg};
    const size_t lens[] = {strlen(argv[0]), strlen(channel), len};
    return gw_bus_command(bus, cb, arg, 3, argv, lens);
}

const char *gw_bus_script_publish_cmd(const struct gw_bus *bus, const char *key,
                                      const char *channel)
{
    if (!gw_bus_sharded(bus, channel))
        return "PUBLISH";
    return gw_slots_keyslot(key, strlen(key)) == gw_slots_keyslot(channel, strlen(channel))
               ? "SPUBLISH"
               : "";
}

void gw_bus_publish_returned(struct gw_bus *bus, const struct redisReply *reply, size_t from,
                             const struct redisReply *payload)
{
    size_t step = payload ? 1 : 2;
    for (size_t i = from; i + step - 1 < reply->elements; i += step) {
        const redisReply *ch = reply->element[i];
        const redisReply *msg = payload ? payload : reply->element[i + 1];
        if (ch->type == REDIS_REPLY_STRING && msg->type == REDIS_REPLY_STRING)
            gw_bus_publish(bus, ch->str, msg->str, msg->len, NULL, NULL);
    }
}

struct gw_bus *gw_bus_new(struct gw_ctx *ctx, gw_bus_message_cb on_message,
                          gw_bus_state_cb on_state, gw_bus_subscribed_cb on_subscribed, void *arg)
{
    struct gw_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    bus->ctx = ctx;
    bus->on_message = on_message;
    bus->on_state = on_state;
    bus->on_subscribed = on_subscribed;
    bus->arg = arg;
    bus->backoff_ms = BUS_BACKOFF_MIN_MS;
    TAILQ_INIT(&bus->in_flight);
    TAILQ_INIT(&bus->waits);
    bus->channels = gw_dict_new();
    if (ctx->cfg->redis.cluster && !(bus->slots = gw_slots_new())) {
        gw_bus_free(bus);
        return NULL;
    }
    bus->reconnect_timer = evtimer_new(ctx->base, on_reconnect_timer, bus);
    bus->watchdog = event_new(ctx->base, -1, EV_PERSIST, on_watchdog, bus);
    if (!bus->channels || !bus->reconnect_timer || !bus->watchdog ||
        !gw_key_probe(bus->probe_channel, sizeof(bus->probe_channel), ctx->cfg->prefix,
                      ctx->cfg->node_id)) {
        gw_bus_free(bus);
        return NULL;
    }
    struct timeval every = {0, BUS_WATCH_MS * 1000};
    evtimer_add(bus->watchdog, &every);
    gw_bus_subscribe(bus, bus->probe_channel, NULL, NULL);
    if (ctx->cfg->redis.sentinel) {
        /* cmd and sub follow once a sentinel has named the master. */
        gw_bus_sentinel_connect(bus);
        gw_bus_schedule_reconnect(bus);
        return bus;
    }
    bus->cmd.ac = connect_one(bus, &bus->cmd);
    bus->sub.ac = connect_one(bus, &bus->sub);
    if (!bus->cmd.ac || !bus->sub.ac)
        gw_bus_schedule_reconnect(bus);
    return bus;
}

/* Frees one connection: its pending callbacks get NULL replies, and any
 * command they send meanwhile fails at once (the link is CLOSED first). */
static void link_close(struct link *link)
{
    redisAsyncContext *ac = link->ac;
    link->state = LINK_CLOSED;
    if (ac)
        redisAsyncFree(ac);
    link->ac = NULL;
}

void gw_bus_close(struct gw_bus *bus)
{
    if (!bus || bus->freeing)
        return;
    bus->freeing = true;
    if (bus->slots) {
        gw_bus_cluster_close(bus);
        gw_bus_shard_close(bus);
    }
    gw_bus_sentinel_close(bus);
    link_close(&bus->cmd);
    link_close(&bus->sub);
}

void gw_bus_free(struct gw_bus *bus)
{
    if (!bus)
        return;
    gw_bus_close(bus);
    if (bus->channels) {
        gw_bus_sub_free_channels(bus);
        gw_dict_free(bus->channels);
    }
    if (bus->reconnect_timer)
        event_free(bus->reconnect_timer);
    if (bus->watchdog)
        event_free(bus->watchdog);
    gw_bus_cluster_free(bus);
    free(bus);
}

bool gw_bus_up(const struct gw_bus *bus)
{
    return bus->cmd.state == LINK_READY && (!bus->slots || bus->map_ready);
}

bool gw_bus_subscriber_up(const struct gw_bus *bus)
{
    return bus->sub.state == LINK_READY;
}
