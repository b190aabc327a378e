/*
 * sip/write — the writer: responses from a request (RFC 3261 §8.2.6), requests
 * forwarded with edits (§16.6) that copy untouched header lines byte for byte, and new
 * requests from parts. Output goes to a caller-owned struct buf (its cap bounds it).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sip/msg.h"
#include "sip/sip_int.h"

/* See msg.h. */
str sip_status_phrase(uint16_t st)
{
    switch (st) {
    case 100: return STR("Trying");
    case 180: return STR("Ringing");
    case 181: return STR("Call Is Being Forwarded");
    case 182: return STR("Queued");
    case 183: return STR("Session Progress");
    case 200: return STR("OK");
    case 202: return STR("Accepted");
    case 204: return STR("No Notification");
    case 300: return STR("Multiple Choices");
    case 301: return STR("Moved Permanently");
    case 302: return STR("Moved Temporarily");
    case 305: return STR("Use Proxy");
    case 380: return STR("Alternative Service");
    case 400: return STR("Bad Request");
    case 401: return STR("Unauthorized");
    case 402: return STR("Payment Required");
    case 403: return STR("Forbidden");
    case 404: return STR("Not Found");
    case 405: return STR("Method Not Allowed");
    case 406: return STR("Not Acceptable");
    case 407: return STR("Proxy Authentication Required");
    case 408: return STR("Request Timeout");
    case 410: return STR("Gone");
    case 412: return STR("Conditional Request Failed");
    case 413: return STR("Request Entity Too Large");
    case 414: return STR("Request-URI Too Long");
    case 415: return STR("Unsupported Media Type");
    case 416: return STR("Unsupported URI Scheme");
    case 420: return STR("Bad Extension");
    case 421: return STR("Extension Required");
    case 423: return STR("Interval Too Brief");
    case 439: return STR("First Hop Lacks Outbound Support");
    case 480: return STR("Temporarily Unavailable");
    case 481: return STR("Call/Transaction Does Not Exist");
    case 482: return STR("Loop Detected");
    case 483: return STR("Too Many Hops");
    case 484: return STR("Address Incomplete");
    case 485: return STR("Ambiguous");
    case 486: return STR("Busy Here");
    case 487: return STR("Request Terminated");
    case 488: return STR("Not Acceptable Here");
    case 489: return STR("Bad Event");
    case 491: return STR("Request Pending");
    case 493: return STR("Undecipherable");
    case 500: return STR("Server Internal Error");
    case 501: return STR("Not Implemented");
    case 502: return STR("Bad Gateway");
    case 503: return STR("Service Unavailable");
    case 504: return STR("Server Time-out");
    case 505: return STR("Version Not Supported");
    case 513: return STR("Message Too Large");
    case 600: return STR("Busy Everywhere");
    case 603: return STR("Decline");
    case 604: return STR("Does Not Exist Anywhere");
    case 606: return STR("Not Acceptable");
    }
    switch (st / 100) {
    case 1: return STR("Trying");
    case 2: return STR("OK");
    case 3: return STR("Redirect");
    case 4: return STR("Client Error");
    case 5: return STR("Server Error");
    default: return STR("Global Failure");
    }
}

/* appends while rc is 0 */
struct out {
    struct buf *b;
    int rc;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (o->rc == 0 && n)
        o->rc = buf_append(o->b, p, n);
}

static void puts_(struct out *o, str s)
{
    put(o, s.s, s.len);
}

static void put_u(struct out *o, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, tmp + i, sizeof tmp - i);
}

static void put_hdr(struct out *o, str name, str value)
{
    puts_(o, name);
    put(o, ": ", 2);
    puts_(o, value);
    put(o, "\r\n", 2);
}

static bool has_crlf(str s)
{
    return s.len && (memchr(s.s, '\r', s.len) || memchr(s.s, '\n', s.len));
}

static void put_line(struct out *o, const struct sip_msg *m, const struct sip_hdr *h)
{
    put(o, m->buf + h->off, h->len);
}

