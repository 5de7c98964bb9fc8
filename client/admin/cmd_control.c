/*
 * chat-admin kick, delete-room, purge: the commands that change something.
 * Redis is changed here, and in the same MULTI/EXEC a command is published
 * on the control channel ({prefix}control, docs/protocol.md) for every
 * gateway to carry out its local part; PUBLISH's answer is how many gateways
 * heard it.  A room command WATCHes the rooms hash, so "no such room" and the
 * change are decided on the same state; a write in between runs it again.
 *
 * On a Redis Cluster a transaction keeps to one slot, and the rooms hash and
 * a room's keys are in two: the transaction holds the room's keys and runs on
 * their master, the rooms hash is read (purge) or changed first (delete-room,
 * as the gateway's own sweep unlists a room, then deletes its keys) on its
 * own master.  PUBLISH has no key, so it stays inside the transaction.
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

/* Sends one command given as argv on rc; false after printing why. */
static bool send_argv(struct admin_redis *db, redisContext *rc, int argc, const char **argv)
{
    redisReply *r = admin_redis_raw(db, rc, argc, argv);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        admin_fail("Redis %s: %s", argv[0], r ? r->str : admin_redis_errstr(db));
    freeReplyObject(r);
    return ok;
}

/* 1 when room is in the rooms hash, 0 when not, -1 after printing why. */
static int room_exists(struct admin_redis *db, redisContext *rc, const char *rooms_key,
                       const char *room)
{
    const char *argv[] = {"HEXISTS", rooms_key, room};
    redisReply *r = admin_redis_check(db, admin_redis_raw(db, rc, 3, argv), REDIS_REPLY_INTEGER,
                                      "HEXISTS rooms");
    if (!r)
        return -1;
    int exists = r->integer == 1;
    freeReplyObject(r);
    return exists;
}

/* EXEC: the array of the queued commands' replies; NULL with *retry set when
 * a WATCHed key changed, or NULL after printing why. */
static redisReply *exec_watched(struct admin_redis *db, redisContext *rc, bool *retry)
{
    *retry = false;
    const char *argv[] = {"EXEC"};
    redisReply *r = admin_redis_raw(db, rc, 1, argv);
    if (r && r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        *retry = true;
        return NULL;
    }
    return admin_redis_check(db, r, REDIS_REPLY_ARRAY, "EXEC");
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
    struct admin_redis *db = admin_redis_open(o);
    int rv = ADMIN_EXIT_FAIL;
    if (!db)
        goto done;
    admin_key(control, o->prefix, "control", "", "");
    /* Classic pub/sub: any node of a cluster reaches every gateway. */
    const char *argv[] = {"PUBLISH", control, text};
    redisReply *r = admin_redis_check(db, admin_redis_command(db, 3, argv), REDIS_REPLY_INTEGER,
                                      "PUBLISH control");
    if (!r)
        goto done;
    long long nodes = admin_redis_listeners(db, control, r->integer);
    freeReplyObject(r);
    rv = report(o, json_pack("{s:s, s:I}", "kicked", user, "nodes", (json_int_t)nodes),
                "kicked %s: %lld gateway%s closing its connections (code 4003)", user, nodes,
                nodes == 1 ? "" : "s");

done:
    free(text);
    admin_redis_free(db);
    return rv;
}

/* ---- delete-room, purge ---- */

/* One room command: what it queues inside MULTI (after WATCH and the check
 * that the room exists) and how it reports EXEC's replies. */
struct room_command {
    const struct admin_options *o;
    const char *room;
    struct admin_redis *db;
    redisContext *rc;            /* the master of the room's keys: WATCH, MULTI ... EXEC */
    bool split;                  /* the rooms hash is in another slot (Redis Cluster) */
    bool unlists;                /* delete-room: split, it WATCHes nothing (prepare_delete) */
    char rooms[ADMIN_KEY_MAX];   /* the rooms hash, WATCHed unless split */
    char control[ADMIN_KEY_MAX]; /* the control channel */
    char seq[ADMIN_KEY_MAX];     /* the room's seq, WATCHed too */
    long long seq_now;           /* read after WATCH */
    redisReply *members;         /* delete-room: the room's member ids, read after WATCH */
    /* Reads (or, split, does) what must come before MULTI (may be NULL);
     * false after printing why. */
    bool (*prepare)(struct room_command *c);
    /* Queues the commands; false after printing why. */
    bool (*queue)(struct room_command *c);
    int (*report)(struct room_command *c, const redisReply *exec);
};

/* WATCHes what c decides on; 1 done, 0 when a cluster redirected the room's
 * slot (the map is read again: start over), -1 after printing why. */
