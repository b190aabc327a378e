/*
 * store/db — column helpers shared by the two SQL backends (db.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "store/db.h"

/* Column i of r as an integer (0 when NULL, absent or not a number). */
int64_t store__db_i64(const struct db_row *r, size_t i)
{
    if (i >= r->n || !r->col[i].s)
        return 0;
    int64_t v = 0;
    if (str_to_i64(r->col[i], &v) < 0)
        return 0;
    return v;
}

/* Row callback: column 0 into *(int64_t *)ctx. Never fails. */
int store__db_get_i64(void *ctx, const struct db_row *r)
{
    *(int64_t *)ctx = store__db_i64(r, 0);
    return 0;
}

/* Runs a one-integer query; *out = 0 when it returns no row. 0 or the exec error. */
int store__db_query_i64(struct db *db, const char *sql, const struct db_val *p, size_t n,
                        int64_t *out)
{
    *out = 0;
    return db_exec(db, sql, p, n, store__db_get_i64, out);
}
