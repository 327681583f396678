/* test_migrate - sr_migrate against a real PostgreSQL (SR_TEST_DB_URL): files from
 * tests/fixtures/migrations applied once, recorded exactly, a failing file rolled back with the
 * lock released, bad lists and folders refused, and several connections migrating one schema
 * at once applying every file exactly once. Works in schemas t_migrate*. */
#include "sr_alloc.h"
#include "sr_db.h"
#include "sr_migrate.h"
#include "sr_test.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define RACERS 6

/* s_rows - every row of sql as "a|b,c|d" (NULL as "-"); caller frees */
static char *s_rows(sr_db_t *db, const char *sql)
{
    PGresult *res = sr_db_query(db, sql, 0, NULL);
    if (!res)
        fail_msg("%s: %s", sql, sr_db_error(db));
    char *out = sr_strdup("");
    for (int r = 0; r < PQntuples(res); r++) {
        for (int c = 0; c < PQnfields(res); c++) {
            char *next = sr_asprintf("%s%s%s", out,
                                     r == 0 && c == 0 ? ""
                                     : c == 0         ? ","
                                                      : "|",
                                     PQgetisnull(res, r, c) ? "-" : PQgetvalue(res, r, c));
            free(out);
            out = next;
        }
    }
    PQclear(res);
    return out;
}

