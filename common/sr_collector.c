/* sr_collector - acked, resent batches from a collector to sr-ingestd (see sr_collector.h).
 *
 * Pending batches live in an array ordered by batch_seq (seqs only grow), so an ack finds its
 * batch by binary search. The socket is a DEALER: one frame out (a packed CollectorBatch), one
 * frame back (a packed CollectorAck); acks for other collectors or unknown seqs are ignored.
 */
#include "sr_collector.h"

#include "sr_alloc.h"
#include "sr_bus.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ACK_MAX_BYTES     65536
#define ERROR_MAX         256
#define RESEND_DEFAULT_MS 2000
#define BUSY_DEFAULT_MS   1000
#define HWM_DEFAULT       10000

typedef struct {
    uint64_t seq;
    uint8_t *packed;
    size_t len;
    int64_t due_ms; /* monotonic time of the next send; 0 = as soon as possible */
    int sent;       /* sent at least once */
} pending_t;

struct sr_collector_t {
    void *dealer;
    char *collector_id;
    uint64_t next_seq;
    pending_t *pending;
    size_t count, cap;
    sr_collector_opts_t opts;
    sr_collector_stats_t stats;
    char last_error[ERROR_MAX];
};

/* s_connect_all - connect to each comma-separated endpoint; -1 (logged) on the first bad one */
static int s_connect_all(void *dealer, const char *endpoints)
{
    char *list = sr_strdup(endpoints), *save = NULL;
    int rc = 0, n = 0;
    for (char *ep = strtok_r(list, ",", &save); ep && rc == 0; ep = strtok_r(NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (zmq_connect(dealer, ep) < 0) {
            sr_error("collector_connect_failed", "endpoint=\"%s\" err=\"%s\"", ep,
                     zmq_strerror(errno));
            rc = -1;
        }
        n++;
    }
    free(list);
    if (rc == 0 && n == 0) {
        sr_error("collector_connect_failed", "endpoint=\"\" err=\"no endpoint given\"");
        rc = -1;
    }
    return rc;
}

sr_collector_t *sr_collector_new(void *zctx, const char *endpoints, const char *collector_id,
                                 const sr_collector_opts_t *opts)
{
    if (!collector_id || !collector_id[0]) {
        sr_error("collector_bad_id", "err=\"collector_id is empty\"");
        return NULL;
    }
    sr_collector_t *self = sr_calloc(1, sizeof *self);
    if (opts)
        self->opts = *opts;
    if (self->opts.resend_ms <= 0)
        self->opts.resend_ms = RESEND_DEFAULT_MS;
    if (self->opts.busy_wait_ms <= 0)
        self->opts.busy_wait_ms = BUSY_DEFAULT_MS;
    if (self->opts.hwm <= 0)
        self->opts.hwm = HWM_DEFAULT;
    self->collector_id = sr_strdup(collector_id);
    self->next_seq = 1;
    int immediate = 1;
    self->dealer = zmq_socket(zctx, ZMQ_DEALER);
    if (!self->dealer || sr_bus_limit_socket(self->dealer, self->opts.hwm, ACK_MAX_BYTES) < 0 ||
        zmq_setsockopt(self->dealer, ZMQ_IMMEDIATE, &immediate, sizeof immediate) < 0 ||
        s_connect_all(self->dealer, endpoints ? endpoints : "") < 0) {
        if (!self->dealer)
            sr_error("collector_socket_failed", "err=\"%s\"", zmq_strerror(errno));
        sr_collector_destroy(&self);
        return NULL;
    }
    return self;
}

void sr_collector_destroy(sr_collector_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sr_collector_t *self = *self_p;
    if (self->dealer)
        zmq_close(self->dealer);
    for (size_t i = 0; i < self->count; i++)
        free(self->pending[i].packed);
    free(self->pending);
    free(self->collector_id);
    free(self);
    *self_p = NULL;
}

/* s_try_send - send one pending batch now if a peer takes it; otherwise it stays due */
static void s_try_send(sr_collector_t *self, pending_t *p, int64_t now)
{
    if (zmq_send(self->dealer, p->packed, p->len, ZMQ_DONTWAIT) < 0) {
        if (errno != EAGAIN)
            sr_warn("collector_send_failed", "seq=%llu err=\"%s\"", (unsigned long long)p->seq,
                    zmq_strerror(errno));
        p->due_ms = 0;
        return;
    }
    if (p->sent)
        self->stats.resent++;
    p->sent = 1;
    p->due_ms = now + self->opts.resend_ms;
}

uint64_t sr_collector_send(sr_collector_t *self, Sr__CollectorBatch *batch)
{
    batch->collector_id = self->collector_id;
    batch->batch_seq = self->next_seq++;
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 64;
        self->pending = sr_realloc(self->pending, self->cap * sizeof *self->pending);
    }
    pending_t *p = &self->pending[self->count++];
    memset(p, 0, sizeof *p);
    p->seq = batch->batch_seq;
    p->len = sr__collector_batch__get_packed_size(batch);
    p->packed = sr_malloc(p->len ? p->len : 1);
    sr__collector_batch__pack(batch, p->packed);
    self->stats.sent++;
    s_try_send(self, p, sr_clock_mono_ms());
    return batch->batch_seq;
}

