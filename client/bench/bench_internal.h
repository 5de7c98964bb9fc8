#ifndef BENCH_INTERNAL_H
#define BENCH_INTERNAL_H

/*
 * chat-bench's shared state, between bench.c (the event loop: ramp, send,
 * receive, drain), options.c, procstat.c and report.c.  One struct bench per
 * process, owned by main().
 */
#include "hist.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

struct chat_client;
struct event;
struct event_base;
struct evhttp_connection;

#define BENCH_TICK_US 1000
#define BENCH_MAX_INFLIGHT 256         /* logins + handshakes + joins at once */
#define BENCH_LOGIN_CONNS 4            /* keep-alive login connections per gateway */
#define BENCH_SETUP_STALL_NS (30 * NS) /* ramp gives up after this long without progress */
#define BENCH_CLOSE_WAIT_NS (3 * NS)
#define BENCH_MAX_SEQ_SPAN (1u << 26) /* largest seq distance a bitmap follows */
#define BENCH_TAG "cb1"
#define BENCH_MAX_UNACKED 64 /* per client, whatever the mode */
#define NS 1000000000ull
#define BENCH_IMAGE_HEAD "data:image/png;base64,"
#define BENCH_IMAGE_MAX_SIZE (1024 * 1024)

enum bench_body { BENCH_BODY_X, BENCH_BODY_WORDS, BENCH_BODY_IMAGE };

enum phase { PH_RAMP, PH_SEND, PH_DRAIN, PH_CLOSE, PH_DONE };

enum cstate {
    CS_WAITING, /* not started yet */
    CS_LOGIN,   /* POST /api/login in flight */
    CS_CONNECT, /* WebSocket handshake in flight */
    CS_WELCOME, /* open, waiting for welcome */
    CS_JOINING, /* join sent */
    CS_JOINED,  /* in its room: sends and receives */
    CS_FAILED,  /* setup failed; never counted as a member */
    CS_CLOSED,  /* was joined, connection lost */
};

struct bench_opts {
    char **urls;
    size_t n_urls;
    long clients;
    long rooms;
    double rate;
    bool max;
    long window;
    long size;
    double duration;
    double warmup;
    double ramp;
    double drain;
    pid_t *pids;
    size_t n_pids;
    bool json;
    bool presence_batch;  /* --presence-batch */
    bool deflate;         /* --deflate: offer permessage-deflate */
    enum bench_body body; /* --body */
    const char *nick_prefix;
};

struct bitmap {
    uint64_t *words;
    size_t n_words;
};

struct send_slot {
    uint64_t counter;
    uint64_t t_ns;
};

struct bench;

struct bclient {
    struct bench *b;
    struct chat_client *cc;
    char *token;
    long idx;
    int room;
    int url;
    enum cstate state;
    int login_tries;
    uint64_t t_start;   /* login request sent */
    uint64_t t_connect; /* chat_client_new called */
    int64_t join_seq;   /* last seq in the joined reply */
    int64_t max_seq;    /* highest seq delivered live */
    struct bitmap seen; /* live seqs seen, bit (seq - room base - 1) */
    uint64_t counter;   /* messages sent */
    long unacked;
    long unechoed;           /* --max: own messages not yet delivered back to this client */
    struct send_slot *slots; /* send times of unacked messages, by counter % window */
};

struct room {
    char name[40];
    long *members; /* client indexes */
    long n_members;
    long n_open;   /* members joined and still connected */
    int64_t base;  /* highest join seq of its members when sending began */
    long inflight; /* --max: messages sent and not yet back at their sender */
    long cursor;   /* --max: next member to send */
    struct bitmap acked;
};

struct login_pool {
    struct evhttp_connection *conns[BENCH_LOGIN_CONNS];
    int next;
    char host[256];
};

struct proc_sample {
    uint64_t cpu_ticks;
    uint64_t rss_kib;
    bool ok;
};

struct proc_watch {
    pid_t pid;
    char comm[64];
    struct proc_sample start, connected, measure_start, measure_end;
    uint64_t rss_peak_kib;
};

struct counters {
    uint64_t sent, acked, send_errors, rate_limited, other_errors;
    uint64_t delivered;      /* live deliveries of this run's messages, repeats excluded */
    uint64_t delivered_meas; /* of those, received inside the measured window */
    uint64_t duplicated, out_of_order, foreign, bad_frames;
    uint64_t events; /* presence, online, offline, room_created ...: counted, not checked */
    uint64_t connected, failed, disconnected, login_failed;
    uint64_t expected_running; /* expected deliveries of acked messages, for the drain */
    uint64_t unacked;
};

struct bench {
    struct bench_opts o;
    struct event_base *base;
    struct event *tick;
    struct event *sigint;
    struct bclient *clients;
    struct room *rooms;
    struct login_pool *pools;
    struct proc_watch *procs;
    char run_id[16];
    char **nicks;
    enum phase phase;
    uint64_t t0, t_ramp_done, t_send, t_measure, t_send_end, t_drain_end, t_close;
    uint64_t t_progress, t_last_setup_progress;
    long next_start; /* next client to start */
    long inflight;
    long settled; /* clients joined or failed */
    long rr;      /* round-robin cursor for --rate */
    long n_slots; /* send times kept per client: its most unacked messages */
    uint64_t scheduled;
    struct counters n;
    struct bench_hist lat, ack_lat, login_lat, connect_lat;
    struct bench_hist lat_same, lat_cross; /* sender on the same / another gateway URL */
    struct rusage ru_start;
    uint64_t machine_busy[2], machine_total[2]; /* /proc/stat at measure start and end */
    bool measure_sampled;
    uint64_t wire_in[2], wire_out[2]; /* clients' socket bytes at measure start and end */
    long deflate_clients;             /* clients with permessage-deflate in force */
    bool tty;
    bool interrupted;
};

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static inline bool bench_bitmap_get(const struct bitmap *m, uint64_t i)
{
    size_t w = (size_t)(i / 64);

    return w < m->n_words && (m->words[w] & (1ull << (i % 64)));
}

/* options.c: 0, 1 for --help, -1 for bad usage (the reason printed). */
int bench_options_parse(int argc, char **argv, struct bench_opts *o);
void bench_options_usage(FILE *out);
void bench_options_free(struct bench_opts *o);

/* procstat.c: samples every --pids process into one of its slots (PEAK only
 * updates the peak RSS); MEASURE_START and MEASURE_END also sample the
 * whole machine's CPU. */
enum bench_sample {
    BENCH_SAMPLE_START,
    BENCH_SAMPLE_CONNECTED,
    BENCH_SAMPLE_MEASURE_START,
    BENCH_SAMPLE_MEASURE_END,
    BENCH_SAMPLE_PEAK,
};
void bench_procs_sample(struct bench *b, enum bench_sample which);
/* Reads /proc/PID/comm into comm; -1 when there is no such process. */
int bench_proc_name(pid_t pid, char *comm, size_t len);

/* report.c: prints the results (text or --json) and returns the exit status. */
int bench_report(struct bench *b);

/* bench.c: n body characters of the given kind, deterministic in seed. */
void bench_fill_body(enum bench_body kind, uint64_t seed, char *out, size_t n);

#endif
