#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "metrics.h"

static const struct {
    const char *name;
    const char *help;
} counter_info[GW_M_COUNT] = {
    [GW_M_CONNECTIONS_TOTAL] = {"chat_connections_total", "WebSocket sessions opened"},
    [GW_M_HTTP_REQUESTS] = {"chat_http_requests_total", "HTTP requests served"},
    [GW_M_MESSAGES_IN] = {"chat_messages_in_total", "WebSocket messages received from clients"},
    [GW_M_MESSAGES_OUT] = {"chat_messages_out_total", "WebSocket messages queued to clients"},
    [GW_M_BYTES_OUT] = {"chat_bytes_out_total", "WebSocket payload bytes queued to clients"},
    [GW_M_ERRORS] = {"chat_errors_total", "error replies sent to clients"},
    [GW_M_RATE_LIMITED] = {"chat_rate_limited_total", "client frames dropped by the rate limit"},
    [GW_M_SLOW_CLOSED] = {"chat_slow_consumers_closed_total",
                          "clients closed for passing the output limit"},
    [GW_M_REDIS_RECONNECTS] = {"chat_redis_reconnects_total", "Redis reconnections"},
    [GW_M_PUBSUB_IN] = {"chat_pubsub_messages_total", "messages received from Redis pub/sub"},
    [GW_M_GAP_RECOVERIES] = {"chat_gap_recoveries_total", "seq gaps repaired from history"},
    [GW_M_CONNS_REFUSED] = {"chat_connections_refused_total",
                            "connections answered 503 at a connection limit"},
    [GW_M_ACCEPT_ERRORS] = {"chat_accept_errors_total", "accept() failures"},
    [GW_M_PROBE_FAILURES] = {"chat_probe_failures_total",
                             "times this node's pub/sub probe stopped coming back"},
    [GW_M_RESYNCS] = {"chat_resyncs_total", "resync events sent (gaps history could not fill)"},
    [GW_M_REPAIR_RETRIES] = {"chat_repair_retries_total",
                             "gap repairs retried after a failed read"},
    [GW_M_DEFLATE_SESSIONS] = {"chat_deflate_sessions_total",
                               "WebSocket sessions that negotiated permessage-deflate"},
    [GW_M_DEFLATE_IN_WIRE] = {"chat_deflate_in_bytes_total",
                              "compressed message bytes received from clients"},
    [GW_M_DEFLATE_IN_RAW] = {"chat_deflate_in_raw_bytes_total",
                             "what the compressed messages received inflated to"},
    [GW_M_DEFLATE_OUT_WIRE] = {"chat_deflate_out_bytes_total",
                               "compressed message bytes queued to clients"},
    [GW_M_DEFLATE_OUT_RAW] = {"chat_deflate_out_raw_bytes_total",
                              "uncompressed size of the compressed messages queued to clients"},
    [GW_M_DEFLATE_COMPRESSIONS] = {"chat_deflate_compressions_total",
                                   "messages compressed (once per fan-out, not per recipient)"},
    [GW_M_ANSWERS_WAITED] = {"chat_answers_waited_total",
                             "join, history and search requests that waited for their address "
                             "to read its unread large answers"},
    [GW_M_SOCKET_WRITES] = {"chat_socket_writes_total",
                            "writes of queued output to client sockets, each carrying every "
                            "frame queued since the last (those the kernel deferred not counted)"},
};

static const struct {
    const char *name;
    const char *help;
} gauge_info[GW_G_COUNT] = {
    [GW_G_CONNECTIONS] = {"chat_connections", "open WebSocket sessions"},
    [GW_G_HTTP_CONNECTIONS] = {"chat_tcp_connections", "open TCP connections"},
    [GW_G_SUBSCRIPTIONS] = {"chat_redis_subscriptions", "Redis channels subscribed"},
    [GW_G_UNSENT_BYTES] = {"chat_unsent_output_bytes", "output queued to clients, not yet written"},
    [GW_G_BACKLOG] = {"chat_backlog_entries",
                      "live messages held while joins or gap repairs are in flight"},
    [GW_G_WS_PARSERS] = {"chat_ws_parsers",
                         "WebSocket sessions holding a frame parser (the others are idle "
                         "between frames)"},
    [GW_G_DEFLATE_CLIENT_WINDOWS] = {"chat_deflate_client_windows",
                                     "inflate streams kept for clients that compress with "
                                     "context (--deflate-client-context)"},
};

/* Upper bounds in microseconds of every histogram's buckets: from a fast
 * Redis round trip to a delivery that waited a second. */
static const int64_t bounds[] = {100,   250,   500,    1000,   2500,   5000,
                                 10000, 25000, 100000, 250000, 1000000};
#define BUCKETS (sizeof(bounds) / sizeof(bounds[0]))

struct histogram {
    uint64_t count[BUCKETS + 1];
    uint64_t n;
    double sum_sec;
};

static const struct {
    const char *name;
    const char *help;
} histogram_info[GW_H_COUNT] = {
    [GW_H_REDIS_RTT] = {"chat_redis_rtt_seconds", "Redis command round-trip time"},
    [GW_H_DELIVERY] = {"chat_delivery_seconds",
                       "room message from stored (ts) to queued on this node's sockets"},
};

