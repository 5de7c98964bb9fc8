#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "gateway.h"
#include "penalty.h"

struct gw_penalty {
    struct gw_dict *until; /* key -> deadline, as an intptr_t */
    size_t max;
};

struct gw_penalty *gw_penalty_new(size_t max)
{
    struct gw_penalty *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->until = gw_dict_new();
    if (!p->until) {
        free(p);
        return NULL;
    }
    p->max = max ? max : 1;
    return p;
}

void gw_penalty_free(struct gw_penalty *p)
{
    if (!p)
        return;
    gw_dict_free(p->until);
    free(p);
}

struct sweep {
    int64_t now;
    char **expired;
    size_t n, cap;
};

static void collect_expired(const char *key, void *value, void *arg)
{
    struct sweep *sw = arg;
    if ((int64_t)(intptr_t)value > sw->now || sw->n == sw->cap)
        return;
    sw->expired[sw->n] = malloc(strlen(key) + 1);
    if (sw->expired[sw->n])
        strcpy(sw->expired[sw->n++], key);
}

static void sweep_expired(struct gw_penalty *p)
{
    struct sweep sw = {.now = gw_mono_ms(), .cap = gw_dict_size(p->until)};
    sw.expired = calloc(sw.cap ? sw.cap : 1, sizeof(*sw.expired));
    if (!sw.expired)
        return;
    gw_dict_each(p->until, collect_expired, &sw);
    for (size_t i = 0; i < sw.n; i++) {
        gw_dict_del(p->until, sw.expired[i]);
        free(sw.expired[i]);
    }
    free(sw.expired);
}

void gw_penalty_add(struct gw_penalty *p, const char *key, int64_t until_ms)
{
    if (!gw_dict_get(p->until, key) && gw_dict_size(p->until) >= p->max) {
        sweep_expired(p);
        if (gw_dict_size(p->until) >= p->max)
            return;
    }
    gw_dict_set(p->until, key, (void *)(intptr_t)until_ms);
}

int64_t gw_penalty_left(struct gw_penalty *p, const char *key, int64_t now_ms)
{
    void *v = gw_dict_get(p->until, key);
    if (!v)
        return 0;
    int64_t until = (int64_t)(intptr_t)v;
    if (until > now_ms)
        return until - now_ms;
    gw_dict_del(p->until, key);
    return 0;
}
