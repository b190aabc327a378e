/*
 * http/ws — WebSocket (RFC 6455) on an HTTP connection: the upgrade
 * handshake, framing by wslay (masking, fragments reassembled, control
 * frames, UTF-8 of text messages, close codes), pings on idle, and the two
 * kinds of endpoint: SIP over WebSocket (RFC 7118: one message per frame,
 * handed to the SIP core as transport WS/WSS on this flow) and the endpoints
 * other modules add with http_ws_route_add.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "base/log.h"
#include "base/random.h"
#include "http/http_int.h"

#define CNT(hs, f) atomic_fetch_add_explicit(&(hs)->c.f, 1, memory_order_relaxed)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* See http.h. */
int http_ws_route_add(struct http_server *hs, const char *path, const char *subprotocol,
                      size_t max_message, const struct http_ws_handlers *h, void *arg)
{
    if (!path || path[0] != '/' || !h || strlen(path) >= HTTP_PATH_MAX)
        return -EINVAL;
    for (size_t i = 0; i < hs->nws; i++)
        if (strcmp(hs->ws[i].path, path) == 0)
            return -EEXIST;
    if (hs->nws >= HTTP_MAX_WS_ROUTES)
        return -ENOSPC;
    struct ws_route *r = &hs->ws[hs->nws];
    memset(r, 0, sizeof *r);
    r->path = strdup(path);
    r->subprotocol = subprotocol ? strdup(subprotocol) : NULL;
    if (!r->path || (subprotocol && !r->subprotocol)) {
        free(r->path);
        free(r->subprotocol);
        return -ENOMEM;
    }
    r->max_message = max_message ? max_message : hs->cfg->http.ws_max_message;
    r->h = *h;
    r->arg = arg;
    hs->nws++;
    return 0;
}

/* ---- wslay callbacks ---- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    (void)flags;
    struct conn *c = user;
    if (c->rxlen == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->rxlen ? len : c->rxlen;
    memcpy(buf, c->rx, n);
    c->rx += n;
    c->rxlen -= n;
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    (void)flags;
    struct conn *c = user;
    if (c->gone || net_flow_write(c->hw->nw, c->id, data, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    return random_bytes(buf, len) < 0 ? -1 : 0;
}

static void sip_message(struct conn *c, const uint8_t *msg, size_t len)
{
    struct net_rx rx = {
        .data = (const char *)msg,
        .len = len,
        .transport = c->fi.transport == TRANSPORT_TLS ? TRANSPORT_WSS : TRANSPORT_WS,
        .src = c->fi.peer,
        .srclen = c->fi.peerlen,
        .local = &c->fi.local,
        .flow_id = c->id,
    };
    /* RFC 5626 keep-alive over WebSocket: a CRLF CRLF frame gets a CRLF back */
    if (len == 4 && memcmp(msg, "\r\n\r\n", 4) == 0) {
        struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)"\r\n", 2 };
        wslay_event_queue_msg(c->ws, &m);
        return;
    }
    net_deliver(c->hw->nw, &rx);
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                      void *user)
{
    (void)ctx;
    struct conn *c = user;
    struct http_server *hs = c->hw->hs;
    switch (a->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        CNT(hs, ws_messages_in);
        if (c->wr->sip)
            sip_message(c, a->msg, a->msg_length);
        else if (c->wr->h.on_message)
            c->wr->h.on_message(c->wr->arg, c->ws_ctx, c->id, a->opcode == WSLAY_BINARY_FRAME,
                                (const char *)a->msg, a->msg_length);
        break;
    case WSLAY_CONNECTION_CLOSE:
        c->close_code = a->status_code ? a->status_code : 1005;
        break;
    default: /* pings are answered by wslay; a pong only shows the peer is alive */
        break;
    }
}

