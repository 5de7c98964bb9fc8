#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "config.h"
#include "handlers.h"
#include "keys.h"
#include "session.h"
#include "store.h"
#include "token.h"

json_t *gw_handlers_users_json(const struct redisReply *reply, const struct chat_identity *also)
{
    json_t *arr = json_array();
    bool seen_self = false;
    for (size_t i = 0; reply && i + 2 < reply->elements + 0 && arr; i += 3) {
        const redisReply *id = reply->element[i], *name = reply->element[i + 1],
                         *avatar = reply->element[i + 2];
        if (id->type != REDIS_REPLY_STRING)
            continue;
        if (also && strcmp(id->str, also->id) == 0)
            seen_self = true;
        json_t *u = json_pack("{s:s, s:s}", "id", id->str, "name",
                              name->type == REDIS_REPLY_STRING ? name->str : id->str);
        json_object_set_new(u, "avatar",
                            avatar->type == REDIS_REPLY_STRING && avatar->len > 0
                                ? json_string(avatar->str)
                                : json_null());
        json_array_append_new(arr, u);
    }
    if (also && !seen_self)
        json_array_append_new(arr, gw_user_json(also));
    return arr;
}

static void on_users(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct gw_op *op = arg;
    if (gw_op_finished(op, reply))
        return;
    json_t *r = gw_reply_new("users", op->req.id);
    json_object_set_new(r, "users", gw_handlers_users_json(reply, NULL));
    gw_session_send_json(op->s, r);
    gw_op_done(op);
}

void gw_handle_users(struct gw_session *s, struct chat_request *req)
{
    struct gw_op *op = gw_op_new(s, req, sizeof(*op));
    if (!op)
        return;
    struct gw_ctx *ctx = gw_session_ctx(s);
    char key[GW_KEY_MAX], now[32], users[GW_KEY_MAX];
    if (!gw_key_online(key, sizeof(key), ctx->cfg->prefix) ||
        !gw_key_online_users(users, sizeof(users), ctx->cfg->prefix)) {
        gw_op_error(op, CHAT_ERR_INTERNAL, "key too long");
        return;
    }
    now[0] = '\0'; /* who is online, on Redis' clock */
    const char *argv[] = {key, users, now};
    gw_store_eval(ctx->store, "users", 2, 3, argv, NULL, on_users, op);
}
