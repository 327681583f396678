/* sr_pbjson - JSON <-> protobuf over protobuf-c's descriptors. See sr_pbjson.h.
 *
 * Owns nothing between calls. Encoding walks desc->fields, which protoc-c sorts by field number,
 * so keys come out in field-number order; sr_pbjson_encode_text() dumps with JSON_COMPACT |
 * JSON_PRESERVE_ORDER (no spaces, that order). Decoding walks the object's keys in document order,
 * so the first bad key in the text is the one reported. Both go through one switch over
 * ProtobufCType (s_encode_value, s_decode_value) and the s_types table. Decoded messages, their
 * strings, arrays and bytes live in the caller's arena.
 *
 * Rules beyond the header:
 *   - an unset singular message field (NULL) is written as null, and null reads back as NULL;
 *     null is refused for every other kind of field;
 *   - an enum number the descriptor does not know is written as that number (nothing is lost),
 *     although decoding takes names only;
 *   - NaN and infinities are the strings "NaN", "Infinity", "-Infinity" (the proto3 JSON rule);
 *     a float is written as the shortest decimal that reads back as the same float; doubles are
 *     printed by jansson ("%.17g", so 0.1 reads 0.10000000000000001 - exact, if not pretty);
 *   - an integer field also takes an integral real (2.0, 1e3);
 *   - a uint64 above INT64_MAX must be a string: jansson refuses larger JSON integers;
 *   - a string that is not valid UTF-8 (protobuf-c does not check on unpack) is written with
 *     U+FFFD for each bad byte;
 *   - bytes are standard padded base64 (RFC 4648 section 4, libsodium's ORIGINAL variant);
 *   - map fields are refused at decode; the encoder writes them as arrays of key/value objects.
 * The error path and message are always one line of valid UTF-8.
 */
#include "sr_pbjson.h"

#include "sr_alloc.h"
#include "sr_log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* s_types - per field type: the name used in messages, the size of one value in a message or a
 * repeated array, and for integer types the range */
static const struct {
    const char *name;
    size_t size;
    int64_t min;
    uint64_t max;
} s_types[] = {
    [PROTOBUF_C_TYPE_INT32] = {"int32", sizeof(int32_t), INT32_MIN, INT32_MAX},
    [PROTOBUF_C_TYPE_SINT32] = {"sint32", sizeof(int32_t), INT32_MIN, INT32_MAX},
    [PROTOBUF_C_TYPE_SFIXED32] = {"sfixed32", sizeof(int32_t), INT32_MIN, INT32_MAX},
    [PROTOBUF_C_TYPE_INT64] = {"int64", sizeof(int64_t), INT64_MIN, INT64_MAX},
    [PROTOBUF_C_TYPE_SINT64] = {"sint64", sizeof(int64_t), INT64_MIN, INT64_MAX},
    [PROTOBUF_C_TYPE_SFIXED64] = {"sfixed64", sizeof(int64_t), INT64_MIN, INT64_MAX},
    [PROTOBUF_C_TYPE_UINT32] = {"uint32", sizeof(uint32_t), 0, UINT32_MAX},
    [PROTOBUF_C_TYPE_FIXED32] = {"fixed32", sizeof(uint32_t), 0, UINT32_MAX},
    [PROTOBUF_C_TYPE_UINT64] = {"uint64", sizeof(uint64_t), 0, UINT64_MAX},
    [PROTOBUF_C_TYPE_FIXED64] = {"fixed64", sizeof(uint64_t), 0, UINT64_MAX},
    [PROTOBUF_C_TYPE_FLOAT] = {"float", sizeof(float), 0, 0},
    [PROTOBUF_C_TYPE_DOUBLE] = {"double", sizeof(double), 0, 0},
    [PROTOBUF_C_TYPE_BOOL] = {"bool", sizeof(protobuf_c_boolean), 0, 0},
    /* protobuf-c forces every generated enum to int size */
    [PROTOBUF_C_TYPE_ENUM] = {"enum", sizeof(int), 0, 0},
    [PROTOBUF_C_TYPE_STRING] = {"string", sizeof(char *), 0, 0},
    [PROTOBUF_C_TYPE_BYTES] = {"bytes", sizeof(ProtobufCBinaryData), 0, 0},
    [PROTOBUF_C_TYPE_MESSAGE] = {"message", sizeof(ProtobufCMessage *), 0, 0},
};

