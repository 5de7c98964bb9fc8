/*
 * Helpers of the chat suites; see chat_tests.h.
 */
/* vasprintf() */
#define _GNU_SOURCE
#include "chat_tests.h"

#include "chat_client.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each test runs in its own forked process (CK_FORK), so one cluster per
 * process is all there ever is. */
static struct h_cluster fixture;

struct h_cluster *ct_fixture(void)
{
    return &fixture;
}

void ct_setup(void)
{
    memset(&fixture, 0, sizeof(fixture));
    /* longer than any tcase timeout: only for runs with CK_FORK=no */
    h_watchdog(200);
}

void ct_teardown(void)
{
    ct_cluster_stop(&fixture);
}

void ct_cluster_start(struct h_cluster *cl, int n, const char *const *extra)
{
    ck_assert_int_eq(h_cluster_init(cl), 0);
    /* a failed test skips its teardown: its logs stay in this dir */
    fprintf(stderr, "%s: logs in %s\n", tcase_name(), cl->dir);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(h_cluster_add_gateway(cl, extra), i);
}

/* Prints the sanitizer reports in a gateway log; true when there was one. */
static bool sanitizer_report(const struct h_proc *p)
{
    char line[1024];
    bool found = false, in_report = false;
    FILE *f = fopen(p->log_path, "r");

    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") ||
            strstr(line, "runtime error:")) {
            if (!found)
                fprintf(stderr, "---- sanitizer report in %s ----\n", p->log_path);
            found = in_report = true;
        }
        if (in_report)
            fputs(line, stderr);
    }
    fclose(f);
    return found;
}

void ct_cluster_stop(struct h_cluster *cl)
{
    bool bad = false;

    /* Gateways first, by PID, so their exit status and sanitizer reports
     * (written at exit) can be checked before the logs go away. */
    for (int i = 0; i < cl->n_gw; i++) {
        int status;

        if (cl->gw[i].pid <= 0)
            continue;
        status = h_proc_stop(&cl->gw[i], 12000);
        if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "gw%d did not exit cleanly on SIGTERM (status %d)\n", i + 1, status);
        bad |= sanitizer_report(&cl->gw[i]);
    }
    /* CT_KEEP=1 keeps the logs of redis and the gateways for a post-mortem */
    if ((getenv("CT_KEEP") || bad) && cl->dir[0]) {
        fprintf(stderr, "logs kept in %s\n", cl->dir);
        cl->dir[0] = '\0';
    }
    h_cluster_stop(cl);
    ck_assert_msg(!bad, "a gateway reported a sanitizer error (see stderr)");
}

void ct_login(struct h_cluster *cl, int gw, const char *nick, struct ct_user *u)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->nick, sizeof(u->nick), "%s", nick);
    ck_assert_msg(h_login(cl, gw, nick, &u->token, &u->id) == 200, "login of %s failed", nick);
    ck_assert_ptr_nonnull(u->token);
    ck_assert_ptr_nonnull(u->id);
}

void ct_user_free(struct ct_user *u)
{
    free(u->token);
    free(u->id);
    u->token = NULL;
    u->id = NULL;
}

struct tc *ct_connect(struct h_cluster *cl, int gw, const struct ct_user *u)
{
    int status = -1;
    struct tc *t = tc_connect(cl->base, cl->ws_url[gw], u->token, NULL, &status);
    json_t *w;

    ck_assert_msg(t != NULL, "%s: upgrade at gw%d failed with %d", u->nick, gw + 1, status);
    w = tc_wait_type(t, "welcome", CT_WAIT_MS);
    ck_assert_msg(w != NULL, "%s: no welcome from gw%d", u->nick, gw + 1);
    json_decref(w);
    return t;
}

void ct_team(struct h_cluster *cl, const char *prefix, int n, const char *room, struct ct_user *u,
             struct tc **t)
{
    char nick[33];

    for (int i = 0; i < n; i++) {
        snprintf(nick, sizeof(nick), "%s%d", prefix, i);
        ct_login(cl, i % cl->n_gw, nick, &u[i]);
        t[i] = ct_connect(cl, i % cl->n_gw, &u[i]);
        if (room)
            json_decref(ct_join(t[i], room, -1));
    }
}

