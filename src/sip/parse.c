/*
 * sip/parse — sip_msg_parse: start line, header index and the core headers, in place
 * over the caller's bytes; sip_frame for stream transports; the error table.
 * Lines are found with memchr; header names by the generated table (hdr_table.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/config.h"
#include "sip/msg.h"
#include "sip/sip_int.h"

/* ---- error table ----------------------------------------------------------------- */

static const struct sip_err_desc err_table[SIP_E__COUNT] = {
    [SIP_E_NONE] = { 0, "none", "" },
    [SIP_E_TOO_LARGE] = { 513, "too-large", "Message Too Large" },
    [SIP_E_BODY_TOO_LARGE] = { 413, "body-too-large", "Request Entity Too Large" },
    [SIP_E_TOO_MANY_HEADERS] = { 513, "too-many-headers", "Too many header fields" },
    [SIP_E_HEADER_TOO_LONG] = { 513, "header-too-long", "Header field too long" },
    [SIP_E_INCOMPLETE] = { 400, "incomplete", "Message has no end of headers" },
    [SIP_E_START_LINE] = { 400, "start-line", "Malformed start line" },
    [SIP_E_METHOD] = { 400, "method", "Malformed method" },
    [SIP_E_REQUEST_URI] = { 400, "request-uri", "Malformed Request-URI" },
    [SIP_E_URI_SCHEME] = { 416, "uri-scheme", "Unsupported URI Scheme" },
    [SIP_E_VERSION] = { 505, "version", "Version Not Supported" },
    [SIP_E_STATUS] = { 400, "status", "Malformed status code" },
    [SIP_E_HEADER_SYNTAX] = { 400, "header-syntax", "Malformed header line" },
    [SIP_E_HEADER_MISSING] = { 400, "header-missing", "Missing mandatory header" },
    [SIP_E_HEADER_DUP] = { 400, "header-dup", "Header allowed once appears twice" },
    [SIP_E_VIA] = { 400, "via", "Malformed Via" },
    [SIP_E_FROM] = { 400, "from", "Malformed From" },
    [SIP_E_TO] = { 400, "to", "Malformed To" },
    [SIP_E_CALL_ID] = { 400, "call-id", "Malformed Call-ID" },
    [SIP_E_CSEQ] = { 400, "cseq", "Malformed CSeq" },
    [SIP_E_CSEQ_METHOD] = { 400, "cseq-method", "CSeq method does not match" },
    [SIP_E_MAX_FORWARDS] = { 400, "max-forwards", "Malformed Max-Forwards" },
    [SIP_E_CONTENT_LENGTH] = { 400, "content-length", "Malformed Content-Length" },
    [SIP_E_BODY_SHORT] = { 400, "body-short", "Content-Length exceeds the body" },
    [SIP_E_EXPIRES] = { 400, "expires", "Malformed Expires" },
    [SIP_E_CONTACT] = { 400, "contact", "Malformed Contact" },
    [SIP_E_ROUTE] = { 400, "route", "Malformed Route" },
    [SIP_E_AUTH] = { 400, "auth", "Malformed credentials" },
};

/* See msg.h. */
const struct sip_err_desc *sip_err_desc(enum sip_err e)
{
    if ((unsigned)e >= SIP_E__COUNT)
        e = SIP_E_NONE;
    return &err_table[e];
}

/* See sip_int.h. Only on the error path. */
int sip__fail(struct sip_error *err, enum sip_err code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->status = err_table[code].status;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
        va_end(ap);
        if (n < 0)
            err->reason[0] = 0;
        for (char *p = err->reason; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
    }
    return code == SIP_E_TOO_LARGE || code == SIP_E_BODY_TOO_LARGE ||
                   code == SIP_E_TOO_MANY_HEADERS || code == SIP_E_HEADER_TOO_LONG
               ? -EMSGSIZE
               : -EPROTO;
}

/* ---- tables: methods, header names ---------------------------------------------- */

