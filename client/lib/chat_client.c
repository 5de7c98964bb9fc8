/*
 * libchat_client: a WebSocket client on a libevent bufferevent, with wslay
 * doing the framing once our own code has finished the HTTP upgrade.
 *
 * Every user callback fires from one of our libevent handlers, never from an
 * API call, and each handler counts itself in c->in_cb.  chat_client_free and
 * chat_client_abort called while a handler is on the stack only mark the
 * client; the outermost handler does the work when it returns (the hiredis
 * "in callback" pattern).  API calls that queue output only activate c->kick,
 * so wslay is never re-entered from inside its own callbacks.
 */
#include "chat_client.h"
#include "chat_http_internal.h"
#include "protocol.h"
#include "wsdeflate.h"
#include "wshandshake.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <wslay/wslay.h>
#include <zlib.h>

#define CHAT_CLIENT_MAX_HEAD 16384
#define CHAT_CLIENT_DEFAULT_MAX_MESSAGE ((size_t)64 << 20)
#define CHAT_CLIENT_HANDSHAKE_TIMEOUT_S 10
#define CHAT_CLIENT_CLOSE_TIMEOUT_S 5
#define CHAT_CLOSE_ABNORMAL 1006

enum client_state {
    ST_CONNECTING, /* TCP connect in progress (maybe to the next address) */
    ST_HANDSHAKE,  /* request written, waiting for the response head */
    ST_OPEN,       /* wslay running; includes a closing handshake in progress */
    ST_FLUSHING,   /* close frames exchanged, writing out what is left */
    ST_DONE,       /* connection gone; only chat_client_free is left */
};

struct chat_client {
    struct event_base *base;
    struct bufferevent *bev;
    wslay_event_context_ptr ws;
    struct event *kick;  /* runs pump() from the loop after an API call */
    struct event *timer; /* handshake, closing handshake and flush deadlines */
    struct addrinfo *addrs, *next_addr;
    struct chat_url url;
    char *token;
    char *origin;
    bool presence_batch;
    bool deflate_offer;         /* offer permessage-deflate */
    bool deflate_on;            /* ...and the server took it */
    bool deflate_fresh;         /* the server keeps no context between messages */
    z_stream *inflater;         /* while deflate_on */
    uint64_t wire_in, wire_out; /* bytes through the socket once open, headers included */
    size_t max_message;
    chat_client_message_cb on_message;
    chat_client_event_cb on_event;
    void *arg;
    char key[CHAT_WS_KEY_LEN + 1];
    enum client_state state;
    int in_cb;          /* our handlers on the stack */
    bool in_wslay;      /* inside wslay_event_recv/send */
    bool free_pending;  /* chat_client_free called from a callback */
    bool abort_pending; /* chat_client_abort called from a callback */
    int close_code;     /* code reported by CLOSED once flushed */
    bool close_wanted;  /* chat_client_close called; queued once data is out */
    uint16_t close_want_code;
    uint8_t close_reason[123];
    size_t close_reason_len;
};

static void pump(struct chat_client *c);

static bool quiet(const struct chat_client *c)
{
    return c->free_pending || c->abort_pending;
}

static void fire(struct chat_client *c, enum chat_client_event ev, int code)
{
    if (!quiet(c) && c->on_event)
        c->on_event(c, ev, code, c->arg);
}

static void arm_timer(struct chat_client *c, int seconds)
{
    struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

    evtimer_add(c->timer, &tv);
}

/* Releases the connection (not the client); safe inside bufferevent
 * callbacks, never called inside wslay. */
static void teardown(struct chat_client *c)
{
    if (c->ws) {
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
    if (c->inflater) {
        inflateEnd(c->inflater);
        free(c->inflater);
        c->inflater = NULL;
    }
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->timer)
        evtimer_del(c->timer);
    if (c->kick)
        event_del(c->kick);
    c->state = ST_DONE;
}

static void refuse(struct chat_client *c, int status)
{
    teardown(c);
    fire(c, CHAT_CLIENT_REFUSED, status);
}

static void finish(struct chat_client *c, int code)
{
    teardown(c);
    fire(c, CHAT_CLIENT_CLOSED, code);
}

static void destroy(struct chat_client *c)
{
    teardown(c);
    if (c->kick)
        event_free(c->kick);
    if (c->timer)
        event_free(c->timer);
    if (c->addrs)
        freeaddrinfo(c->addrs);
    chat_url_deinit(&c->url);
    free(c->token);
    free(c->origin);
    free(c);
}

static void enter(struct chat_client *c)
{
    c->in_cb++;
}

