#ifndef CHAT_UNIT_ROUTER_TESTS_H
#define CHAT_UNIT_ROUTER_TESTS_H

#include <check.h>

/* Room ordering: joins, gap repair, dedup, room events (test_room.c). */
TCase *room_tcase(void);
/* Private traffic on the user channel and its repair (test_user.c). */
TCase *user_tcase(void);
/* Attach/detach, leave, subscriptions released, iteration (test_lifecycle.c). */
TCase *lifecycle_tcase(void);
/* Operator commands on the control channel (test_control.c). */
TCase *control_tcase(void);
/* online/offline coalesced into presence_batch (test_presence.c). */
TCase *presence_tcase(void);
/* Tests that fail on today's router: each names a behaviour the lead should
 * decide on.  Not part of the default run (see main.c). */
TCase *recovery_tcase(void);

#endif
