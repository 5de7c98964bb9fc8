#include <stdio.h>
#include <string.h>

#include <check.h>

#include "dict.h"
#include "harness.h"
#include "keys.h"
#include "router.h"
#include "router_internal.h"
#include "tests.h"

static int refs(struct harness *h, const char *kind, const char *name)
{
    char ch[GW_KEY_MAX];
    if (strcmp(kind, "room") == 0)
        return fake_bus_refs(h->bus, h_room_channel(h, name, ch, sizeof(ch)));
    return fake_bus_refs(h->bus, h_user_channel(h, name, ch, sizeof(ch)));
}

START_TEST(test_leave_last_member_of_user)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    struct gw_member *ma1 = h_join_full(&h, a1, "general", 0);
    struct gw_member *ma2 = h_join_full(&h, a2, "general", 0);
    struct gw_member *mb = h_join_full(&h, b, "general", 0);
    struct gw_member *mr = h_join_full(&h, a1, "random", 0);
    ck_assert_int_eq(refs(&h, "room", "general"), 3);
    ck_assert_int_eq(refs(&h, "room", "random"), 1);

    ck_assert_ptr_eq(gw_router_find_member(a1->c, "general"), ma1);
    ck_assert_ptr_eq(gw_router_find_member(a1->c, "random"), mr);
    ck_assert_ptr_null(gw_router_find_member(b->c, "random"));
    ck_assert_str_eq(gw_member_room(mr), "random");
    ck_assert(gw_router_user_in_room(h.router, "alice", "general", ma1));
    ck_assert(!gw_router_user_in_room(h.router, "bob", "general", mb));
    ck_assert(!gw_router_user_in_room(h.router, "alice", "nowhere", NULL));

    ck_assert(!gw_router_leave(h.router, ma1)); /* alice's other tab stays */
    ck_assert_int_eq(refs(&h, "room", "general"), 2);
    ck_assert_ptr_null(gw_router_find_member(a1->c, "general"));
    ck_assert(gw_router_leave(h.router, ma2));
    ck_assert(!gw_router_user_in_room(h.router, "alice", "general", NULL));
    ck_assert_int_eq(refs(&h, "room", "general"), 1);
    h_publish_room_msg(&h, "general", 1);
    h_assert_seqs(&h, a1, "");
    h_assert_seqs(&h, a2, "");
    h_assert_seqs(&h, b, "1");
    ck_assert(gw_router_leave(h.router, mb));
    ck_assert_int_eq(refs(&h, "room", "general"), 0);
    ck_assert_ptr_null(gw_dict_get(h.router->rooms, "chat:room:{general}"));
    ck_assert(gw_router_leave(h.router, mr));
    ck_assert_int_eq(refs(&h, "room", "random"), 0);
    ck_assert_uint_eq(gw_dict_size(h.router->rooms), 0);
    ck_assert_ptr_null(gw_router_any_member(a1->c));
    h_fini(&h);
}
END_TEST

START_TEST(test_leave_pending_member)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    h_join_full(&h, b, "general", 0);
    struct h_join j;
    h_join(&h, a, "general", &j);
    h_publish_room_msg(&h, "general", 1); /* alice's pending join keeps it */
    ck_assert(gw_router_leave(h.router, j.member));
    ck_assert_int_eq(refs(&h, "room", "general"), 1);
    struct room *room = gw_dict_get(h.router->rooms, "chat:room:{general}");
    ck_assert_int_eq(room->pending_joins, 0);
    h_publish_room_msg(&h, "general", 2);
    h_assert_seqs(&h, b, "1,2");
    ck_assert_uint_eq(h_count(&h, a), 0);
    /* A pending join left before Redis confirmed the subscription. */
    struct h_join j2;
    h_join(&h, a, "random", &j2);
    ck_assert(gw_router_leave(h.router, j2.member));
    ck_assert_int_eq(refs(&h, "room", "random"), 0);
    ck_assert_ptr_null(gw_dict_get(h.router->rooms, "chat:room:{random}"));
    h_fini(&h);
}
END_TEST

START_TEST(test_leave_during_repair)
{
    /* The room outlives its last member while a repair is in flight, and
     * goes when the answer comes. */
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct gw_member *m = h_join_full(&h, a, "general", 1);
    h_publish_room_msg(&h, "general", 3);
    ck_assert_uint_eq(fake_bus_pending(h.bus), 1);
    ck_assert(gw_router_leave(h.router, m));
    ck_assert_int_eq(refs(&h, "room", "general"), 0);
    ck_assert_ptr_nonnull(gw_dict_get(h.router->rooms, "chat:room:{general}"));
    fake_bus_answer(h.bus, fake_bus_cmd(h.bus, 0), h_room_history("general", 3, 1, 3));
    ck_assert_ptr_null(gw_dict_get(h.router->rooms, "chat:room:{general}"));
    ck_assert_uint_eq(h.nlog, 0);
    h_fini(&h);
}
END_TEST

