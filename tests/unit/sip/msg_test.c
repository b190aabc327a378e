/*
 * sip_msg_parse edge cases (limits, folding, compact forms, IPv6 sent-by, rport, Contact *,
 * escaped display names, CSeq bounds, Expires, bare LF, ...), digest parsing, the header
 * table, the error table and stream framing. Inputs sit against a guard page.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sip/guard.h"
#include "sip/msg.h"

#define STREQ(s, lit) assert_true(str_eq((s), STR(lit)))

struct pm {
    struct guarded g;
    struct sip_hdr hdrs[64];
    struct sip_msg m;
    ssize_t rc;
    struct arena *a;
};

static struct pm *parse_lim(const char *text, const struct sip_limits *lim, unsigned flags)
{
    struct pm *p = calloc(1, sizeof(*p));
    p->g = guard_copy(text, strlen(text));
    sip_msg_init(&p->m, p->hdrs, 64);
    p->rc = sip_msg_parse(&p->m, p->g.p, p->g.len, lim, flags);
    assert_int_equal(arena_new(&p->a, 0, 0), 0);
    return p;
}

static struct pm *parse(const char *text)
{
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    return parse_lim(text, &lim, SIP_PARSE_DATAGRAM);
}

static void done(struct pm *p)
{
    arena_free(p->a);
    guard_free(&p->g);
    free(p);
}

static void ok(struct pm *p)
{
    if (p->rc <= 0)
        fail_msg("rejected: %s", p->m.err.reason);
}

static void bad(const char *text, enum sip_err code, uint16_t status, const char *reason)
{
    struct pm *p = parse(text);
    if (p->rc > 0)
        fail_msg("accepted: %s", text);
    assert_int_equal(p->m.err.code, code);
    assert_int_equal(p->m.err.status, status);
    if (reason && !strstr(p->m.err.reason, reason))
        fail_msg("reason '%s' lacks '%s'", p->m.err.reason, reason);
    done(p);
}

#define HEAD "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n" \
             "To: <sip:b@example.com>\r\nCall-ID: c1@h\r\n"
#define REQ(extra) "OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 OPTIONS\r\n" extra "\r\n"

static void t_minimal(void **st)
{
    struct pm *p = parse(REQ(""));
    ok(p);
    assert_true(p->m.is_request);
    assert_int_equal(p->m.method, SIP_M_OPTIONS);
    assert_int_equal(p->m.nhdrs, 5);
    assert_int_equal(p->m.content_length, -1);
    assert_int_equal(p->m.max_forwards, -1);
    assert_int_equal(p->m.body.len, 0);
    STREQ(p->m.via.branch, "z9hG4bK1");
    STREQ(p->m.from.tag, "1");
    assert_int_equal(p->m.to.tag.len, 0);
    STREQ(p->m.call_id, "c1@h");
    assert_int_equal(p->m.cseq.num, 1);
    done(p);
    /* leading CRLFs are skipped (RFC 3261 §7.5) */
    p = parse("\r\n\r\n" REQ(""));
    ok(p);
    assert_int_equal(p->rc, (ssize_t)p->g.len);
    assert_int_equal(p->m.buf[0], 'O');
    done(p);
}

