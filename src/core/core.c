/*
 * core — the SIP server on the worker loops: receive, parse, hand over to the
 * Call-ID's worker, patch the top Via (RFC 3581), feed the transaction layer,
 * keep its timer armed.
 */
#include "core/core_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/map.h"
#include "base/random.h"
#include "core/throttle.h"
#include "sip/digest.h"

#define CNT(s, f) atomic_fetch_add_explicit(&(s)->c.f, 1, memory_order_relaxed)

uint64_t core__now(struct sip_worker *sw)
{
    return uv_now(worker_loop(sw->w));
}

str core_realm(const struct sip_server *s)
{
    return s->ndomains ? s->domains[0] : STR("localhost");
}

struct sip_worker *core_sip_worker(struct sip_server *s, struct worker *w)
{
    return w ? s->workers[worker_index(w)] : NULL;
}

struct sip_server *core_server(const struct sip_worker *sw)
{
    return sw->srv;
}

void sip_server_set_services(struct sip_server *s, const struct core_services *svc)
{
    s->svc = *svc;
}

/* ---- addresses ---- */

bool core__is_our_domain(struct sip_server *s, str host)
{
    for (size_t i = 0; i < s->ndomains; i++)
        if (str_caseeq(host, s->domains[i]))
            return true;
    return false;
}

bool core__is_local_host(struct sip_server *s, str host, uint16_t port)
{
    if (core__is_our_domain(s, host))
        return true;
    char h[INET6_ADDRSTRLEN + 2];
    if (host.len >= 2 && host.s[0] == '[')
        host = str_sub(host, 1, host.len - 2);
    if (str_copy(h, sizeof h, host) < 0)
        return false;
    uint8_t a[16];
    int fam = strchr(h, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, h, a) != 1)
        return false;
    const struct listen_list *l = &s->cfg->sip.listen;
    for (size_t i = 0; i < l->n; i++) {
        const struct sockaddr_storage *ss = &l->v[i].addr;
        if (ss->ss_family != fam || (port && port != net_addr_port(ss)))
            continue;
        const uint8_t *la = fam == AF_INET
                                ? (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr
                                : ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
        static const uint8_t any[16];
        if (memcmp(la, a, fam == AF_INET ? 4 : 16) == 0 ||
            memcmp(la, any, fam == AF_INET ? 4 : 16) == 0)
            return true;
    }
    return false;
}

bool core_canonical_domain(struct sip_worker *sw, str host, str *out)
{
    struct sip_server *s = sw->srv;
    for (size_t i = 0; i < s->ndomains; i++) {
        if (str_caseeq(host, s->domains[i])) {
            *out = s->domains[i];
            return true;
        }
    }
    if (!core__is_local_host(s, host, 0))
        return false;
    *out = core_realm(s);
    return true;
}

bool core_is_local_uri(struct sip_worker *sw, str uri)
{
    struct sip_uri u;
    if (sip_uri_parse(uri, &u) < 0 || (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS))
        return false;
    return core__is_local_host(sw->srv, u.host, u.has_port ? u.port : 0);
}

/* ---- timers ---- */

static void on_tick(uv_timer_t *t)
{
    struct sip_worker *sw = t->data;
    txn_table_tick(sw->tt, core__now(sw));
    core__rearm(sw);
}

void core__rearm(struct sip_worker *sw)
{
    uint64_t next = txn_table_next(sw->tt);
    if (next == UINT64_MAX) {
        uv_timer_stop(&sw->tick);
        return;
    }
    uint64_t now = core__now(sw);
    uint64_t due = uv_timer_get_due_in(&sw->tick);
    uint64_t delay = next > now ? next - now : 0;
    if (uv_is_active((uv_handle_t *)&sw->tick) && due <= delay)
        return;
    uv_timer_start(&sw->tick, on_tick, delay, 0);
}

/* ---- sending ---- */

