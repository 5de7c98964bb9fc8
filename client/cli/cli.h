#ifndef CHAT_CLI_H
#define CHAT_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * chat-cli internals: main.c parses options and logs in, cli.c runs the
 * connection and the command loop, render.c turns server frames into
 * readable lines.
 */

typedef struct json_t json_t; /* jansson */

#define CLI_DEFAULT_URL "ws://127.0.0.1:8080/ws"
#define CLI_DEFAULT_ROOM "general"

/* Exit statuses. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1 /* connection or login failure, or the server closed on us */
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_KICKED 3 /* an operator kicked us (close 4003): not a failure to retry */

struct cli_options {
    const char *url;      /* ws://host:port/path */
    const char *token;    /* JWT sent as Authorization: Bearer */
    const char *room;     /* joined at start, a valid room name */
    bool json;            /* raw frames in and out */
    bool presence_events; /* PROTOCOL.md's online/offline frames, not presence_batch */
};

/* Connects, joins opts->room and runs until /quit, EOF on stdin, a signal
 * or the server closing.  Returns the exit status. */
int cli_run(const struct cli_options *opts);

/*
 * Writes len bytes of untrusted text so that no byte can act on the
 * terminal: C0 and C1 controls, DEL, bidirectional overrides, line
 * separators and invalid UTF-8 come out as \xNN or \u{NNNN}.  With
 * multiline, '\n' starts an indented continuation line and '\t' is kept.
 */
void cli_escape(FILE *out, const char *s, size_t len, bool multiline);

/* Prints one server frame as zero or more readable lines (acks and typing
 * notices print nothing).  self_id (may be NULL) tells our own private
 * messages apart. */
void cli_render_frame(FILE *out, const json_t *frame, const char *self_id);

/* Prints a raw frame as exactly one line for --json: line breaks and other
 * control bytes (only possible outside JSON strings, or in a frame that is
 * not JSON) become spaces or \u00NN escapes. */
void cli_render_raw(FILE *out, const char *data, size_t len);

#endif
