/* Check runner for chat-bench's own modules. */
#include "test_bench.h"

#include <stdlib.h>

int main(void)
{
    Suite *s = suite_create("bench");
    SRunner *sr;
    int failed;

    suite_add_tcase(s, bench_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
