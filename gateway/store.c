#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "config.h"
#include "keys.h"
#include "log.h"
#include "lua_scripts.h"
#include "protocol.h"
#include "store.h"
#include "token.h"

/* A nickname stays reserved this long after its holder's last claim. */
#define GW_NICK_TTL_SEC (24 * 3600)

struct script {
    const char *name;
    const char *source;
    char sha[SHA_DIGEST_LENGTH * 2 + 1];
};

struct gw_store {
    struct gw_ctx *ctx;
    struct script *scripts;
    size_t nscripts;
};

/* An EVALSHA in flight, with its arguments kept for the EVAL retry. */
struct eval_call {
    struct gw_store *st;
    const struct script *script;
    gw_bus_reply_cb cb;
    void *arg;
    bool retried;
    int argc; /* arguments after the script: nkeys, keys, args */
    char **argv;
    size_t *argvlen;
};

struct gw_store *gw_store_new(struct gw_ctx *ctx)
{
    struct gw_store *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->ctx = ctx;
    st->nscripts = gw_lua_script_count;
    st->scripts = calloc(st->nscripts, sizeof(*st->scripts));
    if (!st->scripts) {
        free(st);
        return NULL;
    }
    for (size_t i = 0; i < st->nscripts; i++) {
        struct script *s = &st->scripts[i];
        s->name = gw_lua_scripts[i].name;
        s->source = gw_lua_scripts[i].source;
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)s->source, strlen(s->source), md);
        for (int k = 0; k < SHA_DIGEST_LENGTH; k++)
            snprintf(s->sha + 2 * k, 3, "%02x", md[k]);
    }
    return st;
}

void gw_store_free(struct gw_store *st)
{
    if (!st)
        return;
    free(st->scripts);
    free(st);
}

/* A nickname claim: nick_claim.lua on the nick key's slot, and, when someone
 * holds it, presence_online.lua on the online set's, then the claim again
 * with the holder found offline named as the one it may take over. */
struct nick_call {
    struct gw_store *st;
    gw_bus_reply_cb cb;
    void *arg;
    char key[GW_KEY_MAX];
    char uid[CHAT_USER_ID_MAX + 1];
    char holder[CHAT_USER_ID_MAX + 1];
};

static void nick_claim_send(struct nick_call *nc, const char *expect);

static void on_nick_claimed(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct nick_call *nc = arg;
    nc->cb(bus, reply, nc->arg);
    free(nc);
}

/* The holder is online: the answer is the first claim's, the holder's id. */
static void on_nick_holder(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct nick_call *nc = arg;
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        nick_claim_send(nc, nc->holder);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        redisReply held = {
            .type = REDIS_REPLY_STRING, .str = nc->holder, .len = strlen(nc->holder)};
        nc->cb(bus, &held, nc->arg);
    } else {
        nc->cb(bus, reply, nc->arg);
    }
    free(nc);
}

static void on_nick_first(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct nick_call *nc = arg;
    char online[GW_KEY_MAX];
    if (!reply || reply->type != REDIS_REPLY_STRING || reply->len == 0 ||
        reply->len > CHAT_USER_ID_MAX ||
        !gw_key_online(online, sizeof(online), nc->st->ctx->cfg->prefix)) {
        on_nick_claimed(bus, reply, arg);
        return;
    }
    memcpy(nc->holder, reply->str, reply->len);
    nc->holder[reply->len] = '\0';
    const char *argv[] = {online, nc->holder};
    gw_store_eval(nc->st, "presence_online", 1, 2, argv, NULL, on_nick_holder, nc);
}

static void nick_claim_send(struct nick_call *nc, const char *expect)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", GW_NICK_TTL_SEC);
    const char *argv[] = {nc->key, nc->uid, ttl, expect};
    gw_store_eval(nc->st, "nick_claim", 1, 4, argv, NULL,
                  expect[0] ? on_nick_claimed : on_nick_first, nc);
}

static void ignore_reply(struct gw_bus *bus, struct redisReply *reply, void *arg);

