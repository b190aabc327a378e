/*
 * net — the transports: UDP (one SO_REUSEPORT socket per worker, batched
 * receive) and TCP and TLS (one SO_REUSEPORT listener per worker; a
 * connection, a "flow", stays on the worker that accepted or opened it; TLS
 * is net/tls.h under the flow). Bytes in, framed
 * messages up through a callback; bytes out to an address or onto a flow.
 *
 * net knows nothing of SIP beyond RFC 5626 keep-alives: stream framing is a
 * callback given by the layer above.
 */
#ifndef RTCD_NET_NET_H
#define RTCD_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "base/config.h"
#include "net/worker.h"

struct net;
struct net_worker;
struct tls_server;

/* A received message, borrowed for the duration of the recv callback. */
struct net_rx {
    const char *data;
    size_t len;
    enum transport transport;
    struct sockaddr_storage src; /* the peer (the received= / rport= of RFC 3581) */
    socklen_t srclen;
    const struct sockaddr_storage *local; /* the listening (or connected) local address */
    uint64_t flow_id;                     /* stream transports: the connection; UDP: 0 */
};

/* Where to send. With flow_id set the message goes on that connection (or fails). */
struct net_dest {
    enum transport transport;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t flow_id;
};

struct net_handlers {
    /* A message arrived (on a worker's thread). */
    void (*recv)(void *ctx, struct net_worker *nw, const struct net_rx *rx);
    /*
     * Stream framing: the length of the first complete message in data[0..len),
     * 0 when more bytes are needed, or a negative errno when the stream cannot
     * be framed (the connection is closed). Leading CRLF keep-alives never reach
     * it: net answers and skips them.
     */
    ssize_t (*frame)(void *ctx, const char *data, size_t len);
    /* A flow closed (on its owner's thread): bindings that use it can be dropped. */
    void (*flow_closed)(void *ctx, struct net_worker *nw, uint64_t flow_id);
    void *ctx;
};

struct net_limits {
    size_t max_message;            /* bytes one framed message may take */
    uint32_t max_connections;      /* all stream connections, every worker */
    uint32_t max_connections_per_ip;
    uint32_t idle_timeout_s;       /* close a flow idle this long (unless pinned) */
    size_t max_write_queue;        /* bytes queued on a flow before it is closed as too slow */
    int udp_rcvbuf;                /* SO_RCVBUF for UDP sockets (0 = system default) */
};

/*
 * Counters readable from any thread (relaxed atomics): for logs, stats and
 * /metrics.
 */
struct net_stats {
    uint64_t udp_rx, udp_tx, tcp_rx, tcp_tx;
    uint64_t tcp_accepted, tcp_refused, tcp_closed, tcp_open;
    uint64_t keepalives, frame_errors, send_errors;
};

/*
 * A new transport layer for the given listening addresses (UDP, TCP and TLS
 * are opened; other transports are for later layers and are skipped with a
 * log line). Nothing is opened until workers call net_worker_start. 0 or -ENOMEM.
 */
int net_new(struct net **out, const struct listen_list *listen, const struct net_limits *lim,
            const struct net_handlers *h, unsigned nworkers);
/* Frees the shared part; every net_worker must have stopped. NULL is fine. */
void net_free(struct net *n);
/*
 * Gives net the TLS contexts (borrowed: they must outlive n) for its tls:
 * listeners and for sends with transport TLS. Call before the workers start;
 * without it a tls: listener fails to open (-ENOPROTOOPT) and a TLS send gets
 * -EAFNOSUPPORT. The framing and recv callbacks see plaintext either way;
 * rx->transport says TRANSPORT_TLS.
 */
void net_set_tls(struct net *n, struct tls_server *tls);

/*
 * On worker w's thread (its on_start hook): opens this worker's sockets.
 * Returns 0 or a negative errno (the first socket that failed is logged with
 * its address); *out set only on success.
 */
int net_worker_start(struct net *n, struct worker *w, struct net_worker **out);
/* On the worker's thread (on_stop): closes its sockets and flows; freed when the closes end. */
void net_worker_stop(struct net_worker *nw);

/*
 * Sends one message (copied). On a flow owned by another worker the bytes are
 * handed to that worker. UDP goes out of this worker's socket for the
 * destination's family; TCP without a flow reuses a connection to the address
 * or opens one (TLS likewise: a TLS connection is never reused for TCP nor the
 * reverse). Returns 0 when sent or queued, -ENOTCONN when the flow is gone,
 * -EAFNOSUPPORT when no socket of that transport/family is open, -ENOBUFS when
 * too big or queued too much, another negative errno on failure. Never blocks.
 */
int net_send(struct net_worker *nw, const struct net_dest *d, const void *data, size_t len);