static const str method_names[SIP_M__COUNT] = {
    [SIP_M_OTHER] = { "", 0 },          [SIP_M_INVITE] = STR("INVITE"),
    [SIP_M_ACK] = STR("ACK"),           [SIP_M_BYE] = STR("BYE"),
    [SIP_M_CANCEL] = STR("CANCEL"),     [SIP_M_REGISTER] = STR("REGISTER"),
    [SIP_M_OPTIONS] = STR("OPTIONS"),   [SIP_M_INFO] = STR("INFO"),
    [SIP_M_UPDATE] = STR("UPDATE"),     [SIP_M_PRACK] = STR("PRACK"),
    [SIP_M_SUBSCRIBE] = STR("SUBSCRIBE"), [SIP_M_NOTIFY] = STR("NOTIFY"),
    [SIP_M_PUBLISH] = STR("PUBLISH"),   [SIP_M_MESSAGE] = STR("MESSAGE"),
    [SIP_M_REFER] = STR("REFER"),
};

/* See msg.h. */
enum sip_method sip_method_from_str(str s)
{
    if (s.len < 3 || s.len > 9)
        return SIP_M_OTHER;
    enum sip_method m;
    switch (s.s[0]) {
    case 'I': m = s.len == 6 ? SIP_M_INVITE : SIP_M_INFO; break;
    case 'A': m = SIP_M_ACK; break;
    case 'B': m = SIP_M_BYE; break;
    case 'C': m = SIP_M_CANCEL; break;
    case 'R': m = s.len == 8 ? SIP_M_REGISTER : SIP_M_REFER; break;
    case 'O': m = SIP_M_OPTIONS; break;
    case 'U': m = SIP_M_UPDATE; break;
    case 'P': m = s.len == 5 ? SIP_M_PRACK : SIP_M_PUBLISH; break;
    case 'S': m = SIP_M_SUBSCRIBE; break;
    case 'N': m = SIP_M_NOTIFY; break;
    case 'M': m = SIP_M_MESSAGE; break;
    default: return SIP_M_OTHER;
    }
    return str_eq(s, method_names[m]) ? m : SIP_M_OTHER;
}

/* See msg.h. */
str sip_method_name(enum sip_method m)
{
    return (unsigned)m < SIP_M__COUNT ? method_names[m] : STR_NULL;
}

/* See msg.h. */
str sip_hdr_name(enum sip_hdr_id id)
{
    if ((unsigned)id >= SIP_H__COUNT)
        return STR_NULL;
    return str_cstr(sip__hdr_desc[id].name);
}

/* See msg.h. */
enum sip_hdr_id sip_hdr_lookup(str name)
{
    return name.len ? sip__hdr_lookup(name.s, name.len) : SIP_H_OTHER;
}

/* See msg.h. */
bool sip_hdr_is_list(enum sip_hdr_id id)
{
    return (unsigned)id < SIP_H__COUNT && (sip__hdr_desc[id].flags & SIP__HF_LIST);
}

/* See msg.h. */
void sip_limits_from_config(struct sip_limits *l, const struct config *cfg)
{
    l->max_message_size = cfg->sip.max_message_size;
    l->max_headers = cfg->sip.max_headers;
    l->max_header_length = cfg->sip.max_header_length;
}

/* See msg.h. */
void sip_msg_init(struct sip_msg *m, struct sip_hdr *hdrs, size_t cap)
{
    m->nhdrs = 0;
    m->cache = NULL;
    m->err.code = SIP_E_NONE;
    m->hdrs = hdrs;
    m->hdr_cap = (uint16_t)(cap > 65534 ? 65534 : cap);
}

/* ---- numbers ---------------------------------------------------------------------- */

/* Decimal digits only; saturates at UINT64_MAX (sets *over). */
static bool parse_u64(str s, uint64_t *out, bool *over)
{
    uint64_t v = 0;
    *over = false;
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.s[i] - '0';
        if (d > 9)
            return false;
        if (v > (UINT64_MAX - d) / 10) {
            *over = true;
            v = UINT64_MAX;
        } else if (!*over) {
            v = v * 10 + d;
        }
    }
    *out = v;
    return true;
}

/* ---- start line ------------------------------------------------------------------- */

