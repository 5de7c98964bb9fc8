#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "fake_bus.h"
#include "router.h"

struct waiter {
    gw_bus_ready_cb cb;
    void *arg;
    struct waiter *next;
};

struct channel {
    int refs;
    bool confirmed;
    struct waiter *waiters; /* oldest first */
    struct channel *next;
    char name[];
};

struct gw_bus {
    struct gw_router *router;
    struct fake_cmd *head, *tail;
    size_t npending;
    size_t nsent;
    struct channel *channels;
};

struct gw_bus *fake_bus_new(void)
{
    return calloc(1, sizeof(struct gw_bus));
}

static void cmd_free(struct fake_cmd *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->argvlen);
    free(c);
}

void fake_bus_free(struct gw_bus *bus)
{
    if (!bus)
        return;
    /* As bus.c on disconnect: every pending callback learns of the failure. */
    while (bus->head)
        fake_bus_answer(bus, bus->head, NULL);
    while (bus->channels) {
        struct channel *ch = bus->channels;
        bus->channels = ch->next;
        while (ch->waiters) {
            struct waiter *w = ch->waiters;
            ch->waiters = w->next;
            w->cb(false, w->arg);
            free(w);
        }
        free(ch);
    }
    free(bus);
}

void fake_bus_set_router(struct gw_bus *bus, struct gw_router *r)
{
    bus->router = r;
}

/* ---- the gw_bus_* functions the router and the store call ---- */

int gw_bus_command(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg, int argc, const char **argv,
                   const size_t *argvlen)
{
    struct fake_cmd *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->argc = argc;
    c->argv = calloc((size_t)argc, sizeof(char *));
    c->argvlen = calloc((size_t)argc, sizeof(size_t));
    if (!c->argv || !c->argvlen)
        abort();
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        c->argv[i] = malloc(len + 1);
        if (!c->argv[i])
            abort();
        memcpy(c->argv[i], argv[i], len);
        c->argv[i][len] = '\0';
        c->argvlen[i] = len;
    }
    c->cb = cb;
    c->arg = arg;
    if (bus->tail)
        bus->tail->next = c;
    else
        bus->head = c;
    bus->tail = c;
    bus->npending++;
    bus->nsent++;
    return GW_OK;
}

static struct channel *channel_get(const struct gw_bus *bus, const char *name)
{
    for (struct channel *ch = bus->channels; ch; ch = ch->next)
        if (strcmp(ch->name, name) == 0)
            return ch;
    return NULL;
}

