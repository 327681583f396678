/* sr-collect - send room samples from a file or stdin to sr-ingestd and wait for every ack.
 *
 * A one-shot command, not a daemon (deploy/run.sh skips it). Exit status: 0 when every batch
 * was stored (or found stored before), 1 when the input is malformed, a batch was rejected or
 * the acks did not come in time, 2 for bad arguments.
 */
#include "collect.h"

#include "sr_alloc.h"
#include "sr_arena.h"
#include "sr_clock.h"
#include "sr_collector.h"
#include "sr_log.h"

#include <getopt.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define INFLIGHT_MAX 64 /* batches sent and not acked before reading pauses */

typedef struct {
    const char *proto, *endpoints, *collector_id;
    long batch, timeout_s, resend_ms;
} args_t;

static const char s_usage[] =
    "usage: sr-collect --proto FILE|- --endpoints tcp://HOST:PORT[,...] [options]\n"
    "Send room samples (length-delimited protobuf RoomSample records) to sr-ingestd.\n"
    "  --proto FILE         input file, - for stdin\n"
    "  --endpoints LIST     comma-separated ingestd collector endpoints\n"
    "  --batch N            samples per batch (default 500)\n"
    "  --collector-id ID    collector id (default collect@HOST:PID:TIME; reuse one to resend\n"
    "                       the same file and have it recognised as duplicate)\n"
    "  --timeout SECONDS    give up when no ack arrives for this long (default 60)\n"
    "  --resend-ms MS       resend a batch with no ack after MS (default 2000)\n"
    "Exit: 0 all stored, 1 bad input / rejected / timed out, 2 bad arguments.\n";

static int s_usage_error(const char *what)
{
    if (what)
        fprintf(stderr, "sr-collect: %s\n", what);
    fputs(s_usage, stderr);
    return 2;
}

static int s_parse(int argc, char **argv, args_t *a)
{
    static const struct option opts[] = {
        {"proto", required_argument, NULL, 'p'},   {"endpoints", required_argument, NULL, 'e'},
        {"batch", required_argument, NULL, 'b'},   {"collector-id", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'}, {"resend-ms", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    *a = (args_t){.batch = 500, .timeout_s = 60, .resend_ms = 2000};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        long *num = c == 'b'   ? &a->batch
                    : c == 't' ? &a->timeout_s
                    : c == 'r' ? &a->resend_ms
                               : NULL;
        if (num) {
            *num = strtol(optarg, &end, 10);
            if (*end || end == optarg || *num < 1 || *num > 1000000)
                return -1;
        } else if (c == 'p')
            a->proto = optarg;
        else if (c == 'e')
            a->endpoints = optarg;
        else if (c == 'i')
            a->collector_id = optarg;
        else
            return -1;
    }
    return optind == argc && a->proto && a->endpoints ? 0 : -1;
}

/* s_read_batch - up to n samples into the arena; COLLECT_READ_END only when none was read */
static collect_read_t s_read_batch(collect_reader_t *r, sr_arena_t *arena, long n,
                                   Sr__CollectorBatch *batch)
{
    batch->samples = sr_arena_alloc(arena, (size_t)n * sizeof *batch->samples);
    batch->n_samples = 0;
    while ((long)batch->n_samples < n) {
        Sr__RoomSample *s;
        collect_read_t rc = collect_reader_next(r, sr_arena_pb_allocator(arena), &s);
        if (rc == COLLECT_READ_BAD)
            return rc;
        if (rc == COLLECT_READ_END)
            break;
        batch->samples[batch->n_samples++] = s;
    }
    return batch->n_samples ? COLLECT_READ_OK : COLLECT_READ_END;
}

/* s_run - read, send, wait; 0 ok, -1 with a message printed */
static int s_run(const args_t *a, collect_reader_t *r, sr_collector_t *c, uint64_t *rows)
{
    sr_arena_t *arena = sr_arena_new(256 * 1024);
    int64_t timeout_ms = a->timeout_s * 1000, progress_ms = sr_clock_mono_ms();
    collect_read_t rc;
    int failed = 0;
    for (;;) {
        Sr__CollectorBatch batch = SR__COLLECTOR_BATCH__INIT;
        sr_arena_reset(arena);
        if ((rc = s_read_batch(r, arena, a->batch, &batch)) != COLLECT_READ_OK)
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
        fprintf(stderr, "sr-collect: %s: %s (batches before it were sent)\n", a->proto,
                collect_reader_error(r));
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

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--config-markdown") == 0)
        return 0; /* no SR_* settings: arguments only (the README check asks every sr-*) */
    args_t a;
    if (argc < 2)
        return s_usage_error(NULL);
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (s_parse(argc, argv, &a) < 0)
        return s_usage_error("bad or missing argument");
    char host[64] = "host", *default_id = NULL;
    if (gethostname(host, sizeof host) < 0)
        strcpy(host, "host");
    host[sizeof host - 1] = '\0';
    if (!a.collector_id)
        a.collector_id = default_id =
            sr_asprintf("collect@%s:%d:%lld", host, (int)getpid(), (long long)time(NULL));
    sr_log_init("collect", a.collector_id);
    FILE *in = strcmp(a.proto, "-") == 0 ? stdin : fopen(a.proto, "rb");
    if (!in) {
        fprintf(stderr, "sr-collect: cannot open %s: %s\n", a.proto, strerror(errno));
        free(default_id);
        return 1;
    }
    void *ctx = zmq_ctx_new();
    sr_collector_opts_t opts = {.resend_ms = a.resend_ms};
    sr_collector_t *c = sr_collector_new(ctx, a.endpoints, a.collector_id, &opts);
    int rc = 1;
    if (c) {
        collect_reader_t *r = collect_reader_new(in);
        uint64_t rows = 0;
        rc = s_run(&a, r, c, &rows) == 0 ? 0 : 1;
        const sr_collector_stats_t *st = sr_collector_stats(c);
        printf("rows_sent=%llu batches=%llu stored=%llu duplicate=%llu rejected=%llu "
               "resends=%llu busy=%llu\n",
               (unsigned long long)rows, (unsigned long long)st->sent,
               (unsigned long long)st->stored, (unsigned long long)st->duplicate,
               (unsigned long long)st->rejected, (unsigned long long)st->resent,
               (unsigned long long)st->busy);
        collect_reader_destroy(&r);
        sr_collector_destroy(&c);
    } else
        fprintf(stderr, "sr-collect: bad --endpoints %s\n", a.endpoints);
    zmq_ctx_term(ctx);
    if (in != stdin)
        fclose(in);
    free(default_id);
    return rc;
}
