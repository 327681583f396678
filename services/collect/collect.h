/* collect - `sr-collect`, a one-shot command that sends room samples to sr-ingestd.
 *
 * It is not a daemon: main.c parses argv itself and exits when every batch is acked, and
 * deploy/run.sh skips it. Input is length-delimited protobuf (a varint length, then a packed
 * RoomSample, repeated), the format protobuf's writeDelimitedTo() produces. Sending, acks and
 * resends are common/sr_collector's.
 *
 * Files: main.c (arguments, the send loop, the summary), collect_proto.c (the record reader).
 */
#ifndef COLLECT_H
#define COLLECT_H

#include "metrics.pb-c.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define COLLECT_RECORD_MAX (1 << 20) /* a RoomSample is ~100 bytes; larger means a bad file */

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

#endif
