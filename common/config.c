#include "config.h"
#include "protocol.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "token.h"

#ifndef CHAT_DEFAULT_STATIC_DIR
#define CHAT_DEFAULT_STATIC_DIR "/usr/local/share/chatgw/web"
#endif
#ifndef CHAT_VERSION
#define CHAT_VERSION "0.0.0"
#endif
#ifndef CHAT_GIT_COMMIT
#define CHAT_GIT_COMMIT "unknown"
#endif
#ifndef CHAT_SOURCE_WEB_DIR
#define CHAT_SOURCE_WEB_DIR "client/web"
#endif

#define NODE_ID_MAX 64
#define PREFIX_MAX 64
#define CLAIM_MAX 64
#define KEY_FILE_MAX (64 * 1024) /* a PEM key or certificate is a few KiB */

/* How a value is parsed and where it goes. */
enum opt_kind {
    OPT_INT,    /* int in min..max */
    OPT_SIZE,   /* size_t in min..max */
    OPT_STRING, /* non-empty string */
    OPT_BOOL,   /* flag without value; env 1/0, true/false, yes/no, on/off */
    OPT_RATE,   /* "R/B" into rate and burst */
    OPT_LEVEL,  /* log level name */
    OPT_REDIS,  /* redis URL into redis_url_text and redis */
    OPT_NODE,   /* node id */
    OPT_SECRET, /* JWT secret, at least CHAT_JWT_SECRET_MIN bytes */
    OPT_PREFIX, /* Redis key prefix */
    OPT_KEY,    /* PEM public key file: path into the slot, contents into jwt_public_key_pem */
    OPT_CLAIM,  /* JWT claim name */
    OPT_HELP,
    OPT_VERSION,
};

struct opt {
    const char *flag; /* without the leading "--" */
    const char *env;  /* NULL: no environment variable */
    const char *metavar;
    enum opt_kind kind;
    size_t offset;
    long long min, max;
    const char *def;   /* default, parsed like any value; NULL: computed or none */
    const char *shown; /* default as --help shows it when def is NULL */
    const char *help;
};

#define OFF(field) offsetof(struct chat_config, field)

