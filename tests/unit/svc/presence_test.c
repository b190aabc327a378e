/* Unit tests for the presence agent's decisions (src/svc/presence*.c): the
 * subscription state for each authorization, the Subscription-State values,
 * watcher identities, the rule order (own devices, explicit rule, contact list,
 * default), and the aggregated document of a presentity (publications newest
 * first; offline when nothing is known). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "svc/presence_int.h"

static struct config CFG;

static struct presence *mk(const char *default_rule, const char *contacts)
{
    config_free(&CFG);
    assert_int_equal(config_init(&CFG), 0);
    char err[256];
    char a[64], b[64];
    snprintf(a, sizeof a, "presence.default_rule=%s", default_rule);
    snprintf(b, sizeof b, "presence.contacts_allowed=%s", contacts);
    assert_int_equal(config_set(&CFG, a, err, sizeof err), 0);
    assert_int_equal(config_set(&CFG, b, err, sizeof err), 0);
    assert_int_equal(config_set(&CFG, "server.domain=example.com, localhost", err, sizeof err), 0);
    struct presence *p = NULL;
    assert_int_equal(pres_new(&p, &CFG, NULL, NULL), 0);
    return p;
}

static void test_state_values(void **state)
{
    (void)state;
    char b[96];
    assert_string_equal(pres_sub_state_value(b, sizeof b, SUB_ACTIVE, 600, NULL),
                        "active;expires=600");
    assert_string_equal(pres_sub_state_value(b, sizeof b, SUB_PENDING, 5, NULL),
                        "pending;expires=5");
    assert_string_equal(pres_sub_state_value(b, sizeof b, SUB_TERMINATED, 0, "rejected"),
                        "terminated;reason=rejected");
    assert_string_equal(pres_sub_state_value(b, sizeof b, SUB_TERMINATED, 0, NULL),
                        "terminated;reason=noresource");
    assert_int_equal(pres_sub_state_for(STORE_PRES_ALLOW), SUB_ACTIVE);
    assert_int_equal(pres_sub_state_for(STORE_PRES_POLITE_BLOCK), SUB_ACTIVE);
    assert_int_equal(pres_sub_state_for(STORE_PRES_PENDING), SUB_PENDING);
    assert_int_equal(pres_sub_state_for(STORE_PRES_BLOCK), -1);
}

static void key_is(struct presence *p, const char *uri, const char *want)
{
    char out[600];
    ssize_t n = pres__watcher_key(p, NULL, str_cstr(uri), out, sizeof out);
    if (!want) {
        assert_true(n < 0);
        return;
    }
    assert_true(n > 0);
    assert_string_equal(out, want);
}

static void test_watcher_keys(void **state)
{
    (void)state;
    struct presence *p = mk("pending", "true");
    key_is(p, "bob", "bob");
    key_is(p, "sip:bob@localhost", "bob");
    key_is(p, "<sip:bob@EXAMPLE.com:5060;transport=tcp>", "bob");
    key_is(p, "sips:bob@example.com", "bob");
    key_is(p, "sip:carol@Other.ORG", "carol@other.org");
    key_is(p, "sip:carol@other.org:5070;user=phone?x=y", "carol@other.org");
    key_is(p, "", NULL);
    key_is(p, "sip:@x", NULL);
    pres_free(p);
}

static void add_rules(struct presence *p, const char *owner, const char *const *w,
                      const uint8_t *a, size_t n, const char *const *c, size_t nc)
{
    struct orules *o = calloc(1, sizeof *o);
    o->w = calloc(n + 1, sizeof *o->w);
    o->a = calloc(n + 1, 1);
    o->c = calloc(nc + 1, sizeof *o->c);
    for (size_t i = 0; i < n; i++) {
        o->w[i] = strdup(w[i]);
        o->a[i] = a[i];
    }
    for (size_t i = 0; i < nc; i++)
        o->c[i] = strdup(c[i]);
    o->n = n;
    o->nc = nc;
    assert_int_equal(map_set_str(p->rules, str_cstr(owner), o, NULL), 0);
}

static void test_decide(void **state)
{
    (void)state;
    struct presence *p = mk("pending", "true");
    static const char *const w[] = { "bob", "carol", "dave", "erin@other.org", "frank" };
    static const uint8_t a[] = { STORE_PRES_ALLOW, STORE_PRES_BLOCK, STORE_PRES_POLITE_BLOCK,
                                 STORE_PRES_ALLOW, STORE_PRES_BLOCK };
    static const char *const c[] = { "gina", "frank" };
    add_rules(p, "alice", w, a, 5, c, 2);
    assert_int_equal(pres__decide(p, STR("alice"), STR("alice")), STORE_PRES_ALLOW);
    assert_int_equal(pres__decide(p, STR("alice"), STR("bob")), STORE_PRES_ALLOW);
    assert_int_equal(pres__decide(p, STR("alice"), STR("carol")), STORE_PRES_BLOCK);
    assert_int_equal(pres__decide(p, STR("alice"), STR("dave")), STORE_PRES_POLITE_BLOCK);
    assert_int_equal(pres__decide(p, STR("alice"), STR("erin@other.org")), STORE_PRES_ALLOW);
    /* an explicit rule wins over the contact list */
    assert_int_equal(pres__decide(p, STR("alice"), STR("frank")), STORE_PRES_BLOCK);
    assert_int_equal(pres__decide(p, STR("alice"), STR("gina")), STORE_PRES_ALLOW);
    assert_int_equal(pres__decide(p, STR("alice"), STR("harry")), STORE_PRES_PENDING);
    assert_int_equal(pres__decide(p, STR("zoe"), STR("bob")), STORE_PRES_PENDING);
    pres_free(p);
    p = mk("allow", "false");
    add_rules(p, "alice", w, a, 5, c, 2);
    assert_int_equal(pres__decide(p, STR("alice"), STR("harry")), STORE_PRES_ALLOW);
    /* without contacts_allowed the list does not authorize, the default does */
    assert_int_equal(pres__decide(p, STR("alice"), STR("gina")), STORE_PRES_ALLOW);
    pres_free(p);
    p = mk("pending", "false");
    add_rules(p, "alice", w, a, 5, c, 2);
    assert_int_equal(pres__decide(p, STR("alice"), STR("gina")), STORE_PRES_PENDING);
    pres_free(p);
}

