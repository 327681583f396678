/* test_sr_collector - the collector client against fake ingestd ROUTERs in a thread: resend
 * after a lost ack, DUPLICATE/STORED/REJECTED settle a batch, BUSY waits and resends, acks for
 * other collectors and garbage are ignored, batches spread over two endpoints. */
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_collector.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>

/* what the fake ingestd does with the n-th message it receives */
typedef enum { DROP, STORED, DUPLICATE, REJECTED, BUSY, GARBAGE, OTHER_ID, END } action_t;

typedef struct {
    void *ctx;
    char endpoint[64];
    action_t script[16];
    int received;
    uint64_t seqs[16];  /* batch_seq of each received message */
    size_t samples[16]; /* rows in each */
    void *ready;        /* inproc PAIR to say "bound" */
} fake_t;

static void s_reply(void *router, zmq_msg_t *id, const Sr__CollectorBatch *b, action_t a)
{
    Sr__CollectorAck ack = SR__COLLECTOR_ACK__INIT;
    ack.collector_id = a == OTHER_ID ? "someone-else" : b->collector_id;
    ack.batch_seq = b->batch_seq;
    ack.status = a == STORED     ? SR__ACK_STATUS__ACK_STATUS_STORED
                 : a == REJECTED ? SR__ACK_STATUS__ACK_STATUS_REJECTED
                 : a == BUSY     ? SR__ACK_STATUS__ACK_STATUS_BUSY
                 : a == OTHER_ID ? SR__ACK_STATUS__ACK_STATUS_STORED
                                 : SR__ACK_STATUS__ACK_STATUS_DUPLICATE;
    ack.error = a == REJECTED ? "bad rows" : "";
    ack.rows = a == STORED ? (uint32_t)b->n_samples : 0;
    uint8_t buf[512];
    size_t len = sr__collector_ack__pack(&ack, buf);
    if (a == GARBAGE) {
        memset(buf, 0xff, 8);
        len = 8;
    }
    zmq_msg_t copy; /* sending consumes a message, and the fake may answer twice */
    zmq_msg_init(&copy);
    zmq_msg_copy(&copy, id);
    zmq_msg_send(&copy, router, ZMQ_SNDMORE);
    zmq_send(router, buf, len, 0);
}

static void *s_fake(void *arg)
{
    fake_t *f = arg;
    void *router = zmq_socket(f->ctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(router, f->endpoint), 0);
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_send(f->ready, "", 0, 0);
    int timeout = 3000;
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    while (f->script[f->received] != END) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, router, 0) < 0 || zmq_msg_recv(&body, router, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            break;
        }
        Sr__CollectorBatch *b =
            sr__collector_batch__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
        assert_non_null(b);
        f->seqs[f->received] = b->batch_seq;
        f->samples[f->received] = b->n_samples;
        action_t a = f->script[f->received++];
        if (a != DROP)
            s_reply(router, &id, b, a);
        if (a == GARBAGE || a == OTHER_ID) /* and then the real answer */
            s_reply(router, &id, b, STORED);
        sr__collector_batch__free_unpacked(b, NULL);
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    zmq_close(router);
    return NULL;
}

typedef struct {
    void *ctx;
    fake_t fakes[2];
    pthread_t threads[2];
    int nfakes;
} fixture_t;

static void s_start(fixture_t *fx, int n, const action_t scripts[][16])
{
    static int serial;
    memset(fx, 0, sizeof *fx);
    fx->ctx = zmq_ctx_new();
    fx->nfakes = n;
    for (int i = 0; i < n; i++) {
        fake_t *f = &fx->fakes[i];
        f->ctx = fx->ctx;
        snprintf(f->endpoint, sizeof f->endpoint, "inproc://fake-ingestd-%d", serial++);
        memcpy(f->script, scripts[i], sizeof f->script);
        char ready_ep[64];
        snprintf(ready_ep, sizeof ready_ep, "inproc://ready-%d", serial++);
        void *ready = zmq_socket(fx->ctx, ZMQ_PAIR);
        assert_int_equal(zmq_bind(ready, ready_ep), 0);
        f->ready = zmq_socket(fx->ctx, ZMQ_PAIR);
        assert_int_equal(zmq_connect(f->ready, ready_ep), 0);
        assert_int_equal(pthread_create(&fx->threads[i], NULL, s_fake, f), 0);
        char c;
        assert_int_equal(zmq_recv(ready, &c, 1, 0), 0);
        zmq_close(ready);
        zmq_close(f->ready);
    }
}

static void s_stop(fixture_t *fx)
{
    for (int i = 0; i < fx->nfakes; i++)
        pthread_join(fx->threads[i], NULL);
    zmq_ctx_term(fx->ctx);
}

static uint64_t s_send(sr_collector_t *c, int rows)
{
    Sr__CollectorBatch b = SR__COLLECTOR_BATCH__INIT;
    Sr__RoomSample s = SR__ROOM_SAMPLE__INIT, *ps[8];
    s.room_id = "r1";
    for (int i = 0; i < rows; i++)
        ps[i] = &s;
    b.samples = ps;
    b.n_samples = (size_t)rows;
    return sr_collector_send(c, &b);
}

static const sr_collector_opts_t s_fast = {.resend_ms = 150, .busy_wait_ms = 200};