void gw_store_claim_nick(struct gw_store *st, const char *nick_key, const char *uid,
                         gw_bus_reply_cb cb, void *arg)
{
    struct nick_call *nc = calloc(1, sizeof(*nc));
    if (!nc || strlen(nick_key) >= sizeof(nc->key) || strlen(uid) >= sizeof(nc->uid)) {
        free(nc);
        if (cb)
            cb(st->ctx->bus, NULL, arg);
        return;
    }
    nc->st = st;
    nc->cb = cb ? cb : ignore_reply;
    nc->arg = arg;
    snprintf(nc->key, sizeof(nc->key), "%s", nick_key);
    snprintf(nc->uid, sizeof(nc->uid), "%s", uid);
    nick_claim_send(nc, "");
}

void gw_store_save_user(struct gw_store *st, const struct chat_identity *who, gw_bus_reply_cb cb,
                        void *arg)
{
    char key[GW_KEY_MAX], now[32];
    if (!gw_key_user(key, sizeof(key), st->ctx->cfg->prefix, who->id, NULL)) {
        if (cb)
            cb(st->ctx->bus, NULL, arg);
        return;
    }
    snprintf(now, sizeof(now), "%lld", (long long)gw_now_ms());
    const char *argv[] = {
        "HSET", key, "name", who->name, "avatar", who->avatar ? who->avatar : "", "last_seen", now};
    gw_bus_command(st->ctx->bus, cb, arg, 8, argv, NULL);
    gw_store_touch_user(st, who->id);
}

void gw_store_touch_user(struct gw_store *st, const char *uid)
{
    char key[GW_KEY_MAX], ttl[16];
    if (!gw_key_user(key, sizeof(key), st->ctx->cfg->prefix, uid, NULL))
        return;
    snprintf(ttl, sizeof(ttl), "%d", GW_USER_TTL_SEC);
    const char *argv[] = {"EXPIRE", key, ttl};
    gw_bus_command(st->ctx->bus, NULL, NULL, 3, argv, NULL);
}

static void ignore_reply(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    (void)reply;
    (void)arg;
}

static void eval_call_free(struct eval_call *call)
{
    for (int i = 0; i < call->argc; i++)
        free(call->argv[i]);
    free(call->argv);
    free(call->argvlen);
    free(call);
}

static void send_eval(struct eval_call *call, bool by_sha);

static void on_eval_reply(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct eval_call *call = arg;
    if (reply && reply->type == REDIS_REPLY_ERROR && !call->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        call->retried = true;
        send_eval(call, false);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        chat_log(CHAT_LOG_ERROR, "script_failed script=%s error=\"%s\"", call->script->name,
                 reply->str);
    call->cb(bus, reply, call->arg);
    eval_call_free(call);
}

static void send_eval(struct eval_call *call, bool by_sha)
{
    int n = call->argc + 2;
    const char **argv = malloc(sizeof(*argv) * (size_t)n);
    size_t *lens = malloc(sizeof(*lens) * (size_t)n);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        call->cb(call->st->ctx->bus, NULL, call->arg);
        eval_call_free(call);
        return;
    }
    argv[0] = by_sha ? "EVALSHA" : "EVAL";
    lens[0] = strlen(argv[0]);
    argv[1] = by_sha ? call->script->sha : call->script->source;
    lens[1] = strlen(argv[1]);
    for (int i = 0; i < call->argc; i++) {
        argv[i + 2] = call->argv[i];
        lens[i + 2] = call->argvlen[i];
    }
    gw_bus_command(call->st->ctx->bus, on_eval_reply, call, n, argv, lens);
    free(argv);
    free(lens);
}

int gw_store_eval(struct gw_store *st, const char *name, int nkeys, int argc, const char **argv,
                  const size_t *argvlen, gw_bus_reply_cb cb, void *arg)
{
    if (!cb)
        cb = ignore_reply;
    const struct script *script = NULL;
    for (size_t i = 0; i < st->nscripts; i++)
        if (strcmp(st->scripts[i].name, name) == 0)
            script = &st->scripts[i];
    struct eval_call *call = script ? calloc(1, sizeof(*call)) : NULL;
    if (!call) {
        if (!script)
            chat_log(CHAT_LOG_ERROR, "script_missing script=%s", name);
        cb(st->ctx->bus, NULL, arg);
        return GW_ERR_INVALID;
    }
    call->st = st;
    call->script = script;
    call->cb = cb;
    call->arg = arg;
    call->argc = argc + 1;
    call->argv = calloc((size_t)call->argc, sizeof(char *));
    call->argvlen = calloc((size_t)call->argc, sizeof(size_t));
    if (!call->argv || !call->argvlen)
        goto fail;
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    call->argv[0] = strdup(nk);
    call->argvlen[0] = strlen(nk);
    if (!call->argv[0])
        goto fail;
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        call->argv[i + 1] = malloc(len + 1);
        if (!call->argv[i + 1])
            goto fail;
        memcpy(call->argv[i + 1], argv[i], len);
        call->argv[i + 1][len] = '\0';
        call->argvlen[i + 1] = len;
    }
    send_eval(call, true);
    return GW_OK;
