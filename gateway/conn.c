#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "config.h"
#include "conn.h"
#include "conn_internal.h"
#include "dict.h"
#include "log.h"
#include "metrics.h"

/* A client that sends nothing for this long before finishing its request is
 * dropped (slowloris). */
#define GW_HTTP_IDLE_SEC 30
/* How long a closed connection waits for its peer's FIN (conn_linger). */
#define GW_LINGER_SEC 2
/* What a closing connection reads and drops before it is cut (RST): enough
 * for what a well-behaved peer has in flight, not a flooder's megabytes. */
#define GW_LINGER_DISCARD_MAX (64u * 1024)
/* Before the handshake we never buffer more than one maximal request. */
#define GW_HTTP_READ_HIGH (GW_HTTP_MAX_HEAD + GW_HTTP_MAX_BODY + 4096)
/* Output that has reached this much is written at the end of the turn even
 * under --write-delay: a write this size costs little more than a small one,
 * and a held-back burst would only sit in memory. */
#define GW_WRITE_DELAY_MAX_BYTES (16u * 1024)

/*
 * What one client address holds on this node: its open connections, and the
 * bytes of large answers queued to them and not yet taken by the kernel (or
 * promised to answers being prepared).  A guest's connections that ask for
 * pages of images and never read would otherwise pin ~4 MiB each, 256
 * connections an address (gw_conn_output_room).
 */
struct addr_use {
    size_t conns;
    size_t held;
    bool proxy; /* a trusted proxy's own address: many clients, no limit */
};

/* c counts for its address from now on; returns the address's open
 * connections (with c), 0 on no memory (no limit then applies to c). */
static size_t addr_attach(struct gw_conns *set, struct gw_conn *c)
{
    struct addr_use *u = gw_dict_get(set->per_addr, c->addr);
    if (!u) {
        if (!(u = calloc(1, sizeof(*u))))
            return 0;
        const char *trusted = set->ctx->cfg->trusted_proxies;
        u->proxy = trusted && gw_conn_proxy_trusted(trusted, c->addr);
        if (gw_dict_set(set->per_addr, c->addr, u) != GW_OK) {
            free(u);
            return 0;
        }
    }
    u->conns++;
    c->use = u;
    return u->conns;
}

static void addr_detach(struct gw_conns *set, struct gw_conn *c)
{
    struct addr_use *u = c->use;
    if (!u)
        return;
    u->held -= c->held + c->promised;
    c->held = c->promised = 0;
    c->use = NULL;
    if (--u->conns == 0)
        free(gw_dict_del(set->per_addr, c->addr));
}

/* The one place a connection is freed. */
static void conn_free(struct gw_conn *c)
{
    struct gw_conns *set = c->set;
    if (c->ops && c->ops->on_free)
        c->ops->on_free(c->owner);
    LIST_REMOVE(c, link);
    if (c->flush_queued)
        TAILQ_REMOVE(&set->to_flush, c, flush_link);
    else if (c->flush_late)
        TAILQ_REMOVE(&set->to_flush_late, c, flush_link);
    set->count--;
    addr_detach(set, c);
    gw_metrics_gauge_add(set->ctx->metrics, GW_G_HTTP_CONNECTIONS, -1);
    bufferevent_free(c->bev);
    evbuffer_free(c->own);
    gw_conn_drop_parser(c);
    chat_log(CHAT_LOG_DEBUG, "conn_closed conn=%llu", (unsigned long long)c->id);
    free(c);
}

/* Frees c if it was marked dead and no callback of its own is on the stack. */
static void conn_maybe_free(struct gw_conn *c)
{
    if (c->dead && c->in_callback == 0 && c->holds == 0)
        conn_free(c);
}

/* Puts c on the list written at the end of this loop turn (on_flush), off
 * the delayed one if it was there. */
static void flush_this_turn(struct gw_conn *c)
{
    struct gw_conns *set = c->set;
    if (c->flush_queued || c->write_async || c->dead)
        return;
    if (c->flush_late) {
        TAILQ_REMOVE(&set->to_flush_late, c, flush_link);
        c->flush_late = false;
    }
    c->flush_queued = true;
    TAILQ_INSERT_TAIL(&set->to_flush, c, flush_link);
    event_active(set->flush, EV_TIMEOUT, 0);
}

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
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0) {
        conn_kill(c);
        return;
    }
    /* A connection refused at a limit lingers briefly: its descriptor is what
     * the limit is short of. */
    /* Shutting down, the peers were told to go (1001) and the process must
     * exit within the drain timeout: a short linger is enough. */
    int ms = c->refused ? 200 : c->set->ctx->draining ? 300 : GW_LINGER_SEC * 1000;
    struct timeval linger = {ms / 1000, (ms % 1000) * 1000};
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
    if (evbuffer_get_length(c->out) == 0)
        conn_linger(c);
    else
        flush_this_turn(c); /* a closing connection has nothing to batch */
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

