/* ingestd_queue - the memory queue, flush units, the spool and its replay, publishing.
 *
 * Entries wait in the queue in arrival order. A unit is the head of the queue, up to
 * SR_INGEST_FLUSH_ROWS rows, handed to an idle writer when that many rows wait, on the flush
 * timer, and as soon as a writer finishes (so a busy database gets bigger transactions, not a
 * backlog). When a unit is done: collector batches are acked STORED or DUPLICATE, metric.room
 * and order.* go out, the arenas go back to a small pool. A failed unit is kept and retried on
 * the flush timer, one transaction at a time, until the database answers again.
 *
 * Spool: with the queue full and the last transaction failed, further batches are written to
 * the spool file instead (collector batches acked SPOOLED, their bytes written as received;
 * local batches - polled samples, pushed interactions - get a batch id of the spool's own,
 * "ingestd-spool@<instance>" and a sequence from the wall clock, so their replay is exactly-once
 * too). While the spool holds anything, new batches go to its end. Once the database is back
 * and the queue is nearly empty, records are read back into the queue in order; when every
 * record read has been committed, the file is emptied. Full spool = BUSY for collectors, a
 * counted drop for local rows.
 *
 * Local rows gather in one open entry of up to LOCAL_PER_ENTRY rows, closed on the flush timer;
 * a crash loses at most that entry and the queued local rows (collectors resend their own).
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OFF(field)          offsetof(ingestd_config_t, field)
#define FLUSH_BATCHES_MAX   1000 /* batches per transaction */
#define ARENA_POOL_MAX      4    /* idle arenas kept for reuse: at most 16 MB in reserve */
#define LOCAL_ARENA_CHUNK   16384
#define LOCAL_PER_ENTRY     256 /* local rows gathered into one queue entry */
#define PUBLISH_INTERVAL_MS 1000
#define SPOOL_SYNC_MS       1000

const sr_config_entry_t ingestd_config[] = {
    {"SR_INGEST_COLLECTOR_BIND", SR_CFG_STR, "tcp://127.0.0.1:7620", 0, 0, OFF(collector_bind),
     "ROUTER bind where collectors send batches (proto/collector.proto)"},
    {"SR_INGEST_FLUSH_ROWS", SR_CFG_INT, "5000", 1, 10000000, OFF(flush_rows),
     "rows per flush transaction at most; a flush starts once this many wait"},
    {"SR_INGEST_FLUSH_INTERVAL", SR_CFG_DURATION, "200ms", 1, 60000, OFF(flush_interval_ms),
     "flush what waits at least this often"},
    {"SR_INGEST_WRITERS", SR_CFG_INT, "2", 1, 16, OFF(writers),
     "writer threads, each with its own PostgreSQL connection and transaction in flight"},
    {"SR_INGEST_QUEUE_MAX_ROWS", SR_CFG_INT, "1000000", 1, 1000000000, OFF(queue_max_rows),
     "rows held in memory (e.g. while PostgreSQL is down) before batches go to the spool"},
    {"SR_INGEST_MAX_BATCH", SR_CFG_SIZE, "16M", 1024, 1073741824, OFF(max_batch_bytes),
     "largest packed batch accepted; larger ones are rejected (oversize)"},
    {"SR_INGEST_SPOOL_DIR", SR_CFG_STR, "/var/lib/showrunner/spool", 0, 0, OFF(spool_dir),
     "folder of the spool file ingestd-<instance>.spool (created when missing)"},
    {"SR_INGEST_SPOOL_MAX", SR_CFG_SIZE, "1G", 0, 1099511627776LL, OFF(spool_max_bytes),
     "spool file size at most, then collectors are answered BUSY; 0 = no spool"},
    {"SR_INGEST_SPOOL_FSYNC", SR_CFG_STR, "always", 0, 0, OFF(spool_fsync),
     "always (fdatasync before a spooled batch is acked), second (at most a second later) or "
     "never (the kernel decides)"},
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
    {"SR_INGEST_PUSH_BIND", SR_CFG_STR, "", 0, 0, OFF(push_bind),
     "ADDR:PORT of the HTTP endpoint for Douyin live interaction pushes; empty = none"},
    {"SR_INGEST_PUSH_SECRET", SR_CFG_SECRET, "", 0, 0, OFF(push_secret),
     "checks each push's x-signature (see README); empty = unsigned pushes accepted"},
    {"SR_INGEST_RPC_BIND", SR_CFG_STR, "tcp://127.0.0.1:7640", 0, 0, OFF(rpc_bind),
     "ROUTER bind of the room registry methods (metrics.room.*, for sr-gatewayd); empty = none"},
    {NULL},
};

