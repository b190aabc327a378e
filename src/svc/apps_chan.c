/*
 * svc/apps_chan — who may subscribe to / publish on a channel (the rules
 * rtcctl channel add stores), and SIP users as channel members: a MESSAGE to
 * sip:~NAME@domain with the text "join" or "leave" changes membership; any
 * other text is published (as a JSON string, from "user:NAME"). Members get
 * each message as a MESSAGE from sip:~NAME@domain to their registered devices
 * (not stored offline: a channel is live). At most MEMBER_WINDOW MESSAGEs per
 * member are in flight; the rest wait in the member's bounded hub queue, and a
 * member whose queue overflows is dropped from every channel (and told so).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "sip/txn.h"
#include "svc/apps_int.h"
#include "svc/deliver.h"

#define MEMBER_WINDOW 8
#define MAX_WORKERS   256

/* ---- rules ---- */

int apps_rule_eval(str rules, const struct chan_who *who, const char *groups)
{
    bool need_groups = false;
    size_t i = 0;
    while (i <= rules.len) {
        size_t j = i;
        while (j < rules.len && rules.s[j] != ',')
            j++;
        str w = str_trim(str_make(rules.s + i, j - i));
        i = j + 1;
        if (str_eq(w, STR("any")))
            return 1;
        if (who->kind == CHAN_WHO_USER) {
            if (str_eq(w, STR("users")))
                return 1;
            if (str_has_prefix(w, STR("user:")) && str_eq(str_skip(w, 5), str_cstr(who->name)))
                return 1;
            if (str_has_prefix(w, STR("group:"))) {
                if (!groups) {
                    need_groups = true;
                    continue;
                }
                char pat[80];
                snprintf(pat, sizeof pat, ",%.*s,", STR_FMT(str_skip(w, 6)));
                if (strstr(groups, pat))
                    return 1;
            }
        } else if (who->kind == CHAN_WHO_APP && (who->app_scopes & APPS_CHANNELS)) {
            if (str_eq(w, STR("apps")))
                return 1;
            if (str_has_prefix(w, STR("app:")) && str_eq(str_skip(w, 4), str_cstr(who->name)))
                return 1;
        }
    }
    return need_groups ? -EAGAIN : 0;
}

struct check_job {
    struct chan_who who;
    char rules[STORE_RULE_MAX + 1];
    char groups[4096];
    size_t glen;
    bool overflow;
    chan_check_fn done;
    void *arg;
};

static int group_cb(void *ctx, str g)
{
    struct check_job *j = ctx;
    if (j->glen + g.len + 2 >= sizeof j->groups) {
        j->overflow = true;
        return 0;
    }
    memcpy(j->groups + j->glen, g.s, g.len);
    j->glen += g.len;
    j->groups[j->glen++] = ',';
    j->groups[j->glen] = 0;
    return 0;
}

static int check_run(struct store *s, void *arg)
{
    struct check_job *j = arg;
    j->groups[0] = ',';
    j->groups[1] = 0;
    j->glen = 1;
    return store_user_groups(s, str_cstr(j->who.name), group_cb, j);
}

static void check_done(struct worker *w, int rc, void *arg)
{
    struct check_job *j = arg;
    if (w) {
        int ok = rc < 0 ? 0 : apps_rule_eval(str_cstr(j->rules), &j->who, j->groups);
        j->done(w, ok == 1 ? 1 : -EPERM, j->arg);
    }
    free(j);
}

int apps_chan_check(struct apps *a, const struct chan_who *who, str ch, bool publish,
                    struct worker *w, chan_check_fn done, void *arg)
{
    struct apps_channel c;
    if (apps_channel_get(a, ch, &c) < 0)
        return -ENOENT;
    const char *rules = publish ? c.publish : c.subscribe;
    int r = apps_rule_eval(str_cstr(rules), who, NULL);
    if (r == 1)
        return 1;
    if (r == 0 || !a->deps.st)
        return -EPERM;
    struct check_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->who = *who;
    snprintf(j->rules, sizeof j->rules, "%s", rules);
    j->done = done;
    j->arg = arg;
    int rc = store_thread_submit(a->deps.st, w, check_run, check_done, j);
    if (rc < 0) {
        free(j);
        return rc;
    }
    return 0;
}