/* floats round to infinity from this magnitude up: FLT_MAX plus half an ulp, a tie that rounds
 * to even, which is away from FLT_MAX */
#define FLOAT_OVERFLOW 0x1.ffffffp+127

/* s_utf8_char_len - length of the valid UTF-8 character at s (n bytes left), 0 if none */
static size_t s_utf8_char_len(const unsigned char *s, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        lo = s[0] == 0xE0 ? 0xA0 : lo; /* overlong */
        hi = s[0] == 0xED ? 0x9F : hi; /* surrogates */
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        lo = s[0] == 0xF0 ? 0x90 : lo; /* overlong */
        hi = s[0] == 0xF4 ? 0x8F : hi; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* s_clean_line - in place, make s one line of valid UTF-8: control characters and the bytes of
 * broken or truncated characters become '?' */
static void s_clean_line(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        size_t len = s_utf8_char_len(p, n);
        if (len == 0 || *p < 0x20 || *p == 0x7F) {
            *p = '?';
            len = 1;
        }
        p += len;
        n -= len;
    }
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* s_oom - jansson fails only when out of memory; like sr_alloc, give up */
static void s_oom(void) __attribute__((noreturn));
static void s_oom(void)
{
    sr_panic("pbjson_oom", "what=\"jansson could not allocate\"");
}

static json_t *s_must(json_t *value)
{
    if (!value)
        s_oom();
    return value;
}

/* s_shortest - the shortest "%g" text that reads back as value (as a float if is_float) */
static void s_shortest(char *text, size_t size, double value, int is_float)
{
    for (int digits = 1; digits < 17; digits++) {
        snprintf(text, size, "%.*g", digits, value);
        if (is_float ? strtof(text, NULL) == (float)value : strtod(text, NULL) == value)
            return;
    }
    snprintf(text, size, "%.17g", value);
}

static json_t *s_encode_real(double value, int is_float)
{
    if (isnan(value))
        return json_string("NaN");
    if (isinf(value))
        return json_string(value > 0 ? "Infinity" : "-Infinity");
    if (is_float) {
        /* the double nearest the float's shortest decimal, so that 0.1f is not written
         * 0.10000000149011612; it still converts back to the same float */
        char text[32];
        s_shortest(text, sizeof text, value, 1);
        value = strtod(text, NULL);
    }
    return json_real(value);
}

static json_t *s_encode_enum(const ProtobufCEnumDescriptor *desc, int value)
{
    const ProtobufCEnumValue *known = protobuf_c_enum_descriptor_get_value(desc, value);
    return known ? json_string(known->name) : json_integer(value);
}

/* s_encode_string - json_string() refuses invalid UTF-8, which protobuf-c lets through from the
 * wire; write such a string with U+FFFD for each bad byte rather than failing the whole message */
static json_t *s_encode_string(const char *s)
{
    if (!s)
        return json_string("");
    json_t *json = json_string(s);
    if (json)
        return json;
    size_t n = strlen(s);
    char *clean = sr_malloc(n * 3 + 1);
    char *out = clean;
    const unsigned char *p = (const unsigned char *)s;
    while (n > 0) {
        size_t len = s_utf8_char_len(p, n);
        if (len == 0) {
            memcpy(out, "\xEF\xBF\xBD", 3);
            out += 3;
            len = 1;
        } else {
            memcpy(out, p, len);
            out += len;
        }
        p += len;
        n -= len;
    }
    *out = '\0';
    json = json_string(clean);
    free(clean);
    return json;
}

static json_t *s_encode_bytes(const ProtobufCBinaryData *bin)
{
    size_t size = sodium_base64_ENCODED_LEN(bin->len, sodium_base64_VARIANT_ORIGINAL);
    char *text = sr_malloc(size);
    sodium_bin2base64(text, size, bin->data, bin->len, sodium_base64_VARIANT_ORIGINAL);
    json_t *json = json_string(text);
    free(text);
    return json;
}

/* s_encode_value - one value of field's type stored at member */
static json_t *s_encode_value(const ProtobufCFieldDescriptor *field, const void *member)
{
    char text[24];
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)member);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)member);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(text, sizeof text, "%" PRId64, *(const int64_t *)member);
        return json_string(text);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(text, sizeof text, "%" PRIu64, *(const uint64_t *)member);
        return json_string(text);
    case PROTOBUF_C_TYPE_FLOAT:
        return s_encode_real(*(const float *)member, 1);
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_encode_real(*(const double *)member, 0);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)member);
    case PROTOBUF_C_TYPE_ENUM:
        return s_encode_enum(field->descriptor, *(const int *)member);
    case PROTOBUF_C_TYPE_STRING:
        return s_encode_string(*(char *const *)member);
    case PROTOBUF_C_TYPE_BYTES:
        return s_encode_bytes(member);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
        return sub ? sr_pbjson_encode(sub) : json_null();
    }
    }
    sr_panic("pbjson_bad_type", "field=%s type=%d", field->name, (int)field->type);
}

