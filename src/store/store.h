/*
 * store — rtcd's durable data behind one interface, with two backends:
 * SQLite (default; one file, WAL, FTS5) and PostgreSQL (libpq, tsvector).
 * docs/store.md has the schema, the migrations and the thread model.
 *
 * Three layers, all here:
 *   1. struct store: synchronous calls on one database connection. Blocking.
 *      rtcctl uses it directly; inside rtcd only the store thread does.
 *   2. struct store_thread: the store's own thread in rtcd. Worker loops hand
 *      it jobs and get the completion back on their own loop (worker_post);
 *      they never wait on it. It also refreshes the credential table and
 *      removes expired archive entries.
 *   3. struct store_creds: the in-memory credential table (name → enabled,
 *      HA1s, display), sharded with a lock per shard, read by any thread
 *      without touching the database.
 *
 * Errors are negative errno values: -EINVAL bad argument (a name with a
 * forbidden byte, an over-long field), -EEXIST already there, -ENOENT no such
 * row, -EDQUOT the user's offline mailbox is full, -EBUSY the database stayed
 * locked past the busy timeout, -EPROTO schema newer than this build, -EIO any
 * other database error (store_errmsg says which), -ENOMEM.
 */
#ifndef RTCD_STORE_STORE_H
#define RTCD_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/str.h"

struct worker;

/* Bounds on fields (bytes). Longer input is refused with -EINVAL. */
#define STORE_NAME_MAX     64  /* user, group names */
#define STORE_DISPLAY_MAX  128 /* display names, contact display names */
#define STORE_URI_MAX      512 /* contact URIs, forwarding targets, watchers */
#define STORE_PASSWORD_MAX 256
#define STORE_CTYPE_MAX    128
#define STORE_BODY_MAX     (1u << 20) /* offline message / archive body */
#define STORE_FIELD_MAX    2048       /* registration snapshot text fields, audit detail */

struct store;

/* ---- opening ---------------------------------------------------------- */

enum store_backend {
    STORE_SQLITE,
    STORE_POSTGRES,
};

struct store_params {
    enum store_backend backend;
    const char *target;            /* SQLite file path, or PostgreSQL URL */
    const char *realm;             /* digest realm the HA1s are computed for */
    uint32_t max_offline_per_user; /* 0 = no bound */
};

/*
 * Opens the store and applies pending migrations. Returns 0 with a new handle
 * in *out (free with store_close), or a negative errno with a one-line reason
 * in err. Blocks (file system, network, migrations).
 */
int store_open(struct store **out, const struct store_params *p, char *err, size_t errlen);
/*
 * Opens the store rtcd's configuration names: store.backend, store.url,
 * store.sqlite_file (empty = server.data_dir/rtcd.db, data_dir created when
 * missing), realm = the first server.domain. Same results as store_open.
 */
int store_open_config(struct store **out, const struct config *cfg, char *err, size_t errlen);
/* Closes the connection and frees the handle. NULL is fine. */
void store_close(struct store *s);
/* The reason for the last -EIO/-EBUSY (borrowed until the next call on s). */
const char *store_errmsg(const struct store *s);
/* "sqlite" or "postgres". */
const char *store_backend_name(const struct store *s);
/* The realm given at open. Borrowed for the life of s. */
const char *store_realm(const struct store *s);
/* The schema version after migrations. */
int store_schema_version(const struct store *s);

/* The first entry of a comma-separated domain list, trimmed, into out (size cap).
 * 0 or -EINVAL (empty / too long). */
int store_realm_from_domain(const char *domain, char *out, size_t cap);
/* Lower-case hex HA1 = H(user ":" realm ":" password) with MD5 (out 33 bytes) and
 * SHA-256 (out 65 bytes), RFC 7616. 0 or -ENOMEM. Never blocks. */
int store_ha1(str user, str realm, str password, char md5_out[33], char sha256_out[65]);
/* Whether name is a valid user or group name: 1..STORE_NAME_MAX bytes of
 * A-Z a-z 0-9 and - _ . ! ~ * ' + (SIP user characters without ',' ':' '@'). */
bool store_name_valid(str name);
/* Whether t is a valid display name: UTF-8 text without control characters, at most
 * STORE_DISPLAY_MAX bytes (empty is fine). */
bool store_display_valid(str t);

/* ---- users and groups --------------------------------------------------- */

