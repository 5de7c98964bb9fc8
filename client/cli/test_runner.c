/*
 * Check runner of the chat-cli unit tests (no network).
 */
#include <check.h>
#include <stdlib.h>
#include <time.h>

TCase *cli_render_tcase(void);

int main(void)
{
    Suite *s = suite_create("chat-cli");
    SRunner *sr;
    int failed;

    /* Timestamps in the expectations are UTC. */
    setenv("TZ", "UTC", 1);
    tzset();
    suite_add_tcase(s, cli_render_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
