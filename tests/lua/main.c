/*
 * Runner of the Lua script tests: starts a private redis-server (argv[1], default
 * "redis-server" from PATH), runs every suite against it, stops it by PID.
 * With "--cluster" as argv[2] the server is a one-node Redis Cluster owning every slot,
 * which proves that each script keeps to one hash slot and declares its keys.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stdbool.h>

#include <check.h>

#include "lua_test.h"

int main(int argc, char **argv)
{
    const char *bin = argc > 1 ? argv[1] : "redis-server";
    bool cluster = argc > 2 && strcmp(argv[2], "--cluster") == 0;
    char cluster_dir[] = "/tmp/lua-test-cluster-XXXXXX";
    char nodes_conf[sizeof(cluster_dir) + 16];
    char port_str[16];
    pid_t pid = 0;
    int port = 0;
    int failed = 1;
    Suite *s;
    SRunner *sr;

    /* Watchdog: a hung run dies, and its redis-server with it (PR_SET_PDEATHSIG). */
    alarm(120);
    if (cluster && mkdtemp(cluster_dir) == NULL) {
        perror("lua_scripts: mkdtemp");
        return 1;
    }
    if (lua_test_redis_start(bin, cluster ? cluster_dir : NULL, &pid, &port) != 0) {
        fprintf(stderr, "lua_scripts: cannot start %s%s\n", bin, cluster ? " --cluster" : "");
        return 1;
    }
    snprintf(port_str, sizeof(port_str), "%d", port);
    setenv("LUA_TEST_REDIS_PORT", port_str, 1);

    s = suite_create(cluster ? "lua_scripts_cluster" : "lua_scripts");
    suite_add_tcase(s, embed_tcase());
    suite_add_tcase(s, post_tcase());
    suite_add_tcase(s, presence_tcase());
    suite_add_tcase(s, catalog_tcase());
    suite_add_tcase(s, marks_tcase());
    suite_add_tcase(s, keyslot_tcase());
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    lua_test_redis_stop(pid);
    if (cluster) {
        snprintf(nodes_conf, sizeof(nodes_conf), "%s/nodes.conf", cluster_dir);
        unlink(nodes_conf);
        rmdir(cluster_dir);
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
