#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <wslay/wslay.h>

#include "admit.h"
#include "config.h"
#include "conn.h"
#include "deflate.h"
#include "frame.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "protocol.h"
#include "ws.h"
#include "wsdeflate.h"

struct gw_ws {
    /* What a fan-out reads and writes per recipient (send_frame) comes
     * first, in two cache lines. */
    struct gw_conn *conn;
    struct gw_ctx *ctx;
    /* Only while something is in flight (wslay_trim): an idle connection
     * does not keep wslay's ~8.5 KiB of frame buffers. */
    wslay_event_context_ptr wslay;
    int sending; /* a gw_ws_send_* call is on the stack */
    bool closed_notified;
    bool close_wanted; /* a close waits for queued messages to go first */
    bool proceeding;
    struct gw_ws_options opts;
    struct gw_ws_stats stats;
    /* Bytes handed to wslay, and the wire size of the frames it has started
     * (headers included): equal at a frame boundary, when wslay holds none
     * of the stream and its context can go. */
    uint64_t wire_fed, wire_framed;
    bool in_fragmented; /* a data message continues in a later frame */
    const struct gw_ws_handler *h;
    void *arg;
    int64_t last_rx_ms;
    int64_t last_ping_ms;
    int64_t close_started_ms; /* 0 until we start closing */
    uint16_t close_code;
    char close_reason[64];
    bool read_paused;   /* output over GW_WS_READ_PAUSE: input waits */
    bool admit_waiting; /* a large message waits for admission: input waits */
    bool admit_owed;    /* ...or an inflated one is paid for after the fact */
    /* The data message being received, assembled here rather than by wslay
     * (no buffering): its pages are touched as its bytes come, and the
     * handler takes the buffer without a copy. */
    char *msg;
    size_t msg_bytes; /* announced by its frame headers so far */
    size_t msg_len;   /* received */
    size_t msg_cap;
    bool in_data_frame; /* the frame being read is part of it (not a control frame) */
    bool msg_deflated;  /* its first frame had RSV1: msg holds deflate data */
    struct gw_inflate_window *client_window; /* opts.deflate_client_bits: made on first use */
    /* A close frame being read: its reason is checked here (check_close_reason). */
    uint8_t close_in[125];
    size_t close_in_len, close_in_want;
    bool in_close_frame;
    struct gw_admit_waiter admit;
    int64_t opened_ms;
};

static int send_frame(struct gw_ws *ws, const struct gw_frame *f);
static void proceed(struct gw_ws *ws);

static void notify_closed(struct gw_ws *ws)
{
    if (ws->closed_notified)
        return;
    ws->closed_notified = true;
    ws->stats.duration_ms = gw_mono_ms() - ws->opened_ms;
    if (ws->wslay) {
        ws->stats.close_sent = wslay_event_get_status_code_sent(ws->wslay);
        ws->stats.close_received = wslay_event_get_status_code_received(ws->wslay);
    }
    if (ws->h->on_closed)
        ws->h->on_closed(ws->arg, &ws->stats);
}

/*
 * wslay sends control frames ahead of queued messages, so a close queued
 * right after a reply would overtake (and drop) it.  The close therefore
 * waits until wslay's queue is empty; input is ignored from now on.
 */
static void request_close(struct gw_ws *ws, uint16_t code, const char *reason)
{
    if (ws->close_wanted || (ws->wslay && wslay_event_get_close_sent(ws->wslay)))
        return;
    ws->close_wanted = true;
    /* Input is ignored from now on: a slot or a place in the queue would
     * only keep others waiting. */
    gw_admit_release(ws->ctx->admit, &ws->admit);
    ws->admit_waiting = ws->admit_owed = false;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof(ws->close_reason), "%s", reason ? reason : "");
}

static void queue_wanted_close(struct gw_ws *ws)
{
    if (!ws->close_wanted || wslay_event_get_close_sent(ws->wslay) ||
        wslay_event_get_queued_msg_count(ws->wslay) > 0)
        return;
    wslay_event_queue_close(ws->wslay, ws->close_code, (const uint8_t *)ws->close_reason,
                            strlen(ws->close_reason));
}

