/*
 * svc/feat — the messaging and call features behind the home server:
 * per-user call forwarding and do-not-disturb applied to INVITEs
 * (callfeat.c), groups as SIP addresses (groups.c), and broadcasts that
 * rtcctl queues in the store's outbox (groups.c). docs/call-features.md,
 * docs/messaging.md.
 *
 * Rules and groups live in memory as one immutable snapshot, rebuilt by the
 * store thread when the store's features counter moves (rtcctl, another node,
 * plain SQL) and swapped in under a lock: workers never wait on the database.
 * Worker 0 asks for the check every 250 ms, and takes queued broadcasts in the
 * same job, so a change made by rtcctl is live within about half a second.
 */
#ifndef RTCD_SVC_FEAT_H
#define RTCD_SVC_FEAT_H

#include <stdbool.h>

#include "base/config.h"
#include "core/service.h"
#include "store/store.h"

struct feat;
struct deliver;

/* Most members a group may have for its address to work (the rest are ignored, logged). */
#define FEAT_MAX_GROUP_MEMBERS 1000

/* ---- the snapshot (rules and groups), exposed for tests ---- */

struct feat_snap;
struct feat_group {
    size_t n, cap;
    char (*member)[STORE_NAME_MAX + 1]; /* sorted as the store lists them */
};

/* A new empty snapshot (one reference). 0 or -ENOMEM. */
int feat_snap_new(struct feat_snap **out);
/* Drops a reference; the last one frees it. NULL is fine. */
void feat_snap_unref(struct feat_snap *s);
/* Adds (or replaces) user's rules; a rule set with nothing on is not kept. 0 / -ENOMEM. */
int feat_snap_put_forward(struct feat_snap *s, str user, const struct store_forward *f);
/* Adds a group (user empty) or a member. 0, -ENOSPC (group full), -ENOMEM. */
int feat_snap_put_member(struct feat_snap *s, str group, str user);
/* user's rules, or NULL: borrowed while the caller holds a reference to s. */
const struct store_forward *feat_snap_forward(const struct feat_snap *s, str user);
/* The group, or NULL: borrowed while the caller holds a reference to s. */
const struct feat_group *feat_snap_group(const struct feat_snap *s, str group);
bool feat_group_has(const struct feat_group *g, str user);
size_t feat_snap_groups(const struct feat_snap *s);
size_t feat_snap_rules(const struct feat_snap *s);

/* ---- the service ---- */

struct feat_params {
    const struct config *cfg;
    struct sip_server *srv;
    struct store_thread *st;    /* NULL: no rules, no groups, no broadcasts */
    struct store_creds *creds;  /* display names of senders (may be NULL) */
    struct deliver *dl;         /* how group messages and broadcasts are sent */
};

/* The From value of broadcasts and server notices for cfg (server.system_address, or
 * "System" <sip:system@FIRST-DOMAIN>) into out. 0 or -ENOBUFS. */
int feat_system_from(const struct config *cfg, char *out, size_t cap);
/* A new feature service (empty snapshot until the first poll). 0 or -ENOMEM. */
int feat_new(struct feat **out, const struct feat_params *p);
/* Frees it: after the workers stopped and before the store thread stops. NULL is fine. */
void feat_free(struct feat *f);
/* Worker hooks (from the services' worker_start / worker_stop, on that worker's thread):
 * worker 0 runs the poll timer. */
void feat_worker_start(struct feat *f, struct sip_worker *sw);
void feat_worker_stop(struct feat *f, struct sip_worker *sw);
/*
 * Loads rules and groups once, synchronously through the store thread (before the
 * workers start, so the first INVITE already sees them). 0 or a negative errno.
 * Blocks.
 */
int feat_load(struct feat *f);
/* The current snapshot: a new reference (release with feat_snap_unref). Any thread. */
struct feat_snap *feat_snapshot(struct feat *f);

/* core_services.call_route: forwarding and DND for an INVITE to a local user. */
int feat_call_route(struct feat *f, struct core_req *r, const struct core_target *t, int n);
/* core_services.address: a MESSAGE to a group address. true when answered. */
bool feat_address(struct feat *f, struct core_req *r);

#endif