/* an idle (reset) arena and its usual chunk size */
typedef struct {
    sr_arena_t *arena;
    size_t chunk;
} pooled_t;

struct ingestd_t {
    sr_service_t *svc;
    const ingestd_config_t *cfg;
    ingestd_collector_t *collector;
    ingestd_writer_t *writer;
    ingestd_spool_t *spool;
    ingestd_upkeep_t *upkeep;
    ingestd_publish_t *publish;
    ingestd_sources_t *sources;
    ingestd_push_t *push;
    ingestd_rooms_t *rooms;
    ingestd_entry_t *queue; /* waiting, not in a unit */
    size_t count, cap;
    size_t waiting_rows; /* rows in the queue */
    size_t held_rows;    /* rows in the queue, in flight and in failed units */
    ingestd_entry_t local;
    ingestd_unit_t **failed; /* failed units, oldest first */
    size_t nfailed, failed_cap;
    ingestd_unit_t **flying; /* units in a writer's hands */
    size_t inflight, flying_cap;
    size_t replaying; /* spool records read and not committed yet */
    int db_down;      /* the last transaction failed */
    int flush_timer, sync_timer;
    char spool_id[160];
    uint64_t spool_seq;
    pooled_t pool[ARENA_POOL_MAX]; /* creating and freeing a big arena per batch cost page faults */
    size_t pooled;
    uint8_t *pack_buf;
    size_t pack_cap;
    sr_complaint_t db_complaint, spool_complaint;
    sr_counter_t *rows[INGESTD_TABLES], *flush_failures, *publish_failures, *spooled_rows,
        *replayed_rows, *spool_failures, *spool_cut_bytes, *local_dropped;
    sr_histogram_t *flush_seconds;
    sr_gauge_t *queue_rows, *spool_bytes;
};

/* --- arenas and entries ------------------------------------------------------------------- */

sr_arena_t *ingestd_queue_arena(ingestd_t *self, size_t chunk, size_t *chunk_out)
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

/* ingestd_queue_release - reset the entry's arena into the pool; a full pool swaps out its
 * smallest arena for a larger one, so the pool drifts towards the batch sizes actually seen */
void ingestd_queue_release(ingestd_t *self, ingestd_entry_t *e)
{
    e->batch = NULL;
    if (!e->arena)
        return;
    size_t slot = self->pooled;
    if (self->pooled == ARENA_POOL_MAX) {
        slot = 0;
        for (size_t i = 1; i < self->pooled; i++)
            if (self->pool[i].chunk < self->pool[slot].chunk)
                slot = i;
        if (self->pool[slot].chunk >= e->arena_chunk) {
            sr_arena_destroy(&e->arena);
            return;
        }
        sr_arena_destroy(&self->pool[slot].arena);
    } else
        self->pooled++;
    sr_arena_reset(e->arena);
    self->pool[slot] = (pooled_t){e->arena, e->arena_chunk};
    e->arena = NULL;
}

static void s_gauges(ingestd_t *self)
{
    sr_gauge_set(self->queue_rows, (double)self->held_rows);
    if (self->spool)
        sr_gauge_set(self->spool_bytes, (double)ingestd_spool_bytes(self->spool));
}

static void s_push(ingestd_t *self, const ingestd_entry_t *e)
{
    if (self->count == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 256;
        self->queue = sr_realloc(self->queue, self->cap * sizeof *self->queue);
    }
    self->queue[self->count++] = *e;
    self->waiting_rows += e->rows;
    self->held_rows += e->rows;
}

