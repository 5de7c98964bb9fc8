#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "tests.h"
#include "wsdeflate.h"

/* One parameter of an offer in each form it can take: text to append
 * ("" when absent) and whether that form is acceptable. */
struct form {
    const char *text;
    bool ok;
    int bits; /* the window bits it sets, 0 when none */
};

static const struct form server_nct[] = {
    {"", true, 0},
    {"; server_no_context_takeover", true, 0},
    {"; server_no_context_takeover=1", false, 0},
    {"; server_no_context_takeover; server_no_context_takeover", false, 0},
};
static const struct form client_nct[] = {
    {"", true, 0},
    {"; client_no_context_takeover", true, 0},
    {"; client_no_context_takeover=\"\"", false, 0},
    {"; client_no_context_takeover; client_no_context_takeover", false, 0},
};
static const struct form server_bits[] = {
    {"", true, 0},
    {"; server_max_window_bits=8", true, 8},
    {"; server_max_window_bits=15", true, 15},
    {"; server_max_window_bits=\"12\"", true, 12},
    {"; server_max_window_bits", false, 0},
    {"; server_max_window_bits=7", false, 0},
    {"; server_max_window_bits=16", false, 0},
    {"; server_max_window_bits=08", false, 0},
    {"; server_max_window_bits=10; server_max_window_bits=10", false, 0},
};
static const struct form client_bits[] = {
    {"", true, 0},
    {"; client_max_window_bits", true, 0},
    {"; client_max_window_bits=9", true, 9},
    {"; client_max_window_bits=15", true, 15},
    {"; client_max_window_bits=16", false, 0},
    {"; client_max_window_bits=x", false, 0},
    {"; client_max_window_bits; client_max_window_bits=10", false, 0},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Every combination of the four parameters, with and without letting the
 * client keep its window: accepted exactly when each one is, answered with
 * server_no_context_takeover, the server window asked for, and
 * client_no_context_takeover unless the client may keep context and did not
 * offer to drop it (then with the client window it offered, if any). */
START_TEST(test_negotiate_every_combination)
{
    size_t tried = 0;
    for (int context = 0; context < 2; context++)
        for (size_t a = 0; a < N(server_nct); a++)
            for (size_t b = 0; b < N(client_nct); b++)
                for (size_t c = 0; c < N(server_bits); c++)
                    for (size_t d = 0; d < N(client_bits); d++) {
                        char offer[512];
                        snprintf(offer, sizeof(offer), "permessage-deflate%s%s%s%s",
                                 server_bits[c].text, client_nct[b].text, client_bits[d].text,
                                 server_nct[a].text);
                        bool want = server_nct[a].ok && client_nct[b].ok && server_bits[c].ok &&
                                    client_bits[d].ok;
                        struct chat_wsdeflate got;
                        ck_assert_msg(chat_wsdeflate_negotiate(offer, context, &got) == want,
                                      "offer '%s'", offer);
                        ck_assert(got.on == want);
                        tried++;
                        if (!want)
                            continue;
                        int bits = server_bits[c].bits ? server_bits[c].bits : 15;
                        ck_assert_int_eq(got.server_max_window_bits, bits);
                        bool want_nct = !context || client_nct[b].text[0];
                        int cbits = client_bits[d].bits ? client_bits[d].bits : 15;
                        ck_assert(got.server_no_context_takeover);
                        ck_assert(got.client_no_context_takeover == want_nct);
                        ck_assert_int_eq(got.client_max_window_bits, cbits);
                        char answer[160], expect[160];
                        ck_assert_int_eq(chat_wsdeflate_response(&got, answer, sizeof(answer)), 0);
                        snprintf(expect, sizeof(expect),
                                 "permessage-deflate; server_no_context_takeover%s",
                                 want_nct ? "; client_no_context_takeover" : "");
                        /* An offered window is answered, 15 too (RFC 7692 7.1.2.1). */
                        if (server_bits[c].bits)
                            snprintf(expect + strlen(expect), sizeof(expect) - strlen(expect),
                                     "; server_max_window_bits=%d", bits);
                        if (!want_nct && cbits < 15)
                            snprintf(expect + strlen(expect), sizeof(expect) - strlen(expect),
                                     "; client_max_window_bits=%d", cbits);
                        ck_assert_str_eq(answer, expect);
                    }
    ck_assert_uint_eq(tried, 2 * N(server_nct) * N(client_nct) * N(server_bits) * N(client_bits));
}
END_TEST

START_TEST(test_negotiate_lists)
{
    struct chat_wsdeflate d;
    /* The first acceptable offer wins; refused ones before it are skipped. */
    ck_assert(chat_wsdeflate_negotiate("permessage-deflate; server_max_window_bits=7, "
                                       "permessage-deflate; server_max_window_bits=10, "
                                       "permessage-deflate; server_max_window_bits=12",
                                       false, &d));
    ck_assert_int_eq(d.server_max_window_bits, 10);
    /* Other extensions, case, whitespace and empty list items. */
    ck_assert(chat_wsdeflate_negotiate(" , x-webkit-deflate-frame ,\tPermessage-Deflate ;"
                                       "Server_Max_Window_Bits = 9 ,",
                                       false, &d));
    ck_assert_int_eq(d.server_max_window_bits, 9);
    /* Refused: nothing, other extensions only, unknown parameters, junk. */
    static const char *const refused[] = {
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate; mux",
        "permessage-deflate; server_max_window_bits=1\"0",
        "permessage-deflate; server_max_window_bits=\"10",
        "permessage-deflate; =10",
        "permessage-deflate server_no_context_takeover",
        "permessage-deflate;",
        "permessage-deflate-x",
        "\"permessage-deflate\"",
    };
    for (size_t i = 0; i < N(refused); i++)
        ck_assert_msg(!chat_wsdeflate_negotiate(refused[i], false, &d) && !d.on, "'%s'",
                      refused[i]);
    ck_assert(!chat_wsdeflate_negotiate(NULL, false, &d));
    /* Junk after an acceptable offer does not matter: it was taken first. */
    ck_assert(chat_wsdeflate_negotiate("permessage-deflate, \x01", false, &d));
    /* An answer that does not fit. */
    char small[16];
    ck_assert_int_eq(chat_wsdeflate_response(&d, small, sizeof(small)), -1);
}
END_TEST

START_TEST(test_parse_response)
{
    struct chat_wsdeflate d;
    ck_assert_int_eq(chat_wsdeflate_parse_response(NULL, &d), 0);
    ck_assert(!d.on);
    ck_assert_int_eq(chat_wsdeflate_parse_response("permessage-deflate; "
                                                   "server_no_context_takeover; "
                                                   "client_no_context_takeover; "
                                                   "server_max_window_bits=10",
                                                   &d),
                     0);
    ck_assert(d.on && d.server_no_context_takeover && d.client_no_context_takeover);
    ck_assert_int_eq(d.server_max_window_bits, 10);
    ck_assert_int_eq(chat_wsdeflate_parse_response("permessage-deflate", &d), 0);
    ck_assert(d.on && !d.server_no_context_takeover);
    static const char *const bad[] = {
        "x-other",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; client_max_window_bits=10", /* not offered */
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; bogus",
        "permessage-deflate;;",
    };
    for (size_t i = 0; i < N(bad); i++)
        ck_assert_msg(chat_wsdeflate_parse_response(bad[i], &d) == -1 && !d.on, "'%s'", bad[i]);
}
END_TEST

static z_stream *new_inflater(void)
{
    z_stream *zs = calloc(1, sizeof(*zs));
    ck_assert_ptr_nonnull(zs);
    ck_assert_int_eq(inflateInit2(zs, -15), Z_OK);
    return zs;
}

static void free_inflater(z_stream *zs)
{
    inflateEnd(zs);
    free(zs);
}

START_TEST(test_round_trip_and_bounds)
{
    z_stream def = {0};
    ck_assert_int_eq(deflateInit2(&def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z_stream *inf = new_inflater();
    char text[1000];
    for (size_t i = 0; i < sizeof(text); i++)
        text[i] = "chat message "[i % 13];
    char *z, *out;
    size_t zlen, outlen;
    ck_assert_int_eq(chat_wsdeflate_deflate(&def, text, sizeof(text), &z, &zlen), 0);
    ck_assert_uint_lt(zlen, sizeof(text) / 4);
    /* RFC 7692 7.2.1: the tail is not sent. */
    ck_assert(zlen < 4 || memcmp(z + zlen - 4, "\x00\x00\xff\xff", 4) != 0);
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, z, zlen, sizeof(text), &out, &outlen), 0);
    ck_assert_uint_eq(outlen, sizeof(text));
    ck_assert(memcmp(out, text, sizeof(text)) == 0);
    ck_assert_int_eq(out[outlen], '\0');
    free(out);
    /* One byte short of the limit: too big, and nothing handed out. */
    out = NULL;
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, z, zlen, sizeof(text) - 1, &out, &outlen),
                     CHAT_WSDEFLATE_E_TOO_BIG);
    ck_assert_ptr_null(out);
    /* The stream is reset per message: the same bytes inflate again. */
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, z, zlen, sizeof(text), &out, &outlen), 0);
    free(out);
    free(z);
    /* An empty message. */
    ck_assert_int_eq(chat_wsdeflate_deflate(&def, "", 0, &z, &zlen), 0);
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, z, zlen, 10, &out, &outlen), 0);
    ck_assert_uint_eq(outlen, 0);
    free(out);
    free(z);
    /* Not deflate data. */
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, "\xff\xfe\xfd", 3, 100, &out, &outlen),
                     CHAT_WSDEFLATE_E_DATA);
    deflateEnd(&def);
    free_inflater(inf);
}
END_TEST

