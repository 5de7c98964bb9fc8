#include <stdio.h>
#include <string.h>

#include <check.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "dict.h"
#include "harness.h"
#include "keys.h"
#include "lua_scripts.h"
#include "router.h"
#include "router_internal.h"
#include "tests.h"

#define ROOM "general"
#define PRESENCE "{\"type\":\"presence\",\"room\":\"general\",\"event\":\"join\",\"user\":{}}"
#define TYPING_FRAME "{\"type\":\"typing\",\"room\":\"general\",\"user\":{\"id\":\"alice\"}}"

static struct room *room_of(struct harness *h, const char *name)
{
    char ch[GW_KEY_MAX];
    return gw_dict_get(h->router->rooms, h_room_channel(h, name, ch, sizeof(ch)));
}

static const char *room_ch(struct harness *h)
{
    static char ch[GW_KEY_MAX];
    return h_room_channel(h, ROOM, ch, sizeof(ch));
}

/* The SHA-1 the store sends for script `name`, computed from the embedded
 * source independently of store.c. */
static void script_sha(const char *name, char out[SHA_DIGEST_LENGTH * 2 + 1])
{
    const char *source = NULL;
    for (size_t i = 0; i < gw_lua_script_count; i++)
        if (strcmp(gw_lua_scripts[i].name, name) == 0)
            source = gw_lua_scripts[i].source;
    ck_assert_ptr_nonnull(source);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)source, strlen(source), md);
    for (int k = 0; k < SHA_DIGEST_LENGTH; k++)
        snprintf(out + 2 * k, 3, "%02x", md[k]);
}

/* Asserts cmd is EVALSHA history_since over keys (seq, history) and returns it. */
static struct fake_cmd *assert_history_since(struct fake_cmd *cmd, const char *seq_key,
                                             const char *hist_key)
{
    char sha[SHA_DIGEST_LENGTH * 2 + 1];
    script_sha("history_since", sha);
    ck_assert_ptr_nonnull(cmd);
    ck_assert_int_eq(cmd->argc, 5);
    ck_assert_str_eq(cmd->argv[0], "EVALSHA");
    ck_assert_str_eq(cmd->argv[1], sha);
    ck_assert_str_eq(cmd->argv[2], "2");
    ck_assert_str_eq(cmd->argv[3], seq_key);
    ck_assert_str_eq(cmd->argv[4], hist_key);
    return cmd;
}

/* The pending repair of ROOM, checked for script and keys. */
static struct fake_cmd *room_repair(struct harness *h)
{
    return assert_history_since(fake_bus_find_eval(h->bus, "chat:room:{general}:seq"),
                                "chat:room:{general}:seq", "chat:room:{general}:history");
}

/* A subscriber reconnect: the room channel is confirmed again. */
static void resubscribe(struct harness *h)
{
    fake_bus_drop_subscriber(h->bus);
    fake_bus_confirm(h->bus, room_ch(h));
}

/* ---- join: backlog and hand-over to live traffic ---- */

START_TEST(test_join_backlog_after_snapshot)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_join j;
    h_join(&h, a, ROOM, &j);
    ck_assert_int_eq(j.ready_calls, 0); /* waits for Redis */
    ck_assert_int_eq(fake_bus_refs(h.bus, room_ch(&h)), 1);
    fake_bus_confirm(h.bus, room_ch(&h));
    ck_assert_int_eq(j.ready_calls, 1);
    ck_assert(j.ready_ok);
    /* A first subscription of an unsynced room repairs nothing. */
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);

    /* Published after the subscription, before the snapshot was read. */
    h_publish_room_msg(&h, ROOM, 5);
    h_publish_room_msg(&h, ROOM, 6);
    ck_assert_uint_eq(h_count(&h, a), 0);

    gw_router_join_done(h.router, j.member, 4);
    ck_assert(gw_member_joined(j.member));
    h_assert_seqs(&h, a, "5,6");
    /* The backlog is gone once no join is pending. */
    ck_assert_uint_eq(room_of(&h, ROOM)->backlog_len, 0);

    h_publish_room_msg(&h, ROOM, 7);
    h_assert_seqs(&h, a, "5,6,7");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_join_snapshot_covers_backlog)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_join j;
    h_join(&h, a, ROOM, &j);
    fake_bus_confirm(h.bus, room_ch(&h));
    h_publish_room_msg(&h, ROOM, 5);
    h_publish_room_msg(&h, ROOM, 6);
    /* The snapshot already holds 5 and 6: nothing is sent twice. */
    gw_router_join_done(h.router, j.member, 6);
    ck_assert_uint_eq(h_count(&h, a), 0);
    h_publish_room_msg(&h, ROOM, 6); /* a late copy */
    ck_assert_uint_eq(h_count(&h, a), 0);
    h_publish_room_msg(&h, ROOM, 7);
    h_assert_seqs(&h, a, "7");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0); /* 7 follows 6: no gap */
    h_fini(&h);
}
END_TEST

