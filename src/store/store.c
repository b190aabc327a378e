/*
 * store — opening the store (backend choice, migrations), digest HA1s, users
 * and groups. The other tables are in data.c; the SQL layer in db*.c.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "store/impl.h"

/* ---- helpers ---- */

int store__txn(struct store *s, int (*fn)(struct store *s, void *arg), void *arg)
{
    int rc = s->db->ops->begin(s->db, true);
    if (rc < 0)
        return rc;
    rc = fn(s, arg);
    if (rc == 0)
        rc = s->db->ops->commit(s->db);
    if (rc != 0)
        s->db->ops->rollback(s->db);
    return rc;
}

bool store__text_ok(str t, size_t max)
{
    if (t.len > max)
        return false;
    const unsigned char *p = (const unsigned char *)t.s;
    size_t i = 0;
    while (i < t.len) {
        unsigned c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return false;
            i++;
            continue;
        }
        size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || i + n > t.len || (n == 2 && c < 0xc2))
            return false;
        for (size_t k = 1; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        if (n == 3 && c == 0xe0 && p[i + 1] < 0xa0)
            return false;
        if (n == 4 &&
            (c > 0xf4 || (c == 0xf0 && p[i + 1] < 0x90) || (c == 0xf4 && p[i + 1] > 0x8f)))
            return false;
        if (n == 3 && c == 0xed && p[i + 1] >= 0xa0) /* surrogates */
            return false;
        i += n;
    }
    return true;
}

void store__col_copy(char *dst, size_t cap, str col)
{
    size_t n = col.len < cap - 1 ? col.len : cap - 1;
    if (n)
        memcpy(dst, col.s, n);
    dst[n] = 0;
}

bool store_display_valid(str t)
{
    return store__text_ok(t, STORE_DISPLAY_MAX);
}

/* Names per store_name_valid. */
bool store_name_valid(str name)
{
    if (name.len == 0 || name.len > STORE_NAME_MAX)
        return false;
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (!strchr("-_.!~*'+", c) || c == 0)
            return false;
    }
    return true;
}

int store_realm_from_domain(const char *domain, char *out, size_t cap)
{
    str d = str_cstr(domain);
    ssize_t comma = str_find_char(d, ',');
    if (comma >= 0)
        d = str_sub(d, 0, (size_t)comma);
    d = str_trim(d);
    if (d.len == 0 || str_copy(out, cap, d) < 0)
        return -EINVAL;
    return 0;
}

static int hash_hex(const char *md, str user, str realm, str pw, char *out)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c)
        return -ENOMEM;
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_MD *alg = EVP_MD_fetch(NULL, md, NULL);
    int ok = alg && EVP_DigestInit_ex(c, alg, NULL) && EVP_DigestUpdate(c, user.s, user.len) &&
             EVP_DigestUpdate(c, ":", 1) && EVP_DigestUpdate(c, realm.s, realm.len) &&
             EVP_DigestUpdate(c, ":", 1) && EVP_DigestUpdate(c, pw.s, pw.len) &&
             EVP_DigestFinal_ex(c, dig, &n);
    EVP_MD_free(alg);
    EVP_MD_CTX_free(c);
    if (!ok)
        return -ENOMEM;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[dig[i] >> 4];
        out[2 * i + 1] = hex[dig[i] & 15];
    }
    out[2 * n] = 0;
    return 0;
}

int store_ha1(str user, str realm, str password, char md5_out[33], char sha256_out[65])
{
    int rc = hash_hex("MD5", user, realm, password, md5_out);
    if (rc == 0)
        rc = hash_hex("SHA256", user, realm, password, sha256_out);
    return rc;
}

/* ---- opening ---- */

