#ifndef GW_STORE_H
#define GW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "gateway.h"

/*
 * Redis keys and the Lua scripts of gateway/lua/ (one atomic step each:
 * append + trim + seq + publish, presence, nickname claims ...).  Scripts are
 * called by SHA-1 (computed here, no SCRIPT LOAD round trip); a NOSCRIPT
 * answer (Redis restarted) is retried once with EVAL, which caches it again.
 */

struct chat_identity;
struct gw_store;
struct redisReply;
typedef struct json_t json_t;

struct gw_store *gw_store_new(struct gw_ctx *ctx);
void gw_store_free(struct gw_store *st);

/* Runs script `name` (a gateway/lua/<name>.lua) with nkeys keys followed by
 * the other args (argv borrowed, copied here; argvlen may be NULL for
 * NUL-terminated strings).  cb runs exactly once (NULL reply on failure, or a
 * REDIS_REPLY_ERROR reply when the script failed); NULL: fire and forget. */
int gw_store_eval(struct gw_store *st, const char *name, int nkeys, int argc, const char **argv,
                  const size_t *argvlen, gw_bus_reply_cb cb, void *arg);

/* nick_claim.lua: nick_key (gw_key_nick) goes to uid unless another online user holds it.
 * The reply is "" when claimed, else the holder's id.  cb may be NULL. */
void gw_store_claim_nick(struct gw_store *st, const char *nick_key, const char *uid,
                         gw_bus_reply_cb cb, void *arg);
/* A guest's record lives this long after its last use (login, connect,
 * disconnect); its nickname claim expires sooner (24 h). */
#define GW_USER_TTL_SEC (7 * 24 * 3600)
/* Restarts the TTL of chat:user:{uid} (fire and forget). */
void gw_store_touch_user(struct gw_store *st, const char *uid);
/* Writes chat:user:{ID} (name, avatar, last_seen now) with GW_USER_TTL_SEC.
 * cb (may be NULL) gets the HSET reply. */
void gw_store_save_user(struct gw_store *st, const struct chat_identity *who, gw_bus_reply_cb cb,
                        void *arg);

/* Runs room_create.lua for room with its meta and room_created event JSON
 * (event published on chat:all when the room is new).  The reply is 1 when
 * created, 0 when it existed, -1 at --max-rooms, -2 past the creator's
 * --room-create-rate; creator NULL (the system's default rooms) is neither
 * capped nor counted.  cb may be NULL. */
void gw_store_create_room(struct gw_store *st, const char *room, const char *meta,
                          const char *event, const char *creator, gw_bus_reply_cb cb, void *arg);
/* room_sweep.lua and room_idle.lua: deletes up to 50 rooms idle for
 * --room-ttl (nobody in them, no message), never the default rooms, logging
 * each.  A no-op with --room-ttl 0.  done (may be NULL) runs once, when every
 * step has been answered. */
void gw_store_sweep_rooms(struct gw_store *st, void (*done)(void *arg), void *arg);

/* Creates the default rooms (general, random, tech) if missing.  Called
 * whenever the bus comes up. */
void gw_store_ensure_default_rooms(struct gw_store *st);

/* Messages in one reply (joined, history) stay under this many bytes
 * (PROTOCOL.md: 4 MiB a reply, the rest of it included). */
#define GW_REPLY_MESSAGES_MAX (4u * 1024 * 1024 - 64 * 1024)

/* history_range.lua over a room's or conversation's seq and history keys:
 * mode "before" (the newest `limit` below bound; 0: no bound), "after" (the
 * oldest `limit` above bound) or "since" (a join from bound); at most
 * max_bytes of messages (0: no cap).  The reply is {seq, more, recovered,
 * msg...}.  cb runs exactly once. */
void gw_store_history_range(struct gw_store *st, const char *seq_key, const char *hist_key,
                            const char *mode, int64_t bound, int limit, size_t max_bytes,
                            gw_bus_reply_cb cb, void *arg);

/* Gets a rooms listing: rooms [{name, topic, members}] (the callback owns it)
 * and whether rooms were left out; rooms NULL when Redis failed. */
typedef void (*gw_store_rooms_cb)(void *arg, json_t *rooms, bool more);

/* rooms.lua, bounded: the rooms whose name starts with q (NULL: any), after
 * the name `after` (NULL: from the first), by name, at most limit, each with
 * its live member count.  cb runs exactly once. */
void gw_store_list_rooms(struct gw_store *st, const char *q, const char *after, int limit,
                         gw_store_rooms_cb cb, void *arg);
/* The welcome's list: the default rooms, then the others by users present,
 * at most GW_WELCOME_ROOMS. */
#define GW_WELCOME_ROOMS 200
void gw_store_welcome_rooms(struct gw_store *st, gw_store_rooms_cb cb, void *arg);

/* A user's read markers (chat:user:{uid}:read, field "room:<name>" or
 * "dm:<peer id>" -> seq), all of them (HGETALL).  cb runs exactly once. */
void gw_store_read_marks(struct gw_store *st, const char *uid, gw_bus_reply_cb cb, void *arg);
/* Turns that reply into {"room:general": 5, ...}; NULL when the reply is NULL
 * or an error (fields that are not a positive integer are left out). */
json_t *gw_store_read_marks_json(const struct redisReply *reply);

#endif
