/*
 * chat_ws_check_request and chat_http_list_has_token (common/wshandshake.c).
 * Input: byte 0 holds is_get and the HTTP version, byte 1 which headers are
 * present, then Upgrade, Connection, Sec-WebSocket-Version and
 * Sec-WebSocket-Key separated by NUL bytes.  The result is compared with a
 * reference written from RFC 6455 section 4.2.1, and an accepted key must
 * give the same Sec-WebSocket-Accept as chat_ws_accept_for_key.
 */
#include <strings.h>

#include "fuzz.h"
#include "wshandshake.h"

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Comma list membership, by copying each item out and trimming it. */
static bool ref_has_token(const char *value, const char *token)
{
    if (!value || !token || !token[0])
        return false;
    size_t vlen = strlen(value);
    char *item = malloc(vlen + 1);
    FUZZ_CHECK(item != NULL);
    bool found = false;
    size_t i = 0;
    while (!found) {
        size_t k = 0;
        while (i < vlen && value[i] != ',')
            item[k++] = value[i++];
        item[k] = '\0';
        char *s = item;
        while (ows(*s))
            s++;
        size_t n = strlen(s);
        while (n > 0 && ows(s[n - 1]))
            s[--n] = '\0';
        found = strcasecmp(s, token) == 0;
        if (i >= vlen)
            break;
        i++; /* the comma */
    }
    free(item);
    return found;
}

static bool ref_key(const char *key, char *trimmed, size_t cap)
{
    while (ows(*key))
        key++;
    size_t n = strlen(key);
    while (n > 0 && ows(key[n - 1]))
        n--;
    if (n != 24 || n >= cap)
        return false;
    memcpy(trimmed, key, n);
    trimmed[n] = '\0';
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return key[22] == '=' && key[23] == '=';
}

static int ref_check(const struct chat_ws_request *r, char *trimmed, size_t cap)
{
    if (!r->is_get)
        return CHAT_WS_E_METHOD;
    if (r->http_major * 100 + r->http_minor < 101)
        return CHAT_WS_E_HTTP_VERSION;
    if (!ref_has_token(r->upgrade, "websocket") || !ref_has_token(r->connection, "Upgrade"))
        return CHAT_WS_E_UPGRADE;
    if (!ref_has_token(r->version, "13"))
        return CHAT_WS_E_VERSION;
    if (!r->key || !ref_key(r->key, trimmed, cap))
        return CHAT_WS_E_KEY;
    return CHAT_WS_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0], present = data[1];
    int nparts;
    char **parts = fuzz_split(data + 2, size - 2, 4, &nparts);
    const char *h[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        if ((present >> i) & 1)
            h[i] = i < nparts ? parts[i] : "";
    }

    struct chat_ws_request req = {
        .is_get = flags & 1,
        .http_major = (flags >> 1) & 3,
        .http_minor = (flags >> 3) & 3,
        .upgrade = h[0],
        .connection = h[1],
        .version = h[2],
        .key = h[3],
    };
    char *accept = malloc(CHAT_WS_ACCEPT_LEN + 1); /* exactly the documented size */
    char trimmed[64], expect[CHAT_WS_ACCEPT_LEN + 1];
    FUZZ_CHECK(accept != NULL);

    int rc = chat_ws_check_request(&req, accept);
    FUZZ_CHECK(rc == ref_check(&req, trimmed, sizeof(trimmed)));
    FUZZ_CHECK(strcmp(chat_ws_strerror(rc), "bad WebSocket handshake") != 0);
    FUZZ_CHECK(chat_ws_check_request(&req, NULL) == rc);
    if (rc == CHAT_WS_OK) {
        FUZZ_CHECK(strlen(accept) == CHAT_WS_ACCEPT_LEN);
        chat_ws_accept_for_key(trimmed, expect);
        FUZZ_CHECK(strcmp(accept, expect) == 0);
    }
    FUZZ_CHECK(chat_ws_check_request(NULL, accept) == CHAT_WS_E_METHOD);

    /* the list matcher on its own, with any token */
    for (int i = 0; i + 1 < nparts; i++)
        FUZZ_CHECK(chat_http_list_has_token(parts[i], parts[i + 1]) ==
                   ref_has_token(parts[i], parts[i + 1]));
    chat_ws_accept_for_key(nparts ? parts[0] : NULL, expect);
    FUZZ_CHECK(strlen(expect) == CHAT_WS_ACCEPT_LEN);

    free(accept);
    fuzz_free_parts(parts, nparts);
    return 0;
}
