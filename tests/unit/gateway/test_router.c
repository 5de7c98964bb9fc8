#include <stdlib.h>
#include <string.h>

#include "router.h"
#include "tests.h"

/* Copies s (without its NUL) to an exact-size heap block, so an over-read is
 * caught by ASan, and returns gw_router_message_seq over its first len bytes. */
static int64_t seq_of(const char *s, size_t len)
{
    char *buf = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, s, len);
    int64_t v = gw_router_message_seq(buf, len);
    free(buf);
    return v;
}

static int64_t seq_str(const char *s)
{
    return seq_of(s, strlen(s));
}

START_TEST(test_room_heads)
{
    ck_assert_int_eq(seq_str("{\"type\":\"message\",\"room\":\"general\",\"seq\":12,\"ts\":"
                             "1764028800000,\"from\":{\"id\":\"u1\",\"name\":\"ann\"},"
                             "\"kind\":\"text\",\"body\":\"hi\"}"),
                     12);
    ck_assert_int_eq(seq_str("{\"type\":\"message\",\"room\":\"r\",\"seq\":1,\"ts\":1}"), 1);
    /* The longest room name (32 characters) and a large seq. */
    ck_assert_int_eq(seq_str("{\"type\":\"message\",\"room\":\"abcdefghijklmnopqrstuvwxyz012345\","
                             "\"seq\":9007199254740993,\"ts\":1}"),
                     9007199254740993LL);
}
END_TEST

START_TEST(test_private_heads)
{
    ck_assert_int_eq(seq_str("{\"type\":\"private\",\"seq\":7,\"ts\":1764028800000,\"from\":{}}"),
                     7);
    ck_assert_int_eq(seq_str("{\"type\":\"private\",\"seq\":100000,\"ts\":1}"), 100000);
}
END_TEST

START_TEST(test_no_seq)
{
    ck_assert_int_eq(seq_str("{\"type\":\"message\",\"room\":\"general\",\"ts\":1}"), -1);
    ck_assert_int_eq(seq_str("{\"type\":\"presence\",\"room\":\"general\",\"event\":\"join\"}"),
                     -1);
    ck_assert_int_eq(seq_str("{\"type\":\"message\",\"seq\":\"12\"}"), -1);
    ck_assert_int_eq(seq_str("{\"type\":\"message\",\"seq\":-3}"), -1);
    ck_assert_int_eq(seq_str(""), -1);
    ck_assert_int_eq(seq_str("not json at all"), -1);
}
END_TEST

START_TEST(test_truncated)
{
    const char *full = "{\"type\":\"message\",\"room\":\"general\",\"seq\":12,\"ts\":1}";
    const char *at = strstr(full, "\"seq\":");
    size_t seq_pos = (size_t)(at - full);
    /* Cut anywhere before the first digit: no seq. */
    for (size_t len = 0; len <= seq_pos + 6; len++)
        ck_assert_int_eq(seq_of(full, len), -1);
    /* Cut inside the number: what is there (never more). */
    ck_assert_int_eq(seq_of(full, seq_pos + 7), 1);
    ck_assert_int_eq(seq_of(full, seq_pos + 8), 12);
}
END_TEST

START_TEST(test_huge_number)
{
    /* Digits without end must not overflow into a negative seq. */
    char msg[200] = "{\"type\":\"private\",\"seq\":";
    size_t n = strlen(msg);
    memset(msg + n, '9', 60);
    msg[n + 60] = '\0';
    int64_t v = seq_str(msg);
    ck_assert(v == -1 || v > 0);
}
END_TEST

TCase *router_tcase(void)
{
    TCase *tc = tcase_create("router");
    tcase_add_test(tc, test_room_heads);
    tcase_add_test(tc, test_private_heads);
    tcase_add_test(tc, test_no_seq);
    tcase_add_test(tc, test_truncated);
    tcase_add_test(tc, test_huge_number);
    return tc;
}
