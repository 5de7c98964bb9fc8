/*
 * The chat-cli session: one libchat_client connection, stdin read through a
 * libevent event on fd 0 (no threads, no readline), commands turned into
 * requests with ids c1, c2 ...
 *
 * Input is processed one line at a time and held back while the client
 * waits for something the next line may depend on: the welcome and the
 * initial join, or the user list a /msg needs to resolve a nickname.  The
 * gateway handles one connection's requests in order, so nothing else has
 * to wait.  Quitting sends a ping and waits for its pong before the close
 * handshake, so every request read before /quit or EOF has been answered.
 */
#include "cli.h"
#include "chat_client.h"
#include "protocol.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_ID_LEN 24
#define CLI_MAX_LINE ((size_t)16 << 20)       /* larger than any message the gateway takes */
#define CLI_MAX_PENDING_OUT ((size_t)1 << 20) /* stop reading stdin above this much unsent */
#define CLI_QUIT_WAIT_S 5                     /* for the pong before closing */
#define CLI_CLOSE_WAIT_S 8                    /* for the close handshake (the lib gives up at 5) */
#define CLI_THROTTLE_POLL_MS 20
#define CLI_WELCOME_WAIT_S 10
#define CLI_CLOSE_KICKED 4003 /* chat-admin kick (docs/protocol.md, close codes) */

struct cli {
    const struct cli_options *opts;
    struct event_base *base;
    struct chat_client *client;
    struct event *stdin_ev;
    struct event *deadline; /* welcome, quit and close deadlines */
    struct event *throttle; /* polls the output queue while stdin is paused */
    struct event *sig_int, *sig_term;
    struct evbuffer *in; /* stdin bytes not yet handled */
    json_t *users;       /* object: online user id -> name, for /msg */
    char *self_id;
    char room[CHAT_ROOM_MAX + 1]; /* current room, "" for none */
    int64_t room_seq;             /* the highest seq seen in it: what a resync resumes from */
    unsigned long next_id;
    char join_id[CLI_ID_LEN];    /* initial join in flight */
    char resolve_id[CLI_ID_LEN]; /* users request of a /msg in flight */
    char *resolve_to, *resolve_text;
    char barrier_id[CLI_ID_LEN]; /* ping sent on quit */
    bool welcomed, stdin_on, stdin_eof, skip_line, quitting, closing;
    int exit_code;
};

static void process_input(struct cli *cli);

static void stop(struct cli *cli, int code)
{
    cli->exit_code = code;
    event_base_loopexit(cli->base, NULL);
}

/* Local notices go to stdout in interactive mode; in --json mode stdout
 * carries frames only, so they go to stderr. */
