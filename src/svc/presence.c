/*
 * svc/presence — shared state of the presence agent: presentities and their
 * publications (PUBLISH, RFC 3903), the aggregated documents, the watcher
 * lists (RFC 3857), the presence rules kept in step with the store, and the
 * posting of changes to the workers. Subscriptions: presence_sub.c.
 */
#include "svc/presence_int.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/random.h"
#include "net/worker.h"
#include "sip/txn.h"

/* ---- small helpers ---- */

void pres__respond(struct core_req *r, uint16_t status, const char *reason,
                   const struct sip_hdr_add *h, size_t nh)
{
    core_respond(r, status, str_cstr(reason), h, nh, STR_NULL, STR_NULL);
}

str pres__event(const struct sip_msg *m)
{
    str pkg, params;
    if (!m->event.len || sip_value_split(m->event, &pkg, &params) < 0)
        return STR_NULL;
    return str_trim(pkg);
}

static bool is_our_domain(struct presence *p, str host)
{
    str list = str_cstr(p->cfg->server.domain);
    while (list.len) {
        ssize_t comma = str_find_char(list, ',');
        str d = str_trim(comma < 0 ? list : str_sub(list, 0, (size_t)comma));
        if (d.len && str_caseeq(d, host))
            return true;
        list = comma < 0 ? STR_NULL : str_skip(list, (size_t)comma + 1);
    }
    return false;
}

ssize_t pres__watcher_key(struct presence *p, struct sip_worker *sw, str uri, char *out,
                          size_t cap)
{
    uri = str_trim(uri);
    if (uri.len && uri.s[0] == '<' && uri.s[uri.len - 1] == '>')
        uri = str_sub(uri, 1, uri.len - 2);
    if (str_has_caseprefix(uri, STR("sip:")))
        uri = str_skip(uri, 4);
    else if (str_has_caseprefix(uri, STR("sips:")))
        uri = str_skip(uri, 5);
    /* drop parameters and headers */
    for (size_t i = 0; i < uri.len; i++)
        if (uri.s[i] == ';' || uri.s[i] == '?' || uri.s[i] == '>') {
            uri = str_sub(uri, 0, i);
            break;
        }
    ssize_t at = -1;
    for (size_t i = 0; i < uri.len; i++)
        if (uri.s[i] == '@')
            at = (ssize_t)i;
    if (!uri.len || at == 0)
        return -EINVAL;
    if (at < 0)
        return str_copy(out, cap, uri); /* a user name of ours */
    str user = str_sub(uri, 0, (size_t)at), host = str_skip(uri, (size_t)at + 1);
    /* a port is not part of the identity */
    ssize_t colon = host.len && host.s[0] != '[' ? str_find_char(host, ':') : -1;
    if (colon >= 0)
        host = str_sub(host, 0, (size_t)colon);
    str canon;
    if (is_our_domain(p, host) || (sw && core_canonical_domain(sw, host, &canon)))
        return str_copy(out, cap, user);
    if (user.len + 1 + host.len + 1 > cap)
        return -EINVAL;
    memcpy(out, user.s, user.len);
    out[user.len] = '@';
    for (size_t i = 0; i < host.len; i++)
        out[user.len + 1 + i] = (char)str_lower((unsigned char)host.s[i]);
    out[user.len + 1 + host.len] = 0;
    return (ssize_t)(user.len + 1 + host.len);
}

/* ---- presentities ---- */

struct pent *pres__pent(struct presence *p, str user, bool create)
{
    struct pent *e = map_get_str(p->pents, user);
    if (e || !create)
        return e;
    e = calloc(1, sizeof *e);
    if (!e || !(e->user = str_dup(user)) || map_set_str(p->pents, user, e, NULL) < 0) {
        if (e)
            free(e->user);
        free(e);
        return NULL;
    }
    return e;
}

static void pub_free(struct pub *b)
{
    pidf_free(b->doc);
    free(b);
}

void pres__pent_gc(struct presence *p, struct pent *e)
{
    if (e->pubs || e->nsubs || e->watchers || e->pwatches)
        return;
    map_del_str(p->pents, str_cstr(e->user));
    free(e->doc);
    free(e->user);
    free(e);
}

static void pent_invalidate(struct pent *e)
{
    free(e->doc);
    e->doc = NULL;
    e->doclen = 0;
}

