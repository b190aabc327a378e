/*
 * svc/deliver — server-originated MESSAGEs to a local user's devices, with
 * the offline store as the fallback (see deliver.h).
 *
 * Each device gets its own client transaction through core_uac_send (one call
 * per device, so the outcome can say how many devices took the message); the
 * job counts the answers and, when none was a 2xx, stores the message if the
 * caller asked for it.
 */
#include "svc/deliver.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/worker.h"
#include "store/store.h"

#define DELIVER_MAX_WORKERS 256
#define DELIVER_MAX_BODY    (1u << 20)

struct deliver {
    struct deliver_params p;
    pthread_mutex_t lock; /* guards sws */
    struct sip_worker *sws[DELIVER_MAX_WORKERS];
    _Atomic unsigned rr;
};

/* One message on its way: the copied fields live in text[]. */
struct djob {
    struct deliver *d;
    deliver_done_fn done;
    void *arg;
    str from, user, ctype, body;
    struct sip_hdr_add extra[DELIVER_MAX_EXTRA];
    size_t nextra;
    bool offline;
    int64_t expires_ms;
    unsigned pending, ok, tried;
    uint16_t best;
    char text[]; /* every string above, back to back */
};

const char *deliver_outcome_name(enum deliver_outcome o)
{
    switch (o) {
    case DELIVER_DELIVERED:
        return "delivered";
    case DELIVER_STORED:
        return "stored";
    case DELIVER_NOT_ONLINE:
        return "not-online";
    default:
        return "failed";
    }
}

static void finish(struct djob *j, const struct deliver_result *r)
{
    if (j->done)
        j->done(r, j->arg);
    free(j);
}

static void fail(struct djob *j, int err, uint16_t status)
{
    struct deliver_result r = { .outcome = DELIVER_FAILED, .err = err, .status = status,
                                .tried = j->tried };
    finish(j, &r);
}

static void stored(struct worker *w, int rc, int64_t id, void *arg)
{
    (void)w;
    struct djob *j = arg;
    if (rc < 0) {
        fail(j, rc, j->best);
        return;
    }
    if (j->d->p.stored)
        j->d->p.stored(j->d->p.ctx, j->user);
    struct deliver_result r = { .outcome = DELIVER_STORED, .tried = j->tried,
                                .status = j->best, .offline_id = id };
    finish(j, &r);
}

/* No device took it: store it, or say so. */
static void no_device(struct djob *j, struct sip_worker *sw)
{
    if (!j->offline) {
        struct deliver_result r = { .outcome = DELIVER_NOT_ONLINE, .tried = j->tried,
                                    .status = j->best ? j->best : 480 };
        finish(j, &r);
        return;
    }
    if (!j->d->p.st) {
        fail(j, -ENOSYS, j->best);
        return;
    }
    int64_t now = (int64_t)clock_wall_ms();
    if (j->expires_ms && j->expires_ms <= now) {
        fail(j, -ETIMEDOUT, j->best);
        return;
    }
    int rc = store_thread_offline_enqueue_ttl(j->d->p.st, core_worker(sw), j->user, j->from, now,
                                              j->ctype, j->body, j->expires_ms, stored, j);
    if (rc < 0)
        fail(j, rc, j->best);
}

static void maybe_done(struct djob *j, struct sip_worker *sw)
{
    if (j->pending)
        return;
    if (j->ok) {
        struct deliver_result r = { .outcome = DELIVER_DELIVERED, .devices = j->ok,
                                    .tried = j->tried, .status = 200 };
        finish(j, &r);
        return;
    }
    no_device(j, sw);
}

static void answered(struct sip_worker *sw, uint16_t status, void *arg)
{
    struct djob *j = arg;
    if (status >= 200 && status < 300)
        j->ok++;
    else if (!j->best || status < j->best)
        j->best = status;
    j->pending--;
    maybe_done(j, sw);
}

