#include "config.h"
#include "config_internal.h"
#include "protocol.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

#define OFF(field) offsetof(struct chat_config, field)

/* The one table: parsing, environment lookup and --help all walk it. */
static const struct opt opts[] = {
    {"port", "CHAT_PORT", "N", OPT_INT, OFF(port), 0, 65535, "8080", NULL,
     "HTTP + WebSocket port, 0-65535 (0: any free port)"},
    {"bind", "CHAT_BIND", "ADDR", OPT_STRING, OFF(bind), 0, 0, "0.0.0.0", NULL, "listen address"},
    {"redis", "CHAT_REDIS_URL", "URL", OPT_REDIS, OFF(redis_url_text), 0, 0,
     "redis://127.0.0.1:6379/0", NULL,
     "Redis server, redis://[[user]:password@]host:port[/db], or a Redis Cluster: "
     "redis-cluster://[[user]:password@]host:port[,host:port...] (seed nodes), or a master "
     "found through Sentinel: redis-sentinel://[[user]:password@]host:port[,host:port...]/name"},
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
    {"log-format", "CHAT_LOG_FORMAT", "FORMAT", OPT_LOG_FORMAT, OFF(log_format), 0, 0, "text", NULL,
     "text (key=value) or json (one object per line)"},
    {"echo", "CHAT_ECHO", NULL, OPT_BOOL, OFF(echo), 0, 0, "0", "off",
     "enable the unauthenticated /echo WebSocket endpoint"},
    {"ping-interval", "CHAT_PING_INTERVAL", "SEC", OPT_INT, OFF(ping_interval), 1, 3600, "25", NULL,
     "seconds between server pings, 1-3600"},
    {"idle-timeout", "CHAT_IDLE_TIMEOUT", "SEC", OPT_INT, OFF(idle_timeout), 1, 86400, "60", NULL,
     "close a connection silent for this many seconds, 1-86400"},
    {"presence-ttl", "CHAT_PRESENCE_TTL", "SEC", OPT_INT, OFF(presence_ttl), 3, 3600, "30", NULL,
     "seconds a member/online entry lives unless refreshed, 3-3600"},
    {"presence-batch", "CHAT_PRESENCE_BATCH", "MS", OPT_INT, OFF(presence_batch), 50, 10000, "500",
     NULL,
     "milliseconds over which online/offline changes are coalesced into one presence_batch "
     "frame per connection (clients that ask for it: /ws?presence=batch), 50-10000"},
    {"presence-budget", "CHAT_PRESENCE_BUDGET", "N", OPT_INT, OFF(presence_budget), 100, 10000000,
     "5000", NULL,
     "presence_batch frames per second per node at most: with more opted-in clients than "
     "N x interval, the interval grows to clients / N seconds, 100-10000000"},
    {"drain-timeout", "CHAT_DRAIN_TIMEOUT", "SEC", OPT_INT, OFF(drain_timeout), 1, 600, "10", NULL,
     "seconds to drain connections on SIGTERM/SIGINT, 1-600"},
    {"drain-grace", "CHAT_DRAIN_GRACE", "SEC", OPT_INT, OFF(drain_grace), 0, 60, "3", NULL,
     "on SIGTERM/SIGINT, seconds of /healthz 503 before sockets close (load balancer), 0-60"},
    {"trusted-proxies", "CHAT_TRUSTED_PROXIES", "LIST", OPT_STRING, OFF(trusted_proxies), 0, 0,
     NULL, "none",
     "addresses or networks (a/bits) whose PROXY v2 header names the client; from others "
     "such a header is refused"},
    {"max-rooms", "CHAT_MAX_ROOMS", "N", OPT_INT, OFF(max_rooms), 0, 100000000, "10000", NULL,
     "rooms there may be, cluster-wide (error limit past it), 0 for no cap"},
    {"room-create-rate", "CHAT_ROOM_CREATE_RATE", "N", OPT_INT, OFF(room_create_rate), 0, 1000000,
     "10", NULL, "rooms one user may create per hour, 0 for no quota"},
    {"large-message-rate", "CHAT_LARGE_MESSAGE_RATE", "BYTES", OPT_INT, OFF(large_message_rate),
     1024, 1073741824, "1048576", NULL,
     "bytes per second the node reads of messages over 64 KiB (images), all connections "
     "together, first come first served; the others wait, unread"},
    {"room-ttl", "CHAT_ROOM_TTL", "SEC", OPT_INT, OFF(room_ttl), 0, 315360000, "2592000", NULL,
     "a room with nobody in it and no message for this long is deleted (not the default "
     "rooms), 0 to keep rooms forever"},
    {"metrics-bind", "CHAT_METRICS_BIND", "ADDR:PORT", OPT_STRING, OFF(metrics_bind), 0, 0, NULL,
     "off", "serve /metrics (and /healthz) on this address only, not on --port (IPv6 in [ ])"},
    {"redis-timeout", "CHAT_REDIS_TIMEOUT", "SEC", OPT_INT, OFF(redis_timeout), 1, 60, "2", NULL,
     "a Redis command or connect not answered this long, with no other reply coming on that "
     "connection, marks Redis down (requests get unavailable, /healthz 503), 1-60"},
    {"durability", "CHAT_DURABILITY", "MODE", OPT_DURABILITY, OFF(durability_replica), 0, 0,
     "primary", NULL,
     "primary: a message is acked once Redis has it; replica: only once WAIT confirms a "
     "replica has it too (else error unavailable, and the client resends the same id)"},
    {"durability-timeout", "CHAT_DURABILITY_TIMEOUT", "MS", OPT_INT, OFF(durability_timeout), 10,
     60000, "1000", NULL, "how long --durability replica waits for a replica, 10-60000"},
    {"header-timeout", "CHAT_HEADER_TIMEOUT", "SEC", OPT_INT, OFF(header_timeout), 1, 600, "10",
     NULL, "an HTTP request header not complete this long after its first byte gets 408, 1-600"},
    {"max-connections", "CHAT_MAX_CONNECTIONS", "N", OPT_INT, OFF(max_connections), 0, 10000000,
     "0", "from RLIMIT_NOFILE",
     "open connections past which new ones get 503 (0: the descriptor limit less a reserve)"},
    {"max-conns-per-ip", "CHAT_MAX_CONNS_PER_IP", "N", OPT_INT, OFF(max_conns_per_ip), 0, 10000000,
     "256", NULL, "open connections per client address, 0 for no limit"},
    {"login-rate", "CHAT_LOGIN_RATE", "N", OPT_INT, OFF(login_rate), 0, 1000000, "60", NULL,
     "logins per minute per client address (429 past it), 0 for no limit"},
    {"write-delay", "CHAT_WRITE_DELAY", "MS", OPT_INT, OFF(write_delay), 0, 1000, "0", NULL,
     "hold WebSocket output up to this long after its first frame so that the frames that "
     "follow share one write, and wake the event loop at most every quarter of it (25 ms "
     "at most): less CPU per delivery, that much more latency, 0-1000"},
    {"deflate", "CHAT_DEFLATE", "on|off", OPT_SWITCH, OFF(deflate), 0, 0, "on", NULL,
     "permessage-deflate (RFC 7692) on /ws and /echo when the client offers it"},
    {"deflate-min", "CHAT_DEFLATE_MIN", "BYTES", OPT_SIZE, OFF(deflate_min), 0, 67108864, "128",
     NULL, "messages shorter than this go out uncompressed even when deflate was negotiated"},
    {"deflate-client-context", "CHAT_DEFLATE_CLIENT_CONTEXT", "on|off", OPT_SWITCH,
     OFF(deflate_client_context), 0, 0, "off", NULL,
     "let clients keep their compression window between messages (off: the answer asks for "
     "client_no_context_takeover; on: ~40 KiB of inflate state per connection that sends "
     "compressed messages)"},
    {"help", NULL, NULL, OPT_HELP, 0, 0, 0, NULL, NULL, "print this help and exit (also -h)"},
    {"version", NULL, NULL, OPT_VERSION, 0, 0, 0, NULL, NULL,
     "print the version and the git commit and exit"},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

int chat_config_failf(char *err, size_t errlen, const char *fmt, ...)
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
        id[h] = chat_config_is_node_char(host[h]) ? host[h] : '-';
    memcpy(id + h, pid, (size_t)plen + 1);
    return strdup(id);
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
            return chat_config_failf(err, errlen, "unexpected argument '%s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = find_opt(name, nlen);
        if (!o)
            return chat_config_failf(err, errlen, "unknown option --%.*s", (int)nlen, name);
        const char *value;
        if (o->kind == OPT_HELP || o->kind == OPT_VERSION) {
            if (eq)
                return chat_config_failf(err, errlen, "--%s takes no value", o->flag);
            *(o->kind == OPT_HELP ? help : version) = true;
            continue;
        } else if (o->kind == OPT_BOOL) {
            if (eq)
                return chat_config_failf(err, errlen, "--%s takes no value", o->flag);
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return chat_config_failf(err, errlen, "--%s: missing value", o->flag);
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
        return chat_config_failf(err, errlen, "no config");
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
        if (o->def && chat_config_set_option(cfg, o, "default", o->def, err, errlen) < 0)
            goto fail;
        if (v && chat_config_set_option(cfg, o, src, v, err, errlen) < 0)
            goto fail;
    }

    if (!cfg->node_id && !(cfg->node_id = default_node_id())) {
        chat_config_failf(err, errlen, "out of memory");
        goto fail;
    }
    if (!cfg->static_dir && chat_config_set_string(&cfg->static_dir, default_static_dir()) < 0) {
        chat_config_failf(err, errlen, "out of memory");
        goto fail;
    }
    if (!cfg->jwt_secret) {
        if (!cfg->dev) {
            chat_config_failf(err, errlen,
                              "no --jwt-secret (or CHAT_JWT_SECRET) given; use --dev for a random "
                              "development key");
            goto fail;
        }
        cfg->jwt_secret = malloc(2 * CHAT_JWT_SECRET_MIN + 1);
        if (!cfg->jwt_secret || chat_random_hex(cfg->jwt_secret, CHAT_JWT_SECRET_MIN) < 0) {
            chat_config_failf(err, errlen, "cannot generate a development JWT key");
            goto fail;
        }
        cfg->jwt_secret_generated = true;
    }
    /* Issuer, audience and claim names only apply to public-key tokens:
     * without a key they would silently check nothing. */
    if (!cfg->jwt_public_key &&
        (cfg->jwt_issuer || cfg->jwt_audience || strcmp(cfg->jwt_claim_id, "sub") != 0 ||
         strcmp(cfg->jwt_claim_name, "name") != 0)) {
        chat_config_failf(
            err, errlen,
            "--jwt-issuer, --jwt-audience and --jwt-claim-* apply to tokens checked with "
            "--jwt-public-key, and none is given");
        goto fail;
    }
    /* Everything the verifier will check, checked once now. */
    struct chat_token_verifier *verifier = NULL;
    char why[256];
    if (chat_config_token_verifier(cfg, &verifier, why, sizeof(why)) < 0) {
        chat_config_failf(err, errlen, "JWT settings: %s", why);
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
        return chat_config_failf(err, errlen, "no config");
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
