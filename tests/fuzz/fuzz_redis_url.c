/*
 * chat_redis_url_parse (common/config.c).  Input: byte 0 picks the size of the
 * error buffer, the rest is the URL.  An accepted URL must have sane parts and
 * must parse to the same parts when rebuilt from them (credentials
 * percent-encoded, IPv6 hosts bracketed); a refused one must leave a
 * terminated message in the buffer and nothing to free.
 */
#include <limits.h>

#include "config.h"
#include "fuzz.h"

static void put_encoded(char *out, size_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_';
        if (plain) {
            out[(*o)++] = (char)*p;
        } else {
            out[(*o)++] = '%';
            out[(*o)++] = hex[*p >> 4];
            out[(*o)++] = hex[*p & 15];
        }
    }
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_rebuild(const struct chat_redis_url *u)
{
    size_t cap = 64 + 3 * (strlen(u->host) + (u->user ? strlen(u->user) : 0) +
                           (u->password ? strlen(u->password) : 0));
    char *text = malloc(cap);
    size_t o = 0;
    FUZZ_CHECK(text != NULL);
    memcpy(text, "redis://", 8);
    o = 8;
    if (u->password) {
        if (u->user)
            put_encoded(text, &o, u->user);
        text[o++] = ':';
        put_encoded(text, &o, u->password);
        text[o++] = '@';
    }
    bool v6 = strchr(u->host, ':') != NULL;
    o += (size_t)snprintf(text + o, cap - o, v6 ? "[%s]:%d/%d" : "%s:%d/%d", u->host, u->port,
                          u->db);
    FUZZ_CHECK(o < cap);

    struct chat_redis_url again;
    char err[128];
    if (chat_redis_url_parse(text, &again, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz: rebuilt URL refused: %s\n", err);
        FUZZ_CHECK(!"a URL rebuilt from parsed parts parses");
    }
    FUZZ_CHECK(strcmp(again.host, u->host) == 0 && again.port == u->port && again.db == u->db);
    FUZZ_CHECK(same(again.user, u->user) && same(again.password, u->password));
    chat_redis_url_deinit(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t errlens[] = {0, 1, 7, 32, 160};
    if (size == 0)
        return 0;
    size_t errlen = errlens[data[0] % 5];
    char *text = fuzz_strndup(data + 1, size - 1);
    char *err = malloc(errlen ? errlen : 1);
    struct chat_redis_url url;

    FUZZ_CHECK(err != NULL);
    if (errlen)
        memset(err, 'x', errlen);
    if (chat_redis_url_parse(text, &url, err, errlen) == 0) {
        FUZZ_CHECK(url.host != NULL && url.host[0] != '\0');
        FUZZ_CHECK(url.port >= 1 && url.port <= 65535);
        FUZZ_CHECK(url.db >= 0);
        FUZZ_CHECK(url.user == NULL || url.password != NULL);
        FUZZ_CHECK(url.password == NULL || url.password[0] != '\0');
        check_rebuild(&url);
        chat_redis_url_deinit(&url);
        FUZZ_CHECK(url.host == NULL && url.password == NULL);
    } else {
        FUZZ_CHECK(url.host == NULL && url.user == NULL && url.password == NULL);
        if (errlen) {
            FUZZ_CHECK(memchr(err, '\0', errlen) != NULL);
            FUZZ_CHECK(errlen == 1 || err[0] != '\0');
        }
    }
    chat_redis_url_deinit(&url);
    free(err);
    free(text);
    return 0;
}
