/*
 * Unit tests of render.c: what a hostile peer's text looks like on the
 * terminal, and the readable form of each frame type.
 */
#include "cli.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

TCase *cli_render_tcase(void);

/* Runs cli_escape or cli_render_frame into a string (malloc'd). */
static char *escaped(const char *s, size_t len, bool multiline)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    ck_assert_ptr_nonnull(f);
    cli_escape(f, s, len, multiline);
    fclose(f);
    return buf;
}

static char *rendered(const char *json, const char *self_id)
{
    char *buf = NULL;
    size_t size = 0;
    json_t *frame = json_loads(json, 0, NULL);
    FILE *f = open_memstream(&buf, &size);

    ck_assert_ptr_nonnull(frame);
    ck_assert_ptr_nonnull(f);
    cli_render_frame(f, frame, self_id);
    fclose(f);
    json_decref(frame);
    return buf;
}

static char *raw(const char *s)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    ck_assert_ptr_nonnull(f);
    cli_render_raw(f, s, strlen(s));
    fclose(f);
    return buf;
}

#define CHECK_ESCAPE(in, len, multi, want)                                                         \
    do {                                                                                           \
        char *got_ = escaped(in, len, multi);                                                      \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

#define CHECK_RENDER(json, self, want)                                                             \
    do {                                                                                           \
        char *got_ = rendered(json, self);                                                         \
        ck_assert_str_eq(got_, want);                                                              \
        free(got_);                                                                                \
    } while (0)

START_TEST(escape_plain_and_unicode)
{
    CHECK_ESCAPE("hello", 5, false, "hello");
    CHECK_ESCAPE("h\xc3\xa9llo \xf0\x9f\x98\x80", 11, false, "h\xc3\xa9llo \xf0\x9f\x98\x80");
}
END_TEST

START_TEST(escape_controls)
{
    CHECK_ESCAPE("\x1b[31mred\x07", 9, false, "\\x1b[31mred\\x07");
    CHECK_ESCAPE("a\rb\x7f", 4, false, "a\\x0db\\x7f");
    CHECK_ESCAPE("a\nb", 3, false, "a\\x0ab");
    CHECK_ESCAPE("a\nb\tc", 5, true, "a\n    b\tc");
    CHECK_ESCAPE("a\0b", 3, false, "a\\x00b");
    /* C1 CSI (U+009B), RLO (U+202E), line separator (U+2028), BOM */
    CHECK_ESCAPE("\xc2\x9b"
                 "2J",
                 4, false, "\\u{009B}2J");
    CHECK_ESCAPE("x\xe2\x80\xaey", 5, false, "x\\u{202E}y");
    CHECK_ESCAPE("\xe2\x80\xa8", 3, false, "\\u{2028}");
    CHECK_ESCAPE("\xef\xbb\xbf", 3, false, "\\u{FEFF}");
}
END_TEST

START_TEST(escape_invalid_utf8)
{
    CHECK_ESCAPE("\xff", 1, false, "\\xff");
    CHECK_ESCAPE("\xc0\xaf", 2, false, "\\xc0\\xaf");          /* overlong */
    CHECK_ESCAPE("\xed\xa0\x80", 3, false, "\\xed\\xa0\\x80"); /* surrogate */
    CHECK_ESCAPE("\xe2\x82", 2, false, "\\xe2\\x82");          /* truncated */
    CHECK_ESCAPE("\xf4\x90\x80\x80", 4, false, "\\xf4\\x90\\x80\\x80");
}
END_TEST

START_TEST(render_room_message)
{
    CHECK_RENDER("{\"type\":\"message\",\"room\":\"general\",\"seq\":1,\"ts\":0,"
                 "\"from\":{\"id\":\"u1\",\"name\":\"alice\"},\"kind\":\"text\",\"body\":\"hi\"}",
                 NULL, "[00:00:00] (1) #general <alice> hi\n");
    /* a name with an escape sequence, a multi-line body */
    CHECK_RENDER("{\"type\":\"message\",\"room\":\"general\",\"ts\":0,"
                 "\"from\":{\"id\":\"u1\",\"name\":\"\\u001b]0;x\"},\"kind\":\"text\","
                 "\"body\":\"a\\nb\"}",
                 NULL, "[00:00:00] #general <\\x1b]0;x> a\n    b\n");
    CHECK_RENDER("{\"type\":\"message\",\"room\":\"tech\",\"ts\":0,\"from\":{\"id\":\"u1\"},"
                 "\"kind\":\"code\",\"lang\":\"c\",\"body\":\"int x;\"}",
                 NULL, "[00:00:00] #tech <u1> code (c):\n    int x;\n");
    CHECK_RENDER("{\"type\":\"message\",\"room\":\"tech\",\"ts\":0,\"from\":{\"name\":\"a\"},"
                 "\"kind\":\"image\",\"body\":\"data:image/png;base64,AAAA\"}",
                 NULL, "[00:00:00] #tech <a> [image image/png, 26 bytes]\n");
}
END_TEST

/* Edited and deleted messages, and the events that change them. */
START_TEST(render_changes)
{
    CHECK_RENDER("{\"type\":\"message\",\"room\":\"general\",\"seq\":4,\"ts\":0,"
                 "\"from\":{\"id\":\"u1\",\"name\":\"alice\"},\"kind\":\"text\",\"body\":\"hi\","
                 "\"edited\":true,\"edited_ts\":5}",
                 NULL, "[00:00:00] (4) #general <alice> hi (edited)\n");
    CHECK_RENDER("{\"type\":\"message\",\"room\":\"general\",\"seq\":5,\"ts\":0,"
                 "\"from\":{\"id\":\"u1\",\"name\":\"alice\"},\"kind\":\"image\",\"body\":\"\","
                 "\"deleted\":true,\"deleted_ts\":5}",
                 NULL, "[00:00:00] (5) #general <alice> (message deleted)\n");
    CHECK_RENDER("{\"type\":\"edited\",\"room\":\"general\",\"seq\":4,\"body\":\"a\\u001b\","
                 "\"edited_ts\":5}",
                 NULL, "* #general (4) edited: a\\x1b\n");
    CHECK_RENDER("{\"type\":\"deleted\",\"with\":\"u2\",\"seq\":2,\"deleted_ts\":5}", NULL,
                 "* private with u2 (2) deleted\n");
    CHECK_RENDER("{\"type\":\"reaction\",\"room\":\"general\",\"seq\":4,\"emoji\":\"+1\","
                 "\"user\":\"u2\",\"on\":false}",
                 NULL, "* u2 took back +1 on #general (4)\n");
    CHECK_RENDER("{\"type\":\"read\",\"room\":\"general\",\"seq\":4}", NULL, "");
}
END_TEST

START_TEST(render_private)
{
    static const char *msg =
        "{\"type\":\"private\",\"ts\":0,\"from\":{\"id\":\"u1\",\"name\":\"alice\"},"
        "\"to\":{\"id\":\"u2\",\"name\":\"bob\"},\"kind\":\"text\",\"body\":\"hi\"}";

    CHECK_RENDER(msg, "u2", "[00:00:00] (private) <alice> hi\n");
    CHECK_RENDER(msg, "u1", "[00:00:00] (private to bob) <alice> hi\n");
    CHECK_RENDER(msg, NULL, "[00:00:00] (private) <alice> hi\n");
}
END_TEST

START_TEST(render_events)
{
    CHECK_RENDER("{\"type\":\"error\",\"code\":\"not_member\",\"message\":\"join the room first\"}",
                 NULL, "! not_member: join the room first\n");
    CHECK_RENDER("{\"type\":\"ack\",\"id\":\"c1\",\"room\":\"general\",\"seq\":1,\"ts\":1}", NULL,
                 "");
    CHECK_RENDER("{\"type\":\"left\",\"room\":\"tech\"}", NULL, "* left #tech\n");
    CHECK_RENDER("{\"type\":\"users\",\"users\":[{\"id\":\"u1\",\"name\":\"alice\"}]}", NULL,
                 "* online users (1):\n    alice (id u1)\n");
    CHECK_RENDER("{\"type\":\"rooms\",\"rooms\":[{\"name\":\"general\",\"topic\":\"t\","
                 "\"members\":2}]}",
                 NULL, "* rooms (1):\n    #general (2 members) t\n");
    CHECK_RENDER("{\"type\":\"joined\",\"room\":\"general\",\"topic\":\"\",\"members\":"
                 "[{\"id\":\"u1\",\"name\":\"a\"},{\"id\":\"u2\",\"name\":\"b\"}],\"messages\":[]}",
                 NULL, "* now in #general, members: a, b\n");
    CHECK_RENDER("{\"type\":\"history\",\"room\":\"general\",\"messages\":[]}", NULL,
                 "* history of #general: 0 message(s)\n");
    CHECK_RENDER("{\"type\":\"zap\"}", NULL, "? unknown frame type zap\n");
    CHECK_RENDER("{\"nope\":1}", NULL, "? frame without a type\n");
    CHECK_RENDER("[1,2]", NULL, "? frame without a type\n");
}
END_TEST

START_TEST(render_notices)
{
    char *got = rendered("{\"type\":\"presence\",\"room\":\"general\",\"event\":\"join\","
                         "\"user\":{\"id\":\"u2\",\"name\":\"bob\"}}",
                         NULL);

    /* "[HH:MM:SS] " of the current time, then the event */
    ck_assert_uint_eq(strlen(got), 11 + strlen("* bob joined #general\n"));
    ck_assert_str_eq(got + 11, "* bob joined #general\n");
    free(got);
    got = rendered("{\"type\":\"offline\",\"user\":{\"id\":\"u2\",\"name\":\"bob\"}}", NULL);
    ck_assert_str_eq(got + 11, "* bob is offline\n");
    free(got);
    got = rendered("{\"type\":\"presence_batch\",\"online\":[{\"id\":\"u1\",\"name\":\"al\"}],"
                   "\"offline\":[{\"id\":\"u2\",\"name\":\"bob\"}]}",
                   NULL);
    ck_assert_uint_eq(strlen(got),
                      11 + strlen("* al is online\n") + 11 + strlen("* bob is offline\n"));
    ck_assert_str_eq(got + 11 + strlen("* al is online\n") + 11, "* bob is offline\n");
    ck_assert(strncmp(got + 11, "* al is online\n", 15) == 0);
    free(got);
    CHECK_RENDER("{\"type\":\"presence_batch\",\"online\":[],\"offline\":[]}", NULL, "");
    CHECK_RENDER("{\"type\":\"room_created\",\"room\":\"x\",\"topic\":\"t\",\"ts\":0,"
                 "\"by\":{\"id\":\"u1\",\"name\":\"a\"}}",
                 NULL, "[00:00:00] * a created #x: t\n");
    got = rendered("{\"type\":\"room_deleted\",\"room\":\"ops\"}", NULL);
    ck_assert_str_eq(got + 11, "* #ops was deleted by an operator\n");
    free(got);
    got = rendered("{\"type\":\"room_purged\",\"room\":\"ops\",\"seq\":41}", NULL);
    ck_assert_str_eq(got + 11, "* an operator purged the history of #ops up to seq 41\n");
    free(got);
}
END_TEST

START_TEST(raw_is_one_line)
{
    char *got = raw("{\"a\":\n1,\r\t\"b\":2}");

    ck_assert_str_eq(got, "{\"a\": 1,  \"b\":2}\n");
    free(got);
    got = raw("not json \x1b[2J");
    ck_assert_str_eq(got, "not json \\u001b[2J\n");
    free(got);
}
END_TEST

TCase *cli_render_tcase(void)
{
    TCase *tc = tcase_create("cli_render");

    tcase_add_test(tc, escape_plain_and_unicode);
    tcase_add_test(tc, escape_controls);
    tcase_add_test(tc, escape_invalid_utf8);
    tcase_add_test(tc, render_room_message);
    tcase_add_test(tc, render_private);
    tcase_add_test(tc, render_changes);
    tcase_add_test(tc, render_events);
    tcase_add_test(tc, render_notices);
    tcase_add_test(tc, raw_is_one_line);
    return tc;
}
