/* ingestd_writer - writer threads: the flush transaction, off the loop thread.
 *
 * Each writer thread has its own PostgreSQL connection, COPY encoder and array buffers, so the
 * loop thread keeps receiving, unpacking and checking batches while a unit is written. A unit
 * is handed over under the mutex; the writer runs one transaction for it - the batch ids into
 * metrics.batches (ON CONFLICT DO NOTHING RETURNING tells which are new), then one binary COPY
 * per table with the rows of the new batches - and puts it on the done list, waking the loop
 * (sr_loop_wakeup). Entries are read, never changed, except for their is_new flag, and nothing
 * else of the loop's is touched, so the only shared state is the hand-over under the mutex.
 */
#include "ingestd.h"

#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_db.h"
#include "sr_log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* hand COPY data to libpq in pieces of about this size: PostgreSQL works on the first rows of a
 * unit while the writer encodes the rest (bench-ingest: 170-255 k rows/s handing over whole
 * 1 MB units, 300-420 k in 64 KB pieces) */
#define COPY_SEND_BYTES (64 << 10)
#define BATCH_INSERT_SQL                                                                           \
    "INSERT INTO metrics.batches (collector_id, batch_seq, rows) "                                 \
    "SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[]) "                                   \
    "ON CONFLICT DO NOTHING RETURNING collector_id, batch_seq"

typedef struct {
    ingestd_writer_t *owner;
    pthread_t thread;
    int started;
    sr_db_t *db;
    ingestd_copy_t *copy;
    char *arrays[3]; /* reused array literals for the batch INSERT */
    size_t array_len[3], array_cap[3];
    ingestd_unit_t *unit; /* the one being written; set and cleared under the mutex */
} thread_t;

struct ingestd_writer_t {
    ingestd_writer_done_fn *done;
    void *done_arg;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    int stop;
    sr_loop_wakeup_t *wakeup; /* writers -> loop: "a unit is done" */
    thread_t *threads;
    int nthreads;
    int idle;               /* loop thread's count of threads without a unit */
    ingestd_unit_t **ready; /* done units not yet handed to the loop */
    size_t nready;
};

/* s_array_put - append text to one of the reused array literals */
static void s_array_put(thread_t *t, int which, const char *text, size_t n)
{
    if (t->array_len[which] + n + 1 > t->array_cap[which]) {
        while (t->array_len[which] + n + 1 > t->array_cap[which])
            t->array_cap[which] *= 2;
        t->arrays[which] = sr_realloc(t->arrays[which], t->array_cap[which]);
    }
    memcpy(t->arrays[which] + t->array_len[which], text, n);
    t->array_len[which] += n;
    t->arrays[which][t->array_len[which]] = '\0';
}

/* s_array_add - one element of a PostgreSQL array literal, quoted and escaped */
static void s_array_add(thread_t *t, int which, const char *value)
{
    s_array_put(t, which, t->array_len[which] > 1 ? ",\"" : "\"", t->array_len[which] > 1 ? 2 : 1);
    for (const char *v = value; *v; v++) {
        if (*v == '"' || *v == '\\')
            s_array_put(t, which, "\\", 1);
        s_array_put(t, which, v, 1);
    }
    s_array_put(t, which, "\"", 1);
}

static size_t s_table_rows(const Sr__CollectorBatch *b, ingestd_table_t table)
{
    return table == INGESTD_TABLE_SAMPLES  ? b->n_samples
           : table == INGESTD_TABLE_ORDERS ? b->n_orders
                                           : b->n_interactions;
}

/* s_copy_table - COPY the rows of one table from the new batches of the unit */
static int s_copy_table(thread_t *t, ingestd_unit_t *unit, PGconn *conn, ingestd_table_t table)
{
    size_t rows = 0;
    for (size_t i = 0; i < unit->count; i++)
        if (unit->entries[i].is_new)
            rows += s_table_rows(unit->entries[i].batch, table);
    if (rows == 0)
        return 0;
    PGresult *res = PQexec(conn, ingestd_copy_sql(table));
    int started = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!started)
        return -1;
    ingestd_copy_header(t->copy);
    int rc = 0;
    for (size_t i = 0; i < unit->count && rc == 0; i++) {
        const Sr__CollectorBatch *b = unit->entries[i].batch;
        if (!unit->entries[i].is_new)
            continue;
        if (table == INGESTD_TABLE_SAMPLES)
            for (size_t r = 0; r < b->n_samples; r++)
                ingestd_copy_sample(t->copy, b->samples[r]);
        else if (table == INGESTD_TABLE_ORDERS)
            for (size_t r = 0; r < b->n_orders; r++)
                ingestd_copy_order(t->copy, b->orders[r]);
        else
            for (size_t r = 0; r < b->n_interactions; r++)
                ingestd_copy_interaction(t->copy, b->interactions[r]);
        size_t len;
        ingestd_copy_data(t->copy, &len);
        if (len >= COPY_SEND_BYTES)
            rc = ingestd_copy_send(t->copy, conn);
    }
    ingestd_copy_trailer(t->copy);
    if (rc == 0)
        rc = ingestd_copy_send(t->copy, conn);
    if (PQputCopyEnd(conn, rc == 0 ? NULL : "ingestd: sending failed") != 1)
        rc = -1;
    while ((res = PQgetResult(conn))) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = -1;
        PQclear(res);
    }
    if (rc == 0)
        unit->table_rows[table] = rows;
    return rc;
}