static int tu_send(void *ctx, const struct net_dest *d, const char *data, size_t len)
{
    struct sip_worker *sw = ctx;
    int rc = net_send(sw->nw, d, data, len);
    if (rc < 0 && log_enabled(LOG_DEBUG)) {
        char a[64];
        log_debug("core", "send to %s:%s (flow %llx) failed: %s", transport_name(d->transport),
                  net_addr_str(&d->addr, a, sizeof a), (unsigned long long)d->flow_id,
                  strerror(-rc));
    }
    return rc;
}

void core__reply_stateless(struct sip_worker *sw, const struct sip_msg *m,
                           const struct net_rx *rx, uint16_t status, str reason)
{
    if (!m->is_request || m->method == SIP_M_ACK)
        return;
    if (!sip_msg_hdr(m, SIP_H_VIA))
        return; /* nothing to route an answer by */
    buf_reset(&sw->out);
    if (sip_msg_respond(m, status, reason, STR("rtcd-sl"), NULL, 0, STR_NULL, STR_NULL,
                        &sw->out) < 0)
        return;
    struct net_dest d = { .transport = rx->transport, .addr = rx->src, .addrlen = rx->srclen,
                          .flow_id = rx->flow_id };
    tu_send(sw, &d, (const char *)sw->out.data, sw->out.len);
}

void core_to_tag(const struct core_req *r, char *out, size_t cap)
{
    /* a To tag that is the same for every response of this transaction: the worker's
     * salt and 40 bits of the transaction's address (without one, of a hash of the
     * top Via's branch, the same for a retransmission), in hex (no printf: hot path) */
    static const char hex[] = "0123456789abcdef";
    struct sip_worker *sw = r->sw;
    size_t tl = strnlen(sw->branch_salt, 8);
    if (cap < tl + 11) {
        if (cap)
            out[0] = '\0';
        return;
    }
    memcpy(out, sw->branch_salt, tl);
    uint64_t id = r->st ? (uint64_t)(uintptr_t)r->st
                        : map_siphash(sw->srv->hash_key, r->m->via.branch.s, r->m->via.branch.len,
                                      false);
    id &= 0xffffffffffULL;
    for (int i = 9; i >= 0; i--)
        out[tl++] = hex[(id >> (i * 4)) & 0xf];
    out[tl] = '\0';
}

int core_respond(struct core_req *r, uint16_t status, str reason, const struct sip_hdr_add *extra,
                 size_t nextra, str content_type, str body)
{
    struct sip_worker *sw = r->sw;
    char tag[24];
    core_to_tag(r, tag, sizeof tag);
    buf_reset(&sw->out);
    int rc = sip_msg_respond(r->m, status, reason, str_cstr(tag), extra, nextra, content_type,
                             body, &sw->out);
    /*
     * Rejections and challenges generated here are answered statelessly (RFC 3261
     * §8.2.7): a retransmitted request is simply answered again, and no transaction is
     * kept for 32 s per refused request (what an attacker or a registration storm would
     * otherwise fill memory with).
     */
    if (rc == 0 && !r->st) {
        /* stateless (core__route_stateless): to where the request came from */
        struct net_dest d = { .transport = r->rx->transport, .addr = r->rx->src,
                              .addrlen = r->rx->srclen, .flow_id = r->rx->flow_id };
        rc = tu_send(sw, &d, (const char *)sw->out.data, sw->out.len);
    } else if (rc == 0 && status >= 300) {
        rc = txn_respond_once(r->st, status, (const char *)sw->out.data, sw->out.len);
    } else if (rc == 0) {
        rc = txn_respond(r->st, status, (const char *)sw->out.data, sw->out.len, r->now);
    }
    if (status >= 200)
        r->status = status;
    core__rearm(sw);
    return rc;
}

/* ---- RFC 3581: received and rport on the top Via ---- */

/*
 * Writes into out the request with its top Via completed: ";received=" when the
 * source address is not the sent-by host, and the port in an empty ";rport".
 * Returns 1 when it patched, 0 when nothing was needed, negative on error.
 */
