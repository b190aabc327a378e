/*
 * rtcctl — administration of rtcd: users, groups, policies, archive search,
 * live stats. Reads the same configuration as rtcd (-c, --set) and works on
 * the same store, safely beside a running server.
 */
#include "app/rtcctl.h"
#include "app/rtcctl_store.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 256

static const struct rtcctl_cmd commands[] = {
    { "config", "check or show the effective configuration", rtcctl_cmd_config },
    { "user", "users: add, import, del, list, show, passwd, enable, disable", rtcctl_cmd_user },
    { "group", "groups and their members", rtcctl_cmd_group },
    { "contacts", "a user's contact list: list, add, del", rtcctl_cmd_contacts },
    { "archive", "search the message archive", rtcctl_cmd_archive },
    { "messages", "offline messages waiting for delivery", rtcctl_cmd_messages },
    { "stats", "what the store holds", rtcctl_cmd_stats },
    { "audit", "the log of administrative changes", rtcctl_cmd_audit },
    { "migrate", "copy the store to PostgreSQL (--to postgresql://...)", rtcctl_cmd_migrate },
    { "forward", "a user's call forwarding: set, show, clear", rtcctl_cmd_forward },
    { "dnd", "a user's do-not-disturb: USER on|off", rtcctl_cmd_dnd },
    { "broadcast", "send a notice to every user or a group's members", rtcctl_cmd_broadcast },
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    fputs("Usage: rtcctl [-c FILE] [--set SECTION.KEY=VALUE]... [--json] COMMAND [ARGS]\n"
          "       rtcctl COMMAND --help\n"
          "\n"
          "Administration of rtcd. Options:\n"
          "  -c, --config FILE   the server's configuration file (default: embedded defaults)\n"
          "  -s, --set S.K=V     override one configuration key (repeatable)\n"
          "      --json          machine-readable output\n"
          "  -V, --version       print the version and exit\n"
          "  -h, --help          print this help and exit\n"
          "\n"
          "Commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fputs("\nExit status: 0 success, 1 operation refused, 2 usage error.\n", f);
}

bool rtcctl_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

int rtcctl_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("rtcctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'rtcctl %s--help'.\n", cmd ? cmd : "");
    return RTCCTL_USAGE;
}

int rtcctl_cmd_config(struct rtcctl *ctl, int argc, char **argv)
{
    static const char help[] = "Usage: rtcctl config check|show\n"
                               "  check   validate the configuration (exit 0 valid, 2 not)\n"
                               "  show    print the effective configuration as INI\n";
    if (rtcctl_wants_help(argc, argv)) {
        fputs(help, stdout);
        return RTCCTL_OK;
    }
    if (argc != 2)
        return rtcctl_usage_error("config ", "config: expected check or show");
    if (strcmp(argv[1], "check") == 0) {
        printf("configuration is valid\n");
        return RTCCTL_OK;
    }
    if (strcmp(argv[1], "show") == 0) {
        struct buf b;
        buf_init(&b, 0);
        int rc = config_dump(&ctl->cfg, &b);
        if (rc == 0)
            fwrite(b.data, 1, b.len, stdout);
        buf_free(&b);
        return rc == 0 ? RTCCTL_OK : RTCCTL_REFUSED;
    }
    return rtcctl_usage_error("config ", "config: unknown subcommand '%s'", argv[1]);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "set", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *path = NULL;
    const char *sets[MAX_SETS];
    size_t nsets = 0;
    bool json = false;
    int c;
    /* '+': stop at the command name; what follows belongs to the command. */
    while ((c = getopt_long(argc, argv, "+c:s:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 's':
            if (nsets >= MAX_SETS)
                return rtcctl_usage_error(NULL, "too many --set options");
            sets[nsets++] = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'V':
            printf("rtcctl %s\n", RTCD_VERSION);
            return RTCCTL_OK;
        case 'h':
            print_usage(stdout);
            return RTCCTL_OK;
        default:
            fputs("Try 'rtcctl --help'.\n", stderr);
            return RTCCTL_USAGE;
        }
    }
    if (optind >= argc) {
        print_usage(stderr);
        return RTCCTL_USAGE;
    }
    const struct rtcctl_cmd *cmd = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, argv[optind]) == 0)
            cmd = &commands[i];
    if (!cmd)
        return rtcctl_usage_error(NULL, "unknown command '%s'", argv[optind]);

    /* --json is accepted after the command too: drop it from the command's argv. */
    int cargc = 0;
    char **cargv = argv + optind;
    for (int i = 0; i < argc - optind; i++) {
        if (strcmp(cargv[i], "--json") == 0)
            json = true;
        else
            cargv[cargc++] = cargv[i];
    }
    struct rtcctl ctl = { .json = json };
    char err[768];
    if (config_load(&ctl.cfg, path, sets, nsets, err, sizeof err) < 0) {
        fprintf(stderr, "rtcctl: %s\n", err);
        return RTCCTL_USAGE;
    }
    int rc = cmd->run(&ctl, cargc, cargv);
    config_free(&ctl.cfg);
    return rc;
}