START_TEST(test_pending_gets_nothing_until_join_done)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    struct h_join j;
    h_join(&h, a, ROOM, &j);
    fake_bus_confirm(h.bus, room_ch(&h));
    h_publish(&h, room_ch(&h), PRESENCE);
    h_publish(&h, room_ch(&h), "t|bob|" TYPING_FRAME);
    h_publish_room_msg(&h, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 2);
    ck_assert_uint_eq(h_count(&h, a), 0);
    ck_assert_uint_eq(h_count(&h, b), 0); /* not in the room */
    /* Room events are not kept for later: the joined reply carries the
     * state; messages above the snapshot are. */
    gw_router_join_done(h.router, j.member, 1);
    h_assert_seqs(&h, a, "2");
    h_publish(&h, room_ch(&h), PRESENCE);
    h_assert_seqs(&h, a, "2,-");
    ck_assert_uint_eq(h_count_payload(&h, a, PRESENCE), 1);
    ck_assert_uint_eq(h_count(&h, b), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_second_join_first_keeps_live)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    h_join_full(&h, a, ROOM, 3);
    struct h_join jb;
    h_join(&h, b, ROOM, &jb);
    /* Already subscribed: ready at once, no second SUBSCRIBE wait. */
    ck_assert_int_eq(jb.ready_calls, 1);
    ck_assert(jb.ready_ok);
    ck_assert_int_eq(fake_bus_refs(h.bus, room_ch(&h)), 2);

    h_publish_room_msg(&h, ROOM, 4);
    h_publish(&h, room_ch(&h), PRESENCE);
    h_publish_room_msg(&h, ROOM, 5);
    h_assert_seqs(&h, a, "4,-,5"); /* live, while bob is pending */
    ck_assert_uint_eq(h_count(&h, b), 0);

    gw_router_join_done(h.router, jb.member, 4);
    h_assert_seqs(&h, b, "5");
    h_publish_room_msg(&h, ROOM, 6);
    h_assert_seqs(&h, a, "4,-,5,6");
    h_assert_seqs(&h, b, "5,6");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_rejoin_done_suppresses_snapshot)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct gw_member *m = h_join_full(&h, a, ROOM, 3);
    /* A repeated join of a joined member, answered with a snapshot up to 6:
     * 4..6 were in that snapshot, so they are not sent again live. */
    gw_router_rejoin_done(m, 6);
    h_publish_room_msg(&h, ROOM, 4);
    h_publish_room_msg(&h, ROOM, 5);
    h_publish_room_msg(&h, ROOM, 6);
    ck_assert_uint_eq(h_count(&h, a), 0);
    h_publish_room_msg(&h, ROOM, 7);
    h_assert_seqs(&h, a, "7");
    /* A lower snapshot never lowers the mark. */
    gw_router_rejoin_done(m, 2);
    h_publish_room_msg(&h, ROOM, 7);
    h_assert_seqs(&h, a, "7");
    h_fini(&h);
}
END_TEST

/* ---- gap repair ---- */

