/* sr_cursor - page cursors: "<key>\x1f<id>" in base64url without padding. See sr_cursor.h. */
#include "sr_cursor.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sr_page_limit(int32_t limit)
{
    return limit > 0 && limit <= SR_PAGE_LIMIT_MAX ? limit : SR_PAGE_LIMIT;
}

char *sr_cursor_make(sr_arena_t *arena, const char *key, int64_t id)
{
    char plain[SR_CURSOR_KEY_MAX + 32];
    int n = snprintf(plain, sizeof plain, "%.*s\x1f%lld", SR_CURSOR_KEY_MAX, key, (long long)id);
    size_t len = sodium_base64_ENCODED_LEN((size_t)n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = sr_arena_alloc(arena, len);
    sodium_bin2base64(out, len, (const unsigned char *)plain, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

int sr_cursor_read(sr_arena_t *arena, const char *cursor, char **key, int64_t *id)
{
    unsigned char plain[SR_CURSOR_KEY_MAX + 32];
    size_t n;
    if (sodium_base642bin(plain, sizeof plain - 1, cursor, strlen(cursor), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    plain[n] = '\0';
    char *sep = memchr(plain, 0x1f, n);
    if (!sep || memchr(plain, '\0', n))
        return -1;
    *sep = '\0';
    char *end;
    *id = strtoll(sep + 1, &end, 10);
    if (end == sep + 1 || *end)
        return -1;
    *key = sr_arena_strdup(arena, (char *)plain);
    return 0;
}

char *sr_cursor_after(sr_arena_t *arena, int rows, int limit, int64_t last_id)
{
    return rows > limit ? sr_cursor_make(arena, "", last_id) : sr_arena_strdup(arena, "");
}

int sr_cursor_id(sr_arena_t *arena, const char *cursor, int64_t *id)
{
    char *key;
    *id = 0;
    if (!cursor[0])
        return 0;
    return sr_cursor_read(arena, cursor, &key, id) < 0 || *id <= 0 ? -1 : 0;
}
