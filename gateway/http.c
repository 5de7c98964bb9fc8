#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <http_parser.h>
#include <jansson.h>

#include "bus.h"
#include "config.h"
#include "conn.h"
#include "handlers.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "penalty.h"
#include "protocol.h"
#include "session.h"
#include "static.h"
#include "store.h"
#include "token.h"
#include "ws.h"
#include "wsdeflate.h"
#include "wshandshake.h"

#define GW_GUEST_TTL_SEC (24 * 3600)

static void respond_json(struct gw_conn *c, const struct gw_http_request *req, int status,
                         json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        gw_conn_respond_error(c, req, 500, "internal", "out of memory");
    } else {
        gw_conn_respond(c, req, status, "application/json", "Cache-Control: no-store\r\n", text,
                        strlen(text));
    }
    free(text);
    json_decref(body);
}

bool gw_http_origin_allowed(const char *origins, const char *origin, const char *host)
{
    if (!origin)
        return true;
    if (!origins || !*origins) {
        const char *sep = strstr(origin, "://");
        return sep && host && strcasecmp(sep + 3, host) == 0;
    }
    size_t olen = strlen(origin);
    while (olen > 0 && origin[olen - 1] == '/')
        olen--;
    const char *p = origins;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        size_t len = (size_t)(end - p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '/'))
            len--;
        if ((len == 1 && *p == '*') || (len == olen && len > 0 && strncasecmp(p, origin, len) == 0))
            return true;
        p = end;
    }
    return false;
}

bool gw_http_find_token(const struct gw_http_request *req, char *out, size_t outlen)
{
    const char *auth = gw_http_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        const char *t = auth + 7;
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        if (len == 0 || len >= outlen)
            return false;
        memcpy(out, t, len + 1);
        return true;
    }
    for (const char *q = req->query; q && *q;) {
        const char *amp = strchr(q, '&');
        size_t plen = amp ? (size_t)(amp - q) : strlen(q);
        if (plen > 6 && strncmp(q, "token=", 6) == 0) {
            size_t n = 0;
            for (size_t i = 6; i < plen; i++) {
                char ch = q[i];
                if (ch == '%' && i + 2 < plen + 1 && chat_hexval(q[i + 1]) >= 0 &&
                    chat_hexval(q[i + 2]) >= 0) {
                    ch = (char)(chat_hexval(q[i + 1]) * 16 + chat_hexval(q[i + 2]));
                    i += 2;
                } else if (ch == '+') {
                    ch = ' ';
                }
                if (n + 1 >= outlen)
                    return false;
                out[n++] = ch;
            }
            out[n] = '\0';
            return n > 0;
        }
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

bool gw_http_query_is(const struct gw_http_request *req, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    for (const char *q = req->query; q && *q;) {
        const char *amp = strchr(q, '&');
        size_t plen = amp ? (size_t)(amp - q) : strlen(q);
        if (plen == nlen + 1 + vlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=' &&
            strncmp(q + nlen + 1, value, vlen) == 0)
            return true;
        q = amp ? amp + 1 : NULL;
    }
    return false;
}

/* ---- /healthz and /metrics ---- */

static bool redis_up(const struct gw_ctx *ctx)
{
    return gw_bus_up(ctx->bus) && gw_bus_subscriber_up(ctx->bus);
}

static void route_healthz(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    bool up = redis_up(ctx);
    bool delivering = gw_bus_delivery_ok(ctx->bus);
    const char *status = ctx->draining ? "draining" : up && delivering ? "ok" : "degraded";
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:I}", "status", status, "node", ctx->cfg->node_id, "redis",
                  up ? "up" : "down", "delivery", delivering ? "ok" : "stalled", "connections",
                  (json_int_t)gw_metrics_gauge(ctx->metrics, GW_G_CONNECTIONS));
    respond_json(c, req, (!ctx->draining && up && delivering) ? 200 : 503, body);
}

