/*
 * tq — timer queues for many timers of a few fixed durations.
 *
 * The SIP transaction timers come from a handful of durations (T1 doubling up
 * to T2, 64*T1, T4, Timer D, Timer C). A timer started at `now` for a delay d
 * expires at now + d; with `now` never going back, timers of one delay expire
 * in the order they were started. So each delay gets its own FIFO list: start
 * appends at the tail, stop unlinks, expiry pops from the head — O(1) each,
 * touching only the node and its neighbours. A binary heap of 100,000 timers
 * would walk ~17 levels of cold memory per operation instead.
 *
 * Up to TQ_LISTS - 1 distinct delays get a list each; any further delay (or a
 * timer whose expiry is earlier than its list's tail, when a caller's clock
 * went back) goes to one sorted list where insertion walks from the tail —
 * correct for any timer, fast for the expected ones.
 *
 * Nodes are intrusive (embed a struct tq_node, find the owner with
 * container_of). Not thread-safe: one queue set per thread.
 */
#ifndef RTCD_BASE_TQ_H
#define RTCD_BASE_TQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TQ_LISTS 32

struct tq_node {
    struct tq_node *prev, *next;
    uint64_t at;   /* absolute expiry (the caller's clock) */
    uint8_t list;  /* 0 = not queued, else the list's index + 1 */
    uint8_t tag;   /* the owner's, never touched by tq (e.g. which of its timers) */
};

struct tq_list {
    uint64_t delay;        /* UINT64_MAX for the sorted list */
    uint64_t first;        /* head's expiry, UINT64_MAX when empty */
    struct tq_node *head, *tail;
};

struct tq {
    struct tq_list l[TQ_LISTS];
    unsigned n;    /* delay lists in use, l[0..n) */
    size_t count;  /* queued nodes */
};

/* An empty queue set. */
void tq_init(struct tq *q);

/* Whether n is queued. */
static inline bool tq_queued(const struct tq_node *n)
{
    return n->list != 0;
}

/* A node that is not queued, with the owner's tag (zeroed memory is one with tag 0). */
static inline void tq_node_init(struct tq_node *n, uint8_t tag)
{
    n->prev = n->next = NULL;
    n->at = 0;
    n->list = 0;
    n->tag = tag;
}

/*
 * Queues n to expire at `at` (now is the caller's current time, at >= now
 * expected; an earlier `at` expires at the next tq_pop). A queued n is moved.
 * Never fails.
 */
void tq_add(struct tq *q, struct tq_node *n, uint64_t now, uint64_t at);

/* Unqueues n; nothing when it is not queued. */
void tq_del(struct tq *q, struct tq_node *n);

/* The earliest expiry among queued nodes, UINT64_MAX when none. */
uint64_t tq_next(const struct tq *q);

/* Unqueues and returns a node whose expiry is <= now (the earliest), or NULL. */
struct tq_node *tq_pop(struct tq *q, uint64_t now);

#endif
