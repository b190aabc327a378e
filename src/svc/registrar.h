/*
 * svc/registrar — REGISTER (RFC 3261 §10.3, RFC 5626 outbound, RFC 3327 Path)
 * over the location table, and the lookup the router forwards by.
 */
#ifndef RTCD_SVC_REGISTRAR_H
#define RTCD_SVC_REGISTRAR_H

#include <stdint.h>

#include "base/config.h"
#include "core/service.h"
#include "svc/location.h"

struct registrar;

/* A new registrar over loc (borrowed: it must outlive the registrar). 0 or -ENOMEM. */
int registrar_new(struct registrar **out, const struct config *cfg, struct loc_table *loc);
void registrar_free(struct registrar *rg);

/* core_services.register_req: answers the REGISTER in r. */
void registrar_handle(struct registrar *rg, struct core_req *r);
/* core_services.lookup: the targets of user@domain, highest q first. */
int registrar_lookup(struct registrar *rg, str user, str domain, uint64_t now_ms,
                     struct core_target *out, size_t max);

/* A connection closed: the bindings registered over it (and still using it) are removed.
 * Any thread; takes the location table's shard locks briefly. */
void registrar_flow_closed(struct registrar *rg, uint64_t flow_id, uint64_t now_ms);

#endif