static void route_metrics(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    struct evbuffer *buf = evbuffer_new();
    if (!buf) {
        gw_conn_respond_error(c, req, 500, "internal", "out of memory");
        return;
    }
    gw_metrics_render(ctx->metrics, ctx->cfg->node_id, buf);
    evbuffer_add_printf(buf,
                        "# HELP chat_redis_up 1 when both Redis connections are up\n"
                        "# TYPE chat_redis_up gauge\nchat_redis_up{node=\"%s\"} %d\n"
                        "# HELP chat_delivery_ok 1 while this node's pub/sub probe comes back\n"
                        "# TYPE chat_delivery_ok gauge\nchat_delivery_ok{node=\"%s\"} %d\n",
                        ctx->cfg->node_id, redis_up(ctx) ? 1 : 0, ctx->cfg->node_id,
                        gw_bus_delivery_ok(ctx->bus) ? 1 : 0);
    size_t len = evbuffer_get_length(buf);
    const char *text = (const char *)evbuffer_pullup(buf, -1);
    gw_conn_respond(c, req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, text, len);
    evbuffer_free(buf);
}

/* ---- /api/login ---- */

struct login {
    struct gw_ctx *ctx;
    struct gw_conn *conn;
    const struct gw_http_request *req;
    struct chat_identity who;
};

static void login_free(struct login *lg)
{
    chat_identity_deinit(&lg->who);
    free(lg);
}

/* Answers the login unless the connection died while Redis was busy. */
static bool login_conn_alive(struct login *lg)
{
    return gw_conn_release(lg->conn);
}

static void on_login_saved(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct login *lg = arg;
    if (!login_conn_alive(lg))
        goto done;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        gw_conn_respond_error(lg->conn, lg->req, 503, "unavailable", "redis unavailable");
        goto done;
    }
    const struct chat_config *cfg = lg->ctx->cfg;
    char *token = chat_token_issue(cfg->jwt_secret, strlen(cfg->jwt_secret), &lg->who,
                                   gw_now_ms() / 1000, GW_GUEST_TTL_SEC);
    if (!token) {
        gw_conn_respond_error(lg->conn, lg->req, 500, "internal", "token issue failed");
        goto done;
    }
    chat_log(CHAT_LOG_INFO, "login user=%s conn=%llu", lg->who.id,
             (unsigned long long)gw_conn_id(lg->conn));
    respond_json(lg->conn, lg->req, 200,
                 json_pack("{s:s, s:o}", "token", token, "user", gw_user_json(&lg->who)));
    free(token);
done:
    login_free(lg);
}

static void on_nick_claimed(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct login *lg = arg;
    if (!login_conn_alive(lg)) {
        login_free(lg);
        return;
    }
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        gw_conn_respond_error(lg->conn, lg->req, 503, "unavailable", "redis unavailable");
        login_free(lg);
        return;
    }
    if (reply->type == REDIS_REPLY_STRING && reply->len > 0) {
        gw_conn_respond_error(lg->conn, lg->req, 409, "conflict",
                              "nickname is used by someone online");
        login_free(lg);
        return;
    }
    gw_conn_hold(lg->conn);
    gw_store_save_user(lg->ctx->store, &lg->who, on_login_saved, lg);
}

static void login_start(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req);

/* --login-rate: logins per client address per minute, counted in Redis so
 * that every node shares the count. */
/* How long a refused flooder waits for its 429 at most. */
#define GW_TARPIT_MAX_MS 2000

/* 429 rate_limited with Retry-After; message is a static string without
 * characters JSON would escape. */
static void respond_429(struct gw_conn *c, const struct gw_http_request *req, long long seconds,
                        const char *message)
{
    char retry[64], body[256];
    snprintf(retry, sizeof(retry), "Retry-After: %lld\r\n", seconds);
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"code\":\"rate_limited\",\"message\":\"%s\"}}", message);
    gw_conn_respond(c, req, 429, "application/json", retry, body, (size_t)n);
}

struct login_gate {
    struct gw_ctx *ctx;
    struct gw_conn *conn;
    const struct gw_http_request *req;
    int retry_after;
};

static void on_login_counted(struct gw_bus *bus, struct redisReply *reply, void *arg)
{
    (void)bus;
    struct login_gate *g = arg;
    if (gw_conn_release(g->conn)) {
        if (!reply || reply->type != REDIS_REPLY_INTEGER) {
            gw_conn_respond_error(g->conn, g->req, 503, "unavailable", "redis unavailable");
        } else if (reply->integer > g->ctx->cfg->login_rate) {
            respond_429(g->conn, g->req, g->retry_after,
                        "too many logins from this address, retry later");
        } else {
            login_start(g->ctx, g->conn, g->req);
        }
    }
    free(g);
}

