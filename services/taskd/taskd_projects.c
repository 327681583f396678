/* taskd_projects - campaigns: create, read, list, change (with status transitions).
 *
 * Planners (projects.plan) create projects in the regions they see; HQ anywhere. A change sends
 * the version it read and names its fields in update_mask; a status in it must be a move the
 * life cycle allows (taskd_lifecycle.c), else 409 naming the moves there are. Each change goes
 * out as project.changed with the record after it, and to the audit log.
 */
#include "taskd.h"

#include "sr_log.h"
#include "sr_perm.h"
#include "sr_platform.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    char *name, *brand, *region;
    char **platforms;
    size_t n_platforms;
    int64_t starts_us, ends_us, owner_id, gmv, reach, followers, budget;
    int auto_schedule;
    int32_t wip_todo, wip_doing, wip_blocked;
} fields_t;

/* s_check - the fields every project must satisfy, whoever sets them */
static Sr__Status s_check(sr_rpc_call_t *call, const fields_t *f)
{
    if (!f->name[0] || !taskd_text_ok(f->name, 200))
        return taskd_bad(call, "name", "name must be 1 to 200 characters");
    if (!taskd_text_ok(f->brand, 100))
        return taskd_bad(call, "brand", "brand must be at most 100 characters");
    if (!sr_region_code_ok(f->region))
        return taskd_bad(call, "region", "region must be a region code (a-z 0-9 _ -)");
    if (!sr_principal_sees_region(call->principal, f->region))
        return sr_rpc_fail(call, SR__STATUS__STATUS_FORBIDDEN, "forbidden", "region",
                           "you may plan projects in your own regions only");
    for (size_t i = 0; i < f->n_platforms; i++) {
        if (!sr_platform_parse(f->platforms[i]))
            return taskd_bad(call, "platforms",
                             "platforms must be channels, douyin, kuaishou or taobao");
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->platforms[j], f->platforms[i]) == 0)
                return taskd_bad(call, "platforms", "platform %s is named twice", f->platforms[i]);
    }
    if (!taskd_time_ok(f->starts_us) || !taskd_time_ok(f->ends_us))
        return taskd_bad(call, taskd_time_ok(f->starts_us) ? "ends_us" : "starts_us",
                         "times are microseconds from 1970 to 9999");
    if (f->starts_us < 0 || f->ends_us < 0 ||
        (f->starts_us && f->ends_us && f->ends_us < f->starts_us))
        return taskd_bad(call, "ends_us", "ends_us must not be before starts_us");
    if (f->gmv < 0 || f->reach < 0 || f->followers < 0 || f->budget < 0)
        return taskd_bad(call,
                         f->gmv < 0         ? "gmv_target_fen"
                         : f->reach < 0     ? "reach_target"
                         : f->followers < 0 ? "follower_target"
                                            : "budget_fen",
                         "goals and budget must not be negative");
    if (f->wip_todo < 0 || f->wip_doing < 0 || f->wip_blocked < 0)
        return taskd_bad(call, "wip_doing", "WIP limits must not be negative (0 = none)");
    return SR__STATUS__STATUS_OK;
}

static void s_write_params(sr_arena_t *a, const fields_t *f, const char **params)
{
    params[0] = f->name;
    params[1] = f->brand;
    params[2] = f->region;
    params[3] = sr_db_text_array(a, f->platforms, f->n_platforms);
    params[4] = taskd_num(a, f->starts_us);
    params[5] = taskd_num(a, f->ends_us);
    params[6] = taskd_num(a, f->owner_id);
    params[7] = taskd_num(a, f->gmv);
    params[8] = taskd_num(a, f->reach);
    params[9] = taskd_num(a, f->followers);
    params[10] = taskd_num(a, f->budget);
    params[11] = f->auto_schedule ? "t" : "f";
    params[12] = taskd_num(a, f->wip_todo);
    params[13] = taskd_num(a, f->wip_doing);
    params[14] = taskd_num(a, f->wip_blocked);
}

typedef struct {
    sr_rpc_call_t *call;
    fields_t f;
    const Sr__ProjectUpdate *in; /* NULL for a creation */
    int64_t id, version;
    Sr__Project *before, *after;
    Sr__Status st;
} write_t;

