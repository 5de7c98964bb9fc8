#ifndef CHAT_CONFIG_INTERNAL_H
#define CHAT_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/*
 * The options table's types, shared by config.c (the table, the load order,
 * defaults, --help), config_value.c (one value of an option: checked,
 * parsed, stored) and config_redis.c (the Redis URL).
 */

#define NODE_ID_MAX 64

/* How a value is parsed and where it goes. */
enum opt_kind {
    OPT_INT,        /* int in min..max */
    OPT_SIZE,       /* size_t in min..max */
    OPT_STRING,     /* non-empty string */
    OPT_BOOL,       /* flag without value; env 1/0, true/false, yes/no, on/off */
    OPT_SWITCH,     /* bool that takes a value, on/off (or as OPT_BOOL's env): default on */
    OPT_RATE,       /* "R/B" into rate and burst */
    OPT_LEVEL,      /* log level name */
    OPT_LOG_FORMAT, /* text or json */
    OPT_DURABILITY, /* primary or replica, into a bool (replica) */
    OPT_REDIS,      /* redis URL into redis_url_text and redis */
    OPT_NODE,       /* node id */
    OPT_SECRET,     /* JWT secret, at least CHAT_JWT_SECRET_MIN bytes */
    OPT_PREFIX,     /* Redis key prefix */
    OPT_KEY,        /* PEM public key file: path into the slot, contents into jwt_public_key_pem */
    OPT_CLAIM,      /* JWT claim name */
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

/* Fills err (when given) and returns -1. */
int chat_config_failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- config_value.c ---- */

/* A decimal integer, all of text (no sign '+', no leading space); 0 or -1. */
int chat_config_parse_ll(const char *text, long long *out);
/* Replaces *slot with a copy of value; -1 when out of memory. */
int chat_config_set_string(char **slot, const char *value);
/* A character of a node id: A-Z a-z 0-9 _ . - */
bool chat_config_is_node_char(char c);
/* Applies one value from `src` ("--port", "CHAT_PORT" or "default"); 0, or
 * -1 with err filled. */
int chat_config_set_option(struct chat_config *cfg, const struct opt *o, const char *src,
                           const char *v, char *err, size_t errlen);

#endif
