/* sr_cursor - opaque page cursors for list methods: a sort key and a row id, as base64url.
 *
 * A list method answers a page and a next_cursor made from its last row; the client sends it
 * back unchanged to get the next page. The text is opaque to clients, so its layout may change;
 * one that does not decode is a bad request naming the cursor field.
 */
#ifndef SR_CURSOR_H
#define SR_CURSOR_H

#include "sr_arena.h"

#include <stdint.h>

#define SR_CURSOR_KEY_MAX 300
#define SR_PAGE_LIMIT     50  /* rows in a page when the request names no limit */
#define SR_PAGE_LIMIT_MAX 200 /* the most a request may ask for */

/* sr_page_limit - a list's page size: the request's limit when 1..SR_PAGE_LIMIT_MAX, else the
 * default */
int sr_page_limit(int32_t limit);

/* sr_cursor_make - the cursor of (key, id), in arena */
char *sr_cursor_make(sr_arena_t *arena, const char *key, int64_t id);
/* sr_cursor_read - back to (key, id), key in arena; -1 when cursor is not one of ours */
int sr_cursor_read(sr_arena_t *arena, const char *cursor, char **key, int64_t *id)
    __attribute__((warn_unused_result));

/* sr_cursor_after - for pages in id order (no sort key): the cursor after last_id when the query
 * read more than limit rows (it asks for limit + 1), else "" (the last page) */
char *sr_cursor_after(sr_arena_t *arena, int rows, int limit, int64_t last_id);
/* sr_cursor_id - the id a cursor of sr_cursor_after holds, 0 for ""; -1 when it is not one */
int sr_cursor_id(sr_arena_t *arena, const char *cursor, int64_t *id)
    __attribute__((warn_unused_result));

#endif
