/*
 * svc/presence_sub — subscriptions (RFC 6665 with the presence package of RFC
 * 3856 and watcher info of RFC 3857): each one a dialog owned by the worker of
 * its Call-ID, with its NOTIFYs sent as client transactions through the core
 * (core_uac_send), one at a time per subscription (a change while one is
 * outstanding is sent once it is answered, with the state of that moment).
 */
#include "svc/presence_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "net/net.h"
#include "net/worker.h"

struct sub {
    struct pres_worker *pw;
    struct sub *next_p, *prev_p; /* the subscriptions to one presentity on this worker */
    bool winfo;
    bool inflight; /* a NOTIFY is outstanding */
    bool again;    /* send another once it is answered */
    bool dead;     /* out of every table: freed once no NOTIFY is outstanding */
    bool counted;  /* holds a place in the shared counters */
    uint8_t state;
    uint8_t action;        /* enum store_pres_action */
    const char *reason;    /* when terminated */
    uint8_t transport;
    bool has_addr;
    struct sockaddr_storage addr;
    uint64_t flow_id;
    uint64_t expires; /* loop ms */
    uint64_t wrec_id;
    uint32_t cseq, remote_cseq, version;
    str key, call_id, local_tag, remote_tag, remote_to, local_from, target, route, presentity,
        watcher, watcher_uri, contact;
    char *data;
};

struct pres_worker {
    struct presence *p;
    struct sip_worker *sw;
    struct map *dialogs; /* "Call-ID \x1f local tag" → struct sub * */
    struct map *by_pent; /* presentity → first struct sub * */
    size_t alive;        /* subscriptions not yet freed (dead ones with a NOTIFY out too) */
    uint64_t next_expiry; /* no subscription expires before this (loop ms) */
    bool stopping;
};

static const struct sip_hdr_add allow_events = { STR("Allow-Events"),
                                                 STR("presence, presence.winfo") };

const char *pres_sub_state_value(char *out, size_t cap, int state, uint64_t secs,
                                 const char *reason)
{
    if (state == SUB_TERMINATED)
        snprintf(out, cap, "terminated;reason=%s", reason ? reason : "noresource");
    else
        snprintf(out, cap, "%s;expires=%llu", state == SUB_ACTIVE ? "active" : "pending",
                 (unsigned long long)secs);
    return out;
}

int pres_sub_state_for(enum store_pres_action a)
{
    switch (a) {
    case STORE_PRES_ALLOW:
    case STORE_PRES_POLITE_BLOCK:
        return SUB_ACTIVE;
    case STORE_PRES_PENDING:
        return SUB_PENDING;
    default:
        return -1;
    }
}

/* ---- tables ---- */

static void sub_free(struct sub *s)
{
    struct pres_worker *pw = s->pw;
    free(s->data);
    free(s);
    pw->alive--;
    if (pw->stopping && pw->alive == 0) {
        map_free(pw->dialogs);
        map_free(pw->by_pent);
        free(pw);
    }
}

static void link_pent(struct pres_worker *pw, struct sub *s)
{
    struct sub *head = map_get_str(pw->by_pent, s->presentity);
    s->prev_p = NULL;
    s->next_p = head;
    if (head)
        head->prev_p = s;
    if (map_set_str(pw->by_pent, s->presentity, s, NULL) < 0 && head)
        head->prev_p = NULL; /* not listed: it still ends by expiry */
}

static void unlink_pent(struct pres_worker *pw, struct sub *s)
{
    if (s->prev_p) {
        s->prev_p->next_p = s->next_p;
    } else if (map_get_str(pw->by_pent, s->presentity) == s) {
        if (s->next_p)
            map_set_str(pw->by_pent, s->presentity, s->next_p, NULL);
        else
            map_del_str(pw->by_pent, s->presentity);
    }
    if (s->next_p)
        s->next_p->prev_p = s->prev_p;
    s->next_p = s->prev_p = NULL;
}