int pres__document(struct presence *p, struct pent *e, str user, struct buf *out, uint64_t now)
{
    (void)now;
    char entity[STORE_NAME_MAX + 300];
    snprintf(entity, sizeof entity, "sip:%.*s@%s", STR_FMT(user), p->realm);
    if (e && e->doc)
        return buf_append(out, e->doc, e->doclen);
    /* publications, newest first (the list is kept in that order) */
    const struct pidf_doc *docs[64];
    size_t nd = 0;
    for (struct pub *b = e ? e->pubs : NULL; b && nd < 64; b = b->next)
        docs[nd++] = b->doc;
    /* registered devices */
    struct pidf_reg reg[16];
    char ids[16][24];
    size_t nr = 0;
    struct arena *a = NULL;
    /* a registered device speaks for the user only while nothing is published: a device
     * that publishes names itself (often by the AOR, not its binding), so a binding cannot
     * be told apart from a publishing device, and its publication must win */
    if (p->reg_open && p->loc && nd == 0 && arena_new(&a, 8192, 1u << 20) == 0) {
        char aor[LOC_AOR_MAX + 2];
        snprintf(aor, sizeof aor, "%.*s@%s", STR_FMT(user), p->realm);
        struct loc_binding *b;
        size_t n = 0;
        if (loc_lookup(p->loc, str_cstr(aor), now, a, &b, &n) == 0) {
            for (size_t i = 0; i < n && nr < 16; i++) {
                uint8_t key[16] = { 0 };
                snprintf(ids[nr], sizeof ids[nr], "reg-%08llx",
                         (unsigned long long)(map_siphash(key, b[i].contact_key.s,
                                                          b[i].contact_key.len, false) &
                                              0xffffffffULL));
                reg[nr].id = str_cstr(ids[nr]);
                reg[nr].contact = b[i].contact;
                nr++;
            }
        }
    }
    size_t start = out->len;
    int rc = pidf_aggregate(out, str_cstr(entity), docs, nd, reg, nr);
    arena_free(a);
    if (rc == 0 && e) {
        e->doc = malloc(out->len - start);
        if (e->doc) {
            memcpy(e->doc, out->data + start, out->len - start);
            e->doclen = out->len - start;
        }
    }
    return rc;
}

static const char *wstatus_name(enum wstatus s)
{
    switch (s) {
    case W_PENDING: return "pending";
    case W_ACTIVE: return "active";
    case W_WAITING: return "waiting";
    default: return "terminated";
    }
}

int pres__winfo_document(struct presence *p, struct pent *e, str user, uint32_t version,
                         struct buf *out, uint64_t now)
{
    int rc = buf_printf(out,
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                        "<watcherinfo xmlns=\"urn:ietf:params:xml:ns:watcherinfo\" "
                        "version=\"%u\" state=\"full\">\n"
                        "<watcher-list resource=\"sip:%.*s@%s\" package=\"presence\">\n",
                        version, STR_FMT(user), p->realm);
    for (struct wrec *w = e ? e->watchers : NULL; w && rc == 0; w = w->next) {
        unsigned long long secs = now > w->since_ms ? (now - w->since_ms) / 1000 : 0;
        rc = buf_printf(out, "<watcher id=\"w%llu\" status=\"%s\" event=\"%s\" "
                             "duration-subscribed=\"%llu\">",
                        (unsigned long long)w->id, wstatus_name(w->status), w->event, secs);
        rc = rc ? rc : pidf_escape(out, str_cstr(w->uri));
        rc = rc ? rc : buf_printf(out, "</watcher>\n");
    }
    return rc ? rc : buf_printf(out, "</watcher-list>\n</watcherinfo>\n");
}

/* ---- rules ---- */

static void orules_free(struct orules *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++)
        free(o->w[i]);
    for (size_t i = 0; i < o->nc; i++)
        free(o->c[i]);
    free(o->w);
    free(o->a);
    free(o->c);
    free(o);
}

enum store_pres_action pres__decide(struct presence *p, str owner, str watcher)
{
    if (str_eq(owner, watcher))
        return STORE_PRES_ALLOW; /* the user's own devices */
    struct orules *o = map_get_str(p->rules, owner);
    if (o) {
        for (size_t i = 0; i < o->n; i++)
            if (str_eq(str_cstr(o->w[i]), watcher))
                return (enum store_pres_action)o->a[i];
        if (p->contacts_allowed)
            for (size_t i = 0; i < o->nc; i++)
                if (str_eq(str_cstr(o->c[i]), watcher))
                    return STORE_PRES_ALLOW;
    }
    return p->default_allow ? STORE_PRES_ALLOW : STORE_PRES_PENDING;
}

