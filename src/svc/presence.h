/*
 * svc/presence — the SIP presence agent (RFC 3856 over RFC 6665 events, RFC 3903
 * PUBLISH, RFC 3863 PIDF, RFC 3857/3858 watcher information) with authorization by
 * the users' presence rules in the store. docs/presence.md says what it does and why.
 *
 * Threads: publications, aggregated documents, rules and the watcher lists are shared
 * (one mutex, never held across I/O or a callback); a subscription is a dialog and
 * lives on the worker that owns its Call-ID (shared-nothing, like the transactions its
 * NOTIFYs are sent on). A change (PUBLISH, registration, rule) is posted to every
 * worker, which notifies its own subscriptions.
 */
#ifndef RTCD_SVC_PRESENCE_H
#define RTCD_SVC_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "core/service.h"
#include "store/store.h"
#include "svc/location.h"

struct presence;

/*
 * A new presence agent for the SIP server srv over the store thread st (may be NULL:
 * then there are no rules, every watcher gets presence.default_rule). 0 or -ENOMEM.
 */
int pres_new(struct presence **out, const struct config *cfg, struct sip_server *srv,
             struct store_thread *st);
/* The location table whose registrations count as devices (borrowed; set before start). */
void pres_set_location(struct presence *p, struct loc_table *loc);
/* Frees everything; the workers must have stopped. NULL is fine. */
void pres_free(struct presence *p);
/*
 * Loads every presence rule and contact list from the store and the position in the
 * store's change log. Blocks until the store thread has done it (call before the
 * workers start). 0 or a negative errno.
 */
int pres_load(struct presence *p);

/* core_services.presence: answers an out-of-dialog SUBSCRIBE or PUBLISH for r->user. */
void pres_handle(struct presence *p, struct core_req *r);
/* core_services.in_dialog: a request inside one of our subscriptions (refresh,
 * unsubscribe). false when it is none of ours. */
bool pres_in_dialog(struct presence *p, struct core_req *r);
/* A location table change (loc_params.hook): a device registered, left or expired. Any
 * thread. */
void pres_loc_hook(void *p, str aor, enum loc_event ev, const struct loc_binding *b,
                   size_t remaining);
/* A connection closed (any thread): the subscriptions whose watcher used it end. */
void pres_flow_closed(struct presence *p, uint64_t flow_id);
/* Once a second on every worker: expiries (subscriptions; publications and the rules'
 * change log on worker 0). */
void pres_tick(struct presence *p, struct sip_worker *sw, uint64_t now);
void pres_worker_start(struct presence *p, struct sip_worker *sw);
void pres_worker_stop(struct presence *p, struct sip_worker *sw);

/*
 * The presence rules or the contact list of owner (a user name) changed in the store:
 * re-reads them and applies them to live subscriptions (pending → active with a NOTIFY,
 * → blocked: terminated with reason=rejected). Callable from any thread (the HTTP API
 * after it changed rules); never blocks. Edits made by other processes (rtcctl) are
 * noticed without it within about a second.
 */
void pres_rules_changed(struct presence *p, str owner);

/*
 * In-process watchers (bots, apps): cb(ctx, presentity, open, note) is called once at
 * once with the current state, then on every change of what the watcher may see, under
 * the same rules as a SIP watcher (watcher_uri is its identity: a user name or URI;
 * pending and block: nothing is reported until allowed; polite-block: always closed).
 * open = some tuple is open; note = the newest note (borrowed for the call). cb runs on
 * the thread that made the change (a worker, the store thread) with no lock held: it
 * must not block. Returns a watch id (> 0) for pres_unwatch, or -EINVAL / -ENOMEM /
 * -ENOSPC (max_subscriptions_per_presentity).
 */
typedef void (*pres_watch_fn)(void *ctx, str presentity, bool open, str note);
int pres_watch(struct presence *p, str watcher_uri, str presentity, pres_watch_fn cb, void *ctx);
/* Ends a watch; cb is not called after it returns (unless already running elsewhere). */
void pres_unwatch(struct presence *p, int id);

/* Counters for stats. */
struct pres_stats {
    uint64_t subscriptions, publications, presentities, notifies_sent, notifies_failed;
};
void pres_stats(struct presence *p, struct pres_stats *out);

#endif
