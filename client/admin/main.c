/*
 * chat-admin: options, then one command (admin.h).
 */
#include "admin.h"
#include "config.h"
#include "protocol.h"
#include "token.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ADMIN_TTL_MAX (366LL * 86400)
#define ADMIN_TIMEOUT_DEFAULT_S 10

/* Which commands an option means something to: giving it to another one is
 * a mistake worth reporting rather than ignoring. */
enum {
    CMD_TOKEN = 1 << 0,
    CMD_BROADCAST = 1 << 1,
    CMD_ONLINE = 1 << 2,
    CMD_NODES = 1 << 3,
    CMD_ROOMS = 1 << 4,
    CMD_KICK = 1 << 5,
    CMD_DELETE_ROOM = 1 << 6,
    CMD_PURGE = 1 << 7,
    CMD_ROOM = CMD_DELETE_ROOM | CMD_PURGE, /* ROOM is the argument */
    CMD_REDIS = CMD_ONLINE | CMD_NODES | CMD_ROOMS | CMD_KICK | CMD_ROOM,
    CMD_ALL = CMD_TOKEN | CMD_BROADCAST | CMD_REDIS,
};

struct admin_command {
    const char *name;
    unsigned bit;
    int (*run)(const struct admin_options *o);
    int args; /* positional arguments after the command */
};

static const struct admin_command commands[] = {
    {"token", CMD_TOKEN, admin_cmd_token, 0},
    {"broadcast", CMD_BROADCAST, admin_cmd_broadcast, 1},
    {"online", CMD_ONLINE, admin_cmd_online, 0},
    {"nodes", CMD_NODES, admin_cmd_nodes, 0},
    {"rooms", CMD_ROOMS, admin_cmd_rooms, 0},
    {"kick", CMD_KICK, admin_cmd_kick, 1},
    {"delete-room", CMD_DELETE_ROOM, admin_cmd_delete_room, 1},
    {"purge", CMD_PURGE, admin_cmd_purge, 1},
};

