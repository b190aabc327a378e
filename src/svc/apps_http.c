/*
 * svc/apps_http — the apps' HTTP API on the HTTP server (docs/apps.md):
 *   POST /api/v1/notify                  notify users (scope notify)
 *   GET  /api/v1/notify/{id}             per-recipient report of one notification
 *   POST /api/v1/channels/{name}/publish publish a JSON value on a channel
 *   WS   /api/v1/channels/ws             subscribe / publish (apps, users, anyone per rules)
 *   WS   /api/v1/bot/ws                  a bot's events and answers (scope bot)
 * Apps authenticate with "Authorization: Bearer KEY" (WebSockets also ?key=KEY);
 * browser users with their login token (?token=T). Every handler runs on the
 * worker of its connection.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base/clock.h"
#include "base/log.h"
#include "http/http.h"
#include "svc/apps_http.h"
#include "svc/apps_int.h"
#include "svc/presence.h"

/* A bot's presence watch (pres_watch). Its callback may still be running on another
 * thread just after pres_unwatch, so an ended watch is freed only a while later. */
struct pwatch {
    struct http_server *hs;
    uint64_t ws_id;
    int id;
    uint64_t ended_ms;
    struct pwatch *next; /* in the graveyard */
};

struct apps_http {
    struct apps *a;
    struct http_server *hs;
    pthread_mutex_t lock;
    struct pwatch *grave;
};

#define BOT_MAX_WATCHES 256

/* ---- authentication and limits ---- */

/* Answers 401/403/429 itself and returns false; true with *app filled when allowed. */
static bool app_allowed(struct apps *a, struct http_ctx *c, unsigned scope, struct apps_app *app)
{
    str key = http_ctx_bearer(c);
    if (!key.s) {
        http_ctx_add_header(c, "WWW-Authenticate", "Bearer realm=\"rtcd\"");
        http_reply_error(c, 401, "an API key is required (Authorization: Bearer KEY)");
        return false;
    }
    if (apps_auth(a, key, app) < 0) {
        http_ctx_add_header(c, "WWW-Authenticate",
                            "Bearer realm=\"rtcd\", error=\"invalid_token\"");
        http_reply_error(c, 401, "unknown API key");
        return false;
    }
    if (!(app->scopes & scope)) {
        http_reply_error(c, 403, "app %s has no %s scope", app->name,
                         scope == APPS_NOTIFY ? "notify"
                         : scope == APPS_BOT  ? "bot"
                                              : "channels");
        return false;
    }
    uint32_t retry = 0;
    if (apps_rate_take(a, app, clock_mono_ms(), &retry) < 0) {
        char v[16];
        snprintf(v, sizeof v, "%u", retry);
        http_ctx_add_header(c, "Retry-After", v);
        http_reply_error(c, 429, "app %s is over its rate of %u requests a minute", app->name,
                         app->rate_per_min);
        return false;
    }
    return true;
}

/* The body, after checking its size and type; false when answered (413 / 415). */
static bool json_body(struct apps *a, struct http_ctx *c, str *out)
{
    str body = http_ctx_body(c);
    if (body.len > a->cfg->apps.max_request_body) {
        http_reply_error(c, 413, "the body has %zu bytes; at most %u (apps.max_request_body)",
                         body.len, a->cfg->apps.max_request_body);
        return false;
    }
    str ct = http_ctx_header(c, "Content-Type");
    if (ct.s && !str_has_caseprefix(str_trim(ct), STR("application/json"))) {
        http_reply_error(c, 415, "the body must be application/json");
        return false;
    }
    *out = body;
    return true;
}

/* ---- notify ---- */

static void notify_done(struct worker *w, uint16_t status, json_t *doc, void *arg)
{
    (void)w;
    http_reply_json(arg, status, doc);
}

static void h_notify(struct http_ctx *c, void *arg)
{
    struct apps_http *ah = arg;
    struct apps_app app;
    str body;
    if (!app_allowed(ah->a, c, APPS_NOTIFY, &app) || !json_body(ah->a, c, &body))
        return;
    struct notify_req r;
    char err[256];
    int rc = notify_req_parse(body, ah->a->cfg->apps.max_ttl, &r, err, sizeof err);
    if (rc < 0) {
        http_reply_error(c, rc == -EINVAL ? 400 : 503, "%s", rc == -EINVAL ? err : "out of memory");
        return;
    }
    rc = apps_notify(ah->a, &app, &r, http_ctx_worker(c), notify_done, c);
    if (rc < 0)
        http_reply_error(c, 503, "notifications are not available now (%s)", strerror(-rc));
}

