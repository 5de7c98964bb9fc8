#ifndef CHAT_ADMIN_H
#define CHAT_ADMIN_H

#include <stdbool.h>
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
    const char *redis_url; /* redis://... */
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

/* Connects, authenticates and selects the db of --redis; NULL after printing
 * why. */
struct redisContext *admin_redis_connect(const struct admin_options *o);
/* r if it is a reply of the expected type, else NULL after printing why
 * (what names the command) and freeing r. */
struct redisReply *admin_redis_check(struct redisContext *rc, struct redisReply *r, int type,
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
