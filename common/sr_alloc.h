/* sr_alloc - allocation helpers that abort on out-of-memory.
 *
 * Call sites need no NULL checks: a failed allocation logs one line and aborts, because a daemon
 * that cannot allocate cannot keep any promise it made. Every returned pointer is the caller's
 * to free(). See sr_arena.h for short-lived allocations freed all at once.
 */
#ifndef SR_ALLOC_H
#define SR_ALLOC_H

#include <stddef.h>

void *sr_malloc(size_t size);
void *sr_calloc(size_t count, size_t size);
void *sr_realloc(void *ptr, size_t size);
char *sr_strdup(const char *s);
char *sr_strndup(const char *s, size_t n);
char *sr_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* SR_FREE - free and null the pointer, so a second free is harmless */
#define SR_FREE(p)                                                                                 \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

#endif