/* 64 MiB of zeros in ~64 KiB: inflating stops at the limit. */
START_TEST(test_zip_bomb)
{
    z_stream def = {0};
    ck_assert_int_eq(deflateInit2(&def, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t n = 64u << 20;
    char *zeros = calloc(1, n);
    ck_assert_ptr_nonnull(zeros);
    char *z, *out = NULL;
    size_t zlen, outlen;
    ck_assert_int_eq(chat_wsdeflate_deflate(&def, zeros, n, &z, &zlen), 0);
    free(zeros);
    ck_assert_uint_lt(zlen, 128 * 1024);
    z_stream *inf = new_inflater();
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, z, zlen, 1 << 20, &out, &outlen),
                     CHAT_WSDEFLATE_E_TOO_BIG);
    ck_assert_ptr_null(out);
    /* How far it got: the output stopped at the limit, the input did not
     * run to the end. */
    ck_assert_uint_le(inf->total_out, (1 << 20) + 1);
    ck_assert_uint_lt(inf->total_in, zlen);
    free(z);
    deflateEnd(&def);
    free_inflater(inf);
}
END_TEST

/* A peer that keeps its window (no server_no_context_takeover): the
 * second message refers back into the first. */
START_TEST(test_context_takeover)
{
    z_stream def = {0};
    ck_assert_int_eq(deflateInit2(&def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    const char *msg = "the same sentence, twice over the wire";
    Bytef z1[256], z2[256];
    def.next_in = (Bytef *)msg;
    def.avail_in = (uInt)strlen(msg);
    def.next_out = z1;
    def.avail_out = sizeof(z1);
    ck_assert_int_eq(deflate(&def, Z_SYNC_FLUSH), Z_OK);
    size_t l1 = sizeof(z1) - def.avail_out - 4;
    def.next_in = (Bytef *)msg;
    def.avail_in = (uInt)strlen(msg);
    def.next_out = z2;
    def.avail_out = sizeof(z2);
    ck_assert_int_eq(deflate(&def, Z_SYNC_FLUSH), Z_OK);
    size_t l2 = sizeof(z2) - def.avail_out - 4;
    ck_assert_uint_lt(l2, l1);
    z_stream *inf = new_inflater();
    char *out;
    size_t outlen;
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, true, z1, l1, 1000, &out, &outlen), 0);
    free(out);
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, false, z2, l2, 1000, &out, &outlen), 0);
    ck_assert_str_eq(out, msg);
    free(out);
    deflateEnd(&def);
    free_inflater(inf);
}
END_TEST

