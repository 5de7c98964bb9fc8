#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "gateway.h"
#include "ratelimit.h"
#include "token.h"

/*
 * The node's local index: room -> members and user -> sessions, the channel
 * subscriptions that follow them, and the fan-out of pub/sub traffic to local
 * sessions: each published message is looked at once and its frame built once
 * for every local recipient.
 *
 * Rooms keep per-room ordering state: the highest seq seen on the live stream,
 * a backlog while joins or gap repairs are in flight, so that between a
 * `joined` reply and the live stream there is no gap and no repeat, and a lost
 * pub/sub message is replayed from history.
 */

struct gw_session;
struct gw_ws;

/* prefix (at most 64) + "room:{" or "user:{" + a name or id (at most 64) + "}" */
#define GW_CHANNEL_MAX 256

enum gw_member_state { GW_MEMBER_PENDING, GW_MEMBER_JOINED };

struct gw_member {
    struct gw_session *session;
    struct gw_room *room;
    enum gw_member_state state;
    int64_t last_seq; /* highest seq this member has been sent */
    LIST_ENTRY(gw_member) in_room;
    LIST_ENTRY(gw_member) in_session;
};

LIST_HEAD(gw_member_list, gw_member);

struct gw_backlog_entry {
    STAILQ_ENTRY(gw_backlog_entry) link;
    int64_t seq;
    size_t len;
    char data[];
};

struct gw_room {
    struct gw_router *router;
    struct gw_member_list members;
    size_t nmembers;
    int pending_joins;
    bool repairing;
    int64_t live_seq; /* highest seq seen on the live stream, repaired, or snapshotted */
    bool synced;      /* live_seq is a real baseline (a join snapshot or live traffic) */
    STAILQ_HEAD(, gw_backlog_entry) backlog;
    size_t backlog_len;
    char channel[GW_CHANNEL_MAX];
    char name[];
};

/* A user with at least one session on this node. */
struct gw_user {
    LIST_HEAD(, gw_session) sessions;
    size_t nsessions;
    char channel[GW_CHANNEL_MAX];
    struct chat_identity who; /* of the first session */
    /* Private traffic ordering: the last seq delivered per conversation
     * (peer id -> seq), so a repair after a lost subscription neither skips
     * nor repeats; messages before since_ms are not this node's to replay. */
    struct gw_dict *convs;
    int64_t since_ms;
    bool subscribed_once;
    bool repairing;
    STAILQ_HEAD(, gw_backlog_entry) backlog;
};

/* What the router needs to know about a session, owned by session.c. */
struct gw_session {
    struct gw_ctx *ctx;
    struct gw_conn *conn;
    struct gw_ws *ws; /* NULL once the socket is gone */
    struct gw_user *user;
    struct chat_identity who;
    uint64_t id;
    int refs;
    bool closed;   /* the socket is gone or going: send nothing, answer nothing */
    bool welcomed; /* live traffic flows only after `welcome` */
    struct gw_member_list rooms;
    LIST_ENTRY(gw_session) in_user;
    LIST_ENTRY(gw_session) in_node;
    struct gw_rate rate;
    /* one request at a time, the rest wait here */
    bool busy;
    STAILQ_HEAD(, gw_backlog_entry) inbox;
    size_t inbox_len;
};

struct gw_router *gw_router_new(struct gw_ctx *ctx);
void gw_router_free(struct gw_router *r);

/* Registers s under its user (subscribing chat:user:{id} for the first one);
 * returns true when s is the user's first session on this node. */
bool gw_router_add_session(struct gw_router *r, struct gw_session *s);
/* Unregisters s from its user and every room; returns true when it was the
 * user's last session on this node.  Leaves (presence) are reported through
 * the on_last_in_room callback passed to gw_router_new's owner. */
bool gw_router_remove_session(struct gw_router *r, struct gw_session *s);

/* Finds or creates the local room and adds a PENDING member for s, stored in
 * *slot before the channel is subscribed: ready may run before this returns
 * (already subscribed, or Redis down), and then finds the member in *slot.
 * Returns false only when nothing was done (no memory); after true the
 * caller must not touch arg, which ready owns. */
bool gw_router_join(struct gw_router *r, struct gw_session *s, const char *room,
                    struct gw_member **slot, void (*ready)(bool ok, void *arg), void *arg);
/* Completes a join: the member was sent a snapshot up to snapshot_seq; the
 * backlog after it follows at once, then live traffic. */
void gw_router_join_done(struct gw_router *r, struct gw_member *m, int64_t snapshot_seq);
/* Removes m; true when m was the last member of its user in that room on this
 * node (the caller then reports the leave). */
bool gw_router_leave(struct gw_router *r, struct gw_member *m);

struct gw_member *gw_router_find_member(struct gw_session *s, const char *room);
/* True when the user has another session in the room on this node. */
bool gw_router_user_in_room(struct gw_router *r, const char *user_id, const char *room,
                            const struct gw_member *except);

/* Pub/sub entry point (bus on_message). */
void gw_router_on_message(struct gw_router *r, const char *channel, size_t channel_len,
                          const char *payload, size_t len);
/* A channel was (re)subscribed: a room that already saw live traffic may
 * have missed messages while unsubscribed, so it is repaired from history. */
void gw_router_on_subscribed(struct gw_router *r, const char *channel);

/* Sends a text frame to one session (skips closed ones). */
void gw_router_send(struct gw_session *s, const char *data, size_t len);

/* Iteration for the presence refresh. */
typedef void (*gw_router_user_cb)(struct gw_user *u, const char *user_id, void *arg);
void gw_router_each_user(struct gw_router *r, gw_router_user_cb fn, void *arg);
typedef void (*gw_router_room_user_cb)(const char *room, const char *user_id,
                                       const struct chat_identity *who, void *arg);
/* Each distinct (room, user) pair with a joined member on this node. */
void gw_router_each_room_user(struct gw_router *r, gw_router_room_user_cb fn, void *arg);
size_t gw_router_session_count(const struct gw_router *r);

/* Extracts the seq of a stored message ("seq":N near its start); -1 if none. */
int64_t gw_router_message_seq(const char *json, size_t len);

#endif