static int room_watch(struct room_command *c)
{
    if (c->split && c->unlists)
        return 1;
    const char *watch[] = {"WATCH", c->seq, c->rooms};
    redisReply *r = admin_redis_raw(c->db, c->rc, c->split ? 2 : 3, watch);
    /* A transaction cannot follow an ASK (ASKING covers one command), so
     * while the room's slot migrates the command is refused, plainly. */
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "ASK ", 4) == 0) {
        admin_fail("the hash slot of %s is being migrated (%s); try again when the reshard is "
                   "done",
                   c->room, r->str);
        freeReplyObject(r);
        return -1;
    }
    if (admin_redis_redirected(c->db, r)) {
        freeReplyObject(r);
        return 0;
    }
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok)
        admin_fail("Redis WATCH: %s", r ? r->str : admin_redis_errstr(c->db));
    freeReplyObject(r);
    return ok ? 1 : -1;
}

/* WATCH, check, MULTI, queue, EXEC, until EXEC runs or tries run out. */
static int room_command_run(struct room_command *c)
{
    const struct admin_options *o = c->o;
    admin_key(c->rooms, o->prefix, "rooms", "", "");
    admin_key(c->control, o->prefix, "control", "", "");
    admin_key(c->seq, o->prefix, "room:{", c->room, "}:seq");
    c->db = admin_redis_open(o);
    if (!c->db)
        return ADMIN_EXIT_FAIL;
    c->split = !admin_redis_same_slot(c->db, c->rooms, c->seq);
    int rv = ADMIN_EXIT_FAIL;
    for (int i = 0; i < ADMIN_WATCH_TRIES; i++) {
        /* Looked up on every try: a MOVED has changed the map. */
        c->rc = admin_redis_node(c->db, c->seq);
        redisContext *rooms_rc = c->rc ? admin_redis_node(c->db, c->rooms) : NULL;
        if (!rooms_rc) {
            admin_fail("%s", admin_redis_errstr(c->db));
            goto done;
        }
        int watched = room_watch(c);
        if (watched < 0)
            goto done;
        if (watched == 0)
            continue;
        int exists = room_exists(c->db, rooms_rc, c->rooms, c->room);
        if (exists < 0)
            goto done;
        if (!exists) {
            admin_fail("no room named %s", c->room);
            goto done;
        }
        const char *get[] = {"GET", c->seq};
        redisReply *seq = admin_redis_raw(c->db, c->rc, 2, get);
        if (!seq || seq->type == REDIS_REPLY_ERROR) {
            admin_fail("Redis GET seq: %s", seq ? seq->str : admin_redis_errstr(c->db));
            freeReplyObject(seq);
            goto done;
        }
        c->seq_now = seq->type == REDIS_REPLY_STRING ? strtoll(seq->str, NULL, 10) : 0;
        freeReplyObject(seq);
        if (c->prepare && !c->prepare(c))
            goto done;
        const char *multi[] = {"MULTI"};
        if (!send_argv(c->db, c->rc, 1, multi) || !c->queue(c))
            goto done;
        bool retry;
        redisReply *exec = exec_watched(c->db, c->rc, &retry);
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
    admin_redis_free(c->db);
    c->db = NULL;
    return rv;
}

/* Queues PUBLISH of the control message msg (taken). */
static bool queue_control(struct room_command *c, json_t *msg)
{
    char *text = control_text(msg);
    if (!text)
        return false;
    const char *argv[] = {"PUBLISH", c->control, text};
    bool ok = send_argv(c->db, c->rc, 3, argv);
    free(text);
    return ok;
}

/* The same unlisting as the --room-ttl sweep (room_sweep.lua), told to take
 * this one room now: argv (10 + CHAT_DEFAULT_ROOMS entries) pointing into
 * keys, all in the rooms hash's slot. */
static void unlist_argv(struct room_command *c, const char **argv, char (*keys)[ADMIN_KEY_MAX])
{
    const char *prefix = c->o->prefix;
    char tag[80];
    admin_key(tag, "{", prefix, "rooms", "}");
    admin_key(keys[0], prefix, "rooms:names", "", tag);
    admin_key(keys[1], prefix, "rooms:popular", "", tag);
    admin_key(keys[2], prefix, "rooms:active", "", tag);
    const char *head[] = {"EVAL",  gw_lua_room_sweep, "4",      c->rooms, keys[0],
                          keys[1], keys[2],           "unlist", c->room,  ""};
    memcpy(argv, head, sizeof(head));
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[10 + i] = chat_default_rooms[i].name;
}

/* The members whose holder sets go with the room (a member who joins after
 * this read leaves a holder set that expires a minute after its last
 * refresh).  Split, the room is unlisted here, on the rooms hash's master,
 * before its keys go: the order of the gateway's sweep, which is why a split
 * delete-room WATCHes nothing (a retry would find the room unlisted). */
static bool prepare_delete(struct room_command *c)
{
    char members[ADMIN_KEY_MAX];
    admin_key(members, c->o->prefix, "room:{", c->room, "}:members");
    const char *argv[] = {"ZRANGE", members, "0", "-1"};
    freeReplyObject(c->members);
    c->members = admin_redis_check(c->db, admin_redis_raw(c->db, c->rc, 4, argv), REDIS_REPLY_ARRAY,
                                   "ZRANGE members");
    if (!c->members || !c->split)
        return c->members != NULL;
    const char *eval[10 + CHAT_DEFAULT_ROOMS];
    char keys[3][ADMIN_KEY_MAX];
    unlist_argv(c, eval, keys);
    redisReply *r =
        admin_redis_check(c->db, admin_redis_command(c->db, 10 + CHAT_DEFAULT_ROOMS, eval),
                          REDIS_REPLY_INTEGER, "EVAL room_sweep");
    if (!r)
        return false;
    bool unlisted = r->integer == 1;
    freeReplyObject(r);
    if (!unlisted)
        admin_fail("no room named %s", c->room); /* deleted since HEXISTS */
    return unlisted;
}

/* Unlists the room (unless split: done already), then deletes the room's
 * keys, all in the room's hash slot. */
static bool queue_delete(struct room_command *c)
{
    const char *prefix = c->o->prefix;
    static const char *const kinds[] = {"}:history", "}:seq", "}:members", "}:reactions",
                                        "}:users"};
    size_t nkinds = sizeof(kinds) / sizeof(kinds[0]);
    size_t n = 1 + nkinds + c->members->elements;
    char(*keys)[ADMIN_KEY_MAX] = calloc(n, ADMIN_KEY_MAX);
    const char **del = calloc(n, sizeof(*del));
    bool ok = keys && del;
    if (ok && !c->split) {
        const char *eval[10 + CHAT_DEFAULT_ROOMS];
        char index[3][ADMIN_KEY_MAX];
        unlist_argv(c, eval, index);
        ok = send_argv(c->db, c->rc, (int)(10 + CHAT_DEFAULT_ROOMS), eval);
    }
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
        ok = queue_control(c, json_pack("{s:s, s:s}", "type", "delete_room", "room", c->room)) &&
             send_argv(c->db, c->rc, (int)n, del);
    }
    free(keys);
    free(del);
    return ok;
}

