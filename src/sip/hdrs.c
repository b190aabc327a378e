/*
 * sip/hdrs — deep parsers for header values: Via (RFC 3261 §20.42, RFC 3581 rport),
 * name-addr / addr-spec with parameters (From, To, Contact, Route, ...), digest
 * credentials and challenges (§25.1 / RFC 7616 parameters), and the message accessors
 * that parse them on demand and cache the result in an arena.
 */
#include <errno.h>
#include <string.h>

#include "sip/msg.h"
#include "sip/sip_int.h"

/* a quoted string starting at s[i] == '"': returns the index after the closing quote or 0 */
static size_t quoted_end(const char *s, size_t i, size_t n)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\') {
            if (i + 1 >= n || s[i + 1] == '\r' || s[i + 1] == '\n')
                return 0;
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        }
    }
    return 0;
}

/* See sip_int.h. */
str sip__next_value(str *rest)
{
    const char *s = rest->s;
    size_t n = rest->len, i = 0;
    bool angle = false;
    while (i < n) {
        char c = s[i];
        if (c == '"') {
            size_t q = quoted_end(s, i, n);
            i = q ? q : n;
            continue;
        }
        if (c == '<')
            angle = true;
        else if (c == '>')
            angle = false;
        else if (c == ',' && !angle)
            break;
        i++;
    }
    str v = sip__trim(str_make(s, i));
    *rest = i < n ? str_make(s + i + 1, n - i - 1) : str_make(s + n, 0);
    return v;
}

/* generic-param value: token / host (incl. [v6] and bare v6 for received) / quoted */
static size_t gen_value_end(const char *s, size_t i, size_t n)
{
    if (i < n && s[i] == '"')
        return quoted_end(s, i, n);
    size_t b = i;
    while (i < n && (sip__is((unsigned char)s[i], SIP__C_TOKEN) || s[i] == ':' || s[i] == '[' ||
                     s[i] == ']'))
        i++;
    return i > b ? i : 0;
}

/*
 * Parses ;name[=value] parameters from s[*pi]; stops at end or a ',' (list). Calls back
 * per parameter through the note function. Returns 0 or -EINVAL with *why.
 */
typedef void (*param_fn)(void *ctx, str name, str val);
static inline __attribute__((always_inline)) int
parse_gen_params(const char *s, size_t *pi, size_t n, bool list, param_fn fn,
                            void *ctx, const char **why)
{
    size_t i = *pi;
    for (;;) {
        i = sip__skip_ws(s, i, n);
        if (i >= n || (list && s[i] == ','))
            break;
        if (s[i] != ';') {
            *why = "unexpected character after the value";
            return -EINVAL;
        }
        i = sip__skip_ws(s, i + 1, n);
        size_t nb = i;
        i = sip__token_end(s, i, n);
        if (i == nb) {
            *why = "empty parameter";
            return -EINVAL;
        }
        str name = str_make(s + nb, i - nb), val = STR_NULL;
        size_t j = sip__skip_ws(s, i, n);
        if (j < n && s[j] == '=') {
            j = sip__skip_ws(s, j + 1, n);
            size_t ve = gen_value_end(s, j, n);
            if (ve == 0) {
                *why = "bad parameter value";
                return -EINVAL;
            }
            val = str_make(s + j, ve - j);
            if (val.len >= 2 && val.s[0] == '"')
                val = str_make(val.s + 1, val.len - 2);
            i = ve;
        }
        fn(ctx, name, val);
    }
    *pi = i;
    return 0;
}

/* ---- Via --------------------------------------------------------------------------- */

static void via_param(void *ctx, str name, str val)
{
    struct sip_via *v = ctx;
    switch (name.len) {
    case 3:
        if (SIP__LCEQ(name, "ttl"))
            v->ttl = val;
        break;
    case 5:
        if (SIP__LCEQ(name, "maddr"))
            v->maddr = val;
        else if (SIP__LCEQ(name, "rport")) {
            v->rport = true;
            uint32_t p;
            if (val.len && str_to_u32(val, &p) == 0 && p <= 65535) {
                v->has_rport_value = true;
                v->rport_value = (uint16_t)p;
            }
        }
        break;
    case 6:
        if (SIP__LCEQ(name, "branch"))
            v->branch = val;
        break;
    case 8:
        if (SIP__LCEQ(name, "received"))
            v->received = val;
        break;
    }
}

