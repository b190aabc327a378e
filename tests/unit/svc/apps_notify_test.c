/* Unit tests for the apps' pure parts: the notify request model (src/svc/apps_notify.c)
 * and channel rule evaluation (src/svc/apps_chan.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>

#include "svc/apps.h"

static int parse(const char *json, struct notify_req *r, char *err)
{
    return notify_req_parse(str_cstr(json), 604800, r, err, 256);
}

static void test_full(void **state)
{
    (void)state;
    struct notify_req r;
    char err[256];
    assert_int_equal(parse("{\"to\":[\"bob\",\"group:team\"],\"text\":\"hi\","
                           "\"content_type\":\"text/markdown\",\"priority\":\"urgent\",\"ttl\":60}",
                           &r, err),
                     0);
    assert_int_equal(r.target, NOTIFY_LIST);
    assert_int_equal(r.nto, 2);
    assert_string_equal(r.to[0], "bob");
    assert_string_equal(r.to[1], "group:team");
    assert_string_equal(r.text, "hi");
    assert_string_equal(r.content_type, "text/markdown");
    assert_int_equal(r.priority, NOTIFY_URGENT);
    assert_int_equal(r.ttl, 60);
    notify_req_free(&r);
    assert_int_equal(parse("{\"to\":\"online\",\"text\":\"x\"}", &r, err), 0);
    assert_int_equal(r.target, NOTIFY_ONLINE);
    assert_int_equal(r.ttl, 86400); /* default */
    assert_int_equal(r.priority, NOTIFY_NORMAL);
    assert_string_equal(r.content_type, "text/plain");
    notify_req_free(&r);
    assert_int_equal(parse("{\"text\":\"x\",\"to\":\"everyone\",\"ttl\":0}", &r, err), 0);
    assert_int_equal(r.target, NOTIFY_EVERYONE);
    assert_int_equal(r.ttl, 0);
    notify_req_free(&r);
    /* a max_ttl below the default caps the default */
    assert_int_equal(notify_req_parse(STR("{\"to\":\"online\",\"text\":\"x\"}"), 30, &r, err, 256),
                     0);
    assert_int_equal(r.ttl, 30);
    notify_req_free(&r);
}

static void expect_error(const char *json, const char *want)
{
    struct notify_req r;
    char err[256] = "";
    assert_int_equal(parse(json, &r, err), -EINVAL);
    if (!strstr(err, want))
        fail_msg("'%s': error '%s' does not say '%s'", json, err, want);
    assert_null(r.to);
    assert_null(r.text);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("", "bad JSON");
    expect_error("{\"to\":[\"a\"],\"text\":", "bad JSON at line 1");
    expect_error("[1,2]", "must be a JSON object");
    expect_error("{\"to\":[\"a\"],\"text\":\"x\",\"colour\":1}", "unknown field \"colour\"");
    expect_error("{\"to\":[\"a\"],\"text\":\"x\",\"text\":\"y\"}", "bad JSON");
    expect_error("{\"text\":\"x\"}", "\"to\" is required");
    expect_error("{\"to\":[\"a\"]}", "\"text\" is required");
    expect_error("{\"to\":[],\"text\":\"x\"}", "non-empty list");
    expect_error("{\"to\":\"all\",\"text\":\"x\"}", "not \"online\"");
    expect_error("{\"to\":[\"a b\"],\"text\":\"x\"}", "not a user name");
    expect_error("{\"to\":[\"group:\"],\"text\":\"x\"}", "not a user name");
    expect_error("{\"to\":[1],\"text\":\"x\"}", "must be a string");
    expect_error("{\"to\":[\"a\"],\"text\":\"\"}", "non-empty string");
    expect_error("{\"to\":[\"a\"],\"text\":\"x\",\"ttl\":604801}", "0 to 604800");
    expect_error("{\"to\":[\"a\"],\"text\":\"x\",\"ttl\":\"1\"}", "ttl");
    expect_error("{\"to\":[\"a\"],\"text\":\"x\",\"priority\":\"max\"}", "priority");
    expect_error("{\"to\":[\"a\"],\"text\":\"x\",\"content_type\":\"plain\"}", "type/subtype");
    /* 1001 entries */
    size_t cap = 16 + 1001 * 6 + 32;
    char *big = malloc(cap);
    size_t n = (size_t)snprintf(big, cap, "{\"to\":[");
    for (int i = 0; i < 1001; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"u%d\"", i ? "," : "", i % 10);
    snprintf(big + n, cap - n, "],\"text\":\"x\"}");
    expect_error(big, "more than 1000");
    free(big);
    /* text over 16 KiB */
    char *t = malloc(20000);
    n = (size_t)snprintf(t, 20000, "{\"to\":[\"a\"],\"text\":\"");
    memset(t + n, 'x', 16385);
    snprintf(t + n + 16385, 20000 - n - 16385, "\"}");
    expect_error(t, "more than 16384");
    free(t);
}

