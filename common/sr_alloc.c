/* sr_alloc - allocation helpers that abort on out-of-memory. See sr_alloc.h. */
#include "sr_alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s_out_of_memory - one line to stderr (the logger may itself need memory), then abort */
static void s_out_of_memory(size_t size)
{
    fprintf(stderr, "level=fatal event=out_of_memory bytes=%zu\n", size);
    abort();
}

void *sr_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        s_out_of_memory(size);
    return p;
}

void *sr_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        s_out_of_memory(count * size);
    return p;
}

void *sr_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        s_out_of_memory(size);
    return p;
}

char *sr_strdup(const char *s)
{
    return sr_strndup(s, strlen(s));
}

char *sr_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = sr_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *sr_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        s_out_of_memory(0);
    char *p = sr_malloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return p;
}
