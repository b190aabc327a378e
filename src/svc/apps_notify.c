/*
 * svc/apps_notify — POST /api/v1/notify: the request model (parse and
 * validate), recipient expansion (users, group:NAME, "online", "everyone" on
 * the store thread), delivery through svc/deliver (a MESSAGE from the app's
 * address to every device; stored offline until the TTL ends), and the
 * per-recipient reports kept for GET /api/v1/notify/{id}.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/random.h"
#include "svc/apps_int.h"
#include "svc/deliver.h"

/* ---- the request model ---- */

static const char *const prio_names[] = {"low", "normal", "high", "urgent"};
static const char *const prio_sip[] = {"non-urgent", "normal", "urgent", "emergency"};

const char *notify_priority_name(enum notify_priority p)
{
    return (unsigned)p < 4 ? prio_names[p] : "normal";
}

void notify_req_free(struct notify_req *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nto; i++)
        free(r->to[i]);
    free(r->to);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static bool ctype_ok(const char *s, size_t n)
{
    if (n == 0 || n > STORE_CTYPE_MAX)
        return false;
    const char *slash = memchr(s, '/', n);
    if (!slash || slash == s || slash == s + n - 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int parse_to(json_t *to, struct notify_req *out, char *err, size_t errlen)
{
    if (json_is_string(to)) {
        const char *v = json_string_value(to);
        if (strcmp(v, "online") == 0)
            out->target = NOTIFY_ONLINE;
        else if (strcmp(v, "everyone") == 0)
            out->target = NOTIFY_EVERYONE;
        else
            return fail(err, errlen, "\"to\": \"%.64s\" is not \"online\", \"everyone\" or a list",
                        v);
        return 0;
    }
    if (!json_is_array(to) || json_array_size(to) == 0)
        return fail(err, errlen, "%s",
                    "\"to\": expected a non-empty list of users and group:NAME, "
                    "\"online\" or \"everyone\"");
    if (json_array_size(to) > NOTIFY_MAX_LIST)
        return fail(err, errlen, "\"to\": more than %s entries", "1000");
    out->target = NOTIFY_LIST;
    out->to = calloc(json_array_size(to), sizeof *out->to);
    if (!out->to)
        return -ENOMEM;
    size_t i;
    json_t *v;
    json_array_foreach(to, i, v)
    {
        if (!json_is_string(v))
            return fail(err, errlen, "%s", "\"to\": every entry must be a string");
        str s = str_make(json_string_value(v), json_string_length(v));
        str name = str_has_prefix(s, STR("group:")) ? str_skip(s, 6) : s;
        if (!store_name_valid(name))
            return fail(err, errlen, "\"to\": \"%.80s\" is not a user name or group:NAME",
                        json_string_value(v));
        out->to[out->nto] = str_dup(s);
        if (!out->to[out->nto])
            return -ENOMEM;
        out->nto++;
    }
    return 0;
}

int notify_req_parse(str body, uint32_t max_ttl, struct notify_req *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->priority = NOTIFY_NORMAL;
    out->ttl = max_ttl < 86400 ? max_ttl : 86400;
    snprintf(out->content_type, sizeof out->content_type, "text/plain");
    json_error_t je;
    json_t *doc = json_loadb(body.s ? body.s : "", body.len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errlen, "bad JSON at line %d column %d: %s", je.line, je.column, je.text);
        return -EINVAL;
    }
    int rc = 0;
    const char *k;
    json_t *v;
    bool has_to = false;
    if (!json_is_object(doc)) {
        rc = fail(err, errlen, "%s", "the body must be a JSON object");
        goto done;
    }
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "to") == 0) {
            has_to = true;
            rc = parse_to(v, out, err, errlen);
        } else if (strcmp(k, "text") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0)
                rc = fail(err, errlen, "%s", "\"text\": expected a non-empty string");
            else if (json_string_length(v) > NOTIFY_TEXT_MAX)
                rc = fail(err, errlen, "\"text\": more than %s bytes", "16384");
            else if (!(out->text = strdup(json_string_value(v))))
                rc = -ENOMEM;
        } else if (strcmp(k, "content_type") == 0) {
            if (!json_is_string(v) || !ctype_ok(json_string_value(v), json_string_length(v)))
                rc = fail(err, errlen, "%s", "\"content_type\": expected type/subtype");
            else
                snprintf(out->content_type, sizeof out->content_type, "%s", json_string_value(v));
        } else if (strcmp(k, "priority") == 0) {
            rc = fail(err, errlen, "%s", "\"priority\": expected low, normal, high or urgent");
            for (unsigned p = 0; p < 4 && json_is_string(v); p++) {
                if (strcmp(json_string_value(v), prio_names[p]) == 0) {
                    out->priority = (enum notify_priority)p;
                    rc = 0;
                }
            }
        } else if (strcmp(k, "ttl") == 0) {
            char lim[24];
            snprintf(lim, sizeof lim, "%u", max_ttl);
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > (json_int_t)max_ttl)
                rc = fail(err, errlen, "\"ttl\": expected seconds from 0 to %s", lim);
            else
                out->ttl = (uint32_t)json_integer_value(v);
        } else {
            rc = fail(err, errlen,
                      "unknown field \"%.64s\" (known: to, text, content_type, priority, ttl)", k);
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && !has_to)
        rc = fail(err, errlen, "%s", "\"to\" is required");
    if (rc == 0 && !out->text)
        rc = fail(err, errlen, "%s", "\"text\" is required");
