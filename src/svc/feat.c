/*
 * svc/feat — the snapshot of forwarding rules and groups, its refresh through
 * the store thread, and the outbox poll for broadcasts (see feat.h).
 */
#include "svc/feat_int.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"
#include "net/worker.h"
#include "svc/deliver.h"

#define FEAT_POLL_MS 250

struct feat_snap {
    _Atomic int refs;
    struct map *fwd;    /* user → struct store_forward * */
    struct map *groups; /* group → struct feat_group * */
};

/* ---- the snapshot ---- */

int feat_snap_new(struct feat_snap **out)
{
    struct feat_snap *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    atomic_init(&s->refs, 1);
    if (map_new(&s->fwd, MAP_KEY_STR, 16) < 0 || map_new(&s->groups, MAP_KEY_STR, 16) < 0) {
        map_free(s->fwd);
        free(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void feat_snap_unref(struct feat_snap *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(s->fwd, &it, &e))
        free(e.val);
    it = MAP_ITER_INIT;
    while (map_next(s->groups, &it, &e)) {
        struct feat_group *g = e.val;
        free(g->member);
        free(g);
    }
    map_free(s->fwd);
    map_free(s->groups);
    free(s);
}

int feat_snap_put_forward(struct feat_snap *s, str user, const struct store_forward *f)
{
    if (!f->unconditional[0] && !f->busy[0] && !f->no_answer[0] && !f->not_registered[0] &&
        !f->dnd)
        return 0;
    struct store_forward *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = *f;
    void *old = NULL;
    int rc = map_set_str(s->fwd, user, c, &old);
    if (rc < 0) {
        free(c);
        return rc;
    }
    free(old);
    return 0;
}

int feat_snap_put_member(struct feat_snap *s, str group, str user)
{
    if (!group.len || group.len > STORE_NAME_MAX || user.len > STORE_NAME_MAX)
        return -EINVAL;
    struct feat_group *g = map_get_str(s->groups, group);
    if (!g) {
        g = calloc(1, sizeof *g);
        if (!g)
            return -ENOMEM;
        if (map_set_str(s->groups, group, g, NULL) < 0) {
            free(g);
            return -ENOMEM;
        }
    }
    if (!user.len || feat_group_has(g, user))
        return 0;
    if (g->n >= FEAT_MAX_GROUP_MEMBERS)
        return -ENOSPC;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        void *p = realloc(g->member, cap * sizeof *g->member);
        if (!p)
            return -ENOMEM;
        g->member = p;
        g->cap = cap;
    }
    str_copy(g->member[g->n++], sizeof g->member[0], user);
    return 0;
}

const struct store_forward *feat_snap_forward(const struct feat_snap *s, str user)
{
    return map_get_str(s->fwd, user);
}

const struct feat_group *feat_snap_group(const struct feat_snap *s, str group)
{
    return map_get_str(s->groups, group);
}

bool feat_group_has(const struct feat_group *g, str user)
{
    for (size_t i = 0; i < g->n; i++)
        if (str_eq(str_cstr(g->member[i]), user))
            return true;
    return false;
}

size_t feat_snap_groups(const struct feat_snap *s)
{
    return map_count(s->groups);
}

size_t feat_snap_rules(const struct feat_snap *s)
{
    return map_count(s->fwd);
}

struct feat_snap *feat_snapshot(struct feat *f)
{
    pthread_mutex_lock(&f->lock);
    struct feat_snap *s = f->cur;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&f->lock);
    return s;
}

static void swap_in(struct feat *f, struct feat_snap *s)
{
    pthread_mutex_lock(&f->lock);
    struct feat_snap *old = f->cur;
    f->cur = s;
    pthread_mutex_unlock(&f->lock);
    feat_snap_unref(old);
}

/* ---- loading (on the store thread) ---- */

static int load_fwd(void *ctx, str user, const struct store_forward *fw)
{
    return feat_snap_put_forward(ctx, user, fw);
}

static int load_member(void *ctx, str group, str user)
{
    int rc = feat_snap_put_member(ctx, group, user);
    if (rc == -ENOSPC) {
        log_warn("groups", "group %.*s has more than %d members: %.*s left out", STR_FMT(group),
                 FEAT_MAX_GROUP_MEMBERS, STR_FMT(user));
        return 0;
    }
    return rc;
}

