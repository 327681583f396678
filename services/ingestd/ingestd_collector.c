/* ingestd_collector - the collector socket, the batch queue, the flush transaction and acks.
 *
 * One ROUTER socket; every message is [routing id][packed CollectorBatch]. A batch is unpacked
 * into its own arena (none per row; arenas are reset into a small pool, not freed) and queued
 * with the sender's routing id. The queue is flushed when it holds SR_INGEST_FLUSH_ROWS rows, on a
 * timer every SR_INGEST_FLUSH_INTERVAL and from the cron; a flush is one transaction (see
 * s_flush_tx), and acks go out only after its COMMIT. While PostgreSQL is down the queue grows up
 * to SR_INGEST_QUEUE_MAX_ROWS and further batches are answered BUSY; collectors keep every unacked
 * batch, so nothing queued here is lost when the process dies.
 *
 * Samples polled from the platforms (ingestd_sources.c) join the same queue through
 * ingestd_enqueue_sample: they gather in "polled" entries that have no collector, so they get no
 * metrics.batches row and no ack, and a crash loses at most the samples of one flush interval
 * (the next poll brings the rooms' newer numbers anyway). After a commit, metric.room goes out
 * for the newest sample per room and order.<status> for every order stored.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define OFF(field)          offsetof(ingestd_config_t, field)
#define RECV_BATCH_MAX      1000      /* messages per wake-up, so a flood cannot starve the cron */
#define FLUSH_BATCHES_MAX   1000      /* batches per transaction */
#define COPY_SEND_BYTES     (1 << 20) /* hand COPY data to libpq in pieces of about this size */
#define ARENA_CHUNK_MAX     (4 << 20) /* unpacked batches take about twice their packed size */
#define ARENA_POOL_MAX      4         /* idle arenas kept for reuse: at most 16 MB in reserve */
#define POLLED_ARENA_CHUNK  16384     /* also the smallest arena chunk */
#define PARTITION_EVERY_MS  (3600 * 1000)
#define PARTITION_RETRY_MS  (60 * 1000)
#define PUBLISH_INTERVAL_MS 1000
#define POLLED_PER_ENTRY    256 /* polled samples gathered into one queue entry */
#define ROLLUP_SQL                                                                                 \
    "SELECT metrics.roll_minutes(date_trunc('minute', now()) - $1::bigint * interval '1 ms', "     \
    "date_trunc('minute', now()))"
#define BATCH_INSERT_SQL                                                                           \
    "INSERT INTO metrics.batches (collector_id, batch_seq, rows) "                                 \
    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[]) "                                   \
    "ON CONFLICT DO NOTHING RETURNING collector_id, batch_seq"

const sr_config_entry_t ingestd_config[] = {
    {"SR_INGEST_COLLECTOR_BIND", SR_CFG_STR, "tcp://127.0.0.1:7620", 0, 0, OFF(collector_bind),
     "ROUTER bind where collectors send batches (proto/collector.proto)"},
    {"SR_INGEST_FLUSH_ROWS", SR_CFG_INT, "5000", 1, 10000000, OFF(flush_rows),
     "flush the queue into PostgreSQL once it holds this many rows"},
    {"SR_INGEST_FLUSH_INTERVAL", SR_CFG_DURATION, "200ms", 1, 60000, OFF(flush_interval_ms),
     "flush the queue at least this often"},
    {"SR_INGEST_QUEUE_MAX_ROWS", SR_CFG_INT, "1000000", 1, 1000000000, OFF(queue_max_rows),
     "rows queued in memory (e.g. while PostgreSQL is down) before batches are answered BUSY"},
    {"SR_INGEST_MAX_BATCH", SR_CFG_SIZE, "16M", 1024, 1073741824, OFF(max_batch_bytes),
     "largest packed batch accepted; larger ones are rejected (oversize)"},
    {"SR_INGEST_PARTITION_DAYS_AHEAD", SR_CFG_INT, "3", 0, 366, OFF(partition_days),
     "daily partitions created ahead of today (UTC)"},
    {"SR_INGEST_RETENTION_DAYS", SR_CFG_INT, "90", 1, 36500, OFF(retention_days),
     "daily partitions older than this many days are dropped"},
    {"SR_INGEST_ROLLUP_INTERVAL", SR_CFG_DURATION, "1m", 100, 3600000, OFF(rollup_interval_ms),
     "how often metrics.room_minutes is brought up to date"},
    {"SR_INGEST_ROLLUP_LOOKBACK", SR_CFG_DURATION, "5m", 60000, 86400000, OFF(rollup_lookback_ms),
     "closed minutes recomputed each time, so rows that arrive late are counted"},
    {"SR_INGEST_PLATFORM_URL", SR_CFG_STR, "", 0, 0, OFF(platform_url),
     "base URL of the platforms' live-data APIs (http:// or https://); empty = no polling"},
    {"SR_INGEST_POLL_ROOMS", SR_CFG_STR, "", 0, 0, OFF(poll_rooms),
     "rooms to poll: \"douyin:ROOM,channels:ROOM,kuaishou:ROOM\", or \"discover\" for every "
     "room listed by GET <url>/rooms (at start-up and every minute)"},
    {"SR_INGEST_POLL_INTERVAL", SR_CFG_DURATION, "3s", 10, 3600000, OFF(poll_interval_ms),
     "how often each room is polled"},
    {"SR_INGEST_POLL_TIMEOUT", SR_CFG_DURATION, "2s", 10, 600000, OFF(poll_timeout_ms),
     "one platform request, connecting included"},
    {"SR_INGEST_PLATFORM_TOKEN", SR_CFG_SECRET, "", 0, 0, OFF(platform_token),
     "sent to the platforms as \"Authorization: Bearer <token>\"; never logged"},
    {NULL},
};

