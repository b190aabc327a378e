/*
 * throttle — bounded, sharded failure counters. See throttle.h.
 *
 * Each shard is a small chained hash table of records plus an intrusive
 * list in order of last update; the list's head is the eviction victim.
 */
#include "core/throttle.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/map.h"
#include "base/random.h"

#define SHARDS 16 /* a power of two */

struct rec {
    struct rec *hnext;       /* hash chain */
    struct rec *prev, *next; /* update order, oldest first */
    uint64_t h;
    uint64_t start_ms; /* first failure of the current window */
    uint64_t until_ms; /* throttled until (0 = not throttled) */
    uint32_t count;
};

struct shard {
    pthread_mutex_t lock;
    struct rec **tab;
    size_t mask;
    size_t n, cap;
    struct rec *oldest, *newest;
} __attribute__((aligned(64)));

struct throttle {
    uint8_t seed[16];
    uint64_t window_ms;
    uint32_t max_failures;
    struct shard s[SHARDS];
};

static void list_unlink(struct shard *s, struct rec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        s->oldest = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->newest = r->prev;
    r->prev = r->next = NULL;
}

static void list_append(struct shard *s, struct rec *r)
{
    r->prev = s->newest;
    r->next = NULL;
    if (s->newest)
        s->newest->next = r;
    else
        s->oldest = r;
    s->newest = r;
}

static struct rec **find(struct shard *s, uint64_t h)
{
    struct rec **pp = &s->tab[(h / SHARDS) & s->mask];
    while (*pp && (*pp)->h != h)
        pp = &(*pp)->hnext;
    return pp;
}

static void rec_remove(struct shard *s, struct rec *r)
{
    struct rec **pp = find(s, r->h);
    *pp = r->hnext;
    list_unlink(s, r);
    s->n--;
    free(r);
}

static uint64_t key_hash(const struct throttle *t, str key)
{
    return map_siphash(t->seed, key.s, key.len, false);
}

int throttle_new(struct throttle **out, const struct throttle_params *p)
{
    struct throttle *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = random_bytes(t->seed, sizeof t->seed);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->max_failures = p && p->max_failures ? p->max_failures : 10;
    t->window_ms = 1000ull * (p && p->window_s ? p->window_s : 60);
    size_t keys = p && p->max_keys ? p->max_keys : 65536;
    size_t per = (keys + SHARDS - 1) / SHARDS, nb = 1;
    while (nb < per)
        nb <<= 1;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &t->s[i];
        s->tab = calloc(nb, sizeof *s->tab);
        if (!s->tab) {
            for (int j = 0; j < i; j++) {
                pthread_mutex_destroy(&t->s[j].lock);
                free(t->s[j].tab);
            }
            free(t);
            return -ENOMEM;
        }
        s->mask = nb - 1;
        s->cap = per;
        pthread_mutex_init(&s->lock, NULL);
    }
    *out = t;
    return 0;
}

void throttle_free(struct throttle *t)
{
    if (!t)
        return;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &t->s[i];
        for (struct rec *r = s->oldest, *nx; r; r = nx) {
            nx = r->next;
            free(r);
        }
        free(s->tab);
        pthread_mutex_destroy(&s->lock);
    }
    free(t);
}

bool throttle_check(struct throttle *t, str key, uint64_t now_ms, uint32_t *retry_after_s)
{
    uint64_t h = key_hash(t, key);
    struct shard *s = &t->s[h & (SHARDS - 1)];
    bool throttled = false;
    uint64_t left = 0;
    pthread_mutex_lock(&s->lock);
    struct rec *r = *find(s, h);
    if (r && r->until_ms > now_ms) {
        throttled = true;
        left = r->until_ms - now_ms;
    }
    pthread_mutex_unlock(&s->lock);
    if (retry_after_s)
        *retry_after_s = (uint32_t)((left + 999) / 1000);
    return throttled;
}

bool throttle_fail(struct throttle *t, str key, uint64_t now_ms)
{
    uint64_t h = key_hash(t, key);
    struct shard *s = &t->s[h & (SHARDS - 1)];
    bool throttled;
    pthread_mutex_lock(&s->lock);
    struct rec **pp = find(s, h), *r = *pp;
    if (!r) {
        if (s->n >= s->cap)
            rec_remove(s, s->oldest);
        r = calloc(1, sizeof *r);
        if (!r) {
            /* Out of memory: do not throttle on a guess; the failure is lost. */
            pthread_mutex_unlock(&s->lock);
            return false;
        }
        r->h = h;
        r->start_ms = now_ms;
        pp = find(s, h); /* the eviction may have changed the chain */
        *pp = r;
        s->n++;
    } else {
        list_unlink(s, r);
    }
    list_append(s, r);
    if (r->until_ms > now_ms) {
        throttled = true; /* not counted: see throttle.h */
    } else {
        if (r->until_ms != 0 || now_ms - r->start_ms >= t->window_ms || now_ms < r->start_ms) {
            /* the window (or the throttling) is over: a new window starts */
            r->start_ms = now_ms;
            r->until_ms = 0;
            r->count = 0;
        }
        r->count++;
        if (r->count >= t->max_failures)
            r->until_ms = now_ms + t->window_ms;
        throttled = r->until_ms != 0;
    }
    pthread_mutex_unlock(&s->lock);
    return throttled;
}

void throttle_reset(struct throttle *t, str key)
{
    uint64_t h = key_hash(t, key);
    struct shard *s = &t->s[h & (SHARDS - 1)];
    pthread_mutex_lock(&s->lock);
    struct rec *r = *find(s, h);
    if (r)
        rec_remove(s, r);
    pthread_mutex_unlock(&s->lock);
}

size_t throttle_count(struct throttle *t)
{
    size_t n = 0;
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_lock(&t->s[i].lock);
        n += t->s[i].n;
        pthread_mutex_unlock(&t->s[i].lock);
    }
    return n;
}

str throttle_addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out, &in->sin_addr, 4);
        return str_make((const char *)out, 4);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(out, in6->sin6_addr.s6_addr + 12, 4);
            return str_make((const char *)out, 4);
        }
        memcpy(out, in6->sin6_addr.s6_addr, 8);
        return str_make((const char *)out, 8);
    }
    return str_make((const char *)out, 0);
}
