/* test_ingestd - sr-ingestd run for real against the throwaway PostgreSQL and a real sr-busd:
 * collector -> ingestd -> exact rows and values; a resent batch is DUPLICATE and adds nothing;
 * garbage, oversize and multi-frame messages are counted and answered while the daemon keeps
 * serving; PostgreSQL stopped mid-stream -> a bounded queue, BUSY beyond it, every row once
 * after the restart; the per-minute rollup; SIGKILL mid-stream and a restart leave every row
 * exactly once; the spool of an instance that is gone is adopted by a new one; metric.room
 * reaches a bus subscriber; sr-collect sends a file and reports its counts. */
#include "collector.pb-c.h"
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_collector.h"
#include "sr_db.h"
#include "sr_test.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <zmq.h>

/* 2026-01-02T03:04:05.678901Z */
#define TS0_US 1767323045678901LL

typedef struct {
    sr_test_busd_t bus;
    pid_t ingestd;
    char collector[64];
    uint16_t admin, push;
    char *log;
    void *ctx;
    sr_db_t *db;
} fixture_t;

static fixture_t s_fx;

/* s_start_as - with a spool of spool_max bytes under the test's temp folder, as instance (NULL:
 * the default name) */
static void s_start_as(const char *spool_max, const char *instance)
{
    char *env[] = {sr_asprintf("SR_INSTANCE=%s", instance ? instance : ""),
                   sr_asprintf("SR_INGEST_SPOOL_DIR=%s/spool", sr_test_env("SR_TEST_TMP")),
                   sr_asprintf("SR_INGEST_SPOOL_MAX=%s", spool_max),
                   sr_asprintf("SR_INGEST_PUSH_BIND=127.0.0.1:%u", s_fx.push),
                   sr_strdup("SR_INGEST_PUSH_SECRET=push-secret"),
                   sr_asprintf("SR_DB_URL=%s", sr_test_env("SR_TEST_DB_URL")),
                   sr_asprintf("SR_BUS_PUB=%s", s_fx.bus.front_ep),
                   sr_asprintf("SR_ADMIN_PORT=%u", s_fx.admin),
                   sr_asprintf("SR_INGEST_COLLECTOR_BIND=%s", s_fx.collector),
                   sr_strdup("SR_INGEST_RPC_BIND="),
                   sr_strdup("SR_INGEST_FLUSH_INTERVAL=50ms"),
                   sr_strdup("SR_INGEST_FLUSH_ROWS=1000"),
                   sr_strdup("SR_INGEST_MAX_BATCH=64k"),
                   sr_strdup("SR_INGEST_QUEUE_MAX_ROWS=3000"),
                   sr_strdup("SR_INGEST_ROLLUP_INTERVAL=200ms"),
                   sr_strdup("SR_CRON_INTERVAL=200ms"),
                   NULL};
    s_fx.ingestd = sr_test_start_daemon("sr-ingestd", env, s_fx.log, s_fx.admin, 15000);
    sr_test_free_env(env);
}

static void s_start_ingestd(const char *spool_max)
{
    s_start_as(spool_max, NULL);
}

static int s_group_setup(void **state)
{
    (void)state;
    s_fx.admin = sr_test_free_port();
    s_fx.push = sr_test_free_port();
    snprintf(s_fx.collector, sizeof s_fx.collector, "tcp://127.0.0.1:%u", sr_test_free_port());
    s_fx.log = sr_asprintf("%s/ingestd.log", sr_test_env("SR_TEST_TMP"));
    s_fx.db = sr_test_db("test_ingestd");
    sr_test_db_reset_schema(s_fx.db, "metrics");
    sr_test_busd_start(&s_fx.bus);
    s_start_ingestd("1M");
    s_fx.ctx = zmq_ctx_new();
    return 0;
}

static int s_group_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    sr_db_destroy(&s_fx.db);
    zmq_ctx_term(s_fx.ctx);
    free(s_fx.log);
    return 0;
}

