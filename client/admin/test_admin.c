/*
 * chat-admin against a real redis-server and a real chat-gateway: every
 * command through the binary, its --json parsed with jansson, its effects
 * checked through the gateway (a second client sees the broadcast, /api/me
 * takes the token).  The gateway runs with a non-default --prefix so the
 * Redis commands must honour --prefix.
 *
 * The Redis commands run three ways, each its own ctest: against one
 * redis-server (redis://), against three cluster masters
 * (CHAT_TEST_REDIS_CLUSTER=3, redis-cluster://, the harness's cluster) and
 * behind a sentinel (CHAT_ADMIN_TEST_SENTINEL=1, redis-sentinel://); the
 * gateways get the same URL as chat-admin.
 */
#include "chat_client.h"
#include "harness.h"

#include <check.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ADMIN_BIN
#define ADMIN_BIN "chat-admin"
#endif
#ifndef GATEWAY_BIN
#define GATEWAY_BIN "chat-gateway"
#endif

#define PREFIX "adm:"
#define RUN_TIMEOUT_MS 20000

static struct h_cluster cl;
static char redis_url[160];
static struct h_proc sentinel;

enum redis_mode { MODE_PLAIN, MODE_CLUSTER, MODE_SENTINEL };

static enum redis_mode redis_mode(void)
{
    const char *s = getenv("CHAT_ADMIN_TEST_SENTINEL");
    if (h_redis_masters() == 3)
        return MODE_CLUSTER;
    return s && *s && strcmp(s, "0") != 0 ? MODE_SENTINEL : MODE_PLAIN;
}

static const char *gateway_bin(void)
{
    const char *env = getenv("CHAT_ADMIN_GATEWAY");
    return env && *env ? env : GATEWAY_BIN;
}

/*
 * Starts gateway i (node id gw<i+1>) like h_cluster_add_gateway, but from
 * gateway_bin() and with --prefix; it is registered in cl so h_cluster_stop
 * stops it by PID and checks its exit status.
 */