static void h_notify_get(struct http_ctx *c, void *arg)
{
    struct apps_http *ah = arg;
    struct apps_app app;
    if (!app_allowed(ah->a, c, APPS_NOTIFY, &app))
        return;
    str path = http_ctx_path(c);
    str id = str_skip(path, strlen("/api/v1/notify/"));
    json_t *doc = id.len && id.len < 64 ? apps_notify_report(ah->a, &app, id) : NULL;
    if (!doc) {
        http_reply_error(c, 404, "no notification %.*s for app %s (unknown or forgotten)",
                         (int)(id.len > 64 ? 64 : id.len), id.s, app.name);
        return;
    }
    http_reply_json(c, 200, doc);
}

/* ---- publish ---- */

struct pub {
    struct apps_http *ah;
    struct http_ctx *c;
    char channel[STORE_NAME_MAX + 1];
    char from[80];
    char *payload;
};

static void do_publish(struct pub *p)
{
    struct chan_publish_result r;
    int rc = chan_publish(p->ah->a->hub, str_cstr(p->channel), str_cstr(p->from),
                          str_cstr(p->payload), &r);
    if (rc == 0)
        http_reply_json(p->c, 200,
                        json_pack("{s:s, s:I, s:I, s:I}", "channel", p->channel, "seq",
                                  (json_int_t)r.seq, "subscribers", (json_int_t)r.delivered,
                                  "dropped", (json_int_t)r.dropped));
    else if (rc == -EMSGSIZE)
        http_reply_error(p->c, 413, "the message is over %u bytes",
                         p->ah->a->cfg->apps.max_request_body);
    else
        http_reply_error(p->c, 503, "not published: %s", strerror(-rc));
    free(p->payload);
    free(p);
}

static void pub_checked(struct worker *w, int rc, void *arg)
{
    (void)w;
    struct pub *p = arg;
    if (rc == 1) {
        do_publish(p);
        return;
    }
    http_reply_error(p->c, 403, "%s may not publish on %s", p->from, p->channel);
    free(p->payload);
    free(p);
}

/* The message to publish from a publish body {"data": VALUE}: a new string, or NULL. */
static char *publish_payload(str body, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(body.s ? body.s : "", body.len, JSON_REJECT_DUPLICATES, &je);
    if (!doc) {
        snprintf(err, errlen, "bad JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    char *out = NULL;
    const char *k;
    json_t *v;
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "the body must be a JSON object {\"data\": ...}");
        goto done;
    }
    json_object_foreach(doc, k, v)
    {
        if (strcmp(k, "data") != 0) {
            snprintf(err, errlen, "unknown field \"%.64s\" (known: data)", k);
            goto done;
        }
    }
    v = json_object_get(doc, "data");
    if (!v) {
        snprintf(err, errlen, "\"data\" is required");
        goto done;
    }
    out = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!out)
        snprintf(err, errlen, "out of memory");
done:
    json_decref(doc);
    return out;
}

static void h_publish(struct http_ctx *c, void *arg)
{
    struct apps_http *ah = arg;
    str path = http_ctx_path(c);
    str rest = str_skip(path, strlen("/api/v1/channels/"));
    ssize_t slash = str_find_char(rest, '/');
    if (slash <= 0 || !str_eq(str_skip(rest, (size_t)slash), STR("/publish"))) {
        http_reply_error(c, 404, "no such resource (POST /api/v1/channels/NAME/publish)");
        return;
    }
    str name = str_make(rest.s, (size_t)slash);
    struct apps_app app;
    str body;
    if (!app_allowed(ah->a, c, APPS_CHANNELS, &app) || !json_body(ah->a, c, &body))
        return;
    struct apps_channel ch;
    if (!store_name_valid(name) || apps_channel_get(ah->a, name, &ch) < 0) {
        http_reply_error(c, 404, "no such channel: %.*s", (int)(name.len > 64 ? 64 : name.len),
                         name.s);
        return;
    }
    char err[256];
    char *payload = publish_payload(body, err, sizeof err);
    if (!payload) {
        http_reply_error(c, 400, "%s", err);
        return;
    }
    struct pub *p = calloc(1, sizeof *p);
    if (!p) {
        free(payload);
        http_reply_error(c, 503, "out of memory");
        return;
    }
    p->ah = ah;
    p->c = c;
    p->payload = payload;
    str_copy(p->channel, sizeof p->channel, name);
    snprintf(p->from, sizeof p->from, "app:%s", app.name);
    struct chan_who who = {.kind = CHAN_WHO_APP, .app_scopes = app.scopes};
    snprintf(who.name, sizeof who.name, "%s", app.name);
    int rc = apps_chan_check(ah->a, &who, name, true, http_ctx_worker(c), pub_checked, p);
    if (rc == 1)
        do_publish(p);
    else if (rc < 0)
        pub_checked(http_ctx_worker(c), -EPERM, p);
}

