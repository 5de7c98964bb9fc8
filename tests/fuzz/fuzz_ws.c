/*
 * The WebSocket frame path: a fixed, valid upgrade request, then the input as
 * raw client bytes (masked frames or garbage) on the upgraded connection,
 * through wslay (ws.c) into the /echo handler or, with GWH_F_SESSION, into a
 * chat session (session.c).  See gw_harness.h for the input header and the
 * wiring.
 *
 * /echo goes through gw_http_dispatch.  /ws cannot: its route answers 503
 * while Redis is down, before the 101.  In session mode the harness's request
 * callback therefore does what that route does past its Redis check (the
 * handshake check, the token from ?token= verified with the configured
 * verifier, the 101, gw_session_start with gw_handlers_dispatch); the
 * session's start then meets Redis down (nickname claim, user channel) and
 * ends with an error and close 1011.
 *
 * Checks beyond "no sanitizer report, no leak": the output is the 101 with
 * the right accept value followed by valid server frames only (see
 * gwh_check_frames: RSV 0, defined opcodes, unmasked, minimal lengths, UTF-8
 * text, close codes valid on the wire, nothing after the close frame).  Echo:
 * the messages that come back are, in order, a prefix of the complete
 * messages the client sent, and the pongs a prefix of its pings.  Session:
 * text frames only, each a JSON error, and the close (there whenever the
 * stream was not cut short) says 1011.
 *
 * With GWH_F_DEFLATE the upgrade request offers permessage-deflate (RFC
 * 7692), as the byte after the input header says (DEFLATE_*: which
 * parameters, their window bits, and which of gwh.cfg_deflate the gateway
 * runs under), and the checks read the server's answer and frames as a
 * client would: the Sec-WebSocket-Extensions answer keeps to the offer and to
 * --deflate-client-context; RSV1 only on data messages, whose payloads
 * inflate on a fresh stream with the server's window; and the echo compares
 * what the messages inflate to on both sides, the client's inflated with one
 * stream for the connection when the answer lets it keep its window, else
 * afresh per message.
 */
#include <event2/buffer.h>
#include <http_parser.h>
#include <jansson.h>

#include "gw_harness.h"
#include "handlers.h"
#include "http.h"
#include "wsdeflate.h"

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static const char echo_upgrade[] = "GET /echo HTTP/1.1\r\n"
                                   "Host: localhost:8080\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: " WS_KEY "\r\n"
                                   "Sec-WebSocket-Version: 13\r\n"
                                   "\r\n";
static char session_upgrade[4096];

/* The byte after the input header in deflate mode: the offer's parameters
 * (their window bits N = 8..15 from DEFLATE_BITS; client_max_window_bits is
 * offered without a value for 15, as browsers do), and the configuration. */
#define DEFLATE_CLIENT_NCT 0x01  /* client_no_context_takeover */
#define DEFLATE_CLIENT_BITS 0x02 /* client_max_window_bits[=N] */
#define DEFLATE_SERVER_BITS 0x04 /* server_max_window_bits=N */
#define DEFLATE_BITS_SHIFT 3     /* 3 bits: N - 8 */
#define DEFLATE_CONTEXT 0x40     /* --deflate-client-context on */
#define DEFLATE_MIN_0 0x80       /* --deflate-min 0 (else 128) */

static bool session_mode;
static int upgrades;
static const struct chat_config *run_cfg;

/* What the client offered, in deflate mode. */
struct offer {
    bool on;
    bool client_nct;
    int client_bits; /* -1: not offered, 0: offered without a value */
    int server_bits; /* -1: not offered */
};

static struct offer offer_from(uint8_t b)
{
    unsigned n = 8 + ((b >> DEFLATE_BITS_SHIFT) & 7);
    struct offer o = {.on = true, .client_nct = (b & DEFLATE_CLIENT_NCT) != 0};
    o.client_bits = !(b & DEFLATE_CLIENT_BITS) ? -1 : n == 15 ? 0 : (int)n;
    o.server_bits = (b & DEFLATE_SERVER_BITS) ? (int)n : -1;
    return o;
}

/* The upgrade request: base with the offer's Sec-WebSocket-Extensions line
 * inserted before the blank line that ends it. */
