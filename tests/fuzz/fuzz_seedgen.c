/*
 * Writes the token seeds of corpus/fuzz_token that must be signed with the
 * fixed key of token_fixture.h (issued by chat_token_issue).  Not a fuzzer:
 *   build-fuzz/fuzz_seedgen tests/fuzz/corpus/fuzz_token
 */
#include <errno.h>

#include "token_fixture.h"

static int write_seed(const char *dir, const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "fuzz_seedgen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int issue(const char *dir, const char *name, const char *id, const char *nick,
                 const char *avatar, bool admin, long long now, long long ttl)
{
    struct chat_identity who = {0};
    snprintf(who.id, sizeof(who.id), "%s", id);
    snprintf(who.name, sizeof(who.name), "%s", nick);
    who.avatar = (char *)avatar;
    who.admin = admin;
    char *tok = chat_token_issue(FUZZ_SECRET, strlen(FUZZ_SECRET), &who, now, ttl);
    if (!tok) {
        fprintf(stderr, "fuzz_seedgen: cannot issue %s\n", name);
        return -1;
    }
    int rc = write_seed(dir, name, tok);
    free(tok);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seedgen DIR\n");
        return 2;
    }
    const char *d = argv[1];
    const long long day = 86400;
    int rc = 0;
    rc |= issue(d, "issued-guest", "a1b2c3d4e5f60718", "ada", NULL, false, FUZZ_NOW, day);
    rc |= issue(d, "issued-admin-avatar", "admin_1", "Grace Hopper",
                "https://example.com/grace.png", true, FUZZ_NOW - 60, day);
    rc |= issue(d, "issued-unicode",
                "u-64chars-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                "\xc3\x89milie \xf0\x9f\x98\x80 \xce\xa3\xcf\x82", "", false, FUZZ_NOW, day);
    rc |= issue(d, "issued-32cp-nick", "x",
                "\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0"
                "\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96"
                "\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0"
                "\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96\xd0\x96",
                NULL, false, FUZZ_NOW, day);
    /* valid signature, wrong clock */
    rc |= issue(d, "issued-expired", "old", "old", NULL, false, FUZZ_NOW - 2 * day, day);
    /* a different key: signature refused */
    struct chat_identity who = {.id = "mallory", .name = "mallory"};
    char *tok = chat_token_issue(FUZZ_OTHER_SECRET, strlen(FUZZ_OTHER_SECRET), &who, FUZZ_NOW, day);
    rc |= tok ? write_seed(d, "issued-other-key", tok) : -1;
    free(tok);
    return rc ? 1 : 0;
}
