#ifndef CHAT_FUZZ_GW_HARNESS_H
#define CHAT_FUZZ_GW_HARNESS_H

/*
 * The gateway under fuzz_http and fuzz_ws: one client's TCP stream fed into
 * a real gw_conn, with the modules wired as gateway/main.c wires them.
 * Header-only (static functions), like fuzz.h.
 *
 * Per input: a fresh event base, metrics, store, router, presence and a
 * real gw_bus pointed at redis://127.0.0.1:1 (nothing listens there, so the
 * bus never connects and every command fails at once: routes that need
 * Redis answer 503); a gw_conns set with one connection made by
 * gw_conn_new on one end of a socketpair (with a fake peer address
 * 127.0.0.1:40000).  The harness is the client on the other end: it writes
 * the input in chunks whose sizes come from the input's header, runs the
 * event loop with EVLOOP_NONBLOCK after each write (no sleeps, no timers
 * waited for), reads everything the server sends, and finally half-closes,
 * tears everything down in main.c's order and checks the output.
 *
 * Input header (GWH_HEADER bytes, then the stream):
 *   byte 0  flags: GWH_F_*
 *   byte 1-3  chunk sizes, used in turn: b & 0x7f + 1 bytes, times 64 when
 *             b & 0x80 (1..128 or 64..8192)
 *   byte 4    fuzz_ws with GWH_F_DEFLATE only: the permessage-deflate offer
 *             and configuration (fuzz_ws.c)
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>
#include <zlib.h>

#include "admit.h"
#include "bus.h"
#include "config.h"
#include "conn.h"
#include "deflate.h"
#include "gateway.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "penalty.h"
#include "presence.h"
#include "protocol.h"
#include "router.h"
#include "session.h"
#include "store.h"
#include "token.h"
#include "ws.h"
#include "wshandshake.h"

#include "fuzz.h"

#define GWH_HEADER 4

/* Half-close the client side right after the last byte, without waiting for
 * the answers (they may then be lost: a client FIN ends the connection). */
#define GWH_F_EARLY_EOF 0x01
/* Bits 1-2: how many of the timer ticks to run (gw_conns_tick with a clock
 * moved past: the header timeout, the ping interval, the idle timeout, the
 * close grace); 3 runs all four. */
#define GWH_F_TICKS_SHIFT 1
/* gw_conns_drain at the end (the server shutting down). */
#define GWH_F_DRAIN 0x08
/* ctx->draining from the start (healthz 503, Connection: close, no upgrade). */
#define GWH_F_DRAINING 0x10
/* fuzz_ws: the upgrade request and the frames as one stream, chunked together. */
#define GWH_F_ONE_STREAM 0x20
/* fuzz_ws: /ws with a valid token (chat session) instead of /echo. */
#define GWH_F_SESSION 0x40
/* fuzz_ws: the upgrade offers permessage-deflate, under a configuration with
 * --deflate on; one more header byte says how (fuzz_ws.c). */
#define GWH_F_DEFLATE 0x80

#define GWH_SECRET "fuzz-gateway-hs256-secret-0123456789abcdef"
#define GWH_PING_SEC 20
#define GWH_IDLE_SEC 40
#define GWH_HEADER_SEC 10
#define GWH_MAX_MESSAGE 4096
#define GWH_OUT_MAX (64u * 1024 * 1024)

extern char **environ;

/* memmem, which strict C11 does not declare. */
static inline const void *gwh_memmem(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
    const uint8_t *h = hay;
    if (nlen == 0)
        return hay;
    for (size_t i = 0; i + nlen <= hlen; i++) {
        const uint8_t *p = memchr(h + i, *(const uint8_t *)needle, hlen - i - nlen + 1);
        if (!p)
            return NULL;
        i = (size_t)(p - h);
        if (memcmp(p, needle, nlen) == 0)
            return p;
    }
    return NULL;
}

/* ---- process-wide fixtures (LLVMFuzzerInitialize) ---- */

/* The variants of the deflate configuration, by these bits. */
#define GWH_DEFLATE_CLIENT_CONTEXT 1 /* --deflate-client-context on */
#define GWH_DEFLATE_MIN_0 2          /* --deflate-min 0 (else its default, 128) */
#define GWH_DEFLATE_CONFIGS 4

struct gwh_fixture {
    struct chat_config cfg;
    struct chat_config cfg_deflate[GWH_DEFLATE_CONFIGS]; /* cfg with --deflate on */
    struct chat_token_verifier *verifier;
    char *token; /* valid for an hour, for GWH_USER_ID */
    char dir[512];
    char web[600];
};