static void route_login(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    if (ctx->cfg->login_rate <= 0 || !gw_bus_up(ctx->bus)) {
        login_start(ctx, c, req);
        return;
    }
    int64_t now_s = gw_now_ms() / 1000;
    char key[GW_KEY_MAX];
    struct login_gate *g = calloc(1, sizeof(*g));
    if (!g || !gw_key_login_rate(key, sizeof(key), ctx->cfg->prefix, gw_conn_addr(c),
                                 (long)(now_s / 60))) {
        free(g);
        gw_conn_respond_error(c, req, 500, "internal", "out of memory");
        return;
    }
    g->ctx = ctx;
    g->conn = c;
    g->req = req;
    g->retry_after = (int)(60 - now_s % 60);
    const char *incr[] = {"INCR", key};
    const char *expire[] = {"EXPIRE", key, "120"};
    gw_conn_hold(c);
    gw_bus_command(ctx->bus, on_login_counted, g, 2, incr, NULL);
    gw_bus_command(ctx->bus, NULL, NULL, 3, expire, NULL);
}

static void login_start(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    if (req->method != HTTP_POST) {
        gw_conn_respond_error(c, req, 405, "bad_request", "use POST");
        return;
    }
    json_error_t jerr;
    json_t *body =
        req->body ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    json_t *nick = json_object_get(body, "nickname");
    json_t *avatar = json_object_get(body, "avatar");
    const char *why = NULL;
    if (!json_is_object(body))
        why = "body must be a JSON object";
    else if (!json_is_string(nick) || !chat_valid_nickname(json_string_value(nick)))
        why = "nickname must be 1-32 characters, no control characters, no leading or "
              "trailing space";
    else if (avatar && !json_is_null(avatar) &&
             (!json_is_string(avatar) || !chat_valid_avatar(json_string_value(avatar))))
        why = "avatar must be a string of at most 2048 characters";
    if (why) {
        json_decref(body);
        gw_conn_respond_error(c, req, 400, "bad_request", why);
        return;
    }
    if (!gw_bus_up(ctx->bus)) {
        json_decref(body);
        gw_conn_respond_error(c, req, 503, "unavailable", "redis unavailable");
        return;
    }
    struct login *lg = calloc(1, sizeof(*lg));
    char nick_key[GW_KEY_MAX];
    if (!lg || chat_random_hex(lg->who.id, 10) != 0 ||
        !gw_key_nick(nick_key, sizeof(nick_key), ctx->cfg->prefix, json_string_value(nick))) {
        free(lg);
        json_decref(body);
        gw_conn_respond_error(c, req, 500, "internal", "login failed");
        return;
    }
    lg->ctx = ctx;
    lg->conn = c;
    lg->req = req;
    snprintf(lg->who.name, sizeof(lg->who.name), "%s", json_string_value(nick));
    if (json_is_string(avatar) && json_string_length(avatar) > 0)
        lg->who.avatar = strdup(json_string_value(avatar));
    json_decref(body);

    gw_conn_hold(c);
    gw_store_claim_nick(ctx->store, nick_key, lg->who.id, on_nick_claimed, lg);
}

/* ---- /api/me ---- */

static int verify_request_token(struct gw_ctx *ctx, const struct gw_http_request *req,
                                struct chat_identity *who)
{
    char token[CHAT_TOKEN_MAX + 1];
    if (!gw_http_find_token(req, token, sizeof(token)))
        return CHAT_TOKEN_E_MISSING;
    return chat_token_verify_with(ctx->verifier, token, gw_now_ms() / 1000, who);
}

static void route_me(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    struct chat_identity who;
    memset(&who, 0, sizeof(who));
    int rc = verify_request_token(ctx, req, &who);
    if (rc != CHAT_TOKEN_OK) {
        gw_conn_respond_error(c, req, 401, "unauthorized", chat_token_strerror(rc));
        return;
    }
    respond_json(c, req, 200, json_pack("{s:o}", "user", gw_user_json(&who)));
    chat_identity_deinit(&who);
}

/* ---- /api/rooms ---- */

struct rooms_req {
    struct gw_conn *conn;
    const struct gw_http_request *req;
};

static void on_rooms(void *arg, json_t *rooms, bool more)
{
    struct rooms_req *rr = arg;
    if (!gw_conn_release(rr->conn)) {
        json_decref(rooms);
    } else {
        if (!rooms)
            gw_conn_respond_error(rr->conn, rr->req, 503, "unavailable", "redis unavailable");
        else
            respond_json(rr->conn, rr->req, 200,
                         json_pack("{s:o, s:b}", "rooms", rooms, "more", more));
    }
    free(rr);
}

