/*
 * chat-gateway: parse the configuration, wire the modules into one event
 * loop, run, and drain on SIGTERM/SIGINT.  This file is the only place with
 * process-wide state.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__ /* defined by the headers above */
#include <malloc.h>
#endif

#include <event2/event.h>
#include <jansson.h>

#include "admit.h"
#include "bus.h"
#include "config.h"
#include "deflate.h"
#include "http.h"
#include "keys.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "offload.h"
#include "penalty.h"
#include "presence.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "token.h"
#include "ws.h"

/* Users remembered as cut off for flooding; a few MB at most. */
#define GW_PENALTY_MAX 65536

struct app {
    struct gw_ctx ctx;
    struct gw_listener *metrics_listener; /* --metrics-bind, or NULL */
    struct chat_config cfg;
    struct chat_token_verifier *verifier;
    struct event *tick;
    struct event *drain_check;
    struct event *drain_start;
    struct event *sigterm;
    struct event *sigint;
    int64_t drain_deadline_ms;
    int signals;
};

static void on_bus_message(const char *channel, size_t channel_len, const char *payload, size_t len,
                           void *arg)
{
    struct app *app = arg;
    gw_router_on_message(app->ctx.router, channel, channel_len, payload, len);
}

static void on_bus_state(bool up, void *arg)
{
    struct app *app = arg;
    if (!up)
        return;
    gw_store_ensure_default_rooms(app->ctx.store);
    gw_presence_refresh_now(app->ctx.presence);
}

static void on_bus_subscribed(const char *channel, void *arg)
{
    struct app *app = arg;
    /* Whatever was published while the subscriber was away is in history. */
    gw_router_on_subscribed(app->ctx.router, channel);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *app = arg;
    gw_listener_tick(app->ctx.listener, gw_mono_ms());
    if (app->metrics_listener)
        gw_listener_tick(app->metrics_listener, gw_mono_ms());
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *app = arg;
    bool idle =
        gw_listener_count(app->ctx.listener) == 0 && gw_presence_in_flight(app->ctx.presence) == 0;
    if (idle || gw_mono_ms() >= app->drain_deadline_ms) {
        chat_log(CHAT_LOG_INFO, "drain_done sessions_left=%zu",
                 gw_router_session_count(app->ctx.router));
        event_base_loopexit(app->ctx.base, NULL);
    }
}

static void on_drain_start(evutil_socket_t fd, short what, void *arg);

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct app *app = arg;
    if (++app->signals > 1) {
        chat_log(CHAT_LOG_WARN, "drain_aborted signal=%d", (int)sig);
        event_base_loopexit(app->ctx.base, NULL);
        return;
    }
    chat_log(CHAT_LOG_INFO, "drain_start signal=%d sessions=%zu", (int)sig,
             gw_router_session_count(app->ctx.router));
    app->ctx.draining = true;
    app->drain_deadline_ms = gw_mono_ms() + (int64_t)app->cfg.drain_timeout * 1000 - 500;
    /* Leave the load balancer's rotation first (healthz and new upgrades say
     * 503 from now on), then tell every client to go elsewhere, so their
     * reconnects do not land here.  The grace never eats the whole timeout. */
    int64_t grace = (int64_t)app->cfg.drain_grace * 1000;
    if (grace > (int64_t)app->cfg.drain_timeout * 1000 / 2)
        grace = (int64_t)app->cfg.drain_timeout * 1000 / 2;
    if (gw_listener_count(app->ctx.listener) == 0)
        grace = 0;
    struct timeval tv = {(time_t)(grace / 1000), (suseconds_t)((grace % 1000) * 1000)};
    event_add(app->drain_start, &tv);
}

static void on_drain_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct app *app = arg;
    chat_log(CHAT_LOG_INFO, "drain_close sessions=%zu", gw_router_session_count(app->ctx.router));
    gw_listener_drain(app->ctx.listener);
    gw_presence_node_down(app->ctx.presence);
    struct timeval tv = {0, 50000};
    event_add(app->drain_check, &tv);
}

static const struct gw_router_ops router_ops = {
    .deliver = gw_session_deliver,
    .close = gw_session_close,
};

/* The bus closes first: the replies it still owes run now, while everything
 * their callbacks use (sessions, connections, presence) is alive; what the
 * teardown of those then sends fails at once.  The bus itself is freed last,
 * after every module that unsubscribes through it. */
