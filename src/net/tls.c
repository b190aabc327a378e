/*
 * tls — TLS under net's stream flows: contexts (server, client), the
 * self-signed certificate of a first start, and one connection's state
 * machine driven by the bytes the loop reads (no socket in OpenSSL's hands).
 */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "base/random.h"

#define MAX_REST (256u * 1024) /* ciphertext kept while the plaintext buffer is full */
#define READ_STEP 16384
#define CERT_DAYS 3650L

struct tls_server {
    pthread_mutex_t lock; /* guards sctx, cctx, fp: taken only to swap or to SSL_new */
    SSL_CTX *sctx;        /* NULL when no certificate is served */
    SSL_CTX *cctx;
    char fp[3 * 32 + 1];
    BIO_METHOD *meth;
    bool serve, verify_server;
    _Atomic uint32_t pending, max_pending, timeout_s;
    _Atomic uint64_t done, failed;
};

struct tls_conn {
    struct tls_server *t;
    SSL *ssl;
    tls_send_fn send;
    void *send_ctx;
    const uint8_t *in; /* the ciphertext being read, borrowed during tls_conn_input */
    size_t in_len;
    uint8_t *rest; /* ciphertext left over when plain was full */
    size_t rest_len;
    struct buf early; /* plaintext written before the handshake ended */
    bool client, ready, counted, failed;
    int busy; /* inside an OpenSSL call: no re-entry (shutdown from a send error) */
    char why[160];
};

/* ---- errors ---- */

static void ssl_errstr(char *out, size_t len)
{
    unsigned long e = ERR_get_error(), last = e;
    while (e) {
        last = e;
        e = ERR_get_error();
    }
    if (last) {
        const char *r = ERR_reason_error_string(last);
        snprintf(out, len, "%s", r ? r : "OpenSSL error");
    } else {
        snprintf(out, len, "OpenSSL error");
    }
}

static int fail_cfg(char *err, size_t errlen, const char *what, const char *path)
{
    char e[160];
    ssl_errstr(e, sizeof e);
    snprintf(err, errlen, "%s%s%s: %s", what, path ? " " : "", path ? path : "", e);
    return -EINVAL;
}

/* ---- the BIO: reads the bytes at hand, writes through the callback ---- */

static int bio_write(BIO *b, const char *data, int len)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (c->send(c->send_ctx, data, (size_t)len) < 0)
        return -1;
    return len;
}

static int bio_read(BIO *b, char *out, int len)
{
    struct tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (c->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = c->in_len < (size_t)len ? c->in_len : (size_t)len;
    memcpy(out, c->in, n);
    c->in += n;
    c->in_len -= n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static int bio_destroy(BIO *b)
{
    (void)b;
    return 1;
}

/* ---- the self-signed certificate ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return -EINVAL;
    int ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : -EINVAL;
}

static bool is_ip(str s)
{
    char tmp[64];
    uint8_t a[16];
    return str_copy(tmp, sizeof tmp, s) >= 0 &&
           (inet_pton(AF_INET, tmp, a) == 1 || inet_pton(AF_INET6, tmp, a) == 1);
}

/* subjectAltName: every served domain, loopback, and the TLS listeners' own addresses. */
static int san_text(const struct config *cfg, struct buf *b)
{
    int rc = 0;
    str list = str_cstr(cfg->server.domain);
    while (list.len && rc == 0) {
        ssize_t comma = str_find_char(list, ',');
        str d = str_trim(comma < 0 ? list : str_sub(list, 0, (size_t)comma));
        list = comma < 0 ? STR_NULL : str_skip(list, (size_t)comma + 1);
        if (d.len && !is_ip(d))
            rc = buf_printf(b, "DNS:%.*s,", STR_FMT(d));
        else if (d.len)
            rc = buf_printf(b, "IP:%.*s,", STR_FMT(d));
    }
    if (rc == 0)
        rc = buf_printf(b, "IP:127.0.0.1,IP:::1");
    const struct listen_list *ls[] = { &cfg->sip.listen, &cfg->http.listen };
    for (size_t k = 0; k < 2 && rc == 0; k++) {
        for (size_t i = 0; i < ls[k]->n && rc == 0; i++) {
            const struct listen_addr *la = &ls[k]->v[i];
            char h[INET6_ADDRSTRLEN];
            static const uint8_t any[16];
            const void *a = la->addr.ss_family == AF_INET
                                ? (const void *)&((const struct sockaddr_in *)&la->addr)->sin_addr
                                : (const void *)&((const struct sockaddr_in6 *)&la->addr)->sin6_addr;
            if (la->transport != TRANSPORT_TLS && la->transport != TRANSPORT_WSS)
                continue;
            if (memcmp(a, any, la->addr.ss_family == AF_INET ? 4 : 16) == 0)
                continue;
            inet_ntop(la->addr.ss_family, a, h, sizeof h);
            if (strcmp(h, "127.0.0.1") && strcmp(h, "::1"))
                rc = buf_printf(b, ",IP:%s", h);
        }
    }
    if (rc == 0)
        rc = buf_append_byte(b, 0);
    return rc;
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *x)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return -e;
    }
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
                 : PEM_write_X509(f, x);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) < 0) {
        unlink(tmp);
        return -EIO;
    }
    return 0;
}

