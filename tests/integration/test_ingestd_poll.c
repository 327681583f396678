/* test_ingestd_poll - sr-ingestd polling a real sr-simd through the real libcurl connectors:
 * with SR_INGEST_POLL_ROOMS=discover every room the simulator lists is stored in
 * metrics.room_samples with the values the simulator serves (its clock pinned), metric.room
 * reaches the bus, /metrics counts the polls, and the token never reaches the log; a listed room
 * the platform does not know is counted as a platform error while the other rooms still arrive;
 * orders stored from a collector batch are published as order.<status>; two instances split the
 * rooms and one takes them all when the other dies; bad polling settings
 * exit 2 naming the variable. Needs the SR_TEST_* environment (tests/run.sh). */
#include "collector.pb-c.h"
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_collector.h"
#include "sr_db.h"
#include "sr_test.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <zmq.h>

#define T0           1765526460 /* the simulator's pinned clock, unix seconds */
#define TOKEN        "tok-wire-7f3a9c"
#define ROOMS        6 /* SR_SIMD_ROOMS=2 on each of the three platforms */
#define ORDER_TS0_US 1767323045678901LL

typedef struct {
    sr_test_busd_t bus;
    pid_t simd, ingestd;
    char collector[64], simd_url[64];
    uint16_t simd_admin, admin;
    char *log;
    void *ctx;
    sr_bus_sub_t *sub; /* here so a failed test does not leave it to block zmq_ctx_term */
    sr_db_t *db;
} fixture_t;

static fixture_t s_fx;

/* what a platform's JSON says of one room, normalized as ingestd_platform.c does */
static const struct {
    const char *platform, *path, *online, *gmv;
    int gmv_kind; /* 0 fen integer, 1 yuan number, 2 yuan string */
    int platform_id;
} s_plat[] = {
    {"channels", "/channels/live/data", "online_audience_count", "total_gmv", 0, 1},
    {"douyin", "/douyin/compass/live_screen", "online_user_cnt", "pay_amt", 1, 2},
    {"kuaishou", "/kuaishou/live/realtime_uv", "onlineCount", "gmvYuan", 2, 3},
};

typedef struct {
    char platform[16], room_id[64];
    long long online, gmv_fen;
    int platform_id;
} expect_t;

static void s_wait_healthy(uint16_t port)
{
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", port);
    assert_int_equal(sr_test_wait_http(url, 200, 15000), 0);
}

static void s_start_simd(void)
{
    uint16_t port = sr_test_free_port();
    snprintf(s_fx.simd_url, sizeof s_fx.simd_url, "http://127.0.0.1:%u", port);
    char *bin = sr_test_bin_path("sr-simd");
    char *argv[] = {bin, NULL};
    char *env[] = {sr_asprintf("SR_SIMD_PORT=%u", port),
                   sr_asprintf("SR_ADMIN_PORT=%u", s_fx.simd_admin),
                   sr_strdup("SR_SIMD_ROOMS=2"),
                   sr_strdup("SR_SIMD_TOKEN=" TOKEN),
                   sr_asprintf("SR_SIMD_CLOCK=fixed:%d", T0),
                   NULL};
    s_fx.simd = sr_test_spawn(argv, env, NULL);
    s_wait_healthy(s_fx.simd_admin);
    sr_test_free_env(env);
    free(bin);
}

/* s_ingestd_env - ingestd's environment with the polling settings (rooms may be NULL) */
static char **s_ingestd_env(const char *rooms, const char *url)
{
    char **env = sr_calloc(20, sizeof *env);
    int n = 0;
    env[n++] = sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL"));
    env[n++] = sr_asprintf("SR_BUS_PUB=%s", s_fx.bus.front_ep);
    env[n++] = sr_asprintf("SR_ADMIN_PORT=%u", s_fx.admin);
    env[n++] = sr_asprintf("SR_INGEST_COLLECTOR_BIND=%s", s_fx.collector);
    env[n++] = sr_strdup("SR_INGEST_RPC_BIND=");
    env[n++] = sr_strdup("SR_INGEST_FLUSH_INTERVAL=50ms");
    env[n++] = sr_strdup("SR_INGEST_POLL_INTERVAL=200ms");
    env[n++] = sr_strdup("SR_INGEST_POLL_TIMEOUT=2s");
    env[n++] = sr_strdup("SR_INGEST_PLATFORM_TOKEN=" TOKEN);
    env[n++] = sr_strdup("SR_LOG_LEVEL=debug");
    env[n++] = sr_asprintf("SR_INGEST_PLATFORM_URL=%s", url ? url : s_fx.simd_url);
    if (rooms)
        env[n++] = sr_asprintf("SR_INGEST_POLL_ROOMS=%s", rooms);
    return env;
}

