#ifndef CHAT_TESTS_CHAT_H
#define CHAT_TESTS_CHAT_H

/*
 * Chat-over-Redis suites (issue 3): a real redis-server and three real
 * gateways on loopback, driven through the integration harness
 * (tests/integration/harness.h).  ct_ helpers are what that harness lacks:
 * users, request/reply by id, frame accounting across many clients, a
 * synchronous Redis connection and a Redis that can be stopped and restarted
 * on the same port.
 */
#include "harness.h"

#include <check.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>

TCase *delivery_tcase(void);
TCase *private_tcase(void);
TCase *failure_tcase(void);
TCase *load_tcase(void);
TCase *errors_tcase(void);
TCase *layout_tcase(void);
TCase *marks_tcase(void);
/* Several masters only (CHAT_TEST_REDIS_CLUSTER=3): a live reshard under traffic. */
TCase *reshard_tcase(void);
/* Several masters only: room and user channels are sharded (SSUBSCRIBE on
 * their slot's master, and nowhere else). */
TCase *shard_tcase(void);
/* --durability replica against one Redis with a replica. */
TCase *durability_tcase(void);
/* Six nodes only (CHAT_TEST_REDIS_CLUSTER=6): acked messages lost to a master's kill -9. */
TCase *failover_tcase(void);
/* One master, a replica and a sentinel: --redis redis-sentinel:// through a failover. */
TCase *sentinel_tcase(void);
TCase *sentinel_load_tcase(void);

/* Generous: the sanitizer build of the gateway is several times slower. */
#define CT_WAIT_MS 8000

struct ct_user {
    char nick[33];
    char *token; /* malloc'd */
    char *id;    /* malloc'd */
};

/* The cluster of the running test: ct_setup clears it and arms a watchdog,
 * ct_teardown is ct_cluster_stop on it (Check fixtures). */
struct h_cluster *ct_fixture(void);
void ct_setup(void);
void ct_teardown(void);

/* h_cluster_init plus n gateways started with the same extra args (NULL-
 * terminated, may be NULL); asserts on failure. */
void ct_cluster_start(struct h_cluster *cl, int n, const char *const *extra);
/* Stops the gateways (asserting no sanitizer report in their logs), then
 * h_cluster_stop; with CT_KEEP set in the environment the logs stay. */
void ct_cluster_stop(struct h_cluster *cl);

/* Logs in through gateway gw; asserts 200. */
void ct_login(struct h_cluster *cl, int gw, const char *nick, struct ct_user *u);
void ct_user_free(struct ct_user *u);
/* Connects u (Bearer token) to gateway gw and consumes the welcome. */
struct tc *ct_connect(struct h_cluster *cl, int gw, const struct ct_user *u);

/* n users named <prefix>0 ... <prefix>(n-1): user i logs in and connects at
 * gateway i % cl->n_gw, and joins room when it is not NULL. */
void ct_team(struct h_cluster *cl, const char *prefix, int n, const char *room, struct ct_user *u,
             struct tc **t);
void ct_team_free(int n, struct ct_user *u, struct tc **t);