/*
 * Makes an ECDSA P-256 key and a self-signed certificate (10 years) for the
 * served domains, writes them to cert/key. 0 or a negative errno with err.
 */
static int make_self_signed(const struct config *cfg, const char *cert, const char *key,
                            char *err, size_t errlen)
{
    int rc = -ENOMEM;
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    BIGNUM *bn = NULL;
    struct buf san;
    buf_init(&san, 8192);
    if (!pk || !x)
        goto out;
    uint8_t serial[16];
    random_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    char cn[256];
    str first = str_cstr(cfg->server.domain);
    ssize_t comma = str_find_char(first, ',');
    first = str_trim(comma < 0 ? first : str_sub(first, 0, (size_t)comma));
    if (!bn || str_copy(cn, sizeof cn, first) < 0 || san_text(cfg, &san) < 0)
        goto out;
    X509_NAME *nm = X509_get_subject_name(x);
    rc = -EINVAL;
    if (!X509_set_version(x, X509_VERSION_3) ||
        !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), CERT_DAYS * 86400) || !X509_set_pubkey(x, pk) ||
        !X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"rtcd", -1,
                                    -1, 0) ||
        !X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_issuer_name(x, nm) ||
        add_ext(x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") < 0 ||
        add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
        add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, NID_subject_alt_name, (const char *)san.data) < 0 ||
        !X509_sign(x, pk, EVP_sha256())) {
        fail_cfg(err, errlen, "cannot make a self-signed certificate", NULL);
        goto out;
    }
    rc = write_pem(key, 0600, pk, NULL);
    if (rc == 0)
        rc = write_pem(cert, 0644, NULL, x);
    if (rc < 0)
        snprintf(err, errlen, "cannot write %s / %s: %s", cert, key, strerror(-rc));
out:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "cannot make a self-signed certificate: out of memory");
    buf_free(&san);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return rc;
}

/* The certificate and key files for cfg (made when self-signed and missing). */
static int cert_paths(const struct config *cfg, bool serve, char *cert, char *key, size_t cap,
                      bool *created, char *err, size_t errlen)
{
    *created = false;
    if (*cfg->tls.certificate) {
        snprintf(cert, cap, "%s", cfg->tls.certificate);
        snprintf(key, cap, "%s", *cfg->tls.private_key ? cfg->tls.private_key
                                                       : cfg->tls.certificate);
        return 0;
    }
    if (!serve)
        return -ENOENT;
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/tls", cfg->server.data_dir) >= (int)sizeof dir ||
        snprintf(cert, cap, "%s/cert.pem", dir) >= (int)cap ||
        snprintf(key, cap, "%s/key.pem", dir) >= (int)cap) {
        snprintf(err, errlen, "server.data_dir: path too long");
        return -ENAMETOOLONG;
    }
    if (access(cert, R_OK) == 0 && access(key, R_OK) == 0)
        return 0;
    mkdir(cfg->server.data_dir, 0700);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
        return -e;
    }
    int rc = make_self_signed(cfg, cert, key, err, errlen);
    if (rc == 0)
        *created = true;
    return rc;
}