static ssize_t on_wslay_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                             void *user_data)
{
    (void)flags;
    struct gw_ws *ws = user_data;
    if (ws->admit_waiting || ws->close_wanted) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    struct evbuffer *in = gw_conn_input(ws->conn);
    int n = evbuffer_remove(in, buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    ws->wire_fed += (uint64_t)n;
    return n;
}

static ssize_t on_wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                             int flags, void *user_data)
{
    (void)flags;
    struct gw_ws *ws = user_data;
    struct evbuffer *out = gw_conn_output(ws->conn);
    /* The evbuffer takes everything, so wslay never holds a half-sent frame and
     * prebuilt frames can be appended between its writes. */
    if (evbuffer_add(out, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    gw_conn_queued(ws->conn);
    return (ssize_t)len;
}

/*
 * A data message may grow to GW_WS_SMALL_MESSAGE on the connection's own
 * account; the bytes past it need admission (admit.h).  wslay has read the
 * frame header and allocated (not touched) the payload: waiting here stops
 * the reading, so an unadmitted frame costs a few KiB, not --max-message.
 */
static void on_wslay_frame_start(wslay_event_context_ptr ctx,
                                 const struct wslay_event_on_frame_recv_start_arg *f,
                                 void *user_data)
{
    (void)ctx;
    struct gw_ws *ws = user_data;
    /* Clients mask every frame (wslay refuses others) and encode lengths
     * minimally (wslay checks), so this is the frame's exact size on the wire. */
    uint64_t plen = f->payload_length;
    ws->wire_framed += 2 + 4 + (plen < 126 ? 0 : plen <= 0xFFFF ? 2 : 8) + plen;
    if (f->opcode < 0x8)
        ws->in_fragmented = !f->fin;
    ws->in_data_frame = f->opcode < 0x8;
    /* RSV1 on the first frame marks the whole message (RFC 7692 6); wslay
     * refuses it on continuations, and on anything unless negotiated. */
    if (f->opcode == WSLAY_TEXT_FRAME || f->opcode == WSLAY_BINARY_FRAME)
        ws->msg_deflated = (f->rsv & WSLAY_RSV1_BIT) != 0;
    ws->in_close_frame = f->opcode == WSLAY_CONNECTION_CLOSE && f->payload_length <= 125;
    ws->close_in_len = 0;
    ws->close_in_want = (size_t)f->payload_length;
    if (!ws->in_data_frame || f->payload_length == 0)
        return;
    size_t before = ws->msg_bytes;
    /* wslay checks each frame against the limit; without buffering, the sum
     * of a fragmented message is ours to check. */
    if (f->payload_length > ws->opts.max_message - before) {
        ws->in_data_frame = false;
        request_close(ws, WSLAY_CODE_MESSAGE_TOO_BIG, "");
        return;
    }
    ws->msg_bytes += (size_t)f->payload_length;
    if (ws->msg_bytes > ws->msg_cap) {
        size_t cap = ws->msg_cap * 2 > ws->msg_bytes ? ws->msg_cap * 2 : ws->msg_bytes;
        if (cap > ws->opts.max_message)
            cap = ws->opts.max_message;
        char *grown = realloc(ws->msg, cap);
        if (!grown) {
            ws->in_data_frame = false;
            request_close(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
            return;
        }
        ws->msg = grown;
        ws->msg_cap = cap;
    }
    if (ws->msg_bytes <= GW_WS_SMALL_MESSAGE)
        return;
    size_t charge = ws->msg_bytes - (before > GW_WS_SMALL_MESSAGE ? before : GW_WS_SMALL_MESSAGE);
    if (!gw_admit_acquire(ws->ctx->admit, &ws->admit, charge)) {
        ws->admit_waiting = true;
        gw_conn_hold_input(ws->conn, true);
    }
}

/*
 * wslay checks a close frame's reason for UTF-8 chunk by chunk, skipping the
 * first two bytes of every chunk (meant for the code), so a reason split
 * across reads can slip through, and wslay would echo it back.  The whole
 * reason is checked here once the frame is in; an invalid one gets our 1007
 * queued first, which wslay's echo then cannot replace.
 */
static void check_close_reason(wslay_event_context_ptr ctx, struct gw_ws *ws, const uint8_t *data,
                               size_t len)
{
    if (len > sizeof(ws->close_in) - ws->close_in_len)
        len = sizeof(ws->close_in) - ws->close_in_len;
    if (len > 0) {
        memcpy(ws->close_in + ws->close_in_len, data, len);
        ws->close_in_len += len;
    }
    if (ws->close_in_len < ws->close_in_want || ws->close_in_want <= 2)
        return;
    ws->in_close_frame = false;
    if (chat_utf8_count((const char *)ws->close_in + 2, ws->close_in_len - 2) < 0)
        wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, NULL, 0);
}

static void on_wslay_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *chunk, void *user_data)
{
    struct gw_ws *ws = user_data;
    if (ws->in_close_frame) {
        check_close_reason(ctx, ws, chunk->data, chunk->data_length);
        return;
    }
    if (!ws->in_data_frame || chunk->data_length == 0 ||
        chunk->data_length > ws->msg_cap - ws->msg_len)
        return;
    memcpy(ws->msg + ws->msg_len, chunk->data, chunk->data_length);
    ws->msg_len += chunk->data_length;
}

/* Hands over the assembled message (malloc'd, possibly NULL when empty) and
 * starts the next. */
static char *take_message(struct gw_ws *ws, size_t *len)
{
    char *msg = ws->msg;
    *len = ws->msg_len;
    ws->msg = NULL;
    ws->msg_bytes = ws->msg_len = ws->msg_cap = 0;
    /* A debt still queued (charge_inflated) stays: a message wslay had
     * already buffered must not cancel what the one before it owes. */
    if (!ws->admit_owed)
        gw_admit_release(ws->ctx->admit, &ws->admit);
    return msg;
}

static void on_admitted(struct gw_admit_waiter *w)
{
    struct gw_ws *ws = (struct gw_ws *)((char *)w - offsetof(struct gw_ws, admit));
    ws->admit_waiting = false;
    if (ws->admit_owed) {
        /* Paid for messages already handled: unless one is being assembled,
         * nothing needs the slot, and holding it idle would look like a
         * stalled upload. */
        ws->admit_owed = false;
        if (!ws->msg)
            gw_admit_release(ws->ctx->admit, &ws->admit);
    }
    if (!ws->read_paused)
        gw_conn_hold_input(ws->conn, false);
    proceed(ws); /* wslay resumes the frame it stopped in */
}

/*
 * Large messages pay --large-message-rate tokens for their bytes past
 * GW_WS_SMALL_MESSAGE before they are read (on_wslay_frame_start), but a
 * compressed one is small on the wire and only shows its size once inflated:
 * a client could make the node inflate and parse megabytes a second without
 * ever waiting its turn.  So the inflated bytes not yet paid for are
 * charged now, and until the node's bucket has them the connection is not
 * read again; this message, already inflated, goes on.
 */
static void charge_inflated(struct gw_ws *ws, size_t wire_len, size_t inflated_len)
{
    size_t paid = wire_len > GW_WS_SMALL_MESSAGE ? wire_len : GW_WS_SMALL_MESSAGE;
    if (inflated_len <= paid)
        return;
    if (gw_admit_acquire(ws->ctx->admit, &ws->admit, inflated_len - paid)) {
        gw_admit_release(ws->ctx->admit, &ws->admit);
        return;
    }
    ws->admit_waiting = ws->admit_owed = true;
    gw_conn_hold_input(ws->conn, true);
}

/*
 * Takes a compressed message and returns it inflated (NULL after asking for
 * the close it earned).  The loop inflates it, on the node's one stream,
 * before anything is handed to the offload thread; wslay skipped the UTF-8
 * check of the compressed bytes, so text is checked here.
 */
static char *inflate_message(struct gw_ws *ws, uint8_t opcode, char *data, size_t *len)
{
    char *out = NULL;
    size_t outlen = 0;
    int rc = CHAT_WSDEFLATE_E_NOMEM;
    if (ws->opts.deflate_client_bits) {
        if (!ws->client_window &&
            (ws->client_window = gw_inflate_window_new(ws->opts.deflate_client_bits)))
            gw_metrics_gauge_add(ws->ctx->metrics, GW_G_DEFLATE_CLIENT_WINDOWS, 1);
        if (ws->client_window)
            rc = gw_inflate_window_inflate(ws->client_window, data, *len, ws->opts.max_message,
                                           &out, &outlen);
    } else if (ws->ctx->deflate) {
        rc = gw_deflate_inflate(ws->ctx->deflate, data, *len, ws->opts.max_message, &out, &outlen);
    }
    gw_metrics_add(ws->ctx->metrics, GW_M_DEFLATE_IN_WIRE, *len);
    free(data);
    if (rc == CHAT_WSDEFLATE_OK && opcode == WSLAY_TEXT_FRAME && chat_utf8_count(out, outlen) < 0)
        rc = CHAT_WSDEFLATE_E_DATA;
    switch (rc) {
    case CHAT_WSDEFLATE_OK:
        gw_metrics_add(ws->ctx->metrics, GW_M_DEFLATE_IN_RAW, outlen);
        charge_inflated(ws, *len, outlen);
        *len = outlen;
        return out;
    case CHAT_WSDEFLATE_E_TOO_BIG:
        chat_log(CHAT_LOG_INFO, "ws_inflate_too_big conn=%llu compressed=%zu",
                 (unsigned long long)gw_conn_id(ws->conn), *len);
        request_close(ws, WSLAY_CODE_MESSAGE_TOO_BIG, "");
        break;
    case CHAT_WSDEFLATE_E_DATA:
        free(out);
        request_close(ws, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA, "");
        break;
    default:
        request_close(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        break;
    }
    return NULL;
}

static void on_wslay_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                         void *user_data)
{
    struct gw_ws *ws = user_data;
    ws->last_rx_ms = gw_mono_ms();
    ws->stats.frames_in++;
    size_t len = m->msg_length;
    char *data = m->opcode < 0x8 ? take_message(ws, &len) : NULL;
    if (ws->close_wanted || wslay_event_get_close_sent(ctx)) {
        free(data);
        return;
    }
    if (m->opcode < 0x8 && ws->msg_deflated && !(data = inflate_message(ws, m->opcode, data, &len)))
        return;
    ws->stats.bytes_in += len;
    if (m->opcode < 0x8 && !data && !(data = malloc(1))) {
        request_close(ws, WSLAY_CODE_INTERNAL_SERVER_ERROR, "out of memory");
        return;
    }
    switch (m->opcode) {
    case WSLAY_TEXT_FRAME:
        /* Valid UTF-8: wslay checks text frames as they arrive (1007). */
        gw_metrics_add(ws->ctx->metrics, GW_M_MESSAGES_IN, 1);
        if (ws->h->on_text)
            ws->h->on_text(ws->arg, data, len);
        else
            free(data);
        break;
    case WSLAY_BINARY_FRAME:
        if (ws->opts.echo_binary) {
            struct gw_frame f = {.payload = data, .len = len};
            f.header_len = gw_frame_header_op(f.header, WSLAY_BINARY_FRAME, len);
            ws->sending++;
            send_frame(ws, &f);
            ws->sending--;
            free(data);
            break;
        }
        free(data);
        request_close(ws, WSLAY_CODE_UNSUPPORTED_DATA, "binary frames are not supported");
        break;
    default:
        /* ping, pong and close are answered by wslay itself */
        if (ws->h->on_control)
            ws->h->on_control(ws->arg);
        break;
    }
}

static void on_close_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_conn *c = arg;
    if (gw_conn_release(c))
        gw_conn_close(c, true);
}

