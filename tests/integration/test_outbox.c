/* test_outbox - sr_outbox against a real PostgreSQL (SR_TEST_DB_URL) and a real bus: seq in
 * commit order without holes, a publisher sending through a forwarder thread (XSUB/XPUB like
 * busd) to an sr_bus subscriber, a subscriber that gets every event exactly once in order
 * although the test drops and repeats messages, and one publisher per schema. Works in schemas
 * t_outbox*. */
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_arena.h"
#include "sr_bus.h"
#include "sr_db.h"
#include "sr_migrate.h"
#include "sr_outbox.h"
#include "sr_test.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

#define TOPIC        "order.paid"
#define MAX_EVENTS   64
#define PUT_THREADS  4
#define PUTS_EACH    25
#define CONTROL_ADDR "inproc://test_outbox_proxy"
/* two 63-byte schema names that differ only at the end */
#define LONG_A "t_outbox_long_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
#define LONG_B "t_outbox_long_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa2"

/* the bus: a forwarder thread standing in for busd, a publisher and a subscriber */
typedef struct {
    void *zctx;
    void *xsub, *xpub, *control; /* the forwarder's, used by its thread */
    void *stop;                  /* our end of the control pair */
    pthread_t thread;
    sr_bus_pub_t *pub;
    sr_bus_sub_t *sub;
} bus_t;

/* what the callback saw */
typedef struct {
    int n;
    uint64_t seq[MAX_EVENTS];
    char order_id[MAX_EVENTS][32];
    char source[MAX_EVENTS][32];
} seen_t;

typedef struct {
    sr_db_t *db;
    bus_t bus;
} fixture_t;

