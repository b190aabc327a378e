/*
 * worker — threads with a libuv loop and a task queue woken by uv_async.
 */
#include "net/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/log.h"

struct task {
    struct task *next;
    worker_task_fn fn;
    void *arg;
};

struct worker {
    struct worker_pool *pool;
    unsigned index;
    uv_loop_t loop;
    uv_async_t wake;
    pthread_t thread;
    pthread_mutex_t lock; /* guards the queue and stopping */
    struct task *head, *tail;
    bool stopping;
    void *data;
    int start_rc;
};

struct worker_pool {
    unsigned n;
    struct worker_hooks hooks;
    pthread_mutex_t lock;
    pthread_cond_t started_cond;
    unsigned started;
    struct worker workers[];
};

static void run_tasks(uv_async_t *h)
{
    struct worker *w = h->data;
    pthread_mutex_lock(&w->lock);
    struct task *t = w->head;
    bool stop = w->stopping;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (t) {
        struct task *next = t->next;
        t->fn(w, t->arg);
        free(t);
        t = next;
    }
    if (stop) {
        if (w->pool->hooks.on_stop)
            w->pool->hooks.on_stop(w, w->pool->hooks.ctx);
        uv_close((uv_handle_t *)&w->wake, NULL);
    }
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct worker_pool *p = w->pool;
    int rc = uv_loop_init(&w->loop);
    if (rc == 0) {
        rc = uv_async_init(&w->loop, &w->wake, run_tasks);
        if (rc < 0)
            uv_loop_close(&w->loop);
    }
    if (rc == 0) {
        w->wake.data = w;
        if (p->hooks.on_start)
            p->hooks.on_start(w, p->hooks.ctx);
    }
    pthread_mutex_lock(&p->lock);
    w->start_rc = rc;
    p->started++;
    pthread_cond_broadcast(&p->started_cond);
    pthread_mutex_unlock(&p->lock);
    if (rc < 0)
        return NULL;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Anything on_stop left open is closed here so the loop can be freed. */
    uv_walk(&w->loop, close_any, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        log_warn("worker", "worker %u: loop closed with handles still active", w->index);
    /* Tasks posted after the last wake-up are dropped with the queue. */
    pthread_mutex_lock(&w->lock);
    struct task *t = w->head;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (t) {
        struct task *next = t->next;
        free(t);
        t = next;
    }
    return NULL;
}

int worker_pool_start(struct worker_pool **out, unsigned n, const struct worker_hooks *hooks)
{
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (unsigned)cores : 1;
    }
    struct worker_pool *p = calloc(1, sizeof *p + n * sizeof(struct worker));
    if (!p)
        return -ENOMEM;
    p->n = n;
    if (hooks)
        p->hooks = *hooks;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->started_cond, NULL);
    unsigned spawned = 0;
    int rc = 0;
    for (; spawned < n; spawned++) {
        struct worker *w = &p->workers[spawned];
        w->pool = p;
        w->index = spawned;
        pthread_mutex_init(&w->lock, NULL);
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0) {
            rc = -e;
            pthread_mutex_destroy(&w->lock);
            break;
        }
        char name[16]; /* "rtcd-w0": what top -H and perf show for the thread */
        snprintf(name, sizeof name, "rtcd-w%u", spawned % 1000u);
        pthread_setname_np(w->thread, name);
    }
    pthread_mutex_lock(&p->lock);
    while (p->started < spawned)
        pthread_cond_wait(&p->started_cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < spawned && rc == 0; i++)
        rc = p->workers[i].start_rc;
    p->n = spawned;
    if (rc < 0) {
        worker_pool_stop(p);
        return rc;
    }
    *out = p;
    return 0;
}

void worker_pool_stop(struct worker_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++) {
        struct worker *w = &p->workers[i];
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        if (w->start_rc == 0)
            uv_async_send(&w->wake);
        pthread_mutex_unlock(&w->lock);
    }
    for (unsigned i = 0; i < p->n; i++) {
        pthread_join(p->workers[i].thread, NULL);
        pthread_mutex_destroy(&p->workers[i].lock);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->started_cond);
    free(p);
}

unsigned worker_pool_size(const struct worker_pool *p)
{
    return p->n;
}

struct worker *worker_pool_get(struct worker_pool *p, unsigned i)
{
    return i < p->n ? &p->workers[i] : NULL;
}

int worker_post(struct worker *w, worker_task_fn fn, void *arg)
{
    struct task *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->lock);
        free(t);
        return -ESHUTDOWN;
    }
    if (w->tail)
        w->tail->next = t;
    else
        w->head = t;
    w->tail = t;
    uv_async_send(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

struct worker *worker_sibling(struct worker *w, unsigned i)
{
    return worker_pool_get(w->pool, i);
}

uv_loop_t *worker_loop(struct worker *w)
{
    return &w->loop;
}

unsigned worker_index(const struct worker *w)
{
    return w->index;
}

void *worker_ctx(const struct worker *w)
{
    return w->pool->hooks.ctx;
}

void worker_set_data(struct worker *w, void *data)
{
    w->data = data;
}

void *worker_data(const struct worker *w)
{
    return w->data;
}
