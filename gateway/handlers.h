#ifndef GW_HANDLERS_H
#define GW_HANDLERS_H

#include "protocol.h"

/*
 * What each client request of PROTOCOL.md section 4 does, one file per group:
 * handle_rooms.c (join, leave, rooms, create_room), handle_messages.c
 * (message, history, typing, broadcast), handle_private.c, handle_search.c,
 * handle_users.c, handle_marks.c (read, edit, delete, react).  handlers.c
 * routes a parsed request to one of them; it is the dispatch function
 * sessions are started with.
 */

struct chat_identity;
struct gw_ctx;
struct gw_op;
struct gw_session;
struct redisReply;
typedef struct json_t json_t;

/* gw_session_dispatch_cb: runs req (taken). */
void gw_handlers_dispatch(struct gw_session *s, struct chat_request *req);

/* Requests answered at once, without an operation (req stays the caller's). */
void gw_handle_leave(struct gw_session *s, const struct chat_request *req);
void gw_handle_typing(struct gw_session *s, const struct chat_request *req);

/* Requests that run as an operation (see session.h); each ends it. */
void gw_handle_join(struct gw_session *s, struct chat_request *req);
void gw_handle_rooms(struct gw_session *s, struct chat_request *req);
void gw_handle_create_room(struct gw_session *s, struct chat_request *req);
void gw_handle_message(struct gw_session *s, struct chat_request *req);
void gw_handle_history(struct gw_session *s, struct chat_request *req);
void gw_handle_broadcast(struct gw_session *s, struct chat_request *req);
void gw_handle_private(struct gw_session *s, struct chat_request *req);
void gw_handle_search(struct gw_session *s, struct chat_request *req);
void gw_handle_users(struct gw_session *s, struct chat_request *req);
/* handle_marks.c: read; edit and delete (both types); react. */
void gw_handle_read(struct gw_session *s, struct chat_request *req);
void gw_handle_edit(struct gw_session *s, struct chat_request *req);
void gw_handle_react(struct gw_session *s, struct chat_request *req);

/* Appends a stored message through post.lua and acks it (message, private):
 * ends op.  tail (taken) is the JSON after "ts"; ch2 may be NULL. */
void gw_handlers_post(struct gw_op *op, const char *seq_key, const char *hist_key,
                      const char *idem_key, const char *head, json_t *tail, const char *ch1,
                      const char *ch2);
/* The "from" .. "id" part of a stored message (to_id NULL for a room). */
json_t *gw_handlers_message_tail(const struct chat_identity *from, const struct chat_request *req,
                                 const char *to_id, const char *to_name);

/* [{"id","name","avatar"}] from users.lua's flat reply; `also` (may be NULL)
 * is added when absent (a joiner whose presence is not written yet). */
/* Adds to obj (a joined or history reply being built) "reactions": {seq:
 * {emoji: [user ids]}} of the messages of page (a history_range.lua reply,
 * borrowed for the call; left out when none has any, and kept within what
 * the reply may still carry after page_bytes of messages), and, when read_key
 * is not NULL, "last_read": the read_field of that hash (0 when unset).  Then
 * runs done(arg) once, at once when there is nothing to read.  A field Redis
 * could not read is left out (the caller's next command meets the failure). */
void gw_handlers_decorate(struct gw_ctx *ctx, json_t *obj, const struct redisReply *page,
                          size_t page_bytes, const char *reactions_key, const char *read_key,
                          const char *read_field, void (*done)(void *arg), void *arg);

json_t *gw_handlers_users_json(const struct redisReply *reply, const struct chat_identity *also);

#endif
