/*
 * router — the transaction user's pipeline for a new request, in order:
 *   sanity (Max-Forwards 483, Proxy-Require 420) → loop (482) → Route set →
 *   CANCEL → in-dialog / pre-routed requests → is it for our domain? →
 *   authentication (401 / 407) → a local service (REGISTER, OPTIONS) or the
 *   location of the user → proxy (or 404 / 480 / offline store 202).
 * The same file forwards ACKs for 2xx and stray responses statelessly.
 */
#include "core/core_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/map.h"
#include "core/throttle.h"
#include "sip/digest.h"

#define CNT(s, f) atomic_fetch_add_explicit(&(s)->c.f, 1, memory_order_relaxed)

#define CORE_USER_MAX 256

static str uri_host(str uri)
{
    struct sip_uri u;
    return sip_uri_parse(uri, &u) == 0 ? u.host : STR_NULL;
}

static const struct sip_hdr_add allow_hdrs[] = {
    { STR("Allow"), STR("INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, "
                        "PRACK, REFER, NOTIFY, SUBSCRIBE, PUBLISH") },
    { STR("Supported"), STR("path, outbound, gruu") },
    { STR("Accept"), STR("application/sdp, text/plain, message/cpim") },
};

uint32_t core__loop_hash(struct sip_server *s, const struct sip_msg *m)
{
    /* RFC 3261 §16.6 step 8: what a spiral changes and a loop does not (no printf:
     * every request comes here) */
    char buf[2048];
    size_t len = 0;
    str parts[4] = {m->ruri_raw, m->call_id, m->from.tag, m->to.tag};
    for (int i = 0; i < 4; i++) {
        size_t n = parts[i].len < sizeof buf - 16 - len ? parts[i].len : sizeof buf - 16 - len;
        if (n) /* an absent tag is an empty slice with no pointer */
            memcpy(buf + len, parts[i].s, n);
        len += n;
        buf[len++] = '|';
    }
    uint32_t c = m->cseq.num;
    memcpy(buf + len, &c, sizeof c);
    len += sizeof c;
    return (uint32_t)map_siphash(s->hash_key, buf, len, false);
}

/* A Route entry names us when its host is one of our addresses or domains with no user. */
static bool route_is_us(struct sip_server *s, const struct sip_addr *a, struct sip_uri *u)
{
    if (sip_uri_parse(a->uri, u) < 0)
        return false;
    return core__is_local_host(s, u->host, u->has_port ? u->port : 0);
}

int core__route_plan(struct sip_worker *sw, const struct sip_msg *m, const struct net_rx *rx,
                     struct fwd_plan *p)
{
    (void)rx;
    memset(p, 0, sizeof *p);
    const struct sip_addr *routes;
    size_t n;
    if (!sip_msg_hdr(m, SIP_H_ROUTE))
        return 0;
    if (sip_msg_routes((struct sip_msg *)m, sw->arena, &routes, &n) < 0)
        return -EPROTO;
    size_t i = 0;
    str last_token_params = STR_NULL;
    struct sip_uri u;
    while (i < n && route_is_us(sw->srv, &routes[i], &u)) {
        last_token_params = u.params;
        i++;
    }
    if (i == 0)
        return 0;
    p->rewrite_routes = true;
    /* the last of our entries faces the next hop: its flow token says where that is */
    if (core__flow_from_route(last_token_params, &p->flow) == 0)
        p->has_flow = true;
    if (i < n) {
        /* the rest, joined: they keep their raw text */
        size_t total = 0;
        for (size_t k = i; k < n; k++)
            total += routes[k].raw.len + 2;
        char *joined = arena_alloc(sw->arena, total + 1);
        if (!joined)
            return -ENOMEM;
        size_t o = 0;
        for (size_t k = i; k < n; k++) {
            if (o) {
                memcpy(joined + o, ", ", 2);
                o += 2;
            }
            memcpy(joined + o, routes[k].raw.s, routes[k].raw.len);
            o += routes[k].raw.len;
        }
        p->routes = str_make(joined, o);
        p->next_route = routes[i].uri;
        p->has_flow = false;
    }
    return 0;
}

