/*
 * libFuzzer target: bytes from a peer into a TLS connection (net/tls.c). The
 * first byte chooses the role (bit 0: client side, which has sent its
 * ClientHello first), the chunk size the bytes arrive in (bits 1-4) and the
 * plaintext buffer's cap (bits 5-7: a small cap exercises the input kept while
 * plaintext waits). Checks: no crash, no leak, the plaintext never exceeds its
 * cap, and a failed connection stays failed.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/config.h"
#include "base/log.h"
#include "net/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/tls/cert.pem", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tls/key.pem", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/tls", dir);
    rmdir(p);
    rmdir(dir);
}

static struct tls_server *server(void)
{
    static struct tls_server *t;
    if (t)
        return t;
    log_set_level(LOG_OFF);
    snprintf(dir, sizeof dir, "/tmp/rtcd-tls-fuzz.XXXXXX");
    struct config c;
    char err[512], set[128];
    if (!mkdtemp(dir) || config_init(&c) < 0)
        abort();
    snprintf(set, sizeof set, "server.data_dir=%s", dir);
    if (config_set(&c, set, err, sizeof err) < 0 ||
        config_set(&c, "tls.verify_server=no", err, sizeof err) < 0 ||
        tls_server_new(&t, &c, true, err, sizeof err) < 0)
        abort();
    config_free(&c);
    atexit(cleanup);
    return t;
}

static int discard(void *ctx, const void *d, size_t len)
{
    (void)ctx, (void)d, (void)len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct tls_server *t = server();
    uint8_t ctl = data[0];
    data++, size--;
    bool client = ctl & 1;
    size_t chunk = ((ctl >> 1) & 15) * 37 + 1;
    size_t cap = ((ctl >> 5) & 7) ? ((size_t)((ctl >> 5) & 7)) * 5 : 65536;
    struct tls_conn *c = NULL;
    struct sockaddr_storage peer = { .ss_family = AF_INET };
    if (tls_conn_new(&c, t, client, &peer, discard, NULL) < 0)
        return 0;
    if (client && tls_conn_start(c) < 0)
        abort();
    struct buf plain;
    buf_init(&plain, cap);
    bool failed = false;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        int rc = tls_conn_input(c, data + off, n, &plain);
        off += n;
        for (int i = 0; rc == 0 && tls_conn_pending(c) && i < 64; i++) {
            buf_reset(&plain);
            rc = tls_conn_input(c, NULL, 0, &plain);
        }
        if (plain.len > cap)
            abort();
        if (rc < 0) {
            failed = rc == -EPROTO;
            break;
        }
        buf_reset(&plain);
    }
    if (failed && tls_conn_input(c, "x", 1, &plain) == 0)
        abort(); /* a failed connection takes nothing more */
    tls_conn_write(c, "x", 1, 16);
    tls_conn_shutdown(c);
    tls_conn_free(c);
    buf_free(&plain);
    return 0;
}
