/*
 * service — the STUN/TURN core on libuv, inside rtcd's worker loops.
 *
 * Each worker opens its own UDP socket per turn.listen address with
 * SO_REUSEPORT (the kernel keeps a client 5-tuple on one socket, hence on one
 * worker) and its own TCP listener likewise; a TCP connection, its allocation
 * and the allocation's relay socket all live on the worker that accepted it.
 * UDP reads are batched with recvmmsg. A UDP listener is read on readiness
 * (a uv_poll_t on its socket) until a read finds several datagrams waiting;
 * then it leaves epoll and is read every turn.poll_us from a timerfd, until a
 * read finds fewer than two (NAPI-like: under load one wake-up serves many
 * datagrams, at low rates nothing waits), or until polling is seen not to
 * make sends coalesce (then not again for POLL_BACKOFF_MS). Datagrams out — to clients on the
 * listener, to peers on each relay socket — are queued during a loop
 * iteration and sent from its check phase: one sendmmsg per socket, and a run
 * of equal-size datagrams to one peer as one UDP GSO send (UDP_SEGMENT).
 * A datagram that does not fit the socket buffer is dropped, as on any
 * congested UDP path.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/udp.h>
#include <sys/timerfd.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/random.h"
#include "net/net.h"
#include "net/worker.h"
#include "stun/stun.h"

#define MOD "turn"
#define MAX_WORKERS 256
#define RECV_BATCH 16                    /* datagrams per recvmmsg */
#define DGRAM_MAX (64 * 1024)            /* libuv's per-datagram slot */
#define TCP_IN_MAX (65536 + 8)           /* one frame at most */
#define TCP_OUT_MAX (1024 * 1024)        /* queued bytes before a slow reader is cut */
#define TCP_IDLE_MS 60000                /* a TCP client without allocation this long */
#define MAX_TCP_CONNS 20000              /* per process */
#define SEND_BATCH 64                    /* datagrams to clients per sendmmsg */
#define SEND_SLOT 1536                   /* larger ones are sent at once */
#define RELAY_BATCH 128                  /* datagrams to peers queued per loop iteration */
#define GSO_MAX_SEGS 64                  /* UDP_MAX_SEGMENTS of older kernels */
#define GSO_MAX_BYTES 65000              /* one GSO send stays below 64 KiB */
#define GSO_MAX_SEG 1452                 /* larger datagrams may not fit the path MTU */
#define POLL_ENTER 4                     /* datagrams in one read that start polling */
#define POLL_STAY 2                      /* fewer in one poll: back to readiness */
#define POLL_READ_MAX 512                /* datagrams read from one listener per wake */
#define POLL_BACKOFF_MS 200              /* polling that coalesced nothing: not again so soon */
#define POLL_JUDGE 64                    /* datagrams polled before judging the coalescing */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

struct turn_worker;

/* Listeners and relays begin with their worker: h.data points at them. */
struct listener {
    struct turn_worker *tw;
    union {
        uv_poll_t udp; /* readiness of fd */
        uv_tcp_t tcp;
    } h;
    enum transport transport;
    int fd;       /* UDP: the socket (ours: closed after the handle) */
    bool polling; /* UDP: read from the poll timer, not on readiness */
    struct sockaddr_storage addr;
};

struct tcp_conn {
    uv_tcp_t h;
    struct turn_worker *tw;
    struct turn_tuple tuple;
    struct buf in;
    size_t pending; /* bytes queued in uv_write */
    uint64_t last_active;
    bool closing;
    struct tcp_conn *prev, *next;
};

struct relay {
    struct turn_worker *tw;
    void *alloc;
    uv_udp_t h;
    int fd;
    int qhead, qtail; /* its datagrams in the worker's relay_batch, -1 = none */
};

struct turn_worker {
    struct turn_service *svc;
    uv_loop_t *loop;
    struct turn_server *core;
    struct listener *ls;
    size_t nls;
    uv_timer_t timer;
    /* Datagrams to clients gathered during one poll phase and sent with
     * sendmmsg from the check phase of the same loop iteration. */
    uv_check_t flush;
    struct send_batch *batch;
    struct relay_batch *rbatch;
    /* Polling of busy UDP listeners (turn.poll_us; 0 = always on readiness). */
    uint32_t poll_us;
    int tfd;           /* timerfd, -1 when polling is off */
    uv_poll_t tick;    /* readiness of tfd */
    size_t npolling;   /* listeners now polled */
    size_t joined;     /* datagrams queued behind another to the same socket */
    size_t win_n, win_joined; /* polled datagrams and their joins, since the last judgement */
    uint64_t no_poll_until; /* loop ms: polling did not coalesce sends */
    bool gso_off;      /* the kernel refused UDP_SEGMENT once: plain sends */
    struct mmsghdr rmsg[RECV_BATCH];
    struct iovec riov[RECV_BATCH];
    struct sockaddr_storage rfrom[RECV_BATCH];
    /* Shared by every UDP handle of this loop: libuv runs one handle's
     * reads (alloc, then the callbacks of the batch) before the next. */
    uint8_t *rbuf;
    struct tcp_conn *conns;
    size_t handles_open; /* closes still pending */
};