void ct_team_free(int n, struct ct_user *u, struct tc **t)
{
    for (int i = 0; i < n; i++) {
        tc_free(t[i]);
        ct_user_free(&u[i]);
    }
}

void ct_send(struct tc *t, const char *fmt, ...)
{
    va_list ap;
    char *buf = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&buf, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(tc_send(t, buf), 0);
    free(buf);
}

struct reply_find {
    struct tc *t;
    const char *id;
    size_t index;
};

static bool is_event_type(const char *type)
{
    return type && (strcmp(type, "message") == 0 || strcmp(type, "private") == 0);
}

static bool has_reply(void *arg)
{
    struct reply_find *f = arg;
    size_t i;
    json_t *j;

    json_array_foreach(f->t->frames, i, j)
    {
        const char *id = json_string_value(json_object_get(j, "id"));

        if (id && strcmp(id, f->id) == 0 && !is_event_type(ct_json_str(j, "type"))) {
            f->index = i;
            return true;
        }
    }
    return f->t->closed;
}

json_t *ct_reply(struct tc *t, const char *id, int timeout_ms)
{
    struct reply_find f = {t, id, (size_t)-1};
    json_t *j;

    h_loop_until(t->base, has_reply, &f, timeout_ms);
    if (f.index == (size_t)-1)
        return NULL;
    j = json_incref(json_array_get(t->frames, f.index));
    json_array_remove(t->frames, f.index);
    return j;
}

json_t *ct_expect(struct tc *t, const char *id, const char *type)
{
    json_t *r = ct_reply(t, id, CT_WAIT_MS);
    char *dump;

    ck_assert_msg(r != NULL, "no reply to request %s (wanted %s)", id, type);
    if (strcmp(ct_json_str(r, "type"), type) != 0) {
        dump = json_dumps(r, JSON_COMPACT);
        ck_abort_msg("request %s: wanted %s, got %s", id, type, dump);
    }
    return r;
}

void ct_expect_error(struct tc *t, const char *id, const char *code)
{
    json_t *r = ct_expect(t, id, "error");
    const char *got = ct_json_str(r, "code");

    ck_assert_msg(strcmp(got, code) == 0, "request %s: wanted error %s, got error %s (%s)", id,
                  code, got, ct_json_str(r, "message"));
    json_decref(r);
}

json_t *ct_join(struct tc *t, const char *room, long long since)
{
    char id[64];
    json_t *r;

    snprintf(id, sizeof(id), "join-%s", room);
    if (since < 0)
        ct_send(t, "{\"type\":\"join\",\"id\":\"%s\",\"room\":\"%s\"}", id, room);
    else
        ct_send(t, "{\"type\":\"join\",\"id\":\"%s\",\"room\":\"%s\",\"since\":%lld}", id, room,
                since);
    r = ct_expect(t, id, "joined");
    ck_assert_str_eq(ct_json_str(r, "room"), room);
    ck_assert(json_is_array(json_object_get(r, "messages")));
    ck_assert(json_is_boolean(json_object_get(r, "recovered")));
    return r;
}

long long ct_post(struct tc *t, const char *room, const char *id, const char *body)
{
    json_t *r;
    long long seq;

    ct_send(
        t, "{\"type\":\"message\",\"id\":\"%s\",\"room\":\"%s\",\"kind\":\"text\",\"body\":\"%s\"}",
        id, room, body);
    r = ct_expect(t, id, "ack");
    ck_assert_str_eq(ct_json_str(r, "room"), room);
    seq = ct_json_int(r, "seq");
    ck_assert_int_gt(seq, 0);
    json_decref(r);
    return seq;
}

