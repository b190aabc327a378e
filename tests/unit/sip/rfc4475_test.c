/*
 * RFC 4475 torture messages (tests/data/rfc4475, see its README.md and index.tsv): each
 * is a test. Valid ones parse with their notable values checked; invalid ones are
 * rejected with the right reason and status; liberal ones follow the choice written in
 * docs/sip-parser.md; responses parse (or are rejected) without harm. Every input sits
 * against a guard page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sip/guard.h"
#include "sip/msg.h"

#define DIR TEST_DATA_DIR "/rfc4475/"

struct parsed {
    struct guarded g;
    char *file;
    struct sip_hdr hdrs[128];
    struct sip_msg m;
    ssize_t rc;
    struct arena *a;
};

static struct parsed *load(const char *name)
{
    struct parsed *p = calloc(1, sizeof(*p));
    char path[256];
    snprintf(path, sizeof(path), DIR "%s", name);
    size_t len;
    p->file = read_file(path, &len);
    p->g = guard_copy(p->file, len);
    sip_msg_init(&p->m, p->hdrs, 128);
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    p->rc = sip_msg_parse(&p->m, p->g.p, p->g.len, &lim, SIP_PARSE_DATAGRAM);
    assert_int_equal(arena_new(&p->a, 0, 0), 0);
    return p;
}

static void unload(struct parsed *p)
{
    arena_free(p->a);
    guard_free(&p->g);
    free(p->file);
    free(p);
}

#define STREQ(s, lit) assert_true(str_eq((s), STR(lit)))
#define OK(p) assert_true_msg((p)->rc > 0, (p)->m.err.reason)
static void assert_true_msg(bool c, const char *msg)
{
    if (!c)
        fail_msg("parse failed: %s", msg);
}

static void rejected(const char *file, enum sip_err code, uint16_t status, const char *reason)
{
    struct parsed *p = load(file);
    if (p->rc >= 0)
        fail_msg("%s was accepted", file);
    assert_int_equal(p->m.err.code, code);
    assert_int_equal(p->m.err.status, status);
    if (reason && !strstr(p->m.err.reason, reason))
        fail_msg("%s: reason '%s' lacks '%s'", file, p->m.err.reason, reason);
    unload(p);
}

/* ---- 3.1.1 valid messages ---- */