/* Sends what wslay has queued, unless a receive is running (it flushes afterwards). */
static void ws_flush(struct conn *c)
{
    if (c->in_recv || c->gone)
        return;
    if (wslay_event_send(c->ws) < 0) {
        net_flow_close(c->hw->nw, c->id, false, "websocket send failed");
        return;
    }
    if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws) && c->st != C_DONE) {
        c->st = C_DONE;
        net_flow_close(c->hw->nw, c->id, true, "websocket closed");
    }
}

/* ---- the handshake ---- */

static bool offers_subprotocol(const struct http_request *req, const char *want)
{
    for (size_t i = 0; i < req->nhdrs; i++)
        if (str_caseeq(req->hdrs[i].name, STR("Sec-WebSocket-Protocol")) &&
            http_list_has(req->hdrs[i].value, str_cstr(want)))
            return true;
    return false;
}

static void ws_refuse(struct conn *c, uint16_t status, const char *why, const char *extra)
{
    char body[320];
    json_t *j = json_pack("{s:s}", "error", why);
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    snprintf(body, sizeof body, "%s", t ? t : "{}");
    free(t);
    http__write_response(c, status, "application/json", str_cstr(extra), body, strlen(body),
                         false, false);
    c->st = C_DONE;
    net_flow_close(c->hw->nw, c->id, true, why);
}

/* See http_int.h. */
int http__ws_upgrade(struct conn *c, const struct ws_route *wr, const struct http_request *req)
{
    struct http_server *hs = c->hw->hs;
    if (req->method != HTTP_GET || !req->upgrade || req->minor < 1) {
        ws_refuse(c, 426, "This is a WebSocket endpoint: send GET with Upgrade: websocket",
                  "Upgrade: websocket\r\n");
        return -EPROTO;
    }
    if (req->content_length > 0) {
        ws_refuse(c, 400, "An upgrade request has no body", "");
        return -EPROTO;
    }
    str ver = http_header_get(req, STR("Sec-WebSocket-Version"));
    if (!str_eq(ver, STR("13"))) {
        ws_refuse(c, 426, "Sec-WebSocket-Version 13 is required",
                  "Sec-WebSocket-Version: 13\r\n");
        return -EPROTO;
    }
    str key = http_header_get(req, STR("Sec-WebSocket-Key"));
    uint8_t raw[32];
    if (key.len != 24 || EVP_DecodeBlock(raw, (const unsigned char *)key.s, 24) != 18) {
        ws_refuse(c, 400, "Sec-WebSocket-Key must be 16 bytes in base64", "");
        return -EPROTO;
    }
    if (wr->subprotocol && !offers_subprotocol(req, wr->subprotocol)) {
        char why[160];
        snprintf(why, sizeof why, "Sec-WebSocket-Protocol must offer '%s'", wr->subprotocol);
        ws_refuse(c, 400, why, "");
        return -EPROTO;
    }
    /* RFC 6455 §10.2: a browser names the page's origin; refuse those not listed */
    str origin = http_header_get(req, STR("Origin"));
    const char *allowed = hs->cfg->http.ws_origins;
    if (origin.s && allowed && *allowed && !http_list_has(str_cstr(allowed), origin)) {
        ws_refuse(c, 403, "This Origin may not open a WebSocket here (http.ws_origins)", "");
        return -EPERM;
    }
    void *cctx = NULL;
    if (!wr->sip && wr->h.on_open) {
        int rc = wr->h.on_open(wr->arg, c->id, req, &c->fi.peer, &cctx);
        if (rc < 0) {
            ws_refuse(c, rc == -EACCES ? 401 : rc == -EPERM ? 403 : 400,
                      rc == -EACCES ? "Authentication required"
                                    : rc == -EPERM ? "Forbidden" : "Refused",
                      "");
            return -EPROTO;
        }
    }
    struct wslay_event_callbacks cb = { ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL,
                                        ws_msg_cb };
    if (wslay_event_context_server_init(&c->ws, &cb, c) != 0) {
        c->ws = NULL;
        if (!wr->sip && wr->h.on_close)
            wr->h.on_close(wr->arg, cctx, c->id, 1011);
        ws_refuse(c, 503, "Out of memory", "");
        return -ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(c->ws, wr->max_message);
    /* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) */
    char kg[24 + sizeof WS_GUID];
    memcpy(kg, key.s, 24);
    memcpy(kg + 24, WS_GUID, sizeof WS_GUID - 1);
    uint8_t sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)kg, 24 + sizeof WS_GUID - 1, sha);
    char accept[32];
    EVP_EncodeBlock((unsigned char *)accept, sha, SHA_DIGEST_LENGTH);
    char hdrs[256];
    snprintf(hdrs, sizeof hdrs,
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s",
             accept, wr->subprotocol ? "Sec-WebSocket-Protocol: " : "",
             wr->subprotocol ? wr->subprotocol : "", wr->subprotocol ? "\r\n" : "");
    c->wr = wr;
    c->ws_ctx = cctx;
    c->st = C_WS;
    c->last_rx = http__now(c->hw);
    CNT(hs, ws_open);
    if (wr->sip)
        CNT(hs, sip_ws_open);
    if (http__write_response(c, 101, NULL, str_cstr(hdrs), NULL, 0, false, true) < 0) {
        net_flow_close(c->hw->nw, c->id, false, "write failed");
        return -EIO;
    }
    if (log_enabled(LOG_DEBUG)) {
        char a[64];
        log_debug("http", "%s: WebSocket %s open (flow %llx)",
                  net_addr_str(&c->fi.peer, a, sizeof a), wr->path, (unsigned long long)c->id);
    }
    return 0;
}

