/* test_service - the daemon skeleton (sr_service_main) run for real in a child process against
 * the throwaway PostgreSQL and a real sr-busd: migrations at start-up, /healthz following the
 * database and the bus, the outbox publisher delivering a committed event, staged shutdown,
 * and exit statuses for a dead database. */
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_db.h"
#include "sr_log.h"
#include "sr_outbox.h"
#include "sr_service.h"
#include "sr_test.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

#define SCHEMA "t_service"

static const sr_migration_t s_migrations[] = {
    {1, "001_items.sql", "CREATE TABLE t_service.items (id bigint PRIMARY KEY, name text);"},
    {0, NULL, NULL},
};

static int s_drain_calls;
static int s_drain_forever;

static int s_drain(sr_service_t *svc)
{
    (void)svc;
    s_drain_calls++;
    if (s_drain_forever)
        return 0;
    if (s_drain_calls < 3)
        return 0;
    sr_info("test_drained", "calls=%d", s_drain_calls);
    return 1;
}

static const sr_service_def_t s_def = {
    .name = "testd",
    .summary = "a daemon for the skeleton's test",
    .needs = SR_NEEDS_DB | SR_NEEDS_PUB,
    .admin_port = 0,
    .schema = SCHEMA,
    .migrations = s_migrations,
    .drain = s_drain,
};

typedef struct {
    sr_test_busd_t bus;
} fixture_t;

static fixture_t s_fx;

/* s_spawn_daemon - fork, set the environment, run sr_service_main with s_def */
static pid_t s_spawn_daemon(uint16_t admin, const char *db_url, const char *log_path)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    FILE *f = freopen(log_path, "a", stderr);
    (void)f;
    char port[16];
    snprintf(port, sizeof port, "%u", admin);
    setenv("SR_ADMIN_PORT", port, 1);
    setenv("SR_DB_URL", db_url, 1);
    setenv("SR_DB_CONNECT_ATTEMPTS", "2", 1);
    setenv("SR_BUS_PUB", s_fx.bus.front_ep, 1);
    setenv("SR_CRON_INTERVAL", "100ms", 1);
    setenv("SR_DRAIN_TIMEOUT", "5s", 1);
    char *argv[] = {"sr-testd", NULL};
    _exit(sr_service_main(1, argv, &s_def));
}

static int s_group_setup(void **state)
{
    (void)state;
    sr_test_busd_start(&s_fx.bus);
    sr_db_t *db = sr_test_db("test_service");
    sr_test_db_reset_schema(db, SCHEMA);
    sr_db_destroy(&db);
    return 0;
}

static int s_group_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    return 0;
}

static char *s_health(uint16_t admin, long *status)
{
    char url[96], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", admin);
    *status = sr_test_http_get(url, &body);
    return body;
}

/* s_wait_health - poll /healthz until status and body fragment match */
static int s_wait_health(uint16_t admin, long want, const char *fragment, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        long status;
        char *body = s_health(admin, &status);
        int ok = status == want && strstr(body, fragment);
        free(body);
        if (ok)
            return 0;
        sr_test_sleep_ms(100);
    }
    return -1;
}

