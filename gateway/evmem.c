#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "evmem.h"

#if defined(__SANITIZE_ADDRESS__)
#define GW_EVMEM_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_EVMEM_CACHE 0
#endif
#endif
#ifndef GW_EVMEM_CACHE
#define GW_EVMEM_CACHE 1
#endif

/* The sizes libevent asks for its chains: powers of two from 1 KiB
 * (evbuffer_chain_new rounds up to them), headers included. */
#define SMALLEST_SHIFT 10
#define CLASSES 5 /* 1, 2, 4, 8, 16 KiB */
/* What each size may keep: enough for a loop turn's writes to feed the next
 * turn's frames, little enough not to show in RSS. */
#define CLASS_CACHE_BYTES (128u * 1024)

/* Before every block: its usable size, and its class (-1: none).  16 bytes
 * keep the caller's pointer as aligned as malloc's. */
struct header {
    alignas(16) size_t cap;
    int cls;
};

struct free_block {
    struct free_block *next;
};

static struct free_block *cached[CLASSES];
static size_t ncached[CLASSES];

static int class_of(size_t size)
{
    for (int cls = 0; cls < CLASSES; cls++)
        if (size == (size_t)1 << (SMALLEST_SHIFT + cls))
            return cls;
    return -1;
}

void *gw_evmem_alloc(size_t size)
{
    int cls = GW_EVMEM_CACHE ? class_of(size) : -1;
    struct header *h;
    if (cls >= 0 && cached[cls]) {
        h = (struct header *)cached[cls];
        cached[cls] = cached[cls]->next;
        ncached[cls]--;
    } else if (size > SIZE_MAX - sizeof(*h) || !(h = malloc(sizeof(*h) + size))) {
        return NULL;
    }
    /* Set again on reuse: a cached block's link overlays its header. */
    h->cap = size;
    h->cls = cls;
    return h + 1;
}

void gw_evmem_free(void *p)
{
    if (!p)
        return;
    struct header *h = (struct header *)p - 1;
    int cls = h->cls;
    if (cls >= 0 && ncached[cls] < CLASS_CACHE_BYTES >> (SMALLEST_SHIFT + cls)) {
        struct free_block *b = (struct free_block *)h;
        b->next = cached[cls];
        cached[cls] = b;
        ncached[cls]++;
        return;
    }
    free(h);
}

void *gw_evmem_realloc(void *p, size_t size)
{
    if (!p)
        return gw_evmem_alloc(size);
    struct header *h = (struct header *)p - 1;
    if (h->cls < 0) {
        if (size > SIZE_MAX - sizeof(*h) || !(h = realloc(h, sizeof(*h) + size)))
            return NULL;
        h->cap = size;
        return h + 1;
    }
    if (size <= h->cap)
        return p;
    void *q = gw_evmem_alloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, h->cap);
    gw_evmem_free(p);
    return q;
}

void gw_evmem_install(void)
{
    event_set_mem_functions(gw_evmem_alloc, gw_evmem_realloc, gw_evmem_free);
}

bool gw_evmem_caching(void)
{
    return GW_EVMEM_CACHE;
}

size_t gw_evmem_cached_bytes(void)
{
    size_t bytes = 0;
    for (int cls = 0; cls < CLASSES; cls++)
        bytes += ncached[cls] << (SMALLEST_SHIFT + cls);
    return bytes;
}

void gw_evmem_release(void)
{
    for (int cls = 0; cls < CLASSES; cls++) {
        while (cached[cls]) {
            struct free_block *b = cached[cls];
            cached[cls] = b->next;
            free(b);
        }
        ncached[cls] = 0;
    }
}
