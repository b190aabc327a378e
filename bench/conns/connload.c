/*
 * connload — the client side of bench/conns.sh: opens N SIP connections (TCP
 * or TLS) from one local address, REGISTERs a user on each (digest MD5), then
 * holds them idle, sending an RFC 5626 CRLFCRLF keep-alive on every
 * connection once per interval (spread evenly) and reading the CRLF pongs.
 *
 *   connload --server IP:PORT [--tls] --local IP --count N --first K
 *            [--prefix u] [--password secret] [--domain localhost]
 *            [--keepalive S] [--hold S] [--ready FILE] [--stop FILE]
 *
 * Users are PREFIX%05d from K to K+N-1. Set-up is sequential and blocking
 * (each connect, handshake and REGISTER bounded by 5 s); the idle phase is one
 * poll() loop. Prints "registered N failed M seconds S" once set up (and
 * creates --ready FILE), then at the end "pings P pongs Q closed C".
 * Bounded: --hold seconds (default 120) or until --stop FILE appears.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

struct conn {
    int fd;
    SSL *ssl;
    bool dead;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void md5hex(const char *in, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(in, strlen(in), md, &n, EVP_md5(), NULL);
    for (unsigned i = 0; i < n && i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int c_write(struct conn *c, const char *buf, size_t len)
{
    if (c->ssl)
        return SSL_write(c->ssl, buf, (int)len) == (int)len ? 0 : -1;
    size_t done = 0;
    while (done < len) {
        ssize_t r = write(c->fd, buf + done, len - done);
        if (r <= 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

static ssize_t c_read(struct conn *c, char *buf, size_t cap)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, buf, (int)cap);
        if (r > 0)
            return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ ? -EAGAIN : -1;
    }
    ssize_t r = read(c->fd, buf, cap);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return -EAGAIN;
    return r <= 0 ? -1 : r;
}

/* Reads one response (headers; bodies are empty here). Returns the status or -1. */
static int read_response(struct conn *c, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = c_read(c, buf + len, cap - 1 - len);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            int st = 0;
            if (sscanf(buf, "SIP/2.0 %d", &st) != 1)
                return -1;
            if (st == 100) { /* skip a 100 Trying */
                size_t used = (size_t)(end + 4 - buf);
                memmove(buf, end + 4, len - used);
                len -= used;
                buf[len] = 0;
                continue;
            }
            return st;
        }
    }
    return -1;
}

static int param(const char *hdr, const char *name, char *out, size_t cap)
{
    char key[32];
    snprintf(key, sizeof key, "%s=\"", name);
    const char *p = strstr(hdr, key);
    if (!p)
        return -1;
    p += strlen(key);
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = 0;
    return 0;
}

static int do_register(struct conn *c, const char *user, const char *pw, const char *domain,
                       const char *local, bool tls)
{
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    getsockname(c->fd, (struct sockaddr *)&me, &ml);
    unsigned port = ntohs(me.sin_port);
    char msg[2048], buf[4096], auth[1024] = "";
    unsigned long r = (unsigned long)random() ^ ((unsigned long)port << 20);
    for (int round = 0; round < 2; round++) {
        int n = snprintf(msg, sizeof msg,
                         "REGISTER sip:%s SIP/2.0\r\n"
                         "Via: SIP/2.0/%s %s:%u;branch=z9hG4bK%lx%d;rport\r\n"
                         "Max-Forwards: 70\r\n"
                         "From: <sip:%s@%s>;tag=%lx\r\n"
                         "To: <sip:%s@%s>\r\n"
                         "Call-ID: %lx-%u@connload\r\n"
                         "CSeq: %d REGISTER\r\n"
                         "Contact: <sip:%s@%s:%u;transport=%s>\r\n"
                         "Expires: 3600\r\n%s"
                         "Content-Length: 0\r\n\r\n",
                         domain, tls ? "TLS" : "TCP", local, port, r, round, user, domain, r,
                         user, domain, r, port, round + 1, user, local, port,
                         tls ? "tls" : "tcp", auth);
        if (c_write(c, msg, (size_t)n) < 0)
            return -1;
        int st = read_response(c, buf, sizeof buf);
        if (st == 200)
            return 0;
        if (st != 401 || round == 1)
            return -1;
        char realm[128], nonce[256], ha1[33], ha2[33], resp[33], tmp[1024];
        if (param(buf, "realm", realm, sizeof realm) < 0 ||
            param(buf, "nonce", nonce, sizeof nonce) < 0)
            return -1;
        char uri[160];
        snprintf(uri, sizeof uri, "sip:%s", domain);
        snprintf(tmp, sizeof tmp, "%s:%s:%s", user, realm, pw);
        md5hex(tmp, ha1);
        snprintf(tmp, sizeof tmp, "REGISTER:%s", uri);
        md5hex(tmp, ha2);
        snprintf(tmp, sizeof tmp, "%s:%s:00000001:%lx:auth:%s", ha1, nonce, r, ha2);
        md5hex(tmp, resp);
        snprintf(auth, sizeof auth,
                 "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", "
                 "uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, "
                 "cnonce=\"%lx\"\r\n",
                 user, realm, nonce, uri, resp, r);
    }
    return -1;
}

