#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <http_parser.h>

#include "config.h"
#include "conn.h"
#include "dict.h"
#include "log.h"
#include "metrics.h"

/* A client that sends nothing for this long before finishing its request is
 * dropped (slowloris). */
#define GW_HTTP_IDLE_SEC 30
/* How long a closed connection waits for its peer's FIN (conn_linger). */
#define GW_LINGER_SEC 2
/* Before the handshake we never buffer more than one maximal request. */
#define GW_HTTP_READ_HIGH (GW_HTTP_MAX_HEAD + GW_HTTP_MAX_BODY + 4096)

enum conn_state { CONN_HTTP, CONN_UPGRADED };

struct gw_conn {
    struct gw_conns *set;
    uint64_t id;
    struct bufferevent *bev;
    enum conn_state state;
    char peer[INET6_ADDRSTRLEN + 8];
    char addr[INET6_ADDRSTRLEN]; /* the peer without its port: per-address limits */
    int64_t header_deadline_ms;  /* 408 past it; 0 while no request has begun */

    http_parser parser;
    struct gw_http_request req;
    size_t head_bytes;
    bool last_was_value;
    bool headers_done;
    bool message_done;
    int limit_status; /* 431 or 413 when a limit was crossed */

    const struct gw_conn_upgrade_ops *ops;
    void *owner;

    int in_callback;
    int holds;     /* async operations (Redis replies) that will come back to c */
    bool awaiting; /* a request is being answered asynchronously */
    bool parsing;  /* parse_http is on the stack */
    bool closing;  /* close once output drains */
    bool lingering; /* output flushed and half-closed: input discarded until EOF */
    bool owner_told; /* the upgrade owner heard on_closed */
    bool dead;     /* free when the callback unwinds */
    LIST_ENTRY(gw_conn) link;
};

struct gw_conns {
    struct gw_ctx *ctx;
    gw_conn_request_cb on_request;
    size_t count;
    size_t max; /* connections past which new ones get 503 */
    struct gw_dict *per_addr; /* address -> open connections (as an intptr_t) */
    LIST_HEAD(, gw_conn) conns;
};

static http_parser_settings parser_settings;

