#include <stdlib.h>

#include <event2/event.h>

#include "admit.h"
#include "config.h"
#include "gateway.h"

TAILQ_HEAD(admit_queue, gw_admit_waiter);

struct gw_admit {
    struct event *wake;
    unsigned slots_free;
    double rate; /* tokens per ms */
    double burst;
    double tokens; /* negative: a large grant is paid off before the next */
    int64_t refill_ms;
    size_t waiting;
    struct admit_queue queue;
};

static void refill(struct gw_admit *a)
{
    int64_t now = gw_mono_ms();
    if (now > a->refill_ms) {
        a->tokens += (double)(now - a->refill_ms) * a->rate;
        if (a->tokens > a->burst)
            a->tokens = a->burst;
        a->refill_ms = now;
    }
}

static void grant(struct gw_admit *a, struct gw_admit_waiter *w)
{
    if (!gw_admit_holding(w)) {
        a->slots_free--;
        w->held_since = gw_mono_ms();
        if (w->held_since == 0)
            w->held_since = 1;
    }
    a->tokens -= (double)w->need;
    w->need = 0;
}

static void schedule(struct gw_admit *a, int64_t after_ms)
{
    struct timeval tv = {after_ms / 1000, (after_ms % 1000) * 1000};
    evtimer_add(a->wake, &tv);
}

/*
 * Serves the queue in order.  A waiter that needs a slot while none is free
 * is passed over, not waited on: the holders behind it need only tokens to
 * finish their messages and give their slots back.
 */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_admit *a = arg;
    struct gw_admit_waiter *w = TAILQ_FIRST(&a->queue);
    while (w) {
        struct gw_admit_waiter *next = TAILQ_NEXT(w, link);
        if (!gw_admit_holding(w) && a->slots_free == 0) {
            w = next;
            continue;
        }
        refill(a);
        if (a->tokens <= 0) {
            schedule(a, (int64_t)(-a->tokens / a->rate) + 1);
            return;
        }
        TAILQ_REMOVE(&a->queue, w, link);
        w->queued = false;
        a->waiting--;
        grant(a, w);
        /* The callback may acquire, release or free other waiters: restart
         * from the head rather than trust next. */
        w->granted(w);
        w = TAILQ_FIRST(&a->queue);
    }
}

struct gw_admit *gw_admit_new(struct event_base *base, unsigned slots, size_t rate, size_t burst)
{
    struct gw_admit *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->wake = evtimer_new(base, on_wake, a);
    if (!a->wake) {
        free(a);
        return NULL;
    }
    a->slots_free = slots ? slots : 1;
    a->rate = (double)(rate ? rate : 1) / 1000.0;
    a->burst = (double)burst;
    a->tokens = a->burst;
    a->refill_ms = gw_mono_ms();
    TAILQ_INIT(&a->queue);
    return a;
}

void gw_admit_free(struct gw_admit *a)
{
    if (!a)
        return;
    event_free(a->wake);
    free(a);
}

bool gw_admit_acquire(struct gw_admit *a, struct gw_admit_waiter *w, size_t bytes)
{
    if (w->queued) {
        w->need += bytes;
        return false;
    }
    w->need = bytes;
    refill(a);
    /* A newcomer goes behind those already waiting; a holder only needs
     * tokens, and finishing its message is what frees a slot. */
    bool may_pass = gw_admit_holding(w) || (a->slots_free > 0 && TAILQ_EMPTY(&a->queue));
    if (may_pass && a->tokens > 0) {
        grant(a, w);
        return true;
    }
    TAILQ_INSERT_TAIL(&a->queue, w, link);
    w->queued = true;
    a->waiting++;
    schedule(a, a->tokens > 0 ? 0 : (int64_t)(-a->tokens / a->rate) + 1);
    return false;
}

void gw_admit_release(struct gw_admit *a, struct gw_admit_waiter *w)
{
    if (w->queued) {
        TAILQ_REMOVE(&a->queue, w, link);
        w->queued = false;
        a->waiting--;
    }
    w->need = 0;
    if (gw_admit_holding(w)) {
        w->held_since = 0;
        a->slots_free++;
        if (!TAILQ_EMPTY(&a->queue))
            schedule(a, 0);
    }
}

size_t gw_admit_waiting(const struct gw_admit *a)
{
    return a->waiting;
}

struct gw_admit *gw_admit_new_for_node(struct gw_ctx *ctx)
{
    size_t max = ctx->cfg->max_message ? ctx->cfg->max_message : 1;
    size_t slots = GW_ADMIT_BUDGET / max;
    if (slots < 2)
        slots = 2;
    if (slots > 1024)
        slots = 1024;
    return gw_admit_new(ctx->base, (unsigned)slots, (size_t)ctx->cfg->large_message_rate, max);
}