static int open_conn(struct conn *c, SSL_CTX *ctx, const struct sockaddr_in *srv,
                     const struct sockaddr_in *local)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct timeval tv = { 5, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(c->fd, (const struct sockaddr *)local, sizeof *local) < 0 ||
        connect(c->fd, (const struct sockaddr *)srv, sizeof *srv) < 0)
        return -1;
    if (ctx) {
        c->ssl = SSL_new(ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_connect(c->ssl) != 1)
            return -1;
    }
    return 0;
}

static void close_conn(struct conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->dead = true;
}

int main(int argc, char **argv)
{
    const char *server = NULL, *local_ip = "127.0.0.1", *prefix = "u", *pw = "secret";
    const char *domain = "localhost", *ready = NULL, *stop = NULL;
    int count = 100, first = 1;
    double ka = 30, hold = 120;
    bool tls = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls")) { tls = true; continue; }
        if (!v) { fprintf(stderr, "connload: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--server")) server = v;
        else if (!strcmp(a, "--local")) local_ip = v;
        else if (!strcmp(a, "--count")) count = atoi(v);
        else if (!strcmp(a, "--first")) first = atoi(v);
        else if (!strcmp(a, "--prefix")) prefix = v;
        else if (!strcmp(a, "--password")) pw = v;
        else if (!strcmp(a, "--domain")) domain = v;
        else if (!strcmp(a, "--keepalive")) ka = atof(v);
        else if (!strcmp(a, "--hold")) hold = atof(v);
        else if (!strcmp(a, "--ready")) ready = v;
        else if (!strcmp(a, "--stop")) stop = v;
        else { fprintf(stderr, "connload: unknown option %s\n", a); return 2; }
    }
    if (!server || count <= 0 || count > 18000 || ka <= 0 || hold <= 0 || hold > 3600) {
        fprintf(stderr, "usage: connload --server IP:PORT [--tls] --local IP --count N(<=18000) "
                        "--first K [--keepalive S] [--hold S(<=3600)] [--ready F] [--stop F]\n");
        return 2;
    }
    struct sockaddr_in srv = { .sin_family = AF_INET }, local = { .sin_family = AF_INET };
    char host[64];
    const char *colon = strrchr(server, ':');
    if (!colon || (size_t)(colon - server) >= sizeof host)
        return 2;
    memcpy(host, server, (size_t)(colon - server));
    host[colon - server] = 0;
    if (inet_pton(AF_INET, host, &srv.sin_addr) != 1 || inet_pton(AF_INET, local_ip, &local.sin_addr) != 1)
        return 2;
    srv.sin_port = htons((uint16_t)atoi(colon + 1));
    srandom((unsigned)getpid());

    SSL_CTX *ctx = NULL;
    if (tls) {
        ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the bench measures the server */
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    }
    struct conn *cs = calloc((size_t)count, sizeof *cs);
    if (!cs)
        return 1;
    double t0 = now_s();
    int ok = 0, failed = 0;
    for (int i = 0; i < count; i++) {
        char user[64];
        snprintf(user, sizeof user, "%s%05d", prefix, first + i);
        cs[i].fd = -1;
        if (open_conn(&cs[i], ctx, &srv, &local) < 0 ||
            do_register(&cs[i], user, pw, domain, local_ip, tls) < 0) {
            failed++;
            close_conn(&cs[i]);
            ERR_clear_error();
            continue;
        }
        fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
        ok++;
    }
    printf("registered %d failed %d seconds %.1f\n", ok, failed, now_s() - t0);
    fflush(stdout);
    if (ready) {
        FILE *f = fopen(ready, "w");
        if (f)
            fclose(f);
    }

    struct pollfd *pf = calloc((size_t)count, sizeof *pf);
    if (!pf)
        return 1;
    long pings = 0, pongs = 0, closed = 0;
    double start = now_s(), per = ka / count, next = start;
    int cursor = 0;
    char buf[4096];
    while (now_s() - start < hold) {
        if (stop && access(stop, F_OK) == 0)
            break;
        /* keep-alives due by now, one connection after another */
        double t = now_s();
        while (next <= t) {
            struct conn *c = &cs[cursor];
            if (!c->dead) {
                if (c_write(c, "\r\n\r\n", 4) == 0)
                    pings++;
            }
            cursor = (cursor + 1) % count;
            next += per;
        }
        int n = 0;
        for (int i = 0; i < count; i++) {
            pf[i].fd = cs[i].dead ? -1 : cs[i].fd;
            pf[i].events = POLLIN;
            pf[i].revents = 0;
            n++;
        }
        int r = poll(pf, (nfds_t)n, 100);
        if (r <= 0)
            continue;
        for (int i = 0; i < count; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            for (;;) {
                ssize_t got = c_read(&cs[i], buf, sizeof buf);
                if (got == -EAGAIN)
                    break;
                if (got < 0) {
                    closed++;
                    close_conn(&cs[i]);
                    break;
                }
                for (ssize_t k = 0; k + 1 < got; k++)
                    if (buf[k] == '\r' && buf[k + 1] == '\n')
                        pongs++, k++;
            }
        }
    }
    printf("pings %ld pongs %ld closed %ld\n", pings, pongs, closed);
    for (int i = 0; i < count; i++)
        if (!cs[i].dead)
            close_conn(&cs[i]);
    free(cs);
    free(pf);
    SSL_CTX_free(ctx);
    return failed ? 1 : 0;
}