static size_t make_upgrade(char *out, size_t outlen, const char *base, const struct offer *o)
{
    size_t head = strlen(base) - 2;
    char ext[160] = "";
    if (o->on) {
        char cb[40] = "", sb[40] = "";
        if (o->client_bits == 0)
            snprintf(cb, sizeof(cb), "; client_max_window_bits");
        else if (o->client_bits > 0)
            snprintf(cb, sizeof(cb), "; client_max_window_bits=%d", o->client_bits);
        if (o->server_bits > 0)
            snprintf(sb, sizeof(sb), "; server_max_window_bits=%d", o->server_bits);
        snprintf(ext, sizeof(ext), "Sec-WebSocket-Extensions: permessage-deflate%s%s%s\r\n",
                 o->client_nct ? "; client_no_context_takeover" : "", cb, sb);
    }
    int n = snprintf(out, outlen, "%.*s%s\r\n", (int)head, base, ext);
    FUZZ_CHECK(n > 0 && (size_t)n < outlen);
    return (size_t)n;
}

static void on_request(struct gw_ctx *ctx, struct gw_conn *c, const struct gw_http_request *req)
{
    upgrades++;
    FUZZ_CHECK(upgrades == 1); /* the frames that follow are not HTTP */
    if (!session_mode) {
        gw_http_dispatch(ctx, c, req);
        return;
    }
    struct chat_ws_request wr = {
        .is_get = req->method == HTTP_GET,
        .http_major = req->http_major,
        .http_minor = req->http_minor,
        .upgrade = gw_http_header(req, "Upgrade"),
        .connection = gw_http_header(req, "Connection"),
        .version = gw_http_header(req, "Sec-WebSocket-Version"),
        .key = gw_http_header(req, "Sec-WebSocket-Key"),
    };
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    FUZZ_CHECK(chat_ws_check_request(&wr, accept) == CHAT_WS_OK);
    FUZZ_CHECK(gw_http_origin_allowed(ctx->cfg->origins, gw_http_header(req, "Origin"),
                                      gw_http_header(req, "Host")));
    char token[CHAT_TOKEN_MAX + 1];
    FUZZ_CHECK(gw_http_find_token(req, token, sizeof(token)));
    struct chat_identity who;
    memset(&who, 0, sizeof(who));
    FUZZ_CHECK(chat_token_verify_with(ctx->verifier, token, gw_now_ms() / 1000, &who) ==
               CHAT_TOKEN_OK);
    /* permessage-deflate as route_ws negotiates it (http.c) */
    struct chat_wsdeflate d;
    char answer[160] = "";
    const char *offers = gw_http_header(req, "Sec-WebSocket-Extensions");
    if (!ctx->deflate || !offers ||
        !chat_wsdeflate_negotiate(offers, ctx->cfg->deflate_client_context, &d) ||
        chat_wsdeflate_response(&d, answer, sizeof(answer)) != 0) {
        memset(&d, 0, sizeof(d));
        answer[0] = '\0';
    }
    evbuffer_add_printf(gw_conn_output(c),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                        accept, answer[0] ? "Sec-WebSocket-Extensions: " : "", answer,
                        answer[0] ? "\r\n" : "");
    unsigned flags = GW_SESSION_DEFLATE(d.server_max_window_bits);
    if (d.on && !d.client_no_context_takeover)
        flags |= GW_SESSION_DEFLATE_CLIENT(d.client_max_window_bits);
    gw_session_start(ctx, c, &who, flags, gw_handlers_dispatch); /* takes who */
}

/* ---- what came back ---- */

struct expect {
    const struct gwh_msgs *data, *pings;
    size_t ndata, npongs;
};

static void on_data(int opcode, const uint8_t *p, size_t len, void *arg)
{
    struct expect *e = arg;
    if (session_mode) {
        /* a reply of the session: one JSON object, an error before `welcome` */
        FUZZ_CHECK(opcode == 1);
        json_t *obj = json_loadb((const char *)p, len, 0, NULL);
        FUZZ_CHECK(json_is_object(obj));
        FUZZ_CHECK(json_is_string(json_object_get(obj, "type")));
        FUZZ_CHECK(strcmp(json_string_value(json_object_get(obj, "type")), "error") == 0);
        json_decref(obj);
        e->ndata++;
        return;
    }
    /* echo: the client's next complete message, unchanged */
    FUZZ_CHECK(e->ndata < e->data->n);
    const struct gwh_msg *m = &e->data->v[e->ndata++];
    FUZZ_CHECK(m->opcode == opcode && m->len == len && memcmp(m->data, p, len) == 0);
}

static void on_pong(const uint8_t *p, size_t len, void *arg)
{
    struct expect *e = arg;
    FUZZ_CHECK(e->npongs < e->pings->n);
    const struct gwh_msg *m = &e->pings->v[e->npongs++];
    FUZZ_CHECK(m->len == len && memcmp(m->data, p, len) == 0);
}

/* What the server's Sec-WebSocket-Extensions answer says (RFC 7692 7). */
struct answer {
    bool on, server_nct, client_nct;
    int server_bits, client_bits; /* -1: absent */
};

