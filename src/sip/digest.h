/*
 * digest — HTTP digest authentication for SIP (RFC 7616, RFC 8760; RFC 2617
 * and RFC 2069 credentials accepted), qop=auth, algorithms MD5 and SHA-256.
 *
 * Nonces need no server state: nonce = base64url(ts || random || tag), where
 * tag = HMAC-SHA256(secret, ts || random || realm) truncated to 128 bits
 * (docs/auth.md). Nonce-counts are checked against a bounded, sharded table
 * so that a captured request cannot be replayed. Every comparison with a
 * secret-derived value is constant-time, and digest_verify_unknown lets an
 * unknown user cost exactly what a known one with a wrong password costs.
 *
 * Everything here takes plain slices: the caller (the router) parses the
 * Authorization header (digest_creds_parse helps) and looks up the HA1.
 * Nothing here blocks or does I/O; a digest_ctx is safe to share between
 * worker threads (the replay table locks a shard per call, never across I/O).
 */
#ifndef RTCD_SIP_DIGEST_H
#define RTCD_SIP_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/str.h"

enum digest_alg {
    DIGEST_MD5,
    DIGEST_SHA256,
};

/* Room for the longest lowercase hex digest (SHA-256: 64) and its NUL. */
#define DIGEST_HEX_MAX 65
/* Room for a nonce made by digest_nonce_make and its NUL (43 chars). */
#define DIGEST_NONCE_MAX 44

/* Hex length of the algorithm's digest: 32 (MD5) or 64 (SHA-256). */
size_t digest_hex_len(enum digest_alg alg);
/* "MD5" or "SHA-256", as written in the algorithm parameter. */
const char *digest_alg_name(enum digest_alg alg);
/*
 * The algorithm parameter's value (case-insensitive) → alg. An empty slice
 * (parameter absent) is MD5 (RFC 7616 §3.3). "-sess" variants and anything
 * else give -ENOTSUP.
 */
int digest_alg_parse(str name, enum digest_alg *out);

/*
 * HA1 = H(user ":" realm ":" password) as lowercase hex into out_hex (size
 * DIGEST_HEX_MAX, NUL-terminated). For the store and rtcctl. 0, or -ENOMEM /
 * -EIO when OpenSSL fails.
 */
int digest_ha1(enum digest_alg alg, str user, str realm, str password,
               char out_hex[DIGEST_HEX_MAX]);

/*
 * The request-digest (RFC 7616 §3.4.1) into out_hex: with qop "auth"
 * H(HA1:nonce:nc:cnonce:qop:H(method:uri)); with an empty qop the RFC 2069
 * form H(HA1:nonce:H(method:uri)). ha1_hex is used as given (its text is
 * hashed, as the RFC says). 0, -EINVAL (qop other than "auth" or empty),
 * -ENOMEM / -EIO.
 */
int digest_response(enum digest_alg alg, str ha1_hex, str nonce, str nc, str cnonce, str qop,
                    str method, str uri, char out_hex[DIGEST_HEX_MAX]);

/*
 * Parameters of one Authorization / Proxy-Authorization header, as slices
 * without their quotes (borrowed from the message). Absent = empty.
 */
struct digest_creds {
    str username, realm, nonce, uri, response, qop, nc, cnonce, algorithm, opaque;
};

/*
 * Parses a header value `Digest username="..", realm="..", ...` into *out
 * (slices into value; quoted-pair escapes are left in place, which only
 * matters for values that contain '"' or '\'). Unknown parameters are
 * skipped; a repeated known parameter is an error. 0, -EINVAL (not Digest,
 * malformed, repeated parameter), -E2BIG (more than 32 parameters).
 */
int digest_creds_parse(str value, struct digest_creds *out);

struct digest_params {
    uint32_t nonce_lifetime_s; /* auth.nonce_lifetime; 0 = 300 */
    size_t replay_entries;     /* nonces whose nc is tracked; 0 = 65536 (about 1.6 MB) */
    bool require_qop;          /* refuse RFC 2069 credentials (no qop, no nc) */
};

