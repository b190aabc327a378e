/*
 * core_int.h — what the files of src/core share: the server, the per-worker
 * context, the request being routed. Not for callers outside src/core and the
 * services that plug into it (src/svc through struct core_services).
 */
#ifndef RTCD_CORE_INT_H
#define RTCD_CORE_INT_H

#include <stdatomic.h>
#include <uv.h>

#include "base/arena.h"
#include "base/buf.h"
#include "core/core.h"
#include "core/service.h"
#include "net/steer.h"
#include "sip/msg.h"
#include "sip/txn.h"

#define CORE_MAX_DOMAINS 16
#define CORE_MAX_TARGETS 16

struct sip_server {
    const struct config *cfg;
    bool stateless_register; /* sip.stateless_register = on */
    bool challenge_all;      /* auth.challenge = all */
    unsigned nworkers;
    struct net *net;
    struct sip_limits lim;
    struct txn_timers timers;
    struct sip_server_deps deps;
    struct core_services svc;
    str domains[CORE_MAX_DOMAINS];
    size_t ndomains;
    char *domain_copy;
    uint8_t hash_key[16]; /* Call-ID → worker */
    struct digest_ctx *digest;
    struct throttle *throttle;
    struct sip_worker **workers;
    _Atomic int start_error;
    struct {
        _Atomic uint64_t requests, responses, parse_errors, handovers, registrations,
            auth_failures;
    } c;
};

struct sip_worker {
    struct sip_server *srv;
    struct worker *w;
    struct net_worker *nw;
    struct txn_table *tt;
    uv_timer_t tick;
    uv_timer_t second; /* services' once-a-second tick */
    int closing;
    struct arena *arena;   /* per message: reset after each */
    struct buf out;        /* per message: the bytes being built */
    struct buf patched;    /* per message: a request with its Via patched */
    struct sip_hdr *hdrs;  /* per message: the header index */
    struct sip_hdr *hdrs2;
    uint64_t branch_seq;
    char branch_salt[9];
    /* with several workers, this one's net/steer.h tag ("" with one): our branches and
     * UDP Record-Route entries carry it so that the kernel gives what comes back here */
    char steer_tag[STEER_TAG_LEN + 1];
};

/* Milliseconds on the worker's loop clock. */
uint64_t core__now(struct sip_worker *sw);
/* Re-arms the worker's transaction timer after the table changed. */
void core__rearm(struct sip_worker *sw);
/* Whether host (a URI or Via host) names this server: a served domain or a listening address. */
bool core__is_local_host(struct sip_server *s, str host, uint16_t port);
bool core__is_our_domain(struct sip_server *s, str host);
/* Sends a stateless response to a request that has no transaction. */
void core__reply_stateless(struct sip_worker *sw, const struct sip_msg *m,
                           const struct net_rx *rx, uint16_t status, str reason);

/* router.c: the transaction user's request callback and the ACK / stray paths. */
void core__route_request(struct sip_worker *sw, struct txn *st, const struct sip_msg *m,
                         const struct net_rx *rx);
void core__route_ack(struct sip_worker *sw, const struct sip_msg *m, const struct net_rx *rx);
void core__stray_response(struct sip_worker *sw, const struct sip_msg *m,
                          const struct net_rx *rx);

/*
 * What forwarding does to a request's Route set: the router consumes every leading
 * Route that names us (both entries of our double Record-Route), remembering the flow
 * token of the one that faces the next hop.
 */
struct fwd_plan {
    bool record_route;
    bool rewrite_routes; /* replace the Route set with routes (empty: remove it) */
    str routes;          /* the Route values left after ours, comma-joined */
    str next_route;      /* the URI of the first of them (the next hop), empty = none */
    bool has_flow;       /* a flow token of ours names where the next hop is */
    struct net_dest flow;
};
/* Fills p from m's Route set. 0, or -EPROTO (a Route that does not parse). */
int core__route_plan(struct sip_worker *sw, const struct sip_msg *m, const struct net_rx *rx,
                     struct fwd_plan *p);
/* The 32-bit loop-detection hash of a request (RFC 3261 §16.6 step 8). */
uint32_t core__loop_hash(struct sip_server *s, const struct sip_msg *m);
/* Parses the ";fl=" flow token among route URI parameters. 0, -ENOENT, -EINVAL. */
int core__flow_from_route(str params, struct net_dest *d);

/* proxy.c */
int proxy__forward(struct sip_worker *sw, struct txn *st, const struct core_target *targets,
                   size_t n, const struct fwd_plan *plan);
void proxy__response(struct sip_worker *sw, struct txn *ct, const struct sip_msg *m,
                     const struct net_rx *rx);
void proxy__timeout(struct sip_worker *sw, struct txn *ct, bool transport_error);
void proxy__client_terminated(struct sip_worker *sw, struct txn *ct);
void proxy__server_terminated(struct sip_worker *sw, struct txn *st);
void proxy__cancel(struct sip_worker *sw, struct txn *invite_st);
/* Sends response m upstream without its top Via, to where Via v says (§18.2.2). */
int proxy__strip_and_send_upstream(struct sip_worker *sw, const struct sip_msg *m,
                                   const struct sip_via *v);
/*
 * What a client transaction's user data points to starts with one of these, so the
 * response callbacks know whose transaction it is.
 */
enum cu_kind {
    CU_BRANCH, /* a proxy branch (proxy.c) */
    CU_CANCEL, /* a CANCEL the proxy sent (its answer is not needed) */
    CU_UAC,    /* a request the server itself sent (uac.c) */
};

/* proxy.c, shared with uac.c */
int proxy__target_dest(struct sip_worker *sw, const struct core_target *t, struct net_dest *d);
int proxy__via_value(struct sip_worker *sw, const struct net_dest *d, const char *branch,
                     char *out, size_t cap);
/* uac.c: true when the client transaction was one of the UAC's (and was handled). */
bool uac__response(struct sip_worker *sw, struct txn *ct, const struct sip_msg *m);
bool uac__timeout(struct sip_worker *sw, struct txn *ct, bool transport_error);
bool uac__terminated(struct sip_worker *sw, struct txn *ct);
/* Forwards a request outside any transaction (ACK for 2xx) to the next hop. */
int proxy__forward_stateless(struct sip_worker *sw, const struct sip_msg *m,
                             const struct core_target *t, const struct fwd_plan *plan);
/* Where the next hop of a URI is (IP literal hosts only for now). 0 or -EHOSTUNREACH. */
int proxy__uri_dest(struct sip_worker *sw, str uri, struct net_dest *d);

/*
 * The worker whose salt a branch of ours carries ("z9hG4bKr<hash>.<salt><seq>" from the
 * proxy, "z9hG4bKu<salt><seq>" from our own requests), or -1: nobody outside can know
 * the salts, so a match also says the request passed here.
 */
int core__branch_worker(struct sip_server *s, str branch);

#endif