int store_open(struct store **out, const struct store_params *p, char *err, size_t errlen)
{
    if (!p->target || !*p->target) {
        snprintf(err, errlen, "%s",
                 p->backend == STORE_POSTGRES ? "store.url is empty (backend = postgres)"
                                              : "no SQLite file given");
        return -EINVAL;
    }
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->backend = p->backend;
    s->max_offline = p->max_offline_per_user;
    snprintf(s->realm, sizeof s->realm, "%s", p->realm ? p->realm : "");
    int rc = p->backend == STORE_POSTGRES ? store__db_pg_open(&s->db, p->target, err, errlen)
                                          : store__db_sqlite_open(&s->db, p->target, err, errlen);
    if (rc < 0) {
        free(s);
        return rc;
    }
    rc = store__schema_migrate(s->db, &s->version, err, errlen);
    if (rc < 0) {
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int store_open_config(struct store **out, const struct config *cfg, char *err, size_t errlen)
{
    struct store_params p = {.max_offline_per_user = cfg->store.max_offline_per_user};
    char realm[256], path[4096];
    if (store_realm_from_domain(cfg->server.domain, realm, sizeof realm) < 0) {
        snprintf(err, errlen, "server.domain is empty: no digest realm");
        return -EINVAL;
    }
    p.realm = realm;
    if (strcmp(cfg->store.backend, "postgres") == 0) {
        p.backend = STORE_POSTGRES;
        p.target = cfg->store.url;
    } else {
        p.backend = STORE_SQLITE;
        if (cfg->store.sqlite_file && *cfg->store.sqlite_file) {
            p.target = cfg->store.sqlite_file;
        } else {
            if (mkdir(cfg->server.data_dir, 0750) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "server.data_dir '%s': %s", cfg->server.data_dir,
                         strerror(errno));
                return -errno;
            }
            if ((size_t)snprintf(path, sizeof path, "%s/rtcd.db", cfg->server.data_dir) >=
                sizeof path) {
                snprintf(err, errlen, "server.data_dir is too long");
                return -ENAMETOOLONG;
            }
            p.target = path;
        }
    }
    return store_open(out, &p, err, errlen);
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->db)
        s->db->ops->close(s->db);
    free(s);
}

const char *store_errmsg(const struct store *s)
{
    return s->db->errmsg;
}

const char *store_backend_name(const struct store *s)
{
    return s->backend == STORE_POSTGRES ? "postgres" : "sqlite";
}

const char *store_realm(const struct store *s)
{
    return s->realm;
}

int store_schema_version(const struct store *s)
{
    return s->version;
}

/* ---- users ---- */

static int user_insert(struct store *s, const struct store_user_new *u, int64_t now)
{
    static const char *const sql =
        "INSERT INTO users (name, display, enabled, ha1_md5, ha1_sha256, created_ms, updated_ms)"
        " VALUES ($1, $2, 1, $3, $4, $5, $5)";
    if (!store_name_valid(u->name) || u->password.len == 0 ||
        u->password.len > STORE_PASSWORD_MAX || memchr(u->password.s, 0, u->password.len) ||
        !store__text_ok(u->display, STORE_DISPLAY_MAX))
        return -EINVAL;
    char md5[33], sha[65];
    int rc = store_ha1(u->name, str_cstr(s->realm), u->password, md5, sha);
    if (rc < 0)
        return rc;
    struct db_val p[] = {dbv_text(u->name), dbv_text(u->display), dbv_cstr(md5), dbv_cstr(sha),
                         dbv_int(now)};
    return db_exec(s->db, sql, p, 5, NULL, NULL);
}

int store_user_add(struct store *s, const struct store_user_new *u)
{
    return user_insert(s, u, (int64_t)clock_wall_ms());
}

struct import_ctx {
    const struct store_user_new *v;
    size_t n, *bad;
};

static int import_fn(struct store *s, void *arg)
{
    struct import_ctx *c = arg;
    int64_t now = (int64_t)clock_wall_ms();
    for (size_t i = 0; i < c->n; i++) {
        int rc = user_insert(s, &c->v[i], now);
        if (rc < 0) {
            if (c->bad)
                *c->bad = i;
            return rc;
        }
    }
    return 0;
}

