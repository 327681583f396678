/* ingestd_platform - the platform connectors: each platform's live-room JSON -> Sr__RoomSample.
 *
 * A platform is a const table of rows {JSON field, RoomSample field, unit conversion, required}
 * plus its envelope (the status code and message fields around "data"); one generic engine in
 * ingestd_platform.c walks the table, so adding a platform or a field is adding a row. The
 * tables live in ingestd_platform_channels.c, ingestd_platform_douyin.c and
 * ingestd_platform_kuaishou.c; the fixtures in tests/fixtures/platforms/ are the contract for
 * the shapes. The poller that fetches these bodies is ingestd_poll.h.
 *
 * Rules of the engine: a missing required field (or null), a wrong JSON type, a negative count
 * or amount, or an amount that is not exact in fen fails the whole parse with a message naming
 * the platform, the field and the problem, and no partial sample. Unknown fields are ignored:
 * platforms add fields. An optional field that is absent is 0.
 */
#ifndef INGESTD_PLATFORM_H
#define INGESTD_PLATFORM_H

#include "metrics.pb-c.h"
#include "sr_arena.h"

#include <stddef.h>

typedef struct ingestd_platform_t ingestd_platform_t;

/* what ingestd_platform_parse() found */
typedef enum {
    INGESTD_PARSE_OK = 0,
    INGESTD_PARSE_BAD_BODY = -1,       /* not JSON, wrong shape, a field missing or wrong */
    INGESTD_PARSE_PLATFORM_ERROR = -2, /* a well-formed answer carrying the platform's error code */
} ingestd_parse_rc_t;

/* ingestd_platform_find - "channels", "douyin" or "kuaishou"; NULL for anything else */
const ingestd_platform_t *ingestd_platform_find(const char *name);
/* ingestd_platform_at - the i-th known platform, NULL past the end (for listing them) */
const ingestd_platform_t *ingestd_platform_at(size_t i);
const char *ingestd_platform_name(const ingestd_platform_t *p);
Sr__Platform ingestd_platform_id(const ingestd_platform_t *p);

/* ingestd_platform_url - base_url (no trailing slash needed) + the platform's live-data path +
 * "?room_id=" + room_id percent-encoded; caller frees */
char *ingestd_platform_url(const ingestd_platform_t *p, const char *base_url, const char *room_id);

/* ingestd_platform_parse - one answer body (len bytes, need not be NUL-terminated) for room_id
 * into *out, which is initialized here. Strings in *out come from arena and live until its
 * reset. room_id is the room the request asked for: it fills out->room_id for platforms whose
 * body does not carry it, and must match the body's room id for those that do (Douyin). On
 * failure *out is left empty and err holds "platform: field: problem". */
ingestd_parse_rc_t ingestd_platform_parse(const ingestd_platform_t *p, const char *room_id,
                                          const char *body, size_t len, Sr__RoomSample *out,
                                          sr_arena_t *arena, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* --- for the platform modules: how a mapping table is written ---------------------------- */

/* the unit conversion of one row; every numeric kind rejects negative values */
typedef enum {
    INGESTD_CONV_COUNT,        /* JSON integer -> int64 as is */
    INGESTD_CONV_FEN,          /* JSON integer already in fen -> int64 as is */
    INGESTD_CONV_YUAN_NUMBER,  /* JSON number in yuan, at most 2 decimals -> fen */
    INGESTD_CONV_YUAN_STRING,  /* JSON string "123.45" in yuan, at most 2 decimals -> fen */
    INGESTD_CONV_SECONDS_REAL, /* JSON number of seconds, maybe fractional -> rounded int64 */
    INGESTD_CONV_UNIX_S,       /* JSON integer Unix seconds -> microseconds */
    INGESTD_CONV_UNIX_MS,      /* JSON integer Unix milliseconds -> microseconds */
    INGESTD_CONV_CHINA_TIME,   /* "YYYY-MM-DD HH:MM:SS" in UTC+8 -> microseconds UTC */
    INGESTD_CONV_STRING,       /* non-empty JSON string -> char * (arena copy) */
    INGESTD_CONV_ROOM_ID,      /* like STRING, and must equal the requested room id */
} ingestd_conv_t;

typedef struct {
    const char *json;    /* field name inside "data" */
    size_t offset;       /* offsetof(Sr__RoomSample, field) */
    ingestd_conv_t conv; /* how the value becomes the field */
    int required;        /* 1: missing or null fails the parse; 0: missing is 0 / "" */
} ingestd_field_t;

struct ingestd_platform_t {
    const char *name;            /* "douyin": in URLs of config, labels and error texts */
    Sr__Platform id;             /* in every sample */
    const char *path;            /* live-data path on the platform's base URL */
    const char *code_field;      /* envelope status code (a JSON integer) */
    long long ok_code;           /* the value of code_field that means success */
    const char *msg_field;       /* envelope error message, may be absent */
    const ingestd_field_t *rows; /* the mapping table */
    size_t nrows;
};

extern const ingestd_platform_t ingestd_platform_channels;
extern const ingestd_platform_t ingestd_platform_douyin;
extern const ingestd_platform_t ingestd_platform_kuaishou;

#endif