/* Compresses msg into z (a raw stream, window 2^15) and ends it with a
 * final block, as a sender without an empty-block flush does (RFC 7692
 * 7.2.3.4); dict: the window it starts from, or NULL.  Returns its length. */
static size_t deflate_final(const char *msg, const char *dict, Bytef *z, size_t cap)
{
    z_stream def = {0};
    ck_assert_int_eq(deflateInit2(&def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    if (dict)
        ck_assert_int_eq(deflateSetDictionary(&def, (const Bytef *)dict, (uInt)strlen(dict)), Z_OK);
    def.next_in = (Bytef *)msg;
    def.avail_in = (uInt)strlen(msg);
    def.next_out = z;
    def.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&def, Z_FINISH), Z_STREAM_END);
    size_t n = cap - def.avail_out;
    deflateEnd(&def);
    return n;
}

/* A peer that keeps its window and ends each message with a final block:
 * its next message is a new stream that still refers back into the window.
 * It used to inflate to nothing (zlib's stream had ended). */
START_TEST(test_context_after_final_block)
{
    const char *m1 = "the same sentence, twice over the wire";
    const char *m2 = "again: the same sentence, twice over the wire";
    Bytef z1[256], z2[256];
    size_t l1 = deflate_final(m1, NULL, z1, sizeof(z1));
    size_t l2 = deflate_final(m2, m1, z2, sizeof(z2));
    z_stream *inf = new_inflater();
    char *out;
    size_t outlen;
    /* as the gateway's window for a client: never reset, from the first */
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, false, z1, l1, 1000, &out, &outlen), 0);
    ck_assert_str_eq(out, m1);
    free(out);
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, false, z2, l2, 1000, &out, &outlen), 0);
    ck_assert_str_eq(out, m2);
    free(out);
    /* past a second final block, a message that refers to nothing before */
    ck_assert_int_eq(chat_wsdeflate_inflate(inf, false, z1, l1, 1000, &out, &outlen), 0);
    ck_assert_str_eq(out, m1);
    free(out);
    free_inflater(inf);
}
END_TEST

TCase *wsdeflate_tcase(void)
{
    TCase *tc = tcase_create("wsdeflate");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_negotiate_every_combination);
    tcase_add_test(tc, test_negotiate_lists);
    tcase_add_test(tc, test_parse_response);
    tcase_add_test(tc, test_round_trip_and_bounds);
    tcase_add_test(tc, test_zip_bomb);
    tcase_add_test(tc, test_context_takeover);
    tcase_add_test(tc, test_context_after_final_block);
    return tc;
}
