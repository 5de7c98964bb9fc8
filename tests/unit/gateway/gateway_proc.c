/* The gateway process and raw HTTP client behind gateway_proc.h. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>

#include "gateway_proc.h"
#include "tests.h"

extern char **environ;

#define START_TIMEOUT_MS 15000

struct tree {
    char dir[64]; /* web/, secret.txt next to it, gateway-<pid>.log */
    char web[96];
};

struct gw_proc {
    pid_t pid;
    int port;
    char log_path[128];
};

/* Fixture state: the tree is made in the runner process and inherited by
 * each forked test; the gateway belongs to one test's process. */
static struct tree tree;
static struct gw_proc gw;

static void tg_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int64_t tg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- processes ---- */

/* Drops every CHAT_* variable so the gateway sees only our flags. */
static void clear_chat_env(void)
{
    char *names[256];
    int n = 0;
    for (char **e = environ; *e && n < 256; e++) {
        if (strncmp(*e, "CHAT_", 5) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        names[n++] = strndup(*e, eq ? (size_t)(eq - *e) : strlen(*e));
    }
    for (int i = 0; i < n; i++) {
        if (names[i])
            unsetenv(names[i]);
        free(names[i]);
    }
    /* No load-balancer grace when a test stops its gateway. */
    setenv("CHAT_DRAIN_GRACE", "0", 1);
}

pid_t tg_spawn(const char *const *argv, const char *const *env, int out_fd, int err_fd)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int null_fd = open("/dev/null", O_RDWR);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
    dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
    clear_chat_env();
    for (; env && *env; env++)
        putenv((char *)*env);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

/* Waits up to timeout_ms for pid; returns its wait status, or -1 after
 * having to SIGKILL it. */
int tg_wait_pid(pid_t pid, int timeout_ms)
{
    int64_t deadline = tg_mono_ms() + timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0 && errno != EINTR)
            return -1;
        if (tg_mono_ms() >= deadline)
            break;
        tg_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* A loopback port nobody listens on (bound a moment ago, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

void tg_make_tree(void)
{
    snprintf(tree.dir, sizeof(tree.dir), "/tmp/unit_gateway.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tree.dir));
    snprintf(tree.web, sizeof(tree.web), "%s/web", tree.dir);
    ck_assert_int_eq(mkdir(tree.web, 0755), 0);
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/sub", tree.web);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snprintf(sub, sizeof(sub), "%s/emptydir", tree.web);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    write_file(tree.web, "index.html", TG_INDEX_HTML, strlen(TG_INDEX_HTML));
    write_file(tree.web, "app.js", TG_APP_JS, strlen(TG_APP_JS));
    write_file(tree.web, "style.css", TG_STYLE_CSS, strlen(TG_STYLE_CSS));
    write_file(tree.web, "logo.png", png, sizeof(png));
    write_file(tree.web, "sub/index.html", TG_SUB_HTML, strlen(TG_SUB_HTML));
    write_file(tree.dir, "secret.txt", TG_SECRET_FILE, strlen(TG_SECRET_FILE));
}

void tg_remove_tree(void)
{
    static const char *const files[] = {"web/index.html", "web/app.js",         "web/style.css",
                                        "web/logo.png",   "web/sub/index.html", "secret.txt"};
    static const char *const dirs[] = {"web/sub", "web/emptydir", "web", ""};
    char path[512];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tree.dir, files[i]);
        unlink(path);
    }
    DIR *d = opendir(tree.dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "gateway-", 8) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tree.dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tree.dir, dirs[i]);
        rmdir(path);
    }
}

/* The port from the gateway's "msg=listening ... port=N" log line, 0 while
 * it is not there yet. */
static int logged_port(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return 0;
    char line[1024];
    int port = 0;
    while (!port && fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "msg=listening ");
        p = p ? strstr(p, " port=") : NULL;
        if (p)
            port = atoi(p + 6);
    }
    fclose(f);
    return port;
}

