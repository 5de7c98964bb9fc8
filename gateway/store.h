#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "gateway.h"

/*
 * Redis keys and the Lua scripts of gateway/lua/ (one atomic step each:
 * append + trim + seq + publish, presence, nickname claims ...).  Scripts are
 * called by SHA-1 (computed here, no SCRIPT LOAD round trip); a NOSCRIPT
 * answer (Redis restarted) is retried once with EVAL, which caches it again.
 */

struct gw_store;

struct gw_store *gw_store_new(struct gw_ctx *ctx);
void gw_store_free(struct gw_store *st);

/* Writes prefix + formatted key into buf; returns buf, or NULL when it does
 * not fit.  Callers validate every name that goes into a key first. */
const char *gw_store_key(const struct gw_store *st, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Runs script `name` (a gateway/lua/<name>.lua) with nkeys keys followed by
 * the other args (argv borrowed, copied here; argvlen may be NULL for
 * NUL-terminated strings).  cb runs exactly once (NULL reply on failure, or a
 * REDIS_REPLY_ERROR reply when the script failed). */
int gw_store_eval(struct gw_store *st, const char *name, int nkeys, int argc, const char **argv,
                  const size_t *argvlen, gw_bus_reply_cb cb, void *arg);

/* Creates the default rooms (general, random, tech) if missing.  Called
 * whenever the bus comes up. */
void gw_store_ensure_default_rooms(struct gw_store *st);

#endif
