/*
 * rtcctl_store — the store commands of rtcctl (user, group, contacts,
 * archive, messages, stats, audit, migrate) and their shared helpers:
 * opening the store, tables, JSON, times, passwords. rtcctl calls the store
 * synchronously (it is a CLI; rtcd's store thread is not involved).
 */
#ifndef RTCD_APP_RTCCTL_STORE_H
#define RTCD_APP_RTCCTL_STORE_H

#include <jansson.h>
#include <stdint.h>

#include "app/rtcctl.h"
#include "store/store.h"

int rtcctl_cmd_user(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_group(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_contacts(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_archive(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_messages(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_stats(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_audit(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_migrate(struct rtcctl *ctl, int argc, char **argv);
/* rtcctl_feat.c */
int rtcctl_cmd_forward(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_dnd(struct rtcctl *ctl, int argc, char **argv);
int rtcctl_cmd_broadcast(struct rtcctl *ctl, int argc, char **argv);

/* Opens the configured store; on failure prints the reason and returns NULL. */
struct store *rtcctl_store_open(struct rtcctl *ctl);
/* Prints "rtcctl: <what>: <reason for rc>" and returns RTCCTL_REFUSED. */
int rtcctl_refused(struct store *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records an administrative change in the audit log (actor "rtcctl:<login>"). */
void rtcctl_audit(struct store *s, const char *action, const char *target, const char *detail);

/* A simple text table: add cells row by row, print aligned. */
struct rtcctl_table;
struct rtcctl_table *rtcctl_table_new(size_t ncols, const char *const *headers);
void rtcctl_table_add(struct rtcctl_table *t, const char *const *cells);
void rtcctl_table_print(struct rtcctl_table *t);
void rtcctl_table_free(struct rtcctl_table *t);

/* Prints a JSON value (steals the reference) followed by a newline. */
void rtcctl_json_print(json_t *v);
/* A JSON string from a slice (invalid UTF-8 gives null). */
json_t *rtcctl_json_str(str s);

/* "2026-11-22T04:00:00Z" from milliseconds since the epoch (out: 32 bytes). */
void rtcctl_time_fmt(int64_t ms, char *out, size_t cap);
/* Parses YYYY-MM-DD[THH:MM[:SS]][Z] (UTC; ' ' works for 'T') or Unix seconds. 0 / -EINVAL. */
int rtcctl_time_parse(const char *text, int64_t *ms_out);

/*
 * The password of a command: --password PW, --password-file F (its first
 * line), else a prompt without echo when stdin is a terminal (asked twice
 * when confirm), else one line read from stdin. 0 or RTCCTL_* exit code
 * (message printed). out has cap bytes.
 */
int rtcctl_password(const char *given, const char *file, const char *user, bool confirm, char *out,
                    size_t cap);

#endif
