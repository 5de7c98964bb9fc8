/*
 * What a master killed under load loses (CHAT_TEST_REDIS_CLUSTER=6: three
 * masters with a replica each, CT_CASES=failover; not part of tests/run).
 * Four clients on two gateways post to one room without pause; 3 s in, the
 * master owning the room's slot gets SIGKILL and the cluster promotes its
 * replica.  At the end, every acked message is looked for in the room's
 * history on the new master.  2 s after the kill the old master is started
 * again and rejoins as the new master's replica (until then that shard has no
 * replica, and --durability replica acks nothing there).  CT_DURABILITY (primary or replica) is the
 * gateways' --durability.  Prints one line of figures; asserts that the
 * gateways follow the promoted replica within 10 s, and, with replica, that no
 * acked message is lost and no message a member saw live is.
 * test_frozen_master: the same master frozen (SIGSTOP) instead of killed.
 * sentinel_load (one Redis, a replica and a sentinel; CT_CASES=sentinel_load):
 * the same kill under load, followed through Sentinel.
 */
#include "chat_tests.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define FO_CLIENTS 4
#define FO_SECONDS 12
#define FO_KILL_AT_MS 3000
#define FO_MAX (FO_CLIENTS * 40000)

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The harness process serving port (the room's master). */
static struct h_proc *proc_of(struct h_cluster *cl, int port)
{
    if (cl->redis.port == port)
        return &cl->redis;
    for (int i = 0; i < 5; i++)
        if (cl->redis_more[i].port == port)
            return &cl->redis_more[i];
    return NULL;
}

static int master_of_room(int any_port, const char *room)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", any_port, tv);
    ck_assert(rc && rc->err == 0);
    redisReply *slot = redisCommand(rc, "CLUSTER KEYSLOT chat:room:{%s}:seq", room);
    redisReply *map = redisCommand(rc, "CLUSTER SLOTS");
    int port = 0;
    ck_assert(slot && slot->type == REDIS_REPLY_INTEGER && map && map->type == REDIS_REPLY_ARRAY);
    for (size_t i = 0; i < map->elements; i++) {
        redisReply *r = map->element[i];
        if (slot->integer >= r->element[0]->integer && slot->integer <= r->element[1]->integer)
            port = (int)r->element[2]->element[1]->integer;
    }
    freeReplyObject(slot);
    freeReplyObject(map);
    redisFree(rc);
    return port;
}

/* The failure: kill at FO_KILL_AT_MS, restart 2 s later, and where the
 * room's history is read afterwards. */
struct victim {
    void (*kill)(struct h_cluster *cl, void *arg);
    void (*restart)(struct h_cluster *cl, void *arg);
    int survivor_port;
    void *arg;
};

/* FO_CLIENTS clients (all) post to room "fo" without pause for seconds
 * through v's kill and restart; then every acked message is looked for in
 * the history on v->survivor_port, and so is every message all[0] saw live.
 * Prints one line of figures; asserts posting is acked again within
 * ack_within_ms of the kill and, with --durability replica (mode), that
 * nothing acked or seen is lost. */
