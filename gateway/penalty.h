#ifndef GW_PENALTY_H
#define GW_PENALTY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Who was cut off for abuse, and until when (monotonic ms), keyed by user
 * id.  A guest closed for flooding would otherwise reconnect at once and
 * flood again: each new connection costs a handshake, a token check and a
 * session start in Redis, so the loop of one guest could keep a node busy.
 * Bounded: past max entries the expired ones are swept, and if none are, the
 * newest penalty is not recorded.
 */

struct gw_penalty;

struct gw_penalty *gw_penalty_new(size_t max);
void gw_penalty_free(struct gw_penalty *p);

void gw_penalty_add(struct gw_penalty *p, const char *key, int64_t until_ms);
/* Milliseconds left of key's penalty at now_ms, 0 when there is none. */
int64_t gw_penalty_left(struct gw_penalty *p, const char *key, int64_t now_ms);

#endif
