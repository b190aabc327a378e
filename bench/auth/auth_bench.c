/*
 * auth_bench — CPU cost of digest authentication and of the location table,
 * and the location table's memory per registered user. Bounded: fixed counts.
 *   auth_bench [USERS]   (default 100000)
 */
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "core/throttle.h"
#include "sip/digest.h"
#include "svc/location.h"

static double ns_per(uint64_t t0_us, long n)
{
    return (double)(clock_mono_us() - t0_us) * 1000.0 / (double)n;
}

static void bench_digest(void)
{
    struct digest_ctx *d;
    if (digest_new(&d, "bench secret bench secret bench!", 32, NULL) < 0)
        exit(1);
    enum { N = 50000 };
    char nonce[DIGEST_NONCE_MAX];
    uint64_t t0 = clock_mono_us();
    for (int i = 0; i < N; i++)
        digest_nonce_make(d, STR("example.com"), 1000, nonce);
    printf("digest: nonce_make %.0f ns\n", ns_per(t0, N));
    static char resp[N][DIGEST_HEX_MAX], nc[N][9];
    for (int a = 0; a < 2; a++) {
        char ha1[DIGEST_HEX_MAX];
        digest_ha1((enum digest_alg)a, STR("alice"), STR("example.com"), STR("pw"), ha1);
        digest_nonce_make(d, STR("example.com"), 1000, nonce);
        for (int i = 0; i < N; i++) {
            snprintf(nc[i], sizeof nc[i], "%08x", i + 1);
            digest_response((enum digest_alg)a, str_cstr(ha1), str_cstr(nonce), str_cstr(nc[i]),
                            STR("abc"), STR("auth"), STR("REGISTER"), STR("sip:example.com"),
                            resp[i]);
        }
        struct digest_creds c = { .username = STR("alice"),
                                  .realm = STR("example.com"),
                                  .nonce = str_cstr(nonce),
                                  .uri = STR("sip:example.com"),
                                  .qop = STR("auth"),
                                  .cnonce = STR("abc"),
                                  .algorithm = a ? STR("SHA-256") : STR("MD5") };
        int ok = 0;
        t0 = clock_mono_us();
        for (int i = 0; i < N; i++) {
            c.nc = str_cstr(nc[i]);
            c.response = str_cstr(resp[i]);
            ok += digest_verify(d, &c, STR("REGISTER"), STR("example.com"), str_cstr(ha1),
                                1000) == DIGEST_OK;
        }
        double known = ns_per(t0, N);
        t0 = clock_mono_us();
        for (int i = 0; i < N; i++) {
            c.nc = str_cstr(nc[i]);
            c.response = str_cstr(resp[i]);
            digest_verify_unknown(d, &c, STR("REGISTER"), STR("example.com"), 1000);
        }
        printf("digest: %s verify %.0f ns (%d/%d ok), unknown user %.0f ns\n",
               digest_alg_name((enum digest_alg)a), known, ok, N, ns_per(t0, N));
    }
    digest_free(d);
}

static void bench_throttle(void)
{
    struct throttle *t;
    if (throttle_new(&t, NULL) < 0)
        exit(1);
    enum { N = 200000 };
    char key[32];
    uint64_t t0 = clock_mono_us();
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "user%d", i % 5000);
        if (!throttle_check(t, str_cstr(key), (uint64_t)i, NULL))
            throttle_fail(t, str_cstr(key), (uint64_t)i);
    }
    printf("throttle: check + fail %.0f ns\n", ns_per(t0, N));
    throttle_free(t);
}

