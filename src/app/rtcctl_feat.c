/*
 * rtcctl forward / dnd — a user's call-forwarding rules and do-not-disturb;
 * rtcctl broadcast — a notice from the system address to every user (or a
 * group's members), queued in the store's outbox for the running rtcd
 * (docs/call-features.md, docs/messaging.md).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/rtcctl_store.h"
#include "base/clock.h"
#include "sip/msg.h"
#include "svc/feat.h"

static const char forward_help[] =
    "Usage: rtcctl forward set USER [--unconditional T] [--busy T] [--no-answer T]\n"
    "                               [--after SECS] [--not-registered T]\n"
    "       rtcctl forward show USER [--json]\n"
    "       rtcctl forward clear USER\n"
    "       rtcctl dnd USER on|off\n"
    "\n"
    "Call forwarding, applied by rtcd to INVITEs for USER (live within a second):\n"
    "  --unconditional T   every call goes to T, USER's phones do not ring\n"
    "  --busy T            when every device of USER answers busy (486/600), or DND is on\n"
    "  --no-answer T       when no device answered after --after SECS (default 20)\n"
    "  --not-registered T  when USER has no registered device\n"
    "T is a SIP URI (sip:bob@example.com, sip:1.2.3.4:5060) or a local user name;\n"
    "an empty T (\"\") turns that rule off. 'set' changes only the rules given.\n"
    "dnd on: calls to USER get 486 Busy Here (or go to the busy target when set).\n"
    "Exit status: 0 done, 1 refused (no such user), 2 usage error.\n";

static const char broadcast_help[] =
    "Usage: rtcctl broadcast [--group G] [--offline-too [--expires SECS]] [--content-type T]\n"
    "                        TEXT\n"
    "\n"
    "Sends TEXT from the system address (server.system_address) to every enabled user\n"
    "(or the members of group G) that has a registered device. With --offline-too,\n"
    "users without a device get it when they next register — unless SECS seconds have\n"
    "passed (--expires: a notice that is stale later). rtcctl queues it in the\n"
    "store's outbox; the running rtcd takes it within a second. Prints how many users\n"
    "it is addressed to.\n"
    "Exit status: 0 queued, 1 refused (no such group, store error), 2 usage error.\n";

#define fusage(...) rtcctl_usage_error("forward ", __VA_ARGS__)
#define busage(...) rtcctl_usage_error("broadcast ", __VA_ARGS__)

/* A target as given: a SIP URI, a local user name (→ sip:NAME@domain), or "" (off). */
static int target_parse(struct rtcctl *ctl, const char *opt, const char *in, char *out,
                        size_t cap)
{
    if (!*in) {
        out[0] = 0;
        return 0;
    }
    if (store_name_valid(str_cstr(in))) {
        char dom[256];
        if (store_realm_from_domain(ctl->cfg.server.domain, dom, sizeof dom) < 0)
            return fusage("server.domain is empty");
        int n = snprintf(out, cap, "sip:%s@%s", in, dom);
        return n > 0 && (size_t)n < cap ? 0 : fusage("%s: too long", opt);
    }
    struct sip_uri u;
    if (strlen(in) >= cap || sip_uri_parse(str_cstr(in), &u) < 0 ||
        (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS) || !u.host.len)
        return fusage("%s: '%s' is neither a sip: URI nor a user name", opt, in);
    memcpy(out, in, strlen(in) + 1);
    return 0;
}

static void show_text(const char *user, const struct store_forward *f)
{
    printf("user:            %s\n", user);
    printf("unconditional:   %s\n", f->unconditional[0] ? f->unconditional : "-");
    printf("busy:            %s\n", f->busy[0] ? f->busy : "-");
    printf("no-answer:       %s", f->no_answer[0] ? f->no_answer : "-");
    if (f->no_answer[0])
        printf(" after %u s", f->no_answer_secs ? f->no_answer_secs : 20);
    printf("\nnot-registered:  %s\n", f->not_registered[0] ? f->not_registered : "-");
    printf("dnd:             %s\n", f->dnd ? "on" : "off");
}

static json_t *show_json(const char *user, const struct store_forward *f)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:b}", "user", user, "unconditional",
                     f->unconditional, "busy", f->busy, "no_answer", f->no_answer,
                     "no_answer_secs", (int)(f->no_answer_secs ? f->no_answer_secs : 20),
                     "not_registered", f->not_registered, "dnd", f->dnd);
}

static int user_check(struct store *s, const char *user)
{
    struct store_user u;
    int rc = store_user_get(s, str_cstr(user), &u);
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such user: %s\n", user);
        return RTCCTL_REFUSED;
    }
    return rc < 0 ? rtcctl_refused(s, rc, "user %s", user) : 0;
}

/* Writes f for user (deletes the row when nothing is on). */
static int save(struct store *s, const char *user, const struct store_forward *f)
{
    bool any = f->unconditional[0] || f->busy[0] || f->no_answer[0] || f->not_registered[0] ||
               f->dnd;
    int rc = any ? store_forward_set(s, str_cstr(user), f) : store_forward_del(s, str_cstr(user));
    return rc == -ENOENT && !any ? 0 : rc;
}