static int s_finish(write_t *w, PGresult *res)
{
    sr_rpc_call_t *call = w->call;
    if (!res) {
        w->st = taskd_db_fail(call);
        return -1;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        w->st = taskd_stale(call, "project", w->id, w->before ? w->before->version : 0, w->version);
        return -1;
    }
    w->after = taskd_project_row(call->arena, res, 0);
    PQclear(res);
    if (taskd_event(call, "project.changed", &w->after->base) < 0) {
        w->st = taskd_db_fail(call);
        return -1;
    }
    return 0;
}

static int s_create_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    const char *params[15];
    s_write_params(w->call->arena, &w->f, params);
    return s_finish(
        w,
        sr_db_query(db,
                    "INSERT INTO tasks.projects AS p (name, brand, region, platforms, starts_at, "
                    "ends_at, owner_id, gmv_target_fen, reach_target, follower_target, "
                    "budget_fen, auto_schedule, wip_todo, wip_doing, wip_blocked) VALUES ($1, "
                    "$2, $3, $4::text[], " TASKD_TSN("$5") ", " TASKD_TSN(
                        "$6") ", $7, $8, $9, "
                              "$10, $11, $12, $13, $14, $15) RETURNING " TASKD_PROJECT_COLS,
                    15, params));
}

TASKD_METHOD(taskd_project_create)
{
    const Sr__ProjectCreate *in = (const Sr__ProjectCreate *)request;
    write_t w = {.call = call,
                 .f = {in->name, in->brand, in->region, in->platforms, in->n_platforms,
                       in->starts_us, in->ends_us, in->owner_id, in->gmv_target_fen,
                       in->reach_target, in->follower_target, in->budget_fen, in->auto_schedule,
                       in->wip_todo, in->wip_doing, in->wip_blocked}};
    Sr__Status st = s_check(call, &w.f);
    if (st != SR__STATUS__STATUS_OK)
        return st;
    if (sr_db_tx(taskd_db(call), s_create_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    taskd_published(call, "project", w.after->id, w.after->region, NULL, &w.after->base);
    *reply = &w.after->base;
    return SR__STATUS__STATUS_OK;
}

TASKD_METHOD(taskd_project_get)
{
    const Sr__TaskId *in = (const Sr__TaskId *)request;
    Sr__Status st;
    Sr__Project *p = taskd_visible_project(call, in->id, "id", 0, &st);
    if (p)
        *reply = &p->base;
    return st;
}

TASKD_METHOD(taskd_project_list)
{
    const Sr__ProjectList *in = (const Sr__ProjectList *)request;
    const Sr__Principal *p = call->principal;
    if (in->status[0] && !taskd_status_known(TASKD_PROJECT, in->status))
        return taskd_bad(call, "status", "status must be one of %s", taskd_statuses(TASKD_PROJECT));
    int64_t after;
    if (taskd_cursor_id(call, in->cursor, &after) < 0)
        return SR__STATUS__STATUS_BAD_REQUEST;
    int limit = sr_page_limit(in->limit);
    const char *params[] = {sr_principal_is_hq(p) ? "t" : "f",
                            sr_db_text_array(call->arena, p->regions, p->n_regions),
                            in->region,
                            in->status,
                            in->brand,
                            taskd_num(call->arena, after),
                            taskd_num(call->arena, limit + 1)};
    PGresult *res = sr_db_query(
        taskd_db(call),
        "SELECT " TASKD_PROJECT_COLS " FROM tasks.projects p WHERE ($1::bool OR p.region = "
        "ANY($2::text[])) AND ($3 = '' OR p.region = $3) AND ($4 = '' OR p.status = $4) AND "
        "($5 = '' OR p.brand = $5) AND p.id > $6::bigint ORDER BY p.id LIMIT $7::int",
        7, params);
    if (!res)
        return taskd_db_fail(call);
    Sr__ProjectPage *out = sr_arena_alloc(call->arena, sizeof *out);
    sr__project_page__init(out);
    int rows = PQntuples(res) > limit ? limit : PQntuples(res);
    out->projects = sr_arena_alloc(call->arena, (size_t)(rows + 1) * sizeof *out->projects);
    for (int i = 0; i < rows; i++)
        out->projects[out->n_projects++] = taskd_project_row(call->arena, res, i);
    out->next_cursor =
        sr_cursor_after(call->arena, PQntuples(res), limit, rows ? out->projects[rows - 1]->id : 0);
    PQclear(res);
    *reply = &out->base;
    return SR__STATUS__STATUS_OK;
}

static int s_update_tx(sr_db_t *db, void *arg)
{
    write_t *w = arg;
    sr_rpc_call_t *call = w->call;
    w->before = taskd_visible_project(call, w->id, "id", 1, &w->st);
    if (!w->before)
        return -1;
    const Sr__ProjectUpdate *in = w->in;
    char *const *mask = in->update_mask;
    size_t nm = in->n_update_mask;
    const Sr__Project *b = w->before;
    w->f = (fields_t){TASKD_PICK("name", in->name, b->name),
                      TASKD_PICK("brand", in->brand, b->brand),
                      TASKD_PICK("region", in->region, b->region),
                      TASKD_PICK("platforms", in->platforms, b->platforms),
                      TASKD_PICK("platforms", in->n_platforms, b->n_platforms),
                      TASKD_PICK("starts_us", in->starts_us, b->starts_us),
                      TASKD_PICK("ends_us", in->ends_us, b->ends_us),
                      TASKD_PICK("owner_id", in->owner_id, b->owner_id),
                      TASKD_PICK("gmv_target_fen", in->gmv_target_fen, b->gmv_target_fen),
                      TASKD_PICK("reach_target", in->reach_target, b->reach_target),
                      TASKD_PICK("follower_target", in->follower_target, b->follower_target),
                      TASKD_PICK("budget_fen", in->budget_fen, b->budget_fen),
                      TASKD_PICK("auto_schedule", in->auto_schedule, b->auto_schedule),
                      TASKD_PICK("wip_todo", in->wip_todo, b->wip_todo),
                      TASKD_PICK("wip_doing", in->wip_doing, b->wip_doing),
                      TASKD_PICK("wip_blocked", in->wip_blocked, b->wip_blocked)};
    const char *status = TASKD_PICK("status", in->status, b->status);
    if ((w->st = s_check(call, &w->f)) != SR__STATUS__STATUS_OK)
        return -1;
    if (b->version != in->version) {
        w->st = taskd_stale(call, "project", b->id, b->version, in->version);
        return -1;
    }
    if ((w->st = taskd_status_move(call, TASKD_PROJECT, b->id, b->status, status)) !=
        SR__STATUS__STATUS_OK)
        return -1;
    const char *params[18];
    s_write_params(call->arena, &w->f, params);
    params[15] = status;
    params[16] = taskd_num(call->arena, b->id);
    params[17] = taskd_num(call->arena, in->version);
    return s_finish(
        w,
        sr_db_query(db,
                    "UPDATE tasks.projects p SET name = $1, brand = $2, region = $3, platforms "
                    "= $4::text[], starts_at = " TASKD_TSN("$5") ", ends_at = " TASKD_TSN(
                        "$6") ", owner_id = $7, gmv_target_fen = $8, reach_target = $9, "
                              "follower_target = $10, budget_fen = $11, auto_schedule = $12, "
                              "wip_todo = $13, wip_doing = $14, wip_blocked = $15, status = "
                              "$16, version = version + 1, updated_at = now() WHERE id = "
                              "$17::bigint AND version = $18::bigint RETURNING " TASKD_PROJECT_COLS,
                    18, params));
}

TASKD_METHOD(taskd_project_update)
{
    const Sr__ProjectUpdate *in = (const Sr__ProjectUpdate *)request;
    write_t w = {.call = call, .id = in->id, .version = in->version, .in = in};
    if (sr_db_tx(taskd_db(call), s_update_tx, &w) != 0)
        return w.st != SR__STATUS__STATUS_OK ? w.st : taskd_db_fail(call);
    taskd_published(call, "project", w.after->id, w.after->region, &w.before->base, &w.after->base);
    *reply = &w.after->base;
    return SR__STATUS__STATUS_OK;
}
