/*
 * svc/feat: the snapshot of forwarding rules and groups (what the INVITE and
 * group paths read), the system address, and the service's empty start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>

#include "base/config.h"
#include "svc/feat.h"

static void test_rules(void **state)
{
    (void)state;
    struct feat_snap *s;
    assert_int_equal(feat_snap_new(&s), 0);
    struct store_forward f;
    memset(&f, 0, sizeof f);
    /* a rule set with nothing on is not kept */
    assert_int_equal(feat_snap_put_forward(s, STR("alice"), &f), 0);
    assert_null(feat_snap_forward(s, STR("alice")));
    snprintf(f.busy, sizeof f.busy, "sip:bob@localhost");
    f.no_answer_secs = 7;
    assert_int_equal(feat_snap_put_forward(s, STR("alice"), &f), 0);
    const struct store_forward *g = feat_snap_forward(s, STR("alice"));
    assert_non_null(g);
    assert_string_equal(g->busy, "sip:bob@localhost");
    assert_int_equal(g->no_answer_secs, 7);
    /* names are case-sensitive, like users */
    assert_null(feat_snap_forward(s, STR("Alice")));
    /* replacing keeps one entry */
    f.dnd = true;
    assert_int_equal(feat_snap_put_forward(s, STR("alice"), &f), 0);
    assert_true(feat_snap_forward(s, STR("alice"))->dnd);
    assert_int_equal(feat_snap_rules(s), 1);
    feat_snap_unref(s);
}

static void test_groups(void **state)
{
    (void)state;
    struct feat_snap *s;
    assert_int_equal(feat_snap_new(&s), 0);
    assert_int_equal(feat_snap_put_member(s, STR("empty"), STR("")), 0);
    assert_int_equal(feat_snap_put_member(s, STR("team"), STR("alice")), 0);
    assert_int_equal(feat_snap_put_member(s, STR("team"), STR("bob")), 0);
    assert_int_equal(feat_snap_put_member(s, STR("team"), STR("bob")), 0); /* once */
    assert_int_equal(feat_snap_put_member(s, STR(""), STR("bob")), -EINVAL);
    const struct feat_group *g = feat_snap_group(s, STR("team"));
    assert_non_null(g);
    assert_int_equal(g->n, 2);
    assert_true(feat_group_has(g, STR("alice")));
    assert_false(feat_group_has(g, STR("carol")));
    assert_false(feat_group_has(g, STR("alic")));
    g = feat_snap_group(s, STR("empty"));
    assert_non_null(g);
    assert_int_equal(g->n, 0);
    assert_null(feat_snap_group(s, STR("nosuch")));
    assert_int_equal(feat_snap_groups(s), 2);
    /* the member bound */
    char name[32];
    for (int i = 0; i < FEAT_MAX_GROUP_MEMBERS; i++) {
        snprintf(name, sizeof name, "u%d", i);
        assert_int_equal(feat_snap_put_member(s, STR("big"), str_cstr(name)), 0);
    }
    assert_int_equal(feat_snap_put_member(s, STR("big"), STR("onemore")), -ENOSPC);
    assert_int_equal(feat_snap_group(s, STR("big"))->n, FEAT_MAX_GROUP_MEMBERS);
    feat_snap_unref(s);
}

static void test_service(void **state)
{
    (void)state;
    struct config cfg;
    assert_int_equal(config_init(&cfg), 0);
    char from[700];
    assert_int_equal(feat_system_from(&cfg, from, sizeof from), 0);
    assert_string_equal(from, "\"System\" <sip:system@localhost>");
    char err[256];
    assert_int_equal(config_set(&cfg, "server.system_address=sip:noc@example.com", err,
                                sizeof err),
                     0);
    assert_int_equal(feat_system_from(&cfg, from, sizeof from), 0);
    assert_string_equal(from, "<sip:noc@example.com>");
    assert_int_equal(config_set(&cfg, "server.system_address=\"NOC\" <sip:noc@example.com>",
                                err, sizeof err),
                     0);
    assert_int_equal(feat_system_from(&cfg, from, sizeof from), 0);
    assert_string_equal(from, "\"NOC\" <sip:noc@example.com>");
    assert_int_equal(feat_system_from(&cfg, from, 8), -ENOBUFS);
    /* a new service starts with an empty snapshot; a reference outlives the service */
    struct feat_params p = { .cfg = &cfg };
    struct feat *f;
    assert_int_equal(feat_new(&f, &p), 0);
    assert_int_equal(feat_load(f), 0); /* no store: nothing to load */
    struct feat_snap *s = feat_snapshot(f);
    assert_int_equal(feat_snap_rules(s), 0);
    assert_int_equal(feat_snap_groups(s), 0);
    feat_free(f);
    assert_null(feat_snap_forward(s, STR("alice")));
    feat_snap_unref(s);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_service),
    };
    return cmocka_run_group_tests_name("svc/feat", tests, NULL, NULL);
}
