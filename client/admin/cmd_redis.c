/*
 * chat-admin online, nodes, rooms: read-only views of the keys the gateways
 * keep in Redis (PROTOCOL.md section 5), with the same expiry rules the
 * gateways apply: a presence entry counts while its score (expiry, ms) is
 * in the future.  Per-key lookups are pipelined (redis.c sends each to the
 * master of its slot); the key helpers are shared with cmd_control.c.
 */
#include "admin.h"
#include "config.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ONLINE_MAX_TEXT "10000" /* as the gateway's users list */
#define ADMIN_SCAN_COUNT "1000"

void admin_key(char *buf, const char *prefix, const char *head, const char *name, const char *tail)
{
    snprintf(buf, ADMIN_KEY_MAX, "%s%s%s%s", prefix, head, name, tail);
}

static json_int_t reply_integer(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return (json_int_t)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return (json_int_t)strtoll(r->str, NULL, 10);
    return 0;
}

static json_t *reply_string_or_null(const redisReply *r)
{
    if (!r || r->type != REDIS_REPLY_STRING || r->len == 0)
        return json_null();
    return json_stringn(r->str, r->len);
}

static int by_field_cmp(json_t *a, json_t *b, const char *field, bool nocase)
{
    const char *x = json_string_value(json_object_get(a, field));
    const char *y = json_string_value(json_object_get(b, field));
    if (!x || !y)
        return (x != NULL) - (y != NULL);
    return nocase ? strcasecmp(x, y) : strcmp(x, y);
}

static int cmp_users(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = by_field_cmp(x, y, "name", true);
    return c ? c : by_field_cmp(x, y, "id", false);
}

static int cmp_nodes(const void *a, const void *b)
{
    return by_field_cmp(*(json_t *const *)a, *(json_t *const *)b, "node", false);
}

static int cmp_rooms(const void *a, const void *b)
{
    return by_field_cmp(*(json_t *const *)a, *(json_t *const *)b, "name", false);
}

/* Sorts a JSON array in place. */
static void sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
    size_t n = json_array_size(arr);
    if (n < 2)
        return;
    json_t **items = malloc(n * sizeof(*items));
    if (!items)
        return; /* unsorted is still correct */
    for (size_t i = 0; i < n; i++)
        items[i] = json_incref(json_array_get(arr, i));
    qsort(items, n, sizeof(*items), cmp);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, items[i]);
    free(items);
}

/* ---- online ---- */

int admin_cmd_online(const struct admin_options *o)
{
    struct admin_redis *db = admin_redis_open(o);
    redisReply *ids = NULL;
    json_t *users = NULL;
    int rv = ADMIN_EXIT_FAIL;
    char key[ADMIN_KEY_MAX], now[32], tag[80]; /* "{" + a prefix of at most 64 + "online}" */

    if (!db)
        return ADMIN_EXIT_FAIL;
    snprintf(now, sizeof(now), "%lld", (long long)admin_now_ms());
    admin_key(key, o->prefix, "online", "", "");
    /* The holder sets share the online set's hash slot (gateway/keys.h). */
    admin_key(tag, "{", o->prefix, "online", "}");
    const char *range[] = {"ZRANGEBYSCORE", key, now, "+inf", "LIMIT", "0", ONLINE_MAX_TEXT};
    ids = admin_redis_check(db, admin_redis_command(db, 7, range), REDIS_REPLY_ARRAY,
                            "ZRANGEBYSCORE online");
    if (!ids)
        goto done;
    /* A user's hash lives in the user's slot, the holder set in the online
     * set's: on a cluster, two masters answer for each user. */
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *id = ids->element[i];
        admin_key(key, o->prefix, "user:{", id->str, "}");
        const char *hmget[] = {"HMGET", key, "name", "avatar"};
        if (admin_redis_append(db, 4, hmget) < 0)
            goto append_failed;
        admin_key(key, o->prefix, "online:nodes:", id->str, tag);
        const char *holders[] = {"ZRANGEBYSCORE", key, now, "+inf"};
        if (admin_redis_append(db, 4, holders) < 0)
            goto append_failed;
    }
    users = json_array();
    for (size_t i = 0; users && i < ids->elements; i++) {
        const char *id = ids->element[i]->str;
        redisReply *fields =
            admin_redis_check(db, admin_redis_next(db), REDIS_REPLY_ARRAY, "HMGET user");
        redisReply *holders = admin_redis_check(db, admin_redis_next(db), REDIS_REPLY_ARRAY,
                                                "ZRANGEBYSCORE user nodes");
        if (!fields || !holders) {
            freeReplyObject(fields);
            freeReplyObject(holders);
            goto done;
        }
        json_t *nodes = json_array();
        for (size_t k = 0; k < holders->elements; k++)
            json_array_append_new(nodes, reply_string_or_null(holders->element[k]));
        json_t *name = fields->elements > 0 ? reply_string_or_null(fields->element[0]) : NULL;
        /* The gateway shows the id when the user hash has no name. */
        if (!json_is_string(name)) {
            json_decref(name);
            name = json_string(id);
        }
        json_array_append_new(
            users,
            json_pack("{s:s, s:o, s:o, s:o}", "id", id, "name", name, "avatar",
                      fields->elements > 1 ? reply_string_or_null(fields->element[1]) : json_null(),
                      "nodes", nodes));
        freeReplyObject(fields);
        freeReplyObject(holders);
    }
    if (!users) {
        admin_fail("out of memory");
        goto done;
    }
    sort_array(users, cmp_users);
    if (o->json) {
        rv = admin_print_json(
            json_pack("{s:O, s:I}", "users", users, "count", (json_int_t)json_array_size(users)));
        goto done;
    }
    printf("%-24s %-32s %s\n", "ID", "NAME", "NODES");
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        char nodes[256] = "";
        size_t k;
        json_t *n;
        json_array_foreach(json_object_get(u, "nodes"), k, n)
        {
            size_t len = strlen(nodes);
            snprintf(nodes + len, sizeof(nodes) - len, "%s%s", k ? "," : "", json_string_value(n));
        }
        printf("%-24s %-32s %s\n", json_string_value(json_object_get(u, "id")),
               json_string_value(json_object_get(u, "name")), nodes);
    }
    printf("%zu user%s online\n", json_array_size(users), json_array_size(users) == 1 ? "" : "s");
    rv = ADMIN_EXIT_OK;
    goto done;

