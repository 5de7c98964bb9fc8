/*
 * The real chat-gateway binary over loopback sockets (gateway_proc.h): HTTP/1.1
 * framing and limits, static files, the routes that answer without Redis, and
 * the command line.
 */
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gateway_proc.h"
#include "tests.h"
#include "token.h"

/* An alg=none token with a valid-looking payload: must be refused. */
#define NONE_JWT                                                                                   \
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."                                                         \
    "eyJzdWIiOiJ1MSIsIm5hbWUiOiJhbm4iLCJleHAiOjk5OTk5OTk5OTl9."

/* Sends req on a fresh connection: the answer is a JSON error status/code
 * and the server closes the connection after it. */
static void expect_refused(const char *req, size_t len, int status, const char *code)
{
    bool closed = false;
    struct tg_resp *r = tg_exchange(req, len, &closed);
    ck_assert_msg(r->status == status, "got %d, want %d for: %.60s", r->status, status, req);
    tg_expect_error_code(r, code);
    ck_assert_msg(closed, "connection left open after %d", status);
    tg_resp_release(r);
}

START_TEST(test_keep_alive)
{
    struct tg_conn *c = tg_conn_open();
    struct tg_resp r;
    tg_conn_sends(c, "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_INDEX_HTML);
    char v[64];
    ck_assert(!tg_resp_header(&r, "Connection", v, sizeof(v)) || strcasecmp(v, "close") != 0);
    tg_resp_free(&r);

    tg_conn_sends(c, "GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_APP_JS);
    tg_resp_free(&r);

    /* Connection: close is honoured after the answer. */
    tg_conn_sends(c, "GET /style.css HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_STYLE_CSS);
    tg_resp_free(&r);
    ck_assert(tg_conn_closed_by_peer(c));
    tg_conn_close(c);
}
END_TEST

START_TEST(test_pipelined)
{
    struct tg_conn *c = tg_conn_open();
    tg_conn_sends(c, "GET /app.js HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /style.css HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /nope.html HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /api/rooms HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n"
                     "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    struct tg_resp r;
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_APP_JS);
    tg_resp_free(&r);
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_STYLE_CSS);
    tg_resp_free(&r);
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 404);
    tg_resp_free(&r);
    /* Answered from a (failed) Redis command, the others waited for it. */
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 503);
    tg_expect_error_code(&r, "unavailable");
    tg_resp_free(&r);
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE"));
    tg_resp_free(&r);
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_INDEX_HTML);
    tg_resp_free(&r);
    tg_conn_close(c);
}
END_TEST

START_TEST(test_http10_closes)
{
    bool closed = false;
    const char *req = "GET /index.html HTTP/1.0\r\n\r\n";
    struct tg_resp *r = tg_exchange(req, strlen(req), &closed);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, TG_INDEX_HTML);
    ck_assert(closed);
    tg_resp_release(r);
}
END_TEST

/* A GET whose head carries one header of value_len bytes. */
static char *big_header_request(size_t value_len, size_t *len)
{
    const char *start = "GET /index.html HTTP/1.1\r\nHost: h\r\nX-Big: ";
    size_t n = strlen(start);
    char *req = malloc(n + value_len + 5);
    ck_assert_ptr_nonnull(req);
    memcpy(req, start, n);
    memset(req + n, 'a', value_len);
    memcpy(req + n + value_len, "\r\n\r\n", 5);
    *len = n + value_len + 4;
    return req;
}

START_TEST(test_header_limit)
{
    size_t len;
    /* Well below 16 KiB: served. */
    char *req = big_header_request(12 * 1024, &len);
    struct tg_resp *r = tg_exchange(req, len, NULL);
    ck_assert_int_eq(r->status, 200);
    tg_resp_release(r);
    free(req);

    req = big_header_request(17 * 1024, &len);
    expect_refused(req, len, 431, "too_large");
    free(req);
}
END_TEST

