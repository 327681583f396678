/* test_gatewayd_stream - GET /api/v1/stream against a real sr-gatewayd, sr-busd and PostgreSQL,
 * read from a plain socket as a browser would: a published event arrives; a stream sees only
 * its topics and its regions; Last-Event-ID replays what came while the browser was away and
 * nothing twice; idle streams get heartbeats; bad topics and missing tokens are refused; a
 * revoked token ends its stream; a
 * browser that stops reading is dropped and counted while the gateway goes on serving. Needs
 * the SR_TEST_* environment (tests/run.sh). */
#include "rooms.pb-c.h"
#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_test_api.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

typedef struct {
    sr_test_busd_t bus;
    sr_test_gateway_t gw;
    char *admin, *east_op;
    sr_db_t *db;
    void *zctx;
} fixture_t;

static fixture_t s_fx;

/* a browser's end of one stream: everything read so far */
typedef struct {
    int fd;
    char *text;
    size_t len, cap;
} sse_t;

static int64_t s_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* s_read_some - whatever arrives within timeout_ms; 0 on end of stream */
static ssize_t s_read_some(sse_t *s, int timeout_ms)
{
    struct pollfd p = {s->fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    if (s->len + 4097 > s->cap) {
        s->cap = (s->len + 4097) * 2;
        s->text = sr_realloc(s->text, s->cap);
    }
    ssize_t n = read(s->fd, s->text + s->len, 4096);
    if (n > 0) {
        s->len += (size_t)n;
        s->text[s->len] = '\0';
    }
    return n;
}

/* s_wait - until needle is in what was read, or timeout_ms; 1 when it came */
static int s_wait(sse_t *s, const char *needle, int timeout_ms)
{
    int64_t end = s_now_ms() + timeout_ms;
    while (!(s->text && strstr(s->text, needle))) {
        int64_t left = end - s_now_ms();
        if (left <= 0 || s_read_some(s, (int)left) == 0)
            return 0;
    }
    return 1;
}

/* s_open - GET /api/v1/stream?query as HTTP/1.0 (no chunking); the status line's code */
static int s_open(sse_t *s, const char *query, const char *token, const char *last_id, int rcvbuf)
{
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    if (rcvbuf)
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(s_fx.gw.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    char *req =
        sr_asprintf("GET /api/v1/stream%s%s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                    "%s%s%s%s%s%s\r\n",
                    query ? "?" : "", query ? query : "", token ? "Authorization: Bearer " : "",
                    token ? token : "", token ? "\r\n" : "", last_id ? "Last-Event-ID: " : "",
                    last_id ? last_id : "", last_id ? "\r\n" : "");
    assert_int_equal(write(s->fd, req, strlen(req)), (ssize_t)strlen(req));
    free(req);
    if (!s_wait(s, "\r\n\r\n", 5000))
        fail_msg("no answer to the stream request: %s", s->text ? s->text : "");
    return atoi(s->text + strlen("HTTP/1.0 "));
}

static void s_close(sse_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->text);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

static int s_setup(void **state)
{
    (void)state;
    s_fx.db = sr_test_db("test_gatewayd_stream");
    sr_test_db_reset_schema(s_fx.db, "access");
    sr_test_busd_start(&s_fx.bus);
    assert_int_equal(sr_test_bootstrap_admin(), 0);
    char *extra[] = {"SR_GATEWAY_SSE_HEARTBEAT=300ms", "SR_GATEWAY_SSE_QUEUE=64k",
                     "SR_GATEWAY_RATE=0", NULL};
    sr_test_gateway_start(&s_fx.gw, &s_fx.bus, NULL, extra);
    s_fx.admin = sr_test_login(&s_fx.gw, SR_TEST_ADMIN, SR_TEST_ADMIN_PASSWORD);
    json_decref(sr_test_api_json(&s_fx.gw, "POST", "/regions", s_fx.admin,
                                 "{\"code\":\"east\",\"name\":\"华东\"}", 201));
    json_decref(sr_test_api_json(&s_fx.gw, "POST", "/users", s_fx.admin,
                                 "{\"name\":\"east-op\",\"password\":\"east-op-password\","
                                 "\"roles\":[\"operator\"],\"regions\":[\"east\"]}",
                                 201));
    s_fx.east_op = sr_test_login(&s_fx.gw, "east-op", "east-op-password");
    s_fx.zctx = zmq_ctx_new();
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    sr_test_reap_all();
    free(s_fx.admin);
    free(s_fx.east_op);
    sr_db_destroy(&s_fx.db);
    zmq_ctx_term(s_fx.zctx);
    return 0;
}

/* s_last_id - the id of the last event in the text ("access:7"), into out */
static void s_last_id(const sse_t *s, char *out, size_t size)
{
    const char *p = s->text, *last = NULL;
    while ((p = strstr(p, "\nid: ")))
        last = ++p;
    assert_non_null(last);
    snprintf(out, size, "%.*s", (int)strcspn(last + 4, "\n"), last + 4);
}

static void test_delivery_and_regions(void **state)
{
    (void)state;
    sse_t admin, op;
    assert_int_equal(s_open(&admin, "topics=region.,user.", s_fx.admin, NULL, 0), 200);
    assert_int_equal(s_open(&op, "topics=region.", s_fx.east_op, NULL, 0), 200);
    assert_non_null(strstr(admin.text, "Content-Type: text/event-stream"));
    sr_test_sleep_ms(200);
    json_decref(sr_test_api_json(&s_fx.gw, "POST", "/regions", s_fx.admin,
                                 "{\"code\":\"north\",\"name\":\"华北\"}", 201));
    assert_true(s_wait(&admin, "\"code\":\"north\"", 5000));
    assert_non_null(strstr(admin.text, "event: region.created\ndata: {"));
    /* the east operator sees an east change, not the north one */
    json_t *east = sr_test_api_json(&s_fx.gw, "GET", "/regions/1", s_fx.admin, NULL, 200);
    char *body = sr_asprintf("{\"version\":\"%lld\",\"name\":\"华东大区\"}",
                             sr_test_json_int(east, "version"));
    json_decref(sr_test_api_json(&s_fx.gw, "PATCH", "/regions/1", s_fx.admin, body, 200));
    assert_true(s_wait(&op, "华东大区", 5000));
    assert_null(strstr(op.text, "north"));
    assert_non_null(strstr(op.text, "event: region.updated"));
    /* and no user events: it asked for region. only */
    json_decref(sr_test_api_json(&s_fx.gw, "POST", "/users", s_fx.admin,
                                 "{\"name\":\"east-viewer\",\"password\":\"east-viewer-pw\","
                                 "\"roles\":[\"viewer\"],\"regions\":[\"east\"]}",
                                 201));
    assert_true(s_wait(&admin, "east-viewer", 5000));
    assert_null(strstr(op.text, "east-viewer"));
    json_decref(east);
    free(body);
    s_close(&admin);
    s_close(&op);
}

static void test_resume(void **state)
{
    (void)state;
    sse_t s;
    assert_int_equal(s_open(&s, "topics=region.,user.", s_fx.admin, "access:0", 0), 200);
    assert_true(s_wait(&s, "east-viewer", 5000)); /* everything from the start */
    char last[64];
    s_last_id(&s, last, sizeof last);
    s_close(&s);
    json_decref(sr_test_api_json(&s_fx.gw, "POST", "/regions", s_fx.admin,
                                 "{\"code\":\"west\",\"name\":\"华西\"}", 201));
    assert_int_equal(s_open(&s, "topics=region.,user.", s_fx.admin, last, 0), 200);
    assert_true(s_wait(&s, "\"code\":\"west\"", 5000));
    char *again = sr_asprintf("id: %s\n", last);
    assert_null(strstr(s.text, again)); /* the last one seen is not sent twice */
    assert_null(strstr(s.text, "\"code\":\"north\""));
    free(again);
    assert_true(sr_test_admin_metric(s_fx.gw.admin, "sr_gateway_sse_resumed_total") >= 1);
    s_close(&s);
}

static void test_heartbeat_and_refusals(void **state)
{
    (void)state;
    sse_t s;
    assert_int_equal(s_open(&s, "topics=metric.room", s_fx.east_op, NULL, 0), 200);
    assert_true(s_wait(&s, ": ping\n\n", 3000));
    s_close(&s);
    assert_int_equal(s_open(&s, "topics=BAD!", s_fx.admin, NULL, 0), 400);
    assert_non_null(strstr(s.text, "\"field\":\"topics\""));
    s_close(&s);
    assert_int_equal(s_open(&s, "topics=region.", NULL, NULL, 0), 401);
    s_close(&s);
    assert_int_equal(s_open(&s, NULL, s_fx.admin, "garbage", 0), 400);
    assert_non_null(strstr(s.text, "Last-Event-ID"));
    s_close(&s);
}

/* a stream ends when its token is revoked (the browser must log in again) */
static void test_revoked_token_ends_stream(void **state)
{
    (void)state;
    char *token = sr_test_login(&s_fx.gw, "east-op", "east-op-password");
    sse_t s;
    assert_int_equal(s_open(&s, "topics=region.", token, NULL, 0), 200);
    assert_true(s_wait(&s, ": connected", 3000));
    json_decref(sr_test_api_json(&s_fx.gw, "POST", "/auth/logout", token, NULL, 200));
    int64_t end = s_now_ms() + 3000;
    ssize_t n = 1;
    while (n != 0 && s_now_ms() < end)
        n = s_read_some(&s, 200);
    assert_int_equal(n, 0); /* the gateway closed it */
    s_close(&s);
    free(token);
}

/* a browser that stops reading: dropped once it is SR_GATEWAY_SSE_QUEUE behind, counted */
static void test_slow_browser(void **state)
{
    (void)state;
    sse_t slow;
    assert_int_equal(s_open(&slow, "topics=room.", s_fx.admin, NULL, 4096), 200);
    sr_bus_opts_t opts = {0};
    sr_bus_pub_t *pub = sr_bus_pub_new(s_fx.zctx, s_fx.bus.front_ep, "test-rooms", "test", &opts);
    assert_non_null(pub);
    sr_test_sleep_ms(500); /* the slow joiner */
    char *name = sr_malloc(2049);
    memset(name, 'x', 2048);
    name[2048] = '\0';
    Sr__Room room = SR__ROOM__INIT;
    room.platform = "douyin";
    room.room_id = "slow-room";
    room.region = "east";
    room.name = name;
    long long dropped = 0;
    for (int i = 0; i < 20000 && dropped == 0; i++) {
        assert_int_equal(sr_bus_publish(pub, "room.registered", &room.base, NULL), 0);
        if (i % 500 == 499) {
            sr_test_sleep_ms(50);
            dropped = sr_test_admin_metric(s_fx.gw.admin, "sr_gateway_sse_dropped_total");
        }
    }
    for (int i = 0; i < 50 && dropped == 0; i++) {
        sr_test_sleep_ms(100);
        dropped = sr_test_admin_metric(s_fx.gw.admin, "sr_gateway_sse_dropped_total");
    }
    assert_int_equal(dropped, 1);
    json_decref(sr_test_api_json(&s_fx.gw, "GET", "/me", s_fx.admin, NULL, 200));
    free(name);
    sr_bus_pub_destroy(&pub);
    s_close(&slow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delivery_and_regions),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_heartbeat_and_refusals),
        cmocka_unit_test(test_revoked_token_ends_stream),
        cmocka_unit_test(test_slow_browser),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
