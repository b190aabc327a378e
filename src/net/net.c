/*
 * net — UDP, TCP and TLS transports on the worker loops. TLS (net/tls.h) sits
 * between the socket and the flow's buffers: on_read decrypts into f->in,
 * flow_write encrypts; framing above sees plaintext only.
 */
#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/map.h"
#include "net/steer.h"
#include "net/tls.h"

#define UDP_DGRAM_MAX 65536
#define UDP_BATCH 16 /* datagrams per recvmmsg */
#define READ_CHUNK 16384
#define SWEEP_MS 1000
#define FLOW_ID_SHIFT 48
#define NET_MAX_LISTEN (2 * CONFIG_MAX_LISTEN)
#define DRAIN_MS 2000 /* a gracefully closed flow waits this long for the peer's close */

struct counters {
    _Atomic uint64_t udp_rx, udp_tx, tcp_rx, tcp_tx;
    _Atomic uint64_t tcp_accepted, tcp_refused, tcp_closed, tcp_open;
    _Atomic uint64_t keepalives, frame_errors, send_errors;
};

struct net {
    struct listen_list listen;
    /* stream listeners of other kinds (HTTP): after the SIP ones, same indexes as bound_port */
    struct listen_addr app_listen[CONFIG_MAX_LISTEN];
    size_t n_app;
    const struct net_stream_ops *app_ops;
    void *app_ctx;
    struct net_limits lim;
    struct net_handlers h;
    unsigned nworkers;
    struct net_worker **workers; /* by worker index; each slot read only on its own worker */
    struct worker *_Atomic *wk;  /* by worker index, set at start, read by any worker */
    pthread_mutex_t lock;        /* guards bound ports and per_ip */
    uint16_t bound_port[NET_MAX_LISTEN];
    /* UDP listener i's sockets, worker k's at [i * nworkers + k], until k takes it (-1) */
    int *udp_fds;
    int udp_state[CONFIG_MAX_LISTEN]; /* 0 not bound yet, 1 bound, else the bind's -errno */
    struct map *per_ip; /* raw address bytes → connection count (as uintptr_t) */
    pthread_mutex_t flows_lock;
    struct map *alive; /* every open flow id (any worker) → 1 */
    _Atomic uint32_t conns;
    struct counters c;
    struct tls_server *tls; /* borrowed; NULL = no TLS (listeners of it are not opened) */
};

struct udp_sock {
    uv_udp_t h;
    struct sockaddr_storage local;
    struct net_worker *nw;
};

struct tcp_listener {
    uv_tcp_t h;
    enum transport transport; /* TCP or TLS */
    struct sockaddr_storage local;
    struct net_worker *nw;
    bool app; /* an app_listen entry: flows use the stream ops */
};

struct flow {
    uint64_t id;
    struct net_worker *nw;
    uv_tcp_t tcp;
    struct sockaddr_storage peer, local;
    socklen_t peerlen;
    struct buf in;
    struct buf pending; /* writes waiting for an outbound connect */
    uint64_t last_ms;
    int pins;
    bool connected, closing, counted;
    bool outbound;        /* opened by us (flow_connect) */
    bool last_words;      /* closing: ciphertext goes out only if the socket takes it now */
    bool tls_up;          /* the handshake's end has been logged */
    uint8_t transport;    /* TRANSPORT_TCP or TRANSPORT_TLS */
    struct tls_conn *tls; /* TLS flows */
    uint64_t born_ms;     /* for the TLS handshake timeout */
    uv_connect_t connect;
    const struct net_stream_ops *ops; /* another protocol's flow (HTTP), else SIP */
    void *app;                        /* its per-flow context */
    bool draining, in_data;
    uint64_t drain_until;
    uv_shutdown_t shutdown;
};

struct net_worker {
    struct net *net;
    struct worker *w;
    uv_loop_t *loop;
    struct udp_sock udp[CONFIG_MAX_LISTEN];
    size_t n_udp;
    struct tcp_listener tcp[NET_MAX_LISTEN];
    size_t n_tcp;
    struct map *flows;   /* id → flow */
    struct map *by_addr; /* peer address bytes → flow, for reuse */
    uint64_t next_flow;
    uv_timer_t sweep;
    char *udp_buf;
    char *tls_buf; /* ciphertext read buffer, one per worker (consumed within on_read) */
    unsigned open_handles; /* freed when the last close callback runs */
    bool stopping;
};

#define CNT_ADD(n, f, v) atomic_fetch_add_explicit(&(n)->c.f, (v), memory_order_relaxed)

/* ---- addresses ---- */

static size_t addr_key(const struct sockaddr_storage *ss, uint8_t *out, bool with_port)
{
    size_t n = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        memcpy(out, &s->sin_addr, 4);
        n = 4;
        if (with_port) {
            memcpy(out + n, &s->sin_port, 2);
            n += 2;
        }
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        memcpy(out, &s->sin6_addr, 16);
        n = 16;
        if (with_port) {
            memcpy(out + n, &s->sin6_port, 2);
            n += 2;
        }
    }
    return n;
}

/* The by_addr key of a connection: peer address, port and transport (TCP and TLS differ). */
static size_t flow_key(const struct sockaddr_storage *ss, enum transport t, uint8_t *out)
{
    size_t n = addr_key(ss, out, true);
    out[n] = (uint8_t)t;
    return n + 1;
}

