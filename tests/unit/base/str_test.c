/* Unit tests for src/base/str.c */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/str.h"

static void test_eq(void **state)
{
    (void)state;
    assert_true(str_eq(STR(""), STR_NULL));
    assert_true(str_eq(STR("abc"), str_make("abcdef", 3)));
    assert_false(str_eq(STR("abc"), STR("abd")));
    assert_false(str_eq(STR("abc"), STR("ab")));
    assert_true(str_caseeq(STR("Via"), STR("vIA")));
    assert_false(str_caseeq(STR("Via"), STR("Vib")));
    assert_false(str_caseeq(STR("a"), STR("ab")));
    assert_true(str_caseeq(STR_NULL, STR("")));
    /* '@' and '[' must not be folded onto letters */
    assert_false(str_caseeq(STR("@"), STR("`")));
    assert_false(str_caseeq(STR("["), STR("{")));
    assert_int_equal(str_lower(0xC4), 0xC4);
}

static void test_prefix(void **state)
{
    (void)state;
    assert_true(str_has_prefix(STR("sip:alice"), STR("sip:")));
    assert_true(str_has_prefix(STR("x"), STR("")));
    assert_false(str_has_prefix(STR("si"), STR("sip")));
    assert_true(str_has_caseprefix(STR("SIP/2.0"), STR("sip/")));
    assert_false(str_has_caseprefix(STR("SIP"), STR("sips")));
}

static void test_find(void **state)
{
    (void)state;
    assert_int_equal(str_find(STR("hello world"), STR("world")), 6);
    assert_int_equal(str_find(STR("hello"), STR("")), 0);
    assert_int_equal(str_find(STR("hello"), STR("hello!")), -1);
    assert_int_equal(str_find(STR(""), STR("a")), -1);
    assert_int_equal(str_find(STR("aaab"), STR("aab")), 1);
    assert_int_equal(str_find_char(STR("a;b"), ';'), 1);
    assert_int_equal(str_find_char(STR_NULL, ';'), -1);
    assert_int_equal(str_find_char(STR("abc"), 'z'), -1);
    /* a NUL inside the slice is an ordinary byte */
    assert_int_equal(str_find_char(str_make("a\0b", 3), 'b'), 2);
}

static void test_trim(void **state)
{
    (void)state;
    assert_true(str_eq(str_trim(STR(" \t x y \r\n")), STR("x y")));
    assert_true(str_eq(str_trim(STR("   ")), STR("")));
    assert_true(str_eq(str_trim(STR_NULL), STR("")));
    assert_true(str_eq(str_ltrim(STR("  a ")), STR("a ")));
    assert_true(str_eq(str_rtrim(STR("  a ")), STR("  a")));
}

static void test_sub(void **state)
{
    (void)state;
    str s = STR("abcdef");
    assert_true(str_eq(str_sub(s, 2, 2), STR("cd")));
    assert_true(str_eq(str_sub(s, 4, 100), STR("ef")));
    assert_true(str_eq(str_sub(s, 6, 1), STR("")));
    assert_true(str_eq(str_sub(s, 100, 1), STR("")));
    assert_true(str_eq(str_skip(s, 5), STR("f")));
    assert_true(str_eq(str_skip(s, SIZE_MAX), STR("")));
}

static void test_to_int(void **state)
{
    (void)state;
    uint32_t u = 7;
    assert_int_equal(str_to_u32(STR("0"), &u), 0);
    assert_int_equal(u, 0);
    assert_int_equal(str_to_u32(STR("4294967295"), &u), 0);
    assert_int_equal(u, UINT32_MAX);
    assert_int_equal(str_to_u32(STR("4294967296"), &u), -ERANGE);
    assert_int_equal(u, UINT32_MAX); /* untouched on failure */
    assert_int_equal(str_to_u32(STR(""), &u), -EINVAL);
    assert_int_equal(str_to_u32(STR("12a"), &u), -EINVAL);
    assert_int_equal(str_to_u32(STR(" 12"), &u), -EINVAL);
    assert_int_equal(str_to_u32(STR("-1"), &u), -EINVAL);
    assert_int_equal(str_to_u32(STR("+1"), &u), -EINVAL);
    assert_int_equal(str_to_u32(STR("0000000000000000000000042"), &u), 0);
    assert_int_equal(u, 42);

    uint64_t v;
    assert_int_equal(str_to_u64(STR("18446744073709551615"), &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(str_to_u64(STR("18446744073709551616"), &v), -ERANGE);
    assert_int_equal(str_to_u64(STR("99999999999999999999999"), &v), -ERANGE);

    int64_t i;
    assert_int_equal(str_to_i64(STR("-9223372036854775808"), &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(str_to_i64(STR("9223372036854775807"), &i), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(str_to_i64(STR("9223372036854775808"), &i), -ERANGE);
    assert_int_equal(str_to_i64(STR("-9223372036854775809"), &i), -ERANGE);
    assert_int_equal(str_to_i64(STR("-"), &i), -EINVAL);
    assert_int_equal(str_to_i64(STR("--1"), &i), -EINVAL);
    assert_int_equal(str_to_i64(STR("-17"), &i), 0);
    assert_true(i == -17);
}

static void test_copy_dup(void **state)
{
    (void)state;
    char b[4];
    assert_int_equal(str_copy(b, sizeof b, STR("abc")), 3);
    assert_string_equal(b, "abc");
    assert_int_equal(str_copy(b, sizeof b, STR("abcd")), -ENOSPC);
    assert_string_equal(b, "");
    assert_int_equal(str_copy(b, 0, STR("")), -ENOSPC);
    char *d = str_dup(str_make("x\0y", 3));
    assert_non_null(d);
    assert_memory_equal(d, "x\0y\0", 4);
    free(d);
    d = str_dup(STR_NULL);
    assert_string_equal(d, "");
    free(d);
    assert_int_equal(str_cstr(NULL).len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eq),   cmocka_unit_test(test_prefix), cmocka_unit_test(test_find),
        cmocka_unit_test(test_trim), cmocka_unit_test(test_sub),    cmocka_unit_test(test_to_int),
        cmocka_unit_test(test_copy_dup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
