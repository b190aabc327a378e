/*
 * rtcctl_util — helpers shared by the store commands: opening the store,
 * refusal messages, audit entries, tables, JSON, times and passwords.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "app/rtcctl_store.h"
#include "base/log.h"

struct store *rtcctl_store_open(struct rtcctl *ctl)
{
    /* migrations log at info level; rtcctl keeps its output for the answer */
    log_set_level(LOG_WARN);
    struct store *s = NULL;
    char err[768];
    int rc = store_open_config(&s, &ctl->cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "rtcctl: cannot open the store: %s\n", err);
        return NULL;
    }
    return s;
}

int rtcctl_refused(struct store *s, int rc, const char *fmt, ...)
{
    va_list ap;
    fputs("rtcctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    const char *why;
    switch (rc) {
    case -EEXIST:
        why = "already exists";
        break;
    case -ENOENT:
        why = "not found";
        break;
    case -EINVAL:
        why = "invalid value";
        break;
    case -EDQUOT:
        why = "mailbox full";
        break;
    case -EBUSY:
        why = "the database is busy (locked too long); try again";
        break;
    case -ENOTEMPTY:
        why = "the target store is not empty";
        break;
    case -EIO:
        why = s ? store_errmsg(s) : "database error";
        break;
    default:
        why = strerror(-rc);
        break;
    }
    fprintf(stderr, ": %s\n", why);
    return RTCCTL_REFUSED;
}

void rtcctl_audit(struct store *s, const char *action, const char *target, const char *detail)
{
    char actor[128];
    const char *login = getenv("SUDO_USER");
    if (!login || !*login) {
        struct passwd *pw = getpwuid(getuid());
        login = pw ? pw->pw_name : "?";
    }
    snprintf(actor, sizeof actor, "rtcctl:%s", login);
    int rc = store_audit_add(s, str_cstr(actor), str_cstr(action), str_cstr(target),
                             str_cstr(detail ? detail : ""));
    if (rc < 0)
        fprintf(stderr, "rtcctl: warning: audit log not written: %s\n",
                rc == -EIO ? store_errmsg(s) : strerror(-rc));
}

/* ---- tables ---- */

struct rtcctl_table {
    size_t ncols, nrows, cap;
    char **cells; /* nrows * ncols, row 0 = headers */
};

struct rtcctl_table *rtcctl_table_new(size_t ncols, const char *const *headers)
{
    struct rtcctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    rtcctl_table_add(t, headers);
    return t;
}

void rtcctl_table_add(struct rtcctl_table *t, const char *const *cells)
{
    if (!t)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **c = realloc(t->cells, cap * t->ncols * sizeof *c);
        if (!c)
            return;
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        const char *v = cells[i] ? cells[i] : "";
        char *copy = strdup(v);
        /* one line per row: control bytes shown as spaces */
        for (char *p = copy; p && *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
        t->cells[t->nrows * t->ncols + i] = copy;
    }
    t->nrows++;
}

/* Display width of UTF-8 text (code points; good enough for names). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; s && *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

void rtcctl_table_print(struct rtcctl_table *t)
{
    if (!t)
        return;
    size_t w[16] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && c < 16; c++) {
            size_t x = width(t->cells[r * t->ncols + c]);
            if (x > w[c])
                w[c] = x;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *v = t->cells[r * t->ncols + c];
            fputs(v ? v : "", stdout);
            if (c + 1 < t->ncols)
                printf("%*s", (int)(w[c] - width(v) + 2), "");
        }
        putchar('\n');
    }
}

void rtcctl_table_free(struct rtcctl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* ---- JSON ---- */

void rtcctl_json_print(json_t *v)
{
    if (!v) {
        fprintf(stderr, "rtcctl: out of memory\n");
        return;
    }
    json_dumpf(v, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(v);
}

json_t *rtcctl_json_str(str s)
{
    json_t *v = json_stringn(s.s ? s.s : "", s.len);
    return v ? v : json_null();
}

/* ---- times ---- */

void rtcctl_time_fmt(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, cap, "%lld", (long long)ms);
}

int rtcctl_time_parse(const char *text, int64_t *ms_out)
{
    str s = str_trim(str_cstr(text));
    uint64_t secs;
    if (s.len && str_to_u64(s, &secs) == 0) {
        if (secs > 253402300799ull) /* year 9999 */
            return -EINVAL;
        *ms_out = (int64_t)secs * 1000;
        return 0;
    }
    char buf[32];
    if (str_copy(buf, sizeof buf, s) < 0)
        return -EINVAL;
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    size_t len = strlen(buf);
    if (len && buf[len - 1] == 'Z')
        buf[--len] = 0;
    if (sscanf(buf, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -EINVAL;
    if (len > 10) {
        int n2 = 0;
        if ((buf[10] != 'T' && buf[10] != ' ') ||
            (sscanf(buf + 11, "%2d:%2d%n", &h, &mi, &n2) != 2 || n2 != 5))
            return -EINVAL;
        if (len > 16) {
            int n3 = 0;
            if (sscanf(buf + 16, ":%2d%n", &se, &n3) != 1 || n3 != 3 || len != 19)
                return -EINVAL;
        } else if (len != 16) {
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789-:T ", buf[i]))
            return -EINVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1) /* 2026-02-31 */
        return -EINVAL;
    *ms_out = (int64_t)t * 1000;
    return 0;
}

/* ---- passwords ---- */

static int read_line(FILE *f, char *out, size_t cap)
{
    if (!fgets(out, (int)cap, f))
        return -EIO;
    size_t l = strlen(out);
    if (l == cap - 1 && out[l - 1] != '\n')
        return -E2BIG;
    while (l && (out[l - 1] == '\n' || out[l - 1] == '\r'))
        out[--l] = 0;
    return 0;
}

static int prompt_noecho(const char *prompt, char *out, size_t cap)
{
    struct termios old, quiet;
    if (tcgetattr(STDIN_FILENO, &old) < 0)
        return -errno;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    /* echo off before the prompt appears, and without discarding what is typed (TCSANOW):
     * a fast typist or a script answering the prompt loses nothing */
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    fputs(prompt, stderr);
    fflush(stderr);
    int rc = read_line(stdin, out, cap);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    return rc;
}

int rtcctl_password(const char *given, const char *file, const char *user, bool confirm, char *out,
                    size_t cap)
{
    if (given && file)
        return rtcctl_usage_error(NULL, "give --password or --password-file, not both");
    if (given) {
        if (str_copy(out, cap, str_cstr(given)) < 0) {
            fprintf(stderr, "rtcctl: the password is too long (at most %d bytes)\n",
                    STORE_PASSWORD_MAX);
            return RTCCTL_USAGE;
        }
        return 0;
    }
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f) {
            fprintf(stderr, "rtcctl: --password-file %s: %s\n", file, strerror(errno));
            return RTCCTL_REFUSED;
        }
        int rc = read_line(f, out, cap);
        fclose(f);
        if (rc < 0) {
            fprintf(stderr, "rtcctl: --password-file %s: %s\n", file,
                    rc == -E2BIG ? "the password is too long" : "empty file");
            return RTCCTL_REFUSED;
        }
        return 0;
    }
    if (isatty(STDIN_FILENO)) {
        char prompt[128], again[STORE_PASSWORD_MAX + 2];
        snprintf(prompt, sizeof prompt, "Password for %s: ", user);
        if (prompt_noecho(prompt, out, cap) < 0)
            return rtcctl_usage_error(NULL, "no password given");
        if (confirm) {
            if (prompt_noecho("Retype the password: ", again, sizeof again) < 0 ||
                strcmp(again, out) != 0) {
                fprintf(stderr, "rtcctl: the passwords do not match\n");
                return RTCCTL_REFUSED;
            }
        }
        return 0;
    }
    int rc = read_line(stdin, out, cap);
    if (rc < 0) {
        fprintf(stderr, "rtcctl: %s\n",
                rc == -E2BIG ? "the password is too long" : "no password on standard input");
        return RTCCTL_USAGE;
    }
    return 0;
}