json_t *ct_request_until(struct tc *t, const char *id, const char *type, int timeout_ms,
                         const char *fmt, ...)
{
    va_list ap;
    char *frame = NULL;
    json_t *r = NULL;

    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&frame, fmt, ap), 0);
    va_end(ap);
    for (int waited = 0; waited < timeout_ms; waited += 200) {
        const char *got;

        ck_assert_int_eq(tc_send(t, frame), 0);
        r = ct_reply(t, id, 5000);
        got = r ? ct_json_str(r, "type") : NULL;
        if (got && strcmp(got, type) == 0)
            break;
        ck_assert_msg(!got || strcmp(ct_json_str(r, "code"), "unavailable") == 0,
                      "%s: %s %s, wanted %s or unavailable", id, got, ct_json_str(r, "code"), type);
        json_decref(r);
        r = NULL;
        h_loop_for(t->base, 200);
    }
    free(frame);
    return r;
}

long long ct_post_until_acked(struct tc *t, const char *room, const char *id, const char *body,
                              int timeout_ms)
{
    json_t *r = ct_request_until(t, id, "ack", timeout_ms,
                                 "{\"type\":\"message\",\"id\":\"%s\",\"room\":\"%s\","
                                 "\"kind\":\"text\",\"body\":\"%s\"}",
                                 id, room, body);
    long long seq = r ? ct_json_int(r, "seq") : -1;

    json_decref(r);
    return seq;
}

static bool frame_matches(json_t *j, const char *type, const char *room)
{
    const char *jt = ct_json_str(j, "type");

    if (strcmp(jt, type) != 0)
        return false;
    return !room || strcmp(ct_json_str(j, "room"), room) == 0;
}

size_t ct_count(struct tc *t, const char *type, const char *room)
{
    size_t i, n = 0;
    json_t *j;

    json_array_foreach(t->frames, i, j)
    {
        if (frame_matches(j, type, room))
            n++;
    }
    return n;
}

json_t *ct_take(struct tc *t, const char *type, const char *room)
{
    json_t *out = json_array(), *keep = json_array(), *j;
    size_t i;

    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(keep);
    json_array_foreach(t->frames, i, j)
    {
        json_array_append(frame_matches(j, type, room) ? out : keep, j);
    }
    json_decref(t->frames);
    t->frames = keep;
    return out;
}

struct count_wait {
    struct tc **ts;
    size_t n;
    const char *type, *room;
    size_t want;
};

static bool all_have(void *arg)
{
    struct count_wait *w = arg;

    for (size_t i = 0; i < w->n; i++) {
        if (ct_count(w->ts[i], w->type, w->room) < w->want)
            return false;
    }
    return true;
}

bool ct_wait_count(struct tc **ts, size_t n, const char *type, const char *room, size_t want,
                   int timeout_ms)
{
    struct count_wait w = {ts, n, type, room, want};

    if (n == 0)
        return true;
    return h_loop_until(ts[0]->base, all_have, &w, timeout_ms);
}

size_t ct_settle_count(struct tc *t, const char *type, const char *room, int ms)
{
    h_loop_for(t->base, ms);
    return ct_count(t, type, room);
}

void ct_assert_seqs(json_t *msgs, long long first, size_t n, const char *what)
{
    size_t i;
    json_t *m;

    ck_assert_msg(json_array_size(msgs) == n, "%s: %zu messages, wanted %zu", what,
                  json_array_size(msgs), n);
    json_array_foreach(msgs, i, m)
    {
        long long seq = ct_json_int(m, "seq");

        ck_assert_msg(seq == first + (long long)i, "%s: message %zu has seq %lld, wanted %lld",
                      what, i, seq, first + (long long)i);
    }
}

const char *ct_user_id(json_t *user)
{
    if (json_is_string(user))
        return json_string_value(user);
    return ct_json_str(user, "id");
}

redisContext *ct_redis(const struct h_cluster *cl)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", cl->redis.port, tv);

    ck_assert_ptr_nonnull(rc);
    ck_assert_msg(rc->err == 0, "redis connect: %s", rc->errstr);
    redisSetTimeout(rc, tv);
    return rc;
}

redisContext *ct_redis_at(int port)
{
    struct timeval tv = {5, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);

    ck_assert_msg(rc && rc->err == 0, "connect %d", port);
    redisSetTimeout(rc, tv);
    return rc;
}

