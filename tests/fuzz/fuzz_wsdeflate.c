/*
 * permessage-deflate (common/wsdeflate.c).  Byte 0 picks the part:
 *   0: the rest is a Sec-WebSocket-Extensions offer list (server side);
 *   1: the rest is a server's answer (client side);
 *   2: the rest is a compressed message, inflated with a 4 KiB limit.
 * Checks: an accepted offer gets an answer the client side accepts, with the
 * same window; an answer accepted is one permessage-deflate; an inflated
 * message is within the limit, and compresses and inflates back to itself.
 */
#include <zlib.h>

#include "fuzz.h"
#include "wsdeflate.h"

#define LIMIT 4096

static void offer(const char *text, bool client_context)
{
    struct chat_wsdeflate d;
    bool ok = chat_wsdeflate_negotiate(text, client_context, &d);
    FUZZ_CHECK(ok == d.on);
    if (!ok)
        return;
    FUZZ_CHECK(d.server_max_window_bits >= 8 && d.server_max_window_bits <= 15);
    char answer[160];
    FUZZ_CHECK(chat_wsdeflate_response(&d, answer, sizeof(answer)) == 0);
    FUZZ_CHECK(d.client_max_window_bits >= 8 && d.client_max_window_bits <= 15);
    FUZZ_CHECK(client_context || d.client_no_context_takeover);
    /* libchat_client's offer never lets the client keep a window, so only
     * such answers are ones it must accept. */
    if (!d.client_no_context_takeover)
        return;
    struct chat_wsdeflate back;
    FUZZ_CHECK(chat_wsdeflate_parse_response(answer, &back) == 0);
    FUZZ_CHECK(back.on && back.server_no_context_takeover && back.client_no_context_takeover);
    FUZZ_CHECK(back.server_max_window_bits == d.server_max_window_bits);
}

static void answer(const char *text)
{
    struct chat_wsdeflate d;
    int rc = chat_wsdeflate_parse_response(text, &d);
    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(rc == 0 || !d.on);
    if (d.on)
        FUZZ_CHECK(d.server_max_window_bits >= 8 && d.server_max_window_bits <= 15);
}

static void message(const uint8_t *data, size_t size)
{
    static z_stream inf, def;
    static bool ready;
    if (!ready) {
        FUZZ_CHECK(inflateInit2(&inf, -15) == Z_OK);
        FUZZ_CHECK(deflateInit2(&def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        ready = true;
    }
    char *in = fuzz_memdup(data, size);
    char *out = NULL, *z = NULL, *again = NULL;
    size_t outlen = 0, zlen = 0, againlen = 0;
    int rc = chat_wsdeflate_inflate(&inf, true, in, size, LIMIT, &out, &outlen);
    free(in);
    FUZZ_CHECK(rc == CHAT_WSDEFLATE_OK || rc == CHAT_WSDEFLATE_E_DATA ||
               rc == CHAT_WSDEFLATE_E_TOO_BIG);
    if (rc != CHAT_WSDEFLATE_OK) {
        FUZZ_CHECK(out == NULL);
        return;
    }
    FUZZ_CHECK(outlen <= LIMIT && out[outlen] == '\0');
    FUZZ_CHECK(chat_wsdeflate_deflate(&def, out, outlen, &z, &zlen) == CHAT_WSDEFLATE_OK);
    FUZZ_CHECK(chat_wsdeflate_inflate(&inf, true, z, zlen, LIMIT, &again, &againlen) ==
               CHAT_WSDEFLATE_OK);
    FUZZ_CHECK(againlen == outlen && memcmp(again, out, outlen) == 0);
    free(out);
    free(z);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] % 3 == 2) {
        message(data + 1, size - 1);
        return 0;
    }
    char *text = malloc(size);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] % 3 == 0) {
        offer(text, false);
        offer(text, true);
    } else
        answer(text);
    free(text);
    return 0;
}
