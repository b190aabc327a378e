/*
 * store/db — internal to src/store: the small SQL layer the two backends
 * implement (db_sqlite.c, db_pg.c). The store's logic (store.c, data.c) is
 * written once against it; dialect differences are chosen with db->dialect.
 *
 * SQL text uses PostgreSQL placeholders ($1, $2, ...); the SQLite backend
 * rewrites them to ?1, ?2 before preparing. Values go in typed
 * (text, integer, blob, null) and come out as bytes: integers as decimal text,
 * blobs as raw bytes (bytea is decoded by the PostgreSQL backend).
 * Not thread-safe: one connection belongs to one thread at a time.
 */
#ifndef RTCD_STORE_DB_H
#define RTCD_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/str.h"

enum db_dialect {
    DB_SQLITE,
    DB_PG,
};

enum db_type {
    DBV_NULL,
    DBV_TEXT,
    DBV_INT,
    DBV_BLOB,
};

struct db_val {
    enum db_type type;
    str s;     /* DBV_TEXT, DBV_BLOB */
    int64_t i; /* DBV_INT */
};

static inline struct db_val dbv_text(str s)
{
    return (struct db_val){DBV_TEXT, s, 0};
}
static inline struct db_val dbv_cstr(const char *s)
{
    return (struct db_val){DBV_TEXT, str_cstr(s), 0};
}
static inline struct db_val dbv_int(int64_t i)
{
    return (struct db_val){DBV_INT, STR_NULL, i};
}
static inline struct db_val dbv_blob(str s)
{
    return (struct db_val){DBV_BLOB, s, 0};
}
static inline struct db_val dbv_null(void)
{
    return (struct db_val){DBV_NULL, STR_NULL, 0};
}

/* One result row: n columns, each bytes (NULL column = s NULL, len 0). Borrowed during the
 * callback only. */
struct db_row {
    size_t n;
    const str *col;
};
/* Returns 0 to go on, or a negative errno to stop (exec returns it). */
typedef int (*db_row_fn)(void *ctx, const struct db_row *r);

struct db;
struct db_ops {
    /* Runs one statement. Errors: -EEXIST (unique violation), -ENOENT (foreign key),
     * -EBUSY (locked past the busy timeout), -EIO (other; errmsg says why). */
    int (*exec)(struct db *db, const char *sql, const struct db_val *params, size_t n, db_row_fn cb,
                void *ctx, int64_t *changes);
    /* Runs several ';'-separated statements without parameters. */
    int (*script)(struct db *db, const char *sql);
    /* write = take the write lock now (SQLite BEGIN IMMEDIATE). */
    int (*begin)(struct db *db, bool write);
    int (*commit)(struct db *db);
    void (*rollback)(struct db *db);
    void (*close)(struct db *db);
};

struct db {
    const struct db_ops *ops;
    enum db_dialect dialect;
    char errmsg[512]; /* the last error, for messages */
};

/* Opens a SQLite file (created if missing) with WAL, foreign keys, a busy timeout. */
int store__db_sqlite_open(struct db **out, const char *path, char *err, size_t errlen);
/* Connects to PostgreSQL (a postgresql:// URL or a conninfo string). */
int store__db_pg_open(struct db **out, const char *url, char *err, size_t errlen);

static inline int db_exec(struct db *db, const char *sql, const struct db_val *p, size_t n,
                          db_row_fn cb, void *ctx)
{
    return db->ops->exec(db, sql, p, n, cb, ctx, NULL);
}

/* Column helpers. */
int64_t store__db_i64(const struct db_row *r, size_t i);
/* Callback that stores column 0 of the (last) row as int64 into *(int64_t *)ctx. */
int store__db_get_i64(void *ctx, const struct db_row *r);
/* Runs a query returning one integer (0 when no row). */
int store__db_query_i64(struct db *db, const char *sql, const struct db_val *p, size_t n,
                        int64_t *out);

#endif