static void notice(struct cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void notice(struct cli *cli, const char *fmt, ...)
{
    FILE *out = cli->opts->json ? stderr : stdout;
    va_list ap;

    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

/* ---- requests ---- */

/* Sends req (taken) with the next id, copied to id_out when not NULL.
 * 0 or -1. */
static int send_request(struct cli *cli, json_t *req, char *id_out)
{
    char id[CLI_ID_LEN];
    char *text = NULL;
    int rv = -1;

    snprintf(id, sizeof(id), "c%lu", ++cli->next_id);
    if (!req || json_object_set_new(req, "id", json_string(id)) != 0)
        goto out;
    text = json_dumps(req, JSON_COMPACT);
    if (!text || chat_client_send_text(cli->client, text, strlen(text)) != 0)
        goto out;
    if (id_out)
        memcpy(id_out, id, sizeof(id));
    rv = 0;
out:
    if (rv != 0)
        notice(cli, "! could not send the request");
    free(text);
    json_decref(req);
    return rv;
}

static bool id_is(const json_t *frame, const char *id)
{
    const char *got = json_string_value(json_object_get(frame, "id"));

    return id[0] && got && strcmp(got, id) == 0;
}

/* ---- user cache and /msg ---- */

static void users_set(struct cli *cli, const json_t *list)
{
    const json_t *u;
    size_t i;

    json_object_clear(cli->users);
    json_array_foreach(list, i, u)
    {
        const char *id = json_string_value(json_object_get(u, "id"));
        const json_t *name = json_object_get(u, "name");

        if (id && json_is_string(name))
            json_object_set(cli->users, id, (json_t *)name);
    }
}

/* One user of an online, offline or presence_batch (chat_presence_each). */
static void users_update(const json_t *user, bool online, void *arg)
{
    struct cli *cli = arg;
    const char *id = json_string_value(json_object_get(user, "id"));
    const json_t *name = json_object_get(user, "name");

    if (!id)
        return;
    if (!online)
        json_object_del(cli->users, id);
    else if (json_is_string(name))
        json_object_set(cli->users, id, (json_t *)name);
}

/* The user id `who` stands for: an online user's id, or the id of the
 * online user whose nickname matches case-insensitively.  NULL if none. */
static const char *users_lookup(struct cli *cli, const char *who)
{
    char want[CHAT_REQ_ID_MAX * 4 + 1], have[sizeof(want)];
    const char *id;
    json_t *name;

    if (json_object_get(cli->users, who))
        return json_object_iter_key(json_object_iter_at(cli->users, who));
    if (chat_nick_fold(who, want, sizeof(want)) != 0)
        return NULL;
    json_object_foreach(cli->users, id, name)
    {
        if (chat_nick_fold(json_string_value(name), have, sizeof(have)) == 0 &&
            strcmp(have, want) == 0)
            return id;
    }
    return NULL;
}

static void send_private(struct cli *cli, const char *to, const char *text)
{
    send_request(cli,
                 json_pack("{s:s, s:s, s:s, s:s}", "type", "private", "to", to, "kind", "text",
                           "body", text),
                 NULL);
}

static void resolve_clear(struct cli *cli)
{
    cli->resolve_id[0] = '\0';
    free(cli->resolve_to);
    free(cli->resolve_text);
    cli->resolve_to = cli->resolve_text = NULL;
}

/* The user list a /msg asked for has arrived: send, or say who is unknown.
 * A name that is nobody online but looks like an id is sent as one, so the
 * gateway can deliver to an offline user (or answer not_found). */
static void resolve_finish(struct cli *cli)
{
    const char *id = users_lookup(cli, cli->resolve_to);

    if (!id && chat_valid_user_id(cli->resolve_to))
        id = cli->resolve_to;
    if (id)
        send_private(cli, id, cli->resolve_text);
    else
        notice(cli, "! unknown user: %s (see /users)", cli->resolve_to);
    resolve_clear(cli);
}

/* ---- commands ---- */

/* Splits off the next space-separated word of *p; NULL at the end. */
static char *next_word(char **p)
{
    char *s = *p, *w;

    while (*s == ' ' || *s == '\t')
        s++;
    if (!*s) {
        *p = s;
        return NULL;
    }
    w = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    if (*s)
        *s++ = '\0';
    *p = s;
    return w;
}

/* The rest of the line without leading blanks; NULL when empty. */
static char *rest(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return *p ? p : NULL;
}

static bool room_arg(struct cli *cli, const char *r, const char *usage)
{
    if (!r) {
        notice(cli, "! usage: %s", usage);
        return false;
    }
    if (*r == '#')
        r++;
    if (!chat_valid_room_name(r)) {
        notice(cli, "! bad room name: 1-32 of a-z 0-9 _ -, starting with a letter or digit");
        return false;
    }
    return true;
}

static const char *strip_hash(const char *r)
{
    return *r == '#' ? r + 1 : r;
}

static void cmd_join(struct cli *cli, char *args)
{
    char *r = next_word(&args);

    if (room_arg(cli, r, "/join ROOM"))
        send_request(cli, json_pack("{s:s, s:s}", "type", "join", "room", strip_hash(r)), NULL);
}

static void cmd_leave(struct cli *cli, char *args)
{
    char *r = next_word(&args);
    const char *room = r ? r : cli->room[0] ? cli->room : NULL;

    if (room_arg(cli, room, "/leave ROOM"))
        send_request(cli, json_pack("{s:s, s:s}", "type", "leave", "room", strip_hash(room)), NULL);
}

static void cmd_room(struct cli *cli, char *args)
{
    char *r = next_word(&args);

    if (!room_arg(cli, r, "/room ROOM"))
        return;
    snprintf(cli->room, sizeof(cli->room), "%s", strip_hash(r));
    notice(cli, "* current room: #%s", cli->room);
}

static void cmd_msg(struct cli *cli, char *args)
{
    char *who = next_word(&args);
    char *text = rest(args);
    const char *id;

    if (!who || !text) {
        notice(cli, "! usage: /msg USER TEXT");
        return;
    }
    id = users_lookup(cli, who);
    if (id) {
        send_private(cli, id, text);
        return;
    }
    /* Not in the cache: refresh it and hold further input until the answer. */
    cli->resolve_to = strdup(who);
    cli->resolve_text = strdup(text);
    if (!cli->resolve_to || !cli->resolve_text ||
        send_request(cli, json_pack("{s:s}", "type", "users"), cli->resolve_id) != 0)
        resolve_clear(cli);
}

static void cmd_history(struct cli *cli, char *args)
{
    char *n = next_word(&args), *end = NULL;
    long limit = n ? strtol(n, &end, 10) : CHAT_HISTORY_LIMIT_DEFAULT;

    if (n && (*end || limit < 1 || limit > CHAT_HISTORY_LIMIT_MAX)) {
        notice(cli, "! usage: /history [N], N from 1 to %d", CHAT_HISTORY_LIMIT_MAX);
        return;
    }
    if (!cli->room[0]) {
        notice(cli, "! no current room: /join or /room first");
        return;
    }
    send_request(
        cli,
        json_pack("{s:s, s:s, s:i}", "type", "history", "room", cli->room, "limit", (int)limit),
        NULL);
}

/* SEQ of the current room's message (as the "(N)" in front of each line). */
static bool seq_arg(struct cli *cli, const char *w, const char *usage, long long *seq)
{
    char *end = NULL;

    *seq = w ? strtoll(w, &end, 10) : 0;
    if (!w || *end || *seq < 1 || *seq > CHAT_SEQ_MAX) {
        notice(cli, "! usage: %s", usage);
        return false;
    }
    if (!cli->room[0]) {
        notice(cli, "! no current room: /join or /room first");
        return false;
    }
    return true;
}

static void cmd_edit(struct cli *cli, char *args)
{
    char *w = next_word(&args);
    char *text = rest(args);
    long long seq;

    if (!seq_arg(cli, w, "/edit SEQ TEXT", &seq))
        return;
    if (!text) {
        notice(cli, "! usage: /edit SEQ TEXT");
        return;
    }
    send_request(cli,
                 json_pack("{s:s, s:s, s:I, s:s}", "type", "edit", "room", cli->room, "seq",
                           (json_int_t)seq, "body", text),
                 NULL);
}

static void cmd_delete(struct cli *cli, char *args)
{
    char *w = next_word(&args);
    long long seq;

    if (seq_arg(cli, w, "/delete SEQ", &seq))
        send_request(cli,
                     json_pack("{s:s, s:s, s:I}", "type", "delete", "room", cli->room, "seq",
                               (json_int_t)seq),
                     NULL);
}

static void cmd_react(struct cli *cli, char *args)
{
    char *w = next_word(&args);
    char *emoji = next_word(&args);
    long long seq;

    if (!seq_arg(cli, w, "/react SEQ EMOJI", &seq))
        return;
    if (!emoji) {
        notice(cli, "! usage: /react SEQ EMOJI");
        return;
    }
    send_request(cli,
                 json_pack("{s:s, s:s, s:I, s:s}", "type", "react", "room", cli->room, "seq",
                           (json_int_t)seq, "emoji", emoji),
                 NULL);
}

static void cmd_users(struct cli *cli, char *args)
{
    (void)args;
    send_request(cli, json_pack("{s:s}", "type", "users"), NULL);
}

static void cmd_rooms(struct cli *cli, char *args)
{
    (void)args;
    send_request(cli, json_pack("{s:s}", "type", "rooms"), NULL);
}

static void cmd_create(struct cli *cli, char *args)
{
    char *r = next_word(&args);
    char *topic = rest(args);
    json_t *req;

    if (!room_arg(cli, r, "/create ROOM [TOPIC]"))
        return;
    req = json_pack("{s:s, s:s}", "type", "create_room", "room", strip_hash(r));
    if (req && topic)
        json_object_set_new(req, "topic", json_string(topic));
    send_request(cli, req, NULL);
}

static void cmd_search(struct cli *cli, char *args)
{
    char *q = rest(args);

    if (!q) {
        notice(cli, "! usage: /search TEXT");
        return;
    }
    send_request(cli, json_pack("{s:s, s:s}", "type", "search", "q", q), NULL);
}

static void start_quit(struct cli *cli);

static void cmd_quit(struct cli *cli, char *args)
{
    (void)args;
    start_quit(cli);
}

static void cmd_help(struct cli *cli, char *args);

struct cli_command {
    const char *name;
    const char *args;
    const char *help;
    void (*run)(struct cli *cli, char *args);
};

static const struct cli_command commands[] = {
    {"join", "ROOM", "join a room (created if missing) and make it current", cmd_join},
    {"leave", "[ROOM]", "leave a room (default: the current one)", cmd_leave},
    {"room", "ROOM", "make ROOM the current room", cmd_room},
    {"msg", "USER TEXT", "private message; USER is a nickname or a user id", cmd_msg},
    {"history", "[N]", "last N messages of the current room (default 50)", cmd_history},
    {"users", "", "who is online", cmd_users},
    {"rooms", "", "list rooms", cmd_rooms},
    {"create", "ROOM [TOPIC]", "create a room", cmd_create},
    {"search", "TEXT", "search stored messages", cmd_search},
    {"edit", "SEQ TEXT", "replace the text of your message SEQ in the current room", cmd_edit},
    {"delete", "SEQ", "delete your message SEQ in the current room", cmd_delete},
    {"react", "SEQ EMOJI", "add or take back a reaction to message SEQ", cmd_react},
    {"quit", "", "leave chat-cli", cmd_quit},
    {"help", "", "this list", cmd_help},
};

static void cmd_help(struct cli *cli, char *args)
{
    (void)args;
    notice(cli, "* commands (a plain line goes to the current room; start it with // to send a "
                "line beginning with /):");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        char usage[64];

        snprintf(usage, sizeof(usage), "/%s %s", commands[i].name, commands[i].args);
        notice(cli, "    %-22s %s", usage, commands[i].help);
    }
}

static void handle_command(struct cli *cli, char *line)
{
    char *p = line + 1;
    char *name = next_word(&p);

    for (size_t i = 0; name && i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(name, commands[i].name) == 0) {
            commands[i].run(cli, p);
            return;
        }
    }
    notice(cli, "! unknown command /%s (try /help)", name ? name : "");
}

