/* Unit tests of chat-bench's histogram and frame scanner (no network). */
#include "test_bench.h"
#include "hist.h"
#include "scan.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static struct bench_frame scan_ok(const char *json)
{
    struct bench_frame f;

    ck_assert_int_eq(bench_scan_frame(json, strlen(json), &f), 0);
    return f;
}

START_TEST(scan_reads_top_level_fields)
{
    struct bench_frame f = scan_ok(
        "{\"type\":\"message\",\"room\":\"bench-1\",\"seq\":42,\"ts\":1700000000000,"
        "\"from\":{\"id\":\"u1\",\"name\":\"n\",\"seq\":7,\"type\":\"x\"},\"kind\":\"text\","
        "\"body\":\"cb1:ab:1:2:3:xx\",\"id\":\"m5\"}");

    ck_assert(bench_str_is(f.type, "message"));
    ck_assert(bench_str_is(f.room, "bench-1"));
    ck_assert(bench_str_is(f.body, "cb1:ab:1:2:3:xx"));
    ck_assert(bench_str_is(f.id, "m5"));
    ck_assert_int_eq(f.seq, 42);
    ck_assert_ptr_null(f.code.p);
}
END_TEST

START_TEST(scan_skips_strings_and_nesting)
{
    /* Field names inside strings, arrays and objects are not top-level ones;
     * escaped quotes and backslashes do not end a string early. */
    struct bench_frame f =
        scan_ok(" { \"body\" : \"a \\\"seq\\\":9, \\\\\" , \"x\":[1,{\"seq\":3},\"]\",[]],"
                "\"y\":{\"room\":\"r\"},\"type\":\"ack\",\"seq\":5 } ");

    ck_assert(bench_str_is(f.body, "a \\\"seq\\\":9, \\\\"));
    ck_assert(bench_str_is(f.type, "ack"));
    ck_assert_ptr_null(f.room.p);
    ck_assert_int_eq(f.seq, 5);
}
END_TEST

START_TEST(scan_rejects_garbage)
{
    static const char *const bad[] = {
        "", "[]", "{", "{\"a\"}", "{\"a\":1", "{\"a\":\"x}", "{\"a\":1,}", "{\"a\":]}", "nope",
    };
    struct bench_frame f;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(bench_scan_frame(bad[i], strlen(bad[i]), &f) != 0, "accepted %s", bad[i]);
    f = scan_ok("{}");
    ck_assert_int_eq(f.seq, -1);
    f = scan_ok("{\"seq\":-1}");
    ck_assert_int_eq(f.seq, -1);
    f = scan_ok("{\"seq\":\"7\"}");
    ck_assert_int_eq(f.seq, -1);
    f = scan_ok("{\"seq\":99999999999999999999999}");
    ck_assert_int_eq(f.seq, -1);
}
END_TEST

START_TEST(hist_percentiles_within_precision)
{
    struct bench_hist *h = malloc(sizeof(*h));

    ck_assert_ptr_nonnull(h);
    bench_hist_init(h);
    ck_assert_uint_eq(bench_hist_percentile(h, 50), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        bench_hist_record(h, v * 1000);
    ck_assert_uint_eq(h->count, 100000);
    ck_assert_uint_eq(h->min, 1000);
    ck_assert_uint_eq(bench_hist_percentile(h, 100), 100000000);
    /* Each percentile is within 1/32 above the exact value. */
    for (double p = 10; p < 100; p += 10) {
        uint64_t exact = (uint64_t)(p * 1000) * 1000;
        uint64_t got = bench_hist_percentile(h, p);

        ck_assert_msg(got >= exact && got <= exact + exact / 32, "p%.0f: %lu vs %lu", p,
                      (unsigned long)got, (unsigned long)exact);
    }
    ck_assert(bench_hist_mean(h) > 50000000 && bench_hist_mean(h) < 50001000);
    free(h);
}
END_TEST

START_TEST(hist_extremes_and_merge)
{
    struct bench_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    bench_hist_init(a);
    bench_hist_init(b);
    bench_hist_record(a, 0);
    bench_hist_record(a, 63);
    bench_hist_record(b, UINT64_MAX);
    bench_hist_merge(a, b);
    ck_assert_uint_eq(a->count, 3);
    ck_assert_uint_eq(bench_hist_percentile(a, 1), 0);
    ck_assert_uint_eq(bench_hist_percentile(a, 50), 63);
    ck_assert_uint_eq(bench_hist_percentile(a, 99.9), UINT64_MAX);
    free(a);
    free(b);
}
END_TEST

TCase *bench_tcase(void)
{
    TCase *tc = tcase_create("bench");

    tcase_add_test(tc, scan_reads_top_level_fields);
    tcase_add_test(tc, scan_skips_strings_and_nesting);
    tcase_add_test(tc, scan_rejects_garbage);
    tcase_add_test(tc, hist_percentiles_within_precision);
    tcase_add_test(tc, hist_extremes_and_merge);
    return tc;
}