struct store_user {
    char name[STORE_NAME_MAX + 1];
    char display[STORE_DISPLAY_MAX + 1];
    bool enabled;
    char ha1_md5[33];
    char ha1_sha256[65];
    int64_t created_ms, updated_ms;
};

/* A user to create: the password is hashed here and never stored. */
struct store_user_new {
    str name, password, display;
};

/* Creates an enabled user. -EINVAL (name, password, display), -EEXIST. */
int store_user_add(struct store *s, const struct store_user_new *u);
/*
 * Creates n users in one transaction: all or nothing. On -EEXIST or -EINVAL,
 * *bad is the index of the offending entry. Blocks; for 10,000 users about a
 * second (SQLite).
 */
int store_user_import(struct store *s, const struct store_user_new *v, size_t n, size_t *bad);
/* Deletes a user with its memberships, contacts, presence rules, forwarding and offline
 * messages. -ENOENT. */
int store_user_del(struct store *s, str name);
/* Fills *out. -ENOENT. */
int store_user_get(struct store *s, str name, struct store_user *out);
/* Sets a new password (both HA1s). -ENOENT, -EINVAL. */
int store_user_passwd(struct store *s, str name, str password);
int store_user_set_enabled(struct store *s, str name, bool enabled);
int store_user_set_display(struct store *s, str name, str display);
/* Calls cb for every user in name order (u borrowed during the call); cb returning
 * non-zero stops the walk and is returned. */
typedef int (*store_user_fn)(void *ctx, const struct store_user *u);
int store_user_list(struct store *s, store_user_fn cb, void *ctx);
/* A counter that changes whenever any user row changes (a trigger keeps it). */
int store_users_seq(struct store *s, int64_t *out);

typedef int (*store_name_fn)(void *ctx, str name);
/* -EINVAL, -EEXIST. */
int store_group_add(struct store *s, str name);
/* Deletes the group and its memberships. -ENOENT. */
int store_group_del(struct store *s, str name);
/* Group names in order. */
int store_group_list(struct store *s, store_name_fn cb, void *ctx);
/* 0 when the group exists, -ENOENT when not. */
int store_group_exists(struct store *s, str name);
/* -ENOENT (no such group or user: check which with store_group_exists/store_user_get),
 * -EEXIST (already a member). */
int store_group_member_add(struct store *s, str group, str user);
/* -ENOENT (not a member). */
int store_group_member_del(struct store *s, str group, str user);
/* Members of a group in order; -ENOENT when the group does not exist. */
int store_group_members(struct store *s, str group, store_name_fn cb, void *ctx);
/* The groups a user belongs to, in order. */
int store_user_groups(struct store *s, str user, store_name_fn cb, void *ctx);

/* ---- contact lists (roaming buddy lists) ---------------------------------- */

struct store_contact {
    str owner, uri, display, label; /* borrowed during the callback */
};
/* Adds or updates (same owner and uri) an entry. -ENOENT (no such owner), -EINVAL. */
int store_contact_put(struct store *s, const struct store_contact *c);
/* -ENOENT when the entry does not exist. */
int store_contact_del(struct store *s, str owner, str uri);
typedef int (*store_contact_fn)(void *ctx, const struct store_contact *c);
/* The owner's entries ordered by label then uri. */
int store_contact_list(struct store *s, str owner, store_contact_fn cb, void *ctx);

/* ---- presence authorization rules ------------------------------------------ */

enum store_pres_action {
    STORE_PRES_ALLOW = 1,
    STORE_PRES_BLOCK = 2,
    STORE_PRES_POLITE_BLOCK = 3,
    STORE_PRES_PENDING = 4,
};
/* "allow", "block", "polite-block", "pending" (and back: -EINVAL when unknown). */
const char *store_pres_action_name(enum store_pres_action a);
int store_pres_action_parse(str name, enum store_pres_action *out);
/* Sets owner's rule for watcher (a URI or user name). -ENOENT (owner), -EINVAL. */
int store_pres_rule_set(struct store *s, str owner, str watcher, enum store_pres_action a);
/* -ENOENT when there is no rule. */
int store_pres_rule_get(struct store *s, str owner, str watcher, enum store_pres_action *out);
int store_pres_rule_del(struct store *s, str owner, str watcher);
typedef int (*store_pres_rule_fn)(void *ctx, str watcher, enum store_pres_action a);
int store_pres_rule_list(struct store *s, str owner, store_pres_rule_fn cb, void *ctx);

/* ---- call forwarding ---------------------------------------------------- */