static int parse_status_line(struct sip_msg *m, str line)
{
    /* "SIP/2.0" SP 3DIGIT SP Reason-Phrase */
    if (line.len < 7 || memcmp(line.s, "SIP/2.0", 7) != 0)
        return sip__fail(&m->err, SIP_E_VERSION, "SIP-Version %.*s not supported",
                         SIP__EXCERPT(line));
    size_t i = 7;
    if (i >= line.len || line.s[i] != ' ')
        return sip__fail(&m->err, SIP_E_START_LINE, "Status-Line lacks a space after SIP/2.0");
    while (i < line.len && line.s[i] == ' ')
        i++;
    size_t b = i;
    while (i < line.len && sip__is((unsigned char)line.s[i], SIP__C_DIGIT))
        i++;
    if (i - b != 3 || (i < line.len && line.s[i] != ' '))
        return sip__fail(&m->err, SIP_E_STATUS, "Status-Code %.*s is not three digits",
                         SIP__EXCERPT(str_make(line.s + b, line.len - b)));
    m->status = (uint16_t)((line.s[b] - '0') * 100 + (line.s[b + 1] - '0') * 10 +
                           (line.s[b + 2] - '0'));
    if (m->status < 100 || m->status > 699)
        return sip__fail(&m->err, SIP_E_STATUS, "Status-Code %u out of range", m->status);
    if (i < line.len)
        i++;
    m->reason = str_make(line.s + i, line.len - i);
    m->is_request = false;
    sip__uri_clear(&m->ruri);
    return 0;
}

static int parse_request_line(struct sip_msg *m, str line)
{
    /* Method SP Request-URI SP SIP-Version; several spaces and trailing spaces are
     * accepted (RFC 4475 lwsstart/trws: liberal), a space inside the URI is not. */
    size_t i = sip__token_end(line.s, 0, line.len);
    if (i == 0 || i >= line.len || line.s[i] != ' ')
        return sip__fail(&m->err, i == 0 ? SIP_E_START_LINE : SIP_E_METHOD,
                         "Request-Line method %.*s is not a token",
                         SIP__EXCERPT(str_make(line.s, i < line.len ? i + 1 : i)));
    m->method_name = str_make(line.s, i);
    m->method = sip_method_from_str(m->method_name);
    size_t e = line.len;
    while (e > i && line.s[e - 1] == ' ')
        e--;
    size_t v = e;
    while (v > i && line.s[v - 1] != ' ')
        v--;
    str ver = str_make(line.s + v, e - v);
    while (i < v && line.s[i] == ' ')
        i++;
    size_t ue = v;
    while (ue > i && line.s[ue - 1] == ' ')
        ue--;
    if (i >= ue || ver.len < 4 || strncasecmp(ver.s, "SIP/", 4) != 0)
        return sip__fail(&m->err, SIP_E_START_LINE, "Request-Line lacks SIP-Version");
    if (!str_eq(ver, STR("SIP/2.0")))
        return sip__fail(&m->err, SIP_E_VERSION, "SIP-Version %.*s not supported",
                         SIP__EXCERPT(ver));
    m->ruri_raw = str_make(line.s + i, ue - i);
    for (size_t k = 0; k < m->ruri_raw.len; k++) {
        unsigned char c = (unsigned char)m->ruri_raw.s[k];
        if (c <= ' ' || c >= 0x7f)
            return sip__fail(&m->err, SIP_E_REQUEST_URI,
                             c == ' ' ? "whitespace inside the Request-URI"
                                      : "control character in the Request-URI");
    }
    if (m->ruri_raw.s[0] == '<')
        return sip__fail(&m->err, SIP_E_REQUEST_URI,
                         "Request-URI must not be enclosed in angle brackets");
    if (sip_uri_parse(m->ruri_raw, &m->ruri) < 0)
        return sip__fail(&m->err, SIP_E_REQUEST_URI, "malformed Request-URI %.*s",
                         SIP__EXCERPT(m->ruri_raw));
    if (m->ruri.scheme == SIP_URI_OTHER)
        return sip__fail(&m->err, SIP_E_URI_SCHEME, "Unsupported URI scheme %.*s",
                         SIP__EXCERPT(m->ruri.scheme_s));
    m->is_request = true;
    return 0;
}

