#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A server-to-client WebSocket text frame (RFC 6455 section 5.2: final,
 * unmasked) as a header plus a borrowed payload.  A fan-out builds it once
 * and every recipient's connection appends the same bytes.
 */

/*
 * The compressed form of a fan-out's frame (permessage-deflate), made by the
 * first recipient that negotiated the extension and sent as is to the
 * others: with server_no_context_takeover a message compresses to the same
 * bytes for everyone whose window is the same.  Owned by the fan-out, which
 * zero-initialises it and calls gw_frame_z_deinit when it is done.
 */
struct gw_frame_z {
    uint8_t bits;         /* window it was compressed for; 0: not made yet */
    bool plain;           /* compression failed or did not shrink it: send it plain */
    struct gw_blob *data; /* the compressed payload */
    size_t len;
    /* The plain payload, copied once when a recipient's share of it would be
     * at least GW_FRAME_SHARE_MIN, so that every recipient's output refers to
     * one copy (gw_blob_append) instead of holding its own. */
    struct gw_blob *copy;
};

/*
 * Bytes referred to by many output buffers at once: a 1 MiB image to 1,000
 * local members queues 1 MiB, not 1 GiB, however slowly they read.
 * Refcounted; loop thread only.
 */
struct gw_blob;
struct evbuffer;

/* Payloads from this size on are shared by reference; below it a copy
 * into the output buffer's last chain costs less than a chain of its own. */
#define GW_FRAME_SHARE_MIN (8u * 1024)

/* Takes bytes (malloc'd); NULL on no memory, bytes freed then. */
struct gw_blob *gw_blob_adopt(char *bytes, size_t len);
/* A copy of bytes; NULL on no memory. */
struct gw_blob *gw_blob_copy(const void *bytes, size_t len);
const char *gw_blob_bytes(const struct gw_blob *b);
/* Drops one reference; the last frees it.  NULL is a no-op. */
void gw_blob_release(struct gw_blob *b);
/* Appends b's bytes to out without copying them; the reference it takes is
 * dropped when out has written or drained them.  0, or -1 on no memory. */
int gw_blob_append(struct evbuffer *out, struct gw_blob *b);

struct gw_frame {
    uint8_t header[10];
    size_t header_len;
    const char *payload; /* borrowed */
    size_t len;
    struct gw_frame_z *z; /* NULL: each recipient compresses for itself */
};

/* Frames payload (borrowed: it must outlive every use of f). */
void gw_frame_text(struct gw_frame *f, const char *payload, size_t len);
/* The same for a fan-out: recipients share the compressed form kept in z
 * (zero-initialised by the caller, borrowed, released with
 * gw_frame_z_deinit once the fan-out is over). */
void gw_frame_text_shared(struct gw_frame *f, struct gw_frame_z *z, const char *payload,
                          size_t len);
void gw_frame_z_deinit(struct gw_frame_z *z);

/* Writes the header of a final unmasked text frame for a payload of len
 * bytes into out (at least 10 bytes); returns its length. */
size_t gw_frame_header(uint8_t *out, size_t len);
/* The same for another opcode (0x2 binary). */
size_t gw_frame_header_op(uint8_t *out, uint8_t opcode, size_t len);
/* The opcode of f (0x1 text, 0x2 binary). */
uint8_t gw_frame_opcode(const struct gw_frame *f);

#endif
