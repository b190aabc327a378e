/*
 * Unit tests for src/http/parse.c: the HTTP/1.1 request head parser. Every input
 * is placed against a guard page, so a one-byte over-read faults.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "http/http.h"
#include "sip/guard.h"

#define MAXH 16
static struct http_header hdrs[MAXH];
static const struct http_limits lim = { .max_head = 1024, .max_headers = MAXH };

/* The last input stays mapped until the next parse (the results point into it). */
static struct guarded last;

static ssize_t parse(const char *text, struct http_request *r)
{
    if (last.map)
        guard_free(&last);
    struct guarded g = guard_copy(text, strlen(text));
    ssize_t n = http_parse_request(g.p, g.len, &lim, r, hdrs);
    /* every slice inside the input */
    for (size_t i = 0; n > 0 && i < r->nhdrs; i++) {
        assert_true(r->hdrs[i].name.s >= g.p && r->hdrs[i].name.s + r->hdrs[i].name.len <= g.p + g.len);
        assert_true(r->hdrs[i].value.s >= g.p &&
                    r->hdrs[i].value.s + r->hdrs[i].value.len <= g.p + g.len);
    }
    last = g;
    return n;
}

static void test_simple_get(void **state)
{
    (void)state;
    struct http_request r;
    const char *t = "GET /a/b?x=1&y=%20z HTTP/1.1\r\nHost: example\r\nX-Y:  v v \r\n\r\n";
    struct guarded g = guard_copy(t, strlen(t));
    ssize_t n = http_parse_request(g.p, g.len, &lim, &r, hdrs);
    assert_int_equal(n, (ssize_t)strlen(t));
    assert_int_equal(r.method, HTTP_GET);
    assert_true(str_eq(r.path, STR("/a/b")));
    assert_true(str_eq(r.query, STR("x=1&y=%20z")));
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.nhdrs, 2);
    assert_true(str_eq(http_header_get(&r, STR("x-y")), STR("v v")));
    assert_true(str_eq(http_query_get(r.query, STR("y")), STR("%20z")));
    assert_null(http_query_get(r.query, STR("z")).s);
    assert_true(r.keep_alive);
    assert_int_equal(r.content_length, -1);
    guard_free(&g);
}

static void test_incomplete_at_every_length(void **state)
{
    (void)state;
    const char *t = "POST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n";
    size_t len = strlen(t);
    for (size_t i = 0; i < len; i++) {
        struct http_request r;
        struct guarded g = guard_copy(t, i);
        ssize_t n = http_parse_request(g.p, g.len, &lim, &r, hdrs);
        assert_int_equal(n, -EAGAIN);
        guard_free(&g);
    }
    struct http_request r;
    assert_int_equal(parse(t, &r), (ssize_t)len);
    assert_int_equal(r.content_length, 5);
    assert_int_equal(r.method, HTTP_POST);
}

