#ifndef GW_EVMEM_H
#define GW_EVMEM_H

/*
 * libevent's memory, through a short cache of the buffer sizes it allocates
 * most.  Every write that empties a connection's output frees the evbuffer
 * chains that held it, and the next frame allocates them again: at 1-4 KiB
 * they are too large for glibc's per-thread cache, so each one went through
 * malloc's bins (and their consolidation), 6-8 % of a gateway's CPU in a busy
 * room under --write-delay.  A block freed here is handed to the next
 * request of its size while it is still in the CPU's cache.
 *
 * libevent is used from the main thread only (no evthread locking is set
 * up), so the cache has no lock.  Sanitizer builds skip it: a reused block
 * would hide a use after free from ASan.
 */

#include <stdbool.h>
#include <stddef.h>

/* Before any other libevent call. */
void gw_evmem_install(void);
/* Frees the cached blocks (at exit, after event_base_free). */
void gw_evmem_release(void);

/* What libevent is given (exposed for the unit tests): malloc, realloc and
 * free with the cache. */
void *gw_evmem_alloc(size_t size);
void *gw_evmem_realloc(void *p, size_t size);
void gw_evmem_free(void *p);
/* False in sanitizer builds, which pass every call through. */
bool gw_evmem_caching(void);
size_t gw_evmem_cached_bytes(void);

#endif
