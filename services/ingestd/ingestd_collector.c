/* ingestd_collector - the collector socket: receive, check, admit, answer.
 *
 * One ROUTER socket; every message is [routing id][packed CollectorBatch]. A batch is unpacked
 * into a pooled arena (none per row), checked (ingestd_check.c) and admitted to the queue or the
 * spool (ingestd_queue.c). Garbage, oversize and invalid batches and messages with the wrong
 * number of frames are answered REJECTED and counted by reason; a batch neither the queue nor
 * the spool can take is answered BUSY. STORED and DUPLICATE are sent by the queue after the
 * commit, SPOOLED once the batch is in the spool file.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RECV_BATCH_MAX  1000      /* messages per wake-up, so a flood cannot starve the cron */
#define ARENA_CHUNK_MIN 16384     /* arenas come in powers of two from here */
#define ARENA_CHUNK_MAX (4 << 20) /* unpacked batches take about twice their packed size */

typedef enum { REJ_GARBAGE, REJ_OVERSIZE, REJ_INVALID, REJ_FRAMES, REJ_REASONS } reject_t;
typedef enum {
    RES_STORED,
    RES_DUPLICATE,
    RES_SPOOLED,
    RES_REJECTED,
    RES_BUSY,
    RES_RESULTS
} result_t;

static const char *s_reject_names[REJ_REASONS] = {"garbage", "oversize", "invalid", "frames"};
static const char *s_result_names[RES_RESULTS] = {"stored", "duplicate", "spooled", "rejected",
                                                  "busy"};

struct ingestd_collector_t {
    ingestd_t *queue;
    sr_service_t *svc;
    const ingestd_config_t *cfg;
    void *router;
    sr_counter_t *rejected[REJ_REASONS], *results[RES_RESULTS];
};

/* s_send - answer one batch; a peer that went away is ZeroMQ's to drop (no ROUTER_MANDATORY) */
static void s_send(ingestd_collector_t *self, const uint8_t *id, size_t id_len,
                   const char *collector_id, uint64_t seq, Sr__AckStatus status, const char *error,
                   uint32_t rows)
{
    Sr__CollectorAck ack = SR__COLLECTOR_ACK__INIT;
    ack.collector_id = (char *)(collector_id ? collector_id : "");
    ack.batch_seq = seq;
    ack.status = status;
    ack.error = (char *)(error ? error : "");
    ack.rows = rows;
    size_t len = sr__collector_ack__get_packed_size(&ack);
    uint8_t *buf = sr_malloc(len ? len : 1);
    sr__collector_ack__pack(&ack, buf);
    if (zmq_send(self->router, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->router, buf, len, ZMQ_DONTWAIT) < 0)
        sr_debug("ingest_ack_unsent", "seq=%llu err=\"%s\"", (unsigned long long)seq,
                 zmq_strerror(errno));
    free(buf);
}

void ingestd_collector_ack(ingestd_collector_t *self, const ingestd_entry_t *e,
                           Sr__AckStatus status)
{
    result_t result = status == SR__ACK_STATUS__ACK_STATUS_STORED      ? RES_STORED
                      : status == SR__ACK_STATUS__ACK_STATUS_DUPLICATE ? RES_DUPLICATE
                                                                       : RES_SPOOLED;
    sr_counter_inc(self->results[result]);
    s_send(self, e->id, e->id_len, e->batch->collector_id, e->batch->batch_seq, status, NULL,
           status == SR__ACK_STATUS__ACK_STATUS_DUPLICATE ? 0 : (uint32_t)e->rows);
}

static void s_reject(ingestd_collector_t *self, const zmq_msg_t *id, reject_t reason,
                     const Sr__CollectorBatch *batch, const char *error)
{
    sr_counter_inc(self->rejected[reason]);
    sr_counter_inc(self->results[RES_REJECTED]);
    sr_debug("ingest_batch_rejected", "reason=%s error=\"%s\"", s_reject_names[reason], error);
    s_send(self, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size(id),
           batch ? batch->collector_id : NULL, batch ? batch->batch_seq : 0,
           SR__ACK_STATUS__ACK_STATUS_REJECTED, error, 0);
}

/* s_admit - a checked, new batch into the queue or the spool, or answered REJECTED or BUSY */
static ingestd_admit_t s_admit(ingestd_collector_t *self, ingestd_entry_t *e, const zmq_msg_t *id,
                               zmq_msg_t *body)
{
    e->rows = e->batch->n_samples + e->batch->n_orders + e->batch->n_interactions;
    e->id_len = zmq_msg_size(id) < sizeof e->id ? zmq_msg_size(id) : sizeof e->id;
    memcpy(e->id, zmq_msg_data((zmq_msg_t *)id), e->id_len);
    if (e->rows > (uint64_t)self->cfg->queue_max_rows) { /* BUSY would never end */
        s_reject(self, id, REJ_INVALID, e->batch, "more rows than SR_INGEST_QUEUE_MAX_ROWS");
        return INGESTD_FULL;
    }
    ingestd_admit_t admitted =
        ingestd_queue_admit(self->queue, e, zmq_msg_data(body), zmq_msg_size(body));
    if (admitted == INGESTD_SPOOLED)
        ingestd_collector_ack(self, e, SR__ACK_STATUS__ACK_STATUS_SPOOLED);
    else if (admitted == INGESTD_FULL) {
        sr_counter_inc(self->results[RES_BUSY]);
        s_send(self, e->id, e->id_len, e->batch->collector_id, e->batch->batch_seq,
               SR__ACK_STATUS__ACK_STATUS_BUSY, "queue and spool full", 0);
    }
    return admitted;
}

