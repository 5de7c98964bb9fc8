#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <http_parser.h>

#include "config.h"
#include "protocol.h"
#include "static.h"

/* Larger files are not part of the client; refusing them bounds memory. */
#define GW_STATIC_MAX_FILE (16 * 1024 * 1024)

int gw_static_resolve(const char *root, const char *url_path, char *out, size_t outlen)
{
    char decoded[1024];
    size_t n = 0;
    if (!url_path || url_path[0] != '/')
        return GW_STATIC_FORBIDDEN;
    for (const char *p = url_path; *p; p++) {
        char ch = *p;
        if (ch == '%') {
            int hi = chat_hexval(p[1]), lo = hi >= 0 ? chat_hexval(p[2]) : -1;
            if (hi < 0 || lo < 0)
                return GW_STATIC_FORBIDDEN;
            ch = (char)(hi * 16 + lo);
            p += 2;
        }
        if (ch == '\0' || ch == '\\')
            return GW_STATIC_FORBIDDEN;
        if (n + 1 >= sizeof(decoded))
            return GW_STATIC_NOT_FOUND;
        decoded[n++] = ch;
    }
    decoded[n] = '\0';
    /* Refuse every "." or ".." segment and every hidden file: the client has
     * none, and it closes traversal whatever the encoding was. */
    for (const char *seg = decoded; *seg;) {
        while (*seg == '/')
            seg++;
        if (*seg == '.')
            return GW_STATIC_FORBIDDEN;
        while (*seg && *seg != '/')
            seg++;
    }
    const char *rel = decoded;
    while (*rel == '/')
        rel++;
    bool dir = n == 0 || decoded[n - 1] == '/';
    int w = snprintf(out, outlen, "%s/%s%s", root, rel, dir ? "index.html" : "");
    if (w < 0 || (size_t)w >= outlen)
        return GW_STATIC_NOT_FOUND;
    return 0;
}

const char *gw_static_mime(const char *path)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".webp", "image/webp"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".woff2", "font/woff2"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcasecmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

void gw_static_serve(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        gw_conn_respond_error(c, req, 405, "bad_request", "method not allowed");
        return;
    }
    char path[4096];
    int rc = gw_static_resolve(ctx->cfg->static_dir, req->path, path, sizeof(path));
    if (rc == GW_STATIC_FORBIDDEN) {
        gw_conn_respond_error(c, req, 403, "forbidden", "path not allowed");
        return;
    }
    int fd = rc == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > GW_STATIC_MAX_FILE) {
        if (fd >= 0)
            close(fd);
        gw_conn_respond_error(c, req, 404, "not_found", "no such file");
        return;
    }
    char etag[64];
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
                 (unsigned long long)st.st_mtim.tv_nsec);
    char headers[256];
    /* no-cache: revalidate every time; the ETag makes that a cheap 304. */
    snprintf(headers, sizeof(headers), "ETag: %s\r\nCache-Control: no-cache\r\n", etag);
    const char *inm = gw_http_header(req, "If-None-Match");
    if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) {
        close(fd);
        gw_conn_respond(c, req, 304, NULL, headers, NULL, 0);
        return;
    }
    size_t size = (size_t)st.st_size;
    char *body = malloc(size ? size : 1);
    size_t got = 0;
    while (body && got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!body || got != size) {
        free(body);
        gw_conn_respond_error(c, req, 500, "internal", "read failed");
        return;
    }
    gw_conn_respond(c, req, 200, gw_static_mime(path), headers, body, size);
    free(body);
}
