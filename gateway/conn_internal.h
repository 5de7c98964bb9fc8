#ifndef GW_CONN_INTERNAL_H
#define GW_CONN_INTERNAL_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <http_parser.h>

#include "conn.h"

/*
 * The connection's structs, shared by conn.c (lifetime, the set, limits,
 * lingering close, the hand-over to an upgrade owner) and conn_http.c
 * (HTTP/1.x request framing with http-parser, and responses).
 */

enum conn_state { CONN_HTTP, CONN_UPGRADED };

/* The HTTP request being parsed on a connection. */
struct gw_conn_parse {
    http_parser parser;
    struct gw_http_request req;
    size_t head_bytes;
    bool last_was_value;
    bool headers_done;
    bool message_done;
    int limit_status; /* 431 or 413 when a limit was crossed */
};

struct gw_conn {
    /* What a fan-out reads and writes per recipient (gw_conn_closing,
     * gw_conn_queued) comes first, in one cache line. */
    struct gw_conns *set;
    /* Where output is appended: own, which we write ourselves, or bev's
     * output while the kernel refuses part of it (write_async). */
    struct evbuffer *out;
    uint64_t out_added; /* bytes ever queued to the output (as of the last gw_conn_queued) */
    uint64_t out_taken; /* bytes ever written (or dropped) from it */
    enum conn_state state;
    bool closing;      /* close once output drains */
    bool dead;         /* free when the callback unwinds */
    bool flush_queued; /* on set->to_flush: written once before the loop sleeps */
    bool flush_late;   /* on set->to_flush_late: written at flush_due_ms (--write-delay) */
    bool write_async;  /* the kernel did not take everything: the bufferevent writes */
    struct evbuffer *own;
    uint64_t id;
    struct bufferevent *bev;
    char peer[INET6_ADDRSTRLEN + 8];
    char addr[INET6_ADDRSTRLEN]; /* the peer without its port: per-address limits */
    int64_t header_deadline_ms;  /* 408 past it; 0 while no request has begun */

    /* NULL once upgraded: an idle WebSocket has no use for 1.7 KiB of
     * request parsing state. */
    struct gw_conn_parse *http;

    const struct gw_conn_upgrade_ops *ops;
    void *owner;

    int in_callback;
    int holds;            /* async operations (Redis replies) that will come back to c */
    bool awaiting;        /* a request is being answered asynchronously */
    bool parsing;         /* parse_http is on the stack */
    bool lingering;       /* output flushed and half-closed: input discarded until EOF */
    bool refused;         /* answered 503 at a connection limit: linger briefly */
    bool proxy_done;      /* the start of the stream was checked for a PROXY header */
    size_t discarded;     /* input dropped since closing began */
    bool owner_told;      /* the upgrade owner heard on_closed */
    struct addr_use *use; /* this address's share of the set (conn.c) */
    uint64_t held_until;  /* out_added when the held bytes end */
    size_t held;          /* counted in use->held until out_taken reaches held_until */
    size_t promised;      /* counted in use->held for an answer being prepared */
    int64_t flush_due_ms; /* while flush_late */
    TAILQ_ENTRY(gw_conn) flush_link;
    LIST_ENTRY(gw_conn) link;
};

struct gw_conns {
    struct gw_ctx *ctx;
    gw_conn_request_cb on_request;
    size_t count;
    size_t max;                 /* connections past which new ones get 503 */
    struct gw_dict *per_addr;   /* address -> struct addr_use (conn.c) */
    unsigned refusals_unlogged; /* 429/503 answers since the last one logged */
    int64_t refusals_logged_ms;
    LIST_HEAD(, gw_conn) conns;
    struct event *flush;            /* active while to_flush is not empty */
    TAILQ_HEAD(, gw_conn) to_flush; /* connections with output queued this turn */
    /* --write-delay: WebSocket output waits this long after its first frame
     * so that later frames share its write.  The delay is the same for all,
     * so the list is in deadline order and one timer serves it. */
    int write_delay_ms;
    struct event *flush_late;            /* pending while to_flush_late is not empty */
    TAILQ_HEAD(, gw_conn) to_flush_late; /* oldest first */
};

/* ---- conn_http.c, for conn.c ---- */

/* Frees a request's strings and zeroes it. */
void gw_conn_request_reset(struct gw_http_request *req);
/* Ready for the next request: an empty request and a fresh parser.  False
 * when there is no memory for them. */
bool gw_conn_reset_parser(struct gw_conn *c);
/* Frees the parsing state of a connection that is done with HTTP. */
void gw_conn_drop_parser(struct gw_conn *c);
/* Parses and dispatches the buffered requests, one at a time; after an
 * upgrade, hands what is left over to the owner. */
void gw_conn_parse_http(struct gw_conn *c);

/* ---- conn_proxy.c: the PROXY protocol v2 ---- */

enum gw_proxy_result {
    GW_PROXY_NONE,  /* the bytes are not a PROXY header */
    GW_PROXY_MORE,  /* they may be: wait for more */
    GW_PROXY_BAD,   /* a malformed PROXY header */
    GW_PROXY_LOCAL, /* a valid header naming no client (the proxy's own check) */
    GW_PROXY_ADDR,  /* a valid header; addr holds the client's address */
};

/* True when addr is in the comma list of addresses and networks (a/bits). */
bool gw_conn_proxy_trusted(const char *list, const char *addr);
/* Looks for a PROXY v2 header at the start of data; on LOCAL/ADDR *consumed
 * is its length. */
int gw_conn_proxy_parse(const unsigned char *data, size_t len, char *addr, size_t addr_len,
                        size_t *consumed);

#endif
