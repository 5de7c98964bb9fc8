#include <string.h>

#include "static.h"
#include "tests.h"

#define ROOT "/srv/web"

/* Resolves url under ROOT and checks the result against want (NULL: refused). */
static void expect_path(const char *url, const char *want)
{
    char out[512];
    int rc = gw_static_resolve(ROOT, url, out, sizeof(out));
    ck_assert_msg(rc == 0, "resolve(\"%s\") = %d, want 0", url, rc);
    ck_assert_str_eq(out, want);
}

static void expect_rc(const char *url, int want)
{
    char out[512];
    int rc = gw_static_resolve(ROOT, url, out, sizeof(out));
    ck_assert_msg(rc == want, "resolve(\"%s\") = %d, want %d", url, rc, want);
}

START_TEST(test_resolve_ok)
{
    expect_path("/", ROOT "/index.html");
    expect_path("/index.html", ROOT "/index.html");
    expect_path("/app.js", ROOT "/app.js");
    expect_path("/a/b.css", ROOT "/a/b.css");
    expect_path("/x/", ROOT "/x/index.html");
    expect_path("/%61pp.js", ROOT "/app.js");
    expect_path("/img/logo%20big.png", ROOT "/img/logo big.png");
    /* Two dots inside a name are not a ".." segment. */
    expect_path("/file..name.js", ROOT "/file..name.js");
}
END_TEST

START_TEST(test_resolve_traversal)
{
    static const char *const bad[] = {
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2e%2Fetc",
        "/%2e%2E%2fetc%2fpasswd",
        "/a/../../b",
        "/a/%2e%2e/%2e%2e/b",
        "/a/..",
        "/..",
        "/.git/config",
        "/%2egit/config",
        "/..%2fetc%2fpasswd",
        "/a/..%2f..%2fb",
        "/%00",
        "/index.html%00.png",
        "/a\\b",
        "/..\\etc",
        "/%5c..%5cetc",
        "/a%5cb",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_rc(bad[i], GW_STATIC_FORBIDDEN);
}
END_TEST

START_TEST(test_resolve_not_absolute)
{
    expect_rc("..%2f", GW_STATIC_FORBIDDEN);
    expect_rc("index.html", GW_STATIC_FORBIDDEN);
    expect_rc("", GW_STATIC_FORBIDDEN);
    expect_rc("../etc/passwd", GW_STATIC_FORBIDDEN);
    expect_rc("\\index.html", GW_STATIC_FORBIDDEN);
}
END_TEST

START_TEST(test_resolve_bad_escapes)
{
    static const char *const bad[] = {"/%", "/%2", "/a%zz", "/%g0.js", "/%%41", "/x%2"};
    char out[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = gw_static_resolve(ROOT, bad[i], out, sizeof(out));
        ck_assert_msg(rc < 0, "resolve(\"%s\") = %d, want a refusal", bad[i], rc);
    }
}
END_TEST

START_TEST(test_resolve_too_long)
{
    char url[6000];
    url[0] = '/';
    memset(url + 1, 'a', sizeof(url) - 2);
    url[sizeof(url) - 1] = '\0';
    char out[8192];
    ck_assert_int_eq(gw_static_resolve(ROOT, url, out, sizeof(out)), GW_STATIC_NOT_FOUND);

    /* A path that fits the decoder but not the caller's buffer. */
    char small[16];
    ck_assert_int_eq(gw_static_resolve(ROOT, "/a-rather-long-name.html", small, sizeof(small)),
                     GW_STATIC_NOT_FOUND);
}
END_TEST

START_TEST(test_resolve_stays_below_root)
{
    /* Whatever is accepted must stay below ROOT/ with no ".." segment. */
    static const char *const urls[] = {"//etc/passwd",   "/a//b.css", "/./x", "/a/./b",
                                       "/%2fetc/passwd", "/a%2fb.js", "/...", "/a/.../b"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char out[512];
        int rc = gw_static_resolve(ROOT, urls[i], out, sizeof(out));
        if (rc != 0)
            continue;
        ck_assert_msg(strncmp(out, ROOT "/", strlen(ROOT) + 1) == 0, "%s -> %s", urls[i], out);
        ck_assert_msg(!strstr(out, "/../") && strcmp(out + strlen(out) - 3, "/..") != 0, "%s -> %s",
                      urls[i], out);
    }
}
END_TEST

static void expect_mime_prefix(const char *path, const char *prefix)
{
    const char *m = gw_static_mime(path);
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strncmp(m, prefix, strlen(prefix)) == 0, "mime(%s) = %s, want %s...", path, m,
                  prefix);
}

START_TEST(test_mime)
{
    expect_mime_prefix("/srv/web/index.html", "text/html");
    expect_mime_prefix("/srv/web/app.js", "text/javascript");
    expect_mime_prefix("/srv/web/style.css", "text/css");
    expect_mime_prefix("/srv/web/logo.png", "image/png");
    expect_mime_prefix("/srv/web/icon.svg", "image/svg+xml");
    expect_mime_prefix("/srv/web/INDEX.HTML", "text/html");
    ck_assert_str_eq(gw_static_mime("/srv/web/data.unknownext"), "application/octet-stream");
    ck_assert_str_eq(gw_static_mime("/srv/web/README"), "application/octet-stream");
    /* A dot in a directory name is not an extension. */
    ck_assert_str_eq(gw_static_mime("/srv/web.html/README"), "application/octet-stream");
    /* Text types say their charset, so the browser does not guess. */
    ck_assert_ptr_nonnull(strstr(gw_static_mime("a.html"), "charset=utf-8"));
}
END_TEST

TCase *static_tcase(void)
{
    TCase *tc = tcase_create("static");
    tcase_add_test(tc, test_resolve_ok);
    tcase_add_test(tc, test_resolve_traversal);
    tcase_add_test(tc, test_resolve_not_absolute);
    tcase_add_test(tc, test_resolve_bad_escapes);
    tcase_add_test(tc, test_resolve_too_long);
    tcase_add_test(tc, test_resolve_stays_below_root);
    tcase_add_test(tc, test_mime);
    return tc;
}
