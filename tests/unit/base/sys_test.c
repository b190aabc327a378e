/* Unit tests for src/base/log.c, clock.c and random.c */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/random.h"

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[65536];
    size_t n = fread(data, 1, sizeof data - 1, f);
    data[n] = '\0';
    fclose(f);
    return data;
}

static void test_log(void **state)
{
    (void)state;
    char path[] = "/tmp/rtcd-logtest.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(log_open(path, LOG_INFO), 0);
    log_debug("t", "hidden %d", 1);
    log_info("t", "shown %d", 2);
    log_warn("mod", "two\nlines");
    log_error("mod", "%s", "err");
    log_set_level(LOG_ERROR);
    log_warn("mod", "hidden too");
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_error("big", "%s", big);
    log_close();
    char *s = read_file(path);
    unlink(path);
    assert_null(strstr(s, "hidden"));
    assert_non_null(strstr(s, "INFO  t: shown 2\n"));
    assert_non_null(strstr(s, "WARN  mod: two lines\n"));
    assert_non_null(strstr(s, "ERROR mod: err\n"));
    /* one line per event, each starting with an ISO-8601 UTC timestamp */
    int lines = 0;
    for (char *p = s; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
    assert_true(strlen(s) > 24 && s[4] == '-' && s[10] == 'T' && s[23] == 'Z');
    /* the long line is truncated but still ends with a newline */
    char *last = strstr(s, "ERROR big:");
    assert_non_null(last);
    assert_non_null(strchr(last, '\n'));

    enum log_level l;
    assert_int_equal(log_level_parse(STR("WARNING"), &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse(STR("debug"), &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse(STR("loud"), &l), -EINVAL);
    assert_int_equal(log_open("/nonexistent/dir/x.log", LOG_INFO), -ENOENT);
    log_set_level(LOG_INFO);
}

static void test_clock(void **state)
{
    (void)state;
    uint64_t a = clock_mono_us();
    usleep(2000);
    uint64_t b = clock_mono_us();
    assert_true(b >= a + 2000);
    assert_true(clock_mono_ms() >= a / 1000);
    /* after 2020-01-01 */
    assert_true(clock_wall_ms() > 1577836800000ULL);
    assert_true(clock_now(&clock_system) >= b / 1000);
}

static void test_random(void **state)
{
    (void)state;
    unsigned char a[32] = { 0 }, b[32] = { 0 };
    assert_int_equal(random_bytes(a, sizeof a), 0);
    assert_int_equal(random_bytes(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(random_bytes(a, 0), 0);
    assert_true(random_u64() != random_u64());
    for (int i = 0; i < 1000; i++)
        assert_true(random_below(7) < 7);
    assert_int_equal(random_below(1), 0);
    char tok[33];
    assert_int_equal(random_token(tok, 32), 0);
    assert_int_equal(strlen(tok), 32);
    for (int i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                               tok[i]));
    /* rough uniformity: each of 62 symbols appears in 62,000 draws */
    static char many[62001];
    assert_int_equal(random_token(many, 62000), 0);
    int counts[256] = { 0 };
    for (int i = 0; i < 62000; i++)
        counts[(unsigned char)many[i]]++;
    for (const char *p = "0aZ9zA"; *p; p++)
        assert_true(counts[(unsigned char)*p] > 700 && counts[(unsigned char)*p] < 1300);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log),
        cmocka_unit_test(test_clock),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
