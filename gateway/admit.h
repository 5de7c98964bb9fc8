#ifndef GW_ADMIT_H
#define GW_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

/*
 * Admission of large inputs, node-wide.  A connection may assemble a small
 * message on its own; past that it needs one of a fixed number of slots
 * (memory: a slot covers one message up to --max-message) and every byte past
 * the allowance takes a token from one bucket refilled at a fixed rate (CPU:
 * what large messages may cost the event loop per second, whoever sends
 * them).  Waiters are served first come, first served, so a hundred flooding
 * connections delay an honest upload by their turn, never starve it, and
 * never hold more than the slots' worth of memory.
 */

struct event_base;
struct gw_admit;

struct gw_admit_waiter {
    /* Called from the event loop (never from inside gw_admit_acquire) once
     * the waiter holds its slot and tokens. */
    void (*granted)(struct gw_admit_waiter *w);
    size_t need;        /* tokens wanted by the pending request */
    int64_t held_since; /* monotonic ms the slot was granted; 0 while not holding */
    bool queued;
    TAILQ_ENTRY(gw_admit_waiter) link;
};

/* What partial large messages may hold at once, node-wide: as many
 * --max-message as fit (at least 2). */
#define GW_ADMIT_BUDGET (16u * 1024 * 1024)

struct gw_ctx;
/* The node's admission: slots from GW_ADMIT_BUDGET and --max-message,
 * tokens at --large-message-rate, burst one --max-message. */
struct gw_admit *gw_admit_new_for_node(struct gw_ctx *ctx);

/* slots >= 1; rate in bytes per second; burst in bytes. */
struct gw_admit *gw_admit_new(struct event_base *base, unsigned slots, size_t rate, size_t burst);
void gw_admit_free(struct gw_admit *a);

/* Asks for a slot (unless w already holds one) and bytes tokens.  True when
 * granted at once; otherwise w is queued and w->granted runs later. */
bool gw_admit_acquire(struct gw_admit *a, struct gw_admit_waiter *w, size_t bytes);
/* Gives back w's slot and leaves the queue; safe on a waiter that holds
 * nothing. */
void gw_admit_release(struct gw_admit *a, struct gw_admit_waiter *w);

static inline bool gw_admit_holding(const struct gw_admit_waiter *w)
{
    return w->held_since != 0;
}
/* Connections waiting for admission. */
size_t gw_admit_waiting(const struct gw_admit *a);

#endif
