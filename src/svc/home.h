/*
 * svc/home — the home-server services behind the SIP core: users and
 * credentials (from the store's credential table), the registrar and
 * location, instant messages (archive; offline store with delivery when the
 * user registers again), and registrations kept across a restart.
 */
#ifndef RTCD_SVC_HOME_H
#define RTCD_SVC_HOME_H

#include "base/config.h"
#include "core/service.h"
#include "store/store.h"

struct home;

/*
 * A new home over the store thread and credential table (both may be NULL:
 * then there are no users). 0 or -ENOMEM.
 */
int home_new(struct home **out, const struct config *cfg, struct sip_server *srv,
             struct store_thread *st, struct store_creds *creds);
void home_free(struct home *h);
/* The callbacks to install with sip_server_set_services. */
void home_services(struct home *h, struct core_services *out);
/*
 * Restores the registrations saved at the last stop and learns which users have
 * offline messages waiting. Blocks until the store thread has done it (call before the
 * workers start). 0 or a negative errno.
 */
int home_load(struct home *h);
/*
 * The delivery service for server-originated messages (svc/deliver.h): borrowed for
 * the life of h, usable from any thread while the workers run.
 */
struct deliver *home_deliver(struct home *h);
/* Saves the live registrations (call after the workers stopped, before the store
 * thread stops). Blocks until saved. */
int home_save(struct home *h);

#endif