/* s_count - one number from SQL; retried while the connection recovers from a restart */
static long long s_count(const char *sql)
{
    PGresult *r = sr_db_query(s_fx.db, sql, 0, NULL);
    for (int i = 0; !r && i < 100; i++) {
        sr_test_sleep_ms(100);
        if (sr_db_ok(s_fx.db))
            r = sr_db_query(s_fx.db, sql, 0, NULL);
    }
    assert_non_null(r);
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* s_batch - n samples of room prefix-i with values derived from base; arrays owned by caller */
typedef struct {
    Sr__CollectorBatch batch;
    Sr__RoomSample samples[64], *ptrs[64];
    char rooms[64][48];
} test_batch_t;

static void s_fill(test_batch_t *tb, const char *prefix, int n, int64_t base)
{
    memset(tb, 0, sizeof *tb);
    sr__collector_batch__init(&tb->batch);
    for (int i = 0; i < n; i++) {
        Sr__RoomSample *s = &tb->samples[i];
        sr__room_sample__init(s);
        snprintf(tb->rooms[i], sizeof tb->rooms[i], "%s-%d", prefix, i);
        s->platform = SR__PLATFORM__PLATFORM_DOUYIN;
        s->room_id = tb->rooms[i];
        s->session_id = "sess-1";
        s->ts_us = TS0_US + base * 1000 + i;
        s->online_viewers = base + i;
        s->gmv_fen = 1234567;
        s->ad_spend_fen = -5;
        tb->ptrs[i] = s;
    }
    tb->batch.samples = tb->ptrs;
    tb->batch.n_samples = (size_t)n;
}

static void test_store_and_publish(void **state)
{
    (void)state;
    sr_bus_sub_t *sub = sr_bus_sub_new(s_fx.ctx, s_fx.bus.back_ep, &(sr_bus_opts_t){0});
    assert_int_equal(sr_bus_subscribe(sub, "metric.room"), 0);
    sr_test_sleep_ms(300);

    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-store", NULL);
    assert_non_null(c);
    test_batch_t tb;
    for (int b = 0; b < 3; b++) {
        s_fill(&tb, b == 0 ? "store" : "store-more", 10, b * 100);
        if (b == 2) { /* an order and an interaction ride along */
            static Sr__OrderEvent o = SR__ORDER_EVENT__INIT;
            static Sr__OrderEvent *op = &o;
            static Sr__InteractionEvent e = SR__INTERACTION_EVENT__INIT;
            static Sr__InteractionEvent *ep = &e;
            o.platform = SR__PLATFORM__PLATFORM_CHANNELS;
            o.room_id = "store-0";
            o.order_id = "order-1";
            o.sku_id = "sku-9";
            o.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
            o.quantity = 2;
            o.amount_fen = 19900;
            o.ts_us = TS0_US;
            o.buyer_hash = "bh";
            e.room_id = "store-0";
            e.kind = SR__INTERACTION_KIND__INTERACTION_KIND_COMMENT;
            e.count = 1;
            e.text = "你好";
            e.ts_us = TS0_US;
            tb.batch.orders = &op;
            tb.batch.n_orders = 1;
            tb.batch.interactions = &ep;
            tb.batch.n_interactions = 1;
        }
        assert_int_equal(sr_collector_send(c, &tb.batch), (uint64_t)b + 1);
    }
    assert_int_equal(sr_collector_wait(c, 10000), 0);
    assert_int_equal(sr_collector_stats(c)->stored, 3);
    assert_int_equal(sr_collector_stats(c)->rows, 32);
    sr_collector_destroy(&c);

    assert_int_equal(s_count("SELECT count(*) FROM metrics.room_samples WHERE room_id LIKE "
                             "'store%'"),
                     30);
    PGresult *r = sr_db_query(s_fx.db,
                              "SELECT platform, session_id, to_char(ts AT TIME ZONE 'UTC', "
                              "'YYYY-MM-DD HH24:MI:SS.US'), online_viewers, gmv_fen, ad_spend_fen, "
                              "likes FROM metrics.room_samples WHERE room_id = 'store-3'",
                              0, NULL);
    assert_non_null(r);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(PQgetvalue(r, 0, 0), "2");
    assert_string_equal(PQgetvalue(r, 0, 1), "sess-1");
    assert_string_equal(PQgetvalue(r, 0, 2), "2026-01-02 03:04:05.678904");
    assert_string_equal(PQgetvalue(r, 0, 3), "3");
    assert_string_equal(PQgetvalue(r, 0, 4), "1234567");
    assert_string_equal(PQgetvalue(r, 0, 5), "-5");
    assert_string_equal(PQgetvalue(r, 0, 6), "0");
    PQclear(r);
    r = sr_db_query(
        s_fx.db,
        "SELECT o.platform, o.sku_id, o.status, o.quantity, o.amount_fen, o.buyer_hash, "
        "i.kind, i.text, b.rows FROM metrics.orders o, metrics.interactions i, "
        "metrics.batches b WHERE o.order_id = 'order-1' AND i.room_id = 'store-0' "
        "AND b.collector_id = 'it-store' AND b.batch_seq = 3",
        0, NULL);
    assert_non_null(r);
    assert_int_equal(PQntuples(r), 1);
    const char *want[] = {"1", "sku-9", "2", "2", "19900", "bh", "1", "你好", "12"};
    for (int i = 0; i < 9; i++)
        assert_string_equal(PQgetvalue(r, 0, i), want[i]);
    PQclear(r);

    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_rows_total{table=\"room_samples\"}") >=
                30);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_rows_total{table=\"orders\"}") >= 1);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_batches_total{result=\"stored\"}") >=
                3);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_flush_seconds_count") >= 1);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_queue_rows"), 0);

    /* metric.room: the rooms of the batches, as RoomSample payloads */
    sr_arena_t *arena = sr_arena_new(4096);
    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, arena, &msg, 5000), SR_BUS_RECV_OK);
    assert_string_equal(msg.topic, "metric.room");
    const Sr__RoomSample *s = (const Sr__RoomSample *)msg.payload;
    assert_memory_equal(s->room_id, "store", 5);
    assert_int_equal(s->gmv_fen, 1234567);
    sr_arena_destroy(&arena);
    sr_bus_sub_destroy(&sub);
}

