/*
 * sip/uri — SIP, SIPS and tel URIs over slices (RFC 3261 §19.1, §25; RFC 3966), other
 * schemes kept opaque, and URI equality by RFC 3261 §19.1.4.
 */
#include <errno.h>
#include <string.h>

#include "sip/msg.h"
#include "sip/sip_int.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = str_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* checks s[b..e) against the set (escapes allowed) */
static bool valid_part(const char *s, size_t b, size_t e, unsigned set)
{
    for (size_t i = b; i < e; i++) {
        unsigned char c = (unsigned char)s[i];
        if (sip__uc[c] & set)
            continue;
        if (c != '%' || i + 2 >= e || hexval((unsigned char)s[i + 1]) < 0 ||
            hexval((unsigned char)s[i + 2]) < 0)
            return false;
        i += 2;
    }
    return true;
}

/* See sip_int.h. */
ssize_t sip__hostport(const char *s, size_t n, str *host, enum sip_host_type *type,
                      uint16_t *port, bool *has_port)
{
    size_t i = 0;
    *has_port = false;
    *port = 0;
    if (n && s[0] == '[') {
        i = 1;
        while (i < n && (sip__is((unsigned char)s[i], SIP__C_HEX) || s[i] == ':' || s[i] == '.'))
            i++;
        if (i >= n || s[i] != ']' || i < 3)
            return -1;
        i++;
        *type = SIP_HOST_IPV6;
    } else {
        while (i < n && (sip__uc[(unsigned char)s[i]] & SIP__U_HOST))
            i++;
        if (i == 0 || s[0] == '.' || s[0] == '-')
            return -1;
        *type = SIP_HOST_NAME;
        if (sip__is((unsigned char)s[0], SIP__C_DIGIT)) {
            /* all digits and three dots: IPv4; all digits and dots otherwise: invalid */
            unsigned dots = 0;
            size_t k = 0;
            for (; k < i; k++) {
                if (s[k] == '.')
                    dots++;
                else if (!sip__is((unsigned char)s[k], SIP__C_DIGIT))
                    break;
            }
            if (k == i) {
                if (dots != 3)
                    return -1;
                *type = SIP_HOST_IPV4;
            }
        }
    }
    *host = str_make(s, i);
    if (i < n && s[i] == ':') {
        size_t b = ++i;
        uint32_t v = 0;
        while (i < n && sip__is((unsigned char)s[i], SIP__C_DIGIT) && i - b < 6) {
            v = v * 10 + (uint32_t)(s[i] - '0');
            i++;
        }
        if (i == b || v > 65535 || (i < n && sip__is((unsigned char)s[i], SIP__C_DIGIT)))
            return -1;
        *port = (uint16_t)v;
        *has_port = true;
    }
    return (ssize_t)i;
}

static void note_param(struct sip_uri *u, str name, str val)
{
    switch (name.len) {
    case 2:
        if (SIP__LCEQ(name, "lr"))
            u->lr = true;
        else if (SIP__LCEQ(name, "ob"))
            u->ob = true;
        else if (SIP__LCEQ(name, "gr")) {
            u->gr = true;
            u->gr_value = val;
        }
        break;
    case 3:
        if (SIP__LCEQ(name, "ttl"))
            u->ttl = val;
        break;
    case 4:
        if (SIP__LCEQ(name, "user"))
            u->user_param = val;
        break;
    case 5:
        if (SIP__LCEQ(name, "maddr"))
            u->maddr = val;
        break;
    case 6:
        if (SIP__LCEQ(name, "method"))
            u->method = val;
        break;
    case 9:
        if (SIP__LCEQ(name, "transport"))
            u->transport = val;
        break;
    }
}

/* params "a=b;c" : every name non-empty and of paramchar; notes the known ones */
static int parse_params(struct sip_uri *u, str p, bool tel)
{
    unsigned extra = tel ? SIP__U_TELPAR : SIP__U_PARAM;
    size_t i = 0;
    while (i <= p.len) {
        const char *semi = memchr(p.s + i, ';', p.len - i);
        size_t e = semi ? (size_t)(semi - p.s) : p.len;
        const char *eq = memchr(p.s + i, '=', e - i);
        size_t ne = eq ? (size_t)(eq - p.s) : e;
        if (ne == i || !valid_part(p.s, i, ne, extra))
            return -EINVAL;
        str val = STR_NULL;
        if (eq) {
            if (!valid_part(p.s, ne + 1, e, extra))
                return -EINVAL;
            val = str_make(p.s + ne + 1, e - ne - 1);
        }
        if (!tel)
            note_param(u, str_make(p.s + i, ne - i), val);
        if (!semi)
            break;
        i = e + 1;
    }
    return 0;
}