/* Rules being read on the store thread: owner → struct orules, swapped in at the end. */
struct rules_load {
    struct presence *p;
    struct map *m;
    int rc;
};

static struct orules *rules_for(struct rules_load *l, str owner)
{
    struct orules *o = map_get_str(l->m, owner);
    if (o)
        return o;
    o = calloc(1, sizeof *o);
    if (!o || map_set_str(l->m, owner, o, NULL) < 0) {
        free(o);
        return NULL;
    }
    return o;
}

static int grow_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof **v);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

static int load_rule(void *ctx, str owner, str watcher, enum store_pres_action a)
{
    struct rules_load *l = ctx;
    char key[STORE_URI_MAX + 8];
    if (pres__watcher_key(l->p, NULL, watcher, key, sizeof key) < 0)
        return 0;
    struct orules *o = rules_for(l, owner);
    if (!o)
        return -ENOMEM;
    uint8_t *na = realloc(o->a, o->n + 1);
    if (!na)
        return -ENOMEM;
    o->a = na;
    o->a[o->n] = (uint8_t)a;
    size_t n = o->n;
    if (grow_push(&o->w, &n, key) < 0)
        return -ENOMEM;
    o->n = n;
    return 0;
}

static int load_contact(void *ctx, str owner, str uri)
{
    struct rules_load *l = ctx;
    char key[STORE_URI_MAX + 8];
    if (pres__watcher_key(l->p, NULL, uri, key, sizeof key) < 0)
        return 0;
    struct orules *o = rules_for(l, owner);
    return o ? grow_push(&o->c, &o->nc, key) : -ENOMEM;
}

struct owner_ctx {
    struct rules_load *l;
    str owner;
};

static int load_owner_rule(void *ctx, str watcher, enum store_pres_action a)
{
    struct owner_ctx *c = ctx;
    return load_rule(c->l, c->owner, watcher, a);
}

static int load_owner_contact(void *ctx, const struct store_contact *sc)
{
    struct owner_ctx *c = ctx;
    return load_contact(c->l, c->owner, sc->uri);
}

/* Swaps the owners of l into the shared table (owners in names with no entry: none). */
static void rules_swap(struct presence *p, struct map *m, const str *owners, size_t n)
{
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        struct orules *o = map_del_str(m, owners[i]);
        struct orules *old = map_del_str(p->rules, owners[i]);
        if (o && map_set_str(p->rules, owners[i], o, NULL) < 0)
            orules_free(o);
        orules_free(old);
    }
    pthread_mutex_unlock(&p->lock);
}

/* Re-reads the rules and contacts of each owner (store thread), applies them, tells the
 * workers. */
static int reload_owners(struct presence *p, struct store *s, const str *owners, size_t n)
{
    struct rules_load l = { .p = p };
    if (map_new(&l.m, MAP_KEY_STR, 16) < 0)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct owner_ctx c = { &l, owners[i] };
        rc = store_pres_rule_list(s, owners[i], load_owner_rule, &c);
        if (rc == 0)
            rc = store_contact_list(s, owners[i], load_owner_contact, &c);
    }
    if (rc == 0)
        rules_swap(p, l.m, owners, n);
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry me;
    while (map_next(l.m, &it, &me))
        orules_free(me.val);
    map_free(l.m);
    if (rc == 0)
        for (size_t i = 0; i < n; i++)
            pres__post(p, PC_RULES, owners[i], 0);
    return rc;
}

struct changes {
    struct map *seen;
    str owners[256];
    size_t n;
    int64_t last;
};

static int change_row(void *ctx, int64_t id, str owner)
{
    struct changes *c = ctx;
    c->last = id;
    if (c->n < 256 && !map_get_str(c->seen, owner)) {
        if (map_set_str(c->seen, owner, (void *)1, NULL) < 0)
            return -ENOMEM;
        struct map_entry e;
        struct map_iter it = MAP_ITER_INIT;
        /* the map's own copy of the key outlives this row */
        while (map_next(c->seen, &it, &e))
            if (str_eq(e.skey, owner)) {
                c->owners[c->n++] = e.skey;
                break;
            }
    }
    return 0;
}