/* ---- frames ---- */

/* See http_int.h. */
ssize_t http__ws_data(struct conn *c, const char *data, size_t len)
{
    c->rx = data;
    c->rxlen = len;
    c->last_rx = http__now(c->hw);
    c->ping_out = false;
    c->in_recv = true;
    int rc = wslay_event_recv(c->ws);
    c->in_recv = false;
    size_t used = len - c->rxlen;
    c->rx = NULL;
    c->rxlen = 0;
    if (rc != 0 || c->gone)
        return -EPROTO;
    if (!wslay_event_get_read_enabled(c->ws))
        used = len; /* closing: the rest is not read */
    ws_flush(c);
    return (ssize_t)used;
}

static int ws_queue(struct conn *c, uint8_t opcode, const void *data, size_t len)
{
    if (c->st != C_WS || !c->ws || !wslay_event_get_write_enabled(c->ws))
        return -ENOTCONN;
    struct wslay_event_msg m = { opcode, data, len };
    int rc = wslay_event_queue_msg(c->ws, &m);
    if (rc != 0)
        return rc == WSLAY_ERR_NOMEM ? -ENOMEM : -ENOTCONN;
    CNT(c->hw->hs, ws_messages_out);
    ws_flush(c);
    return 0;
}

/* Whether bytes are UTF-8 (a SIP message that is not goes in a binary frame). */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t k = b < 0x80 ? 0 : (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2
                                 : (b & 0xf8) == 0xf0 ? 3 : 9;
        if (k == 9 || (k == 1 && b < 0xc2) || i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
        i += k + 1;
    }
    return true;
}

/* See http_int.h. */
int http__ws_send_sip(struct conn *c, const void *data, size_t len)
{
    return ws_queue(c, utf8_ok(data, len) ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, data, len);
}

/* See http_int.h. */
void http__ws_tick(struct conn *c, uint64_t now)
{
    uint64_t every = (uint64_t)c->hw->hs->cfg->http.ws_ping_interval * 1000;
    if (!every || c->st != C_WS)
        return;
    if (c->ping_out) {
        if (now - c->ping_at >= every) {
            atomic_fetch_add_explicit(&c->hw->hs->c.timeouts, 1, memory_order_relaxed);
            c->st = C_DONE;
            net_flow_close(c->hw->nw, c->id, false, "websocket peer does not answer pings");
        }
        return;
    }
    if (now - c->last_rx >= every) {
        c->ping_out = true;
        c->ping_at = now;
        ws_queue(c, WSLAY_PING, "rtcd", 4);
    }
}