/* Answers 403 with Retry-After when key (an address or a user) is throttled. */
static bool refuse_throttled(struct core_req *r, str key, uint64_t now)
{
    uint32_t retry;
    if (!throttle_check(r->sw->srv->throttle, key, now, &retry))
        return false;
    char ra[16];
    snprintf(ra, sizeof ra, "%u", retry);
    struct sip_hdr_add h = { STR("Retry-After"), str_cstr(ra) };
    core_respond(r, 403, STR("Forbidden: too many failed authentications"), &h, 1, STR_NULL,
                 STR_NULL);
    return true;
}

/* ---- answers ---- */

static void respond(struct core_req *r, uint16_t status, const char *reason)
{
    core_respond(r, status, str_cstr(reason), NULL, 0, STR_NULL, STR_NULL);
}

static void challenge(struct core_req *r, bool is_register, bool stale)
{
    struct sip_worker *sw = r->sw;
    struct sip_server *s = sw->srv;
    char nonce[DIGEST_NONCE_MAX];
    str realm = core_realm(s);
    if (digest_nonce_make(s->digest, realm, clock_wall_ms(), nonce) < 0) {
        respond(r, 500, "Server Internal Error: cannot make a nonce");
        return;
    }
    struct buf v[2];
    struct sip_hdr_add h[2];
    size_t nh = 0;
    str name = is_register ? STR("WWW-Authenticate") : STR("Proxy-Authenticate");
    str list = str_cstr(s->cfg->auth.algorithms);
    while (list.len && nh < 2) {
        ssize_t comma = str_find_char(list, ',');
        str a = str_trim(comma < 0 ? list : str_sub(list, 0, (size_t)comma));
        list = comma < 0 ? STR_NULL : str_skip(list, (size_t)comma + 1);
        enum digest_alg alg;
        if (!a.len || digest_alg_parse(a, &alg) < 0)
            continue;
        buf_init(&v[nh], 1024);
        digest_challenge(&v[nh], alg, realm, str_cstr(nonce), stale);
        h[nh] = (struct sip_hdr_add){ name, buf_str(&v[nh]) };
        nh++;
    }
    core_respond(r, is_register ? 401 : 407, STR_NULL, h, nh, STR_NULL, STR_NULL);
    for (size_t i = 0; i < nh; i++)
        buf_free(&v[i]);
}

/*
 * Digest authentication of r (RFC 7616/8760). Returns true when the request may go
 * on (r->auth_user set, borrowed from the request); false when it was answered
 * (challenge, 403 when throttled).
 */
static bool authenticate(struct core_req *r, bool is_register)
{
    struct sip_worker *sw = r->sw;
    struct sip_server *s = sw->srv;
    const struct sip_msg *m = r->m;
    uint64_t now = clock_wall_ms();
    uint8_t kb[16];
    str ipkey = throttle_addr_key((const struct sockaddr *)&r->rx->src, kb);
    if (refuse_throttled(r, ipkey, now))
        return false;
    str realm = core_realm(s);
    enum sip_hdr_id id = is_register ? SIP_H_AUTHORIZATION : SIP_H_PROXY_AUTHORIZATION;
    struct digest_creds c;
    bool found = false;
    for (const struct sip_hdr *h = sip_msg_hdr(m, id); h; h = sip_msg_hdr_next(m, h)) {
        if (digest_creds_parse(h->value, &c) == 0 && str_eq(c.realm, realm)) {
            found = true;
            break;
        }
    }
    if (!found) {
        challenge(r, is_register, false);
        return false;
    }
    char ukey[CORE_USER_MAX + 3];
    struct buf ub = buf_over(ukey, sizeof ukey);
    buf_append(&ub, "u:", 2);
    buf_append_str(&ub, str_sub(c.username, 0, CORE_USER_MAX));
    buf_nul(&ub);
    if (refuse_throttled(r, str_cstr(ukey), now))
        return false;
    /*
     * RFC 7616 §3.4.6 suggests checking that the digest uri is the Request-URI. It is
     * not enforced: deployed clients (sipp among them) put their next hop there, and a
     * replay for another Request-URI is already stopped by the nonce-count table.
     */
    enum digest_alg alg = DIGEST_MD5;
    if (c.algorithm.len && digest_alg_parse(c.algorithm, &alg) < 0) {
        challenge(r, is_register, false);
        return false;
    }
    char ha1[DIGEST_HEX_MAX];
    str method = m->method == SIP_M_OTHER ? m->method_name : sip_method_name(m->method);
    enum digest_result res;
    if (s->svc.credentials &&
        s->svc.credentials(s->svc.ctx, c.username, alg == DIGEST_SHA256, ha1, sizeof ha1) == 0)
        res = digest_verify(s->digest, &c, method, realm, str_cstr(ha1), now);
    else
        res = digest_verify_unknown(s->digest, &c, method, realm, now);
    switch (res) {
    case DIGEST_OK:
        throttle_reset(s->throttle, str_cstr(ukey));
        r->auth_user = c.username;
        return true;
    case DIGEST_STALE:
        challenge(r, is_register, true);
        return false;
    case DIGEST_FAIL: {
        CNT(s, auth_failures);
        char a[64];
        log_warn("auth", "failed authentication of '%.*s' from %s (%.*s)", STR_FMT(c.username),
                 net_addr_str(&r->rx->src, a, sizeof a), STR_FMT(method));
        bool t1 = throttle_fail(s->throttle, ipkey, now);
        bool t2 = throttle_fail(s->throttle, str_cstr(ukey), now);
        if (t1 || t2)
            log_warn("auth", "throttling %s / '%.*s' after repeated failures", a,
                     STR_FMT(c.username));
        challenge(r, is_register, false);
        return false;
    }
    case DIGEST_INVALID:
    default:
        challenge(r, is_register, false);
        return false;
    }
}

