/*
 * store/thread — the store's own thread inside rtcd. It owns the database
 * connection. Workers queue jobs (a mutex-protected list and a condition
 * variable); the thread runs them in order and posts each completion back to
 * the requesting worker's loop with worker_post, so no worker ever waits on
 * the database. Between jobs it polls the users change counter every
 * poll_ms to refresh the credential table, and removes expired archive
 * entries every expire_interval_ms.
 *
 * Batching: offline-message enqueues and archive appends waiting together in
 * the queue run in one transaction (up to BATCH_MAX), each inside its own
 * SAVEPOINT so that one failure does not undo the others; their completions
 * are posted only after the COMMIT succeeded (a failed COMMIT fails them all),
 * so "done with 0" always means "durable". One fsync then covers the batch.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/worker.h"
#include "store/impl.h"

#define BATCH_MAX 256

struct job {
    struct job *next;
    struct worker *w;
    store_job_fn fn;
    store_done_fn done;
    void *arg;
    int rc;
    bool batch; /* runs inside the thread's batch transaction (never opens its own) */
    bool lazy;  /* nobody waits for it (archive appends): may wait for company */
};

/*
 * Group commit: when only lazy jobs are queued, the thread waits up to
 * o.archive_commit_ms (store.archive_commit_ms) after the first of them, or
 * until LAZY_MAX are queued, so that one transaction and one fsync carry many
 * archive entries instead of one each. The batch size matters beyond the
 * fsync: FTS5 indexes a transaction's rows as one segment, and a segment of
 * a hundred rows costs far less per row than a segment of a few (measured:
 * ~30 us of CPU per MESSAGE less at 500/s with 200 ms than with 50 ms).
 */
#define LAZY_MAX 1024

/*
 * The archive's full-text index is filled in bulk (store_archive_index) once
 * INDEX_ROWS rows or INDEX_MS have gathered since the last time, not after
 * every batch: FTS5 writes one segment per fill and merges segments as they
 * pile up, so the larger the fill, the less each row costs. A search fills
 * the index first (store_archive_search), so it never misses a row; nor does
 * a restart (the mark of the last indexed row is in the database).
 */
#define INDEX_ROWS 2000
#define INDEX_MS 5000

struct store_thread {
    struct store *s;
    struct store_creds *creds;
    struct store_thread_opts o;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    size_t queued;        /* jobs in the list */
    bool eager;           /* a job someone waits for is queued */
    uint64_t first_lazy;  /* when the oldest queued lazy job came (ms) */
    bool stopping;
    int64_t users_seq;
    size_t unindexed;    /* archive rows committed since the last index fill */
    uint64_t indexed_at; /* when the index was last filled (ms) */
};

static void deliver(struct worker *w, void *arg)
{
    struct job *j = arg;
    j->done(w, j->rc, j->arg);
    free(j);
}

/* Posts the completion of a job that has run (or calls it here), frees the job. */
static void finish_job(struct job *j)
{
    if (!j->done) {
        free(j);
        return;
    }
    if (j->w && worker_post(j->w, deliver, j) == 0)
        return;
    j->done(NULL, j->rc, j->arg);
    free(j);
}

static void run_job(struct store_thread *t, struct job *j)
{
    j->rc = j->fn ? j->fn(t->s, j->arg) : 0;
    finish_job(j);
}

struct batch {
    struct job *head, **tail;
    size_t n;
    bool open;
    size_t archived; /* archive rows appended in this batch */
};

/* Commits the open batch and completes its jobs (a failed COMMIT fails them all). */
static void batch_flush(struct store_thread *t, struct batch *b)
{
    struct db *db = t->s->db;
    int rc = 0;
    if (b->open && b->archived) {
        uint64_t now = clock_mono_ms();
        t->unindexed += b->archived;
        if (t->unindexed >= INDEX_ROWS || now - t->indexed_at >= INDEX_MS || t->stopping) {
            if (store_archive_index(t->s) < 0)
                log_warn("store", "archive rows not indexed yet (a later batch or search will): %s",
                         db->errmsg);
            else
                t->unindexed = 0;
            t->indexed_at = now;
        }
    }
    if (b->open) {
        rc = db->ops->commit(db);
        if (rc < 0) {
            log_warn("store", "batch of %zu write(s) not committed: %s", b->n, db->errmsg);
            db->ops->rollback(db);
        }
    }
    struct job *j = b->head;
    while (j) {
        struct job *next = j->next;
        if (rc < 0 && j->rc == 0)
            j->rc = rc;
        finish_job(j);
        j = next;
    }
    b->head = NULL;
    b->tail = &b->head;
    b->n = 0;
    b->open = false;
    b->archived = 0;
}

