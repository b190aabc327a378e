/*
 * rtcctl app — applications of the HTTP API (notification senders, bots,
 * channel publishers) and their keys; rtcctl channel — channels and who may
 * subscribe to / publish on them. docs/apps.md says what each field means.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/rtcctl_store.h"

static const char app_help[] =
    "Usage: rtcctl app add NAME --scopes notify,bot,channels [--address sip:NAME@DOMAIN]\n"
    "                           [--webhook URL] [--rate N]\n"
    "       rtcctl app list [--json]\n"
    "       rtcctl app show NAME [--json]\n"
    "       rtcctl app del NAME\n"
    "       rtcctl app rotate NAME\n"
    "\n"
    "Apps use the HTTP API with a key (Authorization: Bearer KEY). add and rotate print\n"
    "the key once, alone on the last line; only its SHA-256 is stored (rotate makes the\n"
    "old key invalid at once). Scopes: notify (POST /api/v1/notify), bot (receive the\n"
    "MESSAGEs sent to --address, by --webhook or /api/v1/bot/ws), channels (publish and\n"
    "subscribe). --rate: API requests a minute (default 600, 0 = no bound).\n"
    "Exit status: 0 done, 1 refused (exists, not found, address taken), 2 usage error.\n";

static const char chan_help[] =
    "Usage: rtcctl channel add NAME [--subscribe RULES] [--publish RULES]\n"
    "       rtcctl channel list [--json]\n"
    "       rtcctl channel del NAME\n"
    "\n"
    "RULES: comma-separated any of users (every authenticated user), apps (every app\n"
    "with the channels scope), group:G (members of group G), user:U, app:A, any\n"
    "(anyone, even unauthenticated). Defaults: --subscribe users,apps --publish apps.\n"
    "add on an existing channel replaces its rules.\n";

#define ausage(...) rtcctl_usage_error("app ", __VA_ARGS__)
#define cusage(...) rtcctl_usage_error("channel ", __VA_ARGS__)

static int name_arg(int argc, char **argv, const char **name)
{
    if (optind != argc - 1)
        return ausage("%s: expected one app name", argv[0]);
    *name = argv[optind];
    if (!store_name_valid(str_cstr(*name)))
        return ausage("invalid name '%s' (1-64 of A-Z a-z 0-9 - _ . ! ~ * ' +)", *name);
    return 0;
}

static void print_key(struct rtcctl *ctl, const char *name, const char *action, const char *key)
{
    if (ctl->json) {
        rtcctl_json_print(
            json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "action", action, "app", name, "key", key));
        return;
    }
    printf("app %s: %s\n", name, action);
    printf("the key below is shown once; keep it (rtcctl app rotate %s makes a new one)\n", name);
    printf("%s\n", key);
}

static int cmd_add(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"scopes", required_argument, NULL, 's'},
        {"address", required_argument, NULL, 'a'},
        {"webhook", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    struct store_app a;
    memset(&a, 0, sizeof a);
    a.rate_per_min = 600;
    const char *scopes = NULL, *addr = "", *hook = "";
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            scopes = optarg;
            break;
        case 'a':
            addr = optarg;
            break;
        case 'w':
            hook = optarg;
            break;
        case 'r':
            if (str_to_u32(str_cstr(optarg), &a.rate_per_min) < 0 || a.rate_per_min > 1000000)
                return ausage("--rate: expected 0..1000000 requests a minute, not '%s'", optarg);
            break;
        default:
            return ausage("%s: unknown or incomplete option", argv[0]);
        }
    }
    const char *name = NULL;
    int rc = name_arg(argc, argv, &name);
    if (rc)
        return rc;
    if (!scopes)
        return ausage("add: --scopes is required (notify, bot, channels)%s", "");
    if (!store_app_scopes_valid(str_cstr(scopes)))
        return ausage("--scopes: '%s' is not a list of notify, bot, channels", scopes);
    if (strstr(scopes, "bot") && !*addr)
        return ausage("the bot scope needs --address sip:%s@DOMAIN", name);
    if (str_copy(a.name, sizeof a.name, str_cstr(name)) < 0 ||
        str_copy(a.scopes, sizeof a.scopes, str_cstr(scopes)) < 0 ||
        str_copy(a.address, sizeof a.address, str_cstr(addr)) < 0 ||
        str_copy(a.webhook, sizeof a.webhook, str_cstr(hook)) < 0)
        return ausage("add: a value is too long%s", "");
    char key[STORE_APP_KEY_LEN + 1];
    rc = store_app_add(s, &a, key);
    if (rc == -EINVAL)
        return ausage("add: invalid --address (sip:USER@DOMAIN) or --webhook (http[s]://...)%s",
                      "");
    if (rc == -EEXIST) {
        fprintf(stderr, "rtcctl: app %s or address %s already exists\n", name, addr);
        return RTCCTL_REFUSED;
    }
    if (rc < 0)
        return rtcctl_refused(s, rc, "app add %s", name);
    char detail[256];
    snprintf(detail, sizeof detail, "scopes=%s address=%s", scopes, addr);
    rtcctl_audit(s, "app.add", name, detail);
    print_key(ctl, name, "added", key);
    return RTCCTL_OK;
}

static json_t *app_json(const struct store_app *a)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "name", a->name, "scopes", a->scopes,
                     "address", a->address, "webhook", a->webhook, "rate_per_min",
                     (json_int_t)a->rate_per_min, "created_ms", (json_int_t)a->created_ms,
                     "updated_ms", (json_int_t)a->updated_ms);
}

struct list_ctx {
    struct rtcctl_table *t;
    json_t *arr;
};

static int list_app(void *ctx, const struct store_app *a)
{
    struct list_ctx *c = ctx;
    if (c->arr) {
        json_array_append_new(c->arr, app_json(a));
        return 0;
    }
    char rate[24];
    snprintf(rate, sizeof rate, "%u", a->rate_per_min);
    const char *row[] = {a->name, a->scopes, a->address[0] ? a->address : "-",
                         a->webhook[0] ? a->webhook : "-", rate};
    rtcctl_table_add(c->t, row);
    return 0;
}

static int cmd_list(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    if (argc != 1)
        return ausage("%s: takes no arguments", argv[0]);
    static const char *const hdr[] = {"NAME", "SCOPES", "ADDRESS", "WEBHOOK", "RATE/MIN"};
    struct list_ctx c = {NULL, NULL};
    if (ctl->json)
        c.arr = json_array();
    else
        c.t = rtcctl_table_new(5, hdr);
    int rc = store_app_list(s, list_app, &c);
    if (rc < 0) {
        json_decref(c.arr);
        rtcctl_table_free(c.t);
        return rtcctl_refused(s, rc, "app list");
    }
    if (ctl->json)
        rtcctl_json_print(c.arr);
    else
        rtcctl_table_print(c.t);
    rtcctl_table_free(c.t);
    return RTCCTL_OK;
}

static int no_app(const char *name)
{
    fprintf(stderr, "rtcctl: no such app: %s\n", name);
    return RTCCTL_REFUSED;
}

static int cmd_show(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    optind = 1;
    const char *name = NULL;
    int rc = name_arg(argc, argv, &name);
    if (rc)
        return rc;
    struct store_app a;
    rc = store_app_get(s, str_cstr(name), &a);
    if (rc == -ENOENT)
        return no_app(name);
    if (rc < 0)
        return rtcctl_refused(s, rc, "app %s", name);
    if (ctl->json) {
        rtcctl_json_print(app_json(&a));
        return RTCCTL_OK;
    }
    char cr[32];
    rtcctl_time_fmt(a.created_ms, cr, sizeof cr);
    printf("name:     %s\nscopes:   %s\naddress:  %s\nwebhook:  %s\nrate:     %u/min\n"
           "created:  %s\n",
           a.name, a.scopes, a.address, a.webhook, a.rate_per_min, cr);
    return RTCCTL_OK;
}

static int cmd_del(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    optind = 1;
    const char *name = NULL;
    int rc = name_arg(argc, argv, &name);
    if (rc)
        return rc;
    rc = store_app_del(s, str_cstr(name));
    if (rc == -ENOENT)
        return no_app(name);
    if (rc < 0)
        return rtcctl_refused(s, rc, "app del %s", name);
    rtcctl_audit(s, "app.del", name, "");
    if (ctl->json)
        rtcctl_json_print(json_pack("{s:b, s:s, s:s}", "ok", 1, "action", "deleted", "app", name));
    return RTCCTL_OK;
}

static int cmd_rotate(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    optind = 1;
    const char *name = NULL;
    int rc = name_arg(argc, argv, &name);
    if (rc)
        return rc;
    char key[STORE_APP_KEY_LEN + 1];
    rc = store_app_rotate(s, str_cstr(name), key);
    if (rc == -ENOENT)
        return no_app(name);
    if (rc < 0)
        return rtcctl_refused(s, rc, "app rotate %s", name);
    rtcctl_audit(s, "app.rotate", name, "");
    print_key(ctl, name, "key rotated", key);
    return RTCCTL_OK;
}

typedef int (*sub_fn)(struct rtcctl *, struct store *, int, char **);

static int dispatch(struct rtcctl *ctl, int argc, char **argv, const char *help,
                    const char *const *names, const sub_fn *fns, size_t n, const char *cmd)
{
    if (rtcctl_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RTCCTL_OK;
    }
    if (argc < 2)
        return rtcctl_usage_error(cmd, "%s: expected a subcommand", argv[0]);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(argv[1], names[i]) != 0)
            continue;
        struct store *s = rtcctl_store_open(ctl);
        if (!s)
            return RTCCTL_REFUSED;
        int rc = fns[i](ctl, s, argc - 1, argv + 1);
        store_close(s);
        return rc;
    }
    return rtcctl_usage_error(cmd, "%s: unknown subcommand '%s'", argv[0], argv[1]);
}

/* rtcctl app ...: exit code per enum in rtcctl.h. Blocks on the store. */
int rtcctl_cmd_app(struct rtcctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"add", "list", "show", "del", "rotate"};
    static const sub_fn fns[] = {cmd_add, cmd_list, cmd_show, cmd_del, cmd_rotate};
    return dispatch(ctl, argc, argv, app_help, names, fns, 5, "app ");
}