/* A --json line is sent as it is; the gateway answers anything malformed. */
static void handle_json_line(struct cli *cli, const char *line, size_t len)
{
    if (chat_client_send_text(cli->client, line, len) != 0)
        notice(cli, "chat-cli: could not send the frame");
}

static void handle_line(struct cli *cli, char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (len == 0)
        return;
    /* Invalid UTF-8 in a text frame would make the gateway close with 1007. */
    if (chat_utf8_count(line, len) < 0 || strlen(line) != len) {
        notice(cli, "! input is not valid UTF-8 text; line dropped");
        return;
    }
    if (cli->opts->json) {
        handle_json_line(cli, line, len);
    } else if (line[0] == '/' && line[1] != '/') {
        handle_command(cli, line);
    } else if (!cli->room[0]) {
        notice(cli, "! no current room: /join or /room first");
    } else {
        send_request(cli,
                     json_pack("{s:s, s:s, s:s, s:s}", "type", "message", "room", cli->room, "kind",
                               "text", "body", line[0] == '/' ? line + 1 : line),
                     NULL);
    }
}

/* ---- stdin ---- */

static bool input_blocked(const struct cli *cli)
{
    return !cli->welcomed || cli->join_id[0] || cli->resolve_id[0] || cli->quitting;
}

static bool output_full(const struct cli *cli)
{
    return chat_client_pending(cli->client) > CLI_MAX_PENDING_OUT;
}

