/*
 * chat-admin's Redis, found as the gateways find it (docs/operations.md):
 * redis:// is that server; redis-sentinel:// is the master the first sentinel
 * that answers names; redis-cluster:// is every master of the cluster, read
 * from the first seed that answers CLUSTER SLOTS, each keyed command sent to
 * the master of its key's slot (gateway/slots.c: CRC16, hash tags, the map).
 *
 * Synchronous hiredis, one connection per master.  Commands are appended
 * (pipelined on their master's connection) and their replies read back in the
 * order they were appended; a MOVED or ASK reply is followed on a connection
 * of its own, so that the replies still queued on the pipelined connections
 * stay in order.
 */
#include "admin.h"
#include "config.h"
#include "slots.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* As the gateway: a command is redirected at most this often. */
#define ADMIN_REDIRECT_HOPS 5
#define ADMIN_HOST_MAX 256

struct link {
    char host[ADMIN_HOST_MAX];
    int port;
    redisContext *rc;
    size_t pending; /* appended commands whose replies are not read yet */
};

/* An appended command whose reply is not read yet; cmd is kept to send it
 * again where a redirection points. */
struct pending {
    size_t link;
    char *cmd;
    size_t len;
};

struct admin_redis {
    const struct admin_options *o;
    struct chat_redis_url url;
    struct gw_slots *map; /* redis-cluster:// only */
    struct link *links;   /* [0]: the server, the master, or the seed that answered */
    size_t nlinks;
    struct pending *queue;
    size_t head, tail, cap;
    bool flushed; /* every appended command has been written */
    char err[320];
};

static void set_err(struct admin_redis *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_err(struct admin_redis *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->err, sizeof(db->err), fmt, ap);
    va_end(ap);
}

/* A connection to host:port, authenticated (auth false: a sentinel, which
 * the URL's credentials are not for) and on the URL's database; NULL with
 * db->err set. */