typedef struct {
    uint8_t id[256]; /* ZeroMQ routing ids are at most 255 bytes */
    size_t id_len;
    sr_arena_t *arena;  /* holds batch */
    size_t arena_chunk; /* its usual chunk size, for the pool */
    Sr__CollectorBatch *batch;
    size_t rows;
    int is_new; /* set during a flush: not in metrics.batches before; always for polled */
    int polled; /* samples from ingestd_sources: no collector, no batches row, no ack */
} entry_t;

typedef enum { REJ_GARBAGE, REJ_OVERSIZE, REJ_INVALID, REJ_FRAMES, REJ_REASONS } reject_t;
typedef enum { RES_STORED, RES_DUPLICATE, RES_REJECTED, RES_BUSY, RES_RESULTS } result_t;

/* an idle (reset) arena and its usual chunk size */
typedef struct {
    sr_arena_t *arena;
    size_t chunk;
} pooled_t;

typedef struct {
    sr_service_t *svc;
    const ingestd_config_t *cfg;
    sr_db_t *db;
    void *router;
    int flush_timer;
    entry_t *queue;
    size_t count, cap, queued_rows;
    pooled_t pool[ARENA_POOL_MAX]; /* creating and freeing a big arena per batch cost page faults */
    size_t pooled;
    ingestd_copy_t *copy;
    ingestd_publish_t *publish;
    ingestd_sources_t *sources;
    char *arrays[3]; /* reused array literals for the batch INSERT */
    size_t array_len[3], array_cap[3];
    size_t flushing; /* batches at the head of the queue in the flush in progress */
    sr_complaint_t db_down, upkeep_down;
    int64_t rollup_at_ms;
    char flush_error[256];               /* why the last flush failed, "step=... err=..." */
    int64_t partitions_due_ms;           /* next partition upkeep (monotonic) */
    uint64_t table_rows[INGESTD_TABLES]; /* rows of the flush in progress */
    sr_counter_t *rejected[REJ_REASONS], *results[RES_RESULTS], *rows[INGESTD_TABLES];
    sr_counter_t *flush_failures, *publish_failures, *rollup_rows, *rollup_failures,
        *partition_failures;
    sr_histogram_t *flush_seconds;
    sr_gauge_t *queue_rows;
} ingestd_t;

static const char *s_reject_names[REJ_REASONS] = {"garbage", "oversize", "invalid", "frames"};
static const char *s_result_names[RES_RESULTS] = {"stored", "duplicate", "rejected", "busy"};

/* s_ack - answer one batch; a peer that went away is ZeroMQ's to drop (no ROUTER_MANDATORY) */
static void s_ack(ingestd_t *self, const uint8_t *id, size_t id_len, const char *collector_id,
                  uint64_t seq, Sr__AckStatus status, const char *error, uint32_t rows)
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

