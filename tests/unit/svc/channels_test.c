/* Unit tests for src/svc/channels.c: order per channel, fan-out counts, bounded queues and
 * dropping a slow subscriber without slowing the others, limits, concurrent publishers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "svc/channels.h"

struct owner {
    int wakes;
    int closed;
    char reason[128];
};

static void on_wake(void *ctx)
{
    ((struct owner *)ctx)->wakes++;
}

static void on_closed(void *ctx, const char *why)
{
    struct owner *o = ctx;
    o->closed++;
    snprintf(o->reason, sizeof o->reason, "%s", why);
}

static const struct chan_sub_ops ops = {on_wake, on_closed};

static void test_order_and_format(void **state)
{
    (void)state;
    struct chan_hub *h;
    struct chan_limits lim = {.max_queue = 16};
    assert_int_equal(chan_hub_new(&h, &lim), 0);
    struct owner oa = {0}, ob = {0};
    struct chan_sub *a, *b;
    assert_int_equal(chan_sub_new(&a, h, &ops, &oa), 0);
    assert_int_equal(chan_sub_new(&b, h, &ops, &ob), 0);
    assert_int_equal(chan_subscribe(a, STR("news")), 0);
    assert_int_equal(chan_subscribe(a, STR("news")), -EALREADY);
    assert_int_equal(chan_subscribe(b, STR("news")), 0);
    assert_int_equal(chan_subscribe(b, STR("other")), 0);
    assert_int_equal(chan_count(h, STR("news")), 2);
    struct chan_publish_result r;
    for (int i = 0; i < 5; i++) {
        char p[32];
        snprintf(p, sizeof p, "{\"n\":%d}", i);
        assert_int_equal(chan_publish(h, STR("news"), STR("app:x"), str_cstr(p), &r), 0);
        assert_int_equal(r.seq, (uint64_t)i + 1);
        assert_int_equal(r.delivered, 2);
    }
    assert_int_equal(chan_publish(h, STR("other"), STR("user:bob"), STR("\"hi\""), &r), 0);
    assert_int_equal(r.seq, 1);
    assert_int_equal(r.delivered, 1);
    assert_int_equal(oa.wakes, 1); /* woken once: the queue went non-empty once */
    for (int i = 0; i < 5; i++) {
        struct chan_msg *m = chan_sub_pop(a);
        assert_non_null(m);
        assert_int_equal(m->seq, (uint64_t)i + 1);
        char want[160];
        snprintf(want, sizeof want,
                 "{\"op\":\"message\",\"channel\":\"news\",\"seq\":%d,\"from\":\"app:x\","
                 "\"data\":{\"n\":%d}}",
                 i + 1, i);
        assert_string_equal(m->data, want);
        assert_int_equal(m->len, strlen(want));
        assert_true(str_eq(m->channel, STR("news")));
        char pl[16];
        snprintf(pl, sizeof pl, "{\"n\":%d}", i);
        assert_true(str_eq(m->payload, str_cstr(pl)));
        chan_msg_unref(m);
    }
    assert_null(chan_sub_pop(a));
    assert_int_equal(chan_sub_queued(b), 6);
    assert_int_equal(chan_unsubscribe(b, STR("news")), 0);
    assert_int_equal(chan_unsubscribe(b, STR("news")), -ENOENT);
    assert_int_equal(chan_publish(h, STR("news"), STR("app:x"), STR("1"), &r), 0);
    assert_int_equal(r.delivered, 1);
    assert_int_equal(r.seq, 6);
    chan_sub_free(a);
    chan_sub_free(b); /* frees its 6 queued references */
    assert_int_equal(chan_count(h, STR("news")), 0);
    chan_hub_free(h);
}