static long s_count(sr_db_t *db, const char *sql)
{
    PGresult *r = sr_db_query(db, sql, 0, NULL);
    assert_non_null(r);
    long n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

static int s_put_event(sr_db_t *db, void *arg)
{
    Sr__OrderEvent o = SR__ORDER_EVENT__INIT;
    o.order_id = arg;
    o.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
    return sr_outbox_put(db, SCHEMA, "test", "order.paid", &o.base, "trace-svc", NULL);
}

static void test_lifecycle(void **state)
{
    (void)state;
    uint16_t admin = sr_test_free_port();
    char *log = sr_asprintf("%s/testd.log", sr_test_env("SR_TEST_TMP"));
    pid_t pid = s_spawn_daemon(admin, sr_test_env("SR_TEST_DB_URL"), log);
    assert_int_equal(s_wait_health(admin, 200, "\"bus\":\"ok\"", 10000), 0);
    assert_int_equal(s_wait_health(admin, 200, "\"db\":\"ok\"", 1000), 0);

    /* migrations ran at start-up: version 0 (outbox) and 1 */
    sr_db_t *db = sr_test_db("test_service");
    assert_int_equal(s_count(db, "SELECT count(*) FROM public.sr_migrations WHERE schema = "
                                 "'t_service'"),
                     2);
    assert_int_equal(s_count(db, "SELECT count(*) FROM t_service.items"), 0);

    /* an event committed to the outbox reaches a bus subscriber through the daemon's cron */
    void *ctx = zmq_ctx_new();
    sr_bus_sub_t *sub = sr_bus_sub_new(ctx, s_fx.bus.back_ep, &(sr_bus_opts_t){0});
    assert_int_equal(sr_bus_subscribe(sub, "order."), 0);
    sr_test_sleep_ms(300);
    assert_int_equal(sr_db_tx(db, s_put_event, "o-outbox-1"), 0);
    sr_arena_t *arena = sr_arena_new(4096);
    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, arena, &msg, 5000), SR_BUS_RECV_OK);
    assert_string_equal(msg.topic, "order.paid");
    assert_string_equal(msg.envelope->source, SCHEMA);
    assert_int_equal(msg.envelope->seq, 1);
    assert_string_equal(((Sr__OrderEvent *)msg.payload)->order_id, "o-outbox-1");
    sr_arena_destroy(&arena);
    sr_bus_sub_destroy(&sub);
    zmq_ctx_term(ctx);

    /* bus down -> 503 naming the bus; back -> 200 */
    sr_test_stop(s_fx.bus.pid, SIGKILL, 2000);
    assert_int_equal(s_wait_health(admin, 503, "\"bus\":\"down", 10000), 0);
    sr_test_busd_start(&s_fx.bus);
    assert_int_equal(s_wait_health(admin, 200, "\"bus\":\"ok\"", 10000), 0);

    /* the cron counts its rounds on /metrics */
    char url[96], *metrics = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", admin);
    assert_int_equal(sr_test_http_get(url, &metrics), 200);
    assert_non_null(strstr(metrics, "sr_service_cron_runs_total "));
    assert_non_null(strstr(metrics, "service=\"testd\""));
    free(metrics);

    /* first SIGTERM drains (drain called until it says done), exit 0 */
    int status = sr_test_stop(pid, SIGTERM, 5000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *text = sr_test_read_file(log, NULL);
    assert_non_null(strstr(text, "event=test_drained calls=3"));
    assert_non_null(strstr(text, "event=stopped exit=0"));
    assert_null(strstr(text, "postgresql://")); /* the database URL is never logged */
    free(text);
    sr_db_destroy(&db);
    free(log);
}

static void test_second_signal_stops_at_once(void **state)
{
    (void)state;
    s_drain_forever = 1;
    uint16_t admin = sr_test_free_port();
    char *log = sr_asprintf("%s/testd-2.log", sr_test_env("SR_TEST_TMP"));
    pid_t pid = s_spawn_daemon(admin, sr_test_env("SR_TEST_DB_URL"), log);
    assert_int_equal(s_wait_health(admin, 200, "\"db\":\"ok\"", 10000), 0);
    kill(pid, SIGTERM);
    sr_test_sleep_ms(300);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still draining */
    int status = sr_test_stop(pid, SIGTERM, 1000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1); /* the drain was cut short */
    char *text = sr_test_read_file(log, NULL);
    assert_non_null(strstr(text, "event=stop_now"));
    free(text);
    free(log);
    s_drain_forever = 0;
}

static void test_dead_database_exits_1(void **state)
{
    (void)state;
    uint16_t admin = sr_test_free_port();
    char *url =
        sr_asprintf("postgresql://showrunner:hunter2@127.0.0.1:%u/showrunner", sr_test_free_port());
    char *log = sr_asprintf("%s/testd-3.log", sr_test_env("SR_TEST_TMP"));
    pid_t pid = s_spawn_daemon(admin, url, log);
    int status = sr_test_stop(pid, 0, 20000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *text = sr_test_read_file(log, NULL);
    assert_non_null(strstr(text, "event=db_unreachable"));
    assert_null(strstr(text, "hunter2"));
    free(text);
    free(log);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_second_signal_stops_at_once),
        cmocka_unit_test(test_dead_database_exits_1),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
