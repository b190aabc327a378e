/*
 * store/features — the store's side of the messaging and call features
 * (docs/messaging.md, docs/call-features.md): the change counter rtcd polls
 * to reload forwarding rules and groups, the whole forwarding table, every
 * group membership, expired offline messages, and the broadcast outbox that
 * rtcctl writes and rtcd takes.
 */
#include <errno.h>
#include <string.h>

#include "base/clock.h"
#include "store/impl.h"

int store_features_seq(struct store *s, int64_t *out)
{
    static const char *const sql = "SELECT value FROM meta WHERE key = 'features_seq'";
    return store__db_query_i64(s->db, sql, NULL, 0, out);
}

struct fwd_list_ctx {
    store_forward_fn cb;
    void *ctx;
};

static int fwd_list_row(void *ctx, const struct db_row *r)
{
    struct fwd_list_ctx *c = ctx;
    struct store_forward f;
    memset(&f, 0, sizeof f);
    store__col_copy(f.unconditional, sizeof f.unconditional, r->col[1]);
    store__col_copy(f.busy, sizeof f.busy, r->col[2]);
    store__col_copy(f.no_answer, sizeof f.no_answer, r->col[3]);
    f.no_answer_secs = (uint32_t)store__db_i64(r, 4);
    store__col_copy(f.not_registered, sizeof f.not_registered, r->col[5]);
    f.dnd = store__db_i64(r, 6) != 0;
    return c->cb(c->ctx, r->col[0], &f);
}

int store_forward_list(struct store *s, store_forward_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT user_name, unconditional, busy, no_answer, no_answer_secs, not_registered, dnd"
        " FROM forwarding ORDER BY user_name";
    struct fwd_list_ctx c = {cb, ctx};
    return db_exec(s->db, sql, NULL, 0, fwd_list_row, &c);
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

int store_group_all_members(struct store *s, store_member_fn cb, void *ctx)
{
    /* a group without members comes once with an empty user */
    static const char *const sql =
        "SELECT g.name, COALESCE(m.user_name, '') FROM grp g"
        " LEFT JOIN grp_member m ON m.grp = g.name ORDER BY g.name, m.user_name";
    struct member_ctx c = {cb, ctx};
    return db_exec(s->db, sql, NULL, 0, member_row, &c);
}

int store_offline_expire(struct store *s, int64_t now_ms, int64_t *removed)
{
    static const char *const sql =
        "DELETE FROM offline_msg WHERE expires_ms > 0 AND expires_ms <= $1";
    struct db_val p[] = {dbv_int(now_ms)};
    int64_t n = 0;
    int rc = s->db->ops->exec(s->db, sql, p, 1, NULL, NULL, &n);
    if (rc == 0 && removed)
        *removed = n;
    return rc;
}

/* ---- the broadcast outbox ---- */

int store_broadcast_add(struct store *s, const struct store_broadcast *b, int64_t *id_out)
{
    static const char *const sql =
        "INSERT INTO broadcast (created_ms, sender, grp, offline_too, content_type, body,"
        " expires_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
    if (!store__text_ok(b->sender, STORE_URI_MAX) || b->sender.len == 0 ||
        (b->group.len && !store_name_valid(b->group)) ||
        !store__text_ok(b->content_type, STORE_CTYPE_MAX) || b->content_type.len == 0 ||
        b->body.len > STORE_BODY_MAX || !store__text_ok(b->body, STORE_BODY_MAX) ||
        b->expires_ms < 0)
        return -EINVAL;
    struct db_val p[] = {dbv_int((int64_t)clock_wall_ms()), dbv_text(b->sender),
                         dbv_text(b->group),
                         dbv_int(b->offline_too),
                         dbv_text(b->content_type),
                         dbv_text(b->body),
                         dbv_int(b->expires_ms)};
    int64_t id = 0;
    int rc = store__db_query_i64(s->db, sql, p, 7, &id);
    if (rc == 0 && id_out)
        *id_out = id;
    return rc;
}

struct bc_ctx {
    store_broadcast_fn cb;
    void *ctx;
};

static int bc_row(void *ctx, const struct db_row *r)
{
    struct bc_ctx *c = ctx;
    struct store_broadcast b = {
        .id = store__db_i64(r, 0),
        .created_ms = store__db_i64(r, 1),
        .sender = r->col[2],
        .group = r->col[3],
        .offline_too = store__db_i64(r, 4) != 0,
        .content_type = r->col[5],
        .body = r->col[6],
        .taken_ms = store__db_i64(r, 7),
        .expires_ms = store__db_i64(r, 8),
    };
    return c->cb(c->ctx, &b);
}

static int take_fn(struct store *s, void *arg)
{
    static const char *const q_sel =
        "SELECT id, created_ms, sender, grp, offline_too, content_type, body, taken_ms, expires_ms"
        " FROM broadcast WHERE taken_ms = 0 ORDER BY id LIMIT 16";
    static const char *const q_mark = "UPDATE broadcast SET taken_ms = $1 WHERE taken_ms = 0"
                                      " AND id IN (SELECT id FROM broadcast WHERE taken_ms = 0"
                                      " ORDER BY id LIMIT 16)";
    static const char *const q_lock = "SELECT pg_advisory_xact_lock(72430003)";
    struct bc_ctx *c = arg;
    int rc = s->db->dialect == DB_PG ? db_exec(s->db, q_lock, NULL, 0, NULL, NULL) : 0;
    if (rc == 0)
        rc = db_exec(s->db, q_sel, NULL, 0, bc_row, c);
    struct db_val p[] = {dbv_int((int64_t)clock_wall_ms())};
    if (rc == 0)
        rc = db_exec(s->db, q_mark, p, 1, NULL, NULL);
    return rc;
}

int store_broadcast_take(struct store *s, store_broadcast_fn cb, void *ctx)
{
    struct bc_ctx c = {cb, ctx};
    return store__txn(s, take_fn, &c);
}

int store_broadcast_get(struct store *s, int64_t id, store_broadcast_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT id, created_ms, sender, grp, offline_too, content_type, body, taken_ms, expires_ms"
        " FROM broadcast WHERE id = $1";
    struct bc_ctx c = {cb, ctx};
    struct db_val p[] = {dbv_int(id)};
    return db_exec(s->db, sql, p, 1, bc_row, &c);
}

int store_broadcast_purge(struct store *s, int64_t before_ms)
{
    static const char *const sql = "DELETE FROM broadcast WHERE taken_ms > 0 AND taken_ms < $1";
    struct db_val p[] = {dbv_int(before_ms)};
    return db_exec(s->db, sql, p, 1, NULL, NULL);
}
