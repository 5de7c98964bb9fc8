/*
 * Runner of the Lua script tests: starts a private redis-server (argv[1], default
 * "redis-server" from PATH), runs every suite against it, stops it by PID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <check.h>

#include "lua_test.h"

int main(int argc, char **argv)
{
    const char *bin = argc > 1 ? argv[1] : "redis-server";
    char port_str[16];
    pid_t pid = 0;
    int port = 0;
    int failed = 1;
    Suite *s;
    SRunner *sr;

    /* Watchdog: a hung run dies, and its redis-server with it (PR_SET_PDEATHSIG). */
    alarm(120);
    if (lua_test_redis_start(bin, &pid, &port) != 0) {
        fprintf(stderr, "lua_scripts: cannot start %s\n", bin);
        return 1;
    }
    snprintf(port_str, sizeof(port_str), "%d", port);
    setenv("LUA_TEST_REDIS_PORT", port_str, 1);

    s = suite_create("lua_scripts");
    suite_add_tcase(s, embed_tcase());
    suite_add_tcase(s, post_tcase());
    suite_add_tcase(s, presence_tcase());
    suite_add_tcase(s, catalog_tcase());
    suite_add_tcase(s, marks_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    lua_test_redis_stop(pid);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
