#include "wsdeflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

/* ---- Sec-WebSocket-Extensions (RFC 7692 5, RFC 6455 9.1) ---- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

struct span {
    const char *p;
    size_t len;
};

static bool span_is(struct span s, const char *word)
{
    return s.len == strlen(word) && strncasecmp(s.p, word, s.len) == 0;
}

static const char *read_token(const char *p, struct span *out)
{
    out->p = p;
    while (is_tchar(*p))
        p++;
    out->len = (size_t)(p - out->p);
    return p;
}

/* A token or a quoted-string (its content, escapes left in: a value with one
 * is not a number and is refused anyway).  NULL when malformed. */
static const char *read_value(const char *p, struct span *out)
{
    if (*p != '"') {
        p = read_token(p, out);
        return out->len ? p : NULL;
    }
    out->p = ++p;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    if (*p != '"')
        return NULL;
    out->len = (size_t)(p - out->p);
    return p + 1;
}

/* 8..15, plain decimal without leading zeros; -1 otherwise. */
static int window_bits(struct span v)
{
    if (v.len == 1 && v.p[0] == '8')
        return 8;
    if (v.len == 1 && v.p[0] == '9')
        return 9;
    if (v.len == 2 && v.p[0] == '1' && v.p[1] >= '0' && v.p[1] <= '5')
        return 10 + (v.p[1] - '0');
    return -1;
}

enum param_bit {
    P_SERVER_NCT = 1,
    P_CLIENT_NCT = 2,
    P_SERVER_BITS = 4,
    P_CLIENT_BITS = 8,
};

/* One extension of the list as parsed: its parameters, checked for
 * permessage-deflate.  `seen` has a bit per parameter present. */
struct ext {
    bool deflate; /* the name is permessage-deflate */
    bool valid;   /* ...and every parameter is known, unique and well formed */
    unsigned seen;
    int server_bits, client_bits; /* -1: given without a value (client_max_window_bits) */
};

static void check_param(struct ext *e, struct span name, bool has_value, struct span value)
{
    unsigned bit = 0;
    if (span_is(name, "server_no_context_takeover"))
        bit = P_SERVER_NCT;
    else if (span_is(name, "client_no_context_takeover"))
        bit = P_CLIENT_NCT;
    else if (span_is(name, "server_max_window_bits"))
        bit = P_SERVER_BITS;
    else if (span_is(name, "client_max_window_bits"))
        bit = P_CLIENT_BITS;
    if (!bit || (e->seen & bit)) {
        e->valid = false;
        return;
    }
    e->seen |= bit;
    switch (bit) {
    case P_SERVER_NCT:
    case P_CLIENT_NCT:
        if (has_value)
            e->valid = false;
        break;
    case P_SERVER_BITS:
        e->server_bits = has_value ? window_bits(value) : -1;
        if (e->server_bits < 0)
            e->valid = false;
        break;
    default:
        e->client_bits = has_value ? window_bits(value) : -1;
        if (has_value && e->client_bits < 0)
            e->valid = false;
        break;
    }
}

/* Parses one list element at p (after any commas); NULL at the end of the
 * list or when the rest is malformed, else where the next element starts. */
static const char *read_ext(const char *p, struct ext *e, bool *malformed)
{
    *malformed = false;
    p = skip_ows(p);
    while (*p == ',')
        p = skip_ows(p + 1);
    if (!*p)
        return NULL;
    struct span name;
    p = read_token(p, &name);
    if (!name.len) {
        *malformed = true;
        return NULL;
    }
    *e = (struct ext){.deflate = span_is(name, "permessage-deflate"), .valid = true};
    for (p = skip_ows(p); *p == ';'; p = skip_ows(p)) {
        struct span pname, value = {NULL, 0};
        p = read_token(skip_ows(p + 1), &pname);
        p = skip_ows(p);
        bool has_value = *p == '=';
        if (has_value && !(p = read_value(skip_ows(p + 1), &value))) {
            *malformed = true;
            return NULL;
        }
        if (!pname.len) {
            *malformed = true;
            return NULL;
        }
        if (e->deflate)
            check_param(e, pname, has_value, value);
    }
    if (*p && *p != ',') {
        *malformed = true;
        return NULL;
    }
    return p;
}