/* s_is_written - oneof members and optional fields only when set, everything else always */
static int s_is_written(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const char *base = (const char *)msg;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + field->quantifier_offset) == field->id;
    if (field->label != PROTOBUF_C_LABEL_OPTIONAL)
        return 1;
    if (field->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + field->quantifier_offset);
    /* optional strings and messages have no has_ flag: set means not NULL (nor the default) */
    const void *value = *(const void *const *)(base + field->offset);
    return value && value != field->default_value;
}

static json_t *s_encode_repeated(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
    const char *base = (const char *)msg;
    size_t count = *(const size_t *)(base + field->quantifier_offset);
    const char *items = *(const char *const *)(base + field->offset);
    json_t *array = s_must(json_array());
    for (size_t i = 0; i < count; i++) {
        json_t *item = s_must(s_encode_value(field, items + i * s_types[field->type].size));
        if (json_array_append_new(array, item) != 0)
            s_oom();
    }
    return array;
}

json_t *sr_pbjson_encode(const ProtobufCMessage *msg)
{
    assert(msg && msg->descriptor);
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    json_t *object = s_must(json_object());
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        json_t *value;
        if (field->label == PROTOBUF_C_LABEL_REPEATED)
            value = s_encode_repeated(msg, field);
        else if (s_is_written(msg, field))
            value = s_must(s_encode_value(field, (const char *)msg + field->offset));
        else
            continue;
        if (json_object_set_new(object, field->name, value) != 0)
            s_oom();
    }
    return object;
}

/* ---- encoding straight to text ------------------------------------------------------------
 * The same document as json_dumps(sr_pbjson_encode(msg), JSON_COMPACT | JSON_PRESERVE_ORDER),
 * written into one growing buffer without building the jansson tree (which was most of the
 * gateway's time on a page of fifty tasks). Strings are escaped as jansson escapes them;
 * reals and bytes, rare in replies, go through jansson itself so they stay identical.
 * tests/unit/common/test_sr_pbjson.c holds the two encoders to the same bytes. */

typedef struct {
    char *text;
    size_t len, cap;
} text_t;

static void s_put(text_t *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        while (t->len + n + 1 > t->cap)
            t->cap = t->cap ? t->cap * 2 : 1024;
        t->text = sr_realloc(t->text, t->cap);
    }
    memcpy(t->text + t->len, s, n);
    t->len += n;
    t->text[t->len] = '\0';
}

static void s_puts(text_t *t, const char *s)
{
    s_put(t, s, strlen(s));
}

/* s_put_string - a JSON string as jansson writes it: \\ \" and control characters escaped
 * (\b \f \n \r \t by name, the rest \u00XX), UTF-8 as is, each invalid byte as U+FFFD */
static void s_put_string(text_t *t, const char *s)
{
    s_put(t, "\"", 1);
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    while (n > 0) {
        size_t run = 0;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run) {
            s_put(t, (const char *)p, run);
            p += run, n -= run;
            continue;
        }
        unsigned char c = *p;
        if (c >= 0x80) {
            size_t len = s_utf8_char_len(p, n);
            if (len == 0)
                s_put(t, "\xEF\xBF\xBD", 3), len = 1;
            else
                s_put(t, (const char *)p, len);
            p += len, n -= len;
            continue;
        }
        char esc[8];
        const char *named = c == '"'    ? "\\\""
                            : c == '\\' ? "\\\\"
                            : c == '\b' ? "\\b"
                            : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
        if (!named) {
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned)c);
            named = esc;
        }
        s_puts(t, named);
        p++, n--;
    }
    s_put(t, "\"", 1);
}

