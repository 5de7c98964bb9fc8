#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

/*
 * A log-bucketed latency histogram in the style of HdrHistogram: values
 * below 64 are exact, above that every power of two is split into 32 linear
 * sub-buckets, so any recorded value is known to within 1/32 (3.2 %) with a
 * fixed 17 KiB table, whatever the number of samples.  Min, max, count and
 * sum are exact.  Values are unsigned 64-bit (the bench records nanoseconds).
 */

#define BENCH_HIST_SUB 32
#define BENCH_HIST_BUCKETS (2 * BENCH_HIST_SUB + 63 * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t count;
    uint64_t min;
    uint64_t max;
    long double sum;
};

void bench_hist_init(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t value);
/* Adds every sample of src to dst. */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* The value at or below which `percentile` (0-100) percent of the samples
 * fall: the highest value equivalent to its bucket, clamped to [min, max].
 * 0 when empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double percentile);
double bench_hist_mean(const struct bench_hist *h);

#endif