struct send_batch {
    size_t n;
    struct listener *owner[SEND_BATCH];
    struct mmsghdr msgs[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    struct sockaddr_storage addr[SEND_BATCH];
    uint8_t data[SEND_BATCH][SEND_SLOT];
};

/* Datagrams to peers, a list per relay (relay->qhead → next), sent at check. */
struct relay_batch {
    size_t n, nrelays;
    struct relay *relays[RELAY_BATCH]; /* those with queued datagrams */
    struct {
        int next;
        uint16_t len;
        struct sockaddr_storage peer;
    } e[RELAY_BATCH];
    uint8_t data[RELAY_BATCH][SEND_SLOT];
};

struct turn_service {
    struct config *cfg; /* borrowed */
    struct turn_shared *sh;
    struct sockaddr_storage relay4, relay6;
    bool have4, have6;
    struct turn_io io;
    struct turn_worker *per[MAX_WORKERS];
    atomic_int err;
    atomic_uint tcp_conns;
};

static uint64_t wall_ms(void *ctx)
{
    (void)ctx;
    return clock_wall_ms();
}

static const struct clock_src clock_wall = { wall_ms, NULL };

/* ------------------------------------------------------------------------ */
/* io for the core                                                          */

static void tcp_close(struct tcp_conn *c);

struct write_req {
    uv_write_t req;
    struct tcp_conn *c;
    size_t n;
    uint8_t data[];
};

static void on_tcp_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    w->c->pending -= w->n;
    if (status < 0)
        tcp_close(w->c);
    free(w);
}

static void tcp_send(struct tcp_conn *c, const uint8_t *p, size_t n)
{
    if (c->closing)
        return;
    if (c->pending == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int rc = uv_try_write((uv_stream_t *)&c->h, &b, 1);
        if (rc == (int)n)
            return;
        if (rc < 0 && rc != UV_EAGAIN) {
            tcp_close(c);
            return;
        }
        if (rc > 0) {
            p += rc;
            n -= (size_t)rc;
        }
    }
    if (c->pending + n > TCP_OUT_MAX) {
        log_info(MOD, "TCP client not reading: closing");
        tcp_close(c);
        return;
    }
    struct write_req *w = malloc(sizeof *w + n);
    if (!w) {
        tcp_close(c);
        return;
    }
    memcpy(w->data, p, n);
    w->c = c;
    w->n = n;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->h, &b, 1, on_tcp_written) < 0) {
        free(w);
        tcp_close(c);
        return;
    }
    c->pending += n;
}

/* Sends the gathered datagrams, one sendmmsg per run of the same listener. */
static void batch_flush(struct turn_worker *tw)
{
    struct send_batch *b = tw->batch;
    size_t i = 0;
    while (i < b->n) {
        size_t j = i + 1;
        while (j < b->n && b->owner[j] == b->owner[i])
            j++;
        for (size_t k = i; k < j;) {
            int r = sendmmsg(b->owner[i]->fd, b->msgs + k, (unsigned)(j - k), MSG_DONTWAIT);
            if (r <= 0)
                break; /* EAGAIN: the socket buffer is full; UDP drops the rest */
            k += (size_t)r;
        }
        i = j;
    }
    b->n = 0;
}

/*
 * Sends one relay's queued datagrams: consecutive ones to the same peer with
 * the same size (the last of a run may be shorter) go as one message with
 * UDP_SEGMENT, the messages of the relay in one sendmmsg.
 */