/* Ends the connection, but never under a gw_ws_send_* call: its caller may
 * be walking a list that the session's teardown would change. */
static void close_conn(struct gw_ws *ws, bool abort)
{
    if (!ws->sending) {
        gw_conn_close(ws->conn, abort);
        return;
    }
    if (!abort && evbuffer_get_length(gw_conn_output(ws->conn)) > 0) {
        gw_conn_close(ws->conn, false); /* only marks it: the free waits for the flush */
        return;
    }
    struct timeval now = {0, 0};
    gw_conn_hold(ws->conn);
    if (event_base_once(ws->ctx->base, -1, EV_TIMEOUT, on_close_later, ws->conn, &now) != 0)
        gw_conn_release(ws->conn); /* no memory: the close timeout ends it */
}

/* Everything queued counts, wslay's own replies (pongs, close) included.
 * The sends check GW_WS_OUTPUT_LIMIT before queueing a frame; this backstop
 * after wslay wrote allows one frame of --max-message on top, so a large
 * reply to a reader that keeps up is not mistaken for a slow reader.  Past
 * it the connection is cut off without flushing. */
static bool output_within_limit(struct gw_ws *ws)
{
    size_t pending = evbuffer_get_length(gw_conn_output(ws->conn));
    if (pending <= GW_WS_OUTPUT_LIMIT + ws->opts.max_message + 65536)
        return true;
    chat_log(CHAT_LOG_WARN, "slow_consumer_closed conn=%llu pending=%zu",
             (unsigned long long)gw_conn_id(ws->conn), pending);
    gw_metrics_add(ws->ctx->metrics, GW_M_SLOW_CLOSED, 1);
    return false;
}