struct store_forward {
    char unconditional[STORE_URI_MAX + 1]; /* empty = off */
    char busy[STORE_URI_MAX + 1];
    char no_answer[STORE_URI_MAX + 1];
    uint32_t no_answer_secs; /* ring time before no_answer applies */
    char not_registered[STORE_URI_MAX + 1];
    bool dnd; /* do not disturb */
};
/* Replaces the user's rules. -ENOENT (no such user), -EINVAL. */
int store_forward_set(struct store *s, str user, const struct store_forward *f);
/* -ENOENT when the user has no rules (then *out is all empty). */
int store_forward_get(struct store *s, str user, struct store_forward *out);
int store_forward_del(struct store *s, str user);
/* Every user's rules in name order (user and f borrowed during the call). */
typedef int (*store_forward_fn)(void *ctx, str user, const struct store_forward *f);
int store_forward_list(struct store *s, store_forward_fn cb, void *ctx);
/* A counter bumped (by triggers) on every change to forwarding rules, groups or
 * memberships: rtcd polls it to reload them. */
int store_features_seq(struct store *s, int64_t *out);
/* Every (group, member) pair in group order; a group without members comes once with an
 * empty user. Strings borrowed during the call. */
typedef int (*store_member_fn)(void *ctx, str group, str user);
int store_group_all_members(struct store *s, store_member_fn cb, void *ctx);

/* ---- offline messages --------------------------------------------------- */

struct store_offline_msg {
    int64_t id;         /* increasing: delivery order */
    int64_t created_ms; /* when the message was accepted (for the Date header) */
    str recipient, sender, content_type, body; /* borrowed during the callback */
    int64_t expires_ms; /* not delivered after this wall-clock time (0 = never) */
};
/*
 * Stores a message for recipient; returns only after the row is committed
 * (synchronous=FULL on SQLite), so a 202 sent afterwards is never a lie.
 * *id_out (may be NULL) gets its id. -EDQUOT when the recipient already has
 * max_offline_per_user messages; -EINVAL (over-long fields, body > STORE_BODY_MAX).
 */
int store_offline_enqueue(struct store *s, str recipient, str sender, int64_t created_ms,
                          str content_type, str body, int64_t *id_out);
/* The same with an expiry (wall-clock ms, 0 = never): an expired message is no longer
 * listed, counted against the bound, nor delivered; the store thread deletes it. */
int store_offline_enqueue_ttl(struct store *s, str recipient, str sender, int64_t created_ms,
                              str content_type, str body, int64_t expires_ms, int64_t *id_out);
/* Deletes every message whose expiry has passed; *removed (may be NULL) gets the count. */
int store_offline_expire(struct store *s, int64_t now_ms, int64_t *removed);
typedef int (*store_offline_fn)(void *ctx, const struct store_offline_msg *m);
/* The recipient's messages in acceptance order (at most limit; 0 = all). */
int store_offline_list(struct store *s, str recipient, uint32_t limit, store_offline_fn cb,
                       void *ctx);
/* Every pending message (all recipients), by recipient then order. */
int store_offline_list_all(struct store *s, uint32_t limit, store_offline_fn cb, void *ctx);
/* Deletes one message once a device answered 2xx. -ENOENT when already gone. */
int store_offline_delete(struct store *s, int64_t id);
/* Messages waiting for recipient (empty = for everyone). */
int store_offline_count(struct store *s, str recipient, int64_t *out);

/* ---- broadcast outbox (rtcctl writes, rtcd takes) ------------------------- */

struct store_broadcast {
    int64_t id, created_ms;
    str sender;       /* From value, e.g. "<sip:system@example.com>" */
    str group;        /* empty = every user */
    bool offline_too; /* users with no device get it when they next register */
    str content_type, body;
    int64_t taken_ms; /* when rtcd took it (0 = not yet) */
    int64_t expires_ms; /* stored offline copies expire then (wall clock; 0 = never) */
};
/* Queues a broadcast (text body, at most STORE_BODY_MAX). -EINVAL. */
int store_broadcast_add(struct store *s, const struct store_broadcast *b, int64_t *id_out);
typedef int (*store_broadcast_fn)(void *ctx, const struct store_broadcast *b);
/* Hands out (cb, fields borrowed during the call) and marks taken, in one transaction, up
 * to 16 broadcasts nobody took yet, oldest first. */
