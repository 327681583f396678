/* test_sr_loop - timers, ZeroMQ sockets, file descriptors, removal from inside a handler. */
#include "sr_clock.h"
#include "sr_loop.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>
#include <cmocka.h>
#include <zmq.h>

typedef struct {
    sr_loop_t *loop;
    int fired;
    int stop_after;
    void *socket;
    int fd;
    int timer;
} ctx_t;

static void s_count(void *arg)
{
    ctx_t *c = arg;
    if (++c->fired >= c->stop_after)
        sr_loop_stop(c->loop);
}

static void test_repeating_and_one_shot_timers(void **state)
{
    (void)state;
    ctx_t rep = {.loop = sr_loop_new(), .stop_after = 5};
    ctx_t once = {.loop = rep.loop, .stop_after = 1000};
    assert_true(sr_loop_add_timer(rep.loop, 10, 1, s_count, &rep) > 0);
    assert_true(sr_loop_add_timer(rep.loop, 1, 0, s_count, &once) > 0);
    int64_t start = sr_clock_mono_ms();
    assert_int_equal(sr_loop_run(rep.loop), 0);
    int64_t took = sr_clock_mono_ms() - start;
    assert_int_equal(rep.fired, 5);
    assert_int_equal(once.fired, 1);
    assert_true(took >= 45 && took < 2000);
    sr_loop_destroy(&rep.loop);
    assert_null(rep.loop);
}

static void test_cancelled_timer_never_fires(void **state)
{
    (void)state;
    ctx_t c = {.loop = sr_loop_new(), .stop_after = 1};
    ctx_t stopper = {.loop = c.loop, .stop_after = 1};
    int id = sr_loop_add_timer(c.loop, 5, 1, s_count, &c);
    sr_loop_cancel_timer(c.loop, id);
    assert_true(sr_loop_add_timer(c.loop, 30, 0, s_count, &stopper) > 0);
    assert_int_equal(sr_loop_run(c.loop), 0);
    assert_int_equal(c.fired, 0);
    assert_int_equal(stopper.fired, 1);
    sr_loop_destroy(&c.loop);
}

static void s_drain_socket(void *arg)
{
    ctx_t *c = arg;
    char buf[16];
    while (zmq_recv(c->socket, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        c->fired++;
    if (c->fired >= c->stop_after) {
        sr_loop_remove_socket(c->loop, c->socket);
        sr_loop_stop(c->loop);
    }
}

static void test_socket_readable(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    void *rx = zmq_socket(zctx, ZMQ_PAIR);
    void *tx = zmq_socket(zctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(rx, "inproc://loop-test"), 0);
    assert_int_equal(zmq_connect(tx, "inproc://loop-test"), 0);
    ctx_t c = {.loop = sr_loop_new(), .stop_after = 3, .socket = rx};
    assert_int_equal(sr_loop_add_socket(c.loop, rx, s_drain_socket, &c), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(zmq_send(tx, "hi", 2, 0), 2);
    assert_int_equal(sr_loop_run(c.loop), 0);
    assert_int_equal(c.fired, 3);
    /* removed: another message no longer calls the handler */
    assert_int_equal(zmq_send(tx, "hi", 2, 0), 2);
    assert_int_equal(sr_loop_run_once(c.loop, 20), 0);
    assert_int_equal(c.fired, 3);
    sr_loop_destroy(&c.loop);
    zmq_close(rx);
    zmq_close(tx);
    zmq_ctx_term(zctx);
}

static void s_read_fd(void *arg)
{
    ctx_t *c = arg;
    char buf[64];
    if (read(c->fd, buf, sizeof buf) > 0)
        c->fired++;
    sr_loop_remove_fd(c->loop, c->fd);
}

static void test_fd_readable_and_self_removal(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    ctx_t c = {.loop = sr_loop_new(), .fd = p[0]};
    assert_int_equal(sr_loop_add_fd(c.loop, p[0], s_read_fd, &c), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(sr_loop_run_once(c.loop, 1000), 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(write(p[1], "y", 1), 1);
    assert_int_equal(sr_loop_run_once(c.loop, 20), 0);
    assert_int_equal(c.fired, 1);
    assert_int_equal(sr_loop_add_fd(c.loop, -1, s_read_fd, &c), -1);
    sr_loop_destroy(&c.loop);
    close(p[0]);
    close(p[1]);
}

static void s_count_wakeups(void *arg)
{
    (*(int *)arg)++;
}

static void *s_wake_three_times(void *arg)
{
    for (int i = 0; i < 3; i++)
        sr_loop_wakeup(arg);
    return NULL;
}

/* wake-ups from another thread run the function on the loop; a burst of them runs it once,
 * and nothing runs it without one */
static void test_wakeup_from_another_thread(void **state)
{
    (void)state;
    sr_loop_t *loop = sr_loop_new();
    int calls = 0;
    sr_loop_wakeup_t *w = sr_loop_wakeup_new(loop, s_count_wakeups, &calls);
    assert_non_null(w);
    assert_int_equal(sr_loop_run_once(loop, 10), 0);
    assert_int_equal(calls, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_wake_three_times, w), 0);
    pthread_join(t, NULL);
    assert_int_equal(sr_loop_run_once(loop, 1000), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(sr_loop_run_once(loop, 10), 0);
    assert_int_equal(calls, 1);
    sr_loop_wakeup_destroy(&w);
    assert_null(w);
    sr_loop_wakeup_destroy(&w);
    sr_loop_destroy(&loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeating_and_one_shot_timers),
        cmocka_unit_test(test_cancelled_timer_never_fires),
        cmocka_unit_test(test_socket_readable),
        cmocka_unit_test(test_fd_readable_and_self_removal),
        cmocka_unit_test(test_wakeup_from_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
