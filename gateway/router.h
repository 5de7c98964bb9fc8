#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

/*
 * The node's local index: room -> members and user -> clients, the channel
 * subscriptions that follow them, and the fan-out of pub/sub traffic to local
 * clients: each published message is looked at once and its frame built once
 * for every local recipient.
 *
 * A client is what the router knows of a session: an opaque owner pointer
 * and the user's identity.  Frames reach the owner through the deliver
 * callback given to gw_router_new; the router never sees sockets.
 *
 * Rooms keep per-room ordering state: the highest seq seen on the live stream,
 * a backlog while joins or gap repairs are in flight, so that between a
 * `joined` reply and the live stream there is no gap and no repeat, and a lost
 * pub/sub message is replayed from history.
 */

struct chat_identity;
struct gw_frame;
struct gw_router;
struct gw_client; /* one session, as the router sees it */
struct gw_member; /* one client in one room */

struct gw_router_ops {
    /* Sends f (borrowed for the call) to the session owning a client.  The
     * owner decides whether it can take it (closed, not welcomed yet).  It
     * must not detach the client or make it leave a room from inside. */
    void (*deliver)(void *owner, const struct gw_frame *f);
    /* Closes the session owning a client with a WebSocket close code (an
     * operator's kick).  The owner may detach its client from inside, but no
     * other client. */
    void (*close)(void *owner, uint16_t code, const char *reason);
};

struct gw_router *gw_router_new(struct gw_ctx *ctx, const struct gw_router_ops *ops);
void gw_router_free(struct gw_router *r);

/* Registers a session of who (borrowed: it must outlive the client) with
 * owner for delivery, stored in *slot, and subscribes chat:user:{id} for it:
 * ready (may be NULL) runs once the subscription is confirmed, or with
 * ok=false when Redis is down, possibly before this returns.  *first tells
 * whether this is the user's first client on this node.  False only when
 * nothing was done (no memory). */
bool gw_router_attach(struct gw_router *r, const struct chat_identity *who, void *owner,
                      struct gw_client **slot, bool *first, void (*ready)(bool ok, void *arg),
                      void *arg);
/* The client asked for presence_batch (docs/protocol.md): from now on it gets
 * online/offline coalesced, one frame per --presence-batch interval. */
void gw_router_set_presence_batch(struct gw_router *r, struct gw_client *c);
/* Unregisters a client after it left every room; true when it was the
 * user's last client on this node. */
bool gw_router_detach(struct gw_router *r, struct gw_client *c);

/* Finds or creates the local room and adds a PENDING member for c, stored in
 * *slot before the channel is subscribed: ready may run before this returns
 * (already subscribed, or Redis down), and then finds the member in *slot.
 * Returns false only when nothing was done (no memory); after true the
 * caller must not touch arg, which ready owns. */
bool gw_router_join(struct gw_router *r, struct gw_client *c, const char *room,
                    struct gw_member **slot, void (*ready)(bool ok, void *arg), void *arg);
/* Completes a join: the member was sent a snapshot up to snapshot_seq; the
 * backlog after it follows at once, then live traffic. */
void gw_router_join_done(struct gw_router *r, struct gw_member *m, int64_t snapshot_seq);
/* A repeated join of a joined member was sent a snapshot up to snapshot_seq:
 * nothing at or below it is sent again. */
void gw_router_rejoin_done(struct gw_member *m, int64_t snapshot_seq);
/* Removes m; true when m was the last member of its user in that room on this
 * node (the caller then reports the leave). */
bool gw_router_leave(struct gw_router *r, struct gw_member *m);

struct gw_member *gw_router_find_member(const struct gw_client *c, const char *room);
/* Any member of c (for teardown: leave until NULL), and the walk over all
 * of them: gw_member_next(m) is the next of m's client, or NULL. */
struct gw_member *gw_router_any_member(const struct gw_client *c);
struct gw_member *gw_member_next(const struct gw_member *m);
bool gw_member_joined(const struct gw_member *m);
const char *gw_member_room(const struct gw_member *m);
/* True when the user has another joined member in the room on this node
 * (pending ones do not count). */
bool gw_router_user_in_room(struct gw_router *r, const char *user_id, const char *room,
                            const struct gw_member *except);

/* Pub/sub entry point (bus on_message). */
void gw_router_on_message(struct gw_router *r, const char *channel, size_t channel_len,
                          const char *payload, size_t len);
/* Traffic on the control channel (router_control.c): operator commands from
 * chat-admin, checked like any peer input; what does not parse is logged and
 * ignored. */
void gw_router_control(struct gw_router *r, const char *payload, size_t len);
/* A channel was (re)subscribed: a room that already saw live traffic may
 * have missed messages while unsubscribed, so it is repaired from history. */
void gw_router_on_subscribed(struct gw_router *r, const char *channel);

/* Iteration for the presence refresh: each user with a client here, and
 * each distinct (room, user) pair with a joined member here. */
typedef void (*gw_router_user_cb)(const struct chat_identity *who, void *arg);
void gw_router_each_user(struct gw_router *r, gw_router_user_cb fn, void *arg);
typedef void (*gw_router_room_user_cb)(const char *room, const struct chat_identity *who,
                                       void *arg);
void gw_router_each_room_user(struct gw_router *r, gw_router_room_user_cb fn, void *arg);
size_t gw_router_session_count(const struct gw_router *r);

/* Extracts the seq of a stored message ("seq":N near its start); -1 if none. */
int64_t gw_router_message_seq(const char *json, size_t len);

#endif