static int start_gateway_on(int i, const char *url)
{
    struct h_proc *g = &cl.gw[i];
    char port[16], node[16];

    g->port = h_free_port();
    ck_assert_int_gt(g->port, 0);
    snprintf(port, sizeof(port), "%d", g->port);
    snprintf(node, sizeof(node), "gw%d", i + 1);
    char dir[sizeof(cl.dir)]; /* a copy: source and destination both live in cl */
    memcpy(dir, cl.dir, sizeof(dir));
    snprintf(g->log_path, sizeof(g->log_path), "%s/%s.log", dir, node);
    snprintf(cl.http_url[i], sizeof(cl.http_url[i]), "http://127.0.0.1:%d", g->port);
    snprintf(cl.ws_url[i], sizeof(cl.ws_url[i]), "ws://127.0.0.1:%d/ws", g->port);
    const char *argv[] = {
        gateway_bin(), "--port",         port,         "--bind",        "127.0.0.1", "--redis",
        url,           "--jwt-secret",   H_JWT_SECRET, "--node-id",     node,        "--prefix",
        PREFIX,        "--presence-ttl", "3",          "--drain-grace", "0",         NULL};
    pid_t parent = getpid();
    g->pid = fork();
    if (g->pid < 0)
        return -1;
    if (g->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (!freopen(g->log_path, "a", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    cl.n_gw = i + 1;
    for (int k = 0; k < 500; k++) { /* 10 s */
        char *body = NULL;
        int status =
            chat_http_request(cl.http_url[i], "GET", "/healthz", NULL, NULL, 0, &body, 500);
        free(body);
        if (status == 200)
            return 0;
        if (h_proc_wait(g, 0) != -1 || g->pid == 0)
            break;
        usleep(20000);
    }
    h_dump_log(g);
    return -1;
}

static int start_gateway(int i)
{
    return start_gateway_on(i, redis_url);
}

static void setup(void)
{
    h_watchdog(150);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
    switch (redis_mode()) {
    case MODE_PLAIN:
        snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d/0", cl.redis.port);
        break;
    case MODE_CLUSTER:
        /* Two of the three masters as seeds, as an operator would give them. */
        snprintf(redis_url, sizeof(redis_url), "redis-cluster://127.0.0.1:%d,127.0.0.1:%d",
                 cl.redis.port, cl.redis_more[0].port);
        break;
    case MODE_SENTINEL:
        memset(&sentinel, 0, sizeof(sentinel));
        ck_assert_int_eq(h_sentinel_start(&cl, &sentinel, "adm", 0), 0);
        snprintf(redis_url, sizeof(redis_url), "redis-sentinel://127.0.0.1:%d/adm", sentinel.port);
        break;
    }
    ck_assert_msg(start_gateway(0) == 0, "gateway %s did not start", gateway_bin());
}

static void teardown(void)
{
    if (sentinel.pid > 0)
        h_proc_stop(&sentinel, 5000);
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

/* Runs chat-admin with args (NULL-terminated); returns the exit code (-1 when
 * it did not exit); out and err malloc'd. */
static int admin(char **out, char **err, ...)
{
    const char *argv[32] = {ADMIN_BIN};
    int n = 1;
    va_list ap;
    va_start(ap, err);
    for (const char *a; n < 31 && (a = va_arg(ap, const char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    int status = h_run_capture(argv, out, err, RUN_TIMEOUT_MS);
    if (status < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* Runs chat-admin with args and --json, expects exit 0 and one JSON object. */
static json_t *admin_json(const char *cmd, const char *a1, const char *a2, const char *a3,
                          const char *a4)
{
    char *out = NULL, *err = NULL;
    int rc = admin(&out, &err, cmd, "--json", a1, a2, a3, a4, (char *)NULL);
    ck_assert_msg(rc == 0, "chat-admin %s: exit %d, stderr: %s", cmd, rc, err ? err : "");
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    ck_assert_msg(json_is_object(j), "chat-admin %s --json: not an object: %s", cmd, out);
    free(out);
    free(err);
    return j;
}

static json_t *redis_json(const char *cmd)
{
    return admin_json(cmd, "--redis", redis_url, "--prefix", PREFIX);
}

/* The element of arr whose field equals value, or NULL (borrowed). */
static json_t *find_by(json_t *arr, const char *field, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *v = json_string_value(json_object_get(e, field));
        if (v && strcmp(v, value) == 0)
            return e;
    }
    return NULL;
}

static struct tc *connect_user(const char *nick, char **id)
{
    char *token = NULL;
    ck_assert_int_eq(h_login(&cl, 0, nick, &token, id), 200);
    struct tc *t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_t *w = tc_wait_type(t, "welcome", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(w);
    json_decref(w);
    free(token);
    return t;
}

static json_t *reply_to(struct tc *t, const char *type)
{
    json_t *r = tc_wait_type(t, type, H_TIMEOUT_MS);
    ck_assert_msg(r != NULL, "no %s", type);
    return r;
}

START_TEST(test_redis_views)
{
    char *ada_id = NULL;
    struct tc *ada = connect_user("ada", &ada_id);
    tc_send(ada, "{\"type\":\"join\",\"room\":\"general\",\"id\":\"j1\"}");
    json_decref(reply_to(ada, "joined"));
    tc_send(ada,
            "{\"type\":\"create_room\",\"room\":\"ops\",\"topic\":\"Operations\",\"id\":\"c1\"}");
    json_decref(reply_to(ada, "ack"));

    /* online: presence is written as the session opens; poll briefly */
    json_t *j = NULL, *u = NULL;
    for (int i = 0; i < 50 && !u; i++) {
        json_decref(j);
        j = redis_json("online");
        u = find_by(json_object_get(j, "users"), "id", ada_id);
        if (!u)
            h_loop_for(cl.base, 100);
    }
    ck_assert_ptr_nonnull(u);
    ck_assert_str_eq(json_string_value(json_object_get(u, "name")), "ada");
    ck_assert(json_is_null(json_object_get(u, "avatar")));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(u, "nodes"), 0)), "gw1");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "count")), 1);
    json_decref(j);

    /* nodes: the heartbeat carries the connection count (every 0.5 s here) */
    json_t *n = NULL;
    j = NULL;
    for (int i = 0; i < 50; i++) {
        json_decref(j);
        j = redis_json("nodes");
        n = find_by(json_object_get(j, "nodes"), "node", "gw1");
        if (n && json_integer_value(json_object_get(n, "connections")) == 1)
            break;
        h_loop_for(cl.base, 100);
    }
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(json_array_size(json_object_get(j, "nodes")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(n, "connections")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 1);
    ck_assert_int_ge(json_integer_value(json_object_get(n, "age_ms")), 0);
    ck_assert_int_lt(json_integer_value(json_object_get(n, "age_ms")), 10000);
    ck_assert_int_gt(json_integer_value(json_object_get(n, "ttl_ms")), 0);
    json_decref(j);

    /* rooms: the defaults, ours with its topic, general with ada in it */
    j = redis_json("rooms");
    json_t *rooms = json_object_get(j, "rooms");
    json_t *general = find_by(rooms, "name", "general");
    json_t *ops = find_by(rooms, "name", "ops");
    ck_assert_ptr_nonnull(general);
    ck_assert_ptr_nonnull(find_by(rooms, "name", "random"));
    ck_assert_ptr_nonnull(find_by(rooms, "name", "tech"));
    ck_assert_ptr_nonnull(ops);
    ck_assert_int_eq(json_integer_value(json_object_get(general, "members")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(ops, "topic")), "Operations");
    ck_assert_int_eq(json_integer_value(json_object_get(ops, "members")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(ops, "created_by")), ada_id);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rooms, 0), "name")),
                     "general"); /* by name */
    json_decref(j);

    /* the human forms say the same */
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(
        admin(&out, &err, "online", "--redis", redis_url, "--prefix", PREFIX, (char *)NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, ada_id));
    ck_assert_ptr_nonnull(strstr(out, "1 user online"));
    free(out);
    free(err);
    ck_assert_int_eq(
        admin(&out, &err, "rooms", "--redis", redis_url, "--prefix", PREFIX, (char *)NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "Operations"));
    free(out);
    free(err);
    /* CHAT_REDIS_URL and CHAT_PREFIX like the gateway */
    setenv("CHAT_REDIS_URL", redis_url, 1);
    setenv("CHAT_PREFIX", PREFIX, 1);
    ck_assert_int_eq(admin(&out, &err, "nodes", (char *)NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "gw1"));
    ck_assert_ptr_nonnull(strstr(out, "1 node alive"));
    free(out);
    free(err);
    unsetenv("CHAT_REDIS_URL");
    unsetenv("CHAT_PREFIX");
    /* another prefix sees nothing */
    j = admin_json("online", "--redis", redis_url, "--prefix", "other:");
    ck_assert_int_eq(json_array_size(json_object_get(j, "users")), 0);
    json_decref(j);

    /* the user leaves: gone from online once the gateway has noticed */
    tc_free(ada);
    bool gone = false;
    for (int i = 0; i < 50 && !gone; i++) {
        h_loop_for(cl.base, 100);
        j = redis_json("online");
        gone = find_by(json_object_get(j, "users"), "id", ada_id) == NULL;
        json_decref(j);
    }
    ck_assert(gone);
    free(ada_id);
}
END_TEST

