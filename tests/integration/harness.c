/*
 * Integration-test harness; see harness.h.
 */
/* nftw() */
#define _XOPEN_SOURCE 700

#include "harness.h"

#include "chat_client.h"

#include <check.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GATEWAY_BIN
#define GATEWAY_BIN "chat-gateway"
#endif

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int h_free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

void h_watchdog(unsigned seconds)
{
    signal(SIGALRM, SIG_DFL);
    alarm(seconds);
}

/* fork + exec with stdout/stderr to log_path (or to the given fds); the
 * child dies with its parent. */
static pid_t spawn(const char *const *argv, const char *log_path, int out_fd, int err_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

        if (fd < 0)
            _exit(127);
        out_fd = fd;
        err_fd = fd;
    }
    int null_fd = open("/dev/null", O_RDONLY);

    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    alarm(0);
    /* Stopping a gateway should not wait out the load-balancer grace of a
     * drain; a test that wants it passes --drain-grace (flags win). */
    setenv("CHAT_DRAIN_GRACE", "0", 0);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int h_proc_wait(struct h_proc *p, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    int status;

    if (p->pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);

        if (r == p->pid) {
            p->pid = 0;
            return status;
        }
        if (r < 0 && errno != EINTR) {
            p->pid = 0;
            return -1;
        }
        if (now_ms() >= deadline)
            return -1;
        usleep(10000);
    }
}

int h_proc_stop(struct h_proc *p, int timeout_ms)
{
    int status;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    status = h_proc_wait(p, timeout_ms);
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        p->pid = 0;
        return -1;
    }
    return status;
}

void h_dump_log(const struct h_proc *p)
{
    char line[1024];
    FILE *f = fopen(p->log_path, "r");

    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", p->log_path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fprintf(stderr, "---- end ----\n");
    fclose(f);
}

/* One inline command, and whether the reply (its first 4 KiB) contains want. */
static bool redis_says(int port, const char *cmd, const char *want)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char buf[4096] = {0};
    struct pollfd pfd;
    size_t got = 0;
    bool ok = false;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return false;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) == (ssize_t)strlen(cmd)) {
        pfd.fd = fd;
        pfd.events = POLLIN;
        while (!ok && got < sizeof(buf) - 1 && poll(&pfd, 1, 500) == 1) {
            ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
            ok = strstr(buf, want) != NULL;
        }
    }
    close(fd);
    return ok;
}

static bool redis_ping(int port)
{
    return redis_says(port, "PING\r\n", "+PONG");
}

bool h_redis_cluster_mode(void)
{
    const char *v = getenv("CHAT_TEST_REDIS_CLUSTER");

    return v && *v && strcmp(v, "0") != 0;
}

int h_redis_cluster_ready(int port)
{
    long deadline = now_ms() + 10000;

    /* A restarted node finds its slots in nodes.conf; a new one is given them all.
     * Either way it serves nothing until it says cluster_state:ok. */
    redis_says(port, "CLUSTER ADDSLOTSRANGE 0 16383\r\n", "+OK");
    while (!redis_says(port, "CLUSTER INFO\r\n", "cluster_state:ok")) {
        if (now_ms() > deadline)
            return -1;
        usleep(20000);
    }
    return 0;
}

