/*
 * svc/apps — applications of the HTTP API (docs/apps.md): their identities and
 * keys (a copy of the store's app table, reloaded within a second of a change),
 * per-app rate limits, notifications (POST /api/v1/notify), bots (MESSAGEs to
 * an app's SIP address go to its webhook or WebSocket; its answers come back
 * as MESSAGEs, with questions that offer a choice) and channels (the hub in
 * channels.h plus who may subscribe and publish, and SIP users who joined).
 *
 * Threads: everything here may be called from any worker; the tables are
 * guarded by one mutex held only for copies. Work that needs the database
 * goes to the store thread; messages to users go through svc/deliver.
 */
#ifndef RTCD_SVC_APPS_H
#define RTCD_SVC_APPS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/config.h"
#include "core/service.h"
#include "net/worker.h"
#include "store/store.h"
#include "svc/channels.h"

struct apps;
struct deliver;
struct presence;

enum apps_scope {
    APPS_NOTIFY = 1,
    APPS_BOT = 2,
    APPS_CHANNELS = 4,
};

/* A copy of one app (what callers may keep). */
struct apps_app {
    char name[STORE_NAME_MAX + 1];
    unsigned scopes;                 /* enum apps_scope bits */
    char address[STORE_URI_MAX + 1]; /* "sip:echo@example.com" or empty */
    char user[STORE_NAME_MAX + 1];   /* the address's user part */
    char domain[256];                /* the address's host */
    char webhook[STORE_URI_MAX + 1];
    char secret[65]; /* webhook signing secret = SHA-256 hex of the key */
    uint32_t rate_per_min;
};

struct apps_channel {
    char name[STORE_NAME_MAX + 1];
    char subscribe[STORE_RULE_MAX + 1];
    char publish[STORE_RULE_MAX + 1];
};

/* A new, empty service for cfg (kept by pointer). 0 or -ENOMEM. */
int apps_new(struct apps **out, const struct config *cfg);
/* Frees it after the workers stopped and the store thread stopped. NULL is fine. */
void apps_free(struct apps *a);
/*
 * The store thread's on_poll hook (store_thread_opts): reloads apps and channel rules
 * when their change counter moved. Runs on the store thread (and once at its start).
 */
void apps_store_poll(struct store *s, void *a);

struct apps_deps {
    struct sip_server *srv;
    struct deliver *deliver;   /* messages to users (notify, bot answers, channels) */
    struct store_thread *st;   /* group and user expansion */
    struct store_creds *creds; /* whether a user exists */
    struct presence *presence; /* bots watching users (pres_watch); NULL = not offered */
};
/* Wires the service to the rest of rtcd (before the workers start). */
void apps_attach(struct apps *a, const struct apps_deps *d);
/* Worker hooks: a webhook client per worker loop. */
void apps_worker_start(struct worker *w, void *a);
void apps_worker_stop(struct worker *w, void *a);
/*
 * The router's hook (core_services.app_request): a request for an app's SIP address
 * is answered here (MESSAGE → 202 and on to the bot; OPTIONS → 200; others 405).
 * Returns false when r is not for an app. On the SIP worker's thread.
 */
bool apps_sip_request(void *a, struct core_req *r);

/* The app a presented key belongs to: 0 with a copy, -ENOENT (unknown key). Any thread. */
int apps_auth(struct apps *a, str key, struct apps_app *out);
/* The app named name: 0 or -ENOENT. */
int apps_get(struct apps *a, str name, struct apps_app *out);
/*
 * Takes one request from app's budget (rate_per_min a minute, bursts up to a minute's
 * worth). 0, or -EAGAIN with the seconds until the next request is allowed.
 */
int apps_rate_take(struct apps *a, const struct apps_app *app, uint64_t now_ms,
                   uint32_t *retry_after_s);
/* Channel rules by name: 0 or -ENOENT (no such channel). */
int apps_channel_get(struct apps *a, str name, struct apps_channel *out);
/* The hub (borrowed for the life of a). */
struct chan_hub *apps_hub(struct apps *a);
/* Apps and channels loaded now. */
size_t apps_count(struct apps *a);

/* ---- notifications (apps_notify.c) ---- */

enum notify_target {
    NOTIFY_LIST,     /* users and group:NAME entries */
    NOTIFY_ONLINE,   /* every user with a registered device now */
    NOTIFY_EVERYONE, /* every enabled user (offline ones get it stored) */
};

enum notify_priority {
    NOTIFY_LOW,
    NOTIFY_NORMAL,
    NOTIFY_HIGH,
    NOTIFY_URGENT,
};

