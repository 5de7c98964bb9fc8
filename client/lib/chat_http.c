/*
 * URL and response-head parsing shared with the WebSocket client, and the
 * blocking HTTP helpers (chat_http_request, chat_http_raw, chat_login) used by
 * setup code.  The blocking helpers use poll() against one deadline so a
 * silent peer can never hang the caller.
 */
#include "chat_client.h"
#include "chat_http_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHAT_HTTP_MAX_RESPONSE (64u << 20)

void chat_url_deinit(struct chat_url *u)
{
    if (!u)
        return;
    free(u->host);
    free(u->port);
    free(u->path);
    free(u->host_header);
    memset(u, 0, sizeof(*u));
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int chat_url_parse(const char *url, struct chat_url *out)
{
    const char *p, *host, *host_end, *port = NULL;
    size_t port_len = 0;
    bool v6 = false;
    long port_num = 80;

    memset(out, 0, sizeof(*out));
    if (!url)
        return -1;
    for (p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return -1;
    }
    if (strncasecmp(url, "ws://", 5) == 0)
        p = url + 5;
    else if (strncasecmp(url, "http://", 7) == 0)
        p = url + 7;
    else
        return -1;

    if (*p == '[') {
        v6 = true;
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return -1;
        p = host_end + 1;
    } else {
        host = p;
        host_end = host + strcspn(host, ":/?#");
        p = host_end;
    }
    if (host_end == host || memchr(host, '@', (size_t)(host_end - host)))
        return -1;
    if (*p == ':') {
        port = ++p;
        port_len = strspn(port, "0123456789");
        if (port_len == 0 || port_len > 5)
            return -1;
        port_num = strtol(port, NULL, 10);
        if (port_num < 1 || port_num > 65535)
            return -1;
        p += port_len;
    }
    if (*p != '\0' && *p != '/' && *p != '?')
        return -1;

    out->host = dup_range(host, (size_t)(host_end - host));
    out->port = malloc(8);
    out->path = malloc(strlen(p) + 2);
    out->host_header = malloc((size_t)(host_end - host) + 16);
    if (!out->host || !out->port || !out->path || !out->host_header)
        goto fail;
    snprintf(out->port, 8, "%ld", port_num);
    /* A fragment is never sent; a bare query gets the root path. */
    snprintf(out->path, strlen(p) + 2, "%s%.*s", *p == '/' ? "" : "/", (int)strcspn(p, "#"), p);
    snprintf(out->host_header, (size_t)(host_end - host) + 16, "%s%s%s:%ld", v6 ? "[" : "",
             out->host, v6 ? "]" : "", port_num);
    return 0;
fail:
    chat_url_deinit(out);
    return -1;
}

bool chat_http_safe_value(const char *s)
{
    for (; *s; s++) {
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return false;
    }
    return true;
}

int chat_http_head_status(const char *head)
{
    int status = 0;

    if (strncmp(head, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)head[7]) || head[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++) {
        if (!isdigit((unsigned char)head[i]))
            return -1;
        status = status * 10 + (head[i] - '0');
    }
    if (head[12] != ' ' && head[12] != '\r')
        return -1;
    return status;
}

bool chat_http_head_value(const char *head, const char *name, char *out, size_t out_size)
{
    size_t name_len = strlen(name);
    const char *line = strstr(head, "\r\n");

    while (line && line[2] != '\r' && line[2] != '\0') {
        const char *start = line + 2, *end = strstr(start, "\r\n");

        if (!end)
            end = start + strlen(start);
        if ((size_t)(end - start) > name_len && strncasecmp(start, name, name_len) == 0 &&
            start[name_len] == ':') {
            const char *v = start + name_len + 1;
            const char *ve = end;

            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if ((size_t)(ve - v) >= out_size)
                return false;
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
            return true;
        }
        line = *end ? end : NULL;
    }
    return false;
}

size_t chat_http_head_length(const char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
    }
    return 0;
}