/* ---- core headers ------------------------------------------------------------------ */

static int parse_cseq(struct sip_msg *m, str v)
{
    size_t i = 0;
    while (i < v.len && sip__is((unsigned char)v.s[i], SIP__C_DIGIT))
        i++;
    str num = str_make(v.s, i);
    uint64_t n;
    bool over;
    if (!parse_u64(num, &n, &over))
        return sip__fail(&m->err, SIP_E_CSEQ, "CSeq %.*s has no sequence number",
                         SIP__EXCERPT(v));
    if (over || n > 0x7fffffffu)
        return sip__fail(&m->err, SIP_E_CSEQ, "CSeq number %.*s is above 2^31-1",
                         SIP__EXCERPT(num));
    size_t j = sip__skip_ws(v.s, i, v.len);
    if (j == i)
        return sip__fail(&m->err, SIP_E_CSEQ, "CSeq %.*s lacks a space before the method",
                         SIP__EXCERPT(v));
    size_t e = sip__token_end(v.s, j, v.len);
    if (e == j || e != v.len)
        return sip__fail(&m->err, SIP_E_CSEQ, "CSeq method %.*s is not a token",
                         SIP__EXCERPT(str_make(v.s + j, v.len - j)));
    m->cseq.num = (uint32_t)n;
    m->cseq.method_name = str_make(v.s + j, e - j);
    m->cseq.method = sip_method_from_str(m->cseq.method_name);
    if (m->is_request && !str_eq(m->cseq.method_name, m->method_name))
        return sip__fail(&m->err, SIP_E_CSEQ_METHOD,
                         "CSeq method %.*s does not match request method %.*s",
                         SIP__EXCERPT(m->cseq.method_name), SIP__EXCERPT(m->method_name));
    return 0;
}

static int parse_vias(struct sip_msg *m)
{
    const struct sip_hdr *h = sip_msg_hdr(m, SIP_H_VIA);
    unsigned n = 0;
    for (; h; h = sip_msg_hdr_next(m, h)) {
        str rest = h->value;
        do {
            struct sip_via tmp, *v = n == 0 ? &m->via : &tmp;
            const char *why = "malformed";
            if (sip__via_parse(rest, v, &rest, &why) < 0)
                return sip__fail(&m->err, SIP_E_VIA, "Via %.*s: %s", SIP__EXCERPT(h->value),
                                 why);
            if (n == 0)
                m->via1_rest = rest;
            n++;
        } while (rest.len);
    }
    m->nvia = (uint16_t)(n > 65535 ? 65535 : n);
    return 0;
}

static int parse_addr_hdr(struct sip_msg *m, enum sip_hdr_id id, struct sip_addr *a,
                          enum sip_err code, const char *what)
{
    const struct sip_hdr *h = sip_msg_hdr(m, id);
    const char *why = "malformed";
    if (sip__addr_parse(h->value, a, NULL, false, &why) < 0)
        return sip__fail(&m->err, code, "%s header %.*s: %s", what, SIP__EXCERPT(h->value), why);
    /* a light check here (scheme ":" and no whitespace or brackets); sip_uri_parse on
     * a->uri gives the parts and a deep check when a caller needs them */
    size_t i = 0;
    while (i < a->uri.len && sip__is((unsigned char)a->uri.s[i], SIP__C_SCHEME))
        i++;
    bool good = !a->star && i > 0 && i + 1 < a->uri.len && a->uri.s[i] == ':' &&
                sip__is((unsigned char)a->uri.s[0], SIP__C_ALPHA);
    for (size_t k = i; good && k < a->uri.len; k++)
        good = (sip__uc[(unsigned char)a->uri.s[k]] & SIP__U_ANY) != 0;
    if (!good)
        return sip__fail(&m->err, code, "%s header URI %.*s is malformed", what,
                         SIP__EXCERPT(a->uri));
    return 0;
}