/* See sip_int.h. */
int sip__via_parse(str in, struct sip_via *v, str *rest, const char **why)
{
    const char *s = in.s;
    size_t n = in.len, i = sip__skip_ws(s, 0, n);
    v->raw = v->protocol = v->proto_name = v->proto_version = v->transport = STR_NULL;
    v->host = v->branch = v->received = v->maddr = v->ttl = v->params = STR_NULL;
    v->host_type = SIP_HOST_NONE;
    v->port = v->rport_value = 0;
    v->has_port = v->rport = v->has_rport_value = false;
    size_t start = i;
    str parts[3];
    if (n - i > 8 && memcmp(s + i, "SIP/2.0/", 8) == 0) { /* the usual spelling */
        parts[0] = str_make(s + i, 3);
        parts[1] = str_make(s + i + 4, 3);
        i = sip__skip_ws(s, i + 8, n);
    } else {
        /* name SWS "/" SWS version SWS "/" SWS (RFC 4475 wsinv) */
        for (int k = 0; k < 2; k++) {
            size_t b = i;
            i = sip__token_end(s, i, n);
            if (i == b) {
                *why = "sent-protocol is not name/version/transport";
                return -EINVAL;
            }
            parts[k] = str_make(s + b, i - b);
            i = sip__skip_ws(s, i, n);
            if (i >= n || s[i] != '/') {
                *why = "sent-protocol lacks '/'";
                return -EINVAL;
            }
            i = sip__skip_ws(s, i + 1, n);
        }
    }
    size_t tb = i;
    i = sip__token_end(s, i, n);
    if (i == tb) {
        *why = "sent-protocol has no transport";
        return -EINVAL;
    }
    parts[2] = str_make(s + tb, i - tb);
    v->proto_name = parts[0];
    v->proto_version = parts[1];
    v->transport = parts[2];
    v->protocol = str_make(s + start, (size_t)(parts[1].s + parts[1].len - (s + start)));
    size_t j = sip__skip_ws(s, i, n);
    if (j == i || j >= n) {
        *why = "sent-by missing";
        return -EINVAL;
    }
    i = j;
    /* sent-by: host [ SWS ":" SWS port ] */
    ssize_t hp = sip__hostport(s + i, n - i, &v->host, &v->host_type, &v->port, &v->has_port);
    if (hp <= 0) {
        *why = "bad sent-by host";
        return -EINVAL;
    }
    i += (size_t)hp;
    if (!v->has_port) {
        size_t k = sip__skip_ws(s, i, n);
        if (k < n && s[k] == ':') {
            k = sip__skip_ws(s, k + 1, n);
            size_t b = k;
            uint32_t p = 0;
            while (k < n && sip__is((unsigned char)s[k], SIP__C_DIGIT) && k - b < 6)
                p = p * 10 + (uint32_t)(s[k++] - '0');
            if (k == b || p > 65535) {
                *why = "bad sent-by port";
                return -EINVAL;
            }
            v->port = (uint16_t)p;
            v->has_port = true;
            i = k;
        }
    }
    size_t pb = sip__skip_ws(s, i, n);
    if (parse_gen_params(s, &i, n, true, via_param, v, why) < 0)
        return -EINVAL;
    if (pb < i && s[pb] == ';')
        v->params = sip__trim(str_make(s + pb + 1, i - pb - 1));
    v->raw = sip__trim(str_make(s + start, i - start));
    if (i < n) { /* at a ',' */
        i = sip__skip_ws(s, i + 1, n);
        if (i >= n) {
            *why = "empty value after ','";
            return -EINVAL;
        }
    }
    *rest = str_make(s + i, n - i);
    return 0;
}

/* See msg.h. */
int sip_via_parse(str s, struct sip_via *out, str *rest)
{
    const char *why;
    str r;
    return sip__via_parse(s, out, rest ? rest : &r, &why);
}

/* ---- name-addr ------------------------------------------------------------------------ */