/* Parses v strictly: permessage-deflate once, then known parameters, each
 * at most once, window bits 8..15 in plain decimal. */
static struct answer parse_answer(const char *v)
{
    struct answer a = {.on = true, .server_bits = -1, .client_bits = -1};
    char buf[256];
    FUZZ_CHECK(strlen(v) < sizeof(buf));
    strcpy(buf, v);
    char *save = NULL;
    bool first = true;
    for (char *t = strtok_r(buf, ";", &save); t; t = strtok_r(NULL, ";", &save), first = false) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ')
            t[--n] = '\0';
        if (first) {
            FUZZ_CHECK(strcmp(t, "permessage-deflate") == 0);
            continue;
        }
        char *eq = strchr(t, '=');
        int bits = -1;
        if (eq) {
            *eq = '\0';
            const char *num = eq + 1;
            FUZZ_CHECK((strlen(num) == 1 && num[0] >= '8' && num[0] <= '9') ||
                       (strlen(num) == 2 && num[0] == '1' && num[1] >= '0' && num[1] <= '5'));
            bits = atoi(num);
        }
        if (strcmp(t, "server_no_context_takeover") == 0) {
            FUZZ_CHECK(!a.server_nct && !eq);
            a.server_nct = true;
        } else if (strcmp(t, "client_no_context_takeover") == 0) {
            FUZZ_CHECK(!a.client_nct && !eq);
            a.client_nct = true;
        } else if (strcmp(t, "server_max_window_bits") == 0) {
            FUZZ_CHECK(a.server_bits == -1 && eq);
            a.server_bits = bits;
        } else {
            /* in a response the client's window needs its value (7.1.2.2) */
            FUZZ_CHECK(strcmp(t, "client_max_window_bits") == 0 && a.client_bits == -1 && eq);
            a.client_bits = bits;
        }
    }
    FUZZ_CHECK(!first);
    return a;
}

/*
 * The answer keeps to the offer (RFC 7692 7.1.2: a window no larger than
 * offered, client_max_window_bits only when offered) and to what the gateway
 * promises: it never keeps its own window, and the client keeps its window
 * only under --deflate-client-context and when it did not offer to drop it,
 * in which case an offered window under 15 is answered back as binding.
 */
static void check_answer(const struct answer *a, const struct offer *o,
                         const struct chat_config *cfg)
{
    FUZZ_CHECK(a->on == o->on);
    if (!a->on)
        return;
    FUZZ_CHECK(a->server_nct);
    FUZZ_CHECK(a->client_nct == (o->client_nct || !cfg->deflate_client_context));
    /* 7.1.2.1: server_max_window_bits answered whenever offered, 15 too */
    if (o->server_bits < 0)
        FUZZ_CHECK(a->server_bits == -1);
    else
        FUZZ_CHECK(a->server_bits >= 8 && a->server_bits <= o->server_bits);
    if (o->client_bits < 0)
        FUZZ_CHECK(a->client_bits == -1);
    else if (!a->client_nct && o->client_bits > 0)
        FUZZ_CHECK(a->client_bits == o->client_bits);
    else
        FUZZ_CHECK(a->client_bits == -1);
}