static int parse_sip(str s, size_t i, struct sip_uri *u)
{
    const char *at = memchr(s.s + i, '@', s.len - i);
    if (at) {
        size_t ae = (size_t)(at - s.s);
        const char *colon = memchr(s.s + i, ':', ae - i);
        size_t ue = colon ? (size_t)(colon - s.s) : ae;
        if (ue == i || !valid_part(s.s, i, ue, SIP__U_USER))
            return -EINVAL;
        u->user = str_make(s.s + i, ue - i);
        if (colon) {
            if (!valid_part(s.s, ue + 1, ae, SIP__U_PASS))
                return -EINVAL;
            u->password = str_make(s.s + ue + 1, ae - ue - 1);
        }
        i = ae + 1;
    }
    ssize_t hp = sip__hostport(s.s + i, s.len - i, &u->host, &u->host_type, &u->port,
                               &u->has_port);
    if (hp <= 0)
        return -EINVAL;
    i += (size_t)hp;
    if (i < s.len && s.s[i] == ';') {
        const char *q = memchr(s.s + i, '?', s.len - i);
        size_t pe = q ? (size_t)(q - s.s) : s.len;
        u->params = str_make(s.s + i + 1, pe - i - 1);
        if (parse_params(u, u->params, false) < 0)
            return -EINVAL;
        i = pe;
    }
    if (i < s.len && s.s[i] == '?') {
        u->headers = str_make(s.s + i + 1, s.len - i - 1);
        if (!valid_part(s.s, i + 1, s.len, SIP__U_HDR))
            return -EINVAL;
        i = s.len;
    }
    return i == s.len ? 0 : -EINVAL;
}

/* See sip_int.h. */
void sip__uri_clear(struct sip_uri *u)
{
    /* field by field: cheaper than a memset of the whole struct */
    u->scheme = SIP_URI_OTHER;
    u->host_type = SIP_HOST_NONE;
    u->scheme_s = u->user = u->password = u->host = u->params = u->headers = STR_NULL;
    u->transport = u->user_param = u->method = u->ttl = u->maddr = u->gr_value = STR_NULL;
    u->opaque = STR_NULL;
    u->port = 0;
    u->has_port = u->lr = u->ob = u->gr = false;
}