/* See http_int.h. */
void http__ws_going_away(struct conn *c)
{
    if (c->st != C_WS || !c->ws || !wslay_event_get_write_enabled(c->ws))
        return;
    static const char why[] = "server stopping";
    wslay_event_queue_close(c->ws, 1001, (const uint8_t *)why, sizeof why - 1);
    ws_flush(c);
}

/* See http_int.h. */
void http__ws_closed(struct conn *c)
{
    struct http_server *hs = c->hw->hs;
    atomic_fetch_sub_explicit(&hs->c.ws_open, 1, memory_order_relaxed);
    if (c->wr && c->wr->sip)
        atomic_fetch_sub_explicit(&hs->c.sip_ws_open, 1, memory_order_relaxed);
    if (c->wr && !c->wr->sip && c->wr->h.on_close)
        c->wr->h.on_close(c->wr->arg, c->ws_ctx, c->id, c->close_code ? c->close_code : 1006);
    wslay_event_context_free(c->ws);
    c->ws = NULL;
}

/* ---- sending from any thread ---- */

struct ws_task {
    struct http_server *hs;
    uint64_t id;
    uint8_t opcode; /* 0xff = close */
    uint16_t code;
    size_t len;
    char data[];
};

static void ws_task_run(struct worker *w, void *arg)
{
    struct ws_task *t = arg;
    struct http_worker *hw = t->hs->workers[worker_index(w)];
    struct conn *c = hw ? map_get_int(hw->conns, t->id) : NULL;
    if (c && c->st == C_WS) {
        size_t backlog = net_flow_backlog(hw->nw, t->id);
        if (t->opcode == 0xff) {
            wslay_event_queue_close(c->ws, t->code, (const uint8_t *)t->data, t->len);
            ws_flush(c);
        } else if (backlog > net_write_queue_limit(hw->nw) / 2) {
            /*
             * The peer reads too slowly: rather than let net close the connection
             * without a word when its queue is full, say why (RFC 6455 §7.4.1 1008)
             * while there is room for the close frame.
             */
            char why[96];
            int n = snprintf(why, sizeof why, "too slow: %zu bytes sent and not read", backlog);
            log_info("http", "websocket %llx closed: its peer reads too slowly (%zu bytes queued)",
                     (unsigned long long)t->id, backlog);
            wslay_event_queue_close(c->ws, 1008, (const uint8_t *)why,
                                    n > 0 ? (size_t)n : 0);
            ws_flush(c);
        } else {
            ws_queue(c, t->opcode, t->data, t->len);
        }
    }
    free(t);
}

static int ws_post(struct http_server *hs, uint64_t id, uint8_t opcode, uint16_t code,
                   const void *data, size_t len)
{
    unsigned owner = net_flow_owner(id);
    if (!id || owner >= hs->nworkers)
        return -ENOTCONN;
    struct worker *w = atomic_load(&hs->wk[owner]);
    if (!w)
        return -ENOTCONN;
    struct ws_task *t = malloc(sizeof *t + len);
    if (!t)
        return -ENOMEM;
    *t = (struct ws_task){ hs, id, opcode, code, len };
    if (len)
        memcpy(t->data, data, len);
    int rc = worker_post(w, ws_task_run, t);
    if (rc < 0) {
        free(t);
        return -ENOTCONN;
    }
    return 0;
}

/* See http.h. */
int http_ws_send(struct http_server *hs, uint64_t ws_id, bool binary, const void *data, size_t len)
{
    return ws_post(hs, ws_id, binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME, 0, data, len);
}

/* See http.h. */
int http_ws_close(struct http_server *hs, uint64_t ws_id, uint16_t code, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    if (n > 123)
        n = 123; /* a close frame's payload is at most 125 bytes */
    return ws_post(hs, ws_id, 0xff, code ? code : 1000, reason, n);
}