/* Gives back the shared counters and the watcher record of s. */
static void release_shared(struct presence *p, struct sub *s)
{
    if (!s->counted)
        return;
    s->counted = false;
    bool winfo_changed = false;
    pthread_mutex_lock(&p->lock);
    p->nsubs--;
    uintptr_t n = (uintptr_t)map_get_str(p->per_watcher, s->watcher);
    if (n > 1)
        map_set_str(p->per_watcher, s->watcher, (void *)(n - 1), NULL);
    else
        map_del_str(p->per_watcher, s->watcher);
    struct pent *e = pres__pent(p, s->presentity, false);
    if (e) {
        if (!s->winfo && e->nsubs)
            e->nsubs--;
        for (struct wrec **pp = &e->watchers; *pp; pp = &(*pp)->next)
            if ((*pp)->id == s->wrec_id) {
                struct wrec *w = *pp;
                *pp = w->next;
                free(w->uri);
                free(w);
                winfo_changed = true;
                break;
            }
        pres__pent_gc(p, e);
    }
    pthread_mutex_unlock(&p->lock);
    atomic_fetch_sub(&p->nsubs_live, 1);
    if (winfo_changed)
        pres__post(p, PC_WINFO, s->presentity, 0);
}

static void send_notify(struct sub *s, uint64_t now);

/*
 * Ends s: out of the tables at once; with a reason a last NOTIFY (terminated) is sent,
 * and s is freed once it is answered. Without, it is freed as soon as nothing is out.
 */
static void terminate(struct sub *s, const char *reason, uint64_t now)
{
    struct pres_worker *pw = s->pw;
    if (s->dead)
        return;
    s->dead = true;
    s->state = SUB_TERMINATED;
    s->reason = reason;
    map_del_str(pw->dialogs, s->key);
    unlink_pent(pw, s);
    release_shared(pw->p, s);
    if (reason && !pw->stopping) {
        s->again = false;
        if (s->inflight)
            s->again = true; /* the final one goes once the current is answered */
        else
            send_notify(s, now);
        return;
    }
    s->again = false;
    if (!s->inflight)
        sub_free(s);
}

/* ---- NOTIFY ---- */

static uint64_t now_of(struct pres_worker *pw)
{
    return uv_now(worker_loop(core_worker(pw->sw)));
}

static void notify_done(struct sip_worker *sw, uint16_t status, void *arg)
{
    struct sub *s = arg;
    (void)sw;
    struct presence *p = s->pw->p;
    s->inflight = false;
    if (status >= 200 && status < 300) {
        atomic_fetch_add(&p->notifies_sent, 1);
    } else {
        atomic_fetch_add(&p->notifies_failed, 1);
        /* 481, a timeout, a transport error or any refusal: the watcher is gone */
        log_debug("presence", "NOTIFY to %.*s answered %u: subscription removed",
                  STR_FMT(s->watcher_uri), status);
        s->again = false;
        if (!s->dead) {
            terminate(s, NULL, 0);
            return;
        }
    }
    if (s->again && !s->pw->stopping) {
        s->again = false;
        send_notify(s, now_of(s->pw));
        return;
    }
    if (s->dead)
        sub_free(s);
}

/* The body for s now: 0 with *ct set (may be empty = no body). */
static int notify_body(struct sub *s, struct buf *body, str *ct, uint64_t now)
{
    struct presence *p = s->pw->p;
    *ct = STR_NULL;
    bool with_state = s->state == SUB_ACTIVE ||
                      (s->state == SUB_TERMINATED && s->reason && strcmp(s->reason, "timeout") == 0 &&
                       s->action != STORE_PRES_PENDING && s->action != STORE_PRES_BLOCK);
    if (!with_state)
        return 0;
    int rc;
    if (s->winfo) {
        pthread_mutex_lock(&p->lock);
        struct pent *e = pres__pent(p, s->presentity, false);
        rc = pres__winfo_document(p, e, s->presentity, s->version++, body, now);
        pthread_mutex_unlock(&p->lock);
        *ct = STR("application/watcherinfo+xml");
        return rc;
    }
    if (s->action == STORE_PRES_POLITE_BLOCK) {
        char entity[STORE_NAME_MAX + 300];
        snprintf(entity, sizeof entity, "sip:%.*s@%s", STR_FMT(s->presentity), p->realm);
        rc = pidf_write_offline(body, str_cstr(entity));
    } else {
        pthread_mutex_lock(&p->lock);
        struct pent *e = pres__pent(p, s->presentity, false);
        rc = pres__document(p, e, s->presentity, body, now);
        pthread_mutex_unlock(&p->lock);
    }
    *ct = STR("application/pidf+xml");
    return rc;
}

