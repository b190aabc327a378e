/*
 * store/db_pg — the PostgreSQL backend of the SQL layer (db.h), over libpq.
 * Parameters go as text (blobs as binary bytea); results come back as text
 * and bytea columns are decoded from PostgreSQL's hex form. A lost
 * connection is re-established once before a statement outside a
 * transaction.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/db.h"

#define MAX_PARAMS 32
#define MAX_COLS   32
#define BYTEAOID   17

struct db_pg {
    struct db base;
    PGconn *c;
    bool in_txn;
};

/* Copies a libpq message as one line: newlines and tabs become spaces, no trailing blanks. */
static void one_line(char *dst, size_t cap, const char *msg)
{
    snprintf(dst, cap, "%s", msg ? msg : "unknown error");
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\t' || *p == '\r')
            *p = ' ';
    size_t l = strlen(dst);
    while (l && dst[l - 1] == ' ')
        dst[--l] = 0;
}

static void set_err(struct db_pg *d, const char *msg)
{
    one_line(d->base.errmsg, sizeof d->base.errmsg, msg);
}

static int map_state(const char *state)
{
    if (!state)
        return -EIO;
    if (strcmp(state, "23505") == 0)
        return -EEXIST;
    if (strcmp(state, "23503") == 0)
        return -ENOENT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return -EBUSY;
    return -EIO;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes "\x4142..." in place (it only shrinks). Returns the new length. */
static size_t bytea_decode(char *s, size_t len)
{
    if (len < 2 || s[0] != '\\' || s[1] != 'x')
        return len;
    size_t o = 0;
    for (size_t i = 2; i + 1 < len; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            break;
        s[o++] = (char)(hi << 4 | lo);
    }
    return o;
}

static int pg_exec(struct db *db, const char *sql, const struct db_val *p, size_t n, db_row_fn cb,
                   void *ctx, int64_t *changes)
{
    struct db_pg *d = (struct db_pg *)db;
    if (n > MAX_PARAMS)
        return -E2BIG;
    if (PQstatus(d->c) != CONNECTION_OK && !d->in_txn)
        PQreset(d->c);
    const char *vals[MAX_PARAMS];
    int lens[MAX_PARAMS], fmts[MAX_PARAMS];
    char nums[MAX_PARAMS][24];
    char *tmp[MAX_PARAMS] = {0};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        fmts[i] = 0;
        lens[i] = 0;
        switch (p[i].type) {
        case DBV_NULL:
            vals[i] = NULL;
            break;
        case DBV_INT:
            snprintf(nums[i], sizeof nums[i], "%lld", (long long)p[i].i);
            vals[i] = nums[i];
            break;
        case DBV_TEXT:
            /* text parameters must be NUL-terminated */
            tmp[i] = str_dup(p[i].s);
            if (!tmp[i]) {
                rc = -ENOMEM;
                goto out;
            }
            vals[i] = tmp[i];
            break;
        case DBV_BLOB:
            vals[i] = p[i].s.s ? p[i].s.s : "";
            lens[i] = (int)p[i].s.len;
            fmts[i] = 1;
            break;
        }
    }
    PGresult *res = PQexecParams(d->c, sql, (int)n, NULL, vals, lens, fmts, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err(d, PQresultErrorMessage(res));
        rc = map_state(PQresultErrorField(res, PG_DIAG_SQLSTATE));
        PQclear(res);
        goto out;
    }
    if (cb && st == PGRES_TUPLES_OK) {
        int nr = PQntuples(res), nc = PQnfields(res);
        if (nc > MAX_COLS)
            nc = MAX_COLS;
        for (int r = 0; r < nr && rc == 0; r++) {
            str cols[MAX_COLS];
            for (int c = 0; c < nc; c++) {
                if (PQgetisnull(res, r, c)) {
                    cols[c] = STR_NULL;
                    continue;
                }
                char *v = PQgetvalue(res, r, c);
                size_t len = (size_t)PQgetlength(res, r, c);
                if (PQftype(res, c) == BYTEAOID)
                    len = bytea_decode(v, len);
                cols[c] = str_make(v, len);
            }
            struct db_row row = {(size_t)nc, cols};
            rc = cb(ctx, &row);
        }
    }
    if (rc == 0 && changes) {
        const char *t = PQcmdTuples(res);
        *changes = t && *t ? atoll(t) : 0;
    }
    PQclear(res);
out:
    for (size_t i = 0; i < n; i++)
        free(tmp[i]);
    return rc;
}

static int pg_script(struct db *db, const char *sql)
{
    struct db_pg *d = (struct db_pg *)db;
    PGresult *res = PQexec(d->c, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        set_err(d, PQresultErrorMessage(res));
        rc = map_state(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    }
    PQclear(res);
    return rc;
}

static int pg_begin(struct db *db, bool write)
{
    struct db_pg *d = (struct db_pg *)db;
    (void)write;
    int rc = pg_exec(db, "BEGIN", NULL, 0, NULL, NULL, NULL);
    if (rc == 0)
        d->in_txn = true;
    return rc;
}

static int pg_commit(struct db *db)
{
    struct db_pg *d = (struct db_pg *)db;
    int rc = pg_exec(db, "COMMIT", NULL, 0, NULL, NULL, NULL);
    d->in_txn = false;
    return rc;
}

static void pg_rollback(struct db *db)
{
    struct db_pg *d = (struct db_pg *)db;
    if (PQtransactionStatus(d->c) != PQTRANS_IDLE)
        pg_script(db, "ROLLBACK");
    d->in_txn = false;
}

static void pg_close(struct db *db)
{
    struct db_pg *d = (struct db_pg *)db;
    if (!d)
        return;
    PQfinish(d->c);
    free(d);
}

static const struct db_ops pg_ops = {
    .exec = pg_exec,
    .script = pg_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .close = pg_close,
};

static void ignore_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/*
 * Connects to PostgreSQL at url (postgresql://user@host:port/db or a conninfo
 * string). Returns 0 and a new handle in *out, or -EIO/-ENOMEM with the reason
 * in err. Blocks while connecting (connect_timeout 10 s unless the URL says).
 */
int store__db_pg_open(struct db **out, const char *url, char *err, size_t errlen)
{
    struct db_pg *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->base.ops = &pg_ops;
    d->base.dialect = DB_PG;
    const char *keys[] = {"dbname", "connect_timeout", "client_encoding", NULL};
    const char *vals[] = {url, "10", "UTF8", NULL};
    d->c = PQconnectdbParams(keys, vals, 1);
    if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
        char msg[400];
        one_line(msg, sizeof msg, d->c ? PQerrorMessage(d->c) : "out of memory");
        snprintf(err, errlen, "postgresql: %s", msg);
        PQfinish(d->c);
        free(d);
        return -EIO;
    }
    PQsetNoticeProcessor(d->c, ignore_notice, NULL);
    int rc = pg_script(&d->base, "SET client_min_messages = warning");
    if (rc < 0) {
        snprintf(err, errlen, "postgresql: %s", d->base.errmsg);
        pg_close(&d->base);
        return rc;
    }
    *out = &d->base;
    return 0;
}