/* A new snapshot from the store, or NULL with *rc set. */
static struct feat_snap *build(struct store *s, int *rc)
{
    struct feat_snap *n;
    *rc = feat_snap_new(&n);
    if (*rc < 0)
        return NULL;
    *rc = store_forward_list(s, load_fwd, n);
    if (*rc == 0)
        *rc = store_group_all_members(s, load_member, n);
    if (*rc < 0) {
        feat_snap_unref(n);
        return NULL;
    }
    return n;
}

/* ---- the poll job: rules, groups, broadcasts ---- */

struct poll_job {
    struct feat *f;
    struct feat_snap *snap; /* new, when the counter moved */
    int64_t seq;
    struct feat_bcast *bc, **tail;
};

void feat__bcast_free(struct feat_bcast *b)
{
    while (b) {
        struct feat_bcast *next = b->next;
        free(b->group);
        free(b->sender);
        free(b->ctype);
        free(b->body);
        free(b->rcpt);
        free(b);
        b = next;
    }
}

static int take_one(void *ctx, const struct store_broadcast *sb)
{
    struct poll_job *j = ctx;
    struct feat_bcast *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->id = sb->id;
    b->offline_too = sb->offline_too;
    b->expires_ms = sb->expires_ms;
    b->group = str_dup(sb->group);
    b->sender = str_dup(sb->sender);
    b->ctype = str_dup(sb->content_type);
    b->body = str_dup(sb->body);
    b->blen = sb->body.len;
    *j->tail = b;
    j->tail = &b->next;
    if (!b->group || !b->sender || !b->ctype || !b->body)
        return -ENOMEM;
    return 0;
}

static int add_rcpt(struct feat_bcast *b, str user)
{
    if (b->n % 64 == 0) {
        void *p = realloc(b->rcpt, (b->n + 64) * sizeof *b->rcpt);
        if (!p)
            return -ENOMEM;
        b->rcpt = p;
    }
    str_copy(b->rcpt[b->n++], sizeof b->rcpt[0], user);
    return 0;
}

static int rcpt_member(void *ctx, str name)
{
    return add_rcpt(ctx, name);
}

static int rcpt_user(void *ctx, const struct store_user *u)
{
    return u->enabled ? add_rcpt(ctx, str_cstr(u->name)) : 0;
}

static int poll_fn(struct store *s, void *arg)
{
    struct poll_job *j = arg;
    int64_t seq = 0;
    int rc = store_features_seq(s, &seq);
    if (rc < 0)
        return rc;
    if (seq != j->f->seq) {
        j->snap = build(s, &rc);
        if (!j->snap)
            return rc;
        j->seq = seq;
    }
    rc = store_broadcast_take(s, take_one, j);
    for (struct feat_bcast *b = j->bc; b && rc == 0; b = b->next) {
        if (b->group[0])
            rc = store_group_members(s, str_cstr(b->group), rcpt_member, b);
        else
            rc = store_user_list(s, rcpt_user, b);
        if (rc == -ENOENT) {
            log_warn("broadcast", "broadcast %lld: no group %s", (long long)b->id, b->group);
            rc = 0;
        }
    }
    return rc;
}

static void poll_done(struct worker *w, int rc, void *arg)
{
    struct poll_job *j = arg;
    struct feat *f = j->f;
    if (j->snap) {
        f->seq = j->seq;
        log_info("feat", "%zu forwarding rule(s), %zu group(s) loaded", feat_snap_rules(j->snap),
                 feat_snap_groups(j->snap));
        swap_in(f, j->snap);
    }
    if (rc < 0)
        log_warn("feat", "refresh: %s", strerror(-rc));
    struct sip_worker *sw = w ? core_sip_worker(f->p.srv, w) : NULL;
    for (struct feat_bcast *b = j->bc; b; b = b->next)
        if (sw)
            feat__broadcast_run(f, sw, b);
        else
            log_warn("broadcast", "broadcast %lld dropped: rtcd is stopping", (long long)b->id);
    feat__bcast_free(j->bc);
    atomic_store(&f->polling, false);
    free(j);
}