static void s_reject(ingestd_t *self, const zmq_msg_t *id, reject_t reason,
                     const Sr__CollectorBatch *batch, const char *error)
{
    sr_counter_inc(self->rejected[reason]);
    sr_counter_inc(self->results[RES_REJECTED]);
    sr_debug("ingest_batch_rejected", "reason=%s error=\"%s\"", s_reject_names[reason], error);
    s_ack(self, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size(id), batch ? batch->collector_id : NULL,
          batch ? batch->batch_seq : 0, SR__ACK_STATUS__ACK_STATUS_REJECTED, error, 0);
}

/* s_arena_get - an idle arena whose usual chunk holds chunk bytes, or a new one */
static sr_arena_t *s_arena_get(ingestd_t *self, size_t chunk, size_t *chunk_out)
{
    for (size_t i = self->pooled; i-- > 0;) {
        if (self->pool[i].chunk >= chunk) {
            sr_arena_t *arena = self->pool[i].arena;
            *chunk_out = self->pool[i].chunk;
            self->pool[i] = self->pool[--self->pooled];
            return arena;
        }
    }
    *chunk_out = chunk;
    return sr_arena_new(chunk);
}

/* s_arena_put - reset an arena into the pool; a full pool swaps out its smallest arena for a
 * larger one, so the pool drifts towards the batch sizes actually seen */
static void s_arena_put(ingestd_t *self, sr_arena_t **arena_p, size_t chunk)
{
    if (!*arena_p)
        return;
    size_t slot = self->pooled;
    if (self->pooled == ARENA_POOL_MAX) {
        slot = 0;
        for (size_t i = 1; i < self->pooled; i++)
            if (self->pool[i].chunk < self->pool[slot].chunk)
                slot = i;
        if (self->pool[slot].chunk >= chunk) {
            sr_arena_destroy(arena_p);
            return;
        }
        sr_arena_destroy(&self->pool[slot].arena);
    } else
        self->pooled++;
    sr_arena_reset(*arena_p);
    self->pool[slot] = (pooled_t){*arena_p, chunk};
    *arena_p = NULL;
}

static void s_entry_free(ingestd_t *self, entry_t *e)
{
    s_arena_put(self, &e->arena, e->arena_chunk);
    e->batch = NULL;
}

/* s_requeued - a resend of a batch still queued (PostgreSQL slow or down): keep one copy and
 * answer the newest sender, whose routing id may have changed on reconnect */
static int s_requeued(ingestd_t *self, const zmq_msg_t *id, const Sr__CollectorBatch *batch)
{
    for (size_t i = self->count; i-- > 0;) {
        entry_t *e = &self->queue[i];
        if (!e->polled && e->batch->batch_seq == batch->batch_seq &&
            strcmp(e->batch->collector_id, batch->collector_id) == 0) {
            e->id_len = zmq_msg_size(id) < sizeof e->id ? zmq_msg_size(id) : sizeof e->id;
            memcpy(e->id, zmq_msg_data((zmq_msg_t *)id), e->id_len);
            return 1;
        }
    }
    return 0;
}

/* s_push - a new zeroed entry at the tail of the queue */
static entry_t *s_push(ingestd_t *self)
{
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 256;
        self->queue = sr_realloc(self->queue, self->cap * sizeof *self->queue);
    }
    entry_t *e = &self->queue[self->count++];
    memset(e, 0, sizeof *e);
    return e;
}

