#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "tests.h"
#include "token.h"

#ifndef CHAT_TEST_VERSION
#define CHAT_TEST_VERSION "0.0.0"
#endif
#ifndef CHAT_TEST_COMMIT
#define CHAT_TEST_COMMIT "unknown"
#endif

#define SECRET "0123456789abcdef0123456789abcdef"

static const char *const env_names[] = {
    "CHAT_PORT",
    "CHAT_BIND",
    "CHAT_REDIS_URL",
    "CHAT_NODE_ID",
    "CHAT_JWT_SECRET",
    "CHAT_DEV",
    "CHAT_STATIC_DIR",
    "CHAT_ORIGINS",
    "CHAT_HISTORY",
    "CHAT_MAX_MESSAGE",
    "CHAT_RATE",
    "CHAT_PREFIX",
    "CHAT_LOG_LEVEL",
    "CHAT_ECHO",
    "CHAT_PING_INTERVAL",
    "CHAT_IDLE_TIMEOUT",
    "CHAT_PRESENCE_TTL",
    "CHAT_DRAIN_TIMEOUT",
    "CHAT_DRAIN_GRACE",
    "CHAT_JWT_PUBLIC_KEY",
    "CHAT_JWT_ISSUER",
    "CHAT_JWT_AUDIENCE",
    "CHAT_JWT_CLAIM_ID",
    "CHAT_JWT_CLAIM_NAME",
    "CHAT_HEADER_TIMEOUT",
    "CHAT_MAX_CONNECTIONS",
    "CHAT_MAX_CONNS_PER_IP",
    "CHAT_LOGIN_RATE",
    "CHAT_REDIS_TIMEOUT",
    "CHAT_DURABILITY",
    "CHAT_DURABILITY_TIMEOUT",
    "CHAT_METRICS_BIND",
    "CHAT_MAX_ROOMS",
    "CHAT_ROOM_CREATE_RATE",
    "CHAT_LARGE_MESSAGE_RATE",
    "CHAT_ROOM_TTL",
    "CHAT_LOG_FORMAT",
    "CHAT_PRESENCE_BATCH",
    "CHAT_DEFLATE",
    "CHAT_DEFLATE_MIN",
    "CHAT_DEFLATE_CLIENT_CONTEXT",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

static char errbuf[256];

/* Loads with argv = {"chat-gateway", args..., NULL}. */
static int load(struct chat_config *cfg, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    argv[argc++] = (char *)"chat-gateway";
    va_start(ap, cfg);
    for (char *a; (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    FILE *devnull = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(devnull);
    errbuf[0] = '\0';
    int rc = chat_config_load(cfg, argc, argv, devnull, errbuf, sizeof(errbuf));
    fclose(devnull);
    return rc;
}

/* Loads expecting an error and returns the message. */
static const char *load_err(const char *a1, const char *a2, const char *a3)
{
    struct chat_config cfg;
    int rc = load(&cfg, a1, a2, a3, (char *)NULL);
    ck_assert_int_eq(rc, CHAT_CONFIG_ERROR);
    ck_assert_ptr_null(cfg.jwt_secret);
    ck_assert_ptr_null(cfg.bind);
    ck_assert_ptr_null(strchr(errbuf, '\n'));
    ck_assert_str_ne(errbuf, "");
    return errbuf;
}

START_TEST(test_defaults)
{
    clear_env();
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, "--jwt-secret", SECRET, (char *)NULL), CHAT_CONFIG_OK);
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_str_eq(cfg.bind, "0.0.0.0");
    ck_assert_str_eq(cfg.redis_url_text, "redis://127.0.0.1:6379/0");
    ck_assert_str_eq(cfg.redis.host, "127.0.0.1");
    ck_assert_int_eq(cfg.redis.port, 6379);
    ck_assert_int_eq(cfg.redis.db, 0);
    ck_assert_ptr_null(cfg.redis.user);
    ck_assert_ptr_null(cfg.redis.password);
    ck_assert_str_eq(cfg.jwt_secret, SECRET);
    ck_assert(!cfg.jwt_secret_generated);
    ck_assert(!cfg.dev);
    ck_assert(!cfg.echo);
    ck_assert_ptr_nonnull(cfg.static_dir);
    ck_assert_ptr_null(cfg.origins);
    ck_assert_int_eq(cfg.history, 200);
    ck_assert_uint_eq(cfg.max_message, 1048576);
    ck_assert(cfg.rate == 10.0);
    ck_assert_int_eq(cfg.burst, 20);
    ck_assert_str_eq(cfg.prefix, "chat:");
    ck_assert_int_eq(cfg.log_level, CHAT_LOG_INFO);
    ck_assert_int_eq(cfg.log_format, CHAT_LOG_FORMAT_TEXT);
    ck_assert_int_eq(cfg.ping_interval, 25);
    ck_assert_int_eq(cfg.idle_timeout, 60);
    ck_assert_int_eq(cfg.presence_ttl, 30);
    ck_assert_int_eq(cfg.presence_batch, 500);
    ck_assert_int_eq(cfg.drain_timeout, 10);

    /* node id: "<hostname>-<pid>", sanitised */
    char pid[32];
    snprintf(pid, sizeof(pid), "-%ld", (long)getpid());
    size_t n = strlen(cfg.node_id);
    ck_assert_uint_ge(n, strlen(pid) + 1);
    ck_assert_uint_le(n, 64);
    ck_assert_str_eq(cfg.node_id + n - strlen(pid), pid);
    ck_assert_uint_eq(strspn(cfg.node_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789_.-"),
                      n);
    chat_config_deinit(&cfg);
    chat_config_deinit(&cfg); /* idempotent */
}
END_TEST

START_TEST(test_env)
{
    clear_env();
    setenv("CHAT_PORT", "9001", 1);
    setenv("CHAT_BIND", "127.0.0.1", 1);
    setenv("CHAT_REDIS_URL", "redis://redis.local:6380/3", 1);
    setenv("CHAT_NODE_ID", "gw-1.a_b", 1);
    setenv("CHAT_JWT_SECRET", SECRET "XYZ", 1);
    setenv("CHAT_DEV", "yes", 1);
    setenv("CHAT_STATIC_DIR", "/srv/web", 1);
    setenv("CHAT_ORIGINS", "https://a.example,https://b.example", 1);
    setenv("CHAT_HISTORY", "1000", 1);
    setenv("CHAT_MAX_MESSAGE", "128", 1);
    setenv("CHAT_RATE", "2.5/7", 1);
    setenv("CHAT_PREFIX", "t1:", 1);
    setenv("CHAT_LOG_LEVEL", "debug", 1);
    setenv("CHAT_LOG_FORMAT", "json", 1);
    setenv("CHAT_ECHO", "true", 1);
    setenv("CHAT_PING_INTERVAL", "5", 1);
    setenv("CHAT_IDLE_TIMEOUT", "15", 1);
    setenv("CHAT_PRESENCE_TTL", "3", 1);
    setenv("CHAT_DRAIN_TIMEOUT", "600", 1);
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, (char *)NULL), CHAT_CONFIG_OK);
    ck_assert_int_eq(cfg.port, 9001);
    ck_assert_str_eq(cfg.bind, "127.0.0.1");
    ck_assert_str_eq(cfg.redis.host, "redis.local");
    ck_assert_int_eq(cfg.redis.port, 6380);
    ck_assert_int_eq(cfg.redis.db, 3);
    ck_assert_str_eq(cfg.node_id, "gw-1.a_b");
    ck_assert_str_eq(cfg.jwt_secret, SECRET "XYZ");
    ck_assert(!cfg.jwt_secret_generated);
    ck_assert(cfg.dev);
    ck_assert_str_eq(cfg.static_dir, "/srv/web");
    ck_assert_str_eq(cfg.origins, "https://a.example,https://b.example");
    ck_assert_int_eq(cfg.history, 1000);
    ck_assert_uint_eq(cfg.max_message, 128);
    ck_assert(cfg.rate == 2.5);
    ck_assert_int_eq(cfg.burst, 7);
    ck_assert_str_eq(cfg.prefix, "t1:");
    ck_assert_int_eq(cfg.log_level, CHAT_LOG_DEBUG);
    ck_assert_int_eq(cfg.log_format, CHAT_LOG_FORMAT_JSON);
    ck_assert(cfg.echo);
    ck_assert_int_eq(cfg.ping_interval, 5);
    ck_assert_int_eq(cfg.idle_timeout, 15);
    ck_assert_int_eq(cfg.presence_ttl, 3);
    ck_assert_int_eq(cfg.drain_timeout, 600);
    chat_config_deinit(&cfg);
}
END_TEST

