#include <stdbool.h>
#include <stdlib.h>

#include <zlib.h>

#include "deflate.h"
#include "wsdeflate.h"

struct gw_deflate {
    z_stream inflater;
    bool inflater_ready;
    z_stream deflater[16]; /* by window bits, 9..15 (8 uses 9, Huffman only) */
    bool deflater_ready[16];
};

struct gw_deflate *gw_deflate_new(void)
{
    return calloc(1, sizeof(struct gw_deflate));
}

void gw_deflate_free(struct gw_deflate *d)
{
    if (!d)
        return;
    if (d->inflater_ready)
        inflateEnd(&d->inflater);
    for (int i = 0; i < 16; i++) {
        if (d->deflater_ready[i])
            deflateEnd(&d->deflater[i]);
    }
    free(d);
}

int gw_deflate_compress(struct gw_deflate *d, unsigned bits, const void *in, size_t len, char **out,
                        size_t *outlen)
{
    if (bits < 8 || bits > 15)
        return CHAT_WSDEFLATE_E_DATA;
    z_stream *zs = &d->deflater[bits];
    if (!d->deflater_ready[bits]) {
        int wbits = bits == 8 ? 9 : (int)bits;
        int strategy = bits == 8 ? Z_HUFFMAN_ONLY : Z_DEFAULT_STRATEGY;
        /* memLevel 8 is zlib's default; the stream is one per node. */
        if (deflateInit2(zs, GW_DEFLATE_LEVEL, Z_DEFLATED, -wbits, 8, strategy) != Z_OK)
            return CHAT_WSDEFLATE_E_NOMEM;
        d->deflater_ready[bits] = true;
    }
    return chat_wsdeflate_deflate(zs, in, len, out, outlen);
}

int gw_deflate_inflate(struct gw_deflate *d, const void *in, size_t len, size_t max, char **out,
                       size_t *outlen)
{
    if (!d->inflater_ready) {
        if (inflateInit2(&d->inflater, -15) != Z_OK)
            return CHAT_WSDEFLATE_E_NOMEM;
        d->inflater_ready = true;
    }
    return chat_wsdeflate_inflate(&d->inflater, true, in, len, max, out, outlen);
}

struct gw_inflate_window {
    z_stream zs;
};

struct gw_inflate_window *gw_inflate_window_new(unsigned bits)
{
    if (bits < 8 || bits > 15)
        return NULL;
    struct gw_inflate_window *w = calloc(1, sizeof(*w));
    /* zlib compresses a raw stream asked for a 256-byte window with 512
     * bytes, so a zlib client that agreed to 8 may still refer 512 back. */
    if (w && inflateInit2(&w->zs, -(int)(bits < 9 ? 9 : bits)) != Z_OK) {
        free(w);
        return NULL;
    }
    return w;
}

void gw_inflate_window_free(struct gw_inflate_window *w)
{
    if (!w)
        return;
    inflateEnd(&w->zs);
    free(w);
}

int gw_inflate_window_inflate(struct gw_inflate_window *w, const void *in, size_t len, size_t max,
                              char **out, size_t *outlen)
{
    return chat_wsdeflate_inflate(&w->zs, false, in, len, max, out, outlen);
}