/* the same collector id and seq again (a collector restarted with the same id): DUPLICATE */
static void test_duplicate(void **state)
{
    (void)state;
    test_batch_t tb;
    for (int round = 0; round < 2; round++) {
        sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-dup", NULL);
        s_fill(&tb, "dup", 5, 7);
        assert_int_equal(sr_collector_send(c, &tb.batch), 1);
        assert_int_equal(sr_collector_wait(c, 10000), 0);
        assert_int_equal(sr_collector_stats(c)->stored, round == 0 ? 1 : 0);
        assert_int_equal(sr_collector_stats(c)->duplicate, round == 0 ? 0 : 1);
        sr_collector_destroy(&c);
        assert_int_equal(
            s_count("SELECT count(*) FROM metrics.room_samples WHERE room_id LIKE 'dup-%'"), 5);
    }
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_batches_total{result=\"duplicate\"}") >=
                1);
}

/* s_raw - send frames on a plain DEALER and return the ack's status (or -1: no answer) */
static int s_raw(void *dealer, const void *data, size_t len, int frames)
{
    for (int f = 0; f < frames; f++)
        assert_true(zmq_send(dealer, data, len, f + 1 < frames ? ZMQ_SNDMORE : 0) >= 0);
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 5000) != 1)
        return -1;
    uint8_t buf[1024];
    int n = zmq_recv(dealer, buf, sizeof buf, 0);
    assert_true(n >= 0);
    Sr__CollectorAck *ack = sr__collector_ack__unpack(NULL, (size_t)n, buf);
    assert_non_null(ack);
    int status = ack->status;
    sr__collector_ack__free_unpacked(ack, NULL);
    return status;
}

