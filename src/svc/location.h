/*
 * location — the registrar's location table (RFC 3261 §10.3, RFC 5626 §6):
 * address-of-record → bindings. In memory, shared by all worker threads,
 * sharded by AOR with one mutex per shard; no lock is ever held across a
 * callback (the change hook runs after the shard is unlocked), I/O or a
 * wait. Time comes from the caller (now_ms, any millisecond clock used
 * consistently — the wall clock if bindings are persisted across restarts).
 *
 * AORs are "user@domain": the user part is compared byte-exactly, the domain
 * case-insensitively (it is lower-cased on the way in). Contacts are matched
 * by a comparison key: the caller passes contact_key (loc_contact_key makes
 * one from the URI text, RFC 3261 §19.1.4 in the form documented there); an
 * empty key means "the contact text, byte-exact". A contact carrying
 * +sip.instance and a reg-id is matched by (instance, reg-id) instead (RFC
 * 5626 §6), so a new flow for the same device replaces the old binding. The
 * two kinds never match each other: a contact without (instance, reg-id)
 * does not touch an outbound binding whose URI is the same text.
 *
 * Results are copies (arena-owned), never pointers into the table.
 */
#ifndef RTCD_SVC_LOCATION_H
#define RTCD_SVC_LOCATION_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/arena.h"
#include "base/str.h"

/* Longest AOR (bytes) and longest string field of a binding. */
#define LOC_AOR_MAX   256
#define LOC_FIELD_MAX 4096
/* Most bindings in one loc_update call. */
#define LOC_BATCH_MAX 64

/* Errors beyond -EINVAL / -E2BIG / -ENOMEM, with the answer the registrar gives. */
#define LOC_ERR_ORDER    (-ESTALE) /* same Call-ID, lower CSeq: 500 (RFC 3261 §10.3 step 7) */
#define LOC_ERR_AOR_FULL (-EMLINK) /* the AOR's binding cap: 403 "Too many registrations" */
#define LOC_ERR_FULL     (-ENOSPC) /* the table's total cap: 503 */

struct loc_binding {
    str contact;     /* Contact URI text (without <>), as registered */
    str contact_key; /* comparison key; on input empty = contact; on output always set */
    str call_id;
    str instance; /* +sip.instance value ("<urn:uuid:...>"), empty = none */
    str path;     /* Path header values joined by ", ", empty = none */
    str user_agent;
    uint64_t expires_ms; /* absolute, caller's clock; on input <= now_ms means remove */
    uint64_t flow_id;    /* the net layer's flow (0 = none) */
    uint32_t cseq;
    uint32_t reg_id;                  /* RFC 5626 reg-id, 0 = none */
    uint16_t q;                       /* 0..1000 (q=0.5 → 500); larger is clamped to 1000 */
    uint8_t transport;                /* enum transport (base/config.h) it registered over */
    struct sockaddr_storage received; /* source address; ss_family AF_UNSPEC = unknown */
};

enum loc_event {
    LOC_ADDED,   /* a new binding */
    LOC_UPDATED, /* a binding refreshed or replaced (new expiry, flow, ...) */
    LOC_REMOVED, /* removed by a REGISTER (expires=0, "*") or an administrator */
    LOC_EXPIRED, /* removed by loc_expire (or found expired during an update) */
};
const char *loc_event_name(enum loc_event ev);

/*
 * The change hook: called after the shard lock is released, on the thread
 * that made the change, once per changed binding. aor and b are borrowed for
 * the call only. remaining = the AOR's bindings after the whole change (0 =
 * the user has no device any more). It may call back into the table.
 */
typedef void (*loc_hook_fn)(void *ctx, str aor, enum loc_event ev, const struct loc_binding *b,
                            size_t remaining);

struct loc_params {
    uint32_t max_per_aor; /* bindings per AOR (0 = 16) */
    size_t max_total;     /* bindings in the table (0 = 4,000,000) */
    loc_hook_fn hook;     /* may be NULL */
    void *hook_ctx;
};

struct loc_table;

/* A new empty table. 0 or -ENOMEM; *out set only on success. */
int loc_new(struct loc_table **out, const struct loc_params *p);
/* Frees the table and every binding. NULL is fine. No call may be running on it. */
void loc_free(struct loc_table *t);

/*
 * The normalised AOR (domain part lower-cased) into out (cap bytes, NUL
 * added). Returns its length, -EINVAL (empty, or '@' first or last),
 * -E2BIG (longer than LOC_AOR_MAX or cap - 1).
 */
ssize_t loc_aor_normalise(str aor, char *out, size_t cap);

/*
 * A comparison key for a SIP/SIPS URI (RFC 3261 §19.1.4, simplified; see
 * docs/registrar.md): scheme and host lower-cased, user info and port kept,
 * the parameters user, ttl, method, maddr, transport kept (lower-cased,
 * sorted), other parameters and headers dropped. Into out (cap bytes, NUL
 * added). Returns the length, -EINVAL (no scheme), -E2BIG.
 */
