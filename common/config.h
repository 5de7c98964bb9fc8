#ifndef CHAT_CONFIG_H
#define CHAT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

/*
 * The gateway configuration: every option has a flag and a CHAT_* environment
 * variable (flags win).  Filled once by chat_config_load(), validated there,
 * read-only afterwards.  The --help text is generated from the same table.
 *
 * Strings are owned by the struct and released by chat_config_deinit().
 */

#define CHAT_JWT_SECRET_MIN 32

/* A Redis Cluster seed node (redis-cluster://). */
struct chat_redis_seed {
    char *host;
    int port;
};

struct chat_redis_url {
    char *host;     /* "127.0.0.1" (the first seed of a cluster) */
    int port;       /* 6379 */
    char *user;     /* NULL when absent */
    char *password; /* NULL when absent */
    int db;         /* 0 */
    bool cluster;   /* redis-cluster://: host:port is one of the seeds below */
    bool sentinel;  /* redis-sentinel://: the seeds are sentinels, host:port the first */
    size_t nseeds;  /* cluster, sentinel: 1 or more */
    struct chat_redis_seed *seeds;
    char *master_name; /* sentinel: the name the sentinels monitor the master by */
};

struct chat_config {
    int port;                    /* --port, CHAT_PORT, 8080, 1..65535 (0 allowed: ephemeral) */
    char *bind;                  /* --bind, CHAT_BIND, "0.0.0.0" */
    char *redis_url_text;        /* --redis, CHAT_REDIS_URL as given */
    struct chat_redis_url redis; /* parsed from redis_url_text */
    char *node_id;               /* --node-id, CHAT_NODE_ID, default "<hostname>-<pid>";
                                    1-64 of [A-Za-z0-9_.-] */
    char *jwt_secret;            /* --jwt-secret, CHAT_JWT_SECRET; >= 32 bytes.  With --dev and
                                    no secret: 32 random bytes hex-encoded (64 chars), and
                                    jwt_secret_generated is set so main() can warn */
    bool jwt_secret_generated;
    char *jwt_public_key;          /* --jwt-public-key, CHAT_JWT_PUBLIC_KEY: path of an identity
                                      provider's PEM public key or certificate, NULL = none; an RSA
                                      key accepts RS256 tokens, an EC P-256 key ES256 */
    char *jwt_public_key_pem;      /* its contents, read and checked by chat_config_load */
    char *jwt_issuer;              /* --jwt-issuer, CHAT_JWT_ISSUER, NULL = not checked */
    char *jwt_audience;            /* --jwt-audience, CHAT_JWT_AUDIENCE, NULL = not checked */
    char *jwt_claim_id;            /* --jwt-claim-id, CHAT_JWT_CLAIM_ID, "sub" */
    char *jwt_claim_name;          /* --jwt-claim-name, CHAT_JWT_CLAIM_NAME, "name"; the last four
                                      apply to public-key tokens only, so they need jwt_public_key */
    bool dev;                      /* --dev, CHAT_DEV ("1"/"true"/"yes"), off */
    char *static_dir;              /* --static-dir, CHAT_STATIC_DIR, default CHAT_DEFAULT_STATIC_DIR
                                      (compile-time define, falls back to "client/web") */
    char *origins;                 /* --origins, CHAT_ORIGINS, NULL = same host as the request;
                                      "*" = any; else comma list of origins */
    int history;                   /* --history, CHAT_HISTORY, 200, 1..100000 */
    size_t max_message;            /* --max-message, CHAT_MAX_MESSAGE, 1048576, 128..67108864 */
    double rate;                   /* --rate, CHAT_RATE "R/B": frames per second, 10 */
    int burst;                     /*   ... burst, 20; R > 0, B >= 1 */
    char *prefix;                  /* --prefix, CHAT_PREFIX, "chat:"; 0-64 printable, no spaces */
    enum chat_log_level log_level; /* --log-level, CHAT_LOG_LEVEL, info */
    enum chat_log_format log_format; /* --log-format, CHAT_LOG_FORMAT, text */
    bool echo;                       /* --echo, CHAT_ECHO, off: enables /echo (no auth) */
    int ping_interval;               /* --ping-interval, CHAT_PING_INTERVAL, 25 s, 1..3600 */
    int idle_timeout;                /* --idle-timeout, CHAT_IDLE_TIMEOUT, 60 s, 1..86400 */
    int presence_ttl;                /* --presence-ttl, CHAT_PRESENCE_TTL, 30 s, 3..3600: how long a
                                        member/online entry lives unless refreshed */
    int presence_batch;              /* --presence-batch, CHAT_PRESENCE_BATCH, 500 ms, 50..10000:
                                        online/offline coalescing interval for clients that
                                        opted in to presence_batch */
    int presence_budget;             /* --presence-budget, CHAT_PRESENCE_BUDGET, 5000 frames/s,
                                        100..10000000: the interval stretches past
                                        --presence-batch to keep below it */
    int drain_timeout;               /* --drain-timeout, CHAT_DRAIN_TIMEOUT, 10 s, 1..600 */
    int drain_grace;             /* --drain-grace, CHAT_DRAIN_GRACE, 3 s, 0..60: /healthz says 503
                                    this long before sockets close, so the load balancer
                                    takes the node out of rotation first */
    char *trusted_proxies;       /* --trusted-proxies, CHAT_TRUSTED_PROXIES, NULL: none */
    int max_rooms;               /* --max-rooms, CHAT_MAX_ROOMS, 10000, 0: no cap */
    int room_create_rate;        /* --room-create-rate, CHAT_ROOM_CREATE_RATE, 10 per hour */
    int large_message_rate;      /* --large-message-rate, bytes/s node-wide past 64 KiB a message */
    int room_ttl;                /* --room-ttl, CHAT_ROOM_TTL, 30 days, 0: forever */
    char *metrics_bind;          /* --metrics-bind, CHAT_METRICS_BIND, NULL: /metrics on --port */
    int redis_timeout;           /* --redis-timeout, CHAT_REDIS_TIMEOUT, 2 s, 1..60 */
    bool durability_replica;     /* --durability, CHAT_DURABILITY: primary (false, default) or
                                    replica: a message is acked once WAIT 1 confirms a replica */
    int durability_timeout;      /* --durability-timeout, CHAT_DURABILITY_TIMEOUT, 1000 ms,
                                    10..60000: WAIT's timeout, then error unavailable */
    int header_timeout;          /* --header-timeout, CHAT_HEADER_TIMEOUT, 10 s: 408 after */
    int max_connections;         /* --max-connections, CHAT_MAX_CONNECTIONS, 0: from the
                                    descriptor limit (the gateway computes it) */
    int max_conns_per_ip;        /* --max-conns-per-ip, CHAT_MAX_CONNS_PER_IP, 256, 0: none */
    int login_rate;              /* --login-rate, CHAT_LOGIN_RATE, 60 per minute, 0: none */
    int write_delay;             /* --write-delay, CHAT_WRITE_DELAY, 0 ms (write at the end of
                                    each loop turn), 0..1000: output waits to share a write */
    bool deflate;                /* --deflate on|off, CHAT_DEFLATE, on: permessage-deflate */
    size_t deflate_min;          /* --deflate-min, CHAT_DEFLATE_MIN, 128 bytes: shorter messages
                                    are sent uncompressed */
    bool deflate_client_context; /* --deflate-client-context on|off, CHAT_DEFLATE_CLIENT_CONTEXT,
                                    off: clients compress every message afresh */
};

