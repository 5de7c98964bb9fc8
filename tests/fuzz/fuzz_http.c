/*
 * One client's TCP stream into a real gw_conn (gateway/conn.c, conn_http.c),
 * each complete request dispatched by gw_http_dispatch (http.c, static.c,
 * ws.c for /echo) with Redis down.  See gw_harness.h for the input header
 * (flags, chunk sizes) and the wiring.  Every "@TOKEN@" of the stream is
 * replaced by a valid token (fixed key, issued at start-up), so /api/me and
 * /ws get past the signature check.
 *
 * Beyond "no sanitizer report, no leak" it checks the client's view: the
 * output is a sequence of whole responses, one per dispatched request in
 * order (plus at most one framing error, 400/408/413/431/503, answered
 * without a request), each "HTTP/1.x NNN Reason" with the request's HTTP
 * version, a Content-Length body (none for HEAD, 204, 304), nothing after a
 * "Connection: close" response; a 101 only on /echo, with the accept value
 * of the request's key, followed by valid server WebSocket frames only; and
 * neither the JWT key nor a file outside the static directory in it.
 */
#include <http_parser.h>

#include "gw_harness.h"
#include "http.h"

#define TOKEN_MARK "@TOKEN@"

struct req_rec {
    int method;
    int minor;
    bool echo;
    char *key; /* Sec-WebSocket-Key, or NULL */
};

static struct req_rec *recs;
static size_t nrecs, caprecs;

/* http-parser leaves a tab before a bare LF in the value; the accept is
 * computed from the field value without optional whitespace (RFC 7230 3.2). */
static char *strdup_field_value(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    char *out = strndup(v, n);
    FUZZ_CHECK(out != NULL);
    return out;
}

static void on_request(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    FUZZ_CHECK(req->path != NULL && req->url != NULL);
    FUZZ_CHECK(req->http_major == 1 && (req->http_minor == 0 || req->http_minor == 1));
    FUZZ_CHECK(req->nheaders >= 0 && req->nheaders <= GW_HTTP_MAX_HEADERS);
    FUZZ_CHECK(req->body_len <= GW_HTTP_MAX_BODY);
    FUZZ_CHECK(req->body_len == 0 || req->body != NULL);
    for (int i = 0; i < req->nheaders; i++)
        FUZZ_CHECK(req->headers[i].name != NULL && req->headers[i].value != NULL);
    if (nrecs == caprecs) {
        caprecs = caprecs ? caprecs * 2 : 32;
        recs = realloc(recs, caprecs * sizeof(*recs));
        FUZZ_CHECK(recs != NULL);
    }
    const char *key = gw_http_header(req, "Sec-WebSocket-Key");
    recs[nrecs++] = (struct req_rec){
        .method = req->method,
        .minor = req->http_minor,
        .echo = strcmp(req->path, "/echo") == 0,
        .key = key ? strdup_field_value(key) : NULL,
    };
    gw_http_dispatch(ctx, c, req);
}

static void reset_recs(void)
{
    for (size_t i = 0; i < nrecs; i++)
        free(recs[i].key);
    nrecs = 0;
}