/* Dotted quad of a network-order IPv4 address into ip (>= 16 bytes): inet_ntop goes
 * through sprintf, and this runs for every request. */
static void ip4_str(const struct in_addr *a, char *ip)
{
    const uint8_t *b = (const uint8_t *)&a->s_addr;
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            ip[n++] = (char)('0' + v / 100);
        if (v >= 10)
            ip[n++] = (char)('0' + v / 10 % 10);
        ip[n++] = (char)('0' + v % 10);
        ip[n++] = i < 3 ? '.' : '\0';
    }
}

static int patch_via(const struct sip_msg *m, const struct net_rx *rx, struct buf *out)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr_storage *ss = &rx->src;
    if (ss->ss_family == AF_INET)
        ip4_str(&((const struct sockaddr_in *)ss)->sin_addr, ip);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
    str host = m->via.host;
    if (host.len >= 2 && host.s[0] == '[')
        host = str_sub(host, 1, host.len - 2);
    bool need_received = !str_caseeq(host, str_cstr(ip)) || m->via.rport;
    bool need_rport = m->via.rport && !m->via.has_rport_value;
    if (!need_received && !need_rport)
        return 0;
    if (m->via.received.len && !need_rport)
        return 0; /* a previous hop's choice; keep it */
    const char *vs = m->via.raw.s, *ve = vs + m->via.raw.len;
    /* where ";rport" is inside the via-parm (it has no value when need_rport) */
    const char *rp = NULL;
    if (need_rport) {
        str params = m->via.params;
        for (size_t i = 0; i + 5 <= params.len; i++) {
            if (str_caseeq(str_make(params.s + i, 5), STR("rport")) &&
                (i == 0 || params.s[i - 1] == ';' || params.s[i - 1] == ' ') &&
                (i + 5 == params.len || params.s[i + 5] == ';' || params.s[i + 5] == ' ' ||
                 params.s[i + 5] == '\r')) {
                rp = params.s + i + 5;
                break;
            }
        }
    }
    buf_reset(out);
    int rc = buf_append(out, m->buf, (size_t)(vs - m->buf));
    if (rp) {
        rc = rc ? rc : buf_append(out, vs, (size_t)(rp - vs));
        rc = rc ? rc : buf_append_byte(out, '=');
        rc = rc ? rc : buf_append_u64(out, net_addr_port(&rx->src));
        rc = rc ? rc : buf_append(out, rp, (size_t)(ve - rp));
    } else {
        rc = rc ? rc : buf_append(out, vs, (size_t)(ve - vs));
    }
    if (!m->via.received.len) {
        rc = rc ? rc : buf_append(out, ";received=", 10);
        rc = rc ? rc : buf_append(out, ip, strlen(ip));
    }
    rc = rc ? rc : buf_append(out, ve, m->len - (size_t)(ve - m->buf));
    return rc < 0 ? rc : 1;
}

/* ---- receiving ---- */

static uint32_t callid_owner(struct sip_server *s, str call_id)
{
    if (s->nworkers <= 1)
        return 0;
    return (uint32_t)(map_siphash(s->hash_key, call_id.s, call_id.len, false) % s->nworkers);
}

/* The worker whose salt this is, or -1. */
static int salt_worker(struct sip_server *s, str salt)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i] && str_eq(salt, str_cstr(s->workers[i]->branch_salt)))
            return (int)i;
    return -1;
}

int core__branch_worker(struct sip_server *s, str branch)
{
    size_t at;
    if (str_has_prefix(branch, STR("z9hG4bKu"))) {
        at = 8;
    } else if (str_has_prefix(branch, STR("z9hG4bKr"))) {
        ssize_t dot = str_find_char(branch, '.');
        if (dot < 0)
            return -1;
        at = (size_t)dot + 1;
    } else {
        return -1;
    }
    return salt_worker(s, str_sub(branch, at, 8));
}

