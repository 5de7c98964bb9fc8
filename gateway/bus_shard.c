#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "bus_internal.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "slots.h"

/*
 * Sharded pub/sub on a Redis Cluster: a room's or a user's channel is
 * SSUBSCRIBEd on the master that owns its hash tag's slot, where the scripts
 * SPUBLISH it, so a message crosses only that shard.  hiredis 0.14's async
 * layer recognises only subscribe/message pushes (an ssubscribe answer would
 * be taken for the reply of the next command), so these connections are a
 * bufferevent each, with hiredis's reply reader on the bytes.  The channel
 * states stay in bus_sub.c; this file moves bytes and says which answer
 * belongs to which command.
 */

enum shard_cmd_kind { SC_AUTH, SC_PING, SC_SUB, SC_UNSUB };

struct shard_cmd {
    struct shard_cmd *next;
    enum shard_cmd_kind kind;
    char channel[];
};

bool gw_bus_sharded(const struct gw_bus *bus, const char *channel)
{
    return bus->slots && gw_key_channel_sharded(bus->ctx->cfg->prefix, channel);
}

static void link_set(struct shard_link *l, enum link_state state)
{
    l->state = state;
    l->state_since_ms = gw_mono_ms();
}

static void push_sent(struct shard_link *l, enum shard_cmd_kind kind, const char *channel)
{
    size_t len = channel ? strlen(channel) : 0;
    struct shard_cmd *c = malloc(sizeof(*c) + len + 1);
    if (!c)
        return; /* its answer then pairs with nothing: the link is dropped (no_match) */
    c->next = NULL;
    c->kind = kind;
    memcpy(c->channel, channel ? channel : "", len + 1);
    *l->sent_tail = c;
    l->sent_tail = &c->next;
}

static struct shard_cmd *pop_sent(struct shard_link *l)
{
    struct shard_cmd *c = l->sent;
    if (c && !(l->sent = c->next))
        l->sent_tail = &l->sent;
    return c;
}

/* Writes a command (NUL-terminated arguments) and remembers what it was. */
static bool send_cmd(struct shard_link *l, enum shard_cmd_kind kind, const char *channel, int argc,
                     const char **argv)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0)
        return false;
    bool ok = bufferevent_write(l->bev, cmd, (size_t)len) == 0;
    redisFreeCommand(cmd);
    if (ok)
        push_sent(l, kind, channel);
    return ok;
}

