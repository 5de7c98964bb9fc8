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
/* Writes chat:user:{ID} (name, avatar, last_seen now).  cb may be NULL. */
void gw_store_save_user(struct gw_store *st, const struct chat_identity *who, gw_bus_reply_cb cb,
                        void *arg);

/* Creates the default rooms (general, random, tech) if missing.  Called
 * whenever the bus comes up. */
void gw_store_ensure_default_rooms(struct gw_store *st);

/* Runs rooms.lua; cb gets the reply, which gw_store_rooms_json turns into
 * [{name, topic, members}] (NULL when the reply is NULL or an error). */
void gw_store_query_rooms(struct gw_store *st, gw_bus_reply_cb cb, void *arg);
json_t *gw_store_rooms_json(const struct redisReply *reply);

#endif
