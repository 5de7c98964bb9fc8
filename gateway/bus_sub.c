#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "bus_internal.h"
#include "dict.h"
#include "metrics.h"

/* The subscriber side of the bus: channel interest is refcounted, and each
 * channel has one state (none, subscribing, subscribed, unsubscribing), so a
 * subscribe during a pending unsubscribe (or the reverse) comes out right;
 * after a reconnect every channel still wanted is subscribed again.  On a
 * cluster the room and user channels are sharded: the same states, on the
 * connection to their slot's master (bus_shard.c) instead of the classic one. */

enum channel_state { CH_NONE, CH_SUBSCRIBING, CH_SUBSCRIBED, CH_UNSUBSCRIBING };

struct waiter {
    struct waiter *next;
    gw_bus_ready_cb cb;
    void *arg;
};

struct channel {
    int refs;
    enum channel_state state;
    bool sharded;
    struct shard_link *shard; /* sharded: where it is (being) subscribed; NULL in CH_NONE */
    struct waiter *waiters;
    char name[];
};

static void fire_waiters(struct channel *ch, bool ok)
{
    struct waiter *w = ch->waiters;
    ch->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        w->cb(ok, w->arg);
        free(w);
        w = next;
    }
}

/* Whether a (un)subscription of ch can go out now. */
static bool transport_up(const struct gw_bus *bus, const struct channel *ch)
{
    if (ch->sharded)
        return gw_bus_up(bus);
    return bus->sub.state == LINK_READY;
}

/* ---- subscribe and unsubscribe ---- */

static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    if (r)
        gw_bus_sub_push(privdata, NULL, r);
}

/* Sends the subscription of ch (state SUBSCRIBING); false when it could not
 * go out (state NONE, and the watchdog tries a sharded one again). */
static bool send_subscribe(struct gw_bus *bus, struct channel *ch, const char *host, int port)
{
    if (!ch->sharded) {
        ch->state = CH_SUBSCRIBING;
        redisAsyncCommand(bus->sub.ac, on_sub_reply, bus, "SUBSCRIBE %b", ch->name,
                          strlen(ch->name));
        return true;
    }
    ch->shard = gw_bus_shard_link(bus, ch->name, host, port);
    if (!ch->shard || !gw_bus_shard_send(ch->shard, true, ch->name)) {
        ch->shard = NULL;
        ch->state = CH_NONE;
        bus->shard_retry = true;
        return false;
    }
    ch->state = CH_SUBSCRIBING;
    return true;
}

static void send_unsubscribe(struct gw_bus *bus, struct channel *ch)
{
    ch->state = CH_UNSUBSCRIBING;
    if (ch->sharded)
        gw_bus_shard_send(ch->shard, false, ch->name);
    else
        redisAsyncCommand(bus->sub.ac, on_sub_reply, bus, "UNSUBSCRIBE %b", ch->name,
                          strlen(ch->name));
}

static void forget(struct gw_bus *bus, struct channel *ch)
{
    gw_dict_del(bus->channels, ch->name);
    fire_waiters(ch, false);
    free(ch);
}

static void on_confirmed(struct gw_bus *bus, struct channel *ch)
{
    ch->state = CH_SUBSCRIBED;
    gw_metrics_gauge_add(bus->ctx->metrics, GW_G_SUBSCRIPTIONS, 1);
    fire_waiters(ch, true);
    char *name = strdup(ch->name);
    if (!name)
        return;
    if (bus->on_subscribed)
        bus->on_subscribed(name, bus->arg);
    /* A waiter may have dropped the last reference (and unsubscribed). */
    ch = gw_dict_get(bus->channels, name);
    free(name);
    if (ch && ch->refs == 0 && ch->state == CH_SUBSCRIBED)
        send_unsubscribe(bus, ch);
}

/* Unsubscribed: on request, or (sharded) because the slot moved to another
 * master, which Redis 7 tells with an unasked sunsubscribe.  Either way a
 * channel still wanted is subscribed again, where its slot is now, and the
 * confirmation repairs what was published meanwhile. */
static void on_unsubscribed(struct gw_bus *bus, struct channel *ch)
{
    if (ch->state == CH_SUBSCRIBED || ch->state == CH_UNSUBSCRIBING)
        gw_metrics_gauge_add(bus->ctx->metrics, GW_G_SUBSCRIPTIONS, -1);
    ch->state = CH_NONE;
    ch->shard = NULL;
    if (ch->refs > 0)
        send_subscribe(bus, ch, NULL, 0);
    else
        forget(bus, ch);
}

