/*
 * proxy — stateful forwarding (RFC 3261 §16): one client transaction per
 * target in parallel, best-response selection (§16.7), CANCEL of the other
 * branches on a 2xx or 6xx, CANCEL passed downstream, timer C, and
 * Record-Route so in-dialog requests come back through us.
 *
 * Record-Route is always doubled: the top entry faces the callee's leg, the
 * second the caller's, and each carries a flow token (";fl=") for its side —
 * the TCP connection id, or the UDP source address — so an in-dialog request
 * is sent to a NAT'd or connection-bound UA on the very flow it uses
 * (the RFC 5626 edge-proxy technique). See docs/proxy.md.
 */
#include "core/core_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/map.h"

/* What a client transaction's user data points to. */
struct cu {
    enum cu_kind kind;
};

struct proxy_ctx;

struct branch {
    struct cu cu;
    struct proxy_ctx *ctx;
    struct txn *ct; /* referenced while the branch lives */
    uint16_t status;
    bool provisional, cancel_wanted, cancel_sent, done;
    bool retired; /* a branch of before a retarget: its answer no longer counts */
};

struct proxy_ctx {
    struct sip_worker *sw;
    struct txn *st; /* referenced */
    struct branch br[CORE_MAX_TARGETS];
    size_t nbr, pending;
    struct buf best; /* the best final so far, our Via removed; empty with best_status = ours */
    uint16_t best_status;
    bool final_sent, invite;
    /* call features (core_forward_ex): retarget on busy / no answer */
    struct fwd_plan plan;
    char *busy, *no_answer;
    uv_timer_t *timer;
    bool no_answer_fired, cancelled;
};

static struct cu cancel_cu = { CU_CANCEL };

/* ---- small helpers ---- */

static int status_rank(uint16_t s)
{
    /* §16.7 step 6: 6xx first, then the lowest class; within 4xx prefer the specific
     * over 408 (a timeout says least). */
    if (s >= 600)
        return 0;
    if (s == 408)
        return 5 * 1000;
    return (s / 100) * 1000 + (s % 100);
}

static void local_addr_text(struct sip_worker *sw, enum transport tp,
                            const struct sockaddr_storage *peer, char *out, size_t cap)
{
    int family = peer->ss_family;
    struct sockaddr_storage toward;
    if (family != AF_UNSPEC && net_local_addr_toward(sw->srv->net, tp, peer, &toward) == 0) {
        net_addr_str(&toward, out, cap); /* a wildcard listener: the address toward peer */
        return;
    }
    const struct sockaddr_storage *ss = net_local_addr(sw->srv->net, tp, family);
    /* a registration flow whose peer address was not kept (no NAT): any family of tp */
    if (!ss && family == AF_UNSPEC)
        ss = net_local_addr(sw->srv->net, tp, AF_INET);
    if (!ss && family == AF_UNSPEC)
        ss = net_local_addr(sw->srv->net, tp, AF_INET6);
    if (!ss)
        ss = net_local_addr(sw->srv->net, tp == TRANSPORT_UDP ? TRANSPORT_TCP : TRANSPORT_UDP,
                            family);
    if (!ss) {
        snprintf(out, cap, "%s", family == AF_INET6 ? "[::1]:5060" : "127.0.0.1:5060");
        return;
    }
    net_addr_str(ss, out, cap);
}

/* "t<hex flow>" for a connection ("l" when it is TLS), "u<hex address>" for a UDP
 * address, "c<hex address>" for a TCP address with no connection yet (reused or opened
 * by address; "s" for TLS). */
