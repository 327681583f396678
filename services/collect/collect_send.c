/* collect_send - the send loop of sr-collect: batches from any sample source, acks, the summary;
 * and the two imports, which pick the collector id and feed their source to it.
 *
 * Reading pauses while INFLIGHT_MAX batches wait for acks, so a large input never sits in memory
 * packed twice; each batch's samples live in one arena reset per batch.
 */
#include "collect.h"

#include "sr_alloc.h"
#include "sr_arena.h"
#include "sr_clock.h"
#include "sr_collector.h"
#include "sr_log.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define INFLIGHT_MAX 64 /* batches sent and not acked before reading pauses */

/* s_read_batch - up to n samples into the arena; COLLECT_READ_END only when none was read */
static collect_read_t s_read_batch(collect_source_fn next, void *src, sr_arena_t *arena, long n,
                                   Sr__CollectorBatch *batch)
{
    batch->samples = sr_arena_alloc(arena, (size_t)n * sizeof *batch->samples);
    batch->n_samples = 0;
    while ((long)batch->n_samples < n) {
        Sr__RoomSample *s;
        collect_read_t rc = next(src, sr_arena_pb_allocator(arena), &s);
        if (rc == COLLECT_READ_BAD)
            return rc;
        if (rc == COLLECT_READ_END)
            break;
        batch->samples[batch->n_samples++] = s;
    }
    return batch->n_samples ? COLLECT_READ_OK : COLLECT_READ_END;
}

/* s_run - read, send, wait; 0 ok, -1 with a message printed */
static int s_run(const collect_send_opts_t *a, collect_source_fn next, void *src,
                 const char *(*error)(const void *src), sr_collector_t *c, uint64_t *rows)
{
    sr_arena_t *arena = sr_arena_new(256 * 1024);
    int64_t timeout_ms = a->timeout_s * 1000, progress_ms = sr_clock_mono_ms();
    collect_read_t rc;
    int failed = 0;
    for (;;) {
        Sr__CollectorBatch batch = SR__COLLECTOR_BATCH__INIT;
        sr_arena_reset(arena);
        if ((rc = s_read_batch(next, src, arena, a->batch, &batch)) != COLLECT_READ_OK)
            break;
        sr_collector_send(c, &batch);
        *rows += batch.n_samples;
        while (!failed && sr_collector_pending(c) >= INFLIGHT_MAX) {
            int acks = sr_collector_poll(c, 100);
            if (acks > 0)
                progress_ms = sr_clock_mono_ms();
            if (acks < 0 || sr_clock_mono_ms() - progress_ms > timeout_ms)
                failed = 1;
        }
        if (failed)
            break;
    }
    sr_arena_destroy(&arena);
    if (rc == COLLECT_READ_BAD) {
        fprintf(stderr, "sr-collect: %s: %s (batches before it were sent)\n", a->input, error(src));
        failed = 1;
    }
    if (sr_collector_wait(c, (int)timeout_ms) < 0) {
        fprintf(stderr, "sr-collect: %zu batches not acked within %lds by %s\n",
                sr_collector_pending(c), a->timeout_s, a->endpoints);
        return -1;
    }
    if (sr_collector_stats(c)->rejected) {
        fprintf(stderr, "sr-collect: %llu batches rejected: %s\n",
                (unsigned long long)sr_collector_stats(c)->rejected, sr_collector_last_error(c));
        return -1;
    }
    return failed ? -1 : 0;
}

int collect_send(const collect_send_opts_t *opts, collect_source_fn next, void *src,
                 const char *(*error)(const void *src))
{
    void *ctx = zmq_ctx_new();
    sr_collector_opts_t copts = {.resend_ms = opts->resend_ms};
    sr_collector_t *c = sr_collector_new(ctx, opts->endpoints, opts->collector_id, &copts);
    int rc = 1;
    if (c) {
        uint64_t rows = 0;
        rc = s_run(opts, next, src, error, c, &rows) == 0 ? 0 : 1;
        const sr_collector_stats_t *st = sr_collector_stats(c);
        printf("rows_sent=%llu batches=%llu stored=%llu duplicate=%llu rejected=%llu "
               "resends=%llu busy=%llu\n",
               (unsigned long long)rows, (unsigned long long)st->sent,
               (unsigned long long)st->stored, (unsigned long long)st->duplicate,
               (unsigned long long)st->rejected, (unsigned long long)st->resent,
               (unsigned long long)st->busy);
        sr_collector_destroy(&c);
    } else
        fprintf(stderr, "sr-collect: bad --endpoints %s\n", opts->endpoints);
    zmq_ctx_term(ctx);
    return rc;
}