fail:
    cb(st->ctx->bus, NULL, arg);
    eval_call_free(call);
    return GW_ERR_NOMEM;
}

void gw_store_create_room(struct gw_store *st, const char *room, const char *meta,
                          const char *event, const char *creator, gw_bus_reply_cb cb, void *arg)
{
    const struct chat_config *cfg = st->ctx->cfg;
    char key[GW_KEY_MAX], names[GW_KEY_MAX], active[GW_KEY_MAX], quota[GW_KEY_MAX],
        channel[GW_KEY_MAX], cap[16], rate[16];
    if (!gw_key_rooms(key, sizeof(key), cfg->prefix) ||
        !gw_key_room_names(names, sizeof(names), cfg->prefix) ||
        !gw_key_rooms_active(active, sizeof(active), cfg->prefix) ||
        !gw_key_room_quota(quota, sizeof(quota), cfg->prefix, creator ? creator : "system",
                           (long)(gw_now_ms() / 3600000)) ||
        !gw_key_all(channel, sizeof(channel), cfg->prefix)) {
        if (cb)
            cb(st->ctx->bus, NULL, arg);
        return;
    }
    snprintf(cap, sizeof(cap), "%d", creator ? cfg->max_rooms : 0);
    snprintf(rate, sizeof(rate), "%d", creator ? cfg->room_create_rate : 0);
    const char *argv[] = {key,
                          names,
                          active,
                          quota,
                          room,
                          meta,
                          channel,
                          event,
                          cap,
                          rate,
                          gw_bus_script_publish_cmd(st->ctx->bus, key, channel)};
    gw_store_eval(st, "room_create", 4, 11, argv, NULL, cb, arg);
}

/* The idle-room sweep, in the steps room_sweep.lua describes: candidates
 * from the rooms indexes' slot, each checked in its own slot (room_idle.lua),
 * unlisted only if nobody used it meanwhile, then its keys deleted. */
struct sweep_call {
    struct gw_store *st;
    void (*done)(void *arg);
    void *arg;
    size_t pending;
    long long before; /* a candidate was last used before this (ms, Redis' clock) */
};

struct sweep_room {
    struct sweep_call *sw;
    char room[CHAT_ROOM_MAX + 1];
    char **uids; /* the members room_idle.lua listed, for their holder sets */
    size_t nuids;
};

static void sweep_release(struct sweep_call *sw)
{
    if (--sw->pending > 0)
        return;
    if (sw->done)
        sw->done(sw->arg);
    free(sw);
}

static void sweep_room_free(struct sweep_room *sr)
{
    struct sweep_call *sw = sr->sw;
    for (size_t i = 0; i < sr->nuids; i++)
        free(sr->uids[i]);
    free(sr->uids);
    free(sr);
    sweep_release(sw);
}

/* The names of a room's own keys, for DEL: one slot, so one command. */
#define GW_ROOM_KEYS 5
static const char *const room_key_kinds[GW_ROOM_KEYS] = {"history", "seq", "members", "reactions",
                                                         "users"};

static void on_room_unlisted(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct sweep_room *sr = arg;
    const char *prefix = sr->sw->st->ctx->cfg->prefix;
    if (!reply || reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        sweep_room_free(sr);
        return;
    }
    size_t n = 1 + GW_ROOM_KEYS + sr->nuids;
    char(*keys)[GW_KEY_MAX] = calloc(n, GW_KEY_MAX);
    const char **argv = calloc(n, sizeof(*argv));
    size_t argc = 0;
    if (keys && argv) {
        argv[argc++] = "DEL";
        for (size_t i = 0; i < GW_ROOM_KEYS + sr->nuids; i++) {
            bool ok = i < GW_ROOM_KEYS
                          ? gw_key_room(keys[argc], GW_KEY_MAX, prefix, sr->room,
                                        room_key_kinds[i]) != NULL
                          : gw_key_room_holders(keys[argc], GW_KEY_MAX, prefix, sr->room,
                                                sr->uids[i - GW_ROOM_KEYS]) != NULL;
            if (ok) {
                argv[argc] = keys[argc];
                argc++;
            }
        }
        gw_bus_command(bus, NULL, NULL, (int)argc, argv, NULL);
    }
    chat_log(CHAT_LOG_INFO, "room_expired room=%s", sr->room);
    free(keys);
    free(argv);
    sweep_room_free(sr);
}