/* s_take - check one received batch and queue it, or answer it at once */
static void s_take(ingestd_t *self, zmq_msg_t *id, zmq_msg_t *body)
{
    size_t len = zmq_msg_size(body);
    if ((int64_t)len > self->cfg->max_batch_bytes) {
        s_reject(self, id, REJ_OVERSIZE, NULL, "batch larger than SR_INGEST_MAX_BATCH");
        return;
    }
    /* a power of two, so batches of about the same size fit each other's pooled arenas */
    size_t chunk = POLLED_ARENA_CHUNK;
    while (chunk < len * 2 + 1024 && chunk < ARENA_CHUNK_MAX)
        chunk *= 2;
    sr_arena_t *arena = s_arena_get(self, chunk, &chunk);
    Sr__CollectorBatch *batch =
        sr__collector_batch__unpack(sr_arena_pb_allocator(arena), len, zmq_msg_data(body));
    if (!batch) {
        s_arena_put(self, &arena, chunk);
        s_reject(self, id, REJ_GARBAGE, NULL, "not a CollectorBatch");
        return;
    }
    char err[160];
    if (ingestd_batch_check(batch, err, sizeof err) < 0) {
        s_reject(self, id, REJ_INVALID, batch, err);
        s_arena_put(self, &arena, chunk);
        return;
    }
    if (s_requeued(self, id, batch)) {
        s_arena_put(self, &arena, chunk);
        return;
    }
    size_t rows = batch->n_samples + batch->n_orders + batch->n_interactions;
    if (rows > (uint64_t)self->cfg->queue_max_rows) { /* BUSY would never end */
        s_reject(self, id, REJ_INVALID, batch, "more rows than SR_INGEST_QUEUE_MAX_ROWS");
        s_arena_put(self, &arena, chunk);
        return;
    }
    if (self->queued_rows + rows > (uint64_t)self->cfg->queue_max_rows) {
        sr_counter_inc(self->results[RES_BUSY]);
        s_ack(self, zmq_msg_data(id), zmq_msg_size(id), batch->collector_id, batch->batch_seq,
              SR__ACK_STATUS__ACK_STATUS_BUSY, "queue full", 0);
        s_arena_put(self, &arena, chunk);
        return;
    }
    entry_t *e = s_push(self);
    e->id_len = zmq_msg_size(id) < sizeof e->id ? zmq_msg_size(id) : sizeof e->id;
    memcpy(e->id, zmq_msg_data(id), e->id_len);
    e->arena = arena;
    e->arena_chunk = chunk;
    e->batch = batch;
    e->rows = rows;
    self->queued_rows += rows;
    sr_gauge_set(self->queue_rows, (double)self->queued_rows);
}

int ingestd_enqueue_sample(sr_service_t *svc, const Sr__RoomSample *sample)
{
    ingestd_t *self = sr_service_state(svc);
    if (self->queued_rows + 1 > (uint64_t)self->cfg->queue_max_rows)
        return -1;
    entry_t *e = self->count ? &self->queue[self->count - 1] : NULL;
    if (!e || !e->polled || e->batch->n_samples == POLLED_PER_ENTRY) {
        e = s_push(self);
        e->arena = s_arena_get(self, POLLED_ARENA_CHUNK, &e->arena_chunk);
        e->polled = 1;
        e->batch = sr_arena_alloc(e->arena, sizeof *e->batch);
        sr__collector_batch__init(e->batch);
        e->batch->samples = sr_arena_alloc(e->arena, POLLED_PER_ENTRY * sizeof *e->batch->samples);
    }
    Sr__RoomSample *copy = sr_arena_alloc(e->arena, sizeof *copy);
    *copy = *sample;
    copy->room_id = sr_arena_strdup(e->arena, sample->room_id);
    copy->session_id = sr_arena_strdup(e->arena, sample->session_id);
    e->batch->samples[e->batch->n_samples++] = copy;
    e->rows++;
    self->queued_rows++;
    sr_gauge_set(self->queue_rows, (double)self->queued_rows);
    return 0;
}

/* s_array_put - append text to one of the reused array literals */
static void s_array_put(ingestd_t *self, int which, const char *text, size_t n)
{
    if (self->array_len[which] + n + 1 > self->array_cap[which]) {
        while (self->array_len[which] + n + 1 > self->array_cap[which])
            self->array_cap[which] *= 2;
        self->arrays[which] = sr_realloc(self->arrays[which], self->array_cap[which]);
    }
    memcpy(self->arrays[which] + self->array_len[which], text, n);
    self->array_len[which] += n;
    self->arrays[which][self->array_len[which]] = '\0';
}

/* s_array_add - one element of a PostgreSQL array literal, quoted and escaped */
static void s_array_add(ingestd_t *self, int which, const char *value)
{
    s_array_put(self, which, self->array_len[which] > 1 ? ",\"" : "\"",
                self->array_len[which] > 1 ? 2 : 1);
    for (const char *v = value; *v; v++) {
        if (*v == '"' || *v == '\\')
            s_array_put(self, which, "\\", 1);
        s_array_put(self, which, v, 1);
    }
    s_array_put(self, which, "\"", 1);
}