static void dump_log(const struct gw_proc *p)
{
    FILE *f = fopen(p->log_path, "r");
    if (!f)
        return;
    char line[1024];
    fprintf(stderr, "---- gateway log ----\n");
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

static void gateway_start(struct gw_proc *p, const char *const *env)
{
    /* A test may set its own CHAT_MAX_MESSAGE: the flag would win over it. */
    bool own_max = false;
    for (const char *const *e = env; e && *e; e++)
        own_max = own_max || strncmp(*e, "CHAT_MAX_MESSAGE=", 17) == 0;
    char redis[64];
    snprintf(redis, sizeof(redis), "redis://127.0.0.1:%d/0", closed_port());
    const char *const argv[] = {GATEWAY_BIN,
                                "--bind=127.0.0.1",
                                "--port=0",
                                "--redis",
                                redis,
                                "--jwt-secret=" TG_SECRET,
                                "--static-dir",
                                tree.web,
                                "--node-id=unitgw",
                                "--drain-timeout=2",
                                "--log-level=info",
                                "--echo",
                                own_max ? NULL : "--max-message=4096",
                                NULL};
    int log_fd = open(p->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(log_fd, 0);
    p->pid = tg_spawn(argv, env, log_fd, log_fd);
    close(log_fd);
    ck_assert_int_gt(p->pid, 0);
    int64_t deadline = tg_mono_ms() + START_TIMEOUT_MS;
    while (!(p->port = logged_port(p->log_path))) {
        int status;
        if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
            p->pid = 0;
            dump_log(p);
            ck_abort_msg("chat-gateway exited during startup (status %d)", status);
        }
        if (tg_mono_ms() > deadline) {
            dump_log(p);
            ck_abort_msg("chat-gateway did not log its port within %d ms", START_TIMEOUT_MS);
        }
        tg_sleep_ms(10);
    }
}

int tg_gateway_stop(int timeout_ms)
{
    if (gw.pid <= 0)
        return -1;
    kill(gw.pid, SIGTERM);
    int status = tg_wait_pid(gw.pid, timeout_ms);
    gw.pid = 0;
    return status;
}

int tg_port(void)
{
    return gw.port;
}

void tg_setup(void)
{
    alarm(TG_WATCHDOG_SEC);
    memset(&gw, 0, sizeof(gw));
    snprintf(gw.log_path, sizeof(gw.log_path), "%s/gateway-%d.log", tree.dir, (int)getpid());
    gateway_start(&gw, NULL);
}

void tg_gateway_restart(const char *const *env)
{
    int status = tg_gateway_stop(5000);
    ck_assert_msg(status == 0, "chat-gateway did not exit cleanly on SIGTERM (status %d)", status);
    gateway_start(&gw, env);
}

void tg_teardown(void)
{
    bool running = gw.pid > 0;
    int status = tg_gateway_stop(5000);
    alarm(0);
    /* A clean drain exits 0; under ASan a leak or error would show here. */
    if (running && status != 0)
        dump_log(&gw);
    ck_assert_msg(!running || status == 0,
                  "chat-gateway did not exit cleanly on SIGTERM (status %d)", status);
}

/* ---- raw HTTP ---- */

struct tg_conn *tg_conn_open(void)
{
    struct tg_conn *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    c->cap = 256 * 1024;
    c->buf = malloc(c->cap);
    ck_assert_ptr_nonnull(c->buf);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c->fd, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)gw.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_msg(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
                  strerror(errno));
    return c;
}

void tg_conn_close(struct tg_conn *c)
{
    close(c->fd);
    free(c->buf);
    free(c);
}

void tg_conn_send(struct tg_conn *c, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        ck_assert_msg(n > 0, "send: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

void tg_conn_sends(struct tg_conn *c, const char *text)
{
    tg_conn_send(c, text, strlen(text));
}

/* Reads more bytes: >0 bytes read, 0 on EOF or reset, -1 on timeout. */
int tg_conn_fill(struct tg_conn *c)
{
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int r = poll(&pfd, 1, TG_IO_TIMEOUT_MS);
    if (r == 0)
        return -1;
    ck_assert_int_gt(r, 0);
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        ck_assert_ptr_nonnull(c->buf);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n < 0 && errno == ECONNRESET)
        return 0;
    ck_assert_msg(n >= 0, "recv: %s", strerror(errno));
    c->len += (size_t)n;
    return (int)n;
}

static const char *find_bytes(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* The value of header name in r (case-insensitive), copied to out. */
bool tg_resp_header(const struct tg_resp *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r");
            snprintf(out, outlen, "%.*s", (int)vlen, v);
            return true;
        }
    }
    return false;
}

