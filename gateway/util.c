#include <time.h>

#include "gateway.h"

const char *gw_strerror(int err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_ERR_NOMEM:
        return "out of memory";
    case GW_ERR_IO:
        return "i/o error";
    case GW_ERR_INVALID:
        return "invalid argument";
    case GW_ERR_UNAVAILABLE:
        return "redis unavailable";
    case GW_ERR_TOO_LARGE:
        return "too large";
    default:
        return "unknown error";
    }
}

int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t gw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
