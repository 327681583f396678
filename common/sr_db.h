/* sr_db - one libpq connection with retry, remembered prepared statements and transactions.
 *
 * SQL goes only through parameters (PQexecParams / prepared statements), never built from
 * strings. A lost connection is noticed by sr_db_ok(), which resets it with back-off (a
 * rate-limited complaint while it fails, one line when it recovers) and prepares every
 * remembered statement again. Results are PGresult *: the caller PQclear()s them.
 */
#ifndef SR_DB_H
#define SR_DB_H

#include "sr_arena.h"

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sr_db_t sr_db_t;

/* sr_db_connect - connect to url, trying `attempts` times with doubling back-off up to
 * max_backoff_ms; NULL when every attempt failed (each logged). app_name shows in
 * pg_stat_activity. */
sr_db_t *sr_db_connect(const char *url, const char *app_name, int attempts, int64_t max_backoff_ms);
void sr_db_destroy(sr_db_t **self_p);
PGconn *sr_db_conn(sr_db_t *self);

/* sr_db_ok - 1 when the connection is up; when it is not, try one reset (at most once per
 * back-off period) and return 1 if that worked */
int sr_db_ok(sr_db_t *self);
/* sr_db_ping - run SELECT 1; 0 when it answered */
int sr_db_ping(sr_db_t *self) __attribute__((warn_unused_result));

/* PostgreSQL cuts longer statement names, so sr_db_prepare refuses them */
#define SR_DB_NAME_MAX 63

/* sr_db_prepare - prepare and remember a statement, prepared again after every reconnect; the
 * same name and SQL again is a no-op, other SQL under a name already used fails */
int sr_db_prepare(sr_db_t *self, const char *name, const char *sql, int nparams)
    __attribute__((warn_unused_result));
/* sr_db_run - execute a prepared statement with text parameters (NULL = SQL NULL) */
PGresult *sr_db_run(sr_db_t *self, const char *name, int nparams, const char *const *params);
/* sr_db_run_binary - sr_db_run with per-parameter lengths and formats as in PQexecPrepared
 * (1 = binary, e.g. bytea; NULL formats = all text) and result_format (1 = binary results) */
PGresult *sr_db_run_binary(sr_db_t *self, const char *name, int nparams, const char *const *params,
                           const int *lengths, const int *formats, int result_format);
/* sr_db_text_array - a text[] literal of items ("{\"a\",\"b\"}", quotes and backslashes
 * escaped), in arena: one parameter instead of a statement built from strings */
const char *sr_db_text_array(sr_arena_t *arena, char *const *items, size_t n);
/* sr_db_query - execute one parameterised statement with text parameters */
PGresult *sr_db_query(sr_db_t *self, const char *sql, int nparams, const char *const *params);
/* sr_db_exec - execute a statement without parameters or rows (DDL, BEGIN, SET ...); 0 ok */
int sr_db_exec(sr_db_t *self, const char *sql) __attribute__((warn_unused_result));
/* sr_db_run, sr_db_query: NULL on failure, with the error in sr_db_error() / sr_db_sqlstate() */
const char *sr_db_error(const sr_db_t *self);
const char *sr_db_sqlstate(const sr_db_t *self); /* "" when the failure had none */

int sr_db_begin(sr_db_t *self) __attribute__((warn_unused_result));
int sr_db_commit(sr_db_t *self) __attribute__((warn_unused_result));
void sr_db_rollback(sr_db_t *self);
/* sr_db_tx - run fn inside BEGIN/COMMIT; rolls back when fn returns non-zero or commit fails.
 * Returns fn's result, or -1 when BEGIN or COMMIT failed. */
int sr_db_tx(sr_db_t *self, int (*fn)(sr_db_t *db, void *arg), void *arg)
    __attribute__((warn_unused_result));

#endif
