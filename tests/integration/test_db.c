/* test_db - sr_db against a real PostgreSQL (SR_TEST_DB_URL): parameters stored verbatim,
 * transactions, errors with their SQLSTATE, retries against a dead port, and recovery with the
 * prepared statements after the server killed the session; a row read as a protobuf message
 * (sr_pbrow) with every type it takes, arrays, NULLs and the columns it refuses. Works in schema
 * t_db. */
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_db.h"
#include "sr_pbrow.h"
#include "pbtest.pb-c.h"
#include "sr_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* s_value - the one text value of sql with params, copied; NULL for SQL NULL or no row */
static char *s_value(sr_db_t *db, const char *sql, int n, const char *const *params)
{
    PGresult *res = sr_db_query(db, sql, n, params);
    if (!res)
        fail_msg("%s: %s", sql, sr_db_error(db));
    char *v =
        PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) ? sr_strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return v;
}

static long s_count(sr_db_t *db, const char *sql)
{
    char *v = s_value(db, sql, 0, NULL);
    assert_non_null(v);
    long n = atol(v);
    free(v);
    return n;
}

static int setup(void **state)
{
    sr_db_t *db = sr_test_db("test_db");
    sr_test_db_exec(db, "DROP SCHEMA IF EXISTS t_db CASCADE");
    sr_test_db_exec(db, "CREATE SCHEMA t_db");
    sr_test_db_exec(db, "CREATE TABLE t_db.kv (k text PRIMARY KEY, v text)");
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_exec(db, "DROP SCHEMA IF EXISTS t_db CASCADE");
    sr_db_destroy(&db);
    assert_null(db);
    return 0;
}

static void test_application_name(void **state)
{
    sr_db_t *db = *state;
    char *name = s_value(
        db, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()", 0, NULL);
    assert_string_equal(name, "test_db");
    free(name);
    assert_int_equal(sr_db_ping(db), 0);
    assert_int_equal(sr_db_ok(db), 1);
}

static void test_params_stored_verbatim(void **state)
{
    sr_db_t *db = *state;
    static const char *const values[] = {
        "'); DROP TABLE t_db.kv; --",
        "$1 \\x00 \" ' ; -- /* */",
        "line one\nline two\ttab",
        "多字节 文本",
        "",
    };
    assert_int_equal(sr_db_prepare(db, "kv_put", "INSERT INTO t_db.kv (k, v) VALUES ($1, $2)", 2),
                     0);
    /* the same statement again is a no-op; another SQL under that name is refused */
    assert_int_equal(sr_db_prepare(db, "kv_put", "INSERT INTO t_db.kv (k, v) VALUES ($1, $2)", 2),
                     0);
    assert_int_equal(sr_db_prepare(db, "kv_put", "SELECT 1", 0), -1);
    /* PostgreSQL would cut a longer name, and two of them could collide */
    char long_name[SR_DB_NAME_MAX + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(sr_db_prepare(db, long_name, "SELECT 1", 0), -1);
    long_name[SR_DB_NAME_MAX] = '\0';
    assert_int_equal(sr_db_prepare(db, long_name, "SELECT 1", 0), 0);
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%zu", i);
        const char *params[] = {key, values[i]};
        PGresult *res = sr_db_run(db, "kv_put", 2, params);
        assert_non_null(res);
        assert_string_equal(PQcmdTuples(res), "1");
        PQclear(res);
        const char *key_param[] = {key};
        char *got = s_value(db, "SELECT v FROM t_db.kv WHERE k = $1", 1, key_param);
        assert_non_null(got);
        assert_string_equal(got, values[i]);
        free(got);
    }
    const char *null_params[] = {"knull", NULL};
    PGresult *res = sr_db_run(db, "kv_put", 2, null_params);
    assert_non_null(res);
    PQclear(res);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k = 'knull' AND v IS NULL"),
                     1);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv"), 6);
    sr_test_db_exec(db, "DELETE FROM t_db.kv");
}

