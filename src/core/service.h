/*
 * core/service — how the services (registrar, messaging, presence ...) plug
 * into the router without the core depending on them: the router hands a
 * request it has decided is local to one of these callbacks, which answers it
 * with core_respond or asks the proxy to forward it.
 */
#ifndef RTCD_CORE_SERVICE_H
#define RTCD_CORE_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/config.h"
#include "sip/msg.h"

struct sip_worker;
struct sip_server;
struct txn;
struct net_rx;

/* A request being handled: borrowed for the callback's duration (st may be kept with txn_ref). */
struct core_req {
    struct sip_worker *sw;
    struct txn *st;
    const struct sip_msg *m;
    const struct net_rx *rx;
    str user;      /* Request-URI user (unescaped form is the service's business) */
    str domain;    /* Request-URI host, one of ours */
    str auth_user; /* the authenticated user, empty when not authenticated */
    uint64_t now;  /* ms, loop clock */
};

/* One place a request may be forwarded to. */
struct core_target {
    char uri[512];        /* Request-URI for the branch (the binding's contact) */
    uint64_t flow_id;     /* the registered flow to reach it on, 0 = by address */
    enum transport transport;
    struct sockaddr_storage addr; /* the flow's peer / where the contact was registered from */
    bool has_addr;
    char path[512];       /* Route set from the binding's Path (RFC 3327), empty = none */
    uint16_t q;           /* 0..1000 */
};

struct core_services {
    void *ctx;
    /* REGISTER for one of our domains, authenticated as configured. */
    void (*register_req)(void *ctx, struct core_req *r);
    /* Whether a local user exists (for 404). */
    bool (*user_exists)(void *ctx, str user);
    /* The targets of a local user: count (0 = no device), at most max. */
    int (*lookup)(void *ctx, str user, str domain, uint64_t now, struct core_target *out,
                  size_t max);
    /* A MESSAGE for a user with no device: stored (0: the core answers 202), -EDQUOT (480
     * mailbox full), another negative errno (500). May answer asynchronously itself by
     * returning 1 (it then owns the answer through txn_ref on r->st). */
    int (*offline)(void *ctx, struct core_req *r);
    /* The HA1 for user in the given realm and algorithm (0 = MD5, 1 = SHA-256): 0, or
     * -ENOENT (unknown or disabled user). */
    int (*credentials)(void *ctx, str user, int sha256, char *ha1_out, size_t cap);
    /* A flow closed: the registrar drops bindings that use it. */
    void (*flow_closed)(void *ctx, uint64_t flow_id);
    /* A REGISTER was answered 2xx (after register_req): e.g. deliver offline messages. */
    void (*registered)(void *ctx, struct core_req *r);
    /* A MESSAGE for a local user is being routed (archive it). */
    void (*message)(void *ctx, struct core_req *r);
    /* An INVITE for a local user with its n devices (maybe 0), before it is forked: call
     * features (forwarding, do-not-disturb). 1 = handled (answered or forwarded), 0 = go
     * on as usual. */
    int (*call_route)(void *ctx, struct core_req *r, const struct core_target *t, int n);
    /* A request for a local name that is no user (a group ...): true when handled. */
    bool (*address)(void *ctx, struct core_req *r);
    /* Once a second on every worker. */
    void (*tick)(void *ctx, struct sip_worker *sw, uint64_t now);
    /* A worker starts / stops (on its thread). */
    void (*worker_start)(void *ctx, struct sip_worker *sw);
    void (*worker_stop)(void *ctx, struct sip_worker *sw);
};

/* ---- requests that start here (offline delivery, broadcasts, notifications) ---- */

struct core_uac_msg {
    enum sip_method method;
    str from;      /* From value without tag, e.g. "<sip:alice@example.com>" */
    str to;        /* To value */
    const struct sip_hdr_add *extra;
    size_t nextra;
    str content_type;
    str body;
};
/* The outcome: the best final status over every target (a 2xx when any accepted). */
typedef void (*core_uac_done_fn)(struct sip_worker *sw, uint16_t status, void *arg);
/*
 * Sends msg to every target in parallel from this worker (new Call-ID, From tag,
 * branches). done runs once on this worker with the best final status (408 when none
 * answered). 0, or a negative errno (done is not called then).
 */
int core_uac_send(struct sip_worker *sw, const struct core_target *targets, size_t n,
                  const struct core_uac_msg *msg, core_uac_done_fn done, void *arg);
struct worker *core_worker(const struct sip_worker *sw);
/* The SIP context of worker w (on w's thread), or NULL while it is not running. */
struct sip_worker *core_sip_worker(struct sip_server *s, struct worker *w);

/* Installs the services (before workers start). */
struct sip_server;
void sip_server_set_services(struct sip_server *s, const struct core_services *svc);

/*
 * Answers r's request with status (reason empty = the standard phrase), extra
 * headers, and a body. A To tag is added to responses above 100 when the request had
 * none. A final status of 300 or more ends the transaction at once (a stateless
 * answer: nothing kept for retransmissions); r->st must not be used afterwards unless
 * referenced. 0 or a negative errno.
 */
int core_respond(struct core_req *r, uint16_t status, str reason, const struct sip_hdr_add *extra,
                 size_t nextra, str content_type, str body);

/* Forwards r's request to the targets (parallel forking). 0, or a negative errno after
 * which the caller answers (e.g. 480). */
int core_forward(struct core_req *r, const struct core_target *targets, size_t n);

/* ---- call forwarding (docs/call-features.md) ---- */

/* How many times one call may be forwarded (History-Info entries beyond the first). */
#define CORE_MAX_FORWARD_HOPS 5

/* What the proxy does when an INVITE's branches do not answer. */
struct core_fwd_opts {
    const char *busy;      /* every branch busy (486/600): retarget here (NULL/"" = no) */
    const char *no_answer; /* no 2xx after no_answer_ms: CANCEL the branches, retarget */
    uint32_t no_answer_ms;
};
/* core_forward with call-forwarding options (INVITE only; copied). Same results. */
int core_forward_ex(struct core_req *r, const struct core_target *targets, size_t n,
                    const struct core_fwd_opts *o);
/*
 * Forwards r's request to uri instead of its Request-URI user, adding History-Info
 * (RFC 7044) with the RFC 4458 cause (302 unconditional, 486 busy, 408 no answer, 404
 * not registered). A URI of our domains spirals back through the router (its user's own
 * rules apply); others are reached by address. 0, or a negative errno after which the
 * caller answers: -ELOOP (forwarded CORE_MAX_FORWARD_HOPS times already), -EINVAL,
 * -EHOSTUNREACH.
 */
int core_retarget(struct core_req *r, str uri, uint16_t cause);

/*
 * The domain an address of ours stands for: a served domain as itself, one of our IP
 * addresses as the first served domain (so "alice@127.0.0.1" and "alice@localhost" are
 * one user). Returns false when host is not ours.
 */
bool core_canonical_domain(struct sip_worker *sw, str host, str *out);

/* Whether a SIP URI names this server itself (one of its domains or addresses, and
 * its port when the URI has one). */
bool core_is_local_uri(struct sip_worker *sw, str uri);

/* The first served domain (the realm). */
str core_realm(const struct sip_server *s);
struct sip_server *core_server(const struct sip_worker *sw);

#endif