static void teardown(struct app *app)
{
    gw_bus_close(app->ctx.bus);
    gw_listener_free(app->metrics_listener);
    gw_listener_free(app->ctx.listener);
    /* Jobs of closed sessions report now; they only release them. */
    gw_offload_free(app->ctx.offload);
    gw_presence_free(app->ctx.presence);
    gw_router_free(app->ctx.router);
    gw_bus_free(app->ctx.bus);
    gw_store_free(app->ctx.store);
    gw_metrics_free(app->ctx.metrics);
    gw_admit_free(app->ctx.admit);
    gw_penalty_free(app->ctx.penalty);
    gw_deflate_free(app->ctx.deflate);
    if (app->tick)
        event_free(app->tick);
    if (app->drain_check)
        event_free(app->drain_check);
    if (app->drain_start)
        event_free(app->drain_start);
    if (app->sigterm)
        event_free(app->sigterm);
    if (app->sigint)
        event_free(app->sigint);
    if (app->ctx.base)
        event_base_free(app->ctx.base);
    chat_token_verifier_free(app->verifier);
    chat_config_deinit(&app->cfg);
}

/* Builds every module into app->ctx, bottom layer first.  0, or 1 when
 * something could not be allocated, 2 when the port cannot be bound. */
static int wire(struct app *app)
{
    struct gw_ctx *ctx = &app->ctx;
    ctx->cfg = &app->cfg;
    ctx->base = event_base_new();
    ctx->metrics = gw_metrics_new();
    if (!ctx->base || !ctx->metrics ||
        event_base_priority_init(ctx->base, GW_EVENT_PRIORITIES) != 0)
        return 1;
    ctx->admit = gw_admit_new_for_node(ctx);
    /* jansson seeds its hash function on first use; the worker parses too. */
    json_object_seed(0);
    ctx->offload = gw_offload_new(ctx->base);
    ctx->penalty = gw_penalty_new(GW_PENALTY_MAX);
    ctx->deflate = app->cfg.deflate ? gw_deflate_new() : NULL;
    if (!ctx->admit || !ctx->offload || !ctx->penalty || (app->cfg.deflate && !ctx->deflate))
        return 1;
    ctx->store = gw_store_new(ctx);
    ctx->router = gw_router_new(ctx, &router_ops);
    ctx->presence = gw_presence_new(ctx);
    if (!ctx->store || !ctx->router || !ctx->presence)
        return 1;
    ctx->bus = gw_bus_new(ctx, on_bus_message, on_bus_state, on_bus_subscribed, app);
    if (!ctx->bus)
        return 1;
    /* chat:all carries broadcasts, room creation and online/offline, and
     * chat:control the operator's commands (chat-admin): always on. */
    char all[GW_KEY_MAX], control[GW_KEY_MAX];
    if (!gw_key_all(all, sizeof(all), app->cfg.prefix) ||
        !gw_key_control(control, sizeof(control), app->cfg.prefix))
        return 1;
    gw_bus_subscribe(ctx->bus, all, NULL, NULL);
    gw_bus_subscribe(ctx->bus, control, NULL, NULL);
    ctx->listener = gw_listener_new(ctx, gw_http_dispatch);
    if (!ctx->listener)
        return 2;
    if (app->cfg.metrics_bind) {
        char addr[64];
        int port;
        if (!gw_listener_parse_addr(app->cfg.metrics_bind, addr, sizeof(addr), &port))
            return 2;
        app->metrics_listener = gw_listener_new_at(ctx, addr, port, gw_http_dispatch_metrics);
        if (!app->metrics_listener)
            return 2;
    }
    app->tick = event_new(ctx->base, -1, EV_PERSIST, on_tick, app);
    app->drain_check = event_new(ctx->base, -1, EV_PERSIST, on_drain_check, app);
    app->drain_start = evtimer_new(ctx->base, on_drain_start, app);
    app->sigterm = evsignal_new(ctx->base, SIGTERM, on_signal, app);
    app->sigint = evsignal_new(ctx->base, SIGINT, on_signal, app);
    if (!app->tick || !app->drain_check || !app->drain_start || !app->sigterm || !app->sigint)
        return 1;
    struct timeval one = {1, 0};
    event_add(app->tick, &one);
    event_add(app->sigterm, NULL);
    event_add(app->sigint, NULL);
    return 0;
}

