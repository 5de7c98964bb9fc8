/* Runs the chat-over-Redis suites; CK_RUN_CASE=delivery (private, failure,
 * load, errors, layout, marks) runs one of them, CT_KEEP=1 keeps the logs. */
#include "chat_tests.h"

#include <stdlib.h>

int main(void)
{
    Suite *s = suite_create("chat_cluster");
    SRunner *sr;
    int failed;

    suite_add_tcase(s, delivery_tcase());
    suite_add_tcase(s, private_tcase());
    suite_add_tcase(s, failure_tcase());
    suite_add_tcase(s, load_tcase());
    suite_add_tcase(s, errors_tcase());
    suite_add_tcase(s, layout_tcase());
    suite_add_tcase(s, marks_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
