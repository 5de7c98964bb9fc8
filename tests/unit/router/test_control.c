#include <stdio.h>
#include <string.h>

#include <check.h>

#include "dict.h"
#include "harness.h"
#include "keys.h"
#include "router.h"
#include "router_internal.h"
#include "tests.h"

#define DELETED "{\"type\":\"room_deleted\",\"room\":\"general\"}"
#define PURGED "{\"type\":\"room_purged\",\"room\":\"general\",\"seq\":7}"

static void control(struct harness *h, const char *payload)
{
    char ch[GW_KEY_MAX];
    ck_assert_ptr_nonnull(gw_key_control(ch, sizeof(ch), h->prefix));
    h_publish(h, ch, payload);
}

static int room_refs(struct harness *h, const char *room)
{
    char ch[GW_KEY_MAX];
    return fake_bus_refs(h->bus, h_room_channel(h, room, ch, sizeof(ch)));
}

static bool has_room(struct harness *h, const char *room)
{
    char ch[GW_KEY_MAX];
    return gw_dict_get(h->router->rooms, h_room_channel(h, room, ch, sizeof(ch))) != NULL;
}

/* Every session of the user closes with 4003, whoever else is here stays;
 * each close detaches its client inside the walk (the harness does). */
START_TEST(test_kick_closes_every_session_of_the_user)
{
    struct harness h;
    h_init(&h);
    struct h_client *a1 = h_attach(&h, "alice");
    struct h_client *a2 = h_attach(&h, "alice");
    struct h_client *a3 = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    h_join_full(&h, a1, "general", 0);
    h_join_full(&h, b, "general", 0);
    control(&h, "{\"type\":\"kick\",\"user\":\"alice\"}");
    ck_assert_int_eq(a1->close_code, 4003);
    ck_assert_int_eq(a2->close_code, 4003);
    ck_assert_int_eq(a3->close_code, 4003);
    ck_assert_int_eq(b->close_code, 0);
    ck_assert_uint_eq(gw_router_session_count(h.router), 1);
    ck_assert_int_eq(room_refs(&h, "general"), 1);
    /* nobody of that name here: nothing happens */
    control(&h, "{\"type\":\"kick\",\"user\":\"carol\"}");
    ck_assert_int_eq(b->close_code, 0);
    ck_assert_uint_eq(gw_router_session_count(h.router), 1);
    h_fini(&h);
}
END_TEST

/* Joined and pending members of the room leave it, its channel goes, other
 * rooms stay, and every client here hears room_deleted once. */
START_TEST(test_delete_room_drops_its_members)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    struct h_client *c = h_attach(&h, "carol");
    struct h_client *d = h_attach(&h, "dave");
    h_join_full(&h, a, "general", 3);
    h_join_full(&h, a, "random", 0);
    h_join_full(&h, b, "general", 3);
    struct h_join pending;
    h_join(&h, c, "general", &pending);
    h_publish_room_msg(&h, "general", 4); /* held in the backlog for the pending join */
    h_log_clear(&h);
    control(&h, "{\"type\":\"delete_room\",\"room\":\"general\"}");
    ck_assert_ptr_null(gw_router_find_member(a->c, "general"));
    ck_assert_ptr_null(gw_router_find_member(b->c, "general"));
    ck_assert_ptr_null(gw_router_find_member(c->c, "general"));
    ck_assert_ptr_nonnull(gw_router_find_member(a->c, "random"));
    ck_assert_int_eq(room_refs(&h, "general"), 0);
    ck_assert(!has_room(&h, "general"));
    ck_assert(has_room(&h, "random"));
    struct h_client *all[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(h_count(&h, all[i]), 1);
        ck_assert_uint_eq(h_count_payload(&h, all[i], DELETED), 1);
        ck_assert_int_eq(all[i]->close_code, 0);
    }
    /* the room's traffic no longer reaches anyone */
    h_log_clear(&h);
    h_publish_room_msg(&h, "general", 5);
    ck_assert_uint_eq(h.nlog, 0);
    /* a room nobody here is in: only the event */
    control(&h, "{\"type\":\"delete_room\",\"room\":\"ops\"}");
    ck_assert_uint_eq(h.nlog, 4);
    h_fini(&h);
}
END_TEST

