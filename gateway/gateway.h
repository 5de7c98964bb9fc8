#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The wiring shared by every gateway module: one struct gw_ctx built by
 * main.c and handed to each module's constructor.  Modules own their state;
 * the context only points at them.  Nothing here is global.
 */

struct event_base;
struct chat_config;
struct chat_token_verifier;
struct gw_metrics;
struct gw_bus;
struct gw_store;
struct gw_router;
struct gw_presence;
struct gw_listener;
struct gw_admit;
struct gw_offload;
struct gw_penalty;
struct gw_deflate;
struct chat_identity;
typedef struct json_t json_t;

/* main.c gives the event base three priorities; every event gets the
 * middle one but the Redis commands' flush (bus_events.c), which runs in
 * the loop pass after the others: commands go out after the pass's
 * fan-out has been written, so replies and messages come back in bursts
 * that share loop turns (and writes) instead of trickling in. */
enum { GW_EVENT_PRIORITIES = 3, GW_EVENT_PRIORITY_LAST = 2 };

enum gw_err {
    GW_OK = 0,
    GW_ERR_NOMEM = -1,
    GW_ERR_IO = -2,
    GW_ERR_INVALID = -3,
    GW_ERR_UNAVAILABLE = -4,
    GW_ERR_TOO_LARGE = -5,
};

const char *gw_strerror(int err);

struct gw_ctx {
    const struct chat_config *cfg;
    const struct chat_token_verifier *verifier; /* checks every token (HS256, RS256/ES256) */
    struct event_base *base;
    struct gw_metrics *metrics;
    struct gw_bus *bus;
    struct gw_store *store;
    struct gw_router *router;
    struct gw_presence *presence;
    struct gw_listener *listener;
    struct gw_admit *admit;     /* large incoming messages, node-wide (admit.h) */
    struct gw_offload *offload; /* their parsing, off the loop (offload.h); may be NULL */
    struct gw_penalty *penalty; /* users cut off for flooding (penalty.h) */
    struct gw_deflate *deflate; /* permessage-deflate streams (deflate.h); NULL: --deflate off */
    bool draining;
    uint64_t next_conn_id;
};

/* Wall clock in milliseconds since the epoch. */
int64_t gw_now_ms(void);
/* Tests only (CHAT_TEST_CLOCK_OFFSET_MS): shifts gw_now_ms, to play a node
 * whose clock is off. */
void gw_set_wall_offset(int64_t ms);
/* Monotonic clock in milliseconds, for rate buckets and timeouts. */
int64_t gw_mono_ms(void);

/* {"id","name","avatar"} of a user, avatar null when there is none: the one
 * shape of a user in every reply and event.  NULL on no memory. */
json_t *gw_user_json(const struct chat_identity *who);
/* The same, serialized compactly (malloc'd; NULL on no memory). */
char *gw_user_json_text(const struct chat_identity *who);

#endif
