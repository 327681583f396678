/* test_sr_bus - publish/subscribe over real sockets: a busd-like XSUB/XPUB forwarder thread on
 * loopback TCP, raw PUB sockets that send what a broken peer would, and inproc pairs where
 * libzmq's own limits would get in the way (the oversize check, a deterministic HWM).
 * Counters are read back from the rendered /metrics text.
 */
#include "sr_bus.h"

#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"
#include "sr_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define SYNC_TIMEOUT_MS 5000

/* a busd stand-in: XSUB for publishers, XPUB for subscribers, zmq_proxy in a thread */
typedef struct {
    void *xsub;
    void *xpub;
    void *control; /* our end of the proxy's control pair */
    void *control_peer;
    pthread_t thread;
    char pub_endpoint[64]; /* where publishers connect (XSUB) */
    char sub_endpoint[64]; /* where subscribers connect (XPUB) */
} forwarder_t;

/* everything a test opens lives here, so teardown closes it even after a failed assertion */
typedef struct {
    void *zctx;
    sr_metrics_t *metrics;
    sr_arena_t *arena;
    forwarder_t fw;
    int fw_running;
    sr_bus_pub_t *pub;
    sr_bus_sub_t *sub[3];
    void *raw;
} fixture_t;

static void s_forwarder_stop(fixture_t *f);

static int s_setup(void **state)
{
    fixture_t *f = sr_calloc(1, sizeof *f);
    f->zctx = zmq_ctx_new();
    f->metrics = sr_metrics_new();
    f->arena = sr_arena_new(4096);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    sr_bus_pub_destroy(&f->pub);
    for (int i = 0; i < 3; i++)
        sr_bus_sub_destroy(&f->sub[i]);
    if (f->raw)
        zmq_close(f->raw);
    s_forwarder_stop(f);
    sr_arena_destroy(&f->arena);
    sr_metrics_destroy(&f->metrics);
    zmq_ctx_term(f->zctx);
    free(f);
    return 0;
}

static long long s_dropped(sr_metrics_t *metrics, const char *reason)
{
    char series[96];
    snprintf(series, sizeof series, "sr_bus_dropped_total{reason=\"%s\"}", reason);
    return sr_test_metric(metrics, series);
}

static void *s_forwarder_run(void *arg)
{
    forwarder_t *fw = arg;
    zmq_proxy_steerable(fw->xsub, fw->xpub, NULL, fw->control_peer);
    return NULL;
}

static void *s_raw_socket(void *zctx, int type)
{
    void *s = zmq_socket(zctx, type);
    assert_non_null(s);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger), 0);
    return s;
}

/* s_forwarder_start - bind on two free ports; a CURVE server when secret_key is given */
static void s_forwarder_start(fixture_t *f, const char *secret_key)
{
    forwarder_t *fw = &f->fw;
    void *zctx = f->zctx;
    static int serial;
    char control[64];
    snprintf(control, sizeof control, "inproc://test-fwd-control-%d", serial++);
    fw->xsub = s_raw_socket(zctx, ZMQ_XSUB);
    fw->xpub = s_raw_socket(zctx, ZMQ_XPUB);
    if (secret_key) {
        assert_int_equal(sr_bus_curve_server(fw->xsub, secret_key), 0);
        assert_int_equal(sr_bus_curve_server(fw->xpub, secret_key), 0);
    }
    snprintf(fw->pub_endpoint, sizeof fw->pub_endpoint, "tcp://127.0.0.1:%u", sr_test_free_port());
    assert_int_equal(zmq_bind(fw->xsub, fw->pub_endpoint), 0);
    snprintf(fw->sub_endpoint, sizeof fw->sub_endpoint, "tcp://127.0.0.1:%u", sr_test_free_port());
    assert_int_equal(zmq_bind(fw->xpub, fw->sub_endpoint), 0);
    fw->control_peer = s_raw_socket(zctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(fw->control_peer, control), 0);
    fw->control = s_raw_socket(zctx, ZMQ_PAIR);
    assert_int_equal(zmq_connect(fw->control, control), 0);
    assert_int_equal(pthread_create(&fw->thread, NULL, s_forwarder_run, fw), 0);
    f->fw_running = 1;
}