/*
 * The worker a message is processed on. Transactions and dialogs of a Call-ID live on
 * the worker its hash names, with exceptions that each save a hand-over:
 * - a response to a request we sent goes to the worker that sent it, named by the salt
 *   in our branch (for a proxied request other than the next case, the Call-ID's);
 * - an out-of-dialog MESSAGE over UDP is served where it arrived: it has no state
 *   beyond its transaction, and its retransmissions come from the same address, which
 *   SO_REUSEPORT delivers to the same socket, so the same worker;
 * - an ACK for a final answer of ours goes to the worker named by the salt in our To
 *   tag: the one that answered (the Call-ID's when it had a transaction, the arrival
 *   worker when it had none).
 * (A request answered without a transaction needs no owner at all: see stateless.)
 */
static uint32_t owner_of(struct sip_server *s, const struct sip_msg *m, const struct net_rx *rx,
                         uint32_t here)
{
    if (s->nworkers <= 1)
        return 0;
    if (!m->is_request) {
        int w = core__branch_worker(s, m->via.branch);
        if (w >= 0)
            return (uint32_t)w;
    } else if (m->method == SIP_M_MESSAGE && rx->transport == TRANSPORT_UDP &&
               !m->to.tag.len) {
        return here;
    } else if (m->method == SIP_M_ACK && m->to.tag.len) {
        int w = salt_worker(s, str_sub(m->to.tag, 0, 8)); /* a To tag of ours: core_to_tag */
        if (w >= 0)
            return (uint32_t)w;
    }
    return callid_owner(s, m->call_id);
}

struct handover {
    struct sip_server *srv;
    struct net_rx rx;
    struct sockaddr_storage local;
    size_t len;
    char data[];
};

static void process(struct sip_worker *sw, const struct net_rx *rx, bool handed);
static unsigned parse_flags(const struct net_rx *rx);

/*
 * A request whose start line is malformed has no header index, so nothing to answer
 * by. Its headers are parsed again behind a stand-in request line (with the CSeq's
 * method, so that the CSeq check passes) and the answer carries the original error.
 */
static void reply_to_broken(struct sip_worker *sw, const struct sip_msg *bad,
                            const struct net_rx *rx)
{
    str all = str_make(rx->data, rx->len);
    ssize_t eol = str_find(all, STR("\r\n"));
    if (eol < 0)
        return;
    str rest = str_skip(all, (size_t)eol + 2);
    str method = STR("OPTIONS");
    for (str r = rest; r.len;) {
        ssize_t e = str_find(r, STR("\r\n"));
        str line = e < 0 ? r : str_sub(r, 0, (size_t)e);
        if (line.len == 0)
            break;
        if (str_has_caseprefix(line, STR("CSeq:")) || str_has_caseprefix(line, STR("CSeq "))) {
            str v = str_trim(str_skip(line, (size_t)str_find_char(line, ':') + 1));
            ssize_t sp = str_find_char(v, ' ');
            if (sp > 0)
                method = str_trim(str_skip(v, (size_t)sp));
            break;
        }
        r = e < 0 ? STR_NULL : str_skip(r, (size_t)e + 2);
    }
    if (method.len > 32)
        return;
    struct buf *b = &sw->patched;
    buf_reset(b);
    if (buf_printf(b, "%.*s sip:invalid SIP/2.0\r\n", STR_FMT(method)) < 0 ||
        buf_append_str(b, rest) < 0)
        return;
    struct sip_msg m;
    sip_msg_init(&m, sw->hdrs2, sw->srv->lim.max_headers);
    struct sip_limits lim = sw->srv->lim;
    lim.max_message_size = (uint32_t)b->len;
    sip_msg_parse(&m, (const char *)b->data, b->len, &lim, parse_flags(rx));
    if (m.is_request)
        core__reply_stateless(sw, &m, rx, bad->err.status, str_cstr(bad->err.reason));
}

static void on_handover(struct worker *w, void *arg)
{
    struct handover *h = arg;
    struct sip_worker *sw = h->srv->workers[worker_index(w)];
    if (sw) {
        h->rx.data = h->data;
        h->rx.local = &h->local;
        process(sw, &h->rx, true);
    }
    free(h);
}

