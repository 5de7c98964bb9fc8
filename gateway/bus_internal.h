#ifndef GW_BUS_INTERNAL_H
#define GW_BUS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <hiredis/async.h>

#include "bus.h"
#include "config.h"
#include "keys.h"

/*
 * The bus's structs, shared by bus.c (the two connections: connect,
 * handshake, reconnect, commands, the watchdog) and bus_sub.c (the
 * subscriber side: refcounted channels and their SUBSCRIBE state machine,
 * resubscription, incoming messages).
 */

/* Reconnect backoff, doubled from the first to the last. */
#define BUS_BACKOFF_MIN_MS 100

struct event;
struct event_base;
struct gw_dict;

/* One Redis connection.  CONNECTING: TCP in progress; HANDSHAKE: connected,
 * AUTH/SELECT/PING in flight (the command connection only); READY: usable. */
enum link_state { LINK_CLOSED, LINK_CONNECTING, LINK_HANDSHAKE, LINK_READY };

struct link {
    redisAsyncContext *ac; /* NULL when CLOSED */
    enum link_state state;
    int64_t state_since_ms; /* when it entered its state: connect and handshake deadlines */
};

struct pending {
    struct gw_bus *bus;
    gw_bus_reply_cb cb;
    void *arg;
    int64_t start_us;
    /* Since when its connection has shown no progress: its start, or the
     * last reply before it on the same connection.  The hang watchdog goes
     * by this, so a queue behind a long, flowing reply is not a hang. */
    int64_t idle_since_us;
    TAILQ_ENTRY(pending) link;
    /* Redis Cluster only: where it went, and a copy of the command for a
     * MOVED or ASK redirection (at most BUS_REDIRECTS_MAX of them). */
    redisAsyncContext *ac;
    int argc;
    char **argv;
    size_t *argvlen;
    uint64_t sent_seq; /* the bus's count of commands sent, when this one went out */
    int redirects;
    int retries;            /* TRYAGAIN answers so far */
    struct event *retry_ev; /* waiting to be sent again (ac NULL meanwhile) */
};

/* bus_events.c: drives ac on base with a persistent read event and writes
 * once per loop turn, in the pass after the fan-out's writes (instead of
 * hiredis's libevent adapter).  False on no memory. */
bool gw_bus_events_attach(redisAsyncContext *ac, struct event_base *base);

/* A MOVED/ASK chain longer than this is a cluster in flux: the command fails. */
#define BUS_REDIRECTS_MAX 5
/* TRYAGAIN (a multi-key command while its slot migrates and only some of its
 * keys have moved): sent again every BUS_RETRY_MS, up to this many times. */
#define BUS_RETRIES_MAX 30
#define BUS_RETRY_MS 100

/* Redis Cluster: the command connection to one master. */
struct node_link {
    struct link link;
    char host[256];
    int port;
};

/* Redis Cluster: the sharded subscriber connection to one master
 * (bus_shard.c).  hiredis 0.14's async API drops the replies of SSUBSCRIBE
 * (it knows only subscribe/message), so this one is a bufferevent and a
 * redisReader.  Redis answers in order, and an error (MOVED) names no
 * channel: sent holds what each answer belongs to. */
struct shard_cmd;
struct shard_link {
    struct gw_bus *bus;
    char host[256];
    int port;
    struct bufferevent *bev; /* NULL when closed */
    redisReader *reader;
    enum link_state state; /* CONNECTING or READY while bev is set */
    int64_t state_since_ms;
    int64_t ping_sent_ms; /* 0: no PING unanswered */
    int64_t pong_ms;      /* last answer of any kind */
    struct shard_cmd *sent, **sent_tail;
};

