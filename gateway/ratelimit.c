#include <string.h>

#include "ratelimit.h"

void gw_rate_init(struct gw_rate *r, int burst, int64_t now_ms)
{
    memset(r, 0, sizeof(*r));
    r->tokens = burst;
    r->refill_ms = now_ms;
    r->drop_sec = now_ms / 1000;
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
    /* Forget the seconds that left the window since the last drop. */
    int64_t sec = now_ms / 1000;
    for (int64_t s = r->drop_sec + 1; s <= sec && s <= r->drop_sec + GW_RATE_WINDOW_SEC; s++)
        r->drops[s % GW_RATE_WINDOW_SEC] = 0;
    if (sec > r->drop_sec)
        r->drop_sec = sec;
    if (r->drops[sec % GW_RATE_WINDOW_SEC] < UINT16_MAX)
        r->drops[sec % GW_RATE_WINDOW_SEC]++;
    long total = 0;
    for (int i = 0; i < GW_RATE_WINDOW_SEC; i++)
        total += r->drops[i];
    return total > 10L * burst ? GW_RATE_CLOSE : GW_RATE_DROP;
}
