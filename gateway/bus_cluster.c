#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "bus_internal.h"
#include "log.h"
#include "metrics.h"
#include "slots.h"

/*
 * Redis Cluster routing on top of hiredis: one command connection per master
 * (opened on first use), each keyed command sent to the master of its slot
 * per the map CLUSTER SLOTS gave, MOVED answered by refreshing the map and
 * resending to the node named, ASK by ASKING + resending there once.  The
 * map is also refreshed every few seconds and whenever a master's connection
 * drops, so a failover or a reshard is followed without waiting for a MOVED.
 */

/* How often the map is read again without a reason. */
#define BUS_MAP_EVERY_MS 5000

static struct node_link *node_by_ac(struct gw_bus *bus, const redisAsyncContext *ac)
{
    for (size_t i = 0; i < bus->nnodes; i++)
        if (bus->nodes[i]->link.ac == ac)
            return bus->nodes[i];
    return NULL;
}

static void on_node_connect(const redisAsyncContext *ac, int status)
{
    struct gw_bus *bus = ac->data;
    struct node_link *n = node_by_ac(bus, ac);
    if (!n)
        return;
    if (status != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis_connect_failed conn=master addr=%s:%d error=\"%s\"", n->host,
                 n->port, ac->errstr);
        /* hiredis frees the context (and fails what was queued on it). */
        n->link.ac = NULL;
        n->link.state = LINK_CLOSED;
        gw_bus_cluster_refresh(bus);
        return;
    }
    n->link.state = LINK_READY;
    n->link.state_since_ms = gw_mono_ms();
}

static void on_node_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct gw_bus *bus = ac->data;
    struct node_link *n = node_by_ac(bus, ac);
    if (!n)
        return;
    n->link.ac = NULL;
    n->link.state = LINK_CLOSED;
    if (bus->freeing)
        return;
    chat_log(CHAT_LOG_WARN, "redis_disconnected conn=master addr=%s:%d error=\"%s\"", n->host,
             n->port, ac->err ? ac->errstr : "closed");
    gw_metrics_add(bus->ctx->metrics, GW_M_REDIS_RECONNECTS, 1);
    /* A master that went away may have been failed over: ask who serves now. */
    gw_bus_cluster_refresh(bus);
}

/* The link to host:port, created when new (not connected yet); NULL on no memory. */
static struct node_link *node_for(struct gw_bus *bus, const char *host, int port)
{
    for (size_t i = 0; i < bus->nnodes; i++)
        if (bus->nodes[i]->port == port && strcmp(bus->nodes[i]->host, host) == 0)
            return bus->nodes[i];
    if (strlen(host) >= sizeof(bus->nodes[0]->host))
        return NULL;
    struct node_link **nodes = realloc(bus->nodes, sizeof(*nodes) * (bus->nnodes + 1));
    if (!nodes)
        return NULL;
    bus->nodes = nodes;
    struct node_link *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    bus->nodes[bus->nnodes++] = n;
    return n;
}

/* Connects n unless it is; false when that fails at once. */
static bool node_connect(struct gw_bus *bus, struct node_link *n)
{
    if (n->link.ac)
        return true;
    redisAsyncContext *ac =
        gw_bus_connect(bus, &n->link, n->host, n->port, on_node_connect, on_node_disconnect);
    if (!ac)
        return false;
    /* Queued ahead of every command: hiredis writes in order once connected. */
    gw_bus_send_auth(ac, &bus->ctx->cfg->redis, NULL);
    return true;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata);

/* Sends p on ac (asking: after ASKING); false when hiredis refuses. */
static bool send_on(struct pending *p, redisAsyncContext *ac, bool asking)
{
    if (asking && redisAsyncCommand(ac, NULL, NULL, "ASKING") != REDIS_OK)
        return false;
    gw_bus_pending_sent(p, ac);
    return redisAsyncCommandArgv(ac, on_reply, p, p->argc, (const char **)p->argv, p->argvlen) ==
           REDIS_OK;
}

/* A MOVED or ASK answer: resend to the node named.  True when p went out
 * again (its callback is still to come). */
