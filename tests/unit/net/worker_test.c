/* Unit tests for src/net/worker.c: start, hooks, cross-thread tasks, stop. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>
#include <unistd.h>

#include "net/worker.h"

struct ctx {
    atomic_int started, stopped, ran;
    atomic_int wrong_thread;
    uv_timer_t timers[8];
};

static void on_start(struct worker *w, void *c_)
{
    struct ctx *c = c_;
    atomic_fetch_add(&c->started, 1);
    worker_set_data(w, (void *)pthread_self());
    /* a handle opened on start must not keep the loop from stopping */
    uv_timer_t *t = &c->timers[worker_index(w)];
    uv_timer_init(worker_loop(w), t);
}

static void on_stop(struct worker *w, void *c_)
{
    struct ctx *c = c_;
    atomic_fetch_add(&c->stopped, 1);
    uv_close((uv_handle_t *)&c->timers[worker_index(w)], NULL);
}

static void task(struct worker *w, void *arg)
{
    struct ctx *c = worker_ctx(w);
    if ((pthread_t)worker_data(w) != pthread_self())
        atomic_fetch_add(&c->wrong_thread, 1);
    atomic_fetch_add(&c->ran, 1);
    (void)arg;
}

static void test_pool(void **state)
{
    (void)state;
    static struct ctx c;
    struct worker_hooks hooks = { on_start, on_stop, &c };
    struct worker_pool *p;
    assert_int_equal(worker_pool_start(&p, 3, &hooks), 0);
    assert_int_equal(worker_pool_size(p), 3);
    assert_int_equal(atomic_load(&c.started), 3);
    assert_null(worker_pool_get(p, 3));
    for (int i = 0; i < 3000; i++)
        assert_int_equal(worker_post(worker_pool_get(p, (unsigned)i % 3), task, NULL), 0);
    for (int i = 0; i < 500 && atomic_load(&c.ran) < 3000; i++)
        usleep(2000);
    assert_int_equal(atomic_load(&c.ran), 3000);
    assert_int_equal(atomic_load(&c.wrong_thread), 0);
    worker_pool_stop(p);
    assert_int_equal(atomic_load(&c.stopped), 3);
}

static void test_default_size(void **state)
{
    (void)state;
    struct worker_pool *p;
    assert_int_equal(worker_pool_start(&p, 0, NULL), 0);
    assert_int_equal(worker_pool_size(p), (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    worker_pool_stop(p);
    worker_pool_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_default_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
