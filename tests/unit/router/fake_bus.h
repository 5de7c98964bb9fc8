#ifndef CHAT_UNIT_ROUTER_FAKE_BUS_H
#define CHAT_UNIT_ROUTER_FAKE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

/*
 * A stand-in for gateway/bus.c with no Redis and no event loop: the test is
 * the server.  Commands are queued with their callbacks until the test answers
 * them; subscriptions are refcounted per channel and confirmed only when the
 * test says so, so every interleaving is written out step by step.
 */

struct gw_router;
struct redisReply;

/* One queued command; argv is a copy (NUL-terminated too). */
struct fake_cmd {
    int argc;
    char **argv;
    size_t *argvlen;
    gw_bus_reply_cb cb;
    void *arg;
    struct fake_cmd *next;
};

struct gw_bus *fake_bus_new(void);
/* Answers every queued command with NULL (as bus.c does on disconnect), then
 * frees.  NULL is a no-op. */
void fake_bus_free(struct gw_bus *bus);

/* Where confirmations are reported, like main.c's on_bus_subscribed. */
void fake_bus_set_router(struct gw_bus *bus, struct gw_router *r);

/* ---- commands ---- */

size_t fake_bus_pending(const struct gw_bus *bus);
/* The i-th queued command (oldest first) or NULL. */
struct fake_cmd *fake_bus_cmd(const struct gw_bus *bus, size_t i);
/* The oldest queued EVALSHA/EVAL whose KEYS[1] is key1, or NULL. */
struct fake_cmd *fake_bus_find_eval(const struct gw_bus *bus, const char *key1);
/* The oldest queued command whose argv[0] is name (case-insensitive) and,
 * when arg1 is not NULL, whose argv[1] is arg1; or NULL. */
struct fake_cmd *fake_bus_find(const struct gw_bus *bus, const char *name, const char *arg1);
/* Removes cmd from the queue, runs its callback with reply (may be NULL),
 * then frees cmd and reply. */
void fake_bus_answer(struct gw_bus *bus, struct fake_cmd *cmd, struct redisReply *reply);
/* Total commands ever sent. */
size_t fake_bus_sent(const struct gw_bus *bus);

/* ---- subscriptions ---- */

/* Current reference count of channel (0 when never subscribed). */
int fake_bus_refs(const struct gw_bus *bus, const char *channel);
/* Channels with a reference count above zero. */
size_t fake_bus_live_channels(const struct gw_bus *bus);
/* Ready callbacks still waiting on channel. */
size_t fake_bus_waiters(const struct gw_bus *bus, const char *channel);
/* Redis confirmed SUBSCRIBE for channel: fires its waiters (ok), then reports
 * the confirmation to the router (gw_router_on_subscribed), in bus.c's order. */
void fake_bus_confirm(struct gw_bus *bus, const char *channel);
/* The subscriber connection was lost: channels are no longer confirmed (a
 * later fake_bus_confirm is a re-subscription). */
void fake_bus_drop_subscriber(struct gw_bus *bus);

/* ---- replies (freed by fake_bus_answer, or with fake_reply_free) ---- */

struct redisReply *fake_reply_int(long long v);
struct redisReply *fake_reply_str(const char *s);
struct redisReply *fake_reply_nil(void);
struct redisReply *fake_reply_error(const char *s);
/* An array of n elements; fill element[i] with the builders above. */
struct redisReply *fake_reply_array(size_t n);
void fake_reply_free(struct redisReply *r);

#endif
