/*
 * store/data — contact lists, presence rules, forwarding, offline messages,
 * the archive, API keys, the registrations snapshot, the audit log, stats
 * and the copy between stores. The contracts are in store.h.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/random.h"
#include "store/impl.h"

static int changes_or_enoent(struct store *s, const char *sql, const struct db_val *p, size_t n)
{
    int64_t ch = 0;
    int rc = s->db->ops->exec(s->db, sql, p, n, NULL, NULL, &ch);
    if (rc == 0 && ch == 0)
        rc = -ENOENT;
    return rc;
}

/* ---- contact lists ---- */

int store_contact_put(struct store *s, const struct store_contact *c)
{
    static const char *const sql =
        "INSERT INTO contact (owner, uri, display, label) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (owner, uri) DO UPDATE SET display = excluded.display,"
        " label = excluded.label";
    if (!store_name_valid(c->owner) || c->uri.len == 0 || !store__text_ok(c->uri, STORE_URI_MAX) ||
        !store__text_ok(c->display, STORE_DISPLAY_MAX) || !store__text_ok(c->label, STORE_NAME_MAX))
        return -EINVAL;
    struct db_val p[] = {dbv_text(c->owner), dbv_text(c->uri), dbv_text(c->display),
                         dbv_text(c->label)};
    return db_exec(s->db, sql, p, 4, NULL, NULL);
}

int store_contact_del(struct store *s, str owner, str uri)
{
    static const char *const sql = "DELETE FROM contact WHERE owner = $1 AND uri = $2";
    struct db_val p[] = {dbv_text(owner), dbv_text(uri)};
    return changes_or_enoent(s, sql, p, 2);
}

struct contact_ctx {
    store_contact_fn cb;
    void *ctx;
};

static int contact_row(void *ctx, const struct db_row *r)
{
    struct contact_ctx *c = ctx;
    struct store_contact e = {r->col[0], r->col[1], r->col[2], r->col[3]};
    return c->cb(c->ctx, &e);
}

int store_contact_list(struct store *s, str owner, store_contact_fn cb, void *ctx)
{
    static const char *const sql = "SELECT owner, uri, display, label FROM contact"
                                   " WHERE owner = $1 ORDER BY label, uri";
    struct contact_ctx c = {cb, ctx};
    struct db_val p[] = {dbv_text(owner)};
    return db_exec(s->db, sql, p, 1, contact_row, &c);
}

/* ---- presence rules ---- */

static const char *const pres_names[] = {NULL, "allow", "block", "polite-block", "pending"};

const char *store_pres_action_name(enum store_pres_action a)
{
    return a >= STORE_PRES_ALLOW && a <= STORE_PRES_PENDING ? pres_names[a] : "?";
}

int store_pres_action_parse(str name, enum store_pres_action *out)
{
    for (int i = STORE_PRES_ALLOW; i <= STORE_PRES_PENDING; i++)
        if (str_eq(name, str_cstr(pres_names[i]))) {
            *out = (enum store_pres_action)i;
            return 0;
        }
    return -EINVAL;
}

int store_pres_rule_set(struct store *s, str owner, str watcher, enum store_pres_action a)
{
    static const char *const sql =
        "INSERT INTO presence_rule (owner, watcher, action) VALUES ($1, $2, $3)"
        " ON CONFLICT (owner, watcher) DO UPDATE SET action = excluded.action";
    if (!store_name_valid(owner) || watcher.len == 0 || !store__text_ok(watcher, STORE_URI_MAX) ||
        a < STORE_PRES_ALLOW || a > STORE_PRES_PENDING)
        return -EINVAL;
    struct db_val p[] = {dbv_text(owner), dbv_text(watcher), dbv_int(a)};
    return db_exec(s->db, sql, p, 3, NULL, NULL);
}

struct pres_ctx {
    store_pres_rule_fn cb;
    void *ctx;
    enum store_pres_action one;
    bool found;
};

static int pres_row(void *ctx, const struct db_row *r)
{
    struct pres_ctx *c = ctx;
    c->found = true;
    c->one = (enum store_pres_action)store__db_i64(r, 1);
    return c->cb ? c->cb(c->ctx, r->col[0], c->one) : 0;
}

