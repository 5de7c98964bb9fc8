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
 * after a reconnect every channel still wanted is subscribed again. */

enum channel_state { CH_NONE, CH_SUBSCRIBING, CH_SUBSCRIBED, CH_UNSUBSCRIBING };

struct waiter {
    struct waiter *next;
    gw_bus_ready_cb cb;
    void *arg;
};

struct channel {
    int refs;
    enum channel_state state;
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

/* ---- subscribe and unsubscribe ---- */

static void send_subscribe(struct gw_bus *bus, struct channel *ch);

static void on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct gw_bus *bus = privdata;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    redisReply *kind = reply->element[0];
    redisReply *name = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || name->type != REDIS_REPLY_STRING)
        return;
    if (strcasecmp(kind->str, "message") == 0) {
        redisReply *payload = reply->element[2];
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
    if (!ch)
        return;
    if (strcasecmp(kind->str, "subscribe") == 0) {
        ch->state = CH_SUBSCRIBED;
        gw_metrics_gauge_add(bus->ctx->metrics, GW_G_SUBSCRIPTIONS, 1);
        fire_waiters(ch, true);
        if (bus->on_subscribed)
            bus->on_subscribed(name->str, bus->arg);
        /* A waiter may have dropped the last reference (and unsubscribed). */
        ch = gw_dict_get(bus->channels, name->str);
        if (ch && ch->refs == 0 && ch->state == CH_SUBSCRIBED) {
            ch->state = CH_UNSUBSCRIBING;
            redisAsyncCommand(bus->sub.ac, on_sub_reply, bus, "UNSUBSCRIBE %b", ch->name,
                              strlen(ch->name));
        }
    } else if (strcasecmp(kind->str, "unsubscribe") == 0) {
        gw_metrics_gauge_add(bus->ctx->metrics, GW_G_SUBSCRIPTIONS, -1);
        if (ch->refs > 0) {
            send_subscribe(bus, ch);
        } else {
            gw_dict_del(bus->channels, ch->name);
            free(ch);
        }
    }
}

static void send_subscribe(struct gw_bus *bus, struct channel *ch)
{
    ch->state = CH_SUBSCRIBING;
    redisAsyncCommand(bus->sub.ac, on_sub_reply, bus, "SUBSCRIBE %b", ch->name, strlen(ch->name));
}

static void resubscribe_one(const char *key, void *value, void *arg)
{
    (void)key;
    struct gw_bus *bus = arg;
    struct channel *ch = value;
    if (ch->refs > 0)
        send_subscribe(bus, ch);
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
    }
    ch->refs++;
    if (ch->state == CH_SUBSCRIBED && bus->sub.state == LINK_READY) {
        if (ready)
            ready(true, arg);
        return;
    }
    if (bus->sub.state != LINK_READY) {
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
    if (ch->state == CH_NONE)
        send_subscribe(bus, ch);
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
    if (bus->sub.state != LINK_READY || ch->state == CH_NONE) {
        gw_dict_del(bus->channels, ch->name);
        fire_waiters(ch, false);
        free(ch);
    } else if (ch->state == CH_SUBSCRIBED) {
        ch->state = CH_UNSUBSCRIBING;
        redisAsyncCommand(bus->sub.ac, on_sub_reply, bus, "UNSUBSCRIBE %b", ch->name,
                          strlen(ch->name));
    }
}

/* ---- the connection came, went, or the bus ends ---- */

/* Takes the channel's waiters into *arg: they are failed after the walk,
 * because a waiter may unsubscribe and so change the table being walked. */
static void fail_channel(const char *key, void *value, void *arg)
{
    (void)key;
    struct waiter **failed = arg;
    struct channel *ch = value;
    ch->state = CH_NONE;
    while (ch->waiters) {
        struct waiter *w = ch->waiters;
        ch->waiters = w->next;
        w->next = *failed;
        *failed = w;
    }
}

struct collect {
    struct channel **out;
    size_t n;
};

static void collect_unreferenced(const char *key, void *value, void *arg)
{
    (void)key;
    struct collect *col = arg;
    struct channel *ch = value;
    if (ch->refs == 0)
        col->out[col->n++] = ch;
}

/* Channels nobody wants any more are forgotten before resubscribing. */
static void drop_unreferenced(struct gw_bus *bus)
{
    size_t n = gw_dict_size(bus->channels);
    if (n == 0)
        return;
    struct collect col = {calloc(n, sizeof(struct channel *)), 0};
    if (!col.out)
        return;
    /* Collect first: the dict must not change while it is walked. */
    gw_dict_each(bus->channels, collect_unreferenced, &col);
    for (size_t i = 0; i < col.n; i++) {
        gw_dict_del(bus->channels, col.out[i]->name);
        free(col.out[i]);
    }
    free(col.out);
}

void gw_bus_sub_resubscribe(struct gw_bus *bus)
{
    drop_unreferenced(bus);
    gw_dict_each(bus->channels, resubscribe_one, bus);
}

void gw_bus_sub_lost(struct gw_bus *bus)
{
    struct waiter *failed = NULL;
    gw_dict_each(bus->channels, fail_channel, &failed);
    while (failed) {
        struct waiter *w = failed;
        failed = w->next;
        w->cb(false, w->arg);
        free(w);
    }
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