static void test_document(void **state)
{
    (void)state;
    struct presence *p = mk("pending", "true");
    struct buf out;
    buf_init(&out, 0);
    /* nobody knows anything about zoe: offline */
    assert_int_equal(pres__document(p, NULL, STR("zoe"), &out, 0), 0);
    buf_append_byte(&out, 0);
    assert_non_null(strstr((char *)out.data, "entity=\"sip:zoe@example.com\""));
    assert_non_null(strstr((char *)out.data, "<basic>closed</basic>"));
    /* two publications: the newest first, its tuple wins */
    struct pent *e = pres__pent(p, STR("alice"), true);
    assert_non_null(e);
    const char *xml[2] = {
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@x\"><tuple id=\"t\">"
        "<status><basic>open</basic></status></tuple></presence>",
        "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@x\"><tuple id=\"t\">"
        "<status><basic>closed</basic></status></tuple><tuple id=\"u\"><status><basic>open"
        "</basic></status></tuple></presence>",
    };
    for (int i = 0; i < 2; i++) {
        struct pub *b = calloc(1, sizeof *b);
        char why[120];
        assert_int_equal(pidf_parse(str_cstr(xml[i]), &b->doc, why, sizeof why), 0);
        b->next = e->pubs; /* the list is newest first */
        e->pubs = b;
        e->npubs++;
    }
    buf_reset(&out);
    assert_int_equal(pres__document(p, e, STR("alice"), &out, 0), 0);
    buf_append_byte(&out, 0);
    const char *x = (const char *)out.data;
    assert_non_null(strstr(x, "<tuple id=\"t\"><status><basic>closed</basic>"));
    assert_non_null(strstr(x, "<tuple id=\"u\">"));
    assert_null(strstr(x, "<basic>open</basic></status></tuple>\n<tuple id=\"u\""));
    /* the cache serves the same bytes */
    assert_non_null(e->doc);
    struct buf again;
    buf_init(&again, 0);
    assert_int_equal(pres__document(p, e, STR("alice"), &again, 0), 0);
    assert_int_equal(again.len + 1, out.len);
    assert_memory_equal(again.data, out.data, again.len);
    buf_free(&again);
    buf_free(&out);
    pres_free(p);
}