struct gw_bus {
    struct gw_ctx *ctx;
    struct link cmd;
    struct link sub;
    bool reported_up; /* what on_state was last told */
    int backoff_ms;
    struct event *reconnect_timer;
    struct event *watchdog;
    /* Commands sent and not answered, oldest first (Redis answers in
     * order): the oldest one's age is how long Redis has been silent. */
    TAILQ_HEAD(, pending) in_flight;
    int64_t ping_sent_ms;  /* last idle PING on the command connection */
    int64_t probe_sent_ms; /* last delivery probe published */
    int64_t probe_seen_ms; /* last probe that came back through the subscriber */
    bool stalled;          /* what the log last said about delivery */
    char probe_channel[GW_KEY_MAX];
    struct gw_dict *channels;
    gw_bus_message_cb on_message;
    gw_bus_state_cb on_state;
    gw_bus_subscribed_cb on_subscribed;
    void *arg;
    bool freeing;
    /* Redis Cluster (redis-cluster://) only; slots is NULL on one Redis.  cmd
     * and sub go to a seed node: cmd reads the slot map (CLUSTER SLOTS) and
     * carries the commands without a key (PUBLISH reaches every node of a
     * cluster from any); keyed commands go to their slot's master. */
    struct gw_slots *slots;
    bool map_ready;      /* a complete map was loaded */
    bool map_refreshing; /* a CLUSTER SLOTS is in flight */
    int64_t map_at_ms;   /* when the last one was sent */
    struct node_link **nodes;
    size_t nnodes;
    size_t seed; /* the seed cmd and sub connect to next */
    /* The sharded subscriber connections, one per master that serves a
     * channel of ours; shard_retry: a sharded channel waits to be
     * subscribed (again). */
    struct shard_link **shards;
    size_t nshards;
    bool shard_retry;
    int64_t shard_waiting_ms; /* since when a retry left some unsent (0: none) */
    /* Sentinel (redis-sentinel://) only: a connection to one sentinel, which
     * asks for the master's address and then listens on +switch-master; cmd
     * and sub go to that address once it is known. */
    struct link sentinel;
    bool master_known;
    char master_host[256];
    int master_port;
    /* The connection the reply being handed to a callback came from (NULL
     * outside callbacks), and its command's sent_seq: gw_bus_wait_replicas
     * sends WAIT there, or joins a WAIT sent there after that command. */
    redisAsyncContext *reply_ac;
    uint64_t reply_seq;
    uint64_t sent_seq;              /* commands sent so far (struct pending) */
    TAILQ_HEAD(, wait_batch) waits; /* WAITs sent and not answered, oldest first */
};

/* Starts connecting link to host:port (ac->data is bus, keepalive on, state
 * CONNECTING, link->ac set); NULL when that fails at once (logged). */
redisAsyncContext *gw_bus_connect(struct gw_bus *bus, struct link *link, const char *host, int port,
                                  redisConnectCallback *on_up, redisDisconnectCallback *on_down);

/* ---- bus_sentinel.c, for bus.c ---- */

/* Connects to the next sentinel unless connected: it answers the master's
 * address (then cmd and sub connect there) and announces every switch. */
void gw_bus_sentinel_connect(struct gw_bus *bus);
/* Frees the sentinel connection. */
void gw_bus_sentinel_close(struct gw_bus *bus);
/* Frees a command or subscriber connection at once (pending callbacks get NULL); the
 * reconnect timer takes over.  bus.c's, for a master that changed. */
void gw_bus_link_reset(struct gw_bus *bus, struct link *link);
/* Arms the reconnect timer (with backoff). */
void gw_bus_schedule_reconnect(struct gw_bus *bus);

/* ---- bus_cluster.c, for bus.c ---- */

/* Sends a keyed command to the master of its slot (and follows MOVED/ASK);
 * the contract of gw_bus_command. */
int gw_bus_cluster_command(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg, int argc,
                           const char **argv, const size_t *argvlen);
/* Asks the command connection for CLUSTER SLOTS unless one is in flight. */
void gw_bus_cluster_refresh(struct gw_bus *bus);
/* The watchdog's turn for the master connections: a connect past timeout_ms
 * is dropped; the map is refreshed every few seconds. */
void gw_bus_cluster_watch(struct gw_bus *bus, int64_t now_ms, int64_t timeout_ms);
/* Drops the connection ac (a master's or cmd) because a command on it was
 * unanswered too long. */
