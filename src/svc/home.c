/*
 * svc/home — users, registrar, messages and persistence for the SIP core.
 */
#include "svc/home.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/map.h"
#include "sip/txn.h"
#include "svc/deliver.h"
#include "svc/feat.h"
#include "svc/location.h"
#include "svc/registrar.h"

#define DELIVERY_BATCH 20

struct home {
    const struct config *cfg;
    struct sip_server *srv;
    struct store_thread *st;
    struct store_creds *creds;
    struct loc_table *loc;
    struct registrar *rg;
    struct deliver *dl;
    struct feat *feat;
    pthread_mutex_t lock;  /* guards waiting */
    struct map *waiting;   /* user → 1: has offline messages; 2: being delivered */
    uint64_t last_trim;    /* worker 0's clock, ms */
};

/* ---- users ---- */

static bool user_exists(void *ctx, str user)
{
    struct home *h = ctx;
    struct cred c;
    return h->creds && store_creds_get(h->creds, user, &c) == 0 && c.enabled;
}

static int credentials(void *ctx, str user, int sha256, char *out, size_t cap)
{
    struct home *h = ctx;
    struct cred c;
    if (!h->creds || store_creds_get(h->creds, user, &c) < 0 || !c.enabled)
        return -ENOENT;
    const char *v = sha256 ? c.ha1_sha256 : c.ha1_md5;
    if (!*v || strlen(v) >= cap)
        return -ENOENT;
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static void register_req(void *ctx, struct core_req *r)
{
    registrar_handle(((struct home *)ctx)->rg, r);
}

static int lookup(void *ctx, str user, str domain, uint64_t now, struct core_target *out,
                  size_t max)
{
    return registrar_lookup(((struct home *)ctx)->rg, user, domain, now, out, max);
}

/* ---- the archive ---- */

/* "alice" for our users, the URI for others. */
static str party(struct sip_worker *sw, str uri, char *buf, size_t cap)
{
    struct sip_uri u;
    str d;
    if (sip_uri_parse(uri, &u) == 0 && u.user.len && core_canonical_domain(sw, u.host, &d))
        return str_copy(buf, cap, u.user) < 0 ? STR_NULL : str_cstr(buf);
    return str_copy(buf, cap, uri) < 0 ? STR_NULL : str_cstr(buf);
}

/* RFC 3994 is-composing: ephemeral, so neither archived nor stored offline. */
static bool is_composing(str ctype)
{
    ssize_t semi = str_find_char(ctype, ';');
    if (semi >= 0)
        ctype = str_sub(ctype, 0, (size_t)semi);
    return str_caseeq(str_trim(ctype), STR("application/im-iscomposing+xml"));
}

static void message(void *ctx, struct core_req *r)
{
    struct home *h = ctx;
    if (!h->st || is_composing(r->m->content_type))
        return;
    char sb[512];
    str sender = party(r->sw, r->m->from.uri, sb, sizeof sb);
    str rcpt = r->user;
    store_thread_archive_append(h->st, sender, &rcpt, 1, (int64_t)clock_wall_ms(),
                                r->m->content_type, r->m->body);
}

/* ---- offline messages: store ---- */

static void mark_waiting(struct home *h, str user, uintptr_t state)
{
    pthread_mutex_lock(&h->lock);
    if (state)
        map_set_str(h->waiting, user, (void *)state, NULL);
    else
        map_del_str(h->waiting, user);
    pthread_mutex_unlock(&h->lock);
}

struct pending_answer {
    struct home *h;
    struct txn *st;
    char user[STORE_NAME_MAX + 1];
};

static void offline_stored(struct worker *w, int rc, int64_t id, void *arg)
{
    struct pending_answer *p = arg;
    (void)id;
    struct sip_worker *sw = core_sip_worker(p->h->srv, w);
    if (rc == 0)
        mark_waiting(p->h, str_cstr(p->user), 1);
    if (sw && txn_request(p->st) && txn_state(p->st) != TXN_TERMINATED) {
        struct core_req r = { .sw = sw, .st = p->st, .m = txn_request(p->st),
                              .rx = txn_source(p->st), .now = uv_now(worker_loop(w)) };
        if (rc == 0)
            core_respond(&r, 202, STR("Accepted: stored for delivery when the user is online"),
                         NULL, 0, STR_NULL, STR_NULL);
        else if (rc == -EDQUOT)
            core_respond(&r, 480, STR("Temporarily Unavailable: the user's offline mailbox is full"),
                         NULL, 0, STR_NULL, STR_NULL);
        else
            core_respond(&r, 500, STR("Server Internal Error: the message could not be stored"),
                         NULL, 0, STR_NULL, STR_NULL);
    }
    txn_unref(p->st);
    free(p);
}

static int offline(void *ctx, struct core_req *r)
{
    struct home *h = ctx;
    if (is_composing(r->m->content_type)) {
        core_respond(r, 480, STR("Temporarily Unavailable: is-composing is not stored"), NULL, 0,
                     STR_NULL, STR_NULL);
        return 1;
    }
    if (!h->st)
        return -ENOSYS;
    struct pending_answer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->h = h;
    p->st = r->st;
    if (str_copy(p->user, sizeof p->user, r->user) < 0) {
        free(p);
        return -EINVAL;
    }
    char sb[600];
    const struct sip_hdr *from = sip_msg_hdr(r->m, SIP_H_FROM);
    /* the sender as a From value without its tag: display name and URI */
    int n = r->m->from.display.len
                ? snprintf(sb, sizeof sb, "\"%.*s\" <%.*s>", STR_FMT(r->m->from.display),
                           STR_FMT(r->m->from.uri))
                : snprintf(sb, sizeof sb, "<%.*s>", STR_FMT(r->m->from.uri));
    (void)from;
    if (n < 0 || (size_t)n >= sizeof sb) {
        free(p);
        return -EINVAL;
    }
    txn_ref(r->st);
    int rc = store_thread_offline_enqueue(h->st, core_worker(r->sw), r->user, str_cstr(sb),
                                          (int64_t)clock_wall_ms(), r->m->content_type,
                                          r->m->body, offline_stored, p);
    if (rc < 0) {
        txn_unref(r->st);
        free(p);
        return rc;
    }
    return 1; /* answered when the row is committed */
}

/* ---- offline messages: delivery ---- */

struct delivery {
    struct home *h;
    char user[STORE_NAME_MAX + 1];
    char domain[256];
    struct store_offline_msg *v; /* copies */
    size_t n, next;
    struct buf data;             /* backing bytes of v's fields */
};

static void fetch_next(struct delivery *d, struct sip_worker *sw);
static void deliver_one(struct delivery *d, struct sip_worker *sw);

static void delivery_end(struct delivery *d, bool more)
{
    mark_waiting(d->h, str_cstr(d->user), more ? 1 : 0);
    free(d->v);
    buf_free(&d->data);
    free(d);
}

static void deleted(struct worker *w, int rc, void *arg)
{
    struct delivery *d = arg;
    (void)rc;
    struct sip_worker *sw = core_sip_worker(d->h->srv, w);
    if (!sw) {
        delivery_end(d, true);
        return;
    }
    d->next++;
    deliver_one(d, sw);
}

static void delivered(struct sip_worker *sw, uint16_t status, void *arg)
{
    struct delivery *d = arg;
    struct home *h = d->h;
    if (status < 200 || status >= 300) {
        /* no device took it: it stays stored for the next registration */
        log_info("msg", "offline message for %s not delivered (%u): kept", d->user, status);
        delivery_end(d, true);
        return;
    }
    if (store_thread_offline_delete(h->st, core_worker(sw), d->v[d->next].id, deleted, d) < 0)
        delivery_end(d, true);
}

static void deliver_one(struct delivery *d, struct sip_worker *sw)
{
    if (d->next >= d->n) {
        if (d->n < DELIVERY_BATCH) {
            delivery_end(d, false);
            return;
        }
        fetch_next(d, sw);
        return;
    }
    const struct store_offline_msg *m = &d->v[d->next];
    struct core_target t[16];
    int n = registrar_lookup(d->h->rg, str_cstr(d->user), str_cstr(d->domain),
                             uv_now(worker_loop(core_worker(sw))), t, 16);
    if (n <= 0) {
        delivery_end(d, true);
        return;
    }
    char to[600], date[64];
    snprintf(to, sizeof to, "<sip:%s@%s>", d->user, d->domain);
    time_t secs = (time_t)(m->created_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    struct sip_hdr_add extra[1] = { { STR("Date"), str_cstr(date) } };
    struct core_uac_msg msg = {
        .method = SIP_M_MESSAGE,
        .from = m->sender,
        .to = str_cstr(to),
        .extra = extra,
        .nextra = 1,
        .content_type = m->content_type.len ? m->content_type : STR("text/plain"),
        .body = m->body,
    };
    if (core_uac_send(sw, t, (size_t)n, &msg, delivered, d) < 0)
        delivery_end(d, true);
}

static void fetched(struct worker *w, int rc, const struct store_offline_msg *v, size_t n,
                    void *arg)
{
    struct delivery *d = arg;
    struct sip_worker *sw = core_sip_worker(d->h->srv, w);
    if (rc < 0 || !sw) {
        delivery_end(d, true);
        return;
    }
    /* copy what the store lends us only for this call */
    free(d->v);
    buf_reset(&d->data);
    d->v = calloc(n ? n : 1, sizeof *d->v);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].sender.len + v[i].content_type.len + v[i].body.len;
    if (!d->v || buf_reserve(&d->data, total + 1) < 0) {
        delivery_end(d, true);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        d->v[i] = v[i];
        str *f[3] = { &d->v[i].sender, &d->v[i].content_type, &d->v[i].body };
        for (int k = 0; k < 3; k++) {
            char *at = (char *)d->data.data + d->data.len;
            buf_append_str(&d->data, *f[k]);
            *f[k] = str_make(at, f[k]->len);
        }
    }
    d->n = n;
    d->next = 0;
    deliver_one(d, sw);
}

static void fetch_next(struct delivery *d, struct sip_worker *sw)
{
    if (store_thread_offline_fetch(d->h->st, core_worker(sw), str_cstr(d->user), DELIVERY_BATCH,
                                   fetched, d) < 0)
        delivery_end(d, true);
}

static void registered(void *ctx, struct core_req *r)
{
    struct home *h = ctx;
    if (!h->st)
        return;
    struct sip_uri u;
    if (sip_uri_parse(r->m->to.uri, &u) < 0 || !u.user.len || u.user.len > STORE_NAME_MAX)
        return;
    pthread_mutex_lock(&h->lock);
    uintptr_t state = (uintptr_t)map_get_str(h->waiting, u.user);
    if (state == 1)
        map_set_str(h->waiting, u.user, (void *)2, NULL);
    pthread_mutex_unlock(&h->lock);
    if (state != 1)
        return; /* nothing waiting, or a delivery already runs */
    struct delivery *d = calloc(1, sizeof *d);
    if (!d) {
        mark_waiting(h, u.user, 1);
        return;
    }
    d->h = h;
    buf_init(&d->data, 0);
    str_copy(d->user, sizeof d->user, u.user);
    str domain;
    if (!core_canonical_domain(r->sw, u.host, &domain))
        domain = core_realm(core_server(r->sw));
    str_copy(d->domain, sizeof d->domain, domain);
    fetch_next(d, r->sw);
}

/* ---- server-originated messages (svc/deliver) ---- */

static void deliver_stored(void *ctx, str user)
{
    mark_waiting(ctx, user, 1);
}

static void worker_start(void *ctx, struct sip_worker *sw)
{
    struct home *h = ctx;
    deliver_worker_start(h->dl, sw);
    feat_worker_start(h->feat, sw);
}

static void worker_stop(void *ctx, struct sip_worker *sw)
{
    struct home *h = ctx;
    feat_worker_stop(h->feat, sw);
    deliver_worker_stop(h->dl, sw);
}

static int call_route(void *ctx, struct core_req *r, const struct core_target *t, int n)
{
    return feat_call_route(((struct home *)ctx)->feat, r, t, n);
}

static bool address(void *ctx, struct core_req *r)
{
    return feat_address(((struct home *)ctx)->feat, r);
}

struct deliver *home_deliver(struct home *h)
{
    return h->dl;
}

/* ---- housekeeping ---- */

static void tick(void *ctx, struct sip_worker *sw, uint64_t now)
{
    struct home *h = ctx;
    if (worker_index(core_worker(sw)) != 0)
        return;
    ssize_t n = loc_expire(h->loc, now, 10000, NULL, NULL, NULL);
    if (n > 0)
        log_debug("registrar", "%zd binding(s) expired", n);
    /*
     * After a burst (a registration storm keeps ~64*T1 of transactions alive) the freed
     * memory stays in the allocator's arenas; hand whole free pages back to the system
     * now and then. The long-lived records (location) live in their own pool, so the
     * pages freed by transactions are whole. A few milliseconds every 10 s on one worker.
     */
    if (now - h->last_trim >= 10000) {
        h->last_trim = now;
        malloc_trim(0);
    }
}

void home_services(struct home *h, struct core_services *out)
{
    memset(out, 0, sizeof *out);
    out->ctx = h;
    out->register_req = register_req;
    out->user_exists = user_exists;
    out->lookup = lookup;
    out->offline = offline;
    out->credentials = credentials;
    out->registered = registered;
    out->message = message;
    out->tick = tick;
    out->worker_start = worker_start;
    out->worker_stop = worker_stop;
    out->call_route = call_route;
    out->address = address;
}

int home_new(struct home **out, const struct config *cfg, struct sip_server *srv,
             struct store_thread *st, struct store_creds *creds)
{
    struct home *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->cfg = cfg;
    h->srv = srv;
    h->st = st;
    h->creds = creds;
    pthread_mutex_init(&h->lock, NULL);
    struct loc_params lp = { .max_per_aor = cfg->sip.max_bindings_per_aor,
                             .max_total = cfg->sip.max_bindings };
    if (loc_new(&h->loc, &lp) < 0 || registrar_new(&h->rg, cfg, h->loc) < 0 ||
        map_new(&h->waiting, MAP_KEY_STR, 64) < 0) {
        home_free(h);
        return -ENOMEM;
    }
    struct deliver_params dp = { .srv = srv, .st = st, .lookup = lookup,
                                 .stored = deliver_stored, .ctx = h };
    struct feat_params fp = { .cfg = cfg, .srv = srv, .st = st, .creds = creds };
    if (deliver_new(&h->dl, &dp) < 0 || (fp.dl = h->dl, feat_new(&h->feat, &fp)) < 0) {
        home_free(h);
        return -ENOMEM;
    }
    *out = h;
    return 0;
}

void home_free(struct home *h)
{
    if (!h)
        return;
    feat_free(h->feat);
    deliver_free(h->dl);
    registrar_free(h->rg);
    loc_free(h->loc);
    map_free(h->waiting);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* ---- persistence (jobs on the store thread) ---- */

struct sync_job {
    struct home *h;
    sem_t done;
    int rc;
    size_t count;
};

static void job_done(struct worker *w, int rc, void *arg)
{
    (void)w;
    struct sync_job *j = arg;
    j->rc = rc;
    sem_post(&j->done);
}

static int run_sync(struct home *h, store_job_fn fn, struct sync_job *j)
{
    j->h = h;
    sem_init(&j->done, 0, 0);
    int rc = store_thread_submit(h->st, NULL, fn, job_done, j);
    if (rc == 0) {
        while (sem_wait(&j->done) < 0)
            ;
        rc = j->rc;
    }
    sem_destroy(&j->done);
    return rc;
}

static int restore_one(void *ctx, const struct store_reg *r)
{
    struct sync_job *j = ctx;
    int64_t left = r->expires_ms - (int64_t)clock_wall_ms();
    if (left <= 0)
        return 0;
    struct loc_binding b = { 0 };
    b.contact = r->contact;
    b.instance = r->instance;
    b.reg_id = r->reg_id;
    b.path = r->path;
    b.user_agent = r->user_agent;
    b.q = (uint16_t)(r->q > 1000 ? 1000 : r->q);
    b.expires_ms = clock_mono_ms() + (uint64_t)left;
    b.call_id = STR("restored");
    /* "udp:1.2.3.4:5060" / "tcp:[::1]:5060": the flow itself did not survive */
    str rcv = r->received;
    if (str_has_prefix(rcv, STR("udp:"))) {
        b.transport = TRANSPORT_UDP;
        char host[64];
        str rest = str_skip(rcv, 4);
        ssize_t colon = -1;
        for (size_t i = 0; i < rest.len; i++)
            if (rest.s[i] == ':')
                colon = (ssize_t)i;
        if (colon > 0) {
            str hs = str_sub(rest, 0, (size_t)colon);
            if (hs.len > 2 && hs.s[0] == '[')
                hs = str_sub(hs, 1, hs.len - 2);
            uint32_t port;
            if (str_copy(host, sizeof host, hs) >= 0 &&
                str_to_u32(str_skip(rest, (size_t)colon + 1), &port) == 0 && port < 65536) {
                struct sockaddr_in *a4 = (struct sockaddr_in *)&b.received;
                struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&b.received;
                if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
                    a4->sin_family = AF_INET;
                    a4->sin_port = htons((uint16_t)port);
                } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
                    a6->sin6_family = AF_INET6;
                    a6->sin6_port = htons((uint16_t)port);
                }
            }
        }
    } else {
        b.transport = TRANSPORT_TCP;
    }
    if (loc_restore(j->h->loc, r->aor, &b, clock_mono_ms()) == 0)
        j->count++;
    return 0;
}

