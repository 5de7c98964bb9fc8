/*
 * The cluster under test: redis-server (AOF, fsync always, in a temp dir so
 * a restart keeps every acked write) and the gateways, each started with
 * fork/exec on a fixed loopback port and stopped by PID.  Children get
 * PR_SET_PDEATHSIG, so nothing outlives a chaos run that is killed.
 */
#include "chaos.h"
#include "chat_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

int ch_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static pid_t spawn(const char *const *argv, const char *log_path, const char *cwd)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null_fd = open("/dev/null", O_RDONLY);

    if (fd < 0)
        _exit(127);
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    signal(SIGPIPE, SIG_DFL);
    if (cwd && chdir(cwd) != 0)
        _exit(127);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

int ch_redis_start(struct ch_procs *p)
{
    char port[16];

    if (p->redis.port <= 0)
        p->redis.port = ch_free_port();
    if (p->redis.port <= 0)
        return -1;
    p->redis.name = "redis";
    snprintf(port, sizeof(port), "%d", p->redis.port);
    snprintf(p->redis.log_path, sizeof(p->redis.log_path), "%s/redis.log", p->dir);
    const char *argv[] = {
        p->redis_bin, "--port",      port, "--bind",           "127.0.0.1", "--dir",
        p->redis_dir, "--save",      "",   "--appendonly",     "yes",       "--appendfsync",
        "always",     "--daemonize", "no", "--protected-mode", "no",        NULL};
    p->redis.expect_exit = false;
    p->redis.stopped = false;
    p->redis.pid = spawn(argv, p->redis.log_path, p->redis_dir);
    return p->redis.pid > 0 ? 0 : -1;
}

int ch_gw_start(struct ch_procs *p, int i)
{
    char port[16], redis[64];
    struct ch_proc *g = &p->gw[i];

    if (g->port <= 0)
        g->port = ch_free_port();
    if (g->port <= 0)
        return -1;
    snprintf(p->gw_name[i], sizeof(p->gw_name[i]), "gw%d", i + 1);
    g->name = p->gw_name[i];
    snprintf(port, sizeof(port), "%d", g->port);
    snprintf(redis, sizeof(redis), "redis://127.0.0.1:%d/0", p->redis.port);
    {
        char name[16], dir[sizeof(p->dir)];
        snprintf(name, sizeof(name), "%s", p->gw_name[i]);
        memcpy(dir, p->dir, sizeof(dir));
        snprintf(g->log_path, sizeof(g->log_path), "%s/%s.log", dir, name);
    }
    /* --history far above what a run stores, so the checker can read every
     * message back; per-address limits off (every client is 127.0.0.1). */
    const char *argv[] = {p->gateway_bin,
                          "--port",
                          port,
                          "--bind",
                          "127.0.0.1",
                          "--redis",
                          redis,
                          "--jwt-secret",
                          CH_JWT_SECRET,
                          "--node-id",
                          g->name,
                          "--history",
                          "100000",
                          "--login-rate",
                          "0",
                          "--max-conns-per-ip",
                          "0",
                          "--room-create-rate",
                          "0",
                          "--drain-grace",
                          "0",
                          "--drain-timeout",
                          "2",
                          "--log-level",
                          "info",
                          NULL};
    g->expect_exit = false;
    g->pid = spawn(argv, g->log_path, NULL);
    return g->pid > 0 ? 0 : -1;
}

void *ch_redis_cmd(struct ch_procs *p, int timeout_ms, const char *fmt, ...)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", p->redis.port, tv);
    redisReply *r = NULL;
    va_list ap;

    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

int ch_redis_wait(struct ch_procs *p, int timeout_ms)
{
    double deadline = mono_ms() + timeout_ms;

    while (mono_ms() < deadline) {
        redisReply *r = ch_redis_cmd(p, 500, "PING");

        if (r) {
            bool ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            freeReplyObject(r);
            if (ok)
                return 0;
        }
        usleep(50000);
    }
    return -1;
}

int ch_gw_wait(struct ch_procs *p, int i, int timeout_ms)
{
    double deadline = mono_ms() + timeout_ms;
    char url[64];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", p->gw[i].port);
    while (mono_ms() < deadline) {
        char *body = NULL;
        int st = chat_http_request(url, "GET", "/healthz", NULL, NULL, 0, &body, 1000);

        free(body);
        if (st == 200)
            return 0;
        usleep(50000);
    }
    return -1;
}

static void describe(char *buf, size_t len, int status)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", status);
}

static void reaped(struct ch_proc *pr, int status)
{
    describe(pr->last_status, sizeof(pr->last_status), status);
    pr->pid = 0;
    pr->stopped = false;
    if (!pr->expect_exit) {
        pr->unexpected_exits++;
        fprintf(stderr, "chaos: %s exited on its own: %s (log %s)\n", pr->name, pr->last_status,
                pr->log_path);
    }
    pr->expect_exit = false;
}

void ch_reap(struct ch_procs *p)
{
    int status;

    for (int i = -1; i < p->n_gw; i++) {
        struct ch_proc *pr = i < 0 ? &p->redis : &p->gw[i];

        if (pr->pid > 0 && waitpid(pr->pid, &status, WNOHANG) == pr->pid)
            reaped(pr, status);
    }
}

int ch_proc_stop(struct ch_procs *p, struct ch_proc *pr, int timeout_ms)
{
    double deadline = mono_ms() + timeout_ms;
    int status;

    (void)p;
    if (pr->pid <= 0)
        return -1;
    pr->expect_exit = true;
    kill(pr->pid, SIGTERM);
    if (pr->stopped)
        kill(pr->pid, SIGCONT);
    while (mono_ms() < deadline) {
        pid_t r = waitpid(pr->pid, &status, WNOHANG);

        if (r == pr->pid) {
            describe(pr->last_status, sizeof(pr->last_status), status);
            pr->pid = 0;
            pr->stopped = false;
            pr->expect_exit = false;
            return status;
        }
        if (r < 0 && errno != EINTR)
            break;
        usleep(10000);
    }
    if (pr->pid > 0) {
        kill(pr->pid, SIGKILL);
        waitpid(pr->pid, &status, 0);
        describe(pr->last_status, sizeof(pr->last_status), status);
    }
    pr->pid = 0;
    pr->stopped = false;
    pr->expect_exit = false;
    return -1;
}

void ch_stop_all(struct ch_procs *p)
{
    for (int i = 0; i < p->n_gw; i++)
        ch_proc_stop(p, &p->gw[i], 5000);
    ch_proc_stop(p, &p->redis, 5000);
}