/* A UDP datagram and a WebSocket message (RFC 7118 §5: one per frame, Content-Length
 * optional) are whole messages; a TCP/TLS message was framed by Content-Length. */
static unsigned parse_flags(const struct net_rx *rx)
{
    return rx->transport == TRANSPORT_UDP || rx->transport == TRANSPORT_WS ||
                   rx->transport == TRANSPORT_WSS
               ? SIP_PARSE_DATAGRAM
               : SIP_PARSE_STREAM;
}

/*
 * Whether a request is answered without a transaction, so where it arrived. Both kinds
 * are for one of our domains and have no Route and no To tag, so the router answers them
 * itself and never forwards them:
 * - a REGISTER, when sip.stateless_register is on. Its answers go straight back; a
 *   retransmission is processed again, which the registrar treats as the idempotent
 *   refresh it is (docs/registrar.md).
 * - with auth.challenge = all, any other request from one of our users that carries no
 *   Proxy-Authorization: the router can only challenge it (407) or refuse it. A
 *   retransmission gets the same To tag again (core_to_tag), and the ACK for the 407
 *   comes back here by its To tag (owner_of).
 * A REGISTER for another domain or with a Route is proxied, so it keeps its transaction.
 */
static bool stateless(struct sip_server *s, const struct sip_msg *m)
{
    if (sip_msg_hdr(m, SIP_H_ROUTE) || m->to.tag.len)
        return false;
    if (m->method == SIP_M_REGISTER) {
        if (!s->stateless_register)
            return false;
    } else if (!s->challenge_all || m->method == SIP_M_ACK || m->method == SIP_M_CANCEL ||
               sip_msg_hdr(m, SIP_H_PROXY_AUTHORIZATION) ||
               core__branch_worker(s, m->via.branch) >= 0) {
        return false; /* credentials to check, or a request that passed here already */
    } else {
        struct sip_uri fu;
        if (sip_uri_parse(m->from.uri, &fu) < 0 || !core__is_our_domain(s, fu.host))
            return false;
    }
    const struct sip_uri *u = &m->ruri;
    return (u->scheme == SIP_URI_SIP || u->scheme == SIP_URI_SIPS) &&
           core__is_local_host(s, u->host, u->has_port ? u->port : 0);
}