static void on_room_idle(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct sweep_room *sr = arg;
    struct gw_store *st = sr->sw->st;
    const char *prefix = st->ctx->cfg->prefix;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        sweep_room_free(sr);
        return;
    }
    char key[GW_KEY_MAX];
    if (strcmp(reply->element[0]->str, "idle") != 0) {
        /* In use after all: its last use moves forward (XX: unless deleted meanwhile). */
        char ts[24];
        snprintf(ts, sizeof(ts), "%lld", reply->element[1]->integer);
        if (gw_key_rooms_active(key, sizeof(key), prefix)) {
            const char *argv[] = {"ZADD", key, "XX", ts, sr->room};
            gw_bus_command(bus, NULL, NULL, 5, argv, NULL);
        }
        sweep_room_free(sr);
        return;
    }
    size_t n = reply->elements - 2;
    sr->uids = calloc(n ? n : 1, sizeof(*sr->uids));
    for (size_t i = 0; sr->uids && i < n; i++) {
        const redisReply *e = reply->element[i + 2];
        if (e->type == REDIS_REPLY_STRING && chat_valid_user_id(e->str) &&
            (sr->uids[sr->nuids] = strdup(e->str)))
            sr->nuids++;
    }
    char keys[4][GW_KEY_MAX], before[24];
    if (!sr->uids || !gw_key_rooms(keys[0], GW_KEY_MAX, prefix) ||
        !gw_key_room_names(keys[1], GW_KEY_MAX, prefix) ||
        !gw_key_rooms_popular(keys[2], GW_KEY_MAX, prefix) ||
        !gw_key_rooms_active(keys[3], GW_KEY_MAX, prefix)) {
        sweep_room_free(sr);
        return;
    }
    snprintf(before, sizeof(before), "%lld", sr->sw->before);
    const char *argv[7 + CHAT_DEFAULT_ROOMS] = {keys[0],  keys[1],  keys[2], keys[3],
                                                "unlist", sr->room, before};
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[7 + i] = chat_default_rooms[i].name;
    gw_store_eval(st, "room_sweep", 4, (int)(7 + CHAT_DEFAULT_ROOMS), argv, NULL, on_room_unlisted,
                  sr);
}

static void on_sweep_candidates(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct sweep_call *sw = arg;
    struct gw_store *st = sw->st;
    const char *prefix = st->ctx->cfg->prefix;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
        reply->element[0]->type == REDIS_REPLY_INTEGER) {
        char idle[24];
        snprintf(idle, sizeof(idle), "%lld", (long long)st->ctx->cfg->room_ttl * 1000);
        sw->before = reply->element[0]->integer - (long long)st->ctx->cfg->room_ttl * 1000;
        for (size_t i = 1; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            char hist[GW_KEY_MAX], members[GW_KEY_MAX];
            if (e->type != REDIS_REPLY_STRING || e->len > CHAT_ROOM_MAX ||
                !chat_valid_room_name(e->str) ||
                !gw_key_room(hist, sizeof(hist), prefix, e->str, "history") ||
                !gw_key_room(members, sizeof(members), prefix, e->str, "members"))
                continue;
            struct sweep_room *sr = calloc(1, sizeof(*sr));
            if (!sr)
                break;
            sr->sw = sw;
            snprintf(sr->room, sizeof(sr->room), "%s", e->str);
            sw->pending++;
            const char *argv[] = {hist, members, idle};
            gw_store_eval(st, "room_idle", 2, 3, argv, NULL, on_room_idle, sr);
        }
    }
    sweep_release(sw);
}