static int forward_set(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"unconditional", required_argument, NULL, 'u'},
        {"busy", required_argument, NULL, 'b'},
        {"no-answer", required_argument, NULL, 'n'},
        {"after", required_argument, NULL, 'a'},
        {"not-registered", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 3 || argv[2][0] == '-')
        return fusage("set: expected USER and at least one rule");
    const char *user = argv[2];
    if (!store_name_valid(str_cstr(user)))
        return fusage("invalid user name '%s'", user);
    int rc = user_check(s, user);
    if (rc)
        return rc;
    struct store_forward f;
    rc = store_forward_get(s, str_cstr(user), &f);
    if (rc < 0 && rc != -ENOENT)
        return rtcctl_refused(s, rc, "forward %s", user);
    int c, given = 0;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc - 2, argv + 2, ":", longopts, NULL)) != -1) {
        char *dst = NULL;
        size_t cap = 0;
        const char *name = "";
        switch (c) {
        case 'u':
            dst = f.unconditional, cap = sizeof f.unconditional, name = "--unconditional";
            break;
        case 'b':
            dst = f.busy, cap = sizeof f.busy, name = "--busy";
            break;
        case 'n':
            dst = f.no_answer, cap = sizeof f.no_answer, name = "--no-answer";
            break;
        case 'r':
            dst = f.not_registered, cap = sizeof f.not_registered, name = "--not-registered";
            break;
        case 'a': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 3600)
                return fusage("--after: seconds from 1 to 3600, not '%s'", optarg);
            f.no_answer_secs = (uint32_t)v;
            given++;
            continue;
        }
        default:
            return fusage("set: unknown or incomplete option");
        }
        rc = target_parse(ctl, name, optarg, dst, cap);
        if (rc)
            return rc;
        given++;
    }
    if (optind != argc - 2)
        return fusage("set: unexpected argument '%s'", argv[2 + optind]);
    if (!given)
        return fusage("set: give at least one rule");
    rc = save(s, user, &f);
    if (rc < 0)
        return rtcctl_refused(s, rc, "forward %s", user);
    char detail[2200];
    snprintf(detail, sizeof detail, "u=%s b=%s n=%s/%u r=%s", f.unconditional, f.busy,
             f.no_answer, f.no_answer_secs, f.not_registered);
    rtcctl_audit(s, "forward.set", user, detail);
    if (ctl->json)
        rtcctl_json_print(show_json(user, &f));
    else
        show_text(user, &f);
    return RTCCTL_OK;
}

static int forward_run(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    const char *sub = argv[1];
    if (strcmp(sub, "set") == 0)
        return forward_set(ctl, s, argc, argv);
    if (argc != 3)
        return fusage("%s: expected one user name", sub);
    const char *user = argv[2];
    if (!store_name_valid(str_cstr(user)))
        return fusage("invalid user name '%s'", user);
    int rc = user_check(s, user);
    if (rc)
        return rc;
    struct store_forward f;
    rc = store_forward_get(s, str_cstr(user), &f);
    if (rc < 0 && rc != -ENOENT)
        return rtcctl_refused(s, rc, "forward %s", user);
    if (strcmp(sub, "show") == 0) {
        if (ctl->json)
            rtcctl_json_print(show_json(user, &f));
        else
            show_text(user, &f);
        return RTCCTL_OK;
    }
    if (strcmp(sub, "clear") != 0)
        return fusage("forward: unknown subcommand '%s'", sub);
    bool dnd = f.dnd;
    memset(&f, 0, sizeof f);
    f.dnd = dnd; /* DND is its own switch */
    rc = save(s, user, &f);
    if (rc < 0)
        return rtcctl_refused(s, rc, "forward %s", user);
    rtcctl_audit(s, "forward.clear", user, "");
    if (ctl->json)
        rtcctl_json_print(show_json(user, &f));
    else
        printf("forwarding of %s cleared\n", user);
    return RTCCTL_OK;
}

int rtcctl_cmd_forward(struct rtcctl *ctl, int argc, char **argv)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(forward_help, stdout);
        return RTCCTL_OK;
    }
    if (argc < 2 || (strcmp(argv[1], "set") && strcmp(argv[1], "show") && strcmp(argv[1], "clear")))
        return fusage("forward: expected set, show or clear");
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int rc = forward_run(ctl, s, argc, argv);
    store_close(s);
    return rc;
}

