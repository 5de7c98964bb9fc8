#ifndef GW_WS_H
#define GW_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One WebSocket (RFC 6455, server side) over an upgraded gw_conn, framed by
 * wslay.  Enforces: binary -> 1003, invalid UTF-8 -> 1007, over max_message ->
 * 1009 (inflated size, when compressed), output over GW_WS_OUTPUT_LIMIT -> output dropped and 1008,
 * idle -> 1001, and pings every ping_interval.  The gw_ws is owned by its gw_conn and freed with
 * it; the handler learns through on_closed and must not use the gw_ws afterwards.
 *
 * Sending never ends the connection from inside the send call: a failure
 * found while sending closes it from the event loop a moment later, so a
 * fan-out loop can send to many sockets without one of them tearing down
 * its session under the loop.
 */

#define GW_WS_OUTPUT_LIMIT (8u * 1024 * 1024)
/* Unsent output above which the connection stops being read until it
 * drains below the low mark: a client that sends (pings, requests) but does
 * not read makes the server queue replies it never takes. */
#define GW_WS_READ_PAUSE (64u * 1024)
#define GW_WS_READ_RESUME (16u * 1024)
/* A data message up to this size is read on the connection's own account;
 * the rest of a larger one needs admission (admit.h), which bounds what all
 * connections together hold in partial messages and spend parsing them. */
#define GW_WS_SMALL_MESSAGE (64u * 1024)
/* How long a large message may hold its slot while others wait. */
#define GW_WS_ADMIT_HOLD_MS 15000
/* How long a close handshake may take before the socket is dropped. */
#define GW_WS_CLOSE_GRACE_MS 3000

struct gw_conn;
struct gw_ctx;
struct gw_frame;
struct gw_ws;

/* What one WebSocket carried, for the access log at its end.  Frames in are
 * complete messages of any opcode (pings and closes included); frames out are
 * the messages the gateway queued (wslay's own pongs and close not counted).
 * A close code is 1006 when no close frame went that way. */
struct gw_ws_stats {
    uint64_t frames_out, bytes_out; /* first: counted per message sent */
    uint64_t frames_in, bytes_in;
    uint64_t conn_id;
    int64_t duration_ms;
    uint16_t close_sent, close_received;
};

/* The stats as " duration_ms=... close_received=..." for a log line. */
#define GW_WS_STATS_FMT                                                                            \
    " duration_ms=%lld frames_in=%llu bytes_in=%llu frames_out=%llu bytes_out=%llu"                \
    " close_sent=%u close_received=%u"
#define GW_WS_STATS_ARGS(st)                                                                       \
    (long long)(st)->duration_ms, (unsigned long long)(st)->frames_in,                             \
        (unsigned long long)(st)->bytes_in, (unsigned long long)(st)->frames_out,                  \
        (unsigned long long)(st)->bytes_out, (unsigned)(st)->close_sent,                           \
        (unsigned)(st)->close_received

struct gw_ws_handler {
    /* A complete, valid UTF-8 text message.  data is malloc'd and now the
     * handler's (to keep or free): a message of a megabyte is not copied
     * again on its way to the request queue. */
    void (*on_text)(void *arg, char *data, size_t len);
    /* The connection is gone (any reason); last call for this gw_ws. */
    void (*on_closed)(void *arg, const struct gw_ws_stats *stats);
    /* Once a second (token expiry and the like); may be NULL. */
    void (*on_tick)(void *arg, int64_t now_ms);
    /* A control frame (ping, pong, close) arrived; may be NULL.  Every
     * client frame costs a rate token (PROTOCOL.md), these included. */
    void (*on_control)(void *arg);
};

struct gw_ws_options {
    size_t max_message;
    int ping_interval_ms;
    int idle_timeout_ms;
    bool echo_binary; /* /echo: binary messages come back as they are (else 1003) */
    /* permessage-deflate was negotiated (http.c): the server's window bits,
     * 8..15; 0 when it was not.  Neither side keeps context between
     * messages, so nothing else about it lives per connection... */
    uint8_t deflate_bits;
    /* ...unless the client keeps its window (--deflate-client-context and
     * an offer without client_no_context_takeover): its window bits, 8..15,
     * and the connection keeps an inflate stream from its first compressed
     * message on; 0 when each message it sends stands alone. */
    uint8_t deflate_client_bits;
};

/* Takes over c (after the 101 head was written).  NULL on no memory, in which
 * case c is closed. */
struct gw_ws *gw_ws_attach(struct gw_conn *c, const struct gw_ws_options *opts,
                           const struct gw_ws_handler *h, void *arg);

/* Queues one text message (copied).  0, or a negative GW_ERR_* when the socket
 * is closing or was just cut off for passing the output limit. */
int gw_ws_send_text(struct gw_ws *ws, const char *data, size_t len);

/* Queues an already framed server message (gw_frame_text), so a fan-out
 * frames once for all recipients. */
int gw_ws_send_frame(struct gw_ws *ws, const struct gw_frame *f);

/* Starts the closing handshake; the socket closes after the frame is out. */
void gw_ws_close(struct gw_ws *ws, uint16_t code, const char *reason);

bool gw_ws_is_open(const struct gw_ws *ws);

/* After a 101 on /echo: every text message comes back unchanged.
 * deflate_bits and deflate_client_bits as in gw_ws_options. */
void gw_ws_start_echo(struct gw_ctx *ctx, struct gw_conn *c, uint8_t deflate_bits,
                      uint8_t deflate_client_bits);
uint64_t gw_ws_conn_id(const struct gw_ws *ws);
/* The connection under it, for what is per connection or per address. */
struct gw_conn *gw_ws_conn(const struct gw_ws *ws);

#endif
