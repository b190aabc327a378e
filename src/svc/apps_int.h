/*
 * svc/apps_int.h — what the files of the apps service share (apps.c,
 * apps_notify.c, apps_chan.c). Not for other modules.
 */
#ifndef RTCD_SVC_APPS_INT_H
#define RTCD_SVC_APPS_INT_H

#include <pthread.h>

#include "base/map.h"
#include "svc/apps.h"

struct webhook;
struct notify_table;
struct chan_sip;

struct apps {
    const struct config *cfg;
    struct apps_deps deps;
    pthread_mutex_t lock; /* guards everything below except the hub (its own locks) */
    int64_t seq;          /* apps_seq last loaded (store thread only) */
    struct apps_app *apps;
    size_t napps;
    struct apps_channel *chans;
    size_t nchans;
    struct map *buckets;   /* app name → struct bucket * */
    struct map *questions; /* "app/user" → struct question * */
    struct map *bots;      /* app name → struct bot_conn * */
    struct webhook **wh;   /* per worker index */
    struct chan_hub *hub;
    struct notify_table *notify; /* apps_notify.c */
    struct chan_sip *chsip;      /* apps_chan.c: SIP users who joined channels */
};

int apps__notify_init(struct apps *a);
void apps__notify_fini(struct apps *a);
int apps__chan_init(struct apps *a, unsigned nworkers);
void apps__chan_fini(struct apps *a);
/* Re-creates the SIP users' channel memberships from the store (store thread, at start). */
void apps__chan_restore(struct apps *a, struct store *s);
/* The worker with index i while it runs (NULL otherwise). */
struct worker *apps__worker(struct apps *a, unsigned i);
/* The router hook for sip:~NAME@domain (a channel): true when answered. */
bool apps__chan_sip(struct apps *a, struct core_req *r);
void apps__chan_worker_start(struct apps *a, struct worker *w);
void apps__chan_worker_stop(struct apps *a, struct worker *w);

#endif
