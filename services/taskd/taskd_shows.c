/* taskd_shows - shows (场次): one live session in one room on one platform, with its crew.
 *
 * A room cannot host two shows at once, and an anchor cannot be in two shows at once (cancelled
 * shows do not count): a create or a change that would overlap is refused with 409 naming the
 * show in the way. Two planners booking the same slot at the same moment are serialised by
 * transaction-level advisory locks on the room and on the anchor, taken in a fixed order, so
 * the check and the write are one step. Status moves scheduled -> live -> ended -> reviewed;
 * each change goes out as session.changed, the move to ended as session.ended (reportd writes
 * the review from it).
 */
#include "taskd.h"

#include "sr_hash.h"
#include "sr_log.h"
#include "sr_perm.h"
#include "sr_platform.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define SHOW_COLS                                                                                  \
    "s.id, s.project_id, p.region, s.platform, s.room_id, s.anchor_id, s.controller_id, "          \
    "(SELECT coalesce(json_agg(json_build_array(c.role, c.user_id) ORDER BY c.pos), '[]') FROM "   \
    "tasks.show_crew c WHERE c.show_id = s.id), " TASKD_US("s.starts_at") ", " TASKD_US(           \
        "s.ends_at") ", s.theme, s.gmv_target_fen, s.status, "                                     \
                     "s.version, " TASKD_US("s.created_at") ","                                    \
                                                            " " TASKD_US("s.updated_at")
#define SHOW_FROM " FROM tasks.shows s JOIN tasks.projects p ON p.id = s.project_id "

static Sr__Show *s_row(sr_arena_t *a, const PGresult *res, int row)
{
    Sr__Show *s = sr_arena_alloc(a, sizeof *s);
    sr__show__init(s);
    s->id = taskd_int(res, row, 0);
    s->project_id = taskd_int(res, row, 1);
    s->region = taskd_str(a, res, row, 2);
    s->platform = taskd_str(a, res, row, 3);
    s->room_id = taskd_str(a, res, row, 4);
    s->anchor_id = taskd_int(res, row, 5);
    s->controller_id = taskd_int(res, row, 6);
    json_t *crew = json_loads(PQgetvalue(res, row, 7), 0, NULL);
    size_t n = json_array_size(crew);
    s->crew = sr_arena_alloc(a, (n + 1) * sizeof *s->crew);
    for (size_t i = 0; i < n; i++) {
        Sr__CrewMember *c = sr_arena_alloc(a, sizeof *c);
        sr__crew_member__init(c);
        c->role = sr_arena_strdup(a, json_string_value(json_array_get(json_array_get(crew, i), 0)));
        c->user_id = json_integer_value(json_array_get(json_array_get(crew, i), 1));
        s->crew[s->n_crew++] = c;
    }
    json_decref(crew);
    s->starts_us = taskd_int(res, row, 8);
    s->ends_us = taskd_int(res, row, 9);
    s->theme = taskd_str(a, res, row, 10);
    s->gmv_target_fen = taskd_int(res, row, 11);
    s->status = taskd_str(a, res, row, 12);
    s->version = taskd_int(res, row, 13);
    s->created_us = taskd_int(res, row, 14);
    s->updated_us = taskd_int(res, row, 15);
    return s;
}

static Sr__Show *s_load(sr_rpc_call_t *call, int64_t id, int lock, int *failed)
{
    const char *params[] = {taskd_num(call->arena, id)};
    PGresult *res =
        sr_db_query(taskd_db(call),
                    lock ? "SELECT " SHOW_COLS SHOW_FROM "WHERE s.id = $1::bigint FOR UPDATE OF s"
                         : "SELECT " SHOW_COLS SHOW_FROM "WHERE s.id = $1::bigint",
                    1, params);
    *failed = !res;
    Sr__Show *s = res && PQntuples(res) == 1 ? s_row(call->arena, res, 0) : NULL;
    PQclear(res);
    return s;
}