const char *gw_http_header(const struct gw_http_request *req, const char *name)
{
    for (int i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

static void request_reset(struct gw_http_request *req)
{
    free(req->url);
    free(req->path);
    free(req->query);
    for (int i = 0; i < req->nheaders; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->body);
    memset(req, 0, sizeof(*req));
}

static void conn_reset_parser(struct gw_conn *c)
{
    request_reset(&c->req);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->head_bytes = 0;
    c->header_deadline_ms = 0;
    c->last_was_value = false;
    c->headers_done = false;
    c->message_done = false;
    c->limit_status = 0;
}

/* Adds delta to the open connections of addr; returns the new count. */
static intptr_t addr_count(struct gw_conns *set, const char *addr, int delta)
{
    intptr_t n = (intptr_t)gw_dict_get(set->per_addr, addr) + delta;
    if (n <= 0)
        gw_dict_del(set->per_addr, addr);
    else if (gw_dict_set(set->per_addr, addr, (void *)n) != GW_OK)
        return n; /* no memory: the limit is not enforced for this one */
    return n;
}

/* The one place a connection is freed. */
static void conn_free(struct gw_conn *c)
{
    struct gw_conns *set = c->set;
    if (c->ops && c->ops->on_free)
        c->ops->on_free(c->owner);
    LIST_REMOVE(c, link);
    set->count--;
    addr_count(set, c->addr, -1);
    gw_metrics_gauge_add(set->ctx->metrics, GW_G_HTTP_CONNECTIONS, -1);
    bufferevent_free(c->bev);
    request_reset(&c->req);
    chat_log(CHAT_LOG_DEBUG, "conn_closed conn=%llu", (unsigned long long)c->id);
    free(c);
}

/* Frees c if it was marked dead and no callback of its own is on the stack. */
static void conn_maybe_free(struct gw_conn *c)
{
    if (c->dead && c->in_callback == 0 && c->holds == 0)
        conn_free(c);
}

static void parse_http(struct gw_conn *c);

void gw_conn_hold(struct gw_conn *c)
{
    c->holds++;
}

bool gw_conn_release(struct gw_conn *c)
{
    c->holds--;
    if (c->dead) {
        conn_maybe_free(c);
        return false;
    }
    return true;
}

/* The upgrade owner hears once that the connection is over for it. */
static void tell_owner_closed(struct gw_conn *c, bool eof)
{
    if (c->owner_told || !c->ops || !c->ops->on_closed)
        return;
    c->owner_told = true;
    c->ops->on_closed(c->owner, eof);
}

static void conn_kill(struct gw_conn *c)
{
    if (c->dead)
        return;
    c->dead = true;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    tell_owner_closed(c, false);
}

/*
 * Everything queued is out: send FIN (half-close) and read and discard until
 * the peer closes or GW_LINGER_SEC pass.  Closing the socket with unread
 * input would make the kernel send RST, and the peer would lose what we sent
 * last (a WebSocket close frame, an error response) and see a reset instead.
 */
static void conn_linger(struct gw_conn *c)
{
    if (c->lingering || c->dead)
        return;
    c->lingering = true;
    tell_owner_closed(c, false);
    if (c->dead)
        return;
    evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
    if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0) {
        conn_kill(c);
        return;
    }
    struct timeval linger = {GW_LINGER_SEC, 0};
    bufferevent_set_timeouts(c->bev, &linger, NULL);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
}

void gw_conn_close(struct gw_conn *c, bool abort)
{
    if (c->dead)
        return;
    if (abort) {
        conn_kill(c);
        return;
    }
    c->closing = true;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_linger(c);
}

bool gw_conn_closing(const struct gw_conn *c)
{
    return c->closing || c->dead;
}

uint64_t gw_conn_id(const struct gw_conn *c)
{
    return c->id;
}

struct gw_ctx *gw_conn_ctx(const struct gw_conn *c)
{
    return c->set->ctx;
}

const char *gw_conn_peer(const struct gw_conn *c)
{
    return c->peer;
}

const char *gw_conn_addr(const struct gw_conn *c)
{
    return c->addr;
}

struct evbuffer *gw_conn_input(struct gw_conn *c)
{
    return bufferevent_get_input(c->bev);
}

struct evbuffer *gw_conn_output(struct gw_conn *c)
{
    return bufferevent_get_output(c->bev);
}

void gw_conn_set_read_limit(struct gw_conn *c, size_t bytes)
{
    bufferevent_setwatermark(c->bev, EV_READ, 0, bytes);
}

void gw_conn_pause_reading(struct gw_conn *c, size_t resume_below)
{
    if (c->dead || c->closing)
        return;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, resume_below, 0);
}

void gw_conn_resume_reading(struct gw_conn *c)
{
    if (c->dead || c->closing)
        return;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
}