/* s_mark_new - the entry matching a returned batch id, not marked before */
static void s_mark_new(ingestd_unit_t *unit, const char *collector_id, uint64_t seq)
{
    for (size_t i = 0; i < unit->count; i++) {
        ingestd_entry_t *e = &unit->entries[i];
        if (e->batch->collector_id[0] && !e->is_new && e->batch->batch_seq == seq &&
            strcmp(e->batch->collector_id, collector_id) == 0) {
            e->is_new = 1;
            return;
        }
    }
}

/* s_fail - remember why the unit failed, as one log-safe line */
static int s_fail(ingestd_unit_t *unit, const char *step, const char *err)
{
    int n = snprintf(unit->error, sizeof unit->error, "step=%s err=\"", step);
    for (const char *p = err; *p && n < (int)sizeof unit->error - 2; p++)
        unit->error[n++] = *p == '"' ? '\'' : *p == '\n' ? ' ' : *p;
    unit->error[n++] = '"';
    unit->error[n] = '\0';
    return -1;
}

/* s_write_tx - inside BEGIN/COMMIT: record the batch ids, learn which are new, COPY their
 * rows. A batch already in metrics.batches (or twice in this unit) copies nothing; a local
 * entry (no batch id) is always new. */
static int s_write_tx(sr_db_t *db, void *arg)
{
    thread_t *t = arg;
    ingestd_unit_t *unit = t->unit;
    for (int a = 0; a < 3; a++) {
        t->array_len[a] = 0;
        s_array_put(t, a, "{", 1);
    }
    char num[32];
    size_t ids = 0;
    for (size_t i = 0; i < unit->count; i++) {
        ingestd_entry_t *e = &unit->entries[i];
        e->is_new = e->batch->collector_id[0] == '\0';
        if (e->is_new)
            continue;
        s_array_add(t, 0, e->batch->collector_id);
        snprintf(num, sizeof num, "%llu", (unsigned long long)e->batch->batch_seq);
        s_array_add(t, 1, num);
        snprintf(num, sizeof num, "%zu", e->rows);
        s_array_add(t, 2, num);
        ids++;
    }
    for (int a = 0; a < 3; a++)
        s_array_put(t, a, "}", 1);
    if (ids > 0) {
        const char *params[3] = {t->arrays[0], t->arrays[1], t->arrays[2]};
        PGresult *res = sr_db_run(db, "ingest_batches", 3, params);
        if (!res)
            return s_fail(unit, "batches", sr_db_error(db));
        for (int r = 0; r < PQntuples(res); r++)
            s_mark_new(unit, PQgetvalue(res, r, 0), strtoull(PQgetvalue(res, r, 1), NULL, 10));
        PQclear(res);
    }
    for (int tb = 0; tb < INGESTD_TABLES; tb++)
        if (s_copy_table(t, unit, sr_db_conn(db), (ingestd_table_t)tb) < 0)
            return s_fail(unit, ingestd_copy_table_name((ingestd_table_t)tb),
                          PQerrorMessage(sr_db_conn(db)));
    return 0;
}

static void s_write(thread_t *t)
{
    ingestd_unit_t *unit = t->unit;
    int64_t t0 = sr_clock_mono_us();
    memset(unit->table_rows, 0, sizeof unit->table_rows);
    unit->error[0] = '\0';
    if (!sr_db_ok(t->db))
        unit->failed = s_fail(unit, "connect", sr_db_error(t->db)) != 0;
    else if (sr_db_tx(t->db, s_write_tx, t) != 0) {
        if (!unit->error[0]) /* BEGIN or COMMIT failed */
            s_fail(unit, "commit", sr_db_error(t->db));
        unit->failed = 1;
    } else
        unit->failed = 0;
    unit->duration_us = sr_clock_mono_us() - t0;
}