append_failed:
    admin_fail("Redis: %s", admin_redis_errstr(db));
done:
    json_decref(users);
    freeReplyObject(ids);
    admin_redis_free(db);
    return rv;
}

/* ---- nodes ---- */

/* s with the glob characters of SCAN MATCH escaped, into out. */
static void glob_escape(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (; *s && o + 2 < len; s++) {
        if (strchr("*?[]\\", *s))
            out[o++] = '\\';
        out[o++] = *s;
    }
    out[o] = '\0';
}

/* SCANs master m for pattern, every key found set in keys; 0 or -1 after
 * printing why. */
static int scan_into(struct admin_redis *db, size_t m, const char *pattern, json_t *keys)
{
    char cursor[32] = "0", what[300] = "SCAN ";
    admin_redis_master_addr(db, m, what + 5, sizeof(what) - 5);
    redisContext *rc = admin_redis_master(db, m);
    if (!rc) {
        admin_fail("Redis %s: %s", what, admin_redis_errstr(db));
        return -1;
    }
    do {
        const char *argv[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", ADMIN_SCAN_COUNT};
        redisReply *r =
            admin_redis_check(db, admin_redis_raw(db, rc, 6, argv), REDIS_REPLY_ARRAY, what);
        if (!r)
            return -1;
        if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            admin_fail("Redis %s: unexpected reply", what);
            return -1;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            json_object_set_new(keys, r->element[1]->element[i]->str, json_true());
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

int admin_cmd_nodes(const struct admin_options *o)
{
    struct admin_redis *db = admin_redis_open(o);
    json_t *keys = NULL, *nodes = NULL;
    int rv = ADMIN_EXIT_FAIL;
    char pattern[ADMIN_KEY_MAX], escaped[ADMIN_KEY_MAX / 2 - 16];

    if (!db)
        return ADMIN_EXIT_FAIL;
    /* Heartbeats are node:{ID} strings with a TTL (gateway/presence.c); SCAN,
     * unlike KEYS, does not block the server on a big keyspace. */
    glob_escape(o->prefix, escaped, sizeof(escaped));
    snprintf(pattern, sizeof(pattern), "%snode:{*}", escaped);
    keys = json_object(); /* a set: SCAN may return a key twice */
    if (!keys)
        goto done;
    /* A cluster spreads the heartbeats over its masters by node id. */
    for (size_t m = 0; m < admin_redis_masters(db); m++) {
        if (scan_into(db, m, pattern, keys) < 0)
            goto done;
    }

    const char *key;
    json_t *unused;
    json_object_foreach(keys, key, unused)
    {
        const char *get[] = {"GET", key}, *pttl[] = {"PTTL", key};
        if (admin_redis_append(db, 2, get) < 0 || admin_redis_append(db, 2, pttl) < 0) {
            admin_fail("Redis GET node: %s", admin_redis_errstr(db));
            goto done;
        }
    }
    nodes = json_array();
    int64_t now = admin_now_ms();
    size_t head = strlen(o->prefix) + strlen("node:{");
    json_object_foreach(keys, key, unused)
    {
        redisReply *val = admin_redis_next(db);
        redisReply *ttl = admin_redis_next(db);
        if (!val || !ttl) {
            freeReplyObject(val);
            freeReplyObject(ttl);
            admin_fail("Redis GET node: %s", admin_redis_errstr(db));
            goto done;
        }
        size_t klen = strlen(key);
        /* Gone between SCAN and GET: that node just expired. */
        if (val->type == REDIS_REPLY_STRING && nodes && klen > head) {
            json_t *hb = json_loadb(val->str, val->len, 0, NULL);
            json_int_t ts = json_integer_value(json_object_get(hb, "ts"));
            json_t *conns = json_object_get(hb, "connections");
            json_array_append_new(
                nodes,
                json_pack("{s:s%, s:O?, s:I, s:I, s:I}", "node", key + head, klen - head - 1,
                          "connections", json_is_integer(conns) ? conns : NULL, "heartbeat_ts", ts,
                          "age_ms", ts ? (json_int_t)(now - ts) : 0, "ttl_ms", reply_integer(ttl)));
            json_decref(hb);
        }
        freeReplyObject(val);
        freeReplyObject(ttl);
    }
    if (!nodes) {
        admin_fail("out of memory");
        goto done;
    }
    sort_array(nodes, cmp_nodes);
    json_int_t total = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n) total += json_integer_value(json_object_get(n, "connections"));
    if (o->json) {
        rv = admin_print_json(json_pack("{s:O, s:I}", "nodes", nodes, "connections", total));
        goto done;
    }
    printf("%-32s %11s %s\n", "NODE", "CONNECTIONS", "LAST HEARTBEAT");
    json_array_foreach(nodes, i, n)
    {
        json_t *c = json_object_get(n, "connections");
        char conns[32] = "?";
        if (json_is_integer(c))
            snprintf(conns, sizeof(conns), "%" JSON_INTEGER_FORMAT, json_integer_value(c));
        printf("%-32s %11s %.1f s ago\n", json_string_value(json_object_get(n, "node")), conns,
               (double)json_integer_value(json_object_get(n, "age_ms")) / 1000.0);
    }
    printf("%zu node%s alive, %" JSON_INTEGER_FORMAT " connection%s\n", json_array_size(nodes),
           json_array_size(nodes) == 1 ? "" : "s", total, total == 1 ? "" : "s");
    rv = ADMIN_EXIT_OK;

done:
    json_decref(keys);
    json_decref(nodes);
    admin_redis_free(db);
    return rv;
}

/* ---- rooms ---- */

int admin_cmd_rooms(const struct admin_options *o)
{
    struct admin_redis *db = admin_redis_open(o);
    redisReply *all = NULL;
    json_t *rooms = NULL;
    int rv = ADMIN_EXIT_FAIL;
    char key[ADMIN_KEY_MAX], now[32];

    if (!db)
        return ADMIN_EXIT_FAIL;
    snprintf(now, sizeof(now), "%lld", (long long)admin_now_ms());
    admin_key(key, o->prefix, "rooms", "", "");
    const char *hgetall[] = {"HGETALL", key};
    all = admin_redis_check(db, admin_redis_command(db, 2, hgetall), REDIS_REPLY_ARRAY,
                            "HGETALL rooms");
    if (!all)
        goto done;
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        admin_key(key, o->prefix, "room:{", all->element[i]->str, "}:members");
        const char *zcount[] = {"ZCOUNT", key, now, "+inf"};
        if (admin_redis_append(db, 4, zcount) < 0) {
            admin_fail("Redis ZCOUNT members: %s", admin_redis_errstr(db));
            goto done;
        }
    }
    rooms = json_array();
    for (size_t i = 0; i + 1 < all->elements; i += 2) {
        redisReply *count =
            admin_redis_check(db, admin_redis_next(db), REDIS_REPLY_INTEGER, "ZCOUNT members");
        if (!count)
            goto done;
        const redisReply *name = all->element[i], *meta_text = all->element[i + 1];
        json_t *meta = json_loadb(meta_text->str, meta_text->len, 0, NULL);
        json_t *topic = json_object_get(meta, "topic");
        json_t *by = json_object_get(meta, "created_by");
        json_t *at = json_object_get(meta, "created_at");
        if (rooms)
            json_array_append_new(
                rooms,
                json_pack("{s:s%, s:s, s:I, s:O?, s:O?}", "name", name->str, name->len, "topic",
                          json_is_string(topic) ? json_string_value(topic) : "", "members",
                          (json_int_t)count->integer, "created_by", json_is_string(by) ? by : NULL,
                          "created_at", json_is_integer(at) ? at : NULL));
        json_decref(meta);
        freeReplyObject(count);
    }
    if (!rooms) {
        admin_fail("out of memory");
        goto done;
    }
    sort_array(rooms, cmp_rooms);
    if (o->json) {
        rv = admin_print_json(json_pack("{s:O}", "rooms", rooms));
        goto done;
    }
    printf("%-32s %7s %s\n", "ROOM", "MEMBERS", "TOPIC");
    size_t i;
    json_t *r;
    json_array_foreach(rooms, i, r) printf("%-32s %7" JSON_INTEGER_FORMAT " %s\n",
                                           json_string_value(json_object_get(r, "name")),
                                           json_integer_value(json_object_get(r, "members")),
                                           json_string_value(json_object_get(r, "topic")));
    printf("%zu room%s\n", json_array_size(rooms), json_array_size(rooms) == 1 ? "" : "s");
    rv = ADMIN_EXIT_OK;

done:
    json_decref(rooms);
    freeReplyObject(all);
    admin_redis_free(db);
    return rv;
}
