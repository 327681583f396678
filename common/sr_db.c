/* sr_db - one libpq connection with retry, remembered prepared statements and transactions.
 *
 * Owns the PGconn, the list of statements it prepared (name, sql, nparams: prepared again after
 * every reset) and the text of the last error. Logs name the server as host/port/db/user taken
 * from the URL, never the URL itself, so a password in it never reaches a log line.
 * See sr_db.h for the contract, sr_migrate.c and sr_outbox.c for its main users.
 */
#include "sr_db.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIRST_BACKOFF_MS  100
#define CONNECT_TIMEOUT_S "5"
#define ERROR_TEXT_MAX    1024

typedef struct {
    char *name;
    char *sql;
    int nparams;
} stmt_t;

struct sr_db_t {
    PGconn *conn;
    char *where; /* host=... port=... db=... user=..., for log lines */
    stmt_t *stmts;
    size_t nstmts;
    int64_t max_backoff_ms;
    int64_t backoff_ms;
    int64_t next_reset_ms;
    sr_complaint_t complaint;
    char error[ERROR_TEXT_MAX];
    char sqlstate[6];
};

static void s_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* s_where - "host=... port=... db=... user=..." from the URL's parts, leaving out the password;
 * NULL when libpq cannot parse the URL (err says why) */
static char *s_where(const char *url, char *err, size_t size)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        /* libpq's message quotes the offending part of the URL, which may be the password */
        snprintf(err, size, "not a PostgreSQL URL or connection string");
        PQfreemem(perr);
        return NULL;
    }
    const char *host = "", *port = "", *db = "", *user = "";
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0 || (strcmp(o->keyword, "hostaddr") == 0 && !*host))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    char *where = sr_asprintf("host=%s port=%s db=%s user=%s", host, port, db, user);
    PQconninfoFree(opts);
    return where;
}

/* s_set_error - libpq messages end in a newline and may span lines; keep the first line */
static void s_set_error(sr_db_t *self, const char *msg, const char *sqlstate)
{
    snprintf(self->error, sizeof self->error, "%s", msg && *msg ? msg : "unknown error");
    size_t n = strcspn(self->error, "\r\n");
    self->error[n] = '\0';
    snprintf(self->sqlstate, sizeof self->sqlstate, "%s", sqlstate ? sqlstate : "");
}

static void s_clear_error(sr_db_t *self)
{
    self->error[0] = '\0';
    self->sqlstate[0] = '\0';
}

/* s_check - keep res when it succeeded; otherwise record its error, clear it and return NULL */
static PGresult *s_check(sr_db_t *self, PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
        s_clear_error(self);
        return res;
    }
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (res)
        s_set_error(self, primary ? primary : PQresultErrorMessage(res),
                    PQresultErrorField(res, PG_DIAG_SQLSTATE));
    else
        s_set_error(self, PQerrorMessage(self->conn), NULL);
    PQclear(res);
    return NULL;
}

/* s_notice - server notices and warnings as log lines instead of libpq's bare stderr text */
static void s_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    int warning = severity && strcmp(severity, "WARNING") == 0;
    sr_log(warning ? SR_LOG_WARN : SR_LOG_DEBUG, "db_notice", "severity=%s msg=\"%s\"",
           severity ? severity : "", msg ? msg : "");
}