START_TEST(test_broadcast)
{
    struct tc *ada = connect_user("ada", NULL);
    struct tc *bob = connect_user("bob", NULL);
    char *out = NULL, *err = NULL;
    ck_assert_msg(admin(&out, &err, "broadcast", "maintenance at 18:00", "--url", cl.ws_url[0],
                        "--jwt-secret", H_JWT_SECRET, "--name", "Ops team", (char *)NULL) == 0,
                  "broadcast failed: %s", err);
    ck_assert_ptr_nonnull(strstr(out, "broadcast sent"));
    free(out);
    free(err);
    struct tc *both[] = {ada, bob};
    for (int i = 0; i < 2; i++) {
        json_t *b = tc_wait_type(both[i], "broadcast", H_TIMEOUT_MS);
        ck_assert_ptr_nonnull(b);
        ck_assert_str_eq(json_string_value(json_object_get(b, "body")), "maintenance at 18:00");
        json_t *from = json_object_get(b, "from");
        ck_assert_str_eq(json_string_value(json_object_get(from, "id")), "chat-admin");
        ck_assert_str_eq(json_string_value(json_object_get(from, "name")), "Ops team");
        json_decref(b);
    }

    /* --json, with the secret from the environment */
    setenv("CHAT_JWT_SECRET", H_JWT_SECRET, 1);
    json_t *j = admin_json("broadcast", "--url", cl.ws_url[0], "second", NULL);
    unsetenv("CHAT_JWT_SECRET");
    ck_assert(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    json_t *b = tc_wait_type(bob, "broadcast", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(json_string_value(json_object_get(b, "body")), "second");
    json_decref(b);

    /* a wrong secret: refused, exit 1, and nobody receives anything */
    ck_assert_int_eq(admin(&out, &err, "broadcast", "forged", "--url", cl.ws_url[0], "--jwt-secret",
                           "another-secret-of-at-least-32-bytes!!", (char *)NULL),
                     1);
    ck_assert_ptr_nonnull(strstr(err, "401"));
    free(out);
    free(err);
    /* nobody listening */
    char dead[64];
    snprintf(dead, sizeof(dead), "ws://127.0.0.1:%d/ws", h_free_port());
    ck_assert_int_eq(admin(&out, &err, "broadcast", "x", "--url", dead, "--jwt-secret",
                           H_JWT_SECRET, "--timeout", "3", (char *)NULL),
                     1);
    ck_assert_ptr_nonnull(strstr(err, "cannot connect"));
    free(out);
    free(err);
    ck_assert_ptr_null(tc_wait_type(bob, "broadcast", 300));
    tc_free(ada);
    tc_free(bob);
}
END_TEST

START_TEST(test_token)
{
    char *out = NULL, *err = NULL, *body = NULL;
    ck_assert_int_eq(admin(&out, &err, "token", "--user-id", "op-1", "--name", "Operator",
                           "--admin", "--ttl", "10m", "--jwt-secret", H_JWT_SECRET, (char *)NULL),
                     0);
    out[strcspn(out, "\n")] = '\0';
    char auth[8300];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", out);
    ck_assert_int_eq(
        chat_http_request(cl.http_url[0], "GET", "/api/me", auth, NULL, 0, &body, H_TIMEOUT_MS),
        200);
    json_t *me = json_loads(body, 0, NULL);
    json_t *user = json_object_get(me, "user");
    ck_assert_str_eq(json_string_value(json_object_get(user, "id")), "op-1");
    ck_assert_str_eq(json_string_value(json_object_get(user, "name")), "Operator");
    json_decref(me);
    free(body);
    free(out);
    free(err);

    /* the admin role is real: the gateway takes a broadcast from it */
    json_t *j = admin_json("token", "--user-id=op-2", "--name=Op Two", "--admin",
                           "--jwt-secret=" H_JWT_SECRET);
    const char *token = json_string_value(json_object_get(j, "token"));
    ck_assert_ptr_nonnull(token);
    ck_assert(json_is_true(json_object_get(j, "admin")));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "user"), "id")), "op-2");
    json_int_t exp = json_integer_value(json_object_get(j, "exp"));
    ck_assert_int_gt(exp, (json_int_t)time(NULL) + 3500); /* default 1 h */
    ck_assert_int_le(exp, (json_int_t)time(NULL) + 3600);
    struct tc *t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    tc_send(t, "{\"type\":\"broadcast\",\"body\":\"hi\",\"id\":\"b1\"}");
    json_t *ack = tc_wait_type(t, "ack", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(ack);
    json_decref(ack);
    tc_free(t);
    json_decref(j);

    /* without --admin: a user token, and the gateway says forbidden */
    j = admin_json("token", "--user-id=u-3", "--name=User", "--jwt-secret=" H_JWT_SECRET, NULL);
    ck_assert(json_is_false(json_object_get(j, "admin")));
    t = tc_connect(cl.base, cl.ws_url[0], json_string_value(json_object_get(j, "token")), NULL,
                   NULL);
    ck_assert_ptr_nonnull(t);
    tc_send(t, "{\"type\":\"broadcast\",\"body\":\"hi\",\"id\":\"b1\"}");
    json_t *e = tc_wait_type(t, "error", H_TIMEOUT_MS);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "forbidden");
    json_decref(e);
    tc_free(t);
    json_decref(j);
}
END_TEST

