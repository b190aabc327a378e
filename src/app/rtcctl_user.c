/*
 * rtcctl user — users: add, import, del, list, show, passwd, enable, disable.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/rtcctl_store.h"
#include "base/buf.h"
#include "base/map.h"

#define IMPORT_MAX_LINES 1000000
#define IMPORT_MAX_LINE  4096

static const char help[] =
    "Usage: rtcctl user add NAME [--password PW | --password-file FILE] [--display NAME]\n"
    "       rtcctl user import FILE        (CSV lines: name,password[,display name])\n"
    "       rtcctl user del NAME\n"
    "       rtcctl user list\n"
    "       rtcctl user show NAME\n"
    "       rtcctl user passwd NAME [--password PW | --password-file FILE]\n"
    "       rtcctl user enable NAME\n"
    "       rtcctl user disable NAME\n"
    "\n"
    "Users of the first server.domain (the digest realm). Passwords are kept only as\n"
    "HA1 digests (MD5 and SHA-256). Without --password or --password-file the password\n"
    "is asked without echo on a terminal, or read as one line from standard input.\n"
    "Names: 1-64 characters of A-Z a-z 0-9 - _ . ! ~ * ' +\n"
    "import: all or nothing; blank lines and lines starting with # are skipped; fields\n"
    "may be double-quoted (\"\" for a quote). A bad line is reported with its number.\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 done, 1 refused (e.g. user exists, no such user), 2 usage error.\n";

#define usage(...) rtcctl_usage_error("user ", __VA_ARGS__)

struct pw_opts {
    const char *password, *password_file, *display;
    bool has_display;
};

/* Parses the options of add/passwd; positional arguments are left in argv[optind..]. */
static int parse_pw_opts(int argc, char **argv, struct pw_opts *o, bool display_ok)
{
    static const struct option longopts[] = {
        {"password", required_argument, NULL, 'p'},
        {"password-file", required_argument, NULL, 'f'},
        {"display", required_argument, NULL, 'd'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            o->password = optarg;
            break;
        case 'f':
            o->password_file = optarg;
            break;
        case 'd':
            if (!display_ok)
                return usage("%s: --display is not an option here", argv[0]);
            o->display = optarg;
            o->has_display = true;
            break;
        default:
            return usage("%s: unknown or incomplete option", argv[0]);
        }
    }
    return 0;
}

static int one_name(int argc, char **argv, str *name)
{
    if (optind != argc - 1)
        return usage("%s: expected one user name", argv[0]);
    *name = str_cstr(argv[optind]);
    if (!store_name_valid(*name))
        return usage("invalid user name '%s' (1-64 of A-Z a-z 0-9 - _ . ! ~ * ' +)", argv[optind]);
    return 0;
}

static int ok_json(struct rtcctl *ctl, const char *action, const char *name)
{
    if (ctl->json)
        rtcctl_json_print(json_pack("{s:b, s:s, s:s}", "ok", 1, "action", action, "user", name));
    return RTCCTL_OK;
}

static int cmd_add(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    struct pw_opts o = {0};
    str name;
    int rc = parse_pw_opts(argc, argv, &o, true);
    if (rc == 0)
        rc = one_name(argc, argv, &name);
    if (rc)
        return rc;
    if (o.display && !store_display_valid(str_cstr(o.display)))
        return usage("invalid display name '%s' (at most 128 bytes of UTF-8 text)", o.display);
    struct store_user u;
    if (store_user_get(s, name, &u) == 0) {
        fprintf(stderr, "rtcctl: user %s already exists\n", name.s);
        return RTCCTL_REFUSED;
    }
    char pw[STORE_PASSWORD_MAX + 2];
    rc = rtcctl_password(o.password, o.password_file, name.s, true, pw, sizeof pw);
    if (rc)
        return rc;
    if (pw[0] == 0)
        return usage("%s: the password is empty", argv[0]);
    struct store_user_new nu = {name, str_cstr(pw), str_cstr(o.display ? o.display : "")};
    rc = store_user_add(s, &nu);
    memset(pw, 0, sizeof pw);
    if (rc < 0)
        return rtcctl_refused(s, rc, "user %s", name.s);
    rtcctl_audit(s, "user.add", name.s, o.display ? o.display : "");
    if (!ctl->json)
        printf("user %s added\n", name.s);
    return ok_json(ctl, "add", name.s);
}

/* ---- import ---- */

