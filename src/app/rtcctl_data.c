/*
 * rtcctl archive / messages / stats / audit / migrate — reading the message
 * archive, pending offline messages, counts, the audit log, and copying an
 * installation to PostgreSQL.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/rtcctl_store.h"

#define BODY_COLUMN 60

/* A one-line preview of a body for tables. */
static void preview(str body, char *out, size_t cap)
{
    size_t n = body.len < cap - 4 ? body.len : cap - 4;
    if (n > BODY_COLUMN)
        n = BODY_COLUMN;
    while (n && n < body.len && ((unsigned char)body.s[n] & 0xc0) == 0x80)
        n--; /* do not cut a UTF-8 character */
    memcpy(out, body.s, n);
    if (n < body.len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = 0;
}

static int parse_limit(const char *cmd, const char *v, uint32_t *out)
{
    if (str_to_u32(str_cstr(v), out) < 0 || *out == 0 || *out > 100000)
        return rtcctl_usage_error(cmd, "--limit '%s': expected 1..100000", v);
    return 0;
}

/* ---- archive ---- */

static const char archive_help[] =
    "Usage: rtcctl archive search TEXT [--user U] [--with U] [--since T] [--until T]\n"
    "                                  [--limit N]\n"
    "\n"
    "Searches the message archive. TEXT: words that must all appear (\"\" = any).\n"
    "  --user U    messages sent or received by U\n"
    "  --with U    messages that also involve U (with --user: between the two)\n"
    "  --since T   at or after T; --until T: before T. T is YYYY-MM-DD,\n"
    "              YYYY-MM-DDTHH:MM[:SS][Z] (UTC) or Unix seconds\n"
    "  --limit N   at most N results, oldest first (default 100)\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 done (even with no match), 1 refused, 2 usage error.\n";

struct arch {
    struct rtcctl_table *t;
    json_t *arr;
};

static int arch_row(void *ctx, const struct store_archive_entry *e)
{
    struct arch *a = ctx;
    char when[32];
    rtcctl_time_fmt(e->at_ms, when, sizeof when);
    if (a->arr) {
        json_array_append_new(
            a->arr, json_pack("{s:I, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)e->id, "time",
                              when, "from", rtcctl_json_str(e->sender), "to",
                              rtcctl_json_str(e->recipients), "content_type",
                              rtcctl_json_str(e->content_type), "body", rtcctl_json_str(e->body)));
        return 0;
    }
    char body[BODY_COLUMN + 8];
    preview(e->body, body, sizeof body);
    char *from = str_dup(e->sender), *to = str_dup(e->recipients);
    const char *row[] = {when, from, to, body};
    if (from && to)
        rtcctl_table_add(a->t, row);
    free(from);
    free(to);
    return 0;
}

int rtcctl_cmd_archive(struct rtcctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"user", required_argument, NULL, 'u'},  {"with", required_argument, NULL, 'w'},
        {"since", required_argument, NULL, 's'}, {"until", required_argument, NULL, 't'},
        {"limit", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0},
    };
    if (rtcctl_wants_help(argc, argv)) {
        fputs(archive_help, stdout);
        return RTCCTL_OK;
    }
    struct store_archive_query q = {0};
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            q.user = str_cstr(optarg);
            break;
        case 'w':
            q.with = str_cstr(optarg);
            break;
        case 's':
        case 't':
            if (rtcctl_time_parse(optarg, c == 's' ? &q.since_ms : &q.until_ms) < 0)
                return rtcctl_usage_error("archive ",
                                          "--%s '%s': malformed time (YYYY-MM-DD, "
                                          "YYYY-MM-DDTHH:MM[:SS][Z] or Unix seconds)",
                                          c == 's' ? "since" : "until", optarg);
            break;
        case 'l':
            if (parse_limit("archive ", optarg, &q.limit))
                return RTCCTL_USAGE;
            break;
        default:
            return rtcctl_usage_error("archive ", "archive: unknown or incomplete option");
        }
    }
    if (argc - optind != 2 || strcmp(argv[optind], "search") != 0)
        return rtcctl_usage_error("archive ", "archive: expected: search TEXT [options]");
    q.text = str_cstr(argv[optind + 1]);
    if (q.text.len > 1024)
        return rtcctl_usage_error("archive ", "archive: the search text is too long");
    if (q.since_ms && q.until_ms && q.until_ms <= q.since_ms)
        return rtcctl_usage_error("archive ", "archive: --until must be after --since");
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    static const char *const hdr[] = {"TIME", "FROM", "TO", "BODY"};
    struct arch a = {NULL, NULL};
    if (ctl->json)
        a.arr = json_array();
    else
        a.t = rtcctl_table_new(4, hdr);
    int rc = store_archive_search(s, &q, arch_row, &a);
    if (rc < 0) {
        json_decref(a.arr);
        rtcctl_table_free(a.t);
        rc = rtcctl_refused(s, rc, "archive search");
        store_close(s);
        return rc;
    }
    if (a.arr)
        rtcctl_json_print(a.arr);
    rtcctl_table_print(a.t);
    rtcctl_table_free(a.t);
    store_close(s);
    return RTCCTL_OK;
}