done:
    json_decref(doc);
    if (rc < 0)
        notify_req_free(out);
    return rc;
}

/* ---- reports ---- */

enum rstatus {
    R_PENDING,
    R_DELIVERED,
    R_QUEUED,
    R_FAILED,
    R_NOT_ONLINE,
    R_UNKNOWN,
};
static const char *const rstatus_names[] = {"pending", "delivered",  "queued",
                                            "failed",  "not-online", "unknown-user"};

struct rcpt {
    char user[STORE_NAME_MAX + 1];
    uint8_t status;
    uint16_t devices;
};

struct notif {
    _Atomic uint32_t refs;
    pthread_mutex_t lock;
    char id[24];
    char app[STORE_NAME_MAX + 1];
    int64_t at_ms;
    enum notify_target target;
    struct rcpt *r;
    size_t n;
    size_t pending;
    size_t counts[6];
    /* the request waiting for the outcome */
    struct worker *w;
    notify_done_fn done;
    void *arg;
};

struct notify_table {
    pthread_mutex_t lock;
    struct map *byid;
    char (*ring)[24]; /* ids in creation order */
    size_t keep, head, len;
};

static void notif_unref(struct notif *n)
{
    if (n && atomic_fetch_sub(&n->refs, 1) == 1) {
        pthread_mutex_destroy(&n->lock);
        free(n->r);
        free(n);
    }
}

int apps__notify_init(struct apps *a)
{
    struct notify_table *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->keep = a->cfg->apps.notify_keep ? a->cfg->apps.notify_keep : 10000;
    t->ring = calloc(t->keep, sizeof *t->ring);
    if (!t->ring || map_new(&t->byid, MAP_KEY_STR, 64) < 0) {
        free(t->ring);
        free(t);
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    a->notify = t;
    return 0;
}

void apps__notify_fini(struct apps *a)
{
    struct notify_table *t = a->notify;
    if (!t)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(t->byid, &it, &e))
        notif_unref(e.val);
    map_free(t->byid);
    free(t->ring);
    pthread_mutex_destroy(&t->lock);
    free(t);
    a->notify = NULL;
}