static void s_forwarder_stop(fixture_t *f)
{
    forwarder_t *fw = &f->fw;
    if (!f->fw_running)
        return;
    f->fw_running = 0;
    assert_int_equal(zmq_send(fw->control, "TERMINATE", 9, 0), 9);
    assert_int_equal(pthread_join(fw->thread, NULL), 0);
    zmq_close(fw->control);
    zmq_close(fw->control_peer);
    zmq_close(fw->xsub);
    zmq_close(fw->xpub);
}

static Sr__RoomSample s_sample(const char *room, int64_t viewers)
{
    Sr__RoomSample s = SR__ROOM_SAMPLE__INIT;
    s.platform = SR__PLATFORM__PLATFORM_DOUYIN;
    s.room_id = (char *)room;
    s.online_viewers = viewers;
    s.gmv_fen = viewers * 100;
    return s;
}

static Sr__OrderEvent s_order(const char *order_id)
{
    Sr__OrderEvent o = SR__ORDER_EVENT__INIT;
    o.platform = SR__PLATFORM__PLATFORM_TAOBAO;
    o.order_id = (char *)order_id;
    o.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
    o.amount_fen = 1999;
    return o;
}

/* s_sync - publish probes on topic until the subscriber sees one (subscriptions travel
 * upstream asynchronously), then swallow the probes still in flight */
static void s_sync(sr_bus_pub_t *pub, sr_bus_sub_t *sub, sr_arena_t *arena, const char *topic)
{
    Sr__RoomSample sample = s_sample("probe", 0);
    Sr__OrderEvent order = s_order("probe");
    const ProtobufCMessage *probe =
        strncmp(topic, "order.", 6) == 0 ? &order.base : (const ProtobufCMessage *)&sample.base;
    int64_t until = sr_clock_mono_ms() + SYNC_TIMEOUT_MS;
    sr_bus_msg_t msg;
    int seen = 0;
    while (!seen && sr_clock_mono_ms() < until) {
        assert_int_equal(sr_bus_publish(pub, topic, probe, NULL), 0);
        seen = sr_bus_recv(sub, arena, &msg, 20) == SR_BUS_RECV_OK;
        sr_arena_reset(arena);
    }
    assert_true(seen);
    while (sr_bus_recv(sub, arena, &msg, 100) == SR_BUS_RECV_OK)
        sr_arena_reset(arena);
}

/* s_raw_send - send frames (n of them) on a raw socket as one message */
static void s_raw_send(void *socket, const void *const *frames, const size_t *lens, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(zmq_send(socket, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0),
                         (int)lens[i]);
}

static void s_raw_send_envelope(void *socket, const char *topic, const uint8_t *env, size_t len)
{
    const void *frames[] = {topic, env};
    size_t lens[] = {strlen(topic), len};
    s_raw_send(socket, frames, lens, 2);
}

/* s_pack_sample - a valid packed Envelope carrying a RoomSample for room */
static uint8_t *s_pack_sample(const char *room, uint64_t seq, size_t *len)
{
    Sr__RoomSample sample = s_sample(room, 7);
    uint8_t *env = NULL;
    assert_int_equal(sr_bus_envelope_pack("raw", "raw-1", seq, 1, NULL, &sample.base, &env, len),
                     0);
    return env;
}

/* s_raw_sync - like s_sync, for a raw PUB feeding our subscriber */
static void s_raw_sync(void *raw_pub, sr_bus_sub_t *sub, sr_arena_t *arena)
{
    size_t len;
    uint8_t *env = s_pack_sample("probe", 1, &len);
    int64_t until = sr_clock_mono_ms() + SYNC_TIMEOUT_MS;
    sr_bus_msg_t msg;
    int seen = 0;
    while (!seen && sr_clock_mono_ms() < until) {
        s_raw_send_envelope(raw_pub, "metric.room", env, len);
        seen = sr_bus_recv(sub, arena, &msg, 20) == SR_BUS_RECV_OK;
        sr_arena_reset(arena);
    }
    free(env);
    assert_true(seen);
    while (sr_bus_recv(sub, arena, &msg, 100) == SR_BUS_RECV_OK)
        sr_arena_reset(arena);
}