static void post_through_failover(struct h_cluster *cl, struct tc **all, const char *mode,
                                  const struct victim *v, int seconds, long ack_within_ms)
{
    static char acked[FO_MAX][24];
    size_t nacked = 0, sent = 0, unavailable = 0, timeouts = 0, other = 0;
    long start = mono_ms(), killed_at = 0, first_ack_after = 0;
    bool restarted = false;
    char other_code[32] = "-";
    for (int n = 0; mono_ms() - start < seconds * 1000 && sent + FO_CLIENTS <= FO_MAX; n++) {
        char ids[FO_CLIENTS][24];
        for (int i = 0; i < FO_CLIENTS; i++) {
            snprintf(ids[i], sizeof(ids[i]), "c%d-%d", i, n);
            ct_send(all[i],
                    "{\"type\":\"message\",\"room\":\"fo\",\"kind\":\"text\",\"body\":\"x\","
                    "\"id\":\"%s\"}",
                    ids[i]);
            sent++;
        }
        for (int i = 0; i < FO_CLIENTS; i++) {
            json_t *r = ct_reply(all[i], ids[i], 6000);
            const char *type = r ? ct_json_str(r, "type") : NULL;
            if (type && strcmp(type, "ack") == 0) {
                memcpy(acked[nacked++], ids[i], sizeof(ids[i]));
                if (killed_at && !first_ack_after)
                    first_ack_after = mono_ms();
            } else if (type && strcmp(type, "error") == 0 &&
                       strcmp(ct_json_str(r, "code"), "unavailable") == 0) {
                unavailable++;
            } else if (!r) {
                timeouts++;
            } else {
                other++;
                snprintf(other_code, sizeof(other_code), "%s",
                         type && strcmp(type, "error") == 0 ? ct_json_str(r, "code") : "?");
            }
            json_decref(r);
        }
        if (!killed_at && mono_ms() - start >= FO_KILL_AT_MS) {
            v->kill(cl, v->arg);
            killed_at = mono_ms();
        }
        if (killed_at && !restarted && mono_ms() - killed_at >= 2000) {
            v->restart(cl, v->arg);
            restarted = true;
        }
    }
    ck_assert_msg(killed_at > 0, "the master was never killed");

    /* What the promoted replica holds. */
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout("127.0.0.1", v->survivor_port, tv);
    ck_assert(rc && rc->err == 0);
    redisSetTimeout(rc, tv);
    /* Until the survivors agree who serves the slot, they may point at the dead master. */
    redisReply *hist = NULL;
    for (long until = mono_ms() + 10000; mono_ms() < until;) {
        hist = ct_redis_cmd(rc, "LRANGE chat:room:{fo}:history 0 -1");
        if (hist && hist->type == REDIS_REPLY_ARRAY)
            break;
        freeReplyObject(hist);
        hist = NULL;
        h_loop_for(cl->base, 200);
    }
    ck_assert_msg(hist, "history unreadable: acked=%zu unavailable=%zu timeouts=%zu", nacked,
                  unavailable, timeouts);
    size_t lost = 0;
    for (size_t k = 0; k < nacked; k++) {
        char needle[40];
        bool found = false;
        snprintf(needle, sizeof(needle), "\"id\":\"%.23s\"", acked[k]);
        for (size_t j = 0; j < hist->elements && !found; j++)
            found = strstr(hist->element[j]->str, needle) != NULL;
        lost += !found;
    }
    /* What one member saw live: with replica, only what a replica had, so
     * nothing a member saw is missing after the failover. */
    h_loop_for(cl->base, 500);
    json_t *live = ct_take(all[0], "message", "fo"), *m;
    size_t i, seen_lost = 0;
    json_array_foreach(live, i, m)
    {
        char needle[40];
        bool found = false;
        snprintf(needle, sizeof(needle), "\"id\":\"%.23s\"", ct_json_str(m, "id"));
        for (size_t j = 0; j < hist->elements && !found; j++)
            found = strstr(hist->element[j]->str, needle) != NULL;
        seen_lost += !found;
    }
    fprintf(stderr,
            "%s: durability=%s sent=%zu acked=%zu unavailable=%zu timeouts=%zu other=%zu "
            "(%s) history=%zu acked_lost=%zu seen_live=%zu seen_lost=%zu "
            "first_ack_after_kill_ms=%ld\n",
            tcase_name(), mode, sent, nacked, unavailable, timeouts, other, other_code,
            hist->elements, lost, json_array_size(live), seen_lost,
            first_ack_after ? first_ack_after - killed_at : -1);
    json_decref(live);
    freeReplyObject(hist);
    redisFree(rc);
    ck_assert_msg(first_ack_after && first_ack_after - killed_at <= ack_within_ms,
                  "no ack within %ld ms of the kill", ack_within_ms);
    if (strcmp(mode, "replica") == 0) {
        ck_assert_msg(lost == 0, "%zu acked messages lost with --durability replica", lost);
        ck_assert_msg(seen_lost == 0,
                      "%zu messages seen live and then lost with --durability replica", seen_lost);
    }
}

static void kill_proc(struct h_cluster *cl, void *arg)
{
    (void)cl;
    struct h_proc *p = arg;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

static void restart_node(struct h_cluster *cl, void *arg)
{
    ck_assert_int_eq(h_redis_node_restart(cl, arg), 0);
}

START_TEST(test_failover_loss)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[FO_CLIENTS];
    struct tc *all[FO_CLIENTS];
    const char *mode = getenv("CT_DURABILITY") ? getenv("CT_DURABILITY") : "primary";
    const char *args[] = {"--rate", "1000000/1000000", "--history", "100000", "--durability", mode,
                          NULL};

    ct_cluster_start(cl, 2, args);
    ct_team(cl, "fo_", FO_CLIENTS, "fo", u, all);
    int master = master_of_room(cl->redis.port, "fo");
    struct h_proc *victim = proc_of(cl, master);
    ck_assert_ptr_nonnull(victim);
    struct victim v = {kill_proc, restart_node,
                       master == cl->redis.port ? cl->redis_more[0].port : cl->redis.port, victim};
    post_through_failover(cl, all, mode, &v, FO_SECONDS, 10000);
    ct_team_free(FO_CLIENTS, u, all);
}
END_TEST

/* A master that stops answering without closing anything (SIGSTOP: the
 * kernel keeps its connections open and even takes the gateways' bytes), as
 * a frozen VM or a half-open connection would.  The cluster promotes its
 * replica.  The gateways must notice that their sharded subscriber
 * connection to it is hung and subscribe on the new master: a member gets
 * what the new master acks while the old one is still frozen.  Then the old
 * master resumes and rejoins as a replica: nothing is delivered twice. */