/* s_copy_table - COPY the rows of one table from the new batches among the first n */
static int s_copy_table(ingestd_t *self, PGconn *conn, ingestd_table_t table, size_t n)
{
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        const Sr__CollectorBatch *b = self->queue[i].batch;
        if (self->queue[i].is_new)
            rows += table == INGESTD_TABLE_SAMPLES  ? b->n_samples
                    : table == INGESTD_TABLE_ORDERS ? b->n_orders
                                                    : b->n_interactions;
    }
    if (rows == 0)
        return 0;
    PGresult *res = PQexec(conn, ingestd_copy_sql(table));
    int started = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!started)
        return -1;
    ingestd_copy_header(self->copy);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Sr__CollectorBatch *b = self->queue[i].batch;
        if (!self->queue[i].is_new)
            continue;
        if (table == INGESTD_TABLE_SAMPLES)
            for (size_t r = 0; r < b->n_samples; r++)
                ingestd_copy_sample(self->copy, b->samples[r]);
        else if (table == INGESTD_TABLE_ORDERS)
            for (size_t r = 0; r < b->n_orders; r++)
                ingestd_copy_order(self->copy, b->orders[r]);
        else
            for (size_t r = 0; r < b->n_interactions; r++)
                ingestd_copy_interaction(self->copy, b->interactions[r]);
        size_t len;
        ingestd_copy_data(self->copy, &len);
        if (len >= COPY_SEND_BYTES)
            rc = ingestd_copy_send(self->copy, conn);
    }
    ingestd_copy_trailer(self->copy);
    if (rc == 0)
        rc = ingestd_copy_send(self->copy, conn);
    if (PQputCopyEnd(conn, rc == 0 ? NULL : "ingestd: sending failed") != 1)
        rc = -1;
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = -1;
        PQclear(res);
    }
    if (rc == 0)
        self->table_rows[table] = rows;
    return rc;
}

/* s_mark_new - the batch among the first n matching a returned id, not marked before */
static void s_mark_new(ingestd_t *self, size_t n, const char *collector_id, uint64_t seq)
{
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &self->queue[i];
        if (!e->polled && !e->is_new && e->batch->batch_seq == seq &&
            strcmp(e->batch->collector_id, collector_id) == 0) {
            e->is_new = 1;
            return;
        }
    }
}

/* s_flush_error - remember why a flush failed, as one log-safe line, for the complaint */
static void s_flush_error(ingestd_t *self, const char *step, const char *err)
{
    int n = snprintf(self->flush_error, sizeof self->flush_error, "step=%s err=\"", step);
    for (const char *p = err; *p && n < (int)sizeof self->flush_error - 2; p++)
        self->flush_error[n++] = *p == '"' ? '\'' : *p == '\n' ? ' ' : *p;
    self->flush_error[n++] = '"';
    self->flush_error[n] = '\0';
}

/* s_flush_tx - inside BEGIN/COMMIT: record the batch ids, learn which are new, COPY their
 * rows. A resent batch already in metrics.batches (or twice in this flush) copies nothing. */
static int s_flush_tx(sr_db_t *db, void *arg)
{
    ingestd_t *self = arg;
    size_t n = 0, rows = 0;
    while (n < self->count && n < FLUSH_BATCHES_MAX && rows < (size_t)self->cfg->flush_rows)
        rows += self->queue[n++].rows;
    for (int a = 0; a < 3; a++) {
        self->array_len[a] = 0;
        s_array_put(self, a, "{", 1);
    }
    char num[32];
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &self->queue[i];
        e->is_new = e->polled;
        if (e->polled)
            continue;
        s_array_add(self, 0, e->batch->collector_id);
        snprintf(num, sizeof num, "%llu", (unsigned long long)e->batch->batch_seq);
        s_array_add(self, 1, num);
        snprintf(num, sizeof num, "%zu", e->rows);
        s_array_add(self, 2, num);
    }
    for (int a = 0; a < 3; a++)
        s_array_put(self, a, "}", 1);
    const char *params[3] = {self->arrays[0], self->arrays[1], self->arrays[2]};
    PGresult *res = sr_db_run(db, "ingest_batches", 3, params);
    if (!res) {
        s_flush_error(self, "batches", sr_db_error(db));
        return -1;
    }
    for (int r = 0; r < PQntuples(res); r++)
        s_mark_new(self, n, PQgetvalue(res, r, 0), strtoull(PQgetvalue(res, r, 1), NULL, 10));
    PQclear(res);
    memset(self->table_rows, 0, sizeof self->table_rows);
    for (int t = 0; t < INGESTD_TABLES; t++) {
        if (s_copy_table(self, sr_db_conn(db), (ingestd_table_t)t, n) < 0) {
            s_flush_error(self, ingestd_copy_table_name((ingestd_table_t)t),
                          PQerrorMessage(sr_db_conn(db)));
            return -1;
        }
    }
    self->flushing = n;
    return 0;
}