int store_pres_rule_get(struct store *s, str owner, str watcher, enum store_pres_action *out)
{
    static const char *const sql =
        "SELECT watcher, action FROM presence_rule WHERE owner = $1 AND watcher = $2";
    struct pres_ctx c = {0};
    struct db_val p[] = {dbv_text(owner), dbv_text(watcher)};
    int rc = db_exec(s->db, sql, p, 2, pres_row, &c);
    if (rc == 0 && !c.found)
        return -ENOENT;
    if (rc == 0)
        *out = c.one;
    return rc;
}

int store_pres_rule_del(struct store *s, str owner, str watcher)
{
    static const char *const sql = "DELETE FROM presence_rule WHERE owner = $1 AND watcher = $2";
    struct db_val p[] = {dbv_text(owner), dbv_text(watcher)};
    return changes_or_enoent(s, sql, p, 2);
}

int store_pres_rule_list(struct store *s, str owner, store_pres_rule_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT watcher, action FROM presence_rule WHERE owner = $1 ORDER BY watcher";
    struct pres_ctx c = {.cb = cb, .ctx = ctx};
    struct db_val p[] = {dbv_text(owner)};
    return db_exec(s->db, sql, p, 1, pres_row, &c);
}

/* ---- forwarding ---- */

int store_forward_set(struct store *s, str user, const struct store_forward *f)
{
    static const char *const sql =
        "INSERT INTO forwarding (user_name, unconditional, busy, no_answer, no_answer_secs,"
        " not_registered, dnd) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (user_name) DO UPDATE SET unconditional = excluded.unconditional,"
        " busy = excluded.busy, no_answer = excluded.no_answer,"
        " no_answer_secs = excluded.no_answer_secs, not_registered = excluded.not_registered,"
        " dnd = excluded.dnd";
    const char *t[] = {f->unconditional, f->busy, f->no_answer, f->not_registered};
    for (size_t i = 0; i < 4; i++)
        if (!store__text_ok(str_cstr(t[i]), STORE_URI_MAX))
            return -EINVAL;
    if (!store_name_valid(user) || f->no_answer_secs > 3600)
        return -EINVAL;
    struct db_val p[] = {
        dbv_text(user),         dbv_cstr(f->unconditional), dbv_cstr(f->busy),
        dbv_cstr(f->no_answer), dbv_int(f->no_answer_secs), dbv_cstr(f->not_registered),
        dbv_int(f->dnd)};
    return db_exec(s->db, sql, p, 7, NULL, NULL);
}

struct fwd_ctx {
    struct store_forward *f;
    bool found;
};

static int fwd_row(void *ctx, const struct db_row *r)
{
    struct fwd_ctx *c = ctx;
    struct store_forward *f = c->f;
    store__col_copy(f->unconditional, sizeof f->unconditional, r->col[0]);
    store__col_copy(f->busy, sizeof f->busy, r->col[1]);
    store__col_copy(f->no_answer, sizeof f->no_answer, r->col[2]);
    f->no_answer_secs = (uint32_t)store__db_i64(r, 3);
    store__col_copy(f->not_registered, sizeof f->not_registered, r->col[4]);
    f->dnd = store__db_i64(r, 5) != 0;
    c->found = true;
    return 0;
}

int store_forward_get(struct store *s, str user, struct store_forward *out)
{
    static const char *const sql =
        "SELECT unconditional, busy, no_answer, no_answer_secs, not_registered, dnd"
        " FROM forwarding WHERE user_name = $1";
    memset(out, 0, sizeof *out);
    struct fwd_ctx c = {out, false};
    struct db_val p[] = {dbv_text(user)};
    int rc = db_exec(s->db, sql, p, 1, fwd_row, &c);
    if (rc == 0 && !c.found)
        rc = -ENOENT;
    return rc;
}

int store_forward_del(struct store *s, str user)
{
    static const char *const sql = "DELETE FROM forwarding WHERE user_name = $1";
    struct db_val p[] = {dbv_text(user)};
    return changes_or_enoent(s, sql, p, 1);
}

/* ---- offline messages ---- */

struct enqueue_ctx {
    const struct db_val *p;
    int64_t id;
};