int h_suite_begin(char *dir, size_t dir_size)
{
    snprintf(dir, dir_size, "/tmp/chatgw-it-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return setenv("CHAT_IT_DIR", dir, 1);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void h_suite_end(const char *dir)
{
    const char *keep = getenv("CHAT_IT_KEEP");

    if (keep && *keep && strcmp(keep, "0") != 0)
        fprintf(stderr, "logs kept in %s\n", dir);
    else
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int h_redis_masters(void)
{
    const char *v = getenv("CHAT_TEST_REDIS_CLUSTER");

    return v && (strcmp(v, "3") == 0 || strcmp(v, "6") == 0) ? 3 : 1;
}

int h_redis_nodes(void)
{
    const char *v = getenv("CHAT_TEST_REDIS_CLUSTER");

    return v && strcmp(v, "6") == 0 ? 6 : h_redis_masters();
}

/* Waits up to 10 s for the redis-server just started as p to answer PING
 * (its log is printed when it does not, or exits); 0 or -1. */
static int wait_ping(struct h_proc *p)
{
    long deadline = now_ms() + 10000;

    while (!redis_ping(p->port)) {
        if (now_ms() > deadline || h_proc_wait(p, 0) != -1 || p->pid == 0) {
            h_dump_log(p);
            return -1;
        }
        usleep(20000);
    }
    return 0;
}

/* Starts one redis-server as p (its port chosen when 0), a replica of the
 * server on port replica_of unless that is 0, and waits for PING. */
static int redis_spawn(struct h_cluster *cl, struct h_proc *p, const char *name, int replica_of)
{
    char port[16], bus[16], conf[64], master[16];

    if (p->port <= 0)
        p->port = h_free_port();
    if (p->port < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", p->port);
    snprintf(p->log_path, sizeof(p->log_path), "%s/%s.log", cl->dir, name);
    snprintf(conf, sizeof(conf), "%s.conf", name);
    const char *argv[] = {
        "redis-server", "--port",      port, "--bind", "127.0.0.1", "--save", "",   "--appendonly",
        "no",           "--daemonize", "no", "--dir",  cl->dir,     NULL,     NULL, NULL,
        NULL,           NULL,          NULL, NULL,     NULL,        NULL,     NULL};
    if (replica_of > 0) {
        snprintf(master, sizeof(master), "%d", replica_of);
        argv[13] = "--replicaof";
        argv[14] = "127.0.0.1";
        argv[15] = master;
    } else if (h_redis_cluster_mode()) {
        /* The bus port would be port + 10000 by default, past 65535 for a high port. */
        snprintf(bus, sizeof(bus), "%d", h_free_port());
        argv[13] = "--cluster-enabled";
        argv[14] = "yes";
        argv[15] = "--cluster-port";
        argv[16] = bus;
        argv[17] = "--cluster-config-file";
        argv[18] = conf;
        /* A master killed by a test is failed over within about two seconds. */
        argv[19] = "--cluster-node-timeout";
        argv[20] = "1000";
    }
    p->pid = spawn(argv, p->log_path, -1, -1);
    if (p->pid < 0)
        return -1;
    return wait_ping(p);
}

/* Three masters (and a replica each with 6 nodes): redis-cli --cluster create
 * spreads the slots over them. */
static int redis_cluster_create(struct h_cluster *cl)
{
    char addr[6][32];
    char *out = NULL, *err = NULL;
    int n = h_redis_nodes();
    struct h_proc *nodes[6] = {&cl->redis};
    const char *argv[16] = {"/usr/bin/redis-cli", "--cluster", "create"};
    int argc = 3;

    for (int i = 0; i < n; i++) {
        nodes[i] = i == 0 ? &cl->redis : &cl->redis_more[i - 1];
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", nodes[i]->port);
        argv[argc++] = addr[i];
    }
    if (n == 6) {
        argv[argc++] = "--cluster-replicas";
        argv[argc++] = "1";
    }
    argv[argc++] = "--cluster-yes";
    int status = h_run_capture(argv, &out, &err, 20000);
    if (status != 0)
        fprintf(stderr, "redis-cli --cluster create: %s%s\n", out ? out : "", err ? err : "");
    free(out);
    free(err);
    if (status != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        long deadline = now_ms() + 10000;
        while (!redis_says(nodes[i]->port, "CLUSTER INFO\r\n", "cluster_state:ok")) {
            if (now_ms() > deadline)
                return -1;
            usleep(20000);
        }
    }
    /* A replica whose first sync has not finished cannot be promoted. */
    for (int i = 0; i < n; i++) {
        long deadline = now_ms() + 20000;
        while (redis_says(nodes[i]->port, "INFO replication\r\n", "role:slave") &&
               !redis_says(nodes[i]->port, "INFO replication\r\n", "master_link_status:up")) {
            if (now_ms() > deadline)
                return -1;
            usleep(20000);
        }
    }
    return 0;
}

int h_redis_start(struct h_cluster *cl)
{
    if (redis_spawn(cl, &cl->redis, "redis", 0) != 0)
        return -1;
    if (h_redis_masters() == 3) {
        for (int i = 1; i < h_redis_nodes(); i++) {
            char name[16];
            snprintf(name, sizeof(name), "redis%d", i + 1);
            if (redis_spawn(cl, &cl->redis_more[i - 1], name, 0) != 0)
                return -1;
        }
        return redis_cluster_create(cl);
    }
    if (h_redis_cluster_mode() && h_redis_cluster_ready(cl->redis.port) != 0) {
        h_dump_log(&cl->redis);
        return -1;
    }
    return 0;
}

int h_redis_node_restart(struct h_cluster *cl, struct h_proc *p)
{
    char name[32];
    int index = p == &cl->redis ? 0 : (int)(p - cl->redis_more) + 1;

    if (index == 0)
        snprintf(name, sizeof(name), "redis");
    else
        snprintf(name, sizeof(name), "redis%d", index + 1);
    return redis_spawn(cl, p, name, 0);
}

int h_sentinel_start(struct h_cluster *cl, struct h_proc *p, const char *master_name,
                     int replica_port)
{
    char conf[192], port[16];

    p->port = h_free_port();
    if (p->port < 0)
        return -1;
    snprintf(port, sizeof(port), "%d", p->port);
    snprintf(conf, sizeof(conf), "%s/sentinel-%d.conf", cl->dir, p->port);
    snprintf(p->log_path, sizeof(p->log_path), "%s/sentinel-%d.log", cl->dir, p->port);
    FILE *f = fopen(conf, "w");
    if (!f)
        return -1;
    /* One sentinel is its own quorum; a master silent for 1 s is down.  The
     * replica is named so the sentinel need not wait for the master's INFO
     * (every 10 s) to learn of it. */
    fprintf(f,
            "sentinel monitor %s 127.0.0.1 %d 1\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 3000\n",
            master_name, cl->redis.port, master_name, master_name);
    if (replica_port > 0)
        fprintf(f, "sentinel known-replica %s 127.0.0.1 %d\n", master_name, replica_port);
    fclose(f);
    const char *argv[] = {"redis-server", conf,        "--sentinel", "--port", port,
                          "--bind",       "127.0.0.1", "--dir",      cl->dir,  NULL};
    p->pid = spawn(argv, p->log_path, -1, -1);
    if (p->pid < 0)
        return -1;
    return wait_ping(p);
}

int h_redis_replica_start(struct h_cluster *cl, struct h_proc *p)
{
    long deadline = now_ms() + 10000;

    if (redis_spawn(cl, p, "replica", cl->redis.port) != 0)
        return -1;
    while (!redis_says(cl->redis.port, "INFO replication\r\n", "connected_slaves:1") ||
           !redis_says(p->port, "INFO replication\r\n", "master_link_status:up")) {
        if (now_ms() > deadline) {
            h_dump_log(p);
            return -1;
        }
        usleep(20000);
    }
    return 0;
}

int h_redis_stop(struct h_cluster *cl)
{
    for (int i = 0; i < 5; i++)
        if (cl->redis_more[i].pid > 0)
            h_proc_stop(&cl->redis_more[i], 5000);
    return h_proc_stop(&cl->redis, 5000) >= 0 ? 0 : -1;
}

int h_cluster_init(struct h_cluster *cl)
{
    const char *parent = getenv("CHAT_IT_DIR");

    memset(cl, 0, sizeof(*cl));
    signal(SIGPIPE, SIG_IGN);
    if (parent)
        snprintf(cl->dir, sizeof(cl->dir), "%s/cluster-XXXXXX", parent);
    else
        snprintf(cl->dir, sizeof(cl->dir), "/tmp/chatgw-it-XXXXXX");
    if (!mkdtemp(cl->dir))
        return -1;
    cl->base = event_base_new();
    if (!cl->base)
        return -1;
    return h_redis_start(cl);
}

int h_cluster_add_gateway(struct h_cluster *cl, const char *const *extra_args)
{
    const char *argv[64];
    char port[16], redis[256], node[16];
    int i = cl->n_gw, n = 0, status;
    struct h_proc *g;
    long deadline;
    char *body = NULL;

    if (i >= H_MAX_GATEWAYS)
        return -1;
    g = &cl->gw[i];
    g->port = h_free_port();
    snprintf(port, sizeof(port), "%d", g->port);
    if (h_redis_masters() == 3) {
        /* Every node a seed: a test may kill any one of them. */
        size_t off =
            (size_t)snprintf(redis, sizeof(redis), "redis-cluster://127.0.0.1:%d", cl->redis.port);
        for (int k = 1; k < h_redis_nodes() && off < sizeof(redis); k++)
            off += (size_t)snprintf(redis + off, sizeof(redis) - off, ",127.0.0.1:%d",
                                    cl->redis_more[k - 1].port);
    } else
        snprintf(redis, sizeof(redis), "redis://127.0.0.1:%d/0", cl->redis.port);
    snprintf(node, sizeof(node), "gw%d", i + 1);
    /* Through a copy: gcc -O2 cannot tell cl->dir and g->log_path apart (-Wrestrict). */
    char dir[sizeof(cl->dir)];
    memcpy(dir, cl->dir, sizeof(dir));
    snprintf(g->log_path, sizeof(g->log_path), "%s/%s.log", dir, node);
    snprintf(cl->http_url[i], sizeof(cl->http_url[i]), "http://127.0.0.1:%d", g->port);
    snprintf(cl->ws_url[i], sizeof(cl->ws_url[i]), "ws://127.0.0.1:%d/ws", g->port);
    argv[n++] = GATEWAY_BIN;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--redis";
    argv[n++] = redis;
    argv[n++] = "--jwt-secret";
    argv[n++] = H_JWT_SECRET;
    argv[n++] = "--node-id";
    argv[n++] = node;
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    for (int k = 0; extra_args && extra_args[k] && n < 63; k++)
        argv[n++] = extra_args[k];
    argv[n] = NULL;
    /* Many users log in from 127.0.0.1 within a minute and create rooms
     * freely here: the per-address and per-user limits are off unless a test
     * turns one on with its flag (flags win over the environment). */
    setenv("CHAT_LOGIN_RATE", "0", 0);
    setenv("CHAT_MAX_CONNS_PER_IP", "0", 0);
    setenv("CHAT_ROOM_CREATE_RATE", "0", 0);
    g->pid = spawn(argv, g->log_path, -1, -1);
    if (g->pid < 0)
        return -1;
    cl->n_gw++;
    deadline = now_ms() + 10000;
    for (;;) {
        status = chat_http_request(cl->http_url[i], "GET", "/healthz", NULL, NULL, 0, &body, 500);
        free(body);
        body = NULL;
        if (status == 200)
            return i;
        if (now_ms() > deadline || h_proc_wait(g, 0) != -1 || g->pid == 0)
            break;
        usleep(20000);
    }
    h_dump_log(g);
    return -1;
}

bool h_log_has(const char *path, const char *needle)
{
    char line[1024];
    bool found = false;
    FILE *f = fopen(path, "r");

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

int h_cluster_stop(struct h_cluster *cl)
{
    int bad = 0;

    for (int i = 0; i < cl->n_gw; i++) {
        bool running = cl->gw[i].pid > 0;
        int status = h_proc_stop(&cl->gw[i], 10000);

        /* A gateway still running must exit 0 on SIGTERM, and no gateway
         * may have reported a sanitizer error. */
        if ((running && (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)) ||
            h_log_has(cl->gw[i].log_path, "Sanitizer")) {
            fprintf(stderr, "gateway gw%d: bad exit (status %d) or sanitizer report\n", i + 1,
                    status);
            h_dump_log(&cl->gw[i]);
            bad++;
        }
    }
    h_redis_stop(cl);
    if (cl->base)
        event_base_free(cl->base);
    cl->base = NULL;
    if (cl->dir[0])
        nftw(cl->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    cl->dir[0] = '\0';
    return bad;
}

static char *read_all_fd(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;

    if (!buf)
        return NULL;
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 512) {
            char *nb = realloc(buf, cap * 2);

            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    return buf;
}

int h_run_capture(const char *const *argv, char **out, char **err_out, int timeout_ms)
{
    char out_path[] = "/tmp/chatgw-run-XXXXXX", err_path[] = "/tmp/chatgw-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path), status = -1;
    struct h_proc p = {0};

    if (out)
        *out = NULL;
    if (err_out)
        *err_out = NULL;
    if (out_fd < 0 || err_fd < 0)
        goto done;
    p.pid = spawn(argv, NULL, out_fd, err_fd);
    if (p.pid < 0)
        goto done;
    status = h_proc_wait(&p, timeout_ms);
    if (p.pid > 0) {
        h_proc_stop(&p, 100);
        status = -1;
    }
    if (out) {
        lseek(out_fd, 0, SEEK_SET);
        *out = read_all_fd(out_fd);
    }
    if (err_out) {
        lseek(err_fd, 0, SEEK_SET);
        *err_out = read_all_fd(err_fd);
    }
done:
    if (out_fd >= 0) {
        close(out_fd);
        unlink(out_path);
    }
    if (err_fd >= 0) {
        close(err_fd);
        unlink(err_path);
    }
    return status;
}

static void on_loop_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

bool h_loop_until(struct event_base *base, bool (*pred)(void *), void *arg, int timeout_ms)
{
    long deadline = now_ms() + timeout_ms;
    struct event *timer = evtimer_new(base, on_loop_timer, NULL);
    bool ok;

    while (!(ok = pred(arg))) {
        long left = deadline - now_ms();
        struct timeval tv;

        if (left <= 0 || !timer)
            break;
        tv.tv_sec = left / 1000;
        tv.tv_usec = (left % 1000) * 1000;
        evtimer_add(timer, &tv);
        event_base_loop(base, EVLOOP_ONCE);
    }
    if (timer)
        event_free(timer);
    return ok;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

void h_loop_for(struct event_base *base, int ms)
{
    h_loop_until(base, never, NULL, ms);
}

unsigned long long h_metric(const struct h_cluster *cl, int i, const char *name)
{
    char *body = NULL;
    int status =
        chat_http_request(cl->http_url[i], "GET", "/metrics", NULL, NULL, 0, &body, H_TIMEOUT_MS);
    if (status != 200)
        free(body);
    ck_assert_msg(status == 200, "gateway %d: /metrics answered %d", i, status);
    char key[128];
    snprintf(key, sizeof(key), "\n%s{", name);
    const char *p = body ? strstr(body, key) : NULL;
    unsigned long long v = 0;
    if (p && (p = strchr(p, '}')))
        v = strtoull(p + 1, NULL, 10);
    free(body);
    return v;
}

int h_login(const struct h_cluster *cl, int i, const char *nick, char **token, char **id)
{
    char *t = NULL, *u = NULL;
    int status = chat_login(cl->http_url[i], nick, NULL, &t, &u, H_TIMEOUT_MS);

    if (token)
        *token = t;
    else
        free(t);
    if (id)
        *id = u;
    else
        free(u);
    return status;
}

static char *b64url(const unsigned char *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    size_t n;

    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    n = strlen(out);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    return out;
}

char *h_jwt(const char *secret, const char *alg, const char *claims_json)
{
    char header[64], *h = NULL, *c = NULL, *s = NULL, *signing = NULL, *jwt = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t len;

    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    h = b64url((const unsigned char *)header, strlen(header));
    c = b64url((const unsigned char *)claims_json, strlen(claims_json));
    if (!h || !c)
        goto done;
    len = strlen(h) + strlen(c) + 2;
    signing = malloc(len);
    if (!signing)
        goto done;
    snprintf(signing, len, "%s.%s", h, c);
    if (strcmp(alg, "none") != 0)
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signing,
             strlen(signing), mac, &mac_len);
    s = b64url(mac, mac_len);
    if (!s)
        goto done;
    len = strlen(signing) + strlen(s) + 2;
    jwt = malloc(len);
    if (jwt)
        snprintf(jwt, len, "%s.%s", signing, s);
done:
    free(h);
    free(c);
    free(s);
    free(signing);
    return jwt;
}

int h_raw(const struct h_cluster *cl, int i, const void *req, size_t len, char **resp)
{
    char *r = NULL;
    int status = -1;

    if (chat_http_raw(cl->http_url[i], req, len, &r, H_TIMEOUT_MS) > 12 &&
        strncmp(r, "HTTP/1.", 7) == 0)
        status = atoi(r + 9);
    if (resp)
        *resp = r;
    else
        free(r);
    return status;
}

int h_raw_open(const struct h_cluster *cl, int i, const char *req, int *status)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char buf[4096];
    size_t len = 0;
    long deadline = now_ms() + H_TIMEOUT_MS;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    *status = -1;
    if (fd < 0)
        return -1;
    sa.sin_port = htons((uint16_t)cl->gw[i].port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
        goto fail;
    /* Byte by byte, so nothing after the head (a first frame) is consumed. */
    while (len < sizeof(buf) - 1 && (len < 4 || memcmp(buf + len - 4, "\r\n\r\n", 4) != 0)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        long left = deadline - now_ms();

        if (left <= 0 || poll(&pfd, 1, (int)left) != 1 || recv(fd, buf + len, 1, 0) != 1)
            goto fail;
        len++;
    }
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.", 7) == 0 && len > 12)
        *status = atoi(buf + 9);
    return fd;
fail:
    close(fd);
    return -1;
}

json_t *h_resp_json(const char *resp)
{
    const char *body = resp ? strstr(resp, "\r\n\r\n") : NULL;

    return body ? json_loads(body + 4, JSON_DECODE_ANY, NULL) : NULL;
}

/* ---- test client ---- */

static void tc_on_message(struct chat_client *c, bool binary, const char *data, size_t len,
                          void *arg)
{
    struct tc *t = arg;
    json_t *j;

    (void)c;
    if (binary) {
        t->binary++;
        return;
    }
    j = json_loadb(data, len, 0, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        j = json_pack("{s:s, s:s%}", "type", "_nonjson", "raw", data, len);
    }
    if (j)
        json_array_append_new(t->frames, j);
}

static void tc_on_event(struct chat_client *c, enum chat_client_event ev, int code, void *arg)
{
    struct tc *t = arg;

    (void)c;
    if (ev == CHAT_CLIENT_OPEN) {
        t->opened = true;
    } else if (ev == CHAT_CLIENT_REFUSED) {
        t->refused = true;
        t->code = code;
    } else {
        t->closed = true;
        t->code = code;
    }
}

struct tc *tc_new_opts(struct event_base *base, const struct chat_client_options *opts)
{
    struct tc *t = calloc(1, sizeof(*t));
    struct chat_client_options o = *opts;

    if (!t)
        return NULL;
    o.on_message = tc_on_message;
    o.on_event = tc_on_event;
    o.arg = t;
    t->base = base;
    t->frames = json_array();
    t->c = chat_client_new(base, &o);
    if (!t->c || !t->frames) {
        tc_free(t);
        return NULL;
    }
    return t;
}

struct tc *tc_new(struct event_base *base, const char *url, const char *token, const char *origin)
{
    struct chat_client_options o = {.url = url, .token = token, .origin = origin};

    return tc_new_opts(base, &o);
}

static bool tc_settled(void *arg)
{
    struct tc *t = arg;

    return t->opened || t->refused || t->closed;
}

bool tc_wait_open(struct tc *t, int timeout_ms)
{
    h_loop_until(t->base, tc_settled, t, timeout_ms);
    return t->opened && !t->closed;
}

struct tc *tc_connect(struct event_base *base, const char *url, const char *token,
                      const char *origin, int *status)
{
    struct tc *t = tc_new(base, url, token, origin);

    if (status)
        *status = -1;
    if (!t)
        return NULL;
    if (!tc_wait_open(t, H_TIMEOUT_MS)) {
        if (status && t->refused)
            *status = t->code;
        tc_free(t);
        return NULL;
    }
    if (status)
        *status = 101;
    return t;
}

struct tc_find {
    struct tc *t;
    const char *type;
    size_t index;
};

static bool tc_has_type(void *arg)
{
    struct tc_find *f = arg;
    size_t i;
    json_t *j;

    json_array_foreach(f->t->frames, i, j)
    {
        const char *type = json_string_value(json_object_get(j, "type"));

        if (!f->type || (type && strcmp(type, f->type) == 0)) {
            f->index = i;
            return true;
        }
    }
    return f->t->closed || f->t->refused;
}

json_t *tc_wait_type(struct tc *t, const char *type, int timeout_ms)
{
    struct tc_find f = {t, type, (size_t)-1};
    json_t *j;

    h_loop_until(t->base, tc_has_type, &f, timeout_ms);
    if (f.index == (size_t)-1)
        return NULL;
    j = json_incref(json_array_get(t->frames, f.index));
    json_array_remove(t->frames, f.index);
    return j;
}

json_t *tc_next(struct tc *t, int timeout_ms)
{
    return tc_wait_type(t, NULL, timeout_ms);
}

static bool tc_done(void *arg)
{
    struct tc *t = arg;

    return t->closed || t->refused;
}

int tc_wait_closed(struct tc *t, int timeout_ms)
{
    return h_loop_until(t->base, tc_done, t, timeout_ms) ? t->code : -1;
}

int tc_send(struct tc *t, const char *text)
{
    return chat_client_send_text(t->c, text, strlen(text));
}

int tc_sendf(struct tc *t, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -1;
    return tc_send(t, buf);
}

void tc_free(struct tc *t)
{
    if (!t)
        return;
    chat_client_free(t->c);
    json_decref(t->frames);
    free(t);
}

bool tc_join(struct tc *t, const char *room)
{
    if (tc_sendf(t, "{\"type\":\"join\",\"room\":\"%s\",\"id\":\"j\"}", room) != 0)
        return false;
    json_t *j = tc_wait_type(t, "joined", H_TIMEOUT_MS);
    json_decref(j);
    return j != NULL;
}

struct tc *tc_welcomed(const struct h_cluster *cl, int i, const char *nick, bool deflate)
{
    char *token = NULL;
    if (h_login(cl, i, nick, &token, NULL) != 200) {
        free(token);
        return NULL;
    }
    struct chat_client_options o = {.url = cl->ws_url[i], .token = token, .deflate = deflate};
    struct tc *t = tc_new_opts(cl->base, &o);
    free(token);
    if (!t)
        return NULL;
    json_t *welcome =
        tc_wait_open(t, H_TIMEOUT_MS) ? tc_wait_type(t, "welcome", H_TIMEOUT_MS) : NULL;
    if (!welcome) {
        tc_free(t);
        return NULL;
    }
    json_decref(welcome);
    return t;
}
