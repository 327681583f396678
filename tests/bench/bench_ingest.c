/* bench_ingest - the load generator and the reference of `make bench-ingest`.
 *
 * Pre-generates N room samples (generation is not timed) and COPYs them once, untimed, as a
 * warm-up: the first phase of a fresh cluster pays for faulting in shared_buffers and creating
 * WAL segment files, which the phases after it get free (recycled), and measured that cost was
 * a third of the first phase. Then it sends the rows through sr_collector clients (one thread
 * and one collector each, a bounded number of batches in flight) to a running sr-ingestd and
 * waits for every ack; then truncates metrics.room_samples and COPYs the same rows with one bare
 * libpq connection and one binary COPY statement, encoded on the fly by ingestd's own encoder
 * (services/ingestd/ingestd_copy.c). Every phase starts after TRUNCATE, CHECKPOINT and sync and
 * is verified by count(*). After the result line, what the index choice costs: a one-room,
 * one-hour query on the BRIN-only table, then the COPY and the query again with a B-tree on
 * (platform, room_id, ts) added. Prints the result line and ingestd's peak RSS (VmHWM; summed when
 * several instances share the load).
 *
 * Usage: bench_ingest DB_URL COLLECTOR_ENDPOINTS INGESTD_PIDS   (both comma-separated)
 * Environment: SR_BENCH_ROWS (5000000), SR_BENCH_CLIENTS (2), SR_BENCH_BATCH (5000 rows),
 * SR_BENCH_WINDOW (batches in flight per client, 4), SR_BENCH_TIMEOUT (seconds per phase, 240),
 * SR_BENCH_INDEXES (0 skips the index measurement, 1).
 * Started by tests/bench/bench-ingest.sh, which owns PostgreSQL, sr-busd and sr-ingestd.
 */
#include "collector.pb-c.h"
#include "ingestd.h"
#include "metrics.pb-c.h"
#include "sr_alloc.h"
#include "sr_clock.h"
#include "sr_collector.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define ROOMS          2000
#define SAMPLE_EVERY   3000000LL /* a room sends a snapshot every 3 s */
#define COPY_SEND_SIZE (1 << 20)

typedef struct {
    size_t rows, clients, batch, window;
    int64_t timeout_ms;
    const char *db_url, *endpoint, *ingestd_pids;
} bench_opts_t;

typedef struct {
    Sr__RoomSample *samples;
    Sr__RoomSample **ptrs;
    char (*rooms)[24];
    char (*sessions)[24];
} bench_data_t;

typedef struct {
    const bench_opts_t *opts;
    void *zctx;
    pthread_barrier_t *start;
    Sr__RoomSample **ptrs;
    size_t n, index;
    uint64_t stored_rows, resent, rejected;
    int failed;
} client_t;

static size_t s_env_size(const char *name, size_t fallback)
{
    const char *v = getenv(name);
    return v && *v ? (size_t)strtoull(v, NULL, 10) : fallback;
}

/* s_generate - rows in arrival order: every round, each room's next snapshot, from the start of
 * today (UTC) so they land in the daily partition ingestd created */
static void s_generate(bench_data_t *d, size_t rows)
{
    int64_t day0 = (int64_t)time(NULL) / 86400 * 86400 * 1000000LL;
    d->samples = sr_calloc(rows, sizeof *d->samples);
    d->ptrs = sr_calloc(rows, sizeof *d->ptrs);
    d->rooms = sr_calloc(ROOMS, sizeof *d->rooms);
    d->sessions = sr_calloc(ROOMS, sizeof *d->sessions);
    for (size_t r = 0; r < ROOMS; r++) {
        snprintf(d->rooms[r], sizeof d->rooms[r], "bench-room-%05zu", r);
        snprintf(d->sessions[r], sizeof d->sessions[r], "bench-session-%05zu", r);
    }
    for (size_t i = 0; i < rows; i++) {
        Sr__RoomSample *s = &d->samples[i];
        int64_t room = (int64_t)(i % ROOMS), round = (int64_t)(i / ROOMS);
        sr__room_sample__init(s);
        s->platform = (Sr__Platform)(1 + room % 3);
        s->room_id = d->rooms[room];
        s->session_id = d->sessions[room];
        s->ts_us = day0 + round * SAMPLE_EVERY + room * 1000;
        s->online_viewers = 1000 + (room * 37 + round * 11) % 5000;
        s->cumulative_viewers = 5000 + round * 40 + room;
        s->new_viewers = round % 50;
        s->avg_watch_seconds = 60 + room % 120;
        s->likes = round * 25 + room;
        s->comments = round * 3;
        s->shares = round / 4;
        s->new_followers = round / 2;
        s->fan_club_joins = round / 10;
        s->product_impressions = round * 120;
        s->product_clicks = round * 12;
        s->orders_created = round * 2;
        s->orders_paid = round * 2 - round / 5;
        s->paid_buyers = round + round / 3;
        s->gmv_fen = round * 19900 + room;
        s->refunds_count = round / 30;
        s->refunds_fen = round / 30 * 19900;
        s->ad_spend_fen = round * 500;
        d->ptrs[i] = s;
    }
}