/* s_put_json - a scalar built by the tree encoder, dumped by jansson */
static void s_put_json(text_t *t, json_t *json)
{
    char *text = json_dumps(s_must(json), JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(json);
    if (!text)
        s_oom();
    s_puts(t, text);
    free(text);
}

static void s_put_message(text_t *t, const ProtobufCMessage *msg);

/* s_put_unsigned - v in decimal after a '-' when negative, in quotes when quoted (64-bit
 * integers are JSON strings); the hot path of every id and time, so no printf */
static void s_put_unsigned(text_t *t, uint64_t v, int negative, int quoted)
{
    char num[24]; /* quote, '-', 20 digits, quote */
    char *p = num + sizeof num;
    if (quoted)
        *--p = '"';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (negative)
        *--p = '-';
    if (quoted)
        *--p = '"';
    s_put(t, p, (size_t)(num + sizeof num - p));
}

static void s_put_integer(text_t *t, int64_t v, int quoted)
{
    s_put_unsigned(t, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0, quoted);
}

static void s_put_value(text_t *t, const ProtobufCFieldDescriptor *field, const void *member)
{
    char num[32];
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return s_put_integer(t, *(const int32_t *)member, 0);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return s_put_unsigned(t, *(const uint32_t *)member, 0, 0);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return s_put_integer(t, *(const int64_t *)member, 1);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_put_unsigned(t, *(const uint64_t *)member, 0, 1);
    case PROTOBUF_C_TYPE_BOOL:
        return s_puts(t, *(const protobuf_c_boolean *)member ? "true" : "false");
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *known =
            protobuf_c_enum_descriptor_get_value(field->descriptor, *(const int *)member);
        if (known)
            return s_put_string(t, known->name);
        snprintf(num, sizeof num, "%d", *(const int *)member);
        return s_puts(t, num);
    }
    case PROTOBUF_C_TYPE_STRING:
        return s_put_string(t, *(char *const *)member);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)member;
        return sub ? s_put_message(t, sub) : s_puts(t, "null");
    }
    default:
        return s_put_json(t, s_encode_value(field, member));
    }
}

static void s_put_message(text_t *t, const ProtobufCMessage *msg)
{
    assert(msg && msg->descriptor);
    const ProtobufCMessageDescriptor *desc = msg->descriptor;
    const char *base = (const char *)msg;
    int first = 1;
    s_put(t, "{", 1);
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *field = &desc->fields[i];
        int repeated = field->label == PROTOBUF_C_LABEL_REPEATED;
        if (!repeated && !s_is_written(msg, field))
            continue;
        if (!first)
            s_put(t, ",", 1);
        first = 0;
        s_put_string(t, field->name);
        s_put(t, ":", 1);
        if (!repeated) {
            s_put_value(t, field, base + field->offset);
            continue;
        }
        size_t count = *(const size_t *)(base + field->quantifier_offset);
        const char *items = *(const char *const *)(base + field->offset);
        s_put(t, "[", 1);
        for (size_t k = 0; k < count; k++) {
            if (k)
                s_put(t, ",", 1);
            s_put_value(t, field, items + k * s_types[field->type].size);
        }
        s_put(t, "]", 1);
    }
    s_put(t, "}", 1);
}

char *sr_pbjson_encode_text(const ProtobufCMessage *msg)
{
    text_t t = {NULL, 0, 0};
    s_put_message(&t, msg);
    return t.text;
}

/* ---- decoding ---------------------------------------------------------------------------- */

typedef struct {
    sr_arena_t *arena;
    sr_pbjson_error_t *err;
    char path[sizeof(((sr_pbjson_error_t *)0)->path)]; /* of the value being decoded */
    size_t path_len;
    int depth; /* messages open, the top one included */
} decoder_t;