/* Reading pauses while the peer does not take what it is sent (libevent's
 * le-proxy pattern); on_drained resumes it. */
static void apply_backpressure(struct gw_ws *ws)
{
    size_t pending = evbuffer_get_length(gw_conn_output(ws->conn));
    if (!ws->read_paused && pending > GW_WS_READ_PAUSE) {
        ws->read_paused = true;
        gw_conn_pause_reading(ws->conn, GW_WS_READ_RESUME);
    }
}

/*
 * Every setting of a fresh wslay context, in one place, so that a context
 * made again later (or on demand) gets exactly the same: the limits, no
 * buffering (messages are assembled here), and RSV1 when permessage-deflate
 * was negotiated (otherwise wslay fails a frame with RSV1 with 1002).
 */
static void configure_wslay(struct gw_ws *ws)
{
    wslay_event_config_set_max_recv_msg_length(ws->wslay, ws->opts.max_message);
    wslay_event_config_set_no_buffering(ws->wslay, 1);
    wslay_event_config_set_allowed_rsv_bits(ws->wslay, ws->opts.deflate_bits ? WSLAY_RSV1_BIT
                                                                             : WSLAY_RSV_NONE);
}

/* Contexts come and go (wslay_trim): each new one is configured the same. */
static bool wslay_new(struct gw_ws *ws)
{
    static const struct wslay_event_callbacks callbacks = {
        .recv_callback = on_wslay_recv,
        .send_callback = on_wslay_send,
        .on_frame_recv_start_callback = on_wslay_frame_start,
        .on_frame_recv_chunk_callback = on_wslay_chunk,
        .on_msg_recv_callback = on_wslay_msg,
    };
    if (wslay_event_context_server_init(&ws->wslay, &callbacks, ws) != 0) {
        ws->wslay = NULL;
        return false;
    }
    configure_wslay(ws);
    ws->wire_fed = ws->wire_framed = 0;
    gw_metrics_gauge_add(ws->ctx->metrics, GW_G_WS_PARSERS, 1);
    return true;
}

