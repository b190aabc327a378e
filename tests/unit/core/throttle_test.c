/* Unit tests for src/core/throttle.c, driven by a fake clock (now passed in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>

#include "core/throttle.h"
#include "failalloc.h"

static struct throttle *mk(uint32_t max, uint32_t window, size_t keys)
{
    struct throttle *t = NULL;
    struct throttle_params p = {.max_failures = max, .window_s = window, .max_keys = keys};
    assert_int_equal(throttle_new(&t, &p), 0);
    return t;
}

static void test_limit_and_window(void **state)
{
    (void)state;
    struct throttle *t = mk(3, 60, 0);
    uint64_t now = 1000000;
    uint32_t ra = 99;
    str k = STR("alice@example.com");
    assert_false(throttle_check(t, k, now, &ra));
    assert_int_equal(ra, 0);
    assert_false(throttle_fail(t, k, now));
    assert_false(throttle_fail(t, k, now + 1000));
    assert_false(throttle_check(t, k, now + 1000, NULL));
    /* the third failure reaches the limit: throttled for 60 s from now */
    assert_true(throttle_fail(t, k, now + 2000));
    assert_true(throttle_check(t, k, now + 2000, &ra));
    assert_int_equal(ra, 60);
    assert_true(throttle_check(t, k, now + 61999, &ra));
    assert_int_equal(ra, 1);
    /* other keys are unaffected */
    assert_false(throttle_check(t, STR("bob@example.com"), now + 2000, NULL));
    assert_false(throttle_check(t, STR("Alice@example.com"), now + 2000, NULL));
    /* failures while throttled are not counted and do not extend it */
    assert_true(throttle_fail(t, k, now + 30000));
    assert_false(throttle_check(t, k, now + 62000, NULL));
    /* after the window: a fresh count */
    assert_false(throttle_fail(t, k, now + 62000));
    assert_false(throttle_fail(t, k, now + 62001));
    assert_true(throttle_fail(t, k, now + 62002));
    throttle_free(t);
}

static void test_window_slides(void **state)
{
    (void)state;
    struct throttle *t = mk(3, 10, 0);
    str k = STR("10.0.0.1");
    /* two failures, then the window passes: the count starts again */
    assert_false(throttle_fail(t, k, 0));
    assert_false(throttle_fail(t, k, 9999));
    assert_false(throttle_fail(t, k, 10000)); /* window from 0 over: count = 1 */
    assert_false(throttle_fail(t, k, 15000));
    assert_true(throttle_fail(t, k, 19999));
    assert_true(throttle_check(t, k, 29998, NULL));
    assert_false(throttle_check(t, k, 29999, NULL));
    throttle_free(t);
}

static void test_reset(void **state)
{
    (void)state;
    struct throttle *t = mk(2, 60, 0);
    str k = STR("carol");
    assert_false(throttle_fail(t, k, 0));
    throttle_reset(t, k); /* a success */
    assert_int_equal(throttle_count(t), 0);
    assert_false(throttle_fail(t, k, 1));
    assert_true(throttle_fail(t, k, 2));
    throttle_reset(t, k);
    assert_false(throttle_check(t, k, 3, NULL));
    throttle_reset(t, STR("nobody")); /* harmless */
    /* max_failures 1: the first failure throttles */
    struct throttle *t1 = mk(1, 5, 0);
    assert_true(throttle_fail(t1, k, 0));
    assert_true(throttle_check(t1, k, 4999, NULL));
    throttle_free(t1);
    throttle_free(t);
}

/* The table keeps at most max_keys keys; the oldest is forgotten first. */
static void test_bounded(void **state)
{
    (void)state;
    struct throttle *t = mk(2, 600, 160); /* 16 shards x 10 */
    char key[32];
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof key, "user%d", i);
        throttle_fail(t, str_cstr(key), (uint64_t)i);
    }
    assert_true(throttle_count(t) <= 160);
    assert_true(throttle_count(t) >= 100);
    /* the newest keys are remembered, the oldest forgotten */
    int newest = 0, oldest = 0;
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "user%d", 9999 - i);
        assert_true(throttle_fail(t, str_cstr(key), 10000));
        newest++;
    }
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "user%d", i);
        oldest += throttle_fail(t, str_cstr(key), 10000); /* first failure again */
    }
    assert_int_equal(newest, 50);
    assert_int_equal(oldest, 0);
    throttle_free(t);
}

static void test_addr_key(void **state)
{
    (void)state;
    uint8_t k1[16], k2[16];
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(5060)};
    inet_pton(AF_INET, "192.0.2.7", &a4.sin_addr);
    struct sockaddr_in6 m6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &m6.sin6_addr);
    str s1 = throttle_addr_key((struct sockaddr *)&a4, k1);
    str s2 = throttle_addr_key((struct sockaddr *)&m6, k2);
    assert_true(str_eq(s1, s2)); /* v4-mapped = v4, port ignored */
    assert_int_equal(s1.len, 4);
    struct sockaddr_in6 x = {.sin6_family = AF_INET6}, y = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8:1:2::1", &x.sin6_addr);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &y.sin6_addr);
    s1 = throttle_addr_key((struct sockaddr *)&x, k1);
    s2 = throttle_addr_key((struct sockaddr *)&y, k2);
    assert_true(str_eq(s1, s2)); /* same /64 */
    inet_pton(AF_INET6, "2001:db8:1:3::1", &y.sin6_addr);
    s2 = throttle_addr_key((struct sockaddr *)&y, k2);
    assert_false(str_eq(s1, s2));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(throttle_addr_key(&un, k1).len, 0);
}

struct worker {
    struct throttle *t;
    int id;
    int throttled;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", (i * 7 + w->id) % 200);
        if (throttle_check(w->t, str_cstr(key), (uint64_t)i, NULL))
            w->throttled++;
        else if (i % 1000 == 0)
            throttle_reset(w->t, str_cstr(key));
        else
            throttle_fail(w->t, str_cstr(key), (uint64_t)i);
    }
    return NULL;
}

/* Several threads on one small table: no crash, no leak, the bound holds. */
static void test_threads(void **state)
{
    (void)state;
    struct throttle *t = mk(5, 60, 256);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){t, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_true(throttle_count(t) <= 256);
    assert_true(w[0].throttled + w[1].throttled + w[2].throttled + w[3].throttled > 0);
    throttle_free(t);
}

static void test_alloc_failures(void **state)
{
    (void)state;
    if (!FAILALLOC_ACTIVE)
        skip();
    struct throttle *t = NULL;
    struct throttle_params p = {.max_failures = 1};
    for (long k = 0;; k++) {
        failalloc_arm(k);
        int rc = throttle_new(&t, &p);
        failalloc_disarm();
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_null(t);
    }
    /* no memory for a new key: the failure is lost, nothing is throttled on a guess */
    failalloc_arm(0);
    bool th = throttle_fail(t, STR("x"), 0);
    failalloc_disarm();
    assert_false(th);
    assert_int_equal(throttle_count(t), 0);
    assert_true(throttle_fail(t, STR("x"), 0));
    throttle_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_and_window),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_addr_key),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
