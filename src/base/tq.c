/* tq — FIFO timer lists per delay (tq.h). */
#include "base/tq.h"

#define SORTED (TQ_LISTS - 1) /* index of the sorted list */

void tq_init(struct tq *q)
{
    for (unsigned i = 0; i < TQ_LISTS; i++)
        q->l[i] = (struct tq_list){ .delay = UINT64_MAX, .first = UINT64_MAX };
    q->n = 0;
    q->count = 0;
}

static void link_after(struct tq_list *l, struct tq_node *after, struct tq_node *n)
{
    n->prev = after;
    n->next = after ? after->next : l->head;
    if (n->next)
        n->next->prev = n;
    else
        l->tail = n;
    if (after)
        after->next = n;
    else {
        l->head = n;
        l->first = n->at;
    }
}

void tq_del(struct tq *q, struct tq_node *n)
{
    if (!n->list)
        return;
    struct tq_list *l = &q->l[n->list - 1];
    if (n->prev)
        n->prev->next = n->next;
    else {
        l->head = n->next;
        l->first = n->next ? n->next->at : UINT64_MAX;
    }
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    n->list = 0;
    q->count--;
}

void tq_add(struct tq *q, struct tq_node *n, uint64_t now, uint64_t at)
{
    tq_del(q, n);
    n->at = at;
    unsigned i = SORTED;
    if (at >= now) {
        uint64_t d = at - now;
        unsigned j = 0;
        while (j < q->n && q->l[j].delay != d)
            j++;
        if (j == q->n && q->n < SORTED)
            q->l[q->n++].delay = d;
        /* FIFO holds only while expiries come in order (the caller's clock did not go back) */
        if (j < q->n && (!q->l[j].tail || q->l[j].tail->at <= at))
            i = j;
    }
    struct tq_list *l = &q->l[i];
    struct tq_node *after = l->tail;
    if (i == SORTED)
        while (after && after->at > at)
            after = after->prev;
    link_after(l, after, n);
    n->list = (uint8_t)(i + 1);
    q->count++;
}

static int earliest(const struct tq *q)
{
    int best = -1;
    uint64_t at = UINT64_MAX;
    for (unsigned i = 0; i < q->n; i++)
        if (q->l[i].first < at)
            at = q->l[i].first, best = (int)i;
    if (q->l[SORTED].first < at)
        best = SORTED;
    return best;
}

uint64_t tq_next(const struct tq *q)
{
    int i = earliest(q);
    return i < 0 ? UINT64_MAX : q->l[i].first;
}

struct tq_node *tq_pop(struct tq *q, uint64_t now)
{
    int i = earliest(q);
    if (i < 0 || q->l[i].first > now)
        return NULL;
    struct tq_node *n = q->l[i].head;
    tq_del(q, n);
    return n;
}