static void run(struct worker *w, void *arg)
{
    struct djob *j = arg;
    struct sip_worker *sw = core_sip_worker(j->d->p.srv, w);
    if (!sw) {
        fail(j, -ESHUTDOWN, 0);
        return;
    }
    str realm = core_realm(core_server(sw));
    struct core_target t[16];
    int n = j->d->p.lookup ? j->d->p.lookup(j->d->p.ctx, j->user, realm,
                                            uv_now(worker_loop(w)), t, 16)
                           : 0;
    char to[STORE_NAME_MAX + 300];
    snprintf(to, sizeof to, "<sip:%.*s@%.*s>", STR_FMT(j->user), STR_FMT(realm));
    struct core_uac_msg msg = {
        .method = SIP_M_MESSAGE,
        .from = j->from,
        .to = str_cstr(to),
        .extra = j->extra,
        .nextra = j->nextra,
        .content_type = j->ctype,
        .body = j->body,
    };
    j->pending = 1; /* held until every send below was tried */
    for (int i = 0; i < n; i++) {
        j->pending++;
        if (core_uac_send(sw, &t[i], 1, &msg, answered, j) < 0) {
            j->pending--;
            continue;
        }
        j->tried++;
    }
    j->pending--;
    maybe_done(j, sw);
}

int deliver_send(struct deliver *d, const struct deliver_msg *m, deliver_done_fn done,
                 void *arg)
{
    if (!m->from.len || m->from.len > 600 || !m->to_user.len ||
        m->to_user.len > STORE_NAME_MAX || m->body.len > DELIVER_MAX_BODY ||
        m->content_type.len > STORE_CTYPE_MAX || m->nextra > DELIVER_MAX_EXTRA ||
        m->expires_ms < 0)
        return -EINVAL;
    str ctype = m->content_type.len ? m->content_type : STR("text/plain");
    size_t total = m->from.len + m->to_user.len + ctype.len + m->body.len + 8;
    for (size_t i = 0; i < m->nextra; i++) {
        if (!m->extra[i].name.len || m->extra[i].name.len > 64 || m->extra[i].value.len > 1024)
            return -EINVAL;
        total += m->extra[i].name.len + m->extra[i].value.len + 2;
    }
    struct djob *j = calloc(1, sizeof *j + total);
    if (!j)
        return -ENOMEM;
    j->d = d;
    j->done = done;
    j->arg = arg;
    j->offline = m->offline;
    j->expires_ms = m->expires_ms;
    char *p = j->text;
#define COPY(dst, src)                                                                         \
    do {                                                                                       \
        if ((src).len)                                                                         \
            memcpy(p, (src).s, (src).len);                                                     \
        (dst) = str_make(p, (src).len);                                                        \
        p += (src).len;                                                                        \
        *p++ = 0;                                                                              \
    } while (0)
    COPY(j->from, m->from);
    COPY(j->user, m->to_user);
    COPY(j->ctype, ctype);
    COPY(j->body, m->body);
    for (size_t i = 0; i < m->nextra; i++) {
        COPY(j->extra[i].name, m->extra[i].name);
        COPY(j->extra[i].value, m->extra[i].value);
    }
#undef COPY
    j->nextra = m->nextra;
    /* a running worker, round robin */
    unsigned start = atomic_fetch_add_explicit(&d->rr, 1, memory_order_relaxed);
    int rc = -ESHUTDOWN;
    pthread_mutex_lock(&d->lock);
    for (unsigned k = 0; k < DELIVER_MAX_WORKERS && rc < 0; k++) {
        struct sip_worker *sw = d->sws[(start + k) % DELIVER_MAX_WORKERS];
        if (sw)
            rc = worker_post(core_worker(sw), run, j);
    }
    pthread_mutex_unlock(&d->lock);
    if (rc < 0)
        free(j);
    return rc;
}

void deliver_worker_start(struct deliver *d, struct sip_worker *sw)
{
    unsigned i = worker_index(core_worker(sw));
    pthread_mutex_lock(&d->lock);
    if (i < DELIVER_MAX_WORKERS)
        d->sws[i] = sw;
    pthread_mutex_unlock(&d->lock);
}

void deliver_worker_stop(struct deliver *d, struct sip_worker *sw)
{
    unsigned i = worker_index(core_worker(sw));
    pthread_mutex_lock(&d->lock);
    if (i < DELIVER_MAX_WORKERS && d->sws[i] == sw)
        d->sws[i] = NULL;
    pthread_mutex_unlock(&d->lock);
}

int deliver_new(struct deliver **out, const struct deliver_params *p)
{
    struct deliver *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->p = *p;
    pthread_mutex_init(&d->lock, NULL);
    *out = d;
    return 0;
}

void deliver_free(struct deliver *d)
{
    if (!d)
        return;
    pthread_mutex_destroy(&d->lock);
    free(d);
}