static int parse_core(struct sip_msg *m)
{
    static const struct {
        enum sip_hdr_id id;
        const char *name;
    } mand[] = { { SIP_H_VIA, "Via" },         { SIP_H_FROM, "From" }, { SIP_H_TO, "To" },
                 { SIP_H_CALL_ID, "Call-ID" }, { SIP_H_CSEQ, "CSeq" } };
    char missing[64];
    size_t ml = 0;
    for (size_t i = 0; i < sizeof(mand) / sizeof(mand[0]); i++)
        if (m->first[mand[i].id] == SIP_HDR_END) {
            int k = snprintf(missing + ml, sizeof(missing) - ml, "%s%s", ml ? ", " : "",
                             mand[i].name);
            if (k > 0)
                ml += (size_t)k;
        }
    if (ml)
        return sip__fail(&m->err, SIP_E_HEADER_MISSING, "Missing mandatory header %s", missing);

    int rc;
    if ((rc = parse_vias(m)) < 0)
        return rc;
    if ((rc = parse_addr_hdr(m, SIP_H_FROM, &m->from, SIP_E_FROM, "From")) < 0)
        return rc;
    if ((rc = parse_addr_hdr(m, SIP_H_TO, &m->to, SIP_E_TO, "To")) < 0)
        return rc;
    m->call_id = sip_msg_hdr(m, SIP_H_CALL_ID)->value;
    if (m->call_id.len == 0)
        return sip__fail(&m->err, SIP_E_CALL_ID, "Call-ID is empty");
    for (size_t i = 0; i < m->call_id.len; i++)
        if (!sip__is((unsigned char)m->call_id.s[i], SIP__C_WORD) && m->call_id.s[i] != '@')
            return sip__fail(&m->err, SIP_E_CALL_ID, "Call-ID %.*s holds a character not allowed",
                             SIP__EXCERPT(m->call_id));
    if ((rc = parse_cseq(m, sip_msg_hdr(m, SIP_H_CSEQ)->value)) < 0)
        return rc;

    const struct sip_hdr *h;
    uint64_t n;
    bool over;
    if ((h = sip_msg_hdr(m, SIP_H_MAX_FORWARDS))) {
        if (!parse_u64(h->value, &n, &over) || over || n > 255)
            return sip__fail(&m->err, SIP_E_MAX_FORWARDS, "Max-Forwards %.*s is not 0..255",
                             SIP__EXCERPT(h->value));
        m->max_forwards = (int32_t)n;
    }
    if ((h = sip_msg_hdr(m, SIP_H_EXPIRES))) {
        if (!parse_u64(h->value, &n, &over))
            return sip__fail(&m->err, SIP_E_EXPIRES, "Expires %.*s is not delta-seconds",
                             SIP__EXCERPT(h->value));
        /* RFC 3261 §20.19 / RFC 4475 §3.1.2.4: an overlarge value is (2^32)-1 */
        m->expires = over || n > UINT32_MAX ? (int64_t)UINT32_MAX : (int64_t)n;
    }
    if ((h = sip_msg_hdr(m, SIP_H_CONTENT_TYPE)))
        m->content_type = h->value;
    if ((h = sip_msg_hdr(m, SIP_H_EVENT)))
        m->event = h->value;
    return 0;
}

/* ---- the header index ---------------------------------------------------------------- */

/* Finds the end of the (possibly folded) header line starting at p: returns the offset of
 * the CR of its final CRLF, or -1 when the buffer ends first, -2 on a bare LF. */
static ssize_t line_end(const char *buf, size_t p, size_t len)
{
    for (;;) {
        const char *nl = memchr(buf + p, '\n', len - p);
        if (!nl)
            return -1;
        size_t e = (size_t)(nl - buf);
        if (e == 0 || buf[e - 1] != '\r')
            return -2;
        if (e + 1 < len && (buf[e + 1] == ' ' || buf[e + 1] == '\t')) {
            p = e + 1;
            continue;
        }
        return (ssize_t)(e - 1);
    }
}

