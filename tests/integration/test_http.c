/*
 * HTTP surface of one gateway (PROTOCOL.md sections 2 and 3): /healthz,
 * /api/login, /api/me, and the parser limits, over real sockets.
 */
#include "chat_client.h"
#include "harness.h"
#include "tests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static struct h_cluster cl;

static void setup(void)
{
    h_watchdog(55);
    ck_assert_int_eq(h_cluster_init(&cl), 0);
    ck_assert_int_eq(h_cluster_add_gateway(&cl, NULL), 0);
}

static void teardown(void)
{
    ck_assert_int_eq(h_cluster_stop(&cl), 0);
}

/* GET/POST at gateway 0; returns the status and the parsed JSON body. */
static int api(const char *method, const char *path, const char *headers, const char *body,
               json_t **out)
{
    char *resp = NULL;
    int status = chat_http_request(cl.http_url[0], method, path, headers, body,
                                   body ? strlen(body) : 0, &resp, H_TIMEOUT_MS);

    *out = resp ? json_loads(resp, 0, NULL) : NULL;
    free(resp);
    return status;
}

static void assert_error_code(json_t *j, const char *code)
{
    ck_assert_msg(j != NULL, "error body is not JSON");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), code);
    ck_assert(json_is_string(json_object_get(json_object_get(j, "error"), "message")));
}

static int login_body(const char *body, json_t **out)
{
    return api("POST", "/api/login", NULL, body, out);
}

START_TEST(test_healthz)
{
    json_t *j = NULL;
    char *token = NULL;
    struct tc *t;

    ck_assert_int_eq(api("GET", "/healthz", NULL, NULL, &j), 200);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    ck_assert_str_eq(json_string_value(json_object_get(j, "node")), "gw1");
    ck_assert_str_eq(json_string_value(json_object_get(j, "redis")), "up");
    ck_assert(json_is_integer(json_object_get(j, "connections")));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 0);
    json_decref(j);

    ck_assert_int_eq(h_login(&cl, 0, "healthy", &token, NULL), 200);
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(api("GET", "/healthz", NULL, NULL, &j), 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "connections")), 1);
    json_decref(j);
    tc_free(t);
    free(token);
}
END_TEST

START_TEST(test_login_ok)
{
    json_t *j = NULL, *user;
    const char *id, *token;

    ck_assert_int_eq(login_body("{\"nickname\":\"alice\",\"avatar\":\"https://a/x.png\"}", &j),
                     200);
    ck_assert_ptr_nonnull(j);
    token = json_string_value(json_object_get(j, "token"));
    ck_assert_ptr_nonnull(token);
    ck_assert_int_eq((int)strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_."),
                     (int)strlen(token));
    user = json_object_get(j, "user");
    id = json_string_value(json_object_get(user, "id"));
    ck_assert_ptr_nonnull(id);
    ck_assert_int_ge((int)strlen(id), 1);
    ck_assert_int_le((int)strlen(id), 64);
    ck_assert_int_eq((int)strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                     "0123456789_-"),
                     (int)strlen(id));
    ck_assert_str_eq(json_string_value(json_object_get(user, "name")), "alice");
    ck_assert_str_eq(json_string_value(json_object_get(user, "avatar")), "https://a/x.png");
    json_decref(j);

    /* Two logins get two different ids. */
    {
        char *id1 = NULL, *id2 = NULL;

        ck_assert_int_eq(h_login(&cl, 0, "dave", NULL, &id1), 200);
        ck_assert_int_eq(h_login(&cl, 0, "erin", NULL, &id2), 200);
        ck_assert_str_ne(id1, id2);
        free(id1);
        free(id2);
    }
}
END_TEST

