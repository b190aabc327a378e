/*
 * rtcctl group — groups and their members; rtcctl contacts — a user's
 * roaming contact list.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/rtcctl_store.h"

static const char group_help[] =
    "Usage: rtcctl group add NAME\n"
    "       rtcctl group del NAME\n"
    "       rtcctl group list\n"
    "       rtcctl group members add GROUP USER...\n"
    "       rtcctl group members del GROUP USER...\n"
    "       rtcctl group members list GROUP\n"
    "\n"
    "Groups of users (for broadcasts, policies and directory views).\n"
    "Names: 1-64 characters of A-Z a-z 0-9 - _ . ! ~ * ' +\n"
    "members add/del change every USER or none (one transaction per user, checked first).\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 done, 1 refused (group exists, no such group or user), 2 usage error.\n";

#define gusage(...) rtcctl_usage_error("group ", __VA_ARGS__)

static int check_group_name(const char *n)
{
    if (!store_name_valid(str_cstr(n)))
        return gusage("invalid group name '%s' (1-64 of A-Z a-z 0-9 - _ . ! ~ * ' +)", n);
    return 0;
}

static int no_group(const char *g)
{
    fprintf(stderr, "rtcctl: no such group: %s\n", g);
    return RTCCTL_REFUSED;
}

static int ok_json(struct rtcctl *ctl, const char *action, const char *group)
{
    if (ctl->json)
        rtcctl_json_print(json_pack("{s:b, s:s, s:s}", "ok", 1, "action", action, "group", group));
    return RTCCTL_OK;
}

struct count_ctx {
    int64_t n;
};

static int count_one(void *ctx, str n)
{
    ((struct count_ctx *)ctx)->n++;
    return 0;
}

struct glist {
    struct store *s;
    struct rtcctl_table *t;
    json_t *arr;
};

static int list_group(void *ctx, str name)
{
    struct glist *c = ctx;
    char *n = str_dup(name);
    if (!n)
        return -ENOMEM;
    struct count_ctx k = {0};
    /* the walk over groups is a separate statement: a nested query is fine */
    int rc = store_group_members(c->s, str_cstr(n), count_one, &k);
    if (rc == 0) {
        if (c->arr) {
            json_array_append_new(c->arr,
                                  json_pack("{s:s, s:I}", "name", n, "members", (json_int_t)k.n));
        } else {
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)k.n);
            const char *row[] = {n, num};
            rtcctl_table_add(c->t, row);
        }
    }
    free(n);
    return rc;
}

static int members_json(void *ctx, str n)
{
    json_array_append_new(ctx, rtcctl_json_str(n));
    return 0;
}

static int members_print(void *ctx, str n)
{
    printf("%.*s\n", STR_FMT(n));
    return 0;
}

static int members(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    if (argc < 2)
        return gusage("%s: expected add, del or list", "members");
    const char *sub = argv[1];
    if (strcmp(sub, "list") == 0) {
        if (argc != 3)
            return gusage("members list: expected one group name%s", "");
        int rc = check_group_name(argv[2]);
        if (rc)
            return rc;
        json_t *arr = ctl->json ? json_array() : NULL;
        rc = store_group_members(s, str_cstr(argv[2]), arr ? members_json : members_print, arr);
        if (rc == -ENOENT) {
            json_decref(arr);
            return no_group(argv[2]);
        }
        if (rc < 0) {
            json_decref(arr);
            return rtcctl_refused(s, rc, "group %s", argv[2]);
        }
        if (arr)
            rtcctl_json_print(json_pack("{s:s, s:o}", "group", argv[2], "members", arr));
        return RTCCTL_OK;
    }
    bool add = strcmp(sub, "add") == 0;
    if (!add && strcmp(sub, "del") != 0)
        return gusage("members: unknown subcommand '%s'", sub);
    if (argc < 4)
        return gusage("members %s: expected GROUP USER...", sub);
    const char *g = argv[2];
    int rc = check_group_name(g);
    if (rc)
        return rc;
    for (int i = 3; i < argc; i++)
        if (!store_name_valid(str_cstr(argv[i])))
            return gusage("invalid user name '%s'", argv[i]);
    if (store_group_exists(s, str_cstr(g)) == -ENOENT)
        return no_group(g);
    /* check every user first so that a bad name changes nothing */
    for (int i = 3; i < argc; i++) {
        struct store_user u;
        rc = store_user_get(s, str_cstr(argv[i]), &u);
        if (rc == -ENOENT) {
            fprintf(stderr, "rtcctl: no such user: %s\n", argv[i]);
            return RTCCTL_REFUSED;
        }
        if (rc < 0)
            return rtcctl_refused(s, rc, "user %s", argv[i]);
    }
    for (int i = 3; i < argc; i++) {
        rc = add ? store_group_member_add(s, str_cstr(g), str_cstr(argv[i]))
                 : store_group_member_del(s, str_cstr(g), str_cstr(argv[i]));
        if (rc == -EEXIST) {
            fprintf(stderr, "rtcctl: %s is already a member of %s\n", argv[i], g);
            return RTCCTL_REFUSED;
        }
        if (rc == -ENOENT) {
            fprintf(stderr, "rtcctl: %s is not a member of %s\n", argv[i], g);
            return RTCCTL_REFUSED;
        }
        if (rc < 0)
            return rtcctl_refused(s, rc, "group %s", g);
        rtcctl_audit(s, add ? "group.member.add" : "group.member.del", g, argv[i]);
        if (!ctl->json)
            printf("%s %s %s\n", argv[i], add ? "added to" : "removed from", g);
    }
    return ok_json(ctl, add ? "members.add" : "members.del", g);
}

