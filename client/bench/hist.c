/*
 * Bucket layout: index v for v < 64; above that, with s = msb(v) - 5 (so
 * that v >> s is in 32..63), index 64 + (s - 1) * 32 + (v >> s) - 32.  The
 * bucket of index i therefore covers [low(i), low(i) + 2^s).
 */
#include "hist.h"

#include <string.h>

static int msb64(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

static unsigned bucket_of(uint64_t v)
{
    int shift;

    if (v < 2 * BENCH_HIST_SUB)
        return (unsigned)v;
    shift = msb64(v) - 5;
    return (unsigned)(2 * BENCH_HIST_SUB + (shift - 1) * BENCH_HIST_SUB + (int)(v >> shift) -
                      BENCH_HIST_SUB);
}

/* Highest value that falls in bucket i. */
static uint64_t bucket_high(unsigned i)
{
    unsigned shift;
    uint64_t sub;

    if (i < 2 * BENCH_HIST_SUB)
        return i;
    shift = (i - 2 * BENCH_HIST_SUB) / BENCH_HIST_SUB + 1;
    sub = (i - 2 * BENCH_HIST_SUB) % BENCH_HIST_SUB + BENCH_HIST_SUB;
    return ((sub + 1) << shift) - 1;
}

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t value)
{
    h->counts[bucket_of(value)]++;
    h->count++;
    h->sum += (long double)value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double percentile)
{
    uint64_t want, seen = 0;

    if (h->count == 0)
        return 0;
    if (percentile >= 100.0)
        return h->max;
    want = (uint64_t)(percentile / 100.0 * (double)h->count + 0.5);
    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = bucket_high(i);

            if (v > h->max)
                v = h->max;
            return v < h->min ? h->min : v;
        }
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count ? (double)(h->sum / (long double)h->count) : 0.0;
}
