/*
 * svc/apps — the apps registry (a copy of the store's apps and channel rules),
 * rate limits, and bots: MESSAGEs to an app's address go to its WebSocket or
 * webhook; its answers go back as MESSAGEs, and a question with choices waits
 * for the user's reply (docs/apps.md). Notifications are in apps_notify.c,
 * channel rules in apps_chan.c.
 */
#include "svc/apps.h"

#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/map.h"
#include "base/random.h"
#include "svc/apps_int.h"
#include "svc/deliver.h"
#include "svc/webhook.h"

#define MAX_WORKERS 256

/* ---- the registry ---- */

static unsigned scopes_bits(const char *s)
{
    unsigned b = 0;
    if (strstr(s, "notify"))
        b |= APPS_NOTIFY;
    if (strstr(s, "bot"))
        b |= APPS_BOT;
    if (strstr(s, "channels"))
        b |= APPS_CHANNELS;
    return b;
}

struct load_ctx {
    struct apps_app *apps;
    size_t n, cap;
    struct apps_channel *ch;
    size_t nch, capch;
};

static int load_app(void *ctx, const struct store_app *sa)
{
    struct load_ctx *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct apps_app *v = realloc(c->apps, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->apps = v;
        c->cap = cap;
    }
    struct apps_app *a = &c->apps[c->n++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", sa->name);
    a->scopes = scopes_bits(sa->scopes);
    snprintf(a->address, sizeof a->address, "%s", sa->address);
    struct sip_uri u;
    if (sa->address[0] && sip_uri_parse(str_cstr(a->address), &u) == 0) {
        str_copy(a->user, sizeof a->user, u.user);
        str_copy(a->domain, sizeof a->domain, u.host);
    }
    snprintf(a->webhook, sizeof a->webhook, "%s", sa->webhook);
    snprintf(a->secret, sizeof a->secret, "%s", sa->key_hash);
    a->rate_per_min = sa->rate_per_min;
    return 0;
}

static int load_channel(void *ctx, const struct store_channel *sc)
{
    struct load_ctx *c = ctx;
    if (c->nch == c->capch) {
        size_t cap = c->capch ? c->capch * 2 : 16;
        struct apps_channel *v = realloc(c->ch, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        c->ch = v;
        c->capch = cap;
    }
    struct apps_channel *ch = &c->ch[c->nch++];
    snprintf(ch->name, sizeof ch->name, "%s", sc->name);
    snprintf(ch->subscribe, sizeof ch->subscribe, "%s", sc->subscribe);
    snprintf(ch->publish, sizeof ch->publish, "%s", sc->publish);
    return 0;
}

void apps_store_poll(struct store *s, void *arg)
{
    struct apps *a = arg;
    int64_t seq = 0;
    if (store_apps_seq(s, &seq) < 0 || seq == a->seq)
        return;
    struct load_ctx c = {0};
    int rc = store_app_list(s, load_app, &c);
    if (rc == 0)
        rc = store_channel_list(s, load_channel, &c);
    if (rc < 0) {
        log_warn("apps", "cannot reload apps: %s", store_errmsg(s));
        free(c.apps);
        free(c.ch);
        return;
    }
    pthread_mutex_lock(&a->lock);
    free(a->apps);
    free(a->chans);
    a->apps = c.apps;
    a->napps = c.n;
    a->chans = c.ch;
    a->nchans = c.nch;
    pthread_mutex_unlock(&a->lock);
    if (a->seq >= 0)
        log_info("apps", "reloaded: %zu app(s), %zu channel(s)", c.n, c.nch);
    else
        apps__chan_restore(a, s); /* the first load, before any worker runs */
    a->seq = seq;
}

int apps_new(struct apps **out, const struct config *cfg)
{
    struct apps *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    pthread_mutex_init(&a->lock, NULL);
    a->cfg = cfg;
    a->seq = -1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nworkers = cfg->server.workers ? cfg->server.workers : cores > 0 ? (unsigned)cores : 1;
    a->wh = calloc(MAX_WORKERS, sizeof *a->wh);
    struct chan_limits lim = {.max_queue = cfg->apps.channel_queue,
                              .max_payload = cfg->apps.max_request_body};
    if (!a->wh || map_new(&a->buckets, MAP_KEY_STR, 16) < 0 ||
        map_new(&a->questions, MAP_KEY_STR, 16) < 0 || map_new(&a->bots, MAP_KEY_STR, 16) < 0 ||
        chan_hub_new(&a->hub, &lim) < 0 || apps__notify_init(a) < 0 ||
        apps__chan_init(a, nworkers) < 0) {
        apps_free(a);
        return -ENOMEM;
    }
    *out = a;
    return 0;
}

static void free_vals(struct map *m)
{
    if (!m)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(m, &it, &e))
        free(e.val);
    map_free(m);
}

void apps_free(struct apps *a)
{
    if (!a)
        return;
    apps__notify_fini(a);
    apps__chan_fini(a);
    free_vals(a->buckets);
    free_vals(a->questions);
    free_vals(a->bots);
    chan_hub_free(a->hub);
    free(a->apps);
    free(a->chans);
    free(a->wh);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void apps_attach(struct apps *a, const struct apps_deps *d)
{
    a->deps = *d;
}

void apps_worker_start(struct worker *w, void *arg)
{
    struct apps *a = arg;
    unsigned i = worker_index(w);
    struct webhook_opts o = {.timeout_ms = a->cfg->apps.webhook_timeout_ms,
                             .retries = a->cfg->apps.webhook_retries,
                             .backoff_ms = a->cfg->apps.webhook_backoff_ms};
    if (i < MAX_WORKERS && webhook_new(&a->wh[i], worker_loop(w), &o) < 0)
        log_error("apps", "worker %u: no webhook client", i);
    apps__chan_worker_start(a, w);
}

void apps_worker_stop(struct worker *w, void *arg)
{
    struct apps *a = arg;
    unsigned i = worker_index(w);
    apps__chan_worker_stop(a, w);
    if (i < MAX_WORKERS) {
        webhook_free(a->wh[i]);
        a->wh[i] = NULL;
    }
}

int apps_auth(struct apps *a, str key, struct apps_app *out)
{
    char hash[65];
    if (key.len == 0 || key.len > 256 || store_app_key_hash(key, hash) < 0)
        return -ENOENT;
    int rc = -ENOENT;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->napps; i++) {
        if (strcmp(a->apps[i].secret, hash) == 0) {
            *out = a->apps[i];
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int apps_get(struct apps *a, str name, struct apps_app *out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->napps; i++) {
        if (str_eq(str_cstr(a->apps[i].name), name)) {
            *out = a->apps[i];
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

int apps_channel_get(struct apps *a, str name, struct apps_channel *out)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->nchans; i++) {
        if (str_eq(str_cstr(a->chans[i].name), name)) {
            *out = a->chans[i];
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

size_t apps_count(struct apps *a)
{
    pthread_mutex_lock(&a->lock);
    size_t n = a->napps + a->nchans;
    pthread_mutex_unlock(&a->lock);
    return n;
}

struct chan_hub *apps_hub(struct apps *a)
{
    return a->hub;
}

struct bucket {
    double tokens;
    uint64_t last_ms;
};

int apps_rate_take(struct apps *a, const struct apps_app *app, uint64_t now_ms,
                   uint32_t *retry_after_s)
{
    if (!app->rate_per_min)
        return 0;
    double rate = app->rate_per_min / 60000.0; /* tokens per ms */
    double cap = app->rate_per_min;
    int rc = 0;
    pthread_mutex_lock(&a->lock);
    struct bucket *b = map_get_str(a->buckets, str_cstr(app->name));
    if (!b) {
        b = calloc(1, sizeof *b);
        if (b && map_set_str(a->buckets, str_cstr(app->name), b, NULL) < 0) {
            free(b);
            b = NULL;
        }
        if (b) {
            b->tokens = cap;
            b->last_ms = now_ms;
        }
    }
    if (b) {
        if (now_ms > b->last_ms)
            b->tokens += (double)(now_ms - b->last_ms) * rate;
        if (b->tokens > cap)
            b->tokens = cap;
        b->last_ms = now_ms;
        if (b->tokens >= 1.0) {
            b->tokens -= 1.0;
        } else {
            double ms = (1.0 - b->tokens) / rate;
            *retry_after_s = (uint32_t)(ms / 1000.0) + 1;
            rc = -EAGAIN;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- bots: questions that wait for a choice ---- */

struct question {
    char id[24];
    int64_t expires_ms;
    char *text;
    char *choices; /* JSON array text */
    char *context;
};

static void question_free(struct question *q)
{
    if (!q)
        return;
    free(q->text);
    free(q->choices);
    free(q->context);
    free(q);
}

static size_t qkey(char *out, size_t cap, const char *app, str user)
{
    int n = snprintf(out, cap, "%s/%.*s", app, STR_FMT(user));
    return n < 0 ? 0 : (size_t)n;
}

/* Takes the question app asked user (NULL when none or expired): the caller frees it. */
static struct question *question_take(struct apps *a, const char *app, str user)
{
    char k[160];
    size_t n = qkey(k, sizeof k, app, user);
    pthread_mutex_lock(&a->lock);
    struct question *q = map_del_str(a->questions, str_make(k, n));
    pthread_mutex_unlock(&a->lock);
    if (q && q->expires_ms < (int64_t)clock_wall_ms()) {
        question_free(q);
        q = NULL;
    }
    return q;
}

static void question_put(struct apps *a, const char *app, str user, struct question *q)
{
    char k[160];
    size_t n = qkey(k, sizeof k, app, user);
    void *old = NULL;
    pthread_mutex_lock(&a->lock);
    /* a bounded table: when full, forget every expired question first */
    if (map_count(a->questions) >= 100000) {
        struct map_iter it = MAP_ITER_INIT;
        struct map_entry e;
        int64_t now = (int64_t)clock_wall_ms();
        while (map_next(a->questions, &it, &e)) {
            struct question *x = e.val;
            if (x->expires_ms < now) {
                map_del_current(a->questions, &it);
                question_free(x);
            }
        }
    }
    if (map_count(a->questions) >= 100000 ||
        map_set_str(a->questions, str_make(k, n), q, &old) < 0) {
        old = q;
    }
    pthread_mutex_unlock(&a->lock);
    question_free(old);
}

/* ---- bots: answers ---- */

static void answer_done(const struct deliver_result *res, void *arg)
{
    char *who = arg;
    if (res->outcome == DELIVER_FAILED)
        log_info("apps", "bot answer to %s failed (%d, status %u)", who, res->err, res->status);
    free(who);
}

int apps_bot_send(struct apps *a, const struct apps_app *app, str user, str text, json_t *choices,
                  str context)
{
    if (!(app->scopes & APPS_BOT) || !app->address[0])
        return -EPERM;
    if (!store_name_valid(user) || text.len == 0 || text.len > NOTIFY_TEXT_MAX ||
        context.len > 1024 || !a->deps.deliver)
        return -EINVAL;
    struct cred cr;
    if (a->deps.creds && store_creds_get(a->deps.creds, user, &cr) < 0)
        return -EINVAL;
    size_t nch = choices ? json_array_size(choices) : 0;
    if (choices && (!json_is_array(choices) || nch > 20))
        return -EINVAL;
    struct buf body;
    buf_init(&body, NOTIFY_TEXT_MAX + 8192);
    int rc = buf_append_str(&body, text);
    for (size_t i = 0; i < nch && rc == 0; i++) {
        json_t *c = json_array_get(choices, i);
        if (!json_is_string(c) || json_string_length(c) == 0 || json_string_length(c) > 200)
            rc = -EINVAL;
        else
            rc = buf_printf(&body, "\n%zu. %s", i + 1, json_string_value(c));
    }
    char from[600];
    snprintf(from, sizeof from, "<%s>", app->address);
    struct deliver_msg m = {
        .from = str_cstr(from),
        .to_user = user,
        .content_type = STR("text/plain;charset=utf-8"),
        .body = buf_str(&body),
        .offline = true,
        .expires_ms = (int64_t)clock_wall_ms() + 3600 * 1000,
    };
    char *who = NULL;
    if (rc == 0) {
        who = malloc(user.len + 1);
        if (!who)
            rc = -ENOMEM;
        else
            str_copy(who, user.len + 1, user);
    }
    if (rc == 0 && nch) {
        struct question *q = calloc(1, sizeof *q);
        char tok[17];
        if (!q || random_token(tok, 16) < 0) {
            free(q);
            rc = -ENOMEM;
        } else {
            snprintf(q->id, sizeof q->id, "q-%s", tok);
            q->expires_ms = (int64_t)clock_wall_ms() + (int64_t)a->cfg->apps.question_ttl * 1000;
            q->text = str_dup(text);
            q->choices = json_dumps(choices, JSON_COMPACT);
            q->context = str_dup(context);
            if (!q->text || !q->choices || !q->context) {
                question_free(q);
                rc = -ENOMEM;
            } else {
                question_put(a, app->name, user, q);
            }
        }
    }
    if (rc == 0)
        rc = deliver_send(a->deps.deliver, &m, answer_done, who);
    if (rc < 0)
        free(who);
    buf_free(&body);
    return rc;
}

/* Applies a bot's answer document {"text", "choices"?, "context"?} for user. */
static int apply_answer(struct apps *a, const struct apps_app *app, str user, json_t *doc)
{
    json_t *text = json_object_get(doc, "text");
    json_t *choices = json_object_get(doc, "choices");
    json_t *ctx = json_object_get(doc, "context");
    if (!json_is_string(text) || (choices && !json_is_array(choices)) ||
        (ctx && !json_is_string(ctx)))
        return -EINVAL;
    str c = ctx ? str_make(json_string_value(ctx), json_string_length(ctx)) : STR("");
    return apps_bot_send(a, app, user, str_make(json_string_value(text), json_string_length(text)),
                         choices, c);
}

/* ---- bots: inbound MESSAGEs ---- */

struct hook_call {
    struct apps *a;
    struct apps_app app;
    char user[STORE_NAME_MAX + 1];
};

static void hook_done(void *arg, int rc, long status, str ctype, str body, unsigned attempts)
{
    struct hook_call *h = arg;
    if (rc < 0 || status < 200 || status >= 300) {
        log_info("apps", "bot %s: webhook %s: %s (%ld) after %u attempt(s)", h->app.name,
                 h->app.webhook, rc < 0 ? strerror(-rc) : "HTTP status", status, attempts);
    } else if (status != 204 && body.len) {
        int arc;
        if (str_has_caseprefix(ctype, STR("application/json"))) {
            json_error_t je;
            json_t *doc = json_loadb(body.s, body.len, 0, &je);
            arc = doc && json_is_object(doc) ? apply_answer(h->a, &h->app, str_cstr(h->user), doc)
                                             : -EINVAL;
            json_decref(doc);
        } else {
            arc = apps_bot_send(h->a, &h->app, str_cstr(h->user), body, NULL, STR(""));
        }
        if (arc < 0)
            log_info("apps", "bot %s: answer not sent to %s: %s", h->app.name, h->user,
                     strerror(-arc));
    }
    free(h);
}

/* The app whose address r's Request-URI names (copied into out). */
static bool find_bot(struct apps *a, struct core_req *r, struct apps_app *out)
{
    bool found = false;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->napps && !found; i++) {
        struct apps_app *x = &a->apps[i];
        if (!x->user[0] || !str_eq(str_cstr(x->user), r->user))
            continue;
        str dom;
        if (core_canonical_domain(r->sw, str_cstr(x->domain), &dom) && str_caseeq(dom, r->domain)) {
            *out = *x;
            found = true;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return found;
}

static void reply(struct core_req *r, uint16_t status, const char *reason)
{
    core_respond(r, status, str_cstr(reason), NULL, 0, STR_NULL, STR_NULL);
}

/* Matches the user's reply against the question's choices: a number or the text. */
static json_t *match_choice(json_t *choices, str text)
{
    text = str_trim(text);
    uint32_t k;
    size_t n = json_array_size(choices);
    if (str_to_u32(text, &k) == 0 && k >= 1 && k <= n)
        return json_array_get(choices, k - 1);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(choices, i);
        if (json_is_string(c) &&
            str_caseeq(text, str_make(json_string_value(c), json_string_length(c))))
            return c;
    }
    return NULL;
}

static json_t *bot_event(struct apps *a, const struct apps_app *app, struct core_req *r, str user)
{
    char id[17];
    if (random_token(id, 16) < 0)
        return NULL;
    json_t *ev = json_object();
    json_object_set_new(ev, "type", json_string("message"));
    json_object_set_new(ev, "id", json_stringn(id, 16));
    json_object_set_new(ev, "app", json_string(app->name));
    json_object_set_new(ev, "user", json_stringn(user.s, user.len));
    json_object_set_new(ev, "from", json_stringn(r->m->from.uri.s, r->m->from.uri.len));
    json_object_set_new(ev, "to", json_string(app->address));
    str ct = r->m->content_type.len ? r->m->content_type : STR("text/plain");
    json_object_set_new(ev, "content_type", json_stringn(ct.s, ct.len));
    json_t *t = json_stringn(r->m->body.s, r->m->body.len);
    json_object_set_new(ev, "text", t ? t : json_string(""));
    json_object_set_new(ev, "at", json_integer((json_int_t)clock_wall_ms()));
    struct question *q = question_take(a, app->name, user);
    if (q) {
        json_t *choices = json_loads(q->choices, 0, NULL);
        json_object_set_new(ev, "reply_to",
                            json_pack("{s:s, s:s, s:O, s:s}", "id", q->id, "text", q->text,
                                      "choices", choices ? choices : json_null(), "context",
                                      q->context));
        json_t *c = choices ? match_choice(choices, r->m->body) : NULL;
        if (c)
            json_object_set(ev, "choice", c);
        json_decref(choices);
        question_free(q);
    }
    return ev;
}

struct bot_conn {
    apps_bot_send_fn send;
    void *ctx;
};

bool apps_sip_request(void *arg, struct core_req *r)
{
    struct apps *a = arg;
    if (apps__chan_sip(a, r))
        return true;
    struct apps_app app;
    if (!find_bot(a, r, &app))
        return false;
    const struct sip_msg *m = r->m;
    if (m->method == SIP_M_OPTIONS) {
        reply(r, 200, "OK");
        return true;
    }
    if (m->method != SIP_M_MESSAGE) {
        static const struct sip_hdr_add allow = {STR("Allow"), STR("MESSAGE, OPTIONS")};
        core_respond(r, 405, STR("Method Not Allowed: a bot takes MESSAGE"), &allow, 1, STR_NULL,
                     STR_NULL);
        return true;
    }
    if (!(app.scopes & APPS_BOT)) {
        reply(r, 480, "Temporarily Unavailable: this app does not take messages");
        return true;
    }
    /* who is writing: the authenticated user, else the From user of one of our domains */
    str user = r->auth_user;
    struct sip_uri fu;
    if (!user.len && sip_uri_parse(m->from.uri, &fu) == 0) {
        str dom;
        if (core_canonical_domain(r->sw, fu.host, &dom))
            user = fu.user;
    }
    if (!user.len || !store_name_valid(user)) {
        reply(r, 403, "Forbidden: bots answer local users only");
        return true;
    }
    str ct = m->content_type;
    if (ct.len && !str_has_caseprefix(ct, STR("text/"))) {
        static const struct sip_hdr_add acc = {STR("Accept"), STR("text/plain")};
        core_respond(r, 415, STR_NULL, &acc, 1, STR_NULL, STR_NULL);
        return true;
    }
    if (m->body.len > NOTIFY_TEXT_MAX) {
        reply(r, 413, "Request Entity Too Large: at most 16384 bytes for a bot");
        return true;
    }
    json_t *ev = bot_event(a, &app, r, user);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!text) {
        reply(r, 500, "Server Internal Error");
        return true;
    }
    /* its WebSocket when connected, else its webhook */
    bool sent = false;
    pthread_mutex_lock(&a->lock);
    struct bot_conn *bc = map_get_str(a->bots, str_cstr(app.name));
    if (bc)
        sent = bc->send(bc->ctx, text, strlen(text)) == 0;
    pthread_mutex_unlock(&a->lock);
    unsigned wi = worker_index(core_worker(r->sw));
    if (!sent && app.webhook[0] && wi < MAX_WORKERS && a->wh[wi]) {
        struct hook_call *h = calloc(1, sizeof *h);
        if (h) {
            h->a = a;
            h->app = app;
            str_copy(h->user, sizeof h->user, user);
            if (webhook_post(a->wh[wi], app.webhook, str_cstr(text), str_cstr(app.secret),
                             hook_done, h) == 0)
                sent = true;
            else
                free(h);
        }
    }
    free(text);
    if (sent)
        reply(r, 202, "Accepted: passed to the bot");
    else
        reply(r, 480, "Temporarily Unavailable: the bot is not connected");
    return true;
}

int apps_bot_attach(struct apps *a, str app, apps_bot_send_fn send, void *ctx)
{
    struct bot_conn *bc = malloc(sizeof *bc);
    if (!bc)
        return -ENOMEM;
    bc->send = send;
    bc->ctx = ctx;
    void *old = NULL;
    pthread_mutex_lock(&a->lock);
    int rc = map_set_str(a->bots, app, bc, &old);
    pthread_mutex_unlock(&a->lock);
    free(old);
    if (rc < 0) {
        free(bc);
        return rc;
    }
    return 0;
}

void apps_bot_detach(struct apps *a, str app, void *ctx)
{
    pthread_mutex_lock(&a->lock);
    struct bot_conn *bc = map_get_str(a->bots, app);
    if (bc && bc->ctx == ctx)
        free(map_del_str(a->bots, app));
    pthread_mutex_unlock(&a->lock);
}

__attribute__((format(printf, 1, 2))) static json_t *ws_error(const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return json_pack("{s:s, s:s}", "op", "error", "error", msg);
}

json_t *apps_bot_ws_message(struct apps *a, const struct apps_app *app, const char *data,
                            size_t len)
{
    json_error_t je;
    json_t *doc = json_loadb(data, len, 0, &je);
    if (!doc || !json_is_object(doc)) {
        json_decref(doc);
        return ws_error("not a JSON object: %s", je.text);
    }
    json_t *op = json_object_get(doc, "op");
    json_t *to = json_object_get(doc, "to");
    json_t *out;
    if (!json_is_string(op) || strcmp(json_string_value(op), "send") != 0) {
        out = ws_error("%s", "unknown op (expected \"send\")");
    } else if (!json_is_string(to)) {
        out = ws_error("%s", "\"to\": a user name is required");
    } else {
        const char *k;
        json_t *v;
        out = NULL;
        json_object_foreach(doc, k, v)
        {
            if (strcmp(k, "op") && strcmp(k, "to") && strcmp(k, "text") && strcmp(k, "choices") &&
                strcmp(k, "context") && strcmp(k, "ref")) {
                out = ws_error("unknown field \"%s\"", k);
                break;
            }
        }
        if (!out) {
            int rc = apply_answer(a, app, str_cstr(json_string_value(to)), doc);
            if (rc == 0)
                out = json_pack("{s:s}", "op", "sent");
            else if (rc == -EPERM)
                out = ws_error("%s", "this app has no bot scope or address");
            else
                out = ws_error("%s", "not sent: \"to\" must be a user, \"text\" a non-empty "
                                     "string, \"choices\" up to 20 strings");
        }
        json_t *ref = json_object_get(doc, "ref");
        if (ref && out)
            json_object_set(out, "ref", ref);
    }
    json_decref(doc);
    return out;
}