/*
 * Frees the wslay context when it holds nothing: no partial frame or
 * message, nothing queued, no close begun.  The next input creates a fresh
 * one, which is in the state this one was in.
 */
static void wslay_trim(struct gw_ws *ws)
{
    if (!ws->wslay || ws->close_wanted || ws->admit_waiting || ws->in_fragmented || ws->msg ||
        ws->msg_bytes > 0 || ws->wire_fed != ws->wire_framed || wslay_event_want_write(ws->wslay) ||
        !wslay_event_want_read(ws->wslay) || wslay_event_get_close_received(ws->wslay) ||
        wslay_event_get_close_sent(ws->wslay))
        return;
    wslay_event_context_free(ws->wslay);
    ws->wslay = NULL;
    gw_metrics_gauge_add(ws->ctx->metrics, GW_G_WS_PARSERS, -1);
}

/*
 * Drives wslay until it makes no more progress, then closes the socket when
 * neither side wants anything more (as h2o's proceed() does).
 */
static void proceed(struct gw_ws *ws)
{
    if (ws->proceeding || gw_conn_closing(ws->conn))
        return;
    if (!ws->wslay) {
        if (evbuffer_get_length(gw_conn_input(ws->conn)) == 0 && !ws->close_wanted)
            return; /* idle: nothing for wslay to do */
        if (!wslay_new(ws)) {
            close_conn(ws, true);
            return;
        }
    }
    ws->proceeding = true;
    bool fail = false;
    if (!ws->close_wanted && wslay_event_want_read(ws->wslay) && wslay_event_recv(ws->wslay) != 0)
        fail = true;
    if (!fail && wslay_event_want_write(ws->wslay) && wslay_event_send(ws->wslay) != 0)
        fail = true;
    if (!fail && ws->close_wanted && !wslay_event_get_close_sent(ws->wslay)) {
        queue_wanted_close(ws);
        if (wslay_event_want_write(ws->wslay) && wslay_event_send(ws->wslay) != 0)
            fail = true;
    }
    ws->proceeding = false;
    if (!fail && !output_within_limit(ws)) {
        close_conn(ws, true); /* a slow reader: cut off, nothing flushed */
        return;
    }
    if (!fail)
        apply_backpressure(ws);
    if (fail) {
        chat_log(CHAT_LOG_DEBUG, "ws_protocol_error conn=%llu",
                 (unsigned long long)gw_conn_id(ws->conn));
        /* wslay gave up on the stream (a control frame over 125 bytes or
         * fragmented, a 2^63 length): it sends no close of its own then, so
         * we write 1002 after what is already queued and close gracefully,
         * and the peer reads the code instead of a reset. */
        if (!wslay_event_get_close_sent(ws->wslay)) {
            static const uint8_t close_1002[] = {0x88, 0x02, 0x03, 0xEA};
            evbuffer_add(gw_conn_output(ws->conn), close_1002, sizeof(close_1002));
            gw_conn_queued(ws->conn);
        }
        close_conn(ws, false);
        return;
    }
    if (wslay_event_get_close_sent(ws->wslay)) {
        if (!ws->close_started_ms)
            ws->close_started_ms = gw_mono_ms();
        /* Our close frame is out: the server closes TCP first (RFC 6455 7.1.1). */
        if (!wslay_event_want_write(ws->wslay))
            close_conn(ws, false);
    } else if (!wslay_event_want_read(ws->wslay) && !wslay_event_want_write(ws->wslay)) {
        close_conn(ws, false);
    } else {
        wslay_trim(ws);
    }
}