START_TEST(test_gap_repair)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 0);
    h_publish_room_msg(&h, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 2);
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);

    h_publish_room_msg(&h, ROOM, 5); /* 3 and 4 were lost */
    h_assert_seqs(&h, a, "1,2");     /* 5 is held back */
    ck_assert_uint_eq(fake_bus_pending(h.bus), 1);
    struct fake_cmd *repair = room_repair(&h);

    h_publish_room_msg(&h, ROOM, 6); /* during the repair: held too */
    h_assert_seqs(&h, a, "1,2");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 1); /* one repair at a time */

    redisReply *reply = fake_reply_array(4);
    char msg[512];
    reply->element[0] = fake_reply_int(5);
    reply->element[1] = fake_reply_str(h_room_msg(msg, sizeof(msg), ROOM, 3));
    reply->element[2] = fake_reply_str(h_room_msg(msg, sizeof(msg), ROOM, 4));
    reply->element[3] = fake_reply_str(h_room_msg(msg, sizeof(msg), ROOM, 5));
    fake_bus_answer(h.bus, repair, reply);
    h_assert_seqs(&h, a, "1,2,3,4,5,6");
    ck_assert(!room_of(&h, ROOM)->repairing);
    ck_assert_uint_eq(room_of(&h, ROOM)->backlog_len, 0);

    h_publish_room_msg(&h, ROOM, 7);
    h_assert_seqs(&h, a, "1,2,3,4,5,6,7");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_gap_repair_whole_history)
{
    /* The reply is the whole history list (1..7, current 7): what the room
     * already saw is skipped, what arrived live during the repair too. */
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    h_join_full(&h, a, ROOM, 0);
    h_join_full(&h, b, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 4);
    h_publish_room_msg(&h, ROOM, 5);
    h_publish_room_msg(&h, ROOM, 7);
    fake_bus_answer(h.bus, room_repair(&h), h_room_history(ROOM, 7, 1, 7));
    h_assert_seqs(&h, a, "1,2,3,4,5,6,7");
    h_assert_seqs(&h, b, "2,3,4,5,6,7");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_resubscribe_repairs)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 3);
    h_publish_room_msg(&h, ROOM, 4);
    h_assert_seqs(&h, a, "4");

    /* The subscriber reconnects; 5 and 6 were published while it was away
     * and nothing follows them. */
    resubscribe(&h);
    ck_assert_uint_eq(fake_bus_pending(h.bus), 1);
    struct fake_cmd *repair = room_repair(&h);
    h_publish_room_msg(&h, ROOM, 7); /* live again, during the repair */
    h_assert_seqs(&h, a, "4");
    fake_bus_answer(h.bus, repair, h_room_history(ROOM, 6, 1, 6));
    h_assert_seqs(&h, a, "4,5,6,7");

    /* Nothing missed this time: nothing sent. */
    resubscribe(&h);
    fake_bus_answer(h.bus, room_repair(&h), h_room_history(ROOM, 7, 1, 7));
    h_assert_seqs(&h, a, "4,5,6,7");
    h_publish_room_msg(&h, ROOM, 8);
    h_assert_seqs(&h, a, "4,5,6,7,8");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

/* --durability replica publishes a message only once WAIT confirms it, so
 * a room's messages may come out of seq order: 12 while 11 is still
 * waiting, then 14 while 13 is.  The repair for 11 reads history before 13
 * is stored; 14, held meanwhile, must not go out before 13, or 13, coming
 * late, would be taken for a repeat and never reach anyone. */
START_TEST(test_repair_then_backlog_gap_reads_again)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 10);
    h_publish_room_msg(&h, ROOM, 12);
    struct fake_cmd *r1 = room_repair(&h);
    h_publish_room_msg(&h, ROOM, 14); /* held */
    fake_bus_answer(h.bus, r1, h_room_history(ROOM, 12, 1, 12));
    h_assert_seqs(&h, a, "11,12"); /* 14 waits for 13 */
    struct fake_cmd *r2 = room_repair(&h);
    ck_assert_ptr_nonnull(r2);
    h_publish_room_msg(&h, ROOM, 13); /* confirmed at last: held too */
    fake_bus_answer(h.bus, r2, h_room_history(ROOM, 14, 1, 14));
    h_assert_seqs(&h, a, "11,12,13,14");
    ck_assert(!room_of(&h, ROOM)->repairing);
    h_publish_room_msg(&h, ROOM, 15);
    h_assert_seqs(&h, a, "11,12,13,14,15");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

