/*
 * map — open addressing, linear probing, backward-shift deletion.
 */
#include "base/map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/random.h"

struct slot {
    uint64_t hash; /* 0 = empty (real hashes have bit 63 forced on) */
    uint64_t ikey;
    char *skey;
    size_t klen;
    void *val;
};

struct map {
    struct slot *slots;
    size_t mask; /* capacity - 1, capacity a power of two */
    size_t count;
    enum map_keys keys;
    uint8_t seed[16];
};

#define MAX_LOAD_NUM 3 /* grow past 3/4 full */
#define MAX_LOAD_DEN 4

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                 \
    do {                                                                                         \
        v0 += v1;                                                                                \
        v1 = rotl(v1, 13);                                                                       \
        v1 ^= v0;                                                                                \
        v0 = rotl(v0, 32);                                                                       \
        v2 += v3;                                                                                \
        v3 = rotl(v3, 16);                                                                       \
        v3 ^= v2;                                                                                \
        v0 += v3;                                                                                \
        v3 = rotl(v3, 21);                                                                       \
        v3 ^= v0;                                                                                \
        v2 += v1;                                                                                \
        v1 = rotl(v1, 17);                                                                       \
        v1 ^= v2;                                                                                \
        v2 = rotl(v2, 32);                                                                       \
    } while (0)

static inline uint64_t load_le64(const uint8_t *p, bool lower)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | (lower ? str_lower(p[i]) : p[i]);
    return v;
}

uint64_t map_siphash(const uint8_t key[16], const void *data, size_t len, bool lower)
{
    const uint8_t *in = data;
    uint64_t k0 = load_le64(key, false), k1 = load_le64(key + 8, false);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m = load_le64(in + i, lower);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++) {
        uint8_t c = in[full + i];
        b |= (uint64_t)(lower ? str_lower(c) : c) << (8 * i);
    }
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash_str(const struct map *m, str key)
{
    return map_siphash(m->seed, key.s, key.len, m->keys == MAP_KEY_STR_NOCASE) | (1ULL << 63);
}

static uint64_t hash_int(const struct map *m, uint64_t key)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(key >> (8 * i));
    return map_siphash(m->seed, b, sizeof b, false) | (1ULL << 63);
}

static int alloc_slots(struct map *m, size_t cap)
{
    struct slot *s = calloc(cap, sizeof *s);
    if (!s)
        return -ENOMEM;
    m->slots = s;
    m->mask = cap - 1;
    return 0;
}

int map_new(struct map **out, enum map_keys keys, size_t hint)
{
    struct map *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    size_t cap = 16;
    while (cap * MAX_LOAD_NUM / MAX_LOAD_DEN < hint && cap < (SIZE_MAX / sizeof(struct slot)) / 2)
        cap *= 2;
    if (alloc_slots(m, cap) < 0 || random_bytes(m->seed, sizeof m->seed) < 0) {
        free(m->slots);
        free(m);
        return -ENOMEM;
    }
    m->keys = keys;
    *out = m;
    return 0;
}

void map_free(struct map *m)
{
    if (!m)
        return;
    for (size_t i = 0; i <= m->mask; i++)
        free(m->slots[i].skey);
    free(m->slots);
    free(m);
}

size_t map_count(const struct map *m)
{
    return m->count;
}

static bool slot_matches(const struct map *m, const struct slot *s, uint64_t h, str skey,
                         uint64_t ikey)
{
    if (s->hash != h)
        return false;
    if (m->keys == MAP_KEY_INT)
        return s->ikey == ikey;
    str k = str_make(s->skey, s->klen);
    return m->keys == MAP_KEY_STR ? str_eq(k, skey) : str_caseeq(k, skey);
}

/* Index of the key's slot, or of the empty slot where it would go. */
static size_t find(const struct map *m, uint64_t h, str skey, uint64_t ikey)
{
    size_t i = h & m->mask;
    while (m->slots[i].hash && !slot_matches(m, &m->slots[i], h, skey, ikey))
        i = (i + 1) & m->mask;
    return i;
}

