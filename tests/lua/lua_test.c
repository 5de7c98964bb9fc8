#include "lua_test.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "lua_scripts.h"

#define MARKER "--lua-test-marker--"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Asks the kernel for a free loopback port. Another process may take it before
 * redis-server binds it; lua_test_redis_start() retries with a new one then. */
static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(addr);
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

static int ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r = NULL;
    int ok = 0;

    if (c == NULL || c->err)
        goto out;
    r = redisCommand(c, "PING");
    ok = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
out:
    if (r != NULL)
        freeReplyObject(r);
    if (c != NULL)
        redisFree(c);
    return ok;
}

static pid_t spawn(const char *bin, int port, const char *cluster_dir)
{
    char port_str[16], bus_str[16];
    pid_t pid;

    snprintf(port_str, sizeof(port_str), "%d", port);
    /* The cluster bus port would be port + 10000, past 65535 for a high port. */
    snprintf(bus_str, sizeof(bus_str), "%d", free_port());
    pid = fork();
    if (pid != 0)
        return pid;

    /* Child: never outlive the test runner, keep its output quiet. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0)
        dup2(null_fd, STDOUT_FILENO);
    if (cluster_dir != NULL)
        execlp(bin, bin, "--port", port_str, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--daemonize", "no", "--loglevel", "warning", "--cluster-enabled", "yes",
               "--dir", cluster_dir, "--cluster-port", bus_str, (char *)NULL);
    else
        execlp(bin, bin, "--port", port_str, "--bind", "127.0.0.1", "--save", "", "--appendonly",
               "no", "--daemonize", "no", "--loglevel", "warning", (char *)NULL);
    _exit(127);
}

/* A single-node Redis Cluster: the node takes every slot, then answers
 * cluster_state:ok.  It serves every key, but refuses what a real cluster
 * refuses: a script or command whose keys span slots, a script touching a
 * key it did not declare in another slot. */
static int cluster_claim_slots(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r;
    int ok = 0;

    if (c == NULL || c->err)
        goto out;
    r = redisCommand(c, "CLUSTER ADDSLOTSRANGE 0 16383");
    if (r == NULL)
        goto out;
    freeReplyObject(r);
    for (int i = 0; i < 100 && !ok; i++) {
        r = redisCommand(c, "CLUSTER INFO");
        ok = r != NULL && r->type == REDIS_REPLY_STRING &&
             strstr(r->str, "cluster_state:ok") != NULL;
        if (r != NULL)
            freeReplyObject(r);
        if (!ok)
            sleep_ms(50);
    }
out:
    if (c != NULL)
        redisFree(c);
    return ok;
}

int lua_test_redis_start(const char *bin, const char *cluster_dir, pid_t *pid, int *port)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        int p = free_port();
        pid_t child;

        if (p < 0)
            return -1;
        child = spawn(bin, p, cluster_dir);
        if (child < 0)
            return -1;
        /* Up to 5 s for the server to answer, unless it exits (port taken, bad binary). */
        for (int i = 0; i < 100; i++) {
            int status;

            if (waitpid(child, &status, WNOHANG) == child) {
                child = 0;
                break;
            }
            if (ping(p)) {
                if (cluster_dir != NULL && !cluster_claim_slots(p))
                    break;
                *pid = child;
                *port = p;
                return 0;
            }
            sleep_ms(50);
        }
        if (child > 0)
            lua_test_redis_stop(child);
    }
    return -1;
}

