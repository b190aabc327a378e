/*
 * http/server — HTTP/1.1 connections on net flows: reading request heads and
 * bodies under limits and deadlines, keep-alive and pipelining (one request
 * at a time per connection, in order), routing, the response writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/random.h"
#include "core/throttle.h"
#include "http/http_int.h"

#define TICK_MS 500

#define CNT(hs, f) atomic_fetch_add_explicit(&(hs)->c.f, 1, memory_order_relaxed)

uint64_t http__now(struct http_worker *hw)
{
    return uv_now(worker_loop(hw->w));
}

/* ---- routes ---- */

static unsigned method_bits(const char *methods)
{
    static const char *const names[] = { "", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                         "PATCH" };
    unsigned bits = 0;
    str l = str_cstr(methods);
    while (l.len) {
        ssize_t c = str_find_char(l, ',');
        str m = str_trim(c < 0 ? l : str_sub(l, 0, (size_t)c));
        unsigned b = 0;
        for (unsigned i = 1; i < sizeof names / sizeof names[0]; i++)
            if (str_eq(m, str_cstr(names[i])))
                b = 1u << i;
        if (!b)
            return 0;
        bits |= b;
        l = c < 0 ? STR_NULL : str_skip(l, (size_t)c + 1);
    }
    if (bits & (1u << HTTP_GET))
        bits |= 1u << HTTP_HEAD;
    return bits;
}

int http_route_add(struct http_server *hs, const char *methods, const char *path, unsigned flags,
                   http_handler_fn fn, void *arg)
{
    unsigned bits = methods ? method_bits(methods) : 0;
    if (!bits || !path || path[0] != '/' || !fn || strlen(path) >= HTTP_PATH_MAX)
        return -EINVAL;
    for (size_t i = 0; i < hs->nroutes; i++)
        if (strcmp(hs->routes[i].path, path) == 0 && hs->routes[i].flags == flags &&
            (hs->routes[i].methods & bits))
            return -EEXIST;
    if (hs->nroutes >= HTTP_MAX_ROUTES)
        return -ENOSPC;
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    hs->routes[hs->nroutes++] = (struct route){ p, strlen(p), bits, flags, fn, arg };
    return 0;
}

static bool route_matches(const struct route *r, str path)
{
    if (r->flags & HTTP_ROUTE_PREFIX) {
        if (path.len < r->plen || memcmp(path.s, r->path, r->plen) != 0)
            return false;
        return path.len == r->plen || r->path[r->plen - 1] == '/' || path.s[r->plen] == '/';
    }
    return path.len == r->plen && memcmp(path.s, r->path, r->plen) == 0;
}

/* The best route for path and method; *allow gets the methods of every matching route. */
static const struct route *route_find(struct http_server *hs, str path, enum http_method m,
                                      unsigned *allow)
{
    const struct route *best = NULL;
    size_t best_len = 0;
    bool best_exact = false;
    *allow = 0;
    /* the longest matching path decides which routes count (then by method) */
    size_t top = 0;
    for (size_t i = 0; i < hs->nroutes; i++)
        if (route_matches(&hs->routes[i], path) && hs->routes[i].plen > top)
            top = hs->routes[i].plen;
    for (size_t i = 0; i < hs->nroutes; i++) {
        const struct route *r = &hs->routes[i];
        if (r->plen != top || !route_matches(r, path))
            continue;
        *allow |= r->methods;
        bool exact = !(r->flags & HTTP_ROUTE_PREFIX);
        if (!(r->methods & (1u << m)))
            continue;
        if (!best || (exact && !best_exact) || r->plen > best_len) {
            best = r;
            best_len = r->plen;
            best_exact = exact;
        }
    }
    return best;
}

static void allow_text(unsigned bits, char *out, size_t cap)
{
    static const char *const names[] = { "", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                         "PATCH" };
    size_t o = 0;
    out[0] = 0;
    for (unsigned i = 1; i < sizeof names / sizeof names[0]; i++)
        if (bits & (1u << i))
            o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%s", o ? ", " : "", names[i]);
}