static void s_start_ingestd(const char *rooms)
{
    char *bin = sr_test_bin_path("sr-ingestd");
    char *argv[] = {bin, NULL};
    char **env = s_ingestd_env(rooms, NULL);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", s_fx.admin);
    assert_int_equal(sr_test_http_get(url, NULL), 0); /* the previous one is gone */
    s_fx.ingestd = sr_test_spawn(argv, env, s_fx.log);
    s_wait_healthy(s_fx.admin);
    /* /healthz answers before migrations: ready is when init registered its metrics */
    snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", s_fx.admin);
    int ready = 0;
    for (int tries = 0; tries < 150 && !ready; tries++) {
        char *body = NULL;
        ready = sr_test_http_get(url, &body) == 200 && strstr(body, "sr_ingest_queue_rows");
        free(body);
        if (!ready)
            sr_test_sleep_ms(100);
    }
    assert_true(ready);
    assert_int_equal(waitpid(s_fx.ingestd, NULL, WNOHANG), 0);
    sr_test_free_env(env);
    free(env);
    free(bin);
}

/* s_stop_ingestd - a clean stop: exit 0 (and, under ASan, no leak) */
static void s_stop_ingestd(void)
{
    int status = sr_test_stop(s_fx.ingestd, SIGTERM, 15000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    s_fx.ingestd = 0;
}

static int s_group_setup(void **state)
{
    (void)state;
    s_fx.simd_admin = sr_test_free_port();
    s_fx.admin = sr_test_free_port();
    snprintf(s_fx.collector, sizeof s_fx.collector, "tcp://127.0.0.1:%u", sr_test_free_port());
    s_fx.db = sr_test_db("test_ingestd_poll");
    sr_test_busd_start(&s_fx.bus);
    s_start_simd();
    s_fx.ctx = zmq_ctx_new();
    return 0;
}

static int s_group_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    sr_bus_sub_destroy(&s_fx.sub);
    sr_db_destroy(&s_fx.db);
    zmq_ctx_term(s_fx.ctx);
    free(s_fx.log);
    return 0;
}

/* s_fresh - an empty metrics schema and a new log file for the next ingestd */
static void s_fresh(void)
{
    static int runs;
    if (s_fx.ingestd > 0) /* left by a failed test */
        sr_test_stop(s_fx.ingestd, SIGKILL, 5000);
    s_fx.ingestd = 0;
    sr_test_db_reset_schema(s_fx.db, "metrics");
    free(s_fx.log);
    s_fx.log = sr_asprintf("%s/ingestd-poll-%d.log", sr_test_env("SR_TEST_TMP"), ++runs);
    FILE *f = fopen(s_fx.log, "w");
    assert_non_null(f);
    fclose(f);
}

static size_t s_collect(char *data, size_t size, size_t n, void *arg)
{
    char **buf = arg;
    size_t have = *buf ? strlen(*buf) : 0;
    *buf = sr_realloc(*buf, have + size * n + 1);
    memcpy(*buf + have, data, size * n);
    (*buf)[have + size * n] = '\0';
    return size * n;
}

/* s_simd_get - GET path from the simulator with the token; the parsed JSON */
static json_t *s_simd_get(const char *path)
{
    char *url = sr_asprintf("%s%s", s_fx.simd_url, path), *body = NULL;
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *headers = curl_slist_append(NULL, "Authorization: Bearer " TOKEN);
    long status = 0;
    if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body) != CURLE_OK ||
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L) != CURLE_OK ||
        curl_easy_perform(c) != CURLE_OK ||
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        fail_msg("GET %s failed", url);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    assert_int_equal(status, 200);
    json_error_t err;
    json_t *root = json_loads(body ? body : "", 0, &err);
    assert_non_null(root);
    free(body);
    free(url);
    return root;
}

/* s_expected - every listed room with its online viewers and GMV in fen as the simulator serves
 * them at the pinned clock; count returned */
