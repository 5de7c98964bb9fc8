#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <http_parser.h>

#include "config.h"
#include "conn.h"
#include "conn_internal.h"
#include "log.h"
#include "metrics.h"

/* HTTP/1.x on a connection: request framing with http-parser and its limits,
 * the parse loop (one request at a time), and responses. */

const char *gw_http_header(const struct gw_http_request *req, const char *name)
{
    for (int i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

void gw_conn_request_reset(struct gw_http_request *req)
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

bool gw_conn_reset_parser(struct gw_conn *c)
{
    if (c->http)
        gw_conn_request_reset(&c->http->req); /* frees what the zeroing below forgets */
    else if (!(c->http = malloc(sizeof(*c->http))))
        return false;
    *c->http = (struct gw_conn_parse){0};
    http_parser_init(&c->http->parser, HTTP_REQUEST);
    c->http->parser.data = c;
    c->header_deadline_ms = 0;
    return true;
}

void gw_conn_drop_parser(struct gw_conn *c)
{
    if (!c->http)
        return;
    gw_conn_request_reset(&c->http->req);
    free(c->http);
    c->http = NULL;
}

/* ---- responses ---- */

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

/* One line per answered request.  The path only: the query of an upgrade
 * carries the token.  Load balancer health checks and scrapes are debug, or
 * they would be most of the log; so are answers without a request (connection
 * limits, framing errors), which a flood makes by the thousand and the
 * metrics count. */
static void log_access(const struct gw_conn *c, const struct gw_http_request *req, int status,
                       size_t body_bytes)
{
    const char *path = req && req->path ? req->path : "-";
    bool polled = strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0;
    enum chat_log_level level = !req || polled ? CHAT_LOG_DEBUG : CHAT_LOG_INFO;
    if (!chat_log_enabled(level))
        return;
    /* Refusals come in floods (a client looping on 429, a full node): one
     * line a second, with how many were not logged. */
    unsigned suppressed = 0;
    if (status == 429 || status == 503) {
        int64_t now = gw_mono_ms();
        if (now - c->set->refusals_logged_ms < 1000) {
            c->set->refusals_unlogged++;
            return;
        }
        suppressed = c->set->refusals_unlogged;
        c->set->refusals_unlogged = 0;
        c->set->refusals_logged_ms = now;
    }
    chat_log(level,
             "http_access conn=%llu peer=%s method=%s path=\"%.256s\" status=%d bytes=%zu%s%.0u",
             (unsigned long long)c->id, c->peer,
             req ? http_method_str((enum http_method)req->method) : "-", path, status, body_bytes,
             suppressed ? " refusals_not_logged=" : "", suppressed);
}

void gw_conn_respond(struct gw_conn *c, const struct gw_http_request *req, int status,
                     const char *content_type, const char *extra_headers, const void *body,
                     size_t len)
{
    if (c->dead)
        return;
    struct evbuffer *out = c->out;
    /* Framing errors close the connection: after a limit was crossed or a
     * parse failed the rest of the stream cannot be trusted. */
    bool framing_error =
        status == 400 || status == 408 || status == 413 || status == 431 || status == 500;
    bool keep = req && req->keep_alive && !framing_error && !c->closing && !c->set->ctx->draining;
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
    gw_conn_queued(c);
    gw_metrics_add(c->set->ctx->metrics, GW_M_HTTP_REQUESTS, 1);
    log_access(c, req, status, head_only || status == 304 ? 0 : len);
    if (!keep) {
        gw_conn_close(c, false);
        return;
    }
    if (c->awaiting && c->state == CONN_HTTP) {
        c->awaiting = false;
        /* An asynchronous answer: pipelined requests waited for it. */
        if (!c->parsing) {
            c->in_callback++;
            gw_conn_parse_http(c);
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
    c->http->head_bytes += len;
    if (c->http->head_bytes > GW_HTTP_MAX_HEAD) {
        c->http->limit_status = 431;
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    if (head_limit(c, len) < 0 || append(&c->http->req.url, at, len) < 0)
        return -1;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    if (head_limit(c, len + 4) < 0)
        return -1;
    struct gw_http_request *r = &c->http->req;
    if (r->nheaders == 0 || c->http->last_was_value) {
        if (r->nheaders == GW_HTTP_MAX_HEADERS) {
            c->http->limit_status = 431;
            return -1;
        }
        r->nheaders++;
    }
    c->http->last_was_value = false;
    return append(&r->headers[r->nheaders - 1].name, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct gw_conn *c = p->data;
    if (head_limit(c, len) < 0)
        return -1;
    struct gw_http_request *r = &c->http->req;
    c->http->last_was_value = true;
    if (r->nheaders == 0)
        return -1;
    return append(&r->headers[r->nheaders - 1].value, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct gw_conn *c = p->data;
    struct gw_http_request *r = &c->http->req;
    c->http->headers_done = true;
    if (p->http_major != 1 || p->http_minor > 1)
        return -1;
    /* A header with a name and no value (possible with http-parser) gets "". */
    for (int i = 0; i < r->nheaders; i++)
        if (!r->headers[i].value && append(&r->headers[i].value, "", 0) < 0)
            return -1;
    if (p->content_length != ULLONG_MAX && p->content_length > GW_HTTP_MAX_BODY) {
        c->http->limit_status = 413;
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
    struct gw_http_request *r = &c->http->req;
    if (r->body_len + len > GW_HTTP_MAX_BODY) {
        c->http->limit_status = 413;
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
    c->http->message_done = true;
    /* One request at a time: the next one is parsed after this one is answered. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gw_conn_parse_http(struct gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    c->parsing = true;
    while (!c->dead && !c->closing && c->state == CONN_HTTP && !c->awaiting) {
        if (c->http->message_done)
            gw_conn_reset_parser(c); /* the previous request has been answered */
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        if (!c->header_deadline_ms && !c->http->headers_done)
            c->header_deadline_ms = gw_mono_ms() + (int64_t)c->set->ctx->cfg->header_timeout * 1000;
        const char *data = (const char *)evbuffer_pullup(in, -1);
        size_t n = http_parser_execute(&c->http->parser, &parser_settings, data, len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->http->parser);
        evbuffer_drain(in, n);
        if (c->http->limit_status) {
            int st = c->http->limit_status;
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
        if (!c->http->message_done)
            break; /* need more bytes */
        c->awaiting = true;
        c->set->on_request(c->set->ctx, c, &c->http->req);
    }
    c->parsing = false;
    if (c->state == CONN_UPGRADED)
        gw_conn_drop_parser(c); /* the upgrade's request has been read to its end */
    if (c->state == CONN_UPGRADED && !c->dead && evbuffer_get_length(in) > 0)
        c->ops->on_read(c->owner);
}