static int grow(struct map *m)
{
    struct slot *old = m->slots;
    size_t oldcap = m->mask + 1;
    if (oldcap > (SIZE_MAX / sizeof(struct slot)) / 2)
        return -ENOMEM;
    if (alloc_slots(m, oldcap * 2) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < oldcap; i++) {
        if (!old[i].hash)
            continue;
        size_t j = old[i].hash & m->mask;
        while (m->slots[j].hash)
            j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
    return 0;
}

static int set(struct map *m, uint64_t h, str skey, uint64_t ikey, void *val, void **old)
{
    size_t i = find(m, h, skey, ikey);
    if (m->slots[i].hash) {
        if (old)
            *old = m->slots[i].val;
        m->slots[i].val = val;
        return 1;
    }
    if ((m->count + 1) * MAX_LOAD_DEN > (m->mask + 1) * MAX_LOAD_NUM) {
        if (grow(m) < 0)
            return -ENOMEM;
        i = find(m, h, skey, ikey);
    }
    struct slot *s = &m->slots[i];
    if (m->keys != MAP_KEY_INT) {
        s->skey = str_dup(skey);
        if (!s->skey)
            return -ENOMEM;
        s->klen = skey.len;
    }
    s->hash = h;
    s->ikey = ikey;
    s->val = val;
    m->count++;
    return 0;
}

/* Empties slot i and shifts later members of its probe run back into the gap. */
static void remove_at(struct map *m, size_t i)
{
    free(m->slots[i].skey);
    size_t j = i;
    for (;;) {
        j = (j + 1) & m->mask;
        if (!m->slots[j].hash)
            break;
        size_t home = m->slots[j].hash & m->mask;
        /* Move j back to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    memset(&m->slots[i], 0, sizeof m->slots[i]);
    m->count--;
}

int map_set_str(struct map *m, str key, void *val, void **old)
{
    return set(m, hash_str(m, key), key, 0, val, old);
}

int map_set_int(struct map *m, uint64_t key, void *val, void **old)
{
    return set(m, hash_int(m, key), STR_NULL, key, val, old);
}

void *map_get_str(const struct map *m, str key)
{
    size_t i = find(m, hash_str(m, key), key, 0);
    return m->slots[i].hash ? m->slots[i].val : NULL;
}

void *map_get_int(const struct map *m, uint64_t key)
{
    size_t i = find(m, hash_int(m, key), STR_NULL, key);
    return m->slots[i].hash ? m->slots[i].val : NULL;
}

void *map_del_str(struct map *m, str key)
{
    size_t i = find(m, hash_str(m, key), key, 0);
    if (!m->slots[i].hash)
        return NULL;
    void *v = m->slots[i].val;
    remove_at(m, i);
    return v;
}

void *map_del_int(struct map *m, uint64_t key)
{
    size_t i = find(m, hash_int(m, key), STR_NULL, key);
    if (!m->slots[i].hash)
        return NULL;
    void *v = m->slots[i].val;
    remove_at(m, i);
    return v;
}

/*
 * The walk starts just after an empty slot. A probe run never crosses an empty
 * slot, so backward shifts during the walk only ever move entries from slots
 * not yet visited into the slot just emptied.
 */
bool map_next(const struct map *m, struct map_iter *it, struct map_entry *e)
{
    if (!it->started) {
        size_t i = 0;
        while (m->slots[i].hash)
            i++; /* the load bound guarantees an empty slot */
        it->start = (i + 1) & m->mask;
        it->n = 0;
        it->started = true;
    }
    while (it->n <= m->mask) {
        const struct slot *s = &m->slots[(it->start + it->n++) & m->mask];
        if (s->hash) {
            e->skey = str_make(s->skey, s->klen);
            e->ikey = s->ikey;
            e->val = s->val;
            return true;
        }
    }
    return false;
}

void map_del_current(struct map *m, struct map_iter *it)
{
    it->n--;
    remove_at(m, (it->start + it->n) & m->mask);
}
