#ifndef CHAT_ADMIN_H
#define CHAT_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_t;
struct redisContext;
struct redisReply;

/*
 * chat-admin: operator commands.  token and broadcast speak for an identity
 * made from the shared JWT secret; online, nodes and rooms only read the
 * Redis keys the gateways write (PROTOCOL.md section 5); kick, delete-room
 * and purge change Redis and tell every gateway on the control channel
 * (docs/protocol.md).
 */

#define ADMIN_EXIT_OK 0
#define ADMIN_EXIT_FAIL 1  /* the command ran and failed: unreachable, refused ... */
#define ADMIN_EXIT_USAGE 2 /* bad command line */

#define ADMIN_DEFAULT_URL "ws://127.0.0.1:8080/ws"
#define ADMIN_DEFAULT_REDIS "redis://127.0.0.1:6379/0"
#define ADMIN_DEFAULT_PREFIX "chat:"
#define ADMIN_DEFAULT_ID "chat-admin"
#define ADMIN_DEFAULT_TTL 3600
#define ADMIN_BROADCAST_TTL 300

/* Everything borrowed from argv or the environment. */
struct admin_options {
    const char *text;      /* broadcast: the text; kick: the user; delete-room, purge: the room */
    const char *url;       /* gateway WebSocket URL */
    const char *redis_url; /* redis://, redis-cluster:// or redis-sentinel://... */
    const char *prefix;    /* Redis key prefix */
    const char *secret;    /* JWT secret */
    const char *user_id;   /* token: required; broadcast: ADMIN_DEFAULT_ID */
    const char *name;      /* token: required; broadcast: ADMIN_DEFAULT_ID */
    const char *avatar;    /* NULL: none */
    bool admin;            /* token: role admin */
    bool json;             /* machine-readable output */
    int64_t ttl;           /* seconds */
    int timeout_ms;        /* whole network exchange */
};

/* Each prints its result to stdout (JSON with --json), its errors to stderr
 * prefixed "chat-admin: ", and returns an ADMIN_EXIT_* code. */
int admin_cmd_token(const struct admin_options *o);
int admin_cmd_broadcast(const struct admin_options *o);
int admin_cmd_online(const struct admin_options *o);
int admin_cmd_nodes(const struct admin_options *o);
int admin_cmd_rooms(const struct admin_options *o);
int admin_cmd_kick(const struct admin_options *o);
int admin_cmd_delete_room(const struct admin_options *o);
int admin_cmd_purge(const struct admin_options *o);

/* ---- Redis, shared by the commands that use it (cmd_redis.c) ---- */

#define ADMIN_KEY_MAX 512

/*
 * The Redis of --redis (redis.c), as the gateways find it: redis://, the
 * master redis-sentinel:// names, or the masters of a redis-cluster://.
 * Errors are printed by admin_redis_open and admin_redis_check; the others
 * leave why in admin_redis_errstr.
 */
struct admin_redis;

/* Connects (and authenticates, selects the db, asks the sentinels, reads
 * the cluster's slot map); NULL after printing why. */
struct admin_redis *admin_redis_open(const struct admin_options *o);
/* NULL is a no-op. */
void admin_redis_free(struct admin_redis *db);
bool admin_redis_is_cluster(const struct admin_redis *db);
/* Why the last call failed. */
const char *admin_redis_errstr(const struct admin_redis *db);

/* Queues a command (argv borrowed) on the master of its key (gateway/slots.c
 * knows which argument is the key; keyless commands such as PUBLISH go to any
 * node); 0 or -1.  Replies come back with admin_redis_next in the order the
 * commands were appended, MOVED and ASK followed.  Between the first append
 * and the last next, only these two may be used on db. */
int admin_redis_append(struct admin_redis *db, int argc, const char **argv);
/* The reply (the caller frees it), or NULL when the connection failed. */
struct redisReply *admin_redis_next(struct admin_redis *db);
/* append, then next. */
struct redisReply *admin_redis_command(struct admin_redis *db, int argc, const char **argv);

/* The connection (borrowed) to the master of key's slot, for what must stay
 * on one connection (WATCH, MULTI ... EXEC); NULL when it cannot be opened. */
struct redisContext *admin_redis_node(struct admin_redis *db, const char *key);
/* Whether keys a and b may share a transaction: always on one server, on a
 * cluster when they hash to one slot. */
bool admin_redis_same_slot(const struct admin_redis *db, const char *a, const char *b);
/* One command on rc (one of db's connections); NULL with admin_redis_errstr
 * set when the connection failed. */
struct redisReply *admin_redis_raw(struct admin_redis *db, struct redisContext *rc, int argc,
                                   const char **argv);
/* True when r is a MOVED or ASK redirection (the slot map is read again
 * after a MOVED): the caller starts its transaction over. */
bool admin_redis_redirected(struct admin_redis *db, const struct redisReply *r);

/* The masters, for what every one of them must answer (SCAN): 1 for one
 * server; each one's connection (borrowed; NULL when it cannot be opened) and
 * its host:port. */
size_t admin_redis_masters(const struct admin_redis *db);
struct redisContext *admin_redis_master(struct admin_redis *db, size_t i);
int admin_redis_master_addr(const struct admin_redis *db, size_t i, char *buf, size_t len);

/* How many subscribers a PUBLISH on channel that answered published
 * reached: published itself, except on a cluster, where PUBLISH counts one
 * node's subscribers while the message reaches every node's: there, the sum
 * of PUBSUB NUMSUB over the masters (a subscriber on a replica is not
 * counted).  Best effort: a master that does not answer counts 0. */
long long admin_redis_listeners(struct admin_redis *db, const char *channel, long long published);

/* r if it is a reply of the expected type, else NULL after printing why
 * (what names the command) and freeing r; a NULL r is a failed connection. */
struct redisReply *admin_redis_check(struct admin_redis *db, struct redisReply *r, int type,
                                     const char *what);
/* prefix + head + name + tail into buf (ADMIN_KEY_MAX bytes), as
 * gateway/keys.c builds its keys. */
void admin_key(char *buf, const char *prefix, const char *head, const char *name, const char *tail);

/* "chat-admin: " + the message + newline on stderr; returns ADMIN_EXIT_FAIL. */
int admin_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds since the epoch. */
int64_t admin_now_ms(void);

/* Prints j (taken) as one line of compact JSON on stdout; ADMIN_EXIT_OK, or
 * ADMIN_EXIT_FAIL when it could not be built. */
int admin_print_json(struct json_t *j);

#endif
