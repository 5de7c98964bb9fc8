#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "tests.h"
#include "token.h"

static void parse_ok(const char *json, struct chat_request *req)
{
    struct chat_parse_error err;
    int rc = chat_request_parse(json, strlen(json), req, &err);
    ck_assert_msg(rc == 0, "%s -> %s", json, rc == 0 ? "" : err.message);
    ck_assert_ptr_nonnull(req->root);
}

/* Expects a refusal with `code`; returns the error for more checks. */
static struct chat_parse_error parse_bad(const char *json, enum chat_err code)
{
    struct chat_request req;
    struct chat_parse_error err;
    int rc = chat_request_parse(json, strlen(json), &req, &err);
    ck_assert_msg(rc == -1, "%.200s was accepted", json);
    ck_assert_msg(err.code == code, "%.200s -> %s (%s)", json, chat_err_code(err.code),
                  err.message);
    ck_assert_ptr_nonnull(err.message);
    ck_assert_str_ne(err.message, "");
    ck_assert_ptr_null(req.root);
    return err;
}

/* "{<pre>"<unit x n>"<post>}" built with jansson-free string pasting. */
static char *repeat_json(const char *pre, const char *unit, size_t n, const char *post)
{
    size_t ul = strlen(unit);
    size_t cap = strlen(pre) + ul * n + strlen(post) + 8;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t o = (size_t)snprintf(s, cap, "{%s\"", pre);
    for (size_t i = 0; i < n; i++, o += ul)
        memcpy(s + o, unit, ul);
    snprintf(s + o, cap - o, "\"%s}", post);
    return s;
}

START_TEST(test_utf8_count)
{
    ck_assert_int_eq(chat_utf8_count("", 0), 0);
    ck_assert_int_eq(chat_utf8_count("abc", 3), 3);
    ck_assert_int_eq(chat_utf8_count("é", 2), 1);
    ck_assert_int_eq(chat_utf8_count("€", 3), 1);
    ck_assert_int_eq(chat_utf8_count("😀", 4), 1);
    ck_assert_int_eq(chat_utf8_count("a\0b", 3), 3);
    ck_assert_int_eq(chat_utf8_count("\xf4\x8f\xbf\xbf", 4), 1);  /* U+10FFFF */
    ck_assert_int_eq(chat_utf8_count("\xef\xbf\xbf", 3), 1);      /* U+FFFF */
    ck_assert_int_eq(chat_utf8_count("\xc0\xaf", 2), -1);         /* overlong / */
    ck_assert_int_eq(chat_utf8_count("\xc1\xbf", 2), -1);         /* overlong */
    ck_assert_int_eq(chat_utf8_count("\xe0\x80\xaf", 3), -1);     /* overlong */
    ck_assert_int_eq(chat_utf8_count("\xe0\x9f\xbf", 3), -1);     /* overlong */
    ck_assert_int_eq(chat_utf8_count("\xf0\x80\x80\xaf", 4), -1); /* overlong */
    ck_assert_int_eq(chat_utf8_count("\xf0\x8f\xbf\xbf", 4), -1); /* overlong */
    ck_assert_int_eq(chat_utf8_count("\xed\xa0\x80", 3), -1);     /* U+D800 */
    ck_assert_int_eq(chat_utf8_count("\xed\xbf\xbf", 3), -1);     /* U+DFFF */
    ck_assert_int_eq(chat_utf8_count("\xf4\x90\x80\x80", 4), -1); /* U+110000 */
    ck_assert_int_eq(chat_utf8_count("\xf5\x80\x80\x80", 4), -1);
    ck_assert_int_eq(chat_utf8_count("\xff", 1), -1);
    ck_assert_int_eq(chat_utf8_count("\x80", 1), -1);
    ck_assert_int_eq(chat_utf8_count("\xe2\x82", 2), -1);     /* truncated */
    ck_assert_int_eq(chat_utf8_count("\xe2\x82\xac", 2), -1); /* cut by len */
    ck_assert_int_eq(chat_utf8_count("\xe2\x28\xa1", 3), -1); /* bad continuation */
}
END_TEST