static void test_envelope_round_trip(void **state)
{
    fixture_t *f = *state;
    Sr__RoomSample sample = s_sample("room-42", 1234);
    sample.session_id = "session-9";
    sample.refunds_fen = -5;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(sr_bus_envelope_pack("tasks", "taskd-2", 77, 1700000000123456LL, "trace-abc",
                                          &sample.base, &buf, &len),
                     0);
    Sr__Envelope *env = sr__envelope__unpack(sr_arena_pb_allocator(f->arena), len, buf);
    assert_non_null(env);
    assert_int_equal(env->schema_version, SR_BUS_SCHEMA_VERSION);
    assert_string_equal(env->source, "tasks");
    assert_string_equal(env->instance, "taskd-2");
    assert_int_equal(env->seq, 77);
    assert_int_equal(env->event_time_us, 1700000000123456LL);
    assert_string_equal(env->trace_id, "trace-abc");
    Sr__RoomSample *back = sr__room_sample__unpack(sr_arena_pb_allocator(f->arena),
                                                   env->payload.len, env->payload.data);
    assert_non_null(back);
    assert_int_equal(back->platform, SR__PLATFORM__PLATFORM_DOUYIN);
    assert_string_equal(back->room_id, "room-42");
    assert_string_equal(back->session_id, "session-9");
    assert_int_equal(back->online_viewers, 1234);
    assert_int_equal(back->gmv_fen, 123400);
    assert_int_equal(back->refunds_fen, -5);
    free(buf);

    /* NULL strings travel as empty ones, a NULL payload as no bytes */
    assert_int_equal(sr_bus_envelope_pack(NULL, NULL, 1, 0, NULL, NULL, &buf, &len), 0);
    env = sr__envelope__unpack(sr_arena_pb_allocator(f->arena), len, buf);
    assert_non_null(env);
    assert_string_equal(env->source, "");
    assert_string_equal(env->trace_id, "");
    assert_int_equal(env->payload.len, 0);
    free(buf);
    sr_arena_reset(f->arena);
}