long chat_http_dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;

    for (;;) {
        char *end;
        unsigned long n;

        if (in >= len || !isxdigit((unsigned char)body[in]))
            return -1;
        errno = 0;
        n = strtoul(body + in, &end, 16);
        if (errno || end >= body + len)
            return -1;
        /* Skip chunk extensions up to the line end. */
        while (end < body + len && *end != '\n')
            end++;
        if (end >= body + len)
            return -1;
        in = (size_t)(end - body) + 1;
        if (n == 0)
            break;
        if (n > len - in)
            return -1;
        memmove(body + out, body + in, n);
        out += n;
        in += n;
        if (in + 2 > len || body[in] != '\r' || body[in + 1] != '\n')
            return -1;
        in += 2;
    }
    body[out] = '\0';
    return (long)out;
}

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int remaining_ms(long deadline)
{
    long left = deadline - now_ms();

    return left > 0 ? (int)left : 0;
}

/* Non-blocking connect to the first address that answers before deadline. */
static int tcp_connect(const struct chat_url *u, long deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int fd = -1;

    if (getaddrinfo(u->host, u->port, &hints, &res) != 0)
        return -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        struct pollfd pfd;
        int err = 0;
        socklen_t err_len = sizeof(err);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            if (poll(&pfd, 1, remaining_ms(deadline)) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0)
                break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* True once buf holds a whole response: a head plus a Content-Length body,
 * the end of a chunked body, or a head alone where no body can follow. */
static bool response_complete(const char *buf, size_t len, bool head_only)
{
    size_t head_len = chat_http_head_length(buf, len);
    char value[64];
    char *head;
    bool done = false;
    int status;

    if (head_len == 0)
        return false;
    head = dup_range(buf, head_len);
    if (!head)
        return false;
    status = chat_http_head_status(head);
    if (head_only || status == 101 || status == 204 || status == 304 ||
        (status >= 100 && status < 200)) {
        done = true;
    } else if (chat_http_head_value(head, "Content-Length", value, sizeof(value))) {
        done = len - head_len >= strtoull(value, NULL, 10);
    } else if (chat_http_head_value(head, "Transfer-Encoding", value, sizeof(value)) &&
               strcasecmp(value, "chunked") == 0) {
        done = (len - head_len >= 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0 &&
                (len - head_len == 5 || buf[len - 6] == '\n'));
    }
    free(head);
    return done;
}

long chat_http_raw(const char *base_url, const void *req, size_t req_len, char **resp,
                   int timeout_ms)
{
    struct chat_url u;
    long deadline = now_ms() + timeout_ms, result = -1;
    size_t sent = 0, len = 0, cap = 4096;
    bool head_only = req_len >= 5 && memcmp(req, "HEAD ", 5) == 0;
    char *buf = NULL;
    int fd = -1;

    *resp = NULL;
    if (chat_url_parse(base_url, &u) != 0)
        return -1;
    fd = tcp_connect(&u, deadline);
    buf = malloc(cap);
    if (fd < 0 || !buf)
        goto fail;
    /* Write and read together: a server may answer (413, 431) and close
     * before it has read everything we send. */
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (sent < req_len ? POLLOUT : 0)};
        int r = poll(&pfd, 1, remaining_ms(deadline));

        if (r <= 0)
            break;
        if (pfd.revents & POLLOUT) {
            ssize_t n = send(fd, (const char *)req + sent, req_len - sent, MSG_NOSIGNAL);

            if (n > 0)
                sent += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                sent = req_len; /* peer stopped reading; keep reading its answer */
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n;

            if (cap - len < 2048) {
                char *nb;

                if (cap >= CHAT_HTTP_MAX_RESPONSE)
                    break;
                nb = realloc(buf, cap * 2);
                if (!nb)
                    break;
                buf = nb;
                cap *= 2;
            }
            n = recv(fd, buf + len, cap - len - 1, 0);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break;
            if (n > 0) {
                len += (size_t)n;
                if (response_complete(buf, len, head_only))
                    break;
            }
        }
    }
    buf[len] = '\0';
    *resp = buf;
    buf = NULL;
    result = (long)len;