static void process(struct sip_worker *sw, const struct net_rx *rx, bool handed)
{
    struct sip_server *s = sw->srv;
    struct sip_msg m;
    sip_msg_init(&m, sw->hdrs, s->lim.max_headers);
    ssize_t n = sip_msg_parse(&m, rx->data, rx->len, &s->lim, parse_flags(rx));
    if (log_enabled(LOG_DEBUG)) {
        char a[64];
        log_debug("core", "%s %zu bytes from %s:%s (flow %llx) on worker %u: %.*s",
                  handed ? "handed" : "received", rx->len, transport_name(rx->transport),
                  net_addr_str(&rx->src, a, sizeof a), (unsigned long long)rx->flow_id,
                  worker_index(sw->w), (int)(str_find_char(str_make(rx->data, rx->len), '\r') > 0
                                                 ? str_find_char(str_make(rx->data, rx->len), '\r')
                                                 : 0),
                  rx->data);
    }
    if (n <= 0) {
        CNT(s, parse_errors);
        if (log_enabled(LOG_DEBUG)) {
            char a[64];
            log_debug("core", "%s from %s: rejected: %d %s", m.is_request ? "request" : "message",
                      net_addr_str(&rx->src, a, sizeof a), m.err.status, m.err.reason);
        }
        /* a start line that does not parse: a request unless it reads like a status line */
        bool request = m.is_request || !str_has_prefix(str_make(rx->data, rx->len), STR("SIP/"));
        if (request && m.err.status) {
            if (m.is_request && sip_msg_hdr(&m, SIP_H_VIA))
                core__reply_stateless(sw, &m, rx, m.err.status, str_cstr(m.err.reason));
            else
                reply_to_broken(sw, &m, rx);
        }
        return; /* a malformed response is dropped */
    }
    /* a request answered without a transaction (stateless) is served where it arrived */
    bool sl = m.is_request && stateless(s, &m);
    uint32_t here = worker_index(sw->w);
    uint32_t owner = sl ? here : owner_of(s, &m, rx, here);
    if (!handed && owner != here) {
        struct handover *h = malloc(sizeof *h + rx->len);
        if (!h)
            return;
        h->srv = s;
        h->rx = *rx;
        h->local = *rx->local;
        h->len = rx->len;
        memcpy(h->data, rx->data, rx->len);
        CNT(s, handovers);
        if (worker_post(worker_sibling(sw->w, owner), on_handover, h) < 0)
            free(h);
        return;
    }
    struct net_rx prx = *rx;
    if (m.is_request) {
        CNT(s, requests);
        int p = patch_via(&m, rx, &sw->patched);
        if (p > 0) {
            sip_msg_init(&m, sw->hdrs, s->lim.max_headers);
            struct sip_limits lim = s->lim;
            lim.max_message_size = (uint32_t)sw->patched.len; /* the patch may add ~60 bytes */
            if (sip_msg_parse(&m, (const char *)sw->patched.data, sw->patched.len, &lim,
                              parse_flags(rx)) <= 0)
                return;
            prx.data = (const char *)sw->patched.data;
            prx.len = sw->patched.len;
        }
    } else {
        CNT(s, responses);
    }
    if (sl) {
        core__route_request(sw, NULL, &m, &prx);
        core__rearm(sw);
        arena_reset(sw->arena);
        return;
    }
    int rc = txn_table_recv(sw->tt, &m, &prx, core__now(sw));
    if (rc == -ENOSPC)
        core__reply_stateless(sw, &m, &prx, 503, STR("Server Busy: too many transactions"));
    core__rearm(sw);
    arena_reset(sw->arena);
}

static void on_recv(void *ctx, struct net_worker *nw, const struct net_rx *rx)
{
    struct sip_server *s = ctx;
    struct sip_worker *sw = s->workers[worker_index(net_worker_worker(nw))];
    if (sw)
        process(sw, rx, false);
}

static ssize_t on_frame(void *ctx, const char *data, size_t len)
{
    struct sip_server *s = ctx;
    size_t n = 0;
    int rc = sip_frame(data, len, &s->lim, &n, NULL);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0)
        return rc;
    return (ssize_t)n;
}

static void on_flow_closed(void *ctx, struct net_worker *nw, uint64_t flow_id)
{
    struct sip_server *s = ctx;
    (void)nw;
    if (s->svc.flow_closed)
        s->svc.flow_closed(s->svc.ctx, flow_id);
}

/* ---- transaction user ---- */

static void tu_request(void *ctx, struct txn *st, const struct sip_msg *req,
                       const struct net_rx *rx)
{
    core__route_request(ctx, st, req, rx);
}

static void tu_ack(void *ctx, const struct sip_msg *ack, const struct net_rx *rx)
{
    core__route_ack(ctx, ack, rx);
}

static void tu_response(void *ctx, struct txn *ct, const struct sip_msg *resp,
                        const struct net_rx *rx)
{
    proxy__response(ctx, ct, resp, rx);
}

static void tu_stray(void *ctx, const struct sip_msg *resp, const struct net_rx *rx)
{
    core__stray_response(ctx, resp, rx);
}

static void tu_timeout(void *ctx, struct txn *ct, bool transport_error)
{
    proxy__timeout(ctx, ct, transport_error);
}

static void tu_terminated(void *ctx, struct txn *t)
{
    if (txn_is_server(t))
        proxy__server_terminated(ctx, t);
    else
        proxy__client_terminated(ctx, t);
}

/* ---- server and workers ---- */