static void op_read(void *owner)
{
    proceed(owner);
}

static void op_drained(void *owner)
{
    struct gw_ws *ws = owner;
    if (ws->read_paused) {
        ws->read_paused = false;
        gw_conn_resume_reading(ws->conn);
        if (ws->admit_waiting)
            gw_conn_hold_input(ws->conn, true);
        proceed(ws); /* input may have waited in the buffer */
    }
}

static void op_closed(void *owner, bool eof)
{
    (void)eof;
    notify_closed(owner);
}

static void op_free(void *owner)
{
    struct gw_ws *ws = owner;
    gw_admit_release(ws->ctx->admit, &ws->admit);
    notify_closed(ws);
    gw_metrics_gauge_add(ws->ctx->metrics, GW_G_CONNECTIONS, -1);
    if (ws->wslay) {
        wslay_event_context_free(ws->wslay);
        gw_metrics_gauge_add(ws->ctx->metrics, GW_G_WS_PARSERS, -1);
    }
    if (ws->client_window) {
        gw_inflate_window_free(ws->client_window);
        gw_metrics_gauge_add(ws->ctx->metrics, GW_G_DEFLATE_CLIENT_WINDOWS, -1);
    }
    free(ws->msg);
    free(ws);
}

static void op_tick(void *owner, int64_t now)
{
    struct gw_ws *ws = owner;
    if (ws->close_started_ms) {
        if (now - ws->close_started_ms > GW_WS_CLOSE_GRACE_MS)
            gw_conn_close(ws->conn, true);
        return;
    }
    /* A slot held by a message that does not come, while others wait: the
     * slowloris of large messages. */
    if (gw_admit_holding(&ws->admit) && now - ws->admit.held_since > GW_WS_ADMIT_HOLD_MS &&
        gw_admit_waiting(ws->ctx->admit) > 0) {
        chat_log(CHAT_LOG_INFO, "slow_message_closed conn=%llu bytes=%zu",
                 (unsigned long long)gw_conn_id(ws->conn), ws->msg_bytes);
        gw_ws_close(ws, WSLAY_CODE_POLICY_VIOLATION, "message too slow");
        return;
    }
    if (now - ws->last_rx_ms > ws->opts.idle_timeout_ms) {
        gw_ws_close(ws, WSLAY_CODE_GOING_AWAY, "idle timeout");
        return;
    }
    if (now - ws->last_ping_ms >= ws->opts.ping_interval_ms) {
        ws->last_ping_ms = now;
        /* Written directly (wslay's send callback never leaves half a frame
         * behind), so pinging an idle connection needs no wslay context. */
        uint8_t ping[10];
        evbuffer_add(gw_conn_output(ws->conn), ping, gw_frame_header_op(ping, WSLAY_PING, 0));
        gw_conn_queued(ws->conn);
    }
    if (ws->h->on_tick && !gw_conn_closing(ws->conn))
        ws->h->on_tick(ws->arg, now);
}

static void op_drain(void *owner)
{
    gw_ws_close(owner, WSLAY_CODE_GOING_AWAY, "server shutting down");
}

static const struct gw_conn_upgrade_ops ws_ops = {
    .on_drain = op_drain,
    .on_read = op_read,
    .on_drained = op_drained,
    .on_closed = op_closed,
    .on_free = op_free,
    .on_tick = op_tick,
};