/* Held messages that arrived out of order (14, then 13) go out in seq
 * order once the repair's read covers what is below them. */
START_TEST(test_backlog_out_of_order_delivered_in_order)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 10);
    h_publish_room_msg(&h, ROOM, 12);
    struct fake_cmd *r1 = room_repair(&h);
    h_publish_room_msg(&h, ROOM, 14);
    h_publish_room_msg(&h, ROOM, 13);
    fake_bus_answer(h.bus, r1, h_room_history(ROOM, 12, 1, 12));
    h_assert_seqs(&h, a, "11,12,13,14");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

/* The same at a join: the snapshot says 12, the backlog holds 14, and 13
 * is still on its way: the member gets 13 (from history) before 14. */
START_TEST(test_join_backlog_gap_repairs)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_join j;
    h_join(&h, a, ROOM, &j);
    fake_bus_confirm(h.bus, room_ch(&h));
    h_publish_room_msg(&h, ROOM, 14);
    gw_router_join_done(h.router, j.member, 12);
    ck_assert_uint_eq(h_count(&h, a), 0);
    struct fake_cmd *r = room_repair(&h);
    h_publish_room_msg(&h, ROOM, 13);
    fake_bus_answer(h.bus, r, h_room_history(ROOM, 14, 1, 14));
    h_assert_seqs(&h, a, "13,14");
    h_publish_room_msg(&h, ROOM, 15);
    h_assert_seqs(&h, a, "13,14,15");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

/* When the repair's read fails (reply NULL: Redis down or timed out), the
 * held messages stay held and the read is tried again after a backoff: the
 * gap is filled, never skipped. */
START_TEST(test_repair_failure_retries)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 0);
    h_publish_room_msg(&h, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 5);
    struct fake_cmd *repair = room_repair(&h);
    h_publish_room_msg(&h, ROOM, 6);
    fake_bus_answer(h.bus, repair, NULL);
    h_assert_seqs(&h, a, "1,2"); /* 5 and 6 wait for 3 and 4 */
    ck_assert(room_of(&h, ROOM)->repairing);
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_run_timers(&h, 150);
    repair = room_repair(&h);
    ck_assert_ptr_nonnull(repair); /* tried again */
    fake_bus_answer(h.bus, repair, h_room_history(ROOM, 6, 1, 6));
    h_assert_seqs(&h, a, "1,2,3,4,5,6");
    ck_assert(!room_of(&h, ROOM)->repairing);
    h_publish_room_msg(&h, ROOM, 7);
    h_assert_seqs(&h, a, "1,2,3,4,5,6,7");
    h_fini(&h);
}
END_TEST

/* The same with a script error reply (REDIS_REPLY_ERROR), failing twice. */
START_TEST(test_repair_error_reply_retries)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 4);
    fake_bus_answer(h.bus, room_repair(&h), fake_reply_error("ERR something"));
    h_run_timers(&h, 150);
    fake_bus_answer(h.bus, room_repair(&h), fake_reply_error("ERR again"));
    h_assert_seqs(&h, a, "");
    h_run_timers(&h, 300);
    fake_bus_answer(h.bus, room_repair(&h), h_room_history(ROOM, 4, 1, 4));
    h_assert_seqs(&h, a, "3,4");
    h_fini(&h);
}
END_TEST

/* A gap history cannot fill (trimmed past it): the members get `resync`,
 * then what history still holds, once. */
START_TEST(test_gap_beyond_history_sends_resync)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 9);
    fake_bus_answer(h.bus, room_repair(&h), h_room_history(ROOM, 9, 6, 9));
    bool resync = false;
    for (size_t i = 0; i < h.nlog; i++)
        if (strstr(h.log[i].payload, "\"type\":\"resync\"") &&
            strstr(h.log[i].payload, "\"room\":\"" ROOM "\""))
            resync = true;
    ck_assert_msg(resync, "no resync for a gap beyond history");
    h_assert_seqs(&h, a, "-,6,7,8,9"); /* "-": the resync, before the messages */
    h_fini(&h);
}
END_TEST