static void s_data_free(bench_data_t *d)
{
    free(d->samples);
    free(d->ptrs);
    free(d->rooms);
    free(d->sessions);
}

/* s_client - one collector: send every batch of the slice with at most window in flight, then
 * wait for the last acks */
static void *s_client(void *arg)
{
    client_t *c = arg;
    const bench_opts_t *o = c->opts;
    char id[64];
    snprintf(id, sizeof id, "bench-%ld-%lld-%zu", (long)getpid(), (long long)time(NULL), c->index);
    sr_collector_opts_t copts = {.resend_ms = o->timeout_ms, .busy_wait_ms = 50, .hwm = 1000};
    sr_collector_t *col = sr_collector_new(c->zctx, o->endpoint, id, &copts);
    pthread_barrier_wait(c->start);
    if (!col) {
        c->failed = 1;
        return NULL;
    }
    int64_t deadline = sr_clock_mono_ms() + o->timeout_ms;
    for (size_t next = 0; next < c->n && !c->failed;) {
        if (sr_collector_pending(col) >= o->window) {
            if (sr_collector_poll(col, 100) < 0 || sr_clock_mono_ms() > deadline)
                c->failed = 1;
            continue;
        }
        Sr__CollectorBatch b = SR__COLLECTOR_BATCH__INIT;
        b.samples = c->ptrs + next;
        b.n_samples = c->n - next < o->batch ? c->n - next : o->batch;
        sr_collector_send(col, &b);
        next += b.n_samples;
    }
    int64_t left = deadline - sr_clock_mono_ms();
    if (!c->failed && sr_collector_wait(col, left > 0 ? (int)left : 1) != 0)
        c->failed = 1;
    const sr_collector_stats_t *st = sr_collector_stats(col);
    c->stored_rows = st->rows;
    c->resent = st->resent;
    c->rejected = st->rejected;
    if (st->rejected)
        fprintf(stderr, "bench_ingest: client %zu rejected: %s\n", c->index,
                sr_collector_last_error(col));
    sr_collector_destroy(&col);
    return NULL;
}

static int s_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "bench_ingest: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

