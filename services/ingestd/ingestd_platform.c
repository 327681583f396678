/* ingestd_platform - the generic mapping engine: one platform's JSON answer -> RoomSample.
 *
 * Owns nothing: the tables are const and live in ingestd_platform_<name>.c, the strings of a
 * sample live in the caller's arena. Money conversions are exact (fen, never a float that is
 * stored), times become UTC microseconds. See ingestd_platform.h for the rules and
 * ingestd_poll.c for the caller.
 */
#include "ingestd_platform.h"

#include "sr_alloc.h"
#include "sr_log.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the largest yuan amount accepted as a JSON number: below it a double still tells a third
 * decimal (0.1 fen off) from rounding noise (< 0.01 fen), so the conversion stays exact */
#define YUAN_NUMBER_MAX 1e11
#define YUAN_DIGITS_MAX 15 /* integer digits of a yuan string: fen still fits in int64 */
#define SECONDS_MAX     1e12
#define CHINA_OFFSET_S  (8 * 3600)

static const ingestd_platform_t *const s_platforms[] = {
    &ingestd_platform_channels,
    &ingestd_platform_douyin,
    &ingestd_platform_kuaishou,
};

const ingestd_platform_t *ingestd_platform_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof s_platforms / sizeof s_platforms[0]; i++)
        if (strcmp(s_platforms[i]->name, name) == 0)
            return s_platforms[i];
    return NULL;
}

const ingestd_platform_t *ingestd_platform_at(size_t i)
{
    return i < sizeof s_platforms / sizeof s_platforms[0] ? s_platforms[i] : NULL;
}

const char *ingestd_platform_name(const ingestd_platform_t *p)
{
    return p->name;
}

Sr__Platform ingestd_platform_id(const ingestd_platform_t *p)
{
    return p->id;
}

char *ingestd_platform_url(const ingestd_platform_t *p, const char *base_url, const char *room_id)
{
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/')
        blen--;
    /* room ids are platform text: escape everything but RFC 3986 unreserved characters */
    char *escaped = sr_malloc(strlen(room_id) * 3 + 1);
    char *w = escaped;
    for (const unsigned char *r = (const unsigned char *)room_id; *r; r++) {
        if ((*r >= 'A' && *r <= 'Z') || (*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') ||
            strchr("-._~", *r))
            *w++ = (char)*r;
        else
            w += sprintf(w, "%%%02X", *r);
    }
    *w = '\0';
    char *url = sr_asprintf("%.*s%s?room_id=%s", (int)blen, base_url, p->path, escaped);
    free(escaped);
    return url;
}

static const char *s_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

/* s_fail - write "platform: what" into err; returns the code to return */
static ingestd_parse_rc_t s_fail(char *err, size_t errlen, ingestd_parse_rc_t rc,
                                 const ingestd_platform_t *p, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static ingestd_parse_rc_t s_fail(char *err, size_t errlen, ingestd_parse_rc_t rc,
                                 const ingestd_platform_t *p, const char *fmt, ...)
{
    if (errlen == 0)
        return rc;
    int n = snprintf(err, errlen, "%s: ", p->name);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* s_days_from_civil - days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant) */
static int64_t s_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

/* s_digits - the n-digit number at s, or -1 when one of them is not a digit */
static int s_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* s_china_time - "YYYY-MM-DD HH:MM:SS" in UTC+8 (China has no DST) -> UTC microseconds */
static int s_china_time(const char *s, int64_t *us)
{
    if (strlen(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' ||
        s[16] != ':')
        return -1;
    int y = s_digits(s, 4), mo = s_digits(s + 5, 2), d = s_digits(s + 8, 2);
    int h = s_digits(s + 11, 2), mi = s_digits(s + 14, 2), se = s_digits(s + 17, 2);
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 59)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return -1;
    int64_t secs = s_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - CHINA_OFFSET_S;
    *us = secs * 1000000;
    return 0;
}

/* s_yuan_string - "1234.5" -> 123450 fen; 0, or an error text */
static const char *s_yuan_string(const char *s, int64_t *fen)
{
    if (*s == '-')
        return "negative";
    int64_t v = 0;
    int idigits = 0;
    for (; *s >= '0' && *s <= '9'; s++, idigits++) {
        if (idigits == YUAN_DIGITS_MAX)
            return "out of range";
        v = v * 10 + (*s - '0');
    }
    if (idigits == 0)
        return "not a yuan amount";
    int decimals = 0;
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, decimals++)
            if (decimals < 2)
                v = v * 10 + (*s - '0');
        if (decimals == 0)
            return "not a yuan amount";
    }
    if (*s != '\0')
        return "not a yuan amount";
    if (decimals > 2)
        return "more than 2 decimals";
    for (; decimals < 2; decimals++)
        v *= 10;
    *fen = v;
    return NULL;
}

