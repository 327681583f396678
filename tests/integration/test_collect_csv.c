/* test_collect_csv - `sr-collect --csv` against a real sr-ingestd, sr-busd and PostgreSQL: a good
 * export lands as exact rows and values in metrics.room_samples; importing it again is DUPLICATE
 * and adds nothing; a bad file exits 1 with its problems listed and stores nothing; bad arguments
 * exit 2. The files are tests/fixtures/csv/. */
#include "sr_alloc.h"
#include "sr_db.h"
#include "sr_test.h"

#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

typedef struct {
    pid_t busd, ingestd;
    char bus_front[64], bus_back[64], collector[64];
    uint16_t bus_admin, admin;
    char *log, *out;
    sr_db_t *db;
} fixture_t;

static fixture_t s_fx;

static void s_free_env(char **env)
{
    for (int i = 0; env[i]; i++)
        free(env[i]);
}

static void s_start(void)
{
    char *busd = sr_test_bin_path("sr-busd");
    char *bus_argv[] = {busd, NULL};
    char *bus_env[] = {sr_asprintf("SR_BUSD_FRONTEND=%s", s_fx.bus_front),
                       sr_asprintf("SR_BUSD_BACKEND=%s", s_fx.bus_back),
                       sr_asprintf("SR_ADMIN_PORT=%u", s_fx.bus_admin), NULL};
    s_fx.busd = sr_test_spawn(bus_argv, bus_env, NULL);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", s_fx.bus_admin);
    assert_int_equal(sr_test_wait_http(url, 200, 10000), 0);
    s_free_env(bus_env);
    free(busd);

    char *ingestd = sr_test_bin_path("sr-ingestd");
    char *argv[] = {ingestd, NULL};
    char *env[] = {sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL")),
                   sr_asprintf("SR_BUS_PUB=%s", s_fx.bus_front),
                   sr_asprintf("SR_ADMIN_PORT=%u", s_fx.admin),
                   sr_asprintf("SR_INGEST_COLLECTOR_BIND=%s", s_fx.collector),
                   sr_strdup("SR_INGEST_RPC_BIND="),
                   sr_strdup("SR_INGEST_FLUSH_INTERVAL=50ms"),
                   NULL};
    s_fx.ingestd = sr_test_spawn(argv, env, s_fx.log);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", s_fx.admin);
    assert_int_equal(sr_test_wait_http(url, 200, 15000), 0);
    s_free_env(env);
    free(ingestd);
}

static int s_group_setup(void **state)
{
    (void)state;
    s_fx.bus_admin = sr_test_free_port();
    s_fx.admin = sr_test_free_port();
    snprintf(s_fx.bus_front, sizeof s_fx.bus_front, "tcp://127.0.0.1:%u", sr_test_free_port());
    snprintf(s_fx.bus_back, sizeof s_fx.bus_back, "tcp://127.0.0.1:%u", sr_test_free_port());
    snprintf(s_fx.collector, sizeof s_fx.collector, "tcp://127.0.0.1:%u", sr_test_free_port());
    s_fx.log = sr_asprintf("%s/collect_csv_ingestd.log", sr_test_env("SR_TEST_TMP"));
    s_fx.out = sr_asprintf("%s/collect_csv.out", sr_test_env("SR_TEST_TMP"));
    s_fx.db = sr_test_db("test_collect_csv");
    sr_test_db_reset_schema(s_fx.db, "metrics");
    s_start();
    return 0;
}

static int s_group_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    sr_db_destroy(&s_fx.db);
    free(s_fx.log);
    free(s_fx.out);
    return 0;
}

