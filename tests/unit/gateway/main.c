#include <stdlib.h>

#include "tests.h"

int main(void)
{
    Suite *s = suite_create("gateway");
    suite_add_tcase(s, static_tcase());
    suite_add_tcase(s, http_tcase());
    suite_add_tcase(s, admit_tcase());
    suite_add_tcase(s, ratelimit_tcase());
    suite_add_tcase(s, dict_tcase());
    suite_add_tcase(s, router_tcase());
    suite_add_tcase(s, ws_tcase());
    suite_add_tcase(s, metrics_tcase());
    suite_add_tcase(s, slots_tcase());
#ifdef GATEWAY_BIN
    suite_add_tcase(s, binary_tcase());
    suite_add_tcase(s, ws_echo_tcase());
    suite_add_tcase(s, ws_deflate_tcase());
#endif

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
