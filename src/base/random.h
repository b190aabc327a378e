/*
 * random — cryptographically secure random bytes (getrandom(2)), for nonces,
 * tags, branches, ETags, tokens and hash keys.
 */
#ifndef RTCD_BASE_RANDOM_H
#define RTCD_BASE_RANDOM_H

#include <stddef.h>
#include <stdint.h>

/* Fills p with n random bytes. 0, or a negative errno (never partial on success). May block only
 * at early boot before the kernel pool is ready. */
int random_bytes(void *p, size_t n);
/* A random 64-bit value (aborts if the kernel cannot give one: nothing safe can go on). */
uint64_t random_u64(void);
/* A uniformly random value in [0, bound) without modulo bias; bound > 0. */
uint64_t random_below(uint64_t bound);
/*
 * Writes n random characters from [0-9a-zA-Z] (a SIP token subset: safe for
 * tags, branches, Call-IDs) and a terminating NUL into out (size n + 1).
 * Returns 0 or a negative errno.
 */
int random_token(char *out, size_t n);

#endif