static bool redirect(struct gw_bus *bus, struct pending *p, const redisReply *reply)
{
    bool ask;
    unsigned slot;
    char host[256];
    int port;
    if (!reply || reply->type != REDIS_REPLY_ERROR || p->redirects >= BUS_REDIRECTS_MAX ||
        bus->freeing ||
        !gw_slots_parse_redirect(reply->str, &ask, &slot, host, sizeof(host), &port))
        return false;
    if (!ask)
        gw_bus_cluster_refresh(bus);
    struct node_link *n = node_for(bus, host, port);
    if (!n || !node_connect(bus, n))
        return false;
    p->redirects++;
    chat_log(CHAT_LOG_DEBUG, "redis_redirect kind=%s slot=%u addr=%s:%d", ask ? "ask" : "moved",
             slot, host, port);
    return send_on(p, n->link.ac, ask);
}

/* The slot's master for p now (the map may have changed since it went out). */
static redisAsyncContext *target_of(struct gw_bus *bus, const struct pending *p);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    redisAsyncContext *ac = target_of(p->bus, p);
    if (!ac || !send_on(p, ac, false))
        gw_bus_pending_done(p, NULL);
}

/* TRYAGAIN: the same command, a moment later; true when that is arranged. */
static bool try_again(struct gw_bus *bus, struct pending *p, const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "TRYAGAIN", 8) != 0 ||
        p->retries >= BUS_RETRIES_MAX || bus->freeing)
        return false;
    if (!p->retry_ev && !(p->retry_ev = evtimer_new(bus->ctx->base, on_retry, p)))
        return false;
    p->retries++;
    chat_log(CHAT_LOG_DEBUG, "redis_tryagain try=%d", p->retries);
    /* The next attempt starts from the slot's master again (ASK is per attempt). */
    p->redirects = 0;
    p->ac = NULL;
    struct timeval tv = {0, BUS_RETRY_MS * 1000};
    evtimer_add(p->retry_ev, &tv);
    return true;
}

/* A cluster between states (a failover under way, a slot still moving):
 * Redis is unavailable for that command, as when it is unreachable, and the
 * caller hears NULL (the client gets `unavailable` and may resend). */
static bool transient(const redisReply *reply)
{
    static const char *const codes[] = {"CLUSTERDOWN", "TRYAGAIN", "MOVED",
                                        "ASK",         "LOADING",  "MASTERDOWN"};
    if (!reply || reply->type != REDIS_REPLY_ERROR)
        return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(reply->str, codes[i], n) == 0 && (reply->str[n] == ' ' || !reply->str[n]))
            return true;
    }
    return false;
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct pending *p = privdata;
    if (redirect(p->bus, p, r) || try_again(p->bus, p, r))
        return;
    if (transient(r)) {
        chat_log(CHAT_LOG_WARN, "redis_cluster_unavailable error=\"%s\"", ((redisReply *)r)->str);
        gw_bus_pending_done(p, NULL);
        return;
    }
    gw_bus_pending_done(p, r);
}

/* The connection for a command of slot (GW_SLOTS_ANY: the seed's), connecting
 * its master if need be; NULL when there is none. */
static redisAsyncContext *target_for(struct gw_bus *bus, int slot)
{
    if (slot == GW_SLOTS_ANY)
        return bus->cmd.ac;
    if (!bus->map_ready)
        return NULL;
    int owner = gw_slots_owner(bus->slots, (unsigned)slot);
    struct node_link *n = owner < 0 ? NULL
                                    : node_for(bus, gw_slots_host(bus->slots, (size_t)owner),
                                               gw_slots_port(bus->slots, (size_t)owner));
    return n && node_connect(bus, n) ? n->link.ac : NULL;
}

static redisAsyncContext *target_of(struct gw_bus *bus, const struct pending *p)
{
    int slot = gw_slots_command_slot(p->argc, (const char **)p->argv, p->argvlen);
    return slot == GW_SLOTS_CROSS ? NULL : target_for(bus, slot);
}

