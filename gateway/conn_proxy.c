#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conn_internal.h"

/*
 * The PROXY protocol, version 2 (HAProxy's send-proxy-v2): a binary header a
 * load balancer puts before the client's bytes, naming the client's address.
 * Believed only from --trusted-proxies; from anyone else it is refused,
 * since it would let a client pick the address the per-address limits see.
 */

static const unsigned char proxy_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                            0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* One entry of --trusted-proxies: an address, or a network with /bits. */
static bool addr_in(const char *addr, const char *entry, size_t entry_len)
{
    char net[INET6_ADDRSTRLEN + 8];
    if (entry_len == 0 || entry_len >= sizeof(net))
        return false;
    memcpy(net, entry, entry_len);
    net[entry_len] = '\0';
    int bits = -1;
    char *slash = strchr(net, '/');
    if (slash) {
        *slash = '\0';
        bits = atoi(slash + 1);
    }
    unsigned char a[16], n[16];
    int family = strchr(net, ':') ? AF_INET6 : AF_INET;
    size_t size = family == AF_INET6 ? 16 : 4;
    if (inet_pton(family, net, n) != 1 || inet_pton(family, addr, a) != 1)
        return false;
    if (bits < 0 || bits > (int)size * 8)
        bits = (int)size * 8;
    for (int i = 0; i < bits; i++) {
        unsigned char mask = (unsigned char)(0x80 >> (i % 8));
        if ((a[i / 8] & mask) != (n[i / 8] & mask))
            return false;
    }
    return true;
}

bool gw_conn_proxy_trusted(const char *list, const char *addr)
{
    for (const char *p = list; p && *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if (end > p && addr_in(addr, p, (size_t)(end - p)))
            return true;
        p = end;
    }
    return false;
}

int gw_conn_proxy_parse(const unsigned char *data, size_t len, char *addr, size_t addr_len,
                        size_t *consumed)
{
    size_t have = len < sizeof(proxy_sig) ? len : sizeof(proxy_sig);
    if (memcmp(data, proxy_sig, have) != 0)
        return GW_PROXY_NONE;
    if (len < 16)
        return GW_PROXY_MORE;
    unsigned char ver_cmd = data[12], family = data[13];
    size_t body = (size_t)data[14] << 8 | data[15];
    if ((ver_cmd & 0xF0) != 0x20 || body > 512)
        return GW_PROXY_BAD;
    if (len < 16 + body)
        return GW_PROXY_MORE;
    *consumed = 16 + body;
    addr[0] = '\0';
    if ((ver_cmd & 0x0F) == 0x0) /* LOCAL: the proxy's own check, its address stands */
        return GW_PROXY_LOCAL;
    if ((ver_cmd & 0x0F) != 0x1)
        return GW_PROXY_BAD;
    const unsigned char *p = data + 16;
    if ((family >> 4) == 0x1 && body >= 12) {
        if (!inet_ntop(AF_INET, p, addr, (socklen_t)addr_len))
            return GW_PROXY_BAD;
    } else if ((family >> 4) == 0x2 && body >= 36) {
        if (!inet_ntop(AF_INET6, p, addr, (socklen_t)addr_len))
            return GW_PROXY_BAD;
    } else {
        return GW_PROXY_LOCAL; /* UNSPEC or a unix socket: nothing to take */
    }
    return GW_PROXY_ADDR;
}
