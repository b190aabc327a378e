/*
 * Tests for src/net/tls.c without sockets: the self-signed certificate (made
 * once, key 0600, reused), a client and a server connection wired to each
 * other in memory (handshake, data both ways, a plaintext buffer smaller than
 * the data), certificate verification by address, a key that does not match.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "base/config.h"
#include "base/log.h"
#include "net/tls.h"

struct pipe {
    struct buf q; /* ciphertext waiting for the other side */
};

static int to_pipe(void *ctx, const void *data, size_t len)
{
    struct pipe *p = ctx;
    return buf_append(&p->q, data, len);
}

struct pair {
    struct pipe c2s, s2c;
    struct tls_conn *c, *s;
    struct buf cplain, splain;
};

static char dir[64];

static void cfg_for(struct config *c)
{
    assert_int_equal(config_init(c), 0);
    char err[256];
    char set[128];
    snprintf(set, sizeof set, "server.data_dir=%s", dir);
    assert_int_equal(config_set(c, set, err, sizeof err), 0);
    assert_int_equal(config_set(c, "sip.listen=tls:127.0.0.1:15299", err, sizeof err), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rtcd-tls-unit.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct sockaddr_storage ip4(const char *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    inet_pton(AF_INET, a, &s->sin_addr);
    return ss;
}

static void pair_open(struct pair *p, struct tls_server *srv, struct tls_server *cli,
                      const char *peer, size_t plain_max)
{
    memset(p, 0, sizeof *p);
    buf_init(&p->c2s.q, 0);
    buf_init(&p->s2c.q, 0);
    buf_init(&p->cplain, plain_max);
    buf_init(&p->splain, plain_max);
    struct sockaddr_storage ss = ip4(peer);
    assert_int_equal(tls_conn_new(&p->s, srv, false, NULL, to_pipe, &p->s2c), 0);
    assert_int_equal(tls_conn_new(&p->c, cli, true, &ss, to_pipe, &p->c2s), 0);
}

/* Moves ciphertext both ways until neither side sends; the last error of either. */
static int pair_run(struct pair *p)
{
    for (int round = 0; round < 20; round++) {
        if (!p->c2s.q.len && !p->s2c.q.len)
            return 0;
        struct buf a = p->c2s.q, b = p->s2c.q;
        buf_init(&p->c2s.q, 0);
        buf_init(&p->s2c.q, 0);
        int rs = a.len ? tls_conn_input(p->s, a.data, a.len, &p->splain) : 0;
        int rc = b.len ? tls_conn_input(p->c, b.data, b.len, &p->cplain) : 0;
        buf_free(&a);
        buf_free(&b);
        if (rs < 0)
            return rs;
        if (rc < 0)
            return rc;
    }
    return -ELOOP;
}

static void pair_close(struct pair *p)
{
    tls_conn_free(p->c);
    tls_conn_free(p->s);
    buf_free(&p->c2s.q);
    buf_free(&p->s2c.q);
    buf_free(&p->cplain);
    buf_free(&p->splain);
}

static void test_self_signed_made_once(void **state)
{
    (void)state;
    struct config c;
    cfg_for(&c);
    char err[512] = "", fp1[128], fp2[128], path[128];
    struct tls_server *t = NULL;
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), 0);
    tls_server_fingerprint(t, fp1, sizeof fp1);
    assert_int_equal(strlen(fp1), 32 * 3 - 1);
    tls_server_free(t);
    struct stat st;
    snprintf(path, sizeof path, "%s/tls/key.pem", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), 0);
    tls_server_fingerprint(t, fp2, sizeof fp2);
    assert_string_equal(fp1, fp2); /* reused, not made again */
    tls_server_free(t);
    config_free(&c);
}

