/* Runs the chat-over-Redis suites; CK_RUN_CASE=delivery (private, failure,
 * load, errors, layout, marks, reshard) runs one of them, CT_CASES=a,b,c a
 * few, CT_KEEP=1 keeps the logs.  reshard and shard need several masters
 * (CHAT_TEST_REDIS_CLUSTER=3) and are only added then, failover replicas
 * (=6); sentinel_load runs only when CT_CASES names it. */
#include "chat_tests.h"

#include <stdlib.h>
#include <string.h>

static void add(Suite *s, const char *name, TCase *(*make)(void))
{
    const char *only = getenv("CT_CASES");
    size_t n = strlen(name);
    if (only && *only) {
        const char *p = only;
        bool found = false;
        while (!found && (p = strstr(p, name)) != NULL) {
            found = (p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',');
            p += n;
        }
        if (!found)
            return;
    }
    suite_add_tcase(s, make());
}

int main(void)
{
    Suite *s = suite_create("chat_cluster");
    SRunner *sr;
    int failed;

    add(s, "delivery", delivery_tcase);
    add(s, "private", private_tcase);
    add(s, "failure", failure_tcase);
    add(s, "load", load_tcase);
    add(s, "errors", errors_tcase);
    add(s, "layout", layout_tcase);
    add(s, "marks", marks_tcase);
    if (h_redis_masters() == 1 && !h_redis_cluster_mode()) {
        add(s, "durability", durability_tcase);
        add(s, "sentinel", sentinel_tcase);
        /* a long run under load: only when asked for by name */
        if (getenv("CT_CASES"))
            add(s, "sentinel_load", sentinel_load_tcase);
    }
    if (h_redis_masters() == 3) {
        add(s, "reshard", reshard_tcase);
        add(s, "shard", shard_tcase);
    }
    if (h_redis_nodes() == 6)
        add(s, "failover", failover_tcase);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
