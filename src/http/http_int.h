/*
 * http_int.h — what the files of src/http share: the server, the per-worker
 * part, connections and requests. Not for callers outside src/http.
 */
#ifndef RTCD_HTTP_INT_H
#define RTCD_HTTP_INT_H

#include <limits.h>
#include <stdatomic.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "base/buf.h"
#include "base/map.h"
#include "http/http.h"

#define HTTP_MAX_ROUTES 64
#define HTTP_MAX_WS_ROUTES 16
#define HTTP_MAX_COLLECTORS 32
#define HTTP_PATH_MAX 1024   /* decoded path bytes */
#define HTTP_EXTRA_MAX 4096  /* response headers added by a handler */

struct route {
    char *path;
    size_t plen;
    unsigned methods; /* bit per enum http_method */
    unsigned flags;
    http_handler_fn fn;
    void *arg;
};

struct ws_route {
    char *path;
    char *subprotocol; /* NULL = none needed */
    size_t max_message;
    struct http_ws_handlers h;
    void *arg;
    bool sip; /* the built-in SIP over WebSocket endpoint */
};

struct collector {
    http_metrics_fn fn;
    void *arg;
};

struct http_worker;

struct http_server {
    const struct config *cfg;
    unsigned nworkers;
    struct http_deps deps;
    struct net *net;
    struct net_stream_ops ops;
    struct route routes[HTTP_MAX_ROUTES];
    size_t nroutes;
    struct ws_route ws[HTTP_MAX_WS_ROUTES];
    size_t nws;
    struct collector coll[HTTP_MAX_COLLECTORS];
    size_t ncoll;
    char web_root[PATH_MAX]; /* resolved (realpath); empty = no static files */
    uint8_t token_key[32];
    struct throttle *login_ip, *login_user;
    struct http_worker **workers;   /* by worker index, each read on its own thread */
    struct worker *_Atomic *wk;      /* by worker index, for posting from any thread */
    struct http_limits lim;
    uint64_t started_ms;
    struct {
        _Atomic uint64_t requests, resp_2xx, resp_3xx, resp_4xx, resp_5xx;
        _Atomic uint64_t conns_open, ws_open, sip_ws_open, ws_messages_in, ws_messages_out;
        _Atomic uint64_t timeouts, login_ok, login_fail;
    } c;
};

struct http_worker {
    struct http_server *hs;
    struct worker *w;
    struct net_worker *nw;
    struct map *conns; /* flow id → struct conn */
    uv_timer_t timer;
    struct buf out;           /* the response being built */
    struct http_header *hdrs; /* parse scratch (lim.max_headers) */
    char date[40];
    uint64_t date_sec;
    unsigned live; /* the timer + open connections: freed at 0 */
    bool stopping;
};

enum conn_state {
    C_IDLE, /* between requests (keep-alive) */
    C_HEAD, /* some bytes of a head have come */
    C_BODY, /* head complete, waiting for the body */
    C_BUSY, /* a handler is answering */
    C_WS,   /* upgraded */
    C_DONE, /* closing */
};

struct conn {
    struct http_worker *hw;
    uint64_t id;
    struct net_flow_info fi;
    enum conn_state st;
    uint64_t deadline; /* ms, loop clock: when the current state times out */
    _Atomic int refs;  /* net's (until its close hook) + one per request in flight */
    bool gone;         /* the flow has closed */
    bool continue_sent;
    unsigned nreq;
    struct http_ctx *cur;
    /* WebSocket */
    wslay_event_context_ptr ws;
    const struct ws_route *wr;
    void *ws_ctx;
    const char *rx;
    size_t rxlen;
    bool in_recv, ping_out;
    uint64_t last_rx, ping_at;
    uint16_t close_code;
};

struct http_ctx {
    struct conn *c;
    struct http_server *hs;
    struct http_request req;
    struct http_header *hdrs;
    char *raw; /* head + body, owned */
    size_t rawlen;
    str body;
    char path[HTTP_PATH_MAX];
    size_t pathlen;
    struct buf extra; /* response headers added by the handler */
    bool head_only, keep_alive;
};

/* HMAC-SHA256 (api.c). 0 or -EIO. */
int http__hmac_sha256(const void *key, size_t klen, const void *d, size_t n, uint8_t out[32]);

/* server.c */
uint64_t http__now(struct http_worker *hw);
void http__conn_unref(struct conn *c);
/* Writes a complete response (status line, headers, body) on c. Does not touch c->st. */
int http__write_response(struct conn *c, uint16_t status, const char *ctype, str extra_hdrs,
                         const void *body, size_t len, bool head_only, bool keep_alive);

/* Frees a request that can no longer be answered (its worker has gone). Any thread. */
void http__ctx_abandon(struct http_ctx *x);

/* static.c: serves the request's path from the web root (asynchronously). */
void http__static(struct http_ctx *c, void *arg);

/* ws.c */
/* Answers an upgrade request for route wr: 101 and the connection becomes a WebSocket, or
 * an error response. Returns 0, or a negative errno when the connection must close. */
int http__ws_upgrade(struct conn *c, const struct ws_route *wr, const struct http_request *req);
ssize_t http__ws_data(struct conn *c, const char *data, size_t len);
int http__ws_send_sip(struct conn *c, const void *data, size_t len);
void http__ws_tick(struct conn *c, uint64_t now);
void http__ws_closed(struct conn *c);

/* api.c / metrics.c: the built-in routes */
int http__api_install(struct http_server *hs);
int http__metrics_install(struct http_server *hs);
void http__api_free(struct http_server *hs);

#endif