/* Reads one response; head_only for answers to HEAD.  status -1 when the
 * connection closed or timed out before a complete head. */
void tg_read_resp(struct tg_conn *c, struct tg_resp *r, bool head_only)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    const char *end;
    while (!(end = find_bytes(c->buf, c->len, "\r\n\r\n")))
        if (tg_conn_fill(c) <= 0)
            return;
    size_t head_len = (size_t)(end - c->buf) + 4;
    ck_assert_uint_lt(head_len, sizeof(r->head));
    memcpy(r->head, c->buf, head_len);
    r->head[head_len] = '\0';
    int minor;
    ck_assert_msg(sscanf(r->head, "HTTP/1.%d %d ", &minor, &r->status) == 2, "bad status line: %s",
                  r->head);
    char cl[32];
    bool have_len = tg_resp_header(r, "Content-Length", cl, sizeof(cl));
    bool no_body = head_only || r->status == 304 || r->status == 204 || r->status < 200;
    size_t want = no_body ? 0 : have_len ? strtoull(cl, NULL, 10) : SIZE_MAX;
    while (c->len - head_len < want)
        if (tg_conn_fill(c) <= 0) {
            ck_assert_msg(want == SIZE_MAX, "connection closed inside a body");
            want = c->len - head_len;
        }
    r->body = malloc(want + 1);
    ck_assert_ptr_nonnull(r->body);
    memcpy(r->body, c->buf + head_len, want);
    r->body[want] = '\0';
    r->body_len = want;
    memmove(c->buf, c->buf + head_len + want, c->len - head_len - want);
    c->len -= head_len + want;
}

void tg_resp_free(struct tg_resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* True when the server closes the connection (EOF or reset) in time. */
bool tg_conn_closed_by_peer(struct tg_conn *c)
{
    int64_t deadline = tg_mono_ms() + TG_IO_TIMEOUT_MS;
    while (tg_mono_ms() < deadline) {
        size_t before = c->len;
        int n = tg_conn_fill(c);
        if (n == 0)
            return true;
        if (n < 0)
            return false;
        c->len = before; /* extra bytes after the answer: ignore them */
    }
    return false;
}

/* Sends req on a fresh connection and reads one answer. */
struct tg_resp *tg_exchange(const char *req, size_t len, bool *closed)
{
    struct tg_conn *c = tg_conn_open();
    tg_conn_send(c, req, len);
    struct tg_resp *r = malloc(sizeof(*r));
    ck_assert_ptr_nonnull(r);
    tg_read_resp(c, r, false);
    if (closed)
        *closed = tg_conn_closed_by_peer(c);
    tg_conn_close(c);
    return r;
}

struct tg_resp *tg_get(const char *path)
{
    char req[16384];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    ck_assert(n > 0 && (size_t)n < sizeof(req));
    return tg_exchange(req, (size_t)n, NULL);
}

void tg_resp_release(struct tg_resp *r)
{
    tg_resp_free(r);
    free(r);
}

/* The "code" of a JSON error body. */
void tg_expect_error_code(const struct tg_resp *r, const char *code)
{
    char ct[128];
    ck_assert_msg(tg_resp_header(r, "Content-Type", ct, sizeof(ct)) &&
                      strncmp(ct, "application/json", 16) == 0,
                  "error %d is not JSON: %s", r->status, r->head);
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
    ck_assert_msg(j != NULL, "error body is not JSON: %s", r->body);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    ck_assert_msg(got && strcmp(got, code) == 0, "error code %s, want %s", got ? got : "(none)",
                  code);
    ck_assert(json_is_string(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
}

void tg_expect_status(const char *path, int status)
{
    struct tg_resp *r = tg_get(path);
    ck_assert_msg(r->status == status, "GET %s: %d, want %d", path, r->status, status);
    ck_assert_msg(!strstr(r->body, "TOPSECRET"), "GET %s leaked the secret", path);
    tg_resp_release(r);
}