static int s_same_batch(const ingestd_entry_t *e, const Sr__CollectorBatch *b)
{
    return e->origin == INGESTD_FROM_COLLECTOR && e->batch->batch_seq == b->batch_seq &&
           strcmp(e->batch->collector_id, b->collector_id) == 0;
}

static void s_take_id(ingestd_entry_t *e, const uint8_t *id, size_t id_len)
{
    e->id_len = id_len < sizeof e->id ? id_len : sizeof e->id;
    memcpy(e->id, id, e->id_len);
}

/* s_requeued_in - s_take_id on the entry of units[0..n-1] that holds batch; 1 when one does */
static int s_requeued_in(ingestd_unit_t **units, size_t n, const uint8_t *id, size_t id_len,
                         const Sr__CollectorBatch *batch)
{
    for (size_t u = 0; u < n; u++)
        for (size_t i = 0; i < units[u]->count; i++)
            if (s_same_batch(&units[u]->entries[i], batch)) {
                s_take_id(&units[u]->entries[i], id, id_len);
                return 1;
            }
    return 0;
}

int ingestd_queue_requeued(ingestd_t *self, const uint8_t *id, size_t id_len,
                           const Sr__CollectorBatch *batch)
{
    for (size_t i = self->count; i-- > 0;)
        if (s_same_batch(&self->queue[i], batch)) {
            s_take_id(&self->queue[i], id, id_len);
            return 1;
        }
    /* a writer reads an entry's batch, never its routing id: the loop thread may change that */
    return s_requeued_in(self->failed, self->nfailed, id, id_len, batch) ||
           s_requeued_in(self->flying, self->inflight, id, id_len, batch);
}

/* --- the spool ---------------------------------------------------------------------------- */

static int s_spool_active(const ingestd_t *self)
{
    return self->spool && ingestd_spool_bytes(self->spool) > 0;
}

/* s_spool_wanted - 1 when rows more go to the spool: it holds something already (order), or
 * the database is down and the queue is full */
static int s_spool_wanted(const ingestd_t *self, size_t rows)
{
    return self->spool &&
           (s_spool_active(self) ||
            (self->db_down && self->held_rows + rows > (uint64_t)self->cfg->queue_max_rows));
}

static int s_spool_write(ingestd_t *self, const uint8_t *data, size_t len, size_t rows)
{
    if (ingestd_spool_append(self->spool, data, len) < 0) {
        if (errno != ENOSPC) {
            sr_counter_inc(self->spool_failures);
            sr_complain(&self->spool_complaint, "file=%s err=\"%s\"",
                        ingestd_spool_path(self->spool), strerror(errno));
        }
        return -1;
    }
    sr_recovered(&self->spool_complaint);
    sr_counter_add(self->spooled_rows, rows);
    s_gauges(self);
    return 0;
}

/* s_spool_entry - write a local entry to the spool under an id of the spool's own */
static int s_spool_entry(ingestd_t *self, ingestd_entry_t *e)
{
    uint64_t now = (uint64_t)sr_clock_now_us();
    self->spool_seq = now > self->spool_seq ? now : self->spool_seq + 1;
    e->batch->collector_id = self->spool_id;
    e->batch->batch_seq = self->spool_seq;
    size_t len = sr__collector_batch__get_packed_size(e->batch);
    if (len > self->pack_cap) {
        self->pack_cap = len;
        self->pack_buf = sr_realloc(self->pack_buf, len);
    }
    sr__collector_batch__pack(e->batch, self->pack_buf);
    return s_spool_write(self, self->pack_buf, len, e->rows);
}

ingestd_admit_t ingestd_queue_admit(ingestd_t *self, ingestd_entry_t *e, const uint8_t *packed,
                                    size_t packed_len)
{
    if (s_spool_wanted(self, e->rows))
        return s_spool_write(self, packed, packed_len, e->rows) == 0 ? INGESTD_SPOOLED
                                                                     : INGESTD_FULL;
    if (self->held_rows + e->rows > (uint64_t)self->cfg->queue_max_rows)
        return INGESTD_FULL;
    s_push(self, e);
    s_gauges(self);
    return INGESTD_QUEUED;
}