static void batch_run(struct store_thread *t, struct batch *b, struct job *j)
{
    static const char *const sp = "SAVEPOINT job";
    static const char *const release = "RELEASE SAVEPOINT job";
    static const char *const undo = "ROLLBACK TO SAVEPOINT job";
    struct db *db = t->s->db;
    int rc = 0;
    if (!b->open) {
        rc = db->ops->begin(db, true);
        b->open = rc == 0;
    }
    /*
     * A lazy job (an archive append) is one INSERT, which SQLite undoes by itself when it
     * fails, so it needs no savepoint there (PostgreSQL keeps it: there a failed statement
     * would abort the whole batch). Its full-text indexing waits for company (INDEX_ROWS,
     * store_archive_index in batch_flush): an FTS5 insert per row, inside the savepoints,
     * wrote a new index segment per row, ~200,000 instructions per archived message.
     */
    if (j->lazy)
        b->archived++;
    if (rc == 0 && j->lazy && strcmp(store_backend_name(t->s), "sqlite") == 0) {
        rc = j->fn(t->s, j->arg);
        goto done;
    }
    if (rc == 0)
        rc = db_exec(db, sp, NULL, 0, NULL, NULL);
    if (rc == 0) {
        rc = j->fn(t->s, j->arg);
        if (rc != 0)
            db_exec(db, undo, NULL, 0, NULL, NULL);
        int rc2 = db_exec(db, release, NULL, 0, NULL, NULL);
        if (rc == 0)
            rc = rc2;
    }
done:
    j->rc = rc;
    j->next = NULL;
    *b->tail = j;
    b->tail = &j->next;
    if (++b->n >= BATCH_MAX)
        batch_flush(t, b);
}

/* Runs a list of jobs in order, batching the consecutive batchable ones. */
static void run_list(struct store_thread *t, struct job *list)
{
    struct batch b = {NULL, &b.head, 0, false, false};
    while (list) {
        struct job *j = list;
        list = j->next;
        if (j->batch) {
            batch_run(t, &b, j);
            continue;
        }
        batch_flush(t, &b);
        run_job(t, j);
    }
    batch_flush(t, &b);
}

static void refresh_creds(struct store_thread *t)
{
    if (!t->creds)
        return;
    int64_t seq = 0;
    int rc = store_users_seq(t->s, &seq);
    if (rc < 0) {
        log_warn("store", "cannot read the users change counter: %s", store_errmsg(t->s));
        return;
    }
    if (seq == t->users_seq)
        return;
    rc = store_creds_load(t->creds, t->s);
    if (rc < 0) {
        log_warn("store", "cannot reload credentials: %s", store_errmsg(t->s));
        return;
    }
    t->users_seq = seq;
}

static void expire_archive(struct store_thread *t)
{
    int64_t gone = 0;
    if (store_offline_expire(t->s, (int64_t)clock_wall_ms(), &gone) == 0 && gone)
        log_info("store", "removed %lld expired offline message(s)", (long long)gone);
    store_broadcast_purge(t->s, (int64_t)clock_wall_ms() - 86400000);
    if (!t->o.retention_days)
        return;
    int64_t before = (int64_t)clock_wall_ms() - (int64_t)t->o.retention_days * 86400000;
    int64_t n = 0;
    if (store_archive_expire(t->s, before, &n) < 0)
        log_warn("store", "archive retention: %s", store_errmsg(t->s));
    else if (n)
        log_info("store", "archive retention: removed %lld entr%s older than %u day(s)",
                 (long long)n, n == 1 ? "y" : "ies", t->o.retention_days);
}