static void test_garbage_and_oversize(void **state)
{
    (void)state;
    long long garbage =
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"garbage\"}");
    long long oversize =
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"oversize\"}");
    long long frames =
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"frames\"}");
    long long invalid =
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"invalid\"}");
    void *dealer = zmq_socket(s_fx.ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    assert_int_equal(zmq_connect(dealer, s_fx.collector), 0);

    static uint8_t junk[80 * 1024];
    memset(junk, 0xff, sizeof junk);
    /* a batch without collector id: well-formed but invalid */
    Sr__CollectorBatch empty = SR__COLLECTOR_BATCH__INIT;
    empty.batch_seq = 1;
    uint8_t packed[64], packed_utf8[128];
    size_t plen = sr__collector_batch__pack(&empty, packed);
    /* a sample PostgreSQL would refuse (not UTF-8): refused up front, not a poisoned flush */
    test_batch_t bad;
    s_fill(&bad, "bad-utf8", 1, 0);
    bad.samples[0].room_id = "\xff\xfe";
    bad.batch.collector_id = "it-bad";
    bad.batch.batch_seq = 1;
    size_t ulen = sr__collector_batch__pack(&bad.batch, packed_utf8);
    const struct {
        const void *data;
        size_t len;
        int frames;
    } cases[] = {
        {junk, 16, 1},          /* garbage */
        {junk, sizeof junk, 1}, /* over SR_INGEST_MAX_BATCH=64k */
        {junk, 8, 3},           /* three frames */
        {packed, plen, 1},      /* invalid: no collector id */
        {packed_utf8, ulen, 1}, /* invalid: not UTF-8 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(s_raw(dealer, cases[i].data, cases[i].len, cases[i].frames),
                         SR__ACK_STATUS__ACK_STATUS_REJECTED);
    zmq_close(dealer);
    assert_int_equal(
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"garbage\"}"),
        garbage + 1);
    assert_int_equal(
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"oversize\"}"),
        oversize + 1);
    assert_int_equal(
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"frames\"}"),
        frames + 1);
    assert_int_equal(
        sr_test_admin_metric(s_fx.admin, "sr_ingest_rejected_total{reason=\"invalid\"}"),
        invalid + 2);

    /* and it keeps serving */
    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-after-garbage", NULL);
    test_batch_t tb;
    s_fill(&tb, "after-garbage", 4, 1);
    sr_collector_send(c, &tb.batch);
    assert_int_equal(sr_collector_wait(c, 10000), 0);
    assert_int_equal(sr_collector_stats(c)->stored, 1);
    sr_collector_destroy(&c);
}

/* SIGKILL while batches stream in, restart on the same ports: every row exactly once */
static void test_sigkill_restart(void **state)
{
    (void)state;
    sr_collector_opts_t opts = {.resend_ms = 500};
    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-kill", &opts);
    test_batch_t tb;
    const int batches = 200, per = 50;
    for (int b = 0; b < batches; b++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "kill-%d", b);
        s_fill(&tb, prefix, per, b);
        sr_collector_send(c, &tb.batch);
        assert_true(sr_collector_poll(c, 2) >= 0);
        if (b == batches / 2) {
            sr_test_stop(s_fx.ingestd, SIGKILL, 5000);
            s_start_ingestd("1M");
        }
    }
    assert_int_equal(sr_collector_wait(c, 30000), 0);
    const sr_collector_stats_t *st = sr_collector_stats(c);
    print_message("sigkill: stored=%llu duplicate=%llu resent=%llu\n",
                  (unsigned long long)st->stored, (unsigned long long)st->duplicate,
                  (unsigned long long)st->resent);
    assert_int_equal(st->stored + st->duplicate, batches);
    assert_int_equal(st->rejected, 0);
    sr_collector_destroy(&c);
    assert_int_equal(
        s_count("SELECT count(*) FROM metrics.room_samples WHERE room_id LIKE 'kill-%'"),
        batches * per);
    assert_int_equal(s_count("SELECT count(DISTINCT (room_id, ts)) FROM metrics.room_samples "
                             "WHERE room_id LIKE 'kill-%'"),
                     batches * per);
    assert_int_equal(s_count("SELECT count(*) FROM metrics.batches WHERE collector_id = 'it-kill'"),
                     batches);
}

