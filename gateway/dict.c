#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "gateway.h"

struct gw_dict_entry {
    struct gw_dict_entry *next;
    void *value;
    uint64_t hash;
    char key[];
};

struct gw_dict {
    struct gw_dict_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t size;
};

static uint64_t hash_key(const char *key)
{
    /* FNV-1a: keys are short names and ids, collisions are cheap to chain. */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

struct gw_dict *gw_dict_new(void)
{
    struct gw_dict *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->nbuckets = 16;
    d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
    if (!d->buckets) {
        free(d);
        return NULL;
    }
    return d;
}

void gw_dict_free(struct gw_dict *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        struct gw_dict_entry *e = d->buckets[i];
        while (e) {
            struct gw_dict_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(d->buckets);
    free(d);
}

static struct gw_dict_entry **find_slot(const struct gw_dict *d, const char *key, uint64_t h)
{
    struct gw_dict_entry **slot = &d->buckets[h & (d->nbuckets - 1)];
    while (*slot && !((*slot)->hash == h && strcmp((*slot)->key, key) == 0))
        slot = &(*slot)->next;
    return slot;
}

void *gw_dict_get(const struct gw_dict *d, const char *key)
{
    struct gw_dict_entry **slot = find_slot(d, key, hash_key(key));
    return *slot ? (*slot)->value : NULL;
}

static void grow(struct gw_dict *d)
{
    size_t n = d->nbuckets * 2;
    struct gw_dict_entry **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < d->nbuckets; i++) {
        struct gw_dict_entry *e = d->buckets[i];
        while (e) {
            struct gw_dict_entry *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
}

int gw_dict_set(struct gw_dict *d, const char *key, void *value)
{
    uint64_t h = hash_key(key);
    struct gw_dict_entry **slot = find_slot(d, key, h);
    if (*slot) {
        (*slot)->value = value;
        return GW_OK;
    }
    size_t klen = strlen(key);
    struct gw_dict_entry *e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        return GW_ERR_NOMEM;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *slot = e;
    d->size++;
    if (d->size > d->nbuckets)
        grow(d);
    return GW_OK;
}

void *gw_dict_del(struct gw_dict *d, const char *key)
{
    struct gw_dict_entry **slot = find_slot(d, key, hash_key(key));
    struct gw_dict_entry *e = *slot;
    if (!e)
        return NULL;
    void *value = e->value;
    *slot = e->next;
    free(e);
    d->size--;
    return value;
}

size_t gw_dict_size(const struct gw_dict *d)
{
    return d->size;
}

void gw_dict_each(const struct gw_dict *d, gw_dict_each_cb fn, void *arg)
{
    for (size_t i = 0; i < d->nbuckets; i++)
        for (struct gw_dict_entry *e = d->buckets[i]; e; e = e->next)
            fn(e->key, e->value, arg);
}