/* ---- messages ---- */

static const char messages_help[] =
    "Usage: rtcctl messages pending [--user U] [--limit N]\n"
    "\n"
    "Offline messages waiting for delivery (all users, or U's), in delivery order.\n"
    "Options: --json (machine-readable output, with the body when it is text), --help.\n"
    "Exit status: 0 done, 1 refused (no such user), 2 usage error.\n";

struct pend {
    struct rtcctl_table *t;
    json_t *arr;
};

static int pend_row(void *ctx, const struct store_offline_msg *m)
{
    struct pend *p = ctx;
    char when[32], size[24], id[24];
    rtcctl_time_fmt(m->created_ms, when, sizeof when);
    snprintf(size, sizeof size, "%zu", m->body.len);
    snprintf(id, sizeof id, "%lld", (long long)m->id);
    if (p->arr) {
        json_t *o = json_pack("{s:I, s:o, s:o, s:s, s:o, s:I}", "id", (json_int_t)m->id, "to",
                              rtcctl_json_str(m->recipient), "from", rtcctl_json_str(m->sender),
                              "time", when, "content_type", rtcctl_json_str(m->content_type),
                              "size", (json_int_t)m->body.len);
        json_t *b = json_stringn(m->body.s ? m->body.s : "", m->body.len);
        if (o && b)
            json_object_set_new(o, "body", b);
        json_array_append_new(p->arr, o);
        return 0;
    }
    char *to = str_dup(m->recipient), *from = str_dup(m->sender), *ct = str_dup(m->content_type);
    const char *row[] = {id, to, from, when, ct, size};
    if (to && from && ct)
        rtcctl_table_add(p->t, row);
    free(to);
    free(from);
    free(ct);
    return 0;
}

int rtcctl_cmd_messages(struct rtcctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"user", required_argument, NULL, 'u'},
        {"limit", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    if (rtcctl_wants_help(argc, argv)) {
        fputs(messages_help, stdout);
        return RTCCTL_OK;
    }
    const char *user = NULL;
    uint32_t limit = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == 'u')
            user = optarg;
        else if (c == 'l') {
            if (parse_limit("messages ", optarg, &limit))
                return RTCCTL_USAGE;
        } else
            return rtcctl_usage_error("messages ", "messages: unknown or incomplete option");
    }
    if (argc - optind != 1 || strcmp(argv[optind], "pending") != 0)
        return rtcctl_usage_error("messages ", "messages: expected: pending [--user U]");
    if (user && !store_name_valid(str_cstr(user)))
        return rtcctl_usage_error("messages ", "invalid user name '%s'", user);
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int rc = 0;
    if (user) {
        struct store_user u;
        rc = store_user_get(s, str_cstr(user), &u);
        if (rc == -ENOENT) {
            fprintf(stderr, "rtcctl: no such user: %s\n", user);
            store_close(s);
            return RTCCTL_REFUSED;
        }
    }
    static const char *const hdr[] = {"ID", "TO", "FROM", "TIME", "TYPE", "BYTES"};
    struct pend p = {NULL, NULL};
    if (ctl->json)
        p.arr = json_array();
    else
        p.t = rtcctl_table_new(6, hdr);
    if (rc == 0)
        rc = user ? store_offline_list(s, str_cstr(user), limit, pend_row, &p)
                  : store_offline_list_all(s, limit, pend_row, &p);
    if (rc < 0) {
        json_decref(p.arr);
        rtcctl_table_free(p.t);
        rc = rtcctl_refused(s, rc, "messages pending");
        store_close(s);
        return rc;
    }
    if (p.arr)
        rtcctl_json_print(p.arr);
    rtcctl_table_print(p.t);
    rtcctl_table_free(p.t);
    store_close(s);
    return RTCCTL_OK;
}

