/*
 * Helpers for the Lua script tests: a redis-server of our own on a free loopback port, and
 * thin Check-asserting wrappers around hiredis's synchronous API.
 *
 * The runner starts the server and publishes its port in the LUA_TEST_REDIS_PORT
 * environment variable, which the (forked) tests read.
 */
#ifndef LUA_TEST_H
#define LUA_TEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

struct redisContext;
struct redisReply;

/* Builds the argv arrays of the macros below from string literals or char pointers. */
#define LUA_TEST_ARGV(...) ((const char *const[]){__VA_ARGS__})
#define LUA_TEST_ARGC(...) (sizeof(LUA_TEST_ARGV(__VA_ARGS__)) / sizeof(const char *))

/* CMD(c, "GET", key): one command; the reply belongs to the caller. */
#define CMD(c, ...) lua_test_cmd((c), LUA_TEST_ARGC(__VA_ARGS__), LUA_TEST_ARGV(__VA_ARGS__))
/* EVAL(c, "post", 3, k1, k2, k3, a1, ...): SCRIPT LOAD the embedded script, then EVALSHA. */
#define EVAL(c, name, nkeys, ...)                                                                  \
    lua_test_eval((c), (name), (nkeys), LUA_TEST_ARGC(__VA_ARGS__), LUA_TEST_ARGV(__VA_ARGS__))

/* Starts `bin` (redis-server) on a free 127.0.0.1 port without persistence and waits until it
 * answers PING. With cluster_dir (its nodes.conf goes there) it is a Redis Cluster of one
 * node owning every slot, which refuses cross-slot access as a real cluster does. Returns 0
 * with *pid and *port set, or -1. The server gets SIGTERM if this process dies first
 * (PR_SET_PDEATHSIG). */
int lua_test_redis_start(const char *bin, const char *cluster_dir, pid_t *pid, int *port);
/* SIGTERM to pid, then SIGKILL if it has not exited within 5 s; reaps it. */
void lua_test_redis_stop(pid_t pid);

/* A connection to the test server (asserts); free it with redisFree(). */
struct redisContext *lua_test_connect(void);
/* Checked fixture: FLUSHALL, so every test starts from an empty database. */
void lua_test_flush(void);
/* Runs one command (asserts that there is a reply; it may be an error reply). */
struct redisReply *lua_test_cmd(struct redisContext *c, size_t argc, const char *const *argv);
/* Runs the embedded script `name` with nkeys keys followed by its arguments. */
struct redisReply *lua_test_eval(struct redisContext *c, const char *name, int nkeys, size_t argc,
                                 const char *const *argv);
/* The embedded source of `name` (asserts that it exists). */
const char *lua_test_script(const char *name);

/* Asserts the reply type and value, then frees the reply. */
void lua_test_expect_int(struct redisReply *r, long long want);
void lua_test_expect_str(struct redisReply *r, const char *want);
void lua_test_expect_nil(struct redisReply *r);
void lua_test_expect_error(struct redisReply *r);

/* Asserts an array reply of exactly these n strings, then frees it. */
void lua_test_expect_strings(struct redisReply *r, size_t n, const char *const *want);
/* Asserts an array reply of exactly these n integers, then frees it. */
void lua_test_expect_ints(struct redisReply *r, size_t n, const long long *want);
/* EXPECT_INTS(reply, 1, 2): the same with the integers inline. */
#define EXPECT_INTS(r, ...)                                                                        \
    lua_test_expect_ints((r), sizeof((const long long[]){__VA_ARGS__}) / sizeof(long long),        \
                         (const long long[]){__VA_ARGS__})
/* ZADD key score member, asserting that the member was new. */
void lua_test_zadd(struct redisContext *c, const char *key, long long score, const char *member);
/* Asserts ZSCORE key member == want. */
void lua_test_expect_score(struct redisContext *c, const char *key, const char *member,
                           long long want);
/* Asserts min <= TTL key <= max (seconds). */
void lua_test_expect_ttl(struct redisContext *c, const char *key, long long min, long long max);

/* A second connection subscribed to `channel` (and `channel2` unless NULL). */
struct redisContext *lua_test_subscribe(const char *channel, const char *channel2);
/* Asserts that the next message the subscriber receives is `payload` on `channel`. */
void lua_test_expect_message(struct redisContext *sub, const char *channel, const char *payload);
/* Asserts that nothing was published on `channel` since the last message read: publishes a
 * marker through c and checks that it is the next thing the subscriber gets there. */
void lua_test_expect_quiet(struct redisContext *c, struct redisContext *sub, const char *channel);

/* Wall-clock milliseconds, the same clock as Redis's TIME. */
int64_t lua_test_now_ms(void);
/* Formats an integer into buf (at least 24 bytes) and returns buf. */
const char *lua_test_itoa(char *buf, long long v);

TCase *embed_tcase(void);
TCase *post_tcase(void);
TCase *presence_tcase(void);
TCase *catalog_tcase(void);
TCase *marks_tcase(void);
TCase *keyslot_tcase(void);

#endif /* LUA_TEST_H */
