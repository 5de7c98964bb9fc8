#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_internal.h"
#include "token.h"

/* One value of an option, from a flag, the environment or the default:
 * checked, parsed and stored in the config, one case per option kind. */

#define PREFIX_MAX 64
#define CLAIM_MAX 64
#define KEY_FILE_MAX (64 * 1024) /* a PEM key or certificate is a few KiB */

bool chat_config_is_node_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int chat_config_parse_ll(const char *text, long long *out)
{
    char *end;
    if (!text[0] || text[0] == ' ' || text[0] == '+')
        return -1;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int chat_config_set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int set_rate(struct chat_config *cfg, const char *src, const char *v, char *err,
                    size_t errlen)
{
    char *end;
    errno = 0;
    double r = strtod(v, &end);
    if (end == v || errno || !isfinite(r) || r <= 0 || r > 1e6)
        return chat_config_failf(err, errlen, "%s: '%s' is not R/B with R > 0", src, v);
    long long b = cfg->burst;
    if (*end == '/') {
        if (chat_config_parse_ll(end + 1, &b) < 0 || b < 1 || b > 1000000)
            return chat_config_failf(err, errlen, "%s: burst in '%s' must be an integer 1-1000000",
                                     src, v);
    } else if (*end) {
        return chat_config_failf(err, errlen, "%s: '%s' is not R/B with R > 0", src, v);
    }
    cfg->rate = r;
    cfg->burst = (int)b;
    return 0;
}

/* The contents of a key file, NUL-terminated, at most KEY_FILE_MAX bytes;
 * NULL with why filled. */
static char *read_key_file(const char *path, size_t *len, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;

    if (!f) {
        chat_config_failf(why, whylen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        chat_config_failf(why, whylen, "out of memory");
        goto done;
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    if (ferror(f)) {
        chat_config_failf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (n > KEY_FILE_MAX) {
        chat_config_failf(why, whylen, "'%s' is larger than %d bytes", path, KEY_FILE_MAX);
        goto fail;
    }
    if (n == 0) {
        chat_config_failf(why, whylen, "'%s' is empty", path);
        goto fail;
    }
    buf[n] = '\0';
    *len = n;
    goto done;
fail:
    free(buf);
    buf = NULL;
done:
    fclose(f);
    return buf;
}

static int set_key(struct chat_config *cfg, char **slot, const char *src, const char *path,
                   char *err, size_t errlen)
{
    char why[256];
    size_t len = 0;

    if (!path[0])
        return chat_config_failf(err, errlen, "%s: must not be empty", src);
    char *pem = read_key_file(path, &len, why, sizeof(why));
    if (!pem)
        return chat_config_failf(err, errlen, "%s: %s", src, why);
    if (chat_token_key_check(pem, len, why, sizeof(why)) < 0) {
        free(pem);
        return chat_config_failf(err, errlen, "%s: '%s': %s", src, path, why);
    }
    if (chat_config_set_string(slot, path) < 0) {
        free(pem);
        return chat_config_failf(err, errlen, "out of memory");
    }
    free(cfg->jwt_public_key_pem);
    cfg->jwt_public_key_pem = pem;
    return 0;
}

/* Applies one value from `src` ("--port", "CHAT_PORT" or "default").  One
 * case per option kind of the table, which is why it is long: the kinds are
 * best read side by side. */
int chat_config_set_option(struct chat_config *cfg, const struct opt *o, const char *src,
                           const char *v, char *err, size_t errlen)
{
    void *slot = (char *)cfg + o->offset;
    long long n;
    size_t len = strlen(v);

    switch (o->kind) {
    case OPT_INT:
    case OPT_SIZE:
        if (chat_config_parse_ll(v, &n) < 0)
            return chat_config_failf(err, errlen, "%s: '%s' is not an integer", src, v);
        if (n < o->min || n > o->max)
            return chat_config_failf(err, errlen, "%s: %lld is out of range %lld-%lld", src, n,
                                     o->min, o->max);
        if (o->kind == OPT_INT)
            *(int *)slot = (int)n;
        else
            *(size_t *)slot = (size_t)n;
        return 0;
    case OPT_BOOL:
    case OPT_SWITCH:
        if (parse_bool(v, (bool *)slot) < 0)
            return chat_config_failf(
                err, errlen, "%s: '%s' is not one of 1/0, true/false, yes/no, on/off", src, v);
        return 0;
    case OPT_RATE:
        return set_rate(cfg, src, v, err, errlen);
    case OPT_LEVEL:
        if (chat_log_level_parse(v, (enum chat_log_level *)slot) < 0)
            return chat_config_failf(err, errlen, "%s: '%s' is not error, warn, info or debug", src,
                                     v);
        return 0;
    case OPT_LOG_FORMAT:
        if (chat_log_format_parse(v, (enum chat_log_format *)slot) < 0)
            return chat_config_failf(err, errlen, "%s: '%s' is not text or json", src, v);
        return 0;
    case OPT_DURABILITY:
        if (strcmp(v, "primary") != 0 && strcmp(v, "replica") != 0)
            return chat_config_failf(err, errlen, "%s: '%s' is not primary or replica", src, v);
        *(bool *)slot = strcmp(v, "replica") == 0;
        return 0;
    case OPT_REDIS: {
        struct chat_redis_url url;
        char why[160];
        if (chat_redis_url_parse(v, &url, why, sizeof(why)) < 0)
            return chat_config_failf(err, errlen, "%s: %s", src, why);
        if (chat_config_set_string(slot, v) < 0) {
            chat_redis_url_deinit(&url);
            return chat_config_failf(err, errlen, "out of memory");
        }
        chat_redis_url_deinit(&cfg->redis);
        cfg->redis = url;
        return 0;
    }
    case OPT_NODE:
        if (len == 0 || len > NODE_ID_MAX)
            return chat_config_failf(err, errlen, "%s: must be 1-%d characters", src, NODE_ID_MAX);
        for (size_t i = 0; i < len; i++) {
            if (!chat_config_is_node_char(v[i]))
                return chat_config_failf(err, errlen, "%s: only A-Z a-z 0-9 _ . - are allowed",
                                         src);
        }
        break;
    case OPT_SECRET:
        if (len < CHAT_JWT_SECRET_MIN)
            return chat_config_failf(err, errlen, "%s: must be at least %d bytes", src,
                                     CHAT_JWT_SECRET_MIN);
        break;
    case OPT_PREFIX:
        if (len > PREFIX_MAX)
            return chat_config_failf(err, errlen, "%s: must be at most %d characters", src,
                                     PREFIX_MAX);
        for (size_t i = 0; i < len; i++) {
            if (v[i] <= ' ' || v[i] >= 0x7f)
                return chat_config_failf(err, errlen,
                                         "%s: only printable characters without spaces", src);
        }
        break;
    case OPT_STRING:
        if (len == 0)
            return chat_config_failf(err, errlen, "%s: must not be empty", src);
        break;
    case OPT_KEY:
        return set_key(cfg, slot, src, v, err, errlen);
    case OPT_CLAIM:
        if (len == 0 || len > CLAIM_MAX)
            return chat_config_failf(err, errlen, "%s: must be 1-%d characters", src, CLAIM_MAX);
        for (size_t i = 0; i < len; i++) {
            if (v[i] <= ' ' || v[i] >= 0x7f)
                return chat_config_failf(err, errlen,
                                         "%s: only printable characters without spaces", src);
        }
        break;
    case OPT_HELP:
    case OPT_VERSION:
        return 0;
    }
    if (chat_config_set_string(slot, v) < 0)
        return chat_config_failf(err, errlen, "out of memory");
    return 0;
}