static void t_wsinv(void **st)
{
    struct parsed *p = load("wsinv.dat");
    OK(p);
    struct sip_msg *m = &p->m;
    assert_int_equal(m->method, SIP_M_INVITE);
    STREQ(m->ruri.user, "vivekg");
    STREQ(m->ruri.host, "chair-dnrc.example.com");
    STREQ(m->ruri.params, "unknownparam");
    STREQ(m->to.uri, "sip:vivekg@chair-dnrc.example.com");
    STREQ(m->to.tag, "1918181833n");
    assert_true(m->from.display_quoted);
    STREQ(m->from.display, "J Rosenberg \\\\\\\"");
    STREQ(m->from.tag, "98asjd8");
    assert_int_equal(m->max_forwards, 68);
    assert_int_equal(m->cseq.num, 9);
    assert_int_equal(m->cseq.method, SIP_M_INVITE);
    assert_int_equal(m->content_length, 150);
    assert_int_equal(m->body.len, 150);
    /* three Via values over two headers, LWS everywhere */
    assert_int_equal(m->nvia, 3);
    STREQ(m->via.proto_name, "SIP");
    STREQ(m->via.proto_version, "2.0");
    STREQ(m->via.transport, "UDP");
    STREQ(m->via.host, "192.0.2.2");
    assert_int_equal(m->via.host_type, SIP_HOST_IPV4);
    STREQ(m->via.branch, "390skdjuw");
    const struct sip_via *v;
    size_t nv;
    assert_int_equal(sip_msg_vias(m, p->a, &v, &nv), 0);
    assert_int_equal(nv, 3);
    STREQ(v[1].transport, "TCP");
    STREQ(v[1].host, "spindle.example.com");
    STREQ(v[1].branch, "z9hG4bK9ikj8");
    STREQ(v[2].host, "192.168.255.111");
    STREQ(v[2].branch, "z9hG4bK30239");
    /* the empty Subject and the unknown headers are kept */
    const struct sip_hdr *h = sip_msg_hdr(m, SIP_H_SUBJECT);
    assert_non_null(h);
    assert_int_equal(h->value.len, 0);
    h = sip_msg_hdr_by_name(m, STR("newfangledheader"));
    assert_non_null(h);
    assert_true(str_has_prefix(h->value, STR("newfangled value\r\n continued")));
    h = sip_msg_hdr_by_name(m, STR("UnknownHeaderWithUnusualValue"));
    STREQ(h->value, ";;,,;;,;");
    const struct sip_addr *r;
    size_t nr;
    assert_int_equal(sip_msg_routes(m, p->a, &r, &nr), 0);
    assert_int_equal(nr, 1);
    STREQ(r[0].uri, "sip:services.example.com;lr;unknownwith=value;unknown-no-value");
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(m, p->a, &c, &nc), 0);
    assert_int_equal(nc, 1);
    STREQ(c[0].display, "Quoted string \\\"\\\"");
    STREQ(c[0].uri, "sip:jdrosen@example.com");
    STREQ(c[0].q, "0.33");
    /* idempotent: the second call gives the cached array */
    const struct sip_addr *c2;
    assert_int_equal(sip_msg_contacts(m, p->a, &c2, &nc), 0);
    assert_ptr_equal(c, c2);
    unload(p);
}

static void t_intmeth(void **st)
{
    struct parsed *p = load("intmeth.dat");
    OK(p);
    struct sip_msg *m = &p->m;
    assert_int_equal(m->method, SIP_M_OTHER);
    STREQ(m->method_name, "!interesting-Method0123456789_*+`.%indeed'~");
    STREQ(m->ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    STREQ(m->ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    STREQ(m->ruri.host, "example.com");
    STREQ(m->via.branch, "z9hG4bK-.!%66*_+`'~");
    assert_int_equal(m->to.display.len, 20); /* BEL, NUL, DEL quoted-pairs */
    STREQ(m->from.display, "token1~` token2'+_ token3*%!.-");
    STREQ(m->from.tag, "_token~1'+`*%!-.");
    STREQ(m->call_id, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_true(str_eq(m->cseq.method_name, m->method_name));
    assert_int_equal(m->max_forwards, 255);
    assert_non_null(sip_msg_hdr_by_name(m, STR("extensionHeader-!.%*+_`'~")));
    unload(p);
}

static void t_esc01(void **st)
{
    struct parsed *p = load("esc01.dat");
    OK(p);
    struct sip_msg *m = &p->m;
    STREQ(m->ruri.user, "sips%3Auser%40example.com");
    STREQ(m->ruri.host, "example.net");
    struct sip_uri to, plain;
    assert_int_equal(sip_uri_parse(m->to.uri, &to), 0);
    assert_int_equal(sip_uri_parse(STR("sip:user@example.com"), &plain), 0);
    assert_true(sip_uri_eq(&to, &plain)); /* %75se%72 == user */
    STREQ(m->from.uri, "sip:I%20have%20spaces@example.net");
    STREQ(m->content_type, "application/sdp"); /* compact "C" */
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(m, p->a, &c, &nc), 0);
    struct sip_uri cu, cu2;
    assert_int_equal(sip_uri_parse(c[0].uri, &cu), 0);
    assert_int_equal(
        sip_uri_parse(STR("sip:caller@host5.example.net;lr;name=value%25%34%31"), &cu2), 0);
    assert_true(sip_uri_eq(&cu, &cu2));
    unload(p);
}

static void t_escnull(void **st)
{
    struct parsed *p = load("escnull.dat");
    OK(p);
    struct sip_msg *m = &p->m;
    STREQ(m->to.uri, "sip:null-%00-null@example.com");
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(m, p->a, &c, &nc), 0);
    assert_int_equal(nc, 2);
    struct sip_uri a, b;
    assert_int_equal(sip_uri_parse(c[0].uri, &a), 0);
    assert_int_equal(sip_uri_parse(c[1].uri, &b), 0);
    STREQ(a.user, "%00");
    STREQ(b.user, "%00%00");
    assert_false(sip_uri_eq(&a, &b)); /* %00 does not truncate */
    assert_int_equal(m->content_length, 0);
    unload(p);
}

static void t_esc02(void **st)
{
    struct parsed *p = load("esc02.dat");
    OK(p);
    struct sip_msg *m = &p->m;
    STREQ(m->method_name, "RE%47IST%45R");
    assert_int_equal(m->method, SIP_M_OTHER); /* not REGISTER: methods are not unescaped */
    STREQ(m->to.display, "%Z%45");
    STREQ(m->via.branch, "z9hG4bK209%fzsnel234");
    /* C%6Fntact is an unknown header, not a Contact */
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(m, p->a, &c, &nc), 0);
    assert_int_equal(nc, 2);
    assert_non_null(sip_msg_hdr_by_name(m, STR("C%6Fntact")));
    unload(p);
}