static const struct option longopts[] = {
    {"url", required_argument, NULL, 'u'},     {"redis", required_argument, NULL, 'r'},
    {"prefix", required_argument, NULL, 'p'},  {"jwt-secret", required_argument, NULL, 's'},
    {"user-id", required_argument, NULL, 'i'}, {"name", required_argument, NULL, 'n'},
    {"avatar", required_argument, NULL, 'a'},  {"admin", no_argument, NULL, 'A'},
    {"ttl", required_argument, NULL, 't'},     {"timeout", required_argument, NULL, 'T'},
    {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
};

/* Parallel to longopts. */
static const unsigned option_commands[] = {
    CMD_BROADCAST,             /* url */
    CMD_REDIS,                 /* redis */
    CMD_REDIS,                 /* prefix */
    CMD_TOKEN | CMD_BROADCAST, /* jwt-secret */
    CMD_TOKEN | CMD_BROADCAST, /* user-id */
    CMD_TOKEN | CMD_BROADCAST, /* name */
    CMD_TOKEN | CMD_BROADCAST, /* avatar */
    CMD_TOKEN,                 /* admin */
    CMD_TOKEN,                 /* ttl */
    CMD_BROADCAST | CMD_REDIS, /* timeout */
    CMD_ALL,                   /* json */
    CMD_ALL,                   /* help */
    CMD_ALL,                   /* version */
};
_Static_assert(sizeof(option_commands) / sizeof(option_commands[0]) ==
                   sizeof(longopts) / sizeof(longopts[0]) - 1,
               "one entry per option");

static void usage(FILE *out)
{
    fprintf(out,
            "usage: chat-admin COMMAND [options]\n"
            "\n"
            "Commands:\n"
            "  token          print a token: --user-id ID --name NAME [--avatar URL] [--admin]\n"
            "                 [--ttl DURATION]\n"
            "  broadcast TEXT send TEXT to every connection on every node, as an admin\n"
            "                 identity made from the secret: [--url URL] [--user-id ID]\n"
            "                 [--name NAME]; waits for the gateway's ack\n"
            "  online         users online cluster-wide, with the nodes they are on (Redis)\n"
            "  nodes          live gateway nodes and their connection counts (Redis)\n"
            "  rooms          rooms with topic and member count (Redis)\n"
            "  kick USER      close every connection of user id USER on every node (close\n"
            "                 code 4003); not a ban: the user may connect again\n"
            "  delete-room ROOM\n"
            "                 delete ROOM with its history, seq, members and reactions; its\n"
            "                 members are dropped from it and every client gets room_deleted;\n"
            "                 the default rooms (general, random, tech) are refused\n"
            "  purge ROOM     delete ROOM's history (and reactions), keeping its seq so no\n"
            "                 seq is ever reused; its members get room_purged\n"
            "                 kick, delete-room and purge go through the control channel\n"
            "                 (<prefix>control): \"nodes\" is how many gateways heard it\n"
            "\n"
            "Options:\n"
            "  --jwt-secret KEY   HS256 secret of the gateways (env CHAT_JWT_SECRET)\n"
            "  --user-id ID       user id of the token (broadcast: " ADMIN_DEFAULT_ID ")\n"
            "  --name NAME        display name of the token (broadcast: " ADMIN_DEFAULT_ID ")\n"
            "  --avatar URL       avatar of the token\n"
            "  --admin            the token carries role admin\n"
            "  --ttl DURATION     token lifetime: N, Ns, Nm, Nh or Nd (default 1h, at most 366d)\n"
            "  --url URL          gateway WebSocket URL (default " ADMIN_DEFAULT_URL ")\n"
            "  --redis URL        the gateways' Redis (env CHAT_REDIS_URL, default\n"
            "                     " ADMIN_DEFAULT_REDIS "):\n"
            "                     redis://[[user]:password@]host:port[/db]\n"
            "                     redis-cluster://[[user]:password@]host:port[,host:port...]\n"
            "                       (seed nodes; each key goes to the master of its slot)\n"
            "                     redis-sentinel://[[user]:password@]host:port[,...]/NAME\n"
            "                       (sentinels, asked for master NAME; credentials: the master's)\n"
            "  --prefix STR       Redis key prefix of the gateways (env CHAT_PREFIX, default\n"
            "                     " ADMIN_DEFAULT_PREFIX ")\n"
            "  --timeout SEC      bound on each network exchange (default 10)\n"
            "  --json             one line of JSON on stdout instead of text\n"
            "  --help, --version\n"
            "\n"
            "Exit status: 0 done, 1 the command failed (unreachable, refused ...), 2 usage.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("chat-admin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (try --help)\n", stderr);
    return ADMIN_EXIT_USAGE;
}

int admin_fail(const char *fmt, ...)
{
    va_list ap;
    fputs("chat-admin: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return ADMIN_EXIT_FAIL;
}

int64_t admin_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int admin_print_json(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return admin_fail("out of memory");
    puts(text);
    free(text);
    return ADMIN_EXIT_OK;
}

/* "90", "90s", "15m", "24h", "7d" into seconds; -1 when malformed. */
static int64_t parse_duration(const char *s)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    long long n = strtoll(s, &end, 10);
    if (errno || n <= 0)
        return -1;
    long long unit = 1;
    if (*end) {
        if (end[1])
            return -1;
        switch (*end) {
        case 's':
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -1;
        }
    }
    if (n > ADMIN_TTL_MAX / unit)
        return -1;
    return (int64_t)(n * unit);
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

int main(int argc, char **argv)
{
    struct admin_options o = {.ttl = ADMIN_DEFAULT_TTL,
                              .timeout_ms = ADMIN_TIMEOUT_DEFAULT_S * 1000};
    unsigned given = 0; /* bits of longopts seen */
    int opt, index;

    /* The option table decides; the environment only fills defaults. */
    while ((opt = getopt_long(argc, argv, ":", longopts, &index)) != -1) {
        if (opt == '?')
            return usage_error("unknown option '%s'", argv[optind - 1]);
        if (opt == ':')
            return usage_error("%s needs a value", argv[optind - 1]);
        for (size_t i = 0; longopts[i].name; i++) {
            if (longopts[i].val == opt)
                given |= 1u << i;
        }
        switch (opt) {
        case 'u':
            o.url = optarg;
            break;
        case 'r':
            o.redis_url = optarg;
            break;
        case 'p':
            o.prefix = optarg;
            break;
        case 's':
            o.secret = optarg;
            break;
        case 'i':
            o.user_id = optarg;
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'a':
            o.avatar = optarg;
            break;
        case 'A':
            o.admin = true;
            break;
        case 't':
            o.ttl = parse_duration(optarg);
            if (o.ttl <= 0)
                return usage_error("--ttl '%s' is not a duration of 1s to 366d (N, Ns, Nm, "
                                   "Nh, Nd)",
                                   optarg);
            break;
        case 'T': {
            int64_t t = parse_duration(optarg);
            if (t <= 0 || t > 3600)
                return usage_error("--timeout '%s' is not 1-3600 seconds", optarg);
            o.timeout_ms = (int)t * 1000;
            break;
        }
        case 'j':
            o.json = true;
            break;
        case 'h':
            usage(stdout);
            return ADMIN_EXIT_OK;
        case 'V':
            printf("chat-admin %s\n", chat_config_version());
            return ADMIN_EXIT_OK;
        }
    }
    if (optind >= argc)
        return usage_error("no command");
    const char *name = argv[optind++];
    const struct admin_command *cmd = NULL;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    }
    if (!cmd)
        return usage_error("unknown command '%s'", name);
    if (argc - optind != cmd->args) {
        if (cmd->args)
            return usage_error("%s takes one argument (quote it)", cmd->name);
        return usage_error("%s takes no argument", cmd->name);
    }
    for (size_t i = 0; longopts[i].name; i++) {
        if ((given & (1u << i)) && !(option_commands[i] & cmd->bit))
            return usage_error("--%s does not apply to %s", longopts[i].name, cmd->name);
    }
    if (cmd->args)
        o.text = argv[optind];

    if (!o.url)
        o.url = ADMIN_DEFAULT_URL;
    if (!o.redis_url)
        o.redis_url = env_or("CHAT_REDIS_URL", ADMIN_DEFAULT_REDIS);
    if (!o.prefix)
        o.prefix = env_or("CHAT_PREFIX", ADMIN_DEFAULT_PREFIX);
    if (strlen(o.prefix) > 64)
        return usage_error("--prefix is at most 64 characters");
    if (cmd->bit & (CMD_TOKEN | CMD_BROADCAST)) {
        if (!o.secret)
            o.secret = env_or("CHAT_JWT_SECRET", NULL);
        if (!o.secret)
            return usage_error("%s needs --jwt-secret or CHAT_JWT_SECRET", cmd->name);
        if (strlen(o.secret) < CHAT_JWT_SECRET_MIN)
            return usage_error("the JWT secret must be at least %d bytes", CHAT_JWT_SECRET_MIN);
        if (cmd->bit == CMD_TOKEN && (!o.user_id || !o.name))
            return usage_error("token needs --user-id and --name");
        if (!o.user_id)
            o.user_id = ADMIN_DEFAULT_ID;
        if (!o.name)
            o.name = ADMIN_DEFAULT_ID;
        if (!chat_valid_user_id(o.user_id))
            return usage_error("--user-id must be 1-%d of A-Z a-z 0-9 _ -", CHAT_USER_ID_MAX);
        if (!chat_valid_nickname(o.name))
            return usage_error("--name must be 1-%d characters, no control characters, no "
                               "leading or trailing space",
                               CHAT_NICK_MAX_CP);
        if (o.avatar && !chat_valid_avatar(o.avatar))
            return usage_error("--avatar is at most %d characters", CHAT_AVATAR_MAX_CP);
    }
    if (cmd->bit == CMD_BROADCAST && !o.text[0])
        return usage_error("broadcast TEXT must not be empty");
    if (cmd->bit == CMD_KICK && !chat_valid_user_id(o.text))
        return usage_error("kick USER: a user id is 1-%d of A-Z a-z 0-9 _ -", CHAT_USER_ID_MAX);
    if ((cmd->bit & CMD_ROOM) && !chat_valid_room_name(o.text))
        return usage_error("%s ROOM: a room name is 1-%d of a-z 0-9 _ -, starting with a letter "
                           "or digit",
                           cmd->name, CHAT_ROOM_MAX);
    return cmd->run(&o);
}
