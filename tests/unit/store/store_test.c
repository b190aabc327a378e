/*
 * The store conformance suite: the same tests against either backend.
 * RTCD_TEST_PG_URL set (postgresql://...) → PostgreSQL (tests/store/pg_test.sh
 * starts a server and sets it; each test starts from an emptied schema);
 * otherwise SQLite in a temporary file.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/worker.h"
#include "store/store.h"

static char sqlite_path[256];
static const char *pg_url;

static void reset_pg(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "psql -q -X '%s' -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' "
             ">/dev/null 2>&1",
             pg_url);
    assert_int_equal(system(cmd), 0);
}

static struct store *open_store(uint32_t max_offline)
{
    struct store_params p = {
        .backend = pg_url ? STORE_POSTGRES : STORE_SQLITE,
        .target = pg_url ? pg_url : sqlite_path,
        .realm = "testrealm@host.com",
        .max_offline_per_user = max_offline,
    };
    struct store *s = NULL;
    char err[512];
    int rc = store_open(&s, &p, err, sizeof err);
    if (rc < 0)
        fail_msg("store_open: %s", err);
    return s;
}

static int setup(void **state)
{
    if (pg_url) {
        reset_pg();
    } else {
        snprintf(sqlite_path, sizeof sqlite_path, "/tmp/rtcd-store-test-%d.db", (int)getpid());
        unlink(sqlite_path);
        char p[300];
        snprintf(p, sizeof p, "%s-wal", sqlite_path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", sqlite_path);
        unlink(p);
    }
    *state = open_store(3);
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    if (!pg_url) {
        char p[300];
        unlink(sqlite_path);
        snprintf(p, sizeof p, "%s-wal", sqlite_path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", sqlite_path);
        unlink(p);
    }
    return 0;
}

static void add_user(struct store *s, const char *name, const char *pw, const char *display)
{
    struct store_user_new u = {str_cstr(name), str_cstr(pw), str_cstr(display)};
    assert_int_equal(store_user_add(s, &u), 0);
}

/* ---- users ---- */

static void test_ha1_vectors(void **state)
{
    char md5[33], sha[65];
    assert_int_equal(
        store_ha1(STR("Mufasa"), STR("testrealm@host.com"), STR("Circle Of Life"), md5, sha), 0);
    assert_string_equal(md5, "939e7578ed9e3c518a452acee763bce9"); /* RFC 2617 §3.5 */
    assert_string_equal(sha, "3ba6cd94661c5ef34598040c868f13b8775df29109986be50ad35ae537dd3aa4");
    char realm[64];
    assert_int_equal(store_realm_from_domain(" example.com , other.org", realm, sizeof realm), 0);
    assert_string_equal(realm, "example.com");
    assert_int_equal(store_realm_from_domain(" , x", realm, sizeof realm), -EINVAL);
}