/* ---- stats ---- */

static const char stats_help[] =
    "Usage: rtcctl stats\n"
    "\n"
    "Counts of what the store holds (users, groups, offline messages, archive, ...),\n"
    "the backend and the schema version.\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 done, 1 the store cannot be read, 2 usage error.\n";

int rtcctl_cmd_stats(struct rtcctl *ctl, int argc, char **argv)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(stats_help, stdout);
        return RTCCTL_OK;
    }
    if (argc != 1)
        return rtcctl_usage_error("stats ", "stats: takes no arguments");
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    struct store_stats st;
    int rc = store_stats_get(s, &st);
    if (rc < 0) {
        rc = rtcctl_refused(s, rc, "stats");
        store_close(s);
        return rc;
    }
    const struct {
        const char *name;
        int64_t v;
    } rows[] = {
        {"users", st.users},
        {"users_enabled", st.users_enabled},
        {"groups", st.groups},
        {"group_memberships", st.memberships},
        {"contacts", st.contacts},
        {"presence_rules", st.presence_rules},
        {"forwarding_rules", st.forwarding},
        {"offline_messages", st.offline},
        {"archive_entries", st.archive},
        {"api_keys", st.api_keys},
        {"registrations_saved", st.registrations},
        {"audit_entries", st.audit},
        {"schema_version", st.schema_version},
    };
    const size_t n = sizeof rows / sizeof rows[0];
    if (ctl->json) {
        json_t *o =
            json_pack("{s:s, s:s}", "backend", store_backend_name(s), "realm", store_realm(s));
        for (size_t i = 0; i < n; i++)
            json_object_set_new(o, rows[i].name, json_integer(rows[i].v));
        rtcctl_json_print(o);
    } else {
        printf("%-20s %s\n%-20s %s\n", "backend", store_backend_name(s), "realm", store_realm(s));
        for (size_t i = 0; i < n; i++)
            printf("%-20s %lld\n", rows[i].name, (long long)rows[i].v);
    }
    store_close(s);
    return RTCCTL_OK;
}

/* ---- audit ---- */

static const char audit_help[] =
    "Usage: rtcctl audit [--limit N]\n"
    "\n"
    "The latest administrative changes (default 50), oldest first: who (rtcctl:<login>),\n"
    "what, on what.\n"
    "Options: --json (machine-readable output), --help.\n";

struct aud {
    struct rtcctl_table *t;
    json_t *arr;
};

static int aud_row(void *ctx, const struct store_audit_entry *e)
{
    struct aud *a = ctx;
    char when[32];
    rtcctl_time_fmt(e->at_ms, when, sizeof when);
    if (a->arr) {
        json_array_append_new(a->arr, json_pack("{s:s, s:o, s:o, s:o, s:o}", "time", when, "actor",
                                                rtcctl_json_str(e->actor), "action",
                                                rtcctl_json_str(e->action), "target",
                                                rtcctl_json_str(e->target), "detail",
                                                rtcctl_json_str(e->detail)));
        return 0;
    }
    char *ac = str_dup(e->actor), *an = str_dup(e->action), *t = str_dup(e->target),
         *d = str_dup(e->detail);
    const char *row[] = {when, ac, an, t, d};
    if (ac && an && t && d)
        rtcctl_table_add(a->t, row);
    free(ac);
    free(an);
    free(t);
    free(d);
    return 0;
}