static void flow_token(const struct net_dest *d, char *out, size_t cap)
{
    bool tls = d->transport == TRANSPORT_TLS;
    struct buf b = buf_over(out, cap);
    if (d->transport != TRANSPORT_UDP && d->flow_id) {
        buf_append_byte(&b, tls ? 'l' : 't');
        buf_append_hex(&b, d->flow_id, 0);
    } else {
        const uint8_t *a;
        size_t n;
        if (d->addr.ss_family == AF_INET) {
            a = (const uint8_t *)&((const struct sockaddr_in *)&d->addr)->sin_addr;
            n = 4;
        } else {
            a = ((const struct sockaddr_in6 *)&d->addr)->sin6_addr.s6_addr;
            n = 16;
        }
        buf_append_byte(&b, d->transport == TRANSPORT_UDP ? 'u' : tls ? 's' : 'c');
        for (size_t i = 0; i < n; i++)
            buf_append_hex(&b, a[i], 2);
        buf_append_hex(&b, net_addr_port(&d->addr), 4);
    }
    if (buf_nul(&b) < 0 && cap)
        out[0] = '\0'; /* cannot happen with the callers' 48 bytes */
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)str_lower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int flow_token_parse(str tok, struct net_dest *d)
{
    memset(d, 0, sizeof *d);
    if (tok.len < 2)
        return -EINVAL;
    if (tok.s[0] == 't' || tok.s[0] == 'l') {
        uint64_t v = 0;
        for (size_t i = 1; i < tok.len; i++) {
            int h = hexval(tok.s[i]);
            if (h < 0 || i > 16)
                return -EINVAL;
            v = v << 4 | (uint64_t)h;
        }
        d->transport = tok.s[0] == 'l' ? TRANSPORT_TLS : TRANSPORT_TCP;
        d->flow_id = v;
        return 0;
    }
    if ((tok.s[0] != 'u' && tok.s[0] != 'c' && tok.s[0] != 's') ||
        (tok.len != 1 + 12 && tok.len != 1 + 36))
        return -EINVAL;
    uint8_t b[18];
    size_t n = (tok.len - 1) / 2;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(tok.s[1 + 2 * i]), lo = hexval(tok.s[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    d->transport = tok.s[0] == 'u' ? TRANSPORT_UDP : tok.s[0] == 's' ? TRANSPORT_TLS
                                                                    : TRANSPORT_TCP;
    uint16_t port = (uint16_t)(b[n - 2] << 8 | b[n - 1]);
    if (n == 6) {
        struct sockaddr_in *s = (struct sockaddr_in *)&d->addr;
        s->sin_family = AF_INET;
        memcpy(&s->sin_addr, b, 4);
        s->sin_port = htons(port);
        d->addrlen = sizeof *s;
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&d->addr;
        s->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, b, 16);
        s->sin6_port = htons(port);
        d->addrlen = sizeof *s;
    }
    return 0;
}

/* The transport a URI asks for (transport= parameter; sips: means TLS). */
static enum transport uri_transport(const struct sip_uri *u)
{
    if (u->scheme == SIP_URI_SIPS || str_caseeq(u->transport, STR("tls")))
        return TRANSPORT_TLS;
    if (str_caseeq(u->transport, STR("tcp")))
        return TRANSPORT_TCP;
    if (str_caseeq(u->transport, STR("ws")))
        return TRANSPORT_WS;
    if (str_caseeq(u->transport, STR("wss")))
        return TRANSPORT_WSS;
    return TRANSPORT_UDP;
}

int proxy__uri_dest(struct sip_worker *sw, str uri_text, struct net_dest *d)
{
    (void)sw;
    struct sip_uri u;
    if (sip_uri_parse(uri_text, &u) < 0 || (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS))
        return -EINVAL;
    memset(d, 0, sizeof *d);
    d->transport = uri_transport(&u);
    str host = u.maddr.len ? u.maddr : u.host;
    char h[INET6_ADDRSTRLEN + 2];
    if (host.len >= 2 && host.s[0] == '[')
        host = str_sub(host, 1, host.len - 2);
    if (str_copy(h, sizeof h, host) < 0)
        return -EHOSTUNREACH;
    uint16_t port = u.has_port ? u.port : (d->transport == TRANSPORT_TLS ? 5061 : 5060);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&d->addr;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&d->addr;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        d->addrlen = sizeof *s4;
        return 0;
    }
    if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        d->addrlen = sizeof *s6;
        return 0;
    }
    return -EHOSTUNREACH; /* names need DNS (RFC 3263): not served yet */
}

/* Where a target is reached: a flow token of ours, its flow, its registration source,
 * the next Route, or its URI. */
static int target_dest(struct sip_worker *sw, const struct core_target *t,
                       const struct fwd_plan *plan, struct net_dest *d)
{
    if (plan && plan->next_route.len)
        return proxy__uri_dest(sw, plan->next_route, d);
    if (plan && plan->has_flow) {
        *d = plan->flow;
        return 0;
    }
    if (t->path[0]) {
        /* RFC 3327: the first Path entry is the next hop */
        struct sip_addr a;
        str rest;
        if (sip_addr_parse(str_cstr(t->path), &a, &rest, true) == 0)
            return proxy__uri_dest(sw, a.uri, d);
    }
    if (t->flow_id && t->transport != TRANSPORT_UDP && net_flow_exists(sw->srv->net, t->flow_id)) {
        memset(d, 0, sizeof *d);
        d->transport = t->transport;
        d->flow_id = t->flow_id;
        d->addr = t->addr;
        d->addrlen = t->addr.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6);
        return 0;
    }
    if (t->has_addr && t->transport == TRANSPORT_UDP) {
        memset(d, 0, sizeof *d);
        d->transport = TRANSPORT_UDP;
        d->addr = t->addr;
        d->addrlen = t->addr.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                   : sizeof(struct sockaddr_in6);
        return 0;
    }
    return proxy__uri_dest(sw, str_cstr(t->uri), d);
}

/* A branch id with the loop-detection hash of §16.6 step 8 (see loop check in router.c). */
static void make_branch(struct sip_worker *sw, const struct sip_msg *m, char *out, size_t cap)
{
    struct buf b = buf_over(out, cap);
    buf_append(&b, "z9hG4bKr", 8);
    buf_append_hex(&b, core__loop_hash(sw->srv, m), 8);
    buf_append_byte(&b, '.');
    buf_append_str(&b, str_cstr(sw->branch_salt));
    buf_append_hex(&b, ++sw->branch_seq, 0);
    buf_append_str(&b, str_cstr(sw->steer_tag));
    if (buf_nul(&b) < 0 && cap)
        out[0] = '\0'; /* cannot happen with the callers' 64 bytes */
}