START_TEST(test_repair_noscript_retried_with_eval)
{
    /* Redis restarted without its script cache: the store retries with EVAL
     * and the repair goes on. */
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 3);
    fake_bus_answer(h.bus, room_repair(&h), fake_reply_error("NOSCRIPT No matching script"));
    struct fake_cmd *eval = fake_bus_find_eval(h.bus, "chat:room:{general}:seq");
    ck_assert_ptr_nonnull(eval);
    ck_assert_str_eq(eval->argv[0], "EVAL");
    ck_assert_ptr_nonnull(strstr(eval->argv[1], "LRANGE")); /* the source */
    h_assert_seqs(&h, a, "");
    fake_bus_answer(h.bus, eval, h_room_history(ROOM, 3, 1, 3));
    h_assert_seqs(&h, a, "2,3");
    h_fini(&h);
}
END_TEST

START_TEST(test_seq_reset_after_redis_lost_data)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, ROOM, 10);
    ck_assert_int_eq(room_of(&h, ROOM)->live_seq, 10);

    /* Redis came back empty; two messages were posted before this node
     * subscribed again. */
    resubscribe(&h);
    fake_bus_answer(h.bus, room_repair(&h), h_room_history(ROOM, 2, 1, 2));
    ck_assert_int_eq(room_of(&h, ROOM)->live_seq, 2);
    ck_assert(!room_of(&h, ROOM)->repairing);
    /* (Today 1 and 2 themselves are not delivered: see known_bugs.) */

    h_publish_room_msg(&h, ROOM, 3); /* new, not mistaken for old */
    h_publish_room_msg(&h, ROOM, 4);
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0); /* no gap either */
    char buf[256];
    const char *seqs = h_seqs(&h, a, buf, sizeof(buf));
    size_t n = strlen(seqs);
    ck_assert_uint_ge(n, 3);
    ck_assert_str_eq(seqs + n - 3, "3,4");
    ck_assert_ptr_null(strstr(seqs, "3,4,"));
    h_fini(&h);
}
END_TEST

/* ---- dedup ---- */

START_TEST(test_dedup_repeated_live)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    h_join_full(&h, a, ROOM, 0);
    h_publish_room_msg(&h, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 1);
    struct h_join jb;
    h_join(&h, b, ROOM, &jb);
    /* While bob's join is pending 2 goes to alice and into the backlog,
     * twice. */
    h_publish_room_msg(&h, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 1);
    gw_router_join_done(h.router, jb.member, 1);
    h_publish_room_msg(&h, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 3);
    h_publish_room_msg(&h, ROOM, 3);
    h_assert_seqs(&h, a, "1,2,3");
    h_assert_seqs(&h, b, "2,3");
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_two_tabs_each_once)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    ck_assert(a1->first);
    ck_assert(!a2->first);
    h_join_full(&h, a1, ROOM, 0);
    h_join_full(&h, a2, ROOM, 0);
    h_join_full(&h, b, ROOM, 0);
    h_publish_room_msg(&h, ROOM, 1);
    h_publish_room_msg(&h, ROOM, 2);
    h_publish_room_msg(&h, ROOM, 2);
    h_publish(&h, room_ch(&h), PRESENCE);
    h_assert_seqs(&h, a1, "1,2,-");
    h_assert_seqs(&h, a2, "1,2,-");
    h_assert_seqs(&h, b, "1,2,-");
    h_fini(&h);
}
END_TEST

/* ---- room events ---- */