/* ---- the response writer ---- */

static const char *date_now(struct http_worker *hw)
{
    time_t t = time(NULL);
    if ((uint64_t)t != hw->date_sec) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(hw->date, sizeof hw->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        hw->date_sec = (uint64_t)t;
    }
    return hw->date;
}

int http__write_response(struct conn *c, uint16_t status, const char *ctype, str extra,
                         const void *body, size_t len, bool head_only, bool keep_alive)
{
    struct http_worker *hw = c->hw;
    struct http_server *hs = hw->hs;
    if (c->gone)
        return -ENOTCONN;
    struct buf *b = &hw->out;
    buf_reset(b);
    int rc = buf_printf(b, "HTTP/1.1 %u %s\r\nDate: %s\r\nServer: rtcd/%s\r\n", status,
                        http_status_text(status), date_now(hw), RTCD_VERSION);
    bool no_body = status == 204 || status == 304 || status < 200;
    if (!rc && !no_body)
        rc = buf_printf(b, "Content-Length: %zu\r\n", len);
    if (!rc && ctype && !no_body)
        rc = buf_printf(b, "Content-Type: %s\r\n", ctype);
    if (!rc && extra.len)
        rc = buf_append_str(b, extra);
    if (!rc && status != 101)
        rc = buf_append_str(b, keep_alive ? STR("") : STR("Connection: close\r\n"));
    if (!rc)
        rc = buf_append_str(b, STR("\r\n"));
    if (!rc && !no_body && !head_only && len)
        rc = buf_append(b, body, len);
    if (rc < 0)
        return rc;
    if (status >= 500)
        CNT(hs, resp_5xx);
    else if (status >= 400)
        CNT(hs, resp_4xx);
    else if (status >= 300)
        CNT(hs, resp_3xx);
    else if (status >= 200)
        CNT(hs, resp_2xx);
    return net_flow_write(hw->nw, c->id, b->data, b->len);
}

/* An error answered before any handler (bad head, limits, timeouts): JSON, then close. */
static void reply_and_close(struct conn *c, uint16_t status, const char *why, str extra)
{
    json_t *j = json_pack("{s:s}", "error", why);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    http__write_response(c, status, "application/json", extra, text, text ? strlen(text) : 0,
                         false, false);
    free(text);
    c->st = C_DONE;
    net_flow_close(c->hw->nw, c->id, true, why);
}

/* ---- contexts ---- */

static void ctx_free(struct http_ctx *x)
{
    if (!x)
        return;
    buf_free(&x->extra);
    free(x->raw);
    free(x->hdrs);
    free(x);
}

static str rebase(str v, const char *from, const char *to)
{
    return v.s ? str_make(to + (v.s - from), v.len) : v;
}

/* Copies the request's bytes into x and points every slice there. */
static int ctx_take(struct http_ctx *x, const struct http_request *req, const char *base,
                    size_t total, size_t chunked_len)
{
    bool chunked = chunked_len != SIZE_MAX;
    size_t keep = chunked ? req->head_len + chunked_len : total;
    x->raw = malloc(keep ? keep : 1);
    x->hdrs = calloc(req->nhdrs ? req->nhdrs : 1, sizeof *x->hdrs);
    if (!x->raw || !x->hdrs)
        return -ENOMEM;
    if (chunked) {
        /* the head as it came, then the body decoded (validated already by on_data) */
        const char *why;
        size_t bl = 0;
        memcpy(x->raw, base, req->head_len);
        if (http_chunked(base + req->head_len, total - req->head_len, chunked_len,
                         x->raw + req->head_len, &bl, &why) < 0 || bl != chunked_len)
            return -EPROTO;
    } else {
        memcpy(x->raw, base, total);
    }
    x->rawlen = keep;
    total = keep;
#define REBASE(v) rebase((v), base, x->raw)
    x->req = *req;
    x->req.hdrs = x->hdrs;
    x->req.method_name = REBASE(req->method_name);
    x->req.target = REBASE(req->target);
    x->req.path = REBASE(req->path);
    x->req.query = REBASE(req->query);
    for (size_t i = 0; i < req->nhdrs; i++) {
        x->hdrs[i].name = REBASE(req->hdrs[i].name);
        x->hdrs[i].value = REBASE(req->hdrs[i].value);
    }
#undef REBASE
    x->body = str_make(x->raw + req->head_len, total - req->head_len);
    return 0;
}

