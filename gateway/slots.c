#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/hiredis.h>

#include "slots.h"

/* A master address: "host:port" fits a hostname of 255 bytes. */
#define GW_SLOTS_HOST_MAX 256

struct node {
    char host[GW_SLOTS_HOST_MAX];
    int port;
};

struct gw_slots {
    struct node *nodes;
    size_t nnodes;
    short owner[GW_SLOTS]; /* index into nodes, -1 for none */
};

unsigned gw_slots_crc16(const char *buf, size_t len)
{
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
        crc &= 0xffff;
    }
    return crc;
}

unsigned gw_slots_keyslot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - from);
        /* "{}" is no tag: the whole key is hashed, as Redis does. */
        if (close && close > open + 1)
            return gw_slots_crc16(open + 1, (size_t)(close - open - 1)) & (GW_SLOTS - 1);
    }
    return gw_slots_crc16(key, len) & (GW_SLOTS - 1);
}

static size_t arg_len(const char **argv, const size_t *lens, int i)
{
    return lens ? lens[i] : strlen(argv[i]);
}

static bool is(const char *arg, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

/* The slot shared by argv[first..last], or GW_SLOTS_CROSS. */
static int slot_of_range(int first, int last, const char **argv, const size_t *lens)
{
    int slot = GW_SLOTS_ANY;
    for (int i = first; i <= last; i++) {
        int s = (int)gw_slots_keyslot(argv[i], arg_len(argv, lens, i));
        if (slot != GW_SLOTS_ANY && s != slot)
            return GW_SLOTS_CROSS;
        slot = s;
    }
    return slot;
}

int gw_slots_command_slot(int argc, const char **argv, const size_t *lens)
{
    if (argc < 2)
        return GW_SLOTS_ANY;
    const char *cmd = argv[0];
    size_t n = arg_len(argv, lens, 0);
    if (is(cmd, n, "EVAL") || is(cmd, n, "EVALSHA")) {
        if (argc < 3)
            return GW_SLOTS_ANY;
        char buf[16];
        size_t len = arg_len(argv, lens, 2);
        if (len >= sizeof(buf))
            return GW_SLOTS_CROSS;
        memcpy(buf, argv[2], len);
        buf[len] = '\0';
        char *end = NULL;
        long nkeys = strtol(buf, &end, 10);
        if (!end || *end || nkeys < 0 || nkeys > argc - 3)
            return GW_SLOTS_CROSS;
        return nkeys == 0 ? GW_SLOTS_ANY : slot_of_range(3, 2 + (int)nkeys, argv, lens);
    }
    if (is(cmd, n, "DEL") || is(cmd, n, "EXISTS") || is(cmd, n, "UNLINK") || is(cmd, n, "MGET"))
        return slot_of_range(1, argc - 1, argv, lens);
    /* Classic PUBLISH reaches every node of a cluster from any of them. */
    static const char *const keyless[] = {"PUBLISH", "PING", "INFO",   "CLUSTER", "AUTH",
                                          "SELECT",  "TIME", "SCRIPT", "WAIT",    "ASKING"};
    for (size_t i = 0; i < sizeof(keyless) / sizeof(keyless[0]); i++)
        if (is(cmd, n, keyless[i]))
            return GW_SLOTS_ANY;
    return (int)gw_slots_keyslot(argv[1], arg_len(argv, lens, 1));
}

bool gw_slots_parse_redirect(const char *err, bool *ask, unsigned *slot, char *host, size_t hostlen,
                             int *port)
{
    const char *rest;
    if (strncmp(err, "MOVED ", 6) == 0) {
        *ask = false;
        rest = err + 6;
    } else if (strncmp(err, "ASK ", 4) == 0) {
        *ask = true;
        rest = err + 4;
    } else {
        return false;
    }
    char *end = NULL;
    unsigned long s = strtoul(rest, &end, 10);
    if (end == rest || *end != ' ' || s >= GW_SLOTS)
        return false;
    const char *addr = end + 1;
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen)
        return false;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || p <= 0 || p > 65535)
        return false;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    *slot = (unsigned)s;
    *port = (int)p;
    return true;
}

struct gw_slots *gw_slots_new(void)
{
    struct gw_slots *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    for (size_t i = 0; i < GW_SLOTS; i++)
        m->owner[i] = -1;
    return m;
}

void gw_slots_free(struct gw_slots *m)
{
    if (!m)
        return;
    free(m->nodes);
    free(m);
}

int gw_slots_find(const struct gw_slots *m, const char *host, int port)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

/* Index of host:port in nodes[0..*n), added when new; -1 when full. */
static int node_index(struct node *nodes, size_t *n, size_t max, const char *host, int port)
{
    for (size_t i = 0; i < *n; i++)
        if (nodes[i].port == port && strcmp(nodes[i].host, host) == 0)
            return (int)i;
    if (*n >= max)
        return -1;
    snprintf(nodes[*n].host, sizeof(nodes[*n].host), "%s", host);
    nodes[*n].port = port;
    return (int)(*n)++;
}

int gw_slots_load(struct gw_slots *m, const struct redisReply *reply, const char *from_host)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
        return -1;
    /* At most one master per range, and a map holds far fewer than this. */
    size_t max = reply->elements < 1024 ? reply->elements : 1024;
    struct node *nodes = calloc(max, sizeof(*nodes));
    short *owner = malloc(sizeof(short) * GW_SLOTS);
    size_t nnodes = 0, covered = 0;
    if (!nodes || !owner)
        goto fail;
    for (size_t i = 0; i < GW_SLOTS; i++)
        owner[i] = -1;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER ||
            r->element[2]->type != REDIS_REPLY_ARRAY || r->element[2]->elements < 2)
            goto fail;
        long long lo = r->element[0]->integer, hi = r->element[1]->integer;
        const redisReply *master = r->element[2];
        const redisReply *h = master->element[0], *p = master->element[1];
        if (lo < 0 || hi >= GW_SLOTS || lo > hi || p->type != REDIS_REPLY_INTEGER ||
            p->integer <= 0 || p->integer > 65535)
            goto fail;
        /* An endpoint Redis does not know is "" or "?" (or nil): the
         * answering node's host is the best guess, as redis-cli makes. */
        const char *host = from_host;
        if (h->type == REDIS_REPLY_STRING && h->len > 0 && strcmp(h->str, "?") != 0)
            host = h->str;
        if (!host || strlen(host) >= GW_SLOTS_HOST_MAX)
            goto fail;
        int idx = node_index(nodes, &nnodes, max, host, (int)p->integer);
        if (idx < 0)
            goto fail;
        for (long long s = lo; s <= hi; s++) {
            if (owner[s] < 0)
                covered++;
            owner[s] = (short)idx;
        }
    }
    if (covered != GW_SLOTS)
        goto fail;
    free(m->nodes);
    m->nodes = nodes;
    m->nnodes = nnodes;
    memcpy(m->owner, owner, sizeof(m->owner));
    free(owner);
    return 0;
fail:
    free(nodes);
    free(owner);
    return -1;
}

int gw_slots_owner(const struct gw_slots *m, unsigned slot)
{
    return slot < GW_SLOTS ? m->owner[slot] : -1;
}

size_t gw_slots_count(const struct gw_slots *m)
{
    return m->nnodes;
}

const char *gw_slots_host(const struct gw_slots *m, size_t i)
{
    return i < m->nnodes ? m->nodes[i].host : NULL;
}

int gw_slots_port(const struct gw_slots *m, size_t i)
{
    return i < m->nnodes ? m->nodes[i].port : 0;
}