ssize_t loc_contact_key(str uri, char *out, size_t cap);

/*
 * The AOR's live bindings (expires_ms > now_ms), copied into a (arena-owned:
 * the array and every slice), sorted by q descending, equal q in the order
 * they were first registered. *out = NULL and *n = 0 when there are none.
 * 0, -EINVAL / -E2BIG (bad AOR), -ENOMEM (arena).
 */
int loc_lookup(struct loc_table *t, str aor, uint64_t now_ms, struct arena *a,
               struct loc_binding **out, size_t *n);

/*
 * Calls fn for each of the AOR's live bindings (expires_ms > now_ms), in the
 * order they were first registered (not sorted by q), with slices into the
 * stored record: valid only during the call. fn runs under the table's shard
 * lock, so it must be quick and must not call into the table. No allocation.
 * 0, -EINVAL / -E2BIG (bad AOR).
 */
typedef void (*loc_each_fn)(void *ctx, const struct loc_binding *b);
int loc_lookup_each(struct loc_table *t, str aor, uint64_t now_ms, loc_each_fn fn, void *ctx);

/*
 * Applies one REGISTER's Contact list to aor, all or nothing (RFC 3261 §10.3
 * step 7): each v[i] with expires_ms > now_ms adds or refreshes the binding
 * it matches, each with expires_ms <= now_ms removes it (absent is fine). A
 * matched binding with the same Call-ID and a higher CSeq than the request's
 * makes the whole call fail with LOC_ERR_ORDER (answer 500) and changes
 * nothing; an equal CSeq is taken as a retransmission and applied again
 * (REGISTER is answered without a transaction, docs/registrar.md). Later entries of v win over earlier ones with the same
 * key. If cur is not NULL the AOR's bindings after the change are copied into
 * a as by loc_lookup (for the 200 OK). Returns 0, LOC_ERR_ORDER,
 * LOC_ERR_AOR_FULL, LOC_ERR_FULL, -EINVAL / -E2BIG (bad AOR, empty contact,
 * field too long, n > LOC_BATCH_MAX), -ENOMEM (table unchanged), or -ENOBUFS
 * when only the copy into a failed (the change was made; *cur is NULL).
 */
int loc_update(struct loc_table *t, str aor, const struct loc_binding *v, size_t n, uint64_t now_ms,
               struct arena *a, struct loc_binding **cur, size_t *ncur);

/*
 * Removes every binding of aor ("Contact: *" with Expires: 0). With call_id
 * NULL (.s == NULL) unconditionally (administration); otherwise per RFC 3261
 * §10.3 step 6: a binding with the same Call-ID and a CSeq higher than cseq
 * makes the call fail with LOC_ERR_ORDER and removes nothing. Returns
 * the number removed (0 when none), LOC_ERR_ORDER, -EINVAL / -E2BIG,
 * -ENOMEM (the hook's copies).
 */
int loc_remove_all(struct loc_table *t, str aor, str call_id, uint32_t cseq, uint64_t now_ms);

struct loc_expired {
    str aor;
    struct loc_binding b;
    size_t remaining; /* the AOR's bindings left after the sweep */
};
/*
 * Removes bindings with expires_ms <= now_ms, at most max of them (0 = no
 * bound), shard by shard. When a is not NULL, what was removed is copied
 * into a (*out, *n); the hook also hears LOC_EXPIRED for each. Returns the
 * number removed, or -ENOMEM (arena; the bindings are removed anyway and the
 * list is cut short). Call it from a timer (every second or so).
 */
ssize_t loc_expire(struct loc_table *t, uint64_t now_ms, size_t max, struct arena *a,
                   struct loc_expired **out, size_t *n);

/* Bindings and AORs in the table (expired ones not yet swept included). */
size_t loc_count(struct loc_table *t, size_t *aors);
/* Bytes of memory the table's record pool holds (AOR and binding records; the hash
 * buckets are on the heap). */
size_t loc_pool_bytes(struct loc_table *t);

/*
 * Snapshot iteration, for persisting through the store: copies one shard at
 * a time (under its lock, briefly) and hands out its live bindings. A change
 * made during the iteration may or may not be seen; each binding is seen at
 * most once. loc_iter_next fills *aor and *b (borrowed until the next call
 * or loc_iter_free) and returns 1, or 0 at the end, or -ENOMEM.
 */
struct loc_iter;
int loc_iter_new(struct loc_iter **out, struct loc_table *t, uint64_t now_ms);
int loc_iter_next(struct loc_iter *it, str *aor, struct loc_binding *b);
void loc_iter_free(struct loc_iter *it);

/*
 * Puts back one persisted binding (at start-up): no Call-ID/CSeq check, an
 * existing binding with the same key is replaced, expired ones are skipped
 * (returns 0). The flow of a restored binding should be 0 (flows do not
 * survive a restart). The hook is not called. Same errors as loc_update.
 */
int loc_restore(struct loc_table *t, str aor, const struct loc_binding *b, uint64_t now_ms);

#endif