int gw_bus_cluster_command(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg, int argc,
                           const char **argv, const size_t *argvlen)
{
    int slot = gw_slots_command_slot(argc, argv, argvlen);
    if (slot == GW_SLOTS_CROSS) {
        chat_log(CHAT_LOG_ERROR, "redis_cross_slot command=%s", argv[0]);
        cb(bus, NULL, arg);
        return GW_ERR_INVALID;
    }
    redisAsyncContext *ac = target_for(bus, slot);
    if (!ac) {
        cb(bus, NULL, arg);
        return GW_ERR_UNAVAILABLE;
    }
    struct pending *p = gw_bus_pending_new(bus, cb, arg, ac);
    if (!p)
        return GW_ERR_NOMEM;
    p->argv = calloc((size_t)argc, sizeof(*p->argv));
    p->argvlen = calloc((size_t)argc, sizeof(*p->argvlen));
    bool ok = p->argv && p->argvlen;
    p->argc = p->argv ? argc : 0; /* what gw_bus_pending_done frees */
    for (int i = 0; ok && i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        p->argv[i] = malloc(len + 1);
        if (!p->argv[i]) {
            ok = false;
            break;
        }
        memcpy(p->argv[i], argv[i], len);
        p->argv[i][len] = '\0';
        p->argvlen[i] = len;
    }
    if (!ok || !send_on(p, ac, false)) {
        gw_bus_pending_done(p, NULL);
        return GW_ERR_UNAVAILABLE;
    }
    return GW_OK;
}

static void on_slots(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct gw_bus *bus = privdata;
    redisReply *reply = r;
    bus->map_refreshing = false;
    if (!reply || bus->freeing)
        return;
    const char *host;
    int port;
    gw_bus_target(bus, &host, &port);
    if (reply->type == REDIS_REPLY_ERROR || gw_slots_load(bus->slots, reply, host) != 0) {
        chat_log(CHAT_LOG_WARN, "redis_cluster_map_failed error=\"%s\"",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "incomplete map");
        return;
    }
    if (!bus->map_ready)
        chat_log(CHAT_LOG_INFO, "redis_cluster_map masters=%zu", gw_slots_count(bus->slots));
    bus->map_ready = true;
    /* Sharded channels asked for before the map, or whose slot moved: they
     * go (again) to the master the map names now. */
    bus->shard_retry = true;
    gw_bus_notify_state(bus);
}

void gw_bus_cluster_refresh(struct gw_bus *bus)
{
    if (!bus->slots || bus->map_refreshing || bus->freeing || bus->cmd.state != LINK_READY)
        return;
    bus->map_refreshing = true;
    bus->map_at_ms = gw_mono_ms();
    if (redisAsyncCommand(bus->cmd.ac, on_slots, bus, "CLUSTER SLOTS") != REDIS_OK)
        bus->map_refreshing = false;
}

void gw_bus_cluster_watch(struct gw_bus *bus, int64_t now_ms, int64_t timeout_ms)
{
    for (size_t i = 0; i < bus->nnodes; i++) {
        struct node_link *n = bus->nodes[i];
        if (n->link.ac && n->link.state == LINK_CONNECTING &&
            now_ms - n->link.state_since_ms > timeout_ms) {
            chat_log(CHAT_LOG_WARN, "redis_hung conn=master addr=%s:%d reason=connect", n->host,
                     n->port);
            redisAsyncFree(n->link.ac);
            return;
        }
    }
    if (now_ms - bus->map_at_ms >= BUS_MAP_EVERY_MS)
        gw_bus_cluster_refresh(bus);
}

void gw_bus_cluster_drop(struct gw_bus *bus, redisAsyncContext *ac)
{
    struct node_link *n = node_by_ac(bus, ac);
    if (n && n->link.ac)
        redisAsyncFree(n->link.ac);
}

void gw_bus_cluster_close(struct gw_bus *bus)
{
    /* Those waiting to be sent again are on no connection: they fail here. */
    struct pending *p, *next;
    for (p = TAILQ_FIRST(&bus->in_flight); p; p = next) {
        next = TAILQ_NEXT(p, link);
        if (!p->ac)
            gw_bus_pending_done(p, NULL);
    }
    for (size_t i = 0; i < bus->nnodes; i++) {
        struct node_link *n = bus->nodes[i];
        redisAsyncContext *ac = n->link.ac;
        n->link.state = LINK_CLOSED;
        if (ac)
            redisAsyncFree(ac);
        n->link.ac = NULL;
    }
}

void gw_bus_cluster_free(struct gw_bus *bus)
{
    for (size_t i = 0; i < bus->nnodes; i++)
        free(bus->nodes[i]);
    free(bus->nodes);
    bus->nodes = NULL;
    bus->nnodes = 0;
    gw_slots_free(bus->slots);
    bus->slots = NULL;
}
