/*
 * fanout_client — the subscribers of bench/fanout.sh, many per process (epoll):
 *
 *   fanout_client ws    HOST PORT N CHANNEL EXPECT SECONDS   rtcd /api/v1/channels/ws
 *   fanout_client redis HOST PORT N CHANNEL EXPECT SECONDS   Redis SUBSCRIBE
 *   fanout_client sip   HOST PORT N CHANNEL EXPECT SECONDS LOCALPORT FIRST
 *        users bFIRST.. register on one UDP socket, join sip:~CHANNEL@localhost by
 *        MESSAGE "join", then answer every MESSAGE 200
 *
 * Prints "READY N" once every subscriber is subscribed, then counts deliveries and
 * prints "DONE COUNT LAST_NS" (CLOCK_MONOTONIC of the last one) when EXPECT have
 * arrived or SECONDS passed since READY. Loopback only; bounded in count and time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

enum mode { M_WS, M_REDIS, M_SIP };
enum cstate { S_CONNECTING, S_HANDSHAKE, S_SUBSCRIBING, S_READY };

struct conn {
    int fd;
    enum cstate st;
    char buf[4096]; /* handshake / partial frame header */
    size_t len;
    uint64_t skip; /* ws: payload bytes still to skip */
    int match;     /* redis: bytes of the pattern matched so far */
};

static enum mode mode;
static const char *host, *channel;
static int port, nconn, expect_n, secs;
static struct conn *conns;
static int ready, epfd;
static long long count;
static uint64_t last_ns;

static void die(const char *m)
{
    perror(m);
    exit(1);
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    /* small writes on a fresh socket: the kernel takes them whole */
    if (write(fd, p, n) != (ssize_t)n)
        die("write");
}

static void on_connected(struct conn *c)
{
    char req[512];
    int n;
    if (mode == M_WS) {
        n = snprintf(req, sizeof req,
                     "GET /api/v1/channels/ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     host, port);
        c->st = S_HANDSHAKE;
    } else {
        n = snprintf(req, sizeof req, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(channel),
                     channel);
        c->st = S_SUBSCRIBING;
    }
    send_all(c->fd, req, (size_t)n);
}

static void ws_subscribe(struct conn *c)
{
    char msg[256];
    int n = snprintf(msg, sizeof msg, "{\"op\":\"subscribe\",\"channel\":\"%s\"}", channel);
    unsigned char fr[300];
    fr[0] = 0x81;
    fr[1] = (unsigned char)(0x80 | n);
    memset(fr + 2, 0, 4); /* mask key 0: payload unchanged */
    memcpy(fr + 6, msg, (size_t)n);
    send_all(c->fd, fr, (size_t)n + 6);
    c->st = S_SUBSCRIBING;
}

/* Consumes WebSocket frames from data: counts text frames after the subscription. */
static void ws_data(struct conn *c, const unsigned char *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (c->skip) {
            size_t k = n - i < c->skip ? n - i : (size_t)c->skip;
            c->skip -= k;
            i += k;
            continue;
        }
        c->buf[c->len++] = (char)d[i++];
        unsigned char *h = (unsigned char *)c->buf;
        if (c->len < 2)
            continue;
        size_t need = 2, plen = h[1] & 0x7f;
        if (plen == 126)
            need = 4;
        else if (plen == 127)
            need = 10;
        if (c->len < need)
            continue;
        uint64_t len = plen;
        if (plen == 126)
            len = ((uint64_t)h[2] << 8) | h[3];
        else if (plen == 127) {
            len = 0;
            for (int k = 0; k < 8; k++)
                len = (len << 8) | h[2 + k];
        }
        int op = h[0] & 0x0f;
        c->len = 0;
        c->skip = len;
        if (op == 1) {
            if (c->st == S_SUBSCRIBING) {
                c->st = S_READY;
                ready++;
            } else {
                count++;
                last_ns = now_ns();
            }
        } else if (op == 8) {
            fprintf(stderr, "a connection was closed by the server\n");
        }
    }
}