static void t_limits(void **st)
{
    struct sip_limits lim = { 512, 8, 100 };
    struct pm *p = parse_lim(REQ("X-Long: "
                                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
                             &lim, SIP_PARSE_DATAGRAM);
    assert_true(p->rc == -EMSGSIZE);
    assert_int_equal(p->m.err.code, SIP_E_HEADER_TOO_LONG);
    assert_int_equal(p->m.err.status, 513);
    done(p);
    p = parse_lim(REQ("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"), &lim, SIP_PARSE_DATAGRAM);
    assert_true(p->rc == -EMSGSIZE);
    assert_int_equal(p->m.err.code, SIP_E_TOO_MANY_HEADERS);
    done(p);
    char big[800];
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = 0;
    char msg[1200];
    snprintf(msg, sizeof(msg), REQ("Content-Length: 799\r\n") "%s", big);
    lim.max_headers = 40;
    p = parse_lim(msg, &lim, SIP_PARSE_DATAGRAM);
    assert_true(p->rc < 0);
    assert_int_equal(p->m.err.status, 513);
    done(p);
    /* Content-Length above the bound: 413 */
    lim.max_message_size = 4096;
    p = parse_lim(REQ("Content-Length: 99999999999999999999999\r\n"), &lim, SIP_PARSE_DATAGRAM);
    assert_int_equal(p->m.err.code, SIP_E_BODY_TOO_LARGE);
    assert_int_equal(p->m.err.status, 413);
    done(p);
    /* the caller's array bounds the index too */
    struct sip_hdr few[3];
    struct sip_msg m;
    sip_msg_init(&m, few, 3);
    struct sip_limits def = SIP_LIMITS_DEFAULT;
    const char *t = REQ("");
    assert_int_equal(sip_msg_parse(&m, t, strlen(t), &def, SIP_PARSE_DATAGRAM), -EMSGSIZE);
    assert_int_equal(m.err.code, SIP_E_TOO_MANY_HEADERS);
}

static void t_folding_compact(void **st)
{
    struct pm *p = parse("MESSAGE sip:b@example.com SIP/2.0\r\n"
                         "v: SIP/2.0/UDP 192.0.2.1\r\n ;branch=z9hG4bK2\r\n"
                         "f: <sip:a@example.com>\r\n\t;tag=9\r\n"
                         "t: sip:b@example.com\r\n"
                         "i: folded@h\r\n"
                         "CSeq: 7\r\n MESSAGE\r\n"
                         "m: <sip:a@192.0.2.1>\r\n"
                         "c: text/plain\r\n"
                         "k: path,\r\n outbound\r\n"
                         "e: gzip\r\n"
                         "s: hello\r\n"
                         "o: presence\r\n"
                         "u: presence, message-summary\r\n"
                         "a: *;audio\r\n"
                         "b: <sip:c@example.com>\r\n"
                         "r: <sip:d@example.com>\r\n"
                         "x: 1800\r\n"
                         "y: abc\r\n"
                         "l: 2\r\n"
                         "\r\nhi");
    ok(p);
    struct sip_msg *m = &p->m;
    STREQ(m->via.branch, "z9hG4bK2");
    STREQ(m->from.tag, "9");
    assert_int_equal(m->cseq.num, 7);
    assert_int_equal(m->cseq.method, SIP_M_MESSAGE);
    STREQ(m->content_type, "text/plain");
    STREQ(m->event, "presence");
    STREQ(m->body, "hi");
    enum sip_hdr_id ids[] = { SIP_H_CONTACT, SIP_H_SUPPORTED, SIP_H_CONTENT_ENCODING,
                              SIP_H_SUBJECT, SIP_H_ALLOW_EVENTS, SIP_H_ACCEPT_CONTACT,
                              SIP_H_REFERRED_BY, SIP_H_REFER_TO, SIP_H_SESSION_EXPIRES,
                              SIP_H_IDENTITY, SIP_H_CONTENT_LENGTH, SIP_H_CALL_ID };
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
        assert_non_null(sip_msg_hdr(m, ids[i]));
    struct sip_value_iter it = { 0 };
    str v;
    assert_true(sip_msg_values_next(m, SIP_H_SUPPORTED, &it, &v));
    STREQ(v, "path");
    assert_true(sip_msg_values_next(m, SIP_H_SUPPORTED, &it, &v));
    STREQ(v, "outbound");
    assert_false(sip_msg_values_next(m, SIP_H_SUPPORTED, &it, &v));
    done(p);
}

static void t_via_forms(void **st)
{
    struct pm *p = parse("OPTIONS sip:b@example.com SIP/2.0\r\n"
                         "Via: SIP/2.0/TCP [2001:db8::9]:5070;rport;branch=z9hG4bKv6;maddr=224.2.0.1;ttl=16\r\n"
                         "Via: SIP/2.0/UDP host.example.com:5060;received=2001:db8::1;rport=6000;branch=z9hG4bKx, "
                         "SIP/2.0/\r\n WSS df7jal23ls0d.invalid;branch=z9hG4bKw;x-ext=\"q;,\"\r\n"
                         "From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n"
                         "Call-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n");
    ok(p);
    struct sip_via *v = &p->m.via;
    STREQ(v->host, "[2001:db8::9]");
    assert_int_equal(v->host_type, SIP_HOST_IPV6);
    assert_int_equal(v->port, 5070);
    assert_true(v->rport);
    assert_false(v->has_rport_value);
    STREQ(v->maddr, "224.2.0.1");
    STREQ(v->ttl, "16");
    STREQ(v->transport, "TCP");
    assert_int_equal(p->m.nvia, 3);
    const struct sip_via *vs;
    size_t n;
    assert_int_equal(sip_msg_vias(&p->m, p->a, &vs, &n), 0);
    assert_int_equal(n, 3);
    STREQ(vs[1].received, "2001:db8::1");
    assert_true(vs[1].has_rport_value);
    assert_int_equal(vs[1].rport_value, 6000);
    STREQ(vs[2].transport, "WSS");
    STREQ(vs[2].branch, "z9hG4bKw");
    STREQ(vs[2].params, "branch=z9hG4bKw;x-ext=\"q;,\"");
    done(p);
    bad("OPTIONS sip:b@e SIP/2.0\r\nVia: SIP/2.0 192.0.2.1\r\nFrom: <sip:a@e>;tag=1\r\n"
        "To: <sip:b@e>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        SIP_E_VIA, 400, "sent-protocol");
    bad("OPTIONS sip:b@e SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:70000\r\nFrom: <sip:a@e>;tag=1\r\n"
        "To: <sip:b@e>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        SIP_E_VIA, 400, NULL);
    bad("OPTIONS sip:b@e SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=1,\r\nFrom: <sip:a@e>;tag=1\r\n"
        "To: <sip:b@e>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        SIP_E_VIA, 400, "empty value");
}

static void t_contacts(void **st)
{
    struct pm *p = parse("REGISTER sip:example.com SIP/2.0\r\n" HEAD "CSeq: 1 REGISTER\r\n"
                         "Contact: *\r\nExpires: 0\r\n\r\n");
    ok(p);
    const struct sip_addr *c;
    size_t n;
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &n), 0);
    assert_int_equal(n, 1);
    assert_true(c[0].star);
    assert_int_equal(p->m.expires, 0);
    done(p);
    p = parse("REGISTER sip:example.com SIP/2.0\r\n" HEAD "CSeq: 1 REGISTER\r\n"
              "Contact: *, <sip:a@h>\r\n\r\n");
    ok(p);
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &n), -EPROTO);
    assert_int_equal(p->m.err.code, SIP_E_CONTACT);
    done(p);
    p = parse("REGISTER sip:example.com SIP/2.0\r\n" HEAD "CSeq: 1 REGISTER\r\n"
              "Contact: \"Al \\\"the\\\" <b>, c\" <sip:a@192.0.2.1:5062;ob>;expires=60;q=0.5;"
              "+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1, "
              "sip:b@h;expires=30\r\n\r\n");
    ok(p);
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &n), 0);
    assert_int_equal(n, 2);
    STREQ(c[0].display, "Al \\\"the\\\" <b>, c");
    char un[64];
    assert_int_equal(sip_unquote(c[0].display, un, sizeof(un)), 15);
    assert_string_equal(un, "Al \"the\" <b>, c");
    STREQ(c[0].expires, "60");
    STREQ(c[0].q, "0.5");
    STREQ(c[0].instance, "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>");
    STREQ(c[0].reg_id, "1");
    STREQ(c[1].uri, "sip:b@h");
    STREQ(c[1].expires, "30");
    done(p);
}