sr_db_t *sr_db_connect(const char *url, const char *app_name, int attempts, int64_t max_backoff_ms)
{
    char err[ERROR_TEXT_MAX];
    char *where = s_where(url ? url : "", err, sizeof err);
    if (!where) {
        sr_error("db_url_invalid", "err=\"%s\"", err);
        return NULL;
    }
    /* keepalives and tcp_user_timeout turn a vanished server or network into an error within
     * seconds instead of a call blocked for the kernel's TCP timeout; the URL may override them,
     * since it is expanded after them */
    const char *keys[] = {"connect_timeout",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "dbname",
                          "application_name",
                          NULL};
    const char *vals[] = {CONNECT_TIMEOUT_S,
                          "1",
                          "10",
                          "5",
                          "3",
                          "30000",
                          url,
                          app_name ? app_name : "showrunner",
                          NULL};
    int64_t backoff = FIRST_BACKOFF_MS;
    if (max_backoff_ms < FIRST_BACKOFF_MS)
        max_backoff_ms = FIRST_BACKOFF_MS;
    if (attempts < 1)
        attempts = 1;
    for (int attempt = 1; attempt <= attempts; attempt++) {
        PGconn *conn = PQconnectdbParams(keys, vals, 1);
        if (conn && PQstatus(conn) == CONNECTION_OK) {
            sr_db_t *self = sr_calloc(1, sizeof *self);
            PQsetNoticeReceiver(conn, s_notice, NULL);
            self->conn = conn;
            self->where = where;
            self->max_backoff_ms = max_backoff_ms;
            self->backoff_ms = FIRST_BACKOFF_MS;
            self->complaint = (sr_complaint_t)SR_COMPLAINT_INIT("db");
            sr_info("db_connected", "%s attempt=%d", where, attempt);
            return self;
        }
        snprintf(err, sizeof err, "%s", conn ? PQerrorMessage(conn) : "out of memory");
        err[strcspn(err, "\r\n")] = '\0';
        sr_warn("db_connect_failed", "%s attempt=%d of=%d err=\"%s\"", where, attempt, attempts,
                err);
        PQfinish(conn);
        if (attempt < attempts) {
            s_sleep_ms(backoff);
            backoff = backoff * 2 > max_backoff_ms ? max_backoff_ms : backoff * 2;
        }
    }
    free(where);
    return NULL;
}

void sr_db_destroy(sr_db_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_db_t *self = *self_p;
    PQfinish(self->conn);
    for (size_t i = 0; i < self->nstmts; i++) {
        free(self->stmts[i].name);
        free(self->stmts[i].sql);
    }
    free(self->stmts);
    free(self->where);
    free(self);
    *self_p = NULL;
}

PGconn *sr_db_conn(sr_db_t *self)
{
    return self->conn;
}

static int s_prepare_one(sr_db_t *self, const stmt_t *st)
{
    PGresult *res = s_check(self, PQprepare(self->conn, st->name, st->sql, st->nparams, NULL));
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

/* s_prepare_all - prepare every remembered statement on a fresh session. One that no longer
 * prepares on a live connection (its table went away) is logged and forgotten, so that it does
 * not keep the whole connection down and the next sr_db_prepare of it reports the cause. */
static int s_prepare_all(sr_db_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->nstmts; i++) {
        stmt_t st = self->stmts[i];
        int ok = PQstatus(self->conn) == CONNECTION_OK && s_prepare_one(self, &st) == 0;
        if (ok || PQstatus(self->conn) != CONNECTION_OK) {
            self->stmts[kept++] = st;
            continue;
        }
        sr_warn("db_prepare_failed", "%s statement=%s err=\"%s\"", self->where, st.name,
                self->error);
        free(st.name);
        free(st.sql);
    }
    self->nstmts = kept;
    return PQstatus(self->conn) == CONNECTION_OK ? 0 : -1;
}

int sr_db_ok(sr_db_t *self)
{
    if (PQstatus(self->conn) == CONNECTION_OK)
        return 1;
    int64_t now = sr_clock_mono_ms();
    if (now < self->next_reset_ms)
        return 0;
    PQreset(self->conn);
    if (PQstatus(self->conn) == CONNECTION_OK && s_prepare_all(self) == 0) {
        self->backoff_ms = FIRST_BACKOFF_MS;
        self->next_reset_ms = 0;
        sr_recovered(&self->complaint);
        sr_info("db_reconnected", "%s", self->where);
        return 1;
    }
    char line[ERROR_TEXT_MAX];
    snprintf(line, sizeof line, "%s", PQerrorMessage(self->conn));
    line[strcspn(line, "\r\n")] = '\0';
    sr_complain(&self->complaint, "%s retry_ms=%lld err=\"%s\"", self->where,
                (long long)self->backoff_ms, line);
    self->next_reset_ms = now + self->backoff_ms;
    self->backoff_ms *= 2;
    if (self->backoff_ms > self->max_backoff_ms)
        self->backoff_ms = self->max_backoff_ms;
    return 0;
}