/* Copies response m without its top Via value into out. */
static int strip_top_via(const struct sip_msg *m, struct buf *out)
{
    const struct sip_hdr *h = sip_msg_hdr(m, SIP_H_VIA);
    if (!h)
        return -EPROTO;
    buf_reset(out);
    const char *line = m->buf + h->off, *line_end = line + h->len;
    const char *vs = m->via.raw.s, *ve = vs + m->via.raw.len;
    int rc = buf_append(out, m->buf, (size_t)(line - m->buf));
    /* one value on the line: drop the line; else drop "value," */
    const char *p = ve;
    while (p < line_end && (*p == ' ' || *p == '\t'))
        p++;
    if (p < line_end && *p == ',') {
        rc = rc ? rc : buf_append(out, line, (size_t)(vs - line));
        p++;
        while (p < line_end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
        rc = rc ? rc : buf_append(out, p, (size_t)(line_end - p));
    }
    rc = rc ? rc : buf_append(out, line_end, m->len - (size_t)(line_end - m->buf));
    return rc;
}

/*
 * The response m as it goes upstream on server transaction req: its Via stack is the
 * request's (RFC 3261 §16.7 step 9 says ours is removed and the rest must match; a peer
 * that answers with the wrong Vias — e.g. a 487 copying the CANCEL's — is mended).
 */
static int upstream_response(const struct sip_msg *m, const struct sip_msg *req, struct buf *out)
{
    buf_reset(out);
    /* status line: up to the first header */
    size_t first = m->nhdrs ? m->hdrs[0].off : m->headers_end;
    int rc = buf_append(out, m->buf, first);
    for (const struct sip_hdr *h = sip_msg_hdr(req, SIP_H_VIA); h && rc == 0;
         h = sip_msg_hdr_next(req, h))
        rc = buf_append(out, req->buf + h->off, h->len);
    for (size_t i = 0; i < m->nhdrs && rc == 0; i++)
        if (m->hdrs[i].id != SIP_H_VIA)
            rc = buf_append(out, m->buf + m->hdrs[i].off, m->hdrs[i].len);
    if (rc == 0)
        rc = buf_append(out, m->buf + m->headers_end, m->len - m->headers_end);
    return rc;
}

/* ---- context lifetime ---- */

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void stop_timer(struct proxy_ctx *c)
{
    if (!c->timer)
        return;
    uv_timer_stop(c->timer);
    c->timer->data = NULL;
    uv_close((uv_handle_t *)c->timer, timer_closed);
    c->timer = NULL;
}

static void ctx_free(struct proxy_ctx *c)
{
    stop_timer(c);
    free(c->busy);
    free(c->no_answer);
    buf_free(&c->best);
    free(c);
}

/* Frees the context when neither the server transaction nor a branch needs it. */
static void ctx_maybe_free(struct proxy_ctx *c)
{
    if (c->st)
        return;
    for (size_t i = 0; i < c->nbr; i++)
        if (c->br[i].ct)
            return;
    ctx_free(c);
}

/*
 * A non-INVITE request whose final answer has gone upstream, and all of whose
 * branches have answered, needs its context no more: its transactions absorb
 * on their own whatever may still come (the request again, a final again) until
 * their Timers J and K. Letting go here gives the request copy and the context
 * back after milliseconds instead of 32 s. Returns whether c is gone.
 */
static bool ctx_settle(struct proxy_ctx *c)
{
    if (c->invite || !c->final_sent || c->pending)
        return false;
    for (size_t i = 0; i < c->nbr; i++) {
        struct branch *b = &c->br[i];
        if (b->ct) {
            txn_set_user_data(b->ct, NULL);
            txn_unref(b->ct);
            b->ct = NULL;
        }
    }
    if (c->st) {
        txn_set_user_data(c->st, NULL);
        txn_unref(c->st);
        c->st = NULL;
    }
    ctx_free(c);
    return true;
}

/* ---- answering upstream ---- */

static void send_upstream(struct proxy_ctx *c, uint16_t status, str bytes)
{
    if (!c->st)
        return;
    txn_respond(c->st, status, bytes.s, bytes.len, core__now(c->sw));
}

static bool retarget(struct proxy_ctx *c, const char *uri, uint16_t cause);

static void send_best(struct proxy_ctx *c)
{
    if (c->final_sent || !c->st)
        return;
    /* call forwarding on no answer / busy: a new branch instead of the answer */
    if (c->invite && !c->cancelled) {
        if (c->no_answer_fired && c->no_answer && retarget(c, c->no_answer, 408))
            return;
        if (c->busy && (c->best_status == 486 || c->best_status == 600) &&
            retarget(c, c->busy, 486))
            return;
    }
    c->final_sent = true;
    stop_timer(c);
    struct sip_worker *sw = c->sw;
    if (c->best.len) {
        send_upstream(c, c->best_status, buf_str(&c->best));
        return;
    }
    /* a status generated here (timeouts, transport errors, nothing usable) */
    struct core_req r = { .sw = sw, .st = c->st, .m = txn_request(c->st),
                          .rx = txn_source(c->st), .now = core__now(sw) };
    uint16_t s = c->best_status ? c->best_status : 408;
    str reason = s == 408 ? STR("Request Timeout: no answer from the callee")
                          : STR("Service Unavailable: the callee cannot be reached");
    if (s == 503)
        s = 480, reason = STR("Temporarily Unavailable: the callee cannot be reached");
    core_respond(&r, s, reason, NULL, 0, STR_NULL, STR_NULL);
}

/* ---- CANCEL downstream ---- */

static void send_cancel(struct proxy_ctx *c, struct branch *b)
{
    if (b->cancel_sent || b->done || !b->ct)
        return;
    if (!b->provisional) {
        b->cancel_wanted = true; /* RFC 3261 §9.1: wait for a provisional */
        return;
    }
    b->cancel_sent = true;
    struct sip_worker *sw = c->sw;
    str sent = txn_sent(b->ct);
    struct sip_hdr hdrs[128];
    struct sip_msg inv;
    sip_msg_init(&inv, hdrs, 128);
    struct sip_limits lim = sw->srv->lim;
    if (lim.max_headers > 128)
        lim.max_headers = 128;
    if (sip_msg_parse(&inv, sent.s, sent.len, &lim, SIP_PARSE_STREAM) <= 0)
        return;
    struct sip_hdr_add routes[16];
    size_t nr = 0;
    for (const struct sip_hdr *h = sip_msg_hdr(&inv, SIP_H_ROUTE); h && nr < 16;
         h = sip_msg_hdr_next(&inv, h))
        routes[nr++] = (struct sip_hdr_add){ STR("Route"), h->value };
    const struct sip_hdr *from = sip_msg_hdr(&inv, SIP_H_FROM), *to = sip_msg_hdr(&inv, SIP_H_TO);
    struct sip_req_parts p = {
        .method = SIP_M_CANCEL,
        .ruri = inv.ruri_raw,
        .via = inv.via.raw,
        .from = from ? from->value : STR_NULL,
        .to = to ? to->value : STR_NULL,
        .call_id = inv.call_id,
        .cseq = inv.cseq.num,
        .max_forwards = 70,
        .extra = routes,
        .nextra = nr,
    };
    struct buf out;
    buf_init(&out, 16384);
    struct txn *ct;
    if (sip_msg_build_request(&p, &out) == 0)
        txn_client_new(sw->tt, &ct, txn_dest(b->ct), SIP_M_CANCEL, inv.via.branch,
                       (const char *)out.data, out.len, &cancel_cu, core__now(sw));
    buf_free(&out);
}

static void cancel_others(struct proxy_ctx *c, struct branch *except)
{
    for (size_t i = 0; i < c->nbr; i++)
        if (&c->br[i] != except)
            send_cancel(c, &c->br[i]);
}

void proxy__cancel(struct sip_worker *sw, struct txn *invite_st)
{
    (void)sw;
    struct proxy_ctx *c = txn_user_data(invite_st);
    if (!c)
        return;
    c->cancelled = true;
    cancel_others(c, NULL);
}

/* ---- branch results ---- */

static void branch_final(struct proxy_ctx *c, struct branch *b, uint16_t status, str bytes)
{
    if (b->done)
        return;
    b->done = true;
    b->status = status;
    c->pending--;
    if (!c->final_sent && !b->retired &&
        (!c->best_status || status_rank(status) < status_rank(c->best_status))) {
        c->best_status = status;
        buf_reset(&c->best);
        if (bytes.len)
            buf_append_str(&c->best, bytes);
    }
    if (c->invite && status >= 600 && !c->final_sent) {
        cancel_others(c, b);
        send_best(c);
        return;
    }
    if (c->pending == 0)
        send_best(c);
}

void proxy__response(struct sip_worker *sw, struct txn *ct, const struct sip_msg *m,
                     const struct net_rx *rx)
{
    (void)rx;
    if (uac__response(sw, ct, m))
        return;
    struct cu *cu = txn_user_data(ct);
    if (!cu || cu->kind != CU_BRANCH)
        return; /* responses to our CANCELs */
    struct branch *b = (struct branch *)cu;
    struct proxy_ctx *c = b->ctx;
    uint16_t status = m->status;
    if (status == 100)
        return;
    const struct sip_msg *req = c->st ? txn_request(c->st) : NULL;
    if (!req || upstream_response(m, req, &sw->out) < 0)
        return; /* nobody upstream any more, or a non-INVITE already answered */
    str bytes = buf_str(&sw->out);
    if (status < 200) {
        b->provisional = true;
        if (b->cancel_wanted)
            send_cancel(c, b);
        if (!c->final_sent)
            send_upstream(c, status, bytes);
        return;
    }
    if (status < 300) {
        /* every 2xx goes upstream, also a retransmission or another fork's (§16.7 step 5) */
        bool first = !b->done;
        if (first) {
            b->done = true;
            b->status = status;
            c->pending--;
        }
        if (!c->final_sent || c->invite)
            send_upstream(c, status, bytes);
        c->final_sent = true;
        if (c->invite && first)
            cancel_others(c, b);
        stop_timer(c);
        ctx_settle(c);
        return;
    }
    /* §16.7 step 6: a 503 is passed on as 500 */
    if (status == 503) {
        buf_reset(&c->best);
        branch_final(c, b, 500, STR_NULL);
    } else {
        branch_final(c, b, status, bytes);
    }
    ctx_settle(c);
}

void proxy__timeout(struct sip_worker *sw, struct txn *ct, bool transport_error)
{
    if (uac__timeout(sw, ct, transport_error))
        return;
    struct cu *cu = txn_user_data(ct);
    if (!cu || cu->kind != CU_BRANCH)
        return;
    struct branch *b = (struct branch *)cu;
    struct proxy_ctx *c = b->ctx;
    if (b->provisional && c->invite)
        send_cancel(c, b); /* timer C */
    branch_final(c, b, transport_error ? 503 : 408, STR_NULL);
    ctx_settle(c);
}

void proxy__client_terminated(struct sip_worker *sw, struct txn *ct)
{
    if (uac__terminated(sw, ct))
        return;
    struct cu *cu = txn_user_data(ct);
    if (!cu || cu->kind != CU_BRANCH)
        return;
    struct branch *b = (struct branch *)cu;
    struct proxy_ctx *c = b->ctx;
    if (!b->done)
        branch_final(c, b, 408, STR_NULL);
    b->ct = NULL;
    txn_unref(ct);
    if (!ctx_settle(c))
        ctx_maybe_free(c);
}

void proxy__server_terminated(struct sip_worker *sw, struct txn *st)
{
    (void)sw;
    struct proxy_ctx *c = txn_user_data(st);
    if (!c)
        return;
    txn_set_user_data(st, NULL);
    c->st = NULL;
    txn_unref(st);
    ctx_maybe_free(c);
}

/* ---- forwarding ---- */

/* One Record-Route entry facing a side: a sips: URI for a TLS side of a sips: request
 * (RFC 3261 §16.6 step 4), else sip: with the transport. */
static int rr_entry(char *out, size_t cap, const char *addr, enum transport tp, const char *tok,
                    const char *steer, bool sips)
{
    struct buf b = buf_over(out, cap);
    if (sips && tp == TRANSPORT_TLS) {
        buf_append(&b, "<sips:", 6);
        buf_append_str(&b, str_cstr(addr));
    } else {
        buf_append(&b, "<sip:", 5);
        buf_append_str(&b, str_cstr(addr));
        buf_append(&b, ";transport=", 11);
        buf_append_str(&b, str_cstr(transport_name(tp)));
    }
    buf_append(&b, ";lr;fl=", 7);
    buf_append_str(&b, str_cstr(tok));
    if (tp == TRANSPORT_UDP && steer[0]) {
        /* a parameter of its own, so that in-dialog requests arrive on this worker */
        buf_append_byte(&b, ';');
        buf_append_str(&b, str_cstr(steer));
    }
    if (buf_append_byte(&b, '>') < 0 || buf_nul(&b) < 0)
        return -ENOBUFS;
    return (int)b.len;
}

/* The Record-Route pair for a request from in_d's side to out_d's side. */
static int record_route(struct sip_worker *sw, const struct net_dest *in_d,
                        const struct net_dest *out_d, bool sips, char *out, size_t cap)
{
    char a_out[64], a_in[64], t_out[48], t_in[48];
    local_addr_text(sw, out_d->transport, &out_d->addr, a_out, sizeof a_out);
    local_addr_text(sw, in_d->transport, &in_d->addr, a_in, sizeof a_in);
    flow_token(out_d, t_out, sizeof t_out);
    flow_token(in_d, t_in, sizeof t_in);
    int n = rr_entry(out, cap, a_out, out_d->transport, t_out, sw->steer_tag, sips);
    if (n < 0 || (size_t)n + 2 >= cap)
        return -ENOBUFS;
    memcpy(out + n, ", ", 2);
    return rr_entry(out + n + 2, cap - (size_t)n - 2, a_in, in_d->transport, t_in,
                    sw->steer_tag, sips) < 0
               ? -ENOBUFS
               : 0;
}

int proxy__via_value(struct sip_worker *sw, const struct net_dest *d, const char *branch,
                     char *out, size_t cap)
{
    char a[64];
    local_addr_text(sw, d->transport, &d->addr, a, sizeof a);
    static const char *const up[] = { "UDP", "TCP", "TLS", "WS", "WSS" };
    struct buf b = buf_over(out, cap);
    buf_append(&b, "SIP/2.0/", 8);
    buf_append_str(&b, str_cstr(up[d->transport]));
    buf_append_byte(&b, ' ');
    buf_append_str(&b, str_cstr(a));
    buf_append(&b, ";branch=", 8);
    buf_append_str(&b, str_cstr(branch));
    if (buf_append(&b, ";rport", 6) < 0 || buf_nul(&b) < 0)
        return -ENOBUFS;
    return 0;
}

/* Whether every Proxy-Authorization is for our realm: they stop here (RFC 3261 §22.3). */
static bool consume_credentials(struct sip_worker *sw, const struct sip_msg *m)
{
    const struct sip_hdr *h = sip_msg_hdr(m, SIP_H_PROXY_AUTHORIZATION);
    if (!h)
        return false;
    str realm = core_realm(sw->srv);
    for (; h; h = sip_msg_hdr_next(m, h)) {
        const char *p = NULL;
        /* realm="..." inside the value */
        ssize_t at = str_find(h->value, STR("realm=\""));
        if (at < 0)
            return false;
        p = h->value.s + at + 7;
        str rest = str_make(p, h->value.len - (size_t)at - 7);
        if (!str_has_prefix(rest, realm) || rest.len <= realm.len || rest.s[realm.len] != '"')
            return false;
    }
    return true;
}

/* Sends one branch of c's request to t: 0, or a negative errno (nothing created). */
static int add_branch(struct proxy_ctx *c, const struct core_target *t, const struct fwd_plan *plan,
                      str history, struct buf *req)
{
    struct sip_worker *sw = c->sw;
    const struct sip_msg *m = txn_request(c->st);
    const struct net_rx *rx = txn_source(c->st);
    bool rr = plan->record_route;
    if (c->nbr >= CORE_MAX_TARGETS)
        return -ENOSPC;
    struct net_dest in_d = { .transport = rx->transport, .addr = rx->src,
                             .addrlen = rx->srclen, .flow_id = rx->flow_id };
    struct net_dest d;
    if (target_dest(sw, t, plan, &d) < 0)
        return -EHOSTUNREACH;
    /* RFC 3261 §26.2: a SIPS request goes on over TLS (or secure WebSocket) only */
    if (m->ruri.scheme == SIP_URI_SIPS && d.transport != TRANSPORT_TLS &&
        d.transport != TRANSPORT_WSS) {
        log_debug("proxy", "sips: branch to %s skipped: not reached over TLS", t->uri);
        return -EHOSTUNREACH;
    }
    char branch[64], via[160], rrv[384];
    make_branch(sw, m, branch, sizeof branch);
    if (proxy__via_value(sw, &d, branch, via, sizeof via) < 0 ||
        (rr && record_route(sw, &in_d, &d, m->ruri.scheme == SIP_URI_SIPS, rrv,
                            sizeof rrv) < 0))
        return -ENOBUFS;
    struct sip_hdr_edit edits[4];
    size_t ne = 0;
    if (consume_credentials(sw, m))
        edits[ne++] = (struct sip_hdr_edit){ SIP_EDIT_REMOVE, SIP_H_PROXY_AUTHORIZATION,
                                             STR_NULL, STR_NULL };
    if (plan->rewrite_routes)
        edits[ne++] = (struct sip_hdr_edit){ plan->routes.len ? SIP_EDIT_REPLACE
                                                              : SIP_EDIT_REMOVE,
                                             SIP_H_ROUTE, STR_NULL, plan->routes };
    if (t->path[0])
        edits[ne++] = (struct sip_hdr_edit){ SIP_EDIT_ADD_TOP, SIP_H_ROUTE, STR_NULL,
                                             str_cstr(t->path) };
    if (history.len)
        edits[ne++] = (struct sip_hdr_edit){ SIP_EDIT_ADD, SIP_H_OTHER, STR("History-Info"),
                                             history };
    struct sip_fwd f = {
        .ruri = str_cstr(t->uri),
        .via = str_cstr(via),
        .record_route = rr ? str_cstr(rrv) : STR_NULL,
        .dec_max_forwards = true,
        .edits = edits,
        .nedits = ne,
    };
    buf_reset(req);
    int rc = sip_msg_forward(m, &f, req);
    if (rc < 0)
        return rc;
    struct branch *b = &c->br[c->nbr];
    memset(b, 0, sizeof *b);
    b->cu.kind = CU_BRANCH;
    b->ctx = c;
    struct txn *ct;
    rc = txn_client_new(sw->tt, &ct, &d, m->method, str_cstr(branch), (const char *)req->data,
                        req->len, b, core__now(sw));
    if (rc < 0) {
        if (log_enabled(LOG_DEBUG))
            log_debug("proxy", "branch to %s not sent: %s", t->uri, strerror(-rc));
        return rc;
    }
    txn_ref(ct);
    b->ct = ct;
    c->nbr++;
    c->pending++;
    return 0;
}

/* ---- call forwarding (retargeting) ---- */

/* History-Info entries the request already carries (RFC 7044). */
static size_t history_count(const struct sip_msg *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nhdrs; i++) {
        if (m->hdrs[i].id != SIP_H_OTHER || !str_caseeq(m->hdrs[i].name, STR("History-Info")))
            continue;
        n++;
        int depth = 0;
        str v = m->hdrs[i].value;
        for (size_t k = 0; k < v.len; k++) {
            if (v.s[k] == '<')
                depth++;
            else if (v.s[k] == '>')
                depth--;
            else if (v.s[k] == ',' && depth == 0)
                n++;
        }
    }
    return n;
}