const char *net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET && len >= 22) {
        /* by hand: Via and Record-Route values are built from this for every
         * forwarded request, and inet_ntop + snprintf cost ~2,500 instructions */
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        const uint8_t *b = (const uint8_t *)&s->sin_addr.s_addr;
        size_t n = 0;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100)
                buf[n++] = (char)('0' + v / 100);
            if (v >= 10)
                buf[n++] = (char)('0' + v / 10 % 10);
            buf[n++] = (char)('0' + v % 10);
            buf[n++] = i < 3 ? '.' : ':';
        }
        unsigned port = ntohs(s->sin_port);
        char d[5];
        size_t k = 0;
        do {
            d[k++] = (char)('0' + port % 10);
            port /= 10;
        } while (port);
        while (k)
            buf[n++] = d[--k];
        buf[n] = '\0';
    } else if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, ntohs(s->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, ntohs(s->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

bool net_addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    uint8_t ka[18], kb[18];
    size_t na = addr_key(a, ka, true), nb = addr_key(b, kb, true);
    return na == nb && memcmp(ka, kb, na) == 0;
}

uint16_t net_addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

socklen_t net_addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* ---- shared part ---- */

int net_new(struct net **out, const struct listen_list *listen, const struct net_limits *lim,
            const struct net_handlers *h, unsigned nworkers)
{
    struct net *n = calloc(1, sizeof *n);
    if (!n)
        return -ENOMEM;
    n->workers = calloc(nworkers ? nworkers : 1, sizeof *n->workers);
    n->wk = calloc(nworkers ? nworkers : 1, sizeof *n->wk);
    n->udp_fds = malloc(CONFIG_MAX_LISTEN * (nworkers ? nworkers : 1) * sizeof *n->udp_fds);
    if (!n->workers || !n->wk || !n->udp_fds || map_new(&n->per_ip, MAP_KEY_STR, 64) < 0 ||
        map_new(&n->alive, MAP_KEY_INT, 1024) < 0) {
        map_free(n->per_ip);
        free(n->workers);
        free(n->wk);
        free(n->udp_fds);
        free(n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < CONFIG_MAX_LISTEN * (nworkers ? nworkers : 1); i++)
        n->udp_fds[i] = -1;
    for (size_t i = 0; i < listen->n; i++) {
        const struct listen_addr *la = &listen->v[i];
        if (la->transport == TRANSPORT_UDP || la->transport == TRANSPORT_TCP ||
            la->transport == TRANSPORT_TLS) {
            n->listen.v[n->listen.n++] = *la;
        } else {
            char a[64];
            log_warn("net", "%s:%s: transport not served yet, skipped",
                     transport_name(la->transport), net_addr_str(&la->addr, a, sizeof a));
        }
    }
    n->lim = *lim;
    if (!n->lim.max_write_queue)
        n->lim.max_write_queue = 4u << 20;
    n->h = *h;
    n->nworkers = nworkers ? nworkers : 1;
    pthread_mutex_init(&n->lock, NULL);
    pthread_mutex_init(&n->flows_lock, NULL);
    *out = n;
    return 0;
}

void net_set_tls(struct net *n, struct tls_server *tls)
{
    n->tls = tls;
}

void net_free(struct net *n)
{
    if (!n)
        return;
    map_free(n->per_ip);
    map_free(n->alive);
    for (size_t i = 0; i < CONFIG_MAX_LISTEN * n->nworkers; i++)
        if (n->udp_fds[i] >= 0)
            close(n->udp_fds[i]); /* a worker that never started */
    free(n->udp_fds);
    pthread_mutex_destroy(&n->lock);
    pthread_mutex_destroy(&n->flows_lock);
    free(n->workers);
    free(n->wk);
    free(n);
}

void net_get_stats(const struct net *n, struct net_stats *o)
{
#define RD(f) o->f = atomic_load_explicit(&n->c.f, memory_order_relaxed)
    RD(udp_rx);
    RD(udp_tx);
    RD(tcp_rx);
    RD(tcp_tx);
    RD(tcp_accepted);
    RD(tcp_refused);
    RD(tcp_closed);
    RD(tcp_open);
    RD(keepalives);
    RD(frame_errors);
    RD(send_errors);
#undef RD
}

const struct sockaddr_storage *net_local_addr(const struct net *n, enum transport t, int family)
{
    for (size_t i = 0; i < n->listen.n; i++)
        if (n->listen.v[i].transport == t && n->listen.v[i].addr.ss_family == family)
            return &n->listen.v[i].addr;
    return NULL;
}

bool net_addr_is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* Source addresses the kernel chose toward peers, per thread, kept TOWARD_TTL_MS. */
#define TOWARD_SLOTS 64
#define TOWARD_TTL_MS 60000
struct toward {
    uint8_t key[19]; /* the peer's address without port (addr_key) */
    size_t keylen;
    struct sockaddr_storage local;
    uint64_t at;
};
static _Thread_local struct toward toward_cache[TOWARD_SLOTS];

static int route_source(const struct sockaddr_storage *peer, struct sockaddr_storage *out)
{
    static const uint8_t zero_key[16];
    uint8_t k[19];
    size_t kl = addr_key(peer, k, false);
    struct toward *c = &toward_cache[map_siphash(zero_key, k, kl, false) % TOWARD_SLOTS];
    uint64_t now = clock_mono_ms();
    if (c->at && now - c->at < TOWARD_TTL_MS && c->keylen == kl && memcmp(c->key, k, kl) == 0) {
        *out = c->local;
        return 0;
    }
    struct sockaddr_storage p = *peer;
    set_port(&p, 9); /* any port: connect() on UDP only picks the route and source */
    int fd = socket(p.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    socklen_t l = sizeof *out;
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&p, net_addr_len(&p)) < 0 ||
        getsockname(fd, (struct sockaddr *)out, &l) < 0)
        rc = -errno;
    close(fd);
    if (rc < 0)
        return rc;
    memcpy(c->key, k, kl);
    c->keylen = kl;
    c->local = *out;
    c->at = now;
    return 0;
}

int net_local_addr_toward(const struct net *n, enum transport t,
                          const struct sockaddr_storage *peer, struct sockaddr_storage *out)
{
    const struct sockaddr_storage *l = net_local_addr(n, t, peer->ss_family);
    if (!l)
        return -EAFNOSUPPORT;
    if (!net_addr_is_wildcard(l)) {
        *out = *l;
        return 0;
    }
    int rc = route_source(peer, out);
    if (rc < 0)
        return rc;
    set_port(out, net_addr_port(l));
    return 0;
}

static void alive_set(struct net *n, uint64_t id, bool on)
{
    pthread_mutex_lock(&n->flows_lock);
    if (on)
        map_set_int(n->alive, id, (void *)1, NULL);
    else
        map_del_int(n->alive, id);
    pthread_mutex_unlock(&n->flows_lock);
}

bool net_flow_exists(struct net *n, uint64_t flow_id)
{
    pthread_mutex_lock(&n->flows_lock);
    bool yes = map_get_int(n->alive, flow_id) != NULL;
    pthread_mutex_unlock(&n->flows_lock);
    return yes;
}

unsigned net_flow_owner(uint64_t flow_id)
{
    return flow_id ? (unsigned)(flow_id >> FLOW_ID_SHIFT) - 1 : 0;
}

/* ---- per-IP connection accounting ---- */

static bool ip_admit(struct net *n, const struct sockaddr_storage *peer)
{
    uint8_t k[18];
    size_t kl = addr_key(peer, k, false);
    bool ok = false;
    pthread_mutex_lock(&n->lock);
    uintptr_t cnt = (uintptr_t)map_get_str(n->per_ip, str_make((char *)k, kl));
    if (cnt < n->lim.max_connections_per_ip &&
        map_set_str(n->per_ip, str_make((char *)k, kl), (void *)(cnt + 1), NULL) >= 0)
        ok = true;
    pthread_mutex_unlock(&n->lock);
    return ok;
}

static void ip_release(struct net *n, const struct sockaddr_storage *peer)
{
    uint8_t k[18];
    size_t kl = addr_key(peer, k, false);
    pthread_mutex_lock(&n->lock);
    uintptr_t cnt = (uintptr_t)map_get_str(n->per_ip, str_make((char *)k, kl));
    if (cnt <= 1)
        map_del_str(n->per_ip, str_make((char *)k, kl));
    else
        map_set_str(n->per_ip, str_make((char *)k, kl), (void *)(cnt - 1), NULL);
    pthread_mutex_unlock(&n->lock);
}

/* ---- handles and closing ---- */

static void handle_closed(uv_handle_t *h)
{
    struct net_worker *nw = h->data;
    if (--nw->open_handles == 0 && nw->stopping) {
        map_free(nw->flows);
        map_free(nw->by_addr);
        free(nw->udp_buf);
        free(nw->tls_buf);
        free(nw);
    }
}

static void flow_freed(uv_handle_t *h)
{
    struct flow *f = h->data;
    struct net_worker *nw = f->nw;
    if (f->ops && f->app)
        f->ops->close(f->app);
    buf_free(&f->in);
    buf_free(&f->pending);
    tls_conn_free(f->tls);
    free(f);
    if (--nw->open_handles == 0 && nw->stopping) {
        map_free(nw->flows);
        map_free(nw->by_addr);
        free(nw->udp_buf);
        free(nw->tls_buf);
        free(nw);
    }
}

static void flow_close(struct flow *f, const char *why)
{
    if (f->closing)
        return;
    f->closing = true;
    struct net_worker *nw = f->nw;
    struct net *n = nw->net;
    char a[64];
    log_debug("net", "%s flow %llx %s closed: %s", transport_name(f->transport),
              (unsigned long long)f->id, net_addr_str(&f->peer, a, sizeof a), why);
    if (f->tls && f->connected) {
        f->last_words = true;
        tls_conn_shutdown(f->tls); /* close_notify, if the socket takes it at once */
    }
    map_del_int(nw->flows, f->id);
    alive_set(n, f->id, false);
    uint8_t k[19];
    size_t kl = flow_key(&f->peer, f->transport, k);
    if (map_get_str(nw->by_addr, str_make((char *)k, kl)) == f)
        map_del_str(nw->by_addr, str_make((char *)k, kl));
    if (f->counted) {
        atomic_fetch_sub(&n->conns, 1);
        ip_release(n, &f->peer);
        CNT_ADD(n, tcp_closed, 1);
        atomic_fetch_sub_explicit(&n->c.tcp_open, 1, memory_order_relaxed);
    }
    if (n->h.flow_closed && !nw->stopping)
        n->h.flow_closed(n->h.ctx, nw, f->id);
    uv_close((uv_handle_t *)&f->tcp, flow_freed);
}

static void close_flows(struct net_worker *nw)
{
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    /* flow_close removes from the map: collect first. */
    size_t cnt = map_count(nw->flows), i = 0;
    struct flow **all = calloc(cnt ? cnt : 1, sizeof *all);
    if (!all)
        return;
    while (map_next(nw->flows, &it, &e) && i < cnt)
        all[i++] = e.val;
    for (size_t k = 0; k < i; k++)
        flow_close(all[k], "server stopping");
    free(all);
}

/* ---- TCP ---- */

static struct flow *flow_new(struct net_worker *nw, enum transport t)
{
    struct flow *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->nw = nw;
    f->transport = (uint8_t)t;
    f->id = ((uint64_t)(worker_index(nw->w) + 1) << FLOW_ID_SHIFT) | ++nw->next_flow;
    buf_init(&f->in, nw->net->lim.max_message + 4);
    buf_init(&f->pending, nw->net->lim.max_write_queue);
    f->last_ms = f->born_ms = clock_mono_ms();
    if (uv_tcp_init(nw->loop, &f->tcp) < 0) {
        free(f);
        return NULL;
    }
    f->tcp.data = f;
    nw->open_handles++;
    if (map_set_int(nw->flows, f->id, f, NULL) < 0) {
        f->closing = true;
        uv_close((uv_handle_t *)&f->tcp, flow_freed);
        return NULL;
    }
    alive_set(nw->net, f->id, true);
    return f;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct flow *f = h->data;
    if (f->tls) {
        /* ciphertext: decrypted into f->in within on_read */
        b->base = f->nw->tls_buf;
        b->len = READ_CHUNK;
        return;
    }
    if (f->draining)
        buf_reset(&f->in);
    size_t room = f->in.max - f->in.len;
    size_t want = room < READ_CHUNK ? room : READ_CHUNK;
    if (want == 0 || buf_reserve(&f->in, want) < 0) {
        b->base = NULL;
        b->len = 0;
        return;
    }
    b->base = (char *)f->in.data + f->in.len;
    b->len = want;
}

static int flow_write(struct flow *f, const void *data, size_t len);

/* Skips RFC 5626 keep-alives at the start of the buffer; answers a ping. */
static void skip_keepalives(struct flow *f)
{
    struct net *n = f->nw->net;
    for (;;) {
        str s = buf_str(&f->in);
        if (str_has_prefix(s, STR("\r\n\r\n"))) {
            buf_consume(&f->in, 4);
            CNT_ADD(n, keepalives, 1);
            flow_write(f, "\r\n", 2); /* pong */
        } else if (str_has_prefix(s, STR("\r\n")) && !(s.len >= 3 && s.s[2] == '\r')) {
            buf_consume(&f->in, 2); /* a pong, or a stray CRLF between messages */
        } else {
            return;
        }
    }
}

/* Another protocol's flow: its data hook consumes what it can. Not re-entered. */
static void deliver_app(struct flow *f)
{
    if (f->in_data)
        return;
    while (!f->closing && !f->draining && f->in.len) {
        f->in_data = true;
        ssize_t r = f->ops->data(f->app, (const char *)f->in.data, f->in.len);
        f->in_data = false;
        if (f->closing)
            return;
        if (r < 0 || (size_t)r > f->in.len) {
            CNT_ADD(f->nw->net, frame_errors, 1);
            flow_close(f, "protocol error");
            return;
        }
        if (r == 0 || f->draining)
            break;
        buf_consume(&f->in, (size_t)r);
    }
    if (f->draining)
        buf_reset(&f->in);
}

static void deliver_stream(struct flow *f)
{
    struct net_worker *nw = f->nw;
    struct net *n = nw->net;
    if (f->ops) {
        deliver_app(f);
        return;
    }
    while (!f->closing && f->in.len) {
        skip_keepalives(f);
        if (!f->in.len || (f->in.len < 4 && str_has_prefix(STR("\r\n\r\n"), buf_str(&f->in))))
            return;
        ssize_t r = n->h.frame(n->h.ctx, (const char *)f->in.data, f->in.len);
        if (r < 0 || (r == 0 && f->in.len >= n->lim.max_message) || (size_t)r > f->in.len) {
            CNT_ADD(n, frame_errors, 1);
            flow_close(f, r < 0 ? "unframeable stream" : "message too large");
            return;
        }
        if (r == 0)
            return;
        struct net_rx rx = {
            .data = (const char *)f->in.data,
            .len = (size_t)r,
            .transport = (enum transport)f->transport,
            .src = f->peer,
            .srclen = f->peerlen,
            .local = &f->local,
            .flow_id = f->id,
        };
        CNT_ADD(n, tcp_rx, 1);
        n->h.recv(n->h.ctx, nw, &rx);
        if (!f->closing)
            buf_consume(&f->in, (size_t)r);
    }
}

/* An idle flow keeps no read buffer (10,000s of registered connections sit idle). */
static void release_idle_buffer(struct flow *f)
{
    if (!f->closing && f->in.len == 0 && f->in.cap)
        buf_free(&f->in);
}

/* Ciphertext in: decrypt into f->in and deliver, as long as plaintext comes. */
static void tls_read(struct flow *f, const char *data, size_t len)
{
    for (;;) {
        int rc = tls_conn_input(f->tls, data, len, &f->in);
        if (rc < 0) {
            char a[64];
            if (rc == -EPROTO && f->outbound) /* ours to fix: CA file, peer's certificate */
                log_warn("net", "tls to %s: %s", net_addr_str(&f->peer, a, sizeof a),
                         tls_conn_why(f->tls));
            flow_close(f, rc == -ECONNRESET ? "closed by peer" : tls_conn_why(f->tls));
            return;
        }
        if (!f->tls_up && tls_conn_ready(f->tls)) {
            f->tls_up = true;
            if (log_enabled(LOG_DEBUG)) {
                char a[64], info[96];
                log_debug("net", "tls flow %llx %s: %s", (unsigned long long)f->id,
                          net_addr_str(&f->peer, a, sizeof a),
                          tls_conn_info(f->tls, info, sizeof info));
            }
        }
        deliver_stream(f);
        if (f->closing || !tls_conn_pending(f->tls)) {
            release_idle_buffer(f);
            return;
        }
        if (f->in.len >= f->in.max) {
            CNT_ADD(f->nw->net, frame_errors, 1);
            flow_close(f, "message too large");
            return;
        }
        data = NULL;
        len = 0;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct flow *f = s->data;
    (void)b;
    if (nread == UV_ENOBUFS) {
        CNT_ADD(f->nw->net, frame_errors, 1);
        flow_close(f, "message too large");
        return;
    }
    if (nread < 0) {
        flow_close(f, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    if (f->draining)
        return; /* a gracefully closed flow: input is discarded until the peer closes */
    f->last_ms = clock_mono_ms();
    if (f->tls) {
        tls_read(f, b->base, (size_t)nread);
        return;
    }
    f->in.len += (size_t)nread;
    deliver_stream(f);
    release_idle_buffer(f);
}

static void flow_started(struct flow *f)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&f->tcp, (struct sockaddr *)&ss, &len) == 0)
        f->local = ss;
    uv_tcp_nodelay(&f->tcp, 1);
    f->connected = true;
    int rc = uv_read_start((uv_stream_t *)&f->tcp, on_alloc, on_read);
    if (rc < 0) {
        flow_close(f, uv_strerror(rc));
        return;
    }
    if (f->tls && (rc = tls_conn_start(f->tls)) < 0)
        flow_close(f, tls_conn_why(f->tls));
}

static int raw_write(struct flow *f, const void *data, size_t len);

/* TLS ciphertext out (the tls_send_fn of a flow). */
static int tls_out(void *ctx, const void *data, size_t len)
{
    struct flow *f = ctx;
    if (f->last_words) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        return uv_try_write((uv_stream_t *)&f->tcp, &b, 1) == (int)len ? 0 : -EPIPE;
    }
    return raw_write(f, data, len);
}

