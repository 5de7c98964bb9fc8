#include "ratelimit.h"

void gw_rate_init(struct gw_rate *r, int burst, int64_t now_ms)
{
    r->tokens = burst;
    r->refill_ms = now_ms;
    r->window_start_ms = now_ms;
    r->drops = 0;
}

enum gw_rate_verdict gw_rate_take(struct gw_rate *r, double rate, int burst, int64_t now_ms)
{
    if (now_ms > r->refill_ms) {
        r->tokens += (double)(now_ms - r->refill_ms) * rate / 1000.0;
        if (r->tokens > burst)
            r->tokens = burst;
        r->refill_ms = now_ms;
    }
    if (r->tokens >= 1.0) {
        r->tokens -= 1.0;
        return GW_RATE_OK;
    }
    if (now_ms - r->window_start_ms > GW_RATE_WINDOW_MS) {
        r->window_start_ms = now_ms;
        r->drops = 0;
    }
    r->drops++;
    return r->drops > 10 * burst ? GW_RATE_CLOSE : GW_RATE_DROP;
}