static long long s_count(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT count(*) FROM metrics.room_samples");
    long long n = PQresultStatus(res) == PGRES_TUPLES_OK ? atoll(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    return n;
}

/* s_prepare - empty tables, PostgreSQL's dirty buffers written (CHECKPOINT) and the kernel's
 * written back (sync), so neither phase pays for the writes of the one before it */
static int s_prepare(PGconn *conn)
{
    if (s_exec(conn, "TRUNCATE metrics.room_samples, metrics.batches") < 0 ||
        s_exec(conn, "CHECKPOINT") < 0)
        return -1;
    sync();
    return 0;
}

/* s_ingest - seconds to get every row acked through ingestd; -1 on failure */
static double s_ingest(const bench_opts_t *o, bench_data_t *d)
{
    void *zctx = zmq_ctx_new();
    client_t *clients = sr_calloc(o->clients, sizeof *clients);
    pthread_t *threads = sr_calloc(o->clients, sizeof *threads);
    pthread_barrier_t start;
    if (!zctx || pthread_barrier_init(&start, NULL, (unsigned)o->clients + 1) != 0)
        abort();
    size_t per = o->rows / o->clients;
    for (size_t i = 0; i < o->clients; i++) {
        clients[i] = (client_t){.opts = o, .zctx = zctx, .start = &start, .index = i};
        clients[i].ptrs = d->ptrs + i * per;
        clients[i].n = i + 1 == o->clients ? o->rows - i * per : per;
        if (pthread_create(&threads[i], NULL, s_client, &clients[i]) != 0)
            abort();
    }
    pthread_barrier_wait(&start);
    int64_t t0 = sr_clock_mono_us();
    int failed = 0;
    uint64_t stored = 0, resent = 0;
    for (size_t i = 0; i < o->clients; i++) {
        pthread_join(threads[i], NULL);
        failed |= clients[i].failed || clients[i].rejected;
        stored += clients[i].stored_rows;
        resent += clients[i].resent;
    }
    double secs = (double)(sr_clock_mono_us() - t0) / 1e6;
    pthread_barrier_destroy(&start);
    free(clients);
    free(threads);
    zmq_ctx_term(zctx);
    printf("bench_ingest: ingest rows=%zu acked_rows=%llu resent_batches=%llu seconds=%.2f%s\n",
           o->rows, (unsigned long long)stored, (unsigned long long)resent, secs,
           failed ? " FAILED" : "");
    fflush(stdout);
    return failed || stored != o->rows ? -1 : secs;
}

/* s_copy - seconds for one bare binary COPY of every row, encoded while sending */
static double s_copy(PGconn *conn, const bench_opts_t *o, bench_data_t *d, const char *phase)
{
    ingestd_copy_t *copy = ingestd_copy_new();
    int64_t t0 = sr_clock_mono_us();
    PGresult *res = PQexec(conn, ingestd_copy_sql(INGESTD_TABLE_SAMPLES));
    int rc = PQresultStatus(res) == PGRES_COPY_IN ? 0 : -1;
    PQclear(res);
    if (rc == 0) {
        ingestd_copy_header(copy);
        for (size_t i = 0; i < o->rows && rc == 0; i++) {
            ingestd_copy_sample(copy, d->ptrs[i]);
            size_t len;
            ingestd_copy_data(copy, &len);
            if (len >= COPY_SEND_SIZE)
                rc = ingestd_copy_send(copy, conn);
        }
        ingestd_copy_trailer(copy);
        if (rc == 0)
            rc = ingestd_copy_send(copy, conn);
        if (PQputCopyEnd(conn, rc == 0 ? NULL : "bench_ingest: sending failed") != 1)
            rc = -1;
        while ((res = PQgetResult(conn))) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                rc = -1;
            PQclear(res);
        }
    }
    double secs = (double)(sr_clock_mono_us() - t0) / 1e6;
    ingestd_copy_destroy(&copy);
    if (rc < 0)
        fprintf(stderr, "bench_ingest: copy: %s", PQerrorMessage(conn));
    printf("bench_ingest: %s rows=%zu seconds=%.2f\n", phase, o->rows, secs);
    fflush(stdout);
    return rc < 0 ? -1 : secs;
}

/* s_room_hour_ms - the best of five runs of "one room over one hour" (rows in *rows) */
static double s_room_hour_ms(PGconn *conn, long long *rows)
{
    char from[32];
    snprintf(from, sizeof from, "%lld", (long long)time(NULL) / 86400 * 86400);
    const char *params[] = {from};
    double best = -1;
    for (int i = 0; i < 5; i++) {
        int64_t t0 = sr_clock_mono_us();
        PGresult *res = PQexecParams(
            conn,
            "SELECT count(*), max(gmv_fen) FROM metrics.room_samples WHERE platform = 1 AND "
            "room_id = 'bench-room-00042' AND ts >= to_timestamp($1::bigint) AND "
            "ts < to_timestamp($1::bigint) + interval '1 hour'",
            1, NULL, params, NULL, NULL, 0);
        double ms = (double)(sr_clock_mono_us() - t0) / 1e3;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "bench_ingest: query: %s", PQerrorMessage(conn));
            PQclear(res);
            return -1;
        }
        *rows = atoll(PQgetvalue(res, 0, 0));
        PQclear(res);
        best = best < 0 || ms < best ? ms : best;
    }
    return best;
}

/* s_indexes - what the index choice costs: the reference COPY and a one-room query with the
 * BRIN on ts only (as shipped), then again with a B-tree on (platform, room_id, ts) */
static int s_indexes(PGconn *conn, const bench_opts_t *o, bench_data_t *d, double brin_copy)
{
    long long rows = 0;
    double brin_ms = s_room_hour_ms(conn, &rows);
    if (brin_ms < 0)
        return -1;
    printf("bench_ingest: index=brin(ts) copy_rows_per_s=%.0f room_hour_query_ms=%.2f rows=%lld\n",
           (double)o->rows / brin_copy, brin_ms, rows);
    if (s_exec(conn, "CREATE INDEX bench_room_ts ON metrics.room_samples (platform, room_id, ts)") <
            0 ||
        s_prepare(conn) < 0)
        return -1;
    double secs = s_copy(conn, o, d, "copy+btree");
    double btree_ms = secs > 0 ? s_room_hour_ms(conn, &rows) : -1;
    int rc = s_exec(conn, "DROP INDEX metrics.bench_room_ts");
    if (secs <= 0 || btree_ms < 0 || rc < 0)
        return -1;
    printf("bench_ingest: index=brin(ts)+btree(platform,room_id,ts) copy_rows_per_s=%.0f "
           "room_hour_query_ms=%.2f rows=%lld\n",
           (double)o->rows / secs, btree_ms, rows);
    return 0;
}