typedef struct {
    const char *platform, *room_id, *theme;
    int64_t anchor_id, controller_id, starts_us, ends_us, gmv;
    Sr__CrewMember **crew;
    size_t n_crew;
} fields_t;

static Sr__Status s_check(sr_rpc_call_t *call, const fields_t *f)
{
    if (!sr_platform_parse(f->platform))
        return taskd_bad(call, "platform", "platform must be channels, douyin, kuaishou or taobao");
    if (!f->room_id[0] || strlen(f->room_id) > 128)
        return taskd_bad(call, "room_id", "room_id must be 1 to 128 bytes");
    if (!taskd_time_ok(f->starts_us) || !taskd_time_ok(f->ends_us))
        return taskd_bad(call, taskd_time_ok(f->starts_us) ? "ends_us" : "starts_us",
                         "times are microseconds from 1970 to 9999");
    if (f->n_crew > 20)
        return taskd_bad(call, "crew",
                         "a show has at most 20 crew members besides its anchor "
                         "and field controller");
    if (f->starts_us <= 0 || f->ends_us <= f->starts_us)
        return taskd_bad(call, f->starts_us <= 0 ? "starts_us" : "ends_us",
                         "a show needs starts_us and a later ends_us");
    if (!taskd_text_ok(f->theme, 200))
        return taskd_bad(call, "theme", "theme must be at most 200 characters");
    if (f->gmv < 0 || f->anchor_id < 0 || f->controller_id < 0)
        return taskd_bad(call, f->gmv < 0 ? "gmv_target_fen" : "anchor_id",
                         "targets and user ids must not be negative");
    for (size_t i = 0; i < f->n_crew; i++)
        if (sr_role_parse(f->crew[i]->role) < 0 || f->crew[i]->user_id <= 0)
            return sr_rpc_fail(call, SR__STATUS__STATUS_BAD_REQUEST, "invalid", "crew",
                               "crew[%zu] needs a known role and a user_id", i);
    return SR__STATUS__STATUS_OK;
}

/* s_lock - the advisory locks on the room and the anchor, smaller key first */
static int s_lock(sr_rpc_call_t *call, const fields_t *f)
{
    char room[200];
    snprintf(room, sizeof room, "show-room:%s:%s", f->platform, f->room_id);
    int64_t keys[2] = {(int64_t)sr_hash_fnv1a_str(room), 0};
    int n = 1;
    if (f->anchor_id) {
        char anchor[48];
        snprintf(anchor, sizeof anchor, "show-anchor:%lld", (long long)f->anchor_id);
        keys[n++] = (int64_t)sr_hash_fnv1a_str(anchor);
        if (keys[1] < keys[0]) {
            int64_t t = keys[0];
            keys[0] = keys[1], keys[1] = t;
        }
    }
    for (int i = 0; i < n; i++) {
        const char *params[] = {taskd_num(call->arena, keys[i])};
        PGresult *res =
            sr_db_query(taskd_db(call), "SELECT pg_advisory_xact_lock($1::bigint)", 1, params);
        if (!res)
            return -1;
        PQclear(res);
    }
    return 0;
}

