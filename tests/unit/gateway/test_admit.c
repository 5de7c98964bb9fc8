#include <event2/event.h>

#include "admit.h"
#include "gateway.h"
#include "tests.h"

/* Records the order in which waiters were granted. */
struct probe {
    struct gw_admit_waiter w;
    int id;
};

static int granted_order[16];
static int granted_count;

static void on_granted(struct gw_admit_waiter *w)
{
    struct probe *p = (struct probe *)w;
    granted_order[granted_count++] = p->id;
}

static void probes_init(struct probe *p, int n)
{
    granted_count = 0;
    for (int i = 0; i < n; i++) {
        p[i] = (struct probe){.w = {.granted = on_granted}, .id = i};
    }
}

/* Runs the loop until nothing is pending or max_ms pass. */
static void run_for(struct event_base *base, int max_ms)
{
    int64_t end = gw_mono_ms() + max_ms;
    while (gw_mono_ms() < end) {
        struct timeval tv = {0, 5000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
}

START_TEST(test_slots_then_fifo)
{
    struct event_base *base = event_base_new();
    struct gw_admit *a = gw_admit_new(base, 2, 1 << 30, 1 << 30);
    struct probe p[4];
    probes_init(p, 4);
    ck_assert(gw_admit_acquire(a, &p[0].w, 100));
    ck_assert(gw_admit_acquire(a, &p[1].w, 100));
    ck_assert(!gw_admit_acquire(a, &p[2].w, 100));
    ck_assert(!gw_admit_acquire(a, &p[3].w, 100));
    ck_assert_uint_eq(gw_admit_waiting(a), 2);
    run_for(base, 20);
    ck_assert_int_eq(granted_count, 0); /* no slot was given back */
    gw_admit_release(a, &p[1].w);
    run_for(base, 20);
    ck_assert_int_eq(granted_count, 1);
    ck_assert_int_eq(granted_order[0], 2); /* first come, first served */
    ck_assert(gw_admit_holding(&p[2].w));
    /* A waiter that leaves the queue is never granted. */
    gw_admit_release(a, &p[3].w);
    gw_admit_release(a, &p[0].w);
    run_for(base, 20);
    ck_assert_int_eq(granted_count, 1);
    ck_assert_uint_eq(gw_admit_waiting(a), 0);
    /* A newcomer does not pass the queue even with a slot free. */
    ck_assert(gw_admit_acquire(a, &p[0].w, 1));
    gw_admit_release(a, &p[0].w);
    gw_admit_release(a, &p[2].w);
    gw_admit_free(a);
    event_base_free(base);
}
END_TEST

START_TEST(test_holder_passes_slot_waiters)
{
    /* Every slot is held by a message that still needs tokens, and the head
     * of the queue needs a slot: the holders must be served past it, or no
     * slot would ever come back. */
    struct event_base *base = event_base_new();
    struct gw_admit *a = gw_admit_new(base, 2, 1000000, 1000);
    struct probe p[3];
    probes_init(p, 3);
    ck_assert(gw_admit_acquire(a, &p[0].w, 20000)); /* 19 ms into debt */
    ck_assert(!gw_admit_acquire(a, &p[1].w, 10));   /* a slot is free, tokens are not */
    run_for(base, 30);
    ck_assert_int_eq(granted_count, 1);
    ck_assert_int_eq(granted_order[0], 1);
    ck_assert(!gw_admit_acquire(a, &p[2].w, 10));   /* no slot left */
    ck_assert(gw_admit_acquire(a, &p[0].w, 20000)); /* a holder with tokens: at once */
    ck_assert(!gw_admit_acquire(a, &p[0].w, 10));   /* in debt: queued behind p[2] */
    run_for(base, 30);
    ck_assert_int_eq(granted_count, 2);
    ck_assert_int_eq(granted_order[1], 0);
    ck_assert(p[2].w.queued);
    gw_admit_release(a, &p[0].w);
    run_for(base, 30);
    ck_assert_int_eq(granted_count, 3);
    ck_assert_int_eq(granted_order[2], 2);
    ck_assert(gw_admit_holding(&p[2].w));
    gw_admit_release(a, &p[1].w);
    gw_admit_release(a, &p[2].w);
    gw_admit_free(a);
    event_base_free(base);
}
END_TEST

static int64_t granted_at[16];

static void on_granted_timed(struct gw_admit_waiter *w)
{
    granted_at[granted_count] = gw_mono_ms();
    on_granted(w);
}

START_TEST(test_rate_paces_grants)
{
    /* 100 kB/s, burst 10 kB.  A grant may run into debt, and the next waits
     * until it is paid: 10 kB grants about 100 ms apart once the burst is
     * spent. */
    struct event_base *base = event_base_new();
    struct gw_admit *a = gw_admit_new(base, 4, 100000, 10000);
    struct probe p[4];
    probes_init(p, 4);
    for (int i = 0; i < 4; i++)
        p[i].w.granted = on_granted_timed;
    /* Twice the burst: 100 ms in debt, so the next acquire waits even when
     * a slow (sanitized) run lets a millisecond pass in between. */
    ck_assert(gw_admit_acquire(a, &p[0].w, 20000));
    ck_assert(!gw_admit_acquire(a, &p[1].w, 10000));
    ck_assert(!gw_admit_acquire(a, &p[2].w, 10000));
    ck_assert(!gw_admit_acquire(a, &p[3].w, 10000));
    run_for(base, 500);
    ck_assert_int_eq(granted_count, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(granted_order[i], i + 1);
    for (int i = 1; i < 3; i++)
        ck_assert_msg(granted_at[i] - granted_at[i - 1] >= 90,
                      "grants %d and %d only %lld ms apart at 100 kB/s", i - 1, i,
                      (long long)(granted_at[i] - granted_at[i - 1]));
    for (int i = 0; i < 4; i++)
        gw_admit_release(a, &p[i].w);
    gw_admit_free(a);
    event_base_free(base);
}
END_TEST

TCase *admit_tcase(void)
{
    TCase *tc = tcase_create("admit");
    tcase_add_test(tc, test_slots_then_fifo);
    tcase_add_test(tc, test_holder_passes_slot_waiters);
    tcase_add_test(tc, test_rate_paces_grants);
    return tc;
}