/* ---- channels ---- */

static int ch_add(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subscribe", required_argument, NULL, 's'},
        {"publish", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *sub = "users,apps", *pub = "apps";
    int c;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == 's')
            sub = optarg;
        else if (c == 'p')
            pub = optarg;
        else
            return cusage("%s: unknown or incomplete option", argv[0]);
    }
    if (optind != argc - 1 || !store_name_valid(str_cstr(argv[optind])))
        return cusage("add: expected one channel name (1-64 of A-Z a-z 0-9 - _ . ! ~ * ' +)%s", "");
    const char *name = argv[optind];
    if (!store_channel_rule_valid(str_cstr(sub)) || !store_channel_rule_valid(str_cstr(pub)))
        return cusage("add: rules are comma lists of users, apps, any, group:G, user:U, app:A%s",
                      "");
    struct store_channel ch;
    memset(&ch, 0, sizeof ch);
    snprintf(ch.name, sizeof ch.name, "%s", name);
    snprintf(ch.subscribe, sizeof ch.subscribe, "%s", sub);
    snprintf(ch.publish, sizeof ch.publish, "%s", pub);
    int rc = store_channel_put(s, &ch);
    if (rc < 0)
        return rtcctl_refused(s, rc, "channel add %s", name);
    char detail[400];
    snprintf(detail, sizeof detail, "subscribe=%s publish=%s", sub, pub);
    rtcctl_audit(s, "channel.add", name, detail);
    if (ctl->json)
        rtcctl_json_print(
            json_pack("{s:b, s:s, s:s}", "ok", 1, "action", "added", "channel", name));
    return RTCCTL_OK;
}

