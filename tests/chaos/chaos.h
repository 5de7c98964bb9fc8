#ifndef CHAT_CHAOS_H
#define CHAT_CHAOS_H

/*
 * chat-chaos: steady load over a small cluster (redis-server + N gateways on
 * loopback) while faults are injected on a seeded schedule, then an
 * independent check of the delivery promise (docs/architecture.md,
 * "Guarantees") from the clients' own logs and from Redis.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct event;
struct event_base;
struct chat_client;
struct ch_run;

#define CH_MAX_GW 8
#define CH_MAX_ROOMS 8
#define CH_JWT_SECRET "chaos-test-secret-0123456789abcdef0123456789"

/* ---- processes (procs.c) ---- */

struct ch_proc {
    const char *name; /* "redis", "gw1" ... */
    pid_t pid;        /* 0 when not running */
    int port;
    char log_path[512];
    bool expect_exit;     /* we killed or stopped it */
    bool stopped;         /* SIGSTOP sent, no SIGCONT yet */
    int unexpected_exits; /* exits we did not cause */
    char last_status[64];
};

struct ch_procs {
    char dir[256];
    char redis_dir[300];
    const char *gateway_bin;
    const char *redis_bin;
    struct ch_proc redis;
    struct ch_proc gw[CH_MAX_GW];
    char gw_name[CH_MAX_GW][16];
    int n_gw;
};

int ch_free_port(void);
int ch_redis_start(struct ch_procs *p);
int ch_gw_start(struct ch_procs *p, int i);
/* Waits (blocking) until redis answers PING / gateway i answers /healthz 200. */
int ch_redis_wait(struct ch_procs *p, int timeout_ms);
int ch_gw_wait(struct ch_procs *p, int i, int timeout_ms);
/* Reaps exited children; records exits nobody asked for. */
void ch_reap(struct ch_procs *p);
/* SIGTERM then SIGKILL after timeout_ms; wait status or -1. */
int ch_proc_stop(struct ch_procs *p, struct ch_proc *pr, int timeout_ms);
void ch_stop_all(struct ch_procs *p);
/* A synchronous Redis command (hiredis); returns the reply (freeReplyObject)
 * or NULL. */
void *ch_redis_cmd(struct ch_procs *p, int timeout_ms, const char *fmt, ...);

/* ---- the run's records, read by the checker (check.c) ---- */

enum { M_QUEUED, M_INFLIGHT, M_ACKED };

struct ch_msg {
    int room;
    int state;
    double t_create, t_first_send, t_last_send, t_ack, retry_at;
    long long ack_seq;
    int sends;
    int errors;
    bool unanswered_reported;
};

struct ch_deliv {
    long long seq;
    int from_client, msg_no; /* -1 when the id is not one of ours */
    double t;
    char via; /* 'L' live, 'J' joined reply, 'H' history page */
};

struct ch_interval {
    double a, b; /* joined reply received .. connection/membership gone (b < 0: still in) */
    long long since;
    bool recovered;
};

struct ch_croom {
    bool member;
    bool joined, join_pending, paging, hist_pending, leave_pending, join_unanswered;
    double t_join_sent, next_try_at;
    long long last_seq;
    struct ch_deliv *d;
    size_t nd, dcap;
    struct ch_interval *iv;
    size_t niv, ivcap;
    void *buffered; /* json_t array of live messages held while paging */
    int resyncs;
    int not_recovered;
    bool sabotaged; /* --sabotage done here */
};

struct ch_client {
    int idx;
    char nick[32];
    char *token, *uid;
    struct chat_client *cc;
    struct ch_run *run;
    int gw;   /* gateway of the current / next attempt */
    int conn; /* 0 down, 1 connecting, 2 open */
    double backoff_ms;
    struct event *reconnect_ev;
    struct ch_croom r[CH_MAX_ROOMS];
    int rooms[2], n_rooms, next_room;
    struct ch_msg *m;
    size_t nm, mcap, lo; /* lo: below it every message is acked */
    double next_create;
    double tokens, t_tokens;
    int seq_join, seq_hist;
    int connects, closes, refusals;
    FILE *log;
};

struct ch_counts {
    long sent, acked, skipped, errors_unavailable, errors_rate, errors_other, resends;
    long faults, f_gw_kill, f_pubsub_kill, f_redis_stop, f_redis_restart;
    long closes, refusals, resyncs, not_recovered;
};

struct ch_run {
    struct event_base *base;
    struct ch_procs procs;
    struct ch_client *clients;
    int n_clients, n_rooms;
    const char *room_names[CH_MAX_ROOMS];
    double t0; /* monotonic ms at start */
    int phase; /* 0 setup, 1 load, 2 settle, 3 done */
    struct ch_counts n;
    uint64_t rng_client;
    bool verbose;
    /* violations */
    char **viol;
    size_t n_viol, viol_cap;
    long viol_by_kind[16];
};

enum {
    V_LOST,
    V_DUP_STORED,
    V_SEQ_MISMATCH,
    V_ACK_CONFLICT,
    V_HIST_GAP,
    V_UNDELIVERED,
    V_GAP,
    V_DUP_DELIVERY,
    V_OUT_OF_ORDER,
    V_CONTENT,
    V_UNANSWERED,
    V_CRASH,
    V_SETTLE,
    V_OTHER,
    V_NKINDS
};
extern const char *const ch_viol_names[V_NKINDS];

double ch_now(const struct ch_run *run); /* ms since start */
void ch_violation(struct ch_run *run, int kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ch_msg_id(char *buf, size_t len, int client, int no);
bool ch_parse_msg_id(const char *id, int *client, int *no);

/* The final check: reads every room's history from Redis and compares it
 * with every client's records.  Prints the counts; returns the number of
 * violations found (also recorded with ch_violation). */
long ch_check(struct ch_run *run);

#endif
