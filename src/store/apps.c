/*
 * store/apps — the apps table (notification senders, bots, channel
 * publishers: name, scopes, SIP address, webhook URL, key hash, rate limit)
 * and the channel rules. Keys are random, shown once, stored as SHA-256 hex.
 * Triggers bump meta.apps_seq on every change so rtcd reloads its copy.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/clock.h"
#include "base/random.h"
#include "store/db.h"
#include "store/impl.h"

bool store_app_scopes_valid(str sc)
{
    static const char *const names[] = {"notify", "bot", "channels"};
    bool seen[3] = {false, false, false};
    if (sc.len == 0 || sc.len > STORE_APP_SCOPES_MAX)
        return false;
    size_t i = 0;
    while (i <= sc.len) {
        size_t j = i;
        while (j < sc.len && sc.s[j] != ',')
            j++;
        str w = str_trim(str_make(sc.s + i, j - i));
        bool ok = false;
        for (size_t k = 0; k < 3; k++)
            if (str_eq(w, str_cstr(names[k])) && !seen[k])
                ok = seen[k] = true;
        if (!ok)
            return false;
        i = j + 1;
    }
    return true;
}

int store_app_key_hash(str key, char out[65])
{
    unsigned char dig[32];
    unsigned int n = 0;
    if (!EVP_Digest(key.s, key.len, dig, &n, EVP_sha256(), NULL))
        return -ENOMEM;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[dig[i] >> 4];
        out[2 * i + 1] = hex[dig[i] & 15];
    }
    out[64] = 0;
    return 0;
}

static int new_key(char *key_out, char hash[65])
{
    int rc = random_token(key_out, STORE_APP_KEY_LEN);
    if (rc == 0)
        rc = store_app_key_hash(str_make(key_out, STORE_APP_KEY_LEN), hash);
    return rc;
}

static bool url_ok(str u)
{
    if (u.len == 0)
        return true;
    if (u.len > STORE_URI_MAX ||
        !(str_has_caseprefix(u, STR("http://")) || str_has_caseprefix(u, STR("https://"))))
        return false;
    for (size_t i = 0; i < u.len; i++)
        if ((unsigned char)u.s[i] <= ' ' || (unsigned char)u.s[i] >= 127)
            return false;
    return true;
}

static bool address_ok(str a)
{
    if (a.len == 0)
        return true;
    if (a.len > STORE_URI_MAX || !str_has_caseprefix(a, STR("sip:")))
        return false;
    ssize_t at = str_find_char(a, '@');
    if (at < 5 || (size_t)at + 1 >= a.len)
        return false;
    if (!store_name_valid(str_make(a.s + 4, (size_t)at - 4)))
        return false;
    for (size_t i = (size_t)at + 1; i < a.len; i++)
        if ((unsigned char)a.s[i] <= ' ' || (unsigned char)a.s[i] >= 127 || a.s[i] == ';' ||
            a.s[i] == '>' || a.s[i] == '<')
            return false;
    return true;
}

static int addr_taken(void *ctx, const struct db_row *r)
{
    (void)r;
    *(bool *)ctx = true;
    return 0;
}

int store_app_add(struct store *s, const struct store_app *a, char *key_out)
{
    static const char *const q_addr = "SELECT name FROM app WHERE address = $1";
    static const char *const sql =
        "INSERT INTO app (name, scopes, address, webhook, key_hash, rate_per_min, created_ms,"
        " updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
    str name = str_cstr(a->name), addr = str_cstr(a->address);
    if (!store_name_valid(name) || !store_app_scopes_valid(str_cstr(a->scopes)) ||
        !address_ok(addr) || !url_ok(str_cstr(a->webhook)))
        return -EINVAL;
    if (addr.len) {
        bool taken = false;
        struct db_val p[] = {dbv_text(addr)};
        int rc = db_exec(s->db, q_addr, p, 1, addr_taken, &taken);
        if (rc < 0)
            return rc;
        if (taken)
            return -EEXIST;
    }
    char hash[65];
    int rc = new_key(key_out, hash);
    if (rc < 0)
        return rc;
    struct db_val p[] = {dbv_text(name),
                         dbv_cstr(a->scopes),
                         dbv_text(addr),
                         dbv_cstr(a->webhook),
                         dbv_cstr(hash),
                         dbv_int(a->rate_per_min),
                         dbv_int((int64_t)clock_wall_ms())};
    return db_exec(s->db, sql, p, 7, NULL, NULL);
}

int store_app_rotate(struct store *s, str name, char *key_out)
{
    static const char *const sql = "UPDATE app SET key_hash = $2, updated_ms = $3 WHERE name = $1";
    char hash[65];
    int rc = new_key(key_out, hash);
    if (rc < 0)
        return rc;
    struct db_val p[] = {dbv_text(name), dbv_cstr(hash), dbv_int((int64_t)clock_wall_ms())};
    int64_t ch = 0;
    rc = s->db->ops->exec(s->db, sql, p, 3, NULL, NULL, &ch);
    return rc == 0 && ch == 0 ? -ENOENT : rc;
}

int store_app_del(struct store *s, str name)
{
    static const char *const sql = "DELETE FROM app WHERE name = $1";
    struct db_val p[] = {dbv_text(name)};
    int64_t ch = 0;
    int rc = s->db->ops->exec(s->db, sql, p, 1, NULL, NULL, &ch);
    return rc == 0 && ch == 0 ? -ENOENT : rc;
}

struct app_ctx {
    store_app_fn cb;
    void *ctx;
    struct store_app *one;
    bool found;
};

static int app_row(void *ctx, const struct db_row *r)
{
    struct app_ctx *c = ctx;
    struct store_app a, *o = c->one ? c->one : &a;
    memset(o, 0, sizeof *o);
    store__col_copy(o->name, sizeof o->name, r->col[0]);
    store__col_copy(o->scopes, sizeof o->scopes, r->col[1]);
    store__col_copy(o->address, sizeof o->address, r->col[2]);
    store__col_copy(o->webhook, sizeof o->webhook, r->col[3]);
    store__col_copy(o->key_hash, sizeof o->key_hash, r->col[4]);
    o->rate_per_min = (uint32_t)store__db_i64(r, 5);
    o->created_ms = store__db_i64(r, 6);
    o->updated_ms = store__db_i64(r, 7);
    c->found = true;
    return c->cb ? c->cb(c->ctx, o) : 0;
}

#define APP_COLS "name, scopes, address, webhook, key_hash, rate_per_min, created_ms, updated_ms"

int store_app_get(struct store *s, str name, struct store_app *out)
{
    static const char *const sql = "SELECT " APP_COLS " FROM app WHERE name = $1";
    struct app_ctx c = {NULL, NULL, out, false};
    struct db_val p[] = {dbv_text(name)};
    int rc = db_exec(s->db, sql, p, 1, app_row, &c);
    return rc == 0 && !c.found ? -ENOENT : rc;
}

int store_app_list(struct store *s, store_app_fn cb, void *ctx)
{
    static const char *const sql = "SELECT " APP_COLS " FROM app ORDER BY name";
    struct app_ctx c = {cb, ctx, NULL, false};
    return db_exec(s->db, sql, NULL, 0, app_row, &c);
}

int store_apps_seq(struct store *s, int64_t *out)
{
    static const char *const sql = "SELECT CAST(value AS BIGINT) FROM meta WHERE key = 'apps_seq'";
    return store__db_query_i64(s->db, sql, NULL, 0, out);
}

/* ---- channel rules ---- */