static const char *status_text(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

void gw_conn_respond(struct gw_conn *c, const struct gw_http_request *req, int status,
                     const char *content_type, const char *extra_headers, const void *body,
                     size_t len)
{
    if (c->dead)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    /* Framing errors close the connection: after a limit was crossed or a
     * parse failed the rest of the stream cannot be trusted. */
    bool framing_error =
        status == 400 || status == 408 || status == 413 || status == 431 || status == 500;
    bool keep =
        req && req->keep_alive && !framing_error && !c->closing && !c->set->ctx->draining;
    int minor = req ? req->http_minor : 1;
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", minor > 0 ? 1 : 0, status, status_text(status));
    if (content_type)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    if (status != 304 && status != 204)
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
    evbuffer_add_printf(out, "Connection: %s\r\n", keep ? "keep-alive" : "close");
    evbuffer_add_printf(out, "X-Content-Type-Options: nosniff\r\n");
    if (extra_headers)
        evbuffer_add(out, extra_headers, strlen(extra_headers));
    evbuffer_add(out, "\r\n", 2);
    bool head_only = req && req->method == HTTP_HEAD;
    if (body && len && !head_only && status != 304)
        evbuffer_add(out, body, len);
    gw_metrics_add(c->set->ctx->metrics, GW_M_HTTP_REQUESTS, 1);
    if (!keep) {
        gw_conn_close(c, false);
        return;
    }
    if (c->awaiting && c->state == CONN_HTTP) {
        c->awaiting = false;
        /* An asynchronous answer: pipelined requests waited for it. */
        if (!c->parsing) {
            c->in_callback++;
            parse_http(c);
            c->in_callback--;
        }
    }
}

void gw_conn_respond_error(struct gw_conn *c, const struct gw_http_request *req, int status,
                           const char *code, const char *message)
{
    char body[512];
    /* code and message are our own constants: no JSON escaping needed. */
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                     message);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    gw_conn_respond(c, req, status, "application/json", NULL, body, (size_t)n);
}

void gw_conn_set_upgraded(struct gw_conn *c, const struct gw_conn_upgrade_ops *ops, void *owner)
{
    c->state = CONN_UPGRADED;
    c->ops = ops;
    c->owner = owner;
    /* The request that asked for the upgrade is done with. */
    request_reset(&c->req);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
}

/* ---- http-parser callbacks ---- */

static int append(char **dst, const char *at, size_t len)
{
    size_t old = *dst ? strlen(*dst) : 0;
    char *p = realloc(*dst, old + len + 1);
    if (!p)
        return -1;
    memcpy(p + old, at, len);
    p[old + len] = '\0';
    *dst = p;
    return 0;
}