long long ct_kill_pubsub(const struct h_cluster *cl)
{
    long long killed = 0;
    for (int i = 0; i < h_redis_nodes(); i++) {
        redisContext *rc = ct_redis_at(i == 0 ? cl->redis.port : cl->redis_more[i - 1].port);
        redisReply *r = redisCommand(rc, "CLIENT KILL TYPE pubsub");
        ck_assert(r && r->type == REDIS_REPLY_INTEGER);
        killed += r->integer;
        freeReplyObject(r);
        redisFree(rc);
    }
    return killed;
}

int ct_slot_owner(int any_port, const char *key)
{
    redisContext *rc = ct_redis_at(any_port);
    redisReply *r = redisCommand(rc, "CLUSTER KEYSLOT %s", key);
    ck_assert(r && r->type == REDIS_REPLY_INTEGER);
    long long slot = r->integer;
    freeReplyObject(r);
    int port = 0;
    redisReply *map = redisCommand(rc, "CLUSTER SLOTS");
    ck_assert(map && map->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < map->elements; i++) {
        redisReply *e = map->element[i];
        if (slot >= e->element[0]->integer && slot <= e->element[1]->integer)
            port = (int)e->element[2]->element[1]->integer;
    }
    freeReplyObject(map);
    redisFree(rc);
    ck_assert_int_gt(port, 0);
    return port;
}

long long ct_shard_subscribers(int port, const char *channel)
{
    redisContext *rc = ct_redis_at(port);
    redisReply *r = redisCommand(rc, "PUBSUB SHARDNUMSUB %s", channel);
    ck_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    long long n = r->element[1]->integer;
    freeReplyObject(r);
    redisFree(rc);
    return n;
}

redisReply *ct_redis_vcmd(redisContext *rc, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    redisReply *r = redisvCommand(rc, fmt, ap);
    char host[64];
    int port;
    unsigned slot;
    /* Several masters (CHAT_TEST_REDIS_CLUSTER=3): ask the one that owns the key. */
    if (r && r->type == REDIS_REPLY_ERROR &&
        sscanf(r->str, "MOVED %u %63[^:]:%d", &slot, host, &port) == 3) {
        struct timeval tv = {2, 0};
        redisContext *other = redisConnectWithTimeout(host, port, tv);
        freeReplyObject(r);
        r = NULL;
        if (other && other->err == 0) {
            redisSetTimeout(other, tv);
            r = redisvCommand(other, fmt, again);
        }
        if (other)
            redisFree(other);
    }
    va_end(again);
    return r;
}

redisReply *ct_redis_cmd(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = ct_redis_vcmd(rc, fmt, ap);
    va_end(ap);
    return r;
}