START_TEST(test_errors)
{
    char *out = NULL, *err = NULL;
    struct {
        int code;
        const char *needle;
        const char *args[8];
    } cases[] = {
        {2, "no command", {NULL}},
        {2, "unknown command", {"ban", "bob", NULL}},
        {2, "takes one argument", {"kick", NULL}},
        {2, "a user id is", {"kick", "bad id", NULL}},
        {2, "a room name is", {"purge", "Ops", NULL}},
        {2, "a room name is", {"delete-room", "_x", NULL}},
        {2, "does not apply", {"kick", "u1", "--admin", NULL}},
        {1, "default room", {"delete-room", "general", NULL}},
        {1, "cannot connect to Redis", {"kick", "u1", "--redis", "redis://127.0.0.1:1", NULL}},
        {1, "cannot connect to Redis", {"purge", "ops", "--redis", "redis://127.0.0.1:1", NULL}},
        {2, "--user-id and --name", {"token", "--jwt-secret", H_JWT_SECRET, NULL}},
        {2, "CHAT_JWT_SECRET", {"token", "--user-id", "a", "--name", "A", NULL}},
        {2,
         "at least 32",
         {"token", "--user-id", "a", "--name", "A", "--jwt-secret", "short", NULL}},
        {2, "--ttl", {"token", "--user-id", "a", "--name", "A", "--ttl", "soon", NULL}},
        {2,
         "--user-id must",
         {"token", "--user-id", "a b", "--name", "A", "--jwt-secret", H_JWT_SECRET, NULL}},
        {2, "does not apply", {"online", "--admin", NULL}},
        {2, "does not apply", {"token", "--redis", "redis://x", NULL}},
        {2, "takes one argument", {"broadcast", NULL}},
        {2, "takes no argument", {"rooms", "extra", NULL}},
        {2, "unknown option", {"rooms", "--bogus", NULL}},
        {1, "--redis", {"rooms", "--redis", "http://x", NULL}},
        {1, "cannot connect to Redis", {"online", "--redis", "redis://127.0.0.1:1", NULL}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[12] = {ADMIN_BIN};
        int n = 1;
        for (int k = 0; cases[i].args[k]; k++)
            argv[n++] = cases[i].args[k];
        argv[n] = NULL;
        int status = h_run_capture(argv, &out, &err, RUN_TIMEOUT_MS);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == cases[i].code,
                      "case %zu: status %d, stderr %s", i, status, err);
        ck_assert_msg(strstr(err, cases[i].needle) != NULL, "case %zu: stderr '%s' lacks '%s'", i,
                      err, cases[i].needle);
        ck_assert_str_eq(out, "");
        free(out);
        free(err);
    }
    ck_assert_int_eq(admin(&out, &err, "--help", (char *)NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "broadcast TEXT"));
    ck_assert_ptr_nonnull(strstr(out, "kick USER"));
    ck_assert_ptr_nonnull(strstr(out, "delete-room ROOM"));
    ck_assert_ptr_nonnull(strstr(out, "purge ROOM"));
    ck_assert_ptr_nonnull(strstr(out, "redis-cluster://"));
    ck_assert_ptr_nonnull(strstr(out, "redis-sentinel://"));
    free(out);
    free(err);
    ck_assert_int_eq(admin(&out, &err, "--version", (char *)NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "chat-admin "));
    ck_assert_ptr_nonnull(strstr(out, "(commit "));
    free(out);
    free(err);
}
END_TEST

/* ---- kick, delete-room, purge ---- */

/* Whether gateway i's log has a line containing needle, waiting up to 5 s
 * (the line is written as the gateway handles the control message). */
static bool log_has(int i, const char *needle)
{
    for (int k = 0; k < 50; k++) {
        FILE *f = fopen(cl.gw[i].log_path, "r");
        char line[1024];
        bool found = false;
        while (f && !found && fgets(line, sizeof(line), f))
            found = strstr(line, needle) != NULL;
        if (f)
            fclose(f);
        if (found)
            return true;
        h_loop_for(cl.base, 100);
    }
    return false;
}

static redisContext *redis_open_port(int port)
{
    redisContext *rc = redisConnect("127.0.0.1", port);
    ck_assert_msg(rc && !rc->err, "cannot connect to the test redis at %d", port);
    return rc;
}

static redisContext *redis_open(void)
{
    return redis_open_port(cl.redis.port);
}

/* fmt with arg on rc; on a cluster, once more on the node a MOVED names (rc
 * stays as it is: the redirected connection is closed again). */
static redisReply *redis_cmd(redisContext *rc, const char *fmt, const char *arg)
{
    redisReply *r = redisCommand(rc, fmt, arg);
    int port;
    if (r && r->type == REDIS_REPLY_ERROR && sscanf(r->str, "MOVED %*d 127.0.0.1:%d", &port) == 1) {
        freeReplyObject(r);
        redisContext *moved = redis_open_port(port);
        r = redisCommand(moved, fmt, arg);
        redisFree(moved);
    }
    return r;
}