static void t_numbers(void **st)
{
    struct pm *p = parse("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 2147483647 OPTIONS\r\n"
                         "Max-Forwards: 255\r\nExpires: 99999999999999\r\n\r\n");
    ok(p);
    assert_int_equal(p->m.cseq.num, 2147483647u);
    assert_int_equal(p->m.max_forwards, 255);
    assert_int_equal(p->m.expires, 4294967295LL); /* RFC 3261: overlarge = 2^32-1 */
    done(p);
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 2147483648 OPTIONS\r\n\r\n", SIP_E_CSEQ,
        400, "2147483648 is above 2^31-1");
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: OPTIONS\r\n\r\n", SIP_E_CSEQ, 400, NULL);
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1OPTIONS\r\n\r\n", SIP_E_CSEQ, 400, NULL);
    bad(REQ("Max-Forwards: 256\r\n"), SIP_E_MAX_FORWARDS, 400, "256");
    bad(REQ("Max-Forwards: -1\r\n"), SIP_E_MAX_FORWARDS, 400, NULL);
    bad(REQ("Expires: Thu, 01 Dec 1994 16:00:00 GMT\r\n"), SIP_E_EXPIRES, 400, NULL);
    bad(REQ("Content-Length: 12\r\n"), SIP_E_BODY_SHORT, 400,
        "Content-Length 12 exceeds the 0 bytes that follow");
    bad(REQ("Content-Length: 1x\r\n"), SIP_E_CONTENT_LENGTH, 400, NULL);
}