/* See msg.h. */
int sip_msg_respond(const struct sip_msg *req, uint16_t status, str reason, str to_tag,
                    const struct sip_hdr_add *extra, size_t nextra, str content_type, str body,
                    struct buf *out)
{
    if (status < 100 || status > 699 || has_crlf(reason) || has_crlf(to_tag))
        return -EINVAL;
    for (size_t i = 0; i < nextra; i++)
        if (has_crlf(extra[i].name) || has_crlf(extra[i].value) || extra[i].name.len == 0)
            return -EINVAL;
    struct out o = { out, 0 };
    put(&o, "SIP/2.0 ", 8);
    put_u(&o, status);
    put(&o, " ", 1);
    puts_(&o, reason.len ? reason : sip_status_phrase(status));
    put(&o, "\r\n", 2);
    for (const struct sip_hdr *h = sip_msg_hdr(req, SIP_H_VIA); h; h = sip_msg_hdr_next(req, h))
        put_line(&o, req, h);
    /* dialog-creating responses echo Record-Route (RFC 3261 §12.1.1) */
    if (status > 100 && status < 300)
        for (const struct sip_hdr *h = sip_msg_hdr(req, SIP_H_RECORD_ROUTE); h;
             h = sip_msg_hdr_next(req, h))
            put_line(&o, req, h);
    const struct sip_hdr *h;
    if ((h = sip_msg_hdr(req, SIP_H_FROM)))
        put_line(&o, req, h);
    if ((h = sip_msg_hdr(req, SIP_H_TO))) {
        if (status > 100 && to_tag.len && req->to.tag.len == 0) {
            put(&o, "To: ", 4);
            puts_(&o, h->value);
            put(&o, ";tag=", 5);
            puts_(&o, to_tag);
            put(&o, "\r\n", 2);
        } else {
            put_line(&o, req, h);
        }
    }
    if ((h = sip_msg_hdr(req, SIP_H_CALL_ID)))
        put_line(&o, req, h);
    if ((h = sip_msg_hdr(req, SIP_H_CSEQ)))
        put_line(&o, req, h);
    for (size_t i = 0; i < nextra; i++)
        put_hdr(&o, extra[i].name, extra[i].value);
    if (body.len && content_type.len)
        put_hdr(&o, STR("Content-Type"), content_type);
    put(&o, "Content-Length: ", 16);
    put_u(&o, body.len);
    put(&o, "\r\n\r\n", 4);
    put(&o, body.s, body.len);
    return o.rc;
}

static bool edit_matches(const struct sip_hdr_edit *e, const struct sip_hdr *h)
{
    if (e->id != SIP_H_OTHER)
        return h->id == e->id;
    return h->id == SIP_H_OTHER && str_caseeq(h->name, e->name);
}

static str edit_name(const struct sip_hdr_edit *e)
{
    return e->id != SIP_H_OTHER ? sip_hdr_name(e->id) : e->name;
}

