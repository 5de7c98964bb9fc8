#include "ratelimit.h"
#include "tests.h"

/* Takes n tokens at now and checks that each gets want. */
static void take_n(struct gw_rate *r, double rate, int burst, int64_t now, int n,
                   enum gw_rate_verdict want)
{
    for (int i = 0; i < n; i++) {
        enum gw_rate_verdict v = gw_rate_take(r, rate, burst, now);
        ck_assert_msg(v == want, "take %d of %d at %lld: verdict %d, want %d", i + 1, n,
                      (long long)now, (int)v, (int)want);
    }
}

START_TEST(test_starts_full)
{
    struct gw_rate r;
    gw_rate_init(&r, 20, 1000);
    take_n(&r, 10, 20, 1000, 20, GW_RATE_OK);
    take_n(&r, 10, 20, 1000, 1, GW_RATE_DROP);
}
END_TEST

START_TEST(test_refill)
{
    struct gw_rate r;
    gw_rate_init(&r, 5, 0);
    take_n(&r, 10, 5, 0, 5, GW_RATE_OK);
    take_n(&r, 10, 5, 0, 1, GW_RATE_DROP);
    /* 10/s: half a token after 50 ms is not enough, a whole one after 100 ms is. */
    take_n(&r, 10, 5, 50, 1, GW_RATE_DROP);
    take_n(&r, 10, 5, 100, 1, GW_RATE_OK);
    take_n(&r, 10, 5, 100, 1, GW_RATE_DROP);
    /* 300 ms later: three tokens. */
    take_n(&r, 10, 5, 400, 3, GW_RATE_OK);
    take_n(&r, 10, 5, 400, 1, GW_RATE_DROP);
}
END_TEST

START_TEST(test_capped_at_burst)
{
    struct gw_rate r;
    gw_rate_init(&r, 4, 0);
    take_n(&r, 10, 4, 0, 4, GW_RATE_OK);
    /* A long silence refills to the burst, not beyond. */
    take_n(&r, 10, 4, 100000, 4, GW_RATE_OK);
    take_n(&r, 10, 4, 100000, 1, GW_RATE_DROP);
}
END_TEST

START_TEST(test_steady_rate_never_drops)
{
    struct gw_rate r;
    gw_rate_init(&r, 2, 0);
    /* 10/s sent at exactly 10/s for a minute. */
    for (int64_t t = 0; t < 60000; t += 100)
        take_n(&r, 10, 2, t, 1, GW_RATE_OK);
}
END_TEST

START_TEST(test_close_after_10b_drops)
{
    struct gw_rate r;
    const int burst = 3;
    const double rate = 0.001; /* one token per 1000 s: none refill during the test */
    gw_rate_init(&r, burst, 0);
    take_n(&r, rate, burst, 0, burst, GW_RATE_OK);
    /* Exactly 10*B drops are tolerated, the next one closes. */
    for (int i = 0; i < 10 * burst; i++)
        take_n(&r, rate, burst, 100 + i * 10, 1, GW_RATE_DROP);
    take_n(&r, rate, burst, 9000, 1, GW_RATE_CLOSE);
}
END_TEST

START_TEST(test_window_resets)
{
    struct gw_rate r;
    const int burst = 2;
    const double rate = 0.001;
    gw_rate_init(&r, burst, 0);
    take_n(&r, rate, burst, 0, burst, GW_RATE_OK);
    take_n(&r, rate, burst, 10, 10 * burst, GW_RATE_DROP);
    /* More than 10 s later the count starts again. */
    take_n(&r, rate, burst, 10100, 10 * burst, GW_RATE_DROP);
    take_n(&r, rate, burst, 10200, 1, GW_RATE_CLOSE);
}
END_TEST

START_TEST(test_slow_drops_never_close)
{
    struct gw_rate r;
    const int burst = 2;
    gw_rate_init(&r, burst, 0);
    take_n(&r, 0.001, burst, 0, burst, GW_RATE_OK);
    /* One drop per second is below 10*B per 10 s, forever. */
    for (int64_t t = 1000; t <= 120000; t += 1000)
        take_n(&r, 0.001, burst, t, 1, GW_RATE_DROP);
}
END_TEST

TCase *ratelimit_tcase(void)
{
    TCase *tc = tcase_create("ratelimit");
    tcase_add_test(tc, test_starts_full);
    tcase_add_test(tc, test_refill);
    tcase_add_test(tc, test_capped_at_burst);
    tcase_add_test(tc, test_steady_rate_never_drops);
    tcase_add_test(tc, test_close_after_10b_drops);
    tcase_add_test(tc, test_window_resets);
    tcase_add_test(tc, test_slow_drops_never_close);
    return tc;
}