/* Puts a TLS layer on a new flow. 0 or a negative errno (-EBUSY: too many handshakes). */
static int flow_tls(struct flow *f, bool client)
{
    struct tls_server *t = f->nw->net->tls;
    if (!t)
        return -EAFNOSUPPORT;
    return tls_conn_new(&f->tls, t, client, &f->peer, tls_out, f);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct tcp_listener *l = server->data;
    struct net_worker *nw = l->nw;
    struct net *n = nw->net;
    if (status < 0) {
        log_warn("net", "accept: %s", uv_strerror(status));
        return;
    }
    struct flow *f = flow_new(nw, l->transport);
    if (f && l->app) {
        f->ops = n->app_ops;
        f->in.max = n->app_ops->max_buffer;
    }
    if (!f) {
        uv_tcp_t tmp; /* take the connection off the queue and drop it */
        if (uv_tcp_init(nw->loop, &tmp) == 0) {
            uv_accept(server, (uv_stream_t *)&tmp);
            uv_close((uv_handle_t *)&tmp, NULL);
        }
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&f->tcp) < 0) {
        flow_close(f, "accept failed");
        return;
    }
    int len = sizeof f->peer;
    uv_tcp_getpeername(&f->tcp, (struct sockaddr *)&f->peer, &len);
    f->peerlen = (socklen_t)len;
    char a[64];
    if (atomic_fetch_add(&n->conns, 1) >= n->lim.max_connections) {
        atomic_fetch_sub(&n->conns, 1);
        CNT_ADD(n, tcp_refused, 1);
        log_warn("net", "tcp %s refused: sip.max_connections (%u) reached",
                 net_addr_str(&f->peer, a, sizeof a), n->lim.max_connections);
        flow_close(f, "connection limit");
        return;
    }
    if (!ip_admit(n, &f->peer)) {
        atomic_fetch_sub(&n->conns, 1);
        CNT_ADD(n, tcp_refused, 1);
        log_warn("net", "tcp %s refused: sip.max_connections_per_ip (%u) reached",
                 net_addr_str(&f->peer, a, sizeof a), n->lim.max_connections_per_ip);
        flow_close(f, "per-address connection limit");
        return;
    }
    f->counted = true;
    CNT_ADD(n, tcp_accepted, 1);
    CNT_ADD(n, tcp_open, 1);
    if (l->transport == TRANSPORT_TLS) {
        int rc = flow_tls(f, false);
        if (rc < 0) {
            CNT_ADD(n, tcp_refused, 1);
            log_warn("net", "tls %s refused: %s", net_addr_str(&f->peer, a, sizeof a),
                     rc == -EBUSY ? "tls.max_handshakes reached" : strerror(-rc));
            flow_close(f, "TLS not available");
            return;
        }
    }
    if (f->ops) {
        struct net_flow_info fi = { .transport = l->transport, .peer = f->peer,
                                    .peerlen = f->peerlen, .local = l->local };
        int len2 = sizeof fi.local;
        uv_tcp_getsockname(&f->tcp, (struct sockaddr *)&fi.local, &len2);
        if (f->ops->open(n->app_ctx, nw, f->id, &fi, &f->app) < 0) {
            f->app = NULL;
            flow_close(f, "refused by its protocol");
            return;
        }
        flow_started(f);
        return; /* not reused for SIP sends by address */
    }
    uint8_t k[19];
    size_t kl = flow_key(&f->peer, f->transport, k);
    map_set_str(nw->by_addr, str_make((char *)k, kl), f, NULL);
    flow_started(f);
}

