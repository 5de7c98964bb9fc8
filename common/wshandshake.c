#include "wshandshake.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims optional whitespace: *start and *len describe the trimmed value. */
static void trim(const char *s, const char **start, size_t *len)
{
    size_t n = strlen(s);
    while (n > 0 && is_ows(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_ows(s[n - 1]))
        n--;
    *start = s;
    *len = n;
}

bool chat_http_list_has_token(const char *value, const char *token)
{
    if (!value || !token)
        return false;
    size_t tlen = strlen(token);
    const char *p = value;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && is_ows(*p)) {
            p++;
            n--;
        }
        while (n > 0 && is_ows(p[n - 1]))
            n--;
        if (n == tlen && tlen > 0 && strncasecmp(p, token, tlen) == 0)
            return true;
        if (!end)
            return false;
        p = end + 1;
    }
}

static bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* Base64 of exactly 16 bytes is 22 characters and "==". */
static bool key_ok(const char *key, size_t len)
{
    if (len != CHAT_WS_KEY_LEN || key[22] != '=' || key[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        if (!is_b64_char(key[i]))
            return false;
    }
    return true;
}

static void accept_for(const char *key, size_t len, char *out)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, key, len) != 1 ||
        EVP_DigestUpdate(ctx, WS_GUID, sizeof(WS_GUID) - 1) != 1 ||
        EVP_DigestFinal_ex(ctx, digest, &dlen) != 1 || dlen != SHA_DIGEST_LENGTH) {
        /* Only allocation can fail here; an empty accept never matches. */
        out[0] = '\0';
        goto done;
    }
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    out[CHAT_WS_ACCEPT_LEN] = '\0';

done:
    EVP_MD_CTX_free(ctx);
}

void chat_ws_accept_for_key(const char *key, char *out)
{
    accept_for(key ? key : "", key ? strlen(key) : 0, out);
}

int chat_ws_check_request(const struct chat_ws_request *req, char *accept_out)
{
    const char *key;
    size_t klen;

    if (!req || !req->is_get)
        return CHAT_WS_E_METHOD;
    if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1))
        return CHAT_WS_E_HTTP_VERSION;
    if (!chat_http_list_has_token(req->upgrade, "websocket") ||
        !chat_http_list_has_token(req->connection, "upgrade"))
        return CHAT_WS_E_UPGRADE;
    if (!chat_http_list_has_token(req->version, "13"))
        return CHAT_WS_E_VERSION;
    if (!req->key)
        return CHAT_WS_E_KEY;
    trim(req->key, &key, &klen);
    if (!key_ok(key, klen))
        return CHAT_WS_E_KEY;
    if (accept_out)
        accept_for(key, klen, accept_out);
    return CHAT_WS_OK;
}

const char *chat_ws_strerror(int err)
{
    switch (err) {
    case CHAT_WS_OK:
        return "ok";
    case CHAT_WS_E_METHOD:
        return "WebSocket upgrade needs GET";
    case CHAT_WS_E_HTTP_VERSION:
        return "WebSocket upgrade needs HTTP/1.1";
    case CHAT_WS_E_UPGRADE:
        return "missing Upgrade: websocket or Connection: Upgrade";
    case CHAT_WS_E_VERSION:
        return "unsupported Sec-WebSocket-Version";
    case CHAT_WS_E_KEY:
        return "invalid Sec-WebSocket-Key";
    }
    return "bad WebSocket handshake";
}

int chat_ws_make_key(char *out)
{
    unsigned char nonce[16];
    if (!out || RAND_bytes(nonce, sizeof(nonce)) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, nonce, sizeof(nonce));
    out[CHAT_WS_KEY_LEN] = '\0';
    return 0;
}