static void *thread_main(void *arg)
{
    struct store_thread *t = arg;
    uint64_t next_poll = clock_mono_ms() + t->o.poll_ms;
    uint64_t next_expire = clock_mono_ms();
    pthread_mutex_lock(&t->lock);
    for (;;) {
        while (t->head) {
            uint64_t now0 = clock_mono_ms();
            if (!t->eager && !t->stopping && t->queued < LAZY_MAX &&
                now0 < t->first_lazy + t->o.archive_commit_ms) {
                /* only archive appends: wait a little for more (group commit) */
                uint64_t ms = t->first_lazy + t->o.archive_commit_ms - now0;
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_nsec += (long)ms * 1000000L;
                while (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&t->cond, &t->lock, &ts);
                continue;
            }
            struct job *list = t->head;
            t->head = t->tail = NULL;
            t->queued = 0;
            t->eager = false;
            t->first_lazy = 0;
            pthread_mutex_unlock(&t->lock);
            run_list(t, list);
            pthread_mutex_lock(&t->lock);
        }
        if (t->stopping)
            break;
        uint64_t now = clock_mono_ms();
        if (now >= next_poll || now >= next_expire) {
            pthread_mutex_unlock(&t->lock);
            if (now >= next_poll) {
                refresh_creds(t);
                if (t->o.on_poll)
                    t->o.on_poll(t->s, t->o.poll_ctx);
                next_poll = now + t->o.poll_ms;
            }
            if (now >= next_expire) {
                expire_archive(t);
                next_expire = now + t->o.expire_interval_ms;
            }
            pthread_mutex_lock(&t->lock);
            continue;
        }
        uint64_t wake = next_poll < next_expire ? next_poll : next_expire;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ms = wake - now;
        ts.tv_sec += (time_t)(ms / 1000);
        ts.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!t->head && !t->stopping)
            pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

int store_thread_start(struct store_thread **out, struct store *s, struct store_creds *creds,
                       const struct store_thread_opts *o)
{
    struct store_thread *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->s = s;
    t->creds = creds;
    if (o)
        t->o = *o;
    if (!t->o.poll_ms)
        t->o.poll_ms = 250;
    if (!t->o.expire_interval_ms)
        t->o.expire_interval_ms = 60000;
    if (!t->o.archive_commit_ms)
        t->o.archive_commit_ms = 200;
    t->users_seq = -1;
    if (creds) {
        /* load now so that the table is complete before any worker reads it */
        int rc = store_users_seq(s, &t->users_seq);
        if (rc == 0)
            rc = store_creds_load(creds, s);
        if (rc < 0) {
            free(t);
            return rc;
        }
    }
    if (t->o.on_poll)
        t->o.on_poll(s, t->o.poll_ctx); /* the first load before any worker reads */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->lock, NULL);
    int rc = pthread_create(&t->thread, NULL, thread_main, t);
    if (rc != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return -rc;
    }
    pthread_setname_np(t->thread, "rtcd-store");
    *out = t;
    return 0;
}

static int submit_job(struct store_thread *t, struct worker *w, store_job_fn job,
                      store_done_fn done, void *arg, bool batch, bool lazy)
{
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    *j = (struct job){NULL, w, job, done, arg, 0, batch, lazy};
    pthread_mutex_lock(&t->lock);
    if (t->stopping) {
        pthread_mutex_unlock(&t->lock);
        free(j);
        return -ESHUTDOWN;
    }
    if (t->tail)
        t->tail->next = j;
    else
        t->head = j;
    t->tail = j;
    if (!lazy)
        t->eager = true;
    else if (t->queued == 0 || !t->first_lazy)
        t->first_lazy = clock_mono_ms();
    t->queued++;
    /* a lazy job alone does not wake the thread until its company arrives */
    if (!lazy || t->queued >= LAZY_MAX || t->queued == 1)
        pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static int submit(struct store_thread *t, struct worker *w, store_job_fn job, store_done_fn done,
                  void *arg, bool batch)
{
    return submit_job(t, w, job, done, arg, batch, false);
}

int store_thread_submit(struct store_thread *t, struct worker *w, store_job_fn job,
                        store_done_fn done, void *arg)
{
    return submit(t, w, job, done, arg, false);
}

void store_thread_stop(struct store_thread *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    t->stopping = true;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
    store_close(t->s);
    free(t);
}

/* ---- typed jobs: offline messages and the archive ---- */

struct offline_job {
    struct buf_fields {
        char *recipient, *sender, *ctype, *body;
        size_t rlen, slen, clen, blen;
    } f;
    int64_t created_ms, id, expires_ms;
    uint32_t limit;
    store_offline_done_fn done;
    store_offline_list_fn list_done;
    void *ctx;
    struct store_offline_msg *v; /* fetched */
    size_t n, cap;
    char **owned; /* per-message copies */
};

static void offline_job_free(struct offline_job *j)
{
    free(j->f.recipient);
    free(j->f.sender);
    free(j->f.ctype);
    free(j->f.body);
    for (size_t i = 0; i < j->n; i++)
        free(j->owned[i]);
    free(j->owned);
    free(j->v);
    free(j);
}

static char *dup_bytes(str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        if (s.len)
            memcpy(p, s.s, s.len);
        p[s.len] = 0;
    }
    return p;
}

