/* Runs the integration suites against real redis-server and chat-gateway
 * processes. */
#include "harness.h"
#include "tests.h"

#include <stdlib.h>

int main(void)
{
    Suite *s = suite_create("integration");
    SRunner *sr;
    char dir[128];
    int failed;

    if (h_suite_begin(dir, sizeof(dir)) != 0)
        return EXIT_FAILURE;

    suite_add_tcase(s, http_tcase());
    suite_add_tcase(s, ws_tcase());
    suite_add_tcase(s, lifecycle_tcase());
    suite_add_tcase(s, limits_tcase());
    suite_add_tcase(s, deflate_tcase());
    suite_add_tcase(s, write_delay_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    h_suite_end(dir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