/* the first ack is lost: the batch is resent and the second answer, DUPLICATE, settles it */
static void test_resend_after_lost_ack(void **state)
{
    (void)state;
    fixture_t fx;
    const action_t scripts[1][16] = {{DROP, DUPLICATE, END}};
    s_start(&fx, 1, scripts);
    sr_collector_t *c = sr_collector_new(fx.ctx, fx.fakes[0].endpoint, "test-c", &s_fast);
    assert_non_null(c);
    assert_int_equal(s_send(c, 3), 1);
    assert_int_equal(sr_collector_pending(c), 1);
    int64_t t0 = sr_clock_mono_ms();
    assert_int_equal(sr_collector_wait(c, 3000), 0);
    assert_true(sr_clock_mono_ms() - t0 >= 150);
    const sr_collector_stats_t *st = sr_collector_stats(c);
    assert_int_equal(st->sent, 1);
    assert_int_equal(st->resent, 1);
    assert_int_equal(st->duplicate, 1);
    assert_int_equal(st->stored, 0);
    assert_int_equal(fx.fakes[0].received, 2);
    assert_int_equal(fx.fakes[0].seqs[0], 1);
    assert_int_equal(fx.fakes[0].seqs[1], 1);
    assert_int_equal(fx.fakes[0].samples[1], 3);
    sr_collector_destroy(&c);
    assert_null(c);
    sr_collector_destroy(&c);
    s_stop(&fx);
}

/* each kind of answer, in order: what settles, what is resent, what is ignored */
static void test_answers(void **state)
{
    (void)state;
    const struct {
        action_t script[16];
        int batches;
        uint64_t stored, duplicate, rejected, busy, resent, rows;
        const char *error;
    } cases[] = {
        {{STORED, STORED, END}, 2, 2, 0, 0, 0, 0, 4, ""},
        {{REJECTED, END}, 1, 0, 0, 1, 0, 0, 0, "bad rows"},
        {{BUSY, STORED, END}, 1, 1, 0, 0, 1, 1, 2, ""},
        {{GARBAGE, END}, 1, 1, 0, 0, 0, 0, 2, ""},
        {{OTHER_ID, END}, 1, 1, 0, 0, 0, 0, 2, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture_t fx;
        action_t scripts[1][16];
        memcpy(scripts[0], cases[i].script, sizeof scripts[0]);
        s_start(&fx, 1, (const action_t(*)[16])scripts);
        sr_collector_t *c = sr_collector_new(fx.ctx, fx.fakes[0].endpoint, "test-c", &s_fast);
        for (int b = 0; b < cases[i].batches; b++)
            assert_int_equal(s_send(c, 2), (uint64_t)b + 1);
        if (sr_collector_wait(c, 3000) != 0)
            fail_msg("case %zu: still pending", i);
        const sr_collector_stats_t *st = sr_collector_stats(c);
        assert_int_equal(st->stored, cases[i].stored);
        assert_int_equal(st->duplicate, cases[i].duplicate);
        assert_int_equal(st->rejected, cases[i].rejected);
        assert_int_equal(st->busy, cases[i].busy);
        assert_int_equal(st->resent, cases[i].resent);
        assert_int_equal(st->rows, cases[i].rows);
        assert_string_equal(sr_collector_last_error(c), cases[i].error);
        sr_collector_destroy(&c);
        s_stop(&fx);
    }
}

/* two endpoints: batches are spread over both, every one acked */
static void test_two_endpoints(void **state)
{
    (void)state;
    fixture_t fx;
    const action_t scripts[2][16] = {{STORED, STORED, END}, {STORED, STORED, END}};
    s_start(&fx, 2, scripts);
    char *eps = sr_asprintf("%s, %s", fx.fakes[0].endpoint, fx.fakes[1].endpoint);
    sr_collector_t *c = sr_collector_new(fx.ctx, eps, "test-c", &s_fast);
    assert_non_null(c);
    for (int b = 0; b < 4; b++)
        s_send(c, 1);
    assert_int_equal(sr_collector_wait(c, 3000), 0);
    assert_int_equal(sr_collector_stats(c)->stored, 4);
    assert_int_equal(fx.fakes[0].received, 2);
    assert_int_equal(fx.fakes[1].received, 2);
    sr_collector_destroy(&c);
    free(eps);
    s_stop(&fx);
}

/* nobody listening: the batch stays pending and the wait times out */
static void test_no_server_and_bad_arguments(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    sr_collector_t *c = sr_collector_new(ctx, "inproc://nobody-here", "test-c", &s_fast);
    assert_non_null(c);
    s_send(c, 1);
    assert_int_equal(sr_collector_wait(c, 300), -1);
    assert_int_equal(sr_collector_pending(c), 1);
    sr_collector_destroy(&c);
    const struct {
        const char *endpoints, *id;
    } bad[] = {{"nonsense", "id"}, {"", "id"}, {"inproc://x,bogus://y", "id"}, {"inproc://x", ""}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(sr_collector_new(ctx, bad[i].endpoints, bad[i].id, NULL));
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resend_after_lost_ack),
        cmocka_unit_test(test_answers),
        cmocka_unit_test(test_two_endpoints),
        cmocka_unit_test(test_no_server_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
