/*
 * pool — see pool.h. A bump pointer over the newest block serves every size
 * class; freed objects are kept per class in intrusive singly linked lists.
 */
#include "base/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

/*
 * Under AddressSanitizer a freed object and the unused part of a block are
 * poisoned, so a use after pool_put is reported as it would be after free().
 */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define POOL_GRAIN     16
#define POOL_BLOCK     (64 * 1024)
#define POOL_MAX_CLASS (4096 / POOL_GRAIN)

struct block {
    struct block *next;
    size_t size;
};

struct pool {
    pthread_mutex_t lock;
    size_t max_object;
    void *free_list[POOL_MAX_CLASS + 1]; /* by size / 16 */
    char *bump;                          /* next free byte of the newest block */
    size_t left;                         /* bytes after bump in that block */
    struct block *blocks;
    struct pool_stats st;
};

/* The block header is rounded so objects stay 16-aligned. */
#define BLOCK_HDR ((sizeof(struct block) + POOL_GRAIN - 1) & ~(size_t)(POOL_GRAIN - 1))

static size_t class_of(size_t n)
{
    return (n + POOL_GRAIN - 1) / POOL_GRAIN;
}

int pool_new(struct pool **out, size_t max_object)
{
    if (max_object == 0 || max_object > POOL_MAX_CLASS * POOL_GRAIN)
        return -EINVAL;
    struct pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    p->max_object = max_object;
    *out = p;
    return 0;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    for (struct block *b = p->blocks; b;) {
        struct block *nx = b->next;
        UNPOISON(b, b->size);
        munmap(b, b->size);
        b = nx;
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Maps a new block and points the bump pointer at it. Lock held. */
static int grow(struct pool *p)
{
    void *m = mmap(NULL, POOL_BLOCK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    struct block *b = m;
    b->size = POOL_BLOCK;
    b->next = p->blocks;
    p->blocks = b;
    /*
     * The tail of the previous block (smaller than the object that did not fit)
     * is given to the free lists, largest class first, so nothing is lost.
     */
    while (p->left >= POOL_GRAIN) {
        size_t c = p->left / POOL_GRAIN;
        if (c > POOL_MAX_CLASS)
            c = POOL_MAX_CLASS;
        UNPOISON(p->bump, sizeof(void *));
        *(void **)p->bump = p->free_list[c];
        POISON(p->bump, c * POOL_GRAIN);
        p->free_list[c] = p->bump;
        p->bump += c * POOL_GRAIN;
        p->left -= c * POOL_GRAIN;
    }
    p->bump = (char *)m + BLOCK_HDR;
    p->left = POOL_BLOCK - BLOCK_HDR;
    POISON(p->bump, p->left);
    p->st.mapped += POOL_BLOCK;
    return 0;
}

void *pool_alloc(struct pool *p, size_t n)
{
    if (n == 0)
        n = 1;
    if (n > p->max_object) {
        void *o = malloc(n);
        if (o) {
            pthread_mutex_lock(&p->lock);
            p->st.in_use += n;
            p->st.objects++;
            pthread_mutex_unlock(&p->lock);
        }
        return o;
    }
    size_t c = class_of(n);
    size_t sz = c * POOL_GRAIN;
    void *o = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->free_list[c]) {
        o = p->free_list[c];
        UNPOISON(o, sizeof(void *));
        p->free_list[c] = *(void **)o;
    } else if (p->left >= sz || grow(p) == 0) {
        o = p->bump;
        p->bump += sz;
        p->left -= sz;
    }
    if (o) {
        UNPOISON(o, sz);
        p->st.in_use += sz;
        p->st.objects++;
    }
    pthread_mutex_unlock(&p->lock);
    return o;
}

void pool_put(struct pool *p, void *obj, size_t n)
{
    if (!obj)
        return;
    if (n == 0)
        n = 1;
    if (n > p->max_object) {
        free(obj);
        pthread_mutex_lock(&p->lock);
        p->st.in_use -= n;
        p->st.objects--;
        pthread_mutex_unlock(&p->lock);
        return;
    }
    size_t c = class_of(n);
    pthread_mutex_lock(&p->lock);
    *(void **)obj = p->free_list[c];
    POISON(obj, c * POOL_GRAIN);
    p->free_list[c] = obj;
    p->st.in_use -= c * POOL_GRAIN;
    p->st.objects--;
    pthread_mutex_unlock(&p->lock);
}

void pool_get_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->lock);
    *out = p->st;
    pthread_mutex_unlock(&p->lock);
}