static int enqueue_fn(struct store *s, void *arg)
{
    static const char *const q_lock = "SELECT pg_advisory_xact_lock(hashtext($1))";
    static const char *const q_count = "SELECT COUNT(*) FROM offline_msg WHERE recipient = $1";
    static const char *const q_gone =
        "DELETE FROM offline_msg WHERE recipient = $1 AND expires_ms > 0 AND expires_ms <= $2";
    static const char *const q_ins =
        "INSERT INTO offline_msg (recipient, sender, created_ms, content_type, body, expires_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
    struct enqueue_ctx *c = arg;
    if (s->max_offline) {
        int64_t n = 0;
        /* expired messages do not count against the bound */
        struct db_val g[] = {c->p[0], dbv_int((int64_t)clock_wall_ms())};
        int grc = db_exec(s->db, q_gone, g, 2, NULL, NULL);
        if (grc < 0)
            return grc;
        /* PostgreSQL: several nodes may enqueue for the same user at once; serialise them per
         * recipient so that the bound holds (SQLite's write lock already does) */
        int rc = s->db->dialect == DB_PG ? db_exec(s->db, q_lock, c->p, 1, NULL, NULL) : 0;
        if (rc == 0)
            rc = store__db_query_i64(s->db, q_count, c->p, 1, &n);
        if (rc < 0)
            return rc;
        if (n >= (int64_t)s->max_offline)
            return -EDQUOT;
    }
    return store__db_query_i64(s->db, q_ins, c->p, 6, &c->id);
}

static int enqueue_check(str recipient, str sender, str content_type, str body)
{
    if (recipient.len == 0 || !store__text_ok(recipient, STORE_URI_MAX) ||
        !store__text_ok(sender, STORE_URI_MAX) || !store__text_ok(content_type, STORE_CTYPE_MAX) ||
        body.len > STORE_BODY_MAX)
        return -EINVAL;
    return 0;
}

int store__offline_enqueue_in_txn(struct store *s, str recipient, str sender, int64_t created_ms,
                                  str content_type, str body, int64_t expires_ms,
                                  int64_t *id_out)
{
    int rc = enqueue_check(recipient, sender, content_type, body);
    if (rc < 0)
        return rc;
    struct db_val p[] = {dbv_text(recipient), dbv_text(sender), dbv_int(created_ms),
                         dbv_text(content_type), dbv_blob(body), dbv_int(expires_ms)};
    struct enqueue_ctx c = {p, 0};
    rc = enqueue_fn(s, &c);
    if (rc == 0 && id_out)
        *id_out = c.id;
    return rc;
}

int store_offline_enqueue(struct store *s, str recipient, str sender, int64_t created_ms,
                          str content_type, str body, int64_t *id_out)
{
    return store_offline_enqueue_ttl(s, recipient, sender, created_ms, content_type, body, 0,
                                     id_out);
}

int store_offline_enqueue_ttl(struct store *s, str recipient, str sender, int64_t created_ms,
                              str content_type, str body, int64_t expires_ms, int64_t *id_out)
{
    if (recipient.len == 0 || !store__text_ok(recipient, STORE_URI_MAX) ||
        !store__text_ok(sender, STORE_URI_MAX) || !store__text_ok(content_type, STORE_CTYPE_MAX) ||
        body.len > STORE_BODY_MAX || expires_ms < 0)
        return -EINVAL;
    struct db_val p[] = {dbv_text(recipient), dbv_text(sender), dbv_int(created_ms),
                         dbv_text(content_type), dbv_blob(body), dbv_int(expires_ms)};
    struct enqueue_ctx c = {p, 0};
    int rc = store__txn(s, enqueue_fn, &c);
    if (rc == 0 && id_out)
        *id_out = c.id;
    return rc;
}

struct offline_ctx {
    store_offline_fn cb;
    void *ctx;
};

static int offline_row(void *ctx, const struct db_row *r)
{
    struct offline_ctx *c = ctx;
    struct store_offline_msg m = {
        .id = store__db_i64(r, 0),
        .recipient = r->col[1],
        .sender = r->col[2],
        .created_ms = store__db_i64(r, 3),
        .content_type = r->col[4],
        .body = r->col[5],
        .expires_ms = r->n > 6 ? store__db_i64(r, 6) : 0,
    };
    return c->cb(c->ctx, &m);
}