/* Reads stdin only while its lines can be handled. */
static void update_stdin(struct cli *cli)
{
    bool want = !input_blocked(cli) && !cli->stdin_eof && !output_full(cli);

    if (want && !cli->stdin_on) {
        if (event_add(cli->stdin_ev, NULL) != 0) {
            notice(cli, "chat-cli: cannot watch stdin");
            cli->stdin_eof = true;
            start_quit(cli);
            return;
        }
        cli->stdin_on = true;
    } else if (!want && cli->stdin_on) {
        event_del(cli->stdin_ev);
        cli->stdin_on = false;
    }
    if (!input_blocked(cli) && output_full(cli)) {
        struct timeval tv = {0, CLI_THROTTLE_POLL_MS * 1000};

        evtimer_add(cli->throttle, &tv);
    }
}

static void process_input(struct cli *cli)
{
    while (!input_blocked(cli) && !output_full(cli)) {
        size_t len;
        char *line = evbuffer_readln(cli->in, &len, EVBUFFER_EOL_LF);

        if (!line)
            break;
        if (cli->skip_line)
            cli->skip_line = false;
        else
            handle_line(cli, line, len);
        free(line);
    }
    if (evbuffer_get_length(cli->in) > CLI_MAX_LINE) {
        notice(cli, "! input line too long; dropped");
        evbuffer_drain(cli->in, evbuffer_get_length(cli->in));
        cli->skip_line = true;
    }
    if (cli->stdin_eof && !input_blocked(cli) && evbuffer_get_length(cli->in) == 0)
        start_quit(cli);
    update_stdin(cli);
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
    struct cli *cli = arg;
    int n = evbuffer_read(cli->in, fd, 65536);

    (void)what;
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        cli->stdin_eof = true;
        /* A last line without a newline still counts. */
        if (evbuffer_get_length(cli->in) > 0)
            evbuffer_add(cli->in, "\n", 1);
    }
    process_input(cli);
}