/* See msg.h. */
int sip_uri_parse(str s, struct sip_uri *u)
{
    sip__uri_clear(u);
    u->raw = s;
    size_t i = 0;
    if (s.len == 0 || !sip__is((unsigned char)s.s[0], SIP__C_ALPHA))
        return -EINVAL;
    while (i < s.len && sip__is((unsigned char)s.s[i], SIP__C_SCHEME))
        i++;
    if (i >= s.len || s.s[i] != ':')
        return -EINVAL;
    u->scheme_s = str_make(s.s, i);
    i++;
    if (u->scheme_s.len == 3 && str_caseeq(u->scheme_s, STR("sip")))
        u->scheme = SIP_URI_SIP;
    else if (u->scheme_s.len == 4 && str_caseeq(u->scheme_s, STR("sips")))
        u->scheme = SIP_URI_SIPS;
    else if (u->scheme_s.len == 3 && str_caseeq(u->scheme_s, STR("tel")))
        u->scheme = SIP_URI_TEL;
    if (u->scheme == SIP_URI_SIP || u->scheme == SIP_URI_SIPS)
        return parse_sip(s, i, u);
    if (u->scheme == SIP_URI_TEL) {
        const char *semi = memchr(s.s + i, ';', s.len - i);
        size_t e = semi ? (size_t)(semi - s.s) : s.len;
        if (e == i)
            return -EINVAL;
        for (size_t k = i; k < e; k++) {
            unsigned char c = (unsigned char)s.s[k];
            if (!(sip__uc[c] & SIP__U_TELNUM))
                return -EINVAL;
        }
        u->user = str_make(s.s + i, e - i);
        if (semi) {
            u->params = str_make(s.s + e + 1, s.len - e - 1);
            if (parse_params(u, u->params, true) < 0)
                return -EINVAL;
        }
        return 0;
    }
    if (i >= s.len)
        return -EINVAL;
    for (size_t k = i; k < s.len; k++) {
        unsigned char c = (unsigned char)s.s[k];
        if (c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"')
            return -EINVAL;
    }
    u->opaque = str_make(s.s + i, s.len - i);
    return 0;
}

/* ---- comparison ------------------------------------------------------------------ */

/* next decoded byte of s at *i (escapes decoded), -1 at the end */
static int next_dec(str s, size_t *i)
{
    if (*i >= s.len)
        return -1;
    unsigned char c = (unsigned char)s.s[*i];
    if (c == '%' && *i + 2 < s.len) {
        int h = hexval((unsigned char)s.s[*i + 1]), l = hexval((unsigned char)s.s[*i + 2]);
        if (h >= 0 && l >= 0) {
            *i += 3;
            return h * 16 + l;
        }
    }
    (*i)++;
    return c;
}

static bool dec_eq(str a, str b, bool ci)
{
    size_t i = 0, j = 0;
    for (;;) {
        int x = next_dec(a, &i), y = next_dec(b, &j);
        if (x < 0 || y < 0)
            return x == y;
        if (ci) {
            x = str_lower((unsigned char)x);
            y = str_lower((unsigned char)y);
        }
        if (x != y)
            return false;
    }
}

/* finds parameter name (decoded, case-insensitive) in a ';'-list (sep) */
static bool find_param(str list, str name, char sep, str *val, bool *has)
{
    size_t i = 0;
    while (i < list.len) {
        const char *semi = memchr(list.s + i, sep, list.len - i);
        size_t e = semi ? (size_t)(semi - list.s) : list.len;
        const char *eq = memchr(list.s + i, '=', e - i);
        size_t ne = eq ? (size_t)(eq - list.s) : e;
        if (dec_eq(str_make(list.s + i, ne - i), name, true)) {
            *val = eq ? str_make(list.s + ne + 1, e - ne - 1) : STR_NULL;
            *has = true;
            return true;
        }
        i = e + 1;
    }
    *has = false;
    return false;
}

/* See msg.h. */
int sip_uri_param(const struct sip_uri *u, str name, str *val)
{
    bool has;
    return find_param(u->params, name, ';', val, &has) ? 0 : -ENOENT;
}

/* every param of a that is also in b must match; the "must" ones must be in both */
static bool params_match(str a, str b)
{
    static const str must[] = { STR("user"), STR("ttl"), STR("method"), STR("maddr"),
                                STR("transport") };
    for (size_t k = 0; k < sizeof(must) / sizeof(must[0]); k++) {
        str va, vb;
        bool ha, hb;
        find_param(a, must[k], ';', &va, &ha);
        find_param(b, must[k], ';', &vb, &hb);
        if (ha != hb || (ha && !dec_eq(va, vb, true)))
            return false;
    }
    size_t i = 0;
    while (i < a.len) {
        const char *semi = memchr(a.s + i, ';', a.len - i);
        size_t e = semi ? (size_t)(semi - a.s) : a.len;
        const char *eq = memchr(a.s + i, '=', e - i);
        size_t ne = eq ? (size_t)(eq - a.s) : e;
        str va, vb, name = str_make(a.s + i, ne - i);
        bool ha, hb;
        (void)eq;
        /* the first occurrence in each list decides, so that equality is reflexive */
        find_param(a, name, ';', &va, &ha);
        if (find_param(b, name, ';', &vb, &hb) && !dec_eq(va, vb, true))
            return false;
        i = e + 1;
    }
    return true;
}

/*
 * Every name=value item of a (items separated by sep) is in b with an equal value
 * (escapes decoded; values compared case-insensitively when nocase). The callers check
 * both directions.
 */
static bool items_sub(str a, str b, char sep, bool nocase)
{
    size_t i = 0;
    while (i < a.len) {
        const char *end = memchr(a.s + i, sep, a.len - i);
        size_t e = end ? (size_t)(end - a.s) : a.len;
        const char *eq = memchr(a.s + i, '=', e - i);
        size_t ne = eq ? (size_t)(eq - a.s) : e;
        str va, vb, name = str_make(a.s + i, ne - i);
        bool ha, hb;
        find_param(a, name, sep, &va, &ha);
        if (!find_param(b, name, sep, &vb, &hb) || !dec_eq(va, vb, nocase))
            return false;
        i = e + 1;
    }
    return true;
}

static void tel_digits(str s, char *out, size_t cap, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < s.len && *n < cap; i++)
        if (!strchr("-.()", s.s[i]))
            out[(*n)++] = (char)str_lower((unsigned char)s.s[i]);
}


/* See msg.h. */
bool sip_uri_eq(const struct sip_uri *a, const struct sip_uri *b)
{
    if (a->scheme != b->scheme)
        return false;
    switch (a->scheme) {
    case SIP_URI_SIP:
    case SIP_URI_SIPS:
        if (!dec_eq(a->user, b->user, false) || !dec_eq(a->password, b->password, false) ||
            (a->password.len == 0) != (b->password.len == 0))
            return false;
        if (!str_caseeq(a->host, b->host) || a->has_port != b->has_port || a->port != b->port)
            return false;
        return params_match(a->params, b->params) &&
               items_sub(a->headers, b->headers, '&', false) &&
               items_sub(b->headers, a->headers, '&', false);
    case SIP_URI_TEL: {
        char da[64], db[64];
        size_t na, nb;
        tel_digits(a->user, da, sizeof(da), &na);
        tel_digits(b->user, db, sizeof(db), &nb);
        return na == nb && memcmp(da, db, na) == 0 && items_sub(a->params, b->params, ';', true) &&
               items_sub(b->params, a->params, ';', true);
    }
    default:
        return str_caseeq(a->scheme_s, b->scheme_s) && str_eq(a->opaque, b->opaque);
    }
}