static int s_fail(decoder_t *dec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s_fail - fill the error with the current path and a message; returns -1 */
static int s_fail(decoder_t *dec, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dec->err->message, sizeof dec->err->message, fmt, ap);
    va_end(ap);
    memcpy(dec->err->path, dec->path, sizeof dec->path);
    s_clean_line(dec->err->path);
    s_clean_line(dec->err->message);
    return -1;
}

static const char *s_json_type_name(const json_t *json)
{
    switch (json_typeof(json)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int s_fail_type(decoder_t *dec, const char *expected, const json_t *json)
{
    return s_fail(dec, "expected %s, got %s", expected, s_json_type_name(json));
}

static void s_path_printf(decoder_t *dec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* s_path_printf - append to the path; a path too long for the error is cut, not refused */
static void s_path_printf(decoder_t *dec, const char *fmt, ...)
{
    size_t room = sizeof dec->path - dec->path_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dec->path + dec->path_len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        dec->path_len += (size_t)n < room ? (size_t)n : room - 1;
}

/* s_path_push_key / s_path_push_index - extend the path; return the mark s_path_pop goes back to */
static size_t s_path_push_key(decoder_t *dec, const char *key)
{
    size_t mark = dec->path_len;
    if (mark == 0)
        s_path_printf(dec, "%s", key);
    else
        s_path_printf(dec, ".%s", key);
    return mark;
}

static size_t s_path_push_index(decoder_t *dec, size_t index)
{
    size_t mark = dec->path_len;
    s_path_printf(dec, "[%zu]", index);
    return mark;
}

static void s_path_pop(decoder_t *dec, size_t mark)
{
    dec->path_len = mark;
    dec->path[mark] = '\0';
}

/* s_read_integer - sign and magnitude of a JSON integer, an integral real or (64-bit types only)
 * a decimal string, so that every integer type is range-checked the same way */
static int s_read_integer(decoder_t *dec, ProtobufCType type, const json_t *json, int *negative,
                          uint64_t *magnitude)
{
    int wide = s_types[type].size == 8;
    if (json_is_integer(json)) {
        json_int_t value = json_integer_value(json);
        *negative = value < 0;
        *magnitude = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    } else if (json_is_real(json)) {
        double value = json_real_value(json);
        if (value != trunc(value) || fabs(value) >= 0x1p64) {
            char shown[32];
            s_shortest(shown, sizeof shown, value, 0);
            if (value != trunc(value))
                return s_fail(dec, "value %s is not an integer", shown);
            return s_fail(dec, "value %s out of range for %s", shown, s_types[type].name);
        }
        *negative = value < 0;
        *magnitude = (uint64_t)fabs(value);
    } else if (wide && json_is_string(json)) {
        const char *text = json_string_value(json);
        const char *digits = text + (text[0] == '-');
        size_t len = json_string_length(json) - (size_t)(digits - text);
        if (len == 0 || strspn(digits, "0123456789") != len)
            return s_fail(dec, "value \"%.40s\" is not a decimal integer", text);
        errno = 0;
        *magnitude = strtoull(digits, NULL, 10);
        if (errno == ERANGE)
            return s_fail(dec, "value %.40s out of range for %s", text, s_types[type].name);
        *negative = digits != text;
    } else
        return s_fail_type(dec, wide ? "integer or decimal string" : "integer", json);
    *negative = *negative && *magnitude != 0;
    return 0;
}

static int s_decode_integer(decoder_t *dec, ProtobufCType type, const json_t *json, void *member)
{
    int negative = 0;
    uint64_t magnitude = 0;
    if (s_read_integer(dec, type, json, &negative, &magnitude) != 0)
        return -1;
    int64_t min = s_types[type].min;
    if (negative ? magnitude > 0 - (uint64_t)min : magnitude > s_types[type].max)
        return s_fail(dec, "value %s%" PRIu64 " out of range for %s", negative ? "-" : "",
                      magnitude, s_types[type].name);
    if (min < 0) {
        /* written so that -2^63 does not overflow */
        int64_t value = negative ? -(int64_t)(magnitude - 1) - 1 : (int64_t)magnitude;
        if (s_types[type].size == 4)
            *(int32_t *)member = (int32_t)value;
        else
            *(int64_t *)member = value;
    } else if (s_types[type].size == 4)
        *(uint32_t *)member = (uint32_t)magnitude;
    else
        *(uint64_t *)member = magnitude;
    return 0;
}

static int s_decode_real(decoder_t *dec, ProtobufCType type, const json_t *json, void *member)
{
    double value;
    const char *text = json_is_string(json) ? json_string_value(json) : "";
    if (json_is_number(json))
        value = json_number_value(json);
    else if (strcmp(text, "NaN") == 0)
        value = NAN;
    else if (strcmp(text, "Infinity") == 0)
        value = INFINITY;
    else if (strcmp(text, "-Infinity") == 0)
        value = -INFINITY;
    else
        return s_fail_type(dec, "number", json);
    if (type == PROTOBUF_C_TYPE_DOUBLE) {
        *(double *)member = value;
        return 0;
    }
    if (isfinite(value) && fabs(value) >= FLOAT_OVERFLOW) {
        char shown[32];
        s_shortest(shown, sizeof shown, value, 0);
        return s_fail(dec, "value %s out of range for float", shown);
    }
    *(float *)member = (float)value;
    return 0;
}

static int s_decode_enum(decoder_t *dec, const ProtobufCEnumDescriptor *desc, const json_t *json,
                         int *member)
{
    if (!json_is_string(json))
        return s_fail_type(dec, "enum name", json);
    const char *name = json_string_value(json);
    const ProtobufCEnumValue *known = protobuf_c_enum_descriptor_get_value_by_name(desc, name);
    if (!known)
        return s_fail(dec, "unknown value \"%.40s\" for enum %s", name, desc->name);
    *member = known->value;
    return 0;
}

static int s_decode_string(decoder_t *dec, const json_t *json, char **member)
{
    if (!json_is_string(json))
        return s_fail_type(dec, "string", json);
    const char *text = json_string_value(json);
    size_t len = json_string_length(json);
    /* the message holds a C string; a NUL inside would silently cut it */
    if (memchr(text, '\0', len))
        return s_fail(dec, "string contains a NUL character");
    *member = sr_arena_strndup(dec->arena, text, len);
    return 0;
}

static int s_decode_bytes(decoder_t *dec, const json_t *json, ProtobufCBinaryData *member)
{
    if (!json_is_string(json))
        return s_fail_type(dec, "base64 string", json);
    size_t len = json_string_length(json);
    size_t room = (len / 4 + 1) * 3;
    unsigned char *data = sr_arena_alloc(dec->arena, room);
    size_t data_len;
    if (sodium_base642bin(data, room, json_string_value(json), len, NULL, &data_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return s_fail(dec, "invalid base64");
    member->len = data_len;
    member->data = data_len ? data : NULL;
    return 0;
}

static int s_decode_message(decoder_t *dec, const json_t *json,
                            const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out);

/* s_decode_value - one value of field's type from json into member */
static int s_decode_value(decoder_t *dec, const ProtobufCFieldDescriptor *field, const json_t *json,
                          void *member)
{
    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return s_decode_integer(dec, field->type, json, member);
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return s_decode_real(dec, field->type, json, member);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(json))
            return s_fail_type(dec, "boolean", json);
        *(protobuf_c_boolean *)member = json_is_true(json);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return s_decode_enum(dec, field->descriptor, json, member);
    case PROTOBUF_C_TYPE_STRING:
        return s_decode_string(dec, json, member);
    case PROTOBUF_C_TYPE_BYTES:
        return s_decode_bytes(dec, json, member);
    case PROTOBUF_C_TYPE_MESSAGE:
        return s_decode_message(dec, json, field->descriptor, member);
    }
    sr_panic("pbjson_bad_type", "field=%s type=%d", field->name, (int)field->type);
}

/* s_is_map - protobuf-c keeps no map flag, so recognise what protoc lowers map<K, V> to: a
 * repeated field of a nested message "<Name>Entry" holding exactly key = 1 and value = 2 */
static int s_is_map(const ProtobufCMessageDescriptor *parent, const ProtobufCFieldDescriptor *field)
{
    if (field->label != PROTOBUF_C_LABEL_REPEATED || field->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    const ProtobufCMessageDescriptor *entry = field->descriptor;
    size_t parent_len = strlen(parent->name);
    size_t short_len = strlen(entry->short_name);
    return entry->n_fields == 2 && entry->fields[0].id == 1 &&
           strcmp(entry->fields[0].name, "key") == 0 && entry->fields[1].id == 2 &&
           strcmp(entry->fields[1].name, "value") == 0 && short_len > 5 &&
           strcmp(entry->short_name + short_len - 5, "Entry") == 0 &&
           strncmp(entry->name, parent->name, parent_len) == 0 && entry->name[parent_len] == '.';
}

static int s_decode_repeated(decoder_t *dec, ProtobufCMessage *msg,
                             const ProtobufCFieldDescriptor *field, const json_t *json)
{
    if (!json_is_array(json))
        return s_fail_type(dec, "array", json);
    size_t count = json_array_size(json);
    size_t size = s_types[field->type].size;
    char *items = count ? sr_arena_alloc(dec->arena, count * size) : NULL;
    for (size_t i = 0; i < count; i++) {
        size_t mark = s_path_push_index(dec, i);
        if (s_decode_value(dec, field, json_array_get(json, i), items + i * size) != 0)
            return -1;
        s_path_pop(dec, mark);
    }
    *(size_t *)((char *)msg + field->quantifier_offset) = count;
    *(void **)((char *)msg + field->offset) = items;
    return 0;
}

/* s_decode_field - json into field of msg, and the field's presence (has_ flag, oneof case) */
static int s_decode_field(decoder_t *dec, ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *field, const json_t *json)
{
    char *base = (char *)msg;
    if (s_is_map(msg->descriptor, field))
        return s_fail(dec, "map fields are not supported");
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return s_decode_repeated(dec, msg, field, json);
    if (field->type == PROTOBUF_C_TYPE_MESSAGE && json_is_null(json))
        return 0; /* unset, as the encoder writes a NULL message */
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)(base + field->quantifier_offset);
        if (*which != 0) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
            return s_fail(dec, "oneof already set by \"%s\"", other ? other->name : "?");
        }
        *which = field->id;
    } else if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->quantifier_offset)
        *(protobuf_c_boolean *)(base + field->quantifier_offset) = 1;
    return s_decode_value(dec, field, json, base + field->offset);
}

