#include <stdlib.h>

#include "tests.h"

int main(void)
{
    test_keys_setup();
    Suite *s = suite_create("common");
    suite_add_tcase(s, log_tcase());
    suite_add_tcase(s, config_tcase());
    suite_add_tcase(s, token_tcase());
    suite_add_tcase(s, wshandshake_tcase());
    suite_add_tcase(s, wsdeflate_tcase());
    suite_add_tcase(s, protocol_tcase());

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    test_keys_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