/* ---- the channels WebSocket ---- */

struct chws {
    struct apps_http *ah;
    uint64_t id;
    struct worker *w;
    struct chan_who who;
    struct chan_sub *sub;
    _Atomic uint32_t refs;
    _Atomic bool scheduled;
    _Atomic bool closing;
    char why[96];
};

static void chws_unref(struct chws *k)
{
    if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
        chan_sub_free(k->sub); /* NULL once the connection closed */
        free(k);
    }
}

static void ws_json(struct chws *k, json_t *doc)
{
    char *t = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (t)
        http_ws_send(k->ah->hs, k->id, false, t, strlen(t));
    free(t);
    json_decref(doc);
}

static void chws_drain(struct worker *w, void *arg)
{
    (void)w;
    struct chws *k = arg;
    atomic_store(&k->scheduled, false);
    if (atomic_load(&k->closing)) {
        if (k->why[0]) {
            http_ws_close(k->ah->hs, k->id, 1008, k->why);
            k->why[0] = 0;
        }
    } else if (k->sub) {
        struct chan_msg *m;
        while ((m = chan_sub_pop(k->sub))) {
            http_ws_send(k->ah->hs, k->id, false, m->data, m->len);
            chan_msg_unref(m);
        }
    }
    chws_unref(k);
}

static void chws_wake(void *ctx)
{
    struct chws *k = ctx;
    if (atomic_exchange(&k->scheduled, true))
        return;
    atomic_fetch_add(&k->refs, 1);
    if (worker_post(k->w, chws_drain, k) < 0) {
        atomic_store(&k->scheduled, false);
        atomic_fetch_sub(&k->refs, 1);
    }
}

static void chws_closed(void *ctx, const char *why)
{
    struct chws *k = ctx;
    snprintf(k->why, sizeof k->why, "%s", why);
    atomic_store(&k->closing, true);
    chws_wake(k);
}

static const struct chan_sub_ops chws_ops = {chws_wake, chws_closed};

/* "Basic base64(user:password)" checked against the user's HA1 (MD5) in the credential
 * table: 0 with the user, or -EACCES. */
static int basic_check(struct apps_http *ah, str b64, char user[STORE_NAME_MAX + 1])
{
    unsigned char dec[400];
    if (b64.len == 0 || b64.len > 512)
        return -EACCES;
    int n = EVP_DecodeBlock(dec, (const unsigned char *)b64.s, (int)b64.len);
    if (n <= 0)
        return -EACCES;
    while (n > 0 && b64.len >= 1 && dec[n - 1] == 0 && b64.s[b64.len - 1] == '=') {
        n--; /* EVP_DecodeBlock counts the padding as zero bytes */
        b64.len--;
    }
    str up = str_make((const char *)dec, (size_t)n);
    ssize_t colon = str_find_char(up, ':');
    if (colon <= 0 || (size_t)colon > STORE_NAME_MAX)
        return -EACCES;
    str u = str_make(up.s, (size_t)colon), pw = str_skip(up, (size_t)colon + 1);
    struct cred c;
    char realm[STORE_NAME_MAX + 1], md5[33], sha[65];
    if (!ah->a->deps.creds || store_creds_get(ah->a->deps.creds, u, &c) < 0 || !c.enabled ||
        store_realm_from_domain(ah->a->cfg->server.domain, realm, sizeof realm) < 0 ||
        store_ha1(u, str_cstr(realm), pw, md5, sha) < 0 || CRYPTO_memcmp(md5, c.ha1_md5, 32) != 0)
        return -EACCES;
    str_copy(user, STORE_NAME_MAX + 1, u);
    return 0;
}