struct write_req {
    uv_write_t req;
    struct flow *f;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    if (status < 0 && status != UV_ECANCELED) {
        CNT_ADD(w->f->nw->net, send_errors, 1);
        flow_close(w->f, uv_strerror(status));
    }
    free(w);
}

/* Plaintext out: encrypted on a TLS flow, kept until an outbound connect ends. */
static int flow_write(struct flow *f, const void *data, size_t len)
{
    if (f->closing || f->draining)
        return -ENOTCONN;
    if (!f->connected)
        return buf_append(&f->pending, data, len);
    if (f->tls) {
        int rc = tls_conn_write(f->tls, data, len, f->nw->net->lim.max_write_queue);
        if (rc < 0 && !f->closing) {
            CNT_ADD(f->nw->net, send_errors, 1);
            flow_close(f, rc == -ENOBUFS ? "peer reads too slowly (write queue full)"
                                         : tls_conn_why(f->tls));
        }
        return rc;
    }
    return raw_write(f, data, len);
}

/* Bytes onto the socket: tried at once, queued (up to max_write_queue) when it is full. */
static int raw_write(struct flow *f, const void *data, size_t len)
{
    if (f->closing)
        return -ENOTCONN;
    size_t done = 0;
    if (f->tcp.write_queue_size == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int r = uv_try_write((uv_stream_t *)&f->tcp, &b, 1);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN) {
            CNT_ADD(f->nw->net, send_errors, 1);
            flow_close(f, uv_strerror(r));
            return -EPIPE;
        }
    }
    if (done == len)
        return 0;
    if (f->tcp.write_queue_size + (len - done) > f->nw->net->lim.max_write_queue) {
        CNT_ADD(f->nw->net, send_errors, 1);
        flow_close(f, "peer reads too slowly (write queue full)");
        return -ENOBUFS;
    }
    struct write_req *w = malloc(sizeof *w + (len - done));
    if (!w)
        return -ENOMEM;
    w->f = f;
    memcpy(w->data, (const char *)data + done, len - done);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)(len - done));
    int rc = uv_write(&w->req, (uv_stream_t *)&f->tcp, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        flow_close(f, uv_strerror(rc));
        return -EPIPE;
    }
    return 0;
}