static redisContext *dial(struct admin_redis *db, const char *host, int port, bool auth)
{
    const struct chat_redis_url *u = &db->url;
    struct timeval tv = {db->o->timeout_ms / 1000, (db->o->timeout_ms % 1000) * 1000};
    redisReply *r = NULL;
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    if (!rc || rc->err) {
        set_err(db, "cannot connect to Redis at %s:%d: %s", host, port,
                rc ? rc->errstr : "out of memory");
        goto fail;
    }
    redisSetTimeout(rc, tv);
    if (auth && u->password) {
        if (u->user)
            r = redisCommand(rc, "AUTH %s %s", u->user, u->password);
        else
            r = redisCommand(rc, "AUTH %s", u->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            set_err(db, "Redis at %s:%d refused the credentials: %s", host, port,
                    r ? r->str : rc->errstr);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (auth && u->db != 0) {
        r = redisCommand(rc, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            set_err(db, "Redis SELECT %d: %s", u->db, r ? r->str : rc->errstr);
            goto fail;
        }
        freeReplyObject(r);
    }
    return rc;

fail:
    freeReplyObject(r);
    if (rc)
        redisFree(rc);
    return NULL;
}

/* The index of the connection to host:port, opened when there is none; -1
 * with db->err set. */
static int link_get(struct admin_redis *db, const char *host, int port)
{
    for (size_t i = 0; i < db->nlinks; i++) {
        if (db->links[i].port == port && strcmp(db->links[i].host, host) == 0)
            return (int)i;
    }
    if (strlen(host) >= ADMIN_HOST_MAX) {
        set_err(db, "Redis host name too long: %.64s...", host);
        return -1;
    }
    struct link *grown = realloc(db->links, (db->nlinks + 1) * sizeof(*grown));
    if (!grown) {
        set_err(db, "out of memory");
        return -1;
    }
    db->links = grown;
    redisContext *rc = dial(db, host, port, true);
    if (!rc)
        return -1;
    struct link *l = &db->links[db->nlinks];
    snprintf(l->host, sizeof(l->host), "%s", host);
    l->port = port;
    l->rc = rc;
    l->pending = 0;
    return (int)db->nlinks++;
}

/* Reads the slot map from host:port; 0 or -1 (db->err set).  A MOVED read
 * amid a pipeline must not wait behind the replies still queued on that
 * node's connection, nor take one of them: a busy connection is not used. */
static int load_map_from(struct admin_redis *db, const char *host, int port)
{
    redisContext *own = NULL, *rc = NULL;
    for (size_t i = 0; i < db->nlinks && !rc; i++) {
        if (db->links[i].port == port && strcmp(db->links[i].host, host) == 0 &&
            db->links[i].pending == 0)
            rc = db->links[i].rc;
    }
    if (!rc) {
        int l = db->head == db->tail ? link_get(db, host, port) : -1;
        rc = l >= 0 ? db->links[l].rc : (own = dial(db, host, port, true));
    }
    if (!rc)
        return -1;
    redisReply *r = redisCommand(rc, "CLUSTER SLOTS");
    int rv = -1;
    if (!r)
        set_err(db, "Redis at %s:%d: CLUSTER SLOTS: %s", host, port, rc->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        set_err(db, "Redis at %s:%d is not a cluster node (redis-cluster://): %s", host, port,
                r->str);
    else if (gw_slots_load(db->map, r, host) != 0)
        set_err(db,
                "the Redis Cluster of %s:%d does not serve every hash slot (cluster down or "
                "not yet created?)",
                host, port);
    else
        rv = 0;
    freeReplyObject(r);
    if (own)
        redisFree(own);
    return rv;
}

/* The slot map, from the seeds of the URL in turn, then from the masters of
 * the map known so far; 0 or -1 (db->err says why the last one failed). */
static int load_map(struct admin_redis *db)
{
    const struct chat_redis_url *u = &db->url;
    for (size_t i = 0; i < u->nseeds; i++) {
        if (load_map_from(db, u->seeds[i].host, u->seeds[i].port) == 0)
            return 0;
    }
    /* The map's addresses are copied: a load that works replaces them. */
    size_t n = gw_slots_count(db->map);
    for (size_t i = 0; i < n && i < gw_slots_count(db->map); i++) {
        char host[ADMIN_HOST_MAX];
        snprintf(host, sizeof(host), "%s", gw_slots_host(db->map, i));
        if (load_map_from(db, host, gw_slots_port(db->map, i)) == 0)
            return 0;
    }
    return -1;
}

/* The master the sentinels name, as link 0; 0 or -1 (db->err set). */
static int find_master(struct admin_redis *db)
{
    const struct chat_redis_url *u = &db->url;
    for (size_t i = 0; i < u->nseeds; i++) {
        const struct chat_redis_seed *s = &u->seeds[i];
        redisContext *rc = dial(db, s->host, s->port, false);
        if (!rc)
            continue;
        char host[ADMIN_HOST_MAX] = "";
        int port = 0;
        redisReply *r = redisCommand(rc, "SENTINEL get-master-addr-by-name %s", u->master_name);
        if (!r)
            set_err(db, "sentinel %s:%d: %s", s->host, s->port, rc->errstr);
        else if (r->type == REDIS_REPLY_ERROR)
            set_err(db, "sentinel %s:%d: %s", s->host, s->port, r->str);
        else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                 r->element[0]->type != REDIS_REPLY_STRING ||
                 r->element[1]->type != REDIS_REPLY_STRING)
            set_err(db, "sentinel %s:%d knows no master named %s", s->host, s->port,
                    u->master_name);
        else if (r->element[0]->len < sizeof(host)) {
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            port = atoi(r->element[1]->str);
        }
        freeReplyObject(r);
        redisFree(rc);
        if (!host[0] || link_get(db, host, port) != 0)
            continue;
        /* Mid-failover a sentinel may still name the old master, now a replica:
         * a write there would be refused (READONLY), so say so plainly. */
        r = redisCommand(db->links[0].rc, "ROLE");
        bool master = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                      r->element[0]->type == REDIS_REPLY_STRING &&
                      strcmp(r->element[0]->str, "master") == 0;
        freeReplyObject(r);
        if (master)
            return 0;
        set_err(db,
                "sentinel %s:%d names %s:%d as master %s, but it is not a master (failover "
                "in progress?); try again",
                s->host, s->port, host, port, u->master_name);
        redisFree(db->links[0].rc);
        db->nlinks = 0;
    }
    return -1;
}

struct admin_redis *admin_redis_open(const struct admin_options *o)
{
    char why[160];
    struct admin_redis *db = calloc(1, sizeof(*db));
    if (!db) {
        admin_fail("out of memory");
        return NULL;
    }
    db->o = o;
    if (chat_redis_url_parse(o->redis_url, &db->url, why, sizeof(why)) < 0) {
        admin_fail("--redis: %s", why);
        free(db);
        return NULL;
    }
    int rv;
    if (db->url.cluster) {
        db->map = gw_slots_new();
        rv = db->map ? load_map(db) : -1;
        if (rv < 0 && !db->map)
            set_err(db, "out of memory");
        else if (rv < 0 && db->url.nseeds > 1) {
            char last[sizeof(db->err)];
            memcpy(last, db->err, sizeof(last));
            set_err(db, "%s (tried every seed)", last);
        }
    } else if (db->url.sentinel) {
        rv = find_master(db);
    } else {
        rv = link_get(db, db->url.host, db->url.port);
    }
    if (rv < 0) {
        admin_fail("%s", db->err);
        admin_redis_free(db);
        return NULL;
    }
    return db;
}

void admin_redis_free(struct admin_redis *db)
{
    if (!db)
        return;
    for (size_t i = db->head; i < db->tail; i++)
        free(db->queue[i].cmd);
    free(db->queue);
    for (size_t i = 0; i < db->nlinks; i++)
        redisFree(db->links[i].rc);
    free(db->links);
    gw_slots_free(db->map);
    chat_redis_url_deinit(&db->url);
    free(db);
}

bool admin_redis_is_cluster(const struct admin_redis *db)
{
    return db->map != NULL;
}

const char *admin_redis_errstr(const struct admin_redis *db)
{
    return db->err[0] ? db->err : "no reply";
}

/* The link serving slot (GW_SLOTS_ANY: link 0); -1 with db->err set. */
static int link_for_slot(struct admin_redis *db, int slot)
{
    if (!db->map || slot == GW_SLOTS_ANY)
        return 0;
    int owner = gw_slots_owner(db->map, (unsigned)slot);
    if (owner < 0) {
        set_err(db, "no Redis Cluster master serves slot %d", slot);
        return -1;
    }
    return link_get(db, gw_slots_host(db->map, (size_t)owner),
                    gw_slots_port(db->map, (size_t)owner));
}

redisContext *admin_redis_node(struct admin_redis *db, const char *key)
{
    int slot = db->map ? (int)gw_slots_keyslot(key, strlen(key)) : GW_SLOTS_ANY;
    int l = link_for_slot(db, slot);
    return l < 0 ? NULL : db->links[l].rc;
}

bool admin_redis_same_slot(const struct admin_redis *db, const char *a, const char *b)
{
    return !db->map || gw_slots_keyslot(a, strlen(a)) == gw_slots_keyslot(b, strlen(b));
}

size_t admin_redis_masters(const struct admin_redis *db)
{
    return db->map ? gw_slots_count(db->map) : 1;
}

redisContext *admin_redis_master(struct admin_redis *db, size_t i)
{
    if (!db->map)
        return i == 0 ? db->links[0].rc : NULL;
    if (i >= gw_slots_count(db->map))
        return NULL;
    int l = link_get(db, gw_slots_host(db->map, i), gw_slots_port(db->map, i));
    return l < 0 ? NULL : db->links[l].rc;
}

int admin_redis_master_addr(const struct admin_redis *db, size_t i, char *buf, size_t len)
{
    if (!db->map)
        return snprintf(buf, len, "%s:%d", db->links[0].host, db->links[0].port);
    return snprintf(buf, len, "%s:%d", gw_slots_host(db->map, i), gw_slots_port(db->map, i));
}

bool admin_redis_redirected(struct admin_redis *db, const redisReply *r)
{
    char host[ADMIN_HOST_MAX];
    bool ask;
    unsigned slot;
    int port;
    if (!db->map || !r || r->type != REDIS_REPLY_ERROR ||
        !gw_slots_parse_redirect(r->str, &ask, &slot, host, sizeof(host), &port))
        return false;
    /* An ASK is a slot on its way: the map is right until it has moved. */
    if (!ask)
        load_map(db);
    return true;
}

redisReply *admin_redis_raw(struct admin_redis *db, redisContext *rc, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    if (!r)
        set_err(db, "%s", rc->errstr);
    return r;
}

int admin_redis_append(struct admin_redis *db, int argc, const char **argv)
{
    int slot = db->map ? gw_slots_command_slot(argc, argv, NULL) : GW_SLOTS_ANY;
    if (slot == GW_SLOTS_CROSS) {
        set_err(db, "its keys are in different hash slots");
        return -1;
    }
    int l = link_for_slot(db, slot);
    if (l < 0)
        return -1;
    if (db->tail == db->cap) {
        size_t cap = db->cap ? db->cap * 2 : 64;
        struct pending *q = realloc(db->queue, cap * sizeof(*q));
        if (!q) {
            set_err(db, "out of memory");
            return -1;
        }
        db->queue = q;
        db->cap = cap;
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0 || redisAppendFormattedCommand(db->links[l].rc, cmd, (size_t)len) != REDIS_OK) {
        free(cmd);
        set_err(db, "%s", len < 0 ? "out of memory" : db->links[l].rc->errstr);
        return -1;
    }
    db->queue[db->tail++] = (struct pending){.link = (size_t)l, .cmd = cmd, .len = (size_t)len};
    db->links[l].pending++;
    db->flushed = false;
    return 0;
}

/* Sends cmd once on a connection of its own to host:port, after ASKING when
 * ask; the reply, or NULL with db->err set. */
static redisReply *send_once(struct admin_redis *db, const char *host, int port, bool ask,
                             const struct pending *p)
{
    redisContext *rc = dial(db, host, port, true);
    void *r = NULL;
    if (!rc)
        return NULL;
    if (ask)
        redisAppendCommand(rc, "ASKING");
    redisAppendFormattedCommand(rc, p->cmd, p->len);
    if (ask) {
        if (redisGetReply(rc, &r) == REDIS_OK)
            freeReplyObject(r);
        r = NULL;
    }
    if (redisGetReply(rc, &r) != REDIS_OK) {
        set_err(db, "Redis at %s:%d: %s", host, port, rc->errstr);
        r = NULL;
    }
    redisFree(rc);
    return r;
}

/* Writes what every connection has buffered, so that the masters work on
 * their parts at once rather than one after the other. */
static void flush_all(struct admin_redis *db)
{
    for (size_t i = 0; i < db->nlinks; i++) {
        int done = 0;
        while (!done && redisBufferWrite(db->links[i].rc, &done) == REDIS_OK)
            ;
    }
    db->flushed = true;
}

redisReply *admin_redis_next(struct admin_redis *db)
{
    if (db->head == db->tail) {
        set_err(db, "no command pending");
        return NULL;
    }
    if (!db->flushed)
        flush_all(db);
    struct pending p = db->queue[db->head++];
    if (db->head == db->tail)
        db->head = db->tail = 0;
    struct link *l = &db->links[p.link];
    l->pending--;
    void *got = NULL;
    redisReply *r = NULL;
    if (redisGetReply(l->rc, &got) != REDIS_OK)
        set_err(db, "Redis at %s:%d: %s", l->host, l->port, l->rc->errstr);
    else
        r = got;
    char host[ADMIN_HOST_MAX];
    bool ask;
    unsigned slot;
    int port;
    for (int hop = 0; db->map && r && r->type == REDIS_REPLY_ERROR && hop < ADMIN_REDIRECT_HOPS &&
                      gw_slots_parse_redirect(r->str, &ask, &slot, host, sizeof(host), &port);
         hop++) {
        if (!ask)
            load_map(db);
        freeReplyObject(r);
        r = send_once(db, host, port, ask, &p);
    }
    free(p.cmd);
    return r;
}

redisReply *admin_redis_command(struct admin_redis *db, int argc, const char **argv)
{
    return admin_redis_append(db, argc, argv) == 0 ? admin_redis_next(db) : NULL;
}

redisReply *admin_redis_check(struct admin_redis *db, redisReply *r, int type, const char *what)
{
    if (!r) {
        admin_fail("Redis %s: %s", what, admin_redis_errstr(db));
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        admin_fail("Redis %s: %s", what, r->str);
    } else if (r->type != type) {
        admin_fail("Redis %s: unexpected reply type %d", what, r->type);
    } else {
        return r;
    }
    freeReplyObject(r);
    return NULL;
}

long long admin_redis_listeners(struct admin_redis *db, const char *channel, long long published)
{
    if (!db->map)
        return published;
    /* A cluster's PUBLISH counts the subscribers of the node it ran on only,
     * and each gateway subscribes through one node of its own choosing. */
    long long sum = 0;
    for (size_t i = 0; i < gw_slots_count(db->map); i++) {
        redisContext *rc = admin_redis_master(db, i);
        const char *argv[] = {"PUBSUB", "NUMSUB", channel};
        redisReply *r = rc ? admin_redis_raw(db, rc, 3, argv) : NULL;
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[1]->type == REDIS_REPLY_INTEGER)
            sum += r->element[1]->integer;
        freeReplyObject(r);
    }
    return sum > published ? sum : published;
}