START_TEST(test_flags_win_over_env)
{
    clear_env();
    setenv("CHAT_PORT", "9001", 1);
    setenv("CHAT_PREFIX", "env:", 1);
    setenv("CHAT_JWT_SECRET", SECRET, 1);
    setenv("CHAT_HISTORY", "not-a-number", 1); /* overridden, so never an error */
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, "--port", "9002", "--prefix=flag:", "--history", "5", (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert_int_eq(cfg.port, 9002);
    ck_assert_str_eq(cfg.prefix, "flag:");
    ck_assert_int_eq(cfg.history, 5);
    ck_assert_str_eq(cfg.jwt_secret, SECRET);
    chat_config_deinit(&cfg);
}
END_TEST

START_TEST(test_equals_form_and_last_wins)
{
    clear_env();
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, "--jwt-secret=" SECRET, "--port=0", "--rate=100/1",
                          "--redis=redis://h:1", "--port=1234", "--log-level=ERROR", "--echo",
                          "--origins=*", (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert_int_eq(cfg.port, 1234);
    ck_assert(cfg.rate == 100.0);
    ck_assert_int_eq(cfg.burst, 1);
    ck_assert_str_eq(cfg.redis.host, "h");
    ck_assert_int_eq(cfg.redis.port, 1);
    ck_assert_int_eq(cfg.log_level, CHAT_LOG_ERROR);
    ck_assert(cfg.echo);
    ck_assert_str_eq(cfg.origins, "*");
    chat_config_deinit(&cfg);
    ck_assert_int_eq(load(&cfg, "--jwt-secret", SECRET, "--port", "0", (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert_int_eq(cfg.port, 0);
    chat_config_deinit(&cfg);
}
END_TEST

START_TEST(test_bad_port)
{
    clear_env();
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--port", "70000"),
                     "--port: 70000 is out of range 0-65535");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--port=-1", NULL),
                     "--port: -1 is out of range 0-65535");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--port=80x", NULL),
                     "--port: '80x' is not an integer");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--port=", NULL),
                     "--port: '' is not an integer");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--port", NULL), "--port: missing value");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--port=99999999999999999999", NULL),
                     "--port: '99999999999999999999' is not an integer");
    setenv("CHAT_PORT", "65536", 1);
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, NULL, NULL),
                     "CHAT_PORT: 65536 is out of range 0-65535");
}
END_TEST