/*
 * wslay allocates a frame's whole payload when its header arrives, and a
 * frame waiting for admission (admit.h) must not cost resident memory until
 * its bytes come.  glibc serves such sizes with mmap at first, but raises
 * its threshold after the first large free, and from then on recycled heap
 * pages (already resident) back every waiting frame.  A fixed threshold
 * keeps large buffers mmapped: untouched pages cost nothing and freed ones
 * go back to the kernel.
 */
static void keep_large_buffers_mapped(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    /* The fixed threshold also fixes the heap's trim threshold at 128 KiB,
     * and a fan-out queues more than that in one loop turn and frees it in
     * the next: the heap's top went back to the kernel and faulted in again
     * every turn (23,000 page faults a second at 380,000 deliveries/s).
     * What is kept instead is bounded: 8 MiB of free small chunks. */
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
#endif
}

/*
 * Under --write-delay the loop also wakes less often: after each pass it
 * sleeps a quarter of the delay (at most GW_LOOP_SLEEP_MAX_MS), so the
 * messages, requests and replies that arrive meanwhile are read together.
 * On a busy node each pub/sub message used to wake the loop on its own, and
 * a wakeup (the context switch, epoll_wait) cost more than a dozen
 * deliveries.  A quiet node is unaffected: an event that finds the loop
 * waiting runs at once.  The cap bounds what a request pays per Redis round
 * trip (a join makes several) whatever the delay.
 */
#define GW_LOOP_SLEEP_MAX_MS 25

static void run_loop(struct app *app)
{
    struct event_base *base = app->ctx.base;
    int tick_ms = app->cfg.write_delay / 4 < GW_LOOP_SLEEP_MAX_MS ? app->cfg.write_delay / 4
                                                                  : GW_LOOP_SLEEP_MAX_MS;
    if (tick_ms <= 0) {
        event_base_dispatch(base);
        return;
    }
    struct timespec tick = {0, (long)tick_ms * 1000000L};
    while (event_base_loop(base, EVLOOP_ONCE) == 0 && !event_base_got_exit(base) &&
           !event_base_got_break(base))
        nanosleep(&tick, NULL); /* a signal cuts it short, and is handled next pass */
}

int main(int argc, char **argv)
{
    static struct app app;
    keep_large_buffers_mapped();
    char err[512];
    int rc = chat_config_load(&app.cfg, argc, argv, stdout, err, sizeof(err));
    if (rc == CHAT_CONFIG_HELP) {
        chat_config_deinit(&app.cfg);
        return 0;
    }
    if (rc != CHAT_CONFIG_OK) {
        fprintf(stderr, "chat-gateway: %s\n", err);
        return 2;
    }
    char why[256];
    if (chat_config_token_verifier(&app.cfg, &app.verifier, why, sizeof(why)) < 0) {
        fprintf(stderr, "chat-gateway: %s\n", why);
        chat_config_deinit(&app.cfg);
        return 2;
    }
    app.ctx.verifier = app.verifier;
    chat_log_set_level(app.cfg.log_level);
    chat_log_set_format(app.cfg.log_format);
    /* A test hook, not an option: a node whose clock is off by this much. */
    const char *skew = getenv("CHAT_TEST_CLOCK_OFFSET_MS");
    if (skew && *skew) {
        gw_set_wall_offset(strtoll(skew, NULL, 10));
        chat_log(CHAT_LOG_WARN, "test_clock_offset ms=%s", skew);
    }
    if (app.cfg.jwt_secret_generated)
        chat_log(CHAT_LOG_WARN, "dev_mode note=\"random JWT secret for this process only; tokens "
                                "will not work on other nodes or after a restart\"");
    signal(SIGPIPE, SIG_IGN);

    rc = wire(&app);
    if (rc == 2) {
        if (app.metrics_listener || !app.ctx.listener || !app.cfg.metrics_bind)
            fprintf(stderr, "chat-gateway: cannot listen on %s:%d\n", app.cfg.bind, app.cfg.port);
        else
            fprintf(stderr, "chat-gateway: cannot listen on --metrics-bind %s\n",
                    app.cfg.metrics_bind);
        teardown(&app);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "chat-gateway: out of memory during startup\n");
        teardown(&app);
        return 1;
    }
    chat_log(CHAT_LOG_INFO, "listening node=%s bind=%s port=%d redis=%s:%d static=%s",
             app.cfg.node_id, app.cfg.bind, gw_listener_port(app.ctx.listener), app.cfg.redis.host,
             app.cfg.redis.port, app.cfg.static_dir);
    run_loop(&app);
    chat_log(CHAT_LOG_INFO, "exit");
    teardown(&app);
    return 0;
}