/* The identity behind ?key= / Authorization (an app) or ?token= (a user). -EACCES when
 * one is given and wrong; anonymous when none. */
static int ws_identity(struct apps_http *ah, const struct http_request *req, struct chan_who *who,
                       struct apps_app *app)
{
    memset(who, 0, sizeof *who);
    char v[512];
    str key = STR_NULL, basic = STR_NULL;
    for (size_t i = 0; i < req->nhdrs; i++) {
        if (!str_caseeq(req->hdrs[i].name, STR("Authorization")))
            continue;
        if (str_has_caseprefix(req->hdrs[i].value, STR("Bearer ")))
            key = str_trim(str_skip(req->hdrs[i].value, 7));
        else if (str_has_caseprefix(req->hdrs[i].value, STR("Basic ")))
            basic = str_trim(str_skip(req->hdrs[i].value, 6));
    }
    if (basic.s) {
        char user[STORE_NAME_MAX + 1];
        if (basic_check(ah, basic, user) < 0)
            return -EACCES;
        who->kind = CHAN_WHO_USER;
        snprintf(who->name, sizeof who->name, "%s", user);
        return 0;
    }
    str q = http_query_get(req->query, STR("key"));
    if (!key.s && q.s) {
        ssize_t n = http_pct_decode(q, v, sizeof v, true);
        if (n < 0)
            return -EACCES;
        key = str_make(v, (size_t)n);
    }
    if (key.s) {
        if (apps_auth(ah->a, key, app) < 0)
            return -EACCES;
        who->kind = CHAN_WHO_APP;
        who->app_scopes = app->scopes;
        snprintf(who->name, sizeof who->name, "%s", app->name);
        return 0;
    }
    str t = http_query_get(req->query, STR("token"));
    if (t.s) {
        ssize_t n = http_pct_decode(t, v, sizeof v, true);
        char user[STORE_NAME_MAX + 1];
        if (n < 0 || http_token_check(ah->hs, str_make(v, (size_t)n), user) < 0)
            return -EACCES;
        who->kind = CHAN_WHO_USER;
        snprintf(who->name, sizeof who->name, "%s", user);
        return 0;
    }
    who->kind = CHAN_WHO_ANON;
    return 0;
}

static int chws_open(void *arg, uint64_t ws_id, const struct http_request *req,
                     const struct sockaddr_storage *peer, void **conn_ctx)
{
    (void)peer;
    struct apps_http *ah = arg;
    struct chan_who who;
    struct apps_app app;
    int rc = ws_identity(ah, req, &who, &app);
    if (rc < 0)
        return rc;
    if (who.kind == CHAN_WHO_APP && !(app.scopes & APPS_CHANNELS))
        return -EPERM;
    struct chws *k = calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    k->ah = ah;
    k->id = ws_id;
    k->w = apps__worker(ah->a, net_flow_owner(ws_id));
    k->who = who;
    atomic_init(&k->refs, 1);
    if (!k->w || chan_sub_new(&k->sub, ah->a->hub, &chws_ops, k) < 0) {
        free(k);
        return -ENOMEM;
    }
    *conn_ctx = k;
    return 0;
}

struct subreq {
    struct chws *k;
    char channel[STORE_NAME_MAX + 1];
    char *payload; /* publish */
    json_t *ref;
};

static json_t *op_reply(const char *op, const char *channel, json_t *ref)
{
    json_t *o = json_pack("{s:s, s:s}", "op", op, "channel", channel);
    if (ref)
        json_object_set(o, "ref", ref);
    return o;
}

static json_t *op_error(const char *channel, json_t *ref, const char *msg)
{
    json_t *o = json_pack("{s:s, s:s}", "op", "error", "error", msg);
    if (channel)
        json_object_set_new(o, "channel", json_string(channel));
    if (ref)
        json_object_set(o, "ref", ref);
    return o;
}

static void subreq_free(struct subreq *s)
{
    json_decref(s->ref);
    free(s->payload);
    chws_unref(s->k);
    free(s);
}

