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

void gw_store_claim_nick(struct gw_store *st, const char *nick_key, const char *uid,
                         gw_bus_reply_cb cb, void *arg)
{
    char online_key[GW_KEY_MAX], now[32], ttl[16];
    if (!gw_key_online(online_key, sizeof(online_key), st->ctx->cfg->prefix)) {
        if (cb)
            cb(st->ctx->bus, NULL, arg);
        return;
    }
    now[0] = '\0'; /* Redis' TIME decides who is online */
    snprintf(ttl, sizeof(ttl), "%d", GW_NICK_TTL_SEC);
    const char *argv[] = {nick_key, online_key, uid, now, ttl};
    gw_store_eval(st, "nick_claim", 2, 5, argv, NULL, cb, arg);
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
    const char *argv[] = {key, names, active, quota, room, meta, channel, event, cap, rate};
    gw_store_eval(st, "room_create", 4, 10, argv, NULL, cb, arg);
}

void gw_store_sweep_rooms(struct gw_store *st, gw_bus_reply_cb cb, void *arg)
{
    const struct chat_config *cfg = st->ctx->cfg;
    char rooms[GW_KEY_MAX], names[GW_KEY_MAX], popular[GW_KEY_MAX], active[GW_KEY_MAX],
        head[GW_KEY_MAX], idle[24];
    if (cfg->room_ttl <= 0 || !gw_key_rooms(rooms, sizeof(rooms), cfg->prefix) ||
        !gw_key_room_names(names, sizeof(names), cfg->prefix) ||
        !gw_key_rooms_popular(popular, sizeof(popular), cfg->prefix) ||
        !gw_key_rooms_active(active, sizeof(active), cfg->prefix) ||
        !gw_key_room_head(head, sizeof(head), cfg->prefix)) {
        if (cb)
            cb(st->ctx->bus, NULL, arg);
        return;
    }
    snprintf(idle, sizeof(idle), "%lld", (long long)cfg->room_ttl * 1000);
    const char *argv[8 + CHAT_DEFAULT_ROOMS] = {rooms, names, popular, active,
                                                idle,  "50",  head,    "}:"};
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[8 + i] = chat_default_rooms[i].name;
    gw_store_eval(st, "room_sweep", 4, (int)(8 + CHAT_DEFAULT_ROOMS), argv, NULL, cb, arg);
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

/* argv[0..2] keys, 3 now, 4 room head, 5 members tail: the part of every
 * rooms.lua call that does not depend on the mode.  False when a key does
 * not fit. */
static bool rooms_head(struct gw_store *st, char keys[3][GW_KEY_MAX], char *now, size_t nowlen,
                       char *head, const char **argv)
{
    const char *prefix = st->ctx->cfg->prefix;
    if (!gw_key_rooms(keys[0], GW_KEY_MAX, prefix) ||
        !gw_key_room_names(keys[1], GW_KEY_MAX, prefix) ||
        !gw_key_rooms_popular(keys[2], GW_KEY_MAX, prefix) ||
        !gw_key_room_head(head, GW_KEY_MAX, prefix))
        return false;
    (void)nowlen;
    now[0] = '\0'; /* live member counts on Redis' clock */
    argv[0] = keys[0];
    argv[1] = keys[1];
    argv[2] = keys[2];
    argv[3] = now;
    argv[4] = head;
    argv[5] = "}:members";
    return true;
}

void gw_store_list_rooms(struct gw_store *st, const char *q, const char *after, int limit,
                         gw_bus_reply_cb cb, void *arg)
{
    char keys[3][GW_KEY_MAX], now[32], head[GW_KEY_MAX], lim[16];
    const char *argv[10];
    if (!rooms_head(st, keys, now, sizeof(now), head, argv)) {
        cb(st->ctx->bus, NULL, arg);
        return;
    }
    snprintf(lim, sizeof(lim), "%d", limit);
    argv[6] = "page";
    argv[7] = lim;
    argv[8] = q ? q : "";
    argv[9] = after ? after : "";
    gw_store_eval(st, "rooms", 3, 10, argv, NULL, cb, arg);
}

void gw_store_welcome_rooms(struct gw_store *st, gw_bus_reply_cb cb, void *arg)
{
    char keys[3][GW_KEY_MAX], now[32], head[GW_KEY_MAX], lim[16];
    const char *argv[8 + CHAT_DEFAULT_ROOMS];
    if (!rooms_head(st, keys, now, sizeof(now), head, argv)) {
        cb(st->ctx->bus, NULL, arg);
        return;
    }
    snprintf(lim, sizeof(lim), "%d", GW_WELCOME_ROOMS);
    argv[6] = "welcome";
    argv[7] = lim;
    for (size_t i = 0; i < CHAT_DEFAULT_ROOMS; i++)
        argv[8 + i] = chat_default_rooms[i].name;
    gw_store_eval(st, "rooms", 3, (int)(8 + CHAT_DEFAULT_ROOMS), argv, NULL, cb, arg);
}

json_t *gw_store_rooms_json(const struct redisReply *reply, bool *more)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)
        return NULL;
    *more = reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1;
    json_t *rooms = json_array();
    for (size_t i = 1; i + 2 < reply->elements + 0 && rooms; i += 3) {
        const redisReply *name = reply->element[i], *meta = reply->element[i + 1],
                         *count = reply->element[i + 2];
        if (name->type != REDIS_REPLY_STRING)
            continue;
        json_t *m =
            meta->type == REDIS_REPLY_STRING ? json_loadb(meta->str, meta->len, 0, NULL) : NULL;
        json_t *topic = json_object_get(m, "topic");
        json_array_append_new(
            rooms,
            json_pack("{s:s, s:s, s:I}", "name", name->str, "topic",
                      json_is_string(topic) ? json_string_value(topic) : "", "members",
                      (json_int_t)(count->type == REDIS_REPLY_INTEGER ? count->integer : 0)));
        json_decref(m);
    }
    return rooms;
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
