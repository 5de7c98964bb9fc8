#ifndef CHAT_TEST_INTEGRATION_H
#define CHAT_TEST_INTEGRATION_H

#include <check.h>

/* One TCase per file; runner.c and runner_lib.c put them in suites. */
TCase *client_lib_tcase(void);
TCase *http_tcase(void);
TCase *ws_tcase(void);
TCase *lifecycle_tcase(void);
TCase *limits_tcase(void);
TCase *deflate_tcase(void);
TCase *write_delay_tcase(void);

#endif