START_TEST(test_other_ranges)
{
    clear_env();
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--history=0", NULL),
                     "--history: 0 is out of range 1-100000");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--max-message=127", NULL),
                     "--max-message: 127 is out of range 128-67108864");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--presence-ttl=2", NULL),
                     "--presence-ttl: 2 is out of range 3-3600");
    ck_assert_ptr_nonnull(strstr(load_err("--jwt-secret=" SECRET, "--rate=0/5", NULL), "--rate"));
    ck_assert_ptr_nonnull(strstr(load_err("--jwt-secret=" SECRET, "--rate=5/0", NULL), "--rate"));
    ck_assert_ptr_nonnull(strstr(load_err("--jwt-secret=" SECRET, "--rate=x", NULL), "--rate"));
    ck_assert_ptr_nonnull(strstr(load_err("--jwt-secret=" SECRET, "--rate=nan/3", NULL), "--rate"));
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--log-level=loud", NULL), "--log-level"));
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--log-format=xml", NULL), "not text or json"));
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--prefix=a b", NULL), "--prefix"));
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--node-id=a/b", NULL), "--node-id"));
    ck_assert_ptr_nonnull(strstr(
        load_err("--jwt-secret=" SECRET,
                 "--node-id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                 NULL),
        "--node-id"));
    ck_assert_ptr_nonnull(strstr(load_err("--jwt-secret=" SECRET, "--bind=", NULL), "--bind"));
    setenv("CHAT_DEV", "maybe", 1);
    ck_assert_ptr_nonnull(strstr(load_err("--jwt-secret=" SECRET, NULL, NULL), "CHAT_DEV"));
}
END_TEST