/* Splits one CSV line into at most 4 fields (quoted fields unescaped into scratch). */
static int csv_fields(char *line, char **f, size_t *nf, const char **why)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == 4) {
            *why = "too many fields (expected name,password[,display name])";
            return -EINVAL;
        }
        if (*p == '"') {
            char *o = ++p;
            f[n++] = o;
            for (;;) {
                if (!*p) {
                    *why = "unterminated quoted field";
                    return -EINVAL;
                }
                if (*p == '"' && p[1] == '"') {
                    *o++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *o++ = *p++;
                }
            }
            if (*p && *p != ',') {
                *why = "text after a closing quote";
                return -EINVAL;
            }
            char *end = p;
            if (*p == ',')
                p++;
            *o = 0;
            if (!*end)
                break;
            continue;
        }
        f[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = 0;
        p = comma + 1;
    }
    *nf = n;
    return 0;
}

struct import {
    struct store_user_new *v;
    size_t *lineno;
    char **lines; /* owned copies the slices point into */
    size_t n, cap;
};

static void import_free(struct import *im)
{
    for (size_t i = 0; i < im->n; i++)
        free(im->lines[i]);
    free(im->lines);
    free(im->v);
    free(im->lineno);
}

static int import_push(struct import *im, char *line, size_t lineno, char **f, size_t nf)
{
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 1024;
        struct store_user_new *v = realloc(im->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        im->v = v;
        size_t *ln = realloc(im->lineno, cap * sizeof *ln);
        if (!ln)
            return -ENOMEM;
        im->lineno = ln;
        char **ls = realloc(im->lines, cap * sizeof *ls);
        if (!ls)
            return -ENOMEM;
        im->lines = ls;
        im->cap = cap;
    }
    im->lines[im->n] = line;
    im->lineno[im->n] = lineno;
    im->v[im->n] =
        (struct store_user_new){str_cstr(f[0]), str_cstr(f[1]), nf > 2 ? str_cstr(f[2]) : STR("")};
    im->n++;
    return 0;
}

static int cmd_import(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    if (argc != 2)
        return usage("%s: expected one file name", argv[0]);
    const char *path = argv[1];
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        fprintf(stderr, "rtcctl: %s: %s\n", path, strerror(errno));
        return RTCCTL_REFUSED;
    }
    struct import im = {0};
    struct map *seen = NULL;
    int ret = RTCCTL_OK;
    if (map_new(&seen, MAP_KEY_STR, 1024) < 0) {
        ret = RTCCTL_REFUSED;
        goto out;
    }
    char buf[IMPORT_MAX_LINE + 2];
    size_t lineno = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        size_t l = strlen(buf);
        if (l == sizeof buf - 1 && buf[l - 1] != '\n') {
            fprintf(stderr, "rtcctl: %s:%zu: line longer than %d bytes; nothing imported\n", path,
                    lineno, IMPORT_MAX_LINE);
            ret = RTCCTL_REFUSED;
            goto out;
        }
        while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
            buf[--l] = 0;
        str t = str_trim(str_make(buf, l));
        if (t.len == 0 || t.s[0] == '#')
            continue;
        if (im.n >= IMPORT_MAX_LINES) {
            fprintf(stderr, "rtcctl: %s:%zu: more than %d users; nothing imported\n", path, lineno,
                    IMPORT_MAX_LINES);
            ret = RTCCTL_REFUSED;
            goto out;
        }
        char *line = strdup(buf), *fl[4];
        size_t nf = 0;
        const char *why = NULL;
        if (!line) {
            ret = RTCCTL_REFUSED;
            goto out;
        }
        int rc = csv_fields(line, fl, &nf, &why);
        if (rc == 0 && nf < 2)
            why = "expected name,password[,display name]", rc = -EINVAL;
        if (rc == 0 && !store_name_valid(str_cstr(fl[0])))
            why = "invalid user name", rc = -EINVAL;
        if (rc == 0 && (!*fl[1] || strlen(fl[1]) > STORE_PASSWORD_MAX))
            why = "empty or over-long password", rc = -EINVAL;
        if (rc == 0 && nf > 2 && !store_display_valid(str_cstr(fl[2])))
            why = "invalid display name", rc = -EINVAL;
        if (rc == 0) {
            void *prev = map_get_str(seen, str_cstr(fl[0]));
            if (prev) {
                fprintf(stderr,
                        "rtcctl: %s:%zu: user '%s' is already on line %zu; nothing "
                        "imported\n",
                        path, lineno, fl[0], (size_t)(uintptr_t)prev);
                free(line);
                ret = RTCCTL_REFUSED;
                goto out;
            }
        }
        if (rc < 0) {
            fprintf(stderr, "rtcctl: %s:%zu: %s; nothing imported\n", path, lineno, why);
            free(line);
            ret = RTCCTL_REFUSED;
            goto out;
        }
        if (import_push(&im, line, lineno, fl, nf) < 0 ||
            map_set_str(seen, str_cstr(fl[0]), (void *)(uintptr_t)lineno, NULL) < 0) {
            ret = rtcctl_refused(s, -ENOMEM, "import");
            goto out;
        }
    }
    size_t bad = 0;
    int rc = store_user_import(s, im.v, im.n, &bad);
    if (rc == -EEXIST || rc == -EINVAL) {
        fprintf(stderr, "rtcctl: %s:%zu: user '%.*s' %s; nothing imported\n", path, im.lineno[bad],
                STR_FMT(im.v[bad].name), rc == -EEXIST ? "already exists" : "is invalid");
        ret = RTCCTL_REFUSED;
        goto out;
    }
    if (rc < 0) {
        ret = rtcctl_refused(s, rc, "import %s (nothing imported)", path);
        goto out;
    }
    char detail[64];
    snprintf(detail, sizeof detail, "%zu users", im.n);
    rtcctl_audit(s, "user.import", path, detail);
    if (ctl->json)
        rtcctl_json_print(json_pack("{s:b, s:s, s:I}", "ok", 1, "action", "import", "imported",
                                    (json_int_t)im.n));
    else
        printf("%zu user(s) imported\n", im.n);
