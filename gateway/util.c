#include <time.h>

#include <jansson.h>

#include "gateway.h"
#include "token.h"

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

/* The wall clock's error, for tests that play a node whose clock is off;
 * set once by main.c before anything runs. */
static int64_t wall_offset_ms;

void gw_set_wall_offset(int64_t ms)
{
    wall_offset_ms = ms;
}

int64_t gw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + wall_offset_ms;
}

int64_t gw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *gw_user_json(const struct chat_identity *who)
{
    json_t *u = json_pack("{s:s, s:s}", "id", who->id, "name", who->name);
    if (u)
        json_object_set_new(u, "avatar", who->avatar ? json_string(who->avatar) : json_null());
    return u;
}

char *gw_user_json_text(const struct chat_identity *who)
{
    json_t *u = gw_user_json(who);
    char *s = u ? json_dumps(u, JSON_COMPACT) : NULL;
    json_decref(u);
    return s;
}