/* ---- SIP members ---- */

struct member {
    struct apps *a;
    _Atomic uint32_t refs;
    struct chan_sub *sub;
    unsigned widx; /* drains and delivers on this worker */
    char user[STORE_NAME_MAX + 1];
    char domain[256];
    unsigned inflight; /* w only */
    _Atomic bool scheduled;
    _Atomic bool dropped;
    char why[96];
};

struct chan_sip {
    struct map *members; /* user → struct member * (under a->lock) */
    struct worker *_Atomic workers[MAX_WORKERS];
    unsigned nworkers; /* configured */
};

/* The member's worker while it runs, else NULL. */
static struct worker *member_worker(struct member *m)
{
    return atomic_load(&m->a->chsip->workers[m->widx]);
}

/* Records a membership change in the store (fire and forget: logged on failure). */
struct persist_job {
    char channel[STORE_NAME_MAX + 1];
    char user[STORE_NAME_MAX + 1];
    int op; /* 1 join, 0 leave, -1 drop every membership */
};

static int persist_run(struct store *s, void *arg)
{
    struct persist_job *j = arg;
    int rc = j->op < 0
                 ? store_channel_member_drop(s, str_cstr(j->user))
                 : store_channel_member_set(s, str_cstr(j->channel), str_cstr(j->user), j->op == 1);
    if (rc < 0)
        log_warn("apps", "channel membership of %s not saved: %s", j->user, store_errmsg(s));
    return rc;
}

static void persist_done(struct worker *w, int rc, void *arg)
{
    (void)w;
    (void)rc;
    free(arg);
}

static void persist(struct apps *a, const char *channel, const char *user, int op)
{
    struct persist_job *j = calloc(1, sizeof *j);
    if (!j || !a->deps.st) {
        free(j);
        return;
    }
    snprintf(j->channel, sizeof j->channel, "%s", channel ? channel : "");
    snprintf(j->user, sizeof j->user, "%s", user);
    j->op = op;
    if (store_thread_submit(a->deps.st, NULL, persist_run, persist_done, j) < 0)
        free(j);
}

static void member_unref(struct member *m)
{
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) {
        chan_sub_free(m->sub);
        free(m);
    }
}

static void drain(struct worker *w, void *arg);

static void member_wake(void *ctx)
{
    struct member *m = ctx;
    if (atomic_exchange(&m->scheduled, true))
        return;
    atomic_fetch_add(&m->refs, 1);
    struct worker *w = member_worker(m);
    if (!w || worker_post(w, drain, m) < 0) {
        atomic_store(&m->scheduled, false);
        atomic_fetch_sub(&m->refs, 1); /* the hub still holds one: never the last */
    }
}

static void member_closed(void *ctx, const char *why)
{
    struct member *m = ctx;
    snprintf(m->why, sizeof m->why, "%s", why);
    atomic_store(&m->dropped, true);
    member_wake(m);
}

static const struct chan_sub_ops member_ops = {member_wake, member_closed};

static void sent_done(const struct deliver_result *res, void *arg);

struct msent {
    struct member *m;
};

static void forget(struct apps *a, struct member *m)
{
    pthread_mutex_lock(&a->lock);
    if (a->chsip && map_get_str(a->chsip->members, str_cstr(m->user)) == m) {
        map_del_str(a->chsip->members, str_cstr(m->user));
        member_unref(m); /* the table's reference */
    }
    pthread_mutex_unlock(&a->lock);
}

