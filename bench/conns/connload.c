/*
 * connload — the client side of bench/conns.sh: opens N SIP connections (TCP,
 * TLS or WebSocket) from one local address, REGISTERs a user on each (digest
 * MD5), then holds them idle, sending a keep-alive on every connection once per
 * interval (spread evenly) and reading the answers: an RFC 5626 CRLFCRLF (CRLF
 * pong) on TCP/TLS, a WebSocket ping frame (pong frame) with --ws, which also
 * answers the server's pings. --ws PATH upgrades to SIP over WebSocket (RFC
 * 7118, subprotocol sip) at PATH first.
 *
 *   connload --server IP:PORT [--tls] [--ws PATH] --local IP --count N --first K
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
    uint16_t rlen;      /* --ws: bytes of a partial frame in rbuf */
    uint8_t rbuf[256];
};

static bool ws_mode;

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

/* --ws: one masked client frame (RFC 6455 §5.2: FIN, opcode, mask, length). */
static int ws_write(struct conn *c, int opcode, const char *data, size_t len)
{
    uint8_t f[4200];
    size_t h = 0;
    if (len > sizeof f - 14)
        return -1;
    f[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        f[h++] = (uint8_t)(0x80 | len);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(len >> 8);
        f[h++] = (uint8_t)len;
    }
    uint8_t mask[4];
    uint32_t m = (uint32_t)random();
    memcpy(mask, &m, 4);
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        f[h + i] = (uint8_t)data[i] ^ mask[i & 3];
    return c_write(c, (const char *)f, h + len);
}

/* --ws: reads one whole frame (blocking); returns its opcode, payload into buf. */
static int ws_read_frame(struct conn *c, char *buf, size_t cap, size_t *len)
{
    uint8_t h[10];
    size_t got = 0, need = 2;
    while (got < need) {
        ssize_t r = c_read(c, (char *)h + got, need - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
        if (got == 2 && (h[1] & 0x7f) == 126)
            need = 4;
        else if (got == 2 && (h[1] & 0x7f) == 127)
            return -1; /* nothing this big here */
    }
    size_t n = h[1] & 0x7f;
    if (n == 126)
        n = ((size_t)h[2] << 8) | h[3];
    if (n >= cap)
        return -1;
    size_t off = 0;
    while (off < n) {
        ssize_t r = c_read(c, buf + off, n - off);
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    buf[n] = 0;
    *len = n;
    return h[0] & 0x0f;
}

/* --ws: the HTTP upgrade to SIP over WebSocket. 0 or -1. */
static int ws_upgrade(struct conn *c, const char *host, const char *path)
{
    char req[512], buf[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
                     path, host);
    if (c_write(c, req, (size_t)n) < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < sizeof buf) {
        ssize_t r = c_read(c, buf + len, 1); /* byte by byte: the frames follow at once */
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = 0;
        if (len >= 4 && !memcmp(buf + len - 4, "\r\n\r\n", 4))
            return strncmp(buf, "HTTP/1.1 101", 12) == 0 ? 0 : -1;
    }
    return -1;
}

/* Reads one response (headers; bodies are empty here). Returns the status or -1. */
static int read_response(struct conn *c, char *buf, size_t cap)
{
    if (ws_mode) {
        for (;;) {
            size_t n;
            int op = ws_read_frame(c, buf, cap, &n);
            if (op < 0)
                return -1;
            if (op != 1 && op != 2)
                continue; /* a ping before the answer: not expected, skipped */
            int st = 0;
            if (sscanf(buf, "SIP/2.0 %d", &st) != 1)
                return -1;
            if (st != 100)
                return st;
        }
    }
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
                         domain, ws_mode ? (tls ? "WSS" : "WS") : (tls ? "TLS" : "TCP"),
                         ws_mode ? "connload.invalid" : local, port, r, round, user, domain, r,
                         user, domain, r, port, round + 1, user,
                         ws_mode ? "connload.invalid" : local, port,
                         ws_mode ? "ws" : (tls ? "tls" : "tcp"), auth);
        if ((ws_mode ? ws_write(c, 1, msg, (size_t)n) : c_write(c, msg, (size_t)n)) < 0)
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

/*
 * --ws, idle loop: the frames in data (kept across reads in c->rbuf): pongs are
 * counted, the server's pings answered with a pong of the same payload.
 */
static long ws_frames(struct conn *c, const char *data, size_t len)
{
    long pongs = 0;
    for (size_t i = 0; i < len; i++) {
        if (c->rlen < sizeof c->rbuf)
            c->rbuf[c->rlen++] = (uint8_t)data[i];
        for (;;) {
            if (c->rlen < 2)
                break;
            size_t n = c->rbuf[1] & 0x7f;
            if (n >= 126 || c->rlen > sizeof c->rbuf - 1) {
                c->rlen = 0; /* nothing that long is expected while idle: dropped */
                break;
            }
            if (c->rlen < 2 + n)
                break;
            int op = c->rbuf[0] & 0x0f;
            if (op == 0xA)
                pongs++;
            else if (op == 0x9)
                ws_write(c, 0xA, (const char *)c->rbuf + 2, n);
            memmove(c->rbuf, c->rbuf + 2 + n, c->rlen - 2 - n);
            c->rlen = (uint16_t)(c->rlen - 2 - n);
        }
    }
    return pongs;
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
    const char *domain = "localhost", *ready = NULL, *stop = NULL, *ws_path = NULL;
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
        else if (!strcmp(a, "--ws")) ws_path = v;
        else { fprintf(stderr, "connload: unknown option %s\n", a); return 2; }
    }
    if (!server || count <= 0 || count > 18000 || ka <= 0 || hold <= 0 || hold > 3600) {
        fprintf(stderr, "usage: connload --server IP:PORT [--tls] [--ws PATH] --local IP --count N(<=18000) "
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
    ws_mode = ws_path != NULL;

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
            (ws_mode && ws_upgrade(&cs[i], server, ws_path) < 0) ||
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
                if ((ws_mode ? ws_write(c, 9, "ka", 2) : c_write(c, "\r\n\r\n", 4)) == 0)
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
                if (ws_mode) {
                    pongs += ws_frames(&cs[i], buf, (size_t)got);
                    continue;
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
