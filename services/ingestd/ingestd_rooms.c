/* ingestd_rooms - the room registry and per-minute numbers over RPC (methods metrics.room.*).
 *
 * A ROUTER on SR_INGEST_RPC_BIND answers the gateway's /api/v1/rooms routes from the loop
 * thread, on the service's own connection. Every method checks the caller's principal itself
 * (the permission in the table, then the region): a room of a region the caller does not see,
 * or one not assigned to any region when the caller is not HQ, is answered not found. A put
 * creates (version 0) or updates (the version read) a room and publishes room.registered through
 * the metrics outbox in the same transaction; its before and after go to the gateway's audit.
 */
#include "ingestd.h"

#include "rooms.pb-c.h"
#include "sr_alloc.h"
#include "sr_cursor.h"
#include "sr_log.h"
#include "sr_outbox.h"
#include "sr_perm.h"
#include "sr_platform.h"
#include "sr_rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOM_COLS "platform, room_id, region, name, version, " US("updated_at")
#define US(col)   "(extract(epoch FROM " col ") * 1000000)::bigint"

struct ingestd_rooms_t {
    sr_service_t *svc;
    sr_rpc_server_t *server;
};

static const char *s_num(sr_arena_t *arena, int64_t v)
{
    return sr_arena_printf(arena, "%lld", (long long)v);
}

/* s_region_ok - a region code, or "" for a room of no region */
static int s_region_ok(const char *code)
{
    return !code[0] || sr_region_code_ok(code);
}

static Sr__Status s_check_key(sr_rpc_call_t *call, const char *platform, const char *room_id)
{
    if (!sr_platform_parse(platform))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "platform",
                           "platform must be channels, douyin, kuaishou or taobao");
    if (!room_id[0] || strlen(room_id) > 128 || !ingestd_utf8_ok(room_id))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "room_id",
                           "room_id must be 1 to 128 bytes of UTF-8");
    return SR__STATUS__STATUS_OK;
}

static Sr__Room *s_row(sr_arena_t *arena, const PGresult *res, int row)
{
    Sr__Room *r = sr_arena_alloc(arena, sizeof *r);
    sr__room__init(r);
    r->platform = sr_arena_strdup(arena, PQgetvalue(res, row, 0));
    r->room_id = sr_arena_strdup(arena, PQgetvalue(res, row, 1));
    r->region = sr_arena_strdup(arena, PQgetvalue(res, row, 2));
    r->name = sr_arena_strdup(arena, PQgetvalue(res, row, 3));
    r->version = strtoll(PQgetvalue(res, row, 4), NULL, 10);
    r->updated_us = strtoll(PQgetvalue(res, row, 5), NULL, 10);
    return r;
}

static sr_db_t *s_db(sr_rpc_call_t *call)
{
    return sr_service_db(((ingestd_rooms_t *)call->state)->svc);
}

static Sr__Status s_db_fail(sr_rpc_call_t *call)
{
    sr_error("ingest_rooms_db_failed", "method=%s err=\"%s\"", call->method,
             sr_db_error(s_db(call)));
    return sr_rpc_fail(call, SR__STATUS__STATUS_UNAVAILABLE, "unavailable", NULL,
                       "the database did not answer");
}

/* s_load - one room (locked FOR UPDATE when lock); NULL when unknown or *failed */
static Sr__Room *s_load(sr_rpc_call_t *call, const char *platform, const char *room_id, int lock,
                        int *failed)
{
    const char *params[] = {platform, room_id};
    PGresult *res = sr_db_query(
        s_db(call),
        lock ? "SELECT " ROOM_COLS " FROM metrics.rooms WHERE platform = $1 AND room_id = $2 "
               "FOR UPDATE"
             : "SELECT " ROOM_COLS " FROM metrics.rooms WHERE platform = $1 AND room_id = $2",
        2, params);
    *failed = !res;
    Sr__Room *r = res && PQntuples(res) == 1 ? s_row(call->arena, res, 0) : NULL;
    PQclear(res);
    return r;
}

