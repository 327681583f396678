/* sr_arena - bump allocator over a list of chunks. See sr_arena.h. */
#include "sr_arena.h"

#include "sr_alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16

typedef struct chunk_t {
    struct chunk_t *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    _Alignas(ALIGN) unsigned char data[];
} chunk_t;

struct sr_arena_t {
    chunk_t *head; /* the chunk being filled; older ones follow */
    size_t chunk_size;
    size_t used;
    ProtobufCAllocator pb;
};

static chunk_t *s_chunk_new(size_t size)
{
    chunk_t *c = sr_malloc(sizeof *c + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

static void *s_pb_alloc(void *data, size_t size)
{
    return sr_arena_alloc(data, size);
}

static void s_pb_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

sr_arena_t *sr_arena_new(size_t chunk_size)
{
    sr_arena_t *self = sr_calloc(1, sizeof *self);
    self->chunk_size = chunk_size < 256 ? 256 : chunk_size;
    self->head = s_chunk_new(self->chunk_size);
    self->pb.alloc = s_pb_alloc;
    self->pb.free = s_pb_free;
    self->pb.allocator_data = self;
    return self;
}

void sr_arena_destroy(sr_arena_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chunk_t *c = (*self_p)->head;
    while (c) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
    SR_FREE(*self_p);
}

void *sr_arena_alloc(sr_arena_t *self, size_t size)
{
    size_t need = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need == 0)
        need = ALIGN;
    chunk_t *c = self->head;
    if (c->size - c->used < need) {
        chunk_t *fresh = s_chunk_new(need > self->chunk_size ? need : self->chunk_size);
        fresh->next = c;
        self->head = c = fresh;
    }
    void *p = c->data + c->used;
    c->used += need;
    self->used += need;
    memset(p, 0, size);
    return p;
}

char *sr_arena_strndup(sr_arena_t *self, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = sr_arena_alloc(self, len + 1);
    memcpy(p, s, len);
    return p;
}

char *sr_arena_strdup(sr_arena_t *self, const char *s)
{
    return sr_arena_strndup(self, s, SIZE_MAX);
}

char *sr_arena_printf(sr_arena_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = sr_arena_alloc(self, len < 0 ? 1 : (size_t)len + 1);
    if (len > 0) {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)len + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

void sr_arena_reset(sr_arena_t *self)
{
    chunk_t *c = self->head;
    while (c->next) {
        chunk_t *next = c->next;
        free(c);
        c = next;
    }
    /* keep the oldest chunk, which has the usual size */
    self->head = c;
    c->used = 0;
    self->used = 0;
}

size_t sr_arena_used(const sr_arena_t *self)
{
    return self->used;
}

ProtobufCAllocator *sr_arena_pb_allocator(sr_arena_t *self)
{
    return &self->pb;
}

char **sr_arena_split(sr_arena_t *self, const char *text, char sep, size_t *n)
{
    *n = 0;
    if (!text || !text[0])
        return NULL;
    size_t count = 1;
    for (const char *p = text; *p; p++)
        count += *p == sep;
    char **out = sr_arena_alloc(self, count * sizeof *out);
    char *copy = sr_arena_strdup(self, text);
    for (char *item = copy, *next; item; item = next) {
        next = strchr(item, sep);
        if (next)
            *next++ = '\0';
        out[(*n)++] = item;
    }
    return out;
}
