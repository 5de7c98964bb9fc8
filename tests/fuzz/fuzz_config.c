/*
 * chat_config_load (common/config.c) with an argv built from the input, split
 * on NUL bytes (argv[0] is fixed).  The environment is cleared of CHAT_* at
 * start-up so that only argv counts, and --help goes to /dev/null.  An
 * accepted configuration must be in range everywhere; a refused one must be
 * zeroed with a terminated reason that does not echo the JWT secret or the
 * Redis URL (which may hold a password).
 *
 * --jwt-public-key reads a file: the harness maps its value to a file of a
 * private fixture directory (rsa.pem, ec.pem, rsa1024.pem, cert-like.pem,
 * garbage.pem, empty; anything else does not exist), and skips inputs whose
 * key path has a '/', so the fuzzer never opens /dev/stdin or a FIFO.
 */
#include <math.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

extern char **environ;

static FILE *devnull;
static char fixture_dir[512]; /* $TMPDIR/chatgw-fuzz-config-XXXXXX */
static const char *const fixture_files[] = {"rsa.pem", "ec.pem", "rsa1024.pem", "garbage.pem",
                                            "empty"};

static void write_fixture(const char *name, EVP_PKEY *key, const char *text)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", fixture_dir, name);
    FILE *f = fopen(path, "w");
    FUZZ_CHECK(f != NULL);
    if (key)
        FUZZ_CHECK(PEM_write_PUBKEY(f, key) == 1);
    else
        fputs(text, f);
    FUZZ_CHECK(fclose(f) == 0);
}

static void remove_fixtures(void)
{
    char path[256];
    for (size_t i = 0; i < sizeof(fixture_files) / sizeof(fixture_files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", fixture_dir, fixture_files[i]);
        unlink(path);
    }
    rmdir(fixture_dir);
}

static void make_fixtures(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(fixture_dir, sizeof(fixture_dir), "%s/chatgw-fuzz-config-XXXXXX",
             tmp && tmp[0] ? tmp : "/tmp");
    FUZZ_CHECK(mkdtemp(fixture_dir) != NULL);
    atexit(remove_fixtures);
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FUZZ_CHECK(rsa && small && ec);
    write_fixture("rsa.pem", rsa, NULL);
    write_fixture("rsa1024.pem", small, NULL);
    write_fixture("ec.pem", ec, NULL);
    write_fixture("garbage.pem", NULL,
                  "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n");
    write_fixture("empty", NULL, "");
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
}

/*
 * Points every --jwt-public-key value into the fixture directory.  argv[i]
 * may be replaced by a heap string recorded in owned[i].  false: skip this
 * input (a path with '/').
 */
static bool map_key_paths(char **argv, int argc, char **owned)
{
    static const char flag[] = "--jwt-public-key";
    const size_t fl = sizeof(flag) - 1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int at = i;
        if (strcmp(argv[i], flag) == 0 && i + 1 < argc) {
            at = i + 1;
            value = argv[at];
        } else if (strncmp(argv[i], flag, fl) == 0 && argv[i][fl] == '=') {
            value = argv[i] + fl + 1;
        }
        if (!value || !value[0])
            continue;
        if (strchr(value, '/'))
            return false;
        size_t cap = strlen(fixture_dir) + strlen(value) + fl + 8;
        char *mapped = malloc(cap);
        FUZZ_CHECK(mapped != NULL);
        if (at == i)
            snprintf(mapped, cap, "%s=%s/%s", flag, fixture_dir, value);
        else
            snprintf(mapped, cap, "%s/%s", fixture_dir, value);
        free(owned[at]);
        owned[at] = mapped;
        argv[at] = mapped;
        if (at != i)
            i++;
    }
    return true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    FUZZ_CHECK(devnull != NULL);
    make_fixtures();
    /* unsetenv shifts environ: restart the scan after each removal */
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "CHAT_", 5) == 0) {
                char name[256];
                size_t n = strcspn(*e, "=");
                if (n >= sizeof(name))
                    n = sizeof(name) - 1;
                memcpy(name, *e, n);
                name[n] = '\0';
                unsetenv(name);
                again = true;
                break;
            }
        }
    }
    return 0;
}

static void check_config(const struct chat_config *c)
{
    FUZZ_CHECK(c->port >= 0 && c->port <= 65535);
    FUZZ_CHECK(c->bind && c->bind[0]);
    FUZZ_CHECK(c->redis_url_text && c->redis.host && c->redis.host[0]);
    FUZZ_CHECK(c->redis.port >= 1 && c->redis.port <= 65535 && c->redis.db >= 0);
    FUZZ_CHECK(c->node_id);
    size_t n = strlen(c->node_id);
    FUZZ_CHECK(n >= 1 && n <= 64);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-",
                          c->node_id[i]));
    FUZZ_CHECK(!c->jwt_secret || strlen(c->jwt_secret) >= CHAT_JWT_SECRET_MIN);
    FUZZ_CHECK(!c->jwt_secret_generated || c->dev);
    FUZZ_CHECK(c->static_dir && c->static_dir[0]);
    FUZZ_CHECK(!c->origins || c->origins[0]);
    FUZZ_CHECK(c->history >= 1 && c->history <= 100000);
    FUZZ_CHECK(c->max_message >= 128 && c->max_message <= 67108864);
    FUZZ_CHECK(isfinite(c->rate) && c->rate > 0 && c->rate <= 1e6);
    FUZZ_CHECK(c->burst >= 1 && c->burst <= 1000000);
    FUZZ_CHECK(c->prefix && strlen(c->prefix) <= 64);
    for (const char *p = c->prefix; *p; p++)
        FUZZ_CHECK(*p > ' ' && *p < 0x7f);
    FUZZ_CHECK((unsigned)c->log_level <= CHAT_LOG_DEBUG);
    FUZZ_CHECK(c->ping_interval >= 1 && c->ping_interval <= 3600);
    FUZZ_CHECK(c->idle_timeout >= 1 && c->idle_timeout <= 86400);
    FUZZ_CHECK(c->presence_ttl >= 3 && c->presence_ttl <= 3600);
    FUZZ_CHECK(c->drain_timeout >= 1 && c->drain_timeout <= 600);
    FUZZ_CHECK(c->drain_grace >= 0 && c->drain_grace <= 60);
}

