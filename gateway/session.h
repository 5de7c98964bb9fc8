#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "listener.h"

/*
 * One connected user: identity, joined rooms, rate bucket, request queue, and
 * the handlers of every client request of PROTOCOL.md section 4.
 *
 * Sessions are refcounted: every asynchronous operation holds a reference, so
 * a Redis reply never touches freed memory; a closed session answers nothing
 * and is freed when its last reference goes.
 */

struct chat_identity;
struct redisReply;
typedef struct json_t json_t;

/* After a 101: takes over c and *who (moved; *who is left empty). */
void gw_session_start(struct gw_ctx *ctx, struct gw_conn *c, struct chat_identity *who);
/* After a 101 on /echo: every text message comes back unchanged. */
void gw_session_start_echo(struct gw_ctx *ctx, struct gw_conn *c);

/* {"id","name","avatar"} of a user, avatar null when there is none: the one
 * shape of a user in every reply and event. */
json_t *gw_session_user_json(const struct chat_identity *who);

/* Runs rooms.lua; cb gets the reply, which gw_session_rooms_json turns into
 * [{name, topic, members}] (NULL when the reply is NULL or an error). */
void gw_session_query_rooms(struct gw_ctx *ctx, gw_bus_reply_cb cb, void *arg);
json_t *gw_session_rooms_json(const struct redisReply *reply);

#endif
