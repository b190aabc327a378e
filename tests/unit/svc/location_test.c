/* Unit tests for src/svc/location.c: RFC 3261 §10.3 rules, RFC 5626 matching, caps,
 * expiry with a fake clock, the hook, snapshot/restore, threads, memory per binding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>

#include "failalloc.h"
#include "svc/location.h"

static struct arena *A;

static int setup(void **state)
{
    (void)state;
    return arena_new(&A, 0, 0);
}

static int teardown(void **state)
{
    (void)state;
    arena_free(A);
    return 0;
}

static struct loc_table *mk(uint32_t per_aor, size_t total)
{
    struct loc_table *t = NULL;
    struct loc_params p = {.max_per_aor = per_aor, .max_total = total};
    assert_int_equal(loc_new(&t, &p), 0);
    return t;
}

static struct loc_binding mkb(const char *contact, const char *callid, uint32_t cseq,
                              uint64_t expires, uint16_t q)
{
    return (struct loc_binding){.contact = str_cstr(contact),
                                .call_id = str_cstr(callid),
                                .cseq = cseq,
                                .expires_ms = expires,
                                .q = q};
}

static int reg1(struct loc_table *t, const char *aor, struct loc_binding b, uint64_t now)
{
    return loc_update(t, str_cstr(aor), &b, 1, now, NULL, NULL, NULL);
}

static size_t nbind(struct loc_table *t, const char *aor, uint64_t now, struct loc_binding **v)
{
    struct loc_binding *x;
    size_t n;
    assert_int_equal(loc_lookup(t, str_cstr(aor), now, A, &x, &n), 0);
    if (v)
        *v = x;
    return n;
}

static void test_normalise(void **state)
{
    (void)state;
    char out[LOC_AOR_MAX + 1];
    assert_int_equal(loc_aor_normalise(STR("Alice@Example.COM"), out, sizeof out), 17);
    assert_string_equal(out, "Alice@example.com");
    assert_int_equal(loc_aor_normalise(STR("a@b@EX.org"), out, sizeof out), 10);
    assert_string_equal(out, "a@b@ex.org"); /* the last '@' separates the domain */
    assert_int_equal(loc_aor_normalise(STR("Example.COM"), out, sizeof out), 11);
    assert_string_equal(out, "example.com");
    assert_int_equal(loc_aor_normalise(STR(""), out, sizeof out), -EINVAL);
    assert_int_equal(loc_aor_normalise(STR("@x"), out, sizeof out), -EINVAL);
    assert_int_equal(loc_aor_normalise(STR("x@"), out, sizeof out), -EINVAL);
    char big[LOC_AOR_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(loc_aor_normalise(str_cstr(big), out, sizeof out), -E2BIG);
    assert_int_equal(loc_aor_normalise(STR("a@b"), out, 3), -E2BIG);
}

static void test_contact_key(void **state)
{
    (void)state;
    char k[256];
    assert_true(loc_contact_key(STR("SIP:Alice@Example.COM:5060;Transport=TCP;foo=Bar;lr?X=y"), k,
                                sizeof k) > 0);
    assert_string_equal(k, "sip:Alice@example.com:5060;transport=tcp");
    assert_true(loc_contact_key(STR("sip:a@h;user=phone;ob;transport=udp"), k, sizeof k) > 0);
    assert_string_equal(k, "sip:a@h;transport=udp;user=phone");
    assert_true(loc_contact_key(STR("sips:HOST.example"), k, sizeof k) > 0);
    assert_string_equal(k, "sips:host.example");
    /* user part keeps its case; a port differs from no port */
    char k2[256];
    loc_contact_key(STR("sip:alice@h"), k, sizeof k);
    loc_contact_key(STR("sip:Alice@h"), k2, sizeof k2);
    assert_string_not_equal(k, k2);
    loc_contact_key(STR("sip:alice@h:5060"), k2, sizeof k2);
    assert_string_not_equal(k, k2);
    assert_int_equal(loc_contact_key(STR("nocolon"), k, sizeof k), -EINVAL);
    /* a '?' before the scheme's colon (found by the fuzzer) */
    assert_true(loc_contact_key(STR("!A?m\b:OO"), k, sizeof k) > 0);
    assert_true(loc_contact_key(STR("sip:a@h?x=1;transport=tcp"), k, sizeof k) > 0);
    assert_string_equal(k, "sip:a@h");
    assert_int_equal(loc_contact_key(STR("sip:alice@example.com"), k, 8), -E2BIG);
}