/* chat_config_load() results */
#define CHAT_CONFIG_OK 0
/* --help or --version was given: usage or version printed to `out`, caller exits 0 */
#define CHAT_CONFIG_HELP 1
#define CHAT_CONFIG_ERROR -1 /* err holds a one-line reason, caller exits 2 */

/*
 * Fills cfg from defaults, then environment (getenv), then argv (flags win).
 * Flags accept both "--port 8080" and "--port=8080"; boolean flags take no
 * value.  Unknown flags, missing values and out-of-range values are errors.
 * `out` receives the --help text (may be stdout).  On error cfg holds nothing
 * that needs freeing (it is deinit'ed internally); on OK or HELP the caller
 * calls chat_config_deinit().
 */
int chat_config_load(struct chat_config *cfg, int argc, char **argv, FILE *out, char *err,
                     size_t errlen);

/* Frees the strings; safe on a zeroed struct and idempotent. */
void chat_config_deinit(struct chat_config *cfg);

/* Parses redis://[[user]:password@]host:port[/db] (port optional, 6379).
 * 0 or -1 (err filled).  On success the caller frees with chat_redis_url_deinit. */
int chat_redis_url_parse(const char *text, struct chat_redis_url *out, char *err, size_t errlen);
/* Also redis-cluster://[[user]:password@]host:port[,host:port...] (seed nodes of a
 * Redis Cluster, database 0 only): cluster set, seeds[] filled, host/port the first;
 * and redis-sentinel://[[user]:password@]host:port[,host:port...]/master-name (the
 * sentinels; the credentials are the master's): sentinel set, seeds[] and
 * master_name filled. */
void chat_redis_url_deinit(struct chat_redis_url *url);

/* Writes the --help text. */
void chat_config_usage(FILE *out);

/* "0.1.0 (commit 1a2b3c4)": the project version and the git commit of the
 * build ("unknown" outside a git checkout).  Static storage. */
const char *chat_config_version(void);

struct chat_token_verifier;

/*
 * Builds the token verifier cfg describes (secret, public key, issuer,
 * audience, claim names; see token.h).  cfg is borrowed only for the call.
 * 0 and *out (free with chat_token_verifier_free), or -1 with err filled.
 */
int chat_config_token_verifier(const struct chat_config *cfg, struct chat_token_verifier **out,
                               char *err, size_t errlen);

#endif