void gw_store_sweep_rooms(struct gw_store *st, void (*done)(void *arg), void *arg)
{
    const struct chat_config *cfg = st->ctx->cfg;
    char rooms[GW_KEY_MAX], names[GW_KEY_MAX], popular[GW_KEY_MAX], active[GW_KEY_MAX], idle[24];
    struct sweep_call *sw = NULL;
    if (cfg->room_ttl <= 0 || !gw_key_rooms(rooms, sizeof(rooms), cfg->prefix) ||
        !gw_key_room_names(names, sizeof(names), cfg->prefix) ||
        !gw_key_rooms_popular(popular, sizeof(popular), cfg->prefix) ||
        !gw_key_rooms_active(active, sizeof(active), cfg->prefix) ||
        !(sw = calloc(1, sizeof(*sw)))) {
        if (done)
            done(arg);
        return;
    }
    sw->st = st;
    sw->done = done;
    sw->arg = arg;
    sw->pending = 1;
    snprintf(idle, sizeof(idle), "%lld", (long long)cfg->room_ttl * 1000);
    const char *argv[7 + CHAT_DEFAULT_ROOMS] = {rooms,        names, popular, active,
                                                "candidates", idle,  "50"};
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[7 + i] = chat_default_rooms[i].name;
    gw_store_eval(st, "room_sweep", 4, (int)(7 + CHAT_DEFAULT_ROOMS), argv, NULL,
                  on_sweep_candidates, sw);
}

void gw_store_ensure_default_rooms(struct gw_store *st)
{
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++) {
        json_t *meta = json_pack("{s:s, s:s, s:I}", "topic", chat_default_rooms[i].topic,
                                 "created_by", "system", "created_at", (json_int_t)0);
        json_t *event =
            json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:n}}", "type", "room_created", "room",
                      chat_default_rooms[i].name, "topic", chat_default_rooms[i].topic, "by", "id",
                      "system", "name", "system", "avatar");
        char *meta_s = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
        char *event_s = event ? json_dumps(event, JSON_COMPACT) : NULL;
        if (meta_s && event_s)
            gw_store_create_room(st, chat_default_rooms[i].name, meta_s, event_s, NULL, NULL, NULL);
        free(meta_s);
        free(event_s);
        json_decref(meta);
        json_decref(event);
    }
}

/* A rooms listing: rooms.lua on the rooms hash's slot, then one ZCOUNT of
 * live members per listed room, each in the room's own slot, at the time
 * rooms.lua read (Redis' clock, like the members' expiries). */
struct rooms_call {
    struct gw_store *st;
    gw_store_rooms_cb cb;
    void *arg;
    json_t *rooms;
    bool more;
    bool failed;
    size_t pending;
};

static void rooms_call_finish(struct rooms_call *rc)
{
    if (rc->failed) {
        json_decref(rc->rooms);
        rc->cb(rc->arg, NULL, false);
    } else {
        rc->cb(rc->arg, rc->rooms, rc->more);
    }
    free(rc);
}

struct room_count {
    struct rooms_call *rc;
    size_t index;
};

static void on_member_count(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct room_count *c = arg;
    struct rooms_call *rc = c->rc;
    if (!reply || reply->type != REDIS_REPLY_INTEGER)
        rc->failed = true;
    else
        json_object_set_new(json_array_get(rc->rooms, c->index), "members",
                            json_integer(reply->integer));
    free(c);
    if (--rc->pending == 0)
        rooms_call_finish(rc);
}

static void on_rooms_listed(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    struct rooms_call *rc = arg;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        rc->failed = true;
        rooms_call_finish(rc);
        return;
    }
    rc->more = reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1;
    char now[24], key[GW_KEY_MAX];
    snprintf(now, sizeof(now), "%lld", reply->element[1]->integer);
    rc->rooms = json_array();
    rc->pending = 1; /* this function's own, so no count finishes the call early */
    for (size_t i = 2; i + 1 < reply->elements && rc->rooms; i += 2) {
        const redisReply *name = reply->element[i], *meta = reply->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || !chat_valid_room_name(name->str) ||
            !gw_key_room(key, sizeof(key), rc->st->ctx->cfg->prefix, name->str, "members"))
            continue;
        json_t *m =
            meta->type == REDIS_REPLY_STRING ? json_loadb(meta->str, meta->len, 0, NULL) : NULL;
        json_t *topic = json_object_get(m, "topic");
        json_array_append_new(rc->rooms,
                              json_pack("{s:s, s:s, s:i}", "name", name->str, "topic",
                                        json_is_string(topic) ? json_string_value(topic) : "",
                                        "members", 0));
        json_decref(m);
        struct room_count *c = malloc(sizeof(*c));
        if (!c) {
            rc->failed = true;
            break;
        }
        c->rc = rc;
        c->index = json_array_size(rc->rooms) - 1;
        rc->pending++;
        const char *argv[] = {"ZCOUNT", key, now, "+inf"};
        gw_bus_command(bus, on_member_count, c, 4, argv, NULL);
    }
    if (!rc->rooms)
        rc->failed = true;
    if (--rc->pending == 0)
        rooms_call_finish(rc);
}

