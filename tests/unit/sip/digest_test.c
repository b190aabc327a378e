/* Unit tests for src/sip/digest.c: RFC test vectors, nonces, replay table, verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>

#include "failalloc.h"
#include "sip/digest.h"

static const char SECRET[] = "0123456789abcdef0123456789abcdef";

static struct digest_ctx *ctx_new(uint32_t lifetime, size_t entries)
{
    struct digest_ctx *d = NULL;
    struct digest_params p = {.nonce_lifetime_s = lifetime, .replay_entries = entries};
    assert_int_equal(digest_new(&d, SECRET, 32, &p), 0);
    return d;
}

/* RFC 7616 §3.9.1: the SHA-256 and MD5 examples. */
static void test_rfc7616(void **state)
{
    (void)state;
    char ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX];
    str nonce = STR("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v");
    str cnonce = STR("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
    str realm = STR("http-auth@example.org");
    assert_int_equal(digest_ha1(DIGEST_MD5, STR("Mufasa"), realm, STR("Circle of Life"), ha1), 0);
    assert_int_equal(digest_response(DIGEST_MD5, str_cstr(ha1), nonce, STR("00000001"), cnonce,
                                     STR("auth"), STR("GET"), STR("/dir/index.html"), resp),
                     0);
    assert_string_equal(resp, "8ca523f5e9506fed4657c9700eebdbec");
    assert_int_equal(digest_ha1(DIGEST_SHA256, STR("Mufasa"), realm, STR("Circle of Life"), ha1),
                     0);
    assert_int_equal(strlen(ha1), 64);
    assert_int_equal(digest_response(DIGEST_SHA256, str_cstr(ha1), nonce, STR("00000001"), cnonce,
                                     STR("auth"), STR("GET"), STR("/dir/index.html"), resp),
                     0);
    assert_string_equal(resp, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

/* RFC 2617 §3.5 (the password is "Circle Of Life" there). */
static void test_rfc2617(void **state)
{
    (void)state;
    char ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX];
    assert_int_equal(digest_ha1(DIGEST_MD5, STR("Mufasa"), STR("testrealm@host.com"),
                                STR("Circle Of Life"), ha1),
                     0);
    assert_int_equal(digest_response(DIGEST_MD5, str_cstr(ha1),
                                     STR("dcd98b7102dd2f0e8b11d0f600bfb0c093"), STR("00000001"),
                                     STR("0a4f113b"), STR("auth"), STR("GET"),
                                     STR("/dir/index.html"), resp),
                     0);
    assert_string_equal(resp, "6629fae49393a05397450978507c4ef1");
    /* qop other than auth is refused */
    assert_int_equal(digest_response(DIGEST_MD5, str_cstr(ha1), STR("n"), STR("00000001"), STR("c"),
                                     STR("auth-int"), STR("GET"), STR("/"), resp),
                     -EINVAL);
}

static void test_alg_parse(void **state)
{
    (void)state;
    enum digest_alg a = DIGEST_SHA256;
    assert_int_equal(digest_alg_parse(STR(""), &a), 0);
    assert_int_equal(a, DIGEST_MD5);
    assert_int_equal(digest_alg_parse(STR("sha-256"), &a), 0);
    assert_int_equal(a, DIGEST_SHA256);
    assert_int_equal(digest_alg_parse(STR("MD5"), &a), 0);
    assert_int_equal(a, DIGEST_MD5);
    assert_int_equal(digest_alg_parse(STR("MD5-sess"), &a), -ENOTSUP);
    assert_int_equal(digest_alg_parse(STR("SHA-256-sess"), &a), -ENOTSUP);
    assert_int_equal(digest_alg_parse(STR("SHA-512-256"), &a), -ENOTSUP);
    assert_string_equal(digest_alg_name(DIGEST_SHA256), "SHA-256");
    assert_int_equal(digest_hex_len(DIGEST_MD5), 32);
}

static void test_nonce(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 0);
    char n1[DIGEST_NONCE_MAX], n2[DIGEST_NONCE_MAX];
    uint64_t t0 = 1700000000000ull;
    assert_int_equal(digest_nonce_make(d, STR("example.com"), t0, n1), 0);
    assert_int_equal(digest_nonce_make(d, STR("example.com"), t0, n2), 0);
    assert_int_equal(strlen(n1), 43);
    assert_string_not_equal(n1, n2); /* random part */
    for (size_t i = 0; i < 43; i++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", n1[i]));
    str ns = str_cstr(n1);
    assert_int_equal(digest_nonce_check(d, ns, STR("example.com"), t0), DIGEST_NONCE_VALID);
    assert_int_equal(digest_nonce_check(d, ns, STR("example.com"), t0 + 300000),
                     DIGEST_NONCE_VALID);
    assert_int_equal(digest_nonce_check(d, ns, STR("example.com"), t0 + 300001),
                     DIGEST_NONCE_STALE);
    /* issued in the future (beyond 5 s of skew): invalid */
    assert_int_equal(digest_nonce_check(d, ns, STR("example.com"), t0 - 6000),
                     DIGEST_NONCE_INVALID);
    assert_int_equal(digest_nonce_check(d, ns, STR("example.com"), t0 - 4000), DIGEST_NONCE_VALID);
    /* another realm, a flipped character, a wrong length, a different secret */
    assert_int_equal(digest_nonce_check(d, ns, STR("example.org"), t0), DIGEST_NONCE_INVALID);
    for (size_t i = 0; i < 43; i++) {
        char bad[DIGEST_NONCE_MAX];
        memcpy(bad, n1, sizeof bad);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(digest_nonce_check(d, str_cstr(bad), STR("example.com"), t0),
                         DIGEST_NONCE_INVALID);
    }
    assert_int_equal(digest_nonce_check(d, str_make(n1, 42), STR("example.com"), t0),
                     DIGEST_NONCE_INVALID);
    assert_int_equal(digest_nonce_check(d, STR(""), STR("example.com"), t0), DIGEST_NONCE_INVALID);
    assert_int_equal(digest_nonce_check(d, STR("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"),
                                        STR("example.com"), t0),
                     DIGEST_NONCE_INVALID);
    struct digest_ctx *other = NULL;
    assert_int_equal(digest_new(&other, "another secret, 16+ bytes", 25, NULL), 0);
    assert_int_equal(digest_nonce_check(other, ns, STR("example.com"), t0), DIGEST_NONCE_INVALID);
    digest_free(other);
    assert_int_equal(digest_new(&other, "short", 5, NULL), -EINVAL);
    digest_free(d);
}

struct client {
    char ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX], nc[9];
    struct digest_creds c;
};