static void test_publish_subscribe_through_forwarder(void **state)
{
    fixture_t *f = *state;
    s_forwarder_start(f, NULL);
    sr_bus_opts_t opts = {.metrics = f->metrics};
    sr_bus_sub_t *sub = f->sub[0] = sr_bus_sub_new(f->zctx, f->fw.sub_endpoint, &opts);
    assert_non_null(sub);
    assert_int_equal(sr_bus_subscribe(sub, "metric."), 0);
    sr_bus_pub_t *pub = f->pub =
        sr_bus_pub_new(f->zctx, f->fw.pub_endpoint, "ingestd-1", "ingestd-1", &opts);
    assert_non_null(pub);
    assert_int_equal(sr_bus_pub_seq(pub), 0);
    s_sync(pub, sub, f->arena, "metric.room");
    uint64_t probes = sr_bus_pub_seq(pub);
    assert_true(probes >= 1);

    int64_t before_us = sr_clock_now_us();
    for (int i = 1; i <= 5; i++) {
        char room[32];
        snprintf(room, sizeof room, "room-%d", i);
        Sr__RoomSample sample = s_sample(room, i * 10);
        assert_int_equal(sr_bus_publish(pub, "metric.room", &sample.base, "trace-1"), 0);
        assert_int_equal(sr_bus_pub_seq(pub), probes + (uint64_t)i);
    }
    for (int i = 1; i <= 5; i++) {
        sr_bus_msg_t msg;
        assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_OK);
        assert_string_equal(msg.topic, "metric.room");
        assert_int_equal(msg.envelope->seq, probes + (uint64_t)i);
        assert_int_equal(msg.envelope->schema_version, SR_BUS_SCHEMA_VERSION);
        assert_string_equal(msg.envelope->source, "ingestd-1");
        assert_string_equal(msg.envelope->instance, "ingestd-1");
        assert_string_equal(msg.envelope->trace_id, "trace-1");
        assert_true(msg.envelope->event_time_us >= before_us);
        assert_true(msg.envelope->event_time_us <= sr_clock_now_us());
        assert_ptr_equal(msg.payload->descriptor, &sr__room_sample__descriptor);
        const Sr__RoomSample *got = (const Sr__RoomSample *)msg.payload;
        char room[32];
        snprintf(room, sizeof room, "room-%d", i);
        assert_string_equal(got->room_id, room);
        assert_int_equal(got->online_viewers, i * 10);
        sr_arena_reset(f->arena);
    }
    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 0), SR_BUS_RECV_EMPTY);
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 50), SR_BUS_RECV_EMPTY);

    /* the outbox's path: an Envelope packed elsewhere goes out as is, seq untouched */
    Sr__RoomSample sample = s_sample("outbox-room", 3);
    uint8_t *env = NULL;
    size_t len = 0;
    assert_int_equal(
        sr_bus_envelope_pack("tasks", "taskd-1", 9001, 42, "t-9", &sample.base, &env, &len), 0);
    assert_int_equal(sr_bus_publish_packed(pub, "metric.room", env, len), 0);
    free(env);
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_OK);
    assert_int_equal(msg.envelope->seq, 9001);
    assert_string_equal(msg.envelope->source, "tasks");
    assert_int_equal(msg.envelope->event_time_us, 42);
    assert_string_equal(((const Sr__RoomSample *)msg.payload)->room_id, "outbox-room");
    assert_int_equal(sr_bus_pub_seq(pub), probes + 5);
    sr_arena_reset(f->arena);

    assert_int_equal(sr_bus_pub_connected(pub), 1);
    assert_int_equal(sr_bus_sub_connected(sub), 1);
    long long sent = sr_test_metric(f->metrics, "sr_bus_sent_total");
    long long received = sr_test_metric(f->metrics, "sr_bus_received_total");
    assert_int_equal(sent, (long long)probes + 6);
    assert_true(received >= 6 && received <= sent);

    /* busd going away is seen by both monitors */
    s_forwarder_stop(f);
    int64_t until = sr_clock_mono_ms() + SYNC_TIMEOUT_MS;
    while ((sr_bus_pub_connected(pub) || sr_bus_sub_connected(sub)) && sr_clock_mono_ms() < until)
        sr_test_sleep_ms(10);
    assert_int_equal(sr_bus_pub_connected(pub), 0);
    assert_int_equal(sr_bus_sub_connected(sub), 0);
    sr_bus_pub_destroy(&f->pub);
    sr_bus_sub_destroy(&f->sub[0]);
    assert_null(f->pub);
    assert_null(f->sub[0]);
    sr_bus_pub_destroy(&f->pub);
}

static void test_publish_refuses_unknown_topic_and_wrong_type(void **state)
{
    fixture_t *f = *state;
    sr_bus_pub_t *pub = f->pub = sr_bus_pub_new(f->zctx, "inproc://test-refuse", "s", "s-1", NULL);
    assert_non_null(pub);
    Sr__RoomSample sample = s_sample("r", 1);
    Sr__OrderEvent order = s_order("o-1");
    assert_int_equal(sr_bus_publish(pub, "metric.nope", &sample.base, NULL), -1);
    assert_int_equal(sr_bus_publish(pub, "order.paid", &sample.base, NULL), -1);
    assert_int_equal(sr_bus_publish(pub, "metric.room", &order.base, NULL), -1);
    assert_int_equal(sr_bus_publish(pub, "metric.room", NULL, NULL), -1);
    assert_int_equal(sr_bus_publish_packed(pub, "nope.nope", (const uint8_t *)"x", 1), -1);
    assert_int_equal(sr_bus_pub_seq(pub), 0);
    /* nobody is connected, so nothing matches: the message goes nowhere, which is not an error */
    assert_int_equal(sr_bus_publish(pub, "order.paid", &order.base, NULL), 0);
    assert_int_equal(sr_bus_pub_seq(pub), 1);
    assert_int_equal(sr_bus_pub_connected(pub), 0);
}