/* Redis: counts "$7\r\nmessage\r\n" (the first is the subscribe confirmation's "subscribe"). */
static void redis_data(struct conn *c, const unsigned char *d, size_t n)
{
    static const char pat[] = "$7\r\nmessage\r\n";
    static const char sub[] = "subscribe\r\n";
    if (c->st == S_SUBSCRIBING) {
        if (memmem(d, n, sub, sizeof sub - 1)) {
            c->st = S_READY;
            ready++;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (d[i] == (unsigned char)pat[c->match]) {
            if (++c->match == (int)sizeof pat - 1) {
                count++;
                last_ns = now_ns();
                c->match = 0;
            }
        } else {
            c->match = d[i] == '$' ? 1 : 0;
        }
    }
}

static void on_readable(struct conn *c)
{
    unsigned char d[65536];
    for (;;) {
        ssize_t n = read(c->fd, d, sizeof d);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            fprintf(stderr, "connection lost (%s)\n", n < 0 ? strerror(errno) : "EOF");
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
            return;
        }
        if (mode == M_WS && c->st == S_HANDSHAKE) {
            size_t k =
                (size_t)n < sizeof c->buf - c->len - 1 ? (size_t)n : sizeof c->buf - c->len - 1;
            memcpy(c->buf + c->len, d, k);
            c->len += k;
            c->buf[c->len] = 0;
            char *end = strstr(c->buf, "\r\n\r\n");
            if (!end)
                continue;
            if (strncmp(c->buf, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "upgrade refused: %.60s\n", c->buf);
                exit(1);
            }
            size_t rest = c->len - (size_t)(end + 4 - c->buf);
            unsigned char tail[4096];
            memcpy(tail, end + 4, rest);
            c->len = 0;
            ws_subscribe(c);
            if (rest)
                ws_data(c, tail, rest);
            continue;
        }
        if (mode == M_WS)
            ws_data(c, d, (size_t)n);
        else
            redis_data(c, d, (size_t)n);
    }
}

static void run_tcp(void)
{
    conns = calloc((size_t)nconn, sizeof *conns);
    epfd = epoll_create1(0);
    int started = 0;
    uint64_t deadline = 0;
    struct epoll_event ev[256];
    int reported = 0;
    for (;;) {
        /* at most 200 handshakes at a time (the listener's backlog) */
        while (started < nconn && started - ready < 200) {
            struct conn *c = &conns[started];
            c->fd = tcp_connect();
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e);
            started++;
        }
        if (!reported && ready == nconn) {
            printf("READY %d\n", ready);
            fflush(stdout);
            reported = 1;
            deadline = now_ns() + (uint64_t)secs * 1000000000ull;
        }
        if (reported && (count >= expect_n || now_ns() > deadline))
            break;
        int n = epoll_wait(epfd, ev, 256, 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = ev[i].data.ptr;
            if (c->st == S_CONNECTING && (ev[i].events & EPOLLOUT)) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err) {
                    fprintf(stderr, "connect: %s\n", strerror(err));
                    exit(1);
                }
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
                on_connected(c);
            }
            if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
        }
    }
    printf("DONE %lld %llu\n", count, (unsigned long long)last_ns);
    fflush(stdout);
}

/* ---- SIP users ---- */

static int usock;
static struct sockaddr_in srv;
static int first, lport;

static void usend(const char *m, size_t n)
{
    if (sendto(usock, m, n, 0, (struct sockaddr *)&srv, sizeof srv) < 0 && errno != EAGAIN)
        die("sendto");
}

static void sip_request(int i, int join)
{
    char m[1024];
    int n;
    if (!join)
        n = snprintf(
            m, sizeof m,
            "REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP "
            "127.0.0.1:%d;branch=z9hG4bKr%d;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:b%d@localhost>;tag=f%d\r\nTo: <sip:b%d@localhost>\r\n"
            "Call-ID: reg-%d@bench\r\nCSeq: 1 REGISTER\r\nContact: <sip:b%d@127.0.0.1:%d>\r\n"
            "Expires: 3600\r\nContent-Length: 0\r\n\r\n",
            lport, i, i, i, i, i, i, lport);
    else
        n = snprintf(
            m, sizeof m,
            "MESSAGE sip:~%s@localhost SIP/2.0\r\nVia: SIP/2.0/UDP "
            "127.0.0.1:%d;branch=z9hG4bKj%d;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:b%d@localhost>;tag=f%d\r\nTo: <sip:~%s@localhost>\r\n"
            "Call-ID: join-%d@bench\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n"
            "Content-Length: 4\r\n\r\njoin",
            channel, lport, i, i, i, channel, i);
    usend(m, (size_t)n);
}

/* Answers a request 200 with its Via, From, To (+tag), Call-ID, CSeq. */
static void answer(const char *req, size_t len, struct sockaddr_in *from)
{
    char out[4096];
    size_t o = (size_t)snprintf(out, sizeof out, "SIP/2.0 200 OK\r\n");
    const char *p = req, *end = req + len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol || eol == p)
            break;
        size_t l = (size_t)(eol - p);
        if (!strncasecmp(p, "Via:", 4) || !strncasecmp(p, "v:", 2) || !strncasecmp(p, "From:", 5) ||
            !strncasecmp(p, "f:", 2) || !strncasecmp(p, "Call-ID:", 8) ||
            !strncasecmp(p, "i:", 2) || !strncasecmp(p, "CSeq:", 5)) {
            if (o + l + 2 < sizeof out) {
                memcpy(out + o, p, l);
                o += l;
                memcpy(out + o, "\r\n", 2);
                o += 2;
            }
        } else if (!strncasecmp(p, "To:", 3) || !strncasecmp(p, "t:", 2)) {
            if (o + l + 12 < sizeof out) {
                memcpy(out + o, p, l);
                o += l;
                o += (size_t)snprintf(out + o, sizeof out - o, "%s\r\n",
                                      memmem(p, l, "tag=", 4) ? "" : ";tag=ua");
            }
        }
        p = eol + 2;
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "Content-Length: 0\r\n\r\n");
    sendto(usock, out, o, 0, (struct sockaddr *)from, sizeof *from);
}