/* s_take - check one received batch and admit it, or answer it at once */
static void s_take(ingestd_collector_t *self, zmq_msg_t *id, zmq_msg_t *body)
{
    size_t len = zmq_msg_size(body);
    if ((int64_t)len > self->cfg->max_batch_bytes) {
        s_reject(self, id, REJ_OVERSIZE, NULL, "batch larger than SR_INGEST_MAX_BATCH");
        return;
    }
    /* a power of two, so batches of about the same size fit each other's pooled arenas */
    size_t chunk = ARENA_CHUNK_MIN;
    while (chunk < len * 2 + 1024 && chunk < ARENA_CHUNK_MAX)
        chunk *= 2;
    ingestd_entry_t e = {0};
    e.origin = INGESTD_FROM_COLLECTOR;
    e.arena = ingestd_queue_arena(self->queue, chunk, &e.arena_chunk);
    e.batch = sr__collector_batch__unpack(sr_arena_pb_allocator(e.arena), len, zmq_msg_data(body));
    char err[160];
    if (!e.batch)
        s_reject(self, id, REJ_GARBAGE, NULL, "not a CollectorBatch");
    else if (ingestd_batch_check(e.batch, err, sizeof err) < 0)
        s_reject(self, id, REJ_INVALID, e.batch, err);
    else if (!ingestd_queue_requeued(self->queue, zmq_msg_data(id), zmq_msg_size(id), e.batch) &&
             s_admit(self, &e, id, body) == INGESTD_QUEUED)
        return; /* the queue owns the entry now */
    ingestd_queue_release(self->queue, &e);
}

static void s_on_router(void *arg)
{
    ingestd_collector_t *self = arg;
    for (int i = 0; i < RECV_BATCH_MAX; i++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, self->router, ZMQ_DONTWAIT) < 0) {
            if (errno != EAGAIN)
                sr_warn("ingest_recv_failed", "err=\"%s\"", zmq_strerror(errno));
            zmq_msg_close(&id);
            break;
        }
        zmq_msg_init(&body);
        if (!zmq_msg_more(&id) || zmq_msg_recv(&body, self->router, 0) < 0)
            s_reject(self, &id, REJ_FRAMES, NULL, "one frame per batch");
        else if (zmq_msg_more(&body)) {
            sr_bus_discard_rest(self->router);
            s_reject(self, &id, REJ_FRAMES, NULL, "one frame per batch");
        } else
            s_take(self, &id, &body);
        zmq_msg_close(&body);
        zmq_msg_close(&id);
        ingestd_queue_kick(self->queue);
    }
}

ingestd_collector_t *ingestd_collector_new(ingestd_t *queue, sr_service_t *svc)
{
    ingestd_collector_t *self = sr_calloc(1, sizeof *self);
    self->queue = queue;
    self->svc = svc;
    self->cfg = sr_service_config(svc);
    sr_metrics_t *m = sr_service_metrics(svc);
    char labels[64];
    for (int r = 0; r < REJ_REASONS; r++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_reject_names[r]);
        self->rejected[r] = sr_metrics_counter(m, "sr_ingest_rejected_total", labels,
                                               "collector messages rejected, by reason");
    }
    for (int r = 0; r < RES_RESULTS; r++) {
        snprintf(labels, sizeof labels, "result=\"%s\"", s_result_names[r]);
        self->results[r] = sr_metrics_counter(m, "sr_ingest_batches_total", labels,
                                              "collector batches answered, by answer");
    }
    const sr_common_config_t *cc = sr_service_common(svc);
    self->router = zmq_socket(sr_service_zctx(svc), ZMQ_ROUTER);
    if (!self->router ||
        sr_bus_limit_socket(self->router, (int)cc->bus_hwm, self->cfg->max_batch_bytes * 2) < 0 ||
        zmq_bind(self->router, self->cfg->collector_bind) < 0) {
        sr_error("ingest_bind_failed", "endpoint=%s err=\"%s\"", self->cfg->collector_bind,
                 zmq_strerror(errno));
        ingestd_collector_destroy(&self);
        return NULL;
    }
    if (sr_loop_add_socket(sr_service_loop(svc), self->router, s_on_router, self) < 0) {
        ingestd_collector_destroy(&self);
        return NULL;
    }
    sr_info("ingest_listening", "endpoint=%s", self->cfg->collector_bind);
    return self;
}

void ingestd_collector_destroy(ingestd_collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestd_collector_t *self = *self_p;
    if (self->router) {
        sr_loop_remove_socket(sr_service_loop(self->svc), self->router);
        zmq_close(self->router);
    }
    free(self);
    *self_p = NULL;
}