static void test_add_lookup_sorted(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    uint64_t now = 1000;
    struct loc_binding v[3] = {
        mkb("sip:a@10.0.0.1", "c1", 1, 61000, 500),
        mkb("sip:a@10.0.0.2", "c2", 1, 61000, 1000),
        mkb("sip:a@10.0.0.3", "c3", 1, 61000, 500),
    };
    v[1].user_agent = STR("Linphone/5.2");
    v[1].path = STR("<sip:edge.example.com;lr>");
    v[1].flow_id = 77;
    v[1].transport = 1;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&v[1].received;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(5062);
    inet_pton(AF_INET6, "2001:db8::7", &in6->sin6_addr);
    struct sockaddr_in *in = (struct sockaddr_in *)&v[0].received;
    in->sin_family = AF_INET;
    in->sin_port = htons(5060);
    inet_pton(AF_INET, "192.0.2.1", &in->sin_addr);
    struct loc_binding *cur;
    size_t ncur;
    assert_int_equal(loc_update(t, STR("alice@Example.com"), v, 3, now, A, &cur, &ncur), 0);
    assert_int_equal(ncur, 3);
    struct loc_binding *r;
    assert_int_equal(nbind(t, "alice@EXAMPLE.COM", now, &r), 3);   /* domain case-insensitive */
    assert_int_equal(nbind(t, "Alice@example.com", now, NULL), 0); /* user case-sensitive */
    assert_true(str_eq(r[0].contact, STR("sip:a@10.0.0.2")));      /* q desc, stable */
    assert_true(str_eq(r[1].contact, STR("sip:a@10.0.0.1")));
    assert_true(str_eq(r[2].contact, STR("sip:a@10.0.0.3")));
    assert_true(str_eq(r[0].contact_key, r[0].contact));
    assert_true(str_eq(r[0].user_agent, STR("Linphone/5.2")));
    assert_true(str_eq(r[0].path, STR("<sip:edge.example.com;lr>")));
    assert_true(str_eq(r[0].call_id, STR("c2")));
    assert_int_equal(r[0].flow_id, 77);
    assert_int_equal(r[0].transport, 1);
    assert_int_equal(r[0].expires_ms, 61000);
    assert_int_equal(r[0].received.ss_family, AF_INET6);
    assert_memory_equal(&((struct sockaddr_in6 *)&r[0].received)->sin6_addr, &in6->sin6_addr, 16);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&r[0].received)->sin6_port), 5062);
    assert_int_equal(r[1].received.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *)&r[1].received)->sin_addr.s_addr, in->sin_addr.s_addr);
    assert_int_equal(r[2].received.ss_family, AF_UNSPEC);
    /* q above 1000 is clamped */
    assert_int_equal(reg1(t, "bob@example.com", mkb("sip:b@h", "x", 1, 9000, 5000), now), 0);
    assert_int_equal(nbind(t, "bob@example.com", now, &r), 1);
    assert_int_equal(r[0].q, 1000);
    size_t aors;
    assert_int_equal(loc_count(t, &aors), 4);
    assert_int_equal(aors, 2);
    loc_free(t);
}

struct each_ctx {
    struct loc_binding v[8];
    char contact[8][64];
    size_t n;
};

static void each_cb(void *ctx, const struct loc_binding *b)
{
    struct each_ctx *c = ctx;
    assert_true(c->n < 8);
    assert_true(b->contact.len < 64);
    memcpy(c->contact[c->n], b->contact.s, b->contact.len);
    c->contact[c->n][b->contact.len] = '\0';
    c->v[c->n] = *b;
    c->n++;
}

