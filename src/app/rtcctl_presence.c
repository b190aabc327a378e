/*
 * rtcctl presence-rule — a user's presence authorization rules: who may see
 * the user's presence (allow), who is refused (block: the SUBSCRIBE gets 403),
 * who sees the user always offline (polite-block), who waits (pending). A
 * running rtcd applies a change to live subscriptions within about a second
 * (docs/presence.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/rtcctl_store.h"

static const char help[] =
    "Usage: rtcctl presence-rule list USER\n"
    "       rtcctl presence-rule set USER WATCHER allow|block|polite-block|pending\n"
    "       rtcctl presence-rule del USER WATCHER\n"
    "\n"
    "Who may see USER's presence. WATCHER is a local user name (bob) or a SIP URI\n"
    "(sip:carol@example.com). Without a rule a watcher gets presence.default_rule\n"
    "(pending until USER decides, or allow); a watcher in USER's contact list is allowed\n"
    "when presence.contacts_allowed is true. A running rtcd applies changes within a second.\n"
    "Options: --json (machine-readable output), --help.\n"
    "Exit status: 0 done, 1 refused (no such user or rule), 2 usage error.\n";

#define pusage(...) rtcctl_usage_error("presence-rule ", __VA_ARGS__)

struct plist {
    struct rtcctl_table *t;
    json_t *arr;
};

static int rule_row(void *ctx, str watcher, enum store_pres_action a)
{
    struct plist *l = ctx;
    const char *an = store_pres_action_name(a);
    if (l->arr) {
        json_array_append_new(l->arr, json_pack("{s:o, s:s}", "watcher", rtcctl_json_str(watcher),
                                                "action", an ? an : "?"));
        return 0;
    }
    char *w = str_dup(watcher);
    const char *row[] = { w, an ? an : "?" };
    if (w)
        rtcctl_table_add(l->t, row);
    free(w);
    return 0;
}

static int run(struct rtcctl *ctl, struct store *s, const char *sub, char **pos)
{
    const char *user = pos[1];
    struct store_user u;
    int rc = store_user_get(s, str_cstr(user), &u);
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such user: %s\n", user);
        return RTCCTL_REFUSED;
    }
    if (rc < 0)
        return rtcctl_refused(s, rc, "user %s", user);
    if (strcmp(sub, "list") == 0) {
        static const char *const hdr[] = { "WATCHER", "ACTION" };
        struct plist l = { NULL, NULL };
        if (ctl->json)
            l.arr = json_array();
        else
            l.t = rtcctl_table_new(2, hdr);
        rc = store_pres_rule_list(s, str_cstr(user), rule_row, &l);
        if (rc < 0) {
            json_decref(l.arr);
            rtcctl_table_free(l.t);
            return rtcctl_refused(s, rc, "presence rules of %s", user);
        }
        if (l.arr)
            rtcctl_json_print(json_pack("{s:s, s:o}", "user", user, "rules", l.arr));
        rtcctl_table_print(l.t);
        rtcctl_table_free(l.t);
        return RTCCTL_OK;
    }
    const char *watcher = pos[2];
    bool set = strcmp(sub, "set") == 0;
    enum store_pres_action a = STORE_PRES_ALLOW;
    if (set && store_pres_action_parse(str_cstr(pos[3]), &a) < 0)
        return pusage("unknown action '%s' (allow, block, polite-block or pending)", pos[3]);
    rc = set ? store_pres_rule_set(s, str_cstr(user), str_cstr(watcher), a)
             : store_pres_rule_del(s, str_cstr(user), str_cstr(watcher));
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: %s has no presence rule for %s\n", user, watcher);
        return RTCCTL_REFUSED;
    }
    if (rc == -EINVAL)
        return pusage("invalid watcher '%s' (a user name or a URI up to 512 bytes)", watcher);
    if (rc < 0)
        return rtcctl_refused(s, rc, "presence rules of %s", user);
    char detail[600];
    snprintf(detail, sizeof detail, "%s=%s", watcher, set ? pos[3] : "(deleted)");
    rtcctl_audit(s, set ? "presence_rule.set" : "presence_rule.del", user, detail);
    if (ctl->json)
        rtcctl_json_print(json_pack("{s:b, s:s, s:s, s:s, s:s}", "ok", 1, "action", sub, "user",
                                    user, "watcher", watcher, "rule", set ? pos[3] : ""));
    else if (set)
        printf("%s: presence rule for %s: %s\n", user, watcher, pos[3]);
    else
        printf("%s: presence rule for %s deleted\n", user, watcher);
    return RTCCTL_OK;
}

int rtcctl_cmd_presence_rule(struct rtcctl *ctl, int argc, char **argv)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RTCCTL_OK;
    }
    int npos = argc - 1;
    char **pos = argv + 1;
    for (int i = 0; i < npos; i++)
        if (pos[i][0] == '-' && pos[i][1] == '-')
            return pusage("unknown option '%s'", pos[i]);
    if (npos < 1)
        return pusage("expected list, set or del%s", "");
    const char *sub = pos[0];
    int want = strcmp(sub, "list") == 0 ? 2 : strcmp(sub, "set") == 0 ? 4
                                            : strcmp(sub, "del") == 0 ? 3 : 0;
    if (!want)
        return pusage("unknown subcommand '%s'", sub);
    if (npos != want)
        return pusage("%s: expected %s", sub,
                      want == 2 ? "USER" : want == 3 ? "USER WATCHER" : "USER WATCHER ACTION");
    if (!store_name_valid(str_cstr(pos[1])))
        return pusage("invalid user name '%s'", pos[1]);
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int rc = run(ctl, s, sub, pos);
    store_close(s);
    return rc;
}