static void t_lwsdisp(void **st)
{
    struct parsed *p = load("lwsdisp.dat");
    OK(p);
    STREQ(p->m.from.display, "caller");
    STREQ(p->m.from.uri, "sip:caller@example.com");
    STREQ(p->m.from.tag, "323");
    unload(p);
}

static void t_longreq(void **st)
{
    struct parsed *p = load("longreq.dat");
    OK(p);
    struct sip_msg *m = &p->m;
    assert_true(m->to.display.len > 80);
    struct sip_uri u;
    assert_int_equal(sip_uri_parse(m->to.uri, &u), 0);
    assert_int_equal(u.port, 6000);
    assert_true(u.params.len > 200);
    assert_true(m->from.tag.len > 100);
    assert_true(m->call_id.len > 100);
    const struct sip_via *v;
    size_t nv;
    assert_int_equal(sip_msg_vias(m, p->a, &v, &nv), 0);
    assert_int_equal(nv, m->nvia);
    assert_true(nv >= 30);
    assert_int_equal(m->body.len, m->content_length);
    unload(p);
}

static void t_dblreq(void **st)
{
    struct parsed *p = load("dblreq.dat");
    OK(p);
    /* RFC 3261 §18.3: bytes after Content-Length in the datagram are discarded */
    assert_int_equal(p->m.method, SIP_M_REGISTER);
    assert_int_equal(p->m.body.len, 0);
    assert_true((size_t)p->rc < p->g.len);
    STREQ(p->m.call_id, "dblreq.0ha0isndaksdj99sdfafnl3lk233412"); /* compact I */
    unload(p);
}

static void t_semiuri(void **st)
{
    struct parsed *p = load("semiuri.dat");
    OK(p);
    STREQ(p->m.ruri.user, "user;par=u%40example.net");
    STREQ(p->m.ruri.host, "example.com");
    assert_int_equal(p->m.ruri.params.len, 0);
    struct sip_value_iter it = { 0 };
    str v;
    int n = 0;
    while (sip_msg_values_next(&p->m, SIP_H_ACCEPT, &it, &v))
        n++;
    assert_int_equal(n, 6);
    STREQ(v, "message/sipfrag");
    unload(p);
}