static void send_notify(struct sub *s, uint64_t now)
{
    struct pres_worker *pw = s->pw;
    if (s->inflight) {
        s->again = true;
        return;
    }
    char state[96];
    uint64_t secs = s->expires > now ? (s->expires - now + 999) / 1000 : 0;
    pres_sub_state_value(state, sizeof state, s->state, secs, s->reason);
    struct buf body;
    buf_init(&body, 1u << 20);
    str ct;
    if (notify_body(s, &body, &ct, now) < 0) {
        buf_reset(&body);
        ct = STR_NULL;
    }
    struct sip_hdr_add extra[3] = {
        { STR("Event"), s->winfo ? STR("presence.winfo") : STR("presence") },
        { STR("Subscription-State"), str_cstr(state) },
        { STR("Contact"), s->contact },
    };
    struct core_target t;
    memset(&t, 0, sizeof t);
    int rc = str_copy(t.uri, sizeof t.uri, s->target) < 0 ? -EINVAL : 0;
    if (rc == 0 && s->route.len && str_copy(t.path, sizeof t.path, s->route) < 0)
        rc = -EINVAL;
    t.flow_id = s->flow_id;
    t.transport = (enum transport)s->transport;
    t.addr = s->addr;
    t.has_addr = s->has_addr;
    t.q = 1000;
    struct core_uac_msg msg = {
        .method = SIP_M_NOTIFY,
        .from = s->local_from,
        .to = s->remote_to,
        .extra = extra,
        .nextra = 3,
        .content_type = ct,
        .body = ct.len ? buf_str(&body) : STR_NULL,
        .call_id = s->call_id,
        .from_tag = s->local_tag,
        .cseq = ++s->cseq,
    };
    if (rc == 0)
        rc = core_uac_send(pw->sw, &t, 1, &msg, notify_done, s);
    buf_free(&body);
    if (rc == 0) {
        s->inflight = true;
        return;
    }
    atomic_fetch_add(&pw->p->notifies_failed, 1);
    log_debug("presence", "NOTIFY to %.*s not sent: %s", STR_FMT(s->watcher_uri),
              strerror(-rc));
    if (s->dead)
        sub_free(s);
    else
        terminate(s, NULL, now);
}

/* ---- SUBSCRIBE ---- */

/* Whether the Accept headers (if any) take type (RFC 6665 §8.3: else 406). */
static bool accepts(const struct sip_msg *m, str type)
{
    if (!sip_msg_hdr(m, SIP_H_ACCEPT))
        return true;
    struct sip_value_iter it = { 0 };
    str v;
    bool any = false;
    while (sip_msg_values_next(m, SIP_H_ACCEPT, &it, &v)) {
        str first, params;
        if (sip_value_split(v, &first, &params) < 0)
            continue;
        first = str_trim(first);
        any = true;
        if (str_caseeq(first, type) || str_eq(first, STR("*/*")) ||
            str_caseeq(first, STR("application/*")))
            return true;
    }
    return !any; /* an empty Accept: as if none */
}

/* The first Contact URI of m. */
static str first_contact(const struct sip_msg *m)
{
    struct sip_value_iter it = { 0 };
    str v;
    struct sip_addr a;
    str rest;
    if (sip_msg_values_next(m, SIP_H_CONTACT, &it, &v) && sip_addr_parse(v, &a, &rest, false) == 0 &&
        !a.star)
        return a.uri;
    return STR_NULL;
}