static long s_count(sr_db_t *db, const char *sql)
{
    PGresult *res = sr_db_query(db, sql, 0, NULL);
    if (!res)
        fail_msg("%s: %s", sql, sr_db_error(db));
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* s_fresh_schema - drop schema and its migration rows, then migrate it (outbox only) */
static void s_fresh_schema(sr_db_t *db, const char *schema)
{
    sr_test_db_reset_schema(db, schema);
    assert_int_equal(sr_migrate(db, schema, NULL, 0), 0);
}

/* s_put - one order.paid event with order_id in its own transaction; the seq, or 0 when
 * rolled back */
static uint64_t s_put(sr_db_t *db, const char *schema, const char *order_id, int commit)
{
    Sr__OrderEvent ev = SR__ORDER_EVENT__INIT;
    ev.order_id = (char *)order_id;
    ev.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
    ev.amount_fen = 1999;
    uint64_t seq = 0;
    assert_int_equal(sr_db_begin(db), 0);
    if (sr_outbox_put(db, schema, "test-1", TOPIC, &ev.base, "trace-x", &seq) != 0)
        fail_msg("put %s: %s", order_id, sr_db_error(db));
    if (!commit) {
        sr_db_rollback(db);
        return 0;
    }
    assert_int_equal(sr_db_commit(db), 0);
    return seq;
}

static void *s_forward(void *arg)
{
    bus_t *bus = arg;
    zmq_proxy_steerable(bus->xsub, bus->xpub, NULL, bus->control);
    return NULL;
}

static void s_bind(void *socket, uint16_t port)
{
    char *endpoint = sr_asprintf("tcp://127.0.0.1:%u", port);
    assert_int_equal(zmq_bind(socket, endpoint), 0);
    free(endpoint);
}

/* s_bus_start - forwarder, publisher (source "t_probe") and subscriber to "order.", waiting
 * until a probe message goes all the way through (slow joiner) */
static void s_bus_start(bus_t *bus)
{
    uint16_t in = sr_test_free_port(), out = sr_test_free_port();
    bus->zctx = zmq_ctx_new();
    bus->xsub = zmq_socket(bus->zctx, ZMQ_XSUB);
    bus->xpub = zmq_socket(bus->zctx, ZMQ_XPUB);
    bus->control = zmq_socket(bus->zctx, ZMQ_PAIR);
    bus->stop = zmq_socket(bus->zctx, ZMQ_PAIR);
    s_bind(bus->xsub, in);
    s_bind(bus->xpub, out);
    assert_int_equal(zmq_bind(bus->control, CONTROL_ADDR), 0);
    assert_int_equal(zmq_connect(bus->stop, CONTROL_ADDR), 0);
    assert_int_equal(pthread_create(&bus->thread, NULL, s_forward, bus), 0);

    char *pub_at = sr_asprintf("tcp://127.0.0.1:%u", in);
    char *sub_at = sr_asprintf("tcp://127.0.0.1:%u", out);
    bus->pub = sr_bus_pub_new(bus->zctx, pub_at, "t_probe", "test-1", NULL);
    bus->sub = sr_bus_sub_new(bus->zctx, sub_at, NULL);
    free(pub_at);
    free(sub_at);
    assert_non_null(bus->pub);
    assert_non_null(bus->sub);
    assert_int_equal(sr_bus_subscribe(bus->sub, "order."), 0);

    sr_arena_t *arena = sr_arena_new(4096);
    Sr__OrderEvent probe = SR__ORDER_EVENT__INIT;
    probe.order_id = "probe";
    int through = 0;
    for (int i = 0; i < 100 && !through; i++) {
        assert_int_equal(sr_bus_publish(bus->pub, TOPIC, &probe.base, NULL), 0);
        sr_bus_msg_t msg;
        through = sr_bus_recv(bus->sub, arena, &msg, 100) == SR_BUS_RECV_OK;
    }
    assert_true(through);
    sr_bus_msg_t msg;
    while (sr_bus_recv(bus->sub, arena, &msg, 200) != SR_BUS_RECV_EMPTY)
        ;
    sr_arena_destroy(&arena);
}

static void s_bus_stop(bus_t *bus)
{
    sr_bus_pub_destroy(&bus->pub);
    sr_bus_sub_destroy(&bus->sub);
    assert_int_equal(zmq_send(bus->stop, "TERMINATE", 9, 0), 9);
    pthread_join(bus->thread, NULL);
    zmq_close(bus->xsub);
    zmq_close(bus->xpub);
    zmq_close(bus->control);
    zmq_close(bus->stop);
    zmq_ctx_term(bus->zctx);
}

/* s_receive - exactly `want` messages of schema from the bus, in arena; fails the test when
 * they do not all arrive or more come */
static void s_receive(bus_t *bus, sr_arena_t *arena, const char *schema, sr_bus_msg_t *msgs,
                      int want)
{
    int got = 0;
    sr_bus_msg_t msg;
    sr_bus_recv_t rc;
    while ((rc = sr_bus_recv(bus->sub, arena, &msg, got < want ? 3000 : 300)) !=
           SR_BUS_RECV_EMPTY) {
        assert_int_equal(rc, SR_BUS_RECV_OK);
        if (strcmp(msg.envelope->source, schema) != 0)
            continue;
        assert_true(got < want);
        msgs[got++] = msg;
    }
    assert_int_equal(got, want);
}

static void s_record(void *arg, const char *topic, const Sr__Envelope *envelope,
                     const ProtobufCMessage *payload)
{
    seen_t *seen = arg;
    assert_true(seen->n < MAX_EVENTS);
    assert_string_equal(topic, TOPIC);
    assert_non_null(payload);
    assert_ptr_equal(payload->descriptor, &sr__order_event__descriptor);
    const Sr__OrderEvent *ev = (const Sr__OrderEvent *)payload;
    seen->seq[seen->n] = envelope->seq;
    snprintf(seen->order_id[seen->n], sizeof seen->order_id[0], "%s", ev->order_id);
    snprintf(seen->source[seen->n], sizeof seen->source[0], "%s", envelope->source);
    seen->n++;
}

/* s_assert_seen - the callback saw seq first..last once each, in order, order ids "o<seq>" */
static void s_assert_seen(const seen_t *seen, uint64_t first, uint64_t last)
{
    assert_int_equal(seen->n, (int)(last - first + 1));
    for (int i = 0; i < seen->n; i++) {
        char want[32];
        snprintf(want, sizeof want, "o%llu", (unsigned long long)(first + (uint64_t)i));
        assert_int_equal(seen->seq[i], first + (uint64_t)i);
        assert_string_equal(seen->order_id[i], want);
    }
}

/* s_put_n - commit n events whose order ids are "o<seq>" (the next seq is known: no one else
 * writes the schema) */
static void s_put_n(sr_db_t *db, const char *schema, uint64_t next_seq, int n)
{
    for (int i = 0; i < n; i++) {
        char order_id[32];
        snprintf(order_id, sizeof order_id, "o%llu", (unsigned long long)(next_seq + (uint64_t)i));
        assert_int_equal(s_put(db, schema, order_id, 1), next_seq + (uint64_t)i);
    }
}

static int setup(void **state)
{
    fixture_t *f = sr_calloc(1, sizeof *f);
    f->db = sr_test_db("test_outbox");
    s_bus_start(&f->bus);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    s_bus_stop(&f->bus);
    static const char *const schemas[] = {"t_outbox",     "t_outbox_many", "t_outbox_gap",
                                          "t_outbox_two", LONG_A,          LONG_B};
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        char *sql = sr_asprintf("DROP SCHEMA IF EXISTS %s CASCADE;"
                                "DELETE FROM public.sr_migrations WHERE schema = '%s'",
                                schemas[i], schemas[i]);
        sr_test_db_exec(f->db, sql);
        free(sql);
    }
    sr_db_destroy(&f->db);
    free(f);
    return 0;
}