static void leave(struct chat_client *c)
{
    if (--c->in_cb > 0)
        return;
    if (c->free_pending) {
        destroy(c);
    } else if (c->abort_pending) {
        teardown(c);
        c->abort_pending = false;
    }
}

/* ---- wslay callbacks: the bufferevent's evbuffers are the transport ---- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct chat_client *c = user;
    int n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);

    (void)flags;
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    c->wire_in += (uint64_t)n;
    return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct chat_client *c = user;

    (void)flags;
    if (evbuffer_add(bufferevent_get_output(c->bev), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    c->wire_out += len;
    return (ssize_t)len;
}

static int ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    evutil_secure_rng_get_bytes(buf, len);
    return 0;
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    struct chat_client *c = user;

    if (quiet(c) || !c->on_message)
        return;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return;
    if (!(arg->rsv & WSLAY_RSV1_BIT)) {
        c->on_message(c, arg->opcode == WSLAY_BINARY_FRAME, (const char *)arg->msg, arg->msg_length,
                      c->arg);
        return;
    }
    /* wslay let RSV1 through only because deflate was negotiated, and left
     * the UTF-8 check of the compressed bytes to us. */
    char *data = NULL;
    size_t len = 0;
    int rc = chat_wsdeflate_inflate(c->inflater, c->deflate_fresh, arg->msg, arg->msg_length,
                                    c->max_message, &data, &len);
    if (rc == CHAT_WSDEFLATE_OK && arg->opcode == WSLAY_TEXT_FRAME &&
        chat_utf8_count(data, len) < 0)
        rc = CHAT_WSDEFLATE_E_DATA;
    if (rc != CHAT_WSDEFLATE_OK) {
        wslay_event_queue_close(ctx,
                                rc == CHAT_WSDEFLATE_E_TOO_BIG
                                    ? WSLAY_CODE_MESSAGE_TOO_BIG
                                    : WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                NULL, 0);
        free(data);
        return;
    }
    c->on_message(c, arg->opcode == WSLAY_BINARY_FRAME, data, len, c->arg);
    free(data);
}

/* ---- connection state machine ---- */

/* Decides what a close frame seen or sent means for the connection. */
static void check_closing(struct chat_client *c)
{
    bool received = wslay_event_get_close_received(c->ws);
    bool sent = wslay_event_get_close_sent(c->ws);

    if (received && (sent || !wslay_event_get_write_enabled(c->ws))) {
        c->close_code = wslay_event_get_status_code_received(c->ws);
        c->state = ST_FLUSHING;
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
            finish(c, c->close_code);
            return;
        }
        arm_timer(c, CHAT_CLIENT_CLOSE_TIMEOUT_S);
    } else if ((sent || !wslay_event_get_write_enabled(c->ws)) &&
               !evtimer_pending(c->timer, NULL)) {
        /* Our close (or a protocol failure) is out: wait for the reply. */
        arm_timer(c, CHAT_CLIENT_CLOSE_TIMEOUT_S);
    }
}

/* Drives wslay until neither side makes progress (h2o's proceed loop). */
static void pump(struct chat_client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t in_len, out_len;
    int rv = 0;

    if (c->in_wslay)
        return;
    c->in_wslay = true;
    do {
        in_len = evbuffer_get_length(in);
        out_len = evbuffer_get_length(out);
        if (wslay_event_want_read(c->ws) && in_len > 0)
            rv = wslay_event_recv(c->ws);
        if (rv == 0 && !quiet(c) && wslay_event_want_write(c->ws))
            rv = wslay_event_send(c->ws);
        /* wslay sends control frames ahead of queued messages, so our close
         * is queued only once every message before it is out. */
        if (rv == 0 && !quiet(c) && c->close_wanted &&
            wslay_event_get_queued_msg_count(c->ws) == 0) {
            c->close_wanted = false;
            if (wslay_event_queue_close(c->ws, c->close_want_code, c->close_reason,
                                        c->close_reason_len) == 0)
                rv = wslay_event_send(c->ws);
        }
    } while (rv == 0 && !quiet(c) &&
             (evbuffer_get_length(in) != in_len || evbuffer_get_length(out) != out_len));
    c->in_wslay = false;
    if (quiet(c))
        return;
    if (rv != 0) {
        finish(c, CHAT_CLOSE_ABNORMAL);
        return;
    }
    /* Nothing more will be parsed: don't let a peer grow our input. */
    if (!wslay_event_get_read_enabled(c->ws))
        evbuffer_drain(in, evbuffer_get_length(in));
    check_closing(c);
}