void gw_bus_sub_push(struct gw_bus *bus, struct shard_link *from, const struct redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    const redisReply *kind = reply->element[0];
    const redisReply *name = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || name->type != REDIS_REPLY_STRING)
        return;
    const char *k = kind->str;
    if (from && k[0] == 's')
        k++; /* smessage, ssubscribe, sunsubscribe */
    if (strcasecmp(k, "message") == 0) {
        const redisReply *payload = reply->element[2];
        if (strcmp(name->str, bus->probe_channel) == 0) {
            bus->probe_seen_ms = gw_mono_ms();
            bus->backoff_ms = BUS_BACKOFF_MIN_MS; /* delivering again: reconnects may be quick */
            return;
        }
        if (payload->type == REDIS_REPLY_STRING && bus->on_message) {
            gw_metrics_add(bus->ctx->metrics, GW_M_PUBSUB_IN, 1);
            bus->on_message(name->str, name->len, payload->str, payload->len, bus->arg);
        }
        return;
    }
    struct channel *ch = gw_dict_get(bus->channels, name->str);
    /* A late answer from a connection the channel has left is no news. */
    if (!ch || ch->shard != from)
        return;
    if (strcasecmp(k, "subscribe") == 0 && ch->state == CH_SUBSCRIBING)
        on_confirmed(bus, ch);
    else if (strcasecmp(k, "unsubscribe") == 0 && ch->state != CH_NONE)
        on_unsubscribed(bus, ch);
}

void gw_bus_sub_refused(struct gw_bus *bus, struct shard_link *from, const char *channel,
                        const char *host, int port)
{
    struct channel *ch = gw_dict_get(bus->channels, channel);
    if (!ch || ch->shard != from)
        return;
    if (ch->state == CH_UNSUBSCRIBING) {
        /* The slot left that master: we are not subscribed there either. */
        on_unsubscribed(bus, ch);
        return;
    }
    if (ch->state != CH_SUBSCRIBING)
        return;
    ch->state = CH_NONE;
    ch->shard = NULL;
    if (ch->refs == 0) {
        forget(bus, ch);
    } else if (!host) {
        /* Not MOVED (CLUSTERDOWN, say): the watchdog tries again. */
        bus->shard_retry = true;
    } else {
        send_subscribe(bus, ch, host, port);
    }
}

void gw_bus_subscribe(struct gw_bus *bus, const char *channel, gw_bus_ready_cb ready, void *arg)
{
    struct channel *ch = gw_dict_get(bus->channels, channel);
    if (!ch) {
        size_t len = strlen(channel);
        ch = calloc(1, sizeof(*ch) + len + 1);
        if (!ch || gw_dict_set(bus->channels, channel, ch) != GW_OK) {
            free(ch);
            if (ready)
                ready(false, arg);
            return;
        }
        memcpy(ch->name, channel, len + 1);
        ch->sharded = gw_bus_sharded(bus, channel);
    }
    ch->refs++;
    bool up = transport_up(bus, ch);
    if (ch->state == CH_SUBSCRIBED && up) {
        if (ready)
            ready(true, arg);
        return;
    }
    if (!up) {
        /* Remembered: subscribed on reconnect.  The waiter learns now. */
        if (ready)
            ready(false, arg);
        return;
    }
    if (ready) {
        struct waiter *w = malloc(sizeof(*w));
        if (!w) {
            ready(false, arg);
        } else {
            w->cb = ready;
            w->arg = arg;
            w->next = ch->waiters;
            ch->waiters = w;
        }
    }
    if (ch->state == CH_NONE && !send_subscribe(bus, ch, NULL, 0))
        fire_waiters(ch, false);
    /* SUBSCRIBING: the pending reply fires the waiter.  UNSUBSCRIBING: the
     * unsubscribe reply sees refs > 0 and subscribes again. */
}

void gw_bus_unsubscribe(struct gw_bus *bus, const char *channel)
{
    struct channel *ch = gw_dict_get(bus->channels, channel);
    if (!ch || ch->refs == 0)
        return;
    if (--ch->refs > 0)
        return;
    /* A sharded channel's connection may outlive the command connection:
     * tell it, or it keeps delivering a channel nobody here wants. */
    bool can_send = ch->sharded ? ch->shard && !bus->freeing : bus->sub.state == LINK_READY;
    if (!can_send || ch->state == CH_NONE)
        forget(bus, ch);
    else if (ch->state == CH_SUBSCRIBED)
        send_unsubscribe(bus, ch);
}