/* s_overlap - 409 naming the show the new times collide with, OK when none */
static Sr__Status s_overlap(sr_rpc_call_t *call, int64_t self_id, const fields_t *f)
{
    const char *params[] = {f->platform,
                            f->room_id,
                            taskd_num(call->arena, f->anchor_id),
                            taskd_num(call->arena, f->starts_us),
                            taskd_num(call->arena, f->ends_us),
                            taskd_num(call->arena, self_id),
                            taskd_of(call)->cfg->timezone};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT s.id, s.platform = $1 AND s.room_id = $2, s.platform, s.room_id, "
        "to_char(s.starts_at AT TIME ZONE $7, 'YYYY-MM-DD HH24:MI'), to_char(s.ends_at AT TIME "
        "ZONE $7, 'HH24:MI'), (SELECT region FROM tasks.projects WHERE id = s.project_id) FROM "
        "tasks.shows s WHERE s.status <> 'cancelled' AND s.id <> "
        "$6::bigint AND ((s.platform = $1 AND s.room_id = $2) OR ($3::bigint <> 0 AND "
        "s.anchor_id = $3::bigint)) AND s.starts_at < " TASKD_TS("$5") " AND s.ends_at > " TASKD_TS(
            "$4") " ORDER BY s.starts_at LIMIT 1",
        7, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__Status st = SR__STATUS__STATUS_OK;
    if (PQntuples(res) == 1) {
        long long other = taskd_int(res, 0, 0);
        const char *when =
            sr_arena_printf(call->arena, "%s-%s", PQgetvalue(res, 0, 4), PQgetvalue(res, 0, 5));
        /* a show of a region the caller does not see is not named, only its time */
        int seen = sr_principal_sees_region(call->principal, PQgetvalue(res, 0, 6));
        const char *which =
            seen ? sr_arena_printf(call->arena, "show %lld", other) : "a show of another region";
        st = taskd_bool(res, 0, 1) ? sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "show_overlap",
                                                 "starts_us", "room %s:%s already has %s at %s",
                                                 f->platform, f->room_id, which, when)
             : seen
                 ? sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "anchor_busy", "anchor_id",
                               "anchor %lld is on %s in room %s:%s at %s", (long long)f->anchor_id,
                               which, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3), when)
                 : sr_rpc_fail(call, SR__STATUS__STATUS_CONFLICT, "anchor_busy", "anchor_id",
                               "anchor %lld is on %s at %s", (long long)f->anchor_id, which, when);
    }
    PQclear(res);
    return st;
}

static int s_write_crew(sr_rpc_call_t *call, int64_t show_id, const fields_t *f)
{
    const char *del[] = {taskd_num(call->arena, show_id)};
    PGresult *res = sr_db_query(taskd_db(call),
                                "DELETE FROM tasks.show_crew WHERE show_id = $1::bigint", 1, del);
    if (!res)
        return -1;
    PQclear(res);
    for (size_t i = 0; i < f->n_crew; i++) {
        const char *params[] = {del[0], taskd_num(call->arena, (int64_t)i), f->crew[i]->role,
                                taskd_num(call->arena, f->crew[i]->user_id)};
        res = sr_db_query(taskd_db(call),
                          "INSERT INTO tasks.show_crew (show_id, pos, role, user_id) VALUES "
                          "($1::bigint, $2::int, $3, $4::bigint)",
                          4, params);
        if (!res)
            return -1;
        PQclear(res);
    }
    return 0;
}

typedef struct {
    sr_rpc_call_t *call;
    const Sr__ShowCreate *create;
    const Sr__ShowUpdate *update;
    Sr__Show *before, *after;
    Sr__Status st;
} write_t;

/* s_fail - the transaction's end when a statement failed */
static int s_fail(write_t *w)
{
    w->st = taskd_db_fail(w->call);
    return -1;
}

static int s_open_project(write_t *w, int64_t project_id)
{
    Sr__Project *p = taskd_visible_project(w->call, project_id, "project_id", 0, &w->st);
    if (!p)
        return -1;
    if (strcmp(p->status, "closed") == 0 || strcmp(p->status, "cancelled") == 0) {
        w->st =
            sr_rpc_fail(w->call, SR__STATUS__STATUS_CONFLICT, "project_closed", "project_id",
                        "project %lld is %s; its shows cannot change", (long long)p->id, p->status);
        return -1;
    }
    return 0;
}