/* the minute two minutes ago, closed: its last sample's gauges, PAID orders, interactions */
static void test_rollup(void **state)
{
    (void)state;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t minute_us = ((int64_t)now.tv_sec / 60 - 2) * 60 * 1000000;
    test_batch_t tb;
    s_fill(&tb, "roll", 3, 0);
    const int64_t at_s[] = {10, 30, 20}, online[] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        tb.samples[i].room_id = "roll-1";
        tb.samples[i].ts_us = minute_us + at_s[i] * 1000000;
        tb.samples[i].online_viewers = online[i];
    }
    Sr__OrderEvent paid = SR__ORDER_EVENT__INIT, created = SR__ORDER_EVENT__INIT;
    Sr__OrderEvent *orders[] = {&paid, &created};
    paid.platform = created.platform = SR__PLATFORM__PLATFORM_DOUYIN;
    paid.room_id = created.room_id = "roll-1";
    paid.ts_us = created.ts_us = minute_us + 15000000;
    paid.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
    created.status = SR__ORDER_STATUS__ORDER_STATUS_CREATED;
    paid.amount_fen = 700;
    created.amount_fen = 100;
    Sr__InteractionEvent likes = SR__INTERACTION_EVENT__INIT, more = SR__INTERACTION_EVENT__INIT;
    Sr__InteractionEvent *events[] = {&likes, &more};
    likes.platform = more.platform = SR__PLATFORM__PLATFORM_DOUYIN;
    likes.room_id = more.room_id = "roll-1";
    likes.ts_us = minute_us + 40000000;
    more.ts_us = minute_us + 59999999;
    likes.count = 5;
    more.count = 2;
    tb.batch.orders = orders;
    tb.batch.n_orders = 2;
    tb.batch.interactions = events;
    tb.batch.n_interactions = 2;
    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-rollup", NULL);
    sr_collector_send(c, &tb.batch);
    assert_int_equal(sr_collector_wait(c, 10000), 0);
    sr_collector_destroy(&c);

    char *sql = sr_asprintf("SELECT count(*) FROM metrics.room_minutes WHERE room_id = 'roll-1' "
                            "AND minute = to_timestamp(%lld) AND online_viewers = 2 AND "
                            "paid_orders = 1 AND paid_amount_fen = 700 AND interactions = 7 AND "
                            "session_id = 'sess-1' AND gmv_fen = 1234567",
                            (long long)(minute_us / 1000000));
    long long found = 0;
    for (int i = 0; i < 50 && !found; i++) {
        sr_test_sleep_ms(100);
        found = s_count(sql);
    }
    free(sql);
    assert_int_equal(found, 1);
    assert_int_equal(s_count("SELECT count(*) FROM metrics.room_minutes WHERE room_id = 'roll-1'"),
                     1);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_rollup_rows_total") >= 1);
}

/* s_pg - deploy/pg.sh stop|start on the throwaway cluster */
static void s_pg(const char *what)
{
    char *script = sr_test_root_path("deploy/pg.sh");
    char *cmd =
        strcmp(what, "stop") == 0
            ? sr_asprintf("%s stop %s >/dev/null 2>&1", script, sr_test_env("SR_TEST_PG_DIR"))
            : sr_asprintf("%s start %s %s >/dev/null 2>&1", script, sr_test_env("SR_TEST_PG_DIR"),
                          sr_test_env("SR_TEST_PG_PORT"));
    assert_int_equal(system(cmd), 0);
    free(cmd);
    free(script);
}

