/*
 * guard.h — test helper: copies bytes so that they end exactly at a page boundary
 * followed by a PROT_NONE page; a one-byte over-read by the parser faults.
 */
#ifndef RTCD_TEST_SIP_GUARD_H
#define RTCD_TEST_SIP_GUARD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guarded {
    char *map;
    size_t maplen;
    char *p; /* the bytes, ending at the guard page */
    size_t len;
};

static inline struct guarded guard_copy(const void *data, size_t len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + pg - 1) / pg;
    if (pages == 0)
        pages = 1;
    struct guarded g = { 0 };
    g.maplen = (pages + 1) * pg;
    g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED)
        abort();
    if (mprotect(g.map + pages * pg, pg, PROT_NONE) != 0)
        abort();
    g.p = g.map + pages * pg - len;
    g.len = len;
    if (len)
        memcpy(g.p, data, len);
    return g;
}

static inline void guard_free(struct guarded *g)
{
    munmap(g->map, g->maplen);
    g->map = NULL;
}

/* Reads a whole file (test data) into a malloc'd buffer; *len set. Aborts on failure. */
static inline char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    *len = (size_t)n;
    return b;
}

#endif
