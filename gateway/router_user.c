#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "dict.h"
#include "frame.h"
#include "keys.h"
#include "log.h"
#include "protocol.h"
#include "router_internal.h"
#include "store.h"
#include "token.h"

void gw_router_user_free(struct user *u)
{
    gw_router_backlog_free(&u->backlog);
    gw_dict_free(u->convs);
    chat_identity_deinit(&u->who);
    free(u);
}

struct user *gw_router_user_new(struct gw_router *r, const char *channel,
                                const struct chat_identity *who)
{
    struct user *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    STAILQ_INIT(&u->backlog);
    LIST_INIT(&u->clients);
    u->convs = gw_dict_new();
    if (!u->convs || chat_identity_copy(&u->who, who) != 0 ||
        gw_dict_set(r->users, channel, u) != GW_OK) {
        gw_router_user_free(u);
        return NULL;
    }
    /* A message sent while this session was being set up (between its
     * upgrade and the subscription) is replayed by the first repair; a little
     * slack covers the setup's round trips. */
    u->since_ms = gw_now_ms() - GW_USER_REPLAY_SLACK_MS;
    u->generation = ++r->next_generation;
    snprintf(u->channel, sizeof(u->channel), "%s", channel);
    return u;
}

/* ---- private traffic: per-conversation order and repair ---- */

/* The user may be freed by the last delivery (its last session ended): the
 * walk reads nothing of u after it. */
static void user_send_all(struct gw_router *r, struct user *u, const char *payload, size_t len)
{
    struct gw_frame_z z = {0};
    struct gw_frame f;
    gw_frame_text_shared(&f, &z, payload, len);
    struct gw_client *c = LIST_FIRST(&u->clients);
    while (c) {
        struct gw_client *next = LIST_NEXT(c, in_user);
        gw_router_send_frame(r, c, &f);
        c = next;
    }
    gw_frame_z_deinit(&z);
}

static void start_user_repair(struct gw_router *r, struct user *u);
static void backlog_push_user(struct user *u, const char *payload, size_t len);

/* Delivers a private message (or anything else on the user's channel) to
 * every local client of u, once: a message whose seq is not above the last
 * one delivered for its conversation is a repeat.  min_ts > 0 skips messages
 * older than that (a repair only replays what this node should have seen).
 * live: it came from the channel, and a seq past the next one of a
 * conversation this node has seen starts a repair (the message waits). */
static void user_deliver(struct gw_router *r, struct user *u, const char *payload, size_t len,
                         int64_t min_ts, bool live)
{
    int64_t seq = len > 17 && memcmp(payload, "{\"type\":\"private\"", 17) == 0
                      ? gw_router_message_seq(payload, len)
                      : -1;
    if (seq <= 0) {
        user_send_all(r, u, payload, len);
        return;
    }
    json_t *msg = json_loadb(payload, len, 0, NULL);
    const char *from = json_string_value(json_object_get(json_object_get(msg, "from"), "id"));
    const char *to = json_string_value(json_object_get(json_object_get(msg, "to"), "id"));
    int64_t ts = json_integer_value(json_object_get(msg, "ts"));
    if (!from || !to) {
        json_decref(msg);
        user_send_all(r, u, payload, len);
        return;
    }
    const char *peer = strcmp(from, u->who.id) == 0 ? to : from;
    int64_t last = (int64_t)(intptr_t)gw_dict_get(u->convs, peer);
    bool fresh = seq > last && ts >= min_ts;
    /* On a cluster the two sides of a DM publish from their own gateways
     * (docs/architecture.md, sharded pub/sub), so one may overtake the
     * other: history has what was skipped. */
    bool gap = live && fresh && last > 0 && seq > last + 1;
    if (fresh && !gap)
        gw_dict_set(u->convs, peer, (void *)(intptr_t)seq);
    json_decref(msg);
    if (gap) {
        backlog_push_user(u, payload, len);
        start_user_repair(r, u);
        return;
    }
    if (fresh)
        user_send_all(r, u, payload, len);
}

static void backlog_push_user(struct user *u, const char *payload, size_t len)
{
    struct backlog_entry *e = gw_router_backlog_entry(0, payload, len);
    if (e)
        STAILQ_INSERT_TAIL(&u->backlog, e, link);
}

/* A repair in flight refers to its user by channel: the user may be gone
 * (last session closed) when Redis answers. */
struct user_repair {
    struct gw_router *r;
    uint64_t generation;
    int outstanding;
    bool listed;
    bool failed; /* a read did not come back */
    char channel[GW_KEY_MAX];
};

/* The user this repair is for, or NULL when it left (and maybe came back:
 * a new record is not this repair's). */