static void addr_param(void *ctx, str name, str val)
{
    struct sip_addr *a = ctx;
    switch (name.len) {
    case 1:
        if (name.s[0] == 'q' || name.s[0] == 'Q')
            a->q = val;
        break;
    case 3:
        if (SIP__LCEQ(name, "tag"))
            a->tag = val;
        break;
    case 6:
        if (SIP__LCEQ(name, "reg-id"))
            a->reg_id = val;
        break;
    case 7:
        if (SIP__LCEQ(name, "expires"))
            a->expires = val;
        break;
    case 13:
        if (SIP__LCEQ(name, "+sip.instance"))
            a->instance = val;
        break;
    }
}

/* See sip_int.h. */
int sip__addr_parse(str in, struct sip_addr *a, str *rest, bool list, const char **why)
{
    const char *s = in.s;
    size_t n = in.len, i = sip__skip_ws(s, 0, n);
    /* field by field: a memset of the struct (rep stos) costs more than the rest here */
    a->raw = a->display = a->uri = a->params = STR_NULL;
    a->tag = a->expires = a->q = a->instance = a->reg_id = STR_NULL;
    a->display_quoted = a->star = false;
    size_t start = i;
    if (i >= n) {
        *why = "empty value";
        return -EINVAL;
    }
    if (s[i] == '*') {
        a->star = true;
        i++;
    } else {
        size_t lt = n;
        if (s[i] == '"') {
            size_t q = quoted_end(s, i, n);
            if (!q) {
                *why = "unterminated quoted string";
                return -EINVAL;
            }
            a->display = str_make(s + i + 1, q - i - 2);
            a->display_quoted = true;
            i = sip__skip_ws(s, q, n);
            if (i >= n || s[i] != '<') {
                *why = "quoted display name not followed by <";
                return -EINVAL;
            }
            lt = i;
        } else {
            size_t j = i;
            while (j < n && (sip__is((unsigned char)s[j], SIP__C_TOKEN | SIP__C_WS)))
                j++;
            if (j < n && s[j] == '<') {
                a->display = sip__trim(str_make(s + i, j - i));
                lt = j;
            }
        }
        if (lt < n) {
            const char *gt = memchr(s + lt, '>', n - lt);
            if (!gt) {
                *why = "'<' without '>'";
                return -EINVAL;
            }
            a->uri = sip__trim(str_make(s + lt + 1, (size_t)(gt - s) - lt - 1));
            i = (size_t)(gt - s) + 1;
        } else {
            /* addr-spec: the URI ends at whitespace, ';' or ',' (its parameters are the
             * header's, RFC 3261 §20.10) */
            size_t b = i;
            while (i < n && !sip__is((unsigned char)s[i], SIP__C_WS) && s[i] != ';' &&
                   !(list && s[i] == ',') && s[i] != '<' && s[i] != '"' && s[i] != '>')
                i++;
            a->uri = str_make(s + b, i - b);
            if (i < n && s[i] != ';' && s[i] != ',' && !sip__is((unsigned char)s[i], SIP__C_WS)) {
                *why = "display name is not a token or quoted string";
                return -EINVAL;
            }
        }
        if (a->uri.len == 0) {
            *why = "empty URI";
            return -EINVAL;
        }
    }
    size_t pb = sip__skip_ws(s, i, n);
    if (parse_gen_params(s, &i, n, list, addr_param, a, why) < 0) {
        if (s[pb] != ';' && !a->star)
            *why = "display name is not a token or quoted string";
        return -EINVAL;
    }
    if (pb < i && s[pb] == ';')
        a->params = sip__trim(str_make(s + pb + 1, i - pb - 1));
    a->raw = sip__trim(str_make(s + start, i - start));
    if (i < n) {
        i = sip__skip_ws(s, i + 1, n);
        if (i >= n) {
            *why = "empty value after ','";
            return -EINVAL;
        }
    }
    if (rest)
        *rest = str_make(s + i, n - i);
    return 0;
}

/* See msg.h. */
int sip_addr_parse(str s, struct sip_addr *out, str *rest, bool list)
{
    const char *why;
    return sip__addr_parse(s, out, rest, list, &why);
}