static void drain(struct worker *w, void *arg)
{
    (void)w;
    struct member *m = arg;
    struct apps *a = m->a;
    atomic_store(&m->scheduled, false);
    if (atomic_load(&m->dropped)) {
        forget(a, m);
        if (!m->why[0])
            goto out;
        log_info("apps", "channel member %s removed from every channel: %s", m->user, m->why);
        persist(a, NULL, m->user, -1);
        /* tell the user once why the channels stopped */
        char from[400];
        str realm = core_realm(a->deps.srv);
        snprintf(from, sizeof from, "<sip:~@%.*s>", STR_FMT(realm));
        char text[160];
        snprintf(text, sizeof text, "removed from every channel: %s", m->why);
        m->why[0] = 0;
        struct deliver_msg dm = {
            .from = str_cstr(from), .to_user = str_cstr(m->user), .body = str_cstr(text)};
        deliver_send(a->deps.deliver, &dm, NULL, NULL);
        goto out;
    }
    while (m->inflight < MEMBER_WINDOW) {
        struct chan_msg *cm = chan_sub_pop(m->sub);
        if (!cm)
            break;
        char from[400];
        snprintf(from, sizeof from, "<sip:~%.*s@%s>", STR_FMT(cm->channel), m->domain);
        /* a JSON string arrives as its text; other JSON values as JSON */
        json_t *v = json_loadb(cm->payload.s, cm->payload.len, JSON_DECODE_ANY, NULL);
        str body = cm->payload, ct = STR("application/json");
        if (json_is_string(v)) {
            body = str_make(json_string_value(v), json_string_length(v));
            ct = STR("text/plain;charset=utf-8");
        }
        struct deliver_msg dm = {
            .from = str_cstr(from), .to_user = str_cstr(m->user), .content_type = ct, .body = body};
        struct msent *s = malloc(sizeof *s);
        if (s) {
            s->m = m;
            atomic_fetch_add(&m->refs, 1);
            if (deliver_send(a->deps.deliver, &dm, sent_done, s) == 0)
                m->inflight++;
            else {
                atomic_fetch_sub(&m->refs, 1);
                free(s);
            }
        }
        json_decref(v);
        chan_msg_unref(cm);
    }
out:
    member_unref(m);
}

static void sent_task(struct worker *w, void *arg)
{
    struct member *m = arg;
    m->inflight--;
    atomic_store(&m->scheduled, true);
    drain(w, m); /* consumes the reference sent_done passed on */
}

static void sent_done(const struct deliver_result *res, void *arg)
{
    (void)res;
    struct msent *s = arg;
    struct member *m = s->m;
    free(s);
    /* back to the member's worker, which owns inflight */
    struct worker *w = member_worker(m);
    if (!w || worker_post(w, sent_task, m) < 0)
        member_unref(m);
}

int apps__chan_init(struct apps *a, unsigned nworkers)
{
    struct chan_sip *cs = calloc(1, sizeof *cs);
    if (!cs || map_new(&cs->members, MAP_KEY_STR, 64) < 0) {
        free(cs);
        return -ENOMEM;
    }
    cs->nworkers = nworkers ? (nworkers < MAX_WORKERS ? nworkers : MAX_WORKERS) : 1;
    a->chsip = cs;
    return 0;
}

void apps__chan_worker_start(struct apps *a, struct worker *w)
{
    unsigned i = worker_index(w);
    if (a->chsip && i < MAX_WORKERS)
        atomic_store(&a->chsip->workers[i], w);
}

void apps__chan_worker_stop(struct apps *a, struct worker *w)
{
    unsigned i = worker_index(w);
    if (a->chsip && i < MAX_WORKERS)
        atomic_store(&a->chsip->workers[i], NULL);
}

struct worker *apps__worker(struct apps *a, unsigned i)
{
    return a->chsip && i < MAX_WORKERS ? atomic_load(&a->chsip->workers[i]) : NULL;
}

void apps__chan_fini(struct apps *a)
{
    struct chan_sip *cs = a->chsip;
    if (!cs)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(cs->members, &it, &e))
        member_unref(e.val);
    map_free(cs->members);
    free(cs);
    a->chsip = NULL;
}

/* The member for user, created when absent (new reference), or NULL. */
static struct member *member_get(struct apps *a, str user, str domain, bool create)
{
    struct chan_sip *cs = a->chsip;
    if (!cs)
        return NULL;
    pthread_mutex_lock(&a->lock);
    struct member *m = map_get_str(cs->members, user);
    if (!m && create) {
        m = calloc(1, sizeof *m);
        if (m) {
            m->a = a;
            atomic_init(&m->refs, 1);
            str_copy(m->user, sizeof m->user, user);
            str_copy(m->domain, sizeof m->domain, domain);
            uint64_t h = 1469598103934665603ull;
            for (size_t i = 0; i < user.len; i++)
                h = (h ^ (uint8_t)user.s[i]) * 1099511628211ull;
            m->widx = (unsigned)(h % cs->nworkers);
            if (chan_sub_new(&m->sub, a->hub, &member_ops, m) < 0 ||
                map_set_str(cs->members, user, m, NULL) < 0) {
                chan_sub_free(m->sub);
                free(m);
                m = NULL;
            }
        }
    }
    if (m)
        atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&a->lock);
    return m;
}