static size_t s_expected(expect_t out[ROOMS])
{
    json_t *list = s_simd_get("/rooms");
    json_t *rooms = json_object_get(list, "rooms");
    assert_int_equal(json_array_size(rooms), ROOMS);
    for (size_t i = 0; i < ROOMS; i++) {
        json_t *item = json_array_get(rooms, i);
        const char *platform = json_string_value(json_object_get(item, "platform"));
        const char *room = json_string_value(json_object_get(item, "room_id"));
        size_t p = 0;
        while (p < 3 && strcmp(s_plat[p].platform, platform) != 0)
            p++;
        assert_true(p < 3);
        expect_t *e = &out[i];
        snprintf(e->platform, sizeof e->platform, "%s", platform);
        snprintf(e->room_id, sizeof e->room_id, "%s", room);
        e->platform_id = s_plat[p].platform_id;
        char *path = sr_asprintf("%s?room_id=%s", s_plat[p].path, room);
        json_t *body = s_simd_get(path);
        json_t *data = json_object_get(body, "data");
        e->online = json_integer_value(json_object_get(data, s_plat[p].online));
        json_t *gmv = json_object_get(data, s_plat[p].gmv);
        if (s_plat[p].gmv_kind == 0)
            e->gmv_fen = json_integer_value(gmv);
        else if (s_plat[p].gmv_kind == 1)
            e->gmv_fen = llround(json_number_value(gmv) * 100);
        else
            e->gmv_fen = llround(strtod(json_string_value(gmv), NULL) * 100);
        assert_true(json_is_integer(json_object_get(data, s_plat[p].online)));
        json_decref(body);
        free(path);
    }
    json_decref(list);
    return ROOMS;
}

/* s_rows - distinct (platform, room, online, gmv, ts) rows of one room */
static PGresult *s_rows(const expect_t *e)
{
    const char *params[] = {e->room_id};
    char *sql = sr_asprintf("SELECT DISTINCT platform, online_viewers, gmv_fen, "
                            "extract(epoch FROM ts)::bigint FROM metrics.room_samples "
                            "WHERE room_id = $1 AND platform = %d",
                            e->platform_id);
    PGresult *r = sr_db_query(s_fx.db, sql, 1, params);
    free(sql);
    if (!r)
        fail_msg("%s", sr_db_error(s_fx.db));
    return r;
}

/* s_wait_rooms - until every room of want has a row, or 10 s */
static void s_wait_rooms(const expect_t *want, size_t n)
{
    size_t have = 0;
    for (int tries = 0; tries < 100 && have < n; tries++) {
        have = 0;
        for (size_t i = 0; i < n; i++) {
            PGresult *r = s_rows(&want[i]);
            have += PQntuples(r) > 0;
            PQclear(r);
        }
        if (have < n)
            sr_test_sleep_ms(100);
    }
    assert_int_equal(have, n);
}

static void s_assert_values(const expect_t *e)
{
    PGresult *r = s_rows(e);
    /* the clock is pinned: every poll of the room served the same numbers */
    assert_int_equal(PQntuples(r), 1);
    assert_int_equal(atoll(PQgetvalue(r, 0, 1)), e->online);
    assert_int_equal(atoll(PQgetvalue(r, 0, 2)), e->gmv_fen);
    assert_int_equal(atoll(PQgetvalue(r, 0, 3)), T0);
    PQclear(r);
}

static void s_assert_log_clean(void)
{
    char *log = sr_test_read_file(s_fx.log, NULL);
    assert_non_null(log);
    assert_non_null(strstr(log, "poll_platform")); /* the log is the one ingestd wrote */
    assert_null(strstr(log, TOKEN));
    free(log);
}

