#ifndef CHAT_UNIT_GATEWAY_TESTS_H
#define CHAT_UNIT_GATEWAY_TESTS_H

#include <check.h>

TCase *static_tcase(void);
TCase *http_tcase(void);
TCase *admit_tcase(void);
TCase *ratelimit_tcase(void);
TCase *dict_tcase(void);
TCase *router_tcase(void);
TCase *ws_tcase(void);
TCase *metrics_tcase(void);
TCase *slots_tcase(void);
#ifdef GATEWAY_BIN
/* The real chat-gateway binary over loopback sockets (test_binary.c). */
TCase *binary_tcase(void);
/* ws.c through the gateway's /echo endpoint (test_ws_echo.c). */
TCase *ws_echo_tcase(void);
/* permessage-deflate through /echo (test_ws_echo.c). */
TCase *ws_deflate_tcase(void);
#endif

#endif