static int poll_job(struct store *s, void *arg)
{
    struct presence *p = arg;
    struct changes c = { .last = atomic_load(&p->change_seq) };
    int rc = map_new(&c.seen, MAP_KEY_STR, 16);
    if (rc == 0)
        rc = store_pres_changes(s, c.last, change_row, &c);
    if (rc == 0 && c.n)
        rc = reload_owners(p, s, c.owners, c.n);
    if (rc == 0) {
        atomic_store(&p->change_seq, c.last);
        static _Thread_local uint64_t last_trim;
        uint64_t now = clock_wall_ms();
        if (now - last_trim > 3600 * 1000) {
            last_trim = now;
            store_pres_changes_trim(s, (int64_t)now - 3600 * 1000);
        }
    } else {
        log_warn("presence", "cannot read presence rule changes: %s", store_errmsg(s));
    }
    map_free(c.seen);
    atomic_store(&p->polling, false);
    return rc;
}

struct one_owner {
    struct presence *p;
    char owner[STORE_NAME_MAX + 1];
};

static int owner_job(struct store *s, void *arg)
{
    struct one_owner *o = arg;
    str owner = str_cstr(o->owner);
    int rc = reload_owners(o->p, s, &owner, 1);
    if (rc < 0)
        log_warn("presence", "cannot reload the rules of %s: %s", o->owner, store_errmsg(s));
    free(o);
    return rc;
}

void pres_rules_changed(struct presence *p, str owner)
{
    if (!p || !p->st || !store_name_valid(owner))
        return;
    struct one_owner *o = calloc(1, sizeof *o);
    if (!o)
        return;
    o->p = p;
    str_copy(o->owner, sizeof o->owner, owner);
    if (store_thread_submit(p->st, NULL, owner_job, NULL, o) < 0)
        free(o);
}

/* ---- loading at start ---- */

struct sync_job {
    struct presence *p;
    sem_t done;
    int rc;
    size_t rules;
};

static void sync_done(struct worker *w, int rc, void *arg)
{
    (void)w;
    struct sync_job *j = arg;
    j->rc = rc;
    sem_post(&j->done);
}

static int load_job(struct store *s, void *arg)
{
    struct sync_job *j = arg;
    struct presence *p = j->p;
    struct rules_load l = { .p = p };
    int64_t last = 0;
    int rc = map_new(&l.m, MAP_KEY_STR, 64);
    if (rc == 0)
        rc = store_pres_changes_last(s, &last);
    if (rc == 0)
        rc = store_pres_rule_all(s, load_rule, &l);
    if (rc == 0 && p->contacts_allowed)
        rc = store_contact_all(s, load_contact, &l);
    if (rc == 0) {
        pthread_mutex_lock(&p->lock);
        struct map *old = p->rules;
        p->rules = l.m;
        l.m = old;
        j->rules = map_count(p->rules);
        pthread_mutex_unlock(&p->lock);
        atomic_store(&p->change_seq, last);
    }
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry me;
    while (l.m && map_next(l.m, &it, &me))
        orules_free(me.val);
    map_free(l.m);
    return rc;
}

int pres_load(struct presence *p)
{
    if (!p->st)
        return 0;
    struct sync_job j = { .p = p };
    sem_init(&j.done, 0, 0);
    int rc = store_thread_submit(p->st, NULL, load_job, sync_done, &j);
    if (rc == 0) {
        while (sem_wait(&j.done) < 0)
            ;
        rc = j.rc;
    }
    sem_destroy(&j.done);
    if (rc == 0)
        log_info("presence", "presence rules of %zu user(s) loaded", j.rules);
    return rc;
}

/* ---- changes to the workers ---- */

struct change_task {
    struct presence *p;
    enum pres_change kind;
    uint64_t flow;
    size_t len;
    char user[];
};

static void change_run(struct worker *w, void *arg)
{
    struct change_task *t = arg;
    struct presence *p = t->p;
    unsigned i = worker_index(w);
    if (i < PRES_MAX_WORKERS && p->pw[i])
        pres__worker_change(p, p->pw[i], t->kind, str_make(t->user, t->len), t->flow);
    free(t);
}

static void run_pwatches(struct presence *p, str user);

void pres__post(struct presence *p, enum pres_change kind, str user, uint64_t flow)
{
    if (kind == PC_DOC || kind == PC_RULES)
        run_pwatches(p, user);
    struct worker *ws[PRES_MAX_WORKERS];
    pthread_mutex_lock(&p->lock);
    unsigned n = p->nworkers;
    memcpy(ws, p->workers, n * sizeof ws[0]);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = ws[i];
        if (!w)
            continue;
        struct change_task *t = malloc(sizeof *t + user.len + 1);
        if (!t)
            continue;
        t->p = p;
        t->kind = kind;
        t->flow = flow;
        t->len = user.len;
        if (user.len)
            memcpy(t->user, user.s, user.len);
        t->user[user.len] = 0;
        if (worker_post(w, change_run, t) < 0)
            free(t);
    }
}