/* s_order_topic - "order.<status>" of an OrderEvent, NULL for an unspecified status */
static const char *s_order_topic(Sr__OrderStatus status)
{
    switch (status) {
    case SR__ORDER_STATUS__ORDER_STATUS_CREATED:
        return "order.created";
    case SR__ORDER_STATUS__ORDER_STATUS_PAID:
        return "order.paid";
    case SR__ORDER_STATUS__ORDER_STATUS_CANCELLED:
        return "order.cancelled";
    case SR__ORDER_STATUS__ORDER_STATUS_REFUNDED:
        return "order.refunded";
    default: /* stored, but no consumer can act on an order without a status */
        return NULL;
    }
}

/* s_publish - metric.room for the newest sample of each room in the stored batches, and every
 * stored order as order.<status> in the order the batches came */
static void s_publish(ingestd_t *self, size_t n)
{
    sr_bus_pub_t *pub = sr_service_pub(self->svc);
    if (!pub)
        return;
    int64_t now = sr_clock_mono_ms();
    for (size_t i = n; i-- > 0;) {
        const Sr__CollectorBatch *b = self->queue[i].batch;
        if (!self->queue[i].is_new)
            continue;
        for (size_t r = b->n_samples; r-- > 0;) {
            if (!ingestd_publish_due(self->publish, b->samples[r], now))
                continue;
            if (sr_bus_publish(pub, "metric.room", &b->samples[r]->base, NULL) < 0)
                sr_counter_inc(self->publish_failures);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const Sr__CollectorBatch *b = self->queue[i].batch;
        for (size_t r = 0; self->queue[i].is_new && r < b->n_orders; r++) {
            const char *topic = s_order_topic(b->orders[r]->status);
            if (topic && sr_bus_publish(pub, topic, &b->orders[r]->base, NULL) < 0)
                sr_counter_inc(self->publish_failures);
        }
    }
}

/* s_flush - one transaction for the head of the queue, then its acks; -1 when it failed and
 * the batches stay queued */
static int s_flush(ingestd_t *self)
{
    if (self->count == 0)
        return 0;
    if (!sr_db_ok(self->db)) {
        sr_complain(&self->db_down, "step=connect queued_batches=%zu queued_rows=%zu", self->count,
                    self->queued_rows);
        return -1;
    }
    int64_t t0 = sr_clock_mono_us();
    self->flush_error[0] = '\0';
    if (sr_db_tx(self->db, s_flush_tx, self) != 0) {
        if (!self->flush_error[0]) /* BEGIN or COMMIT failed */
            s_flush_error(self, "commit", sr_db_error(self->db));
        sr_counter_inc(self->flush_failures);
        sr_complain(&self->db_down, "%s queued_batches=%zu queued_rows=%zu", self->flush_error,
                    self->count, self->queued_rows);
        return -1;
    }
    sr_recovered(&self->db_down);
    sr_histogram_observe(self->flush_seconds, (double)(sr_clock_mono_us() - t0) / 1e6);
    for (int t = 0; t < INGESTD_TABLES; t++)
        sr_counter_add(self->rows[t], self->table_rows[t]);
    size_t n = self->flushing;
    s_publish(self, n);
    for (size_t i = 0; i < n; i++) {
        entry_t *e = &self->queue[i];
        self->queued_rows -= e->rows;
        if (e->polled) {
            s_entry_free(self, e);
            continue;
        }
        sr_counter_inc(self->results[e->is_new ? RES_STORED : RES_DUPLICATE]);
        s_ack(self, e->id, e->id_len, e->batch->collector_id, e->batch->batch_seq,
              e->is_new ? SR__ACK_STATUS__ACK_STATUS_STORED : SR__ACK_STATUS__ACK_STATUS_DUPLICATE,
              NULL, e->is_new ? (uint32_t)e->rows : 0);
        s_entry_free(self, e);
    }
    self->count -= n;
    memmove(self->queue, self->queue + n, self->count * sizeof *self->queue);
    sr_gauge_set(self->queue_rows, (double)self->queued_rows);
    return 0;
}

static void s_flush_all(ingestd_t *self)
{
    while (self->count > 0 && s_flush(self) == 0)
        ;
}

static void s_on_timer(void *arg)
{
    s_flush_all(arg);
}

static void s_on_router(void *arg)
{
    ingestd_t *self = arg;
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
        if (self->queued_rows >= (uint64_t)self->cfg->flush_rows)
            s_flush(self);
    }
}

