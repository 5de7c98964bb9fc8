#ifndef GW_DEFLATE_H
#define GW_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The node's zlib streams for permessage-deflate (common/wsdeflate.h).  With
 * no context takeover on both sides a message compresses and inflates the
 * same on any stream once it is reset, so the loop thread keeps one inflate
 * stream and one deflate stream per window size for every connection,
 * instead of ~300 KiB of zlib state per connection.  Loop thread only; the
 * streams are made on first use.
 */

struct gw_deflate;

/* Compression level of outgoing messages: zlib's default trades ~2 % of
 * size for half the CPU of level 9 on chat JSON. */
#define GW_DEFLATE_LEVEL 6
/* Larger messages go out plain: compressing runs on the event loop, at
 * 35-45 ms per MiB of base64 image data on this project's 2-core machine
 * (level 1 barely faster), for ~24 % less; a `joined` full of images would
 * stall every connection of the node for 100 ms and more.  Text messages
 * (at most 20,000 code points) and replies of text stay under it. */
#define GW_DEFLATE_MAX_MESSAGE (256u * 1024)

struct gw_deflate *gw_deflate_new(void);
/* NULL is a no-op. */
void gw_deflate_free(struct gw_deflate *d);

/*
 * Compresses one message for peers whose window is 2^bits (8..15).  zlib
 * cannot make a raw stream with a 256-byte window, so for 8 the message is
 * Huffman-coded only: without back references any window decodes it.  0 and
 * a malloc'd *out, or a negative CHAT_WSDEFLATE_E_*: send it uncompressed.
 */
int gw_deflate_compress(struct gw_deflate *d, unsigned bits, const void *in, size_t len, char **out,
                        size_t *outlen);

/* Inflates one compressed message (chat_wsdeflate_inflate: bounded by max,
 * NUL-terminated).  0 or a negative CHAT_WSDEFLATE_E_*. */
int gw_deflate_inflate(struct gw_deflate *d, const void *in, size_t len, size_t max, char **out,
                       size_t *outlen);

/*
 * The window of one client that keeps its compression context between
 * messages (--deflate-client-context): its messages may refer back into the
 * ones before, so this stream lives as long as the connection.  zlib makes
 * the 2^bits window on the first inflate, so a client that never sends a
 * compressed message costs only this handle.
 */
struct gw_inflate_window;

/* bits: the client's window, 8..15.  NULL on no memory. */
struct gw_inflate_window *gw_inflate_window_new(unsigned bits);
/* NULL is a no-op. */
void gw_inflate_window_free(struct gw_inflate_window *w);
/* As gw_deflate_inflate, continuing the client's stream. */
int gw_inflate_window_inflate(struct gw_inflate_window *w, const void *in, size_t len, size_t max,
                              char **out, size_t *outlen);

#endif