static void test_errors_have_sqlstate(void **state)
{
    sr_db_t *db = *state;
    static const struct {
        const char *sql;
        const char *sqlstate;
        const char *text;
    } cases[] = {
        {"SELECT * FROM t_db.missing", "42P01", "does not exist"},
        {"SELEC 1", "42601", "syntax error"},
        {"SELECT 1 / 0", "22012", "division by zero"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_null(sr_db_query(db, cases[i].sql, 0, NULL));
        assert_string_equal(sr_db_sqlstate(db), cases[i].sqlstate);
        assert_non_null(strstr(sr_db_error(db), cases[i].text));
        assert_null(strchr(sr_db_error(db), '\n'));
        assert_int_equal(sr_db_exec(db, cases[i].sql), -1);
        assert_string_equal(sr_db_sqlstate(db), cases[i].sqlstate);
    }
    const char *dup[] = {"same", "v"};
    PGresult *res = sr_db_query(db, "INSERT INTO t_db.kv VALUES ($1, $2)", 2, dup);
    assert_non_null(res);
    PQclear(res);
    assert_string_equal(sr_db_error(db), "");
    assert_string_equal(sr_db_sqlstate(db), "");
    assert_null(sr_db_query(db, "INSERT INTO t_db.kv VALUES ($1, $2)", 2, dup));
    assert_string_equal(sr_db_sqlstate(db), "23505");
    assert_null(sr_db_run(db, "no_such_statement", 0, NULL));
    assert_string_equal(sr_db_sqlstate(db), "26000");
    sr_test_db_exec(db, "DELETE FROM t_db.kv");
}

static int s_insert_two(sr_db_t *db, void *arg)
{
    const char *prefix = arg;
    for (int i = 0; i < 2; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s%d", prefix, i);
        const char *params[] = {key, "x"};
        PGresult *res = sr_db_query(db, "INSERT INTO t_db.kv VALUES ($1, $2)", 2, params);
        if (!res)
            return -1;
        PQclear(res);
    }
    return strcmp(prefix, "undo") == 0 ? 7 : 0;
}

/* s_fail_quietly - a statement fails but fn says 0: COMMIT must not report success */
static int s_fail_quietly(sr_db_t *db, void *arg)
{
    (void)arg;
    const char *params[] = {"quiet", "x"};
    PQclear(sr_db_query(db, "INSERT INTO t_db.kv VALUES ($1, $2)", 2, params));
    PQclear(sr_db_query(db, "SELECT 1 / 0", 0, NULL));
    return 0;
}

static void test_transactions(void **state)
{
    sr_db_t *db = *state;
    assert_int_equal(sr_db_tx(db, s_insert_two, "keep"), 0);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k LIKE 'keep%'"), 2);

    assert_int_equal(sr_db_tx(db, s_insert_two, "undo"), 7);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k LIKE 'undo%'"), 0);

    assert_int_equal(sr_db_tx(db, s_fail_quietly, NULL), -1);
    assert_string_equal(sr_db_sqlstate(db), "25P02");
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k = 'quiet'"), 0);

    assert_int_equal(sr_db_begin(db), 0);
    const char *params[] = {"manual", "x"};
    PQclear(sr_db_query(db, "INSERT INTO t_db.kv VALUES ($1, $2)", 2, params));
    sr_db_rollback(db);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k = 'manual'"), 0);
    assert_int_equal(sr_db_begin(db), 0);
    PQclear(sr_db_query(db, "INSERT INTO t_db.kv VALUES ($1, $2)", 2, params));
    assert_int_equal(sr_db_commit(db), 0);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k = 'manual'"), 1);
    assert_int_equal(PQtransactionStatus(sr_db_conn(db)), PQTRANS_IDLE);
    sr_test_db_exec(db, "DELETE FROM t_db.kv");
}

static void test_dead_port_fails_after_attempts(void **state)
{
    (void)state;
    char *url = sr_asprintf("postgresql://showrunner@127.0.0.1:%u/showrunner", sr_test_free_port());
    int64_t t0 = sr_clock_mono_ms();
    sr_db_t *db = sr_db_connect(url, "test_db", 4, 100);
    int64_t took = sr_clock_mono_ms() - t0;
    assert_null(db);
    assert_true(took >= 300); /* three waits of 100 ms between four attempts */
    assert_true(took < 5000);
    free(url);
}

/* s_check_recovered - after the kill: sr_db_ok resets, the prepared statement runs again */
static void s_check_recovered(sr_db_t *db, int old_pid)
{
    assert_int_not_equal(PQstatus(sr_db_conn(db)), CONNECTION_OK);
    assert_int_equal(sr_db_ok(db), 1);
    assert_int_not_equal(PQbackendPID(sr_db_conn(db)), old_pid);
    const char *params[] = {"after", "reset"};
    PGresult *res = sr_db_run(db, "kv_put2", 2, params);
    assert_non_null(res);
    PQclear(res);
    char *name = s_value(
        db, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()", 0, NULL);
    assert_string_equal(name, "test_db");
    free(name);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_db.kv WHERE k = 'after'"), 1);
    sr_test_db_exec(db, "DELETE FROM t_db.kv");
}

static void test_ok_recovers_after_own_kill(void **state)
{
    sr_db_t *db = *state;
    assert_int_equal(sr_db_prepare(db, "kv_put2", "INSERT INTO t_db.kv VALUES ($1, $2)", 2), 0);
    int pid = PQbackendPID(sr_db_conn(db));
    assert_null(sr_db_query(db, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL));
    s_check_recovered(db, pid);
}

static void test_ok_recovers_after_kill_by_other(void **state)
{
    sr_db_t *db = *state;
    assert_int_equal(sr_db_prepare(db, "kv_put2", "INSERT INTO t_db.kv VALUES ($1, $2)", 2), 0);
    int pid = PQbackendPID(sr_db_conn(db));
    sr_db_t *killer = sr_test_db("test_db");
    char pid_text[16];
    snprintf(pid_text, sizeof pid_text, "%d", pid);
    const char *params[] = {pid_text};
    char *killed = s_value(killer, "SELECT pg_terminate_backend($1::int, 5000)", 1, params);
    assert_string_equal(killed, "t");
    free(killed);
    sr_db_destroy(&killer);
    /* still looks up until a call fails on the dead socket */
    assert_int_equal(sr_db_ping(db), -1);
    s_check_recovered(db, pid);
}

/* a statement whose table went away is forgotten at the reset instead of keeping the
 * connection down; preparing it again reports why */
static void test_ok_forgets_statement_that_no_longer_prepares(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_exec(db, "CREATE TABLE t_db.gone (x int)");
    assert_int_equal(sr_db_prepare(db, "gone_put", "INSERT INTO t_db.gone VALUES ($1)", 1), 0);
    assert_int_equal(sr_db_prepare(db, "kv_put3", "INSERT INTO t_db.kv VALUES ($1, $2)", 2), 0);
    sr_test_db_exec(db, "DROP TABLE t_db.gone");
    assert_null(sr_db_query(db, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL));
    assert_int_equal(sr_db_ok(db), 1);
    const char *params[] = {"still", "here"};
    PGresult *res = sr_db_run(db, "kv_put3", 2, params);
    assert_non_null(res);
    PQclear(res);
    const char *one[] = {"1"};
    assert_null(sr_db_run(db, "gone_put", 1, one));
    assert_string_equal(sr_db_sqlstate(db), "26000");
    assert_int_equal(sr_db_prepare(db, "gone_put", "INSERT INTO t_db.gone VALUES ($1)", 1), -1);
    assert_string_equal(sr_db_sqlstate(db), "42P01");
    sr_test_db_exec(db, "DELETE FROM t_db.kv");
}

static void test_row_as_message(void **state)
{
    sr_db_t *db = *state;
    PGresult *res = sr_db_query(
        db,
        "SELECT -42 AS f_int32, -9007199254740993::bigint AS f_int64, 4294967295::bigint AS "
        "f_uint32, 2.5::float8 AS f_double, true AS f_bool, 'a \"b\" 直播' AS f_string, "
        "NULL::text AS no_such_field, ARRAY[1, -2]::bigint[] AS r_int64, "
        "ARRAY['x', 'y z', 'q\"', NULL]::text[] AS r_string",
        0, NULL);
    assert_non_null(res);
    sr_arena_t *arena = sr_arena_new(4096);
    char err[200];
    /* a column no field is named after is refused, naming it */
    assert_null(sr_pbrow_decode(res, 0, &pbtest__all__descriptor, arena, err, sizeof err));
    assert_non_null(strstr(err, "column no_such_field"));
    PQclear(res);
    res = sr_db_query(db,
                      "SELECT -42 AS f_int32, -9007199254740993::bigint AS f_int64, "
                      "4294967295::bigint AS f_uint32, 2.5::float8 AS f_double, true AS f_bool, "
                      "'a \"b\" 直播' AS f_string, NULL::bigint AS f_sint64, ARRAY[1, "
                      "-2]::bigint[] AS r_int64, ARRAY['x', 'y z', 'q\"']::text[] AS r_string",
                      0, NULL);
    Pbtest__All *m =
        (Pbtest__All *)sr_pbrow_decode(res, 0, &pbtest__all__descriptor, arena, err, sizeof err);
    PQclear(res);
    assert_non_null(m);
    assert_int_equal(m->f_int32, -42);
    assert_true(m->f_int64 == -9007199254740993LL);
    assert_int_equal(m->f_uint32, 4294967295u);
    assert_true(m->f_double == 2.5);
    assert_true(m->f_bool);
    assert_string_equal(m->f_string, "a \"b\" 直播");
    assert_int_equal(m->f_sint64, 0); /* NULL: the default */
    assert_int_equal(m->n_r_int64, 2);
    assert_true(m->r_int64[0] == 1 && m->r_int64[1] == -2);
    assert_int_equal(m->n_r_string, 3);
    assert_string_equal(m->r_string[1], "y z");
    assert_string_equal(m->r_string[2], "q\"");
    /* a field of a type it does not read (an enum) is refused */
    res = sr_db_query(db, "SELECT 1 AS f_enum", 0, NULL);
    assert_null(sr_pbrow_decode(res, 0, &pbtest__all__descriptor, arena, err, sizeof err));
    assert_non_null(strstr(err, "column f_enum"));
    PQclear(res);
    sr_arena_destroy(&arena);
}

/* message fields from json columns: an object, an array of objects, "[]"; rows decoded together */
static void test_rows_with_json_messages(void **state)
{
    sr_db_t *db = *state;
    PGresult *res = sr_db_query(db,
                                "SELECT n AS f_int64, f_inner, r_inner FROM (VALUES "
                                "(1, '{\"name\":\"直播 \\\"间\\\"\",\"count\":3}'::json, "
                                "'[{\"name\":\"a\",\"count\":1},{\"name\":\"b\"}]'::jsonb), "
                                "(2, NULL, '[]'::jsonb), "
                                "(3, '{}'::json, jsonb_build_array(json_build_object('count', "
                                "-7)))) v(n, f_inner, r_inner) "
                                "ORDER BY n",
                                0, NULL);
    assert_non_null(res);
    sr_arena_t *arena = sr_arena_new(4096);
    char err[200];
    Pbtest__All **rows = (Pbtest__All **)sr_pbrow_decode_rows(
        res, PQntuples(res), &pbtest__all__descriptor, arena, err, sizeof err);
    PQclear(res);
    assert_non_null(rows);
    assert_true(rows[0]->f_int64 == 1 && rows[1]->f_int64 == 2 && rows[2]->f_int64 == 3);
    assert_string_equal(rows[0]->f_inner->name, "直播 \"间\"");
    assert_int_equal(rows[0]->f_inner->count, 3);
    assert_int_equal(rows[0]->n_r_inner, 2);
    assert_string_equal(rows[0]->r_inner[0]->name, "a");
    assert_int_equal(rows[0]->r_inner[0]->count, 1);
    assert_string_equal(rows[0]->r_inner[1]->name, "b");
    assert_int_equal(rows[0]->r_inner[1]->count, 0);
    assert_null(rows[1]->f_inner);
    assert_int_equal(rows[1]->n_r_inner, 0);
    assert_non_null(rows[2]->f_inner);
    assert_string_equal(rows[2]->f_inner->name, "");
    assert_int_equal(rows[2]->n_r_inner, 1);
    assert_int_equal(rows[2]->r_inner[0]->count, -7);
    /* JSON that does not fit is refused, naming the column and the item */
    const struct {
        const char *sql, *why;
    } bad[] = {
        {"SELECT '{\"name\":\"x\",\"colour\":1}'::json AS f_inner", "column f_inner: colour"},
        {"SELECT '[{\"name\":\"x\"},{\"count\":\"many\"}]'::json AS r_inner",
         "column r_inner: [1] count"},
        {"SELECT '{\"name\":\"x\"}'::json AS r_inner", "column r_inner: not a JSON array"},
        {"SELECT '[1]'::json AS f_inner", "column f_inner"},
        {"SELECT 'not json' AS r_inner", "column r_inner"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        res = sr_db_query(db, bad[i].sql, 0, NULL);
        assert_non_null(res);
        assert_null(sr_pbrow_decode(res, 0, &pbtest__all__descriptor, arena, err, sizeof err));
        if (strncmp(err, bad[i].why, strlen(bad[i].why)) != 0)
            fail_msg("%s: %s, want %s...", bad[i].sql, err, bad[i].why);
        PQclear(res);
    }
    sr_arena_destroy(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_application_name),
        cmocka_unit_test(test_params_stored_verbatim),
        cmocka_unit_test(test_errors_have_sqlstate),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_dead_port_fails_after_attempts),
        cmocka_unit_test(test_ok_recovers_after_own_kill),
        cmocka_unit_test(test_ok_recovers_after_kill_by_other),
        cmocka_unit_test(test_ok_forgets_statement_that_no_longer_prepares),
        cmocka_unit_test(test_row_as_message),
        cmocka_unit_test(test_rows_with_json_messages),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
