/*
 * svc/registrar — the REGISTER request, RFC 3261 §10.3 step by step.
 */
#include "svc/registrar.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/map.h"
#include "net/net.h"
#include "sip/txn.h"

#define FLOW_AORS_MAX 8 /* AORs remembered per connection */

struct registrar {
    const struct config *cfg;
    struct loc_table *loc;
    /* connection → the AORs registered over it ("a@d\nb@d\n"), so that a closed
     * connection's bindings go at once (RFC 5626 §5.2; a WebSocket's contact is .invalid) */
    pthread_mutex_t flows_lock;
    struct map *flows;
};

int registrar_new(struct registrar **out, const struct config *cfg, struct loc_table *loc)
{
    struct registrar *rg = calloc(1, sizeof *rg);
    if (!rg || map_new(&rg->flows, MAP_KEY_INT, 64) < 0) {
        free(rg);
        return -ENOMEM;
    }
    rg->cfg = cfg;
    rg->loc = loc;
    pthread_mutex_init(&rg->flows_lock, NULL);
    *out = rg;
    return 0;
}

void registrar_free(struct registrar *rg)
{
    if (!rg)
        return;
    struct map_iter it = MAP_ITER_INIT;
    struct map_entry e;
    while (map_next(rg->flows, &it, &e))
        free(e.val);
    map_free(rg->flows);
    pthread_mutex_destroy(&rg->flows_lock);
    free(rg);
}

/*
 * Whether a binding lives and dies with its connection: an outbound one (RFC 5626
 * §5.2: +sip.instance and reg-id) or one over WebSocket (its Contact host is .invalid,
 * RFC 7118). A plain TCP registration outlives its connection: its Contact is reached
 * by address afterwards, as before.
 */
static bool flow_bound(const struct loc_binding *b)
{
    return (b->instance.len && b->reg_id) || b->transport == TRANSPORT_WS ||
           b->transport == TRANSPORT_WSS;
}

/* Remembers that aor has a binding over flow_id. */
static void flow_note(struct registrar *rg, uint64_t flow_id, const char *aor)
{
    size_t al = strlen(aor);
    pthread_mutex_lock(&rg->flows_lock);
    char *old = map_get_int(rg->flows, flow_id);
    size_t ol = old ? strlen(old) : 0, count = 0;
    bool have = false;
    for (const char *p = old; p && *p;) {
        const char *nl = strchr(p, '\n');
        if ((size_t)(nl - p) == al && memcmp(p, aor, al) == 0)
            have = true;
        count++;
        p = nl + 1;
    }
    if (!have && count < FLOW_AORS_MAX) {
        char *n = malloc(ol + al + 2);
        if (n) {
            memcpy(n, old ? old : "", ol);
            memcpy(n + ol, aor, al);
            n[ol + al] = '\n';
            n[ol + al + 1] = 0;
            if (map_set_int(rg->flows, flow_id, n, NULL) < 0)
                free(n);
            else
                free(old);
        }
    }
    pthread_mutex_unlock(&rg->flows_lock);
}

void registrar_flow_closed(struct registrar *rg, uint64_t flow_id, uint64_t now_ms)
{
    pthread_mutex_lock(&rg->flows_lock);
    char *aors = map_del_int(rg->flows, flow_id);
    pthread_mutex_unlock(&rg->flows_lock);
    if (!aors)
        return;
    struct arena *a;
    if (arena_new(&a, 8192, 1u << 20) == 0) {
        for (char *p = aors; *p;) {
            char *nl = strchr(p, '\n');
            str aor = str_make(p, (size_t)(nl - p));
            struct loc_binding *b;
            size_t n = 0;
            if (loc_lookup(rg->loc, aor, now_ms, a, &b, &n) == 0) {
                for (size_t i = 0; i < n; i++) {
                    if (b[i].flow_id != flow_id || !flow_bound(&b[i]))
                        continue; /* re-registered over another connection since */
                    struct loc_binding rm = { .contact = b[i].contact,
                                              .contact_key = b[i].contact_key,
                                              .instance = b[i].instance,
                                              .reg_id = b[i].reg_id,
                                              .call_id = STR("rtcd:flow-closed"),
                                              .cseq = 0,
                                              .expires_ms = 0 };
                    if (loc_update(rg->loc, aor, &rm, 1, now_ms, NULL, NULL, NULL) == 0)
                        log_debug("registrar", "%.*s: binding %.*s dropped: its connection "
                                               "closed", STR_FMT(aor), STR_FMT(b[i].contact));
                }
            }
            arena_reset(a);
            p = nl + 1;
        }
        arena_free(a);
    }
    free(aors);
}

