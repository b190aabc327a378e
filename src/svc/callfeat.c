/*
 * svc/callfeat — call forwarding and do-not-disturb (docs/call-features.md):
 * the per-user rules from the store, applied to an INVITE for a local user
 * before the proxy forks it. Unconditional forwarding and DND act at once;
 * busy and no-answer ride on the proxy context (core_forward_ex); not
 * registered replaces the 480.
 */
#include "svc/feat_int.h"

#include <errno.h>
#include <string.h>

#include "base/log.h"

/* Ring time before no-answer forwarding when the rule gives none (seconds). */
#define CALLFEAT_DEFAULT_RING 20

/* RFC 4458 causes, carried in History-Info. */
enum {
    CAUSE_UNCONDITIONAL = 302,
    CAUSE_BUSY = 486,
    CAUSE_NO_ANSWER = 408,
    CAUSE_NOT_REGISTERED = 404,
};

int feat_call_route(struct feat *f, struct core_req *r, const struct core_target *t, int n)
{
    struct feat_snap *s = feat_snapshot(f);
    const struct store_forward *rule = feat_snap_forward(s, r->user);
    if (!rule) {
        feat_snap_unref(s);
        return 0;
    }
    struct store_forward fw = *rule;
    feat_snap_unref(s);
    if (fw.unconditional[0]) {
        int rc = core_retarget(r, str_cstr(fw.unconditional), CAUSE_UNCONDITIONAL);
        if (rc == 0)
            return 1;
        log_info("callfeat", "%.*s: unconditional forwarding to %s not done: %s",
                 STR_FMT(r->user), fw.unconditional, strerror(-rc));
        core_respond(r, 480, STR("Temporarily Unavailable: call forwarding failed"), NULL, 0,
                     STR_NULL, STR_NULL);
        return 1;
    }
    if (fw.dnd) {
        if (fw.busy[0] && core_retarget(r, str_cstr(fw.busy), CAUSE_BUSY) == 0)
            return 1;
        core_respond(r, 486, STR("Busy Here: do not disturb"), NULL, 0, STR_NULL, STR_NULL);
        return 1;
    }
    if (n <= 0) {
        if (fw.not_registered[0] &&
            core_retarget(r, str_cstr(fw.not_registered), CAUSE_NOT_REGISTERED) == 0)
            return 1;
        return 0;
    }
    if (!fw.busy[0] && !fw.no_answer[0])
        return 0;
    struct core_fwd_opts o = {
        .busy = fw.busy,
        .no_answer = fw.no_answer,
        .no_answer_ms = (fw.no_answer_secs ? fw.no_answer_secs : CALLFEAT_DEFAULT_RING) * 1000u,
    };
    return core_forward_ex(r, t, (size_t)n, &o) == 0 ? 1 : 0;
}