static void sub_checked(struct worker *w, int rc, void *arg)
{
    (void)w;
    struct subreq *s = arg;
    struct chws *k = s->k;
    if (atomic_load(&k->closing) || !k->w) {
        subreq_free(s);
        return;
    }
    char msg[160];
    if (rc != 1) {
        snprintf(msg, sizeof msg, "not allowed to %s %s",
                 s->payload ? "publish on" : "subscribe to", s->channel);
        ws_json(k, op_error(s->channel, s->ref, msg));
    } else if (s->payload) {
        char from[80];
        snprintf(from, sizeof from, "%s:%s", k->who.kind == CHAN_WHO_APP ? "app" : "user",
                 k->who.name);
        struct chan_publish_result r;
        int prc = chan_publish(k->ah->a->hub, str_cstr(s->channel), str_cstr(from),
                               str_cstr(s->payload), &r);
        if (prc == 0) {
            json_t *o = op_reply("published", s->channel, s->ref);
            json_object_set_new(o, "seq", json_integer((json_int_t)r.seq));
            ws_json(k, o);
        } else {
            ws_json(k, op_error(s->channel, s->ref,
                                prc == -EMSGSIZE ? "message too large" : "not published"));
        }
    } else {
        int src = chan_subscribe(k->sub, str_cstr(s->channel));
        if (src == 0 || src == -EALREADY)
            ws_json(k, op_reply("subscribed", s->channel, s->ref));
        else
            ws_json(k, op_error(s->channel, s->ref,
                                src == -EMLINK   ? "too many subscriptions on this connection"
                                : src == -EUSERS ? "the channel has too many subscribers"
                                                 : "cannot subscribe"));
    }
    subreq_free(s);
}

static void chws_message(void *arg, void *conn_ctx, uint64_t ws_id, bool binary, const char *data,
                         size_t len)
{
    (void)arg;
    (void)ws_id;
    struct chws *k = conn_ctx;
    json_error_t je;
    json_t *doc = binary ? NULL : json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    json_t *op = json_object_get(doc, "op"), *ch = json_object_get(doc, "channel");
    json_t *ref = json_object_get(doc, "ref");
    const char *k_;
    json_t *v_;
    const char *bad = NULL;
    if (!doc || !json_is_object(doc))
        bad = "expected a JSON object with \"op\"";
    else if (!json_is_string(op))
        bad = "\"op\" must be subscribe, unsubscribe or publish";
    else if (!json_is_string(ch) || !store_name_valid(str_cstr(json_string_value(ch))))
        bad = "\"channel\" must be a channel name";
    json_object_foreach(doc, k_, v_)
    {
        if (!bad && strcmp(k_, "op") && strcmp(k_, "channel") && strcmp(k_, "data") &&
            strcmp(k_, "ref"))
            bad = "unknown field (known: op, channel, data, ref)";
    }
    if (bad) {
        ws_json(k, op_error(json_is_string(ch) ? json_string_value(ch) : NULL, ref, bad));
        json_decref(doc);
        return;
    }
    const char *o = json_string_value(op), *name = json_string_value(ch);
    bool publish = strcmp(o, "publish") == 0;
    if (strcmp(o, "unsubscribe") == 0) {
        if (chan_unsubscribe(k->sub, str_cstr(name)) == 0)
            ws_json(k, op_reply("unsubscribed", name, ref));
        else
            ws_json(k, op_error(name, ref, "not subscribed"));
        json_decref(doc);
        return;
    }
    if (!publish && strcmp(o, "subscribe") != 0) {
        ws_json(k, op_error(name, ref, "\"op\" must be subscribe, unsubscribe or publish"));
        json_decref(doc);
        return;
    }
    struct subreq *s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(doc);
        return;
    }
    s->k = k;
    atomic_fetch_add(&k->refs, 1);
    snprintf(s->channel, sizeof s->channel, "%s", name);
    s->ref = ref ? json_incref(ref) : NULL;
    if (publish) {
        json_t *d = json_object_get(doc, "data");
        s->payload = d ? json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (!s->payload) {
            ws_json(k, op_error(name, ref, "\"data\" is required to publish"));
            subreq_free(s);
            json_decref(doc);
            return;
        }
    }
    json_decref(doc); /* name and ref point into it: use s->channel and s->ref below */
    int rc =
        apps_chan_check(k->ah->a, &k->who, str_cstr(s->channel), publish, k->w, sub_checked, s);
    if (rc == -ENOENT) {
        ws_json(k, op_error(s->channel, s->ref, "no such channel"));
        subreq_free(s);
    } else if (rc != 0) {
        sub_checked(k->w, rc == 1 ? 1 : -EPERM, s);
    }
}