void pres_loc_hook(void *ctx, str aor, enum loc_event ev, const struct loc_binding *b,
                   size_t remaining)
{
    struct presence *p = ctx;
    (void)b, (void)remaining;
    if (ev == LOC_UPDATED)
        return; /* a refresh changes nothing a watcher sees */
    ssize_t at = -1;
    for (size_t i = 0; i < aor.len; i++)
        if (aor.s[i] == '@')
            at = (ssize_t)i;
    if (at <= 0)
        return;
    str user = str_sub(aor, 0, (size_t)at);
    pthread_mutex_lock(&p->lock);
    struct pent *e = pres__pent(p, user, false);
    bool watched = e && (e->nsubs || e->pwatches);
    if (e)
        pent_invalidate(e);
    pthread_mutex_unlock(&p->lock);
    if (watched)
        pres__post(p, PC_DOC, user, 0);
}

void pres_flow_closed(struct presence *p, uint64_t flow_id)
{
    if (flow_id)
        pres__post(p, PC_FLOW, STR_NULL, flow_id);
}

/* ---- PUBLISH (RFC 3903) ---- */

static struct pub *find_pub(struct pent *e, str etag)
{
    for (struct pub *b = e ? e->pubs : NULL; b; b = b->next)
        if (str_eq(str_cstr(b->etag), etag))
            return b;
    return NULL;
}

static void unlink_pub(struct pent *e, struct pub *x)
{
    for (struct pub **pp = &e->pubs; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            e->npubs--;
            return;
        }
}

static bool ctype_is(str ct, str want)
{
    str first, params;
    if (sip_value_split(ct, &first, &params) < 0)
        return false;
    return str_caseeq(str_trim(first), want);
}