static void on_connected(uv_connect_t *req, int status)
{
    struct flow *f = req->data;
    if (f->closing)
        return;
    if (status < 0) {
        CNT_ADD(f->nw->net, send_errors, 1);
        flow_close(f, uv_strerror(status));
        return;
    }
    flow_started(f);
    if (f->closing)
        return;
    if (f->pending.len) {
        struct buf p = f->pending;
        buf_init(&f->pending, f->nw->net->lim.max_write_queue);
        flow_write(f, p.data, p.len);
        buf_free(&p);
    }
}

static struct flow *flow_connect(struct net_worker *nw, const struct sockaddr_storage *to,
                                 enum transport t)
{
    struct net *n = nw->net;
    if (atomic_fetch_add(&n->conns, 1) >= n->lim.max_connections) {
        atomic_fetch_sub(&n->conns, 1);
        return NULL;
    }
    struct flow *f = flow_new(nw, t);
    if (!f) {
        atomic_fetch_sub(&n->conns, 1);
        return NULL;
    }
    f->peer = *to;
    f->peerlen = net_addr_len(to);
    f->outbound = true;
    if (!ip_admit(n, &f->peer)) {
        atomic_fetch_sub(&n->conns, 1);
        flow_close(f, "per-address connection limit");
        return NULL;
    }
    f->counted = true;
    CNT_ADD(n, tcp_open, 1);
    int rc = t == TRANSPORT_TLS ? flow_tls(f, true) : 0;
    if (rc < 0) {
        flow_close(f, strerror(-rc));
        return NULL;
    }
    f->connect.data = f;
    rc = uv_tcp_connect(&f->connect, &f->tcp, (const struct sockaddr *)to, on_connected);
    if (rc < 0) {
        flow_close(f, uv_strerror(rc));
        return NULL;
    }
    uint8_t k[19];
    size_t kl = flow_key(to, t, k);
    map_set_str(nw->by_addr, str_make((char *)k, kl), f, NULL);
    return f;
}

