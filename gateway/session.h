#ifndef GW_SESSION_H
#define GW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "gateway.h"
#include "protocol.h"

/*
 * One connected user over one WebSocket: identity, rate bucket, request
 * queue, replies, and its life from the upgrade to the close (presence
 * online/offline, leaving every room).  What each request does lives in the
 * handlers (handlers.h), which the session calls through the dispatch
 * function given to gw_session_start.
 *
 * Requests run one at a time, in arrival order: a request that needs Redis
 * holds the session as a gw_op until it is answered (gw_op_done), and the
 * next request waits in the inbox.
 *
 * Sessions are refcounted: every asynchronous operation holds a reference, so
 * a Redis reply never touches freed memory; a closed session answers nothing
 * and is freed when its last reference goes.
 */

struct chat_identity;
struct evbuffer;
struct gw_client;
struct gw_conn;
struct gw_frame;
struct gw_session;
struct redisReply;
typedef struct json_t json_t;

/* Runs one parsed request (taken: the handler deinitializes it, usually by
 * moving it into a gw_op). */
typedef void (*gw_session_dispatch_cb)(struct gw_session *s, struct chat_request *req);

/* What the client asked for in its upgrade request (/ws?presence=batch). */
enum gw_session_flags {
    GW_SESSION_PRESENCE_BATCH = 1, /* presence_batch instead of online/offline */
};
/* permessage-deflate negotiated with window bits b (8..15, 0: not), carried
 * in the flags' second byte (gw_ws_options.deflate_bits). */
#define GW_SESSION_DEFLATE(b) ((unsigned)(b) << 8)
#define GW_SESSION_DEFLATE_BITS(flags) ((uint8_t)(((flags) >> 8) & 0xff))
/* ...and the client's window when it keeps it, in the third byte
 * (gw_ws_options.deflate_client_bits). */
#define GW_SESSION_DEFLATE_CLIENT(b) ((unsigned)(b) << 16)
#define GW_SESSION_DEFLATE_CLIENT_BITS(flags) ((uint8_t)(((flags) >> 16) & 0xff))

/* After a 101: takes over c and *who (moved; *who is left empty); flags are
 * enum gw_session_flags. */
void gw_session_start(struct gw_ctx *ctx, struct gw_conn *c, struct chat_identity *who,
                      unsigned flags, gw_session_dispatch_cb dispatch);

/* The router's deliver callback (struct gw_router_ops): owner is a session. */
void gw_session_deliver(void *owner, const struct gw_frame *f);
/* The router's close callback: starts the closing handshake with code and
 * reason (an operator's kick); nothing on a closed session. */
void gw_session_close(void *owner, uint16_t code, const char *reason);

struct gw_ctx *gw_session_ctx(const struct gw_session *s);
const struct chat_identity *gw_session_who(const struct gw_session *s);
/* The session's handle in the router (rooms it is in). */
struct gw_client *gw_session_client(const struct gw_session *s);
/* The socket is gone or going: send nothing, answer nothing. */
bool gw_session_closed(const struct gw_session *s);

/* Replies.  Each does nothing on a closed session. */
void gw_session_send_text(struct gw_session *s, const char *data, size_t len);
/* Sends obj (taken) as compact JSON. */
void gw_session_send_json(struct gw_session *s, json_t *obj);
/* Sends {..., "messages":[raw]}: obj (taken) plus stored messages byte for
 * byte as stored (raw is a comma-separated list, may be NULL). */
void gw_session_send_with_messages(struct gw_session *s, json_t *obj, struct evbuffer *raw);
void gw_session_send_error(struct gw_session *s, const char *id, enum chat_err code,
                           const char *message);
/* {"type": type, "id": id} (id omitted when NULL). */
json_t *gw_reply_new(const char *type, const char *id);
/* Appends one stored message to a comma-separated list. */
void gw_append_raw(struct evbuffer *buf, const char *json, size_t len);

/*
 * A request in progress.  Handlers that keep state embed it first in a
 * larger struct, allocated by gw_op_new(size), and set cleanup to release
 * that state.
 */
struct gw_op {
    struct gw_session *s;
    struct chat_request req;
    void (*cleanup)(struct gw_op *op); /* may be NULL */
    int64_t start_us;                  /* arrival, for the request latency histogram */
};

/* Starts an operation of size bytes (zeroed, at least sizeof(struct gw_op))
 * for req (moved into op->req): holds s and the inbox until gw_op_done.
 * NULL on no memory, after answering the request with an error (req is then
 * left to the caller). */
struct gw_op *gw_op_new(struct gw_session *s, struct chat_request *req, size_t size);
/* Ends op: cleanup, free, lets the next request in. */
void gw_op_done(struct gw_op *op);
/* Sends an error for op's request (unless the session closed), then ends it. */
void gw_op_error(struct gw_op *op, enum chat_err code, const char *message);
/* For Redis callbacks: ends op and returns true when the session closed
 * meanwhile, or when reply is NULL (unavailable) or an error (internal). */
bool gw_op_finished(struct gw_op *op, const struct redisReply *reply);

/* How long a user cut off for flooding (1008) may not open a new WebSocket
 * on this node. */
#define GW_FLOOD_PENALTY_MS 10000

#endif
