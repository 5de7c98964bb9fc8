#ifndef GW_SLOTS_H
#define GW_SLOTS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Redis Cluster key distribution, as the Cluster specification defines it:
 * 16384 hash slots, a key's slot the CRC16 (XMODEM) of the key modulo 16384,
 * or of its hash tag (what lies between the first '{' and the first '}' after
 * it, when that is not empty).  And the slot map of one cluster: which master
 * serves each slot, read from a CLUSTER SLOTS reply.  Pure data: no I/O.
 */

struct redisReply;

#define GW_SLOTS 16384

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis uses it. */
unsigned gw_slots_crc16(const char *buf, size_t len);
/* The hash slot of a key (0 to GW_SLOTS - 1). */
unsigned gw_slots_keyslot(const char *key, size_t len);

/* The slot a command's keys hash to: GW_SLOTS_ANY for a command without a key
 * (any node may answer it), GW_SLOTS_CROSS when its keys hash to different
 * slots.  Knows the commands the gateway sends: EVAL/EVALSHA (numkeys keys),
 * DEL/EXISTS (every argument), PUBLISH/PING/INFO/... (none), and otherwise
 * the first argument.  lens may be NULL for NUL-terminated arguments. */
#define GW_SLOTS_ANY (-1)
#define GW_SLOTS_CROSS (-2)
int gw_slots_command_slot(int argc, const char **argv, const size_t *lens);

/* A "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" error reply
 * (hiredis hands it over as an error string).  False for any other text,
 * or when host does not fit in hostlen bytes. */
bool gw_slots_parse_redirect(const char *err, bool *ask, unsigned *slot, char *host, size_t hostlen,
                             int *port);

/* A slot map: every slot's master as an index into the map's node list. */
struct gw_slots;

struct gw_slots *gw_slots_new(void);
/* NULL is a no-op. */
void gw_slots_free(struct gw_slots *m);

/* Replaces the map with a CLUSTER SLOTS reply (borrowed).  A master listed
 * with an empty host (Redis 7 hides an unknown endpoint so) is taken to be
 * on from_host, the node that answered.  0 when the reply is well formed
 * and covers every slot, else -1 and the map is unchanged. */
int gw_slots_load(struct gw_slots *m, const struct redisReply *reply, const char *from_host);

/* The master of slot: its index (0 to gw_slots_count - 1), or -1 when the map
 * has none (empty map, slot out of range). */
int gw_slots_owner(const struct gw_slots *m, unsigned slot);
/* How many masters the map knows, and each one's address. */
size_t gw_slots_count(const struct gw_slots *m);
const char *gw_slots_host(const struct gw_slots *m, size_t i);
int gw_slots_port(const struct gw_slots *m, size_t i);
/* The index of the master at host:port, or -1. */
int gw_slots_find(const struct gw_slots *m, const char *host, int port);

#endif