/* ---- generic values: token *( ";" param ) ------------------------------------------- */

/* See msg.h. */
int sip_value_split(str v, str *first, str *params)
{
    v = sip__trim(v);
    size_t i = 0;
    while (i < v.len && v.s[i] != ';') {
        if (v.s[i] == '"') {
            size_t q = quoted_end(v.s, i, v.len);
            if (!q)
                return -EINVAL;
            i = q;
        } else {
            i++;
        }
    }
    *first = sip__trim(str_make(v.s, i));
    *params = i < v.len ? sip__trim(str_make(v.s + i + 1, v.len - i - 1)) : str_make(v.s + i, 0);
    return first->len ? 0 : -EINVAL;
}

/* See msg.h. */
int sip_param_find(str params, str name, str *val)
{
    const char *s = params.s;
    size_t n = params.len, i = 0;
    while (i < n) {
        i = sip__skip_ws(s, i, n);
        size_t nb = i;
        i = sip__token_end(s, i, n);
        str pn = str_make(s + nb, i - nb);
        str pv = STR_NULL;
        i = sip__skip_ws(s, i, n);
        if (i < n && s[i] == '=') {
            i = sip__skip_ws(s, i + 1, n);
            size_t ve = gen_value_end(s, i, n);
            if (ve == 0)
                return -EINVAL;
            pv = str_make(s + i, ve - i);
            if (pv.len >= 2 && pv.s[0] == '"')
                pv = str_make(pv.s + 1, pv.len - 2);
            i = ve;
        }
        if (pn.len && str_caseeq(pn, name)) {
            *val = pv;
            return 0;
        }
        i = sip__skip_ws(s, i, n);
        if (i < n && s[i] != ';')
            return -EINVAL;
        i++;
    }
    return -ENOENT;
}

/* ---- digest ----------------------------------------------------------------------- */

/* the field of a known digest parameter, or NULL */
static str *auth_slot(struct sip_auth *a, str name)
{
    switch (name.len) {
    case 2:
        return SIP__LCEQ(name, "nc") ? &a->nc : NULL;
    case 3:
        if (SIP__LCEQ(name, "uri"))
            return &a->uri;
        return SIP__LCEQ(name, "qop") ? &a->qop : NULL;
    case 5:
        if (SIP__LCEQ(name, "realm"))
            return &a->realm;
        if (SIP__LCEQ(name, "nonce"))
            return &a->nonce;
        return SIP__LCEQ(name, "stale") ? &a->stale : NULL;
    case 6:
        if (SIP__LCEQ(name, "cnonce"))
            return &a->cnonce;
        if (SIP__LCEQ(name, "opaque"))
            return &a->opaque;
        return SIP__LCEQ(name, "domain") ? &a->domain : NULL;
    case 7:
        return SIP__LCEQ(name, "charset") ? &a->auth_param_charset : NULL;
    case 8:
        if (SIP__LCEQ(name, "username"))
            return &a->username;
        if (SIP__LCEQ(name, "response"))
            return &a->response;
        return SIP__LCEQ(name, "userhash") ? &a->userhash : NULL;
    case 9:
        return SIP__LCEQ(name, "algorithm") ? &a->algorithm : NULL;
    }
    return NULL;
}