/* s_peak_rss_mb - VmHWM of a process in MiB, -1 when unreadable */
static double s_peak_rss_mb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    double mb = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            mb = strtod(line + 6, NULL) / 1024.0;
    fclose(f);
    return mb;
}

/* s_cpu_seconds - user + system CPU a process used so far, -1 when unreadable */
static double s_cpu_seconds(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* s_sum - f summed over the comma-separated pids, -1 when any is unreadable */
static double s_sum(const char *pids, double (*f)(long))
{
    double sum = 0;
    for (const char *p = pids; *p;) {
        char *end;
        double v = f(strtol(p, &end, 10));
        if (end == p || v < 0)
            return -1;
        sum += v;
        p = *end == ',' ? end + 1 : end;
    }
    return sum;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_ingest DB_URL COLLECTOR_ENDPOINTS INGESTD_PIDS\n");
        return 2;
    }
    bench_opts_t o = {
        .db_url = argv[1],
        .endpoint = argv[2],
        .ingestd_pids = argv[3],
        .rows = s_env_size("SR_BENCH_ROWS", 5000000),
        .clients = s_env_size("SR_BENCH_CLIENTS", 2),
        .batch = s_env_size("SR_BENCH_BATCH", 5000),
        .window = s_env_size("SR_BENCH_WINDOW", 4),
        .timeout_ms = (int64_t)s_env_size("SR_BENCH_TIMEOUT", 240) * 1000,
    };
    if (o.rows == 0 || o.clients == 0 || o.batch == 0 || o.window == 0 || o.rows < o.clients) {
        fprintf(stderr, "bench_ingest: SR_BENCH_* must be positive, rows >= clients\n");
        return 2;
    }
    PGconn *conn = PQconnectdb(o.db_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "bench_ingest: connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    bench_data_t d;
    s_generate(&d, o.rows);
    printf("bench_ingest: rows=%zu clients=%zu batch_rows=%zu window_batches=%zu rooms=%d\n",
           o.rows, o.clients, o.batch, o.window, ROOMS);
    fflush(stdout);

    int rc = 1;
    double cpu0 = s_sum(o.ingestd_pids, s_cpu_seconds), ingest = -1, copy = -1;
    /* warm-up, untimed: touches every shared buffer and leaves WAL segments for the CHECKPOINT
     * to recycle, so the first timed phase does not pay for what the second gets free */
    if (s_prepare(conn) == 0 && s_copy(conn, &o, &d, "warmup") > 0 && s_prepare(conn) == 0)
        ingest = s_ingest(&o, &d);
    double cpu = s_sum(o.ingestd_pids, s_cpu_seconds) - cpu0;
    long long ingested = ingest > 0 ? s_count(conn) : -1;
    if (ingest > 0 && ingested == (long long)o.rows && s_prepare(conn) == 0)
        copy = s_copy(conn, &o, &d, "copy");
    long long copied = copy > 0 ? s_count(conn) : -1;
    double rss = s_sum(o.ingestd_pids, s_peak_rss_mb);
    printf("bench_ingest: verified ingest_count=%lld copy_count=%lld ingestd_cpu_seconds=%.2f\n",
           ingested, copied, cpu);
    if (ingest > 0 && copy > 0 && ingested == (long long)o.rows && copied == (long long)o.rows) {
        double irate = (double)o.rows / ingest, crate = (double)o.rows / copy;
        printf("ingest_rows_per_s=%.0f copy_rows_per_s=%.0f ratio=%.2f ingestd_peak_rss_mb=%.1f\n",
               irate, crate, irate / crate, rss);
        fflush(stdout);
        rc = s_env_size("SR_BENCH_INDEXES", 1) == 0 || s_indexes(conn, &o, &d, copy) == 0 ? 0 : 1;
    } else {
        fprintf(stderr, "bench_ingest: FAILED (see above)\n");
    }
    s_data_free(&d);
    PQfinish(conn);
    return rc;
}
