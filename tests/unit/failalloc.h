/*
 * failalloc — make the n-th allocation fail, for unit tests of failure paths.
 * Include from exactly one test file: it interposes malloc, calloc and realloc
 * over glibc's (which the static library then uses too). Sanitizer builds have
 * their own allocator, so there FAILALLOC_ACTIVE is 0 and the tests skip.
 *   failalloc_arm(3): the 4th allocation from now and every later one fail,
 *   until failalloc_disarm().
 */
#ifndef RTCD_TESTS_FAILALLOC_H
#define RTCD_TESTS_FAILALLOC_H

#include <stddef.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FAILALLOC_ACTIVE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FAILALLOC_ACTIVE 0
#endif
#endif
#ifndef FAILALLOC_ACTIVE
#define FAILALLOC_ACTIVE 1
#endif

static long failalloc_left = -1; /* -1 = disarmed */

static inline void failalloc_arm(long n)
{
    __atomic_store_n(&failalloc_left, n, __ATOMIC_SEQ_CST);
}

static inline void failalloc_disarm(void)
{
    __atomic_store_n(&failalloc_left, -1, __ATOMIC_SEQ_CST);
}

#if FAILALLOC_ACTIVE
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);

static int failalloc_now(void)
{
    long v = __atomic_load_n(&failalloc_left, __ATOMIC_SEQ_CST);
    if (v < 0)
        return 0;
    if (v == 0)
        return 1;
    __atomic_store_n(&failalloc_left, v - 1, __ATOMIC_SEQ_CST);
    return 0;
}

void *malloc(size_t n)
{
    return failalloc_now() ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    return failalloc_now() ? NULL : __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    return failalloc_now() ? NULL : __libc_realloc(p, n);
}
#endif

#endif
