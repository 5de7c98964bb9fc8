#ifndef CHAT_CLIENT_H
#define CHAT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * libchat_client: a small WebSocket client on libevent + wslay, shared by the
 * integration tests, chat-cli and chat-bench.  One chat_client is one
 * connection; many can share one event_base.  ws:// only (TLS ends at the
 * load balancer).
 *
 * The library knows WebSocket, not the chat protocol: requests are JSON text
 * frames built by the caller (chat-cli builds them with jansson), so a new
 * request type (read, edit, delete, react: docs/protocol.md) needs nothing
 * here, e.g. chat_client_send_text(c, "{\"type\":\"react\",\"room\":
 * \"general\",\"seq\":3,\"emoji\":\"+1\"}", len).
 *
 * Callbacks run on the event loop.  A callback may call chat_client_send_*
 * and chat_client_close, and may call chat_client_free on its own client (the
 * free is deferred until the callback returns).
 */

struct event_base;
struct chat_client;

enum chat_client_event {
    CHAT_CLIENT_OPEN,    /* handshake done: 101 received and Sec-WebSocket-Accept checked */
    CHAT_CLIENT_CLOSED,  /* connection gone; code = close code received (1000, 1001, 1008 ...),
                            or 1006 when the TCP connection dropped without a close frame */
    CHAT_CLIENT_REFUSED, /* handshake refused; code = HTTP status (401, 403, 503 ...), or 0 when
                            the TCP connect failed, the connection dropped or timed out (10 s)
                            before a response head, or the head was not HTTP; a 101 whose
                            Upgrade, Connection or Sec-WebSocket-Accept is wrong gives 101 */
};

/* data is borrowed for the call and not NUL-terminated.  Writes go through
 * libevent, which does not block SIGPIPE: programs should ignore it. */
typedef void (*chat_client_message_cb)(struct chat_client *c, bool binary, const char *data,
                                       size_t len, void *arg);
typedef void (*chat_client_event_cb)(struct chat_client *c, enum chat_client_event ev, int code,
                                     void *arg);

struct chat_client_options {
    const char *url;    /* ws://host:port/path[?query]; required; host may be [::1] */
    const char *token;  /* sent as Authorization: Bearer, NULL for none */
    const char *origin; /* Origin header, NULL for none */
    size_t max_message; /* largest incoming message, 0 = 64 MiB */
    /* Asks for presence_batch instead of online/offline (adds presence=batch
     * to the query; docs/protocol.md); chat_presence_each reads both. */
    bool presence_batch;
    /* Offers permessage-deflate with client_no_context_takeover (RFC 7692).
     * Compressed messages from the server are inflated before on_message;
     * what this client sends goes uncompressed, which the RFC allows. */
    bool deflate;
    chat_client_message_cb on_message;
    chat_client_event_cb on_event;
    void *arg;
};

/* Starts connecting (non-blocking); all strings in opts are copied.  NULL on
 * a bad URL or no memory. */
struct chat_client *chat_client_new(struct event_base *base,
                                    const struct chat_client_options *opts);

/* Queues a text message.  0, or -1 when not open. */
int chat_client_send_text(struct chat_client *c, const char *data, size_t len);

/* Queues a raw frame with any opcode (1 text, 2 binary, 9 ping ...) without
 * validating the payload, so tests can send what a hostile peer would. */
int chat_client_send_frame(struct chat_client *c, uint8_t opcode, const void *data, size_t len);

/* Appends bytes to the connection as they are, with no framing or masking
 * (unmasked frames, bad lengths, reserved bits ...).  Frames queued before may
 * still be in the queue when called from a callback.  0, or -1 when not open. */
int chat_client_send_raw(struct chat_client *c, const void *data, size_t len);

/* Starts the closing handshake with `code`; CLOSED follows. */
int chat_client_close(struct chat_client *c, uint16_t code, const char *reason);

/* Drops the connection now, without a close frame (a crashing client).  No
 * callback fires for it; the client stays allocated until chat_client_free. */
void chat_client_abort(struct chat_client *c);

bool chat_client_is_open(const struct chat_client *c);
/* permessage-deflate is in force (the server accepted the offer). */
bool chat_client_deflate(const struct chat_client *c);
/* Bytes read from and written to the socket since the upgrade, frame
 * headers included: what the WebSocket cost on the wire. */
void chat_client_wire_bytes(const struct chat_client *c, uint64_t *in, uint64_t *out);
/* Bytes queued but not yet written to the socket. */
size_t chat_client_pending(const struct chat_client *c);

/* Frees; no callback fires afterwards.  NULL is a no-op. */
void chat_client_free(struct chat_client *c);

/*
 * The one piece of the chat protocol here: online/offline, one user per
 * frame, and presence_batch, many (docs/protocol.md), read the same way.
 */
typedef struct json_t json_t;
/* Called per user, in the order the client should apply them: online true
 * means add or update, false remove.  user is borrowed for the call. */
typedef void (*chat_presence_cb)(const json_t *user, bool online, void *arg);
/* For an online, offline or presence_batch frame (parsed), calls fn for each
 * user it names and returns how many; -1 (no call) for any other frame. */
int chat_presence_each(const json_t *frame, chat_presence_cb fn, void *arg);

/*
 * Blocking helpers for setup code (tests, cli, bench), not for the event loop.
 */

/* One HTTP/1.1 request to http://host:port (base_url is http://host:port,
 * or ws://host:port/... whose scheme and path are ignored).  Returns the status
 * code and a malloc'd body in *body (NUL-terminated; may be NULL), or -1 on a
 * network error.  headers is extra "Name: value\r\n" lines or NULL.  timeout_ms
 * bounds the whole exchange. */
int chat_http_request(const char *base_url, const char *method, const char *path,
                      const char *headers, const char *body, size_t body_len, char **resp_body,
                      int timeout_ms);

/* Sends req_len bytes of req as they are to the host:port of base_url and
 * reads the answer until the peer closes, a whole response (head plus
 * Content-Length or chunked body) has arrived, or timeout_ms passes.  Returns
 * the number of bytes read into *resp (malloc'd, NUL-terminated), or -1 when
 * the connection could not be made.  SIGPIPE-safe. */
long chat_http_raw(const char *base_url, const void *req, size_t req_len, char **resp,
                   int timeout_ms);

/* POST /api/login; on 200 returns 200 and malloc'd *token and *user_id.
 * Otherwise the HTTP status (or -1) and NULLs. avatar may be NULL. */
int chat_login(const char *base_url, const char *nickname, const char *avatar, char **token,
               char **user_id, int timeout_ms);

#endif