static int group_run(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    const char *sub = argv[1];
    if (strcmp(sub, "members") == 0)
        return members(ctl, s, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0) {
        if (argc != 2)
            return gusage("list: takes no arguments%s", "");
        static const char *const hdr[] = {"NAME", "MEMBERS"};
        struct glist c = {s, NULL, NULL};
        if (ctl->json)
            c.arr = json_array();
        else
            c.t = rtcctl_table_new(2, hdr);
        int rc = store_group_list(s, list_group, &c);
        if (rc < 0) {
            json_decref(c.arr);
            rtcctl_table_free(c.t);
            return rtcctl_refused(s, rc, "group list");
        }
        if (c.arr)
            rtcctl_json_print(c.arr);
        rtcctl_table_print(c.t);
        rtcctl_table_free(c.t);
        return RTCCTL_OK;
    }
    bool add = strcmp(sub, "add") == 0;
    if (!add && strcmp(sub, "del") != 0)
        return gusage("group: unknown subcommand '%s'", sub);
    if (argc != 3)
        return gusage("%s: expected one group name", sub);
    int rc = check_group_name(argv[2]);
    if (rc)
        return rc;
    rc = add ? store_group_add(s, str_cstr(argv[2])) : store_group_del(s, str_cstr(argv[2]));
    if (rc == -EEXIST) {
        fprintf(stderr, "rtcctl: group %s already exists\n", argv[2]);
        return RTCCTL_REFUSED;
    }
    if (rc == -ENOENT)
        return no_group(argv[2]);
    if (rc < 0)
        return rtcctl_refused(s, rc, "group %s", argv[2]);
    rtcctl_audit(s, add ? "group.add" : "group.del", argv[2], "");
    struct store_user clash;
    if (add && store_user_get(s, str_cstr(argv[2]), &clash) == 0)
        fprintf(stderr, "rtcctl: warning: a user named %s exists: sip:%s@... reaches the user, "
                        "not the group\n", argv[2], argv[2]);
    if (!ctl->json)
        printf("group %s %s\n", argv[2], add ? "added" : "deleted");
    return ok_json(ctl, sub, argv[2]);
}

int rtcctl_cmd_group(struct rtcctl *ctl, int argc, char **argv)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(group_help, stdout);
        return RTCCTL_OK;
    }
    if (argc < 2)
        return gusage("group: expected a subcommand%s", "");
    static const char *const subs[] = {"add", "del", "list", "members"};
    bool known = false;
    for (size_t i = 0; i < 4; i++)
        known |= strcmp(argv[1], subs[i]) == 0;
    if (!known)
        return gusage("group: unknown subcommand '%s'", argv[1]);
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int rc = group_run(ctl, s, argc, argv);
    store_close(s);
    return rc;
}

/* ---- contacts ---- */

static const char contacts_help[] =
    "Usage: rtcctl contacts list USER\n"
    "       rtcctl contacts add USER URI [--display NAME] [--label GROUP-LABEL]\n"
    "       rtcctl contacts del USER URI\n"
    "\n"
    "A user's contact list (buddy list), shared by all the user's devices. URI is a\n"
    "SIP URI (sip:bob@example.com) or a local user name. add replaces an existing entry.\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 done, 1 refused (no such user or entry), 2 usage error.\n";

