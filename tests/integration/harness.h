#ifndef CHAT_TEST_HARNESS_H
#define CHAT_TEST_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Integration-test harness: a real redis-server and real chat-gateway
 * processes on free loopback ports, each started with fork/exec and stopped
 * by PID (SIGTERM, then SIGKILL), plus helpers that drive libchat_client on
 * an event loop with a deadline.  Children also get PR_SET_PDEATHSIG so a test
 * process killed by its watchdog or by Check never leaves servers behind.
 */

struct event_base;
struct chat_client;
struct chat_client_options;

/* 40 bytes, shared by every gateway a test starts. */
#define H_JWT_SECRET "integration-test-secret-0123456789abcdef"
#define H_MAX_GATEWAYS 4
#define H_TIMEOUT_MS 5000

struct h_proc {
    pid_t pid; /* 0 when not running */
    int port;
    char log_path[256];
};

struct h_cluster {
    char dir[128]; /* temp dir for logs, removed by h_cluster_stop */
    struct h_proc redis;
    struct h_proc redis_more[5]; /* CHAT_TEST_REDIS_CLUSTER=3 or 6: the other nodes */
    struct h_proc gw[H_MAX_GATEWAYS];
    char http_url[H_MAX_GATEWAYS][64]; /* http://127.0.0.1:P */
    char ws_url[H_MAX_GATEWAYS][64];   /* ws://127.0.0.1:P/ws */
    int n_gw;
    struct event_base *base;
};

/* For runner mains: makes a temp dir that every cluster of the run lives in
 * (exported as CHAT_IT_DIR), and removes it at the end, unless CHAT_IT_KEEP is
 * set.  A failed Check assertion exits the forked test with _exit, skipping
 * its teardown; the runner's cleanup still removes the logs, while
 * PR_SET_PDEATHSIG has already killed the servers. */
int h_suite_begin(char *dir, size_t dir_size);
void h_suite_end(const char *dir);

/* A loopback TCP port that was free a moment ago, or -1. */
int h_free_port(void);

/* Arms alarm(seconds): the default SIGALRM action kills a hung test. */
void h_watchdog(unsigned seconds);

/* Makes the temp dir, starts redis-server and waits for PING.  0 or -1. */
int h_cluster_init(struct h_cluster *cl);
/* Starts one more gateway (node id gwN, N = index + 1) with extra args
 * (NULL-terminated list, may be NULL) and waits until /healthz answers 200
 * (10 s).  Returns its index, or -1 (the log is printed to stderr). */
int h_cluster_add_gateway(struct h_cluster *cl, const char *const *extra_args);
/* Starts redis-server again on its old port (or a free one the first time)
 * and waits for PING; 0 or -1. */
int h_redis_start(struct h_cluster *cl);
/* CHAT_TEST_REDIS_CLUSTER set (not "0"): every redis-server the harness starts is a
 * one-node Redis Cluster owning all 16384 slots.  It serves every key, but refuses a
 * command or script whose keys span slots, and SELECT, as a real cluster does: the
 * suites run that way prove that the gateway keeps to what Redis Cluster allows. */
bool h_redis_cluster_mode(void);
/* 3 when CHAT_TEST_REDIS_CLUSTER is "3": three masters (redis-cli --cluster create), the
 * gateways given redis-cluster:// with two of them as seeds; else 1. */
int h_redis_masters(void);
/* How many redis-servers make the cluster: 6 when CHAT_TEST_REDIS_CLUSTER is "6"
 * (three masters, a replica each: --cluster-replicas 1, every node a seed of the
 * gateways), else h_redis_masters(). */
int h_redis_nodes(void);
/* In cluster mode, gives the node at port every slot unless it has them (nodes.conf)
 * and waits up to 10 s for cluster_state:ok; 0 or -1. */
int h_redis_cluster_ready(int port);
/* Starts a redis-server replicating cl's (port chosen when p->port is 0) and waits
 * until the master counts it as connected and its link is up; 0 or -1.  Stop it
 * with h_proc_stop. */
int h_redis_replica_start(struct h_cluster *cl, struct h_proc *p);
/* Starts cluster node p (cl->redis or one of cl->redis_more) again, on its port
 * and with its nodes.conf, and waits for PING; 0 or -1. */
int h_redis_node_restart(struct h_cluster *cl, struct h_proc *p);
/* Starts a sentinel (redis-server --sentinel) watching cl's Redis as master_name,
 * quorum 1, down after 1 s, told of the replica on replica_port (unless 0), and
 * waits for PING; 0 or -1.  Stop it with h_proc_stop. */
int h_sentinel_start(struct h_cluster *cl, struct h_proc *p, const char *master_name,
                     int replica_port);