int store_offline_list(struct store *s, str recipient, uint32_t limit, store_offline_fn cb,
                       void *ctx)
{
    static const char *const sql =
        "SELECT id, recipient, sender, created_ms, content_type, body, expires_ms"
        " FROM offline_msg WHERE recipient = $1 AND (expires_ms = 0 OR expires_ms > $3)"
        " ORDER BY id LIMIT $2";
    struct offline_ctx c = {cb, ctx};
    struct db_val p[] = {dbv_text(recipient), dbv_int(limit ? limit : INT32_MAX),
                         dbv_int((int64_t)clock_wall_ms())};
    return db_exec(s->db, sql, p, 3, offline_row, &c);
}

int store_offline_list_all(struct store *s, uint32_t limit, store_offline_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT id, recipient, sender, created_ms, content_type, body, expires_ms"
        " FROM offline_msg WHERE expires_ms = 0 OR expires_ms > $2"
        " ORDER BY recipient, id LIMIT $1";
    struct offline_ctx c = {cb, ctx};
    struct db_val p[] = {dbv_int(limit ? limit : INT32_MAX), dbv_int((int64_t)clock_wall_ms())};
    return db_exec(s->db, sql, p, 2, offline_row, &c);
}

int store_offline_delete(struct store *s, int64_t id)
{
    static const char *const sql = "DELETE FROM offline_msg WHERE id = $1";
    struct db_val p[] = {dbv_int(id)};
    return changes_or_enoent(s, sql, p, 1);
}

int store_offline_count(struct store *s, str recipient, int64_t *out)
{
    static const char *const q_all = "SELECT COUNT(*) FROM offline_msg";
    static const char *const q_one = "SELECT COUNT(*) FROM offline_msg WHERE recipient = $1";
    struct db_val p[] = {dbv_text(recipient)};
    if (recipient.len == 0)
        return store__db_query_i64(s->db, q_all, NULL, 0, out);
    return store__db_query_i64(s->db, q_one, p, 1, out);
}

/* ---- archive ---- */

/* Copies body replacing NUL bytes and invalid UTF-8 by '?'. */
static int text_clean(str in, struct buf *out)
{
    size_t i = 0;
    while (i < in.len) {
        size_t n = 1;
        unsigned char c = (unsigned char)in.s[i];
        if (c >= 0x80) {
            n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
            if (i + n > in.len || !store__text_ok(str_sub(in, i, n), 4))
                n = 0;
        } else if (c == 0) {
            n = 0;
        }
        int rc = n ? buf_append(out, in.s + i, n) : buf_append_byte(out, '?');
        if (rc < 0)
            return rc;
        i += n ? n : 1;
    }
    return 0;
}

int store_archive_append(struct store *s, str sender, const str *recipients, size_t nrcpt,
                         int64_t at_ms, str content_type, str body, int64_t *id_out)
{
    static const char *const sql =
        "INSERT INTO archive (at_ms, sender, recipients, content_type, body)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id";
    if (!store__text_ok(sender, STORE_URI_MAX) || !store__text_ok(content_type, STORE_CTYPE_MAX) ||
        body.len > STORE_BODY_MAX || nrcpt == 0 || nrcpt > 256)
        return -EINVAL;
    struct buf rc_list, clean;
    buf_init(&rc_list, 256 * (STORE_URI_MAX + 1) + 2);
    buf_init(&clean, 4 * (size_t)STORE_BODY_MAX);
    int rc = buf_append_byte(&rc_list, ',');
    for (size_t i = 0; i < nrcpt && rc == 0; i++) {
        if (recipients[i].len == 0 || !store__text_ok(recipients[i], STORE_URI_MAX) ||
            str_find_char(recipients[i], ',') >= 0)
            rc = -EINVAL;
        if (rc == 0)
            rc = buf_append_str(&rc_list, recipients[i]);
        if (rc == 0)
            rc = buf_append_byte(&rc_list, ',');
    }
    if (rc == 0)
        rc = text_clean(body, &clean);
    if (rc == 0) {
        struct db_val p[] = {dbv_int(at_ms), dbv_text(sender), dbv_text(buf_str(&rc_list)),
                             dbv_text(content_type), dbv_text(buf_str(&clean))};
        int64_t id = 0;
        rc = store__db_query_i64(s->db, sql, p, 5, &id);
        if (rc == 0 && id_out)
            *id_out = id;
    }
    buf_free(&rc_list);
    buf_free(&clean);
    return rc;
}