/* See msg.h. */
int sip_msg_forward(const struct sip_msg *m, const struct sip_fwd *f, struct buf *b)
{
    if (!m->is_request || has_crlf(f->ruri) || has_crlf(f->via) || has_crlf(f->record_route))
        return -EINVAL;
    if (f->dec_max_forwards && m->max_forwards == 0)
        return -EINVAL;
    if (f->nedits > SIP_FWD_MAX_EDITS)
        return -EINVAL;
    for (size_t i = 0; i < f->nedits; i++) {
        const struct sip_hdr_edit *e = &f->edits[i];
        if (has_crlf(e->value) || has_crlf(e->name) || edit_name(e).len == 0)
            return -EINVAL;
    }
    struct out o = { b, 0 };
    puts_(&o, m->method_name);
    put(&o, " ", 1);
    puts_(&o, f->ruri.len ? f->ruri : m->ruri_raw);
    put(&o, " SIP/2.0\r\n", 10);
    if (f->via.len)
        put_hdr(&o, STR("Via"), f->via);
    if (f->record_route.len)
        put_hdr(&o, STR("Record-Route"), f->record_route);
    for (size_t i = 0; i < f->nedits; i++)
        if (f->edits[i].op == SIP_EDIT_ADD_TOP)
            put_hdr(&o, edit_name(&f->edits[i]), f->edits[i].value);

    bool route_popped = false, replaced[SIP_FWD_MAX_EDITS] = { false };
    size_t run_b = 0, run_e = 0; /* a run of untouched lines, copied in one go */
    for (size_t i = 0; i < m->nhdrs; i++) {
        const struct sip_hdr *h = &m->hdrs[i];
        bool drop = false;
        for (size_t k = 0; k < f->nedits && !drop; k++) {
            const struct sip_hdr_edit *e = &f->edits[k];
            if ((e->op == SIP_EDIT_REMOVE || e->op == SIP_EDIT_REPLACE) && edit_matches(e, h)) {
                drop = true;
                if (e->op == SIP_EDIT_REPLACE && !replaced[k]) {
                    replaced[k] = true;
                    put(&o, m->buf + run_b, run_e - run_b);
                    run_b = run_e = h->off + h->len;
                    put_hdr(&o, edit_name(e), e->value);
                }
            }
        }
        str repl = STR_NULL;
        bool rewrite = false;
        if (!drop && h->id == SIP_H_ROUTE && f->pop_route && !route_popped) {
            route_popped = true;
            str rest = h->value;
            sip__next_value(&rest);
            rest = sip__trim(rest);
            drop = true;
            if (rest.len) {
                rewrite = true;
                repl = rest;
            }
        } else if (!drop && h->id == SIP_H_MAX_FORWARDS && f->dec_max_forwards) {
            drop = rewrite = true;
        }
        if (!drop) {
            if (h->off != run_e) {
                put(&o, m->buf + run_b, run_e - run_b);
                run_b = h->off;
            }
            run_e = h->off + h->len;
            continue;
        }
        put(&o, m->buf + run_b, run_e - run_b);
        run_b = run_e = h->off + h->len;
        if (rewrite && h->id == SIP_H_ROUTE) {
            put_hdr(&o, STR("Route"), repl);
        } else if (rewrite) {
            put(&o, "Max-Forwards: ", 14);
            put_u(&o, (uint64_t)(m->max_forwards - 1));
            put(&o, "\r\n", 2);
        }
    }
    put(&o, m->buf + run_b, run_e - run_b);
    if (f->dec_max_forwards && m->max_forwards < 0)
        put(&o, "Max-Forwards: 70\r\n", 18);
    for (size_t i = 0; i < f->nedits; i++)
        if (f->edits[i].op == SIP_EDIT_ADD)
            put_hdr(&o, edit_name(&f->edits[i]), f->edits[i].value);
    if (m->content_length < 0) {
        put(&o, "Content-Length: ", 16);
        put_u(&o, m->body.len);
        put(&o, "\r\n", 2);
    }
    put(&o, "\r\n", 2);
    puts_(&o, m->body);
    return o.rc;
}

/* See msg.h. */
int sip_msg_build_request(const struct sip_req_parts *p, struct buf *b)
{
    str method = p->method == SIP_M_OTHER ? p->method_name : sip_method_name(p->method);
    if (method.len == 0 || p->ruri.len == 0 || p->via.len == 0 || p->from.len == 0 ||
        p->to.len == 0 || p->call_id.len == 0 || p->cseq > 0x7fffffffu)
        return -EINVAL;
    if (sip__token_end(method.s, 0, method.len) != method.len || has_crlf(p->ruri) ||
        memchr(p->ruri.s, ' ', p->ruri.len) || has_crlf(p->via) || has_crlf(p->from) ||
        has_crlf(p->to) || has_crlf(p->call_id) || has_crlf(p->contact) ||
        has_crlf(p->content_type))
        return -EINVAL;
    for (size_t i = 0; i < p->nextra; i++)
        if (has_crlf(p->extra[i].name) || has_crlf(p->extra[i].value) || !p->extra[i].name.len)
            return -EINVAL;
    struct out o = { b, 0 };
    puts_(&o, method);
    put(&o, " ", 1);
    puts_(&o, p->ruri);
    put(&o, " SIP/2.0\r\n", 10);
    put_hdr(&o, STR("Via"), p->via);
    put(&o, "Max-Forwards: ", 14);
    put_u(&o, p->max_forwards < 0 ? 70 : (uint64_t)p->max_forwards);
    put(&o, "\r\n", 2);
    put_hdr(&o, STR("From"), p->from);
    put_hdr(&o, STR("To"), p->to);
    put_hdr(&o, STR("Call-ID"), p->call_id);
    put(&o, "CSeq: ", 6);
    put_u(&o, p->cseq);
    put(&o, " ", 1);
    puts_(&o, method);
    put(&o, "\r\n", 2);
    if (p->contact.len)
        put_hdr(&o, STR("Contact"), p->contact);
    for (size_t i = 0; i < p->nextra; i++)
        put_hdr(&o, p->extra[i].name, p->extra[i].value);
    if (p->body.len && p->content_type.len)
        put_hdr(&o, STR("Content-Type"), p->content_type);
    put(&o, "Content-Length: ", 16);
    put_u(&o, p->body.len);
    put(&o, "\r\n\r\n", 4);
    put(&o, p->body.s, p->body.len);
    return o.rc;
}