static void table_add(struct notify_table *t, struct notif *n)
{
    pthread_mutex_lock(&t->lock);
    if (t->len == t->keep) {
        notif_unref(map_del_str(t->byid, str_cstr(t->ring[t->head])));
        t->head = (t->head + 1) % t->keep;
        t->len--;
    }
    atomic_fetch_add(&n->refs, 1);
    if (map_set_str(t->byid, str_cstr(n->id), n, NULL) < 0) {
        atomic_fetch_sub(&n->refs, 1);
    } else {
        memcpy(t->ring[(t->head + t->len) % t->keep], n->id, sizeof n->id);
        t->len++;
    }
    pthread_mutex_unlock(&t->lock);
}

static json_t *counts_json(struct notif *n, bool with_list)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(n->id));
    size_t listed = n->n - (n->target == NOTIFY_ONLINE ? n->counts[R_NOT_ONLINE] : 0);
    json_object_set_new(o, "recipients", json_integer((json_int_t)listed));
    json_object_set_new(o, "delivered", json_integer((json_int_t)n->counts[R_DELIVERED]));
    json_object_set_new(o, "queued", json_integer((json_int_t)n->counts[R_QUEUED]));
    json_object_set_new(o, "failed",
                        json_integer((json_int_t)(n->counts[R_FAILED] + n->counts[R_UNKNOWN])));
    json_object_set_new(o, "pending", json_integer((json_int_t)n->counts[R_PENDING]));
    if (n->target != NOTIFY_ONLINE)
        json_object_set_new(o, "not_online", json_integer((json_int_t)n->counts[R_NOT_ONLINE]));
    if (with_list) {
        json_object_set_new(o, "app", json_string(n->app));
        json_object_set_new(o, "at", json_integer((json_int_t)n->at_ms));
        json_t *arr = json_array();
        for (size_t i = 0; i < n->n; i++) {
            if (n->target == NOTIFY_ONLINE && n->r[i].status == R_NOT_ONLINE)
                continue;
            json_array_append_new(arr, json_pack("{s:s, s:s, s:i}", "user", n->r[i].user, "status",
                                                 rstatus_names[n->r[i].status], "devices",
                                                 (int)n->r[i].devices));
        }
        json_object_set_new(o, "recipients_detail", arr);
    }
    return o;
}

json_t *apps_notify_report(struct apps *a, const struct apps_app *app, str id)
{
    struct notify_table *t = a->notify;
    pthread_mutex_lock(&t->lock);
    struct notif *n = map_get_str(t->byid, id);
    if (n)
        atomic_fetch_add(&n->refs, 1);
    pthread_mutex_unlock(&t->lock);
    if (!n)
        return NULL;
    json_t *o = NULL;
    if (strcmp(n->app, app->name) == 0) {
        pthread_mutex_lock(&n->lock);
        o = counts_json(n, true);
        pthread_mutex_unlock(&n->lock);
    }
    notif_unref(n);
    return o;
}

/* ---- sending ---- */

static void finish_task(struct worker *w, void *arg)
{
    struct notif *n = arg;
    pthread_mutex_lock(&n->lock);
    json_t *o = counts_json(n, false);
    notify_done_fn done = n->done;
    void *darg = n->arg;
    n->done = NULL;
    pthread_mutex_unlock(&n->lock);
    if (done)
        done(w, 200, o, darg);
    else
        json_decref(o);
    notif_unref(n);
}

/* The last outcome arrived: answer the request on its worker. Takes a reference. */
static void finish(struct notif *n)
{
    if (worker_post(n->w, finish_task, n) < 0) {
        /* the worker is stopping: the request is gone with it */
        notif_unref(n);
    }
}

struct sent {
    struct notif *n;
    size_t i;
};

static void one_done(const struct deliver_result *res, void *arg)
{
    struct sent *s = arg;
    struct notif *n = s->n;
    uint8_t st = R_FAILED;
    switch (res->outcome) {
    case DELIVER_DELIVERED:
        st = R_DELIVERED;
        break;
    case DELIVER_STORED:
        st = R_QUEUED;
        break;
    case DELIVER_NOT_ONLINE:
        st = R_NOT_ONLINE;
        break;
    case DELIVER_FAILED:
        st = R_FAILED;
        break;
    }
    pthread_mutex_lock(&n->lock);
    n->counts[n->r[s->i].status]--;
    n->r[s->i].status = st;
    n->r[s->i].devices = (uint16_t)res->devices;
    n->counts[st]++;
    bool last = --n->pending == 0;
    pthread_mutex_unlock(&n->lock);
    free(s);
    if (last)
        finish(n);
    else
        notif_unref(n);
}