static void fingerprint(X509 *x, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    out[0] = 0;
    if (!x || !X509_digest(x, EVP_sha256(), md, &n))
        return;
    size_t o = 0;
    for (unsigned i = 0; i < n && o + 4 <= len; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%02X", i ? ":" : "", md[i]);
}

/* ---- contexts ---- */

static int common_ctx(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    int min = strcmp(cfg->tls.min_version, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, min) ||
        !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        return fail_cfg(err, errlen, "tls.min_version:", cfg->tls.min_version);
    if (!SSL_CTX_set_cipher_list(ctx, cfg->tls.ciphers))
        return fail_cfg(err, errlen, "tls.ciphers:", cfg->tls.ciphers);
    /* idle connections give their read/write buffers back (10,000s of them) */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    return 0;
}

/* A file named by a key that cannot be read: say why in plain words. */
static int unreadable(const char *what, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) == 0)
        return 0;
    int e = errno;
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
    return -e;
}

static int load_cert(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    int rc;
    if ((rc = unreadable("tls.certificate:", cert, err, errlen)) < 0 ||
        (rc = unreadable("tls.private_key:", key, err, errlen)) < 0)
        return rc;
    if (!SSL_CTX_use_certificate_chain_file(ctx, cert))
        return fail_cfg(err, errlen, "tls.certificate:", cert);
    if (!SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM))
        return fail_cfg(err, errlen, "tls.private_key:", key);
    if (!SSL_CTX_check_private_key(ctx))
        return fail_cfg(err, errlen, "tls.private_key: does not match the certificate", key);
    return 0;
}

static int build(const struct config *cfg, bool serve, SSL_CTX **sctx_out, SSL_CTX **cctx_out,
                 char *fp, size_t fplen, char *err, size_t errlen)
{
    char cert[4200], key[4200];
    bool created = false;
    int rc = cert_paths(cfg, serve, cert, key, sizeof cert, &created, err, errlen);
    bool have_cert = rc == 0;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    SSL_CTX *s = NULL, *c = SSL_CTX_new(TLS_client_method());
    rc = -ENOMEM;
    if (!c)
        goto fail;
    if (have_cert && !(s = SSL_CTX_new(TLS_server_method())))
        goto fail;
    if ((rc = common_ctx(c, cfg, err, errlen)) < 0)
        goto fail;
    /* outgoing: the system CA store and tls.ca_file; our certificate as client certificate */
    SSL_CTX_set_verify(c, strcmp(cfg->tls.verify_server, "no") == 0 ? SSL_VERIFY_NONE
                                                                      : SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_verify_paths(c);
    if (*cfg->tls.ca_file && (rc = unreadable("tls.ca_file:", cfg->tls.ca_file, err, errlen)) < 0)
        goto fail;
    if (*cfg->tls.ca_file && !SSL_CTX_load_verify_locations(c, cfg->tls.ca_file, NULL)) {
        rc = fail_cfg(err, errlen, "tls.ca_file:", cfg->tls.ca_file);
        goto fail;
    }
    if (have_cert && (rc = load_cert(c, cert, key, err, errlen)) < 0)
        goto fail;
    if (s) {
        if ((rc = common_ctx(s, cfg, err, errlen)) < 0 ||
            (rc = load_cert(s, cert, key, err, errlen)) < 0)
            goto fail;
        SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
        SSL_CTX_set_session_id_context(s, (const unsigned char *)"rtcd", 4);
        /* resumption by stateless tickets only: no per-session memory on the server */
        SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
        int mode = SSL_VERIFY_NONE;
        if (strcmp(cfg->tls.verify_client, "optional") == 0)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
        else if (strcmp(cfg->tls.verify_client, "required") == 0)
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE;
        if (mode != SSL_VERIFY_NONE) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls.ca_file);
            if (!names || !SSL_CTX_load_verify_locations(s, cfg->tls.ca_file, NULL)) {
                sk_X509_NAME_pop_free(names, X509_NAME_free);
                rc = fail_cfg(err, errlen, "tls.ca_file:", cfg->tls.ca_file);
                goto fail;
            }
            SSL_CTX_set_client_CA_list(s, names);
        }
        SSL_CTX_set_verify(s, mode, NULL);
        fingerprint(SSL_CTX_get0_certificate(s), fp, fplen);
        log_info("tls", "certificate %s (%s), SHA-256 fingerprint %s", cert,
                 created ? "self-signed, created now"
                         : *cfg->tls.certificate ? "configured" : "self-signed",
                 fp);
    } else {
        fp[0] = 0;
    }
    ERR_clear_error();
    *sctx_out = s;
    *cctx_out = c;
    return 0;
