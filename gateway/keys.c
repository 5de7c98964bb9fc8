#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "keys.h"
#include "protocol.h"
#include "token.h"

__attribute__((format(printf, 4, 5))) static const char *
build(char *buf, size_t len, const char *prefix, const char *fmt, ...)
{
    int n = snprintf(buf, len, "%s", prefix);
    if (n < 0 || (size_t)n >= len)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= len - (size_t)n)
        return NULL;
    return buf;
}

const char *gw_key_rooms(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "rooms");
}

/* The rooms indexes carry "{<prefix>rooms}" as their hash tag: Redis Cluster
 * hashes a key with a tag by the tag alone, and "<prefix>rooms" has none, so
 * the tag is the whole name of the rooms hash and puts them in its slot. */
const char *gw_key_room_names(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "rooms:names{%srooms}", prefix);
}

const char *gw_key_rooms_popular(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "rooms:popular{%srooms}", prefix);
}

const char *gw_key_online(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "online");
}

/* In the slot of "<prefix>online", the same way as the rooms indexes. */
const char *gw_key_online_holders(char *buf, size_t len, const char *prefix, const char *uid)
{
    return build(buf, len, prefix, "online:nodes:%s{%sonline}", uid, prefix);
}

const char *gw_key_online_users(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "online:users{%sonline}", prefix);
}

const char *gw_key_all(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "all");
}

const char *gw_key_control(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "control");
}

const char *gw_key_room(char *buf, size_t len, const char *prefix, const char *room,
                        const char *what)
{
    if (!what)
        return build(buf, len, prefix, "room:{%s}", room);
    return build(buf, len, prefix, "room:{%s}:%s", room, what);
}

const char *gw_key_room_holders(char *buf, size_t len, const char *prefix, const char *room,
                                const char *uid)
{
    return build(buf, len, prefix, "room:{%s}:holders:%s", room, uid);
}

const char *gw_key_user(char *buf, size_t len, const char *prefix, const char *uid,
                        const char *what)
{
    if (!what)
        return build(buf, len, prefix, "user:{%s}", uid);
    return build(buf, len, prefix, "user:{%s}:%s", uid, what);
}

bool gw_key_channel_sharded(const char *prefix, const char *channel)
{
    size_t n = strlen(prefix);
    if (strncmp(channel, prefix, n) != 0)
        return false;
    const char *rest = channel + n;
    const char *kind = strncmp(rest, "room:{", 6) == 0   ? rest + 6
                       : strncmp(rest, "user:{", 6) == 0 ? rest + 6
                                                         : NULL;
    /* The name, then the closing brace last: a key such as history is no channel. */
    const char *close = kind ? strchr(kind, '}') : NULL;
    return close && close > kind && close[1] == '\0';
}

const char *gw_key_dm(char *buf, size_t len, const char *prefix, const char *a, const char *b,
                      const char *what)
{
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    return build(buf, len, prefix, "dm:{%s:%s}:%s", a, b, what);
}

const char *gw_key_idempotency(char *buf, size_t len, const char *prefix, const char *room,
                               const char *uid, const char *peer, const char *id)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)id, strlen(id), md);
    char hex[SHA_DIGEST_LENGTH * 2 + 1];
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (room)
        return build(buf, len, prefix, "room:{%s}:idem:%s:%s", room, uid, hex);
    const char *a = uid, *b = peer;
    if (strcmp(a, b) > 0) {
        a = peer;
        b = uid;
    }
    return build(buf, len, prefix, "dm:{%s:%s}:idem:%s:%s", a, b, uid, hex);
}

const char *gw_key_nick(char *buf, size_t len, const char *prefix, const char *nick)
{
    char folded[CHAT_NICK_MAX_BYTES * 2 + 1];
    if (chat_nick_fold(nick, folded, sizeof(folded)) != 0)
        return NULL;
    return build(buf, len, prefix, "nick:{%s}", folded);
}

const char *gw_key_node(char *buf, size_t len, const char *prefix, const char *node)
{
    return build(buf, len, prefix, "node:{%s}", node);
}

const char *gw_key_login_rate(char *buf, size_t len, const char *prefix, const char *addr,
                              long minute)
{
    return build(buf, len, prefix, "login:{%s}:%ld", addr, minute);
}

const char *gw_key_probe(char *buf, size_t len, const char *prefix, const char *node)
{
    return build(buf, len, prefix, "probe:{%s}", node);
}

const char *gw_key_rooms_active(char *buf, size_t len, const char *prefix)
{
    return build(buf, len, prefix, "rooms:active{%srooms}", prefix);
}

const char *gw_key_room_quota(char *buf, size_t len, const char *prefix, const char *uid, long hour)
{
    return build(buf, len, prefix, "rooms:created:%s:%ld{%srooms}", uid, hour, prefix);
}