static bool write_request(struct chat_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rv;

    const char *query = !c->presence_batch         ? ""
                        : strchr(c->url.path, '?') ? "&presence=batch"
                                                   : "?presence=batch";

    rv = evbuffer_add_printf(out,
                             "GET %s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                             "Sec-WebSocket-Version: 13\r\n",
                             c->url.path, query, c->url.host_header, c->key);
    if (rv >= 0 && c->token)
        rv = evbuffer_add_printf(out, "Authorization: Bearer %s\r\n", c->token);
    if (rv >= 0 && c->origin)
        rv = evbuffer_add_printf(out, "Origin: %s\r\n", c->origin);
    if (rv >= 0 && c->deflate_offer)
        rv = evbuffer_add_printf(out, "Sec-WebSocket-Extensions: %s\r\n", CHAT_WSDEFLATE_OFFER);
    if (rv >= 0)
        rv = evbuffer_add(out, "\r\n", 2);
    return rv >= 0;
}

static bool upgrade_ok(const struct chat_client *c, const char *head)
{
    char value[256], want[CHAT_WS_ACCEPT_LEN + 1];

    if (!chat_http_head_value(head, "Upgrade", value, sizeof(value)) ||
        !chat_http_list_has_token(value, "websocket"))
        return false;
    if (!chat_http_head_value(head, "Connection", value, sizeof(value)) ||
        !chat_http_list_has_token(value, "upgrade"))
        return false;
    chat_ws_accept_for_key(c->key, want);
    return chat_http_head_value(head, "Sec-WebSocket-Accept", value, sizeof(value)) &&
           strcmp(value, want) == 0;
}

/* The server's Sec-WebSocket-Extensions: nothing, or permessage-deflate as
 * offered.  Anything else fails the connection (RFC 6455 4.1, RFC 7692 5.1). */
static bool accept_extensions(struct chat_client *c, const char *head)
{
    char value[512];
    struct chat_wsdeflate d;

    if (!chat_http_head_value(head, "Sec-WebSocket-Extensions", value, sizeof(value)))
        return true;
    if (!c->deflate_offer || chat_wsdeflate_parse_response(value, &d) != 0)
        return false;
    if (!d.on)
        return true;
    c->inflater = calloc(1, sizeof(*c->inflater));
    if (!c->inflater)
        return false;
    if (inflateInit2(c->inflater, -15) != Z_OK) {
        free(c->inflater);
        c->inflater = NULL;
        return false;
    }
    c->deflate_on = true;
    c->deflate_fresh = d.server_no_context_takeover;
    return true;
}

/* Reads the response head once it is complete and either opens the
 * WebSocket or refuses with the status. */
static void handle_head(struct chat_client *c)
{
    static const struct wslay_event_callbacks cbs = {
        ws_recv, ws_send, ws_genmask, NULL, NULL, NULL, ws_on_msg,
    };
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    char *head = NULL;
    size_t head_len;
    int status;

    if (end.pos < 0) {
        if (evbuffer_get_length(in) > CHAT_CLIENT_MAX_HEAD)
            refuse(c, 0);
        return;
    }
    head_len = (size_t)end.pos + 4;
    head = head_len <= CHAT_CLIENT_MAX_HEAD ? malloc(head_len + 1) : NULL;
    if (!head) {
        refuse(c, 0);
        return;
    }
    evbuffer_remove(in, head, head_len);
    head[head_len] = '\0';
    status = chat_http_head_status(head);
    if (status != 101) {
        refuse(c, status < 0 ? 0 : status);
        goto done;
    }
    if (!upgrade_ok(c, head) || !accept_extensions(c, head) ||
        wslay_event_context_client_init(&c->ws, &cbs, c) != 0) {
        refuse(c, 101);
        goto done;
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, c->max_message);
    if (c->deflate_on)
        wslay_event_config_set_allowed_rsv_bits(c->ws, WSLAY_RSV1_BIT);
    evtimer_del(c->timer);
    c->state = ST_OPEN;
    fire(c, CHAT_CLIENT_OPEN, 101);
    /* Frames that came in the same segment as the head. */
    if (!quiet(c) && c->state == ST_OPEN)
        pump(c);
done:
    free(head);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct chat_client *c = arg;

    (void)bev;
    enter(c);
    if (c->state == ST_CONNECTING && c->bev)
        c->state = ST_HANDSHAKE; /* data implies the connect completed */
    if (c->state == ST_HANDSHAKE)
        handle_head(c);
    else if (c->state == ST_OPEN && !quiet(c))
        pump(c);
    else if (c->bev)
        evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
    leave(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct chat_client *c = arg;

    (void)bev;
    enter(c);
    if (c->state == ST_FLUSHING && !quiet(c))
        finish(c, c->close_code);
    leave(c);
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg);

/* Connects to the next resolved address; false when none is left. */
static bool connect_next(struct chat_client *c)
{
    while (c->next_addr) {
        struct addrinfo *ai = c->next_addr;

        c->next_addr = ai->ai_next;
        if (c->bev)
            bufferevent_free(c->bev);
        c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            return false;
        bufferevent_setcb(c->bev, on_read, on_write, on_bev_event, c);
        if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0 &&
            write_request(c)) {
            /* Chat frames are small and latency matters more than packets. */
            int one = 1;
            setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            bufferevent_enable(c->bev, EV_READ | EV_WRITE);
            return true;
        }
    }
    return false;
}

