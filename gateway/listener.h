#ifndef GW_LISTENER_H
#define GW_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "gateway.h"

/*
 * The listening socket: accepts connections into a gw_conns set whose
 * requests go to on_request, and drives the set's timers and drain.
 */

struct gw_listener;

/* Starts listening on cfg->bind:cfg->port.  NULL on failure (logged). */
struct gw_listener *gw_listener_new(struct gw_ctx *ctx, gw_conn_request_cb on_request);
/* The same on another address ("ADDR:PORT", "[ADDR6]:PORT"), e.g. the
 * --metrics-bind one. */
struct gw_listener *gw_listener_new_at(struct gw_ctx *ctx, const char *bind, int port,
                                       gw_conn_request_cb on_request);
/* Splits "ADDR:PORT" / "[ADDR6]:PORT" into addr (at least 64 bytes) and port;
 * false when it is not one. */
bool gw_listener_parse_addr(const char *text, char *addr, size_t addr_len, int *port);
/* The port actually bound (useful with --port 0). */
int gw_listener_port(const struct gw_listener *l);
/* Closes every connection at once, then the listener. */
void gw_listener_free(struct gw_listener *l);
size_t gw_listener_count(const struct gw_listener *l);

/* Shutdown: see gw_conns_drain. */
void gw_listener_drain(struct gw_listener *l);
/* Pings, idle and close timeouts, token expiry: main.c calls it every second. */
void gw_listener_tick(struct gw_listener *l, int64_t now_mono_ms);

#endif
