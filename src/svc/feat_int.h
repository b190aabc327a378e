/*
 * svc/feat_int — what feat.c, callfeat.c and groups.c share.
 */
#ifndef RTCD_SVC_FEAT_INT_H
#define RTCD_SVC_FEAT_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "svc/feat.h"

struct feat {
    struct feat_params p;
    pthread_mutex_t lock; /* guards cur */
    struct feat_snap *cur;
    int64_t seq;          /* features counter of cur (store thread and loader only) */
    uv_timer_t *timer;    /* worker 0's poll */
    struct worker *poll_w;
    _Atomic bool polling; /* a poll job is queued */
    char system_from[600]; /* "\"System\" <sip:system@domain>" */
};

/* A broadcast taken from the outbox, with its recipients (user names). */
struct feat_bcast {
    struct feat_bcast *next;
    int64_t id, expires_ms;
    bool offline_too;
    char *group;        /* "" = every user */
    char *sender, *ctype, *body;
    size_t blen;
    char (*rcpt)[STORE_NAME_MAX + 1];
    size_t n;
};

/* groups.c: sends a taken broadcast to its recipients (on a worker). */
void feat__broadcast_run(struct feat *f, struct sip_worker *sw, struct feat_bcast *b);
void feat__bcast_free(struct feat_bcast *b);

#endif