/* Whether this request's Call-ID is new (a retransmission is answered, not counted). */
static int first_time(const char *req)
{
    static uint64_t *set;
    static const size_t cap = 1u << 21;
    const char *c = strcasestr(req, "\r\nCall-ID:");
    if (!c)
        return 1;
    c += 10;
    uint64_t h = 1469598103934665603ull;
    for (; *c && *c != '\r'; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h |= 1;
    if (!set && !(set = calloc(cap, sizeof *set)))
        return 1;
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (set[i] == h)
            return 0;
        if (!set[i]) {
            set[i] = h;
            return 1;
        }
    }
}

static void run_sip(void)
{
    usock = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 16 << 20;
    setsockopt(usock, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(usock, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
    inet_pton(AF_INET, "127.0.0.1", &me.sin_addr);
    if (bind(usock, (struct sockaddr *)&me, sizeof me) < 0)
        die("bind");
    srv = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &srv.sin_addr);
    /* per user: 0 nothing, 1 REGISTER sent, 2 registered + join sent, 3 joined */
    unsigned char *st = calloc((size_t)nconn, 1);
    uint64_t *sent_at = calloc((size_t)nconn, sizeof *sent_at);
    int next = 0, outstanding = 0, reported = 0;
    uint64_t deadline = now_ns() + 120ull * 1000000000ull;
    char buf[65536];
    for (;;) {
        while (next < nconn && outstanding < 200) {
            sip_request(first + next, 0);
            st[next] = 1;
            sent_at[next] = now_ns();
            next++;
            outstanding++;
        }
        uint64_t t = now_ns();
        for (int i = 0; i < next && !reported; i++) { /* retransmit after 1 s */
            if ((st[i] == 1 || st[i] == 2) && t - sent_at[i] > 1000000000ull) {
                sip_request(first + i, st[i] == 2);
                sent_at[i] = t;
            }
        }
        if (!reported && ready == nconn) {
            printf("READY %d\n", ready);
            fflush(stdout);
            reported = 1;
            deadline = now_ns() + (uint64_t)secs * 1000000000ull;
        }
        if (now_ns() > deadline) {
            if (!reported) {
                fprintf(stderr, "only %d of %d users joined\n", ready, nconn);
                exit(1);
            }
            break;
        }
        if (reported && count >= expect_n)
            break;
        struct timeval tv = {0, 100000};
        setsockopt(usock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        for (int k = 0; k < 1000; k++) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(usock, buf, sizeof buf - 1, k ? MSG_DONTWAIT : 0,
                                 (struct sockaddr *)&from, &fl);
            if (n <= 0)
                break;
            buf[n] = 0;
            if (!strncmp(buf, "MESSAGE ", 8)) {
                answer(buf, (size_t)n, &from);
                if (reported && first_time(buf)) {
                    count++;
                    last_ns = now_ns();
                }
                continue;
            }
            if (strncmp(buf, "SIP/2.0 ", 8))
                continue;
            int status = atoi(buf + 8);
            const char *cid = strcasestr(buf, "\r\nCall-ID: ");
            if (!cid || status < 200)
                continue;
            int idx;
            if (sscanf(cid + 11, "reg-%d@", &idx) == 1 && idx - first >= 0 && idx - first < nconn) {
                int u = idx - first;
                if (st[u] == 1 && status == 200) {
                    st[u] = 2;
                    sent_at[u] = now_ns();
                    sip_request(idx, 1);
                }
            } else if (sscanf(cid + 11, "join-%d@", &idx) == 1 && idx - first >= 0 &&
                       idx - first < nconn) {
                int u = idx - first;
                if (st[u] == 2 && status == 200) {
                    st[u] = 3;
                    ready++;
                    outstanding--;
                }
            }
        }
    }
    printf("DONE %lld %llu\n", count, (unsigned long long)last_ns);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: fanout_client ws|redis|sip HOST PORT N CHANNEL EXPECT SECONDS "
                        "[LOCALPORT FIRST]\n");
        return 2;
    }
    mode = !strcmp(argv[1], "ws") ? M_WS : !strcmp(argv[1], "redis") ? M_REDIS : M_SIP;
    host = argv[2];
    port = atoi(argv[3]);
    nconn = atoi(argv[4]);
    channel = argv[5];
    expect_n = atoi(argv[6]);
    secs = atoi(argv[7]);
    if (nconn <= 0 || nconn > 15000 || secs <= 0 || secs > 600)
        return 2;
    if (mode == M_SIP) {
        if (argc < 10)
            return 2;
        lport = atoi(argv[8]);
        first = atoi(argv[9]);
        run_sip();
    } else {
        run_tcp();
    }
    return 0;
}
