/*
 * Tests for src/net/net.c on loopback (ports 15070-15079): UDP and TCP
 * receive and send, stream framing, keep-alives, size and connection caps,
 * idle timeout, sending on a flow owned by another worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/config.h"
#include "net/net.h"

struct env {
    struct net *net;
    struct worker_pool *pool;
    struct net_worker *nw[4];
    atomic_int closed_flows;
    atomic_int received;
    int start_rc;
};

/* Messages end with '\n'. "fwd:" asks the other worker to send the echo. */
static ssize_t frame_lines(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    const char *nl = memchr(data, '\n', len);
    if (!nl)
        return 0;
    if (data[0] == '!')
        return -EPROTO;
    return nl - data + 1;
}

struct fwd {
    struct env *e;
    uint64_t flow;
    char text[64];
};

static void fwd_task(struct worker *w, void *arg)
{
    struct fwd *f = arg;
    struct net_dest d = { .transport = TRANSPORT_TCP, .flow_id = f->flow };
    net_send(f->e->nw[worker_index(w)], &d, f->text, strlen(f->text));
    free(f);
}

static void on_recv(void *ctx, struct net_worker *nw, const struct net_rx *rx)
{
    struct env *e = ctx;
    atomic_fetch_add(&e->received, 1);
    struct net_dest d = { .transport = rx->transport, .addr = rx->src, .addrlen = rx->srclen,
                          .flow_id = rx->flow_id };
    if (rx->len > 4 && memcmp(rx->data, "fwd:", 4) == 0) {
        unsigned me = worker_index(net_worker_worker(nw));
        unsigned other = (me + 1) % worker_pool_size(e->pool);
        struct fwd *f = calloc(1, sizeof *f);
        f->e = e;
        f->flow = rx->flow_id;
        snprintf(f->text, sizeof f->text, "from-%u:%.*s", other, (int)rx->len, rx->data);
        worker_post(worker_pool_get(e->pool, other), fwd_task, f);
        return;
    }
    char out[256];
    int n = snprintf(out, sizeof out, "echo:%.*s", (int)rx->len, rx->data);
    net_send(nw, &d, out, (size_t)n);
}

static void on_closed(void *ctx, struct net_worker *nw, uint64_t id)
{
    (void)nw;
    (void)id;
    atomic_fetch_add(&((struct env *)ctx)->closed_flows, 1);
}

static void on_start(struct worker *w, void *ctx)
{
    struct env *e = ctx;
    int rc = net_worker_start(e->net, w, &e->nw[worker_index(w)]);
    if (rc < 0)
        e->start_rc = rc;
}

static void on_stop(struct worker *w, void *ctx)
{
    struct env *e = ctx;
    net_worker_stop(e->nw[worker_index(w)]);
}

static struct env *env_start_rc(const char *listen, uint32_t per_ip, uint32_t idle, int *rc)
{
    struct env *e = calloc(1, sizeof *e);
    struct config c;
    char err[256];
    assert_int_equal(config_init(&c), 0);
    char set[256];
    snprintf(set, sizeof set, "sip.listen=%s", listen);
    assert_int_equal(config_set(&c, set, err, sizeof err), 0);
    struct net_limits lim = { .max_message = 1000, .max_connections = 100,
                              .max_connections_per_ip = per_ip, .idle_timeout_s = idle };
    struct net_handlers h = { on_recv, frame_lines, on_closed, e };
    assert_int_equal(net_new(&e->net, &c.sip.listen, &lim, &h, 2), 0);
    config_free(&c);
    struct worker_hooks hooks = { on_start, on_stop, e };
    assert_int_equal(worker_pool_start(&e->pool, 2, &hooks), 0);
    *rc = e->start_rc;
    return e;
}

static struct env *env_start(const char *listen, uint32_t per_ip, uint32_t idle)
{
    int rc;
    struct env *e = env_start_rc(listen, per_ip, idle, &rc);
    assert_int_equal(rc, 0);
    return e;
}

static void env_stop(struct env *e)
{
    worker_pool_stop(e->pool);
    net_free(e->net);
    free(e);
}

static int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Reads until want bytes or 3 s; returns bytes read (0 on EOF at once). */
static ssize_t read_some(int fd, char *buf, size_t want, int timeout_ms)
{
    size_t got = 0;
    while (got < want) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        ssize_t r = recv(fd, buf + got, want - got, 0);
        if (r <= 0)
            return got ? (ssize_t)got : r;
        got += (size_t)r;
    }
    buf[got] = '\0';
    return (ssize_t)got;
}

