/* test_sr_rpc - request/reply through a real ROUTER served by a thread running a poll loop, and
 * clients that misbehave: garbage frames, wrong frame counts, bodies of the wrong type, calls to
 * nobody, calls that outlive their deadline. Methods are over proto/metrics.proto messages.
 */
#include "sr_rpc.h"

#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_loop.h"
#include "sr_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define CALL_TIMEOUT_MS 2000

/* --- the service under test ---------------------------------------------------------------- */

static Sr__Status s_echo(sr_rpc_call_t *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply)
{
    const Sr__RoomSample *in = (const Sr__RoomSample *)request;
    Sr__RoomSample *out = sr_arena_alloc(call->arena, sizeof *out);
    *out = *in;
    out->room_id = sr_arena_printf(call->arena, "echo:%s", in->room_id);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

/* s_whoami - what the server saw of the caller, in an OrderEvent */
static Sr__Status s_whoami(sr_rpc_call_t *call, const ProtobufCMessage *request,
                           ProtobufCMessage **reply)
{
    (void)request;
    Sr__OrderEvent *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__order_event__init(out);
    out->order_id = sr_arena_strdup(call->arena, call->principal->user_name);
    out->sku_id = sr_arena_strdup(call->arena, call->trace_id);
    out->room_id = sr_arena_strdup(call->arena, call->method);
    out->quantity = (int64_t)call->principal->n_roles;
    out->amount_fen = call->principal->user_id;
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_fail(sr_rpc_call_t *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply)
{
    (void)reply;
    const Sr__RoomSample *in = (const Sr__RoomSample *)request;
    return sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "no_room", "room_id",
                       "room %s not found", in->room_id);
}

/* s_bare_fail - a failure without sr_rpc_fail(): the server fills in an error */
static Sr__Status s_bare_fail(sr_rpc_call_t *call, const ProtobufCMessage *request,
                              ProtobufCMessage **reply)
{
    (void)call;
    (void)request;
    (void)reply;
    return SR__STATUS__STATUS_UNAVAILABLE;
}

/* s_empty - OK without a reply message: an empty body */
static Sr__Status s_empty(sr_rpc_call_t *call, const ProtobufCMessage *request,
                          ProtobufCMessage **reply)
{
    (void)call;
    (void)request;
    (void)reply;
    return SR__STATUS__STATUS_OK;
}

/* s_sleep - sleeps online_viewers ms, then echoes */
static Sr__Status s_sleep(sr_rpc_call_t *call, const ProtobufCMessage *request,
                          ProtobufCMessage **reply)
{
    sr_test_sleep_ms((int)((const Sr__RoomSample *)request)->online_viewers);
    return s_echo(call, request, reply);
}

/* s_grow - a reply three times the size of the request */
static Sr__Status s_grow(sr_rpc_call_t *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply)
{
    const Sr__RoomSample *in = (const Sr__RoomSample *)request;
    Sr__RoomSample *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__room_sample__init(out);
    out->room_id = sr_arena_printf(call->arena, "%s%s%s", in->room_id, in->room_id, in->room_id);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static const sr_rpc_method_t s_methods[] = {
    {"test.echo", s_echo, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL},
    {"test.whoami", s_whoami, &sr__room_sample__descriptor, &sr__order_event__descriptor, NULL},
    {"test.fail", s_fail, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL},
    {"test.bare_fail", s_bare_fail, &sr__room_sample__descriptor, &sr__room_sample__descriptor,
     NULL},
    {"test.empty", s_empty, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL},
    {"test.grow", s_grow, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL},
    {"test.sleep", s_sleep, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL},
    {"test.secret", s_echo, &sr__room_sample__descriptor, &sr__room_sample__descriptor,
     "rooms.read"},
};

#define METHOD_COUNT (sizeof s_methods / sizeof s_methods[0])

/* s_authorize - admins hold every permission; state counts the questions asked */
static int s_authorize(const Sr__Principal *principal, const char *permission, void *state)
{
    atomic_fetch_add((atomic_int *)state, 1);
    if (strcmp(permission, "rooms.read") != 0)
        return 0;
    for (size_t i = 0; i < principal->n_roles; i++) {
        if (strcmp(principal->roles[i], "admin") == 0)
            return 1;
    }
    return 0;
}

/* --- fixture: a server thread ------------------------------------------------------------- */

typedef struct {
    void *zctx;
    sr_metrics_t *metrics;
    sr_arena_t *arena;
    char endpoint[64];
    sr_rpc_server_t *server;
    pthread_t thread;
    atomic_int stop;
    atomic_int authorize_calls;
    sr_rpc_client_t *client;
    sr_rpc_server_t *unserved; /* a server no thread serves; the test calls handle itself */
    int64_t server_max_msg;    /* for s_server_start; 0 = the default */
    void *dealer;              /* a raw DEALER, see s_raw_dealer() */
} fixture_t;

static void *s_serve(void *arg)
{
    fixture_t *f = arg;
    zmq_pollitem_t item = {.socket = sr_rpc_server_socket(f->server), .events = ZMQ_POLLIN};
    while (!atomic_load(&f->stop)) {
        if (zmq_poll(&item, 1, 20) > 0)
            sr_rpc_server_handle(f->server);
    }
    return NULL;
}

static void s_server_start(fixture_t *f, sr_rpc_authorize_fn *authorize)
{
    sr_rpc_opts_t opts = {.metrics = f->metrics, .max_msg_size = f->server_max_msg};
    /* a server closed a moment ago may still hold the port: libzmq closes it asynchronously */
    for (int i = 0; i < 100 && !f->server; i++) {
        f->server = sr_rpc_server_new(f->zctx, f->endpoint, s_methods, METHOD_COUNT,
                                      &f->authorize_calls, authorize, &opts);
        if (!f->server)
            sr_test_sleep_ms(20);
    }
    assert_non_null(f->server);
    atomic_store(&f->stop, 0);
    assert_int_equal(pthread_create(&f->thread, NULL, s_serve, f), 0);
}

static void s_server_stop(fixture_t *f)
{
    if (!f->server)
        return;
    atomic_store(&f->stop, 1);
    assert_int_equal(pthread_join(f->thread, NULL), 0);
    sr_rpc_server_destroy(&f->server);
    assert_null(f->server);
}

static int s_setup(void **state)
{
    fixture_t *f = sr_calloc(1, sizeof *f);
    f->zctx = zmq_ctx_new();
    f->metrics = sr_metrics_new();
    f->arena = sr_arena_new(4096);
    snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%u", sr_test_free_port());
    f->client = sr_rpc_client_new(f->zctx, f->endpoint, NULL);
    *state = f;
    return f->client ? 0 : -1;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    s_server_stop(f);
    sr_rpc_server_destroy(&f->unserved);
    if (f->dealer)
        zmq_close(f->dealer);
    sr_rpc_client_destroy(&f->client);
    sr_rpc_client_destroy(&f->client);
    sr_arena_destroy(&f->arena);
    sr_metrics_destroy(&f->metrics);
    zmq_ctx_term(f->zctx);
    free(f);
    return 0;
}

static int s_setup_served(void **state)
{
    if (s_setup(state) != 0)
        return -1;
    s_server_start(*state, s_authorize);
    return 0;
}

static Sr__RoomSample s_sample(const char *room, int64_t viewers)
{
    Sr__RoomSample s = SR__ROOM_SAMPLE__INIT;
    s.platform = SR__PLATFORM__PLATFORM_KUAISHOU;
    s.room_id = (char *)room;
    s.online_viewers = viewers;
    s.orders_paid = 12;
    s.gmv_fen = 250000;
    return s;
}

/* s_call - call method with a RoomSample for room */
static Sr__Status s_call(fixture_t *f, const char *method, const char *room, int64_t viewers,
                         const Sr__Principal *principal, int timeout_ms, ProtobufCMessage **reply,
                         Sr__Error **error)
{
    Sr__RoomSample req = s_sample(room, viewers);
    return sr_rpc_call(f->client, method, principal, "trace-7", &req.base,
                       &sr__room_sample__descriptor, timeout_ms, f->arena, reply, error);
}

/* s_call_until_up - call method (room "r") until a restarted server answers: the first request
 * after a restart may have gone down the old, dying connection */
static Sr__Status s_call_until_up(fixture_t *f, const char *method, const Sr__Principal *principal,
                                  ProtobufCMessage **reply, Sr__Error **error)
{
    int64_t until = sr_clock_mono_ms() + 5000;
    Sr__Status status;
    do {
        status = s_call(f, method, "r", 1, principal, 300, reply, error);
    } while (status == SR__STATUS__STATUS_DEADLINE && sr_clock_mono_ms() < until);
    return status;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    fixture_t *f = *state;
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;
    assert_int_equal(s_call(f, "test.echo", "r-1", 321, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    assert_null(error);
    assert_non_null(reply);
    assert_ptr_equal(reply->descriptor, &sr__room_sample__descriptor);
    const Sr__RoomSample *got = (const Sr__RoomSample *)reply;
    assert_string_equal(got->room_id, "echo:r-1");
    assert_int_equal(got->platform, SR__PLATFORM__PLATFORM_KUAISHOU);
    assert_int_equal(got->online_viewers, 321);
    assert_int_equal(got->orders_paid, 12);
    assert_int_equal(got->gmv_fen, 250000);
    sr_arena_reset(f->arena);

    /* principal, trace id and method reach the handler; a reply of another type comes back */
    char *roles[] = {"operator", "anchor"};
    Sr__Principal who = SR__PRINCIPAL__INIT;
    who.user_id = 4242;
    who.user_name = "xiaoming";
    who.n_roles = 2;
    who.roles = roles;
    Sr__RoomSample req = s_sample("r", 1);
    assert_int_equal(sr_rpc_call(f->client, "test.whoami", &who, "trace-xyz", &req.base,
                                 &sr__order_event__descriptor, CALL_TIMEOUT_MS, f->arena, &reply,
                                 &error),
                     SR__STATUS__STATUS_OK);
    const Sr__OrderEvent *me = (const Sr__OrderEvent *)reply;
    assert_string_equal(me->order_id, "xiaoming");
    assert_string_equal(me->sku_id, "trace-xyz");
    assert_string_equal(me->room_id, "test.whoami");
    assert_int_equal(me->quantity, 2);
    assert_int_equal(me->amount_fen, 4242);
    sr_arena_reset(f->arena);

    /* no principal sent: the handler sees an empty one, not NULL; no trace id: "" */
    assert_int_equal(sr_rpc_call(f->client, "test.whoami", NULL, NULL, NULL,
                                 &sr__order_event__descriptor, CALL_TIMEOUT_MS, f->arena, &reply,
                                 &error),
                     SR__STATUS__STATUS_OK);
    me = (const Sr__OrderEvent *)reply;
    assert_string_equal(me->order_id, "");
    assert_string_equal(me->sku_id, "");
    assert_int_equal(me->quantity, 0);
    sr_arena_reset(f->arena);

    /* OK without a reply message decodes as the reply type's defaults */
    assert_int_equal(s_call(f, "test.empty", "r", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    assert_non_null(reply);
    assert_string_equal(((const Sr__RoomSample *)reply)->room_id, "");
    sr_arena_reset(f->arena);

    assert_int_equal(
        sr_test_metric(f->metrics, "sr_rpc_requests_total{method=\"test.echo\",status=\"ok\"}"), 1);
    assert_int_equal(
        sr_test_metric(f->metrics, "sr_rpc_requests_total{method=\"test.whoami\",status=\"ok\"}"),
        2);
    assert_int_equal(
        sr_test_metric(f->metrics, "sr_rpc_request_seconds_count{method=\"test.whoami\"}"), 2);
}

/* each row: a call that must fail, and the exact error it must carry */
typedef struct {
    const char *method;
    Sr__Status status;
    const char *code;
    const char *message;
    const char *field;
    const char *metric; /* the requests_total series counted */
} error_case_t;

static const error_case_t s_error_cases[] = {
    {"test.nope", SR__STATUS__STATUS_UNKNOWN_METHOD, "unknown_method", "unknown method test.nope",
     "", "sr_rpc_requests_total{method=\"unknown\",status=\"unknown_method\"}"},
    {"test.fail", SR__STATUS__STATUS_NOT_FOUND, "no_room", "room r-9 not found", "room_id",
     "sr_rpc_requests_total{method=\"test.fail\",status=\"not_found\"}"},
    {"test.bare_fail", SR__STATUS__STATUS_UNAVAILABLE, "unavailable", "test.bare_fail failed", "",
     "sr_rpc_requests_total{method=\"test.bare_fail\",status=\"unavailable\"}"},
    {"test.secret", SR__STATUS__STATUS_FORBIDDEN, "forbidden",
     "test.secret needs permission rooms.read", "",
     "sr_rpc_requests_total{method=\"test.secret\",status=\"forbidden\"}"},
};

static void test_error_replies(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof s_error_cases / sizeof s_error_cases[0]; i++) {
        const error_case_t *c = &s_error_cases[i];
        ProtobufCMessage *reply = NULL;
        Sr__Error *error = NULL;
        print_message("case: %s\n", c->method);
        assert_int_equal(s_call(f, c->method, "r-9", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                         c->status);
        assert_null(reply);
        assert_non_null(error);
        assert_string_equal(error->code, c->code);
        assert_string_equal(error->message, c->message);
        assert_string_equal(error->field, c->field);
        assert_int_equal(sr_test_metric(f->metrics, c->metric), 1);
        sr_arena_reset(f->arena);
    }
}

static void test_permission(void **state)
{
    fixture_t *f = *state;
    char *viewer_roles[] = {"viewer"};
    char *admin_roles[] = {"viewer", "admin"};
    Sr__Principal viewer = SR__PRINCIPAL__INIT;
    viewer.n_roles = 1;
    viewer.roles = viewer_roles;
    Sr__Principal admin = SR__PRINCIPAL__INIT;
    admin.n_roles = 2;
    admin.roles = admin_roles;
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;

    assert_int_equal(s_call(f, "test.secret", "r", 1, &viewer, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_FORBIDDEN);
    assert_string_equal(error->code, "forbidden");
    assert_int_equal(s_call(f, "test.secret", "r", 1, &admin, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    assert_string_equal(((const Sr__RoomSample *)reply)->room_id, "echo:r");
    /* methods without a permission never ask */
    assert_int_equal(s_call(f, "test.echo", "r", 1, &viewer, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    assert_int_equal(atomic_load(&f->authorize_calls), 2);
    sr_arena_reset(f->arena);

    /* a server without an authorize function refuses every method that names a permission */
    s_server_stop(f);
    s_server_start(f, NULL);
    assert_int_equal(s_call_until_up(f, "test.secret", &admin, &reply, &error),
                     SR__STATUS__STATUS_FORBIDDEN);
    assert_string_equal(error->message, "test.secret needs permission rooms.read");
    assert_int_equal(s_call(f, "test.echo", "r", 1, &admin, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    sr_arena_reset(f->arena);
}

/* a body of another message type (an Error: field 1 is a string where RoomSample has an enum)
 * does not decode as the method's request type */
static void test_bad_body(void **state)
{
    fixture_t *f = *state;
    Sr__Error wrong = SR__ERROR__INIT;
    wrong.code = "not a room sample";
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;
    assert_int_equal(sr_rpc_call(f->client, "test.echo", NULL, NULL, &wrong.base,
                                 &sr__room_sample__descriptor, CALL_TIMEOUT_MS, f->arena, &reply,
                                 &error),
                     SR__STATUS__STATUS_BAD_REQUEST);
    assert_null(reply);
    assert_string_equal(error->code, "bad_body");
    assert_string_equal(error->message, "body does not decode as sr.RoomSample");
    sr_arena_reset(f->arena);
    assert_int_equal(
        sr_test_metric(f->metrics,
                       "sr_rpc_requests_total{method=\"test.echo\",status=\"bad_request\"}"),
        1);
}

/* s_raw_recv - one reply frame on a raw DEALER within timeout_ms, decoded; NULL when none */
static Sr__Reply *s_raw_recv(void *dealer, int timeout_ms)
{
    zmq_pollitem_t item = {.socket = dealer, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    uint8_t buf[4096];
    int n = zmq_recv(dealer, buf, sizeof buf, 0);
    assert_true(n > 0 && n < (int)sizeof buf);
    Sr__Reply *r = sr__reply__unpack(NULL, (size_t)n, buf);
    assert_non_null(r);
    return r;
}

/* s_raw_dealer - a plain DEALER connected to the server, closed by teardown */
static void *s_raw_dealer(fixture_t *f)
{
    f->dealer = zmq_socket(f->zctx, ZMQ_DEALER);
    assert_non_null(f->dealer);
    int linger = 0;
    assert_int_equal(zmq_setsockopt(f->dealer, ZMQ_LINGER, &linger, sizeof linger), 0);
    assert_int_equal(zmq_connect(f->dealer, f->endpoint), 0);
    return f->dealer;
}

static void test_garbage_from_raw_dealer(void **state)
{
    fixture_t *f = *state;
    void *dealer = s_raw_dealer(f);

    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0x01, 0x0f};
    assert_int_equal(zmq_send(dealer, garbage, sizeof garbage, 0), (int)sizeof garbage);
    Sr__Reply *r = s_raw_recv(dealer, CALL_TIMEOUT_MS);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->status, SR__STATUS__STATUS_BAD_REQUEST);
    assert_non_null(r->error);
    assert_string_equal(r->error->code, "bad_request");
    assert_string_equal(r->error->message, "request does not decode");
    assert_int_equal(r->body.len, 0);
    sr__reply__free_unpacked(r, NULL);
    assert_int_equal(
        sr_test_metric(f->metrics,
                       "sr_rpc_requests_total{method=\"unknown\",status=\"bad_request\"}"),
        1);

    /* two frames from a DEALER ([identity][a][b] at the ROUTER): counted, dropped, no reply */
    assert_int_equal(zmq_send(dealer, "a", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(dealer, "b", 1, 0), 1);
    assert_null(s_raw_recv(dealer, 300));
    assert_int_equal(sr_test_metric(f->metrics, "sr_rpc_dropped_total{reason=\"frames\"}"), 1);

    /* a request that decodes, from the raw socket, still gets its id back */
    Sr__Request req = SR__REQUEST__INIT;
    req.id = 77;
    req.method = "test.empty";
    uint8_t buf[64];
    size_t len = sr__request__pack(&req, buf);
    assert_int_equal(zmq_send(dealer, buf, len, 0), (int)len);
    r = s_raw_recv(dealer, CALL_TIMEOUT_MS);
    assert_non_null(r);
    assert_int_equal(r->id, 77);
    assert_int_equal(r->status, SR__STATUS__STATUS_OK);
    sr__reply__free_unpacked(r, NULL);

    /* and the server keeps serving everyone else */
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;
    assert_int_equal(s_call(f, "test.echo", "still", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    assert_string_equal(((const Sr__RoomSample *)reply)->room_id, "echo:still");
    sr_arena_reset(f->arena);
}

/* s_expect_deadline - a call that must end in STATUS_DEADLINE after about timeout_ms */
static void s_expect_deadline(fixture_t *f, int timeout_ms)
{
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;
    int64_t start = sr_clock_mono_ms();
    assert_int_equal(s_call(f, "test.echo", "r", 1, NULL, timeout_ms, &reply, &error),
                     SR__STATUS__STATUS_DEADLINE);
    int64_t took = sr_clock_mono_ms() - start;
    assert_true(took >= timeout_ms - 5);
    assert_true(took < 2 * timeout_ms);
    assert_null(reply);
    assert_string_equal(error->code, "deadline");
    char want[128];
    snprintf(want, sizeof want, "no reply from %s within %d ms", f->endpoint, timeout_ms);
    assert_string_equal(error->message, want);
    sr_arena_reset(f->arena);
}

static void test_no_server_deadline(void **state)
{
    fixture_t *f = *state;
    s_expect_deadline(f, 300);
    s_expect_deadline(f, 100);
}

static void test_server_stopped_midway(void **state)
{
    fixture_t *f = *state;
    s_server_start(f, s_authorize);
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;
    assert_int_equal(s_call(f, "test.echo", "before", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    sr_arena_reset(f->arena);
    s_server_stop(f);
    s_expect_deadline(f, 300);
    s_expect_deadline(f, 300);

    /* a server back on the same endpoint is found again */
    s_server_start(f, s_authorize);
    assert_int_equal(s_call_until_up(f, "test.echo", NULL, &reply, &error), SR__STATUS__STATUS_OK);
    assert_string_equal(((const Sr__RoomSample *)reply)->room_id, "echo:r");
    sr_arena_reset(f->arena);
}

/* the first call gives up before the slow handler answers; its reply arrives while the second
 * call waits, and must not be taken for the second call's answer */
static void test_late_reply_discarded(void **state)
{
    fixture_t *f = *state;
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;
    /* connected first, so the slow request reaches the server well within its deadline */
    assert_int_equal(s_call(f, "test.echo", "warm", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    sr_arena_reset(f->arena);
    assert_int_equal(s_call(f, "test.sleep", "slow", 400, NULL, 100, &reply, &error),
                     SR__STATUS__STATUS_DEADLINE);
    sr_arena_reset(f->arena);
    assert_int_equal(s_call(f, "test.echo", "second", 2, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    const Sr__RoomSample *got = (const Sr__RoomSample *)reply;
    assert_string_equal(got->room_id, "echo:second");
    assert_int_equal(got->online_viewers, 2);
    sr_arena_reset(f->arena);
    /* the slow one was answered (its handler ran) but only the second reached a caller */
    assert_int_equal(
        sr_test_metric(f->metrics, "sr_rpc_requests_total{method=\"test.sleep\",status=\"ok\"}"),
        1);
    assert_int_equal(sr_test_metric(f->metrics, "sr_rpc_dropped_total{reason=\"late\"}"), 0);
}

/* a request still queued when its deadline passes is dropped unanswered (same thread: the
 * server handles only when told) */
static void test_past_deadline_dropped(void **state)
{
    fixture_t *f = *state;
    sr_rpc_opts_t opts = {.metrics = f->metrics};
    f->unserved =
        sr_rpc_server_new(f->zctx, f->endpoint, s_methods, METHOD_COUNT, NULL, NULL, &opts);
    assert_non_null(f->unserved);
    /* a client connecting to a bound server gets its request out at once */
    sr_rpc_client_destroy(&f->client);
    f->client = sr_rpc_client_new(f->zctx, f->endpoint, NULL);
    assert_non_null(f->client);
    s_expect_deadline(f, 200);
    /* as the loop would: poll, then handle */
    zmq_pollitem_t item = {.socket = sr_rpc_server_socket(f->unserved), .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, CALL_TIMEOUT_MS), 1);
    sr_rpc_server_handle(f->unserved);
    assert_int_equal(sr_test_metric(f->metrics, "sr_rpc_dropped_total{reason=\"late\"}"), 1);
    assert_int_equal(
        sr_test_metric(f->metrics, "sr_rpc_requests_total{method=\"test.echo\",status=\"ok\"}"),
        -1);
}

/* over TCP libzmq's ZMQ_MAXMSGSIZE cuts an oversize peer off; over inproc the size caps of
 * client and server are what answer */
static void test_oversize_over_inproc(void **state)
{
    fixture_t *f = *state;
    snprintf(f->endpoint, sizeof f->endpoint, "inproc://test-rpc-oversize");
    s_server_start(f, NULL);
    sr_rpc_opts_t small = {.max_msg_size = 1024};
    sr_rpc_client_destroy(&f->client);
    f->client = sr_rpc_client_new(f->zctx, f->endpoint, &small);
    assert_non_null(f->client);
    char big[1500];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ProtobufCMessage *reply = NULL;
    Sr__Error *error = NULL;

    /* a reply larger than the client accepts */
    assert_int_equal(s_call(f, "test.grow", big + 1000, 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_INTERNAL);
    assert_null(reply);
    assert_string_equal(error->code, "bad_reply");
    assert_non_null(strstr(error->message, " bytes, over 1024"));
    sr_arena_reset(f->arena);

    /* a request larger than the client may send never leaves */
    assert_int_equal(s_call(f, "test.echo", big, 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_BAD_REQUEST);
    assert_string_equal(error->code, "too_large");
    assert_non_null(strstr(error->message, " bytes is over 1024"));
    sr_arena_reset(f->arena);
    assert_int_equal(
        sr_test_metric(f->metrics,
                       "sr_rpc_requests_total{method=\"test.echo\",status=\"bad_request\"}"),
        -1);

    /* a server with a small cap refuses it itself: id 0, it did not read the request */
    s_server_stop(f);
    f->server_max_msg = 1024;
    s_server_start(f, NULL);
    void *dealer = s_raw_dealer(f);
    Sr__RoomSample sample = s_sample(big, 1);
    Sr__Request req = SR__REQUEST__INIT;
    req.id = 5;
    req.method = "test.echo";
    req.body.len = sr__room_sample__get_packed_size(&sample);
    req.body.data = sr_arena_alloc(f->arena, req.body.len);
    sr__room_sample__pack(&sample, req.body.data);
    size_t len = sr__request__get_packed_size(&req);
    uint8_t *buf = sr_arena_alloc(f->arena, len);
    assert_int_equal(sr__request__pack(&req, buf), len);
    assert_int_equal(zmq_send(dealer, buf, len, 0), (int)len);
    Sr__Reply *r = s_raw_recv(dealer, CALL_TIMEOUT_MS);
    assert_non_null(r);
    assert_int_equal(r->id, 0);
    assert_int_equal(r->status, SR__STATUS__STATUS_BAD_REQUEST);
    char want[96];
    snprintf(want, sizeof want, "request of %zu bytes is over 1024", len);
    assert_string_equal(r->error->message, want);
    sr__reply__free_unpacked(r, NULL);
    sr_arena_reset(f->arena);
}

static void test_bind_failure(void **state)
{
    fixture_t *f = *state;
    sr_rpc_server_t *first =
        sr_rpc_server_new(f->zctx, f->endpoint, s_methods, METHOD_COUNT, NULL, NULL, NULL);
    assert_non_null(first);
    assert_null(sr_rpc_server_new(f->zctx, f->endpoint, s_methods, METHOD_COUNT, NULL, NULL, NULL));
    assert_null(
        sr_rpc_server_new(f->zctx, "nonsense://x", s_methods, METHOD_COUNT, NULL, NULL, NULL));
    sr_rpc_server_destroy(&first);
    sr_rpc_server_destroy(&first);
}

/* --- workers --------------------------------------------------------------------------------- */

typedef struct {
    int index; /* -1: the loop thread's state */
} place_t;

static place_t s_loop_place = {-1};

static void *s_place_init(void *state, int index)
{
    assert_ptr_equal(state, &s_loop_place);
    place_t *p = sr_calloc(1, sizeof *p);
    p->index = index;
    return p;
}

static void s_place_fini(void *state)
{
    free(state);
}

/* s_where - which thread's state answered: "worker:N" or "loop" */
static Sr__Status s_where(sr_rpc_call_t *call, const ProtobufCMessage *request,
                          ProtobufCMessage **reply)
{
    (void)request;
    const place_t *p = call->state;
    Sr__RoomSample *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__room_sample__init(out);
    out->room_id = p->index < 0 ? "loop" : sr_arena_printf(call->arena, "worker:%d", p->index);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static int s_deny(const Sr__Principal *principal, const char *permission, void *state)
{
    (void)principal, (void)permission, (void)state;
    return 0;
}

static const sr_rpc_method_t s_worker_methods[] = {
    {"test.read", s_where, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL,
     SR_RPC_READ},
    {"test.write", s_where, &sr__room_sample__descriptor, &sr__room_sample__descriptor, NULL},
    {"test.secret_read", s_where, &sr__room_sample__descriptor, &sr__room_sample__descriptor,
     "rooms.read", SR_RPC_READ},
};

typedef struct {
    sr_loop_t *loop;
    atomic_int stop;
} loop_thread_t;

static void *s_run_loop(void *arg)
{
    loop_thread_t *lt = arg;
    while (!atomic_load(&lt->stop))
        sr_loop_run_once(lt->loop, 20);
    return NULL;
}

/* reads are answered on the workers (each its own state, both used), the rest on the loop
 * thread; checks and errors are the same there, and the loop counts the workers' replies */
static void test_workers(void **state)
{
    fixture_t *f = *state;
    sr_rpc_opts_t opts = {.metrics = f->metrics,
                          .workers = 2,
                          .worker_init = s_place_init,
                          .worker_fini = s_place_fini};
    sr_rpc_server_t *server = sr_rpc_server_new(
        f->zctx, f->endpoint, s_worker_methods,
        sizeof s_worker_methods / sizeof s_worker_methods[0], &s_loop_place, s_deny, &opts);
    assert_non_null(server);
    loop_thread_t lt = {.loop = sr_loop_new()};
    assert_int_equal(sr_rpc_server_attach(server, lt.loop), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_run_loop, &lt), 0);
    ProtobufCMessage *reply;
    Sr__Error *error;
    int seen[2] = {0, 0};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(s_call(f, "test.read", "r", i, NULL, CALL_TIMEOUT_MS, &reply, &error),
                         SR__STATUS__STATUS_OK);
        const char *where = ((Sr__RoomSample *)reply)->room_id;
        assert_int_equal(strncmp(where, "worker:", 7), 0);
        seen[atoi(where + 7) == 1]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0);
    assert_int_equal(s_call(f, "test.write", "r", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_OK);
    assert_string_equal(((Sr__RoomSample *)reply)->room_id, "loop");
    assert_int_equal(s_call(f, "test.secret_read", "r", 1, NULL, CALL_TIMEOUT_MS, &reply, &error),
                     SR__STATUS__STATUS_FORBIDDEN);
    assert_string_equal(error->code, "forbidden");
    char *metrics = sr_metrics_render(f->metrics);
    assert_non_null(
        strstr(metrics, "sr_rpc_requests_total{method=\"test.read\",status=\"ok\"} 20"));
    assert_non_null(strstr(
        metrics, "sr_rpc_requests_total{method=\"test.secret_read\",status=\"forbidden\"} 1"));
    free(metrics);
    atomic_store(&lt.stop, 1);
    assert_int_equal(pthread_join(thread, NULL), 0);
    sr_rpc_server_destroy(&server);
    assert_null(server);
    sr_loop_destroy(&lt.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, s_setup_served, s_teardown),
        cmocka_unit_test_setup_teardown(test_error_replies, s_setup_served, s_teardown),
        cmocka_unit_test_setup_teardown(test_permission, s_setup_served, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_body, s_setup_served, s_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_from_raw_dealer, s_setup_served, s_teardown),
        cmocka_unit_test_setup_teardown(test_no_server_deadline, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_server_stopped_midway, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_late_reply_discarded, s_setup_served, s_teardown),
        cmocka_unit_test_setup_teardown(test_past_deadline_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_oversize_over_inproc, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_workers, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