static void test_put_refuses_bad_input(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox");
    Sr__OrderEvent order = SR__ORDER_EVENT__INIT;
    Sr__RoomSample sample = SR__ROOM_SAMPLE__INIT;
    static const struct {
        const char *schema;
        const char *topic;
        int payload; /* 0 none, 1 OrderEvent, 2 RoomSample */
        const char *sqlstate;
    } cases[] = {
        {"t_outbox", "order.nosuch", 1, ""},  {"t_outbox", NULL, 1, ""},
        {"t_outbox", TOPIC, 2, ""},           {"t_outbox", TOPIC, 0, ""},
        {"T_outbox", TOPIC, 1, ""},           {"t_outbox\"x", TOPIC, 1, ""},
        {"t_outbox_none", TOPIC, 1, "42P01"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const ProtobufCMessage *payload = cases[i].payload == 1   ? &order.base
                                          : cases[i].payload == 2 ? &sample.base
                                                                  : NULL;
        assert_int_equal(sr_db_begin(f->db), 0);
        assert_int_equal(
            sr_outbox_put(f->db, cases[i].schema, "test-1", cases[i].topic, payload, NULL, NULL),
            -1);
        if (cases[i].sqlstate[0])
            assert_string_equal(sr_db_sqlstate(f->db), cases[i].sqlstate);
        sr_db_rollback(f->db);
    }
    /* larger than any subscriber takes */
    char *huge = sr_malloc(SR_BUS_MAX_MSG_DEFAULT + 1);
    memset(huge, 'x', SR_BUS_MAX_MSG_DEFAULT);
    huge[SR_BUS_MAX_MSG_DEFAULT] = '\0';
    order.order_id = huge;
    assert_int_equal(sr_db_begin(f->db), 0);
    assert_int_equal(sr_outbox_put(f->db, "t_outbox", "test-1", TOPIC, &order.base, NULL, NULL),
                     -1);
    sr_db_rollback(f->db);
    free(huge);
    /* outside a transaction the seq would commit apart from its row */
    order.order_id = "o-autocommit";
    assert_int_equal(sr_outbox_put(f->db, "t_outbox", "test-1", TOPIC, &order.base, NULL, NULL),
                     -1);
    assert_int_equal(s_count(f->db, "SELECT count(*) FROM t_outbox.outbox"), 0);
    assert_int_equal(s_count(f->db, "SELECT last FROM t_outbox.outbox_seq"), 0);
}

/* long schema names keep their own statements (their names would collide when cut) */
static void test_put_long_schema_names(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(strlen(LONG_A), 63);
    s_fresh_schema(f->db, LONG_A);
    s_fresh_schema(f->db, LONG_B);
    s_put_n(f->db, LONG_A, 1, 2);
    s_put_n(f->db, LONG_B, 1, 1);
    s_put_n(f->db, LONG_A, 3, 1);
    assert_int_equal(s_count(f->db, "SELECT max(seq) FROM " LONG_A ".outbox"), 3);
    assert_int_equal(s_count(f->db, "SELECT max(seq) FROM " LONG_B ".outbox"), 1);
}

static void test_put_rolled_back_leaves_no_hole(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox");
    uint64_t want = 1;
    for (int i = 0; i < 12; i++) {
        int commit = i % 3 != 1;
        char order_id[32];
        snprintf(order_id, sizeof order_id, "o%llu", (unsigned long long)want);
        uint64_t seq = s_put(f->db, "t_outbox", order_id, commit);
        if (commit)
            assert_int_equal(seq, want++);
    }
    assert_int_equal(s_count(f->db, "SELECT count(*) FROM t_outbox.outbox"), 8);
    assert_int_equal(s_count(f->db, "SELECT max(seq) FROM t_outbox.outbox"), 8);
    assert_int_equal(s_count(f->db, "SELECT last FROM t_outbox.outbox_seq"), 8);

    /* the stored rows decode to the Envelopes we meant, read back by a subscriber */
    seen_t seen = {0};
    sr_outbox_sub_t *sub = sr_outbox_sub_new(f->db, s_record, &seen);
    assert_int_equal(sr_outbox_sub_follow(sub, "t_outbox", 0), 0);
    assert_int_equal(sr_outbox_sub_catch_up(sub), 0);
    s_assert_seen(&seen, 1, 8);
    for (int i = 0; i < seen.n; i++)
        assert_string_equal(seen.source[i], "t_outbox");
    assert_int_equal(sr_outbox_sub_last(sub, "t_outbox"), 8);
    sr_outbox_sub_stats_t stats = sr_outbox_sub_stats(sub);
    assert_int_equal(stats.delivered, 8);
    assert_int_equal(stats.recovered, 8);
    sr_outbox_sub_destroy(&sub);
    assert_null(sub);
}

typedef struct {
    pthread_barrier_t *start;
    int index;
    int committed;
} putter_t;

static void *s_putter(void *arg)
{
    putter_t *p = arg;
    sr_db_t *db = sr_db_connect(sr_test_env("SR_TEST_DB_URL"), "test_outbox_putter", 3, 500);
    pthread_barrier_wait(p->start);
    for (int i = 0; db && i < PUTS_EACH; i++) {
        Sr__OrderEvent ev = SR__ORDER_EVENT__INIT;
        char order_id[32];
        snprintf(order_id, sizeof order_id, "t%d-%d", p->index, i);
        ev.order_id = order_id;
        if (sr_db_begin(db) != 0 ||
            sr_outbox_put(db, "t_outbox_many", "test-1", TOPIC, &ev.base, NULL, NULL) != 0)
            break;
        if ((i + p->index) % 4 == 0) {
            sr_db_rollback(db);
        } else if (sr_db_commit(db) == 0) {
            p->committed++;
        }
    }
    sr_db_destroy(&db);
    return NULL;
}

static void test_concurrent_puts_commit_order(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox_many");
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, PUT_THREADS), 0);
    pthread_t threads[PUT_THREADS];
    putter_t putters[PUT_THREADS];
    for (int i = 0; i < PUT_THREADS; i++) {
        putters[i] = (putter_t){.start = &start, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL, s_putter, &putters[i]), 0);
    }
    long committed = 0;
    for (int i = 0; i < PUT_THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        committed += putters[i].committed;
    }
    pthread_barrier_destroy(&start);
    assert_true(committed > PUT_THREADS * PUTS_EACH / 2);
    /* seq 1..committed without holes */
    assert_int_equal(s_count(f->db, "SELECT count(*) FROM t_outbox_many.outbox"), committed);
    assert_int_equal(s_count(f->db, "SELECT min(seq) FROM t_outbox_many.outbox"), 1);
    assert_int_equal(s_count(f->db, "SELECT max(seq) FROM t_outbox_many.outbox"), committed);

    /* commit order: each event took its seq after the one before had committed, so event
     * times rise with seq */
    sr_arena_t *arena = sr_arena_new(4096);
    PGresult *res =
        sr_db_query(f->db, "SELECT envelope FROM t_outbox_many.outbox ORDER BY seq", 0, NULL);
    assert_non_null(res);
    int64_t prev = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        size_t len = 0;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 0), &len);
        Sr__Envelope *env = sr__envelope__unpack(sr_arena_pb_allocator(arena), len, bytes);
        PQfreemem(bytes);
        assert_non_null(env);
        assert_int_equal(env->seq, (uint64_t)i + 1);
        assert_true(env->event_time_us > prev);
        prev = env->event_time_us;
    }
    PQclear(res);
    sr_arena_destroy(&arena);
}

