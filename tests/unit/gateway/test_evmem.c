#include <stdint.h>
#include <string.h>

#include "evmem.h"
#include "tests.h"

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static bool filled(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return false;
    return true;
}

/* A chain freed after a write is what the next frame's chain gets. */
START_TEST(test_freed_chain_is_reused)
{
    gw_evmem_release();
    unsigned char *a = gw_evmem_alloc(2048);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq((uintptr_t)a % 16, 0);
    fill(a, 2048, 1);
    gw_evmem_free(a);
    if (!gw_evmem_caching()) {
        ck_assert_uint_eq(gw_evmem_cached_bytes(), 0);
        return;
    }
    ck_assert_uint_eq(gw_evmem_cached_bytes(), 2048);
    unsigned char *b = gw_evmem_alloc(2048);
    ck_assert_ptr_eq(b, a);
    ck_assert_uint_eq(gw_evmem_cached_bytes(), 0);
    /* Another size does not take it. */
    gw_evmem_free(b);
    unsigned char *c = gw_evmem_alloc(1024);
    ck_assert_ptr_ne(c, a);
    ck_assert_uint_eq(gw_evmem_cached_bytes(), 2048);
    gw_evmem_free(c);
    gw_evmem_release();
    ck_assert_uint_eq(gw_evmem_cached_bytes(), 0);
}
END_TEST

/* A burst frees many chains at once: the cache keeps a bounded share. */
START_TEST(test_cache_is_bounded)
{
    gw_evmem_release();
    void *blocks[1000];
    for (int i = 0; i < 1000; i++)
        ck_assert_ptr_nonnull(blocks[i] = gw_evmem_alloc(4096));
    for (int i = 0; i < 1000; i++)
        gw_evmem_free(blocks[i]);
    ck_assert_uint_le(gw_evmem_cached_bytes(), 128 * 1024);
    if (gw_evmem_caching())
        ck_assert_uint_gt(gw_evmem_cached_bytes(), 0);
    /* Odd sizes are never cached. */
    size_t before = gw_evmem_cached_bytes();
    gw_evmem_free(gw_evmem_alloc(3000));
    gw_evmem_free(gw_evmem_alloc(64 * 1024));
    ck_assert_uint_eq(gw_evmem_cached_bytes(), before);
    gw_evmem_release();
}
END_TEST

START_TEST(test_realloc_keeps_contents)
{
    gw_evmem_release();
    /* A cached size grown, from a block that was cached before: copied into
     * a larger block. */
    gw_evmem_free(gw_evmem_alloc(1024));
    unsigned char *p = gw_evmem_alloc(1024), *reused = p;
    fill(p, 1024, 3);
    p = gw_evmem_realloc(p, 5000);
    ck_assert_ptr_nonnull(p);
    if (gw_evmem_caching())
        ck_assert_ptr_ne(p, reused);
    ck_assert(filled(p, 1024, 3));
    fill(p, 5000, 4);
    /* An odd size grown and shrunk in place by realloc. */
    p = gw_evmem_realloc(p, 70000);
    ck_assert_ptr_nonnull(p);
    ck_assert(filled(p, 5000, 4));
    p = gw_evmem_realloc(p, 100);
    ck_assert(filled(p, 100, 4));
    gw_evmem_free(p);
    /* A cached size shrunk keeps its block. */
    unsigned char *q = gw_evmem_alloc(2048), *shrunk;
    fill(q, 2048, 5);
    ck_assert_ptr_nonnull(shrunk = gw_evmem_realloc(q, 1500));
    if (gw_evmem_caching())
        ck_assert_ptr_eq(shrunk, q);
    q = shrunk;
    ck_assert(filled(q, 1500, 5));
    gw_evmem_free(q);
    ck_assert_ptr_nonnull(q = gw_evmem_realloc(NULL, 1024));
    gw_evmem_free(q);
    gw_evmem_free(NULL);
    gw_evmem_release();
}
END_TEST

TCase *evmem_tcase(void)
{
    TCase *tc = tcase_create("evmem");
    tcase_add_test(tc, test_freed_chain_is_reused);
    tcase_add_test(tc, test_cache_is_bounded);
    tcase_add_test(tc, test_realloc_keeps_contents);
    return tc;
}