static struct gwh_fixture gwh;

#define GWH_USER_ID "fuzzuser01"
#define GWH_USER_NAME "fuzzer"
/* Written outside the static directory: no response may ever contain it. */
#define GWH_OUTSIDE "OUTSIDE-THE-STATIC-ROOT-5b1e0c"

static const char *const gwh_web_files[][2] = {
    {"index.html", "<!doctype html><title>chat</title><script src=\"app.js\"></script>\n"},
    {"app.js", "console.log('fuzz');\n"},
    {"style.css", "body{margin:0}\n"},
    {"empty.json", ""},
    {"sub/index.html", "<p>sub</p>\n"},
    {"sub/a b.txt", "a file with a space\n"},
    {".hidden", "hidden\n"},
};

static inline void gwh_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f != NULL);
    fputs(text, f);
    FUZZ_CHECK(fclose(f) == 0);
}

static inline void gwh_remove_fixture(void)
{
    char path[1024];
    for (size_t i = 0; i < sizeof(gwh_web_files) / sizeof(gwh_web_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", gwh.web, gwh_web_files[i][0]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/sub", gwh.web);
    rmdir(path);
    rmdir(gwh.web);
    snprintf(path, sizeof(path), "%s/outside.txt", gwh.dir);
    unlink(path);
    rmdir(gwh.dir);
}

static inline void gwh_clear_env(void)
{
    /* unsetenv shifts environ: restart the scan after each removal */
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "CHAT_", 5) == 0) {
                char name[256];
                size_t n = strcspn(*e, "=");
                if (n >= sizeof(name))
                    n = sizeof(name) - 1;
                memcpy(name, *e, n);
                name[n] = '\0';
                unsetenv(name);
                again = true;
                break;
            }
        }
    }
}

/* The configuration every gateway target runs under, plus the arguments in
 * extra (NULL-terminated; NULL for none).  --deflate is off unless extra
 * turns it on: fuzz_http and plain fuzz_ws never negotiate it. */