static void on_throttle(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    process_input(arg);
}

/* ---- quitting ---- */

static void do_close(struct cli *cli)
{
    struct timeval tv = {CLI_CLOSE_WAIT_S, 0};

    if (cli->closing)
        return;
    cli->closing = true;
    cli->barrier_id[0] = '\0';
    if (chat_client_close(cli->client, 1000, "bye") != 0) {
        stop(cli, CLI_EXIT_OK);
        return;
    }
    evtimer_add(cli->deadline, &tv);
}

static void start_quit(struct cli *cli)
{
    struct timeval tv = {CLI_QUIT_WAIT_S, 0};

    if (cli->quitting)
        return;
    cli->quitting = true;
    update_stdin(cli);
    if (!chat_client_is_open(cli->client)) {
        stop(cli, cli->welcomed ? CLI_EXIT_OK : CLI_EXIT_FAIL);
        return;
    }
    if (send_request(cli, json_pack("{s:s}", "type", "ping"), cli->barrier_id) != 0) {
        do_close(cli);
        return;
    }
    evtimer_add(cli->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct cli *cli = arg;

    (void)fd;
    (void)what;
    if (!cli->welcomed) {
        fprintf(stderr, "chat-cli: no welcome from %s\n", cli->opts->url);
        stop(cli, CLI_EXIT_FAIL);
        return;
    }
    if (!cli->closing) {
        do_close(cli);
        return;
    }
    fprintf(stderr, "chat-cli: no answer to the close handshake\n");
    stop(cli, CLI_EXIT_FAIL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct cli *cli = arg;

    (void)sig;
    (void)what;
    if (cli->quitting) {
        /* A second signal: don't wait any longer. */
        stop(cli, CLI_EXIT_FAIL);
        return;
    }
    start_quit(cli);
}

/* ---- frames ---- */

/* Bookkeeping for a frame from the server; false when it is an answer to
 * one of our own bookkeeping requests and must not be shown. */
static bool track_frame(struct cli *cli, const json_t *frame, const char *type)
{
    bool show = true;

    if (strcmp(type, "welcome") == 0 && !cli->welcomed) {
        const char *id = json_string_value(json_object_get(json_object_get(frame, "user"), "id"));

        cli->self_id = id ? strdup(id) : NULL;
        cli->welcomed = true;
        evtimer_del(cli->deadline);
        send_request(cli, json_pack("{s:s, s:s}", "type", "join", "room", cli->opts->room),
                     cli->join_id);
    } else if (strcmp(type, "joined") == 0) {
        const char *room = json_string_value(json_object_get(frame, "room"));

        if (room && chat_valid_room_name(room)) {
            if (strcmp(room, cli->room) != 0)
                cli->room_seq = 0;
            snprintf(cli->room, sizeof(cli->room), "%s", room);
        }
        size_t i;
        json_t *m;
        json_array_foreach(json_object_get(frame, "messages"), i, m)
        {
            int64_t seq = json_integer_value(json_object_get(m, "seq"));
            if (seq > cli->room_seq)
                cli->room_seq = seq;
        }
        if (id_is(frame, cli->join_id))
            cli->join_id[0] = '\0';
    } else if (strcmp(type, "message") == 0) {
        const char *room = json_string_value(json_object_get(frame, "room"));
        int64_t seq = json_integer_value(json_object_get(frame, "seq"));
        if (room && strcmp(room, cli->room) == 0 && seq > cli->room_seq)
            cli->room_seq = seq;
    } else if (strcmp(type, "resync") == 0) {
        /* The gateway could not fill a gap from history: join again from the
         * last seq seen, which returns what was missed (or says it cannot). */
        const char *room = json_string_value(json_object_get(frame, "room"));
        if (room && strcmp(room, cli->room) == 0)
            send_request(cli,
                         json_pack("{s:s, s:s, s:I}", "type", "join", "room", cli->room, "since",
                                   (json_int_t)cli->room_seq),
                         NULL);
    } else if (strcmp(type, "left") == 0) {
        const char *room = json_string_value(json_object_get(frame, "room"));

        if (room && strcmp(room, cli->room) == 0)
            cli->room[0] = '\0';
    } else if (strcmp(type, "users") == 0) {
        users_set(cli, json_object_get(frame, "users"));
        if (id_is(frame, cli->resolve_id)) {
            resolve_finish(cli);
            show = false;
        }
    } else if (chat_presence_each(frame, users_update, cli) >= 0) {
        /* the list of online users, for /msg NAME */
    } else if (strcmp(type, "pong") == 0 && id_is(frame, cli->barrier_id)) {
        do_close(cli);
        show = false;
    } else if (strcmp(type, "error") == 0) {
        if (id_is(frame, cli->join_id))
            cli->join_id[0] = '\0';
        if (id_is(frame, cli->resolve_id))
            resolve_clear(cli);
        if (id_is(frame, cli->barrier_id))
            do_close(cli);
    }
    return show;
}

static void on_message(struct chat_client *c, bool binary, const char *data, size_t len, void *arg)
{
    struct cli *cli = arg;
    json_t *frame = NULL;
    const char *type;
    bool show;

    (void)c;
    if (binary) {
        notice(cli, "! binary frame of %zu bytes ignored", len);
        return;
    }
    frame = json_loadb(data, len, 0, NULL);
    type = json_string_value(json_object_get(frame, "type"));
    show = !type || track_frame(cli, frame, type);
    if (show && cli->opts->json) {
        cli_render_raw(stdout, data, len);
        fflush(stdout);
    } else if (show) {
        if (frame)
            cli_render_frame(stdout, frame, cli->self_id);
        else
            fputs("! the server sent a frame that is not JSON\n", stdout);
        fflush(stdout);
    }
    json_decref(frame);
    process_input(cli);
}

static const char *close_reason(int code)
{
    switch (code) {
    case 1000:
        return "normal closure";
    case 1001:
        return "going away";
    case 1003:
        return "unsupported data";
    case 1006:
        return "connection lost";
    case 1007:
        return "invalid data";
    case 1008:
        return "policy violation";
    case 1009:
        return "message too big";
    case 1011:
        return "server error";
    case 4001:
        return "token expired";
    case CLI_CLOSE_KICKED:
        return "kicked by an operator";
    case 4009:
        return "nickname taken";
    default:
        return "closed";
    }
}

static const char *refuse_reason(int status)
{
    switch (status) {
    case 0:
        return "connection failed";
    case 101:
        return "bad WebSocket handshake";
    case 401:
        return "unauthorized (missing, bad or expired token)";
    case 403:
        return "forbidden";
    case 503:
        return "service unavailable";
    default:
        return "upgrade refused";
    }
}

static void on_event(struct chat_client *c, enum chat_client_event ev, int code, void *arg)
{
    struct cli *cli = arg;

    (void)c;
    switch (ev) {
    case CHAT_CLIENT_OPEN: {
        /* The welcome starts the session; a server that never sends one
         * must not leave us hanging. */
        struct timeval tv = {CLI_WELCOME_WAIT_S, 0};

        evtimer_add(cli->deadline, &tv);
        break;
    }
    case CHAT_CLIENT_REFUSED:
        if (code > 0)
            fprintf(stderr, "chat-cli: cannot connect to %s: HTTP %d %s\n", cli->opts->url, code,
                    refuse_reason(code));
        else
            fprintf(stderr, "chat-cli: cannot connect to %s: %s\n", cli->opts->url,
                    refuse_reason(code));
        stop(cli, CLI_EXIT_FAIL);
        break;
    case CHAT_CLIENT_CLOSED:
        if (cli->closing) {
            stop(cli, CLI_EXIT_OK);
            break;
        }
        fflush(stdout);
        fprintf(stderr, "chat-cli: connection closed by the server: %d %s\n", code,
                close_reason(code));
        /* A script that restarts chat-cli on failure must not undo an operator's kick. */
        stop(cli, code == CLI_CLOSE_KICKED ? CLI_EXIT_KICKED : CLI_EXIT_FAIL);
        break;
    }
}

/* ---- setup ---- */

/* poll or select rather than epoll, which refuses regular files and
 * /dev/null on stdin. */
static struct event_base *make_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;

    if (cfg && event_config_require_features(cfg, EV_FEATURE_FDS) == 0)
        base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    return base ? base : event_base_new();
}

int cli_run(const struct cli_options *opts)
{
    struct cli cli = {.opts = opts, .exit_code = CLI_EXIT_FAIL};
    struct chat_client_options copts = {
        .url = opts->url,
        .token = opts->token,
        .presence_batch = !opts->presence_events,
        .on_message = on_message,
        .on_event = on_event,
        .arg = &cli,
    };

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    cli.base = make_base();
    cli.in = evbuffer_new();
    cli.users = json_object();
    if (!cli.base || !cli.in || !cli.users)
        goto out;
    cli.stdin_ev = event_new(cli.base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, &cli);
    cli.deadline = evtimer_new(cli.base, on_deadline, &cli);
    cli.throttle = evtimer_new(cli.base, on_throttle, &cli);
    cli.sig_int = evsignal_new(cli.base, SIGINT, on_signal, &cli);
    cli.sig_term = evsignal_new(cli.base, SIGTERM, on_signal, &cli);
    if (!cli.stdin_ev || !cli.deadline || !cli.throttle || !cli.sig_int || !cli.sig_term ||
        event_add(cli.sig_int, NULL) != 0 || event_add(cli.sig_term, NULL) != 0)
        goto out;
    cli.client = chat_client_new(cli.base, &copts);
    if (!cli.client) {
        fprintf(stderr, "chat-cli: invalid URL %s (want ws://host:port/path)\n", opts->url);
        goto out;
    }
    event_base_dispatch(cli.base);
out:
    if (!cli.base || !cli.in || !cli.users)
        fprintf(stderr, "chat-cli: out of memory\n");
    chat_client_free(cli.client);
    if (cli.stdin_ev)
        event_free(cli.stdin_ev);
    if (cli.deadline)
        event_free(cli.deadline);
    if (cli.throttle)
        event_free(cli.throttle);
    if (cli.sig_int)
        event_free(cli.sig_int);
    if (cli.sig_term)
        event_free(cli.sig_term);
    if (cli.in)
        evbuffer_free(cli.in);
    if (cli.base)
        event_base_free(cli.base);
    json_decref(cli.users);
    resolve_clear(&cli);
    free(cli.self_id);
    fflush(stdout);
    return cli.exit_code;
}
