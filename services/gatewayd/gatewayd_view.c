/* gatewayd_view - reads answered from a view the owning service publishes, without a call.
 *
 * DESIGN: others read through views the owner publishes. A route with a view (gw_route_t.view)
 * is answered here when its request carries nothing but the pattern's first {field} (an int64
 * id) and, for a page, limit and cursor: any other filter goes to the owner, which alone knows
 * it. The view's columns are named after the fields of the reply (one row), or for a page of the
 * page's items (the reply's one repeated message field, with next_cursor), and common/sr_pbrow
 * decodes them, so the JSON is the owner's. The caller's regions are part of the query. Nothing
 * found, a cursor this cannot read or a view not there yet: the owner is asked as usual, and its
 * answer (a 404, an empty page, a 400 naming the cursor) is the one the client gets.
 */
#include "gatewayd.h"

#include "sr_cursor.h"
#include "sr_log.h"
#include "sr_pbrow.h"
#include "sr_perm.h"

#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 64

/* s_key - the request field of route's first {name}; NULL when there is none */
static const ProtobufCFieldDescriptor *s_key(const gw_route_t *route)
{
    const char *open = strchr(route->pattern, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    if (!close || close - open - 1 >= NAME_MAX_LEN)
        return NULL;
    char name[NAME_MAX_LEN];
    snprintf(name, sizeof name, "%.*s", (int)(close - open - 1), open + 1);
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(route->request, name);
    return f && f->type == PROTOBUF_C_TYPE_INT64 && f->label != PROTOBUF_C_LABEL_REPEATED ? f
                                                                                          : NULL;
}

/* s_items - the repeated message field of a page reply (one with next_cursor, items with an int64
 * id); NULL when reply is not a page */
static const ProtobufCFieldDescriptor *s_items(const ProtobufCMessageDescriptor *reply)
{
    const ProtobufCFieldDescriptor *next =
        protobuf_c_message_descriptor_get_field_by_name(reply, "next_cursor");
    if (!next || next->type != PROTOBUF_C_TYPE_STRING)
        return NULL;
    const ProtobufCFieldDescriptor *items = NULL;
    for (unsigned i = 0; i < reply->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &reply->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (items)
                return NULL;
            items = f;
        }
    }
    const ProtobufCFieldDescriptor *id =
        items ? protobuf_c_message_descriptor_get_field_by_name(items->descriptor, "id") : NULL;
    if (!id || id->type != PROTOBUF_C_TYPE_INT64 || id->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    return items;
}

/* s_unset - 1 when field f of msg holds its default (the request does not ask for it) */
static int s_unset(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    const char *member = (const char *)msg + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)((const char *)msg + f->quantifier_offset) == 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)member;
        return !s || !s[0];
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)member == NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)member)->len == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)member == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)member == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)member == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)member == 0;
    default: /* the 32-bit integers and enums */
        return *(const uint32_t *)member == 0;
    }
}

/* s_plain - 1 when request sets nothing but key (and, for a page, limit and cursor) */
static int s_plain(const ProtobufCMessage *request, const ProtobufCFieldDescriptor *key, int page)
{
    const ProtobufCMessageDescriptor *d = request->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        int paging = strcmp(f->name, "limit") == 0 || strcmp(f->name, "cursor") == 0;
        if (f != key && !(page && paging) && !s_unset(request, f))
            return 0;
    }
    return 1;
}

/* s_field - the member of msg named name, of type type; NULL when it has none */
static void *s_field(const ProtobufCMessage *msg, const char *name, ProtobufCType type)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
    return f && f->type == type && f->label != PROTOBUF_C_LABEL_REPEATED ? (char *)msg + f->offset
                                                                         : NULL;
}

/* s_page - rows of res as the items of a new page reply: at most limit of them, and
 * next_cursor when the view had one more; NULL with err when a row does not fit */
static ProtobufCMessage *s_page(const PGresult *res, const ProtobufCMessageDescriptor *desc,
                                const ProtobufCFieldDescriptor *items, int limit, sr_arena_t *arena,
                                char *err, size_t errlen)
{
    ProtobufCMessage *page = sr_arena_alloc(arena, desc->sizeof_message);
    protobuf_c_message_init(desc, page);
    size_t n = PQntuples(res) > limit ? (size_t)limit : (size_t)PQntuples(res);
    ProtobufCMessage **rows =
        sr_pbrow_decode_rows(res, (int)n, items->descriptor, arena, err, errlen);
    if (!rows)
        return NULL;
    *(size_t *)((char *)page + items->quantifier_offset) = n;
    *(ProtobufCMessage ***)((char *)page + items->offset) = rows;
    int64_t last = n ? *(int64_t *)s_field(rows[n - 1], "id", PROTOBUF_C_TYPE_INT64) : 0;
    *(char **)s_field(page, "next_cursor", PROTOBUF_C_TYPE_STRING) =
        sr_cursor_after(arena, PQntuples(res), limit, last);
    return page;
}

int gatewayd_view_read(gatewayd_t *gw, const gw_route_t *route, const ProtobufCMessage *request,
                       const Sr__Principal *principal, sr_arena_t *arena, ProtobufCMessage **reply)
{
    sr_db_t *db = gatewayd_thread_db(gw);
    const ProtobufCFieldDescriptor *key = s_key(route);
    const ProtobufCFieldDescriptor *items = s_items(route->reply);
    if (!db || !key || !s_plain(request, key, items != NULL))
        return 0;
    int limit = 1;
    int64_t after = 0;
    if (items) {
        const int32_t *asked = s_field(request, "limit", PROTOBUF_C_TYPE_INT32);
        char **cursor = s_field(request, "cursor", PROTOBUF_C_TYPE_STRING);
        if (!asked || !cursor)
            return 0;
        limit = sr_page_limit(*asked);
        if (*cursor && sr_cursor_id(arena, *cursor, &after) < 0)
            return 0; /* the owner says what is wrong with it */
    }
    int nparams = items ? 5 : 3;
    char name[32], id[24], after_text[24], rows_text[16];
    snprintf(name, sizeof name, "gw_view_%zu", (size_t)(route - gatewayd_routes));
    /* prepared once per connection; a view not there yet (its owner never migrated) fails here
     * and the owner is asked instead, until it is */
    if (sr_db_prepare(db, name, route->view, nparams) < 0)
        return 0;
    snprintf(id, sizeof id, "%lld",
             (long long)*(const int64_t *)((const char *)request + key->offset));
    snprintf(after_text, sizeof after_text, "%lld", (long long)after);
    snprintf(rows_text, sizeof rows_text, "%d", limit + 1);
    const char *params[] = {id, sr_principal_is_hq(principal) ? "t" : "f",
                            sr_db_text_array(arena, principal->regions, principal->n_regions),
                            after_text, rows_text};
    PGresult *res = sr_db_run(db, name, nparams, params);
    int found = res && (items ? PQntuples(res) > 0 : PQntuples(res) == 1);
    char err[400] = "";
    if (found) {
        *reply = items ? s_page(res, route->reply, items, limit, arena, err, sizeof err)
                       : sr_pbrow_decode(res, 0, route->reply, arena, err, sizeof err);
        if (!*reply)
            sr_error("gateway_view_unreadable", "route=\"%s %s\" err=\"%s\"", route->method,
                     route->pattern, err);
    }
    PQclear(res);
    return found && *reply;
}