int rtcctl_cmd_audit(struct rtcctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    if (rtcctl_wants_help(argc, argv)) {
        fputs(audit_help, stdout);
        return RTCCTL_OK;
    }
    uint32_t limit = 50;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c != 'l')
            return rtcctl_usage_error("audit ", "audit: unknown or incomplete option");
        if (parse_limit("audit ", optarg, &limit))
            return RTCCTL_USAGE;
    }
    if (optind != argc)
        return rtcctl_usage_error("audit ", "audit: unexpected argument '%s'", argv[optind]);
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    static const char *const hdr[] = {"TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"};
    struct aud a = {NULL, NULL};
    if (ctl->json)
        a.arr = json_array();
    else
        a.t = rtcctl_table_new(5, hdr);
    int rc = store_audit_list(s, limit, aud_row, &a);
    if (rc < 0) {
        json_decref(a.arr);
        rtcctl_table_free(a.t);
        rc = rtcctl_refused(s, rc, "audit");
        store_close(s);
        return rc;
    }
    if (a.arr)
        rtcctl_json_print(a.arr);
    rtcctl_table_print(a.t);
    rtcctl_table_free(a.t);
    store_close(s);
    return RTCCTL_OK;
}

/* ---- migrate ---- */

static const char migrate_help[] =
    "Usage: rtcctl migrate --to postgresql://USER@HOST:PORT/DB\n"
    "\n"
    "Copies the configured store (normally SQLite) into an empty PostgreSQL database:\n"
    "creates the schema there (migrations), then copies every table in one transaction.\n"
    "Stop rtcd first (changes made during the copy would be left behind). Then set\n"
    "store.backend = postgres and store.url in the configuration. See docs/operations.md.\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 copied, 1 refused (target not empty or unreachable), 2 usage error.\n";

int rtcctl_cmd_migrate(struct rtcctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"to", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    if (rtcctl_wants_help(argc, argv)) {
        fputs(migrate_help, stdout);
        return RTCCTL_OK;
    }
    const char *to = NULL;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c != 't')
            return rtcctl_usage_error("migrate ", "migrate: unknown or incomplete option");
        to = optarg;
    }
    if (optind != argc)
        return rtcctl_usage_error("migrate ", "migrate: unexpected argument '%s'", argv[optind]);
    if (!to || (strncmp(to, "postgresql://", 13) != 0 && strncmp(to, "postgres://", 11) != 0))
        return rtcctl_usage_error("migrate ", "migrate: expected --to postgresql://...");
    struct store *src = rtcctl_store_open(ctl);
    if (!src)
        return RTCCTL_REFUSED;
    char realm[256], err[768];
    store_realm_from_domain(ctl->cfg.server.domain, realm, sizeof realm);
    struct store_params p = {STORE_POSTGRES, to, realm, ctl->cfg.store.max_offline_per_user};
    struct store *dst = NULL;
    int rc = store_open(&dst, &p, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "rtcctl: cannot open the target: %s\n", err);
        store_close(src);
        return RTCCTL_REFUSED;
    }
    int64_t rows = 0;
    rc = store_copy(src, dst, &rows);
    if (rc == -ENOTEMPTY) {
        fprintf(stderr, "rtcctl: the target database already holds data; nothing copied\n");
        rc = RTCCTL_REFUSED;
    } else if (rc < 0) {
        fprintf(stderr, "rtcctl: copy failed, nothing copied: %s\n",
                rc == -EIO ? store_errmsg(dst) : strerror(-rc));
        rc = RTCCTL_REFUSED;
    } else {
        rtcctl_audit(dst, "store.migrate", store_backend_name(src), "");
        if (ctl->json)
            rtcctl_json_print(json_pack("{s:b, s:s, s:s, s:I}", "ok", 1, "from",
                                        store_backend_name(src), "to", "postgres", "rows",
                                        (json_int_t)rows));
        else
            printf("copied %lld row(s) from %s to PostgreSQL\n", (long long)rows,
                   store_backend_name(src));
        rc = RTCCTL_OK;
    }
    store_close(dst);
    store_close(src);
    return rc;
}
