/*
 * http — the HTTP/1.1 server on `http.listen`: the web client's static files,
 * the JSON API, WebSocket endpoints (SIP over WebSocket at /sip, RFC 7118;
 * JSON endpoints of other modules), /healthz and /metrics.
 *
 * The connections are net flows of their own listener kind (net.h,
 * struct net_stream_ops): they live on the worker that accepted them, and
 * every callback below runs on that worker's thread unless said otherwise.
 * docs/http-api.md and docs/websocket.md describe the behaviour on the wire.
 *
 * Other modules plug in with two calls, made before the workers start:
 *
 *   http_route_add(hs, "GET,POST", "/api/v1/notify", HTTP_ROUTE_EXACT, fn, arg);
 *   http_ws_route_add(hs, "/api/v1/bot/ws", NULL, &handlers, arg);
 *
 * and answer with http_reply* (now, or later from the same worker), or send on
 * a WebSocket with http_ws_send (from any thread).
 */
#ifndef RTCD_HTTP_HTTP_H
#define RTCD_HTTP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/config.h"
#include "base/str.h"
#include "net/net.h"
#include "net/worker.h"

/* ---- the request parser (parse.c): pure, zero-copy, no allocation ---------------------- */

enum http_method {
    HTTP_OTHER = 0, /* a valid token we do not serve (answered 501 or 405) */
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
};

struct http_header {
    str name, value; /* value without surrounding whitespace */
};

struct http_limits {
    size_t max_head;     /* request line + headers + blank line (http.max_header_size) */
    size_t max_headers;  /* header fields (at most the caller's array) */
};

/* A parsed request head: every slice points into the parsed bytes. */
struct http_request {
    enum http_method method;
    str method_name;
    str target;         /* request-target as sent */
    str path;           /* target up to '?' (still %-encoded); empty = "/" (absolute-form) */
    str query;          /* after '?', empty when none */
    int minor;          /* HTTP/1.<minor> */
    struct http_header *hdrs;
    size_t nhdrs;
    size_t head_len;        /* bytes of the head, blank line included */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding present (only "chunked" is served; 501) */
    bool keep_alive;        /* after the Connection header and the version */
    bool upgrade;           /* Connection: upgrade and Upgrade: websocket */
    bool expect_continue;   /* Expect: 100-continue */
    /* On failure: the status to answer (400, 431, 501, 505) and why. */
    uint16_t err_status;
    const char *err_reason;
};

/*
 * Parses the request head at buf[0..len) into req (hdrs: caller's array of
 * lim->max_headers entries). Returns the head's length (> 0), -EAGAIN when
 * the head is not complete yet (and still within lim->max_head), or -EINVAL
 * with req->err_status / err_reason set (431 when the head or the header
 * count is over its limit). Leading empty lines are skipped (RFC 7230 §3.5).
 * Never allocates, never writes into buf.
 */
ssize_t http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                           struct http_request *req, struct http_header *hdrs);
/*
 * A chunked request body (RFC 7230 §4.1) at buf[0..len), after the head. Returns
 * the bytes it takes (trailers and the final blank line included) with the
 * decoded size in *body_len, -EAGAIN when incomplete, -EMSGSIZE when the
 * decoded size passes max_body, or -EINVAL; *why says what was wrong. With out
 * (at least max_body bytes) the data is copied there. Never allocates.
 */
ssize_t http_chunked(const char *buf, size_t len, size_t max_body, char *out, size_t *body_len,
                     const char **why);
/* The first header named name (case-insensitive), or an empty slice with .s NULL. */
str http_header_get(const struct http_request *req, str name);
/* Whether a comma-separated header value lists token (case-insensitive). */
bool http_list_has(str value, str token);
/*
 * One query parameter's value (not decoded) from "a=1&b=2", or .s NULL when absent.
 */