START_TEST(test_user_id)
{
    ck_assert(chat_valid_user_id("a"));
    ck_assert(chat_valid_user_id("A-z_09"));
    ck_assert(chat_valid_user_id("-"));
    ck_assert(chat_valid_user_id(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 64 */
    ck_assert(!chat_valid_user_id(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")); /* 65 */
    ck_assert(!chat_valid_user_id(""));
    ck_assert(!chat_valid_user_id(NULL));
    ck_assert(!chat_valid_user_id("a b"));
    ck_assert(!chat_valid_user_id("a:b"));
    ck_assert(!chat_valid_user_id("a}b"));
    ck_assert(!chat_valid_user_id("a.b"));
    ck_assert(!chat_valid_user_id("é"));
}
END_TEST

START_TEST(test_room_name)
{
    ck_assert(chat_valid_room_name("general"));
    ck_assert(chat_valid_room_name("0day"));
    ck_assert(chat_valid_room_name("a-b_c"));
    ck_assert(chat_valid_room_name("a"));
    ck_assert(chat_valid_room_name("abcdefghijklmnopqrstuvwxyz012345")); /* 32 */
    ck_assert(!chat_valid_room_name("abcdefghijklmnopqrstuvwxyz0123456"));
    ck_assert(!chat_valid_room_name(""));
    ck_assert(!chat_valid_room_name(NULL));
    ck_assert(!chat_valid_room_name("-a"));
    ck_assert(!chat_valid_room_name("_a"));
    ck_assert(!chat_valid_room_name("General"));
    ck_assert(!chat_valid_room_name("a b"));
    ck_assert(!chat_valid_room_name("a}b"));
    ck_assert(!chat_valid_room_name("a:b"));
    ck_assert(!chat_valid_room_name("ünï"));
}
END_TEST

START_TEST(test_nickname)
{
    ck_assert(chat_valid_nickname("Alice"));
    ck_assert(chat_valid_nickname("a"));
    ck_assert(chat_valid_nickname("Zoë Ω 😀"));
    ck_assert(chat_valid_nickname("a b"));
    ck_assert(chat_valid_nickname("abcdefghijklmnopqrstuvwxyzabcdef"));   /* 32 */
    ck_assert(!chat_valid_nickname("abcdefghijklmnopqrstuvwxyzabcdefg")); /* 33 */
    ck_assert(chat_valid_nickname("😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"
                                  "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀")); /* 32 emoji */
    ck_assert(!chat_valid_nickname("😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"
                                   "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"));
    ck_assert(!chat_valid_nickname(""));
    ck_assert(!chat_valid_nickname(NULL));
    ck_assert(!chat_valid_nickname(" a"));
    ck_assert(!chat_valid_nickname("a "));
    ck_assert(!chat_valid_nickname(" "));
    ck_assert(!chat_valid_nickname("a\xc2\xa0")); /* trailing NBSP */
    ck_assert(!chat_valid_nickname("\xe3\x80\x80"
                                   "a")); /* leading ideographic space */
    ck_assert(!chat_valid_nickname("a\tb"));
    ck_assert(!chat_valid_nickname("a\nb"));
    ck_assert(!chat_valid_nickname("a\x7f"));
    ck_assert(!chat_valid_nickname("a\xc2\x85")); /* C1 NEL */
    ck_assert(!chat_valid_nickname("a\xc0\xaf")); /* invalid UTF-8 */
}
END_TEST

START_TEST(test_avatar_and_request_id)
{
    ck_assert(chat_valid_avatar(""));
    ck_assert(chat_valid_avatar("https://example.com/a.png"));
    ck_assert(chat_valid_avatar("🦊"));
    ck_assert(!chat_valid_avatar(NULL));
    ck_assert(!chat_valid_avatar("a\nb"));
    ck_assert(!chat_valid_avatar("\xff"));
    char big[2050 * 2 + 1];
    memset(big, 0, sizeof(big));
    for (int i = 0; i < 2048; i++)
        memcpy(big + 2 * i, "é", 2);
    ck_assert(chat_valid_avatar(big));
    memcpy(big + 2 * 2048, "é", 2);
    ck_assert(!chat_valid_avatar(big));

    ck_assert(chat_valid_request_id("c7"));
    ck_assert(chat_valid_request_id("😀"));
    ck_assert(chat_valid_request_id("a b"));
    ck_assert(!chat_valid_request_id(""));
    ck_assert(!chat_valid_request_id(NULL));
    ck_assert(!chat_valid_request_id("a\x01"));
    ck_assert(
        chat_valid_request_id("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    ck_assert(!chat_valid_request_id(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}
END_TEST

START_TEST(test_image_url)
{
#define IMG(s) chat_valid_image_url(s, strlen(s))
    ck_assert(IMG("data:image/png;base64,iVBORw0KGgo="));
    ck_assert(IMG("data:image/jpeg;base64,/9j/4AAQ"));
    ck_assert(IMG("data:image/gif;base64,R0lGODlh"));
    ck_assert(IMG("data:image/webp;base64,UklGRg=="));
    ck_assert(IMG("data:image/png;base64,abc")); /* unpadded but decodable */
    ck_assert(IMG("DATA:IMAGE/PNG;BASE64,abcd"));
    ck_assert(!IMG("data:image/png;base64,"));    /* empty payload */
    ck_assert(!IMG("data:image/png;base64,a"));   /* not decodable */
    ck_assert(!IMG("data:image/png;base64,ab=")); /* bad padding */
    ck_assert(!IMG("data:image/png;base64,a==="));
    ck_assert(!IMG("data:image/png;base64,ab==cd"));
    ck_assert(!IMG("data:image/png;base64,ab cd"));
    ck_assert(!IMG("data:image/svg+xml;base64,PHN2Zz4="));
    ck_assert(!IMG("data:image/bmp;base64,Qk0="));
    ck_assert(!IMG("data:image/jpg;base64,/9j/"));
    ck_assert(!IMG("data:text/html;base64,PGgxPg=="));
    ck_assert(!IMG("data:image/png,rawdata"));
    ck_assert(!IMG("data:image/png;charset=utf-8;base64,abcd"));
    ck_assert(!IMG("https://example.com/x.png"));
    ck_assert(!IMG("javascript:alert(1)"));
    ck_assert(!IMG(""));
    ck_assert(!chat_valid_image_url(NULL, 0));
    ck_assert(!chat_valid_image_url("data:image/png;base64,ab\0d", 26));
#undef IMG
}
END_TEST

START_TEST(test_nick_fold)
{
    char out[CHAT_NICK_MAX_BYTES + 1];
    ck_assert_int_eq(chat_nick_fold("Alice", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "alice");
    ck_assert_int_eq(chat_nick_fold("ZOË ÀÉÎÕÜ Ÿ", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "zoë àéîõü ÿ");
    ck_assert_int_eq(chat_nick_fold("×÷ß", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "×÷ß");
    ck_assert_int_eq(chat_nick_fold("ΣΟΦΙΑ Άλφα ΏΎ", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "σοφια άλφα ώύ");
    ck_assert_int_eq(chat_nick_fold("σοφίας", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "σοφίασ"); /* final sigma folds like sigma */
    ck_assert_int_eq(chat_nick_fold("ЁЖИК Ђ", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "ёжик ђ");
    ck_assert_int_eq(chat_nick_fold("ŁÓDŹ ĞÜŞ", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "łódź ğüş");
    ck_assert_int_eq(chat_nick_fold("İ", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "i");
    ck_assert_int_eq(chat_nick_fold("日本 😀", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "日本 😀");
    ck_assert_int_eq(chat_nick_fold("", out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");

    char a[CHAT_NICK_MAX_BYTES + 1], b[CHAT_NICK_MAX_BYTES + 1];
    ck_assert_int_eq(chat_nick_fold("ВаСя", a, sizeof(a)), 0);
    ck_assert_int_eq(chat_nick_fold("вАсЯ", b, sizeof(b)), 0);
    ck_assert_str_eq(a, b);

    /* too small a buffer, invalid UTF-8 */
    char tiny[4];
    ck_assert_int_eq(chat_nick_fold("ABCD", tiny, sizeof(tiny)), -1);
    ck_assert_int_eq(chat_nick_fold("ABC", tiny, sizeof(tiny)), 0);
    ck_assert_str_eq(tiny, "abc");
    ck_assert_int_eq(chat_nick_fold("a\xc0\xaf", out, sizeof(out)), -1);
    ck_assert_int_eq(chat_nick_fold(NULL, out, sizeof(out)), -1);
}
END_TEST

START_TEST(test_err_codes)
{
    ck_assert_str_eq(chat_err_code(CHAT_ERR_BAD_REQUEST), "bad_request");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_UNAUTHORIZED), "unauthorized");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_FORBIDDEN), "forbidden");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_NOT_FOUND), "not_found");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_NOT_MEMBER), "not_member");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_CONFLICT), "conflict");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_TOO_LARGE), "too_large");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_RATE_LIMITED), "rate_limited");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_UNAVAILABLE), "unavailable");
    ck_assert_str_eq(chat_err_code(CHAT_ERR_INTERNAL), "internal");
    ck_assert_str_eq(chat_err_code((enum chat_err)99), "internal");
}
END_TEST

START_TEST(test_malformed)
{
    parse_bad("", CHAT_ERR_BAD_REQUEST);
    parse_bad("{", CHAT_ERR_BAD_REQUEST);
    parse_bad("nope", CHAT_ERR_BAD_REQUEST);
    parse_bad("[]", CHAT_ERR_BAD_REQUEST);
    parse_bad("\"ping\"", CHAT_ERR_BAD_REQUEST);
    parse_bad("42", CHAT_ERR_BAD_REQUEST);
    parse_bad("{} {}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":null}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"ping\",\"type\":\"rooms\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"ping\\u0000\"}", CHAT_ERR_BAD_REQUEST);
    struct chat_parse_error e =
        parse_bad("{\"type\":\"dance\",\"id\":\"r1\"}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.message, "unknown type");
    ck_assert_str_eq(e.id, "r1");
    e = parse_bad("{\"type\":\"PING\"}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.message, "unknown type");
    ck_assert_str_eq(e.id, "");

    /* not NUL-terminated input */
    const char buf[] = {'{', '}', 'x'};
    struct chat_request req;
    ck_assert_int_eq(chat_request_parse(buf, 2, &req, &e), -1);
    ck_assert_int_eq(chat_request_parse("{\"type\":\"ping\"}garbage", 15, &req, &e), 0);
    chat_request_deinit(&req);
    chat_request_deinit(&req);

    /* deep nesting is refused, not a crash */
    char *deep = malloc(200002);
    ck_assert_ptr_nonnull(deep);
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    deep[200000] = '\0';
    parse_bad(deep, CHAT_ERR_BAD_REQUEST);
    free(deep);
}
END_TEST

START_TEST(test_ids)
{
    struct chat_request r;
    parse_ok("{\"type\":\"ping\",\"id\":\"c7\"}", &r);
    ck_assert_str_eq(r.id, "c7");
    ck_assert_int_eq(r.type, CHAT_REQ_PING);
    chat_request_deinit(&r);

    /* a present but invalid id refuses the request, answered without an id */
    const char *refuse[] = {
        "{\"type\":\"ping\",\"id\":\"\"}",
        "{\"type\":\"ping\",\"id\":7}",
        "{\"type\":\"ping\",\"id\":null}",
        "{\"type\":\"ping\",\"id\":[\"x\"]}",
        "{\"type\":\"ping\",\"id\":\"a\\nb\"}",
        "{\"type\":\"ping\",\"id\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"type\":\"ping\",\"id\":\"a\\u0000b\"}",
        "{\"type\":\"message\",\"room\":\"general\",\"kind\":\"text\",\"body\":\"x\","
        "\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
    };
    for (size_t i = 0; i < sizeof(refuse) / sizeof(refuse[0]); i++) {
        struct chat_parse_error pe = parse_bad(refuse[i], CHAT_ERR_BAD_REQUEST);
        ck_assert_str_eq(pe.id, "");
        ck_assert_str_eq(pe.message, "id must be a string of 1-64 characters");
    }
    /* 64 code points of 4 bytes each: the largest id */
    char *big = repeat_json("\"type\":\"ping\",\"id\":", "😀", 64, "");
    parse_ok(big, &r);
    ck_assert_uint_eq(strlen(r.id), 256);
    chat_request_deinit(&r);
    free(big);
    big = repeat_json("\"type\":\"join\",\"id\":", "😀", 64, ",\"room\":\"BAD\"");
    struct chat_parse_error e = parse_bad(big, CHAT_ERR_BAD_REQUEST);
    ck_assert_uint_eq(strlen(e.id), 256);
    free(big);
    big = repeat_json("\"type\":\"join\",\"id\":", "😀", 65, ",\"room\":\"BAD\"");
    e = parse_bad(big, CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "");
    free(big);

    /* an error carries the id; an invalid id is not echoed */
    e = parse_bad("{\"type\":\"join\",\"id\":\"j1\"}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "j1");
    ck_assert_str_eq(e.message, "missing room");
    e = parse_bad("{\"id\":\"j2\"}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "j2");
    e = parse_bad("{\"type\":\"join\",\"id\":\"\\u0001\"}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "");

    /* \u0000 in a field: refused, and the error carries the valid id */
    e = parse_bad("{\"type\":\"join\",\"id\":\"n1\",\"room\":\"gen\\u0000eral\"}",
                  CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "n1");
    e = parse_bad("{\"type\":\"message\",\"id\":\"n2\",\"room\":\"general\",\"kind\":\"text\","
                  "\"body\":\"a\\u0000b\"}",
                  CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "n2");
    e = parse_bad("{\"type\":\"ping\\u0000x\",\"id\":\"n3\"}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(e.id, "n3");
}
END_TEST

START_TEST(test_join_leave_typing)
{
    struct chat_request r;
    parse_ok("{\"type\":\"join\",\"room\":\"general\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_JOIN);
    ck_assert_str_eq(r.room, "general");
    ck_assert(!r.has_since);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"join\",\"room\":\"general\",\"since\":0}", &r);
    ck_assert(r.has_since);
    ck_assert_int_eq(r.since, 0);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"join\",\"room\":\"general\",\"since\":9007199254740993}", &r);
    ck_assert_int_eq(r.since, 9007199254740993LL);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"join\",\"room\":\"general\",\"since\":null,\"extra\":[1,2]}", &r);
    ck_assert(!r.has_since);
    chat_request_deinit(&r);

    parse_bad("{\"type\":\"join\",\"room\":\"general\",\"since\":-1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":\"general\",\"since\":1.0}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":\"general\",\"since\":\"5\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":\"general\",\"since\":true}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":5}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":\"\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":\"Gen\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"join\",\"room\":\"abcdefghijklmnopqrstuvwxyz0123456\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_ok("{\"type\":\"join\",\"room\":\"abcdefghijklmnopqrstuvwxyz012345\"}", &r);
    chat_request_deinit(&r);

    parse_ok("{\"type\":\"leave\",\"room\":\"tech\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_LEAVE);
    ck_assert_str_eq(r.room, "tech");
    chat_request_deinit(&r);
    parse_bad("{\"type\":\"leave\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"leave\",\"room\":\"-x\"}", CHAT_ERR_BAD_REQUEST);

    parse_ok("{\"type\":\"typing\",\"room\":\"random\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_TYPING);
    ck_assert_str_eq(r.room, "random");
    chat_request_deinit(&r);
    parse_bad("{\"type\":\"typing\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"typing\",\"room\":[]}", CHAT_ERR_BAD_REQUEST);
}
END_TEST

START_TEST(test_message)
{
    struct chat_request r;
    parse_ok("{\"type\":\"message\",\"room\":\"general\",\"kind\":\"text\",\"body\":\"hi\","
             "\"id\":\"c7\"}",
             &r);
    ck_assert_int_eq(r.type, CHAT_REQ_MESSAGE);
    ck_assert_str_eq(r.room, "general");
    ck_assert_int_eq(r.kind, CHAT_KIND_TEXT);
    ck_assert_str_eq(r.kind_name, "text");
    ck_assert_str_eq(r.body, "hi");
    ck_assert_uint_eq(r.body_len, 2);
    ck_assert_str_eq(r.id, "c7");
    ck_assert_ptr_null(r.lang);
    chat_request_deinit(&r);

    /* lang is ignored for text */
    parse_ok("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"text\",\"body\":\"x\","
             "\"lang\":\"c\"}",
             &r);
    ck_assert_ptr_null(r.lang);
    chat_request_deinit(&r);

    parse_ok("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"code\",\"body\":\"int x;\\n\","
             "\"lang\":\"c\"}",
             &r);
    ck_assert_int_eq(r.kind, CHAT_KIND_CODE);
    ck_assert_str_eq(r.lang, "c");
    ck_assert_str_eq(r.body, "int x;\n");
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"code\",\"body\":\"x\"}", &r);
    ck_assert_ptr_null(r.lang);
    chat_request_deinit(&r);

    parse_ok("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"image\","
             "\"body\":\"data:image/png;base64,iVBORw0KGgo=\"}",
             &r);
    ck_assert_int_eq(r.kind, CHAT_KIND_IMAGE);
    chat_request_deinit(&r);

    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"image\","
              "\"body\":\"data:image/svg+xml;base64,PHN2Zz4=\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"image\",\"body\":\"hello\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"image\",\"body\":\"\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"body\":\"hi\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"video\",\"body\":\"hi\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"TEXT\",\"body\":\"hi\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":1,\"body\":\"hi\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"text\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"text\",\"body\":\"\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"text\",\"body\":5}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"text\",\"body\":{}}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"kind\":\"text\",\"body\":\"hi\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"no such\",\"kind\":\"text\",\"body\":\"hi\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"code\",\"body\":\"x\","
              "\"lang\":5}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"message\",\"room\":\"g\",\"kind\":\"code\",\"body\":\"x\","
              "\"lang\":\"c\\n\"}",
              CHAT_ERR_BAD_REQUEST);
}
END_TEST

/* A message of `n` copies of `unit` as body. */
static int body_limit(const char *kind, const char *unit, size_t n, struct chat_parse_error *e)
{
    char pre[128];
    snprintf(pre, sizeof(pre),
             "\"type\":\"message\",\"room\":\"g\",\"kind\":\"%s\",\"body\":", kind);
    char *json = repeat_json(pre, unit, n, "");
    struct chat_request r;
    int rc = chat_request_parse(json, strlen(json), &r, e);
    if (rc == 0) {
        if (!strchr(unit, '\\'))
            ck_assert_uint_eq(r.body_len, strlen(unit) * n);
        else
            ck_assert_uint_eq(r.body_len, 4 * n); /* the escape of one emoji */
        chat_request_deinit(&r);
    }
    free(json);
    return rc;
}

START_TEST(test_body_limits)
{
    struct chat_parse_error e;
    ck_assert_int_eq(body_limit("text", "a", 4000, &e), 0);
    ck_assert_int_eq(body_limit("text", "a", 4001, &e), -1);
    ck_assert_int_eq(e.code, CHAT_ERR_TOO_LARGE);
    /* emoji count as one code point each, not as bytes or UTF-16 units */
    ck_assert_int_eq(body_limit("text", "😀", 4000, &e), 0);
    ck_assert_int_eq(body_limit("text", "😀", 4001, &e), -1);
    ck_assert_int_eq(e.code, CHAT_ERR_TOO_LARGE);
    /* the \u escape of an emoji (a surrogate pair) is one code point too */
    ck_assert_int_eq(body_limit("text", "\\ud83d\\ude00", 4000, &e), 0);
    ck_assert_int_eq(body_limit("text", "\\ud83d\\ude00", 4001, &e), -1);
    ck_assert_int_eq(e.code, CHAT_ERR_TOO_LARGE);
    ck_assert_int_eq(body_limit("code", "é", 20000, &e), 0);
    ck_assert_int_eq(body_limit("code", "é", 20001, &e), -1);
    ck_assert_int_eq(e.code, CHAT_ERR_TOO_LARGE);
    /* images are bounded by --max-message only */
    char *json = malloc(300000);
    ck_assert_ptr_nonnull(json);
    int n = snprintf(json, 300000,
                     "{\"type\":\"private\",\"to\":\"u1\",\"kind\":\"image\","
                     "\"body\":\"data:image/webp;base64,");
    memset(json + n, 'A', 200000);
    strcpy(json + n + 200000, "\"}");
    struct chat_request r;
    ck_assert_int_eq(chat_request_parse(json, strlen(json), &r, &e), 0);
    chat_request_deinit(&r);
    free(json);

    /* lang: 32 code points, 33 is too large */
    json = repeat_json("\"type\":\"message\",\"room\":\"g\",\"kind\":\"code\",\"body\":\"x\","
                       "\"lang\":",
                       "λ", 32, "");
    parse_ok(json, &r);
    chat_request_deinit(&r);
    free(json);
    json = repeat_json("\"type\":\"message\",\"room\":\"g\",\"kind\":\"code\",\"body\":\"x\","
                       "\"lang\":",
                       "λ", 33, "");
    parse_bad(json, CHAT_ERR_TOO_LARGE);
    free(json);
}
END_TEST

START_TEST(test_private)
{
    struct chat_request r;
    parse_ok("{\"type\":\"private\",\"to\":\"u-2\",\"kind\":\"text\",\"body\":\"psst\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_PRIVATE);
    ck_assert_str_eq(r.to, "u-2");
    ck_assert_str_eq(r.body, "psst");
    ck_assert_ptr_null(r.room);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"private\",\"to\":\"u\",\"kind\":\"code\",\"body\":\"x\",\"lang\":\"go\"}",
             &r);
    ck_assert_str_eq(r.lang, "go");
    chat_request_deinit(&r);
    parse_bad("{\"type\":\"private\",\"kind\":\"text\",\"body\":\"psst\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"private\",\"to\":\"a b\",\"kind\":\"text\",\"body\":\"x\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"private\",\"to\":\"a:b\",\"kind\":\"text\",\"body\":\"x\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"private\",\"to\":\"\",\"kind\":\"text\",\"body\":\"x\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"private\",\"to\":\"u\",\"kind\":\"text\"}", CHAT_ERR_BAD_REQUEST);
    char *json =
        repeat_json("\"type\":\"private\",\"to\":\"u\",\"kind\":\"text\",\"body\":", "x", 4001, "");
    parse_bad(json, CHAT_ERR_TOO_LARGE);
    free(json);
}
END_TEST

START_TEST(test_history)
{
    struct chat_request r;
    parse_ok("{\"type\":\"history\",\"room\":\"general\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_HISTORY);
    ck_assert_str_eq(r.room, "general");
    ck_assert_ptr_null(r.with);
    ck_assert_int_eq(r.limit, 50);
    ck_assert(!r.has_before);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"history\",\"with\":\"bob\",\"before\":1,\"limit\":200}", &r);
    ck_assert_str_eq(r.with, "bob");
    ck_assert_ptr_null(r.room);
    ck_assert(r.has_before);
    ck_assert_int_eq(r.before, 1);
    ck_assert_int_eq(r.limit, 200);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"history\",\"room\":\"g\",\"limit\":1}", &r);
    ck_assert_int_eq(r.limit, 1);
    chat_request_deinit(&r);

    parse_bad("{\"type\":\"history\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"with\":\"bob\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"with\":\"b b\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"limit\":0}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"limit\":201}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"limit\":50.5}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"limit\":\"50\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"limit\":99999999999}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"before\":0}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"before\":-5}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"before\":2e3}", CHAT_ERR_BAD_REQUEST);
    parse_ok("{\"type\":\"history\",\"room\":\"g\",\"after\":0,\"limit\":5}", &r);
    ck_assert(r.has_after);
    ck_assert_int_eq(r.after, 0);
    ck_assert_int_eq(r.limit, 5);
    chat_request_deinit(&r);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"after\":-1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"history\",\"room\":\"g\",\"after\":3,\"before\":9}",
              CHAT_ERR_BAD_REQUEST);

    /* rooms: q (prefix), after (a name), limit */
    parse_ok("{\"type\":\"rooms\"}", &r);
    ck_assert_ptr_null(r.q);
    ck_assert_ptr_null(r.after_room);
    ck_assert_int_eq(r.limit, 200);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"rooms\",\"q\":\"te\",\"after\":\"tea\",\"limit\":10}", &r);
    ck_assert_str_eq(r.q, "te");
    ck_assert_str_eq(r.after_room, "tea");
    ck_assert_int_eq(r.limit, 10);
    chat_request_deinit(&r);
    parse_bad("{\"type\":\"rooms\",\"after\":\"BAD NAME\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"rooms\",\"limit\":0}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"rooms\",\"q\":7}", CHAT_ERR_BAD_REQUEST);
}
END_TEST

START_TEST(test_search)
{
    struct chat_request r;
    parse_ok("{\"type\":\"search\",\"q\":\"Hello\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_SEARCH);
    ck_assert_str_eq(r.q, "Hello");
    ck_assert_ptr_null(r.room);
    ck_assert_ptr_null(r.user);
    ck_assert(!r.has_after);
    ck_assert(!r.has_before);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"search\",\"q\":\"x\",\"room\":\"tech\",\"user\":\"u1\",\"after\":0,"
             "\"before\":1700000000000}",
             &r);
    ck_assert_str_eq(r.room, "tech");
    ck_assert_str_eq(r.user, "u1");
    ck_assert(r.has_after);
    ck_assert_int_eq(r.after, 0);
    ck_assert(r.has_before);
    ck_assert_int_eq(r.before, 1700000000000LL);
    chat_request_deinit(&r);

    parse_bad("{\"type\":\"search\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":\"\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":7}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":\"x\",\"room\":\"X\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":\"x\",\"user\":\"a b\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":\"x\",\"after\":-1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":\"x\",\"before\":\"1\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"search\",\"q\":\"x\",\"after\":0.5}", CHAT_ERR_BAD_REQUEST);

    char *json = repeat_json("\"type\":\"search\",\"q\":", "ж", 200, "");
    parse_ok(json, &r);
    chat_request_deinit(&r);
    free(json);
    json = repeat_json("\"type\":\"search\",\"q\":", "ж", 201, "");
    parse_bad(json, CHAT_ERR_TOO_LARGE);
    free(json);
}
END_TEST

START_TEST(test_create_room)
{
    struct chat_request r;
    parse_ok("{\"type\":\"create_room\",\"room\":\"new-room\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_CREATE_ROOM);
    ck_assert_str_eq(r.room, "new-room");
    ck_assert_ptr_null(r.topic);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"create_room\",\"room\":\"r\",\"topic\":\"All about 🐈\"}", &r);
    ck_assert_str_eq(r.topic, "All about 🐈");
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"create_room\",\"room\":\"r\",\"topic\":\"\"}", &r);
    ck_assert_str_eq(r.topic, "");
    chat_request_deinit(&r);

    parse_bad("{\"type\":\"create_room\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"create_room\",\"room\":\"Bad Room\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"create_room\",\"room\":\"r\",\"topic\":1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"create_room\",\"room\":\"r\",\"topic\":\"a\\nb\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"create_room\",\"room\":\"r\",\"topic\":\"a\\u0085b\"}",
              CHAT_ERR_BAD_REQUEST);
    char *json = repeat_json("\"type\":\"create_room\",\"room\":\"r\",\"topic\":", "t", 200, "");
    parse_ok(json, &r);
    chat_request_deinit(&r);
    free(json);
    json = repeat_json("\"type\":\"create_room\",\"room\":\"r\",\"topic\":", "t", 201, "");
    parse_bad(json, CHAT_ERR_TOO_LARGE);
    free(json);
}
END_TEST