/* The Record-Route set, in order, comma-joined into out. */
static int route_set(const struct sip_msg *m, struct buf *out)
{
    struct sip_value_iter it = { 0 };
    str v;
    while (sip_msg_values_next(m, SIP_H_RECORD_ROUTE, &it, &v))
        if (buf_printf(out, "%s%.*s", out->len ? ", " : "", STR_FMT(v)) < 0)
            return -E2BIG;
    return 0;
}

/* Our Contact for the dialog: the address the request came in on (or its Request-URI
 * host), with the transport. */
static void local_contact(const struct core_req *r, char *out, size_t cap)
{
    const struct net_rx *rx = r->rx;
    char a[80] = "";
    if (rx->local && (rx->local->ss_family == AF_INET || rx->local->ss_family == AF_INET6) &&
        !net_addr_is_wildcard(rx->local))
        net_addr_str(rx->local, a, sizeof a);
    if (!a[0]) {
        const struct sip_uri *u = &r->m->ruri;
        if (u->has_port)
            snprintf(a, sizeof a, "%.*s:%u", STR_FMT(u->host), u->port);
        else
            snprintf(a, sizeof a, "%.*s", STR_FMT(u->host));
    }
    const char *tp = rx->transport == TRANSPORT_UDP ? "" : transport_name(rx->transport);
    snprintf(out, cap, "<sip:%.*s@%s%s%s>", STR_FMT(r->user), a, *tp ? ";transport=" : "", tp);
}

/* Whether the request's sender sits behind a NAT (its Via sent-by is not its source). */
static bool behind_nat(const struct core_req *r)
{
    const struct sip_via *v = &r->m->via;
    uint16_t vport = v->has_port ? v->port : 5060;
    if (v->received.len)
        return true;
    return vport != net_addr_port(&r->rx->src);
}

/* Where NOTIFYs go: the flow the SUBSCRIBE came on (stream), its source when the watcher
 * is behind a NAT (UDP), else the Contact; a Route set when proxies record-routed. */
static void set_reach(struct sub *s, const struct core_req *r, bool routed)
{
    s->transport = (uint8_t)r->rx->transport;
    s->flow_id = 0;
    s->has_addr = false;
    if (routed)
        return;
    if (r->rx->transport != TRANSPORT_UDP) {
        s->flow_id = r->rx->flow_id;
        s->addr = r->rx->src;
    } else if (behind_nat(r)) {
        s->addr = r->rx->src;
        s->has_addr = true;
    }
}

static str pack(char **at, str v)
{
    if (v.len)
        memcpy(*at, v.s, v.len);
    str r = str_make(*at, v.len);
    *at += v.len;
    **at = 0;
    (*at)++;
    return r;
}

static uint32_t sub_expires(struct presence *p, struct core_req *r, bool *too_brief)
{
    const struct config *cfg = p->cfg;
    uint32_t exp = cfg->presence.default_expires;
    if (r->m->expires >= 0)
        exp = r->m->expires > UINT32_MAX ? UINT32_MAX : (uint32_t)r->m->expires;
    *too_brief = exp && exp < cfg->presence.min_expires;
    if (exp > cfg->presence.max_expires)
        exp = cfg->presence.max_expires;
    return exp;
}

static void answer_423(struct presence *p, struct core_req *r)
{
    char me[16];
    snprintf(me, sizeof me, "%u", p->cfg->presence.min_expires);
    struct sip_hdr_add h = { STR("Min-Expires"), str_cstr(me) };
    core_respond(r, 423, STR("Interval Too Brief"), &h, 1, STR_NULL, STR_NULL);
}

static void answer_200(struct core_req *r, uint32_t exp, str contact)
{
    char es[16];
    snprintf(es, sizeof es, "%u", exp);
    struct sip_hdr_add h[2] = { { STR("Expires"), str_cstr(es) }, { STR("Contact"), contact } };
    core_respond(r, 200, STR_NULL, h, 2, STR_NULL, STR_NULL);
}