str http_query_get(str query, str name);
/*
 * %-decodes s into out (cap bytes, NUL added). Returns the length, -EINVAL for a
 * bad escape or an encoded NUL, -ENOSPC. plus_space: '+' means ' ' (query strings).
 */
ssize_t http_pct_decode(str s, char *out, size_t cap, bool plus_space);
/* The standard reason phrase ("Not Found"); "Unknown" for others. */
const char *http_status_text(uint16_t status);

/* ---- the server --------------------------------------------------------------------- */

struct http_server;
struct store_thread;
struct store_creds;

struct http_deps {
    struct store_thread *store; /* JSON API data (NULL: those routes answer 503) */
    struct store_creds *creds;  /* login and token checks (NULL: 503) */
};

/*
 * A new server for cfg (kept by pointer) on nworkers workers. Reads the
 * secret (server.secret, else data_dir/secret) and resolves http.web_root.
 * Blocks (start-up only). 0 or a negative errno with err set.
 */
int http_server_new(struct http_server **out, const struct config *cfg, unsigned nworkers,
                    const struct http_deps *deps, char *err, size_t errlen);
/*
 * Adds the http.listen listeners to net (the SIP server's transports, so that
 * SIP reaches WebSocket flows with net_send). Before the workers start. 0 or -errno.
 */
int http_server_attach(struct http_server *hs, struct net *net);
/* Worker hooks (order: after the hook that starts net on the worker). */
void http_server_worker_start(struct worker *w, void *hs);
void http_server_worker_stop(struct worker *w, void *hs);
/* Frees the server; every worker must have stopped. NULL is fine. */
void http_server_free(struct http_server *hs);

/* ---- routes ------------------------------------------------------------------------- */

/* One request being answered. Valid until it is answered (then freed). */
struct http_ctx;
typedef void (*http_handler_fn)(struct http_ctx *c, void *arg);

enum http_route_flags {
    HTTP_ROUTE_EXACT = 0,  /* the path must be equal */
    HTTP_ROUTE_PREFIX = 1, /* the path starts with it (then a '/' or the end) */
};

/*
 * Adds a route: methods is a comma-separated list ("GET,PUT"; GET also serves
 * HEAD), path starts with '/'. Longer paths win; an exact route wins over a
 * prefix of the same length. A path that matches with another method gets 405
 * with Allow. Call before the workers start. 0, -EINVAL, -EEXIST, -ENOSPC.
 */
int http_route_add(struct http_server *hs, const char *methods, const char *path,
                   unsigned flags, http_handler_fn fn, void *arg);

/* The request (borrowed until answered). */
const struct http_request *http_ctx_req(const struct http_ctx *c);
/* The decoded path ("/api/v1/x", no query), borrowed until answered. */
str http_ctx_path(const struct http_ctx *c);
/* The body (Content-Length bytes), borrowed until answered. */
str http_ctx_body(const struct http_ctx *c);
/* A header of the request (.s NULL when absent). */
str http_ctx_header(const struct http_ctx *c, const char *name);
/* A query parameter, %-decoded into out (cap bytes). Length, -ENOENT, -EINVAL, -ENOSPC. */
ssize_t http_ctx_query(const struct http_ctx *c, const char *name, char *out, size_t cap);
/* The token of "Authorization: Bearer TOKEN" (.s NULL when none). */
str http_ctx_bearer(const struct http_ctx *c);
const struct sockaddr_storage *http_ctx_peer(const struct http_ctx *c);
/* Whether the connection is TLS (https / wss). */
bool http_ctx_secure(const struct http_ctx *c);
/* The worker the request is on (answer there; store completions come back there). */
struct worker *http_ctx_worker(const struct http_ctx *c);
struct http_server *http_ctx_server(const struct http_ctx *c);

/* Adds a response header (copied) before replying. 0, -ENOBUFS. */
int http_ctx_add_header(struct http_ctx *c, const char *name, const char *value);
/*
 * Answers with status, a Content-Type (NULL: none) and a body (copied). Frees c.
 * Exactly one http_reply* per request, on the request's worker. 0 or -errno
 * (c is freed anyway; the connection may have gone — nothing is sent then).
 */
