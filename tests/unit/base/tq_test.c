/* tq: FIFO lists per delay, the sorted overflow list, removal, and a random
 * comparison with a naive scan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/tq.h"

static void test_empty(void **state)
{
    (void)state;
    struct tq q;
    tq_init(&q);
    assert_true(tq_next(&q) == UINT64_MAX);
    assert_null(tq_pop(&q, UINT64_MAX - 1));
    struct tq_node n = { 0 };
    assert_false(tq_queued(&n));
    tq_del(&q, &n); /* not queued: nothing */
    assert_int_equal(q.count, 0);
}

static void test_order_across_lists(void **state)
{
    (void)state;
    struct tq q;
    tq_init(&q);
    struct tq_node a, b, c, d;
    tq_node_init(&a, 0), tq_node_init(&b, 0), tq_node_init(&c, 0), tq_node_init(&d, 0);
    tq_add(&q, &a, 0, 32000); /* delay 32000 */
    tq_add(&q, &b, 0, 500);   /* delay 500 */
    tq_add(&q, &c, 100, 600); /* delay 500, after b */
    tq_add(&q, &d, 100, 100); /* delay 0 */
    assert_int_equal(q.count, 4);
    assert_true(tq_next(&q) == 100);
    assert_null(tq_pop(&q, 99));
    assert_ptr_equal(tq_pop(&q, 100), &d);
    assert_false(tq_queued(&d));
    assert_null(tq_pop(&q, 499));
    assert_ptr_equal(tq_pop(&q, 10000), &b);
    assert_ptr_equal(tq_pop(&q, 10000), &c);
    assert_null(tq_pop(&q, 10000));
    assert_true(tq_next(&q) == 32000);
    assert_ptr_equal(tq_pop(&q, 32000), &a);
    assert_int_equal(q.count, 0);
    assert_true(tq_next(&q) == UINT64_MAX);
}

static void test_move_and_delete(void **state)
{
    (void)state;
    struct tq q;
    tq_init(&q);
    struct tq_node n[3];
    for (int i = 0; i < 3; i++) {
        tq_node_init(&n[i], 0);
        tq_add(&q, &n[i], (uint64_t)i, (uint64_t)i + 1000);
    }
    tq_del(&q, &n[1]); /* middle */
    tq_del(&q, &n[1]); /* twice: nothing */
    assert_int_equal(q.count, 2);
    tq_add(&q, &n[0], 5, 5 + 4000); /* moved to another list */
    assert_int_equal(q.count, 2);
    assert_ptr_equal(tq_pop(&q, 1002), &n[2]);
    assert_null(tq_pop(&q, 3999));
    assert_ptr_equal(tq_pop(&q, 4005), &n[0]);
    assert_int_equal(q.count, 0);
}

static void test_overflow_list_sorted(void **state)
{
    (void)state;
    struct tq q;
    tq_init(&q);
    enum { N = 200 };
    static struct tq_node n[N];
    /* N distinct delays: most go to the sorted list, in an order unlike their expiry */
    for (unsigned i = 0; i < N; i++) {
        tq_node_init(&n[i], 0);
        tq_add(&q, &n[i], 0, (uint64_t)((i * 7919u) % N) + 1);
    }
    uint64_t last = 0;
    for (unsigned i = 0; i < N; i++) {
        struct tq_node *x = tq_pop(&q, UINT64_MAX - 1);
        assert_non_null(x);
        assert_true(x->at >= last);
        last = x->at;
    }
    assert_null(tq_pop(&q, UINT64_MAX - 1));
}

static void test_clock_going_back(void **state)
{
    (void)state;
    struct tq q;
    tq_init(&q);
    struct tq_node a, b, c;
    tq_node_init(&a, 0), tq_node_init(&b, 0), tq_node_init(&c, 0);
    tq_add(&q, &a, 1000, 1500);
    tq_add(&q, &b, 900, 1400); /* same delay, earlier expiry: not after a in its list */
    tq_add(&q, &c, 2000, 1000); /* already due */
    assert_ptr_equal(tq_pop(&q, 2000), &c);
    assert_ptr_equal(tq_pop(&q, 2000), &b);
    assert_ptr_equal(tq_pop(&q, 2000), &a);
}

/* random starts, stops and moves against a naive model: pops come in expiry order */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { N = 500 };
    static struct tq_node n[N];
    static const uint64_t delays[] = { 0, 500, 1000, 2000, 4000, 5000, 32000, 180000 };
    struct tq q;
    tq_init(&q);
    for (unsigned i = 0; i < N; i++)
        tq_node_init(&n[i], 0);
    srand(7);
    uint64_t now = 0;
    size_t fired = 0;
    for (int step = 0; step < 200000; step++) {
        unsigned i = (unsigned)rand() % N;
        int op = rand() % 10;
        if (op < 5) {
            uint64_t d = (op == 0) ? (uint64_t)(rand() % 100000) : delays[rand() % 8];
            tq_add(&q, &n[i], now, now + d);
        } else if (op < 6) {
            tq_del(&q, &n[i]);
        } else {
            now += (uint64_t)(rand() % 300);
            uint64_t expect = UINT64_MAX;
            size_t queued = 0;
            for (unsigned k = 0; k < N; k++)
                if (tq_queued(&n[k])) {
                    queued++;
                    if (n[k].at < expect)
                        expect = n[k].at;
                }
            assert_int_equal(q.count, queued);
            assert_true(tq_next(&q) == expect);
            struct tq_node *x;
            uint64_t last = 0;
            while ((x = tq_pop(&q, now))) {
                assert_true(x->at <= now);
                assert_true(x->at >= last);
                last = x->at;
                fired++;
            }
            assert_true(tq_next(&q) > now);
        }
    }
    assert_true(fired > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_order_across_lists),
        cmocka_unit_test(test_move_and_delete),
        cmocka_unit_test(test_overflow_list_sorted),
        cmocka_unit_test(test_clock_going_back),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
