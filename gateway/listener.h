#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

/*
 * The TCP side: accepting, one bufferevent per connection, HTTP/1.x request
 * framing with http-parser and its limits (16 KiB head -> 431, 64 KiB body ->
 * 413, not HTTP/1.x -> 400), keep-alive, and the hand-over to WebSocket.
 *
 * A gw_conn is freed in one place (conn_free, listener.c), never inside one of
 * its own callbacks: gw_conn_close() marks it and the free happens when the
 * callback unwinds and the output has drained.
 */

#define GW_HTTP_MAX_HEAD 16384
#define GW_HTTP_MAX_BODY 65536
#define GW_HTTP_MAX_HEADERS 100

struct gw_listener;
struct gw_conn;
struct bufferevent;

struct gw_http_header {
    char *name;
    char *value;
};

struct gw_http_request {
    int method; /* enum http_method */
    int http_major, http_minor;
    char *url;   /* raw request target */
    char *path;  /* url up to '?' (still percent-encoded) */
    char *query; /* after '?', or NULL */
    struct gw_http_header headers[GW_HTTP_MAX_HEADERS];
    int nheaders;
    char *body;
    size_t body_len;
    bool keep_alive;
};

/* Case-insensitive header lookup; the first one wins.  NULL when absent. */
const char *gw_http_header(const struct gw_http_request *req, const char *name);

/* Starts listening on cfg->bind:cfg->port.  NULL on failure (logged). */
struct gw_listener *gw_listener_new(struct gw_ctx *ctx);
/* The port actually bound (useful with --port 0). */
int gw_listener_port(const struct gw_listener *l);
/* Closes every connection at once, then the listener. */
void gw_listener_free(struct gw_listener *l);
/* Calls fn for every connection (WebSocket or not); fn may close them. */
typedef void (*gw_conn_each_cb)(struct gw_conn *c, void *arg);
void gw_listener_each(struct gw_listener *l, gw_conn_each_cb fn, void *arg);
size_t gw_listener_count(const struct gw_listener *l);

/* Per-connection API for routes and the WebSocket layer. */
uint64_t gw_conn_id(const struct gw_conn *c);
struct gw_ctx *gw_conn_ctx(const struct gw_conn *c);
const char *gw_conn_peer(const struct gw_conn *c);
struct bufferevent *gw_conn_bev(struct gw_conn *c);

/* Writes a complete response.  extra_headers is "Name: value\r\n" lines or
 * NULL.  A HEAD request gets the head only. */
void gw_conn_respond(struct gw_conn *c, const struct gw_http_request *req, int status,
                     const char *content_type, const char *extra_headers, const void *body,
                     size_t len);
/* {"error":{"code":...,"message":...}} with the status; closes after it when
 * close is set. */
void gw_conn_respond_error(struct gw_conn *c, const struct gw_http_request *req, int status,
                           const char *code, const char *message);

/* What the connection does with its bytes after a 101. */
struct gw_conn_upgrade_ops {
    void (*on_read)(void *owner);             /* input available */
    void (*on_drained)(void *owner);          /* output fully written */
    void (*on_closed)(void *owner, bool eof); /* TCP gone or error; owner must not touch c */
    void (*on_free)(void *owner);             /* the conn is being freed: release owner */
    void (*on_tick)(void *owner, int64_t now_mono_ms); /* once a second */
    void (*on_drain)(void *owner);                     /* the server is shutting down */
};

/* Shutdown: every upgraded connection gets on_drain, idle HTTP connections
 * close; requests being answered finish (with Connection: close). */
void gw_listener_drain(struct gw_listener *l);

/* Calls on_tick of every upgraded connection.  main.c drives it from a
 * one-second timer: pings, idle and close timeouts, token expiry. */
void gw_listener_tick(struct gw_listener *l, int64_t now_mono_ms);

/* Switches c to an upgraded protocol: the 101 head has been written by the
 * caller.  From now on bytes go to ops with `owner`. */
void gw_conn_set_upgraded(struct gw_conn *c, const struct gw_conn_upgrade_ops *ops, void *owner);

/* Keeps c allocated across an asynchronous operation (a Redis command whose
 * reply will answer the request).  Release returns false when c died
 * meanwhile: the caller must then not touch it. */
void gw_conn_hold(struct gw_conn *c);
bool gw_conn_release(struct gw_conn *c);

/* Closes once the output buffer is flushed (graceful), or at once when abort. */
void gw_conn_close(struct gw_conn *c, bool abort);
bool gw_conn_closing(const struct gw_conn *c);

#endif