static void t_transports(void **st)
{
    struct parsed *p = load("transports.dat");
    OK(p);
    const struct sip_via *v;
    size_t nv;
    assert_int_equal(sip_msg_vias(&p->m, p->a, &v, &nv), 0);
    assert_int_equal(nv, 5);
    const char *t[] = { "UDP", "SCTP", "TLS", "UNKNOWN", "TCP" };
    for (size_t i = 0; i < 5; i++)
        assert_true(str_eq(v[i].transport, str_cstr(t[i])));
    STREQ(p->m.call_id, "transports.kijh4akdnaqjkwendsasfdj");
    unload(p);
}

static void t_mpart01(void **st)
{
    struct parsed *p = load("mpart01.dat");
    OK(p);
    assert_int_equal(p->m.body.len, p->m.content_length);
    assert_true(str_has_prefix(p->m.content_type, STR("multipart/mixed")));
    unload(p);
}

static void t_unreason(void **st)
{
    struct parsed *p = load("unreason.dat");
    OK(p);
    assert_false(p->m.is_request);
    assert_int_equal(p->m.status, 200);
    assert_true(str_has_prefix(p->m.reason, STR("= 2**3 * 5**2 ")));
    assert_int_equal(p->m.body.len, 154);
    unload(p);
}

static void t_noreason(void **st)
{
    struct parsed *p = load("noreason.dat");
    OK(p);
    assert_int_equal(p->m.status, 100);
    assert_int_equal(p->m.reason.len, 0);
    unload(p);
}

/* ---- 3.1.2 invalid messages ---- */

static void t_badinv01(void **st)
{
    rejected("badinv01.dat", SIP_E_VIA, 400, "empty parameter");
}
static void t_clerr(void **st)
{
    rejected("clerr.dat", SIP_E_BODY_SHORT, 400, "Content-Length 9999 exceeds the");
}
static void t_ncl(void **st)
{
    rejected("ncl.dat", SIP_E_CONTENT_LENGTH, 400, "Content-Length -999");
}
static void t_scalar02(void **st)
{
    rejected("scalar02.dat", SIP_E_CSEQ, 400, "CSeq number 36893488147419103232");
}
static void t_scalarlg(void **st)
{
    rejected("scalarlg.dat", SIP_E_CSEQ, 400, "CSeq number");
}
static void t_quotbal(void **st)
{
    rejected("quotbal.dat", SIP_E_TO, 400, "unterminated quoted string");
}
static void t_ltgtruri(void **st)
{
    rejected("ltgtruri.dat", SIP_E_REQUEST_URI, 400, "angle brackets");
}
static void t_lwsruri(void **st)
{
    rejected("lwsruri.dat", SIP_E_REQUEST_URI, 400, "whitespace");
}
static void t_baddn(void **st)
{
    rejected("baddn.dat", SIP_E_FROM, 400, "display name");
}
static void t_badvers(void **st)
{
    rejected("badvers.dat", SIP_E_VERSION, 505, "SIP/7.0");
}
static void t_mismatch01(void **st)
{
    rejected("mismatch01.dat", SIP_E_CSEQ_METHOD, 400,
             "CSeq method INVITE does not match request method OPTIONS");
}
static void t_mismatch02(void **st)
{
    rejected("mismatch02.dat", SIP_E_CSEQ_METHOD, 400, "request method NEWMETHOD");
}
static void t_bigcode(void **st)
{
    rejected("bigcode.dat", SIP_E_STATUS, 400, "Status-Code");
}
static void t_insuf(void **st)
{
    rejected("insuf.dat", SIP_E_HEADER_MISSING, 400, "From, To, Call-ID");
}
static void t_unkscm(void **st)
{
    rejected("unkscm.dat", SIP_E_URI_SCHEME, 416, "nobodyKnowsThisScheme");
}
static void t_novelsc(void **st)
{
    rejected("novelsc.dat", SIP_E_URI_SCHEME, 416, "soap.beep");
}
static void t_multi01(void **st)
{
    rejected("multi01.dat", SIP_E_HEADER_DUP, 400, "CSeq header appears more than once");
}
static void t_mcl01(void **st)
{
    rejected("mcl01.dat", SIP_E_HEADER_DUP, 400, "Content-Length");
}
static void t_test(void **st)
{
    rejected("test.dat", SIP_E_START_LINE, 400, "SIP-Version");
}