START_TEST(test_frozen_master)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[2];
    struct tc *all[2];
    const char *args[] = {"--rate", "500/500", NULL};

    ct_cluster_start(cl, 2, args);
    ct_team(cl, "fz_", 2, "frozen", u, all); /* one member per gateway */
    ck_assert_int_eq(ct_post(all[0], "frozen", "f1", "before"), 1);
    ck_assert(ct_wait_count(all, 2, "message", "frozen", 1, CT_WAIT_MS));
    struct h_proc *victim = proc_of(cl, master_of_room(cl->redis.port, "frozen"));
    ck_assert_ptr_nonnull(victim);

    kill(victim->pid, SIGSTOP);
    long stopped_at = mono_ms();
    long long seq = ct_post_until_acked(all[0], "frozen", "f2", "while frozen", 15000);
    long acked_after = mono_ms() - stopped_at;
    bool delivered = ct_wait_count(&all[1], 1, "message", "frozen", 2, 10000);
    long delivered_after = mono_ms() - stopped_at;
    bool hung_seen = h_log_has(cl->gw[1].log_path, "redis_hung conn=shard");
    kill(victim->pid, SIGCONT);
    fprintf(stderr,
            "frozen master: acked by the promoted replica after %ld ms, delivered on the "
            "other gateway after %ld ms, hung shard connection logged: %s\n",
            acked_after, delivered_after, hung_seen ? "yes" : "no");
    ck_assert_msg(seq == 2, "no ack while the master was frozen (%lld)", seq);
    ck_assert_msg(delivered, "the other gateway's member did not get f2 while the old master "
                             "was frozen");

    /* The old master is back (a replica now): everything once, in order. */
    ck_assert_int_eq(ct_post_until_acked(all[1], "frozen", "f3", "after", 15000), 3);
    ck_assert(ct_wait_count(all, 2, "message", "frozen", 3, CT_WAIT_MS));
    h_loop_for(cl->base, 1500);
    for (int i = 0; i < 2; i++) {
        json_t *msgs = ct_take(all[i], "message", "frozen");
        ct_assert_seqs(msgs, 1, 3, "frozen master");
        json_decref(msgs);
    }
    ct_team_free(2, u, all);
}
END_TEST

static void kill_redis(struct h_cluster *cl, void *arg)
{
    (void)arg;
    ct_redis_kill(cl);
}

static void start_redis(struct h_cluster *cl, void *arg)
{
    (void)arg;
    ct_redis_start(cl);
}

/* The same with Sentinel (one master, one replica, one sentinel that takes
 * a master silent for 1 s as down): the master gets SIGKILL under load, the
 * sentinel promotes the replica and the gateways follow +switch-master;
 * restarted 2 s later, the old master is made the new one's replica by the
 * sentinel, and only then does --durability replica ack again. */
START_TEST(test_sentinel_failover_under_load)
{
    struct h_cluster *cl = ct_fixture();
    struct ct_user u[FO_CLIENTS];
    struct tc *all[FO_CLIENTS];
    struct h_proc replica = {0}, sentinel = {0};
    char url[96];

    ck_assert_int_eq(h_cluster_init(cl), 0);
    ck_assert_int_eq(h_redis_replica_start(cl, &replica), 0);
    ck_assert_int_eq(h_sentinel_start(cl, &sentinel, "chatmaster", replica.port), 0);
    snprintf(url, sizeof(url), "redis-sentinel://127.0.0.1:%d/chatmaster", sentinel.port);
    const char *args[] = {"--redis",         url,         "--rate",
                          "1000000/1000000", "--history", "100000",
                          "--durability",    "replica",   NULL};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(h_cluster_add_gateway(cl, args), i);
    ct_team(cl, "fo_", FO_CLIENTS, "fo", u, all);
    /* The sentinel must know the replica before it can promote it. */
    for (int i = 0; i < 100 && !ct_sentinel_replica_ready(sentinel.port); i++)
        h_loop_for(cl->base, 100);
    ck_assert(ct_sentinel_replica_ready(sentinel.port));
    struct victim v = {kill_redis, start_redis, replica.port, NULL};
    post_through_failover(cl, all, "replica", &v, 25, 20000);
    char newport[16];
    snprintf(newport, sizeof(newport), "%d", replica.port);
    ck_assert(ct_sentinel_says(sentinel.port, "get-master-addr-by-name", newport));
    ck_assert(h_log_has(cl->gw[0].log_path, "redis_sentinel_master"));
    ct_team_free(FO_CLIENTS, u, all);
    h_proc_stop(&sentinel, 5000);
    h_proc_stop(&replica, 5000);
}
END_TEST

/* Only when named in CT_CASES (runner.c): about 20 s, not part of tests/run. */
TCase *sentinel_load_tcase(void)
{
    TCase *tc = tcase_create("sentinel_load");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sentinel_failover_under_load);
    return tc;
}

TCase *failover_tcase(void)
{
    TCase *tc = tcase_create("failover");

    tcase_add_checked_fixture(tc, ct_setup, ct_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_failover_loss);
    tcase_add_test(tc, test_frozen_master);
    return tc;
}
