/*
 * Tests for src/net/steer.c: the tag's text, and the program in the kernel —
 * a SO_REUSEPORT group of UDP sockets on a loopback port the kernel picks,
 * datagrams from several source ports, and which socket each one reached.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/steer.h"

#define NSOCK 4
#define NSRC 8

struct group {
    int fd[NSOCK];
    int src[NSRC];
    struct sockaddr_in to;
};

static int bound(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    assert_true(fd >= 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
    assert_int_equal(bind(fd, (struct sockaddr *)a, sizeof *a), 0);
    socklen_t l = sizeof *a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)a, &l), 0);
    return fd;
}

static void group_open(struct group *g, bool steered)
{
    memset(&g->to, 0, sizeof g->to);
    g->to.sin_family = AF_INET;
    g->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < NSOCK; i++) {
        g->fd[i] = bound(&g->to);
        if (i == 0 && steered)
            assert_int_equal(steer_attach(g->fd[0]), 0);
    }
    for (int i = 0; i < NSRC; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET };
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g->src[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_int_equal(bind(g->src[i], (struct sockaddr *)&a, sizeof a), 0);
    }
}

static void group_close(struct group *g)
{
    for (int i = 0; i < NSOCK; i++)
        close(g->fd[i]);
    for (int i = 0; i < NSRC; i++)
        close(g->src[i]);
}

/* Sends len bytes of d from source s; returns the socket that got them. */
static int landed(struct group *g, int s, const char *d, size_t len)
{
    assert_int_equal(sendto(g->src[s], d, len, 0, (struct sockaddr *)&g->to, sizeof g->to),
                     (ssize_t)len);
    struct pollfd p[NSOCK];
    for (int i = 0; i < NSOCK; i++)
        p[i] = (struct pollfd){ .fd = g->fd[i], .events = POLLIN };
    assert_int_equal(poll(p, NSOCK, 2000) > 0, 1);
    int got = -1;
    for (int i = 0; i < NSOCK; i++) {
        if (!(p[i].revents & POLLIN))
            continue;
        char buf[4096];
        assert_int_equal(recv(g->fd[i], buf, sizeof buf, 0), (ssize_t)len);
        assert_memory_equal(buf, d, len);
        assert_int_equal(got, -1); /* one socket only */
        got = i;
    }
    return got;
}

/* A SIP-like datagram of total length len with the tag of index i at offset at. */
static size_t with_tag(char *out, size_t len, size_t at, unsigned i)
{
    memset(out, 'x', len);
    memcpy(out, "SIP/2.0 200 OK\r\n", 16);
    char tag[STEER_TAG_LEN + 1];
    steer_tag(i, tag);
    memcpy(out + at, tag, STEER_TAG_LEN);
    memcpy(out + len - 4, "\r\n\r\n", 4);
    return len;
}

static void test_tag_text(void **state)
{
    (void)state;
    char t[STEER_TAG_LEN + 1];
    steer_tag(0, t);
    assert_string_equal(t, "~rtcd~waa");
    steer_tag(1, t);
    assert_string_equal(t, "~rtcd~wab");
    steer_tag(255, t);
    assert_string_equal(t, "~rtcd~wpp");
    steer_tag(0x5c, t);
    assert_string_equal(t, "~rtcd~wfm");
    /* every character may stand in a branch (a token) and in a URI parameter name */
    for (unsigned i = 0; i <= STEER_MAX_INDEX; i++) {
        steer_tag(i, t);
        assert_int_equal(strlen(t), STEER_TAG_LEN);
        assert_int_equal(strspn(t, "~rtcdwabcdefghijklmnop"), STEER_TAG_LEN);
    }
}

/* Every offset's alignment, early and deep in the datagram, from every source. */
static void test_tag_steers(void **state)
{
    (void)state;
    struct group g;
    group_open(&g, true);
    char d[3000];
    size_t offsets[] = { 16, 17, 18, 19, 20, 61, 500, 1203, STEER_SCAN_BYTES - 30,
                        STEER_SCAN_BYTES - 15 };
    for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
        for (int s = 0; s < NSRC; s++) {
            unsigned want = (unsigned)(k + (size_t)s) % NSOCK;
            size_t len = with_tag(d, offsets[k] + 200, offsets[k], want);
            assert_int_equal(landed(&g, s, d, len), (int)want);
        }
    }
    /* a tag right before the final CRLF CRLF: the length checks still let the scan reach it */
    for (int s = 0; s < NSRC; s++) {
        for (size_t len = 240; len < 244; len++) {
            with_tag(d, len, len - 4 - STEER_TAG_LEN, 3);
            assert_int_equal(landed(&g, s, d, len), 3);
        }
    }
    group_close(&g);
}

/*
 * Without a tag (or with one the program must not follow) a datagram goes where the
 * kernel's hash of its source puts it: the same socket as an untagged one.
 */
static void test_no_tag_hashes(void **state)
{
    (void)state;
    struct group g;
    group_open(&g, true);
    char d[3000];
    int spread[NSOCK] = { 0 };
    for (int s = 0; s < NSRC; s++) {
        memset(d, 'x', 300);
        int home = landed(&g, s, d, 300);
        spread[home]++;
        /* beyond the scan, a bad letter, an index past the group, a short datagram */
        with_tag(d, STEER_SCAN_BYTES + 200, STEER_SCAN_BYTES + 8, (unsigned)(home + 1) % NSOCK);
        assert_int_equal(landed(&g, s, d, STEER_SCAN_BYTES + 200), home);
        with_tag(d, 300, 100, (unsigned)(home + 1) % NSOCK);
        d[100 + STEER_MARK_LEN] = 'q';
        assert_int_equal(landed(&g, s, d, 300), home);
        with_tag(d, 300, 100, 200);
        assert_int_equal(landed(&g, s, d, 300), home);
        assert_int_equal(landed(&g, s, "x", 1), home);
        assert_int_equal(landed(&g, s, "", 0), home);
        /* cut inside the tag: no load may run past the end (that would pick socket 0) */
        for (size_t cut = 14 + STEER_MARK_LEN - 3; cut < 14 + STEER_TAG_LEN; cut++) {
            with_tag(d, 30, 14, (unsigned)(home + 1) % NSOCK);
            assert_int_equal(landed(&g, s, d, cut), home);
        }
    }
    group_close(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tag_text),
        cmocka_unit_test(test_tag_steers),
        cmocka_unit_test(test_no_tag_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
