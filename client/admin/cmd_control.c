/*
 * chat-admin kick, delete-room, purge: the commands that change something.
 * Redis is changed here, and in the same MULTI/EXEC a command is published
 * on the control channel ({prefix}control, docs/protocol.md) for every
 * gateway to carry out its local part; PUBLISH's answer is how many gateways
 * heard it.  A room command WATCHes the rooms hash, so "no such room" and the
 * change are decided on the same state; a write in between runs it again.
 */
#include "admin.h"
#include "lua_scripts.h"
#include "protocol.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A room that sees a write between WATCH and EXEC on every try is too busy
 * to be changed this way right now. */
#define ADMIN_WATCH_TRIES 20

/* Builds the control message {"type": type, field: value, ...} (taken) as
 * text; NULL after printing why. */
static char *control_text(json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        admin_fail("out of memory");
    return text;
}

/* Sends one command given as argv; false after printing why. */
static bool send_argv(redisContext *rc, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        admin_fail("Redis %s: %s", argv[0], r ? r->str : rc->errstr);
    freeReplyObject(r);
    return ok;
}

/* After WATCH: 1 when room is in the rooms hash, 0 when not, -1 after
 * printing why. */
static int room_exists(redisContext *rc, const char *rooms_key, const char *room)
{
    const char *argv[] = {"HEXISTS", rooms_key, room};
    redisReply *r = admin_redis_check(rc, redisCommandArgv(rc, 3, argv, NULL), REDIS_REPLY_INTEGER,
                                      "HEXISTS rooms");
    if (!r)
        return -1;
    int exists = r->integer == 1;
    freeReplyObject(r);
    return exists;
}

/* EXEC: the array of the queued commands' replies; NULL with *retry set when
 * a WATCHed key changed, or NULL after printing why. */
static redisReply *exec_watched(redisContext *rc, bool *retry)
{
    *retry = false;
    redisReply *r = redisCommand(rc, "EXEC");
    if (r && r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        *retry = true;
        return NULL;
    }
    return admin_redis_check(rc, r, REDIS_REPLY_ARRAY, "EXEC");
}

/* The count PUBLISH gave inside EXEC (element i), 0 if it is not one. */
static long long exec_integer(const redisReply *exec, size_t i)
{
    if (i >= exec->elements || exec->element[i]->type != REDIS_REPLY_INTEGER)
        return 0;
    return exec->element[i]->integer;
}

