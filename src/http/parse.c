/*
 * http/parse — the HTTP/1.1 request head parser (RFC 7230 §3), in the manner
 * of picohttpparser: one pass over the bytes, character classes as tables,
 * slices into the caller's buffer, nothing allocated, nothing written.
 *
 * Strict where leniency would let two parsers disagree (request smuggling):
 * whitespace before a header's colon, obsolete line folding, a Content-Length
 * that is not all digits or appears twice with different values, and both
 * Content-Length and Transfer-Encoding are refused with 400.
 */
#include <errno.h>
#include <string.h>

#include "http/http.h"

/* tchar (RFC 7230 §3.2.6): token characters */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* field-vchar, obs-text, SP and HTAB may appear in a header value; no other control byte */
static inline bool value_char(unsigned char c)
{
    return c >= 0x20 ? c != 0x7f : c == '\t';
}

/* request-target: visible ASCII (no SP, no control); obs-text refused */
static inline bool target_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}

static int hexv(char c);

static ssize_t fail(struct http_request *r, uint16_t status, const char *why)
{
    r->err_status = status;
    r->err_reason = why;
    return -EINVAL;
}

static enum http_method method_of(str m)
{
    static const struct {
        const char *name;
        enum http_method m;
    } t[] = {
        { "GET", HTTP_GET },     { "HEAD", HTTP_HEAD },       { "POST", HTTP_POST },
        { "PUT", HTTP_PUT },     { "DELETE", HTTP_DELETE },   { "OPTIONS", HTTP_OPTIONS },
        { "PATCH", HTTP_PATCH },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (str_eq(m, str_cstr(t[i].name)))
            return t[i].m;
    return HTTP_OTHER;
}

/* The end of the line starting at p (the index of its '\n'), or -1 when not in buf yet. */
static ssize_t line_end(const char *buf, size_t len, size_t p)
{
    const char *nl = memchr(buf + p, '\n', len - p);
    return nl ? nl - buf : -1;
}

static ssize_t parse_request_line(struct http_request *r, str line)
{
    size_t i = 0;
    while (i < line.len && tchar[(unsigned char)line.s[i]])
        i++;
    if (i == 0 || i >= line.len || line.s[i] != ' ')
        return fail(r, 400, "Bad request line: method");
    r->method_name = str_make(line.s, i);
    r->method = method_of(r->method_name);
    size_t t0 = ++i;
    while (i < line.len && target_char((unsigned char)line.s[i]))
        i++;
    if (i == t0 || i >= line.len || line.s[i] != ' ')
        return fail(r, 400, "Bad request line: request-target");
    r->target = str_make(line.s + t0, i - t0);
    str v = str_skip(line, i + 1);
    if (v.len != 8 || memcmp(v.s, "HTTP/", 5) != 0 || v.s[6] != '.' || v.s[5] < '0' ||
        v.s[5] > '9' || v.s[7] < '0' || v.s[7] > '9')
        return fail(r, 400, "Bad request line: version");
    if (v.s[5] != '1')
        return fail(r, 505, "Only HTTP/1.x is served");
    r->minor = v.s[7] - '0';
    /* origin-form "/path?query"; "*" only for OPTIONS; absolute-form accepted for proxies'
     * sake (RFC 7230 §5.3.2), its path used */
    str t = r->target;
    if (t.s[0] != '/') {
        if (str_eq(t, STR("*")) && r->method == HTTP_OPTIONS) {
            r->path = t;
            return 0;
        }
        ssize_t sch = str_find(t, STR("://"));
        if (sch <= 0)
            return fail(r, 400, "Bad request-target");
        str rest = str_skip(t, (size_t)sch + 3);
        ssize_t sl = str_find_char(rest, '/');
        /* no path: an empty slice at its end (slices stay inside the input); it means "/" */
        t = sl < 0 ? str_make(rest.s + rest.len, 0) : str_skip(rest, (size_t)sl);
    }
    ssize_t q = str_find_char(t, '?');
    ssize_t frag = str_find_char(t, '#');
    if (frag >= 0)
        return fail(r, 400, "Bad request-target: a fragment is not sent to servers");
    r->path = q < 0 ? t : str_sub(t, 0, (size_t)q);
    r->query = q < 0 ? STR("") : str_skip(t, (size_t)q + 1);
    return 0;
}

/* Content-Length: 1*DIGIT, at most 18 digits (no overflow). */
static int parse_length(str v, int64_t *out)
{
    if (v.len == 0 || v.len > 18)
        return -EINVAL;
    int64_t n = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.s[i] < '0' || v.s[i] > '9')
            return -EINVAL;
        n = n * 10 + (v.s[i] - '0');
    }
    *out = n;
    return 0;
}

