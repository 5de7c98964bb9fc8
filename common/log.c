#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_LINE_MAX 4096

/* The mutable globals of this module: set once by main() before any event
 * loop runs (see log.h). */
static enum chat_log_level g_level = CHAT_LOG_INFO;
static enum chat_log_format g_format = CHAT_LOG_FORMAT_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void chat_log_set_level(enum chat_log_level level)
{
    if ((unsigned)level > CHAT_LOG_DEBUG)
        level = CHAT_LOG_DEBUG;
    g_level = level;
}

enum chat_log_level chat_log_get_level(void)
{
    return g_level;
}

int chat_log_level_parse(const char *name, enum chat_log_level *out)
{
    if (!name || !out)
        return -1;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum chat_log_level)i;
            return 0;
        }
    }
    /* "warning" is what people type as often as "warn". */
    if (strcasecmp(name, "warning") == 0) {
        *out = CHAT_LOG_WARN;
        return 0;
    }
    return -1;
}

void chat_log_set_format(enum chat_log_format format)
{
    g_format = format == CHAT_LOG_FORMAT_JSON ? CHAT_LOG_FORMAT_JSON : CHAT_LOG_FORMAT_TEXT;
}

int chat_log_format_parse(const char *name, enum chat_log_format *out)
{
    if (!name || !out)
        return -1;
    if (strcasecmp(name, "text") == 0)
        *out = CHAT_LOG_FORMAT_TEXT;
    else if (strcasecmp(name, "json") == 0)
        *out = CHAT_LOG_FORMAT_JSON;
    else
        return -1;
    return 0;
}

/* Length of "key" when p starts with "key=", else 0. */
static size_t key_at(const char *p)
{
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_')
        n++;
    return n > 0 && p[n] == '=' ? n : 0;
}

/* A peer's bytes need not be UTF-8, and jansson refuses what is not: those
 * values keep their ASCII and lose the rest to '?'. */
static json_t *log_string(const char *s, size_t n)
{
    json_t *v = json_stringn(s, n);
    if (v)
        return v;
    char *ascii = strndup(s, n);
    if (!ascii)
        return NULL;
    for (char *p = ascii; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(ascii);
    free(ascii);
    return v;
}

static json_t *log_value(const char *s, size_t n)
{
    bool digits = n > 0 && n <= 18;
    for (size_t i = 0; digits && i < n; i++)
        digits = s[i] >= '0' && s[i] <= '9';
    if (digits && (n == 1 || s[0] != '0'))
        return json_integer(strtoll(s, NULL, 10));
    return log_string(s, n);
}

static void add_member(json_t *obj, const char *key, size_t klen, json_t *value)
{
    char name[64];
    if (!value)
        return;
    snprintf(name, sizeof(name), "%.*s", (int)(klen < sizeof(name) ? klen : sizeof(name) - 1), key);
    if (json_object_get(obj, name)) /* the first wins: ts, level and msg stay ours */
        json_decref(value);
    else
        json_object_set_new(obj, name, value);
}

/* msg is "event key=value key=\"value with spaces\" ...". A quoted value ends
 * at the quote followed by the end or by " key=", so a quote inside it (from a
 * peer) does not end it early. */
static void write_json(const char *stamp, const char *level, const char *msg)
{
    json_t *obj = json_object();
    if (!obj)
        return;
    json_object_set_new(obj, "ts", json_string(stamp));
    json_object_set_new(obj, "level", json_string(level));
    size_t elen = strcspn(msg, " ");
    add_member(obj, "msg", 3, log_string(msg, elen));
    const char *p = msg + elen;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t klen = key_at(p);
        if (!klen) {
            add_member(obj, "text", 4, log_string(p, strlen(p)));
            break;
        }
        const char *v = p + klen + 1;
        if (*v == '"') {
            const char *end = NULL;
            for (const char *q = strchr(v + 1, '"'); q; q = strchr(q + 1, '"')) {
                if (q[1] == '\0' || (q[1] == ' ' && key_at(q + 2))) {
                    end = q;
                    break;
                }
            }
            size_t vlen = end ? (size_t)(end - v - 1) : strlen(v + 1);
            add_member(obj, p, klen, log_string(v + 1, vlen));
            p = end ? end + 1 : v + 1 + vlen;
        } else {
            size_t vlen = strcspn(v, " ");
            add_member(obj, p, klen, log_value(v, vlen));
            p = v + vlen;
        }
    }
    char *line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (line) {
        fprintf(stderr, "%s\n", line);
        free(line);
    }
}

void chat_log(enum chat_log_level level, const char *fmt, ...)
{
    if ((unsigned)level > CHAT_LOG_DEBUG || !chat_log_enabled(level))
        return;

    struct timespec ts;
    struct tm tm;
    char stamp[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
    } else if ((size_t)n >= sizeof(msg)) {
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    }
    /* A value that came from a peer must not be able to forge a second log
     * line or hide itself with terminal escapes: control bytes become '?'. */
    for (char *p = msg; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            *p = '?';
    }

    char when[64];
    snprintf(when, sizeof(when), "%s.%03ldZ", stamp, ts.tv_nsec / 1000000L);
    if (g_format == CHAT_LOG_FORMAT_JSON)
        write_json(when, level_names[level], msg);
    else
        fprintf(stderr, "%s level=%s msg=%s\n", when, level_names[level], msg);
}
