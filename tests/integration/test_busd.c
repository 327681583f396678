/* test_busd - sr-busd as a real process: forwarding between processes, counters on /metrics,
 * CURVE, configuration errors, clean shutdown. Needs SR_TEST_BIN (tests/run.sh sets it). */
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_arena.h"
#include "sr_bus.h"
#include "sr_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

static Sr__OrderEvent s_order(char *id)
{
    Sr__OrderEvent o = SR__ORDER_EVENT__INIT;
    o.platform = SR__PLATFORM__PLATFORM_DOUYIN;
    o.room_id = "room-1";
    o.order_id = id;
    o.status = SR__ORDER_STATUS__ORDER_STATUS_PAID;
    o.quantity = 1;
    o.amount_fen = 9900;
    return o;
}

/* s_publish_child - a separate process that publishes n orders and 5 room samples */
static pid_t s_publish_child(const char *endpoint, int n, const char *server_key)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    void *ctx = zmq_ctx_new();
    sr_bus_opts_t opts = {.curve_server_key = server_key};
    sr_bus_pub_t *pub = sr_bus_pub_new(ctx, endpoint, "test-publisher", "test-publisher-1", &opts);
    if (!pub)
        _exit(3);
    sr_test_sleep_ms(500); /* let the subscription reach the publisher (slow joiner) */
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "o-%d", i);
        Sr__OrderEvent o = s_order(id);
        if (sr_bus_publish(pub, "order.paid", &o.base, "trace-1") < 0)
            _exit(4);
        if (i < 5) {
            Sr__RoomSample s = SR__ROOM_SAMPLE__INIT;
            s.room_id = "room-1";
            if (sr_bus_publish(pub, "metric.room", &s.base, NULL) < 0)
                _exit(4);
        }
    }
    sr_bus_pub_destroy(&pub);
    zmq_ctx_term(ctx);
    _exit(0);
}

/* s_receive_orders - count orders arriving on sub within timeout; checks order and seq */
static int s_receive_orders(sr_bus_sub_t *sub, int want, int timeout_ms)
{
    sr_arena_t *arena = sr_arena_new(4096);
    int got = 0;
    uint64_t last_seq = 0;
    for (int waited = 0; got < want && waited < timeout_ms; waited += 100) {
        sr_bus_msg_t msg;
        while (sr_bus_recv(sub, arena, &msg, 100) == SR_BUS_RECV_OK) {
            assert_string_equal(msg.topic, "order.paid");
            Sr__OrderEvent *o = (Sr__OrderEvent *)msg.payload;
            char id[32];
            snprintf(id, sizeof id, "o-%d", got);
            assert_string_equal(o->order_id, id);
            assert_true(msg.envelope->seq > last_seq);
            assert_string_equal(msg.envelope->source, "test-publisher");
            assert_string_equal(msg.envelope->trace_id, "trace-1");
            last_seq = msg.envelope->seq;
            got++;
            sr_arena_reset(arena);
        }
    }
    sr_arena_destroy(&arena);
    return got;
}

static void test_forwards_between_processes(void **state)
{
    (void)state;
    sr_test_busd_t b = {0};
    sr_test_busd_start(&b);
    void *ctx = zmq_ctx_new();
    sr_bus_sub_t *sub = sr_bus_sub_new(ctx, b.back_ep, &(sr_bus_opts_t){0});
    assert_non_null(sub);
    assert_int_equal(sr_bus_subscribe(sub, "order."), 0);
    sr_test_sleep_ms(200);
    pid_t child = s_publish_child(b.front_ep, 200, NULL);
    assert_int_equal(s_receive_orders(sub, 200, 10000), 200);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* publishers filter at the source, so metric.room never reached busd */
    assert_int_equal(sr_test_admin_metric(b.admin, "sr_busd_messages_total"), 200);
    assert_int_equal(
        sr_test_admin_metric(b.admin, "sr_busd_topic_messages_total{topic=\"order.paid\"}"), 200);
    assert_int_equal(
        sr_test_admin_metric(b.admin, "sr_busd_topic_messages_total{topic=\"metric.room\"}"), 0);
    assert_true(sr_test_admin_metric(b.admin, "sr_busd_subscriptions_total{op=\"subscribe\"}") >=
                1);
    sr_bus_sub_destroy(&sub);
    zmq_ctx_term(ctx);
    assert_int_equal(WEXITSTATUS(sr_test_stop(b.pid, SIGTERM, 5000)), 0);
    char *log = sr_test_read_file(b.log, NULL);
    assert_non_null(strstr(log, "event=drained"));
    assert_non_null(strstr(log, "event=stopped exit=0"));
    free(log);
}

