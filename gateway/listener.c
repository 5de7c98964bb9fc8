#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"

/* Descriptors kept free for Redis connections, static files, logs and the
 * reserve: the default --max-connections is RLIMIT_NOFILE less these. */
#define GW_FD_RESERVE 32
#define GW_ACCEPT_BACKOFF_MIN_MS 50
#define GW_ACCEPT_BACKOFF_MAX_MS 1000
/* Kernel socket buffer per direction of an accepted connection. */
#define GW_SOCKET_BUFFER (256 * 1024)

struct gw_listener {
    struct gw_ctx *ctx;
    struct evconnlistener *evl;
    struct gw_conns *conns;
    int port;
    int reserve_fd;       /* given up to accept-and-close when descriptors run out */
    struct event *resume; /* re-enables accepting after a pause */
    int backoff_ms;
    int64_t log_window_ms;      /* accept failures are logged once per second ... */
    unsigned failures_unlogged; /* ... with the count since the last line */
};

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)evl;
    (void)socklen;
    struct gw_listener *l = arg;
    l->backoff_ms = GW_ACCEPT_BACKOFF_MIN_MS; /* descriptors are there again */
    gw_conn_new(l->conns, fd, sa);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gw_listener *l = arg;
    evconnlistener_enable(l->evl);
}

/* Out of descriptors, the pending connection would make the listener
 * readable forever (a busy loop): take it with the reserve descriptor and
 * close it, so its client hears a reset now instead of waiting. */
static void shed_one(struct gw_listener *l)
{
    if (l->reserve_fd < 0)
        return;
    close(l->reserve_fd);
    int fd = accept(evconnlistener_get_fd(l->evl), NULL, NULL);
    if (fd >= 0)
        close(fd);
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    (void)evl;
    struct gw_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();
    gw_metrics_add(l->ctx->metrics, GW_M_ACCEPT_ERRORS, 1);
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        shed_one(l);
        /* Pause with backoff: descriptors come back as connections close. */
        evconnlistener_disable(l->evl);
        struct timeval tv = {l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000};
        evtimer_add(l->resume, &tv);
        l->backoff_ms = l->backoff_ms * 2 > GW_ACCEPT_BACKOFF_MAX_MS ? GW_ACCEPT_BACKOFF_MAX_MS
                                                                     : l->backoff_ms * 2;
    }
    l->failures_unlogged++;
    int64_t now = gw_mono_ms();
    if (now - l->log_window_ms >= 1000) {
        chat_log(CHAT_LOG_WARN, "accept_failed error=\"%s\" count=%u",
                 evutil_socket_error_to_string(err), l->failures_unlogged);
        l->failures_unlogged = 0;
        l->log_window_ms = now;
    }
}

/* --max-connections, or the descriptor limit less a reserve. */
static size_t max_connections(const struct gw_ctx *ctx)
{
    if (ctx->cfg->max_connections > 0)
        return (size_t)ctx->cfg->max_connections;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 0;
    return rl.rlim_cur > 2 * GW_FD_RESERVE ? (size_t)(rl.rlim_cur - GW_FD_RESERVE)
                                           : (size_t)(rl.rlim_cur / 2);
}

struct gw_listener *gw_listener_new(struct gw_ctx *ctx, gw_conn_request_cb on_request)
{
    return gw_listener_new_at(ctx, ctx->cfg->bind, ctx->cfg->port, on_request);
}

bool gw_listener_parse_addr(const char *text, char *addr, size_t addr_len, int *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return false;
    const char *start = text, *end = colon;
    if (*start == '[') {
        if (end[-1] != ']')
            return false;
        start++;
        end--;
    }
    size_t n = (size_t)(end - start);
    char *stop = NULL;
    long p = strtol(colon + 1, &stop, 10);
    if (n == 0 || n >= addr_len || !colon[1] || *stop || p < 0 || p > 65535)
        return false;
    memcpy(addr, start, n);
    addr[n] = '\0';
    *port = (int)p;
    return true;
}

/*
 * Accepted sockets inherit the listener's buffer sizes.  Left to autotuning,
 * the kernel takes up to several MB per connection from a client that sends
 * without the gateway reading (a flood, or a large message waiting for
 * admission) and holds as much unsent output for one that does not read:
 * kernel memory, and kernel time on the node's cores, spent on an attacker.
 * 256 KiB each way (the kernel doubles the value set) still fills a
 * 20 Mbit/s link at 100 ms round trip, far beyond what chat needs.
 */
static void cap_socket_buffers(evutil_socket_t fd)
{
    int size = GW_SOCKET_BUFFER / 2;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

struct gw_listener *gw_listener_new_at(struct gw_ctx *ctx, const char *bind, int port,
                                       gw_conn_request_cb on_request)
{
    struct gw_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->ctx = ctx;
    l->backoff_ms = GW_ACCEPT_BACKOFF_MIN_MS;
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    l->conns = gw_conns_new(ctx, on_request, max_connections(ctx));
    l->resume = evtimer_new(ctx->base, on_resume, l);
    if (!l->conns || !l->resume) {
        gw_listener_free(l);
        return NULL;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sslen;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sslen = sizeof(*s4);
    } else if (inet_pton(AF_INET6, bind, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sslen = sizeof(*s6);
    } else {
        chat_log(CHAT_LOG_ERROR, "listen_failed bind=%s error=\"not an IP address\"", bind);
        gw_listener_free(l);
        return NULL;
    }
    l->evl =
        evconnlistener_new_bind(ctx->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                1024, (struct sockaddr *)&ss, (int)sslen);
    if (!l->evl) {
        chat_log(CHAT_LOG_ERROR, "listen_failed bind=%s port=%d error=\"%s\"", bind, port,
                 strerror(errno));
        gw_listener_free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
    cap_socket_buffers(evconnlistener_get_fd(l->evl));
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    getsockname(evconnlistener_get_fd(l->evl), (struct sockaddr *)&bound, &blen);
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return l;
}

int gw_listener_port(const struct gw_listener *l)
{
    return l->port;
}

size_t gw_listener_count(const struct gw_listener *l)
{
    return gw_conns_count(l->conns);
}

void gw_listener_tick(struct gw_listener *l, int64_t now_mono_ms)
{
    gw_conns_tick(l->conns, now_mono_ms);
}

void gw_listener_drain(struct gw_listener *l)
{
    gw_conns_drain(l->conns);
}

void gw_listener_free(struct gw_listener *l)
{
    if (!l)
        return;
    gw_conns_free(l->conns);
    if (l->evl)
        evconnlistener_free(l->evl);
    if (l->resume)
        event_free(l->resume);
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    free(l);
}
