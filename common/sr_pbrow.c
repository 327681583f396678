/* sr_pbrow - a result row as a protobuf message. See sr_pbrow.h. */
#include "sr_pbrow.h"

#include "sr_pbjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char **sr_pbrow_text_list(sr_arena_t *arena, const char *lit, size_t *n)
{
    *n = 0;
    size_t len = strlen(lit);
    char **out = sr_arena_alloc(arena, (len / 2 + 1) * sizeof *out);
    if (len < 2 || lit[0] != '{')
        return out;
    /* the items are carved out of one copy-sized buffer: a long list costs its length once */
    char *buf = sr_arena_alloc(arena, len + 1);
    const char *p = lit + 1;
    while (*p && *p != '}') {
        char *item = buf;
        size_t k = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                item[k++] = *p;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '}')
                item[k++] = *p++;
        }
        item[k] = '\0';
        buf += k + 1;
        out[(*n)++] = item;
        if (*p == ',')
            p++;
    }
    return out;
}

static size_t s_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 0; /* not read */
    }
}

/* s_int64 - PostgreSQL's text of an integer ("-42"): strtoll without its locale and error paths,
 * since most columns of a row are ids and times */
static int64_t s_int64(const char *text)
{
    int negative = *text == '-';
    uint64_t v = 0;
    for (const char *p = text + negative; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return negative ? (int64_t)(0 - v) : (int64_t)v;
}

/* s_set - text as the field's type at member; -1 for a type this does not read */
static int s_set(const ProtobufCFieldDescriptor *f, void *member, const char *text,
                 sr_arena_t *arena)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)member = (int32_t)strtol(text, NULL, 10);
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)member = (uint32_t)strtoul(text, NULL, 10);
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)member = s_int64(text);
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)member = strtoull(text, NULL, 10);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)member = strtod(text, NULL);
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)member = strtof(text, NULL);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)member = text[0] == 't';
        return 0;
    case PROTOBUF_C_TYPE_STRING:
        *(char **)member = sr_arena_strdup(arena, text);
        return 0;
    default:
        return -1;
    }
}

/* s_why - an sr_pbjson error as one line, "[3] id: ..." for item 3 of an array (item < 0: none) */
static void s_why(const sr_pbjson_error_t *e, long item, char *why, size_t len)
{
    char at[32] = "";
    if (item >= 0)
        snprintf(at, sizeof at, "[%ld] ", item);
    snprintf(why, len, "%s%.150s%s%.150s", at, e->path, e->path[0] ? ": " : "", e->message);
}

/* s_set_messages - JSON text into the message field f of msg; -1 with why when it does not fit */
static int s_set_messages(const ProtobufCFieldDescriptor *f, ProtobufCMessage *msg,
                          const char *text, sr_arena_t *arena, char *why, size_t whylen)
{
    void **member = (void **)((char *)msg + f->offset);
    sr_pbjson_error_t e;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        ProtobufCMessage *one;
        if (sr_pbjson_decode_text(text, strlen(text), f->descriptor, arena, &one, &e) < 0) {
            s_why(&e, -1, why, whylen);
            return -1;
        }
        *member = one;
        return 0;
    }
    if (strcmp(text, "[]") == 0)
        return 0; /* most rows: nothing to parse */
    json_error_t jerr;
    json_t *array = json_loads(text, 0, &jerr);
    if (!json_is_array(array)) {
        snprintf(why, whylen, "%s", array ? "not a JSON array" : jerr.text);
        json_decref(array);
        return -1;
    }
    size_t n = json_array_size(array);
    ProtobufCMessage **items = sr_arena_alloc(arena, (n + 1) * sizeof *items);
    for (size_t i = 0; i < n; i++)
        if (sr_pbjson_decode(json_array_get(array, i), f->descriptor, arena, &items[i], &e) < 0) {
            s_why(&e, (long)i, why, whylen);
            json_decref(array);
            return -1;
        }
    json_decref(array);
    *(size_t *)((char *)msg + f->quantifier_offset) = n;
    *member = items;
    return 0;
}

/* s_fields - the field each column of res fills, in arena; NULL with err when one fills none */
static const ProtobufCFieldDescriptor **s_fields(const PGresult *res,
                                                 const ProtobufCMessageDescriptor *desc,
                                                 sr_arena_t *arena, char *err, size_t errlen)
{
    int n = PQnfields(res);
    const ProtobufCFieldDescriptor **fields =
        sr_arena_alloc(arena, (size_t)(n + 1) * sizeof *fields);
    for (int c = 0; c < n; c++) {
        const char *name = PQfname(res, c);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, name);
        if (!f || !s_size(f->type) || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            snprintf(err, errlen, "column %s: no field of %s it can fill", name, desc->name);
            return NULL;
        }
        fields[c] = f;
    }
    return fields;
}

/* s_row - row of res as a new message, column c into fields[c]; NULL with err */
static ProtobufCMessage *s_row(const PGresult *res, int row, const ProtobufCMessageDescriptor *desc,
                               const ProtobufCFieldDescriptor **fields, sr_arena_t *arena,
                               char *err, size_t errlen)
{
    ProtobufCMessage *msg = sr_arena_alloc(arena, desc->sizeof_message);
    protobuf_c_message_init(desc, msg);
    for (int c = 0; c < PQnfields(res); c++) {
        const ProtobufCFieldDescriptor *f = fields[c];
        if (PQgetisnull(res, row, c))
            continue;
        char *member = (char *)msg + f->offset;
        const char *text = PQgetvalue(res, row, c);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            char why[400];
            if (s_set_messages(f, msg, text, arena, why, sizeof why) < 0) {
                snprintf(err, errlen, "column %s: %s", PQfname(res, c), why);
                return NULL;
            }
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n, size = s_size(f->type);
            char **items = sr_pbrow_text_list(arena, text, &n);
            char *values = sr_arena_alloc(arena, (n + 1) * size);
            for (size_t i = 0; i < n; i++)
                s_set(f, values + i * size, items[i], arena);
            *(size_t *)((char *)msg + f->quantifier_offset) = n;
            *(void **)member = values;
            continue;
        }
        s_set(f, member, text, arena);
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
            f->type != PROTOBUF_C_TYPE_STRING)
            *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    }
    return msg;
}

ProtobufCMessage *sr_pbrow_decode(const PGresult *res, int row,
                                  const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                                  char *err, size_t errlen)
{
    const ProtobufCFieldDescriptor **fields = s_fields(res, desc, arena, err, errlen);
    return fields ? s_row(res, row, desc, fields, arena, err, errlen) : NULL;
}

ProtobufCMessage **sr_pbrow_decode_rows(const PGresult *res, int rows,
                                        const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                                        char *err, size_t errlen)
{
    const ProtobufCFieldDescriptor **fields = s_fields(res, desc, arena, err, errlen);
    if (!fields)
        return NULL;
    ProtobufCMessage **out = sr_arena_alloc(arena, (size_t)(rows + 1) * sizeof *out);
    for (int i = 0; i < rows; i++)
        if (!(out[i] = s_row(res, i, desc, fields, arena, err, errlen)))
            return NULL;
    return out;
}