void lua_test_redis_stop(pid_t pid)
{
    int status;

    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return;
        sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

redisContext *lua_test_connect(void)
{
    const char *port = getenv("LUA_TEST_REDIS_PORT");
    struct timeval tv = {5, 0};
    redisContext *c;

    ck_assert_ptr_nonnull(port);
    c = redisConnectWithTimeout("127.0.0.1", atoi(port), tv);
    ck_assert_ptr_nonnull(c);
    ck_assert_msg(c->err == 0, "connect: %s", c->errstr);
    /* A reply that never comes fails the test instead of hanging it. */
    ck_assert_int_eq(redisSetTimeout(c, tv), REDIS_OK);
    return c;
}

void lua_test_flush(void)
{
    redisContext *c = lua_test_connect();

    lua_test_expect_str(CMD(c, "FLUSHALL"), "OK");
    redisFree(c);
}

redisReply *lua_test_cmd(redisContext *c, size_t argc, const char *const *argv)
{
    size_t lens[64];
    redisReply *r;

    ck_assert_uint_le(argc, 64);
    for (size_t i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(c, (int)argc, (const char **)argv, lens);
    ck_assert_msg(r != NULL, "%s: %s", argv[0], c->errstr);
    return r;
}

const char *lua_test_script(const char *name)
{
    for (size_t i = 0; i < gw_lua_script_count; i++) {
        if (strcmp(gw_lua_scripts[i].name, name) == 0)
            return gw_lua_scripts[i].source;
    }
    ck_abort_msg("no embedded script %s", name);
    return NULL;
}

/*
 * Prepended to every script the tests run: a local `redis` that shadows the
 * global one for the rest of the chunk and refuses any command on a key the
 * script was not given in KEYS.  A one-node Redis Cluster does not catch that
 * (the node owns every slot, and 7.0 checks only the declared keys), a real
 * one only when the key lands on another node; this catches it every time.
 * A key is the first argument, every argument for the multi-key commands, and
 * none for the commands below that take no key.
 */
static const char strict_keys[] =
    "local redis = (function()\n"
    "  local real, declared = redis, {}\n"
    "  for _, k in ipairs(KEYS) do declared[k] = true end\n"
    "  local nokey = {TIME = true, PUBLISH = true, SPUBLISH = true}\n"
    "  local allkeys = {DEL = true, EXISTS = true, UNLINK = true, MGET = true}\n"
    "  local function check(cmd, ...)\n"
    "    local name, args = string.upper(cmd), {...}\n"
    "    if nokey[name] then return end\n"
    "    local last = allkeys[name] and #args or 1\n"
    "    for i = 1, last do\n"
    "      if not declared[tostring(args[i])] then\n"
    "        error('undeclared key ' .. tostring(args[i]) .. ' in ' .. name)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return setmetatable({\n"
    "    call = function(cmd, ...) check(cmd, ...) return real.call(cmd, ...) end,\n"
    "    pcall = function(cmd, ...) check(cmd, ...) return real.pcall(cmd, ...) end,\n"
    "  }, {__index = real})\n"
    "end)()\n";

redisReply *lua_test_eval(redisContext *c, const char *name, int nkeys, size_t argc,
                          const char *const *argv)
{
    const char *all[64];
    char sha[41];
    char nkeys_str[24];
    const char *script = lua_test_script(name);
    size_t len = sizeof(strict_keys) + strlen(script);
    char *source = malloc(len);

    ck_assert_ptr_nonnull(source);
    snprintf(source, len, "%s%s", strict_keys, script);
    redisReply *r = CMD(c, "SCRIPT", "LOAD", source);
    free(source);

    ck_assert_msg(r->type == REDIS_REPLY_STRING, "SCRIPT LOAD %s: %s", name,
                  r->type == REDIS_REPLY_ERROR ? r->str : "not a string");
    ck_assert_uint_eq(r->len, 40);
    memcpy(sha, r->str, 41);
    freeReplyObject(r);

    ck_assert_uint_le(argc + 3, 64);
    all[0] = "EVALSHA";
    all[1] = sha;
    all[2] = lua_test_itoa(nkeys_str, nkeys);
    for (size_t i = 0; i < argc; i++)
        all[i + 3] = argv[i];
    r = lua_test_cmd(c, argc + 3, all);
    ck_assert_msg(r->type != REDIS_REPLY_ERROR || strstr(r->str, "undeclared key") == NULL,
                  "%s: %s", name, r->str);
    return r;
}

void lua_test_expect_int(redisReply *r, long long want)
{
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "want integer %lld, got type %d %s", want,
                  r->type, r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_int_eq(r->integer, want);
    freeReplyObject(r);
}

void lua_test_expect_str(redisReply *r, const char *want)
{
    ck_assert_msg(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS,
                  "want \"%s\", got type %d %s", want, r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_eq(r->len, strlen(want));
    ck_assert_str_eq(r->str, want);
    freeReplyObject(r);
}

void lua_test_expect_nil(redisReply *r)
{
    ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
}

void lua_test_expect_error(redisReply *r)
{
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

void lua_test_expect_strings(redisReply *r, size_t n, const char *const *want)
{
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "want array, got type %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_eq(r->elements, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_STRING);
        ck_assert_str_eq(r->element[i]->str, want[i]);
    }
    freeReplyObject(r);
}

void lua_test_expect_ints(redisReply *r, size_t n, const long long *want)
{
    ck_assert_msg(r->type == REDIS_REPLY_ARRAY, "want array, got type %d %s", r->type,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    ck_assert_uint_eq(r->elements, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(r->element[i]->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(r->element[i]->integer, want[i]);
    }
    freeReplyObject(r);
}

void lua_test_zadd(redisContext *c, const char *key, long long score, const char *member)
{
    char buf[24];

    lua_test_expect_int(CMD(c, "ZADD", key, lua_test_itoa(buf, score), member), 1);
}

void lua_test_expect_score(redisContext *c, const char *key, const char *member, long long want)
{
    char buf[24];

    lua_test_expect_str(CMD(c, "ZSCORE", key, member), lua_test_itoa(buf, want));
}

void lua_test_expect_ttl(redisContext *c, const char *key, long long min, long long max)
{
    redisReply *r = CMD(c, "TTL", key);

    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    ck_assert_int_ge(r->integer, min);
    ck_assert_int_le(r->integer, max);
    freeReplyObject(r);
}

redisContext *lua_test_subscribe(const char *channel, const char *channel2)
{
    redisContext *sub = lua_test_connect();
    size_t n = channel2 != NULL ? 2 : 1;
    redisReply *r;

    if (channel2 != NULL)
        r = CMD(sub, "SUBSCRIBE", channel, channel2);
    else
        r = CMD(sub, "SUBSCRIBE", channel);
    /* One confirmation per channel; the first came back as the command's reply. */
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
        ck_assert_str_eq(r->element[0]->str, "subscribe");
        freeReplyObject(r);
        r = NULL;
        if (i + 1 < n)
            ck_assert_int_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
    }
    return sub;
}

void lua_test_expect_message(redisContext *sub, const char *channel, const char *payload)
{
    redisReply *r = NULL;

    ck_assert_msg(redisGetReply(sub, (void **)&r) == REDIS_OK, "no message: %s", sub->errstr);
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 3);
    ck_assert_str_eq(r->element[0]->str, "message");
    ck_assert_str_eq(r->element[1]->str, channel);
    ck_assert_uint_eq(r->element[2]->len, strlen(payload));
    ck_assert_str_eq(r->element[2]->str, payload);
    freeReplyObject(r);
}

void lua_test_expect_quiet(redisContext *c, redisContext *sub, const char *channel)
{
    lua_test_expect_int(CMD(c, "PUBLISH", channel, MARKER), 1);
    lua_test_expect_message(sub, channel, MARKER);
}

int64_t lua_test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *lua_test_itoa(char *buf, long long v)
{
    snprintf(buf, 24, "%lld", v);
    return buf;
}