struct digest_ctx;

/*
 * A new context: the nonce secret (copied; at least 16 bytes, the lead
 * derives it from server.secret), the lifetime and the replay table. 0,
 * -EINVAL (short secret), -ENOMEM. *out set only on success.
 */
int digest_new(struct digest_ctx **out, const void *secret, size_t secret_len,
               const struct digest_params *p);
/* Frees the context. NULL is fine. No call may be running on it. */
void digest_free(struct digest_ctx *d);

/*
 * A new nonce for realm at time now_ms (milliseconds; use one clock for make
 * and check — the wall clock lets nonces survive a restart and work across
 * nodes sharing the secret) into out (NUL-terminated, 43 characters of
 * base64url). 0, -ENOMEM or -EIO (OpenSSL). Thread-safe.
 */
int digest_nonce_make(struct digest_ctx *d, str realm, uint64_t now_ms, char out[DIGEST_NONCE_MAX]);

enum digest_nonce_state {
    DIGEST_NONCE_VALID,
    DIGEST_NONCE_STALE,   /* ours, but older than the lifetime: challenge with stale=true */
    DIGEST_NONCE_INVALID, /* not made by us for this realm (or from the future) */
};
/* Checks a nonce's tag (constant-time) and age. Pure; thread-safe. */
enum digest_nonce_state digest_nonce_check(const struct digest_ctx *d, str nonce, str realm,
                                           uint64_t now_ms);

enum digest_result {
    DIGEST_OK,      /* authenticated; the nc was recorded */
    DIGEST_STALE,   /* right response, but the nonce expired, was evicted from the replay
                       table, or its nc was already used: answer a new challenge with
                       stale=true (not a failure for throttling) */
    DIGEST_FAIL,    /* wrong response (wrong password, or unknown user): a failure */
    DIGEST_INVALID, /* malformed or not ours: missing parameter, bad nc, realm mismatch,
                       unsupported algorithm or qop, forged nonce: answer a fresh
                       challenge (400 for a message that cannot be parsed at all) */
};
const char *digest_result_name(enum digest_result r);

/*
 * Verifies credentials c of a request with this method against the user's
 * stored HA1 for c's algorithm (lowercase or uppercase hex of the right
 * length). realm is the realm we challenge with; c->realm must equal it. The
 * caller checks c->uri against the Request-URI (RFC 7616 §3.4.6) and
 * c->username against the user it looked up. The response is compared in
 * constant time; nc is recorded only when the response is right, so a forger
 * cannot burn a user's nonce. Thread-safe; takes one shard lock briefly.
 */
enum digest_result digest_verify(struct digest_ctx *d, const struct digest_creds *c, str method,
                                 str realm, str ha1_hex, uint64_t now_ms);

/*
 * The same for a username the store does not know: it runs exactly the work
 * of digest_verify with a wrong password (against a dummy HA1 derived from
 * the secret) and answers DIGEST_FAIL, or DIGEST_INVALID for malformed
 * credentials just as digest_verify would. Use it so that unknown and known
 * users get the same answers and timing (no user enumeration).
 */
enum digest_result digest_verify_unknown(struct digest_ctx *d, const struct digest_creds *c,
                                         str method, str realm, uint64_t now_ms);

/*
 * Appends one challenge header value to out:
 *   Digest realm="R", nonce="N", qop="auth", algorithm=SHA-256[, stale=true]
 * Offer SHA-256 first, then MD5, with the same nonce (RFC 8760 §2.4), as two
 * WWW-Authenticate (401) or Proxy-Authenticate (407) header fields. '"' and
 * '\' in the realm are escaped. 0, -ENOBUFS, -ENOMEM.
 */
int digest_challenge(struct buf *out, enum digest_alg alg, str realm, str nonce, bool stale);

#endif