/* Fills c as a client would for user alice / password pw over nonce. */
static void client_sign(struct client *cl, enum digest_alg alg, const char *pw, const char *nonce,
                        uint32_t nc, const char *method)
{
    assert_int_equal(digest_ha1(alg, STR("alice"), STR("example.com"), str_cstr(pw), cl->ha1), 0);
    snprintf(cl->nc, sizeof cl->nc, "%08x", nc);
    cl->c = (struct digest_creds){
        .username = STR("alice"),
        .realm = STR("example.com"),
        .nonce = str_cstr(nonce),
        .uri = STR("sip:example.com"),
        .qop = STR("auth"),
        .nc = str_cstr(cl->nc),
        .cnonce = STR("0a4f113b"),
        .algorithm = alg == DIGEST_SHA256 ? STR("SHA-256") : STR("MD5"),
    };
    assert_int_equal(digest_response(alg, str_cstr(cl->ha1), cl->c.nonce, cl->c.nc, cl->c.cnonce,
                                     cl->c.qop, str_cstr(method), cl->c.uri, cl->resp),
                     0);
    cl->c.response = str_cstr(cl->resp);
}

static void test_verify(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 0);
    uint64_t t0 = 1700000000000ull;
    char nonce[DIGEST_NONCE_MAX], stored[DIGEST_HEX_MAX];
    str realm = STR("example.com");
    assert_int_equal(digest_nonce_make(d, realm, t0, nonce), 0);
    for (int a = 0; a < 2; a++) {
        enum digest_alg alg = (enum digest_alg)a;
        struct client cl;
        assert_int_equal(digest_ha1(alg, STR("alice"), realm, STR("secret"), stored), 0);
        str ha1 = str_cstr(stored);
        /* nc counts up per algorithm run: MD5 uses 1..3, SHA-256 10..12 */
        uint32_t base = a ? 10 : 1;
        client_sign(&cl, alg, "secret", nonce, base, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 10), DIGEST_OK);
        /* the same nc again: replay, answered stale (the credentials were right) */
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 20),
                         DIGEST_STALE);
        /* a lower nc: replay */
        client_sign(&cl, alg, "secret", nonce, base - 1 ? base - 1 : 1, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 20),
                         DIGEST_STALE);
        /* the next nc: fine; uppercase response hex and uppercase stored HA1 accepted */
        client_sign(&cl, alg, "secret", nonce, base + 1, "REGISTER");
        for (char *p = cl.resp; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 32);
        char upper[DIGEST_HEX_MAX];
        memcpy(upper, stored, sizeof upper);
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 32);
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, str_cstr(upper), t0 + 30),
                         DIGEST_OK);
        /* wrong method (the response covers it) */
        client_sign(&cl, alg, "secret", nonce, base + 2, "INVITE");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 30),
                         DIGEST_FAIL);
        /* a failed attempt did not burn nc base+2 */
        assert_int_equal(digest_verify(d, &cl.c, STR("INVITE"), realm, ha1, t0 + 30), DIGEST_OK);
        /* wrong password */
        client_sign(&cl, alg, "Secret", nonce, base + 5, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 40),
                         DIGEST_FAIL);
        /* truncated / extended response */
        client_sign(&cl, alg, "secret", nonce, base + 6, "REGISTER");
        cl.c.response.len--;
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 40),
                         DIGEST_FAIL);
        /* the HA1 of the other algorithm: invalid, never a success */
        char other[DIGEST_HEX_MAX];
        assert_int_equal(digest_ha1(!alg, STR("alice"), realm, STR("secret"), other), 0);
        client_sign(&cl, alg, "secret", nonce, base + 7, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, str_cstr(other), t0),
                         DIGEST_INVALID);
        /* expired nonce with the right password: stale; with a wrong one: fail */
        client_sign(&cl, alg, "secret", nonce, base + 8, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 400000),
                         DIGEST_STALE);
        client_sign(&cl, alg, "wrong", nonce, base + 8, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0 + 400000),
                         DIGEST_FAIL);
    }
    digest_free(d);
}