/* discover: all six rooms, the simulator's values, metric.room on the bus, counters */
static void test_discover_all_rooms(void **state)
{
    (void)state;
    s_fresh();
    expect_t want[ROOMS];
    s_expected(want);
    assert_true(want[0].gmv_fen > 0 || want[1].gmv_fen > 0);

    sr_bus_sub_destroy(&s_fx.sub);
    sr_bus_sub_t *sub = s_fx.sub = sr_bus_sub_new(s_fx.ctx, s_fx.bus.back_ep, &(sr_bus_opts_t){0});
    assert_int_equal(sr_bus_subscribe(sub, "metric.room"), 0);
    s_start_ingestd("discover");
    s_wait_rooms(want, ROOMS);
    for (size_t i = 0; i < ROOMS; i++)
        s_assert_values(&want[i]);
    /* polled samples have no collector batch */
    PGresult *r = sr_db_query(s_fx.db, "SELECT count(*) FROM metrics.batches", 0, NULL);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);

    sr_arena_t *arena = sr_arena_new(4096);
    sr_bus_msg_t msg;
    sr_bus_recv_t rc;
    while ((rc = sr_bus_recv(sub, arena, &msg, 5000)) == SR_BUS_RECV_DROPPED)
        ;
    assert_int_equal(rc, SR_BUS_RECV_OK);
    assert_string_equal(msg.topic, "metric.room");
    const Sr__RoomSample *s = (const Sr__RoomSample *)msg.payload;
    int known = 0;
    for (size_t i = 0; i < ROOMS; i++)
        if (strcmp(s->room_id, want[i].room_id) == 0 && (int)s->platform == want[i].platform_id) {
            assert_int_equal(s->gmv_fen, want[i].gmv_fen);
            assert_int_equal(s->online_viewers, want[i].online);
            assert_int_equal(s->ts_us, (int64_t)T0 * 1000000);
            known = 1;
        }
    assert_true(known);
    sr_arena_destroy(&arena);
    sr_bus_sub_destroy(&s_fx.sub);

    for (size_t p = 0; p < 3; p++) {
        char series[128];
        snprintf(series, sizeof series, "sr_ingest_poll_total{platform=\"%s\",result=\"ok\"}",
                 s_plat[p].platform);
        assert_true(sr_test_admin_metric(s_fx.admin, series) > 0);
        snprintf(series, sizeof series,
                 "sr_ingest_poll_total{platform=\"%s\",result=\"http_error\"}", s_plat[p].platform);
        assert_int_equal(sr_test_admin_metric(s_fx.admin, series), 0); /* the token was accepted */
    }
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_discover_total{result=\"ok\"}") >= 1);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_rows_total{table=\"room_samples\"}") >=
                ROOMS);
    s_stop_ingestd();
    s_assert_log_clean();
}

/* a listed room the platform does not know: a counted platform error, the others still arrive */
static void test_unknown_room(void **state)
{
    (void)state;
    s_fresh();
    expect_t all[ROOMS], want[2];
    s_expected(all);
    size_t n = 0;
    for (size_t i = 0; i < ROOMS && n < 2; i++)
        if (strcmp(all[i].platform, "channels") != 0)
            if (n == 0 || strcmp(want[0].platform, all[i].platform) != 0)
                want[n++] = all[i];
    assert_int_equal(n, 2);
    char *rooms = sr_asprintf(" %s:%s, channels:no-such-room ,%s:%s", want[0].platform,
                              want[0].room_id, want[1].platform, want[1].room_id);
    s_start_ingestd(rooms);
    free(rooms);
    s_wait_rooms(want, 2);
    for (size_t i = 0; i < 2; i++)
        s_assert_values(&want[i]);
    long long errors = 0;
    for (int tries = 0; tries < 50 && errors == 0; tries++) {
        errors = sr_test_admin_metric(
            s_fx.admin, "sr_ingest_poll_total{platform=\"channels\",result=\"platform_error\"}");
        if (errors == 0)
            sr_test_sleep_ms(100);
    }
    assert_true(errors > 0);
    assert_int_equal(sr_test_admin_metric(
                         s_fx.admin, "sr_ingest_poll_total{platform=\"channels\",result=\"ok\"}"),
                     0);
    PGresult *r = sr_db_query(
        s_fx.db, "SELECT count(*) FROM metrics.room_samples WHERE room_id = 'no-such-room'", 0,
        NULL);
    assert_non_null(r);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    s_stop_ingestd();
    /* logged once per streak, not once per poll */
    char *log = sr_test_read_file(s_fx.log, NULL);
    assert_non_null(log);
    size_t complaints = 0;
    for (const char *p = log; (p = strstr(p, "no-such-room")) != NULL; p++)
        complaints++;
    assert_true(complaints >= 1 && complaints <= 3);
    assert_null(strstr(log, TOKEN));
    free(log);
}