fail:
    if (rc == -ENOMEM)
        snprintf(err, errlen, "tls: out of memory");
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    ERR_clear_error();
    return rc;
}

int tls_server_new(struct tls_server **out, const struct config *cfg, bool serve, char *err,
                   size_t errlen)
{
    struct tls_server *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    t->serve = serve;
    t->meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rtcd flow");
    if (!t->meth || !BIO_meth_set_write(t->meth, bio_write) ||
        !BIO_meth_set_read(t->meth, bio_read) || !BIO_meth_set_ctrl(t->meth, bio_ctrl) ||
        !BIO_meth_set_create(t->meth, bio_create) || !BIO_meth_set_destroy(t->meth, bio_destroy)) {
        BIO_meth_free(t->meth);
        free(t);
        snprintf(err, errlen, "tls: out of memory");
        return -ENOMEM;
    }
    int rc = build(cfg, serve, &t->sctx, &t->cctx, t->fp, sizeof t->fp, err, errlen);
    if (rc < 0) {
        BIO_meth_free(t->meth);
        free(t);
        return rc;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->verify_server = strcmp(cfg->tls.verify_server, "no") != 0;
    atomic_store(&t->max_pending, cfg->tls.max_handshakes);
    atomic_store(&t->timeout_s, cfg->tls.handshake_timeout);
    *out = t;
    return 0;
}

int tls_server_reload(struct tls_server *t, const struct config *cfg, char *err, size_t errlen)
{
    SSL_CTX *s = NULL, *c = NULL;
    char fp[sizeof t->fp];
    int rc = build(cfg, t->serve, &s, &c, fp, sizeof fp, err, errlen);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&t->lock);
    SSL_CTX *old_s = t->sctx, *old_c = t->cctx;
    t->sctx = s;
    t->cctx = c;
    t->verify_server = strcmp(cfg->tls.verify_server, "no") != 0;
    memcpy(t->fp, fp, sizeof fp);
    pthread_mutex_unlock(&t->lock);
    atomic_store(&t->max_pending, cfg->tls.max_handshakes);
    atomic_store(&t->timeout_s, cfg->tls.handshake_timeout);
    /* live connections hold their own references: the old contexts go with the last one */
    SSL_CTX_free(old_s);
    SSL_CTX_free(old_c);
    return 0;
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->sctx);
    SSL_CTX_free(t->cctx);
    BIO_meth_free(t->meth);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void tls_server_counts(const struct tls_server *t, uint64_t *done, uint64_t *failed)
{
    *done = atomic_load_explicit(&t->done, memory_order_relaxed);
    *failed = atomic_load_explicit(&t->failed, memory_order_relaxed);
}