/* s_replay - read spool records into the queue while it is nearly empty and the database up */
static void s_replay(ingestd_t *self)
{
    while (self->spool && !self->db_down && ingestd_spool_unread(self->spool) > 0 &&
           self->waiting_rows < (uint64_t)self->cfg->flush_rows * 2 &&
           self->held_rows < (uint64_t)self->cfg->queue_max_rows) {
        const uint8_t *data;
        int64_t len = ingestd_spool_next(self->spool, &data);
        if (len <= 0)
            break;
        ingestd_entry_t e = {0};
        e.origin = INGESTD_FROM_SPOOL;
        e.arena = ingestd_queue_arena(self, (size_t)len * 2 + 1024, &e.arena_chunk);
        e.batch = sr__collector_batch__unpack(sr_arena_pb_allocator(e.arena), (size_t)len, data);
        if (!e.batch) { /* checksummed, so written by a different build: keep going */
            sr_counter_inc(self->spool_failures);
            sr_error("ingest_spool_record_unreadable", "file=%s bytes=%lld",
                     ingestd_spool_path(self->spool), (long long)len);
            ingestd_queue_release(self, &e);
            continue;
        }
        e.rows = e.batch->n_samples + e.batch->n_orders + e.batch->n_interactions;
        s_push(self, &e);
        self->replaying++;
    }
}

/* s_spool_done - empty the spool once everything in it is committed */
static void s_spool_done(ingestd_t *self)
{
    if (!s_spool_active(self) || self->replaying > 0 || ingestd_spool_unread(self->spool) > 0)
        return;
    if (ingestd_spool_reset(self->spool) < 0) {
        sr_counter_inc(self->spool_failures);
        sr_complain(&self->spool_complaint, "file=%s step=reset err=\"%s\"",
                    ingestd_spool_path(self->spool), strerror(errno));
        return;
    }
    sr_info("ingest_spool_replayed", "file=%s", ingestd_spool_path(self->spool));
    s_gauges(self);
}

/* --- local rows: polled samples, pushed interactions -------------------------------------- */

/* s_local_close - queue (or spool) the open local entry */
static void s_local_close(ingestd_t *self)
{
    ingestd_entry_t *e = &self->local;
    if (!e->batch)
        return;
    if (s_spool_wanted(self, e->rows)) {
        if (s_spool_entry(self, e) < 0)
            sr_counter_add(self->local_dropped, e->rows);
        ingestd_queue_release(self, e);
    } else if (self->held_rows + e->rows > (uint64_t)self->cfg->queue_max_rows) {
        sr_counter_add(self->local_dropped, e->rows);
        ingestd_queue_release(self, e);
    } else {
        s_push(self, e);
        s_gauges(self);
    }
    memset(e, 0, sizeof *e);
}

/* s_local_room - 1 when one more local row can be taken */
static int s_local_room(ingestd_t *self)
{
    if (s_spool_wanted(self, self->local.rows + 1))
        return ingestd_spool_bytes(self->spool) < (uint64_t)self->cfg->spool_max_bytes;
    return self->held_rows + self->local.rows + 1 <= (uint64_t)self->cfg->queue_max_rows;
}

static Sr__CollectorBatch *s_local_batch(ingestd_t *self)
{
    ingestd_entry_t *e = &self->local;
    if (e->batch && e->rows == LOCAL_PER_ENTRY)
        s_local_close(self);
    if (!e->batch) {
        e->origin = INGESTD_FROM_LOCAL;
        e->arena = ingestd_queue_arena(self, LOCAL_ARENA_CHUNK, &e->arena_chunk);
        e->batch = sr_arena_alloc(e->arena, sizeof *e->batch);
        sr__collector_batch__init(e->batch);
        e->batch->samples = sr_arena_alloc(e->arena, LOCAL_PER_ENTRY * sizeof *e->batch->samples);
        e->batch->interactions =
            sr_arena_alloc(e->arena, LOCAL_PER_ENTRY * sizeof *e->batch->interactions);
    }
    e->rows++;
    return e->batch;
}

