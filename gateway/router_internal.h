#ifndef GW_ROUTER_INTERNAL_H
#define GW_ROUTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct event;

/* How far before its first session a user's first repair looks back. */
#define GW_USER_REPLAY_SLACK_MS 1000

#include "keys.h"
#include "router.h"
#include "token.h"

/*
 * The router's structs, shared by router.c (clients, rooms, room ordering),
 * router_repair.c (repair of a room's gaps), router_user.c (private
 * traffic: per-conversation order and repair) and router_control.c (operator
 * commands).
 */

/* A join or repair never takes long; a backlog this deep means something is
 * stuck, and memory matters more than that room's ordering guarantee. */
#define GW_BACKLOG_MAX 65536

enum member_state { MEMBER_PENDING, MEMBER_JOINED };

struct gw_member {
    struct gw_client *client;
    struct room *room;
    enum member_state state;
    int64_t last_seq; /* highest seq this member has been sent */
    LIST_ENTRY(gw_member) in_room;
    LIST_ENTRY(gw_member) in_client;
};

LIST_HEAD(member_list, gw_member);

struct backlog_entry {
    STAILQ_ENTRY(backlog_entry) link;
    int64_t seq;
    size_t len;
    char data[];
};

STAILQ_HEAD(backlog, backlog_entry);

struct room {
    struct gw_router *router;
    struct member_list members;
    size_t nmembers;
    int pending_joins;
    bool repairing;
    bool repair_again;   /* resubscribed while repairing: the repair may have read too early */
    struct event *retry; /* a failed repair read is tried again after retry_ms */
    int retry_ms;
    int64_t live_seq;       /* highest seq seen on the live stream, repaired, or snapshotted */
    bool synced;            /* live_seq is a real baseline (a join snapshot or live traffic) */
    bool dropping;          /* deleted by an operator: kept while its members are removed */
    struct backlog backlog; /* in seq order */
    size_t backlog_len;
    int64_t backlog_top; /* the highest seq in it */
    char channel[GW_KEY_MAX];
    char name[];
};

/* A user with at least one client on this node. */
struct user {
    LIST_HEAD(, gw_client) clients;
    size_t nclients;
    char channel[GW_KEY_MAX];
    struct chat_identity who; /* of the first client */
    /* Private traffic ordering: the last seq delivered per conversation
     * (peer id -> seq), so a repair after a lost subscription neither skips
     * nor repeats; messages before since_ms are not this node's to replay. */
    struct gw_dict *convs;
    int64_t since_ms;
    bool subscribed_once;
    bool repairing;
    bool repair_again;   /* resubscribed while repairing */
    uint64_t generation; /* tells a repair whether it is still this record's */
    struct backlog backlog;
};

struct gw_client {
    void *owner;
    const struct chat_identity *who; /* the owner's */
    struct user *user;
    struct member_list rooms;
    LIST_ENTRY(gw_client) in_user;
    LIST_ENTRY(gw_client) in_node;
    LIST_ENTRY(gw_client) in_mode; /* legacy_clients or batch_clients */
    bool presence_batch;           /* gets presence_batch instead of online/offline */
};

LIST_HEAD(client_list, gw_client);

struct gw_router {
    struct gw_ctx *ctx;
    const struct gw_router_ops *ops;
    struct gw_dict *rooms; /* channel -> room */
    struct gw_dict *users; /* channel -> user */
    LIST_HEAD(, gw_client) clients;
    size_t nclients;
    /* The same clients split by how they hear online/offline: one frame per
     * event, or one presence_batch per interval (router_presence.c). */
    struct client_list legacy_clients;
    struct client_list batch_clients;
    struct gw_presence_batch *presence_batch;
    char all_channel[GW_KEY_MAX];
    char control_channel[GW_KEY_MAX];
    uint64_t next_generation;
};

/* ---- shared by router.c, router_repair.c and router_user.c ---- */

void gw_router_send_frame(struct gw_router *r, struct gw_client *c, const struct gw_frame *f);
/* Sends an unsequenced frame to every client on this node. */
void gw_router_node_event(struct gw_router *r, const char *payload, size_t len);
struct backlog_entry *gw_router_backlog_entry(int64_t seq, const char *data, size_t len);
void gw_router_backlog_free(struct backlog *b);

/* The user record of a first client (subscribes its channel) and its end. */
struct user *gw_router_user_new(struct gw_router *r, const char *channel,
                                const struct chat_identity *who);
void gw_router_user_free(struct user *u);
/* Traffic on the user's channel. */
void gw_router_user_message(struct gw_router *r, struct user *u, const char *payload, size_t len);
/* The user's channel was (re)subscribed. */
void gw_router_user_subscribed(struct gw_router *r, struct user *u);

/* ---- rooms: router.c, for router_repair.c ---- */

void gw_router_room_backlog_clear(struct room *room);
/* Frees a room nobody is in, joining or repairing. */
void gw_router_room_maybe_free(struct gw_router *r, struct room *room);
/* Sends f to each joined member whose last seq is below seq. */
void gw_router_deliver_seq(struct room *room, int64_t seq, const struct gw_frame *f);
/* Sends an unsequenced frame to each joined member, but those of skip_uid. */
void gw_router_room_event(struct room *room, const char *payload, size_t len, const char *skip_uid,
                          size_t skip_len);

/* The local room of that name, or NULL. */
struct room *gw_router_room_find(struct gw_router *r, const char *name);

/* ---- presence batches: router_presence.c, for router.c ---- */

struct gw_presence_batch *gw_presence_batch_new(struct gw_router *r);
void gw_presence_batch_free(struct gw_presence_batch *b);
/* An event of the all channel: true when it is an online or offline (then
 * recorded for the next presence_batch, if any client here wants one), false
 * for any other event. */
bool gw_presence_batch_event(struct gw_router *r, const char *payload, size_t len);
/* One frame of payload, built (and compressed) once, to every client of list
 * (legacy_clients or batch_clients). */
void gw_router_send_each(struct gw_router *r, struct client_list *list, const char *payload,
                         size_t len);
/* --presence-batch, or longer on a node with more batch clients than
 * --presence-budget frames per second allow. */
int64_t gw_presence_batch_interval_ms(const struct gw_router *r);

/* ---- gap repair: router_repair.c, for router.c ---- */

/* Reads history and delivers the room's gap (or marks a repair in flight to
 * read again). */
void gw_router_start_repair(struct gw_router *r, struct room *room);

#endif