struct gw_ws *gw_ws_attach(struct gw_conn *c, const struct gw_ws_options *opts,
                           const struct gw_ws_handler *h, void *arg)
{
    struct gw_ws *ws = calloc(1, sizeof(*ws));
    if (!ws) {
        gw_conn_close(c, true);
        return NULL;
    }
    ws->conn = c;
    ws->ctx = gw_conn_ctx(c);
    ws->h = h;
    ws->arg = arg;
    ws->opts = *opts;
    if (!ws->ctx->deflate || !ws->opts.deflate_bits)
        ws->opts.deflate_bits = ws->opts.deflate_client_bits = 0; /* no streams to do it with */
    ws->admit.granted = on_admitted;
    ws->stats.conn_id = gw_conn_id(c);
    ws->opened_ms = ws->last_rx_ms = ws->last_ping_ms = gw_mono_ms();
    if (ws->opts.deflate_bits)
        gw_metrics_add(ws->ctx->metrics, GW_M_DEFLATE_SESSIONS, 1);
    gw_metrics_gauge_add(ws->ctx->metrics, GW_G_CONNECTIONS, 1);
    gw_metrics_add(ws->ctx->metrics, GW_M_CONNECTIONS_TOTAL, 1);
    /* wslay pulls from the input buffer as it parses, so a modest watermark
     * bounds memory per connection without limiting message size. */
    gw_conn_set_read_limit(c, 256 * 1024);
    gw_conn_set_upgraded(c, &ws_ops, ws);
    return ws;
}

/* Returns 0 while the unsent output is within the limit; otherwise cuts the
 * slow reader off: drops what is queued and closes with 1008.  The frame
 * about to be queued is not counted: one large reply (a `joined` full of
 * images) to a reader that keeps up must not look like a slow reader. */
static int check_output(struct gw_ws *ws, size_t len)
{
    (void)len;
    struct evbuffer *out = gw_conn_output(ws->conn);
    size_t pending = evbuffer_get_length(out);
    if (pending <= GW_WS_OUTPUT_LIMIT)
        return 0;
    chat_log(CHAT_LOG_WARN, "slow_consumer_closed conn=%llu pending=%zu",
             (unsigned long long)gw_conn_id(ws->conn), pending);
    gw_metrics_add(ws->ctx->metrics, GW_M_SLOW_CLOSED, 1);
    gw_conn_drop_output(ws->conn);
    request_close(ws, WSLAY_CODE_POLICY_VIOLATION, "output limit exceeded");
    proceed(ws);
    return GW_ERR_TOO_LARGE;
}

/*
 * Data goes straight to the output buffer, framed by us, not through
 * wslay's queue: wslay sends its own control frames ahead of queued data, so
 * a close it queues on a protocol error (1002) would overtake, and drop, the
 * replies owed for the messages before the bad frame.  Our send callback
 * always takes everything, so wslay never holds half a frame to interleave.
 */
static int send_text(struct gw_ws *ws, const char *data, size_t len)
{
    struct gw_frame f;
    gw_frame_text(&f, data, len);
    return send_frame(ws, &f);
}

int gw_ws_send_text(struct gw_ws *ws, const char *data, size_t len)
{
    ws->sending++;
    int rc = send_text(ws, data, len);
    ws->sending--;
    return rc;
}

/*
 * The compressed payload of f for this connection (length in *len), or NULL
 * to send it plain.  A fan-out's frame carries its compressed form (f->z):
 * the first recipient makes it, the others with the same window reuse it,
 * so a message is compressed once per node, not once per recipient.  A
 * compressed copy made for this connection alone is left in *owned.
 */
static const char *compressed_payload(struct gw_ws *ws, const struct gw_frame *f, size_t *len,
                                      char **owned)
{
    unsigned bits = ws->opts.deflate_bits;
    struct gw_frame_z *z = f->z;
    if (z && z->bits == bits) {
        *len = z->len;
        return z->plain ? NULL : gw_blob_bytes(z->data);
    }
    char *out = NULL;
    size_t outlen = 0;
    int rc = gw_deflate_compress(ws->ctx->deflate, bits, f->payload, f->len, &out, &outlen);
    gw_metrics_add(ws->ctx->metrics, GW_M_DEFLATE_COMPRESSIONS, 1);
    /* Already compressed data (a JPEG in base64 shrinks, a random one may
     * not): RSV1 is per message, so it goes out plain. */
    bool plain = rc != CHAT_WSDEFLATE_OK || outlen >= f->len;
    if (plain) {
        free(out);
        out = NULL;
        outlen = f->len;
    }
    if (z && z->bits == 0) {
        if (!plain && !(z->data = gw_blob_adopt(out, outlen))) {
            plain = true; /* out went with it */
            outlen = f->len;
        }
        z->bits = (uint8_t)bits;
        z->plain = plain;
        z->len = outlen; /* the plain length when plain: what later recipients send */
        out = plain ? NULL : (char *)gw_blob_bytes(z->data);
    } else {
        *owned = out;
    }
    if (plain)
        return NULL;
    *len = outlen;
    return out;
}