static void relay_send_queued(struct turn_worker *tw, struct relay *r)
{
    struct relay_batch *b = tw->rbatch;
    struct mmsghdr msgs[RELAY_BATCH];
    struct iovec iov[RELAY_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[RELAY_BATCH];
    size_t nm = 0, ni = 0;
    int i = r->qhead;
    while (i >= 0) {
        struct msghdr *h = &msgs[nm].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &b->e[i].peer;
        h->msg_namelen = net_addr_len(&b->e[i].peer);
        h->msg_iov = &iov[ni];
        uint16_t seg = b->e[i].len;
        size_t segs = 0, bytes = 0;
        int j = i;
        while (j >= 0) {
            if (segs && (tw->gso_off || seg > GSO_MAX_SEG ||
                         !net_addr_eq(&b->e[j].peer, &b->e[i].peer) ||
                         b->e[j].len > seg || segs == GSO_MAX_SEGS ||
                         bytes + b->e[j].len > GSO_MAX_BYTES))
                break;
            iov[ni].iov_base = b->data[j];
            iov[ni].iov_len = b->e[j].len;
            ni++;
            segs++;
            bytes += b->e[j].len;
            bool shorter = b->e[j].len < seg;
            j = b->e[j].next;
            if (shorter)
                break; /* only the last segment may be short */
        }
        h->msg_iovlen = segs;
        if (segs > 1) {
            h->msg_control = ctl[nm].buf;
            h->msg_controllen = sizeof ctl[nm].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            memcpy(CMSG_DATA(c), &seg, sizeof seg);
        }
        nm++;
        i = j;
    }
    r->qhead = r->qtail = -1;
    size_t k = 0;
    while (k < nm) {
        int n = sendmmsg(r->fd, msgs + k, (unsigned)(nm - k), MSG_DONTWAIT);
        if (n > 0) {
            k += (size_t)n;
            continue;
        }
        struct msghdr *h = &msgs[k].msg_hdr;
        if (h->msg_controllen && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
            /* Refused as one GSO send (no checksum offload on the path: EIO; a
             * segment above the path MTU: EINVAL): these one by one. */
            if (errno != EINVAL && !tw->gso_off) {
                log_info(MOD, "UDP GSO refused (%s): relaying datagram by datagram",
                         strerror(errno));
                tw->gso_off = true;
            }
            for (size_t s = 0; s < h->msg_iovlen; s++)
                sendto(r->fd, h->msg_iov[s].iov_base, h->msg_iov[s].iov_len, MSG_DONTWAIT,
                       h->msg_name, h->msg_namelen);
        }
        k++; /* EAGAIN or an error for this message: UDP drops it */
    }
}

/* Sends every queued datagram to peers. */
static void relay_flush(struct turn_worker *tw)
{
    struct relay_batch *b = tw->rbatch;
    for (size_t i = 0; i < b->nrelays; i++)
        relay_send_queued(tw, b->relays[i]);
    b->n = b->nrelays = 0;
}

static void on_flush(uv_check_t *h)
{
    struct turn_worker *tw = h->data;
    if (tw->batch->n)
        batch_flush(tw);
    if (tw->rbatch->n)
        relay_flush(tw);
}

static void io_send_client(void *ctx, const struct turn_tuple *t, const uint8_t *p, size_t n)
{
    struct turn_worker *tw = ctx;
    if (t->transport == TRANSPORT_TCP) {
        tcp_send(t->conn, p, n);
        return;
    }
    struct listener *l = t->conn;
    struct send_batch *b = tw->batch;
    if (n > SEND_SLOT) {
        batch_flush(tw); /* keeps the order toward this client */
        sendto(l->fd, p, n, MSG_DONTWAIT, (const struct sockaddr *)&t->client,
               net_addr_len(&t->client));
        return;
    }
    if (b->n == SEND_BATCH)
        batch_flush(tw);
    if (b->n)
        tw->joined++;
    size_t i = b->n++;
    memcpy(b->data[i], p, n);
    socklen_t alen = net_addr_len(&t->client);
    memcpy(&b->addr[i], &t->client, alen);
    b->owner[i] = l;
    b->iov[i].iov_base = b->data[i];
    b->iov[i].iov_len = n;
    memset(&b->msgs[i], 0, sizeof b->msgs[i]);
    b->msgs[i].msg_hdr.msg_name = &b->addr[i];
    b->msgs[i].msg_hdr.msg_namelen = alen;
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
}

static void on_relay_closed(uv_handle_t *h)
{
    struct relay *r = h->data;
    r->tw->handles_open--;
    free(r);
}

static void alloc_rbuf(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_relay_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b,
                          const struct sockaddr *from, unsigned flags);

/* A bare nonblocking UDP socket bound to base with port, or -errno. */
static int raw_udp_bind(const struct sockaddr_storage *base, uint32_t port)
{
    struct sockaddr_storage a = *base;
    socklen_t len;
    if (a.ss_family == AF_INET) {
        ((struct sockaddr_in *)&a)->sin_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in);
    } else {
        ((struct sockaddr_in6 *)&a)->sin6_port = htons((uint16_t)port);
        len = sizeof(struct sockaddr_in6);
    }
    int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (a.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, len) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/*
 * Binds a relay port in the configured range, starting at a random one: an
 * even one if even, and then with the next port too when reserve_fd is set.
 * Returns the fd of the relay socket or -EADDRINUSE.
 */
static int bind_relay(struct turn_worker *tw, const struct sockaddr_storage *base, bool even,
                      int *reserve_fd)
{
    const struct config *cfg = tw->svc->cfg;
    uint32_t lo = cfg->turn.relay_port_min, hi = cfg->turn.relay_port_max;
    uint32_t span = hi - lo + 1;
    uint32_t start = lo + (uint32_t)random_below(span);
    uint32_t tries = span < 512 ? span : 512;
    for (uint32_t i = 0; i < tries; i++) {
        uint32_t port = lo + (start - lo + i) % span;
        if ((even || reserve_fd) && port % 2)
            continue;
        if (reserve_fd && port + 1 > hi)
            continue;
        int fd = raw_udp_bind(base, port);
        if (fd == -EADDRINUSE || fd == -EACCES)
            continue;
        if (fd < 0)
            return fd;
        if (reserve_fd) {
            int fd2 = raw_udp_bind(base, port + 1);
            if (fd2 < 0) {
                close(fd);
                continue;
            }
            *reserve_fd = fd2;
        }
        return fd;
    }
    return -EADDRINUSE;
}

static int io_relay_open(void *ctx, void *alloc, int family, bool even, int *reserve_fd,
                         int adopt_fd, void **handle, struct sockaddr_storage *addr)
{
    struct turn_worker *tw = ctx;
    struct turn_service *svc = tw->svc;
    int fd = adopt_fd;
    if (fd < 0) {
        if ((family == AF_INET && !svc->have4) || (family == AF_INET6 && !svc->have6))
            return -EAFNOSUPPORT;
        fd = bind_relay(tw, family == AF_INET ? &svc->relay4 : &svc->relay6, even, reserve_fd);
        if (fd < 0)
            return fd;
    }
    struct relay *r = calloc(1, sizeof *r);
    int rc = r ? uv_udp_init_ex(tw->loop, &r->h, AF_UNSPEC | UV_UDP_RECVMMSG) : -ENOMEM;
    if (rc < 0) {
        free(r);
        close(fd);
        if (reserve_fd && *reserve_fd >= 0 && adopt_fd < 0)
            close(*reserve_fd);
        return rc;
    }
    r->tw = tw;
    r->alloc = alloc;
    r->h.data = r;
    r->fd = fd;
    r->qhead = r->qtail = -1;
    tw->handles_open++;
    rc = uv_udp_open(&r->h, fd);
    if (rc < 0)
        close(fd); /* not the handle's: uv_close would not close it */
    else
        rc = uv_udp_recv_start(&r->h, alloc_rbuf, on_relay_recv);
    if (rc < 0) {
        uv_close((uv_handle_t *)&r->h, on_relay_closed);
        if (reserve_fd && *reserve_fd >= 0)
            close(*reserve_fd);
        return rc;
    }
    int len = sizeof *addr;
    uv_udp_getsockname(&r->h, (struct sockaddr *)addr, &len);
    *handle = r;
    return 0;
}

static void io_reserve_close(void *ctx, int fd)
{
    (void)ctx;
    close(fd);
}

static void io_relay_close(void *ctx, void *handle)
{
    struct turn_worker *tw = ctx;
    struct relay *r = handle;
    if (r->qhead >= 0)
        relay_flush(tw); /* before uv_close closes its socket */
    r->alloc = NULL;
    uv_close((uv_handle_t *)&r->h, on_relay_closed);
}

static void io_relay_send(void *ctx, void *handle, const struct sockaddr *peer, const uint8_t *p,
                          size_t n)
{
    struct turn_worker *tw = ctx;
    struct relay *r = handle;
    struct relay_batch *b = tw->rbatch;
    /* by sa_family: peer need not be aligned as a sockaddr_storage */
    socklen_t alen = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in);
    if (n > SEND_SLOT) {
        if (r->qhead >= 0)
            relay_flush(tw); /* keeps the order toward this peer */
        sendto(r->fd, p, n, MSG_DONTWAIT, peer, alen);
        return;
    }
    if (b->n == RELAY_BATCH)
        relay_flush(tw);
    int i = (int)b->n++;
    memcpy(b->data[i], p, n);
    b->e[i].len = (uint16_t)n;
    b->e[i].next = -1;
    memcpy(&b->e[i].peer, peer, alen);
    if (r->qhead < 0) {
        r->qhead = i;
        b->relays[b->nrelays++] = r;
    } else {
        b->e[r->qtail].next = i;
        tw->joined++;
    }
    r->qtail = i;
}