void pres__subscribe(struct presence *p, struct core_req *r)
{
    const struct sip_msg *m = r->m;
    unsigned wi = worker_index(core_worker(r->sw));
    struct pres_worker *pw = wi < PRES_MAX_WORKERS ? p->pw[wi] : NULL;
    str ev = pres__event(m);
    bool winfo = str_caseeq(ev, STR("presence.winfo"));
    if (!pw || (!winfo && !str_caseeq(ev, STR("presence")))) {
        core_respond(r, 489, STR("Bad Event"), &allow_events, 1, STR_NULL, STR_NULL);
        return;
    }
    str want = winfo ? STR("application/watcherinfo+xml") : STR("application/pidf+xml");
    if (!accepts(m, want)) {
        struct sip_hdr_add h = { STR("Accept"), want };
        core_respond(r, 406, STR("Not Acceptable: this event package is sent as its RFC's type"),
                     &h, 1, STR_NULL, STR_NULL);
        return;
    }
    str target = first_contact(m);
    if (!target.len) {
        pres__respond(r, 400, "Bad Request: a SUBSCRIBE needs a Contact", NULL, 0);
        return;
    }
    bool brief;
    uint32_t exp = sub_expires(p, r, &brief);
    if (brief) {
        answer_423(p, r);
        return;
    }
    char wkey[STORE_URI_MAX + 8];
    if (pres__watcher_key(p, r->sw, m->from.uri, wkey, sizeof wkey) < 0) {
        pres__respond(r, 400, "Bad Request: the From is not a usable address", NULL, 0);
        return;
    }
    str watcher = str_cstr(wkey);
    if (winfo && !str_eq(watcher, r->user)) {
        pres__respond(r, 403, "Forbidden: only the user may watch who watches it", NULL, 0);
        return;
    }
    struct buf routes;
    buf_init(&routes, 500);
    if (route_set(m, &routes) < 0) {
        buf_free(&routes);
        pres__respond(r, 400, "Bad Request: the Record-Route set is too long", NULL, 0);
        return;
    }
    char contact[320], tag[32];
    local_contact(r, contact, sizeof contact);
    core_to_tag(r, tag, sizeof tag);
    const struct sip_hdr *fromh = sip_msg_hdr(m, SIP_H_FROM), *toh = sip_msg_hdr(m, SIP_H_TO);
    /* the decision and the counters, under the shared lock */
    const struct config *cfg = p->cfg;
    const char *refuse = NULL;
    uint16_t refuse_status = 403;
    enum store_pres_action act = STORE_PRES_ALLOW;
    uint64_t wid = 0;
    pthread_mutex_lock(&p->lock);
    if (!winfo)
        act = pres__decide(p, r->user, watcher);
    struct pent *e = NULL;
    uintptr_t nw = (uintptr_t)map_get_str(p->per_watcher, watcher);
    if (act == STORE_PRES_BLOCK) {
        refuse = "Forbidden: the user does not share presence with you";
    } else if (p->nsubs >= cfg->presence.max_subscriptions) {
        refuse = "Service Unavailable: too many subscriptions", refuse_status = 503;
    } else if (nw >= cfg->presence.max_subscriptions_per_watcher) {
        refuse = "Forbidden: too many subscriptions from this watcher";
    } else if (!(e = pres__pent(p, r->user, true))) {
        refuse = "Server Internal Error: out of memory", refuse_status = 500;
    } else if (!winfo && e->nsubs >= cfg->presence.max_subscriptions_per_presentity) {
        refuse = "Forbidden: too many subscriptions to this user";
    } else if (map_set_str(p->per_watcher, watcher, (void *)(nw + 1), NULL) < 0) {
        refuse = "Server Internal Error: out of memory", refuse_status = 500;
    } else {
        p->nsubs++;
        if (!winfo) {
            e->nsubs++;
            struct wrec *w = calloc(1, sizeof *w);
            char *u = str_dup(m->from.uri);
            if (w && u) {
                w->id = wid = ++p->wrec_seq;
                w->uri = u;
                w->status = act == STORE_PRES_PENDING ? W_PENDING : W_ACTIVE;
                w->event = act == STORE_PRES_PENDING ? "subscribe" : "approved";
                w->since_ms = r->now;
                w->next = e->watchers;
                e->watchers = w;
            } else {
                free(w);
                free(u);
            }
        }
    }
    if (refuse && e)
        pres__pent_gc(p, e);
    pthread_mutex_unlock(&p->lock);
    if (refuse) {
        buf_free(&routes);
        pres__respond(r, refuse_status, refuse, NULL, 0);
        return;
    }
    atomic_fetch_add(&p->nsubs_live, 1);
    struct sub *s = calloc(1, sizeof *s);
    str parts[] = { m->call_id, str_cstr(tag), m->from.tag, fromh->value, toh->value,
                    target, buf_str(&routes), r->user, watcher, m->from.uri,
                    str_cstr(contact) };
    size_t total = m->call_id.len + 1 + strlen(tag) + 1;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        total += parts[i].len + 1;
    char *data = s ? malloc(total) : NULL;
    if (!s || !data) {
        free(s);
        free(data);
        buf_free(&routes);
        struct sub tmp = { .watcher = watcher, .presentity = r->user, .winfo = winfo,
                           .wrec_id = wid, .counted = true };
        release_shared(p, &tmp);
        pres__respond(r, 500, "Server Internal Error: out of memory", NULL, 0);
        return;
    }
    s->pw = pw;
    s->data = data;
    s->counted = true;
    s->winfo = winfo;
    s->action = (uint8_t)act;
    s->state = (uint8_t)(act == STORE_PRES_PENDING ? SUB_PENDING : SUB_ACTIVE);
    s->wrec_id = wid;
    s->remote_cseq = m->cseq.num;
    char *at = data;
    /* the dialog key: Call-ID, a unit separator, our tag */
    memcpy(at, m->call_id.s, m->call_id.len);
    at[m->call_id.len] = '\x1f';
    memcpy(at + m->call_id.len + 1, tag, strlen(tag));
    s->key = str_make(at, m->call_id.len + 1 + strlen(tag));
    at += s->key.len;
    *at++ = 0;
    s->call_id = pack(&at, parts[0]);
    s->local_tag = pack(&at, parts[1]);
    s->remote_tag = pack(&at, parts[2]);
    s->remote_to = pack(&at, parts[3]);
    s->local_from = pack(&at, parts[4]);
    s->target = pack(&at, parts[5]);
    s->route = pack(&at, parts[6]);
    s->presentity = pack(&at, parts[7]);
    s->watcher = pack(&at, parts[8]);
    s->watcher_uri = pack(&at, parts[9]);
    s->contact = pack(&at, parts[10]);
    buf_free(&routes);
    set_reach(s, r, s->route.len > 0);
    s->expires = r->now + (uint64_t)exp * 1000;
    if (s->expires < pw->next_expiry)
        pw->next_expiry = s->expires;
    pw->alive++;
    if (map_set_str(pw->dialogs, s->key, s, NULL) < 0) {
        s->dead = true;
        release_shared(p, s);
        sub_free(s);
        pres__respond(r, 500, "Server Internal Error: out of memory", NULL, 0);
        return;
    }
    link_pent(pw, s);
    answer_200(r, exp, s->contact);
    log_debug("presence", "%.*s subscribed to %.*s%s (%s, %u s)", STR_FMT(watcher),
              STR_FMT(r->user), winfo ? " (watcher info)" : "",
              store_pres_action_name(act), exp);
    if (exp == 0) /* a fetch: one NOTIFY with the state, and the end */
        terminate(s, "timeout", r->now);
    else
        send_notify(s, r->now);
    if (!winfo)
        pres__post(p, PC_WINFO, r->user, 0);
}

