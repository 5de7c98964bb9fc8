#ifndef GW_STATIC_H
#define GW_STATIC_H

#include <stddef.h>

#include "conn.h"

/*
 * Static files of the browser client from --static-dir: percent-decoding,
 * traversal refusal, MIME types, ETag / If-None-Match, no listings.
 */

#define GW_STATIC_NOT_FOUND -1
#define GW_STATIC_FORBIDDEN -2

/*
 * Maps a request path (still percent-encoded, without the query) to a file
 * path below root, written to out.  "/" and paths ending in "/" map to
 * index.html.  Refuses (FORBIDDEN) any ".." segment (also when encoded, as
 * %2e%2e or with %2f separators), NUL bytes, backslashes and paths that do not
 * start with "/".  0, GW_STATIC_NOT_FOUND (too long) or GW_STATIC_FORBIDDEN.
 * Does not touch the file system.
 */
int gw_static_resolve(const char *root, const char *url_path, char *out, size_t outlen);

/* The Content-Type for a file name, by extension. */
const char *gw_static_mime(const char *path);

/* Answers a GET/HEAD for a static file. */
void gw_static_serve(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req);

#endif