/* A repair reading history keeps the room; it ends on the new numbering and
 * frees the room. */
START_TEST(test_delete_room_while_repairing)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, "general", 3);
    h_publish_room_msg(&h, "general", 6); /* a gap: 4 and 5 are read from history */
    ck_assert_uint_eq(fake_bus_pending(h.bus), 1);
    control(&h, "{\"type\":\"delete_room\",\"room\":\"general\"}");
    ck_assert(has_room(&h, "general"));
    ck_assert_ptr_null(gw_router_find_member(a->c, "general"));
    h_log_clear(&h);
    fake_bus_answer(h.bus, fake_bus_cmd(h.bus, 0), h_room_history("general", 0, 1, 0));
    ck_assert(!has_room(&h, "general"));
    ck_assert_uint_eq(h.nlog, 0);
    h_fini(&h);
}
END_TEST

/* The room's joined members hear which messages are gone; nothing else
 * changes for them. */
START_TEST(test_purge_tells_the_members)
{
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    struct h_client *b = h_attach(&h, "bob");
    h_join_full(&h, a, "general", 7);
    h_log_clear(&h);
    control(&h, "{\"type\":\"purge\",\"room\":\"general\",\"seq\":7}");
    ck_assert_uint_eq(h_count_payload(&h, a, PURGED), 1);
    ck_assert_uint_eq(h_count(&h, b), 0);
    h_log_clear(&h);
    h_publish_room_msg(&h, "general", 8);
    h_assert_seqs(&h, a, "8");
    ck_assert_ptr_nonnull(gw_router_find_member(a->c, "general"));
    h_fini(&h);
}
END_TEST

/* Anyone who can PUBLISH can write here: what does not parse changes
 * nothing and crashes nothing. */
START_TEST(test_hostile_control_messages)
{
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"type\":\"kick\"}",
        "{\"type\":\"kick\",\"user\":\"al ice\"}",
        "{\"type\":\"kick\",\"user\":7}",
        "{\"type\":\"kick\",\"user\":\"alice\",\"user\":\"alice\"}",
        "{\"type\":\"kick\",\"user\":\"" /* 65 characters */
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"type\":\"delete_room\",\"room\":\"General\"}",
        "{\"type\":\"delete_room\",\"room\":\"a\\\"b\"}",
        "{\"type\":\"delete_room\"}",
        "{\"type\":\"purge\",\"room\":\"general\"}",
        "{\"type\":\"purge\",\"room\":\"general\",\"seq\":-1}",
        "{\"type\":\"purge\",\"room\":\"general\",\"seq\":\"7\"}",
        "{\"type\":\"reboot\"}",
        "{\"type\":null}",
    };
    struct harness h;
    h_init(&h);
    struct h_client *a = h_attach(&h, "alice");
    h_join_full(&h, a, "general", 0);
    h_log_clear(&h);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        control(&h, bad[i]);
    ck_assert_int_eq(a->close_code, 0);
    ck_assert_uint_eq(h.nlog, 0);
    ck_assert_ptr_nonnull(gw_router_find_member(a->c, "general"));
    h_fini(&h);
}
END_TEST

TCase *control_tcase(void)
{
    TCase *tc = tcase_create("control");
    tcase_add_test(tc, test_kick_closes_every_session_of_the_user);
    tcase_add_test(tc, test_delete_room_drops_its_members);
    tcase_add_test(tc, test_delete_room_while_repairing);
    tcase_add_test(tc, test_purge_tells_the_members);
    tcase_add_test(tc, test_hostile_control_messages);
    return tc;
}