static void test_udp(void **state)
{
    (void)state;
    struct env *e = env_start("udp:127.0.0.1:15070, udp:[::1]:15070", 10, 60);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(15070) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(sendto(fd, "hello\n", 6, 0, (struct sockaddr *)&a, sizeof a), 6);
    char buf[256];
    assert_int_equal(read_some(fd, buf, 11, 3000), 11);
    assert_string_equal(buf, "echo:hello\n");
    /* a CRLF keep-alive is swallowed */
    assert_int_equal(sendto(fd, "\r\n\r\n", 4, 0, (struct sockaddr *)&a, sizeof a), 4);
    assert_int_equal(read_some(fd, buf, 1, 300), 0);
    close(fd);
    /* IPv6 */
    fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(15070) };
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    assert_int_equal(sendto(fd, "six\n", 4, 0, (struct sockaddr *)&a6, sizeof a6), 4);
    assert_int_equal(read_some(fd, buf, 9, 3000), 9);
    assert_string_equal(buf, "echo:six\n");
    close(fd);
    /* the server counts a send after it returns: the client may read the echo first */
    struct net_stats st;
    for (int i = 0; i < 100; i++) {
        net_get_stats(e->net, &st);
        if (st.udp_tx == 2)
            break;
        usleep(10000);
    }
    assert_int_equal(st.udp_rx, 2);
    assert_int_equal(st.udp_tx, 2);
    assert_int_equal(st.keepalives, 1);
    env_stop(e);
}

static void test_tcp_framing(void **state)
{
    (void)state;
    struct env *e = env_start("tcp:127.0.0.1:15071", 10, 60);
    int fd = tcp_connect(15071);
    /* three messages in one write, one split over two, a keep-alive between */
    assert_int_equal(send(fd, "a\nbb\n\r\n\r\nccc\nd", 14, 0), 14);
    char buf[512];
    assert_int_equal(read_some(fd, buf, 7 + 8 + 2 + 9, 3000), 26);
    assert_string_equal(buf, "echo:a\necho:bb\n\r\necho:ccc\n");
    assert_int_equal(send(fd, "dd\n", 3, 0), 3);
    assert_int_equal(read_some(fd, buf, 9, 3000), 9);
    assert_string_equal(buf, "echo:ddd\n");
    /* a message longer than max_message closes the connection */
    char big[1200];
    memset(big, 'x', sizeof big);
    send(fd, big, sizeof big, MSG_NOSIGNAL);
    assert_true(read_some(fd, buf, 10, 3000) <= 0);
    close(fd);
    /* an unframeable stream closes it too */
    fd = tcp_connect(15071);
    assert_int_equal(send(fd, "!bad\n", 5, 0), 5);
    assert_true(read_some(fd, buf, 10, 3000) <= 0);
    close(fd);
    for (int i = 0; i < 100 && atomic_load(&e->closed_flows) < 2; i++)
        usleep(10000);
    assert_int_equal(atomic_load(&e->closed_flows), 2);
    struct net_stats st;
    net_get_stats(e->net, &st);
    assert_int_equal(st.frame_errors, 2);
    env_stop(e);
}

static void test_tcp_cross_worker(void **state)
{
    (void)state;
    struct env *e = env_start("tcp:127.0.0.1:15072", 10, 60);
    int fd = tcp_connect(15072);
    assert_int_equal(send(fd, "fwd:x\n", 6, 0), 6);
    char buf[256];
    ssize_t n = read_some(fd, buf, 13, 3000);
    assert_int_equal(n, 13);
    assert_true(strncmp(buf, "from-", 5) == 0);
    assert_string_equal(buf + 6, ":fwd:x\n");
    close(fd);
    env_stop(e);
}

static void test_tcp_limits(void **state)
{
    (void)state;
    struct env *e = env_start("tcp:127.0.0.1:15073", 2, 1);
    int fds[3] = { tcp_connect(15073), tcp_connect(15073), tcp_connect(15073) };
    char buf[64];
    /* one of the three from the same address is closed at once (two workers accept
     * in parallel, so which one is not known in advance) */
    int refused = -1;
    for (int t = 0; t < 300 && refused < 0; t++) {
        for (int i = 0; i < 3 && refused < 0; i++) {
            struct pollfd p = { fds[i], POLLIN, 0 };
            if (poll(&p, 1, 0) == 1 && recv(fds[i], buf, 1, MSG_DONTWAIT) == 0)
                refused = i;
        }
        usleep(10000);
    }
    assert_true(refused >= 0);
    int a = fds[(refused + 1) % 3], b = fds[(refused + 2) % 3], c = fds[refused];
    assert_int_equal(send(a, "q\n", 2, 0), 2);
    assert_int_equal(read_some(a, buf, 7, 3000), 7);
    /* idle for more than a second: closed by the sweep */
    assert_true(read_some(b, buf, 1, 4000) <= 0);
    assert_true(read_some(a, buf, 1, 4000) <= 0);
    close(a);
    close(b);
    close(c);
    struct net_stats st;
    net_get_stats(e->net, &st);
    assert_int_equal(st.tcp_refused, 1);
    assert_int_equal(st.tcp_open, 0);
    env_stop(e);
}

static void test_bind_error(void **state)
{
    (void)state;
    /* a port held by a socket without SO_REUSEPORT makes the start fail, clearly */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(15074) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    int rc;
    struct env *e = env_start_rc("udp:127.0.0.1:15074", 10, 60, &rc);
    assert_int_equal(rc, -EADDRINUSE);
    env_stop(e);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_udp),
        cmocka_unit_test(test_tcp_framing),
        cmocka_unit_test(test_tcp_cross_worker),
        cmocka_unit_test(test_tcp_limits),
        cmocka_unit_test(test_bind_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