/* ---- liberal: our choice is to accept (docs/sip-parser.md) ---- */

static void t_lwsstart(void **st)
{
    struct parsed *p = load("lwsstart.dat");
    OK(p);
    STREQ(p->m.ruri_raw, "sip:user@example.com");
    unload(p);
}
static void t_trws(void **st)
{
    struct parsed *p = load("trws.dat");
    OK(p);
    STREQ(p->m.ruri_raw, "sip:remote-target@example.com");
    unload(p);
}
static void t_escruri(void **st)
{
    struct parsed *p = load("escruri.dat");
    OK(p);
    STREQ(p->m.ruri.headers, "Route=%3Csip:example.com%3E");
    assert_null(sip_msg_hdr(&p->m, SIP_H_ROUTE)); /* never a real header */
    unload(p);
}
static void t_baddate(void **st)
{
    struct parsed *p = load("baddate.dat");
    OK(p);
    STREQ(sip_msg_hdr(&p->m, SIP_H_DATE)->value, "Fri, 01 Jan 2010 16:00:00 EST");
    unload(p);
}
static void t_regbadct(void **st)
{
    struct parsed *p = load("regbadct.dat");
    OK(p);
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &nc), 0);
    assert_int_equal(nc, 1);
    STREQ(c[0].uri, "sip:user@example.com?Route=%3Csip:sip.example.com%3E");
    unload(p);
}
static void t_badaspec(void **st)
{
    struct parsed *p = load("badaspec.dat");
    OK(p);
    STREQ(p->m.to.uri, "sip:t.watson@example.org");
    STREQ(p->m.from.display, "Bell, Alexander");
    unload(p);
}
static void t_unksm2(void **st)
{
    struct parsed *p = load("unksm2.dat");
    OK(p);
    STREQ(p->m.to.uri, "isbn:2983792873");
    STREQ(p->m.from.uri, "http://www.example.com");
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &nc), 0);
    struct sip_uri u;
    assert_int_equal(sip_uri_parse(c[0].uri, &u), 0);
    assert_int_equal(u.scheme, SIP_URI_OTHER);
    STREQ(u.opaque, "John_Smith");
    unload(p);
}

/* ---- 3.2 - 3.4: valid syntax, application-level answers later ---- */

