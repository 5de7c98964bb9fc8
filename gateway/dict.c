#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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
    uint64_t k0, k1; /* SipHash key, random per table */
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/*
 * SipHash-2-4 (Aumasson and Bernstein) with the table's random key: keys
 * are room names, user ids and addresses that clients choose, and with an
 * unkeyed hash a client could pick names that all land in one bucket.
 */
uint64_t gw_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
    const unsigned char *in = data;
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    size_t end = len - len % 8;
    for (size_t i = 0; i < end; i += 8) {
        uint64_t m = 0;
        for (int k = 7; k >= 0; k--)
            m = (m << 8) | in[i + (size_t)k];
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t k = len % 8; k > 0; k--)
        b |= (uint64_t)in[end + k - 1] << (8 * (k - 1));
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash_key(const struct gw_dict *d, const char *key)
{
    return gw_siphash24(d->k0, d->k1, key, strlen(key));
}

/* The key comes from the kernel; should that fail, from the clock and the
 * table's address, which still differ from process to process. */
static void dict_seed(struct gw_dict *d)
{
    uint64_t k[2];
    if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)d;
        k[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ULL ^ (uint64_t)(uintptr_t)&k;
    }
    d->k0 = k[0];
    d->k1 = k[1];
}

struct gw_dict *gw_dict_new(void)
{
    struct gw_dict *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->nbuckets = 16;
    dict_seed(d);
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
    struct gw_dict_entry **slot = find_slot(d, key, hash_key(d, key));
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
    uint64_t h = hash_key(d, key);
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
    struct gw_dict_entry **slot = find_slot(d, key, hash_key(d, key));
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