START_TEST(test_many_headers)
{
    /* Many small headers adding up to more than 16 KiB: 431 as well. */
    size_t cap = 64 * 1024, len = 0;
    char *req = malloc(cap);
    ck_assert_ptr_nonnull(req);
    len += (size_t)snprintf(req, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; len < 20 * 1024; i++)
        len += (size_t)snprintf(req + len, cap - len, "X-H%d: %s\r\n", i,
                                "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
    len += (size_t)snprintf(req + len, cap - len, "\r\n");
    expect_refused(req, len, 431, "too_large");
    free(req);
}
END_TEST

START_TEST(test_body_limit_content_length)
{
    /* Only the head: the answer must come from Content-Length alone. */
    const char *req = "POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                      "Content-Length: 65537\r\n\r\n";
    expect_refused(req, strlen(req), 413, "too_large");
}
END_TEST

START_TEST(test_body_limit_exact)
{
    /* Exactly 64 KiB is allowed: the login is refused only because Redis is down. */
    const char *head = "POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
                       "Content-Length: 65536\r\n\r\n";
    const char *pre = "{\"nickname\":\"ann\",\"pad\":\"", *post = "\"}";
    size_t hl = strlen(head), pl = strlen(pre);
    size_t len = hl + 65536;
    char *req = malloc(len);
    ck_assert_ptr_nonnull(req);
    memcpy(req, head, hl);
    memcpy(req + hl, pre, pl);
    memset(req + hl + pl, 'x', 65536 - pl - 2);
    memcpy(req + len - 2, post, 2);
    struct tg_resp *r = tg_exchange(req, len, NULL);
    ck_assert_msg(r->status == 503, "64 KiB login with Redis down: %d, want 503", r->status);
    tg_expect_error_code(r, "unavailable");
    tg_resp_release(r);
    free(req);
}
END_TEST

START_TEST(test_body_limit_chunked)
{
    size_t cap = 80 * 1024, len = 0;
    char *req = malloc(cap);
    ck_assert_ptr_nonnull(req);
    len += (size_t)snprintf(req, cap,
                            "POST /api/login HTTP/1.1\r\nHost: h\r\n"
                            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* 16 chunks of 4 KiB reach the limit exactly; one more byte passes it.
     * Nothing follows, so the server has read everything when it answers. */
    for (int i = 0; i < 16; i++) {
        len += (size_t)snprintf(req + len, cap - len, "1000\r\n");
        memset(req + len, ' ', 4096);
        len += 4096;
        len += (size_t)snprintf(req + len, cap - len, "\r\n");
    }
    len += (size_t)snprintf(req + len, cap - len, "1\r\n ");
    expect_refused(req, len, 413, "too_large");
    free(req);
}
END_TEST

START_TEST(test_bad_version)
{
    static const char *const reqs[] = {
        "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        "GET / HTTP/3.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.2\r\nHost: h\r\n\r\n",
        "GET / HTTP/0.9\r\nHost: h\r\n\r\n",
        "GET /\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        expect_refused(reqs[i], strlen(reqs[i]), 400, "bad_request");
}
END_TEST

START_TEST(test_garbage)
{
    static const char tls_hello[] = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n";
    static const char *const reqs[] = {
        "HELLO WORLD\r\n\r\n",
        "GET\r\n\r\n",
        "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
        /* Framing that could smuggle a second request past a proxy. */
        "POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /api/login HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nContent-Length: 5\r\n"
        "\r\nabcde",
    };
    expect_refused(tls_hello, sizeof(tls_hello) - 1, 400, "bad_request");
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
        expect_refused(reqs[i], strlen(reqs[i]), 400, "bad_request");
    /* The gateway survived all of it. */
    tg_expect_status("/index.html", 200);
}
END_TEST

static void expect_type(const char *path, const char *type_prefix, const char *body)
{
    struct tg_resp *r = tg_get(path);
    ck_assert_msg(r->status == 200, "GET %s: %d", path, r->status);
    char ct[128];
    ck_assert(tg_resp_header(r, "Content-Type", ct, sizeof(ct)));
    ck_assert_msg(strncmp(ct, type_prefix, strlen(type_prefix)) == 0, "GET %s: type %s", path, ct);
    if (body)
        ck_assert_str_eq(r->body, body);
    tg_resp_release(r);
}

START_TEST(test_static_types)
{
    expect_type("/", "text/html", TG_INDEX_HTML);
    expect_type("/index.html", "text/html", TG_INDEX_HTML);
    expect_type("/app.js", "text/javascript", TG_APP_JS);
    expect_type("/style.css", "text/css", TG_STYLE_CSS);
    expect_type("/logo.png", "image/png", NULL);
    expect_type("/sub/", "text/html", TG_SUB_HTML);
    expect_type("/%61pp.js", "text/javascript", TG_APP_JS);
    expect_type("/index.html?v=3", "text/html", TG_INDEX_HTML);
}
END_TEST

START_TEST(test_static_etag)
{
    struct tg_resp *r = tg_get("/style.css");
    ck_assert_int_eq(r->status, 200);
    char etag[128], lm[128];
    bool has_etag = tg_resp_header(r, "ETag", etag, sizeof(etag));
    ck_assert_msg(has_etag || tg_resp_header(r, "Last-Modified", lm, sizeof(lm)),
                  "neither ETag nor Last-Modified");
    ck_assert_msg(has_etag, "no ETag (If-None-Match cannot work)");
    tg_resp_release(r);

    char req[512];
    snprintf(req, sizeof(req), "GET /style.css HTTP/1.1\r\nHost: h\r\nIf-None-Match: %s\r\n\r\n",
             etag);
    r = tg_exchange(req, strlen(req), NULL);
    ck_assert_int_eq(r->status, 304);
    ck_assert_uint_eq(r->body_len, 0);
    char again[128];
    ck_assert(tg_resp_header(r, "ETag", again, sizeof(again)));
    ck_assert_str_eq(again, etag);
    tg_resp_release(r);

    /* Header names are case-insensitive. */
    snprintf(req, sizeof(req), "GET /style.css HTTP/1.1\r\nhost: h\r\nif-none-match: %s\r\n\r\n",
             etag);
    r = tg_exchange(req, strlen(req), NULL);
    ck_assert_int_eq(r->status, 304);
    tg_resp_release(r);

    /* A list that contains it matches too; another tag does not. */
    snprintf(req, sizeof(req),
             "GET /style.css HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"zzz\", %s\r\n\r\n", etag);
    r = tg_exchange(req, strlen(req), NULL);
    ck_assert_int_eq(r->status, 304);
    tg_resp_release(r);
    const char *other = "GET /style.css HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"nope\"\r\n\r\n";
    r = tg_exchange(other, strlen(other), NULL);
    ck_assert_int_eq(r->status, 200);
    ck_assert_str_eq(r->body, TG_STYLE_CSS);
    tg_resp_release(r);
}
END_TEST

START_TEST(test_static_head)
{
    struct tg_conn *c = tg_conn_open();
    tg_conn_sends(c, "HEAD /app.js HTTP/1.1\r\nHost: h\r\n\r\n");
    struct tg_resp r;
    tg_read_resp(c, &r, true);
    ck_assert_int_eq(r.status, 200);
    char cl[32];
    ck_assert(tg_resp_header(&r, "Content-Length", cl, sizeof(cl)));
    ck_assert_uint_eq(strtoull(cl, NULL, 10), strlen(TG_APP_JS));
    tg_resp_free(&r);
    /* No body followed the head: the next answer starts right away. */
    tg_conn_sends(c, "GET /style.css HTTP/1.1\r\nHost: h\r\n\r\n");
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, TG_STYLE_CSS);
    tg_resp_free(&r);
    tg_conn_close(c);
}
END_TEST

START_TEST(test_traversal)
{
    static const char *const paths[] = {
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2e%2Fsecret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/.git/config",
        "/index.html%00.png",
        "/%5c..%5csecret.txt",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct tg_resp *r = tg_get(paths[i]);
        ck_assert_msg(r->status == 403, "GET %s: %d, want 403", paths[i], r->status);
        tg_expect_error_code(r, "forbidden");
        ck_assert(!strstr(r->body, "TOPSECRET"));
        tg_resp_release(r);
    }
    /* A raw backslash may be refused by the parser (400) or the resolver (403). */
    struct tg_resp *r = tg_get("/..\\secret.txt");
    ck_assert_msg(r->status == 400 || r->status == 403, "backslash: %d", r->status);
    ck_assert(!strstr(r->body, "TOPSECRET"));
    tg_resp_release(r);
}
END_TEST

START_TEST(test_missing)
{
    struct tg_resp *r = tg_get("/nope.html");
    ck_assert_int_eq(r->status, 404);
    tg_expect_error_code(r, "not_found");
    tg_resp_release(r);
    tg_expect_status("/sub/nope.js", 404);
    tg_expect_status("/api/nope", 404);
    /* A directory without index.html: no listing. */
    tg_expect_status("/emptydir/", 404);
    r = tg_get("/emptydir");
    ck_assert_msg(r->status != 200, "directory /emptydir answered 200");
    tg_resp_release(r);
}
END_TEST

START_TEST(test_healthz_redis_down)
{
    struct tg_resp *r = tg_get("/healthz");
    ck_assert_int_eq(r->status, 503);
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
    ck_assert_msg(j != NULL, "healthz body is not JSON: %s", r->body);
    ck_assert_str_eq(json_string_value(json_object_get(j, "redis")), "down");
    ck_assert_str_eq(json_string_value(json_object_get(j, "node")), "unitgw");
    ck_assert(json_is_string(json_object_get(j, "status")));
    ck_assert(json_is_integer(json_object_get(j, "connections")));
    json_decref(j);
    tg_resp_release(r);
}
END_TEST

START_TEST(test_metrics_endpoint)
{
    struct tg_resp *r = tg_get("/metrics");
    ck_assert_int_eq(r->status, 200);
    char ct[128];
    ck_assert(tg_resp_header(r, "Content-Type", ct, sizeof(ct)));
    ck_assert_msg(strncmp(ct, "text/plain", 10) == 0, "metrics type %s", ct);
    ck_assert_ptr_nonnull(strstr(r->body, "# HELP "));
    ck_assert_ptr_nonnull(strstr(r->body, "# TYPE "));
    ck_assert_ptr_nonnull(strstr(r->body, "node=\"unitgw\""));
    tg_resp_release(r);
}
END_TEST

START_TEST(test_me_unauthorized)
{
    static const char *const reqs[] = {
        "GET /api/me HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /api/me HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer garbage\r\n\r\n",
        "GET /api/me HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer " NONE_JWT "\r\n\r\n",
        "GET /api/me?token=" NONE_JWT " HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /api/me HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dXNlcjpwYXNz\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct tg_resp *r = tg_exchange(reqs[i], strlen(reqs[i]), NULL);
        ck_assert_msg(r->status == 401, "request %zu: %d, want 401", i, r->status);
        tg_expect_error_code(r, "unauthorized");
        tg_resp_release(r);
    }
    /* A token over 8 KiB is refused unread (the head is still under 16 KiB). */
    char *path = malloc(16 + 9000 + 1);
    ck_assert_ptr_nonnull(path);
    strcpy(path, "/api/me?token=");
    memset(path + strlen(path), 'a', 9000);
    path[14 + 9000] = '\0';
    struct tg_resp *r = tg_get(path);
    ck_assert_msg(r->status == 401, "9000-byte token: %d, want 401", r->status);
    tg_resp_release(r);
    free(path);
}
END_TEST

/* A token for user u-unit signed with the gateway's secret, valid for ttl s
 * (negative: already expired). */
static char *make_token(const char *secret, int64_t ttl)
{
    struct chat_identity who;
    memset(&who, 0, sizeof(who));
    snprintf(who.id, sizeof(who.id), "u-unit");
    snprintf(who.name, sizeof(who.name), "Unit Tester");
    int64_t now = (int64_t)time(NULL);
    char *t = chat_token_issue(secret, strlen(secret), &who, ttl < 0 ? now - 3600 : now,
                               ttl < 0 ? 3600 + ttl : ttl);
    ck_assert_ptr_nonnull(t);
    return t;
}

static struct tg_resp *get_with(const char *path, const char *headers)
{
    char req[16384];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n", path,
                     tg_port(), headers);
    ck_assert(n > 0 && (size_t)n < sizeof(req));
    return tg_exchange(req, (size_t)n, NULL);
}

START_TEST(test_me_ok)
{
    char *token = make_token(TG_SECRET, 600);
    char hdr[9000];
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    struct tg_resp *r = get_with("/api/me", hdr);
    ck_assert_msg(r->status == 200, "/api/me with a good token: %d %s", r->status, r->body);
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, 0, &jerr);
    ck_assert_ptr_nonnull(j);
    json_t *user = json_object_get(j, "user");
    ck_assert_str_eq(json_string_value(json_object_get(user, "id")), "u-unit");
    ck_assert_str_eq(json_string_value(json_object_get(user, "name")), "Unit Tester");
    json_decref(j);
    tg_resp_release(r);
    free(token);

    /* Expired, or signed with another key: 401. */
    token = make_token(TG_SECRET, -10);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    r = get_with("/api/me", hdr);
    ck_assert_int_eq(r->status, 401);
    tg_resp_release(r);
    free(token);
    token = make_token("another-secret-of-enough-length-0123456789", 600);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    r = get_with("/api/me", hdr);
    ck_assert_int_eq(r->status, 401);
    tg_resp_release(r);
    free(token);
}
END_TEST