/* s_store - after the checks: lock, look for overlaps, write, reread, publish */
static int s_store(write_t *w, int64_t id, const fields_t *f, const char *status, int crew_changed)
{
    sr_rpc_call_t *call = w->call;
    if (s_lock(call, f) < 0)
        return s_fail(w);
    if (strcmp(status, "cancelled") != 0 &&
        (w->st = s_overlap(call, id, f)) != SR__STATUS__STATUS_OK)
        return -1;
    const char *params[] = {
        f->platform, f->room_id, taskd_num(call->arena, f->anchor_id),
        taskd_num(call->arena, f->controller_id), taskd_num(call->arena, f->starts_us),
        taskd_num(call->arena, f->ends_us), f->theme, taskd_num(call->arena, f->gmv), status,
        /* $10: the show to change, or the new show's project */
        taskd_num(call->arena, id ? id : w->create->project_id)};
    PGresult *res =
        id == 0
            ? sr_db_query(taskd_db(call),
                          "INSERT INTO tasks.shows (platform, room_id, anchor_id, "
                          "controller_id, starts_at, ends_at, theme, gmv_target_fen, status, "
                          "project_id) VALUES ($1, $2, $3::bigint, $4::bigint, " TASKD_TS(
                              "$5") ", " TASKD_TS("$6") ", $7, $8::bigint, $9, $10::bigint) "
                                                        "RETURNING id",
                          10, params)
            : sr_db_query(taskd_db(call),
                          "UPDATE tasks.shows SET platform = $1, room_id = $2, anchor_id = "
                          "$3::bigint, controller_id = $4::bigint, starts_at = " TASKD_TS(
                              "$5") ", ends_at = " TASKD_TS("$6") ", theme = $7, "
                                                                  "gmv_target_fen = $8::bigint, "
                                                                  "status = $9, version = "
                                                                  "version + 1, updated_at = "
                                                                  "now() WHERE id = "
                                                                  "$10::bigint RETURNING id",
                          10, params);
    if (!res)
        return s_fail(w);
    id = taskd_int(res, 0, 0);
    PQclear(res);
    if (crew_changed && s_write_crew(call, id, f) < 0)
        return s_fail(w);
    int failed;
    w->after = s_load(call, id, 0, &failed);
    if (!w->after)
        return s_fail(w);
    int ended = strcmp(w->after->status, "ended") == 0 &&
                (!w->before || strcmp(w->before->status, "ended") != 0);
    if (taskd_event(call, ended ? "session.ended" : "session.changed", &w->after->base) < 0)
        return s_fail(w);
    return 0;
}

static int s_create_tx(sr_db_t *db, void *arg)
{
    (void)db;
    write_t *w = arg;
    const Sr__ShowCreate *in = w->create;
    if (s_open_project(w, in->project_id) < 0)
        return -1;
    fields_t f = {in->platform,  in->room_id, in->theme,          in->anchor_id, in->controller_id,
                  in->starts_us, in->ends_us, in->gmv_target_fen, in->crew,      in->n_crew};
    if ((w->st = s_check(w->call, &f)) != SR__STATUS__STATUS_OK)
        return -1;
    return s_store(w, 0, &f, "scheduled", 1);
}

