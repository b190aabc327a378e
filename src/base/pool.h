/*
 * pool — a small-object allocator for long-lived records (location bindings,
 * AOR records): objects are carved from 64 KiB blocks mapped for the pool
 * alone, so they never share pages with the short-lived allocations of the
 * message path (transactions, buffers). That is what lets the memory those
 * free go back to the system: with one heap, a page that holds one binding
 * among freed transaction memory stays resident (see docs/internals.md).
 *
 * Sizes are rounded up to 16 bytes; a freed object goes on its size class's
 * free list and is reused by the next object of that class. Blocks return to
 * the system only when the pool is destroyed. Objects larger than the pool's
 * max_object come from malloc. Thread-safe (one mutex, held for a few
 * instructions); the caller passes each object's size back on free.
 */
#ifndef RTCD_BASE_POOL_H
#define RTCD_BASE_POOL_H

#include <stddef.h>

struct pool;

struct pool_stats {
    size_t mapped;  /* bytes of blocks mapped */
    size_t in_use;  /* bytes of live objects (rounded sizes; malloc'd ones included) */
    size_t objects; /* live objects */
};

/*
 * A new pool for objects of up to max_object bytes (at most 4096; larger ones
 * are malloc'd). Maps nothing until the first allocation. 0, -EINVAL or -ENOMEM.
 */
int pool_new(struct pool **out, size_t max_object);
/* Unmaps every block (objects still live are gone with them). NULL is fine. */
void pool_free(struct pool *p);
/* n bytes aligned to 16 (n == 0 is treated as 1), or NULL when memory is short. */
void *pool_alloc(struct pool *p, size_t n);
/* Gives back an object of pool_alloc(p, n), with the same n. NULL is fine. */
void pool_put(struct pool *p, void *obj, size_t n);
void pool_get_stats(struct pool *p, struct pool_stats *out);

#endif
