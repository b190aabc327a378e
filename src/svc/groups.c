/*
 * svc/groups — groups as SIP addresses and broadcasts (docs/messaging.md).
 *
 * A MESSAGE to sip:GROUP@domain goes to every member but the sender, each
 * through svc/deliver (every device; offline members get it stored). The
 * copy's From is the group, with the sender's name in its display name
 * ("Alice (team)"), so a reply goes to the group; the sender's own address is
 * in P-Asserted-Identity. The sender gets 202 once the copies are on their
 * way. is-composing notices reach online members only.
 */
#include "svc/feat_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "svc/deliver.h"

/* Whether a Content-Type is RFC 3994 is-composing (ephemeral: never stored). */
static bool is_composing(str ctype)
{
    ssize_t semi = str_find_char(ctype, ';');
    if (semi >= 0)
        ctype = str_sub(ctype, 0, (size_t)semi);
    return str_caseeq(str_trim(ctype), STR("application/im-iscomposing+xml"));
}

/* A display name without the characters that would end a quoted string. */
static void clean_display(str in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < in.len && o + 1 < cap; i++)
        if (in.s[i] != '"' && in.s[i] != '\\' && (unsigned char)in.s[i] >= 0x20)
            out[o++] = in.s[i];
    out[o] = 0;
}

static void reject(struct core_req *r, uint16_t status, const char *reason)
{
    core_respond(r, status, str_cstr(reason), NULL, 0, STR_NULL, STR_NULL);
}

bool feat_address(struct feat *f, struct core_req *r)
{
    if (r->user.len > STORE_NAME_MAX)
        return false;
    struct feat_snap *s = feat_snapshot(f);
    const struct feat_group *g = feat_snap_group(s, r->user);
    if (!g) {
        feat_snap_unref(s);
        return false;
    }
    const struct sip_msg *m = r->m;
    if (m->method != SIP_M_MESSAGE) {
        feat_snap_unref(s);
        struct sip_hdr_add allow = { STR("Allow"), STR("MESSAGE") };
        core_respond(r, 405, STR("Method Not Allowed: a group address takes only MESSAGE"),
                     &allow, 1, STR_NULL, STR_NULL);
        return true;
    }
    /* the sender: the authenticated user, else a From of our domains */
    str sender = r->auth_user;
    struct sip_uri fu;
    str dom;
    if (!sender.len && sip_uri_parse(m->from.uri, &fu) == 0 && fu.user.len &&
        core_canonical_domain(r->sw, fu.host, &dom))
        sender = fu.user;
    struct cred c = { 0 };
    bool local = sender.len && sender.len <= STORE_NAME_MAX && f->p.creds &&
                 store_creds_get(f->p.creds, sender, &c) == 0 && c.enabled;
    bool members_only = strcmp(f->p.cfg->messaging.group_senders, "users") != 0;
    if (!local || (members_only && !feat_group_has(g, sender))) {
        feat_snap_unref(s);
        char why[160];
        snprintf(why, sizeof why, "Forbidden: only %s of %.*s may send to it",
                 members_only ? "members" : "local users", STR_FMT(r->user));
        reject(r, 403, why);
        return true;
    }
    /* the recipients, copied: the snapshot is not held across the sends */
    size_t n = 0;
    char(*to)[STORE_NAME_MAX + 1] = calloc(g->n ? g->n : 1, sizeof *to);
    if (to)
        for (size_t i = 0; i < g->n; i++)
            if (!str_eq(str_cstr(g->member[i]), sender))
                memcpy(to[n++], g->member[i], sizeof to[0]);
    feat_snap_unref(s);
    if (!to) {
        reject(r, 500, "Server Internal Error: out of memory");
        return true;
    }
    str realm = core_realm(core_server(r->sw));
    char disp[STORE_DISPLAY_MAX + 1], from[700], pai[400];
    clean_display(c.display[0] ? str_cstr(c.display) : sender, disp, sizeof disp);
    snprintf(from, sizeof from, "\"%s (%.*s)\" <sip:%.*s@%.*s>", disp, STR_FMT(r->user),
             STR_FMT(r->user), STR_FMT(realm));
    snprintf(pai, sizeof pai, "<sip:%.*s@%.*s>", STR_FMT(sender), STR_FMT(realm));
    struct sip_hdr_add extra[1] = { { STR("P-Asserted-Identity"), str_cstr(pai) } };
    bool ephemeral = is_composing(m->content_type);
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        struct deliver_msg dm = {
            .from = str_cstr(from),
            .to_user = str_cstr(to[i]),
            .content_type = m->content_type,
            .body = m->body,
            .extra = extra,
            .nextra = 1,
            .offline = !ephemeral,
        };
        if (deliver_send(f->p.dl, &dm, NULL, NULL) == 0)
            sent++;
    }
    free(to);
    if (!ephemeral && f->p.st) {
        str rcpt = r->user;
        store_thread_archive_append(f->p.st, sender, &rcpt, 1, (int64_t)clock_wall_ms(),
                                    m->content_type, m->body);
    }
    log_debug("groups", "MESSAGE from %.*s to group %.*s: %zu member(s)", STR_FMT(sender),
              STR_FMT(r->user), sent);
    char reason[96];
    snprintf(reason, sizeof reason, "Accepted: sent to %zu member(s) of %.*s", sent,
             STR_FMT(r->user));
    core_respond(r, 202, str_cstr(reason), NULL, 0, STR_NULL, STR_NULL);
    return true;
}