START_TEST(test_rate_without_burst)
{
    clear_env();
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, "--jwt-secret", SECRET, "--rate", "50", (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert(cfg.rate == 50.0);
    ck_assert_int_eq(cfg.burst, 20);
    chat_config_deinit(&cfg);
}
END_TEST

START_TEST(test_secret)
{
    clear_env();
    ck_assert_str_eq(load_err("--jwt-secret", "short", NULL),
                     "--jwt-secret: must be at least 32 bytes");
    ck_assert_str_eq(load_err("--jwt-secret", "0123456789abcdef0123456789abcde", "--dev"),
                     "--jwt-secret: must be at least 32 bytes");
    ck_assert_str_eq(load_err(NULL, NULL, NULL),
                     "no --jwt-secret (or CHAT_JWT_SECRET) given; use --dev for a random "
                     "development key");
    setenv("CHAT_JWT_SECRET", "tiny", 1);
    ck_assert_str_eq(load_err(NULL, NULL, NULL), "CHAT_JWT_SECRET: must be at least 32 bytes");
}
END_TEST

START_TEST(test_dev_random_secret)
{
    clear_env();
    struct chat_config a, b;
    ck_assert_int_eq(load(&a, "--dev", (char *)NULL), CHAT_CONFIG_OK);
    ck_assert(a.dev);
    ck_assert(a.jwt_secret_generated);
    ck_assert_uint_eq(strlen(a.jwt_secret), 64);
    ck_assert_uint_eq(strspn(a.jwt_secret, "0123456789abcdef"), 64);
    ck_assert_int_eq(load(&b, "--dev", (char *)NULL), CHAT_CONFIG_OK);
    ck_assert_str_ne(a.jwt_secret, b.jwt_secret);
    chat_config_deinit(&a);
    chat_config_deinit(&b);

    /* --dev with a secret keeps it */
    ck_assert_int_eq(load(&a, "--dev", "--jwt-secret", SECRET, (char *)NULL), CHAT_CONFIG_OK);
    ck_assert(!a.jwt_secret_generated);
    ck_assert_str_eq(a.jwt_secret, SECRET);
    chat_config_deinit(&a);

    ck_assert_str_eq(load_err("--dev=1", NULL, NULL), "--dev takes no value");
}
END_TEST

START_TEST(test_redis_urls)
{
    clear_env();
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, "--jwt-secret", SECRET, "--redis",
                          "redis://alice:s%40cret:x@db.example:7000/12", (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert_str_eq(cfg.redis.user, "alice");
    ck_assert_str_eq(cfg.redis.password, "s@cret:x");
    ck_assert_str_eq(cfg.redis.host, "db.example");
    ck_assert_int_eq(cfg.redis.port, 7000);
    ck_assert_int_eq(cfg.redis.db, 12);
    ck_assert_str_eq(cfg.redis_url_text, "redis://alice:s%40cret:x@db.example:7000/12");
    chat_config_deinit(&cfg);

    const char *bad[] = {
        "http://127.0.0.1:6379", "redis://",         "redis://:6379",    "redis://h:0",
        "redis://h:65536",       "redis://h:port",   "redis://h:",       "redis://h/x",
        "redis://h/-1",          "redis://h/0/1",    "redis://user@h",   "redis://u:@h",
        "redis://h?db=1",        "redis://::1:6379", "redis://[]:1",     "redis://h o",
        "rediss://h:6379",       "redis://u:p%zz@h", "redis://u:p%00@h", "redis://h/99999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char arg[128];
        snprintf(arg, sizeof(arg), "--redis=%s", bad[i]);
        const char *e = load_err("--jwt-secret=" SECRET, arg, NULL);
        ck_assert_msg(strncmp(e, "--redis: ", 9) == 0, "%s -> %s", bad[i], e);
    }
}
END_TEST

START_TEST(test_redis_url_parse)
{
    struct chat_redis_url u;
    char err[128];
    ck_assert_int_eq(chat_redis_url_parse("redis://10.0.0.1", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.host, "10.0.0.1");
    ck_assert_int_eq(u.port, 6379);
    ck_assert_int_eq(u.db, 0);
    chat_redis_url_deinit(&u);

    ck_assert_int_eq(chat_redis_url_parse("redis://:pw@h:1/", &u, err, sizeof(err)), 0);
    ck_assert_ptr_null(u.user);
    ck_assert_str_eq(u.password, "pw");
    ck_assert_int_eq(u.db, 0);
    chat_redis_url_deinit(&u);

    ck_assert_int_eq(chat_redis_url_parse("REDIS://[::1]:6390/2", &u, err, sizeof(err)), 0);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 6390);
    ck_assert_int_eq(u.db, 2);
    chat_redis_url_deinit(&u);
    chat_redis_url_deinit(&u);

    ck_assert_int_eq(chat_redis_url_parse("redis://u:p@", &u, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "missing host");
    ck_assert_ptr_null(u.host);
    ck_assert_int_eq(chat_redis_url_parse(NULL, &u, err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_redis_cluster_url)
{
    struct chat_redis_url u;
    char err[128];
    ck_assert_int_eq(chat_redis_url_parse("redis-cluster://us%40r:p@ss@10.0.0.1:7000,h2:7001,[::1]",
                                          &u, err, sizeof(err)),
                     0);
    ck_assert(u.cluster);
    ck_assert_str_eq(u.host, "10.0.0.1");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_str_eq(u.user, "us@r");
    ck_assert_str_eq(u.password, "p@ss");
    ck_assert_uint_eq(u.nseeds, 3);
    ck_assert_str_eq(u.seeds[0].host, "10.0.0.1");
    ck_assert_int_eq(u.seeds[0].port, 7000);
    ck_assert_str_eq(u.seeds[1].host, "h2");
    ck_assert_int_eq(u.seeds[1].port, 7001);
    ck_assert_str_eq(u.seeds[2].host, "::1");
    ck_assert_int_eq(u.seeds[2].port, 6379);
    chat_redis_url_deinit(&u);
    ck_assert_uint_eq(u.nseeds, 0);

    ck_assert_int_eq(chat_redis_url_parse("redis-cluster://h:1", &u, err, sizeof(err)), 0);
    ck_assert_uint_eq(u.nseeds, 1);
    chat_redis_url_deinit(&u);
    ck_assert_int_eq(chat_redis_url_parse("redis://h:1", &u, err, sizeof(err)), 0);
    ck_assert(!u.cluster);
    ck_assert_uint_eq(u.nseeds, 0);
    chat_redis_url_deinit(&u);

    static const char *const bad[] = {"redis-cluster://h:1/0", "redis-cluster://h:1,,h:2",
                                      "redis-cluster://h:1,",  "redis-cluster://h:99999",
                                      "redis-cluster://",      "redis-cluster://h:1?x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(chat_redis_url_parse(bad[i], &u, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert_ptr_null(u.host);
        ck_assert_ptr_null(u.seeds);
    }
}
END_TEST

START_TEST(test_redis_sentinel_url)
{
    struct chat_redis_url u;
    char err[128];
    ck_assert_int_eq(chat_redis_url_parse("redis-sentinel://:pw@s1:26379,s2:26380/chat.master-1",
                                          &u, err, sizeof(err)),
                     0);
    ck_assert(u.sentinel);
    ck_assert(!u.cluster);
    ck_assert_str_eq(u.master_name, "chat.master-1");
    ck_assert_str_eq(u.password, "pw");
    ck_assert_uint_eq(u.nseeds, 2);
    ck_assert_str_eq(u.seeds[1].host, "s2");
    ck_assert_int_eq(u.seeds[1].port, 26380);
    chat_redis_url_deinit(&u);
    ck_assert_ptr_null(u.master_name);

    static const char *const bad[] = {"redis-sentinel://s1:1",     "redis-sentinel://s1:1/",
                                      "redis-sentinel://s1:1/a b", "redis-sentinel:///m",
                                      "redis-sentinel://s1:1,/m",  "redis-sentinel://s1:1/m?x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(chat_redis_url_parse(bad[i], &u, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert_ptr_null(u.master_name);
        ck_assert_ptr_null(u.seeds);
    }
}
END_TEST

START_TEST(test_unknown_and_stray)
{
    clear_env();
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--foo", NULL), "unknown option --foo");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--foo=1", NULL), "unknown option --foo");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "stray", NULL),
                     "unexpected argument 'stray'");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "-p", NULL), "unexpected argument '-p'");
}
END_TEST