void pres__publish(struct presence *p, struct core_req *r)
{
    const struct sip_msg *m = r->m;
    static const struct sip_hdr_add allow_ev = { STR("Allow-Events"), STR("presence") };
    str ev = pres__event(m);
    if (!str_caseeq(ev, STR("presence"))) {
        core_respond(r, 489, STR("Bad Event: only the presence event can be published"),
                     &allow_ev, 1, STR_NULL, STR_NULL);
        return;
    }
    /* only the user publishes the user's presence */
    char wkey[STORE_URI_MAX + 8];
    if (pres__watcher_key(p, r->sw, m->from.uri, wkey, sizeof wkey) < 0 ||
        !str_eq(str_cstr(wkey), r->user) ||
        (r->auth_user.len && !str_eq(r->auth_user, r->user))) {
        pres__respond(r, 403, "Forbidden: only the user may publish its own presence", NULL, 0);
        return;
    }
    const struct config *cfg = p->cfg;
    uint32_t exp = cfg->presence.publish_default_expires;
    if (m->expires >= 0)
        exp = m->expires > UINT32_MAX ? UINT32_MAX : (uint32_t)m->expires;
    if (exp && exp < cfg->presence.publish_min_expires) {
        char me[16];
        snprintf(me, sizeof me, "%u", cfg->presence.publish_min_expires);
        struct sip_hdr_add h = { STR("Min-Expires"), str_cstr(me) };
        core_respond(r, 423, STR("Interval Too Brief"), &h, 1, STR_NULL, STR_NULL);
        return;
    }
    if (exp > cfg->presence.publish_max_expires)
        exp = cfg->presence.publish_max_expires;
    const struct sip_hdr *im = sip_msg_hdr(m, SIP_H_SIP_IF_MATCH);
    str etag = im ? str_trim(im->value) : STR_NULL;
    bool has_body = m->body.len > 0;
    if (!im && !has_body) {
        pres__respond(r, 400, "Bad Request: a PUBLISH without a body needs SIP-If-Match", NULL,
                      0);
        return;
    }
    struct pidf_doc *doc = NULL;
    if (has_body) {
        if (!ctype_is(m->content_type, STR("application/pidf+xml"))) {
            struct sip_hdr_add h = { STR("Accept"), STR("application/pidf+xml") };
            core_respond(r, 415, STR("Unsupported Media Type: presence is published as "
                                     "application/pidf+xml"),
                         &h, 1, STR_NULL, STR_NULL);
            return;
        }
        char why[120];
        int rc = pidf_parse(m->body, &doc, why, sizeof why);
        if (rc == -ENOMEM) {
            pres__respond(r, 500, "Server Internal Error: out of memory", NULL, 0);
            return;
        }
        if (rc < 0) {
            char reason[160];
            snprintf(reason, sizeof reason, "Bad Request: %s", why);
            pres__respond(r, 400, reason, NULL, 0);
            return;
        }
    }
    char newtag[PRES_ETAG_LEN + 1];
    random_token(newtag, PRES_ETAG_LEN);
    bool changed = false;
    int status = 200;
    const char *reason = NULL;
    pthread_mutex_lock(&p->lock);
    struct pent *e = pres__pent(p, r->user, true);
    struct pub *b = NULL;
    if (!e) {
        status = 500, reason = "Server Internal Error: out of memory";
    } else if (im) {
        b = find_pub(e, etag);
        if (!b || b->expires <= r->now) {
            status = 412, reason = "Conditional Request Failed: no publication has this entity-tag";
        } else if (exp == 0) { /* remove */
            unlink_pub(e, b);
            pub_free(b);
            atomic_fetch_sub(&p->npubs, 1);
            b = NULL;
            changed = true;
        } else {
            if (doc) { /* modify: it becomes the newest */
                pidf_free(b->doc);
                b->doc = doc;
                doc = NULL;
                b->seq = ++p->pub_seq;
                unlink_pub(e, b);
                b->next = e->pubs;
                e->pubs = b;
                e->npubs++;
                changed = true;
            }
            b->expires = r->now + (uint64_t)exp * 1000;
            memcpy(b->etag, newtag, sizeof newtag);
        }
    } else if (exp == 0) {
        status = 400, reason = "Bad Request: Expires: 0 without SIP-If-Match removes nothing";
    } else if (e->npubs >= cfg->presence.max_publications_per_presentity) {
        status = 403, reason = "Forbidden: too many publications for this user";
    } else {
        b = calloc(1, sizeof *b);
        if (!b) {
            status = 500, reason = "Server Internal Error: out of memory";
        } else {
            b->doc = doc;
            doc = NULL;
            b->seq = ++p->pub_seq;
            b->expires = r->now + (uint64_t)exp * 1000;
            memcpy(b->etag, newtag, sizeof newtag);
            b->next = e->pubs;
            e->pubs = b;
            e->npubs++;
            atomic_fetch_add(&p->npubs, 1);
            changed = true;
        }
    }
    bool watched = e && (e->nsubs || e->pwatches);
    if (changed && e)
        pent_invalidate(e);
    if (e)
        pres__pent_gc(p, e);
    pthread_mutex_unlock(&p->lock);
    pidf_free(doc);
    if (status != 200) {
        pres__respond(r, (uint16_t)status, reason, NULL, 0);
        return;
    }
    char es[16];
    snprintf(es, sizeof es, "%u", exp);
    struct sip_hdr_add h[2] = { { STR("Expires"), str_cstr(es) },
                                { STR("SIP-ETag"), str_cstr(newtag) } };
    core_respond(r, 200, STR_NULL, h, exp ? 2 : 1, STR_NULL, STR_NULL);
    if (changed && watched)
        pres__post(p, PC_DOC, r->user, 0);
}

/* Worker 0, once a second: publications past their expiry go (RFC 3903 §6). */
static void expire_pubs(struct presence *p, uint64_t now)
{
    str changed[64];
    char *copies[64];
    size_t nc = 0;
    pthread_mutex_lock(&p->lock);
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry me;
    while (map_next(p->pents, &it, &me)) {
        struct pent *e = me.val;
        bool any = false;
        for (struct pub **pp = &e->pubs; *pp;) {
            struct pub *b = *pp;
            if (b->expires > now) {
                pp = &b->next;
                continue;
            }
            *pp = b->next;
            e->npubs--;
            pub_free(b);
            atomic_fetch_sub(&p->npubs, 1);
            any = true;
        }
        if (!any)
            continue;
        pent_invalidate(e);
        if ((e->nsubs || e->pwatches) && nc < 64 && (copies[nc] = strdup(e->user)))
            changed[nc] = str_cstr(copies[nc]), nc++;
        if (!e->pubs && !e->nsubs && !e->watchers && !e->pwatches) {
            map_del_current(p->pents, &it);
            free(e->doc);
            free(e->user);
            free(e);
        }
    }
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < nc; i++) {
        pres__post(p, PC_DOC, changed[i], 0);
        free(copies[i]);
    }
}

/* ---- in-process watchers ---- */