/* s_push - POST body to the push endpoint as msg type, signed with secret (NULL = unsigned) */
static long s_push(const char *type, const char *body, const char *secret, sr_test_reply_t *reply)
{
    char url[96], ts[32], room[] = "x-roomid: 7300001", kind[64], nonce[] = "x-nonce-str: n0nce",
                          stamp[48], sig[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/douyin/push", s_fx.push);
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    snprintf(kind, sizeof kind, "x-msg-type: %s", type);
    snprintf(stamp, sizeof stamp, "x-timestamp: %s", ts);
    char *plain = sr_asprintf("x-msg-type=%s&x-nonce-str=n0nce&x-roomid=7300001&x-timestamp=%s%s%s",
                              type, ts, body, secret ? secret : "");
    unsigned char md[16];
    assert_int_equal(EVP_Digest(plain, strlen(plain), md, NULL, EVP_md5(), NULL), 1);
    free(plain);
    char b64[40];
    EVP_EncodeBlock((unsigned char *)b64, md, sizeof md);
    snprintf(sig, sizeof sig, "x-signature: %s", b64);
    const char *headers[] = {room, kind, nonce, stamp, secret ? sig : NULL, NULL};
    return sr_test_http("POST", url, headers, body, reply);
}

/* Douyin pushes: a signed gift and comment become interaction rows; a wrong signature, a bad
 * body, an unknown type and a GET are refused with the right status and nothing is stored */
static void test_douyin_push(void **state)
{
    (void)state;
    sr_test_reply_t r;
    assert_int_equal(s_push("live_gift",
                            "[{\"msg_id\":\"1\",\"sec_openid\":\"viewer-1\",\"sec_gift_id\":\"g\","
                            "\"gift_num\":3,\"gift_value\":300,\"timestamp\":1700000000000}]",
                            "push-secret", &r),
                     200);
    assert_non_null(strstr(r.body, "\"err_no\":0"));
    sr_test_reply_free(&r);
    assert_int_equal(s_push("live_comment",
                            "{\"msg_id\":\"2\",\"sec_openid\":\"viewer-2\",\"content\":\"好看\","
                            "\"timestamp\":\"1700000001000\"}",
                            "push-secret", NULL),
                     200);
    assert_int_equal(s_push("live_like", "[{\"like_num\":5}]", "wrong-secret", &r), 401);
    assert_non_null(strstr(r.body, "bad_signature"));
    sr_test_reply_free(&r);
    assert_int_equal(s_push("live_like", "[{\"like_num\":-5}]", "push-secret", &r), 400);
    assert_non_null(strstr(r.body, "[0]: like_num"));
    sr_test_reply_free(&r);
    assert_int_equal(s_push("live_like", "[{\"like_num\":", "push-secret", &r), 400);
    assert_non_null(strstr(r.body, "not JSON"));
    sr_test_reply_free(&r);
    assert_int_equal(s_push("live_pk", "[]", "push-secret", NULL), 400);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/douyin/push", s_fx.push);
    assert_int_equal(sr_test_http("GET", url, NULL, NULL, &r), 405);
    assert_string_equal(r.allow, "POST");
    sr_test_reply_free(&r);
    for (int i = 0; i < 100 && s_count("SELECT count(*) FROM metrics.interactions "
                                       "WHERE room_id = '7300001'") < 2;
         i++)
        sr_test_sleep_ms(50);
    assert_int_equal(s_count("SELECT count(*) FROM metrics.interactions WHERE room_id = '7300001' "
                             "AND ((kind = 2 AND count = 3 AND value_fen = 300 AND "
                             "ts = to_timestamp(1700000000)) OR (kind = 1 AND count = 1 AND "
                             "text = '好看' AND length(user_hash) = 16))"),
                     2);
    assert_int_equal(s_count("SELECT count(*) FROM metrics.interactions WHERE room_id = '7300001'"),
                     2);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_push_total{result=\"accepted\"}"),
                     2);
    assert_int_equal(
        sr_test_admin_metric(s_fx.admin, "sr_ingest_push_total{result=\"bad_signature\"}"), 1);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_push_total{result=\"invalid\"}"),
                     3);
}

/* s_learn_db_down - one small batch, polled until ingestd's flush of it has failed, so the
 * batches that follow meet a daemon that knows the database is down (before that, a batch
 * beyond the memory queue is answered BUSY rather than spooled) */
static void s_learn_db_down(void)
{
    long long failures = sr_test_admin_metric(s_fx.admin, "sr_ingest_flush_failures_total");
    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, "it-db-probe", NULL);
    test_batch_t tb;
    s_fill(&tb, "db-probe", 1, 0);
    sr_collector_send(c, &tb.batch);
    for (int i = 0;
         i < 100 && sr_test_admin_metric(s_fx.admin, "sr_ingest_flush_failures_total") <= failures;
         i++)
        assert_true(sr_collector_poll(c, 100) >= 0);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_flush_failures_total") > failures);
    sr_collector_destroy(&c); /* ingestd keeps the row and stores it once the database is back */
}

/* s_send_down - batches of per samples, rooms "<prefix>-<b>-<i>", then acks handled for 2 s of
 * wall time (not a number of polls: a poll returns as soon as an ack arrives) */
static sr_collector_t *s_send_down(const char *id, const char *prefix, int batches, int per)
{
    sr_collector_opts_t opts = {.resend_ms = 500, .busy_wait_ms = 300};
    sr_collector_t *c = sr_collector_new(s_fx.ctx, s_fx.collector, id, &opts);
    test_batch_t tb;
    for (int b = 0; b < batches; b++) {
        char name[32];
        snprintf(name, sizeof name, "%s-%d", prefix, b);
        s_fill(&tb, name, per, b);
        sr_collector_send(c, &tb.batch);
    }
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        assert_true(sr_collector_poll(c, 100) >= 0);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
    return c;
}

static void s_assert_once(const char *like, long long rows)
{
    char *sql =
        sr_asprintf("SELECT count(*) FROM metrics.room_samples WHERE room_id LIKE '%s'", like);
    assert_int_equal(s_count(sql), rows);
    free(sql);
    sql = sr_asprintf("SELECT count(DISTINCT (room_id, ts)) FROM metrics.room_samples "
                      "WHERE room_id LIKE '%s'",
                      like);
    assert_int_equal(s_count(sql), rows);
    free(sql);
}