START_TEST(test_broadcast_and_bare)
{
    struct chat_request r;
    parse_ok("{\"type\":\"broadcast\",\"body\":\"maintenance at 5\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_BROADCAST);
    ck_assert_str_eq(r.body, "maintenance at 5");
    chat_request_deinit(&r);
    parse_bad("{\"type\":\"broadcast\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"broadcast\",\"body\":\"\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"broadcast\",\"body\":false}", CHAT_ERR_BAD_REQUEST);
    char *json = repeat_json("\"type\":\"broadcast\",\"body\":", "b", 4000, "");
    parse_ok(json, &r);
    chat_request_deinit(&r);
    free(json);
    json = repeat_json("\"type\":\"broadcast\",\"body\":", "b", 4001, "");
    parse_bad(json, CHAT_ERR_TOO_LARGE);
    free(json);

    parse_ok("{\"type\":\"rooms\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_ROOMS);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"users\",\"id\":\"u\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_USERS);
    ck_assert_str_eq(r.id, "u");
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"ping\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_PING);
    ck_assert_ptr_null(r.id);
    chat_request_deinit(&r);
}
END_TEST

/* read, edit, delete, react: one conversation, a seq, and their own field. */
START_TEST(test_marks)
{
    struct chat_request r;

    parse_ok("{\"type\":\"read\",\"room\":\"general\",\"seq\":0}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_READ);
    ck_assert_int_eq(r.seq, 0);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"edit\",\"with\":\"u-1\",\"seq\":999999999999999,\"body\":\"x\"}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_EDIT);
    ck_assert_str_eq(r.with, "u-1");
    ck_assert_str_eq(r.body, "x");
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"delete\",\"room\":\"tech\",\"seq\":3}", &r);
    ck_assert_int_eq(r.type, CHAT_REQ_DELETE);
    chat_request_deinit(&r);
    parse_ok("{\"type\":\"react\",\"room\":\"tech\",\"seq\":3,"
             "\"emoji\":\"\\ud83d\\udc4d\"}",
             &r);
    ck_assert_int_eq(r.type, CHAT_REQ_REACT);
    ck_assert_str_eq(r.emoji, "\xf0\x9f\x91\x8d");
    chat_request_deinit(&r);

    parse_bad("{\"type\":\"read\",\"seq\":1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"read\",\"room\":\"a\",\"with\":\"b\",\"seq\":1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"read\",\"room\":\"a\",\"seq\":-1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"read\",\"room\":\"a\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"delete\",\"room\":\"a\",\"seq\":0}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"delete\",\"room\":\"a\",\"seq\":1000000000000000}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"delete\",\"room\":\"a\",\"seq\":\"1\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"edit\",\"room\":\"a\",\"seq\":1}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"edit\",\"room\":\"a\",\"seq\":1,\"body\":\"\"}", CHAT_ERR_BAD_REQUEST);
    char *big = repeat_json("\"type\":\"edit\",\"room\":\"a\",\"seq\":1,\"body\":", "x", 20001, "");
    parse_bad(big, CHAT_ERR_TOO_LARGE);
    free(big);
    parse_bad("{\"type\":\"react\",\"room\":\"a\",\"seq\":1,\"emoji\":\"\"}", CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"react\",\"room\":\"a\",\"seq\":1,\"emoji\":\"a\\tb\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"react\",\"room\":\"a\",\"seq\":1,\"emoji\":\"12345678901234567\"}",
              CHAT_ERR_BAD_REQUEST);
    parse_bad("{\"type\":\"react\",\"room\":\"a\",\"seq\":1,\"emoji\":7}", CHAT_ERR_BAD_REQUEST);
    ck_assert_str_eq(chat_err_code(CHAT_ERR_LIMIT), "limit");
}
END_TEST

TCase *protocol_tcase(void)
{
    TCase *tc = tcase_create("protocol");
    tcase_add_test(tc, test_utf8_count);
    tcase_add_test(tc, test_user_id);
    tcase_add_test(tc, test_room_name);
    tcase_add_test(tc, test_nickname);
    tcase_add_test(tc, test_avatar_and_request_id);
    tcase_add_test(tc, test_image_url);
    tcase_add_test(tc, test_nick_fold);
    tcase_add_test(tc, test_err_codes);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_ids);
    tcase_add_test(tc, test_join_leave_typing);
    tcase_add_test(tc, test_message);
    tcase_add_test(tc, test_body_limits);
    tcase_add_test(tc, test_private);
    tcase_add_test(tc, test_history);
    tcase_add_test(tc, test_search);
    tcase_add_test(tc, test_create_room);
    tcase_add_test(tc, test_broadcast_and_bare);
    tcase_add_test(tc, test_marks);
    return tc;
}