static collect_read_t s_proto_next(void *src, ProtobufCAllocator *allocator, Sr__RoomSample **out)
{
    return collect_reader_next(src, allocator, out);
}

static const char *s_proto_error(const void *src)
{
    return collect_reader_error(src);
}

int collect_import_proto(const collect_send_opts_t *opts, const char *path)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in) {
        fprintf(stderr, "sr-collect: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    collect_send_opts_t o = *opts;
    char host[64] = "host", *default_id = NULL;
    if (!o.collector_id) {
        if (gethostname(host, sizeof host) < 0)
            strcpy(host, "host");
        host[sizeof host - 1] = '\0';
        o.collector_id = default_id =
            sr_asprintf("collect@%s:%d:%lld", host, (int)getpid(), (long long)time(NULL));
    }
    sr_log_init("collect", o.collector_id);
    collect_reader_t *r = collect_reader_new(in);
    int rc = collect_send(&o, s_proto_next, r, s_proto_error);
    collect_reader_destroy(&r);
    if (in != stdin)
        fclose(in);
    free(default_id);
    return rc;
}

/* s_slurp - the whole of path (- = stdin); NULL with errno set */
static char *s_slurp(const char *path, size_t *len)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in)
        return NULL;
    size_t cap = 64 * 1024, n = 0, got;
    char *buf = sr_malloc(cap);
    while ((got = fread(buf + n, 1, cap - n, in)) > 0) {
        n += got;
        if (n == cap)
            buf = sr_realloc(buf, cap *= 2);
    }
    int failed = ferror(in), saved = errno;
    if (in != stdin)
        fclose(in);
    if (failed) {
        free(buf);
        errno = saved ? saved : EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

int collect_import_csv(const collect_send_opts_t *opts, const char *path, const char *platform,
                       const char *room)
{
    Sr__Platform p = collect_csv_platform(platform);
    if (!p) {
        fprintf(stderr, "sr-collect: unknown --platform %s (douyin, channels, kuaishou)\n",
                platform);
        return 2;
    }
    size_t len = 0;
    char *data = s_slurp(path, &len);
    if (!data) {
        fprintf(stderr, "sr-collect: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    collect_csv_t *csv = collect_csv_parse(path, data, len, p, room);
    int rc = 1;
    if (collect_csv_n_errors(csv)) {
        for (size_t i = 0; i < collect_csv_n_errors(csv); i++)
            fprintf(stderr, "%s\n", collect_csv_error(csv, i));
        fprintf(stderr, "sr-collect: %s rejected, nothing sent\n", path);
    } else {
        collect_send_opts_t o = *opts;
        char *default_id = NULL;
        if (!o.collector_id) {
            unsigned char hash[crypto_hash_sha256_BYTES];
            char hex[crypto_hash_sha256_BYTES * 2 + 1];
            crypto_hash_sha256(hash, (const unsigned char *)data, len);
            sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
            /* batch boundaries and the room are part of what was stored under the id: an
             * import that differs in either must not be taken for the same one */
            char batch[32] = "";
            if (o.batch != COLLECT_DEFAULT_BATCH)
                snprintf(batch, sizeof batch, ":batch=%ld", o.batch);
            o.collector_id = default_id = sr_asprintf("csv:%s:%.16s%s%s%s", platform, hex, batch,
                                                      room ? ":room=" : "", room ? room : "");
        }
        sr_log_init("collect", o.collector_id);
        printf("collector_id=%s rows=%zu\n", o.collector_id, collect_csv_n_samples(csv));
        fflush(stdout);
        rc = collect_send(&o, collect_csv_next, csv, NULL);
        free(default_id);
    }
    collect_csv_destroy(&csv);
    free(data);
    return rc;
}