static void test_prefix_filtering(void **state)
{
    fixture_t *f = *state;
    s_forwarder_start(f, NULL);
    sr_bus_sub_t *sub = f->sub[0] = sr_bus_sub_new(f->zctx, f->fw.sub_endpoint, NULL);
    assert_non_null(sub);
    assert_int_equal(sr_bus_subscribe(sub, "order."), 0);
    sr_bus_pub_t *pub = f->pub = sr_bus_pub_new(f->zctx, f->fw.pub_endpoint, "p", "p-1", NULL);
    assert_non_null(pub);
    s_sync(pub, sub, f->arena, "order.paid");

    Sr__RoomSample sample = s_sample("r", 1);
    Sr__OrderEvent created = s_order("o-created");
    Sr__OrderEvent paid = s_order("o-paid");
    Sr__InteractionEvent like = SR__INTERACTION_EVENT__INIT;
    like.kind = SR__INTERACTION_KIND__INTERACTION_KIND_LIKE;
    assert_int_equal(sr_bus_publish(pub, "metric.room", &sample.base, NULL), 0);
    assert_int_equal(sr_bus_publish(pub, "order.created", &created.base, NULL), 0);
    assert_int_equal(sr_bus_publish(pub, "interaction.like", &like.base, NULL), 0);
    assert_int_equal(sr_bus_publish(pub, "order.paid", &paid.base, NULL), 0);

    static const struct {
        const char *topic;
        const char *order_id;
    } want[] = {{"order.created", "o-created"}, {"order.paid", "o-paid"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sr_bus_msg_t msg;
        assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_OK);
        assert_string_equal(msg.topic, want[i].topic);
        assert_ptr_equal(msg.payload->descriptor, &sr__order_event__descriptor);
        assert_string_equal(((const Sr__OrderEvent *)msg.payload)->order_id, want[i].order_id);
        assert_int_equal(((const Sr__OrderEvent *)msg.payload)->amount_fen, 1999);
        sr_arena_reset(f->arena);
    }
    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 200), SR_BUS_RECV_EMPTY);
}

/* one bad message as a broken or hostile peer would send it */
typedef struct {
    const char *name;
    const char *reason; /* the dropped_total label it must be counted under */
    int nframes;
    const char *topic; /* frame 1 (NULL: a long topic is made up) */
    int envelope;      /* frame 2: 0 none, 1 a valid envelope, 2 garbage, 3 bad payload */
    const char *extra; /* frame 3 when nframes is 3 */
} bad_case_t;

static const bad_case_t s_bad_cases[] = {
    {"garbage envelope", "garbage", 2, "metric.room", 2, NULL},
    {"payload does not decode", "garbage", 2, "metric.room", 3, NULL},
    {"one frame", "frames", 1, "metric.room", 0, NULL},
    {"three frames", "frames", 3, "metric.room", 1, "extra"},
    {"unknown topic", "unknown_topic", 2, "metric.nope", 1, NULL},
    {"topic too long", "unknown_topic", 2, NULL, 1, NULL},
};