bool pres__sub_in_dialog(struct presence *p, struct core_req *r)
{
    const struct sip_msg *m = r->m;
    unsigned wi = worker_index(core_worker(r->sw));
    struct pres_worker *pw = wi < PRES_MAX_WORKERS ? p->pw[wi] : NULL;
    if (!pw)
        return false;
    char key[512];
    int n = snprintf(key, sizeof key, "%.*s\x1f%.*s", STR_FMT(m->call_id), STR_FMT(m->to.tag));
    if (n < 0 || (size_t)n >= sizeof key)
        return false;
    struct sub *s = map_get_str(pw->dialogs, str_make(key, (size_t)n));
    if (!s || !str_eq(s->remote_tag, m->from.tag))
        return false;
    if (m->method != SIP_M_SUBSCRIBE) {
        struct sip_hdr_add h = { STR("Allow"), STR("SUBSCRIBE") };
        core_respond(r, 405, STR("Method Not Allowed: only SUBSCRIBE inside a subscription"), &h,
                     1, STR_NULL, STR_NULL);
        return true;
    }
    str ev = pres__event(m);
    if (!str_caseeq(ev, s->winfo ? STR("presence.winfo") : STR("presence"))) {
        core_respond(r, 489, STR("Bad Event: not the event of this subscription"),
                     &allow_events, 1, STR_NULL, STR_NULL);
        return true;
    }
    if (m->cseq.num <= s->remote_cseq) {
        pres__respond(r, 500, "Server Internal Error: CSeq out of order", NULL, 0);
        return true;
    }
    bool brief;
    uint32_t exp = sub_expires(p, r, &brief);
    if (brief) {
        answer_423(p, r);
        return true;
    }
    s->remote_cseq = m->cseq.num;
    /* a target refresh: the Contact may have changed, and where it is reached from */
    str target = first_contact(m);
    if (target.len && !str_eq(target, s->target)) {
        char *nd = NULL;
        size_t used = (size_t)(s->contact.s + s->contact.len + 1 - s->data);
        if ((nd = realloc(NULL, used + target.len + 1))) {
            memcpy(nd, s->data, used);
            ptrdiff_t shift = nd - s->data;
            str *fields[] = { &s->key, &s->call_id, &s->local_tag, &s->remote_tag,
                              &s->remote_to, &s->local_from, &s->route, &s->presentity,
                              &s->watcher, &s->watcher_uri, &s->contact };
            /* the map holds its own copy of the key; the list head is by pointer */
            unlink_pent(pw, s);
            for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
                fields[i]->s += shift;
            char *at = nd + used;
            s->target = pack(&at, target);
            free(s->data);
            s->data = nd;
            link_pent(pw, s);
        }
    }
    set_reach(s, r, s->route.len > 0);
    answer_200(r, exp, s->contact);
    if (exp == 0) {
        terminate(s, "timeout", r->now);
        return true;
    }
    s->expires = r->now + (uint64_t)exp * 1000;
    if (s->expires < pw->next_expiry)
        pw->next_expiry = s->expires;
    send_notify(s, r->now);
    return true;
}