static pending_t *s_find(sr_collector_t *self, uint64_t seq)
{
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->pending[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < self->count && self->pending[lo].seq == seq ? &self->pending[lo] : NULL;
}

static void s_settle(sr_collector_t *self, pending_t *p)
{
    free(p->packed);
    size_t i = (size_t)(p - self->pending);
    memmove(p, p + 1, (self->count - i - 1) * sizeof *p);
    self->count--;
}

/* s_handle_ack - one ack frame; 1 when it was an ack of ours, else 0 */
static int s_handle_ack(sr_collector_t *self, const zmq_msg_t *frame, int64_t now)
{
    Sr__CollectorAck *ack =
        sr__collector_ack__unpack(NULL, zmq_msg_size(frame), zmq_msg_data((zmq_msg_t *)frame));
    if (!ack) {
        sr_debug("collector_bad_ack", "bytes=%zu", zmq_msg_size(frame));
        return 0;
    }
    pending_t *p =
        strcmp(ack->collector_id, self->collector_id) == 0 ? s_find(self, ack->batch_seq) : NULL;
    int ours = p != NULL;
    if (p) {
        switch (ack->status) {
        case SR__ACK_STATUS__ACK_STATUS_STORED:
            self->stats.stored++;
            self->stats.rows += ack->rows;
            s_settle(self, p);
            break;
        case SR__ACK_STATUS__ACK_STATUS_SPOOLED:
            self->stats.spooled++;
            self->stats.rows += ack->rows;
            s_settle(self, p);
            break;
        case SR__ACK_STATUS__ACK_STATUS_DUPLICATE:
            self->stats.duplicate++;
            s_settle(self, p);
            break;
        case SR__ACK_STATUS__ACK_STATUS_REJECTED:
            self->stats.rejected++;
            snprintf(self->last_error, sizeof self->last_error, "%s", ack->error);
            sr_warn("collector_batch_rejected", "seq=%llu error=\"%s\"",
                    (unsigned long long)ack->batch_seq, ack->error);
            s_settle(self, p);
            break;
        case SR__ACK_STATUS__ACK_STATUS_BUSY:
            self->stats.busy++;
            p->due_ms = now + self->opts.busy_wait_ms;
            break;
        default:
            ours = 0;
            break;
        }
    }
    sr__collector_ack__free_unpacked(ack, NULL);
    return ours;
}

int sr_collector_poll(sr_collector_t *self, int timeout_ms)
{
    zmq_pollitem_t item = {self->dealer, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) < 0 && errno != EINTR)
        return -1;
    int64_t now = sr_clock_mono_ms();
    int handled = 0;
    for (;;) {
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, self->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            if (errno == EAGAIN)
                break;
            return -1;
        }
        if (zmq_msg_more(&frame))
            sr_bus_discard_rest(self->dealer);
        else
            handled += s_handle_ack(self, &frame, now);
        zmq_msg_close(&frame);
    }
    for (size_t i = 0; i < self->count; i++)
        if (self->pending[i].due_ms <= now)
            s_try_send(self, &self->pending[i], now);
    return handled;
}

int sr_collector_wait(sr_collector_t *self, int timeout_ms)
{
    int64_t end = sr_clock_mono_ms() + timeout_ms;
    while (self->count > 0) {
        int64_t left = end - sr_clock_mono_ms();
        if (left <= 0 || sr_collector_poll(self, left < 100 ? (int)left : 100) < 0)
            return -1;
    }
    return 0;
}

size_t sr_collector_pending(const sr_collector_t *self)
{
    return self->count;
}

const sr_collector_stats_t *sr_collector_stats(const sr_collector_t *self)
{
    return &self->stats;
}

const char *sr_collector_last_error(const sr_collector_t *self)
{
    return self->last_error;
}
