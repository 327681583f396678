/* collect - `sr-collect`, a one-shot command that sends room samples to sr-ingestd.
 *
 * It is not a daemon: main.c parses argv itself and exits when every batch is acked, and
 * deploy/run.sh skips it. Two inputs: length-delimited protobuf (a varint length, then a packed
 * RoomSample, repeated, the format protobuf's writeDelimitedTo() produces) read as a stream, and
 * a platform's CSV export, parsed and checked whole before anything is sent. Sending, acks and
 * resends are common/sr_collector's.
 *
 * Files: main.c (arguments, dispatch), collect_send.c (the send loop, the summary),
 * collect_proto.c (the record reader), collect_csv.c (the CSV parser and the per-platform
 * header tables).
 */
#ifndef COLLECT_H
#define COLLECT_H

#include "metrics.pb-c.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define COLLECT_RECORD_MAX     (1 << 20) /* a RoomSample is ~100 bytes; larger means a bad file */
#define COLLECT_CSV_MAX_ERRORS 50        /* problems reported before a bad CSV file is given up */
#define COLLECT_DEFAULT_BATCH  500       /* samples per batch unless --batch says otherwise */

typedef struct collect_reader_t collect_reader_t;

typedef enum {
    COLLECT_READ_OK = 0,   /* *out is a sample */
    COLLECT_READ_END = 1,  /* clean end of input */
    COLLECT_READ_BAD = -1, /* malformed input; collect_reader_error() says where and why */
} collect_read_t;

/* collect_reader_new - read records from in (not closed by the reader) */
collect_reader_t *collect_reader_new(FILE *in);
void collect_reader_destroy(collect_reader_t **self_p);
/* collect_reader_next - the next sample, allocated with allocator (NULL = malloc) */
collect_read_t collect_reader_next(collect_reader_t *self, ProtobufCAllocator *allocator,
                                   Sr__RoomSample **out);
/* collect_reader_error - "record 3 at byte 120: truncated length" after COLLECT_READ_BAD */
const char *collect_reader_error(const collect_reader_t *self);

/* A parsed CSV export: every row as a sample, or the problems that make the file unusable. */
typedef struct collect_csv_t collect_csv_t;

/* collect_csv_platform - "douyin", "channels", "kuaishou" -> the platform; 0 when unknown */
Sr__Platform collect_csv_platform(const char *name);
/* collect_csv_parse - parse len bytes of CSV named name (used in error lines) exported by
 * platform; room is the room id for files without a room column (NULL = none given). Never NULL:
 * ask collect_csv_n_errors() whether the file is good. */
collect_csv_t *collect_csv_parse(const char *name, const char *data, size_t len,
                                 Sr__Platform platform, const char *room);
void collect_csv_destroy(collect_csv_t **self_p);
/* collect_csv_n_errors - problems found, at most COLLECT_CSV_MAX_ERRORS (+1 for the line that
 * says the rest was not checked); each is "FILE:LINE:COLUMN: message" */
size_t collect_csv_n_errors(const collect_csv_t *self);
const char *collect_csv_error(const collect_csv_t *self, size_t i);
/* collect_csv_n_samples - rows read; 0 when the file has errors */
size_t collect_csv_n_samples(const collect_csv_t *self);
Sr__RoomSample *collect_csv_sample(const collect_csv_t *self, size_t i);
/* collect_csv_next - collect_source_fn over the samples, in file order (the allocator unused) */
collect_read_t collect_csv_next(void *self, ProtobufCAllocator *allocator, Sr__RoomSample **out);

/* collect_source_fn - the next sample of an input, like collect_reader_next() */
typedef collect_read_t (*collect_source_fn)(void *src, ProtobufCAllocator *allocator,
                                            Sr__RoomSample **out);

typedef struct {
    const char *input;        /* the input's name, for messages */
    const char *endpoints;    /* ingestd collector endpoints, comma-separated */
    const char *collector_id; /* never NULL */
    long batch, timeout_s, resend_ms;
} collect_send_opts_t;

/* collect_import_proto - send the length-delimited protobuf file path (- = stdin); a NULL
 * collector_id becomes collect@HOST:PID:TIME. Returns the exit status, like collect_send(). */
int collect_import_proto(const collect_send_opts_t *opts, const char *path);
/* collect_import_csv - parse the CSV export path (- = stdin) of platform (a name) whole: when it
 * has problems, print them to stderr and return 1 without sending; else send every row. A NULL
 * collector_id becomes csv:PLATFORM:<first 16 hex of the content's SHA-256>, plus ":batch=N"
 * for a batch size other than COLLECT_DEFAULT_BATCH and ":room=ROOM" with a room, so importing
 * the same file the same way again is answered DUPLICATE and stores nothing. */
int collect_import_csv(const collect_send_opts_t *opts, const char *path, const char *platform,
                       const char *room);

/* collect_send - read samples from next(src) in batches, send them, wait for every ack and print
 * the one-line summary to stdout; problems go to stderr. Returns the exit status: 0 every batch
 * stored or duplicate, 1 otherwise. error(src) describes a COLLECT_READ_BAD. */
int collect_send(const collect_send_opts_t *opts, collect_source_fn next, void *src,
                 const char *(*error)(const void *src));

#endif