/* ---- the pipeline ---- */

static bool check_proxy_require(struct core_req *r)
{
    const struct sip_msg *m = r->m;
    if (!sip_msg_hdr(m, SIP_H_PROXY_REQUIRE))
        return true;
    /* we support no option tag that a proxy must understand: list them all back */
    struct buf u;
    buf_init(&u, 2048);
    struct sip_value_iter it = { 0 };
    str v;
    while (sip_msg_values_next(m, SIP_H_PROXY_REQUIRE, &it, &v))
        buf_printf(&u, "%s%.*s", u.len ? ", " : "", STR_FMT(v));
    struct sip_hdr_add h = { STR("Unsupported"), buf_str(&u) };
    core_respond(r, 420, STR("Bad Extension: Proxy-Require names an unsupported option"), &h, 1,
                 STR_NULL, STR_NULL);
    buf_free(&u);
    return false;
}

/* As a UAS (REGISTER, OPTIONS to us): Require must name only what we support. */
static bool check_require(struct core_req *r)
{
    const struct sip_msg *m = r->m;
    if (!sip_msg_hdr(m, SIP_H_REQUIRE))
        return true;
    struct buf u;
    buf_init(&u, 2048);
    struct sip_value_iter it = { 0 };
    str v;
    while (sip_msg_values_next(m, SIP_H_REQUIRE, &it, &v))
        if (!str_caseeq(v, STR("path")) && !str_caseeq(v, STR("outbound")) &&
            !str_caseeq(v, STR("gruu")))
            buf_printf(&u, "%s%.*s", u.len ? ", " : "", STR_FMT(v));
    bool ok = u.len == 0;
    if (!ok) {
        struct sip_hdr_add h = { STR("Unsupported"), buf_str(&u) };
        core_respond(r, 420, STR("Bad Extension: Require names an unsupported option"), &h, 1,
                     STR_NULL, STR_NULL);
    }
    buf_free(&u);
    return ok;
}

static bool is_loop(struct core_req *r)
{
    const struct sip_via *v;
    size_t n;
    if (sip_msg_vias((struct sip_msg *)r->m, r->sw->arena, &v, &n) < 0)
        return false;
    char prefix[32] = "z9hG4bKr";
    static const char hex[] = "0123456789abcdef";
    uint32_t h = core__loop_hash(r->sw->srv, r->m);
    for (int i = 0; i < 8; i++)
        prefix[8 + i] = hex[(h >> (28 - 4 * i)) & 0xf];
    prefix[16] = '.';
    prefix[17] = '\0';
    for (size_t i = 0; i < n; i++)
        if (str_has_prefix(v[i].branch, str_cstr(prefix)) &&
            core__is_local_host(r->sw->srv, v[i].host, v[i].has_port ? v[i].port : 0))
            return true;
    return false;
}

static void handle_cancel(struct core_req *r)
{
    struct txn *inv = txn_find_cancelled(r->sw->tt, r->m);
    if (!inv) {
        respond(r, 481, "Call/Transaction Does Not Exist");
        return;
    }
    respond(r, 200, "OK");
    if (txn_is_final(inv))
        return;
    if (txn_user_data(inv)) {
        proxy__cancel(r->sw, inv); /* the branches answer 487; it goes upstream */
    } else {
        struct core_req ir = { .sw = r->sw, .st = inv, .m = txn_request(inv),
                               .rx = txn_source(inv), .now = r->now };
        respond(&ir, 487, "Request Terminated");
    }
}

