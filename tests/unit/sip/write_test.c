/* The writer: responses from requests, forwarding with edits, new requests from parts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sip/guard.h"
#include "sip/msg.h"

#define STREQ(s, lit) assert_true(str_eq((s), STR(lit)))

static const char INV[] =
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "v: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKa1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa0\r\n"
    "Max-Forwards: 10\r\n"
    "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    "Route: <sip:p3.example.com;lr>\r\n"
    "Record-Route: <sip:p0.example.com;lr>\r\n"
    "From: \"Alice\" <sip:alice@example.com>;tag=f1\r\n"
    "To:   <sip:bob@example.com>\r\n"
    "Call-ID: call-1@h\r\n"
    "CSeq: 20 INVITE\r\n"
    "Subject: folded\r\n and odd\r\n"
    "X-Custom: keep me\r\n"
    "User-Agent: test/1\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "body";

struct pm {
    struct guarded g;
    struct sip_hdr h[64];
    struct sip_msg m;
};

static void parse_into(struct pm *p, const char *b, size_t n)
{
    struct sip_limits lim = SIP_LIMITS_DEFAULT;
    p->g = guard_copy(b, n);
    sip_msg_init(&p->m, p->h, 64);
    ssize_t rc = sip_msg_parse(&p->m, p->g.p, p->g.len, &lim, SIP_PARSE_DATAGRAM);
    if (rc <= 0)
        fail_msg("parse: %s\n%.*s", p->m.err.reason, (int)n, b);
}

static bool contains(const struct buf *b, const char *needle)
{
    return memmem(b->data, b->len, needle, strlen(needle)) != NULL;
}

static void t_respond(void **st)
{
    struct pm req, res;
    parse_into(&req, INV, sizeof(INV) - 1);
    struct buf b;
    buf_init(&b, 4096);
    const struct sip_hdr_add extra[] = { { STR("Contact"), STR("<sip:bob@192.0.2.20>") } };
    assert_int_equal(sip_msg_respond(&req.m, 180, STR_NULL, STR("t9"), extra, 1, STR_NULL,
                                     STR_NULL, &b),
                     0);
    parse_into(&res, (const char *)b.data, b.len);
    assert_int_equal(res.m.status, 180);
    STREQ(res.m.reason, "Ringing");
    assert_int_equal(res.m.nvia, 2);
    STREQ(res.m.via.branch, "z9hG4bKa1"); /* order kept */
    STREQ(res.m.to.tag, "t9");
    STREQ(res.m.from.tag, "f1");
    STREQ(res.m.call_id, "call-1@h");
    assert_int_equal(res.m.cseq.num, 20);
    assert_int_equal(res.m.cseq.method, SIP_M_INVITE);
    assert_non_null(sip_msg_hdr(&res.m, SIP_H_RECORD_ROUTE));
    assert_non_null(sip_msg_hdr(&res.m, SIP_H_CONTACT));
    assert_null(sip_msg_hdr(&res.m, SIP_H_ROUTE));
    assert_int_equal(res.m.content_length, 0);
    assert_true(contains(&b, "v: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKa1\r\n"));
    guard_free(&res.g);

    /* 100 Trying: no To-tag; 404 with a body and a reason of our own */
    buf_reset(&b);
    assert_int_equal(sip_msg_respond(&req.m, 100, STR_NULL, STR("t9"), NULL, 0, STR_NULL,
                                     STR_NULL, &b),
                     0);
    parse_into(&res, (const char *)b.data, b.len);
    assert_int_equal(res.m.to.tag.len, 0);
    assert_null(sip_msg_hdr(&res.m, SIP_H_RECORD_ROUTE));
    guard_free(&res.g);
    buf_reset(&b);
    assert_int_equal(sip_msg_respond(&req.m, 400, STR("CSeq method X does not match"),
                                     STR("t9"), NULL, 0, STR("text/plain"), STR("why"), &b),
                     0);
    parse_into(&res, (const char *)b.data, b.len);
    STREQ(res.m.reason, "CSeq method X does not match");
    STREQ(res.m.body, "why");
    STREQ(res.m.content_type, "text/plain");
    guard_free(&res.g);

    /* bad arguments and a full buffer */
    assert_int_equal(sip_msg_respond(&req.m, 99, STR_NULL, STR_NULL, NULL, 0, STR_NULL, STR_NULL,
                                     &b),
                     -EINVAL);
    assert_int_equal(sip_msg_respond(&req.m, 200, STR("a\r\nb"), STR_NULL, NULL, 0, STR_NULL,
                                     STR_NULL, &b),
                     -EINVAL);
    struct buf small;
    buf_init(&small, 64);
    assert_int_equal(sip_msg_respond(&req.m, 200, STR_NULL, STR_NULL, NULL, 0, STR_NULL,
                                     STR_NULL, &small),
                     -ENOBUFS);
    buf_free(&small);
    buf_free(&b);
    guard_free(&req.g);
}