static void test_bad_messages_counted_and_dropped(void **state)
{
    fixture_t *f = *state;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%u", sr_test_free_port());
    void *raw = f->raw = s_raw_socket(f->zctx, ZMQ_PUB);
    assert_int_equal(zmq_bind(raw, endpoint), 0);
    sr_bus_opts_t opts = {.metrics = f->metrics};
    sr_bus_sub_t *sub = f->sub[0] = sr_bus_sub_new(f->zctx, endpoint, &opts);
    assert_non_null(sub);
    assert_int_equal(sr_bus_subscribe(sub, "metric."), 0);
    s_raw_sync(raw, sub, f->arena);

    size_t good_len;
    uint8_t *good = s_pack_sample("after", 5, &good_len);
    static const uint8_t garbage[] = {0x0f, 0xff, 0xff, 0x00, 0x13};
    /* an Envelope whose payload is not a RoomSample: field 1 (enum) sent as a string */
    Sr__Envelope bad_payload = SR__ENVELOPE__INIT;
    bad_payload.schema_version = 1;
    bad_payload.payload.data = (uint8_t *)"\x0a\x03"
                                          "abc";
    bad_payload.payload.len = 5;
    uint8_t bad_env[64];
    size_t bad_env_len = sr__envelope__pack(&bad_payload, bad_env);
    Sr__Envelope *check = sr__envelope__unpack(NULL, bad_env_len, bad_env);
    assert_non_null(check);
    sr__envelope__free_unpacked(check, NULL);
    char long_topic[200];
    memset(long_topic, 'x', sizeof long_topic - 1);
    memcpy(long_topic, "metric.", 7);
    long_topic[sizeof long_topic - 1] = '\0';

    for (size_t i = 0; i < sizeof s_bad_cases / sizeof s_bad_cases[0]; i++) {
        const bad_case_t *c = &s_bad_cases[i];
        const char *reasons[] = {"garbage", "oversize", "unknown_topic", "hwm", "frames"};
        long long before[5];
        for (int r = 0; r < 5; r++)
            before[r] = s_dropped(f->metrics, reasons[r]);
        const char *topic = c->topic ? c->topic : long_topic;
        const void *frames[3] = {topic, NULL, c->extra};
        size_t lens[3] = {strlen(topic), 0, c->extra ? strlen(c->extra) : 0};
        if (c->envelope == 1) {
            frames[1] = good;
            lens[1] = good_len;
        } else if (c->envelope == 2) {
            frames[1] = garbage;
            lens[1] = sizeof garbage;
        } else if (c->envelope == 3) {
            frames[1] = bad_env;
            lens[1] = bad_env_len;
        }
        s_raw_send(raw, frames, lens, c->nframes);
        s_raw_send_envelope(raw, "metric.room", good, good_len);

        sr_bus_msg_t msg;
        print_message("case: %s\n", c->name);
        assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_DROPPED);
        assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_OK);
        assert_string_equal(msg.topic, "metric.room");
        assert_string_equal(((const Sr__RoomSample *)msg.payload)->room_id, "after");
        assert_int_equal(msg.envelope->seq, 5);
        sr_arena_reset(f->arena);
        for (int r = 0; r < 5; r++) {
            long long want = before[r] + (strcmp(reasons[r], c->reason) == 0 ? 1 : 0);
            assert_int_equal(s_dropped(f->metrics, reasons[r]), want);
        }
    }
    free(good);
}

/* over TCP libzmq's ZMQ_MAXMSGSIZE cuts such a peer off; inproc has no decoder, so our own
 * check is what stands between a huge frame and the unpacker */
static void test_oversize_envelope_dropped(void **state)
{
    fixture_t *f = *state;
    void *raw = f->raw = s_raw_socket(f->zctx, ZMQ_PUB);
    assert_int_equal(zmq_bind(raw, "inproc://test-oversize"), 0);
    sr_bus_opts_t opts = {.metrics = f->metrics, .max_msg_size = 1024};
    sr_bus_sub_t *sub = f->sub[0] = sr_bus_sub_new(f->zctx, "inproc://test-oversize", &opts);
    assert_non_null(sub);
    assert_int_equal(sr_bus_subscribe(sub, ""), 0);
    s_raw_sync(raw, sub, f->arena);

    long long before = s_dropped(f->metrics, "oversize");
    char big_room[2000];
    memset(big_room, 'r', sizeof big_room - 1);
    big_room[sizeof big_room - 1] = '\0';
    size_t len;
    uint8_t *big = s_pack_sample(big_room, 2, &len);
    assert_true(len > 1024);
    s_raw_send_envelope(raw, "metric.room", big, len);
    free(big);
    size_t good_len;
    uint8_t *good = s_pack_sample("small", 3, &good_len);
    s_raw_send_envelope(raw, "metric.room", good, good_len);
    free(good);

    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_DROPPED);
    assert_int_equal(s_dropped(f->metrics, "oversize"), before + 1);
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_OK);
    assert_string_equal(((const Sr__RoomSample *)msg.payload)->room_id, "small");
    sr_arena_reset(f->arena);
}

