/*
 * chat-cli: options, login, then the session in cli.c.
 */
#include "chat_client.h"
#include "cli.h"
#include "protocol.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLI_LOGIN_TIMEOUT_MS 10000

static void usage(FILE *out)
{
    fprintf(out,
            "usage: chat-cli [--url URL] (--nick NAME [--avatar A] | --token JWT) [--room ROOM]\n"
            "                [--json] [--presence-events]\n"
            "\n"
            "  --url URL      gateway WebSocket URL (default " CLI_DEFAULT_URL ")\n"
            "  --nick NAME    log in as a guest with this nickname (POST /api/login)\n"
            "  --avatar A     avatar for --nick\n"
            "  --token JWT    use this token (default: the CHAT_TOKEN environment variable)\n"
            "  --room ROOM    room joined at start and made current (default " CLI_DEFAULT_ROOM
            ")\n"
            "  --json         print every frame received as one JSON line, and send each\n"
            "                 stdin line as a raw JSON frame\n"
            "  --presence-events  get online/offline as one frame per event (PROTOCOL.md)\n"
            "                 instead of presence_batch, one frame per interval\n"
            "  --help         this text\n"
            "\n"
            "Interactive commands: /join ROOM, /leave [ROOM], /room ROOM, /msg USER TEXT,\n"
            "/history [N], /users, /rooms, /create ROOM [TOPIC], /search TEXT, /quit, /help.\n"
            "A plain line goes to the current room.  Exit status: 0 ok, 1 connection or\n"
            "login failure, 2 usage error, 3 kicked by an operator (close 4003: connecting\n"
            "again is allowed, but is the operator's call, not a script's).\n");
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "chat-cli: %s (try --help)\n", msg);
    return CLI_EXIT_USAGE;
}

static const char *login_reason(int status)
{
    switch (status) {
    case -1:
        return "cannot reach the server";
    case 400:
        return "nickname or avatar rejected";
    case 409:
        return "nickname is used by another online user";
    case 503:
        return "service unavailable";
    default:
        return "unexpected answer";
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"nick", required_argument, NULL, 'n'},
        {"avatar", required_argument, NULL, 'a'},
        {"token", required_argument, NULL, 't'},
        {"room", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"presence-events", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_options opts = {.url = CLI_DEFAULT_URL, .room = CLI_DEFAULT_ROOM};
    const char *nick = NULL, *avatar = NULL;
    char *token = NULL, *user_id = NULL;
    int opt, rc, status;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            opts.url = optarg;
            break;
        case 'n':
            nick = optarg;
            break;
        case 'a':
            avatar = optarg;
            break;
        case 't':
            opts.token = optarg;
            break;
        case 'r':
            opts.room = *optarg == '#' ? optarg + 1 : optarg;
            break;
        case 'j':
            opts.json = true;
            break;
        case 'p':
            opts.presence_events = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_EXIT_OK;
        default:
            return usage_error("bad option");
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument");
    if (nick && opts.token)
        return usage_error("--nick and --token exclude each other");
    if (avatar && !nick)
        return usage_error("--avatar needs --nick");
    if (!chat_valid_room_name(opts.room))
        return usage_error("bad --room: 1-32 of a-z 0-9 _ -, starting with a letter or digit");
    if (!nick && !opts.token) {
        opts.token = getenv("CHAT_TOKEN");
        if (!opts.token || !*opts.token)
            return usage_error("need --nick, --token or CHAT_TOKEN");
    }
    if (nick) {
        status = chat_login(opts.url, nick, avatar, &token, &user_id, CLI_LOGIN_TIMEOUT_MS);
        if (status != 200) {
            if (status > 0)
                fprintf(stderr, "chat-cli: login at %s failed: HTTP %d %s\n", opts.url, status,
                        login_reason(status));
            else
                fprintf(stderr, "chat-cli: login at %s failed: %s\n", opts.url,
                        login_reason(status));
            return CLI_EXIT_FAIL;
        }
        opts.token = token;
    }
    rc = cli_run(&opts);
    free(token);
    free(user_id);
    return rc;
}