/*
 * The History-Info to add when m is retargeted to uri for cause (RFC 7044 with the
 * RFC 4458 cause): the original Request-URI as index 1 when the request has no entry
 * yet, then the new target one level deeper. Returns the entries already there, or
 * -ENOBUFS.
 */
static ssize_t history_value(const struct sip_msg *m, str uri, uint16_t cause, char *out,
                             size_t cap)
{
    size_t k = history_count(m);
    char index[2 * CORE_MAX_FORWARD_HOPS + 16] = "1";
    size_t depth = k ? k : 1;
    if (depth > CORE_MAX_FORWARD_HOPS)
        return -ELOOP;
    for (size_t i = 0; i < depth; i++)
        memcpy(index + 1 + 2 * i, ".1", 3); /* depth <= MAX_HOPS: fits */
    int n;
    if (k == 0)
        n = snprintf(out, cap, "<%.*s>;index=1, <%.*s;cause=%u>;index=%s;mp=1",
                     STR_FMT(m->ruri_raw), STR_FMT(uri), cause, index);
    else
        n = snprintf(out, cap, "<%.*s;cause=%u>;index=%s;mp=1", STR_FMT(uri), cause, index);
    return n > 0 && (size_t)n < cap ? (ssize_t)k : -ENOBUFS;
}