bool chat_wsdeflate_negotiate(const char *offers, bool client_context, struct chat_wsdeflate *out)
{
    memset(out, 0, sizeof(*out));
    struct ext e;
    bool malformed = false;
    for (const char *p = offers; p && (p = read_ext(p, &e, &malformed));) {
        if (!e.deflate || !e.valid)
            continue;
        out->on = true;
        out->server_no_context_takeover = true;
        out->client_no_context_takeover = !client_context || (e.seen & P_CLIENT_NCT);
        out->server_max_window_bits = (uint8_t)((e.seen & P_SERVER_BITS) ? e.server_bits : 15);
        out->server_bits_offered = (e.seen & P_SERVER_BITS) != 0;
        /* Without context the client's window is its business (at most 15,
         * which the node's inflate stream has); with context it is the
         * size of the window the gateway keeps for it. */
        out->client_max_window_bits = (uint8_t)(e.client_bits > 0 ? e.client_bits : 15);
        return true;
    }
    return false;
}

int chat_wsdeflate_response(const struct chat_wsdeflate *d, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "permessage-deflate; server_no_context_takeover%s",
                     d->client_no_context_takeover ? "; client_no_context_takeover" : "");
    if (n > 0 && (size_t)n < outlen && (d->server_max_window_bits < 15 || d->server_bits_offered))
        n += snprintf(out + n, outlen - (size_t)n, "; server_max_window_bits=%u",
                      (unsigned)d->server_max_window_bits);
    /* A window the client keeps is one the server keeps too: the size it
     * offered is made binding (7.1.2.2). */
    if (n > 0 && (size_t)n < outlen && !d->client_no_context_takeover &&
        d->client_max_window_bits < 15)
        n += snprintf(out + n, outlen - (size_t)n, "; client_max_window_bits=%u",
                      (unsigned)d->client_max_window_bits);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int chat_wsdeflate_parse_response(const char *value, struct chat_wsdeflate *out)
{
    memset(out, 0, sizeof(*out));
    struct ext e;
    bool malformed = false;
    const char *p = value;
    while (p && (p = read_ext(p, &e, &malformed))) {
        /* One extension was offered: anything else, twice, or with a
         * parameter the offer does not allow fails the connection. */
        if (!e.deflate || !e.valid || out->on || (e.seen & P_CLIENT_BITS)) {
            memset(out, 0, sizeof(*out));
            return -1;
        }
        out->on = true;
        out->server_no_context_takeover = (e.seen & P_SERVER_NCT) != 0;
        out->client_no_context_takeover = (e.seen & P_CLIENT_NCT) != 0;
        out->server_max_window_bits = (uint8_t)((e.seen & P_SERVER_BITS) ? e.server_bits : 15);
        out->client_max_window_bits = 15;
    }
    if (malformed) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return 0;
}

/* ---- one message through zlib ---- */

/*
 * A final block (BFINAL, which RFC 7692 7.2.3.4 allows as the flush) ends
 * the sender's DEFLATE stream, and zlib's stream with it: inflated as it
 * was, every later message of a sender that keeps its window came out empty.
 * Its next message is a new DEFLATE stream that may still refer back into
 * the window, so the window goes on into a fresh stream.
 */
static int restart_keeping_window(struct z_stream_s *zs)
{
    uInt len = 32768; /* zlib: always enough for inflateGetDictionary */
    Bytef *window = malloc(len);
    int z = window ? inflateGetDictionary(zs, window, &len) : Z_MEM_ERROR;
    if (z == Z_OK)
        z = inflateReset(zs);
    if (z == Z_OK && len > 0)
        z = inflateSetDictionary(zs, window, len);
    free(window);
    return z;
}