static void check_output(const struct gwh_run *r, const uint8_t *frames, size_t frames_len,
                         uint8_t flags, const struct offer *o)
{
    bool cut = (flags & (GWH_F_EARLY_EOF | GWH_F_ONE_STREAM)) != 0;
    if (r->out_len == 0) {
        /* the connection ended before the 101 was written out: only when
         * the frames (or the FIN) came with the request */
        FUZZ_CHECK(cut);
        return;
    }
    const char *s = (const char *)r->out;
    const char *head_end = gwh_memmem(s, r->out_len, "\r\n\r\n", 4);
    FUZZ_CHECK(head_end != NULL);
    size_t head_len = (size_t)(head_end - s) + 4;
    FUZZ_CHECK(head_len >= 13 && memcmp(s, "HTTP/1.1 101 ", 13) == 0);
    char accept[CHAT_WS_ACCEPT_LEN + 1], got[256];
    chat_ws_accept_for_key(WS_KEY, accept);
    FUZZ_CHECK(gwh_find_header(s, head_len, "Sec-WebSocket-Accept", got, sizeof(got)));
    FUZZ_CHECK(strcmp(got, accept) == 0);
    struct answer a = {.server_bits = -1, .client_bits = -1};
    if (gwh_find_header(s, head_len, "Sec-WebSocket-Extensions", got, sizeof(got)))
        a = parse_answer(got);
    check_answer(&a, o, run_cfg);

    struct gwh_msgs data = {0}, pings = {0};
    int fail_code = 0;
    if (!session_mode) {
        /* the client keeps its window only when the answer has no
         * client_no_context_takeover; without it the server's inflate
         * window is the largest, whatever the client used */
        struct gwh_inflater inf;
        bool keep = a.on && !a.client_nct;
        if (a.on)
            gwh_inflater_init(&inf, keep && a.client_bits > 0 ? (unsigned)a.client_bits : 15, keep);
        gwh_client_messages(frames, frames_len, &data, &pings, a.on ? &inf : NULL, GWH_MAX_MESSAGE,
                            &fail_code);
        if (a.on)
            gwh_inflater_end(&inf);
    }
    struct expect e = {.data = &data, .pings = &pings};
    struct gwh_frames_cb cb = {.data = on_data, .pong = on_pong, .arg = &e};
    if (a.on) {
        cb.deflate_bits = a.server_bits > 0 ? (unsigned)a.server_bits : 15;
        cb.deflate_min = run_cfg->deflate_min;
    }
    int close_code = gwh_check_frames(r->out + head_len, r->out_len - head_len, &cb);
    /* A compressed message that does not inflate, after nothing the gateway
     * refuses: every message before it came back, then its close code.
     * Unless something else could end the connection first (an early FIN,
     * timer ticks, a drain). */
    if (fail_code && !(flags & (GWH_F_EARLY_EOF | GWH_F_DRAIN | (3 << GWH_F_TICKS_SHIFT)))) {
        FUZZ_CHECK(e.ndata == data.n);
        FUZZ_CHECK(close_code == fail_code);
    }
    if (session_mode) {
        FUZZ_CHECK(close_code == -1 || close_code == 1011);
        if (!cut) {
            FUZZ_CHECK(close_code == 1011);
            FUZZ_CHECK(e.ndata == 1);
        }
    }
    gwh_msgs_free(&data);
    gwh_msgs_free(&pings);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gwh_init();
    int n = snprintf(session_upgrade, sizeof(session_upgrade),
                     "GET /ws?token=%s HTTP/1.1\r\n"
                     "Host: localhost:8080\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     gwh.token);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof(session_upgrade));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* deflate mode reads one more header byte (gw_harness.h) */
    uint8_t hdr[GWH_HEADER + 1] = {0, 0x8f, 0x8f, 0x8f, 0};
    size_t hlen = size > 0 && (data[0] & GWH_F_DEFLATE) ? GWH_HEADER + 1 : GWH_HEADER;
    size_t h = size < hlen ? size : hlen;
    memcpy(hdr, data, h);
    uint8_t flags = (uint8_t)(hdr[0] & ~GWH_F_DRAINING); /* it would refuse the upgrade */
    const uint8_t *frames = data + h;
    size_t frames_len = size - h;
    session_mode = (flags & GWH_F_SESSION) != 0;
    upgrades = 0;
    struct offer o = {.client_bits = -1, .server_bits = -1};
    run_cfg = &gwh.cfg;
    if (flags & GWH_F_DEFLATE) {
        uint8_t b = hdr[GWH_HEADER];
        o = offer_from(b);
        run_cfg = &gwh.cfg_deflate[((b & DEFLATE_CONTEXT) ? GWH_DEFLATE_CLIENT_CONTEXT : 0) |
                                   ((b & DEFLATE_MIN_0) ? GWH_DEFLATE_MIN_0 : 0)];
    }
    char upgrade[sizeof(session_upgrade) + 256];
    size_t upgrade_len =
        make_upgrade(upgrade, sizeof(upgrade), session_mode ? session_upgrade : echo_upgrade, &o);

    struct gwh_run r;
    gwh_start(&r, run_cfg, on_request, false);
    if (flags & GWH_F_ONE_STREAM) {
        uint8_t *stream = malloc(upgrade_len + frames_len + 1);
        FUZZ_CHECK(stream != NULL);
        memcpy(stream, upgrade, upgrade_len);
        if (frames_len)
            memcpy(stream + upgrade_len, frames, frames_len);
        gwh_feed(&r, stream, upgrade_len + frames_len, hdr + 1);
        free(stream);
    } else {
        static const uint8_t whole[3] = {0xff, 0xff, 0xff};
        gwh_feed(&r, (const uint8_t *)upgrade, upgrade_len, whole);
        gwh_settle(&r);
        FUZZ_CHECK(upgrades == 1);
        gwh_feed(&r, frames, frames_len, hdr + 1);
    }
    gwh_finish(&r, flags);
    gwh_stop(&r);

    check_output(&r, frames, frames_len, flags, &o);
    if (session_mode)
        gwh_check_no_secrets(r.out, r.out_len);
    gwh_free_output(&r);
    return 0;
}