int rtcctl_cmd_dnd(struct rtcctl *ctl, int argc, char **argv)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(forward_help, stdout);
        return RTCCTL_OK;
    }
    if (argc != 3 || (strcmp(argv[2], "on") && strcmp(argv[2], "off")))
        return rtcctl_usage_error("dnd ", "dnd: expected USER on|off");
    const char *user = argv[1];
    if (!store_name_valid(str_cstr(user)))
        return rtcctl_usage_error("dnd ", "invalid user name '%s'", user);
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int rc = user_check(s, user);
    struct store_forward f;
    if (rc == 0) {
        rc = store_forward_get(s, str_cstr(user), &f);
        if (rc == -ENOENT)
            rc = 0;
        f.dnd = strcmp(argv[2], "on") == 0;
        if (rc == 0)
            rc = save(s, user, &f);
        if (rc < 0) {
            rc = rtcctl_refused(s, rc, "dnd %s", user);
        } else {
            rtcctl_audit(s, f.dnd ? "dnd.on" : "dnd.off", user, "");
            if (ctl->json)
                rtcctl_json_print(show_json(user, &f));
            else
                printf("do-not-disturb for %s: %s\n", user, f.dnd ? "on" : "off");
        }
    }
    store_close(s);
    return rc;
}

/* ---- broadcast ---- */

static int count_member(void *ctx, str n)
{
    (void)n;
    (*(int64_t *)ctx)++;
    return 0;
}

static int count_user(void *ctx, const struct store_user *u)
{
    if (u->enabled)
        (*(int64_t *)ctx)++;
    return 0;
}

static int taken(void *ctx, const struct store_broadcast *b)
{
    *(int64_t *)ctx = b->taken_ms;
    return 0;
}

int rtcctl_cmd_broadcast(struct rtcctl *ctl, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"group", required_argument, NULL, 'g'},
        {"offline-too", no_argument, NULL, 'o'},
        {"content-type", required_argument, NULL, 't'},
        {"no-wait", no_argument, NULL, 'n'},
        {"expires", required_argument, NULL, 'e'},
        {NULL, 0, NULL, 0},
    };
    if (rtcctl_wants_help(argc, argv)) {
        fputs(broadcast_help, stdout);
        return RTCCTL_OK;
    }
    const char *group = "", *ctype = "text/plain";
    bool offline_too = false, wait = true;
    long expires = 0;
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            group = optarg;
            if (!store_name_valid(str_cstr(group)))
                return busage("invalid group name '%s'", group);
            break;
        case 'o':
            offline_too = true;
            break;
        case 't':
            ctype = optarg;
            break;
        case 'n':
            wait = false;
            break;
        case 'e': {
            char *end;
            expires = strtol(optarg, &end, 10);
            if (!*optarg || *end || expires < 1 || expires > 365L * 86400)
                return busage("--expires: seconds from 1 to 31536000, not '%s'", optarg);
            break;
        }
        default:
            return busage("unknown or incomplete option");
        }
    }
    if (optind != argc - 1)
        return busage("expected one TEXT (quote it)");
    if (expires && !offline_too)
        return busage("--expires applies to the stored copies: give --offline-too too");
    const char *text = argv[optind];
    if (!*text)
        return busage("the text is empty");
    char from[700];
    if (feat_system_from(&ctl->cfg, from, sizeof from) < 0)
        return busage("server.system_address is too long");
    struct store *s = rtcctl_store_open(ctl);
    if (!s)
        return RTCCTL_REFUSED;
    int64_t n = 0;
    int rc = *group ? store_group_members(s, str_cstr(group), count_member, &n)
                    : store_user_list(s, count_user, &n);
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such group: %s\n", group);
        store_close(s);
        return RTCCTL_REFUSED;
    }
    struct store_broadcast b = {
        .sender = str_cstr(from),
        .group = str_cstr(group),
        .offline_too = offline_too,
        .content_type = str_cstr(ctype),
        .body = str_cstr(text),
        .expires_ms = expires ? (int64_t)clock_wall_ms() + expires * 1000 : 0,
    };
    int64_t id = 0;
    if (rc == 0)
        rc = store_broadcast_add(s, &b, &id);
    if (rc == -EINVAL) {
        store_close(s);
        return busage("the text or content type is not valid (UTF-8 text, at most 1 MiB)");
    }
    if (rc < 0) {
        rc = rtcctl_refused(s, rc, "broadcast");
        store_close(s);
        return rc;
    }
    char detail[128];
    snprintf(detail, sizeof detail, "id=%lld users=%lld offline_too=%d", (long long)id,
             (long long)n, offline_too);
    rtcctl_audit(s, "broadcast", *group ? group : "*", detail);
    /* say whether a running rtcd took it (it polls every 250 ms) */
    int64_t taken_ms = 0;
    for (int i = 0; wait && i < 30 && !taken_ms; i++) {
        usleep(100 * 1000);
        store_broadcast_get(s, id, taken, &taken_ms);
    }
    if (ctl->json) {
        rtcctl_json_print(json_pack("{s:I, s:I, s:s, s:b, s:b}", "id", (json_int_t)id,
                                    "addressed", (json_int_t)n, "group", group,
                                    "offline_too", offline_too, "taken", taken_ms != 0));
    } else {
        printf("broadcast %lld addressed to %lld user(s)%s%s%s\n", (long long)id, (long long)n,
               *group ? " of group " : "", group,
               offline_too ? " (offline ones get it when they register)" : " (online ones)");
        if (wait)
            printf(taken_ms ? "rtcd took it\n"
                            : "rtcd has not taken it yet: it sends it when it runs\n");
    }
    store_close(s);
    return RTCCTL_OK;
}
