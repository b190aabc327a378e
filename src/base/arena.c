/*
 * arena — bump allocator over a list of chunks.
 */
#include "base/arena.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

struct chunk {
    struct chunk *next;
    size_t size, used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

struct arena {
    struct chunk *head; /* the chunk being filled; the first chunk is last in the list */
    size_t chunk_size, max, total, used;
};

static struct chunk *chunk_new(size_t size)
{
    if (size > SIZE_MAX - sizeof(struct chunk))
        return NULL;
    struct chunk *c = malloc(sizeof *c + size);
    if (!c)
        return NULL;
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

int arena_new(struct arena **out, size_t chunk_size, size_t max)
{
    struct arena *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->chunk_size = chunk_size ? chunk_size : 4096;
    a->max = max ? max : SIZE_MAX;
    *out = a;
    return 0;
}

void arena_free(struct arena *a)
{
    if (!a)
        return;
    struct chunk *c = a->head;
    while (c) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    free(a);
}

void arena_reset(struct arena *a)
{
    struct chunk *c = a->head;
    size_t total = a->total; /* every chunk's size: the high-water mark */
    while (c && c->next) {
        struct chunk *n = c->next;
        a->total -= c->size;
        free(c);
        c = n;
    }
    /* c is the first chunk; when there were more, grow it to all of them if that is modest */
    if (c && total > c->size && total <= ARENA_KEEP_MAX) {
        struct chunk *big = chunk_new(total);
        if (big) {
            a->total += total - c->size;
            free(c);
            c = big;
        }
    }
    a->head = c;
    if (c)
        c->used = 0;
    a->used = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
    size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < n)
        return NULL;
    if (need == 0)
        need = ARENA_ALIGN;
    struct chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        size_t size = need > a->chunk_size ? need : a->chunk_size;
        if (size > a->max - a->total)
            return NULL;
        c = chunk_new(size);
        if (!c)
            return NULL;
        a->total += size;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *arena_calloc(struct arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *arena_strdup(struct arena *a, str s)
{
    char *p = arena_alloc(a, s.len + 1);
    if (!p)
        return NULL;
    if (s.len)
        memcpy(p, s.s, s.len);
    p[s.len] = '\0';
    return p;
}

size_t arena_used(const struct arena *a)
{
    return a->used;
}