#define WS_HEADERS                                                                                 \
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"                   \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

START_TEST(test_ws_refusals)
{
    char *token = make_token(TG_SECRET, 600);
    char hdr[9000], path[9000];

    /* No token: 401, no upgrade. */
    struct tg_resp *r = get_with("/ws", WS_HEADERS);
    ck_assert_msg(r->status == 401, "upgrade without token: %d", r->status);
    tg_expect_error_code(r, "unauthorized");
    tg_resp_release(r);
    snprintf(path, sizeof(path), "/ws?token=%s", NONE_JWT);
    r = get_with(path, WS_HEADERS);
    ck_assert_msg(r->status == 401, "upgrade with alg none: %d", r->status);
    tg_resp_release(r);

    /* A foreign Origin with a good token: 403. */
    snprintf(hdr, sizeof(hdr), WS_HEADERS "Origin: http://evil.example\r\n");
    snprintf(path, sizeof(path), "/ws?token=%s", token);
    r = get_with(path, hdr);
    ck_assert_msg(r->status == 403, "foreign origin: %d", r->status);
    tg_expect_error_code(r, "forbidden");
    tg_resp_release(r);

    /* Everything right but Redis: 503, whether the token is in the query or
     * the header, with or without a same-host Origin. */
    r = get_with(path, WS_HEADERS);
    ck_assert_msg(r->status == 503, "good upgrade, Redis down: %d %s", r->status, r->body);
    tg_expect_error_code(r, "unavailable");
    tg_resp_release(r);
    snprintf(hdr, sizeof(hdr),
             WS_HEADERS "Authorization: Bearer %s\r\nOrigin: http://127.0.0.1:%d\r\n", token,
             tg_port());
    r = get_with("/ws", hdr);
    ck_assert_msg(r->status == 503, "same-host origin, Redis down: %d %s", r->status, r->body);
    tg_resp_release(r);

    /* Header names and Upgrade/Connection tokens are case-insensitive, and
     * Connection is a list. */
    snprintf(hdr, sizeof(hdr),
             "upgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
             "sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "authorization: Bearer %s\r\n",
             token);
    r = get_with("/ws", hdr);
    ck_assert_msg(r->status == 503, "mixed-case handshake, Redis down: %d %s", r->status, r->body);
    tg_resp_release(r);

    /* Not an upgrade at all. */
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    r = get_with("/ws", hdr);
    ck_assert_msg(r->status == 400 || r->status == 426, "plain GET /ws: %d", r->status);
    tg_resp_release(r);
    free(token);
}
END_TEST