/* s_partitions - daily partitions ahead, old ones dropped; 0 ok */
static int s_partitions(ingestd_t *self)
{
    char ahead[24], keep[24];
    snprintf(ahead, sizeof ahead, "%lld", (long long)self->cfg->partition_days);
    snprintf(keep, sizeof keep, "%lld", (long long)self->cfg->retention_days);
    const char *params[] = {ahead, keep};
    PGresult *res =
        sr_db_query(self->db, "SELECT metrics.ensure_partitions($1::int, $2::int)", 2, params);
    if (!res) {
        self->partitions_due_ms = sr_clock_mono_ms() + PARTITION_RETRY_MS;
        sr_complain(&self->upkeep_down, "step=partitions err=\"%s\"", sr_db_error(self->db));
        return -1;
    }
    sr_info("ingest_partitions", "changed=%s days_ahead=%s retention_days=%s",
            PQgetvalue(res, 0, 0), ahead, keep);
    PQclear(res);
    self->partitions_due_ms = sr_clock_mono_ms() + PARTITION_EVERY_MS;
    return 0;
}

/* s_rollup - recompute the per-minute rollup of the last closed minutes */
static void s_rollup(ingestd_t *self)
{
    char lookback[24];
    snprintf(lookback, sizeof lookback, "%lld", (long long)self->cfg->rollup_lookback_ms);
    const char *params[] = {lookback};
    PGresult *res = sr_db_run(self->db, "ingest_rollup", 1, params);
    self->rollup_at_ms = sr_clock_mono_ms();
    if (!res) {
        sr_counter_inc(self->rollup_failures);
        sr_complain(&self->upkeep_down, "step=rollup err=\"%s\"", sr_db_error(self->db));
        return;
    }
    sr_recovered(&self->upkeep_down);
    sr_counter_add(self->rollup_rows, strtoull(PQgetvalue(res, 0, 0), NULL, 10));
    PQclear(res);
}

static void s_register_metrics(ingestd_t *self)
{
    sr_metrics_t *m = sr_service_metrics(self->svc);
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
    for (int t = 0; t < INGESTD_TABLES; t++) {
        snprintf(labels, sizeof labels, "table=\"%s\"", ingestd_copy_table_name(t));
        self->rows[t] =
            sr_metrics_counter(m, "sr_ingest_rows_total", labels, "rows committed, by table");
    }
    self->flush_failures =
        sr_metrics_counter(m, "sr_ingest_flush_failures_total", NULL, "flush transactions failed");
    self->publish_failures = sr_metrics_counter(m, "sr_ingest_publish_failures_total", NULL,
                                                "metric.room and order.* messages not sent");
    self->rollup_rows = sr_metrics_counter(m, "sr_ingest_rollup_rows_total", NULL,
                                           "metrics.room_minutes rows written (recomputed too)");
    self->rollup_failures =
        sr_metrics_counter(m, "sr_ingest_rollup_failures_total", NULL, "rollup runs failed");
    self->partition_failures = sr_metrics_counter(m, "sr_ingest_partition_failures_total", NULL,
                                                  "partition upkeep runs failed");
    self->flush_seconds =
        sr_metrics_histogram(m, "sr_ingest_flush_seconds", NULL, "duration of flush transactions",
                             sr_metrics_latency_bounds, sr_metrics_latency_nbounds);
    self->queue_rows =
        sr_metrics_gauge(m, "sr_ingest_queue_rows", NULL, "rows waiting for PostgreSQL");
}