static int index_headers(struct sip_msg *m, size_t p, const struct sip_limits *lim,
                         size_t *body_off, bool datagram)
{
    const char *b = m->buf;
    size_t len = m->len;
    uint16_t last[SIP_H__COUNT];
    size_t cap = m->hdr_cap;
    if (lim->max_headers < cap)
        cap = lim->max_headers;
    for (;;) {
        if (p + 1 < len && b[p] == '\r' && b[p + 1] == '\n') {
            m->headers_end = (uint32_t)p;
            *body_off = p + 2;
            return 0;
        }
        if (p >= len && datagram) {
            /* the datagram ends right after a header line: the datagram ends the message
             * (the RFC 4475 archive has such files, e.g. inv2543.dat) */
            m->headers_end = (uint32_t)p;
            *body_off = p;
            return 0;
        }
        if (p >= len || (p + 1 == len && b[p] == '\r'))
            return sip__fail(&m->err, SIP_E_INCOMPLETE, "Message ends inside the headers");
        ssize_t le = line_end(b, p, len);
        if (le == -2)
            return sip__fail(&m->err, SIP_E_HEADER_SYNTAX, "header line ends without CR");
        if (le < 0)
            return sip__fail(&m->err, SIP_E_INCOMPLETE, "Message has no empty line ending the "
                                                        "headers");
        size_t e = (size_t)le;
        if (e - p > lim->max_header_length)
            return sip__fail(&m->err, SIP_E_HEADER_TOO_LONG,
                             "Header line of %zu bytes is above the limit of %u", e - p,
                             lim->max_header_length);
        size_t ne = sip__token_end(b, p, e);
        if (ne == p)
            return sip__fail(&m->err, SIP_E_HEADER_SYNTAX, "header line %.*s has no name",
                             SIP__EXCERPT(str_make(b + p, e - p)));
        size_t c = ne;
        while (c < e && (b[c] == ' ' || b[c] == '\t'))
            c++;
        if (c >= e || b[c] != ':')
            return sip__fail(&m->err, SIP_E_HEADER_SYNTAX, "header line %.*s has no colon",
                             SIP__EXCERPT(str_make(b + p, e - p)));
        if (m->nhdrs >= cap)
            return sip__fail(&m->err, SIP_E_TOO_MANY_HEADERS,
                             "More than %zu header fields", cap);
        struct sip_hdr *h = &m->hdrs[m->nhdrs];
        h->name = str_make(b + p, ne - p);
        h->value = sip__trim(str_make(b + c + 1, e - c - 1));
        h->off = (uint32_t)p;
        h->len = (uint32_t)(e + 2 - p);
        enum sip_hdr_id id = sip__hdr_lookup(h->name.s, h->name.len);
        h->id = (uint16_t)id;
        h->next = SIP_HDR_END;
        if (id != SIP_H_OTHER) {
            if (m->first[id] == SIP_HDR_END) {
                m->first[id] = m->nhdrs;
            } else {
                if (sip__hdr_desc[id].flags & SIP__HF_SINGLE)
                    return sip__fail(&m->err, SIP_E_HEADER_DUP,
                                     "%s header appears more than once", sip__hdr_desc[id].name);
                m->hdrs[last[id]].next = m->nhdrs;
            }
            last[id] = m->nhdrs;
        }
        m->nhdrs++;
        p = e + 2;
    }
}

