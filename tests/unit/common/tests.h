#ifndef CHAT_UNIT_COMMON_TESTS_H
#define CHAT_UNIT_COMMON_TESTS_H

#include <check.h>

TCase *log_tcase(void);
TCase *config_tcase(void);
TCase *token_tcase(void);
TCase *wshandshake_tcase(void);
TCase *protocol_tcase(void);

#endif