int store_user_import(struct store *s, const struct store_user_new *v, size_t n, size_t *bad)
{
    struct import_ctx c = {v, n, bad};
    return store__txn(s, import_fn, &c);
}

static int changes_or_enoent(struct store *s, const char *sql, const struct db_val *p, size_t n)
{
    int64_t ch = 0;
    int rc = s->db->ops->exec(s->db, sql, p, n, NULL, NULL, &ch);
    if (rc == 0 && ch == 0)
        rc = -ENOENT;
    return rc;
}

static int user_del_fn(struct store *s, void *arg)
{
    static const char *const q_off = "DELETE FROM offline_msg WHERE recipient = $1";
    static const char *const q_user = "DELETE FROM users WHERE name = $1";
    const str *name = arg;
    struct db_val p[] = {dbv_text(*name)};
    int rc = db_exec(s->db, q_off, p, 1, NULL, NULL);
    if (rc == 0)
        rc = changes_or_enoent(s, q_user, p, 1);
    return rc;
}

int store_user_del(struct store *s, str name)
{
    return store__txn(s, user_del_fn, &name);
}

#define USER_COLS "name, display, enabled, ha1_md5, ha1_sha256, created_ms, updated_ms"

static void user_from_row(const struct db_row *r, struct store_user *u)
{
    store__col_copy(u->name, sizeof u->name, r->col[0]);
    store__col_copy(u->display, sizeof u->display, r->col[1]);
    u->enabled = store__db_i64(r, 2) != 0;
    store__col_copy(u->ha1_md5, sizeof u->ha1_md5, r->col[3]);
    store__col_copy(u->ha1_sha256, sizeof u->ha1_sha256, r->col[4]);
    u->created_ms = store__db_i64(r, 5);
    u->updated_ms = store__db_i64(r, 6);
}

struct get_ctx {
    struct store_user *u;
    bool found;
};

static int user_get_row(void *ctx, const struct db_row *r)
{
    struct get_ctx *c = ctx;
    user_from_row(r, c->u);
    c->found = true;
    return 0;
}

int store_user_get(struct store *s, str name, struct store_user *out)
{
    static const char *const sql = "SELECT " USER_COLS " FROM users WHERE name = $1";
    struct get_ctx c = {out, false};
    struct db_val p[] = {dbv_text(name)};
    int rc = db_exec(s->db, sql, p, 1, user_get_row, &c);
    if (rc == 0 && !c.found)
        rc = -ENOENT;
    return rc;
}

int store_user_passwd(struct store *s, str name, str password)
{
    static const char *const sql =
        "UPDATE users SET ha1_md5 = $2, ha1_sha256 = $3, updated_ms = $4 WHERE name = $1";
    if (password.len == 0 || password.len > STORE_PASSWORD_MAX ||
        memchr(password.s, 0, password.len))
        return -EINVAL;
    char md5[33], sha[65];
    int rc = store_ha1(name, str_cstr(s->realm), password, md5, sha);
    if (rc < 0)
        return rc;
    struct db_val p[] = {dbv_text(name), dbv_cstr(md5), dbv_cstr(sha),
                         dbv_int((int64_t)clock_wall_ms())};
    return changes_or_enoent(s, sql, p, 4);
}

int store_user_set_enabled(struct store *s, str name, bool enabled)
{
    static const char *const sql = "UPDATE users SET enabled = $2, updated_ms = $3 WHERE name = $1";
    struct db_val p[] = {dbv_text(name), dbv_int(enabled), dbv_int((int64_t)clock_wall_ms())};
    return changes_or_enoent(s, sql, p, 3);
}

int store_user_set_display(struct store *s, str name, str display)
{
    static const char *const sql = "UPDATE users SET display = $2, updated_ms = $3 WHERE name = $1";
    if (!store__text_ok(display, STORE_DISPLAY_MAX))
        return -EINVAL;
    struct db_val p[] = {dbv_text(name), dbv_text(display), dbv_int((int64_t)clock_wall_ms())};
    return changes_or_enoent(s, sql, p, 3);
}

