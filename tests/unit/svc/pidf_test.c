/* Unit tests for src/svc/pidf.c: the checking PIDF parser (RFC 3863) — what it keeps,
 * every refusal with its reason, the bounds — and the aggregation rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "svc/pidf.h"

#define NS "urn:ietf:params:xml:ns:pidf"

static struct pidf_doc *ok_parse(const char *xml)
{
    struct pidf_doc *d = NULL;
    char why[120];
    int rc = pidf_parse(str_cstr(xml), &d, why, sizeof why);
    if (rc != 0)
        fprintf(stderr, "unexpected refusal: %s\n", why);
    assert_int_equal(rc, 0);
    assert_non_null(d);
    return d;
}

static void refused(const char *xml, int want, const char *reason_part)
{
    struct pidf_doc *d = NULL;
    char why[120];
    int rc = pidf_parse(str_cstr(xml), &d, why, sizeof why);
    assert_int_equal(rc, want);
    assert_null(d);
    if (!strstr(why, reason_part))
        fprintf(stderr, "reason '%s' lacks '%s'\n", why, reason_part);
    assert_non_null(strstr(why, reason_part));
    for (const char *c = why; *c; c++)
        assert_true(*c >= 0x20 && *c <= 0x7e);
}

static void test_rfc3863_example(void **state)
{
    (void)state;
    /* RFC 3863 §3.1 style, with extensions that are skipped */
    struct pidf_doc *d = ok_parse(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<impp:presence xmlns:impp=\"" NS "\" xmlns:local=\"urn:example-com:pidf-status-type\" "
        "entity=\"pres:someone@example.com\">\n"
        "  <impp:tuple id=\"sg89ae\">\n"
        "    <impp:status><impp:basic>open</impp:basic><local:location>home</local:location>"
        "</impp:status>\n"
        "    <impp:contact priority=\"0.8\">tel:+09012345678</impp:contact>\n"
        "    <impp:note xml:lang=\"en\">Don't &amp; call</impp:note>\n"
        "    <impp:timestamp>2001-10-27T16:49:29Z</impp:timestamp>\n"
        "  </impp:tuple>\n"
        "  <impp:tuple id=\"x2\"><impp:status/></impp:tuple>\n"
        "  <impp:note>top note</impp:note>\n"
        "</impp:presence>");
    assert_int_equal(d->ntuples, 2);
    assert_true(str_eq(d->entity, STR("pres:someone@example.com")));
    assert_true(str_eq(d->tuples[0].id, STR("sg89ae")));
    assert_int_equal(d->tuples[0].basic, PIDF_BASIC_OPEN);
    assert_true(str_eq(d->tuples[0].contact, STR("tel:+09012345678")));
    assert_true(str_eq(d->tuples[0].priority, STR("0.8")));
    assert_true(str_eq(d->tuples[0].note, STR("Don't & call")));
    assert_true(str_eq(d->tuples[0].timestamp, STR("2001-10-27T16:49:29Z")));
    assert_int_equal(d->tuples[1].basic, PIDF_BASIC_NONE);
    assert_true(str_eq(d->note, STR("top note")));
    assert_true(pidf_is_open(d));
    pidf_free(d);
}

static void test_person_note(void **state)
{
    (void)state;
    struct pidf_doc *d = ok_parse(
        "<presence xmlns=\"" NS "\" xmlns:dm=\"urn:ietf:params:xml:ns:pidf:data-model\" "
        "entity=\"sip:a@b\"><tuple id=\"t\"><status><basic>closed</basic></status></tuple>"
        "<dm:person id=\"p\"><dm:note>Away</dm:note></dm:person></presence>");
    assert_true(str_eq(d->note, STR("Away")));
    assert_false(pidf_is_open(d));
    pidf_free(d);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("", -EPROTO, "not well-formed");
    refused("<presence", -EPROTO, "not well-formed");
    refused("<presence xmlns=\"" NS "\" entity=\"sip:a@b\"></presenc>", -EPROTO, "not well-formed");
    refused("<presence entity=\"sip:a@b\"/>", -EPROTO, "root element");
    refused("<foo xmlns=\"" NS "\" entity=\"x\"/>", -EPROTO, "root element");
    refused("<presence xmlns=\"" NS "\"/>", -EPROTO, "entity");
    refused("<presence xmlns=\"" NS "\" entity=\"x\"><tuple><status/></tuple></presence>", -EPROTO,
            "no id");
    refused("<presence xmlns=\"" NS "\" entity=\"x\"><tuple id=\"a\"/></presence>", -EPROTO,
            "no <status>");
    refused("<presence xmlns=\"" NS "\" entity=\"x\"><tuple id=\"a\"><status/></tuple>"
            "<tuple id=\"a\"><status/></tuple></presence>",
            -EPROTO, "two tuples");
    refused("<presence xmlns=\"" NS "\" entity=\"x\"><tuple id=\"a\"><status><basic>maybe"
            "</basic></status></tuple></presence>",
            -EPROTO, "not open or closed");
    refused("<?xml version=\"1.0\"?><!DOCTYPE presence [<!ENTITY a \"aaaa\">]>"
            "<presence xmlns=\"" NS "\" entity=\"x\">&a;</presence>",
            -EPROTO, "DOCTYPE");
    refused("<presence xmlns=\"" NS "\" entity=\"x\"><tuple id=\"a\"><status><basic><b/>open"
            "</basic></status></tuple></presence>",
            -EPROTO, "holds an element");
}