/* See msg.h. */
int sip_auth_parse(str in, struct sip_auth *a)
{
    const char *s = in.s;
    size_t n = in.len, i = sip__skip_ws(s, 0, n);
    /* not the name/value arrays: only [0, nparams) is ever read */
    a->scheme = a->params_raw = STR_NULL;
    a->username = a->realm = a->nonce = a->uri = a->response = a->algorithm = STR_NULL;
    a->cnonce = a->opaque = a->qop = a->nc = a->stale = a->domain = STR_NULL;
    a->userhash = a->auth_param_charset = STR_NULL;
    a->quoted_escape = false;
    a->nparams = 0;
    size_t b = i;
    i = sip__token_end(s, i, n);
    if (i == b)
        return -EINVAL;
    a->scheme = str_make(s + b, i - b);
    size_t j = sip__skip_ws(s, i, n);
    if (j == n)
        return 0;
    if (j == i)
        return -EINVAL;
    a->params_raw = str_make(s + j, n - j);
    bool digest = str_caseeq(a->scheme, STR("Digest"));
    i = j;
    while (i < n) {
        size_t nb = i;
        i = sip__token_end(s, i, n);
        size_t ne = i;
        i = sip__skip_ws(s, i, n);
        if (ne == nb || i >= n || s[i] != '=')
            return digest ? -EINVAL : 0; /* other schemes may use token68 forms */
        i = sip__skip_ws(s, i + 1, n);
        str val;
        if (i < n && s[i] == '"') {
            size_t q = quoted_end(s, i, n);
            if (!q)
                return -EINVAL;
            val = str_make(s + i + 1, q - i - 2);
            if (memchr(val.s, '\\', val.len))
                a->quoted_escape = true;
            i = q;
        } else {
            size_t vb = i;
            i = sip__token_end(s, i, n);
            if (i == vb)
                return -EINVAL;
            val = str_make(s + vb, i - vb);
        }
        if (a->nparams >= SIP_AUTH_MAX_PARAMS)
            return -E2BIG;
        str name = str_make(s + nb, ne - nb);
        a->names[a->nparams] = name;
        a->values[a->nparams++] = val;
        str *slot = auth_slot(a, name);
        if (slot)
            *slot = val;
        i = sip__skip_ws(s, i, n);
        if (i < n) {
            if (s[i] != ',')
                return -EINVAL;
            i = sip__skip_ws(s, i + 1, n);
        }
    }
    return 0;
}

/* See msg.h. */
ssize_t sip_unquote(str s, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.s[i];
        if (c == '\\' && i + 1 < s.len)
            c = s.s[++i];
        if (o + 1 >= cap) {
            if (cap)
                dst[0] = 0;
            return -ENOSPC;
        }
        dst[o++] = c;
    }
    if (cap == 0)
        return -ENOSPC;
    dst[o] = 0;
    return (ssize_t)o;
}

/* ---- cached accessors ---------------------------------------------------------------- */

struct addr_list {
    bool done;
    const struct sip_addr *v;
    size_t n;
};

struct sip_msg_cache {
    bool vias_done;
    const struct sip_via *vias;
    size_t nvias;
    struct addr_list contacts, routes, rroutes;
    bool auth_done[4];
    struct sip_auth *auth[4];
};

static int cache_get(struct sip_msg *m, struct arena *a)
{
    if (!m->cache) {
        m->cache = arena_calloc(a, 1, sizeof(*m->cache));
        if (!m->cache)
            return -ENOMEM;
    }
    return 0;
}

