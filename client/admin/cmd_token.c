/*
 * chat-admin token: a token signed with the gateways' secret, the same claims
 * /api/login issues plus role admin on request.
 */
#include "admin.h"
#include "token.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int admin_cmd_token(const struct admin_options *o)
{
    struct chat_identity who = {.admin = o->admin, .avatar = (char *)o->avatar};
    int64_t now = admin_now_ms() / 1000;

    /* Lengths were checked by main. */
    snprintf(who.id, sizeof(who.id), "%s", o->user_id);
    snprintf(who.name, sizeof(who.name), "%s", o->name);
    char *token = chat_token_issue(o->secret, strlen(o->secret), &who, now, o->ttl);
    if (!token)
        return admin_fail("cannot issue the token");
    int rc = ADMIN_EXIT_OK;
    if (o->json) {
        rc = admin_print_json(json_pack("{s:s, s:{s:s, s:s, s:s?}, s:b, s:I}", "token", token,
                                        "user", "id", who.id, "name", who.name, "avatar", o->avatar,
                                        "admin", o->admin, "exp", (json_int_t)(now + o->ttl)));
    } else {
        /* The token alone on stdout, for $(chat-admin token ...). */
        puts(token);
    }
    free(token);
    return rc;
}
