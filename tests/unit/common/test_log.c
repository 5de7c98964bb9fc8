#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tests.h"

/* Runs chat_log with stderr redirected to a temporary file; returns what was
 * written (static buffer). */
static const char *capture(enum chat_log_level level, const char *what)
{
    static char buf[8192];
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
    chat_log(level, "%s", what);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, tmp);
    buf[n] = '\0';
    fclose(tmp);
    return buf;
}

START_TEST(test_level_parse)
{
    enum chat_log_level l;
    ck_assert_int_eq(chat_log_level_parse("error", &l), 0);
    ck_assert_int_eq(l, CHAT_LOG_ERROR);
    ck_assert_int_eq(chat_log_level_parse("WARN", &l), 0);
    ck_assert_int_eq(l, CHAT_LOG_WARN);
    ck_assert_int_eq(chat_log_level_parse("Info", &l), 0);
    ck_assert_int_eq(l, CHAT_LOG_INFO);
    ck_assert_int_eq(chat_log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, CHAT_LOG_DEBUG);
    ck_assert_int_eq(chat_log_level_parse("verbose", &l), -1);
    ck_assert_int_eq(chat_log_level_parse("", &l), -1);
    ck_assert_int_eq(chat_log_level_parse(NULL, &l), -1);
}
END_TEST

START_TEST(test_line_format)
{
    chat_log_set_level(CHAT_LOG_INFO);
    ck_assert_int_eq(chat_log_get_level(), CHAT_LOG_INFO);
    const char *line = capture(CHAT_LOG_INFO, "conn_open conn=7 peer=127.0.0.1");
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "level=info msg=conn_open conn=7 peer=127\\.0\\.0\\.1\n$",
                             REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, line, 0, NULL, 0) == 0, "bad line: %s", line);
    regfree(&re);

    line = capture(CHAT_LOG_ERROR, "boom");
    ck_assert_ptr_nonnull(strstr(line, " level=error msg=boom\n"));
    line = capture(CHAT_LOG_WARN, "careful");
    ck_assert_ptr_nonnull(strstr(line, " level=warn msg=careful\n"));
}
END_TEST

START_TEST(test_level_filter)
{
    chat_log_set_level(CHAT_LOG_WARN);
    ck_assert_str_eq(capture(CHAT_LOG_INFO, "hidden"), "");
    ck_assert_str_eq(capture(CHAT_LOG_DEBUG, "hidden"), "");
    ck_assert_str_ne(capture(CHAT_LOG_WARN, "shown"), "");
    chat_log_set_level(CHAT_LOG_DEBUG);
    ck_assert_ptr_nonnull(strstr(capture(CHAT_LOG_DEBUG, "dbg"), "level=debug msg=dbg"));
    ck_assert(chat_log_enabled(CHAT_LOG_DEBUG));
    chat_log_set_level(CHAT_LOG_ERROR);
    ck_assert(!chat_log_enabled(CHAT_LOG_WARN));
    chat_log_set_level(CHAT_LOG_INFO);
}
END_TEST

START_TEST(test_no_line_injection)
{
    chat_log_set_level(CHAT_LOG_INFO);
    const char *line = capture(CHAT_LOG_INFO, "evil name=a\nlevel=error msg=forged\x1b[2J");
    /* exactly one newline, at the end */
    ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
    ck_assert_ptr_null(strchr(line, '\x1b'));
}
END_TEST