/* Prints the JSON result (taken) or the human line, which is fmt. */
static int report(const struct admin_options *o, json_t *result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int report(const struct admin_options *o, json_t *result, const char *fmt, ...)
{
    if (o->json)
        return admin_print_json(result);
    json_decref(result);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    return ADMIN_EXIT_OK;
}

/* ---- kick ---- */

int admin_cmd_kick(const struct admin_options *o)
{
    const char *user = o->text;
    char control[ADMIN_KEY_MAX];
    char *text = control_text(json_pack("{s:s, s:s}", "type", "kick", "user", user));
    if (!text)
        return ADMIN_EXIT_FAIL;
    redisContext *rc = admin_redis_connect(o);
    int rv = ADMIN_EXIT_FAIL;
    if (!rc)
        goto done;
    admin_key(control, o->prefix, "control", "", "");
    const char *argv[] = {"PUBLISH", control, text};
    redisReply *r = admin_redis_check(rc, redisCommandArgv(rc, 3, argv, NULL), REDIS_REPLY_INTEGER,
                                      "PUBLISH control");
    if (!r)
        goto done;
    long long nodes = r->integer;
    freeReplyObject(r);
    rv = report(o, json_pack("{s:s, s:I}", "kicked", user, "nodes", (json_int_t)nodes),
                "kicked %s: %lld gateway%s closing its connections (code 4003)", user, nodes,
                nodes == 1 ? "" : "s");

done:
    free(text);
    if (rc)
        redisFree(rc);
    return rv;
}

/* ---- delete-room, purge ---- */

/* One room command: what it queues inside MULTI (after WATCH and the check
 * that the room exists) and how it reports EXEC's replies. */
struct room_command {
    const struct admin_options *o;
    const char *room;
    char rooms[ADMIN_KEY_MAX];   /* the rooms hash, WATCHed */
    char control[ADMIN_KEY_MAX]; /* the control channel */
    char seq[ADMIN_KEY_MAX];     /* the room's seq, WATCHed too */
    long long seq_now;           /* read after WATCH */
    redisReply *members;         /* delete-room: the room's member ids, read after WATCH */
    /* Reads what queue needs, before MULTI (may be NULL); false after printing why. */
    bool (*prepare)(struct room_command *c, redisContext *rc);
    /* Queues the commands; false after printing why. */
    bool (*queue)(struct room_command *c, redisContext *rc);
    int (*report)(struct room_command *c, const redisReply *exec);
};

/* WATCH, check, MULTI, queue, EXEC, until EXEC runs or tries run out. */
static int room_command_run(struct room_command *c)
{
    const struct admin_options *o = c->o;
    admin_key(c->rooms, o->prefix, "rooms", "", "");
    admin_key(c->control, o->prefix, "control", "", "");
    admin_key(c->seq, o->prefix, "room:{", c->room, "}:seq");
    redisContext *rc = admin_redis_connect(o);
    if (!rc)
        return ADMIN_EXIT_FAIL;
    int rv = ADMIN_EXIT_FAIL;
    for (int i = 0; i < ADMIN_WATCH_TRIES; i++) {
        const char *watch[] = {"WATCH", c->rooms, c->seq};
        if (!send_argv(rc, 3, watch))
            goto done;
        int exists = room_exists(rc, c->rooms, c->room);
        if (exists < 0)
            goto done;
        if (!exists) {
            admin_fail("no room named %s", c->room);
            goto done;
        }
        const char *get[] = {"GET", c->seq};
        redisReply *seq = redisCommandArgv(rc, 2, get, NULL);
        if (!seq || seq->type == REDIS_REPLY_ERROR) {
            admin_fail("Redis GET seq: %s", seq ? seq->str : rc->errstr);
            freeReplyObject(seq);
            goto done;
        }
        c->seq_now = seq->type == REDIS_REPLY_STRING ? strtoll(seq->str, NULL, 10) : 0;
        freeReplyObject(seq);
        if (c->prepare && !c->prepare(c, rc))
            goto done;
        const char *multi[] = {"MULTI"};
        if (!send_argv(rc, 1, multi) || !c->queue(c, rc))
            goto done;
        bool retry;
        redisReply *exec = exec_watched(rc, &retry);
        if (retry)
            continue;
        if (!exec)
            goto done;
        rv = c->report(c, exec);
        freeReplyObject(exec);
        goto done;
    }
    admin_fail("%s kept changing (%d tries); try again", c->room, ADMIN_WATCH_TRIES);

done:
    freeReplyObject(c->members);
    c->members = NULL;
    redisFree(rc);
    return rv;
}

/* Queues PUBLISH of the control message msg (taken). */
static bool queue_control(struct room_command *c, redisContext *rc, json_t *msg)
{
    char *text = control_text(msg);
    if (!text)
        return false;
    const char *argv[] = {"PUBLISH", c->control, text};
    bool ok = send_argv(rc, 3, argv);
    free(text);
    return ok;
}

/* The members whose holder sets go with the room (a member who joins after
 * this read leaves a holder set that expires a minute after its last
 * refresh). */
static bool read_members(struct room_command *c, redisContext *rc)
{
    char members[ADMIN_KEY_MAX];
    admin_key(members, c->o->prefix, "room:{", c->room, "}:members");
    const char *argv[] = {"ZRANGE", members, "0", "-1"};
    freeReplyObject(c->members);
    c->members = admin_redis_check(rc, redisCommandArgv(rc, 4, argv, NULL), REDIS_REPLY_ARRAY,
                                   "ZRANGE members");
    return c->members != NULL;
}

/* The same unlisting as the --room-ttl sweep (room_sweep.lua), told to take
 * this one room now, then the room's keys, all in the room's hash slot. */
static bool queue_delete(struct room_command *c, redisContext *rc)
{
    const char *prefix = c->o->prefix;
    char tag[80], names[ADMIN_KEY_MAX], popular[ADMIN_KEY_MAX], active[ADMIN_KEY_MAX];
    admin_key(tag, "{", prefix, "rooms", "}");
    admin_key(names, prefix, "rooms:names", "", tag);
    admin_key(popular, prefix, "rooms:popular", "", tag);
    admin_key(active, prefix, "rooms:active", "", tag);
    const char *argv[10 + CHAT_DEFAULT_ROOMS] = {
        "EVAL", gw_lua_room_sweep, "4", c->rooms, names, popular, active, "unlist", c->room, ""};
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[10 + i] = chat_default_rooms[i].name;
    static const char *const kinds[] = {"}:history", "}:seq", "}:members", "}:reactions",
                                        "}:users"};
    size_t nkinds = sizeof(kinds) / sizeof(kinds[0]);
    size_t n = 1 + nkinds + c->members->elements;
    char(*keys)[ADMIN_KEY_MAX] = calloc(n, ADMIN_KEY_MAX);
    const char **del = calloc(n, sizeof(*del));
    bool ok = keys && del;
    if (ok) {
        char holders[ADMIN_KEY_MAX];
        admin_key(holders, "", c->room, "}:holders:", "");
        del[0] = "DEL";
        for (size_t i = 0; i < nkinds; i++) {
            admin_key(keys[1 + i], prefix, "room:{", c->room, kinds[i]);
            del[1 + i] = keys[1 + i];
        }
        for (size_t i = 0; i < c->members->elements; i++) {
            admin_key(keys[1 + nkinds + i], prefix, "room:{", holders,
                      c->members->element[i]->str ? c->members->element[i]->str : "");
            del[1 + nkinds + i] = keys[1 + nkinds + i];
        }
        ok =
            send_argv(rc, (int)(10 + CHAT_DEFAULT_ROOMS), argv) &&
            queue_control(c, rc, json_pack("{s:s, s:s}", "type", "delete_room", "room", c->room)) &&
            send_argv(rc, (int)n, del);
    }
    free(keys);
    free(del);
    return ok;
}

static int report_delete(struct room_command *c, const redisReply *exec)
{
    const redisReply *deleted = exec->elements > 0 ? exec->element[0] : NULL;
    if (!deleted || deleted->type != REDIS_REPLY_INTEGER || deleted->integer != 1)
        return admin_fail("Redis EVAL room_sweep: %s was not deleted",
                          deleted && deleted->type == REDIS_REPLY_ERROR ? deleted->str : c->room);
    long long nodes = exec_integer(exec, 1);
    return report(c->o, json_pack("{s:s, s:I}", "deleted", c->room, "nodes", (json_int_t)nodes),
                  "deleted room %s: %lld gateway%s dropping it", c->room, nodes,
                  nodes == 1 ? "" : "s");
}

int admin_cmd_delete_room(const struct admin_options *o)
{
    if (chat_is_default_room(o->text))
        return admin_fail("%s is a default room (general, random, tech): it cannot be deleted",
                          o->text);
    struct room_command c = {.o = o,
                             .room = o->text,
                             .prepare = read_members,
                             .queue = queue_delete,
                             .report = report_delete};
    return room_command_run(&c);
}

/* History and the reactions to it go; seq stays, so no seq is ever given
 * twice (clients resume with `since`). */
static bool queue_purge(struct room_command *c, redisContext *rc)
{
    char history[ADMIN_KEY_MAX], reactions[ADMIN_KEY_MAX];
    admin_key(history, c->o->prefix, "room:{", c->room, "}:history");
    admin_key(reactions, c->o->prefix, "room:{", c->room, "}:reactions");
    const char *llen[] = {"LLEN", history};
    const char *del[] = {"DEL", history, reactions};
    return send_argv(rc, 2, llen) && send_argv(rc, 3, del) &&
           queue_control(c, rc,
                         json_pack("{s:s, s:s, s:I}", "type", "purge", "room", c->room, "seq",
                                   (json_int_t)c->seq_now));
}

static int report_purge(struct room_command *c, const redisReply *exec)
{
    long long messages = exec_integer(exec, 0), nodes = exec_integer(exec, 2);
    return report(
        c->o,
        json_pack("{s:s, s:I, s:I, s:I}", "purged", c->room, "seq", (json_int_t)c->seq_now,
                  "messages", (json_int_t)messages, "nodes", (json_int_t)nodes),
        "purged room %s: %lld message%s up to seq %lld deleted, %lld gateway%s told", c->room,
        messages, messages == 1 ? "" : "s", c->seq_now, nodes, nodes == 1 ? "" : "s");
}

int admin_cmd_purge(const struct admin_options *o)
{
    struct room_command c = {.o = o, .room = o->text, .queue = queue_purge, .report = report_purge};
    return room_command_run(&c);
}
