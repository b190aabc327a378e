/*
 * store/schema — the numbered migrations, one list per dialect, always the
 * same numbers with the same meaning (docs/store.md). A migration is applied
 * once, in a transaction together with its row in schema_version; a database
 * newer than this build is refused. Never edit a migration that has shipped:
 * add the next number.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "store/db.h"
#include "store/impl.h"

struct migration {
    int version;
    const char *what;
    const char *sqlite;
    const char *pg;
};

/* Columns shared by both dialects keep the same names and meanings; times are
 * milliseconds since the Unix epoch (UTC) in 64-bit integers. */
static const struct migration migrations[] = {
    {1, "users, groups, contacts, presence rules, forwarding, api keys, audit",
     /* SQLite */
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
     "INSERT INTO meta VALUES ('users_seq', '0');"
     "CREATE TABLE users (name TEXT PRIMARY KEY, display TEXT NOT NULL DEFAULT '',"
     " enabled INTEGER NOT NULL DEFAULT 1, ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL,"
     " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
     "CREATE TRIGGER users_seq_i AFTER INSERT ON users BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'users_seq'; END;"
     "CREATE TRIGGER users_seq_u AFTER UPDATE ON users BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'users_seq'; END;"
     "CREATE TRIGGER users_seq_d AFTER DELETE ON users BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'users_seq'; END;"
     "CREATE TABLE grp (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);"
     "CREATE TABLE grp_member (grp TEXT NOT NULL REFERENCES grp(name) ON DELETE CASCADE,"
     " user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
     " PRIMARY KEY (grp, user_name));"
     "CREATE INDEX grp_member_user ON grp_member(user_name);"
     "CREATE TABLE contact (owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
     " uri TEXT NOT NULL, display TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '',"
     " PRIMARY KEY (owner, uri));"
     "CREATE TABLE presence_rule (owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
     " watcher TEXT NOT NULL, action INTEGER NOT NULL, PRIMARY KEY (owner, watcher));"
     "CREATE TABLE forwarding (user_name TEXT PRIMARY KEY REFERENCES users(name)"
     " ON DELETE CASCADE, unconditional TEXT NOT NULL DEFAULT '', busy TEXT NOT NULL DEFAULT '',"
     " no_answer TEXT NOT NULL DEFAULT '', no_answer_secs INTEGER NOT NULL DEFAULT 0,"
     " not_registered TEXT NOT NULL DEFAULT '', dnd INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE api_key (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, label TEXT NOT NULL,"
     " key_hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL,"
     " expires_ms INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE audit (id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, actor TEXT NOT NULL,"
     " action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');",
     /* PostgreSQL */
     "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
     "INSERT INTO meta VALUES ('users_seq', '0');"
     "CREATE TABLE users (name TEXT PRIMARY KEY, display TEXT NOT NULL DEFAULT '',"
     " enabled INTEGER NOT NULL DEFAULT 1, ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL,"
     " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
     "CREATE FUNCTION rtcd_users_seq() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
     " UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'users_seq';"
     " RETURN NULL; END $f$;"
     "CREATE TRIGGER users_seq AFTER INSERT OR UPDATE OR DELETE ON users"
     " FOR EACH STATEMENT EXECUTE FUNCTION rtcd_users_seq();"
     "CREATE TABLE grp (name TEXT PRIMARY KEY, created_ms BIGINT NOT NULL);"
     "CREATE TABLE grp_member (grp TEXT NOT NULL REFERENCES grp(name) ON DELETE CASCADE,"
     " user_name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
     " PRIMARY KEY (grp, user_name));"
     "CREATE INDEX grp_member_user ON grp_member(user_name);"
     "CREATE TABLE contact (owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
     " uri TEXT NOT NULL, display TEXT NOT NULL DEFAULT '', label TEXT NOT NULL DEFAULT '',"
     " PRIMARY KEY (owner, uri));"
     "CREATE TABLE presence_rule (owner TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
     " watcher TEXT NOT NULL, action INTEGER NOT NULL, PRIMARY KEY (owner, watcher));"
     "CREATE TABLE forwarding (user_name TEXT PRIMARY KEY REFERENCES users(name)"
     " ON DELETE CASCADE, unconditional TEXT NOT NULL DEFAULT '', busy TEXT NOT NULL DEFAULT '',"
     " no_answer TEXT NOT NULL DEFAULT '', no_answer_secs INTEGER NOT NULL DEFAULT 0,"
     " not_registered TEXT NOT NULL DEFAULT '', dnd INTEGER NOT NULL DEFAULT 0);"
     "CREATE TABLE api_key (id BIGSERIAL PRIMARY KEY, owner TEXT NOT NULL, label TEXT NOT NULL,"
     " key_hash TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL,"
     " expires_ms BIGINT NOT NULL DEFAULT 0);"
     "CREATE TABLE audit (id BIGSERIAL PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL,"
     " action TEXT NOT NULL, target TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');"},

    {2, "offline messages, message archive with full-text search, registrations snapshot",
     /* SQLite: FTS5 as an external-content index kept in step by triggers */
     "CREATE TABLE offline_msg (id INTEGER PRIMARY KEY AUTOINCREMENT,"
     " recipient TEXT NOT NULL, sender TEXT NOT NULL, created_ms INTEGER NOT NULL,"
     " content_type TEXT NOT NULL, body BLOB NOT NULL);"
     "CREATE INDEX offline_msg_rcpt ON offline_msg(recipient, id);"
     "CREATE TABLE archive (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL,"
     " sender TEXT NOT NULL, recipients TEXT NOT NULL, content_type TEXT NOT NULL,"
     " body TEXT NOT NULL);"
     "CREATE INDEX archive_at ON archive(at_ms);"
     "CREATE INDEX archive_sender ON archive(sender, at_ms);"
     "CREATE VIRTUAL TABLE archive_fts USING fts5(body, content='archive', content_rowid='id');"
     "CREATE TRIGGER archive_fts_i AFTER INSERT ON archive BEGIN"
     " INSERT INTO archive_fts(rowid, body) VALUES (new.id, new.body); END;"
     "CREATE TRIGGER archive_fts_d AFTER DELETE ON archive BEGIN"
     " INSERT INTO archive_fts(archive_fts, rowid, body) VALUES ('delete', old.id, old.body);"
     " END;"
     "CREATE TABLE registration (aor TEXT NOT NULL, contact TEXT NOT NULL,"
     " expires_ms INTEGER NOT NULL, q INTEGER NOT NULL, instance TEXT NOT NULL,"
     " reg_id INTEGER NOT NULL, path TEXT NOT NULL, user_agent TEXT NOT NULL,"
     " received TEXT NOT NULL, PRIMARY KEY (aor, contact));",
     /* PostgreSQL: a stored tsvector column with a GIN index */
     "CREATE TABLE offline_msg (id BIGSERIAL PRIMARY KEY,"
     " recipient TEXT NOT NULL, sender TEXT NOT NULL, created_ms BIGINT NOT NULL,"
     " content_type TEXT NOT NULL, body BYTEA NOT NULL);"
     "CREATE INDEX offline_msg_rcpt ON offline_msg(recipient, id);"
     "CREATE TABLE archive (id BIGSERIAL PRIMARY KEY, at_ms BIGINT NOT NULL,"
     " sender TEXT NOT NULL, recipients TEXT NOT NULL, content_type TEXT NOT NULL,"
     " body TEXT NOT NULL,"
     " tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED);"
     "CREATE INDEX archive_at ON archive(at_ms);"
     "CREATE INDEX archive_sender ON archive(sender, at_ms);"
     "CREATE INDEX archive_tsv ON archive USING GIN (tsv);"
     "CREATE TABLE registration (aor TEXT NOT NULL, contact TEXT NOT NULL,"
     " expires_ms BIGINT NOT NULL, q INTEGER NOT NULL, instance TEXT NOT NULL,"
     " reg_id BIGINT NOT NULL, path TEXT NOT NULL, user_agent TEXT NOT NULL,"
     " received TEXT NOT NULL, PRIMARY KEY (aor, contact));"},

    {3, "offline message expiry, features change counter, broadcast outbox",
     /* SQLite */
     "ALTER TABLE offline_msg ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"
     "INSERT INTO meta VALUES ('features_seq', '0');"
     "CREATE TRIGGER fwd_seq_i AFTER INSERT ON forwarding BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TRIGGER fwd_seq_u AFTER UPDATE ON forwarding BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TRIGGER fwd_seq_d AFTER DELETE ON forwarding BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TRIGGER grp_seq_i AFTER INSERT ON grp BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TRIGGER grp_seq_d AFTER DELETE ON grp BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TRIGGER grpm_seq_i AFTER INSERT ON grp_member BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TRIGGER grpm_seq_d AFTER DELETE ON grp_member BEGIN"
     " UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'features_seq'; END;"
     "CREATE TABLE broadcast (id INTEGER PRIMARY KEY AUTOINCREMENT, created_ms INTEGER NOT NULL,"
     " sender TEXT NOT NULL, grp TEXT NOT NULL DEFAULT '', offline_too INTEGER NOT NULL DEFAULT 0,"
     " content_type TEXT NOT NULL, body TEXT NOT NULL, taken_ms INTEGER NOT NULL DEFAULT 0,"
     " expires_ms INTEGER NOT NULL DEFAULT 0);",
     /* PostgreSQL */
     "ALTER TABLE offline_msg ADD COLUMN expires_ms BIGINT NOT NULL DEFAULT 0;"
     "INSERT INTO meta VALUES ('features_seq', '0');"
     "CREATE FUNCTION rtcd_features_seq() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
     " UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'features_seq';"
     " RETURN NULL; END $f$;"
     "CREATE TRIGGER fwd_seq AFTER INSERT OR UPDATE OR DELETE ON forwarding"
     " FOR EACH STATEMENT EXECUTE FUNCTION rtcd_features_seq();"
     "CREATE TRIGGER grp_seq AFTER INSERT OR UPDATE OR DELETE ON grp"
     " FOR EACH STATEMENT EXECUTE FUNCTION rtcd_features_seq();"
     "CREATE TRIGGER grpm_seq AFTER INSERT OR UPDATE OR DELETE ON grp_member"
     " FOR EACH STATEMENT EXECUTE FUNCTION rtcd_features_seq();"
     "CREATE TABLE broadcast (id BIGSERIAL PRIMARY KEY, created_ms BIGINT NOT NULL,"
     " sender TEXT NOT NULL, grp TEXT NOT NULL DEFAULT '', offline_too INTEGER NOT NULL DEFAULT 0,"
     " content_type TEXT NOT NULL, body TEXT NOT NULL, taken_ms BIGINT NOT NULL DEFAULT 0,"
     " expires_ms BIGINT NOT NULL DEFAULT 0);"},
};
#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

