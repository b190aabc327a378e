/* pool: size classes, reuse, alignment, the malloc path for large objects, stats. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/pool.h"

static void test_new_rejects_bad_max(void **state)
{
    (void)state;
    struct pool *p = NULL;
    assert_int_equal(pool_new(&p, 0), -EINVAL);
    assert_int_equal(pool_new(&p, 4097), -EINVAL);
    assert_int_equal(pool_new(&p, 4096), 0);
    pool_free(p);
    pool_free(NULL);
}

static void test_alignment_and_distinct(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(&p, 1024), 0);
    char *v[3000];
    for (int i = 0; i < 3000; i++) {
        size_t n = 1 + (size_t)(i * 37) % 1024;
        v[i] = pool_alloc(p, n);
        assert_non_null(v[i]);
        assert_int_equal((uintptr_t)v[i] % 16, 0);
        memset(v[i], i & 0xff, n);
    }
    for (int i = 0; i < 3000; i++) {
        size_t n = 1 + (size_t)(i * 37) % 1024;
        for (size_t j = 0; j < n; j++)
            assert_int_equal((unsigned char)v[i][j], i & 0xff); /* nobody overlapped */
    }
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.objects, 3000);
    assert_true(st.mapped >= st.in_use);
    for (int i = 0; i < 3000; i++)
        pool_put(p, v[i], 1 + (size_t)(i * 37) % 1024);
    pool_get_stats(p, &st);
    assert_int_equal(st.objects, 0);
    assert_int_equal(st.in_use, 0);
    pool_free(p);
}

static void test_reuse_same_class(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(&p, 512), 0);
    void *a = pool_alloc(p, 100);
    pool_put(p, a, 100);
    void *b = pool_alloc(p, 110); /* same 16-byte class (112) */
    assert_ptr_equal(a, b);
    void *c = pool_alloc(p, 120); /* another class: fresh memory */
    assert_ptr_not_equal(b, c);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.mapped, 64 * 1024); /* one block so far */
    pool_put(p, b, 110);
    pool_put(p, c, 120);
    pool_free(p);
}

static void test_large_objects_use_malloc(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(&p, 256), 0);
    char *big = pool_alloc(p, 10000);
    assert_non_null(big);
    memset(big, 1, 10000);
    struct pool_stats st;
    pool_get_stats(p, &st);
    assert_int_equal(st.mapped, 0);
    assert_int_equal(st.in_use, 10000);
    pool_put(p, big, 10000);
    pool_get_stats(p, &st);
    assert_int_equal(st.objects, 0);
    pool_free(p);
}

/* The unused tail of a block is not lost when a larger object needs a new block. */
static void test_block_tail_reused(void **state)
{
    (void)state;
    struct pool *p;
    assert_int_equal(pool_new(&p, 4096), 0);
    void *v[64];
    size_t n = 0;
    struct pool_stats st;
    do {
        v[n++] = pool_alloc(p, 4000); /* fills block 1 until 4000 no longer fits */
        pool_get_stats(p, &st);
    } while (st.mapped == 64 * 1024 && n < 64);
    assert_int_equal(st.mapped, 128 * 1024);
    /* 16 objects of 4000 fill 64,000 of block 1's 65,520 bytes; the 1,520 left
     * went to the free list of their class and serve the next such object */
    assert_int_equal(n, 17);
    char *tail = pool_alloc(p, 1520);
    assert_ptr_equal(tail, (char *)v[0] + 16 * 4000);
    pool_put(p, tail, 1520);
    for (size_t i = 0; i < n; i++)
        pool_put(p, v[i], 4000);
    pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_rejects_bad_max),
        cmocka_unit_test(test_alignment_and_distinct),
        cmocka_unit_test(test_reuse_same_class),
        cmocka_unit_test(test_large_objects_use_malloc),
        cmocka_unit_test(test_block_tail_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