static void test_rules(void **state)
{
    (void)state;
    struct chan_who user = {.kind = CHAN_WHO_USER, .name = "alice"};
    struct chan_who app = {.kind = CHAN_WHO_APP, .name = "feed", .app_scopes = APPS_CHANNELS};
    struct chan_who app_noscope = {.kind = CHAN_WHO_APP, .name = "feed", .app_scopes = APPS_NOTIFY};
    struct chan_who anon = {.kind = CHAN_WHO_ANON};
    assert_int_equal(apps_rule_eval(STR("users"), &user, NULL), 1);
    assert_int_equal(apps_rule_eval(STR("users"), &app, NULL), 0);
    assert_int_equal(apps_rule_eval(STR("apps"), &app, NULL), 1);
    assert_int_equal(apps_rule_eval(STR("apps"), &app_noscope, NULL), 0);
    assert_int_equal(apps_rule_eval(STR("app:feed"), &app, NULL), 1);
    assert_int_equal(apps_rule_eval(STR("app:other"), &app, NULL), 0);
    assert_int_equal(apps_rule_eval(STR("user:alice"), &user, NULL), 1);
    assert_int_equal(apps_rule_eval(STR("user:bob, apps"), &user, NULL), 0);
    assert_int_equal(apps_rule_eval(STR("any"), &anon, NULL), 1);
    assert_int_equal(apps_rule_eval(STR("users,apps"), &anon, NULL), 0);
    /* groups: unknown → -EAGAIN unless another rule already allows */
    assert_int_equal(apps_rule_eval(STR("group:staff"), &user, NULL), -EAGAIN);
    assert_int_equal(apps_rule_eval(STR("group:staff,users"), &user, NULL), 1);
    assert_int_equal(apps_rule_eval(STR("group:staff"), &user, ",ops,staff,"), 1);
    assert_int_equal(apps_rule_eval(STR("group:staff"), &user, ",ops,staffing,"), 0);
    assert_int_equal(apps_rule_eval(STR("group:staff"), &app, NULL), 0);
    assert_int_equal(apps_rule_eval(STR("group:staff"), &anon, NULL), 0);
}

static void test_rule_and_scope_syntax(void **state)
{
    (void)state;
    assert_true(store_channel_rule_valid(STR("users,apps,group:g,user:u,app:a,any")));
    assert_false(store_channel_rule_valid(STR("")));
    assert_false(store_channel_rule_valid(STR("users,")));
    assert_false(store_channel_rule_valid(STR("group:")));
    assert_false(store_channel_rule_valid(STR("everyone")));
    assert_true(store_app_scopes_valid(STR("notify,bot,channels")));
    assert_true(store_app_scopes_valid(STR("bot")));
    assert_false(store_app_scopes_valid(STR("bot,bot")));
    assert_false(store_app_scopes_valid(STR("admin")));
    assert_false(store_app_scopes_valid(STR("")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_rule_and_scope_syntax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