long long ct_redis_int(redisContext *rc, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -1;

    va_start(ap, fmt);
    r = ct_redis_vcmd(rc, fmt, ap);
    va_end(ap);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

/* The harness's spawn() is private to it: this one starts redis-server the
 * same way (log file, no stdin, dies with the test process). */
static pid_t spawn_redis(const struct h_cluster *cl)
{
    char port[16];
    pid_t parent = getpid(), pid;

    snprintf(port, sizeof(port), "%d", cl->redis.port);
    pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(cl->redis.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null_fd = open("/dev/null", O_RDONLY);
    if (fd < 0 || null_fd < 0)
        _exit(127);
    dup2(null_fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    alarm(0);
    const char *argv[] = {"redis-server", "--port", port,           "--bind",      "127.0.0.1",
                          "--save",       "",       "--appendonly", "yes",         "--appendfsync",
                          "always",       "--dir",  cl->dir,        "--daemonize", "no",
                          NULL,           NULL,     NULL,           NULL,          NULL,
                          NULL,           NULL,     NULL,           NULL,          NULL};
    char bus[16];
    if (h_redis_cluster_mode()) {
        /* The bus port would be port + 10000 by default, past 65535 for a high port. */
        snprintf(bus, sizeof(bus), "%d", h_free_port());
        argv[15] = "--cluster-enabled";
        argv[16] = "yes";
        argv[17] = "--cluster-port";
        argv[18] = bus;
        /* The node file the harness started it with (redis_spawn: "<name>.conf"):
         * on several masters a restarted node must come back as itself, with
         * its slots, not as a new node claiming every slot. */
        argv[19] = "--cluster-config-file";
        argv[20] = "redis.conf";
        argv[21] = "--cluster-node-timeout";
        argv[22] = "1000";
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

static bool redis_answers(const struct h_cluster *cl)
{
    struct timeval tv = {0, 300000};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", cl->redis.port, tv);
    redisReply *r;
    bool ok = false;

    if (!rc)
        return false;
    if (rc->err == 0) {
        redisSetTimeout(rc, tv);
        r = redisCommand(rc, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r)
            freeReplyObject(r);
    }
    redisFree(rc);
    return ok;
}

void ct_redis_start(struct h_cluster *cl)
{
    ck_assert_int_eq(cl->redis.pid, 0);
    cl->redis.pid = spawn_redis(cl);
    ck_assert_int_gt(cl->redis.pid, 0);
    for (int i = 0; i < 500; i++) {
        if (redis_answers(cl) &&
            (!h_redis_cluster_mode() || h_redis_cluster_ready(cl->redis.port) == 0))
            return;
        if (h_proc_wait(&cl->redis, 0) != -1 || cl->redis.pid == 0)
            break;
        usleep(20000);
    }
    h_dump_log(&cl->redis);
    ck_abort_msg("redis-server did not restart on port %d", cl->redis.port);
}

void ct_redis_kill(struct h_cluster *cl)
{
    ck_assert_int_gt(cl->redis.pid, 0);
    kill(cl->redis.pid, SIGKILL);
    waitpid(cl->redis.pid, NULL, 0);
    cl->redis.pid = 0;
}

void ct_redis_persistent(struct h_cluster *cl)
{
    ck_assert_int_eq(cl->n_gw, 0);
    fprintf(stderr, "%s: logs in %s\n", tcase_name(), cl->dir);
    h_proc_stop(&cl->redis, 5000);
    ct_redis_start(cl);
}

int ct_healthz(const struct h_cluster *cl, int gw)
{
    char *body = NULL;
    int status = chat_http_request(cl->http_url[gw], "GET", "/healthz", NULL, NULL, 0, &body, 2000);

    free(body);
    return status;
}

bool ct_wait_healthz(struct h_cluster *cl, int status, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        int ok = 0;

        for (int i = 0; i < cl->n_gw; i++)
            ok += ct_healthz(cl, i) == status;
        if (ok == cl->n_gw)
            return true;
        /* keep the test clients' sockets serviced while polling */
        h_loop_for(cl->base, 100);
    }
    return false;
}

long long ct_json_int(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);

    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

const char *ct_json_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "";
}

bool ct_sentinel_says(int port, const char *sub, const char *want)
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool ok = false;
    if (rc && rc->err == 0) {
        redisReply *r = redisCommand(rc, "SENTINEL %s chatmaster", sub);
        if (r && r->type == REDIS_REPLY_STATUS)
            ok = strcmp(r->str, want) == 0;
        else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                 r->element[1]->type == REDIS_REPLY_STRING)
            ok = strcmp(r->element[1]->str, want) == 0;
        freeReplyObject(r);
    }
    if (rc)
        redisFree(rc);
    return ok;
}

bool ct_sentinel_replica_ready(int port)
{
    struct timeval tv = {1, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool flags = false, link = false;
    if (rc && rc->err == 0) {
        redisReply *r = redisCommand(rc, "SENTINEL replicas chatmaster");
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY) {
            redisReply *kv = r->element[0];
            for (size_t i = 0; i + 1 < kv->elements; i += 2) {
                if (strcmp(kv->element[i]->str, "flags") == 0)
                    flags = strcmp(kv->element[i + 1]->str, "slave") == 0;
                if (strcmp(kv->element[i]->str, "master-link-status") == 0)
                    link = strcmp(kv->element[i + 1]->str, "ok") == 0;
            }
        }
        freeReplyObject(r);
    }
    if (rc)
        redisFree(rc);
    return flags && link;
}