static int s_decode_message(decoder_t *dec, const json_t *json,
                            const ProtobufCMessageDescriptor *desc, ProtobufCMessage **out)
{
    if (!json_is_object(json))
        return s_fail_type(dec, "object", json);
    if (++dec->depth > SR_PBJSON_MAX_DEPTH)
        return s_fail(dec, "nesting deeper than %d messages", SR_PBJSON_MAX_DEPTH);
    ProtobufCMessage *msg = sr_arena_alloc(dec->arena, desc->sizeof_message);
    desc->message_init(msg);
    const char *key;
    json_t *value;
    /* jansson iterates only non-const objects; nothing here modifies it */
    json_object_foreach((json_t *)json, key, value)
    {
        size_t mark = s_path_push_key(dec, key);
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name(desc, key);
        if (!field)
            return s_fail(dec, "unknown field");
        if (s_decode_field(dec, msg, field, value) != 0)
            return -1;
        s_path_pop(dec, mark);
    }
    dec->depth--;
    *out = msg;
    return 0;
}

int sr_pbjson_decode(const json_t *json, const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                     ProtobufCMessage **out, sr_pbjson_error_t *err)
{
    assert(json && desc && arena && out && err);
    decoder_t dec = {.arena = arena, .err = err};
    err->path[0] = '\0';
    err->message[0] = '\0';
    *out = NULL;
    return s_decode_message(&dec, json, desc, out);
}

int sr_pbjson_decode_text(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                          sr_arena_t *arena, ProtobufCMessage **out, sr_pbjson_error_t *err)
{
    assert(text && desc && arena && out && err);
    json_error_t jerr;
    /* JSON_DECODE_ANY so that a top-level scalar gets the same "expected object" as an array */
    json_t *json = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!json) {
        *out = NULL;
        err->path[0] = '\0';
        snprintf(err->message, sizeof err->message, "invalid JSON at line %d column %d: %s",
                 jerr.line, jerr.column, jerr.text);
        s_clean_line(err->message);
        return -1;
    }
    int rc = sr_pbjson_decode(json, desc, arena, out, err);
    json_decref(json);
    return rc;
}
