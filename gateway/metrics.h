#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

/*
 * Process counters and the Prometheus text exposition of /metrics.
 */

struct evbuffer;
struct gw_metrics;

enum gw_counter {
    GW_M_CONNECTIONS_TOTAL, /* WebSocket sessions opened */
    GW_M_HTTP_REQUESTS,
    GW_M_MESSAGES_IN,  /* client frames received */
    GW_M_MESSAGES_OUT, /* frames queued to clients */
    GW_M_BYTES_OUT,
    GW_M_ERRORS, /* error replies sent */
    GW_M_RATE_LIMITED,
    GW_M_SLOW_CLOSED, /* clients cut off at the output limit */
    GW_M_REDIS_RECONNECTS,
    GW_M_PUBSUB_IN,            /* messages received from Redis pub/sub */
    GW_M_GAP_RECOVERIES,       /* seq gaps repaired from history */
    GW_M_CONNS_REFUSED,        /* connections answered 503 at a connection limit */
    GW_M_ACCEPT_ERRORS,        /* accept() failures (descriptors exhausted) */
    GW_M_PROBE_FAILURES,       /* times delivery was found stalled */
    GW_M_RESYNCS,              /* resync events sent: gaps history could not fill */
    GW_M_REPAIR_RETRIES,       /* gap repairs whose history read failed and was retried */
    GW_M_DEFLATE_SESSIONS,     /* WebSockets that negotiated permessage-deflate */
    GW_M_DEFLATE_IN_WIRE,      /* compressed message bytes received */
    GW_M_DEFLATE_IN_RAW,       /* ...and what they inflated to */
    GW_M_DEFLATE_OUT_WIRE,     /* compressed message bytes queued to clients */
    GW_M_DEFLATE_OUT_RAW,      /* ...and their size uncompressed */
    GW_M_DEFLATE_COMPRESSIONS, /* messages compressed (a fan-out counts once) */
    GW_M_ANSWERS_WAITED,       /* large answers that waited for their address to read (conn.h) */
    GW_M_SOCKET_WRITES,        /* writev calls for queued output (conn.c on_flush) */
    GW_M_COUNT
};

enum gw_gauge {
    GW_G_CONNECTIONS,      /* open WebSocket sessions */
    GW_G_HTTP_CONNECTIONS, /* open TCP connections of any kind */
    GW_G_SUBSCRIPTIONS,
    GW_G_UNSENT_BYTES,           /* output queued to clients and not yet written (each second) */
    GW_G_BACKLOG,                /* live messages held by rooms waiting for a join or a repair */
    GW_G_WS_PARSERS,             /* sessions holding a wslay context: the rest are idle */
    GW_G_DEFLATE_CLIENT_WINDOWS, /* inflate streams kept for clients with context */
    GW_G_COUNT
};

/* Latency histograms (Prometheus _bucket/_sum/_count). */
enum gw_histogram {
    GW_H_REDIS_RTT, /* one Redis command, sent to answered */
    GW_H_DELIVERY,  /* a room message, stored (its ts) to queued on this node's sockets */
    GW_H_COUNT
};

/* Request types with their own latency histogram (the label is the type). */
#define GW_METRICS_REQUEST_TYPES 24

struct gw_metrics *gw_metrics_new(void);
void gw_metrics_free(struct gw_metrics *m);

void gw_metrics_add(struct gw_metrics *m, enum gw_counter c, uint64_t n);
void gw_metrics_gauge_add(struct gw_metrics *m, enum gw_gauge g, int64_t delta);
int64_t gw_metrics_gauge(const struct gw_metrics *m, enum gw_gauge g);
void gw_metrics_gauge_set(struct gw_metrics *m, enum gw_gauge g, int64_t value);
/* Records one Redis command round trip. */
void gw_metrics_redis_rtt(struct gw_metrics *m, int64_t usec);
/* Records one observation of h, in microseconds (negative counts as 0). */
void gw_metrics_observe(struct gw_metrics *m, enum gw_histogram h, int64_t usec);
/* Records one request of type `type` (a static string, e.g. "join"), from
 * its arrival to its reply. */
void gw_metrics_request(struct gw_metrics *m, const char *type, int64_t usec);

/* Appends the Prometheus text format to out; node labels every series. */
void gw_metrics_render(const struct gw_metrics *m, const char *node, struct evbuffer *out);

#endif
