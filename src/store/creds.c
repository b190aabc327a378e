/*
 * store/creds — the in-memory credential table: user name → {enabled, HA1
 * MD5, HA1 SHA-256, display}. Read by the workers (SIP digest, TURN) without
 * touching the database; written only by whoever calls store_creds_load (the
 * store thread). 64 shards, a mutex each; a reload builds the new shards off
 * lock and swaps each one in under its lock, so a reader waits at most for a
 * pointer swap and never for I/O.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"
#include "base/random.h"
#include "store/store.h"

#define N_SHARDS      64
#define LOG_NAMES_MAX 20

struct shard {
    pthread_mutex_t lock;
    struct map *m; /* name → struct cred * (owned) */
};

struct store_creds {
    uint8_t key[16];
    size_t count;
    pthread_mutex_t count_lock;
    struct shard *shards; /* N_SHARDS */
};

static size_t shard_of(const struct store_creds *t, str name)
{
    return map_siphash(t->key, name.s, name.len, false) % N_SHARDS;
}

static void free_map(struct map *m)
{
    if (!m)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(m, &it, &e))
        free(e.val);
    map_free(m);
}

int store_creds_new(struct store_creds **out)
{
    struct store_creds *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->shards = calloc(N_SHARDS, sizeof *t->shards);
    if (!t->shards) {
        free(t);
        return -ENOMEM;
    }
    int rc = random_bytes(t->key, sizeof t->key);
    for (size_t i = 0; i < N_SHARDS && rc == 0; i++)
        rc = map_new(&t->shards[i].m, MAP_KEY_STR, 16);
    if (rc < 0) {
        for (size_t i = 0; i < N_SHARDS; i++)
            free_map(t->shards[i].m);
        free(t->shards);
        free(t);
        return rc;
    }
    for (size_t i = 0; i < N_SHARDS; i++)
        pthread_mutex_init(&t->shards[i].lock, NULL);
    pthread_mutex_init(&t->count_lock, NULL);
    *out = t;
    return 0;
}

void store_creds_free(struct store_creds *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < N_SHARDS; i++) {
        free_map(t->shards[i].m);
        pthread_mutex_destroy(&t->shards[i].lock);
    }
    pthread_mutex_destroy(&t->count_lock);
    free(t->shards);
    free(t);
}

int store_creds_get(const struct store_creds *t, str user, struct cred *out)
{
    struct shard *sh = &t->shards[shard_of(t, user)];
    int rc = -ENOENT;
    pthread_mutex_lock(&sh->lock);
    const struct cred *c = map_get_str(sh->m, user);
    if (c) {
        *out = *c;
        rc = 0;
    }
    pthread_mutex_unlock(&sh->lock);
    return rc;
}

size_t store_creds_count(const struct store_creds *t)
{
    pthread_mutex_lock(&((struct store_creds *)t)->count_lock);
    size_t n = t->count;
    pthread_mutex_unlock(&((struct store_creds *)t)->count_lock);
    return n;
}

struct load_ctx {
    struct store_creds *t;
    struct map *next[N_SHARDS];
    int rc;
};

static int load_user(void *ctx, const struct store_user *u)
{
    struct load_ctx *c = ctx;
    struct cred *e = malloc(sizeof *e);
    if (!e)
        return -ENOMEM;
    memset(e, 0, sizeof *e);
    e->enabled = u->enabled;
    memcpy(e->ha1_md5, u->ha1_md5, sizeof e->ha1_md5);
    memcpy(e->ha1_sha256, u->ha1_sha256, sizeof e->ha1_sha256);
    memcpy(e->display, u->display, sizeof e->display);
    str name = str_cstr(u->name);
    void *old = NULL;
    int rc = map_set_str(c->next[shard_of(c->t, name)], name, e, &old);
    free(old);
    if (rc < 0) {
        free(e);
        return rc;
    }
    return 0;
}

/* Logs what changed between old and new of one shard; returns counts via the pointers. */
static void diff_shard(struct map *old, struct map *new, size_t *added, size_t *changed,
                       size_t *removed)
{
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(new, &it, &e)) {
        const struct cred *o = map_get_str(old, e.skey);
        const char *what = NULL;
        if (!o) {
            what = "added";
            ++*added;
        } else if (memcmp(o, e.val, sizeof *o) != 0) {
            what = "changed";
            ++*changed;
        }
        if (what && *added + *changed <= LOG_NAMES_MAX)
            log_debug("store", "credentials: user %.*s %s", STR_FMT(e.skey), what);
    }
    it = MAP_ITER_INIT;
    while (map_next(old, &it, &e)) {
        if (!map_get_str(new, e.skey)) {
            ++*removed;
            if (*removed <= LOG_NAMES_MAX)
                log_debug("store", "credentials: user %.*s removed", STR_FMT(e.skey));
        }
    }
}

int store_creds_load(struct store_creds *t, struct store *s)
{
    struct load_ctx c = {.t = t};
    int rc = 0;
    for (size_t i = 0; i < N_SHARDS && rc == 0; i++)
        rc = map_new(&c.next[i], MAP_KEY_STR, 16);
    if (rc == 0)
        rc = store_user_list(s, load_user, &c);
    if (rc < 0) {
        for (size_t i = 0; i < N_SHARDS; i++)
            free_map(c.next[i]);
        return rc;
    }
    size_t total = 0, added = 0, changed = 0, removed = 0;
    for (size_t i = 0; i < N_SHARDS; i++) {
        struct shard *sh = &t->shards[i];
        total += map_count(c.next[i]);
        pthread_mutex_lock(&sh->lock);
        struct map *old = sh->m;
        sh->m = c.next[i];
        pthread_mutex_unlock(&sh->lock);
        /* only this thread writes shards, so reading old and new unlocked is safe */
        diff_shard(old, c.next[i], &added, &changed, &removed);
        free_map(old);
    }
    pthread_mutex_lock(&t->count_lock);
    t->count = total;
    pthread_mutex_unlock(&t->count_lock);
    if (added || changed || removed)
        log_info("store", "credentials reloaded: %zu user(s), %zu added, %zu changed, %zu removed",
                 total, added, changed, removed);
    return 0;
}
