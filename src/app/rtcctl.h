/*
 * rtcctl — shared declarations of the administration tool's commands.
 * Each command group lives in its own rtcctl_*.c and is listed in the table
 * of rtcctl.c.
 */
#ifndef RTCD_APP_RTCCTL_H
#define RTCD_APP_RTCCTL_H

#include <stdbool.h>

#include "base/config.h"

/* Exit codes, a contract for scripts. */
enum {
    RTCCTL_OK = 0,
    RTCCTL_REFUSED = 1, /* the operation was refused (e.g. user exists): one-line reason on stderr */
    RTCCTL_USAGE = 2,   /* bad usage: message and hint on stderr */
};

struct rtcctl {
    struct config cfg;
    bool json; /* --json given anywhere on the line */
};

struct rtcctl_cmd {
    const char *name;
    const char *summary;
    /* argv[0] is the command's name; returns an exit code above. */
    int (*run)(struct rtcctl *ctl, int argc, char **argv);
};

int rtcctl_cmd_config(struct rtcctl *ctl, int argc, char **argv);

/* True when argv holds -h or --help. */
bool rtcctl_wants_help(int argc, char **argv);
/* Prints "rtcctl: <msg>" and the help hint for cmd to stderr; returns RTCCTL_USAGE. */
int rtcctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