/* ---- the SIP side: MESSAGE to sip:~NAME@domain ---- */

struct sip_cmd {
    struct apps *a;
    struct txn *st;
    struct sip_server *srv;
    char user[STORE_NAME_MAX + 1];
    char domain[256];
    char channel[STORE_NAME_MAX + 1];
    enum { CMD_JOIN, CMD_LEAVE, CMD_PUBLISH } op;
    char *text;
};

static void cmd_answer(struct sip_cmd *c, struct worker *w, uint16_t status, const char *reason)
{
    struct sip_worker *sw = core_sip_worker(c->srv, w);
    if (sw && txn_request(c->st) && txn_state(c->st) != TXN_TERMINATED) {
        struct core_req r = {.sw = sw,
                             .st = c->st,
                             .m = txn_request(c->st),
                             .rx = txn_source(c->st),
                             .now = uv_now(worker_loop(w))};
        core_respond(&r, status, str_cstr(reason), NULL, 0, STR_NULL, STR_NULL);
    }
}

static void cmd_free(struct sip_cmd *c)
{
    txn_unref(c->st);
    free(c->text);
    free(c);
}

static void cmd_run(struct worker *w, int rc, void *arg)
{
    struct sip_cmd *c = arg;
    struct apps *a = c->a;
    char reason[200];
    str ch = str_cstr(c->channel);
    if (rc != 1) {
        snprintf(reason, sizeof reason, "Forbidden: you may not %s channel %s",
                 c->op == CMD_PUBLISH ? "publish on" : "join", c->channel);
        cmd_answer(c, w, 403, reason);
        cmd_free(c);
        return;
    }
    if (c->op == CMD_PUBLISH) {
        json_t *s = json_string(c->text);
        char *payload = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
        json_decref(s);
        char from[80];
        snprintf(from, sizeof from, "user:%s", c->user);
        struct chan_publish_result pr = {0};
        int prc =
            payload ? chan_publish(a->hub, ch, str_cstr(from), str_cstr(payload), &pr) : -EINVAL;
        free(payload);
        if (prc == 0) {
            snprintf(reason, sizeof reason, "OK: published as %llu to %zu subscriber(s)",
                     (unsigned long long)pr.seq, pr.delivered);
            cmd_answer(c, w, 200, reason);
        } else {
            cmd_answer(c, w, prc == -EMSGSIZE ? 413 : 400,
                       prc == -EMSGSIZE ? "Request Entity Too Large" : "Bad Request: not text");
        }
        cmd_free(c);
        return;
    }
    struct member *m = member_get(a, str_cstr(c->user), str_cstr(c->domain), c->op == CMD_JOIN);
    if (c->op == CMD_JOIN) {
        int src = m ? chan_subscribe(m->sub, ch) : -ENOMEM;
        if (src == -EPIPE) { /* dropped earlier: start afresh */
            forget(a, m);
            member_unref(m);
            m = member_get(a, str_cstr(c->user), str_cstr(c->domain), true);
            src = m ? chan_subscribe(m->sub, ch) : -ENOMEM;
        }
        if (src == 0 || src == -EALREADY) {
            persist(a, c->channel, c->user, 1);
            snprintf(reason, sizeof reason, "OK: joined channel %s", c->channel);
            cmd_answer(c, w, 200, reason);
        } else {
            cmd_answer(c, w, src == -EMLINK ? 403 : 503,
                       src == -EMLINK ? "Forbidden: too many channels" : "Service Unavailable");
        }
    } else {
        if (m && chan_unsubscribe(m->sub, ch) == 0) {
            persist(a, c->channel, c->user, 0);
            snprintf(reason, sizeof reason, "OK: left channel %s", c->channel);
            cmd_answer(c, w, 200, reason);
        } else {
            cmd_answer(c, w, 404, "Not Found: you are not in this channel");
        }
    }
    member_unref(m);
    cmd_free(c);
}