/* loc_lookup_each: the live bindings in registration order, without copies */
static void test_lookup_each(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    struct loc_binding v[3] = {
        mkb("sip:a@10.0.0.1", "c1", 1, 61000, 500),
        mkb("sip:a@10.0.0.2", "c2", 1, 2000, 1000), /* expires first */
        mkb("sip:a@10.0.0.3", "c3", 1, 61000, 700),
    };
    v[2].flow_id = 9;
    v[2].path = STR("<sip:p.example.com;lr>");
    assert_int_equal(loc_update(t, STR("alice@example.com"), v, 3, 1000, NULL, NULL, NULL), 0);
    struct each_ctx c = { .n = 0 };
    assert_int_equal(loc_lookup_each(t, STR("alice@EXAMPLE.com"), 1000, each_cb, &c), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.contact[0], "sip:a@10.0.0.1");
    assert_string_equal(c.contact[1], "sip:a@10.0.0.2");
    assert_string_equal(c.contact[2], "sip:a@10.0.0.3");
    assert_int_equal(c.v[2].flow_id, 9);
    assert_int_equal(c.v[1].q, 1000);
    c.n = 0; /* at 2000 the second has expired */
    assert_int_equal(loc_lookup_each(t, STR("alice@example.com"), 2000, each_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.contact[1], "sip:a@10.0.0.3");
    c.n = 0;
    assert_int_equal(loc_lookup_each(t, STR("nobody@example.com"), 1000, each_cb, &c), 0);
    assert_int_equal(c.n, 0);
    char longaor[LOC_AOR_MAX + 16];
    memset(longaor, 'a', sizeof longaor - 1);
    longaor[sizeof longaor - 1] = '\0';
    assert_true(loc_lookup_each(t, str_cstr(longaor), 1000, each_cb, &c) < 0);
    assert_int_equal(c.n, 0);
    loc_free(t);
}

/* RFC 3261 §10.3 step 7: Call-ID / CSeq ordering. */
static void test_ordering(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    const char *aor = "alice@example.com";
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-1", 10, 5000, 0), 0), 0);
    /* same Call-ID, lower CSeq: rejected (500), nothing changes */
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-1", 9, 9000, 0), 1), LOC_ERR_ORDER);
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-1", 9, 0, 0), 1), LOC_ERR_ORDER);
    struct loc_binding *r;
    assert_int_equal(nbind(t, aor, 1, &r), 1);
    assert_int_equal(r[0].expires_ms, 5000);
    /* the same CSeq again: a retransmission (REGISTER is answered statelessly), done
     * again with the same outcome */
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-1", 10, 5000, 0), 1), 0);
    assert_int_equal(nbind(t, aor, 1, &r), 1);
    assert_int_equal(r[0].expires_ms, 5000);
    /* higher CSeq: refreshed */
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-1", 11, 9000, 0), 1), 0);
    assert_int_equal(nbind(t, aor, 1, &r), 1);
    assert_int_equal(r[0].expires_ms, 9000);
    assert_int_equal(r[0].cseq, 11);
    /* another Call-ID (the phone restarted): any CSeq replaces it */
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-2", 1, 12000, 0), 2), 0);
    assert_int_equal(nbind(t, aor, 2, &r), 1);
    assert_true(str_eq(r[0].call_id, STR("call-2")));
    /* all or nothing: the second contact violates the rule, the first is not added */
    struct loc_binding v[2] = {mkb("sip:new@h", "call-2", 5, 12000, 0),
                               mkb("sip:a@h", "call-2", 0, 12000, 0)};
    assert_int_equal(loc_update(t, str_cstr(aor), v, 2, 3, NULL, NULL, NULL), LOC_ERR_ORDER);
    assert_int_equal(nbind(t, aor, 3, NULL), 1);
    /* removal with a higher CSeq */
    assert_int_equal(reg1(t, aor, mkb("sip:a@h", "call-2", 2, 0, 0), 4), 0);
    assert_int_equal(nbind(t, aor, 4, NULL), 0);
    assert_int_equal(loc_count(t, NULL), 0);
    /* removing what is not there is fine */
    assert_int_equal(reg1(t, aor, mkb("sip:zz@h", "call-2", 3, 0, 0), 4), 0);
    loc_free(t);
}

/* Contacts match by key: the caller's normalised key, else the text byte-exact. */
static void test_contact_match(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    const char *aor = "carol@example.com";
    char k1[128], k2[128];
    loc_contact_key(STR("sip:carol@HOST.example;transport=TCP"), k1, sizeof k1);
    struct loc_binding b = mkb("sip:carol@HOST.example;transport=TCP", "c", 1, 5000, 0);
    b.contact_key = str_cstr(k1);
    assert_int_equal(reg1(t, aor, b, 0), 0);
    loc_contact_key(STR("sip:carol@host.example;transport=tcp;x=1"), k2, sizeof k2);
    struct loc_binding b2 = mkb("sip:carol@host.example;transport=tcp;x=1", "c", 2, 8000, 0);
    b2.contact_key = str_cstr(k2);
    assert_int_equal(reg1(t, aor, b2, 1), 0);
    struct loc_binding *r;
    assert_int_equal(nbind(t, aor, 1, &r), 1); /* refreshed, not added */
    assert_true(str_eq(r[0].contact, STR("sip:carol@host.example;transport=tcp;x=1")));
    assert_true(str_eq(r[0].contact_key, STR("sip:carol@host.example;transport=tcp")));
    /* no key given: byte-exact text */
    assert_int_equal(reg1(t, aor, mkb("sip:carol@HOST.example", "c", 3, 8000, 0), 1), 0);
    assert_int_equal(reg1(t, aor, mkb("sip:carol@host.example", "c", 4, 8000, 0), 1), 0);
    assert_int_equal(nbind(t, aor, 1, NULL), 3);
    /* later entries of one request win over earlier ones with the same key */
    struct loc_binding v[2] = {mkb("sip:d@h", "c", 5, 8000, 0), mkb("sip:d@h", "c", 5, 0, 0)};
    assert_int_equal(loc_update(t, str_cstr(aor), v, 2, 1, NULL, NULL, NULL), 0);
    assert_int_equal(nbind(t, aor, 1, NULL), 3);
    loc_free(t);
}

/* RFC 5626 §6: (+sip.instance, reg-id) identifies the binding; a new flow replaces it. */
static void test_outbound(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    const char *aor = "dave@example.com";
    str inst = STR("<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>");
    struct loc_binding b = mkb("sip:dave@192.0.2.1:5060;ob", "c1", 1, 5000, 0);
    b.instance = inst;
    b.reg_id = 1;
    b.flow_id = 100;
    assert_int_equal(reg1(t, aor, b, 0), 0);
    /* the same device over a new connection (another port, new Call-ID) */
    struct loc_binding b2 = mkb("sip:dave@192.0.2.1:40000;ob", "c2", 1, 6000, 0);
    b2.instance = inst;
    b2.reg_id = 1;
    b2.flow_id = 200;
    assert_int_equal(reg1(t, aor, b2, 1), 0);
    struct loc_binding *r;
    assert_int_equal(nbind(t, aor, 1, &r), 1);
    assert_int_equal(r[0].flow_id, 200);
    assert_true(str_eq(r[0].instance, inst));
    assert_int_equal(r[0].reg_id, 1);
    /* reg-id 2 of the same instance: a second flow, a second binding */
    b2.reg_id = 2;
    b2.flow_id = 300;
    assert_int_equal(reg1(t, aor, b2, 1), 0);
    assert_int_equal(nbind(t, aor, 1, NULL), 2);
    /* ordering applies to outbound bindings too */
    b2.cseq = 0;
    assert_int_equal(reg1(t, aor, b2, 1), LOC_ERR_ORDER);
    /* removal by (instance, reg-id) */
    b2.cseq = 2;
    b2.expires_ms = 0;
    b2.contact = STR("sip:whatever");
    assert_int_equal(reg1(t, aor, b2, 2), 0);
    assert_int_equal(nbind(t, aor, 2, &r), 1);
    assert_int_equal(r[0].flow_id, 200);
    loc_free(t);
}

/*
 * A plain contact and an outbound binding with the same URI text are two bindings: the
 * plain one is named by its URI, the outbound one only by (instance, reg-id). Found by
 * the fuzzer: a plain refresh used to count both as "replaced" when checking the per-AOR
 * cap but replace only one, so the AOR grew past its cap; and a plain REGISTER could
 * take over an outbound device's binding.
 */
static void test_outbound_and_plain_same_uri(void **state)
{
    (void)state;
    struct loc_table *t = mk(2, 0);
    const char *aor = "erin@example.com";
    const char *nat = "sip:erin@198.51.100.4:5060"; /* both UAs appear behind this address */
    str inst = STR("<urn:uuid:00000000-0000-1000-8000-00AA00BB00CC>");
    struct loc_binding *r;

    /* a plain UA registers */
    assert_int_equal(reg1(t, aor, mkb(nat, "p", 1, 9000, 0), 0), 0);
    /* an outbound device registers from elsewhere, then its new flow shows the same URI */
    struct loc_binding d = mkb("sip:erin@203.0.113.9:5060;ob", "d", 1, 9000, 0);
    d.instance = inst;
    d.reg_id = 1;
    d.flow_id = 7;
    assert_int_equal(reg1(t, aor, d, 0), 0);
    d.contact = str_cstr(nat);
    d.cseq = 2;
    d.flow_id = 8;
    assert_int_equal(reg1(t, aor, d, 0), 0);
    assert_int_equal(nbind(t, aor, 0, NULL), 2); /* at the cap */

    /* the plain UA refreshes its contact and adds a second one: that would be three */
    struct loc_binding v[2] = {mkb(nat, "p", 2, 9000, 0),
                               mkb("sip:erin@198.51.100.5:5060", "p", 2, 9000, 0)};
    assert_int_equal(loc_update(t, str_cstr(aor), v, 2, 0, NULL, NULL, NULL), LOC_ERR_AOR_FULL);
    assert_int_equal(nbind(t, aor, 0, NULL), 2);
    assert_int_equal(loc_count(t, NULL), 2);

    /* the plain UA unregisters its contact: the outbound binding stays */
    assert_int_equal(reg1(t, aor, mkb(nat, "p", 3, 0, 0), 0), 0);
    assert_int_equal(nbind(t, aor, 0, &r), 1);
    assert_true(str_eq(r[0].instance, inst));
    assert_int_equal(r[0].flow_id, 8);

    /* it registers again: a binding of its own, not a takeover of the device's */
    assert_int_equal(reg1(t, aor, mkb(nat, "p", 4, 9000, 500), 0), 0);
    assert_int_equal(nbind(t, aor, 0, &r), 2);
    assert_int_equal(r[0].q, 500);
    assert_int_equal(r[0].instance.len, 0);
    assert_true(str_eq(r[1].instance, inst));
    assert_int_equal(r[1].flow_id, 8);

    /* and the device unregisters by (instance, reg-id), leaving the plain UA */
    d.cseq = 3;
    d.expires_ms = 0;
    assert_int_equal(reg1(t, aor, d, 0), 0);
    assert_int_equal(nbind(t, aor, 0, &r), 1);
    assert_int_equal(r[0].instance.len, 0);
    assert_int_equal(r[0].q, 500);
    loc_free(t);
}

static void test_caps_and_limits(void **state)
{
    (void)state;
    struct loc_table *t = mk(3, 5);
    char c[32];
    for (int i = 0; i < 3; i++) {
        snprintf(c, sizeof c, "sip:e@10.0.0.%d", i);
        assert_int_equal(reg1(t, "e@x", mkb(c, "c", (uint32_t)i + 1, 5000, 0), 0), 0);
    }
    assert_int_equal(reg1(t, "e@x", mkb("sip:e@10.0.0.9", "c", 10, 5000, 0), 0), LOC_ERR_AOR_FULL);
    /* a refresh at the cap is fine; so is a replacement in one request */
    assert_int_equal(reg1(t, "e@x", mkb("sip:e@10.0.0.0", "c", 11, 6000, 0), 0), 0);
    struct loc_binding v[2] = {mkb("sip:e@10.0.0.1", "c", 12, 0, 0),
                               mkb("sip:e@10.0.0.9", "c", 12, 6000, 0)};
    assert_int_equal(loc_update(t, STR("e@x"), v, 2, 0, NULL, NULL, NULL), 0);
    assert_int_equal(nbind(t, "e@x", 0, NULL), 3);
    /* total cap 5 */
    assert_int_equal(reg1(t, "f@x", mkb("sip:f@1", "c", 1, 5000, 0), 0), 0);
    assert_int_equal(reg1(t, "f@x", mkb("sip:f@2", "c", 2, 5000, 0), 0), 0);
    assert_int_equal(reg1(t, "g@x", mkb("sip:g@1", "c", 1, 5000, 0), 0), LOC_ERR_FULL);
    assert_int_equal(nbind(t, "g@x", 0, NULL), 0);
    assert_int_equal(loc_count(t, NULL), 5);
    /* expiry frees room */
    assert_int_equal(loc_remove_all(t, STR("f@x"), STR_NULL, 0, 0), 2);
    assert_int_equal(reg1(t, "g@x", mkb("sip:g@1", "c", 1, 5000, 0), 0), 0);
    /* bad input */
    assert_int_equal(reg1(t, "", mkb("sip:g@1", "c", 1, 5000, 0), 0), -EINVAL);
    assert_int_equal(reg1(t, "g@x", mkb("", "c", 2, 5000, 0), 0), -EINVAL);
    static char huge[LOC_FIELD_MAX + 2];
    memset(huge, 'x', LOC_FIELD_MAX + 1);
    struct loc_binding h = mkb("sip:g@2", "c", 3, 5000, 0);
    h.user_agent = str_cstr(huge);
    assert_int_equal(reg1(t, "g@x", h, 0), -E2BIG);
    struct loc_binding many[LOC_BATCH_MAX + 1];
    for (int i = 0; i <= LOC_BATCH_MAX; i++)
        many[i] = mkb("sip:g@1", "c", 9, 5000, 0);
    assert_int_equal(loc_update(t, STR("g@x"), many, LOC_BATCH_MAX + 1, 0, NULL, NULL, NULL),
                     -E2BIG);
    assert_int_equal(loc_count(t, NULL), 4);
    /* an AOR whose bindings all expired, then a refused request: the AOR does not linger */
    assert_int_equal(loc_remove_all(t, STR("g@x"), STR_NULL, 0, 0), 1);
    assert_int_equal(reg1(t, "h@x", mkb("sip:h@1", "c", 1, 100, 0), 0), 0);
    struct loc_binding four[4] = {mkb("sip:h@1", "c", 2, 5000, 0), mkb("sip:h@2", "c", 2, 5000, 0),
                                  mkb("sip:h@3", "c", 2, 5000, 0), mkb("sip:h@4", "c", 2, 5000, 0)};
    assert_int_equal(loc_update(t, STR("h@x"), four, 4, 200, NULL, NULL, NULL), LOC_ERR_AOR_FULL);
    size_t aors;
    assert_int_equal(loc_count(t, &aors), 3);
    assert_int_equal(aors, 1);
    loc_free(t);
}

static void test_remove_all(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    assert_int_equal(reg1(t, "h@x", mkb("sip:h@1", "call-a", 5, 5000, 0), 0), 0);
    assert_int_equal(reg1(t, "h@x", mkb("sip:h@2", "call-b", 5, 5000, 0), 0), 0);
    /* "*" with the Call-ID of one binding and a lower CSeq: fails, nothing removed */
    assert_int_equal(loc_remove_all(t, STR("h@x"), STR("call-a"), 4, 1), LOC_ERR_ORDER);
    assert_int_equal(nbind(t, "h@x", 1, NULL), 2);
    assert_int_equal(loc_remove_all(t, STR("h@x"), STR("call-a"), 6, 1), 2);
    assert_int_equal(nbind(t, "h@x", 1, NULL), 0);
    assert_int_equal(loc_remove_all(t, STR("h@x"), STR("call-a"), 7, 1), 0);
    size_t aors;
    assert_int_equal(loc_count(t, &aors), 0);
    assert_int_equal(aors, 0);
    loc_free(t);
}

struct hook_log {
    struct loc_table *t;
    int added, updated, removed, expired;
    size_t last_remaining;
    size_t seen_in_lookup;
    char last_contact[64];
};

static void hook(void *ctx, str aor, enum loc_event ev, const struct loc_binding *b,
                 size_t remaining)
{
    struct hook_log *h = ctx;
    switch (ev) {
    case LOC_ADDED:
        h->added++;
        break;
    case LOC_UPDATED:
        h->updated++;
        break;
    case LOC_REMOVED:
        h->removed++;
        break;
    case LOC_EXPIRED:
        h->expired++;
        break;
    }
    h->last_remaining = remaining;
    str_copy(h->last_contact, sizeof h->last_contact, b->contact);
    /* the shard is not locked during the hook: a lookup from here must not deadlock */
    struct loc_binding *v;
    size_t n;
    if (h->t && loc_lookup(h->t, aor, 0, A, &v, &n) == 0)
        h->seen_in_lookup = n;
}

static void test_hook_and_expiry(void **state)
{
    (void)state;
    struct hook_log h = {0};
    struct loc_params p = {.hook = hook, .hook_ctx = &h};
    struct loc_table *t;
    assert_int_equal(loc_new(&t, &p), 0);
    h.t = t;
    assert_int_equal(reg1(t, "i@x", mkb("sip:i@1", "c", 1, 10000, 0), 0), 0);
    assert_int_equal(h.added, 1);
    assert_int_equal(h.last_remaining, 1);
    assert_int_equal(h.seen_in_lookup, 1);
    assert_string_equal(h.last_contact, "sip:i@1");
    assert_int_equal(reg1(t, "i@x", mkb("sip:i@1", "c", 2, 20000, 0), 0), 0);
    assert_int_equal(h.updated, 1);
    assert_int_equal(reg1(t, "i@x", mkb("sip:i@2", "c", 3, 30000, 0), 0), 0);
    assert_int_equal(reg1(t, "j@x", mkb("sip:j@1", "c", 1, 15000, 0), 0), 0);
    assert_int_equal(h.added, 3);
    /* a lookup after expiry time, before the sweep, hides expired bindings */
    assert_int_equal(nbind(t, "i@x", 25000, NULL), 1);
    /* the sweep at 15000: j's binding goes (at its expiry instant), i's stay */
    struct loc_expired *ex;
    size_t nex;
    assert_int_equal(loc_expire(t, 14999, 0, A, &ex, &nex), 0);
    assert_int_equal(nex, 0);
    assert_int_equal(loc_expire(t, 15000, 0, A, &ex, &nex), 1);
    assert_int_equal(nex, 1);
    assert_true(str_eq(ex[0].aor, STR("j@x")));
    assert_true(str_eq(ex[0].b.contact, STR("sip:j@1")));
    assert_int_equal(ex[0].remaining, 0);
    assert_int_equal(h.expired, 1);
    assert_int_equal(h.last_remaining, 0);
    size_t aors;
    assert_int_equal(loc_count(t, &aors), 2);
    assert_int_equal(aors, 1);
    /* 20000: one of i's two goes, remaining 1; max bounds the work */
    assert_int_equal(loc_expire(t, 20000, 0, NULL, NULL, NULL), 1);
    assert_int_equal(h.expired, 2);
    assert_int_equal(h.last_remaining, 1);
    /* an update finds an expired binding and reports it expired */
    assert_int_equal(reg1(t, "i@x", mkb("sip:i@3", "c", 9, 90000, 0), 31000), 0);
    assert_int_equal(h.expired, 3);
    assert_int_equal(loc_remove_all(t, STR("i@x"), STR_NULL, 0, 31000), 1);
    assert_int_equal(h.removed, 1);
    assert_int_equal(loc_count(t, &aors), 0);
    assert_int_equal(aors, 0);
    loc_free(t);
}

static void test_expire_max(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0);
    char aor[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(aor, sizeof aor, "u%d@x", i);
        assert_int_equal(reg1(t, aor, mkb("sip:u@h", "c", 1, 1000 + (uint64_t)i, 0), 0), 0);
    }
    /* 500 are due at 1499; max takes 300 of them, the next sweep the other 200 */
    assert_int_equal(loc_expire(t, 1499, 300, NULL, NULL, NULL), 300);
    assert_int_equal(loc_count(t, NULL), 700);
    assert_int_equal(loc_expire(t, 1499, 0, NULL, NULL, NULL), 200);
    assert_int_equal(loc_expire(t, 1499, 0, NULL, NULL, NULL), 0);
    assert_int_equal(loc_expire(t, 5000, 0, NULL, NULL, NULL), 500);
    size_t aors;
    assert_int_equal(loc_count(t, &aors), 0);
    assert_int_equal(aors, 0);
    loc_free(t);
}