static int head_limit(struct gw_conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > GW_HTTP_MAX_HEAD) {
        c->limit_status = 431;
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    if (head_limit(c, len) < 0 || append(&c->req.url, at, len) < 0)
        return -1;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    if (head_limit(c, len + 4) < 0)
        return -1;
    struct gw_http_request *r = &c->req;
    if (r->nheaders == 0 || c->last_was_value) {
        if (r->nheaders == GW_HTTP_MAX_HEADERS) {
            c->limit_status = 431;
            return -1;
        }
        r->nheaders++;
    }
    c->last_was_value = false;
    return append(&r->headers[r->nheaders - 1].name, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    if (head_limit(c, len) < 0)
        return -1;
    struct gw_http_request *r = &c->req;
    c->last_was_value = true;
    if (r->nheaders == 0)
        return -1;
    return append(&r->headers[r->nheaders - 1].value, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct gw_conn *c = p->data;
    struct gw_http_request *r = &c->req;
    c->headers_done = true;
    if (p->http_major != 1 || p->http_minor > 1)
        return -1;
    /* A header with a name and no value (possible with http-parser) gets "". */
    for (int i = 0; i < r->nheaders; i++)
        if (!r->headers[i].value && append(&r->headers[i].value, "", 0) < 0)
            return -1;
    if (p->content_length != ULLONG_MAX && p->content_length > GW_HTTP_MAX_BODY) {
        c->limit_status = 413;
        return -1;
    }
    r->method = p->method;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->keep_alive = http_should_keep_alive(p);
    if (!r->url)
        return -1;
    const char *q = strchr(r->url, '?');
    size_t plen = q ? (size_t)(q - r->url) : strlen(r->url);
    r->path = strndup(r->url, plen);
    if (q)
        r->query = strdup(q + 1);
    if (!r->path || (q && !r->query))
        return -1;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    struct gw_http_request *r = &c->req;
    if (r->body_len + len > GW_HTTP_MAX_BODY) {
        c->limit_status = 413;
        return -1;
    }
    char *b = realloc(r->body, r->body_len + len + 1);
    if (!b)
        return -1;
    memcpy(b + r->body_len, at, len);
    r->body_len += len;
    b[r->body_len] = '\0';
    r->body = b;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct gw_conn *c = p->data;
    c->message_done = true;
    /* One request at a time: the next one is parsed after this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

static void parse_http(struct gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    c->parsing = true;
    while (!c->dead && !c->closing && c->state == CONN_HTTP && !c->awaiting) {
        if (c->message_done)
            conn_reset_parser(c); /* the previous request has been answered */
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        if (!c->header_deadline_ms && !c->headers_done)
            c->header_deadline_ms =
                gw_mono_ms() + (int64_t)c->set->ctx->cfg->header_timeout * 1000;
        const char *data = (const char *)evbuffer_pullup(in, -1);
        size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        evbuffer_drain(in, n);
        if (c->limit_status) {
            int st = c->limit_status;
            gw_conn_respond_error(c, NULL, st, "too_large",
                                  st == 431 ? "request header too large"
                                            : "request body too large");
            break;
        }
        if (err != HPE_OK && err != HPE_PAUSED) {
            chat_log(CHAT_LOG_DEBUG, "http_bad_request conn=%llu reason=%s",
                     (unsigned long long)c->id, http_errno_name(err));
            gw_conn_respond_error(c, NULL, 400, "bad_request", "malformed HTTP request");
            break;
        }
        if (!c->message_done)
            break; /* need more bytes */
        c->awaiting = true;
        c->set->on_request(c->set->ctx, c, &c->req);
    }
    c->parsing = false;
    if (c->state == CONN_UPGRADED && !c->dead && evbuffer_get_length(in) > 0)
        c->ops->on_read(c->owner);
}

/* ---- bufferevent callbacks ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct gw_conn *c = arg;
    c->in_callback++;
    if (c->closing) {
        /* Nothing more is answered: what arrives now is read to keep the
         * kernel from resetting the connection, and dropped. */
        struct evbuffer *in = bufferevent_get_input(c->bev);
        evbuffer_drain(in, evbuffer_get_length(in));
    } else if (c->state == CONN_HTTP) {
        parse_http(c);
    } else if (!c->dead) {
        c->ops->on_read(c->owner);
    }
    c->in_callback--;
    conn_maybe_free(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct gw_conn *c = arg;
    c->in_callback++;
    if (c->state == CONN_UPGRADED && !c->dead && c->ops->on_drained)
        c->ops->on_drained(c->owner);
    if (c->closing && !c->dead && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_linger(c);
    c->in_callback--;
    conn_maybe_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct gw_conn *c = arg;
    c->in_callback++;
    if (what & BEV_EVENT_TIMEOUT)
        chat_log(CHAT_LOG_DEBUG, "conn_timeout conn=%llu", (unsigned long long)c->id);
    if (!c->dead) {
        c->dead = true;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        tell_owner_closed(c, (what & BEV_EVENT_EOF) != 0);
    }
    c->in_callback--;
    conn_maybe_free(c);
}

struct gw_conn *gw_conn_new(struct gw_conns *set, int fd, const struct sockaddr *sa)
{
    struct gw_ctx *ctx = set->ctx;
    struct gw_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        evutil_closesocket(fd);
        return NULL;
    }
    c->bev = bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        evutil_closesocket(fd);
        free(c);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->set = set;
    c->id = ++ctx->next_conn_id;
    c->state = CONN_HTTP;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    snprintf(c->addr, sizeof(c->addr), "%s", host);
    conn_reset_parser(c);
    LIST_INSERT_HEAD(&set->conns, c, link);
    set->count++;
    intptr_t from_addr = addr_count(set, c->addr, 1);
    gw_metrics_gauge_add(ctx->metrics, GW_G_HTTP_CONNECTIONS, 1);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, GW_HTTP_READ_HIGH);
    struct timeval idle = {GW_HTTP_IDLE_SEC, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    chat_log(CHAT_LOG_DEBUG, "conn_open conn=%llu peer=%s", (unsigned long long)c->id, c->peer);
    /* Answered, not dropped: a client past a limit learns why. */
    int per_addr = ctx->cfg->max_conns_per_ip;
    if (set->max && set->count > set->max) {
        gw_metrics_add(ctx->metrics, GW_M_CONNS_REFUSED, 1);
        gw_conn_respond_error(c, NULL, 503, "unavailable", "too many connections");
    } else if (per_addr > 0 && from_addr > per_addr) {
        gw_metrics_add(ctx->metrics, GW_M_CONNS_REFUSED, 1);
        gw_conn_respond_error(c, NULL, 503, "unavailable", "too many connections from this address");
    }
    return c;
}