static void test_verify_invalid(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 0);
    uint64_t t0 = 5000000;
    char nonce[DIGEST_NONCE_MAX], stored[DIGEST_HEX_MAX];
    str realm = STR("example.com");
    assert_int_equal(digest_nonce_make(d, realm, t0, nonce), 0);
    assert_int_equal(digest_ha1(DIGEST_MD5, STR("alice"), realm, STR("secret"), stored), 0);
    str ha1 = str_cstr(stored);
    struct client cl;
#define CHECK_INVALID(mutation)                                                                    \
    do {                                                                                           \
        client_sign(&cl, DIGEST_MD5, "secret", nonce, 1, "REGISTER");                              \
        mutation;                                                                                  \
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0),                 \
                         DIGEST_INVALID);                                                          \
        assert_int_equal(digest_verify_unknown(d, &cl.c, STR("REGISTER"), realm, t0),              \
                         DIGEST_INVALID);                                                          \
    } while (0)
    CHECK_INVALID(cl.c.realm = STR("example.org"));
    CHECK_INVALID(cl.c.algorithm = STR("MD5-sess"));
    CHECK_INVALID(cl.c.qop = STR("auth-int"));
    CHECK_INVALID(cl.c.nc = STR("00000000"));
    CHECK_INVALID(cl.c.nc = STR("0000001"));
    CHECK_INVALID(cl.c.nc = STR("0000000g"));
    CHECK_INVALID(cl.c.cnonce = STR(""));
    CHECK_INVALID(cl.c.username = STR(""));
    CHECK_INVALID(cl.c.uri = STR(""));
    CHECK_INVALID(cl.c.response = STR(""));
    CHECK_INVALID(cl.c.nonce = STR("dcd98b7102dd2f0e8b11d0f600bfb0c093"));
    CHECK_INVALID(cl.c.qop = STR("")); /* no qop but nc and cnonce present */
    /* nothing above burnt nc 1 */
    client_sign(&cl, DIGEST_MD5, "secret", nonce, 1, "REGISTER");
    assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, ha1, t0), DIGEST_OK);
    digest_free(d);
}