out:
    map_free(seen);
    import_free(&im);
    if (f != stdin)
        fclose(f);
    return ret;
}

/* ---- the rest ---- */

static int cmd_simple(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    optind = 1;
    str name;
    int rc = one_name(argc, argv, &name);
    if (rc)
        return rc;
    const char *sub = argv[0], *done;
    if (strcmp(sub, "del") == 0) {
        rc = store_user_del(s, name);
        done = "deleted";
    } else {
        bool en = strcmp(sub, "enable") == 0;
        rc = store_user_set_enabled(s, name, en);
        done = en ? "enabled" : "disabled";
    }
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such user: %s\n", name.s);
        return RTCCTL_REFUSED;
    }
    if (rc < 0)
        return rtcctl_refused(s, rc, "user %s", name.s);
    char action[32];
    snprintf(action, sizeof action, "user.%s", sub);
    rtcctl_audit(s, action, name.s, "");
    if (!ctl->json)
        printf("user %s %s\n", name.s, done);
    return ok_json(ctl, sub, name.s);
}

static int cmd_passwd(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    struct pw_opts o = {0};
    str name;
    int rc = parse_pw_opts(argc, argv, &o, false);
    if (rc == 0)
        rc = one_name(argc, argv, &name);
    if (rc)
        return rc;
    struct store_user u;
    if (store_user_get(s, name, &u) == -ENOENT) {
        fprintf(stderr, "rtcctl: no such user: %s\n", name.s);
        return RTCCTL_REFUSED;
    }
    char pw[STORE_PASSWORD_MAX + 2];
    rc = rtcctl_password(o.password, o.password_file, name.s, true, pw, sizeof pw);
    if (rc)
        return rc;
    if (pw[0] == 0)
        return usage("%s: the password is empty", argv[0]);
    rc = store_user_passwd(s, name, str_cstr(pw));
    memset(pw, 0, sizeof pw);
    if (rc < 0)
        return rtcctl_refused(s, rc, "user %s", name.s);
    rtcctl_audit(s, "user.passwd", name.s, "");
    if (!ctl->json)
        printf("password of %s changed\n", name.s);
    return ok_json(ctl, "passwd", name.s);
}

struct groups_buf {
    char text[1024];
    json_t *arr;
};

static int add_group(void *ctx, str g)
{
    struct groups_buf *b = ctx;
    size_t l = strlen(b->text);
    snprintf(b->text + l, sizeof b->text - l, "%s%.*s", l ? "," : "", STR_FMT(g));
    if (b->arr)
        json_array_append_new(b->arr, rtcctl_json_str(g));
    return 0;
}