START_TEST(test_help)
{
    clear_env();
    struct chat_config cfg;
    ck_assert_int_eq(load(&cfg, "--help", (char *)NULL), CHAT_CONFIG_HELP);
    chat_config_deinit(&cfg);
    ck_assert_int_eq(load(&cfg, "--port", "1", "-h", (char *)NULL), CHAT_CONFIG_HELP);
    chat_config_deinit(&cfg);

    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(mem);
    char *argv[] = {(char *)"chat-gateway", (char *)"--help", NULL};
    ck_assert_int_eq(chat_config_load(&cfg, 2, argv, mem, errbuf, sizeof(errbuf)),
                     CHAT_CONFIG_HELP);
    chat_config_deinit(&cfg);
    fclose(mem);
    const char *want[] = {
        "--port",
        "CHAT_PORT",
        "8080",
        "--bind",
        "CHAT_BIND",
        "0.0.0.0",
        "--redis",
        "CHAT_REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "--node-id",
        "CHAT_NODE_ID",
        "--jwt-secret",
        "CHAT_JWT_SECRET",
        "--dev",
        "CHAT_DEV",
        "--static-dir",
        "CHAT_STATIC_DIR",
        "--origins",
        "CHAT_ORIGINS",
        "--history",
        "CHAT_HISTORY",
        "--max-message",
        "CHAT_MAX_MESSAGE",
        "1048576",
        "--rate",
        "CHAT_RATE",
        "10/20",
        "--prefix",
        "CHAT_PREFIX",
        "chat:",
        "--log-level",
        "CHAT_LOG_LEVEL",
        "--log-format",
        "CHAT_LOG_FORMAT",
        "--echo",
        "CHAT_ECHO",
        "--ping-interval",
        "CHAT_PING_INTERVAL",
        "--idle-timeout",
        "CHAT_IDLE_TIMEOUT",
        "--presence-ttl",
        "CHAT_PRESENCE_TTL",
        "--presence-batch",
        "CHAT_PRESENCE_BATCH",
        "--drain-timeout",
        "CHAT_DRAIN_TIMEOUT",
        "--jwt-public-key FILE",
        "CHAT_JWT_PUBLIC_KEY",
        "--jwt-issuer",
        "CHAT_JWT_ISSUER",
        "--jwt-audience",
        "CHAT_JWT_AUDIENCE",
        "--jwt-claim-id",
        "CHAT_JWT_CLAIM_ID",
        "default sub",
        "--jwt-claim-name",
        "CHAT_JWT_CLAIM_NAME",
        "default name",
        "--help",
        "--version",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "help lacks %s", want[i]);
    free(text);

    text = NULL;
    mem = open_memstream(&text, &size);
    chat_config_usage(mem);
    fclose(mem);
    ck_assert_ptr_nonnull(strstr(text, "Usage:"));
    free(text);
}
END_TEST