#define cusage(...) rtcctl_usage_error("contacts ", __VA_ARGS__)

struct clist {
    struct rtcctl_table *t;
    json_t *arr;
};

static int contact_row(void *ctx, const struct store_contact *c)
{
    struct clist *l = ctx;
    if (l->arr) {
        json_array_append_new(l->arr, json_pack("{s:o, s:o, s:o}", "uri", rtcctl_json_str(c->uri),
                                                "display", rtcctl_json_str(c->display), "label",
                                                rtcctl_json_str(c->label)));
        return 0;
    }
    char *u = str_dup(c->uri), *d = str_dup(c->display), *g = str_dup(c->label);
    const char *row[] = {g, u, d};
    if (u && d && g)
        rtcctl_table_add(l->t, row);
    free(u);
    free(d);
    free(g);
    return 0;
}

static int contacts_run(struct rtcctl *ctl, struct store *s, const char *sub, const char *user,
                        const char *uri, const char *display, const char *label)
{
    struct store_user u;
    int rc = store_user_get(s, str_cstr(user), &u);
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such user: %s\n", user);
        return RTCCTL_REFUSED;
    }
    if (rc < 0)
        return rtcctl_refused(s, rc, "user %s", user);
    if (strcmp(sub, "list") == 0) {
        static const char *const hdr[] = {"LABEL", "URI", "DISPLAY"};
        struct clist l = {NULL, NULL};
        if (ctl->json)
            l.arr = json_array();
        else
            l.t = rtcctl_table_new(3, hdr);
        rc = store_contact_list(s, str_cstr(user), contact_row, &l);
        if (rc < 0) {
            json_decref(l.arr);
            rtcctl_table_free(l.t);
            return rtcctl_refused(s, rc, "contacts of %s", user);
        }
        if (l.arr)
            rtcctl_json_print(json_pack("{s:s, s:o}", "user", user, "contacts", l.arr));
        rtcctl_table_print(l.t);
        rtcctl_table_free(l.t);
        return RTCCTL_OK;
    }
    bool add = strcmp(sub, "add") == 0;
    if (add) {
        struct store_contact c = {str_cstr(user), str_cstr(uri), str_cstr(display),
                                  str_cstr(label)};
        rc = store_contact_put(s, &c);
    } else {
        rc = store_contact_del(s, str_cstr(user), str_cstr(uri));
    }
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: %s has no contact %s\n", user, uri);
        return RTCCTL_REFUSED;
    }
    if (rc == -EINVAL)
        return cusage("invalid contact entry (URI up to 512 bytes, display 128, label 64, "
                      "UTF-8 text)%s",
                      "");
    if (rc < 0)
        return rtcctl_refused(s, rc, "contacts of %s", user);
    rtcctl_audit(s, add ? "contact.put" : "contact.del", user, uri);
    if (ctl->json)
        rtcctl_json_print(
            json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "action", sub, "user", user, "uri", uri));
    else
        printf("%s: contact %s %s\n", user, uri, add ? "saved" : "deleted");
    return RTCCTL_OK;
}

int rtcctl_cmd_contacts(struct rtcctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"display", required_argument, NULL, 'd'},
        {"label", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    if (rtcctl_wants_help(argc, argv)) {
        fputs(contacts_help, stdout);
        return RTCCTL_OK;
    }
    const char *display = "", *label = "";
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == 'd')
            display = optarg;
        else if (c == 'l')
            label = optarg;
        else
            return cusage("contacts: unknown or incomplete option%s", "");
    }
    int npos = argc - optind;
    char **pos = argv + optind;
    if (npos < 1)
        return cusage("contacts: expected list, add or del%s", "");
    const char *sub = pos[0];
    bool list = strcmp(sub, "list") == 0;
    if (!list && strcmp(sub, "add") != 0 && strcmp(sub, "del") != 0)
        return cusage("contacts: unknown subcommand '%s'", sub);
    if (npos != (list ? 2 : 3))
        return cusage(list ? "contacts %s: expected USER" : "contacts %s: expected USER URI", sub);
    if ((*display || *label) && strcmp(sub, "add") != 0)
        return cusage("contacts %s: --display and --label go with add", sub);
    if (!store_name_valid(str_cstr(pos[1])))
        return cusage("invalid user name '%s'", pos[1]);
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int rc = contacts_run(ctl, s, sub, pos[1], list ? NULL : pos[2], display, label);
    store_close(s);
    return rc;
}