static void t_forward(void **st)
{
    struct pm req, fw;
    parse_into(&req, INV, sizeof(INV) - 1);
    const struct sip_hdr_edit edits[] = {
        { SIP_EDIT_REMOVE, SIP_H_USER_AGENT, STR_NULL, STR_NULL },
        { SIP_EDIT_REPLACE, SIP_H_SUBJECT, STR_NULL, STR("replaced") },
        { SIP_EDIT_ADD, SIP_H_OTHER, STR("X-Added"), STR("yes") },
        { SIP_EDIT_ADD_TOP, SIP_H_OTHER, STR("X-Top"), STR("first") },
        { SIP_EDIT_REMOVE, SIP_H_OTHER, STR("x-custom"), STR_NULL },
    };
    struct sip_fwd f = {
        .ruri = STR("sip:bob@192.0.2.20:5062"),
        .via = STR("SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1"),
        .record_route = STR("<sip:proxy.example.com;lr>"),
        .pop_route = true,
        .dec_max_forwards = true,
        .edits = edits,
        .nedits = 5,
    };
    struct buf b;
    buf_init(&b, 8192);
    assert_int_equal(sip_msg_forward(&req.m, &f, &b), 0);
    parse_into(&fw, (const char *)b.data, b.len);
    STREQ(fw.m.ruri_raw, "sip:bob@192.0.2.20:5062");
    STREQ(fw.m.via.branch, "z9hG4bKp1");
    assert_int_equal(fw.m.nvia, 3);
    assert_int_equal(fw.m.max_forwards, 9);
    struct sip_value_iter it = { 0 };
    str v;
    assert_true(sip_msg_values_next(&fw.m, SIP_H_ROUTE, &it, &v));
    STREQ(v, "<sip:p2.example.com;lr>");
    assert_true(sip_msg_values_next(&fw.m, SIP_H_ROUTE, &it, &v));
    STREQ(v, "<sip:p3.example.com;lr>");
    assert_false(sip_msg_values_next(&fw.m, SIP_H_ROUTE, &it, &v));
    STREQ(sip_msg_hdr(&fw.m, SIP_H_RECORD_ROUTE)->value, "<sip:proxy.example.com;lr>");
    assert_int_equal(fw.m.hdrs[0].id, SIP_H_VIA);
    assert_null(sip_msg_hdr(&fw.m, SIP_H_USER_AGENT));
    STREQ(sip_msg_hdr(&fw.m, SIP_H_SUBJECT)->value, "replaced");
    STREQ(sip_msg_hdr_by_name(&fw.m, STR("X-Added"))->value, "yes");
    STREQ(sip_msg_hdr_by_name(&fw.m, STR("X-Top"))->value, "first");
    assert_null(sip_msg_hdr_by_name(&fw.m, STR("X-Custom")));
    STREQ(fw.m.body, "body");
    /* untouched lines are byte for byte the original ones */
    assert_true(contains(&b, "To:   <sip:bob@example.com>\r\n"));
    assert_true(contains(&b, "v: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKa1\r\n"
                             "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa0\r\n"));
    guard_free(&fw.g);

    /* no edits: byte-identical except what must change */
    struct sip_fwd none = { 0 };
    buf_reset(&b);
    assert_int_equal(sip_msg_forward(&req.m, &none, &b), 0);
    assert_int_equal(b.len, sizeof(INV) - 1);
    assert_memory_equal(b.data, INV, b.len);

    /* Max-Forwards 0 cannot be forwarded; CR/LF in a value is refused */
    struct pm z;
    const char *zmf = "OPTIONS sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKz\r\n"
                      "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: z\r\nCSeq: 1 OPTIONS\r\n"
                      "Max-Forwards: 0\r\n\r\n";
    parse_into(&z, zmf, strlen(zmf));
    assert_int_equal(sip_msg_forward(&z.m, &f, &b), -EINVAL);
    struct sip_fwd evil = { .via = STR("x\r\nInjected: 1") };
    assert_int_equal(sip_msg_forward(&req.m, &evil, &b), -EINVAL);
    guard_free(&z.g);
    buf_free(&b);
    guard_free(&req.g);
}

static void t_build(void **st)
{
    const struct sip_hdr_add extra[] = { { STR("Event"), STR("presence") } };
    struct sip_req_parts p = {
        .method = SIP_M_SUBSCRIBE,
        .ruri = STR("sip:bob@example.com"),
        .via = STR("SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKb1"),
        .from = STR("<sip:alice@example.com>;tag=x1"),
        .to = STR("<sip:bob@example.com>"),
        .call_id = STR("sub-1@h"),
        .cseq = 2147483647u,
        .max_forwards = -1,
        .contact = STR("<sip:alice@192.0.2.1>"),
        .extra = extra,
        .nextra = 1,
        .content_type = STR("text/plain"),
        .body = STR("x"),
    };
    struct buf b;
    buf_init(&b, 4096);
    assert_int_equal(sip_msg_build_request(&p, &b), 0);
    struct pm r;
    parse_into(&r, (const char *)b.data, b.len);
    assert_int_equal(r.m.method, SIP_M_SUBSCRIBE);
    assert_int_equal(r.m.cseq.num, 2147483647u);
    assert_int_equal(r.m.max_forwards, 70);
    STREQ(r.m.event, "presence");
    STREQ(r.m.body, "x");
    STREQ(r.m.from.tag, "x1");
    guard_free(&r.g);
    p.method = SIP_M_OTHER;
    p.method_name = STR("BAD METHOD");
    assert_int_equal(sip_msg_build_request(&p, &b), -EINVAL);
    p.method_name = STR("FOO");
    p.call_id = STR_NULL;
    assert_int_equal(sip_msg_build_request(&p, &b), -EINVAL);
    buf_free(&b);
    assert_true(str_eq(sip_status_phrase(486), STR("Busy Here")));
    assert_true(str_eq(sip_status_phrase(499), STR("Client Error")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_respond),
        cmocka_unit_test(t_forward),
        cmocka_unit_test(t_build),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