START_TEST(test_login_bad_nicknames)
{
    static const char *bad[] = {
        "{\"nickname\":\"\"}",
        "{\"nickname\":\" alice\"}",
        "{\"nickname\":\"alice \"}",
        "{\"nickname\":\"a\\u0001b\"}",
        "{\"nickname\":\"a\\nb\"}",
        "{\"nickname\":\"a\\u007fb\"}",
        "{\"nickname\":42}",
        "{\"avatar\":\"x\"}",
        "{\"nickname\":\"x\",\"avatar\":7}",
        "[\"nickname\"]",
        "not json",
        "",
    };
    char nick33[33 * 2 + 1] = "", nick32[32 * 2 + 1] = "", body[256];
    json_t *j = NULL;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int status = login_body(bad[i], &j);

        ck_assert_msg(status == 400, "body %s: status %d, want 400", bad[i], status);
        assert_error_code(j, "bad_request");
        json_decref(j);
    }
    /* Limits count code points: 32 two-byte characters pass, 33 do not. */
    for (int i = 0; i < 33; i++)
        strcat(nick33, "\xc3\xa9");
    memcpy(nick32, nick33, 64);
    nick32[64] = '\0';
    snprintf(body, sizeof(body), "{\"nickname\":\"%s\"}", nick33);
    ck_assert_int_eq(login_body(body, &j), 400);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"nickname\":\"%s\"}", nick32);
    ck_assert_int_eq(login_body(body, &j), 200);
    json_decref(j);
    /* Emoji and inner spaces are fine. */
    ck_assert_int_eq(login_body("{\"nickname\":\"J\xc3\xa9r\xc3\xb4me \xf0\x9f\x98\x80\"}", &j),
                     200);
    json_decref(j);
    /* An avatar over 2048 characters is refused. */
    {
        char *big = malloc(2100 + 64);

        ck_assert_ptr_nonnull(big);
        strcpy(big, "{\"nickname\":\"pic\",\"avatar\":\"");
        memset(big + strlen(big), 'a', 2049);
        strcpy(big + strlen("{\"nickname\":\"pic\",\"avatar\":\"") + 2049, "\"}");
        ck_assert_int_eq(login_body(big, &j), 400);
        json_decref(j);
        free(big);
    }
}
END_TEST

START_TEST(test_login_conflict_online)
{
    char *token = NULL;
    json_t *j = NULL;
    struct tc *t;
    int status = 0;

    ck_assert_int_eq(h_login(&cl, 0, "Bob", &token, NULL), 200);
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(login_body("{\"nickname\":\"Bob\"}", &j), 409);
    assert_error_code(j, "conflict");
    json_decref(j);
    ck_assert_int_eq(login_body("{\"nickname\":\"bob\"}", &j), 409);
    json_decref(j);
    ck_assert_int_eq(login_body("{\"nickname\":\"BOB\"}", &j), 409);
    json_decref(j);
    ck_assert_int_eq(login_body("{\"nickname\":\"bobby\"}", &j), 200);
    json_decref(j);

    /* Once its holder is gone, the nickname is free again. */
    chat_client_close(t->c, 1000, NULL);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1000);
    tc_free(t);
    for (int i = 0; i < 50 && status != 200; i++) {
        status = login_body("{\"nickname\":\"bob\"}", &j);
        json_decref(j);
        if (status != 200)
            usleep(100000);
    }
    ck_assert_int_eq(status, 200);
    free(token);
}
END_TEST

START_TEST(test_login_conflict_reissued)
{
    char *token = NULL, *token2 = NULL;
    json_t *j = NULL;
    struct tc *t;

    /* Not online yet: the same nickname can be taken again ... */
    ck_assert_int_eq(h_login(&cl, 0, "Zed", &token, NULL), 200);
    ck_assert_int_eq(h_login(&cl, 0, "zed", &token2, NULL), 200);
    /* ... but once the first holder is online, "zed" is held by an online
     * user, whichever login last wrote the nick key. */
    t = tc_connect(cl.base, cl.ws_url[0], token, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(login_body("{\"nickname\":\"ZED\"}", &j), 409);
    json_decref(j);
    tc_free(t);
    free(token);
    free(token2);
}
END_TEST

START_TEST(test_me)
{
    char *token = NULL, *id = NULL, hdr[9000];
    json_t *j = NULL;

    ck_assert_int_eq(h_login(&cl, 0, "meme", &token, &id), 200);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    ck_assert_int_eq(api("GET", "/api/me", hdr, NULL, &j), 200);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "user"), "id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "user"), "name")),
                     "meme");
    json_decref(j);

    ck_assert_int_eq(api("GET", "/api/me", NULL, NULL, &j), 401);
    assert_error_code(j, "unauthorized");
    json_decref(j);
    ck_assert_int_eq(api("GET", "/api/me", "Authorization: Bearer nonsense\r\n", NULL, &j), 401);
    json_decref(j);
    /* Tampered signature. */
    token[strlen(token) - 2] = token[strlen(token) - 2] == 'A' ? 'B' : 'A';
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    ck_assert_int_eq(api("GET", "/api/me", hdr, NULL, &j), 401);
    json_decref(j);
    free(token);
    free(id);
}
END_TEST