static void route_rooms(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    struct rooms_req *rr = malloc(sizeof(*rr));
    if (!rr) {
        gw_conn_respond_error(c, req, 500, "internal", "out of memory");
        return;
    }
    rr->conn = c;
    rr->req = req;
    gw_conn_hold(c);
    gw_store_list_rooms(ctx->store, NULL, NULL, GW_WELCOME_ROOMS, on_rooms, rr);
}

/* ---- /ws and /echo ---- */

/*
 * permessage-deflate, when the node has it on and the client offers it in a
 * form we can meet: *d says what was negotiated (d->on false for nothing).
 * Offers may come in several header lines, which count as one comma list
 * (RFC 9110 5.3); a value that does not fit here is not negotiated.
 */
static void negotiate_deflate(struct gw_ctx *ctx, const struct gw_http_request *req,
                              struct chat_wsdeflate *d, char *answer, size_t answer_len)
{
    memset(d, 0, sizeof(*d));
    answer[0] = '\0';
    if (!ctx->cfg->deflate || !ctx->deflate)
        return;
    char offers[2048];
    size_t used = 0;
    for (int i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, "Sec-WebSocket-Extensions") != 0)
            continue;
        int n = snprintf(offers + used, sizeof(offers) - used, "%s%s", used ? ", " : "",
                         req->headers[i].value);
        if (n < 0 || (size_t)n >= sizeof(offers) - used)
            return;
        used += (size_t)n;
    }
    if (!used || !chat_wsdeflate_negotiate(offers, ctx->cfg->deflate_client_context, d) ||
        chat_wsdeflate_response(d, answer, answer_len) != 0) {
        memset(d, 0, sizeof(*d));
        answer[0] = '\0';
    }
}

/* The client's window bits when it keeps its context, 0 when it does not. */
static uint8_t deflate_client_bits(const struct chat_wsdeflate *d)
{
    return d->on && !d->client_no_context_takeover ? d->client_max_window_bits : 0;
}

/* extensions: the Sec-WebSocket-Extensions answer, or "". */
static void write_101(struct gw_conn *c, const char *accept, const char *extensions)
{
    struct evbuffer *out = gw_conn_output(c);
    evbuffer_add_printf(out,
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                        accept, *extensions ? "Sec-WebSocket-Extensions: " : "", extensions,
                        *extensions ? "\r\n" : "");
    gw_conn_queued(c);
}

static bool check_handshake(struct gw_conn *c, const struct gw_http_request *req, char *accept)
{
    struct chat_ws_request wr = {
        .is_get = req->method == HTTP_GET,
        .http_major = req->http_major,
        .http_minor = req->http_minor,
        .upgrade = gw_http_header(req, "Upgrade"),
        .connection = gw_http_header(req, "Connection"),
        .version = gw_http_header(req, "Sec-WebSocket-Version"),
        .key = gw_http_header(req, "Sec-WebSocket-Key"),
    };
    int rc = chat_ws_check_request(&wr, accept);
    if (rc == CHAT_WS_OK)
        return true;
    if (rc == CHAT_WS_E_METHOD)
        gw_conn_respond_error(c, req, 405, "bad_request", chat_ws_strerror(rc));
    else if (rc == CHAT_WS_E_VERSION)
        gw_conn_respond(c, req, 426, "application/json", "Sec-WebSocket-Version: 13\r\n",
                        "{\"error\":{\"code\":\"bad_request\",\"message\":\"unsupported "
                        "WebSocket version\"}}",
                        strlen("{\"error\":{\"code\":\"bad_request\",\"message\":\"unsupported "
                               "WebSocket version\"}}"));
    else
        gw_conn_respond_error(c, req, 400, "bad_request", chat_ws_strerror(rc));
    return false;
}

/*
 * The 429 to a user still cut off for flooding comes after a pause (a
 * tarpit): answered at once, a client that reconnects in a loop made the
 * node accept, parse and refuse thousands of connections a second.
 */
struct tarpit {
    struct gw_conn *conn;
    const struct gw_http_request *req;
    long long retry_after_s;
};

static void on_tarpit_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tarpit *t = arg;
    if (gw_conn_release(t->conn))
        respond_429(t->conn, t->req, t->retry_after_s, "cut off for flooding, retry later");
    free(t);
}

