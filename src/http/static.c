/*
 * http/static — the web client's files from http.web_root. The file system
 * is touched only on libuv's thread pool (never on a worker loop). Paths are
 * %-decoded, then refused when a segment is "..", or starts with '.', and
 * the resolved path (symlinks followed) must stay inside the root.
 * Validators: a strong ETag from size and modification time, and
 * Last-Modified; Cache-Control: no-cache makes browsers revalidate (a cheap
 * 304) so that a new client version is seen at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "http/http_int.h"

#define STATIC_MAX_FILE (64u << 20)

struct sjob {
    uv_work_t req;
    struct http_ctx *x;
    const char *root;
    char rel[HTTP_PATH_MAX + 16];
    /* results */
    uint16_t status;
    const char *why;
    char *data;
    size_t len;
    int64_t mtime_s, mtime_ns;
};

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } t[] = {
        { "html", "text/html; charset=utf-8" },
        { "htm", "text/html; charset=utf-8" },
        { "js", "text/javascript; charset=utf-8" },
        { "mjs", "text/javascript; charset=utf-8" },
        { "css", "text/css; charset=utf-8" },
        { "json", "application/json" },
        { "map", "application/json" },
        { "webmanifest", "application/manifest+json" },
        { "txt", "text/plain; charset=utf-8" },
        { "svg", "image/svg+xml" },
        { "png", "image/png" },
        { "jpg", "image/jpeg" },
        { "jpeg", "image/jpeg" },
        { "gif", "image/gif" },
        { "webp", "image/webp" },
        { "ico", "image/x-icon" },
        { "woff", "font/woff" },
        { "woff2", "font/woff2" },
        { "wasm", "application/wasm" },
        { "mp3", "audio/mpeg" },
        { "ogg", "audio/ogg" },
        { "wav", "audio/wav" },
        { "pdf", "application/pdf" },
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (strcasecmp(dot + 1, t[i].ext) == 0)
                return t[i].type;
    return "application/octet-stream";
}

/* Whether a decoded path may name a file: no "..", no hidden segment, no backslash. */
static bool path_safe(const char *p)
{
    if (p[0] != '/' || strchr(p, '\\'))
        return false;
    for (const char *s = p; *s;) {
        while (*s == '/')
            s++;
        if (*s == '.')
            return false; /* "..", "." and dot files alike */
        while (*s && *s != '/')
            s++;
    }
    return true;
}

