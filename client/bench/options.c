/* chat-bench: command-line options. */
#include "bench_internal.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void bench_options_usage(FILE *out)
{
    fprintf(out,
            "Usage: chat-bench [options]\n"
            "\n"
            "Logs in N users, connects them over WebSocket to the gateways round-robin,\n"
            "joins client i to room bench-(i %% M), sends timestamped messages and checks\n"
            "every delivery for latency, order, duplicates and loss.\n"
            "\n"
            "  --url URL          gateway WebSocket URL, repeatable or a comma list\n"
            "                     (default ws://127.0.0.1:8080/ws)\n"
            "  --clients N        simulated users (default 100)\n"
            "  --rooms M          rooms bench-0..bench-(M-1) (default 10)\n"
            "  --rate R           messages per second in total (default 100; 0: idle)\n"
            "  --max              send as fast as the cluster delivers, instead of --rate:\n"
            "                     each room keeps a window of messages in flight (sent and\n"
            "                     not yet back at their sender), its members taking turns\n"
            "  --window W         with --max, messages in flight per room (default 16);\n"
            "                     with --rate, unacked messages per client (default 64)\n"
            "  --size B           message body bytes (default 100, 64-4000; images up to 1 MiB)\n"
            "  --body KIND        x (default: 'x' repeated), words (chat-like text) or image\n"
            "                     (kind image: a data URL of random base64, like a PNG)\n"
            "  --deflate          offer permessage-deflate (RFC 7692); the report shows\n"
            "                     the bytes the clients' sockets read while measuring\n"
            "  --duration S       measured seconds (default 10)\n"
            "  --warmup S         seconds of sending before measuring (default 2)\n"
            "  --ramp R           connects per second, 0 for as fast as possible (default 0)\n"
            "  --drain S          after sending, wait at most S seconds for deliveries "
            "(default 5)\n"
            "  --pids LIST        comma list of gateway (or redis) PIDs: RSS and CPU from /proc\n"
            "  --nick-prefix P    nicknames are P<i> (default bench-<random>-)\n"
            "  --presence-batch   ask for presence_batch (/ws?presence=batch) instead of\n"
            "                     one online/offline frame per user arriving\n"
            "  --json             print the results as JSON on stdout\n"
            "  --help             this text\n"
            "\n"
            "The gateways must allow the rate: start them with e.g. --rate 1000000/1000000.\n"
            "Exit status: 0 all delivered, 1 loss, duplicates or misordering, 2 bad usage,\n"
            "3 some clients failed to connect or disconnected.\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool add_list(const char *arg, char ***items, size_t *n)
{
    char *copy = strdup(arg), *save = NULL, *tok;
    bool ok = copy != NULL;

    for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && ok;
         tok = strtok_r(NULL, ",", &save)) {
        char **grown = realloc(*items, (*n + 1) * sizeof(**items));

        ok = grown != NULL;
        if (ok) {
            *items = grown;
            (*items)[*n] = strdup(tok);
            ok = (*items)[*n] != NULL;
            if (ok)
                (*n)++;
        }
    }
    free(copy);
    return ok;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    double v;

    if (!parse_num(s, (double)lo, (double)hi, &v) || v != (double)(long)v)
        return false;
    *out = (long)v;
    return true;
}

/* 0, 1 for --help, -1 for bad usage (reason printed). */
int bench_options_parse(int argc, char **argv, struct bench_opts *o)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"clients", required_argument, NULL, 'c'},
        {"rooms", required_argument, NULL, 'r'},
        {"rate", required_argument, NULL, 'R'},
        {"max", no_argument, NULL, 'M'},
        {"window", required_argument, NULL, 'w'},
        {"size", required_argument, NULL, 's'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'W'},
        {"ramp", required_argument, NULL, 'p'},
        {"drain", required_argument, NULL, 'D'},
        {"pids", required_argument, NULL, 'P'},
        {"json", no_argument, NULL, 'j'},
        {"nick-prefix", required_argument, NULL, 'n'},
        {"presence-batch", no_argument, NULL, 'B'},
        {"deflate", no_argument, NULL, 'Z'},
        {"body", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char **pid_strs = NULL;
    size_t n_pid_strs = 0;
    double v;
    int opt, li = 0, rv = 0;

    while ((opt = getopt_long(argc, argv, "h", longs, &li)) != -1) {
        bool ok = true;

        switch (opt) {
        case 'u':
            ok = add_list(optarg, &o->urls, &o->n_urls);
            break;
        case 'c':
            ok = parse_long(optarg, 1, 10000000, &o->clients);
            break;
        case 'r':
            ok = parse_long(optarg, 1, 100000, &o->rooms);
            break;
        case 'R':
            ok = parse_num(optarg, 0, 1e9, &o->rate);
            break;
        case 'M':
            o->max = true;
            break;
        case 'w':
            ok = parse_long(optarg, 1, 100000, &o->window);
            break;
        case 's':
            /* Checked against --body once every option is read. */
            ok = parse_long(optarg, 64, BENCH_IMAGE_MAX_SIZE, &o->size);
            break;
        case 'Z':
            o->deflate = true;
            break;
        case 'b':
            ok = strcmp(optarg, "x") == 0 || strcmp(optarg, "words") == 0 ||
                 strcmp(optarg, "image") == 0;
            o->body = optarg[0] == 'w'   ? BENCH_BODY_WORDS
                      : optarg[0] == 'i' ? BENCH_BODY_IMAGE
                                         : BENCH_BODY_X;
            break;
        case 'd':
            ok = parse_num(optarg, 0, 86400, &o->duration);
            break;
        case 'W':
            ok = parse_num(optarg, 0, 86400, &o->warmup);
            break;
        case 'p':
            ok = parse_num(optarg, 0, 1e9, &o->ramp);
            break;
        case 'D':
            ok = parse_num(optarg, 0, 3600, &o->drain);
            break;
        case 'P':
            ok = add_list(optarg, &pid_strs, &n_pid_strs);
            break;
        case 'j':
            o->json = true;
            break;
        case 'B':
            o->presence_batch = true;
            break;
        case 'n':
            o->nick_prefix = optarg;
            break;
        case 'h':
            rv = 1;
            goto out;
        default:
            rv = -1;
            goto out;
        }
        if (!ok) {
            fprintf(stderr, "chat-bench: bad value for --%s: %s\n", longs[li].name, optarg);
            rv = -1;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chat-bench: unexpected argument %s\n", argv[optind]);
        rv = -1;
        goto out;
    }
    if (!o->urls && !add_list("ws://127.0.0.1:8080/ws", &o->urls, &o->n_urls)) {
        rv = -1;
        goto out;
    }
    for (size_t i = 0; i < o->n_urls; i++) {
        if (strncmp(o->urls[i], "ws://", 5) != 0) {
            fprintf(stderr, "chat-bench: only ws:// URLs: %s\n", o->urls[i]);
            rv = -1;
            goto out;
        }
    }
    if (o->body != BENCH_BODY_IMAGE && o->size > 4000) {
        fprintf(stderr, "chat-bench: --size above 4000 needs --body image (text is at most "
                        "4000 characters)\n");
        rv = -1;
        goto out;
    }
    if (o->window == 0)
        o->window = o->max ? 16 : BENCH_MAX_UNACKED;
    if (o->rooms > o->clients)
        o->rooms = o->clients;
    if (o->nick_prefix && strlen(o->nick_prefix) + 8 > 32) {
        fprintf(stderr, "chat-bench: --nick-prefix too long (nicknames are at most 32)\n");
        rv = -1;
        goto out;
    }
    o->pids = calloc(n_pid_strs ? n_pid_strs : 1, sizeof(*o->pids));
    for (size_t i = 0; o->pids && i < n_pid_strs; i++) {
        if (!parse_num(pid_strs[i], 1, 4194304, &v)) {
            fprintf(stderr, "chat-bench: bad pid %s\n", pid_strs[i]);
            rv = -1;
            goto out;
        }
        o->pids[o->n_pids++] = (pid_t)v;
    }
out:
    for (size_t i = 0; i < n_pid_strs; i++)
        free(pid_strs[i]);
    free(pid_strs);
    return rv;
}

void bench_options_free(struct bench_opts *o)
{
    for (size_t i = 0; i < o->n_urls; i++)
        free(o->urls[i]);
    free(o->urls);
    free(o->pids);
}