/* a subscriber that never reads: the publisher's queue fills and each send after that fails,
 * counted as an hwm drop (inproc, so kernel socket buffers do not hide the high-water mark) */
static void test_hwm_drop_counted(void **state)
{
    fixture_t *f = *state;
    void *raw = f->raw = s_raw_socket(f->zctx, ZMQ_SUB);
    int hwm = 5;
    assert_int_equal(zmq_setsockopt(raw, ZMQ_RCVHWM, &hwm, sizeof hwm), 0);
    assert_int_equal(zmq_setsockopt(raw, ZMQ_SUBSCRIBE, "", 0), 0);
    assert_int_equal(zmq_bind(raw, "inproc://test-hwm"), 0);
    sr_bus_opts_t opts = {.metrics = f->metrics, .hwm = 5};
    sr_bus_pub_t *pub = f->pub = sr_bus_pub_new(f->zctx, "inproc://test-hwm", "p", "p-1", &opts);
    assert_non_null(pub);

    /* wait until the subscription has reached the publisher */
    Sr__RoomSample sample = s_sample("hwm", 1);
    int timeout = 20;
    assert_int_equal(zmq_setsockopt(raw, ZMQ_RCVTIMEO, &timeout, sizeof timeout), 0);
    int64_t until = sr_clock_mono_ms() + SYNC_TIMEOUT_MS;
    int seen = 0;
    char buf[256];
    while (!seen && sr_clock_mono_ms() < until) {
        assert_int_equal(sr_bus_publish(pub, "metric.room", &sample.base, NULL), 0);
        seen = zmq_recv(raw, buf, sizeof buf, 0) >= 0;
    }
    assert_true(seen);
    while (zmq_recv(raw, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        ;

    long long sent_before = sr_test_metric(f->metrics, "sr_bus_sent_total");
    long long hwm_before = s_dropped(f->metrics, "hwm");
    int ok = 0, failed = 0;
    for (int i = 0; i < 200; i++) {
        if (sr_bus_publish(pub, "metric.room", &sample.base, NULL) == 0)
            ok++;
        else
            failed++;
    }
    assert_true(ok >= 5);
    assert_true(failed > 0);
    assert_int_equal(ok + failed, 200);
    assert_int_equal(s_dropped(f->metrics, "hwm"), hwm_before + failed);
    assert_int_equal(sr_test_metric(f->metrics, "sr_bus_sent_total"), sent_before + ok);

    /* draining the subscriber makes room again */
    int drained = 0;
    while (zmq_recv(raw, buf, sizeof buf, 0) >= 0)
        drained++;
    assert_int_equal(drained, 2 * ok);
    sr_test_sleep_ms(20); /* the publisher learns of the room through a command it reads later */
    assert_int_equal(sr_bus_publish(pub, "metric.room", &sample.base, NULL), 0);
}

static void test_curve(void **state)
{
    fixture_t *f = *state;
    char server_public[41], server_secret[41], other_public[41], other_secret[41];
    assert_int_equal(zmq_curve_keypair(server_public, server_secret), 0);
    assert_int_equal(zmq_curve_keypair(other_public, other_secret), 0);
    s_forwarder_start(f, server_secret);

    sr_bus_opts_t opts = {.curve_server_key = server_public};
    sr_bus_sub_t *sub = f->sub[0] = sr_bus_sub_new(f->zctx, f->fw.sub_endpoint, &opts);
    assert_non_null(sub);
    assert_int_equal(sr_bus_subscribe(sub, ""), 0);
    sr_bus_opts_t wrong_opts = {.curve_server_key = other_public};
    sr_bus_sub_t *wrong = f->sub[1] = sr_bus_sub_new(f->zctx, f->fw.sub_endpoint, &wrong_opts);
    assert_non_null(wrong);
    assert_int_equal(sr_bus_subscribe(wrong, ""), 0);
    /* a plain subscriber cannot talk to a CURVE server either */
    sr_bus_sub_t *plain = f->sub[2] = sr_bus_sub_new(f->zctx, f->fw.sub_endpoint, NULL);
    assert_non_null(plain);
    assert_int_equal(sr_bus_subscribe(plain, ""), 0);
    sr_bus_pub_t *pub = f->pub = sr_bus_pub_new(f->zctx, f->fw.pub_endpoint, "p", "p-1", &opts);
    assert_non_null(pub);

    s_sync(pub, sub, f->arena, "metric.room");
    Sr__RoomSample sample = s_sample("secret-room", 99);
    assert_int_equal(sr_bus_publish(pub, "metric.room", &sample.base, NULL), 0);
    sr_bus_msg_t msg;
    assert_int_equal(sr_bus_recv(sub, f->arena, &msg, 2000), SR_BUS_RECV_OK);
    assert_string_equal(((const Sr__RoomSample *)msg.payload)->room_id, "secret-room");
    sr_arena_reset(f->arena);
    assert_int_equal(sr_bus_pub_connected(pub), 1);
    assert_int_equal(sr_bus_sub_connected(sub), 1);

    for (int i = 0; i < 20; i++) {
        assert_int_equal(sr_bus_publish(pub, "metric.room", &sample.base, NULL), 0);
        sr_test_sleep_ms(10);
    }
    assert_int_equal(sr_bus_recv(wrong, f->arena, &msg, 300), SR_BUS_RECV_EMPTY);
    assert_int_equal(sr_bus_recv(plain, f->arena, &msg, 10), SR_BUS_RECV_EMPTY);
    assert_int_equal(sr_bus_sub_connected(wrong), 0);
}

static void test_curve_key_validation(void **state)
{
    fixture_t *f = *state;
    char path[] = "/tmp/test_sr_bus_log.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    sr_log_set_fd(fd);

    static const struct {
        const char *key;
        const char *problem;
    } cases[] = {
        {"", "not 40 characters long"},
        {"tooShortSecret", "not 40 characters long"},
        {"0123456789012345678901234567890123456789X", "not 40 characters long"},
        {"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~", "not Z85 text"},
    };
    void *socket = f->raw = s_raw_socket(f->zctx, ZMQ_SUB);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
        assert_int_equal(sr_bus_curve_server(socket, cases[i].key), -1);
        assert_int_equal(sr_bus_curve_client(socket, cases[i].key), -1);
        char *log = sr_test_read_file(path, NULL);
        assert_non_null(log);
        assert_non_null(strstr(log, "event=bus_curve_key_invalid key=server_secret"));
        assert_non_null(strstr(log, "event=bus_curve_key_invalid key=server_public"));
        assert_non_null(strstr(log, cases[i].problem));
        if (cases[i].key[0])
            assert_null(strstr(log, cases[i].key));
        free(log);
    }
    sr_bus_opts_t opts = {.curve_server_key = "short"};
    assert_null(sr_bus_sub_new(f->zctx, "tcp://127.0.0.1:1", &opts));
    assert_null(sr_bus_pub_new(f->zctx, "tcp://127.0.0.1:1", "p", "p-1", &opts));
    sr_log_set_fd(2);
    close(fd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_envelope_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_publish_subscribe_through_forwarder, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_publish_refuses_unknown_topic_and_wrong_type, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_prefix_filtering, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_messages_counted_and_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_oversize_envelope_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_hwm_drop_counted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_curve_key_validation, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