TASKD_METHOD(taskd_show_create)
{
    write_t w = {.call = call, .create = (const Sr__ShowCreate *)request};
    if (sr_db_tx(taskd_db(call), s_create_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    taskd_published(call, "show", w.after->id, w.after->region, NULL, &w.after->base);
    *reply = &w.after->base;
    return SR__STATUS__STATUS_OK;
}

static int s_update_tx(sr_db_t *db, void *arg)
{
    (void)db;
    write_t *w = arg;
    sr_rpc_call_t *call = w->call;
    const Sr__ShowUpdate *in = w->update;
    int failed;
    w->before = s_load(call, in->id, 1, &failed);
    if (failed)
        return s_fail(w);
    if (!w->before || !sr_principal_sees_region(call->principal, w->before->region)) {
        w->st = taskd_not_found(call, "show", in->id);
        return -1;
    }
    const Sr__Show *b = w->before;
    if (b->version != in->version) {
        w->st = taskd_stale(call, "show", b->id, b->version, in->version);
        return -1;
    }
    if (s_open_project(w, b->project_id) < 0)
        return -1;
    char *const *mask = in->update_mask;
    size_t nm = in->n_update_mask;
    fields_t f = {TASKD_PICK("platform", in->platform, b->platform),
                  TASKD_PICK("room_id", in->room_id, b->room_id),
                  TASKD_PICK("theme", in->theme, b->theme),
                  TASKD_PICK("anchor_id", in->anchor_id, b->anchor_id),
                  TASKD_PICK("controller_id", in->controller_id, b->controller_id),
                  TASKD_PICK("starts_us", in->starts_us, b->starts_us),
                  TASKD_PICK("ends_us", in->ends_us, b->ends_us),
                  TASKD_PICK("gmv_target_fen", in->gmv_target_fen, b->gmv_target_fen),
                  TASKD_PICK("crew", in->crew, b->crew),
                  TASKD_PICK("crew", in->n_crew, b->n_crew)};
    const char *status = TASKD_PICK("status", in->status, b->status);
    if ((w->st = s_check(call, &f)) != SR__STATUS__STATUS_OK)
        return -1;
    if ((w->st = taskd_status_move(call, TASKD_SHOW, b->id, b->status, status)) !=
        SR__STATUS__STATUS_OK)
        return -1;
    return s_store(w, b->id, &f, status, taskd_has_mask(mask, nm, "crew"));
}

TASKD_METHOD(taskd_show_update)
{
    write_t w = {.call = call, .update = (const Sr__ShowUpdate *)request};
    if (sr_db_tx(taskd_db(call), s_update_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    taskd_published(call, "show", w.after->id, w.after->region, &w.before->base, &w.after->base);
    *reply = &w.after->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_show_get)
{
    const Sr__TaskId *in = (const Sr__TaskId *)request;
    int failed;
    Sr__Show *s = s_load(call, in->id, 0, &failed);
    if (failed)
        return taskd_db_fail(call);
    if (!s || !sr_principal_sees_region(call->principal, s->region))
        return taskd_not_found(call, "show", in->id);
    *reply = &s->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_show_list)
{
    const Sr__ShowList *in = (const Sr__ShowList *)request;
    const Sr__Principal *p = call->principal;
    if (in->status[0] && !taskd_status_known(TASKD_SHOW, in->status))
        return taskd_bad(call, "status", "status must be one of %s", taskd_statuses(TASKD_SHOW));
    if (in->platform[0] && !sr_platform_parse(in->platform))
        return taskd_bad(call, "platform", "platform must be channels, douyin, kuaishou or taobao");
    int64_t after;
    if (taskd_cursor_id(call, in->cursor, &after) < 0)
        return SR__STATUS__STATUS_BAD_REQUEST;
    int limit = sr_page_limit(in->limit);
    sr_arena_t *a = call->arena;
    const char *params[] = {sr_principal_is_hq(p) ? "t" : "f",
                            sr_db_text_array(a, p->regions, p->n_regions),
                            taskd_num(a, in->project_id),
                            in->status,
                            in->platform,
                            in->room_id,
                            taskd_num(a, in->from_us),
                            taskd_num(a, in->to_us),
                            taskd_num(a, after),
                            taskd_num(a, limit + 1)};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT " SHOW_COLS SHOW_FROM
        "WHERE ($1::bool OR p.region = ANY($2::text[])) AND ($3::bigint = 0 OR s.project_id = "
        "$3::bigint) AND ($4 = '' OR s.status = $4) AND ($5 = '' OR s.platform = $5) AND ($6 = "
        "'' OR s.room_id = $6) AND ($7::bigint = 0 OR s.ends_at > " TASKD_TS(
            "$7") ") AND "
                  "($8::bigint = 0 OR s.starts_at < " TASKD_TS(
                      "$8") ") AND s.id > $9::bigint ORDER BY "
                            "s.id LIMIT $10::int",
        10, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__ShowPage *out = sr_arena_alloc(a, sizeof *out);
    sr__show_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->shows = sr_arena_alloc(a, (size_t)(rows + 1) * sizeof *out->shows);
    for (int i = 0; i < rows; i++)
        out->shows[out->n_shows++] = s_row(a, res, i);
    out->next_cursor =
        sr_cursor_after(a, PQntuples(res), limit, rows ? out->shows[rows - 1]->id : 0);
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}