fail:
    free(buf);
    if (fd >= 0)
        close(fd);
    chat_url_deinit(&u);
    return result;
}

static bool has_content_type(const char *headers)
{
    for (const char *p = headers; p && *p; p++) {
        if ((p == headers || p[-1] == '\n') && strncasecmp(p, "Content-Type:", 13) == 0)
            return true;
    }
    return false;
}

int chat_http_request(const char *base_url, const char *method, const char *path,
                      const char *headers, const char *body, size_t body_len, char **resp_body,
                      int timeout_ms)
{
    struct chat_url u;
    char *req = NULL, *resp = NULL, *head = NULL, value[64];
    size_t req_len, head_len;
    long resp_len;
    int status = -1, n;

    *resp_body = NULL;
    if (!method || !path || chat_url_parse(base_url, &u) != 0)
        return -1;
    if (!body)
        body_len = 0;
    req_len = strlen(method) + strlen(path) + strlen(u.host_header) +
              (headers ? strlen(headers) : 0) + body_len + 256;
    req = malloc(req_len);
    if (!req)
        goto fail;
    n = snprintf(req, req_len,
                 "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s%sContent-Length: "
                 "%zu\r\n\r\n",
                 method, path, u.host_header, headers ? headers : "",
                 body && !has_content_type(headers) ? "Content-Type: application/json\r\n" : "",
                 body_len);
    if (n < 0 || (size_t)n + body_len >= req_len)
        goto fail;
    if (body_len)
        memcpy(req + n, body, body_len);
    resp_len = chat_http_raw(base_url, req, (size_t)n + body_len, &resp, timeout_ms);
    head_len = resp_len > 0 ? chat_http_head_length(resp, (size_t)resp_len) : 0;
    if (head_len == 0)
        goto fail;
    head = dup_range(resp, head_len);
    if (!head || (status = chat_http_head_status(head)) < 0)
        goto fail;
    memmove(resp, resp + head_len, (size_t)resp_len - head_len + 1);
    resp_len -= (long)head_len;
    if (chat_http_head_value(head, "Transfer-Encoding", value, sizeof(value)) &&
        strcasecmp(value, "chunked") == 0 && chat_http_dechunk(resp, (size_t)resp_len) < 0) {
        status = -1;
        goto fail;
    }
    *resp_body = resp;
    resp = NULL;
fail:
    free(head);
    free(resp);
    free(req);
    chat_url_deinit(&u);
    return status;
}

int chat_login(const char *base_url, const char *nickname, const char *avatar, char **token,
               char **user_id, int timeout_ms)
{
    json_t *req = NULL, *resp = NULL;
    char *body = NULL, *resp_body = NULL;
    const char *tok, *id;
    int status = -1;

    *token = NULL;
    *user_id = NULL;
    req = avatar ? json_pack("{s:s, s:s}", "nickname", nickname, "avatar", avatar)
                 : json_pack("{s:s}", "nickname", nickname);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!body)
        goto fail;
    status = chat_http_request(base_url, "POST", "/api/login", NULL, body, strlen(body), &resp_body,
                               timeout_ms);
    if (status != 200)
        goto fail;
    resp = resp_body ? json_loads(resp_body, 0, NULL) : NULL;
    if (!resp || json_unpack(resp, "{s:s, s:{s:s}}", "token", &tok, "user", "id", &id) != 0) {
        status = -1;
        goto fail;
    }
    *token = strdup(tok);
    *user_id = strdup(id);
    if (!*token || !*user_id) {
        free(*token);
        free(*user_id);
        *token = NULL;
        *user_id = NULL;
        status = -1;
    }
fail:
    json_decref(req);
    json_decref(resp);
    free(body);
    free(resp_body);
    return status;
}