const struct http_request *http_ctx_req(const struct http_ctx *c)
{
    return &c->req;
}

str http_ctx_path(const struct http_ctx *c)
{
    return str_make(c->path, c->pathlen);
}

str http_ctx_body(const struct http_ctx *c)
{
    return c->body;
}

str http_ctx_header(const struct http_ctx *c, const char *name)
{
    return http_header_get(&c->req, str_cstr(name));
}

ssize_t http_ctx_query(const struct http_ctx *c, const char *name, char *out, size_t cap)
{
    str v = http_query_get(c->req.query, str_cstr(name));
    if (!v.s)
        return -ENOENT;
    return http_pct_decode(v, out, cap, true);
}

str http_ctx_bearer(const struct http_ctx *c)
{
    str a = http_ctx_header(c, "Authorization");
    if (a.len > 7 && str_has_caseprefix(a, STR("Bearer ")))
        return str_trim(str_skip(a, 7));
    return STR_NULL;
}

const struct sockaddr_storage *http_ctx_peer(const struct http_ctx *c)
{
    return &c->c->fi.peer;
}

bool http_ctx_secure(const struct http_ctx *c)
{
    return c->c->fi.transport == TRANSPORT_TLS;
}

struct worker *http_ctx_worker(const struct http_ctx *c)
{
    return c->c->hw->w;
}

struct http_server *http_ctx_server(const struct http_ctx *c)
{
    return c->hs;
}

int http_ctx_add_header(struct http_ctx *c, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return -EINVAL;
    return buf_printf(&c->extra, "%s: %s\r\n", name, value);
}

int http_reply(struct http_ctx *x, uint16_t status, const char *ctype, const void *body,
               size_t len)
{
    struct conn *c = x->c;
    int rc = -ENOTCONN;
    bool was_busy = c->st == C_BUSY;
    if (!c->gone && c->cur == x) {
        if (log_enabled(LOG_DEBUG)) {
            char a[64];
            log_debug("http", "%s %.*s %.*s → %u (%zu bytes)",
                      net_addr_str(&c->fi.peer, a, sizeof a), STR_FMT(x->req.method_name),
                      STR_FMT(x->req.target), status, len);
        }
        rc = http__write_response(c, status, ctype, buf_str(&x->extra), body, len, x->head_only,
                                  x->keep_alive);
        c->cur = NULL;
        if (rc < 0 || !x->keep_alive) {
            c->st = C_DONE;
            net_flow_close(c->hw->nw, c->id, true, rc < 0 ? "write failed" : "Connection: close");
        } else {
            c->st = C_IDLE;
            c->continue_sent = false;
            c->deadline = http__now(c->hw) + (uint64_t)c->hw->hs->cfg->http.keepalive_timeout * 1000;
            if (was_busy)
                net_flow_resume(c->hw->nw, c->id); /* pipelined requests waiting */
        }
    }
    if (c->cur == x)
        c->cur = NULL;
    ctx_free(x);
    http__conn_unref(c);
    return rc;
}

