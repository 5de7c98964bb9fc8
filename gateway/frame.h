#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stddef.h>
#include <stdint.h>

/*
 * A server-to-client WebSocket text frame (RFC 6455 section 5.2: final,
 * unmasked) as a header plus a borrowed payload.  A fan-out builds it once
 * and every recipient's connection appends the same bytes.
 */

struct gw_frame {
    uint8_t header[10];
    size_t header_len;
    const char *payload; /* borrowed */
    size_t len;
};

/* Frames payload (borrowed: it must outlive every use of f). */
void gw_frame_text(struct gw_frame *f, const char *payload, size_t len);

/* Writes the header of a final unmasked text frame for a payload of len
 * bytes into out (at least 10 bytes); returns its length. */
size_t gw_frame_header(uint8_t *out, size_t len);
/* The same for another opcode (0x2 binary). */
size_t gw_frame_header_op(uint8_t *out, uint8_t opcode, size_t len);

#endif