/* ---- changes ---- */

static void reauthorize(struct presence *p, struct sub *s, uint64_t now)
{
    pthread_mutex_lock(&p->lock);
    enum store_pres_action a = pres__decide(p, s->presentity, s->watcher);
    bool changed = a != s->action;
    if (changed && a != STORE_PRES_BLOCK) {
        struct pent *e = pres__pent(p, s->presentity, false);
        for (struct wrec *w = e ? e->watchers : NULL; w; w = w->next)
            if (w->id == s->wrec_id) {
                w->status = a == STORE_PRES_PENDING ? W_PENDING : W_ACTIVE;
                w->event = a == STORE_PRES_PENDING ? "subscribe" : "approved";
            }
    }
    pthread_mutex_unlock(&p->lock);
    if (!changed)
        return;
    log_debug("presence", "%.*s watching %.*s: %s → %s", STR_FMT(s->watcher),
              STR_FMT(s->presentity), store_pres_action_name(s->action),
              store_pres_action_name(a));
    s->action = (uint8_t)a;
    if (a == STORE_PRES_BLOCK) {
        terminate(s, "rejected", now);
        return;
    }
    s->state = (uint8_t)pres_sub_state_for(a);
    send_notify(s, now);
    pres__post(p, PC_WINFO, s->presentity, 0);
}