/* Words of text as an FTS5 query of quoted terms, all required. */
static int fts5_query(str text, struct buf *out)
{
    int rc = 0;
    while (text.len && rc == 0) {
        text = str_ltrim(text);
        size_t n = 0;
        while (n < text.len && text.s[n] != ' ' && text.s[n] != '\t')
            n++;
        if (!n)
            break;
        if (out->len)
            rc = buf_append_byte(out, ' ');
        rc = rc ? rc : buf_append_byte(out, '"');
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = text.s[i] == '"' ? buf_append(out, "\"\"", 2)
                                  : buf_append_byte(out, (uint8_t)text.s[i]);
        rc = rc ? rc : buf_append_byte(out, '"');
        text = str_skip(text, n);
    }
    return rc;
}

struct archive_ctx {
    store_archive_fn cb;
    void *ctx;
};

static int archive_row(void *ctx, const struct db_row *r)
{
    struct archive_ctx *c = ctx;
    str rc = r->col[3];
    if (rc.len >= 2) /* stored as ",a,b," */
        rc = str_sub(rc, 1, rc.len - 2);
    struct store_archive_entry e = {
        .id = store__db_i64(r, 0),
        .at_ms = store__db_i64(r, 1),
        .sender = r->col[2],
        .recipients = rc,
        .content_type = r->col[4],
        .body = r->col[5],
    };
    return c->cb(c->ctx, &e);
}

#define ARCHIVE_COLS "a.id, a.at_ms, a.sender, a.recipients, a.content_type, a.body"
#define ARCHIVE_FILTER_SQ                                                                          \
    " AND ($2 = '' OR a.sender = $2 OR instr(a.recipients, ',' || $2 || ',') > 0)"                 \
    " AND ($3 = '' OR a.sender = $3 OR instr(a.recipients, ',' || $3 || ',') > 0)"                 \
    " AND a.at_ms >= $4 AND a.at_ms < $5 ORDER BY a.at_ms, a.id LIMIT $6"

int store_archive_search(struct store *s, const struct store_archive_query *q, store_archive_fn cb,
                         void *ctx)
{
    static const char *const sq_text =
        "SELECT " ARCHIVE_COLS " FROM archive a WHERE a.id IN"
        " (SELECT rowid FROM archive_fts WHERE archive_fts MATCH $1)" ARCHIVE_FILTER_SQ;
    static const char *const sq_any =
        "SELECT " ARCHIVE_COLS " FROM archive a WHERE $1 = ''" ARCHIVE_FILTER_SQ;
    static const char *const pg =
        "SELECT " ARCHIVE_COLS " FROM archive a"
        " WHERE ($1::text = '' OR a.tsv @@ plainto_tsquery('simple', $1::text))"
        " AND ($2::text = '' OR a.sender = $2::text"
        "  OR strpos(a.recipients, ',' || $2::text || ',') > 0)"
        " AND ($3::text = '' OR a.sender = $3::text"
        "  OR strpos(a.recipients, ',' || $3::text || ',') > 0)"
        " AND a.at_ms >= $4 AND a.at_ms < $5 ORDER BY a.at_ms, a.id LIMIT $6";
    struct buf fq;
    buf_init(&fq, 4096);
    const char *sql = pg;
    str text = str_trim(q->text);
    if (text.len > 1024)
        return -EINVAL;
    int rc = 0;
    if (s->db->dialect == DB_SQLITE) {
        rc = fts5_query(text, &fq);
        text = buf_str(&fq);
        sql = text.len ? sq_text : sq_any;
    }
    if (rc == 0) {
        struct db_val p[] = {dbv_text(text),
                             dbv_text(q->user),
                             dbv_text(q->with),
                             dbv_int(q->since_ms),
                             dbv_int(q->until_ms ? q->until_ms : INT64_MAX),
                             dbv_int(q->limit ? q->limit : 100)};
        struct archive_ctx c = {cb, ctx};
        rc = db_exec(s->db, sql, p, 6, archive_row, &c);
    }
    buf_free(&fq);
    return rc;
}