/* The newest schema version this build knows. */
int store__schema_latest(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

/*
 * Brings the database to the newest schema: creates schema_version when
 * missing and applies every migration not yet recorded, each in its own write
 * transaction (concurrent starters serialise on the write lock, and the loser
 * sees the version the winner recorded). Returns 0, -EPROTO when the database
 * is newer than this build, or the SQL error with the reason in err. Blocks.
 */
int store__schema_migrate(struct db *db, int *version, char *err, size_t errlen)
{
    static const char *const create_sq =
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
        " applied_ms INTEGER NOT NULL, what TEXT NOT NULL)";
    static const char *const create_pg =
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
        " applied_ms BIGINT NOT NULL, what TEXT NOT NULL)";
    static const char *const q_max = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
    static const char *const q_lock = "SELECT pg_advisory_xact_lock(72430001)";
    static const char *const q_rec =
        "INSERT INTO schema_version (version, applied_ms, what) VALUES ($1, $2, $3)";

    int rc = db->ops->begin(db, true);
    if (rc == 0 && db->dialect == DB_PG)
        rc = db_exec(db, q_lock, NULL, 0, NULL, NULL);
    if (rc == 0)
        rc = db->ops->script(db, db->dialect == DB_PG ? create_pg : create_sq);
    int64_t cur = 0;
    if (rc == 0)
        rc = store__db_query_i64(db, q_max, NULL, 0, &cur);
    if (rc == 0)
        rc = db->ops->commit(db);
    if (rc < 0) {
        db->ops->rollback(db);
        snprintf(err, errlen, "cannot read the schema version: %s", db->errmsg);
        return rc;
    }
    if (cur > store__schema_latest()) {
        snprintf(err, errlen,
                 "the database has schema version %lld, newer than this build knows (%d); "
                 "use a newer rtcd",
                 (long long)cur, store__schema_latest());
        return -EPROTO;
    }
    for (size_t i = 0; i < N_MIGRATIONS; i++) {
        const struct migration *m = &migrations[i];
        if (m->version <= cur)
            continue;
        rc = db->ops->begin(db, true);
        if (rc == 0 && db->dialect == DB_PG)
            rc = db_exec(db, q_lock, NULL, 0, NULL, NULL);
        int64_t again = 0;
        if (rc == 0)
            rc = store__db_query_i64(db, q_max, NULL, 0, &again);
        if (rc == 0 && again >= m->version) { /* another process applied it meanwhile */
            db->ops->rollback(db);
            continue;
        }
        if (rc == 0)
            rc = db->ops->script(db, db->dialect == DB_PG ? m->pg : m->sqlite);
        struct db_val p[] = {dbv_int(m->version), dbv_int((int64_t)clock_wall_ms()),
                             dbv_cstr(m->what)};
        if (rc == 0)
            rc = db_exec(db, q_rec, p, 3, NULL, NULL);
        if (rc == 0)
            rc = db->ops->commit(db);
        if (rc < 0) {
            db->ops->rollback(db);
            snprintf(err, errlen, "migration %d (%s) failed: %s", m->version, m->what, db->errmsg);
            return rc;
        }
        log_info("store", "applied migration %d: %s", m->version, m->what);
    }
    *version = store__schema_latest();
    return 0;
}