static long long redis_int(redisContext *rc, const char *fmt, const char *arg)
{
    redisReply *r = redis_cmd(rc, fmt, arg);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* A user's connection to gateway i with a token made elsewhere. */
static struct tc *connect_token(int i, const char *token)
{
    struct tc *t = tc_connect(cl.base, cl.ws_url[i], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(reply_to(t, "welcome"));
    return t;
}

static json_int_t send_message(struct tc *t, const char *room, const char *body)
{
    tc_sendf(
        t, "{\"type\":\"message\",\"room\":\"%s\",\"kind\":\"text\",\"body\":\"%s\",\"id\":\"%s\"}",
        room, body, body);
    json_t *ack = reply_to(t, "ack");
    json_int_t seq = json_integer_value(json_object_get(ack, "seq"));
    json_decref(ack);
    ck_assert_int_gt(seq, 0);
    return seq;
}

static json_t *control_json(const char *cmd, const char *arg)
{
    return admin_json(cmd, arg, "--redis", redis_url, "--prefix=" PREFIX);
}

/* Runs chat-admin CMD ARG (human form) against the test Redis: asserts the
 * exit code and that stdout (exit 0) or stderr (else) says needle. */
static void control_expect(const char *cmd, const char *arg, int code, const char *needle)
{
    char *out = NULL, *err = NULL;
    int rc = admin(&out, &err, cmd, arg, "--redis", redis_url, "--prefix", PREFIX, (char *)NULL);
    const char *said = code == 0 ? out : err;
    ck_assert_msg(rc == code, "chat-admin %s %s: exit %d, stderr: %s", cmd, arg, rc, err);
    ck_assert_msg(said && strstr(said, needle), "chat-admin %s %s said '%s', not '%s'", cmd, arg,
                  said ? said : "", needle);
    if (code != 0)
        ck_assert_str_eq(out, "");
    free(out);
    free(err);
}

/* One user with a tab on each of two gateways: both tabs close with 4003 and
 * each gateway logs its part; another user stays connected. */
START_TEST(test_kick)
{
    ck_assert_msg(start_gateway(1) == 0, "second gateway did not start");
    char *token = NULL, *ada_id = NULL, line[160];
    ck_assert_int_eq(h_login(&cl, 0, "ada", &token, &ada_id), 200);
    struct tc *tab1 = connect_token(0, token);
    struct tc *tab2 = connect_token(1, token);
    struct tc *bob = connect_user("bob", NULL);

    json_t *j = control_json("kick", ada_id);
    ck_assert_str_eq(json_string_value(json_object_get(j, "kicked")), ada_id);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 2);
    json_decref(j);
    ck_assert_int_eq(tc_wait_closed(tab1, H_TIMEOUT_MS), 4003);
    ck_assert_int_eq(tc_wait_closed(tab2, H_TIMEOUT_MS), 4003);
    snprintf(line, sizeof(line), "admin_kick user=%s sessions=1", ada_id);
    ck_assert_msg(log_has(0, line) && log_has(1, line), "no '%s' in both logs", line);
    tc_send(bob, "{\"type\":\"ping\",\"id\":\"p1\"}");
    json_decref(reply_to(bob, "pong"));

    /* nobody of that id: done, nothing closed; the human form */
    control_expect("kick", "nobody-here", 0, "kicked nobody-here: 2 gateways");
    ck_assert(log_has(0, "admin_kick user=nobody-here sessions=0"));
    ck_assert(log_has(1, "admin_kick user=nobody-here sessions=0"));
    tc_send(bob, "{\"type\":\"ping\",\"id\":\"p2\"}");
    json_decref(reply_to(bob, "pong"));

    /* hostile control messages: logged and ignored, nobody disconnected */
    redisContext *rc = redis_open();
    redisReply *r = redisCommand(rc, "PUBLISH " PREFIX "control %s", "{\"type\":\"kick\"");
    freeReplyObject(r);
    r = redisCommand(rc, "PUBLISH " PREFIX "control %s", "{\"type\":\"shutdown\"}");
    freeReplyObject(r);
    redisFree(rc);
    ck_assert(log_has(0, "admin_control_invalid"));
    tc_send(bob, "{\"type\":\"ping\",\"id\":\"p3\"}");
    json_decref(reply_to(bob, "pong"));
    tc_free(tab1);
    tc_free(tab2);
    tc_free(bob);
    free(token);
    free(ada_id);
}
END_TEST

/* The room's keys go as an expired room's do, its member is dropped from it
 * (room_deleted, then not_member), everyone hears room_deleted, and the
 * default rooms and unknown rooms are refused. */
START_TEST(test_delete_room)
{
    char *ada_id = NULL;
    struct tc *ada = connect_user("ada", &ada_id);
    struct tc *bob = connect_user("bob", NULL);
    tc_send(ada, "{\"type\":\"join\",\"room\":\"ops\",\"id\":\"j1\"}");
    json_decref(reply_to(ada, "joined"));
    send_message(ada, "ops", "m1");
    tc_sendf(ada, "{\"type\":\"react\",\"room\":\"ops\",\"seq\":1,\"emoji\":\"+1\",\"id\":\"r1\"}");
    json_decref(tc_wait_type(ada, "ack", H_TIMEOUT_MS));

    json_t *j = control_json("delete-room", "ops");
    ck_assert_str_eq(json_string_value(json_object_get(j, "deleted")), "ops");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 1);
    json_decref(j);
    struct tc *both[] = {ada, bob};
    for (int i = 0; i < 2; i++) {
        json_t *ev = reply_to(both[i], "room_deleted");
        ck_assert_str_eq(json_string_value(json_object_get(ev, "room")), "ops");
        json_decref(ev);
    }
    ck_assert(log_has(0, "admin_delete_room room=ops sessions=1"));
    tc_send(ada, "{\"type\":\"message\",\"room\":\"ops\",\"kind\":\"text\",\"body\":\"x\","
                 "\"id\":\"m2\"}");
    json_t *e = reply_to(ada, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "not_member");
    json_decref(e);

    redisContext *rc = redis_open();
    static const char *const gone[] = {"history", "seq", "members", "reactions"};
    for (size_t i = 0; i < 4; i++) {
        char key[128];
        snprintf(key, sizeof(key), PREFIX "room:{ops}:%s", gone[i]);
        ck_assert_msg(redis_int(rc, "EXISTS %s", key) == 0, "%s is still there", key);
    }
    char holders[160];
    snprintf(holders, sizeof(holders), PREFIX "room:{ops}:holders:%s", ada_id);
    ck_assert_int_eq(redis_int(rc, "EXISTS %s", holders), 0);
    ck_assert_int_eq(redis_int(rc, "HEXISTS " PREFIX "rooms %s", "ops"), 0);
    redisReply *r = redis_cmd(rc, "ZSCORE " PREFIX "rooms:names{" PREFIX "rooms} %s", "ops");
    ck_assert(r && r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
    redisFree(rc);
    j = redis_json("rooms");
    ck_assert_ptr_null(find_by(json_object_get(j, "rooms"), "name", "ops"));
    ck_assert_ptr_nonnull(find_by(json_object_get(j, "rooms"), "name", "general"));
    json_decref(j);

    control_expect("delete-room", "ops", 1, "no room named ops");
    control_expect("delete-room", "general", 1, "default room");
    /* the name is free again, as a new room; the human form */
    tc_send(ada, "{\"type\":\"join\",\"room\":\"ops\",\"id\":\"j2\"}");
    j = reply_to(ada, "joined");
    ck_assert_int_eq(json_array_size(json_object_get(j, "messages")), 0);
    json_decref(j);
    ck_assert_int_eq(send_message(ada, "ops", "again"), 1);
    control_expect("delete-room", "ops", 0, "deleted room ops: 1 gateway");
    tc_free(ada);
    tc_free(bob);
    free(ada_id);
}
END_TEST

/* History goes, seq stays: the next message continues the numbering, and the
 * member hears which seqs were purged. */
START_TEST(test_purge)
{
    struct tc *ada = connect_user("ada", NULL);
    tc_send(ada, "{\"type\":\"join\",\"room\":\"ops\",\"id\":\"j1\"}");
    json_decref(reply_to(ada, "joined"));
    for (int i = 0; i < 3; i++) {
        char body[8];
        snprintf(body, sizeof(body), "m%d", i);
        send_message(ada, "ops", body);
    }
    json_t *j = control_json("purge", "ops");
    ck_assert_str_eq(json_string_value(json_object_get(j, "purged")), "ops");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "messages")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 1);
    json_decref(j);
    json_t *ev = reply_to(ada, "room_purged");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "room")), "ops");
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "seq")), 3);
    json_decref(ev);
    ck_assert(log_has(0, "admin_purge room=ops seq=3 sessions=1"));

    tc_send(ada, "{\"type\":\"history\",\"room\":\"ops\",\"id\":\"h1\"}");
    j = reply_to(ada, "history");
    ck_assert_int_eq(json_array_size(json_object_get(j, "messages")), 0);
    json_decref(j);
    ck_assert_int_eq(send_message(ada, "ops", "after"), 4);
    /* a second client joining sees only what came after */
    struct tc *bob = connect_user("bob", NULL);
    tc_send(bob, "{\"type\":\"join\",\"room\":\"ops\",\"since\":0,\"id\":\"j2\"}");
    j = reply_to(bob, "joined");
    json_t *msgs = json_object_get(j, "messages");
    ck_assert_int_eq(json_array_size(msgs), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(msgs, 0), "seq")), 4);
    json_decref(j);

    control_expect("purge", "ops", 0, "purged room ops: 1 message up to seq 4");
    control_expect("purge", "nowhere", 1, "no room named nowhere");
    tc_free(ada);
    tc_free(bob);
}
END_TEST