/* ------------------------------------------------------------------------ */
/* UDP                                                                      */

static void alloc_rbuf(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct turn_worker *tw = *(struct turn_worker **)h->data;
    *b = uv_buf_init((char *)tw->rbuf, RECV_BATCH * DGRAM_MAX);
}

/*
 * Reads what waits on the UDP listener l (at most max datagrams, recvmmsg
 * batches, stopping at the first short batch) and hands each datagram to the
 * core. Returns how many were read.
 */
static size_t listener_read(struct listener *l, size_t max)
{
    struct turn_worker *tw = l->tw;
    size_t total = 0;
    struct turn_tuple t;
    t.transport = TRANSPORT_UDP;
    t.local = l->addr;
    t.conn = l;
    while (total < max) {
        for (size_t k = 0; k < RECV_BATCH; k++)
            tw->rmsg[k].msg_hdr.msg_namelen = sizeof tw->rfrom[k];
        int r = recvmmsg(l->fd, tw->rmsg, RECV_BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0)
            break; /* EAGAIN, or an error the next read will not repeat */
        for (int k = 0; k < r; k++) {
            const struct msghdr *h = &tw->rmsg[k].msg_hdr;
            if ((h->msg_flags & MSG_TRUNC) || h->msg_namelen > sizeof t.client)
                continue;
            memset(&t.client, 0, sizeof t.client);
            memcpy(&t.client, &tw->rfrom[k], h->msg_namelen);
            turn_client_input(tw->core, &t, h->msg_iov->iov_base, tw->rmsg[k].msg_len);
        }
        total += (size_t)r;
        if (r < RECV_BATCH)
            break;
    }
    return total;
}