/*
 * The value of a --FLAG VALUE or --FLAG=VALUE in argv[i], or NULL.  Only
 * values not starting with '-' count: such a value was certainly consumed by
 * the flag before it when the error is attributed to that flag (otherwise the
 * scan would have stopped at it as an unexpected argument).
 */
static char *flag_value(char **argv, int argc, int i, const char *flag)
{
    size_t fl = strlen(flag);
    char *v = NULL;
    if (strcmp(argv[i], flag) == 0 && i + 1 < argc)
        v = argv[i + 1];
    else if (strncmp(argv[i], flag, fl) == 0 && argv[i][fl] == '=')
        v = argv[i] + fl + 1;
    return v && v[0] != '-' ? v : NULL;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * The JWT secret and the Redis URL (it may hold a password) are never quoted
 * in an error.  For the secret this is checked by non-interference: the same
 * argv with every secret value overwritten by a filler of the same length
 * must fail with the very same message.  For the URL, a value starting with
 * redis:// must not appear in the message.
 */
static void check_no_echo(char **argv, int argc, const char *err)
{
    if (starts_with(err, "--redis:")) {
        for (int i = 1; i < argc; i++) {
            const char *v = flag_value(argv, argc, i, "--redis");
            if (v && starts_with(v, "redis://") && strlen(v) > 12 && strstr(err, v)) {
                fprintf(stderr, "fuzz: error quotes the Redis URL: %s\n", err);
                FUZZ_CHECK(!"the Redis URL is echoed in a config error");
            }
        }
    }
    if (!starts_with(err, "--jwt-secret:") && !starts_with(err, "JWT settings:"))
        return;
    char **copy = calloc((size_t)argc + 1, sizeof(*copy));
    bool changed = false;
    FUZZ_CHECK(copy != NULL);
    for (int i = 0; i < argc; i++) {
        copy[i] = strdup(argv[i]);
        FUZZ_CHECK(copy[i] != NULL);
    }
    for (int i = 1; i < argc; i++) {
        char *v = flag_value(copy, argc, i, "--jwt-secret");
        if (!v)
            continue;
        char fill = v[0] == 'Z' ? 'Y' : 'Z';
        memset(v, fill, strlen(v));
        changed = true;
    }
    if (changed) {
        struct chat_config cfg;
        char err2[256];
        int rc = chat_config_load(&cfg, argc, copy, devnull, err2, sizeof(err2));
        FUZZ_CHECK(rc == CHAT_CONFIG_ERROR);
        if (strcmp(err, err2) != 0) {
            fprintf(stderr, "fuzz: the error depends on the secret's bytes:\n  %s\n  %s\n", err,
                    err2);
            FUZZ_CHECK(!"a secret is echoed in a config error");
        }
        chat_config_deinit(&cfg);
    }
    for (int i = 0; i < argc; i++)
        free(copy[i]);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { MAX_ARGS = 64 };
    int nparts;
    char **parts = fuzz_split(data, size, MAX_ARGS, &nparts);
    char *argv[MAX_ARGS + 2];
    char *owned[MAX_ARGS + 2] = {0};
    struct chat_config cfg;
    char err[256];
    int argc = 0;
    static char prog[] = "chat-gateway";

    argv[argc++] = prog;
    for (int i = 0; i < nparts; i++)
        argv[argc++] = parts[i];
    argv[argc] = NULL;
    if (!map_key_paths(argv, argc, owned))
        goto done;

    memset(err, 'x', sizeof(err));
    int rc = chat_config_load(&cfg, argc, argv, devnull, err, sizeof(err));
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (rc == CHAT_CONFIG_OK) {
        check_config(&cfg);
        FUZZ_CHECK(err[0] == '\0');
    } else if (rc == CHAT_CONFIG_ERROR) {
        static const struct chat_config zero;
        FUZZ_CHECK(memcmp(&cfg, &zero, sizeof(cfg)) == 0);
        FUZZ_CHECK(err[0] != '\0');
        check_no_echo(argv, argc, err);
    } else {
        FUZZ_CHECK(rc == CHAT_CONFIG_HELP);
    }
    chat_config_deinit(&cfg);
    chat_config_deinit(&cfg); /* idempotent */
done:
    for (int i = 0; i < argc; i++)
        free(owned[i]);
    fuzz_free_parts(parts, nparts);
    return 0;
}