void pres__worker_change(struct presence *p, struct pres_worker *pw, enum pres_change kind,
                         str user, uint64_t flow)
{
    if (pw->stopping)
        return;
    uint64_t now = now_of(pw);
    if (kind == PC_FLOW) {
        struct sub *gone[256];
        size_t n = 0;
        struct map_iter it = MAP_ITER_INIT;
        struct map_entry me;
        while (map_next(pw->dialogs, &it, &me) && n < 256) {
            struct sub *s = me.val;
            if (s->flow_id == flow)
                gone[n++] = s;
        }
        for (size_t i = 0; i < n; i++) {
            log_debug("presence", "%.*s left (its connection closed): subscription to %.*s ended",
                      STR_FMT(gone[i]->watcher_uri), STR_FMT(gone[i]->presentity));
            terminate(gone[i], NULL, now);
        }
        return;
    }
    /* collect first: a NOTIFY that fails at once unlinks its subscription */
    struct sub *v[1024];
    size_t n = 0;
    for (struct sub *s = map_get_str(pw->by_pent, user); s && n < 1024; s = s->next_p) {
        if (kind == PC_WINFO && s->winfo && s->state == SUB_ACTIVE)
            v[n++] = s;
        else if (kind == PC_DOC && !s->winfo && s->state == SUB_ACTIVE &&
                 s->action == STORE_PRES_ALLOW)
            v[n++] = s;
        else if (kind == PC_RULES && !s->winfo)
            v[n++] = s;
    }
    for (size_t i = 0; i < n; i++) {
        if (kind == PC_RULES)
            reauthorize(p, v[i], now);
        else
            send_notify(v[i], now);
    }
}

void pres__sub_tick(struct presence *p, struct pres_worker *pw, uint64_t now)
{
    (void)p;
    if (now < pw->next_expiry)
        return; /* nothing can have expired: no walk */
    struct sub *v[1024];
    size_t n = 0;
    uint64_t next = UINT64_MAX;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry me;
    while (map_next(pw->dialogs, &it, &me)) {
        struct sub *s = me.val;
        if (s->expires > now) {
            if (s->expires < next)
                next = s->expires;
        } else if (n < 1024) {
            v[n++] = s;
        } else {
            next = now; /* more next second */
        }
    }
    pw->next_expiry = next;
    for (size_t i = 0; i < n; i++)
        terminate(v[i], "timeout", now);
}

struct pres_worker *pres__worker_new(struct presence *p, struct sip_worker *sw)
{
    struct pres_worker *pw = calloc(1, sizeof *pw);
    if (!pw)
        return NULL;
    pw->p = p;
    pw->sw = sw;
    pw->next_expiry = UINT64_MAX;
    if (map_new(&pw->dialogs, MAP_KEY_STR, 1024) < 0 || map_new(&pw->by_pent, MAP_KEY_STR, 1024) < 0) {
        map_free(pw->dialogs);
        free(pw);
        return NULL;
    }
    return pw;
}

void pres__worker_stop(struct pres_worker *pw)
{
    if (!pw)
        return;
    pw->stopping = true;
    pw->alive++; /* holds pw through the loop below */
    /* every subscription ends here (their dialogs do not survive a restart) */
    for (;;) {
        struct map_iter it = MAP_ITER_INIT;
        struct map_entry me;
        if (!map_next(pw->dialogs, &it, &me))
            break;
        terminate(me.val, NULL, 0);
    }
    if (--pw->alive == 0) {
        map_free(pw->dialogs);
        map_free(pw->by_pent);
        free(pw);
    }
    /* else the last NOTIFY's answer (or the transaction table's end) frees it */
}
