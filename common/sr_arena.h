/* sr_arena - a bump allocator for work that is freed all at once.
 *
 * One request, one decoded message, one reply: allocate everything from an arena and reset it
 * when the work is done, instead of freeing field by field. Memory is zeroed and 16-byte
 * aligned. sr_arena_pb_allocator() lets protobuf_c_message_unpack() allocate from the arena
 * (its free is a no-op). Not thread-safe: one arena per thread of work.
 */
#ifndef SR_ARENA_H
#define SR_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct sr_arena_t sr_arena_t;

/* sr_arena_new - chunk_size is the usual chunk; larger requests get a chunk of their own */
sr_arena_t *sr_arena_new(size_t chunk_size);
void sr_arena_destroy(sr_arena_t **self_p);

void *sr_arena_alloc(sr_arena_t *self, size_t size);
char *sr_arena_strdup(sr_arena_t *self, const char *s);
char *sr_arena_strndup(sr_arena_t *self, const char *s, size_t n);
/* sr_arena_split - text cut at each sep into arena strings, count in *n; NULL and 0 for "" */
char **sr_arena_split(sr_arena_t *self, const char *text, char sep, size_t *n);
char *sr_arena_printf(sr_arena_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sr_arena_reset - forget every allocation; keeps the first chunk for reuse */
void sr_arena_reset(sr_arena_t *self);
/* sr_arena_used - bytes handed out since the last reset */
size_t sr_arena_used(const sr_arena_t *self);
ProtobufCAllocator *sr_arena_pb_allocator(sr_arena_t *self);

#endif