/* ---- a connection came, went, or the bus ends ---- */

/* The channels of one connection (the classic one: shard NULL, or a sharded
 * one), collected before anything changes: the dict must not change while it
 * is walked, and a waiter may unsubscribe. */
struct collect {
    struct channel **out;
    size_t n;
    bool sharded;
    struct shard_link *shard;
    bool unreferenced_only;
};

static void collect_one(const char *key, void *value, void *arg)
{
    (void)key;
    struct collect *col = arg;
    struct channel *ch = value;
    if (ch->sharded != col->sharded || (col->shard && ch->shard != col->shard))
        return;
    if (col->unreferenced_only && ch->refs > 0)
        return;
    col->out[col->n++] = ch;
}

static bool collect(struct gw_bus *bus, struct collect *col)
{
    col->n = 0;
    size_t n = gw_dict_size(bus->channels);
    col->out = calloc(n ? n : 1, sizeof(struct channel *));
    if (!col->out)
        return false;
    gw_dict_each(bus->channels, collect_one, col);
    return true;
}

/* Every channel of col goes to NONE; waiters are failed after that, and
 * unreferenced channels forgotten. */
static void lose(struct gw_bus *bus, struct collect *col)
{
    struct waiter *failed = NULL;
    for (size_t i = 0; i < col->n; i++) {
        struct channel *ch = col->out[i];
        if (ch->state == CH_SUBSCRIBED || ch->state == CH_UNSUBSCRIBING)
            gw_metrics_gauge_add(bus->ctx->metrics, GW_G_SUBSCRIPTIONS, -1);
        ch->state = CH_NONE;
        ch->shard = NULL;
        while (ch->waiters) {
            struct waiter *w = ch->waiters;
            ch->waiters = w->next;
            w->next = failed;
            failed = w;
        }
        if (ch->refs == 0) {
            gw_dict_del(bus->channels, ch->name);
            free(ch);
        }
    }
    free(col->out);
    while (failed) {
        struct waiter *w = failed;
        failed = w->next;
        w->cb(false, w->arg);
        free(w);
    }
}

void gw_bus_sub_resubscribe(struct gw_bus *bus)
{
    struct collect col = {.sharded = false};
    if (!collect(bus, &col))
        return;
    for (size_t i = 0; i < col.n; i++) {
        struct channel *ch = col.out[i];
        if (ch->refs == 0) {
            gw_dict_del(bus->channels, ch->name);
            free(ch);
        } else {
            send_subscribe(bus, ch, NULL, 0);
        }
    }
    free(col.out);
}

void gw_bus_sub_lost(struct gw_bus *bus)
{
    struct collect col = {.sharded = false};
    if (collect(bus, &col))
        lose(bus, &col);
}

void gw_bus_sub_shard_lost(struct gw_bus *bus, struct shard_link *l)
{
    struct collect col = {.sharded = true, .shard = l};
    if (collect(bus, &col))
        lose(bus, &col);
    bus->shard_retry = true;
}

void gw_bus_sub_retry(struct gw_bus *bus)
{
    if (!bus->shard_retry) {
        bus->shard_waiting_ms = 0;
        return;
    }
    if (!gw_bus_up(bus))
        return;
    bus->shard_retry = false;
    struct collect col = {.sharded = true};
    if (!collect(bus, &col))
        return;
    for (size_t i = 0; i < col.n; i++) {
        struct channel *ch = col.out[i];
        if (ch->state == CH_NONE && ch->refs > 0)
            send_subscribe(bus, ch, NULL, 0);
    }
    free(col.out);
    /* Still some that could not go out: how long they wait is what the
     * delivery check looks at. */
    if (bus->shard_retry && bus->shard_waiting_ms == 0)
        bus->shard_waiting_ms = gw_mono_ms();
    else if (!bus->shard_retry)
        bus->shard_waiting_ms = 0;
}

static void free_channel(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    struct channel *ch = value;
    fire_waiters(ch, false);
    free(ch);
}

void gw_bus_sub_free_channels(struct gw_bus *bus)
{
    gw_dict_each(bus->channels, free_channel, NULL);
}