static void test_curve(void **state)
{
    (void)state;
    char pub_key[41], sec_key[41], other_pub[41], other_sec[41];
    assert_int_equal(zmq_curve_keypair(pub_key, sec_key), 0);
    assert_int_equal(zmq_curve_keypair(other_pub, other_sec), 0);
    sr_test_busd_t b = {.curve_secret = sec_key};
    sr_test_busd_start(&b);
    void *ctx = zmq_ctx_new();
    sr_bus_sub_t *good =
        sr_bus_sub_new(ctx, b.back_ep, &(sr_bus_opts_t){.curve_server_key = pub_key});
    sr_bus_sub_t *wrong =
        sr_bus_sub_new(ctx, b.back_ep, &(sr_bus_opts_t){.curve_server_key = other_pub});
    sr_bus_sub_t *plain = sr_bus_sub_new(ctx, b.back_ep, &(sr_bus_opts_t){0});
    assert_non_null(good);
    assert_non_null(wrong);
    assert_non_null(plain);
    assert_int_equal(sr_bus_subscribe(good, "order."), 0);
    assert_int_equal(sr_bus_subscribe(wrong, "order."), 0);
    assert_int_equal(sr_bus_subscribe(plain, "order."), 0);
    sr_test_sleep_ms(300);
    pid_t child = s_publish_child(b.front_ep, 20, pub_key);
    assert_int_equal(s_receive_orders(good, 20, 10000), 20);
    waitpid(child, NULL, 0);
    assert_int_equal(s_receive_orders(wrong, 1, 500), 0);
    assert_int_equal(s_receive_orders(plain, 1, 500), 0);
    /* a plain publisher cannot reach a CURVE busd */
    child = s_publish_child(b.front_ep, 5, NULL);
    waitpid(child, NULL, 0);
    assert_int_equal(s_receive_orders(good, 1, 500), 0);
    sr_bus_sub_destroy(&good);
    sr_bus_sub_destroy(&wrong);
    sr_bus_sub_destroy(&plain);
    zmq_ctx_term(ctx);
    sr_test_stop(b.pid, SIGTERM, 5000);
}

static void test_command_line_and_config_errors(void **state)
{
    (void)state;
    char *out;
    char *none[] = {NULL};
    assert_int_equal(sr_test_run("sr-busd", "--help", none, &out), 0);
    assert_non_null(strstr(out, "SR_BUSD_FRONTEND"));
    assert_non_null(strstr(out, "SR_ADMIN_PORT"));
    free(out);
    assert_int_equal(sr_test_run("sr-busd", "--bogus", none, &out), 2);
    assert_non_null(strstr(out, "unknown argument '--bogus'"));
    free(out);
    assert_int_equal(sr_test_run("sr-busd", "bogus", none, &out), 2);
    assert_non_null(strstr(out, "unknown command 'bogus'"));
    free(out);
    assert_int_equal(sr_test_run("sr-busd", "keygen", none, &out), 0);
    char secret[64], public_key[64];
    assert_int_equal(
        sscanf(out, "SR_BUSD_CURVE_SECRET=%63s\nSR_BUS_SERVER_KEY=%63s", secret, public_key), 2);
    assert_int_equal(strlen(secret), 40);
    assert_int_equal(strlen(public_key), 40);
    free(out);

    static const struct {
        const char *env;
        const char *message;
    } bad[] = {
        {"SR_BUS_HWM=lots", "SR_BUS_HWM"},
        {"SR_ADMIN_PORT=70000", "SR_ADMIN_PORT"},
        {"SR_LOG_LEVEL=chatty", "SR_LOG_LEVEL"},
        {"SR_CRON_INTERVAL=5 parsecs", "SR_CRON_INTERVAL"},
        {"SR_BUS_MAX_MSG=12Q", "SR_BUS_MAX_MSG"},
        {"SR_BUSD_CURVE_SECRET=short", "SR_BUSD_CURVE_SECRET: not 40 characters long"},
        {"SR_BUSD_CURVE_SECRET=%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%", "not Z85 text"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *env[] = {(char *)bad[i].env, NULL};
        assert_int_equal(sr_test_run("sr-busd", NULL, env, &out), 2);
        assert_non_null(strstr(out, bad[i].message));
        free(out);
    }
}

static void test_taken_ports_exit_1(void **state)
{
    (void)state;
    sr_test_busd_t b = {0};
    sr_test_busd_start(&b);
    char *out;
    char *admin_taken[] = {sr_asprintf("SR_ADMIN_PORT=%u", b.admin), NULL};
    assert_int_equal(sr_test_run("sr-busd", NULL, admin_taken, &out), 1);
    free(out);
    char *front_taken[] = {sr_asprintf("SR_ADMIN_PORT=%u", sr_test_free_port()),
                           sr_asprintf("SR_BUSD_FRONTEND=%s", b.front_ep), NULL};
    assert_int_equal(sr_test_run("sr-busd", NULL, front_taken, &out), 1);
    assert_non_null(strstr(out, "busd_bind_failed"));
    free(out);
    free(admin_taken[0]);
    free(front_taken[0]);
    free(front_taken[1]);
    sr_test_stop(b.pid, SIGTERM, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwards_between_processes),
        cmocka_unit_test(test_curve),
        cmocka_unit_test(test_command_line_and_config_errors),
        cmocka_unit_test(test_taken_ports_exit_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
