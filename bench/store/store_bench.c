/*
 * store_bench — throughput of the store on SQLite in a temporary folder:
 * offline enqueues one commit each (synchronous=FULL: one fsync each), the
 * same through the store thread in a burst (batched: one fsync per batch),
 * importing users, reloading the credential table, and credential lookups.
 * Usage: store_bench DIR. Bounded: fixed counts, no network.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/store.h"

static atomic_int done_n, ok_n;

static void on_done(struct worker *w, int rc, int64_t id, void *ctx)
{
    if (rc == 0)
        ok_n++;
    done_n++;
}

static struct store *open_at(const char *dir, const char *name)
{
    char path[512], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct store_params p = {STORE_SQLITE, path, "bench", 1000000};
    struct store *s = NULL;
    if (store_open(&s, &p, err, sizeof err) < 0) {
        fprintf(stderr, "store_bench: %s\n", err);
        exit(1);
    }
    return s;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: store_bench DIR\n");
        return 2;
    }
    log_set_level(LOG_WARN);
    struct store *s = open_at(argv[1], "a.db");
    const int n1 = 300, n2 = 5000, nu = 10000, nl = 1000000;
    uint64_t t0 = clock_mono_us();
    for (int i = 0; i < n1; i++)
        store_offline_enqueue(s, STR("bob"), STR("alice"), 1, STR("text/plain"), STR("hello"),
                              NULL);
    uint64_t t1 = clock_mono_us();
    printf("offline enqueue, one commit each:   %6.0f /s (%d in %.0f ms)\n",
           n1 * 1e6 / (double)(t1 - t0), n1, (t1 - t0) / 1e3);

    struct store_user_new *u = calloc(nu, sizeof *u);
    char(*names)[16] = calloc(nu, 16);
    for (int i = 0; i < nu; i++) {
        snprintf(names[i], 16, "u%d", i);
        u[i] = (struct store_user_new){str_cstr(names[i]), STR("password"), STR("")};
    }
    t0 = clock_mono_us();
    if (store_user_import(s, u, nu, NULL) < 0)
        return 1;
    t1 = clock_mono_us();
    printf("user import (HA1s + one transaction): %5.0f ms for %d users\n", (t1 - t0) / 1e3, nu);
    struct store_creds *c;
    store_creds_new(&c);
    t0 = clock_mono_us();
    store_creds_load(c, s);
    t1 = clock_mono_us();
    printf("credential table reload:            %6.1f ms for %d users\n", (t1 - t0) / 1e3, nu);
    struct cred cr;
    int hits = 0;
    t0 = clock_mono_us();
    for (int i = 0; i < nl; i++)
        hits += store_creds_get(c, str_cstr(names[i % nu]), &cr) == 0;
    t1 = clock_mono_us();
    printf("credential lookup:                  %6.0f ns each (%d hits)\n", (t1 - t0) * 1e3 / nl,
           hits);
    store_creds_free(c);
    free(u);
    free(names);
    store_close(s);

    struct store_thread *t;
    if (store_thread_start(&t, open_at(argv[1], "b.db"), NULL, NULL) < 0)
        return 1;
    t0 = clock_mono_us();
    for (int i = 0; i < n2; i++) {
        char r[16];
        int l = snprintf(r, sizeof r, "u%d", i % 100);
        store_thread_offline_enqueue(t, NULL, str_make(r, l), STR("alice"), 1, STR("text/plain"),
                                     STR("hello"), on_done, NULL);
    }
    while (done_n < n2 && clock_mono_us() - t0 < 60000000)
        usleep(1000);
    t1 = clock_mono_us();
    printf("offline enqueue, store thread burst: %6.0f /s (%d in %.0f ms, %d durable)\n",
           n2 * 1e6 / (double)(t1 - t0), n2, (t1 - t0) / 1e3, (int)ok_n);
    store_thread_stop(t);
    return 0;
}