/* ---- expansion on the store thread ---- */

struct expand_job {
    struct apps *a;
    struct apps_app app;
    struct notify_req req;
    struct worker *w;
    notify_done_fn done;
    void *arg;
    /* results */
    struct map *seen;
    char (*users)[STORE_NAME_MAX + 1];
    bool *unknown;
    size_t n, cap, max;
    uint16_t err_status;
    char err[160];
};

static int add_user(struct expand_job *j, str name, bool unknown)
{
    if (map_get_str(j->seen, name))
        return 0;
    if (j->n >= j->max) {
        j->err_status = 413;
        snprintf(j->err, sizeof j->err, "more than %zu recipients (apps.max_recipients)", j->max);
        return -E2BIG;
    }
    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 64;
        void *u = realloc(j->users, cap * sizeof *j->users);
        if (!u)
            return -ENOMEM;
        j->users = u;
        bool *k = realloc(j->unknown, cap * sizeof *k);
        if (!k)
            return -ENOMEM;
        j->unknown = k;
        j->cap = cap;
    }
    str_copy(j->users[j->n], sizeof j->users[j->n], name);
    j->unknown[j->n] = unknown;
    if (map_set_str(j->seen, name, (void *)1, NULL) < 0)
        return -ENOMEM;
    j->n++;
    return 0;
}

static int member_cb(void *ctx, str name)
{
    return add_user(ctx, name, false);
}

static int everyone_cb(void *ctx, const struct store_user *u)
{
    return u->enabled ? add_user(ctx, str_cstr(u->name), false) : 0;
}

