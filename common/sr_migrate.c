/* sr_migrate - numbered SQL files per service schema, applied exactly once.
 *
 * Everything happens under one session advisory lock keyed by the text 'sr_migrate', so daemons
 * starting together queue up and each finds the work of the one before it recorded in
 * public.sr_migrations(schema, version, name, applied_at). Version 0 of every schema is the
 * standard outbox (s_outbox_sql below, used by sr_outbox.c). Each file runs in its own
 * transaction with search_path set to its schema, together with the row that records it.
 * See sr_migrate.h; deploy/embed-sql.sh builds the tables the daemons pass in.
 */
#include "sr_migrate.h"

#include "sr_alloc.h"
#include "sr_log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_NAME_MAX 63

static const char s_lock_sql[] = "SELECT pg_advisory_lock(hashtextextended('sr_migrate', 0))";
static const char s_unlock_sql[] = "SELECT pg_advisory_unlock(hashtextextended('sr_migrate', 0))";

static const char s_table_sql[] = "CREATE TABLE IF NOT EXISTS public.sr_migrations ("
                                  " schema text NOT NULL,"
                                  " version int NOT NULL,"
                                  " name text NOT NULL,"
                                  " applied_at timestamptz NOT NULL DEFAULT now(),"
                                  " PRIMARY KEY (schema, version))";

/* the standard outbox of sr_outbox.h; every %1$s is the quoted schema */
static const char s_outbox_fmt[] = "CREATE TABLE %1$s.outbox ("
                                   " seq bigint PRIMARY KEY,"
                                   " topic text NOT NULL,"
                                   " envelope bytea NOT NULL,"
                                   " created_at timestamptz NOT NULL DEFAULT now());"
                                   "CREATE TABLE %1$s.outbox_seq ("
                                   " id int PRIMARY KEY CHECK (id = 1),"
                                   " last bigint NOT NULL);"
                                   "INSERT INTO %1$s.outbox_seq (id, last) VALUES (1, 0);"
                                   "CREATE TABLE %1$s.outbox_state ("
                                   " id int PRIMARY KEY CHECK (id = 1),"
                                   " published bigint NOT NULL);"
                                   "INSERT INTO %1$s.outbox_state (id, published) VALUES (1, 0);";

int sr_migrate_schema_ok(const char *schema)
{
    if (!schema || !(schema[0] >= 'a' && schema[0] <= 'z'))
        return 0;
    size_t n = strspn(schema, "abcdefghijklmnopqrstuvwxyz0123456789_");
    return schema[n] == '\0' && n <= SCHEMA_NAME_MAX;
}

/* s_check_list - versions above 0, strictly ascending, every file named and with SQL */
static int s_check_list(const char *schema, const sr_migration_t *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const sr_migration_t *m = &list[i];
        const char *name = m->name ? m->name : "?";
        if (m->version <= 0 || !m->name || !m->sql) {
            sr_error("migration_invalid", "schema=%s file=\"%s\" version=%d", schema, name,
                     m->version);
            return -1;
        }
        if (i > 0 && m->version <= list[i - 1].version) {
            sr_error("migration_order", "schema=%s file=\"%s\" version=%d after=\"%s\"", schema,
                     name, m->version, list[i - 1].name);
            return -1;
        }
    }
    return 0;
}