/* The state an in-process watcher sees (lock held): open and the newest note. */
static bool state_of(struct presence *p, struct pent *e, str user, str *note, uint64_t now)
{
    *note = STR_NULL;
    bool open = false;
    for (struct pub *b = e ? e->pubs : NULL; b; b = b->next) {
        if (!note->len)
            *note = b->doc->note;
        for (size_t i = 0; i < b->doc->ntuples; i++) {
            if (!note->len)
                *note = b->doc->tuples[i].note;
            open |= b->doc->tuples[i].basic == PIDF_BASIC_OPEN;
        }
    }
    if (e && e->pubs)
        return open;
    if (!p->reg_open || !p->loc)
        return false;
    char aor[LOC_AOR_MAX + 2];
    snprintf(aor, sizeof aor, "%.*s@%s", STR_FMT(user), p->realm);
    struct arena *a;
    if (arena_new(&a, 4096, 1u << 20) < 0)
        return false;
    struct loc_binding *bv;
    size_t n = 0;
    open = loc_lookup(p->loc, str_cstr(aor), now, a, &bv, &n) == 0 && n > 0;
    arena_free(a);
    return open;
}

struct watch_call {
    pres_watch_fn cb;
    void *ctx;
    bool open;
    char *note;
};

/* Calls the in-process watchers of user whose view changed (no lock held during calls). */
static void run_pwatches(struct presence *p, str user)
{
    struct watch_call calls[32];
    size_t nc = 0;
    uint64_t now = clock_mono_ms();
    pthread_mutex_lock(&p->lock);
    struct pent *e = pres__pent(p, user, false);
    if (!e || !e->pwatches) {
        pthread_mutex_unlock(&p->lock);
        return;
    }
    str note;
    bool open = state_of(p, e, user, &note, now);
    for (struct pwatch *w = e->pwatches; w && nc < 32; w = w->next) {
        enum store_pres_action a = pres__decide(p, user, str_cstr(w->watcher));
        if (a == STORE_PRES_PENDING || a == STORE_PRES_BLOCK)
            continue;
        bool o = a == STORE_PRES_POLITE_BLOCK ? false : open;
        str n = a == STORE_PRES_POLITE_BLOCK ? STR_NULL : note;
        if (w->last_open == (int)o && str_eq(str_cstr(w->last_note ? w->last_note : ""), n))
            continue;
        char *copy = str_dup(n);
        char *keep = str_dup(n);
        if (!copy || !keep) {
            free(copy);
            free(keep);
            continue;
        }
        w->last_open = o;
        free(w->last_note);
        w->last_note = keep;
        calls[nc++] = (struct watch_call){ w->cb, w->ctx, o, copy };
    }
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < nc; i++) {
        calls[i].cb(calls[i].ctx, user, calls[i].open, str_cstr(calls[i].note));
        free(calls[i].note);
    }
}

