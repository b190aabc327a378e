/* URIs: parsing of sip/sips/tel/opaque and equality by RFC 3261 §19.1.4 (its examples). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sip/guard.h"
#include "sip/msg.h"

/* parses text placed against a guard page; the guarded copy stays mapped (tests only) */
static int parse(const char *text, struct sip_uri *u)
{
    struct guarded g = guard_copy(text, strlen(text));
    return sip_uri_parse(str_make(g.p, g.len), u);
}

#define STREQ(s, lit) assert_true(str_eq((s), STR(lit)))

static void t_sip_parts(void **st)
{
    struct sip_uri u;
    assert_int_equal(parse("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr;maddr=10.0.0.1"
                           ";ttl=5;user=phone;method=INVITE;ob;gr=urn:uuid:1?Subject=hi&X=y",
                           &u),
                     0);
    assert_int_equal(u.scheme, SIP_URI_SIPS);
    STREQ(u.user, "alice");
    STREQ(u.password, "secret");
    STREQ(u.host, "[2001:db8::1]");
    assert_int_equal(u.host_type, SIP_HOST_IPV6);
    assert_true(u.has_port);
    assert_int_equal(u.port, 5061);
    STREQ(u.transport, "tcp");
    assert_true(u.lr && u.ob && u.gr);
    STREQ(u.gr_value, "urn:uuid:1");
    STREQ(u.maddr, "10.0.0.1");
    STREQ(u.ttl, "5");
    STREQ(u.user_param, "phone");
    STREQ(u.method, "INVITE");
    STREQ(u.headers, "Subject=hi&X=y");
    str v;
    assert_int_equal(sip_uri_param(&u, STR("TRANSPORT"), &v), 0);
    STREQ(v, "tcp");
    assert_int_equal(sip_uri_param(&u, STR("nope"), &v), -ENOENT);

    assert_int_equal(parse("sip:192.0.2.4", &u), 0);
    assert_int_equal(u.host_type, SIP_HOST_IPV4);
    assert_int_equal(u.user.len, 0);
    assert_false(u.has_port);
    assert_int_equal(parse("sip:host.example.com.:0", &u), 0);
    assert_true(u.has_port);
    assert_int_equal(u.port, 0);
}

static void t_tel_other(void **st)
{
    struct sip_uri u, w;
    assert_int_equal(parse("tel:+1-201-555-0123;phone-context=example.com", &u), 0);
    assert_int_equal(u.scheme, SIP_URI_TEL);
    STREQ(u.user, "+1-201-555-0123");
    assert_int_equal(parse("tel:+1.201.555.0123;Phone-Context=EXAMPLE.com", &w), 0);
    assert_true(sip_uri_eq(&u, &w));
    assert_int_equal(parse("tel:+12015550124;phone-context=example.com", &w), 0);
    assert_false(sip_uri_eq(&u, &w));
    assert_int_equal(parse("urn:service:sos", &u), 0);
    assert_int_equal(u.scheme, SIP_URI_OTHER);
    STREQ(u.scheme_s, "urn");
    STREQ(u.opaque, "service:sos");
}

static void t_invalid(void **st)
{
    const char *bad[] = { "",          "sip:",          "sip:@host",      "sip:host:99999",
                          "sip:a b@c", "sip:[::1",      "sip:a%G1@h",     "sip:a%4",
                          "1sip:x",    "sip:host;",     "sip:host;=x",    "nocolon",
                          "tel:",      "tel:12z;x",     "sip:h:5060x",    "urn:",
                          "sip:a@b@c", "sip:host?a<b",  "sip:-host" };
    struct sip_uri u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(bad[i], &u) == 0)
            fail_msg("accepted '%s'", bad[i]);
}

static bool eq(const char *a, const char *b)
{
    struct sip_uri x, y;
    assert_int_equal(parse(a, &x), 0);
    assert_int_equal(parse(b, &y), 0);
    bool r = sip_uri_eq(&x, &y);
    assert_int_equal(r, sip_uri_eq(&y, &x)); /* symmetric */
    return r;
}

/* RFC 3261 §19.1.4 */
static void t_equality(void **st)
{
    assert_true(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
    assert_true(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
    assert_true(eq("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"));
    assert_true(eq("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"));
    assert_true(eq("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                   "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"));
    assert_true(eq("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                   "sip:alice@atlanta.com?priority=urgent&subject=project%20x"));
    assert_false(eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
    assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
    assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
    assert_false(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"));
    assert_false(eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
    assert_false(eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
    assert_false(eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"));
    assert_false(eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
    assert_false(eq("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"));
    assert_true(eq("sip:a@h;a=1;a=2", "sip:a@h;a=1;a=2"));
    assert_true(eq("sip:%00@h", "sip:%00@h"));
    assert_false(eq("sip:%00@h", "sip:%00%00@h"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_sip_parts),
        cmocka_unit_test(t_tel_other),
        cmocka_unit_test(t_invalid),
        cmocka_unit_test(t_equality),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