bool gw_conn_output_room(const struct gw_conn *c, size_t need)
{
    if (c->set->ctx->cfg->max_conns_per_ip <= 0 || !c->use || c->use->proxy)
        return true;
    return c->use->held + need <= GW_ADDR_HELD_MAX;
}

void gw_conn_promise_output(struct gw_conn *c, size_t bytes)
{
    if (!c->use)
        return;
    c->use->held = c->use->held - c->promised + bytes;
    c->promised = bytes;
}

uint64_t gw_conn_output_mark(const struct gw_conn *c)
{
    return c->out_added;
}

void gw_conn_hold_output_since(struct gw_conn *c, uint64_t mark)
{
    if (!c->use || c->out_added <= mark)
        return;
    /* What of it the kernel took already is not held. */
    uint64_t since = c->out_added - mark, unwritten = c->out_added - c->out_taken;
    size_t more = (size_t)(since < unwritten ? since : unwritten);
    if (more == 0)
        return;
    c->held += more;
    c->use->held += more;
    c->held_until = c->out_added;
}

struct evbuffer *gw_conn_input(struct gw_conn *c)
{
    return bufferevent_get_input(c->bev);
}

struct evbuffer *gw_conn_output(struct gw_conn *c)
{
    return c->out;
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

void gw_conn_hold_input(struct gw_conn *c, bool hold)
{
    if (c->dead || c->closing)
        return;
    if (hold)
        bufferevent_disable(c->bev, EV_READ);
    else
        bufferevent_enable(c->bev, EV_READ);
}

void gw_conn_set_upgraded(struct gw_conn *c, const struct gw_conn_upgrade_ops *ops, void *owner)
{
    c->state = CONN_UPGRADED;
    c->ops = ops;
    c->owner = owner;
    /* The request that asked for the upgrade is done with (still read by the
     * parse loop when it is on the stack: that loop drops it). */
    if (!c->parsing)
        gw_conn_drop_parser(c);
    else
        gw_conn_request_reset(&c->http->req);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
}

/* The connection's first bytes may be a PROXY v2 header: from a trusted
 * proxy it names the client (and the per-address count moves to it), from
 * anyone else it is refused.  False while more bytes are needed or when the
 * connection was refused. */
static bool conn_take_proxy(struct gw_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return false;
    size_t want = len < 16 + 512 ? len : 16 + 512;
    const unsigned char *data = evbuffer_pullup(in, (ev_ssize_t)want);
    char addr[INET6_ADDRSTRLEN];
    size_t consumed = 0;
    int r = gw_conn_proxy_parse(data, want, addr, sizeof(addr), &consumed);
    if (r == GW_PROXY_MORE)
        return false;
    c->proxy_done = true;
    if (r == GW_PROXY_NONE)
        return true;
    const char *trusted = c->set->ctx->cfg->trusted_proxies;
    if (r == GW_PROXY_BAD || !trusted || !gw_conn_proxy_trusted(trusted, c->addr)) {
        chat_log(CHAT_LOG_INFO, "proxy_refused conn=%llu peer=%s reason=%s",
                 (unsigned long long)c->id, c->peer, r == GW_PROXY_BAD ? "malformed" : "untrusted");
        evbuffer_drain(in, len);
        gw_conn_respond_error(c, NULL, 400, "bad_request", "PROXY header not accepted");
        return false;
    }
    evbuffer_drain(in, consumed);
    if (r == GW_PROXY_ADDR) {
        addr_detach(c->set, c);
        snprintf(c->addr, sizeof(c->addr), "%s", addr);
        snprintf(c->peer, sizeof(c->peer), "%s", addr);
        int per_addr = c->set->ctx->cfg->max_conns_per_ip;
        if (addr_attach(c->set, c) > (size_t)per_addr && per_addr > 0) {
            gw_metrics_add(c->set->ctx->metrics, GW_M_CONNS_REFUSED, 1);
            c->refused = true;
            gw_conn_respond_error(c, NULL, 503, "unavailable",
                                  "too many connections from this address");
            return false;
        }
    }
    return true;
}

/* ---- bufferevent callbacks ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct gw_conn *c = arg;
    c->in_callback++;
    if (c->closing) {
        /* Nothing more is answered: what arrives now is read to keep the
         * kernel from resetting the connection, and dropped; a peer that
         * keeps flooding a closed connection is not worth the CPU. */
        struct evbuffer *in = bufferevent_get_input(c->bev);
        c->discarded += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (c->discarded > GW_LINGER_DISCARD_MAX)
            conn_kill(c);
    } else if (c->state == CONN_HTTP) {
        if (c->proxy_done || conn_take_proxy(c))
            gw_conn_parse_http(c);
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
    if (c->write_async && !c->dead && evbuffer_get_length(c->out) == 0) {
        /* Drained: back to writing directly, without EV_WRITE in epoll. */
        c->write_async = false;
        c->out = c->own;
        bufferevent_disable(c->bev, EV_WRITE);
    }
    if (c->state == CONN_UPGRADED && !c->dead && c->ops->on_drained)
        c->ops->on_drained(c->owner);
    if (c->closing && !c->dead && evbuffer_get_length(c->out) == 0)
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

/*
 * Writes the way Redis does (handleClientsWithPendingWrites): output queued
 * during a loop turn puts its connection on a list, and one event, activated
 * by the first of them, writes each connection once after the turn's other
 * callbacks.  The kernel usually takes everything: one writev per connection
 * per turn, however many frames it got, and no EV_WRITE registered and
 * removed around it.  Only what the kernel refuses is left to the
 * bufferevent, with EV_WRITE, until it drains (on_write).
 */
static void arm_flush_late(struct gw_conns *set, int64_t in_ms)
{
    struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)((in_ms % 1000) * 1000)};
    evtimer_add(set->flush_late, &tv);
}