static struct user *repair_user(const struct user_repair *ur)
{
    struct user *u = gw_dict_get(ur->r->users, ur->channel);
    return u && u->generation == ur->generation ? u : NULL;
}

static void user_repair_step(struct user_repair *ur)
{
    if (--ur->outstanding > 0 || !ur->listed)
        return;
    struct gw_router *r = ur->r;
    struct user *u = repair_user(ur);
    if (u && u->repair_again) {
        /* Lost again while this repair read: read again before the held
         * traffic goes out, or a higher seq would hide the gap. */
        u->repair_again = false;
        u->repairing = false;
        start_user_repair(r, u);
        free(ur);
        return;
    }
    if (u) {
        u->repairing = false;
        /* Detached first: a delivery may free u. */
        struct backlog pending = STAILQ_HEAD_INITIALIZER(pending);
        STAILQ_CONCAT(&pending, &u->backlog);
        char channel[GW_KEY_MAX];
        snprintf(channel, sizeof(channel), "%s", ur->channel);
        while (!STAILQ_EMPTY(&pending)) {
            struct backlog_entry *e = STAILQ_FIRST(&pending);
            STAILQ_REMOVE_HEAD(&pending, link);
            u = repair_user(ur);
            /* After complete reads, a held message past a conversation's
             * next seq is one whose predecessor was stored after the read
             * and is not here yet (--durability replica publishes once WAIT
             * confirms): it waits for another repair, as live traffic
             * would.  After a failed read it goes out as it is. */
            if (u && ur->failed)
                user_deliver(r, u, e->data, e->len, 0, false);
            else if (u)
                gw_router_user_message(r, u, e->data, e->len);
            free(e);
        }
    }
    free(ur);
}

static void on_user_repair_history(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct user_repair *ur = arg;
    bool read = reply && reply->type == REDIS_REPLY_ARRAY;
    ur->failed |= !read;
    if (read) {
        for (size_t i = 1; i < reply->elements; i++) {
            struct user *u = repair_user(ur);
            if (u && reply->element[i]->type == REDIS_REPLY_STRING)
                user_deliver(ur->r, u, reply->element[i]->str, reply->element[i]->len, u->since_ms,
                             false);
        }
    }
    user_repair_step(ur);
}

static void on_user_repair_peers(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct user_repair *ur = arg;
    struct user *u = repair_user(ur);
    const char *prefix = ur->r->ctx->cfg->prefix;
    ur->listed = true;
    bool read = reply && reply->type == REDIS_REPLY_ARRAY;
    ur->failed |= !read;
    if (u && read) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            char seq_key[GW_KEY_MAX], hist_key[GW_KEY_MAX];
            if (e->type != REDIS_REPLY_STRING || !chat_valid_user_id(e->str) ||
                !gw_key_dm(seq_key, sizeof(seq_key), prefix, u->who.id, e->str, "seq") ||
                !gw_key_dm(hist_key, sizeof(hist_key), prefix, u->who.id, e->str, "history"))
                continue;
            const char *argv[] = {seq_key, hist_key};
            ur->outstanding++;
            gw_store_eval(ur->r->ctx->store, "history_since", 2, 2, argv, NULL,
                          on_user_repair_history, ur);
        }
    }
    user_repair_step(ur);
}

static void start_user_repair(struct gw_router *r, struct user *u)
{
    char key[GW_KEY_MAX];
    if (u->repairing) {
        u->repair_again = true; /* this repair's reads may predate the loss */
        return;
    }
    if (!gw_key_user(key, sizeof(key), r->ctx->cfg->prefix, u->who.id, "dms"))
        return;
    struct user_repair *ur = calloc(1, sizeof(*ur));
    if (!ur)
        return;
    u->repairing = true;
    ur->r = r;
    ur->generation = u->generation;
    ur->outstanding = 1; /* the peer listing */
    snprintf(ur->channel, sizeof(ur->channel), "%s", u->channel);
    const char *argv[] = {"SMEMBERS", key};
    chat_log(CHAT_LOG_INFO, "gap_repair user=%s", u->who.id);
    gw_bus_command(r->ctx->bus, on_user_repair_peers, ur, 2, argv, NULL);
}

void gw_router_user_message(struct gw_router *r, struct user *u, const char *payload, size_t len)
{
    if (u->repairing)
        backlog_push_user(u, payload, len);
    else
        user_deliver(r, u, payload, len, 0, true);
}

void gw_router_user_subscribed(struct gw_router *r, struct user *u)
{
    /* The first confirmation repairs too: what was published to this user
     * before the node listened (since since_ms) is replayed, so a private
     * message sent as the recipient connects is not lost. */
    start_user_repair(r, u);
    u->subscribed_once = true;
}