static int expand_run(struct store *s, void *arg)
{
    struct expand_job *j = arg;
    if (map_new(&j->seen, MAP_KEY_STR, 64) < 0)
        return -ENOMEM;
    if (j->req.target != NOTIFY_LIST)
        return store_user_list(s, everyone_cb, j);
    for (size_t i = 0; i < j->req.nto; i++) {
        str e = str_cstr(j->req.to[i]);
        int rc;
        if (str_has_prefix(e, STR("group:"))) {
            rc = store_group_members(s, str_skip(e, 6), member_cb, j);
            if (rc == -ENOENT) {
                j->err_status = 400;
                snprintf(j->err, sizeof j->err, "no such group: %.64s", e.s + 6);
            }
        } else {
            struct store_user u;
            rc = store_user_get(s, e, &u);
            if (rc == 0 || rc == -ENOENT)
                rc = add_user(j, e, rc == -ENOENT || !u.enabled);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void expand_free(struct expand_job *j)
{
    map_free(j->seen);
    free(j->users);
    free(j->unknown);
    notify_req_free(&j->req);
    free(j);
}

static void start_sending(struct expand_job *j, struct notif *n)
{
    struct apps *a = j->a;
    char from[700];
    if (j->app.address[0]) {
        snprintf(from, sizeof from, "\"%s\" <%s>", j->app.name, j->app.address);
    } else {
        str realm = core_realm(a->deps.srv);
        snprintf(from, sizeof from, "\"%s\" <sip:noreply@%.*s>", j->app.name, STR_FMT(realm));
    }
    struct sip_hdr_add extra[1] = {{STR("Priority"), str_cstr(prio_sip[j->req.priority])}};
    struct deliver_msg m = {
        .from = str_cstr(from),
        .content_type = str_cstr(j->req.content_type),
        .body = str_cstr(j->req.text),
        .extra = extra,
        .nextra = 1,
        .offline = j->req.ttl > 0 && j->req.target != NOTIFY_ONLINE,
        .expires_ms = (int64_t)clock_wall_ms() + (int64_t)j->req.ttl * 1000,
    };
    /* the creator's reference holds the notification until the loop is over (outcomes
     * may arrive meanwhile); pending counts the sends plus that hold */
    pthread_mutex_lock(&n->lock);
    n->pending = n->counts[R_PENDING] + 1;
    pthread_mutex_unlock(&n->lock);
    for (size_t i = 0; i < n->n; i++) {
        if (n->r[i].status != R_PENDING)
            continue;
        struct sent *s = malloc(sizeof *s);
        m.to_user = str_cstr(n->r[i].user);
        atomic_fetch_add(&n->refs, 1);
        int rc = s ? 0 : -ENOMEM;
        if (s) {
            *s = (struct sent){n, i};
            rc = deliver_send(a->deps.deliver, &m, one_done, s);
        }
        if (rc < 0) {
            free(s);
            atomic_fetch_sub(&n->refs, 1);
            pthread_mutex_lock(&n->lock);
            n->counts[R_PENDING]--;
            n->r[i].status = R_FAILED;
            n->counts[R_FAILED]++;
            n->pending--;
            pthread_mutex_unlock(&n->lock);
        }
    }
    pthread_mutex_lock(&n->lock);
    bool last = --n->pending == 0;
    pthread_mutex_unlock(&n->lock);
    if (last)
        finish(n);
    else
        notif_unref(n);
}

static void expand_done(struct worker *w, int rc, void *arg)
{
    struct expand_job *j = arg;
    if (!w) {
        expand_free(j);
        return;
    }
    if (rc < 0 || j->err_status) {
        uint16_t st = j->err_status ? j->err_status : 503;
        const char *why = j->err_status ? j->err : "the store is not available";
        j->done(w, st, json_pack("{s:s}", "error", why), j->arg);
        expand_free(j);
        return;
    }
    struct notif *n = calloc(1, sizeof *n);
    char tok[17];
    if (!n || random_token(tok, 16) < 0 || !(n->r = calloc(j->n ? j->n : 1, sizeof *n->r))) {
        free(n);
        j->done(w, 503, json_pack("{s:s}", "error", "out of memory"), j->arg);
        expand_free(j);
        return;
    }
    atomic_init(&n->refs, 1);
    pthread_mutex_init(&n->lock, NULL);
    snprintf(n->id, sizeof n->id, "n-%s", tok);
    snprintf(n->app, sizeof n->app, "%s", j->app.name);
    n->at_ms = (int64_t)clock_wall_ms();
    n->target = j->req.target;
    n->n = j->n;
    n->w = w;
    n->done = j->done;
    n->arg = j->arg;
    for (size_t i = 0; i < j->n; i++) {
        memcpy(n->r[i].user, j->users[i], sizeof n->r[i].user);
        n->r[i].status = j->unknown[i] ? R_UNKNOWN : R_PENDING;
        n->counts[n->r[i].status]++;
    }
    table_add(j->a->notify, n);
    log_info("apps", "notify %s from %s: %zu recipient(s)", n->id, n->app, n->n);
    start_sending(j, n); /* takes n's first reference */
    expand_free(j);
}

int apps_notify(struct apps *a, const struct apps_app *app, struct notify_req *r, struct worker *w,
                notify_done_fn done, void *arg)
{
    if (!a->deps.st || !a->deps.deliver) {
        notify_req_free(r);
        return -ESHUTDOWN;
    }
    struct expand_job *j = calloc(1, sizeof *j);
    if (!j) {
        notify_req_free(r);
        return -ENOMEM;
    }
    j->a = a;
    j->app = *app;
    j->req = *r;
    memset(r, 0, sizeof *r);
    j->w = w;
    j->done = done;
    j->arg = arg;
    j->max = a->cfg->apps.max_recipients;
    int rc = store_thread_submit(a->deps.st, w, expand_run, expand_done, j);
    if (rc < 0)
        expand_free(j);
    return rc;
}