static inline void gwh_load_config(struct chat_config *cfg, const char *const *extra)
{
    char ping[16], idle[16], header[16], maxmsg[16];
    snprintf(ping, sizeof(ping), "%d", GWH_PING_SEC);
    snprintf(idle, sizeof(idle), "%d", GWH_IDLE_SEC);
    snprintf(header, sizeof(header), "%d", GWH_HEADER_SEC);
    snprintf(maxmsg, sizeof(maxmsg), "%d", GWH_MAX_MESSAGE);
    const char *argv[40] = {"chat-gateway",
                            "--jwt-secret",
                            GWH_SECRET,
                            "--static-dir",
                            gwh.web,
                            "--echo",
                            "--redis",
                            "redis://127.0.0.1:1",
                            "--log-level",
                            "error",
                            "--node-id",
                            "fuzz-node",
                            "--max-message",
                            maxmsg,
                            "--ping-interval",
                            ping,
                            "--idle-timeout",
                            idle,
                            "--header-timeout",
                            header,
                            "--deflate",
                            "off",
                            NULL};
    int argc = 0;
    while (argv[argc])
        argc++;
    for (size_t i = 0; extra && extra[i]; i++) {
        FUZZ_CHECK(argc + 1 < (int)(sizeof(argv) / sizeof(argv[0])));
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    char err[512];
    int rc = chat_config_load(cfg, argc, (char **)argv, stdout, err, sizeof(err));
    if (rc != CHAT_CONFIG_OK)
        fprintf(stderr, "fuzz: config refused: %s\n", err);
    FUZZ_CHECK(rc == CHAT_CONFIG_OK);
}

/* Config, verifier, token and the static directory; once per process. */
static inline void gwh_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    gwh_clear_env();
    const char *tmp = getenv("TMPDIR");
    snprintf(gwh.dir, sizeof(gwh.dir), "%s/chatgw-fuzz-gw-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(gwh.dir) != NULL);
    atexit(gwh_remove_fixture);
    snprintf(gwh.web, sizeof(gwh.web), "%s/web", gwh.dir);
    FUZZ_CHECK(mkdir(gwh.web, 0700) == 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/sub", gwh.web);
    FUZZ_CHECK(mkdir(path, 0700) == 0);
    for (size_t i = 0; i < sizeof(gwh_web_files) / sizeof(gwh_web_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", gwh.web, gwh_web_files[i][0]);
        gwh_write_file(path, gwh_web_files[i][1]);
    }
    snprintf(path, sizeof(path), "%s/outside.txt", gwh.dir);
    gwh_write_file(path, GWH_OUTSIDE "\n");

    gwh_load_config(&gwh.cfg, NULL);
    FUZZ_CHECK(gwh.cfg.echo && gwh.cfg.header_timeout == GWH_HEADER_SEC && !gwh.cfg.deflate);
    for (unsigned v = 0; v < GWH_DEFLATE_CONFIGS; v++) {
        const char *extra[] = {"--deflate",
                               "on",
                               "--deflate-client-context",
                               (v & GWH_DEFLATE_CLIENT_CONTEXT) ? "on" : "off",
                               (v & GWH_DEFLATE_MIN_0) ? "--deflate-min" : NULL,
                               "0",
                               NULL};
        gwh_load_config(&gwh.cfg_deflate[v], extra);
        FUZZ_CHECK(gwh.cfg_deflate[v].deflate &&
                   gwh.cfg_deflate[v].deflate_client_context ==
                       ((v & GWH_DEFLATE_CLIENT_CONTEXT) != 0) &&
                   gwh.cfg_deflate[v].deflate_min == ((v & GWH_DEFLATE_MIN_0) ? 0 : 128));
    }
    char why[256];
    FUZZ_CHECK(chat_config_token_verifier(&gwh.cfg, &gwh.verifier, why, sizeof(why)) == 0);
    chat_log_set_level(gwh.cfg.log_level);

    struct chat_identity who;
    memset(&who, 0, sizeof(who));
    snprintf(who.id, sizeof(who.id), "%s", GWH_USER_ID);
    snprintf(who.name, sizeof(who.name), "%s", GWH_USER_NAME);
    gwh.token = chat_token_issue(GWH_SECRET, strlen(GWH_SECRET), &who, gw_now_ms() / 1000, 3600);
    FUZZ_CHECK(gwh.token != NULL);
}

/* ---- one run: the gateway's modules and one connection ---- */

struct gwh_run {
    struct gw_ctx ctx;
    struct gw_conns *set;
    int peer;       /* the client's end of the socketpair */
    bool peer_eof;  /* the server's FIN (or a reset) arrived */
    bool peer_shut; /* the client half-closed */
    bool broken;    /* writing failed: the server's end is gone */
    uint8_t *out;   /* everything the server sent */
    size_t out_len, out_cap;
};

static inline void gwh_on_bus_message(const char *channel, size_t channel_len, const char *payload,
                                      size_t len, void *arg)
{
    struct gwh_run *r = arg;
    gw_router_on_message(r->ctx.router, channel, channel_len, payload, len);
}

static inline void gwh_on_bus_state(bool up, void *arg)
{
    struct gwh_run *r = arg;
    if (!up)
        return;
    gw_store_ensure_default_rooms(r->ctx.store);
    gw_presence_refresh_now(r->ctx.presence);
}

static inline void gwh_on_bus_subscribed(const char *channel, void *arg)
{
    struct gwh_run *r = arg;
    gw_router_on_subscribed(r->ctx.router, channel);
}

static const struct gw_router_ops gwh_router_ops = {
    .deliver = gw_session_deliver,
    .close = gw_session_close,
};

/* Wires the modules as main.c's wire() does (no listener: the connection is
 * made here) and opens the connection.  cfg: gwh.cfg or one of
 * gwh.cfg_deflate. */
static inline void gwh_start(struct gwh_run *r, const struct chat_config *cfg,
                             gw_conn_request_cb on_request, bool draining)
{
    memset(r, 0, sizeof(*r));
    struct gw_ctx *ctx = &r->ctx;
    ctx->cfg = cfg;
    ctx->verifier = gwh.verifier;
    ctx->base = event_base_new();
    ctx->metrics = gw_metrics_new();
    ctx->deflate = cfg->deflate ? gw_deflate_new() : NULL;
    FUZZ_CHECK(ctx->base && ctx->metrics && (!cfg->deflate || ctx->deflate));
    ctx->admit = gw_admit_new_for_node(ctx);
    ctx->penalty = gw_penalty_new(1024);
    FUZZ_CHECK(ctx->admit && ctx->penalty);
    ctx->store = gw_store_new(ctx);
    ctx->router = gw_router_new(ctx, &gwh_router_ops);
    ctx->presence = gw_presence_new(ctx);
    FUZZ_CHECK(ctx->store && ctx->router && ctx->presence);
    ctx->bus = gw_bus_new(ctx, gwh_on_bus_message, gwh_on_bus_state, gwh_on_bus_subscribed, r);
    FUZZ_CHECK(ctx->bus != NULL);
    char all[GW_KEY_MAX];
    FUZZ_CHECK(gw_key_all(all, sizeof(all), gwh.cfg.prefix));
    gw_bus_subscribe(ctx->bus, all, NULL, NULL);
    ctx->draining = draining;
    r->set = gw_conns_new(ctx, on_request, 0);
    FUZZ_CHECK(r->set != NULL);

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FUZZ_CHECK(evutil_make_socket_nonblocking(sv[0]) == 0);
    FUZZ_CHECK(evutil_make_socket_nonblocking(sv[1]) == 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(40000);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FUZZ_CHECK(gw_conn_new(r->set, sv[0], (const struct sockaddr *)&sin) != NULL);
    r->peer = sv[1];
}

/* Reads what the server sent; returns how many bytes. */
static inline size_t gwh_read_peer(struct gwh_run *r)
{
    size_t total = 0;
    while (!r->peer_eof) {
        if (r->out_cap - r->out_len < 4096) {
            FUZZ_CHECK(r->out_cap < GWH_OUT_MAX); /* the server does not flood */
            size_t cap = r->out_cap ? r->out_cap * 2 : 16384;
            uint8_t *p = realloc(r->out, cap);
            FUZZ_CHECK(p != NULL);
            r->out = p;
            r->out_cap = cap;
        }
        ssize_t n = recv(r->peer, r->out + r->out_len, r->out_cap - r->out_len, 0);
        if (n > 0) {
            r->out_len += (size_t)n;
            total += (size_t)n;
        } else if (n == 0) {
            r->peer_eof = true;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            r->peer_eof = true; /* reset */
        }
    }
    return total;
}

/* One turn of the event loop, then the client reads. */
static inline size_t gwh_round(struct gwh_run *r)
{
    event_base_loop(r->ctx.base, EVLOOP_NONBLOCK);
    return gwh_read_peer(r);
}

/* Turns until nothing moves for a few rounds (bounded). */
static inline void gwh_settle(struct gwh_run *r)
{
    int idle = 0;
    for (int i = 0; i < 20000 && idle < 4; i++)
        idle = gwh_round(r) ? 0 : idle + 1;
}

static inline size_t gwh_chunk_size(uint8_t b)
{
    size_t n = (size_t)(b & 0x7f) + 1;
    return (b & 0x80) ? n * 64 : n;
}

/* Writes data as the client, in chunks (sizes from chunks[3], in turn), one
 * event-loop turn after each. */
static inline void gwh_feed(struct gwh_run *r, const uint8_t *data, size_t len,
                            const uint8_t chunks[3])
{
    size_t pos = 0;
    int stuck = 0;
    unsigned ci = 0;
    while (pos < len && !r->broken && !r->peer_shut) {
        size_t want = gwh_chunk_size(chunks[ci++ % 3]);
        if (want > len - pos)
            want = len - pos;
        ssize_t n = send(r->peer, data + pos, want, MSG_NOSIGNAL);
        if (n > 0) {
            pos += (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            r->broken = true; /* EPIPE, ECONNRESET: the server closed its end */
            break;
        }
        size_t moved = gwh_round(r);
        if (n <= 0 && moved == 0) {
            if (++stuck > 64)
                break; /* the server stopped reading and sends nothing */
        } else {
            stuck = 0;
        }
    }
}

static inline void gwh_shut(struct gwh_run *r)
{
    if (r->peer_shut)
        return;
    r->peer_shut = true;
    shutdown(r->peer, SHUT_WR);
}

/* After the input: early EOF, drain, ticks (per flags), then the client's FIN
 * and a last settle. */
static inline void gwh_finish(struct gwh_run *r, uint8_t flags)
{
    if (flags & GWH_F_EARLY_EOF)
        gwh_shut(r);
    gwh_settle(r);
    if (flags & GWH_F_DRAIN) {
        r->ctx.draining = true;
        gw_conns_drain(r->set);
        gwh_settle(r);
    }
    int ticks = (flags >> GWH_F_TICKS_SHIFT) & 3;
    if (ticks == 3)
        ticks = 4;
    const int64_t at[4] = {
        GWH_HEADER_SEC * 1000 + 1,
        GWH_PING_SEC * 1000 + 1,
        GWH_IDLE_SEC * 1000 + 1,
        GWH_IDLE_SEC * 1000 + 1 + GW_WS_CLOSE_GRACE_MS + 1,
    };
    for (int i = 0; i < ticks; i++) {
        gw_conns_tick(r->set, gw_mono_ms() + at[i]);
        gwh_settle(r);
    }
    gwh_shut(r);
    gwh_settle(r);
}

/* main.c's teardown order: the bus closes first, the connections go, then the
 * modules, the bus itself, the base. */
static inline void gwh_stop(struct gwh_run *r)
{
    struct gw_ctx *ctx = &r->ctx;
    gw_bus_close(ctx->bus);
    gw_conns_free(r->set);
    gwh_read_peer(r);
    close(r->peer);
    gw_presence_free(ctx->presence);
    gw_router_free(ctx->router);
    gw_bus_free(ctx->bus);
    gw_store_free(ctx->store);
    gw_metrics_free(ctx->metrics);
    gw_admit_free(ctx->admit);
    gw_penalty_free(ctx->penalty);
    gw_deflate_free(ctx->deflate);
    event_base_free(ctx->base);
}

static inline void gwh_free_output(struct gwh_run *r)
{
    /* GWH_DUMP=1: what the server sent goes to stderr (to see what a seed does) */
    const char *dump = getenv("GWH_DUMP");
    if (dump && *dump == '1' && r->out_len) {
        fwrite(r->out, 1, r->out_len, stderr);
        fputs("\n--- end of output ---\n", stderr);
    }
    free(r->out);
    r->out = NULL;
    r->out_len = r->out_cap = 0;
}

/* Nothing secret leaves the server: not the JWT key, not a file outside the
 * static directory (in what the server says itself: an echo may repeat
 * anything). */
static inline void gwh_check_no_secrets(const uint8_t *out, size_t len)
{
    if (len == 0)
        return;
    FUZZ_CHECK(gwh_memmem(out, len, GWH_SECRET, strlen(GWH_SECRET)) == NULL);
    FUZZ_CHECK(gwh_memmem(out, len, GWH_OUTSIDE, strlen(GWH_OUTSIDE)) == NULL);
}

/* The value of header `name` in head[0..len) (lines after the status line),
 * copied to out; false when absent. */
static inline bool gwh_find_header(const char *head, size_t len, const char *name, char *out,
                                   size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', len);
    const char *end = head + len;
    while (p && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\r', (size_t)(end - line));
        if (!eol)
            return false;
        if ((size_t)(eol - line) > nlen + 2 && strncasecmp(line, name, nlen) == 0 &&
            line[nlen] == ':' && line[nlen + 1] == ' ') {
            size_t vlen = (size_t)(eol - line) - nlen - 2;
            if (vlen >= outlen)
                vlen = outlen - 1;
            memcpy(out, line + nlen + 2, vlen);
            out[vlen] = '\0';
            return true;
        }
        p = memchr(line, '\n', (size_t)(end - line));
    }
    return false;
}

/* ---- permessage-deflate, inflated by the harness (RFC 7692 7.2.2) ---- */

/*
 * A reference inflater written from the RFC, not from common/wsdeflate.c:
 * one raw zlib stream, reset before every message unless the sender keeps
 * its window (context takeover).  A message ends at a final block (BFINAL,
 * which RFC 7692 7.2.3.4 allows as the flush); the sender's next message is
 * then a new DEFLATE stream, but with context takeover its back references
 * still reach into the window of the messages before, so the window is
 * carried over into the new stream.
 */
struct gwh_inflater {
    z_stream zs;
    bool keep;  /* context takeover: the window lives on between messages */
    bool ended; /* the last message ended with a final block */
};

#define GWH_INFLATE_DATA (-1)    /* not a valid DEFLATE stream */
#define GWH_INFLATE_TOO_BIG (-2) /* inflates past max */

/* bits: the sender's window, 8..15; zlib cannot inflate with a window of
 * 2^8 and its deflate makes 2^9 of it, so 8 reads as 9 (as the gateway does). */
static inline void gwh_inflater_init(struct gwh_inflater *f, unsigned bits, bool keep)
{
    memset(f, 0, sizeof(*f));
    f->keep = keep;
    FUZZ_CHECK(bits >= 8 && bits <= 15);
    FUZZ_CHECK(inflateInit2(&f->zs, -(int)(bits < 9 ? 9 : bits)) == Z_OK);
}

static inline void gwh_inflater_end(struct gwh_inflater *f)
{
    inflateEnd(&f->zs);
}

/*
 * Inflates one message's payload (its frames' payloads, concatenated)
 * followed by 00 00 ff ff.  0 with *out malloc'd (*outlen bytes, never more
 * than max) and *final telling whether a final block ended it, or
 * GWH_INFLATE_DATA / GWH_INFLATE_TOO_BIG.
 */
static inline int gwh_inflate(struct gwh_inflater *f, const uint8_t *in, size_t len, size_t max,
                              uint8_t **out, size_t *outlen, bool *final)
{
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (!f->keep) {
        FUZZ_CHECK(inflateReset(&f->zs) == Z_OK);
    } else if (f->ended) {
        uint8_t window[32768];
        uInt wlen = sizeof(window);
        FUZZ_CHECK(inflateGetDictionary(&f->zs, window, &wlen) == Z_OK);
        FUZZ_CHECK(inflateReset(&f->zs) == Z_OK);
        FUZZ_CHECK(inflateSetDictionary(&f->zs, window, wlen) == Z_OK);
    }
    f->ended = false;
    uint8_t *buf = malloc(max + 1);
    FUZZ_CHECK(buf != NULL);
    size_t used = 0;
    int rc = 0;
    for (int part = 0; part < 2 && rc == 0 && !f->ended; part++) {
        f->zs.next_in = (Bytef *)(part == 0 ? in : tail);
        f->zs.avail_in = (uInt)(part == 0 ? len : sizeof(tail));
        for (;;) {
            f->zs.next_out = buf + used;
            f->zs.avail_out = (uInt)(max + 1 - used);
            int z = inflate(&f->zs, Z_SYNC_FLUSH);
            used = max + 1 - f->zs.avail_out;
            if (used > max) {
                rc = GWH_INFLATE_TOO_BIG;
                break;
            }
            if (z == Z_STREAM_END) {
                f->ended = true; /* what follows the final block is not read */
                break;
            }
            if (z != Z_OK && z != Z_BUF_ERROR) {
                rc = GWH_INFLATE_DATA;
                break;
            }
            if (f->zs.avail_in == 0)
                break;
        }
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = used;
    *final = f->ended;
    return 0;
}

/* ---- the server's WebSocket frames (RFC 6455 section 5) ---- */

struct gwh_frames_cb {
    /* a complete data message (text 1, binary 2), inflated when it was compressed */
    void (*data)(int opcode, const uint8_t *p, size_t len, void *arg);
    void (*pong)(const uint8_t *p, size_t len, void *arg);
    void *arg;
    /* permessage-deflate was negotiated: the server's window bits (8..15);
     * 0 when it was not.  The server never keeps its window
     * (server_no_context_takeover) and compresses only messages of at least
     * deflate_min bytes. */
    unsigned deflate_bits;
    size_t deflate_min;
};

static inline bool gwh_close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/*
 * p[0..len) must be a sequence of whole, valid server frames: FIN, no RSV
 * bit but RSV1 on a compressed data message (with deflate negotiated), a
 * defined opcode, no mask, the minimal length encoding, control frames of at
 * most 125 bytes, text in UTF-8 (a compressed message once inflated: on a
 * fresh stream with the server's window, ending in a sync flush, smaller
 * than what it inflates to and not under deflate_min), a close frame empty
 * or with a valid code and a UTF-8 reason, and nothing after the close
 * frame.  The gateway never fragments.  Returns the close code (0 for an
 * empty close frame) or -1 when there is no close frame.
 */
static inline int gwh_check_frames(const uint8_t *p, size_t len, const struct gwh_frames_cb *cb)
{
    size_t pos = 0;
    int close_code = -1;
    struct gwh_inflater inf;
    if (cb && cb->deflate_bits)
        gwh_inflater_init(&inf, cb->deflate_bits, false);
    while (pos < len) {
        FUZZ_CHECK(close_code == -1); /* nothing after a close frame */
        FUZZ_CHECK(len - pos >= 2);
        uint8_t b0 = p[pos], b1 = p[pos + 1];
        pos += 2;
        int opcode = b0 & 0x0f;
        bool compressed = (b0 & 0x40) != 0;
        FUZZ_CHECK((b0 & 0x30) == 0); /* RSV2-3 */
        /* RSV1: a compressed data message */
        FUZZ_CHECK(!compressed || (cb && cb->deflate_bits && (opcode == 1 || opcode == 2)));
        FUZZ_CHECK((b0 & 0x80) != 0); /* FIN: never fragmented */
        FUZZ_CHECK((b1 & 0x80) == 0); /* servers do not mask */
        FUZZ_CHECK(opcode == 1 || opcode == 2 || opcode == 8 || opcode == 9 || opcode == 10);
        uint64_t n = b1 & 0x7f;
        if (n == 126) {
            FUZZ_CHECK(len - pos >= 2);
            n = ((uint64_t)p[pos] << 8) | p[pos + 1];
            pos += 2;
            FUZZ_CHECK(n >= 126);
        } else if (n == 127) {
            FUZZ_CHECK(len - pos >= 8);
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | p[pos + i];
            pos += 8;
            FUZZ_CHECK(n > 65535 && (n >> 63) == 0);
        }
        FUZZ_CHECK(n <= len - pos); /* whole */
        const uint8_t *payload = p + pos;
        pos += (size_t)n;
        if (opcode >= 8)
            FUZZ_CHECK(n <= 125);
        uint8_t *inflated = NULL;
        if (compressed) {
            size_t ilen = 0;
            bool final = false;
            FUZZ_CHECK(gwh_inflate(&inf, payload, (size_t)n, GW_DEFLATE_MAX_MESSAGE, &inflated,
                                   &ilen, &final) == 0);
            FUZZ_CHECK(!final); /* a sync flush, never a final block */
            FUZZ_CHECK(n < ilen && ilen >= cb->deflate_min);
            payload = inflated;
            n = ilen;
        }
        switch (opcode) {
        case 1:
            FUZZ_CHECK(fuzz_ref_utf8(payload, (size_t)n, NULL, NULL) >= 0);
            /* fall through */
        case 2:
            if (cb && cb->data)
                cb->data(opcode, payload, (size_t)n, cb->arg);
            break;
        case 8:
            FUZZ_CHECK(n != 1);
            if (n == 0) {
                close_code = 0;
            } else {
                unsigned code = ((unsigned)payload[0] << 8) | payload[1];
                FUZZ_CHECK(gwh_close_code_ok(code));
                FUZZ_CHECK(fuzz_ref_utf8(payload + 2, (size_t)n - 2, NULL, NULL) >= 0);
                close_code = (int)code;
            }
            break;
        case 10:
            if (cb && cb->pong)
                cb->pong(payload, (size_t)n, cb->arg);
            break;
        default: /* ping */
            break;
        }
        free(inflated);
    }
    if (cb && cb->deflate_bits)
        gwh_inflater_end(&inf);
    return close_code;
}

/* ---- the client's frames, read leniently (a reference, not a validator) ---- */

struct gwh_msg {
    int opcode; /* 1, 2; 9 for a ping */
    uint8_t *data;
    size_t len;
};

struct gwh_msgs {
    struct gwh_msg *v;
    size_t n, cap;
};

static inline void gwh_msgs_push(struct gwh_msgs *m, int opcode, const uint8_t *data, size_t len)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 16;
        m->v = realloc(m->v, m->cap * sizeof(*m->v));
        FUZZ_CHECK(m->v != NULL);
    }
    m->v[m->n].opcode = opcode;
    m->v[m->n].data = (uint8_t *)fuzz_memdup(data, len);
    m->v[m->n].len = len;
    m->n++;
}

static inline void gwh_msgs_free(struct gwh_msgs *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].data);
    free(m->v);
    memset(m, 0, sizeof(*m));
}

/*
 * The complete data messages and the pings of the client stream, in order,
 * up to the first close frame, unknown opcode or incomplete frame.  Lenient
 * on purpose (mask optional, RSV ignored, a new message drops an unfinished
 * one): whatever wslay accepts this reads the same way, so the server's echo
 * must be a prefix of `data` and its pongs a prefix of `pings`.
 *
 * inf: permessage-deflate was negotiated (NULL: it was not).  A message
 * whose first frame has RSV1 is inflated with it (up to max bytes, text in
 * UTF-8), and `data` holds what it inflates to; one that does not inflate
 * ends the list there, as the server closes.  *fail_code (when not NULL)
 * says how: 1007 (not deflate data, or not UTF-8) or 1009 (over max), but
 * only when every frame of the stream is one the gateway accepts as it is
 * (masked, RSV1 only on the first frame of a data message, defined opcodes,
 * minimal lengths, whole control frames of at most 125 bytes, fragments in
 * order, messages of at most max bytes on the wire, plain text in UTF-8),
 * none is a close and no frame or message is cut short: so the gateway
 * reached it, and nothing after it (read in the same turn) made a close of
 * its own first; 0 otherwise.
 */
static inline void gwh_client_messages(const uint8_t *p, size_t len, struct gwh_msgs *data,
                                       struct gwh_msgs *pings, struct gwh_inflater *inf, size_t max,
                                       int *fail_code)
{
    size_t pos = 0;
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    int msg_op = 0;
    bool msg_compressed = false;
    bool strict = true;      /* every frame so far one the gateway accepts */
    bool data_ended = false; /* a compressed message did not inflate */
    int failed = 0;          /* ...and the close code it earns */
    while (len - pos >= 2) {
        uint8_t b0 = p[pos], b1 = p[pos + 1];
        size_t at = pos + 2;
        uint64_t n = b1 & 0x7f;
        if (n == 126) {
            if (len - at < 2)
                break;
            n = ((uint64_t)p[at] << 8) | p[at + 1];
            at += 2;
            strict = strict && n >= 126;
        } else if (n == 127) {
            if (len - at < 8)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = (n << 8) | p[at + i];
            at += 8;
            strict = strict && n > 65535 && (n >> 63) == 0;
        }
        strict = strict && (b1 & 0x80);
        const uint8_t *mask = NULL;
        if (b1 & 0x80) {
            if (len - at < 4)
                break;
            mask = p + at;
            at += 4;
        }
        if (n > len - at)
            break;
        uint8_t *payload = (uint8_t *)fuzz_memdup(p + at, (size_t)n);
        for (size_t i = 0; mask && i < n; i++)
            payload[i] ^= mask[i & 3];
        pos = at + (size_t)n;
        int opcode = b0 & 0x0f;
        bool fin = (b0 & 0x80) != 0;
        bool stop = false;
        unsigned rsv = b0 & 0x70;
        if (rsv && !(inf && rsv == 0x40 && (opcode == 1 || opcode == 2)))
            strict = false;
        if (opcode >= 8 && (!fin || n > 125))
            strict = false;
        if ((opcode == 0 && !msg) || ((opcode == 1 || opcode == 2) && msg))
            strict = false; /* a continuation alone, a message inside another */
        if (opcode == 1 || opcode == 2) {
            free(msg);
            msg = payload;
            msg_len = (size_t)n;
            msg_op = opcode;
            msg_compressed = (b0 & 0x40) != 0;
            payload = NULL;
        } else if (opcode == 0) {
            if (msg) {
                uint8_t *grown = realloc(msg, msg_len + (size_t)n + 1);
                FUZZ_CHECK(grown != NULL);
                memcpy(grown + msg_len, payload, (size_t)n);
                msg = grown;
                msg_len += (size_t)n;
            }
        } else if (opcode == 9) {
            gwh_msgs_push(pings, 9, payload, (size_t)n);
        } else if (opcode != 10) {
            stop = true; /* close, or an opcode wslay refuses */
        }
        free(payload);
        if (stop) {
            /* the peer's close, or wslay's 1002, may come first */
            strict = false;
            break;
        }
        if (msg && msg_len > max)
            strict = false; /* 1009 before it is read */
        if (fin && msg && (opcode <= 2) && !msg_compressed && msg_op == 1 &&
            fuzz_ref_utf8(msg, msg_len, NULL, NULL) < 0)
            strict = false; /* 1007 from wslay, even after a message that failed */
        if (fin && msg && (opcode <= 2) && !data_ended) {
            if (inf && msg_compressed) {
                uint8_t *plain = NULL;
                size_t plain_len = 0;
                bool final;
                int rc = gwh_inflate(inf, msg, msg_len, max, &plain, &plain_len, &final);
                if (rc != 0 || (msg_op == 1 && fuzz_ref_utf8(plain, plain_len, NULL, NULL) < 0)) {
                    failed = rc == GWH_INFLATE_TOO_BIG ? 1009 : 1007;
                    /* no message comes back after it, but the pings
                     * already read with it may still be answered */
                    data_ended = true;
                    free(plain);
                    plain = NULL;
                }
                free(msg);
                msg = plain;
                msg_len = plain_len;
            }
        }
        if (fin && msg && (opcode <= 2)) {
            if (!data_ended)
                gwh_msgs_push(data, msg_op, msg, msg_len);
            free(msg);
            msg = NULL;
            msg_len = 0;
        }
    }
    if (msg || pos < len)
        strict = false; /* a message or frame cut short: wslay may refuse what it has */
    free(msg);
    if (fail_code)
        *fail_code = strict ? failed : 0;
}

#endif