static void t_badbranch(void **st)
{
    struct parsed *p = load("badbranch.dat");
    OK(p);
    STREQ(p->m.via.branch, "z9hG4bK");
    unload(p);
}
static void t_bext01(void **st)
{
    struct parsed *p = load("bext01.dat");
    OK(p); /* 420 is the core's answer */
    struct sip_value_iter it = { 0 };
    str v;
    assert_true(sip_msg_values_next(&p->m, SIP_H_REQUIRE, &it, &v));
    assert_non_null(sip_msg_hdr(&p->m, SIP_H_PROXY_REQUIRE));
    unload(p);
}
static void t_invut(void **st)
{
    struct parsed *p = load("invut.dat");
    OK(p);
    STREQ(p->m.content_type, "application/unknownformat");
    unload(p);
}
static void t_regaut01(void **st)
{
    struct parsed *p = load("regaut01.dat");
    OK(p);
    const struct sip_auth *a;
    assert_int_equal(sip_msg_auth(&p->m, p->a, SIP_H_AUTHORIZATION, &a), 0);
    STREQ(a->scheme, "NoOneKnowsThisScheme");
    assert_int_equal(a->nparams, 1);
    STREQ(a->values[0], "here");
    unload(p);
}
static void t_zeromf(void **st)
{
    struct parsed *p = load("zeromf.dat");
    OK(p);
    assert_int_equal(p->m.max_forwards, 0);
    unload(p);
}
static void t_cparam(void **st)
{
    struct parsed *p = load("cparam01.dat");
    OK(p);
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &nc), 0);
    STREQ(c[0].uri, "sip:+19725552222@gw1.example.net");
    STREQ(c[0].params, "unknownparam"); /* a header parameter */
    unload(p);
    p = load("cparam02.dat");
    OK(p);
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &nc), 0);
    STREQ(c[0].uri, "sip:+19725552222@gw1.example.net;unknownparam"); /* a URI parameter */
    assert_int_equal(c[0].params.len, 0);
    unload(p);
}
static void t_regescrt(void **st)
{
    struct parsed *p = load("regescrt.dat");
    OK(p);
    const struct sip_addr *c;
    size_t nc;
    assert_int_equal(sip_msg_contacts(&p->m, p->a, &c, &nc), 0);
    struct sip_uri u;
    assert_int_equal(sip_uri_parse(c[0].uri, &u), 0);
    STREQ(u.headers, "Route=%3Csip:sip.example.com%3E");
    assert_null(sip_msg_hdr(&p->m, SIP_H_ROUTE));
    unload(p);
}
static void t_sdp01(void **st)
{
    struct parsed *p = load("sdp01.dat");
    OK(p);
    assert_non_null(sip_msg_hdr(&p->m, SIP_H_ACCEPT));
    assert_int_equal(p->m.body.len, p->m.content_length);
    unload(p);
}
static void t_inv2543(void **st)
{
    struct parsed *p = load("inv2543.dat");
    OK(p);
    assert_int_equal(p->m.via.branch.len, 0);
    STREQ(p->m.via.host, "iftgw.example.com");
    assert_int_equal(p->m.max_forwards, -1);
    assert_int_equal(p->m.to.tag.len, 0);
    unload(p);
}
static void t_bcast(void **st)
{
    struct parsed *p = load("bcast.dat");
    OK(p);
    const struct sip_via *v;
    size_t nv;
    assert_int_equal(sip_msg_vias(&p->m, p->a, &v, &nv), 0);
    assert_int_equal(nv, 2);
    STREQ(v[1].host, "255.255.255.255");
    unload(p);
}

/* every file: index.tsv's class is honoured, in datagram mode and (where the file has
 * its empty line) through stream framing too */