int sr_db_ping(sr_db_t *self)
{
    return sr_db_exec(self, "SELECT 1");
}

int sr_db_prepare(sr_db_t *self, const char *name, const char *sql, int nparams)
{
    if (strlen(name) > SR_DB_NAME_MAX) {
        s_set_error(self, "statement name longer than 63 bytes", "42622");
        return -1;
    }
    for (size_t i = 0; i < self->nstmts; i++) {
        if (strcmp(self->stmts[i].name, name) != 0)
            continue;
        if (strcmp(self->stmts[i].sql, sql) == 0 && self->stmts[i].nparams == nparams)
            return 0;
        s_set_error(self, "statement already prepared with other SQL", "42P05");
        return -1;
    }
    stmt_t st = {.name = (char *)name, .sql = (char *)sql, .nparams = nparams};
    if (s_prepare_one(self, &st) != 0)
        return -1;
    self->stmts = sr_realloc(self->stmts, (self->nstmts + 1) * sizeof *self->stmts);
    self->stmts[self->nstmts++] =
        (stmt_t){.name = sr_strdup(name), .sql = sr_strdup(sql), .nparams = nparams};
    return 0;
}

PGresult *sr_db_run(sr_db_t *self, const char *name, int nparams, const char *const *params)
{
    return s_check(self, PQexecPrepared(self->conn, name, nparams, params, NULL, NULL, 0));
}

PGresult *sr_db_run_binary(sr_db_t *self, const char *name, int nparams, const char *const *params,
                           const int *lengths, const int *formats, int result_format)
{
    return s_check(
        self, PQexecPrepared(self->conn, name, nparams, params, lengths, formats, result_format));
}

PGresult *sr_db_query(sr_db_t *self, const char *sql, int nparams, const char *const *params)
{
    return s_check(self, PQexecParams(self->conn, sql, nparams, NULL, params, NULL, NULL, 0));
}

int sr_db_exec(sr_db_t *self, const char *sql)
{
    PGresult *res = s_check(self, PQexec(self->conn, sql));
    if (!res)
        return -1;
    PQclear(res);
    return 0;
}

const char *sr_db_error(const sr_db_t *self)
{
    return self->error;
}

const char *sr_db_sqlstate(const sr_db_t *self)
{
    return self->sqlstate;
}

int sr_db_begin(sr_db_t *self)
{
    return sr_db_exec(self, "BEGIN");
}

/* sr_db_commit - COMMIT of a transaction that already failed answers "ROLLBACK" without an
 * error; that is a failed commit too */
int sr_db_commit(sr_db_t *self)
{
    PGresult *res = s_check(self, PQexec(self->conn, "COMMIT"));
    if (!res)
        return -1;
    int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    if (rolled_back) {
        s_set_error(self, "the transaction had failed and was rolled back", "25P02");
        return -1;
    }
    return 0;
}

/* sr_db_rollback - keeps the error of the statement that made the caller roll back */
void sr_db_rollback(sr_db_t *self)
{
    PQclear(PQexec(self->conn, "ROLLBACK"));
}

int sr_db_tx(sr_db_t *self, int (*fn)(sr_db_t *db, void *arg), void *arg)
{
    if (sr_db_begin(self) != 0)
        return -1;
    int rc = fn(self, arg);
    if (rc != 0) {
        sr_db_rollback(self);
        return rc;
    }
    return sr_db_commit(self) == 0 ? 0 : -1;
}

const char *sr_db_text_array(sr_arena_t *arena, char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(items[i]) + 3;
    char *out = sr_arena_alloc(arena, len);
    size_t at = 0;
    out[at++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[at++] = ',';
        out[at++] = '"';
        for (const char *c = items[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                out[at++] = '\\';
            out[at++] = *c;
        }
        out[at++] = '"';
    }
    out[at++] = '}';
    out[at] = '\0';
    return out;
}