int store_archive_expire(struct store *s, int64_t before_ms, int64_t *removed)
{
    static const char *const sql = "DELETE FROM archive WHERE at_ms < $1";
    struct db_val p[] = {dbv_int(before_ms)};
    int64_t n = 0;
    int rc = s->db->ops->exec(s->db, sql, p, 1, NULL, NULL, &n);
    if (rc == 0 && removed)
        *removed = n;
    return rc;
}

/* ---- API keys ---- */

static int sha256_hex(str in, char out[65])
{
    unsigned char dig[32];
    unsigned int n = 0;
    if (!EVP_Digest(in.s, in.len, dig, &n, EVP_sha256(), NULL))
        return -ENOMEM;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[dig[i] >> 4];
        out[2 * i + 1] = hex[dig[i] & 15];
    }
    out[64] = 0;
    return 0;
}

int store_apikey_create(struct store *s, str owner, str label, int64_t expires_ms, char key_out[33],
                        int64_t *id_out)
{
    static const char *const sql =
        "INSERT INTO api_key (owner, label, key_hash, created_ms, expires_ms)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id";
    if (!store_name_valid(owner) || !store__text_ok(label, STORE_DISPLAY_MAX))
        return -EINVAL;
    char hash[65];
    int rc = random_token(key_out, 32);
    if (rc == 0)
        rc = sha256_hex(str_make(key_out, 32), hash);
    if (rc < 0)
        return rc;
    struct db_val p[] = {dbv_text(owner), dbv_text(label), dbv_cstr(hash),
                         dbv_int((int64_t)clock_wall_ms()), dbv_int(expires_ms)};
    int64_t id = 0;
    rc = store__db_query_i64(s->db, sql, p, 5, &id);
    if (rc == 0 && id_out)
        *id_out = id;
    return rc;
}

struct key_ctx {
    char *owner;
    int64_t expires;
    bool found;
};

static int key_row(void *ctx, const struct db_row *r)
{
    struct key_ctx *c = ctx;
    store__col_copy(c->owner, STORE_NAME_MAX + 1, r->col[0]);
    c->expires = store__db_i64(r, 1);
    c->found = true;
    return 0;
}

int store_apikey_check(struct store *s, str key, int64_t now_ms, char *owner_out)
{
    static const char *const sql = "SELECT owner, expires_ms FROM api_key WHERE key_hash = $1";
    char hash[65];
    if (key.len == 0 || key.len > 256 || sha256_hex(key, hash) < 0)
        return -ENOENT;
    struct key_ctx c = {owner_out, 0, false};
    struct db_val p[] = {dbv_cstr(hash)};
    int rc = db_exec(s->db, sql, p, 1, key_row, &c);
    if (rc == 0 && (!c.found || (c.expires && c.expires <= now_ms)))
        rc = -ENOENT;
    return rc;
}

int store_apikey_del(struct store *s, int64_t id)
{
    static const char *const sql = "DELETE FROM api_key WHERE id = $1";
    struct db_val p[] = {dbv_int(id)};
    return changes_or_enoent(s, sql, p, 1);
}

/* ---- registrations snapshot ---- */

struct regs_ctx {
    const struct store_reg *v;
    size_t n;
};

static int regs_save_fn(struct store *s, void *arg)
{
    static const char *const q_del = "DELETE FROM registration";
    static const char *const q_ins =
        "INSERT INTO registration (aor, contact, expires_ms, q, instance, reg_id, path,"
        " user_agent, received) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (aor, contact) DO UPDATE SET expires_ms = excluded.expires_ms,"
        " q = excluded.q, instance = excluded.instance, reg_id = excluded.reg_id,"
        " path = excluded.path, user_agent = excluded.user_agent, received = excluded.received";
    struct regs_ctx *c = arg;
    int rc = db_exec(s->db, q_del, NULL, 0, NULL, NULL);
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        const struct store_reg *r = &c->v[i];
        const str *t[] = {&r->aor,  &r->contact,    &r->instance,
                          &r->path, &r->user_agent, &r->received};
        for (size_t k = 0; k < 6; k++)
            if (!store__text_ok(*t[k], STORE_FIELD_MAX))
                return -EINVAL;
        struct db_val p[] = {dbv_text(r->aor),  dbv_text(r->contact),    dbv_int(r->expires_ms),
                             dbv_int(r->q),     dbv_text(r->instance),   dbv_int(r->reg_id),
                             dbv_text(r->path), dbv_text(r->user_agent), dbv_text(r->received)};
        rc = db_exec(s->db, q_ins, p, 9, NULL, NULL);
    }
    return rc;
}

