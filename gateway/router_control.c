#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include <jansson.h>

#include "config.h"
#include "dict.h"
#include "keys.h"
#include "log.h"
#include "protocol.h"
#include "router.h"
#include "router_internal.h"

/*
 * Operator commands on the control channel (docs/protocol.md, "Control
 * channel"): chat-admin publishes one JSON object per command after it has
 * changed Redis, and every node carries out its local part: close a user's
 * sessions, drop a deleted room's members, tell a purged room's members.
 * Anyone who can PUBLISH to Redis can send these, so each is checked like a
 * client's request; what does not parse is logged and ignored.
 */

/* PROTOCOL.md leaves 4000-4999 to us: 4001 token expired, 4003 kicked, 4009
 * nickname taken. */
#define GW_CLOSE_KICKED 4003

/* Closes every session of uid on this node.  Each close may detach its own
 * client (and free the user record with the last one), so the walk keeps the
 * next client and reads nothing of u after the first close. */
static void control_kick(struct gw_router *r, const char *uid)
{
    char channel[GW_KEY_MAX];
    if (!gw_key_user(channel, sizeof(channel), r->ctx->cfg->prefix, uid, NULL))
        return;
    struct user *u = gw_dict_get(r->users, channel);
    size_t n = u ? u->nclients : 0;
    chat_log(CHAT_LOG_INFO, "admin_kick user=%s sessions=%zu", uid, n);
    struct gw_client *c = u ? LIST_FIRST(&u->clients) : NULL;
    while (c) {
        struct gw_client *next = LIST_NEXT(c, in_user);
        r->ops->close(c->owner, GW_CLOSE_KICKED, "kicked by an operator");
        c = next;
    }
}

/* The room is gone from Redis (room_sweep.lua, as an expired room): its local
 * members leave without presence events (the member sets went with it) and
 * its channel is unsubscribed with the last of them.  Every client here hears
 * room_deleted, the counterpart of room_created, so members know they are out
 * and room lists can drop it. */
static void control_delete_room(struct gw_router *r, const char *name)
{
    struct room *room = gw_router_room_find(r, name);
    size_t n = 0;
    if (room) {
        /* A leave frees the room with its last member; a repair still reading
         * keeps it, and must not take the old numbering for the new one. */
        room->dropping = true;
        while (!LIST_EMPTY(&room->members)) {
            gw_router_leave(r, LIST_FIRST(&room->members));
            n++;
        }
        room->dropping = false;
        room->live_seq = 0;
        room->synced = false;
        gw_router_room_backlog_clear(room);
        gw_router_room_maybe_free(r, room);
    }
    chat_log(CHAT_LOG_INFO, "admin_delete_room room=%s sessions=%zu", name, n);
    char ev[128];
    int len = snprintf(ev, sizeof(ev), "{\"type\":\"room_deleted\",\"room\":\"%s\"}", name);
    if (len > 0 && (size_t)len < sizeof(ev))
        gw_router_node_event(r, ev, (size_t)len);
}

/* History up to seq was deleted; the seq counter stays, so live delivery
 * goes on unchanged.  The node keeps no history of its own (a room's backlog
 * holds only live traffic not yet delivered, which stays owed), so all there
 * is to do is tell the room's members which messages are gone. */
static void control_purge(struct gw_router *r, const char *name, json_int_t seq)
{
    struct room *room = gw_router_room_find(r, name);
    size_t n = 0;
    if (room) {
        struct gw_member *m;
        LIST_FOREACH(m, &room->members, in_room)
        n += m->state == MEMBER_JOINED;
    }
    chat_log(CHAT_LOG_INFO, "admin_purge room=%s seq=%lld sessions=%zu", name, (long long)seq, n);
    char ev[160];
    int len = snprintf(ev, sizeof(ev), "{\"type\":\"room_purged\",\"room\":\"%s\",\"seq\":%lld}",
                       name, (long long)seq);
    if (room && len > 0 && (size_t)len < sizeof(ev))
        gw_router_room_event(room, ev, (size_t)len, NULL, 0);
}

/* The room of a room command, or NULL after logging why. */
static const char *control_room(json_t *msg, const char *type)
{
    const char *room = json_string_value(json_object_get(msg, "room"));
    if (chat_valid_room_name(room))
        return room;
    chat_log(CHAT_LOG_WARN, "admin_control_invalid type=%s reason=\"bad room\"", type);
    return NULL;
}

void gw_router_control(struct gw_router *r, const char *payload, size_t len)
{
    json_t *msg = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *name;
    if (!json_is_object(msg) || !type) {
        chat_log(CHAT_LOG_WARN,
                 "admin_control_invalid bytes=%zu reason=\"not a JSON object with a "
                 "type\"",
                 len);
    } else if (strcmp(type, "kick") == 0) {
        const char *uid = json_string_value(json_object_get(msg, "user"));
        if (chat_valid_user_id(uid))
            control_kick(r, uid);
        else
            chat_log(CHAT_LOG_WARN, "admin_control_invalid type=kick reason=\"bad user\"");
    } else if (strcmp(type, "delete_room") == 0) {
        if ((name = control_room(msg, "delete_room")))
            control_delete_room(r, name);
    } else if (strcmp(type, "purge") == 0) {
        json_t *seq = json_object_get(msg, "seq");
        if ((name = control_room(msg, "purge")) && json_is_integer(seq) &&
            json_integer_value(seq) >= 0)
            control_purge(r, name, json_integer_value(seq));
        else if (name)
            chat_log(CHAT_LOG_WARN, "admin_control_invalid type=purge reason=\"bad seq\"");
    } else {
        /* The type is not echoed: it is anyone's bytes. */
        chat_log(CHAT_LOG_WARN, "admin_control_invalid reason=\"unknown type\"");
    }
    json_decref(msg);
}