static void test_publish_through_bus(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox");
    s_put_n(f->db, "t_outbox", 1, 7);
    sr_outbox_pub_t *pub = sr_outbox_pub_new(f->db, "t_outbox", f->bus.pub);
    assert_non_null(pub);
    assert_int_equal(sr_outbox_pub_flush(pub), 7);
    assert_int_equal(sr_outbox_pub_flush(pub), 0);
    assert_int_equal(s_count(f->db, "SELECT published FROM t_outbox.outbox_state"), 7);

    sr_arena_t *arena = sr_arena_new(4096);
    sr_bus_msg_t msgs[7];
    s_receive(&f->bus, arena, "t_outbox", msgs, 7);
    seen_t seen = {0};
    sr_outbox_sub_t *sub = sr_outbox_sub_new(f->db, s_record, &seen);
    assert_int_equal(sr_outbox_sub_follow(sub, "t_outbox", 0), 0);
    for (int i = 0; i < 7; i++) {
        assert_string_equal(msgs[i].envelope->instance, "test-1");
        assert_string_equal(msgs[i].envelope->trace_id, "trace-x");
        assert_int_equal(sr_outbox_sub_deliver(sub, &msgs[i]), 0);
    }
    s_assert_seen(&seen, 1, 7);
    sr_outbox_sub_stats_t stats = sr_outbox_sub_stats(sub);
    assert_int_equal(stats.delivered, 7);
    assert_int_equal(stats.recovered, 0);
    assert_int_equal(stats.duplicates, 0);
    sr_outbox_sub_destroy(&sub);
    sr_outbox_pub_destroy(&pub);
    assert_null(pub);
    sr_arena_destroy(&arena);
}

