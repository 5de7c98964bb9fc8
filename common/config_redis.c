#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "config_internal.h"
#include "protocol.h"

/* The Redis URL of --redis: redis://[[user]:password@]host:port[/db], or
 * redis-cluster://[[user]:password@]host:port[,host:port...] (seed nodes). */

/* Percent-decodes s[0..len) into a new string; NULL on a bad escape, an
 * embedded NUL or no memory. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? chat_hexval(s[i + 1]) : -1;
        int lo = hi >= 0 ? chat_hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

static bool is_host_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static int parse_port_db(const char *s, size_t len, long long min, long long max, long long *out)
{
    char buf[16];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    long long v;
    if (chat_config_parse_ll(buf, &v) < 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int redis_url_parse_one(const char *text, struct chat_redis_url *out, char *err,
                               size_t errlen);

/* Each seed of redis-cluster://CREDS@A,B,C (or of the sentinels of
 * redis-sentinel://CREDS@A,B/name) is parsed as redis://CREDS@A (and so on), so a
 * seed is checked exactly as a redis:// host is.  auth[0..alen) is CREDS@A,B,C. */
static int seeds_parse(const char *text, const char *auth, size_t alen, struct chat_redis_url *out,
                       char *err, size_t errlen)
{
    const char *end = auth + alen;
    const char *at = NULL;
    for (const char *p = auth; p < end; p++)
        if (*p == '@')
            at = p;
    const char *hosts = at ? at + 1 : auth;
    size_t credlen = (size_t)(hosts - auth);
    size_t n = 1;
    for (const char *p = hosts; p < end; p++)
        n += *p == ',';
    struct chat_redis_seed *seeds = calloc(n, sizeof(*seeds));
    char *one = malloc(strlen(text) + 16);
    if (!seeds || !one) {
        free(seeds);
        free(one);
        return chat_config_failf(err, errlen, "out of memory");
    }
    const char *p = hosts;
    for (size_t i = 0; i < n; i++) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t hlen = comma ? (size_t)(comma - p) : (size_t)(end - p);
        struct chat_redis_url u;
        snprintf(one, strlen(text) + 16, "redis://%.*s%.*s", (int)credlen, auth, (int)hlen, p);
        if (hlen == 0 || redis_url_parse_one(one, &u, err, errlen) < 0) {
            if (hlen == 0)
                chat_config_failf(err, errlen, "empty seed in redis-cluster://");
            for (size_t k = 1; k < i; k++)
                free(seeds[k].host);
            free(seeds);
            free(one);
            if (i > 0)
                chat_redis_url_deinit(out); /* the first seed's, held there */
            return -1;
        }
        seeds[i].port = u.port;
        if (i == 0) {
            *out = u;
        } else {
            seeds[i].host = u.host;
            u.host = NULL;
            chat_redis_url_deinit(&u);
        }
        p = comma ? comma + 1 : p + hlen;
    }
    seeds[0].host = strdup(out->host);
    free(one);
    out->seeds = seeds;
    out->nseeds = n;
    if (!seeds[0].host) {
        chat_redis_url_deinit(out);
        return chat_config_failf(err, errlen, "out of memory");
    }
    return 0;
}

static int cluster_url_parse(const char *text, struct chat_redis_url *out, char *err, size_t errlen)
{
    const char *auth = text + strlen("redis-cluster://");
    if (strpbrk(auth, "/?#"))
        return chat_config_failf(err, errlen,
                                 "redis-cluster:// takes no path (a cluster has database 0 only)");
    if (seeds_parse(text, auth, strlen(auth), out, err, errlen) < 0)
        return -1;
    out->cluster = true;
    return 0;
}

/* redis-sentinel://[[user]:password@]host:port[,host:port...]/master-name: the
 * credentials are the master's (the sentinels are asked without any). */
static int sentinel_url_parse(const char *text, struct chat_redis_url *out, char *err,
                              size_t errlen)
{
    const char *auth = text + strlen("redis-sentinel://");
    if (strpbrk(auth, "?#"))
        return chat_config_failf(err, errlen, "query and fragment are not supported");
    const char *slash = strrchr(auth, '/');
    const char *name = slash ? slash + 1 : "";
    size_t nlen = strlen(name);
    if (!slash || nlen == 0 || nlen > 64)
        return chat_config_failf(err, errlen,
                                 "redis-sentinel:// needs /master-name (1-64 characters)");
    for (size_t i = 0; i < nlen; i++)
        if (!is_host_char(name[i]))
            return chat_config_failf(err, errlen, "bad master name");
    if (seeds_parse(text, auth, (size_t)(slash - auth), out, err, errlen) < 0)
        return -1;
    out->sentinel = true;
    out->master_name = strdup(name);
    if (!out->master_name) {
        chat_redis_url_deinit(out);
        return chat_config_failf(err, errlen, "out of memory");
    }
    return 0;
}