START_TEST(test_not_found)
{
    json_t *j = NULL;

    ck_assert_int_eq(api("GET", "/api/nothing-here", NULL, NULL, &j), 404);
    assert_error_code(j, "not_found");
    json_decref(j);
}
END_TEST

START_TEST(test_bad_http_version)
{
    static const char req[] = "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n";
    char *resp = NULL;

    ck_assert_int_eq(h_raw(&cl, 0, req, sizeof(req) - 1, &resp), 400);
    free(resp);
    ck_assert_int_eq(h_raw(&cl, 0, "garbage\r\n\r\n", 11, &resp), 400);
    free(resp);
}
END_TEST

START_TEST(test_header_too_large)
{
    size_t n = 20 * 1024;
    char *req = malloc(n + 128), *resp = NULL;
    json_t *j;
    size_t len;

    ck_assert_ptr_nonnull(req);
    len = (size_t)sprintf(req, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + len, 'a', n);
    len += n;
    memcpy(req + len, "\r\n\r\n", 4);
    len += 4;
    ck_assert_int_eq(h_raw(&cl, 0, req, len, &resp), 431);
    j = h_resp_json(resp);
    assert_error_code(j, "too_large");
    json_decref(j);
    free(resp);
    free(req);
}
END_TEST

START_TEST(test_body_too_large)
{
    size_t n = 70 * 1024;
    char *req = malloc(n + 256), *resp = NULL;
    size_t len;
    int status;

    ck_assert_ptr_nonnull(req);
    len =
        (size_t)sprintf(req,
                        "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n{\"nickname\":\"",
                        n);
    memset(req + len, 'a', n - 15);
    len += n - 15;
    memcpy(req + len, "\"}", 2);
    len += 2;
    status = h_raw(&cl, 0, req, len, &resp);
    ck_assert_msg(status == 413, "status %d, want 413", status);
    free(resp);
    free(req);
}
END_TEST

START_TEST(test_header_names_case_insensitive)
{
    char *token = NULL, req[9500], *resp = NULL;
    int n;

    ck_assert_int_eq(h_login(&cl, 0, "casey", &token, NULL), 200);
    n = snprintf(req, sizeof(req),
                 "GET /api/me HTTP/1.1\r\nhost: x\r\nAUTHORIZATION: Bearer %s\r\n\r\n", token);
    ck_assert_int_eq(h_raw(&cl, 0, req, (size_t)n, &resp), 200);
    free(resp);
    free(token);
}
END_TEST

static void assert_content_type(const char *resp, const char *type);

START_TEST(test_rooms)
{
    json_t *j = NULL, *room;
    size_t i;
    int found = 0;

    ck_assert_int_eq(api("GET", "/api/rooms", NULL, NULL, &j), 200);
    ck_assert(json_is_array(json_object_get(j, "rooms")));
    json_array_foreach(json_object_get(j, "rooms"), i, room)
    {
        const char *name = json_string_value(json_object_get(room, "name"));

        ck_assert_ptr_nonnull(name);
        ck_assert(json_is_string(json_object_get(room, "topic")));
        ck_assert(json_is_integer(json_object_get(room, "members")));
        found += !strcmp(name, "general") || !strcmp(name, "random") || !strcmp(name, "tech");
    }
    ck_assert_int_eq(found, 3);
    json_decref(j);
}
END_TEST

START_TEST(test_metrics)
{
    char *resp = NULL;
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

    ck_assert_int_eq(h_raw(&cl, 0, req, sizeof(req) - 1, &resp), 200);
    assert_content_type(resp, "text/plain");
    ck_assert_ptr_nonnull(strstr(resp, "# TYPE "));
    free(resp);
}
END_TEST

START_TEST(test_http10)
{
    static const char req[] = "GET /healthz HTTP/1.0\r\n\r\n";
    char *resp = NULL;
    json_t *j;

    ck_assert_int_eq(h_raw(&cl, 0, req, sizeof(req) - 1, &resp), 200);
    j = h_resp_json(resp);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    free(resp);
}
END_TEST

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* GET path at gateway i over a raw socket; status, and *resp. */
static int raw_get(int i, const char *path, char **resp)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);

    return h_raw(&cl, i, req, (size_t)n, resp);
}

static bool has_header(const char *resp, const char *name_colon)
{
    const char *end = strstr(resp, "\r\n\r\n");

    for (const char *p = strstr(resp, "\r\n"); p && p < end; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name_colon, strlen(name_colon)) == 0)
            return true;
    }
    return false;
}

static bool ci_contains(const char *hay, const char *needle)
{
    for (const char *p = hay; *p; p++) {
        if (strncasecmp(p, needle, strlen(needle)) == 0)
            return true;
    }
    return false;
}

