#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_LINE_MAX 4096

/* The one mutable global of this module: set once by main() before any event
 * loop runs (see log.h). */
static enum chat_log_level g_level = CHAT_LOG_INFO;

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

    fprintf(stderr, "%s.%03ldZ level=%s msg=%s\n", stamp, ts.tv_nsec / 1000000L, level_names[level],
            msg);
}
