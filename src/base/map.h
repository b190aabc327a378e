/*
 * map — open-addressing hash map from a string or an integer key to a
 * pointer. Linear probing, backward-shift removal (no tombstones), SipHash
 * keyed per map at random so that keys chosen by outsiders (AORs, Call-IDs)
 * cannot force collisions. Not thread-safe: the owner locks or shards.
 */
#ifndef RTCD_BASE_MAP_H
#define RTCD_BASE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

enum map_keys {
    MAP_KEY_STR,        /* byte-exact string keys (copied into the map) */
    MAP_KEY_STR_NOCASE, /* ASCII case-insensitive string keys */
    MAP_KEY_INT,        /* 64-bit integer keys */
};

struct map;

struct map_entry {
    str skey;      /* string maps: the key, map-owned, borrowed until the entry is removed */
    uint64_t ikey; /* integer maps */
    void *val;
};

/* A new empty map sized for about hint entries. 0 or -ENOMEM; *out set only on success. */
int map_new(struct map **out, enum map_keys keys, size_t hint);
/* Frees the map and its key copies; values are the caller's. NULL is fine. */
void map_free(struct map *m);
size_t map_count(const struct map *m);

/*
 * Sets key → val (val must not be NULL). Returns 0 when the key was new, 1 when
 * it replaced a value (the old one is stored in *old if old is not NULL),
 * -ENOMEM (map unchanged).
 */
int map_set_str(struct map *m, str key, void *val, void **old);
int map_set_int(struct map *m, uint64_t key, void *val, void **old);
/* The value for key, or NULL. */
void *map_get_str(const struct map *m, str key);
void *map_get_int(const struct map *m, uint64_t key);
/* Removes key; returns its value, or NULL when absent. */
void *map_del_str(struct map *m, str key);
void *map_del_int(struct map *m, uint64_t key);

/*
 * Iteration: start from a zeroed struct map_iter (MAP_ITER_INIT); each call
 * fills *e and returns true until the end. The map must not be changed during
 * an iteration, except by map_del_current on the entry just returned, which
 * never makes the walk skip or repeat an entry.
 */
struct map_iter {
    size_t start, n;
    bool started;
};
#define MAP_ITER_INIT ((struct map_iter){ 0, 0, false })
bool map_next(const struct map *m, struct map_iter *it, struct map_entry *e);
/* Removes the entry the last map_next returned. */
void map_del_current(struct map *m, struct map_iter *it);

/* SipHash-1-3 of data under a 16-byte key; lower=true hashes ASCII-lowercased bytes. */
uint64_t map_siphash(const uint8_t key[16], const void *data, size_t len, bool lower);

#endif