static bool has_content_type(const char *resp, const char *type)
{
    char want[128];

    snprintf(want, sizeof(want), "\r\ncontent-type: %s", type);
    return ci_contains(resp, want);
}

static void assert_content_type(const char *resp, const char *type)
{
    ck_assert_msg(has_content_type(resp, type), "want Content-Type %s in: %.400s", type, resp);
}

START_TEST(test_static_files)
{
    char web[300], sub[320], args_dir[300], *resp = NULL;
    const char *args[] = {"--static-dir", args_dir, NULL};
    int i, status;

    snprintf(web, sizeof(web), "%s/web", cl.dir);
    snprintf(sub, sizeof(sub), "%s/sub", web);
    ck_assert_int_eq(mkdir(web, 0755), 0);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    write_file(web, "index.html", "<!doctype html><title>chat</title>");
    write_file(web, "app.js", "export const x = 1;");
    write_file(web, "style.css", "body { color: red }");
    write_file(sub, "inner.txt", "inner");
    snprintf(args_dir, sizeof(args_dir), "%s", web);
    i = h_cluster_add_gateway(&cl, args);
    ck_assert_int_eq(i, 1);

    ck_assert_int_eq(raw_get(i, "/", &resp), 200);
    assert_content_type(resp, "text/html");
    ck_assert_ptr_nonnull(strstr(resp, "<title>chat</title>"));
    ck_assert(has_header(resp, "ETag:") || has_header(resp, "Last-Modified:"));
    free(resp);
    ck_assert_int_eq(raw_get(i, "/app.js", &resp), 200);
    ck_assert_msg(has_content_type(resp, "application/javascript") ||
                      has_content_type(resp, "text/javascript"),
                  "app.js type: %.300s", resp);
    free(resp);
    ck_assert_int_eq(raw_get(i, "/style.css", &resp), 200);
    assert_content_type(resp, "text/css");
    free(resp);
    ck_assert_int_eq(raw_get(i, "/nope.js", &resp), 404);
    free(resp);
    /* No directory listing. */
    status = raw_get(i, "/sub/", &resp);
    ck_assert_msg(status == 404 || status == 403, "/sub/: %d", status);
    ck_assert_ptr_null(strstr(resp, "inner.txt"));
    free(resp);
    /* No path traversal, plain or percent-encoded. */
    static const char *escapes[] = {"/../../../../../../etc/passwd",
                                    "/sub/../../../../../etc/passwd",
                                    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                                    "/..%2f..%2f..%2f..%2fetc%2fpasswd", "//etc/passwd"};
    for (size_t k = 0; k < sizeof(escapes) / sizeof(escapes[0]); k++) {
        status = raw_get(i, escapes[k], &resp);
        ck_assert_msg(status != 200 && status > 0 && !strstr(resp, "root:"), "%s: %d", escapes[k],
                      status);
        free(resp);
    }
}
END_TEST

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long len;
    bool found;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)len, f), len);
    fclose(f);
    found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

START_TEST(test_tokens_not_logged)
{
    char *token = NULL, url[9000], hdr[9000], *body = NULL;
    const char *sig;
    struct tc *t;
    json_t *j = NULL;
    int status;

    ck_assert_int_eq(h_login(&cl, 0, "secretive", &token, NULL), 200);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[0], token);
    t = tc_connect(cl.base, url, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    tc_free(t);
    snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", token);
    ck_assert_int_eq(api("GET", "/api/me", hdr, NULL, &j), 200);
    json_decref(j);
    snprintf(url, sizeof(url), "%s?token=%sXX", cl.ws_url[0], token);
    ck_assert_ptr_null(tc_connect(cl.base, url, NULL, NULL, &status));
    ck_assert_int_eq(status, 401);
    status = chat_http_request(cl.http_url[0], "GET", "/api/me",
                               "Authorization: Bearer not-a-real-token-XYZZY\r\n", NULL, 0, &body,
                               H_TIMEOUT_MS);
    ck_assert_int_eq(status, 401);
    free(body);
    h_loop_for(cl.base, 200);
    /* Neither the whole token nor its signature, at debug level. */
    sig = strrchr(token, '.') + 1;
    ck_assert(!file_contains(cl.gw[0].log_path, sig));
    ck_assert(!file_contains(cl.gw[0].log_path, "XYZZY"));
    free(token);
}
END_TEST

