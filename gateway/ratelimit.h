#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stdint.h>

/*
 * The per-connection token bucket of section 4: every client frame costs one
 * token from a bucket refilled at R per second up to B.  A frame without a
 * token is dropped; more than 10*B drops within 10 s closes the connection.
 * Drops are counted per second over the last ten seconds (a sliding window
 * with one-second steps).  Pure arithmetic on a caller-owned struct, so it is
 * tested without sockets.
 */

#define GW_RATE_WINDOW_SEC 10

enum gw_rate_verdict { GW_RATE_OK = 0, GW_RATE_DROP = 1, GW_RATE_CLOSE = 2 };

struct gw_rate {
    double tokens;
    int64_t refill_ms;
    int64_t drop_sec;                   /* the second drops[drop_sec % 10] counts */
    uint16_t drops[GW_RATE_WINDOW_SEC]; /* drops per second, a ring */
};

void gw_rate_init(struct gw_rate *r, int burst, int64_t now_ms);
/* Takes one token at now_ms (a monotonic clock). */
enum gw_rate_verdict gw_rate_take(struct gw_rate *r, double rate, int burst, int64_t now_ms);

#endif