/* ---- the set ---- */

struct gw_conns *gw_conns_new(struct gw_ctx *ctx, gw_conn_request_cb on_request,
                              size_t max_connections)
{
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;
    struct gw_conns *set = calloc(1, sizeof(*set));
    if (!set)
        return NULL;
    set->ctx = ctx;
    set->on_request = on_request;
    set->max = max_connections;
    set->per_addr = gw_dict_new();
    if (!set->per_addr) {
        free(set);
        return NULL;
    }
    LIST_INIT(&set->conns);
    return set;
}

size_t gw_conns_count(const struct gw_conns *set)
{
    return set->count;
}

/* Calls fn for every connection; fn may close them. */
static void conns_each(struct gw_conns *set, void (*fn)(struct gw_conn *c, void *arg), void *arg)
{
    struct gw_conn *c = LIST_FIRST(&set->conns);
    while (c) {
        struct gw_conn *next = LIST_NEXT(c, link);
        c->in_callback++;
        fn(c, arg);
        c->in_callback--;
        /* fn may have killed c; free it now that nothing uses it. */
        conn_maybe_free(c);
        c = next;
    }
}

static void tick_one(struct gw_conn *c, void *arg)
{
    int64_t now = *(int64_t *)arg;
    if (c->state == CONN_UPGRADED && !c->dead && c->ops->on_tick)
        c->ops->on_tick(c->owner, now);
    /* A header dribbled a byte at a time keeps the idle timer fresh: the
     * deadline runs from the request's first byte, whatever comes after. */
    if (c->state == CONN_HTTP && !c->dead && !c->closing && !c->headers_done &&
        c->header_deadline_ms && now > c->header_deadline_ms) {
        chat_log(CHAT_LOG_DEBUG, "http_header_timeout conn=%llu", (unsigned long long)c->id);
        gw_conn_respond_error(c, NULL, 408, "timeout", "request header not complete in time");
    }
}

void gw_conns_tick(struct gw_conns *set, int64_t now_mono_ms)
{
    conns_each(set, tick_one, &now_mono_ms);
    int64_t unsent = 0;
    struct gw_conn *c;
    LIST_FOREACH(c, &set->conns, link)
    unsent += (int64_t)evbuffer_get_length(bufferevent_get_output(c->bev));
    gw_metrics_gauge_set(set->ctx->metrics, GW_G_UNSENT_BYTES, unsent);
}

static void drain_one(struct gw_conn *c, void *arg)
{
    (void)arg;
    if (c->dead)
        return;
    if (c->state == CONN_UPGRADED) {
        if (c->ops->on_drain)
            c->ops->on_drain(c->owner);
    } else if (!c->awaiting) {
        gw_conn_close(c, false);
    }
}

void gw_conns_drain(struct gw_conns *set)
{
    conns_each(set, drain_one, NULL);
}

void gw_conns_free(struct gw_conns *set)
{
    if (!set)
        return;
    while (!LIST_EMPTY(&set->conns)) {
        struct gw_conn *c = LIST_FIRST(&set->conns);
        if (!c->dead) {
            c->dead = true;
            tell_owner_closed(c, false);
        }
        conn_free(c);
    }
    gw_dict_free(set->per_addr);
    free(set);
}