static void on_poll(uv_timer_t *h)
{
    struct feat *f = h->data;
    if (!f || atomic_exchange(&f->polling, true))
        return;
    struct poll_job *j = calloc(1, sizeof *j);
    if (!j) {
        atomic_store(&f->polling, false);
        return;
    }
    j->f = f;
    j->tail = &j->bc;
    if (store_thread_submit(f->p.st, f->poll_w, poll_fn, poll_done, j) < 0) {
        free(j);
        atomic_store(&f->polling, false);
    }
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

void feat_worker_start(struct feat *f, struct sip_worker *sw)
{
    struct worker *w = core_worker(sw);
    if (worker_index(w) != 0 || !f->p.st || f->timer)
        return;
    f->timer = malloc(sizeof *f->timer);
    if (!f->timer)
        return;
    uv_timer_init(worker_loop(w), f->timer);
    f->timer->data = f;
    f->poll_w = w;
    uv_timer_start(f->timer, on_poll, FEAT_POLL_MS, FEAT_POLL_MS);
}

void feat_worker_stop(struct feat *f, struct sip_worker *sw)
{
    if (worker_index(core_worker(sw)) != 0 || !f->timer)
        return;
    uv_timer_stop(f->timer);
    f->timer->data = NULL;
    uv_close((uv_handle_t *)f->timer, timer_closed);
    f->timer = NULL;
}

/* ---- life ---- */

int feat_system_from(const struct config *cfg, char *out, size_t cap)
{
    const char *sys = cfg->server.system_address;
    char dom[256] = "localhost";
    store_realm_from_domain(cfg->server.domain, dom, sizeof dom);
    int n;
    if (sys && (*sys == '<' || *sys == '"'))
        n = snprintf(out, cap, "%s", sys);
    else if (sys && *sys)
        n = snprintf(out, cap, "<%s>", sys);
    else
        n = snprintf(out, cap, "\"System\" <sip:system@%s>", dom);
    return n > 0 && (size_t)n < cap ? 0 : -ENOBUFS;
}

struct load_job {
    struct feat *f;
    struct feat_snap *snap;
    int64_t seq;
    sem_t done;
    int rc;
};

static int load_fn(struct store *s, void *arg)
{
    struct load_job *j = arg;
    int rc = store_features_seq(s, &j->seq);
    if (rc == 0)
        j->snap = build(s, &rc);
    return rc;
}

static void load_done(struct worker *w, int rc, void *arg)
{
    (void)w;
    struct load_job *j = arg;
    j->rc = rc;
    sem_post(&j->done);
}

int feat_load(struct feat *f)
{
    if (!f->p.st)
        return 0;
    struct load_job j = { .f = f };
    sem_init(&j.done, 0, 0);
    int rc = store_thread_submit(f->p.st, NULL, load_fn, load_done, &j);
    if (rc == 0) {
        while (sem_wait(&j.done) < 0)
            ;
        rc = j.rc;
    }
    sem_destroy(&j.done);
    if (rc == 0 && j.snap) {
        f->seq = j.seq;
        log_info("feat", "%zu forwarding rule(s), %zu group(s) loaded", feat_snap_rules(j.snap),
                 feat_snap_groups(j.snap));
        swap_in(f, j.snap);
    } else if (j.snap) {
        feat_snap_unref(j.snap);
    }
    return rc;
}

int feat_new(struct feat **out, const struct feat_params *p)
{
    struct feat *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->p = *p;
    f->seq = -1;
    pthread_mutex_init(&f->lock, NULL);
    if (feat_snap_new(&f->cur) < 0) {
        pthread_mutex_destroy(&f->lock);
        free(f);
        return -ENOMEM;
    }
    if (p->cfg)
        feat_system_from(p->cfg, f->system_from, sizeof f->system_from);
    *out = f;
    return 0;
}

void feat_free(struct feat *f)
{
    if (!f)
        return;
    feat_snap_unref(f->cur);
    pthread_mutex_destroy(&f->lock);
    free(f);
}