/* Applies what the server needs from one header (framing and connection management). */
static ssize_t note_header(struct http_request *r, const struct http_header *h, bool *conn_close,
                           bool *conn_keep, bool *conn_upgrade, bool *upg_ws)
{
    str n = h->name, v = h->value;
    switch (n.len) {
    case 14:
        if (str_caseeq(n, STR("Content-Length"))) {
            int64_t cl;
            if (parse_length(v, &cl) < 0)
                return fail(r, 400, "Bad Content-Length");
            if (r->content_length >= 0 && r->content_length != cl)
                return fail(r, 400, "Two different Content-Length values");
            r->content_length = cl;
        }
        break;
    case 17:
        if (str_caseeq(n, STR("Transfer-Encoding")))
            r->chunked = true;
        break;
    case 10:
        if (str_caseeq(n, STR("Connection"))) {
            *conn_close |= http_list_has(v, STR("close"));
            *conn_keep |= http_list_has(v, STR("keep-alive"));
            *conn_upgrade |= http_list_has(v, STR("upgrade"));
        }
        break;
    case 7:
        if (str_caseeq(n, STR("Upgrade")))
            *upg_ws |= http_list_has(v, STR("websocket"));
        break;
    case 6:
        if (str_caseeq(n, STR("Expect"))) {
            if (!str_caseeq(v, STR("100-continue")))
                return fail(r, 417, "Only Expect: 100-continue is understood");
            r->expect_continue = true;
        }
        break;
    default:
        break;
    }
    return 0;
}

ssize_t http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
                           struct http_request *r, struct http_header *hdrs)
{
    memset(r, 0, sizeof *r);
    r->hdrs = hdrs;
    r->content_length = -1;
    size_t p = 0;
    /* RFC 7230 §3.5: ignore empty lines before the request line */
    while (p < len && (buf[p] == '\r' || buf[p] == '\n')) {
        if (buf[p] == '\r' && (p + 1 >= len || buf[p + 1] != '\n'))
            break;
        p += buf[p] == '\r' ? 2 : 1;
        if (p > 8)
            return fail(r, 400, "Empty lines before the request");
    }
    size_t limit = lim->max_head;
    size_t avail = len < limit ? len : limit;
    ssize_t e = line_end(buf, avail, p);
    if (e < 0)
        return len >= limit ? fail(r, 431, "Request line too long") : -EAGAIN;
    size_t le = (size_t)e;
    if (le == p || buf[le - 1] != '\r')
        return fail(r, 400, "Request line must end with CRLF");
    ssize_t rc = parse_request_line(r, str_make(buf + p, le - 1 - p));
    if (rc < 0)
        return rc;
    p = le + 1;
    bool conn_close = false, conn_keep = false, conn_upgrade = false, upg_ws = false;
    bool host = false;
    for (;;) {
        e = line_end(buf, avail, p);
        if (e < 0)
            return len >= limit ? fail(r, 431, "Request header fields too large") : -EAGAIN;
        le = (size_t)e;
        if (le == p || buf[le - 1] != '\r')
            return fail(r, 400, "Header line must end with CRLF");
        size_t end = le - 1;
        if (end == p) { /* the blank line */
            p = le + 1;
            break;
        }
        if (buf[p] == ' ' || buf[p] == '\t')
            return fail(r, 400, "Obsolete line folding is not accepted");
        size_t i = p;
        while (i < end && tchar[(unsigned char)buf[i]])
            i++;
        if (i == p || i >= end || buf[i] != ':')
            return fail(r, 400, "Bad header field name");
        if (r->nhdrs >= lim->max_headers)
            return fail(r, 431, "Too many header fields");
        struct http_header *h = &hdrs[r->nhdrs];
        h->name = str_make(buf + p, i - p);
        size_t v0 = i + 1;
        for (size_t k = v0; k < end; k++)
            if (!value_char((unsigned char)buf[k]))
                return fail(r, 400, "Control character in a header value");
        h->value = str_trim(str_make(buf + v0, end - v0));
        r->nhdrs++;
        if (h->name.len == 4 && str_caseeq(h->name, STR("Host"))) {
            if (host)
                return fail(r, 400, "Two Host headers");
            host = true;
        }
        if ((rc = note_header(r, h, &conn_close, &conn_keep, &conn_upgrade, &upg_ws)) < 0)
            return rc;
        p = le + 1;
    }
    if (r->minor >= 1 && !host)
        return fail(r, 400, "Host header missing");
    if (r->chunked && r->content_length >= 0)
        return fail(r, 400, "Both Content-Length and Transfer-Encoding");
    r->keep_alive = r->minor >= 1 ? !conn_close : conn_keep && !conn_close;
    r->upgrade = conn_upgrade && upg_ws;
    r->head_len = p;
    return (ssize_t)p;
}