/* The first line of the log at path whose "msg" is msg and whose "path" (when
 * given) is path; every line must be a JSON object.  New reference or NULL. */
static json_t *json_log_find(const char *path_name, const char *msg, const char *path)
{
    FILE *f = fopen(path_name, "r");
    char line[8192];
    json_t *found = NULL;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        json_t *o = json_loads(line, 0, NULL);
        ck_assert_msg(json_is_object(o), "log line is not a JSON object: %s", line);
        const char *m = json_string_value(json_object_get(o, "msg"));
        const char *p = json_string_value(json_object_get(o, "path"));
        if (!found && m && strcmp(m, msg) == 0 && (!path || (p && strcmp(p, path) == 0)))
            found = json_incref(o);
        json_decref(o);
    }
    fclose(f);
    return found;
}

START_TEST(test_access_log_json)
{
    static const char *const args[] = {"--log-format=json", NULL};
    char *token = NULL, url[9000];
    json_t *line, *j;
    struct tc *t;
    int gw = h_cluster_add_gateway(&cl, args);

    ck_assert_int_eq(gw, 1);
    ck_assert_int_eq(h_login(&cl, gw, "logged", &token, NULL), 200);
    snprintf(url, sizeof(url), "%s?token=%s", cl.ws_url[gw], token);
    t = tc_connect(cl.base, url, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(t);
    json_decref(tc_wait_type(t, "welcome", H_TIMEOUT_MS));
    ck_assert_int_eq(tc_send(t, "{\"type\":\"ping\",\"id\":\"p1\"}"), 0);
    json_decref(tc_wait_type(t, "pong", H_TIMEOUT_MS));
    ck_assert_int_eq(chat_client_close(t->c, 1000, "bye"), 0);
    ck_assert_int_eq(tc_wait_closed(t, H_TIMEOUT_MS), 1000);
    tc_free(t);
    h_loop_for(cl.base, 300);

    line = json_log_find(cl.gw[gw].log_path, "http_access", "/api/login");
    ck_assert_msg(line != NULL, "no http_access line for /api/login");
    ck_assert_str_eq(json_string_value(json_object_get(line, "method")), "POST");
    ck_assert_int_eq(json_integer_value(json_object_get(line, "status")), 200);
    ck_assert_int_gt(json_integer_value(json_object_get(line, "bytes")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(line, "level")), "info");
    json_decref(line);

    line = json_log_find(cl.gw[gw].log_path, "session_closed", NULL);
    ck_assert_msg(line != NULL, "no session_closed line");
    ck_assert(json_is_integer(json_object_get(line, "duration_ms")));
    ck_assert_int_ge(json_integer_value(json_object_get(line, "duration_ms")), 0);
    /* the ping request and the close */
    ck_assert_int_ge(json_integer_value(json_object_get(line, "frames_in")), 2);
    ck_assert_int_ge(json_integer_value(json_object_get(line, "bytes_in")),
                     (json_int_t)strlen("{\"type\":\"ping\",\"id\":\"p1\"}"));
    /* welcome and pong at least */
    ck_assert_int_ge(json_integer_value(json_object_get(line, "frames_out")), 2);
    ck_assert_int_gt(json_integer_value(json_object_get(line, "bytes_out")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "close_received")), 1000);
    ck_assert_int_eq(json_integer_value(json_object_get(line, "close_sent")), 1000);
    ck_assert(json_is_string(json_object_get(line, "user")));
    json_decref(line);

    /* the upgrade is not an http_access line; nothing logged has the token */
    j = json_log_find(cl.gw[gw].log_path, "http_access", "/ws");
    ck_assert_ptr_null(j);
    ck_assert(!file_contains(cl.gw[gw].log_path, strrchr(token, '.') + 1));
    free(token);
}
END_TEST

TCase *http_tcase(void)
{
    TCase *tc = tcase_create("http");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_healthz);
    tcase_add_test(tc, test_login_ok);
    tcase_add_test(tc, test_login_bad_nicknames);
    tcase_add_test(tc, test_login_conflict_online);
    tcase_add_test(tc, test_login_conflict_reissued);
    tcase_add_test(tc, test_me);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_bad_http_version);
    tcase_add_test(tc, test_header_too_large);
    tcase_add_test(tc, test_body_too_large);
    tcase_add_test(tc, test_header_names_case_insensitive);
    tcase_add_test(tc, test_rooms);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_http10);
    tcase_add_test(tc, test_static_files);
    tcase_add_test(tc, test_tokens_not_logged);
    tcase_add_test(tc, test_access_log_json);
    return tc;
}
