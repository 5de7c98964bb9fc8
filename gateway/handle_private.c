#include <string.h>

#include <hiredis/hiredis.h>

#include "bus.h"
#include "config.h"
#include "handlers.h"
#include "keys.h"
#include "session.h"
#include "token.h"

static void on_private_target(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_op *op = arg;
    if (gw_op_finished(op, reply))
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        gw_op_error(op, CHAT_ERR_NOT_FOUND, "no such user");
        return;
    }
    struct gw_ctx *ctx = gw_session_ctx(op->s);
    const char *prefix = ctx->cfg->prefix;
    const struct chat_identity *who = gw_session_who(op->s);
    const struct chat_request *req = &op->req;
    const char *me = who->id, *to = req->to;
    char seq[GW_KEY_MAX], hist[GW_KEY_MAX], idem[GW_KEY_MAX], ch_me[GW_KEY_MAX], ch_to[GW_KEY_MAX];
    char dms_me[GW_KEY_MAX], dms_to[GW_KEY_MAX];
    if (!gw_key_dm(seq, sizeof(seq), prefix, me, to, "seq") ||
        !gw_key_dm(hist, sizeof(hist), prefix, me, to, "history") ||
        !gw_key_idempotency(idem, sizeof(idem), prefix, NULL, me, to, req->id ? req->id : "") ||
        !gw_key_user(ch_me, sizeof(ch_me), prefix, me, NULL) ||
        !gw_key_user(ch_to, sizeof(ch_to), prefix, to, NULL) ||
        !gw_key_user(dms_me, sizeof(dms_me), prefix, me, "dms") ||
        !gw_key_user(dms_to, sizeof(dms_to), prefix, to, "dms")) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    bool self = strcmp(me, to) == 0;
    /* Remember the conversation for search (not part of the acked write). */
    const char *a1[] = {"SADD", dms_me, to};
    const char *a2[] = {"SADD", dms_to, me};
    gw_bus_command(ctx->bus, NULL, NULL, 3, a1, NULL);
    gw_bus_command(ctx->bus, NULL, NULL, 3, a2, NULL);
    /* Last: its callback may run at once and free op (and req with it). */
    gw_handlers_post(op, seq, hist, idem, "{\"type\":\"private\",\"seq\":",
                     gw_handlers_message_tail(who, req, to, reply->str), ch_me,
                     self ? NULL : ch_to);
}

void gw_handle_private(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (!op)
        return;
    struct gw_ctx *ctx = gw_session_ctx(s);
    char key[GW_KEY_MAX];
    if (!gw_key_user(key, sizeof(key), ctx->cfg->prefix, op->req.to, NULL)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    const char *argv[] = {"HGET", key, "name"};
    gw_bus_command(ctx->bus, on_private_target, op, 3, argv, NULL);
}