bool gw_bus_shard_send(struct shard_link *l, bool subscribe, const char *channel)
{
    if (!l->bev)
        return false;
    const char *argv[] = {subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE", channel};
    return send_cmd(l, subscribe ? SC_SUB : SC_UNSUB, channel, 2, argv);
}

/* Frees the connection's socket, reader and queue: l is CLOSED. */
static void shard_reset(struct shard_link *l)
{
    if (l->bev)
        bufferevent_free(l->bev);
    l->bev = NULL;
    if (l->reader)
        redisReaderFree(l->reader);
    l->reader = NULL;
    struct shard_cmd *c;
    while ((c = pop_sent(l)))
        free(c);
    l->state = LINK_CLOSED;
    l->ping_sent_ms = 0;
}

/* Closes l's connection; its channels are lost (and subscribed again). */
static void shard_drop(struct shard_link *l, const char *why)
{
    struct gw_bus *bus = l->bus;
    if (!l->bev)
        return;
    if (!bus->freeing)
        chat_log(CHAT_LOG_WARN, "redis_disconnected conn=shard addr=%s:%d error=\"%s\"", l->host,
                 l->port, why);
    shard_reset(l);
    if (bus->freeing)
        return;
    gw_metrics_add(bus->ctx->metrics, GW_M_REDIS_RECONNECTS, 1);
    gw_bus_sub_shard_lost(bus, l);
    /* A master that went away may have been failed over: ask who serves now. */
    gw_bus_cluster_refresh(bus);
}

/* One answer of Redis, in order; false when it fits no command sent (the
 * stream is out of step: drop the connection). */
static bool on_answer(struct shard_link *l, const redisReply *r)
{
    struct gw_bus *bus = l->bus;
    l->pong_ms = gw_mono_ms();
    /* A push: {kind, channel, ...}. */
    bool push = r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
                r->element[0]->type == REDIS_REPLY_STRING &&
                r->element[1]->type == REDIS_REPLY_STRING;
    const char *kind = push ? r->element[0]->str : NULL;
    if (kind && strcasecmp(kind, "smessage") == 0) {
        gw_bus_sub_push(bus, l, r);
        return true;
    }
    /* An unasked sunsubscribe: the slot has moved to another master. */
    bool unasked = kind && strcasecmp(kind, "sunsubscribe") == 0 &&
                   (!l->sent || l->sent->kind != SC_UNSUB ||
                    strcmp(l->sent->channel, r->element[1]->str) != 0);
    if (unasked) {
        chat_log(CHAT_LOG_INFO, "redis_shard_moved channel=%s addr=%s:%d", r->element[1]->str,
                 l->host, l->port);
        gw_bus_sub_push(bus, l, r);
        return true;
    }
    struct shard_cmd *c = pop_sent(l);
    if (!c)
        return false;
    bool ok = true;
    if (r->type == REDIS_REPLY_ERROR) {
        bool ask;
        unsigned slot;
        char host[256];
        int port;
        if (c->kind == SC_SUB || c->kind == SC_UNSUB) {
            bool moved = gw_slots_parse_redirect(r->str, &ask, &slot, host, sizeof(host), &port);
            chat_log(CHAT_LOG_INFO, "redis_shard_refused channel=%s error=\"%s\"", c->channel,
                     r->str);
            if (moved)
                gw_bus_cluster_refresh(bus);
            gw_bus_sub_refused(bus, l, c->channel, moved ? host : NULL, port);
        } else {
            chat_log(CHAT_LOG_ERROR, "redis_shard_error addr=%s:%d error=\"%s\"", l->host, l->port,
                     r->str);
        }
    } else if (c->kind == SC_PING) {
        l->ping_sent_ms = 0;
    } else if (c->kind == SC_SUB || c->kind == SC_UNSUB) {
        ok = kind != NULL;
        if (ok)
            gw_bus_sub_push(bus, l, r);
    }
    free(c);
    return ok;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct shard_link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    const char *bytes = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    if (!bytes || redisReaderFeed(l->reader, bytes, n) != REDIS_OK) {
        shard_drop(l, "no memory");
        return;
    }
    evbuffer_drain(in, n);
    /* Stop when an answer ended the link (one out of step). */
    while (l->bev) {
        void *reply = NULL;
        if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
            shard_drop(l, "protocol error");
            return;
        }
        if (!reply)
            return;
        bool ok = on_answer(l, reply);
        freeReplyObject(reply);
        if (!ok) {
            shard_drop(l, "answer out of step");
            return;
        }
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct shard_link *l = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int fd = (int)bufferevent_getfd(bev);
        int one = 1;
        /* Dead peers (a host gone without a FIN) are noticed by the kernel. */
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        link_set(l, LINK_READY);
        l->pong_ms = gw_mono_ms();
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        shard_drop(l, what & BEV_EVENT_EOF ? "closed" : "error");
}

/* Opens l's connection; false when that fails at once. */
static bool shard_connect(struct gw_bus *bus, struct shard_link *l)
{
    l->bev = bufferevent_socket_new(bus->ctx->base, -1, BEV_OPT_CLOSE_ON_FREE);
    l->reader = redisReaderCreate();
    if (!l->bev || !l->reader)
        goto fail;
    bufferevent_setcb(l->bev, on_read, NULL, on_event, l);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    link_set(l, LINK_CONNECTING);
    /* Bytes written now go out once connected, AUTH first. */
    const struct chat_redis_url *u = &bus->ctx->cfg->redis;
    if (u->password) {
        const char *argv[] = {"AUTH", u->user ? u->user : u->password, u->password};
        if (!send_cmd(l, SC_AUTH, NULL, u->user ? 3 : 2, argv))
            goto fail;
    }
    if (bufferevent_socket_connect_hostname(l->bev, NULL, AF_UNSPEC, l->host, l->port) != 0)
        goto fail;
    return true;
fail:
    chat_log(CHAT_LOG_WARN, "redis_connect_failed conn=shard addr=%s:%d", l->host, l->port);
    shard_reset(l);
    return false;
}

struct shard_link *gw_bus_shard_link(struct gw_bus *bus, const char *channel, const char *host,
                                     int port)
{
    if (bus->freeing)
        return NULL;
    if (!host) {
        if (!bus->map_ready)
            return NULL;
        int owner = gw_slots_owner(bus->slots, gw_slots_keyslot(channel, strlen(channel)));
        if (owner < 0)
            return NULL;
        host = gw_slots_host(bus->slots, (size_t)owner);
        port = gw_slots_port(bus->slots, (size_t)owner);
    }
    struct shard_link *l = NULL;
    for (size_t i = 0; i < bus->nshards && !l; i++)
        if (bus->shards[i]->port == port && strcmp(bus->shards[i]->host, host) == 0)
            l = bus->shards[i];
    if (!l) {
        if (strlen(host) >= sizeof(l->host))
            return NULL;
        struct shard_link **all = realloc(bus->shards, sizeof(*all) * (bus->nshards + 1));
        if (!all)
            return NULL;
        bus->shards = all;
        if (!(l = calloc(1, sizeof(*l))))
            return NULL;
        l->bus = bus;
        snprintf(l->host, sizeof(l->host), "%s", host);
        l->port = port;
        l->sent_tail = &l->sent;
        bus->shards[bus->nshards++] = l;
    }
    if (!l->bev && !shard_connect(bus, l))
        return NULL;
    return l;
}

void gw_bus_shard_watch(struct gw_bus *bus, int64_t now_ms, int64_t timeout_ms)
{
    for (size_t i = 0; i < bus->nshards; i++) {
        struct shard_link *l = bus->shards[i];
        if (!l->bev)
            continue;
        if (l->state == LINK_CONNECTING && now_ms - l->state_since_ms > timeout_ms) {
            shard_drop(l, "connect timeout");
        } else if (l->ping_sent_ms && now_ms - l->ping_sent_ms > timeout_ms) {
            /* A frozen master, or one whose FIN was lost: what it holds for
             * us is subscribed again elsewhere or later, and repaired. */
            chat_log(CHAT_LOG_WARN, "redis_hung conn=shard addr=%s:%d reason=ping", l->host,
                     l->port);
            shard_drop(l, "ping timeout");
        } else if (l->state == LINK_READY && !l->ping_sent_ms && now_ms - l->pong_ms >= 1000) {
            const char *argv[] = {"PING"};
            if (send_cmd(l, SC_PING, NULL, 1, argv))
                l->ping_sent_ms = now_ms;
        }
    }
    gw_bus_sub_retry(bus);
}

bool gw_bus_shard_ok(const struct gw_bus *bus)
{
    int64_t now = gw_mono_ms();
    for (size_t i = 0; i < bus->nshards; i++) {
        const struct shard_link *l = bus->shards[i];
        if (l->bev && l->state == LINK_CONNECTING && now - l->state_since_ms > 3000)
            return false;
        if (l->bev && l->ping_sent_ms && now - l->ping_sent_ms > 3000)
            return false;
    }
    return bus->shard_waiting_ms == 0 || now - bus->shard_waiting_ms <= 3000;
}

void gw_bus_shard_close(struct gw_bus *bus)
{
    for (size_t i = 0; i < bus->nshards; i++) {
        shard_drop(bus->shards[i], "closed");
        free(bus->shards[i]);
    }
    free(bus->shards);
    bus->shards = NULL;
    bus->nshards = 0;
}
