/*
 * random — getrandom(2) wrappers.
 */
#include "base/random.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

int random_bytes(void *p, size_t n)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t got = getrandom(b, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        b += got;
        n -= (size_t)got;
    }
    return 0;
}

uint64_t random_u64(void)
{
    uint64_t v;
    if (random_bytes(&v, sizeof v) < 0) {
        fputs("rtcd: getrandom failed; cannot continue without randomness\n", stderr);
        abort();
    }
    return v;
}

uint64_t random_below(uint64_t bound)
{
    /* Reject the top partial range so every value is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    for (;;) {
        uint64_t v = random_u64();
        if (v < limit)
            return v % bound;
    }
}

int random_token(char *out, size_t n)
{
    static const char alphabet[] =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    unsigned char raw[64];
    size_t i = 0;
    while (i < n) {
        int rc = random_bytes(raw, sizeof raw);
        if (rc < 0)
            return rc;
        for (size_t k = 0; k < sizeof raw && i < n; k++) {
            /* 62 symbols: drop bytes >= 248 (4 * 62) to stay unbiased. */
            if (raw[k] < 248)
                out[i++] = alphabet[raw[k] % 62];
        }
    }
    out[n] = '\0';
    return 0;
}