/* s_text - the one value of a one-row query, "" for NULL; caller frees */
static char *s_text(const char *sql)
{
    PGresult *r = sr_db_query(s_fx.db, sql, 0, NULL);
    assert_non_null(r);
    assert_int_equal(PQntuples(r), 1);
    char *v = sr_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static long long s_count(const char *sql)
{
    char *v = s_text(sql);
    long long n = atoll(v);
    free(v);
    return n;
}

/* s_collect - run sr-collect with args (NULL-ended); its exit status, its output in *out */
static int s_collect(const char *const *args, char **out)
{
    char *argv[16] = {sr_test_bin_path("sr-collect")};
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    remove(s_fx.out);
    pid_t pid = sr_test_spawn(argv, NULL, s_fx.out);
    int status = sr_test_stop(pid, 0, 60000);
    free(argv[0]);
    assert_true(WIFEXITED(status));
    *out = sr_test_read_file(s_fx.out, NULL);
    if (!*out)
        *out = sr_strdup("");
    return WEXITSTATUS(status);
}

/* s_assert_has - out contains want; shows out when it does not */
static void s_assert_has(const char *out, const char *want)
{
    if (!strstr(out, want))
        fprintf(stderr, "missing \"%s\" in:\n%s\n", want, out);
    assert_non_null(strstr(out, want));
}

static char *s_fixture(const char *name)
{
    return sr_asprintf("%s/tests/fixtures/csv/%s", sr_test_env("SR_TEST_ROOT"), name);
}

/* s_collector_id - csv:PLATFORM:first 16 hex of the file's SHA-256, as sr-collect names it */
static char *s_collector_id(const char *platform, const char *path, const char *suffix)
{
    size_t len = 0;
    char *data = sr_test_read_file(path, &len);
    assert_non_null(data);
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[crypto_hash_sha256_BYTES * 2 + 1];
    crypto_hash_sha256(hash, (unsigned char *)data, len);
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    free(data);
    return sr_asprintf("collector_id=csv:%s:%.16s%s rows=", platform, hex, suffix);
}

#define DOUYIN_ROWS                                                                                \
    "SELECT string_agg(concat_ws(',', platform, session_id, extract(epoch FROM ts)::bigint, "      \
    "online_viewers, cumulative_viewers, avg_watch_seconds, gmv_fen, orders_paid, paid_buyers, "   \
    "new_followers, comments, likes, refunds_fen, ad_spend_fen), ';' ORDER BY ts) "                \
    "FROM metrics.room_samples WHERE room_id = '7312345678901234567'"

static void test_import_twice(void **state)
{
    (void)state;
    char *file = s_fixture("douyin_zh.csv"), *out;
    char *id = s_collector_id("douyin", file, ":batch=2");
    for (int round = 0; round < 2; round++) {
        const char *args[] = {"--csv",        file,      "--platform", "douyin", "--endpoints",
                              s_fx.collector, "--batch", "2",          NULL};
        assert_int_equal(s_collect(args, &out), 0);
        s_assert_has(out, id);
        s_assert_has(out, "rows=3\n");
        s_assert_has(out, round == 0 ? "rows_sent=3 batches=2 stored=2 duplicate=0"
                                     : "rows_sent=3 batches=2 stored=0 duplicate=2");
        free(out);
        assert_int_equal(s_count("SELECT count(*) FROM metrics.room_samples"), 3);
    }
    char *rows = s_text(DOUYIN_ROWS);
    assert_string_equal(rows, "2,7312000000000000001,1797076800,25412,812345,96,234567890,14011,"
                              "13002,9921,90211,2201873,4567812,3000050;"
                              "2,7312000000000000001,1797076805,25500,812901,97,234570000,14012,"
                              "13003,9925,90300,2202000,0,0;"
                              "2,7312000000000000001,1797076810,0,813000,0,1,14012,13003,9925,"
                              "90300,2202000,10,0");
    free(rows);
    free(id);
    free(file);
}

/* the room is part of the import: the same file for another room is stored again */
static void test_room_argument(void **state)
{
    (void)state;
    char *file = s_fixture("channels_zh.csv"), *out;
    const char *rooms[] = {"ch-room-1", "ch-room-2"};
    for (size_t i = 0; i < 2; i++) {
        char *id = s_collector_id("channels", file, i ? ":room=ch-room-2" : ":room=ch-room-1");
        const char *args[] = {"--csv",  file,          "--platform",   "channels", "--room",
                              rooms[i], "--endpoints", s_fx.collector, NULL};
        assert_int_equal(s_collect(args, &out), 0);
        s_assert_has(out, id);
        s_assert_has(out, "rows_sent=2 batches=1 stored=1 duplicate=0");
        free(out);
        free(id);
    }
    char *rows = s_text("SELECT string_agg(concat_ws(',', platform, room_id, session_id, "
                        "extract(epoch FROM ts)::bigint, online_viewers, gmv_fen, refunds_fen, "
                        "product_clicks), ';' ORDER BY room_id, ts) FROM metrics.room_samples "
                        "WHERE room_id LIKE 'ch-room-%'");
    assert_string_equal(rows, "1,ch-room-1,ch-live-20261212-0001,1797062460,12873,123456789,"
                              "2345600,48210;"
                              "1,ch-room-1,ch-live-20261212-0001,1797062490,12900,123460000,"
                              "2345600,48300;"
                              "1,ch-room-2,ch-live-20261212-0001,1797062460,12873,123456789,"
                              "2345600,48210;"
                              "1,ch-room-2,ch-live-20261212-0001,1797062490,12900,123460000,"
                              "2345600,48300");
    free(rows);
    free(file);
}

static void test_bad_file(void **state)
{
    (void)state;
    long long before = s_count("SELECT count(*) FROM metrics.room_samples");
    long long batches = s_count("SELECT count(*) FROM metrics.batches");
    char *file = s_fixture("douyin_bad.csv"), *out;
    const char *args[] = {"--csv",       file,           "--platform", "douyin",
                          "--endpoints", s_fx.collector, NULL};
    assert_int_equal(s_collect(args, &out), 1);
    const char *want[] = {
        "douyin_bad.csv:2:4: 成交金额(元): more than 2 decimals: \"1.234\"\n",
        "douyin_bad.csv:3:3: 实时在线人数: not a number: \"1,00\"\n",
        "douyin_bad.csv:4:5: 点赞次数: missing (4 fields, the header has 5)\n",
        "douyin_bad.csv rejected, nothing sent\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        s_assert_has(out, want[i]);
    assert_null(strstr(out, "rows_sent="));
    free(out);
    assert_int_equal(s_count("SELECT count(*) FROM metrics.room_samples"), before);
    assert_int_equal(s_count("SELECT count(*) FROM metrics.batches"), batches);
    free(file);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    char *out;
    const char *cases[][8] = {
        {"--csv", "x.csv", "--endpoints", s_fx.collector, NULL}, /* no --platform */
        {"--csv", "x.csv", "--platform", "taobao", "--endpoints", s_fx.collector, NULL},
        {"--proto", "x.bin", "--platform", "douyin", "--endpoints", s_fx.collector, NULL},
        {"--proto", "x.bin", "--csv", "x.csv", "--platform", "douyin", "--endpoints", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(s_collect(cases[i], &out), 2);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_twice),
        cmocka_unit_test(test_room_argument),
        cmocka_unit_test(test_bad_file),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
