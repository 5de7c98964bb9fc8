#include <string.h>

#include "frame.h"
#include "tests.h"

/* Builds the header for len and compares it byte for byte with want. */
static void expect_header(size_t len, const uint8_t *want, size_t want_len)
{
    uint8_t out[16];
    memset(out, 0xAA, sizeof(out));
    size_t n = gw_frame_header(out, len);
    ck_assert_msg(n == want_len, "header(%zu) length %zu, want %zu", len, n, want_len);
    ck_assert_msg(memcmp(out, want, want_len) == 0, "header(%zu) bytes differ", len);
    /* Nothing written past the header (callers size buffers at 10 bytes). */
    for (size_t i = n; i < sizeof(out); i++)
        ck_assert_uint_eq(out[i], 0xAA);
}

START_TEST(test_frame_headers)
{
    /* RFC 6455 5.2: FIN|text = 0x81; server frames are unmasked (bit 7 of byte 1 clear). */
    static const uint8_t h0[] = {0x81, 0x00};
    static const uint8_t h125[] = {0x81, 0x7d};
    static const uint8_t h126[] = {0x81, 0x7e, 0x00, 0x7e};
    static const uint8_t h65535[] = {0x81, 0x7e, 0xff, 0xff};
    static const uint8_t h65536[] = {0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    static const uint8_t h1[] = {0x81, 0x01};
    static const uint8_t h16m[] = {0x81, 0x7f, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x01};
    expect_header(0, h0, sizeof(h0));
    expect_header(1, h1, sizeof(h1));
    expect_header(125, h125, sizeof(h125));
    expect_header(126, h126, sizeof(h126));
    expect_header(65535, h65535, sizeof(h65535));
    expect_header(65536, h65536, sizeof(h65536));
    expect_header(16777217, h16m, sizeof(h16m));
}
END_TEST

TCase *ws_tcase(void)
{
    TCase *tc = tcase_create("ws");
    tcase_add_test(tc, test_frame_headers);
    return tc;
}
