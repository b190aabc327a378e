/*
 * log — levels, UTC timestamps, one write(2) per line.
 */
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static _Atomic int log_fd = STDERR_FILENO;
static _Atomic int log_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };
static const char *const level_tags[] = { "DEBUG", "INFO ", "WARN ", "ERROR", "OFF  " };

int log_open(const char *path, enum log_level level)
{
    int fd = STDERR_FILENO;
    if (path && *path && strcmp(path, "-") != 0 && strcmp(path, "stderr") != 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            return -errno;
    }
    int old = atomic_exchange(&log_fd, fd);
    if (old != STDERR_FILENO)
        close(old);
    atomic_store(&log_level, (int)level);
    return 0;
}

void log_close(void)
{
    int old = atomic_exchange(&log_fd, STDERR_FILENO);
    if (old != STDERR_FILENO)
        close(old);
}

void log_set_level(enum log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int log_level_parse(str name, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (str_caseeq(name, str_cstr(level_names[i]))) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (str_caseeq(name, STR("warning"))) {
        *out = LOG_WARN;
        return 0;
    }
    return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
    return level >= LOG_DEBUG && level <= LOG_OFF ? level_names[level] : "?";
}

void log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    if (level < log_get_level() || level >= LOG_OFF)
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000L, level_tags[level], module ? module : "-");
    if (n < 0)
        return;
    size_t head = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + head, sizeof line - head - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = head + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: still one line */
    for (size_t i = head; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    int fd = atomic_load(&log_fd);
    ssize_t w = write(fd, line, len);
    (void)w; /* nowhere to report a failed log write */
}