/* RFC 2069 credentials (no qop): accepted unless require_qop. */
static void test_no_qop(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 0);
    char nonce[DIGEST_NONCE_MAX], stored[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX];
    str realm = STR("example.com");
    assert_int_equal(digest_nonce_make(d, realm, 1000, nonce), 0);
    assert_int_equal(digest_ha1(DIGEST_MD5, STR("bob"), realm, STR("pw"), stored), 0);
    assert_int_equal(digest_response(DIGEST_MD5, str_cstr(stored), str_cstr(nonce), STR_NULL,
                                     STR_NULL, STR_NULL, STR("INVITE"), STR("sip:x@example.com"),
                                     resp),
                     0);
    struct digest_creds c = {.username = STR("bob"),
                             .realm = realm,
                             .nonce = str_cstr(nonce),
                             .uri = STR("sip:x@example.com"),
                             .response = str_cstr(resp)};
    assert_int_equal(digest_verify(d, &c, STR("INVITE"), realm, str_cstr(stored), 1000), DIGEST_OK);
    digest_free(d);
    struct digest_params p = {.require_qop = true};
    assert_int_equal(digest_new(&d, SECRET, 32, &p), 0);
    assert_int_equal(digest_verify(d, &c, STR("INVITE"), realm, str_cstr(stored), 1000),
                     DIGEST_INVALID);
    digest_free(d);
}

/* Unknown users: always a failure, even with the "right" dummy-less guess. */
static void test_unknown_user(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 0);
    char nonce[DIGEST_NONCE_MAX];
    str realm = STR("example.com");
    assert_int_equal(digest_nonce_make(d, realm, 1000, nonce), 0);
    struct client cl;
    client_sign(&cl, DIGEST_SHA256, "x", nonce, 1, "REGISTER");
    assert_int_equal(digest_verify_unknown(d, &cl.c, STR("REGISTER"), realm, 1000), DIGEST_FAIL);
    /* stale nonce: still a plain failure, like a known user's wrong password */
    assert_int_equal(digest_verify_unknown(d, &cl.c, STR("REGISTER"), realm, 1000 + 301000),
                     DIGEST_FAIL);
    digest_free(d);
}

/*
 * The replay table is bounded: with 128 entries (16 shards x 1 bucket x 8 ways),
 * thousands of nonces evict each other; an evicted nonce is answered stale (never
 * accepted again with an old nc) and a nonce newer than every evicted one works.
 */
