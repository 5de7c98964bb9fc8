#ifndef CHAT_LOG_H
#define CHAT_LOG_H

/*
 * Leveled logging to stderr: one line per event, "ts level msg key=value ...",
 * or the same fields as one JSON object per line.  The level and the format are
 * process-wide and set once at startup by main(); they are the only mutable
 * globals of this module.  Never pass a token or a message body.
 */

enum chat_log_level { CHAT_LOG_ERROR = 0, CHAT_LOG_WARN, CHAT_LOG_INFO, CHAT_LOG_DEBUG };
enum chat_log_format { CHAT_LOG_FORMAT_TEXT = 0, CHAT_LOG_FORMAT_JSON };

void chat_log_set_format(enum chat_log_format format);

/* Parses "text" or "json" (case-insensitive).  0 or -1. */
int chat_log_format_parse(const char *name, enum chat_log_format *out);

void chat_log_set_level(enum chat_log_level level);
enum chat_log_level chat_log_get_level(void);

/* Parses "error", "warn", "info", "debug" (case-insensitive).  0 or -1. */
int chat_log_level_parse(const char *name, enum chat_log_level *out);

/* Writes one line if level is enabled.  fmt is the rest of the line, usually
 * "event key=value key=\"quoted value\""; a trailing newline is added.  In
 * JSON the event is "msg" and each key=value a member (digits as numbers);
 * text that does not parse as key=value goes to "text". */
void chat_log(enum chat_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define chat_log_enabled(level) ((level) <= chat_log_get_level())

#endif