START_TEST(test_public_key)
{
    clear_env();
    struct chat_config cfg;
    char rsa[128];
    snprintf(rsa, sizeof(rsa), "%s", test_key_path("rsa.pub"));
    ck_assert_int_eq(load(&cfg, "--jwt-secret", SECRET, "--jwt-public-key", rsa, (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert_str_eq(cfg.jwt_public_key, rsa);
    ck_assert_ptr_nonnull(strstr(cfg.jwt_public_key_pem, "-----BEGIN PUBLIC KEY-----"));
    ck_assert_ptr_null(cfg.jwt_issuer);
    ck_assert_ptr_null(cfg.jwt_audience);
    ck_assert_str_eq(cfg.jwt_claim_id, "sub");
    ck_assert_str_eq(cfg.jwt_claim_name, "name");

    /* the verifier it describes takes both kinds of token */
    struct chat_token_verifier *v = NULL;
    ck_assert_int_eq(chat_config_token_verifier(&cfg, &v, errbuf, sizeof(errbuf)), 0);
    chat_config_deinit(&cfg);
    chat_config_deinit(&cfg);
    struct chat_identity who;
    char *tok = test_sign_pkey("rsa.key", "{\"alg\":\"RS256\"}",
                               "{\"sub\":\"idp-1\",\"name\":\"Ada\",\"exp\":4000000000}");
    ck_assert_int_eq(chat_token_verify_with(v, tok, 1800000000, &who), CHAT_TOKEN_OK);
    ck_assert_str_eq(who.id, "idp-1");
    chat_identity_deinit(&who);
    free(tok);
    struct chat_identity me = {.id = "g1", .name = "Guest"};
    tok = chat_token_issue(SECRET, strlen(SECRET), &me, 1800000000, 60);
    ck_assert_int_eq(chat_token_verify_with(v, tok, 1800000000, &who), CHAT_TOKEN_OK);
    chat_identity_deinit(&who);
    free(tok);
    chat_token_verifier_free(v);

    /* from the environment, with issuer, audience and claim names */
    setenv("CHAT_JWT_SECRET", SECRET, 1);
    setenv("CHAT_JWT_PUBLIC_KEY", test_key_path("ec.pub"), 1);
    setenv("CHAT_JWT_ISSUER", "https://idp.example", 1);
    setenv("CHAT_JWT_AUDIENCE", "chatgw", 1);
    setenv("CHAT_JWT_CLAIM_ID", "uid", 1);
    setenv("CHAT_JWT_CLAIM_NAME", "preferred_username", 1);
    ck_assert_int_eq(load(&cfg, (char *)NULL), CHAT_CONFIG_OK);
    ck_assert_str_eq(cfg.jwt_public_key, test_key_path("ec.pub"));
    ck_assert_str_eq(cfg.jwt_issuer, "https://idp.example");
    ck_assert_str_eq(cfg.jwt_audience, "chatgw");
    ck_assert_str_eq(cfg.jwt_claim_id, "uid");
    ck_assert_str_eq(cfg.jwt_claim_name, "preferred_username");
    ck_assert_int_eq(chat_config_token_verifier(&cfg, &v, errbuf, sizeof(errbuf)), 0);
    tok = test_sign_pkey("ec.key", "{\"alg\":\"ES256\"}",
                         "{\"iss\":\"https://idp.example\",\"aud\":[\"chatgw\"],\"uid\":\"u7\","
                         "\"preferred_username\":\"ada\",\"exp\":4000000000}");
    ck_assert_int_eq(chat_token_verify_with(v, tok, 1800000000, &who), CHAT_TOKEN_OK);
    ck_assert_str_eq(who.id, "u7");
    ck_assert_str_eq(who.name, "ada");
    chat_identity_deinit(&who);
    free(tok);
    chat_token_verifier_free(v);
    chat_config_deinit(&cfg);
    /* flags win; a certificate is a key too */
    char crt[128];
    snprintf(crt, sizeof(crt), "--jwt-public-key=%s", test_key_path("rsa.crt"));
    ck_assert_int_eq(load(&cfg, crt, "--jwt-claim-id", "sub", (char *)NULL), CHAT_CONFIG_OK);
    ck_assert_str_eq(cfg.jwt_public_key, test_key_path("rsa.crt"));
    ck_assert_str_eq(cfg.jwt_claim_id, "sub");
    chat_config_deinit(&cfg);
    clear_env();
}
END_TEST

START_TEST(test_public_key_errors)
{
    clear_env();
    char path[160];
    const char *e;

    snprintf(path, sizeof(path), "%s", test_key_path("missing.pem"));
    e = load_err("--jwt-secret=" SECRET, "--jwt-public-key", path);
    ck_assert_ptr_nonnull(strstr(e, "--jwt-public-key"));
    ck_assert_ptr_nonnull(strstr(e, path));
    ck_assert_ptr_nonnull(strstr(e, "No such file"));

    snprintf(path, sizeof(path), "%s", test_key_path("rsa.key"));
    e = load_err("--jwt-secret=" SECRET, "--jwt-public-key", path);
    ck_assert_ptr_nonnull(strstr(e, "private key"));

    snprintf(path, sizeof(path), "%s", test_key_path("garbage.pem"));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n", f);
    fclose(f);
    e = load_err("--jwt-secret=" SECRET, "--jwt-public-key", path);
    ck_assert_ptr_nonnull(strstr(e, "no PEM public key"));
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--jwt-public-key", path), "is empty"));

    snprintf(path, sizeof(path), "%s", test_key_path("ec384.pub"));
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--jwt-public-key", path), "P-256"));
    snprintf(path, sizeof(path), "%s", test_key_path(""));
    ck_assert_ptr_nonnull(load_err("--jwt-secret=" SECRET, "--jwt-public-key", path));

    /* issuer, audience and claim names without a key would check nothing */
    ck_assert_ptr_nonnull(
        strstr(load_err("--jwt-secret=" SECRET, "--jwt-issuer", "x"), "--jwt-public-key"));
    ck_assert_ptr_nonnull(load_err("--jwt-secret=" SECRET, "--jwt-audience", "x"));
    ck_assert_ptr_nonnull(load_err("--jwt-secret=" SECRET, "--jwt-claim-name", "nick"));
    setenv("CHAT_JWT_CLAIM_ID", "uid", 1);
    ck_assert_ptr_nonnull(load_err("--jwt-secret=" SECRET, NULL, NULL));
    clear_env();

    char key[160];
    snprintf(key, sizeof(key), "--jwt-public-key=%s", test_key_path("ec.pub"));
    ck_assert_ptr_nonnull(strstr(load_err(key, "--jwt-claim-id", "a b"), "--jwt-claim-id"));
    ck_assert_ptr_nonnull(load_err(key, "--jwt-claim-name", ""));
    ck_assert_ptr_nonnull(load_err(key, "--jwt-issuer", ""));
    /* a key does not replace the secret /api/login signs with */
    ck_assert_ptr_nonnull(strstr(load_err(key, NULL, NULL), "--jwt-secret"));
}
END_TEST

START_TEST(test_version)
{
    clear_env();
    struct chat_config cfg;
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(mem);
    /* no secret needed, like --help */
    char *argv[] = {(char *)"chat-gateway", (char *)"--port", (char *)"1", (char *)"--version",
                    NULL};
    ck_assert_int_eq(chat_config_load(&cfg, 4, argv, mem, errbuf, sizeof(errbuf)),
                     CHAT_CONFIG_HELP);
    chat_config_deinit(&cfg);
    fclose(mem);
    ck_assert_str_eq(text, "chat-gateway " CHAT_TEST_VERSION " (commit " CHAT_TEST_COMMIT ")\n");
    free(text);
    ck_assert_str_eq(chat_config_version(), CHAT_TEST_VERSION " (commit " CHAT_TEST_COMMIT ")");
    /* a version made of digits and dots, a short hex commit or "unknown" */
    ck_assert_uint_gt(strlen(CHAT_TEST_VERSION), 0);
    ck_assert_uint_eq(strspn(CHAT_TEST_VERSION, "0123456789."), strlen(CHAT_TEST_VERSION));
    ck_assert(strcmp(CHAT_TEST_COMMIT, "unknown") == 0 ||
              (strlen(CHAT_TEST_COMMIT) >= 7 &&
               strspn(CHAT_TEST_COMMIT, "0123456789abcdef") == strlen(CHAT_TEST_COMMIT)));

    ck_assert_str_eq(load_err("--version=1", NULL, NULL), "--version takes no value");
    /* --help wins over --version */
    ck_assert_int_eq(load(&cfg, "--version", "--help", (char *)NULL), CHAT_CONFIG_HELP);
    chat_config_deinit(&cfg);
}
END_TEST

/* --deflate is on by default, so unlike the other switches it takes a value. */
START_TEST(test_deflate)
{
    struct chat_config cfg;
    clear_env();
    ck_assert_int_eq(load(&cfg, "--jwt-secret=" SECRET, (char *)NULL), CHAT_CONFIG_OK);
    ck_assert(cfg.deflate);
    ck_assert_uint_eq(cfg.deflate_min, 128);
    ck_assert(!cfg.deflate_client_context);
    chat_config_deinit(&cfg);
    ck_assert_int_eq(
        load(&cfg, "--jwt-secret=" SECRET, "--deflate-client-context", "on", (char *)NULL),
        CHAT_CONFIG_OK);
    ck_assert(cfg.deflate_client_context);
    chat_config_deinit(&cfg);
    ck_assert_int_eq(
        load(&cfg, "--jwt-secret=" SECRET, "--deflate", "off", "--deflate-min=0", (char *)NULL),
        CHAT_CONFIG_OK);
    ck_assert(!cfg.deflate);
    ck_assert_uint_eq(cfg.deflate_min, 0);
    chat_config_deinit(&cfg);
    setenv("CHAT_DEFLATE", "no", 1);
    setenv("CHAT_DEFLATE_MIN", "4096", 1);
    setenv("CHAT_DEFLATE_CLIENT_CONTEXT", "yes", 1);
    ck_assert_int_eq(load(&cfg, "--jwt-secret=" SECRET, (char *)NULL), CHAT_CONFIG_OK);
    ck_assert(!cfg.deflate);
    ck_assert_uint_eq(cfg.deflate_min, 4096);
    ck_assert(cfg.deflate_client_context);
    chat_config_deinit(&cfg);
    /* The flag wins over the environment. */
    ck_assert_int_eq(load(&cfg, "--jwt-secret=" SECRET, "--deflate=on", (char *)NULL),
                     CHAT_CONFIG_OK);
    ck_assert(cfg.deflate);
    chat_config_deinit(&cfg);
    clear_env();
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--deflate", NULL),
                     "--deflate: missing value");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--deflate=maybe", NULL),
                     "--deflate: 'maybe' is not one of 1/0, true/false, yes/no, on/off");
    ck_assert_str_eq(load_err("--jwt-secret=" SECRET, "--deflate-min=-1", NULL),
                     "--deflate-min: -1 is out of range 0-67108864");
}
END_TEST

TCase *config_tcase(void)
{
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_env);
    tcase_add_test(tc, test_flags_win_over_env);
    tcase_add_test(tc, test_equals_form_and_last_wins);
    tcase_add_test(tc, test_bad_port);
    tcase_add_test(tc, test_other_ranges);
    tcase_add_test(tc, test_rate_without_burst);
    tcase_add_test(tc, test_secret);
    tcase_add_test(tc, test_dev_random_secret);
    tcase_add_test(tc, test_redis_urls);
    tcase_add_test(tc, test_redis_url_parse);
    tcase_add_test(tc, test_redis_cluster_url);
    tcase_add_test(tc, test_redis_sentinel_url);
    tcase_add_test(tc, test_unknown_and_stray);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_public_key);
    tcase_add_test(tc, test_public_key_errors);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_deflate);
    return tc;
}