bool store_channel_rule_valid(str r)
{
    if (r.len == 0 || r.len > STORE_RULE_MAX)
        return false;
    size_t i = 0;
    while (i <= r.len) {
        size_t j = i;
        while (j < r.len && r.s[j] != ',')
            j++;
        str w = str_trim(str_make(r.s + i, j - i));
        bool ok = str_eq(w, STR("users")) || str_eq(w, STR("apps")) || str_eq(w, STR("any"));
        if (!ok) {
            static const char *const pre[] = {"group:", "app:", "user:"};
            for (size_t k = 0; k < 3 && !ok; k++) {
                str p = str_cstr(pre[k]);
                ok = str_has_prefix(w, p) && store_name_valid(str_skip(w, p.len));
            }
        }
        if (!ok)
            return false;
        i = j + 1;
    }
    return true;
}

int store_channel_put(struct store *s, const struct store_channel *c)
{
    static const char *const q_sq =
        "INSERT INTO channel (name, subscribe, publish, created_ms) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (name) DO UPDATE SET subscribe = excluded.subscribe,"
        " publish = excluded.publish";
    if (!store_name_valid(str_cstr(c->name)) || !store_channel_rule_valid(str_cstr(c->subscribe)) ||
        !store_channel_rule_valid(str_cstr(c->publish)))
        return -EINVAL;
    struct db_val p[] = {dbv_cstr(c->name), dbv_cstr(c->subscribe), dbv_cstr(c->publish),
                         dbv_int((int64_t)clock_wall_ms())};
    return db_exec(s->db, q_sq, p, 4, NULL, NULL);
}