/* See msg.h. */
ssize_t sip_msg_parse(struct sip_msg *m, const char *buf, size_t len,
                      const struct sip_limits *lim, unsigned flags)
{
    /* every field is set below or by the sub-parsers (which clear their outputs); on
     * failure only m->err is meaningful */
    m->is_request = false;
    m->method = SIP_M_OTHER;
    m->method_name = m->ruri_raw = m->reason = STR_NULL;
    m->status = 0;
    m->nhdrs = 0;
    memset(m->first, 0xff, sizeof(m->first));
    m->headers_end = 0;
    m->nvia = 0;
    m->via1_rest = STR_NULL;
    m->call_id = m->content_type = m->event = m->body = STR_NULL;
    m->max_forwards = -1;
    m->content_length = m->expires = -1;
    m->err.code = SIP_E_NONE;
    m->err.status = 0;
    m->err.reason[0] = 0;
    m->cache = NULL;

    /* RFC 3261 §7.5: CRLFs before the start line are ignored */
    size_t p = 0;
    while (p + 1 < len && buf[p] == '\r' && buf[p + 1] == '\n')
        p += 2;
    m->buf = buf + p;
    m->len = len - p;
    if (m->len == 0)
        return sip__fail(&m->err, SIP_E_START_LINE, "Empty message");
    if (m->len > lim->max_message_size && (flags & SIP_PARSE_DATAGRAM))
        return sip__fail(&m->err, SIP_E_TOO_LARGE, "Message of %zu bytes is above the limit "
                                                   "of %u", m->len, lim->max_message_size);
    const char *nl = memchr(m->buf, '\n', m->len);
    if (!nl)
        return sip__fail(&m->err, SIP_E_INCOMPLETE, "Message has no complete start line");
    size_t sl = (size_t)(nl - m->buf);
    if (sl == 0 || m->buf[sl - 1] != '\r')
        return sip__fail(&m->err, SIP_E_START_LINE, "Start line ends without CR");
    if (sl - 1 > lim->max_header_length)
        return sip__fail(&m->err, SIP_E_HEADER_TOO_LONG, "Start line of %zu bytes is above "
                                                         "the limit", sl - 1);
    str line = str_make(m->buf, sl - 1);
    int rc = line.len >= 4 && memcmp(line.s, "SIP/", 4) == 0 ? parse_status_line(m, line)
                                                              : parse_request_line(m, line);
    if (rc < 0)
        return rc;

    size_t body_off = 0;
    if ((rc = index_headers(m, sl + 1, lim, &body_off, flags & SIP_PARSE_DATAGRAM)) < 0)
        return rc;

    /* the body */
    size_t avail = m->len - body_off;
    const struct sip_hdr *cl = sip_msg_hdr(m, SIP_H_CONTENT_LENGTH);
    size_t blen = (flags & SIP_PARSE_STREAM) ? 0 : avail;
    if (cl) {
        uint64_t n;
        bool over;
        if (!parse_u64(cl->value, &n, &over))
            return sip__fail(&m->err, SIP_E_CONTENT_LENGTH, "Content-Length %.*s is not a "
                                                            "number", SIP__EXCERPT(cl->value));
        if (over || n > lim->max_message_size)
            return sip__fail(&m->err, SIP_E_BODY_TOO_LARGE,
                             "Content-Length %.*s is above the limit of %u",
                             SIP__EXCERPT(cl->value), lim->max_message_size);
        if (n > avail)
            return sip__fail(&m->err, SIP_E_BODY_SHORT,
                             "Content-Length %llu exceeds the %zu bytes that follow",
                             (unsigned long long)n, avail);
        m->content_length = (int64_t)n;
        blen = (size_t)n;
    }
    m->body = str_make(m->buf + body_off, blen);
    m->len = body_off + blen;
    if (m->len > lim->max_message_size)
        return sip__fail(&m->err, SIP_E_TOO_LARGE,
                         "Message of %zu bytes is above the limit of %u", m->len,
                         lim->max_message_size);
    if ((rc = parse_core(m)) < 0)
        return rc;
    return (ssize_t)(p + m->len);
}

/* ---- lookups ----------------------------------------------------------------------- */

/* See msg.h. */
const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id)
{
    if ((unsigned)id >= SIP_H__COUNT || id == SIP_H_OTHER || m->first[id] == SIP_HDR_END)
        return NULL;
    return &m->hdrs[m->first[id]];
}

/* See msg.h. */
const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m, const struct sip_hdr *h)
{
    return h->next == SIP_HDR_END ? NULL : &m->hdrs[h->next];
}

/* See msg.h. */
const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m, str name)
{
    enum sip_hdr_id id = sip_hdr_lookup(name);
    if (id != SIP_H_OTHER)
        return sip_msg_hdr(m, id);
    for (size_t i = 0; i < m->nhdrs; i++)
        if (m->hdrs[i].id == SIP_H_OTHER && str_caseeq(m->hdrs[i].name, name))
            return &m->hdrs[i];
    return NULL;
}