int http_reply(struct http_ctx *c, uint16_t status, const char *content_type, const void *body,
               size_t len);
/* Answers with a JSON document (takes the reference). */
int http_reply_json(struct http_ctx *c, uint16_t status, json_t *doc);
/* Answers {"error": "<formatted>"} with status. */
int http_reply_error(struct http_ctx *c, uint16_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- WebSocket endpoints (RFC 6455, framing by wslay) -------------------------------- */

struct http_ws_handlers {
    /*
     * A client asks to upgrade (before the 101): 0 accepts (*conn_ctx for the
     * other calls), -EACCES refuses with 401, -EPERM with 403, other negative
     * with 400. req is borrowed for the call.
     */
    int (*on_open)(void *arg, uint64_t ws_id, const struct http_request *req,
                   const struct sockaddr_storage *peer, void **conn_ctx);
    /* A whole message (fragments reassembled), borrowed for the call. */
    void (*on_message)(void *arg, void *conn_ctx, uint64_t ws_id, bool binary, const char *data,
                       size_t len);
    /* The connection ended (code 1006 when it just dropped). conn_ctx is not used again. */
    void (*on_close)(void *arg, void *conn_ctx, uint64_t ws_id, uint16_t code);
};

/*
 * Adds a WebSocket endpoint at path. subprotocol (NULL = none needed): the
 * client must offer it in Sec-WebSocket-Protocol, else the upgrade is refused
 * (400). max_message: largest message (0 = http.ws_max_message); a larger
 * one closes the connection with 1009. /sip (subprotocol "sip") is built in.
 * Before the workers start. 0, -EINVAL, -EEXIST, -ENOSPC.
 */
int http_ws_route_add(struct http_server *hs, const char *path, const char *subprotocol,
                      size_t max_message, const struct http_ws_handlers *h, void *arg);
/*
 * Sends one message on WebSocket ws_id (text, or binary). From any thread:
 * the bytes are copied and handed to the connection's worker. 0, -ENOTCONN
 * (no such connection now), -ENOMEM. Delivery is not confirmed.
 */
int http_ws_send(struct http_server *hs, uint64_t ws_id, bool binary, const void *data,
                 size_t len);
/* Closes ws_id with a close code (1000 normal) and reason. From any thread. */
int http_ws_close(struct http_server *hs, uint64_t ws_id, uint16_t code, const char *reason);

/* ---- metrics (Prometheus text format; metrics.c) --------------------------------------- */

struct http_metrics_out;
enum http_metric_type {
    HTTP_METRIC_COUNTER,
    HTTP_METRIC_GAUGE,
};
/* A collector: writes its samples with http_metric when /metrics is read (on a worker). */
typedef void (*http_metrics_fn)(void *arg, struct http_metrics_out *out);
/* Adds a collector (before the workers start). 0, -ENOSPC. */
int http_metrics_add(struct http_server *hs, http_metrics_fn fn, void *arg);
/*
 * One sample: name must start with "rtcd_" ([a-z0-9_]); labels is NULL or
 * `transport="udp"` (values escaped by the caller). HELP and TYPE lines are
 * written before the first sample of each name; samples of one name must be
 * written together. 0, -EINVAL (bad name), -ENOBUFS.
 */
int http_metric(struct http_metrics_out *o, const char *name, enum http_metric_type type,
                const char *help, const char *labels, double value);

/* ---- the JSON API (api.c) ------------------------------------------------------------ */

/*
 * The user a login token names (user_out: 65 bytes), checked: signature,
 * expiry, the user still exists and is enabled, the password unchanged.
 * 0, -EACCES (bad or forged), -ETIMEDOUT (expired), -ENOENT (user gone or
 * disabled). Any thread; never blocks.
 */
int http_token_check(struct http_server *hs, str token, char *user_out);

#endif
