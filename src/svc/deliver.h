/*
 * svc/deliver — a message from the server to a local user: a MESSAGE with a
 * given From (a system or app address, a group, a user), sent to every
 * registered device of the user in parallel (one client transaction each, as
 * the proxy forks), or — when the user has no device that takes it and the
 * caller asks — stored offline (with an optional expiry) and delivered when
 * the user next registers. Used by broadcasts, group messages and the apps'
 * notify API. docs/messaging.md.
 *
 * Callable from any thread: deliver_send copies the message and hands it to a
 * SIP worker; the completion runs there. rtcd's instance: home_deliver(home).
 * It does not archive: the caller decides.
 */
#ifndef RTCD_SVC_DELIVER_H
#define RTCD_SVC_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"
#include "core/service.h"

struct deliver;
struct store_thread;

/* At most this many extra headers per message; names ≤ 64, values ≤ 1024 bytes. */
#define DELIVER_MAX_EXTRA 6

/* What the server knows about the user's devices and offline mailbox. */
struct deliver_params {
    struct sip_server *srv;
    struct store_thread *st; /* NULL: nothing can be stored offline */
    /* The user's devices (same contract as core_services.lookup). */
    int (*lookup)(void *ctx, str user, str domain, uint64_t now, struct core_target *out,
                  size_t max);
    /* A message for user was stored offline: deliver it at the next registration. */
    void (*stored)(void *ctx, str user);
    void *ctx;
};

struct deliver_msg {
    str from;         /* From value without tag, e.g. "\"System\" <sip:system@example.com>" */
    str to_user;      /* a local user name (To: <sip:USER@first domain>) */
    str content_type; /* empty = text/plain */
    str body;         /* at most 1 MiB */
    const struct sip_hdr_add *extra; /* copied; at most DELIVER_MAX_EXTRA */
    size_t nextra;
    bool offline;       /* store it when no device took it */
    int64_t expires_ms; /* wall clock (ms since the epoch) after which it is not delivered
                         * from the offline store; 0 = never */
};

enum deliver_outcome {
    DELIVER_DELIVERED,  /* at least one device answered 2xx */
    DELIVER_STORED,     /* no device took it; stored offline (durable) */
    DELIVER_NOT_ONLINE, /* no device took it and offline was not asked */
    DELIVER_FAILED,     /* could not be sent nor stored: see err / status */
};

struct deliver_result {
    enum deliver_outcome outcome;
    unsigned devices; /* devices that answered 2xx */
    unsigned tried;   /* devices a MESSAGE was sent to */
    uint16_t status;  /* best final SIP status over the devices (0: none tried) */
    int err;          /* 0, or why it failed: -EDQUOT (mailbox full), -ETIMEDOUT (expired
                       * before it could be stored), -ENOSYS (no store), -EIO ... */
    int64_t offline_id; /* the stored message's id (DELIVER_STORED) */
};

/* Runs once, on a SIP worker's thread (on the store thread while rtcd stops). */
typedef void (*deliver_done_fn)(const struct deliver_result *res, void *arg);

/* A new delivery service. 0 or -ENOMEM. */
int deliver_new(struct deliver **out, const struct deliver_params *p);
/* Frees it once every worker stopped. NULL is fine. */
void deliver_free(struct deliver *d);
/* Called from the services' worker_start / worker_stop hooks (on that worker's thread):
 * deliveries are spread over the running workers. */
void deliver_worker_start(struct deliver *d, struct sip_worker *sw);
void deliver_worker_stop(struct deliver *d, struct sip_worker *sw);

/*
 * Sends m (copied at once; the caller keeps its strings) to every device of m->to_user
 * and calls done (may be NULL) with the outcome. Never blocks. 0, or -EINVAL (empty
 * from or user, too many or too long extra headers, body over 1 MiB), -ENOMEM,
 * -ESHUTDOWN (no worker running) — then done is not called.
 */
int deliver_send(struct deliver *d, const struct deliver_msg *m, deliver_done_fn done,
                 void *arg);

/* "delivered", "stored", "not-online", "failed". */
const char *deliver_outcome_name(enum deliver_outcome o);

#endif