/* ---- broadcasts ---- */

struct bc_count {
    _Atomic unsigned left, delivered, stored, offline, failed;
    int64_t id;
};

static void bc_release(struct bc_count *c)
{
    if (atomic_fetch_sub(&c->left, 1) != 1)
        return;
    log_info("broadcast",
             "broadcast %lld: %u delivered, %u stored offline, %u not online, %u failed",
             (long long)c->id, atomic_load(&c->delivered), atomic_load(&c->stored),
             atomic_load(&c->offline), atomic_load(&c->failed));
    free(c);
}

static void bc_one(const struct deliver_result *res, void *arg)
{
    struct bc_count *c = arg;
    switch (res->outcome) {
    case DELIVER_DELIVERED:
        atomic_fetch_add(&c->delivered, 1);
        break;
    case DELIVER_STORED:
        atomic_fetch_add(&c->stored, 1);
        break;
    case DELIVER_NOT_ONLINE:
        atomic_fetch_add(&c->offline, 1);
        break;
    default:
        atomic_fetch_add(&c->failed, 1);
        break;
    }
    bc_release(c);
}

void feat__broadcast_run(struct feat *f, struct sip_worker *sw, struct feat_bcast *b)
{
    (void)sw;
    log_info("broadcast", "broadcast %lld to %s: %zu user(s)%s", (long long)b->id,
             b->group[0] ? b->group : "every user", b->n,
             b->offline_too ? ", offline ones too" : "");
    if (f->p.st) {
        str rcpt = b->group[0] ? str_cstr(b->group) : STR("*");
        store_thread_archive_append(f->p.st, str_cstr(b->sender), &rcpt, 1,
                                    (int64_t)clock_wall_ms(), str_cstr(b->ctype),
                                    str_make(b->body, b->blen));
    }
    if (b->n == 0)
        return;
    struct bc_count *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->id = b->id;
    atomic_init(&c->left, (unsigned)b->n + 1); /* +1 held until every send was tried */
    for (size_t i = 0; i < b->n; i++) {
        struct deliver_msg dm = {
            .from = str_cstr(b->sender),
            .to_user = str_cstr(b->rcpt[i]),
            .content_type = str_cstr(b->ctype),
            .body = str_make(b->body, b->blen),
            .offline = b->offline_too,
            .expires_ms = b->expires_ms,
        };
        if (deliver_send(f->p.dl, &dm, bc_one, c) < 0) {
            atomic_fetch_add(&c->failed, 1);
            bc_release(c);
        }
    }
    bc_release(c);
}
