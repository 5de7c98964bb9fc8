#include <stdlib.h>

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
    [GW_M_REPAIR_RETRIES] = {"chat_repair_retries_total", "gap repairs retried after a failed read"},
};

static const struct {
    const char *name;
    const char *help;
} gauge_info[GW_G_COUNT] = {
    [GW_G_CONNECTIONS] = {"chat_connections", "open WebSocket sessions"},
    [GW_G_HTTP_CONNECTIONS] = {"chat_tcp_connections", "open TCP connections"},
    [GW_G_SUBSCRIPTIONS] = {"chat_redis_subscriptions", "Redis channels subscribed"},
};

/* Upper bounds in microseconds of the Redis round-trip histogram buckets. */
static const int64_t rtt_bounds[] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000};
#define RTT_BUCKETS (sizeof(rtt_bounds) / sizeof(rtt_bounds[0]))

struct gw_metrics {
    uint64_t counters[GW_M_COUNT];
    int64_t gauges[GW_G_COUNT];
    uint64_t rtt_count[RTT_BUCKETS + 1];
    uint64_t rtt_n;
    double rtt_sum_sec;
};

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

int64_t gw_metrics_gauge(const struct gw_metrics *m, enum gw_gauge g)
{
    return m->gauges[g];
}

void gw_metrics_redis_rtt(struct gw_metrics *m, int64_t usec)
{
    size_t i = 0;
    while (i < RTT_BUCKETS && usec > rtt_bounds[i])
        i++;
    m->rtt_count[i]++;
    m->rtt_n++;
    m->rtt_sum_sec += (double)usec / 1e6;
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
    const char *h = "chat_redis_rtt_seconds";
    evbuffer_add_printf(out, "# HELP %s Redis command round-trip time\n# TYPE %s histogram\n", h,
                        h);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < RTT_BUCKETS; i++) {
        cumulative += m->rtt_count[i];
        evbuffer_add_printf(out, "%s_bucket{node=\"%s\",le=\"%g\"} %llu\n", h, node,
                            (double)rtt_bounds[i] / 1e6, (unsigned long long)cumulative);
    }
    cumulative += m->rtt_count[RTT_BUCKETS];
    evbuffer_add_printf(out, "%s_bucket{node=\"%s\",le=\"+Inf\"} %llu\n", h, node,
                        (unsigned long long)cumulative);
    evbuffer_add_printf(out, "%s_sum{node=\"%s\"} %.6f\n%s_count{node=\"%s\"} %llu\n", h, node,
                        m->rtt_sum_sec, h, node, (unsigned long long)m->rtt_n);
}