int store_regs_save(struct store *s, const struct store_reg *v, size_t n)
{
    struct regs_ctx c = {v, n};
    return store__txn(s, regs_save_fn, &c);
}

struct reg_load_ctx {
    store_reg_fn cb;
    void *ctx;
};

static int reg_row(void *ctx, const struct db_row *r)
{
    struct reg_load_ctx *c = ctx;
    struct store_reg g = {
        .aor = r->col[0],
        .contact = r->col[1],
        .expires_ms = store__db_i64(r, 2),
        .q = (uint32_t)store__db_i64(r, 3),
        .instance = r->col[4],
        .reg_id = (uint32_t)store__db_i64(r, 5),
        .path = r->col[6],
        .user_agent = r->col[7],
        .received = r->col[8],
    };
    return c->cb(c->ctx, &g);
}

int store_regs_load(struct store *s, store_reg_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT aor, contact, expires_ms, q, instance, reg_id, path, user_agent, received"
        " FROM registration ORDER BY aor, contact";
    struct reg_load_ctx c = {cb, ctx};
    return db_exec(s->db, sql, NULL, 0, reg_row, &c);
}

/* ---- audit ---- */

int store_audit_add(struct store *s, str actor, str action, str target, str detail)
{
    static const char *const sql =
        "INSERT INTO audit (at_ms, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)";
    if (!store__text_ok(actor, STORE_URI_MAX) || !store__text_ok(action, STORE_NAME_MAX) ||
        !store__text_ok(target, STORE_URI_MAX) || !store__text_ok(detail, STORE_FIELD_MAX))
        return -EINVAL;
    struct db_val p[] = {dbv_int((int64_t)clock_wall_ms()), dbv_text(actor), dbv_text(action),
                         dbv_text(target), dbv_text(detail)};
    return db_exec(s->db, sql, p, 5, NULL, NULL);
}

struct audit_ctx {
    store_audit_fn cb;
    void *ctx;
};

static int audit_row(void *ctx, const struct db_row *r)
{
    struct audit_ctx *c = ctx;
    struct store_audit_entry e = {store__db_i64(r, 0), store__db_i64(r, 1), r->col[2],
                                  r->col[3],           r->col[4],           r->col[5]};
    return c->cb(c->ctx, &e);
}

int store_audit_list(struct store *s, uint32_t limit, store_audit_fn cb, void *ctx)
{
    static const char *const sql = "SELECT id, at_ms, actor, action, target, detail FROM"
                                   " (SELECT * FROM audit ORDER BY id DESC LIMIT $1) x ORDER BY id";
    struct audit_ctx c = {cb, ctx};
    struct db_val p[] = {dbv_int(limit ? limit : 100)};
    return db_exec(s->db, sql, p, 1, audit_row, &c);
}

/* ---- stats ---- */

static int stats_row(void *ctx, const struct db_row *r)
{
    int64_t *v = ctx;
    for (size_t i = 0; i < r->n && i < 12; i++)
        v[i] = store__db_i64(r, i);
    return 0;
}

int store_stats_get(struct store *s, struct store_stats *out)
{
    static const char *const sql =
        "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM users WHERE enabled <> 0),"
        " (SELECT COUNT(*) FROM grp), (SELECT COUNT(*) FROM grp_member),"
        " (SELECT COUNT(*) FROM contact), (SELECT COUNT(*) FROM presence_rule),"
        " (SELECT COUNT(*) FROM forwarding), (SELECT COUNT(*) FROM offline_msg),"
        " (SELECT COUNT(*) FROM archive), (SELECT COUNT(*) FROM api_key),"
        " (SELECT COUNT(*) FROM registration), (SELECT COUNT(*) FROM audit)";
    int64_t v[12] = {0};
    int rc = db_exec(s->db, sql, NULL, 0, stats_row, v);
    if (rc < 0)
        return rc;
    *out = (struct store_stats){v[0], v[1], v[2], v[3],  v[4],  v[5],      v[6],
                                v[7], v[8], v[9], v[10], v[11], s->version};
    return 0;
}

