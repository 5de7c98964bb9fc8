#include <stdlib.h>

#include "frame.h"

size_t gw_frame_header(uint8_t *out, size_t len)
{
    return gw_frame_header_op(out, 0x1, len);
}

size_t gw_frame_header_op(uint8_t *out, uint8_t opcode, size_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0f)); /* FIN + opcode */
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

void gw_frame_text(struct gw_frame *f, const char *payload, size_t len)
{
    f->header_len = gw_frame_header(f->header, len);
    f->payload = payload;
    f->len = len;
    f->z = NULL;
}

void gw_frame_text_shared(struct gw_frame *f, struct gw_frame_z *z, const char *payload, size_t len)
{
    gw_frame_text(f, payload, len);
    f->z = z;
}

void gw_frame_z_deinit(struct gw_frame_z *z)
{
    free(z->data);
    *z = (struct gw_frame_z){0};
}

uint8_t gw_frame_opcode(const struct gw_frame *f)
{
    return f->header[0] & 0x0f;
}
