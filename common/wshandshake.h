#ifndef CHAT_WSHANDSHAKE_H
#define CHAT_WSHANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * RFC 6455 opening handshake checks and Sec-WebSocket-Accept, shared by the
 * gateway (server side) and libchat_client (client side).  Header names and
 * the Upgrade/Connection tokens are case-insensitive; Connection is a comma
 * list ("keep-alive, Upgrade").
 */

#define CHAT_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define CHAT_WS_KEY_LEN 24    /* base64 of 16 bytes */

/* The request as the HTTP parser saw it; every pointer is borrowed, NULL when
 * the header is absent. */
struct chat_ws_request {
    bool is_get;
    int http_major, http_minor;
    const char *upgrade;
    const char *connection;
    const char *version; /* Sec-WebSocket-Version */
    const char *key;     /* Sec-WebSocket-Key */
};

enum chat_ws_check {
    CHAT_WS_OK = 0,
    CHAT_WS_E_METHOD = -1,       /* not GET: 405 */
    CHAT_WS_E_HTTP_VERSION = -2, /* below HTTP/1.1: 400 */
    CHAT_WS_E_UPGRADE = -3,      /* Upgrade lacks "websocket" or Connection lacks "upgrade": 400 */
    CHAT_WS_E_VERSION = -4,      /* Sec-WebSocket-Version is not 13: 426 with
                                    "Sec-WebSocket-Version: 13" */
    CHAT_WS_E_KEY = -5,          /* key missing or not base64 of exactly 16 bytes: 400 */
};

/* Validates req; on CHAT_WS_OK writes the NUL-terminated accept value into
 * accept_out (CHAT_WS_ACCEPT_LEN + 1 bytes). */
int chat_ws_check_request(const struct chat_ws_request *req, char *accept_out);

const char *chat_ws_strerror(int err);

/* Sec-WebSocket-Accept for `key` (not validated): base64(SHA1(key + GUID)).
 * out has CHAT_WS_ACCEPT_LEN + 1 bytes. */
void chat_ws_accept_for_key(const char *key, char *out);

/* Makes a fresh random client key (CHAT_WS_KEY_LEN + 1 bytes).  0 or -1. */
int chat_ws_make_key(char *out);

/* True when the comma-separated header value contains token, compared
 * case-insensitively, ignoring optional whitespace around list items. */
bool chat_http_list_has_token(const char *value, const char *token);

#endif
