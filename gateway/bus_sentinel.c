#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "bus_internal.h"
#include "log.h"

/*
 * Redis behind Sentinel: one connection to a sentinel (the next one in the
 * URL each time a connection fails) asks SENTINEL get-master-addr-by-name,
 * then stays subscribed to +switch-master.  A new address drops the command
 * and subscriber connections at once; the reconnect timer opens them on the
 * new master, the subscriber's resubscription repairs what was missed, and a
 * master that came back without the last writes is a seq going backwards,
 * which the router already treats as Redis having lost data.
 */

/* Takes host:port as the master's address; when it changed, cmd and sub go. */
static void set_master(struct gw_bus *bus, const char *host, size_t hostlen, int port)
{
    if (hostlen == 0 || hostlen >= sizeof(bus->master_host) || port <= 0 || port > 65535)
        return;
    bool same = bus->master_known && bus->master_port == port &&
                strlen(bus->master_host) == hostlen && memcmp(bus->master_host, host, hostlen) == 0;
    if (same)
        return;
    bool had = bus->master_known;
    memcpy(bus->master_host, host, hostlen);
    bus->master_host[hostlen] = '\0';
    bus->master_port = port;
    bus->master_known = true;
    chat_log(had ? CHAT_LOG_WARN : CHAT_LOG_INFO, "redis_sentinel_master addr=%s:%d",
             bus->master_host, port);
    if (had) {
        gw_bus_link_reset(bus, &bus->cmd);
        gw_bus_link_reset(bus, &bus->sub);
    }
    gw_bus_schedule_reconnect(bus);
}

/* "+switch-master <name> <old ip> <old port> <new ip> <new port>". */
static void on_switch(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct gw_bus *bus = ac->data;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    const char *name = bus->ctx->cfg->redis.master_name;
    char got[65], oldh[256], newh[256];
    int oldp, newp;
    if (sscanf(reply->element[2]->str, "%64s %255s %d %255s %d", got, oldh, &oldp, newh, &newp) ==
            5 &&
        strcmp(got, name) == 0)
        set_master(bus, newh, strlen(newh), newp);
}

static void on_master_addr(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)privdata;
    struct gw_bus *bus = ac->data;
    redisReply *reply = r;
    if (!reply)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        chat_log(CHAT_LOG_WARN, "redis_sentinel_no_master name=%s",
                 bus->ctx->cfg->redis.master_name);
        return;
    }
    set_master(bus, reply->element[0]->str, reply->element[0]->len, atoi(reply->element[1]->str));
}

static void on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    struct gw_bus *bus = ac->data;
    if (status != REDIS_OK) {
        chat_log(CHAT_LOG_WARN, "redis_sentinel_connect_failed error=\"%s\"", ac->errstr);
        bus->sentinel.ac = NULL;
        bus->sentinel.state = LINK_CLOSED;
        bus->seed++;
        gw_bus_schedule_reconnect(bus);
        return;
    }
    bus->sentinel.state = LINK_READY;
}

static void on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct gw_bus *bus = ac->data;
    bus->sentinel.ac = NULL;
    bus->sentinel.state = LINK_CLOSED;
    if (bus->freeing)
        return;
    chat_log(CHAT_LOG_WARN, "redis_sentinel_disconnected error=\"%s\"",
             ac->err ? ac->errstr : "closed");
    bus->seed++;
    gw_bus_schedule_reconnect(bus);
}

void gw_bus_sentinel_connect(struct gw_bus *bus)
{
    const struct chat_redis_url *u = &bus->ctx->cfg->redis;
    if (!u->sentinel || bus->sentinel.ac || bus->freeing || u->nseeds == 0)
        return;
    const struct chat_redis_seed *s = &u->seeds[bus->seed % u->nseeds];
    redisAsyncContext *ac = gw_bus_connect(bus, &bus->sentinel, s->host, s->port,
                                           on_sentinel_connect, on_sentinel_disconnect);
    if (!ac) {
        bus->seed++;
        return;
    }
    /* The address first, then the announcements: one connection, in order. */
    redisAsyncCommand(ac, on_master_addr, NULL, "SENTINEL get-master-addr-by-name %s",
                      u->master_name);
    redisAsyncCommand(ac, on_switch, NULL, "SUBSCRIBE +switch-master");
}

void gw_bus_sentinel_close(struct gw_bus *bus)
{
    redisAsyncContext *ac = bus->sentinel.ac;
    bus->sentinel.state = LINK_CLOSED;
    if (ac)
        redisAsyncFree(ac);
    bus->sentinel.ac = NULL;
}