static void on_listener_readable(uv_poll_t *h, int status, int events);

static void poll_arm(struct turn_worker *tw, bool on)
{
    struct itimerspec its = { 0 };
    if (on) {
        its.it_interval.tv_sec = tw->poll_us / 1000000;
        its.it_interval.tv_nsec = (long)(tw->poll_us % 1000000) * 1000;
        its.it_value = its.it_interval;
    }
    timerfd_settime(tw->tfd, 0, &its, NULL);
}

/* Readiness: read; a busy listener leaves epoll for the poll timer. */
static void on_listener_readable(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct listener *l = h->data;
    struct turn_worker *tw = l->tw;
    size_t n = listener_read(l, POLL_READ_MAX);
    if (status < 0) {
        /* POLLERR: libuv stopped the handle; the read above took the error. */
        uv_poll_start(&l->h.udp, UV_READABLE, on_listener_readable);
        return;
    }
    if (n >= POLL_ENTER && tw->tfd >= 0 && !l->polling &&
        uv_now(tw->loop) >= tw->no_poll_until) {
        uv_poll_stop(&l->h.udp);
        l->polling = true;
        if (tw->npolling++ == 0) {
            tw->win_n = tw->win_joined = 0;
            poll_arm(tw, true);
        }
    }
}

/* The poll timer: reads the polled listeners; a quiet one goes back to readiness. */
static void on_poll_tick(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct turn_worker *tw = h->data;
    uint64_t ticks;
    if (read(tw->tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
        return;
    for (size_t i = 0; i < tw->nls && tw->npolling; i++) {
        struct listener *l = &tw->ls[i];
        if (!l->polling)
            continue;
        tw->joined = 0;
        size_t n = listener_read(l, POLL_READ_MAX);
        /* Polling pays when it makes sends share a syscall or a GSO packet:
         * when a quarter of the polled datagrams did not, back to readiness
         * for a while. */
        tw->win_n += n;
        tw->win_joined += tw->joined;
        bool pays = true;
        if (tw->win_n >= POLL_JUDGE) {
            pays = tw->win_joined * 4 >= tw->win_n;
            tw->win_n = tw->win_joined = 0;
        }
        if (n >= POLL_STAY && pays)
            continue;
        if (!pays)
            tw->no_poll_until = uv_now(tw->loop) + POLL_BACKOFF_MS;
        l->polling = false;
        tw->npolling--;
        uv_poll_start(&l->h.udp, UV_READABLE, on_listener_readable);
    }
    if (tw->npolling == 0)
        poll_arm(tw, false);
}

static void on_relay_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b,
                          const struct sockaddr *from, unsigned flags)
{
    struct relay *r = h->data;
    struct turn_worker *tw = r->tw;
    if (nread >= 0 && from && r->alloc)
        turn_peer_input(tw->core, r->alloc, from, (const uint8_t *)b->base, (size_t)nread);
    (void)flags;
}

/* ------------------------------------------------------------------------ */
/* TCP                                                                      */

static void on_tcp_closed(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;
    struct turn_worker *tw = c->tw;
    tw->handles_open--;
    atomic_fetch_sub(&tw->svc->tcp_conns, 1);
    buf_free(&c->in);
    free(c);
}

static void tcp_close(struct tcp_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct turn_worker *tw = c->tw;
    if (c->prev)
        c->prev->next = c->next;
    else
        tw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    turn_conn_closed(tw->core, c);
    uv_close((uv_handle_t *)&c->h, on_tcp_closed);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct tcp_conn *c = h->data;
    size_t room = TCP_IN_MAX - c->in.len;
    if (room > 16384)
        room = 16384; /* grows as a large frame arrives, up to TCP_IN_MAX */
    if (room == 0 || buf_reserve(&c->in, room) < 0) {
        *b = uv_buf_init(NULL, 0);
        return;
    }
    *b = uv_buf_init((char *)c->in.data + c->in.len, (unsigned)room);
}

static void on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct tcp_conn *c = s->data;
    if (nread < 0) {
        tcp_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    c->last_active = uv_now(c->tw->loop);
    size_t off = 0;
    while (!c->closing) {
        int n = stun_frame_len(c->in.data + off, c->in.len - off, true);
        if (n == -EAGAIN)
            break;
        if (n < 0) {
            log_info(MOD, "TCP client sent neither STUN nor ChannelData: closing");
            tcp_close(c);
            return;
        }
        turn_client_input(c->tw->core, &c->tuple, c->in.data + off, (size_t)n);
        off += (size_t)n;
    }
    buf_consume(&c->in, off);
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct turn_worker *tw = l->tw;
    if (status < 0)
        return;
    struct tcp_conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(tw->loop, &c->h) < 0) {
        free(c);
        return;
    }
    c->h.data = c;
    c->tw = tw;
    buf_init(&c->in, TCP_IN_MAX);
    tw->handles_open++;
    atomic_fetch_add(&tw->svc->tcp_conns, 1);
    c->closing = true; /* not in the list yet */
    if (uv_accept(server, (uv_stream_t *)&c->h) < 0 ||
        atomic_load(&tw->svc->tcp_conns) > MAX_TCP_CONNS) {
        uv_close((uv_handle_t *)&c->h, on_tcp_closed);
        return;
    }
    c->closing = false;
    c->tuple.transport = TRANSPORT_TCP;
    int len = sizeof c->tuple.client;
    uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->tuple.client, &len);
    len = sizeof c->tuple.local;
    uv_tcp_getsockname(&c->h, (struct sockaddr *)&c->tuple.local, &len);
    c->tuple.conn = c;
    c->last_active = uv_now(tw->loop);
    uv_tcp_nodelay(&c->h, 1);
    c->next = tw->conns;
    if (tw->conns)
        tw->conns->prev = c;
    tw->conns = c;
    if (uv_read_start((uv_stream_t *)&c->h, tcp_alloc, on_tcp_read) < 0)
        tcp_close(c);
}