static void t_index(void **st)
{
    size_t len;
    char *idx = read_file(DIR "index.tsv", &len);
    char *save = NULL;
    int n = 0;
    for (char *line = strtok_r(idx, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char file[64], sec[32], cls[32];
        if (sscanf(line, "%63[^\t]\t%31[^\t]\t%31[^\t]", file, sec, cls) != 3)
            continue;
        struct parsed *p = load(file);
        n++;
        if (strcmp(cls, "valid") == 0 && p->rc <= 0)
            fail_msg("%s (valid) rejected: %s", file, p->m.err.reason);
        if (strcmp(cls, "invalid") == 0 && strcmp(file, "bext01.dat") != 0 && p->rc > 0)
            fail_msg("%s (invalid) accepted", file);
        /* stream framing gives the same message when the file is complete */
        struct sip_limits lim = SIP_LIMITS_DEFAULT;
        size_t fl = 0;
        int fr = sip_frame(p->g.p, p->g.len, &lim, &fl, NULL);
        if (fr == SIP_FRAME_MSG && p->rc > 0 && p->m.content_length >= 0) {
            struct sip_hdr h2[128];
            struct sip_msg m2;
            sip_msg_init(&m2, h2, 128);
            assert_int_equal(sip_msg_parse(&m2, p->g.p, fl, &lim, SIP_PARSE_STREAM), p->rc);
            assert_int_equal(m2.nhdrs, p->m.nhdrs);
        }
        unload(p);
    }
    assert_int_equal(n, 50);
    free(idx);
}

/* every prefix of every file, against the guard page: parse (both modes), frame and the
 * on-demand accessors never read past the end, whatever the cut */
static void t_prefixes(void **st)
{
    size_t len;
    char *idx = read_file(DIR "index.tsv", &len);
    char *save = NULL;
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    struct arena *a;
    assert_int_equal(arena_new(&a, 0, 0), 0);
    for (char *line = strtok_r(idx, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char file[64], path[256];
        if (line[0] == '#' || sscanf(line, "%63[^\t]", file) != 1)
            continue;
        snprintf(path, sizeof(path), DIR "%s", file);
        size_t fl;
        char *data = read_file(path, &fl);
        struct guarded g = guard_copy(data, fl);
        for (size_t k = 0; k <= fl; k++) {
            char *p = g.p + (fl - k);
            memmove(p, data, k);
            struct sip_hdr h[128];
            struct sip_msg m;
            sip_msg_init(&m, h, 128);
            for (unsigned mode = 1; mode <= 2; mode++)
                if (sip_msg_parse(&m, p, k, &lim, mode) > 0) {
                    const struct sip_via *v;
                    const struct sip_addr *c;
                    const struct sip_auth *au;
                    size_t n;
                    sip_msg_vias(&m, a, &v, &n);
                    sip_msg_contacts(&m, a, &c, &n);
                    sip_msg_routes(&m, a, &c, &n);
                    sip_msg_auth(&m, a, SIP_H_AUTHORIZATION, &au);
                    arena_reset(a);
                }
            size_t n;
            sip_frame(p, k, &lim, &n, NULL);
        }
        guard_free(&g);
        free(data);
    }
    arena_free(a);
    free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_wsinv),     cmocka_unit_test(t_intmeth),   cmocka_unit_test(t_esc01),
        cmocka_unit_test(t_escnull),   cmocka_unit_test(t_esc02),     cmocka_unit_test(t_lwsdisp),
        cmocka_unit_test(t_longreq),   cmocka_unit_test(t_dblreq),    cmocka_unit_test(t_semiuri),
        cmocka_unit_test(t_transports), cmocka_unit_test(t_mpart01),  cmocka_unit_test(t_unreason),
        cmocka_unit_test(t_noreason),  cmocka_unit_test(t_badinv01),  cmocka_unit_test(t_clerr),
        cmocka_unit_test(t_ncl),       cmocka_unit_test(t_scalar02),  cmocka_unit_test(t_scalarlg),
        cmocka_unit_test(t_quotbal),   cmocka_unit_test(t_ltgtruri),  cmocka_unit_test(t_lwsruri),
        cmocka_unit_test(t_baddn),     cmocka_unit_test(t_badvers),   cmocka_unit_test(t_mismatch01),
        cmocka_unit_test(t_mismatch02), cmocka_unit_test(t_bigcode),  cmocka_unit_test(t_insuf),
        cmocka_unit_test(t_unkscm),    cmocka_unit_test(t_novelsc),   cmocka_unit_test(t_multi01),
        cmocka_unit_test(t_mcl01),     cmocka_unit_test(t_test),      cmocka_unit_test(t_lwsstart),
        cmocka_unit_test(t_trws),      cmocka_unit_test(t_escruri),   cmocka_unit_test(t_baddate),
        cmocka_unit_test(t_regbadct),  cmocka_unit_test(t_badaspec),  cmocka_unit_test(t_unksm2),
        cmocka_unit_test(t_badbranch), cmocka_unit_test(t_bext01),    cmocka_unit_test(t_invut),
        cmocka_unit_test(t_regaut01),  cmocka_unit_test(t_zeromf),    cmocka_unit_test(t_cparam),
        cmocka_unit_test(t_regescrt),  cmocka_unit_test(t_sdp01),     cmocka_unit_test(t_inv2543),
        cmocka_unit_test(t_bcast),     cmocka_unit_test(t_index),     cmocka_unit_test(t_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