/* The router hook's channel part: r is for sip:~NAME@domain. */
bool apps__chan_sip(struct apps *a, struct core_req *r)
{
    if (r->user.len < 2 || r->user.s[0] != '~')
        return false;
    str name = str_skip(r->user, 1);
    struct apps_channel c;
    if (!store_name_valid(name) || apps_channel_get(a, name, &c) < 0) {
        core_respond(r, 404, STR("Not Found: no such channel"), NULL, 0, STR_NULL, STR_NULL);
        return true;
    }
    if (r->m->method == SIP_M_OPTIONS) {
        core_respond(r, 200, STR_NULL, NULL, 0, STR_NULL, STR_NULL);
        return true;
    }
    if (r->m->method != SIP_M_MESSAGE) {
        static const struct sip_hdr_add allow = {STR("Allow"), STR("MESSAGE, OPTIONS")};
        core_respond(r, 405, STR_NULL, &allow, 1, STR_NULL, STR_NULL);
        return true;
    }
    str user = r->auth_user;
    struct sip_uri fu;
    if (!user.len && sip_uri_parse(r->m->from.uri, &fu) == 0) {
        str dom;
        if (core_canonical_domain(r->sw, fu.host, &dom))
            user = fu.user;
    }
    if (!user.len || !store_name_valid(user)) {
        core_respond(r, 403, STR("Forbidden: channels are for local users"), NULL, 0, STR_NULL,
                     STR_NULL);
        return true;
    }
    str text = str_trim(r->m->body);
    struct sip_cmd *cmd = calloc(1, sizeof *cmd);
    if (!cmd) {
        core_respond(r, 500, STR_NULL, NULL, 0, STR_NULL, STR_NULL);
        return true;
    }
    cmd->a = a;
    cmd->srv = core_server(r->sw);
    cmd->st = r->st;
    txn_ref(r->st);
    str_copy(cmd->user, sizeof cmd->user, user);
    str_copy(cmd->domain, sizeof cmd->domain, r->domain);
    str_copy(cmd->channel, sizeof cmd->channel, name);
    if (str_caseeq(text, STR("join")))
        cmd->op = CMD_JOIN;
    else if (str_caseeq(text, STR("leave")))
        cmd->op = CMD_LEAVE;
    else {
        cmd->op = CMD_PUBLISH;
        cmd->text = str_dup(r->m->body);
    }
    struct chan_who who = {.kind = CHAN_WHO_USER};
    str_copy(who.name, sizeof who.name, user);
    struct worker *w = core_worker(r->sw);
    int rc = cmd->op == CMD_LEAVE
                 ? 1
                 : apps_chan_check(a, &who, name, cmd->op == CMD_PUBLISH, w, cmd_run, cmd);
    if (rc != 0)
        cmd_run(w, rc == 1 ? 1 : -EPERM, cmd);
    return true;
}

/* ---- memberships kept across restarts ---- */

struct restore_ctx {
    struct apps *a;
    char domain[256];
    size_t n;
};

static int restore_one(void *ctx, str channel, str user)
{
    struct restore_ctx *c = ctx;
    struct member *m = member_get(c->a, user, str_cstr(c->domain), true);
    if (m && chan_subscribe(m->sub, channel) == 0)
        c->n++;
    member_unref(m);
    return 0;
}

void apps__chan_restore(struct apps *a, struct store *s)
{
    struct restore_ctx c = {a, "", 0};
    if (store_realm_from_domain(a->cfg->server.domain, c.domain, sizeof c.domain) < 0)
        snprintf(c.domain, sizeof c.domain, "localhost");
    if (store_channel_member_list(s, restore_one, &c) < 0)
        log_warn("apps", "channel memberships not restored: %s", store_errmsg(s));
    else if (c.n)
        log_info("apps", "%zu channel membership(s) of SIP users restored", c.n);
}
