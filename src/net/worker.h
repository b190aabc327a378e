/*
 * worker — W threads, each running its own libuv loop. Work reaches a worker
 * through its queue (any thread may post; the worker runs the task on its own
 * loop), which is how state owned by one worker is touched from another
 * (DESIGN.md, Threads).
 */
#ifndef RTCD_NET_WORKER_H
#define RTCD_NET_WORKER_H

#include <stddef.h>
#include <uv.h>

struct worker;
struct worker_pool;

typedef void (*worker_task_fn)(struct worker *w, void *arg);
/* Called on each worker's own thread once its loop is set up, and again before it closes. */
typedef void (*worker_hook_fn)(struct worker *w, void *ctx);

struct worker_hooks {
    worker_hook_fn on_start; /* open sockets, timers... on the worker's loop */
    worker_hook_fn on_stop;  /* close what on_start opened (uv_close) */
    void *ctx;
};

/*
 * Starts n workers (0 = one per core) and returns when every on_start hook has
 * run. 0, or a negative errno (no thread left running); *out set only on success.
 */
int worker_pool_start(struct worker_pool **out, unsigned n, const struct worker_hooks *hooks);
/* Asks every worker to stop, runs on_stop on each, joins the threads and frees the pool. */
void worker_pool_stop(struct worker_pool *p);
unsigned worker_pool_size(const struct worker_pool *p);
struct worker *worker_pool_get(struct worker_pool *p, unsigned i);

/*
 * Runs fn(w, arg) on w's thread, soon. Safe from any thread. 0, -ENOMEM, or
 * -ESHUTDOWN once the worker is stopping (the task is not run: the caller
 * still owns arg).
 */
int worker_post(struct worker *w, worker_task_fn fn, void *arg);

/* Another worker of the same pool (by index), or NULL. */
struct worker *worker_sibling(struct worker *w, unsigned i);
uv_loop_t *worker_loop(struct worker *w);
unsigned worker_index(const struct worker *w);
/* The pool-wide context given in the hooks. */
void *worker_ctx(const struct worker *w);
/* Per-worker slot for the owner's own state (set on the worker's thread). */
void worker_set_data(struct worker *w, void *data);
void *worker_data(const struct worker *w);

#endif