START_TEST(test_long_url)
{
    /* A request line past 16 KiB is part of an oversized head. */
    size_t n = 17 * 1024;
    char *path = malloc(n + 1);
    ck_assert_ptr_nonnull(path);
    path[0] = '/';
    memset(path + 1, 'a', n - 1);
    path[n] = '\0';
    char *req = malloc(n + 64);
    ck_assert_ptr_nonnull(req);
    int len = snprintf(req, n + 64, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
    bool closed = false;
    struct tg_resp *r = tg_exchange(req, (size_t)len, &closed);
    ck_assert_msg(r->status == 431 || r->status == 414, "17 KiB URL: %d", r->status);
    ck_assert(closed);
    tg_resp_release(r);
    free(req);
    free(path);
}
END_TEST

START_TEST(test_sigterm_exit)
{
    tg_expect_status("/index.html", 200);
    /* An idle keep-alive connection must not hold the exit up. */
    struct tg_conn *c = tg_conn_open();
    tg_conn_sends(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    struct tg_resp r;
    tg_read_resp(c, &r, false);
    ck_assert_int_eq(r.status, 200);
    tg_resp_free(&r);
    int64_t t0 = tg_mono_ms();
    int status = tg_gateway_stop(5000);
    ck_assert_msg(status == 0, "exit status %d after SIGTERM", status);
    ck_assert_int_lt(tg_mono_ms() - t0, 4000);
    tg_conn_close(c);
}
END_TEST

/* Runs the gateway with args and env (see tg_spawn); returns its exit code
 * (-1 when it had to be killed) and its stderr (and stdout if with_stdout)
 * in err. */
static int run_cli(const char *const *args, const char *const *env, bool with_stdout, char *err,
                   size_t errlen)
{
    const char *argv[16] = {GATEWAY_BIN};
    int n = 1;
    while (args[n - 1] && n < 15) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = tg_spawn(argv, env, with_stdout ? fds[1] : -1, fds[1]);
    close(fds[1]);
    ck_assert_int_gt(pid, 0);
    size_t got = 0;
    int64_t deadline = tg_mono_ms() + TG_IO_TIMEOUT_MS;
    while (tg_mono_ms() < deadline) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        char tmp[1024];
        ssize_t r = read(fds[0], tmp, sizeof(tmp));
        if (r <= 0)
            break;
        size_t take = (size_t)r < errlen - 1 - got ? (size_t)r : errlen - 1 - got;
        memcpy(err + got, tmp, take);
        got += take;
    }
    err[got] = '\0';
    close(fds[0]);
    int status = tg_wait_pid(pid, TG_IO_TIMEOUT_MS);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_config_error(const char *const *args, const char *const *env)
{
    char err[4096];
    int rc = run_cli(args, env, false, err, sizeof(err));
    ck_assert_msg(rc == 2, "%s ...: exit %d, want 2", args[0], rc);
    /* A one-line reason. */
    char *nl = strchr(err, '\n');
    ck_assert_msg(err[0] && nl && nl[1] == '\0', "%s: stderr not one line: \"%s\"", args[0], err);
}

START_TEST(test_cli_help)
{
    char *out = malloc(65536);
    ck_assert_ptr_nonnull(out);
    static const char *const help[] = {"--help", NULL};
    ck_assert_int_eq(run_cli(help, NULL, true, out, 65536), 0);
    /* Every option of PROTOCOL.md section 1, its variable and its default. */
    static const struct {
        const char *flag, *env, *def;
    } want[] = {
        {"--port", "CHAT_PORT", "8080"},
        {"--bind", "CHAT_BIND", "0.0.0.0"},
        {"--redis", "CHAT_REDIS_URL", "redis://127.0.0.1:6379/0"},
        {"--node-id", "CHAT_NODE_ID", NULL},
        {"--jwt-secret", "CHAT_JWT_SECRET", NULL},
        {"--static-dir", "CHAT_STATIC_DIR", NULL},
        {"--origins", "CHAT_ORIGINS", NULL},
        {"--history", "CHAT_HISTORY", "200"},
        {"--max-message", "CHAT_MAX_MESSAGE", "1048576"},
        {"--rate", "CHAT_RATE", "10/20"},
        {"--prefix", "CHAT_PREFIX", "chat:"},
        {"--log-level", "CHAT_LOG_LEVEL", "info"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const char *at = strstr(out, want[i].flag);
        ck_assert_msg(at != NULL, "--help does not mention %s", want[i].flag);
        ck_assert_msg(strstr(at, want[i].env) != NULL, "--help: no %s", want[i].env);
        ck_assert_msg(!want[i].def || strstr(at, want[i].def), "--help: %s default is not %s",
                      want[i].flag, want[i].def);
    }
    static const char *const h[] = {"-h", NULL};
    ck_assert_int_eq(run_cli(h, NULL, true, out, 65536), 0);
    free(out);
}
END_TEST

START_TEST(test_cli_errors)
{
    static const char *const bogus[] = {"--bogus", NULL};
    static const char *const port_nan[] = {"--dev", "--port", "notanumber", NULL};
    static const char *const port_big[] = {"--dev", "--port", "70000", NULL};
    static const char *const port_missing[] = {"--dev", "--port", NULL};
    static const char *const no_secret[] = {"--port", "0", "--bind", "127.0.0.1", NULL};
    static const char *const short_secret[] = {"--jwt-secret", "too-short", NULL};
    static const char *const bad_redis[] = {"--dev", "--redis", "http://nope", NULL};
    static const char *const bad_rate[] = {"--dev", "--rate", "fast", NULL};
    static const char *const bad_level[] = {"--dev", "--log-level", "loud", NULL};
    static const char *const bad_history[] = {"--dev", "--history", "0", NULL};
    static const char *const positional[] = {"--dev", "extra", NULL};
    expect_config_error(bogus, NULL);
    expect_config_error(port_nan, NULL);
    expect_config_error(port_big, NULL);
    expect_config_error(port_missing, NULL);
    expect_config_error(no_secret, NULL);
    expect_config_error(short_secret, NULL);
    expect_config_error(bad_redis, NULL);
    expect_config_error(bad_rate, NULL);
    expect_config_error(bad_level, NULL);
    expect_config_error(bad_history, NULL);
    expect_config_error(positional, NULL);
    /* Bad values from the environment are configuration errors too. */
    static const char *const none[] = {NULL};
    static const char *const env_level[] = {"CHAT_DEV=1", "CHAT_LOG_LEVEL=loud", NULL};
    static const char *const env_port[] = {"CHAT_DEV=1", "CHAT_PORT=http", NULL};
    static const char *const env_secret[] = {"CHAT_JWT_SECRET=short", NULL};
    expect_config_error(none, env_level);
    expect_config_error(none, env_port);
    expect_config_error(none, env_secret);
}
END_TEST

START_TEST(test_env_and_flags)
{
    /* The environment configures what no flag sets; flags win over it
     * (the fixture passes --node-id=unitgw). */
    static const char *const env[] = {"CHAT_NODE_ID=fromenv", "CHAT_ORIGINS=https://ok.example",
                                      NULL};
    tg_gateway_restart(env);
    struct tg_resp *r = tg_get("/healthz");
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "node")), "unitgw");
    json_decref(j);
    tg_resp_release(r);

    /* CHAT_ORIGINS took effect: the listed origin passes the Origin check
     * (and fails on the missing token), the same-host one no longer does. */
    char hdr[512];
    snprintf(hdr, sizeof(hdr), WS_HEADERS "Origin: https://ok.example\r\n");
    r = get_with("/ws", hdr);
    ck_assert_msg(r->status == 401, "listed origin: %d, want 401 (no token)", r->status);
    tg_resp_release(r);
    snprintf(hdr, sizeof(hdr), WS_HEADERS "Origin: http://127.0.0.1:%d\r\n", tg_port());
    r = get_with("/ws", hdr);
    ck_assert_msg(r->status == 403, "unlisted same-host origin: %d, want 403", r->status);
    tg_resp_release(r);
}
END_TEST

