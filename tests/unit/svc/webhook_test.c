/* Unit tests for src/svc/webhook.c against a real HTTP receiver (tests/apps/hook_server.py,
 * Python standard library) on 127.0.0.1:18210: signature, answer body, retries with
 * back-off on 503, no retry on 404, timeout, refused connection, capped answers, free with
 * POSTs in flight. */
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
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "svc/webhook.h"

#define PORT "18210"
static pid_t server;
static char logpath[256];

static bool port_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(18210)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    char script[512];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *cut = strstr(script, "/unit/svc/");
    if (!cut)
        return -1;
    strcpy(cut, "/apps/hook_server.py");
    snprintf(logpath, sizeof logpath, "/tmp/rtcd-webhook-test-%d.log", (int)getpid());
    server = fork();
    if (server == 0) {
        execlp("python3", "python3", script, PORT, logpath, "s3cret", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100 && !port_open(); i++)
        usleep(50000);
    return port_open() ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    unlink(logpath);
    webhook_global_cleanup();
    return 0;
}

struct result {
    int calls;
    int rc;
    long status;
    unsigned attempts;
    char ctype[64];
    char body[512];
    size_t body_len;
};

static void done(void *arg, int rc, long status, str ctype, str body, unsigned attempts)
{
    struct result *r = arg;
    r->calls++;
    r->rc = rc;
    r->status = status;
    r->attempts = attempts;
    snprintf(r->ctype, sizeof r->ctype, "%.*s", STR_FMT(ctype));
    r->body_len = body.len;
    snprintf(r->body, sizeof r->body, "%.*s", STR_FMT(body));
}

static struct webhook *mk(uv_loop_t *loop, uint32_t timeout, uint32_t retries, uint32_t max_resp)
{
    struct webhook *wh;
    struct webhook_opts o = {
        .timeout_ms = timeout, .retries = retries, .backoff_ms = 100, .max_response = max_resp};
    assert_int_equal(webhook_new(&wh, loop, &o), 0);
    return wh;
}

static void run_until(uv_loop_t *loop, struct result *r, int n)
{
    for (int i = 0; i < 20000 && r->calls < n; i++)
        uv_run(loop, UV_RUN_ONCE);
}

static void finish(uv_loop_t *loop, struct webhook *wh)
{
    webhook_free(wh);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_sign_vector(void **state)
{
    (void)state;
    /* RFC 4231 test case 2 */
    char out[72];
    assert_int_equal(webhook_sign(STR("Jefe"), STR("what do ya want for nothing?"), out), 0);
    assert_string_equal(out,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_ok_signed(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct webhook *wh = mk(&loop, 3000, 0, 0);
    struct result r = {0}, bad = {0};
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/ok", STR("{\"a\":1}"), STR("s3cret"), done, &r),
        0);
    assert_int_equal(webhook_post(wh, "http://127.0.0.1:" PORT "/ok", STR("{\"a\":2}"),
                                  STR("wrong"), done, &bad),
                     0);
    run_until(&loop, &r, 1);
    run_until(&loop, &bad, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    assert_non_null(strstr(r.body, "\"sig_ok\": true"));
    assert_non_null(strstr(r.body, "{\\\"a\\\":1}"));
    assert_non_null(strstr(bad.body, "\"sig_ok\": false"));
    assert_int_equal(webhook_post(wh, "ftp://127.0.0.1/x", STR("{}"), STR(""), done, &r), -EINVAL);
    finish(&loop, wh);
}

static void test_retries(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct webhook *wh = mk(&loop, 3000, 3, 0);
    struct result ok = {0}, gone = {0}, nf = {0};
    /* 503 twice, then 200 */
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/flaky/2", STR("{}"), STR("k"), done, &ok), 0);
    /* 503 more often than there are retries */
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/flaky/9", STR("{}"), STR("k"), done, &gone), 0);
    /* 404: no retry */
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/status/404", STR("{}"), STR("k"), done, &nf),
        0);
    run_until(&loop, &ok, 1);
    run_until(&loop, &gone, 1);
    run_until(&loop, &nf, 1);
    assert_int_equal(ok.rc, 0);
    assert_int_equal(ok.status, 200);
    assert_int_equal(ok.attempts, 3);
    assert_string_equal(ok.body, "ok after 3");
    assert_int_equal(gone.rc, 0);
    assert_int_equal(gone.status, 503);
    assert_int_equal(gone.attempts, 4);
    assert_int_equal(nf.status, 404);
    assert_int_equal(nf.attempts, 1);
    finish(&loop, wh);
}

static void test_failures(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct webhook *wh = mk(&loop, 500, 1, 1000);
    struct result slow = {0}, refused = {0}, big = {0};
    uint64_t t0 = uv_hrtime();
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/slow", STR("{}"), STR("k"), done, &slow), 0);
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:18211/none", STR("{}"), STR("k"), done, &refused), 0);
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/big", STR("{}"), STR("k"), done, &big), 0);
    run_until(&loop, &slow, 1);
    run_until(&loop, &refused, 1);
    run_until(&loop, &big, 1);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(slow.rc, -ETIMEDOUT);
    assert_int_equal(slow.attempts, 2);
    assert_true(ms >= 1000 && ms < 2900); /* two 500 ms attempts, not the server's 3 s */
    assert_int_equal(refused.rc, -ECONNREFUSED);
    assert_int_equal(refused.attempts, 2);
    assert_int_equal(big.rc, -EMSGSIZE);
    finish(&loop, wh);
}

static void test_free_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct webhook *wh = mk(&loop, 5000, 2, 0);
    struct result a = {0}, b = {0};
    assert_int_equal(
        webhook_post(wh, "http://127.0.0.1:" PORT "/slow", STR("{}"), STR("k"), done, &a), 0);
    assert_int_equal(webhook_post(wh, "http://127.0.0.1:18211/none", STR("{}"), STR("k"), done, &b),
                     0);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    usleep(300000);
    for (int i = 0; i < 50; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* b is now waiting to retry */
    finish(&loop, wh);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, -ECANCELED);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.rc, -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_vector),    cmocka_unit_test(test_ok_signed),
        cmocka_unit_test(test_retries),        cmocka_unit_test(test_failures),
        cmocka_unit_test(test_free_in_flight),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