static void on_sweep(uv_timer_t *t)
{
    struct net_worker *nw = t->data;
    uint64_t now = clock_mono_ms(), idle = (uint64_t)nw->net->lim.idle_timeout_s * 1000;
    uint64_t hs = nw->net->tls ? (uint64_t)tls_server_handshake_timeout(nw->net->tls) * 1000
                               : UINT64_MAX;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    struct flow *batch[256];
    bool slow[256];
    size_t n = 0;
    /* flow_close changes the map: collect a bounded batch, close it, go on next tick. */
    while (n < sizeof batch / sizeof batch[0] && map_next(nw->flows, &it, &e)) {
        struct flow *f = e.val;
        slow[n] = f->tls && !tls_conn_ready(f->tls) && now - f->born_ms > hs;
        if (slow[n] || (f->draining ? now > f->drain_until
                                    : !f->ops && f->pins == 0 && now - f->last_ms > idle))
            batch[n++] = f;
    }
    for (size_t i = 0; i < n; i++)
        flow_close(batch[i], slow[i] ? "TLS handshake timeout" : "idle");
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct udp_sock *u = h->data;
    b->base = u->nw->udp_buf;
    b->len = UDP_DGRAM_MAX * UDP_BATCH;
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *addr,
                     unsigned flags)
{
    struct udp_sock *u = h->data;
    struct net *n = u->nw->net;
    if (flags & UV_UDP_MMSG_FREE)
        return; /* the batch buffer belongs to the worker */
    if (nread < 0) {
        log_warn("net", "udp receive: %s", uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || !addr)
        return;
    struct net_rx rx = {
        .data = b->base,
        .len = (size_t)nread,
        .transport = TRANSPORT_UDP,
        .local = &u->local,
    };
    socklen_t al = addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6);
    memcpy(&rx.src, addr, al);
    rx.srclen = al;
    if (flags & UV_UDP_PARTIAL) {
        CNT_ADD(n, frame_errors, 1);
        return; /* larger than 64 KiB: cannot be a valid message */
    }
    /* RFC 5626 §4.4.1 over UDP is STUN; a bare CRLF keep-alive is skipped. */
    if (rx.len <= 4 && str_eq(str_trim(str_make(rx.data, rx.len)), STR(""))) {
        CNT_ADD(n, keepalives, 1);
        return;
    }
    CNT_ADD(n, udp_rx, 1);
    n->h.recv(n->h.ctx, u->nw, &rx);
}

/* A socket bound with SO_REUSEPORT so that every worker has its own. */
static int bound_socket(int type, struct sockaddr_storage *addr, int rcvbuf)
{
    int fd = socket(addr->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail;
    if (addr->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)addr, net_addr_len(addr)) < 0)
        goto fail;
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
        *addr = got;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

/* Listener i: the SIP ones first, then the other stream kinds. */
static struct listen_addr *listen_entry(struct net *n, size_t i)
{
    return i < n->listen.n ? &n->listen.v[i] : &n->app_listen[i - n->listen.n];
}

/* The listening address for entry i, with a port 0 resolved by the first worker. */
static struct sockaddr_storage listen_addr(struct net *n, size_t i)
{
    struct sockaddr_storage a = listen_entry(n, i)->addr;
    pthread_mutex_lock(&n->lock);
    if (net_addr_port(&a) == 0 && n->bound_port[i])
        set_port(&a, n->bound_port[i]);
    pthread_mutex_unlock(&n->lock);
    return a;
}

static void remember_port(struct net *n, size_t i, const struct sockaddr_storage *a)
{
    pthread_mutex_lock(&n->lock);
    if (!n->bound_port[i]) {
        n->bound_port[i] = net_addr_port(a);
        if (net_addr_port(&listen_entry(n, i)->addr) == 0)
            set_port(&listen_entry(n, i)->addr, n->bound_port[i]);
    }
    pthread_mutex_unlock(&n->lock);
}

/*
 * Worker k's socket of UDP listener i (a SIP one, so i < CONFIG_MAX_LISTEN). The first
 * worker to ask binds every worker's socket, in worker order, because the steering
 * program (net/steer.h) names sockets by the order they joined the group.
 */