static void test_winfo_document(void **state)
{
    (void)state;
    struct presence *p = mk("pending", "true");
    struct pent *e = pres__pent(p, STR("alice"), true);
    struct wrec *w = calloc(1, sizeof *w);
    w->id = 7;
    w->uri = strdup("sip:bob@example.com");
    w->status = W_PENDING;
    w->event = "subscribe";
    w->since_ms = 1000;
    e->watchers = w;
    struct buf out;
    buf_init(&out, 0);
    assert_int_equal(pres__winfo_document(p, e, STR("alice"), 3, &out, 61000), 0);
    buf_append_byte(&out, 0);
    const char *x = (const char *)out.data;
    assert_non_null(strstr(x, "version=\"3\" state=\"full\""));
    assert_non_null(strstr(x, "resource=\"sip:alice@example.com\" package=\"presence\""));
    assert_non_null(strstr(x, "<watcher id=\"w7\" status=\"pending\" event=\"subscribe\" "
                              "duration-subscribed=\"60\">sip:bob@example.com</watcher>"));
    buf_free(&out);
    pres_free(p);
}

struct seen {
    int calls;
    bool open;
    char note[64];
};

static void watch_cb(void *ctx, str presentity, bool open, str note)
{
    struct seen *s = ctx;
    assert_true(str_eq(presentity, STR("alice")));
    s->calls++;
    s->open = open;
    str_copy(s->note, sizeof s->note, note);
}

static void set_pub(struct presence *p, const char *basic, const char *note)
{
    struct pent *e = pres__pent(p, STR("alice"), true);
    char xml[512];
    snprintf(xml, sizeof xml,
             "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\" entity=\"sip:alice@x\"><tuple id=\"t\">"
             "<status><basic>%s</basic></status><note>%s</note></tuple></presence>",
             basic, note);
    struct pub *b = e->pubs;
    if (!b) {
        b = calloc(1, sizeof *b);
        e->pubs = b;
        e->npubs = 1;
    }
    pidf_free(b->doc);
    char why[120];
    assert_int_equal(pidf_parse(str_cstr(xml), &b->doc, why, sizeof why), 0);
}

static void test_inprocess_watch(void **state)
{
    (void)state;
    struct presence *p = mk("pending", "true");
    static const char *const w[] = { "bot", "spy", "shy" };
    static const uint8_t a[] = { STORE_PRES_ALLOW, STORE_PRES_POLITE_BLOCK, STORE_PRES_PENDING };
    add_rules(p, "alice", w, a, 3, NULL, 0);
    set_pub(p, "open", "at work");
    struct seen bot = { 0 }, spy = { 0 }, shy = { 0 };
    int id = pres_watch(p, STR("sip:bot@example.com"), STR("alice"), watch_cb, &bot);
    assert_true(id > 0);
    assert_true(pres_watch(p, STR("spy"), STR("alice"), watch_cb, &spy) > 0);
    assert_true(pres_watch(p, STR("shy"), STR("alice"), watch_cb, &shy) > 0);
    assert_int_equal(pres_watch(p, STR("bot"), STR("no body"), watch_cb, &bot), -EINVAL);
    /* the state at once: allowed sees it, polite-blocked sees closed, pending nothing */
    assert_int_equal(bot.calls, 1);
    assert_true(bot.open);
    assert_string_equal(bot.note, "at work");
    assert_int_equal(spy.calls, 1);
    assert_false(spy.open);
    assert_int_equal(shy.calls, 0);
    /* a change: reported once to the one who sees it */
    set_pub(p, "closed", "gone home");
    pres__post(p, PC_DOC, STR("alice"), 0);
    assert_int_equal(bot.calls, 2);
    assert_false(bot.open);
    assert_string_equal(bot.note, "gone home");
    assert_int_equal(spy.calls, 1);
    pres__post(p, PC_DOC, STR("alice"), 0); /* nothing changed: no call */
    assert_int_equal(bot.calls, 2);
    /* the pending one is allowed: it gets the state */
    struct orules *o = map_get_str(p->rules, STR("alice"));
    o->a[2] = STORE_PRES_ALLOW;
    pres__post(p, PC_RULES, STR("alice"), 0);
    assert_int_equal(shy.calls, 1);
    assert_false(shy.open);
    /* unwatched: no more calls */
    pres_unwatch(p, id);
    set_pub(p, "open", "back");
    pres__post(p, PC_DOC, STR("alice"), 0);
    assert_int_equal(bot.calls, 2);
    assert_int_equal(shy.calls, 2);
    assert_true(shy.open);
    pres_free(p);
}

static int teardown(void **state)
{
    (void)state;
    config_free(&CFG);
    return 0;
}

int main(void)
{
    config_init(&CFG);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_values),
        cmocka_unit_test(test_watcher_keys),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_document),
        cmocka_unit_test(test_winfo_document),
        cmocka_unit_test(test_inprocess_watch),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