/* PostgreSQL down: batches queue up to SR_INGEST_QUEUE_MAX_ROWS (3000 here), the rest go to the
 * spool and are acked SPOOLED. ingestd is SIGKILLed while the database is still down, so the
 * spooled rows exist only in the spool file; after PostgreSQL and ingestd are back, the spool is
 * replayed, the collector resends the queued batches, and every row is there exactly once. */
static void test_db_down_spool(void **state)
{
    (void)state;
    s_pg("stop");
    const int batches = 80, per = 50;
    sr_collector_t *c = s_send_down("it-dbdown", "down", batches, per);
    /* a batch that came before the first failed transaction was answered BUSY: wait for it */
    for (int i = 0; i < 100 && sr_collector_pending(c) > 3000 / per; i++)
        assert_true(sr_collector_poll(c, 100) >= 0);
    print_message("db down: spooled=%llu busy=%llu pending=%zu\n",
                  (unsigned long long)sr_collector_stats(c)->spooled,
                  (unsigned long long)sr_collector_stats(c)->busy, sr_collector_pending(c));
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_queue_rows"), 3000);
    assert_int_equal(sr_collector_stats(c)->spooled, batches - 3000 / per);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_spooled_rows_total"),
                     batches * per - 3000);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_spool_bytes") > 0);
    assert_int_equal(sr_collector_pending(c), 3000 / per);
    sr_test_stop(s_fx.ingestd, SIGKILL, 5000);
    s_pg("start");
    s_start_ingestd("1M");
    assert_int_equal(sr_collector_wait(c, 30000), 0);
    assert_int_equal(sr_collector_stats(c)->stored, 3000 / per);
    sr_collector_destroy(&c);
    s_assert_once("down-%", batches * per);
    for (int i = 0; i < 50 && sr_test_admin_metric(s_fx.admin, "sr_ingest_spool_bytes") > 0; i++)
        sr_test_sleep_ms(100);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_spool_bytes"), 0);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_replayed_rows_total"),
                     batches * per - 3000);
    assert_int_equal(sr_test_admin_metric(s_fx.admin, "sr_ingest_queue_rows"), 0);
}

/* a container recreated under a new hostname: the spool of the instance that is gone is
 * adopted by the new one and replayed, every row once */
static void test_spool_adopted(void **state)
{
    (void)state;
    sr_test_stop(s_fx.ingestd, SIGTERM, 15000);
    s_start_as("1M", "ingestd-old-container");
    s_pg("stop");
    s_learn_db_down();
    const int batches = 70, per = 50;
    sr_collector_t *c = s_send_down("it-adopt", "adopt", batches, per);
    for (int i = 0; i < 100 && sr_collector_pending(c) > 3000 / per; i++)
        assert_true(sr_collector_poll(c, 100) >= 0);
    assert_true(sr_collector_stats(c)->spooled > 0);
    sr_test_stop(s_fx.ingestd, SIGKILL, 5000);
    s_pg("start");
    s_start_as("1M", "ingestd-new-container");
    assert_int_equal(sr_collector_wait(c, 30000), 0);
    sr_collector_destroy(&c);
    s_assert_once("adopt-%", batches * per);
    char *log = sr_test_read_file(s_fx.log, NULL);
    assert_non_null(strstr(log, "event=ingest_spool_adopted"));
    assert_non_null(strstr(log, "ingestd-ingestd-old-container.spool"));
    free(log);
    sr_test_stop(s_fx.ingestd, SIGTERM, 15000);
    s_start_ingestd("1M");
}

/* a full spool: the batches neither the queue nor the spool can take are answered BUSY and
 * resent; once PostgreSQL is back, queue and spool are written in order and nothing twice */
static void test_spool_full(void **state)
{
    (void)state;
    sr_test_stop(s_fx.ingestd, SIGTERM, 15000);
    s_start_ingestd("40k");
    s_pg("stop");
    s_learn_db_down();
    const int batches = 120, per = 50;
    sr_collector_t *c = s_send_down("it-full", "full", batches, per);
    const sr_collector_stats_t *st = sr_collector_stats(c);
    assert_true(st->spooled > 0);
    assert_true(st->busy > 0);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_spool_bytes") <= 40 * 1024);
    assert_true(sr_test_admin_metric(s_fx.admin, "sr_ingest_batches_total{result=\"busy\"}") > 0);
    s_pg("start");
    assert_int_equal(sr_collector_wait(c, 30000), 0);
    assert_int_equal(st->stored + st->spooled, batches);
    sr_collector_destroy(&c);
    s_assert_once("full-%", batches * per);
    sr_test_stop(s_fx.ingestd, SIGTERM, 15000);
    s_start_ingestd("1M");
}