static void *s_thread(void *arg)
{
    thread_t *t = arg;
    ingestd_writer_t *w = t->owner;
    pthread_mutex_lock(&w->mutex);
    for (;;) {
        while (!t->unit && !w->stop)
            pthread_cond_wait(&w->wake, &w->mutex);
        if (!t->unit)
            break;
        pthread_mutex_unlock(&w->mutex);
        s_write(t);
        pthread_mutex_lock(&w->mutex);
        w->ready[w->nready++] = t->unit;
        t->unit = NULL;
        sr_loop_wakeup(w->wakeup);
    }
    pthread_mutex_unlock(&w->mutex);
    return NULL;
}

/* s_collect - hand the done units to the owner, one at a time, on the loop thread */
static void s_collect(void *arg)
{
    ingestd_writer_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mutex);
        ingestd_unit_t *unit = w->nready ? w->ready[0] : NULL;
        if (unit)
            memmove(w->ready, w->ready + 1, --w->nready * sizeof *w->ready);
        pthread_mutex_unlock(&w->mutex);
        if (!unit)
            return;
        w->idle++;
        w->done(w->done_arg, unit);
    }
}

ingestd_writer_t *ingestd_writer_new(sr_loop_t *loop, const char *url, int threads, int attempts,
                                     ingestd_writer_done_fn *done, void *arg)
{
    ingestd_writer_t *w = sr_calloc(1, sizeof *w);
    w->done = done;
    w->done_arg = arg;
    pthread_mutex_init(&w->mutex, NULL);
    pthread_cond_init(&w->wake, NULL);
    w->threads = sr_calloc((size_t)threads, sizeof *w->threads);
    w->ready = sr_calloc((size_t)threads, sizeof *w->ready);
    w->nthreads = threads;
    if (!(w->wakeup = sr_loop_wakeup_new(loop, s_collect, w))) {
        ingestd_writer_destroy(&w);
        return NULL;
    }
    for (int i = 0; i < threads; i++) {
        thread_t *t = &w->threads[i];
        t->owner = w;
        t->copy = ingestd_copy_new();
        for (int a = 0; a < 3; a++) {
            t->array_cap[a] = 4096;
            t->arrays[a] = sr_malloc(t->array_cap[a]);
        }
        char app[32];
        snprintf(app, sizeof app, "ingestd-writer-%d", i + 1);
        t->db = sr_db_connect(url, app, attempts, 5000);
        if (!t->db || sr_db_prepare(t->db, "ingest_batches", BATCH_INSERT_SQL, 3) < 0 ||
            pthread_create(&t->thread, NULL, s_thread, t) != 0) {
            sr_error("ingest_writer_failed", "writer=%d", i + 1);
            ingestd_writer_destroy(&w);
            return NULL;
        }
        t->started = 1;
        w->idle++;
    }
    return w;
}

void ingestd_writer_destroy(ingestd_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ingestd_writer_t *w = *self_p;
    pthread_mutex_lock(&w->mutex);
    w->stop = 1;
    pthread_cond_broadcast(&w->wake);
    pthread_mutex_unlock(&w->mutex);
    for (int i = 0; i < w->nthreads; i++)
        if (w->threads[i].started)
            pthread_join(w->threads[i].thread, NULL);
    s_collect(w);
    for (int i = 0; i < w->nthreads; i++) {
        thread_t *t = &w->threads[i];
        sr_db_destroy(&t->db);
        ingestd_copy_destroy(&t->copy);
        for (int a = 0; a < 3; a++)
            free(t->arrays[a]);
    }
    sr_loop_wakeup_destroy(&w->wakeup);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mutex);
    free(w->threads);
    free(w->ready);
    free(w);
    *self_p = NULL;
}

void ingestd_writer_set_done(ingestd_writer_t *self, ingestd_writer_done_fn *done, void *arg)
{
    self->done = done;
    self->done_arg = arg;
}

int ingestd_writer_idle(const ingestd_writer_t *self)
{
    return self->idle;
}

int ingestd_writer_submit(ingestd_writer_t *self, ingestd_unit_t *unit)
{
    if (self->idle == 0)
        return -1;
    pthread_mutex_lock(&self->mutex);
    for (int i = 0; i < self->nthreads; i++) {
        if (!self->threads[i].unit) {
            self->threads[i].unit = unit;
            break;
        }
    }
    pthread_cond_broadcast(&self->wake);
    pthread_mutex_unlock(&self->mutex);
    self->idle--;
    return 0;
}