/* ------------------------------------------------------------------------ */
/* Worker hooks                                                             */

static int open_socket(const struct listen_addr *la)
{
    int fam = la->addr.ss_family;
    int type = la->transport == TRANSPORT_UDP ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(fam, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        (fam == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (type == SOCK_DGRAM) {
        int sz = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    }
    if (bind(fd, (const struct sockaddr *)&la->addr, la->addrlen) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct turn_worker *tw = h->data;
    tw->handles_open--;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    if (l->transport == TRANSPORT_UDP)
        close(l->fd); /* a uv_poll_t does not own its socket */
    l->tw->handles_open--;
}

static void on_tick(uv_timer_t *t)
{
    struct turn_worker *tw = t->data;
    turn_server_tick(tw->core);
    uint64_t now = uv_now(tw->loop);
    for (struct tcp_conn *c = tw->conns, *next; c; c = next) {
        next = c->next;
        if (now - c->last_active > TCP_IDLE_MS) {
            /* A connection that carries an allocation stays while the allocation does. */
            c->last_active = now;
            if (!turn_server_has_conn(tw->core, c))
                tcp_close(c);
        }
    }
}

static void fail(struct turn_service *svc, int rc)
{
    int zero = 0;
    atomic_compare_exchange_strong(&svc->err, &zero, rc);
}

/* See stun.h. */
void turn_service_on_start(struct worker *w, void *ctx)
{
    struct turn_service *svc = ctx;
    unsigned idx = worker_index(w);
    if (idx >= MAX_WORKERS) {
        fail(svc, -ERANGE);
        return;
    }
    struct turn_worker *tw = calloc(1, sizeof *tw);
    const struct listen_list *ll = &svc->cfg->turn.listen;
    if (!tw) {
        fail(svc, -ENOMEM);
        return;
    }
    tw->svc = svc;
    tw->loop = worker_loop(w);
    tw->rbuf = malloc(RECV_BATCH * DGRAM_MAX);
    tw->ls = calloc(ll->n ? ll->n : 1, sizeof *tw->ls);
    tw->batch = calloc(1, sizeof *tw->batch);
    tw->rbatch = calloc(1, sizeof *tw->rbatch);
    tw->tfd = -1;
    if (!tw->rbuf || !tw->ls || !tw->batch || !tw->rbatch ||
        turn_server_new(&tw->core, svc->sh, &svc->io, tw, &clock_system, &clock_wall) < 0) {
        free(tw->rbuf);
        free(tw->ls);
        free(tw->batch);
        free(tw->rbatch);
        free(tw);
        fail(svc, -ENOMEM);
        return;
    }
    for (size_t k = 0; k < RECV_BATCH; k++) {
        tw->riov[k].iov_base = tw->rbuf + k * DGRAM_MAX;
        tw->riov[k].iov_len = DGRAM_MAX;
        tw->rmsg[k].msg_hdr.msg_iov = &tw->riov[k];
        tw->rmsg[k].msg_hdr.msg_iovlen = 1;
        tw->rmsg[k].msg_hdr.msg_name = &tw->rfrom[k];
    }
    tw->poll_us = svc->cfg->turn.poll_us;
    if (tw->poll_us) {
        tw->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (tw->tfd >= 0 && uv_poll_init(tw->loop, &tw->tick, tw->tfd) == 0) {
            tw->tick.data = tw;
            tw->handles_open++;
            uv_poll_start(&tw->tick, UV_READABLE, on_poll_tick);
        } else {
            log_warn(MOD, "no timerfd (%s): turn.poll_us is ignored", strerror(errno));
            if (tw->tfd >= 0)
                close(tw->tfd);
            tw->tfd = -1;
        }
    }
    svc->per[idx] = tw;
    uv_timer_init(tw->loop, &tw->timer);
    tw->timer.data = tw;
    tw->handles_open++;
    uv_timer_start(&tw->timer, on_tick, 1000, 1000);
    uv_check_init(tw->loop, &tw->flush);
    tw->flush.data = tw;
    tw->handles_open++;
    uv_check_start(&tw->flush, on_flush);
    for (size_t i = 0; i < ll->n; i++) {
        const struct listen_addr *la = &ll->v[i];
        if (la->transport != TRANSPORT_UDP && la->transport != TRANSPORT_TCP) {
            log_warn(MOD, "turn.listen: %s is not served yet; skipped",
                     transport_name(la->transport));
            continue;
        }
        int fd = open_socket(la);
        char host[INET6_ADDRSTRLEN] = "?";
        const void *ip = la->addr.ss_family == AF_INET
                             ? (const void *)&((const struct sockaddr_in *)&la->addr)->sin_addr
                             : (const void *)&((const struct sockaddr_in6 *)&la->addr)->sin6_addr;
        inet_ntop(la->addr.ss_family, ip, host, sizeof host);
        if (fd < 0) {
            log_error(MOD, "cannot listen on %s:%s: %s", transport_name(la->transport), host,
                      strerror(-fd));
            fail(svc, fd);
            continue;
        }
        struct listener *l = &tw->ls[tw->nls];
        l->tw = tw;
        l->transport = la->transport;
        l->addr = la->addr;
        int rc;
        if (la->transport == TRANSPORT_UDP) {
            rc = uv_poll_init(tw->loop, &l->h.udp, fd);
            if (rc == 0) {
                l->h.udp.data = l;
                l->fd = fd;
                tw->handles_open++;
                tw->nls++;
                rc = uv_poll_start(&l->h.udp, UV_READABLE, on_listener_readable);
            } else {
                close(fd);
            }
        } else {
            rc = uv_tcp_init(tw->loop, &l->h.tcp);
            if (rc == 0) {
                l->h.tcp.data = l;
                tw->handles_open++;
                tw->nls++;
                rc = uv_tcp_open(&l->h.tcp, fd);
                if (rc == 0)
                    rc = uv_listen((uv_stream_t *)&l->h.tcp, 511, on_tcp_connection);
            }
        }
        if (rc < 0) {
            log_error(MOD, "cannot listen on %s:%s: %s", transport_name(la->transport), host,
                      uv_strerror(rc));
            fail(svc, rc);
        } else if (idx == 0) {
            log_info(MOD, "listening on %s:%s port %u", transport_name(la->transport), host,
                     la->addr.ss_family == AF_INET
                         ? ntohs(((const struct sockaddr_in *)&la->addr)->sin_port)
                         : ntohs(((const struct sockaddr_in6 *)&la->addr)->sin6_port));
        }
    }
}

/* See stun.h. */
void turn_service_on_stop(struct worker *w, void *ctx)
{
    struct turn_service *svc = ctx;
    unsigned idx = worker_index(w);
    struct turn_worker *tw = idx < MAX_WORKERS ? svc->per[idx] : NULL;
    if (!tw)
        return;
    const struct turn_stats *st = turn_server_stats(tw->core);
    log_info(MOD, "worker %u: %llu allocations, %llu packets to peers, %llu to clients, "
                  "%llu dropped",
             idx, (unsigned long long)st->allocations, (unsigned long long)st->relayed_to_peer,
             (unsigned long long)st->relayed_to_client, (unsigned long long)st->dropped);
    while (tw->conns)
        tcp_close(tw->conns);
    if (tw->batch->n)
        batch_flush(tw); /* while the listeners are open */
    if (tw->rbatch->n)
        relay_flush(tw);
    turn_server_free(tw->core); /* closes the relays */
    tw->core = NULL;
    for (size_t i = 0; i < tw->nls; i++)
        uv_close((uv_handle_t *)&tw->ls[i].h, on_listener_closed);
    uv_close((uv_handle_t *)&tw->timer, on_handle_closed);
    uv_close((uv_handle_t *)&tw->flush, on_handle_closed);
    if (tw->tfd >= 0)
        uv_close((uv_handle_t *)&tw->tick, on_handle_closed);
    /* Let the closes finish before the memory goes (the loop is ours to run). */
    while (tw->handles_open > 0)
        uv_run(tw->loop, UV_RUN_ONCE);
    svc->per[idx] = NULL;
    free(tw->ls);
    free(tw->rbuf);
    free(tw->batch);
    free(tw->rbatch);
    if (tw->tfd >= 0)
        close(tw->tfd);
    free(tw);
}

/* See stun.h. */
int turn_service_error(const struct turn_service *svc)
{
    return atomic_load(&((struct turn_service *)svc)->err);
}

/* The first address of family on an interface that is up and not loopback (else loopback). */
static bool pick_interface_addr(int family, struct sockaddr_storage *out)
{
    struct ifaddrs *ifs = NULL, *lo = NULL;
    bool found = false;
    if (getifaddrs(&ifs) < 0)
        return false;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != family)
            continue;
        if (family == AF_INET6 &&
            IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
            continue;
        if (i->ifa_flags & IFF_LOOPBACK) {
            if (!lo)
                lo = i;
            continue;
        }
        memset(out, 0, sizeof *out);
        memcpy(out, i->ifa_addr,
               family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        found = true;
        break;
    }
    if (!found && lo) {
        memset(out, 0, sizeof *out);
        memcpy(out, lo->ifa_addr,
               family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        found = true;
    }
    freeifaddrs(ifs);
    return found;
}

/* Chooses the relay address of each family: turn.relay_address, a listening address, an interface. */
static int choose_relays(struct turn_service *svc)
{
    const struct config *cfg = svc->cfg;
    str rest = str_cstr(cfg->turn.relay_address);
    while (rest.len) {
        ssize_t comma = str_find_char(rest, ',');
        str item = str_trim(comma < 0 ? rest : str_sub(rest, 0, (size_t)comma));
        rest = comma < 0 ? STR_NULL : str_skip(rest, (size_t)comma + 1);
        char txt[INET6_ADDRSTRLEN];
        if (!item.len)
            continue;
        if (str_copy(txt, sizeof txt, item) < 0)
            return -EINVAL;
        struct sockaddr_in *s4 = (struct sockaddr_in *)&svc->relay4;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&svc->relay6;
        if (inet_pton(AF_INET, txt, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            svc->have4 = true;
        } else if (inet_pton(AF_INET6, txt, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            svc->have6 = true;
        } else {
            log_error(MOD, "turn.relay_address: '%s' is not an IP address", txt);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < cfg->turn.listen.n; i++) {
        const struct sockaddr_storage *a = &cfg->turn.listen.v[i].addr;
        if (net_addr_is_wildcard(a))
            continue;
        if (a->ss_family == AF_INET && !svc->have4) {
            svc->relay4 = *a;
            svc->have4 = true;
        } else if (a->ss_family == AF_INET6 && !svc->have6) {
            svc->relay6 = *a;
            svc->have6 = true;
        }
    }
    bool any4 = false, any6 = false;
    for (size_t i = 0; i < cfg->turn.listen.n; i++) {
        const struct sockaddr_storage *a = &cfg->turn.listen.v[i].addr;
        if (net_addr_is_wildcard(a))
            *(a->ss_family == AF_INET ? &any4 : &any6) = true;
    }
    if (any4 && !svc->have4)
        svc->have4 = pick_interface_addr(AF_INET, &svc->relay4);
    if (any6 && !svc->have6)
        svc->have6 = pick_interface_addr(AF_INET6, &svc->relay6);
    if (!svc->have6)
        svc->have6 = pick_interface_addr(AF_INET6, &svc->relay6) &&
                     !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&svc->relay6)->sin6_addr);
    if (svc->have6 && net_addr_is_wildcard(&svc->relay6))
        svc->have6 = false;
    ((struct sockaddr_in *)&svc->relay4)->sin_port = 0;
    ((struct sockaddr_in6 *)&svc->relay6)->sin6_port = 0;
    return 0;
}

/* See stun.h. */
int turn_service_new(struct turn_service **out, const struct config *cfg, turn_lookup_fn lookup,
                     void *lookup_ctx)
{
    struct turn_service *svc = calloc(1, sizeof *svc);
    if (!svc)
        return -ENOMEM;
    svc->cfg = (struct config *)cfg;
    int rc = choose_relays(svc);
    if (rc == 0)
        rc = turn_shared_new(&svc->sh, cfg, lookup, lookup_ctx);
    if (rc < 0) {
        if (rc == -EINVAL)
            log_error(MOD, "turn.users: expected 'name:password, ...'");
        free(svc);
        return rc;
    }
    for (size_t i = 0; i < cfg->turn.listen.n; i++)
        if (!net_addr_is_wildcard(&cfg->turn.listen.v[i].addr))
            turn_shared_deny_addr(svc->sh, (const struct sockaddr *)&cfg->turn.listen.v[i].addr);
    if (svc->have4)
        turn_shared_deny_addr(svc->sh, (const struct sockaddr *)&svc->relay4);
    if (svc->have6)
        turn_shared_deny_addr(svc->sh, (const struct sockaddr *)&svc->relay6);
    svc->io.send_client = io_send_client;
    svc->io.relay_open = io_relay_open;
    svc->io.relay_close = io_relay_close;
    svc->io.reserve_close = io_reserve_close;
    svc->io.relay_send = io_relay_send;
    *out = svc;
    return 0;
}

/* See stun.h. */
void turn_service_free(struct turn_service *svc)
{
    if (!svc)
        return;
    turn_shared_free(svc->sh);
    free(svc);
}
