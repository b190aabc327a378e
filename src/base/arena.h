/*
 * arena — a bump allocator for data that lives exactly as long as one message
 * or one request: parse results and temporaries, freed in one call.
 */
#ifndef RTCD_BASE_ARENA_H
#define RTCD_BASE_ARENA_H

#include <stddef.h>

#include "base/str.h"

struct arena;

/*
 * A new arena whose chunks are chunk_size bytes (0 = 4 KiB); requests larger
 * than a chunk get a chunk of their own. max bounds the total bytes the arena
 * may hold (0 = no bound). Returns 0 or -ENOMEM; *out set only on success.
 */
int arena_new(struct arena **out, size_t chunk_size, size_t max);
/* Frees every chunk and the arena itself. NULL is fine. */
void arena_free(struct arena *a);
/*
 * Forgets every allocation and keeps one chunk for reuse. When the arena had
 * grown past one chunk, the chunks are replaced by a single one as large as
 * all of them (up to ARENA_KEEP_MAX bytes), so that an arena reset per
 * message settles at its high-water mark instead of allocating and freeing a
 * second chunk every time (which made malloc grow and shrink its heap: one
 * mprotect per message). Beyond ARENA_KEEP_MAX it keeps the first chunk only.
 */
#define ARENA_KEEP_MAX (256u * 1024)
void arena_reset(struct arena *a);

/*
 * n bytes aligned to 16, arena-owned (valid until reset or free). NULL when the
 * arena's bound would be passed or memory is short. n == 0 gives a valid
 * unique pointer to zero bytes.
 */
void *arena_alloc(struct arena *a, size_t n);
/* As arena_alloc, for count * size zeroed bytes (NULL on multiplication overflow). */
void *arena_calloc(struct arena *a, size_t count, size_t size);
/* A NUL-terminated arena-owned copy of s, or NULL. */
char *arena_strdup(struct arena *a, str s);
/* Bytes handed out since the last reset. */
size_t arena_used(const struct arena *a);

#endif