/* The kernel took (or a slow reader's drop removed) n bytes of output. */
static void output_taken(struct gw_conn *c, size_t n)
{
    c->out_taken += n;
    if (c->held && c->out_taken >= c->held_until) {
        c->use->held -= c->held;
        c->held = 0;
    }
}

void gw_conn_queued(struct gw_conn *c)
{
    size_t len = evbuffer_get_length(c->out);
    uint64_t counted = c->out_added - c->out_taken;
    if (len <= counted)
        return;
    c->out_added += len - counted;
    if (c->flush_queued || c->write_async || c->dead)
        return;
    struct gw_conns *set = c->set;
    if (c->flush_late) {
        if (len >= GW_WRITE_DELAY_MAX_BYTES)
            flush_this_turn(c);
        return;
    }
    if (set->write_delay_ms > 0 && c->state == CONN_UPGRADED && !c->closing &&
        len < GW_WRITE_DELAY_MAX_BYTES) {
        c->flush_late = true;
        c->flush_due_ms = gw_mono_ms() + set->write_delay_ms;
        if (TAILQ_EMPTY(&set->to_flush_late))
            arm_flush_late(set, set->write_delay_ms);
        TAILQ_INSERT_TAIL(&set->to_flush_late, c, flush_link);
        return;
    }
    flush_this_turn(c);
}

void gw_conn_drop_output(struct gw_conn *c)
{
    if (c->write_async)
        return; /* the bufferevent's output may begin inside a frame */
    size_t n = evbuffer_get_length(c->own);
    evbuffer_drain(c->own, n);
    output_taken(c, n);
}

/* While the bufferevent writes, it tells what the kernel took. */
static void on_async_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_deleted > 0)
        output_taken(arg, info->n_deleted);
}

/* The kernel did not take everything: the rest, and what is queued until it
 * drains, goes to the bufferevent, which writes on EV_WRITE (on_write). */
static void write_async(struct gw_conn *c)
{
    struct evbuffer *pending = bufferevent_get_output(c->bev);
    evbuffer_add_buffer(pending, c->own);
    c->out = pending;
    c->write_async = true;
    bufferevent_enable(c->bev, EV_WRITE);
}

