#include <stdlib.h>

#include "tests.h"

/* unit_router: the router on a fake bus. */
int main(void)
{
    Suite *s = suite_create("router");
    suite_add_tcase(s, room_tcase());
    suite_add_tcase(s, user_tcase());
    suite_add_tcase(s, lifecycle_tcase());
    suite_add_tcase(s, control_tcase());
    suite_add_tcase(s, presence_tcase());
    suite_add_tcase(s, recovery_tcase());
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
