#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <jansson.h>

#include "config.h"
#include "dict.h"
#include "log.h"
#include "router.h"
#include "router_internal.h"

/*
 * online/offline for clients that asked for presence_batch (/ws?presence=batch,
 * docs/protocol.md).  PROTOCOL.md sends every online and offline to every
 * connection, so a ramp of N users costs N^2/2 frames.  Here the events that
 * reach this node on the all channel during one interval (--presence-batch)
 * are coalesced per user, last event wins, and every opted-in client gets one
 * presence_batch frame per interval, built once for all of them.  Clients that
 * did not ask still get each event as it comes (gw_router_node_event).
 *
 * Last event wins, never "cancel out": a user who went online and offline
 * within one interval is listed in offline.  A client that connected during
 * the interval may have seen that user in its `users` snapshot, and the batch
 * is the only way it learns the user left; for everyone else removing a user
 * they do not list is a no-op.
 */

struct presence_change {
    TAILQ_ENTRY(presence_change) link;
    bool online;
    char *user; /* compact JSON object of the last event */
};

TAILQ_HEAD(change_list, presence_change);

struct gw_presence_batch {
    struct gw_router *router;
    struct gw_dict *by_user;     /* user id -> change */
    struct change_list order;    /* by each user's last change */
    struct event *timer;         /* armed by the first change of an interval */
    size_t online, offline, len; /* entries of each kind, bytes of their user JSON */
};

static void change_free(struct presence_change *ch)
{
    free(ch->user);
    free(ch);
}

static void batch_clear(struct gw_presence_batch *b)
{
    while (!TAILQ_EMPTY(&b->order)) {
        struct presence_change *ch = TAILQ_FIRST(&b->order);
        TAILQ_REMOVE(&b->order, ch, link);
        change_free(ch);
    }
    gw_dict_free(b->by_user);
    b->by_user = gw_dict_new();
    b->online = b->offline = b->len = 0;
}

/* Appends the user objects of one kind, comma-separated; returns the end. */
static char *append_users(const struct gw_presence_batch *b, bool online, char *p)
{
    const struct presence_change *ch;
    bool first = true;
    TAILQ_FOREACH(ch, &b->order, link)
    {
        if (ch->online != online)
            continue;
        if (!first)
            *p++ = ',';
        first = false;
        size_t n = strlen(ch->user);
        memcpy(p, ch->user, n);
        p += n;
    }
    return p;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_presence_batch *b = arg;
    struct gw_router *r = b->router;
    static const char head[] = "{\"type\":\"presence_batch\",\"online\":[";
    static const char mid[] = "],\"offline\":[";
    size_t cap = sizeof(head) + sizeof(mid) + b->len + b->online + b->offline + 4;
    char *payload = LIST_EMPTY(&r->batch_clients) || TAILQ_EMPTY(&b->order) ? NULL : malloc(cap);
    if (payload) {
        char *p = payload;
        memcpy(p, head, sizeof(head) - 1);
        p = append_users(b, true, p + sizeof(head) - 1);
        memcpy(p, mid, sizeof(mid) - 1);
        p = append_users(b, false, p + sizeof(mid) - 1);
        memcpy(p, "]}", 2);
        p += 2;
        gw_router_send_each(r, &r->batch_clients, payload, (size_t)(p - payload));
        free(payload);
    }
    batch_clear(b);
}

struct gw_presence_batch *gw_presence_batch_new(struct gw_router *r)
{
    struct gw_presence_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->router = r;
    TAILQ_INIT(&b->order);
    b->by_user = gw_dict_new();
    b->timer = evtimer_new(r->ctx->base, on_flush, b);
    if (!b->by_user || !b->timer) {
        gw_presence_batch_free(b);
        return NULL;
    }
    return b;
}

void gw_presence_batch_free(struct gw_presence_batch *b)
{
    if (!b)
        return;
    if (b->timer)
        event_free(b->timer);
    batch_clear(b);
    gw_dict_free(b->by_user);
    free(b);
}

/*
 * The interval, stretched past --presence-batch when this node has more
 * batch clients than --presence-budget frames per second allow.  A fixed
 * interval costs (clients) x (intervals the arrivals last): N users arriving
 * at a given rate make N^2 frames again, only fewer.  With the budget, a
 * node sends at most that many per second however many arrive, so a ramp
 * costs frames in proportion to its length, i.e. to N; what grows instead is
 * how late a big node's clients hear of an arrival.
 */
int64_t gw_presence_batch_interval_ms(const struct gw_router *r)
{
    const struct chat_config *cfg = r->ctx->cfg;
    int64_t clients = 0;
    const struct gw_client *c;
    LIST_FOREACH(c, &r->batch_clients, in_mode)
    clients++;
    int64_t ms = cfg->presence_budget > 0 ? clients * 1000 / cfg->presence_budget : 0;
    return ms > cfg->presence_batch ? ms : cfg->presence_batch;
}

/* Records one user's change; the entry moves to the end of the order. */
static void record(struct gw_presence_batch *b, const char *uid, bool online, char *user)
{
    struct presence_change *ch = gw_dict_get(b->by_user, uid);
    if (ch) {
        TAILQ_REMOVE(&b->order, ch, link);
        if (ch->online)
            b->online--;
        else
            b->offline--;
        b->len -= strlen(ch->user);
        free(ch->user);
    } else {
        ch = calloc(1, sizeof(*ch));
        if (!ch || gw_dict_set(b->by_user, uid, ch) != 0) {
            free(ch);
            free(user);
            return;
        }
    }
    ch->online = online;
    ch->user = user;
    b->len += strlen(user);
    if (online)
        b->online++;
    else
        b->offline++;
    TAILQ_INSERT_TAIL(&b->order, ch, link);
    if (!evtimer_pending(b->timer, NULL)) {
        int64_t ms = gw_presence_batch_interval_ms(b->router);
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(b->timer, &tv);
    }
}

bool gw_presence_batch_event(struct gw_router *r, const char *payload, size_t len)
{
    static const char online[] = "{\"type\":\"online\"";
    static const char offline[] = "{\"type\":\"offline\"";
    bool is_on = len >= sizeof(online) - 1 && memcmp(payload, online, sizeof(online) - 1) == 0;
    bool is_off = len >= sizeof(offline) - 1 && memcmp(payload, offline, sizeof(offline) - 1) == 0;
    if (!is_on && !is_off)
        return false;
    if (LIST_EMPTY(&r->batch_clients))
        return true;
    json_t *ev = json_loadb(payload, len, 0, NULL);
    json_t *user = json_object_get(ev, "user");
    const char *uid = json_string_value(json_object_get(user, "id"));
    char *text = uid ? json_dumps(user, JSON_COMPACT) : NULL;
    if (text)
        record(r->presence_batch, uid, is_on, text);
    else
        chat_log(CHAT_LOG_WARN, "presence_event_unreadable len=%zu", len);
    json_decref(ev);
    return true;
}
