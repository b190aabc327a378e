/*
 * log — one line per event: "2026-11-22T04:00:00.123Z INFO  module: text".
 * Each line goes out in one write(2), so lines from several threads never
 * interleave. The logger is the one process-wide object in rtcd (see
 * docs/internals.md): it is set up once by main before any thread starts.
 */
#ifndef RTCD_BASE_LOG_H
#define RTCD_BASE_LOG_H

#include <stdbool.h>

#include "base/str.h"

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
    LOG_OFF,
};

/*
 * Sends the log to path (appended; NULL or "-" or "stderr" = standard error)
 * at the given level. Returns 0 or a negative errno (the previous target is kept).
 */
int log_open(const char *path, enum log_level level);
/* Closes a log file opened by log_open; logging goes back to standard error. */
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
static inline bool log_enabled(enum log_level level)
{
    return level >= log_get_level();
}
/* "debug", "info", "warn"/"warning", "error", "off" → level. 0 or -EINVAL. */
int log_level_parse(str name, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Formats and writes one line (newlines in the text are replaced by spaces). */
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(mod, ...)                                                                     \
    do {                                                                                        \
        if (log_enabled(LOG_DEBUG))                                                             \
            log_write(LOG_DEBUG, mod, __VA_ARGS__);                                             \
    } while (0)
#define log_info(mod, ...) log_write(LOG_INFO, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_write(LOG_WARN, mod, __VA_ARGS__)
#define log_error(mod, ...) log_write(LOG_ERROR, mod, __VA_ARGS__)

#endif
