#ifndef GW_BUS_INTERNAL_H
#define GW_BUS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <hiredis/async.h>

#include "bus.h"
#include "keys.h"

/*
 * The bus's structs, shared by bus.c (the two connections: connect,
 * handshake, reconnect, commands, the watchdog) and bus_sub.c (the
 * subscriber side: refcounted channels and their SUBSCRIBE state machine,
 * resubscription, incoming messages).
 */

/* Reconnect backoff, doubled from the first to the last. */
#define BUS_BACKOFF_MIN_MS 100

struct event;
struct gw_dict;

/* One Redis connection.  CONNECTING: TCP in progress; HANDSHAKE: connected,
 * AUTH/SELECT/PING in flight (the command connection only); READY: usable. */
enum link_state { LINK_CLOSED, LINK_CONNECTING, LINK_HANDSHAKE, LINK_READY };

struct link {
    redisAsyncContext *ac; /* NULL when CLOSED */
    enum link_state state;
    int64_t state_since_ms; /* when it entered its state: connect and handshake deadlines */
};

struct pending {
    struct gw_bus *bus;
    gw_bus_reply_cb cb;
    void *arg;
    int64_t start_us;
    TAILQ_ENTRY(pending) link;
};

struct gw_bus {
    struct gw_ctx *ctx;
    struct link cmd;
    struct link sub;
    bool reported_up; /* what on_state was last told */
    int backoff_ms;
    struct event *reconnect_timer;
    struct event *watchdog;
    /* Commands sent and not answered, oldest first (Redis answers in
     * order): the oldest one's age is how long Redis has been silent. */
    TAILQ_HEAD(, pending) in_flight;
    int64_t ping_sent_ms;  /* last idle PING on the command connection */
    int64_t probe_sent_ms; /* last delivery probe published */
    int64_t probe_seen_ms; /* last probe that came back through the subscriber */
    bool stalled;          /* what the log last said about delivery */
    char probe_channel[GW_KEY_MAX];
    struct gw_dict *channels;
    gw_bus_message_cb on_message;
    gw_bus_state_cb on_state;
    gw_bus_subscribed_cb on_subscribed;
    void *arg;
    bool freeing;
};

/* ---- bus_sub.c, for bus.c ---- */

/* The subscriber connection is up: channels nobody wants any more are
 * forgotten, the others are subscribed again. */
void gw_bus_sub_resubscribe(struct gw_bus *bus);
/* The subscriber connection is lost: every channel is unsubscribed and its
 * waiters hear ok=false. */
void gw_bus_sub_lost(struct gw_bus *bus);
/* Frees every channel (their waiters hear ok=false); the table stays. */
void gw_bus_sub_free_channels(struct gw_bus *bus);

#endif
