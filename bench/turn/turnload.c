/*
 * turnload — a small TURN/STUN load generator for bench/turn.sh, so rtcd and
 * coturn are driven by exactly the same offered load.
 *
 *   turnload relay   HOST PORT SECRET REALM ALLOCS PAYLOAD RATE SECONDS
 *   turnload binding HOST PORT RATE SECONDS
 *   turnload hold    HOST PORT SECRET REALM ALLOCS SECONDS
 *
 * relay: ALLOCS UDP allocations (REST credentials from SECRET), each with a
 * channel to one peer socket of this program; then ChannelData of PAYLOAD
 * bytes at RATE packets/s in total (round robin) for SECONDS; prints
 * "sent N received M" (M counted at the peer, i.e. relayed by the server).
 * binding: Binding requests at RATE/s from 16 sockets; prints "sent N received M".
 * hold: makes ALLOCS allocations, prints "ready", keeps them SECONDS, exits.
 * Every loop is bounded by count and time.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "stun/stun.h"

static struct sockaddr_in server;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(1);
    }
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("bind");
        exit(1);
    }
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    return fd;
}

/* Sends req and waits up to 1 s for the answer with the same transaction (3 tries). */
static int transact(int fd, const uint8_t *req, size_t n, uint8_t *resp, size_t cap,
                    struct stun_msg *m)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        sendto(fd, req, n, 0, (struct sockaddr *)&server, sizeof server);
        double deadline = now_s() + 1.0;
        while (now_s() < deadline) {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            if (poll(&p, 1, 100) <= 0)
                continue;
            ssize_t r = recv(fd, resp, cap, 0);
            if (r > 0 && stun_decode(resp, (size_t)r, m) > 0 && memcmp(m->tid, req + 8, 12) == 0)
                return 0;
        }
    }
    return -ETIMEDOUT;
}

struct client {
    int fd;
    char user[64];
    char nonce[128];
    uint8_t key[16];
};

static const char *g_realm;

static int signed_request(struct client *c, uint16_t type, void (*attrs)(struct stun_enc *, void *),
                          void *arg, struct stun_msg *m, uint8_t *resp, size_t cap)
{
    uint8_t buf[512], tid[12];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 12; i++)
            tid[i] = (uint8_t)rand();
        struct stun_enc e;
        stun_enc_init(&e, buf, sizeof buf, type, tid);
        attrs(&e, arg);
        if (c->nonce[0]) {
            stun_enc_attr(&e, STUN_A_USERNAME, c->user, strlen(c->user));
            stun_enc_attr(&e, STUN_A_REALM, g_realm, strlen(g_realm));
            stun_enc_attr(&e, STUN_A_NONCE, c->nonce, strlen(c->nonce));
            stun_enc_integrity(&e, c->key, 16);
        }
        if (transact(c->fd, buf, (size_t)stun_enc_finish(&e), resp, cap, m) < 0)
            return -ETIMEDOUT;
        if (m->cls == STUN_SUCCESS)
            return 0;
        const struct stun_attr *na = stun_attr_find(m, STUN_A_NONCE);
        if (!na || na->len >= sizeof c->nonce)
            break;
        memcpy(c->nonce, na->val, na->len);
        c->nonce[na->len] = 0;
    }
    const struct stun_attr *ea = stun_attr_find(m, STUN_A_ERROR_CODE);
    int code = 0;
    str reason;
    if (ea)
        stun_attr_error(ea, &code, &reason);
    return code ? code : -EPROTO;
}

static void alloc_attrs(struct stun_enc *e, void *arg)
{
    stun_enc_u32(e, TURN_A_REQUESTED_TRANSPORT, 17u << 24);
    stun_enc_u32(e, TURN_A_LIFETIME, 600);
}

static void release_attrs(struct stun_enc *e, void *arg)
{
    stun_enc_u32(e, TURN_A_LIFETIME, 0);
}

/* Deletes the allocations (Refresh with LIFETIME 0) so that runs do not pile up. */
static void release_allocations(struct client *cs, int n)
{
    uint8_t resp[1500];
    struct stun_msg m;
    for (int i = 0; i < n; i++) {
        signed_request(&cs[i], TURN_REFRESH, release_attrs, NULL, &m, resp, sizeof resp);
        close(cs[i].fd);
    }
    free(cs);
}

static struct sockaddr_in peer_addr;

static void bind_attrs(struct stun_enc *e, void *arg)
{
    stun_enc_u32(e, TURN_A_CHANNEL_NUMBER, 0x4000u << 16);
    stun_enc_xor_addr(e, TURN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&peer_addr);
}

static struct client *make_allocations(int n, const char *secret, bool channel)
{
    struct client *cs = calloc((size_t)n, sizeof *cs);
    char pw[32];
    snprintf(cs[0].user, sizeof cs[0].user, "%ld:bench", (long)time(NULL) + 3600);
    turn_rest_password(str_cstr(secret), str_cstr(cs[0].user), pw);
    uint8_t resp[1500];
    struct stun_msg m;
    for (int i = 0; i < n; i++) {
        struct client *c = &cs[i];
        c->fd = udp_socket();
        strcpy(c->user, cs[0].user);
        stun_long_term_key(str_cstr(c->user), str_cstr(g_realm), str_cstr(pw), c->key);
        int rc = signed_request(c, TURN_ALLOCATE, alloc_attrs, NULL, &m, resp, sizeof resp);
        if (rc != 0) {
            fprintf(stderr, "turnload: allocation %d failed: %d\n", i, rc);
            exit(1);
        }
        if (channel) {
            rc = signed_request(c, TURN_CHANNEL_BIND, bind_attrs, NULL, &m, resp, sizeof resp);
            if (rc != 0) {
                fprintf(stderr, "turnload: channel bind %d failed: %d\n", i, rc);
                exit(1);
            }
        }
    }
    return cs;
}