static Sr__Status s_not_found(sr_rpc_call_t *call, const char *platform, const char *room_id)
{
    return sr_rpc_fail(call, SR__STATUS__STATUS_NOT_FOUND, "not_found", "room_id",
                       "no room %.20s:%.128s", platform, room_id);
}

static Sr__Status s_get(sr_rpc_call_t *call, const ProtobufCMessage *request,
                        ProtobufCMessage **reply)
{
    const Sr__RoomKey *in = (const Sr__RoomKey *)request;
    Sr__Status st = s_check_key(call, in->platform, in->room_id);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    int failed;
    Sr__Room *r = s_load(call, in->platform, in->room_id, 0, &failed);
    if (failed)
        return s_db_fail(call);
    if (!r || !sr_principal_sees_region(call->principal, r->region))
        return s_not_found(call, in->platform, in->room_id);
    *reply = &r->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_list(sr_rpc_call_t *call, const ProtobufCMessage *request,
                         ProtobufCMessage **reply)
{
    const Sr__RoomList *in = (const Sr__RoomList *)request;
    const Sr__Principal *p = call->principal;
    if (in->platform[0] && !sr_platform_parse(in->platform))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "platform",
                           "platform must be channels, douyin, kuaishou or taobao");
    char *key = "";
    int64_t unused;
    if (in->cursor[0] && sr_cursor_read(call->arena, in->cursor, &key, &unused) < 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "cursor",
                           "not a cursor this list gave out");
    char *room_after = strchr(key, ':');
    if (room_after)
        *room_after++ = '\0';
    int limit = sr_page_limit(in->limit);
    const char *regions = sr_db_text_array(call->arena, p->regions, p->n_regions);
    const char *params[] = {sr_principal_is_hq(p) ? "t" : "f",
                            regions,
                            in->region,
                            in->platform,
                            key,
                            room_after ? room_after : "",
                            s_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(
        s_db(call),
        "SELECT " ROOM_COLS " FROM metrics.rooms WHERE ($1::bool OR region = ANY($2::text[])) "
        "AND ($3 = '' OR region = $3) AND ($4 = '' OR platform = $4) AND ($5 = '' OR "
        "(platform, room_id) > ($5, $6)) ORDER BY platform, room_id LIMIT $7::int",
        7, params);
    if (!res)
        return s_db_fail(call);
    Sr__RoomPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__room_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->rooms = sr_arena_alloc(call->arena, (size_t)(rows ? rows : 1) * sizeof *out->rooms);
    for (int i = 0; i < rows; i++)
        out->rooms[out->n_rooms++] = s_row(call->arena, res, i);
    out->next_cursor = "";
    if (PQntuples(res) > limit) {
        const Sr__Room *last = out->rooms[rows - 1];
        char *k = sr_arena_alloc(call->arena, strlen(last->platform) + strlen(last->room_id) + 2);
        sprintf(k, "%s:%s", last->platform, last->room_id);
        out->next_cursor = sr_cursor_make(call->arena, k, 0);
    }
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

typedef struct {
    sr_rpc_call_t *call;
    const Sr__RoomPut *in;
    Sr__Room *before, *after;
    Sr__Status status;
} put_t;

/* s_put_tx - version 0 inserts (a room that exists already is a conflict, even when another
 * instance inserts it at the same moment); a version updates only that version of the row */
static int s_put_tx(sr_db_t *db, void *arg)
{
    put_t *pt = arg;
    sr_rpc_call_t *call = pt->call;
    const Sr__RoomPut *in = pt->in;
    int failed;
    pt->before = s_load(call, in->platform, in->room_id, 1, &failed);
    if (failed) {
        pt->status = s_db_fail(call);
        return -1;
    }
    if (pt->before && !sr_principal_sees_region(call->principal, pt->before->region)) {
        pt->status = s_not_found(call, in->platform, in->room_id);
        return -1;
    }
    const char *params[] = {in->platform, in->room_id, in->region, in->name,
                            s_num(call->arena, in->version)};
    PGresult *res =
        in->version == 0
            ? sr_db_query(
                  db,
                  "INSERT INTO metrics.rooms (platform, room_id, region, name) VALUES ($1, "
                  "$2, $3, $4) ON CONFLICT (platform, room_id) DO NOTHING RETURNING " ROOM_COLS,
                  4, params)
            : sr_db_query(db,
                          "UPDATE metrics.rooms SET region = $3, name = $4, version = version + 1, "
                          "updated_at = now() WHERE platform = $1 AND room_id = $2 AND version = "
                          "$5::bigint RETURNING " ROOM_COLS,
                          5, params);
    if (!res) {
        pt->status = s_db_fail(call);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        if (!pt->before && in->version != 0)
            pt->status = s_not_found(call, in->platform, in->room_id);
        else
            pt->status = sr_rpc_fail(
                call, SR__STATUS__STATUS_CONFLICT, "version_conflict", "version",
                "room %.20s:%.128s is at version %lld, not %lld", in->platform, in->room_id,
                (long long)(pt->before ? pt->before->version : 1), (long long)in->version);
        return -1;
    }
    pt->after = s_row(call->arena, res, 0);
    PQclear(res);
    ingestd_rooms_t *self = call->state;
    return sr_outbox_put(db, "metrics", sr_service_instance(self->svc), "room.registered",
                         &pt->after->base, call->trace_id, NULL);
}

static Sr__Status s_put(sr_rpc_call_t *call, const ProtobufCMessage *request,
                        ProtobufCMessage **reply)
{
    const Sr__RoomPut *in = (const Sr__RoomPut *)request;
    Sr__Status st = s_check_key(call, in->platform, in->room_id);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    if (!s_region_ok(in->region))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "region",
                           "region must be a region code (a-z 0-9 _ -) or empty");
    if (!sr_principal_sees_region(call->principal, in->region))
        return sr_rpc_fail(call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", "region",
                           "you may assign rooms to your own regions only");
    if (strlen(in->name) > 200 || !ingestd_utf8_ok(in->name))
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "name",
                           "name must be at most 200 bytes of UTF-8");
    if (in->version < 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "version",
                           "version is 0 for a new room, else the version you read");
    put_t pt = {.call = call, .in = in, .status = SR__STATUS__STATUS_OK};
    if (sr_db_tx(s_db(call), s_put_tx, &pt) != 0)
        return pt.status != SR__STATUS__STATUS_OK ? pt.status : s_db_fail(call);
    sr_outbox_pub_flush(sr_service_outbox(((ingestd_rooms_t *)call->state)->svc));
    char id[200];
    snprintf(id, sizeof id, "%s:%s", pt.after->platform, pt.after->room_id);
    sr_rpc_audit(call, "room", id, pt.after->region, pt.before ? &pt.before->base : NULL,
                 &pt.after->base);
    *reply = &pt.after->base;
    return SR__STATUS__STATUS_OK;
}