static void test_handshake_and_data(void **state)
{
    (void)state;
    struct config c;
    cfg_for(&c);
    char err[512], set[160];
    snprintf(set, sizeof set, "tls.ca_file=%s/tls/cert.pem", dir);
    assert_int_equal(config_set(&c, set, err, sizeof err), 0);
    struct tls_server *t = NULL;
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), 0);
    struct pair p;
    pair_open(&p, t, t, "127.0.0.1", 8);
    assert_int_equal(tls_conn_write(p.c, "early", 5, 1024), 0); /* kept until ready */
    assert_int_equal(tls_conn_start(p.c), 0);
    assert_int_equal(pair_run(&p), 0);
    assert_true(tls_conn_ready(p.c));
    assert_true(tls_conn_ready(p.s));
    assert_int_equal(tls_conn_write(p.c, "+twelve", 7, 1024), 0);
    assert_int_equal(pair_run(&p), 0);
    /* 12 bytes into an 8-byte plaintext buffer: 8 now, the rest pending */
    assert_int_equal(p.splain.len, 8);
    assert_memory_equal(p.splain.data, "early+tw", 8);
    assert_true(tls_conn_pending(p.s));
    buf_reset(&p.splain);
    assert_int_equal(tls_conn_input(p.s, NULL, 0, &p.splain), 0);
    assert_int_equal(p.splain.len, 4);
    assert_memory_equal(p.splain.data, "elve", 4);
    assert_false(tls_conn_pending(p.s));
    assert_int_equal(tls_conn_write(p.s, "pong", 4, 1024), 0);
    assert_int_equal(pair_run(&p), 0);
    assert_int_equal(p.cplain.len, 4);
    char info[64];
    assert_non_null(strstr(tls_conn_info(p.c, info, sizeof info), "TLSv1.3"));
    /* close_notify reaches the other side as -ECONNRESET */
    tls_conn_shutdown(p.c);
    assert_int_equal(pair_run(&p), -ECONNRESET);
    pair_close(&p);
    tls_server_free(t);
    config_free(&c);
}

static void test_verify_by_address(void **state)
{
    (void)state;
    struct config c;
    cfg_for(&c);
    char err[512], set[160];
    struct tls_server *t = NULL;
    /* no CA: the self-signed certificate does not verify */
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), 0);
    struct pair p;
    pair_open(&p, t, t, "127.0.0.1", 1024);
    assert_int_equal(tls_conn_start(p.c), 0);
    assert_int_equal(pair_run(&p), -EPROTO);
    assert_non_null(strstr(tls_conn_why(p.c), "certificate verify failed"));
    uint64_t done, failed;
    tls_server_counts(t, &done, &failed);
    assert_true(failed >= 1);
    pair_close(&p);
    /* with it as CA, but for an address it does not name: still refused */
    snprintf(set, sizeof set, "tls.ca_file=%s/tls/cert.pem", dir);
    assert_int_equal(config_set(&c, set, err, sizeof err), 0);
    assert_int_equal(tls_server_reload(t, &c, err, sizeof err), 0);
    pair_open(&p, t, t, "10.1.2.3", 1024);
    assert_int_equal(tls_conn_start(p.c), 0);
    assert_int_equal(pair_run(&p), -EPROTO);
    assert_non_null(strstr(tls_conn_why(p.c), "IP address mismatch"));
    pair_close(&p);
    /* verify_server = no: accepted anyway */
    assert_int_equal(config_set(&c, "tls.verify_server=no", err, sizeof err), 0);
    assert_int_equal(tls_server_reload(t, &c, err, sizeof err), 0);
    pair_open(&p, t, t, "10.1.2.3", 1024);
    assert_int_equal(tls_conn_start(p.c), 0);
    assert_int_equal(pair_run(&p), 0);
    assert_true(tls_conn_ready(p.c));
    pair_close(&p);
    tls_server_free(t);
    config_free(&c);
}

static void test_bad_files(void **state)
{
    (void)state;
    struct config c;
    cfg_for(&c);
    char err[512] = "", set[200];
    struct tls_server *t = NULL;
    snprintf(set, sizeof set, "tls.certificate=%s/nope.pem", dir);
    assert_int_equal(config_set(&c, set, err, sizeof err), 0);
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "tls.certificate:"));
    assert_non_null(strstr(err, "No such file"));
    assert_null(t);
    /* a certificate file given as the key */
    snprintf(set, sizeof set, "tls.certificate=%s/tls/cert.pem", dir);
    assert_int_equal(config_set(&c, set, err, sizeof err), 0);
    snprintf(set, sizeof set, "tls.private_key=%s/tls/cert.pem", dir); /* not a key */
    assert_int_equal(config_set(&c, set, err, sizeof err), 0);
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "tls.private_key:"));
    /* a cipher list OpenSSL knows nothing of */
    assert_int_equal(config_set(&c, "tls.certificate=", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "tls.private_key=", err, sizeof err), 0);
    assert_int_equal(config_set(&c, "tls.ciphers=NOTHING-AT-ALL", err, sizeof err), 0);
    assert_int_equal(tls_server_new(&t, &c, true, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "tls.ciphers:"));
    config_free(&c);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_signed_made_once),
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_verify_by_address),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
