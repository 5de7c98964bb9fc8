#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "config.h"
#include "conn.h"
#include "listener.h"
#include "log.h"

struct gw_listener {
    struct gw_ctx *ctx;
    struct evconnlistener *evl;
    struct gw_conns *conns;
    int port;
};

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)evl;
    (void)socklen;
    struct gw_listener *l = arg;
    gw_conn_new(l->conns, fd, sa);
}

static void on_accept_error(struct evconnlistener *evl, void *arg)
{
    (void)evl;
    (void)arg;
    /* EMFILE and friends: log and keep going; the listener stays armed. */
    chat_log(CHAT_LOG_WARN, "accept_failed error=\"%s\"",
             evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

struct gw_listener *gw_listener_new(struct gw_ctx *ctx, gw_conn_request_cb on_request)
{
    struct gw_listener *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->ctx = ctx;
    l->conns = gw_conns_new(ctx, on_request);
    if (!l->conns) {
        free(l);
        return NULL;
    }

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sslen;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ctx->cfg->bind, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)ctx->cfg->port);
        sslen = sizeof(*s4);
    } else if (inet_pton(AF_INET6, ctx->cfg->bind, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)ctx->cfg->port);
        sslen = sizeof(*s6);
    } else {
        chat_log(CHAT_LOG_ERROR, "listen_failed bind=%s error=\"not an IP address\"",
                 ctx->cfg->bind);
        gw_listener_free(l);
        return NULL;
    }
    l->evl =
        evconnlistener_new_bind(ctx->base, on_accept, l, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                1024, (struct sockaddr *)&ss, (int)sslen);
    if (!l->evl) {
        chat_log(CHAT_LOG_ERROR, "listen_failed bind=%s port=%d error=\"%s\"", ctx->cfg->bind,
                 ctx->cfg->port, strerror(errno));
        gw_listener_free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, on_accept_error);
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
    free(l);
}
