/*
 * store/pres_sync — what the presence agent needs to keep its in-memory copy
 * of presence rules and contact lists in step with the store: whole-table
 * reads at start, and the change log (migration 5) that tells which owners
 * were edited since, by rtcctl, the HTTP API or anyone else.
 */
#include <errno.h>

#include "store/impl.h"

struct all_ctx {
    store_pres_rule_all_fn rule;
    store_pair_fn pair;
    store_pres_change_fn change;
    void *ctx;
};

static int rule_row(void *ctx, const struct db_row *r)
{
    struct all_ctx *c = ctx;
    return c->rule(c->ctx, r->col[0], r->col[1], (enum store_pres_action)store__db_i64(r, 2));
}

int store_pres_rule_all(struct store *s, store_pres_rule_all_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT owner, watcher, action FROM presence_rule ORDER BY owner, watcher";
    struct all_ctx c = {.rule = cb, .ctx = ctx};
    return db_exec(s->db, sql, NULL, 0, rule_row, &c);
}

static int pair_row(void *ctx, const struct db_row *r)
{
    struct all_ctx *c = ctx;
    return c->pair(c->ctx, r->col[0], r->col[1]);
}

int store_contact_all(struct store *s, store_pair_fn cb, void *ctx)
{
    static const char *const sql = "SELECT owner, uri FROM contact ORDER BY owner, uri";
    struct all_ctx c = {.pair = cb, .ctx = ctx};
    return db_exec(s->db, sql, NULL, 0, pair_row, &c);
}

static int change_row(void *ctx, const struct db_row *r)
{
    struct all_ctx *c = ctx;
    return c->change(c->ctx, store__db_i64(r, 0), r->col[1]);
}

int store_pres_changes(struct store *s, int64_t after, store_pres_change_fn cb, void *ctx)
{
    static const char *const sql =
        "SELECT id, owner FROM pres_change WHERE id > $1 ORDER BY id LIMIT 10000";
    struct all_ctx c = {.change = cb, .ctx = ctx};
    struct db_val p[] = {dbv_int(after)};
    return db_exec(s->db, sql, p, 1, change_row, &c);
}

int store_pres_changes_last(struct store *s, int64_t *out)
{
    return store__db_query_i64(s->db, "SELECT COALESCE(MAX(id), 0) FROM pres_change", NULL, 0,
                               out);
}

int store_pres_changes_trim(struct store *s, int64_t before_ms)
{
    struct db_val p[] = {dbv_int(before_ms)};
    return db_exec(s->db, "DELETE FROM pres_change WHERE at_ms < $1", p, 1, NULL, NULL);
}
