#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway.h"

/*
 * One TCP connection: a bufferevent, HTTP/1.x request framing with
 * http-parser and its limits (16 KiB head -> 431, 64 KiB body -> 413, not
 * HTTP/1.x -> 400), keep-alive, responses, and the hand-over to an upgraded
 * protocol (WebSocket).
 *
 * Connections live in a gw_conns set (the listener's).  A gw_conn is freed in
 * one place (conn_free, conn.c), never inside one of its own callbacks:
 * gw_conn_close() marks it and the free happens when the callback unwinds,
 * the output has drained and no asynchronous operation holds it.
 *
 * Complete requests go up through the set's request callback; after an
 * upgrade, bytes go to the gw_conn_upgrade_ops of the new owner.
 */

#define GW_HTTP_MAX_HEAD 16384
#define GW_HTTP_MAX_BODY 65536
#define GW_HTTP_MAX_HEADERS 100

struct gw_conn;
struct gw_conns;
struct sockaddr;

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

/* A complete request on c: answer it now or later with gw_conn_respond*
 * (req stays valid until then); the next pipelined request waits. */
typedef void (*gw_conn_request_cb)(struct gw_ctx *ctx, struct gw_conn *c,
                                   const struct gw_http_request *req);

/* An empty set whose connections hand their requests to on_request.  Past
 * max_connections (0: no limit) open connections, or --max-conns-per-ip from
 * one address, a new connection is answered 503 and closed. */
struct gw_conns *gw_conns_new(struct gw_ctx *ctx, gw_conn_request_cb on_request,
                              size_t max_connections);
/* Closes every connection at once (their owners hear on_closed), frees the set. */
void gw_conns_free(struct gw_conns *set);
size_t gw_conns_count(const struct gw_conns *set);
/* Calls on_tick of every upgraded connection. */
void gw_conns_tick(struct gw_conns *set, int64_t now_mono_ms);
/* Shutdown: every upgraded connection gets on_drain, idle HTTP connections
 * close; requests being answered finish (with Connection: close). */
void gw_conns_drain(struct gw_conns *set);

/* Takes over an accepted socket (closed on failure).  NULL on no memory. */
struct gw_conn *gw_conn_new(struct gw_conns *set, int fd, const struct sockaddr *peer);

uint64_t gw_conn_id(const struct gw_conn *c);
struct gw_ctx *gw_conn_ctx(const struct gw_conn *c);
const char *gw_conn_peer(const struct gw_conn *c);
/* The client's address without the port (per-address limits). */
const char *gw_conn_addr(const struct gw_conn *c);

/*
 * Large answers an address has not read (pages of images): with
 * --max-conns-per-ip on, an address's connections may hold at most
 * GW_ADDR_HELD_MAX of them between them; the answers past it wait.  A
 * request that may answer with up to `need` bytes asks gw_conn_output_room,
 * promises them while it is prepared (gw_conn_promise_output(c, need), back
 * to 0 when answered), and has what it queued since gw_conn_output_mark
 * counted until the kernel takes it (gw_conn_hold_output_since).
 */
#define GW_ADDR_HELD_MAX (32u * 1024 * 1024)
bool gw_conn_output_room(const struct gw_conn *c, size_t need);
void gw_conn_promise_output(struct gw_conn *c, size_t bytes);
uint64_t gw_conn_output_mark(const struct gw_conn *c);
void gw_conn_hold_output_since(struct gw_conn *c, uint64_t mark);
/* The connection's buffers, for the upgraded protocol.  Whatever appends
 * to the output calls gw_conn_queued after it: the output has no callbacks,
 * which a fan-out would run once per recipient. */
struct evbuffer *gw_conn_input(struct gw_conn *c);
struct evbuffer *gw_conn_output(struct gw_conn *c);
/* Counts what was appended to the output since the last call and has it
 * written (at the end of the loop turn, or later under --write-delay). */
void gw_conn_queued(struct gw_conn *c);
/* Drops the queued output of a reader that does not keep up.  Only whole
 * frames can go: once the kernel has taken part of the output, it stays. */
void gw_conn_drop_output(struct gw_conn *c);
/* Caps how much input is buffered before reading pauses. */
void gw_conn_set_read_limit(struct gw_conn *c, size_t bytes);
/* Stops (or restarts) reading for a reason of the owner's other than
 * output: what is buffered stays for the owner to take. */
void gw_conn_hold_input(struct gw_conn *c, bool hold);
/* Stops reading until resumed; the upgrade owner's on_drained runs once the
 * unsent output is down to resume_below bytes. */
void gw_conn_pause_reading(struct gw_conn *c, size_t resume_below);
void gw_conn_resume_reading(struct gw_conn *c);

/* Writes a complete response.  extra_headers is "Name: value\r\n" lines or
 * NULL.  A HEAD request gets the head only. */
void gw_conn_respond(struct gw_conn *c, const struct gw_http_request *req, int status,
                     const char *content_type, const char *extra_headers, const void *body,
                     size_t len);
/* {"error":{"code":...,"message":...}} with the status. */
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

/* Switches c to an upgraded protocol: the 101 head has been written by the
 * caller.  From now on bytes go to ops with `owner`. */
void gw_conn_set_upgraded(struct gw_conn *c, const struct gw_conn_upgrade_ops *ops, void *owner);

/* Keeps c allocated across an asynchronous operation (a Redis command whose
 * reply will answer the request).  Release returns false when c died
 * meanwhile: the caller must then not touch it. */
void gw_conn_hold(struct gw_conn *c);
bool gw_conn_release(struct gw_conn *c);

/* Closes once the output buffer is flushed (graceful), or at once when abort.
 * The upgraded owner hears on_closed from inside this call when the socket
 * goes at once. */
void gw_conn_close(struct gw_conn *c, bool abort);
bool gw_conn_closing(const struct gw_conn *c);

#endif
