#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "gateway.h"
#include "tests.h"

/* The reference vectors of SipHash-2-4 (key 00..0f, message 00..len-1). */
START_TEST(test_siphash_vectors)
{
    static const struct {
        size_t len;
        uint64_t want;
    } v[] = {{0, 0x726fdb47dd0e0e31ULL},
             {1, 0x74f839c593dc67fdULL},
             {8, 0x93f5f5799a932462ULL},
             {15, 0xa129ca6149be45e5ULL}};
    unsigned char msg[16];
    for (int i = 0; i < 16; i++)
        msg[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        ck_assert_uint_eq(gw_siphash24(0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL, msg, v[i].len),
                          v[i].want);
}
END_TEST

START_TEST(test_set_get_replace_del)
{
    struct gw_dict *d = gw_dict_new();
    ck_assert_ptr_nonnull(d);
    int a = 1, b = 2, c = 3;
    ck_assert_uint_eq(gw_dict_size(d), 0);
    ck_assert_ptr_null(gw_dict_get(d, "general"));
    ck_assert_int_eq(gw_dict_set(d, "general", &a), GW_OK);
    ck_assert_int_eq(gw_dict_set(d, "random", &b), GW_OK);
    ck_assert_uint_eq(gw_dict_size(d), 2);
    ck_assert_ptr_eq(gw_dict_get(d, "general"), &a);
    ck_assert_ptr_eq(gw_dict_get(d, "random"), &b);
    /* Keys are case-sensitive and compared whole. */
    ck_assert_ptr_null(gw_dict_get(d, "General"));
    ck_assert_ptr_null(gw_dict_get(d, "gen"));

    ck_assert_int_eq(gw_dict_set(d, "general", &c), GW_OK);
    ck_assert_uint_eq(gw_dict_size(d), 2);
    ck_assert_ptr_eq(gw_dict_get(d, "general"), &c);

    ck_assert_ptr_eq(gw_dict_del(d, "general"), &c);
    ck_assert_ptr_null(gw_dict_get(d, "general"));
    ck_assert_ptr_null(gw_dict_del(d, "general"));
    ck_assert_ptr_null(gw_dict_del(d, "never"));
    ck_assert_uint_eq(gw_dict_size(d), 1);
    ck_assert_ptr_eq(gw_dict_del(d, "random"), &b);
    ck_assert_uint_eq(gw_dict_size(d), 0);
    gw_dict_free(d);
    gw_dict_free(NULL);
}
END_TEST

START_TEST(test_key_is_copied)
{
    struct gw_dict *d = gw_dict_new();
    ck_assert_ptr_nonnull(d);
    char key[16];
    strcpy(key, "room-1");
    int v = 7;
    ck_assert_int_eq(gw_dict_set(d, key, &v), GW_OK);
    strcpy(key, "changed");
    ck_assert_ptr_eq(gw_dict_get(d, "room-1"), &v);
    ck_assert_ptr_null(gw_dict_get(d, "changed"));
    /* The empty string is a key like any other. */
    ck_assert_int_eq(gw_dict_set(d, "", &v), GW_OK);
    ck_assert_ptr_eq(gw_dict_get(d, ""), &v);
    gw_dict_free(d);
}
END_TEST

#define MANY 5000

struct visit {
    unsigned char seen[MANY];
    size_t calls;
    int bad;
};

static void on_visit(const char *key, void *value, void *arg)
{
    struct visit *v = arg;
    int i = *(int *)value;
    char want[32];
    snprintf(want, sizeof(want), "user:%d", i);
    if (i < 0 || i >= MANY || strcmp(key, want) != 0 || v->seen[i])
        v->bad++;
    else
        v->seen[i] = 1;
    v->calls++;
}

START_TEST(test_growth_and_each)
{
    struct gw_dict *d = gw_dict_new();
    ck_assert_ptr_nonnull(d);
    static int vals[MANY];
    char key[32];
    for (int i = 0; i < MANY; i++) {
        vals[i] = i;
        snprintf(key, sizeof(key), "user:%d", i);
        ck_assert_int_eq(gw_dict_set(d, key, &vals[i]), GW_OK);
    }
    ck_assert_uint_eq(gw_dict_size(d), MANY);
    for (int i = 0; i < MANY; i++) {
        snprintf(key, sizeof(key), "user:%d", i);
        ck_assert_ptr_eq(gw_dict_get(d, key), &vals[i]);
    }

    struct visit *v = calloc(1, sizeof(*v));
    ck_assert_ptr_nonnull(v);
    gw_dict_each(d, on_visit, v);
    ck_assert_int_eq(v->bad, 0);
    ck_assert_uint_eq(v->calls, MANY);

    /* Delete the even ones; the odd ones survive, each visits only them. */
    for (int i = 0; i < MANY; i += 2) {
        snprintf(key, sizeof(key), "user:%d", i);
        ck_assert_ptr_eq(gw_dict_del(d, key), &vals[i]);
    }
    ck_assert_uint_eq(gw_dict_size(d), MANY / 2);
    memset(v, 0, sizeof(*v));
    gw_dict_each(d, on_visit, v);
    ck_assert_int_eq(v->bad, 0);
    ck_assert_uint_eq(v->calls, MANY / 2);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(v->seen[i], i % 2);
    free(v);
    gw_dict_free(d);
}
END_TEST

static void count_cb(const char *key, void *value, void *arg)
{
    (void)key;
    (void)value;
    (*(size_t *)arg)++;
}

START_TEST(test_each_empty)
{
    struct gw_dict *d = gw_dict_new();
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    gw_dict_each(d, count_cb, &n);
    ck_assert_uint_eq(n, 0);
    gw_dict_free(d);
}
END_TEST

TCase *dict_tcase(void)
{
    TCase *tc = tcase_create("dict");
    tcase_add_test(tc, test_siphash_vectors);
    tcase_add_test(tc, test_set_get_replace_del);
    tcase_add_test(tc, test_key_is_copied);
    tcase_add_test(tc, test_growth_and_each);
    tcase_add_test(tc, test_each_empty);
    return tc;
}