/* On the thread pool. */
static void static_work(uv_work_t *req)
{
    struct sjob *j = req->data;
    char full[PATH_MAX], real[PATH_MAX];
    if (!path_safe(j->rel)) {
        j->status = 403;
        j->why = "This path is not served (outside the web root or hidden)";
        return;
    }
    size_t n = strlen(j->rel);
    if (n && j->rel[n - 1] == '/')
        snprintf(j->rel + n, sizeof j->rel - n, "index.html");
    if (snprintf(full, sizeof full, "%s%s", j->root, j->rel) >= (int)sizeof full ||
        !realpath(full, real)) {
        j->status = 404;
        j->why = "No such file";
        return;
    }
    size_t rl = strlen(j->root);
    if (strncmp(real, j->root, rl) != 0 || (real[rl] != '/' && real[rl] != 0)) {
        j->status = 403;
        j->why = "This path is not served (outside the web root or hidden)";
        return;
    }
    struct stat st;
    if (stat(real, &st) < 0) {
        j->status = 404;
        j->why = "No such file";
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        j->status = 301; /* a folder: its index, at the URL with a trailing slash */
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        j->status = 404;
        j->why = "No such file";
        return;
    }
    if ((uint64_t)st.st_size > STATIC_MAX_FILE) {
        j->status = 500;
        j->why = "File too large to serve";
        return;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    j->data = fd >= 0 ? malloc((size_t)st.st_size + 1) : NULL;
    size_t got = 0;
    while (j->data && got < (size_t)st.st_size) {
        ssize_t r = read(fd, j->data + got, (size_t)st.st_size - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    if (!j->data || got != (size_t)st.st_size) {
        free(j->data);
        j->data = NULL;
        j->status = fd < 0 && errno == EACCES ? 403 : 500;
        j->why = "The file cannot be read";
        return;
    }
    j->len = got;
    j->mtime_s = st.st_mtim.tv_sec;
    j->mtime_ns = st.st_mtim.tv_nsec;
    j->status = 200;
}

/* If-Modified-Since (IMF-fixdate) → seconds, or -1. */
static int64_t http_date_parse(str v)
{
    char b[64];
    if (str_copy(b, sizeof b, v) < 0)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *e = strptime(b, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e || *e)
        return -1;
    return (int64_t)timegm(&tm);
}

static bool etag_matches(str inm, const char *etag)
{
    if (str_eq(str_trim(inm), STR("*")))
        return true;
    while (inm.len) {
        ssize_t c = str_find_char(inm, ',');
        str t = str_trim(c < 0 ? inm : str_sub(inm, 0, (size_t)c));
        if (str_has_prefix(t, STR("W/")))
            t = str_skip(t, 2); /* weak comparison (RFC 7232 §3.2) */
        if (str_eq(t, str_cstr(etag)))
            return true;
        inm = c < 0 ? STR_NULL : str_skip(inm, (size_t)c + 1);
    }
    return false;
}

/* Back on the worker. */
static void static_done(uv_work_t *req, int status)
{
    struct sjob *j = req->data;
    struct http_ctx *x = j->x;
    if (status < 0) {
        http_reply_error(x, 503, "Server stopping");
    } else if (j->status == 301) {
        char loc[HTTP_PATH_MAX + 8];
        snprintf(loc, sizeof loc, "%.*s/", (int)http_ctx_path(x).len, http_ctx_path(x).s);
        http_ctx_add_header(x, "Location", loc);
        http_reply_error(x, 301, "This is a folder: %s", loc);
    } else if (j->status != 200) {
        http_reply_error(x, j->status, "%s", j->why);
    } else {
        char etag[64], lm[64];
        snprintf(etag, sizeof etag, "\"%llx-%llx%08llx\"", (unsigned long long)j->len,
                 (unsigned long long)j->mtime_s, (unsigned long long)j->mtime_ns);
        time_t t = (time_t)j->mtime_s;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(lm, sizeof lm, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        http_ctx_add_header(x, "ETag", etag);
        http_ctx_add_header(x, "Last-Modified", lm);
        http_ctx_add_header(x, "Cache-Control", "no-cache");
        http_ctx_add_header(x, "X-Content-Type-Options", "nosniff");
        str inm = http_ctx_header(x, "If-None-Match");
        str ims = http_ctx_header(x, "If-Modified-Since");
        bool fresh = inm.s ? etag_matches(inm, etag)
                           : ims.s && http_date_parse(ims) >= j->mtime_s;
        if (fresh)
            http_reply(x, 304, NULL, NULL, 0);
        else
            http_reply(x, 200, content_type(j->rel), j->data, j->len);
    }
    free(j->data);
    free(j);
}

void http__static(struct http_ctx *x, void *arg)
{
    (void)arg;
    struct sjob *j = calloc(1, sizeof *j);
    if (!j) {
        http_reply_error(x, 503, "Out of memory");
        return;
    }
    j->x = x;
    j->root = http_ctx_server(x)->web_root;
    str p = http_ctx_path(x);
    if (str_copy(j->rel, sizeof j->rel - 16, p) < 0) {
        free(j);
        http_reply_error(x, 414, "Path too long");
        return;
    }
    j->req.data = j;
    if (uv_queue_work(worker_loop(http_ctx_worker(x)), &j->req, static_work, static_done) < 0) {
        free(j);
        http_reply_error(x, 503, "Cannot read files now");
    }
}