/* See msg.h. */
bool sip_msg_values_next(const struct sip_msg *m, enum sip_hdr_id id, struct sip_value_iter *it,
                         str *val)
{
    if (!it->started) {
        it->started = true;
        it->h = sip_msg_hdr(m, id);
        it->rest = it->h ? it->h->value : STR_NULL;
    }
    while (it->h) {
        while (it->rest.len) {
            str v = sip__next_value(&it->rest);
            if (v.len) {
                *val = v;
                return true;
            }
        }
        it->h = sip_msg_hdr_next(m, it->h);
        it->rest = it->h ? it->h->value : STR_NULL;
    }
    return false;
}

/* ---- stream framing --------------------------------------------------------------- */

/* See msg.h. */
int sip_frame(const char *buf, size_t len, const struct sip_limits *lim, size_t *n,
              struct sip_error *err)
{
    if (len >= 1 && buf[0] == '\r') {
        if (len < 2)
            return -EAGAIN;
        if (buf[1] == '\n') {
            if (len < 3)
                return -EAGAIN;
            if (buf[2] != '\r') {
                *n = 2;
                return SIP_FRAME_PONG;
            }
            if (len < 4)
                return -EAGAIN;
            if (buf[3] == '\n') {
                *n = 4;
                return SIP_FRAME_PING;
            }
        }
    }
    /* the empty line that ends the headers */
    size_t scan = len < (size_t)lim->max_message_size + 4 ? len : lim->max_message_size + 4;
    size_t hend = 0;
    bool found = false;
    for (size_t p = 0; p + 1 < scan;) {
        const char *nl = memchr(buf + p + 1, '\n', scan - p - 1);
        if (!nl)
            break;
        size_t i = (size_t)(nl - buf);
        if (i >= 3 && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            hend = i + 1;
            found = true;
            break;
        }
        p = i;
    }
    if (!found) {
        if (len > lim->max_message_size) {
            sip__fail(err, SIP_E_TOO_LARGE, "Headers pass the limit of %u bytes",
                      lim->max_message_size);
            return -EMSGSIZE;
        }
        return -EAGAIN;
    }
    /* find Content-Length / l among the header lines */
    uint64_t clen = 0;
    bool have = false;
    size_t p = 0;
    const char *nl0 = memchr(buf, '\n', hend);
    p = nl0 ? (size_t)(nl0 - buf) + 1 : hend;
    while (p + 2 < hend) {
        const char *nl = memchr(buf + p, '\n', hend - p);
        size_t e = nl ? (size_t)(nl - buf) : hend;
        size_t ne = sip__token_end(buf, p, e);
        enum sip_hdr_id id = ne > p ? sip__hdr_lookup(buf + p, ne - p) : SIP_H_OTHER;
        if (id == SIP_H_CONTENT_LENGTH) {
            size_t c = ne;
            while (c < e && (buf[c] == ' ' || buf[c] == '\t'))
                c++;
            if (c < e && buf[c] == ':') {
                /* the value may be folded onto the next lines */
                size_t ve = e;
                while (ve + 1 < hend && (buf[ve + 1] == ' ' || buf[ve + 1] == '\t')) {
                    const char *nn = memchr(buf + ve + 1, '\n', hend - ve - 1);
                    ve = nn ? (size_t)(nn - buf) : hend;
                }
                str v = sip__trim(str_make(buf + c + 1, ve - c - 1));
                uint64_t x;
                bool over;
                if (!parse_u64(v, &x, &over) || (have && x != clen)) {
                    sip__fail(err, SIP_E_CONTENT_LENGTH, "Content-Length %.*s is unusable",
                              SIP__EXCERPT(v));
                    return -EPROTO;
                }
                if (over || x > lim->max_message_size) {
                    sip__fail(err, SIP_E_BODY_TOO_LARGE, "Content-Length %.*s is above the "
                                                         "limit", SIP__EXCERPT(v));
                    return -EMSGSIZE;
                }
                clen = x;
                have = true;
                e = ve;
            }
        }
        p = e + 1;
    }
    if (hend + clen > lim->max_message_size) {
        sip__fail(err, SIP_E_TOO_LARGE, "Message of %llu bytes is above the limit of %u",
                  (unsigned long long)(hend + clen), lim->max_message_size);
        return -EMSGSIZE;
    }
    if (len < hend + clen)
        return -EAGAIN;
    *n = hend + (size_t)clen;
    return SIP_FRAME_MSG;
}