/* The code CLOSED reports when the peer hangs up while we are open: its
 * close code if it sent one; ours when we failed the connection (a protocol
 * error or an oversized message, after which wslay reads nothing more);
 * otherwise 1006. */
static int eof_code(struct chat_client *c)
{
    if (wslay_event_get_close_received(c->ws))
        return wslay_event_get_status_code_received(c->ws);
    if (wslay_event_get_close_sent(c->ws) && !wslay_event_get_read_enabled(c->ws))
        return wslay_event_get_status_code_sent(c->ws);
    return CHAT_CLOSE_ABNORMAL;
}

static void on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct chat_client *c = arg;

    (void)bev;
    enter(c);
    if (quiet(c))
        goto out;
    switch (c->state) {
    case ST_CONNECTING:
        if (what & BEV_EVENT_CONNECTED)
            c->state = ST_HANDSHAKE;
        else if (!connect_next(c))
            refuse(c, 0);
        break;
    case ST_HANDSHAKE:
        if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
            refuse(c, 0);
        break;
    case ST_OPEN:
        /* Whatever arrived before the EOF has been read; a close frame in it
         * makes this a clean close. */
        pump(c);
        if (c->state == ST_OPEN && !quiet(c))
            finish(c, eof_code(c));
        break;
    case ST_FLUSHING:
        finish(c, c->close_code);
        break;
    case ST_DONE:
        break;
    }
out:
    leave(c);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct chat_client *c = arg;

    (void)fd;
    (void)what;
    enter(c);
    if (quiet(c)) {
        /* leave() does the work */
    } else if (c->state == ST_CONNECTING && !c->bev) {
        refuse(c, 0); /* resolution or socket creation failed in _new */
    } else if (c->state == ST_OPEN) {
        pump(c);
    }
    leave(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct chat_client *c = arg;

    (void)fd;
    (void)what;
    enter(c);
    if (quiet(c)) {
        /* leave() does the work */
    } else if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) {
        refuse(c, 0);
    } else if (c->state == ST_OPEN) {
        finish(c, eof_code(c)); /* no reply to our close */
    } else if (c->state == ST_FLUSHING) {
        finish(c, c->close_code);
    }
    leave(c);
}

static char *dup_opt(const char *s, bool *ok)
{
    char *p;

    if (!s)
        return NULL;
    if (!chat_http_safe_value(s)) {
        *ok = false;
        return NULL;
    }
    p = strdup(s);
    if (!p)
        *ok = false;
    return p;
}

struct chat_client *chat_client_new(struct event_base *base, const struct chat_client_options *opts)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct chat_client *c;
    bool ok = true;

    if (!base || !opts)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->base = base;
    c->state = ST_CONNECTING;
    c->max_message = opts->max_message ? opts->max_message : CHAT_CLIENT_DEFAULT_MAX_MESSAGE;
    c->on_message = opts->on_message;
    c->on_event = opts->on_event;
    c->arg = opts->arg;
    c->token = dup_opt(opts->token, &ok);
    c->origin = dup_opt(opts->origin, &ok);
    c->presence_batch = opts->presence_batch;
    c->deflate_offer = opts->deflate;
    c->kick = event_new(base, -1, 0, on_kick, c);
    c->timer = evtimer_new(base, on_timer, c);
    if (!ok || !c->kick || !c->timer || chat_url_parse(opts->url, &c->url) != 0 ||
        chat_ws_make_key(c->key) != 0)
        goto fail;
    arm_timer(c, CHAT_CLIENT_HANDSHAKE_TIMEOUT_S);
    if (getaddrinfo(c->url.host, c->url.port, &hints, &c->addrs) != 0)
        c->addrs = NULL;
    c->next_addr = c->addrs;
    /* A failure here is reported as REFUSED 0 from the loop, since the
     * caller does not hold the pointer yet. */
    if (!connect_next(c)) {
        if (c->bev) {
            bufferevent_free(c->bev);
            c->bev = NULL;
        }
        event_active(c->kick, EV_TIMEOUT, 1);
    }
    return c;