static void test_slow_subscriber_dropped(void **state)
{
    (void)state;
    struct chan_hub *h;
    struct chan_limits lim = {.max_queue = 4};
    assert_int_equal(chan_hub_new(&h, &lim), 0);
    struct owner of = {0}, os = {0};
    struct chan_sub *fast, *slow;
    assert_int_equal(chan_sub_new(&fast, h, &ops, &of), 0);
    assert_int_equal(chan_sub_new(&slow, h, &ops, &os), 0);
    assert_int_equal(chan_subscribe(fast, STR("c")), 0);
    assert_int_equal(chan_subscribe(slow, STR("c")), 0);
    assert_int_equal(chan_subscribe(slow, STR("d")), 0);
    struct chan_publish_result r;
    size_t dropped = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(chan_publish(h, STR("c"), STR("app:x"), STR("true"), &r), 0);
        dropped += r.dropped;
        struct chan_msg *m = chan_sub_pop(fast); /* fast keeps up */
        assert_non_null(m);
        assert_int_equal(m->seq, (uint64_t)i + 1);
        chan_msg_unref(m);
    }
    assert_int_equal(dropped, 1);
    assert_int_equal(os.closed, 1);
    assert_non_null(strstr(os.reason, "slow consumer"));
    assert_true(chan_sub_dropped(slow));
    assert_int_equal(of.closed, 0);
    assert_int_equal(chan_subscribe(slow, STR("e")), -EPIPE);
    /* other channels skip it too */
    assert_int_equal(chan_publish(h, STR("d"), STR("app:x"), STR("1"), &r), 0);
    assert_int_equal(r.delivered, 0);
    chan_sub_free(slow);
    chan_sub_free(fast);
    chan_hub_free(h);
}

static void test_limits(void **state)
{
    (void)state;
    struct chan_hub *h;
    struct chan_limits lim = {.max_subs = 2, .max_channel_subs = 1, .max_payload = 10};
    assert_int_equal(chan_hub_new(&h, &lim), 0);
    struct owner o = {0};
    struct chan_sub *a, *b;
    assert_int_equal(chan_sub_new(&a, h, &ops, &o), 0);
    assert_int_equal(chan_sub_new(&b, h, &ops, &o), 0);
    assert_int_equal(chan_subscribe(a, STR("x")), 0);
    assert_int_equal(chan_subscribe(a, STR("y")), 0);
    assert_int_equal(chan_subscribe(a, STR("z")), -EMLINK);
    assert_int_equal(chan_subscribe(b, STR("x")), -EUSERS);
    assert_int_equal(chan_publish(h, STR("x"), STR("app:x"), STR("12345678901"), NULL), -EMSGSIZE);
    assert_int_equal(chan_publish(h, STR("x"), STR("a\"b"), STR("1"), NULL), -EINVAL);
    assert_int_equal(chan_publish(h, STR("x"), STR("app:x"), STR(""), NULL), -EINVAL);
    chan_sub_free(a);
    chan_sub_free(b);
    chan_hub_free(h);
}

/* Several publishers on one channel: every subscriber sees the same sequence, gap-free. */
struct pub_arg {
    struct chan_hub *h;
    int n;
};

static void *publisher(void *arg)
{
    struct pub_arg *p = arg;
    for (int i = 0; i < p->n; i++)
        chan_publish(p->h, STR("t"), STR("app:p"), STR("0"), NULL);
    return NULL;
}

static void test_concurrent_publishers(void **state)
{
    (void)state;
    struct chan_hub *h;
    struct chan_limits lim = {.max_queue = 5000};
    assert_int_equal(chan_hub_new(&h, &lim), 0);
    struct owner o1 = {0}, o2 = {0};
    struct chan_sub *s1, *s2;
    assert_int_equal(chan_sub_new(&s1, h, NULL, &o1), 0);
    assert_int_equal(chan_sub_new(&s2, h, &ops, &o2), 0);
    assert_int_equal(chan_subscribe(s1, STR("t")), 0);
    assert_int_equal(chan_subscribe(s2, STR("t")), 0);
    pthread_t th[4];
    struct pub_arg pa = {h, 1000};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, publisher, &pa);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (uint64_t want = 1; want <= 4000; want++) {
        struct chan_msg *m1 = chan_sub_pop(s1), *m2 = chan_sub_pop(s2);
        assert_non_null(m1);
        assert_non_null(m2);
        assert_int_equal(m1->seq, want);
        assert_ptr_equal(m1, m2); /* one formatted message shared by both queues */
        chan_msg_unref(m1);
        chan_msg_unref(m2);
    }
    assert_null(chan_sub_pop(s1));
    chan_sub_free(s1);
    chan_sub_free(s2);
    chan_hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_format),
        cmocka_unit_test(test_slow_subscriber_dropped),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_concurrent_publishers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