/* s_apply_tx - the statements of s_apply; -1 leaves the transaction for the caller to end */
static int s_apply_tx(sr_db_t *db, const char *schema, const char *quoted, int version,
                      const char *name, const char *sql)
{
    char version_text[16];
    snprintf(version_text, sizeof version_text, "%d", version);
    const char *params[] = {schema, version_text, name};
    char *path_sql = sr_asprintf("SET LOCAL search_path TO %s, public", quoted);
    int rc = sr_db_exec(db, path_sql);
    free(path_sql);
    if (rc != 0 || sr_db_exec(db, sql) != 0)
        return -1;
    PGresult *res = sr_db_query(db,
                                "INSERT INTO public.sr_migrations (schema, version, name)"
                                " VALUES ($1, $2, $3)",
                                3, params);
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* s_apply - one file and its sr_migrations row in one transaction */
static int s_apply(sr_db_t *db, const char *schema, const char *quoted, int version,
                   const char *name, const char *sql)
{
    int rc = sr_db_begin(db);
    if (rc == 0) {
        rc = s_apply_tx(db, schema, quoted, version, name, sql);
        if (rc == 0)
            rc = sr_db_commit(db);
        else
            sr_db_rollback(db);
    }
    if (rc != 0) {
        sr_error("migration_failed", "schema=%s version=%d file=\"%s\" sqlstate=%s err=\"%s\"",
                 schema, version, name, sr_db_sqlstate(db), sr_db_error(db));
        return -1;
    }
    sr_info("migration_applied", "schema=%s version=%d file=\"%s\"", schema, version, name);
    return 0;
}

/* s_is_recorded - whether version is among the recorded rows (column 0, ascending) */
static int s_is_recorded(const PGresult *rows, int version)
{
    for (int i = 0; i < PQntuples(rows); i++) {
        if (atoi(PQgetvalue(rows, i, 0)) == version)
            return 1;
    }
    return 0;
}

/* s_migrate_locked - the work done while holding the lock */
static int s_migrate_locked(sr_db_t *db, const char *schema, const char *quoted,
                            const sr_migration_t *list, size_t count)
{
    char *create_schema = sr_asprintf("CREATE SCHEMA IF NOT EXISTS %s", quoted);
    int rc = sr_db_exec(db, s_table_sql) == 0 && sr_db_exec(db, create_schema) == 0 ? 0 : -1;
    free(create_schema);
    if (rc != 0) {
        sr_error("migration_failed", "schema=%s step=create sqlstate=%s err=\"%s\"", schema,
                 sr_db_sqlstate(db), sr_db_error(db));
        return -1;
    }
    const char *params[] = {schema};
    PGresult *rows = sr_db_query(
        db, "SELECT version FROM public.sr_migrations WHERE schema = $1 ORDER BY version", 1,
        params);
    if (!rows) {
        sr_error("migration_failed", "schema=%s step=read sqlstate=%s err=\"%s\"", schema,
                 sr_db_sqlstate(db), sr_db_error(db));
        return -1;
    }
    int n = PQntuples(rows);
    int max = n > 0 ? atoi(PQgetvalue(rows, n - 1, 0)) : -1;
    if (!s_is_recorded(rows, 0)) {
        char *outbox = sr_asprintf(s_outbox_fmt, quoted);
        rc = s_apply(db, schema, quoted, 0, "000_outbox", outbox);
        free(outbox);
    }
    for (size_t i = 0; rc == 0 && i < count; i++) {
        if (s_is_recorded(rows, list[i].version))
            continue;
        if (list[i].version < max) {
            sr_error("migration_order",
                     "schema=%s file=\"%s\" version=%d recorded_max=%d err=\"a newer file is "
                     "already applied\"",
                     schema, list[i].name, list[i].version, max);
            rc = -1;
            break;
        }
        rc = s_apply(db, schema, quoted, list[i].version, list[i].name, list[i].sql);
    }
    PQclear(rows);
    return rc;
}

int sr_migrate(sr_db_t *db, const char *schema, const sr_migration_t *list, size_t count)
{
    if (!sr_migrate_schema_ok(schema)) {
        sr_error("migration_invalid",
                 "schema=\"%s\" err=\"schema names are [a-z][a-z0-9_]*, at "
                 "most 63 characters\"",
                 schema ? schema : "");
        return -1;
    }
    if (s_check_list(schema, list, count) != 0)
        return -1;
    char *quoted = PQescapeIdentifier(sr_db_conn(db), schema, strlen(schema));
    if (!quoted) {
        sr_error("migration_failed", "schema=%s err=\"cannot quote the schema name\"", schema);
        return -1;
    }
    if (sr_db_exec(db, s_lock_sql) != 0) {
        sr_error("migration_failed", "schema=%s step=lock sqlstate=%s err=\"%s\"", schema,
                 sr_db_sqlstate(db), sr_db_error(db));
        PQfreemem(quoted);
        return -1;
    }
    int rc = s_migrate_locked(db, schema, quoted, list, count);
    /* straight through libpq, so sr_db_error() still tells the caller why a file failed; a
     * lost session has released the lock anyway */
    PGresult *res = PQexec(sr_db_conn(db), s_unlock_sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        sr_warn("migration_unlock_failed", "schema=%s", schema);
    PQclear(res);
    PQfreemem(quoted);
    return rc;
}

static int s_by_version(const void *a, const void *b)
{
    const sr_migration_t *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

/* s_version - NNN of "NNN_name.sql", or -1 when the name has another shape */
static int s_version(const char *name)
{
    size_t digits = strspn(name, "0123456789");
    size_t len = strlen(name);
    if (digits == 0 || digits > 6 || name[digits] != '_' || len < digits + 5 ||
        strcmp(name + len - 4, ".sql") != 0)
        return -1;
    return atoi(name);
}

static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = sr_malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0)
            buf = sr_realloc(buf, cap *= 2);
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static void s_free_list(sr_migration_t *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free((char *)list[i].name);
        free((char *)list[i].sql);
    }
    free(list);
}

/* s_load_dir - every NNN_name.sql in dir, sorted by version; -1 (logged) on a file that cannot
 * be read, a .sql file not named NNN_name.sql, or two files with one version */
static int s_load_dir(const char *schema, const char *dir, sr_migration_t **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        sr_error("migration_dir", "schema=%s dir=\"%s\" err=\"%s\"", schema, dir, strerror(errno));
        return -1;
    }
    sr_migration_t *list = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        int version = s_version(e->d_name);
        char *path = sr_asprintf("%s/%s", dir, e->d_name);
        char *sql = version > 0 ? s_read_file(path) : NULL;
        free(path);
        if (!sql) {
            sr_error("migration_file", "schema=%s dir=\"%s\" file=\"%s\" err=\"%s\"", schema, dir,
                     e->d_name,
                     version > 0 ? "cannot read it" : "not named NNN_name.sql with NNN > 0");
            rc = -1;
            break;
        }
        list = sr_realloc(list, (n + 1) * sizeof *list);
        list[n++] = (sr_migration_t){.version = version, .name = sr_strdup(e->d_name), .sql = sql};
    }
    closedir(d);
    if (n > 0)
        qsort(list, n, sizeof *list, s_by_version);
    for (size_t i = 1; rc == 0 && i < n; i++) {
        if (list[i].version == list[i - 1].version) {
            sr_error("migration_duplicate", "schema=%s dir=\"%s\" version=%d files=\"%s,%s\"",
                     schema, dir, list[i].version, list[i - 1].name, list[i].name);
            rc = -1;
        }
    }
    if (rc != 0) {
        s_free_list(list, n);
        return -1;
    }
    *out = list;
    *count = n;
    return 0;
}

int sr_migrate_dir(sr_db_t *db, const char *schema, const char *dir)
{
    sr_migration_t *list = NULL;
    size_t count = 0;
    if (s_load_dir(schema ? schema : "", dir, &list, &count) != 0)
        return -1;
    int rc = sr_migrate(db, schema, list, count);
    s_free_list(list, count);
    return rc;
}
