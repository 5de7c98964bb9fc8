#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "frame.h"

struct gw_blob {
    unsigned refs;
    size_t len;
    char *bytes;
};

struct gw_blob *gw_blob_adopt(char *bytes, size_t len)
{
    struct gw_blob *b = malloc(sizeof(*b));
    if (!b) {
        free(bytes);
        return NULL;
    }
    *b = (struct gw_blob){.refs = 1, .len = len, .bytes = bytes};
    return b;
}

struct gw_blob *gw_blob_copy(const void *bytes, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return NULL;
    memcpy(copy, bytes, len);
    return gw_blob_adopt(copy, len);
}

const char *gw_blob_bytes(const struct gw_blob *b)
{
    return b->bytes;
}

void gw_blob_release(struct gw_blob *b)
{
    if (b && --b->refs == 0) {
        free(b->bytes);
        free(b);
    }
}

static void blob_drained(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    gw_blob_release(arg);
}

int gw_blob_append(struct evbuffer *out, struct gw_blob *b)
{
    b->refs++;
    if (evbuffer_add_reference(out, b->bytes, b->len, blob_drained, b) != 0) {
        b->refs--;
        return -1;
    }
    return 0;
}

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
    gw_blob_release(z->data);
    gw_blob_release(z->copy);
    *z = (struct gw_frame_z){0};
}

uint8_t gw_frame_opcode(const struct gw_frame *f)
{
    return f->header[0] & 0x0f;
}