int pres_watch(struct presence *p, str watcher_uri, str presentity, pres_watch_fn cb, void *ctx)
{
    char key[STORE_URI_MAX + 8];
    if (!cb || !store_name_valid(presentity) ||
        pres__watcher_key(p, NULL, watcher_uri, key, sizeof key) < 0)
        return -EINVAL;
    struct pwatch *w = calloc(1, sizeof *w);
    if (!w || !(w->watcher = strdup(key))) {
        free(w);
        return -ENOMEM;
    }
    w->cb = cb;
    w->ctx = ctx;
    w->last_open = -1;
    int rc;
    pthread_mutex_lock(&p->lock);
    struct pent *e = pres__pent(p, presentity, true);
    size_t n = 0;
    for (struct pwatch *x = e ? e->pwatches : NULL; x; x = x->next)
        n++;
    if (!e) {
        rc = -ENOMEM;
    } else if (e->nsubs + n >= p->cfg->presence.max_subscriptions_per_presentity) {
        rc = -ENOSPC;
    } else {
        w->id = rc = ++p->watch_seq;
        w->next = e->pwatches;
        e->pwatches = w;
        w = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    if (w) {
        free(w->watcher);
        free(w);
        return rc;
    }
    run_pwatches(p, presentity); /* the state now */
    return rc;
}

void pres_unwatch(struct presence *p, int id)
{
    pthread_mutex_lock(&p->lock);
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry me;
    while (map_next(p->pents, &it, &me)) {
        struct pent *e = me.val;
        for (struct pwatch **pp = &e->pwatches; *pp; pp = &(*pp)->next) {
            if ((*pp)->id != id)
                continue;
            struct pwatch *w = *pp;
            *pp = w->next;
            free(w->watcher);
            free(w->last_note);
            free(w);
            pres__pent_gc(p, e);
            pthread_mutex_unlock(&p->lock);
            return;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

/* ---- the service ---- */

int pres_new(struct presence **out, const struct config *cfg, struct sip_server *srv,
             struct store_thread *st)
{
    struct presence *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->cfg = cfg;
    p->srv = srv;
    p->st = st;
    p->reg_open = strcmp(cfg->presence.registered_means_open, "true") == 0;
    p->default_allow = strcmp(cfg->presence.default_rule, "allow") == 0;
    p->contacts_allowed = strcmp(cfg->presence.contacts_allowed, "true") == 0;
    if (store_realm_from_domain(cfg->server.domain, p->realm, sizeof p->realm) < 0)
        snprintf(p->realm, sizeof p->realm, "localhost");
    pthread_mutex_init(&p->lock, NULL);
    if (map_new(&p->pents, MAP_KEY_STR, 1024) < 0 || map_new(&p->rules, MAP_KEY_STR, 64) < 0 ||
        map_new(&p->per_watcher, MAP_KEY_STR, 1024) < 0) {
        pres_free(p);
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

void pres_set_location(struct presence *p, struct loc_table *loc)
{
    p->loc = loc;
}

void pres_free(struct presence *p)
{
    if (!p)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry me;
    while (p->pents && map_next(p->pents, &it, &me)) {
        struct pent *e = me.val;
        while (e->pubs) {
            struct pub *b = e->pubs;
            e->pubs = b->next;
            pub_free(b);
        }
        while (e->watchers) {
            struct wrec *w = e->watchers;
            e->watchers = w->next;
            free(w->uri);
            free(w);
        }
        while (e->pwatches) {
            struct pwatch *w = e->pwatches;
            e->pwatches = w->next;
            free(w->watcher);
            free(w->last_note);
            free(w);
        }
        free(e->doc);
        free(e->user);
        free(e);
    }
    it = MAP_ITER_INIT;
    while (p->rules && map_next(p->rules, &it, &me))
        orules_free(me.val);
    map_free(p->pents);
    map_free(p->rules);
    map_free(p->per_watcher);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void pres_handle(struct presence *p, struct core_req *r)
{
    if (r->m->method == SIP_M_PUBLISH)
        pres__publish(p, r);
    else
        pres__subscribe(p, r);
}

bool pres_in_dialog(struct presence *p, struct core_req *r)
{
    return pres__sub_in_dialog(p, r);
}

void pres_tick(struct presence *p, struct sip_worker *sw, uint64_t now)
{
    unsigned i = worker_index(core_worker(sw));
    if (i < PRES_MAX_WORKERS && p->pw[i])
        pres__sub_tick(p, p->pw[i], now);
    if (i != 0)
        return;
    expire_pubs(p, now);
    bool was = false;
    if (p->st && atomic_compare_exchange_strong(&p->polling, &was, true) &&
        store_thread_submit(p->st, NULL, poll_job, NULL, p) < 0)
        atomic_store(&p->polling, false);
}

void pres_worker_start(struct presence *p, struct sip_worker *sw)
{
    struct worker *w = core_worker(sw);
    unsigned i = worker_index(w);
    if (i >= PRES_MAX_WORKERS)
        return;
    struct pres_worker *pw = pres__worker_new(p, sw);
    pthread_mutex_lock(&p->lock);
    p->pw[i] = pw;
    p->workers[i] = w;
    if (i + 1 > p->nworkers)
        p->nworkers = i + 1;
    pthread_mutex_unlock(&p->lock);
}

void pres_worker_stop(struct presence *p, struct sip_worker *sw)
{
    unsigned i = worker_index(core_worker(sw));
    if (i >= PRES_MAX_WORKERS || !p->pw[i])
        return;
    pthread_mutex_lock(&p->lock);
    struct pres_worker *pw = p->pw[i];
    p->pw[i] = NULL;
    p->workers[i] = NULL;
    pthread_mutex_unlock(&p->lock);
    pres__worker_stop(pw);
}

void pres_stats(struct presence *p, struct pres_stats *o)
{
    memset(o, 0, sizeof *o);
    o->subscriptions = atomic_load(&p->nsubs_live);
    o->publications = atomic_load(&p->npubs);
    o->notifies_sent = atomic_load(&p->notifies_sent);
    o->notifies_failed = atomic_load(&p->notifies_failed);
    pthread_mutex_lock(&p->lock);
    o->presentities = map_count(p->pents);
    pthread_mutex_unlock(&p->lock);
}