static int waiting_one(void *ctx, const struct store_offline_msg *m)
{
    struct sync_job *j = ctx;
    map_set_str(j->h->waiting, m->recipient, (void *)1, NULL);
    return 0;
}

static int load_job(struct store *s, void *arg)
{
    struct sync_job *j = arg;
    int rc = store_regs_load(s, restore_one, j);
    if (rc == 0)
        rc = store_offline_list_all(s, 0, waiting_one, j);
    return rc;
}

int home_load(struct home *h)
{
    if (!h->st)
        return 0;
    struct sync_job j = { 0 };
    int rc = run_sync(h, load_job, &j);
    if (rc == 0)
        log_info("registrar", "%zu registration(s) restored, %zu user(s) with offline messages",
                 j.count, map_count(h->waiting));
    if (rc == 0)
        rc = feat_load(h->feat);
    return rc;
}

static int save_job(struct store *s, void *arg)
{
    struct sync_job *j = arg;
    struct home *h = j->h;
    struct loc_iter *it;
    int rc = loc_iter_new(&it, h->loc, clock_mono_ms());
    if (rc < 0)
        return rc;
    size_t cap = 1024, n = 0;
    struct store_reg *v = malloc(cap * sizeof *v);
    struct buf text;
    buf_init(&text, 0);
    /* first pass: the rows' text, kept as offsets (the buffer moves as it grows) */
    struct off {
        size_t aor, aorl, contact, contactl, inst, instl, path, pathl, ua, ual, rcv, rcvl;
    } *offs = malloc(cap * sizeof *offs);
    str aor;
    struct loc_binding b;
    int64_t shift = (int64_t)clock_wall_ms() - (int64_t)clock_mono_ms();
    while (v && offs && loc_iter_next(it, &aor, &b) > 0) {
        if (n == cap) {
            cap *= 2;
            struct store_reg *nv = realloc(v, cap * sizeof *v);
            struct off *no = realloc(offs, cap * sizeof *offs);
            if (!nv || !no) {
                free(nv ? nv : v);
                free(no ? no : offs);
                v = NULL;
                offs = NULL;
                break;
            }
            v = nv;
            offs = no;
        }
        char rcv[80] = "";
        if (b.received.ss_family != AF_UNSPEC) {
            char a[64];
            snprintf(rcv, sizeof rcv, "%s:%s", transport_name((enum transport)b.transport),
                     net_addr_str(&b.received, a, sizeof a));
        }
        struct off *o = &offs[n];
        o->aor = text.len, o->aorl = aor.len, buf_append_str(&text, aor);
        o->contact = text.len, o->contactl = b.contact.len, buf_append_str(&text, b.contact);
        o->inst = text.len, o->instl = b.instance.len, buf_append_str(&text, b.instance);
        o->path = text.len, o->pathl = b.path.len, buf_append_str(&text, b.path);
        o->ua = text.len, o->ual = b.user_agent.len, buf_append_str(&text, b.user_agent);
        o->rcv = text.len, o->rcvl = strlen(rcv), buf_append(&text, rcv, strlen(rcv));
        v[n] = (struct store_reg){ .expires_ms = (int64_t)b.expires_ms + shift,
                                   .q = b.q,
                                   .reg_id = b.reg_id };
        n++;
    }
    loc_iter_free(it);
    if (!v || !offs) {
        free(v);
        free(offs);
        buf_free(&text);
        return -ENOMEM;
    }
    const char *t = (const char *)text.data;
    for (size_t i = 0; i < n; i++) {
        struct off *o = &offs[i];
        v[i].aor = str_make(t + o->aor, o->aorl);
        v[i].contact = str_make(t + o->contact, o->contactl);
        v[i].instance = str_make(t + o->inst, o->instl);
        v[i].path = str_make(t + o->path, o->pathl);
        v[i].user_agent = str_make(t + o->ua, o->ual);
        v[i].received = str_make(t + o->rcv, o->rcvl);
    }
    rc = store_regs_save(s, v, n);
    j->count = n;
    free(v);
    free(offs);
    buf_free(&text);
    return rc;
}

int home_save(struct home *h)
{
    if (!h->st)
        return 0;
    struct sync_job j = { 0 };
    int rc = run_sync(h, save_job, &j);
    if (rc == 0)
        log_info("registrar", "%zu registration(s) saved", j.count);
    else
        log_error("registrar", "registrations not saved: %s", strerror(-rc));
    return rc;
}