static int report_delete(struct room_command *c, const redisReply *exec)
{
    /* Split, EXEC holds PUBLISH and DEL only: the unlisting was checked before. */
    size_t publish = c->split ? 0 : 1;
    const redisReply *deleted = exec->elements > 0 ? exec->element[0] : NULL;
    if (!c->split && (!deleted || deleted->type != REDIS_REPLY_INTEGER || deleted->integer != 1))
        return admin_fail("Redis EVAL room_sweep: %s was not deleted",
                          deleted && deleted->type == REDIS_REPLY_ERROR ? deleted->str : c->room);
    long long nodes = admin_redis_listeners(c->db, c->control, exec_integer(exec, publish));
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
                             .unlists = true,
                             .prepare = prepare_delete,
                             .queue = queue_delete,
                             .report = report_delete};
    return room_command_run(&c);
}

/* History and the reactions to it go; seq stays, so no seq is ever given
 * twice (clients resume with `since`). */
static bool queue_purge(struct room_command *c)
{
    char history[ADMIN_KEY_MAX], reactions[ADMIN_KEY_MAX];
    admin_key(history, c->o->prefix, "room:{", c->room, "}:history");
    admin_key(reactions, c->o->prefix, "room:{", c->room, "}:reactions");
    const char *llen[] = {"LLEN", history};
    const char *del[] = {"DEL", history, reactions};
    return send_argv(c->db, c->rc, 2, llen) && send_argv(c->db, c->rc, 3, del) &&
           queue_control(c, json_pack("{s:s, s:s, s:I}", "type", "purge", "room", c->room, "seq",
                                      (json_int_t)c->seq_now));
}

static int report_purge(struct room_command *c, const redisReply *exec)
{
    long long messages = exec_integer(exec, 0);
    long long nodes = admin_redis_listeners(c->db, c->control, exec_integer(exec, 2));
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