/* See msg.h. */
int sip_msg_vias(struct sip_msg *m, struct arena *a, const struct sip_via **out, size_t *n)
{
    if (cache_get(m, a) < 0)
        return -ENOMEM;
    struct sip_msg_cache *c = m->cache;
    if (!c->vias_done) {
        struct sip_via *v = arena_alloc(a, (m->nvia ? m->nvia : 1) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        /* the top value was parsed by sip_msg_parse: reuse it */
        size_t k = 0;
        const struct sip_hdr *h = sip_msg_hdr(m, SIP_H_VIA);
        if (h && m->nvia) {
            v[k++] = m->via;
            str rest = m->via1_rest;
            for (;;) {
                const char *why;
                while (rest.len && k < m->nvia)
                    if (sip__via_parse(rest, &v[k++], &rest, &why) < 0)
                        return sip__fail(&m->err, SIP_E_VIA, "Via: %s", why);
                h = sip_msg_hdr_next(m, h);
                if (!h || k >= m->nvia)
                    break;
                rest = h->value;
            }
        }
        c->vias = v;
        c->nvias = k;
        c->vias_done = true;
    }
    *out = c->vias;
    *n = c->nvias;
    return 0;
}

static int addr_list(struct sip_msg *m, struct arena *a, enum sip_hdr_id id,
                     struct addr_list *l, enum sip_err code, const char *what)
{
    if (l->done)
        return 0;
    size_t cnt = 0;
    struct sip_value_iter it = { 0 };
    str v;
    /* an upper bound: commas + 1 per header line */
    for (const struct sip_hdr *h = sip_msg_hdr(m, id); h; h = sip_msg_hdr_next(m, h)) {
        cnt++;
        const char *p = h->value.s, *e = p + h->value.len;
        while (p < e && (p = memchr(p, ',', (size_t)(e - p)))) {
            cnt++;
            p++;
        }
    }
    if (cnt > 65535)
        cnt = 65535;
    struct sip_addr *arr = arena_alloc(a, (cnt ? cnt : 1) * sizeof(*arr));
    if (!arr)
        return -ENOMEM;
    size_t k = 0;
    for (const struct sip_hdr *h = sip_msg_hdr(m, id); h; h = sip_msg_hdr_next(m, h)) {
        str rest = h->value;
        const char *why = "malformed";
        if (rest.len == 0)
            return sip__fail(&m->err, code, "%s header is empty", what);
        while (rest.len && k < cnt)
            if (sip__addr_parse(rest, &arr[k++], &rest, true, &why) < 0)
                return sip__fail(&m->err, code, "%s header %.*s: %s", what,
                                 SIP__EXCERPT(h->value), why);
    }
    (void)it;
    (void)v;
    l->v = arr;
    l->n = k;
    l->done = true;
    return 0;
}

/* See msg.h. */
int sip_msg_contacts(struct sip_msg *m, struct arena *a, const struct sip_addr **out, size_t *n)
{
    if (cache_get(m, a) < 0)
        return -ENOMEM;
    int rc = addr_list(m, a, SIP_H_CONTACT, &m->cache->contacts, SIP_E_CONTACT, "Contact");
    if (rc < 0)
        return rc;
    const struct addr_list *l = &m->cache->contacts;
    /* '*' is only valid alone (RFC 3261 §10.2.2) */
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].star && l->n != 1)
            return sip__fail(&m->err, SIP_E_CONTACT, "Contact * must be the only contact");
    *out = l->v;
    *n = l->n;
    return 0;
}

/* See msg.h. */
int sip_msg_routes(struct sip_msg *m, struct arena *a, const struct sip_addr **out, size_t *n)
{
    if (cache_get(m, a) < 0)
        return -ENOMEM;
    int rc = addr_list(m, a, SIP_H_ROUTE, &m->cache->routes, SIP_E_ROUTE, "Route");
    if (rc < 0)
        return rc;
    *out = m->cache->routes.v;
    *n = m->cache->routes.n;
    return 0;
}

/* See msg.h. */
int sip_msg_record_routes(struct sip_msg *m, struct arena *a, const struct sip_addr **out,
                          size_t *n)
{
    if (cache_get(m, a) < 0)
        return -ENOMEM;
    int rc = addr_list(m, a, SIP_H_RECORD_ROUTE, &m->cache->rroutes, SIP_E_ROUTE,
                       "Record-Route");
    if (rc < 0)
        return rc;
    *out = m->cache->rroutes.v;
    *n = m->cache->rroutes.n;
    return 0;
}

/* See msg.h. */
int sip_msg_auth(struct sip_msg *m, struct arena *a, enum sip_hdr_id id,
                 const struct sip_auth **out)
{
    int slot = id == SIP_H_AUTHORIZATION         ? 0
               : id == SIP_H_PROXY_AUTHORIZATION ? 1
               : id == SIP_H_WWW_AUTHENTICATE    ? 2
               : id == SIP_H_PROXY_AUTHENTICATE  ? 3
                                                 : -1;
    if (slot < 0)
        return -EINVAL;
    if (cache_get(m, a) < 0)
        return -ENOMEM;
    struct sip_msg_cache *c = m->cache;
    if (!c->auth_done[slot]) {
        const struct sip_hdr *h = sip_msg_hdr(m, id);
        if (h) {
            struct sip_auth *au = arena_alloc(a, sizeof(*au));
            if (!au)
                return -ENOMEM;
            int rc = sip_auth_parse(h->value, au);
            if (rc < 0)
                return sip__fail(&m->err, SIP_E_AUTH, "%s header is malformed",
                                 sip__hdr_desc[id].name);
            c->auth[slot] = au;
        }
        c->auth_done[slot] = true;
    }
    *out = c->auth[slot];
    return 0;
}