int http_reply_json(struct http_ctx *x, uint16_t status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return http_reply(x, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
    int rc = http_reply(x, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

int http_reply_error(struct http_ctx *x, uint16_t status, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return http_reply_json(x, status, json_pack("{s:s}", "error", why));
}

/* ---- requests ---- */

static const struct ws_route *ws_route_find(struct http_server *hs, str path)
{
    for (size_t i = 0; i < hs->nws; i++)
        if (str_eq(path, str_cstr(hs->ws[i].path)))
            return &hs->ws[i];
    return NULL;
}

/* Runs one complete request (head + body at data[0..total)). */
static int dispatch(struct conn *c, const struct http_request *req, const char *data, size_t total,
                    size_t chunked_len)
{
    struct http_server *hs = c->hw->hs;
    CNT(hs, requests);
    c->nreq++;
    char path[HTTP_PATH_MAX];
    ssize_t pl = http_pct_decode(req->path.len ? req->path : STR("/"), path, sizeof path, false);
    if (pl < 0) {
        reply_and_close(c, pl == -ENOSPC ? 414 : 400,
                        pl == -ENOSPC ? "Path too long" : "Bad %-escape in the path", STR_NULL);
        return -EINVAL;
    }
    const struct ws_route *wr = ws_route_find(hs, str_make(path, (size_t)pl));
    if (wr)
        return http__ws_upgrade(c, wr, req);

    struct http_ctx *x = calloc(1, sizeof *x);
    if (!x || ctx_take(x, req, data, total, chunked_len) < 0) {
        ctx_free(x);
        reply_and_close(c, 503, "Out of memory", STR_NULL);
        return -ENOMEM;
    }
    x->c = c;
    x->hs = hs;
    memcpy(x->path, path, (size_t)pl + 1);
    x->pathlen = (size_t)pl;
    buf_init(&x->extra, HTTP_EXTRA_MAX);
    x->head_only = req->method == HTTP_HEAD;
    x->keep_alive = req->keep_alive && !c->hw->stopping;
    atomic_fetch_add(&c->refs, 1);
    c->cur = x;
    c->st = C_BUSY;

    if (req->method == HTTP_OTHER) {
        http_reply_error(x, 501, "Method %.*s is not implemented", STR_FMT(req->method_name));
        return 0;
    }
    unsigned allow = 0;
    const struct route *r = route_find(hs, http_ctx_path(x), req->method, &allow);
    if (r) {
        r->fn(x, r->arg);
        return 0;
    }
    if (allow) {
        char a[96];
        allow_text(allow, a, sizeof a);
        http_ctx_add_header(x, "Allow", a);
        http_reply_error(x, 405, "Method %.*s is not allowed here (allowed: %s)",
                         STR_FMT(req->method_name), a);
        return 0;
    }
    if (hs->web_root[0] && (req->method == HTTP_GET || req->method == HTTP_HEAD) &&
        !str_has_prefix(http_ctx_path(x), STR("/api/"))) {
        http__static(x, NULL);
        return 0;
    }
    if (hs->web_root[0] && !str_has_prefix(http_ctx_path(x), STR("/api/"))) {
        http_ctx_add_header(x, "Allow", "GET, HEAD");
        http_reply_error(x, 405, "Only GET and HEAD are allowed for files");
        return 0;
    }
    http_reply_error(x, 404, "No such resource: %s", x->path);
    return 0;
}

/* net's data hook: bytes for an HTTP connection. */
static ssize_t on_data(void *flow_ctx, const char *data, size_t len)
{
    struct conn *c = flow_ctx;
    struct http_worker *hw = c->hw;
    struct http_server *hs = hw->hs;
    const struct config *cfg = hs->cfg;
    if (c->st == C_WS)
        return http__ws_data(c, data, len);
    if (c->st == C_BUSY || c->st == C_DONE)
        return 0; /* one request at a time: the next waits in net's buffer */
    struct http_request req;
    ssize_t n = http_parse_request(data, len, &hs->lim, &req, hw->hdrs);
    if (n == -EAGAIN) {
        if (c->st == C_IDLE) {
            c->st = C_HEAD; /* the head must be complete within header_timeout from now */
            c->deadline = http__now(hw) + (uint64_t)cfg->http.header_timeout * 1000;
        }
        return 0;
    }
    if (n < 0) {
        CNT(hs, requests);
        reply_and_close(c, req.err_status ? req.err_status : 400,
                        req.err_reason ? req.err_reason : "Bad request", STR_NULL);
        return (ssize_t)len;
    }
    size_t total = 0, chunked_len = SIZE_MAX;
    if (req.chunked) {
        const char *why = NULL;
        for (size_t i = 0; i < req.nhdrs; i++)
            if (str_caseeq(req.hdrs[i].name, STR("Transfer-Encoding")) &&
                !str_caseeq(req.hdrs[i].value, STR("chunked")))
                why = "Only Transfer-Encoding: chunked is implemented";
        if (why) {
            CNT(hs, requests);
            reply_and_close(c, 501, why, STR_NULL);
            return (ssize_t)len;
        }
        size_t blen = 0;
        ssize_t r = http_chunked(data + n, len - (size_t)n, cfg->http.max_body_size, NULL, &blen,
                                 &why);
        if (r == -EMSGSIZE || r == -EINVAL) {
            CNT(hs, requests);
            char msg[160];
            snprintf(msg, sizeof msg, "%s%s%u bytes", why,
                     r == -EMSGSIZE ? " of " : "", r == -EMSGSIZE ? cfg->http.max_body_size : 0);
            reply_and_close(c, r == -EMSGSIZE ? 413 : 400, r == -EMSGSIZE ? msg : why, STR_NULL);
            return (ssize_t)len;
        }
        if (r > 0) {
            total = (size_t)n + (size_t)r;
            chunked_len = blen;
        } else {
            total = SIZE_MAX; /* not complete yet */
        }
    } else {
        uint64_t body = req.content_length > 0 ? (uint64_t)req.content_length : 0;
        if (body > cfg->http.max_body_size) {
            CNT(hs, requests);
            char why[128];
            snprintf(why, sizeof why, "Body of %llu bytes is above the limit of %u",
                     (unsigned long long)body, cfg->http.max_body_size);
            reply_and_close(c, 413, why, STR_NULL);
            return (ssize_t)len;
        }
        total = (size_t)n + (size_t)body;
    }
    if (len < total) {
        if (c->st != C_BODY) {
            c->st = C_BODY;
            c->deadline = http__now(hw) + (uint64_t)cfg->http.body_timeout * 1000;
            if (req.expect_continue && !c->continue_sent) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                net_flow_write(hw->nw, c->id, cont, sizeof cont - 1);
                c->continue_sent = true;
            }
        }
        return 0;
    }
    if (dispatch(c, &req, data, total, chunked_len) < 0)
        return (ssize_t)len;
    return (ssize_t)total;
}

/* ---- connections ---- */

void http__conn_unref(struct conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) > 1)
        return;
    free(c);
}

