/* sr_migrate - numbered SQL files per service schema, applied exactly once.
 *
 * Each service owns one schema and ships migrations/NNN_name.sql, embedded in its binary at
 * build time (deploy/embed-sql.sh makes the sr_migration_t table). sr_migrate() takes a
 * PostgreSQL advisory lock, creates the schema and its standard outbox tables (see
 * sr_outbox.h) as version 0, then applies every file with a version above the recorded one,
 * each in its own transaction together with its row in public.sr_migrations. Two daemons
 * starting at once therefore apply each file exactly once; a failing file stops start-up
 * with the file's name and PostgreSQL's message.
 */
#ifndef SR_MIGRATE_H
#define SR_MIGRATE_H

#include "sr_db.h"

#include <stddef.h>

typedef struct {
    int version;      /* NNN from the file name, > 0, ascending in the table */
    const char *name; /* the file name */
    const char *sql;  /* the file's text, run as one multi-statement string */
} sr_migration_t;

/* sr_migrate - bring schema up to date; 0 ok, -1 (logged) on failure */
int sr_migrate(sr_db_t *db, const char *schema, const sr_migration_t *list, size_t count)
    __attribute__((warn_unused_result));
/* sr_migrate_dir - the same from a folder of NNN_name.sql files (tools and tests) */
int sr_migrate_dir(sr_db_t *db, const char *schema, const char *dir)
    __attribute__((warn_unused_result));
/* sr_migrate_schema_ok - 1 when schema is a valid schema name: [a-z][a-z0-9_]*, at most 63 */
int sr_migrate_schema_ok(const char *schema);

#endif