static long drain(int fd)
{
    static uint8_t bufs[64][2048];
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    for (int i = 0; i < 64; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    long total = 0;
    for (int k = 0; k < 1000; k++) {
        int r = recvmmsg(fd, msgs, 64, MSG_DONTWAIT, NULL);
        if (r <= 0)
            break;
        total += r;
    }
    return total;
}

/* Sends with a pacing of 1 ms ticks; sendfn(i) sends packet i. */
static void paced(double rate, double seconds, void (*sendfn)(long i, void *), void *arg,
                  int rxfd, long *sent, long *received)
{
    double start = now_s(), end = start + seconds;
    long i = 0, rx = 0;
    while (now_s() < end) {
        double target = (now_s() - start) * rate;
        while ((double)i < target && i < (long)(rate * seconds) + 1)
            sendfn(i++, arg);
        rx += drain(rxfd);
        struct timespec ts = { 0, 200000 };
        nanosleep(&ts, NULL);
    }
    /* Let the last packets arrive. */
    double tail = now_s() + 0.3;
    while (now_s() < tail) {
        rx += drain(rxfd);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    *sent = i;
    *received = rx;
}

struct relay_ctx {
    struct client *cs;
    int n;
    uint8_t pkt[2048];
    size_t len;
};

static void send_cd(long i, void *arg)
{
    struct relay_ctx *r = arg;
    struct client *c = &r->cs[i % r->n];
    send(c->fd, r->pkt, r->len, 0);
}

struct bind_ctx {
    int fds[16];
    uint8_t pkt[20];
};

static void send_binding(long i, void *arg)
{
    struct bind_ctx *b = arg;
    memcpy(b->pkt + 8, &i, sizeof i);
    sendto(b->fds[i % 16], b->pkt, 20, 0, (struct sockaddr *)&server, sizeof server);
}

static int usage(void)
{
    fputs("usage: turnload relay HOST PORT SECRET REALM ALLOCS PAYLOAD RATE SECONDS\n"
          "       turnload binding HOST PORT RATE SECONDS\n"
          "       turnload hold HOST PORT SECRET REALM ALLOCS SECONDS\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return usage();
    server.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[2], &server.sin_addr) != 1)
        return usage();
    server.sin_port = htons((uint16_t)atoi(argv[3]));
    srand((unsigned)getpid());
    long sent = 0, received = 0;
    if (strcmp(argv[1], "relay") == 0 && argc == 10) {
        g_realm = argv[5];
        int n = atoi(argv[6]);
        size_t payload = (size_t)atoi(argv[7]);
        double rate = atof(argv[8]), secs = atof(argv[9]);
        if (n < 1 || n > 5000 || payload < 1 || payload > 1400 || secs > 60)
            return usage();
        int pfd = udp_socket();
        socklen_t len = sizeof peer_addr;
        getsockname(pfd, (struct sockaddr *)&peer_addr, &len);
        struct relay_ctx *r = calloc(1, sizeof *r);
        r->cs = make_allocations(n, argv[4], true);
        r->n = n;
        for (int i = 0; i < n; i++)
            connect(r->cs[i].fd, (struct sockaddr *)&server, sizeof server);
        r->pkt[0] = 0x40;
        r->pkt[1] = 0x00;
        r->pkt[2] = (uint8_t)(payload >> 8);
        r->pkt[3] = (uint8_t)payload;
        memset(r->pkt + 4, 'x', payload);
        r->len = 4 + payload;
        printf("ready\n");
        fflush(stdout);
        paced(rate, secs, send_cd, r, pfd, &sent, &received);
        release_allocations(r->cs, n);
        free(r);
    } else if (strcmp(argv[1], "binding") == 0 && argc == 6) {
        double rate = atof(argv[4]), secs = atof(argv[5]);
        if (secs > 60)
            return usage();
        struct bind_ctx b;
        for (int i = 0; i < 16; i++)
            b.fds[i] = udp_socket();
        uint8_t tid[12] = { 0 };
        struct stun_enc e;
        stun_enc_init(&e, b.pkt, sizeof b.pkt, STUN_BINDING, tid);
        /* Replies come back to 16 sockets: count them through one poll set. */
        double start = now_s(), end = start + secs;
        long i = 0;
        while (now_s() < end) {
            double target = (now_s() - start) * rate;
            while ((double)i < target)
                send_binding(i++, &b);
            for (int k = 0; k < 16; k++)
                received += drain(b.fds[k]);
            struct timespec ts = { 0, 200000 };
            nanosleep(&ts, NULL);
        }
        double tail = now_s() + 0.3;
        while (now_s() < tail)
            for (int k = 0; k < 16; k++)
                received += drain(b.fds[k]);
        sent = i;
    } else if (strcmp(argv[1], "hold") == 0 && argc == 8) {
        g_realm = argv[5];
        int n = atoi(argv[6]);
        if (n < 1 || n > 10000)
            return usage();
        struct client *cs = make_allocations(n, argv[4], false);
        printf("ready\n");
        fflush(stdout);
        sleep((unsigned)atoi(argv[7]));
        release_allocations(cs, n);
        return 0;
    } else {
        return usage();
    }
    printf("sent %ld received %ld\n", sent, received);
    return 0;
}