void http__ctx_abandon(struct http_ctx *x)
{
    struct conn *c = x->c;
    ctx_free(x);
    http__conn_unref(c);
}

static int on_open(void *ctx, struct net_worker *nw, uint64_t flow_id,
                   const struct net_flow_info *fi, void **flow_ctx)
{
    struct http_server *hs = ctx;
    struct http_worker *hw = hs->workers[worker_index(net_worker_worker(nw))];
    if (!hw || hw->stopping)
        return -ESHUTDOWN;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->hw = hw;
    c->id = flow_id;
    c->fi = *fi;
    c->refs = 1;
    c->st = C_IDLE;
    /* a new connection must send its first head within header_timeout */
    c->deadline = http__now(hw) + (uint64_t)hs->cfg->http.header_timeout * 1000;
    if (map_set_int(hw->conns, flow_id, c, NULL) < 0) {
        free(c);
        return -ENOMEM;
    }
    hw->nw = nw;
    hw->live++;
    CNT(hs, conns_open);
    *flow_ctx = c;
    return 0;
}

static void hw_release(struct http_worker *hw);

static void on_close(void *flow_ctx)
{
    struct conn *c = flow_ctx;
    struct http_worker *hw = c->hw;
    struct http_server *hs = hw->hs;
    c->gone = true;
    c->st = C_DONE;
    map_del_int(hw->conns, c->id);
    atomic_fetch_sub_explicit(&hs->c.conns_open, 1, memory_order_relaxed);
    if (c->ws)
        http__ws_closed(c);
    http__conn_unref(c);
    hw_release(hw);
}