/* prune deletes only rows that are published and older than what is kept */
static void test_prune_keeps_unpublished_and_recent(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox");
    s_put_n(f->db, "t_outbox", 1, 5);
    sr_outbox_pub_t *pub = sr_outbox_pub_new(f->db, "t_outbox", f->bus.pub);
    assert_int_equal(sr_outbox_pub_prune(pub, 0), 0); /* not publishing yet: not pruning */
    assert_int_equal(sr_outbox_pub_flush(pub), 5);
    s_put_n(f->db, "t_outbox", 6, 2);
    sr_test_db_exec(f->db, "UPDATE t_outbox.outbox SET created_at = now() - interval '2 hours'");
    assert_int_equal(sr_outbox_pub_prune(pub, 3 * 3600 * 1000), 0);
    assert_int_equal(sr_outbox_pub_prune(pub, 3600 * 1000), 5);
    assert_int_equal(s_count(f->db, "SELECT min(seq) FROM t_outbox.outbox"), 6);
    assert_int_equal(s_count(f->db, "SELECT count(*) FROM t_outbox.outbox"), 2);
    assert_int_equal(sr_outbox_pub_flush(pub), 2);
    sr_outbox_pub_destroy(&pub);
}

static void test_gaps_duplicates_and_lost_last(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox_gap");
    s_put_n(f->db, "t_outbox_gap", 1, 12);
    sr_outbox_pub_t *pub = sr_outbox_pub_new(f->db, "t_outbox_gap", f->bus.pub);
    assert_int_equal(sr_outbox_pub_flush(pub), 12);
    sr_arena_t *arena = sr_arena_new(4096);
    sr_bus_msg_t msgs[12];
    s_receive(&f->bus, arena, "t_outbox_gap", msgs, 12);

    /* the subscriber reads gaps on its own connection */
    sr_db_t *sub_db = sr_test_db("test_outbox");
    seen_t seen = {0};
    sr_outbox_sub_t *sub = sr_outbox_sub_new(sub_db, s_record, &seen);
    assert_int_equal(sr_outbox_sub_follow(sub, "t_outbox_gap", 0), 0);
    /* 3, 4, 7 and the last (12) lost; 5 and 6 arrive twice; a stranger's message is ignored */
    static const int feed[] = {1, 2, 5, 5, 6, 8, 6, 9, 10, 11};
    for (size_t i = 0; i < sizeof feed / sizeof feed[0]; i++) {
        assert_int_equal(msgs[feed[i] - 1].envelope->seq, (uint64_t)feed[i]);
        assert_int_equal(sr_outbox_sub_deliver(sub, &msgs[feed[i] - 1]), 0);
    }
    Sr__Envelope stranger = *msgs[11].envelope;
    stranger.source = "t_outbox_other";
    sr_bus_msg_t strange = msgs[11];
    strange.envelope = &stranger;
    assert_int_equal(sr_outbox_sub_deliver(sub, &strange), 0);
    s_assert_seen(&seen, 1, 11);
    assert_int_equal(sr_outbox_sub_last(sub, "t_outbox_gap"), 11);
    assert_int_equal(sr_outbox_sub_last(sub, "t_outbox_other"), 0);
    sr_outbox_sub_stats_t stats = sr_outbox_sub_stats(sub);
    assert_int_equal(stats.delivered, 11);
    assert_int_equal(stats.recovered, 3);
    assert_int_equal(stats.duplicates, 2);

    /* the lost last one is found by the cron's catch-up; arriving late it is a duplicate */
    assert_int_equal(sr_outbox_sub_catch_up(sub), 0);
    s_assert_seen(&seen, 1, 12);
    assert_int_equal(sr_outbox_sub_deliver(sub, &msgs[11]), 0);
    assert_int_equal(sr_outbox_sub_catch_up(sub), 0);
    s_assert_seen(&seen, 1, 12);
    stats = sr_outbox_sub_stats(sub);
    assert_int_equal(stats.recovered, 4);
    assert_int_equal(stats.duplicates, 3);

    /* a gap that cannot be read (connection killed) keeps the message back: -1, no advance;
     * after the reconnect the catch-up delivers it */
    s_put_n(f->db, "t_outbox_gap", 13, 2);
    assert_int_equal(sr_outbox_pub_flush(pub), 2);
    sr_bus_msg_t more[2];
    s_receive(&f->bus, arena, "t_outbox_gap", more, 2);
    assert_null(sr_db_query(sub_db, "SELECT pg_terminate_backend(pg_backend_pid())", 0, NULL));
    assert_int_equal(sr_outbox_sub_deliver(sub, &more[1]), -1);
    assert_int_equal(sr_outbox_sub_last(sub, "t_outbox_gap"), 12);
    s_assert_seen(&seen, 1, 12);
    assert_int_equal(sr_db_ok(sub_db), 1);
    assert_int_equal(sr_outbox_sub_catch_up(sub), 0);
    s_assert_seen(&seen, 1, 14);

    sr_outbox_sub_destroy(&sub);
    sr_db_destroy(&sub_db);
    sr_outbox_pub_destroy(&pub);
    sr_arena_destroy(&arena);
}