START_TEST(test_typing_skips_typist)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    struct h_client *al = h_attach(&h, "ali"); /* a prefix of alice's id */
    struct h_client *c = h_attach(&h, "carol");
    h_join_full(&h, a1, ROOM, 0);
    h_join_full(&h, a2, ROOM, 0);
    h_join_full(&h, b, ROOM, 0);
    h_join_full(&h, al, ROOM, 0);
    struct h_join jc;
    h_join(&h, c, ROOM, &jc); /* pending */

    h_publish(&h, room_ch(&h), "t|alice|" TYPING_FRAME);
    ck_assert_uint_eq(h_count(&h, a1), 0);
    ck_assert_uint_eq(h_count(&h, a2), 0);
    ck_assert_uint_eq(h_count(&h, c), 0);
    /* The frame is what follows the second bar, byte for byte. */
    ck_assert_uint_eq(h_count(&h, b), 1);
    ck_assert_uint_eq(h_count_payload(&h, b, TYPING_FRAME), 1);
    ck_assert_uint_eq(h_count_payload(&h, al, TYPING_FRAME), 1);

    /* Without the second bar it is nothing. */
    h_publish(&h, room_ch(&h), "t|alice");
    h_publish(&h, room_ch(&h), "t|");
    ck_assert_uint_eq(h.nlog, 2);

    /* A room event without seq: every joined member, pending ones not. */
    h_publish(&h, room_ch(&h), PRESENCE);
    ck_assert_uint_eq(h_count_payload(&h, a1, PRESENCE), 1);
    ck_assert_uint_eq(h_count_payload(&h, a2, PRESENCE), 1);
    ck_assert_uint_eq(h_count_payload(&h, b, PRESENCE), 1);
    ck_assert_uint_eq(h_count_payload(&h, al, PRESENCE), 1);
    ck_assert_uint_eq(h_count(&h, c), 0);
    /* Events do not count as seqs: no repair, no backlog entry. */
    ck_assert_uint_eq(fake_bus_pending(h.bus), 0);
    ck_assert_uint_eq(room_of(&h, ROOM)->backlog_len, 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_broadcast_all)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    struct h_client *c = h_attach(&h, "carol");
    h_join_full(&h, b, ROOM, 0);
    struct h_join jc;
    h_join(&h, c, ROOM, &jc);
    const char *ev = "{\"type\":\"online\",\"user\":{\"id\":\"dave\"}}";
    h_publish(&h, "chat:all", ev);
    ck_assert_uint_eq(h_count_payload(&h, a, ev), 1);
    ck_assert_uint_eq(h_count_payload(&h, a2, ev), 1);
    ck_assert_uint_eq(h_count_payload(&h, b, ev), 1);
    ck_assert_uint_eq(h_count_payload(&h, c, ev), 1);
    ck_assert_uint_eq(h.nlog, 4);
    /* A channel nobody here follows reaches nobody. */
    h_publish(&h, "chat:room:{other}", PRESENCE);
    h_publish(&h, "other:all", ev);
    ck_assert_uint_eq(h.nlog, 4);
    h_fini(&h);
}
END_TEST

TCase *room_tcase(void)
{
    TCase *tc = tcase_create("room");
    tcase_add_test(tc, test_join_backlog_after_snapshot);
    tcase_add_test(tc, test_join_snapshot_covers_backlog);
    tcase_add_test(tc, test_pending_gets_nothing_until_join_done);
    tcase_add_test(tc, test_second_join_first_keeps_live);
    tcase_add_test(tc, test_rejoin_done_suppresses_snapshot);
    tcase_add_test(tc, test_gap_repair);
    tcase_add_test(tc, test_gap_repair_whole_history);
    tcase_add_test(tc, test_resubscribe_repairs);
    tcase_add_test(tc, test_repair_failure_retries);
    tcase_add_test(tc, test_repair_then_backlog_gap_reads_again);
    tcase_add_test(tc, test_backlog_out_of_order_delivered_in_order);
    tcase_add_test(tc, test_join_backlog_gap_repairs);
    tcase_add_test(tc, test_repair_error_reply_retries);
    tcase_add_test(tc, test_gap_beyond_history_sends_resync);
    tcase_add_test(tc, test_repair_noscript_retried_with_eval);
    tcase_add_test(tc, test_seq_reset_after_redis_lost_data);
    tcase_add_test(tc, test_dedup_repeated_live);
    tcase_add_test(tc, test_two_tabs_each_once);
    tcase_add_test(tc, test_typing_skips_typist);
    tcase_add_test(tc, test_broadcast_all);
    return tc;
}