fail:
    destroy(c);
    return NULL;
}

static bool can_send(const struct chat_client *c)
{
    return c && c->state == ST_OPEN && !quiet(c) && !c->close_wanted &&
           wslay_event_get_write_enabled(c->ws);
}

static void schedule_pump(struct chat_client *c)
{
    event_active(c->kick, EV_TIMEOUT, 1);
}

int chat_client_send_text(struct chat_client *c, const char *data, size_t len)
{
    return chat_client_send_frame(c, WSLAY_TEXT_FRAME, data, len);
}

/* Builds a masked single frame by hand for opcodes wslay refuses to queue
 * (reserved ones, continuation, oversized control frames). */
static int send_manual_frame(struct chat_client *c, uint8_t opcode, const void *data, size_t len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint8_t hdr[14], mask[4], chunk[4096];
    const uint8_t *p = data;
    size_t hdr_len = 2;

    hdr[0] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        hdr[1] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        hdr[1] = 0x80 | 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        hdr_len = 4;
    } else {
        hdr[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hdr_len = 10;
    }
    evutil_secure_rng_get_bytes(mask, sizeof(mask));
    memcpy(hdr + hdr_len, mask, 4);
    if (evbuffer_add(out, hdr, hdr_len + 4) != 0)
        return -1;
    for (size_t off = 0; off < len; off += sizeof(chunk)) {
        size_t n = len - off < sizeof(chunk) ? len - off : sizeof(chunk);

        for (size_t i = 0; i < n; i++)
            chunk[i] = p[off + i] ^ mask[(off + i) & 3];
        if (evbuffer_add(out, chunk, n) != 0)
            return -1;
    }
    return 0;
}

int chat_client_send_frame(struct chat_client *c, uint8_t opcode, const void *data, size_t len)
{
    struct wslay_event_msg msg = {opcode, data, len};
    int rv;

    if (!can_send(c) || (len && !data))
        return -1;
    rv = wslay_event_queue_msg(c->ws, &msg);
    if (rv == WSLAY_ERR_NO_MORE_MSG || rv == WSLAY_ERR_NOMEM)
        return -1; /* a close is queued: nothing may follow it */
    if (rv != 0) {
        /* Keep frame order: whatever wslay holds goes out first. */
        if (!c->in_wslay && wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0)
            return -1;
        if (send_manual_frame(c, opcode, data, len) != 0)
            return -1;
    }
    schedule_pump(c);
    return 0;
}

int chat_client_send_raw(struct chat_client *c, const void *data, size_t len)
{
    if (!can_send(c) || (len && !data))
        return -1;
    if (!c->in_wslay && wslay_event_want_write(c->ws) && wslay_event_send(c->ws) != 0)
        return -1;
    if (evbuffer_add(bufferevent_get_output(c->bev), data, len) != 0)
        return -1;
    schedule_pump(c);
    return 0;
}

int chat_client_close(struct chat_client *c, uint16_t code, const char *reason)
{
    size_t reason_len = reason ? strlen(reason) : 0;

    if (!can_send(c))
        return -1;
    if (reason_len > sizeof(c->close_reason))
        reason_len = sizeof(c->close_reason);
    c->close_wanted = true;
    c->close_want_code = code;
    if (reason_len)
        memcpy(c->close_reason, reason, reason_len);
    c->close_reason_len = reason_len;
    schedule_pump(c);
    return 0;
}

void chat_client_abort(struct chat_client *c)
{
    if (!c || c->state == ST_DONE)
        return;
    if (c->in_cb > 0) {
        c->abort_pending = true;
        if (c->bev)
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    teardown(c);
}

bool chat_client_is_open(const struct chat_client *c)
{
    return c && c->state == ST_OPEN && !quiet(c);
}

size_t chat_client_pending(const struct chat_client *c)
{
    size_t n = 0;

    if (!c || !c->bev)
        return 0;
    if (c->state != ST_CONNECTING)
        n = evbuffer_get_length(bufferevent_get_output(c->bev));
    if (c->ws)
        n += wslay_event_get_queued_msg_length(c->ws);
    return n;
}

void chat_client_free(struct chat_client *c)
{
    if (!c)
        return;
    if (c->in_cb > 0) {
        c->free_pending = true;
        if (c->bev)
            bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    destroy(c);
}

bool chat_client_deflate(const struct chat_client *c)
{
    return c && c->deflate_on;
}

void chat_client_wire_bytes(const struct chat_client *c, uint64_t *in, uint64_t *out)
{
    *in = c ? c->wire_in : 0;
    *out = c ? c->wire_out : 0;
}