static void refuse_later(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req,
                         int64_t penalty_ms)
{
    long long retry_s = (penalty_ms + 999) / 1000;
    struct tarpit *t = calloc(1, sizeof(*t));
    int64_t pause = penalty_ms < GW_TARPIT_MAX_MS ? penalty_ms : GW_TARPIT_MAX_MS;
    struct timeval tv = {pause / 1000, (pause % 1000) * 1000};
    if (t) {
        *t = (struct tarpit){c, req, retry_s};
        gw_conn_hold(c);
        if (event_base_once(ctx->base, -1, EV_TIMEOUT, on_tarpit_done, t, &tv) == 0)
            return;
        gw_conn_release(c);
        free(t);
    }
    respond_429(c, req, retry_s, "cut off for flooding, retry later");
}

static void route_ws(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req,
                     bool echo)
{
    if (ctx->draining) {
        gw_conn_respond_error(c, req, 503, "unavailable", "server is shutting down");
        return;
    }
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    if (!check_handshake(c, req, accept))
        return;
    if (!gw_http_origin_allowed(ctx->cfg->origins, gw_http_header(req, "Origin"),
                                gw_http_header(req, "Host"))) {
        gw_conn_respond_error(c, req, 403, "forbidden", "origin not allowed");
        return;
    }
    char extensions[160];
    struct chat_wsdeflate deflate;
    negotiate_deflate(ctx, req, &deflate, extensions, sizeof(extensions));
    if (echo) {
        write_101(c, accept, extensions);
        gw_ws_start_echo(ctx, c, deflate.server_max_window_bits, deflate_client_bits(&deflate));
        return;
    }
    struct chat_identity who;
    memset(&who, 0, sizeof(who));
    int rc = verify_request_token(ctx, req, &who);
    if (rc != CHAT_TOKEN_OK) {
        chat_log(CHAT_LOG_INFO, "ws_refused conn=%llu status=401 reason=\"%s\"",
                 (unsigned long long)gw_conn_id(c), chat_token_strerror(rc));
        gw_conn_respond_error(c, req, 401, "unauthorized", chat_token_strerror(rc));
        return;
    }
    int64_t penalty_ms = gw_penalty_left(ctx->penalty, who.id, gw_mono_ms());
    if (penalty_ms > 0) {
        chat_log(CHAT_LOG_DEBUG, "ws_refused conn=%llu status=429 user=%s",
                 (unsigned long long)gw_conn_id(c), who.id);
        chat_identity_deinit(&who);
        refuse_later(ctx, c, req, penalty_ms);
        return;
    }
    if (!redis_up(ctx)) {
        chat_identity_deinit(&who);
        gw_conn_respond_error(c, req, 503, "unavailable", "redis unavailable");
        return;
    }
    unsigned flags = gw_http_query_is(req, "presence", "batch") ? GW_SESSION_PRESENCE_BATCH : 0;
    flags |= GW_SESSION_DEFLATE(deflate.server_max_window_bits) |
             GW_SESSION_DEFLATE_CLIENT(deflate_client_bits(&deflate));
    write_101(c, accept, extensions);
    gw_session_start(ctx, c, &who, flags, gw_handlers_dispatch); /* takes who */
}

void gw_http_dispatch(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    const char *p = req->path;
    if (strcmp(p, "/ws") == 0)
        route_ws(ctx, c, req, false);
    else if (strcmp(p, "/echo") == 0 && ctx->cfg->echo)
        route_ws(ctx, c, req, true);
    else if (strcmp(p, "/healthz") == 0)
        route_healthz(ctx, c, req);
    else if (strcmp(p, "/metrics") == 0 && !ctx->cfg->metrics_bind)
        route_metrics(ctx, c, req);
    else if (strcmp(p, "/api/login") == 0)
        route_login(ctx, c, req);
    else if (strcmp(p, "/api/me") == 0)
        route_me(ctx, c, req);
    else if (strcmp(p, "/api/rooms") == 0)
        route_rooms(ctx, c, req);
    else if (strncmp(p, "/api/", 5) == 0)
        gw_conn_respond_error(c, req, 404, "not_found", "no such endpoint");
    else
        gw_static_serve(ctx, c, req);
}

void gw_http_dispatch_metrics(struct gw_ctx *ctx, struct gw_conn *c,
                              const struct gw_http_request *req)
{
    if (strcmp(req->path, "/metrics") == 0)
        route_metrics(ctx, c, req);
    else if (strcmp(req->path, "/healthz") == 0)
        route_healthz(ctx, c, req);
    else
        gw_conn_respond_error(c, req, 404, "not_found", "only /metrics and /healthz here");
}