#define NOTIFY_MAX_LIST 1000 /* entries in "to" */
#define NOTIFY_TEXT_MAX 16384

/* A parsed, validated POST /api/v1/notify body. Free with notify_req_free. */
struct notify_req {
    enum notify_target target;
    char **to; /* NOTIFY_LIST: user names and "group:NAME" */
    size_t nto;
    char *text;
    char content_type[STORE_CTYPE_MAX + 1];
    enum notify_priority priority;
    uint32_t ttl; /* seconds it may wait offline; 0 = live only */
};
/*
 * Parses body into *out. 0, or -EINVAL with a one-line reason in err (bad JSON, an
 * unknown field, a wrong type, a bad name, too many entries, ttl over max_ttl).
 * Never blocks.
 */
int notify_req_parse(str body, uint32_t max_ttl, struct notify_req *out, char *err, size_t errlen);
void notify_req_free(struct notify_req *r);
const char *notify_priority_name(enum notify_priority p);

/*
 * The outcome of a notify: status 200 with {"id", "recipients", "delivered", "queued",
 * "failed", "not_online"} or an error status (400 no such group, 413 too many
 * recipients, 503) with {"error"}. doc is a new reference for the callee. Runs on w.
 */
typedef void (*notify_done_fn)(struct worker *w, uint16_t status, json_t *doc, void *arg);
/*
 * Expands the recipients (store thread), sends to each (svc/deliver) and calls done on
 * w when every delivery has an outcome. Takes r (freed here). 0, or -ENOMEM / -ESHUTDOWN
 * (done not called; r freed).
 */
int apps_notify(struct apps *a, const struct apps_app *app, struct notify_req *r, struct worker *w,
                notify_done_fn done, void *arg);
/*
 * The report of notification id for app: a new JSON reference
 * {"id", "app", "at", "recipients": [{"user", "status", "devices"}], counts}, or NULL
 * when there is none (unknown, another app's, or forgotten).
 */
json_t *apps_notify_report(struct apps *a, const struct apps_app *app, str id);

/* ---- bots (apps_bot.c) ---- */

/*
 * Sends the bot's answer to user as a MESSAGE from the app's address: text, and when
 * choices (a JSON array of strings, may be NULL) is given, the numbered choices under
 * it; the question waits apps.question_ttl for the user's reply, which the bot then
 * receives with "reply_to" (and "choice" when it matches). 0, -EINVAL (no text, not a
 * local user, bad choices), -EPERM (no bot scope / address), -ENOMEM.
 */
int apps_bot_send(struct apps *a, const struct apps_app *app, str user, str text, json_t *choices,
                  str context);
/*
 * A bot's WebSocket: events for app go to send(ctx, json text) while it is attached
 * (the newest attachment wins). detach with the same ctx.
 */
typedef int (*apps_bot_send_fn)(void *ctx, const char *data, size_t len);
int apps_bot_attach(struct apps *a, str app, apps_bot_send_fn send, void *ctx);
void apps_bot_detach(struct apps *a, str app, void *ctx);
/*
 * Handles one message from a bot's WebSocket (JSON {"op":"send", "to", "text",
 * "choices"?, "context"?}). Returns a new JSON reference to send back
 * ({"op":"sent"} / {"op":"error","error":...}).
 */
json_t *apps_bot_ws_message(struct apps *a, const struct apps_app *app, const char *data,
                            size_t len);

/* ---- channels (apps_chan.c) ---- */

/* Who is asking: an app (name), a user (name) or nobody authenticated. */
enum chan_who_kind {
    CHAN_WHO_ANON,
    CHAN_WHO_USER,
    CHAN_WHO_APP,
};
struct chan_who {
    enum chan_who_kind kind;
    char name[STORE_NAME_MAX + 1];
    unsigned app_scopes;
};
/*
 * Whether who may subscribe (publish = false) or publish on channel ch: 1 allowed,
 * -EPERM refused, -ENOENT no such channel — known at once; or 0 when a group:G rule
 * needs the store: done(w, rc, arg) then runs later on w with 1 or -EPERM.
 */
typedef void (*chan_check_fn)(struct worker *w, int rc, void *arg);
int apps_chan_check(struct apps *a, const struct chan_who *who, str ch, bool publish,
                    struct worker *w, chan_check_fn done, void *arg);
/*
 * Evaluates a rule list for who: 1 allowed, 0 refused, -EAGAIN when only a group:G rule
 * could allow and groups is NULL (unknown). groups: ",g1,g2," (the user's groups). Pure.
 */
int apps_rule_eval(str rules, const struct chan_who *who, const char *groups);

#endif