static void test_replay_bounded(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 128);
    str realm = STR("example.com");
    char stored[DIGEST_HEX_MAX];
    assert_int_equal(digest_ha1(DIGEST_MD5, STR("alice"), realm, STR("secret"), stored), 0);
    static char nonces[2000][DIGEST_NONCE_MAX];
    struct client cl;
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(digest_nonce_make(d, realm, 10000 + (uint64_t)i, nonces[i]), 0);
        client_sign(&cl, DIGEST_MD5, "secret", nonces[i], 1, "REGISTER");
        assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, str_cstr(stored), 20000),
                         DIGEST_OK);
    }
    int replay_ok = 0, stale = 0;
    for (int i = 0; i < 2000; i++) {
        client_sign(&cl, DIGEST_MD5, "secret", nonces[i], 1, "REGISTER");
        enum digest_result r =
            digest_verify(d, &cl.c, STR("REGISTER"), realm, str_cstr(stored), 20000);
        replay_ok += r == DIGEST_OK;
        stale += r == DIGEST_STALE;
    }
    assert_int_equal(replay_ok, 0);
    assert_int_equal(stale, 2000);
    /* a new nonce still authenticates */
    char fresh[DIGEST_NONCE_MAX];
    assert_int_equal(digest_nonce_make(d, realm, 30000, fresh), 0);
    client_sign(&cl, DIGEST_MD5, "secret", fresh, 1, "REGISTER");
    assert_int_equal(digest_verify(d, &cl.c, STR("REGISTER"), realm, str_cstr(stored), 30000),
                     DIGEST_OK);
    digest_free(d);
}

struct hammer {
    struct digest_ctx *d;
    const char *nonce;
    uint32_t first;
    int ok;
};

static void *hammer_run(void *arg)
{
    struct hammer *h = arg;
    char stored[DIGEST_HEX_MAX];
    digest_ha1(DIGEST_MD5, STR("alice"), STR("example.com"), STR("secret"), stored);
    for (uint32_t nc = 1; nc <= 400; nc++) {
        struct client cl;
        char resp[DIGEST_HEX_MAX], ncs[9];
        snprintf(ncs, sizeof ncs, "%08x", nc);
        cl.c = (struct digest_creds){.username = STR("alice"),
                                     .realm = STR("example.com"),
                                     .nonce = str_cstr(h->nonce),
                                     .uri = STR("sip:a"),
                                     .qop = STR("auth"),
                                     .nc = str_cstr(ncs),
                                     .cnonce = STR("c")};
        digest_response(DIGEST_MD5, str_cstr(stored), cl.c.nonce, cl.c.nc, cl.c.cnonce, cl.c.qop,
                        STR("REGISTER"), cl.c.uri, resp);
        cl.c.response = str_cstr(resp);
        if (digest_verify(h->d, &cl.c, STR("REGISTER"), STR("example.com"), str_cstr(stored),
                          1000) == DIGEST_OK)
            h->ok++;
    }
    return NULL;
}

/* Four threads replay the same nonce with nc 1..400: every nc is accepted at most once,
 * and at least once overall. */
static void test_replay_threads(void **state)
{
    (void)state;
    struct digest_ctx *d = ctx_new(300, 0);
    char nonce[DIGEST_NONCE_MAX];
    assert_int_equal(digest_nonce_make(d, STR("example.com"), 1000, nonce), 0);
    pthread_t th[4];
    struct hammer h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){d, nonce, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += h[i].ok;
    }
    assert_true(total >= 400 / 4 && total <= 400);
    digest_free(d);
}