/* "0.5" → 500; 0..1000. -EINVAL on anything else. */
static int parse_q(str s, uint16_t *out)
{
    s = str_trim(s);
    if (!s.len)
        return -EINVAL;
    uint32_t whole = 0, frac = 0;
    size_t i = 0;
    if (s.s[0] != '0' && s.s[0] != '1')
        return -EINVAL;
    whole = (uint32_t)(s.s[0] - '0');
    i = 1;
    if (i < s.len) {
        if (s.s[i] != '.')
            return -EINVAL;
        i++;
        int digits = 0;
        for (; i < s.len; i++, digits++) {
            if (s.s[i] < '0' || s.s[i] > '9' || digits >= 3)
                return -EINVAL;
            frac = frac * 10 + (uint32_t)(s.s[i] - '0');
        }
        for (; digits < 3; digits++)
            frac *= 10;
    }
    uint32_t q = whole * 1000 + frac;
    if (q > 1000)
        return -EINVAL;
    *out = (uint16_t)q;
    return 0;
}

/* "user@domain", normalised for the location table, into out (cap bytes, NUL added).
 * 0, -E2BIG or loc_aor_normalise's error. No printf: this runs per REGISTER and per lookup. */
static int aor_text(str user, str domain, char *out, size_t cap)
{
    char raw[LOC_AOR_MAX + 2];
    struct buf b = buf_over(raw, sizeof raw);
    if (buf_append_str(&b, user) < 0 || buf_append_byte(&b, '@') < 0 ||
        buf_append_str(&b, domain) < 0)
        return -E2BIG;
    ssize_t len = loc_aor_normalise(buf_str(&b), out, cap);
    return len < 0 ? (int)len : 0;
}

/* The AOR of a REGISTER: the To user at the domain its host stands for. -EINVAL: not
 * a SIP AOR; -EXDEV: a domain we do not serve. */
static int aor_of(struct core_req *r, char *out, size_t cap)
{
    struct sip_uri u;
    const struct sip_msg *m = r->m;
    if (sip_uri_parse(m->to.uri, &u) < 0 || (u.scheme != SIP_URI_SIP && u.scheme != SIP_URI_SIPS) ||
        !u.user.len)
        return -EINVAL;
    str domain;
    if (!core_canonical_domain(r->sw, u.host, &domain))
        return -EXDEV;
    return aor_text(u.user, domain, out, cap);
}

/* The 200 OK: every current binding with its remaining time. */
static void answer_bindings(struct core_req *r, const struct loc_binding *b, size_t n,
                            bool outbound)
{
    struct buf contacts;
    buf_init(&contacts, 64 * 1024);
    for (size_t i = 0; i < n; i++) {
        uint64_t left = b[i].expires_ms > r->now ? (b[i].expires_ms - r->now + 999) / 1000 : 0;
        buf_printf(&contacts, "%s<%.*s>;expires=%llu", i ? ", " : "", STR_FMT(b[i].contact),
                   (unsigned long long)left);
        if (b[i].q != 1000 && b[i].q)
            buf_printf(&contacts, ";q=%u.%03u", b[i].q / 1000, b[i].q % 1000);
        if (b[i].instance.len)
            buf_printf(&contacts, ";+sip.instance=\"%.*s\"", STR_FMT(b[i].instance));
        if (b[i].reg_id)
            buf_printf(&contacts, ";reg-id=%u", b[i].reg_id);
    }
    struct sip_hdr_add h[3];
    size_t nh = 0;
    if (contacts.len)
        h[nh++] = (struct sip_hdr_add){ STR("Contact"), buf_str(&contacts) };
    if (outbound)
        h[nh++] = (struct sip_hdr_add){ STR("Require"), STR("outbound") };
    const struct sip_hdr *path = sip_msg_hdr(r->m, SIP_H_PATH);
    struct buf pathv;
    buf_init(&pathv, 16 * 1024);
    for (; path; path = sip_msg_hdr_next(r->m, path))
        buf_printf(&pathv, "%s%.*s", pathv.len ? ", " : "", STR_FMT(path->value));
    if (pathv.len)
        h[nh++] = (struct sip_hdr_add){ STR("Path"), buf_str(&pathv) };
    core_respond(r, 200, STR_NULL, h, nh, STR_NULL, STR_NULL);
    buf_free(&contacts);
    buf_free(&pathv);
}

