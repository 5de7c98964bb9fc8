#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdbool.h>

#include "conn.h"

/*
 * The HTTP routes: static files, /api/login, /api/me, /api/rooms, /healthz,
 * /metrics, the /ws upgrade (and /echo with --echo).
 */

/* Answers req on c (now, or later from a Redis reply).  With --metrics-bind,
 * /metrics is not served here. */
void gw_http_dispatch(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req);
/* The --metrics-bind listener's routes: /metrics and /healthz, nothing else. */
void gw_http_dispatch_metrics(struct gw_ctx *ctx, struct gw_conn *c,
                              const struct gw_http_request *req);

/* The Origin check of section 3: NULL origin (non-browser) is allowed; with
 * no --origins list the origin's host must equal the Host header; "*" allows
 * any; otherwise an exact (case-insensitive) match in the comma list. */
bool gw_http_origin_allowed(const char *origins, const char *origin, const char *host);

/* Extracts the token from "?token=" (percent-decoded) or "Authorization:
 * Bearer".  Writes at most outlen-1 bytes; returns false when absent or too
 * long. */
bool gw_http_find_token(const struct gw_http_request *req, char *out, size_t outlen);
/* True when the query string holds name=value exactly (no decoding). */
bool gw_http_query_is(const struct gw_http_request *req, const char *name, const char *value);

#endif
