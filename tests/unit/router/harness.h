#ifndef CHAT_UNIT_ROUTER_HARNESS_H
#define CHAT_UNIT_ROUTER_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

#include "config.h"
#include "fake_bus.h"
#include "gateway.h"
#include "router.h"
#include "token.h"

/*
 * One router on a fake bus, with a log of every frame it delivered: which
 * owner got which payload, in order.  Each test builds its own harness
 * (h_init) and checks at the end (h_fini) that detaching every client and
 * failing every pending command leaves no subscription and no room behind.
 */

#define H_MAX_CLIENTS 8
#define H_MAX_DELIVERIES 256

struct h_client {
    struct harness *h;
    struct chat_identity who;
    struct gw_client *c;
    bool first;     /* gw_router_attach's report */
    int close_code; /* the router's close callback: the code, 0 while open */
    char label[16];
};

struct h_delivery {
    const struct h_client *to;
    char *payload;
    size_t len;
};

/* A join in progress, as handle_rooms.c keeps it: the member slot filled by
 * gw_router_join, and the subscription readiness. */
struct h_join {
    struct gw_member *member;
    int ready_calls;
    bool ready_ok;
};

struct harness {
    struct event_base *base; /* for the router's retry timers: h_run_timers */
    char prefix[16];
    char node_id[16];
    struct chat_config cfg;
    struct gw_ctx ctx;
    struct gw_bus *bus;
    struct gw_router_ops ops;
    struct gw_router *router;
    struct h_client clients[H_MAX_CLIENTS];
    size_t nclients;
    struct h_delivery log[H_MAX_DELIVERIES];
    size_t nlog;
};

void h_init(struct harness *h);
/* Runs the event loop for ms milliseconds (the router's timers fire). */
void h_run_timers(struct harness *h, int ms);
/* Detaches every client still attached, fails every pending command, then
 * asserts no channel keeps a reference, and frees everything. */
void h_fini(struct harness *h);

/* Attaches a new session of user uid; two calls with one uid are two tabs. */
struct h_client *h_attach(struct harness *h, const char *uid);
/* gw_router_detach, whatever it reports. */
void h_detach(struct harness *h, struct h_client *c);

/* Joins a room (pending), with j tracking readiness. */
void h_join(struct harness *h, struct h_client *c, const char *room, struct h_join *j);
/* The whole join: subscribe confirmed by the bus, snapshot at snapshot_seq,
 * gw_router_join_done.  Returns the member. */
struct gw_member *h_join_full(struct harness *h, struct h_client *c, const char *room,
                              int64_t snapshot_seq);

/* Channel names. */
const char *h_room_channel(struct harness *h, const char *room, char *buf, size_t len);
const char *h_user_channel(struct harness *h, const char *uid, char *buf, size_t len);

/* Stored message JSON (post.lua heads) into buf. */
const char *h_room_msg(char *buf, size_t len, const char *room, int64_t seq);
const char *h_private_msg(char *buf, size_t len, const char *from, const char *to, int64_t seq,
                          int64_t ts);

/* Publishes payload on channel (the bus's on_message). */
void h_publish(struct harness *h, const char *channel, const char *payload);
void h_publish_room_msg(struct harness *h, const char *room, int64_t seq);

/* A history_since reply {current, msgs...} of room messages first..last. */
struct redisReply *h_room_history(const char *room, int64_t current, int64_t first, int64_t last);

/* ---- the delivery log ---- */

/* Seqs of the messages c was sent, in order, as "3,4,5" ("" when none;
 * events without seq appear as "-"). */
const char *h_seqs(const struct harness *h, const struct h_client *c, char *buf, size_t len);
/* How many frames c was sent; how many of them equal payload. */
size_t h_count(const struct harness *h, const struct h_client *c);
size_t h_count_payload(const struct harness *h, const struct h_client *c, const char *payload);
void h_log_clear(struct harness *h);

/* Asserts the seqs c received. */
#define h_assert_seqs(h, c, expected)                                                              \
    do {                                                                                           \
        char h_buf_[1024];                                                                         \
        ck_assert_str_eq(h_seqs((h), (c), h_buf_, sizeof(h_buf_)), (expected));                    \
    } while (0)

#endif