static void write_now(struct gw_conn *c)
{
    struct evbuffer *out = c->own;
    int n = 0;
    if (evbuffer_get_length(out) > 0) { /* it may have been dropped since */
        n = evbuffer_write(out, bufferevent_getfd(c->bev));
        gw_metrics_add(c->set->ctx->metrics, GW_M_SOCKET_WRITES, 1);
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        on_event(c->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, c);
        return;
    }
    if (n > 0)
        output_taken(c, (size_t)n);
    if (evbuffer_get_length(out) > 0)
        write_async(c);
    /* What a bufferevent would say: at or below the low write watermark
     * (gw_conn_pause_reading's resume mark, else 0) the output counts as
     * drained. */
    size_t drained_at = 0;
    bufferevent_getwatermark(c->bev, EV_WRITE, &drained_at, NULL);
    if (evbuffer_get_length(c->out) <= drained_at)
        on_write(c->bev, c);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_conns *set = arg;
    struct gw_conn *c;
    while ((c = TAILQ_FIRST(&set->to_flush)) != NULL) {
        TAILQ_REMOVE(&set->to_flush, c, flush_link);
        c->flush_queued = false;
        if (!c->dead && !c->write_async)
            write_now(c); /* may free c */
    }
}

static void on_flush_late(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_conns *set = arg;
    int64_t now = gw_mono_ms();
    struct gw_conn *c;
    while ((c = TAILQ_FIRST(&set->to_flush_late)) != NULL && c->flush_due_ms <= now) {
        TAILQ_REMOVE(&set->to_flush_late, c, flush_link);
        c->flush_late = false;
        if (!c->dead && !c->write_async)
            write_now(c); /* may free c */
    }
    if (c)
        arm_flush_late(set, c->flush_due_ms - now);
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
    c->out = c->own = evbuffer_new();
    /* The parser last: nothing of it is left to free when it fails. */
    if (!c->bev || !c->own || !gw_conn_reset_parser(c)) {
        if (c->own)
            evbuffer_free(c->own);
        if (c->bev)
            bufferevent_free(c->bev);
        else
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
    LIST_INSERT_HEAD(&set->conns, c, link);
    set->count++;
    size_t from_addr = addr_attach(set, c);
    gw_metrics_gauge_add(ctx->metrics, GW_G_HTTP_CONNECTIONS, 1);
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, GW_HTTP_READ_HIGH);
    struct timeval idle = {GW_HTTP_IDLE_SEC, 0};
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    evbuffer_add_cb(bufferevent_get_output(c->bev), on_async_output, c);
    /* A new bufferevent starts with EV_WRITE enabled: we write (on_flush). */
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
    chat_log(CHAT_LOG_DEBUG, "conn_open conn=%llu peer=%s", (unsigned long long)c->id, c->peer);
    /* Answered, not dropped: a client past a limit learns why. */
    int per_addr = ctx->cfg->max_conns_per_ip;
    if (set->max && set->count > set->max) {
        gw_metrics_add(ctx->metrics, GW_M_CONNS_REFUSED, 1);
        c->refused = true;
        gw_conn_respond_error(c, NULL, 503, "unavailable", "too many connections");
    } else if (per_addr > 0 && from_addr > (size_t)per_addr && !c->use->proxy) {
        /* A trusted proxy carries many clients: they are counted once its
         * PROXY header names each (conn_take_proxy). */
        gw_metrics_add(ctx->metrics, GW_M_CONNS_REFUSED, 1);
        c->refused = true;
        gw_conn_respond_error(c, NULL, 503, "unavailable",
                              "too many connections from this address");
    }
    return c;
}

/* ---- the set ---- */

struct gw_conns *gw_conns_new(struct gw_ctx *ctx, gw_conn_request_cb on_request,
                              size_t max_connections)
{
    struct gw_conns *set = calloc(1, sizeof(*set));
    if (!set)
        return NULL;
    set->ctx = ctx;
    set->on_request = on_request;
    set->max = max_connections;
    set->per_addr = gw_dict_new();
    set->flush = event_new(ctx->base, -1, 0, on_flush, set);
    set->flush_late = evtimer_new(ctx->base, on_flush_late, set);
    if (!set->per_addr || !set->flush || !set->flush_late) {
        gw_dict_free(set->per_addr);
        if (set->flush)
            event_free(set->flush);
        if (set->flush_late)
            event_free(set->flush_late);
        free(set);
        return NULL;
    }
    set->write_delay_ms = ctx->cfg->write_delay;
    LIST_INIT(&set->conns);
    TAILQ_INIT(&set->to_flush);
    TAILQ_INIT(&set->to_flush_late);
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
    if (c->state == CONN_HTTP && !c->dead && !c->closing && c->http && !c->http->headers_done &&
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
    {
        /* An append without gw_conn_queued would sit unsent until the next. */
        assert(c->out_added - c->out_taken == evbuffer_get_length(c->out));
        unsent += (int64_t)evbuffer_get_length(c->out);
    }
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
    event_free(set->flush);
    event_free(set->flush_late);
    free(set);
}