ssize_t http_chunked(const char *buf, size_t len, size_t max_body, char *out, size_t *body_len,
                     const char **why)
{
    size_t p = 0, total = 0;
    *why = NULL;
    for (;;) {
        /* chunk-size [ chunk-ext ] CRLF */
        size_t s0 = p;
        uint64_t size = 0;
        while (p < len && hexv(buf[p]) >= 0) {
            if (p - s0 >= 15) {
                *why = "Chunk size too large";
                return -EINVAL;
            }
            size = size << 4 | (uint64_t)hexv(buf[p]);
            p++;
        }
        if (p == len)
            return -EAGAIN;
        if (p == s0) {
            *why = "Bad chunk size";
            return -EINVAL;
        }
        size_t e0 = p;
        while (p < len && buf[p] != '\r') {
            unsigned char c = (unsigned char)buf[p];
            if ((c < 0x20 && c != '\t') || c == 0x7f || p - e0 > 1024) {
                *why = "Bad chunk extension";
                return -EINVAL;
            }
            p++;
        }
        if (p + 2 > len)
            return -EAGAIN;
        if (buf[p + 1] != '\n') {
            *why = "Chunk line must end with CRLF";
            return -EINVAL;
        }
        p += 2;
        if (size == 0) {
            /* trailer fields (ignored), then the blank line */
            for (;;) {
                size_t l0 = p;
                while (p < len && buf[p] != '\n') {
                    if (p - l0 > 8192) {
                        *why = "Trailer too long";
                        return -EINVAL;
                    }
                    p++;
                }
                if (p == len)
                    return -EAGAIN;
                if (p == l0 || buf[p - 1] != '\r') {
                    *why = "Trailer line must end with CRLF";
                    return -EINVAL;
                }
                p++;
                if (p - l0 == 2) {
                    *body_len = total;
                    return (ssize_t)p;
                }
            }
        }
        if (size > max_body || total + size > max_body) {
            *why = "Chunked body above the limit";
            return -EMSGSIZE;
        }
        if (len - p < size + 2)
            return -EAGAIN;
        if (buf[p + size] != '\r' || buf[p + size + 1] != '\n') {
            *why = "Chunk data must end with CRLF";
            return -EINVAL;
        }
        if (out)
            memcpy(out + total, buf + p, size);
        total += size;
        p += size + 2;
    }
}

str http_header_get(const struct http_request *r, str name)
{
    for (size_t i = 0; i < r->nhdrs; i++)
        if (str_caseeq(r->hdrs[i].name, name))
            return r->hdrs[i].value;
    return STR_NULL;
}

bool http_list_has(str v, str token)
{
    while (v.len) {
        ssize_t c = str_find_char(v, ',');
        str item = str_trim(c < 0 ? v : str_sub(v, 0, (size_t)c));
        if (str_caseeq(item, token))
            return true;
        v = c < 0 ? STR_NULL : str_skip(v, (size_t)c + 1);
    }
    return false;
}

str http_query_get(str q, str name)
{
    while (q.len) {
        ssize_t a = str_find_char(q, '&');
        str item = a < 0 ? q : str_sub(q, 0, (size_t)a);
        ssize_t eq = str_find_char(item, '=');
        str k = eq < 0 ? item : str_sub(item, 0, (size_t)eq);
        if (str_eq(k, name))
            return eq < 0 ? str_make(item.s + item.len, 0) : str_skip(item, (size_t)eq + 1);
        q = a < 0 ? STR_NULL : str_skip(q, (size_t)a + 1);
    }
    return STR_NULL;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

ssize_t http_pct_decode(str s, char *out, size_t cap, bool plus_space)
{
    if (cap == 0)
        return -ENOSPC;
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.s[i];
        if (c == '%') {
            if (s.len - i < 3)
                return -EINVAL;
            int hi = hexv(s.s[i + 1]), lo = hexv(s.s[i + 2]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -EINVAL; /* a bad escape, or an encoded NUL */
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -ENOSPC;
        out[o++] = c;
    }
    out[o] = 0;
    return (ssize_t)o;
}

const char *http_status_text(uint16_t s)
{
    switch (s) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