int store_channel_del(struct store *s, str name)
{
    static const char *const sql = "DELETE FROM channel WHERE name = $1";
    struct db_val p[] = {dbv_text(name)};
    int64_t ch = 0;
    int rc = s->db->ops->exec(s->db, sql, p, 1, NULL, NULL, &ch);
    return rc == 0 && ch == 0 ? -ENOENT : rc;
}

struct chan_ctx {
    store_channel_fn cb;
    void *ctx;
};

static int chan_row(void *ctx, const struct db_row *r)
{
    struct chan_ctx *c = ctx;
    struct store_channel ch;
    memset(&ch, 0, sizeof ch);
    store__col_copy(ch.name, sizeof ch.name, r->col[0]);
    store__col_copy(ch.subscribe, sizeof ch.subscribe, r->col[1]);
    store__col_copy(ch.publish, sizeof ch.publish, r->col[2]);
    ch.created_ms = store__db_i64(r, 3);
    return c->cb(c->ctx, &ch);
}

int store_channel_list(struct store *s, store_channel_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT name, subscribe, publish, created_ms FROM channel ORDER BY name";
    struct chan_ctx c = {cb, ctx};
    return db_exec(s->db, sql, NULL, 0, chan_row, &c);
}

int store_channel_member_set(struct store *s, str channel, str user, bool join)
{
    static const char *const q_add =
        "INSERT INTO channel_member (channel, user_name) VALUES ($1, $2)"
        " ON CONFLICT (channel, user_name) DO NOTHING";
    static const char *const q_del =
        "DELETE FROM channel_member WHERE channel = $1 AND user_name = $2";
    if (!store_name_valid(channel) || !store_name_valid(user))
        return -EINVAL;
    struct db_val p[] = {dbv_text(channel), dbv_text(user)};
    return db_exec(s->db, join ? q_add : q_del, p, 2, NULL, NULL);
}

int store_channel_member_drop(struct store *s, str user)
{
    static const char *const sql = "DELETE FROM channel_member WHERE user_name = $1";
    struct db_val p[] = {dbv_text(user)};
    return db_exec(s->db, sql, p, 1, NULL, NULL);
}

struct member_ctx {
    store_member_fn cb;
    void *ctx;
};

static int member_row(void *ctx, const struct db_row *r)
{
    struct member_ctx *c = ctx;
    return c->cb(c->ctx, r->col[0], r->col[1]);
}

int store_channel_member_list(struct store *s, store_member_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT channel, user_name FROM channel_member ORDER BY channel, user_name";
    struct member_ctx c = {cb, ctx};
    return db_exec(s->db, sql, NULL, 0, member_row, &c);
}