static void test_bounds(void **state)
{
    (void)state;
    char *big = malloc(PIDF_MAX_BYTES + 100);
    memset(big, ' ', PIDF_MAX_BYTES + 99);
    big[PIDF_MAX_BYTES + 99] = 0;
    refused(big, -E2BIG, "larger than");
    /* 33 tuples */
    size_t o = (size_t)snprintf(big, 200, "<presence xmlns=\"" NS "\" entity=\"x\">");
    for (int i = 0; i <= PIDF_MAX_TUPLES; i++)
        o += (size_t)snprintf(big + o, 100, "<tuple id=\"t%d\"><status/></tuple>", i);
    snprintf(big + o, 20, "</presence>");
    refused(big, -E2BIG, "more than 32 tuples");
    /* nesting */
    o = (size_t)snprintf(big, 200, "<presence xmlns=\"" NS "\" entity=\"x\">");
    for (int i = 0; i < PIDF_MAX_DEPTH + 2; i++)
        o += (size_t)snprintf(big + o, 10, "<a>");
    for (int i = 0; i < PIDF_MAX_DEPTH + 2; i++)
        o += (size_t)snprintf(big + o, 10, "</a>");
    snprintf(big + o, 20, "</presence>");
    refused(big, -E2BIG, "deeper");
    /* a long note */
    o = (size_t)snprintf(big, 200, "<presence xmlns=\"" NS "\" entity=\"x\"><tuple id=\"a\">"
                                   "<status/><note>");
    memset(big + o, 'n', PIDF_TEXT_MAX + 10);
    o += PIDF_TEXT_MAX + 10;
    snprintf(big + o, 60, "</note></tuple></presence>");
    refused(big, -E2BIG, "longer than");
    free(big);
}

static void test_aggregate(void **state)
{
    (void)state;
    struct pidf_doc *newer = ok_parse(
        "<presence xmlns=\"" NS "\" entity=\"sip:a@b\"><tuple id=\"t1\"><status><basic>closed"
        "</basic></status><contact>sip:a@10.0.0.1</contact></tuple><note>busy &lt;b&gt;</note>"
        "</presence>");
    struct pidf_doc *older = ok_parse(
        "<presence xmlns=\"" NS "\" entity=\"sip:a@b\"><tuple id=\"t1\"><status><basic>open"
        "</basic></status></tuple><tuple id=\"t2\"><status><basic>open</basic></status>"
        "</tuple><note>old</note></presence>");
    const struct pidf_doc *docs[] = { newer, older };
    struct pidf_reg reg[] = { { STR("reg-1"), STR("sip:a@10.0.0.1") },
                              { STR("reg-2"), STR("sip:a@10.0.0.2") } };
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(pidf_aggregate(&out, STR("sip:a@b"), docs, 2, reg, 2), 0);
    buf_append_byte(&out, 0);
    const char *x = (const char *)out.data;
    /* the newest t1 wins, t2 stays, reg-1 is named by t1's contact, reg-2 is added */
    assert_non_null(strstr(x, "<tuple id=\"t1\"><status><basic>closed</basic>"));
    assert_null(strstr(x, "<tuple id=\"t1\"><status><basic>open"));
    assert_non_null(strstr(x, "<tuple id=\"t2\">"));
    assert_null(strstr(x, "reg-1"));
    assert_non_null(strstr(x, "<tuple id=\"reg-2\"><status><basic>open</basic></status>"
                              "<contact>sip:a@10.0.0.2</contact>"));
    assert_non_null(strstr(x, "<note>busy &lt;b&gt;</note>"));
    /* what we write, we read back */
    struct pidf_doc *back = ok_parse(x);
    assert_int_equal(back->ntuples, 3);
    pidf_free(back);
    buf_reset(&out);
    assert_int_equal(pidf_write_offline(&out, STR("sip:a\"<&@b")), 0);
    buf_append_byte(&out, 0);
    x = (const char *)out.data;
    assert_non_null(strstr(x, "entity=\"sip:a&quot;&lt;&amp;@b\""));
    assert_non_null(strstr(x, "<tuple id=\"offline\"><status><basic>closed</basic>"));
    back = ok_parse(x);
    assert_false(pidf_is_open(back));
    pidf_free(back);
    buf_free(&out);
    pidf_free(newer);
    pidf_free(older);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3863_example),
        cmocka_unit_test(test_person_note),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
