#ifndef GW_PRESENCE_H
#define GW_PRESENCE_H

#include <stdbool.h>

#include "gateway.h"

/*
 * Presence that survives crashes: the online set and every room's member set
 * are sorted sets of user ids scored by expiry, with one holder set per user
 * naming the nodes that keep the entry alive (presence_*.lua).  This node
 * refreshes what it holds on a timer, publishes its heartbeat, and reaps
 * entries whose nodes stopped refreshing, which sends their leave/offline.
 */

struct chat_identity;
struct gw_presence;

struct gw_presence *gw_presence_new(struct gw_ctx *ctx);
void gw_presence_free(struct gw_presence *p);

/* The user's first session on this node opened / last one closed. */
void gw_presence_online(struct gw_presence *p, const struct chat_identity *who);
void gw_presence_offline(struct gw_presence *p, const struct chat_identity *who);
/* The user's first member of room on this node joined / last one left. */
void gw_presence_join(struct gw_presence *p, const char *room, const struct chat_identity *who);
void gw_presence_leave(struct gw_presence *p, const char *room, const struct chat_identity *who);

/* Refreshes everything at once (after Redis came back). */
void gw_presence_refresh_now(struct gw_presence *p);
/* Removes this node's heartbeat (clean shutdown). */
void gw_presence_node_down(struct gw_presence *p);

/* Presence commands sent and not yet answered (the drain waits for them). */
int gw_presence_in_flight(const struct gw_presence *p);

#endif