static void t_bad_lines(void **st)
{
    bad("OPTIONS sip:b@example.com SIP/2.0\n" HEAD "CSeq: 1 OPTIONS\r\n\r\n", SIP_E_START_LINE,
        400, "without CR");
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 OPTIONS\n\r\n", SIP_E_HEADER_SYNTAX,
        400, NULL);
    bad(REQ("NoColon here\r\n"), SIP_E_HEADER_SYNTAX, 400, "no colon");
    bad(REQ(": empty name\r\n"), SIP_E_HEADER_SYNTAX, 400, "no name");
    bad(REQ("Call-ID: again\r\n"), SIP_E_HEADER_DUP, 400, "Call-ID");
    /* a datagram that ends right after a header line ends the message (RFC 4475 archive
     * files are like that); a stream message must have its empty line */
    struct pm *d = parse("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 OPTIONS\r\n");
    ok(d);
    assert_int_equal(d->m.body.len, 0);
    done(d);
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    d = parse_lim("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 OPTIONS\r\n", &lim,
                  SIP_PARSE_STREAM);
    assert_int_equal(d->m.err.code, SIP_E_INCOMPLETE);
    done(d);
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 OPTIONS", SIP_E_INCOMPLETE, 400, NULL);
    bad("OPTIONS sip:b@example.com SIP/2.0", SIP_E_INCOMPLETE, 400, NULL);
    bad("", SIP_E_START_LINE, 400, NULL);
    bad("OPT<IONS sip:b@example.com SIP/2.0\r\n\r\n", SIP_E_METHOD, 400, NULL);
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 INVITE\r\n\r\n", SIP_E_CSEQ_METHOD,
        400, "CSeq method INVITE does not match request method OPTIONS");
    bad("OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
        "From: Bad \"x\" <sip:a@e>\r\nTo: <sip:b@e>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        SIP_E_FROM, 400, NULL);
    bad("OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
        "From: <sip:a@e>\r\nTo: <sip:b@e\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        SIP_E_TO, 400, "without '>'");
    bad("OPTIONS sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
        "From: <sip:a@e>\r\nTo: <sip:b@e>\r\nCall-ID: a b\r\nCSeq: 1 OPTIONS\r\n\r\n",
        SIP_E_CALL_ID, 400, NULL);
    bad("SIP/2.0 20 OK\r\n" HEAD "CSeq: 1 INVITE\r\n\r\n", SIP_E_STATUS, 400, NULL);
    bad("SIP/2.0 700 Huh\r\n" HEAD "CSeq: 1 INVITE\r\n\r\n", SIP_E_STATUS, 400, "700");
    bad("SIP/3.0 200 OK\r\n" HEAD "CSeq: 1 INVITE\r\n\r\n", SIP_E_VERSION, 505, NULL);
    bad("OPTIONS sip:b@example.com SIP/2.0\r\n\r\n", SIP_E_HEADER_MISSING, 400,
        "Via, From, To, Call-ID, CSeq");
    /* a reason never holds control bytes or CR/LF */
    struct pm *p = parse("OPTIONS sip:b@example.com SIP/2.0\r\n" HEAD "CSeq: 1 OP\x01TIONS\r\n\r\n");
    assert_true(p->rc < 0);
    for (const char *c = p->m.err.reason; *c; c++)
        assert_true(*c >= 0x20 && *c < 0x7f);
    done(p);
}

static void t_response(void **st)
{
    struct pm *p = parse("SIP/2.0 401 Unauthorized\r\n" HEAD "CSeq: 1 REGISTER\r\n"
                         "WWW-Authenticate: Digest realm=\"example.com\", qop=\"auth,auth-int\", "
                         "nonce=\"abc\\\"d\", opaque=\"\", algorithm=SHA-256, stale=FALSE\r\n"
                         "Content-Length: 0\r\n\r\n");
    ok(p);
    assert_false(p->m.is_request);
    assert_int_equal(p->m.status, 401);
    STREQ(p->m.reason, "Unauthorized");
    assert_int_equal(p->m.cseq.method, SIP_M_REGISTER); /* responses: no method check */
    const struct sip_auth *a;
    assert_int_equal(sip_msg_auth(&p->m, p->a, SIP_H_WWW_AUTHENTICATE, &a), 0);
    STREQ(a->scheme, "Digest");
    STREQ(a->realm, "example.com");
    STREQ(a->qop, "auth,auth-int");
    STREQ(a->nonce, "abc\\\"d");
    assert_true(a->quoted_escape);
    STREQ(a->algorithm, "SHA-256");
    STREQ(a->stale, "FALSE");
    assert_non_null(a->opaque.s);
    assert_int_equal(a->opaque.len, 0);
    assert_int_equal(a->nparams, 6);
    assert_int_equal(sip_msg_auth(&p->m, p->a, SIP_H_AUTHORIZATION, &a), 0);
    assert_null(a);
    assert_int_equal(sip_msg_auth(&p->m, p->a, SIP_H_VIA, &a), -EINVAL);
    done(p);
}

static void t_auth(void **st)
{
    struct sip_auth a;
    assert_int_equal(sip_auth_parse(STR("Digest username=\"bob\",realm=\"biloxi.com\",nonce="
                                        "\"dcd98b\", uri=\"sip:bob@biloxi.com\", response="
                                        "\"245f23415f11432b3434341c022\",algorithm=MD5,cnonce="
                                        "\"0a4f113b\",qop=auth,nc=00000001,userhash=false"),
                                    &a),
                     0);
    STREQ(a.username, "bob");
    STREQ(a.uri, "sip:bob@biloxi.com");
    STREQ(a.response, "245f23415f11432b3434341c022");
    STREQ(a.nc, "00000001");
    STREQ(a.cnonce, "0a4f113b");
    STREQ(a.qop, "auth");
    STREQ(a.userhash, "false");
    assert_false(a.quoted_escape);
    assert_int_equal(sip_auth_parse(STR("Digest realm=\"x"), &a), -EINVAL);
    assert_int_equal(sip_auth_parse(STR("Digest realm"), &a), -EINVAL);
    assert_int_equal(sip_auth_parse(STR("Digest realm=\"a\" nonce=\"b\""), &a), -EINVAL);
    assert_int_equal(sip_auth_parse(STR(""), &a), -EINVAL);
    char many[2000] = "Digest a0=1";
    for (int i = 1; i < 30; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ", a%d=1", i);
    assert_int_equal(sip_auth_parse(str_cstr(many), &a), -E2BIG);
}

static void t_values(void **st)
{
    str first, params, v;
    assert_int_equal(sip_value_split(STR(" active ;expires=599; reason=\"a;b\" "), &first, &params),
                     0);
    STREQ(first, "active");
    STREQ(params, "expires=599; reason=\"a;b\"");
    assert_int_equal(sip_param_find(params, STR("EXPIRES"), &v), 0);
    STREQ(v, "599");
    assert_int_equal(sip_param_find(params, STR("reason"), &v), 0);
    STREQ(v, "a;b");
    assert_int_equal(sip_param_find(params, STR("retry-after"), &v), -ENOENT);
    assert_int_equal(sip_value_split(STR("presence"), &first, &params), 0);
    STREQ(first, "presence");
    assert_int_equal(params.len, 0);
    assert_int_equal(sip_value_split(STR(";x"), &first, &params), -EINVAL);
    assert_int_equal(sip_param_find(STR("a=\"x"), STR("b"), &v), -EINVAL);
    assert_int_equal(sip_param_find(STR("lr;id=7"), STR("lr"), &v), 0);
    assert_int_equal(v.len, 0);
}

static void t_tables(void **st)
{
    assert_int_equal(sip_hdr_lookup(STR("cAlL-iD")), SIP_H_CALL_ID);
    assert_int_equal(sip_hdr_lookup(STR("i")), SIP_H_CALL_ID);
    assert_int_equal(sip_hdr_lookup(STR("WWW-AUTHENTICATE")), SIP_H_WWW_AUTHENTICATE);
    assert_int_equal(sip_hdr_lookup(STR("X-Unknown")), SIP_H_OTHER);
    assert_int_equal(sip_hdr_lookup(STR("Vias")), SIP_H_OTHER);
    assert_int_equal(sip_hdr_lookup(STR("q")), SIP_H_OTHER);
    /* every name and compact form round-trips */
    for (int id = 1; id < SIP_H__COUNT; id++)
        assert_int_equal(sip_hdr_lookup(sip_hdr_name((enum sip_hdr_id)id)), id);
    assert_true(sip_hdr_is_list(SIP_H_VIA));
    assert_false(sip_hdr_is_list(SIP_H_AUTHORIZATION));
    assert_int_equal(sip_method_from_str(STR("SUBSCRIBE")), SIP_M_SUBSCRIBE);
    assert_int_equal(sip_method_from_str(STR("invite")), SIP_M_OTHER);
    for (int m = 1; m < SIP_M__COUNT; m++)
        assert_int_equal(sip_method_from_str(sip_method_name((enum sip_method)m)), m);
    for (int e = 1; e < SIP_E__COUNT; e++) {
        const struct sip_err_desc *d = sip_err_desc((enum sip_err)e);
        assert_true(d->status >= 400 && d->status < 600);
        assert_true(strlen(d->name) > 0 && strlen(d->phrase) > 0);
    }
    assert_int_equal(sip_err_desc(SIP_E_VERSION)->status, 505);
    assert_int_equal(sip_err_desc(SIP_E_URI_SCHEME)->status, 416);
    assert_int_equal(sip_err_desc(SIP_E_TOO_LARGE)->status, 513);
    assert_int_equal(sip_err_desc(SIP_E_BODY_TOO_LARGE)->status, 413);
    assert_int_equal(sip_err_desc((enum sip_err)999)->status, 0);
}

static int frame(const char *text, size_t *n)
{
    struct guarded g = guard_copy(text, strlen(text));
    struct sip_limits lim = { 2048, 64, 1024 };
    struct sip_error err;
    int rc = sip_frame(g.p, g.len, &lim, n, &err);
    guard_free(&g);
    return rc;
}

static void t_frame(void **st)
{
    size_t n = 0;
    assert_int_equal(frame("\r\n\r\n", &n), SIP_FRAME_PING);
    assert_int_equal(n, 4);
    assert_int_equal(frame("\r\nINVITE", &n), SIP_FRAME_PONG);
    assert_int_equal(n, 2);
    assert_int_equal(frame("\r\n", &n), -EAGAIN);
    assert_int_equal(frame("\r", &n), -EAGAIN);
    assert_int_equal(frame("\r\n\r", &n), -EAGAIN);
    assert_int_equal(frame("", &n), -EAGAIN);
    const char *m = REQ("Content-Length: 5\r\n") "hello";
    assert_int_equal(frame(m, &n), SIP_FRAME_MSG);
    assert_int_equal(n, strlen(m));
    /* every proper prefix needs more bytes */
    for (size_t k = 1; k < strlen(m); k++) {
        char tmp[1024];
        memcpy(tmp, m, k);
        tmp[k] = 0;
        if (k >= 1 && tmp[0] == '\r')
            continue;
        assert_int_equal(frame(tmp, &n), -EAGAIN);
    }
    /* two pipelined messages: the first is cut out */
    char two[2048];
    snprintf(two, sizeof(two), "%s%s", m, m);
    assert_int_equal(frame(two, &n), SIP_FRAME_MSG);
    assert_int_equal(n, strlen(m));
    /* folded, compact Content-Length */
    const char *f = REQ("l:\r\n 3\r\n") "abc";
    assert_int_equal(frame(f, &n), SIP_FRAME_MSG);
    assert_int_equal(n, strlen(f));
    /* no Content-Length counts as 0 */
    assert_int_equal(frame(REQ("") "junk", &n), SIP_FRAME_MSG);
    assert_int_equal(n, strlen(REQ("")));
    assert_int_equal(frame(REQ("Content-Length: -5\r\n"), &n), -EPROTO);
    assert_int_equal(frame(REQ("Content-Length: 5\r\nContent-Length: 6\r\n"), &n), -EPROTO);
    assert_int_equal(frame(REQ("Content-Length: 99999\r\n"), &n), -EMSGSIZE);
    char huge[4096];
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = 0;
    assert_int_equal(frame(huge, &n), -EMSGSIZE);
    /* stream mode: a missing Content-Length gives an empty body */
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    struct sip_hdr h[16];
    struct sip_msg msg;
    sip_msg_init(&msg, h, 16);
    const char *s = REQ("");
    assert_int_equal(sip_msg_parse(&msg, s, strlen(s), &lim, SIP_PARSE_STREAM), strlen(s));
    assert_int_equal(msg.body.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_minimal),  cmocka_unit_test(t_limits),    cmocka_unit_test(t_folding_compact),
        cmocka_unit_test(t_via_forms), cmocka_unit_test(t_contacts), cmocka_unit_test(t_numbers),
        cmocka_unit_test(t_bad_lines), cmocka_unit_test(t_response), cmocka_unit_test(t_auth), cmocka_unit_test(t_values),
        cmocka_unit_test(t_tables),   cmocka_unit_test(t_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