static int enqueue_job(struct store *s, void *arg)
{
    struct offline_job *j = arg;
    return store__offline_enqueue_in_txn(
        s, str_make(j->f.recipient, j->f.rlen), str_make(j->f.sender, j->f.slen), j->created_ms,
        str_make(j->f.ctype, j->f.clen), str_make(j->f.body, j->f.blen), j->expires_ms, &j->id);
}

static void enqueue_done(struct worker *w, int rc, void *arg)
{
    struct offline_job *j = arg;
    if (j->done)
        j->done(w, rc, j->id, j->ctx);
    offline_job_free(j);
}

int store_thread_offline_enqueue(struct store_thread *t, struct worker *w, str recipient,
                                 str sender, int64_t created_ms, str content_type, str body,
                                 store_offline_done_fn done, void *ctx)
{
    return store_thread_offline_enqueue_ttl(t, w, recipient, sender, created_ms, content_type,
                                            body, 0, done, ctx);
}

int store_thread_offline_enqueue_ttl(struct store_thread *t, struct worker *w, str recipient,
                                     str sender, int64_t created_ms, str content_type, str body,
                                     int64_t expires_ms, store_offline_done_fn done, void *ctx)
{
    struct offline_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->f.recipient = dup_bytes(recipient);
    j->f.sender = dup_bytes(sender);
    j->f.ctype = dup_bytes(content_type);
    j->f.body = dup_bytes(body);
    j->f.rlen = recipient.len;
    j->f.slen = sender.len;
    j->f.clen = content_type.len;
    j->f.blen = body.len;
    j->created_ms = created_ms;
    j->expires_ms = expires_ms;
    j->done = done;
    j->ctx = ctx;
    if (!j->f.recipient || !j->f.sender || !j->f.ctype || !j->f.body) {
        offline_job_free(j);
        return -ENOMEM;
    }
    int rc = submit(t, w, enqueue_job, enqueue_done, j, true);
    if (rc < 0)
        offline_job_free(j);
    return rc;
}

static int fetch_row(void *ctx, const struct store_offline_msg *m)
{
    struct offline_job *j = ctx;
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 16;
        struct store_offline_msg *v = realloc(j->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        j->v = v;
        char **o = realloc(j->owned, cap * sizeof *o);
        if (!o)
            return -ENOMEM;
        j->owned = o;
        j->cap = cap;
    }
    size_t len = m->recipient.len + m->sender.len + m->content_type.len + m->body.len + 4;
    char *p = malloc(len);
    if (!p)
        return -ENOMEM;
    struct store_offline_msg *c = &j->v[j->n];
    j->owned[j->n++] = p;
    *c = *m;
    const str *src[] = {&m->recipient, &m->sender, &m->content_type, &m->body};
    str *dst[] = {&c->recipient, &c->sender, &c->content_type, &c->body};
    for (size_t i = 0; i < 4; i++) {
        if (src[i]->len)
            memcpy(p, src[i]->s, src[i]->len);
        *dst[i] = str_make(p, src[i]->len);
        p[src[i]->len] = 0;
        p += src[i]->len + 1;
    }
    return 0;
}

static int fetch_job(struct store *s, void *arg)
{
    struct offline_job *j = arg;
    return store_offline_list(s, str_make(j->f.recipient, j->f.rlen), j->limit, fetch_row, j);
}

static void fetch_done(struct worker *w, int rc, void *arg)
{
    struct offline_job *j = arg;
    j->list_done(w, rc, rc == 0 ? j->v : NULL, rc == 0 ? j->n : 0, j->ctx);
    offline_job_free(j);
}