static void test_snapshot_restore(void **state)
{
    (void)state;
    struct loc_table *t = mk(0, 0), *t2 = mk(0, 0);
    char aor[32], c[32];
    for (int i = 0; i < 500; i++) {
        snprintf(aor, sizeof aor, "user%d@Example.com", i);
        for (int j = 0; j < 1 + i % 3; j++) {
            snprintf(c, sizeof c, "sip:user%d@10.0.%d.1", i, j);
            struct loc_binding b = mkb(c, "cid", 1, 100000 + (uint64_t)i, (uint16_t)(j * 100));
            b.flow_id = 5;
            b.user_agent = STR("ua");
            assert_int_equal(reg1(t, aor, b, 0), 0);
        }
    }
    /* one already expired at snapshot time */
    assert_int_equal(reg1(t, "old@x", mkb("sip:old@h", "c", 1, 50, 0), 0), 0);
    size_t total = loc_count(t, NULL);
    struct loc_iter *it;
    assert_int_equal(loc_iter_new(&it, t, 100), 0);
    str a;
    struct loc_binding b;
    size_t seen = 0;
    int rc;
    while ((rc = loc_iter_next(it, &a, &b)) == 1) {
        seen++;
        b.flow_id = 0; /* flows do not survive a restart */
        assert_int_equal(loc_restore(t2, a, &b, 100), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(loc_iter_next(it, &a, &b), 0);
    loc_iter_free(it);
    assert_int_equal(seen, total - 1);
    assert_int_equal(loc_count(t2, NULL), total - 1);
    struct loc_binding *r;
    assert_int_equal(nbind(t2, "user8@example.com", 100, &r), 3);
    assert_true(str_eq(r[0].contact, STR("sip:user8@10.0.2.1")));
    assert_int_equal(r[0].q, 200);
    assert_int_equal(r[0].flow_id, 0);
    assert_true(str_eq(r[0].user_agent, STR("ua")));
    /* restoring twice replaces, does not duplicate; expired ones are skipped */
    assert_int_equal(loc_restore(t2, STR("user8@example.com"), &r[0], 100), 0);
    assert_int_equal(nbind(t2, "user8@example.com", 100, NULL), 3);
    assert_int_equal(loc_restore(t2, STR("z@x"), &r[0], r[0].expires_ms), 0);
    assert_int_equal(nbind(t2, "z@x", 0, NULL), 0);
    loc_free(t);
    loc_free(t2);
}

/* ---- threads ---- */

struct stress {
    struct loc_table *t;
    unsigned seed;
    int id;
    long ops;
};

static uint32_t next_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void *stress_run(void *arg)
{
    struct stress *w = arg;
    struct arena *a;
    if (arena_new(&a, 0, 0) < 0)
        return NULL;
    char aor[32], c[32], cid[32];
    for (int i = 0; i < 20000; i++) {
        uint32_t r = next_rand(&w->seed);
        uint64_t now = (uint64_t)i;
        snprintf(aor, sizeof aor, "u%u@example.com", r % 100);
        snprintf(c, sizeof c, "sip:u@10.0.0.%u", (r >> 8) % 4);
        snprintf(cid, sizeof cid, "t%d", w->id);
        struct loc_binding b = mkb(c, cid, (uint32_t)i + 1, now + (r >> 12) % 500, 0);
        struct loc_binding *v;
        size_t n;
        switch ((r >> 4) % 8) {
        case 0:
        case 1:
        case 2:
            loc_update(w->t, str_cstr(aor), &b, 1, now, a, &v, &n);
            break;
        case 3:
            b.expires_ms = 0;
            loc_update(w->t, str_cstr(aor), &b, 1, now, NULL, NULL, NULL);
            break;
        case 4:
        case 5:
            loc_lookup(w->t, str_cstr(aor), now, a, &v, &n);
            for (size_t k = 1; k < n; k++)
                if (v[k - 1].q < v[k].q)
                    abort();
            break;
        case 6:
            if (r % 50 == 0)
                loc_remove_all(w->t, str_cstr(aor), STR_NULL, 0, now);
            else
                loc_expire(w->t, now, 50, a, NULL, NULL);
            break;
        default:
            loc_restore(w->t, str_cstr(aor), &b, now);
            break;
        }
        w->ops++;
        if (i % 256 == 0)
            arena_reset(a);
    }
    arena_free(a);
    return NULL;
}

static int hook_calls;
static void count_hook(void *ctx, str aor, enum loc_event ev, const struct loc_binding *b,
                       size_t remaining)
{
    (void)aor;
    (void)ev;
    (void)remaining;
    (void)ctx;
    if (b->contact.len == 0)
        abort();
    __atomic_fetch_add(&hook_calls, 1, __ATOMIC_RELAXED);
}

static void test_threads(void **state)
{
    (void)state;
    struct loc_table *t;
    struct loc_params p = {.max_per_aor = 3, .max_total = 250, .hook = count_hook};
    assert_int_equal(loc_new(&t, &p), 0);
    enum { N = 4 };
    pthread_t th[N];
    struct stress w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct stress){t, (unsigned)i * 7919u + 1, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, stress_run, &w[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    /* the counters agree with what an iteration finds, and the caps held */
    size_t aors, total = loc_count(t, &aors);
    assert_true(total <= 250);
    struct loc_iter *it;
    assert_int_equal(loc_iter_new(&it, t, 0), 0);
    str a;
    struct loc_binding b;
    size_t seen = 0;
    while (loc_iter_next(it, &a, &b) == 1)
        seen++;
    loc_iter_free(it);
    assert_int_equal(seen, total);
    for (int i = 0; i < 100; i++) {
        char aor[32];
        snprintf(aor, sizeof aor, "u%d@example.com", i);
        assert_true(nbind(t, aor, 0, NULL) <= 3);
    }
    assert_true(hook_calls > 0);
    /* everything expires at the end; the total counter returns to zero */
    loc_expire(t, UINT64_MAX - 1, 0, NULL, NULL, NULL);
    assert_int_equal(loc_count(t, &aors), 0);
    assert_int_equal(aors, 0);
    /* the atomic total agrees too: 250 new bindings fit again */
    char aor[32];
    for (int i = 0; i < 250; i++) {
        snprintf(aor, sizeof aor, "v%d@x", i);
        assert_int_equal(reg1(t, aor, mkb("sip:v@h", "c", 1, 5000, 0), 0), 0);
    }
    assert_int_equal(reg1(t, "w@x", mkb("sip:v@h", "c", 1, 5000, 0), 0), LOC_ERR_FULL);
    loc_free(t);
}

/*
 * Memory per registered user: 100,000 AORs with one binding each, with strings of a
 * typical softphone (contact with transport, 36-byte Call-ID, +sip.instance, user agent,
 * received address), measured as the heap growth (glibc mallinfo2, so the malloc
 * overhead is counted: the hash buckets) plus what the table's record pool mapped.
 * Printed for the benchmark report; asserted below 400 bytes.
 */
static void test_memory_per_binding(void **state)
{
    (void)state;
    enum { USERS = 100000 };
    struct mallinfo2 before = mallinfo2();
    struct loc_table *t = mk(0, 0);
    char aor[64], c[96], cid[48], inst[64];
    for (int i = 0; i < USERS; i++) {
        snprintf(aor, sizeof aor, "user%06d@example.com", i);
        snprintf(c, sizeof c, "sip:user%06d@192.168.%d.%d:5060;transport=udp", i, (i >> 8) & 255,
                 i & 255);
        snprintf(cid, sizeof cid, "%08x-1b2c-4d5e-8f90-%012d", (unsigned)i * 2654435761u, i);
        snprintf(inst, sizeof inst, "<urn:uuid:%08x-0000-1000-8000-%012d>", (unsigned)i, i);
        struct loc_binding b = mkb(c, cid, 1, 3600000, 1000);
        b.instance = str_cstr(inst);
        b.reg_id = 1;
        b.user_agent = STR("Linphone/5.2.0 (belle-sip/5.2.0)");
        b.flow_id = (uint64_t)i + 1;
        struct sockaddr_in *in = (struct sockaddr_in *)&b.received;
        in->sin_family = AF_INET;
        in->sin_port = htons(5060);
        in->sin_addr.s_addr = htonl(0xc0a80000u | (uint32_t)i);
        assert_int_equal(reg1(t, aor, b, 0), 0);
    }
    struct mallinfo2 after = mallinfo2();
    size_t strings = strlen("user000000@example.com") + strlen(c) + strlen(cid) + strlen(inst) +
                     strlen("Linphone/5.2.0 (belle-sip/5.2.0)");
    if (after.uordblks > before.uordblks) {
        size_t per = (after.uordblks - before.uordblks + loc_pool_bytes(t)) / USERS;
        printf("location: %zu bytes per registered user (one binding; %zu bytes of strings)\n", per,
               strings);
        assert_true(per < 400);
    } else {
        printf("location: heap growth not measurable under this allocator (sanitizer build)\n");
    }
    loc_free(t);
}

/* Every allocation of loc_new / loc_update / the iterator / loc_expire failing in turn:
 * a clean -ENOMEM (or -ENOBUFS for the caller's copy) and a consistent table. */
static void test_alloc_failures(void **state)
{
    (void)state;
    if (!FAILALLOC_ACTIVE)
        skip();
    struct hook_log h = {0};
    struct loc_params p = {.hook = hook, .hook_ctx = &h};
    struct loc_table *t = NULL;
    for (long k = 0;; k++) {
        failalloc_arm(k);
        int rc = loc_new(&t, &p);
        failalloc_disarm();
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_null(t);
    }
    struct loc_binding v[3] = {mkb("sip:a@1", "c", 1, 5000, 0), mkb("sip:a@2", "c", 1, 5000, 0),
                               mkb("sip:a@3", "c", 1, 5000, 0)};
    int done = 0;
    for (long k = 0; !done; k++) {
        struct arena *a;
        assert_int_equal(arena_new(&a, 0, 0), 0);
        struct loc_binding *cur;
        size_t ncur;
        failalloc_arm(k);
        int rc = loc_update(t, STR("k@x"), v, 3, 0, a, &cur, &ncur);
        failalloc_disarm();
        if (rc == 0) {
            assert_int_equal(ncur, 3);
            done = 1;
        } else if (rc == -ENOBUFS) {
            assert_null(cur); /* the change stands, only the copy failed */
            assert_int_equal(loc_remove_all(t, STR("k@x"), STR_NULL, 0, 0), 3);
        } else {
            assert_int_equal(rc, -ENOMEM);
            assert_int_equal(loc_count(t, NULL), 0);
        }
        arena_free(a);
    }
    for (long k = 0;; k++) {
        struct loc_iter *it = NULL;
        str aor;
        struct loc_binding b;
        failalloc_arm(k);
        int rc = loc_iter_new(&it, t, 0);
        if (rc == 0)
            rc = loc_iter_next(it, &aor, &b);
        failalloc_disarm();
        loc_iter_free(it);
        if (rc == 1)
            break;
        assert_int_equal(rc, -ENOMEM);
    }
    failalloc_arm(0);
    ssize_t ex = loc_expire(t, 6000, 0, NULL, NULL, NULL); /* the hook's arena: none */
    failalloc_disarm();
    assert_int_equal(ex, -ENOMEM);
    assert_int_equal(loc_count(t, NULL), 3);
    loc_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),          cmocka_unit_test(test_contact_key),
        cmocka_unit_test(test_add_lookup_sorted),  cmocka_unit_test(test_lookup_each),
        cmocka_unit_test(test_ordering),
        cmocka_unit_test(test_contact_match),      cmocka_unit_test(test_outbound),
        cmocka_unit_test(test_outbound_and_plain_same_uri),
        cmocka_unit_test(test_caps_and_limits),    cmocka_unit_test(test_remove_all),
        cmocka_unit_test(test_hook_and_expiry),    cmocka_unit_test(test_expire_max),
        cmocka_unit_test(test_snapshot_restore),   cmocka_unit_test(test_threads),
        cmocka_unit_test(test_memory_per_binding), cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