/* A request with a Route set beyond us, or in a dialog: on to the next hop. */
static void forward_routed(struct core_req *r, const struct fwd_plan *plan)
{
    struct core_target t = { 0 };
    if (str_copy(t.uri, sizeof t.uri, r->m->ruri_raw) < 0) {
        respond(r, 414, "Request-URI Too Long");
        return;
    }
    struct fwd_plan p = *plan;
    p.record_route = false;
    int rc = proxy__forward(r->sw, r->st, &t, 1, &p);
    if (rc < 0)
        respond(r, rc == -EHOSTUNREACH ? 404 : 500,
                rc == -EHOSTUNREACH ? "Not Found: the next hop cannot be reached"
                                    : "Server Internal Error");
}

/*
 * A request this server forwarded to itself (a spiral): authenticated the first time.
 * Its top Via is ours and its branch carries one of our workers' random salts, which
 * nobody outside can know.
 */
static bool from_ourselves(struct core_req *r)
{
    struct sip_server *s = r->sw->srv;
    const struct sip_via *v = &r->m->via;
    return str_has_prefix(v->branch, STR("z9hG4bKr")) &&
           core__is_local_host(s, v->host, v->has_port ? v->port : 0) &&
           core__branch_worker(s, v->branch) >= 0;
}

static void local_request(struct core_req *r)
{
    struct sip_server *s = r->sw->srv;
    const struct sip_msg *m = r->m;
    bool from_local = core__is_our_domain(s, uri_host(m->from.uri)) && !from_ourselves(r);
    bool want_auth = strcmp(s->cfg->auth.challenge, "all") == 0 && from_local &&
                     m->method != SIP_M_ACK && m->method != SIP_M_CANCEL;
    if (m->method == SIP_M_REGISTER) {
        if (!check_require(r))
            return;
        if (strcmp(s->cfg->auth.challenge, "none") != 0) {
            if (!authenticate(r, true))
                return;
            struct sip_uri tu;
            if (sip_uri_parse(m->to.uri, &tu) < 0 || !str_eq(r->auth_user, tu.user)) {
                respond(r, 403, "Forbidden: the credentials are not those of the To user");
                return;
            }
        }
        CNT(s, registrations);
        if (s->svc.register_req)
            s->svc.register_req(s->svc.ctx, r);
        else
            respond(r, 501, "Not Implemented: no registrar");
        /* r (and st, when there is one) are valid through this callback */
        if (s->svc.registered && r->status >= 200 && r->status < 300)
            s->svc.registered(s->svc.ctx, r);
        return;
    }
    if (r->user.len == 0) {
        /* the server itself */
        if (m->method == SIP_M_OPTIONS) {
            if (check_require(r))
                core_respond(r, 200, STR_NULL, allow_hdrs, 3, STR_NULL, STR_NULL);
            return;
        }
        respond(r, 404, "Not Found: no user in the Request-URI");
        return;
    }
    if (want_auth) {
        if (!authenticate(r, false))
            return;
        struct sip_uri fu;
        if (sip_uri_parse(m->from.uri, &fu) < 0 || !str_eq(fu.user, r->auth_user)) {
            respond(r, 403, "Forbidden: From does not match the credentials");
            return;
        }
    }
    if (s->svc.app_request && s->svc.app_request(s->svc.app_ctx, r))
        return; /* a bot's or a channel's address */
    if (!s->svc.user_exists || !s->svc.user_exists(s->svc.ctx, r->user)) {
        if (s->svc.address && s->svc.address(s->svc.ctx, r))
            return; /* a group or another service address */
        respond(r, 404, "Not Found: no such user");
        return;
    }
    if ((m->method == SIP_M_SUBSCRIBE || m->method == SIP_M_PUBLISH) && s->svc.presence) {
        s->svc.presence(s->svc.ctx, r);
        return;
    }
    if (m->method == SIP_M_MESSAGE && s->svc.message)
        s->svc.message(s->svc.ctx, r);
    struct core_target targets[CORE_MAX_TARGETS];
    int n = s->svc.lookup ? s->svc.lookup(s->svc.ctx, r->user, r->domain, r->now, targets,
                                          CORE_MAX_TARGETS)
                          : 0;
    if (m->method == SIP_M_INVITE && s->svc.call_route &&
        s->svc.call_route(s->svc.ctx, r, targets, n))
        return; /* call features: forwarded or answered */
    if (n > 0) {
        if (core_forward(r, targets, (size_t)n) == 0)
            return;
        n = 0; /* no branch could be sent: as if no device */
    }
    if (m->method == SIP_M_MESSAGE && s->svc.offline) {
        int rc = s->svc.offline(s->svc.ctx, r);
        if (rc == 1)
            return; /* the service answers */
        if (rc == 0)
            respond(r, 202, "Accepted: stored for delivery when the user is online");
        else if (rc == -EDQUOT)
            respond(r, 480, "Temporarily Unavailable: the user's offline mailbox is full");
        else
            respond(r, 500, "Server Internal Error: the message could not be stored");
        return;
    }
    respond(r, 480, "Temporarily Unavailable: the user has no registered device");
}