/* Returns where the WebSocket frames begin (len when there was no upgrade). */
static size_t check_output(const uint8_t *out, size_t len, bool complete)
{
    size_t pos = 0, idx = 0;
    bool closed = false;
    while (pos < len) {
        FUZZ_CHECK(!closed); /* nothing after "Connection: close" */
        const char *s = (const char *)out + pos;
        size_t left = len - pos;
        FUZZ_CHECK(left >= 13);
        FUZZ_CHECK(memcmp(s, "HTTP/1.", 7) == 0 && (s[7] == '0' || s[7] == '1') && s[8] == ' ');
        for (int i = 9; i < 12; i++)
            FUZZ_CHECK(s[i] >= '0' && s[i] <= '9');
        FUZZ_CHECK(s[12] == ' ');
        int status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
        const char *head_end = gwh_memmem(s, left, "\r\n\r\n", 4);
        FUZZ_CHECK(head_end != NULL); /* a whole head */
        size_t head_len = (size_t)(head_end - s) + 4;
        const char *eol = gwh_memmem(s, head_len, "\r\n", 2);
        FUZZ_CHECK(eol && eol - s > 13);
        FUZZ_CHECK(!(eol - s == 20 && memcmp(s + 13, "Unknown", 7) == 0)); /* a known status */

        const struct req_rec *rec = idx < nrecs ? &recs[idx] : NULL;
        if (rec) {
            FUZZ_CHECK(s[7] == (rec->minor > 0 ? '1' : '0'));
        } else {
            /* no request: a framing error or a timeout, and the end */
            FUZZ_CHECK(s[7] == '1');
            FUZZ_CHECK(status == 400 || status == 408 || status == 413 || status == 431 ||
                       status == 503);
        }
        if (status == 101) {
            FUZZ_CHECK(rec && rec->echo && rec->key && rec->method == HTTP_GET);
            FUZZ_CHECK(idx + 1 == nrecs); /* what follows the upgrade is WebSocket */
            char accept[CHAT_WS_ACCEPT_LEN + 1], got[128];
            chat_ws_accept_for_key(rec->key, accept);
            FUZZ_CHECK(gwh_find_header(s, head_len, "Sec-WebSocket-Accept", got, sizeof(got)));
            FUZZ_CHECK(strcmp(got, accept) == 0);
            gwh_check_frames(out + pos + head_len, left - head_len, NULL);
            return pos + head_len;
        }
        FUZZ_CHECK(status >= 200 && status <= 599);
        char value[128];
        size_t body = 0;
        if (status != 204 && status != 304) {
            FUZZ_CHECK(gwh_find_header(s, head_len, "Content-Length", value, sizeof(value)));
            char *endp;
            unsigned long long n = strtoull(value, &endp, 10);
            FUZZ_CHECK(*value && *endp == '\0');
            body = (size_t)n;
        }
        if ((rec && rec->method == HTTP_HEAD) || status == 304 || status == 204)
            body = 0;
        FUZZ_CHECK(gwh_find_header(s, head_len, "Connection", value, sizeof(value)));
        FUZZ_CHECK(strcmp(value, "close") == 0 || strcmp(value, "keep-alive") == 0);
        if (strcmp(value, "close") == 0)
            closed = true;
        if (!rec)
            FUZZ_CHECK(closed);
        FUZZ_CHECK(left - head_len >= body); /* a whole body */
        pos += head_len + body;
        idx++;
    }
    FUZZ_CHECK(idx <= nrecs + 1);
    /* Every request was answered, but for an upgrade whose 101 may be lost:
     * a WebSocket framing error (a fragmented or oversized control frame, a
     * 64-bit length) in the bytes that came with it aborts the socket with
     * the 101 unsent. */
    if (complete)
        FUZZ_CHECK(idx >= nrecs || (idx + 1 == nrecs && recs[idx].echo));
    return len;
}

/* The stream with every TOKEN_MARK replaced by the token. */
static uint8_t *expand_tokens(const uint8_t *data, size_t size, size_t *out_len)
{
    size_t mlen = strlen(TOKEN_MARK), tlen = strlen(gwh.token), count = 0;
    for (size_t i = 0; i + mlen <= size; i++)
        if (memcmp(data + i, TOKEN_MARK, mlen) == 0) {
            count++;
            i += mlen - 1;
        }
    uint8_t *out = malloc(size + count * tlen + 1);
    FUZZ_CHECK(out != NULL);
    size_t o = 0;
    for (size_t i = 0; i < size;) {
        if (i + mlen <= size && memcmp(data + i, TOKEN_MARK, mlen) == 0) {
            memcpy(out + o, gwh.token, tlen);
            o += tlen;
            i += mlen;
        } else {
            out[o++] = data[i++];
        }
    }
    *out_len = o;
    return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gwh_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[GWH_HEADER] = {0, 0x8f, 0x8f, 0x8f}; /* defaults: 1 KiB chunks */
    size_t h = size < GWH_HEADER ? size : GWH_HEADER;
    memcpy(hdr, data, h);
    uint8_t flags = hdr[0];
    size_t len;
    uint8_t *stream = expand_tokens(data + h, size - h, &len);

    struct gwh_run r;
    gwh_start(&r, &gwh.cfg, on_request, (flags & GWH_F_DRAINING) != 0);
    gwh_feed(&r, stream, len, hdr + 1);
    /* everything written and answered before any timer, drain or FIN */
    bool complete = !(flags & GWH_F_EARLY_EOF) && !r.broken;
    gwh_finish(&r, flags);
    gwh_stop(&r);

    size_t http_len = check_output(r.out, r.out_len, complete);
    gwh_check_no_secrets(r.out, http_len);
    gwh_free_output(&r);
    reset_recs();
    free(stream);
    return 0;
}