int store_broadcast_take(struct store *s, store_broadcast_fn cb, void *ctx);
/* One broadcast by id (cb not called when there is none). */
int store_broadcast_get(struct store *s, int64_t id, store_broadcast_fn cb, void *ctx);
/* Deletes broadcasts taken before before_ms. */
int store_broadcast_purge(struct store *s, int64_t before_ms);

/* ---- message archive ---------------------------------------------------- */

struct store_archive_entry {
    int64_t id, at_ms;
    str sender, recipients, content_type, body; /* recipients: comma-separated */
};
/*
 * Appends one message. Parties are stored as given (the messaging service uses
 * the user name for local users, the URI for others). Invalid UTF-8 and NUL
 * bytes in the body are replaced by '?' (the archive is text). -EINVAL.
 */
int store_archive_append(struct store *s, str sender, const str *recipients, size_t nrcpt,
                         int64_t at_ms, str content_type, str body, int64_t *id_out);
struct store_archive_query {
    str text;         /* words that must all appear (empty = any) */
    str user;         /* sender or a recipient (empty = any) */
    str with;         /* the other party (empty = any) */
    int64_t since_ms; /* at_ms >= since (0 = no bound) */
    int64_t until_ms; /* at_ms < until (0 = no bound) */
    uint32_t limit;   /* 0 = 100 */
};
typedef int (*store_archive_fn)(void *ctx, const struct store_archive_entry *e);
/* Matching entries, oldest first. */
int store_archive_search(struct store *s, const struct store_archive_query *q, store_archive_fn cb,
                         void *ctx);
/* Deletes entries older than before_ms; *removed (may be NULL) gets the count. */
int store_archive_expire(struct store *s, int64_t before_ms, int64_t *removed);

/* ---- API keys (hash only) ------------------------------------------------ */

/*
 * Creates a key for owner: 32 random characters written to key_out (33 bytes)
 * and shown once; only its SHA-256 is stored. expires_ms 0 = never.
 */
int store_apikey_create(struct store *s, str owner, str label, int64_t expires_ms, char key_out[33],
                        int64_t *id_out);
/* Checks a presented key: 0 and the owner in owner_out (STORE_NAME_MAX + 1 bytes);
 * -ENOENT when unknown or expired. */
int store_apikey_check(struct store *s, str key, int64_t now_ms, char *owner_out);
int store_apikey_del(struct store *s, int64_t id);

/* ---- registrations snapshot (opaque rows for the registrar) -------------- */

struct store_reg {
    str aor, contact;
    int64_t expires_ms;   /* absolute wall-clock expiry */
    uint32_t q;           /* q-value times 1000 */
    str instance;         /* +sip.instance, may be empty */
    uint32_t reg_id;      /* RFC 5626 reg-id, 0 = none */
    str path, user_agent; /* Path header value(s), may be empty */
    str received;         /* source address / flow description as text */
};
/* Replaces the whole snapshot with v[0..n) in one transaction. */
int store_regs_save(struct store *s, const struct store_reg *v, size_t n);
typedef int (*store_reg_fn)(void *ctx, const struct store_reg *r);
int store_regs_load(struct store *s, store_reg_fn cb, void *ctx);

/* ---- audit log ------------------------------------------------------------ */

struct store_audit_entry {
    int64_t id, at_ms;
    str actor, action, target, detail;
};
/* Appends an entry, e.g. ("rtcctl:root", "user.add", "alice", "display=Alice"). */
int store_audit_add(struct store *s, str actor, str action, str target, str detail);
typedef int (*store_audit_fn)(void *ctx, const struct store_audit_entry *e);
/* The latest limit entries (0 = 100), oldest first. */
int store_audit_list(struct store *s, uint32_t limit, store_audit_fn cb, void *ctx);

/* ---- stats and copying ---------------------------------------------------- */

struct store_stats {
    int64_t users, users_enabled, groups, memberships, contacts, presence_rules, forwarding;
    int64_t offline, archive, api_keys, registrations, audit;
    int schema_version;
};
int store_stats_get(struct store *s, struct store_stats *out);

/*
 * Copies every table of src into dst (both opened with store_open, dst
 * freshly migrated and empty — -ENOTEMPTY otherwise) in one transaction on
 * dst. *rows (may be NULL) gets the number of rows copied. Blocks.
 */
int store_copy(struct store *src, struct store *dst, int64_t *rows);

/* ---- the in-memory credential table -------------------------------------- */

struct store_creds;

struct cred {
    bool enabled;
    char ha1_md5[33];
    char ha1_sha256[65];
    char display[STORE_DISPLAY_MAX + 1];
};