/* ---- copy ---- */

/* Tables in dependency order; column types: t text, i integer, b blob. */
static const struct copy_table {
    const char *name, *cols, *types, *serial;
} copy_tables[] = {
    {"users", "name, display, enabled, ha1_md5, ha1_sha256, created_ms, updated_ms", "ttittii",
     NULL},
    {"grp", "name, created_ms", "ti", NULL},
    {"grp_member", "grp, user_name", "tt", NULL},
    {"contact", "owner, uri, display, label", "tttt", NULL},
    {"presence_rule", "owner, watcher, action", "tti", NULL},
    {"forwarding", "user_name, unconditional, busy, no_answer, no_answer_secs, not_registered, dnd",
     "ttttiti", NULL},
    {"api_key", "id, owner, label, key_hash, created_ms, expires_ms", "itttii", "id"},
    {"audit", "id, at_ms, actor, action, target, detail", "iitttt", "id"},
    {"offline_msg", "id, recipient, sender, created_ms, content_type, body, expires_ms", "ittitbi",
     "id"},
    {"archive", "id, at_ms, sender, recipients, content_type, body", "iitttt", "id"},
    {"registration", "aor, contact, expires_ms, q, instance, reg_id, path, user_agent, received",
     "ttiitittt", NULL},
};

struct copy_ctx {
    struct store *dst;
    const char *insert_sql;
    const char *types;
    int64_t rows;
};

static int copy_row(void *ctx, const struct db_row *r)
{
    struct copy_ctx *c = ctx;
    struct db_val p[16];
    size_t n = strlen(c->types);
    if (r->n < n || n > 16)
        return -EIO;
    for (size_t i = 0; i < n; i++) {
        switch (c->types[i]) {
        case 'i':
            p[i] = dbv_int(store__db_i64(r, i));
            break;
        case 'b':
            p[i] = dbv_blob(r->col[i]);
            break;
        default:
            p[i] = dbv_text(r->col[i]);
            break;
        }
    }
    c->rows++;
    return db_exec(c->dst->db, c->insert_sql, p, n, NULL, NULL);
}

struct copy_all {
    struct store *src;
    int64_t rows;
};

static int copy_fn(struct store *dst, void *arg)
{
    struct copy_all *a = arg;
    struct store_stats st;
    int rc = store_stats_get(dst, &st);
    if (rc < 0)
        return rc;
    if (st.users || st.groups || st.offline || st.archive || st.audit || st.api_keys ||
        st.registrations)
        return -ENOTEMPTY;
    struct copy_ctx c = {dst, NULL, NULL, 0};
    for (size_t i = 0; i < sizeof copy_tables / sizeof copy_tables[0] && rc == 0; i++) {
        const struct copy_table *t = &copy_tables[i];
        char sel[512], ins[512], ph[128] = "";
        size_t n = strlen(t->types);
        for (size_t k = 0; k < n; k++) {
            size_t l = strlen(ph);
            snprintf(ph + l, sizeof ph - l, "%s$%zu", k ? ", " : "", k + 1);
        }
        snprintf(sel, sizeof sel, "SELECT %s FROM %s ORDER BY 1", t->cols, t->name);
        snprintf(ins, sizeof ins, "INSERT INTO %s (%s) VALUES (%s)", t->name, t->cols, ph);
        c.insert_sql = ins;
        c.types = t->types;
        rc = db_exec(a->src->db, sel, NULL, 0, copy_row, &c);
        if (rc == 0 && t->serial && dst->db->dialect == DB_PG) {
            char fix[256];
            snprintf(fix, sizeof fix,
                     "SELECT setval(pg_get_serial_sequence('%s', '%s'),"
                     " COALESCE(MAX(%s), 0) + 1, false) FROM %s",
                     t->name, t->serial, t->serial, t->name);
            rc = dst->db->ops->script(dst->db, fix);
        }
    }
    a->rows = c.rows;
    return rc;
}

int store_copy(struct store *src, struct store *dst, int64_t *rows)
{
    struct copy_all a = {src, 0};
    int rc = store__txn(dst, copy_fn, &a);
    if (rc == 0 && rows)
        *rows = a.rows;
    return rc;
}