/* The blob to append by reference for a fan-out's payload of len bytes at
 * payload (the plain one or its shared compressed form), or NULL to copy it:
 * small, not a fan-out, or no memory for the shared copy. */
static struct gw_blob *shared_payload(const struct gw_frame *f, const char *payload, size_t len)
{
    struct gw_frame_z *z = f->z;
    if (!z || len < GW_FRAME_SHARE_MIN)
        return NULL;
    if (z->data && payload == gw_blob_bytes(z->data))
        return z->data;
    if (payload != f->payload)
        return NULL; /* compressed for this connection alone */
    if (!z->copy)
        z->copy = gw_blob_copy(f->payload, f->len);
    return z->copy;
}

static int send_frame(struct gw_ws *ws, const struct gw_frame *f)
{
    if (!gw_ws_is_open(ws))
        return GW_ERR_IO;
    if (check_output(ws, f->header_len + f->len) != 0)
        return GW_ERR_TOO_LARGE;
    /* Anything wslay still holds goes first (a pong owed for a ping that came
     * before this message), so frames keep their order and never interleave;
     * inside proceed() (a reply to a message being received) wslay is driven
     * directly. */
    if (ws->wslay && wslay_event_want_write(ws->wslay)) {
        if (ws->proceeding)
            wslay_event_send(ws->wslay);
        else
            proceed(ws);
    }
    const uint8_t *header = f->header;
    size_t header_len = f->header_len;
    const char *payload = f->payload;
    size_t len = f->len;
    char *owned = NULL;
    uint8_t zheader[10];
    const char *z = ws->opts.deflate_bits && f->len >= ws->ctx->cfg->deflate_min &&
                            f->len <= GW_DEFLATE_MAX_MESSAGE
                        ? compressed_payload(ws, f, &len, &owned)
                        : NULL;
    if (z) {
        header_len = gw_frame_header_op(zheader, gw_frame_opcode(f), len);
        zheader[0] |= 0x40; /* RSV1: this message is compressed */
        header = zheader;
        payload = z;
        gw_metrics_add(ws->ctx->metrics, GW_M_DEFLATE_OUT_WIRE, len);
        gw_metrics_add(ws->ctx->metrics, GW_M_DEFLATE_OUT_RAW, f->len);
    }
    struct evbuffer *out = gw_conn_output(ws->conn);
    struct gw_blob *shared = shared_payload(f, payload, len);
    int rc;
    if (!shared && len < GW_FRAME_SHARE_MIN) {
        /* One append, not two: a fan-out pays each append (the output's
         * chain walk and its callback) once per recipient. */
        uint8_t wire[10 + GW_FRAME_SHARE_MIN];
        memcpy(wire, header, header_len);
        memcpy(wire + header_len, payload, len);
        rc = evbuffer_add(out, wire, header_len + len) != 0 ? GW_ERR_NOMEM : GW_OK;
    } else {
        rc = evbuffer_add(out, header, header_len) != 0 ||
                     (shared ? gw_blob_append(out, shared) : evbuffer_add(out, payload, len)) != 0
                 ? GW_ERR_NOMEM
                 : GW_OK;
    }
    free(owned);
    gw_conn_queued(ws->conn); /* a failed append may have left part of the frame */
    if (rc != GW_OK)
        return rc;
    gw_metrics_add(ws->ctx->metrics, GW_M_MESSAGES_OUT, 1);
    gw_metrics_add(ws->ctx->metrics, GW_M_BYTES_OUT, len);
    ws->stats.frames_out++;
    ws->stats.bytes_out += len;
    return GW_OK;
}

int gw_ws_send_frame(struct gw_ws *ws, const struct gw_frame *f)
{
    ws->sending++;
    int rc = send_frame(ws, f);
    ws->sending--;
    return rc;
}

void gw_ws_close(struct gw_ws *ws, uint16_t code, const char *reason)
{
    if (gw_conn_closing(ws->conn))
        return;
    request_close(ws, code, reason);
    proceed(ws);
}

bool gw_ws_is_open(const struct gw_ws *ws)
{
    return !ws->closed_notified && !ws->close_wanted && !gw_conn_closing(ws->conn) &&
           !(ws->wslay && wslay_event_get_close_sent(ws->wslay));
}

uint64_t gw_ws_conn_id(const struct gw_ws *ws)
{
    return gw_conn_id(ws->conn);
}

struct gw_conn *gw_ws_conn(const struct gw_ws *ws)
{
    return ws->conn;
}
