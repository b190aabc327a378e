/*
 * store/impl — internal to src/store: the store handle shared by store.c and
 * data.c, and small helpers.
 */
#ifndef RTCD_STORE_IMPL_H
#define RTCD_STORE_IMPL_H

#include "store/db.h"
#include "store/store.h"

struct store {
    struct db *db;
    enum store_backend backend;
    char realm[256];
    uint32_t max_offline;
    int version;
};

int store__schema_latest(void);
int store__schema_migrate(struct db *db, int *version, char *err, size_t errlen);

/* Runs fn(s, arg) inside a write transaction; commits on 0, rolls back otherwise. */
int store__txn(struct store *s, int (*fn)(struct store *s, void *arg), void *arg);
/* store_offline_enqueue without its own transaction: the caller (the store thread's
 * batch) holds one. */
int store__offline_enqueue_in_txn(struct store *s, str recipient, str sender, int64_t created_ms,
                                  str content_type, str body, int64_t expires_ms,
                                  int64_t *id_out);
/* Whether t is valid UTF-8 without control characters (tab allowed) and at most max bytes. */
bool store__text_ok(str t, size_t max);
/* Copies a column into a fixed buffer (truncating, NUL-terminated). */
void store__col_copy(char *dst, size_t cap, str col);

#endif