/* The index of the cluster master that holds key (EXISTS answers there
 * without a redirection); 0 outside a cluster. */
static int master_of(const char *key)
{
    if (redis_mode() != MODE_CLUSTER)
        return 0;
    for (int i = 0; i < 3; i++) {
        redisContext *rc = redis_open_port(i == 0 ? cl.redis.port : cl.redis_more[i - 1].port);
        redisReply *r = redisCommand(rc, "EXISTS %s", key);
        bool here = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        redisFree(rc);
        if (here)
            return i;
    }
    return -1;
}

#define SPREAD_USERS 8

/* A reply of fmt (with arg) from the cluster node at port, of type want. */
static redisReply *node_cmd(int port, int want, const char *fmt, const char *arg)
{
    redisContext *rc = redis_open_port(port);
    redisReply *r = redisCommand(rc, fmt, arg);
    redisFree(rc);
    ck_assert_msg(r && r->type == want, "%s on %d: %s", fmt, port,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    return r;
}

static void node_ok(int port, const char *fmt, const char *arg)
{
    freeReplyObject(node_cmd(port, REDIS_REPLY_STATUS, fmt, arg));
}

/* MIGRATE of key from the node at port from to the one at to. */
static void migrate_key(int from, int to, const char *key)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", to);
    const char *argv[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", key};
    redisContext *rc = redis_open_port(from);
    redisReply *r = redisCommandArgv(rc, 8, argv, NULL);
    ck_assert_msg(r && r->type == REDIS_REPLY_STATUS, "MIGRATE %s: %s", key,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    redisFree(rc);
}

/* Starts moving the slot of room from the cluster node at port from to the
 * one at to as redis-cli --cluster reshard does (IMPORTING, MIGRATING), and
 * moves the room's key `first` only: the slot stays half-moved, so a command
 * on that key gets ASK.  Returns the slot (text) for migrate_finish. */
static void migrate_start(const char *room, int from, int to, const char *first, char *slot,
                          char *to_id)
{
    redisReply *r = node_cmd(from, REDIS_REPLY_INTEGER, "CLUSTER KEYSLOT %s", room);
    snprintf(slot, 16, "%lld", r->integer);
    freeReplyObject(r);
    r = node_cmd(from, REDIS_REPLY_STRING, "CLUSTER MYID", NULL);
    char from_id[64];
    snprintf(from_id, sizeof(from_id), "%s", r->str);
    freeReplyObject(r);
    r = node_cmd(to, REDIS_REPLY_STRING, "CLUSTER MYID", NULL);
    snprintf(to_id, 64, "%s", r->str);
    freeReplyObject(r);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %s IMPORTING %s", slot, from_id);
    node_ok(to, cmd, NULL);
    snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %s MIGRATING %s", slot, to_id);
    node_ok(from, cmd, NULL);
    migrate_key(from, to, first);
}

/* Moves the rest of slot's keys, then gives the slot to to_id on every
 * master. */
static void migrate_finish(const char *slot, int from, int to, const char *to_id)
{
    char cmd[160];
    redisReply *keys = node_cmd(from, REDIS_REPLY_ARRAY, "CLUSTER GETKEYSINSLOT %s 1000", slot);
    for (size_t i = 0; i < keys->elements; i++)
        migrate_key(from, to, keys->element[i]->str);
    freeReplyObject(keys);
    snprintf(cmd, sizeof(cmd), "CLUSTER SETSLOT %s NODE %s", slot, to_id);
    node_ok(to, cmd, NULL);
    node_ok(from, cmd, NULL);
    node_ok(cl.redis_more[1].port, cmd, NULL);
}

/* Three gateways, eight users on two of them, a room whose keys are on
 * another master than the rooms hash.  On a cluster the users' hashes, the
 * heartbeats and the room spread over the masters (asserted), the third
 * gateway subscribes through another node than the first two (its seeds in
 * the other order), and every command still sees and reaches everything. */
START_TEST(test_spread)
{
    char url[sizeof(redis_url)], key[160];
    snprintf(url, sizeof(url), "%s", redis_url);
    if (redis_mode() == MODE_CLUSTER)
        snprintf(url, sizeof(url), "redis-cluster://127.0.0.1:%d,127.0.0.1:%d",
                 cl.redis_more[0].port, cl.redis.port);
    ck_assert_msg(start_gateway(1) == 0, "gw2 did not start");
    ck_assert_msg(start_gateway_on(2, url) == 0, "gw3 did not start");

    struct tc *t[SPREAD_USERS];
    char *ids[SPREAD_USERS];
    bool masters[3] = {false};
    for (int i = 0; i < SPREAD_USERS; i++) {
        char nick[8], *token = NULL;
        int gw = i % 2 ? 2 : 0;
        snprintf(nick, sizeof(nick), "u%d", i);
        ck_assert_int_eq(h_login(&cl, gw, nick, &token, &ids[i]), 200);
        t[i] = connect_token(gw, token);
        free(token);
        snprintf(key, sizeof(key), PREFIX "user:{%s}", ids[i]);
        int m = master_of(key);
        ck_assert_int_ge(m, 0);
        masters[m] = true;
    }
    if (redis_mode() == MODE_CLUSTER) {
        ck_assert_msg(masters[0] + masters[1] + masters[2] >= 2, "the users are on one master");
        /* gw1's heartbeat on the second master, gw3's on the first (CRC16). */
        ck_assert_int_ne(master_of(PREFIX "node:{gw1}"), master_of(PREFIX "node:{gw3}"));
        ck_assert_int_ne(master_of(PREFIX "rooms"), master_of(PREFIX "room:{qa}:seq"));
    }

    /* online: everyone, with the node each is on */
    json_t *j = NULL;
    for (int k = 0; k < 50; k++) {
        json_decref(j);
        j = redis_json("online");
        if (json_integer_value(json_object_get(j, "count")) == SPREAD_USERS)
            break;
        h_loop_for(cl.base, 100);
    }
    ck_assert_int_eq(json_integer_value(json_object_get(j, "count")), SPREAD_USERS);
    for (int i = 0; i < SPREAD_USERS; i++) {
        json_t *u = find_by(json_object_get(j, "users"), "id", ids[i]);
        char nick[8];
        snprintf(nick, sizeof(nick), "u%d", i);
        ck_assert_ptr_nonnull(u);
        ck_assert_str_eq(json_string_value(json_object_get(u, "name")), nick);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(u, "nodes"), 0)),
                         i % 2 ? "gw3" : "gw1");
    }
    json_decref(j);

    /* nodes: the three heartbeats, wherever each lives */
    j = NULL;
    for (int k = 0; k < 50; k++) {
        json_decref(j);
        j = redis_json("nodes");
        if (json_integer_value(json_object_get(j, "connections")) == SPREAD_USERS &&
            json_array_size(json_object_get(j, "nodes")) == 3)
            break;
        h_loop_for(cl.base, 100);
    }
    ck_assert_int_eq(json_array_size(json_object_get(j, "nodes")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), SPREAD_USERS);
    json_t *n3 = find_by(json_object_get(j, "nodes"), "node", "gw3");
    ck_assert_ptr_nonnull(n3);
    ck_assert_int_eq(json_integer_value(json_object_get(n3, "connections")), SPREAD_USERS / 2);
    json_decref(j);

    /* a room with a member on gw1 and one on gw3 */
    for (int i = 0; i < 2; i++) {
        tc_send(t[i], "{\"type\":\"join\",\"room\":\"qa\",\"id\":\"jq\"}");
        json_decref(reply_to(t[i], "joined"));
    }
    send_message(t[0], "qa", "q1");
    send_message(t[1], "qa", "q2");
    /* On a cluster, qa's slot half-moved from the first master to the second:
     * its member count is read through an ASK. */
    char slot[16], to_id[64];
    if (redis_mode() == MODE_CLUSTER)
        migrate_start("qa", cl.redis.port, cl.redis_more[0].port, PREFIX "room:{qa}:members", slot,
                      to_id);
    j = redis_json("rooms");
    json_t *qa = find_by(json_object_get(j, "rooms"), "name", "qa");
    ck_assert_ptr_nonnull(qa);
    ck_assert_int_eq(json_integer_value(json_object_get(qa, "members")), 2);
    json_decref(j);
    if (redis_mode() == MODE_CLUSTER) {
        migrate_finish(slot, cl.redis.port, cl.redis_more[0].port, to_id);
        ck_assert_int_eq(master_of(PREFIX "room:{qa}:seq"), 1);
    }

    /* purge: history gone, seq kept, both members told by their gateways */
    j = control_json("purge", "qa");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "messages")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 3);
    json_decref(j);
    for (int i = 0; i < 2; i++)
        json_decref(reply_to(t[i], "room_purged"));
    redisContext *rc = redis_open();
    ck_assert_int_eq(redis_int(rc, "LLEN %s", PREFIX "room:{qa}:history"), 0);
    redisReply *r = redis_cmd(rc, "GET %s", PREFIX "room:{qa}:seq");
    ck_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "2") == 0);
    freeReplyObject(r);

    /* kick a user of gw3: 4003 there; all three gateways heard it */
    j = control_json("kick", ids[1]);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 3);
    json_decref(j);
    ck_assert_int_eq(tc_wait_closed(t[1], H_TIMEOUT_MS), 4003);

    /* delete-room: unlisted on the rooms hash's master, keys gone on the room's */
    j = control_json("delete-room", "qa");
    ck_assert_str_eq(json_string_value(json_object_get(j, "deleted")), "qa");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "nodes")), 3);
    json_decref(j);
    json_decref(reply_to(t[0], "room_deleted"));
    ck_assert_int_eq(redis_int(rc, "EXISTS %s", PREFIX "room:{qa}:seq"), 0);
    /* Not :members: a gateway's presence refresh already on its way when the
     * room went may write it once more (it expires). */
    ck_assert_int_eq(redis_int(rc, "EXISTS %s", PREFIX "room:{qa}:history"), 0);
    ck_assert_int_eq(redis_int(rc, "HEXISTS " PREFIX "rooms %s", "qa"), 0);
    redisFree(rc);
    control_expect("delete-room", "qa", 1, "no room named qa");
    control_expect("purge", "qa", 1, "no room named qa");

    /* what is wrong with the URL is said plainly */
    char *out = NULL, *err = NULL, bad[160];
    const char *needle = "is not a cluster node";
    if (redis_mode() == MODE_PLAIN) {
        snprintf(bad, sizeof(bad), "redis-cluster://127.0.0.1:%d", cl.redis.port);
    } else if (redis_mode() == MODE_SENTINEL) {
        snprintf(bad, sizeof(bad), "redis-sentinel://127.0.0.1:%d/nosuch", sentinel.port);
        needle = "knows no master named nosuch";
    } else {
        snprintf(bad, sizeof(bad), "redis-cluster://127.0.0.1:%d,127.0.0.1:%d", h_free_port(),
                 h_free_port());
        needle = "cannot connect to Redis";
    }
    ck_assert_int_eq(admin(&out, &err, "online", "--redis", bad, (char *)NULL), 1);
    ck_assert_msg(strstr(err, needle), "stderr '%s' lacks '%s'", err, needle);
    free(out);
    free(err);
    snprintf(bad, sizeof(bad), "redis-sentinel://127.0.0.1:%d/adm", h_free_port());
    ck_assert_int_eq(admin(&out, &err, "kick", "u1", "--redis", bad, (char *)NULL), 1);
    ck_assert_ptr_nonnull(strstr(err, "cannot connect to Redis"));
    free(out);
    free(err);

    for (int i = 0; i < SPREAD_USERS; i++) {
        tc_free(t[i]);
        free(ids[i]);
    }
}
END_TEST

int main(void)
{
    char dir[128];
    if (h_suite_begin(dir, sizeof(dir)) != 0)
        return EXIT_FAILURE;
    Suite *s = suite_create("chat_admin");
    TCase *tc = tcase_create("chat_admin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_redis_views);
    /* Only the Redis commands depend on the kind of Redis. */
    if (redis_mode() == MODE_PLAIN) {
        tcase_add_test(tc, test_broadcast);
        tcase_add_test(tc, test_token);
        tcase_add_test(tc, test_errors);
    }
    tcase_add_test(tc, test_spread);
    tcase_add_test(tc, test_kick);
    tcase_add_test(tc, test_delete_room);
    tcase_add_test(tc, test_purge);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    h_suite_end(dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