int ingestd_init(sr_service_t *svc)
{
    ingestd_t *self = sr_calloc(1, sizeof *self);
    sr_service_set_state(svc, self);
    self->svc = svc;
    self->cfg = sr_service_config(svc);
    self->db = sr_service_db(svc);
    self->copy = ingestd_copy_new();
    self->publish = ingestd_publish_new(PUBLISH_INTERVAL_MS);
    self->db_down = (sr_complaint_t)SR_COMPLAINT_INIT("ingest.flush");
    for (int a = 0; a < 3; a++) {
        self->array_cap[a] = 4096;
        self->arrays[a] = sr_malloc(self->array_cap[a]);
    }
    s_register_metrics(self);
    self->upkeep_down = (sr_complaint_t)SR_COMPLAINT_INIT("ingest.upkeep");
    if (sr_db_prepare(self->db, "ingest_batches", BATCH_INSERT_SQL, 3) < 0 ||
        sr_db_prepare(self->db, "ingest_rollup", ROLLUP_SQL, 1) < 0 || s_partitions(self) < 0)
        return -1;
    const sr_common_config_t *cc = sr_service_common(svc);
    int64_t max_msg = self->cfg->max_batch_bytes * 2;
    self->router = zmq_socket(sr_service_zctx(svc), ZMQ_ROUTER);
    if (!self->router || sr_bus_limit_socket(self->router, (int)cc->bus_hwm, max_msg) < 0 ||
        zmq_bind(self->router, self->cfg->collector_bind) < 0) {
        sr_error("ingest_bind_failed", "endpoint=%s err=\"%s\"", self->cfg->collector_bind,
                 zmq_strerror(errno));
        return -1;
    }
    if (sr_loop_add_socket(sr_service_loop(svc), self->router, s_on_router, self) < 0)
        return -1;
    self->flush_timer =
        sr_loop_add_timer(sr_service_loop(svc), self->cfg->flush_interval_ms, 1, s_on_timer, self);
    if (self->flush_timer <= 0)
        return -1;
    sr_info("ingest_listening", "endpoint=%s", self->cfg->collector_bind);
    if (self->cfg->platform_url[0] && !(self->sources = ingestd_sources_new(svc)))
        return -1;
    return 0;
}

void ingestd_cron(sr_service_t *svc)
{
    ingestd_t *self = sr_service_state(svc);
    s_flush_all(self);
    int64_t now = sr_clock_mono_ms();
    if (now >= self->partitions_due_ms && sr_db_ok(self->db) && s_partitions(self) < 0)
        sr_counter_inc(self->partition_failures);
    if (now - self->rollup_at_ms >= self->cfg->rollup_interval_ms && sr_db_ok(self->db))
        s_rollup(self);
}

int ingestd_drain(sr_service_t *svc)
{
    ingestd_t *self = sr_service_state(svc);
    s_flush_all(self);
    return self->count == 0 || !sr_db_ok(self->db);
}

void ingestd_fini(sr_service_t *svc)
{
    ingestd_t *self = sr_service_state(svc);
    if (!self)
        return;
    ingestd_sources_destroy(&self->sources);
    if (self->flush_timer > 0)
        sr_loop_cancel_timer(sr_service_loop(svc), self->flush_timer);
    if (self->router) {
        sr_loop_remove_socket(sr_service_loop(svc), self->router);
        zmq_close(self->router);
    }
    if (self->count)
        sr_info("ingest_unflushed", "batches=%zu rows=%zu (collectors resend them)", self->count,
                self->queued_rows);
    for (size_t i = 0; i < self->count; i++)
        s_entry_free(self, &self->queue[i]);
    free(self->queue);
    for (size_t i = 0; i < self->pooled; i++)
        sr_arena_destroy(&self->pool[i].arena);
    for (int a = 0; a < 3; a++)
        free(self->arrays[a]);
    ingestd_copy_destroy(&self->copy);
    ingestd_publish_destroy(&self->publish);
    free(self);
    sr_service_set_state(svc, NULL);
}