/* Runs rooms.lua with argv[3..] (now, mode, limit, mode's args) after its keys. */
static void rooms_eval(struct gw_store *st, int argc, const char **argv, gw_store_rooms_cb cb,
                       void *arg)
{
    const char *prefix = st->ctx->cfg->prefix;
    char keys[3][GW_KEY_MAX];
    struct rooms_call *rc = calloc(1, sizeof(*rc));
    if (!rc || !gw_key_rooms(keys[0], GW_KEY_MAX, prefix) ||
        !gw_key_room_names(keys[1], GW_KEY_MAX, prefix) ||
        !gw_key_rooms_popular(keys[2], GW_KEY_MAX, prefix)) {
        free(rc);
        cb(arg, NULL, false);
        return;
    }
    rc->st = st;
    rc->cb = cb;
    rc->arg = arg;
    argv[0] = keys[0];
    argv[1] = keys[1];
    argv[2] = keys[2];
    argv[3] = ""; /* live member counts on Redis' clock */
    gw_store_eval(st, "rooms", 3, argc, argv, NULL, on_rooms_listed, rc);
}

void gw_store_list_rooms(struct gw_store *st, const char *q, const char *after, int limit,
                         gw_store_rooms_cb cb, void *arg)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *argv[] = {NULL, NULL, NULL, NULL, "page", lim, q ? q : "", after ? after : ""};
    rooms_eval(st, 8, argv, cb, arg);
}

void gw_store_welcome_rooms(struct gw_store *st, gw_store_rooms_cb cb, void *arg)
{
    char lim[16];
    const char *argv[6 + CHAT_DEFAULT_ROOMS] = {NULL, NULL, NULL, NULL, "welcome", lim};
    snprintf(lim, sizeof(lim), "%d", GW_WELCOME_ROOMS);
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[6 + i] = chat_default_rooms[i].name;
    rooms_eval(st, (int)(6 + CHAT_DEFAULT_ROOMS), argv, cb, arg);
}

void gw_store_history_range(struct gw_store *st, const char *seq_key, const char *hist_key,
                            const char *mode, int64_t bound, int limit, size_t max_bytes,
                            gw_bus_reply_cb cb, void *arg)
{
    char b[24], l[24], cap[24];
    snprintf(b, sizeof(b), "%lld", (long long)bound);
    snprintf(l, sizeof(l), "%d", limit);
    snprintf(cap, sizeof(cap), "%zu", max_bytes);
    const char *argv[] = {seq_key, hist_key, mode, b, l, cap};
    gw_store_eval(st, "history_range", 2, 6, argv, NULL, cb, arg);
}

void gw_store_read_marks(struct gw_store *st, const char *uid, gw_bus_reply_cb cb, void *arg)
{
    char key[GW_KEY_MAX];
    if (!gw_key_user(key, sizeof(key), st->ctx->cfg->prefix, uid, "read")) {
        cb(st->ctx->bus, NULL, arg);
        return;
    }
    const char *argv[] = {"HGETALL", key};
    gw_bus_command(st->ctx->bus, cb, arg, 2, argv, NULL);
}

json_t *gw_store_read_marks_json(const struct redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return NULL;
    json_t *marks = json_object();
    for (size_t i = 0; marks && i + 1 < reply->elements; i += 2) {
        const redisReply *f = reply->element[i], *v = reply->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        char *end = NULL;
        long long seq = strtoll(v->str, &end, 10);
        if (end && *end == '\0' && seq > 0)
            json_object_setn_new(marks, f->str, f->len, json_integer(seq));
    }
    return marks;
}