static Sr__Status s_minutes(sr_rpc_call_t *call, const ProtobufCMessage *request,
                            ProtobufCMessage **reply)
{
    const Sr__RoomMinutesRequest *in = (const Sr__RoomMinutesRequest *)request;
    Sr__Status st = s_check_key(call, in->platform, in->room_id);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    int failed;
    Sr__Room *room = s_load(call, in->platform, in->room_id, 0, &failed);
    if (failed)
        return s_db_fail(call);
    /* an unregistered room belongs to no region: HQ sees it, nobody else */
    if (!sr_principal_sees_region(call->principal, room ? room->region : ""))
        return s_not_found(call, in->platform, in->room_id);
    char *unused;
    int64_t after = 0;
    if (in->cursor[0] && sr_cursor_read(call->arena, in->cursor, &unused, &after) < 0)
        return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "cursor",
                           "not a cursor this list gave out");
    int limit = sr_page_limit(in->limit);
    const char *params[] = {s_num(call->arena, sr_platform_parse(in->platform)),
                            in->room_id,
                            s_num(call->arena, in->since_us),
                            s_num(call->arena, in->until_us),
                            s_num(call->arena, after),
                            s_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(
        s_db(call),
        "SELECT " US("minute") ", session_id, online_viewers, cumulative_viewers, likes, "
                               "comments, orders_paid, gmv_fen, refunds_fen, paid_orders, "
                               "paid_amount_fen, interactions "
                               "FROM metrics.room_minutes WHERE platform = $1::smallint AND "
                               "room_id = $2 AND minute >= "
                               "CASE WHEN $3::bigint > 0 THEN to_timestamp($3::bigint / 1e6) ELSE "
                               "now() - interval "
                               "'1 hour' END AND minute < CASE WHEN $4::bigint > 0 THEN "
                               "to_timestamp($4::bigint / 1e6) "
                               "ELSE now() END AND ($5::bigint = 0 OR minute > "
                               "to_timestamp($5::bigint / 1e6)) "
                               "ORDER BY minute LIMIT $6::int",
        6, params);
    if (!res)
        return s_db_fail(call);
    Sr__RoomMinutesPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__room_minutes_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->minutes = sr_arena_alloc(call->arena, (size_t)(rows ? rows : 1) * sizeof *out->minutes);
    for (int i = 0; i < rows; i++) {
        Sr__RoomMinute *m = sr_arena_alloc(call->arena, sizeof *m);
        sr__room_minute__init(m);
        int64_t *fields[] = {&m->minute_us,       NULL,
                             &m->online_viewers,  &m->cumulative_viewers,
                             &m->likes,           &m->comments,
                             &m->orders_paid,     &m->gmv_fen,
                             &m->refunds_fen,     &m->paid_orders,
                             &m->paid_amount_fen, &m->interactions};
        for (int c = 0; c < 12; c++)
            if (fields[c])
                *fields[c] = strtoll(PQgetvalue(res, i, c), NULL, 10);
        m->session_id = sr_arena_strdup(call->arena, PQgetvalue(res, i, 1));
        out->minutes[out->n_minutes++] = m;
    }
    out->next_cursor = PQntuples(res) > limit
                           ? sr_cursor_make(call->arena, "", out->minutes[rows - 1]->minute_us)
                           : "";
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

#define M(name, fn, req, rep, perm)                                                                \
    {                                                                                              \
        name, fn, &req##__descriptor, &rep##__descriptor, perm                                     \
    }

static const sr_rpc_method_t s_methods[] = {
    M("metrics.room.get", s_get, sr__room_key, sr__room, "rooms.read"),
    M("metrics.room.list", s_list, sr__room_list, sr__room_page, "rooms.read"),
    M("metrics.room.put", s_put, sr__room_put, sr__room, "rooms.write"),
    M("metrics.room.minutes", s_minutes, sr__room_minutes_request, sr__room_minutes_page,
      "rooms.read"),
};

ingestd_rooms_t *ingestd_rooms_new(sr_service_t *svc)
{
    const ingestd_config_t *cfg = sr_service_config(svc);
    ingestd_rooms_t *self = sr_calloc(1, sizeof *self);
    self->svc = svc;
    sr_rpc_opts_t opts = {.max_msg_size = sr_service_common(svc)->bus_max_msg,
                          .metrics = sr_service_metrics(svc)};
    self->server =
        sr_rpc_server_new(sr_service_zctx(svc), cfg->rpc_bind, s_methods,
                          sizeof s_methods / sizeof s_methods[0], self, sr_perm_authorize, &opts);
    if (!self->server || sr_rpc_server_attach(self->server, sr_service_loop(svc)) < 0) {
        sr_error("ingest_rpc_failed", "endpoint=%s", cfg->rpc_bind);
        ingestd_rooms_destroy(&self);
        return NULL;
    }
    sr_info("ingest_rpc_listening", "endpoint=%s", cfg->rpc_bind);
    return self;
}

void ingestd_rooms_destroy(ingestd_rooms_t **self_p)
{
    ingestd_rooms_t *self = *self_p;
    if (!self)
        return;
    sr_rpc_server_destroy(&self->server);
    free(self);
    *self_p = NULL;
}
