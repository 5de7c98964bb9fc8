/*
 * gw_ws (ws.c) through the real gateway's /echo endpoint (--echo), which needs
 * no Redis: RFC 6455 framing and the close codes of PROTOCOL.md section 4
 * (binary echoed, invalid UTF-8 1007, too large 1009, drain 1001).
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <zlib.h>

#include "gateway_proc.h"
#include "tests.h"
#include "wsdeflate.h"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

struct frame {
    int opcode;
    bool fin;
    bool rsv1;        /* permessage-deflate: the payload is compressed */
    uint8_t *payload; /* malloc'd, NUL-terminated */
    size_t len;
};

static struct tg_conn *ws_open(void)
{
    struct tg_conn *c = tg_conn_open();
    /* The sample key of RFC 6455 section 1.3, with its known accept value. */
    tg_conn_sends(c, "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    struct tg_resp r;
    tg_read_resp(c, &r, false);
    ck_assert_msg(r.status == 101, "/echo upgrade: %d", r.status);
    char accept[64];
    ck_assert(tg_resp_header(&r, "Sec-WebSocket-Accept", accept, sizeof(accept)));
    ck_assert_str_eq(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    tg_resp_free(&r);
    return c;
}

/* Writes one frame into f (len + 14 bytes at least); its length.  rsv goes
 * into bits 4-6 of the first byte. */
static size_t ws_frame(uint8_t *f, int opcode, bool fin, int rsv, bool masked, const void *data,
                       size_t len)
{
    size_t n = 0;
    f[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        f[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        f[n++] = mbit | 126;
        f[n++] = (uint8_t)(len >> 8);
        f[n++] = (uint8_t)len;
    } else {
        f[n++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            f[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked) {
        memcpy(f + n, key, 4);
        n += 4;
    }
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        f[n + i] = masked ? p[i] ^ key[i % 4] : p[i];
    return n + len;
}

static void ws_send_raw(struct tg_conn *c, int opcode, bool fin, int rsv, bool masked,
                        const void *data, size_t len)
{
    uint8_t *f = malloc(len + 14);
    ck_assert_ptr_nonnull(f);
    tg_conn_send(c, f, ws_frame(f, opcode, fin, rsv, masked, data, len));
    free(f);
}

static void ws_send(struct tg_conn *c, int opcode, bool fin, const void *data, size_t len)
{
    ws_send_raw(c, opcode, fin, 0, true, data, len);
}

static void ws_send_text(struct tg_conn *c, const char *text)
{
    ws_send(c, OP_TEXT, true, text, strlen(text));
}

/* Reads one frame; false when the connection closed or timed out first. */
static bool ws_recv(struct tg_conn *c, struct frame *f)
{
    memset(f, 0, sizeof(*f));
    for (;;) {
        const uint8_t *b = (const uint8_t *)c->buf;
        if (c->len >= 2) {
            size_t hl = 2, len = b[1] & 0x7f;
            if (len == 126)
                hl = 4;
            else if (len == 127)
                hl = 10;
            if (c->len >= hl) {
                if (len == 126)
                    len = (size_t)b[2] << 8 | b[3];
                else if (len == 127)
                    for (int i = 0; i < 8; i++)
                        len = len << 8 | b[2 + i];
                if (c->len >= hl + len) {
                    ck_assert_msg((b[1] & 0x80) == 0, "server frames must not be masked");
                    ck_assert_msg((b[0] & 0x30) == 0, "server set RSV2 or RSV3");
                    f->rsv1 = (b[0] & 0x40) != 0;
                    f->fin = (b[0] & 0x80) != 0;
                    f->opcode = b[0] & 0x0f;
                    f->len = len;
                    f->payload = malloc(len + 1);
                    ck_assert_ptr_nonnull(f->payload);
                    memcpy(f->payload, b + hl, len);
                    f->payload[len] = '\0';
                    memmove(c->buf, c->buf + hl + len, c->len - hl - len);
                    c->len -= hl + len;
                    return true;
                }
            }
        }
        if (tg_conn_fill(c) <= 0)
            return false;
    }
}

/* Expects one complete text message equal to want (len bytes). */
static void expect_text(struct tg_conn *c, const void *want, size_t len)
{
    struct frame f;
    ck_assert_msg(ws_recv(c, &f), "no echo");
    ck_assert_int_eq(f.opcode, OP_TEXT);
    ck_assert(f.fin);
    ck_assert_msg(!f.rsv1, "compressed without permessage-deflate negotiated");
    ck_assert_uint_eq(f.len, len);
    ck_assert(memcmp(f.payload, want, len) == 0);
    free(f.payload);
}

/* Reads until a close frame: its code (1005 if it has none), or -1 when the
 * connection ended without one.  Data frames on the way are skipped. */
static int wait_close(struct tg_conn *c)
{
    struct frame f;
    while (ws_recv(c, &f)) {
        int op = f.opcode;
        int code = f.len >= 2 ? (f.payload[0] << 8 | f.payload[1]) : 1005;
        free(f.payload);
        if (op == OP_CLOSE)
            return code;
    }
    return -1;
}

/* The server sends close with code, then closes TCP. */
static void expect_close(struct tg_conn *c, int code)
{
    int got = wait_close(c);
    ck_assert_msg(got == code, "close code %d, want %d", got, code);
    ck_assert(tg_conn_closed_by_peer(c));
}

/* A protocol error: close 1002 or a dropped connection, never an answer. */
/* Every protocol error is answered with a 1002 close frame before TCP goes
 * (never a bare drop, which the peer would read as 1006). */
static void expect_protocol_error(struct tg_conn *c)
{
    int got = wait_close(c);
    ck_assert_msg(got == 1002, "close code %d, want 1002", got);
    ck_assert(tg_conn_closed_by_peer(c));
}

START_TEST(test_echo)
{
    struct tg_conn *c = ws_open();
    ws_send_text(c, "hello");
    expect_text(c, "hello", 5);
    const char *utf8 = "h\xc3\xa9llo \xf0\x9f\x98\x80 \xe4\xb8\xad";
    ws_send_text(c, utf8);
    expect_text(c, utf8, strlen(utf8));
    ws_send_text(c, "");
    expect_text(c, "", 0);

    /* 16-bit length, and exactly --max-message. */
    char *big = malloc(TG_MAX_MESSAGE);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', TG_MAX_MESSAGE);
    ws_send(c, OP_TEXT, true, big, 300);
    expect_text(c, big, 300);
    ws_send(c, OP_TEXT, true, big, TG_MAX_MESSAGE);
    expect_text(c, big, TG_MAX_MESSAGE);
    free(big);

    /* Fragments are reassembled, with a ping in between answered at once. */
    ws_send(c, OP_TEXT, false, "hel", 3);
    ws_send(c, OP_PING, true, "abc", 3);
    ws_send(c, OP_CONT, true, "lo", 2);
    struct frame f;
    ck_assert(ws_recv(c, &f));
    ck_assert_int_eq(f.opcode, OP_PONG);
    ck_assert_str_eq((char *)f.payload, "abc");
    free(f.payload);
    expect_text(c, "hello", 5);

    /* A code point split across fragments is still valid UTF-8. */
    ws_send(c, OP_TEXT, false, "caf\xc3", 4);
    ws_send(c, OP_CONT, true, "\xa9", 1);
    expect_text(c, "caf\xc3\xa9", 5);

    /* Unsolicited pongs are ignored. */
    ws_send(c, OP_PONG, true, "z", 1);
    ws_send_text(c, "still here");
    expect_text(c, "still here", 10);
    tg_conn_close(c);
}
END_TEST

START_TEST(test_pipelined_frames)
{
    /* Many frames in one write come back in order. */
    struct tg_conn *c = ws_open();
    for (int i = 0; i < 50; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "m%d", i);
        ws_send_text(c, msg);
    }
    for (int i = 0; i < 50; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "m%d", i);
        expect_text(c, msg, strlen(msg));
    }
    tg_conn_close(c);
}
END_TEST

/* /echo sends binary messages back as they are (the chat endpoint closes
 * with 1003 instead: tests/integration). */
START_TEST(test_binary_echoed)
{
    struct tg_conn *c = ws_open();
    ws_send(c, OP_BINARY, false, "\x01\x02", 2);
    ws_send(c, 0x0, true, "\x00\x03", 2);
    struct frame f;
    ck_assert_msg(ws_recv(c, &f), "no echo");
    ck_assert_int_eq(f.opcode, OP_BINARY);
    ck_assert(f.fin);
    ck_assert_uint_eq(f.len, 4);
    ck_assert(memcmp(f.payload, "\x01\x02\x00\x03", 4) == 0);
    free(f.payload);
    tg_conn_close(c);
}
END_TEST

START_TEST(test_invalid_utf8_1007)
{
    static const char *const bad[] = {
        "\xc3\x28",         /* bad continuation */
        "\xc0\xaf",         /* overlong '/' */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "abc\xff",          /* never valid */
        "\xe4\xb8",         /* truncated at the end */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tg_conn *c = ws_open();
        ws_send_text(c, bad[i]);
        int got = wait_close(c);
        ck_assert_msg(got == 1007, "invalid UTF-8 #%zu: close %d, want 1007", i, got);
        ck_assert(tg_conn_closed_by_peer(c));
        tg_conn_close(c);
    }
}
END_TEST

START_TEST(test_too_large_1009)
{
    char *big = malloc(TG_MAX_MESSAGE + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'y', TG_MAX_MESSAGE + 1);
    struct tg_conn *c = ws_open();
    ws_send(c, OP_TEXT, true, big, TG_MAX_MESSAGE + 1);
    expect_close(c, 1009);
    tg_conn_close(c);

    /* The same total in fragments. */
    c = ws_open();
    ws_send(c, OP_TEXT, false, big, TG_MAX_MESSAGE / 2);
    ws_send(c, OP_CONT, true, big, TG_MAX_MESSAGE / 2 + 1);
    expect_close(c, 1009);
    tg_conn_close(c);
    free(big);
}
END_TEST

START_TEST(test_protocol_errors)
{
    struct tg_conn *c = ws_open();
    /* Client frames must be masked. */
    ws_send_raw(c, OP_TEXT, true, 0, false, "hi", 2);
    expect_protocol_error(c);
    tg_conn_close(c);

    c = ws_open();
    ws_send(c, 3, true, "x", 1); /* reserved opcode */
    expect_protocol_error(c);
    tg_conn_close(c);

    c = ws_open();
    ws_send_raw(c, OP_TEXT, true, 4, true, "x", 1); /* RSV1 without an extension */
    expect_protocol_error(c);
    tg_conn_close(c);

    c = ws_open();
    char ping[126];
    memset(ping, 'p', sizeof(ping));
    ws_send(c, OP_PING, true, ping, sizeof(ping)); /* control frames carry <= 125 bytes */
    expect_protocol_error(c);
    tg_conn_close(c);

    c = ws_open();
    ws_send(c, OP_CONT, true, "x", 1); /* continuation of nothing */
    expect_protocol_error(c);
    tg_conn_close(c);

    c = ws_open();
    ws_send(c, OP_PING, false, "p", 1); /* control frames cannot be fragmented */
    expect_protocol_error(c);
    tg_conn_close(c);

    /* The reply owed for a valid message before the bad frame still comes. */
    c = ws_open();
    ws_send_text(c, "first");
    ws_send(c, OP_PING, true, ping, sizeof(ping));
    expect_text(c, "first", 5);
    expect_protocol_error(c);
    tg_conn_close(c);
}
END_TEST

START_TEST(test_client_close)
{
    struct tg_conn *c = ws_open();
    ws_send(c, OP_CLOSE, true,
            "\x03\xe8"
            "bye",
            5);
    int got = wait_close(c);
    ck_assert_msg(got == 1000, "close reply %d, want 1000", got);
    ck_assert(tg_conn_closed_by_peer(c));
    tg_conn_close(c);
}
END_TEST

/* Sends all of data unless the peer stops taking it for stall_ms or goes
 * away; returns false then. */
static bool send_or_stall(int fd, const uint8_t *data, size_t len, int stall_ms)
{
    while (len > 0) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, stall_ms) <= 0 || (pfd.revents & (POLLERR | POLLHUP)))
            return false;
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

START_TEST(test_slow_consumer)
{
    struct tg_conn *slow = ws_open();
    struct tg_conn *other = ws_open();
    /* One masked frame of --max-message bytes, sent again and again. */
    uint8_t *frame = malloc(TG_MAX_MESSAGE + 8);
    ck_assert_ptr_nonnull(frame);
    frame[0] = 0x81;
    frame[1] = 0x80 | 126;
    frame[2] = (uint8_t)(TG_MAX_MESSAGE >> 8);
    frame[3] = (uint8_t)TG_MAX_MESSAGE;
    memset(frame + 4, 0, 4); /* a zero mask leaves the payload as it is */
    memset(frame + 8, 'z', TG_MAX_MESSAGE);
    /* Up to 32 MiB of frames whose echoes are never read: the server stops
     * reading once its unsent output passes the high-water mark, so the
     * sender stalls long before (backpressure, not unbounded buffering). */
    size_t frames = 0;
    bool stalled = false;
    while (frames < 8192) {
        if (!send_or_stall(slow->fd, frame, TG_MAX_MESSAGE + 8, 2000)) {
            stalled = true;
            break;
        }
        frames++;
    }
    free(frame);
    ck_assert_msg(stalled, "the server kept reading (%zu frames taken)", frames);
    /* What the server holds for it stays near the 1 MiB high-water mark,
     * plus what the kernel's socket buffers take on both sides. */
    ck_assert_uint_lt(frames * (size_t)TG_MAX_MESSAGE, 24u * 1024 * 1024);

    /* Nobody else is slowed down meanwhile. */
    ws_send_text(other, "still fast");
    expect_text(other, "still fast", 10);

    /* Once the slow reader reads, the server resumes: every whole frame it
     * sent comes back, nothing was dropped. */
    size_t want = frames * (size_t)(TG_MAX_MESSAGE + 4), got = 0;
    int64_t deadline = tg_mono_ms() + 15000;
    char *buf = malloc(1 << 16);
    ck_assert_ptr_nonnull(buf);
    while (got < want && tg_mono_ms() < deadline) {
        struct pollfd pfd = {slow->fd, POLLIN, 0};
        if (poll(&pfd, 1, 1000) <= 0)
            continue;
        ssize_t n = recv(slow->fd, buf, 1 << 16, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    free(buf);
    ck_assert_msg(got >= want, "read %zu of %zu echoed bytes", got, want);

    ws_send_text(other, "after");
    expect_text(other, "after", 5);
    tg_conn_close(other);
    tg_conn_close(slow);
}
END_TEST

START_TEST(test_ping_and_idle)
{
    /* Two ping periods of slack before the idle close, so a loaded machine
     * answering a ping late does not look silent. */
    static const char *const env[] = {"CHAT_PING_INTERVAL=1", "CHAT_IDLE_TIMEOUT=3", NULL};
    tg_gateway_restart(env);

    /* A client that answers pings stays connected past the idle timeout. */
    struct tg_conn *c = ws_open();
    int pings = 0;
    int64_t until = tg_mono_ms() + 4500;
    while (tg_mono_ms() < until) {
        struct frame f;
        ck_assert_msg(ws_recv(c, &f), "connection lost while answering pings");
        ck_assert_int_eq(f.opcode, OP_PING);
        ws_send(c, OP_PONG, true, f.payload, f.len);
        free(f.payload);
        pings++;
    }
    ck_assert_int_ge(pings, 3);
    ws_send_text(c, "alive");
    struct frame f;
    do {
        ck_assert(ws_recv(c, &f));
        free(f.payload);
    } while (f.opcode == OP_PING);
    ck_assert_int_eq(f.opcode, OP_TEXT);
    tg_conn_close(c);

    /* A silent one is closed, in bounded time. */
    c = ws_open();
    int64_t t0 = tg_mono_ms();
    int code = wait_close(c);
    ck_assert_msg(code >= 1000 && code < 5000, "silent client: close %d", code);
    ck_assert(tg_conn_closed_by_peer(c));
    int64_t took = tg_mono_ms() - t0;
    ck_assert_msg(took >= 2500 && took < 6500, "silent client closed after %lld ms",
                  (long long)took);
    tg_conn_close(c);
}
END_TEST

/* One of the gateway's gauges, found by "\\nname{" in /metrics. */
static long gauge(const char *name)
{
    struct tg_resp *r = tg_get("/metrics");
    ck_assert_int_eq(r->status, 200);
    const char *line = strstr(r->body, name);
    ck_assert_msg(line, "no %s in /metrics", name + 1);
    line = strchr(line + 1, ' ');
    ck_assert_ptr_nonnull(line);
    long n = strtol(line + 1, NULL, 10);
    tg_resp_release(r);
    return n;
}

static long ws_parsers(void)
{
    return gauge("\nchat_ws_parsers{");
}

/* Polls the gauge until it is want (the gateway reads on its own time). */
static void expect_parsers(long want)
{
    long got = -1;
    for (int64_t until = tg_mono_ms() + 3000; tg_mono_ms() < until; poll(NULL, 0, 10))
        if ((got = ws_parsers()) == want)
            return;
    ck_abort_msg("chat_ws_parsers %ld, want %ld", got, want);
}

/*
 * An idle connection keeps no wslay context: it is freed at every frame
 * boundary and made again by the next byte.  A boundary is only a boundary
 * when wslay holds none of the stream, so frames cut at every byte (headers
 * of every length form, a fragmented message with a ping inside) must still
 * come through whole.
 */
START_TEST(test_parser_freed_between_frames)
{
    struct tg_conn *c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = ws_open();
        ws_send_text(c[i], "x");
        expect_text(c[i], "x", 1);
    }
    expect_parsers(0);

    /* Half a header keeps the parser; the rest of the frame frees it. */
    uint8_t buf[4096 + 14];
    size_t n = ws_frame(buf, OP_TEXT, true, 0, true, "held", 4);
    tg_conn_send(c[0], buf, 1);
    expect_parsers(1);
    tg_conn_send(c[0], buf + 1, n - 1);
    expect_text(c[0], "held", 4);
    expect_parsers(0);

    /* A fragmented message keeps it between its frames. */
    ws_send(c[1], OP_TEXT, false, "frag", 4);
    expect_parsers(1);
    ws_send(c[1], OP_CONT, true, "ment", 4);
    expect_text(c[1], "fragment", 8);
    expect_parsers(0);

    char big[300];
    memset(big, 'b', sizeof(big));
    uint8_t stream[1024];
    size_t len = 0;
    len += ws_frame(stream + len, OP_TEXT, true, 0, true, "a", 1);
    len += ws_frame(stream + len, OP_TEXT, true, 0, true, big, sizeof(big)); /* 16-bit length */
    len += ws_frame(stream + len, OP_TEXT, false, 0, true, "hel", 3);
    len += ws_frame(stream + len, OP_PING, true, 0, true, "p", 1);
    len += ws_frame(stream + len, OP_CONT, true, 0, true, "lo", 2);
    len += ws_frame(stream + len, OP_TEXT, true, 0, true, "", 0);
    static const size_t steps[] = {1, 2, 3, 5, 7};
    for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
        struct tg_conn *w = c[2 + s];
        for (size_t off = 0; off < len; off += steps[s]) {
            tg_conn_send(w, stream + off, off + steps[s] < len ? steps[s] : len - off);
            poll(NULL, 0, 1); /* a read of its own, mostly */
        }
        expect_text(w, "a", 1);
        expect_text(w, big, sizeof(big));
        struct frame f;
        ck_assert(ws_recv(w, &f));
        ck_assert_int_eq(f.opcode, OP_PONG);
        ck_assert_str_eq((char *)f.payload, "p");
        free(f.payload);
        expect_text(w, "hello", 5);
        expect_text(w, "", 0);
    }
    expect_parsers(0);
    for (int i = 0; i < 8; i++)
        tg_conn_close(c[i]);
}
END_TEST

START_TEST(test_drain_1001)
{
    struct tg_conn *c = ws_open();
    ws_send_text(c, "before");
    expect_text(c, "before", 6);
    int64_t t0 = tg_mono_ms();
    int status = tg_gateway_stop(12000);
    ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "exit status %d after SIGTERM", status);
    ck_assert_int_lt(tg_mono_ms() - t0, 10000);
    /* Everything the gateway sent is in our socket buffer by now. */
    int got = wait_close(c);
    ck_assert_msg(got == 1001, "on SIGTERM an open WebSocket got close %d, want 1001", got);
    tg_conn_close(c);
}
END_TEST

TCase *ws_echo_tcase(void)
{
    TCase *tc = tcase_create("ws_echo");
    tcase_set_timeout(tc, TG_WATCHDOG_SEC + 10);
    tcase_add_unchecked_fixture(tc, tg_make_tree, tg_remove_tree);
    tcase_add_checked_fixture(tc, tg_setup, tg_teardown);
    tcase_add_test(tc, test_echo);
    tcase_add_test(tc, test_pipelined_frames);
    tcase_add_test(tc, test_binary_echoed);
    tcase_add_test(tc, test_invalid_utf8_1007);
    tcase_add_test(tc, test_too_large_1009);
    tcase_add_test(tc, test_protocol_errors);
    tcase_add_test(tc, test_client_close);
    tcase_add_test(tc, test_slow_consumer);
    tcase_add_test(tc, test_ping_and_idle);
    tcase_add_test(tc, test_drain_1001);
    tcase_add_test(tc, test_parser_freed_between_frames);
    return tc;
}

/* ---- permessage-deflate (RFC 7692) ---- */

/* Upgrades with extra request header lines (each ending in \r\n); the
 * Sec-WebSocket-Extensions answer goes to ext ("" when there is none). */
static struct tg_conn *ws_open_ext(const char *extra, char *ext, size_t ext_len)
{
    struct tg_conn *c = tg_conn_open();
    char req[1024];
    snprintf(req, sizeof(req),
             "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n%s\r\n",
             extra);
    tg_conn_sends(c, req);
    struct tg_resp r;
    tg_read_resp(c, &r, false);
    ck_assert_msg(r.status == 101, "/echo upgrade with %s: %d", extra, r.status);
    if (!tg_resp_header(&r, "Sec-WebSocket-Extensions", ext, ext_len))
        ext[0] = '\0';
    tg_resp_free(&r);
    return c;
}

static struct tg_conn *ws_open_deflate(void)
{
    char ext[256];
    struct tg_conn *c =
        ws_open_ext("Sec-WebSocket-Extensions: permessage-deflate\r\n", ext, sizeof(ext));
    ck_assert_str_eq(ext, "permessage-deflate; server_no_context_takeover; "
                          "client_no_context_takeover");
    return c;
}

/* What a client would send: raw deflate, sync-flushed, tail dropped.
 * Returns the compressed length (out has room for len + 64). */
static size_t zcompress(const void *in, size_t len, uint8_t *out)
{
    z_stream zs = {0};
    ck_assert_int_eq(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    char *z = NULL;
    size_t zlen = 0;
    ck_assert_int_eq(chat_wsdeflate_deflate(&zs, in, len, &z, &zlen), CHAT_WSDEFLATE_OK);
    deflateEnd(&zs);
    ck_assert_uint_le(zlen, len + 64);
    memcpy(out, z, zlen);
    free(z);
    return zlen;
}

/* Sends text as one compressed message (RSV1 on the first frame). */
static void ws_send_deflated(struct tg_conn *c, const void *text, size_t len)
{
    uint8_t *z = malloc(len + 64);
    ck_assert_ptr_nonnull(z);
    size_t zlen = zcompress(text, len, z);
    ws_send_raw(c, OP_TEXT, true, 4, true, z, zlen);
    free(z);
}

/* Expects the echo of want: compressed when it is at least --deflate-min
 * (128 by default), plain otherwise. */
static void expect_echo(struct tg_conn *c, const void *want, size_t len)
{
    struct frame f;
    ck_assert_msg(ws_recv(c, &f), "no echo");
    ck_assert_msg(f.opcode == OP_TEXT, "echo of %zu bytes: opcode %d (close code %d)", len,
                  f.opcode, f.opcode == 8 && f.len >= 2 ? f.payload[0] << 8 | f.payload[1] : 0);
    ck_assert(f.fin);
    ck_assert_msg(f.rsv1 == (len >= 128), "echo of %zu bytes: rsv1 %d", len, f.rsv1);
    char *data = (char *)f.payload;
    size_t dlen = f.len;
    if (f.rsv1) {
        z_stream zs = {0};
        ck_assert_int_eq(inflateInit2(&zs, -15), Z_OK);
        ck_assert_int_eq(chat_wsdeflate_inflate(&zs, true, f.payload, f.len, 1 << 20, &data, &dlen),
                         CHAT_WSDEFLATE_OK);
        inflateEnd(&zs);
        ck_assert_uint_lt(f.len, dlen); /* it did get smaller */
        free(f.payload);
    }
    ck_assert_uint_eq(dlen, len);
    ck_assert(memcmp(data, want, len) == 0);
    free(data);
}

/* Chat-like text of n bytes that compresses like the real thing. */
static char *chat_text(size_t n)
{
    static const char *const words[] = {"{\"type\":\"message\",",
                                        "\"room\":\"general\",",
                                        "hello",
                                        "deploy",
                                        "the",
                                        "build",
                                        "is",
                                        "green"};
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0, w = 0; i < n; w = w * 7 + 3) {
        const char *word = words[w % 8];
        for (size_t k = 0; word[k] && i < n; k++)
            s[i++] = word[k];
        if (i < n)
            s[i++] = ' ';
    }
    s[n] = '\0';
    return s;
}

START_TEST(test_deflate_negotiation)
{
    static const struct {
        const char *extra;
        const char *answer;
    } cases[] = {
        {"", ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=10"},
        /* Chromium's offer, and a refused one before an acceptable one. */
        {"Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; "
         "server_max_window_bits=7, permessage-deflate; server_max_window_bits=8\r\n",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
         "server_max_window_bits=8"},
        /* Two header lines are one list. */
        {"Sec-WebSocket-Extensions: permessage-deflate; bogus\r\n"
         "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        /* Nothing acceptable: no extension, and still an upgrade. */
        {"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits\r\n", ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
         "client_no_context_takeover\r\n",
         ""},
        {"Sec-WebSocket-Extensions: permessage-deflate; ;\r\n", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char ext[256];
        struct tg_conn *c = ws_open_ext(cases[i].extra, ext, sizeof(ext));
        ck_assert_msg(strcmp(ext, cases[i].answer) == 0, "offer #%zu: answer '%s', want '%s'", i,
                      ext, cases[i].answer);
        /* Whatever was negotiated, the socket works. */
        ws_send_text(c, "hi");
        struct frame f;
        ck_assert(ws_recv(c, &f));
        ck_assert_str_eq((char *)f.payload, "hi");
        free(f.payload);
        tg_conn_close(c);
    }
    /* --deflate off: offers are ignored. */
    static const char *const off[] = {"CHAT_DEFLATE=off", NULL};
    tg_gateway_restart(off);
    char ext[256];
    struct tg_conn *c =
        ws_open_ext("Sec-WebSocket-Extensions: permessage-deflate\r\n", ext, sizeof(ext));
    ck_assert_str_eq(ext, "");
    /* ...and a frame with RSV1 is then a protocol error. */
    uint8_t z[64];
    size_t zlen = zcompress("hello", 5, z);
    ws_send_raw(c, OP_TEXT, true, 4, true, z, zlen);
    expect_protocol_error(c);
    tg_conn_close(c);
}
END_TEST

/* Compressed and plain messages in any order, each echoed as itself. */
START_TEST(test_deflate_interleaved)
{
    struct tg_conn *c = ws_open_deflate();
    char *big = chat_text(3000);
    ws_send_deflated(c, big, 3000);
    ws_send_text(c, "plain and short");
    ws_send_deflated(c, "short but compressed", 20);
    ws_send(c, OP_TEXT, true, big, 1000); /* plain, long: compressed on the way back */
    ws_send_deflated(c, "", 0);
    expect_echo(c, big, 3000);
    expect_echo(c, "plain and short", 15);
    expect_echo(c, "short but compressed", 20);
    expect_echo(c, big, 1000);
    expect_echo(c, "", 0);
    /* Exactly --max-message once inflated is still fine. */
    char *max = chat_text(TG_MAX_MESSAGE);
    ws_send_deflated(c, max, TG_MAX_MESSAGE);
    expect_echo(c, max, TG_MAX_MESSAGE);
    /* Binary messages are compressed too. */
    uint8_t z[4096 + 64];
    size_t zlen = zcompress(big, 2000, z);
    ws_send_raw(c, OP_BINARY, true, 4, true, z, zlen);
    struct frame f;
    ck_assert(ws_recv(c, &f));
    ck_assert_int_eq(f.opcode, OP_BINARY);
    ck_assert(f.rsv1);
    free(f.payload);
    free(max);
    free(big);
    tg_conn_close(c);
}
END_TEST

/* RSV1 on the first frame only; a ping between fragments is answered. */
START_TEST(test_deflate_fragmented)
{
    struct tg_conn *c = ws_open_deflate();
    char *text = chat_text(2000);
    uint8_t z[2000 + 64];
    size_t zlen = zcompress(text, 2000, z);
    size_t a = zlen / 3, b = 2 * zlen / 3;
    ws_send_raw(c, OP_TEXT, false, 4, true, z, a);
    ws_send(c, OP_PING, true, "p", 1);
    ws_send_raw(c, OP_CONT, false, 0, true, z + a, b - a);
    ws_send_raw(c, OP_CONT, true, 0, true, z + b, zlen - b);
    struct frame f;
    ck_assert(ws_recv(c, &f));
    ck_assert_int_eq(f.opcode, OP_PONG);
    free(f.payload);
    expect_echo(c, text, 2000);
    /* RSV1 on a continuation frame is a protocol error (RFC 7692 6.1). */
    ws_send_raw(c, OP_TEXT, false, 4, true, z, a);
    ws_send_raw(c, OP_CONT, true, 4, true, z + a, zlen - a);
    expect_protocol_error(c);
    tg_conn_close(c);
    free(text);
}
END_TEST

/* A megabyte of zeros deflates to about a kilobyte: the gateway stops
 * inflating at --max-message and closes with 1009. */
START_TEST(test_deflate_zip_bomb_1009)
{
    size_t n = 1 << 20;
    char *zeros = calloc(1, n);
    uint8_t *z = malloc(n + 64);
    ck_assert(zeros && z);
    size_t zlen = zcompress(zeros, n, z);
    ck_assert_uint_lt(zlen, TG_MAX_MESSAGE); /* small on the wire */
    struct tg_conn *c = ws_open_deflate();
    int64_t t0 = tg_mono_ms();
    ws_send_raw(c, OP_TEXT, true, 4, true, z, zlen);
    expect_close(c, 1009);
    ck_assert_int_lt(tg_mono_ms() - t0, 2000);
    tg_conn_close(c);
    /* One byte over, no bomb: the same. */
    char *over = chat_text(TG_MAX_MESSAGE + 1);
    c = ws_open_deflate();
    ws_send_deflated(c, over, TG_MAX_MESSAGE + 1);
    expect_close(c, 1009);
    tg_conn_close(c);
    free(over);
    free(zeros);
    free(z);
}
END_TEST

/* Data that does not inflate, or inflates to invalid UTF-8: 1007. */
START_TEST(test_deflate_bad_data_1007)
{
    struct tg_conn *c = ws_open_deflate();
    ws_send_raw(c, OP_TEXT, true, 4, true, "\xff\xff\xff\xff", 4);
    expect_close(c, 1007);
    tg_conn_close(c);
    c = ws_open_deflate();
    ws_send_deflated(c, "abc\xff", 4);
    expect_close(c, 1007);
    tg_conn_close(c);
    /* RSV1 on a control frame: 1002. */
    c = ws_open_deflate();
    ws_send_raw(c, OP_PING, true, 4, true, "x", 1);
    expect_protocol_error(c);
    tg_conn_close(c);
}
END_TEST

/* A client's stream kept across messages, as a browser's would be without
 * client_no_context_takeover: the second message refers back into the first. */
struct client_stream {
    z_stream zs;
};

static void client_stream_init(struct client_stream *cs, int bits)
{
    memset(cs, 0, sizeof(*cs));
    ck_assert_int_eq(deflateInit2(&cs->zs, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
}

/* keep: the stream goes on from the last message (else it starts afresh). */
static void client_stream_send(struct client_stream *cs, struct tg_conn *c, const char *text,
                               bool keep)
{
    size_t len = strlen(text);
    if (!keep)
        ck_assert_int_eq(deflateReset(&cs->zs), Z_OK);
    uint8_t out[4096];
    ck_assert_uint_lt(len, sizeof(out) - 64);
    cs->zs.next_in = (Bytef *)text;
    cs->zs.avail_in = (uInt)len;
    cs->zs.next_out = out;
    cs->zs.avail_out = sizeof(out);
    ck_assert_int_eq(deflate(&cs->zs, Z_SYNC_FLUSH), Z_OK);
    size_t zlen = sizeof(out) - cs->zs.avail_out;
    ck_assert_uint_ge(zlen, 4);
    ws_send_raw(c, OP_TEXT, true, 4, true, out, zlen - 4); /* tail dropped */
}

/*
 * --deflate-client-context on: a client that does not offer
 * client_no_context_takeover may keep its window, the answer says so, and
 * the gateway keeps one inflate stream for it (a gauge counts them) from
 * its first compressed message until it closes.  Off (the default), the
 * same stream is refused with 1007 (it refers to bytes the gateway did not
 * keep).
 */
START_TEST(test_deflate_client_context)
{
    char *first = chat_text(600);
    char second[700];
    snprintf(second, sizeof(second), "again: %s", first);
    struct client_stream cs;

    /* Off: the answer asks for client_no_context_takeover. */
    struct tg_conn *c = ws_open_deflate();
    client_stream_init(&cs, 15);
    client_stream_send(&cs, c, first, true);
    expect_echo(c, first, strlen(first));
    client_stream_send(&cs, c, second, true);
    expect_close(c, 1007);
    deflateEnd(&cs.zs);
    tg_conn_close(c);

    static const char *const on[] = {"CHAT_DEFLATE_CLIENT_CONTEXT=on", NULL};
    tg_gateway_restart(on);
    static const struct {
        const char *extra;
        const char *answer;
    } cases[] = {
        {"Sec-WebSocket-Extensions: permessage-deflate\r\n",
         "permessage-deflate; server_no_context_takeover"},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10\r\n",
         "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"},
        {"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n",
         "permessage-deflate; server_no_context_takeover"},
    };
    const int bits[] = {15, 15, 10, 15};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char ext[256];
        c = ws_open_ext(cases[i].extra, ext, sizeof(ext));
        ck_assert_msg(strcmp(ext, cases[i].answer) == 0, "offer #%zu: answer '%s', want '%s'", i,
                      ext, cases[i].answer);
        bool keeps = strstr(ext, "client_no_context_takeover") == NULL;
        ck_assert_int_eq(gauge("\nchat_deflate_client_windows{"), 0);
        client_stream_init(&cs, bits[i]);
        client_stream_send(&cs, c, first, keeps);
        expect_echo(c, first, strlen(first));
        client_stream_send(&cs, c, second, keeps);
        expect_echo(c, second, strlen(second));
        ck_assert_int_eq(gauge("\nchat_deflate_client_windows{"), keeps ? 1 : 0);
        /* Plain messages in between leave the window alone. */
        ws_send_text(c, "plain");
        expect_echo(c, "plain", 5);
        client_stream_send(&cs, c, first, keeps);
        expect_echo(c, first, strlen(first));
        deflateEnd(&cs.zs);
        tg_conn_close(c);
        for (int64_t until = tg_mono_ms() + 3000;
             gauge("\nchat_deflate_client_windows{") != 0 && tg_mono_ms() < until;)
            poll(NULL, 0, 10);
        ck_assert_int_eq(gauge("\nchat_deflate_client_windows{"), 0);
    }
    /* The zip bomb is bounded the same way with a kept window. */
    c = ws_open_ext("Sec-WebSocket-Extensions: permessage-deflate\r\n", (char[256]){0}, 256);
    size_t n = 1 << 20;
    char *zeros = calloc(1, n);
    uint8_t *z = malloc(n + 64);
    ck_assert(zeros && z);
    size_t zlen = zcompress(zeros, n, z);
    ws_send_raw(c, OP_TEXT, true, 4, true, z, zlen);
    expect_close(c, 1009);
    tg_conn_close(c);
    free(zeros);
    free(z);
    free(first);
}
END_TEST

/*
 * A compressed message is small on the wire, so it passes no admission
 * while it is read; once inflated, its bytes past 64 KiB are charged to the
 * node's --large-message-rate bucket, and the connection is not read again
 * until the bucket has them.  Eight messages of 200 KiB, each sent after
 * the echo of the one before: the first seven owe 7 x 136 KiB; the bucket
 * starts with one --max-message (256 KiB) and grants whenever it is above
 * zero (so one message's worth of debt is never waited for), which leaves
 * (952 - 256 - 136) KiB at 512 KiB/s, 1.1 s, before the eighth may be read;
 * without the charge all eight take a few milliseconds.
 */
START_TEST(test_deflate_inflated_bytes_admitted)
{
    static const char *const env[] = {"CHAT_MAX_MESSAGE=262144", "CHAT_LARGE_MESSAGE_RATE=524288",
                                      NULL};
    tg_gateway_restart(env);
    enum { N = 8, SIZE = 200 * 1024 };
    char *text = chat_text(SIZE);
    struct tg_conn *c = ws_open_deflate();
    int64_t t0 = tg_mono_ms();
    /* One at a time: what wslay has already buffered is handled before the
     * hold, so the pacing shows in what is read after each echo. */
    for (int i = 0; i < N; i++) {
        ws_send_deflated(c, text, SIZE);
        expect_echo(c, text, SIZE);
    }
    int64_t took = tg_mono_ms() - t0;
    ck_assert_msg(took >= 900, "8 compressed 200 KiB messages echoed in %lld ms", (long long)took);
    /* Paid up, the connection is read as before, and holds no slot. */
    ws_send_text(c, "after");
    expect_echo(c, "after", 5);
    tg_conn_close(c);
    free(text);
}
END_TEST

TCase *ws_deflate_tcase(void)
{
    TCase *tc = tcase_create("ws_deflate");
    tcase_set_timeout(tc, TG_WATCHDOG_SEC + 10);
    tcase_add_unchecked_fixture(tc, tg_make_tree, tg_remove_tree);
    tcase_add_checked_fixture(tc, tg_setup, tg_teardown);
    tcase_add_test(tc, test_deflate_negotiation);
    tcase_add_test(tc, test_deflate_interleaved);
    tcase_add_test(tc, test_deflate_fragmented);
    tcase_add_test(tc, test_deflate_zip_bomb_1009);
    tcase_add_test(tc, test_deflate_bad_data_1007);
    tcase_add_test(tc, test_deflate_client_context);
    tcase_add_test(tc, test_deflate_inflated_bytes_admitted);
    return tc;
}