/* orders stored from a collector batch go out as order.<status>, in batch order */
static void test_order_events(void **state)
{
    (void)state;
    s_fresh();
    sr_bus_sub_destroy(&s_fx.sub);
    sr_bus_sub_t *sub = s_fx.sub = sr_bus_sub_new(s_fx.ctx, s_fx.bus.back_ep, &(sr_bus_opts_t){0});
    assert_int_equal(sr_bus_subscribe(sub, "order."), 0);
    s_start_ingestd("douyin:not-polled-here");
    sr_test_sleep_ms(300);

    static const Sr__OrderStatus statuses[] = {
        SR__ORDER_STATUS__ORDER_STATUS_CREATED, SR__ORDER_STATUS__ORDER_STATUS_PAID,
        SR__ORDER_STATUS__ORDER_STATUS_CANCELLED, SR__ORDER_STATUS__ORDER_STATUS_REFUNDED,
        SR__ORDER_STATUS__ORDER_STATUS_UNSPECIFIED};
    static const char *const topics[] = {"order.created", "order.paid", "order.cancelled",
                                         "order.refunded"};
    Sr__OrderEvent orders[5], *ptrs[5];
    char ids[5][16];
    for (int i = 0; i < 5; i++) {
        sr__order_event__init(&orders[i]);
        snprintf(ids[i], sizeof ids[i], "o-%d", i);
        orders[i].platform = SR__PLATFORM__PLATFORM_DOUYIN;
        orders[i].room_id = "r-orders";
        orders[i].order_id = ids[i];
        orders[i].sku_id = "sku-1";
        orders[i].status = statuses[i];
        orders[i].quantity = 1;
        orders[i].amount_fen = 100 * (i + 1);
        orders[i].ts_us = ORDER_TS0_US + i;
        orders[i].buyer_hash = "bh";
        ptrs[i] = &orders[i];
    }
    Sr__CollectorBatch batch = SR__COLLECTOR_BATCH__INIT;
    batch.orders = ptrs;
    batch.n_orders = 5;
    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-orders", NULL);
    assert_non_null(c);
    assert_int_equal(sr_collector_send(c, &batch), 1);
    assert_int_equal(sr_collector_wait(c, 10000), 0);
    assert_int_equal(sr_collector_stats(c)->stored, 1);
    sr_collector_destroy(&c);

    sr_arena_t *arena = sr_arena_new(4096);
    for (int i = 0; i < 4; i++) {
        sr_bus_msg_t msg;
        sr_bus_recv_t rc;
        while ((rc = sr_bus_recv(sub, arena, &msg, 5000)) == SR_BUS_RECV_DROPPED)
            ;
        assert_int_equal(rc, SR_BUS_RECV_OK);
        assert_string_equal(msg.topic, topics[i]);
        const Sr__OrderEvent *o = (const Sr__OrderEvent *)msg.payload;
        assert_string_equal(o->order_id, ids[i]);
        assert_int_equal(o->amount_fen, 100 * (i + 1));
        sr_arena_reset(arena);
    }
    /* the order without a status is stored but has no topic */
    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, arena, &msg, 500), SR_BUS_RECV_EMPTY);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_publish_failures_total"), 0);
    sr_arena_destroy(&arena);
    sr_bus_sub_destroy(&s_fx.sub);
    s_stop_ingestd();
}

/* s_start_named - one more ingestd discovering the simulator's rooms, as instance name on its
 * own admin port and collector endpoint */
static pid_t s_start_named(const char *name, uint16_t admin, const char *log)
{
    char *bin = sr_test_bin_path("sr-ingestd");
    char *argv[] = {bin, NULL};
    char **env = s_ingestd_env("discover", NULL);
    size_t n = 0;
    while (env[n])
        n++;
    env[n++] = sr_asprintf("SR_INSTANCE=%s", name);
    env[n++] = sr_asprintf("SR_ADMIN_PORT=%u", admin);
    env[n++] = sr_asprintf("SR_INGEST_COLLECTOR_BIND=tcp://127.0.0.1:%u", sr_test_free_port());
    pid_t pid = sr_test_spawn(argv, env, log);
    s_wait_healthy(admin);
    sr_test_free_env(env);
    free(env);
    free(bin);
    return pid;
}

/* s_wait_share - until the instance at admin counts `instances` and polls `rooms`, or 20 s */
static void s_wait_share(uint16_t admin, long long instances, long long rooms)
{
    long long have_i = -1, have_r = -1;
    for (int tries = 0; tries < 200 && (have_i != instances || have_r != rooms); tries++) {
        sr_test_sleep_ms(100);
        have_i = sr_test_admin_metric(admin, "sr_ingest_poll_instances");
        have_r = sr_test_admin_metric(admin, "sr_ingest_poll_rooms");
    }
    if (have_i != instances || have_r != rooms)
        fail_msg("port %u: instances=%lld rooms=%lld, want %lld and %lld", admin, have_i, have_r,
                 instances, rooms);
}