static void s_assert_rows(sr_db_t *db, const char *sql, const char *want)
{
    char *got = s_rows(db, sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s:\n got  %s\n want %s", sql, got, want);
    free(got);
}

/* s_dir - a fresh folder under SR_TEST_TMP holding links to the named fixture files
 * (paths relative to tests/fixtures/migrations), NULL-ended; caller frees the path */
static char *s_dir(const char *first, ...)
{
    char *dir = sr_asprintf("%s/migrate-XXXXXX", sr_test_env("SR_TEST_TMP"));
    assert_non_null(mkdtemp(dir));
    va_list ap;
    va_start(ap, first);
    for (const char *rel = first; rel; rel = va_arg(ap, const char *)) {
        char *fixture_rel = sr_asprintf("tests/fixtures/migrations/%s", rel);
        char *target = sr_test_root_path(fixture_rel);
        char *link = sr_asprintf("%s/%s", dir, strrchr(rel, '/') + 1);
        assert_int_equal(symlink(target, link), 0);
        free(fixture_rel);
        free(target);
        free(link);
    }
    va_end(ap);
    return dir;
}

/* s_write - a file with text in dir */
static void s_write(const char *dir, const char *name, const char *text)
{
    char *path = sr_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    free(path);
}

static int setup(void **state)
{
    *state = sr_test_db("test_migrate");
    return 0;
}

static int teardown(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_reset_schema(db, "t_migrate");
    sr_test_db_reset_schema(db, "t_migrate_race");
    sr_test_db_reset_schema(db, "t_migrate_list");
    sr_db_destroy(&db);
    return 0;
}

static void test_schema_names(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int ok;
    } cases[] = {
        {"a", 1},
        {"tasks", 1},
        {"t_1_x", 1},
        {"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk", 1},  /* 63 */
        {"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", 0}, /* 64 */
        {"", 0},
        {NULL, 0},
        {"Tasks", 0},
        {"1tasks", 0},
        {"_tasks", 0},
        {"ta-sks", 0},
        {"ta sks", 0},
        {"ta\"sks", 0},
        {"tasks;drop", 0},
        {"t\xc3\xa9", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (sr_migrate_schema_ok(cases[i].name) != cases[i].ok)
            fail_msg("schema name \"%s\": want %d", cases[i].name ? cases[i].name : "(null)",
                     cases[i].ok);
    }
}

static void test_apply_once_and_record(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_reset_schema(db, "t_migrate");
    char *dir = s_dir("ok/001_create.sql", "ok/002_seed.sql", NULL);
    assert_int_equal(sr_migrate_dir(db, "t_migrate", dir), 0);
    assert_int_equal(sr_migrate_dir(db, "t_migrate", dir), 0);

    s_assert_rows(db,
                  "SELECT version, name FROM public.sr_migrations WHERE schema = 't_migrate'"
                  " ORDER BY version",
                  "0|000_outbox,1|001_create.sql,2|002_seed.sql");
    s_assert_rows(db, "SELECT file FROM t_migrate.runs ORDER BY file", "001,002");
    s_assert_rows(db, "SELECT id, name FROM t_migrate.items ORDER BY id", "1|first,2|it's; second");
    s_assert_rows(db, "SELECT to_regclass('public.items') IS NULL", "t");
    s_assert_rows(db, "SELECT id, last FROM t_migrate.outbox_seq", "1|0");
    s_assert_rows(db, "SELECT id, published FROM t_migrate.outbox_state", "1|0");
    s_assert_rows(db, "SELECT count(*) FROM t_migrate.outbox", "0");
    s_assert_rows(db,
                  "SELECT count(*) FROM public.sr_migrations WHERE schema = 't_migrate'"
                  " AND applied_at > now() - interval '1 hour'",
                  "3");
    /* the search_path of a migration does not leak into the session */
    s_assert_rows(db, "SHOW search_path", "\"$user\", public");
    free(dir);
}

static void test_failing_file_rolls_back_and_unlocks(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_reset_schema(db, "t_migrate");
    char *broken = s_dir("ok/001_create.sql", "ok/002_seed.sql", "broken/003_broken.sql", NULL);
    assert_int_equal(sr_migrate_dir(db, "t_migrate", broken), -1);
    assert_string_equal(sr_db_sqlstate(db), "42703");
    assert_non_null(strstr(sr_db_error(db), "no_such_column"));
    s_assert_rows(db,
                  "SELECT version FROM public.sr_migrations WHERE schema = 't_migrate'"
                  " ORDER BY version",
                  "0,1,2");
    s_assert_rows(db, "SELECT file FROM t_migrate.runs ORDER BY file", "001,002");
    s_assert_rows(db, "SELECT to_regclass('t_migrate.half') IS NULL", "t");
    s_assert_rows(db,
                  "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                  " AND pid = pg_backend_pid()",
                  "0");
    assert_int_equal(PQtransactionStatus(sr_db_conn(db)), PQTRANS_IDLE);

    /* another session gets the lock (a bounded wait, so a leaked lock fails the test) */
    sr_db_t *other = sr_test_db("test_migrate");
    sr_test_db_exec(other, "SET lock_timeout = '5s'");
    sr_test_db_exec(other, "SET statement_timeout = '10s'");
    char *fixed = s_dir("ok/001_create.sql", "ok/002_seed.sql", "fixed/003_fixed.sql", NULL);
    assert_int_equal(sr_migrate_dir(other, "t_migrate", fixed), 0);
    s_assert_rows(db,
                  "SELECT version, name FROM public.sr_migrations WHERE schema = 't_migrate'"
                  " ORDER BY version",
                  "0|000_outbox,1|001_create.sql,2|002_seed.sql,3|003_fixed.sql");
    s_assert_rows(db, "SELECT file FROM t_migrate.runs ORDER BY file", "001,002,003");
    s_assert_rows(db, "SELECT to_regclass('t_migrate.half') IS NOT NULL", "t");
    sr_db_destroy(&other);
    free(broken);
    free(fixed);
}

static void test_bad_lists_refused(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_reset_schema(db, "t_migrate_list");
    static const sr_migration_t unordered[] = {
        {2, "002_b.sql", "CREATE TABLE b (x int)"},
        {1, "001_a.sql", "CREATE TABLE a (x int)"},
    };
    static const sr_migration_t duplicate[] = {
        {1, "001_a.sql", "CREATE TABLE a (x int)"},
        {1, "001_b.sql", "CREATE TABLE b (x int)"},
    };
    static const sr_migration_t zero[] = {{0, "000_a.sql", "CREATE TABLE a (x int)"}};
    static const sr_migration_t no_sql[] = {{1, "001_a.sql", NULL}};
    static const struct {
        const char *schema;
        const sr_migration_t *list;
        size_t count;
    } cases[] = {
        {"t_migrate_list", unordered, 2}, {"t_migrate_list", duplicate, 2},
        {"t_migrate_list", zero, 1},      {"t_migrate_list", no_sql, 1},
        {"T_migrate_list", NULL, 0},      {"t_migrate_list\"; drop", NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(sr_migrate(db, cases[i].schema, cases[i].list, cases[i].count), -1);
    s_assert_rows(db, "SELECT to_regnamespace('t_migrate_list') IS NULL", "t");

    /* a file older than one already applied would be skipped silently: refused */
    static const sr_migration_t first[] = {
        {1, "001_a.sql", "CREATE TABLE a (x int)"},
        {5, "005_e.sql", "CREATE TABLE e (x int)"},
    };
    static const sr_migration_t late[] = {
        {1, "001_a.sql", "CREATE TABLE a (x int)"},
        {4, "004_d.sql", "CREATE TABLE d (x int)"},
        {5, "005_e.sql", "CREATE TABLE e (x int)"},
    };
    assert_int_equal(sr_migrate(db, "t_migrate_list", first, 2), 0);
    assert_int_equal(sr_migrate(db, "t_migrate_list", late, 3), -1);
    s_assert_rows(db,
                  "SELECT version FROM public.sr_migrations WHERE schema = 't_migrate_list'"
                  " ORDER BY version",
                  "0,1,5");
    s_assert_rows(db, "SELECT to_regclass('t_migrate_list.d') IS NULL", "t");
}

static void test_bad_folders_refused(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_reset_schema(db, "t_migrate_list");
    static const struct {
        const char *files[2];
    } cases[] = {
        {{"001_a.sql", "001_b.sql"}}, /* one version twice */
        {{"001_a.sql", "x_b.sql"}},   /* no number */
        {{"001_a.sql", "002.sql"}},   /* no name */
        {{"000_a.sql", NULL}},        /* version 0 is the outbox */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *dir = s_dir(NULL);
        for (int f = 0; f < 2 && cases[i].files[f]; f++)
            s_write(dir, cases[i].files[f], "CREATE TABLE z (x int);");
        assert_int_equal(sr_migrate_dir(db, "t_migrate_list", dir), -1);
        free(dir);
    }
    s_assert_rows(db, "SELECT to_regnamespace('t_migrate_list') IS NULL", "t");
    assert_int_equal(sr_migrate_dir(db, "t_migrate_list", "/nonexistent/migrations"), -1);

    /* other files are ignored, and the files run in version order, not name order */
    char *dir = s_dir(NULL);
    s_write(dir, "README", "not sql");
    s_write(dir, "10_second.sql", "INSERT INTO t (x) VALUES (2);");
    s_write(dir, "9_first.sql", "CREATE TABLE t (x int); INSERT INTO t (x) VALUES (1);");
    assert_int_equal(sr_migrate_dir(db, "t_migrate_list", dir), 0);
    s_assert_rows(db,
                  "SELECT version, name FROM public.sr_migrations WHERE schema = 't_migrate_list'"
                  " ORDER BY version",
                  "0|000_outbox,9|9_first.sql,10|10_second.sql");
    free(dir);
}

typedef struct {
    pthread_barrier_t *start;
    const char *dir;
    int rc;
} racer_t;

static void *s_racer(void *arg)
{
    racer_t *r = arg;
    sr_db_t *db = sr_db_connect(sr_test_env("SR_TEST_DB_URL"), "test_migrate_racer", 3, 500);
    pthread_barrier_wait(r->start);
    r->rc = db ? sr_migrate_dir(db, "t_migrate_race", r->dir) : -2;
    sr_db_destroy(&db);
    return NULL;
}

static void test_concurrent_migrations(void **state)
{
    sr_db_t *db = *state;
    sr_test_db_reset_schema(db, "t_migrate_race");
    char *dir = s_dir("ok/001_create.sql", "ok/002_seed.sql", "fixed/003_fixed.sql", NULL);
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, RACERS), 0);
    pthread_t threads[RACERS];
    racer_t racers[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (racer_t){.start = &start, .dir = dir, .rc = -3};
        assert_int_equal(pthread_create(&threads[i], NULL, s_racer, &racers[i]), 0);
    }
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(racers[i].rc, 0);
    }
    pthread_barrier_destroy(&start);
    s_assert_rows(db, "SELECT file, count(*) FROM t_migrate_race.runs GROUP BY file ORDER BY file",
                  "001|1,002|1,003|1");
    s_assert_rows(db, "SELECT count(*) FROM t_migrate_race.items", "2");
    s_assert_rows(db, "SELECT count(*) FROM t_migrate_race.outbox_seq", "1");
    s_assert_rows(db,
                  "SELECT version FROM public.sr_migrations WHERE schema = 't_migrate_race'"
                  " ORDER BY version",
                  "0,1,2,3");
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_names),
        cmocka_unit_test(test_apply_once_and_record),
        cmocka_unit_test(test_failing_file_rolls_back_and_unlocks),
        cmocka_unit_test(test_bad_lists_refused),
        cmocka_unit_test(test_bad_folders_refused),
        cmocka_unit_test(test_concurrent_migrations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
