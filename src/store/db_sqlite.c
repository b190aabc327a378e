/*
 * store/db_sqlite — the SQLite backend of the SQL layer (db.h): one file,
 * WAL journal (readers never wait for the writer; rtcctl and rtcd share the
 * file safely), synchronous=FULL (a committed row survives a crash or power
 * loss: the offline store acknowledges only what is committed), foreign keys
 * on, a busy timeout so that two writers queue instead of failing, and a
 * small cache of prepared statements keyed by the SQL text's address.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

#define STMT_CACHE      64
#define BUSY_TIMEOUT_MS 5000
#define MAX_COLS        32

struct db_sqlite {
    struct db base;
    sqlite3 *h;
    struct {
        char *sql; /* owned copy of the text as given */
        uint64_t hash;
        sqlite3_stmt *st;
    } cache[STMT_CACHE];
    size_t next_evict;
};

static int map_rc(struct db_sqlite *d, int rc)
{
    snprintf(d->base.errmsg, sizeof d->base.errmsg, "%s", sqlite3_errmsg(d->h));
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return -EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return -ENOENT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* $N → ?N (SQLite's numbered parameters). */
static char *rewrite(const char *sql)
{
    char *s = strdup(sql);
    if (!s)
        return NULL;
    for (char *p = s; *p; p++)
        if (*p == '$' && p[1] >= '0' && p[1] <= '9')
            *p = '?';
    return s;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The prepared statement for sql, from the cache (keyed by the text) or new. */
static int prepare(struct db_sqlite *d, const char *sql, sqlite3_stmt **out)
{
    uint64_t h = fnv1a(sql);
    for (size_t i = 0; i < STMT_CACHE; i++) {
        if (d->cache[i].sql && d->cache[i].hash == h && strcmp(d->cache[i].sql, sql) == 0) {
            *out = d->cache[i].st;
            return 0;
        }
    }
    char *text = rewrite(sql);
    if (!text)
        return -ENOMEM;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(d->h, text, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        free(text);
        return map_rc(d, sqlite3_extended_errcode(d->h));
    }
    memcpy(text, sql, strlen(sql) + 1); /* same length: keep the original text as the key */
    size_t slot = STMT_CACHE;
    for (size_t i = 0; i < STMT_CACHE; i++)
        if (!d->cache[i].sql) {
            slot = i;
            break;
        }
    /* never evict a statement an outer caller is still stepping through */
    for (size_t k = 0; slot == STMT_CACHE && k < STMT_CACHE; k++) {
        size_t i = d->next_evict++ % STMT_CACHE;
        if (!sqlite3_stmt_busy(d->cache[i].st))
            slot = i;
    }
    if (slot == STMT_CACHE) {
        sqlite3_finalize(st);
        free(text);
        snprintf(d->base.errmsg, sizeof d->base.errmsg, "too many nested statements");
        return -EIO;
    }
    if (d->cache[slot].st) {
        sqlite3_finalize(d->cache[slot].st);
        free(d->cache[slot].sql);
    }
    d->cache[slot].sql = text;
    d->cache[slot].hash = h;
    d->cache[slot].st = st;
    *out = st;
    return 0;
}

static int sq_exec(struct db *db, const char *sql, const struct db_val *p, size_t n, db_row_fn cb,
                   void *ctx, int64_t *changes)
{
    struct db_sqlite *d = (struct db_sqlite *)db;
    sqlite3_stmt *st = NULL;
    int rc = prepare(d, sql, &st);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        int idx = (int)i + 1;
        switch (p[i].type) {
        case DBV_NULL:
            rc = sqlite3_bind_null(st, idx);
            break;
        case DBV_INT:
            rc = sqlite3_bind_int64(st, idx, p[i].i);
            break;
        case DBV_TEXT:
            rc = sqlite3_bind_text64(st, idx, p[i].s.s ? p[i].s.s : "", p[i].s.len, SQLITE_STATIC,
                                     SQLITE_UTF8);
            break;
        case DBV_BLOB:
            rc = sqlite3_bind_blob64(st, idx, p[i].s.s ? p[i].s.s : "", p[i].s.len, SQLITE_STATIC);
            break;
        }
    }
    if (rc != SQLITE_OK) {
        rc = map_rc(d, rc);
        goto out;
    }
    int ret = 0;
    for (;;) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            ret = map_rc(d, sqlite3_extended_errcode(d->h));
            break;
        }
        if (!cb)
            continue;
        str cols[MAX_COLS];
        int nc = sqlite3_column_count(st);
        if (nc > MAX_COLS)
            nc = MAX_COLS;
        for (int i = 0; i < nc; i++) {
            int t = sqlite3_column_type(st, i);
            const void *v = t == SQLITE_BLOB ? sqlite3_column_blob(st, i)
                                             : (const void *)sqlite3_column_text(st, i);
            cols[i] = str_make(v, (size_t)sqlite3_column_bytes(st, i));
            if (t == SQLITE_NULL)
                cols[i] = STR_NULL;
        }
        struct db_row r = {(size_t)nc, cols};
        ret = cb(ctx, &r);
        if (ret < 0)
            break;
    }
    if (ret == 0 && changes)
        *changes = sqlite3_changes64(d->h);
    rc = ret;
out:
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int sq_script(struct db *db, const char *sql)
{
    struct db_sqlite *d = (struct db_sqlite *)db;
    char *msg = NULL;
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(d->base.errmsg, sizeof d->base.errmsg, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return rc == SQLITE_BUSY ? -EBUSY : -EIO;
    }
    return 0;
}

static int sq_begin(struct db *db, bool write)
{
    static const char *const begin_w = "BEGIN IMMEDIATE";
    static const char *const begin_r = "BEGIN";
    return sq_exec(db, write ? begin_w : begin_r, NULL, 0, NULL, NULL, NULL);
}

static int sq_commit(struct db *db)
{
    static const char *const commit = "COMMIT";
    return sq_exec(db, commit, NULL, 0, NULL, NULL, NULL);
}

static void sq_rollback(struct db *db)
{
    struct db_sqlite *d = (struct db_sqlite *)db;
    if (!sqlite3_get_autocommit(d->h))
        sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
}

static void sq_close(struct db *db)
{
    struct db_sqlite *d = (struct db_sqlite *)db;
    if (!d)
        return;
    for (size_t i = 0; i < STMT_CACHE; i++)
        if (d->cache[i].st) {
            sqlite3_finalize(d->cache[i].st);
            free(d->cache[i].sql);
        }
    sqlite3_close(d->h);
    free(d);
}

static const struct db_ops sqlite_ops = {
    .exec = sq_exec,
    .script = sq_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
};

/*
 * Opens (creating if missing) the SQLite file at path and sets it up. Returns 0
 * and a new handle in *out (free with db->ops->close), or -EIO/-ENOMEM with the
 * reason in err. May block on the file system.
 */
int store__db_sqlite_open(struct db **out, const char *path, char *err, size_t errlen)
{
    struct db_sqlite *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->base.ops = &sqlite_ops;
    d->base.dialect = DB_SQLITE;
    int rc = sqlite3_open_v2(
        path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, d->h ? sqlite3_errmsg(d->h) : sqlite3_errstr(rc));
        sqlite3_close(d->h);
        free(d);
        return -EIO;
    }
    sqlite3_extended_result_codes(d->h, 1);
    sqlite3_busy_timeout(d->h, BUSY_TIMEOUT_MS);
    rc = sq_script(&d->base, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                             "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;");
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, d->base.errmsg);
        sq_close(&d->base);
        return rc;
    }
    *out = &d->base;
    return 0;
}