/* Where a forwarding target is: ourselves for a URI of our domains (the request spirals
 * back through the router, so the target user's own rules apply), else its address. */
static int retarget_target(struct sip_worker *sw, str uri, struct core_target *t)
{
    memset(t, 0, sizeof *t);
    if (str_copy(t->uri, sizeof t->uri, uri) < 0)
        return -EINVAL;
    struct sip_uri u;
    if (sip_uri_parse(uri, &u) < 0 || (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS))
        return -EINVAL;
    if (!core__is_local_host(sw->srv, u.host, u.has_port ? u.port : 0))
        return 0; /* by its URI (IP literals; names need DNS) */
    const struct sockaddr_storage *ss = net_local_addr(sw->srv->net, TRANSPORT_UDP, AF_INET);
    if (!ss)
        ss = net_local_addr(sw->srv->net, TRANSPORT_UDP, AF_INET6);
    if (!ss)
        return -EHOSTUNREACH;
    t->transport = TRANSPORT_UDP;
    t->addr = *ss;
    t->has_addr = true;
    if (net_addr_is_wildcard(ss) && ss->ss_family == AF_INET) /* we are reached on loopback */
        ((struct sockaddr_in *)&t->addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (net_addr_is_wildcard(ss) && ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&t->addr)->sin6_addr = in6addr_loopback;
    return 0;
}

/* Replaces c's branches by one to uri (they are cancelled or done). true when sent. */
static bool retarget(struct proxy_ctx *c, const char *uri, uint16_t cause)
{
    if (!c->st)
        return false;
    const struct sip_msg *m = txn_request(c->st);
    char hist[1400];
    struct core_target t;
    if (history_value(m, str_cstr(uri), cause, hist, sizeof hist) < 0 ||
        retarget_target(c->sw, str_cstr(uri), &t) < 0) {
        log_info("proxy", "call forwarding to %s not done (hop limit or unreachable)", uri);
        return false;
    }
    struct buf req;
    buf_init(&req, (size_t)c->sw->srv->lim.max_message_size + 4096);
    for (size_t i = 0; i < c->nbr; i++)
        c->br[i].retired = true;
    struct fwd_plan plan = c->plan;
    plan.next_route = STR_NULL;
    plan.has_flow = false;
    plan.routes = STR_NULL; /* its bytes were in the first message's arena; for a local
                               user nothing is left after our own Route entries anyway */
    int rc = add_branch(c, &t, &plan, str_cstr(hist), &req);
    buf_free(&req);
    if (rc < 0)
        return false;
    log_info("proxy", "call forwarded to %s (cause %u)", uri, cause);
    /* one forwarding per visit: the target's own rules apply where it is routed */
    free(c->busy);
    free(c->no_answer);
    c->busy = c->no_answer = NULL;
    c->no_answer_fired = false;
    stop_timer(c);
    c->best_status = 0;
    buf_reset(&c->best);
    core__rearm(c->sw);
    return true;
}

static void no_answer_fired(uv_timer_t *h)
{
    struct proxy_ctx *c = h->data;
    if (!c || c->final_sent || !c->st)
        return;
    c->no_answer_fired = true;
    cancel_others(c, NULL); /* their 487s end the branches; send_best then retargets */
    /* branches that never sent a provisional cannot be cancelled: done without them */
    bool waiting = false;
    for (size_t i = 0; i < c->nbr; i++)
        if (!c->br[i].done && !c->br[i].cancel_wanted)
            waiting = true;
    if (!waiting && c->pending)
        send_best(c);
}

static int forward(struct sip_worker *sw, struct txn *st, const struct core_target *targets,
                   size_t n, const struct fwd_plan *plan, const struct core_fwd_opts *o,
                   str history)
{
    const struct sip_msg *m = txn_request(st);
    if (n == 0)
        return -ENOENT;
    if (n > CORE_MAX_TARGETS)
        n = CORE_MAX_TARGETS;
    struct proxy_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->sw = sw;
    c->st = st; /* borrowed while the branches are built; referenced below */
    c->invite = m->method == SIP_M_INVITE;
    c->plan = *plan;
    buf_init(&c->best, (size_t)sw->srv->lim.max_message_size * 2);
    struct buf req;
    buf_init(&req, (size_t)sw->srv->lim.max_message_size + 4096);
    for (size_t i = 0; i < n; i++)
        add_branch(c, &targets[i], plan, history, &req);
    buf_free(&req);
    if (c->nbr == 0) {
        c->st = NULL;
        ctx_free(c);
        return -EHOSTUNREACH;
    }
    if (o && c->invite) {
        if (o->busy && *o->busy)
            c->busy = strdup(o->busy);
        if (o->no_answer && *o->no_answer && o->no_answer_ms) {
            c->no_answer = strdup(o->no_answer);
            c->timer = malloc(sizeof *c->timer);
            if (c->timer) {
                uv_timer_init(worker_loop(sw->w), c->timer);
                c->timer->data = c;
                uv_timer_start(c->timer, no_answer_fired, o->no_answer_ms, 0);
            }
        }
    }
    txn_ref(st);
    txn_set_user_data(st, c);
    core__rearm(sw);
    return 0;
}

int proxy__forward(struct sip_worker *sw, struct txn *st, const struct core_target *targets,
                   size_t n, const struct fwd_plan *plan)
{
    return forward(sw, st, targets, n, plan, NULL, STR_NULL);
}

static int local_plan(struct core_req *r, struct fwd_plan *plan)
{
    int rc = core__route_plan(r->sw, r->m, r->rx, plan);
    if (rc < 0)
        return rc;
    /* the targets are our users' devices: a remaining Route set does not apply */
    plan->next_route = STR_NULL;
    plan->has_flow = false;
    bool dialog = r->m->method == SIP_M_INVITE || r->m->method == SIP_M_SUBSCRIBE ||
                  r->m->method == SIP_M_REFER;
    plan->record_route = dialog && r->m->to.tag.len == 0;
    return 0;
}

int core_forward(struct core_req *r, const struct core_target *targets, size_t n)
{
    return core_forward_ex(r, targets, n, NULL);
}

int core_forward_ex(struct core_req *r, const struct core_target *targets, size_t n,
                    const struct core_fwd_opts *o)
{
    struct fwd_plan plan;
    int rc = local_plan(r, &plan);
    if (rc < 0)
        return rc;
    return forward(r->sw, r->st, targets, n, &plan, o, STR_NULL);
}

int core_retarget(struct core_req *r, str uri, uint16_t cause)
{
    struct fwd_plan plan;
    int rc = local_plan(r, &plan);
    if (rc < 0)
        return rc;
    char hist[1400];
    struct core_target t;
    ssize_t k = history_value(r->m, uri, cause, hist, sizeof hist);
    if (k < 0)
        return (int)k;
    rc = retarget_target(r->sw, uri, &t);
    if (rc < 0)
        return rc;
    rc = forward(r->sw, r->st, &t, 1, &plan, NULL, str_cstr(hist));
    if (rc == 0)
        log_info("proxy", "call for %.*s forwarded to %.*s (cause %u)", STR_FMT(r->user),
                 STR_FMT(uri), cause);
    return rc;
}

int proxy__target_dest(struct sip_worker *sw, const struct core_target *t, struct net_dest *d)
{
    return target_dest(sw, t, NULL, d);
}

/* ---- in-dialog and stateless ---- */

int core__flow_from_route(str route_uri_params, struct net_dest *d)
{
    /* find ";fl=" in the parameters */
    for (size_t i = 0; i + 3 <= route_uri_params.len; i++) {
        if ((i == 0 || route_uri_params.s[i - 1] == ';') &&
            str_caseeq(str_make(route_uri_params.s + i, 3), STR("fl="))) {
            size_t e = i + 3;
            while (e < route_uri_params.len && route_uri_params.s[e] != ';')
                e++;
            return flow_token_parse(str_sub(route_uri_params, i + 3, e - i - 3), d);
        }
    }
    return -ENOENT;
}

int proxy__forward_stateless(struct sip_worker *sw, const struct sip_msg *m,
                             const struct core_target *t, const struct fwd_plan *plan)
{
    struct net_dest d;
    if (target_dest(sw, t, plan, &d) < 0)
        return -EHOSTUNREACH;
    /* a branch that is the same for every retransmission of this request */
    char branch[64], via[160];
    uint8_t key[16] = { 0 };
    snprintf(branch, sizeof branch, "z9hG4bKs%016llx",
             (unsigned long long)map_siphash(key, m->via.branch.s, m->via.branch.len, false));
    if (proxy__via_value(sw, &d, branch, via, sizeof via) < 0)
        return -ENOBUFS;
    struct sip_hdr_edit edit = { plan->routes.len ? SIP_EDIT_REPLACE : SIP_EDIT_REMOVE,
                                 SIP_H_ROUTE, STR_NULL, plan->routes };
    struct sip_fwd f = {
        .ruri = t->uri[0] ? str_cstr(t->uri) : STR_NULL,
        .via = str_cstr(via),
        .dec_max_forwards = true,
        .edits = plan->rewrite_routes ? &edit : NULL,
        .nedits = plan->rewrite_routes ? 1 : 0,
    };
    buf_reset(&sw->out);
    int rc = sip_msg_forward(m, &f, &sw->out);
    if (rc < 0)
        return rc;
    return net_send(sw->nw, &d, sw->out.data, sw->out.len);
}

int proxy__strip_and_send_upstream(struct sip_worker *sw, const struct sip_msg *m,
                                   const struct sip_via *v)
{
    struct net_dest d = { 0 };
    if (str_caseeq(v->transport, STR("TCP")))
        d.transport = TRANSPORT_TCP;
    else if (str_caseeq(v->transport, STR("UDP")))
        d.transport = TRANSPORT_UDP;
    else if (str_caseeq(v->transport, STR("TLS")))
        d.transport = TRANSPORT_TLS;
    else
        return -EAFNOSUPPORT;
    char uri[300];
    str host = v->received.len ? v->received : v->host;
    uint16_t port = v->has_rport_value ? v->rport_value
                    : v->has_port      ? v->port
                    : d.transport == TRANSPORT_TLS ? 5061 : 5060;
    bool v6 = str_find_char(host, ':') >= 0 && host.s[0] != '[';
    snprintf(uri, sizeof uri, "sip:%s%.*s%s:%u", v6 ? "[" : "", STR_FMT(host), v6 ? "]" : "",
             port);
    enum transport tp = d.transport;
    if (proxy__uri_dest(sw, str_cstr(uri), &d) < 0)
        return -EHOSTUNREACH;
    d.transport = tp;
    if (strip_top_via(m, &sw->out) < 0)
        return -EPROTO;
    return net_send(sw->nw, &d, sw->out.data, sw->out.len);
}