static int on_send(void *flow_ctx, const void *data, size_t len)
{
    struct conn *c = flow_ctx;
    if (c->st != C_WS || !c->wr || !c->wr->sip)
        return -ENOTCONN; /* SIP reaches only SIP WebSocket flows */
    return http__ws_send_sip(c, data, len);
}

static void on_timer(uv_timer_t *t)
{
    struct http_worker *hw = t->data;
    uint64_t now = http__now(hw);
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    /* closing is deferred by net (the close hook runs later), so the walk is safe */
    while (map_next(hw->conns, &it, &e)) {
        struct conn *c = e.val;
        if (c->st == C_WS) {
            http__ws_tick(c, now);
            continue;
        }
        if ((c->st != C_IDLE && c->st != C_HEAD && c->st != C_BODY) || now < c->deadline)
            continue;
        CNT(hw->hs, timeouts);
        if (c->st == C_IDLE) {
            c->st = C_DONE;
            net_flow_close(hw->nw, c->id, false, "keep-alive timeout");
        } else {
            reply_and_close(c, 408, c->st == C_HEAD ? "Request head not received in time"
                                                    : "Request body not received in time",
                            STR_NULL);
        }
    }
}

/* ---- the server ---- */

/* server.secret, else data_dir/secret (made by the SIP server at start), else random. */
static void token_key_init(struct http_server *hs)
{
    uint8_t secret[64];
    size_t n = strlen(hs->cfg->server.secret);
    const void *k = hs->cfg->server.secret;
    if (n == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/secret", hs->cfg->server.data_dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t r = fd >= 0 ? read(fd, secret, sizeof secret) : -1;
        if (fd >= 0)
            close(fd);
        if (r >= 16) {
            n = (size_t)r;
        } else {
            random_bytes(secret, 32);
            n = 32;
            log_warn("http", "no server.secret and no %s: login tokens will not survive a "
                             "restart", path);
        }
        k = secret;
    }
    /* a key of its own, derived, so that tokens and digest nonces never share one */
    http__hmac_sha256(k, n, "rtcd http token key v1", 22, hs->token_key);
}

/* The web client's folder: http.web_root, else <dir of the binary>/web. */
static void web_root_init(struct http_server *hs)
{
    char want[PATH_MAX];
    const char *wr = hs->cfg->http.web_root;
    if (wr && *wr) {
        snprintf(want, sizeof want, "%s", wr);
    } else {
        char exe[PATH_MAX - 8];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0)
            return;
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (!slash)
            return;
        *slash = 0;
        snprintf(want, sizeof want, "%s/web", exe);
    }
    struct stat st;
    if (!realpath(want, hs->web_root) || stat(hs->web_root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        hs->web_root[0] = 0;
        log_warn("http", "http.web_root: %s is not a folder: no static files are served", want);
        return;
    }
    log_info("http", "web client files from %s", hs->web_root);
}