static void test_one_publisher_per_schema(void **state)
{
    fixture_t *f = *state;
    s_fresh_schema(f->db, "t_outbox_two");
    sr_db_t *db1 = sr_test_db("test_outbox"), *db2 = sr_test_db("test_outbox");
    sr_outbox_pub_t *pub1 = sr_outbox_pub_new(db1, "t_outbox_two", f->bus.pub);
    sr_outbox_pub_t *pub2 = sr_outbox_pub_new(db2, "t_outbox_two", f->bus.pub);
    sr_arena_t *arena = sr_arena_new(4096);
    sr_bus_msg_t msgs[10];

    s_put_n(f->db, "t_outbox_two", 1, 5);
    assert_int_equal(sr_outbox_pub_flush(pub1), 5);
    assert_int_equal(sr_outbox_pub_flush(pub2), 0);
    s_put_n(f->db, "t_outbox_two", 6, 3);
    assert_int_equal(sr_outbox_pub_flush(pub2), 0);
    assert_int_equal(sr_outbox_pub_flush(pub1), 3);
    s_receive(&f->bus, arena, "t_outbox_two", msgs, 8);

    /* the first one goes away: the second takes over where it stopped */
    sr_outbox_pub_destroy(&pub1);
    s_put_n(f->db, "t_outbox_two", 9, 2);
    assert_int_equal(sr_outbox_pub_flush(pub2), 2);
    s_receive(&f->bus, arena, "t_outbox_two", msgs + 8, 2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(msgs[i].envelope->seq, (uint64_t)i + 1);

    /* a new subscriber following from the current end sees only what comes next */
    seen_t seen = {0};
    sr_outbox_sub_t *sub = sr_outbox_sub_new(f->db, s_record, &seen);
    assert_int_equal(sr_outbox_sub_follow(sub, "t_outbox_two", -1), 0);
    assert_int_equal(sr_outbox_sub_last(sub, "t_outbox_two"), 10);
    assert_int_equal(sr_outbox_sub_catch_up(sub), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(sr_outbox_sub_deliver(sub, &msgs[9]), 0);
    assert_int_equal(seen.n, 0);
    s_put_n(f->db, "t_outbox_two", 11, 1);
    assert_int_equal(sr_outbox_pub_flush(pub2), 1);
    sr_bus_msg_t last;
    s_receive(&f->bus, arena, "t_outbox_two", &last, 1);
    assert_int_equal(sr_outbox_sub_deliver(sub, &last), 0);
    s_assert_seen(&seen, 11, 11);
    assert_int_equal(sr_outbox_sub_follow(sub, "t_outbox_two", -2), -1);

    sr_outbox_sub_destroy(&sub);
    sr_outbox_pub_destroy(&pub2);
    sr_db_destroy(&db1);
    sr_db_destroy(&db2);
    sr_arena_destroy(&arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_refuses_bad_input),
        cmocka_unit_test(test_put_long_schema_names),
        cmocka_unit_test(test_put_rolled_back_leaves_no_hole),
        cmocka_unit_test(test_concurrent_puts_commit_order),
        cmocka_unit_test(test_publish_through_bus),
        cmocka_unit_test(test_prune_keeps_unpublished_and_recent),
        cmocka_unit_test(test_gaps_duplicates_and_lost_last),
        cmocka_unit_test(test_one_publisher_per_schema),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