void gw_bus_subscribe(struct gw_bus *bus, const char *channel, gw_bus_ready_cb ready, void *arg)
{
    struct channel *ch = channel_get(bus, channel);
    if (!ch) {
        size_t len = strlen(channel);
        ch = calloc(1, sizeof(*ch) + len + 1);
        if (!ch)
            abort();
        memcpy(ch->name, channel, len + 1);
        ch->next = bus->channels;
        bus->channels = ch;
    }
    ch->refs++;
    if (!ready)
        return;
    if (ch->confirmed) {
        ready(true, arg);
        return;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->cb = ready;
    w->arg = arg;
    struct waiter **p = &ch->waiters;
    while (*p)
        p = &(*p)->next;
    *p = w;
}

/* The fake is one Redis, never a cluster: classic pub/sub everywhere. */
const char *gw_bus_script_publish_cmd(const struct gw_bus *bus, const char *key,
                                      const char *channel)
{
    (void)bus;
    (void)key;
    (void)channel;
    return "PUBLISH";
}

void gw_bus_unsubscribe(struct gw_bus *bus, const char *channel)
{
    struct channel *ch = channel_get(bus, channel);
    /* An unbalanced unsubscribe shows up as a negative count. */
    if (!ch) {
        gw_bus_subscribe(bus, channel, NULL, NULL);
        ch = channel_get(bus, channel);
        ch->refs = 0;
    }
    if (--ch->refs <= 0)
        ch->confirmed = false;
}

/* ---- inspection ---- */

size_t fake_bus_pending(const struct gw_bus *bus)
{
    return bus->npending;
}

size_t fake_bus_sent(const struct gw_bus *bus)
{
    return bus->nsent;
}

struct fake_cmd *fake_bus_cmd(const struct gw_bus *bus, size_t i)
{
    struct fake_cmd *c = bus->head;
    while (c && i-- > 0)
        c = c->next;
    return c;
}

struct fake_cmd *fake_bus_find_eval(const struct gw_bus *bus, const char *key1)
{
    /* EVALSHA <sha> <nkeys> <key1> ... */
    for (struct fake_cmd *c = bus->head; c; c = c->next)
        if (c->argc >= 4 &&
            (strcasecmp(c->argv[0], "EVALSHA") == 0 || strcasecmp(c->argv[0], "EVAL") == 0) &&
            strcmp(c->argv[3], key1) == 0)
            return c;
    return NULL;
}

struct fake_cmd *fake_bus_find(const struct gw_bus *bus, const char *name, const char *arg1)
{
    for (struct fake_cmd *c = bus->head; c; c = c->next)
        if (c->argc >= 1 && strcasecmp(c->argv[0], name) == 0 &&
            (!arg1 || (c->argc >= 2 && strcmp(c->argv[1], arg1) == 0)))
            return c;
    return NULL;
}

void fake_bus_answer(struct gw_bus *bus, struct fake_cmd *cmd, struct redisReply *reply)
{
    struct fake_cmd **p = &bus->head, *prev = NULL;
    while (*p && *p != cmd) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        abort(); /* not queued: a test bug */
    *p = cmd->next;
    if (bus->tail == cmd)
        bus->tail = prev;
    bus->npending--;
    /* The callback may queue more commands (a repair step): cmd is out of
     * the queue already. */
    if (cmd->cb)
        cmd->cb(bus, reply, cmd->arg);
    fake_reply_free(reply);
    cmd_free(cmd);
}

int fake_bus_refs(const struct gw_bus *bus, const char *channel)
{
    const struct channel *ch = channel_get(bus, channel);
    return ch ? ch->refs : 0;
}

size_t fake_bus_live_channels(const struct gw_bus *bus)
{
    size_t n = 0;
    for (const struct channel *ch = bus->channels; ch; ch = ch->next)
        if (ch->refs != 0)
            n++;
    return n;
}

size_t fake_bus_waiters(const struct gw_bus *bus, const char *channel)
{
    const struct channel *ch = channel_get(bus, channel);
    size_t n = 0;
    for (const struct waiter *w = ch ? ch->waiters : NULL; w; w = w->next)
        n++;
    return n;
}

void fake_bus_confirm(struct gw_bus *bus, const char *channel)
{
    struct channel *ch = channel_get(bus, channel);
    if (!ch || ch->refs <= 0)
        return;
    ch->confirmed = true;
    /* bus.c's on_sub_reply: the waiters first, then on_subscribed. */
    struct waiter *w = ch->waiters;
    ch->waiters = NULL;
    while (w) {
        struct waiter *next = w->next;
        w->cb(true, w->arg);
        free(w);
        w = next;
    }
    if (bus->router)
        gw_router_on_subscribed(bus->router, channel);
}

void fake_bus_drop_subscriber(struct gw_bus *bus)
{
    for (struct channel *ch = bus->channels; ch; ch = ch->next)
        ch->confirmed = false;
}

/* ---- replies ---- */

static redisReply *reply_new(int type)
{
    redisReply *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->type = type;
    return r;
}

struct redisReply *fake_reply_int(long long v)
{
    redisReply *r = reply_new(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}

static redisReply *reply_text(int type, const char *s)
{
    redisReply *r = reply_new(type);
    r->len = strlen(s);
    r->str = malloc(r->len + 1);
    if (!r->str)
        abort();
    memcpy(r->str, s, r->len + 1);
    return r;
}

struct redisReply *fake_reply_str(const char *s)
{
    return reply_text(REDIS_REPLY_STRING, s);
}

struct redisReply *fake_reply_error(const char *s)
{
    return reply_text(REDIS_REPLY_ERROR, s);
}

struct redisReply *fake_reply_nil(void)
{
    return reply_new(REDIS_REPLY_NIL);
}

struct redisReply *fake_reply_array(size_t n)
{
    redisReply *r = reply_new(REDIS_REPLY_ARRAY);
    r->elements = n;
    if (n > 0) {
        r->element = calloc(n, sizeof(*r->element));
        if (!r->element)
            abort();
    }
    return r;
}

void fake_reply_free(struct redisReply *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->elements; i++)
        fake_reply_free(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}