/* Whether the file at path contains needle (a process's log). */
bool h_log_has(const char *path, const char *needle);
/* Stops redis-server by PID; 0 or -1. */
int h_redis_stop(struct h_cluster *cl);
/* Stops gateways and redis by PID, frees the event base, removes the dir.
 * Returns how many gateways misbehaved (did not exit 0 on SIGTERM, or logged
 * a sanitizer report); their logs are printed to stderr first. */
int h_cluster_stop(struct h_cluster *cl);

/* SIGTERM, wait up to timeout_ms, then SIGKILL.  Returns the wait status, or
 * -1 if the process had to be killed or was not running. */
int h_proc_stop(struct h_proc *p, int timeout_ms);
/* Waits up to timeout_ms for p to exit on its own; wait status or -1. */
int h_proc_wait(struct h_proc *p, int timeout_ms);
void h_dump_log(const struct h_proc *p);

/* Runs argv (argv[0] a path) with stdout and stderr captured, waits up to
 * timeout_ms (then kills it).  Returns the wait status or -1; *err_out gets
 * stderr (malloc'd) when not NULL. */
int h_run_capture(const char *const *argv, char **out, char **err_out, int timeout_ms);

/* Runs the loop until pred(arg) is true or timeout_ms passes.  Returns pred's
 * last value. */
bool h_loop_until(struct event_base *base, bool (*pred)(void *), void *arg, int timeout_ms);
/* Runs the loop for ms milliseconds. */
void h_loop_for(struct event_base *base, int ms);

/* POST /api/login at gateway i; 200 or the status.  *token and *id malloc'd
 * (either out pointer may be NULL). */
int h_login(const struct h_cluster *cl, int i, const char *nick, char **token, char **id);
/* A counter of gateway i's /metrics (0 when absent); fails the running test
 * when /metrics does not answer 200. */
unsigned long long h_metric(const struct h_cluster *cl, int i, const char *name);

/* An HS256 JWT signed with `secret` over the given claims (JSON text) with
 * header alg `alg` ("HS256", "none" ...).  For "none" the signature is empty.
 * malloc'd. */
char *h_jwt(const char *secret, const char *alg, const char *claims_json);

/* Sends raw bytes to gateway i and returns the status of the answer (-1 if
 * none); *resp gets the whole response text when not NULL. */
int h_raw(const struct h_cluster *cl, int i, const void *req, size_t len, char **resp);
/* Opens a connection to gateway i, sends req and reads until the response
 * head is complete, then leaves the socket open and unread (a peer that stops
 * responding).  Returns the fd (the caller closes it) and the status in
 * *status, or -1. */
int h_raw_open(const struct h_cluster *cl, int i, const char *req, int *status);
/* The body of a raw response (after the blank line) parsed as JSON, or NULL. */
json_t *h_resp_json(const char *resp);

/*
 * Test client: one chat_client plus a queue of the JSON frames it received.
 */
struct tc {
    struct event_base *base;
    struct chat_client *c;
    json_t *frames; /* array, oldest first */
    bool opened, refused, closed;
    int code;   /* REFUSED status or CLOSED code */
    int binary; /* binary frames received */
};

/* Starts connecting to url with token (as Authorization: Bearer, or NULL)
 * and origin (or NULL).  NULL only on a bad URL. */
struct tc *tc_new(struct event_base *base, const char *url, const char *token, const char *origin);
/* Same with full options; url, token, origin and max_message are used, the
 * callbacks are the test client's. */
struct tc *tc_new_opts(struct event_base *base, const struct chat_client_options *opts);
/* Connects and waits for OPEN; NULL when refused (status in *status if not
 * NULL) or on timeout. */
struct tc *tc_connect(struct event_base *base, const char *url, const char *token,
                      const char *origin, int *status);
/* Waits until OPEN, REFUSED or CLOSED; true when open. */
bool tc_wait_open(struct tc *t, int timeout_ms);
/* Removes and returns (new reference) the first queued frame of type `type`,
 * waiting up to timeout_ms; NULL on timeout or close. */
json_t *tc_wait_type(struct tc *t, const char *type, int timeout_ms);
/* Removes and returns the oldest frame, waiting up to timeout_ms. */
json_t *tc_next(struct tc *t, int timeout_ms);
/* Waits for CLOSED (or REFUSED); returns the code, or -1 on timeout. */
int tc_wait_closed(struct tc *t, int timeout_ms);
/* Sends a JSON text frame built with json_pack-like formatting of `json`. */
int tc_send(struct tc *t, const char *text);
int tc_sendf(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Logs nick in at gateway i, connects (offering permessage-deflate when
 * deflate) and waits for `welcome`; NULL on any failure. */
struct tc *tc_welcomed(const struct h_cluster *cl, int i, const char *nick, bool deflate);
/* Sends a join of room and waits for its `joined`; false on error or timeout. */
bool tc_join(struct tc *t, const char *room);
void tc_free(struct tc *t);

#endif
