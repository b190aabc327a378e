/*
 * throttle — failed-authentication throttling per key (a source address or
 * a user). Failures are counted in a window of failure_window seconds that
 * starts at a key's first failure; when max_failures have been counted the
 * key is throttled for failure_window seconds from the failure that reached
 * the limit. The router creates one table for addresses and one for users,
 * asks throttle_check before verifying credentials, and reports each
 * DIGEST_FAIL with throttle_fail; a success clears the user's record
 * (throttle_reset) — never the address's, or one good account would let an
 * address guess others' passwords for ever.
 *
 * Memory is bounded: at most max_keys keys are tracked; when full, the key
 * not updated for longest is forgotten. Keys are stored as a 64-bit keyed
 * SipHash (random key per table), not as text. Thread-safe by shards (one
 * mutex each, held for a few instructions). Time is passed in (now_ms) so
 * that tests drive it; any monotonic millisecond clock works.
 */
#ifndef RTCD_CORE_THROTTLE_H
#define RTCD_CORE_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/str.h"

struct throttle_params {
    uint32_t max_failures; /* auth.max_failures (0 = 10) */
    uint32_t window_s;     /* auth.failure_window (0 = 60) */
    size_t max_keys;       /* keys tracked at most (0 = 65536; about 64 bytes each) */
};

struct throttle;

/* A new table. 0 or -ENOMEM; *out set only on success. */
int throttle_new(struct throttle **out, const struct throttle_params *p);
/* Frees the table. NULL is fine. No call may be running on it. */
void throttle_free(struct throttle *t);

/*
 * Whether key is throttled at now_ms: the caller then answers without
 * verifying (403, or 503 with Retry-After) — *retry_after_s (if not NULL) gets
 * the seconds left, rounded up. Never blocks.
 */
bool throttle_check(struct throttle *t, str key, uint64_t now_ms, uint32_t *retry_after_s);

/*
 * Counts one failure for key at now_ms. Returns true when the key is
 * throttled after this failure (the caller logs it once, when it first
 * becomes true). Failures while throttled are not counted (the caller should
 * not have verified them).
 */
bool throttle_fail(struct throttle *t, str key, uint64_t now_ms);

/* Forgets key's failures (a user authenticated). */
void throttle_reset(struct throttle *t, str key);

/* Keys currently tracked (for stats and tests). */
size_t throttle_count(struct throttle *t);

/*
 * The throttling key of a source address into out (16 bytes): IPv4 (and
 * v4-mapped IPv6) as the address; IPv6 as its /64 prefix, since one host
 * commonly owns a whole /64. The port is ignored. Returns the key slice
 * (pointing into out), or an empty slice for other families.
 */
str throttle_addr_key(const struct sockaddr *sa, uint8_t out[16]);

#endif
