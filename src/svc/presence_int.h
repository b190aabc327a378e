/*
 * svc/presence_int — what presence.c (shared state: publications, documents,
 * rules, watcher lists) and presence_sub.c (subscription dialogs on the
 * workers, NOTIFYs) share. Not for other modules.
 */
#ifndef RTCD_SVC_PRESENCE_INT_H
#define RTCD_SVC_PRESENCE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "base/buf.h"
#include "base/map.h"
#include "svc/pidf.h"
#include "svc/presence.h"

#define PRES_MAX_WORKERS 256
#define PRES_ETAG_LEN    20

/* One publication (RFC 3903 event state) of a presentity. */
struct pub {
    struct pub *next;
    char etag[PRES_ETAG_LEN + 1];
    uint64_t expires; /* loop ms */
    uint64_t seq;     /* when it was last modified (newest first in the document) */
    struct pidf_doc *doc;
};

/* Watcher states of RFC 3857. */
enum wstatus { W_PENDING, W_ACTIVE, W_WAITING, W_TERMINATED };

/* One watcher of a presentity, as watcher info reports it (guarded by presence.lock). */
struct wrec {
    struct wrec *next;
    uint64_t id;
    char *uri;          /* the watcher's From URI */
    enum wstatus status;
    const char *event;  /* RFC 3857 event: subscribe, approved, ... */
    uint64_t since_ms;  /* loop ms when it subscribed */
};

/* An in-process watcher (pres_watch), guarded by presence.lock. */
struct pwatch {
    struct pwatch *next;
    int id;
    char *watcher; /* watcher key */
    pres_watch_fn cb;
    void *ctx;
    int last_open; /* -1 = nothing reported yet */
    char *last_note;
};

/* A user whose presence someone publishes or watches (guarded by presence.lock). */
struct pent {
    char *user;
    struct pub *pubs;
    size_t npubs;
    size_t nsubs; /* presence subscriptions to it (for the per-presentity cap) */
    struct wrec *watchers;
    struct pwatch *pwatches;
    char *doc; /* the aggregated document, cached; NULL = to build */
    size_t doclen;
};

/* One owner's rules and contact list (watcher keys normalised, see pres__watcher_key). */
struct orules {
    size_t n, nc;
    char **w;          /* rule watchers */
    uint8_t *a;        /* their actions */
    char **c;          /* contact-list entries */
};

struct pres_worker;

struct presence {
    const struct config *cfg;
    struct sip_server *srv;
    struct store_thread *st;
    struct loc_table *loc;
    bool reg_open, default_allow, contacts_allowed;
    char realm[256];
    pthread_mutex_t lock; /* guards everything below up to the atomics */
    struct map *pents;    /* user → struct pent * */
    struct map *rules;    /* owner → struct orules * */
    struct map *per_watcher; /* watcher key → (uintptr_t) subscriptions */
    size_t nsubs;
    uint64_t pub_seq, wrec_seq;
    int watch_seq;
    struct worker *workers[PRES_MAX_WORKERS];
    struct pres_worker *pw[PRES_MAX_WORKERS];
    unsigned nworkers;
    _Atomic int64_t change_seq;
    _Atomic bool polling;
    _Atomic uint64_t notifies_sent, notifies_failed, npubs, nsubs_live;
};

/* What a worker is told about (pres__post). */
enum pres_change {
    PC_DOC,   /* the presentity's document changed */
    PC_WINFO, /* its watcher list changed */
    PC_RULES, /* its owner's rules changed */
    PC_FLOW,  /* a connection closed (flow id) */
};

/* presence.c */
/* Posts a change about user (or flow) to every running worker. Any thread. */
void pres__post(struct presence *p, enum pres_change kind, str user, uint64_t flow);
/* The watcher key of a URI or user name: "alice" for our users (a served domain, or with
 * sw an address of ours), "user@host" for others (host lower-cased). Into out (cap
 * bytes). Returns its length, or -EINVAL. */
ssize_t pres__watcher_key(struct presence *p, struct sip_worker *sw, str uri, char *out,
                          size_t cap);
/* The authorization of watcher for owner's presence (lock held). */
enum store_pres_action pres__decide(struct presence *p, str owner, str watcher);
/* The presentity record, created when create is true (lock held). NULL when absent / ENOMEM. */
struct pent *pres__pent(struct presence *p, str user, bool create);
/* The aggregated document of user into out (lock held): publications and devices. */
int pres__document(struct presence *p, struct pent *e, str user, struct buf *out, uint64_t now);
/* The watcher-info document of user into out (lock held), version given. */
int pres__winfo_document(struct presence *p, struct pent *e, str user, uint32_t version,
                         struct buf *out, uint64_t now);
/* Drops a presentity record with nothing left in it (lock held). */
void pres__pent_gc(struct presence *p, struct pent *e);
/* PUBLISH. */
void pres__publish(struct presence *p, struct core_req *r);

/* presence_sub.c */
enum sub_state { SUB_PENDING, SUB_ACTIVE, SUB_TERMINATED };
/*
 * The Subscription-State value (RFC 6665 §8.2.3) for a state, the seconds left and a
 * termination reason. Into out (cap bytes). Returns out.
 */
const char *pres_sub_state_value(char *out, size_t cap, int state, uint64_t secs,
                                 const char *reason);
/*
 * The state a subscription takes for an authorization decision (RFC 3856 §6.6): allow and
 * polite-block are active (polite-block shows a permanent offline document), pending
 * waits, block ends it with reason=rejected (-1: refuse a new subscription with 403).
 */
int pres_sub_state_for(enum store_pres_action a);
void pres__subscribe(struct presence *p, struct core_req *r);
bool pres__sub_in_dialog(struct presence *p, struct core_req *r);
void pres__worker_change(struct presence *p, struct pres_worker *pw, enum pres_change kind,
                         str user, uint64_t flow);
void pres__sub_tick(struct presence *p, struct pres_worker *pw, uint64_t now);
struct pres_worker *pres__worker_new(struct presence *p, struct sip_worker *sw);
void pres__worker_stop(struct pres_worker *pw);

/* Sends a response with the given headers (a helper over core_respond). */
void pres__respond(struct core_req *r, uint16_t status, const char *reason,
                   const struct sip_hdr_add *h, size_t nh);
/* The event package of m: "presence", "presence.winfo", other, or empty. */
str pres__event(const struct sip_msg *m);

#endif