uint32_t tls_server_handshake_timeout(const struct tls_server *t)
{
    return atomic_load_explicit(&t->timeout_s, memory_order_relaxed);
}

const char *tls_server_fingerprint(const struct tls_server *t, char *buf, size_t len)
{
    pthread_mutex_lock((pthread_mutex_t *)&t->lock);
    snprintf(buf, len, "%s", t->fp);
    pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
    return buf;
}

/* ---- connections ---- */

static void release_pending(struct tls_conn *c)
{
    if (c->counted) {
        c->counted = false;
        atomic_fetch_sub(&c->t->pending, 1);
    }
}

int tls_conn_new(struct tls_conn **out, struct tls_server *t, bool client,
                 const struct sockaddr_storage *peer, tls_send_fn send, void *send_ctx)
{
    struct tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->t = t;
    c->client = client;
    c->send = send;
    c->send_ctx = send_ctx;
    buf_init(&c->early, 0);
    if (!client) {
        if (atomic_fetch_add(&t->pending, 1) >= atomic_load(&t->max_pending)) {
            atomic_fetch_sub(&t->pending, 1);
            free(c);
            return -EBUSY;
        }
        c->counted = true;
    }
    pthread_mutex_lock(&t->lock);
    SSL_CTX *ctx = client ? t->cctx : t->sctx;
    bool verify = t->verify_server;
    c->ssl = ctx ? SSL_new(ctx) : NULL; /* the SSL takes its own reference on ctx */
    pthread_mutex_unlock(&t->lock);
    BIO *bio = c->ssl ? BIO_new(t->meth) : NULL;
    if (!bio) {
        int rc = ctx ? -ENOMEM : -EINVAL;
        SSL_free(c->ssl);
        release_pending(c);
        free(c);
        ERR_clear_error();
        return rc;
    }
    BIO_set_data(bio, c);
    SSL_set_bio(c->ssl, bio, bio); /* one BIO, both ways: freed with the SSL */
    if (client) {
        SSL_set_connect_state(c->ssl);
        if (verify && peer) {
            X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
            if (peer->ss_family == AF_INET)
                X509_VERIFY_PARAM_set1_ip(vp, (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr, 4);
            else if (peer->ss_family == AF_INET6)
                X509_VERIFY_PARAM_set1_ip(vp, ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr, 16);
        }
    } else {
        SSL_set_accept_state(c->ssl);
    }
    *out = c;
    return 0;
}

static int conn_fail(struct tls_conn *c, int r, const char *stage)
{
    int e = SSL_get_error(c->ssl, r);
    char detail[120];
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK && !c->ready)
        snprintf(detail, sizeof detail, "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(detail, sizeof detail, "connection failed");
    else
        ssl_errstr(detail, sizeof detail);
    ERR_clear_error();
    snprintf(c->why, sizeof c->why, "TLS %s: %s", stage, detail);
    if (!c->ready && !c->failed)
        atomic_fetch_add_explicit(&c->t->failed, 1, memory_order_relaxed);
    c->failed = true;
    release_pending(c);
    return -EPROTO;
}

static int flush_early(struct tls_conn *c)
{
    if (!c->early.len)
        return 0;
    ERR_clear_error();
    c->busy++;
    int r = SSL_write(c->ssl, c->early.data, (int)c->early.len);
    c->busy--;
    buf_free(&c->early);
    return r > 0 ? 0 : conn_fail(c, r, "write");
}

static int pump(struct tls_conn *c, struct buf *plain)
{
    if (!c->ready) {
        ERR_clear_error();
        c->busy++;
        int r = SSL_do_handshake(c->ssl);
        c->busy--;
        if (r != 1) {
            if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ)
                return 0;
            return conn_fail(c, r, "handshake");
        }
        c->ready = true;
        release_pending(c);
        atomic_fetch_add_explicit(&c->t->done, 1, memory_order_relaxed);
        int rc = flush_early(c);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        size_t room = plain->max - plain->len;
        if (room == 0)
            return 0;
        if (room > READ_STEP)
            room = READ_STEP;
        if (buf_reserve(plain, room) < 0)
            return -ENOMEM;
        ERR_clear_error();
        c->busy++;
        int r = SSL_read(c->ssl, plain->data + plain->len, (int)room);
        c->busy--;
        if (r > 0) {
            plain->len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return 0;
        if (e == SSL_ERROR_ZERO_RETURN) {
            snprintf(c->why, sizeof c->why, "TLS closed by peer");
            return -ECONNRESET;
        }
        return conn_fail(c, r, "read");
    }
}

int tls_conn_input(struct tls_conn *c, const void *data, size_t len, struct buf *plain)
{
    if (c->failed)
        return -EPROTO;
    bool from_rest = c->rest_len > 0;
    if (from_rest && len) {
        if (c->rest_len + len > MAX_REST) {
            snprintf(c->why, sizeof c->why, "TLS input not consumed");
            return -ENOBUFS;
        }
        uint8_t *p = realloc(c->rest, c->rest_len + len);
        if (!p)
            return -ENOMEM;
        memcpy(p + c->rest_len, data, len);
        c->rest = p;
        c->rest_len += len;
    }
    if (from_rest) {
        c->in = c->rest;
        c->in_len = c->rest_len;
    } else {
        c->in = data;
        c->in_len = data ? len : 0;
    }
    int rc = pump(c, plain);
    /* keep what OpenSSL did not take (plain was full) for the next call */
    if (c->in_len == 0) {
        free(c->rest);
        c->rest = NULL;
        c->rest_len = 0;
    } else if (from_rest) {
        memmove(c->rest, c->in, c->in_len);
        c->rest_len = c->in_len;
    } else {
        uint8_t *p = malloc(c->in_len);
        if (!p)
            rc = -ENOMEM;
        else
            memcpy(p, c->in, c->in_len);
        c->rest = p;
        c->rest_len = p ? c->in_len : 0;
    }
    c->in = NULL;
    c->in_len = 0;
    return rc;
}

bool tls_conn_pending(const struct tls_conn *c)
{
    return !c->failed && (c->rest_len > 0 || (c->ready && SSL_pending(c->ssl) > 0));
}

bool tls_conn_ready(const struct tls_conn *c)
{
    return c->ready;
}

int tls_conn_start(struct tls_conn *c)
{
    struct buf none;
    buf_init(&none, 1); /* the handshake's first flight only: nothing to read yet */
    none.max = 0;
    int rc = pump(c, &none);
    buf_free(&none);
    return rc;
}

int tls_conn_write(struct tls_conn *c, const void *data, size_t len, size_t max)
{
    if (c->failed)
        return -EPROTO;
    if (len == 0)
        return 0;
    if (!c->ready) {
        if (len > max || c->early.len > max - len)
            return -ENOBUFS;
        return buf_append(&c->early, data, len);
    }
    if (len > INT32_MAX)
        return -EMSGSIZE;
    ERR_clear_error();
    c->busy++;
    int r = SSL_write(c->ssl, data, (int)len);
    c->busy--;
    return r > 0 ? 0 : conn_fail(c, r, "write");
}

void tls_conn_shutdown(struct tls_conn *c)
{
    if (!c || c->busy || !c->ready || c->failed)
        return;
    c->busy++;
    SSL_shutdown(c->ssl);
    c->busy--;
    ERR_clear_error();
}

const char *tls_conn_why(const struct tls_conn *c)
{
    return c->why[0] ? c->why : "TLS error";
}

const char *tls_conn_info(const struct tls_conn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s %s", SSL_get_version(c->ssl),
             SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)));
    return buf;
}

void tls_conn_free(struct tls_conn *c)
{
    if (!c)
        return;
    release_pending(c);
    SSL_free(c->ssl);
    free(c->rest);
    buf_free(&c->early);
    free(c);
}