/* s_convert - one row's JSON value into the sample; INGESTD_PARSE_OK or a bad-body failure */
static ingestd_parse_rc_t s_convert(const ingestd_platform_t *p, const ingestd_field_t *row,
                                    const json_t *v, const char *room_id, Sr__RoomSample *s,
                                    sr_arena_t *arena, char *err, size_t errlen)
{
    const ingestd_parse_rc_t bad = INGESTD_PARSE_BAD_BODY;
    int64_t *num = (int64_t *)((char *)s + row->offset);
    char **str = (char **)((char *)s + row->offset);
    switch (row->conv) {
    case INGESTD_CONV_COUNT:
    case INGESTD_CONV_FEN:
    case INGESTD_CONV_UNIX_S:
    case INGESTD_CONV_UNIX_MS: {
        if (!json_is_integer(v))
            return s_fail(err, errlen, bad, p, "%s: expected an integer, got %s", row->json,
                          s_type_name(v));
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return s_fail(err, errlen, bad, p, "%s: negative (%lld)", row->json, (long long)i);
        int64_t scale = row->conv == INGESTD_CONV_UNIX_S    ? 1000000
                        : row->conv == INGESTD_CONV_UNIX_MS ? 1000
                                                            : 1;
        if (i > INT64_MAX / scale)
            return s_fail(err, errlen, bad, p, "%s: out of range (%lld)", row->json, (long long)i);
        *num = (int64_t)i * scale;
        return INGESTD_PARSE_OK;
    }
    case INGESTD_CONV_YUAN_NUMBER:
    case INGESTD_CONV_SECONDS_REAL: {
        if (!json_is_number(v))
            return s_fail(err, errlen, bad, p, "%s: expected a number, got %s", row->json,
                          s_type_name(v));
        double x = json_number_value(v);
        if (x < 0)
            return s_fail(err, errlen, bad, p, "%s: negative (%.10g)", row->json, x);
        double limit = row->conv == INGESTD_CONV_YUAN_NUMBER ? YUAN_NUMBER_MAX : SECONDS_MAX;
        if (x > limit)
            return s_fail(err, errlen, bad, p, "%s: out of range (%.10g)", row->json, x);
        if (row->conv == INGESTD_CONV_SECONDS_REAL) {
            *num = llround(x);
            return INGESTD_PARSE_OK;
        }
        /* a 2-decimal amount is within rounding noise of a whole fen; a third decimal is at
         * least 0.1 fen away from one */
        double cents = x * 100.0;
        long long fen = llround(cents);
        if (fabs(cents - (double)fen) > 0.01)
            return s_fail(err, errlen, bad, p, "%s: more than 2 decimals (%.10g)", row->json, x);
        *num = fen;
        return INGESTD_PARSE_OK;
    }
    case INGESTD_CONV_YUAN_STRING: {
        if (!json_is_string(v))
            return s_fail(err, errlen, bad, p, "%s: expected a string, got %s", row->json,
                          s_type_name(v));
        const char *problem = s_yuan_string(json_string_value(v), num);
        if (problem)
            return s_fail(err, errlen, bad, p, "%s: %s (\"%.32s\")", row->json, problem,
                          json_string_value(v));
        return INGESTD_PARSE_OK;
    }
    case INGESTD_CONV_CHINA_TIME: {
        if (!json_is_string(v))
            return s_fail(err, errlen, bad, p, "%s: expected a string, got %s", row->json,
                          s_type_name(v));
        if (s_china_time(json_string_value(v), num) < 0)
            return s_fail(err, errlen, bad, p, "%s: not a time \"YYYY-MM-DD HH:MM:SS\" (\"%.32s\")",
                          row->json, json_string_value(v));
        return INGESTD_PARSE_OK;
    }
    case INGESTD_CONV_STRING:
    case INGESTD_CONV_ROOM_ID: {
        if (!json_is_string(v))
            return s_fail(err, errlen, bad, p, "%s: expected a string, got %s", row->json,
                          s_type_name(v));
        const char *text = json_string_value(v);
        if (*text == '\0')
            return s_fail(err, errlen, bad, p, "%s: empty", row->json);
        if (row->conv == INGESTD_CONV_ROOM_ID && strcmp(text, room_id) != 0)
            return s_fail(err, errlen, bad, p, "%s: answer for room \"%.64s\", asked for \"%.64s\"",
                          row->json, text, room_id);
        *str = sr_arena_strdup(arena, text);
        return INGESTD_PARSE_OK;
    }
    }
    sr_panic("platform_table", "platform=%s field=%s conv=%d", p->name, row->json, (int)row->conv);
}