START_TEST(test_long_line_truncated)
{
    chat_log_set_level(CHAT_LOG_INFO);
    char *big = malloc(20000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    const char *line = capture(CHAT_LOG_INFO, big);
    free(big);
    ck_assert_uint_lt(strlen(line), 4200);
    ck_assert_ptr_nonnull(strstr(line, "...\n"));
}
END_TEST

START_TEST(test_format_parse)
{
    enum chat_log_format f;
    ck_assert_int_eq(chat_log_format_parse("json", &f), 0);
    ck_assert_int_eq(f, CHAT_LOG_FORMAT_JSON);
    ck_assert_int_eq(chat_log_format_parse("TEXT", &f), 0);
    ck_assert_int_eq(f, CHAT_LOG_FORMAT_TEXT);
    ck_assert_int_eq(chat_log_format_parse("xml", &f), -1);
    ck_assert_int_eq(chat_log_format_parse("", &f), -1);
    ck_assert_int_eq(chat_log_format_parse(NULL, &f), -1);
}
END_TEST

/* One JSON line: exactly one newline, at the end, and an object. */
static json_t *capture_json(enum chat_log_level level, const char *what)
{
    const char *line = capture(level, what);
    ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
    json_error_t jerr;
    json_t *obj = json_loads(line, 0, &jerr);
    ck_assert_msg(obj && json_is_object(obj), "not a JSON object: %s (%s)", line, jerr.text);
    return obj;
}

START_TEST(test_json_fields)
{
    chat_log_set_level(CHAT_LOG_INFO);
    chat_log_set_format(CHAT_LOG_FORMAT_JSON);
    json_t *o = capture_json(CHAT_LOG_WARN, "redis_connect_failed conn=command count=12 "
                                            "error=\"Connection refused\" zero=007");
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
                             REG_EXTENDED),
                     0);
    ck_assert_int_eq(regexec(&re, json_string_value(json_object_get(o, "ts")), 0, NULL, 0), 0);
    regfree(&re);
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "redis_connect_failed");
    ck_assert_str_eq(json_string_value(json_object_get(o, "conn")), "command");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), 12);
    ck_assert_str_eq(json_string_value(json_object_get(o, "error")), "Connection refused");
    ck_assert_str_eq(json_string_value(json_object_get(o, "zero")), "007"); /* not a number */
    ck_assert_uint_eq(json_object_size(o), 7);
    json_decref(o);
    chat_log_set_format(CHAT_LOG_FORMAT_TEXT);
}
END_TEST

START_TEST(test_json_hostile_values)
{
    chat_log_set_level(CHAT_LOG_INFO);
    chat_log_set_format(CHAT_LOG_FORMAT_JSON);
    /* A peer's value that forges ts, level and msg, with a newline: the event's
     * own fields win, and the line stays one line. */
    json_t *o = capture_json(CHAT_LOG_INFO, "ws_refused reason=\"a\" level=error msg=x\nlevel=y\" "
                                            "conn=3 msg=forged loose words");
    ck_assert_str_eq(json_string_value(json_object_get(o, "level")), "info");
    ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "ws_refused");
    ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "a");
    ck_assert_int_eq(json_integer_value(json_object_get(o, "conn")), 3);
    ck_assert_str_eq(json_string_value(json_object_get(o, "text")), "loose words");
    json_decref(o);

    /* bytes that are not UTF-8, and a quote inside a quoted value */
    o = capture_json(CHAT_LOG_INFO, "login user=\"\xff\xfeok\" name=\"say \"hi\" there\"");
    ck_assert_str_eq(json_string_value(json_object_get(o, "user")), "??ok");
    ck_assert_str_eq(json_string_value(json_object_get(o, "name")), "say \"hi\" there");
    json_decref(o);

    o = capture_json(CHAT_LOG_INFO, "cut reason=\"never closed");
    ck_assert_str_eq(json_string_value(json_object_get(o, "reason")), "never closed");
    json_decref(o);

    char *big = malloc(20000);
    ck_assert_ptr_nonnull(big);
    memcpy(big, "huge value=\"", 12);
    memset(big + 12, 'x', 19987);
    big[19999] = '\0';
    o = capture_json(CHAT_LOG_INFO, big);
    free(big);
    ck_assert_uint_lt(strlen(json_string_value(json_object_get(o, "value"))), 4100);
    json_decref(o);
    chat_log_set_format(CHAT_LOG_FORMAT_TEXT);
}
END_TEST

TCase *log_tcase(void)
{
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, test_level_parse);
    tcase_add_test(tc, test_line_format);
    tcase_add_test(tc, test_level_filter);
    tcase_add_test(tc, test_no_line_injection);
    tcase_add_test(tc, test_long_line_truncated);
    tcase_add_test(tc, test_format_parse);
    tcase_add_test(tc, test_json_fields);
    tcase_add_test(tc, test_json_hostile_values);
    return tc;
}
