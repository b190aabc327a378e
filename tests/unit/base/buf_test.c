/* Unit tests for src/base/buf.c */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"

static void test_append(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(b.len, 0);
    assert_null(b.data);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_int_equal(buf_append_str(&b, STR("def")), 0);
    assert_int_equal(buf_append_byte(&b, '!'), 0);
    assert_true(str_eq(buf_str(&b), STR("abcdef!")));
    /* grow well past the first allocation */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, "0123456789", 10), 0);
    assert_int_equal(b.len, 10007);
    assert_memory_equal(b.data + 10007 - 10, "0123456789", 10);
    buf_free(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_append(&b, "x", 1), 0); /* reusable after free */
    buf_free(&b);
}

static void test_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    assert_int_equal(buf_append_byte(&b, '9'), -ENOBUFS);
    assert_int_equal(b.len, 8);
    assert_true(b.cap <= 8);
    buf_consume(&b, 3);
    assert_true(str_eq(buf_str(&b), STR("45678")));
    assert_int_equal(buf_append(&b, "abcd", 4), -ENOBUFS); /* all or nothing */
    assert_int_equal(b.len, 5);
    assert_int_equal(buf_append(&b, "abc", 3), 0);
    assert_true(str_eq(buf_str(&b), STR("45678abc")));
    assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOBUFS);
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_printf(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_printf(&b, "%s/%d", "SIP", 2), 0);
    assert_true(str_eq(buf_str(&b), STR("SIP/2")));
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(buf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 5 + 1001);
    assert_int_equal(b.data[b.len - 1], ']');
    buf_free(&b);

    /* a long format that fits exactly, and one byte over the cap */
    buf_init(&b, 1000);
    assert_int_equal(buf_printf(&b, "%s", big), 0);
    assert_int_equal(b.len, 999);
    assert_int_equal(buf_printf(&b, "%s", "yz"), -ENOBUFS);
    assert_int_equal(b.len, 999);
    assert_int_equal(buf_printf(&b, "%s", "y"), 0);
    assert_int_equal(b.len, 1000);
    buf_free(&b);
}

static void test_hex_nul_over(void **state)
{
    (void)state;
    char mem[12];
    struct buf b = buf_over(mem, sizeof mem);
    assert_int_equal(buf_append_hex(&b, 0, 0), 0);
    assert_int_equal(buf_append_hex(&b, 0xabc, 4), 0);
    assert_int_equal(buf_append_hex(&b, 0x1f, 1), 0); /* width is a minimum */
    assert_int_equal(buf_nul(&b), 0);
    assert_string_equal(mem, "00abc1f");
    assert_int_equal(b.len, 7);
    assert_int_equal(buf_append_hex(&b, UINT64_MAX, 0), -ENOBUFS); /* 16 digits do not fit */
    assert_int_equal(b.len, 7);
    assert_int_equal(buf_append(&b, "xxxx", 4), 0); /* 11 of 12 */
    assert_int_equal(buf_nul(&b), 0);
    assert_string_equal(mem, "00abc1fxxxx");
    assert_int_equal(buf_append_byte(&b, 'y'), 0); /* 12 of 12: no room for the NUL */
    assert_int_equal(buf_nul(&b), -ENOBUFS);
    assert_ptr_equal(b.data, (uint8_t *)mem); /* never reallocated */
    assert_int_equal(buf_append_hex(&b, 1, 65), -EINVAL);
    struct buf g;
    buf_init(&g, 0);
    assert_int_equal(buf_append_hex(&g, 0xdeadbeefcafef00dull, 0), 0);
    assert_int_equal(buf_nul(&g), 0);
    assert_string_equal((char *)g.data, "deadbeefcafef00d");
    buf_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_hex_nul_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