static void chws_close(void *arg, void *conn_ctx, uint64_t ws_id, uint16_t code)
{
    (void)arg;
    (void)ws_id;
    (void)code;
    struct chws *k = conn_ctx;
    atomic_store(&k->closing, true);
    /* leave every channel now (on the owner): no wake can come after this; pending
     * drains and store checks hold references to k, not to the subscriber */
    chan_sub_free(k->sub);
    k->sub = NULL;
    chws_unref(k);
}

/* ---- the bot WebSocket ---- */

struct botws {
    struct apps_http *ah;
    uint64_t id;
    struct apps_app app;
    struct pwatch *watch[BOT_MAX_WATCHES];
    char watched[BOT_MAX_WATCHES][STORE_NAME_MAX + 1];
    size_t nwatch;
};

static void watch_cb(void *ctx, str presentity, bool open, str note)
{
    struct pwatch *w = ctx;
    json_t *o = json_pack("{s:s, s:s%, s:b, s:s%}", "op", "presence", "user", presentity.s,
                          presentity.len, "open", open, "note", note.s ? note.s : "", note.len);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (t)
        http_ws_send(w->hs, w->ws_id, false, t, strlen(t));
    free(t);
    json_decref(o);
}

static void watch_end(struct apps_http *ah, struct pwatch *w)
{
    pres_unwatch(ah->a->deps.presence, w->id);
    uint64_t now = clock_mono_ms();
    w->ended_ms = now;
    pthread_mutex_lock(&ah->lock);
    struct pwatch **pp = &ah->grave;
    while (*pp) { /* free the ones whose callbacks have long finished */
        if (now - (*pp)->ended_ms > 10000) {
            struct pwatch *x = *pp;
            *pp = x->next;
            free(x);
        } else {
            pp = &(*pp)->next;
        }
    }
    w->next = ah->grave;
    ah->grave = w;
    pthread_mutex_unlock(&ah->lock);
}

/* {"op":"watch"|"unwatch","user":U}: a new JSON answer, or NULL when op is another one. */
static json_t *bot_watch_op(struct botws *b, const char *data, size_t len)
{
    json_t *doc = json_loadb(data, len, 0, NULL);
    const char *op = json_string_value(json_object_get(doc, "op"));
    const char *user = json_string_value(json_object_get(doc, "user"));
    if (!op || (strcmp(op, "watch") != 0 && strcmp(op, "unwatch") != 0)) {
        json_decref(doc);
        return NULL;
    }
    json_t *out = NULL;
    struct apps_http *ah = b->ah;
    if (!user || !store_name_valid(str_cstr(user))) {
        out = json_pack("{s:s, s:s}", "op", "error", "error", "\"user\" must be a user name");
    } else if (!ah->a->deps.presence) {
        out = json_pack("{s:s, s:s}", "op", "error", "error", "presence is not served here");
    } else if (strcmp(op, "unwatch") == 0) {
        size_t i = 0;
        while (i < b->nwatch && strcmp(b->watched[i], user) != 0)
            i++;
        if (i == b->nwatch) {
            out = json_pack("{s:s, s:s}", "op", "error", "error", "not watching this user");
        } else {
            watch_end(ah, b->watch[i]);
            b->nwatch--;
            b->watch[i] = b->watch[b->nwatch];
            memcpy(b->watched[i], b->watched[b->nwatch], sizeof b->watched[i]);
            out = json_pack("{s:s, s:s}", "op", "unwatched", "user", user);
        }
    } else {
        bool dup = false;
        for (size_t i = 0; i < b->nwatch; i++)
            dup = dup || strcmp(b->watched[i], user) == 0;
        struct pwatch *w = dup || b->nwatch >= BOT_MAX_WATCHES ? NULL : calloc(1, sizeof *w);
        if (!w) {
            out = json_pack("{s:s, s:s}", "op", "error", "error",
                            dup ? "already watching this user" : "too many watches");
        } else {
            w->hs = ah->hs;
            w->ws_id = b->id;
            /* the answer first: the watch reports the current state at once */
            char *t = NULL;
            json_t *ok = json_pack("{s:s, s:s}", "op", "watching", "user", user);
            if (ok && (t = json_dumps(ok, JSON_COMPACT)))
                http_ws_send(ah->hs, b->id, false, t, strlen(t));
            free(t);
            json_decref(ok);
            int id = pres_watch(ah->a->deps.presence, str_cstr(b->app.address), str_cstr(user),
                                watch_cb, w);
            if (id <= 0) {
                free(w);
                out = json_pack("{s:s, s:s}", "op", "error", "error", "cannot watch this user");
            } else {
                w->id = id;
                b->watch[b->nwatch] = w;
                snprintf(b->watched[b->nwatch], sizeof b->watched[0], "%s", user);
                b->nwatch++;
            }
        }
    }
    json_decref(doc);
    return out ? out : json_object();
}