/* Sends a frame built like printf; asserts it was queued. */
void ct_send(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes and returns the first reply carrying request id `id` (any type
 * except the `message`/`private` events, which carry the sender's id too),
 * waiting up to timeout_ms; NULL on timeout. */
json_t *ct_reply(struct tc *t, const char *id, int timeout_ms);
/* ct_reply and asserts its type; returns it (new reference). */
json_t *ct_expect(struct tc *t, const char *id, const char *type);
/* Asserts an `error` reply to id with the given code. */
void ct_expect_error(struct tc *t, const char *id, const char *code);
/* Joins room (since < 0: without since); returns the `joined` reply. */
json_t *ct_join(struct tc *t, const char *room, long long since);
/* Sends a text message with request id `id` and returns the ack's seq. */
long long ct_post(struct tc *t, const char *room, const char *id, const char *body);
/* Sends the frame (printf-style) until its reply to id has type `type`,
 * resending it after each `unavailable` (the same id: idempotent), for
 * requests made while Redis fails over.  Returns that reply (new reference),
 * or NULL after timeout_ms. */
json_t *ct_request_until(struct tc *t, const char *id, const char *type, int timeout_ms,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Resends the same message (same id: idempotent) until it is acked; for
 * requests that get `unavailable` while Redis fails over.  Returns the seq,
 * or -1 after timeout_ms. */
long long ct_post_until_acked(struct tc *t, const char *room, const char *id, const char *body,
                              int timeout_ms);

/* Queued frames of `type` (and `room`, when not NULL); ct_take removes them
 * and returns them in arrival order (new array). */
size_t ct_count(struct tc *t, const char *type, const char *room);
json_t *ct_take(struct tc *t, const char *type, const char *room);
/* Runs the loop until every one of the n clients has at least `want` such
 * frames queued; false on timeout. */
bool ct_wait_count(struct tc **ts, size_t n, const char *type, const char *room, size_t want,
                   int timeout_ms);
/* Runs the loop for ms and returns how many such frames arrived meanwhile
 * (they stay queued). */
size_t ct_settle_count(struct tc *t, const char *type, const char *room, int ms);
/* Asserts that msgs (array of message objects) has seqs first, first+1 ...
 * first+n-1 exactly. */
void ct_assert_seqs(json_t *msgs, long long first, size_t n, const char *what);
/* The id of a user object or of a bare id string. */
const char *ct_user_id(json_t *user);

/* A synchronous connection to the test Redis; asserts. */
redisContext *ct_redis(const struct h_cluster *cl);
/* Integer reply of a command, or -1. */
/* A command on rc, or, when rc's node answers MOVED (several masters), on the node
 * that owns the key; NULL on failure.  The reply is the caller's. */
redisReply *ct_redis_cmd(redisContext *rc, const char *fmt, ...);
redisReply *ct_redis_vcmd(redisContext *rc, const char *fmt, va_list ap);
long long ct_redis_int(redisContext *rc, const char *fmt, ...);

/* CLIENT KILL TYPE pubsub on every Redis node (on several masters a
 * gateway's sharded subscriptions are on the masters of their channels); how
 * many it killed. */
long long ct_kill_pubsub(const struct h_cluster *cl);
/* A synchronous connection to the Redis node at port (5 s timeouts); asserts. */
redisContext *ct_redis_at(int port);
/* The port of the master that serves key's slot, per CLUSTER SLOTS of the
 * node at any_port; asserts there is one. */
int ct_slot_owner(int any_port, const char *key);
/* PUBSUB SHARDNUMSUB channel on the node at port: its sharded subscribers there. */
long long ct_shard_subscribers(int port, const char *channel);

/* Replaces the harness's Redis with one on the same port that persists
 * every write (appendonly, appendfsync always, in the cluster dir); call
 * before adding gateways. */
void ct_redis_persistent(struct h_cluster *cl);
/* Kills Redis with SIGKILL by PID and reaps it. */
void ct_redis_kill(struct h_cluster *cl);
/* Starts Redis again on the same port with the same persistence; asserts it
 * answers PING within 10 s. */
void ct_redis_start(struct h_cluster *cl);

/* GET /healthz of gateway gw: the status, or -1. */
int ct_healthz(const struct h_cluster *cl, int gw);
/* Polls /healthz of every gateway until all answer `status`; false on
 * timeout. */
bool ct_wait_healthz(struct h_cluster *cl, int status, int timeout_ms);

long long ct_json_int(json_t *obj, const char *key);
const char *ct_json_str(json_t *obj, const char *key);

/* SENTINEL <sub> chatmaster at the sentinel on port: a status reply equal to
 * want, or an address reply whose port is want. */
bool ct_sentinel_says(int port, const char *sub, const char *want);
/* Whether that sentinel sees the replica as a healthy candidate (flags
 * exactly "slave", its link to the master "ok"): before that, a failover
 * aborts. */
bool ct_sentinel_replica_ready(int port);

#endif