int chat_redis_url_parse(const char *text, struct chat_redis_url *out, char *err, size_t errlen)
{
    if (out)
        memset(out, 0, sizeof(*out));
    if (text && out && strncasecmp(text, "redis-cluster://", 16) == 0)
        return cluster_url_parse(text, out, err, errlen);
    if (text && out && strncasecmp(text, "redis-sentinel://", 17) == 0)
        return sentinel_url_parse(text, out, err, errlen);
    return redis_url_parse_one(text, out, err, errlen);
}

/* One pass over redis://[[user]:password@]host:port[/db], left to right; long
 * because each part has its own error message and splitting it would spread
 * the cursor over several functions. */
static int redis_url_parse_one(const char *text, struct chat_redis_url *out, char *err,
                               size_t errlen)
{
    static const char scheme[] = "redis://";
    struct chat_redis_url url = {0};
    long long num;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!text || !out)
        return chat_config_failf(err, errlen, "no URL given");
    if (strncasecmp(text, "rediss://", 9) == 0)
        return chat_config_failf(err, errlen, "TLS (rediss://) is not supported");
    if (strncasecmp(text, scheme, sizeof(scheme) - 1) != 0)
        return chat_config_failf(
            err, errlen,
            "must start with redis:// or redis-cluster://"); /* not echoed: may hold a password */
    const char *auth = text + sizeof(scheme) - 1;
    if (strpbrk(auth, "?#"))
        return chat_config_failf(err, errlen, "query and fragment are not supported");
    const char *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);

    /* Credentials end at the last '@' of the authority: a password may hold '@'. */
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@')
            at = auth + i;
    }
    const char *host = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (!colon) {
            chat_config_failf(err, errlen, "credentials must be [user]:password@");
            goto fail;
        }
        if (colon + 1 == at) {
            chat_config_failf(err, errlen, "empty password");
            goto fail;
        }
        if (colon > auth) {
            url.user = pct_decode(auth, (size_t)(colon - auth));
            if (!url.user) {
                chat_config_failf(err, errlen, "bad %%-escape in user");
                goto fail;
            }
        }
        url.password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if (!url.password) {
            chat_config_failf(err, errlen, "bad %%-escape in password");
            goto fail;
        }
        host = at + 1;
    }
    size_t hlen = (size_t)(auth + alen - host);

    const char *port = NULL;
    size_t plen = 0;
    const char *hstart = host;
    size_t hnamelen;
    if (hlen > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);
        if (!close || close == host + 1) {
            chat_config_failf(err, errlen, "bad IPv6 address");
            goto fail;
        }
        for (const char *p = host + 1; p < close; p++) {
            if (chat_hexval(*p) < 0 && *p != ':' && *p != '.') {
                chat_config_failf(err, errlen, "bad IPv6 address");
                goto fail;
            }
        }
        hstart = host + 1;
        hnamelen = (size_t)(close - host - 1);
        const char *rest = close + 1;
        size_t rlen = (size_t)(host + hlen - rest);
        if (rlen > 0) {
            if (rest[0] != ':') {
                chat_config_failf(err, errlen, "bad host");
                goto fail;
            }
            port = rest + 1;
            plen = rlen - 1;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        hnamelen = colon ? (size_t)(colon - host) : hlen;
        if (colon) {
            port = colon + 1;
            plen = hlen - hnamelen - 1;
            if (memchr(port, ':', plen)) {
                chat_config_failf(err, errlen, "IPv6 addresses need [brackets]");
                goto fail;
            }
        }
        for (size_t i = 0; i < hnamelen; i++) {
            if (!is_host_char(host[i])) {
                chat_config_failf(err, errlen, "bad host");
                goto fail;
            }
        }
    }
    if (hnamelen == 0) {
        chat_config_failf(err, errlen, "missing host");
        goto fail;
    }
    url.host = strndup(hstart, hnamelen);
    if (!url.host) {
        chat_config_failf(err, errlen, "out of memory");
        goto fail;
    }
    url.port = 6379;
    if (port) {
        if (parse_port_db(port, plen, 1, 65535, &num) < 0) {
            chat_config_failf(err, errlen, "port must be 1-65535");
            goto fail;
        }
        url.port = (int)num;
    }
    url.db = 0;
    if (slash && slash[1]) {
        if (parse_port_db(slash + 1, strlen(slash + 1), 0, INT_MAX, &num) < 0) {
            chat_config_failf(err, errlen, "db must be a number 0-%d", INT_MAX);
            goto fail;
        }
        url.db = (int)num;
    }
    *out = url;
    return 0;

fail:
    chat_redis_url_deinit(&url);
    return -1;
}

void chat_redis_url_deinit(struct chat_redis_url *url)
{
    if (!url)
        return;
    free(url->host);
    for (size_t i = 0; i < url->nseeds; i++)
        free(url->seeds[i].host);
    free(url->seeds);
    free(url->master_name);
    free(url->user);
    if (url->password) {
        /* Do not leave the password lying around in freed memory. */
        volatile char *p = url->password;
        while (*p)
            *p++ = '\0';
    }
    free(url->password);
    memset(url, 0, sizeof(*url));
}