static int list_chan(void *ctx, const struct store_channel *ch)
{
    struct list_ctx *c = ctx;
    if (c->arr) {
        json_array_append_new(c->arr, json_pack("{s:s, s:s, s:s}", "name", ch->name, "subscribe",
                                                ch->subscribe, "publish", ch->publish));
        return 0;
    }
    const char *row[] = {ch->name, ch->subscribe, ch->publish};
    rtcctl_table_add(c->t, row);
    return 0;
}

static int ch_list(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    if (argc != 1)
        return cusage("%s: takes no arguments", argv[0]);
    static const char *const hdr[] = {"NAME", "SUBSCRIBE", "PUBLISH"};
    struct list_ctx c = {NULL, NULL};
    if (ctl->json)
        c.arr = json_array();
    else
        c.t = rtcctl_table_new(3, hdr);
    int rc = store_channel_list(s, list_chan, &c);
    if (rc < 0) {
        json_decref(c.arr);
        rtcctl_table_free(c.t);
        return rtcctl_refused(s, rc, "channel list");
    }
    if (ctl->json)
        rtcctl_json_print(c.arr);
    else
        rtcctl_table_print(c.t);
    rtcctl_table_free(c.t);
    return RTCCTL_OK;
}

static int ch_del(struct rtcctl *ctl, struct store *s, int argc, char **argv)
{
    (void)ctl;
    if (argc != 2)
        return cusage("del: expected one channel name%s", "");
    int rc = store_channel_del(s, str_cstr(argv[1]));
    if (rc == -ENOENT) {
        fprintf(stderr, "rtcctl: no such channel: %s\n", argv[1]);
        return RTCCTL_REFUSED;
    }
    if (rc < 0)
        return rtcctl_refused(s, rc, "channel del %s", argv[1]);
    rtcctl_audit(s, "channel.del", argv[1], "");
    return RTCCTL_OK;
}

/* rtcctl channel ...: exit code per enum in rtcctl.h. Blocks on the store. */
int rtcctl_cmd_channel(struct rtcctl *ctl, int argc, char **argv)
{
    static const char *const names[] = {"add", "list", "del"};
    static const sub_fn fns[] = {ch_add, ch_list, ch_del};
    return dispatch(ctl, argc, argv, chan_help, names, fns, 3, "channel ");
}