static struct loc_binding mk(int i, char *aor, char *c, char *cid, char *inst, uint32_t cseq)
{
    snprintf(aor, 64, "user%06d@example.com", i);
    snprintf(c, 96, "sip:user%06d@192.168.%d.%d:5060;transport=udp", i, (i >> 8) & 255, i & 255);
    snprintf(cid, 48, "%08x-1b2c-4d5e-8f90-%012d", (unsigned)i * 2654435761u, i);
    snprintf(inst, 64, "<urn:uuid:%08x-0000-1000-8000-%012d>", (unsigned)i, i);
    struct loc_binding b = {
        .contact = str_cstr(c),
        .call_id = str_cstr(cid),
        .instance = str_cstr(inst),
        .reg_id = 1,
        .user_agent = STR("Linphone/5.2.0 (belle-sip/5.2.0)"),
        .cseq = cseq,
        .expires_ms = 3600000,
        .q = 1000,
        .flow_id = (uint64_t)i + 1,
    };
    struct sockaddr_in *in = (struct sockaddr_in *)&b.received;
    in->sin_family = AF_INET;
    in->sin_port = htons(5060);
    in->sin_addr.s_addr = htonl(0xc0a80000u | (uint32_t)i);
    return b;
}

struct lookers {
    struct loc_table *t;
    int users, n;
};

static void *lookup_run(void *arg)
{
    struct lookers *l = arg;
    struct arena *a;
    if (arena_new(&a, 0, 0) < 0)
        return NULL;
    char aor[64];
    for (int i = 0; i < l->n; i++) {
        struct loc_binding *v;
        size_t n;
        snprintf(aor, sizeof aor, "user%06d@example.com", (i * 7919) % l->users);
        loc_lookup(l->t, str_cstr(aor), 1, a, &v, &n);
        if (i % 64 == 0)
            arena_reset(a);
    }
    arena_free(a);
    return NULL;
}

static void bench_location(int users)
{
    struct mallinfo2 m0 = mallinfo2();
    struct loc_table *t;
    if (loc_new(&t, NULL) < 0)
        exit(1);
    char aor[64], c[96], cid[48], inst[64];
    uint64_t t0 = clock_mono_us();
    for (int i = 0; i < users; i++) {
        struct loc_binding b = mk(i, aor, c, cid, inst, 1);
        if (loc_update(t, str_cstr(aor), &b, 1, 0, NULL, NULL, NULL) < 0)
            exit(1);
    }
    double add = ns_per(t0, users);
    struct mallinfo2 m1 = mallinfo2();
    t0 = clock_mono_us();
    for (int i = 0; i < users; i++) {
        struct loc_binding b = mk(i, aor, c, cid, inst, 2);
        if (loc_update(t, str_cstr(aor), &b, 1, 0, NULL, NULL, NULL) < 0)
            exit(1);
    }
    double refresh = ns_per(t0, users);
    printf("location: %d users, %zu bytes per registered user (heap growth incl. malloc "
           "overhead)\n",
           users, (m1.uordblks - m0.uordblks) / (size_t)users);
    printf("location: add %.0f ns, refresh %.0f ns (including building the strings)\n", add,
           refresh);
    for (int w = 1; w <= 2; w++) {
        pthread_t th[2];
        struct lookers l = { t, users, 200000 };
        t0 = clock_mono_us();
        for (int k = 0; k < w; k++)
            pthread_create(&th[k], NULL, lookup_run, &l);
        for (int k = 0; k < w; k++)
            pthread_join(th[k], NULL);
        double us = (double)(clock_mono_us() - t0);
        printf("location: lookup W=%d %.2f M/s\n", w, w * l.n / us);
    }
    t0 = clock_mono_us();
    ssize_t gone = loc_expire(t, 3600000, 0, NULL, NULL, NULL);
    printf("location: expire sweep of %zd bindings %.1f ms\n", gone,
           (double)(clock_mono_us() - t0) / 1000.0);
    loc_free(t);
}

int main(int argc, char **argv)
{
    int users = argc > 1 ? atoi(argv[1]) : 100000;
    if (users < 1 || users > 10000000)
        users = 100000;
    bench_digest();
    bench_throttle();
    bench_location(users);
    return 0;
}