/*
 * The secret of nonces when server.secret is empty: 32 random bytes made once and kept
 * in data_dir/secret (mode 0600), so that nonces stay valid across a restart. Returns
 * its length or a negative errno. Blocks (start-up only).
 */
static int load_secret(const char *dir, uint8_t *out, size_t cap)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/secret", dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, out, cap);
        close(fd);
        if (n >= 16)
            return (int)n;
    }
    if (random_bytes(out, 32) < 0)
        return -EIO;
    mkdir(dir, 0750);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, out, 32);
    int e = errno;
    close(fd);
    return w == 32 ? 32 : (w < 0 ? -e : -EIO);
}

int sip_server_new(struct sip_server **out, const struct config *cfg, unsigned nworkers,
                   const struct sip_server_deps *deps, char *err, size_t errlen)
{
    struct sip_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->cfg = cfg;
    s->stateless_register = strcmp(cfg->sip.stateless_register, "on") == 0;
    s->challenge_all = strcmp(cfg->auth.challenge, "all") == 0;
    s->nworkers = nworkers;
    if (deps)
        s->deps = *deps;
    sip_limits_from_config(&s->lim, cfg);
    s->timers = (struct txn_timers){ cfg->sip.t1_ms, cfg->sip.t2_ms, cfg->sip.t4_ms, 180000 };
    random_bytes(s->hash_key, sizeof s->hash_key);
    s->workers = calloc(nworkers, sizeof *s->workers);
    s->domain_copy = strdup(cfg->server.domain);
    if (!s->workers || !s->domain_copy) {
        sip_server_free(s);
        return -ENOMEM;
    }
    str list = str_cstr(s->domain_copy);
    while (list.len && s->ndomains < CORE_MAX_DOMAINS) {
        ssize_t c = str_find_char(list, ',');
        str d = str_trim(c < 0 ? list : str_sub(list, 0, (size_t)c));
        if (d.len)
            s->domains[s->ndomains++] = d;
        list = c < 0 ? STR_NULL : str_skip(list, (size_t)c + 1);
    }
    uint8_t secret[64];
    size_t secret_len = strlen(cfg->server.secret);
    if (secret_len == 0) {
        int src = load_secret(cfg->server.data_dir, secret, sizeof secret);
        if (src < 0) {
            snprintf(err, errlen, "server.secret: cannot keep a secret in %s/secret: %s",
                     cfg->server.data_dir, strerror(-src));
            sip_server_free(s);
            return src;
        }
        secret_len = (size_t)src;
    }
    struct digest_params dp = { .nonce_lifetime_s = cfg->auth.nonce_lifetime,
                                .require_qop = true };
    struct throttle_params tp = { .max_failures = cfg->auth.max_failures,
                                  .window_s = cfg->auth.failure_window };
    if (digest_new(&s->digest, *cfg->server.secret ? (const void *)cfg->server.secret : (const void *)secret,
                   secret_len, &dp) < 0 ||
        throttle_new(&s->throttle, &tp) < 0) {
        snprintf(err, errlen, "sip: out of memory");
        sip_server_free(s);
        return -ENOMEM;
    }
    struct net_limits lim = {
        .max_message = cfg->sip.max_message_size,
        .max_connections = cfg->sip.max_connections,
        .max_connections_per_ip = cfg->sip.max_connections_per_ip,
        .idle_timeout_s = cfg->sip.tcp_idle_timeout,
        .udp_rcvbuf = 4 << 20,
    };
    struct net_handlers h = { on_recv, on_frame, on_flow_closed, s };
    int rc = net_new(&s->net, &cfg->sip.listen, &lim, &h, nworkers);
    if (rc < 0) {
        snprintf(err, errlen, "sip: cannot set up transports: %s", strerror(-rc));
        sip_server_free(s);
        return rc;
    }
    net_set_tls(s->net, s->deps.tls);
    *out = s;
    return 0;
}

void sip_server_free(struct sip_server *s)
{
    if (!s)
        return;
    net_free(s->net);
    digest_free(s->digest);
    throttle_free(s->throttle);
    free(s->workers);
    free(s->domain_copy);
    free(s);
}