TCase *binary_tcase(void)
{
    TCase *tc = tcase_create("binary");
    tcase_set_timeout(tc, TG_WATCHDOG_SEC + 10);
    /* Each test runs against a gateway of its own (the command-line tests ignore it). */
    tcase_add_unchecked_fixture(tc, tg_make_tree, tg_remove_tree);
    tcase_add_checked_fixture(tc, tg_setup, tg_teardown);
    tcase_add_test(tc, test_cli_help);
    tcase_add_test(tc, test_cli_errors);
    tcase_add_test(tc, test_env_and_flags);
    tcase_add_test(tc, test_keep_alive);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_http10_closes);
    tcase_add_test(tc, test_header_limit);
    tcase_add_test(tc, test_many_headers);
    tcase_add_test(tc, test_body_limit_content_length);
    tcase_add_test(tc, test_body_limit_exact);
    tcase_add_test(tc, test_body_limit_chunked);
    tcase_add_test(tc, test_bad_version);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_static_types);
    tcase_add_test(tc, test_static_etag);
    tcase_add_test(tc, test_static_head);
    tcase_add_test(tc, test_traversal);
    tcase_add_test(tc, test_missing);
    tcase_add_test(tc, test_healthz_redis_down);
    tcase_add_test(tc, test_metrics_endpoint);
    tcase_add_test(tc, test_me_unauthorized);
    tcase_add_test(tc, test_me_ok);
    tcase_add_test(tc, test_ws_refusals);
    tcase_add_test(tc, test_long_url);
    tcase_add_test(tc, test_sigterm_exit);
    return tc;
}
