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
 */
#include <event2/buffer.h>
#include <http_parser.h>
#include <jansson.h>

#include "gw_harness.h"
#include "handlers.h"
#include "http.h"

#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static const char echo_upgrade[] = "GET /echo HTTP/1.1\r\n"
                                   "Host: localhost:8080\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Connection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: " WS_KEY "\r\n"
                                   "Sec-WebSocket-Version: 13\r\n"
                                   "\r\n";
static char session_upgrade[4096];

static bool session_mode;
static int upgrades;

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
    evbuffer_add_printf(gw_conn_output(c),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                        accept);
    gw_session_start(ctx, c, &who, 0, gw_handlers_dispatch); /* takes who */
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

static void check_output(const struct gwh_run *r, const uint8_t *frames, size_t frames_len,
                         uint8_t flags)
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
    char accept[CHAT_WS_ACCEPT_LEN + 1], got[128];
    chat_ws_accept_for_key(WS_KEY, accept);
    FUZZ_CHECK(gwh_find_header(s, head_len, "Sec-WebSocket-Accept", got, sizeof(got)));
    FUZZ_CHECK(strcmp(got, accept) == 0);

    struct gwh_msgs data = {0}, pings = {0};
    if (!session_mode)
        gwh_client_messages(frames, frames_len, &data, &pings);
    struct expect e = {.data = &data, .pings = &pings};
    struct gwh_frames_cb cb = {.data = on_data, .pong = on_pong, .arg = &e};
    int close_code = gwh_check_frames(r->out + head_len, r->out_len - head_len, &cb);
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
    uint8_t hdr[GWH_HEADER] = {0, 0x8f, 0x8f, 0x8f};
    size_t h = size < GWH_HEADER ? size : GWH_HEADER;
    memcpy(hdr, data, h);
    uint8_t flags = (uint8_t)(hdr[0] & ~GWH_F_DRAINING); /* it would refuse the upgrade */
    const uint8_t *frames = data + h;
    size_t frames_len = size - h;
    session_mode = (flags & GWH_F_SESSION) != 0;
    upgrades = 0;
    const char *upgrade = session_mode ? session_upgrade : echo_upgrade;
    size_t upgrade_len = strlen(upgrade);

    struct gwh_run r;
    gwh_start(&r, on_request, false);
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

    check_output(&r, frames, frames_len, flags);
    if (session_mode)
        gwh_check_no_secrets(r.out, r.out_len);
    gwh_free_output(&r);
    return 0;
}