struct list_ctx {
    store_user_fn cb;
    void *ctx;
};

static int user_list_row(void *ctx, const struct db_row *r)
{
    struct list_ctx *c = ctx;
    struct store_user u;
    user_from_row(r, &u);
    return c->cb(c->ctx, &u);
}

int store_user_list(struct store *s, store_user_fn cb, void *ctx)
{
    static const char *const sql = "SELECT " USER_COLS " FROM users ORDER BY name";
    struct list_ctx c = {cb, ctx};
    return db_exec(s->db, sql, NULL, 0, user_list_row, &c);
}

int store_users_seq(struct store *s, int64_t *out)
{
    static const char *const sql = "SELECT value FROM meta WHERE key = 'users_seq'";
    return store__db_query_i64(s->db, sql, NULL, 0, out);
}

/* ---- groups ---- */

int store_group_add(struct store *s, str name)
{
    static const char *const sql = "INSERT INTO grp (name, created_ms) VALUES ($1, $2)";
    if (!store_name_valid(name))
        return -EINVAL;
    struct db_val p[] = {dbv_text(name), dbv_int((int64_t)clock_wall_ms())};
    return db_exec(s->db, sql, p, 2, NULL, NULL);
}

int store_group_del(struct store *s, str name)
{
    static const char *const sql = "DELETE FROM grp WHERE name = $1";
    struct db_val p[] = {dbv_text(name)};
    return changes_or_enoent(s, sql, p, 1);
}

struct name_ctx {
    store_name_fn cb;
    void *ctx;
    bool any;
};

static int name_row(void *ctx, const struct db_row *r)
{
    struct name_ctx *c = ctx;
    c->any = true;
    return c->cb(c->ctx, r->col[0]);
}

int store_group_list(struct store *s, store_name_fn cb, void *ctx)
{
    static const char *const sql = "SELECT name FROM grp ORDER BY name";
    struct name_ctx c = {cb, ctx, false};
    return db_exec(s->db, sql, NULL, 0, name_row, &c);
}

int store_group_exists(struct store *s, str name)
{
    static const char *const sql = "SELECT COUNT(*) FROM grp WHERE name = $1";
    struct db_val p[] = {dbv_text(name)};
    int64_t n = 0;
    int rc = store__db_query_i64(s->db, sql, p, 1, &n);
    if (rc == 0 && n == 0)
        rc = -ENOENT;
    return rc;
}

int store_group_member_add(struct store *s, str group, str user)
{
    static const char *const sql = "INSERT INTO grp_member (grp, user_name) VALUES ($1, $2)";
    struct db_val p[] = {dbv_text(group), dbv_text(user)};
    return db_exec(s->db, sql, p, 2, NULL, NULL);
}

int store_group_member_del(struct store *s, str group, str user)
{
    static const char *const sql = "DELETE FROM grp_member WHERE grp = $1 AND user_name = $2";
    struct db_val p[] = {dbv_text(group), dbv_text(user)};
    return changes_or_enoent(s, sql, p, 2);
}

int store_group_members(struct store *s, str group, store_name_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT user_name FROM grp_member WHERE grp = $1 ORDER BY user_name";
    int rc = store_group_exists(s, group);
    if (rc < 0)
        return rc;
    struct name_ctx c = {cb, ctx, false};
    struct db_val p[] = {dbv_text(group)};
    return db_exec(s->db, sql, p, 1, name_row, &c);
}

int store_user_groups(struct store *s, str user, store_name_fn cb, void *ctx)
{
    static const char *const sql = "SELECT grp FROM grp_member WHERE user_name = $1 ORDER BY grp";
    struct name_ctx c = {cb, ctx, false};
    struct db_val p[] = {dbv_text(user)};
    return db_exec(s->db, sql, p, 1, name_row, &c);
}