int ingestd_enqueue_sample(sr_service_t *svc, const Sr__RoomSample *sample)
{
    ingestd_t *self = sr_service_state(svc);
    if (!s_local_room(self))
        return -1;
    Sr__CollectorBatch *b = s_local_batch(self);
    sr_arena_t *arena = self->local.arena;
    Sr__RoomSample *copy = sr_arena_alloc(arena, sizeof *copy);
    *copy = *sample;
    copy->room_id = sr_arena_strdup(arena, sample->room_id);
    copy->session_id = sr_arena_strdup(arena, sample->session_id);
    b->samples[b->n_samples++] = copy;
    return 0;
}

int ingestd_enqueue_interaction(sr_service_t *svc, const Sr__InteractionEvent *event)
{
    ingestd_t *self = sr_service_state(svc);
    if (!s_local_room(self))
        return -1;
    Sr__CollectorBatch *b = s_local_batch(self);
    sr_arena_t *arena = self->local.arena;
    Sr__InteractionEvent *copy = sr_arena_alloc(arena, sizeof *copy);
    *copy = *event;
    copy->room_id = sr_arena_strdup(arena, event->room_id);
    copy->session_id = sr_arena_strdup(arena, event->session_id);
    copy->text = sr_arena_strdup(arena, event->text);
    copy->user_hash = sr_arena_strdup(arena, event->user_hash);
    b->interactions[b->n_interactions++] = copy;
    return 0;
}

/* --- units -------------------------------------------------------------------------------- */

static void s_unit_free(ingestd_unit_t *unit)
{
    free(unit->entries);
    free(unit);
}

/* s_unit_take - the head of the queue as a new unit */
static ingestd_unit_t *s_unit_take(ingestd_t *self)
{
    size_t n = 0, rows = 0;
    while (n < self->count && n < FLUSH_BATCHES_MAX && rows < (size_t)self->cfg->flush_rows)
        rows += self->queue[n++].rows;
    ingestd_unit_t *unit = sr_calloc(1, sizeof *unit);
    unit->entries = sr_malloc(n * sizeof *unit->entries);
    memcpy(unit->entries, self->queue, n * sizeof *unit->entries);
    unit->count = n;
    unit->rows = rows;
    self->count -= n;
    memmove(self->queue, self->queue + n, self->count * sizeof *self->queue);
    self->waiting_rows -= rows;
    return unit;
}

static void s_submit(ingestd_t *self, ingestd_unit_t *unit)
{
    if (self->inflight == self->flying_cap) {
        self->flying_cap = self->flying_cap ? self->flying_cap * 2 : 8;
        self->flying = sr_realloc(self->flying, self->flying_cap * sizeof *self->flying);
    }
    self->flying[self->inflight++] = unit;
    ingestd_writer_submit(self->writer, unit); /* callers checked for an idle writer */
}

/* s_retry - hand the oldest failed unit to a writer again */
static void s_retry(ingestd_t *self)
{
    ingestd_unit_t *unit = self->failed[0];
    memmove(self->failed, self->failed + 1, --self->nfailed * sizeof *self->failed);
    s_submit(self, unit);
}

/* s_pump - start transactions: on the timer (force) whatever waits, otherwise only full units.
 * While the database is down only the timer starts one, the oldest failed unit first. */
static void s_pump(ingestd_t *self, int force)
{
    if (self->db_down) {
        if (!force || self->inflight > 0 || ingestd_writer_idle(self->writer) == 0)
            return;
        if (self->nfailed > 0)
            s_retry(self);
        else if (self->count > 0)
            s_submit(self, s_unit_take(self));
        return;
    }
    while (self->nfailed > 0 && ingestd_writer_idle(self->writer) > 0)
        s_retry(self);
    s_replay(self);
    while (self->count > 0 && ingestd_writer_idle(self->writer) > 0 &&
           (force || self->waiting_rows >= (uint64_t)self->cfg->flush_rows)) {
        s_submit(self, s_unit_take(self));
        s_replay(self);
    }
}

