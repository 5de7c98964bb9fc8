#ifndef CHAT_LOG_H
#define CHAT_LOG_H

/*
 * Leveled logging to stderr: one line per event, "ts level msg key=value ...".
 * The level is process-wide and set once at startup by main(); that is the
 * only mutable global of this module.  Never pass a token or a message body.
 */

enum chat_log_level { CHAT_LOG_ERROR = 0, CHAT_LOG_WARN, CHAT_LOG_INFO, CHAT_LOG_DEBUG };

void chat_log_set_level(enum chat_log_level level);
enum chat_log_level chat_log_get_level(void);

/* Parses "error", "warn", "info", "debug" (case-insensitive).  0 or -1. */
int chat_log_level_parse(const char *name, enum chat_log_level *out);

/* Writes one line if level is enabled.  fmt is the rest of the line, usually
 * "event key=value key=value"; a trailing newline is added. */
void chat_log(enum chat_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define chat_log_enabled(level) ((level) <= chat_log_get_level())

#endif