/* The one table: parsing, environment lookup and --help all walk it. */
static const struct opt opts[] = {
    {"port", "CHAT_PORT", "N", OPT_INT, OFF(port), 0, 65535, "8080", NULL,
     "HTTP + WebSocket port, 0-65535 (0: any free port)"},
    {"bind", "CHAT_BIND", "ADDR", OPT_STRING, OFF(bind), 0, 0, "0.0.0.0", NULL, "listen address"},
    {"redis", "CHAT_REDIS_URL", "URL", OPT_REDIS, OFF(redis_url_text), 0, 0,
     "redis://127.0.0.1:6379/0", NULL, "Redis server, redis://[[user]:password@]host:port[/db]"},
    {"node-id", "CHAT_NODE_ID", "NAME", OPT_NODE, OFF(node_id), 0, 0, NULL, "<hostname>-<pid>",
     "name of this node in logs, /healthz and presence; 1-64 of A-Z a-z 0-9 _ . -"},
    {"jwt-secret", "CHAT_JWT_SECRET", "KEY", OPT_SECRET, OFF(jwt_secret), 0, 0, NULL,
     "none (required unless --dev)", "HS256 key shared by all nodes, at least 32 bytes"},
    {"jwt-public-key", "CHAT_JWT_PUBLIC_KEY", "FILE", OPT_KEY, OFF(jwt_public_key), 0, 0, NULL,
     "none", "identity provider's PEM public key or certificate (RSA: RS256, EC P-256: ES256)"},
    {"jwt-issuer", "CHAT_JWT_ISSUER", "STR", OPT_STRING, OFF(jwt_issuer), 0, 0, NULL,
     "none (not checked)", "iss that public-key tokens must carry"},
    {"jwt-audience", "CHAT_JWT_AUDIENCE", "STR", OPT_STRING, OFF(jwt_audience), 0, 0, NULL,
     "none (not checked)", "aud (string or array) that public-key tokens must hold"},
    {"jwt-claim-id", "CHAT_JWT_CLAIM_ID", "NAME", OPT_CLAIM, OFF(jwt_claim_id), 0, 0, "sub", NULL,
     "claim of public-key tokens holding the user id"},
    {"jwt-claim-name", "CHAT_JWT_CLAIM_NAME", "NAME", OPT_CLAIM, OFF(jwt_claim_name), 0, 0, "name",
     NULL, "claim of public-key tokens holding the display name"},
    {"dev", "CHAT_DEV", NULL, OPT_BOOL, OFF(dev), 0, 0, "0", "off",
     "development mode: a random JWT key when none is given"},
    {"static-dir", "CHAT_STATIC_DIR", "DIR", OPT_STRING, OFF(static_dir), 0, 0, NULL, NULL,
     "directory of the browser client"},
    {"origins", "CHAT_ORIGINS", "LIST", OPT_STRING, OFF(origins), 0, 0, NULL,
     "same host as the request", "comma list of allowed Origins, * for any"},
    {"history", "CHAT_HISTORY", "N", OPT_INT, OFF(history), 1, 100000, "200", NULL,
     "messages kept per room and per private conversation, 1-100000"},
    {"max-message", "CHAT_MAX_MESSAGE", "BYTES", OPT_SIZE, OFF(max_message), 128, 67108864,
     "1048576", NULL, "largest WebSocket message, 128-67108864 bytes"},
    {"rate", "CHAT_RATE", "R/B", OPT_RATE, OFF(rate), 0, 0, "10/20", NULL,
     "frames per second / burst, per connection"},
    {"prefix", "CHAT_PREFIX", "STR", OPT_PREFIX, OFF(prefix), 0, 0, "chat:", NULL,
     "prefix of every Redis key and channel, 0-64 printable characters without spaces"},
    {"log-level", "CHAT_LOG_LEVEL", "LEVEL", OPT_LEVEL, OFF(log_level), 0, 0, "info", NULL,
     "error, warn, info or debug"},
    {"echo", "CHAT_ECHO", NULL, OPT_BOOL, OFF(echo), 0, 0, "0", "off",
     "enable the unauthenticated /echo WebSocket endpoint"},
    {"ping-interval", "CHAT_PING_INTERVAL", "SEC", OPT_INT, OFF(ping_interval), 1, 3600, "25", NULL,
     "seconds between server pings, 1-3600"},
    {"idle-timeout", "CHAT_IDLE_TIMEOUT", "SEC", OPT_INT, OFF(idle_timeout), 1, 86400, "60", NULL,
     "close a connection silent for this many seconds, 1-86400"},
    {"presence-ttl", "CHAT_PRESENCE_TTL", "SEC", OPT_INT, OFF(presence_ttl), 3, 3600, "30", NULL,
     "seconds a member/online entry lives unless refreshed, 3-3600"},
    {"drain-timeout", "CHAT_DRAIN_TIMEOUT", "SEC", OPT_INT, OFF(drain_timeout), 1, 600, "10", NULL,
     "seconds to drain connections on SIGTERM/SIGINT, 1-600"},
    {"drain-grace", "CHAT_DRAIN_GRACE", "SEC", OPT_INT, OFF(drain_grace), 0, 60, "3", NULL,
     "on SIGTERM/SIGINT, seconds of /healthz 503 before sockets close (load balancer), 0-60"},
    {"max-rooms", "CHAT_MAX_ROOMS", "N", OPT_INT, OFF(max_rooms), 0, 100000000, "10000", NULL,
     "rooms there may be, cluster-wide (error limit past it), 0 for no cap"},
    {"room-create-rate", "CHAT_ROOM_CREATE_RATE", "N", OPT_INT, OFF(room_create_rate), 0, 1000000,
     "10", NULL, "rooms one user may create per hour, 0 for no quota"},
    {"room-ttl", "CHAT_ROOM_TTL", "SEC", OPT_INT, OFF(room_ttl), 0, 315360000, "2592000", NULL,
     "a room with nobody in it and no message for this long is deleted (not the default "
     "rooms), 0 to keep rooms forever"},
    {"metrics-bind", "CHAT_METRICS_BIND", "ADDR:PORT", OPT_STRING, OFF(metrics_bind), 0, 0, NULL,
     "off", "serve /metrics (and /healthz) on this address only, not on --port (IPv6 in [ ])"},
    {"redis-timeout", "CHAT_REDIS_TIMEOUT", "SEC", OPT_INT, OFF(redis_timeout), 1, 60, "2", NULL,
     "a Redis command or connect not answered this long marks Redis down (requests get "
     "unavailable, /healthz 503), 1-60"},
    {"header-timeout", "CHAT_HEADER_TIMEOUT", "SEC", OPT_INT, OFF(header_timeout), 1, 600, "10",
     NULL, "an HTTP request header not complete this long after its first byte gets 408, 1-600"},
    {"max-connections", "CHAT_MAX_CONNECTIONS", "N", OPT_INT, OFF(max_connections), 0, 10000000,
     "0", "from RLIMIT_NOFILE",
     "open connections past which new ones get 503 (0: the descriptor limit less a reserve)"},
    {"max-conns-per-ip", "CHAT_MAX_CONNS_PER_IP", "N", OPT_INT, OFF(max_conns_per_ip), 0,
     10000000, "256", NULL, "open connections per client address, 0 for no limit"},
    {"login-rate", "CHAT_LOGIN_RATE", "N", OPT_INT, OFF(login_rate), 0, 1000000, "60", NULL,
     "logins per minute per client address (429 past it), 0 for no limit"},
    {"help", NULL, NULL, OPT_HELP, 0, 0, 0, NULL, NULL, "print this help and exit (also -h)"},
    {"version", NULL, NULL, OPT_VERSION, 0, 0, 0, NULL, NULL,
     "print the version and the git commit and exit"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static int failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *default_static_dir(void)
{
    if (dir_exists(CHAT_DEFAULT_STATIC_DIR))
        return CHAT_DEFAULT_STATIC_DIR;
    if (dir_exists(CHAT_SOURCE_WEB_DIR))
        return CHAT_SOURCE_WEB_DIR;
    return "client/web";
}

static bool is_node_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* "<hostname>-<pid>", with anything outside [A-Za-z0-9_.-] replaced by '-'. */
static char *default_node_id(void)
{
    char host[256];
    char pid[24];
    char id[NODE_ID_MAX + 1];

    if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
        strcpy(host, "node");
    host[sizeof(host) - 1] = '\0';
    int plen = snprintf(pid, sizeof(pid), "-%ld", (long)getpid());
    size_t hmax = NODE_ID_MAX - (size_t)plen;
    size_t h = 0;
    for (; h < hmax && host[h]; h++)
        id[h] = is_node_char(host[h]) ? host[h] : '-';
    memcpy(id + h, pid, (size_t)plen + 1);
    return strdup(id);
}

static int parse_ll(const char *text, long long *out)
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

/* ------------------------------------------------------------------------ */
/* Redis URL                                                                  */

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
    if (parse_ll(buf, &v) < 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* One pass over redis://[[user]:password@]host:port[/db], left to right; long
 * because each part has its own error message and splitting it would spread
 * the cursor over several functions. */
int chat_redis_url_parse(const char *text, struct chat_redis_url *out, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    struct chat_redis_url url = {0};
    long long num;

    if (out)
        memset(out, 0, sizeof(*out));
    if (!text || !out)
        return failf(err, errlen, "no URL given");
    if (strncasecmp(text, "rediss://", 9) == 0)
        return failf(err, errlen, "TLS (rediss://) is not supported");
    if (strncasecmp(text, scheme, sizeof(scheme) - 1) != 0)
        return failf(err, errlen, "must start with redis://"); /* not echoed: may hold a password */
    const char *auth = text + sizeof(scheme) - 1;
    if (strpbrk(auth, "?#"))
        return failf(err, errlen, "query and fragment are not supported");
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
            failf(err, errlen, "credentials must be [user]:password@");
            goto fail;
        }
        if (colon + 1 == at) {
            failf(err, errlen, "empty password");
            goto fail;
        }
        if (colon > auth) {
            url.user = pct_decode(auth, (size_t)(colon - auth));
            if (!url.user) {
                failf(err, errlen, "bad %%-escape in user");
                goto fail;
            }
        }
        url.password = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if (!url.password) {
            failf(err, errlen, "bad %%-escape in password");
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
            failf(err, errlen, "bad IPv6 address");
            goto fail;
        }
        for (const char *p = host + 1; p < close; p++) {
            if (chat_hexval(*p) < 0 && *p != ':' && *p != '.') {
                failf(err, errlen, "bad IPv6 address");
                goto fail;
            }
        }
        hstart = host + 1;
        hnamelen = (size_t)(close - host - 1);
        const char *rest = close + 1;
        size_t rlen = (size_t)(host + hlen - rest);
        if (rlen > 0) {
            if (rest[0] != ':') {
                failf(err, errlen, "bad host");
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
                failf(err, errlen, "IPv6 addresses need [brackets]");
                goto fail;
            }
        }
        for (size_t i = 0; i < hnamelen; i++) {
            if (!is_host_char(host[i])) {
                failf(err, errlen, "bad host");
                goto fail;
            }
        }
    }
    if (hnamelen == 0) {
        failf(err, errlen, "missing host");
        goto fail;
    }
    url.host = strndup(hstart, hnamelen);
    if (!url.host) {
        failf(err, errlen, "out of memory");
        goto fail;
    }
    url.port = 6379;
    if (port) {
        if (parse_port_db(port, plen, 1, 65535, &num) < 0) {
            failf(err, errlen, "port must be 1-65535");
            goto fail;
        }
        url.port = (int)num;
    }
    url.db = 0;
    if (slash && slash[1]) {
        if (parse_port_db(slash + 1, strlen(slash + 1), 0, INT_MAX, &num) < 0) {
            failf(err, errlen, "db must be a number 0-%d", INT_MAX);
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

/* ------------------------------------------------------------------------ */
/* Options                                                                    */

static int set_string(char **slot, const char *value)
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
        return failf(err, errlen, "%s: '%s' is not R/B with R > 0", src, v);
    long long b = cfg->burst;
    if (*end == '/') {
        if (parse_ll(end + 1, &b) < 0 || b < 1 || b > 1000000)
            return failf(err, errlen, "%s: burst in '%s' must be an integer 1-1000000", src, v);
    } else if (*end) {
        return failf(err, errlen, "%s: '%s' is not R/B with R > 0", src, v);
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
        failf(why, whylen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        failf(why, whylen, "out of memory");
        goto done;
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    if (ferror(f)) {
        failf(why, whylen, "cannot read '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (n > KEY_FILE_MAX) {
        failf(why, whylen, "'%s' is larger than %d bytes", path, KEY_FILE_MAX);
        goto fail;
    }
    if (n == 0) {
        failf(why, whylen, "'%s' is empty", path);
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
        return failf(err, errlen, "%s: must not be empty", src);
    char *pem = read_key_file(path, &len, why, sizeof(why));
    if (!pem)
        return failf(err, errlen, "%s: %s", src, why);
    if (chat_token_key_check(pem, len, why, sizeof(why)) < 0) {
        free(pem);
        return failf(err, errlen, "%s: '%s': %s", src, path, why);
    }
    if (set_string(slot, path) < 0) {
        free(pem);
        return failf(err, errlen, "out of memory");
    }
    free(cfg->jwt_public_key_pem);
    cfg->jwt_public_key_pem = pem;
    return 0;
}

/* Applies one value from `src` ("--port", "CHAT_PORT" or "default").  One
 * case per option kind of the table, which is why it is long: the kinds are
 * best read side by side. */
static int set_option(struct chat_config *cfg, const struct opt *o, const char *src, const char *v,
                      char *err, size_t errlen)
{
    void *slot = (char *)cfg + o->offset;
    long long n;
    size_t len = strlen(v);

    switch (o->kind) {
    case OPT_INT:
    case OPT_SIZE:
        if (parse_ll(v, &n) < 0)
            return failf(err, errlen, "%s: '%s' is not an integer", src, v);
        if (n < o->min || n > o->max)
            return failf(err, errlen, "%s: %lld is out of range %lld-%lld", src, n, o->min, o->max);
        if (o->kind == OPT_INT)
            *(int *)slot = (int)n;
        else
            *(size_t *)slot = (size_t)n;
        return 0;
    case OPT_BOOL:
        if (parse_bool(v, (bool *)slot) < 0)
            return failf(err, errlen, "%s: '%s' is not one of 1/0, true/false, yes/no, on/off", src,
                         v);
        return 0;
    case OPT_RATE:
        return set_rate(cfg, src, v, err, errlen);
    case OPT_LEVEL:
        if (chat_log_level_parse(v, (enum chat_log_level *)slot) < 0)
            return failf(err, errlen, "%s: '%s' is not error, warn, info or debug", src, v);
        return 0;
    case OPT_REDIS: {
        struct chat_redis_url url;
        char why[160];
        if (chat_redis_url_parse(v, &url, why, sizeof(why)) < 0)
            return failf(err, errlen, "%s: %s", src, why);
        if (set_string(slot, v) < 0) {
            chat_redis_url_deinit(&url);
            return failf(err, errlen, "out of memory");
        }
        chat_redis_url_deinit(&cfg->redis);
        cfg->redis = url;
        return 0;
    }
    case OPT_NODE:
        if (len == 0 || len > NODE_ID_MAX)
            return failf(err, errlen, "%s: must be 1-%d characters", src, NODE_ID_MAX);
        for (size_t i = 0; i < len; i++) {
            if (!is_node_char(v[i]))
                return failf(err, errlen, "%s: only A-Z a-z 0-9 _ . - are allowed", src);
        }
        break;
    case OPT_SECRET:
        if (len < CHAT_JWT_SECRET_MIN)
            return failf(err, errlen, "%s: must be at least %d bytes", src, CHAT_JWT_SECRET_MIN);
        break;
    case OPT_PREFIX:
        if (len > PREFIX_MAX)
            return failf(err, errlen, "%s: must be at most %d characters", src, PREFIX_MAX);
        for (size_t i = 0; i < len; i++) {
            if (v[i] <= ' ' || v[i] >= 0x7f)
                return failf(err, errlen, "%s: only printable characters without spaces", src);
        }
        break;
    case OPT_STRING:
        if (len == 0)
            return failf(err, errlen, "%s: must not be empty", src);
        break;
    case OPT_KEY:
        return set_key(cfg, slot, src, v, err, errlen);
    case OPT_CLAIM:
        if (len == 0 || len > CLAIM_MAX)
            return failf(err, errlen, "%s: must be 1-%d characters", src, CLAIM_MAX);
        for (size_t i = 0; i < len; i++) {
            if (v[i] <= ' ' || v[i] >= 0x7f)
                return failf(err, errlen, "%s: only printable characters without spaces", src);
        }
        break;
    case OPT_HELP:
    case OPT_VERSION:
        return 0;
    }
    if (set_string(slot, v) < 0)
        return failf(err, errlen, "out of memory");
    return 0;
}

static const struct opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

/*
 * Walks argv: values[i] gets the last value given for opts[i] (borrowed from
 * argv; "1" for boolean flags).  0, or -1 with err filled.
 */
static int scan_argv(int argc, char **argv, const char **values, bool *help, bool *version,
                     char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            *help = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
            return failf(err, errlen, "unexpected argument '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find_opt(name, nlen);
        if (!o)
            return failf(err, errlen, "unknown option --%.*s", (int)nlen, name);
        const char *value;
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION) {
            if (eq)
                return failf(err, errlen, "--%s takes no value", o->flag);
            *(o->kind == OPT_HELP ? help : version) = true;
            continue;
        } else if (o->kind == OPT_BOOL) {
            if (eq)
                return failf(err, errlen, "--%s takes no value", o->flag);
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return failf(err, errlen, "--%s: missing value", o->flag);
        }
        values[o - opts] = value;
    }
    return 0;
}

void chat_config_deinit(struct chat_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NOPTS; i++) {
        switch (opts[i].kind) {
        case OPT_STRING:
        case OPT_REDIS:
        case OPT_NODE:
        case OPT_SECRET:
        case OPT_PREFIX:
        case OPT_KEY:
        case OPT_CLAIM: {
            char **slot = (char **)((char *)cfg + opts[i].offset);
            if (opts[i].kind == OPT_SECRET && *slot) {
                volatile char *p = *slot;
                while (*p)
                    *p++ = '\0';
            }
            free(*slot);
            *slot = NULL;
            break;
        }
        default:
            break;
        }
    }
    free(cfg->jwt_public_key_pem);
    cfg->jwt_public_key_pem = NULL;
    chat_redis_url_deinit(&cfg->redis);
}

/* Defaults, then the environment, then flags, then the checks that span
 * options, in that order in one place (long, but the order is the contract). */
int chat_config_load(struct chat_config *cfg, int argc, char **argv, FILE *out, char *err,
                     size_t errlen)
{
    const char *values[NOPTS] = {0};
    bool help = false, version = false;
    char flag[64];

    if (err && errlen)
        err[0] = '\0';
    if (!cfg)
        return failf(err, errlen, "no config");
    memset(cfg, 0, sizeof(*cfg));

    if (scan_argv(argc, argv, values, &help, &version, err, errlen) < 0)
        goto fail;
    if (help) {
        chat_config_usage(out ? out : stdout);
        return CHAT_CONFIG_HELP;
    }
    /* Through the --help path: main() exits 0 on CHAT_CONFIG_HELP. */
    if (version) {
        fprintf(out ? out : stdout, "chat-gateway %s\n", chat_config_version());
        return CHAT_CONFIG_HELP;
    }

    /* Per option: the flag, else the environment, else the default.  An
     * empty environment variable counts as unset (compose files love them). */
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        const char *v = values[i];
        const char *src = flag;
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        if (!v && o->env) {
            v = getenv(o->env);
            if (v && !v[0])
                v = NULL;
            src = o->env;
        }
        /* The default goes in first, so a partial value ("--rate 50")
         * keeps the default of the part it leaves out. */
        if (o->def && set_option(cfg, o, "default", o->def, err, errlen) < 0)
            goto fail;
        if (v && set_option(cfg, o, src, v, err, errlen) < 0)
            goto fail;
    }

    if (!cfg->node_id && !(cfg->node_id = default_node_id())) {
        failf(err, errlen, "out of memory");
        goto fail;
    }
    if (!cfg->static_dir && set_string(&cfg->static_dir, default_static_dir()) < 0) {
        failf(err, errlen, "out of memory");
        goto fail;
    }
    if (!cfg->jwt_secret) {
        if (!cfg->dev) {
            failf(err, errlen,
                  "no --jwt-secret (or CHAT_JWT_SECRET) given; use --dev for a random "
                  "development key");
            goto fail;
        }
        cfg->jwt_secret = malloc(2 * CHAT_JWT_SECRET_MIN + 1);
        if (!cfg->jwt_secret || chat_random_hex(cfg->jwt_secret, CHAT_JWT_SECRET_MIN) < 0) {
            failf(err, errlen, "cannot generate a development JWT key");
            goto fail;
        }
        cfg->jwt_secret_generated = true;
    }
    /* Issuer, audience and claim names only apply to public-key tokens:
     * without a key they would silently check nothing. */
    if (!cfg->jwt_public_key &&
        (cfg->jwt_issuer || cfg->jwt_audience || strcmp(cfg->jwt_claim_id, "sub") != 0 ||
         strcmp(cfg->jwt_claim_name, "name") != 0)) {
        failf(err, errlen,
              "--jwt-issuer, --jwt-audience and --jwt-claim-* apply to tokens checked with "
              "--jwt-public-key, and none is given");
        goto fail;
    }
    /* Everything the verifier will check, checked once now. */
    struct chat_token_verifier *verifier = NULL;
    char why[256];
    if (chat_config_token_verifier(cfg, &verifier, why, sizeof(why)) < 0) {
        failf(err, errlen, "JWT settings: %s", why);
        goto fail;
    }
    chat_token_verifier_free(verifier);
    return CHAT_CONFIG_OK;

fail:
    chat_config_deinit(cfg);
    memset(cfg, 0, sizeof(*cfg));
    return CHAT_CONFIG_ERROR;
}

void chat_config_usage(FILE *out)
{
    if (!out)
        out = stdout;
    fprintf(out, "Usage: chat-gateway [options]\n\n"
                 "Every option can also be set by its environment variable; flags win.\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        const struct opt *o = &opts[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->flag, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-26s %s\n", left, o->help);
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION)
            continue;
        const char *def = o->shown ? o->shown : o->def;
        if (o->kind == OPT_STRING && !def)
            def = default_static_dir();
        fprintf(out, "  %-26s env %s, default %s\n", "", o->env, def ? def : "none");
    }
}

const char *chat_config_version(void)
{
    return CHAT_VERSION " (commit " CHAT_GIT_COMMIT ")";
}

int chat_config_token_verifier(const struct chat_config *cfg, struct chat_token_verifier **out,
                               char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!cfg)
        return failf(err, errlen, "no config");
    struct chat_token_verifier_options vopts = {
        .secret = cfg->jwt_secret,
        .secret_len = cfg->jwt_secret ? strlen(cfg->jwt_secret) : 0,
        .public_key_pem = cfg->jwt_public_key_pem,
        .public_key_len = cfg->jwt_public_key_pem ? strlen(cfg->jwt_public_key_pem) : 0,
        .issuer = cfg->jwt_issuer,
        .audience = cfg->jwt_audience,
        .claim_id = cfg->jwt_claim_id,
        .claim_name = cfg->jwt_claim_name,
    };
    return chat_token_verifier_new(&vopts, out, err, errlen);
}
