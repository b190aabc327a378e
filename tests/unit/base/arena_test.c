/* Unit tests for src/base/arena.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/arena.h"

static void test_alloc(void **state)
{
    (void)state;
    struct arena *a;
    assert_int_equal(arena_new(&a, 64, 0), 0);
    char *p = arena_alloc(a, 1);
    char *q = arena_alloc(a, 1);
    assert_non_null(p);
    assert_non_null(q);
    assert_true(p != q);
    assert_int_equal((uintptr_t)p % 16, 0);
    assert_int_equal((uintptr_t)q % 16, 0);
    void *z = arena_alloc(a, 0);
    assert_non_null(z);
    /* larger than a chunk: gets its own */
    char *big = arena_alloc(a, 1000);
    assert_non_null(big);
    memset(big, 'b', 1000);
    char *s = arena_strdup(a, STR("hello"));
    assert_string_equal(s, "hello");
    int *zeros = arena_calloc(a, 10, sizeof(int));
    for (int i = 0; i < 10; i++)
        assert_int_equal(zeros[i], 0);
    assert_null(arena_calloc(a, SIZE_MAX / 2, 4)); /* overflow */
    assert_null(arena_alloc(a, SIZE_MAX - 3));     /* rounding overflow */
    assert_true(arena_used(a) >= 1000 + 16 * 4);
    arena_reset(a);
    assert_int_equal(arena_used(a), 0);
    /* many allocations after reset */
    for (int i = 0; i < 10000; i++) {
        char *x = arena_alloc(a, 24);
        assert_non_null(x);
        memset(x, i & 0xff, 24);
    }
    arena_free(a);
    arena_free(NULL);
}

static void test_bound(void **state)
{
    (void)state;
    struct arena *a;
    assert_int_equal(arena_new(&a, 128, 256), 0);
    assert_non_null(arena_alloc(a, 100));
    assert_non_null(arena_alloc(a, 100));
    assert_null(arena_alloc(a, 100)); /* a third chunk passes the 256-byte bound */
    assert_null(arena_alloc(a, 1000));
    arena_reset(a); /* one chunk of 256 */
    assert_non_null(arena_alloc(a, 100));
    assert_non_null(arena_alloc(a, 100));
    assert_null(arena_alloc(a, 100)); /* still bounded by 256 */
    arena_free(a);
}

/* after a reset, what needed several chunks fits in one (the high-water mark) */
static void test_reset_keeps_high_water(void **state)
{
    (void)state;
    struct arena *a;
    assert_int_equal(arena_new(&a, 128, 0), 0);
    for (int i = 0; i < 3; i++)
        assert_non_null(arena_alloc(a, 100)); /* three chunks of 128 */
    arena_reset(a);
    char *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = arena_alloc(a, 100);
    assert_ptr_equal(p[1], p[0] + 112); /* one chunk now: consecutive */
    assert_ptr_equal(p[2], p[1] + 112);
    arena_reset(a);
    assert_ptr_equal(arena_alloc(a, 100), p[0]); /* and it stays */
    /* a burst beyond ARENA_KEEP_MAX is not kept whole */
    for (int i = 0; i < 40; i++)
        assert_non_null(arena_alloc(a, 10000));
    arena_reset(a);
    assert_ptr_equal(arena_alloc(a, 100), p[0]);
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_reset_keeps_high_water),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