static int udp_group_fd(struct net *n, size_t i, unsigned k, struct sockaddr_storage *addr)
{
    pthread_mutex_lock(&n->lock);
    int *fds = &n->udp_fds[i * n->nworkers];
    if (n->udp_state[i] == 0) {
        int rc = 0;
        for (unsigned j = 0; j < n->nworkers && rc == 0; j++) {
            int fd = bound_socket(SOCK_DGRAM, addr, n->lim.udp_rcvbuf);
            if (fd < 0)
                rc = fd;
            else
                fds[j] = fd;
        }
        for (unsigned j = 0; j < n->nworkers && rc < 0; j++) {
            if (fds[j] >= 0)
                close(fds[j]);
            fds[j] = -1;
        }
        n->udp_state[i] = rc < 0 ? rc : 1;
        if (rc == 0 && n->nworkers > 1 && n->nworkers <= STEER_MAX_INDEX + 1) {
            int e = steer_attach(fds[0]);
            if (e < 0) {
                char a[64];
                log_warn("net", "udp:%s: datagrams not steered to their worker: %s",
                         net_addr_str(addr, a, sizeof a), strerror(-e));
            }
        }
    }
    int fd = fds[k];
    fds[k] = -1;
    if (fd >= 0) {
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
            *addr = got;
    }
    int state = n->udp_state[i];
    pthread_mutex_unlock(&n->lock);
    return fd >= 0 ? fd : state < 0 ? state : -EBADF;
}

int net_worker_start(struct net *n, struct worker *w, struct net_worker **out)
{
    struct net_worker *nw = calloc(1, sizeof *nw);
    if (!nw)
        return -ENOMEM;
    nw->net = n;
    nw->w = w;
    nw->loop = worker_loop(w);
    nw->udp_buf = malloc(UDP_DGRAM_MAX * UDP_BATCH);
    nw->tls_buf = n->tls ? malloc(READ_CHUNK) : NULL;
    if (!nw->udp_buf || (n->tls && !nw->tls_buf) || map_new(&nw->flows, MAP_KEY_INT, 256) < 0 ||
        map_new(&nw->by_addr, MAP_KEY_STR, 256) < 0) {
        map_free(nw->flows);
        free(nw->udp_buf);
        free(nw->tls_buf);
        free(nw);
        return -ENOMEM;
    }
    uv_timer_init(nw->loop, &nw->sweep);
    nw->sweep.data = nw;
    nw->open_handles = 1;
    uv_timer_start(&nw->sweep, on_sweep, SWEEP_MS, SWEEP_MS);

    int rc = 0;
    char a[64];
    for (size_t i = 0; i < n->listen.n + n->n_app && rc == 0; i++) {
        const struct listen_addr *la = listen_entry(n, i);
        struct sockaddr_storage addr = listen_addr(n, i);
        if (la->transport == TRANSPORT_UDP) {
            int fd = udp_group_fd(n, i, worker_index(w), &addr);
            if (fd < 0) {
                rc = fd;
                break;
            }
            struct udp_sock *u = &nw->udp[nw->n_udp];
            uv_udp_init_ex(nw->loop, &u->h, AF_UNSPEC | UV_UDP_RECVMMSG);
            u->h.data = u;
            u->nw = nw;
            u->local = addr;
            nw->open_handles++;
            nw->n_udp++;
            rc = uv_udp_open(&u->h, fd);
            if (rc == 0)
                rc = uv_udp_recv_start(&u->h, udp_alloc, udp_recv);
            if (rc < 0)
                close(fd);
        } else if (la->transport == TRANSPORT_TLS && !n->tls) {
            rc = -ENOPROTOOPT; /* the owner did not give net a TLS context */
        } else {
            int fd = bound_socket(SOCK_STREAM, &addr, 0);
            if (fd < 0) {
                rc = fd;
                break;
            }
            struct tcp_listener *l = &nw->tcp[nw->n_tcp];
            uv_tcp_init(nw->loop, &l->h);
            l->h.data = l;
            l->nw = nw;
            l->local = addr;
            l->app = i >= n->listen.n;
            l->transport = la->transport;
            nw->open_handles++;
            nw->n_tcp++;
            rc = uv_tcp_open(&l->h, fd);
            if (rc == 0)
                rc = uv_listen((uv_stream_t *)&l->h, 1024, on_connection);
        }
        if (rc == 0) {
            remember_port(n, i, &addr);
            if (worker_index(w) == 0)
                log_info("net", "listening on %s:%s", transport_name(la->transport),
                         net_addr_str(&addr, a, sizeof a));
        } else {
            log_error("net", "cannot listen on %s:%s: %s", transport_name(la->transport),
                      net_addr_str(&addr, a, sizeof a),
                      rc == -ENOPROTOOPT ? "no TLS context" : strerror(rc < -4095 ? EIO : -rc));
        }
    }
    n->workers[worker_index(w)] = nw;
    atomic_store(&n->wk[worker_index(w)], w);
    if (rc < 0) {
        net_worker_stop(nw);
        return rc;
    }
    *out = nw;
    return 0;
}

void net_worker_stop(struct net_worker *nw)
{
    if (!nw || nw->stopping)
        return;
    nw->stopping = true;
    nw->net->workers[worker_index(nw->w)] = NULL;
    close_flows(nw);
    for (size_t i = 0; i < nw->n_udp; i++) {
        nw->udp[i].h.data = nw;
        uv_close((uv_handle_t *)&nw->udp[i].h, handle_closed);
    }
    for (size_t i = 0; i < nw->n_tcp; i++) {
        nw->tcp[i].h.data = nw;
        uv_close((uv_handle_t *)&nw->tcp[i].h, handle_closed);
    }
    uv_close((uv_handle_t *)&nw->sweep, handle_closed);
}

/* ---- sending ---- */

struct handover {
    struct net *net;
    uint64_t flow_id;
    size_t len;
    char data[];
};

/* On the flow's owner: the bytes another worker sent. */
/* One message onto a flow: raw for SIP flows, framed by the protocol for the others. */
static int flow_send_msg(struct flow *f, const void *data, size_t len)
{
    if (f->ops)
        return f->draining ? -ENOTCONN : f->ops->send(f->app, data, len);
    return flow_write(f, data, len);
}

static void send_on_owner(struct worker *w, void *arg)
{
    struct handover *h = arg;
    struct net_worker *nw = h->net->workers[worker_index(w)];
    struct flow *f = nw ? map_get_int(nw->flows, h->flow_id) : NULL;
    if (f && !f->closing && flow_send_msg(f, h->data, h->len) == 0)
        CNT_ADD(h->net, tcp_tx, 1);
    else
        CNT_ADD(h->net, send_errors, 1);
    free(h);
}

