/* Unit tests for src/base/map.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/map.h"

static int V[100000];

static void test_str(void **state)
{
    (void)state;
    struct map *m;
    assert_int_equal(map_new(&m, MAP_KEY_STR, 0), 0);
    assert_null(map_get_str(m, STR("a")));
    assert_int_equal(map_set_str(m, STR("alice"), &V[1], NULL), 0);
    assert_int_equal(map_set_str(m, STR(""), &V[2], NULL), 0); /* empty key is a key */
    void *old = NULL;
    assert_int_equal(map_set_str(m, STR("alice"), &V[3], &old), 1);
    assert_ptr_equal(old, &V[1]);
    assert_ptr_equal(map_get_str(m, STR("alice")), &V[3]);
    assert_null(map_get_str(m, STR("Alice"))); /* byte-exact */
    assert_ptr_equal(map_get_str(m, STR("")), &V[2]);
    assert_int_equal(map_count(m), 2);
    assert_ptr_equal(map_del_str(m, STR("alice")), &V[3]);
    assert_null(map_del_str(m, STR("alice")));
    assert_int_equal(map_count(m), 1);
    /* keys are copied: the caller's buffer may change */
    char key[8] = "bob";
    assert_int_equal(map_set_str(m, str_cstr(key), &V[4], NULL), 0);
    strcpy(key, "xxx");
    assert_ptr_equal(map_get_str(m, STR("bob")), &V[4]);
    /* binary keys */
    assert_int_equal(map_set_str(m, str_make("a\0b", 3), &V[5], NULL), 0);
    assert_null(map_get_str(m, str_make("a\0c", 3)));
    assert_ptr_equal(map_get_str(m, str_make("a\0b", 3)), &V[5]);
    map_free(m);
}

static void test_nocase(void **state)
{
    (void)state;
    struct map *m;
    assert_int_equal(map_new(&m, MAP_KEY_STR_NOCASE, 4), 0);
    assert_int_equal(map_set_str(m, STR("Call-ID"), &V[1], NULL), 0);
    assert_ptr_equal(map_get_str(m, STR("call-id")), &V[1]);
    assert_ptr_equal(map_get_str(m, STR("CALL-ID")), &V[1]);
    assert_int_equal(map_set_str(m, STR("CALL-id"), &V[2], NULL), 1);
    assert_int_equal(map_count(m), 1);
    map_free(m);
}

static void test_int_many(void **state)
{
    (void)state;
    struct map *m;
    const int n = 100000;
    assert_int_equal(map_new(&m, MAP_KEY_INT, 0), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(map_set_int(m, (uint64_t)i * 7919, &V[i], NULL), 0);
    assert_int_equal(map_count(m), n);
    for (int i = 0; i < n; i++)
        assert_ptr_equal(map_get_int(m, (uint64_t)i * 7919), &V[i]);
    assert_null(map_get_int(m, 1));
    /* remove every other one: backward shift must keep the rest reachable */
    for (int i = 0; i < n; i += 2)
        assert_ptr_equal(map_del_int(m, (uint64_t)i * 7919), &V[i]);
    for (int i = 0; i < n; i++) {
        void *v = map_get_int(m, (uint64_t)i * 7919);
        if (i % 2)
            assert_ptr_equal(v, &V[i]);
        else
            assert_null(v);
    }
    assert_int_equal(map_count(m), n / 2);
    map_free(m);
}

static void test_iterate_delete(void **state)
{
    (void)state;
    struct map *m;
    const int n = 5000;
    assert_int_equal(map_new(&m, MAP_KEY_STR, 0), 0);
    char k[32];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "user%d@example.com", i);
        assert_int_equal(map_set_str(m, str_cstr(k), &V[i], NULL), 0);
    }
    /* visit each entry exactly once while deleting the multiples of 3 */
    static unsigned char seen[5000];
    memset(seen, 0, sizeof seen);
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    int visited = 0;
    while (map_next(m, &it, &e)) {
        int i = (int)((int *)e.val - V);
        assert_true(i >= 0 && i < n);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visited++;
        if (i % 3 == 0)
            map_del_current(m, &it);
    }
    assert_int_equal(visited, n);
    assert_int_equal(map_count(m), n - (n + 2) / 3);
    it = MAP_ITER_INIT;
    visited = 0;
    while (map_next(m, &it, &e)) {
        int i = (int)((int *)e.val - V);
        assert_true(i % 3 != 0);
        visited++;
    }
    assert_int_equal(visited, n - (n + 2) / 3);
    /* delete everything through iteration */
    it = MAP_ITER_INIT;
    while (map_next(m, &it, &e))
        map_del_current(m, &it);
    assert_int_equal(map_count(m), 0);
    map_free(m);
}

static void test_siphash_vector(void **state)
{
    (void)state;
    /* SipHash-1-3 is keyed per map; check the algorithm is stable and keyed. */
    uint8_t k1[16] = { 0 }, k2[16] = { 1 };
    uint64_t a = map_siphash(k1, "abc", 3, false);
    assert_true(a == map_siphash(k1, "abc", 3, false));
    assert_true(a != map_siphash(k2, "abc", 3, false));
    assert_true(a == map_siphash(k1, "ABC", 3, true));
    assert_true(a != map_siphash(k1, "abd", 3, false));
    /* every length up to two blocks hashes without reading past the input */
    char buf[17] = "0123456789abcdef";
    for (size_t len = 0; len <= 16; len++)
        (void)map_siphash(k1, buf, len, len & 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str),
        cmocka_unit_test(test_nocase),
        cmocka_unit_test(test_int_many),
        cmocka_unit_test(test_iterate_delete),
        cmocka_unit_test(test_siphash_vector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