int http_server_new(struct http_server **out, const struct config *cfg, unsigned nworkers,
                    const struct http_deps *deps, char *err, size_t errlen)
{
    struct http_server *hs = calloc(1, sizeof *hs);
    if (!hs)
        return -ENOMEM;
    hs->cfg = cfg;
    hs->nworkers = nworkers ? nworkers : 1;
    if (deps)
        hs->deps = *deps;
    hs->workers = calloc(hs->nworkers, sizeof *hs->workers);
    hs->wk = calloc(hs->nworkers, sizeof *hs->wk);
    struct throttle_params tp = { .max_failures = cfg->auth.max_failures,
                                  .window_s = cfg->auth.failure_window };
    if (!hs->workers || !hs->wk || throttle_new(&hs->login_ip, &tp) < 0 ||
        throttle_new(&hs->login_user, &tp) < 0) {
        snprintf(err, errlen, "http: out of memory");
        http_server_free(hs);
        return -ENOMEM;
    }
    hs->lim.max_head = cfg->http.max_header_size;
    hs->lim.max_headers = cfg->http.max_headers;
    hs->ops = (struct net_stream_ops){
        .open = on_open,
        .data = on_data,
        .send = on_send,
        .close = on_close,
        .max_buffer = (size_t)cfg->http.max_header_size + cfg->http.max_body_size +
                      (cfg->http.ws_max_message > cfg->sip.max_message_size
                           ? cfg->http.ws_max_message
                           : cfg->sip.max_message_size) + 64,
    };
    token_key_init(hs);
    web_root_init(hs);
    int rc = 0;
    static const struct http_ws_handlers none = { 0 };
    if (rc == 0)
        rc = http_ws_route_add(hs, "/sip", "sip", cfg->sip.max_message_size, &none, NULL);
    if (rc == 0) {
        hs->ws[hs->nws - 1].sip = true;
        rc = http__metrics_install(hs);
    }
    if (rc == 0)
        rc = http__api_install(hs);
    if (rc < 0) {
        snprintf(err, errlen, "http: cannot set up the routes: %s", strerror(-rc));
        http_server_free(hs);
        return rc;
    }
    *out = hs;
    return 0;
}

int http_server_attach(struct http_server *hs, struct net *net)
{
    hs->net = net;
    return net_add_stream_listeners(net, &hs->cfg->http.listen, &hs->ops, hs);
}

void http_server_free(struct http_server *hs)
{
    if (!hs)
        return;
    for (size_t i = 0; i < hs->nroutes; i++)
        free(hs->routes[i].path);
    for (size_t i = 0; i < hs->nws; i++) {
        free(hs->ws[i].path);
        free(hs->ws[i].subprotocol);
    }
    http__api_free(hs);
    throttle_free(hs->login_ip);
    throttle_free(hs->login_user);
    free(hs->workers);
    free(hs->wk);
    free(hs);
}

static void hw_free(struct http_worker *hw)
{
    buf_free(&hw->out);
    free(hw->hdrs);
    map_free(hw->conns);
    free(hw);
}

/* hw goes when its timer and its last connection are gone (flows close after this hook). */
static void hw_release(struct http_worker *hw)
{
    if (--hw->live == 0)
        hw_free(hw);
}

static void timer_closed(uv_handle_t *h)
{
    hw_release(h->data);
}

void http_server_worker_start(struct worker *w, void *arg)
{
    struct http_server *hs = arg;
    struct http_worker *hw = calloc(1, sizeof *hw);
    if (!hw)
        return;
    hw->hs = hs;
    hw->w = w;
    hw->hdrs = calloc(hs->lim.max_headers, sizeof *hw->hdrs);
    buf_init(&hw->out, hs->ops.max_buffer + 65536);
    if (!hw->hdrs || map_new(&hw->conns, MAP_KEY_INT, 64) < 0) {
        hw_free(hw);
        return;
    }
    uv_timer_init(worker_loop(w), &hw->timer);
    hw->timer.data = hw;
    uv_timer_start(&hw->timer, on_timer, TICK_MS, TICK_MS);
    hw->live = 1; /* the timer; each connection adds one */
    hs->workers[worker_index(w)] = hw;
    atomic_store(&hs->wk[worker_index(w)], w);
}

void http_server_worker_stop(struct worker *w, void *arg)
{
    struct http_server *hs = arg;
    struct http_worker *hw = hs->workers[worker_index(w)];
    if (!hw)
        return;
    hw->stopping = true;
    atomic_store(&hs->wk[worker_index(w)], NULL);
    /* the SIP hook (stopped after this one) closes the flows; their close hooks still
     * find hw through the connections, so it is freed only with the timer's close */
    uv_close((uv_handle_t *)&hw->timer, timer_closed);
    hs->workers[worker_index(w)] = NULL;
}