int store_thread_offline_fetch(struct store_thread *t, struct worker *w, str recipient,
                               uint32_t limit, store_offline_list_fn done, void *ctx)
{
    struct offline_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->f.recipient = dup_bytes(recipient);
    j->f.rlen = recipient.len;
    j->limit = limit;
    j->list_done = done;
    j->ctx = ctx;
    if (!j->f.recipient) {
        offline_job_free(j);
        return -ENOMEM;
    }
    int rc = store_thread_submit(t, w, fetch_job, fetch_done, j);
    if (rc < 0)
        offline_job_free(j);
    return rc;
}

struct delete_job {
    int64_t id;
    store_done_fn done;
    void *ctx;
};

static int delete_job_fn(struct store *s, void *arg)
{
    struct delete_job *j = arg;
    return store_offline_delete(s, j->id);
}

static void delete_done(struct worker *w, int rc, void *arg)
{
    struct delete_job *j = arg;
    if (j->done)
        j->done(w, rc, j->ctx);
    else if (rc < 0 && rc != -ENOENT)
        log_warn("store", "offline message %lld: delete failed (%s)", (long long)j->id,
                 strerror(-rc));
    free(j);
}

int store_thread_offline_delete(struct store_thread *t, struct worker *w, int64_t id,
                                store_done_fn done, void *ctx)
{
    struct delete_job *j = malloc(sizeof *j);
    if (!j)
        return -ENOMEM;
    *j = (struct delete_job){id, done, ctx};
    int rc = store_thread_submit(t, w, delete_job_fn, delete_done, j);
    if (rc < 0)
        free(j);
    return rc;
}

struct archive_job {
    char *sender, *ctype, *body, *rcpt; /* rcpt: the recipients, NUL-separated */
    size_t slen, clen, blen, nrcpt;
    size_t *rlen;
    int64_t at_ms;
};

static void archive_job_free(struct archive_job *j)
{
    free(j->sender);
    free(j->ctype);
    free(j->body);
    free(j->rcpt);
    free(j->rlen);
    free(j);
}

static int archive_job_fn(struct store *s, void *arg)
{
    struct archive_job *j = arg;
    str r[256];
    const char *p = j->rcpt;
    for (size_t i = 0; i < j->nrcpt; i++) {
        r[i] = str_make(p, j->rlen[i]);
        p += j->rlen[i] + 1;
    }
    int rc = store_archive_append(s, str_make(j->sender, j->slen), r, j->nrcpt, j->at_ms,
                                  str_make(j->ctype, j->clen), str_make(j->body, j->blen), NULL);
    if (rc < 0)
        log_warn("store", "archive append failed: %s",
                 rc == -EIO ? store_errmsg(s) : strerror(-rc));
    return rc;
}

static void archive_done(struct worker *w, int rc, void *arg)
{
    archive_job_free(arg);
}

int store_thread_archive_append(struct store_thread *t, str sender, const str *recipients,
                                size_t nrcpt, int64_t at_ms, str content_type, str body)
{
    if (nrcpt == 0 || nrcpt > 256)
        return -EINVAL;
    struct archive_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    size_t total = 0;
    for (size_t i = 0; i < nrcpt; i++)
        total += recipients[i].len + 1;
    j->sender = dup_bytes(sender);
    j->ctype = dup_bytes(content_type);
    j->body = dup_bytes(body);
    j->rcpt = malloc(total);
    j->rlen = calloc(nrcpt, sizeof *j->rlen);
    if (!j->sender || !j->ctype || !j->body || !j->rcpt || !j->rlen) {
        archive_job_free(j);
        return -ENOMEM;
    }
    j->slen = sender.len;
    j->clen = content_type.len;
    j->blen = body.len;
    j->nrcpt = nrcpt;
    j->at_ms = at_ms;
    char *p = j->rcpt;
    for (size_t i = 0; i < nrcpt; i++) {
        if (recipients[i].len)
            memcpy(p, recipients[i].s, recipients[i].len);
        p[recipients[i].len] = 0;
        j->rlen[i] = recipients[i].len;
        p += recipients[i].len + 1;
    }
    int rc = submit_job(t, NULL, archive_job_fn, archive_done, j, true, true);
    if (rc < 0)
        archive_job_free(j);
    return rc;
}