int sip_server_start_error(const struct sip_server *s)
{
    return atomic_load(&s->start_error);
}

static void worker_free(struct sip_worker *sw)
{
    arena_free(sw->arena);
    buf_free(&sw->out);
    buf_free(&sw->patched);
    free(sw->hdrs);
    free(sw->hdrs2);
    free(sw);
}

static void tick_closed(uv_handle_t *h)
{
    struct sip_worker *sw = h->data;
    if (--sw->closing == 0)
        worker_free(sw);
}

static void on_second(uv_timer_t *t)
{
    struct sip_worker *sw = t->data;
    if (sw->srv->svc.tick)
        sw->srv->svc.tick(sw->srv->svc.ctx, sw, core__now(sw));
}

void sip_server_worker_start(struct worker *w, void *server)
{
    struct sip_server *s = server;
    struct sip_worker *sw = calloc(1, sizeof *sw);
    int rc = -ENOMEM;
    if (!sw)
        goto fail;
    sw->srv = s;
    sw->w = w;
    buf_init(&sw->out, (size_t)s->lim.max_message_size * 2);
    buf_init(&sw->patched, (size_t)s->lim.max_message_size + 256);
    sw->hdrs = calloc(s->lim.max_headers, sizeof *sw->hdrs);
    sw->hdrs2 = calloc(s->lim.max_headers, sizeof *sw->hdrs2);
    random_token(sw->branch_salt, 8);
    if (s->nworkers > 1 && worker_index(w) <= STEER_MAX_INDEX)
        steer_tag(worker_index(w), sw->steer_tag);
    if (!sw->hdrs || !sw->hdrs2 || arena_new(&sw->arena, 8192, 1u << 20) < 0) {
        worker_free(sw);
        goto fail;
    }
    struct txn_user tu = { sw,       tu_send,    tu_request, tu_ack, tu_response,
                           tu_stray, tu_timeout, tu_terminated };
    rc = txn_table_new(&sw->tt, &s->timers, &tu, &s->lim, 200000);
    if (rc < 0) {
        worker_free(sw);
        goto fail;
    }
    uv_timer_init(worker_loop(w), &sw->tick);
    sw->tick.data = sw;
    uv_timer_init(worker_loop(w), &sw->second);
    sw->second.data = sw;
    uv_timer_start(&sw->second, on_second, 1000, 1000);
    s->workers[worker_index(w)] = sw;
    rc = net_worker_start(s->net, w, &sw->nw);
    if (rc < 0) {
        sw->nw = NULL;
        goto fail;
    }
    if (s->svc.worker_start)
        s->svc.worker_start(s->svc.ctx, sw);
    return;
fail:
    atomic_store(&s->start_error, rc);
}

void sip_server_worker_stop(struct worker *w, void *server)
{
    struct sip_server *s = server;
    struct sip_worker *sw = s->workers[worker_index(w)];
    if (!sw)
        return;
    if (s->svc.worker_stop)
        s->svc.worker_stop(s->svc.ctx, sw);
    s->workers[worker_index(w)] = NULL;
    txn_table_free(sw->tt);
    net_worker_stop(sw->nw);
    sw->closing = 2;
    uv_close((uv_handle_t *)&sw->tick, tick_closed);
    uv_close((uv_handle_t *)&sw->second, tick_closed);
}

struct net *sip_server_net(struct sip_server *s)
{
    return s->net;
}

void sip_server_stats(const struct sip_server *s, struct sip_server_stats *o)
{
    memset(o, 0, sizeof *o);
    o->requests = atomic_load(&s->c.requests);
    o->responses = atomic_load(&s->c.responses);
    o->parse_errors = atomic_load(&s->c.parse_errors);
    o->handovers = atomic_load(&s->c.handovers);
    o->registrations = atomic_load(&s->c.registrations);
    o->auth_failures = atomic_load(&s->c.auth_failures);
}