static void expect_error(const char *t, uint16_t status)
{
    struct http_request r;
    ssize_t n = parse(t, &r);
    if (n != -EINVAL || r.err_status != status)
        fail_msg("%s: got %zd status %u (%s)", t, n, r.err_status,
                 r.err_reason ? r.err_reason : "");
    assert_non_null(r.err_reason);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("GET / HTTP/1.1\r\n\r\n", 400);                        /* no Host */
    expect_error("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    expect_error("GET / HTTP/1.1\nHost: a\r\n\r\n", 400);               /* bare LF */
    expect_error("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);            /* space before colon */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400);  /* obs-fold */
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
    expect_error("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n", 400);
    expect_error("GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417);
    expect_error("GET /#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_error("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n", 400);
}

static void test_limits(void **state)
{
    (void)state;
    char big[2048];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    big[sizeof big - 1] = 0;
    expect_error(big, 431); /* no end of line within max_head */
    char many[2048];
    size_t o = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MAXH + 1; i++)
        o += (size_t)snprintf(many + o, sizeof many - o, "X%d: v\r\n", i);
    snprintf(many + o, sizeof many - o, "\r\n");
    expect_error(many, 431);
    /* exactly at the limit is fine */
    struct http_request r;
    char head[1024];
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t pl = strlen(pre);
    memcpy(head, pre, pl);
    memset(head + pl, 'v', sizeof head - pl - 4);
    memcpy(head + sizeof head - 4, "\r\n\r\n", 4);
    struct guarded g = guard_copy(head, sizeof head);
    assert_int_equal(http_parse_request(g.p, g.len, &lim, &r, hdrs), (ssize_t)sizeof head);
    guard_free(&g);
}

static void test_connection_semantics(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0);
    assert_true(r.keep_alive);
    assert_true(parse("GET /sip HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                      "Upgrade: websocket\r\n\r\n", &r) > 0);
    assert_true(r.upgrade);
    assert_true(parse("GET /sip HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &r) > 0);
    assert_false(r.upgrade); /* Upgrade without Connection: upgrade does not count */
    assert_true(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n", &r) > 0);
    assert_true(r.expect_continue);
    assert_true(parse("BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", &r) > 0);
    assert_int_equal(r.method, HTTP_OTHER);
    assert_true(str_eq(r.method_name, STR("BREW")));
    assert_true(parse("GET http://h:8080/p?q HTTP/1.1\r\nHost: h\r\n\r\n", &r) > 0);
    assert_true(str_eq(r.path, STR("/p")));
    assert_true(str_eq(r.query, STR("q")));
}

static void test_pipelined(void **state)
{
    (void)state;
    const char *t = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http_request r;
    struct guarded g = guard_copy(t, strlen(t));
    ssize_t n = http_parse_request(g.p, g.len, &lim, &r, hdrs);
    assert_int_equal(n, (ssize_t)strlen(t) / 2);
    assert_true(str_eq(r.path, STR("/1")));
    ssize_t m = http_parse_request(g.p + n, g.len - (size_t)n, &lim, &r, hdrs);
    assert_int_equal(m, n);
    assert_true(str_eq(r.path, STR("/2")));
    guard_free(&g);
}

static void test_pct_decode(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(http_pct_decode(STR("/a%20b+c"), out, sizeof out, false), 6);
    assert_string_equal(out, "/a b+c");
    assert_int_equal(http_pct_decode(STR("a+b%2Fc"), out, sizeof out, true), 5);
    assert_string_equal(out, "a b/c");
    assert_int_equal(http_pct_decode(STR("%2"), out, sizeof out, false), -EINVAL);
    assert_int_equal(http_pct_decode(STR("%zz"), out, sizeof out, false), -EINVAL);
    assert_int_equal(http_pct_decode(STR("a%00"), out, sizeof out, false), -EINVAL);
    assert_int_equal(http_pct_decode(STR("abcdef"), out, 4, false), -ENOSPC);
    assert_true(http_list_has(STR("a, Upgrade ,b"), STR("upgrade")));
    assert_false(http_list_has(STR("upgrades"), STR("upgrade")));
    assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
}

static void test_chunked(void **state)
{
    (void)state;
    const char *t = "4\r\nWiki\r\n5;x=y\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nT: v\r\n\r\nNEXT";
    size_t len = strlen(t) - 4, bl = 0;
    const char *why;
    char out[64];
    for (size_t i = 0; i < len; i++) { /* every prefix is incomplete */
        struct guarded g = guard_copy(t, i);
        assert_int_equal(http_chunked(g.p, g.len, 64, NULL, &bl, &why), -EAGAIN);
        guard_free(&g);
    }
    struct guarded g = guard_copy(t, strlen(t));
    assert_int_equal(http_chunked(g.p, g.len, 64, out, &bl, &why), (ssize_t)len);
    assert_int_equal(bl, 23);
    assert_memory_equal(out, "Wikipedia in\r\n\r\nchunks.", 23);
    assert_int_equal(http_chunked(g.p, g.len, 10, NULL, &bl, &why), -EMSGSIZE);
    guard_free(&g);
    assert_int_equal(http_chunked("x\r\n", 3, 64, NULL, &bl, &why), -EINVAL);
    assert_int_equal(http_chunked("1\r\nab\r\n", 7, 64, NULL, &bl, &why), -EINVAL);
    assert_int_equal(http_chunked("1\n", 2, 64, NULL, &bl, &why), -EINVAL);
    assert_int_equal(http_chunked("ffffffffffffffff\r\n", 18, 64, NULL, &bl, &why), -EINVAL);
    assert_int_equal(http_chunked("0\r\n\r\n", 5, 64, NULL, &bl, &why), 5);
    assert_int_equal(bl, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_incomplete_at_every_length),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_connection_semantics),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_chunked),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (last.map)
        guard_free(&last);
    return rc;
}