static int bot_send(void *ctx, const char *data, size_t len)
{
    struct botws *b = ctx;
    return http_ws_send(b->ah->hs, b->id, false, data, len);
}

static int botws_open(void *arg, uint64_t ws_id, const struct http_request *req,
                      const struct sockaddr_storage *peer, void **conn_ctx)
{
    (void)peer;
    struct apps_http *ah = arg;
    struct chan_who who;
    struct apps_app app;
    int rc = ws_identity(ah, req, &who, &app);
    if (rc < 0 || who.kind != CHAN_WHO_APP)
        return -EACCES;
    if (!(app.scopes & APPS_BOT) || !app.address[0])
        return -EPERM;
    struct botws *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->ah = ah;
    b->id = ws_id;
    b->app = app;
    if (apps_bot_attach(ah->a, str_cstr(app.name), bot_send, b) < 0) {
        free(b);
        return -ENOMEM;
    }
    log_info("apps", "bot %s connected over WebSocket", app.name);
    *conn_ctx = b;
    return 0;
}

static void botws_message(void *arg, void *conn_ctx, uint64_t ws_id, bool binary, const char *data,
                          size_t len)
{
    (void)binary;
    struct apps_http *ah = arg;
    struct botws *b = conn_ctx;
    /* the app may have been changed or removed since it connected */
    if (apps_get(ah->a, str_cstr(b->app.name), &b->app) < 0) {
        http_ws_close(ah->hs, ws_id, 1008, "the app was removed");
        return;
    }
    json_t *r = bot_watch_op(b, data, len);
    if (r && json_object_size(r) == 0) {
        json_decref(r); /* answered already */
        return;
    }
    if (!r)
        r = apps_bot_ws_message(ah->a, &b->app, data, len);
    char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
    if (t)
        http_ws_send(ah->hs, ws_id, false, t, strlen(t));
    free(t);
    json_decref(r);
}

static void botws_close(void *arg, void *conn_ctx, uint64_t ws_id, uint16_t code)
{
    (void)ws_id;
    (void)code;
    struct apps_http *ah = arg;
    struct botws *b = conn_ctx;
    apps_bot_detach(ah->a, str_cstr(b->app.name), b);
    for (size_t i = 0; i < b->nwatch; i++)
        watch_end(ah, b->watch[i]);
    log_info("apps", "bot %s disconnected", b->app.name);
    free(b);
}

/* ---- registration ---- */

int apps_http_register(struct apps_http **out, struct apps *a, struct http_server *hs)
{
    struct apps_http *ah = calloc(1, sizeof *ah);
    if (!ah)
        return -ENOMEM;
    ah->a = a;
    ah->hs = hs;
    pthread_mutex_init(&ah->lock, NULL);
    static const struct http_ws_handlers chh = {chws_open, chws_message, chws_close};
    static const struct http_ws_handlers bh = {botws_open, botws_message, botws_close};
    int rc = http_route_add(hs, "POST", "/api/v1/notify", HTTP_ROUTE_EXACT, h_notify, ah);
    if (rc == 0)
        rc = http_route_add(hs, "GET", "/api/v1/notify", HTTP_ROUTE_PREFIX, h_notify_get, ah);
    if (rc == 0)
        rc = http_route_add(hs, "POST", "/api/v1/channels", HTTP_ROUTE_PREFIX, h_publish, ah);
    if (rc == 0)
        rc = http_ws_route_add(hs, "/api/v1/channels/ws", NULL, 0, &chh, ah);
    if (rc == 0)
        rc = http_ws_route_add(hs, "/api/v1/bot/ws", NULL, 0, &bh, ah);
    if (rc < 0) {
        free(ah);
        return rc;
    }
    *out = ah;
    return 0;
}

void apps_http_free(struct apps_http *ah)
{
    if (!ah)
        return;
    while (ah->grave) {
        struct pwatch *x = ah->grave;
        ah->grave = x->next;
        free(x);
    }
    pthread_mutex_destroy(&ah->lock);
    free(ah);
}
