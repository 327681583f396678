/* sr_pbrow - a result row as a protobuf message. See sr_pbrow.h. */
#include "sr_pbrow.h"

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
    default:
        return 0; /* not read */
    }
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
        *(int64_t *)member = strtoll(text, NULL, 10);
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

ProtobufCMessage *sr_pbrow_decode(const PGresult *res, int row,
                                  const ProtobufCMessageDescriptor *desc, sr_arena_t *arena,
                                  char *err, size_t errlen)
{
    ProtobufCMessage *msg = sr_arena_alloc(arena, desc->sizeof_message);
    protobuf_c_message_init(desc, msg);
    for (int c = 0; c < PQnfields(res); c++) {
        const char *name = PQfname(res, c);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, name);
        size_t size = f ? s_size(f->type) : 0;
        if (!f || !size || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            snprintf(err, errlen, "column %s: no field of %s it can fill", name, desc->name);
            return NULL;
        }
        if (PQgetisnull(res, row, c))
            continue;
        char *member = (char *)msg + f->offset;
        const char *text = PQgetvalue(res, row, c);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
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
