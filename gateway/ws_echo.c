/*
 * /echo (only with --echo): every message comes back as it came, binary
 * included, under the same limits as /ws.  The RFC 6455 conformance suite
 * (Autobahn) is pointed at it.
 */
#include <stdlib.h>

#include "config.h"
#include "conn.h"
#include "gateway.h"
#include "log.h"
#include "ws.h"

struct echo {
    struct gw_ws *ws;
};

static void echo_text(void *arg, char *data, size_t len)
{
    struct echo *e = arg;
    if (e->ws)
        gw_ws_send_text(e->ws, data, len);
    free(data);
}

static void echo_closed(void *arg, const struct gw_ws_stats *stats)
{
    chat_log(CHAT_LOG_INFO, "echo_closed conn=%llu" GW_WS_STATS_FMT,
             (unsigned long long)stats->conn_id, GW_WS_STATS_ARGS(stats));
    free(arg);
}

static const struct gw_ws_handler echo_handler = {
    .on_text = echo_text,
    .on_closed = echo_closed,
};

void gw_ws_start_echo(struct gw_ctx *ctx, struct gw_conn *c, uint8_t deflate_bits,
                      uint8_t deflate_client_bits)
{
    struct echo *e = calloc(1, sizeof(*e));
    if (!e) {
        gw_conn_close(c, true);
        return;
    }
    struct gw_ws_options o = {
        .max_message = ctx->cfg->max_message,
        .ping_interval_ms = ctx->cfg->ping_interval * 1000,
        .idle_timeout_ms = ctx->cfg->idle_timeout * 1000,
        .echo_binary = true,
        .deflate_bits = deflate_bits,
        .deflate_client_bits = deflate_client_bits,
    };
    e->ws = gw_ws_attach(c, &o, &echo_handler, e);
    if (!e->ws)
        free(e);
}