static void test_user_crud(void **state)
{
    struct store *s = *state;
    add_user(s, "Mufasa", "Circle Of Life", "King Mufasa");
    struct store_user u;
    assert_int_equal(store_user_get(s, STR("Mufasa"), &u), 0);
    assert_string_equal(u.display, "King Mufasa");
    assert_true(u.enabled);
    assert_string_equal(u.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
    assert_string_equal(u.ha1_sha256,
                        "3ba6cd94661c5ef34598040c868f13b8775df29109986be50ad35ae537dd3aa4");
    assert_true(u.created_ms > 0);

    struct store_user_new dup = {STR("Mufasa"), STR("x"), STR("")};
    assert_int_equal(store_user_add(s, &dup), -EEXIST);
    assert_int_equal(store_user_get(s, STR("mufasa"), &u), -ENOENT); /* case-sensitive */

    assert_int_equal(store_user_set_enabled(s, STR("Mufasa"), false), 0);
    assert_int_equal(store_user_get(s, STR("Mufasa"), &u), 0);
    assert_false(u.enabled);
    assert_int_equal(store_user_passwd(s, STR("Mufasa"), STR("new pw")), 0);
    assert_int_equal(store_user_get(s, STR("Mufasa"), &u), 0);
    assert_string_not_equal(u.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
    assert_int_equal(store_user_set_display(s, STR("Mufasa"), STR("Ünïcode ✓")), 0);
    assert_int_equal(store_user_get(s, STR("Mufasa"), &u), 0);
    assert_string_equal(u.display, "Ünïcode ✓");

    assert_int_equal(store_user_passwd(s, STR("nobody"), STR("pw")), -ENOENT);
    assert_int_equal(store_user_set_enabled(s, STR("nobody"), true), -ENOENT);
    assert_int_equal(store_user_del(s, STR("nobody")), -ENOENT);
    assert_int_equal(store_user_del(s, STR("Mufasa")), 0);
    assert_int_equal(store_user_get(s, STR("Mufasa"), &u), -ENOENT);
}

static void test_user_invalid(void **state)
{
    struct store *s = *state;
    const char *bad_names[] = {
        "",    "a b", "a,b", "a:b",
        "a@b", "é",   "<x>", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        struct store_user_new u = {str_cstr(bad_names[i]), STR("pw"), STR("")};
        assert_int_equal(store_user_add(s, &u), -EINVAL);
    }
    struct store_user_new nopw = {STR("bob"), STR(""), STR("")};
    assert_int_equal(store_user_add(s, &nopw), -EINVAL);
    struct store_user_new baddisp = {STR("bob"), STR("pw"), STR("a\nb")};
    assert_int_equal(store_user_add(s, &baddisp), -EINVAL);
    struct store_user_new badutf = {STR("bob"), STR("pw"), STR("\xc3\x28")};
    assert_int_equal(store_user_add(s, &badutf), -EINVAL);
    assert_true(store_name_valid(STR("alice.smith-2_x+y")));
}

static int collect_names(void *ctx, const struct store_user *u)
{
    char *buf = ctx;
    size_t l = strlen(buf);
    snprintf(buf + l, 256 - l, "%s ", u->name);
    return 0;
}

static void test_user_import(void **state)
{
    struct store *s = *state;
    add_user(s, "existing", "pw", "");
    struct store_user_new v[] = {
        {STR("u1"), STR("p1"), STR("One")},
        {STR("u2"), STR("p2"), STR("")},
        {STR("existing"), STR("p3"), STR("")},
    };
    size_t bad = 99;
    assert_int_equal(store_user_import(s, v, 3, &bad), -EEXIST);
    assert_int_equal(bad, 2);
    char names[256] = "";
    assert_int_equal(store_user_list(s, collect_names, names), 0);
    assert_string_equal(names, "existing "); /* nothing half-applied */
    v[2].name = STR("u3");
    assert_int_equal(store_user_import(s, v, 3, &bad), 0);
    names[0] = 0;
    assert_int_equal(store_user_list(s, collect_names, names), 0);
    assert_string_equal(names, "existing u1 u2 u3 ");
}

static void test_users_seq(void **state)
{
    struct store *s = *state;
    int64_t a = 0, b = 0, c = 0;
    assert_int_equal(store_users_seq(s, &a), 0);
    add_user(s, "x", "pw", "");
    assert_int_equal(store_users_seq(s, &b), 0);
    assert_true(b != a);
    assert_int_equal(store_user_set_enabled(s, STR("x"), false), 0);
    assert_int_equal(store_users_seq(s, &c), 0);
    assert_true(c != b);
}

/* ---- groups ---- */

static int join_name(void *ctx, str n)
{
    char *buf = ctx;
    size_t l = strlen(buf);
    snprintf(buf + l, 256 - l, "%.*s ", STR_FMT(n));
    return 0;
}

static void test_groups(void **state)
{
    struct store *s = *state;
    add_user(s, "alice", "pw", "");
    add_user(s, "bob", "pw", "");
    assert_int_equal(store_group_add(s, STR("sales")), 0);
    assert_int_equal(store_group_add(s, STR("dev")), 0);
    assert_int_equal(store_group_add(s, STR("sales")), -EEXIST);
    assert_int_equal(store_group_add(s, STR("bad group")), -EINVAL);
    char buf[256] = "";
    assert_int_equal(store_group_list(s, join_name, buf), 0);
    assert_string_equal(buf, "dev sales ");
    assert_int_equal(store_group_member_add(s, STR("sales"), STR("bob")), 0);
    assert_int_equal(store_group_member_add(s, STR("sales"), STR("alice")), 0);
    assert_int_equal(store_group_member_add(s, STR("dev"), STR("alice")), 0);
    assert_int_equal(store_group_member_add(s, STR("sales"), STR("bob")), -EEXIST);
    assert_int_equal(store_group_member_add(s, STR("nogroup"), STR("bob")), -ENOENT);
    assert_int_equal(store_group_member_add(s, STR("sales"), STR("nouser")), -ENOENT);
    buf[0] = 0;
    assert_int_equal(store_group_members(s, STR("sales"), join_name, buf), 0);
    assert_string_equal(buf, "alice bob ");
    buf[0] = 0;
    assert_int_equal(store_user_groups(s, STR("alice"), join_name, buf), 0);
    assert_string_equal(buf, "dev sales ");
    assert_int_equal(store_group_members(s, STR("nogroup"), join_name, buf), -ENOENT);
    assert_int_equal(store_group_member_del(s, STR("sales"), STR("bob")), 0);
    assert_int_equal(store_group_member_del(s, STR("sales"), STR("bob")), -ENOENT);
    /* deleting a user removes the memberships; deleting a group too */
    assert_int_equal(store_user_del(s, STR("alice")), 0);
    buf[0] = 0;
    assert_int_equal(store_group_members(s, STR("dev"), join_name, buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(store_group_del(s, STR("dev")), 0);
    assert_int_equal(store_group_del(s, STR("dev")), -ENOENT);
    assert_int_equal(store_group_exists(s, STR("dev")), -ENOENT);
    assert_int_equal(store_group_exists(s, STR("sales")), 0);
}

/* ---- contacts, presence rules, forwarding ---- */

static int join_contact(void *ctx, const struct store_contact *c)
{
    char *buf = ctx;
    size_t l = strlen(buf);
    snprintf(buf + l, 512 - l, "%.*s|%.*s|%.*s;", STR_FMT(c->label), STR_FMT(c->uri),
             STR_FMT(c->display));
    return 0;
}

static void test_contacts(void **state)
{
    struct store *s = *state;
    add_user(s, "alice", "pw", "");
    struct store_contact c1 = {STR("alice"), STR("sip:bob@example.com"), STR("Bob"), STR("work")};
    struct store_contact c2 = {STR("alice"), STR("carol"), STR("Carol"), STR("friends")};
    assert_int_equal(store_contact_put(s, &c1), 0);
    assert_int_equal(store_contact_put(s, &c2), 0);
    c1.display = STR("Bobby");
    assert_int_equal(store_contact_put(s, &c1), 0); /* update */
    struct store_contact bad = {STR("nobody"), STR("x"), STR(""), STR("")};
    assert_int_equal(store_contact_put(s, &bad), -ENOENT);
    char buf[512] = "";
    assert_int_equal(store_contact_list(s, STR("alice"), join_contact, buf), 0);
    assert_string_equal(buf, "friends|carol|Carol;work|sip:bob@example.com|Bobby;");
    assert_int_equal(store_contact_del(s, STR("alice"), STR("carol")), 0);
    assert_int_equal(store_contact_del(s, STR("alice"), STR("carol")), -ENOENT);
}

static int join_rule(void *ctx, str watcher, enum store_pres_action a)
{
    char *buf = ctx;
    size_t l = strlen(buf);
    snprintf(buf + l, 256 - l, "%.*s=%s;", STR_FMT(watcher), store_pres_action_name(a));
    return 0;
}

static void test_presence_rules(void **state)
{
    struct store *s = *state;
    add_user(s, "alice", "pw", "");
    enum store_pres_action a;
    assert_int_equal(store_pres_rule_get(s, STR("alice"), STR("bob"), &a), -ENOENT);
    assert_int_equal(store_pres_rule_set(s, STR("alice"), STR("bob"), STORE_PRES_PENDING), 0);
    assert_int_equal(store_pres_rule_set(s, STR("alice"), STR("bob"), STORE_PRES_ALLOW), 0);
    assert_int_equal(store_pres_rule_set(s, STR("alice"), STR("eve"), STORE_PRES_POLITE_BLOCK), 0);
    assert_int_equal(store_pres_rule_set(s, STR("alice"), STR("mallory"), STORE_PRES_BLOCK), 0);
    assert_int_equal(store_pres_rule_get(s, STR("alice"), STR("bob"), &a), 0);
    assert_int_equal(a, STORE_PRES_ALLOW);
    char buf[256] = "";
    assert_int_equal(store_pres_rule_list(s, STR("alice"), join_rule, buf), 0);
    assert_string_equal(buf, "bob=allow;eve=polite-block;mallory=block;");
    assert_int_equal(store_pres_rule_del(s, STR("alice"), STR("eve")), 0);
    assert_int_equal(store_pres_rule_set(s, STR("nobody"), STR("bob"), STORE_PRES_ALLOW), -ENOENT);
    assert_int_equal(store_pres_action_parse(STR("polite-block"), &a), 0);
    assert_int_equal(a, STORE_PRES_POLITE_BLOCK);
    assert_int_equal(store_pres_action_parse(STR("maybe"), &a), -EINVAL);
}

static void test_forwarding(void **state)
{
    struct store *s = *state;
    add_user(s, "alice", "pw", "");
    struct store_forward f = {0}, g;
    assert_int_equal(store_forward_get(s, STR("alice"), &g), -ENOENT);
    snprintf(f.busy, sizeof f.busy, "sip:voicemail@example.com");
    snprintf(f.no_answer, sizeof f.no_answer, "sip:bob@example.com");
    f.no_answer_secs = 20;
    f.dnd = true;
    assert_int_equal(store_forward_set(s, STR("alice"), &f), 0);
    assert_int_equal(store_forward_get(s, STR("alice"), &g), 0);
    assert_string_equal(g.busy, "sip:voicemail@example.com");
    assert_string_equal(g.no_answer, "sip:bob@example.com");
    assert_string_equal(g.unconditional, "");
    assert_int_equal(g.no_answer_secs, 20);
    assert_true(g.dnd);
    f.dnd = false;
    snprintf(f.unconditional, sizeof f.unconditional, "sip:carol@example.com");
    assert_int_equal(store_forward_set(s, STR("alice"), &f), 0);
    assert_int_equal(store_forward_get(s, STR("alice"), &g), 0);
    assert_false(g.dnd);
    assert_string_equal(g.unconditional, "sip:carol@example.com");
    assert_int_equal(store_forward_set(s, STR("nobody"), &f), -ENOENT);
    assert_int_equal(store_forward_del(s, STR("alice")), 0);
    assert_int_equal(store_forward_get(s, STR("alice"), &g), -ENOENT);
}

/* ---- offline messages ---- */

struct msgs {
    int n;
    int64_t id[16];
    char body[16][64];
    size_t blen[16];
    int64_t at[16];
};

static int collect_msg(void *ctx, const struct store_offline_msg *m)
{
    struct msgs *c = ctx;
    if (c->n >= 16)
        return -ENOSPC;
    c->id[c->n] = m->id;
    c->at[c->n] = m->created_ms;
    c->blen[c->n] = m->body.len;
    memcpy(c->body[c->n], m->body.s, m->body.len < 63 ? m->body.len : 63);
    c->n++;
    return 0;
}

static void test_offline(void **state)
{
    struct store *s = *state;
    int64_t id[4];
    const str bin = STR("a\0b\xff\x01");
    assert_int_equal(store_offline_enqueue(s, STR("bob"), STR("sip:alice@x"), 1000,
                                           STR("text/plain"), STR("first"), &id[0]),
                     0);
    assert_int_equal(store_offline_enqueue(s, STR("bob"), STR("sip:alice@x"), 2000,
                                           STR("application/octet-stream"), bin, &id[1]),
                     0);
    assert_int_equal(store_offline_enqueue(s, STR("carol"), STR("sip:alice@x"), 2500,
                                           STR("text/plain"), STR("for carol"), &id[3]),
                     0);
    assert_int_equal(store_offline_enqueue(s, STR("bob"), STR("sip:alice@x"), 3000,
                                           STR("text/plain"), STR("third"), &id[2]),
                     0);
    /* the bound (3 per user) gives its own error */
    assert_int_equal(store_offline_enqueue(s, STR("bob"), STR("sip:alice@x"), 4000,
                                           STR("text/plain"), STR("fourth"), NULL),
                     -EDQUOT);
    int64_t n = 0;
    assert_int_equal(store_offline_count(s, STR("bob"), &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(store_offline_count(s, STR(""), &n), 0);
    assert_int_equal(n, 4);

    /* durable: visible from a second connection, in order, bytes intact */
    struct store *s2 = open_store(3);
    struct msgs m = {0};
    assert_int_equal(store_offline_list(s2, STR("bob"), 0, collect_msg, &m), 0);
    assert_int_equal(m.n, 3);
    assert_true(m.id[0] == id[0] && m.id[1] == id[1] && m.id[2] == id[2]);
    assert_true(m.id[0] < m.id[1] && m.id[1] < m.id[2]);
    assert_string_equal(m.body[0], "first");
    assert_int_equal(m.blen[1], bin.len);
    assert_memory_equal(m.body[1], bin.s, bin.len);
    assert_int_equal(m.at[2], 3000);
    store_close(s2);

    assert_int_equal(store_offline_delete(s, id[0]), 0);
    assert_int_equal(store_offline_delete(s, id[0]), -ENOENT);
    memset(&m, 0, sizeof m);
    assert_int_equal(store_offline_list(s, STR("bob"), 1, collect_msg, &m), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.id[0], id[1]);
    /* room again after a delivery */
    assert_int_equal(store_offline_enqueue(s, STR("bob"), STR("sip:alice@x"), 5000,
                                           STR("text/plain"), STR("fifth"), NULL),
                     0);
    memset(&m, 0, sizeof m);
    assert_int_equal(store_offline_list_all(s, 0, collect_msg, &m), 0);
    assert_int_equal(m.n, 4);
    assert_string_equal(m.body[3], "for carol"); /* ordered by recipient then id */
}

/* ---- archive ---- */

struct hits {
    int n;
    char text[512];
};

static int collect_hit(void *ctx, const struct store_archive_entry *e)
{
    struct hits *h = ctx;
    size_t l = strlen(h->text);
    snprintf(h->text + l, sizeof h->text - l, "%.*s>%.*s:%.*s;", STR_FMT(e->sender),
             STR_FMT(e->recipients), STR_FMT(e->body));
    h->n++;
    return 0;
}

static struct hits search(struct store *s, const char *text, const char *user, const char *with,
                          int64_t since, int64_t until)
{
    struct store_archive_query q = {str_cstr(text), str_cstr(user), str_cstr(with),
                                    since,          until,          0};
    struct hits h = {0};
    assert_int_equal(store_archive_search(s, &q, collect_hit, &h), 0);
    return h;
}

static void test_archive(void **state)
{
    struct store *s = *state;
    str bob[] = {STR("bob")}, carol_bob[] = {STR("carol"), STR("bob")};
    assert_int_equal(store_archive_append(s, STR("alice"), bob, 1, 1000, STR("text/plain"),
                                          STR("Lunch tomorrow at noon?"), NULL),
                     0);
    assert_int_equal(store_archive_append(s, STR("bob"), (str[]){STR("alice")}, 1, 2000,
                                          STR("text/plain"), STR("Yes, lunch at noon works"), NULL),
                     0);
    assert_int_equal(store_archive_append(s, STR("alice"), carol_bob, 2, 3000, STR("text/plain"),
                                          STR("Release \"notes\" are ready"), NULL),
                     0);
    assert_int_equal(store_archive_append(s, STR("dave"), (str[]){STR("erin")}, 1, 4000,
                                          STR("text/plain"), STR("bad \xff byte\0"), NULL),
                     0);
    assert_int_equal(store_archive_append(s, STR("alice"), (str[]){STR("a,b")}, 1, 4000,
                                          STR("text/plain"), STR("x"), NULL),
                     -EINVAL);

    struct hits h = search(s, "lunch", "", "", 0, 0);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.text,
                        "alice>bob:Lunch tomorrow at noon?;bob>alice:Yes, lunch at noon works;");
    assert_int_equal(search(s, "LUNCH noon", "", "", 0, 0).n, 2);
    assert_int_equal(search(s, "lunch tomorrow", "", "", 0, 0).n, 1);
    assert_int_equal(search(s, "lunch", "", "", 1500, 0).n, 1);
    assert_int_equal(search(s, "lunch", "", "", 0, 1500).n, 1);
    assert_int_equal(search(s, "", "carol", "", 0, 0).n, 1);
    assert_int_equal(search(s, "", "bob", "", 0, 0).n, 3);
    assert_int_equal(search(s, "", "bob", "carol", 0, 0).n, 1);
    assert_int_equal(search(s, "", "alice", "bob", 0, 0).n, 3);
    assert_int_equal(search(s, "", "bo", "", 0, 0).n, 0);        /* exact party, not a prefix */
    assert_int_equal(search(s, "\"notes\"", "", "", 0, 0).n, 1); /* quotes are not syntax */
    assert_int_equal(search(s, "AND OR NOT (", "", "", 0, 0).n, 0);
    h = search(s, "byte", "", "", 0, 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.text, "dave>erin:bad ? byte?;");

    int64_t removed = 0;
    assert_int_equal(store_archive_expire(s, 2500, &removed), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(search(s, "lunch", "", "", 0, 0).n, 0);
    assert_int_equal(search(s, "", "", "", 0, 0).n, 2);
}

/* ---- api keys, registrations, audit, stats ---- */

static void test_apikeys(void **state)
{
    struct store *s = *state;
    char key[33], owner[STORE_NAME_MAX + 1];
    int64_t id = 0;
    assert_int_equal(store_apikey_create(s, STR("bot1"), STR("notifier"), 0, key, &id), 0);
    assert_int_equal(strlen(key), 32);
    assert_int_equal(store_apikey_check(s, str_cstr(key), 1000, owner), 0);
    assert_string_equal(owner, "bot1");
    assert_int_equal(store_apikey_check(s, STR("wrong"), 1000, owner), -ENOENT);
    char key2[33];
    assert_int_equal(store_apikey_create(s, STR("bot2"), STR("x"), 5000, key2, NULL), 0);
    assert_int_equal(store_apikey_check(s, str_cstr(key2), 4000, owner), 0);
    assert_int_equal(store_apikey_check(s, str_cstr(key2), 6000, owner), -ENOENT);
    assert_int_equal(store_apikey_del(s, id), 0);
    assert_int_equal(store_apikey_check(s, str_cstr(key), 1000, owner), -ENOENT);
}

static int collect_reg(void *ctx, const struct store_reg *r)
{
    char *buf = ctx;
    size_t l = strlen(buf);
    snprintf(buf + l, 512 - l, "%.*s|%.*s|%lld|%u|%.*s|%u|%.*s|%.*s|%.*s;", STR_FMT(r->aor),
             STR_FMT(r->contact), (long long)r->expires_ms, r->q, STR_FMT(r->instance), r->reg_id,
             STR_FMT(r->path), STR_FMT(r->user_agent), STR_FMT(r->received));
    return 0;
}

static void test_regs_snapshot(void **state)
{
    struct store *s = *state;
    struct store_reg v[] = {
        {STR("sip:alice@x"), STR("<sip:alice@1.2.3.4:5060>"), 99000, 1000, STR("<urn:uuid:1>"), 1,
         STR("<sip:edge;lr>"), STR("baresip"), STR("udp:1.2.3.4:5060")},
        {STR("sip:bob@x"), STR("<sip:bob@[::1]:5062;transport=tcp>"), 88000, 500, STR(""), 0,
         STR(""), STR(""), STR("tcp:[::1]:40000 flow=7")},
    };
    assert_int_equal(store_regs_save(s, v, 2), 0);
    char buf[512] = "";
    assert_int_equal(store_regs_load(s, collect_reg, buf), 0);
    assert_string_equal(buf, "sip:alice@x|<sip:alice@1.2.3.4:5060>|99000|1000|<urn:uuid:1>|1|"
                             "<sip:edge;lr>|baresip|udp:1.2.3.4:5060;"
                             "sip:bob@x|<sip:bob@[::1]:5062;transport=tcp>|88000|500||0|||"
                             "tcp:[::1]:40000 flow=7;");
    assert_int_equal(store_regs_save(s, v + 1, 1), 0); /* replaces the whole snapshot */
    buf[0] = 0;
    assert_int_equal(store_regs_load(s, collect_reg, buf), 0);
    assert_non_null(strstr(buf, "sip:bob@x"));
    assert_null(strstr(buf, "sip:alice@x"));
    assert_int_equal(store_regs_save(s, NULL, 0), 0);
    buf[0] = 0;
    assert_int_equal(store_regs_load(s, collect_reg, buf), 0);
    assert_string_equal(buf, "");
}

static int collect_audit(void *ctx, const struct store_audit_entry *e)
{
    char *buf = ctx;
    size_t l = strlen(buf);
    snprintf(buf + l, 256 - l, "%.*s %.*s %.*s;", STR_FMT(e->actor), STR_FMT(e->action),
             STR_FMT(e->target));
    return 0;
}

static void test_audit_stats(void **state)
{
    struct store *s = *state;
    assert_int_equal(store_audit_add(s, STR("rtcctl:root"), STR("user.add"), STR("a"), STR("")), 0);
    assert_int_equal(store_audit_add(s, STR("rtcctl:root"), STR("user.del"), STR("b"), STR("")), 0);
    assert_int_equal(store_audit_add(s, STR("api"), STR("group.add"), STR("c"), STR("x")), 0);
    char buf[256] = "";
    assert_int_equal(store_audit_list(s, 2, collect_audit, buf), 0);
    assert_string_equal(buf, "rtcctl:root user.del b;api group.add c;");

    add_user(s, "a", "pw", "");
    add_user(s, "b", "pw", "");
    assert_int_equal(store_user_set_enabled(s, STR("b"), false), 0);
    assert_int_equal(store_group_add(s, STR("g")), 0);
    assert_int_equal(store_group_member_add(s, STR("g"), STR("a")), 0);
    struct store_stats st;
    assert_int_equal(store_stats_get(s, &st), 0);
    assert_int_equal(st.users, 2);
    assert_int_equal(st.users_enabled, 1);
    assert_int_equal(st.groups, 1);
    assert_int_equal(st.memberships, 1);
    assert_int_equal(st.audit, 3);
    assert_int_equal(st.schema_version, store_schema_version(s));
    assert_true(st.schema_version >= 2);
}

static void test_reopen_migrations(void **state)
{
    struct store *s = *state;
    add_user(s, "keep", "pw", "");
    /* a second open finds every migration applied and keeps the data */
    struct store *s2 = open_store(3);
    struct store_user u;
    assert_int_equal(store_user_get(s2, STR("keep"), &u), 0);
    assert_int_equal(store_schema_version(s2), store_schema_version(s));
    store_close(s2);
}

/* ---- credential table and store thread ---- */

static void test_creds(void **state)
{
    struct store *s = *state;
    add_user(s, "Mufasa", "Circle Of Life", "King");
    add_user(s, "off", "pw", "");
    assert_int_equal(store_user_set_enabled(s, STR("off"), false), 0);
    struct store_creds *t;
    assert_int_equal(store_creds_new(&t), 0);
    struct cred c;
    assert_int_equal(store_creds_get(t, STR("Mufasa"), &c), -ENOENT);
    assert_int_equal(store_creds_load(t, s), 0);
    assert_int_equal(store_creds_count(t), 2);
    assert_int_equal(store_creds_get(t, STR("Mufasa"), &c), 0);
    assert_true(c.enabled);
    assert_string_equal(c.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
    assert_string_equal(c.display, "King");
    assert_int_equal(store_creds_get(t, STR("off"), &c), 0);
    assert_false(c.enabled);
    assert_int_equal(store_user_del(s, STR("off")), 0);
    assert_int_equal(store_creds_load(t, s), 0);
    assert_int_equal(store_creds_get(t, STR("off"), &c), -ENOENT);
    store_creds_free(t);
}

/* The thread owns its own connection; this test's connection (another "process")
 * adds a user and the table must show it within a second. */
static void test_thread_refresh(void **state)
{
    struct store *s = *state;
    struct store_creds *t;
    assert_int_equal(store_creds_new(&t), 0);
    struct store_thread *th;
    struct store_thread_opts o = {.poll_ms = 50};
    assert_int_equal(store_thread_start(&th, open_store(3), t, &o), 0);
    struct cred c;
    assert_int_equal(store_creds_get(t, STR("late"), &c), -ENOENT);
    uint64_t t0 = clock_mono_ms();
    add_user(s, "late", "pw", "");
    while (store_creds_get(t, STR("late"), &c) != 0 && clock_mono_ms() - t0 < 1000)
        usleep(10000);
    assert_int_equal(store_creds_get(t, STR("late"), &c), 0);
    assert_int_equal(store_user_set_enabled(s, STR("late"), false), 0);
    t0 = clock_mono_ms();
    while (store_creds_get(t, STR("late"), &c) == 0 && c.enabled && clock_mono_ms() - t0 < 1000)
        usleep(10000);
    assert_false(c.enabled);
    store_thread_stop(th);
    store_creds_free(t);
}

struct wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, rc, n;
    int64_t id;
    struct worker *on;
    pthread_t thread;
};

static void wait_for(struct wait *w, int n)
{
    pthread_mutex_lock(&w->lock);
    while (w->done < n)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void on_enqueued(struct worker *wk, int rc, int64_t id, void *ctx)
{
    struct wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->id = id;
    w->on = wk;
    w->thread = pthread_self();
    w->done++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_fetched(struct worker *wk, int rc, const struct store_offline_msg *v, size_t n,
                       void *ctx)
{
    struct wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->rc = rc;
    w->n = (int)n;
    w->on = wk;
    if (n >= 2 && !(str_eq(v[0].body, STR("m0")) && str_eq(v[1].body, STR("m1"))))
        w->rc = -EBADMSG;
    w->done++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static void on_deleted(struct worker *wk, int rc, void *ctx)
{
    on_enqueued(wk, rc, 0, ctx);
}

struct wk_thread {
    pthread_t id;
};

static void note_thread(struct worker *w, void *arg)
{
    ((struct wk_thread *)arg)->id = pthread_self();
}

static void test_thread_offline_async(void **state)
{
    (void)state;
    struct worker_pool *pool;
    assert_int_equal(worker_pool_start(&pool, 1, NULL), 0);
    struct worker *wk = worker_pool_get(pool, 0);
    struct wk_thread wt = {0};
    struct store_thread *th;
    assert_int_equal(store_thread_start(&th, open_store(2), NULL, NULL), 0);
    struct wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, NULL, 0};
    assert_int_equal(worker_post(wk, note_thread, &wt), 0);
    for (int i = 0; i < 3; i++) {
        char body[8];
        snprintf(body, sizeof body, "m%d", i);
        assert_int_equal(store_thread_offline_enqueue(th, wk, STR("bob"), STR("alice"), 1000 + i,
                                                      STR("text/plain"), str_cstr(body),
                                                      on_enqueued, &w),
                         0);
        wait_for(&w, i + 1);
        /* completion ran on the worker's thread, not the store thread */
        assert_ptr_equal(w.on, wk);
        assert_true(pthread_equal(w.thread, wt.id));
        assert_int_equal(w.rc, i < 2 ? 0 : -EDQUOT);
    }
    int64_t first = 0;
    w.done = 0;
    assert_int_equal(store_thread_offline_fetch(th, wk, STR("bob"), 0, on_fetched, &w), 0);
    wait_for(&w, 1);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.n, 2);
    /* the archive append is fire-and-forget; a later job sees it (jobs run in order) */
    assert_int_equal(store_thread_archive_append(th, STR("alice"), (str[]){STR("bob")}, 1, 5,
                                                 STR("text/plain"), STR("archived hello")),
                     0);
    struct store *direct = open_store(2);
    struct msgs m = {0};
    assert_int_equal(store_offline_list(direct, STR("bob"), 0, collect_msg, &m), 0);
    first = m.id[0];
    w.done = 0;
    assert_int_equal(store_thread_offline_delete(th, wk, first, on_deleted, &w), 0);
    wait_for(&w, 1);
    assert_int_equal(w.rc, 0);
    store_thread_stop(th); /* runs whatever is queued, then closes */
    int64_t n = 0;
    assert_int_equal(store_offline_count(direct, STR("bob"), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(search(direct, "hello", "", "", 0, 0).n, 1);
    store_close(direct);
    worker_pool_stop(pool);
}

/* A burst queued at once runs as one batch: the bound still holds exactly, each
 * completion says what happened to its own message, and order is kept. */
struct burst {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done, ok, full;
    int64_t ids[64];
    int order[64];
};

struct burst_one {
    struct burst *b;
    int index;
};

static struct burst_one burst_args[64];

static void on_burst(struct worker *wk, int rc, int64_t id, void *ctx)
{
    struct burst_one *one = ctx;
    struct burst *b = one->b;
    pthread_mutex_lock(&b->lock);
    if (rc == 0) {
        b->ids[b->ok] = id;
        b->order[b->ok] = one->index;
        b->ok++;
    } else if (rc == -EDQUOT) {
        b->full++;
    }
    b->done++;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void test_thread_batch_burst(void **state)
{
    struct store *s = *state;
    struct store_thread *th;
    assert_int_equal(store_thread_start(&th, open_store(10), NULL, NULL), 0);
    struct burst b = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, {0}, {0}};
    for (int i = 0; i < 30; i++) {
        burst_args[i] = (struct burst_one){&b, i};
        assert_int_equal(store_thread_offline_enqueue(th, NULL, STR("bob"), STR("alice"), i,
                                                      STR("text/plain"), STR("burst"), on_burst,
                                                      &burst_args[i]),
                         0);
        if (i % 7 == 0) /* mix in archive appends, batched too */
            assert_int_equal(store_thread_archive_append(th, STR("alice"), (str[]){STR("bob")}, 1,
                                                         i, STR("text/plain"), STR("burst")),
                             0);
    }
    pthread_mutex_lock(&b.lock);
    while (b.done < 30)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    store_thread_stop(th);
    assert_int_equal(b.ok, 10);
    assert_int_equal(b.full, 20);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(b.order[i], i); /* the first ten submitted are the ones kept */
        if (i)
            assert_true(b.ids[i] > b.ids[i - 1]);
    }
    int64_t n = 0;
    assert_int_equal(store_offline_count(s, STR("bob"), &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(search(s, "burst", "", "", 0, 0).n, 5);
}

/* ---- copy (what rtcctl migrate does) ---- */

static void test_copy(void **state)
{
    struct store *dst = *state;
    char src_path[300];
    snprintf(src_path, sizeof src_path, "/tmp/rtcd-store-copy-%d.db", (int)getpid());
    unlink(src_path);
    struct store_params p = {STORE_SQLITE, src_path, "testrealm@host.com", 10};
    struct store *src;
    char err[256];
    assert_int_equal(store_open(&src, &p, err, sizeof err), 0);
    struct store_user_new u = {STR("Mufasa"), STR("Circle Of Life"), STR("King")};
    assert_int_equal(store_user_add(src, &u), 0);
    assert_int_equal(store_group_add(src, STR("g")), 0);
    assert_int_equal(store_group_member_add(src, STR("g"), STR("Mufasa")), 0);
    int64_t id = 0;
    assert_int_equal(
        store_offline_enqueue(src, STR("Mufasa"), STR("x"), 1, STR("a/b"), STR("bin\0ary"), &id),
        0);
    assert_int_equal(store_archive_append(src, STR("x"), (str[]){STR("Mufasa")}, 1, 7,
                                          STR("text/plain"), STR("searchable words"), NULL),
                     0);
    assert_int_equal(store_audit_add(src, STR("t"), STR("user.add"), STR("Mufasa"), STR("")), 0);
    int64_t rows = 0;
    assert_int_equal(store_copy(src, dst, &rows), 0);
    assert_int_equal(rows, 6);
    struct store_user got;
    assert_int_equal(store_user_get(dst, STR("Mufasa"), &got), 0);
    assert_string_equal(got.ha1_md5, "939e7578ed9e3c518a452acee763bce9");
    struct msgs m = {0};
    assert_int_equal(store_offline_list(dst, STR("Mufasa"), 0, collect_msg, &m), 0);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.id[0], id);
    assert_int_equal(m.blen[0], 7);
    assert_memory_equal(m.body[0], "bin\0ary", 7);
    assert_int_equal(search(dst, "searchable", "Mufasa", "", 0, 0).n, 1);
    /* ids continue after the copied ones */
    int64_t id2 = 0;
    assert_int_equal(
        store_offline_enqueue(dst, STR("Mufasa"), STR("x"), 2, STR("a/b"), STR("n"), &id2), 0);
    assert_true(id2 > id);
    /* a second copy into a non-empty store is refused */
    assert_int_equal(store_copy(src, dst, NULL), -ENOTEMPTY);
    store_close(src);
    unlink(src_path);
    char w[320];
    snprintf(w, sizeof w, "%s-wal", src_path);
    unlink(w);
    snprintf(w, sizeof w, "%s-shm", src_path);
    unlink(w);
}

/* ---- migration 3: offline expiry, the features counter, the broadcast outbox ---- */

static int count_msg(void *ctx, const struct store_offline_msg *m)
{
    (void)m;
    (*(int *)ctx)++;
    return 0;
}

static int fwd_count(void *ctx, str user, const struct store_forward *f)
{
    if (str_eq(user, STR("alice")))
        assert_string_equal(f->busy, "sip:bob@localhost");
    (*(int *)ctx)++;
    return 0;
}

static int member_count(void *ctx, str group, str user)
{
    (void)group;
    if (user.len)
        (*(int *)ctx)++;
    return 0;
}

struct bc_seen {
    int n;
    int64_t id;
    bool offline_too;
    int64_t expires_ms;
    char body[64], group[64];
};

static int bc_seen(void *ctx, const struct store_broadcast *b)
{
    struct bc_seen *c = ctx;
    c->n++;
    c->id = b->id;
    c->offline_too = b->offline_too;
    c->expires_ms = b->expires_ms;
    snprintf(c->body, sizeof c->body, "%.*s", (int)b->body.len, b->body.s);
    snprintf(c->group, sizeof c->group, "%.*s", (int)b->group.len, b->group.s);
    return 0;
}

static void test_features(void **state)
{
    struct store *s = *state;
    struct store_user_new a = {STR("alice"), STR("pw"), STR("")}, b = {STR("bob"), STR("pw"), STR("")};
    assert_int_equal(store_user_add(s, &a), 0);
    assert_int_equal(store_user_add(s, &b), 0);
    /* expiry: an expired message is neither listed nor counted against the bound (3) */
    int64_t now = (int64_t)clock_wall_ms();
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_offline_enqueue_ttl(s, STR("alice"), STR("<sip:x@y>"), now,
                                                   STR("text/plain"), STR("old"), now - 1, NULL),
                         0);
    int n = 0;
    assert_int_equal(store_offline_list(s, STR("alice"), 0, count_msg, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_offline_enqueue_ttl(s, STR("alice"), STR("<sip:x@y>"), now,
                                               STR("text/plain"), STR("new"), now + 60000, NULL),
                     0);
    n = 0;
    assert_int_equal(store_offline_list(s, STR("alice"), 0, count_msg, &n), 0);
    assert_int_equal(n, 1);
    int64_t gone = -1;
    assert_int_equal(store_offline_expire(s, now + 120000, &gone), 0);
    assert_int_equal(gone, 1);
    assert_int_equal(store_offline_enqueue_ttl(s, STR("alice"), STR("<sip:x@y>"), now,
                                               STR("text/plain"), STR("x"), -5, NULL),
                     -EINVAL);
    /* the counter moves with forwarding rules and memberships */
    int64_t s0 = 0, s1 = 0, s2 = 0;
    assert_int_equal(store_features_seq(s, &s0), 0);
    struct store_forward f;
    memset(&f, 0, sizeof f);
    snprintf(f.busy, sizeof f.busy, "sip:bob@localhost");
    assert_int_equal(store_forward_set(s, STR("alice"), &f), 0);
    assert_int_equal(store_features_seq(s, &s1), 0);
    assert_true(s1 > s0);
    n = 0;
    assert_int_equal(store_forward_list(s, fwd_count, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_group_add(s, STR("team")), 0);
    assert_int_equal(store_group_add(s, STR("empty")), 0);
    assert_int_equal(store_group_member_add(s, STR("team"), STR("alice")), 0);
    assert_int_equal(store_group_member_add(s, STR("team"), STR("bob")), 0);
    assert_int_equal(store_features_seq(s, &s2), 0);
    assert_true(s2 > s1);
    n = 0;
    assert_int_equal(store_group_all_members(s, member_count, &n), 0);
    assert_int_equal(n, 2);
    /* a user's deletion drops the membership and moves the counter too */
    assert_int_equal(store_user_del(s, STR("bob")), 0);
    int64_t s3 = 0;
    assert_int_equal(store_features_seq(s, &s3), 0);
    assert_true(s3 > s2);
    /* the outbox: taken once */
    struct store_broadcast bc = {.sender = STR("<sip:system@localhost>"), .group = STR("team"),
                                 .offline_too = true, .content_type = STR("text/plain"),
                                 .body = STR("hello all"), .expires_ms = 4242};
    int64_t id = 0;
    assert_int_equal(store_broadcast_add(s, &bc, &id), 0);
    assert_true(id > 0);
    bc.group = STR("bad group");
    assert_int_equal(store_broadcast_add(s, &bc, NULL), -EINVAL);
    struct bc_seen seen = {0};
    assert_int_equal(store_broadcast_take(s, bc_seen, &seen), 0);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.id, id);
    assert_true(seen.offline_too);
    assert_string_equal(seen.body, "hello all");
    assert_string_equal(seen.group, "team");
    assert_int_equal(seen.expires_ms, 4242);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(store_broadcast_take(s, bc_seen, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_broadcast_get(s, id, bc_seen, &seen), 0);
    assert_int_equal(seen.n, 1);
}

int main(void)
{
    pg_url = getenv("RTCD_TEST_PG_URL");
    if (pg_url && !*pg_url)
        pg_url = NULL;
    log_set_level(LOG_WARN);
    printf("store conformance suite: backend %s\n", pg_url ? "postgres" : "sqlite");
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ha1_vectors),
        T(test_user_crud),
        T(test_user_invalid),
        T(test_user_import),
        T(test_users_seq),
        T(test_groups),
        T(test_contacts),
        T(test_presence_rules),
        T(test_forwarding),
        T(test_offline),
        T(test_archive),
        T(test_apikeys),
        T(test_regs_snapshot),
        T(test_audit_stats),
        T(test_reopen_migrations),
        T(test_creds),
        T(test_thread_refresh),
        T(test_thread_offline_async),
        T(test_thread_batch_burst),
        T(test_copy),
        T(test_features),
    };
    return cmocka_run_group_tests_name(pg_url ? "store/postgres" : "store/sqlite", tests, NULL,
                                       NULL);
}