ingestd_parse_rc_t ingestd_platform_parse(const ingestd_platform_t *p, const char *room_id,
                                          const char *body, size_t len, Sr__RoomSample *out,
                                          sr_arena_t *arena, char *err, size_t errlen)
{
    assert(p && room_id && out && arena);
    sr__room_sample__init(out);
    if (errlen > 0)
        err[0] = '\0';
    if (len == 0)
        return s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "empty body");
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    if (!root)
        return s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "not JSON: %s (line %d column %d)",
                      jerr.text, jerr.line, jerr.column);

    ingestd_parse_rc_t rc = INGESTD_PARSE_OK;
    json_t *code = json_object_get(root, p->code_field);
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(root))
        rc = s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "expected an object, got %s",
                    s_type_name(root));
    else if (!code)
        rc = s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "%s: missing", p->code_field);
    else if (!json_is_integer(code))
        rc = s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "%s: expected an integer, got %s",
                    p->code_field, s_type_name(code));
    else if (json_integer_value(code) != p->ok_code) {
        const char *msg = json_string_value(json_object_get(root, p->msg_field));
        rc = s_fail(err, errlen, INGESTD_PARSE_PLATFORM_ERROR, p, "%s %lld: %.200s", p->code_field,
                    (long long)json_integer_value(code), msg ? msg : "");
    } else if (!data || json_is_null(data))
        rc = s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "data: missing");
    else if (!json_is_object(data))
        rc = s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "data: expected an object, got %s",
                    s_type_name(data));

    Sr__RoomSample s;
    sr__room_sample__init(&s);
    s.platform = p->id;
    s.room_id = sr_arena_strdup(arena, room_id);
    for (size_t i = 0; rc == INGESTD_PARSE_OK && i < p->nrows; i++) {
        const ingestd_field_t *row = &p->rows[i];
        json_t *v = json_object_get(data, row->json);
        if (!v || json_is_null(v)) {
            if (row->required)
                rc = s_fail(err, errlen, INGESTD_PARSE_BAD_BODY, p, "%s: missing", row->json);
            continue;
        }
        rc = s_convert(p, row, v, room_id, &s, arena, err, errlen);
    }
    json_decref(root);
    if (rc == INGESTD_PARSE_OK)
        *out = s;
    return rc;
}