/* s_restore - after a database-down test, even a failed one: PostgreSQL running and an
 * ingestd with the usual spool answering, so one failure does not cascade into the next tests */
static int s_restore(void **state)
{
    (void)state;
    s_pg("start");
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", s_fx.admin);
    if (sr_test_wait_http(url, 200, 15000) != 0) {
        sr_test_stop(s_fx.ingestd, SIGKILL, 5000);
        s_start_ingestd("1M");
    }
    return 0;
}

/* s_write_delimited - n samples as varint-length-prefixed records */
static void s_write_delimited(const char *path, int n, int corrupt_last)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    char room[32];
    for (int i = 0; i < n; i++) {
        Sr__RoomSample s = SR__ROOM_SAMPLE__INIT;
        snprintf(room, sizeof room, "cli-%d", i);
        s.room_id = room;
        s.platform = SR__PLATFORM__PLATFORM_KUAISHOU;
        s.ts_us = TS0_US + i;
        s.likes = i;
        uint8_t buf[128];
        size_t len = sr__room_sample__pack(&s, buf);
        uint8_t varint = (uint8_t)len; /* < 128 */
        fwrite(&varint, 1, 1, f);
        fwrite(buf, 1, corrupt_last && i == n - 1 ? len - 3 : len, f);
    }
    fclose(f);
}

static int s_run_collect(char **argv, const char *out)
{
    pid_t pid = sr_test_spawn(argv, NULL, out);
    int status = sr_test_stop(pid, 0, 60000);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_sr_collect(void **state)
{
    (void)state;
    char *bin = sr_test_bin_path("sr-collect");
    char *file = sr_asprintf("%s/samples.bin", sr_test_env("SR_TEST_TMP"));
    char *bad = sr_asprintf("%s/bad.bin", sr_test_env("SR_TEST_TMP"));
    char *out = sr_asprintf("%s/collect.out", sr_test_env("SR_TEST_TMP"));
    s_write_delimited(file, 1234, 0);
    s_write_delimited(bad, 10, 1);

    char *none[] = {bin, NULL};
    assert_int_equal(s_run_collect(none, NULL), 2);

    for (int round = 0; round < 2; round++) {
        remove(out);
        char *argv[] = {bin,   "--proto",        file,     "--endpoints", s_fx.collector, "--batch",
                        "100", "--collector-id", "it-cli", NULL};
        assert_int_equal(s_run_collect(argv, out), 0);
        char *text = sr_test_read_file(out, NULL);
        assert_non_null(text);
        assert_non_null(strstr(text, round == 0
                                         ? "rows_sent=1234 batches=13 stored=13 duplicate=0"
                                         : "rows_sent=1234 batches=13 stored=0 duplicate=13"));
        free(text);
    }
    assert_int_equal(
        s_count("SELECT count(*) FROM metrics.room_samples WHERE room_id LIKE 'cli-%'"), 1234);
    assert_int_equal(
        s_count("SELECT sum(likes) FROM metrics.room_samples WHERE room_id LIKE 'cli-%'"),
        1234 * 1233 / 2);

    remove(out);
    char *argv[] = {bin, "--proto", bad, "--endpoints", s_fx.collector, NULL};
    assert_int_equal(s_run_collect(argv, out), 1);
    char *text = sr_test_read_file(out, NULL);
    assert_non_null(strstr(text, "record 10 at byte"));
    free(text);
    free(bin);
    free(file);
    free(bad);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_and_publish),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_garbage_and_oversize),
        cmocka_unit_test(test_rollup),
        cmocka_unit_test(test_douyin_push),
        cmocka_unit_test_teardown(test_db_down_spool, s_restore),
        cmocka_unit_test_teardown(test_spool_full, s_restore),
        cmocka_unit_test_teardown(test_spool_adopted, s_restore),
        cmocka_unit_test(test_sigkill_restart),
        cmocka_unit_test(test_sr_collect),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