static void test_challenge(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    assert_int_equal(digest_challenge(&b, DIGEST_SHA256, STR("example.com"), STR("abc"), false), 0);
    assert_int_equal(b.len, strlen("Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\", "
                                   "algorithm=SHA-256"));
    assert_memory_equal(b.data,
                        "Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\", "
                        "algorithm=SHA-256",
                        b.len);
    buf_reset(&b);
    assert_int_equal(digest_challenge(&b, DIGEST_MD5, STR("a\"b\\c"), STR("n"), true), 0);
    const char *want = "Digest realm=\"a\\\"b\\\\c\", nonce=\"n\", qop=\"auth\", algorithm=MD5, "
                       "stale=true";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
    /* too small: -ENOBUFS and nothing appended */
    buf_init(&b, 20);
    assert_int_equal(digest_challenge(&b, DIGEST_MD5, STR("example.com"), STR("n"), false),
                     -ENOBUFS);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

static void test_creds_parse(void **state)
{
    (void)state;
    struct digest_creds c;
    str v = STR("Digest username=\"Mufasa\", realm=\"http-auth@example.org\",\r\n "
                "uri=\"/dir/index.html\", algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPE\", "
                "nc=00000001, cnonce=\"f2/wE4q\", qop=auth, response=\"7539\", "
                "opaque=\"FQhe\", userhash=false, x=\"a\\\"b\"");
    assert_int_equal(digest_creds_parse(v, &c), 0);
    assert_true(str_eq(c.username, STR("Mufasa")));
    assert_true(str_eq(c.realm, STR("http-auth@example.org")));
    assert_true(str_eq(c.uri, STR("/dir/index.html")));
    assert_true(str_eq(c.algorithm, STR("SHA-256")));
    assert_true(str_eq(c.nonce, STR("7ypf/xlj9XXwfDPE")));
    assert_true(str_eq(c.nc, STR("00000001")));
    assert_true(str_eq(c.cnonce, STR("f2/wE4q")));
    assert_true(str_eq(c.qop, STR("auth")));
    assert_true(str_eq(c.response, STR("7539")));
    assert_true(str_eq(c.opaque, STR("FQhe")));
    assert_int_equal(digest_creds_parse(STR("digest  USERNAME = \"a\" "), &c), 0);
    assert_true(str_eq(c.username, STR("a")));
    assert_int_equal(digest_creds_parse(STR("Basic dXNlcjpwYXNz"), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digestusername=\"a\""), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digest username=\"a"), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digest username=\"a\\"), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digest username=\"a\" realm=\"b\""), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digest username=\"a\", username=\"b\""), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digest username="), &c), -EINVAL);
    assert_int_equal(digest_creds_parse(STR("Digest =x"), &c), -EINVAL);
    char many[1024] = "Digest a=1";
    for (int i = 0; i < 40; i++)
        strcat(many, ", a=1");
    assert_int_equal(digest_creds_parse(str_cstr(many), &c), -E2BIG);
}

/* Allocation failures: digest_new cleans up; a verification never succeeds for lack of
 * memory; nonce_make needs no memory. */
static void test_alloc_failures(void **state)
{
    (void)state;
    if (!FAILALLOC_ACTIVE)
        skip();
    struct digest_ctx *d = NULL;
    for (long k = 0;; k++) {
        failalloc_arm(k);
        int rc = digest_new(&d, SECRET, 32, NULL);
        failalloc_disarm();
        if (rc == 0)
            break;
        assert_true(rc == -ENOMEM || rc == -EIO);
        assert_null(d);
    }
    char nonce[DIGEST_NONCE_MAX], stored[DIGEST_HEX_MAX];
    failalloc_arm(0);
    int rc = digest_nonce_make(d, STR("example.com"), 1000, nonce);
    failalloc_disarm();
    assert_int_equal(rc, 0); /* a nonce (SipHash MAC) allocates nothing */
    assert_int_equal(
        digest_ha1(DIGEST_SHA256, STR("alice"), STR("example.com"), STR("secret"), stored), 0);
    struct client cl;
    client_sign(&cl, DIGEST_SHA256, "secret", nonce, 1, "REGISTER");
    for (long k = 0;; k++) {
        failalloc_arm(k);
        enum digest_result r =
            digest_verify(d, &cl.c, STR("REGISTER"), STR("example.com"), str_cstr(stored), 1000);
        failalloc_disarm();
        if (r == DIGEST_OK)
            break;
        assert_int_equal(r, DIGEST_INVALID);
    }
    digest_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7616),        cmocka_unit_test(test_rfc2617),
        cmocka_unit_test(test_alg_parse),      cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_verify),         cmocka_unit_test(test_verify_invalid),
        cmocka_unit_test(test_no_qop),         cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_replay_bounded), cmocka_unit_test(test_replay_threads),
        cmocka_unit_test(test_challenge),      cmocka_unit_test(test_creds_parse),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