/* two instances split the rooms between them, each room to exactly one; when one is killed the
 * other takes every room within the liveness window, and a clean stop leaves metrics.pollers */
static void test_instances_share_rooms(void **state)
{
    (void)state;
    s_fresh();
    uint16_t admin_a = sr_test_free_port(), admin_b = sr_test_free_port();
    char *log_b = sr_asprintf("%s.b", s_fx.log);
    pid_t a = s_start_named("poll-a", admin_a, s_fx.log);
    s_wait_share(admin_a, 1, ROOMS);
    pid_t b = s_start_named("poll-b", admin_b, log_b);
    long long rooms_a = -1, rooms_b = -1;
    for (int tries = 0; tries < 200 && rooms_a + rooms_b != ROOMS; tries++) {
        sr_test_sleep_ms(100);
        if (sr_test_admin_metric(admin_a, "sr_ingest_poll_instances") == 2 &&
            sr_test_admin_metric(admin_b, "sr_ingest_poll_instances") == 2) {
            rooms_a = sr_test_admin_metric(admin_a, "sr_ingest_poll_rooms");
            rooms_b = sr_test_admin_metric(admin_b, "sr_ingest_poll_rooms");
        }
    }
    print_message("share: poll-a=%lld poll-b=%lld rooms\n", rooms_a, rooms_b);
    assert_int_equal(rooms_a + rooms_b, ROOMS); /* complementary shares: no room twice or never */
    assert_int_equal(sr_test_db_number(s_fx.db, "SELECT count(*) FROM metrics.pollers"), 2);

    sr_test_stop(b, SIGKILL, 5000);
    s_wait_share(admin_a, 1, ROOMS);
    assert_int_equal(sr_test_db_number(s_fx.db, "SELECT count(*) FROM metrics.pollers"), 1);

    int status = sr_test_stop(a, SIGTERM, 15000);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(sr_test_db_number(s_fx.db, "SELECT count(*) FROM metrics.pollers"), 0);
    free(log_b);
}

/* bad polling settings stop start-up with exit 2 and a message naming the variable */
static void test_bad_config(void **state)
{
    (void)state;
    static const struct {
        const char *rooms, *url, *names;
    } cases[] = {
        {"douyin:1,tiktok:2", NULL, "SR_INGEST_POLL_ROOMS: entry 2: unknown platform"},
        {"douyin", NULL, "SR_INGEST_POLL_ROOMS: entry 1 \"douyin\": expected platform:room_id"},
        {"douyin:", NULL, "SR_INGEST_POLL_ROOMS: entry 1: empty room id"},
        {"douyin:1,,kuaishou:2", NULL, "SR_INGEST_POLL_ROOMS: entry 2"},
        {"douyin:1,douyin:1", NULL, "SR_INGEST_POLL_ROOMS: entry 2: douyin:1 is listed twice"},
        {"discover,douyin:1", NULL, "SR_INGEST_POLL_ROOMS: entry 1"},
        {NULL, NULL, "SR_INGEST_PLATFORM_URL is set but SR_INGEST_POLL_ROOMS is empty"},
        {"discover", "ftp://x", "SR_INGEST_PLATFORM_URL: must start with http:// or https://"},
    };
    char *bin = sr_test_bin_path("sr-ingestd");
    char *argv[] = {bin, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_fresh();
        char **env = s_ingestd_env(cases[i].rooms, cases[i].url);
        pid_t pid = sr_test_spawn(argv, env, s_fx.log);
        int status = sr_test_stop(pid, 0, 10000);
        sr_test_free_env(env);
        free(env);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 2);
        char *log = sr_test_read_file(s_fx.log, NULL);
        assert_non_null(log);
        if (!strstr(log, cases[i].names))
            fail_msg("case %zu: \"%s\" not in: %s", i, cases[i].names, log);
        assert_null(strstr(log, TOKEN));
        free(log);
    }
    free(bin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discover_all_rooms), cmocka_unit_test(test_unknown_room),
        cmocka_unit_test(test_order_events),       cmocka_unit_test(test_instances_share_rooms),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