struct worker *net_worker_worker(struct net_worker *nw);
/* The worker that owns a flow (from its id), or NULL for 0 / unknown. */
unsigned net_flow_owner(uint64_t flow_id);
/* Whether a flow is open, from any thread (it may close an instant later). */
bool net_flow_exists(struct net *n, uint64_t flow_id);
/* Whether a flow is open (on its owner only: call on the owner's thread). */
bool net_flow_alive(struct net_worker *nw, uint64_t flow_id);
/*
 * Pins a flow: it is not closed for idleness (a registration uses it; RFC 5626
 * keep-alives hold it). Owner's thread only. pinned=false undoes one pin.
 */
void net_flow_pin(struct net_worker *nw, uint64_t flow_id, bool pinned);
/* ---- other stream protocols on the same flows (HTTP, WebSocket) ---- */

/* What a stream protocol learns about a new connection. */
struct net_flow_info {
    enum transport transport; /* of the listener: TCP, or TLS when the flow is secured */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    struct sockaddr_storage local;
};

/*
 * A listener kind whose flows belong to another protocol than SIP (the HTTP
 * server): net accepts, reads, writes and closes; these hooks see the bytes.
 * Every hook runs on the flow's owner thread.
 */
struct net_stream_ops {
    /* A connection was accepted. 0 with *flow_ctx set, or a negative errno (closed at once). */
    int (*open)(void *ctx, struct net_worker *nw, uint64_t flow_id, const struct net_flow_info *fi,
                void **flow_ctx);
    /*
     * data[0..len) is everything received and not yet consumed. Returns how
     * many bytes were consumed (0 = wait for more, or for net_flow_resume), or
     * a negative errno: the flow is closed.
     */
    ssize_t (*data)(void *flow_ctx, const char *data, size_t len);
    /* net_send on this flow (a SIP message from core): frame and write it. 0 or -errno. */
    int (*send)(void *flow_ctx, const void *data, size_t len);
    /* The flow is gone (called from the close callback, never inside data): free flow_ctx. */
    void (*close)(void *flow_ctx);
    size_t max_buffer; /* unconsumed bytes a flow may hold before it is closed */
};

/*
 * Adds stream listeners of another kind (before any worker starts). Their
 * flows count against the same connection limits, are not swept for
 * idleness (the protocol times them out itself) and use ops instead of the
 * framing callback; SIP reaches them through net_send with their flow id.
 * 0, -ENOSPC (too many listeners), -EINVAL.
 */
int net_add_stream_listeners(struct net *n, const struct listen_list *l,
                             const struct net_stream_ops *ops, void *ctx);
/* Writes raw bytes on a flow (owner's thread). 0, -ENOTCONN, -ENOBUFS (closed as too slow). */
int net_flow_write(struct net_worker *nw, uint64_t flow_id, const void *data, size_t len);
/*
 * Closes a flow (owner's thread). graceful: after what was written has gone
 * out, the write side is shut down and input is discarded until the peer
 * closes (at most 2 s) — so that a final error response is not lost to a
 * reset. Hooks are told later, from the close callback.
 */
void net_flow_close(struct net_worker *nw, uint64_t flow_id, bool graceful, const char *why);
/* Offers a flow's buffered bytes to its data hook again (after it returned 0 to wait). */
void net_flow_resume(struct net_worker *nw, uint64_t flow_id);
/* Hands a message received by a stream protocol (SIP over WebSocket) to the recv handler. */
void net_deliver(struct net_worker *nw, const struct net_rx *rx);
/* Whether a flow is pinned (registered): owner's thread. */
bool net_flow_pinned(struct net_worker *nw, uint64_t flow_id);

/*
 * Bytes written to a flow that its peer has not read yet (queued in net, before the
 * socket), and the limit past which net closes the flow as too slow. Owner's thread.
 */
size_t net_flow_backlog(struct net_worker *nw, uint64_t flow_id);
size_t net_write_queue_limit(const struct net_worker *nw);
/* Reads the counters into *out. */
void net_get_stats(const struct net *n, struct net_stats *out);
/* The address a listener of this transport and family is bound to (for Via / Record-Route). */
const struct sockaddr_storage *net_local_addr(const struct net *n, enum transport t, int family);
/*
 * The address a peer reaches us at over t: the listener's of the peer's family, or, when
 * that listener is a wildcard (0.0.0.0, ::), the source address the kernel routes from
 * toward the peer, with the listener's port (looked up with a connect()ed UDP socket,
 * remembered per thread for a minute). For Via and Record-Route. 0 or a negative errno.
 */
int net_local_addr_toward(const struct net *n, enum transport t,
                          const struct sockaddr_storage *peer, struct sockaddr_storage *out);

/* "1.2.3.4:5060" or "[::1]:5060" into buf (size >= 64). Returns buf. */
const char *net_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len);
/* Address and port equality. */
bool net_addr_eq(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* Whether ss is the any-address of its family (0.0.0.0 or ::): a wildcard listener. */
bool net_addr_is_wildcard(const struct sockaddr_storage *ss);
uint16_t net_addr_port(const struct sockaddr_storage *ss);
/* The length of ss's socket address by its family (IPv4 or IPv6), for sendto and the like. */
socklen_t net_addr_len(const struct sockaddr_storage *ss);

#endif