/* The REGISTER's top Via (after the core's RFC 3581 patch) against its source. */
static bool behind_nat(const struct core_req *r)
{
    const struct sip_via *v = &r->m->via;
    uint16_t vport = v->has_port ? v->port : 5060;
    if (v->received.len) {
        str host = v->host;
        if (host.len > 2 && host.s[0] == '[')
            host = str_sub(host, 1, host.len - 2);
        if (!str_caseeq(host, v->received))
            return true;
    }
    return vport != net_addr_port(&r->rx->src);
}

static void respond(struct core_req *r, uint16_t status, const char *reason)
{
    core_respond(r, status, str_cstr(reason), NULL, 0, STR_NULL, STR_NULL);
}

void registrar_handle(struct registrar *rg, struct core_req *r)
{
    const struct sip_msg *m = r->m;
    struct sip_worker *sw = r->sw;
    (void)sw;
    char aor[LOC_AOR_MAX + 2];
    int arc = aor_of(r, aor, sizeof aor);
    if (arc == -EXDEV) {
        respond(r, 403, "Forbidden: the To domain is not served here");
        return;
    }
    if (arc < 0) {
        respond(r, 400, "Bad Request: the To header is not a SIP address of record");
        return;
    }
    struct arena *a;
    if (arena_new(&a, 16384, 1u << 20) < 0) {
        respond(r, 500, "Server Internal Error: out of memory");
        return;
    }
    const struct sip_addr *c;
    size_t n = 0;
    if (sip_msg_contacts((struct sip_msg *)m, a, &c, &n) < 0) {
        respond(r, 400, "Bad Request: malformed Contact");
        goto done;
    }
    struct loc_binding *cur = NULL;
    size_t ncur = 0;
    if (n == 0) { /* a query */
        if (loc_lookup(rg->loc, str_cstr(aor), r->now, a, &cur, &ncur) < 0)
            respond(r, 500, "Server Internal Error: lookup failed");
        else
            answer_bindings(r, cur, ncur, false);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (c[i].star && (n > 1 || m->expires != 0)) {
            respond(r, 400, "Bad Request: Contact * needs Expires: 0 and no other Contact");
            goto done;
        }
    }
    if (c[0].star) {
        int rc = loc_remove_all(rg->loc, str_cstr(aor), m->call_id, m->cseq.num, r->now);
        if (rc == LOC_ERR_ORDER)
            respond(r, 500, "Server Internal Error: REGISTER out of order (CSeq)");
        else if (rc < 0)
            respond(r, 500, "Server Internal Error: cannot remove the bindings");
        else
            answer_bindings(r, NULL, 0, false);
        goto done;
    }
    if (n > LOC_BATCH_MAX) {
        respond(r, 403, "Forbidden: too many Contacts in one REGISTER");
        goto done;
    }
    struct loc_binding v[LOC_BATCH_MAX];
    memset(v, 0, n * sizeof v[0]); /* only what is used: the whole array is ~16 KB */
    const struct sip_hdr *ua = sip_msg_hdr(m, SIP_H_USER_AGENT);
    struct buf path;
    buf_init(&path, LOC_FIELD_MAX);
    for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_H_PATH); h; h = sip_msg_hdr_next(m, h))
        buf_printf(&path, "%s%.*s", path.len ? ", " : "", STR_FMT(h->value));
    bool outbound = false;
    const struct config *cfg = rg->cfg;
    for (size_t i = 0; i < n; i++) {
        uint32_t exp = cfg->sip.default_expires;
        if (c[i].expires.len) {
            if (str_to_u32(c[i].expires, &exp) < 0)
                exp = UINT32_MAX; /* absurdly large: clamped below */
        } else if (m->expires >= 0) {
            exp = m->expires > UINT32_MAX ? UINT32_MAX : (uint32_t)m->expires;
        }
        if (exp != 0 && exp < cfg->sip.min_expires) {
            char me[16];
            snprintf(me, sizeof me, "%u", cfg->sip.min_expires);
            struct sip_hdr_add h = { STR("Min-Expires"), str_cstr(me) };
            core_respond(r, 423, STR("Interval Too Brief"), &h, 1, STR_NULL, STR_NULL);
            buf_free(&path);
            goto done;
        }
        if (exp > cfg->sip.max_expires)
            exp = cfg->sip.max_expires;
        struct loc_binding *b = &v[i];
        b->contact = c[i].uri;
        b->call_id = m->call_id;
        b->cseq = m->cseq.num;
        b->expires_ms = exp ? r->now + (uint64_t)exp * 1000 : 0;
        b->q = 1000;
        if (c[i].q.len && parse_q(c[i].q, &b->q) < 0) {
            respond(r, 400, "Bad Request: Contact q is not a number from 0 to 1");
            buf_free(&path);
            goto done;
        }
        if (c[i].instance.len) {
            str inst = c[i].instance;
            if (inst.len >= 2 && inst.s[0] == '"')
                inst = str_sub(inst, 1, inst.len - 2);
            b->instance = inst;
        }
        if (c[i].reg_id.len && str_to_u32(c[i].reg_id, &b->reg_id) < 0) {
            respond(r, 400, "Bad Request: reg-id is not a number");
            buf_free(&path);
            goto done;
        }
        outbound |= b->instance.len && b->reg_id;
        b->path = buf_str(&path);
        b->user_agent = ua ? ua->value : STR_NULL;
        b->transport = (uint8_t)r->rx->transport;
        b->flow_id = r->rx->transport == TRANSPORT_UDP ? 0 : r->rx->flow_id;
        if (core_is_local_uri(r->sw, b->contact)) {
            /* a Contact that is this server: requests go there (and meet loop detection) */
            b->flow_id = 0;
            outbound = false;
            continue;
        }
        /* the source address is where the device is reached when it sits behind a NAT
         * (its Via says another address than the one it came from) or asks for an
         * outbound flow; otherwise its Contact is (it may register for another socket) */
        if (behind_nat(r) || (b->instance.len && b->reg_id))
            b->received = r->rx->src;
    }
    int rc = loc_update(rg->loc, str_cstr(aor), v, n, r->now, a, &cur, &ncur);
    buf_free(&path);
    switch (rc) {
    case 0:
    case -ENOBUFS:
        for (size_t i = 0; i < n; i++)
            if (v[i].flow_id && v[i].expires_ms && flow_bound(&v[i]))
                flow_note(rg, v[i].flow_id, aor);
        if (rc == 0)
            answer_bindings(r, cur, ncur, outbound);
        else
            respond(r, 200, "OK");
        break;
    case LOC_ERR_ORDER:
        respond(r, 500, "Server Internal Error: REGISTER out of order (CSeq)");
        break;
    case LOC_ERR_AOR_FULL:
        respond(r, 403, "Forbidden: too many registrations for this user");
        break;
    case LOC_ERR_FULL:
        respond(r, 503, "Service Unavailable: the location table is full");
        break;
    default:
        respond(r, 400, "Bad Request: a Contact cannot be registered");
        break;
    }