START_TEST(test_detach_last_client_of_user)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    ck_assert(a1->first);
    ck_assert(!a2->first);
    ck_assert(b->first);
    ck_assert_uint_eq(gw_router_session_count(h.router), 3);
    ck_assert_int_eq(refs(&h, "user", "alice"), 2); /* one per client: each waits for it */
    ck_assert_int_eq(refs(&h, "user", "bob"), 1);
    h_join_full(&h, a1, "general", 0);
    h_join_full(&h, a1, "random", 0);
    h_join_full(&h, a2, "general", 0);

    /* Detach leaves every room of the client. */
    ck_assert(!gw_router_detach(h.router, a1->c));
    a1->c = NULL;
    ck_assert_uint_eq(gw_router_session_count(h.router), 2);
    ck_assert_int_eq(refs(&h, "user", "alice"), 1);
    ck_assert_int_eq(refs(&h, "room", "general"), 1);
    ck_assert_int_eq(refs(&h, "room", "random"), 0);
    h_publish_room_msg(&h, "general", 1);
    h_assert_seqs(&h, a2, "1");

    ck_assert(gw_router_detach(h.router, a2->c));
    a2->c = NULL;
    ck_assert_uint_eq(gw_router_session_count(h.router), 1);
    ck_assert_int_eq(refs(&h, "user", "alice"), 0);
    ck_assert_int_eq(refs(&h, "room", "general"), 0);
    ck_assert_uint_eq(gw_dict_size(h.router->rooms), 0);
    ck_assert_uint_eq(gw_dict_size(h.router->users), 1);

    /* Alice again: a first client once more. */
    struct h_client *a3 = h_attach(&h, "alice");
    ck_assert(a3->first);
    ck_assert_int_eq(refs(&h, "user", "alice"), 1);
    ck_assert(gw_router_detach(h.router, b->c));
    b->c = NULL;
    ck_assert_int_eq(refs(&h, "user", "bob"), 0);
    ck_assert_uint_eq(gw_router_session_count(h.router), 1);
    h_fini(&h); /* detaches a3 and checks every count is back to 0 */
}
END_TEST

struct seen {
    char items[16][96];
    size_t n;
};

static void on_user(const struct chat_identity *who, void *arg)
{
    struct seen *s = arg;
    ck_assert_uint_lt(s->n, 16);
    snprintf(s->items[s->n++], sizeof(s->items[0]), "%s", who->id);
}

static void on_room_user(const char *room, const struct chat_identity *who, void *arg)
{
    struct seen *s = arg;
    ck_assert_uint_lt(s->n, 16);
    snprintf(s->items[s->n++], sizeof(s->items[0]), "%s/%s", room, who->id);
}

static size_t seen_count(const struct seen *s, const char *item)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i], item) == 0)
            n++;
    return n;
}

START_TEST(test_each_user_once)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *a3 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    struct h_client *c = h_attach(&h, "carol");
    h_join_full(&h, a1, "general", 0);
    h_join_full(&h, a2, "general", 0);
    h_join_full(&h, a3, "random", 0);
    struct h_join ja;
    h_join(&h, a3, "general", &ja); /* pending: alice is reported already */
    h_join_full(&h, b, "general", 0);
    struct h_join jc;
    h_join(&h, c, "general", &jc); /* pending only: not in the room yet */

    struct seen users = {0};
    gw_router_each_user(h.router, on_user, &users);
    ck_assert_uint_eq(users.n, 3);
    ck_assert_uint_eq(seen_count(&users, "alice"), 1);
    ck_assert_uint_eq(seen_count(&users, "bob"), 1);
    ck_assert_uint_eq(seen_count(&users, "carol"), 1);

    struct seen pairs = {0};
    gw_router_each_room_user(h.router, on_room_user, &pairs);
    ck_assert_uint_eq(pairs.n, 3);
    ck_assert_uint_eq(seen_count(&pairs, "general/alice"), 1);
    ck_assert_uint_eq(seen_count(&pairs, "general/bob"), 1);
    ck_assert_uint_eq(seen_count(&pairs, "random/alice"), 1);

    /* Carol joined; alice's first member in general left. */
    gw_router_join_done(h.router, jc.member, 0);
    ck_assert(!gw_router_leave(h.router, gw_router_find_member(a1->c, "general")));
    struct seen pairs2 = {0};
    gw_router_each_room_user(h.router, on_room_user, &pairs2);
    ck_assert_uint_eq(pairs2.n, 4);
    ck_assert_uint_eq(seen_count(&pairs2, "general/alice"), 1);
    ck_assert_uint_eq(seen_count(&pairs2, "general/carol"), 1);
    h_fini(&h);
}
END_TEST

TCase *lifecycle_tcase(void)
{
    TCase *tc = tcase_create("lifecycle");
    tcase_add_test(tc, test_leave_last_member_of_user);
    tcase_add_test(tc, test_leave_pending_member);
    tcase_add_test(tc, test_leave_during_repair);
    tcase_add_test(tc, test_detach_last_client_of_user);
    tcase_add_test(tc, test_each_user_once);
    return tc;
}
