/*
 * sip/txn — SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state).
 *
 * Socket-free: a table belongs to one worker (every transaction of a Call-ID
 * lives on the worker its hash names) and is driven by three calls — a
 * received message (txn_table_recv), a response or request from the
 * transaction user (txn_respond, txn_client_new), and the clock
 * (txn_table_tick with the time now, txn_table_next for when to call it
 * again). Bytes leave through the user's send callback. Unit tests drive the
 * whole state machine, timers and retransmissions included, with a fake clock.
 */
#ifndef RTCD_SIP_TXN_H
#define RTCD_SIP_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"
#include "sip/msg.h"

struct txn;
struct txn_table;

enum txn_state {
    TXN_TRYING,     /* non-INVITE, before a provisional */
    TXN_CALLING,    /* client INVITE, before a provisional */
    TXN_PROCEEDING, /* a provisional sent / received */
    TXN_COMPLETED,  /* a final (non-2xx for INVITE) sent / received; absorbing retransmissions */
    TXN_CONFIRMED,  /* server INVITE: ACK for the non-2xx final received */
    TXN_ACCEPTED,   /* INVITE: a 2xx sent / received (RFC 6026) */
    TXN_TERMINATED,
};

struct txn_timers {
    uint32_t t1, t2, t4; /* ms, RFC 3261 defaults 500, 4000, 5000 */
    uint32_t timer_c;    /* ms a client INVITE may stay without a final response (proxy timer C) */
};

/* The transaction user: the proxy core. Every callback runs on the table's worker. */
struct txn_user {
    void *ctx;
    /* Sends bytes. Returns 0 or a negative errno (a reliable send failing is a transport error). */
    int (*send)(void *ctx, const struct net_dest *d, const char *data, size_t len);
    /* A new request created a server transaction. req stays valid while st lives. */
    void (*request)(void *ctx, struct txn *st, const struct sip_msg *req, const struct net_rx *rx);
    /* An ACK that matched no transaction (ACK for a 2xx): forwarded statelessly by the user. */
    void (*ack)(void *ctx, const struct sip_msg *ack, const struct net_rx *rx);
    /* A response for a client transaction: every provisional, the final, and (RFC 6026)
     * every 2xx retransmission while Accepted. */
    void (*response)(void *ctx, struct txn *ct, const struct sip_msg *resp,
                     const struct net_rx *rx);
    /* A response that matched no client transaction (e.g. a late 2xx retransmission). */
    void (*stray_response)(void *ctx, const struct sip_msg *resp, const struct net_rx *rx);
    /* A client transaction got no final response in time (timer B, F, or C) or its
     * transport failed: the user acts as if it had received 408 (or 503). */
    void (*timeout)(void *ctx, struct txn *ct, bool transport_error);
    /* The transaction ends; after this call the user must drop its pointers (unless it
     * holds a reference). */
    void (*terminated)(void *ctx, struct txn *t);
};

struct txn_stats {
    uint64_t server_created, client_created, retransmissions_absorbed, retransmissions_sent;
    uint64_t timeouts, live;
};

/*
 * A new, empty table. max_txns bounds the live transactions (a new request over it is
 * answered 503 by the caller: txn_table_recv returns -ENOSPC). 0 or -ENOMEM.
 */
int txn_table_new(struct txn_table **out, const struct txn_timers *timers,
                  const struct txn_user *tu, const struct sip_limits *lim, size_t max_txns);
/* Terminates every transaction (the user's terminated callback runs for each) and frees. */
void txn_table_free(struct txn_table *tt);

/*
 * A message received for this table. m is the message parsed from rx->data. Requests:
 * a retransmission is absorbed (the last response is sent again), an ACK completes its
 * INVITE transaction or goes to tu->ack, anything else creates a server transaction
 * (tu->request). Responses go to their client transaction or tu->stray_response.
 * Returns 0, -ENOSPC (table full: the caller answers 503 statelessly), -ENOMEM.
 */
int txn_table_recv(struct txn_table *tt, const struct sip_msg *m, const struct net_rx *rx,
                   uint64_t now);

/* Runs every timer due at now. */
void txn_table_tick(struct txn_table *tt, uint64_t now);
/* When txn_table_tick is next needed (UINT64_MAX: never). Ends of finished
 * transactions are reported on a 100 ms grid, so that they fire in batches. */
uint64_t txn_table_next(const struct txn_table *tt);
void txn_table_stats(const struct txn_table *tt, struct txn_stats *out);

/*
 * Sends a response on server transaction st: data is the whole response (the user
 * builds it, e.g. with sip_msg_respond on txn_request(st)). The transaction keeps a
 * copy for retransmissions and moves to the state the status implies. A response after
 * the final (other than a 2xx retransmission of an INVITE) is refused: -EALREADY.
 * 0, -ENOMEM, or the send error.
 */
int txn_respond(struct txn *st, uint16_t status, const char *data, size_t len, uint64_t now);

/*
 * Sends a final response on server transaction st and ends it at once, keeping
 * nothing for retransmissions (a stateless answer, RFC 3261 §8.2.7): for challenges
 * and rejections, where a retransmitted request is simply answered again. The user's
 * terminated callback runs before this returns. 0 or the send error.
 */
int txn_respond_once(struct txn *st, uint16_t status, const char *data, size_t len);

/*
 * A new client transaction: sends request data (a whole request whose top Via carries
 * branch) to d and runs its timers. method is the request's (ACK is not a transaction:
 * send it with txn_table_send). user is the caller's pointer (txn_user_data). Returns 0
 * and *out (borrowed: valid until tu->terminated unless referenced), -EEXIST (the branch
 * is in use), -ENOMEM, or the send error (no transaction is created then).
 */
int txn_client_new(struct txn_table *tt, struct txn **out, const struct net_dest *d,
                   enum sip_method method, str branch, const char *data, size_t len, void *user,
                   uint64_t now);

/* Sends bytes outside any transaction (ACK for a 2xx, stateless forwarding). */
int txn_table_send(struct txn_table *tt, const struct net_dest *d, const char *data, size_t len);

/*
 * The INVITE server transaction a CANCEL names (same branch and sent-by, RFC 3261 §9.2),
 * or NULL. Borrowed.
 */
struct txn *txn_find_cancelled(struct txn_table *tt, const struct sip_msg *cancel);

/* Reference counting: a user that keeps a pointer past tu->terminated takes a reference. */
void txn_ref(struct txn *t);
void txn_unref(struct txn *t);

enum txn_state txn_state(const struct txn *t);
bool txn_is_server(const struct txn *t);
enum sip_method txn_method(const struct txn *t);
/*
 * Server transactions: the request (a private copy, parsed). Valid while the caller
 * holds a reference, or during a callback of the transaction layer; after a final
 * response to a non-INVITE request it is given back once no reference but the table's
 * is left, and this returns NULL.
 */
const struct sip_msg *txn_request(const struct txn *t);
/* Server transactions: where the request came from; NULL with txn_request. */
const struct net_rx *txn_source(const struct txn *t);
/* Server: the status of the last response sent (0 = none). Client: of the last received. */
uint16_t txn_status(const struct txn *t);
void txn_set_user_data(struct txn *t, void *user);
void *txn_user_data(const struct txn *t);
/* Client transactions: the destination. */
const struct net_dest *txn_dest(const struct txn *t);
/* Client transactions: the request bytes as sent. */
str txn_sent(const struct txn *t);
/* Whether t is waiting for timers only (no more messages to the user). */
bool txn_is_final(const struct txn *t);

#endif
