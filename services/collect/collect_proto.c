/* collect_proto - length-delimited RoomSample records from a stream.
 *
 * Each record is a base-128 varint byte count followed by that many bytes of a packed
 * RoomSample. The reader keeps one buffer that grows to the largest record seen.
 */
#include "collect.h"

#include "sr_alloc.h"

#include <stdlib.h>

struct collect_reader_t {
    FILE *in;
    uint8_t *buf;
    size_t cap;
    uint64_t record; /* 1-based number of the record being read */
    uint64_t offset; /* bytes consumed */
    char error[160];
};

collect_reader_t *collect_reader_new(FILE *in)
{
    collect_reader_t *self = sr_calloc(1, sizeof *self);
    self->in = in;
    return self;
}

void collect_reader_destroy(collect_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

static collect_read_t s_bad(collect_reader_t *self, uint64_t at, const char *why)
{
    snprintf(self->error, sizeof self->error, "record %llu at byte %llu: %s",
             (unsigned long long)self->record, (unsigned long long)at, why);
    return COLLECT_READ_BAD;
}

collect_read_t collect_reader_next(collect_reader_t *self, ProtobufCAllocator *allocator,
                                   Sr__RoomSample **out)
{
    uint64_t start = self->offset, len = 0;
    self->record++;
    for (int shift = 0;; shift += 7) {
        int c = fgetc(self->in);
        if (c == EOF) {
            if (ferror(self->in))
                return s_bad(self, start, "read error");
            return shift == 0 ? COLLECT_READ_END : s_bad(self, start, "truncated length");
        }
        self->offset++;
        if (shift >= 28)
            return s_bad(self, start, "length varint too long");
        len |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    if (len > COLLECT_RECORD_MAX)
        return s_bad(self, start, "record longer than 1 MiB");
    if (len > self->cap) {
        self->cap = len;
        self->buf = sr_realloc(self->buf, self->cap);
    }
    if (len && fread(self->buf, 1, len, self->in) != len)
        return s_bad(self, start, "truncated record");
    self->offset += len;
    *out = sr__room_sample__unpack(allocator, len, self->buf);
    if (!*out)
        return s_bad(self, start, "not a RoomSample");
    return COLLECT_READ_OK;
}

const char *collect_reader_error(const collect_reader_t *self)
{
    return self->error;
}