struct list_ctx {
    struct store *s;
    struct rtcctl_table *t;
    json_t *arr;
};

static json_t *user_json(const struct store_user *u, json_t *groups)
{
    char c[32], m[32];
    rtcctl_time_fmt(u->created_ms, c, sizeof c);
    rtcctl_time_fmt(u->updated_ms, m, sizeof m);
    return json_pack("{s:s, s:s, s:b, s:o, s:s, s:s}", "name", u->name, "display", u->display,
                     "enabled", u->enabled, "groups", groups, "created", c, "updated", m);
}

static int list_user(void *ctx, const struct store_user *u)
{
    struct list_ctx *c = ctx;
    struct groups_buf g = {"", c->arr ? json_array() : NULL};
    int rc = store_user_groups(c->s, str_cstr(u->name), add_group, &g);
    if (rc < 0) {
        json_decref(g.arr);
        return rc;
    }
    if (c->arr) {
        json_array_append_new(c->arr, user_json(u, g.arr));
    } else {
        const char *row[] = {u->name, u->display, u->enabled ? "yes" : "no", g.text};
        rtcctl_table_add(c->t, row);
    }
    return 0;
}

static int cmd_list(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    if (argc != 1)
        return usage("%s: takes no arguments", argv[0]);
    static const char *const hdr[] = {"NAME", "DISPLAY", "ENABLED", "GROUPS"};
    struct list_ctx c = {s, NULL, NULL};
    if (ctl->json)
        c.arr = json_array();
    else
        c.t = rtcctl_table_new(4, hdr);
    int rc = store_user_list(s, list_user, &c);
    if (rc < 0) {
        json_decref(c.arr);
        rtcctl_table_free(c.t);
        return rtcctl_refused(s, rc, "user list");
    }
    if (ctl->json)
        rtcctl_json_print(c.arr);
    else
        rtcctl_table_print(c.t);
    rtcctl_table_free(c.t);
    return RTCCTL_OK;
}

static int cmd_show(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    optind = 1;
    str name;
    int rc = one_name(argc, argv, &name);
    if (rc)
        return rc;
    struct store_user u;
    rc = store_user_get(s, name, &u);
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such user: %s\n", name.s);
        return RTCCTL_REFUSED;
    }
    struct groups_buf g = {"", json_array()};
    int64_t pending = 0;
    if (rc == 0)
        rc = store_user_groups(s, name, add_group, &g);
    if (rc == 0)
        rc = store_offline_count(s, name, &pending);
    if (rc < 0) {
        json_decref(g.arr);
        return rtcctl_refused(s, rc, "user %s", name.s);
    }
    if (ctl->json) {
        json_t *o = user_json(&u, g.arr);
        json_object_set_new(o, "realm", json_string(store_realm(s)));
        json_object_set_new(o, "offline_pending", json_integer(pending));
        rtcctl_json_print(o);
        return RTCCTL_OK;
    }
    json_decref(g.arr);
    char c[32], m[32];
    rtcctl_time_fmt(u.created_ms, c, sizeof c);
    rtcctl_time_fmt(u.updated_ms, m, sizeof m);
    printf("name:             %s\ndisplay:          %s\nenabled:          %s\n"
           "groups:           %s\nrealm:            %s\ncreated:          %s\n"
           "updated:          %s\noffline pending:  %lld\n",
           u.name, u.display, u.enabled ? "yes" : "no", g.text, store_realm(s), c, m,
           (long long)pending);
    return RTCCTL_OK;
}

int rtcctl_cmd_user(struct rtcctl *ctl, int argc, char **argv)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RTCCTL_OK;
    }
    if (argc < 2)
        return rtcctl_usage_error("user ", "user: expected a subcommand");
    static const struct {
        const char *name;
        int (*fn)(struct rtcctl *, struct store *, int, char **);
    } subs[] = {
        {"add", cmd_add},   {"import", cmd_import}, {"del", cmd_simple},    {"list", cmd_list},
        {"show", cmd_show}, {"passwd", cmd_passwd}, {"enable", cmd_simple}, {"disable", cmd_simple},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        struct store *s = rtcctl_store_open(ctl);
        if (!s)
            return RTCCTL_REFUSED;
        int rc = subs[i].fn(ctl, s, argc - 1, argv + 1);
        store_close(s);
        return rc;
    }
    return rtcctl_usage_error("user ", "user: unknown subcommand '%s'", argv[1]);
}
