#ifndef GW_BUS_H
#define GW_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway.h"

/*
 * The Redis connections of one node (hiredis async on libevent): one for
 * commands, one for SUBSCRIBE (on a cluster also one command connection and
 * one SSUBSCRIBE connection per master).  Reconnects with backoff on its own timer and
 * re-subscribes every channel that still has local interest.  A connect, a
 * handshake or a command unanswered for --redis-timeout drops the connection
 * (pending callbacks get NULL), so nothing waits on a frozen Redis.
 *
 * Channel interest is refcounted: gw_bus_subscribe()/gw_bus_unsubscribe()
 * pairs; the node is subscribed while the count is above zero.
 */

struct redisReply;
struct gw_bus;

/* reply is NULL when the command failed (disconnect, Redis down); it is
 * borrowed for the length of the callback. */
typedef void (*gw_bus_reply_cb)(struct gw_bus *bus, struct redisReply *reply, void *arg);
/* A published message; borrowed for the length of the callback. */
typedef void (*gw_bus_message_cb)(const char *channel, size_t channel_len, const char *payload,
                                  size_t len, void *arg);
/* Both connections became usable (up) or one was lost (down). */
typedef void (*gw_bus_state_cb)(bool up, void *arg);
/* Redis confirmed a SUBSCRIBE (also each re-subscription after a reconnect). */
typedef void (*gw_bus_subscribed_cb)(const char *channel, void *arg);
/* A channel's subscription was confirmed by Redis (ok), or failed (not ok). */
typedef void (*gw_bus_ready_cb)(bool ok, void *arg);

struct gw_bus *gw_bus_new(struct gw_ctx *ctx, gw_bus_message_cb on_message,
                          gw_bus_state_cb on_state, gw_bus_subscribed_cb on_subscribed, void *arg);
/* Disconnects for good: pending callbacks get a NULL reply now, and every
 * later command fails at once (its callback gets NULL), so the modules above
 * can still be torn down through the bus.  NULL is a no-op. */
void gw_bus_close(struct gw_bus *bus);
/* Closes (if not yet) and frees.  NULL is a no-op. */
void gw_bus_free(struct gw_bus *bus);

/* True while the command connection is connected and ready (AUTH/SELECT done). */
bool gw_bus_up(const struct gw_bus *bus);
/* True while the subscriber connection is connected too. */
bool gw_bus_subscriber_up(const struct gw_bus *bus);
/* True while this node's own probe, published every second on its probe
 * channel, comes back through the subscriber within 3 s: pub/sub really
 * delivers (not just "connected"). */
bool gw_bus_delivery_ok(const struct gw_bus *bus);

/* Sends a command (argv borrowed; copied by hiredis).  The callback always
 * runs exactly once, with NULL on failure, possibly before this returns when
 * Redis is down; cb may be NULL (fire and forget).  GW_OK or GW_ERR_UNAVAILABLE (callback already
 * called). */
int gw_bus_command(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg, int argc, const char **argv,
                   const size_t *argvlen);

/* WAIT replicas timeout_ms on the connection that carried the reply now being
 * handed to a reply callback: call it from inside that callback (else cb gets
 * NULL at once).  The reply is how many replicas have every write made on that
 * connection so far, the one just answered included.  cb runs exactly once. */
int gw_bus_wait_replicas(struct gw_bus *bus, int replicas, int timeout_ms, gw_bus_reply_cb cb,
                         void *arg);

/* The command that publishes on channel: "SPUBLISH" for a room's or a user's
 * channel on a Redis Cluster (sharded: SSUBSCRIBEd on its slot's master, and
 * only there), else "PUBLISH".  Scripts are given it with their channels. */
const char *gw_bus_publish_cmd(const struct gw_bus *bus, const char *channel);

/* Publishes len bytes of msg on channel with gw_bus_publish_cmd's command;
 * cb (may be NULL) gets the reply, as with gw_bus_command. */
int gw_bus_publish(struct gw_bus *bus, const char *channel, const char *msg, size_t len,
                   gw_bus_reply_cb cb, void *arg);

/* The publish command for a script whose keys include key and that
 * publishes on channel: as gw_bus_publish_cmd, except "" when channel is
 * sharded but in another slot than key (a DM's script, whose keys are the
 * conversation's, publishing on each user's channel): a script cannot reach
 * outside its slot, so it returns the events and the caller publishes them
 * (gw_bus_publish_returned). */
const char *gw_bus_script_publish_cmd(const struct gw_bus *bus, const char *key,
                                      const char *channel);
/* Publishes what a script given "" returned: reply->element[from..] as pairs
 * of channel and payload, or, with payload non-NULL (borrowed), that payload
 * on each channel of element[from..].  Fire and forget. */
void gw_bus_publish_returned(struct gw_bus *bus, const struct redisReply *reply, size_t from,
                             const struct redisReply *payload);

/* Adds one reference to channel.  ready (may be NULL) runs once the node is
 * subscribed (at once when it already is), or with ok=false when Redis is
 * down; it must not be freed before it runs. */
void gw_bus_subscribe(struct gw_bus *bus, const char *channel, gw_bus_ready_cb ready, void *arg);
void gw_bus_unsubscribe(struct gw_bus *bus, const char *channel);

#endif