void ingestd_queue_kick(ingestd_t *self)
{
    if (self->waiting_rows >= (uint64_t)self->cfg->flush_rows)
        s_pump(self, 0);
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
static void s_publish(ingestd_t *self, const ingestd_unit_t *unit)
{
    sr_bus_pub_t *pub = sr_service_pub(self->svc);
    if (!pub)
        return;
    int64_t now = sr_clock_mono_ms();
    for (size_t i = unit->count; i-- > 0;) {
        const Sr__CollectorBatch *b = unit->entries[i].batch;
        if (!unit->entries[i].is_new)
            continue;
        for (size_t r = b->n_samples; r-- > 0;) {
            if (!ingestd_publish_due(self->publish, b->samples[r], now))
                continue;
            if (sr_bus_publish(pub, "metric.room", &b->samples[r]->base, NULL) < 0)
                sr_counter_inc(self->publish_failures);
        }
    }
    for (size_t i = 0; i < unit->count; i++) {
        const Sr__CollectorBatch *b = unit->entries[i].batch;
        for (size_t r = 0; unit->entries[i].is_new && r < b->n_orders; r++) {
            const char *topic = s_order_topic(b->orders[r]->status);
            if (topic && sr_bus_publish(pub, topic, &b->orders[r]->base, NULL) < 0)
                sr_counter_inc(self->publish_failures);
        }
    }
}

/* s_on_done - a writer finished a unit (loop thread) */
static void s_on_done(void *arg, ingestd_unit_t *unit)
{
    ingestd_t *self = arg;
    for (size_t u = 0; u < self->inflight; u++)
        if (self->flying[u] == unit) {
            self->flying[u] = self->flying[--self->inflight];
            break;
        }
    if (unit->failed) {
        self->db_down = 1;
        sr_counter_inc(self->flush_failures);
        sr_complain(&self->db_complaint, "%s held_rows=%zu", unit->error, self->held_rows);
        if (self->nfailed == self->failed_cap) {
            self->failed_cap = self->failed_cap ? self->failed_cap * 2 : 16;
            self->failed = sr_realloc(self->failed, self->failed_cap * sizeof *self->failed);
        }
        self->failed[self->nfailed++] = unit;
        return;
    }
    self->db_down = 0;
    sr_recovered(&self->db_complaint);
    sr_histogram_observe(self->flush_seconds, (double)unit->duration_us / 1e6);
    for (int t = 0; t < INGESTD_TABLES; t++)
        sr_counter_add(self->rows[t], unit->table_rows[t]);
    s_publish(self, unit);
    for (size_t i = 0; i < unit->count; i++) {
        ingestd_entry_t *e = &unit->entries[i];
        if (e->origin == INGESTD_FROM_COLLECTOR)
            ingestd_collector_ack(self->collector, e,
                                  e->is_new ? SR__ACK_STATUS__ACK_STATUS_STORED
                                            : SR__ACK_STATUS__ACK_STATUS_DUPLICATE);
        else if (e->origin == INGESTD_FROM_SPOOL) {
            self->replaying--;
            sr_counter_add(self->replayed_rows, e->rows);
        }
        ingestd_queue_release(self, e);
    }
    self->held_rows -= unit->rows;
    s_unit_free(unit);
    s_spool_done(self);
    s_gauges(self);
    s_pump(self, 1);
}

static void s_on_timer(void *arg)
{
    ingestd_t *self = arg;
    s_local_close(self);
    s_pump(self, 1);
}

static void s_on_sync(void *arg)
{
    ingestd_t *self = arg;
    if (ingestd_spool_flush(self->spool) < 0)
        sr_complain(&self->spool_complaint, "file=%s step=fsync err=\"%s\"",
                    ingestd_spool_path(self->spool), strerror(errno));
}

/* --- the service callbacks ---------------------------------------------------------------- */

static void s_register_metrics(ingestd_t *self)
{
    sr_metrics_t *m = sr_service_metrics(self->svc);
    char labels[64];
    for (int t = 0; t < INGESTD_TABLES; t++) {
        snprintf(labels, sizeof labels, "table=\"%s\"", ingestd_copy_table_name(t));
        self->rows[t] =
            sr_metrics_counter(m, "sr_ingest_rows_total", labels, "rows committed, by table");
    }
    self->flush_failures =
        sr_metrics_counter(m, "sr_ingest_flush_failures_total", NULL, "flush transactions failed");
    self->publish_failures = sr_metrics_counter(m, "sr_ingest_publish_failures_total", NULL,
                                                "metric.room and order.* messages not sent");
    self->spooled_rows =
        sr_metrics_counter(m, "sr_ingest_spooled_rows_total", NULL, "rows written to the spool");
    self->replayed_rows = sr_metrics_counter(m, "sr_ingest_replayed_rows_total", NULL,
                                             "rows from the spool committed");
    self->spool_failures = sr_metrics_counter(m, "sr_ingest_spool_failures_total", NULL,
                                              "spool writes, syncs and reads that failed");
    self->spool_cut_bytes = sr_metrics_counter(m, "sr_ingest_spool_cut_bytes_total", NULL,
                                               "corrupt spool bytes set aside at start-up");
    self->local_dropped = sr_metrics_counter(
        m, "sr_ingest_local_dropped_rows_total", NULL,
        "polled or pushed rows dropped because neither the queue nor the spool had room");
    self->flush_seconds =
        sr_metrics_histogram(m, "sr_ingest_flush_seconds", NULL, "duration of flush transactions",
                             sr_metrics_latency_bounds, sr_metrics_latency_nbounds);
    self->queue_rows =
        sr_metrics_gauge(m, "sr_ingest_queue_rows", NULL, "rows held in memory for PostgreSQL");
    self->spool_bytes = sr_metrics_gauge(m, "sr_ingest_spool_bytes", NULL, "spool file size");
}

static ingestd_spool_sync_t s_sync_policy(const char *text)
{
    return strcmp(text, "second") == 0  ? INGESTD_SPOOL_SYNC_SECOND
           : strcmp(text, "never") == 0 ? INGESTD_SPOOL_SYNC_NEVER
                                        : INGESTD_SPOOL_SYNC_ALWAYS;
}

static int s_open_spool(ingestd_t *self)
{
    if (self->cfg->spool_max_bytes == 0)
        return 0;
    char err[512];
    ingestd_spool_sync_t sync = s_sync_policy(self->cfg->spool_fsync);
    self->spool = ingestd_spool_open(self->cfg->spool_dir, sr_service_instance(self->svc),
                                     (uint64_t)self->cfg->spool_max_bytes, sync, err, sizeof err);
    if (!self->spool) {
        sr_error("ingest_spool_failed", "err=\"%s\" hint=\"set SR_INGEST_SPOOL_DIR\"", err);
        return -1;
    }
    if (ingestd_spool_adopt(self->spool, self->cfg->spool_dir) < 0) /* logged */
        sr_counter_inc(self->spool_failures);
    sr_counter_add(self->spool_cut_bytes, ingestd_spool_cut_bytes(self->spool));
    snprintf(self->spool_id, sizeof self->spool_id, "ingestd-spool@%s",
             sr_service_instance(self->svc));
    if (sync == INGESTD_SPOOL_SYNC_SECOND &&
        (self->sync_timer =
             sr_loop_add_timer(sr_service_loop(self->svc), SPOOL_SYNC_MS, 1, s_on_sync, self)) <= 0)
        return -1;
    return 0;
}

int ingestd_init(sr_service_t *svc)
{
    ingestd_t *self = sr_calloc(1, sizeof *self);
    sr_service_set_state(svc, self);
    self->svc = svc;
    self->cfg = sr_service_config(svc);
    self->publish = ingestd_publish_new(PUBLISH_INTERVAL_MS);
    self->db_complaint = (sr_complaint_t)SR_COMPLAINT_INIT("ingest.flush");
    self->spool_complaint = (sr_complaint_t)SR_COMPLAINT_INIT("ingest.spool");
    s_register_metrics(self);
    const sr_common_config_t *cc = sr_service_common(svc);
    if (s_open_spool(self) < 0 || !(self->upkeep = ingestd_upkeep_new(svc)) ||
        !(self->writer =
              ingestd_writer_new(sr_service_loop(svc), cc->db_url, (int)self->cfg->writers,
                                 (int)cc->db_attempts, s_on_done, self)) ||
        !(self->collector = ingestd_collector_new(self, svc)))
        return -1;
    self->flush_timer =
        sr_loop_add_timer(sr_service_loop(svc), self->cfg->flush_interval_ms, 1, s_on_timer, self);
    if (self->flush_timer <= 0)
        return -1;
    if (self->cfg->platform_url[0] && !(self->sources = ingestd_sources_new(svc)))
        return -1;
    if (self->cfg->push_bind[0] && !(self->push = ingestd_push_new(svc)))
        return -1;
    if (self->cfg->rpc_bind[0] && !(self->rooms = ingestd_rooms_new(svc)))
        return -1;
    s_gauges(self);
    s_pump(self, 1);
    return 0;
}

void ingestd_cron(sr_service_t *svc)
{
    ingestd_t *self = sr_service_state(svc);
    s_pump(self, 1);
    ingestd_upkeep_run(self->upkeep);
    ingestd_sources_cron(self->sources);
}

/* s_spool_local - while the database is down at the end: keep the local rows in the spool
 * (collectors resend their own batches) */
static void s_spool_local(ingestd_t *self)
{
    for (size_t i = 0; i < self->count; i++)
        if (self->queue[i].origin == INGESTD_FROM_LOCAL && s_spool_entry(self, &self->queue[i]) < 0)
            sr_counter_add(self->local_dropped, self->queue[i].rows);
    for (size_t u = 0; u < self->nfailed; u++)
        for (size_t i = 0; i < self->failed[u]->count; i++) {
            ingestd_entry_t *e = &self->failed[u]->entries[i];
            if (e->origin == INGESTD_FROM_LOCAL && s_spool_entry(self, e) < 0)
                sr_counter_add(self->local_dropped, e->rows);
        }
    if (self->spool)
        ingestd_spool_flush(self->spool);
}

int ingestd_drain(sr_service_t *svc)
{
    ingestd_t *self = sr_service_state(svc);
    ingestd_push_stop(self->push);
    s_local_close(self);
    s_pump(self, 1);
    if (self->inflight > 0)
        return 0;
    if (self->db_down && (self->count > 0 || self->nfailed > 0)) {
        if (self->spool)
            s_spool_local(self);
        return 1;
    }
    return self->count == 0 && self->nfailed == 0;
}

static void s_free_entries(ingestd_t *self, ingestd_entry_t *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ingestd_queue_release(self, &entries[i]);
}

/* s_on_done_late - units finished while shutting down: free them, no acks */
static void s_on_done_late(void *arg, ingestd_unit_t *unit)
{
    ingestd_t *self = arg;
    s_free_entries(self, unit->entries, unit->count);
    s_unit_free(unit);
}

void ingestd_fini(sr_service_t *svc)
{
    ingestd_t *self = sr_service_state(svc);
    if (!self)
        return;
    ingestd_push_destroy(&self->push);
    ingestd_rooms_destroy(&self->rooms);
    ingestd_sources_destroy(&self->sources);
    if (self->flush_timer > 0)
        sr_loop_cancel_timer(sr_service_loop(svc), self->flush_timer);
    if (self->sync_timer > 0)
        sr_loop_cancel_timer(sr_service_loop(svc), self->sync_timer);
    ingestd_collector_destroy(&self->collector);
    if (self->writer) {
        ingestd_writer_set_done(self->writer, s_on_done_late, self);
        ingestd_writer_destroy(&self->writer);
    }
    if (self->held_rows)
        sr_info("ingest_unflushed", "rows=%zu (collectors resend theirs)", self->held_rows);
    s_free_entries(self, self->queue, self->count);
    for (size_t u = 0; u < self->nfailed; u++) {
        s_free_entries(self, self->failed[u]->entries, self->failed[u]->count);
        s_unit_free(self->failed[u]);
    }
    ingestd_queue_release(self, &self->local);
    free(self->failed);
    free(self->flying);
    free(self->queue);
    free(self->pack_buf);
    for (size_t i = 0; i < self->pooled; i++)
        sr_arena_destroy(&self->pool[i].arena);
    ingestd_spool_close(&self->spool);
    ingestd_upkeep_destroy(&self->upkeep);
    ingestd_publish_destroy(&self->publish);
    free(self);
    sr_service_set_state(svc, NULL);
}
