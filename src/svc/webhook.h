/*
 * svc/webhook — outgoing HTTP POSTs to bots (libcurl's multi interface driven
 * by a worker's libuv loop: nothing blocks the loop). Each POST carries
 * X-Rtcd-Signature: sha256=<hex HMAC-SHA256(secret, body)>, has a timeout per
 * attempt, and is retried with exponential back-off (and jitter) when the
 * connection fails, the attempt times out, or the answer is 429 or 5xx.
 * The answer's body is capped. One struct webhook per loop; not thread-safe.
 */
#ifndef RTCD_SVC_WEBHOOK_H
#define RTCD_SVC_WEBHOOK_H

#include <stdint.h>
#include <uv.h>

#include "base/str.h"

struct webhook;

struct webhook_opts {
    uint32_t timeout_ms;   /* per attempt (0 = 5000) */
    uint32_t retries;      /* further attempts after the first (0 = none) */
    uint32_t backoff_ms;   /* first wait before a retry, doubled each time (0 = 500), max 30 s */
    uint32_t max_response; /* bytes of answer body kept (0 = 64 KiB); more fails with -EMSGSIZE */
    uint32_t max_pending;  /* POSTs in flight or waiting to retry (0 = 1024) */
};

/*
 * The outcome of a POST, on the loop's thread: rc 0 with the final HTTP status (any
 * status the server answered, including 4xx after which there is no retry), or a
 * negative errno when every attempt failed (-ETIMEDOUT, -ECONNREFUSED, -EMSGSIZE,
 * -EIO) or the webhook was freed (-ECANCELED). ctype/body are borrowed during the call.
 * attempts says how many were made.
 */
typedef void (*webhook_done_fn)(void *arg, int rc, long status, str ctype, str body,
                                unsigned attempts);

/* Once per process before any webhook (curl_global_init). 0 or -EIO. */
int webhook_global_init(void);
void webhook_global_cleanup(void);

/* A new client on loop (call on the loop's thread). 0, -ENOMEM, -EIO. */
int webhook_new(struct webhook **out, uv_loop_t *loop, const struct webhook_opts *o);
/*
 * Ends every POST (done with -ECANCELED), closes the handles; the memory goes once the
 * loop has run the close callbacks. NULL is fine. On the loop's thread.
 */
void webhook_free(struct webhook *wh);
/*
 * POSTs body (Content-Type: application/json) to url, signed with secret. url, body
 * and secret are copied. 0 (done will run exactly once, later), -EINVAL (url not
 * http/https), -EBUSY (max_pending reached), -ENOMEM.
 */
int webhook_post(struct webhook *wh, const char *url, str body, str secret, webhook_done_fn done,
                 void *arg);
/* The signature header value for body: "sha256=" + 64 hex (out 72 bytes). 0 or -ENOMEM. */
int webhook_sign(str secret, str body, char out[72]);

#endif