int net_send(struct net_worker *nw, const struct net_dest *d, const void *data, size_t len)
{
    struct net *n = nw->net;
    if (len > n->lim.max_message + 4 && d->transport != TRANSPORT_UDP)
        return -ENOBUFS;
    if (d->transport == TRANSPORT_UDP) {
        struct udp_sock *u = NULL;
        for (size_t i = 0; i < nw->n_udp && !u; i++)
            if (nw->udp[i].local.ss_family == d->addr.ss_family)
                u = &nw->udp[i];
        if (!u)
            return -EAFNOSUPPORT;
        if (len > UDP_DGRAM_MAX - 8 - 40)
            return -EMSGSIZE;
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int r = uv_udp_try_send(&u->h, &b, 1, (const struct sockaddr *)&d->addr);
        if (r >= 0) {
            CNT_ADD(n, udp_tx, 1);
            return 0;
        }
        CNT_ADD(n, send_errors, 1);
        return r == UV_EAGAIN ? -EAGAIN : -EIO;
    }
    if (!d->flow_id && d->transport != TRANSPORT_TCP &&
        (d->transport != TRANSPORT_TLS || !n->tls))
        return -EAFNOSUPPORT;
    if (d->flow_id) {
        unsigned owner = net_flow_owner(d->flow_id);
        if (owner >= n->nworkers)
            return -ENOTCONN;
        if (owner != worker_index(nw->w)) {
            struct worker *ow = atomic_load(&n->wk[owner]);
            if (!ow)
                return -ENOTCONN;
            struct handover *h = malloc(sizeof *h + len);
            if (!h)
                return -ENOMEM;
            h->net = n;
            h->flow_id = d->flow_id;
            h->len = len;
            memcpy(h->data, data, len);
            int rc = worker_post(ow, send_on_owner, h);
            if (rc < 0)
                free(h);
            return rc;
        }
        struct flow *f = map_get_int(nw->flows, d->flow_id);
        if (!f || f->closing)
            return -ENOTCONN;
        int rc = flow_send_msg(f, data, len);
        if (rc == 0)
            CNT_ADD(n, tcp_tx, 1);
        return rc;
    }
    uint8_t k[19];
    size_t kl = flow_key(&d->addr, d->transport, k);
    struct flow *f = map_get_str(nw->by_addr, str_make((char *)k, kl));
    if (!f || f->closing)
        f = flow_connect(nw, &d->addr, d->transport);
    if (!f)
        return -ECONNREFUSED;
    int rc = flow_write(f, data, len);
    if (rc == 0)
        CNT_ADD(n, tcp_tx, 1);
    return rc;
}

struct worker *net_worker_worker(struct net_worker *nw)
{
    return nw->w;
}

bool net_flow_alive(struct net_worker *nw, uint64_t flow_id)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    return f && !f->closing;
}

void net_flow_pin(struct net_worker *nw, uint64_t flow_id, bool pinned)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    if (!f)
        return;
    if (pinned)
        f->pins++;
    else if (f->pins > 0)
        f->pins--;
}

/* ---- other stream protocols ---- */

int net_add_stream_listeners(struct net *n, const struct listen_list *l,
                             const struct net_stream_ops *ops, void *ctx)
{
    if (!ops || !ops->open || !ops->data || !ops->send || !ops->close || !ops->max_buffer)
        return -EINVAL;
    n->app_ops = ops;
    n->app_ctx = ctx;
    for (size_t i = 0; i < l->n; i++) {
        const struct listen_addr *la = &l->v[i];
        char a[64];
        if (la->transport != TRANSPORT_TCP && la->transport != TRANSPORT_TLS) {
            log_warn("net", "%s:%s: transport not served yet for this listener, skipped",
                     transport_name(la->transport), net_addr_str(&la->addr, a, sizeof a));
            continue;
        }
        if (n->n_app >= CONFIG_MAX_LISTEN || n->listen.n + n->n_app >= NET_MAX_LISTEN)
            return -ENOSPC;
        n->app_listen[n->n_app++] = *la;
    }
    return 0;
}

int net_flow_write(struct net_worker *nw, uint64_t flow_id, const void *data, size_t len)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    if (!f || f->closing || f->draining)
        return -ENOTCONN;
    int rc = flow_write(f, data, len);
    if (rc == 0)
        CNT_ADD(nw->net, tcp_tx, 1);
    return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the flow waits for the peer's close or the drain deadline */
}

void net_flow_close(struct net_worker *nw, uint64_t flow_id, bool graceful, const char *why)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    if (!f || f->closing)
        return;
    if (!graceful || !f->connected) {
        flow_close(f, why);
        return;
    }
    if (f->draining)
        return;
    f->draining = true;
    f->drain_until = clock_mono_ms() + DRAIN_MS;
    char a[64];
    log_debug("net", "%s flow %llx %s closing: %s", transport_name(f->transport),
              (unsigned long long)f->id, net_addr_str(&f->peer, a, sizeof a), why);
    if (f->tls)
        tls_conn_shutdown(f->tls); /* close_notify goes out before the FIN (queued first) */
    if (uv_shutdown(&f->shutdown, (uv_stream_t *)&f->tcp, on_shutdown) < 0)
        flow_close(f, why);
}

void net_flow_resume(struct net_worker *nw, uint64_t flow_id)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    if (f && !f->closing)
        deliver_stream(f);
}

void net_deliver(struct net_worker *nw, const struct net_rx *rx)
{
    struct net *n = nw->net;
    if (rx->transport == TRANSPORT_WS || rx->transport == TRANSPORT_WSS)
        CNT_ADD(n, tcp_rx, 1);
    n->h.recv(n->h.ctx, nw, rx);
}

size_t net_flow_backlog(struct net_worker *nw, uint64_t flow_id)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    return f ? f->tcp.write_queue_size : 0;
}

size_t net_write_queue_limit(const struct net_worker *nw)
{
    return nw->net->lim.max_write_queue;
}

bool net_flow_pinned(struct net_worker *nw, uint64_t flow_id)
{
    struct flow *f = map_get_int(nw->flows, flow_id);
    return f && f->pins > 0;
}
