/*
 * core — the SIP server: transports (net), transactions (sip/txn) and the
 * router on every worker. A message is parsed where it arrives, handed to the
 * worker that owns its Call-ID (shared-nothing: a Call-ID's transactions and
 * proxy state live on one worker), and there goes through the transaction
 * layer to the router's pipeline (router.c) or the proxy (proxy.c).
 */
#ifndef RTCD_CORE_CORE_H
#define RTCD_CORE_CORE_H

#include <stdint.h>

#include "base/config.h"
#include "net/net.h"
#include "net/worker.h"

struct sip_server;
struct store;
struct store_creds;
struct tls_server;

struct sip_server_deps {
    struct store *store;        /* durable store (offline messages, archive); may be NULL */
    struct store_creds *creds;  /* credential table; NULL = every user unknown */
    struct tls_server *tls;     /* TLS contexts (net/tls.h); NULL = no TLS */
};

/* Counters for logs, `rtcctl stats` and /metrics (relaxed reads). */
struct sip_server_stats {
    uint64_t requests, responses, parse_errors, handovers;
    uint64_t txn_live, txn_server, txn_client, retransmissions_absorbed, timeouts;
    uint64_t registrations, auth_failures;
};

/*
 * A new SIP server for cfg (kept by pointer: it must outlive the server) on
 * nworkers workers. 0 or a negative errno with err set.
 */
int sip_server_new(struct sip_server **out, const struct config *cfg, unsigned nworkers,
                   const struct sip_server_deps *deps, char *err, size_t errlen);
/* Frees the server; every worker must have stopped. NULL is fine. */
void sip_server_free(struct sip_server *s);
/* Worker hooks: open sockets and tables on start, close on stop (on the worker's thread). */
void sip_server_worker_start(struct worker *w, void *server);
void sip_server_worker_stop(struct worker *w, void *server);
/* The first error a worker met while starting (0 = none). */
int sip_server_start_error(const struct sip_server *s);
void sip_server_stats(const struct sip_server *s, struct sip_server_stats *out);
/* The transports (borrowed for the server's life): other stream protocols add listeners
 * to it (HTTP and SIP over WebSocket) so that SIP reaches their flows. */
struct net *sip_server_net(struct sip_server *s);

#endif