int chat_wsdeflate_inflate(struct z_stream_s *zs, bool fresh, const void *in, size_t len,
                           size_t max, char **out, size_t *outlen)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    /* One byte over max tells a message of exactly max from a larger one. */
    size_t limit = max + 1;
    size_t cap = len * 4 + 64 < limit ? len * 4 + 64 : limit;
    char *buf = malloc(cap + 1);
    if (!buf || (fresh && inflateReset(zs) != Z_OK)) {
        free(buf);
        return CHAT_WSDEFLATE_E_NOMEM;
    }
    size_t used = 0;
    int rc = CHAT_WSDEFLATE_OK;
    /* The message, then the tail the sender dropped (RFC 7692 7.2.2). */
    for (int part = 0; part < 2 && rc == CHAT_WSDEFLATE_OK; part++) {
        zs->next_in = (Bytef *)(part == 0 ? in : tail);
        zs->avail_in = (uInt)(part == 0 ? len : sizeof(tail));
        for (;;) {
            if (used == cap) {
                if (cap == limit) {
                    rc = CHAT_WSDEFLATE_E_TOO_BIG;
                    break;
                }
                size_t ncap = cap * 2 < limit ? cap * 2 : limit;
                char *grown = realloc(buf, ncap + 1);
                if (!grown) {
                    rc = CHAT_WSDEFLATE_E_NOMEM;
                    break;
                }
                buf = grown;
                cap = ncap;
            }
            zs->next_out = (Bytef *)buf + used;
            zs->avail_out = (uInt)(cap - used);
            int z = inflate(zs, Z_SYNC_FLUSH);
            used = cap - zs->avail_out;
            if (used > max) {
                rc = CHAT_WSDEFLATE_E_TOO_BIG;
                break;
            }
            if (z == Z_STREAM_END) {
                part = 2; /* a final block: whatever follows is not inflated */
                if (!fresh && restart_keeping_window(zs) != Z_OK)
                    rc = CHAT_WSDEFLATE_E_NOMEM;
                break;
            }
            if (z == Z_NEED_DICT || z == Z_DATA_ERROR || z == Z_STREAM_ERROR) {
                rc = CHAT_WSDEFLATE_E_DATA;
                break;
            }
            if (z == Z_MEM_ERROR) {
                rc = CHAT_WSDEFLATE_E_NOMEM;
                break;
            }
            /* Done with this part when the input is used up and zlib left
             * room in the output (nothing more is pending). */
            if (zs->avail_in == 0 && zs->avail_out > 0)
                break;
        }
    }
    if (rc != CHAT_WSDEFLATE_OK) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *out = buf;
    *outlen = used;
    return CHAT_WSDEFLATE_OK;
}

int chat_wsdeflate_deflate(struct z_stream_s *zs, const void *in, size_t len, char **out,
                           size_t *outlen)
{
    if (deflateReset(zs) != Z_OK)
        return CHAT_WSDEFLATE_E_NOMEM;
    /* Sync flush adds an empty stored block (5 bytes) past deflateBound's
     * estimate for a finished stream; 16 more covers it. */
    size_t cap = deflateBound(zs, (uLong)len) + 16;
    char *buf = malloc(cap);
    if (!buf)
        return CHAT_WSDEFLATE_E_NOMEM;
    zs->next_in = (Bytef *)in;
    zs->avail_in = (uInt)len;
    zs->next_out = (Bytef *)buf;
    zs->avail_out = (uInt)cap;
    int z = deflate(zs, Z_SYNC_FLUSH);
    size_t used = cap - zs->avail_out;
    if ((z != Z_OK && z != Z_BUF_ERROR) || zs->avail_in != 0 || zs->avail_out == 0 || used < 4 ||
        memcmp(buf + used - 4, "\x00\x00\xff\xff", 4) != 0) {
        free(buf);
        return CHAT_WSDEFLATE_E_NOMEM;
    }
    *out = buf;
    *outlen = used - 4;
    return CHAT_WSDEFLATE_OK;
}