struct gw_metrics {
    uint64_t counters[GW_M_COUNT];
    int64_t gauges[GW_G_COUNT];
    struct histogram h[GW_H_COUNT];
    const char *request_type[GW_METRICS_REQUEST_TYPES];
    struct histogram request[GW_METRICS_REQUEST_TYPES];
};

static void observe(struct histogram *h, int64_t usec)
{
    if (usec < 0)
        usec = 0;
    size_t i = 0;
    while (i < BUCKETS && usec > bounds[i])
        i++;
    h->count[i]++;
    h->n++;
    h->sum_sec += (double)usec / 1e6;
}

/* labels: "" or ",type=\"join\"" after the node label. */
static void render_histogram(const struct histogram *h, const char *name, const char *node,
                             const char *labels, struct evbuffer *out)
{
    uint64_t cumulative = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        cumulative += h->count[i];
        evbuffer_add_printf(out, "%s_bucket{node=\"%s\"%s,le=\"%g\"} %llu\n", name, node, labels,
                            (double)bounds[i] / 1e6, (unsigned long long)cumulative);
    }
    cumulative += h->count[BUCKETS];
    evbuffer_add_printf(out, "%s_bucket{node=\"%s\"%s,le=\"+Inf\"} %llu\n", name, node, labels,
                        (unsigned long long)cumulative);
    evbuffer_add_printf(out, "%s_sum{node=\"%s\"%s} %.6f\n%s_count{node=\"%s\"%s} %llu\n", name,
                        node, labels, h->sum_sec, name, node, labels, (unsigned long long)h->n);
}

struct gw_metrics *gw_metrics_new(void)
{
    return calloc(1, sizeof(struct gw_metrics));
}

void gw_metrics_free(struct gw_metrics *m)
{
    free(m);
}

void gw_metrics_add(struct gw_metrics *m, enum gw_counter c, uint64_t n)
{
    m->counters[c] += n;
}

void gw_metrics_gauge_add(struct gw_metrics *m, enum gw_gauge g, int64_t delta)
{
    m->gauges[g] += delta;
}

void gw_metrics_gauge_set(struct gw_metrics *m, enum gw_gauge g, int64_t value)
{
    m->gauges[g] = value;
}

int64_t gw_metrics_gauge(const struct gw_metrics *m, enum gw_gauge g)
{
    return m->gauges[g];
}

void gw_metrics_redis_rtt(struct gw_metrics *m, int64_t usec)
{
    observe(&m->h[GW_H_REDIS_RTT], usec);
}

void gw_metrics_observe(struct gw_metrics *m, enum gw_histogram h, int64_t usec)
{
    observe(&m->h[h], usec);
}

void gw_metrics_request(struct gw_metrics *m, const char *type, int64_t usec)
{
    for (size_t i = 0; i < GW_METRICS_REQUEST_TYPES; i++) {
        if (!m->request_type[i])
            m->request_type[i] = type;
        if (m->request_type[i] == type || strcmp(m->request_type[i], type) == 0) {
            observe(&m->request[i], usec);
            return;
        }
    }
}

void gw_metrics_render(const struct gw_metrics *m, const char *node, struct evbuffer *out)
{
    for (int i = 0; i < GW_M_COUNT; i++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n%s{node=\"%s\"} %llu\n",
                            counter_info[i].name, counter_info[i].help, counter_info[i].name,
                            counter_info[i].name, node, (unsigned long long)m->counters[i]);
    }
    for (int i = 0; i < GW_G_COUNT; i++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s{node=\"%s\"} %lld\n",
                            gauge_info[i].name, gauge_info[i].help, gauge_info[i].name,
                            gauge_info[i].name, node, (long long)m->gauges[i]);
    }
    /* Derived here so a dashboard needs no rate() arithmetic for it: 0 until
     * something was compressed in that direction. */
    const char *sr = "chat_deflate_saved_ratio";
    evbuffer_add_printf(out,
                        "# HELP %s share of the bytes permessage-deflate saved, 1 - "
                        "compressed/raw, by direction\n# TYPE %s gauge\n",
                        sr, sr);
    for (int in = 1; in >= 0; in--) {
        uint64_t wire = m->counters[in ? GW_M_DEFLATE_IN_WIRE : GW_M_DEFLATE_OUT_WIRE];
        uint64_t raw = m->counters[in ? GW_M_DEFLATE_IN_RAW : GW_M_DEFLATE_OUT_RAW];
        double saved = raw && wire <= raw ? 1.0 - (double)wire / (double)raw : 0.0;
        evbuffer_add_printf(out, "%s{node=\"%s\",direction=\"%s\"} %.4f\n", sr, node,
                            in ? "in" : "out", saved);
    }
    for (int i = 0; i < GW_H_COUNT; i++) {
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", histogram_info[i].name,
                            histogram_info[i].help, histogram_info[i].name);
        render_histogram(&m->h[i], histogram_info[i].name, node, "", out);
    }
    const char *rq = "chat_request_seconds";
    evbuffer_add_printf(out,
                        "# HELP %s a client request, received to answered, by type\n"
                        "# TYPE %s histogram\n",
                        rq, rq);
    for (size_t i = 0; i < GW_METRICS_REQUEST_TYPES && m->request_type[i]; i++) {
        char labels[64];
        snprintf(labels, sizeof(labels), ",type=\"%s\"", m->request_type[i]);
        render_histogram(&m->request[i], rq, node, labels, out);
    }
}