void gw_bus_cluster_drop(struct gw_bus *bus, redisAsyncContext *ac);
/* Frees every master connection (pending callbacks get NULL). */
void gw_bus_cluster_close(struct gw_bus *bus);
/* Frees the map and the links (after gw_bus_cluster_close). */
void gw_bus_cluster_free(struct gw_bus *bus);
/* The address cmd and sub connect to: the URL's host, or the current seed. */
void gw_bus_target(const struct gw_bus *bus, const char **host, int *port);
/* Sends AUTH on ac when the URL has a password (tag: NULL for a command connection). */
void gw_bus_send_auth(redisAsyncContext *ac, const struct chat_redis_url *u, void *tag);
/* Tells on_state when "up" (command connection ready, slot map in for a
 * cluster, subscriber connected) changed. */
void gw_bus_notify_state(struct gw_bus *bus);
/* p goes out on ac now (again, after a redirection): stamps its sent_seq. */
void gw_bus_pending_sent(struct pending *p, redisAsyncContext *ac);
/* A command about to go out on ac, in in_flight; NULL (cb called with NULL) on no
 * memory.  Finish it with gw_bus_pending_done. */
struct pending *gw_bus_pending_new(struct gw_bus *bus, gw_bus_reply_cb cb, void *arg,
                                   redisAsyncContext *ac);
/* bus.c's reply path, shared: removes p from in_flight, measures, calls back. */
void gw_bus_pending_done(struct pending *p, struct redisReply *reply);

/* ---- bus_shard.c, for bus.c and bus_sub.c ---- */

/* True when channel is one of the sharded kind (room, user) on a cluster. */
bool gw_bus_sharded(const struct gw_bus *bus, const char *channel);
/* The sharded subscriber connection to host:port (host NULL: the master of
 * channel's slot per the map), connecting it if need be; NULL when there is
 * none to be had now. */
struct shard_link *gw_bus_shard_link(struct gw_bus *bus, const char *channel, const char *host,
                                     int port);
/* Queues SSUBSCRIBE (subscribe) or SUNSUBSCRIBE channel on l; false on no memory. */
bool gw_bus_shard_send(struct shard_link *l, bool subscribe, const char *channel);
/* The watchdog's turn: connect timeouts, PING every second on each
 * connection, one unanswered for timeout_ms drops it; channels waiting for a
 * subscription are sent again. */
void gw_bus_shard_watch(struct gw_bus *bus, int64_t now_ms, int64_t timeout_ms);
/* True when every sharded connection answers (its PINGs come back). */
bool gw_bus_shard_ok(const struct gw_bus *bus);
/* Frees every sharded connection (their channels are lost), and the array. */
void gw_bus_shard_close(struct gw_bus *bus);

/* ---- bus_sub.c, for bus.c and bus_shard.c ---- */

/* A push on a subscriber connection (from: the sharded one it came on, NULL
 * for the classic one): message, (s)subscribe, (s)unsubscribe.  reply is
 * borrowed. */
void gw_bus_sub_push(struct gw_bus *bus, struct shard_link *from, const struct redisReply *reply);
/* Redis answered SSUBSCRIBE channel on from with an error: MOVED names the
 * master to ask (host, port), anything else leaves host NULL. */
void gw_bus_sub_refused(struct gw_bus *bus, struct shard_link *from, const char *channel,
                        const char *host, int port);
/* The sharded connection l is lost: its channels are unsubscribed, their
 * waiters hear ok=false, and those still wanted are subscribed again on the
 * watchdog's next turn. */
void gw_bus_sub_shard_lost(struct gw_bus *bus, struct shard_link *l);
/* Subscribes every sharded channel that is wanted and not subscribed. */
void gw_bus_sub_retry(struct gw_bus *bus);

/* The subscriber connection is up: channels nobody wants any more are
 * forgotten, the others are subscribed again. */
void gw_bus_sub_resubscribe(struct gw_bus *bus);
/* The subscriber connection is lost: every channel is unsubscribed and its
 * waiters hear ok=false. */
void gw_bus_sub_lost(struct gw_bus *bus);
/* Frees every channel (their waiters hear ok=false); the table stays. */
void gw_bus_sub_free_channels(struct gw_bus *bus);

#endif