/* An empty table. 0 or -ENOMEM. */
int store_creds_new(struct store_creds **out);
void store_creds_free(struct store_creds *t);
/*
 * Copies user's entry into *out. 0, or -ENOENT when there is no such user.
 * Safe from any thread; takes one shard's lock for a copy, never blocks on I/O.
 */
int store_creds_get(const struct store_creds *t, str user, struct cred *out);
size_t store_creds_count(const struct store_creds *t);
/*
 * Reloads the whole table from s (every user), replacing each shard under its
 * lock. Logs at debug level each name added, changed or removed (the first
 * 20), and at info level the totals when anything changed. Blocks on s:
 * call it from the store thread or at start.
 */
int store_creds_load(struct store_creds *t, struct store *s);

/* ---- the store thread (inside rtcd) ---------------------------------------- */

struct store_thread;

/* Runs on the store thread with the store; returns 0 or a negative errno. */
typedef int (*store_job_fn)(struct store *s, void *arg);
/*
 * Runs on the requesting worker's loop with the job's result. w is NULL when
 * the job was submitted without a worker, or when the worker stopped before
 * the answer could be posted: then it runs on the store thread and should
 * only release arg.
 */
typedef void (*store_done_fn)(struct worker *w, int rc, void *arg);

struct store_thread_opts {
    uint32_t poll_ms;            /* credential refresh poll (0 = 250 ms) */
    uint32_t retention_days;     /* archive retention (0 = keep for ever) */
    uint32_t expire_interval_ms; /* how often expired archive entries go (0 = 60 s) */
    uint32_t archive_commit_ms;  /* group commit window of archive appends (0 = 200 ms) */
};

/*
 * Takes ownership of s (closed by store_thread_stop) and starts the thread.
 * creds (may be NULL) is refreshed when the users change: the thread polls
 * store_users_seq every poll_ms. 0 or a negative errno (s is then still the
 * caller's).
 */
int store_thread_start(struct store_thread **out, struct store *s, struct store_creds *creds,
                       const struct store_thread_opts *o);
/*
 * Queues job(s, arg) on the store thread; done(w, rc, arg) then runs on w's
 * loop via worker_post (on the store thread when w is NULL). Never blocks on
 * the database. 0, -ENOMEM, or -ESHUTDOWN once stopping (nothing runs; the
 * caller keeps arg).
 */
int store_thread_submit(struct store_thread *t, struct worker *w, store_job_fn job,
                        store_done_fn done, void *arg);
/* Runs every queued job, joins the thread, closes the store, frees t. NULL is fine. */
void store_thread_stop(struct store_thread *t);

/*
 * Offline messages through the store thread. The fields are copied at once;
 * done(w, rc, id, ctx) runs on w after the row is committed (rc 0: send the
 * 202 now) or failed (-EDQUOT: answer 480 "mailbox full"; others: 500).
 */
typedef void (*store_offline_done_fn)(struct worker *w, int rc, int64_t id, void *ctx);
int store_thread_offline_enqueue(struct store_thread *t, struct worker *w, str recipient,
                                 str sender, int64_t created_ms, str content_type, str body,
                                 store_offline_done_fn done, void *ctx);
/* The same with an expiry (wall-clock ms, 0 = never; see store_offline_enqueue_ttl). */
int store_thread_offline_enqueue_ttl(struct store_thread *t, struct worker *w, str recipient,
                                     str sender, int64_t created_ms, str content_type, str body,
                                     int64_t expires_ms, store_offline_done_fn done, void *ctx);
/*
 * Fetches up to limit of recipient's messages in order; done runs on w with an
 * array it owns only during the call (fields borrowed until done returns).
 */
typedef void (*store_offline_list_fn)(struct worker *w, int rc, const struct store_offline_msg *v,
                                      size_t n, void *ctx);
int store_thread_offline_fetch(struct store_thread *t, struct worker *w, str recipient,
                               uint32_t limit, store_offline_list_fn done, void *ctx);
/* Deletes a delivered message; done (may be NULL) gets 0 or -ENOENT. */
int store_thread_offline_delete(struct store_thread *t, struct worker *w, int64_t id,
                                store_done_fn done, void *ctx);
/* Appends to the archive; fire-and-forget (errors are logged). */
int store_thread_archive_append(struct store_thread *t, str sender, const str *recipients,
                                size_t nrcpt, int64_t at_ms, str content_type, str body);

#endif