done:
    arena_free(a);
}

struct lookup_ctx {
    struct core_target *out;
    size_t max, n;
};

/* Keeps out sorted by q, descending, equal q in registration order; drops what passes max. */
static void lookup_one(void *ctx, const struct loc_binding *b)
{
    struct lookup_ctx *c = ctx;
    size_t at = c->n;
    while (at > 0 && c->out[at - 1].q < b->q)
        at--;
    if (at >= c->max)
        return;
    struct core_target t;
    memset(&t, 0, sizeof t);
    if (str_copy(t.uri, sizeof t.uri, b->contact) < 0 || str_copy(t.path, sizeof t.path, b->path) < 0)
        return;
    t.flow_id = b->flow_id;
    t.transport = (enum transport)b->transport;
    t.addr = b->received;
    t.has_addr = b->received.ss_family != AF_UNSPEC;
    t.q = b->q;
    size_t keep = c->n < c->max ? c->n : c->max - 1; /* the last one falls off when full */
    memmove(&c->out[at + 1], &c->out[at], (keep - at) * sizeof t);
    c->out[at] = t;
    c->n = keep + 1;
}

int registrar_lookup(struct registrar *rg, str user, str domain, uint64_t now_ms,
                     struct core_target *out, size_t max)
{
    char aor[LOC_AOR_MAX + 2];
    if (max == 0 || aor_text(user, domain, aor, sizeof aor) < 0)
        return 0;
    struct lookup_ctx c = { out, max, 0 };
    if (loc_lookup_each(rg->loc, str_cstr(aor), now_ms, lookup_one, &c) < 0)
        return 0;
    return (int)c.n;
}