void core__route_request(struct sip_worker *sw, struct txn *st, const struct sip_msg *m,
                         const struct net_rx *rx)
{
    struct core_req r = { .sw = sw, .st = st, .m = m, .rx = rx, .now = core__now(sw) };
    if (m->max_forwards == 0) {
        respond(&r, 483, "Too Many Hops");
        return;
    }
    if (!check_proxy_require(&r))
        return;
    if (is_loop(&r)) {
        respond(&r, 482, "Loop Detected");
        return;
    }
    if (m->method == SIP_M_CANCEL) {
        handle_cancel(&r);
        return;
    }
    struct fwd_plan plan;
    if (core__route_plan(sw, m, rx, &plan) < 0) {
        respond(&r, 400, "Bad Request: malformed Route");
        return;
    }
    const struct sip_uri *u = &m->ruri;
    bool ruri_local = (u->scheme == SIP_URI_SIP || u->scheme == SIP_URI_SIPS) &&
                      core__is_local_host(sw->srv, u->host, u->has_port ? u->port : 0);
    if (plan.next_route.len || (m->to.tag.len && (plan.has_flow || !ruri_local))) {
        forward_routed(&r, &plan);
        return;
    }
    if (u->scheme != SIP_URI_SIP && u->scheme != SIP_URI_SIPS) {
        respond(&r, 416, "Unsupported URI Scheme");
        return;
    }
    if (!ruri_local) {
        /* another domain: federation is not served yet; an IP-literal next hop is */
        struct net_dest d;
        if (proxy__uri_dest(sw, m->ruri_raw, &d) < 0) {
            respond(&r, 404, "Not Found: the domain is not served here");
            return;
        }
        if (strcmp(sw->srv->cfg->auth.challenge, "all") == 0 && !authenticate(&r, false))
            return;
        forward_routed(&r, &plan);
        return;
    }
    if (m->to.tag.len) {
        r.user = u->user;
        core_canonical_domain(sw, u->host, &r.domain);
        if (sw->srv->svc.in_dialog && sw->srv->svc.in_dialog(sw->srv->svc.ctx, &r))
            return;
        respond(&r, 481, "Call/Transaction Does Not Exist");
        return;
    }
    r.user = u->user;
    core_canonical_domain(sw, u->host, &r.domain);
    local_request(&r);
}

void core__route_ack(struct sip_worker *sw, const struct sip_msg *m, const struct net_rx *rx)
{
    struct fwd_plan plan;
    if (core__route_plan(sw, m, rx, &plan) < 0 || !plan.rewrite_routes)
        return; /* an ACK that was not record-routed through us has nowhere to go */
    struct core_target t = { 0 };
    if (str_copy(t.uri, sizeof t.uri, m->ruri_raw) < 0)
        return;
    proxy__forward_stateless(sw, m, &t, &plan);
}

void core__stray_response(struct sip_worker *sw, const struct sip_msg *m,
                          const struct net_rx *rx)
{
    (void)rx;
    /* §16.7: a response with no transaction (a late 2xx) goes on by its next Via */
    const struct sip_via *v;
    size_t n;
    if (m->status < 200 || m->status >= 300 || sip_msg_vias((struct sip_msg *)m, sw->arena, &v, &n) < 0 ||
        n < 2 || !core__is_local_host(sw->srv, v[0].host, v[0].has_port ? v[0].port : 0))
        return;
    if (proxy__strip_and_send_upstream(sw, m, &v[1]) < 0)
        log_debug("proxy", "stray %u response dropped", m->status);
}
